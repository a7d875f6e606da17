/* Correct on purpose (grader self-test): the reference without its two
 * additions to Figure 2, PreVote and check quorum. A plain Figure-2 Raft
 * must pass every test, so no test may lean on those choices.
 * Expected verdict: every test passes. */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_make ref_raft_make
#include "reference_raft.h"
#undef raft_make
SELFTEST_END

raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps, raft_apply_fn apply,
                void *apply_ctx)
{
    /* raft_make runs on the test's thread only, before the peer's threads
     * read the settings it copies. */
    raft_tuning t = raft_tuning_get();
    t.pre_vote = false;
    t.check_quorum = false;
    if (!raft_tuning_set(&t))
        return NULL;
    return ref_raft_make(peers, npeers, me, ps, apply, apply_ctx);
}
