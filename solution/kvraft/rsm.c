/* rsm.c: the reference replicated state machine layer (stage 4A, rsm.h),
 * on any Raft that keeps raft.h's contract.
 *
 * How a request travels
 *  - rsm_submit wraps the service's bytes in an identity: this server's id,
 *    a random number drawn by this instance (an "incarnation": a restarted
 *    server numbers its requests from 1 again, and an old incarnation's
 *    entry may still commit) and a counter. It registers a waiter for that
 *    identity, hands the entry to raft_start and sleeps on the waiter's
 *    condition variable.
 *  - Raft's applier calls apply_fn with each committed entry in log order.
 *    apply_fn executes it through the state machine's do_op on every
 *    server, then hands the result to the waiter whose identity it carries
 *    (if this server has one), and fails every waiter whose index that
 *    entry (or an installed snapshot) has passed: a different request
 *    committed at its index, so its own is never executed.
 *  - A waiter also gives up when its Raft changes term or stops leading
 *    (looked at every WAIT_POLL_MS: no busy loop), and on rsm_kill.
 *  Matching by identity rather than by index alone closes the race of an
 *  entry that commits before raft_start has even returned its index.
 *
 * Snapshots (maxraftstate >= 0): after each do_op, once the persisted Raft
 * state reaches 90% of maxraftstate, apply_fn takes the state machine's
 * snapshot and hands it to raft_snapshot (raft.h allows that from inside
 * the apply function). A snapshot is [i32 last index][the state machine's
 * bytes], so that a restart knows where it stands; rsm_make restores it
 * before raft_make, and apply_fn restores those Raft delivers.
 *
 * Locks and their order: apply_mu, then mu; never the other way.
 *  - mu guards the waiter list, dead, last_applied and next_seq. It is never
 *    held while calling into Raft (raft_start, raft_get_state take Raft's
 *    lock) nor into the state machine.
 *  - apply_mu is held by apply_fn for the whole of each message, across
 *    the state machine's callbacks and raft_snapshot; rsm_kill takes it, so
 *    that once rsm_kill returns no callback is running or will run. Raft
 *    calls apply_fn holding none of its locks, and no Raft lock is held
 *    while waiting for apply_mu, so Raft's lock is always innermost.
 *  - rsm_submit takes only mu: a service may hold its own lock in its
 *    callbacks (under apply_mu) and must not hold it across rsm_submit or
 *    rsm_kill (rsm_kill waits for a callback that is running).
 *  dead is written holding both apply_mu and mu, so either lock reads it.
 *
 * Ownership: the rsm owns its waiter list (each waiter lives on the stack
 * of its rsm_submit), the results do_op returns until a waiter takes one,
 * and a copy of nothing else: peers and ps stay the caller's; raft_make
 * copies the peers array. rsm_free kills the Raft (which joins its
 * applier, the only thread that calls apply_fn) and frees everything; the
 * rsm starts no threads of its own.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "labrpc.h"
#include "persister.h"
#include "raft.h"
#include "rsm.h"

/* How often a waiter asks Raft whether it still leads in its term: a
 * leader that lost its place is noticed within this, without a busy loop. */
#define WAIT_POLL_MS 25
/* Snapshot once the Raft state reaches this share of maxraftstate. */
#define SNAPSHOT_PERCENT 90
/* The identity in front of every entry: i32 server, u64 incarnation, u64 seq. */
#define HEADER_BYTES (4 + 8 + 8)
/* A state machine that runs out of memory is asked again after this. */
#define RETRY_MS 10

typedef struct waiter {
    struct waiter *prev, *next;
    uint64_t seq;        /* the counter in this request's identity */
    int index;           /* its log index; 0 until raft_start has returned */
    bool done;           /* err (and out) are final */
    rsm_err err;
    void *out;           /* do_op's result, handed over by apply_fn */
    size_t out_len;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; signalled when done */
} waiter;

struct rsm {
    pthread_mutex_t mu;
    pthread_mutex_t apply_mu;
    raft *rf;
    persister *ps;
    int me;
    int maxraftstate;
    rsm_sm sm;
    uint64_t incarnation;

    /* Under mu (dead: see the top). */
    bool dead;
    uint64_t next_seq;
    int last_applied;   /* the last index executed or covered by a snapshot */
    waiter *waiters;
};

