/* sim.c: the deterministic scheduler (see sim.h).
 *
 * One real mutex (big) guards all state. A thread that wants the baton waits
 * on its own real condition variable until `current` names it. The thread
 * holding the baton runs user code without big; it takes big only inside a
 * wrapper, and gives the baton away only in step().
 */
#include "sim.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <valgrind/valgrind.h>

#define NS 1000000000LL
/* Virtual wall clock at the start: a fixed date plus a seeded offset, so
 * that code seeding a PRNG from the clock still varies with the seed. */
#define REALTIME_BASE_S 1700000000LL

/* ---- the real functions (--wrap gives them the __real_ prefix) ---------- */

int __real_main(int argc, char **argv, char **envp);
void __real__exit(int status) __attribute__((noreturn));
int __real_pthread_create(pthread_t *th, const pthread_attr_t *attr,
                          void *(*fn)(void *), void *arg);
int __real_pthread_join(pthread_t th, void **ret);
int __real_pthread_detach(pthread_t th);
void __real_pthread_exit(void *ret) __attribute__((noreturn));
int __real_pthread_once(pthread_once_t *once, void (*fn)(void));
int __real_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a);
int __real_pthread_mutex_destroy(pthread_mutex_t *m);
int __real_pthread_mutex_lock(pthread_mutex_t *m);
int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __real_pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *ts);
int __real_pthread_mutex_unlock(pthread_mutex_t *m);
int __real_pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a);
int __real_pthread_cond_destroy(pthread_cond_t *c);
int __real_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
int __real_pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                  const struct timespec *ts);
int __real_pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m,
                                  clockid_t clk, const struct timespec *ts);
int __real_pthread_cond_signal(pthread_cond_t *c);
int __real_pthread_cond_broadcast(pthread_cond_t *c);
int __real_nanosleep(const struct timespec *req, struct timespec *rem);
int __real_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                           struct timespec *rem);
int __real_usleep(useconds_t us);
unsigned __real_sleep(unsigned s);
int __real_sched_yield(void);
int __real_clock_gettime(clockid_t clk, struct timespec *ts);
int __real_gettimeofday(struct timeval *tv, void *tz);
int __real_rand(void);
void __real_srand(unsigned s);
long __real_random(void);
void __real_srandom(unsigned s);
int __real_rand_r(unsigned *s);

/* ---- state --------------------------------------------------------------- */

typedef enum { T_READY, T_LOCK, T_COND, T_SLEEP, T_JOIN, T_ONCE, T_DONE } tstate;

typedef struct smutex smutex;
typedef struct scond scond;
typedef struct sthread sthread;

/* What a pthread_mutex_t holds in sim mode (all zero: unlocked, normal). */
struct smutex {
    sthread *owner;
    unsigned depth;     /* recursive locks */
    int type;           /* PTHREAD_MUTEX_NORMAL, _RECURSIVE, _ERRORCHECK */
    unsigned id;        /* for reports; given on first use */
} __attribute__((may_alias));

/* What a pthread_cond_t holds (all zero: CLOCK_REALTIME, like POSIX). */
struct scond {
    int clock;
    unsigned id;
} __attribute__((may_alias));

_Static_assert(sizeof(smutex) <= sizeof(pthread_mutex_t), "smutex fits a pthread_mutex_t");
_Static_assert(sizeof(scond) <= sizeof(pthread_cond_t), "scond fits a pthread_cond_t");

struct sthread {
    int id;                 /* 0 is main; then in creation order */
    pthread_t real;
    pthread_cond_t cv;      /* real: signalled when this thread gets the baton */
    tstate st;
    smutex *m;              /* T_LOCK, T_COND: the mutex to (re)acquire */
    scond *c;               /* T_COND */
    int64_t deadline;       /* T_COND, T_SLEEP: virtual ns, or -1 */
    uint64_t ticket;        /* T_COND: signal order (FIFO) */
    int rc;                 /* result of the wait: 0 or ETIMEDOUT */
    sthread *target;        /* T_JOIN */
    pthread_once_t *once;   /* T_ONCE */
    bool detached, reaped;
    pid_t tid;              /* the kernel's id, for /proc (see reap) */
    void *(*fn)(void *);
    void *arg;
    void *ret;
    const char *what;       /* the wrapper where it last stopped */
    void *site;             /* and the caller's address there */
    sthread *next;
};

static pthread_mutex_t big = PTHREAD_MUTEX_INITIALIZER;
static bool inited;
static unsigned seed;
static uint64_t rng;                /* scheduling choices */
static uint64_t rand_state;         /* rand()/random() */
static uint32_t rand_salt;          /* rand_r() */
static int64_t now;                 /* virtual CLOCK_MONOTONIC, ns */
static int64_t realtime_off;        /* CLOCK_REALTIME - CLOCK_MONOTONIC */
static int64_t start_ns;
static atomic_uint_fast64_t steps;
static sthread *threads, *threads_tail, *current;
static int next_id;
static uint64_t next_ticket;
static unsigned next_mutex_id, next_cond_id;
static sthread **pick_buf;
static size_t pick_cap;
static _Thread_local sthread *self;

