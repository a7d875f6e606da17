/* Broken on purpose (grader self-test): raft_kill loses a block.
 * Expected verdict under memcheck: leaked. */
#define raft_kill ref_raft_kill
#include "../../../../solution/raft/raft.c"
#undef raft_kill

void *volatile selftest_keep;

void raft_kill(raft *rf)
{
    selftest_keep = malloc(64); /* overwritten by the next kill: lost */
    selftest_keep = NULL;
    ref_raft_kill(rf);
}
