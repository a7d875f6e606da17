/* Broken on purpose (grader self-test): raft_start never returns.
 * Expected verdict: timed out (tests that never call raft_start pass). */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_start ref_raft_start
#include "reference_raft.h"
#undef raft_start
SELFTEST_END

bool raft_start(raft *rf, const void *command, size_t len, int *index, int *term)
{
    volatile bool forever = true;
    while (forever)
        ;
    return ref_raft_start(rf, command, len, index, term);
}
