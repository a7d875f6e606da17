/* labrpc: see labrpc.h.
 *
 * One mutex (net->mu) guards all network state: ends, registered servers,
 * calls, the timer heap and the work queue. Handlers and callbacks run
 * without it.
 *
 * A call moves through events: DISPATCH (run the handler on a worker), FAIL
 * (after a delay), DELIVER (a reply held by long reordering) and, for
 * non-blocking calls, CALLBACK (run the completion on a worker). Delayed
 * events wait in a min-heap served by one timer thread; ready events go to a
 * FIFO served by a pool of workers that grows on demand up to MAX_WORKERS.
 *
 * A call is "completed" once its outcome is fixed (first writer wins: a late
 * reply after a deletion or a cancel is dropped there) and "finished" once
 * its caller has seen it (blocking call returned, or callback returned).
 * Memory: a call is freed when it is finished and no event refers to it.
 */
#include "labrpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <valgrind/valgrind.h>

#define MAX_WORKERS 128
/* A thread hand-off through a sleeping futex costs 20-40 us on a VM; waiting
 * a few microseconds awake first brings a blocking call near 3 us. Only done
 * around blocking calls (labrpc_call), so Raft's labrpc_go traffic never
 * spins. Sim mode sets labrpc_spin_ns to 0. */
#ifdef RAFTLAB_SIM
#define SPIN_NS_DEFAULT 0       /* one thread runs at a time: nobody to spin for */
#else
#define SPIN_NS_DEFAULT 50000
#endif
#define SPIN_RECENT_NS 200000
/* An end's calls are spun for while most of its recent ones completed
 * within labrpc_spin_ns: a clerk whose every call waits for Raft to commit
 * would spin, and keep the workers spinning, for nothing. */
#define SPIN_SCORE_MAX 4
#define SPIN_SCORE_ON 2
#define MAX_ERRMSG 1024

typedef struct method {
    char *name;
    labrpc_handler fn;
} method;

struct labrpc_service {
    char *name;
    void *ctx;
    method *methods;
    size_t n, cap;
    bool in_server;
    labrpc_service *next;
};

typedef struct call call;

struct labrpc_server {
    labrpc_service *services;
    /* Guarded by the registering net's mu while registered; the count of
     * running handlers has its own lock because it outlives registration. */
    labrpc_net *net;
    call *running;          /* calls whose handler runs now (net->mu) */
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int active;             /* handlers running (mu) */
    int count;              /* requests dispatched (mu) */
};

struct labrpc_end {
    labrpc_net *net;
    char *name;
    char *server_name;
    bool enabled;
    bool cancelled;
    int unfinished;         /* calls made and not yet finished */
    call *pending;          /* calls not yet completed */
    pthread_cond_t drained; /* unfinished reached 0 */
    bool hold;              /* labrpc_end_hold: requests wait in held_* */
    bool lose_replies;      /* labrpc_end_lose_replies */
    call *held_first, *held_last;
    int tag;                /* labrpc_end_tag */
    int spin_score;         /* 0..SPIN_SCORE_MAX: recent calls quick enough to spin for */
    labrpc_end *next;
};

enum { EV_DISPATCH, EV_FAIL, EV_DELIVER, EV_CALLBACK };

typedef struct event {
    int type;
    call *c;
    int64_t due_ns;
    uint64_t seq;
    struct event *next;     /* in the work queue */
} event;

struct call {
    labrpc_end *end;
    char *method;           /* "Service.Method" */
    uint8_t *args;
    size_t args_len;
    uint8_t *reply;
    size_t reply_len;
    uint8_t *held;          /* a reply held back by long reordering */
    size_t held_len;
    int status;
    bool completed;
    bool finished;
    int refs;               /* 1 until finished, plus one per event */
    labrpc_done_fn done;    /* NULL for a blocking call */
    void *arg;
    pthread_cond_t cv;      /* blocking call: completed */
    atomic_int done_hint;   /* completed, for a spinning caller */
    int64_t done_ns;        /* when it completed, if labrpc_spin_ns > 0 */
    call *end_prev, *end_next;  /* end->pending, while not completed */
    labrpc_server *srv;         /* server whose handler runs it now */
    call *srv_prev, *srv_next;  /* srv->running */
    call *held_next;            /* end->held_first's list */
    bool released;              /* was held: delivered even if its end is now disabled */
    uint64_t id;                /* for the observer */
};

typedef struct reg {
    char *name;
    labrpc_server *srv;
    struct reg *next;
} reg;

struct labrpc_net {
    pthread_mutex_t mu;
    unsigned seed;
    bool reliable, long_reordering, long_delays, hostile;
    labrpc_observer obs;            /* labrpc_net_observe */
    void *obs_arg;
    uint64_t next_id;
    /* The armed crash point (labrpc_net_crash_point), or name NULL. */
    struct {
        char *name;
        int left;
        labrpc_end **ends;
        int nends;
        void (*hook)(void *arg);
        void *arg;
    } crash;
    int delay_ms[2][2];             /* labrpc_net_delay: [request/reply][min/max]; 0 = none */
    bool stopping;
    labrpc_end *ends;
    reg *servers;
    int total_count;
    int64_t total_bytes;
    int unfinished;                 /* calls of every end not yet finished */
    pthread_cond_t all_finished;
    int blocking_inflight;          /* labrpc_call()s under way that spin */
    int64_t last_blocking_ns;       /* when the last one finished */

    event **heap;                   /* timer min-heap by (due_ns, seq) */
    size_t heap_n, heap_cap;
    uint64_t seq;
    pthread_cond_t timer_cv;
    pthread_t timer;
    bool timer_started;

    event *q_head, *q_tail;         /* ready events */
    atomic_int q_hint;              /* q_head != NULL, for spinning workers */
    pthread_cond_t work_cv;
    int idle_workers;
    int nworkers;
    pthread_t workers[MAX_WORKERS];
};

