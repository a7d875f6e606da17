/* raft.c: your Raft. This is the skeleton: it compiles and runs, and fails
 * every test. Fill it in stage by stage (3A election, 3B log, 3C persistence,
 * 3D snapshots); grader/raft/raft.h is the API you implement and says who calls
 * what, on which thread. You may add files under labs/raft/.
 *
 * Outline of the API:
 *
 *   rf = raft_make(peers, npeers, me, persister, apply, apply_ctx)
 *     start a new Raft peer
 *   raft_register(rf, svc)
 *     add your RPC handlers to the "Raft" service
 *   ok = raft_start(rf, command, len, &index, &term)
 *     start agreement on a new log entry
 *   raft_get_state(rf, &term, &is_leader)
 *     ask a Raft for its current term, and whether it thinks it is leader
 *   raft_snapshot(rf, index, snapshot, len)
 *     the service has snapshotted everything up to index (3D)
 *   raft_kill(rf)
 *     stop the peer: join every thread, free every byte
 *   apply(apply_ctx, &msg)
 *     each time a new entry is committed to the log, each Raft peer should
 *     send a raft_apply_msg to the service (tester) in the same server, by
 *     calling apply from a thread of its own, without holding its lock.
 *
 * Rules of the game (see the handouts): use only pthreads (threads, mutexes,
 * condition variables), nanosleep/usleep, clock_gettime and the rand family
 * (rand_r with a seed of your own is simplest) for threads, time and randomness. Send RPCs with labrpc (labrpc/labrpc.h) and
 * encode them with the codec (labrpc/codec.h); never share memory between
 * peers.
 */
#include "raft.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "labrpc.h"
#include "persister.h"

/* A Go-style sleep in milliseconds. */
static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A single Raft peer. */
struct raft {
    pthread_mutex_t mu;       /* protects this peer's shared state */
    labrpc_end **peers;       /* ends of all peers (a copy of the array) */
    int npeers;
    persister *ps;            /* holds this peer's persisted state */
    int me;                   /* this peer's index into peers[] */
    bool dead;                /* set by raft_kill */

    raft_apply_fn apply;      /* where committed commands go */
    void *apply_ctx;

    pthread_t ticker;
    bool ticker_started;
    unsigned rand_state;      /* for rand_r */

    /* Your data here (3A, 3B, 3C, 3D). Look at the paper's Figure 2 for a
     * description of what state a Raft server must maintain. For example:
     *
     * Persistent state on all servers (3C: save it with persist()):
     *   int current_term;        latest term this server has seen
     *   int voted_for;           candidate that got our vote in current_term, or -1
     *   log entries;             each with its term and command bytes (malloc'd)
     *
     * Volatile state on all servers:
     *   int commit_index;        highest log entry known to be committed
     *   int last_applied;        highest log entry applied to the service
     *   role (follower / candidate / leader), when we last heard from a
     *   leader or granted a vote (for the election timeout)
     *
     * Volatile state on leaders (reinitialised after election):
     *   int *next_index;         for each server, next log entry to send
     *   int *match_index;        for each server, highest entry known replicated
     *
     * 3D: the index and term of the last entry the snapshot covers, and the
     * snapshot bytes (your log no longer starts at index 1).
     *
     * And what your threads need: a condition variable to wake the applier
     * thread when commit_index moves, for instance.
     */
};

/* Return the current term and whether this server believes it is the leader. */
void raft_get_state(raft *rf, int *term, bool *is_leader)
{
    pthread_mutex_lock(&rf->mu);
    /* Your code here (3A). */
    *term = 0;
    *is_leader = false;
    pthread_mutex_unlock(&rf->mu);
}

/* Save Raft's persistent state to stable storage, where it can later be
 * retrieved after a crash and restart. See the paper's Figure 2 for a
 * description of what should be persistent. Before you've implemented
 * snapshots, pass NULL, 0 as the snapshot to persister_save; after you've
 * implemented snapshots, pass the current snapshot. Call it with rf->mu held,
 * every time the persistent state changes. */
