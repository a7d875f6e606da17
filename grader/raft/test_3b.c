/* test_3b.c: 3B, log replication (6.5840's TestBasicAgree3B ...). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

static void basic_agree(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3B): basic agreement");

    int iters = 3;
    for (int index = 1; index < iters + 1; index++) {
        int nd = cfg_n_committed(c, index, NULL);
        CHECK(c);
        if (nd > 0)
            FAILF(c, "some have committed before Start()");

        int xindex = cfg_one_int(c, index * 100, servers, false);
        CHECK(c);
        if (xindex != index)
            FAILF(c, "got index %d but expected %d", xindex, index);
    }

    cfg_end(c);
}

/* check, based on counting bytes of RPCs, that each command is sent to each
 * peer just once */
static void rpc_bytes(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3B): RPC byte count");

    cfg_one_int(c, 99, servers, false);
    CHECK(c);
    int64_t bytes0 = cfg_bytes_total(c);

    int iters = 10;
    int64_t sent = 0;
    for (int index = 2; index < iters + 2; index++) {
        char *cmd = cfg_randstring(c, 5000);
        CHECK(c);
        int xindex = cfg_one(c, cmd, 5000, servers, false);
        free(cmd);
        CHECK(c);
        if (xindex != index)
            FAILF(c, "got index %d but expected %d", xindex, index);
        sent += 5000;
    }

    int64_t bytes1 = cfg_bytes_total(c);
    int64_t got = bytes1 - bytes0;
    int64_t expected = (int64_t)servers * sent;
    if (got > expected + 50000)
        FAILF(c, "too many RPC bytes; got %" PRId64 ", expected %" PRId64, got, expected);

    cfg_end(c);
}

/* test just failure of followers */
static void follower_failure(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3B): test progressive failure of followers");

    cfg_one_int(c, 101, servers, false);
    CHECK(c);

    /* disconnect one follower from the network */
    int leader1 = cfg_check_one_leader(c);
    CHECK(c);
    cfg_disconnect(c, (leader1 + 1) % servers);

    /* the leader and remaining follower should be able to agree despite the
     * disconnected follower */
    cfg_one_int(c, 102, servers - 1, false);
    CHECK(c);
    cfg_sleep_ms(RAFT_ELECTION_TIMEOUT);
    cfg_one_int(c, 103, servers - 1, false);
    CHECK(c);

    /* disconnect the remaining follower */
    int leader2 = cfg_check_one_leader(c);
    CHECK(c);
    cfg_disconnect(c, (leader2 + 1) % servers);
    cfg_disconnect(c, (leader2 + 2) % servers);

    /* submit a command */
    int index;
    bool ok = cfg_start_int(c, leader2, 104, &index, NULL);
    CHECK(c);
    if (!ok)
        FAILF(c, "leader rejected Start()");
    if (index != 4)
        FAILF(c, "expected index 4, got %d", index);

    cfg_sleep_ms(2 * RAFT_ELECTION_TIMEOUT);

    /* check that command 104 did not commit */
    int n = cfg_n_committed(c, index, NULL);
    CHECK(c);
    if (n > 0)
        FAILF(c, "%d committed but no majority", n);

    cfg_end(c);
}

/* test just failure of leaders */
static void leader_failure(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3B): test failure of leaders");

    cfg_one_int(c, 101, servers, false);
    CHECK(c);

    /* disconnect the first leader */
    int leader1 = cfg_check_one_leader(c);
    CHECK(c);
    cfg_disconnect(c, leader1);

    /* the remaining followers should elect a new leader */
    cfg_one_int(c, 102, servers - 1, false);
    CHECK(c);
    cfg_sleep_ms(RAFT_ELECTION_TIMEOUT);
    cfg_one_int(c, 103, servers - 1, false);
    CHECK(c);

    /* disconnect the new leader */
    int leader2 = cfg_check_one_leader(c);
    CHECK(c);
    cfg_disconnect(c, leader2);

    /* submit a command to each server */
    for (int i = 0; i < servers; i++)
        cfg_start_int(c, i, 104, NULL, NULL);
    CHECK(c);

    cfg_sleep_ms(2 * RAFT_ELECTION_TIMEOUT);

    /* check that command 104 did not commit */
    int n = cfg_n_committed(c, 4, NULL);
    CHECK(c);
    if (n > 0)
        FAILF(c, "%d committed but no majority", n);

    cfg_end(c);
}

