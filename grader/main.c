/* main.c: the raft_test program.
 *
 *   raft_test --list [LAB]   the test names, one a line (LAB: 3A .. 3D, 4A .. 4C)
 *   raft_test NAME           runs that one test (NAME with or without the
 *                            "Test" prefix) under CUnit; exit 0 iff it passed
 *
 * Exit status: 0 passed, 1 failed, 2 usage error (unknown test or stage),
 * CFG_EXIT_STUCK / CFG_EXIT_THREADS (see cfg.h) when the watchdog ended it.
 * The grader (grader/grade.c) runs each test in its own process this way.
 *
 * Completion. Exit status 0 alone does not prove that a test ran to its end
 * (student code may call exit(0) half way through), and anything the
 * process can name (a file, an fd, its environment) the submission can
 * write too. So with RAFTLAB_GRADED=1, raft_test reads a secret of the
 * grader's from standard input first thing in main, before any code of the
 * submission can run (the grader's policy refuses constructors), and puts
 * /dev/null there instead; once CUnit has really finished the test it
 * prints "raftlab-result <secret> <test> passed|failed cpu=<seconds>" on
 * stdout, the one line the grader believes.
 *
 * Threads. After cfg_cleanup has killed every peer and stopped the network,
 * the process must be back to the threads it had before the test (within
 * THREAD_GRACE_MS): a thread left running after raft_kill fails the test.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "tests.h"

/* How long the threads of killed peers get to finish (times the valgrind
 * factor): a thread that is already leaving when raft_kill returns is not
 * an error, one that keeps running is. */
#define THREAD_GRACE_MS 2000

static const struct {
    const char *lab;
    const raft_test_def *tests[2];   /* 6.5840's, then raftlab's own */
} LABS[] = {
    { "3A", { tests_3a, ours_3a } },
    { "3B", { tests_3b, ours_3b } },
    { "3C", { tests_3c, ours_3c } },
    { "3D", { tests_3d, ours_3d } },
    { "4A", { tests_4a, NULL } },
    { "4B", { tests_4b, NULL } },
    { "4C", { tests_4c, NULL } },
};
#define NLABS ((int)(sizeof LABS / sizeof LABS[0]))

#if defined(__SANITIZE_THREAD__) /* gcc */
#define RAFTLAB_TSAN 1
#elif defined(__has_feature) /* clang */
#if __has_feature(thread_sanitizer)
#define RAFTLAB_TSAN 1
#endif
#endif

#ifdef RAFTLAB_TSAN
static void *no_op(void *arg) { return arg; }
#endif

/* ThreadSanitizer's runtime starts a background thread of its own at the
 * first pthread_create, and keeps it to the end: start (and join) a thread
 * before counting, so that the count before the test includes it. */
static void start_runtime_threads(void)
{
#ifdef RAFTLAB_TSAN
    pthread_t t;
    if (pthread_create(&t, NULL, no_op, NULL) == 0)
        pthread_join(t, NULL);
#endif
}

/* Threads beyond `before` still running after waiting up to grace_ms for them
 * to end; 0 if the count is unknown (no /proc). */
static int threads_left(int before, int grace_ms)
{
    if (before < 0)
        return 0;
    for (int waited = 0;; waited += 20) {
        int now = cfg_thread_count();
        if (now < 0 || now <= before)
            return 0;
        if (waited >= grace_ms)
            return now - before;
        cfg_sleep_ms(20);
    }
}

/* The grader's secret for this run (see above), or "" when not graded. */
static char secret[80];

