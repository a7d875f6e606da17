/* test_3d.c: 3D, log compaction (6.5840's TestSnapshotBasic3D ...). */
#include <stdio.h>

#include "tests.h"

/* Crashes every server, then starts and reconnects each (stops at a failure). */
static void restart_all(cfg *c, int servers)
{
    for (int i = 0; i < servers; i++)
        cfg_crash1(c, i);
    for (int i = 0; i < servers && !cfg_failed(c); i++) {
        cfg_start1(c, i);
        cfg_connect(c, i);
    }
}

static void snapcommon(cfg *c, const char *name, bool disconnect, bool crash)
{
    int iters = 30;
    int servers = cfg_n(c);
    cfg_begin(c, name);

    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    int leader1 = cfg_check_one_leader(c);
    CHECK(c);

    for (int i = 0; i < iters; i++) {
        int victim = (leader1 + 1) % servers;
        int sender = leader1;
        if (i % 3 == 1) {
            sender = (leader1 + 1) % servers;
            victim = leader1;
        }

        if (disconnect) {
            cfg_disconnect(c, victim);
            cfg_one_int(c, cfg_rand63(c), servers - 1, true);
            CHECK(c);
        }
        if (crash) {
            cfg_crash1(c, victim);
            cfg_one_int(c, cfg_rand63(c), servers - 1, true);
            CHECK(c);
        }

        /* perhaps send enough to get a snapshot */
        int nn = (CFG_SNAPSHOT_INTERVAL / 2) + (cfg_rand(c) % CFG_SNAPSHOT_INTERVAL);
        for (int k = 0; k < nn; k++)
            cfg_start_int(c, sender, cfg_rand63(c), NULL, NULL);
        CHECK(c);

        /* let applier threads catch up with the Start()'s */
        if (!disconnect && !crash) {
            /* make sure all followers have caught up, so that an
             * InstallSnapshot RPC isn't required for TestSnapshotBasic3D */
            cfg_one_int(c, cfg_rand63(c), servers, true);
        } else {
            cfg_one_int(c, cfg_rand63(c), servers - 1, true);
        }
        CHECK(c);

        size_t sz = cfg_log_size(c);
        if (sz >= CFG_MAX_LOG_SIZE)
            FAILF(c, "Log size too large: a server's persisted raft state is %zu bytes, "
                  "must stay under %d (does raft_snapshot discard the log it covers?)",
                  sz, CFG_MAX_LOG_SIZE);
        if (disconnect) {
            /* reconnect a follower, who maybe behind and needs to receive a
             * snapshot to catch up */
            cfg_connect(c, victim);
            cfg_one_int(c, cfg_rand63(c), servers, true);
            CHECK(c);
            leader1 = cfg_check_one_leader(c);
            CHECK(c);
        }
        if (crash) {
            cfg_start1(c, victim);
            CHECK(c);
            cfg_connect(c, victim);
            cfg_one_int(c, cfg_rand63(c), servers, true);
            CHECK(c);
            leader1 = cfg_check_one_leader(c);
            CHECK(c);
        }
    }
    cfg_end(c);
}

static void snapshot_basic(cfg *c)
{
    snapcommon(c, "Test (3D): snapshots basic", false, false);
}

static void snapshot_install(cfg *c)
{
    snapcommon(c, "Test (3D): install snapshots (disconnect)", true, false);
}

static void snapshot_install_unreliable(cfg *c)
{
    snapcommon(c, "Test (3D): install snapshots (disconnect+unreliable)", true, false);
}

static void snapshot_install_crash(cfg *c)
{
    snapcommon(c, "Test (3D): install snapshots (crash)", false, true);
}

static void snapshot_install_uncrash(cfg *c)
{
    snapcommon(c, "Test (3D): install snapshots (unreliable+crash)", false, true);
}

/* do the servers persist the snapshots, and restart using snapshot along
 * with the tail of the log? */
static void snapshot_all_crash(cfg *c)
{
    int servers = cfg_n(c);
    int iters = 5;
    cfg_begin(c, "Test (3D): crash and restart all servers");

    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);

    for (int i = 0; i < iters; i++) {
        /* perhaps enough to get a snapshot */
        int nn = (CFG_SNAPSHOT_INTERVAL / 2) + (cfg_rand(c) % CFG_SNAPSHOT_INTERVAL);
        for (int k = 0; k < nn; k++) {
            cfg_one_int(c, cfg_rand63(c), servers, true);
            CHECK(c);
        }

        int index1 = cfg_one_int(c, cfg_rand63(c), servers, true);
        CHECK(c);

        restart_all(c, servers);
        CHECK(c);

        int index2 = cfg_one_int(c, cfg_rand63(c), servers, true);
        CHECK(c);
        if (index2 < index1 + 1)
            FAILF(c, "index decreased from %d to %d", index1, index2);
    }
    cfg_end(c);
}

/* do servers correctly initialize their in-memory copy of the snapshot,
 * making sure that future writes to persistent state don't lose state? */
static void snapshot_init(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3D): snapshot initialization after crash");
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);

    /* enough ops to make a snapshot */
    int nn = CFG_SNAPSHOT_INTERVAL + 1;
    for (int i = 0; i < nn; i++) {
        cfg_one_int(c, cfg_rand63(c), servers, true);
        CHECK(c);
    }

    restart_all(c, servers);
    CHECK(c);

    /* a single op, to get something to be written back to persistent storage */
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);

    restart_all(c, servers);
    CHECK(c);

    /* do another op to trigger potential bug */
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    cfg_end(c);
}

static void TestSnapshotBasic3D(void) { run_test(3, false, true, snapshot_basic); }
static void TestSnapshotInstall3D(void) { run_test(3, false, true, snapshot_install); }
static void TestSnapshotInstallUnreliable3D(void)
{
    run_test(3, true, true, snapshot_install_unreliable);
}
static void TestSnapshotInstallCrash3D(void) { run_test(3, false, true, snapshot_install_crash); }
static void TestSnapshotInstallUnCrash3D(void)
{
    run_test(3, true, true, snapshot_install_uncrash);
}
static void TestSnapshotAllCrash3D(void) { run_test(3, false, true, snapshot_all_crash); }
static void TestSnapshotInit3D(void) { run_test(3, false, true, snapshot_init); }

const raft_test_def tests_3d[] = {
    { "TestSnapshotBasic3D", TestSnapshotBasic3D },
    { "TestSnapshotInstall3D", TestSnapshotInstall3D },
    { "TestSnapshotInstallUnreliable3D", TestSnapshotInstallUnreliable3D },
    { "TestSnapshotInstallCrash3D", TestSnapshotInstallCrash3D },
    { "TestSnapshotInstallUnCrash3D", TestSnapshotInstallUnCrash3D },
    { "TestSnapshotAllCrash3D", TestSnapshotAllCrash3D },
    { "TestSnapshotInit3D", TestSnapshotInit3D },
    { NULL, NULL },
};