/* test that a follower participates after disconnect and re-connect */
static void fail_agree(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3B): agreement after follower reconnects");

    cfg_one_int(c, 101, servers, false);
    CHECK(c);

    /* disconnect one follower from the network */
    int leader = cfg_check_one_leader(c);
    CHECK(c);
    cfg_disconnect(c, (leader + 1) % servers);

    /* the leader and remaining follower should be able to agree despite the
     * disconnected follower */
    cfg_one_int(c, 102, servers - 1, false);
    CHECK(c);
    cfg_one_int(c, 103, servers - 1, false);
    CHECK(c);
    cfg_sleep_ms(RAFT_ELECTION_TIMEOUT);
    cfg_one_int(c, 104, servers - 1, false);
    CHECK(c);
    cfg_one_int(c, 105, servers - 1, false);
    CHECK(c);

    /* re-connect */
    cfg_connect(c, (leader + 1) % servers);

    /* the full set of servers should preserve previous agreements, and be
     * able to agree on new commands */
    cfg_one_int(c, 106, servers, true);
    CHECK(c);
    cfg_sleep_ms(RAFT_ELECTION_TIMEOUT);
    cfg_one_int(c, 107, servers, true);
    CHECK(c);

    cfg_end(c);
}

static void fail_no_agree(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3B): no agreement if too many followers disconnect");

    cfg_one_int(c, 10, servers, false);
    CHECK(c);

    /* 3 of 5 followers disconnect */
    int leader = cfg_check_one_leader(c);
    CHECK(c);
    cfg_disconnect(c, (leader + 1) % servers);
    cfg_disconnect(c, (leader + 2) % servers);
    cfg_disconnect(c, (leader + 3) % servers);

    int index;
    bool ok = cfg_start_int(c, leader, 20, &index, NULL);
    CHECK(c);
    if (!ok)
        FAILF(c, "leader rejected Start()");
    if (index != 2)
        FAILF(c, "expected index 2, got %d", index);

    cfg_sleep_ms(2 * RAFT_ELECTION_TIMEOUT);

    int n = cfg_n_committed(c, index, NULL);
    CHECK(c);
    if (n > 0)
        FAILF(c, "%d committed but no majority", n);

    /* repair */
    cfg_connect(c, (leader + 1) % servers);
    cfg_connect(c, (leader + 2) % servers);
    cfg_connect(c, (leader + 3) % servers);

    /* the disconnected majority may have chosen a leader from among their
     * own ranks, forgetting index 2 */
    int leader2 = cfg_check_one_leader(c);
    CHECK(c);
    int index2;
    bool ok2 = cfg_start_int(c, leader2, 30, &index2, NULL);
    CHECK(c);
    if (!ok2)
        FAILF(c, "leader2 rejected Start()");
    if (index2 < 2 || index2 > 3)
        FAILF(c, "unexpected index %d", index2);

    cfg_one_int(c, 1000, servers, true);
    CHECK(c);

    cfg_end(c);
}

/* ---- concurrent Start()s ---- */

typedef struct cs_shared {
    cfg *c;
    int leader;
    int term;
    pthread_mutex_t mu;
    int is[8];
    int nis;
} cs_shared;

typedef struct cs_arg {
    cs_shared *sh;
    int i;
} cs_arg;

