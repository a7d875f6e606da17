/* client.c: the reference clerk (stages 4B/4C, kvraft.h's clerk half).
 *
 * A clerk has a random 62-bit id and numbers its requests from 1; a retry
 * of a request keeps its number, so the servers can tell it is one
 * (server.c's duplicate table). It sends to the server that led last,
 * and on a wrong-leader reply or a failed call moves on to the next in
 * turn; only after a whole round of failures does it sleep a little (a
 * new leader takes an election to appear), so the usual case costs one
 * round trip and no waiting.
 *
 * Threads: a clerk belongs to one thread at a time (kvraft.h); it keeps no
 * global state. Ownership: servers[] and its ends stay the grader's.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "kvproto.h"
#include "kvraft.h"
#include "labrpc.h"

/* Sleep after a full round of failures (every server failed or refused). */
#define ROUND_SLEEP_MS 15

struct kvclerk {
    labrpc_end **servers; /* the grader's */
    int n;
    uint64_t id;
    uint64_t seq;         /* the number of the latest request */
    int leader;           /* where to start: the server that answered last */
};

static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

kvclerk *kvclerk_make(labrpc_end **servers, int n)
{
    if (servers == NULL || n < 1)
        return NULL;
    kvclerk *ck = calloc(1, sizeof *ck);
    if (ck == NULL)
        return NULL;
    ck->servers = servers;
    ck->n = n;
    /* rand() gives 31 bits (RAND_MAX is 2^31-1 on glibc): two make 62. */
    uint64_t hi = (uint64_t)rand() & 0x7fffffffu, lo = (uint64_t)rand() & 0x7fffffffu;
    ck->id = hi << 31 | lo;
    ck->leader = rand() % n;
    return ck;
}

/* Sends one request until a server executes it. Get's value in *value
 * (malloc'd, NUL-terminated) if value is not NULL. 0, or -1 if out of
 * memory. */
static int call(kvclerk *ck, const char *method, const char *key, const char *val, char **value)
{
    codec_enc e;
    codec_enc_init(&e);
    codec_put_u64(&e, ck->id);
    codec_put_u64(&e, ++ck->seq);
    codec_put_bytes(&e, key, strlen(key));
    if (val)
        codec_put_bytes(&e, val, strlen(val));
    size_t args_len;
    uint8_t *args = codec_enc_take(&e, &args_len);
    if (args == NULL)
        return -1;

    int failed = 0; /* in a row */
    for (int i = ck->leader;; i = (i + 1) % ck->n) {
        uint8_t *reply = NULL;
        size_t reply_len = 0;
        int rc = labrpc_call(ck->servers[i], method, args, args_len, &reply, &reply_len);
        if (rc == LABRPC_OK) {
            codec_dec d;
            codec_dec_init(&d, reply, reply_len);
            uint32_t err = codec_get_u32(&d);
            size_t n = 0;
            const uint8_t *p = codec_get_bytes(&d, KV_MAX_VALUE, &n);
            if (codec_dec_finish(&d) == CODEC_OK && err == KV_OK) {
                int ret = 0;
                if (value) {
                    *value = malloc(n + 1);
                    if (*value) {
                        memcpy(*value, p, n);
                        (*value)[n] = '\0';
                    } else {
                        ret = -1;
                    }
                }
                free(reply);
                free(args);
                ck->leader = i;
                return ret;
            }
        } else if (rc == LABRPC_ENOMEM) {
            free(reply);
            free(args);
            return -1;
        }
        /* Wrong leader, a lost message, a dead server, or a reply we
         * cannot read: the next server. */
        free(reply);
        if (++failed >= ck->n) {
            failed = 0;
            sleep_ms(ROUND_SLEEP_MS);
        }
    }
}

char *kvclerk_get(kvclerk *ck, const char *key)
{
    char *value = NULL;
    if (call(ck, KV_GET, key, NULL, &value) != 0)
        return NULL;
    return value;
}

int kvclerk_put(kvclerk *ck, const char *key, const char *value)
{
    return call(ck, KV_PUT, key, value, NULL);
}

int kvclerk_append(kvclerk *ck, const char *key, const char *value)
{
    return call(ck, KV_APPEND, key, value, NULL);
}

void kvclerk_free(kvclerk *ck)
{
    free(ck);
}