/* For the replay line (written by a signal handler too: built in advance). */
static char replay[1024];
static bool show_replay;
static atomic_int replay_shown;

/* ---- randomness ------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* ---- output ----------------------------------------------------------------- */

/* Writes without stdio: usable from the guard thread and signal handlers,
 * whatever stdio lock a stuck thread holds. */
static void say(const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void print_replay(void)
{
    if (show_replay && atomic_exchange(&replay_shown, 1) == 0)
        say(replay);
}

static void vtime(char *buf, size_t n)
{
    int64_t t = now - start_ns;
    snprintf(buf, n, "%lld.%06lld s", (long long)(t / NS), (long long)(t % NS / 1000));
}

/* ---- init --------------------------------------------------------------- */

static void *guard_main(void *arg);
static void stop_guard(void);
static pthread_t guard;
static pthread_mutex_t guard_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t guard_cv;     /* CLOCK_MONOTONIC; wakes the guard to stop */
static bool guard_stop;

static unsigned fresh_seed(void)
{
    unsigned s = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&s, sizeof s, 1, f) != 1) {
        struct timespec ts;
        __real_clock_gettime(CLOCK_REALTIME, &ts);
        s = (unsigned)ts.tv_nsec ^ (unsigned)ts.tv_sec ^ ((unsigned)getpid() << 16);
    }
    if (f)
        fclose(f);
    return s;
}

/* Runs on the first wrapped call, from the only thread there is then. */
static void init(void)
{
    inited = true;
    const char *s = getenv("RAFTLAB_SEED");
    char *end = NULL;
    unsigned long v = s && *s ? strtoul(s, &end, 0) : 0;
    if (s && *s && *end == '\0') {
        seed = (unsigned)v;
    } else {
        if (s && *s)
            fprintf(stderr, "sim: RAFTLAB_SEED='%s' is not a number; picking a seed\n", s);
        seed = fresh_seed();
        char buf[32];
        snprintf(buf, sizeof buf, "%u", seed);
        setenv("RAFTLAB_SEED", buf, 1);
    }
    uint64_t x = (uint64_t)seed * 0x100000001ULL ^ 0x51ce5eedULL;
    rng = splitmix64(&x);
    rand_state = splitmix64(&x);
    rand_salt = (uint32_t)splitmix64(&x);
    start_ns = now = NS + (int64_t)(splitmix64(&x) % (uint64_t)NS);
    realtime_off = REALTIME_BASE_S * NS + (int64_t)(splitmix64(&x) % (uint64_t)(1000 * NS));

    sthread *t = calloc(1, sizeof *t);
    if (!t) {
        fprintf(stderr, "sim: out of memory at start\n");
        __real__exit(2);
    }
    __real_pthread_cond_init(&t->cv, NULL);
    t->real = pthread_self();
    t->st = T_READY;
    t->deadline = -1;
    t->what = "main";
    threads = threads_tail = current = self = t;
    next_id = 1;

    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    __real_pthread_cond_init(&guard_cv, &a);
    pthread_condattr_destroy(&a);
    if (__real_pthread_create(&guard, NULL, guard_main, NULL) == 0)
        atexit(stop_guard);
}

/* Takes big and returns the calling simulated thread, or NULL (big not
 * held) for a thread the sim does not know (the guard). */
static sthread *enter(const char *what, void *site)
{
    if (!inited)
        init();
    if (!self)
        return NULL;
    __real_pthread_mutex_lock(&big);
    self->what = what;
    self->site = site;
    return self;
}

static void leave(void)
{
    __real_pthread_mutex_unlock(&big);
}

#define ENTER(name) enter(name, __builtin_return_address(0))

/* ---- reports -------------------------------------------------------------- */

/* Fills names[k] with "function (file:line)" for sites[k], via addr2line
 * when it is installed; the addresses are stable (sim builds are not PIE). */
static void symbolize(void **sites, int n, char (*names)[300])
{
    char exe[512];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    for (int k = 0; k < n; k++)
        snprintf(names[k], sizeof names[k], "%p", sites[k]);
    if (len <= 0 || n == 0)
        return;
    exe[len] = '\0';
    char cmd[8192];
    int off = snprintf(cmd, sizeof cmd, "addr2line -f -s -e '%s'", exe);
    for (int k = 0; k < n && off < (int)sizeof cmd - 24; k++)
        off += snprintf(cmd + off, sizeof cmd - (size_t)off, " %p",
                        (void *)((char *)sites[k] - 1));
    if (off < (int)sizeof cmd - 16)
        snprintf(cmd + off, sizeof cmd - (size_t)off, " 2>/dev/null");
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    char fn[128], loc[128];
    for (int k = 0; k < n; k++) {
        if (!fgets(fn, sizeof fn, p) || !fgets(loc, sizeof loc, p))
            break;
        fn[strcspn(fn, "\n")] = '\0';
        loc[strcspn(loc, "\n")] = '\0';
        if (strcmp(fn, "??") != 0)
            snprintf(names[k], sizeof names[k], "%s (%s)", fn, loc);
    }
    pclose(p);
}

