/* raft.c: the reference Raft (stages 3A-3D), written from the extended Raft
 * paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus
 * Algorithm"). Section numbers in comments ("§5.3") are the paper's; most of
 * the code is its Figure 2, and §7 for snapshots.
 *
 * Structure
 *  - One mutex (rf->mu) guards every field of struct raft. Everything that
 *    reads or writes Raft state holds it; nothing blocks while holding it
 *    except for short encoding/persisting work and labrpc_go, which returns
 *    at once.
 *  - Two threads per peer, started by raft_make and joined by raft_kill:
 *      ticker:  sleeps on rf->ticker_cond until the election deadline (as a
 *               follower or candidate) or the next heartbeat (as leader);
 *      applier: sleeps on rf->apply_cond until there is something committed
 *               to deliver, then calls the service's apply function WITHOUT
 *               holding rf->mu (the service may call back into us).
 *  - RPCs go out with labrpc_go, to all peers in parallel; replies come back
 *    on labrpc's threads in the on_*_reply callbacks, which take rf->mu.
 *    A leader sends to a follower from one place, leader_send: at once when
 *    there is something new (raft_start, a reply, a commit), at most one
 *    call in flight per follower unless it looks stuck (so entries are
 *    batched and each crosses about once), and a heartbeat after
 *    heartbeat_ms of silence (sooner, retry_ms, after a call that failed).
 *  - RPC handlers (handle_*) run on labrpc's threads and take rf->mu.
 *  - Beyond Figure 2, two additions from Ongaro's PhD thesis keep elections
 *    quick and undisturbed: PreVote (§9.6; start_pre_vote), so that a server
 *    coming back from a partition does not depose a working leader, and
 *    check quorum (§6.2; check_quorum), so that a leader cut off from
 *    the majority stops taking commands that could never commit.
 *
 * Ownership
 *  - The log owns a malloc'd copy of every command; rf->snapshot owns a copy
 *    of the latest snapshot. Each outgoing call owns a small rpc_ctx that its
 *    completion callback frees (labrpc copies the argument bytes, so those
 *    are freed right after labrpc_go).
 *  - raft_kill marks the peer dead, joins both threads, cancels every client
 *    end (so no callback can run afterwards), then frees everything.
 *
 * Log indexing: rf->log[0] is a dummy entry standing for the last entry the
 * snapshot covers (index rf->log_start, its term kept); rf->log[i] has log
 * index rf->log_start + i. With no snapshot, log_start is 0 and log[0] is the
 * usual dummy at index 0, term 0.
 */
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
#include "raft.h"
#include "raft_tuning.h"

/* Timing (raft_tuning.h; each peer keeps a copy in rf->tune). Heartbeats
 * at most 10 per second (the lab's rule); election timeouts of 150-300 ms,
 * the range §9.3 recommends, randomised so that split votes are rare (§5.2).
 * That is short for a lossy network only because a call that failed (lost,
 * or to an unreachable peer) is sent again after retry_ms rather than at
 * the next heartbeat or election; and a timeout that fires while the leader
 * is alive costs little, since the pre-vote fails and no term changes.
 *
 * Check quorum (Ongaro's thesis, §6.2): a leader cut off from a majority
 * should stop acting as one. After a minimum election timeout without
 * hearing from a majority, the others may have elected a new leader: it
 * declines new commands (they would most likely be lost). After a maximum
 * election timeout it steps down. The gap keeps a leader whose replies are
 * merely held up (a reordering network) from stepping down for nothing. */
#define TUNING_DEFAULT                                                    \
    {                                                                     \
        .heartbeat_ms = 100, .election_min_ms = 150, .election_max_ms = 300, \
        .retry_ms = 20, .pre_vote = true, .check_quorum = true,           \
    }
static raft_tuning tuning = TUNING_DEFAULT;

raft_tuning raft_tuning_default(void) { return (raft_tuning)TUNING_DEFAULT; }

bool raft_tuning_set(const raft_tuning *t)
{
    if (!t || t->heartbeat_ms < 1 || t->election_min_ms < 1 ||
        t->election_max_ms < t->election_min_ms || t->retry_ms < 1 ||
        t->retry_ms > t->heartbeat_ms)
        return false;
    tuning = *t;
    return true;
}

raft_tuning raft_tuning_get(void) { return tuning; }

/* Upper bounds on what a request may claim, so that a malformed message is
 * rejected instead of making us allocate gigabytes. */
#define MAX_COMMAND_BYTES (64u << 20)
#define MAX_SNAPSHOT_BYTES (1u << 30)
#define MAX_ENTRIES_PER_RPC (1u << 22)
#define MAX_LOG_ENTRIES (1u << 26)
/* A lost RequestVote is sent again at most this often per round. */
#define MAX_VOTE_RESENDS 3

enum role { FOLLOWER, CANDIDATE, LEADER };

typedef struct log_entry {
    int term;
    uint8_t *command; /* owned copy; NULL for the dummy entry */
    size_t command_len;
    size_t state_end; /* where its encoding ends in raft.state */
} log_entry;

struct raft {
    pthread_mutex_t mu;
    pthread_cond_t ticker_cond; /* CLOCK_MONOTONIC: wakes the ticker */
    pthread_cond_t apply_cond;  /* wakes the applier */
    pthread_t ticker;
    pthread_t applier;

    /* Fixed at raft_make. */
    labrpc_end **peers; /* our own copy of the array (the ends are not ours) */
    int npeers;
    int me;
    persister *ps;
    raft_apply_fn apply;
    void *apply_ctx;
    unsigned rand_seed;
    raft_tuning tune;   /* a copy of the settings at raft_make */

    bool dead;

    /* Persistent state on all servers (Figure 2), plus the snapshot (§7). */
    int current_term;
    int voted_for;      /* -1: nobody in current_term */
    log_entry *log;     /* log[0] is the dummy at log_start */
    int log_len;        /* entries in log[], the dummy included */
    int log_cap;
    int log_start;      /* lastIncludedIndex of the snapshot (0 if none) */
    uint8_t *snapshot;  /* the latest snapshot, NULL if none */
    size_t snapshot_len;
    codec_enc state;    /* the above as persist() saves it, kept encoded */

    /* Volatile state on all servers (Figure 2). */
    int commit_index;
    int last_applied;
    enum role role;
    int64_t election_deadline_ms;
    bool snapshot_to_apply; /* an InstallSnapshot the applier must deliver */

    /* Candidates, and followers asking for pre-votes. */
    int votes;
    int prevotes;
    uint64_t prevote_round;  /* numbers our pre-vote rounds */
    int64_t leader_seen_ms;  /* when we last heard from a current leader */

