/* Broken on purpose (grader self-test): a thread prints without end.
 * Expected verdict: resource limit (file size). */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_make ref_raft_make
#include "reference_raft.h"
#undef raft_make
SELFTEST_END

#include <stdio.h>

static void *flood(void *arg)
{
    (void)arg;
    for (;;)
        fputs("debug: still here, still here, still here, still here, still here\n", stdout);
    return NULL;
}

raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps, raft_apply_fn apply,
                void *apply_ctx)
{
    pthread_t t;
    if (me == 0 && pthread_create(&t, NULL, flood, NULL) == 0)
        pthread_detach(t);
    return ref_raft_make(peers, npeers, me, ps, apply, apply_ctx);
}