/* Prints every live thread's wait. big held. */
static void dump_threads(void)
{
    int n = 0;
    for (sthread *t = threads; t; t = t->next)
        n++;
    void **sites = calloc((size_t)n + 1, sizeof *sites);
    char (*names)[300] = calloc((size_t)n + 1, sizeof *names);
    if (!sites || !names) {
        free(sites);
        free(names);
        printf("sim: (out of memory listing the threads)\n");
        return;
    }
    int k = 0;
    for (sthread *t = threads; t; t = t->next)
        sites[k++] = t->site;
    symbolize(sites, n, names);
    k = 0;
    char when[64];
    for (sthread *t = threads; t; t = t->next, k++) {
        if (t->st == T_DONE)
            continue;
        printf("  thread %d: ", t->id);
        switch (t->st) {
        case T_READY:
            printf(t == current ? "running" : "runnable");
            break;
        case T_LOCK:
            if (t->m->owner)
                printf("waits to lock mutex #%u, held by thread %d%s", t->m->id,
                       t->m->owner->id, t->m->owner->st == T_DONE ? " (which has exited)" : "");
            else
                printf("waits to lock mutex #%u (free)", t->m->id);
            break;
        case T_COND:
            printf("waits on condition #%u (mutex #%u)", t->c->id, t->m->id);
            if (t->deadline >= 0) {
                int64_t saved = now;
                now = t->deadline;
                vtime(when, sizeof when);
                now = saved;
                printf(" until %s", when);
            }
            break;
        case T_SLEEP:
            printf("sleeps");
            break;
        case T_JOIN:
            printf("joins thread %d", t->target->id);
            break;
        case T_ONCE:
            printf("waits for a pthread_once routine to finish");
            break;
        case T_DONE:
            break;
        }
        printf(" in %s, called from %s\n", t->what, names[k]);
    }
    fflush(stdout);
    free(sites);
    free(names);
}

/* Reports a deadlock and ends the process. big held. */
static void deadlock(const char *why)
{
    char when[64];
    vtime(when, sizeof when);
    fflush(stdout);
    printf("sim: deadlock at virtual time %s (step %llu): %s\n", when,
           (unsigned long long)atomic_load(&steps), why);
    dump_threads();
    print_replay();
    __real__exit(1);
}

/* ---- the scheduler (big held) ------------------------------------------- */

static bool can_run(const sthread *t)
{
    switch (t->st) {
    case T_READY:
        return true;
    case T_LOCK:
        return t->m->owner == NULL;
    case T_JOIN:
        return t->target->st == T_DONE;
    case T_ONCE:
        return *t->once != 1;  /* the routine finished (or never started) */
    default:
        return false;
    }
}

/* Wakes the sleeps and timed waits that are due. Returns the earliest
 * deadline still pending, or -1. */
static int64_t fire_timers(void)
{
    int64_t next = -1;
    for (sthread *t = threads; t; t = t->next) {
        if ((t->st != T_SLEEP && t->st != T_COND) || t->deadline < 0)
            continue;
        if (t->deadline <= now) {
            if (t->st == T_SLEEP) {
                t->st = T_READY;
            } else {
                t->st = T_LOCK;
                t->rc = ETIMEDOUT;
            }
            t->deadline = -1;
        } else if (next < 0 || t->deadline < next) {
            next = t->deadline;
        }
    }
    return next;
}

/* Draws the next thread to run; advances time when none can. */
static sthread *pick(void)
{
    for (;;) {
        int64_t next = fire_timers();
        size_t n = 0;
        for (sthread *t = threads; t; t = t->next) {
            if (!can_run(t))
                continue;
            if (n == pick_cap) {
                size_t cap = pick_cap ? pick_cap * 2 : 64;
                sthread **b = realloc(pick_buf, cap * sizeof *b);
                if (!b)
                    deadlock("out of memory in the scheduler");
                pick_buf = b;
                pick_cap = cap;
            }
            pick_buf[n++] = t;
        }
        if (n == 1)
            return pick_buf[0];
        if (n > 1)
            return pick_buf[splitmix64(&rng) % n];
        if (next < 0)
            deadlock("every thread waits and no timer is pending");
        now = next;
    }
}

/* Gives t what it waited for; it is about to run. */
static void grant(sthread *t)
{
    if (t->st == T_LOCK) {
        t->m->owner = t;
        t->m->depth = 1;
    }
    t->st = T_READY;
}

/* A joined thread can still be listed in /proc/self/task for a moment (the
 * kernel wakes the joiner before it removes the task). Real time is nearly
 * frozen in sim, so the harness's count of leftover threads would see it:
 * wait, in real time and briefly, until the kernel has let it go. */