long labrpc_spin_ns = SPIN_NS_DEFAULT;

/* The end whose callback this thread is running, to refuse a self-cancel. */
static _Thread_local labrpc_end *cb_end;

static void crash_point(labrpc_net *net, reg **pp);
static void remove_reg(labrpc_net *net, reg **pp);
static void crash_disarm(labrpc_net *net);
static void release_held(labrpc_net *net, labrpc_end *end, bool deliver);

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* Tells the observer, if any (net->mu held). */
static void observe(labrpc_net *net, labrpc_obs_kind kind, const call *c, size_t bytes, int status)
{
    if (!net->obs)
        return;
    labrpc_obs ev = { .kind = kind, .id = c->id, .tag = c->end->tag,
                      .server = c->end->server_name, .method = c->method, .bytes = bytes,
                      .status = status };
    net->obs(net->obs_arg, &ev);
}

void labrpc_net_observe(labrpc_net *net, labrpc_observer fn, void *arg)
{
    pthread_mutex_lock(&net->mu);
    net->obs = fn;
    net->obs_arg = arg;
    pthread_mutex_unlock(&net->mu);
}

/* No lock: a lock is a scheduling point in sim mode, and the end is not
 * in use yet (labrpc_net_connect, which follows, publishes it). */
void labrpc_end_tag(labrpc_end *end, int tag)
{
    end->tag = tag;
}

const char *labrpc_strerror(int status)
{
    switch (status) {
    case LABRPC_OK: return "ok";
    case LABRPC_FAIL: return "call failed (lost, timed out, or no server)";
    case LABRPC_ENOMETHOD: return "no such service or method";
    case LABRPC_EHANDLER: return "the handler rejected the request";
    case LABRPC_ECANCELED: return "the end was cancelled";
    case LABRPC_ENOMEM: return "out of memory";
    case LABRPC_EINVAL: return "invalid argument";
    }
    return "unknown labrpc status";
}

/* ---- services and servers ------------------------------------------------ */

labrpc_service *labrpc_service_new(const char *name, void *ctx)
{
    if (!name)
        return NULL;
    labrpc_service *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->name = dup_str(name);
    if (!s->name) {
        free(s);
        return NULL;
    }
    s->ctx = ctx;
    return s;
}

int labrpc_service_add(labrpc_service *svc, const char *name, labrpc_handler fn)
{
    if (!svc || !name || !fn || svc->in_server)
        return -1;
    if (svc->n == svc->cap) {
        size_t cap = svc->cap ? svc->cap * 2 : 4;
        method *m = realloc(svc->methods, cap * sizeof *m);
        if (!m)
            return -1;
        svc->methods = m;
        svc->cap = cap;
    }
    char *copy = dup_str(name);
    if (!copy)
        return -1;
    svc->methods[svc->n].name = copy;
    svc->methods[svc->n].fn = fn;
    svc->n++;
    return 0;
}

static void service_free(labrpc_service *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->methods[i].name);
    free(s->methods);
    free(s->name);
    free(s);
}

labrpc_server *labrpc_server_new(void)
{
    labrpc_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return NULL;
    if (pthread_mutex_init(&srv->mu, NULL) != 0) {
        free(srv);
        return NULL;
    }
    if (pthread_cond_init(&srv->idle, NULL) != 0) {
        pthread_mutex_destroy(&srv->mu);
        free(srv);
        return NULL;
    }
    return srv;
}

int labrpc_server_add_service(labrpc_server *srv, labrpc_service *svc)
{
    if (!srv || !svc || svc->in_server || srv->net)
        return -1;
    for (labrpc_service *s = srv->services; s; s = s->next)
        if (strcmp(s->name, svc->name) == 0)
            return -1;
    svc->in_server = true;
    svc->next = srv->services;
    srv->services = svc;
    return 0;
}

int labrpc_server_count(labrpc_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    int n = srv->count;
    pthread_mutex_unlock(&srv->mu);
    return n;
}

/* ---- call lifetime (net->mu held) --------------------------------------- */

static void call_unref(labrpc_net *net, call *c)
{
    (void)net;
    if (--c->refs > 0)
        return;
    if (!c->done)
        pthread_cond_destroy(&c->cv);
    free(c->method);
    free(c->args);
    free(c->reply);
    free(c->held);
    free(c);
}

static void end_unlink(call *c)
{
    labrpc_end *e = c->end;
    if (c->end_prev)
        c->end_prev->end_next = c->end_next;
    else if (e->pending == c)
        e->pending = c->end_next;
    if (c->end_next)
        c->end_next->end_prev = c->end_prev;
    c->end_prev = c->end_next = NULL;
}

static void srv_unlink(call *c)
{
    labrpc_server *srv = c->srv;
    if (!srv)
        return;
    if (c->srv_prev)
        c->srv_prev->srv_next = c->srv_next;
    else if (srv->running == c)
        srv->running = c->srv_next;
    if (c->srv_next)
        c->srv_next->srv_prev = c->srv_prev;
    c->srv_prev = c->srv_next = NULL;
    c->srv = NULL;
}

static void queue_push(labrpc_net *net, event *ev);

/* Marks c finished: it no longer counts against its end or the net. */
static void call_finish(labrpc_net *net, call *c)
{
    labrpc_end *e = c->end;
    c->finished = true;
    if (--e->unfinished == 0)
        pthread_cond_broadcast(&e->drained);
    if (--net->unfinished == 0)
        pthread_cond_broadcast(&net->all_finished);
    call_unref(net, c);
}

static void ghost_done(void *arg, int status, const uint8_t *reply, size_t reply_len);

/* Fixes c's outcome unless it already has one; takes ownership of reply
 * either way. Wakes a blocking caller or queues the callback. */
