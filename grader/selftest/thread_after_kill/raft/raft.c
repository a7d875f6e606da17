/* Broken on purpose (grader self-test): raft_make starts a detached thread
 * that raft_kill never stops. Expected verdict: failed ("still running
 * after raft_kill"). */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_make ref_raft_make
#include "reference_raft.h"
#undef raft_make
SELFTEST_END

static void *forgotten(void *arg)
{
    (void)arg;
    for (;;)
        usleep(100 * 1000);
    return NULL;
}

raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps, raft_apply_fn apply,
                void *apply_ctx)
{
    pthread_t t;
    if (pthread_create(&t, NULL, forgotten, NULL) == 0)
        pthread_detach(t);
    return ref_raft_make(peers, npeers, me, ps, apply, apply_ctx);
}
