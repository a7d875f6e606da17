/* kvh.c: the key/value tests' harness (see kvh.h). */
#include "kvh.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvraft.h"
#include "history.h"
#include "lincheck.h"
#include "trace.h"

#define ELECTION_TIMEOUT_MS 1000
#define END_NAME_LEN 20
#define MAX_CLIENTS 32
/* The history's bounds. Paced (pace()), a test's clients start about 100
 * ops a second in all, and the reference records at most ~1,700 in a test;
 * a million is a guard that no test reaches. The bytes are another matter:
 * each Get keeps the value it returned, and a clerk may return values of
 * any size. */
#define KVH_MAX_OPS 1000000u
/* A history is printed for the grader to save (grade.c: save_history)
 * only up to this many bytes of keys and values: escaped, at most 4 times
 * as many, well under the grader's output limit. */
#define KVH_MAX_PRINTED_BYTES ((size_t)64 << 20)

struct kvh_clerk {
    cfg *c;
    kvclerk *ck;
    labrpc_end **ends;   /* [k]: to server order[k] */
    int *order;
    int serial;          /* the trace's client lane: c<serial> */
};

/* One test a process: the harness's state. */
static struct {
    kvh_params p;
    cfg_service svc;
    pthread_mutex_t mu;          /* the history */
    lincheck_history *history;
    size_t recorded, bytes;      /* ops and key+value bytes in it */
    struct { int serial, n; } *lane;   /* [op]: its clerk and number in the trace */
    size_t lane_cap;
    double t0;
    _Atomic int ops;
    _Atomic int clerks;          /* made so far */
    _Atomic int trace_ops;       /* the trace's op numbers */
} H = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* ---- the servers ------------------------------------------------------------ */

static void *srv_make(void *ctx, cfg *c, labrpc_end **ends, int n, int me, persister *ps,
                      raft **rf)
{
    (void)ctx;
    (void)c;
    kvserver *kv = kvserver_make(ends, n, me, ps, H.p.maxraftstate);
    if (kv)
        *rf = kvserver_raft(kv);
    return kv;
}

static int srv_add(void *ctx, void *obj, labrpc_server *srv)
{
    cfg *c = ctx;
    labrpc_service *svc = labrpc_service_new("KV", obj);
    if (!svc) {
        cfg_fail(c, "harness out of memory (labrpc service)");
        return -1;
    }
    int r = kvserver_register(obj, svc);
    if (labrpc_server_add_service(srv, svc) != 0) {
        cfg_fail(c, "labrpc_server_add_service failed for the KV service");
        return -1;
    }
    if (r != 0) {
        cfg_fail(c, "kvserver_register returned %d", r);
        return -1;
    }
    return 0;
}

static void srv_kill(void *ctx, void *obj)
{
    (void)ctx;
    kvserver_kill(obj);
}

static void srv_free(void *ctx, void *obj)
{
    (void)ctx;
    kvserver_free(obj);
}

static void free_history(void)
{
    lincheck_history_free(H.history);
    H.history = NULL;
    free(H.lane);
    H.lane = NULL;
}

cfg *kvh_make_cluster(void *arg)
{
    H.p = *(const kvh_params *)arg;
    H.history = lincheck_history_new();
    if (H.history)
        atexit(free_history);   /* one test a process: freed at its end */
    if (!H.history) {
        fprintf(stderr, "kvh: out of memory\n");
        return NULL;
    }
    H.t0 = cfg_now();
    H.svc = (cfg_service){ .api = "kvserver", .make = srv_make, .add_services = srv_add,
                           .kill = srv_kill, .free = srv_free };
    /* srv_add records failures in the cfg: its ctx is set once made */
    cfg *c = cfg_make_service(H.p.servers, H.p.unreliable, &H.svc);
    H.svc.ctx = c;
    return c;
}

/* ---- clerks ----------------------------------------------------------------- */

kvh_clerk *kvh_clerk_make(cfg *c, const int *to, int nto)
{
    return kvh_clerk_make_as(c, to, nto, -1);
}