static void *cs_thread(void *p)
{
    cs_arg *a = p;
    cs_shared *sh = a->sh;
    int index, term1;
    bool ok = cfg_start_int(sh->c, sh->leader, 100 + a->i, &index, &term1);
    if (term1 != sh->term || !ok)
        return NULL;
    pthread_mutex_lock(&sh->mu);
    sh->is[sh->nis++] = index;
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

static void concurrent_starts(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3B): concurrent Start()s");

    bool success = false;
    for (int try = 0; try < 5; try++) {
        if (try > 0) {
            /* give solution some time to settle */
            cfg_sleep_ms(3000);
        }

        int leader = cfg_check_one_leader(c);
        CHECK(c);
        int term;
        bool ok = cfg_start_int(c, leader, 1, NULL, &term);
        CHECK(c);
        if (!ok) {
            /* leader moved on really quickly */
            continue;
        }

        enum { iters = 5 };
        cs_shared sh = { .c = c, .leader = leader, .term = term, .nis = 0 };
        pthread_mutex_init(&sh.mu, NULL);
        cs_arg args[iters];
        pthread_t th[iters];
        bool started[iters];
        for (int ii = 0; ii < iters; ii++) {
            args[ii].sh = &sh;
            args[ii].i = ii;
            started[ii] = pthread_create(&th[ii], NULL, cs_thread, &args[ii]) == 0;
            if (!started[ii])
                cs_thread(&args[ii]);
        }
        for (int ii = 0; ii < iters; ii++)
            if (started[ii])
                pthread_join(th[ii], NULL);
        pthread_mutex_destroy(&sh.mu);
        CHECK(c);

        bool moved = false;
        for (int j = 0; j < servers; j++) {
            int t;
            if (cfg_get_state(c, j, &t, NULL) && t != term)
                moved = true;   /* term changed -- can't expect low RPC counts */
        }
        CHECK(c);
        if (moved)
            continue;

        bool failed = false;
        int64_t cmds[iters];
        int ncmds = 0;
        for (int k = 0; k < sh.nis; k++) {
            cfg_value v;
            int r = cfg_wait(c, sh.is[k], servers, term, &v);
            CHECK(c);
            if (r == 0) {
                /* peers have moved on to later terms, so we can't expect
                 * all Start()s to have succeeded */
                failed = true;
                break;
            }
            int64_t x;
            bool isint = cfg_value_int(&v, &x);
            cfg_value_free(&v);
            if (!isint)
                FAILF(c, "value at index %d is not an int", sh.is[k]);
            cmds[ncmds++] = x;
        }
        if (failed)
            continue;

        for (int ii = 0; ii < iters; ii++) {
            int64_t x = 100 + ii;
            bool found = false;
            for (int j = 0; j < ncmds; j++)
                if (cmds[j] == x)
                    found = true;
            if (!found) {
                char list[256] = "";
                size_t off = 0;
                for (int j = 0; j < ncmds && off < sizeof list - 24; j++)
                    off += (size_t)snprintf(list + off, sizeof list - off, "%s%" PRId64,
                                            j ? " " : "", cmds[j]);
                FAILF(c, "cmd %" PRId64 " missing in [%s]", x, list);
            }
        }

        success = true;
        break;
    }

    if (!success)
        FAILF(c, "term changed too often");

    cfg_end(c);
}

static void rejoin(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3B): rejoin of partitioned leader");

    cfg_one_int(c, 101, servers, true);
    CHECK(c);

    /* leader network failure */
    int leader1 = cfg_check_one_leader(c);
    CHECK(c);
    cfg_disconnect(c, leader1);

    /* make old leader try to agree on some entries */
    cfg_start_int(c, leader1, 102, NULL, NULL);
    cfg_start_int(c, leader1, 103, NULL, NULL);
    cfg_start_int(c, leader1, 104, NULL, NULL);
    CHECK(c);

    /* new leader commits, also for index=2 */
    cfg_one_int(c, 103, 2, true);
    CHECK(c);

    /* new leader network failure */
    int leader2 = cfg_check_one_leader(c);
    CHECK(c);
    cfg_disconnect(c, leader2);

    /* old leader connected again */
    cfg_connect(c, leader1);

    cfg_one_int(c, 104, 2, true);
    CHECK(c);

    /* all together now */
    cfg_connect(c, leader2);

    cfg_one_int(c, 105, servers, true);
    CHECK(c);

    cfg_end(c);
}