    /* Leaders; reinitialised after each election. Indexed by peer. */
    int *next_index;
    int *match_index;
    /* Flow control, so that a follower gets each entry about once: at most
     * one AppendEntries/InstallSnapshot "in flight" per follower; the next
     * batch goes when its reply arrives, or after heartbeat_ms if it never
     * does (a lost call, or one stuck on a dead peer for seconds). */
    bool *in_flight;
    uint64_t *send_seq;      /* numbers the sends to each peer */
    int64_t *last_sent_ms;   /* when we last sent to each peer */
    int64_t *last_ack_ms;    /* when each peer last answered us in this term */
    int *commit_sent;        /* the leaderCommit we last told each peer */
    /* Check quorum (check_quorum, run by the ticker only). */
    int64_t resumed_ms;      /* when the ticker last woke late: this process had paused */
    bool declining;          /* the ticker found a majority silent: refuse commands... */
    int64_t declined_heard;  /* ...until one answers after majority_heard_ms was this */
};

/* What a completion callback needs to know about the call it completes.
 * Heap-allocated per call; the callback frees it. */
typedef struct rpc_ctx {
    raft *rf;
    int peer;
    int term;          /* our term when we sent it: replies for older terms are stale */
    uint64_t seq;      /* which send to this peer it was (pre-votes: which round) */
    bool pre_vote;     /* RequestVote: a pre-vote */
    int resends;       /* RequestVote: how often this request was sent again */
    int prev_index;    /* AppendEntries: prevLogIndex we sent */
    int n_entries;     /* AppendEntries: how many entries we sent */
    int snap_index;    /* InstallSnapshot: lastIncludedIndex we sent */
} rpc_ctx;

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec ms_to_timespec(int64_t ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)((ms % 1000) * 1000000);
    return ts;
}

static int last_index(const raft *rf) { return rf->log_start + rf->log_len - 1; }

static int term_at(const raft *rf, int index) { return rf->log[index - rf->log_start].term; }

static int last_term(const raft *rf) { return rf->log[rf->log_len - 1].term; }

static int majority(const raft *rf) { return rf->npeers / 2 + 1; }

/* A fresh random election timeout (§5.2: randomised to make split votes rare). */
static void reset_election_timer(raft *rf)
{
    int range = rf->tune.election_max_ms - rf->tune.election_min_ms + 1;
    int timeout = rf->tune.election_min_ms + rand_r(&rf->rand_seed) % range;
    rf->election_deadline_ms = now_ms() + timeout;
}

/* ------------------------------------------------------------------ */
/* The log                                                             */
/* ------------------------------------------------------------------ */

/* The persisted state (layout at persist()) stays encoded in rf->state:
 * each entry is encoded once, when appended. Encoding the whole log at
 * every persist cost O(log length) per append, and in stage 4, where the
 * log grows to thousands of entries, most of the CPU. persist() writes
 * the fixed-size header in place. */
#define STATE_HEADER_BYTES 16 /* currentTerm, votedFor, lastIncludedIndex, count */

static void state_put_entry(raft *rf, int i)
{
    codec_put_i32(&rf->state, rf->log[i].term);
    codec_put_bytes(&rf->state, rf->log[i].command, rf->log[i].command_len);
    rf->log[i].state_end = rf->state.len;
}

/* Encodes the whole log again: at start, and when the log is compacted. */
static void state_rebuild(raft *rf)
{
    static const uint8_t header[STATE_HEADER_BYTES];
    codec_enc_reset(&rf->state);
    codec_put_raw(&rf->state, header, sizeof header);
    for (int i = 0; i < rf->log_len; i++)
        state_put_entry(rf, i);
}

static bool log_reserve(raft *rf, int need)
{
    if (need <= rf->log_cap)
        return true;
    if (need > (int)MAX_LOG_ENTRIES)
        return false;
    int cap = rf->log_cap ? rf->log_cap : 16;
    while (cap < need)
        cap *= 2;
    log_entry *grown = realloc(rf->log, (size_t)cap * sizeof *grown);
    if (grown == NULL)
        return false;
    rf->log = grown;
    rf->log_cap = cap;
    return true;
}

/* Appends a copy of command. false if out of memory (log unchanged). */
static bool log_append(raft *rf, int term, const void *command, size_t len)
{
    if (!log_reserve(rf, rf->log_len + 1))
        return false;
    uint8_t *copy = malloc(len ? len : 1); /* never malloc(0): it may return NULL */
    if (copy == NULL)
        return false;
    if (len)
        memcpy(copy, command, len);
    rf->log[rf->log_len].term = term;
    rf->log[rf->log_len].command = copy;
    rf->log[rf->log_len].command_len = len;
    rf->log_len++;
    state_put_entry(rf, rf->log_len - 1);
    return true;
}

/* Deletes the entry at index and all that follow it. */
static void log_truncate_from(raft *rf, int index)
{
    for (int i = index - rf->log_start; i < rf->log_len; i++)
        free(rf->log[i].command);
    rf->log_len = index - rf->log_start;
    codec_enc_truncate(&rf->state, rf->log[rf->log_len - 1].state_end);
}

/* Discards everything up to and including index, which becomes the new
 * dummy entry with the given term (§7). Entries after index are kept only if
 * our log holds index with that same term; otherwise the whole log goes. */
static void log_compact(raft *rf, int index, int term)
{
    int keep_from; /* first array slot to keep, after the dummy */
    if (index <= last_index(rf) && term_at(rf, index) == term)
        keep_from = index - rf->log_start + 1;
    else
        keep_from = rf->log_len; /* keep nothing */

    for (int i = 0; i < keep_from && i < rf->log_len; i++)
        free(rf->log[i].command);
    int kept = rf->log_len - keep_from;
    memmove(&rf->log[1], &rf->log[keep_from], (size_t)kept * sizeof rf->log[0]);
    rf->log[0].term = term;
    rf->log[0].command = NULL;
    rf->log[0].command_len = 0;
    rf->log_len = 1 + kept;
    rf->log_start = index;
    state_rebuild(rf);
}

/* ------------------------------------------------------------------ */
/* Persistence (§5.1 "stable storage", Figure 2's persistent state)    */
/* ------------------------------------------------------------------ */

/* Layout: currentTerm, votedFor, lastIncludedIndex, then the log as a list
 * of (term, command) starting with the dummy entry (whose term is
 * lastIncludedTerm). The snapshot is saved beside it, in the same call, so
 * that state and snapshot always match. Returns false if out of memory. */
static bool persist(raft *rf)
{
    if (codec_enc_err(&rf->state) != CODEC_OK)
        state_rebuild(rf); /* we ran out of memory once: try again */
    codec_enc header;
    codec_enc_init(&header);
    codec_put_i32(&header, rf->current_term);
    codec_put_i32(&header, rf->voted_for);
    codec_put_i32(&header, rf->log_start);
    codec_put_list(&header, (uint32_t)rf->log_len);
    bool ok = codec_enc_err(&header) == CODEC_OK && codec_enc_err(&rf->state) == CODEC_OK;
    if (ok) {
        memcpy(rf->state.buf, header.buf, STATE_HEADER_BYTES);
        ok = persister_save(rf->ps, rf->state.buf, rf->state.len, rf->snapshot,
                            rf->snapshot_len) == 0;
    }
    codec_enc_free(&header);
    return ok;
}

/* Restores what an earlier instance persisted. false if it does not decode
 * or we run out of memory. An empty state is a first start. */
