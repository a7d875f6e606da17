/* raft.c: a second, independently written Raft for the kit's self-test
 * (stages 3A-3D). It exists to show that the tests depend on Raft's
 * guarantees, not on the reference solution's choices, so it is built
 * differently on purpose:
 *
 *  - every outgoing RPC (RequestVote, AppendEntries, InstallSnapshot) is a
 *    blocking labrpc_call made on a thread of its own, so several
 *    AppendEntries may be in flight to one follower at once. Each such
 *    thread is a "job" on a list; the ticker joins finished jobs, and
 *    raft_kill cancels the ends (which ends every blocked call) and joins
 *    the rest. In-flight jobs per peer are capped, which bounds threads;
 *  - a plain Figure 2 / Figure 13 Raft: no PreVote, no check quorum, no
 *    resends beyond the heartbeat;
 *  - log backup without conflict terms: the only hint a rejection carries
 *    is the follower's log length; past that, next_index goes back one
 *    entry on the first rejection, then twice as far on each further one
 *    (one entry a round trip is too slow for Figure8Unreliable3C);
 *  - heartbeats every 110 ms, election timeouts drawn in 350-600 ms.
 *
 * One mutex (mu) guards all state. Replies are used only if the term they
 * were sent in is still the current term and the peer still holds the role
 * that sent them; match_index comes from what the request carried.
 */
#include "raft.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "labrpc.h"
#include "persister.h"

/* ---- tuning ---------------------------------------------------------------- */

#define HEARTBEAT_MS 110
#define ELECTION_MIN_MS 350
#define ELECTION_SPAN_MS 250
/* Calls in flight to one peer at most (each is a thread). A call to a
 * cut-off peer fails only after up to 7 s: heartbeats alone keep about 30
 * in flight to it, and the cap must stay above that, or the peer, once
 * back, waits for a free slot while its election timer runs out. */
#define MAX_APPEND_INFLIGHT 64
#define MAX_VOTE_INFLIGHT 8
/* raft_start sends at once only to a peer with fewer calls in flight than
 * this (one that answers); the others get the entry with the heartbeat. */
#define START_SEND_BELOW 2
#define JOB_STACK_BYTES (256 * 1024)
/* Decoding limits. */
#define MAX_ENTRIES (1u << 22)
#define MAX_BYTES ((size_t)1 << 26)

enum role { FOLLOWER, CANDIDATE, LEADER };
enum kind { JOB_VOTE, JOB_APPEND, JOB_SNAPSHOT };

typedef struct entry {
    int32_t term;
    uint8_t *cmd;
    size_t len;
} entry;

/* One outgoing RPC, on its own thread. */
typedef struct job {
    struct job *next;
    struct raft *rf;
    pthread_t tid;
    int peer;
    int kind;
    int32_t term;          /* current_term when it was sent */
    int32_t prev_index;    /* AppendEntries: prev_log_index */
    int32_t count;         /* AppendEntries: entries carried */
    int32_t snap_index;    /* InstallSnapshot: last_included_index */
    uint8_t *args;
    size_t args_len;
    bool finished;         /* under mu: the thread is about to return */
} job;

struct raft {
    pthread_mutex_t mu;
    pthread_cond_t tick_cv;
    pthread_cond_t apply_cv;
    labrpc_end **peers;
    int npeers;
    int me;
    persister *ps;
    raft_apply_fn apply;
    void *apply_ctx;
    bool dead;
    unsigned seed;

    /* persistent */
    int32_t term;
    int32_t voted_for;
    entry *log;            /* log[0]: the sentinel at base (term = base term) */
    int log_len;           /* entries in log[], sentinel included */
    int log_cap;
    int32_t base;          /* last index the snapshot covers */
    uint8_t *snap;
    size_t snap_len;
    codec_enc penc;        /* persist()'s encoder, reused */

    /* volatile */
    int role;
    int32_t commit;
    int32_t applied;
    bool snap_pending;     /* a received snapshot waits for the applier */
    int64_t heard_ms;      /* election timer start */
    int64_t timeout_ms;
    int64_t next_beat_ms;
    int votes;
    bool *voted_me;

    /* leader */
    int32_t *next_idx;
    int32_t *match_idx;
    int32_t *back_step;    /* how far the next rejection backs up */

    /* jobs */
    job *queued;           /* to start, by flush() */
    int creating;          /* threads inside flush() creating jobs */
    job *jobs;             /* started, to join */
    int *append_inflight;
    int *vote_inflight;

    pthread_t ticker, applier;
    bool ticker_on, applier_on;
};

/* ---- time and randomness ----------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reset_timer(raft *rf)
{
    rf->heard_ms = now_ms();
    rf->timeout_ms = ELECTION_MIN_MS + rand_r(&rf->seed) % ELECTION_SPAN_MS;
}

/* ---- the log --------------------------------------------------------------- */

