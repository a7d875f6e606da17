/* Broken on purpose (grader self-test): raft_get_state reads the term
 * without the peer's mutex, while the ticker writes it under the mutex.
 * Expected verdict under TSan or helgrind: data race. */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_get_state ref_raft_get_state
#include "reference_raft.h"
#undef raft_get_state
SELFTEST_END

void raft_get_state(raft *rf, int *term, bool *is_leader)
{
    *term = rf->current_term; /* racy: no rf->mu */
    pthread_mutex_lock(&rf->mu);
    *is_leader = rf->role == LEADER;
    pthread_mutex_unlock(&rf->mu);
}
