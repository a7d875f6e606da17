/* trace.c: see trace.h. */
#include "trace.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef RAFTLAB_SIM
#include "../sim/sim.h"
#endif

#define MAX_META 16
#define META_LINE 640      /* the failure message is one */

typedef struct slot {
    int64_t t_ns;
    uint64_t step;
    uint64_t seq;            /* order of recording, to merge the rings */
    char line[TRACE_LINE];
} slot;

typedef struct ring {
    slot *s;
    size_t cap, n;           /* n: events recorded in all (the latest cap kept) */
} ring;

static struct {
    bool on;
    int64_t t0;
    uint64_t seq;
    ring rings[2];
    char meta[MAX_META][META_LINE];
    int nmeta;
} T;

#ifndef RAFTLAB_SIM
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
#endif

static int64_t now_ns(void)
{
#ifdef RAFTLAB_SIM
    return sim_now_ns();     /* no scheduling point, unlike clock_gettime there */
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
#endif
}

static void lock(void)
{
#ifndef RAFTLAB_SIM
    pthread_mutex_lock(&mu);
#endif
}

static void unlock(void)
{
#ifndef RAFTLAB_SIM
    pthread_mutex_unlock(&mu);
#endif
}

int trace_start(void)
{
    const char *env = getenv("RAFTLAB_TRACE");
    if (env && strcmp(env, "0") == 0)
        return 0;
    T.rings[TRACE_HARNESS].cap = TRACE_HARNESS_EVENTS;
    T.rings[TRACE_BULK].cap = TRACE_BULK_EVENTS;
    for (int r = 0; r < 2; r++) {
        /* calloc: pages never written are never touched */
        T.rings[r].s = calloc(T.rings[r].cap, sizeof(slot));
        if (!T.rings[r].s) {
            free(T.rings[0].s);
            T.rings[0].s = NULL;
            return -1;
        }
    }
    T.t0 = now_ns();
    lock();
    T.on = true;
    unlock();
    return 0;
}

bool trace_enabled(void)
{
    lock();
    bool on = T.on;
    unlock();
    return on;
}

char *trace_quote(char *dst, size_t size, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    dst[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[5];
        size_t k = 0;
        if (ch == '"' || ch == '\\') {
            esc[k++] = '\\';
            esc[k++] = (char)ch;
        } else if (ch == '\n') {
            esc[k++] = '\\';
            esc[k++] = 'n';
        } else if (ch == '\t') {
            esc[k++] = '\\';
            esc[k++] = 't';
        } else if (ch < 0x20 || ch >= 0x7f) {
            esc[k++] = '\\';
            esc[k++] = 'x';
            esc[k++] = hex[ch >> 4];
            esc[k++] = hex[ch & 15];
        } else {
            esc[k++] = (char)ch;
        }
        if (o + k + 5 > size) {              /* keep room for ..." and NUL */
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(dst + o, esc, k);
        o += k;
    }
    dst[o++] = '"';
    dst[o] = '\0';
    return dst;
}

void trace_meta(const char *key, const char *fmt, ...)
{
    char v[META_LINE], q[META_LINE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    lock();
    if (T.on && T.nmeta < MAX_META)
        snprintf(T.meta[T.nmeta++], META_LINE, "meta %s %s", key,
                 trace_quote(q, sizeof q - strlen(key) - 8, v, strlen(v)));
    unlock();
}

void trace_eventv(trace_ring r, const char *fmt, va_list ap)
{
    lock();
    if (T.on) {
        int64_t t = now_ns();   /* under the lock: times follow seq */
        ring *g = &T.rings[r];
        slot *s = &g->s[g->n % g->cap];
        g->n++;
        s->t_ns = t - T.t0;
#ifdef RAFTLAB_SIM
        s->step = sim_steps();
#endif
        s->seq = T.seq++;
        vsnprintf(s->line, sizeof s->line, fmt, ap);
    }
    unlock();
}

void trace_event(trace_ring r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    trace_eventv(r, fmt, ap);
    va_end(ap);
}

static void print_slot(FILE *f, const slot *s)
{
#ifdef RAFTLAB_SIM
    fprintf(f, "%" PRId64 " %" PRIu64 " %s\n", s->t_ns, s->step, s->line);
#else
    fprintf(f, "%" PRId64 " - %s\n", s->t_ns, s->line);
#endif
}

void trace_finish(FILE *f, bool print)
{
    lock();
    bool on = T.on;
    T.on = false;             /* late events from other threads: dropped */
    unlock();
    if (on && print) {
        ring *h = &T.rings[TRACE_HARNESS], *b = &T.rings[TRACE_BULK];
        size_t dropped = (h->n > h->cap ? h->n - h->cap : 0) + (b->n > b->cap ? b->n - b->cap : 0);
        fprintf(f, "raftlab-trace 1\n");
        for (int i = 0; i < T.nmeta; i++)
            fprintf(f, "%s\n", T.meta[i]);
        fprintf(f, "meta mode \"%s\"\n",
#ifdef RAFTLAB_SIM
                "sim"
#else
                "real"
#endif
        );
        if (dropped)
            fprintf(f, "meta dropped \"%zu\"\n", dropped);
        /* merge the two rings by recording order (times never go back
         * within it: both are stamped under the lock) */
        size_t hi = h->n > h->cap ? h->n - h->cap : 0, bi = b->n > b->cap ? b->n - b->cap : 0;
        while (hi < h->n || bi < b->n) {
            const slot *hs = hi < h->n ? &h->s[hi % h->cap] : NULL;
            const slot *bs = bi < b->n ? &b->s[bi % b->cap] : NULL;
            if (hs && (!bs || hs->seq < bs->seq)) {
                print_slot(f, hs);
                hi++;
            } else {
                print_slot(f, bs);
                bi++;
            }
        }
        fprintf(f, "# end of trace\n");
        fflush(f);
    }
    for (int r = 0; r < 2; r++) {
        free(T.rings[r].s);
        T.rings[r].s = NULL;
        T.rings[r].n = 0;
    }
    T.nmeta = 0;
}