static void wait_gone(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
    struct timespec pause = { 0, 50 * 1000 };
    for (int i = 0; i < 2000 && access(path, F_OK) == 0; i++)
        __real_nanosleep(&pause, NULL);
}

/* Waits until threads that have finished are gone from the process (and
 * /proc) before any other thread takes a step. A detached one is joined for
 * real and freed. A joinable one is joined for real only when the program
 * joins (or detaches) it: until then glibc must not hand its pthread_t to a
 * new thread, or the program's pthread_join would find the wrong one. */
static void reap(void)
{
    sthread **pp = &threads;
    while (*pp) {
        sthread *t = *pp;
        if (t->st == T_DONE && !t->reaped && t != self) {
            if (t->detached)
                __real_pthread_join(t->real, NULL);
            wait_gone(t->tid);
            t->reaped = true;
            if (t->detached) {
                *pp = t->next;
                if (threads_tail == t) {
                    threads_tail = threads;
                    while (threads_tail && threads_tail->next)
                        threads_tail = threads_tail->next;
                }
                __real_pthread_cond_destroy(&t->cv);
                free(t);
                continue;
            }
        }
        pp = &t->next;
    }
}

/* A synchronisation point: self (in the state it set) gives the baton to a
 * thread drawn from those that can run, and returns once it runs again with
 * its wait granted. */
static void step(void)
{
    atomic_fetch_add_explicit(&steps, 1, memory_order_relaxed);
    now += SIM_QUANTUM_NS;
    sthread *t = pick();
    grant(t);
    if (t != self) {
        current = t;
        __real_pthread_cond_signal(&t->cv);
        while (current != self)
            __real_pthread_cond_wait(&self->cv, &big);
    }
    reap();
}

/* self has finished: hand the baton on for good. */
static void finish(void *ret)
{
    self->ret = ret;
    self->st = T_DONE;
    atomic_fetch_add_explicit(&steps, 1, memory_order_relaxed);
    sthread *t = pick();
    grant(t);
    current = t;
    __real_pthread_cond_signal(&t->cv);
}

/* ---- threads ---------------------------------------------------------------- */

static void *trampoline(void *arg)
{
    sthread *t = arg;
    self = t;
    t->tid = (pid_t)syscall(SYS_gettid);
    __real_pthread_mutex_lock(&big);
    while (current != t)
        __real_pthread_cond_wait(&t->cv, &big);
    reap();
    __real_pthread_mutex_unlock(&big);
    void *ret = t->fn(t->arg);
    __real_pthread_mutex_lock(&big);
    finish(ret);
    __real_pthread_mutex_unlock(&big);
    return ret;
}

int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr,
                          void *(*fn)(void *), void *arg)
{
    sthread *me = ENTER("pthread_create");
    if (!me)
        return __real_pthread_create(th, attr, fn, arg);
    sthread *t = calloc(1, sizeof *t);
    if (!t || __real_pthread_cond_init(&t->cv, NULL) != 0) {
        free(t);
        leave();
        return EAGAIN;
    }
    int ds = PTHREAD_CREATE_JOINABLE;
    if (attr)
        pthread_attr_getdetachstate(attr, &ds);
    t->detached = ds == PTHREAD_CREATE_DETACHED;
    t->fn = fn;
    t->arg = arg;
    t->st = T_READY;
    t->deadline = -1;
    t->what = "its start";
    t->site = (void *)(uintptr_t)fn;
    /* Always joinable for real: joined by reap() once it finishes if the
     * program detached it, else when the program joins or detaches it. */
    pthread_attr_t a;
    pthread_attr_init(&a);
    if (attr) {
        size_t ss;
        if (pthread_attr_getstacksize(attr, &ss) == 0)
            pthread_attr_setstacksize(&a, ss);
    }
    int rc = __real_pthread_create(&t->real, &a, trampoline, t);
    pthread_attr_destroy(&a);
    if (rc != 0) {
        __real_pthread_cond_destroy(&t->cv);
        free(t);
        leave();
        return rc;
    }
    t->id = next_id++;
    threads_tail->next = t;
    threads_tail = t;
    *th = t->real;
    step();
    leave();
    return 0;
}

static sthread *find_thread(pthread_t th)
{
    for (sthread *t = threads; t; t = t->next)
        if (pthread_equal(t->real, th))
            return t;
    return NULL;
}

static void unlink_thread(sthread *t)
{
    sthread **pp = &threads, *prev = NULL;
    while (*pp && *pp != t) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = t->next;
    if (threads_tail == t)
        threads_tail = prev;
}

int __wrap_pthread_join(pthread_t th, void **ret)
{
    sthread *me = ENTER("pthread_join");
    if (!me)
        return __real_pthread_join(th, ret);
    sthread *t = find_thread(th);
    if (!t || t->detached) {
        leave();
        return t ? EINVAL : ESRCH;
    }
    if (t == me) {
        leave();
        return EDEADLK;
    }
    me->st = T_JOIN;
    me->target = t;
    step();
    if (ret)
        *ret = t->ret;
    unlink_thread(t);
    /* t has handed on the baton and released big: this returns at once, or
     * as soon as its last instructions have run. */
    __real_pthread_join(t->real, NULL);
    if (!t->reaped)
        wait_gone(t->tid);
    leave();
    __real_pthread_cond_destroy(&t->cv);
    free(t);
    return 0;
}

