/* test_4a.c: stage 4A, the rsm layer: 6.5840's rsm tests, in C.
 *
 * The harness is the state machine: every server runs the submission's rsm
 * (rsm.h) over its Raft, with a counter of the harness's own as the state
 * machine. Requests are one byte: Inc (the counter's new value comes
 * back), Null, and Dec, which only the stuck leader of LeaderPartition4A is
 * ever asked: executing it anywhere fails the test. The counter's snapshot
 * is its value, 8 bytes.
 *
 * Threads: the state machine's callbacks run on the rsm's threads; the
 * tests submit from their own thread and from helper threads they join.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsm.h"
#include "tests.h"

#define NSRV 3
#define NSEC 10          /* a submit attempt gives up after this long */
#define MAXRAFTSTATE 1000
#define NTHREADS 100     /* submits in flight in the shutdown and partition tests */
#define NINC 50          /* Concurrent4A's submitters */

enum { OP_INC = 'I', OP_NULL = 'N', OP_DEC = 'D' };

typedef struct counter_srv {
    cfg *c;
    int me;
    rsm *r;
    pthread_mutex_t mu;
    int64_t n;           /* the counter */
} counter_srv;

/* Concurrent4A tags each attempt at an Inc: an attempt that returned
 * RSM_WRONG_LEADER after a change of term may still commit, and its retry
 * then executes too (the rules allow it). The tags tell such a retry from an
 * entry executed twice. */
#define MAX_TAGS 8192

typedef struct rsm_test {
    int maxraftstate;
    cfg_service svc;
    _Atomic int leader;  /* the server that last executed a submit */
    _Atomic int ops;     /* submits that returned RSM_OK */
    _Atomic bool tagged; /* Incs carry a tag: set before any submit */
    _Atomic int tags;    /* tags given so far */
    int owner[MAX_TAGS];             /* the submitter of each tag's attempt */
    _Atomic bool tag_ok[MAX_TAGS];   /* the attempt returned RSM_OK */
    uint8_t executed[NSRV][MAX_TAGS];   /* times each server executed it (its mu) */
} rsm_test;

static _Thread_local int submitter_no = -1;   /* a submitter thread's number */

static rsm_test T;   /* one test a process */

/* ---- the state machine ---------------------------------------------------- */

static int do_op(void *ctx, const void *req, size_t len, void **out, size_t *out_len)
{
    counter_srv *s = ctx;
    *out = NULL;
    *out_len = 0;
    const uint8_t *b = req;
    int tag = -1;
    if (len == 3 && atomic_load(&T.tagged) && b[0] == OP_INC) {
        tag = b[1] | b[2] << 8;
        if (tag >= atomic_load(&T.tags) || tag >= MAX_TAGS)   /* never given */
            tag = -1;
    }
    char op = len == 1 || tag >= 0 ? (char)b[0] : 0;
    if (op != OP_INC && op != OP_NULL && op != OP_DEC) {
        cfg_fail(s->c, "server %d: do_op got a request of %zu bytes that was never submitted "
                 "(the rsm must hand do_op exactly the bytes given to rsm_submit)", s->me, len);
        return 0;
    }
    if (op == OP_DEC) {
        cfg_fail(s->c, "server %d executed Dec, which only a leader cut off in the minority was "
                 "given: a request submitted to a server that is not the leader of a "
                 "majority must never commit", s->me);
        return 0;
    }
    if (op == OP_NULL)
        return 0;
    int64_t *v = malloc(sizeof *v);
    if (!v)
        return -1;
    pthread_mutex_lock(&s->mu);
    *v = ++s->n;
    if (tag >= 0 && T.executed[s->me][tag] < UINT8_MAX)
        T.executed[s->me][tag]++;
    pthread_mutex_unlock(&s->mu);
    *out = v;
    *out_len = sizeof *v;
    return 0;
}

static int snapshot(void *ctx, void **out, size_t *out_len)
{
    counter_srv *s = ctx;
    int64_t *v = malloc(sizeof *v);
    if (!v)
        return -1;
    pthread_mutex_lock(&s->mu);
    *v = s->n;
    pthread_mutex_unlock(&s->mu);
    *out = v;
    *out_len = sizeof *v;
    return 0;
}

