/* test_3a.c: 3A, leader election (6.5840's TestInitialElection3A ...). */
#include <stdio.h>

#include "tests.h"

static void initial_election(cfg *c)
{
    cfg_begin(c, "Test (3A): initial election");

    /* is a leader elected? */
    cfg_check_one_leader(c);
    CHECK(c);

    /* sleep a bit to avoid racing with followers learning of the election,
     * then check that all peers agree on the term */
    cfg_sleep_ms(50);
    int term1 = cfg_check_terms(c);
    CHECK(c);
    if (term1 < 1)
        FAILF(c, "term is %d, but should be at least 1", term1);

    /* does the leader+term stay the same if there is no network failure? */
    cfg_sleep_ms(2 * RAFT_ELECTION_TIMEOUT);
    int term2 = cfg_check_terms(c);
    CHECK(c);
    if (term1 != term2)
        printf("warning: term changed even though there were no failures\n");

    /* there should still be a leader */
    cfg_check_one_leader(c);
    CHECK(c);

    cfg_end(c);
}

static void re_election(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3A): election after network failure");

    int leader1 = cfg_check_one_leader(c);
    CHECK(c);

    /* if the leader disconnects, a new one should be elected */
    cfg_disconnect(c, leader1);
    cfg_check_one_leader(c);
    CHECK(c);

    /* if the old leader rejoins, that shouldn't disturb the new leader, and
     * the old leader should switch to follower */
    cfg_connect(c, leader1);
    int leader2 = cfg_check_one_leader(c);
    CHECK(c);

    /* if there's no quorum, no new leader should be elected */
    cfg_disconnect(c, leader2);
    cfg_disconnect(c, (leader2 + 1) % servers);
    cfg_sleep_ms(2 * RAFT_ELECTION_TIMEOUT);

    /* check that the one connected server does not think it is the leader */
    cfg_check_no_leader(c);
    CHECK(c);

    /* if a quorum arises, it should elect a leader */
    cfg_connect(c, (leader2 + 1) % servers);
    cfg_check_one_leader(c);
    CHECK(c);

    /* re-join of last node shouldn't prevent leader from existing */
    cfg_connect(c, leader2);
    cfg_check_one_leader(c);
    CHECK(c);

    cfg_end(c);
}

static void many_elections(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3A): multiple elections");

    cfg_check_one_leader(c);
    CHECK(c);

    int iters = 10;
    for (int ii = 1; ii < iters; ii++) {
        /* disconnect three nodes */
        int i1 = cfg_rand(c) % servers;
        int i2 = cfg_rand(c) % servers;
        int i3 = cfg_rand(c) % servers;
        cfg_disconnect(c, i1);
        cfg_disconnect(c, i2);
        cfg_disconnect(c, i3);

        /* either the current leader should still be alive, or the remaining
         * four should elect a new one */
        cfg_check_one_leader(c);
        CHECK(c);

        cfg_connect(c, i1);
        cfg_connect(c, i2);
        cfg_connect(c, i3);
    }

    cfg_check_one_leader(c);
    CHECK(c);

    cfg_end(c);
}

static void TestInitialElection3A(void) { run_test(3, false, false, initial_election); }
static void TestReElection3A(void) { run_test(3, false, false, re_election); }
static void TestManyElections3A(void) { run_test(7, false, false, many_elections); }

const raft_test_def tests_3a[] = {
    { "TestInitialElection3A", TestInitialElection3A },
    { "TestReElection3A", TestReElection3A },
    { "TestManyElections3A", TestManyElections3A },
    { NULL, NULL },
};