kvh_clerk *kvh_clerk_make_as(cfg *c, const int *to, int nto, int lane)
{
    int n = cfg_n(c);
    kvh_clerk *k = calloc(1, sizeof *k);
    if (k) {
        k->ends = calloc((size_t)n, sizeof *k->ends);
        k->order = calloc((size_t)n, sizeof *k->order);
    }
    if (!k || !k->ends || !k->order) {
        cfg_fail(c, "harness out of memory (clerk)");
        kvh_clerk_free(k);
        return NULL;
    }
    k->c = c;
    k->serial = lane >= 0 ? lane : atomic_fetch_add(&H.clerks, 1);
    for (int i = 0; i < n; i++)
        k->order[i] = i;
    for (int i = n - 1; i > 0; i--) {    /* the clerk must not rely on ids */
        int j = cfg_rand(c) % (i + 1), t = k->order[i];
        k->order[i] = k->order[j];
        k->order[j] = t;
    }
    for (int i = 0; i < n; i++) {
        char name[END_NAME_LEN + 1];
        for (int tries = 0; tries < 20 && !k->ends[i]; tries++) {
            for (int x = 0; x < END_NAME_LEN; x++)
                name[x] = (char)('a' + cfg_rand(c) % 26);
            name[END_NAME_LEN] = '\0';
            k->ends[i] = labrpc_net_make_end(cfg_net(c), name);
        }
        if (k->ends[i])
            labrpc_end_tag(k->ends[i], CFG_TAG_CLIENT + k->serial);
        if (!k->ends[i]) {
            cfg_fail(c, "labrpc_net_make_end failed for a clerk (out of memory?)");
            kvh_clerk_free(k);
            return NULL;
        }
        labrpc_net_connect(cfg_net(c), k->ends[i], cfg_server_name(c, k->order[i]));
    }
    kvh_clerk_connect(c, k, to, nto);
    k->ck = kvclerk_make(k->ends, n);
    if (!k->ck) {
        cfg_fail(c, "kvclerk_make returned NULL");
        kvh_clerk_free(k);
        return NULL;
    }
    return k;
}

void kvh_clerk_connect(cfg *c, kvh_clerk *k, const int *to, int nto)
{
    int n = cfg_n(c);
    for (int i = 0; i < n; i++) {
        bool on = !to;
        for (int x = 0; to && x < nto; x++)
            on |= to[x] == k->order[i];
        labrpc_net_enable(cfg_net(c), k->ends[i], on);
    }
}

void kvh_clerk_free(kvh_clerk *k)
{
    if (!k)
        return;
    if (k->ck)
        kvclerk_free(k->ck);
    for (int i = 0; k->ends && i < cfg_n(k->c); i++)
        if (k->ends[i])
            labrpc_net_enable(cfg_net(k->c), k->ends[i], false);   /* the net owns them */
    free(k->ends);
    free(k->order);
    free(k);
}

