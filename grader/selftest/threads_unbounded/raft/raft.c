/* Broken on purpose (grader self-test): each peer keeps starting threads
 * that never end. Expected verdict:
 * resource limit (the harness's thread cap; RLIMIT_NPROC does not bind
 * root). */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_make ref_raft_make
#include "reference_raft.h"
#undef raft_make
SELFTEST_END

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        usleep(1000 * 1000);
    return NULL;
}

/* A new thread every millisecond, none ever ends. */
static void *spawner(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_t t;
        if (pthread_create(&t, NULL, sleeper, NULL) == 0)
            pthread_detach(t);
        usleep(1000);
    }
    return NULL;
}

raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps, raft_apply_fn apply,
                void *apply_ctx)
{
    pthread_t t;
    if (pthread_create(&t, NULL, spawner, NULL) == 0)
        pthread_detach(t);
    return ref_raft_make(peers, npeers, me, ps, apply, apply_ctx);
}
