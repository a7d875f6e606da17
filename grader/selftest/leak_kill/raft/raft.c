/* Broken on purpose (grader self-test): raft_kill loses a block.
 * Expected verdict under memcheck: leaked. */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_kill ref_raft_kill
#include "reference_raft.h"
#undef raft_kill
SELFTEST_END

static void *volatile selftest_keep; /* volatile: the stores stay */

void raft_kill(raft *rf)
{
    selftest_keep = malloc(64); /* overwritten by the next kill: lost */
    selftest_keep = NULL;
    ref_raft_kill(rf);
}
