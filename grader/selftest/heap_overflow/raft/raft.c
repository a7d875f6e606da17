/* Broken on purpose (grader self-test): raft_make writes one byte past a
 * heap block. Expected verdict under memcheck or ASan: memory errors. */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_make ref_raft_make
#include "reference_raft.h"
#undef raft_make
SELFTEST_END

raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps, raft_apply_fn apply,
                void *apply_ctx)
{
    /* volatile: a store the compiler may not drop (it is dead otherwise). */
    static volatile size_t size = 8;
    volatile char *name = malloc(size);
    if (name) {
        name[size] = 'x'; /* one past the end */
        free((void *)name);
    }
    return ref_raft_make(peers, npeers, me, ps, apply, apply_ctx);
}
