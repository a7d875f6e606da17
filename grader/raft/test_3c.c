/* test_3c.c: 3C, persistence (6.5840's TestPersist13C ...). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests.h"

static void persist1(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3C): basic persistence");

    cfg_one_int(c, 11, servers, true);
    CHECK(c);

    /* crash and re-start all */
    for (int i = 0; i < servers; i++) {
        cfg_start1(c, i);
        CHECK(c);
    }
    for (int i = 0; i < servers; i++) {
        cfg_disconnect(c, i);
        cfg_connect(c, i);
    }

    cfg_one_int(c, 12, servers, true);
    CHECK(c);

    int leader1 = cfg_check_one_leader(c);
    CHECK(c);
    cfg_disconnect(c, leader1);
    cfg_start1(c, leader1);
    CHECK(c);
    cfg_connect(c, leader1);

    cfg_one_int(c, 13, servers, true);
    CHECK(c);

    int leader2 = cfg_check_one_leader(c);
    CHECK(c);
    cfg_disconnect(c, leader2);
    cfg_one_int(c, 14, servers - 1, true);
    CHECK(c);
    cfg_start1(c, leader2);
    CHECK(c);
    cfg_connect(c, leader2);

    cfg_wait(c, 4, servers, -1, NULL);   /* wait for leader2 to join before killing i3 */
    CHECK(c);

    int i3 = cfg_check_one_leader(c);
    CHECK(c);
    i3 = (i3 + 1) % servers;
    cfg_disconnect(c, i3);
    cfg_one_int(c, 15, servers - 1, true);
    CHECK(c);
    cfg_start1(c, i3);
    CHECK(c);
    cfg_connect(c, i3);

    cfg_one_int(c, 16, servers, true);
    CHECK(c);

    cfg_end(c);
}

static void persist2(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3C): more persistence");

    int index = 1;
    for (int iters = 0; iters < 5; iters++) {
        cfg_one_int(c, 10 + index, servers, true);
        CHECK(c);
        index++;

        int leader1 = cfg_check_one_leader(c);
        CHECK(c);

        cfg_disconnect(c, (leader1 + 1) % servers);
        cfg_disconnect(c, (leader1 + 2) % servers);

        cfg_one_int(c, 10 + index, servers - 2, true);
        CHECK(c);
        index++;

        cfg_disconnect(c, (leader1 + 0) % servers);
        cfg_disconnect(c, (leader1 + 3) % servers);
        cfg_disconnect(c, (leader1 + 4) % servers);

        cfg_start1(c, (leader1 + 1) % servers);
        CHECK(c);
        cfg_start1(c, (leader1 + 2) % servers);
        CHECK(c);
        cfg_connect(c, (leader1 + 1) % servers);
        cfg_connect(c, (leader1 + 2) % servers);

        cfg_sleep_ms(RAFT_ELECTION_TIMEOUT);

        cfg_start1(c, (leader1 + 3) % servers);
        CHECK(c);
        cfg_connect(c, (leader1 + 3) % servers);

        cfg_one_int(c, 10 + index, servers - 2, true);
        CHECK(c);
        index++;

        cfg_connect(c, (leader1 + 4) % servers);
        cfg_connect(c, (leader1 + 0) % servers);
    }

    cfg_one_int(c, 1000, servers, true);
    CHECK(c);

    cfg_end(c);
}

static void persist3(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3C): partitioned leader and one follower crash, leader restarts");

    cfg_one_int(c, 101, 3, true);
    CHECK(c);

    int leader = cfg_check_one_leader(c);
    CHECK(c);
    cfg_disconnect(c, (leader + 2) % servers);

    cfg_one_int(c, 102, 2, true);
    CHECK(c);

    cfg_crash1(c, (leader + 0) % servers);
    cfg_crash1(c, (leader + 1) % servers);
    cfg_connect(c, (leader + 2) % servers);
    cfg_start1(c, (leader + 0) % servers);
    CHECK(c);
    cfg_connect(c, (leader + 0) % servers);

    cfg_one_int(c, 103, 2, true);
    CHECK(c);

    cfg_start1(c, (leader + 1) % servers);
    CHECK(c);
    cfg_connect(c, (leader + 1) % servers);

    cfg_one_int(c, 104, servers, true);
    CHECK(c);

    cfg_end(c);
}

