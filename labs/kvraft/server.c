/* server.c: your key/value server (stages 4B and 4C), a state machine on
 * your rsm (rsm.h). This is the skeleton: it compiles and runs, and fails
 * every test. grader/kvraft/kvraft.h is the API; handouts/4B-kv.md and
 * handouts/4C-kv-snapshots.md walk you through it.
 *
 * Outline:
 *
 *   the state machine (rsm_sm: do_op, snapshot, restore)
 *     the key/value map, and the duplicate table: for each clerk, the
 *     number of its latest request executed and that request's result
 *   the "KV" handlers (KV.Get, KV.Put, KV.Append, on labrpc's threads)
 *     decode the clerk's request (kvproto.h), rsm_submit it, reply with
 *     the result, or "wrong leader" when rsm_submit says so
 *
 * Things to get right:
 *  - Exactly once. A clerk retries a request whose reply it did not get,
 *    and the first copy may well have been executed: Append twice shows.
 *    do_op checks the duplicate table and answers a retry from there
 *    instead of executing it again. The table is part of the state: every
 *    replica updates it in do_op, and it goes into every snapshot.
 *  - do_op must be deterministic: the same requests in the same order give
 *    the same state and results on every replica.
 *  - Do not hold the server's lock while calling rsm_submit: the apply
 *    path calls do_op, which takes that lock, and your submit waits for
 *    the apply path (the classic deadlock, see the 4B handout).
 *  - Values grow by appends to tens of KB: make Append cost the bytes
 *    appended (a buffer with spare capacity), and look keys up in a hash
 *    table, not a list.
 *  - A request that does not decode gets an error reply (or the handler
 *    returns non-zero), never a crash.
 *  - Snapshots (4C): snapshot encodes the whole map and the duplicate
 *    table; restore replaces them.
 *
 * Rules of the game: only pthreads, nanosleep/usleep, clock_gettime and the
 * rand family for threads, time and randomness; every allocation checked.
 */
#include "kvraft.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "kvproto.h"
#include "labrpc.h"
#include "persister.h"
#include "raft.h"
#include "rsm.h"

struct kvserver {
    pthread_mutex_t mu; /* protects the state machine's state */
    rsm *rsm;
    int me;

    /* Your definitions here (4B): the key/value map, the duplicate table. */
};

/* Executes one committed request (see rsm.h): the same bytes a handler
 * gave to rsm_submit. Set *out to a malloc'd result (or NULL, 0). */
static int kv_do_op(void *ctx, const void *req, size_t len, void **out, size_t *out_len)
{
    kvserver *kv = ctx;
    (void)kv;
    (void)req;
    (void)len;
    *out = NULL;
    *out_len = 0;
    /* Your code here (4B). */
    return 0;
}

/* The whole state as bytes (4C). */
static int kv_snapshot(void *ctx, void **out, size_t *out_len)
{
    (void)ctx;
    *out = NULL;
    *out_len = 0;
    /* Your code here (4C). */
    return -1;
}

/* Replaces the whole state with a snapshot's (4C). */
static int kv_restore(void *ctx, const void *snap, size_t len)
{
    (void)ctx;
    (void)snap;
    (void)len;
    /* Your code here (4C). */
    return -1;
}

/* The clerks' requests, on labrpc's threads. Return 0 with a reply
 * encoded in reply, or non-zero to reject a request that does not
 * decode. */
static int handle_get(void *ctx, const uint8_t *args, size_t args_len, codec_enc *reply)
{
    kvserver *kv = ctx;
    (void)kv;
    (void)args;
    (void)args_len;
    (void)reply;
    /* Your code here (4B): decode, rsm_submit (no lock held), reply. */
    return -1;
}

static int handle_put(void *ctx, const uint8_t *args, size_t args_len, codec_enc *reply)
{
    kvserver *kv = ctx;
    (void)kv;
    (void)args;
    (void)args_len;
    (void)reply;
    /* Your code here (4B). */
    return -1;
}

static int handle_append(void *ctx, const uint8_t *args, size_t args_len, codec_enc *reply)
{
    kvserver *kv = ctx;
    (void)kv;
    (void)args;
    (void)args_len;
    (void)reply;
    /* Your code here (4B). */
    return -1;
}

kvserver *kvserver_make(labrpc_end **peers, int npeers, int me, persister *ps,
                        int maxraftstate)
{
    kvserver *kv = calloc(1, sizeof *kv);
    if (kv == NULL)
        return NULL;
    kv->me = me;
    if (pthread_mutex_init(&kv->mu, NULL) != 0) {
        free(kv);
        return NULL;
    }
    /* Your code here (4B): set up your state before rsm_make, which may
     * call restore. */
    rsm_sm sm = {
        .ctx = kv, .do_op = kv_do_op, .snapshot = kv_snapshot, .restore = kv_restore,
    };
    kv->rsm = rsm_make(peers, npeers, me, ps, maxraftstate, &sm);
    if (kv->rsm == NULL) {
        pthread_mutex_destroy(&kv->mu);
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
    /* Not holding kv->mu: rsm_kill may wait for a do_op that takes it. */
    rsm_kill(kv->rsm);
    /* Your code here, if needed. */
}

void kvserver_free(kvserver *kv)
{
    if (kv == NULL)
        return;
    rsm_free(kv->rsm); /* kills the Raft: no callback runs after this */
    /* Your code here (4B): free the map and the duplicate table. */
    pthread_mutex_destroy(&kv->mu);
    free(kv);
}
