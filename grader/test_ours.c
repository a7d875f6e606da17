/* test_ours.c: raftlab's own tests, beyond 6.5840's 28: they aim at the
 * classic bugs that 6.5840's tests let through (the points file lists them
 * apart). Each uses what 6.5840's network never does:
 *  - a healthy network watched for elections that should not happen;
 *  - a hostile network (cfg_set_hostile): requests duplicated, replayed
 *    late across terms and leaders, reordered far more;
 *  - crash points (cfg_arm_crash_point): a server crashes right after it
 *    answers, keeping only what it had persisted by then.
 * The harness's checks at every apply (committed values never change,
 * indexes in order, snapshots never back) and at every observation
 * (election safety) do the judging.
 */
#include <stdio.h>

#include "tests.h"

/* Every server's term and role, which also checks election safety. */
static int observe(cfg *c)
{
    int max = -1;
    for (int i = 0; i < cfg_n(c); i++) {
        int term;
        bool leader;
        if (cfg_alive(c, i) && cfg_get_state(c, i, &term, &leader) && term > max)
            max = term;
    }
    return max;
}

/* ---- 3A: no elections while all is well -------------------------------- */

static void no_term_churn(cfg *c)
{
    cfg_begin(c, "Test (3A): no elections on a healthy network (raftlab)");
    cfg_check_one_leader(c);
    CHECK(c);
    int term = cfg_check_terms(c);
    CHECK(c);
    /* In virtual time no pause can excuse an election; in real time a
     * process-wide pause (valgrind's, or a loaded machine) can. */
#ifdef RAFTLAB_SIM
    int allowed = 0;
#else
    int allowed = cfg_time_factor() > 1 ? 10 : 2;
#endif
    int max = term;
    for (int step = 0; step < 50; step++) {
        cfg_sleep_ms(100);
        int t = observe(c);
        CHECK(c);
        if (t > max)
            max = t;
    }
    if (max - term > allowed)
        FAILF(c, "the term went from %d to %d in 5 s on a healthy network with every server "
              "up (at most %d allowed): a leader must send heartbeats even with nothing to "
              "replicate, and a follower that hears from its leader must not start elections",
              term, max, allowed);
    cfg_end(c);
}

/* ---- 3B: duplicated and stale requests ---------------------------------- */

static void stale_replays(cfg *c)
{
    int servers = cfg_n(c);
    cfg_set_hostile(c, true);
    cfg_begin(c, "Test (3B): agreement despite duplicated and stale requests (raftlab)");
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    int down[2] = { -1, -1 };
    for (int iter = 0; iter < 12; iter++) {
        int up = servers - (down[0] >= 0) - (down[1] >= 0);
        for (int k = 0; k < 3; k++) {
            cfg_one_int(c, cfg_rand63(c), up, true);
            CHECK(c);
        }
        int leader = cfg_check_one_leader(c);
        CHECK(c);
        /* The deposed leader takes entries that can never commit: its
         * AppendEntries, replayed late, carry a conflicting log. */
        for (int k = 0; k < 3; k++)
            cfg_start_int(c, leader, cfg_rand63(c), NULL, NULL);
        CHECK(c);
        int slot = iter % 2;
        if (down[slot] >= 0)
            cfg_connect(c, down[slot]);
        cfg_disconnect(c, leader);
        down[slot] = leader;
        observe(c);
        CHECK(c);
    }
    for (int i = 0; i < servers; i++)
        cfg_connect(c, i);
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    cfg_end(c);
}

/* ---- 3C and 3D: crash points --------------------------------------------- */

/* Rounds of: arm a crash point on a random server (right after its next 1-4
 * answers; every third round after cutting off the leader, so that the
 * answers are votes), keep the cluster busy and watched until it fires,
 * crash the server as it was then, restart it. */
