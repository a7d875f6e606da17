/* client.c: your clerk (stages 4B and 4C). This is the skeleton: it
 * compiles and runs, and fails every test (Get answers "", Put and Append
 * do nothing). grader/kvraft/kvraft.h is the API; handouts/4B-kv.md walks
 * you through it.
 *
 * What a clerk does: it sends each request (kvproto.h) to a server with
 * labrpc_call, and tries the next server when the answer is "wrong
 * leader" or the call fails (labrpc_call returns something other than
 * LABRPC_OK: a lost request or reply, a dead or partitioned server). It
 * retries until a server executes the request: Get, Put and Append never
 * give up.
 *
 * Things to get right:
 *  - Exactly once: a random id for the clerk (62 bits from the rand family:
 *    nrand62 below) and a number for each request, the same number on
 *    every retry of one request, so the servers can tell a retry.
 *  - Speed: remember which server answered last and start there; sleep
 *    (10-20 ms) only after a whole round of servers failed, not between
 *    two of them. The speed test does 1000 Appends in a row, at most
 *    33 ms each on average.
 *  - The servers[] array is in an order of the grader's choosing (not by
 *    server id), and stays the grader's: do not free it.
 *
 * Rules of the game: only pthreads, nanosleep/usleep, clock_gettime and the
 * rand family for threads, time and randomness; every allocation checked.
 */
#include "kvraft.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "kvproto.h"
#include "labrpc.h"

struct kvclerk {
    labrpc_end **servers; /* the grader's: one end to each server's "KV" service */
    int n;
    uint64_t id;          /* this clerk's random id */

    /* Your data here (4B): the number of the next request, the server that
     * answered last. */
};

/* 62 random bits: rand() gives 31 (RAND_MAX is 2^31-1 with glibc). */
static uint64_t nrand62(void)
{
    uint64_t hi = (uint64_t)rand() & 0x7fffffffu, lo = (uint64_t)rand() & 0x7fffffffu;
    return hi << 31 | lo;
}

kvclerk *kvclerk_make(labrpc_end **servers, int n)
{
    kvclerk *ck = calloc(1, sizeof *ck);
    if (ck == NULL)
        return NULL;
    ck->servers = servers;
    ck->n = n;
    ck->id = nrand62();
    /* Your code here (4B). */
    return ck;
}

/* Fetch the current value of key ("" if it has none), trying forever. */
char *kvclerk_get(kvclerk *ck, const char *key)
{
    (void)ck;
    (void)key;
    /* Your code here (4B): encode the request, then labrpc_call(
     * ck->servers[i], KV_GET, ...) until a server answers it; decode the
     * value from the reply (free() the reply). */
    char *value = malloc(1);
    if (value)
        value[0] = '\0';
    return value;
}

/* Set key to value, trying forever. */
int kvclerk_put(kvclerk *ck, const char *key, const char *value)
{
    (void)ck;
    (void)key;
    (void)value;
    /* Your code here (4B). */
    return 0;
}

/* Append value to key's value, trying forever. */
int kvclerk_append(kvclerk *ck, const char *key, const char *value)
{
    (void)ck;
    (void)key;
    (void)value;
    /* Your code here (4B). */
    return 0;
}

void kvclerk_free(kvclerk *ck)
{
    free(ck);
}