/* ---- operations -------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    double t = cfg_now() - H.t0;
    return t <= 0 ? 0 : (uint64_t)(t * 1e9);
}

static void record(cfg *c, const kvh_clerk *k, int op, int client, lincheck_kind kind,
                   const char *key, const char *value, uint64_t call, uint64_t ret)
{
    atomic_fetch_add(&H.ops, 1);
    if (client < 0)
        return;
    pthread_mutex_lock(&H.mu);
    bool full = H.recorded >= KVH_MAX_OPS;
    int r = 0;
    if (!full && H.recorded == H.lane_cap) {
        size_t cap = H.lane_cap ? 2 * H.lane_cap : 1024;
        void *grown = realloc(H.lane, cap * sizeof *H.lane);
        if (grown) {
            H.lane = grown;
            H.lane_cap = cap;
        } else {
            r = LINCHECK_ENOMEM;
        }
    }
    if (!full && r == 0) {
        r = lincheck_add_str(H.history, (uint32_t)client, kind, key, value, call, ret);
        if (r == 0) {
            H.lane[H.recorded].serial = k->serial;
            H.lane[H.recorded].n = op;
            H.recorded++;
            H.bytes += strlen(key) + strlen(value);
        }
    }
    pthread_mutex_unlock(&H.mu);
    if (full)
        cfg_fail(c, "harness: the history is full: %u operations in %.1f s", KVH_MAX_OPS,
                 (double)ret / 1e9);
    else if (r != 0)
        cfg_fail(c, "harness: recording the history: %s", lincheck_strerror(r));
}

/* The trace's view of a clerk's op (its lane, c<serial>). */
static int trace_invoke(kvh_clerk *k, const char *op, const char *key, const char *value)
{
    char qk[40], qv[40];
    int n = atomic_fetch_add(&H.trace_ops, 1);   /* unique in the test: lanes are reused */
    trace_event(TRACE_BULK, "invoke c%d %d %s %s %s", k->serial, n, op,
                trace_quote(qk, sizeof qk, key, strlen(key)),
                trace_quote(qv, sizeof qv, value, strlen(value)));
    return n;
}

static void trace_return(kvh_clerk *k, int n, const char *out)
{
    char q[64];
    trace_event(TRACE_BULK, "return c%d %d %s", k->serial, n, trace_quote(q, sizeof q, out, strlen(out)));
}

char *kvh_get(cfg *c, kvh_clerk *k, const char *key, int client)
{
    int op = trace_invoke(k, "get", key, "");
    uint64_t call = now_ns();
    char *v = kvclerk_get(k->ck, key);
    uint64_t ret = now_ns();
    trace_return(k, op, v ? v : "");
    if (!v) {
        cfg_fail(c, "kvclerk_get(\"%s\") returned NULL (out of memory?)", key);
        return NULL;
    }
    record(c, k, op, client, LINCHECK_GET, key, v, call, ret);
    return v;
}

static bool put_append(cfg *c, kvh_clerk *k, const char *key, const char *value, int client,
                       bool append)
{
    int op = trace_invoke(k, append ? "append" : "put", key, value);
    uint64_t call = now_ns();
    int r = append ? kvclerk_append(k->ck, key, value) : kvclerk_put(k->ck, key, value);
    uint64_t ret = now_ns();
    trace_return(k, op, "");
    if (r != 0) {
        cfg_fail(c, "kvclerk_%s(\"%s\") returned %d (out of memory?)", append ? "append" : "put",
                 key, r);
        return false;
    }
    record(c, k, op, client, append ? LINCHECK_APPEND : LINCHECK_PUT, key, value, call, ret);
    return true;
}

bool kvh_put(cfg *c, kvh_clerk *k, const char *key, const char *value, int client)
{
    return put_append(c, k, key, value, client, false);
}

bool kvh_append(cfg *c, kvh_clerk *k, const char *key, const char *value, int client)
{
    return put_append(c, k, key, value, client, true);
}

int kvh_ops(void)
{
    return atomic_load(&H.ops);
}

/* At most the last 200 bytes of a long value, for messages. */
static const char *tail(const char *v)
{
    size_t n = strlen(v);
    return n > 200 ? v + n - 200 : v;
}

void kvh_check(cfg *c, kvh_clerk *k, const char *key, const char *want)
{
    char *v = kvh_get(c, k, key, -1);
    if (v && strcmp(v, want) != 0)
        cfg_fail(c, "Get(%s): expected \"%s\", got \"%s%s\"", key, tail(want),
                 strlen(v) > 200 ? "..." : "", tail(v));
    free(v);
}