static void crash_points(cfg *c, const char *description)
{
    int servers = cfg_n(c);
    cfg_begin(c, description);
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    for (int iter = 0; iter < 24; iter++) {
        int cut = -1;
        if (iter % 3 == 0) {
            cut = cfg_check_one_leader(c);
            CHECK(c);
            cfg_disconnect(c, cut);
        }
        int v;
        do
            v = cfg_rand(c) % servers;
        while (v == cut);
        cfg_arm_crash_point(c, v, 1 + cfg_rand(c) % 4);
        CHECK(c);
        for (int step = 0; step < 100 && !cfg_crash_point_fired(c); step++) {
            for (int i = 0; i < servers; i++)
                if (i != cut && cfg_connected(c, i))
                    cfg_start_int(c, i, cfg_rand63(c), NULL, NULL);
            observe(c);
            CHECK(c);
            cfg_sleep_ms(5 + cfg_rand(c) % 20);
        }
        cfg_crash_at_point(c, v);
        cfg_sleep_ms(cfg_rand(c) % 200);
        observe(c);
        CHECK(c);
        cfg_start1(c, v);
        CHECK(c);
        cfg_connect(c, v);
        if (cut >= 0)
            cfg_connect(c, cut);
        if (iter % 4 == 3) {
            cfg_one_int(c, cfg_rand63(c), servers, true);
            CHECK(c);
        }
    }
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    cfg_end(c);
}

static void crash_points_3c(cfg *c)
{
    crash_points(c, "Test (3C): crashes right after a server answers (raftlab)");
}

static void crash_points_3d(cfg *c)
{
    crash_points(c, "Test (3D): crashes right after a server answers, with snapshots (raftlab)");
}

/* ---- 3D: stale InstallSnapshots ----------------------------------------- */

/* SnapshotInstall3D's rounds on a hostile network: the victim catches up by
 * InstallSnapshot, and copies of those arrive again later, stale. */
static void stale_snapshots(cfg *c)
{
    int servers = cfg_n(c);
    cfg_set_hostile(c, true);
    cfg_begin(c, "Test (3D): snapshots despite duplicated and stale requests (raftlab)");
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);
    int leader1 = cfg_check_one_leader(c);
    CHECK(c);
    for (int iter = 0; iter < 15; iter++) {
        int victim = (leader1 + 1) % servers;
        int sender = leader1;
        if (iter % 3 == 1) {
            sender = (leader1 + 1) % servers;
            victim = leader1;
        }
        cfg_disconnect(c, victim);
        cfg_one_int(c, cfg_rand63(c), servers - 1, true);
        CHECK(c);
        /* More than a snapshot interval, so the victim needs one. */
        int nn = CFG_SNAPSHOT_INTERVAL / 2 + cfg_rand(c) % CFG_SNAPSHOT_INTERVAL;
        for (int i = 0; i < nn; i++)
            cfg_start_int(c, sender, cfg_rand63(c), NULL, NULL);
        cfg_one_int(c, cfg_rand63(c), servers - 1, true);
        CHECK(c);
        cfg_connect(c, victim);
        cfg_one_int(c, cfg_rand63(c), servers, true);
        CHECK(c);
        observe(c);
        CHECK(c);
        leader1 = cfg_check_one_leader(c);
        CHECK(c);
    }
    cfg_end(c);
}

static void TestNoTermChurn3A(void) { run_test(5, false, false, no_term_churn); }
static void TestStaleReplays3B(void) { run_test(5, false, false, stale_replays); }
static void TestCrashPoints3C(void) { run_test(5, false, false, crash_points_3c); }
static void TestStaleSnapshots3D(void) { run_test(3, false, true, stale_snapshots); }
static void TestCrashPoints3D(void) { run_test(5, false, true, crash_points_3d); }

const raft_test_def ours_3a[] = {
    { "TestNoTermChurn3A", TestNoTermChurn3A },
    { NULL, NULL },
};
const raft_test_def ours_3b[] = {
    { "TestStaleReplays3B", TestStaleReplays3B },
    { NULL, NULL },
};
const raft_test_def ours_3c[] = {
    { "TestCrashPoints3C", TestCrashPoints3C },
    { NULL, NULL },
};
const raft_test_def ours_3d[] = {
    { "TestStaleSnapshots3D", TestStaleSnapshots3D },
    { "TestCrashPoints3D", TestCrashPoints3D },
    { NULL, NULL },
};
