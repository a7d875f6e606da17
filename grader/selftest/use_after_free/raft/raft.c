/* Broken on purpose (grader self-test): raft_kill reads the peer after the
 * reference kill freed it. Expected verdict under ASan or memcheck:
 * memory errors. */
#define raft_kill ref_raft_kill
#include "../../../../solution/raft/raft.c"
#undef raft_kill

volatile int selftest_sink;

void raft_kill(raft *rf)
{
    ref_raft_kill(rf);
    selftest_sink = rf->me; /* freed */
}
