/* server.c: the reference key/value server (stages 4B/4C, kvraft.h's
 * server half), a state machine on the rsm (rsm.h).
 *
 * The state machine
 *  - the store: a hash table from key to value (chained, doubled when it
 *    fills). A value is a buffer with spare capacity that doubles as it
 *    grows, so that Append costs the bytes appended, not the whole value;
 *  - the duplicate table: for each clerk, the number of its latest Put or
 *    Append executed. A request whose number is not above it is a retry
 *    of one already executed and is answered without running again
 *    (exactly once). Get changes nothing, so a retried Get simply runs
 *    again, later, which is still inside the clerk's call: no result needs
 *    keeping;
 *  both in every snapshot.
 *
 * Threads and locks. The state is touched only by the rsm's callbacks
 * (kv_do_op, kv_snapshot, kv_restore), which the rsm makes one at a time
 * (rsm.h), so it needs no lock of ours. The "KV" handlers, on labrpc's
 * threads, never touch it: a handler decodes the request, re-encodes it as
 * a log entry, waits in rsm_submit (holding no lock, so the apply path can
 * always run: the classic deadlock is a handler holding the server's lock
 * in Submit while the applier waits for it), and copies the reply that
 * kv_do_op made.
 *
 * Log entry (an "op"): u32 kv_op, u64 clerk, u64 seq, bytes key, bytes
 * value (empty for Get). kv_do_op's result is the reply's body itself
 * (kvproto.h: u32 err, bytes value), copied out as it is.
 *
 * Ownership: the server owns its rsm (and through it its Raft) and the
 * tables; peers and ps stay the grader's.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "kvproto.h"
#include "kvraft.h"
#include "labrpc.h"
#include "persister.h"
#include "raft.h"
#include "rsm.h"

/* ---- the store ------------------------------------------------------------ */

typedef struct kv_entry {
    struct kv_entry *next; /* chain */
    uint64_t hash;
    uint8_t *key;
    size_t key_len;
    uint8_t *val;          /* NULL while empty */
    size_t len, cap;
} kv_entry;

typedef struct dup_entry {
    struct dup_entry *next;
    uint64_t clerk;
    uint64_t seq;          /* its latest Put/Append executed */
} dup_entry;

typedef struct kv_state {
    kv_entry **buckets;    /* nbuckets, a power of two */
    size_t nbuckets, count;
    dup_entry **dups;      /* ndups, a power of two */
    size_t ndups, dup_count;
} kv_state;

#define INITIAL_BUCKETS 64

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33; /* murmur3's finaliser: clerk ids are random, but cheap anyway */
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static int state_init(kv_state *s)
{
    memset(s, 0, sizeof *s);
    s->buckets = calloc(INITIAL_BUCKETS, sizeof *s->buckets);
    s->dups = calloc(INITIAL_BUCKETS, sizeof *s->dups);
    if (s->buckets == NULL || s->dups == NULL) {
        free(s->buckets);
        free(s->dups);
        return -1;
    }
    s->nbuckets = s->ndups = INITIAL_BUCKETS;
    return 0;
}

static void state_free(kv_state *s)
{
    for (size_t b = 0; b < s->nbuckets; b++) {
        for (kv_entry *e = s->buckets[b], *next; e; e = next) {
            next = e->next;
            free(e->key);
            free(e->val);
            free(e);
        }
    }
    for (size_t b = 0; b < s->ndups; b++) {
        for (dup_entry *d = s->dups[b], *next; d; d = next) {
            next = d->next;
            free(d);
        }
    }
    free(s->buckets);
    free(s->dups);
    memset(s, 0, sizeof *s);
}

/* Doubles the store's buckets once it averages one entry per bucket. A
 * failure only makes chains longer. */
static void store_maybe_grow(kv_state *s)
{
    if (s->count < s->nbuckets)
        return;
    size_t n = s->nbuckets * 2;
    kv_entry **nb = calloc(n, sizeof *nb);
    if (nb == NULL)
        return;
    for (size_t b = 0; b < s->nbuckets; b++) {
        for (kv_entry *e = s->buckets[b], *next; e; e = next) {
            next = e->next;
            e->next = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
        }
    }
    free(s->buckets);
    s->buckets = nb;
    s->nbuckets = n;
}