static int read_secret(const char *argv0)
{
    const char *g = getenv("RAFTLAB_GRADED");
    if (!g || strcmp(g, "1") != 0)
        return 0;
    size_t got = 0;
    while (got < sizeof secret - 1) {
        ssize_t n = read(0, secret + got, sizeof secret - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    secret[got] = '\0';
    secret[strcspn(secret, "\n")] = '\0';
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0 || dup2(fd, 0) < 0 || !secret[0]) {
        fprintf(stderr, "%s: RAFTLAB_GRADED=1 but no secret on standard input\n", argv0);
        return -1;
    }
    close(fd);
    return 0;
}

/* The test's check that ran out of budget (cfg_unchecked), if any. */
static bool unchecked;

/* The result line the grader looks for (see above). */
static int write_result(const char *name, bool passed)
{
    if (!secret[0])
        return 0;
    /* The CPU time too: in the sandbox the grader cannot see it. */
    struct rusage ru;
    double cpu = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    char line[256];
    int n = snprintf(line, sizeof line, "raftlab-result %s %s %s cpu=%.3f%s\n", secret, name,
                     passed ? "passed" : "failed", cpu, passed && unchecked ? " unchecked" : "");
    fflush(stdout);
    fflush(stderr);
    return n > 0 && write(1, line, (size_t)n) == n ? 0 : -1;
}

typedef struct raft_cluster {
    int n;
    bool unreliable, snapshot;
} raft_cluster;

static cfg *make_raft_cluster(void *arg)
{
    const raft_cluster *rc = arg;
    return cfg_make(rc->n, rc->unreliable, rc->snapshot);
}

void run_test(int n, bool unreliable, bool snapshot, test_body body)
{
    raft_cluster rc = { n, unreliable, snapshot };
    run_test_on(make_raft_cluster, &rc, body);
}

void run_test_on(cfg *(*make)(void *arg), void *arg, test_body body)
{
    CU_pTest t = CU_get_current_test();
    const char *name = t && t->pName ? t->pName : "?";
    start_runtime_threads();
    int threads_before = cfg_thread_count();
    cfg *c = make(arg);
    if (!c) {
        printf("  ... Failed --  %s: could not set up the cluster (see above)\n", name);
        fflush(stdout);
        CU_FAIL("cfg_make failed: could not set up the cluster");
        return;
    }
    cfg_set_test_name(c, name);
    if (!cfg_failed(c))
        body(c);
    else
        cfg_note_site(c, __FILE__, __LINE__);
    if (!cfg_failed(c) && !cfg_ended(c))
        cfg_fail(c, "internal error: the test body returned without calling cfg_end");

    bool failed = cfg_failed(c);
    unchecked = cfg_unchecked(c) != NULL;
    static char msg[2300];
    const char *file = __FILE__;
    int line = __LINE__;
    if (failed) {
        cfg_failure(c, msg, sizeof msg);
        cfg_site(c, &file, &line);
        if (line > 0)
            printf("  ... Failed --  %s\n      (noticed at %s:%d)\n", msg, file, line);
        else   /* a harness helper failed the test: no line of the test to name */
            printf("  ... Failed --  %s\n", msg);
        fflush(stdout);
    }
    int factor = cfg_time_factor();
    cfg_cleanup(c);
    int left = threads_left(threads_before, THREAD_GRACE_MS * factor);
    if (left > 0) {
        snprintf(msg, sizeof msg,
                 "%s: %d thread%s still running after raft_kill on every server and the "
                 "network's cleanup: raft_kill must stop and join every thread its peer started",
                 name, left, left == 1 ? "" : "s");
        printf("  ... Failed --  %s\n", msg);
        fflush(stdout);
        if (!failed) {
            failed = true;
            file = __FILE__;
            line = __LINE__;
        }
    }
    if (failed) /* CUnit copies the message and file name */
        CU_assertImplementation(CU_FALSE, (unsigned int)line, msg, file, "", CU_FALSE);
}

static int find_lab(const char *lab)
{
    for (int k = 0; k < NLABS; k++)
        if (strcasecmp(lab, LABS[k].lab) == 0)
            return k;
    return -1;
}

static void list_labs(FILE *f)
{
    fprintf(f, "stages:");
    for (int k = 0; k < NLABS; k++)
        fprintf(f, " %s", LABS[k].lab);
    fprintf(f, "\n");
}

static void list_tests(FILE *f, int only)
{
    for (int k = 0; k < NLABS; k++) {
        if (only >= 0 && k != only)
            continue;
        for (int s = 0; s < 2; s++)
            for (const raft_test_def *t = LABS[k].tests[s]; t && t->name; t++)
                fprintf(f, "%s\n", t->name);
    }
}

static void usage(FILE *f, const char *argv0)
{
    fprintf(f,
            "usage: %s --list [LAB]   list the tests (of one stage: 3A .. 3D, 4A .. 4C)\n"
            "       %s NAME           run one test, e.g. TestInitialElection3A\n",
            argv0, argv0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *argv0 = argc > 0 ? argv[0] : "raft_test";
    if (read_secret(argv0) != 0)
        return 2;
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout, argv0);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--list") == 0) {
        int only = -1;
        if (argc > 3) {
            usage(stderr, argv0);
            return 2;
        }
        if (argc == 3 && argv[2][0]) {
            only = find_lab(argv[2]);
            if (only < 0) {
                fprintf(stderr, "%s: unknown stage '%s'; ", argv0, argv[2]);
                list_labs(stderr);
                return 2;
            }
        }
        list_tests(stdout, only);
        return 0;
    }
    if (argc != 2) {
        usage(stderr, argv0);
        return 2;
    }

    const char *want = argv[1];
    char full[128];
    if (strncmp(want, "Test", 4) != 0) {
        snprintf(full, sizeof full, "Test%s", want);
        want = full;
    }
    const raft_test_def *found = NULL;
    int lab = -1;
    for (int k = 0; k < NLABS && !found; k++)
        for (int s = 0; s < 2 && !found; s++)
            for (const raft_test_def *t = LABS[k].tests[s]; t && t->name; t++)
                if (strcmp(t->name, want) == 0) {
                    found = t;
                    lab = k;
                    break;
                }
    if (!found) {
        fprintf(stderr, "%s: no test named '%s'. The tests are:\n", argv0, argv[1]);
        list_tests(stderr, -1);
        return 2;
    }

    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "%s: CUnit: %s\n", argv0, CU_get_error_msg());
        return 1;
    }
    CU_pSuite suite = CU_add_suite(LABS[lab].lab, NULL, NULL);
    if (!suite || !CU_add_test(suite, found->name, found->fn)) {
        fprintf(stderr, "%s: CUnit: %s\n", argv0, CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    /* CUnit's core runner prints nothing: the harness prints its own verdict
     * line, and CUnit's banner, summary box and CPU "Elapsed time" only hid
     * it. Like CU_basic_run_tests, it returns success even when tests fail. */
    CU_run_all_tests();
    unsigned failed = CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    bool passed = failed == 0 && ran == 1;
    if (write_result(found->name, passed) != 0)
        return 1;
    return passed ? 0 : 1;
}