void kvh_check_appends(cfg *c, int client, const char *v, int count)
{
    const char *last = NULL;
    for (int j = 0; j < count; j++) {
        char want[64];
        snprintf(want, sizeof want, "x %d %d y", client, j);
        const char *at = strstr(v, want);
        if (!at) {
            cfg_fail(c, "client %d: \"%s\" is missing from the value of its key (%zu bytes, "
                     "ending \"%s\"): an Append was lost", client, want, strlen(v), tail(v));
            return;
        }
        if (strstr(at + 1, want)) {
            cfg_fail(c, "client %d: \"%s\" appears twice in the value of its key: an Append "
                     "was executed twice (a retry must not execute it again)", client, want);
            return;
        }
        if (last && at < last) {
            cfg_fail(c, "client %d: \"%s\" comes before the Append made just before it: "
                     "Appends out of order", client, want);
            return;
        }
        last = at;
    }
}

/* ---- the history ----------------------------------------------------------------- */

/* The picture of a violation: the bad key's longest linearizable order (each
 * op with the value after it) and the ops that could not come next, as
 * trace events naming each op by its clerk's lane and number. */
static void trace_violation(const lincheck_result *res)
{
    static const char *const why[] = { "its output is not the value",
                                       "the value after it would not begin a later Get's output",
                                       "legal here, but no order after it works" };
    char q[TRACE_LINE];
    const lincheck_key_result *kr = &res->keys[res->bad_key];
    trace_event(TRACE_HARNESS, "linkey %s", trace_quote(q, 64, kr->key, kr->key_len));
    /* the order's end is where it fails; each value costs its length */
    for (size_t i = res->npartial > 1000 ? res->npartial - 1000 : 0; i < res->npartial; i++) {
        size_t op = res->partial[i], len = 0;
        char *v = lincheck_partial_value(H.history, res, i, &len);
        if (op < H.recorded)
            trace_event(TRACE_HARNESS, "lin c%d %d %zu %s", H.lane[op].serial, H.lane[op].n, i,
                        v ? trace_quote(q, 72, v, len) : "\"?\"");
        free(v);
    }
    for (size_t i = 0; i < res->nblocked; i++) {
        size_t op = res->blocked[i].op;
        unsigned w = (unsigned)res->blocked[i].why;
        if (op < H.recorded)
            trace_event(TRACE_HARNESS, "unlin c%d %d \"%s\"", H.lane[op].serial, H.lane[op].n,
                        w < 3 ? why[w] : "?");
    }
}

void kvh_check_history(cfg *c)
{
    lincheck_result res;
    pthread_mutex_lock(&H.mu);
    int r = lincheck_check(H.history, LINCHECK_DEFAULT_STEPS, &res);
    pthread_mutex_unlock(&H.mu);
    if (r != 0) {
        cfg_fail(c, "harness: the linearizability check: %s", lincheck_strerror(r));
        return;
    }
    if (res.verdict != LINCHECK_OK && H.bytes > KVH_MAX_PRINTED_BYTES) {
        printf("  ... the history checked (%zu operations, %zu MiB) is too large to save\n",
               res.nops, H.bytes >> 20);
    } else if (res.verdict != LINCHECK_OK) {
        /* for the grader to save beside the log (grade.c: save_history) */
        printf("  ... the history checked (%zu operations) follows\n", res.nops);
        fflush(stdout);
        pthread_mutex_lock(&H.mu);
        lincheck_history_write(H.history, stdout);
        pthread_mutex_unlock(&H.mu);
        printf("# end of history\n");
        fflush(stdout);
    }
    if (res.verdict == LINCHECK_ILLEGAL) {
        trace_violation(&res);
        char *why = lincheck_explain_str(H.history, &res);
        cfg_fail(c, "history is not linearizable: %s", why ? why : "(out of memory)");
        free(why);
    } else if (res.verdict == LINCHECK_UNKNOWN) {
        char note[160];
        snprintf(note, sizeof note, "linearizability not checked: budget of %" PRIu64
                 " steps exceeded on %zu key(s)", res.max_steps, res.nunknown);
        cfg_note_unchecked(c, note);
    }
    lincheck_result_free(&res);
}

/* ---- the generic test ---------------------------------------------------------- */

