/* kvraft.h: the fault-tolerant key/value service of stages 4B and 4C
 * (6.5840's kvraft), on your rsm (rsm.h) and Raft. You write the server
 * and the clerk in labs/kvraft/ (server.c, client.c). Do not edit this
 * file: the grader compiles against it.
 *
 * The service. Keys and values are strings (no NUL inside). Get(key) is
 * the key's value, "" if it has none; Put(key, value) sets it;
 * Append(key, value) adds value at its end ("" before, if none). Every
 * operation is linearizable: it takes effect once, at one moment between
 * the clerk's call and its return, whatever the network, crashes and
 * retries do. Append is not idempotent: a request executed twice shows.
 *
 * Clerks talk to the servers through labrpc, a service named "KV" on each
 * server, with request and reply formats of your own (codec.h). A clerk
 * retries until it succeeds: on RSM's wrong-leader answer, on a lost
 * request or reply, on a dead server. It remembers which server led last.
 * Exactly once: each clerk has an id and numbers its requests; the servers
 * keep, as part of the replicated state (and so of every snapshot), each
 * clerk's latest request number and its result, and answer a retry from
 * there instead of executing it again.
 *
 * Who calls what, on which thread:
 *  - the grader calls kvserver_make, kvserver_raft, kvserver_register,
 *    kvserver_kill and kvserver_free for each server, from its own threads;
 *  - labrpc calls your "KV" handlers on its threads, concurrently;
 *  - a grader's client thread calls one clerk's functions, one call at a
 *    time (a clerk is never used by two threads at once); different clerks
 *    run concurrently.
 * Only pthreads, nanosleep/usleep, clock_gettime and the rand family may be
 * used for threads, time and randomness (sim mode reroutes exactly those).
 */
#ifndef RAFTLAB_KVRAFT_H
#define RAFTLAB_KVRAFT_H

#include <stddef.h>

#include "labrpc.h"
#include "persister.h"
#include "raft.h"

typedef struct kvserver kvserver;
typedef struct kvclerk kvclerk;

/* ---- the server ---------------------------------------------------------- */

/* Creates server `me` (an rsm with the key/value state machine, and its
 * Raft) from what ps holds; peers, npeers, me, ps as for rsm_make, valid
 * until kvserver_free returns. maxraftstate: bytes of persisted Raft state
 * past which the server snapshots, or -1 for never. Returns quickly; NULL
 * if it could not start. */
kvserver *kvserver_make(labrpc_end **peers, int npeers, int me, persister *ps,
                        int maxraftstate);

/* Its Raft (the grader registers the Raft's handlers and asks its state). */
raft *kvserver_raft(kvserver *kv);

/* Adds the handlers of the clerks' requests to svc, a service named "KV"
 * whose handler context is kv. 0, or -1. */
int kvserver_register(kvserver *kv, labrpc_service *svc);

/* Stops the server: every handler waiting for its request returns soon
 * (the clerk will retry elsewhere). Frees nothing: handlers may still be
 * running. The grader has already removed the server from the network. */
void kvserver_kill(kvserver *kv);

/* After kvserver_kill, once no handler of its services is running: frees
 * everything (rsm_kill and rsm_free, which kill the Raft). */
void kvserver_free(kvserver *kv);

/* ---- the clerk ----------------------------------------------------------- */

/* A clerk with ends to the "KV" service of every server (servers[0..n-1],
 * in an order of the grader's choosing: not by server id). The array and
 * the ends stay the grader's, valid until kvclerk_free returns. NULL if
 * out of memory. */
kvclerk *kvclerk_make(labrpc_end **servers, int n);

/* The value of key ("" if none): a malloc'd string the caller frees; NULL
 * only if out of memory. Retries until it succeeds. */
char *kvclerk_get(kvclerk *ck, const char *key);

/* Sets key to value; appends value to key's value. Retry until they
 * succeed. 0, or -1 if out of memory. */
int kvclerk_put(kvclerk *ck, const char *key, const char *value);
int kvclerk_append(kvclerk *ck, const char *key, const char *value);

/* Frees the clerk (no call of it is running). */
void kvclerk_free(kvclerk *ck);

#endif
