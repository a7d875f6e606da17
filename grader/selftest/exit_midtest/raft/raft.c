/* Broken on purpose (grader self-test): raft_get_state calls exit(0) in
 * the middle of a test. Expected verdict: failed (exited before the test
 * finished), never passed. */
#define raft_get_state ref_raft_get_state
#include "../../../../solution/raft/raft.c"
#undef raft_get_state

void raft_get_state(raft *rf, int *term, bool *is_leader)
{
    ref_raft_get_state(rf, term, is_leader);
    exit(0);
}