int __wrap_pthread_detach(pthread_t th)
{
    sthread *me = ENTER("pthread_detach");
    if (!me)
        return __real_pthread_detach(th);
    sthread *t = find_thread(th);
    int rc = 0;
    if (!t || t->detached) {
        rc = t ? EINVAL : ESRCH;
    } else {
        t->detached = true;
        if (t->reaped) {
            __real_pthread_join(t->real, NULL); /* finished: only its handle was left */
            unlink_thread(t);
            __real_pthread_cond_destroy(&t->cv);
            free(t);
        }
    }
    leave();
    return rc;
}

void __wrap_pthread_exit(void *ret)
{
    sthread *me = ENTER("pthread_exit");
    if (!me)
        __real_pthread_exit(ret);
    if (me->id == 0) {
        /* main leaving by pthread_exit: the process lives on; keep it simple */
        leave();
        __real_pthread_exit(ret);
    }
    finish(ret);
    leave();
    __real_pthread_exit(ret);
}

int __wrap_pthread_once(pthread_once_t *once, void (*fn)(void))
{
    sthread *me = ENTER("pthread_once");
    if (!me)
        return __real_pthread_once(once, fn);
    /* 0: not run, 1: running (its routine may block), 2: done. */
    while (*once == 1) {
        me->st = T_ONCE;
        me->once = once;
        step();
    }
    if (*once == 0) {
        *once = 1;
        leave();
        fn();
        ENTER("pthread_once");
        *once = 2;
    }
    leave();
    return 0;
}

/* ---- mutexes ------------------------------------------------------------ */

static smutex *mx(pthread_mutex_t *m)
{
    smutex *s = (smutex *)m;
    if (s->id == 0)
        s->id = ++next_mutex_id;
    return s;
}

int __wrap_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a)
{
    sthread *me = ENTER("pthread_mutex_init");
    if (!me)
        return __real_pthread_mutex_init(m, a);
    memset(m, 0, sizeof *m);
    smutex *s = mx(m);
    int type = PTHREAD_MUTEX_NORMAL;
    if (a)
        pthread_mutexattr_gettype(a, &type);
    s->type = type;
    leave();
    return 0;
}

int __wrap_pthread_mutex_destroy(pthread_mutex_t *m)
{
    sthread *me = ENTER("pthread_mutex_destroy");
    if (!me)
        return __real_pthread_mutex_destroy(m);
    int rc = mx(m)->owner ? EBUSY : 0;
    leave();
    return rc;
}

/* Locks s for me, waiting until deadline (-1: forever). big held. */
static int lock(sthread *me, smutex *s, int64_t deadline)
{
    if (s->owner == me) {
        if (s->type == PTHREAD_MUTEX_RECURSIVE) {
            s->depth++;
            return 0;
        }
        if (s->type == PTHREAD_MUTEX_ERRORCHECK)
            return EDEADLK;
        me->st = T_LOCK;
        me->m = s;
        deadlock("a thread locks a mutex that it already holds");
    }
    if (deadline >= 0) {
        /* A timed lock: yield until free or due (rare; polling is fine). */
        for (;;) {
            me->st = T_READY;
            step();
            if (!s->owner) {
                s->owner = me;
                s->depth = 1;
                return 0;
            }
            if (now >= deadline)
                return ETIMEDOUT;
        }
    }
    me->st = T_LOCK;
    me->m = s;
    me->rc = 0;
    step();
    return 0;
}

int __wrap_pthread_mutex_lock(pthread_mutex_t *m)
{
    sthread *me = ENTER("pthread_mutex_lock");
    if (!me)
        return __real_pthread_mutex_lock(m);
    int rc = lock(me, mx(m), -1);
    leave();
    return rc;
}

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
    sthread *me = ENTER("pthread_mutex_trylock");
    if (!me)
        return __real_pthread_mutex_trylock(m);
    smutex *s = mx(m);
    me->st = T_READY;
    step();
    int rc = 0;
    if (!s->owner) {
        s->owner = me;
        s->depth = 1;
    } else if (s->owner == me && s->type == PTHREAD_MUTEX_RECURSIVE) {
        s->depth++;
    } else {
        rc = EBUSY;
    }
    leave();
    return rc;
}

static int64_t deadline_of(clockid_t clk, const struct timespec *ts, int *err);

int __wrap_pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *ts)
{
    sthread *me = ENTER("pthread_mutex_timedlock");
    if (!me)
        return __real_pthread_mutex_timedlock(m, ts);
    int rc = 0;
    int64_t d = deadline_of(CLOCK_REALTIME, ts, &rc);
    if (rc == 0)
        rc = lock(me, mx(m), d);
    leave();
    return rc;
}

