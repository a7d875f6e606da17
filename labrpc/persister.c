/* persister: see persister.h. One mutex guards both blobs, so a save of
 * state and snapshot is atomic for every reader. A save copies into the
 * buffers it already has (grown when needed): a Raft saves after nearly
 * every change, and a fresh allocation per save of a long log cost more in
 * page faults than the copy itself. */
#include "persister.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct persister {
    pthread_mutex_t mu;
    uint8_t *state;
    size_t state_len, state_cap;
    uint8_t *snap;
    size_t snap_len, snap_cap;
};

persister *persister_new(void)
{
    persister *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

/* A malloc'd copy of n bytes (a valid 1-byte allocation when n == 0). */
static uint8_t *dup_bytes(const void *src, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    if (p && n)
        memcpy(p, src, n);
    return p;
}

persister *persister_copy(persister *src)
{
    persister *p = persister_new();
    if (!p)
        return NULL;
    pthread_mutex_lock(&src->mu);
    int rc = persister_save(p, src->state, src->state_len, src->snap, src->snap_len);
    pthread_mutex_unlock(&src->mu);
    if (rc != 0) {
        persister_free(p);
        return NULL;
    }
    return p;
}

void persister_free(persister *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->mu);
    free(p->state);
    free(p->snap);
    free(p);
}

/* Makes *buf hold at least n bytes. Out of [n, 4n] (too small, or much
 * too large after a snapshot cut the log) it becomes 2n: room to grow,
 * and growth stays geometric. false if out of memory, *buf unchanged. */
static bool fit(uint8_t **buf, size_t *cap, size_t n)
{
    size_t want = n ? n : 1;
    if (want <= *cap && *cap <= 4 * want)
        return true;
    uint8_t *b = realloc(*buf, 2 * want);
    if (!b)
        return false;
    *buf = b;
    *cap = 2 * want;
    return true;
}

int persister_save(persister *p, const void *state, size_t state_len,
                   const void *snapshot, size_t snap_len)
{
    pthread_mutex_lock(&p->mu);
    /* Both buffers big enough first, then both copies: both or neither. */
    bool ok = fit(&p->state, &p->state_cap, state_len) && fit(&p->snap, &p->snap_cap, snap_len);
    if (ok) {
        if (state_len)
            memcpy(p->state, state, state_len);
        if (snap_len)
            memcpy(p->snap, snapshot, snap_len);
        p->state_len = state_len;
        p->snap_len = snap_len;
    }
    pthread_mutex_unlock(&p->mu);
    return ok ? 0 : -1;
}

static uint8_t *read_blob(persister *p, bool snapshot, size_t *len)
{
    pthread_mutex_lock(&p->mu);
    const uint8_t *src = snapshot ? p->snap : p->state;
    size_t n = snapshot ? p->snap_len : p->state_len;
    uint8_t *out = dup_bytes(src, n);
    pthread_mutex_unlock(&p->mu);
    *len = out ? n : 0;
    return out;
}

uint8_t *persister_read_state(persister *p, size_t *len) { return read_blob(p, false, len); }
uint8_t *persister_read_snapshot(persister *p, size_t *len) { return read_blob(p, true, len); }

size_t persister_state_size(persister *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->state_len;
    pthread_mutex_unlock(&p->mu);
    return n;
}

size_t persister_snapshot_size(persister *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->snap_len;
    pthread_mutex_unlock(&p->mu);
    return n;
}
