/* Broken on purpose (grader self-test): apply is called with rf->mu held,
 * the handouts' classic mistake. The harness calls raft_get_state from
 * inside apply, so the first apply deadlocks; the watchdog must say so
 * within CALL_LIMIT_S and name the call from inside apply.
 * Expected verdict: timed out, naming "from inside apply". */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_make ref_raft_make
#include "reference_raft.h"
#undef raft_make
SELFTEST_END

typedef struct locked {
    raft_apply_fn apply;
    void *ctx;
    raft *_Atomic rf;
} locked;

static void locked_apply(void *ctx, const raft_apply_msg *m)
{
    locked *l = ctx;
    raft *rf = l->rf;
    if (rf)
        pthread_mutex_lock(&rf->mu);
    l->apply(l->ctx, m);
    if (rf)
        pthread_mutex_unlock(&rf->mu);
}

raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps, raft_apply_fn apply,
                void *apply_ctx)
{
    locked *l = malloc(sizeof *l);   /* never freed: the test deadlocks anyway */
    if (!l)
        return NULL;
    l->apply = apply;
    l->ctx = apply_ctx;
    l->rf = NULL;
    raft *rf = ref_raft_make(peers, npeers, me, ps, locked_apply, l);
    l->rf = rf;
    return rf;
}