/* Test the scenarios described in Figure 8 of the extended Raft paper. Each
 * iteration asks a leader, if there is one, to insert a command in the Raft
 * log. If there is a leader, that leader will fail quickly with a high
 * probability (perhaps without committing the command), or crash after a
 * while with low probability (most likely committing the command). If the
 * number of alive servers isn't enough to form a majority, perhaps start a
 * new server. The leader in a new term may try to finish replicating log
 * entries that haven't been committed yet. */
static void figure8(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3C): Figure 8");

    cfg_one_int(c, cfg_rand63(c), 1, true);
    CHECK(c);

    int nup = servers;
    for (int iters = 0; iters < 1000; iters++) {
        int leader = -1;
        for (int i = 0; i < servers; i++) {
            if (cfg_alive(c, i) && cfg_start_int(c, i, cfg_rand63(c), NULL, NULL))
                leader = i;
        }
        CHECK(c);

        if (cfg_rand(c) % 1000 < 100) {
            int64_t ms = cfg_rand63(c) % (RAFT_ELECTION_TIMEOUT / 2);
            cfg_sleep_ms(ms);
        } else {
            int64_t ms = cfg_rand63(c) % 13;
            cfg_sleep_ms(ms);
        }

        if (leader != -1) {
            cfg_crash1(c, leader);
            nup -= 1;
        }

        if (nup < 3) {
            int s = cfg_rand(c) % servers;
            if (!cfg_alive(c, s)) {
                cfg_start1(c, s);
                CHECK(c);
                cfg_connect(c, s);
                nup += 1;
            }
        }
        CHECK(c);
    }

    for (int i = 0; i < servers; i++) {
        if (!cfg_alive(c, i)) {
            cfg_start1(c, i);
            CHECK(c);
            cfg_connect(c, i);
        }
    }

    cfg_one_int(c, cfg_rand63(c), servers, true);
    CHECK(c);

    cfg_end(c);
}

/* ---- unreliable agreement ---- */

typedef struct ua_arg {
    cfg *c;
    int64_t v;
} ua_arg;

static void *ua_thread(void *p)
{
    ua_arg *a = p;
    cfg_one_int(a->c, a->v, 1, true);
    return NULL;
}

static void unreliable_agree(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3C): unreliable agreement");

    enum { rounds = 50, per = 4 };
    pthread_t th[rounds * per];
    ua_arg args[rounds * per];
    int nth = 0;

    for (int iters = 1; iters < rounds && !cfg_failed(c); iters++) {
        for (int j = 0; j < per; j++) {
            args[nth].c = c;
            args[nth].v = 100 * iters + j;
            if (pthread_create(&th[nth], NULL, ua_thread, &args[nth]) == 0) {
                nth++;
            } else {
                cfg_fail(c, "could not start a client thread");
                break;
            }
        }
        cfg_one_int(c, iters, 1, true);
    }

    cfg_set_unreliable(c, false);

    for (int k = 0; k < nth; k++)
        pthread_join(th[k], NULL);
    CHECK(c);

    cfg_one_int(c, 100, servers, true);
    CHECK(c);

    cfg_end(c);
}

static void figure8_unreliable(cfg *c)
{
    int servers = cfg_n(c);
    cfg_begin(c, "Test (3C): Figure 8 (unreliable)");

    cfg_one_int(c, cfg_rand(c) % 10000, 1, true);
    CHECK(c);

    int nup = servers;
    for (int iters = 0; iters < 1000; iters++) {
        if (iters == 200)
            cfg_set_long_reordering(c, true);
        int leader = -1;
        for (int i = 0; i < servers; i++) {
            bool ok = cfg_start_int(c, i, cfg_rand(c) % 10000, NULL, NULL);
            if (ok && cfg_connected(c, i))
                leader = i;
        }
        CHECK(c);

        if (cfg_rand(c) % 1000 < 100) {
            int64_t ms = cfg_rand63(c) % (RAFT_ELECTION_TIMEOUT / 2);
            cfg_sleep_ms(ms);
        } else {
            int64_t ms = cfg_rand63(c) % 13;
            cfg_sleep_ms(ms);
        }

        if (leader != -1 && cfg_rand(c) % 1000 < RAFT_ELECTION_TIMEOUT / 2) {
            cfg_disconnect(c, leader);
            nup -= 1;
        }

        if (nup < 3) {
            int s = cfg_rand(c) % servers;
            if (!cfg_connected(c, s)) {
                cfg_connect(c, s);
                nup += 1;
            }
        }
    }

    for (int i = 0; i < servers; i++)
        if (!cfg_connected(c, i))
            cfg_connect(c, i);

    cfg_one_int(c, cfg_rand(c) % 10000, servers, true);
    CHECK(c);

    cfg_end(c);
}