static bool restore(raft *rf)
{
    size_t state_len, snap_len;
    uint8_t *state = persister_read_state(rf->ps, &state_len);
    if (state == NULL)
        return false;
    uint8_t *snap = persister_read_snapshot(rf->ps, &snap_len);
    if (snap == NULL) {
        free(state);
        return false;
    }
    if (state_len == 0) { /* nothing persisted yet: a fresh start */
        free(state);
        free(snap);
        return true;
    }

    bool ok = false;
    codec_dec d;
    codec_dec_init(&d, state, state_len);
    int term = codec_get_i32(&d);
    int voted_for = codec_get_i32(&d);
    int log_start = codec_get_i32(&d);
    uint32_t n = codec_get_list(&d, MAX_LOG_ENTRIES);
    if (codec_dec_err(&d) != CODEC_OK || n == 0 || term < 0 || log_start < 0 ||
        voted_for < -1 || voted_for >= rf->npeers)
        goto out;

    for (uint32_t i = 0; i < n; i++) {
        int entry_term = codec_get_i32(&d);
        size_t len;
        const uint8_t *command = codec_get_bytes(&d, MAX_COMMAND_BYTES, &len);
        if (codec_dec_err(&d) != CODEC_OK)
            goto out;
        if (i == 0) { /* the dummy entry */
            rf->log[0].term = entry_term;
            continue;
        }
        if (!log_append(rf, entry_term, command, len))
            goto out;
    }
    if (codec_dec_finish(&d) != CODEC_OK)
        goto out;

    rf->current_term = term;
    rf->voted_for = voted_for;
    rf->log_start = log_start;
    /* Everything the snapshot covers was committed and applied; the service
     * reads the snapshot itself on restart, so we do not deliver it again. */
    rf->commit_index = log_start;
    rf->last_applied = log_start;
    state_rebuild(rf);
    if (snap_len > 0) {
        rf->snapshot = snap;
        rf->snapshot_len = snap_len;
        snap = NULL;
    }
    ok = true;
out:
    free(state);
    free(snap);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Roles                                                               */
/* ------------------------------------------------------------------ */

/* §5.1: a server that sees a higher term adopts it and reverts to follower.
 * The caller persists (currentTerm and votedFor changed). */
static void adopt_term(raft *rf, int term)
{
    /* A deposed leader's election deadline is long past: give the new
     * leader a full timeout before competing with it. */
    if (rf->role == LEADER)
        reset_election_timer(rf);
    raft_note(rf->me, "term %d seen: follower", term);   /* in the run's picture */
    rf->current_term = term;
    rf->voted_for = -1;
    rf->role = FOLLOWER;
}

static void leader_send(raft *rf, int peer, bool heartbeat);
static void start_election(raft *rf);
static void ask_for_vote(raft *rf, int peer, bool pre_vote, int resends);

/* A request from the leader of our term: §5.2, a candidate that hears from
 * it steps down, and a follower waits a full timeout again. It also voids
 * any pre-vote round of ours still counting replies. */
static void follow_leader(raft *rf)
{
    rf->role = FOLLOWER;
    reset_election_timer(rf);
    rf->leader_seen_ms = now_ms();
    rf->prevote_round++;
}

static void become_leader(raft *rf)
{
    rf->role = LEADER;
    raft_note(rf->me, "leader of term %d", rf->current_term);
    if (rf->tune.on_leader)
        rf->tune.on_leader(rf->tune.on_leader_ctx, rf->me, rf->current_term);
    for (int p = 0; p < rf->npeers; p++) {
        rf->next_index[p] = last_index(rf) + 1; /* Figure 2: leader's last log index + 1 */
        rf->match_index[p] = 0;
        rf->in_flight[p] = false;
        rf->commit_sent[p] = 0;
        rf->last_sent_ms[p] = 0;
        rf->last_ack_ms[p] = now_ms(); /* a full lease to hear from them */
    }
    rf->declining = false;
    /* §5.2: announce ourselves at once with heartbeats, before anyone else's
     * election timer fires. */
    for (int p = 0; p < rf->npeers; p++)
        if (p != rf->me)
            leader_send(rf, p, true);
    /* The ticker may be asleep until an election deadline; it must now keep
     * the heartbeat schedule instead. */
    pthread_cond_signal(&rf->ticker_cond);
}

/* §5.4.2 (Figure 8): a leader commits only entries of its own term by
 * counting replicas; earlier entries are committed along with them. */
static void leader_advance_commit(raft *rf)
{
    int old_commit = rf->commit_index;
    for (int n = last_index(rf); n > rf->commit_index; n--) {
        if (term_at(rf, n) != rf->current_term)
            break; /* terms only decrease going back: nothing older may be counted */
        int replicas = 1; /* ourselves */
        for (int p = 0; p < rf->npeers; p++)
            if (p != rf->me && rf->match_index[p] >= n)
                replicas++;
        if (replicas >= majority(rf)) {
            rf->commit_index = n;
            break;
        }
    }
    if (rf->commit_index != old_commit) {
        pthread_cond_signal(&rf->apply_cond);
        /* Tell the followers now, so that they apply without waiting for the
         * next heartbeat (leader_send skips followers with a call in flight:
         * their reply will trigger it). */
        for (int p = 0; p < rf->npeers; p++)
            if (p != rf->me)
                leader_send(rf, p, false);
    }
}

/* ------------------------------------------------------------------ */
/* RequestVote (§5.2, §5.4.1)                                          */
/* ------------------------------------------------------------------ */

/* §5.4.1: is a candidate's log at least as up-to-date as ours (a later last
 * term, or the same last term and at least as long)? */
static bool log_up_to_date(const raft *rf, int cand_last_term, int cand_last_index)
{
    return cand_last_term > last_term(rf) ||
           (cand_last_term == last_term(rf) && cand_last_index >= last_index(rf));
}

static int handle_request_vote(void *ctx, const uint8_t *args, size_t args_len, codec_enc *reply)
{
    raft *rf = ctx;
    codec_dec d;
    codec_dec_init(&d, args, args_len);
    int term = codec_get_i32(&d);
    int candidate = codec_get_i32(&d);
    int cand_last_index = codec_get_i32(&d);
    int cand_last_term = codec_get_i32(&d);
    bool pre_vote = codec_get_bool(&d);
    if (codec_dec_finish(&d) != CODEC_OK || term < 0 || candidate < 0 ||
        candidate >= rf->npeers || cand_last_index < 0 || cand_last_term < 0)
        return -1;

    pthread_mutex_lock(&rf->mu);
    bool must_persist = false;
    bool granted = false;
    if (pre_vote) {
        /* Would we vote for it in that term? Answer without changing any
         * state, and say no while we still hear from a leader (thesis
         * §9.6: then a server that was merely cut off cannot win). */
        bool leader_alive = rf->role == LEADER ||
                            now_ms() - rf->leader_seen_ms < rf->tune.election_min_ms;
        granted = term > rf->current_term && !leader_alive &&
                  log_up_to_date(rf, cand_last_term, cand_last_index);
    } else if (term > rf->current_term) {
        adopt_term(rf, term);
        must_persist = true;
    }
    if (!pre_vote && term == rf->current_term &&
        (rf->voted_for == -1 || rf->voted_for == candidate)) {
        /* §5.4.1: vote only for a candidate whose log is at least as
         * up-to-date as ours. */
        if (log_up_to_date(rf, cand_last_term, cand_last_index)) {
            granted = true;
            rf->voted_for = candidate;
            must_persist = true;
            /* Granting a vote counts as hearing from a would-be leader:
             * don't compete with it right away (Figure 2, Followers). */
            reset_election_timer(rf);
        }
    }
    /* Persist before replying: a vote must survive a crash (§5.1). */
    if (must_persist && !persist(rf)) {
        pthread_mutex_unlock(&rf->mu);
        return -1;
    }
    int reply_term = rf->current_term;
    pthread_mutex_unlock(&rf->mu);

    codec_put_i32(reply, reply_term);
    codec_put_bool(reply, granted);
    return 0;
}

static void on_request_vote_reply(void *arg, int status, const uint8_t *reply, size_t reply_len)
{
    rpc_ctx *c = arg;
    raft *rf = c->rf;
    pthread_mutex_lock(&rf->mu);
    if (rf->dead)
        goto out;
    if (status != LABRPC_OK) {
        /* Lost: ask again while the round is on, rather than wait for the
         * next election timeout (a lost vote on a lossy network would
         * otherwise cost a whole one). Bounded, in case calls fail fast. */
        bool round_on = c->pre_vote ? rf->role != LEADER && rf->current_term == c->term &&
                                          c->seq == rf->prevote_round
                                    : rf->role == CANDIDATE && rf->current_term == c->term;
        if (round_on && c->resends < MAX_VOTE_RESENDS)
            ask_for_vote(rf, c->peer, c->pre_vote, c->resends + 1);
        goto out;
    }

    codec_dec d;
    codec_dec_init(&d, reply, reply_len);
    int term = codec_get_i32(&d);
    bool granted = codec_get_bool(&d);
    if (codec_dec_finish(&d) != CODEC_OK)
        goto out; /* a garbled reply is no reply */

    if (term > rf->current_term) {
        adopt_term(rf, term);
        persist(rf);
        goto out;
    }
    if (c->pre_vote) {
        /* Count only pre-votes of our latest round, still in our term. */
        if (rf->role == LEADER || rf->current_term != c->term ||
            c->seq != rf->prevote_round || !granted)
            goto out;
        if (++rf->prevotes == majority(rf)) /* we could win: hold the real election */
            start_election(rf);
        goto out;
    }
    /* Count only votes for this very election. */
    if (rf->role != CANDIDATE || rf->current_term != c->term || !granted)
        goto out;
    rf->votes++;
    if (rf->votes == majority(rf)) /* exactly at the majority: become leader once */
        become_leader(rf);
out:
    pthread_mutex_unlock(&rf->mu);
    free(c);
}

/* Asks peer for its vote in the next term (a pre-vote) or in this one (a
 * vote). Called with rf->mu held. */
static void ask_for_vote(raft *rf, int peer, bool pre_vote, int resends)
{
    codec_enc e;
    codec_enc_init(&e);
    codec_put_i32(&e, pre_vote ? rf->current_term + 1 : rf->current_term);
    codec_put_i32(&e, rf->me);
    codec_put_i32(&e, last_index(rf));
    codec_put_i32(&e, last_term(rf));
    codec_put_bool(&e, pre_vote);
    size_t len;
    uint8_t *args = codec_enc_take(&e, &len);
    rpc_ctx *c = calloc(1, sizeof *c);
    if (args == NULL || c == NULL) {
        free(args);
        free(c);
        return;
    }
    c->rf = rf;
    c->peer = peer;
    c->term = rf->current_term;
    c->seq = rf->prevote_round;
    c->pre_vote = pre_vote;
    c->resends = resends;
    if (labrpc_go(rf->peers[peer], "Raft.RequestVote", args, len, on_request_vote_reply, c) != LABRPC_OK)
        free(c);
    free(args); /* labrpc copied it */
}

/* Asks every other peer, in parallel. Called with rf->mu held. */
static void request_votes(raft *rf, bool pre_vote)
{
    for (int p = 0; p < rf->npeers; p++)
        if (p != rf->me)
            ask_for_vote(rf, p, pre_vote, 0);
}

/* §5.2: increment the term, vote for ourselves, ask everyone else. */
static void start_election(raft *rf)
{
    rf->current_term++;
    rf->role = CANDIDATE;
    raft_note(rf->me, "candidate in term %d", rf->current_term);
    rf->voted_for = rf->me;
    rf->votes = 1;
    reset_election_timer(rf);
    if (!persist(rf))
        return; /* out of memory: ask for no votes we could not remember giving ourselves */
    if (rf->votes >= majority(rf)) { /* a cluster of one */
        become_leader(rf);
        return;
    }
    request_votes(rf, false);
}

/* The election timer ran out. Before raising our term, ask whether we could
 * win an election in the next one (PreVote, Ongaro's thesis §9.6): a server
 * that was cut off, or whose log is behind, then leaves the terms alone, so
 * that when it comes back it does not depose a working leader. Called by the
 * ticker with rf->mu held; the election follows from the replies. */
static void start_pre_vote(raft *rf)
{
    reset_election_timer(rf); /* no majority of pre-votes: try again then */
    rf->prevote_round++;
    rf->prevotes = 1; /* our own */
    if (rf->prevotes >= majority(rf)) {
        start_election(rf);
        return;
    }
    request_votes(rf, true);
}

/* ------------------------------------------------------------------ */
/* AppendEntries (§5.3), with the fast log backup of §5.3's last       */
/* paragraphs: a rejecting follower says which term conflicts (xterm), */
/* where that term starts in its log (xindex), or how short its log is */
/* (xlen), so the leader skips a whole term per round trip.            */
/* ------------------------------------------------------------------ */

typedef struct wire_entry {
    int term;
    const uint8_t *command; /* borrowed from the request bytes */
    size_t command_len;
} wire_entry;

static int handle_append_entries(void *ctx, const uint8_t *args, size_t args_len, codec_enc *reply)
{
    raft *rf = ctx;
    codec_dec d;
    codec_dec_init(&d, args, args_len);
    int term = codec_get_i32(&d);
    int leader = codec_get_i32(&d);
    int prev_index = codec_get_i32(&d);
    int prev_term = codec_get_i32(&d);
    int leader_commit = codec_get_i32(&d);
    uint32_t n = codec_get_list(&d, MAX_ENTRIES_PER_RPC);
    /* Each entry takes at least 8 bytes (term, length): a count the message
     * cannot hold is malformed, and we must not allocate for it. */
    if (codec_dec_err(&d) != CODEC_OK || n > codec_dec_remaining(&d) / 8 || term < 0 ||
        leader < 0 || leader >= rf->npeers || prev_index < 0 || prev_term < 0 || leader_commit < 0)
        return -1;
    wire_entry *entries = NULL;
    if (n > 0 && (entries = calloc(n, sizeof *entries)) == NULL)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        entries[i].term = codec_get_i32(&d);
        entries[i].command = codec_get_bytes(&d, MAX_COMMAND_BYTES, &entries[i].command_len);
    }
    if (codec_dec_finish(&d) != CODEC_OK) {
        free(entries);
        return -1;
    }

    pthread_mutex_lock(&rf->mu);
    bool must_persist = false;
    bool success = false;
    int xterm = -1, xindex = -1, xlen = -1;
    int status = 0;

    if (term < rf->current_term)
        goto reply; /* §5.1: a stale leader; our term in the reply deposes it */
    if (term > rf->current_term) {
        adopt_term(rf, term);
        must_persist = true;
    }
    follow_leader(rf);

    /* Entries the snapshot covers are committed, so they already match
     * (§7): skip them and check consistency at the snapshot instead. */
    wire_entry *new_entries = entries;
    int n_new = (int)n;
    if (prev_index < rf->log_start) {
        int covered = rf->log_start - prev_index;
        if (covered >= n_new) {
            success = true;
            goto reply;
        }
        new_entries += covered;
        n_new -= covered;
        prev_index = rf->log_start;
        prev_term = rf->log[0].term;
    }

    /* §5.3 consistency check: do we hold prevLogIndex with prevLogTerm? */
    if (prev_index > last_index(rf)) {
        xlen = last_index(rf) + 1; /* our log is too short: resume right after it */
        goto reply;
    }
    if (term_at(rf, prev_index) != prev_term) {
        xterm = term_at(rf, prev_index);
        xindex = prev_index;
        while (xindex - 1 > rf->log_start && term_at(rf, xindex - 1) == xterm)
            xindex--; /* the first index we hold for the conflicting term */
        goto reply;
    }

    /* §5.3: an existing entry that conflicts with a new one (same index,
     * different term) goes, with all that follow it; then append what we
     * lack. Entries that match stay: a delayed, older request must not cut
     * off what a newer one appended. */
    for (int i = 0; i < n_new; i++) {
        int index = prev_index + 1 + i;
        if (index <= last_index(rf)) {
            if (term_at(rf, index) == new_entries[i].term)
                continue;
            log_truncate_from(rf, index);
        }
        if (!log_append(rf, new_entries[i].term, new_entries[i].command, new_entries[i].command_len)) {
            status = -1; /* out of memory: keep what we have, the leader will retry */
            must_persist = true;
            goto reply;
        }
        must_persist = true;
    }
    success = true;

    /* Figure 2: commitIndex = min(leaderCommit, index of last new entry).
     * Only what this request proved we share with the leader may commit. */
    int last_new = prev_index + n_new;
    int new_commit = leader_commit < last_new ? leader_commit : last_new;
    if (new_commit > rf->commit_index) {
        rf->commit_index = new_commit;
        pthread_cond_signal(&rf->apply_cond);
    }

reply:
    if (must_persist && !persist(rf))
        status = -1; /* cannot acknowledge what we could not make durable */
    int reply_term = rf->current_term;
    pthread_mutex_unlock(&rf->mu);
    free(entries);
    if (status != 0)
        return status;

    codec_put_i32(reply, reply_term);
    codec_put_bool(reply, success);
    codec_put_i32(reply, xterm);
    codec_put_i32(reply, xindex);
    codec_put_i32(reply, xlen);
    return 0;
}

