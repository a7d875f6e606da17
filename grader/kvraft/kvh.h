/* kvh: the harness of the key/value tests (4B, 4C): 6.5840's kvraft
 * config.go and test helpers, in C, on cfg (grader/raft/cfg.h).
 *
 * Every server runs the submission's kvserver (kvraft.h) as a cfg_service.
 * Clerks are the submission's too (kvclerk_*), each with its own labrpc
 * ends to every server, in a shuffled order, enabled only to the servers
 * the test connects it to. The harness's wrappers of Get, Put and Append
 * time each call and, when given a client number >= 0, add it to the
 * test's history, which kvh_check_history checks for linearizability
 * (grader/lincheck) at the end of a test.
 *
 * One kvh a process (one test a process). Threads: kvh_make_cluster,
 * kvh_clerk_make, kvh_clerk_connect, kvh_check_history and
 * kvh_generic belong to the test's own thread; the op wrappers and
 * kvh_clerk_free to the thread that uses that clerk (one at a time).
 */
#ifndef RAFTLAB_KVH_H
#define RAFTLAB_KVH_H

#include <stdbool.h>

#include "cfg.h"
#include "tests.h"

typedef struct kvh_params {
    int servers;
    bool unreliable;
    int maxraftstate;    /* bytes, or -1: no snapshots */
} kvh_params;

/* run_test_on's maker: a cluster of kvservers (arg: a kvh_params). */
cfg *kvh_make_cluster(void *arg);

typedef struct kvh_clerk kvh_clerk;

/* A clerk connected to servers to[0..nto-1] (to NULL: all). NULL with a
 * failure recorded if it could not be made. */
kvh_clerk *kvh_clerk_make(cfg *c, const int *to, int nto);
/* The same, drawn in the run's picture on lane c<lane> (the number the
 * history gives its ops); kvh_clerk_make numbers clerks in order made.
 * A test uses one or the other. */
kvh_clerk *kvh_clerk_make_as(cfg *c, const int *to, int nto, int lane);
void kvh_clerk_connect(cfg *c, kvh_clerk *ck, const int *to, int nto);
void kvh_clerk_free(kvh_clerk *ck);

/* The submission's clerk calls, timed; client >= 0: added to the history
 * as that client's. kvh_get returns a malloc'd value, or NULL with a
 * failure recorded. */
char *kvh_get(cfg *c, kvh_clerk *ck, const char *key, int client);
bool kvh_put(cfg *c, kvh_clerk *ck, const char *key, const char *value, int client);
bool kvh_append(cfg *c, kvh_clerk *ck, const char *key, const char *value, int client);
/* Get(key) must be want (a failure otherwise). */
void kvh_check(cfg *c, kvh_clerk *ck, const char *key, const char *want);
/* Operations done through the wrappers so far. */
int kvh_ops(void);

/* Each "x <client> <j> y" for j < count appears in v exactly once, in
 * order of j (a failure otherwise). */
void kvh_check_appends(cfg *c, int client, const char *v, int count);

/* 6.5840's GenericTest: 3 rounds of clients for 5 s (partitions, crashes
 * as asked), the per-client checks, the log and snapshot sizes, and the
 * history's linearizability at the end. */
typedef struct kvh_generic_spec {
    const char *part;     /* "4B" or "4C" */
    int clients;
    bool crash, partitions, random_keys;
} kvh_generic_spec;
void kvh_generic(cfg *c, const kvh_generic_spec *spec);
/* 6.5840's GenericTestSpeed: 1000 sequential Appends at 33.3 ms each at most. */
void kvh_speed(cfg *c, const char *part);

/* Inside a CUnit test: body on a fresh cluster (run_test_on); and
 * kvh_generic on one. maxraftstate: bytes, or -1. */
void kvh_run(int servers, bool unreliable, int maxraftstate, test_body body);
void kvh_run_generic(const char *part, int maxraftstate, int clients, int servers,
                     bool unreliable, bool crash, bool partitions, bool random_keys);

/* Checks the history recorded so far (a failure if it is not
 * linearizable, with an explanation; a note if the check's budget ran out,
 * see cfg_note_unchecked). */
void kvh_check_history(cfg *c);

#endif