static void backup(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3B): leader backs up quickly over incorrect follower logs");

    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);

    /* put leader and one follower in a partition */
    int leader1 = cfg_check_one_leader(c);
    CHECK(c);
    cfg_disconnect(c, (leader1 + 2) % servers);
    cfg_disconnect(c, (leader1 + 3) % servers);
    cfg_disconnect(c, (leader1 + 4) % servers);

    /* submit lots of commands that won't commit */
    for (int i = 0; i < 50; i++)
        cfg_start_int(c, leader1, cfg_rand63(c), NULL, NULL);
    CHECK(c);

    cfg_sleep_ms(RAFT_ELECTION_TIMEOUT / 2);

    cfg_disconnect(c, (leader1 + 0) % servers);
    cfg_disconnect(c, (leader1 + 1) % servers);

    /* allow other partition to recover */
    cfg_connect(c, (leader1 + 2) % servers);
    cfg_connect(c, (leader1 + 3) % servers);
    cfg_connect(c, (leader1 + 4) % servers);

    /* lots of successful commands to new group */
    for (int i = 0; i < 50; i++) {
        cfg_one_int(c, cfg_rand63(c), 3, true);
        CHECK(c);
    }

    /* now another partitioned leader and one follower */
    int leader2 = cfg_check_one_leader(c);
    CHECK(c);
    int other = (leader1 + 2) % servers;
    if (leader2 == other)
        other = (leader2 + 1) % servers;
    cfg_disconnect(c, other);

    /* lots more commands that won't commit */
    for (int i = 0; i < 50; i++)
        cfg_start_int(c, leader2, cfg_rand63(c), NULL, NULL);
    CHECK(c);

    cfg_sleep_ms(RAFT_ELECTION_TIMEOUT / 2);

    /* bring original leader back to life */
    for (int i = 0; i < servers; i++)
        cfg_disconnect(c, i);
    cfg_connect(c, (leader1 + 0) % servers);
    cfg_connect(c, (leader1 + 1) % servers);
    cfg_connect(c, other);

    /* lots of successful commands to new group */
    for (int i = 0; i < 50; i++) {
        cfg_one_int(c, cfg_rand63(c), 3, true);
        CHECK(c);
    }

    /* now everyone */
    for (int i = 0; i < servers; i++)
        cfg_connect(c, i);
    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);

    cfg_end(c);
}

static int rpcs(cfg *c)
{
    int n = 0;
    for (int j = 0; j < cfg_n(c); j++)
        n += cfg_rpc_count(c, j);
    return n;
}