static int32_t last_index(const raft *rf)
{
    return rf->base + rf->log_len - 1;
}

static int32_t term_at(const raft *rf, int32_t i)
{
    return rf->log[i - rf->base].term;
}

static int32_t last_term(const raft *rf)
{
    return rf->log[rf->log_len - 1].term;
}

static bool reserve(raft *rf, int n)
{
    if (n <= rf->log_cap)
        return true;
    int cap = rf->log_cap ? rf->log_cap : 16;
    while (cap < n)
        cap *= 2;
    entry *p = realloc(rf->log, (size_t)cap * sizeof *p);
    if (!p)
        return false;
    rf->log = p;
    rf->log_cap = cap;
    return true;
}

/* Drops entries at index >= from. */
static void cut_from(raft *rf, int32_t from)
{
    int pos = from - rf->base;
    for (int k = pos; k < rf->log_len; k++)
        free(rf->log[k].cmd);
    rf->log_len = pos;
}

/* Makes index `upto` (term t) the new base, dropping everything before it
 * and keeping what follows (if keep), else the whole log. */
static void rebase(raft *rf, int32_t upto, int32_t t, bool keep)
{
    if (keep) {
        int pos = upto - rf->base;
        for (int k = 0; k <= pos; k++)
            free(rf->log[k].cmd);
        memmove(rf->log, rf->log + pos, (size_t)(rf->log_len - pos) * sizeof *rf->log);
        rf->log_len -= pos;
    } else {
        for (int k = 0; k < rf->log_len; k++)
            free(rf->log[k].cmd);
        rf->log_len = 1;
    }
    rf->log[0].term = t;
    rf->log[0].cmd = NULL;
    rf->log[0].len = 0;
    rf->base = upto;
}

/* ---- persistence ----------------------------------------------------------- */

/* Saves term, vote and log with the snapshot. The encoder is kept and
 * reused (its buffer only grows), since the whole log is written each time. */
static bool persist(raft *rf)
{
    codec_enc *e = &rf->penc;
    codec_enc_reset(e);
    codec_put_i32(e, rf->term);
    codec_put_i32(e, rf->voted_for);
    codec_put_i32(e, rf->base);
    codec_put_i32(e, rf->log[0].term);
    codec_put_list(e, (uint32_t)(rf->log_len - 1));
    for (int k = 1; k < rf->log_len; k++) {
        codec_put_i32(e, rf->log[k].term);
        codec_put_bytes(e, rf->log[k].cmd, rf->log[k].len);
    }
    bool ok = codec_enc_err(e) == CODEC_OK &&
              persister_save(rf->ps, e->buf, e->len, rf->snap, rf->snap_len) == 0;
    if (!ok)
        codec_enc_free(e); /* start afresh next time */
    return ok;
}

/* Loads what an earlier instance saved. false only if out of memory. */
static bool restore(raft *rf)
{
    size_t slen = 0;
    uint8_t *snap = persister_read_snapshot(rf->ps, &slen);
    if (!snap)
        return false;
    size_t len = 0;
    uint8_t *data = persister_read_state(rf->ps, &len);
    if (!data) {
        free(snap);
        return false;
    }
    bool ok = true;
    if (len > 0) {
        codec_dec d;
        codec_dec_init(&d, data, len);
        int32_t term = codec_get_i32(&d);
        int32_t voted = codec_get_i32(&d);
        int32_t base = codec_get_i32(&d);
        int32_t base_term = codec_get_i32(&d);
        uint32_t n = codec_get_list(&d, MAX_ENTRIES);
        if (codec_dec_err(&d) == CODEC_OK && base >= 0 && reserve(rf, (int)n + 1)) {
            int got = 1;
            for (uint32_t k = 0; k < n && codec_dec_err(&d) == CODEC_OK; k++) {
                entry en;
                en.term = codec_get_i32(&d);
                en.cmd = codec_get_bytes_dup(&d, MAX_BYTES, &en.len);
                if (!en.cmd)
                    break;
                rf->log[got++] = en;
            }
            if (codec_dec_finish(&d) == CODEC_OK && got == (int)n + 1) {
                rf->term = term;
                rf->voted_for = voted;
                rf->base = base;
                rf->log[0].term = base_term;
                rf->log_len = got;
            } else {
                for (int k = 1; k < got; k++)
                    free(rf->log[k].cmd);
                if (codec_dec_err(&d) == CODEC_ENOMEM)
                    ok = false;
            }
        } else if (codec_dec_err(&d) == CODEC_OK && base >= 0) {
            ok = false; /* reserve failed */
        }
    }
    free(data);
    if (ok && rf->base > 0) {
        rf->snap = snap;
        rf->snap_len = slen;
    } else {
        free(snap);
    }
    rf->commit = rf->base;
    rf->applied = rf->base;
    return ok;
}

/* ---- roles ----------------------------------------------------------------- */