/* Our latest AppendEntries or InstallSnapshot to a peer failed: move its
 * next heartbeat up to retry_ms from now. With rf->mu held. */
static void call_failed(raft *rf, const rpc_ctx *c)
{
    if (rf->role != LEADER || rf->current_term != c->term || c->seq != rf->send_seq[c->peer])
        return; /* a newer call has gone out since, or we no longer lead */
    rf->last_sent_ms[c->peer] = now_ms() - rf->tune.heartbeat_ms + rf->tune.retry_ms;
    pthread_cond_signal(&rf->ticker_cond); /* its wake-up time moved earlier */
}

static void on_append_entries_reply(void *arg, int status, const uint8_t *reply, size_t reply_len)
{
    rpc_ctx *c = arg;
    raft *rf = c->rf;
    int peer = c->peer;
    pthread_mutex_lock(&rf->mu);
    if (rf->dead)
        goto out;
    if (c->seq == rf->send_seq[peer])
        rf->in_flight[peer] = false; /* the latest call is over: the next may go */
    if (status != LABRPC_OK) {
        call_failed(rf, c);
        goto out;
    }

    codec_dec d;
    codec_dec_init(&d, reply, reply_len);
    int term = codec_get_i32(&d);
    bool success = codec_get_bool(&d);
    int xterm = codec_get_i32(&d);
    int xindex = codec_get_i32(&d);
    int xlen = codec_get_i32(&d);
    if (codec_dec_finish(&d) != CODEC_OK)
        goto out;

    if (term > rf->current_term) {
        adopt_term(rf, term); /* §5.1: someone has a newer term: step down */
        persist(rf);
        goto out;
    }
    if (rf->role != LEADER || rf->current_term != c->term)
        goto out; /* a reply from an older reign of ours */
    rf->last_ack_ms[peer] = now_ms();

    if (success) {
        int matched = c->prev_index + c->n_entries;
        if (matched > rf->match_index[peer])
            rf->match_index[peer] = matched;
        if (rf->next_index[peer] < rf->match_index[peer] + 1)
            rf->next_index[peer] = rf->match_index[peer] + 1;
        leader_advance_commit(rf);
    } else {
        /* Fast backup. If the follower's log is too short, resume at its
         * end. If it has a conflicting term we also hold, resume after our
         * last entry of that term; if we don't hold it, skip the follower's
         * whole run of that term. */
        int next;
        if (xterm == -1) {
            next = xlen;
        } else {
            int ours = -1;
            int from = c->prev_index < last_index(rf) ? c->prev_index : last_index(rf);
            for (int i = from; i > rf->log_start; i--) {
                if (term_at(rf, i) == xterm) {
                    ours = i;
                    break;
                }
                if (term_at(rf, i) < xterm)
                    break;
            }
            next = ours != -1 ? ours + 1 : xindex;
        }
        /* Never past our end, never at or below what is known to match
         * (a delayed rejection must not undo a later success). */
        if (next > last_index(rf) + 1)
            next = last_index(rf) + 1;
        if (next <= rf->match_index[peer])
            next = rf->match_index[peer] + 1;
        if (next < 1)
            next = 1;
        rf->next_index[peer] = next;
    }
    /* Send the next batch (or the retry), if there is one. */
    leader_send(rf, peer, false);
out:
    pthread_mutex_unlock(&rf->mu);
    free(c);
}