typedef struct client {
    pthread_t th;
    cfg *c;
    int me;
    const kvh_generic_spec *spec;
    _Atomic bool *stop;
    int appends;          /* j: Appends and Puts done (6.5840's count) */
} client;

#ifdef RAFTLAB_SIM
/* In virtual time an operation costs next to nothing, and a client would do
 * hundreds of thousands in 5 s, each Get copying a value that keeps
 * growing, each RPC a few thread switches of the scheduler in real time. A
 * pause keeps a sim run in seconds: 50 ms, about 100 operations a client
 * per round, and with more than 5 clients 10 ms a client, so that 15 or 20
 * clients together do about as many as 5 (20 clients had made one test
 * 15 s). */
static void pace(client *cl, double *next)
{
    (void)next;
    cfg_sleep_ms(cl->spec->clients > 5 ? 10 * cl->spec->clients : 50);
}
#else
/* In real time a client starts an operation at most every 10 ms x clients,
 * so that a test's clients together start at most about 100 a second.
 * 6.5840's clients never wait: the time a Go solution takes for an
 * operation paces them. Unpaced, the C reference made 15 to 30 times as
 * many operations as that cap allows, and any solution, good or bad, kept
 * both cores busy for the whole stage (over 200 s of CPU). The cap makes a
 * test's load, and so the cost of grading, about the same for every
 * submission; a solution that takes longer than 10 ms x clients for an
 * operation never waits. It waits in slices, so that a stopped client ends
 * at once. */
static void pace(client *cl, double *next)
{
    double wait_ms;
    while ((wait_ms = (*next - cfg_now()) * 1000.0) > 0 && !atomic_load(cl->stop) &&
           !cfg_failed(cl->c))
        cfg_sleep_ms(wait_ms < 20 ? (int64_t)wait_ms + 1 : 20);
    *next = cfg_now() + 0.010 * cl->spec->clients;
}
#endif

static void *client_thread(void *arg)
{
    client *cl = arg;
    cfg *c = cl->c;
    kvh_clerk *k = kvh_clerk_make_as(c, NULL, 0, cl->me);   /* its lane: its number */
    if (!k)
        return NULL;
    char own[16], *last = strdup("");
    snprintf(own, sizeof own, "%d", cl->me);
    if (!last) {
        cfg_fail(c, "harness out of memory");
        kvh_clerk_free(k);
        return NULL;
    }
    if (!cl->spec->random_keys)
        kvh_put(c, k, own, last, cl->me);
    double next = 0;   /* when pace() lets the next operation start */
    while (!atomic_load(cl->stop) && !cfg_failed(c)) {
        pace(cl, &next);
        char key[16], nv[64];
        if (cl->spec->random_keys)
            snprintf(key, sizeof key, "%d", cfg_rand(c) % cl->spec->clients);
        else
            snprintf(key, sizeof key, "%s", own);
        snprintf(nv, sizeof nv, "x %d %d y", cl->me, cl->appends);
        if (cfg_rand(c) % 1000 < 500) {
            if (!kvh_append(c, k, key, nv, cl->me))
                break;
            if (!cl->spec->random_keys) {
                size_t n = strlen(last) + strlen(nv) + 1;
                char *grown = realloc(last, n);
                if (!grown) {
                    cfg_fail(c, "harness out of memory");
                    break;
                }
                last = grown;
                strcat(last, nv);
            }
            cl->appends++;
        } else if (cl->spec->random_keys && cfg_rand(c) % 1000 < 100) {
            if (!kvh_put(c, k, key, nv, cl->me))
                break;
            cl->appends++;
        } else {
            char *v = kvh_get(c, k, key, cl->me);
            if (!v)
                break;
            if (!cl->spec->random_keys && strcmp(v, last) != 0)
                cfg_fail(c, "client %d: Get(%s) returned a wrong value: expected \"%s%s\" "
                         "(%zu bytes), got \"%s%s\" (%zu bytes)", cl->me, key,
                         strlen(last) > 200 ? "..." : "", tail(last), strlen(last),
                         strlen(v) > 200 ? "..." : "", tail(v), strlen(v));
            free(v);
        }
    }
    free(last);
    kvh_clerk_free(k);
    return NULL;
}

