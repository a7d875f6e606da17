/* Broken on purpose (grader self-test): raft_get_state calls exit(0) in
 * the middle of a test. Expected verdict: failed (exited before the test
 * finished), never passed. */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_get_state ref_raft_get_state
#include "reference_raft.h"
#undef raft_get_state
SELFTEST_END

void raft_get_state(raft *rf, int *term, bool *is_leader)
{
    ref_raft_get_state(rf, term, is_leader);
    exit(0);
}