/* ------------------------------------------------------------------ */
/* InstallSnapshot (§7)                                                */
/* ------------------------------------------------------------------ */

static int handle_install_snapshot(void *ctx, const uint8_t *args, size_t args_len, codec_enc *reply)
{
    raft *rf = ctx;
    codec_dec d;
    codec_dec_init(&d, args, args_len);
    int term = codec_get_i32(&d);
    int leader = codec_get_i32(&d);
    int snap_index = codec_get_i32(&d);
    int snap_term = codec_get_i32(&d);
    size_t data_len;
    const uint8_t *data = codec_get_bytes(&d, MAX_SNAPSHOT_BYTES, &data_len);
    if (codec_dec_finish(&d) != CODEC_OK || term < 0 || leader < 0 || leader >= rf->npeers ||
        snap_index < 0 || snap_term < 0)
        return -1;

    pthread_mutex_lock(&rf->mu);
    bool must_persist = false;
    int status = 0;
    if (term < rf->current_term)
        goto reply;
    if (term > rf->current_term) {
        adopt_term(rf, term);
        must_persist = true;
    }
    follow_leader(rf);

    /* A snapshot that adds nothing to what we have committed: ignore it
     * (applying it would take the service backwards). */
    if (snap_index <= rf->commit_index)
        goto reply;

    uint8_t *copy = malloc(data_len ? data_len : 1);
    if (copy == NULL) {
        status = -1;
        goto reply;
    }
    if (data_len)
        memcpy(copy, data, data_len);
    /* §7: keep the entries after the snapshot if our log agrees with it at
     * its last index; otherwise the whole log is superseded. */
    log_compact(rf, snap_index, snap_term);
    free(rf->snapshot);
    rf->snapshot = copy;
    rf->snapshot_len = data_len;
    rf->commit_index = snap_index;
    /* The applier hands it to the service next, in its place in the order:
     * after the commands already delivered, before any later ones. */
    rf->snapshot_to_apply = true;
    pthread_cond_signal(&rf->apply_cond);
    must_persist = true;

reply:
    if (must_persist && !persist(rf))
        status = -1;
    int reply_term = rf->current_term;
    pthread_mutex_unlock(&rf->mu);
    if (status != 0)
        return status;
    codec_put_i32(reply, reply_term);
    return 0;
}

