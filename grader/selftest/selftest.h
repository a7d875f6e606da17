/* selftest.h: how a broken Raft of grader/selftest/ wraps the reference.
 *
 * run.sh lays each case out as a submission: its raft.c, this file, and
 * solution/raft/raft.c copied beside them as reference_raft.h (with
 * raft_tuning.h). A case renames the function it breaks, includes the
 * reference between SELFTEST_BEGIN and SELFTEST_END, which makes the
 * reference's functions hidden (the grader's policy wants a submission's
 * helpers local: grader/policy.h), and defines the broken function itself.
 * The API below keeps its default visibility even where the reference
 * defines it.
 */
#ifndef RAFTLAB_SELFTEST_H
#define RAFTLAB_SELFTEST_H

/* The system's headers first: what is declared inside the hidden region
 * would be hidden too, and then not found in libc at link time. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "raft.h"

#define SELFTEST_API __attribute__((visibility("default")))
SELFTEST_API raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps,
                             raft_apply_fn apply, void *apply_ctx);
SELFTEST_API int raft_register(raft *rf, labrpc_service *svc);
SELFTEST_API bool raft_start(raft *rf, const void *command, size_t len, int *index, int *term);
SELFTEST_API void raft_get_state(raft *rf, int *term, bool *is_leader);
SELFTEST_API void raft_snapshot(raft *rf, int index, const void *snapshot, size_t len);
SELFTEST_API void raft_kill(raft *rf);

#define SELFTEST_BEGIN _Pragma("GCC visibility push(hidden)")
#define SELFTEST_END _Pragma("GCC visibility pop")

#endif