static void persist(raft *rf)
{
    /* Your code here (3C). Example:
     *
     *   codec_enc e;
     *   codec_enc_init(&e);
     *   codec_put_i32(&e, rf->current_term);
     *   codec_put_i32(&e, rf->voted_for);
     *   codec_put_list(&e, number of log entries);
     *   for each entry: codec_put_i32(&e, term); codec_put_bytes(&e, cmd, len);
     *   if (codec_enc_err(&e) == CODEC_OK)
     *       persister_save(rf->ps, e.buf, e.len, NULL, 0);
     *   codec_enc_free(&e);
     */
    (void)rf;
}

/* Restore previously persisted state (called from raft_make). */
static void read_persist(raft *rf)
{
    size_t len = 0;
    uint8_t *data = persister_read_state(rf->ps, &len);
    if (data && len > 0) {
        /* Your code here (3C). Example:
         *
         *   codec_dec d;
         *   codec_dec_init(&d, data, len);
         *   int32_t term = codec_get_i32(&d);
         *   int32_t voted_for = codec_get_i32(&d);
         *   uint32_t n = codec_get_list(&d, max entries you accept);
         *   for each entry: codec_get_i32(&d) and codec_get_bytes_dup(&d, max, &len)
         *   if (codec_dec_finish(&d) != CODEC_OK) {
         *       char why[128];
         *       codec_dec_describe(&d, why, sizeof why);   ... and don't use it
         *   } else {
         *       rf->current_term = term; ...
         *   }
         */
    }
    free(data);
}

/* The service says it has created a snapshot that has all info up to and
 * including index. This means the service no longer needs the log through
 * (and including) that index. Raft should now trim its log as much as
 * possible, and save the snapshot with its state (persister_save). snapshot
 * is borrowed: copy what you keep. May be called from inside your apply
 * function's call, on your applier thread. */
void raft_snapshot(raft *rf, int index, const void *snapshot, size_t len)
{
    /* Your code here (3D). */
    (void)rf;
    (void)index;
    (void)snapshot;
    (void)len;
}

/* ---- RequestVote ------------------------------------------------------------
 * Arguments and replies travel as bytes: encode them with the codec, decode
 * them on the other side. Field names are those of Figure 2. */

typedef struct request_vote_args {
    /* Your data here (3A, 3B). */
    int32_t term;
    int32_t candidate_id;
    /* int32_t last_log_index; int32_t last_log_term;  (3B) */
} request_vote_args;

typedef struct request_vote_reply {
    /* Your data here (3A). */
    int32_t term;
    bool vote_granted;
} request_vote_reply;

static void encode_request_vote_args(codec_enc *e, const request_vote_args *a)
{
    codec_put_i32(e, a->term);
    codec_put_i32(e, a->candidate_id);
}

static bool decode_request_vote_args(const uint8_t *p, size_t len, request_vote_args *a)
{
    codec_dec d;
    codec_dec_init(&d, p, len);
    a->term = codec_get_i32(&d);
    a->candidate_id = codec_get_i32(&d);
    return codec_dec_finish(&d) == CODEC_OK;   /* one check at the end */
}

static void encode_request_vote_reply(codec_enc *e, const request_vote_reply *r)
{
    codec_put_i32(e, r->term);
    codec_put_bool(e, r->vote_granted);
}

static bool decode_request_vote_reply(const uint8_t *p, size_t len, request_vote_reply *r)
{
    codec_dec d;
    codec_dec_init(&d, p, len);
    r->term = codec_get_i32(&d);
    r->vote_granted = codec_get_bool(&d);
    return codec_dec_finish(&d) == CODEC_OK;
}

/* RequestVote RPC handler: runs on a labrpc thread, possibly at the same
 * time as other handlers and your own threads. ctx is the raft (see
 * raft_register). Returning non-zero rejects malformed arguments. */