static void on_install_snapshot_reply(void *arg, int status, const uint8_t *reply, size_t reply_len)
{
    rpc_ctx *c = arg;
    raft *rf = c->rf;
    int peer = c->peer;
    pthread_mutex_lock(&rf->mu);
    if (rf->dead)
        goto out;
    if (c->seq == rf->send_seq[peer])
        rf->in_flight[peer] = false;
    if (status != LABRPC_OK) {
        call_failed(rf, c);
        goto out;
    }

    codec_dec d;
    codec_dec_init(&d, reply, reply_len);
    int term = codec_get_i32(&d);
    if (codec_dec_finish(&d) != CODEC_OK)
        goto out;
    if (term > rf->current_term) {
        adopt_term(rf, term);
        persist(rf);
        goto out;
    }
    if (rf->role != LEADER || rf->current_term != c->term)
        goto out;
    rf->last_ack_ms[peer] = now_ms();

    /* The follower now holds everything up to the snapshot's last index. */
    if (c->snap_index > rf->match_index[peer])
        rf->match_index[peer] = c->snap_index;
    if (rf->next_index[peer] < rf->match_index[peer] + 1)
        rf->next_index[peer] = rf->match_index[peer] + 1;
    leader_advance_commit(rf);
    leader_send(rf, peer, false); /* and now the entries after it */
out:
    pthread_mutex_unlock(&rf->mu);
    free(c);
}

/* ------------------------------------------------------------------ */
/* The leader's sending rule                                           */
/* ------------------------------------------------------------------ */

/* Sends peer what it is missing: an InstallSnapshot if the entries it needs
 * are already in our snapshot (§7), else an AppendEntries carrying every
 * entry from nextIndex on (empty: a heartbeat, §5.2). Called with rf->mu held.
 *
 * heartbeat == true (from the ticker): send regardless, every heartbeat_ms.
 * Otherwise (new entries, a reply, a commit): send only if the peer lacks
 * entries or our latest commitIndex, and no call to it is in flight, unless
 * that call is older than 2 * retry_ms: a reply takes a few ms (about 50 at
 * most on the unreliable network), so it is presumably stuck on a peer that
 * was cut off, and one that is back should not wait for the heartbeat. This
 * batches concurrent raft_start calls and sends each entry about once. */
