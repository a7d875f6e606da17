/* test_4b.c: stage 4B, the key/value service without snapshots: the 14
 * tests of 6.5840's 2024 kvraft part A, in C (kvh.h is the harness). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvh.h"
#include "tests.h"

#define ELECTION_TIMEOUT_MS 1000

/* ---- one key, five clients ------------------------------------------------ */

typedef struct one_key_client {
    pthread_t th;
    cfg *c;
    int me;
} one_key_client;

enum { ONE_KEY_CLIENTS = 5, ONE_KEY_UPTO = 10 };

static void *one_key_thread(void *arg)
{
    one_key_client *k = arg;
    kvh_clerk *ck = kvh_clerk_make_as(k->c, NULL, 0, k->me);
    if (!ck)
        return NULL;
    for (int n = 0; n < ONE_KEY_UPTO && !cfg_failed(k->c); n++) {
        char v[64];
        snprintf(v, sizeof v, "x %d %d y", k->me, n);
        if (!kvh_append(k->c, ck, "k", v, -1))
            break;
    }
    kvh_clerk_free(ck);
    return NULL;
}

static void unreliable_one_key(cfg *c)
{
    kvh_clerk *ck = kvh_clerk_make_as(c, NULL, 0, ONE_KEY_CLIENTS);
    if (!ck)
        return;
    cfg_begin(c, "Test: concurrent append to same key, unreliable (4B)");
    kvh_put(c, ck, "k", "", -1);
    one_key_client cl[ONE_KEY_CLIENTS];
    int started = 0;
    for (int i = 0; i < ONE_KEY_CLIENTS && !cfg_failed(c); i++) {
        cl[i] = (one_key_client){ .c = c, .me = i };
        if (pthread_create(&cl[i].th, NULL, one_key_thread, &cl[i]) != 0) {
            cfg_fail(c, "harness could not start a client thread");
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++)
        pthread_join(cl[i].th, NULL);
    char *v = cfg_failed(c) ? NULL : kvh_get(c, ck, "k", -1);
    for (int i = 0; v && i < ONE_KEY_CLIENTS && !cfg_failed(c); i++)
        kvh_check_appends(c, i, v, ONE_KEY_UPTO);
    free(v);
    kvh_clerk_free(ck);
    cfg_end_ops(c, kvh_ops());
}

/* ---- one partition: progress in the majority only ------------------------- */

typedef struct minority_op {
    pthread_t th;
    cfg *c;
    kvh_clerk *ck;
    bool put;
    _Atomic bool done;
} minority_op;

static void *minority_thread(void *arg)
{
    minority_op *m = arg;
    if (m->put) {
        kvh_put(m->c, m->ck, "1", "15", -1);
    } else {
        char *v = kvh_get(m->c, m->ck, "1", -1);
        free(v);
    }
    atomic_store(&m->done, true);
    return NULL;
}

/* Waits up to ms for m to finish; true if it did. */
static bool wait_done(minority_op *m, int ms)
{
    for (int waited = 0; waited < ms; waited += 10) {
        if (atomic_load(&m->done))
            return true;
        cfg_sleep_ms(10);
    }
    return atomic_load(&m->done);
}

static void one_partition(cfg *c)
{
    int n = cfg_n(c);
    kvh_clerk *ck = kvh_clerk_make(c, NULL, 0);
    if (!ck)
        return;
    kvh_put(c, ck, "1", "13", -1);
    cfg_begin(c, "Test: progress in majority (4B)");
    /* the leader goes to the minority: p1 the majority, p2 the rest */
    int l = cfg_check_one_leader(c), p1[8], p2[8], n1 = n / 2 + 1, n2 = n / 2, j = 0;
    int side[8];
    kvh_clerk *ckp1 = NULL, *ckp2a = NULL, *ckp2b = NULL;
    minority_op put = { .c = c, .put = true }, get = { .c = c, .put = false };
    bool put_started = false, get_started = false;
    if (cfg_failed(c))
        goto out;
    for (int i = 0; i < n; i++) {
        if (i == l)
            continue;
        if (j < n1)
            p1[j] = i;
        else
            p2[j - n1] = i;
        j++;
    }
    p2[n2 - 1] = l;
    for (int i = 0; i < n; i++)
        side[i] = 1;
    for (int i = 0; i < n1; i++)
        side[p1[i]] = 0;
    cfg_partition(c, side);
    ckp1 = kvh_clerk_make(c, p1, n1);
    ckp2a = kvh_clerk_make(c, p2, n2);
    ckp2b = kvh_clerk_make(c, p2, n2);
    if (!ckp1 || !ckp2a || !ckp2b)
        goto out;
    kvh_put(c, ckp1, "1", "14", -1);
    kvh_check(c, ckp1, "1", "14");
    if (!cfg_end_ops(c, kvh_ops()))
        goto out;

    cfg_begin(c, "Test: no progress in minority (4B)");
    put.ck = ckp2a;
    get.ck = ckp2b;
    put_started = pthread_create(&put.th, NULL, minority_thread, &put) == 0;
    get_started = put_started && pthread_create(&get.th, NULL, minority_thread, &get) == 0;
    if (!put_started || !get_started) {
        cfg_fail(c, "harness could not start a client thread");
        goto out;
    }
    cfg_sleep_ms(1000);
    if (atomic_load(&put.done))
        cfg_fail(c, "a Put sent to the minority (the old leader's side) completed");
    else if (atomic_load(&get.done))
        cfg_fail(c, "a Get sent to the minority (the old leader's side) completed: a leader "
                 "cut off from the majority must not answer reads from its own state");
    if (cfg_failed(c))
        goto heal;
    kvh_check(c, ckp1, "1", "14");
    kvh_put(c, ckp1, "1", "16", -1);
    kvh_check(c, ckp1, "1", "16");
    if (!cfg_end_ops(c, kvh_ops()))
        goto heal;

    cfg_begin(c, "Test: completion after heal (4B)");
heal:
    for (int i = 0; i < n; i++)
        cfg_connect(c, i);
    kvh_clerk_connect(c, ckp2a, NULL, 0);
    kvh_clerk_connect(c, ckp2b, NULL, 0);
    if (!cfg_failed(c)) {
        cfg_sleep_ms(ELECTION_TIMEOUT_MS);
        /* 6.5840's test never waits for the Get (its select has a default);
         * here both must complete within 3 s of the healed election. */
        if (!wait_done(&put, 3000))
            cfg_fail(c, "the Put sent to the minority did not complete within 3 s of the "
                     "partition healing");
        else if (!wait_done(&get, 3000))
            cfg_fail(c, "the Get sent to the minority did not complete within 3 s of the "
                     "partition healing");
    }
    /* A clerk that never returns keeps this join waiting: the watchdog then
     * ends the test at its limit, with the failure recorded above. */
    if (put_started)
        pthread_join(put.th, NULL);
    if (get_started)
        pthread_join(get.th, NULL);
    if (!cfg_failed(c)) {
        kvh_check(c, ck, "1", "15");
        cfg_end_ops(c, kvh_ops());
    }
out:
    kvh_clerk_free(ckp1);
    kvh_clerk_free(ckp2a);
    kvh_clerk_free(ckp2b);
    kvh_clerk_free(ck);
}

/* ---- the tests -------------------------------------------------------------- */

static void speed_body(cfg *c) { kvh_speed(c, "4B"); }

static void generic(int clients, int servers, bool unreliable, bool crash, bool partitions,
                    bool random_keys)
{
    kvh_run_generic("4B", -1, clients, servers, unreliable, crash, partitions, random_keys);
}

static void run(int servers, bool unreliable, test_body body)
{
    kvh_run(servers, unreliable, -1, body);
}

static void TestBasic4B(void) { generic(1, 5, false, false, false, false); }
static void TestSpeed4B(void) { run(3, false, speed_body); }
static void TestConcurrent4B(void) { generic(5, 5, false, false, false, false); }
static void TestUnreliable4B(void) { generic(5, 5, true, false, false, false); }
static void TestUnreliableOneKey4B(void) { run(3, true, unreliable_one_key); }
static void TestOnePartition4B(void) { run(5, false, one_partition); }
static void TestManyPartitionsOneClient4B(void) { generic(1, 5, false, false, true, false); }
static void TestManyPartitionsManyClients4B(void) { generic(5, 5, false, false, true, false); }
static void TestPersistOneClient4B(void) { generic(1, 5, false, true, false, false); }
static void TestPersistConcurrent4B(void) { generic(5, 5, false, true, false, false); }
static void TestPersistConcurrentUnreliable4B(void) { generic(5, 5, true, true, false, false); }
static void TestPersistPartition4B(void) { generic(5, 5, false, true, true, false); }
static void TestPersistPartitionUnreliable4B(void) { generic(5, 5, true, true, true, false); }
static void TestPersistPartitionUnreliableLinearizable4B(void) { generic(15, 7, true, true, true, true); }

const raft_test_def tests_4b[] = {
    { "TestBasic4B", TestBasic4B },
    { "TestSpeed4B", TestSpeed4B },
    { "TestConcurrent4B", TestConcurrent4B },
    { "TestUnreliable4B", TestUnreliable4B },
    { "TestUnreliableOneKey4B", TestUnreliableOneKey4B },
    { "TestOnePartition4B", TestOnePartition4B },
    { "TestManyPartitionsOneClient4B", TestManyPartitionsOneClient4B },
    { "TestManyPartitionsManyClients4B", TestManyPartitionsManyClients4B },
    { "TestPersistOneClient4B", TestPersistOneClient4B },
    { "TestPersistConcurrent4B", TestPersistConcurrent4B },
    { "TestPersistConcurrentUnreliable4B", TestPersistConcurrentUnreliable4B },
    { "TestPersistPartition4B", TestPersistPartition4B },
    { "TestPersistPartitionUnreliable4B", TestPersistPartitionUnreliable4B },
    { "TestPersistPartitionUnreliableLinearizable4B", TestPersistPartitionUnreliableLinearizable4B },
    { NULL, NULL },
};