int __wrap_pthread_mutex_unlock(pthread_mutex_t *m)
{
    sthread *me = ENTER("pthread_mutex_unlock");
    if (!me)
        return __real_pthread_mutex_unlock(m);
    smutex *s = mx(m);
    int rc = 0;
    if (s->owner != me)
        rc = EPERM;     /* undefined for a normal mutex; say so rather than corrupt */
    else if (--s->depth == 0)
        s->owner = NULL;
    leave();
    return rc;
}

/* ---- condition variables --------------------------------------------------- */

static scond *cv_of(pthread_cond_t *c)
{
    scond *s = (scond *)c;
    if (s->id == 0)
        s->id = ++next_cond_id;
    return s;
}

int __wrap_pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a)
{
    sthread *me = ENTER("pthread_cond_init");
    if (!me)
        return __real_pthread_cond_init(c, a);
    memset(c, 0, sizeof *c);
    scond *s = cv_of(c);
    clockid_t clk = CLOCK_REALTIME;
    if (a)
        pthread_condattr_getclock(a, &clk);
    s->clock = (int)clk;
    leave();
    return 0;
}

int __wrap_pthread_cond_destroy(pthread_cond_t *c)
{
    sthread *me = ENTER("pthread_cond_destroy");
    if (!me)
        return __real_pthread_cond_destroy(c);
    scond *s = cv_of(c);
    int rc = 0;
    for (sthread *t = threads; t; t = t->next)
        if (t->st == T_COND && t->c == s)
            rc = EBUSY;
    leave();
    return rc;
}

static bool is_realtime(clockid_t clk)
{
    return clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE || clk == CLOCK_TAI;
}

/* Virtual monotonic ns of an absolute time on clock clk. */
static int64_t deadline_of(clockid_t clk, const struct timespec *ts, int *err)
{
    if (!ts || ts->tv_nsec < 0 || ts->tv_nsec >= NS) {
        *err = EINVAL;
        return -1;
    }
    int64_t abs = (int64_t)ts->tv_sec * NS + ts->tv_nsec;
    if (is_realtime(clk))
        abs -= realtime_off;
    return abs < 0 ? 0 : abs;
}

/* Waits on c, releasing m; deadline -1 waits forever. big held. */
static int cond_wait(sthread *me, pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline)
{
    smutex *sm = mx(m);
    if (sm->owner != me)
        return EPERM;
    unsigned depth = sm->depth;
    sm->owner = NULL;
    sm->depth = 0;
    me->st = T_COND;
    me->c = cv_of(c);
    me->m = sm;
    me->deadline = deadline;
    me->ticket = next_ticket++;
    me->rc = 0;
    step();
    sm->depth = depth;
    return me->rc;
}

int __wrap_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    sthread *me = ENTER("pthread_cond_wait");
    if (!me)
        return __real_pthread_cond_wait(c, m);
    int rc = cond_wait(me, c, m, -1);
    leave();
    return rc;
}

int __wrap_pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                  const struct timespec *ts)
{
    sthread *me = ENTER("pthread_cond_timedwait");
    if (!me)
        return __real_pthread_cond_timedwait(c, m, ts);
    int rc = 0;
    int64_t d = deadline_of((clockid_t)cv_of(c)->clock, ts, &rc);
    if (rc == 0)
        rc = cond_wait(me, c, m, d);
    leave();
    return rc;
}

int __wrap_pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m,
                                  clockid_t clk, const struct timespec *ts)
{
    sthread *me = ENTER("pthread_cond_clockwait");
    if (!me)
        return __real_pthread_cond_clockwait(c, m, clk, ts);
    int rc = 0;
    int64_t d = deadline_of(clk, ts, &rc);
    if (rc == 0)
        rc = cond_wait(me, c, m, d);
    leave();
    return rc;
}

/* Moves the oldest waiter of c (all of them if all) to reacquiring its mutex. */
static void wake(pthread_cond_t *c, bool all)
{
    scond *s = cv_of(c);
    for (;;) {
        sthread *first = NULL;
        for (sthread *t = threads; t; t = t->next)
            if (t->st == T_COND && t->c == s && (!first || t->ticket < first->ticket))
                first = t;
        if (!first)
            return;
        first->st = T_LOCK;
        first->deadline = -1;
        first->rc = 0;
        if (!all)
            return;
    }
}

int __wrap_pthread_cond_signal(pthread_cond_t *c)
{
    sthread *me = ENTER("pthread_cond_signal");
    if (!me)
        return __real_pthread_cond_signal(c);
    wake(c, false);
    leave();
    return 0;
}

int __wrap_pthread_cond_broadcast(pthread_cond_t *c)
{
    sthread *me = ENTER("pthread_cond_broadcast");
    if (!me)
        return __real_pthread_cond_broadcast(c);
    wake(c, true);
    leave();
    return 0;
}

/* ---- time ----------------------------------------------------------------- */

