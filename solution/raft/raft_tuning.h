/* raft_tuning: the reference solution's timing and its two additions to
 * Figure 2, in one place, so that a benchmark can vary them (make figure16
 * reproduces the paper's Figure 16 with the election timeouts of §9.3).
 *
 * Not part of the student API (grader/raft/raft.h): only programs linked with
 * solution/ see it, and the tests never change it.
 *
 * Thread safety: raft_make copies the settings into the new peer, which
 * keeps them for its life. Call raft_tuning_set before starting peers, from
 * one thread, with no raft_make running.
 */
#ifndef RAFTLAB_RAFT_TUNING_H
#define RAFTLAB_RAFT_TUNING_H

#include <stdbool.h>

typedef struct raft_tuning {
    int heartbeat_ms;     /* a leader's silence before it sends a heartbeat */
    /* Election timeouts are drawn uniformly from min..max, both included,
     * in whole milliseconds (§5.2). */
    int election_min_ms;
    int election_max_ms;
    int retry_ms;         /* resend a failed call this soon (< heartbeat_ms) */
    bool pre_vote;        /* PreVote (Ongaro's thesis §9.6) before each election */
    bool check_quorum;    /* leader declines commands, then steps down, without a majority (§6.2) */
    /* If not NULL, called by a peer the moment it becomes leader, with its
     * lock held (it must not call into raft, and should only take note):
     * for benchmarks that time elections. */
    void (*on_leader)(void *ctx, int me, int term);
    void *on_leader_ctx;
} raft_tuning;

/* Hidden: the grader's policy lets a submission define only raft.h's API
 * as global symbols (grader/policy.h); programs linked with raft.o itself
 * (make figure16) still call these. */
#define RAFT_TUNING_HIDDEN __attribute__((visibility("hidden")))

/* What the tests run with: heartbeats every 100 ms, timeouts 150-300 ms,
 * resend after 20 ms, PreVote and check quorum on, no on_leader. */
RAFT_TUNING_HIDDEN raft_tuning raft_tuning_default(void);
/* Sets what later raft_make calls use. Returns false (and changes nothing)
 * if t is NULL or not sensible: heartbeat_ms < 1, election_min_ms < 1,
 * election_max_ms < election_min_ms, or retry_ms outside 1..heartbeat_ms. */
RAFT_TUNING_HIDDEN bool raft_tuning_set(const raft_tuning *t);
RAFT_TUNING_HIDDEN raft_tuning raft_tuning_get(void);

#endif