static void complete(labrpc_net *net, call *c, int status, uint8_t *reply,
                     size_t reply_len)
{
    if (c->completed) {
        free(reply);
        return;
    }
    c->completed = true;
    c->status = status;
    c->reply = reply;
    c->reply_len = reply_len;
    end_unlink(c);
    if (c->done != ghost_done)    /* a replay's reply goes nowhere */
        observe(net, status == LABRPC_OK ? LABRPC_OBS_REPLY : LABRPC_OBS_FAIL, c,
                status == LABRPC_OK ? reply_len : 0, status);
    if (!c->done) {
        if (labrpc_spin_ns > 0)
            c->done_ns = now_ns();
        atomic_store_explicit(&c->done_hint, 1, memory_order_release);
        pthread_cond_signal(&c->cv);
        return;
    }
    event *ev = malloc(sizeof *ev);
    if (!ev) {
        /* No memory to queue the callback: run it here rather than lose it.
         * Callers of complete hold net->mu, so drop it around the call. */
        labrpc_end *e = c->end;
        pthread_mutex_unlock(&net->mu);
        labrpc_end *saved = cb_end;
        cb_end = e;
        c->done(c->arg, c->status, c->reply, c->reply_len);
        cb_end = saved;
        pthread_mutex_lock(&net->mu);
        call_finish(net, c);
        return;
    }
    ev->type = EV_CALLBACK;
    ev->c = c;
    c->refs++;
    queue_push(net, ev);
}

/* ---- timer heap and work queue (net->mu held) ------------------------- */

static bool ev_before(const event *a, const event *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static int heap_push(labrpc_net *net, event *ev)
{
    if (net->heap_n == net->heap_cap) {
        size_t cap = net->heap_cap ? net->heap_cap * 2 : 64;
        event **h = realloc(net->heap, cap * sizeof *h);
        if (!h)
            return -1;
        net->heap = h;
        net->heap_cap = cap;
    }
    size_t i = net->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_before(ev, net->heap[parent]))
            break;
        net->heap[i] = net->heap[parent];
        i = parent;
    }
    net->heap[i] = ev;
    if (i == 0)
        pthread_cond_signal(&net->timer_cv);
    return 0;
}

static event *heap_pop(labrpc_net *net)
{
    event *top = net->heap[0];
    event *last = net->heap[--net->heap_n];
    size_t i = 0, n = net->heap_n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const event *best = last;
        if (l < n && ev_before(net->heap[l], best)) {
            m = l;
            best = net->heap[l];
        }
        if (r < n && ev_before(net->heap[r], best))
            m = r;
        if (m == i)
            break;
        net->heap[i] = net->heap[m];
        i = m;
    }
    if (n > 0)
        net->heap[i] = last;
    return top;
}

static void *worker_main(void *arg);

static void queue_push(labrpc_net *net, event *ev)
{
    ev->next = NULL;
    if (net->q_tail)
        net->q_tail->next = ev;
    else
        net->q_head = ev;
    net->q_tail = ev;
    atomic_store_explicit(&net->q_hint, 1, memory_order_release);
    if (net->idle_workers > 0) {
        pthread_cond_signal(&net->work_cv);
    } else if (net->nworkers < MAX_WORKERS && !net->stopping) {
        /* Every worker is busy (maybe in a blocking handler): add one. If
         * that fails, the existing workers will get to it. */
        if (pthread_create(&net->workers[net->nworkers], NULL, worker_main, net) == 0)
            net->nworkers++;
    }
}

/* Schedules event type for c after delay_ms (now if 0). Takes a reference.
 * On out-of-memory the call fails at once instead. */
static void schedule(labrpc_net *net, call *c, int type, int delay_ms)
{
    event *ev = malloc(sizeof *ev);
    if (!ev) {
        complete(net, c, LABRPC_ENOMEM, NULL, 0);
        return;
    }
    ev->type = type;
    ev->c = c;
    c->refs++;
    if (delay_ms <= 0) {
        queue_push(net, ev);
        return;
    }
    ev->due_ns = now_ns() + (int64_t)delay_ms * 1000000;
    ev->seq = net->seq++;
    if (heap_push(net, ev) != 0) {
        c->refs--;
        free(ev);
        complete(net, c, LABRPC_ENOMEM, NULL, 0);
    }
}

static int rnd(labrpc_net *net, int n)
{
    return n <= 0 ? 0 : rand_r(&net->seed) % n;
}

enum { LEG_REQUEST, LEG_REPLY };

/* The extra delay of one leg set by labrpc_net_delay; no draw from the seed
 * when there is none, so default runs stay as they were. net->mu held. */
static int leg_delay(labrpc_net *net, int leg)
{
    int lo = net->delay_ms[leg][0], hi = net->delay_ms[leg][1];
    if (hi <= 0)
        return 0;
    return lo + rnd(net, hi - lo + 1);
}

