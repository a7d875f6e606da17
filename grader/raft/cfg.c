/* cfg.c: the cluster harness (see cfg.h). */
#include "cfg.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <valgrind/valgrind.h>

#include "codec.h"
#include "labrpc.h"
#include "persister.h"
#include "trace.h"
#ifdef RAFTLAB_SIM
#include "../sim/sim.h"
#endif

#define END_NAME_LEN 20
#define WATCHDOG_GRACE_S 10   /* after the test limit, before the watchdog exits */
#define CFG_MAX_CALLS 16      /* calls into the Raft the watchdog can name at once */
#define CALL_LIMIT_S 15       /* a call into the Raft still running this long is stuck */
#define CLEANUP_LIMIT_S 30    /* for cfg_cleanup */

/* One applied entry of one server's view. */
typedef struct entry {
    bool present;
    uint8_t *p;
    size_t len;
} entry;

typedef struct applog {
    entry *e;      /* e[index], index 0 unused */
    int cap;
} applog;

/* One incarnation of server i: the apply function's context. Kept until
 * cfg_cleanup so that a (buggy) apply after raft_kill is reported rather
 * than touching freed memory. */
typedef struct inst {
    struct cfg *c;
    int i;
    raft *rf;          /* set once raft_make returned */
    bool dead;         /* raft_kill returned */
    bool in_apply;
    struct inst *next;
} inst;

struct cfg {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int n;
    bool snapshot;
    bool staggered;     /* cfg_set_staggered_snapshots */
    int factor;
    unsigned rand_state;

    labrpc_net *net;
    char (*srvnames)[16];
    raft **rafts;
    const cfg_service *svc;      /* stage 4: what each server runs on its Raft, or NULL */
    void **objs;                 /* [i]: server i's service (svc->make), or NULL */
    inst **insts;
    inst *all_insts;
    labrpc_server **srvs;
    persister **saved;
    int *users;                  /* threads inside raft_start/get_state of rafts[i] */
    bool *connected;
    char (*endnames)[END_NAME_LEN + 1];  /* [i*n+j]: server i's end to j */
    labrpc_end **ends;                   /* [i*n+j] */
    bool *has_ends;

    applog *logs;
    applog committed;            /* the first value ever applied at each index */
    int *last_applied;
    int max_index, max_index0;

    /* failure */
    bool failed;
    char msg[2048];
    char test_name[128];
    const char *site_file;
    int site_line;

    /* begin/end */
    char unchecked[256];         /* cfg_note_unchecked, or "" */
    double t_make, t0;
    int rpcs0;
    int64_t bytes0;
    bool ended;

    /* watchdog */
    pthread_t wd;
    bool wd_running;
    bool wd_stop;
    double wd_deadline;
    /* Election safety: leader_of[t] is 1 + the server seen leading term t
     * (0: none seen), for terms below CFG_TRACKED_TERMS. Atomics, not c->mu:
     * in sim mode a lock would be a scheduling point and change schedules. */
    _Atomic int *leader_of;
    _Atomic int *observed;       /* the trace: 2 * term + leader, last seen */
    _Atomic int limit_s;         /* test limit, s: CFG_TEST_LIMIT_S unless a benchmark set one (atomic: no sync point in sim) */
    const char *wd_phase;
    /* Calls into the Raft in progress, from any thread (call_begin). */
    struct {
        bool used, in_apply;
        pthread_t th;
        char what[96];
        double since;
    } calls[CFG_MAX_CALLS];
    pthread_t main_thread;       /* the test's own thread (cfg_make's caller) */

    /* The armed crash point (cfg_arm_crash_point). The hook runs on a
     * labrpc thread under the network's lock: atomics only, no c->mu. */
    struct {
        int i;
        persister *src;
        _Atomic(persister *) copy;   /* what src held when the answer left */
        _Atomic bool fired;
    } cp;
};

/* ---- time, sleep, random ------------------------------------------------ */

double cfg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cfg_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int cfg_thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int cfg_time_factor(void)
{
#ifdef RAFTLAB_SIM
    return 1; /* virtual time: valgrind's slowness does not show */
#else
    return RUNNING_ON_VALGRIND ? CFG_VALGRIND_FACTOR : 1;
#endif
}

int cfg_rand(cfg *c)
{
    pthread_mutex_lock(&c->mu);
    int r = rand_r(&c->rand_state) & 0x7fffffff;
    pthread_mutex_unlock(&c->mu);
    return r;
}

int64_t cfg_rand63(cfg *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t a = (uint64_t)(rand_r(&c->rand_state) & 0x7fffffff);
    uint64_t b = (uint64_t)(rand_r(&c->rand_state) & 0x7fffffff);
    uint64_t d = (uint64_t)(rand_r(&c->rand_state) & 0x1);
    pthread_mutex_unlock(&c->mu);
    return (int64_t)((a << 32) | (b << 1) | d) & INT64_MAX;
}

static const char ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

static void fill_random(cfg *c, char *s, size_t n)
{
    pthread_mutex_lock(&c->mu);
    for (size_t k = 0; k < n; k++)
        s[k] = ALPHABET[rand_r(&c->rand_state) & 63];
    s[n] = '\0';
    pthread_mutex_unlock(&c->mu);
}

char *cfg_randstring(cfg *c, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) {
        cfg_fail(c, "harness out of memory (a %zu-byte random string)", n);
        return NULL;
    }
    fill_random(c, s, n);
    return s;
}

/* ---- values -------------------------------------------------------------- */

void cfg_value_free(cfg_value *v)
{
    if (v) {
        free(v->p);
        v->p = NULL;
        v->len = 0;
    }
}