/* The term rule: a higher term seen anywhere makes us its follower. */
static bool see_term(raft *rf, int32_t t)
{
    if (t > rf->term) {
        rf->term = t;
        rf->voted_for = -1;
        rf->role = FOLLOWER;
        return persist(rf);
    }
    return true;
}

/* ---- jobs: one thread per outgoing RPC ------------------------------------- */

static void *job_main(void *arg);

/* Room for one more call of this kind to peer? (mu held) */
static bool can_launch(const raft *rf, int peer, int kind)
{
    if (kind == JOB_VOTE)
        return !rf->dead && rf->vote_inflight[peer] < MAX_VOTE_INFLIGHT;
    return !rf->dead && rf->append_inflight[peer] < MAX_APPEND_INFLIGHT;
}

static int *inflight_of(raft *rf, const job *j)
{
    return j->kind == JOB_VOTE ? &rf->vote_inflight[j->peer] : &rf->append_inflight[j->peer];
}

/* Queues job j (args already encoded) to be started by flush(). Called with
 * mu held. If there is no room, j and its args are freed. */
static void launch(raft *rf, job *j)
{
    if (!can_launch(rf, j->peer, j->kind)) {
        free(j->args);
        free(j);
        return;
    }
    (*inflight_of(rf, j))++;
    j->next = rf->queued;
    rf->queued = j;
}

/* Called with mu held; returns with it released. Starts a thread for each
 * queued job, outside mu (creating a thread can take long on a loaded
 * machine, and nothing should wait for it). Started jobs go on rf->jobs,
 * where the ticker and raft_kill find them to join. */
static void flush(raft *rf)
{
    job *q = rf->queued;
    rf->queued = NULL;
    if (!q) {
        pthread_mutex_unlock(&rf->mu);
        return;
    }
    rf->creating++;
    pthread_mutex_unlock(&rf->mu);
    pthread_attr_t attr;
    bool attr_ok = pthread_attr_init(&attr) == 0;
    if (attr_ok)
        pthread_attr_setstacksize(&attr, JOB_STACK_BYTES);
    job *started = NULL, *failed = NULL;
    while (q) {
        job *j = q;
        q = j->next;
        if (pthread_create(&j->tid, attr_ok ? &attr : NULL, job_main, j) == 0) {
            j->next = started;
            started = j;
        } else {
            j->next = failed;
            failed = j;
        }
    }
    if (attr_ok)
        pthread_attr_destroy(&attr);
    pthread_mutex_lock(&rf->mu);
    while (started) {
        job *j = started;
        started = j->next;
        j->next = rf->jobs;
        rf->jobs = j;
    }
    for (job *j = failed; j; j = j->next)
        (*inflight_of(rf, j))--;
    if (--rf->creating == 0 && rf->dead)
        pthread_cond_broadcast(&rf->tick_cv); /* raft_kill waits for it */
    pthread_mutex_unlock(&rf->mu);
    while (failed) {
        job *j = failed;
        failed = j->next;
        free(j->args);
        free(j);
    }
}

static job *new_job(raft *rf, int peer, int kind, codec_enc *e)
{
    job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->args = codec_enc_take(e, &j->args_len);
    if (!j->args) {
        free(j);
        return NULL;
    }
    j->rf = rf;
    j->peer = peer;
    j->kind = kind;
    j->term = rf->term;
    return j;
}

/* Joins finished jobs (all of them if everything), outside mu. */
static void reap(raft *rf, bool everything)
{
    job *done = NULL;
    pthread_mutex_lock(&rf->mu);
    for (job **pp = &rf->jobs; *pp;) {
        job *j = *pp;
        if (everything || j->finished) {
            *pp = j->next;
            j->next = done;
            done = j;
        } else {
            pp = &j->next;
        }
    }
    pthread_mutex_unlock(&rf->mu);
    while (done) {
        job *j = done;
        done = j->next;
        pthread_join(j->tid, NULL);
        free(j->args);
        free(j);
    }
}

/* ---- RequestVote ----------------------------------------------------------- */

static void send_votes(raft *rf)
{
    for (int p = 0; p < rf->npeers; p++) {
        if (p == rf->me || !can_launch(rf, p, JOB_VOTE))
            continue;
        codec_enc e;
        codec_enc_init(&e);
        codec_put_i32(&e, rf->term);
        codec_put_i32(&e, rf->me);
        codec_put_i32(&e, last_index(rf));
        codec_put_i32(&e, last_term(rf));
        job *j = new_job(rf, p, JOB_VOTE, &e);
        codec_enc_free(&e);
        if (j)
            launch(rf, j);
    }
}

static void send_appends(raft *rf, int p);

static void become_leader(raft *rf)
{
    rf->role = LEADER;
    for (int p = 0; p < rf->npeers; p++) {
        rf->next_idx[p] = last_index(rf) + 1;
        rf->match_idx[p] = 0;
        rf->back_step[p] = 1;
    }
    rf->next_beat_ms = now_ms() + HEARTBEAT_MS;
    for (int p = 0; p < rf->npeers; p++)
        if (p != rf->me)
            send_appends(rf, p);
    pthread_cond_signal(&rf->tick_cv);
}

