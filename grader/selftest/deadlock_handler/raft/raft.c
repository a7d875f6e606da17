/* Broken on purpose (grader self-test): the RequestVote handler takes the
 * peer's mutex and the reference handler takes it again: a self-deadlock.
 * Expected verdict: timed out. */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_register ref_raft_register
#include "reference_raft.h"
#undef raft_register
SELFTEST_END

static int deadlocked_request_vote(void *ctx, const uint8_t *args, size_t args_len,
                                   codec_enc *reply)
{
    raft *rf = ctx;
    pthread_mutex_lock(&rf->mu);
    int rc = handle_request_vote(ctx, args, args_len, reply);
    pthread_mutex_unlock(&rf->mu);
    return rc;
}

int raft_register(raft *rf, labrpc_service *svc)
{
    (void)rf;
    if (labrpc_service_add(svc, "RequestVote", deadlocked_request_vote) != 0 ||
        labrpc_service_add(svc, "AppendEntries", handle_append_entries) != 0 ||
        labrpc_service_add(svc, "InstallSnapshot", handle_install_snapshot) != 0)
        return -1;
    return 0;
}
