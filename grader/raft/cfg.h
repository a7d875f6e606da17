/* cfg: the cluster harness of the Raft tests (6.5840's config.go, in C).
 *
 * A cfg is a simulated network (labrpc, long delays on) with n Raft peers
 * named "0" .. "n-1", each with a persister, fresh client ends to every peer,
 * and an applier (the apply function handed to raft_make) that keeps a copy
 * of what each server applied and checks it as it comes in.
 *
 * Commands. Commands are opaque byte strings; the harness compares applied
 * values byte for byte. The tests send integers and random strings. An
 * integer command is its decimal ASCII text, without sign for non-negative
 * values and without a terminating NUL ("100", "4611686018427387904");
 * cfg_value_int() parses one back. Random strings are made of the 64
 * characters [A-Za-z0-9_-], so they never look like integers.
 *
 * Failures. Any check that fails, on any thread (an applier, a client thread
 * of a test, the test itself), records the first failure message in the cfg
 * (under its mutex) and marks the cfg failed; later failures are dropped.
 * Nothing here calls CUnit or exits: helpers that fail return a failure
 * value (-1, or false) and the test's own thread looks at cfg_failed() at
 * each helper boundary and ends the test (see CHECK in tests.h). Whatever
 * student code hands the harness (a wrong index from raft_start, an apply at
 * an unexpected index, both or neither valid flags, an absurd command_len,
 * NULL from raft_make ...) becomes such a failure, with a message naming the
 * server, what was expected and what was seen, never a crash.
 * In sim mode (RAFTLAB_SIM) the message ends with the virtual time and the
 * scheduling step at which the failure was recorded.
 *
 * Time. Each test has 120 s of wall-clock time from cfg_make. Helpers check
 * it and fail the test once it has passed; a watchdog thread ends the
 * process (exit status 1, with a message) if the test is still running 10 s
 * after that, or if cfg_cleanup takes over 30 s: that is, if something is
 * stuck (a raft_start that never returns, a raft_kill that never joins);
 * it exits with CFG_EXIT_STUCK. It also counts the process's threads and
 * ends it with CFG_EXIT_THREADS past CFG_MAX_THREADS.
 * Under valgrind these limits and the deadlines of one() and wait() are
 * stretched by CFG_VALGRIND_FACTOR; the sleeps that make up a scenario
 * (election timeouts) are not.
 *
 * Threads. cfg_make, cfg_cleanup, cfg_begin, cfg_end, cfg_start1,
 * cfg_crash1, cfg_connect, cfg_disconnect, cfg_set_* and the check_*
 * functions belong to the test's own thread. cfg_one, cfg_n_committed,
 * cfg_wait, cfg_start_cmd/int, cfg_get_state, cfg_rand*, cfg_sleep_ms,
 * cfg_fail and cfg_failed may also be called from a test's helper threads
 * (which the test joins before it returns).
 *
 * Only pthreads, nanosleep, clock_gettime and rand_r are used for threads,
 * time and randomness (sim mode reroutes exactly those).
 */
#ifndef RAFTLAB_CFG_H
#define RAFTLAB_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* The election timeout budget of the tests, in ms (6.5840's RaftElectionTimeout). */
#define RAFT_ELECTION_TIMEOUT 1000
/* Applied commands between snapshots in 3D (snapshots at 9, 19, 29, ...). */
#define CFG_SNAPSHOT_INTERVAL 10
/* Max persisted raft state in 3D, bytes. */
#define CFG_MAX_LOG_SIZE 2000
/* Wall-clock limit of one test, seconds (overridable at compile time only to
 * test the harness itself). */
#ifndef CFG_TEST_LIMIT_S
#define CFG_TEST_LIMIT_S 120
#endif
/* How much longer the harness's own deadlines are under valgrind. */
#define CFG_VALGRIND_FACTOR 5
/* Exit statuses of raft_test besides 0 (passed), 1 (failed) and 2 (usage),
 * so that the grader can tell why a test ended without reading its output. */