static void start_election(raft *rf)
{
    rf->term++;
    rf->voted_for = rf->me;
    rf->role = CANDIDATE;
    reset_timer(rf);
    if (!persist(rf)) {
        rf->role = FOLLOWER; /* no vote of ours unless it is on disk */
        return;
    }
    memset(rf->voted_me, 0, (size_t)rf->npeers * sizeof *rf->voted_me);
    rf->voted_me[rf->me] = true;
    rf->votes = 1;
    if (rf->votes > rf->npeers / 2)
        become_leader(rf);
    else
        send_votes(rf);
}

static int on_request_vote(void *ctx, const uint8_t *args, size_t args_len, codec_enc *reply)
{
    raft *rf = ctx;
    codec_dec d;
    codec_dec_init(&d, args, args_len);
    int32_t term = codec_get_i32(&d);
    int32_t cand = codec_get_i32(&d);
    int32_t lli = codec_get_i32(&d);
    int32_t llt = codec_get_i32(&d);
    if (codec_dec_finish(&d) != CODEC_OK)
        return -1;
    pthread_mutex_lock(&rf->mu);
    if (!see_term(rf, term)) {
        pthread_mutex_unlock(&rf->mu);
        return -1;
    }
    bool grant = false;
    if (term == rf->term && (rf->voted_for == -1 || rf->voted_for == cand) &&
        (llt > last_term(rf) || (llt == last_term(rf) && lli >= last_index(rf)))) {
        rf->voted_for = cand;
        if (!persist(rf)) {
            pthread_mutex_unlock(&rf->mu);
            return -1;
        }
        grant = true;
        reset_timer(rf);
    }
    codec_put_i32(reply, rf->term);
    codec_put_bool(reply, grant);
    pthread_mutex_unlock(&rf->mu);
    return 0;
}

static void vote_reply(raft *rf, job *j, const uint8_t *rep, size_t len)
{
    codec_dec d;
    codec_dec_init(&d, rep, len);
    int32_t term = codec_get_i32(&d);
    bool granted = codec_get_bool(&d);
    if (codec_dec_finish(&d) != CODEC_OK)
        return;
    see_term(rf, term);
    if (rf->role != CANDIDATE || rf->term != j->term || !granted || rf->voted_me[j->peer])
        return;
    rf->voted_me[j->peer] = true;
    if (++rf->votes > rf->npeers / 2)
        become_leader(rf);
}

/* ---- AppendEntries and InstallSnapshot: the sending side ------------------- */

static void send_snapshot(raft *rf, int p)
{
    codec_enc e;
    codec_enc_init(&e);
    codec_put_i32(&e, rf->term);
    codec_put_i32(&e, rf->me);
    codec_put_i32(&e, rf->base);
    codec_put_i32(&e, rf->log[0].term);
    codec_put_bytes(&e, rf->snap, rf->snap_len);
    job *j = new_job(rf, p, JOB_SNAPSHOT, &e);
    codec_enc_free(&e);
    if (!j)
        return;
    j->snap_index = rf->base;
    launch(rf, j);
}

/* One AppendEntries to p with everything from next_idx[p] on (or the
 * snapshot if those entries are gone). Called with mu held, as leader. */
static void send_appends(raft *rf, int p)
{
    if (!can_launch(rf, p, JOB_APPEND))
        return; /* enough in flight: the next heartbeat will try again */
    int32_t prev = rf->next_idx[p] - 1;
    if (prev < rf->base) {
        send_snapshot(rf, p);
        return;
    }
    int32_t last = last_index(rf);
    if (prev > last)
        prev = last;
    int32_t n = last - prev;
    codec_enc e;
    codec_enc_init(&e);
    codec_put_i32(&e, rf->term);
    codec_put_i32(&e, rf->me);
    codec_put_i32(&e, prev);
    codec_put_i32(&e, term_at(rf, prev));
    codec_put_i32(&e, rf->commit);
    codec_put_list(&e, (uint32_t)n);
    for (int32_t i = prev + 1; i <= last; i++) {
        const entry *en = &rf->log[i - rf->base];
        codec_put_i32(&e, en->term);
        codec_put_bytes(&e, en->cmd, en->len);
    }
    job *j = new_job(rf, p, JOB_APPEND, &e);
    codec_enc_free(&e);
    if (!j)
        return;
    j->prev_index = prev;
    j->count = n;
    launch(rf, j);
}

static void broadcast_appends(raft *rf, int below)
{
    for (int p = 0; p < rf->npeers; p++)
        if (p != rf->me && rf->append_inflight[p] < below)
            send_appends(rf, p);
}

