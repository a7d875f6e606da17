/* test_4c.c: stage 4C, the key/value service with snapshots
 * (maxraftstate 1000): the 9 snapshot tests of 6.5840's 2024 kvraft part
 * B, in C (kvh.h is the harness). */
#include <stdio.h>
#include <stdlib.h>

#include "kvh.h"
#include "tests.h"

#define ELECTION_TIMEOUT_MS 1000
#define MAXRAFTSTATE 1000
#define MAXSNAPSHOTSTATE 500

static void check_log_size(cfg *c)
{
    size_t sz = cfg_log_size(c);
    if (sz > 8 * MAXRAFTSTATE)
        cfg_fail(c, "logs were not trimmed: Raft's persisted state is %zu bytes, over "
                 "8 x maxraftstate (%d)", sz, MAXRAFTSTATE);
}

/* A partition of servers: those in group a against the rest. */
static void split(cfg *c, const int *a, int na)
{
    int side[8];
    for (int i = 0; i < cfg_n(c); i++)
        side[i] = 1;
    for (int k = 0; k < na; k++)
        side[a[k]] = 0;
    cfg_partition(c, side);
}

static void snapshot_rpc(cfg *c)
{
    kvh_clerk *ck = kvh_clerk_make(c, NULL, 0), *ck1 = NULL, *ck2 = NULL;
    if (!ck)
        return;
    cfg_begin(c, "Test: InstallSnapshot RPC (4C)");
    kvh_put(c, ck, "a", "A", -1);
    kvh_check(c, ck, "a", "A");
    /* a bunch of puts into the majority partition */
    static const int g01[] = { 0, 1 }, g02[] = { 0, 2 };
    split(c, g01, 2);
    ck1 = kvh_clerk_make(c, g01, 2);
    for (int i = 0; ck1 && i < 50 && !cfg_failed(c); i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        kvh_put(c, ck1, k, k, -1);
    }
    if (cfg_failed(c) || !ck1)
        goto out;
    cfg_sleep_ms(ELECTION_TIMEOUT_MS);
    kvh_put(c, ck1, "b", "B", -1);
    /* the majority has thrown away most of its log */
    check_log_size(c);
    if (cfg_failed(c))
        goto out;
    /* a group that needs the lagging server, which must catch up */
    split(c, g02, 2);
    ck2 = kvh_clerk_make(c, g02, 2);
    if (!ck2)
        goto out;
    kvh_put(c, ck2, "c", "C", -1);
    kvh_put(c, ck2, "d", "D", -1);
    kvh_check(c, ck2, "a", "A");
    kvh_check(c, ck2, "b", "B");
    kvh_check(c, ck2, "1", "1");
    kvh_check(c, ck2, "49", "49");
    if (cfg_failed(c))
        goto out;
    /* now everybody */
    for (int i = 0; i < cfg_n(c); i++)
        cfg_connect(c, i);
    kvh_put(c, ck, "e", "E", -1);
    kvh_check(c, ck, "c", "C");
    kvh_check(c, ck, "e", "E");
    kvh_check(c, ck, "1", "1");
    cfg_end_ops(c, kvh_ops());
out:
    kvh_clerk_free(ck2);
    kvh_clerk_free(ck1);
    kvh_clerk_free(ck);
}

static void snapshot_size(cfg *c)
{
    kvh_clerk *ck = kvh_clerk_make(c, NULL, 0);
    if (!ck)
        return;
    cfg_begin(c, "Test: snapshot size is reasonable (4C)");
    for (int i = 0; i < 200 && !cfg_failed(c); i++) {
        kvh_put(c, ck, "x", "0", -1);
        kvh_check(c, ck, "x", "0");
        kvh_put(c, ck, "x", "1", -1);
        kvh_check(c, ck, "x", "1");
    }
    kvh_clerk_free(ck);
    if (cfg_failed(c))
        return;
    check_log_size(c);
    size_t ssz = cfg_snapshot_size(c);
    if (ssz > MAXSNAPSHOTSTATE)
        cfg_fail(c, "snapshot too large: %zu bytes, over %d (keep in it only the state and "
                 "what exactly-once needs)", ssz, MAXSNAPSHOTSTATE);
    if (cfg_failed(c))
        return;
    cfg_end_ops(c, kvh_ops());
}

static void speed_body(cfg *c) { kvh_speed(c, "4C"); }

static void generic(int clients, int servers, bool unreliable, bool crash, bool partitions,
                    bool random_keys)
{
    kvh_run_generic("4C", MAXRAFTSTATE, clients, servers, unreliable, crash, partitions,
                    random_keys);
}

static void run(test_body body)
{
    kvh_run(3, false, MAXRAFTSTATE, body);
}

static void TestSnapshotRPC4C(void) { run(snapshot_rpc); }
static void TestSnapshotSize4C(void) { run(snapshot_size); }
static void TestSpeed4C(void) { run(speed_body); }
static void TestSnapshotRecover4C(void) { generic(1, 5, false, true, false, false); }
static void TestSnapshotRecoverManyClients4C(void) { generic(20, 5, false, true, false, false); }
static void TestSnapshotUnreliable4C(void) { generic(5, 5, true, false, false, false); }
static void TestSnapshotUnreliableRecover4C(void) { generic(5, 5, true, true, false, false); }
static void TestSnapshotUnreliableRecoverConcurrentPartition4C(void)
{
    generic(5, 5, true, true, true, false);
}
static void TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable4C(void)
{
    generic(15, 7, true, true, true, true);
}

const raft_test_def tests_4c[] = {
    { "TestSnapshotRPC4C", TestSnapshotRPC4C },
    { "TestSnapshotSize4C", TestSnapshotSize4C },
    { "TestSpeed4C", TestSpeed4C },
    { "TestSnapshotRecover4C", TestSnapshotRecover4C },
    { "TestSnapshotRecoverManyClients4C", TestSnapshotRecoverManyClients4C },
    { "TestSnapshotUnreliable4C", TestSnapshotUnreliable4C },
    { "TestSnapshotUnreliableRecover4C", TestSnapshotUnreliableRecover4C },
    { "TestSnapshotUnreliableRecoverConcurrentPartition4C",
      TestSnapshotUnreliableRecoverConcurrentPartition4C },
    { "TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable4C",
      TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable4C },
    { NULL, NULL },
};
