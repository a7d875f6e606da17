/* kvproto.h: what the clerk (client.c) and the server (server.c) of the
 * key/value service agree on: the "KV" methods, their messages and the
 * error codes. Internal to kvraft/ (kvraft.h is the public API).
 *
 * Messages (codec.h):
 *   request of KV.Get:    u64 clerk, u64 seq, bytes key
 *   request of KV.Put:    u64 clerk, u64 seq, bytes key, bytes value
 *   request of KV.Append: the same as Put
 *   reply of each:        u32 err, bytes value (Get's value when err is
 *                         KV_OK; a message when KV_ERR_BAD_REQUEST; else
 *                         empty)
 * clerk is the clerk's random id, seq numbers its requests from 1; a retry
 * carries the same seq, which is how the servers see it is one.
 */
#ifndef RAFTLAB_KVPROTO_H
#define RAFTLAB_KVPROTO_H

#include <stdint.h>

#include "codec.h"

#define KV_SERVICE "KV"
#define KV_GET "KV.Get"
#define KV_PUT "KV.Put"
#define KV_APPEND "KV.Append"

typedef enum kv_op { KV_OP_GET = 1, KV_OP_PUT = 2, KV_OP_APPEND = 3 } kv_op;

typedef enum kv_errcode {
    KV_OK = 0,
    KV_ERR_WRONG_LEADER = 1, /* not executed here: try another server */
    KV_ERR_BAD_REQUEST = 2,  /* the request does not decode */
} kv_errcode;

/* Upper bounds a decoder accepts, so that a malformed length cannot make
 * it allocate gigabytes. */
#define KV_MAX_KEY (1u << 20)
#define KV_MAX_VALUE (64u << 20)

#endif