static kv_entry *store_find(const kv_state *s, const uint8_t *key, size_t key_len)
{
    uint64_t h = hash_bytes(key, key_len);
    for (kv_entry *e = s->buckets[h & (s->nbuckets - 1)]; e; e = e->next)
        if (e->hash == h && e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
            return e;
    return NULL;
}

/* The entry of key, made (empty) if there is none; NULL if out of memory. */
static kv_entry *store_get_or_add(kv_state *s, const uint8_t *key, size_t key_len)
{
    kv_entry *e = store_find(s, key, key_len);
    if (e)
        return e;
    store_maybe_grow(s);
    e = calloc(1, sizeof *e);
    if (e == NULL || (e->key = malloc(key_len ? key_len : 1)) == NULL) {
        free(e);
        return NULL;
    }
    memcpy(e->key, key, key_len);
    e->key_len = key_len;
    e->hash = hash_bytes(key, key_len);
    size_t b = e->hash & (s->nbuckets - 1);
    e->next = s->buckets[b];
    s->buckets[b] = e;
    s->count++;
    return e;
}

/* Makes room for need bytes in e's value, doubling: appends stay cheap. */
static int value_reserve(kv_entry *e, size_t need)
{
    if (need <= e->cap)
        return 0;
    size_t cap = e->cap ? e->cap : 16;
    while (cap < need)
        cap *= 2;
    uint8_t *v = realloc(e->val, cap);
    if (v == NULL)
        return -1;
    e->val = v;
    e->cap = cap;
    return 0;
}

static dup_entry *dup_find(const kv_state *s, uint64_t clerk)
{
    for (dup_entry *d = s->dups[hash_u64(clerk) & (s->ndups - 1)]; d; d = d->next)
        if (d->clerk == clerk)
            return d;
    return NULL;
}

/* The clerk's entry (seq 0 if new); NULL if out of memory. */
static dup_entry *dup_get_or_add(kv_state *s, uint64_t clerk)
{
    dup_entry *d = dup_find(s, clerk);
    if (d)
        return d;
    if (s->dup_count >= s->ndups) {
        size_t n = s->ndups * 2;
        dup_entry **nd = calloc(n, sizeof *nd);
        if (nd) {
            for (size_t b = 0; b < s->ndups; b++) {
                for (dup_entry *x = s->dups[b], *next; x; x = next) {
                    next = x->next;
                    x->next = nd[hash_u64(x->clerk) & (n - 1)];
                    nd[hash_u64(x->clerk) & (n - 1)] = x;
                }
            }
            free(s->dups);
            s->dups = nd;
            s->ndups = n;
        }
    }
    if ((d = calloc(1, sizeof *d)) == NULL)
        return NULL;
    d->clerk = clerk;
    size_t b = hash_u64(clerk) & (s->ndups - 1);
    d->next = s->dups[b];
    s->dups[b] = d;
    s->dup_count++;
    return d;
}

/* ---- the server ----------------------------------------------------------- */

struct kvserver {
    rsm *rsm;
    kv_state st; /* the rsm's callbacks only (see the top) */
};

/* A reply body (kvproto.h) in *out: 0, or -1 if out of memory. */
static int make_result(uint32_t err, const void *val, size_t len, void **out, size_t *out_len)
{
    codec_enc e;
    codec_enc_init(&e);
    codec_put_u32(&e, err);
    codec_put_bytes(&e, val, len);
    *out = codec_enc_take(&e, out_len);
    return *out ? 0 : -1;
}

/* Executes one committed op (rsm_sm.do_op). Deterministic: every replica
 * gets the same result from the same state. -1 only when out of memory,
 * and then nothing has changed (the rsm runs it again). */
static int kv_do_op(void *ctx, const void *req, size_t len, void **out, size_t *out_len)
{
    kvserver *kv = ctx;
    kv_state *s = &kv->st;
    codec_dec d;
    codec_dec_init(&d, req, len);
    uint32_t op = codec_get_u32(&d);
    uint64_t clerk = codec_get_u64(&d);
    uint64_t seq = codec_get_u64(&d);
    size_t key_len, val_len;
    const uint8_t *key = codec_get_bytes(&d, KV_MAX_KEY, &key_len);
    const uint8_t *val = codec_get_bytes(&d, KV_MAX_VALUE, &val_len);
    if (codec_dec_finish(&d) != CODEC_OK || op < KV_OP_GET || op > KV_OP_APPEND) {
        static const char msg[] = "kvserver: a log entry that is not a key/value op";
        return make_result(KV_ERR_BAD_REQUEST, msg, sizeof msg - 1, out, out_len);
    }

    if (op == KV_OP_GET) {
        const kv_entry *e = store_find(s, key, key_len);
        return make_result(KV_OK, e ? e->val : NULL, e ? e->len : 0, out, out_len);
    }

    /* Every allocation first, so that a failure leaves no trace but an
     * empty entry or a clerk at seq 0, which mean nothing. */
    void *result;
    size_t result_len;
    if (make_result(KV_OK, NULL, 0, &result, &result_len) != 0)
        return -1;
    dup_entry *dup = dup_get_or_add(s, clerk);
    if (dup == NULL) {
        free(result);
        return -1;
    }
    if (seq > dup->seq) { /* else a retry of one already executed */
        kv_entry *e = store_get_or_add(s, key, key_len);
        if (e == NULL) {
            free(result);
            return -1;
        }
        size_t at = op == KV_OP_APPEND ? e->len : 0;
        if (value_reserve(e, at + val_len) != 0) {
            free(result);
            return -1;
        }
        if (val_len)
            memcpy(e->val + at, val, val_len);
        e->len = at + val_len;
        dup->seq = seq;
    }
    *out = result;
    *out_len = result_len;
    return 0;
}

/* The whole state (rsm_sm.snapshot): list of (bytes key, bytes value),
 * then list of (u64 clerk, u64 seq). */
static int kv_snapshot(void *ctx, void **out, size_t *out_len)
{
    kvserver *kv = ctx;
    const kv_state *s = &kv->st;
    codec_enc e;
    codec_enc_init(&e);
    codec_put_list(&e, (uint32_t)s->count);
    for (size_t b = 0; b < s->nbuckets; b++) {
        for (const kv_entry *x = s->buckets[b]; x; x = x->next) {
            codec_put_bytes(&e, x->key, x->key_len);
            codec_put_bytes(&e, x->val, x->len);
        }
    }
    codec_put_list(&e, (uint32_t)s->dup_count);
    for (size_t b = 0; b < s->ndups; b++) {
        for (const dup_entry *x = s->dups[b]; x; x = x->next) {
            codec_put_u64(&e, x->clerk);
            codec_put_u64(&e, x->seq);
        }
    }
    *out = codec_enc_take(&e, out_len);
    return *out ? 0 : -1;
}

/* Replaces the state with a snapshot's (rsm_sm.restore): built aside, so
 * that a snapshot that does not decode changes nothing. */
static int kv_restore(void *ctx, const void *snap, size_t len)
{
    kvserver *kv = ctx;
    kv_state fresh;
    if (state_init(&fresh) != 0)
        return -1;
    codec_dec d;
    codec_dec_init(&d, snap, len);
    /* Each item takes at least 8 bytes: a bound on the counts. */
    uint32_t n = codec_get_list(&d, (uint32_t)(len / 8));
    for (uint32_t i = 0; i < n && codec_dec_err(&d) == CODEC_OK; i++) {
        size_t key_len, val_len;
        const uint8_t *key = codec_get_bytes(&d, KV_MAX_KEY, &key_len);
        const uint8_t *val = codec_get_bytes(&d, KV_MAX_VALUE, &val_len);
        if (codec_dec_err(&d) != CODEC_OK)
            break;
        kv_entry *e = store_get_or_add(&fresh, key, key_len);
        if (e == NULL || value_reserve(e, val_len) != 0)
            goto fail;
        if (val_len)
            memcpy(e->val, val, val_len);
        e->len = val_len;
    }
    uint32_t m = codec_get_list(&d, (uint32_t)(len / 16));
    for (uint32_t i = 0; i < m && codec_dec_err(&d) == CODEC_OK; i++) {
        uint64_t clerk = codec_get_u64(&d);
        uint64_t seq = codec_get_u64(&d);
        if (codec_dec_err(&d) != CODEC_OK)
            break;
        dup_entry *x = dup_get_or_add(&fresh, clerk);
        if (x == NULL)
            goto fail;
        x->seq = seq;
    }
    if (codec_dec_finish(&d) != CODEC_OK) {
        char why[160];
        codec_dec_describe(&d, why, sizeof why);
        fprintf(stderr, "kvserver: a snapshot that does not decode: %s\n", why);
        goto fail;
    }
    state_free(&kv->st);
    kv->st = fresh;
    return 0;
fail:
    state_free(&fresh);
    return -1;
}

/* ---- the "KV" handlers ---------------------------------------------------- */

static int bad_request(codec_enc *reply, const codec_dec *d)
{
    char why[200] = "kvserver: bad request: ";
    size_t n = strlen(why);
    codec_dec_describe(d, why + n, sizeof why - n);
    codec_put_u32(reply, KV_ERR_BAD_REQUEST);
    codec_put_bytes(reply, why, strlen(why));
    return 0;
}

/* Decodes a clerk's request, submits it as an op, and replies. */
static int handle(kvserver *kv, kv_op op, const uint8_t *args, size_t args_len, codec_enc *reply)
{
    codec_dec d;
    codec_dec_init(&d, args, args_len);
    uint64_t clerk = codec_get_u64(&d);
    uint64_t seq = codec_get_u64(&d);
    size_t key_len, val_len = 0;
    const uint8_t *key = codec_get_bytes(&d, KV_MAX_KEY, &key_len);
    const uint8_t *val = NULL;
    if (op != KV_OP_GET)
        val = codec_get_bytes(&d, KV_MAX_VALUE, &val_len);
    if (codec_dec_finish(&d) != CODEC_OK)
        return bad_request(reply, &d);

    codec_enc e;
    codec_enc_init(&e);
    codec_put_u32(&e, op);
    codec_put_u64(&e, clerk);
    codec_put_u64(&e, seq);
    codec_put_bytes(&e, key, key_len);
    codec_put_bytes(&e, val, val_len);
    size_t cmd_len;
    uint8_t *cmd = codec_enc_take(&e, &cmd_len);
    if (cmd == NULL)
        return -1; /* out of memory: the clerk sees a failed call and retries */

    void *out;
    size_t out_len;
    rsm_err err = rsm_submit(kv->rsm, cmd, cmd_len, &out, &out_len);
    free(cmd);
    if (err != RSM_OK) {
        codec_put_u32(reply, KV_ERR_WRONG_LEADER);
        codec_put_bytes(reply, NULL, 0);
        return 0;
    }
    codec_put_raw(reply, out, out_len); /* kv_do_op made the body */
    free(out);
    return 0;
}

static int handle_get(void *ctx, const uint8_t *args, size_t args_len, codec_enc *reply)
{
    return handle(ctx, KV_OP_GET, args, args_len, reply);
}

static int handle_put(void *ctx, const uint8_t *args, size_t args_len, codec_enc *reply)
{
    return handle(ctx, KV_OP_PUT, args, args_len, reply);
}

static int handle_append(void *ctx, const uint8_t *args, size_t args_len, codec_enc *reply)
{
    return handle(ctx, KV_OP_APPEND, args, args_len, reply);
}

/* ---- the API (kvraft.h) --------------------------------------------------- */

kvserver *kvserver_make(labrpc_end **peers, int npeers, int me, persister *ps,
                        int maxraftstate)
{
    kvserver *kv = calloc(1, sizeof *kv);
    if (kv == NULL)
        return NULL;
    if (state_init(&kv->st) != 0) {
        free(kv);
        return NULL;
    }
    rsm_sm sm = {
        .ctx = kv, .do_op = kv_do_op, .snapshot = kv_snapshot, .restore = kv_restore,
    };
    kv->rsm = rsm_make(peers, npeers, me, ps, maxraftstate, &sm);
    if (kv->rsm == NULL) {
        state_free(&kv->st);
        free(kv);
        return NULL;
    }
    return kv;
}

raft *kvserver_raft(kvserver *kv)
{
    return rsm_raft(kv->rsm);
}

int kvserver_register(kvserver *kv, labrpc_service *svc)
{
    (void)kv; /* the service already has kv as its handler context */
    if (labrpc_service_add(svc, "Get", handle_get) != 0 ||
        labrpc_service_add(svc, "Put", handle_put) != 0 ||
        labrpc_service_add(svc, "Append", handle_append) != 0)
        return -1;
    return 0;
}

void kvserver_kill(kvserver *kv)
{
    rsm_kill(kv->rsm);
}

void kvserver_free(kvserver *kv)
{
    if (kv == NULL)
        return;
    rsm_free(kv->rsm); /* after this no callback runs: the state is ours */
    state_free(&kv->st);
    free(kv);
}