/* Sleeps until virtual monotonic ns `until`. big held. */
static void sleep_until(sthread *me, int64_t until)
{
    me->st = T_SLEEP;
    me->deadline = until;
    step();
}

static int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * NS + ts->tv_nsec;
}

int __wrap_nanosleep(const struct timespec *req, struct timespec *rem)
{
    sthread *me = ENTER("nanosleep");
    if (!me)
        return __real_nanosleep(req, rem);
    if (!req || req->tv_nsec < 0 || req->tv_nsec >= NS || req->tv_sec < 0) {
        leave();
        errno = EINVAL;
        return -1;
    }
    sleep_until(me, now + ts_ns(req));
    leave();
    if (rem)
        rem->tv_sec = rem->tv_nsec = 0;
    return 0;
}

int __wrap_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                           struct timespec *rem)
{
    sthread *me = ENTER("clock_nanosleep");
    if (!me)
        return __real_clock_nanosleep(clk, flags, req, rem);
    int rc = 0;
    int64_t until;
    if (flags & TIMER_ABSTIME) {
        until = deadline_of(clk, req, &rc);
    } else {
        until = (!req || req->tv_nsec < 0 || req->tv_nsec >= NS || req->tv_sec < 0)
                    ? (rc = EINVAL, -1) : now + ts_ns(req);
    }
    if (rc == 0)
        sleep_until(me, until);
    leave();
    if (rc == 0 && rem)
        rem->tv_sec = rem->tv_nsec = 0;
    return rc;
}

int __wrap_usleep(useconds_t us)
{
    sthread *me = ENTER("usleep");
    if (!me)
        return __real_usleep(us);
    sleep_until(me, now + (int64_t)us * 1000);
    leave();
    return 0;
}

unsigned __wrap_sleep(unsigned s)
{
    sthread *me = ENTER("sleep");
    if (!me)
        return __real_sleep(s);
    sleep_until(me, now + (int64_t)s * NS);
    leave();
    return 0;
}

int __wrap_sched_yield(void)
{
    sthread *me = ENTER("sched_yield");
    if (!me)
        return __real_sched_yield();
    me->st = T_READY;
    step();
    leave();
    return 0;
}

int __wrap_clock_gettime(clockid_t clk, struct timespec *ts)
{
    sthread *me = ENTER("clock_gettime");
    if (!me)
        return __real_clock_gettime(clk, ts);
    /* A step, so that a thread polling the clock lets time and others move. */
    me->st = T_READY;
    step();
    int64_t t = now;
    bool known = true;
    switch (clk) {
    case CLOCK_REALTIME:
    case CLOCK_REALTIME_COARSE:
    case CLOCK_TAI:
        t += realtime_off;
        break;
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME:
    case CLOCK_PROCESS_CPUTIME_ID:
    case CLOCK_THREAD_CPUTIME_ID:
        break;
    default:
        known = false;
    }
    leave();
    if (!known)
        return __real_clock_gettime(clk, ts);
    ts->tv_sec = t / NS;
    ts->tv_nsec = t % NS;
    return 0;
}

int __wrap_gettimeofday(struct timeval *tv, void *tz)
{
    struct timespec ts;
    int rc = __wrap_clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0 && tv) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    (void)tz;
    return rc;
}

/* time() and clock() are defined here rather than wrapped: CUnit (a shared
 * library, which --wrap does not reach) calls them for its report. They
 * read the clock without a step, so CUnit's calls do not move the schedule. */
time_t time(time_t *out)
{
    if (!inited)
        init();
    time_t t = (time_t)((now + realtime_off) / NS);
    if (out)
        *out = t;
    return t;
}

clock_t clock(void)
{
    if (!inited)
        init();
    return (clock_t)((now - start_ns) / (NS / CLOCKS_PER_SEC));
}

unsigned sim_seed(void)
{
    if (!inited)
        init();
    return seed;
}

int64_t sim_now_ns(void)
{
    if (!inited)
        init();
    return now;
}

uint64_t sim_steps(void)
{
    return atomic_load(&steps);
}

/* ---- randomness -------------------------------------------------------------- */

/* rand() and random() share one sequence (as in glibc), drawn from the seed;
 * srand(x) restarts it from x mixed with the seed. */
int __wrap_rand(void)
{
    if (!inited)
        init();
    return (int)(splitmix64(&rand_state) & RAND_MAX);
}

long __wrap_random(void)
{
    return __wrap_rand();
}

void __wrap_srand(unsigned s)
{
    if (!inited)
        init();
    uint64_t x = ((uint64_t)seed << 32) ^ s;
    rand_state = splitmix64(&x);
}

void __wrap_srandom(unsigned s)
{
    __wrap_srand(s);
}

/* The caller's state stays a 32-bit LCG; the output is mixed with the run's
 * seed, so a student seeding with a constant still varies with the seed. */