/* While it runs, the partitioner is the only thread that changes the
 * servers' links (the test's thread sleeps). */
typedef struct partitioner {
    pthread_t th;
    cfg *c;
    _Atomic bool *stop;
} partitioner;

static void *partition_thread(void *arg)
{
    partitioner *p = arg;
    cfg *c = p->c;
    while (!atomic_load(p->stop) && !cfg_failed(c)) {
        int side[64];
        for (int i = 0; i < cfg_n(c); i++)
            side[i] = cfg_rand(c) % 2;
        cfg_partition(c, side);
        int64_t ms = ELECTION_TIMEOUT_MS + cfg_rand(c) % 200;
        for (int64_t slept = 0; slept < ms && !atomic_load(p->stop); slept += 10)
            cfg_sleep_ms(10);
    }
    return NULL;
}

/* Sleeps ms, or less once the test has failed (its clients stop). */
static void sleep_unless_failed(cfg *c, int ms)
{
    for (int slept = 0; slept < ms && !cfg_failed(c); slept += 50)
        cfg_sleep_ms(ms - slept < 50 ? ms - slept : 50);
}

static void build_title(char *t, size_t size, const cfg *c, const kvh_generic_spec *s)
{
    snprintf(t, size, "Test: %s%s%s%s%s%s (%s)", H.p.unreliable ? "unreliable net, " : "",
             s->crash ? "restarts, " : "", s->partitions ? "partitions, " : "",
             H.p.maxraftstate != -1 ? "snapshots, " : "", s->random_keys ? "random keys, " : "",
             s->clients > 1 ? "many clients" : "one client", s->part);
    (void)c;
}

void kvh_generic(cfg *c, const kvh_generic_spec *spec)
{
    char title[256];
    build_title(title, sizeof title, c, spec);
    cfg_begin(c, title);
    if (spec->clients > MAX_CLIENTS) {
        cfg_fail(c, "harness: %d clients, at most %d", spec->clients, MAX_CLIENTS);
        return;
    }
    kvh_clerk *ck = kvh_clerk_make_as(c, NULL, 0, spec->clients);   /* as in the history */
    if (!ck)
        return;
    int n = cfg_n(c);
    for (int iter = 0; iter < 3 && !cfg_failed(c); iter++) {
        _Atomic bool stop_clients = false, stop_partitioner = false;
        client cl[MAX_CLIENTS];
        int started = 0;
        for (int i = 0; i < spec->clients; i++) {
            cl[i] = (client){ .c = c, .me = i, .spec = spec, .stop = &stop_clients };
            if (pthread_create(&cl[i].th, NULL, client_thread, &cl[i]) != 0) {
                cfg_fail(c, "harness could not start a client thread");
                break;
            }
            started++;
        }
        partitioner pt = { .c = c, .stop = &stop_partitioner };
        bool partitioning = false;
        if (spec->partitions && started == spec->clients) {
            sleep_unless_failed(c, 1000);   /* some operations without interruption first */
            partitioning = pthread_create(&pt.th, NULL, partition_thread, &pt) == 0;
            if (!partitioning)
                cfg_fail(c, "harness could not start the partitioner");
        }
        sleep_unless_failed(c, 5000);
        atomic_store(&stop_clients, true);
        atomic_store(&stop_partitioner, true);
        /* 6.5840 sleeps an election timeout after the heal and another
         * after the shutdown. Neither is needed here: a request sent to the
         * minority returns once that server learns of a new term, and the
         * joins below wait for it; and a crash here is over when
         * cfg_crash1 returns (Go's shutdown is not). */
        if (partitioning) {
            pthread_join(pt.th, NULL);
            for (int i = 0; i < n; i++)
                cfg_connect(c, i);
        }
        if (spec->crash) {
            for (int i = 0; i < n; i++)
                cfg_crash1(c, i);
            for (int i = 0; i < n; i++)
                cfg_start1(c, i);
            for (int i = 0; i < n; i++)
                cfg_connect(c, i);
        }
        for (int i = 0; i < started; i++)
            pthread_join(cl[i].th, NULL);
        for (int i = 0; i < started && !cfg_failed(c); i++) {
            char key[16];
            snprintf(key, sizeof key, "%d", i);
            char *v = kvh_get(c, ck, key, spec->clients);   /* the main clerk's own number */
            if (v && !spec->random_keys)
                kvh_check_appends(c, i, v, cl[i].appends);
            free(v);
        }
        if (cfg_failed(c))
            break;
        if (H.p.maxraftstate > 0) {
            size_t sz = cfg_log_size(c);
            if (sz > 8 * (size_t)H.p.maxraftstate)
                cfg_fail(c, "logs were not trimmed: Raft's persisted state is %zu bytes, over "
                         "8 x maxraftstate (%d)", sz, H.p.maxraftstate);
        } else {
            size_t ssz = cfg_snapshot_size(c);
            if (ssz > 0)
                cfg_fail(c, "a snapshot of %zu bytes was saved with maxraftstate -1: no "
                         "snapshots then", ssz);
        }
    }
    kvh_clerk_free(ck);
    if (!cfg_failed(c))
        kvh_check_history(c);
    cfg_end_ops(c, kvh_ops());
}

