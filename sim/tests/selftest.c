/* selftest.c: checks of the sim scheduler itself (tools/test.sh runs them).
 *
 *   sim_selftest timing     sleeps, timed waits and joins land at the
 *                           expected virtual times; exit 0
 *   sim_selftest deadlock   two threads lock two mutexes in opposite
 *                           orders: sim must report the deadlock; exit 1
 *   sim_selftest busy       a thread spins without a sync point: sim must
 *                           report a busy loop; exit 1 (set
 *                           RAFTLAB_SIM_BUSY_S=1 to make it quick)
 *   sim_selftest join       threads joined long after they finished, while
 *                           others start: each join gets its own thread's
 *                           result (a pthread_t is not reused before its
 *                           join); exit 0
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t m1 = PTHREAD_MUTEX_INITIALIZER, m2 = PTHREAD_MUTEX_INITIALIZER;
static int64_t t0;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void *sleeper(void *arg)
{
    int ms = (int)(long)arg;
    sleep_ms(ms);
    return (void *)(long)(mono_ms() - t0);
}

static int timing(void)
{
    int bad = 0;
    t0 = mono_ms();
    pthread_t th[3];
    for (long k = 0; k < 3; k++)
        pthread_create(&th[k], NULL, sleeper, (void *)(300 - 100 * k));
    for (int k = 0; k < 3; k++) {
        void *ret;
        pthread_join(th[k], &ret);
        long ms = (long)ret;
        /* Each step costs a quantum (microseconds): allow a millisecond. */
        if (ms < 300 - 100 * k || ms > 301 - 100 * k) {
            printf("sleeper %d woke at %ld ms, expected %d\n", k, ms, 300 - 100 * k);
            bad = 1;
        }
    }
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_t cv;
    pthread_cond_init(&cv, &a);
    pthread_condattr_destroy(&a);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    int64_t start = mono_ms();
    until.tv_nsec += 250 * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m1);
    int rc = pthread_cond_timedwait(&cv, &m1, &until);
    pthread_mutex_unlock(&m1);
    int64_t waited = mono_ms() - start;
    if (rc != ETIMEDOUT || waited < 250 || waited > 251) {
        printf("timedwait returned %s after %lld ms, expected ETIMEDOUT after 250 ms\n",
               strerror(rc), (long long)waited);
        bad = 1;
    }
    pthread_cond_destroy(&cv);
    printf(bad ? "timing: FAILED\n" : "timing: ok\n");
    return bad;
}

static void *lock_both(void *arg)
{
    int first = (int)(long)arg;
    pthread_mutex_lock(first ? &m1 : &m2);
    sleep_ms(10);
    pthread_mutex_lock(first ? &m2 : &m1);
    return NULL;
}

static int deadlock(void)
{
    pthread_t a, b;
    pthread_create(&a, NULL, lock_both, (void *)1L);
    pthread_create(&b, NULL, lock_both, (void *)0L);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("deadlock: not detected\n");
    return 0;   /* sim must have ended the process before */
}

static void *spin(void *arg)
{
    volatile unsigned long *x = arg;
    for (;;)
        (*x)++;
    return NULL;
}

static int busy(void)
{
    static unsigned long x;
    pthread_t a;
    pthread_create(&a, NULL, spin, &x);
    pthread_join(a, NULL);
    return 0;
}

static void *returns_arg(void *arg)
{
    return arg;
}

/* Batches of threads that finish at once, joined only after the next batch
 * has started, in reverse order: a pthread_t handed out again before its
 * join would mix them up. */
static int join_late(void)
{
    enum { BATCH = 8, ROUNDS = 50 };
    pthread_t prev[BATCH], cur[BATCH];
    int bad = 0;
    for (int r = 0; r <= ROUNDS; r++) {
        for (long k = 0; k < BATCH && r < ROUNDS; k++)
            if (pthread_create(&cur[k], NULL, returns_arg, (void *)(r * 100L + k)) != 0) {
                printf("join: pthread_create failed\n");
                return 1;
            }
        sleep_ms(1); /* the new ones finish too */
        for (int k = BATCH - 1; k >= 0 && r > 0; k--) {
            void *ret;
            int rc = pthread_join(prev[k], &ret);
            if (rc != 0 || (long)ret != (r - 1) * 100L + k) {
                printf("join: round %d thread %d: pthread_join gave %d and %ld, expected 0 and %ld\n",
                       r - 1, k, rc, (long)ret, (r - 1) * 100L + k);
                bad = 1;
            }
        }
        memcpy(prev, cur, sizeof prev);
    }
    printf(bad ? "join: FAILED\n" : "join: ok\n");
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "join") == 0)
        return join_late();
    if (argc == 2 && strcmp(argv[1], "timing") == 0)
        return timing();
    if (argc == 2 && strcmp(argv[1], "deadlock") == 0)
        return deadlock();
    if (argc == 2 && strcmp(argv[1], "busy") == 0)
        return busy();
    fprintf(stderr, "usage: %s timing|deadlock|busy|join\n", argv[0]);
    return 2;
}
