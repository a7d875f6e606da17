/* kvproto.h: what your clerk (client.c) and your server (server.c) agree
 * on: the "KV" methods, and the request and reply formats you choose
 * (6.5840's common.go). Internal to labs/kvraft/: the grader only knows
 * kvraft.h.
 *
 * Your definitions here (4B). Encode messages with codec.h. A request
 * needs at least the key (and the value for Put / Append), and, for
 * exactly-once, the clerk's id and the request's number; a reply needs an
 * error code (OK, wrong leader, ...) and Get's value. Write the layout
 * down in this comment, field by field, as labrpc/codec.h describes its
 * own.
 */
#ifndef RAFTLAB_KVPROTO_H
#define RAFTLAB_KVPROTO_H

#include <stdint.h>

#include "codec.h"

/* The methods of the "KV" service (kvserver_register adds them). */
#define KV_GET "KV.Get"
#define KV_PUT "KV.Put"
#define KV_APPEND "KV.Append"

typedef enum kv_errcode {
    KV_OK = 0,
    KV_ERR_WRONG_LEADER = 1,
} kv_errcode;

#endif