static int restore(void *ctx, const void *snap, size_t len)
{
    counter_srv *s = ctx;
    if (len != sizeof(int64_t)) {
        cfg_fail(s->c, "server %d: restore got %zu bytes, not a snapshot the counter made "
                 "(%zu bytes)", s->me, len, sizeof(int64_t));
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    memcpy(&s->n, snap, sizeof s->n);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* ---- the service of each server (cfg_service) ------------------------------ */

static void *srv_make(void *ctx, cfg *c, labrpc_end **ends, int n, int me, persister *ps,
                      raft **rf)
{
    rsm_test *t = ctx;
    counter_srv *s = calloc(1, sizeof *s);
    if (!s) {
        cfg_fail(c, "harness out of memory");
        return NULL;
    }
    s->c = c;
    s->me = me;
    pthread_mutex_init(&s->mu, NULL);
    rsm_sm sm = { .ctx = s, .do_op = do_op, .snapshot = snapshot, .restore = restore };
    s->r = rsm_make(ends, n, me, ps, t->maxraftstate, &sm);
    if (!s->r) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    *rf = rsm_raft(s->r);
    return s;
}

static void srv_kill(void *ctx, void *obj)
{
    (void)ctx;
    rsm_kill(((counter_srv *)obj)->r);
}

static void srv_free(void *ctx, void *obj)
{
    (void)ctx;
    counter_srv *s = obj;
    rsm_free(s->r);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static cfg *make_cluster(void *arg)
{
    rsm_test *t = &T;
    memset(t, 0, sizeof *t);
    t->maxraftstate = *(int *)arg;
    t->svc = (cfg_service){ .api = "rsm", .ctx = t, .make = srv_make, .kill = srv_kill,
                            .free = srv_free };
    return cfg_make_service(NSRV, false, &t->svc);
}

/* ---- helpers (6.5840's) ---------------------------------------------------- */

static const char *op_name(char op)
{
    return op == OP_INC ? "Inc" : op == OP_DEC ? "Dec" : "Null";
}

/* Submits op to server i if it runs: RSM_OK with *n the counter for Inc. */
static int submit_to(cfg *c, int i, char op, int64_t *n)
{
    counter_srv *s = cfg_acquire_service(c, i);
    if (!s)
        return -1;
    uint8_t cmd[3] = { (uint8_t)op };
    size_t cmd_len = 1;
    int tag = -1;
    if (atomic_load(&T.tagged) && op == OP_INC) {
        tag = atomic_fetch_add(&T.tags, 1);
        if (tag >= MAX_TAGS) {
            cfg_release_service(c, i);
            cfg_fail(c, "harness: more than %d attempts at an Inc", MAX_TAGS);
            return -1;
        }
        T.owner[tag] = submitter_no;
        cmd[1] = (uint8_t)tag;
        cmd[2] = (uint8_t)(tag >> 8);
        cmd_len = 3;
    }
    void *out = NULL;
    size_t len = 0;
    rsm_err e = rsm_submit(s->r, cmd, cmd_len, &out, &len);
    cfg_release_service(c, i);
    if (tag >= 0 && e == RSM_OK)
        atomic_store(&T.tag_ok[tag], true);
    if (e == RSM_OK && op == OP_INC) {
        if (len != sizeof(int64_t) || !out) {
            cfg_fail(c, "server %d: rsm_submit(Inc) returned RSM_OK with a result of %zu bytes, "
                     "not the %zu bytes do_op gave", i, len, sizeof(int64_t));
            e = RSM_WRONG_LEADER;
        } else {
            memcpy(n, out, sizeof *n);
        }
    } else if (e != RSM_OK && e != RSM_WRONG_LEADER) {
        cfg_fail(c, "server %d: rsm_submit returned %d, neither RSM_OK nor RSM_WRONG_LEADER",
                 i, (int)e);
    } else if (e != RSM_OK && out) {
        cfg_fail(c, "server %d: rsm_submit returned RSM_WRONG_LEADER with a result", i);
    }
    free(out);
    if (e == RSM_OK)
        atomic_fetch_add(&T.ops, 1);
    return e == RSM_OK ? 0 : -1;
}

/* 6.5840's onePartition: the connected servers (those with in[i], if in is
 * given) in turn from the last leader, until one executes op; after NSEC
 * seconds, a failure if must, else false. */
static bool one_partition(cfg *c, const bool *in, char op, int64_t *n, bool must)
{
    double t0 = cfg_now();
    while (cfg_now() - t0 < NSEC * cfg_time_factor() && !cfg_failed(c)) {
        int index = atomic_load(&T.leader);
        for (int k = 0; k < NSRV; k++) {
            if (cfg_connected(c, index) && (!in || in[index]) && submit_to(c, index, op, n) == 0) {
                atomic_store(&T.leader, index);
                return true;
            }
            index = (index + 1) % NSRV;
        }
        cfg_sleep_ms(50);
    }
    if (must)
        cfg_fail(c, "one(%s) failed to reach agreement in %d s", op_name(op), NSEC);
    return false;
}

static int64_t one_inc(cfg *c)
{
    int64_t n = -1;
    one_partition(c, NULL, OP_INC, &n, true);
    return n;
}

static int64_t counter_of(cfg *c, int i)
{
    counter_srv *s = cfg_acquire_service(c, i);
    if (!s)
        return -1;
    pthread_mutex_lock(&s->mu);
    int64_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    cfg_release_service(c, i);
    return n;
}

/* At least nsrv servers' counters reach v: 30 looks, 10 ms apart at first,
 * doubling to 1 s (about 24 s in all). Under valgrind the time factor adds
 * looks 1 s apart, as it stretches the harness's other deadlines. */
static void check_counter(cfg *c, int64_t v, int nsrv)
{
    int64_t to = 10, have[NSRV];
    int count = 0, looks = 30 + 24 * (cfg_time_factor() - 1);
    for (int iters = 0; iters < looks; iters++) {
        count = 0;
        for (int i = 0; i < NSRV; i++)
            count += (have[i] = counter_of(c, i)) == v;
        if (count >= nsrv)
            return;
        cfg_sleep_ms(to);
        if (to < 1000)
            to *= 2;
    }
    char seen[64] = "";
    for (int i = 0, at = 0; i < NSRV && at < (int)sizeof seen; i++)
        at += snprintf(seen + at, sizeof seen - (size_t)at, "%s%" PRId64, i ? ", " : "",
                       have[i]);
    cfg_fail(c, "check_counter: only %d servers have %" PRId64 " instead of %d (the "
             "counters: %s; -1: not running)", count, v, nsrv, seen);
}

static void shutdown_all(cfg *c)
{
    for (int i = 0; i < NSRV; i++)
        cfg_crash1(c, i);
}

static void start_all(cfg *c)
{
    for (int i = 0; i < NSRV; i++)
        if (!cfg_start1(c, i))
            return;
    for (int i = 0; i < NSRV; i++)
        cfg_connect(c, i);
}

typedef struct submitter {
    pthread_t th;
    cfg *c;
    char op;
    int no;              /* its number, for the tags */
    int server;          /* -1: any, by one_partition */
    _Atomic bool done;
    _Atomic int result;  /* rsm_err of a submit to server */
    double returned;     /* cfg_now() at return */
} submitter;

static void *submit_thread(void *arg)
{
    submitter *s = arg;
    submitter_no = s->no;
    int64_t n;
    if (s->server < 0)
        one_partition(s->c, NULL, s->op, &n, false);
    else
        atomic_store(&s->result, submit_to(s->c, s->server, s->op, &n) == 0 ? RSM_OK
                                                                           : RSM_WRONG_LEADER);
    s->returned = cfg_now();
    atomic_store(&s->done, true);
    return NULL;
}

/* Starts n submitters; false (failure recorded) if a thread could not start:
 * those started are joined. */
static bool start_submitters(cfg *c, submitter *s, int n, char op, int server)
{
    for (int k = 0; k < n; k++) {
        s[k] = (submitter){ .c = c, .op = op, .no = k, .server = server };
        if (pthread_create(&s[k].th, NULL, submit_thread, &s[k]) != 0) {
            cfg_fail(c, "harness could not start a thread");
            for (int j = 0; j < k; j++)
                pthread_join(s[j].th, NULL);
            return false;
        }
    }
    return true;
}

/* Waits up to limit_s for every submitter to return, then joins them all
 * (they end within NSEC anyway). */
static void join_submitters(cfg *c, submitter *s, int n, int limit_s, const char *what)
{
    double t0 = cfg_now();
    int left = n;
    while (left > 0 && cfg_now() - t0 < limit_s * cfg_time_factor()) {
        left = 0;
        for (int k = 0; k < n; k++)
            left += !atomic_load(&s[k].done);
        if (left > 0)
            cfg_sleep_ms(10);
    }
    if (left > 0)
        cfg_fail(c, "%d of %d submits %s had not returned after %d s", left, n, what, limit_s);
    for (int k = 0; k < n; k++)
        pthread_join(s[k].th, NULL);
}

/* ---- the tests -------------------------------------------------------------- */

static void basic(cfg *c)
{
    cfg_begin(c, "Test: rsm basic (4A)");
    for (int i = 0; i < 10; i++) {
        int64_t n = one_inc(c);
        CHECK(c);
        if (n != i + 1)
            FAILF(c, "Inc number %d returned %" PRId64 ", expected %d", i + 1, n, i + 1);
        check_counter(c, n, NSRV);
        CHECK(c);
    }
    cfg_end_ops(c, T.ops);
}

/* Concurrent4A's check, once every submitter has returned: each server
 * executed no attempt twice, every attempt that returned RSM_OK, at least
 * one attempt of each submitter, and the same attempts as the others. The
 * counters must agree: 50, or more if a retry executed beside its attempt. */
static void check_tags(cfg *c)
{
    int tags = atomic_load(&T.tags);
    if (tags > MAX_TAGS)
        tags = MAX_TAGS;
    int64_t v = 0;
    for (int i = 0; i < NSRV; i++) {
        int64_t n = counter_of(c, i);
        v = n > v ? n : v;
    }
    check_counter(c, v < NINC ? NINC : v, NSRV);
    for (int i = 0; i < NSRV && !cfg_failed(c); i++) {
        counter_srv *srv = cfg_acquire_service(c, i);
        if (!srv) {
            cfg_fail(c, "server %d is not running", i);
            break;
        }
        bool done[NINC] = { false };
        const char *why = NULL;   /* failed outside srv->mu */
        pthread_mutex_lock(&srv->mu);
        for (int t = 0; t < tags && !why; t++) {
            int e = T.executed[i][t], owner = T.owner[t];
            if (e > 1)
                why = "executed one Inc's log entry more than once (do_op runs once an entry)";
            else if (e == 0 && atomic_load(&T.tag_ok[t]))
                why = "never executed an Inc whose submit had returned RSM_OK";
            else if (i > 0 && (e > 0) != (T.executed[0][t] > 0))
                why = "executed other Incs than server 0";
            if (e > 0 && owner >= 0 && owner < NINC)
                done[owner] = true;
        }
        pthread_mutex_unlock(&srv->mu);
        cfg_release_service(c, i);
        if (why)
            cfg_fail(c, "server %d %s", i, why);
        for (int k = 0; k < NINC && !cfg_failed(c); k++)
            if (!done[k])
                cfg_fail(c, "server %d never executed submitter %d's Inc (every attempt "
                         "failed)", i, k);
    }
}

static void concurrent(cfg *c)
{
    cfg_begin(c, "Test: concurrent submit (4A)");
    atomic_store(&T.tagged, true);
    submitter s[NINC];
    if (!start_submitters(c, s, NINC, OP_INC, -1))
        FAILF(c, "harness could not start its threads");
    join_submitters(c, s, NINC, NSEC + 1, "of Inc");
    CHECK(c);
    check_tags(c);
    CHECK(c);
    cfg_end_ops(c, T.ops);
}

static void leader_failure(cfg *c)
{
    cfg_begin(c, "Test: leader failure (4A)");
    int64_t n = one_inc(c);
    CHECK(c);
    check_counter(c, n, NSRV);
    CHECK(c);
    int l = atomic_load(&T.leader);
    cfg_disconnect(c, l);
    n = one_inc(c);
    CHECK(c);
    check_counter(c, n, NSRV - 1);
    CHECK(c);
    cfg_connect(c, l);
    check_counter(c, n, NSRV);
    CHECK(c);
    cfg_end_ops(c, T.ops);
}

static void leader_partition(cfg *c)
{
    cfg_begin(c, "Test: leader partition (4A)");
    int64_t n = one_inc(c);
    CHECK(c);
    check_counter(c, n, NSRV);
    CHECK(c);
    int l = atomic_load(&T.leader);
    int side[NSRV];
    bool majority[NSRV];
    for (int i = 0; i < NSRV; i++) {
        side[i] = i == l;
        majority[i] = i != l;
    }
    cfg_partition(c, side);
    submitter s[NTHREADS];
    if (!start_submitters(c, s, NTHREADS, OP_DEC, l))
        FAILF(c, "harness could not start its threads");
    int64_t rep = -1;
    one_partition(c, majority, OP_INC, &rep, true);
    double t0 = cfg_now();
    while (!cfg_failed(c) && cfg_now() - t0 < 1.0) {
        for (int k = 0; k < NTHREADS; k++)
            if (atomic_load(&s[k].done) && atomic_load(&s[k].result) == RSM_OK)
                cfg_fail(c, "rsm_submit(Dec) on server %d, the old leader cut off in the "
                         "minority, returned RSM_OK", l);
        cfg_sleep_ms(10);
    }
    for (int i = 0; i < NSRV; i++)
        cfg_connect(c, i);
    double healed = cfg_now();
    join_submitters(c, s, NTHREADS, NSEC + 1, "to the old leader");
    CHECK(c);
    for (int k = 0; k < NTHREADS; k++) {
        if (atomic_load(&s[k].result) == RSM_OK)
            FAILF(c, "rsm_submit(Dec) on server %d, the old leader cut off in the minority, "
                  "returned RSM_OK", l);
        if (s[k].returned - healed > 1.0 * cfg_time_factor())
            FAILF(c, "a submit stuck on the old leader returned %.1f s after the partition "
                  "healed: it must notice the new term (or another request at its index) "
                  "within 1 s", s[k].returned - healed);
    }
    check_counter(c, rep, NSRV);
    CHECK(c);
    cfg_end_ops(c, T.ops);
}

/* 100 Incs, all servers shut down and restarted: replayed from the log. */
static void inc_restart(cfg *c, int ninc)
{
    for (int i = 0; i < ninc; i++) {
        int64_t n = one_inc(c);
        CHECK(c);
        if (n != i + 1)
            FAILF(c, "Inc number %d returned %" PRId64 ", expected %d", i + 1, n, i + 1);
    }
    check_counter(c, ninc, NSRV);
    CHECK(c);
    shutdown_all(c);
    cfg_sleep_ms(1000);
    start_all(c);
    CHECK(c);
    int64_t n = one_inc(c);
    CHECK(c);
    if (n != ninc + 1)
        FAILF(c, "after a restart of every server, Inc returned %" PRId64 ", expected %d "
              "(the state machine must be rebuilt from the snapshot and the log)", n, ninc + 1);
}

static void restart_replay(cfg *c)
{
    cfg_begin(c, "Test: restart (4A)");
    inc_restart(c, 100);
    CHECK(c);
    cfg_sleep_ms(1000);
    check_counter(c, 101, NSRV);
    CHECK(c);
    cfg_end_ops(c, T.ops);
}

/* NTHREADS Null submits in flight while every server shuts down: each
 * returns (RSM_OK or not) within NSEC + 1 s. Unlike 6.5840's, where the
 * submits are mostly between two tries when the servers go, they surely
 * wait inside the rsm here: they go to the leader, cut off from the rest
 * so that nothing commits. (An Inc first finds the leader, and keeps an
 * rsm that executes nothing from passing.) */
static void shutdown_in_flight(cfg *c)
{
    one_inc(c);
    CHECK(c);
    int l = atomic_load(&T.leader), side[NSRV];
    for (int i = 0; i < NSRV; i++)
        side[i] = i == l;
    cfg_partition(c, side);
    submitter s[NTHREADS];
    if (!start_submitters(c, s, NTHREADS, OP_NULL, l))
        FAILF(c, "harness could not start its threads");
    cfg_sleep_ms(20);
    shutdown_all(c);
    join_submitters(c, s, NTHREADS, NSEC + 1, "of Null in flight at shutdown");
}

static void shutdown_test(cfg *c)
{
    cfg_begin(c, "Test: shutdown (4A)");
    shutdown_in_flight(c);
    CHECK(c);
    cfg_end_ops(c, T.ops);
}

static void restart_submit(cfg *c)
{
    cfg_begin(c, "Test: restart with submits in flight (4A)");
    inc_restart(c, 100);
    CHECK(c);
    shutdown_in_flight(c);
    CHECK(c);
    start_all(c);
    CHECK(c);
    int64_t n = one_inc(c);
    CHECK(c);
    check_counter(c, n, NSRV);
    CHECK(c);
    cfg_end_ops(c, T.ops);
}

static void snapshot_test(cfg *c)
{
    enum { N = 100 };
    cfg_begin(c, "Test: snapshot (4A)");
    for (int i = 0; i < N; i++) {
        one_inc(c);
        CHECK(c);
    }
    check_counter(c, N, NSRV);
    CHECK(c);
    size_t sz = cfg_log_size(c);
    if (sz > 2 * MAXRAFTSTATE)
        FAILF(c, "Raft's persisted state is %zu bytes, over 2 x maxraftstate (%d): the rsm "
              "must snapshot as it nears maxraftstate", sz, MAXRAFTSTATE);
    shutdown_all(c);
    start_all(c);
    CHECK(c);
    int64_t n = one_inc(c);
    CHECK(c);
    if (n != N + 1)
        FAILF(c, "after a restart from the snapshot, Inc returned %" PRId64 ", expected %d",
              n, N + 1);
    check_counter(c, N + 1, NSRV);
    CHECK(c);
    cfg_end_ops(c, T.ops);
}

static int no_snapshots = -1, snapshots = MAXRAFTSTATE;

static void TestBasic4A(void) { run_test_on(make_cluster, &no_snapshots, basic); }
static void TestConcurrent4A(void) { run_test_on(make_cluster, &no_snapshots, concurrent); }
static void TestLeaderFailure4A(void) { run_test_on(make_cluster, &no_snapshots, leader_failure); }
static void TestLeaderPartition4A(void) { run_test_on(make_cluster, &no_snapshots, leader_partition); }
static void TestRestartReplay4A(void) { run_test_on(make_cluster, &no_snapshots, restart_replay); }
static void TestShutdown4A(void) { run_test_on(make_cluster, &no_snapshots, shutdown_test); }
static void TestRestartSubmit4A(void) { run_test_on(make_cluster, &no_snapshots, restart_submit); }
static void TestSnapshot4A(void) { run_test_on(make_cluster, &snapshots, snapshot_test); }

const raft_test_def tests_4a[] = {
    { "TestBasic4A", TestBasic4A },
    { "TestConcurrent4A", TestConcurrent4A },
    { "TestLeaderFailure4A", TestLeaderFailure4A },
    { "TestLeaderPartition4A", TestLeaderPartition4A },
    { "TestRestartReplay4A", TestRestartReplay4A },
    { "TestShutdown4A", TestShutdown4A },
    { "TestRestartSubmit4A", TestRestartSubmit4A },
    { "TestSnapshot4A", TestSnapshot4A },
    { NULL, NULL },
};