static void deadline_after_ms(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Ends a waiter (mu held). Takes out, if any. */
static void finish(waiter *w, rsm_err err, void *out, size_t out_len)
{
    w->done = true;
    w->err = err;
    w->out = out;
    w->out_len = out_len;
    pthread_cond_signal(&w->cond);
}

/* Fails every waiter whose index has been passed by index (mu held): the
 * request committed there was not theirs. */
static void fail_passed(rsm *r, int index)
{
    for (waiter *w = r->waiters; w; w = w->next)
        if (!w->done && w->index != 0 && w->index <= index)
            finish(w, RSM_WRONG_LEADER, NULL, 0);
}

/* ---- snapshots ----------------------------------------------------------- */

/* Restores a snapshot of ours: its index in *index. 0, or -1. */
static int restore_snapshot(rsm *r, const void *snap, size_t len, int *index)
{
    codec_dec d;
    codec_dec_init(&d, snap, len);
    int32_t at = codec_get_i32(&d);
    if (codec_dec_err(&d) != CODEC_OK || at < 0)
        return -1;
    size_t rest = codec_dec_remaining(&d);
    if (r->sm.restore(r->sm.ctx, (const uint8_t *)snap + (len - rest), rest) != 0)
        return -1;
    *index = at;
    return 0;
}

/* Snapshots everything up to index if the Raft state is near its limit
 * (apply_mu held). On failure Raft keeps its log; the next apply tries again. */
static void maybe_snapshot(rsm *r, int index)
{
    if (r->maxraftstate < 0)
        return;
    size_t limit = (size_t)r->maxraftstate * SNAPSHOT_PERCENT / 100;
    if (persister_state_size(r->ps) < limit)
        return;
    void *state = NULL;
    size_t state_len = 0;
    if (r->sm.snapshot(r->sm.ctx, &state, &state_len) != 0)
        return;
    codec_enc e;
    codec_enc_init(&e);
    codec_put_i32(&e, index);
    codec_put_raw(&e, state, state_len);
    free(state);
    size_t len;
    uint8_t *snap = codec_enc_take(&e, &len);
    if (snap == NULL)
        return;
    raft_snapshot(r->rf, index, snap, len);
    free(snap);
}

/* ---- the apply path ------------------------------------------------------ */

/* One committed command (apply_mu held, not mu). */
static void apply_command(rsm *r, const raft_apply_msg *msg)
{
    int index = msg->command_index;
    if (index <= r->last_applied)
        return; /* covered by a snapshot we already restored */

    codec_dec d;
    codec_dec_init(&d, msg->command, msg->command_len);
    int32_t server = codec_get_i32(&d);
    uint64_t incarnation = codec_get_u64(&d);
    uint64_t seq = codec_get_u64(&d);
    bool valid = codec_dec_err(&d) == CODEC_OK;
    bool ours = valid && server == r->me && incarnation == r->incarnation;

    void *out = NULL;
    size_t out_len = 0;
    if (valid) {
        const uint8_t *req = (const uint8_t *)msg->command + HEADER_BYTES;
        size_t req_len = msg->command_len - HEADER_BYTES;
        /* Skipping an entry would make this replica differ from the others:
         * out of memory, try again until it runs or we are killed. */
        while (r->sm.do_op(r->sm.ctx, req, req_len, &out, &out_len) != 0) {
            out = NULL;
            out_len = 0;
            pthread_mutex_unlock(&r->apply_mu); /* so rsm_kill can go on */
            sleep_ms(RETRY_MS);
            pthread_mutex_lock(&r->apply_mu);
            if (r->dead)
                return;
        }
    } else {
        /* Not written by an rsm: cannot happen through rsm_submit. */
        fprintf(stderr, "rsm %d: entry %d is not an rsm request; skipped\n", r->me, index);
    }

    pthread_mutex_lock(&r->mu);
    r->last_applied = index;
    for (waiter *w = r->waiters; w; w = w->next) {
        if (ours && w->seq == seq) {
            if (!w->done) {
                finish(w, RSM_OK, out, out_len);
                out = NULL;
            }
        } else if (!w->done && w->index != 0 && w->index <= index) {
            finish(w, RSM_WRONG_LEADER, NULL, 0);
        }
    }
    pthread_mutex_unlock(&r->mu);
    free(out); /* nobody here waits for it */

    maybe_snapshot(r, index);
}

/* A snapshot from Raft, in its place in the log (apply_mu held, not mu). */
static void apply_snapshot(rsm *r, const raft_apply_msg *msg)
{
    if (msg->snapshot_index <= r->last_applied)
        return; /* older than what we have: restoring it would go back in time */
    int index;
    if (restore_snapshot(r, msg->snapshot, msg->snapshot_len, &index) != 0) {
        fprintf(stderr, "rsm %d: the snapshot at index %d does not restore; ignored\n", r->me,
                msg->snapshot_index);
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->last_applied = msg->snapshot_index;
    fail_passed(r, msg->snapshot_index); /* executed or not, we cannot tell */
    pthread_mutex_unlock(&r->mu);
}

/* Raft's apply function: on Raft's applier thread, no Raft lock held. */
static void apply_fn(void *ctx, const raft_apply_msg *msg)
{
    rsm *r = ctx;
    pthread_mutex_lock(&r->apply_mu);
    if (!r->dead) {
        if (msg->command_valid && msg->command_len >= HEADER_BYTES)
            apply_command(r, msg);
        else if (msg->command_valid)
            fprintf(stderr, "rsm %d: entry %d is too short for an rsm request; skipped\n",
                    r->me, msg->command_index);
        else if (msg->snapshot_valid)
            apply_snapshot(r, msg);
    }
    pthread_mutex_unlock(&r->apply_mu);
}

/* ---- the API (rsm.h) ----------------------------------------------------- */

rsm *rsm_make(labrpc_end **peers, int npeers, int me, persister *ps, int maxraftstate,
              const rsm_sm *sm)
{
    if (peers == NULL || npeers < 1 || me < 0 || me >= npeers || ps == NULL || sm == NULL ||
        sm->do_op == NULL || sm->snapshot == NULL || sm->restore == NULL)
        return NULL;
    rsm *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->ps = ps;
    r->me = me;
    r->maxraftstate = maxraftstate;
    r->sm = *sm;
    /* 62 random bits, and the clock: two incarnations of one server must
     * not share an identity. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->incarnation = ((uint64_t)(unsigned)rand() << 31) ^ (uint64_t)(unsigned)rand() ^
                     ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec;

    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return NULL;
    }
    if (pthread_mutex_init(&r->apply_mu, NULL) != 0) {
        pthread_mutex_destroy(&r->mu);
        free(r);
        return NULL;
    }

    /* Restore before Raft delivers anything (it starts after the snapshot). */
    size_t len = 0;
    uint8_t *snap = persister_read_snapshot(ps, &len);
    bool ok = snap != NULL;
    if (ok && len > 0) {
        int index;
        ok = restore_snapshot(r, snap, len, &index) == 0;
        if (ok)
            r->last_applied = index;
        else
            fprintf(stderr, "rsm %d: the persisted snapshot does not restore\n", me);
    }
    free(snap);

    if (ok)
        r->rf = raft_make(peers, npeers, me, ps, apply_fn, r);
    if (r->rf == NULL) {
        pthread_mutex_destroy(&r->apply_mu);
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

    waiter w;
    memset(&w, 0, sizeof w);
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return RSM_WRONG_LEADER;
    /* The deadlines are on the monotonic clock (the wall clock may jump). */
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&w.cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return RSM_WRONG_LEADER; /* cannot wait: as good as not leading */

    pthread_mutex_lock(&r->mu);
    if (r->dead) {
        pthread_mutex_unlock(&r->mu);
        pthread_cond_destroy(&w.cond);
        return RSM_WRONG_LEADER;
    }
    w.seq = ++r->next_seq;
    /* Registered before raft_start: the entry may commit before it returns. */
    w.next = r->waiters;
    if (r->waiters)
        r->waiters->prev = &w;
    r->waiters = &w;
    pthread_mutex_unlock(&r->mu);

    codec_enc e;
    codec_enc_init(&e);
    codec_put_i32(&e, r->me);
    codec_put_u64(&e, r->incarnation);
    codec_put_u64(&e, w.seq);
    codec_put_raw(&e, req, len);
    size_t cmd_len;
    uint8_t *cmd = codec_enc_take(&e, &cmd_len);
    int index = 0, term = 0;
    bool leading = cmd != NULL && raft_start(r->rf, cmd, cmd_len, &index, &term);
    free(cmd);

    pthread_mutex_lock(&r->mu);
    if (!w.done) {
        if (!leading || index < 1)
            finish(&w, RSM_WRONG_LEADER, NULL, 0);
        else if (index <= r->last_applied)
            finish(&w, RSM_WRONG_LEADER, NULL, 0); /* something else committed there */
        else
            w.index = index;
    }
    while (!w.done) {
        struct timespec deadline;
        deadline_after_ms(&deadline, WAIT_POLL_MS);
        pthread_cond_timedwait(&w.cond, &r->mu, &deadline);
        if (w.done)
            break;
        pthread_mutex_unlock(&r->mu);
        int now_term;
        bool is_leader;
        raft_get_state(r->rf, &now_term, &is_leader);
        pthread_mutex_lock(&r->mu);
        if (!w.done && (now_term != term || !is_leader))
            finish(&w, RSM_WRONG_LEADER, NULL, 0);
    }
    if (w.prev)
        w.prev->next = w.next;
    else
        r->waiters = w.next;
    if (w.next)
        w.next->prev = w.prev;
    pthread_mutex_unlock(&r->mu);
    pthread_cond_destroy(&w.cond);

    *out = w.out;
    *out_len = w.out_len;
    return w.err;
}

void rsm_kill(rsm *r)
{
    /* apply_mu first: a callback under way finishes, and none starts after. */
    pthread_mutex_lock(&r->apply_mu);
    pthread_mutex_lock(&r->mu);
    r->dead = true;
    for (waiter *w = r->waiters; w; w = w->next)
        if (!w->done)
            finish(w, RSM_WRONG_LEADER, NULL, 0);
    pthread_mutex_unlock(&r->mu);
    pthread_mutex_unlock(&r->apply_mu);
}

void rsm_free(rsm *r)
{
    if (r == NULL)
        return;
    rsm_kill(r); /* in case the caller did not */
    /* Joins Raft's applier, which may be waiting for apply_mu: not held here. */
    raft_kill(r->rf);
    pthread_mutex_destroy(&r->apply_mu);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
