/* tests.h: what the test files share (the registry of tests, and the
 * macros that turn a recorded failure into the end of a test).
 *
 * A test is a body `static void name(cfg *c)` run by run_test(), which makes
 * the cluster, runs the body, reports a failure to CUnit (from the test's own
 * thread only) and cleans up. Inside a body:
 *   - after every harness call that can fail, CHECK(c): if a failure has been
 *     recorded (by this call, an applier, or a helper thread), the body
 *     returns;
 *   - FAILF(c, fmt, ...) records a failure of the test itself and returns;
 *   - a body that starts threads joins them before it returns, on every path.
 */
#ifndef RAFTLAB_TESTS_H
#define RAFTLAB_TESTS_H

#include <stdbool.h>

#include "cfg.h"

#define CHECK(c)                                        \
    do {                                                \
        if (cfg_failed(c)) {                            \
            cfg_note_site((c), __FILE__, __LINE__);     \
            return;                                     \
        }                                               \
    } while (0)

#define FAILF(c, ...)                                   \
    do {                                                \
        cfg_fail((c), __VA_ARGS__);                     \
        cfg_note_site((c), __FILE__, __LINE__);         \
        return;                                         \
    } while (0)

typedef void (*test_body)(cfg *c);

/* Runs body on a fresh cluster (see cfg_make) inside the current CUnit test. */
void run_test(int n, bool unreliable, bool snapshot, test_body body);
/* The same on the cluster make(arg) returns (stage 4: cfg_make_service);
 * NULL: the harness could not be set up (make said why on stderr). */
void run_test_on(cfg *(*make)(void *arg), void *arg, test_body body);

typedef struct raft_test_def {
    const char *name;   /* "TestInitialElection3A" */
    void (*fn)(void);   /* the CUnit test function */
} raft_test_def;

/* Each stage's tests, ending with {NULL, NULL}: 6.5840's (test_3x.c), then
 * raftlab's own (test_ours.c). */
extern const raft_test_def tests_3a[];
extern const raft_test_def tests_3b[];
extern const raft_test_def tests_3c[];
extern const raft_test_def tests_3d[];
extern const raft_test_def ours_3a[];
extern const raft_test_def ours_3b[];
extern const raft_test_def ours_3c[];
extern const raft_test_def ours_3d[];
extern const raft_test_def tests_4a[];
extern const raft_test_def tests_4b[];
extern const raft_test_def tests_4c[];

#endif