/* The leader's commit rule: a majority holds N and N is of this term. */
static void advance_commit(raft *rf)
{
    for (int32_t n = last_index(rf); n > rf->commit && n > rf->base; n--) {
        if (term_at(rf, n) != rf->term)
            break; /* earlier entries are of earlier terms too */
        int have = 1;
        for (int p = 0; p < rf->npeers; p++)
            if (p != rf->me && rf->match_idx[p] >= n)
                have++;
        if (have > rf->npeers / 2) {
            rf->commit = n;
            pthread_cond_signal(&rf->apply_cv);
            break;
        }
    }
}

static void append_reply(raft *rf, job *j, const uint8_t *rep, size_t len)
{
    codec_dec d;
    codec_dec_init(&d, rep, len);
    int32_t term = codec_get_i32(&d);
    bool ok = codec_get_bool(&d);
    int32_t follower_next = codec_get_i32(&d); /* the follower's last index + 1 */
    if (codec_dec_finish(&d) != CODEC_OK)
        return;
    see_term(rf, term);
    if (rf->role != LEADER || rf->term != j->term)
        return;
    int p = j->peer;
    if (ok) {
        int32_t m = j->prev_index + j->count;
        if (m > rf->match_idx[p])
            rf->match_idx[p] = m;
        if (m + 1 > rf->next_idx[p])
            rf->next_idx[p] = m + 1;
        rf->back_step[p] = 1;
        advance_commit(rf);
        return;
    }
    /* A rejection of the latest probe (prev_index just below next_idx)
     * backs up by back_step, which doubles with each such rejection; any
     * rejection backs up to the end of the follower's log if that is
     * lower. Never below match_idx + 1. */
    int32_t next = rf->next_idx[p];
    if (j->prev_index < next)
        next = j->prev_index + 1 - rf->back_step[p];
    if (follower_next < next)
        next = follower_next;
    if (next < rf->match_idx[p] + 1)
        next = rf->match_idx[p] + 1;
    if (next < 1)
        next = 1;
    if (next < rf->next_idx[p]) {
        rf->next_idx[p] = next;
        if (rf->back_step[p] < (1 << 20))
            rf->back_step[p] *= 2;
        send_appends(rf, p);
    }
}

static void snapshot_reply(raft *rf, job *j, const uint8_t *rep, size_t len)
{
    codec_dec d;
    codec_dec_init(&d, rep, len);
    int32_t term = codec_get_i32(&d);
    if (codec_dec_finish(&d) != CODEC_OK)
        return;
    see_term(rf, term);
    if (rf->role != LEADER || rf->term != j->term)
        return;
    int p = j->peer;
    if (j->snap_index > rf->match_idx[p])
        rf->match_idx[p] = j->snap_index;
    if (j->snap_index + 1 > rf->next_idx[p])
        rf->next_idx[p] = j->snap_index + 1;
    advance_commit(rf);
}

static void *job_main(void *arg)
{
    job *j = arg;
    raft *rf = j->rf;
    static const char *const method[] = { "Raft.RequestVote", "Raft.AppendEntries",
                                          "Raft.InstallSnapshot" };
    uint8_t *rep = NULL;
    size_t len = 0;
    int st = labrpc_call(rf->peers[j->peer], method[j->kind], j->args, j->args_len, &rep, &len);
    pthread_mutex_lock(&rf->mu);
    if (st == LABRPC_OK && !rf->dead) {
        if (j->kind == JOB_VOTE)
            vote_reply(rf, j, rep, len);
        else if (j->kind == JOB_APPEND)
            append_reply(rf, j, rep, len);
        else
            snapshot_reply(rf, j, rep, len);
    }
    (*inflight_of(rf, j))--;
    j->finished = true;
    flush(rf); /* a retry, or a new leader's first heartbeats */
    free(rep);
    return NULL;
}

/* ---- AppendEntries and InstallSnapshot: the receiving side ----------------- */

