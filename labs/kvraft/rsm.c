/* rsm.c: your replicated state machine layer (stage 4A). This is the
 * skeleton: it compiles and runs, and fails every test (rsm_submit always
 * answers RSM_WRONG_LEADER). grader/kvraft/rsm.h is the API you implement
 * and says who calls what, on which thread; handouts/4A-rsm.md walks you
 * through it. You may add files under labs/kvraft/.
 *
 * Outline:
 *
 *   r = rsm_make(peers, npeers, me, ps, maxraftstate, &sm)
 *     make the Raft (raft_make) with an apply function of yours
 *   err = rsm_submit(r, req, len, &out, &out_len)
 *     on the leader: raft_start the request, wait until it is executed,
 *     return do_op's result; anywhere else: RSM_WRONG_LEADER
 *   apply function (Raft's applier thread calls it)
 *     execute each committed request with sm.do_op, in log order, on every
 *     server, and hand the result to the submit waiting for it (if any)
 *   rsm_kill(r) / rsm_free(r)
 *     stop: wake every waiting submit; then kill the Raft and free all
 *
 * Things to get right (see the handout for more):
 *  - Who submitted what? Several submits wait at once, and the request that
 *    commits at index i is not necessarily the one your leader put there
 *    (it may have lost leadership, and another leader's entry took the
 *    place). Wrap each request with an identity (this server's id and a
 *    counter, say) before raft_start, so that the apply function can tell
 *    whose it is. A submit whose index was taken by another request, whose
 *    Raft changed term or stopped leading, or whose rsm was killed, returns
 *    RSM_WRONG_LEADER: it must never hang. Do not poll in a busy loop:
 *    wait on a condition variable, with a timeout (pthread_cond_timedwait)
 *    if you want to look at raft_get_state now and then.
 *  - Locks. Raft calls your apply function from its applier thread holding
 *    none of its locks, and raft_start takes Raft's lock. Decide on an
 *    order for your locks and Raft's, write it down here, and keep to it.
 *    Call the state machine's callbacks one at a time, and never while
 *    holding a lock that rsm_submit takes (they may take the service's
 *    lock).
 *  - Snapshots (4C): with maxraftstate >= 0, once persister_state_size(ps)
 *    nears maxraftstate, take sm.snapshot and give it to raft_snapshot
 *    (allowed from inside the apply function). rsm_make restores the
 *    persisted snapshot (persister_read_snapshot) before Raft delivers
 *    anything; a snapshot apply message replaces the state too.
 *  - After rsm_kill, do_op is no longer called; rsm_free frees every byte.
 *
 * Rules of the game: only pthreads, nanosleep/usleep, clock_gettime and the
 * rand family for threads, time and randomness; every allocation checked.
 */
#include "rsm.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "labrpc.h"
#include "persister.h"
#include "raft.h"

struct rsm {
    pthread_mutex_t mu;   /* protects the fields below that change */
    raft *rf;
    persister *ps;        /* the caller's: for persister_state_size (4C) */
    int me;
    int maxraftstate;     /* bytes, or -1: no snapshots */
    rsm_sm sm;            /* the service's state machine */
    bool dead;            /* set by rsm_kill */

    /* Your data here (4A, 4C). For example: the submits waiting for their
     * requests (each with its identity, its log index and term, a place
     * for the result and a condition variable to wake it), a counter for
     * identities, the last index applied. */
};

/* Raft's apply function: committed commands in log order, and snapshots
 * (4C). msg and what it points to are borrowed for the call. */
static void apply_fn(void *ctx, const raft_apply_msg *msg)
{
    rsm *r = ctx;
    (void)r;
    (void)msg;
    /* Your code here (4A): unwrap the request, run it with
     * r->sm.do_op(r->sm.ctx, ...) unless the rsm is dead, and wake the
     * submit waiting for it (and those whose index another request took).
     * 4C: snapshot when the Raft state is near maxraftstate; restore the
     * state machine from a snapshot message (msg->snapshot_valid). */
}

rsm *rsm_make(labrpc_end **peers, int npeers, int me, persister *ps, int maxraftstate,
              const rsm_sm *sm)
{
    rsm *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->ps = ps;
    r->me = me;
    r->maxraftstate = maxraftstate;
    r->sm = *sm;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return NULL;
    }

    /* Your code here (4C): restore sm from persister_read_snapshot(ps)
     * before raft_make, so that the state is there before Raft delivers
     * the entries that follow the snapshot. */

    r->rf = raft_make(peers, npeers, me, ps, apply_fn, r);
    if (r->rf == NULL) {
        pthread_mutex_destroy(&r->mu);
        free(r);
        return NULL;
    }
    return r;
}

raft *rsm_raft(rsm *r)
{
    return r->rf;
}

rsm_err rsm_submit(rsm *r, const void *req, size_t len, void **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    (void)r;
    (void)req;
    (void)len;
    /* Your code here (4A): wrap req with an identity, raft_start it (not
     * the leader: RSM_WRONG_LEADER at once), then wait until the apply
     * function says what became of it. */
    return RSM_WRONG_LEADER;
}

void rsm_kill(rsm *r)
{
    pthread_mutex_lock(&r->mu);
    r->dead = true;
    /* Your code here (4A): wake every submit that waits; make sure do_op
     * is not called from now on. */
    pthread_mutex_unlock(&r->mu);
}

void rsm_free(rsm *r)
{
    if (r == NULL)
        return;
    rsm_kill(r);
    /* raft_kill joins Raft's applier: hold no lock it may wait for in your
     * apply function. */
    raft_kill(r->rf);
    /* Your code here: free what you allocated. */
    pthread_mutex_destroy(&r->mu);
    free(r);
}