static void count(cfg *c)
{
    enum { iters = 10 };
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3B): RPC counts aren't too high");

    int leader = cfg_check_one_leader(c);
    CHECK(c);

    int total1 = rpcs(c);

    if (total1 > 30 || total1 < 1)
        FAILF(c, "too many or few RPCs (%d) to elect initial leader", total1);
    int election_rpcs = total1;

    int total2 = 0;
    bool success = false;
    for (int try = 0; try < 5 && !success; try++) {
        if (try > 0) {
            /* give solution some time to settle */
            cfg_sleep_ms(3000);
        }

        leader = cfg_check_one_leader(c);
        CHECK(c);
        total1 = rpcs(c);

        int starti, term;
        bool ok = cfg_start_int(c, leader, 1, &starti, &term);
        CHECK(c);
        if (!ok) {
            /* leader moved on really quickly */
            continue;
        }
        int64_t cmds[iters + 1];
        bool again = false;
        for (int i = 1; i < iters + 2; i++) {
            int64_t x = cfg_rand(c);
            cmds[i - 1] = x;
            int index1, term1;
            ok = cfg_start_int(c, leader, x, &index1, &term1);
            CHECK(c);
            if (term1 != term || !ok) {
                /* term changed while starting, or no longer the leader */
                again = true;
                break;
            }
            if (starti + i != index1)
                FAILF(c, "Start() failed: expected index %d, got %d", starti + i, index1);
        }
        if (again)
            continue;

        for (int i = 1; i < iters + 1 && !again; i++) {
            cfg_value v;
            int r = cfg_wait(c, starti + i, servers, term, &v);
            CHECK(c);
            if (r == 0) {
                /* term changed -- try again */
                again = true;
                break;
            }
            int64_t ix;
            bool isint = cfg_value_int(&v, &ix);
            cfg_value_free(&v);
            if (!isint || ix != cmds[i - 1])
                FAILF(c, "wrong value %s%" PRId64 " committed for index %d; expected %" PRId64,
                      isint ? "" : "(not an int) ", isint ? ix : 0, starti + i, cmds[i - 1]);
        }
        if (again)
            continue;

        bool failed = false;
        total2 = 0;
        for (int j = 0; j < servers; j++) {
            int t;
            if (cfg_get_state(c, j, &t, NULL) && t != term) {
                /* term changed -- can't expect low RPC counts; need to keep
                 * going to update total2 */
                failed = true;
            }
            total2 += cfg_rpc_count(c, j);
        }
        CHECK(c);
        if (failed)
            continue;

        if (total2 - total1 > (iters + 1 + 3) * 3)
            FAILF(c, "too many RPCs (%d) for %d entries", total2 - total1, iters);

        success = true;
    }

    if (!success)
        FAILF(c, "term changed too often");

    cfg_sleep_ms(RAFT_ELECTION_TIMEOUT);

    int total3 = 0;
    for (int j = 0; j < servers; j++)
        total3 += cfg_rpc_count(c, j);

    if (total3 - total2 > 3 * 20)
        FAILF(c, "too many RPCs (%d) for 1 second of idleness", total3 - total2);

    /* The figures behind the three bounds, for students tuning their code. */
    printf("  ... RPCs: %d to elect (bound 30), %d for %d agreements (bound %d), "
           "%d in 1 s idle (bound 60)\n", election_rpcs, total2 - total1, iters,
           (iters + 1 + 3) * 3, total3 - total2);
    cfg_end(c);
}

static void TestBasicAgree3B(void) { run_test(3, false, false, basic_agree); }
static void TestRPCBytes3B(void) { run_test(3, false, false, rpc_bytes); }
static void TestFollowerFailure3B(void) { run_test(3, false, false, follower_failure); }
static void TestLeaderFailure3B(void) { run_test(3, false, false, leader_failure); }
static void TestFailAgree3B(void) { run_test(3, false, false, fail_agree); }
static void TestFailNoAgree3B(void) { run_test(5, false, false, fail_no_agree); }
static void TestConcurrentStarts3B(void) { run_test(3, false, false, concurrent_starts); }
static void TestRejoin3B(void) { run_test(3, false, false, rejoin); }
static void TestBackup3B(void) { run_test(5, false, false, backup); }
static void TestCount3B(void) { run_test(3, false, false, count); }

const raft_test_def tests_3b[] = {
    { "TestBasicAgree3B", TestBasicAgree3B },
    { "TestRPCBytes3B", TestRPCBytes3B },
    { "TestFollowerFailure3B", TestFollowerFailure3B },
    { "TestLeaderFailure3B", TestLeaderFailure3B },
    { "TestFailAgree3B", TestFailAgree3B },
    { "TestFailNoAgree3B", TestFailNoAgree3B },
    { "TestConcurrentStarts3B", TestConcurrentStarts3B },
    { "TestRejoin3B", TestRejoin3B },
    { "TestBackup3B", TestBackup3B },
    { "TestCount3B", TestCount3B },
    { NULL, NULL },
};