static int on_append_entries(void *ctx, const uint8_t *args, size_t args_len, codec_enc *reply)
{
    raft *rf = ctx;
    codec_dec d;
    codec_dec_init(&d, args, args_len);
    int32_t term = codec_get_i32(&d);
    (void)codec_get_i32(&d); /* leader id */
    int32_t prev = codec_get_i32(&d);
    int32_t prev_term = codec_get_i32(&d);
    int32_t leader_commit = codec_get_i32(&d);
    uint32_t n = codec_get_list(&d, MAX_ENTRIES);
    if (codec_dec_err(&d) != CODEC_OK || prev < 0)
        return -1;
    entry *in = n ? calloc(n, sizeof *in) : NULL;
    if (n && !in)
        return -1;
    for (uint32_t k = 0; k < n; k++) {
        in[k].term = codec_get_i32(&d);
        in[k].cmd = (uint8_t *)codec_get_bytes(&d, MAX_BYTES, &in[k].len);
    }
    if (codec_dec_finish(&d) != CODEC_OK) {
        free(in);
        return -1;
    }

    int rc = 0;
    bool ok = false;
    pthread_mutex_lock(&rf->mu);
    if (!see_term(rf, term))
        rc = -1;
    else if (term == rf->term) {
        rf->role = FOLLOWER; /* a candidate of this term steps aside */
        reset_timer(rf);
        /* Entries at or below base are committed, and so match: skip them. */
        uint32_t skip = 0;
        if (prev < rf->base) {
            uint32_t gap = (uint32_t)(rf->base - prev);
            skip = gap < n ? gap : n;
            prev = rf->base;
            prev_term = rf->log[0].term;
        }
        if (prev <= last_index(rf) && term_at(rf, prev) == prev_term) {
            /* Find the first entry that is new or conflicts. */
            uint32_t k = skip;
            int32_t idx = prev + 1;
            while (k < n && idx <= last_index(rf) && term_at(rf, idx) == in[k].term) {
                k++;
                idx++;
            }
            bool changed = false;
            if (k < n) {
                int need = (idx - rf->base) + (int)(n - k);
                entry *copies = calloc(n - k, sizeof *copies);
                bool mem = copies && reserve(rf, need);
                for (uint32_t q = k; mem && q < n; q++) {
                    copies[q - k].term = in[q].term;
                    copies[q - k].len = in[q].len;
                    copies[q - k].cmd = malloc(in[q].len ? in[q].len : 1);
                    if (!copies[q - k].cmd)
                        mem = false;
                    else if (in[q].len)
                        memcpy(copies[q - k].cmd, in[q].cmd, in[q].len);
                }
                if (!mem) {
                    if (copies)
                        for (uint32_t q = 0; q < n - k; q++)
                            free(copies[q].cmd);
                    free(copies);
                    rc = -1;
                } else {
                    if (idx <= last_index(rf))
                        cut_from(rf, idx);
                    memcpy(rf->log + rf->log_len, copies, (n - k) * sizeof *copies);
                    rf->log_len += (int)(n - k);
                    free(copies);
                    changed = true;
                }
            }
            if (rc == 0) {
                if (changed && !persist(rf)) {
                    rc = -1;
                } else {
                    ok = true;
                    int32_t upto = prev + (int32_t)(n - skip);
                    if (leader_commit < upto)
                        upto = leader_commit;
                    if (upto > rf->commit) {
                        rf->commit = upto;
                        pthread_cond_signal(&rf->apply_cv);
                    }
                }
            }
        }
    }
    if (rc == 0) {
        codec_put_i32(reply, rf->term);
        codec_put_bool(reply, ok);
        codec_put_i32(reply, last_index(rf) + 1);
    }
    pthread_mutex_unlock(&rf->mu);
    free(in);
    return rc;
}

static int on_install_snapshot(void *ctx, const uint8_t *args, size_t args_len, codec_enc *reply)
{
    raft *rf = ctx;
    codec_dec d;
    codec_dec_init(&d, args, args_len);
    int32_t term = codec_get_i32(&d);
    (void)codec_get_i32(&d); /* leader id */
    int32_t lii = codec_get_i32(&d);
    int32_t lit = codec_get_i32(&d);
    size_t slen = 0;
    const uint8_t *data = codec_get_bytes(&d, MAX_BYTES, &slen);
    if (codec_dec_finish(&d) != CODEC_OK || lii < 0)
        return -1;
    pthread_mutex_lock(&rf->mu);
    int rc = see_term(rf, term) ? 0 : -1;
    if (rc == 0 && term == rf->term) {
        rf->role = FOLLOWER;
        reset_timer(rf);
        if (lii > rf->commit && lii > rf->applied) {
            uint8_t *copy = malloc(slen ? slen : 1);
            if (!copy) {
                rc = -1;
            } else {
                memcpy(copy, data, slen);
                bool keep = lii <= last_index(rf) && term_at(rf, lii) == lit;
                rebase(rf, lii, lit, keep);
                free(rf->snap);
                rf->snap = copy;
                rf->snap_len = slen;
                rf->commit = lii;
                rf->snap_pending = true;
                if (!persist(rf))
                    rc = -1;
                pthread_cond_signal(&rf->apply_cv);
            }
        }
    }
    if (rc == 0)
        codec_put_i32(reply, rf->term);
    pthread_mutex_unlock(&rf->mu);
    return rc;
}

/* ---- threads of the peer --------------------------------------------------- */

static void wait_ms(raft *rf, pthread_cond_t *cv, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, &rf->mu, &ts);
}