static bool parse_int(const uint8_t *p, size_t len, int64_t *out)
{
    if (!p || len == 0 || len > 20)
        return false;
    size_t k = 0;
    bool neg = false;
    if (p[0] == '-') {
        neg = true;
        k = 1;
        if (len == 1)
            return false;
    }
    uint64_t v = 0;
    for (; k < len; k++) {
        if (p[k] < '0' || p[k] > '9')
            return false;
        uint64_t d = (uint64_t)(p[k] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (!neg && v > (uint64_t)INT64_MAX)
        return false;
    if (neg && v > (uint64_t)INT64_MAX + 1)
        return false;
    if (out)
        *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

bool cfg_value_int(const cfg_value *v, int64_t *out)
{
    return v && parse_int(v->p, v->len, out);
}

/* A short printable rendering of a value, for messages. */
static void fmt_val(char *buf, size_t size, const void *pv, size_t len)
{
    const uint8_t *p = pv;
    int64_t x;
    if (parse_int(p, len, &x)) {
        snprintf(buf, size, "%" PRId64, x);
        return;
    }
    bool printable = p != NULL || len == 0;
    for (size_t k = 0; printable && k < len; k++)
        if (p[k] < 0x20 || p[k] > 0x7e)
            printable = false;
    if (printable) {
        if (len <= 40)
            snprintf(buf, size, "\"%.*s\"", (int)len, (const char *)p);
        else
            snprintf(buf, size, "\"%.24s...\" (%zu bytes)", (const char *)p, len);
        return;
    }
    if (!p) {
        snprintf(buf, size, "(NULL, %zu bytes)", len);
        return;
    }
    size_t off = (size_t)snprintf(buf, size, "%zu bytes: ", len);
    for (size_t k = 0; k < len && k < 12 && off + 3 < size; k++)
        off += (size_t)snprintf(buf + off, size - off, "%02x", p[k]);
    if (len > 12 && off + 4 < size)
        snprintf(buf + off, size - off, "...");
}

static void fmt_int(char *buf, size_t size, int64_t v, size_t *len)
{
    int k = snprintf(buf, size, "%" PRId64, v);
    *len = (size_t)k;
}

/* ---- failures ------------------------------------------------------------ */

static void fail_locked(cfg *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void vfail_locked(cfg *c, const char *fmt, va_list ap)
{
    if (c->failed)
        return;
    c->failed = true;
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    char q[TRACE_LINE];
    trace_event(TRACE_HARNESS, "failure %s", trace_quote(q, sizeof q - 8, c->msg, strlen(c->msg)));
#ifdef RAFTLAB_SIM
    /* Where in the run: replaying the seed reaches the same step. */
    size_t len = strlen(c->msg);
    snprintf(c->msg + len, sizeof c->msg - len, " (virtual time %.3f s into the test, scheduling step %" PRIu64 ")",
             cfg_now() - c->t_make, sim_steps());
#endif
}

void cfg_fail(cfg *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&c->mu);
    vfail_locked(c, fmt, ap);
    pthread_mutex_unlock(&c->mu);
    va_end(ap);
}

static void fail_locked(cfg *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_locked(c, fmt, ap);
    va_end(ap);
}

bool cfg_failed(cfg *c)
{
    int limit_s = c->limit_s * c->factor;
    double late = cfg_now() - c->t_make - (double)limit_s;
    pthread_mutex_lock(&c->mu);
    if (late > 0 && !c->ended)
        fail_locked(c, "test took longer than %d seconds", limit_s);
    bool f = c->failed;
    pthread_mutex_unlock(&c->mu);
    return f;
}

void cfg_failure(cfg *c, char *buf, size_t size)
{
    pthread_mutex_lock(&c->mu);
    if (!c->failed)
        snprintf(buf, size, "%s: no failure", c->test_name);
    else if (c->test_name[0])
        snprintf(buf, size, "%s: %s", c->test_name, c->msg);
    else
        snprintf(buf, size, "%s", c->msg);
    pthread_mutex_unlock(&c->mu);
}

void cfg_note_site(cfg *c, const char *file, int line)
{
    pthread_mutex_lock(&c->mu);
    if (!c->site_file) {
        c->site_file = file;
        c->site_line = line;
    }
    pthread_mutex_unlock(&c->mu);
}

void cfg_site(cfg *c, const char **file, int *line)
{
    pthread_mutex_lock(&c->mu);
    *file = c->site_file ? c->site_file : __FILE__;
    *line = c->site_file ? c->site_line : 0;
    pthread_mutex_unlock(&c->mu);
}

void cfg_set_test_name(cfg *c, const char *name)
{
    pthread_mutex_lock(&c->mu);
    snprintf(c->test_name, sizeof c->test_name, "%s", name ? name : "");
    pthread_mutex_unlock(&c->mu);
    trace_meta("test", "%s", name ? name : "");
}

/* The 120 s limit: true (and failure recorded) once it has passed. */
static bool over_time(cfg *c)
{
    int limit_s = c->limit_s * c->factor;
    if (cfg_now() - c->t_make > (double)limit_s) {
        cfg_fail(c, "test took longer than %d seconds", limit_s);
        return true;
    }
    return false;
}

/* ---- watchdog ------------------------------------------------------------ */

/* Notes a call into the Raft in progress (which thread, what, since when)
 * for the watchdog's report; in_apply: made from inside the apply
 * function. Returns its slot, or -1 if all are taken (then not noted). */
static int call_begin(cfg *c, bool in_apply, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int call_begin(cfg *c, bool in_apply, const char *fmt, ...)
{
    pthread_mutex_lock(&c->mu);
    int k = 0;
    while (k < CFG_MAX_CALLS && c->calls[k].used)
        k++;
    if (k < CFG_MAX_CALLS) {
        c->calls[k].used = true;
        c->calls[k].in_apply = in_apply;
        c->calls[k].th = pthread_self();
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->calls[k].what, sizeof c->calls[k].what, fmt, ap);
        va_end(ap);
        c->calls[k].since = cfg_now();
    } else {
        k = -1;
    }
    pthread_mutex_unlock(&c->mu);
    return k;
}

static void call_end(cfg *c, int k)
{
    if (k < 0)
        return;
    pthread_mutex_lock(&c->mu);
    c->calls[k].used = false;
    pthread_mutex_unlock(&c->mu);
}

/* The test thread's call in progress, or "" (c->mu held). */
static const char *main_call(cfg *c)
{
    for (int k = 0; k < CFG_MAX_CALLS; k++)
        if (c->calls[k].used && pthread_equal(c->calls[k].th, c->main_thread))
            return c->calls[k].what;
    return "";
}

/* The watchdog's list of every call in progress, saying which one waits on
 * the Raft from inside apply (c->mu held). */
static void report_calls(cfg *c)
{
    bool any = false, from_apply = false;
    double now = cfg_now();
    for (int k = 0; k < CFG_MAX_CALLS; k++) {
        if (!c->calls[k].used)
            continue;
        bool mine = pthread_equal(c->calls[k].th, c->main_thread);
        if (!any)
            printf("  Calls into the Raft still running:\n");
        any = true;
        from_apply |= c->calls[k].in_apply;
        printf("    %s: %s, for %.1f s\n",
               mine ? "the test's thread" : c->calls[k].in_apply ? "an apply (your applier's thread)"
                                                           : "another thread of the test",
               c->calls[k].what, now - c->calls[k].since);
    }
    if (from_apply)
        printf("  A call from inside apply has not returned: your Raft waits for apply to "
               "return while apply waits for your Raft. Never hold rf->mu (or a lock the API "
               "takes) while you call apply; the others above wait behind it.\n");
}

static void *watchdog(void *arg)
{
    cfg *c = arg;
    for (;;) {
        cfg_sleep_ms(100);
        pthread_mutex_lock(&c->mu);
        if (c->wd_stop) {
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        /* A call into the Raft takes its lock and returns; one still
         * running after CALL_LIMIT_S is a deadlock: say so now, not at
         * the test's limit. */
        const char *stuck = NULL;
        for (int pass = 0; pass < 2 && !stuck; pass++)      /* the apply's call first: the culprit */
            for (int k = 0; k < CFG_MAX_CALLS && !stuck; k++)
                if (c->calls[k].used && c->calls[k].in_apply == (pass == 0) &&
                    strncmp(c->calls[k].what, "labrpc", 6) != 0 &&
                    cfg_now() - c->calls[k].since > CALL_LIMIT_S * c->factor)
                    stuck = c->calls[k].what;
        if (stuck) {
            printf("  ... Failed --  %s%s%s has not returned in %d s: a deadlock in the Raft\n",
                   c->test_name, c->test_name[0] ? ": " : "", stuck,
                   (int)(CALL_LIMIT_S * c->factor));
            report_calls(c);
            if (c->failed)
                printf("  (the first failure was: %s)\n", c->msg);
            fflush(stdout);
            fflush(stderr);
            _exit(CFG_EXIT_STUCK);
        }
        if (cfg_now() > c->wd_deadline) {
            const char *call = main_call(c);
            printf("  ... Failed --  %s%s%s: %s is stuck%s%s%s\n",
                   c->test_name, c->test_name[0] ? ": " : "",
                   "test did not finish in time", c->wd_phase,
                   call[0] ? " (in " : "", call, call[0] ? ")" : "");
            report_calls(c);      /* after the verdict line, which the grader reads */
            if (c->failed)
                printf("  (the first failure was: %s)\n", c->msg);
            fflush(stdout);
            fflush(stderr);
            _exit(CFG_EXIT_STUCK);
        }
        pthread_mutex_unlock(&c->mu);
        int nthreads = cfg_thread_count();
        if (nthreads > CFG_MAX_THREADS) {
            printf("  ... Failed --  %s%s%d threads running (the limit is %d): the Raft code "
                   "starts threads without bound; reuse a few long-lived threads, or use "
                   "labrpc's asynchronous calls instead of a thread per RPC\n",
                   c->test_name, c->test_name[0] ? ": " : "", nthreads, CFG_MAX_THREADS);
            fflush(stdout);
            _exit(CFG_EXIT_THREADS);
        }
    }
}

/* ---- logs of applied values ----------------------------------------------- */

static void applog_clear(applog *l)
{
    for (int k = 0; k < l->cap; k++)
        free(l->e[k].p);
    free(l->e);
    l->e = NULL;
    l->cap = 0;
}

static bool applog_reserve(applog *l, int index)
{
    if (index < l->cap)
        return true;
    int ncap = l->cap ? l->cap : 64;
    while (ncap <= index)
        ncap *= 2;
    entry *ne = realloc(l->e, (size_t)ncap * sizeof *ne);
    if (!ne)
        return false;
    memset(ne + l->cap, 0, (size_t)(ncap - l->cap) * sizeof *ne);
    l->e = ne;
    l->cap = ncap;
    return true;
}

static const entry *applog_get(const applog *l, int index)
{
    if (index < 0 || index >= l->cap || !l->e[index].present)
        return NULL;
    return &l->e[index];
}

static bool same(const entry *e, const void *p, size_t len)
{
    return e->len == len && (len == 0 || memcmp(e->p, p, len) == 0);
}

/* ---- the appliers --------------------------------------------------------- */

/* Committed values never change: the first value ever applied at index
 * (by any server, in any incarnation) is the only one any server may apply
 * or hold in a snapshot there. false (failure recorded) if v differs; notes
 * v if it is the first. c->mu held. */
static bool check_committed(cfg *c, int i, int index, const uint8_t *v, size_t len,
                            const char *how)
{
    const entry *first = applog_get(&c->committed, index);
    if (first) {
        if (same(first, v, len))
            return true;
        char a[96], b[96];
        fmt_val(a, sizeof a, v, len);
        fmt_val(b, sizeof b, first->p, first->len);
        fail_locked(c, "server %d %s %s at index %d, but %s was committed there before: a "
                    "committed entry changed (it was lost, then overwritten)",
                    i, how, a, index, b);
        return false;
    }
    if (!applog_reserve(&c->committed, index)) {
        fail_locked(c, "harness out of memory (the committed history)");
        return false;
    }
    entry *e = &c->committed.e[index];
    e->p = malloc(len ? len : 1);
    if (!e->p) {
        fail_locked(c, "harness out of memory (the committed history)");
        return false;
    }
    if (len)
        memcpy(e->p, v, len);
    e->len = len;
    e->present = true;
    return true;
}

/* Replaces server i's view with the snapshot's. Returns "" or writes an error
 * into err. Called with c->mu held. index: the snapshot_index the message
 * claimed, or -1. */
static void ingest_snap(cfg *c, int i, const void *snap, size_t len, int index,
                        char *err, size_t errsize)
{
    err[0] = '\0';
    if (!snap) {
        snprintf(err, errsize, "server %d: snapshot is NULL (snapshot_len %zu)", i, len);
        return;
    }
    codec_dec d;
    codec_dec_init(&d, snap, len);
    int32_t last = codec_get_i32(&d);
    uint32_t count = codec_get_list(&d, CFG_MAX_INDEX);
    if (codec_dec_err(&d) == CODEC_OK && (last < 0 || (uint32_t)last != count)) {
        snprintf(err, errsize,
                 "server %d: snapshot does not decode: it says index %d but holds %u values "
                 "(was it passed intact from raft_snapshot to the apply function?)",
                 i, (int)last, count);
        return;
    }
    applog nl = { 0 };
    if (codec_dec_err(&d) == CODEC_OK && !applog_reserve(&nl, (int)count)) {
        snprintf(err, errsize, "harness out of memory ingesting a snapshot");
        return;
    }
    for (uint32_t k = 1; k <= count && codec_dec_err(&d) == CODEC_OK; k++) {
        bool present = codec_get_bool(&d);
        size_t n = 0;
        const uint8_t *p = codec_get_bytes(&d, CFG_MAX_COMMAND_LEN, &n);
        if (codec_dec_err(&d) != CODEC_OK || !present)
            continue;
        nl.e[k].p = malloc(n ? n : 1);
        if (!nl.e[k].p) {
            applog_clear(&nl);
            snprintf(err, errsize, "harness out of memory ingesting a snapshot");
            return;
        }
        if (n)
            memcpy(nl.e[k].p, p, n);
        nl.e[k].len = n;
        nl.e[k].present = true;
    }
    int derr = codec_dec_finish(&d);
    if (derr != CODEC_OK) {
        char why[256];
        codec_dec_describe(&d, why, sizeof why);
        if (derr == CODEC_ETRAILING)
            snprintf(why, sizeof why, "%zu bytes left over at the end",
                     codec_dec_remaining(&d));
        applog_clear(&nl);
        snprintf(err, errsize,
                 "server %d: snapshot of %zu bytes does not decode (%s): the snapshot "
                 "given to the apply function must be the bytes given to raft_snapshot",
                 i, len, why);
        return;
    }
    if (index != -1 && index != last) {
        applog_clear(&nl);
        snprintf(err, errsize,
                 "server %d snapshot doesn't match snapshot_index: the snapshot covers "
                 "index %d, the message says %d", i, (int)last, index);
        return;
    }
    /* Snapshots never take a server back: what it applied stays applied. */
    if (index != -1 && last < c->last_applied[i]) {
        applog_clear(&nl);
        snprintf(err, errsize,
                 "server %d installed a snapshot up to index %d after it had applied index "
                 "%d: a snapshot older than what is committed must be ignored, never applied",
                 i, (int)last, c->last_applied[i]);
        return;
    }
    for (int k = 1; k <= (int)last; k++)
        if (nl.e[k].present &&
            !check_committed(c, i, k, nl.e[k].p, nl.e[k].len, "holds in a snapshot")) {
            applog_clear(&nl);
            snprintf(err, errsize, "(see the first failure)");
            return;
        }
    applog_clear(&c->logs[i]);
    c->logs[i] = nl;
    c->last_applied[i] = last;
}

/* Builds the snapshot of server i's view up to index. c->mu held. */
static uint8_t *make_snap(cfg *c, int i, int index, size_t *len)
{
    codec_enc e;
    codec_enc_init(&e);
    codec_put_i32(&e, index);
    codec_put_list(&e, (uint32_t)index);
    for (int k = 1; k <= index; k++) {
        const entry *en = applog_get(&c->logs[i], k);
        codec_put_bool(&e, en != NULL);
        codec_put_bytes(&e, en ? en->p : NULL, en ? en->len : 0);
    }
    uint8_t *buf = codec_enc_take(&e, len);
    codec_enc_free(&e);
    return buf;
}

/* The service hands Raft its snapshot; the watchdog names the call. */
static void give_snapshot(cfg *c, raft *rf, int i, int index, const uint8_t *snap,
                          size_t len, bool in_apply)
{
    trace_event(TRACE_BULK, "snapshot s%d %d", i, index);
    int k = call_begin(c, in_apply, "raft_snapshot(server %d)%s", i,
                       in_apply ? " from inside apply" : "");
    raft_snapshot(rf, index, snap, len);
    call_end(c, k);
}

static void note_leader(cfg *c, int i, int t);

static void apply_command(cfg *c, inst *in, const raft_apply_msg *m)
{
    int i = in->i;
    int idx = m->command_index;
    char a[96], b[96];

    if (m->command_len > CFG_MAX_COMMAND_LEN) {
        cfg_fail(c, "server %d applied a command of %zu bytes at index %d: absurd "
                 "command_len (the largest command the tests send is 5000 bytes)",
                 i, m->command_len, idx);
        return;
    }
    if (!m->command && m->command_len > 0) {
        cfg_fail(c, "server %d applied index %d with command NULL but command_len %zu",
                 i, idx, m->command_len);
        return;
    }
    if (idx < 1 || idx > CFG_MAX_INDEX) {
        cfg_fail(c, "server %d applied a command at index %d: indexes start at 1%s",
                 i, idx, idx > CFG_MAX_INDEX ? " and cannot be this large" : "");
        return;
    }

    char q[40];
    trace_event(TRACE_BULK, "apply s%d %d %s", i, idx,
                trace_quote(q, sizeof q, (const char *)m->command, m->command_len));
    uint8_t *copy = malloc(m->command_len ? m->command_len : 1);
    if (!copy) {
        cfg_fail(c, "harness out of memory (copying a %zu-byte command)", m->command_len);
        return;
    }
    if (m->command_len)
        memcpy(copy, m->command, m->command_len);

    uint8_t *snap = NULL;
    size_t snap_len = 0;
    raft *rf = NULL;

    pthread_mutex_lock(&c->mu);
    bool err = false;
    /* In every stage, not only with snapshots (6.5840 checks this in 3D):
     * an index applied twice, or skipped, is never right. */
    if (idx != c->last_applied[i] + 1) {
        fail_locked(c, "server %d apply out of order, expected index %d, got %d%s",
                    i, c->last_applied[i] + 1, idx,
                    idx <= c->last_applied[i] ? " (applied twice: did the commit index move "
                                                "backwards?)" : "");
        err = true;
    }
    if (!err && !check_committed(c, i, idx, copy, m->command_len, "applied"))
        err = true;
    if (!err) {
        for (int j = 0; j < c->n; j++) {
            const entry *old = applog_get(&c->logs[j], idx);
            if (old && !same(old, copy, m->command_len)) {
                fmt_val(a, sizeof a, copy, m->command_len);
                fmt_val(b, sizeof b, old->p, old->len);
                fail_locked(c, "commit index=%d server=%d %s != server=%d %s: two servers "
                            "applied different commands at the same index",
                            idx, i, a, j, b);
            }
        }
        bool prevok = applog_get(&c->logs[i], idx - 1) != NULL;
        if (!applog_reserve(&c->logs[i], idx)) {
            fail_locked(c, "harness out of memory (log of server %d)", i);
            free(copy);
        } else {
            entry *en = &c->logs[i].e[idx];
            free(en->p);
            en->p = copy;
            en->len = m->command_len;
            en->present = true;
            if (idx > c->max_index)
                c->max_index = idx;
        }
        if (idx > 1 && !prevok)
            fail_locked(c, "server %d apply out of order %d: index %d was never applied "
                        "before it", i, idx, idx - 1);
    } else {
        free(copy);
    }
    c->last_applied[i] = idx;
    rf = in->rf;
    if (c->snapshot) {
        int offset = c->staggered ? 3 * i : 0;
        if ((idx + 1 + offset) % CFG_SNAPSHOT_INTERVAL == 0 && in->rf) {
            snap = make_snap(c, i, idx, &snap_len);
            if (!snap)
                fail_locked(c, "harness out of memory (a snapshot of server %d)", i);
        }
    }
    pthread_mutex_unlock(&c->mu);

    /* raft.h lets apply call back into the Raft; doing it at every apply
     * makes a Raft that holds its lock across apply fail at once (in 3B,
     * not only in 3D), and the watchdog names the call. */
    if (rf) {
        int t;
        bool leader;
        int k = call_begin(c, true, "raft_get_state(server %d) from inside apply", i);
        raft_get_state(rf, &t, &leader);
        call_end(c, k);
        if (leader)
            note_leader(c, i, t);
    }
    if (snap && rf)
        give_snapshot(c, rf, i, idx, snap, snap_len, true);
    free(snap);
}

static void apply_fn(void *ctx, const raft_apply_msg *m)
{
    inst *in = ctx;
    if (!in)
        return;
    cfg *c = in->c;
    int i = in->i;
    if (!m) {
        cfg_fail(c, "server %d called the apply function with a NULL message", i);
        return;
    }
    pthread_mutex_lock(&c->mu);
    if (in->dead) {
        fail_locked(c, "server %d called the apply function after raft_kill returned", i);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (in->in_apply) {
        fail_locked(c, "server %d called the apply function from two threads at once "
                    "(apply messages must be delivered one at a time, in order)", i);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    in->in_apply = true;
    pthread_mutex_unlock(&c->mu);

    if (m->command_valid && m->snapshot_valid) {
        cfg_fail(c, "server %d applied a message with both command_valid and "
                 "snapshot_valid set (index %d, snapshot_index %d)",
                 i, m->command_index, m->snapshot_index);
    } else if (!m->command_valid && !m->snapshot_valid) {
        cfg_fail(c, "server %d applied a message with neither command_valid nor "
                 "snapshot_valid set (command_index %d)", i, m->command_index);
    } else if (m->command_valid) {
        apply_command(c, in, m);
    } else if (c->snapshot) {
        if (m->snapshot_len > 64u * CFG_MAX_COMMAND_LEN) {
            cfg_fail(c, "server %d applied a snapshot of %zu bytes: absurd snapshot_len",
                     i, m->snapshot_len);
        } else {
            char err[512];
            trace_event(TRACE_BULK, "snapapply s%d %d", i, m->snapshot_index);
            pthread_mutex_lock(&c->mu);
            ingest_snap(c, i, m->snapshot, m->snapshot_len, m->snapshot_index, err, sizeof err);
            if (err[0])
                fail_locked(c, "%s", err);
            pthread_mutex_unlock(&c->mu);
        }
    }
    /* else: a snapshot outside 3D; ignored, as 6.5840's applier does */

    pthread_mutex_lock(&c->mu);
    in->in_apply = false;
    pthread_mutex_unlock(&c->mu);
}

/* ---- using a running raft from any thread --------------------------------- */

/* The raft of server i (and a reference that keeps crash1 from killing it),
 * or NULL. need_connected: only if connected. */
static raft *acquire(cfg *c, int i, bool need_connected)
{
    if (i < 0 || i >= c->n)
        return NULL;
    pthread_mutex_lock(&c->mu);
    raft *rf = c->rafts[i];
    if (rf && need_connected && !c->connected[i])
        rf = NULL;
    if (rf)
        c->users[i]++;
    pthread_mutex_unlock(&c->mu);
    return rf;
}

static void release(cfg *c, int i)
{
    pthread_mutex_lock(&c->mu);
    if (--c->users[i] == 0)
        pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

/* For the trace: what get_state said, written when it changes (atomics, not
 * c->mu: recording must not add a scheduling point in sim mode). */
static void observed_state(cfg *c, int i, int t, bool leader)
{
    int v = t * 2 + leader;
    if (atomic_exchange(&c->observed[i], v) != v)
        trace_event(TRACE_HARNESS, "state s%d %d %s", i, t, leader ? "leader" : "follower");
}

/* Server i claimed to lead term t (raft_get_state, or raft_start accepting
 * a command). Election safety (§5.2) holds across the whole test: two
 * servers claiming one term fail it, however far apart the claims. */
static void note_leader(cfg *c, int i, int t)
{
    if (t < 0 || t >= CFG_TRACKED_TERMS)
        return;
    int seen = 0;
    if (!atomic_compare_exchange_strong(&c->leader_of[t], &seen, i + 1) && seen != i + 1)
        cfg_fail(c, "election safety (§5.2): servers %d and %d both said they lead term %d",
                 seen - 1, i, t);
}

static bool start_on(cfg *c, int i, bool need_connected, const void *cmd, size_t len,
                     int *index, int *term)
{
    int idx = -1, t = -1;
    bool ok = false;
    raft *rf = acquire(c, i, need_connected);
    if (rf) {
        int k = call_begin(c, false, "raft_start(server %d)", i);
        ok = raft_start(rf, cmd, len, &idx, &t);
        call_end(c, k);
        release(c, i);
        if (ok && (idx < 1 || idx > CFG_MAX_INDEX)) {
            cfg_fail(c, "raft_start on server %d returned true with index %d: the first "
                     "log index is 1", i, idx);
            ok = false;
        }
        if (ok)
            note_leader(c, i, t);
        trace_event(TRACE_BULK, "start s%d %d %d %s", i, idx, t, ok ? "accepted" : "refused");
    }
    if (index)
        *index = idx;
    if (term)
        *term = t;
    return ok;
}

bool cfg_start_cmd(cfg *c, int i, const void *cmd, size_t len, int *index, int *term)
{
    return start_on(c, i, false, cmd, len, index, term);
}

bool cfg_start_int(cfg *c, int i, int64_t v, int *index, int *term)
{
    char buf[32];
    size_t len;
    fmt_int(buf, sizeof buf, v, &len);
    return cfg_start_cmd(c, i, buf, len, index, term);
}

bool cfg_get_state(cfg *c, int i, int *term, bool *is_leader)
{
    int t = -1;
    bool l = false;
    raft *rf = acquire(c, i, false);
    if (rf) {
        int k = call_begin(c, false, "raft_get_state(server %d)", i);
        raft_get_state(rf, &t, &l);
        call_end(c, k);
        release(c, i);
        if (t < 0) {
            cfg_fail(c, "raft_get_state on server %d returned term %d: terms start at 0",
                     i, t);
            t = 0;
        }
        if (l)
            note_leader(c, i, t);
        observed_state(c, i, t, l);
    }
    if (term)
        *term = t;
    if (is_leader)
        *is_leader = l;
    return rf != NULL;
}

int cfg_snapshot_at(cfg *c, int i, int index)
{
    pthread_mutex_lock(&c->mu);
    if (index < 0 || index > c->last_applied[i])
        index = c->last_applied[i];
    size_t len = 0;
    uint8_t *snap = index > 0 ? make_snap(c, i, index, &len) : NULL;
    pthread_mutex_unlock(&c->mu);
    if (!snap) {
        if (index > 0)
            cfg_fail(c, "harness out of memory (a snapshot of server %d)", i);
        return 0;
    }
    raft *rf = acquire(c, i, false);
    if (rf) {
        give_snapshot(c, rf, i, index, snap, len, false);
        release(c, i);
    }
    free(snap);
    return rf ? index : 0;
}

/* ---- cluster ------------------------------------------------------------- */

int cfg_n(const cfg *c) { return c->n; }

labrpc_net *cfg_net(cfg *c) { return c->net; }

const char *cfg_server_name(cfg *c, int i) { return c->srvnames[i]; }

void *cfg_acquire_service(cfg *c, int i)
{
    if (!c->svc || !acquire(c, i, false))
        return NULL;
    pthread_mutex_lock(&c->mu);
    void *obj = c->objs[i];
    pthread_mutex_unlock(&c->mu);
    return obj;
}

void cfg_release_service(cfg *c, int i)
{
    release(c, i);
}

bool cfg_connected(cfg *c, int i)
{
    pthread_mutex_lock(&c->mu);
    bool r = c->connected[i];
    pthread_mutex_unlock(&c->mu);
    return r;
}

bool cfg_alive(cfg *c, int i)
{
    pthread_mutex_lock(&c->mu);
    bool r = c->rafts[i] != NULL;
    pthread_mutex_unlock(&c->mu);
    return r;
}

void cfg_set_unreliable(cfg *c, bool unreliable)
{
    labrpc_net_reliable(c->net, !unreliable);
}

void cfg_set_long_reordering(cfg *c, bool yes)
{
    labrpc_net_long_reordering(c->net, yes);
}

bool cfg_set_delay(cfg *c, int request_min_ms, int request_max_ms, int reply_min_ms,
                   int reply_max_ms)
{
    return labrpc_net_delay(c->net, request_min_ms, request_max_ms, reply_min_ms,
                            reply_max_ms) == LABRPC_OK;
}

void cfg_set_time_limit(cfg *c, int seconds)
{
    pthread_mutex_lock(&c->mu);
    c->limit_s = seconds;
    c->wd_deadline = c->t_make + (double)(seconds + WATCHDOG_GRACE_S) * c->factor;
    pthread_mutex_unlock(&c->mu);
}

void cfg_connect(cfg *c, int i)
{
    trace_event(TRACE_HARNESS, "connect s%d", i);
    pthread_mutex_lock(&c->mu);
    c->connected[i] = true;
    bool *conn = c->connected;
    /* only the test thread changes connectivity and ends: a snapshot of
     * connected[] under the lock is all we need */
    bool snap[64];
    for (int j = 0; j < c->n; j++)
        snap[j] = conn[j];
    pthread_mutex_unlock(&c->mu);

    for (int j = 0; j < c->n; j++) {
        if (!snap[j])
            continue;
        if (c->has_ends[i])
            labrpc_net_enable(c->net, c->ends[i * c->n + j], true);   /* outgoing */
        if (c->has_ends[j])
            labrpc_net_enable(c->net, c->ends[j * c->n + i], true);   /* incoming */
    }
}

void cfg_partition(cfg *c, const int *side)
{
    for (int i = 0; i < c->n; i++)
        cfg_connect(c, i);
    for (int i = 0; i < c->n; i++)
        for (int j = i + 1; j < c->n; j++)
            if (side[i] != side[j])
                cfg_link(c, i, j, false);
}

void cfg_link(cfg *c, int i, int j, bool up)
{
    trace_event(TRACE_HARNESS, "link s%d s%d %s", i, j, up ? "up" : "down");
    if (c->has_ends[i])
        labrpc_net_enable(c->net, c->ends[i * c->n + j], up);
    if (c->has_ends[j])
        labrpc_net_enable(c->net, c->ends[j * c->n + i], up);
}

void cfg_link_one_way(cfg *c, int from, int to, bool up)
{
    trace_event(TRACE_HARNESS, "link s%d s%d %s one-way", from, to, up ? "up" : "down");
    if (c->has_ends[from])
        labrpc_net_enable(c->net, c->ends[from * c->n + to], up);
}

void cfg_hold(cfg *c, int from, int to, bool hold)
{
    if (c->has_ends[from])
        labrpc_end_hold(c->ends[from * c->n + to], hold);
}

void cfg_echo(cfg *c, int from, int to, int copies, int gap_ms)
{
    if (c->has_ends[from])
        labrpc_end_echo(c->ends[from * c->n + to], copies, gap_ms);
}

void cfg_lose_replies(cfg *c, int from, int to, bool lose)
{
    trace_event(TRACE_HARNESS, "replies s%d s%d %s", from, to, lose ? "lost" : "back");
    if (c->has_ends[from])
        labrpc_end_lose_replies(c->ends[from * c->n + to], lose);
}

int cfg_held(cfg *c, int from, int to)
{
    return c->has_ends[from] ? labrpc_end_held(c->ends[from * c->n + to]) : 0;
}

void cfg_release(cfg *c, int from, int to)
{
    if (c->has_ends[from])
        labrpc_end_release(c->ends[from * c->n + to]);
}

void cfg_disconnect(cfg *c, int i)
{
    trace_event(TRACE_HARNESS, "disconnect s%d", i);
    pthread_mutex_lock(&c->mu);
    c->connected[i] = false;
    pthread_mutex_unlock(&c->mu);
    for (int j = 0; j < c->n; j++) {
        if (c->has_ends[i])
            labrpc_net_enable(c->net, c->ends[i * c->n + j], false);
        if (c->has_ends[j])
            labrpc_net_enable(c->net, c->ends[j * c->n + i], false);
    }
}

/* Detaches server i's Raft instance, waits until no client thread is using
 * it, then kills it and marks its apply context dead. Called with c->mu
 * held; returns with it released. */
static void kill_instance(cfg *c, int i)
{
    raft *rf = c->rafts[i];
    inst *in = c->insts[i];
    void *obj = c->svc ? c->objs[i] : NULL;
    c->rafts[i] = NULL;
    c->insts[i] = NULL;
    if (c->svc)
        c->objs[i] = NULL;
    while (c->users[i] > 0)
        pthread_cond_wait(&c->cond, &c->mu);
    pthread_mutex_unlock(&c->mu);
    if (!rf)
        return;
    if (obj) {
        int k = call_begin(c, false, "%s_free(server %d)", c->svc->api, i);
        c->svc->free(c->svc->ctx, obj);     /* kills its Raft too */
        call_end(c, k);
    } else {
        int k = call_begin(c, false, "raft_kill(server %d)", i);
        raft_kill(rf);
        call_end(c, k);
    }
    pthread_mutex_lock(&c->mu);
    in->dead = true;
    pthread_mutex_unlock(&c->mu);
}

/* A service's handlers may wait for their requests to commit, which a
 * crashed server's never will: the service is told to stop (its waits end)
 * before the harness waits for its running handlers. */
static void stop_service(cfg *c, int i)
{
    pthread_mutex_lock(&c->mu);
    void *obj = c->svc ? c->objs[i] : NULL;
    pthread_mutex_unlock(&c->mu);
    if (!obj)
        return;
    int k = call_begin(c, false, "%s_kill(server %d)", c->svc->api, i);
    c->svc->kill(c->svc->ctx, obj);
    call_end(c, k);
}

/* Crashes server i; its next incarnation starts from frozen (taken over)
 * if not NULL, else from a copy of what it persisted. */
static void crash(cfg *c, int i, persister *frozen)
{
    cfg_disconnect(c, i);
    labrpc_net_delete_server(c->net, c->srvnames[i]);

    stop_service(c, i);
    pthread_mutex_lock(&c->mu);
    labrpc_server *srv = c->srvs[i];
    c->srvs[i] = NULL;
    pthread_mutex_unlock(&c->mu);
    if (srv)
        labrpc_server_free(srv);   /* waits for running handlers */

    pthread_mutex_lock(&c->mu);
    /* a fresh persister with the old one's content: the dead instance keeps
     * (and may still write) the old one */
    persister *old = c->saved[i];
    if (frozen) {
        c->saved[i] = frozen;
    } else if (old) {
        persister *cp = persister_copy(old);
        if (!cp) {
            fail_locked(c, "harness out of memory (persister copy)");
            old = NULL;   /* keep using the old one */
        } else {
            c->saved[i] = cp;
        }
    }
    kill_instance(c, i);   /* releases c->mu */
    if (old)
        persister_free(old);
}

void cfg_crash1(cfg *c, int i)
{
    trace_event(TRACE_HARNESS, "crash s%d", i);
    crash(c, i, NULL);
}

void cfg_set_hostile(cfg *c, bool yes)
{
    labrpc_net_hostile(c->net, yes);
}

void cfg_set_staggered_snapshots(cfg *c, bool yes)
{
    pthread_mutex_lock(&c->mu);
    c->staggered = yes;
    pthread_mutex_unlock(&c->mu);
}

/* On a labrpc thread, under the network's lock: see cfg.h. */
static void crash_point_hook(void *arg)
{
    cfg *c = arg;
    c->cp.copy = persister_copy(c->cp.src);
    c->cp.fired = true;
}

bool cfg_arm_crash_point(cfg *c, int i, int after)
{
    cfg_disarm_crash_point(c);
    if (i < 0 || i >= c->n || !c->saved[i] || !c->has_ends[i])
        return false;
    c->cp.i = i;
    c->cp.src = c->saved[i];
    c->cp.fired = false;
    if (labrpc_net_crash_point(c->net, c->srvnames[i], after, &c->ends[i * c->n], c->n,
                               crash_point_hook, c) != LABRPC_OK) {
        cfg_fail(c, "harness out of memory (a crash point)");
        return false;
    }
    return true;
}

bool cfg_crash_point_fired(cfg *c)
{
    return c->cp.fired;
}

void cfg_disarm_crash_point(cfg *c)
{
    labrpc_net_crash_point(c->net, NULL, 0, NULL, 0, NULL, NULL);
}

bool cfg_crash_at_point(cfg *c, int i)
{
    cfg_disarm_crash_point(c);
    persister *frozen = NULL;
    if (c->cp.fired && c->cp.i == i) {
        frozen = c->cp.copy;
        c->cp.copy = NULL;
        c->cp.fired = false;
    }
    crash(c, i, frozen);
    return frozen != NULL;
}

bool cfg_start1(cfg *c, int i)
{
    crash(c, i, NULL);   /* traced as a crash only when a test asks for one */
    trace_event(TRACE_HARNESS, "restart s%d", i);

    /* a fresh set of client ends with fresh names, so the old instance's
     * ends (cancelled by raft_kill anyway) can't reach anyone */
    for (int j = 0; j < c->n; j++) {
        labrpc_end *e = NULL;
        char *name = c->endnames[i * c->n + j];
        for (int tries = 0; tries < 20 && !e; tries++) {
            fill_random(c, name, END_NAME_LEN);
            e = labrpc_net_make_end(c->net, name);
        }
        if (!e) {
            cfg_fail(c, "labrpc_net_make_end failed for server %d (out of memory?)", i);
            return false;
        }
        c->ends[i * c->n + j] = e;
        labrpc_end_tag(e, i);
        labrpc_net_connect(c->net, e, c->srvnames[j]);
        labrpc_net_enable(c->net, e, false);
    }
    c->has_ends[i] = true;

    char err[512] = "";
    pthread_mutex_lock(&c->mu);
    c->last_applied[i] = 0;
    if (c->saved[i]) {
        persister *cp = persister_copy(c->saved[i]);
        if (cp) {
            persister_free(c->saved[i]);
            c->saved[i] = cp;
        }
        size_t slen = 0;
        /* a service restores its own snapshot */
        uint8_t *snap = c->svc ? NULL : persister_read_snapshot(c->saved[i], &slen);
        if (snap && slen > 0) {
            /* as a service would: restore from the snapshot first */
            ingest_snap(c, i, snap, slen, -1, err, sizeof err);
            if (err[0])
                fail_locked(c, "restarting: persisted %s", err);
        }
        free(snap);
    } else {
        c->saved[i] = persister_new();
        if (!c->saved[i])
            fail_locked(c, "harness out of memory (persister)");
    }
    persister *ps = c->saved[i];
    inst *in = calloc(1, sizeof *in);
    if (in) {
        in->c = c;
        in->i = i;
        in->next = c->all_insts;
        c->all_insts = in;
    } else {
        fail_locked(c, "harness out of memory (instance)");
    }
    pthread_mutex_unlock(&c->mu);
    if (!in || !ps || err[0])
        return false;

    raft *rf = NULL;
    void *obj = NULL;
    if (c->svc) {
        int k = call_begin(c, false, "%s_make(server %d)", c->svc->api, i);
        obj = c->svc->make(c->svc->ctx, c, &c->ends[i * c->n], c->n, i, ps, &rf);
        call_end(c, k);
        if (!obj || !rf) {
            cfg_fail(c, "%s_make for server %d returned NULL%s (it could not start)",
                     c->svc->api, i, obj ? " as its Raft" : "");
            if (obj) {
                c->svc->kill(c->svc->ctx, obj);
                c->svc->free(c->svc->ctx, obj);
            }
            return false;
        }
    } else {
        int k = call_begin(c, false, "raft_make(server %d)", i);
        rf = raft_make(&c->ends[i * c->n], c->n, i, ps, apply_fn, in);
        call_end(c, k);
        if (!rf) {
            cfg_fail(c, "raft_make for server %d returned NULL (it could not start)", i);
            return false;
        }
    }
    pthread_mutex_lock(&c->mu);
    in->rf = rf;
    c->rafts[i] = rf;
    c->insts[i] = in;
    if (c->svc)
        c->objs[i] = obj;
    pthread_mutex_unlock(&c->mu);

    labrpc_service *svc = labrpc_service_new("Raft", rf);
    labrpc_server *srv = labrpc_server_new();
    if (!svc || !srv) {
        cfg_fail(c, "harness out of memory (labrpc service/server)");
        if (srv)
            labrpc_server_free(srv);
        /* a service that is in no server cannot be freed: out of memory anyway */
        return false;
    }
    int rr = raft_register(rf, svc);
    if (labrpc_server_add_service(srv, svc) != 0) {
        cfg_fail(c, "labrpc_server_add_service failed for server %d", i);
        labrpc_server_free(srv);
        return false;
    }
    int sr = 0;
    if (rr == 0 && c->svc && c->svc->add_services)
        sr = c->svc->add_services(c->svc->ctx, obj, srv);
    pthread_mutex_lock(&c->mu);
    c->srvs[i] = srv;
    pthread_mutex_unlock(&c->mu);
    if (rr != 0) {
        cfg_fail(c, "raft_register for server %d returned %d", i, rr);
        return false;
    }
    if (sr != 0)
        return false;   /* add_services recorded why */
    if (labrpc_net_add_server(c->net, c->srvnames[i], srv) != 0) {
        cfg_fail(c, "labrpc_net_add_server failed for server %d (out of memory)", i);
        return false;
    }
    return true;
}

static void seed_from_env(unsigned *seed)
{
    const char *s = getenv("RAFTLAB_SEED");
    if (s && *s) {
        char *end;
        unsigned long v = strtoul(s, &end, 0);
        if (*end == '\0') {
            *seed = (unsigned)v;
            return;
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *seed = (unsigned)ts.tv_nsec ^ (unsigned)ts.tv_sec ^ ((unsigned)getpid() << 16);
}

static cfg *make(int n, bool unreliable, bool snapshot, const cfg_service *svc);

cfg *cfg_make(int n, bool unreliable, bool snapshot)
{
    return make(n, unreliable, snapshot, NULL);
}

cfg *cfg_make_service(int n, bool unreliable, const cfg_service *svc)
{
    return make(n, unreliable, false, svc);
}

/* Who calls on an end: its tag (cfg_start1, kvh), as the trace names it. */
static const char *who(char *buf, size_t size, int tag)
{
    if (tag < 0)
        snprintf(buf, size, "h");
    else if (tag < CFG_TAG_CLIENT)
        snprintf(buf, size, "s%d", tag);
    else
        snprintf(buf, size, "c%d", tag - CFG_TAG_CLIENT);
    return buf;
}

/* labrpc's observer: every step of every call, into the trace's bulk. */
static void observe_rpc(void *arg, const labrpc_obs *ev)
{
    (void)arg;
    char from[16], m[48];
    unsigned long long id = (unsigned long long)ev->id;
    switch (ev->kind) {
    case LABRPC_OBS_CALL:
        trace_event(TRACE_BULK, "call %llu %s s%s %s %zu", id, who(from, sizeof from, ev->tag),
                    ev->server ? ev->server : "?",
                    trace_quote(m, sizeof m, ev->method, strlen(ev->method)), ev->bytes);
        break;
    case LABRPC_OBS_ECHO:
        trace_event(TRACE_BULK, "echo %llu %llu", id, (unsigned long long)ev->of);
        break;
    case LABRPC_OBS_DELIVER:
        trace_event(TRACE_BULK, "deliver %llu", id);
        break;
    case LABRPC_OBS_DROP_REQUEST:
        trace_event(TRACE_BULK, "drop %llu request", id);
        break;
    case LABRPC_OBS_DROP_REPLY:
        trace_event(TRACE_BULK, "drop %llu reply", id);
        break;
    case LABRPC_OBS_HELD:
        trace_event(TRACE_BULK, "held %llu", id);
        break;
    case LABRPC_OBS_REPLY:
        trace_event(TRACE_BULK, "reply %llu %zu", id, ev->bytes);
        break;
    case LABRPC_OBS_FAIL:
        trace_event(TRACE_BULK, "fail %llu", id);
        break;
    }
}

static cfg *make(int n, bool unreliable, bool snapshot, const cfg_service *svc)
{
    if (n < 1 || n > 64) {
        fprintf(stderr, "cfg_make: %d servers: must be 1..64\n", n);
        return NULL;
    }
    cfg *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(stderr, "cfg_make: out of memory\n");
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->n = n;
    c->snapshot = snapshot;
    c->svc = svc;
    c->factor = cfg_time_factor();
    unsigned seed;
    seed_from_env(&seed);
    c->rand_state = seed;
    c->t_make = cfg_now();
    c->main_thread = pthread_self();
    size_t un = (size_t)n;
    c->srvnames = calloc(un, sizeof *c->srvnames);
    c->rafts = calloc(un, sizeof *c->rafts);
    c->objs = calloc(un, sizeof *c->objs);
    c->insts = calloc(un, sizeof *c->insts);
    c->srvs = calloc(un, sizeof *c->srvs);
    c->saved = calloc(un, sizeof *c->saved);
    c->users = calloc(un, sizeof *c->users);
    c->connected = calloc(un, sizeof *c->connected);
    c->leader_of = calloc(CFG_TRACKED_TERMS, sizeof *c->leader_of);
    c->observed = calloc(un, sizeof *c->observed);
    c->endnames = calloc(un * un, sizeof *c->endnames);
    c->ends = calloc(un * un, sizeof *c->ends);
    c->has_ends = calloc(un, sizeof *c->has_ends);
    c->logs = calloc(un, sizeof *c->logs);
    c->last_applied = calloc(un, sizeof *c->last_applied);
    if (!c->srvnames || !c->rafts || !c->objs || !c->insts || !c->srvs || !c->saved || !c->users ||
        !c->connected || !c->endnames || !c->ends || !c->has_ends || !c->logs ||
        !c->last_applied || !c->leader_of || !c->observed) {
        fprintf(stderr, "cfg_make: out of memory\n");
        cfg_cleanup(c);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        snprintf(c->srvnames[i], sizeof c->srvnames[i], "%d", i);
        c->observed[i] = -1;
    }
    if (trace_start() != 0)
        fprintf(stderr, "cfg_make: out of memory for the trace (the run goes on without)\n");
    trace_meta("servers", "%d", n);
    trace_meta("seed", "%u", seed);

    c->net = labrpc_net_new(seed ^ 0x5eed5eedu);
    if (!c->net) {
        fprintf(stderr, "cfg_make: labrpc_net_new failed (out of memory or threads)\n");
        cfg_cleanup(c);
        return NULL;
    }
    labrpc_net_reliable(c->net, !unreliable);
    labrpc_net_long_delays(c->net, !svc);
    labrpc_net_observe(c->net, observe_rpc, c);   /* the key/value tests do without */

    c->limit_s = CFG_TEST_LIMIT_S;
    c->wd_deadline = c->t_make + (double)(CFG_TEST_LIMIT_S + WATCHDOG_GRACE_S) * c->factor;
    c->wd_phase = "the test";
    if (pthread_create(&c->wd, NULL, watchdog, c) == 0)
        c->wd_running = true;

    for (int i = 0; i < n; i++)
        if (!cfg_start1(c, i))
            break;
    for (int i = 0; i < n; i++)
        cfg_connect(c, i);
    return c;
}

void cfg_cleanup(cfg *c)
{
    if (!c)
        return;
    /* the run's picture: the grader turns the block into TestX.N.html */
    const char *tr = getenv("RAFTLAB_TRACE");
    pthread_mutex_lock(&c->mu);
    bool failed = c->failed;
    if (failed)
        trace_meta("failure", "%s", c->msg);
    pthread_mutex_unlock(&c->mu);
    trace_finish(stdout, failed || (tr && strcmp(tr, "1") == 0));

    pthread_mutex_lock(&c->mu);
    c->wd_deadline = cfg_now() + (double)CLEANUP_LIMIT_S * c->factor;
    c->wd_phase = "cfg_cleanup";
    pthread_mutex_unlock(&c->mu);

    if (c->rafts) {
        for (int i = 0; i < c->n; i++) {
            if (c->net)
                labrpc_net_delete_server(c->net, c->srvnames[i]);
            stop_service(c, i);
            if (c->srvs[i]) {
                labrpc_server_free(c->srvs[i]);
                c->srvs[i] = NULL;
            }
            pthread_mutex_lock(&c->mu);
            kill_instance(c, i);
        }
    }
    if (c->net) {
        int k = call_begin(c, false, "labrpc_net_cleanup%.0d", 0);
        labrpc_net_cleanup(c->net);
        call_end(c, k);
    }

    if (c->wd_running) {
        pthread_mutex_lock(&c->mu);
        c->wd_stop = true;
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->wd, NULL);
    }

    for (int i = 0; c->saved && i < c->n; i++)
        if (c->saved[i])
            persister_free(c->saved[i]);
    for (int i = 0; c->logs && i < c->n; i++)
        applog_clear(&c->logs[i]);
    applog_clear(&c->committed);
    if (c->cp.copy)
        persister_free(c->cp.copy);
    while (c->all_insts) {
        inst *in = c->all_insts;
        c->all_insts = in->next;
        free(in);
    }
    free(c->srvnames);
    free(c->rafts);
    free(c->objs);
    free(c->insts);
    free(c->srvs);
    free(c->saved);
    free(c->users);
    free(c->connected);
    free(c->leader_of);
    free(c->observed);
    free(c->endnames);
    free(c->ends);
    free(c->has_ends);
    free(c->logs);
    free(c->last_applied);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* raft.h's raft_note: the student's line in the trace. */
void raft_note(int me, const char *fmt, ...)
{
    if (!trace_enabled() || !fmt)
        return;
    char text[96], q[TRACE_LINE - 24];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    trace_event(TRACE_BULK, "note s%d %s", me, trace_quote(q, sizeof q, text, strlen(text)));
}

/* ---- begin / end ----------------------------------------------------------- */

int cfg_rpc_count(cfg *c, int i) { return labrpc_net_server_count(c->net, c->srvnames[i]); }
int cfg_rpc_total(cfg *c) { return labrpc_net_total_count(c->net); }
int64_t cfg_bytes_total(cfg *c) { return labrpc_net_total_bytes(c->net); }

void cfg_begin(cfg *c, const char *description)
{
    printf("%s ...\n", description);
    fflush(stdout);
    c->t0 = cfg_now();
    c->rpcs0 = cfg_rpc_total(c);
    c->bytes0 = cfg_bytes_total(c);
    pthread_mutex_lock(&c->mu);
    c->max_index0 = c->max_index;
    pthread_mutex_unlock(&c->mu);
}

static bool end(cfg *c, int ops)
{
    bool failed = cfg_failed(c);   /* also checks the time limit */
    pthread_mutex_lock(&c->mu);
    c->ended = true;
    pthread_mutex_unlock(&c->mu);
    if (failed)
        return false;
    double t = cfg_now() - c->t0;
    int nrpc = cfg_rpc_total(c) - c->rpcs0;
    int64_t nbytes = cfg_bytes_total(c) - c->bytes0;
    pthread_mutex_lock(&c->mu);
    int ncmds = c->max_index - c->max_index0;
    pthread_mutex_unlock(&c->mu);
    if (c->unchecked[0])
        printf("  ... Not checked --  %s\n", c->unchecked);
    if (ops >= 0)
        printf("  ... Passed --  %4.1f  %d %5d %5d\n", t, c->n, nrpc, ops);
    else
        printf("  ... Passed --  %4.1f  %d %4d %7" PRId64 " %4d\n", t, c->n, nrpc, nbytes, ncmds);
    fflush(stdout);
    return true;
}

bool cfg_end(cfg *c)
{
    return end(c, -1);
}

void cfg_note_unchecked(cfg *c, const char *note)
{
    snprintf(c->unchecked, sizeof c->unchecked, "%s", note);
}

const char *cfg_unchecked(cfg *c)
{
    return c->unchecked[0] ? c->unchecked : NULL;
}

bool cfg_end_ops(cfg *c, int ops)
{
    return end(c, ops < 0 ? 0 : ops);
}

bool cfg_ended(cfg *c)
{
    pthread_mutex_lock(&c->mu);
    bool e = c->ended;
    pthread_mutex_unlock(&c->mu);
    return e;
}

/* ---- checks ---------------------------------------------------------------- */

int cfg_check_one_leader(cfg *c)
{
    int n = c->n;
    for (int iters = 0; iters < 10; iters++) {
        if (cfg_failed(c) || over_time(c))
            return -1;
        cfg_sleep_ms(450 + cfg_rand(c) % 100);

        int terms[64];
        bool leader[64];
        for (int i = 0; i < n; i++) {
            leader[i] = false;
            terms[i] = -1;
            if (cfg_connected(c, i))
                cfg_get_state(c, i, &terms[i], &leader[i]);
        }
        if (cfg_failed(c))
            return -1;
        int last_term = -1, who = -1;
        for (int i = 0; i < n; i++) {
            if (!leader[i])
                continue;
            int count = 0;
            for (int j = 0; j < n; j++)
                if (leader[j] && terms[j] == terms[i])
                    count++;
            if (count > 1) {
                cfg_fail(c, "term %d has %d (>1) leaders", terms[i], count);
                return -1;
            }
            if (terms[i] > last_term) {
                last_term = terms[i];
                who = i;
            }
        }
        if (who != -1) {
            trace_event(TRACE_HARNESS, "check \"one leader: s%d in term %d\"", who, last_term);
            return who;
        }
    }
    cfg_fail(c, "expected one leader, got none");
    return -1;
}

int cfg_check_terms(cfg *c)
{
    int term = -1, first = -1;
    for (int i = 0; i < c->n; i++) {
        if (!cfg_connected(c, i))
            continue;
        int xterm;
        if (!cfg_get_state(c, i, &xterm, NULL))
            continue;
        if (term == -1) {
            term = xterm;
            first = i;
        } else if (term != xterm) {
            cfg_fail(c, "servers disagree on term: server %d has %d, server %d has %d",
                     first, term, i, xterm);
            return -1;
        }
    }
    return term;
}

bool cfg_check_no_leader(cfg *c)
{
    for (int i = 0; i < c->n; i++) {
        if (!cfg_connected(c, i))
            continue;
        int term;
        bool leader;
        if (cfg_get_state(c, i, &term, &leader) && leader) {
            cfg_fail(c, "expected no leader among connected servers, but %d claims to be "
                     "leader (term %d)", i, term);
            return false;
        }
    }
    return true;
}

/* Count of servers that applied index; *match: whether that value is cmd. */
static int n_committed_cmp(cfg *c, int index, const void *cmd, size_t len, bool *match,
                           cfg_value *out)
{
    int count = 0;
    const entry *first = NULL;
    int first_i = -1;
    char a[96], b[96];
    pthread_mutex_lock(&c->mu);
    if (c->failed) {
        pthread_mutex_unlock(&c->mu);
        return -1;
    }
    for (int i = 0; i < c->n; i++) {
        const entry *e = applog_get(&c->logs[i], index);
        if (!e)
            continue;
        if (count > 0 && !same(e, first->p, first->len)) {
            fmt_val(a, sizeof a, first->p, first->len);
            fmt_val(b, sizeof b, e->p, e->len);
            fail_locked(c, "committed values do not match: index %d, server %d has %s, "
                        "server %d has %s", index, first_i, a, i, b);
            pthread_mutex_unlock(&c->mu);
            return -1;
        }
        if (count == 0) {
            first = e;
            first_i = i;
        }
        count++;
    }
    if (match)
        *match = first && same(first, cmd, len);
    if (out) {
        out->p = NULL;
        out->len = 0;
        if (first) {
            out->p = malloc(first->len ? first->len : 1);
            if (!out->p) {
                fail_locked(c, "harness out of memory");
                pthread_mutex_unlock(&c->mu);
                return -1;
            }
            if (first->len)
                memcpy(out->p, first->p, first->len);
            out->len = first->len;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return count;
}

int cfg_n_committed(cfg *c, int index, cfg_value *out)
{
    return n_committed_cmp(c, index, NULL, 0, NULL, out);
}

int cfg_one(cfg *c, const void *cmd, size_t len, int expected_servers, bool retry)
{
    double t0 = cfg_now();
    int starts = 0;
    char v[96];
    while (cfg_now() - t0 < 10.0 * c->factor) {
        if (cfg_failed(c) || over_time(c))
            return -1;
        /* try all the servers, maybe one is the leader */
        int index = -1;
        for (int si = 0; si < c->n; si++) {
            starts = (starts + 1) % c->n;
            int idx;
            if (start_on(c, starts, true, cmd, len, &idx, NULL)) {
                index = idx;
                break;
            }
        }
        if (cfg_failed(c))
            return -1;
        if (index != -1) {
            /* somebody claimed to be the leader and to have submitted our
             * command; wait a while for agreement */
            double t1 = cfg_now();
            while (cfg_now() - t1 < 2.0 * c->factor) {
                bool match = false;
                int nd = n_committed_cmp(c, index, cmd, len, &match, NULL);
                if (nd < 0)
                    return -1;
                if (nd > 0 && nd >= expected_servers && match) {
                    trace_event(TRACE_HARNESS, "check \"agreement: index %d on %d servers\"",
                                index, nd);
                    return index;
                }
                cfg_sleep_ms(20);
            }
            if (!retry) {
                fmt_val(v, sizeof v, cmd, len);
                cfg_fail(c, "one(%s) failed to reach agreement (index %d did not commit "
                         "on %d servers within 2 s)", v, index, expected_servers);
                return -1;
            }
        } else {
            cfg_sleep_ms(50);
        }
    }
    fmt_val(v, sizeof v, cmd, len);
    cfg_fail(c, "one(%s) failed to reach agreement (10 s passed)", v);
    return -1;
}

int cfg_one_int(cfg *c, int64_t v, int expected_servers, bool retry)
{
    char buf[32];
    size_t len;
    fmt_int(buf, sizeof buf, v, &len);
    return cfg_one(c, buf, len, expected_servers, retry);
}

int cfg_wait(cfg *c, int index, int n, int start_term, cfg_value *out)
{
    int64_t to = 10;
    int polls = 30 * c->factor;
    for (int iters = 0; iters < polls; iters++) {
        int nd = cfg_n_committed(c, index, NULL);
        if (nd < 0)
            return -1;
        if (nd >= n)
            break;
        if (over_time(c))
            return -1;
        cfg_sleep_ms(to);
        if (to < 1000)
            to *= 2;
        if (start_term > -1) {
            for (int i = 0; i < c->n; i++) {
                int t;
                if (cfg_get_state(c, i, &t, NULL) && t > start_term)
                    return 0;   /* someone has moved on */
            }
        }
    }
    cfg_value v = { 0 };
    int nd = cfg_n_committed(c, index, &v);
    if (nd < 0)
        return -1;
    if (nd < n) {
        cfg_value_free(&v);
        cfg_fail(c, "only %d decided for index %d; wanted %d", nd, index, n);
        return -1;
    }
    if (out)
        *out = v;
    else
        cfg_value_free(&v);
    return 1;
}

static size_t largest(cfg *c, size_t (*size)(persister *ps))
{
    size_t max = 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n; i++) {
        if (c->saved[i]) {
            size_t s = size(c->saved[i]);
            if (s > max)
                max = s;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return max;
}

size_t cfg_log_size(cfg *c)
{
    return largest(c, persister_state_size);
}

size_t cfg_snapshot_size(cfg *c)
{
    return largest(c, persister_snapshot_size);
}
