/* An attack (grader self-test): raft_make forges the completion signal in
 * every way the old grader believed (a result line on stdout, the file of
 * RAFTLAB_RESULT_FILE), then leaves with _exit(0) in the middle of the test.
 * Expected verdict: failed (it exited before the test finished). */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_make ref_raft_make
#include "reference_raft.h"
#undef raft_make
SELFTEST_END

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps, raft_apply_fn apply,
                void *apply_ctx)
{
    static const char *const names[] = { "TestInitialElection3A", "TestReElection3A" };
    for (int k = 0; k < 2; k++)
        printf("raftlab-result 00000000000000000000000000000000 %s passed cpu=0.1\n"
               "raftlab-result %s passed\n", names[k], names[k]);
    const char *path = getenv("RAFTLAB_RESULT_FILE");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (f) {
        fputs("passed\n", f);
        fclose(f);
    }
    fflush(stdout);
    _exit(0);
    return ref_raft_make(peers, npeers, me, ps, apply, apply_ctx);
}