#define CFG_EXIT_STUCK 3     /* the watchdog ended a test that was stuck */
#define CFG_EXIT_THREADS 4   /* the process ran more than CFG_MAX_THREADS threads */
/* Threads one test process may run: a Raft that starts threads without bound
 * is stopped here, since RLIMIT_NPROC does nothing for root (CI). */
#define CFG_MAX_THREADS 1000
/* Largest command and index the appliers accept before calling it absurd. */
#define CFG_MAX_COMMAND_LEN (1u << 20)
#define CFG_MAX_INDEX (1 << 20)
/* Terms for which the harness remembers who it saw leading (election
 * safety: cfg_get_state fails the test if two servers claim one term). */
#define CFG_TRACKED_TERMS (1 << 16)
/* labrpc_end_tag of the ends: a server's own ends carry its number; a
 * clerk's (stage 4) CFG_TAG_CLIENT plus its number. */
#define CFG_TAG_CLIENT 1000

typedef struct cfg cfg;

/* A copy of an applied value (malloc'd; free with cfg_value_free). */
typedef struct cfg_value {
    uint8_t *p;
    size_t len;
} cfg_value;

void cfg_value_free(cfg_value *v);
/* true if v is an integer command (decimal text); *out gets its value. */
bool cfg_value_int(const cfg_value *v, int64_t *out);

/* A cluster of n servers, all started and connected. unreliable: the network
 * drops and delays messages. snapshot: the appliers snapshot every 10
 * commands (3D). Returns NULL only if the harness itself could not be set up
 * (out of memory: it says so on stderr); a peer that fails to start
 * (raft_make returns NULL) is a test failure recorded in the cfg. */
cfg *cfg_make(int n, bool unreliable, bool snapshot);
/* Kills every peer, frees every server, stops the network, frees all. */
void cfg_cleanup(cfg *c);

/* ---- a service on every server (stage 4) ---------------------------------- */

/* What each server runs on its Raft in stage 4 (an rsm, a key/value
 * server): made, crashed and restarted as cfg does a bare Raft, on a
 * network without long delays. The service restores its own snapshot,
 * so cfg's appliers and their checks are not used: the tests check
 * through the service. The harness registers the Raft's handlers
 * (raft_register on *rf). Crashing server i: it leaves the network, then
 * kill (its handlers' waits end), then the harness waits for its running
 * handlers and for cfg_acquire_service users, then free. */
typedef struct cfg_service {
    const char *api;    /* its functions' prefix, for messages: "rsm", "kvserver" */
    void *ctx;          /* the test's, passed to each call */
    /* Server me's service from ps (what an earlier instance persisted),
     * on ends[0..n-1]; *rf gets its Raft. NULL if it could not start.
     * c is the cfg being made or restarting the server (its callbacks may
     * record failures there). */
    void *(*make)(void *ctx, cfg *c, labrpc_end **ends, int n, int me, persister *ps,
                  raft **rf);
    /* Adds the service's own labrpc services to srv (NULL: none). 0, or
     * -1 with a failure recorded. */
    int (*add_services)(void *ctx, void *obj, labrpc_server *srv);
    void (*kill)(void *ctx, void *obj);
    void (*free)(void *ctx, void *obj);
} cfg_service;

/* As cfg_make, with svc (which must outlive the cfg) on every server. */
cfg *cfg_make_service(int n, bool unreliable, const cfg_service *svc);
/* Server i's service, held: a crash of i waits for cfg_release_service
 * (after its kill, so a wait inside the service ends). NULL if i is not
 * running. Any thread. */
void *cfg_acquire_service(cfg *c, int i);
void cfg_release_service(cfg *c, int i);
/* The network (stage 4: the harness makes its clerks' ends on it), and
 * server i's name on it. */
labrpc_net *cfg_net(cfg *c);
const char *cfg_server_name(cfg *c, int i);
/* Largest persisted snapshot of any server, bytes. */
size_t cfg_snapshot_size(cfg *c);
/* Connects every server, then cuts every link between servers of
 * different sides (side[i]: server i's group). Test's own thread. */
void cfg_partition(cfg *c, const int *side);
/* A check that could not decide within its budget (stage 4's
 * linearizability): the test runs to its end, then cfg_end prints
 * "  ... Not checked --  <note>" and the grader's verdict is "not checked"
 * (no points), never a pass. Test's own thread. */