static int request_vote(void *ctx, const uint8_t *args, size_t args_len, codec_enc *reply)
{
    raft *rf = ctx;
    request_vote_args a;
    if (!decode_request_vote_args(args, args_len, &a))
        return -1;
    request_vote_reply r = { 0 };
    pthread_mutex_lock(&rf->mu);
    /* Your code here (3A, 3B). */
    r.term = 0;
    r.vote_granted = false;
    pthread_mutex_unlock(&rf->mu);
    encode_request_vote_reply(reply, &r);
    return 0;
}

/* Example code to send a RequestVote RPC to a server. server is the index of
 * the target server in rf->peers[]. labrpc_go returns at once; done() runs
 * later, exactly once, on a labrpc thread, with the reply (borrowed) or a
 * failure status: the labrpc package simulates a lossy network, in which
 * servers may be unreachable, and in which requests and replies may be lost.
 * A call that fails returns after a while (up to 7 s when the peer is
 * disconnected), so don't wait for it before sending the next one.
 *
 * Whatever done() needs (the raft, which server, the term of the request)
 * goes in a small malloc'd context that done() frees. After raft_kill has
 * called labrpc_end_cancel on every end, no callback runs any more. */
typedef struct vote_call {
    raft *rf;
    int server;
    int32_t term;
} vote_call;

static void request_vote_done(void *arg, int status, const uint8_t *reply, size_t reply_len)
{
    vote_call *vc = arg;
    request_vote_reply r;
    if (status == LABRPC_OK && decode_request_vote_reply(reply, reply_len, &r)) {
        pthread_mutex_lock(&vc->rf->mu);
        /* Your code here (3A): count the vote, step down on a higher term... */
        pthread_mutex_unlock(&vc->rf->mu);
    }
    free(vc);
}

static void send_request_vote(raft *rf, int server, const request_vote_args *a)
{
    codec_enc e;
    codec_enc_init(&e);
    encode_request_vote_args(&e, a);
    vote_call *vc = malloc(sizeof *vc);
    if (vc && codec_enc_err(&e) == CODEC_OK) {
        vc->rf = rf;
        vc->server = server;
        vc->term = a->term;
        if (labrpc_go(rf->peers[server], "Raft.RequestVote", e.buf, e.len,
                      request_vote_done, vc) != LABRPC_OK)
            free(vc);   /* not sent: done() will not run */
    } else {
        free(vc);
    }
    codec_enc_free(&e);   /* labrpc copied the arguments */
}

/* Adds the RPC handlers: RequestVote and AppendEntries (3A: heartbeats are
 * empty AppendEntries), InstallSnapshot later (3D). */
int raft_register(raft *rf, labrpc_service *svc)
{
    (void)rf;
    if (labrpc_service_add(svc, "RequestVote", request_vote) != 0)
        return -1;
    /* Your code here (3A: AppendEntries; 3D: InstallSnapshot). */
    return 0;
}

/* The service using Raft (e.g. a k/v server) wants to start agreement on the
 * next command to be appended to Raft's log. If this server isn't the
 * leader, return false. Otherwise start the agreement and return
 * immediately. There is no guarantee that this command will ever be
 * committed to the Raft log, since the leader may fail or lose an election.
 * Even if the Raft instance has been killed, this function should return
 * gracefully.
 *
 * *index is the index that the command will appear at if it's ever
 * committed, *term the current term. Return true if this server believes it
 * is the leader. Copy the command: it is borrowed. */
bool raft_start(raft *rf, const void *command, size_t len, int *index, int *term)
{
    (void)command;
    (void)len;
    pthread_mutex_lock(&rf->mu);
    /* Your code here (3B). */
    *index = -1;
    *term = 0;
    bool is_leader = false;
    pthread_mutex_unlock(&rf->mu);
    return is_leader;
}