static void *ticker_main(void *arg)
{
    raft *rf = arg;
    for (;;) {
        reap(rf, false);
        pthread_mutex_lock(&rf->mu);
        if (rf->dead) {
            pthread_mutex_unlock(&rf->mu);
            break;
        }
        int64_t now = now_ms();
        if (rf->role == LEADER) {
            if (now >= rf->next_beat_ms) {
                rf->next_beat_ms = now + HEARTBEAT_MS;
                broadcast_appends(rf, MAX_APPEND_INFLIGHT);
            }
        } else if (now - rf->heard_ms >= rf->timeout_ms) {
            start_election(rf);
        }
        flush(rf);
        pthread_mutex_lock(&rf->mu);
        /* Sleep until the next heartbeat or election deadline (become_leader
         * and raft_kill wake us sooner). */
        int64_t due = rf->role == LEADER ? rf->next_beat_ms : rf->heard_ms + rf->timeout_ms;
        int64_t ms = due - now_ms();
        if (ms < 1)
            ms = 1;
        if (!rf->dead)
            wait_ms(rf, &rf->tick_cv, ms);
        pthread_mutex_unlock(&rf->mu);
    }
    return NULL;
}

static void *applier_main(void *arg)
{
    raft *rf = arg;
    pthread_mutex_lock(&rf->mu);
    for (;;) {
        while (!rf->dead && !rf->snap_pending && rf->applied >= rf->commit)
            pthread_cond_wait(&rf->apply_cv, &rf->mu);
        if (rf->dead)
            break;
        if (rf->snap_pending || rf->applied < rf->base) {
            rf->snap_pending = false;
            if (rf->base <= rf->applied)
                continue;
            raft_apply_msg m = { 0 };
            uint8_t *copy = malloc(rf->snap_len ? rf->snap_len : 1);
            if (!copy) {
                /* try again shortly */
                rf->snap_pending = true;
                wait_ms(rf, &rf->apply_cv, 10);
                continue;
            }
            memcpy(copy, rf->snap, rf->snap_len);
            m.snapshot_valid = true;
            m.snapshot = copy;
            m.snapshot_len = rf->snap_len;
            m.snapshot_index = rf->base;
            m.snapshot_term = rf->log[0].term;
            pthread_mutex_unlock(&rf->mu);
            rf->apply(rf->apply_ctx, &m);
            free(copy);
            pthread_mutex_lock(&rf->mu);
            if (m.snapshot_index > rf->applied)
                rf->applied = m.snapshot_index;
            continue;
        }
        /* Copy the batch (applied, commit] while holding mu. */
        int32_t from = rf->applied + 1, to = rf->commit;
        int n = to - from + 1;
        entry *batch = calloc((size_t)n, sizeof *batch);
        int got = 0;
        if (batch) {
            for (; got < n; got++) {
                const entry *en = &rf->log[from + got - rf->base];
                batch[got].term = en->term;
                batch[got].len = en->len;
                batch[got].cmd = malloc(en->len ? en->len : 1);
                if (!batch[got].cmd)
                    break;
                memcpy(batch[got].cmd, en->cmd, en->len);
            }
        }
        if (got == 0) {
            free(batch);
            wait_ms(rf, &rf->apply_cv, 10);
            continue;
        }
        pthread_mutex_unlock(&rf->mu);
        int done = 0;
        for (int k = 0; k < got; k++) {
            pthread_mutex_lock(&rf->mu);
            bool stop = rf->dead;
            pthread_mutex_unlock(&rf->mu);
            if (stop)
                break;
            raft_apply_msg m = { 0 };
            m.command_valid = true;
            m.command = batch[k].cmd;
            m.command_len = batch[k].len;
            m.command_index = from + k;
            rf->apply(rf->apply_ctx, &m);
            done++;
        }
        for (int k = 0; k < got; k++)
            free(batch[k].cmd);
        free(batch);
        pthread_mutex_lock(&rf->mu);
        if (from + done - 1 > rf->applied)
            rf->applied = from + done - 1;
    }
    pthread_mutex_unlock(&rf->mu);
    return NULL;
}

/* ---- the API --------------------------------------------------------------- */

void raft_get_state(raft *rf, int *term, bool *is_leader)
{
    pthread_mutex_lock(&rf->mu);
    *term = rf->term;
    *is_leader = rf->role == LEADER;
    pthread_mutex_unlock(&rf->mu);
}

bool raft_start(raft *rf, const void *command, size_t len, int *index, int *term)
{
    pthread_mutex_lock(&rf->mu);
    *index = last_index(rf) + 1;
    *term = rf->term;
    bool leader = rf->role == LEADER && !rf->dead;
    if (leader) {
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy || !reserve(rf, rf->log_len + 1)) {
            free(copy);
            leader = false;
        } else {
            if (len)
                memcpy(copy, command, len);
            rf->log[rf->log_len++] = (entry){ .term = rf->term, .cmd = copy, .len = len };
            if (!persist(rf)) {
                cut_from(rf, last_index(rf));
                leader = false;
            } else {
                broadcast_appends(rf, START_SEND_BELOW);
            }
        }
    }
    flush(rf);
    return leader;
}