void cfg_note_unchecked(cfg *c, const char *note);
const char *cfg_unchecked(cfg *c);   /* the note, or NULL */
/* As cfg_end, the figures of stage 4: "time peers rpcs ops". */
bool cfg_end_ops(cfg *c, int ops);

/* The test's name for failure messages ("TestInitialElection3A"). */
void cfg_set_test_name(cfg *c, const char *name);
/* Prints "<description> ..." and starts the counters. */
void cfg_begin(cfg *c, const char *description);
/* Unless the test failed, checks the time limit and prints
 * "  ... Passed --  time peers rpcs bytes cmds". Returns !cfg_failed(c). */
bool cfg_end(cfg *c);
bool cfg_ended(cfg *c);

/* ---- failures ---------------------------------------------------------- */

/* Records a failure (printf-style message) unless one is already recorded. */
void cfg_fail(cfg *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool cfg_failed(cfg *c);
/* Copies the first failure message (with the test name) into buf. */
void cfg_failure(cfg *c, char *buf, size_t size);
/* Where the test noticed the failure (for the CUnit report). */
void cfg_note_site(cfg *c, const char *file, int line);
void cfg_site(cfg *c, const char **file, int *line);

/* ---- the cluster ------------------------------------------------------- */

int cfg_n(const cfg *c);
/* Crashes server i (if running) and starts a new instance from its
 * persisted state. Returns false on failure (recorded). */
bool cfg_start1(cfg *c, int i);
/* Crashes server i: disconnects it, removes its server from the network,
 * copies its persister and kills the instance. No-op if not running. */
void cfg_crash1(cfg *c, int i);
void cfg_connect(cfg *c, int i);
void cfg_disconnect(cfg *c, int i);
bool cfg_connected(cfg *c, int i);
/* Finer than connect/disconnect, for constructed scenarios (the test's own
 * thread): the link between i and j both ways, or from -> to alone; and
 * requests from -> to held in the network (labrpc_end_hold) until
 * cfg_release sends them, stale. cfg_connect and cfg_disconnect set every
 * link of a server again. */
void cfg_link(cfg *c, int i, int j, bool up);
void cfg_link_one_way(cfg *c, int from, int to, bool up);
void cfg_hold(cfg *c, int from, int to, bool hold);
void cfg_release(cfg *c, int from, int to);
int cfg_held(cfg *c, int from, int to);   /* requests held now */
/* While lose is true, requests from -> to are handled but their replies
 * are lost (labrpc_end_lose_replies): to acts on them, from never learns. */
void cfg_lose_replies(cfg *c, int from, int to, bool lose);
/* The oldest request held from -> to delivered again, copies times, one
 * every gap_ms (labrpc_end_echo). */
void cfg_echo(cfg *c, int from, int to, int copies, int gap_ms);
/* Server i's service snapshots now, at index (its last applied index if
 * index is -1 or beyond it), as a service may at any time: the index, or 0
 * if i is not running or has applied nothing. The test's own thread. */
int cfg_snapshot_at(cfg *c, int i, int index);
/* Is an instance of server i running (6.5840's cfg.rafts[i] != nil)? */
bool cfg_alive(cfg *c, int i);
void cfg_set_unreliable(cfg *c, bool unreliable);
/* A network worse than 6.5840's, as real ones are (labrpc_net_hostile):
 * duplicated requests, stale replays across terms, far more reordering. */
void cfg_set_hostile(cfg *c, bool yes);
/* In snapshot tests, each server snapshots at its own indexes (every
 * CFG_SNAPSHOT_INTERVAL, shifted by 3 x its id), as a service whose state
 * grows unevenly would: a stale InstallSnapshot then often falls between a
 * follower's own snapshot and what it has applied. */
void cfg_set_staggered_snapshots(cfg *c, bool yes);

/* Crash points. cfg_arm_crash_point: server i (running) is frozen right
 * after it answers `after` more requests: that answer goes out, nothing it
 * does afterwards reaches anyone, and what it had persisted at that moment
 * is kept (labrpc_net_crash_point). cfg_crash_point_fired says whether that
 * happened. cfg_crash_at_point disarms and crashes server i: if the point
 * fired, its next start sees exactly what it had persisted when its answer
 * left (so a vote or an acknowledgement not yet saved is lost, as on a real
 * crash), and it returns true; otherwise it is cfg_crash1 and returns
 * false. One crash point at a time; all three belong to the test's own
 * thread, and server i must not be crashed
 * otherwise while armed. Between arming and cfg_crash_at_point, do not
 * cfg_connect any server: that would enable the frozen server's ends again. */
bool cfg_arm_crash_point(cfg *c, int i, int after);
bool cfg_crash_point_fired(cfg *c);
void cfg_disarm_crash_point(cfg *c);
bool cfg_crash_at_point(cfg *c, int i);
void cfg_set_long_reordering(cfg *c, bool yes);
/* Further delays on requests and replies (labrpc_net_delay); false if a
 * range is not sensible. */
bool cfg_set_delay(cfg *c, int request_min_ms, int request_max_ms, int reply_min_ms,
                   int reply_max_ms);
/* Replaces the 120 s limit of this cfg (from cfg_make), and the watchdog's
 * deadline with it: for programs that run longer than a test (make
 * figure16); the tests never call it. */
void cfg_set_time_limit(cfg *c, int seconds);

/* raft_start on server i, if it is running (else false, *index = *term = -1).
 * A true return with an index that cannot be right (< 1 or absurd) is a
 * failure (recorded) and returns false. index / term may be NULL. */
bool cfg_start_cmd(cfg *c, int i, const void *cmd, size_t len, int *index, int *term);
bool cfg_start_int(cfg *c, int i, int64_t v, int *index, int *term);
/* raft_get_state on server i; false if it is not running. A server that
 * says it leads a term in which the harness saw another server lead is a
 * failure (election safety), however far apart the two calls. */
bool cfg_get_state(cfg *c, int i, int *term, bool *is_leader);

/* ---- checks (6.5840's helpers) ----------------------------------------- */

/* The leader's id, or -1 (failure recorded). */
int cfg_check_one_leader(cfg *c);
/* The term all connected servers agree on, or -1 (failure recorded if they
 * disagree). */
int cfg_check_terms(cfg *c);
/* false (failure recorded) if a connected server claims to lead. */
bool cfg_check_no_leader(cfg *c);
/* How many servers applied index; out (if not NULL) gets a copy of the value
 * when the count is > 0. -1 (failure recorded) if they differ. */
int cfg_n_committed(cfg *c, int index, cfg_value *out);
/* A complete agreement on cmd: the index, or -1 (failure recorded). */
int cfg_one(cfg *c, const void *cmd, size_t len, int expected_servers, bool retry);
int cfg_one_int(cfg *c, int64_t v, int expected_servers, bool retry);
/* Waits for n servers to apply index. 1: decided, *out (if not NULL) gets
 * the value; 0: a term passed start_term (6.5840's -1); -1: failure
 * (recorded). start_term -1: do not look at terms. */
int cfg_wait(cfg *c, int index, int n, int start_term, cfg_value *out);
/* Largest persisted raft state of any server, bytes. */
size_t cfg_log_size(cfg *c);
/* Requests dispatched to server i; total RPCs; total bytes. */
int cfg_rpc_count(cfg *c, int i);
int cfg_rpc_total(cfg *c);
int64_t cfg_bytes_total(cfg *c);

/* ---- utilities --------------------------------------------------------- */

/* Random numbers from the cfg's seed (thread safe): 31 and 62 bits. */
int cfg_rand(cfg *c);
int64_t cfg_rand63(cfg *c);
/* A random string of n characters from [A-Za-z0-9_-]; caller frees. */
char *cfg_randstring(cfg *c, size_t n);
void cfg_sleep_ms(int64_t ms);
/* Seconds since some fixed point (CLOCK_MONOTONIC). */
double cfg_now(void);
/* Threads of this process now (from /proc/self/task), or -1 if unknown. */
int cfg_thread_count(void);
/* 1, or CFG_VALGRIND_FACTOR when running under valgrind. */
int cfg_time_factor(void);

#endif
