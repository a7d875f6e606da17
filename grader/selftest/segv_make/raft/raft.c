/* Broken on purpose (grader self-test): raft_make dereferences NULL.
 * Expected verdict: crashed. */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_make ref_raft_make
#include "reference_raft.h"
#undef raft_make
SELFTEST_END

raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps, raft_apply_fn apply,
                void *apply_ctx)
{
    /* Through a volatile address, so the compiler cannot drop the store. */
    static volatile uintptr_t nowhere = 0;
    *(volatile int *)nowhere = me;
    return ref_raft_make(peers, npeers, me, ps, apply, apply_ctx);
}
