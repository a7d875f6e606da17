/* Broken on purpose (grader self-test): raft_kill reads the peer after the
 * reference kill freed it. Expected verdict under ASan or memcheck:
 * memory errors. */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_kill ref_raft_kill
#include "reference_raft.h"
#undef raft_kill
SELFTEST_END

static volatile int selftest_sink;

void raft_kill(raft *rf)
{
    ref_raft_kill(rf);
    selftest_sink = rf->me; /* freed */
}