static reg *find_reg(labrpc_net *net, const char *name)
{
    if (!name)
        return NULL;
    for (reg *r = net->servers; r; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

/* ---- handlers ---------------------------------------------------------- */

/* Finds "Service.Method" in srv, or writes why not into *msg (malloc'd). */
static labrpc_handler find_method(labrpc_server *srv, const char *full,
                                  labrpc_service **svc_out, char **msg)
{
    const char *dot = strchr(full, '.');
    size_t svc_len = dot ? (size_t)(dot - full) : strlen(full);
    const char *mname = dot ? dot + 1 : "";
    for (labrpc_service *s = srv->services; s; s = s->next) {
        if (strlen(s->name) != svc_len || strncmp(s->name, full, svc_len) != 0)
            continue;
        for (size_t i = 0; i < s->n; i++)
            if (strcmp(s->methods[i].name, mname) == 0) {
                *svc_out = s;
                return s->methods[i].fn;
            }
    }
    /* Name what exists, so the mistake is obvious. */
    char *m = malloc(MAX_ERRMSG);
    if (m) {
        int off = snprintf(m, MAX_ERRMSG, "labrpc: unknown method \"%s\"; the server offers:", full);
        bool any = false;
        for (labrpc_service *s = srv->services; s && off < MAX_ERRMSG; s = s->next)
            for (size_t i = 0; i < s->n && off < MAX_ERRMSG; i++) {
                off += snprintf(m + off, MAX_ERRMSG - off, " %s.%s", s->name, s->methods[i].name);
                any = true;
            }
        if (!any && off < MAX_ERRMSG)
            snprintf(m + off, MAX_ERRMSG - off, " (nothing)");
    }
    *msg = m;
    return NULL;
}

/* A worker's DISPATCH: run the handler and decide the reply's fate. */
static void dispatch(labrpc_net *net, call *c)
{
    labrpc_end *e = c->end;
    reg *r = e->enabled || c->released ? find_reg(net, e->server_name) : NULL;
    if (c->completed)
        return;
    if (!r || net->stopping) {
        complete(net, c, LABRPC_FAIL, NULL, 0);
        return;
    }
    observe(net, LABRPC_OBS_DELIVER, c, c->args_len, 0);
    labrpc_server *srv = r->srv;
    c->srv = srv;
    c->srv_prev = NULL;
    c->srv_next = srv->running;
    if (srv->running)
        srv->running->srv_prev = c;
    srv->running = c;
    pthread_mutex_lock(&srv->mu);
    srv->active++;
    srv->count++;
    pthread_mutex_unlock(&srv->mu);
    /* c stays alive: the worker holds the DISPATCH event's reference. */
    pthread_mutex_unlock(&net->mu);

    labrpc_service *svc = NULL;
    char *msg = NULL;
    labrpc_handler fn = find_method(srv, c->method, &svc, &msg);
    int status;
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    if (fn) {
        codec_enc enc;
        codec_enc_init(&enc);
        int rc = fn(svc->ctx, c->args, c->args_len, &enc);
        if (rc != 0) {
            status = LABRPC_EHANDLER;
            codec_enc_free(&enc);
        } else {
            reply = codec_enc_take(&enc, &reply_len);
            status = reply ? LABRPC_OK : LABRPC_ENOMEM;
        }
    } else {
        status = msg ? LABRPC_ENOMETHOD : LABRPC_ENOMEM;
        reply = (uint8_t *)msg;
        reply_len = msg ? strlen(msg) + 1 : 0;
    }

    pthread_mutex_lock(&net->mu);
    bool still_there = c->srv == srv;   /* deletion unlinks and fails c */
    if (still_there)
        srv_unlink(c);
    pthread_mutex_lock(&srv->mu);
    if (--srv->active == 0)
        pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->mu);

    if (c->completed || !still_there) {
        complete(net, c, LABRPC_FAIL, reply, reply_len);  /* late: dropped */
    } else if (status != LABRPC_OK) {
        complete(net, c, status, reply, reply_len);
    } else if (c->end->lose_replies || (!net->reliable && rnd(net, 1000) < 100)) {
        observe(net, LABRPC_OBS_DROP_REPLY, c, reply_len, 0);
        complete(net, c, LABRPC_FAIL, reply, reply_len);  /* reply lost */
    } else {
        net->total_bytes += (int64_t)reply_len;
        if (net->long_reordering && rnd(net, 900) < 600) {
            /* Hold the reply 200-2200 ms, skewed short. */
            int ms = 200 + rnd(net, 1 + rnd(net, 2000));
            c->held = reply;
            c->held_len = reply_len;
            schedule(net, c, EV_DELIVER, ms);
        } else if (net->delay_ms[LEG_REPLY][1] > 0) {
            c->held = reply;
            c->held_len = reply_len;
            schedule(net, c, EV_DELIVER, leg_delay(net, LEG_REPLY));
        } else {
            complete(net, c, LABRPC_OK, reply, reply_len);
        }
    }
    if (still_there && status == LABRPC_OK && net->crash.name)
        for (reg **pp = &net->servers; *pp; pp = &(*pp)->next)
            if ((*pp)->srv == srv) {
                crash_point(net, pp);
                break;
            }
}

/* Runs one event; net->mu held on entry and exit. */
static void run_event(labrpc_net *net, event *ev)
{
    call *c = ev->c;
    switch (ev->type) {
    case EV_DISPATCH:
        dispatch(net, c);
        break;
    case EV_FAIL:
        complete(net, c, LABRPC_FAIL, NULL, 0);
        break;
    case EV_DELIVER: {
        uint8_t *reply = c->held;
        c->held = NULL;
        complete(net, c, LABRPC_OK, reply, c->held_len);
        break;
    }
    case EV_CALLBACK: {
        labrpc_end *e = c->end;
        pthread_mutex_unlock(&net->mu);
        cb_end = e;
        c->done(c->arg, c->status, c->status == LABRPC_OK || c->status == LABRPC_ENOMETHOD ? c->reply : NULL,
                c->status == LABRPC_OK || c->status == LABRPC_ENOMETHOD ? c->reply_len : 0);
        cb_end = NULL;
        pthread_mutex_lock(&net->mu);
        call_finish(net, c);
        break;
    }
    }
    free(ev);
    call_unref(net, c);
}

/* Is a blocking caller likely to want a worker again soon? */
static bool blocking_recently(labrpc_net *net)
{
    return labrpc_spin_ns > 0 &&
           (net->blocking_inflight > 0 || now_ns() - net->last_blocking_ns < SPIN_RECENT_NS);
}

/* Waits up to labrpc_spin_ns for *hint to become non-zero, with net->mu
 * dropped; the caller re-checks the real condition under the lock. The
 * atomic is only a hint: the mutex still orders everything. */
static void spin_until(labrpc_net *net, const atomic_int *hint)
{
    pthread_mutex_unlock(&net->mu);
    int64_t deadline = now_ns() + labrpc_spin_ns;
    for (int i = 1; !atomic_load_explicit(hint, memory_order_acquire); i++)
        if ((i & 63) == 0 && now_ns() > deadline)
            break;
    pthread_mutex_lock(&net->mu);
}

static void *worker_main(void *arg)
{
    labrpc_net *net = arg;
    pthread_mutex_lock(&net->mu);
    for (;;) {
        if (!net->q_head && !net->stopping && blocking_recently(net)) {
            net->idle_workers++;
            spin_until(net, &net->q_hint);
            net->idle_workers--;
        }
        while (!net->q_head && !net->stopping) {
            net->idle_workers++;
            pthread_cond_wait(&net->work_cv, &net->mu);
            net->idle_workers--;
        }
        event *ev = net->q_head;
        if (!ev)
            break;  /* stopping and the queue is drained */
        net->q_head = ev->next;
        if (!net->q_head) {
            net->q_tail = NULL;
            atomic_store_explicit(&net->q_hint, 0, memory_order_relaxed);
        }
        run_event(net, ev);
    }
    pthread_mutex_unlock(&net->mu);
    return NULL;
}

static void *timer_main(void *arg)
{
    labrpc_net *net = arg;
    pthread_mutex_lock(&net->mu);
    while (!net->stopping) {
        if (net->heap_n == 0) {
            pthread_cond_wait(&net->timer_cv, &net->mu);
            continue;
        }
        int64_t due = net->heap[0]->due_ns, now = now_ns();
        if (due > now) {
            struct timespec ts = { due / 1000000000, due % 1000000000 };
            pthread_cond_timedwait(&net->timer_cv, &net->mu, &ts);
            continue;
        }
        event *ev = heap_pop(net);
        if (ev->type == EV_DISPATCH) {
            queue_push(net, ev);    /* handlers run on workers */
        } else {
            run_event(net, ev);     /* FAIL/DELIVER are quick */
        }
    }
    pthread_mutex_unlock(&net->mu);
    return NULL;
}

/* ---- the network ------------------------------------------------------- */

labrpc_net *labrpc_net_new(unsigned seed)
{
    labrpc_net *net = calloc(1, sizeof *net);
    if (!net)
        return NULL;
    net->seed = seed;
    net->reliable = true;
    if (RUNNING_ON_VALGRIND)
        labrpc_spin_ns = 0;     /* threads run one at a time there */
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        goto fail_alloc;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_mutex_init(&net->mu, NULL);
    rc |= pthread_cond_init(&net->timer_cv, &attr);
    rc |= pthread_cond_init(&net->work_cv, NULL);
    rc |= pthread_cond_init(&net->all_finished, NULL);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        goto fail_alloc;
    if (pthread_create(&net->timer, NULL, timer_main, net) != 0)
        goto fail_alloc;
    net->timer_started = true;
    pthread_mutex_lock(&net->mu);
    rc = pthread_create(&net->workers[0], NULL, worker_main, net);
    if (rc == 0)
        net->nworkers = 1;
    pthread_mutex_unlock(&net->mu);
    if (rc != 0) {
        labrpc_net_cleanup(net);
        return NULL;
    }
    return net;
fail_alloc:
    free(net);
    return NULL;
}

void labrpc_net_cleanup(labrpc_net *net)
{
    if (!net)
        return;
    pthread_mutex_lock(&net->mu);
    crash_disarm(net);
    /* Fail every call not yet completed, then let callers and callbacks see
     * it before the threads go. */
    for (labrpc_end *e = net->ends; e; e = e->next) {
        e->cancelled = true;
        while (e->pending)
            complete(net, e->pending, LABRPC_FAIL, NULL, 0);
        release_held(net, e, false);
    }
    for (reg *r = net->servers; r; r = r->next)
        while (r->srv->running) {
            call *c = r->srv->running;
            srv_unlink(c);
        }
    while (net->unfinished > 0)
        pthread_cond_wait(&net->all_finished, &net->mu);
    net->stopping = true;
    pthread_cond_broadcast(&net->work_cv);
    pthread_cond_broadcast(&net->timer_cv);
    int nworkers = net->nworkers;
    pthread_mutex_unlock(&net->mu);

    if (net->timer_started)
        pthread_join(net->timer, NULL);
    for (int i = 0; i < nworkers; i++)
        pthread_join(net->workers[i], NULL);

    /* Events still in the heap refer to finished calls: drop them. */
    while (net->heap_n > 0) {
        event *ev = heap_pop(net);
        call_unref(net, ev->c);
        free(ev);
    }
    free(net->heap);
    while (net->servers) {
        reg *r = net->servers;
        net->servers = r->next;
        r->srv->net = NULL;
        free(r->name);
        free(r);
    }
    while (net->ends) {
        labrpc_end *e = net->ends;
        net->ends = e->next;
        pthread_cond_destroy(&e->drained);
        free(e->name);
        free(e->server_name);
        free(e);
    }
    pthread_cond_destroy(&net->timer_cv);
    pthread_cond_destroy(&net->work_cv);
    pthread_cond_destroy(&net->all_finished);
    pthread_mutex_destroy(&net->mu);
    free(net);
}

void labrpc_net_reliable(labrpc_net *net, bool yes)
{
    pthread_mutex_lock(&net->mu);
    net->reliable = yes;
    pthread_mutex_unlock(&net->mu);
}

void labrpc_net_long_reordering(labrpc_net *net, bool yes)
{
    pthread_mutex_lock(&net->mu);
    net->long_reordering = yes;
    pthread_mutex_unlock(&net->mu);
}

void labrpc_net_hostile(labrpc_net *net, bool yes)
{
    pthread_mutex_lock(&net->mu);
    net->hostile = yes;
    pthread_mutex_unlock(&net->mu);
}

static void crash_disarm(labrpc_net *net)
{
    free(net->crash.name);
    free(net->crash.ends);
    memset(&net->crash, 0, sizeof net->crash);
}

int labrpc_net_crash_point(labrpc_net *net, const char *name, int after, labrpc_end *const *ends,
                           int nends, void (*hook)(void *arg), void *arg)
{
    if (!net || (name && (after < 1 || nends < 0 || (nends && !ends) || !hook)))
        return LABRPC_EINVAL;
    char *n = name ? dup_str(name) : NULL;
    labrpc_end **e = name ? malloc(sizeof *e * (size_t)(nends ? nends : 1)) : NULL;
    if (name && (!n || !e)) {
        free(n);
        free(e);
        return LABRPC_ENOMEM;
    }
    if (nends)
        memcpy(e, ends, sizeof *e * (size_t)nends);
    pthread_mutex_lock(&net->mu);
    crash_disarm(net);
    if (name) {
        net->crash.name = n;
        net->crash.left = after;
        net->crash.ends = e;
        net->crash.nends = nends;
        net->crash.hook = hook;
        net->crash.arg = arg;
    }
    pthread_mutex_unlock(&net->mu);
    return LABRPC_OK;
}

/* After server r answered a request: the armed crash point, if this was
 * its last answer (net->mu held). */
static void crash_point(labrpc_net *net, reg **pp)
{
    reg *r = *pp;
    if (!net->crash.name || strcmp(net->crash.name, r->name) != 0 || --net->crash.left > 0)
        return;
    for (int k = 0; k < net->crash.nends; k++)
        net->crash.ends[k]->enabled = false;
    remove_reg(net, pp);   /* its running handlers' replies are dropped */
    net->crash.hook(net->crash.arg);
    crash_disarm(net);
}

void labrpc_net_long_delays(labrpc_net *net, bool yes)
{
    pthread_mutex_lock(&net->mu);
    net->long_delays = yes;
    pthread_mutex_unlock(&net->mu);
}

int labrpc_net_delay(labrpc_net *net, int request_min_ms, int request_max_ms,
                     int reply_min_ms, int reply_max_ms)
{
    if (!net || request_min_ms < 0 || request_max_ms < request_min_ms ||
        reply_min_ms < 0 || reply_max_ms < reply_min_ms)
        return LABRPC_EINVAL;
    pthread_mutex_lock(&net->mu);
    net->delay_ms[LEG_REQUEST][0] = request_min_ms;
    net->delay_ms[LEG_REQUEST][1] = request_max_ms;
    net->delay_ms[LEG_REPLY][0] = reply_min_ms;
    net->delay_ms[LEG_REPLY][1] = reply_max_ms;
    pthread_mutex_unlock(&net->mu);
    return LABRPC_OK;
}

/* Unregisters r's server: its running calls fail now. net->mu held. */
static void unregister(labrpc_net *net, reg *r)
{
    labrpc_server *srv = r->srv;
    while (srv->running) {
        call *c = srv->running;
        srv_unlink(c);
        complete(net, c, LABRPC_FAIL, NULL, 0);
    }
    srv->net = NULL;
}

int labrpc_net_add_server(labrpc_net *net, const char *name, labrpc_server *srv)
{
    if (!net || !name || !srv)
        return -1;
    char *n1 = dup_str(name);
    reg *fresh = malloc(sizeof *fresh);
    if (!n1 || !fresh) {
        free(n1);
        free(fresh);
        return -1;
    }
    pthread_mutex_lock(&net->mu);
    if (srv->net) {     /* already registered somewhere: refuse */
        pthread_mutex_unlock(&net->mu);
        free(n1);
        free(fresh);
        return -1;
    }
    reg *r = find_reg(net, name);
    if (r) {
        unregister(net, r);
        free(n1);
        free(fresh);
    } else {
        r = fresh;
        r->name = n1;
        r->next = net->servers;
        net->servers = r;
    }
    r->srv = srv;
    srv->net = net;
    pthread_mutex_unlock(&net->mu);
    return 0;
}

/* Unregisters and unlinks *pp. net->mu held. */
static void remove_reg(labrpc_net *net, reg **pp)
{
    reg *r = *pp;
    unregister(net, r);
    *pp = r->next;
    free(r->name);
    free(r);
}

void labrpc_net_delete_server(labrpc_net *net, const char *name)
{
    pthread_mutex_lock(&net->mu);
    for (reg **pp = &net->servers; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0) {
            remove_reg(net, pp);
            break;
        }
    pthread_mutex_unlock(&net->mu);
}

void labrpc_server_free(labrpc_server *srv)
{
    if (!srv)
        return;
    labrpc_net *net = srv->net;
    if (net) {
        pthread_mutex_lock(&net->mu);
        for (reg **pp = &net->servers; *pp; pp = &(*pp)->next)
            if ((*pp)->srv == srv) {
                remove_reg(net, pp);
                break;
            }
        pthread_mutex_unlock(&net->mu);
    }
    pthread_mutex_lock(&srv->mu);
    while (srv->active > 0)
        pthread_cond_wait(&srv->idle, &srv->mu);
    pthread_mutex_unlock(&srv->mu);
    while (srv->services) {
        labrpc_service *s = srv->services;
        srv->services = s->next;
        service_free(s);
    }
    pthread_cond_destroy(&srv->idle);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}

labrpc_end *labrpc_net_make_end(labrpc_net *net, const char *name)
{
    if (!net || !name)
        return NULL;
    labrpc_end *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->net = net;
    e->name = dup_str(name);
    e->tag = -1;
    e->spin_score = SPIN_SCORE_MAX;   /* spin until its calls prove slow */
    if (!e->name || pthread_cond_init(&e->drained, NULL) != 0) {
        free(e->name);
        free(e);
        return NULL;
    }
    pthread_mutex_lock(&net->mu);
    for (labrpc_end *o = net->ends; o; o = o->next)
        if (strcmp(o->name, name) == 0) {
            pthread_mutex_unlock(&net->mu);
            pthread_cond_destroy(&e->drained);
            free(e->name);
            free(e);
            return NULL;
        }
    e->next = net->ends;
    net->ends = e;
    pthread_mutex_unlock(&net->mu);
    return e;
}

void labrpc_net_connect(labrpc_net *net, labrpc_end *end, const char *server_name)
{
    char *copy = server_name ? dup_str(server_name) : NULL;
    pthread_mutex_lock(&net->mu);
    free(end->server_name);
    end->server_name = copy;    /* NULL (out of memory) leaves it unconnected */
    pthread_mutex_unlock(&net->mu);
}

void labrpc_net_enable(labrpc_net *net, labrpc_end *end, bool enabled)
{
    pthread_mutex_lock(&net->mu);
    end->enabled = enabled;
    pthread_mutex_unlock(&net->mu);
}

/* Empties end's held requests: each still waiting is delivered now (if
 * deliver), in the order sent; the list's references go (net->mu held). */
static void release_held(labrpc_net *net, labrpc_end *end, bool deliver)
{
    call *c = end->held_first;
    end->held_first = end->held_last = NULL;
    while (c) {
        call *next = c->held_next;
        if (deliver && !c->completed) {
            c->released = true;
            schedule(net, c, EV_DISPATCH, 0);
        }
        call_unref(net, c);
        c = next;
    }
}

void labrpc_end_hold(labrpc_end *end, bool hold)
{
    labrpc_net *net = end->net;
    pthread_mutex_lock(&net->mu);
    end->hold = hold;
    pthread_mutex_unlock(&net->mu);
}

void labrpc_end_lose_replies(labrpc_end *end, bool lose)
{
    labrpc_net *net = end->net;
    pthread_mutex_lock(&net->mu);
    end->lose_replies = lose;
    pthread_mutex_unlock(&net->mu);
}

int labrpc_end_held(labrpc_end *end)
{
    labrpc_net *net = end->net;
    pthread_mutex_lock(&net->mu);
    int n = 0;
    for (call *c = end->held_first; c; c = c->held_next)
        n += !c->completed;
    pthread_mutex_unlock(&net->mu);
    return n;
}

void labrpc_end_release(labrpc_end *end)
{
    labrpc_net *net = end->net;
    pthread_mutex_lock(&net->mu);
    release_held(net, end, true);
    pthread_mutex_unlock(&net->mu);
}

int labrpc_net_total_count(labrpc_net *net)
{
    pthread_mutex_lock(&net->mu);
    int n = net->total_count;
    pthread_mutex_unlock(&net->mu);
    return n;
}

int64_t labrpc_net_total_bytes(labrpc_net *net)
{
    pthread_mutex_lock(&net->mu);
    int64_t n = net->total_bytes;
    pthread_mutex_unlock(&net->mu);
    return n;
}

int labrpc_net_server_count(labrpc_net *net, const char *name)
{
    pthread_mutex_lock(&net->mu);
    reg *r = find_reg(net, name);
    labrpc_server *srv = r ? r->srv : NULL;
    int n = 0;
    if (srv) {
        pthread_mutex_lock(&srv->mu);
        n = srv->count;
        pthread_mutex_unlock(&srv->mu);
    }
    pthread_mutex_unlock(&net->mu);
    return n;
}

/* ---- calls ------------------------------------------------------------- */

/* Creates and launches a call; on success returns it with net->mu held. */
static void schedule_request(labrpc_net *net, call *c);

/* A stale replay's reply goes nowhere. */
static void ghost_done(void *arg, int status, const uint8_t *reply, size_t reply_len)
{
    (void)arg, (void)status, (void)reply, (void)reply_len;
}

/* Links c into its end's pending calls (net->mu held). */
static void link_call(labrpc_net *net, call *c)
{
    labrpc_end *end = c->end;
    end->unfinished++;
    net->unfinished++;
    c->end_next = end->pending;
    if (end->pending)
        end->pending->end_prev = c;
    end->pending = c;
}

/* The request of c delivered once more, ms from now, its reply going
 * nowhere: hostile mode's replays (labrpc_net_hostile) and echoes
 * (labrpc_end_echo, released: delivered even on a disabled end). Out of
 * memory: no replay (net->mu held). */
static void ghost(labrpc_net *net, const call *c, int ms, bool released)
{
    call *g = calloc(1, sizeof *g);
    if (!g)
        return;
    g->method = dup_str(c->method);
    g->args = malloc(c->args_len ? c->args_len : 1);
    if (!g->method || !g->args) {
        free(g->method);
        free(g->args);
        free(g);
        return;
    }
    if (c->args_len)
        memcpy(g->args, c->args, c->args_len);
    g->args_len = c->args_len;
    g->end = c->end;
    g->done = ghost_done;
    g->refs = 1;
    g->released = released;
    g->id = ++net->next_id;
    link_call(net, g);
    if (net->obs) {
        labrpc_obs ev = { .kind = LABRPC_OBS_ECHO, .id = g->id, .of = c->id, .tag = g->end->tag,
                          .server = g->end->server_name, .method = g->method,
                          .bytes = g->args_len };
        net->obs(net->obs_arg, &ev);
    }
    schedule(net, g, EV_DISPATCH, ms);
}

void labrpc_end_echo(labrpc_end *end, int copies, int gap_ms)
{
    labrpc_net *net = end->net;
    pthread_mutex_lock(&net->mu);
    call *c = end->held_first;
    while (c && c->completed)
        c = c->held_next;
    for (int i = 1; c && i <= copies && !net->stopping; i++)
        ghost(net, c, i * gap_ms, true);
    pthread_mutex_unlock(&net->mu);
}

static int start_call(labrpc_end *end, const char *method, const void *args,
                      size_t args_len, labrpc_done_fn done, void *arg, call **out)
{
    if (!end || !method || (!args && args_len))
        return LABRPC_EINVAL;
    labrpc_net *net = end->net;
    call *c = calloc(1, sizeof *c);
    if (!c)
        return LABRPC_ENOMEM;
    c->method = dup_str(method);
    c->args = malloc(args_len ? args_len : 1);
    if (!c->method || !c->args || (!done && pthread_cond_init(&c->cv, NULL) != 0)) {
        free(c->method);
        free(c->args);
        free(c);
        return LABRPC_ENOMEM;
    }
    if (args_len)
        memcpy(c->args, args, args_len);
    c->args_len = args_len;
    c->end = end;
    c->done = done;
    c->arg = arg;
    c->refs = 1;

    pthread_mutex_lock(&net->mu);
    if (end->cancelled || net->stopping) {
        int status = end->cancelled ? LABRPC_ECANCELED : LABRPC_FAIL;
        pthread_mutex_unlock(&net->mu);
        if (!done)
            pthread_cond_destroy(&c->cv);
        free(c->method);
        free(c->args);
        free(c);
        return status;
    }
    net->total_count++;
    net->total_bytes += (int64_t)args_len;
    c->id = ++net->next_id;
    link_call(net, c);
    observe(net, LABRPC_OBS_CALL, c, args_len, 0);
    schedule_request(net, c);
    *out = c;
    return LABRPC_OK;
}

/* The request leg of a new call (net->mu held). */
static void schedule_request(labrpc_net *net, call *c)
{
    labrpc_end *end = c->end;
    if (end->hold) {
        /* Stuck in the network until labrpc_end_hold releases it; the list
         * holds a reference. */
        c->refs++;
        c->held_next = NULL;
        if (end->held_last)
            end->held_last->held_next = c;
        else
            end->held_first = c;
        end->held_last = c;
        observe(net, LABRPC_OBS_HELD, c, c->args_len, 0);
        return;
    }
    if (end->enabled && find_reg(net, end->server_name)) {
        int ms = 0;
        bool lost = false;
        if (!net->reliable) {
            ms = rnd(net, 27);
            ms += leg_delay(net, LEG_REQUEST);   /* its own statement: draws in a fixed order */
            lost = rnd(net, 1000) < 100;
        } else {
            ms = leg_delay(net, LEG_REQUEST);
        }
        /* Hostile draws come last and only when on: other runs keep their
         * schedules. */
        if (net->hostile) {
            ms += rnd(net, 101);
            if (!lost && rnd(net, 4) == 0)
                ghost(net, c, 100 + rnd(net, 2901), false);
        }
        if (lost)
            observe(net, LABRPC_OBS_DROP_REQUEST, c, c->args_len, 0);
        schedule(net, c, lost ? EV_FAIL : EV_DISPATCH, ms);
    } else {
        /* No reply will come: fail after a timeout-like delay. */
        int ms = net->long_delays ? rnd(net, 7000) : rnd(net, 100);
        schedule(net, c, EV_FAIL, ms);
    }
}

int labrpc_call(labrpc_end *end, const char *method, const void *args,
                size_t args_len, uint8_t **reply, size_t *reply_len)
{
    if (reply)
        *reply = NULL;
    if (reply_len)
        *reply_len = 0;
    call *c;
    int rc = start_call(end, method, args, args_len, NULL, NULL, &c);
    if (rc != LABRPC_OK)
        return rc;
    labrpc_net *net = end->net;
    bool spin = labrpc_spin_ns > 0 && end->spin_score >= SPIN_SCORE_ON;
    int64_t start_ns = labrpc_spin_ns > 0 ? now_ns() : 0;
    if (spin) {
        net->blocking_inflight++;
        if (!c->completed)
            spin_until(net, &c->done_hint);
    }
    while (!c->completed)
        pthread_cond_wait(&c->cv, &net->mu);
    if (spin) {
        net->blocking_inflight--;
        net->last_blocking_ns = now_ns();
    }
    if (labrpc_spin_ns > 0) {
        /* measured whether it spun or not, so that an end comes back */
        if (c->done_ns - start_ns <= labrpc_spin_ns)
            end->spin_score += end->spin_score < SPIN_SCORE_MAX;
        else
            end->spin_score -= end->spin_score > 0;
    }
    rc = c->status;
    if ((rc == LABRPC_OK || rc == LABRPC_ENOMETHOD) && reply) {
        *reply = c->reply;
        if (reply_len)
            *reply_len = c->reply_len;
        c->reply = NULL;
    }
    call_finish(net, c);
    pthread_mutex_unlock(&net->mu);
    return rc;
}

int labrpc_go(labrpc_end *end, const char *method, const void *args,
              size_t args_len, labrpc_done_fn done, void *arg)
{
    if (!done)
        return LABRPC_EINVAL;
    call *c;
    int rc = start_call(end, method, args, args_len, done, arg, &c);
    if (rc != LABRPC_OK)
        return rc;
    pthread_mutex_unlock(&end->net->mu);
    return LABRPC_OK;
}

int labrpc_end_cancel(labrpc_end *end)
{
    if (!end || cb_end == end)
        return LABRPC_EINVAL;
    labrpc_net *net = end->net;
    pthread_mutex_lock(&net->mu);
    end->cancelled = true;
    while (end->pending)
        complete(net, end->pending, LABRPC_ECANCELED, NULL, 0);
    release_held(net, end, false);
    while (end->unfinished > 0)
        pthread_cond_wait(&end->drained, &net->mu);
    pthread_mutex_unlock(&net->mu);
    return LABRPC_OK;
}