static void leader_send(raft *rf, int peer, bool heartbeat)
{
    int64_t now = now_ms();
    if (!heartbeat) {
        bool busy = rf->in_flight[peer] && now - rf->last_sent_ms[peer] < 2 * rf->tune.retry_ms;
        bool lacks_entries = rf->next_index[peer] <= last_index(rf);
        bool lacks_commit = rf->commit_sent[peer] < rf->commit_index;
        if (busy || (!lacks_entries && !lacks_commit))
            return;
    }
    rf->last_sent_ms[peer] = now; /* even if the send fails: retry at the next heartbeat */

    rpc_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->rf = rf;
    c->peer = peer;
    c->term = rf->current_term;
    c->seq = ++rf->send_seq[peer];

    codec_enc e;
    codec_enc_init(&e);
    const char *method;
    labrpc_done_fn done;
    codec_put_i32(&e, rf->current_term);
    codec_put_i32(&e, rf->me);
    if (rf->next_index[peer] <= rf->log_start) {
        method = "Raft.InstallSnapshot";
        done = on_install_snapshot_reply;
        c->snap_index = rf->log_start;
        codec_put_i32(&e, c->snap_index);
        codec_put_i32(&e, rf->log[0].term); /* lastIncludedTerm */
        codec_put_bytes(&e, rf->snapshot, rf->snapshot_len);
    } else {
        method = "Raft.AppendEntries";
        done = on_append_entries_reply;
        c->prev_index = rf->next_index[peer] - 1;
        c->n_entries = last_index(rf) - c->prev_index;
        codec_put_i32(&e, c->prev_index);
        codec_put_i32(&e, term_at(rf, c->prev_index));
        codec_put_i32(&e, rf->commit_index);
        codec_put_list(&e, (uint32_t)c->n_entries);
        for (int i = c->prev_index + 1; i <= last_index(rf); i++) {
            const log_entry *entry = &rf->log[i - rf->log_start];
            codec_put_i32(&e, entry->term);
            codec_put_bytes(&e, entry->command, entry->command_len);
        }
    }
    size_t len;
    uint8_t *args = codec_enc_take(&e, &len);
    if (args == NULL) {
        free(c);
        return;
    }
    if (labrpc_go(rf->peers[peer], method, args, len, done, c) == LABRPC_OK) {
        rf->in_flight[peer] = true;
        if (done == on_append_entries_reply)
            rf->commit_sent[peer] = rf->commit_index;
    } else {
        free(c);
    }
    free(args); /* labrpc copied it */
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

/* The last time a leader heard from a majority (itself included): when the
 * (majority-1)-th most recent follower answered. */
static int64_t majority_heard_ms(const raft *rf)
{
    int need = majority(rf) - 1; /* followers besides ourselves */
    if (need == 0)
        return INT64_MAX / 2; /* a cluster of one: always */
    int64_t best = 0;
    for (int p = 0; p < rf->npeers; p++) {
        if (p == rf->me)
            continue;
        int newer = 0; /* followers heard from at least as recently as p */
        for (int q = 0; q < rf->npeers; q++)
            if (q != rf->me && rf->last_ack_ms[q] >= rf->last_ack_ms[p])
                newer++;
        if (newer >= need && rf->last_ack_ms[p] > best)
            best = rf->last_ack_ms[p];
    }
    return best;
}

/* Check quorum (thesis §6.2), for a leader: after a minimum election
 * timeout without hearing from a majority, the others may have elected a
 * new leader, so we decline new commands (raft_start) until a majority
 * answers again; after a maximum one we step down. Silence counts from the
 * later of the last time a majority answered and the last time the ticker
 * woke late: a late wake-up means this whole process was paused (valgrind,
 * a loaded machine), and replies that arrived meanwhile may still be
 * waiting for their threads to run. For the same reason only the ticker
 * judges: raft_start may be the first thread to run after such a pause.
 * Returns when to judge again. With rf->mu held. */
static int64_t check_quorum(raft *rf, int64_t now, bool woke_late)
{
    if (woke_late)
        rf->resumed_ms = now;
    int64_t heard = majority_heard_ms(rf);
    int64_t since = heard > rf->resumed_ms ? heard : rf->resumed_ms;
    rf->declining = now - since >= rf->tune.election_min_ms;
    rf->declined_heard = heard;
    if (now - since > rf->tune.election_max_ms) {
        rf->role = FOLLOWER; /* same term: we may not vote again in it */
        raft_note(rf->me, "steps down: no majority heard from");
        rf->declining = false;
        reset_election_timer(rf);
        return INT64_MAX;
    }
    return since + (rf->declining ? rf->tune.election_max_ms + 1 : rf->tune.election_min_ms);
}

/* Starts elections when the election timer runs out (§5.2) and, as leader,
 * sends heartbeats to each follower it has not sent anything to for
 * heartbeat_ms (retry_ms after a failed call), and checks quorum. Sleeps on
 * a timed condition wait in between. */
static void *ticker_main(void *arg)
{
    raft *rf = arg;
    pthread_mutex_lock(&rf->mu);
    int64_t wake = now_ms(); /* when the last wait was due to end */
    while (!rf->dead) {
        int64_t now = now_ms();
        bool woke_late = now - wake > rf->tune.retry_ms;
        int64_t judge = rf->role == LEADER && rf->tune.check_quorum ? check_quorum(rf, now, woke_late)
                                                                     : INT64_MAX;
        if (rf->role == LEADER) {
            wake = now + rf->tune.heartbeat_ms;
            if (judge < wake)
                wake = judge;
            for (int p = 0; p < rf->npeers; p++) {
                if (p == rf->me)
                    continue;
                if (now - rf->last_sent_ms[p] >= rf->tune.heartbeat_ms)
                    leader_send(rf, p, true);
                if (rf->last_sent_ms[p] + rf->tune.heartbeat_ms < wake)
                    wake = rf->last_sent_ms[p] + rf->tune.heartbeat_ms;
            }
        } else {
            if (now >= rf->election_deadline_ms) {
                if (rf->tune.pre_vote)
                    start_pre_vote(rf);
                else
                    start_election(rf);
            }
            wake = rf->role == LEADER ? now : rf->election_deadline_ms;
        }
        struct timespec until = ms_to_timespec(wake);
        pthread_cond_timedwait(&rf->ticker_cond, &rf->mu, &until);
    }
    pthread_mutex_unlock(&rf->mu);
    return NULL;
}

/* Out of memory in the applier: wait a little (without the lock) and try
 * again, rather than skip an index and break the order. */
static void back_off_unlocked(raft *rf)
{
    pthread_mutex_unlock(&rf->mu);
    usleep(10 * 1000);
    pthread_mutex_lock(&rf->mu);
}

/* Delivers committed commands to the service in index order, and snapshots
 * from InstallSnapshot in their place (Figure 2: "if commitIndex >
 * lastApplied: increment lastApplied, apply log[lastApplied]"). The apply
 * call is made without rf->mu: the service may call raft_snapshot or
 * raft_get_state from inside it. */
static void *applier_main(void *arg)
{
    raft *rf = arg;
    pthread_mutex_lock(&rf->mu);
    for (;;) {
        while (!rf->dead && !rf->snapshot_to_apply && rf->last_applied >= rf->commit_index)
            pthread_cond_wait(&rf->apply_cond, &rf->mu);
        if (rf->dead)
            break;

        raft_apply_msg msg;
        memset(&msg, 0, sizeof msg);
        void *copy = NULL;
        size_t len;
        if (rf->snapshot_to_apply) {
            len = rf->snapshot_len;
            /* A copy: once we unlock, a newer snapshot may replace this one. */
            if ((copy = malloc(len ? len : 1)) == NULL) {
                back_off_unlocked(rf);
                continue;
            }
            if (len)
                memcpy(copy, rf->snapshot, len);
            rf->snapshot_to_apply = false;
            rf->last_applied = rf->log_start; /* the snapshot stands for all up to here */
            msg.snapshot_valid = true;
            msg.snapshot = copy;
            msg.snapshot_len = len;
            msg.snapshot_index = rf->log_start;
            msg.snapshot_term = rf->log[0].term;
        } else {
            int index = rf->last_applied + 1;
            if (index <= rf->log_start) { /* covered by a snapshot; cannot happen */
                rf->last_applied = rf->log_start;
                continue;
            }
            const log_entry *entry = &rf->log[index - rf->log_start];
            len = entry->command_len;
            /* A copy: once we unlock, raft_snapshot may free the entry. */
            if ((copy = malloc(len ? len : 1)) == NULL) {
                back_off_unlocked(rf);
                continue;
            }
            if (len)
                memcpy(copy, entry->command, len);
            rf->last_applied = index;
            msg.command_valid = true;
            msg.command = copy;
            msg.command_len = len;
            msg.command_index = index;
        }
        pthread_mutex_unlock(&rf->mu);
        rf->apply(rf->apply_ctx, &msg);
        free(copy);
        pthread_mutex_lock(&rf->mu);
    }
    pthread_mutex_unlock(&rf->mu);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The API (raft.h)                                                    */
/* ------------------------------------------------------------------ */

/* Frees everything; no thread of ours and no callback may be running. */
static void raft_free(raft *rf)
{
    for (int i = 0; i < rf->log_len; i++)
        free(rf->log[i].command);
    free(rf->log);
    free(rf->snapshot);
    codec_enc_free(&rf->state);
    free(rf->peers);
    free(rf->next_index);
    free(rf->match_index);
    free(rf->in_flight);
    free(rf->send_seq);
    free(rf->last_sent_ms);
    free(rf->last_ack_ms);
    free(rf->commit_sent);
    free(rf);
}

raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps,
                raft_apply_fn apply, void *apply_ctx)
{
    if (peers == NULL || npeers < 1 || me < 0 || me >= npeers || ps == NULL || apply == NULL)
        return NULL;
    raft *rf = calloc(1, sizeof *rf);
    if (rf == NULL)
        return NULL;
    rf->npeers = npeers;
    rf->me = me;
    rf->tune = tuning;
    rf->ps = ps;
    rf->apply = apply;
    rf->apply_ctx = apply_ctx;
    rf->voted_for = -1;
    rf->role = FOLLOWER;

    size_t n = (size_t)npeers;
    rf->peers = malloc(n * sizeof *rf->peers);
    rf->next_index = calloc(n, sizeof *rf->next_index);
    rf->match_index = calloc(n, sizeof *rf->match_index);
    rf->in_flight = calloc(n, sizeof *rf->in_flight);
    rf->send_seq = calloc(n, sizeof *rf->send_seq);
    rf->last_sent_ms = calloc(n, sizeof *rf->last_sent_ms);
    rf->last_ack_ms = calloc(n, sizeof *rf->last_ack_ms);
    rf->commit_sent = calloc(n, sizeof *rf->commit_sent);
    if (rf->peers == NULL || rf->next_index == NULL || rf->match_index == NULL ||
        rf->in_flight == NULL || rf->send_seq == NULL || rf->last_sent_ms == NULL ||
        rf->last_ack_ms == NULL || rf->commit_sent == NULL || !log_reserve(rf, 16)) {
        raft_free(rf);
        return NULL;
    }
    memcpy(rf->peers, peers, n * sizeof *rf->peers);
    /* The dummy entry at index 0, term 0 (replaced by restore if a snapshot
     * was taken). */
    rf->log[0].term = 0;
    rf->log[0].command = NULL;
    rf->log[0].command_len = 0;
    rf->log_len = 1;
    state_rebuild(rf);

    if (!restore(rf)) {
        raft_free(rf);
        return NULL;
    }

    /* A different random sequence per peer and per run. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rf->rand_seed = (unsigned)ts.tv_nsec ^ (unsigned)ts.tv_sec ^ ((unsigned)me * 2654435761u);
    reset_election_timer(rf);

    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) {
        raft_free(rf);
        return NULL;
    }
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    bool ok = pthread_mutex_init(&rf->mu, NULL) == 0;
    if (ok && pthread_cond_init(&rf->ticker_cond, &attr) != 0) {
        pthread_mutex_destroy(&rf->mu);
        ok = false;
    }
    pthread_condattr_destroy(&attr);
    if (ok && pthread_cond_init(&rf->apply_cond, NULL) != 0) {
        pthread_cond_destroy(&rf->ticker_cond);
        pthread_mutex_destroy(&rf->mu);
        ok = false;
    }
    if (!ok) {
        raft_free(rf);
        return NULL;
    }

    bool ticker_started = pthread_create(&rf->ticker, NULL, ticker_main, rf) == 0;
    bool applier_started = ticker_started && pthread_create(&rf->applier, NULL, applier_main, rf) == 0;
    if (!applier_started) {
        if (ticker_started) {
            pthread_mutex_lock(&rf->mu);
            rf->dead = true;
            pthread_cond_broadcast(&rf->ticker_cond);
            pthread_mutex_unlock(&rf->mu);
            pthread_join(rf->ticker, NULL);
            /* The ticker may have started an election: wait for its calls. */
            for (int p = 0; p < npeers; p++)
                if (p != me)
                    labrpc_end_cancel(rf->peers[p]);
        }
        pthread_cond_destroy(&rf->apply_cond);
        pthread_cond_destroy(&rf->ticker_cond);
        pthread_mutex_destroy(&rf->mu);
        raft_free(rf);
        return NULL;
    }
    return rf;
}