void raft_snapshot(raft *rf, int index, const void *snapshot, size_t len)
{
    pthread_mutex_lock(&rf->mu);
    if (index > rf->base && index <= last_index(rf) && index <= rf->commit) {
        uint8_t *copy = malloc(len ? len : 1);
        if (copy) {
            if (len)
                memcpy(copy, snapshot, len);
            rebase(rf, index, term_at(rf, index), true);
            free(rf->snap);
            rf->snap = copy;
            rf->snap_len = len;
            persist(rf);
        }
    }
    pthread_mutex_unlock(&rf->mu);
}

int raft_register(raft *rf, labrpc_service *svc)
{
    (void)rf;
    if (labrpc_service_add(svc, "RequestVote", on_request_vote) != 0 ||
        labrpc_service_add(svc, "AppendEntries", on_append_entries) != 0 ||
        labrpc_service_add(svc, "InstallSnapshot", on_install_snapshot) != 0)
        return -1;
    return 0;
}

static void destroy(raft *rf)
{
    if (rf->log)
        for (int k = 0; k < rf->log_len; k++)
            free(rf->log[k].cmd);
    free(rf->log);
    free(rf->snap);
    codec_enc_free(&rf->penc);
    free(rf->peers);
    free(rf->voted_me);
    free(rf->next_idx);
    free(rf->match_idx);
    free(rf->back_step);
    free(rf->append_inflight);
    free(rf->vote_inflight);
    pthread_cond_destroy(&rf->apply_cv);
    pthread_cond_destroy(&rf->tick_cv);
    pthread_mutex_destroy(&rf->mu);
    free(rf);
}

raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps,
                raft_apply_fn apply, void *apply_ctx)
{
    raft *rf = calloc(1, sizeof *rf);
    if (!rf)
        return NULL;
    codec_enc_init(&rf->penc);
    pthread_mutex_init(&rf->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rf->tick_cv, &ca);
    pthread_cond_init(&rf->apply_cv, &ca);
    pthread_condattr_destroy(&ca);
    size_t n = (size_t)npeers;
    rf->peers = malloc(n * sizeof *rf->peers);
    rf->voted_me = calloc(n, sizeof *rf->voted_me);
    rf->next_idx = calloc(n, sizeof *rf->next_idx);
    rf->match_idx = calloc(n, sizeof *rf->match_idx);
    rf->back_step = calloc(n, sizeof *rf->back_step);
    rf->append_inflight = calloc(n, sizeof *rf->append_inflight);
    rf->vote_inflight = calloc(n, sizeof *rf->vote_inflight);
    if (!rf->peers || !rf->voted_me || !rf->next_idx || !rf->match_idx || !rf->back_step ||
        !rf->append_inflight || !rf->vote_inflight || !reserve(rf, 16)) {
        destroy(rf);
        return NULL;
    }
    memcpy(rf->peers, peers, n * sizeof *rf->peers);
    rf->npeers = npeers;
    rf->me = me;
    rf->ps = ps;
    rf->apply = apply;
    rf->apply_ctx = apply_ctx;
    rf->voted_for = -1;
    rf->role = FOLLOWER;
    rf->log_len = 1;
    rf->log[0] = (entry){ 0 };
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    rf->seed = (unsigned)t.tv_nsec ^ ((unsigned)me * 2654435761u) ^ (unsigned)rand();
    if (!restore(rf)) {
        destroy(rf);
        return NULL;
    }
    reset_timer(rf);
    if (pthread_create(&rf->applier, NULL, applier_main, rf) == 0)
        rf->applier_on = true;
    if (rf->applier_on && pthread_create(&rf->ticker, NULL, ticker_main, rf) == 0)
        rf->ticker_on = true;
    if (!rf->ticker_on) {
        pthread_mutex_lock(&rf->mu);
        rf->dead = true;
        pthread_cond_broadcast(&rf->apply_cv);
        pthread_mutex_unlock(&rf->mu);
        if (rf->applier_on)
            pthread_join(rf->applier, NULL);
        destroy(rf);
        return NULL;
    }
    return rf;
}

void raft_kill(raft *rf)
{
    pthread_mutex_lock(&rf->mu);
    rf->dead = true;
    pthread_cond_broadcast(&rf->tick_cv);
    pthread_cond_broadcast(&rf->apply_cv);
    pthread_mutex_unlock(&rf->mu);
    pthread_join(rf->ticker, NULL);
    pthread_join(rf->applier, NULL);
    /* No job is queued once dead is set; wait for threads still starting
     * the ones queued before, so that every started job is on rf->jobs. */
    pthread_mutex_lock(&rf->mu);
    while (rf->creating > 0)
        pthread_cond_wait(&rf->tick_cv, &rf->mu);
    pthread_mutex_unlock(&rf->mu);
    /* Every blocked call returns once its end is cancelled. */
    for (int p = 0; p < rf->npeers; p++)
        if (p != rf->me)
            labrpc_end_cancel(rf->peers[p]);
    reap(rf, true);
    destroy(rf);
}