static kvh_params run_params;
static kvh_generic_spec run_spec;

static void generic_body(cfg *c)
{
    kvh_generic(c, &run_spec);
}

void kvh_run(int servers, bool unreliable, int maxraftstate, test_body body)
{
    run_params = (kvh_params){ .servers = servers, .unreliable = unreliable,
                               .maxraftstate = maxraftstate };
    run_test_on(kvh_make_cluster, &run_params, body);
}

void kvh_run_generic(const char *part, int maxraftstate, int clients, int servers,
                     bool unreliable, bool crash, bool partitions, bool random_keys)
{
    run_spec = (kvh_generic_spec){ .part = part, .clients = clients, .crash = crash,
                                   .partitions = partitions, .random_keys = random_keys };
    kvh_run(servers, unreliable, maxraftstate, generic_body);
}

void kvh_speed(cfg *c, const char *part)
{
    enum { NUM_OPS = 1000 };
    char title[128];
    snprintf(title, sizeof title, "Test: ops complete fast enough (%s)", part);
    cfg_begin(c, title);
    kvh_clerk *ck = kvh_clerk_make(c, NULL, 0);
    if (!ck)
        return;
    char *v = kvh_get(c, ck, "x", -1);   /* a leader is elected, the servers are ready */
    free(v);
    double start = cfg_now();
    for (int i = 0; i < NUM_OPS && !cfg_failed(c); i++) {
        char nv[64];
        snprintf(nv, sizeof nv, "x 0 %d y", i);
        kvh_append(c, ck, "x", nv, -1);
    }
    double dur = cfg_now() - start;
    v = cfg_failed(c) ? NULL : kvh_get(c, ck, "x", -1);
    if (v)
        kvh_check_appends(c, 0, v, NUM_OPS);
    free(v);
    kvh_clerk_free(ck);
    /* heartbeats every 100 ms: at least 3 ops in each */
    double per_op_ms = dur * 1000.0 / NUM_OPS, limit_ms = 100.0 / 3;
    if (!cfg_failed(c) && per_op_ms > limit_ms * cfg_time_factor())
        cfg_fail(c, "operations completed too slowly: %.1f ms an op > %.1f ms: replicate a new "
                 "command at once, not at the next heartbeat", per_op_ms, limit_ms);
    else if (!cfg_failed(c))
        printf("  ... %.2f ms an op (at most %.1f)\n", per_op_ms, limit_ms);
    cfg_end_ops(c, kvh_ops());
}