static bool killed(raft *rf)
{
    pthread_mutex_lock(&rf->mu);
    bool d = rf->dead;
    pthread_mutex_unlock(&rf->mu);
    return d;
}

/* Starts an election: RequestVote to every other peer, in parallel. */
static void start_election(raft *rf)
{
    request_vote_args a = { 0 };
    pthread_mutex_lock(&rf->mu);
    /* Your code here (3A): become candidate, new term, vote for yourself... */
    a.term = 0;
    a.candidate_id = rf->me;
    pthread_mutex_unlock(&rf->mu);
    for (int i = 0; i < rf->npeers; i++)
        if (i != rf->me)
            send_request_vote(rf, i, &a);
}

/* The ticker thread. */
static void *ticker(void *arg)
{
    raft *rf = arg;
    while (!killed(rf)) {
        /* Your code here (3A)
         * Check if a leader election should be started. */
        bool election_timeout_elapsed = false;
        if (election_timeout_elapsed)
            start_election(rf);

        /* pause for a random amount of time between 50 and 350 ms. */
        pthread_mutex_lock(&rf->mu);
        long ms = 50 + (long)(rand_r(&rf->rand_state) % 300);
        pthread_mutex_unlock(&rf->mu);
        sleep_ms(ms);
    }
    return NULL;
}

/* The service or tester wants to create a Raft server. peers[] are the ends
 * to all the Raft servers (including this one); this server's is peers[me].
 * All the servers' peers[] arrays have the same order. ps is a place for this
 * server to save its persistent state, and also initially holds the most
 * recent saved state, if any. apply(apply_ctx, &msg) is how the tester or
 * service expects Raft to deliver committed entries (from a thread of yours).
 * raft_make must return quickly, so it should start threads for any
 * long-running work. */
raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps,
                raft_apply_fn apply, void *apply_ctx)
{
    raft *rf = calloc(1, sizeof *rf);
    if (!rf)
        return NULL;
    rf->peers = malloc((size_t)npeers * sizeof *rf->peers);
    if (!rf->peers) {
        free(rf);
        return NULL;
    }
    memcpy(rf->peers, peers, (size_t)npeers * sizeof *rf->peers);
    rf->npeers = npeers;
    rf->me = me;
    rf->ps = ps;
    rf->apply = apply;
    rf->apply_ctx = apply_ctx;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    rf->rand_state = (unsigned)me * 7919u ^ (unsigned)now.tv_nsec;
    pthread_mutex_init(&rf->mu, NULL);

    /* Your initialization code here (3A, 3B, 3C). */

    /* initialize from state persisted before a crash */
    read_persist(rf);
    (void)persist;   /* (persist is yours to call, once 3C starts) */

    /* start ticker thread to start elections; later an applier thread too */
    if (pthread_create(&rf->ticker, NULL, ticker, rf) != 0) {
        pthread_mutex_destroy(&rf->mu);
        free(rf->peers);
        free(rf);
        return NULL;
    }
    rf->ticker_started = true;
    return rf;
}

/* The tester calls raft_kill() when it crashes a peer and at the end of
 * every test; unlike Go, nothing else stops your threads. Stop everything: set dead, wake and join every
 * thread you started, cancel every end (labrpc_end_cancel: after it returns,
 * no callback of yours runs any more), then free everything you allocated.
 * Don't free peers' ends or ps: the grader owns them. */
void raft_kill(raft *rf)
{
    pthread_mutex_lock(&rf->mu);
    rf->dead = true;
    pthread_mutex_unlock(&rf->mu);
    /* Your code here, if desired (wake your threads' condition variables). */

    if (rf->ticker_started)
        pthread_join(rf->ticker, NULL);
    for (int i = 0; i < rf->npeers; i++)
        if (i != rf->me)
            labrpc_end_cancel(rf->peers[i]);

    /* free what you allocated (the log, ...) */
    pthread_mutex_destroy(&rf->mu);
    free(rf->peers);
    free(rf);
}