/* ---- churn ---- */

typedef struct churn_client {
    cfg *c;
    int me;
    pthread_mutex_t *mu;
    bool *stop;
    int64_t *values;
    int nvalues, cap;
} churn_client;

static bool churn_stopped(churn_client *cl)
{
    pthread_mutex_lock(cl->mu);
    bool s = *cl->stop;
    pthread_mutex_unlock(cl->mu);
    return s;
}

static void *churn_thread(void *p)
{
    churn_client *cl = p;
    cfg *c = cl->c;
    int servers = cfg_n(c);
    static const int tos[] = { 10, 20, 50, 100, 200 };
    while (!churn_stopped(cl) && !cfg_failed(c)) {
        int64_t x = cfg_rand63(c);
        int index = -1;
        bool ok = false;
        for (int i = 0; i < servers; i++) {
            /* try them all, maybe one of them is a leader */
            int index1;
            if (cfg_start_int(c, i, x, &index1, NULL)) {
                ok = true;
                index = index1;
            }
        }
        if (ok) {
            /* maybe leader will commit our value, maybe not, but don't wait
             * forever */
            for (size_t k = 0; k < sizeof tos / sizeof tos[0]; k++) {
                cfg_value v;
                int nd = cfg_n_committed(c, index, &v);
                if (nd < 0)
                    return NULL;
                if (nd > 0) {
                    int64_t xx;
                    bool isint = cfg_value_int(&v, &xx);
                    cfg_value_free(&v);
                    if (!isint) {
                        cfg_fail(c, "wrong command type at index %d: not an int", index);
                        return NULL;
                    }
                    if (xx == x) {
                        if (cl->nvalues == cl->cap) {
                            int ncap = cl->cap ? 2 * cl->cap : 64;
                            int64_t *nv = realloc(cl->values, (size_t)ncap * sizeof *nv);
                            if (!nv) {
                                cfg_fail(c, "harness out of memory (client values)");
                                return NULL;
                            }
                            cl->values = nv;
                            cl->cap = ncap;
                        }
                        cl->values[cl->nvalues++] = x;
                    }
                    break;
                }
                cfg_sleep_ms(tos[k]);
            }
        } else {
            cfg_sleep_ms(79 + cl->me * 17);
        }
    }
    return NULL;
}