int __wrap_rand_r(unsigned *s)
{
    if (!inited)
        init();
    uint32_t x = (uint32_t)*s * 1664525u + 1013904223u;
    *s = x;
    return (int)(mix32(x ^ rand_salt) & RAND_MAX);
}

/* ---- the guard: busy loops ----------------------------------------------------- */

static double cpu_seconds(void)
{
    struct timespec ts;
    __real_clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A real thread outside the scheduler: if no step happens while the process
 * burns SIM_BUSY_CPU_S of CPU, the thread holding the baton is looping. */
static void *guard_main(void *arg)
{
    (void)arg;
    double limit = SIM_BUSY_CPU_S * (RUNNING_ON_VALGRIND ? 10 : 1);
    const char *env = getenv("RAFTLAB_SIM_BUSY_S");
    if (env && atof(env) > 0)
        limit = atof(env);
    uint64_t last = atomic_load(&steps);
    double cpu0 = cpu_seconds();
    __real_pthread_mutex_lock(&guard_mu);
    while (!guard_stop) {
        struct timespec ts;
        __real_clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 250 * 1000 * 1000;
        if (ts.tv_nsec >= NS) {
            ts.tv_sec++;
            ts.tv_nsec -= NS;
        }
        __real_pthread_cond_timedwait(&guard_cv, &guard_mu, &ts);
        uint64_t s = atomic_load(&steps);
        double cpu = cpu_seconds();
        if (s != last) {
            last = s;
            cpu0 = cpu;
            continue;
        }
        if (cpu - cpu0 < limit)
            continue;
        char msg[512], when[64];
        vtime(when, sizeof when);
        sthread *t = current;
        snprintf(msg, sizeof msg,
                 "\nsim: busy loop: thread %d ran for %.0f s of CPU without reaching a "
                 "synchronisation point (a pthread, sleep or clock call) since %s, at "
                 "virtual time %s (step %llu). A loop that waits for something must "
                 "sleep or wait on a condition variable.\n",
                 t ? t->id : -1, cpu - cpu0, t && t->what ? t->what : "?", when,
                 (unsigned long long)s);
        say(msg);
        print_replay();
        __real__exit(1);
    }
    __real_pthread_mutex_unlock(&guard_mu);
    return NULL;
}

/* At exit: the guard ends, so that valgrind sees no thread left over. */
static void stop_guard(void)
{
    __real_pthread_mutex_lock(&guard_mu);
    guard_stop = true;
    __real_pthread_cond_signal(&guard_cv);
    __real_pthread_mutex_unlock(&guard_mu);
    __real_pthread_join(guard, NULL);
}

/* ---- the process ------------------------------------------------------------------ */

static void on_crash(int sig)
{
    print_replay();
    signal(sig, SIG_DFL);
    raise(sig);
}

void __wrap__exit(int status)
{
    if (status != 0 && inited && self) {
        /* The harness's watchdog ends a stuck test this way: say where each
         * thread waits. */
        __real_pthread_mutex_lock(&big);
        fflush(stdout);
        printf("sim: exit status %d at step %llu; the threads:\n", status,
               (unsigned long long)atomic_load(&steps));
        dump_threads();
        print_replay();
    }
    __real__exit(status);
}

/* Quotes s for a shell command line if it needs it. */
static void shell_word(char *buf, size_t n, const char *s)
{
    bool plain = *s != '\0';
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:", *p))
            plain = false;
    if (plain)
        snprintf(buf, n, "%s", s);
    else
        snprintf(buf, n, "'%s'", s);
}

int __wrap_main(int argc, char **argv, char **envp)
{
    if (!inited)
        init();
    /* Options (--list, --help) print what scripts read: stay quiet then. */
    if (argc >= 2 && argv[1][0] != '-') {
        const char *prefix = getenv("RAFTLAB_SIM_REPLAY");
        char word[256];
        if (prefix && *prefix) {
            shell_word(word, sizeof word, argv[1]);
            snprintf(replay, sizeof replay, "sim: replay: %s SEED=%u RUN=%s\n", prefix, seed, word);
        } else {
            int off = snprintf(replay, sizeof replay, "sim: replay: RAFTLAB_SEED=%u", seed);
            for (int k = 0; k < argc && off < (int)sizeof replay; k++) {
                shell_word(word, sizeof word, argv[k]);
                off += snprintf(replay + off, sizeof replay - (size_t)off, " %s", word);
            }
            if (off < (int)sizeof replay - 1)
                snprintf(replay + off, sizeof replay - (size_t)off, "\n");
            else
                replay[sizeof replay - 2] = '\n';
        }
        show_replay = true;
        printf("sim: seed %u\n", seed);
        fflush(stdout);
        signal(SIGSEGV, on_crash);
        signal(SIGBUS, on_crash);
        signal(SIGFPE, on_crash);
        signal(SIGILL, on_crash);
        signal(SIGABRT, on_crash);
    }
    int rc = __real_main(argc, argv, envp);
    fflush(stdout);
    if (rc != 0 && rc != 2)
        print_replay();
    return rc;
}