int raft_register(raft *rf, labrpc_service *svc)
{
    if (labrpc_service_add(svc, "RequestVote", handle_request_vote) != 0 ||
        labrpc_service_add(svc, "AppendEntries", handle_append_entries) != 0 ||
        labrpc_service_add(svc, "InstallSnapshot", handle_install_snapshot) != 0)
        return -1;
    (void)rf; /* the service already has rf as its handler context */
    return 0;
}

bool raft_start(raft *rf, const void *command, size_t len, int *index, int *term)
{
    pthread_mutex_lock(&rf->mu);
    bool declining = rf->declining && majority_heard_ms(rf) == rf->declined_heard; /* check_quorum */
    bool is_leader = rf->role == LEADER && !rf->dead && !declining;
    if (is_leader) {
        /* §5.3: append to our own log, make it durable, then replicate. */
        if (!log_append(rf, rf->current_term, command, len)) {
            is_leader = false; /* out of memory: we could not take it */
        } else if (!persist(rf)) {
            log_truncate_from(rf, last_index(rf));
            is_leader = false;
        } else {
            for (int p = 0; p < rf->npeers; p++)
                if (p != rf->me)
                    leader_send(rf, p, false); /* at once, batched with what's pending */
            leader_advance_commit(rf); /* a cluster of one commits alone */
        }
    }
    *index = last_index(rf) + (is_leader ? 0 : 1);
    *term = rf->current_term;
    pthread_mutex_unlock(&rf->mu);
    return is_leader;
}

void raft_get_state(raft *rf, int *term, bool *is_leader)
{
    pthread_mutex_lock(&rf->mu);
    *term = rf->current_term;
    *is_leader = rf->role == LEADER;
    pthread_mutex_unlock(&rf->mu);
}

void raft_snapshot(raft *rf, int index, const void *snapshot, size_t len)
{
    pthread_mutex_lock(&rf->mu);
    /* Only what we have applied may be compacted, and only forwards. */
    if (index <= rf->log_start || index > rf->last_applied || index > last_index(rf)) {
        pthread_mutex_unlock(&rf->mu);
        return;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) { /* out of memory: keep the log; the next snapshot will do */
        pthread_mutex_unlock(&rf->mu);
        return;
    }
    if (len)
        memcpy(copy, snapshot, len);
    log_compact(rf, index, term_at(rf, index));
    free(rf->snapshot);
    rf->snapshot = copy;
    rf->snapshot_len = len;
    persist(rf);
    pthread_mutex_unlock(&rf->mu);
}

void raft_kill(raft *rf)
{
    pthread_mutex_lock(&rf->mu);
    rf->dead = true;
    pthread_cond_broadcast(&rf->ticker_cond);
    pthread_cond_broadcast(&rf->apply_cond);
    pthread_mutex_unlock(&rf->mu);

    pthread_join(rf->ticker, NULL);
    pthread_join(rf->applier, NULL);

    /* Without our lock: the callbacks this waits for take it (and, seeing
     * rf->dead, only free their context). */
    for (int p = 0; p < rf->npeers; p++)
        if (p != rf->me)
            labrpc_end_cancel(rf->peers[p]);

    pthread_cond_destroy(&rf->apply_cond);
    pthread_cond_destroy(&rf->ticker_cond);
    pthread_mutex_destroy(&rf->mu);
    raft_free(rf);
}