static void internal_churn(cfg *c, bool unreliable)
{
    int servers = cfg_n(c);
    if (unreliable)
        cfg_begin(c, "Test (3C): unreliable churn");
    else
        cfg_begin(c, "Test (3C): churn");

    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    bool stop = false;

    /* create concurrent clients */
    enum { ncli = 3 };
    churn_client cl[ncli];
    pthread_t th[ncli];
    bool started[ncli];
    for (int i = 0; i < ncli; i++) {
        cl[i] = (churn_client){ .c = c, .me = i, .mu = &mu, .stop = &stop };
        started[i] = pthread_create(&th[i], NULL, churn_thread, &cl[i]) == 0;
        if (!started[i])
            cfg_fail(c, "could not start a client thread");
    }

    for (int iters = 0; iters < 20 && !cfg_failed(c); iters++) {
        if (cfg_rand(c) % 1000 < 200) {
            int i = cfg_rand(c) % servers;
            cfg_disconnect(c, i);
        }

        if (cfg_rand(c) % 1000 < 500) {
            int i = cfg_rand(c) % servers;
            if (!cfg_alive(c, i))
                cfg_start1(c, i);
            cfg_connect(c, i);
        }

        if (cfg_rand(c) % 1000 < 200) {
            int i = cfg_rand(c) % servers;
            if (cfg_alive(c, i))
                cfg_crash1(c, i);
        }

        /* Make crash/restart infrequent enough that the Raft peers can still
         * make progress. The function of the test is to get a crash and
         * restart to be quick enough that Raft peers can't catch up. */
        cfg_sleep_ms((RAFT_ELECTION_TIMEOUT * 7) / 10);
    }

    if (!cfg_failed(c))
        cfg_sleep_ms(RAFT_ELECTION_TIMEOUT);
    cfg_set_unreliable(c, false);
    for (int i = 0; i < servers && !cfg_failed(c); i++) {
        if (!cfg_alive(c, i))
            cfg_start1(c, i);
        cfg_connect(c, i);
    }

    pthread_mutex_lock(&mu);
    stop = true;
    pthread_mutex_unlock(&mu);

    int64_t *values = NULL;
    int nvalues = 0;
    for (int i = 0; i < ncli; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
    }
    for (int i = 0; i < ncli; i++)
        nvalues += cl[i].nvalues;
    values = malloc((size_t)(nvalues ? nvalues : 1) * sizeof *values);
    if (!values)
        cfg_fail(c, "harness out of memory");
    for (int i = 0, k = 0; i < ncli; i++) {
        for (int j = 0; values && j < cl[i].nvalues; j++)
            values[k++] = cl[i].values[j];
        free(cl[i].values);
    }
    pthread_mutex_destroy(&mu);
    if (cfg_failed(c)) {
        free(values);
        CHECK(c);
    }

    cfg_sleep_ms(RAFT_ELECTION_TIMEOUT);

    int last_index = cfg_one_int(c, cfg_rand63(c), servers, true);
    if (cfg_failed(c)) {
        free(values);
        CHECK(c);
    }

    int64_t *really = malloc((size_t)(last_index + 1) * sizeof *really);
    if (!really) {
        free(values);
        FAILF(c, "harness out of memory");
    }
    int nreally = 0;
    for (int index = 1; index <= last_index; index++) {
        cfg_value v;
        if (cfg_wait(c, index, servers, -1, &v) != 1)
            break;
        int64_t vi;
        bool isint = cfg_value_int(&v, &vi);
        cfg_value_free(&v);
        if (!isint) {
            cfg_fail(c, "value at index %d is not an int", index);
            break;
        }
        really[nreally++] = vi;
    }
    for (int k = 0; k < nvalues && !cfg_failed(c); k++) {
        bool found = false;
        for (int j = 0; j < nreally && !found; j++)
            if (values[k] == really[j])
                found = true;
        if (!found)
            cfg_fail(c, "didn't find a value: %lld was seen committed by a client but is "
                     "not in the final log of %d entries", (long long)values[k], last_index);
    }
    free(values);
    free(really);
    CHECK(c);

    cfg_end(c);
}

static void reliable_churn(cfg *c) { internal_churn(c, false); }
static void unreliable_churn(cfg *c) { internal_churn(c, true); }

static void TestPersist13C(void) { run_test(3, false, false, persist1); }
static void TestPersist23C(void) { run_test(5, false, false, persist2); }
static void TestPersist33C(void) { run_test(3, false, false, persist3); }
static void TestFigure83C(void) { run_test(5, false, false, figure8); }
static void TestUnreliableAgree3C(void) { run_test(5, true, false, unreliable_agree); }
static void TestFigure8Unreliable3C(void) { run_test(5, true, false, figure8_unreliable); }
static void TestReliableChurn3C(void) { run_test(5, false, false, reliable_churn); }
static void TestUnreliableChurn3C(void) { run_test(5, true, false, unreliable_churn); }

const raft_test_def tests_3c[] = {
    { "TestPersist13C", TestPersist13C },
    { "TestPersist23C", TestPersist23C },
    { "TestPersist33C", TestPersist33C },
    { "TestFigure83C", TestFigure83C },
    { "TestUnreliableAgree3C", TestUnreliableAgree3C },
    { "TestFigure8Unreliable3C", TestFigure8Unreliable3C },
    { "TestReliableChurn3C", TestReliableChurn3C },
    { "TestUnreliableChurn3C", TestUnreliableChurn3C },
    { NULL, NULL },
};
