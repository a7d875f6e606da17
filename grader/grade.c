/* grade.c: the grader, build/grade. `build/grade --help` documents it.
 *
 * Builds the submission (build.h: its own files only, the symbol policy),
 * then runs each selected Raft test (raft_test NAME) in its own child
 * process: in secure mode (the default) inside a sandbox (sandbox.h) that
 * the test cannot leave, with hard resource limits; otherwise in its own
 * process group. Its output is captured to a file; how the child ended and
 * the one result line that carries this run's secret (main.c) make the
 * verdict. The tests, their names and points come from the points file,
 * never from the binary under test. Prints progress, each failure with the
 * command that reruns it, a summary with points and per-stage times; writes
 * the reports (report.h).
 *
 * One thread. Children are reaped with wait4 after sigtimedwait on SIGCHLD,
 * so a finished test is noticed at once and an idle grader sleeps.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "build.h"
#include "cfg.h"
#include "report.h"
#include "html.h"
#include "sandbox.h"

#define TEST_LIMIT_S (CFG_TEST_LIMIT_S + 15) /* the harness reports first */
#define VALGRIND_FACTOR CFG_VALGRIND_FACTOR
#define TERM_GRACE_S 3          /* SIGTERM, then SIGKILL this much later */
#define EXIT_VALGRIND 99        /* --error-exitcode */
#define EXIT_ASAN 98
#define EXIT_TSAN 97
#define EXIT_UBSAN 96
#define EXIT_EXEC 127
#define HEAD_BYTES (4 << 20)    /* of a test's output, scanned for reports */
#define TAIL_BYTES (64 << 10)
#define TAIL_LINES 12
#define REPORT_LINES 25
#define MAX_TESTS 256
/* In sim mode a test costs milliseconds of CPU: by default each runs over
 * this many seeds (and as many at a time as there are processors), so that
 * a bug that shows on one schedule in a few is caught, and the suite still
 * takes under a minute on 2 cores. */
#define SIM_SEEDS 4

typedef struct opts {
    const char *impl, *binary, *lab, *run, *valgrind, *san, *points, *logs;
    const char *json, *junit, *gradescope, *supp;
    bool secure, sim, stop_stage, keep_logs, dry_run, trace;
    int repeat, jobs;
    double timeout;
    long mem_mb, fsize_mb, nproc;
} opts;

typedef struct test {
    char name[128], stage[16];
    double max_points;
    int done, failures;
    double secs, max_secs, cpu;
    int entry;             /* 1 + its index in rep once its first run ended, else 0:
                              an index, since report_add may move the entries */
    bool shown;            /* its line was printed */
} test;

typedef struct run {
    int test, iter;
    pid_t pid;
    double t0, deadline, killed_at;
    bool timed_out;
    char log[PATH_MAX];
    char secret[40];     /* this run's, in hex: see main.c */
} run;

static opts O = { .secure = true, .mem_mb = 16384, .fsize_mb = 512, .nproc = 16384 };
static char kit[PATH_MAX];         /* the kit's root folder ("" if unknown) */
static char binary[PATH_MAX];
static test tests[MAX_TESTS];
static int ntests;

/* The width of the tests' names in tables: the longest (stage 4's are
 * long), at least 34. */
static int name_width(void)
{
    int w = 34;
    for (int k = 0; k < ntests; k++)
        if ((int)strlen(tests[k].name) > w)
            w = (int)strlen(tests[k].name);
    return w;
}
static report rep;
static bool tty, color;
static char logdir[PATH_MAX];
static int kept_logs;
static double t_start;
static double points_total;        /* of every line of the points file */

/* Test t's entry in the report (t->entry set). */
static report_test *res_of(const test *t) { return &rep.tests[t->entry - 1]; }
static bool sandboxed;             /* tests and builds run in the sandbox */
static char no_sandbox[512];       /* why not, when not */
static char scratch[PATH_MAX];     /* the build's folder, removed at exit if temporary */
static bool scratch_temp;
static const char **test_env;      /* the tests' environment */
static char stopped_after[16];     /* --stop-after-failing-stage: the stage, if it stopped */

/* ---- small helpers ------------------------------------------------------ */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("grade: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static const char *paint(report_verdict v)
{
    if (!color)
        return "";
    return v == REPORT_PASSED ? "\033[32m" : v == REPORT_TIMEOUT || v == REPORT_LIMIT ? "\033[33m"
                                                                                       : "\033[31m";
}
static const char *plain(void) { return color ? "\033[0m" : ""; }

/* snprintf into a fixed buffer; a path or name that does not fit is an error. */
static void setf(char *dst, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void setf(char *dst, size_t size, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(dst, size, f, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        die("a path or name is too long: %.60s...", dst);
}

/* Reads up to len bytes at off (off < 0: the last len bytes); malloc'd. */
static char *read_part(const char *path, long off, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return strdup("");
    }
    if (off < 0)
        off = st.st_size > (off_t)len ? (long)(st.st_size - (off_t)len) : 0;
    char *buf = malloc(len + 1);
    ssize_t n = buf ? pread(fd, buf, len, off) : -1;
    close(fd);
    if (!buf)
        return NULL;
    buf[n > 0 ? n : 0] = '\0';
    /* NULs in output would cut the text short. */
    for (ssize_t k = 0; k < n; k++)
        if (buf[k] == '\0')
            buf[k] = '?';
    return buf;
}

static const char *line_start(const char *buf, const char *p)
{
    while (p > buf && p[-1] != '\n')
        p--;
    return p;
}

/* The first line of buf containing needle (or the last, if last). */
static const char *find_line(const char *buf, const char *needle, bool last)
{
    const char *hit = NULL;
    for (const char *p = strstr(buf, needle); p; p = strstr(p + 1, needle)) {
        hit = line_start(buf, p);
        if (!last)
            break;
    }
    return hit;
}

/* A copy of up to n lines from p; malloc'd. */
static char *copy_lines(const char *p, int n)
{
    const char *e = p;
    for (int k = 0; k < n && *e; k++) {
        const char *nl = strchr(e, '\n');
        e = nl ? nl + 1 : e + strlen(e);
    }
    size_t len = (size_t)(e - p);
    while (len && p[len - 1] == '\n')
        len--;
    return strndup(p, len);
}

/* The rest of the line at p, without a "==123== " valgrind prefix. */
static char *one_line(const char *p)
{
    if (p[0] == '=' && p[1] == '=') {
        const char *q = strstr(p + 2, "== ");
        const char *nl = strchr(p, '\n');
        if (q && (!nl || q < nl))
            p = q + 3;
    }
    while (*p == ' ')
        p++;
    return strndup(p, strcspn(p, "\n"));
}

/* ---- the verdict of one run --------------------------------------------- */

typedef struct outcome {
    report_verdict v;
    char *message, *details;   /* malloc'd */
} outcome;

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/* The first report of a checker: the line of the first of heads found in
 * head (earliest in the text), and REPORT_LINES lines from it. */
/* The first line of buf with needle that is a report: helgrind announces a
 * thread ("Thread #3 was created", "... is the program's root thread")
 * before it reports on it, and an announcement is not the diagnosis. */
static const char *find_report_line(const char *buf, const char *needle)
{
    for (const char *p = strstr(buf, needle); p; p = strstr(p, needle)) {
        const char *ls = line_start(buf, p);
        size_t len = strcspn(ls, "\n");
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), ls);
        if (!strstr(line, " was created") && !strstr(line, "root thread"))
            return ls;
        if (!ls[len])
            break;
        p = ls + len + 1;
    }
    return NULL;
}

static bool first_report(const char *head, const char *const *heads, outcome *o)
{
    const char *best = NULL;
    for (int k = 0; heads[k]; k++) {
        const char *p = find_report_line(head, heads[k]);
        if (p && (!best || p < best))
            best = p;
    }
    if (!best)
        return false;
    o->message = one_line(best);
    o->details = copy_lines(best, REPORT_LINES);
    return true;
}

static const char *const MEMCHECK_ERRORS[] = {
    "== Invalid ", "== Conditional jump", "== Use of uninitialised", "== Syscall param",
    "== Mismatched free", "== Source and destination overlap", "== Argument 'size'",
    "== Process terminating", NULL,
};
static const char *const MEMCHECK_LEAKS[] = { "are definitely lost", NULL };
static const char *const THREAD_ERRORS[] = {
    "== Possible data race", "== Conflicting ", "== Thread #", "== Lock at", "lock order",
    "ThreadSanitizer:", "== Probably a race", NULL,
};
static const char *const ASAN_ERRORS[] = { "ERROR: AddressSanitizer", NULL };
static const char *const LSAN_ERRORS[] = { "ERROR: LeakSanitizer", NULL };
static const char *const UBSAN_ERRORS[] = { "runtime error:", NULL };

/* Sim mode's own diagnosis (sim/sim.c): a deadlock or a busy loop, with
 * the threads it names as holding locks, and the replay line. */
static bool sim_report(const char *head, outcome *o)
{
    const char *p = find_line(head, "sim: deadlock", false);
    if (!p)
        p = find_line(head, "sim: busy loop", false);
    if (!p)
        return false;
    o->message = one_line(p);
    /* The threads that hold or wait for a lock held by another; the
     * others (sleeping, waiting on a condition) only add noise. */
    size_t cap = 4096, len = 0;
    char *d = malloc(cap);
    if (!d)
        return true;
    d[0] = '\0';
    const char *q = strchr(p, '\n');
    for (int k = 0; q && k < 200; k++) {
        q++;
        size_t n = strcspn(q, "\n");
        bool thread = strncmp(q, "  thread ", 9) == 0;
        if (!thread && strncmp(q, "sim: replay", 11) != 0)
            break;
        bool keep = !thread || memmem(q, n, "held by", 7) || memmem(q, n, "already", 7);
        if (keep && len + n + 2 < cap) {
            memcpy(d + len, q, n);
            len += n;
            d[len++] = '\n';
            d[len] = '\0';
        }
        q = q[n] ? q + n : NULL;
    }
    while (len && d[len - 1] == '\n')
        d[--len] = '\0';
    o->details = d;
    return true;
}

/* What the run's result lines say: the harness prints one, with the run's
 * secret (main.c). Any other count, or another test's name, is forged. */
typedef enum result { RESULT_NONE, RESULT_PASSED, RESULT_UNCHECKED, RESULT_FAILED,
                      RESULT_FORGED } result;

static result read_result(const run *r, const char *name, double *cpu)
{
    int fd = open(r->log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return RESULT_NONE;
    char key[64];
    int klen = snprintf(key, sizeof key, "raftlab-result %s ", r->secret);
    enum { CHUNK = 1 << 20, KEEP = 256 };
    char *buf = malloc(CHUNK + KEEP + 1);
    result res = RESULT_NONE;
    int found = 0;
    size_t have = 0;
    off_t off = 0;
    while (buf) {
        ssize_t n = pread(fd, buf + have, CHUNK, off);
        if (n <= 0)
            break;
        off += n;
        have += (size_t)n;
        buf[have] = '\0';
        for (char *p = buf; (p = memmem(p, have - (size_t)(p - buf), key, (size_t)klen)); p++) {
            char *nl = memchr(p, '\n', have - (size_t)(p - buf));
            if (!nl) /* the rest comes with the next chunk */
                break;
            found++;
            char want_pass[200], want_fail[200];
            snprintf(want_pass, sizeof want_pass, "%s%s passed", key, name);
            snprintf(want_fail, sizeof want_fail, "%s%s failed", key, name);
            size_t len = (size_t)(nl - p), lp = strlen(want_pass), lf = strlen(want_fail);
            const char *rest = NULL;
            if (len >= lp && memcmp(p, want_pass, lp) == 0) {
                res = RESULT_PASSED;
                rest = p + lp;
            } else if (len >= lf && memcmp(p, want_fail, lf) == 0) {
                res = RESULT_FAILED;
                rest = p + lf;
            } else {
                res = RESULT_FORGED;
            }
            /* " cpu=S": the harness's own CPU time (the sandbox hides it);
             * then " unchecked" if a check ran out of budget. */
            int end = 0;
            if (rest && (rest == nl || sscanf(rest, " cpu=%lf%n", cpu, &end) != 1))
                *cpu = 0;
            if (res == RESULT_PASSED && end > 0 && (size_t)(nl - rest) >= (size_t)end + 10 &&
                memcmp(rest + end, " unchecked", 10) == 0)
                res = RESULT_UNCHECKED;
            *p = '\0'; /* not found again when kept below */
        }
        /* Keep the last bytes: a line may straddle two chunks. */
        size_t keep = have < KEEP ? have : KEEP;
        memmove(buf, buf + have - keep, keep);
        have = keep;
    }
    free(buf);
    close(fd);
    return found > 1 ? RESULT_FORGED : res;
}

static void classify(const run *r, int status, outcome *o, double *cpu)
{
    char *head = read_part(r->log, 0, HEAD_BYTES);
    char *tail = read_part(r->log, -1, TAIL_BYTES);
    double reported = 0;
    result res = read_result(r, tests[r->test].name, &reported);
    if (sandboxed && reported >= 0 && reported < 1e6)
        *cpu = reported;
    if (!head || !tail) {
        o->v = REPORT_ERROR;
        o->message = strdup("out of memory reading the test's output");
        goto out;
    }
    /* The harness's own failure line, the last one (it comes last). */
    const char *harness = find_line(tail, "  ... Failed --  ", true);
    if (!harness)
        harness = find_line(head, "  ... Failed --  ", true);
    char *why = harness ? one_line(strstr(harness, "... Failed --  ") + 15) : NULL;
    const char *last = tail + strlen(tail);
    for (int k = 0; k <= TAIL_LINES && last > tail; k++)
        last = line_start(tail, last - 1);
    bool valgrind = O.valgrind && O.valgrind[0];
    int code;
    int sig = sandbox_signal(status, sandboxed, &code);

    if (res == RESULT_FORGED) {
        o->v = REPORT_ERROR;
        o->message = strdup("the test's result line was forged (several, or another test's): "
                            "something in the submission wrote it; 0 points, and a look at "
                            "its code is due");
    } else if (r->timed_out) {
        o->v = REPORT_TIMEOUT;
        o->message = fmt("no result after %.0f s: the process group was killed; the "
                         "last output shows where it was", O.timeout);
    } else if (valgrind && code == EXIT_VALGRIND) {
        bool memcheck = strcmp(O.valgrind, "memcheck") == 0;
        if (memcheck && first_report(head, MEMCHECK_ERRORS, o))
            o->v = REPORT_MEMORY;
        else if (memcheck && first_report(head, MEMCHECK_LEAKS, o))
            o->v = REPORT_LEAKED;
        else {
            o->v = memcheck ? REPORT_MEMORY : REPORT_RACE;
            if (!first_report(head, THREAD_ERRORS, o) && !first_report(head, (const char *const[]){ "==", NULL }, o))
                o->message = strdup("valgrind reported errors (see the output)");
        }
    } else if (code == EXIT_ASAN && (first_report(head, LSAN_ERRORS, o) ||
                                     first_report(head, ASAN_ERRORS, o))) {
        o->v = strstr(o->message, "LeakSanitizer") ? REPORT_LEAKED
               : strstr(o->message, "SEGV") || strstr(o->message, "BUS") ? REPORT_CRASHED
                                                                          : REPORT_MEMORY;
    } else if (code == EXIT_TSAN && first_report(head, THREAD_ERRORS, o)) {
        o->v = REPORT_RACE;
    } else if (code == EXIT_UBSAN && first_report(head, UBSAN_ERRORS, o)) {
        o->v = REPORT_UNDEFINED;
    } else if (sig == SIGXCPU || sig == SIGXFSZ) {
        o->v = REPORT_LIMIT;
        o->message = sig == SIGXCPU
                         ? fmt("killed by SIGXCPU: over the CPU-time limit (%.0f s); is a "
                               "thread spinning?", 2 * O.timeout)
                         : fmt("killed by SIGXFSZ: output over the limit (%ld MiB); is "
                               "something printing in a loop?", O.fsize_mb);
    } else if (sig) {
        o->v = REPORT_CRASHED;
        o->message = fmt("killed by signal %d (SIG%s)%s", sig, sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
                         sig == SIGKILL ? ": out of memory, or killed from outside?" : "");
        /* A secure build's binary goes with its temporary folder. */
        if (!scratch_temp)
            o->details = fmt("%s\nbacktrace: gdb -q -batch -ex run -ex bt --args %s %s", last,
                             binary, tests[r->test].name);
    } else if (sim_report(head, o)) {
        o->v = REPORT_FAILED;
    } else if (code == CFG_EXIT_STUCK) {
        o->v = REPORT_TIMEOUT;
        o->message = why ? strdup(why) : strdup("the harness's watchdog ended a stuck test");
    } else if (code == CFG_EXIT_THREADS) {
        o->v = REPORT_LIMIT;
        o->message = why ? strdup(why) : fmt("over %d threads", CFG_MAX_THREADS);
    } else if (code == 0 && res == RESULT_PASSED) {
        o->v = REPORT_PASSED;
        o->message = strdup("");
    } else if (code == 0 && res == RESULT_UNCHECKED) {
        const char *note = find_line(tail, "  ... Not checked --  ", true);
        o->v = REPORT_UNCHECKED;
        o->message = note ? one_line(strstr(note, "... Not checked --  ") + 20)
                          : strdup("a check ran out of its budget");
    } else if (code == 1 && why) {
        o->v = REPORT_FAILED;
        o->message = strdup(why);
    } else if (code == EXIT_EXEC || code == 2) {
        o->v = REPORT_ERROR;
        o->message = fmt("could not run the test (exit status %d); see the output", code);
    } else {
        o->v = REPORT_FAILED;
        o->message = fmt("the process exited with status %d before the test finished "
                         "(does something call exit()?)", code);
    }
    free(why);
    if (!o->details && o->v != REPORT_PASSED)
        o->details = strdup(last);
out:
    if (!o->message)
        o->message = strdup("");
    if (!o->details)
        o->details = strdup("");
    free(head);
    free(tail);
}

/* ---- running one test --------------------------------------------------- */

/* The tests' environment. In secure mode only what the harness and the
 * checkers read (a submission must not learn the grader's paths or the
 * instructor's variables); otherwise the grader's own. Either way the
 * sanitizers' options: the user's first, ours win where both set one. */
static void make_test_env(void)
{
    extern char **environ;
    static const char *const PASS[] = { "RAFTLAB_SEED=", "RAFTLAB_SIM_REPLAY=",
                                        "RAFTLAB_SIM_BUSY_S=", "NO_COLOR=", "RAFT_VERBOSE=",
                                        "RAFTLAB_TRACE=", NULL };
    static const struct { const char *name, *ours; } OPTS[] = {
        { "ASAN_OPTIONS", "exitcode=98:detect_leaks=1:halt_on_error=1" },
        { "LSAN_OPTIONS", "exitcode=98" },
        { "TSAN_OPTIONS", "exitcode=97:halt_on_error=0:second_deadlock_stack=1" },
        { "UBSAN_OPTIONS", "exitcode=96:halt_on_error=1:print_stacktrace=1" },
    };
    enum { NOPTS = sizeof OPTS / sizeof OPTS[0] };
    int n = 0;
    while (environ[n])
        n++;
    test_env = calloc((size_t)n + 16, sizeof *test_env);
    if (!test_env)
        die("out of memory");
    int k = 0;
    if (sandboxed) {
        test_env[k++] = "PATH=/usr/local/bin:/usr/bin:/bin";
        test_env[k++] = "HOME=/tmp";
        test_env[k++] = "TMPDIR=/tmp";
        test_env[k++] = "LANG=C.UTF-8";
    }
    for (char **e = environ; *e; e++) {
        bool keep = !sandboxed;
        for (int j = 0; PASS[j] && !keep; j++)
            keep = strncmp(*e, PASS[j], strlen(PASS[j])) == 0;
        for (int j = 0; j < NOPTS; j++)
            if (strncmp(*e, OPTS[j].name, strlen(OPTS[j].name)) == 0 &&
                (*e)[strlen(OPTS[j].name)] == '=')
                keep = false; /* added below, with ours */
        if (strncmp(*e, "RAFTLAB_GRADED=", 15) == 0)
            keep = false;
        if (keep)
            test_env[k++] = *e;
    }
    test_env[k++] = "RAFTLAB_GRADED=1";
    for (int j = 0; j < NOPTS; j++) {
        const char *old = getenv(OPTS[j].name);
        char *v = fmt("%s=%s%s%s", OPTS[j].name, old ? old : "", old && old[0] ? ":" : "",
                      OPTS[j].ours);
        if (!v)
            die("out of memory");
        test_env[k++] = v;
    }
    test_env[k] = NULL;
}

static bool tsan_needs_setarch(void)
{
    /* TSan of gcc 12 / clang 14 fails with high mmap randomisation. */
    FILE *f = fopen("/proc/sys/vm/mmap_rnd_bits", "r");
    int bits = 0;
    if (f) {
        if (fscanf(f, "%d", &bits) != 1)
            bits = 0;
        fclose(f);
    }
    return bits > 28;
}

/* A fresh secret for a run: 128 bits from the kernel, in hex. */
static void new_secret(run *r)
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, sizeof b) != (ssize_t)sizeof b)
        die("cannot read /dev/urandom: %s", strerror(errno));
    close(fd);
    for (int k = 0; k < 16; k++)
        snprintf(r->secret + 2 * k, 3, "%02x", b[k]);
}

static void start_run(run *r)
{
    const test *t = &tests[r->test];
    setf(r->log, sizeof r->log, "%s/%s.%d.log", logdir, t->name, r->iter + 1);
    const char *argv[32];
    int a = 0;
    struct utsname u;
    if (O.san && strcmp(O.san, "thread") == 0 && tsan_needs_setarch() && uname(&u) == 0) {
        argv[a++] = "setarch";
        argv[a++] = u.machine;
        argv[a++] = "-R";
    }
    char supp[PATH_MAX + 32];
    if (O.valgrind && O.valgrind[0]) {
        static char tool[32];
        snprintf(tool, sizeof tool, "--tool=%s", O.valgrind);
        argv[a++] = "valgrind";
        argv[a++] = tool;
        argv[a++] = "-q";
        argv[a++] = "--fair-sched=yes";
        argv[a++] = "--error-exitcode=99";
        argv[a++] = "--num-callers=30";
        argv[a++] = "--child-silent-after-fork=yes";
        argv[a++] = "--vgdb=no";
        if (strcmp(O.valgrind, "memcheck") == 0) {
            argv[a++] = "--leak-check=full";
            argv[a++] = "--errors-for-leak-kinds=definite";
            argv[a++] = "--show-leak-kinds=definite";
        } else if (strcmp(O.valgrind, "helgrind") == 0) {
            snprintf(supp, sizeof supp, "--suppressions=%s", O.supp);
            argv[a++] = supp;
        }
    }
    argv[a++] = binary;
    argv[a++] = t->name;
    argv[a] = NULL;

    /* 0600: the sandbox's user cannot open it again, to read or rewrite it. */
    int out = open(r->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0)
        die("cannot create %s: %s", r->log, strerror(errno));
    /* The secret goes in through a pipe that the harness empties and closes
     * before any code of the submission runs (main.c). */
    new_secret(r);
    int in[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        die("pipe: %s", strerror(errno));
    char line[64];
    int len = snprintf(line, sizeof line, "%s\n", r->secret);
    if (write(in[1], line, (size_t)len) != len)
        die("cannot write to a pipe: %s", strerror(errno));
    close(in[1]);
    bool helgrind = O.valgrind && strcmp(O.valgrind, "helgrind") == 0;
    const char *ro[] = { binary, helgrind ? O.supp : NULL, NULL };
    bool checker = (O.valgrind && O.valgrind[0]) || (O.san && strcmp(O.san, "undefined") != 0);
    sandbox_spec s = {
        .sandboxed = sandboxed, .argv = argv, .envp = test_env, .cwd = sandboxed ? "/tmp" : NULL,
        .ro_paths = ro, .fd_in = in[0], .fd_out = out, .fd_err = out, .own_group = true,
        .limits = { { RLIMIT_CPU, (rlim_t)(2 * O.timeout) },
                    { RLIMIT_FSIZE, (rlim_t)O.fsize_mb << 20 },
                    { RLIMIT_CORE, 0 },
                    { RLIMIT_NPROC, (rlim_t)O.nproc },
                    /* valgrind and ASan/TSan reserve huge address ranges */
                    { RLIMIT_AS, checker ? RLIM_INFINITY : (rlim_t)O.mem_mb << 20 } },
        .nlimits = 5,
    };
    r->t0 = now();
    r->timed_out = false;
    r->killed_at = 0;
    r->deadline = r->t0 + O.timeout;
    char err[256];
    pid_t pid = sandbox_spawn(&s, err, sizeof err);
    close(out);
    close(in[0]);
    if (pid < 0)
        die("cannot start %s: %s", t->name, err);
    r->pid = pid;
}

/* ---- selection ---------------------------------------------------------- */

/* The tests come from the points file: the grader's, never the binary's
 * (a submission's binary could list one test, or one test 21 times). */
static char all_names[MAX_TESTS][128];
static double all_points[MAX_TESTS];
static int nall;

static void load_points(void)
{
    static bool loaded;
    if (loaded)
        return;
    loaded = true;
    FILE *f = fopen(O.points, "r");
    if (!f)
        die("cannot read the points file %s: %s (POINTS=<file> names another)", O.points,
            strerror(errno));
    char line[512];
    for (int ln = 1; fgets(line, sizeof line, f); ln++) {
        line[strcspn(line, "#\r\n")] = '\0';
        char name[128];
        double pts;
        char extra;
        int n = sscanf(line, "%127s %lf %c", name, &pts, &extra);
        if (n <= 0)
            continue;
        if (n != 2 || !(pts >= 0 && pts <= 1e6))
            die("%s:%d: expected 'TestName points', got '%s'", O.points, ln, line);
        if (strncmp(name, "Test", 4) != 0)
            die("%s:%d: '%s': test names start with Test", O.points, ln, name);
        for (int k = 0; k < nall; k++)
            if (strcmp(all_names[k], name) == 0)
                die("%s:%d: %s is listed twice", O.points, ln, name);
        if (nall == MAX_TESTS)
            die("%s: over %d tests", O.points, MAX_TESTS);
        snprintf(all_names[nall], sizeof all_names[0], "%s", name);
        all_points[nall++] = pts;
        points_total += pts;
    }
    fclose(f);
    if (nall == 0)
        die("the points file %s names no test", O.points);
}

/* A test's stage is its name's suffix, one digit and a capital ("3C";
 * TestPersist13C is of stage 3C, not 13C). */
static void stage_of(const char *name, char *stage, size_t len)
{
    size_t n = strlen(name);
    bool suffix = n >= 2 && name[n - 2] >= '0' && name[n - 2] <= '9' && name[n - 1] >= 'A' &&
                  name[n - 1] <= 'Z';
    snprintf(stage, len, "%s", suffix ? name + n - 2 : "?");
}

static void load_tests(void)
{
    load_points();
    bool in_lab[MAX_TESTS];
    int nlab = 0;
    for (int k = 0; k < nall; k++) {
        char stage[16];
        stage_of(all_names[k], stage, sizeof stage);
        in_lab[k] = !O.lab || strcasecmp(O.lab, stage) == 0;
        nlab += in_lab[k];
    }
    if (nlab == 0) {
        fprintf(stderr, "grade: no test of stage '%s' in %s. The stages are:", O.lab, O.points);
        for (int k = 0; k < nall; k++) {
            char stage[16], prev[16] = "";
            stage_of(all_names[k], stage, sizeof stage);
            if (k > 0)
                stage_of(all_names[k - 1], prev, sizeof prev);
            if (strcmp(stage, prev) != 0)
                fprintf(stderr, " %s", stage);
        }
        fprintf(stderr, "\n");
        exit(2);
    }
    bool taken[MAX_TESTS] = { false };
    /* RUN: comma-separated names or patterns, run in the order given; a test
     * named twice runs once. */
    char *spec = strdup(O.run && O.run[0] ? O.run : "*");
    if (!spec)
        die("out of memory");
    for (char *save = NULL, *pat = strtok_r(spec, ",", &save); pat; pat = strtok_r(NULL, ",", &save)) {
        char full[160];
        snprintf(full, sizeof full, "%s%s", strncmp(pat, "Test", 4) == 0 || pat[0] == '*' ? "" : "Test", pat);
        int matched = 0;
        for (int k = 0; k < nall; k++)
            if (in_lab[k] && fnmatch(full, all_names[k], 0) == 0) {
                matched++;
                if (taken[k])
                    continue;
                taken[k] = true;
                test *t = &tests[ntests++];
                setf(t->name, sizeof t->name, "%s", all_names[k]);
                stage_of(all_names[k], t->stage, sizeof t->stage);
                t->max_points = all_points[k];
            }
        if (!matched) {
            fprintf(stderr, "grade: no test matches '%s'%s%s. The tests are:\n", pat,
                    O.lab ? " in stage " : "", O.lab ? O.lab : "");
            for (int k = 0; k < nall; k++)
                if (in_lab[k])
                    fprintf(stderr, "  %s\n", all_names[k]);
            exit(2);
        }
    }
    free(spec);
}

/* ---- output ------------------------------------------------------------- */

/* The seed a sim-mode run printed first ("sim: seed N"), or -1: a native run. */
static long long sim_seed(const char *log)
{
    FILE *f = fopen(log, "r");
    if (!f)
        return -1;
    char line[128];
    long long seed = -1;
    for (int k = 0; k < 5 && seed < 0 && fgets(line, sizeof line, f); k++)
        if (sscanf(line, "sim: seed %lld", &seed) != 1)
            seed = -1;
    fclose(f);
    return seed;
}

/* The command that reruns one test; in sim mode with the run's seed, which
 * replays it exactly. */
static char *rerun_cmd(const char *name, long long seed)
{
    char mode[96] = "";
    if (seed >= 0)
        snprintf(mode, sizeof mode, " SIM=1 SEED=%lld", seed);
    if (O.valgrind && O.valgrind[0])
        snprintf(mode + strlen(mode), sizeof mode - strlen(mode), " VALGRIND=%s", O.valgrind);
    if (O.san && O.san[0])
        snprintf(mode + strlen(mode), sizeof mode - strlen(mode), " SAN=%s", O.san);
    if (O.impl)
        return fmt("make grade IMPL=%s RUN=%s%s", O.impl, name, mode);
    char env[48] = "";
    if (seed >= 0)
        snprintf(env, sizeof env, "RAFTLAB_SEED=%lld ", seed);
    return fmt("%s%s --binary %s --run %s%s%s%s%s", env, kit[0] ? "build/grade" : "grade", binary,
               name, O.valgrind ? " --valgrind " : "", O.valgrind ? O.valgrind : "",
               O.san ? " --san " : "", O.san ? O.san : "");
}

static bool progress_shown;
static int table_lines;

static void clear_progress(void)
{
    if (!tty)
        return;
    if (table_lines > 0)
        printf("\033[%dA\r\033[J", table_lines);
    else if (progress_shown)
        printf("\r\033[K");
    progress_shown = false;
    table_lines = 0;
}

static void show_progress(const run *runs, int nruns, int done, int total)
{
    if (!tty)
        return;
    clear_progress();
    if (O.repeat > 1) {
        for (int k = 0; k < ntests; k++) {
            const test *t = &tests[k];
            printf("  %-*s %4d/%-4d runs  %s%3d failed%s  mean %6.1f s  max %6.1f s\n", name_width(), t->name,
                   t->done, O.repeat, t->failures && color ? "\033[31m" : "", t->failures,
                   t->failures ? plain() : "", t->done ? t->secs / t->done : 0.0, t->max_secs);
            table_lines++;
        }
    }
    int el = (int)(now() - t_start);
    printf("  [%d/%d] %d:%02d", done, total, el / 60, el % 60);
    int shown = 0;
    for (int k = 0; k < nruns && shown < 3; k++)
        if (runs[k].pid > 0) {
            printf("%s %s (%.0f s)", shown ? "," : "  running:", tests[runs[k].test].name,
                   now() - runs[k].t0);
            shown++;
        }
    fflush(stdout);
    progress_shown = true;
}

static void print_failure(const report_test *x, const char *log)
{
    printf("      %s%s%s: %s\n", paint(x->verdict), report_verdict_name(x->verdict), plain(),
           x->message);
    for (const char *p = x->details; *p;) {
        size_t n = strcspn(p, "\n");
        printf("      | %.*s\n", (int)n, p);
        p += n + (p[n] == '\n');
    }
    if (log)
        printf("      output: %s\n", log);
    printf("      rerun:  %s\n", x->rerun);
}

/* A test's result line (in repeat mode, when its last run ended). */
static void show_test(test *t, const char *log)
{
    report_test *x = res_of(t);
    if (O.repeat > 1)
        printf("  %-*s %s%-14s%s %3d/%-3d failed  mean %6.1f s  max %6.1f s\n", name_width(), t->name,
               paint(x->verdict), report_verdict_name(x->verdict), plain(), t->failures, t->done,
               t->secs / t->done, t->max_secs);
    else
        printf("  %-*s %s%-14s%s %6.1f s  %g/%g\n", name_width(), t->name, paint(x->verdict),
               report_verdict_name(x->verdict), plain(), t->secs, x->points, x->max_points);
    if (x->verdict != REPORT_PASSED)
        print_failure(x, log);
    t->shown = true;
}

/* ---- bookkeeping of a finished run ---------------------------------------- */

/* Stage 4 prints the history it checked when the check failed or could
 * not decide, from a line "lincheck-history 1" to "# end of history":
 * saved beside the run's log as <log>.history (for build/lincheck), whose
 * path goes into *path. The log is the process's output: a forged block
 * only misleads its own diagnosis. */
static bool save_history(const char *log, char *path, size_t size)
{
    FILE *in = fopen(log, "r");
    if (!in)
        return false;
    snprintf(path, size, "%s.history", log);
    FILE *out = NULL;
    char *line = NULL;
    size_t cap = 0;
    bool done = false;
    while (!done && getline(&line, &cap, in) > 0) {
        if (!out && strcmp(line, "lincheck-history 1\n") == 0)
            out = fopen(path, "w");
        if (!out)
            continue;
        done = strcmp(line, "# end of history\n") == 0;
        fputs(line, out);
    }
    free(line);
    fclose(in);
    if (out && fclose(out) == 0 && done)
        return true;
    unlink(path);
    return false;
}

/* The picture of a run: its trace block (if it printed one) in the
 * viewer, as TestX.1.html beside TestX.1.log, whose path goes into *path. */
static bool save_picture(const char *log, char *path, size_t size)
{
    char tmpl[PATH_MAX + 64], err[512];
    snprintf(tmpl, sizeof tmpl, "%s%sgrader/trace/viewer.html", kit, kit[0] ? "/" : "");
    size_t n = strlen(log);   /* TestX.1.log: TestX.1.html */
    if (n > 4 && strcmp(log + n - 4, ".log") == 0)
        n -= 4;
    snprintf(path, size, "%.*s.html", (int)n, log);
    int rc = html_write(log, tmpl, path, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "grade: no picture of %s: %s\n", log, err);
    return rc == 0;
}

static void finish_run(run *r, int status, const struct rusage *ru)
{
    test *t = &tests[r->test];
    double secs = now() - r->t0;
    double cpu = (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
                 (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
    outcome o = { 0 };
    classify(r, status, &o, &cpu);
    long long seed = sim_seed(r->log);
    /* Only failing runs' output is kept (the folder goes if none is),
     * unless --keep-logs. */
    char kept[PATH_MAX] = "";
    if (o.v == REPORT_PASSED && !O.keep_logs) {
        unlink(r->log);
    } else {
        if (o.v != REPORT_PASSED)
            snprintf(kept, sizeof kept, "%s", r->log);
        kept_logs++;
    }

    char history[PATH_MAX + 16] = "";
    if (kept[0] && !save_history(kept, history, sizeof history))
        history[0] = '\0';
    char picture[PATH_MAX + 16] = "";
    if ((kept[0] || O.trace) && !save_picture(r->log, picture, sizeof picture))
        picture[0] = '\0';

    t->done++;
    t->secs += secs;
    t->cpu += cpu;
    if (secs > t->max_secs)
        t->max_secs = secs;
    if (o.v != REPORT_PASSED)
        t->failures++;
    if (!t->entry) {
        char *rerun = rerun_cmd(t->name, seed);
        /* report_add copies the strings; the casts only drop const. */
        report_test x = { .impl = (char *)(O.impl ? O.impl : binary), .name = t->name, .stage = t->stage,
                          .verdict = o.v, .message = o.message, .details = o.details,
                          .rerun = rerun, .max_points = t->max_points };
        report_test *added = report_add(&rep, &x);
        free(rerun);
        if (!added)
            exit(2);
        t->entry = rep.n;
    } else if (res_of(t)->verdict == REPORT_PASSED && o.v != REPORT_PASSED) {
        /* The first failing run is the one reported. */
        free(res_of(t)->message);
        free(res_of(t)->details);
        res_of(t)->message = o.message;
        res_of(t)->details = o.details;
        res_of(t)->verdict = o.v;
        o.message = o.details = NULL;
        char *rerun = rerun_cmd(t->name, seed); /* that run's seed, in sim mode */
        if (rerun) {
            free(res_of(t)->rerun);
            res_of(t)->rerun = rerun;
        }
    }
    report_test *x = res_of(t);
    x->runs = t->done;
    x->failures = t->failures;
    x->seconds = t->secs;
    x->max_seconds = t->max_secs;
    x->cpu_seconds = t->cpu;
    x->points = t->failures == 0 && x->verdict == REPORT_PASSED ? x->max_points : 0;

    if (O.repeat == 1) {
        clear_progress();
        show_test(t, kept[0] ? kept : NULL);
        if (history[0])
            printf("      history checked: %s  (build/lincheck FILE explains it)\n", history);
        if (picture[0])
            printf("      picture: %s  (open it in a browser)\n", picture);
    } else if (o.v != REPORT_PASSED) {
        clear_progress();
        printf("  %s run %d: %s%s%s: %s\n      output: %s\n", t->name, r->iter + 1, paint(o.v),
               report_verdict_name(o.v), plain(), o.message ? o.message : x->message, kept);
        if (history[0])
            printf("      history checked: %s\n", history);
        if (picture[0])
            printf("      picture: %s\n", picture);
        char *replay = seed >= 0 ? rerun_cmd(t->name, seed) : NULL; /* each run its seed */
        if (replay)
            printf("      replay: %s\n", replay);
        free(replay);
    }
    if (O.repeat > 1 && t->done == O.repeat && !tty) {
        report_test *y = res_of(t);
        printf("  %-*s %3d/%-3d failed  mean %6.1f s  max %6.1f s  %s\n", name_width(), t->name, t->failures,
               t->done, t->secs / t->done, t->max_secs, report_verdict_name(y->verdict));
    }
    fflush(stdout);
    free(o.message);
    free(o.details);
}

/* ---- the scheduler ------------------------------------------------------ */

static void kill_all(run *runs, int n)
{
    for (int k = 0; k < n; k++)
        if (runs[k].pid > 0)
            kill(-runs[k].pid, SIGKILL);
}

static void run_all(void)
{
    int total = ntests * O.repeat, next = 0, done = 0;
    int nslots = O.jobs < total ? O.jobs : total;
    run *runs = calloc((size_t)nslots, sizeof *runs);
    if (!runs)
        die("out of memory");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    double last_draw = 0;
    while (done < total) {
        int done_before = done;
        for (int k = 0; k < nslots && next < total; k++)
            if (runs[k].pid <= 0) {
                /* As make stops at its first error: a stage with a failure
                 * ends the grading before the next stage begins. */
                const test *nt = &tests[next / O.repeat];
                for (int j = 0; O.stop_stage && j < next / O.repeat && !stopped_after[0]; j++)
                    if (tests[j].failures && strcmp(tests[j].stage, nt->stage) != 0)
                        snprintf(stopped_after, sizeof stopped_after, "%s", tests[j].stage);
                if (stopped_after[0]) {
                    total = next;
                    break;
                }
                /* Test-major order: every run of a test, then the next. */
                runs[k].test = next / O.repeat;
                runs[k].iter = next % O.repeat;
                start_run(&runs[k]);
                next++;
            }
        for (;;) {
            /* Peek first: while the leader is a zombie its group id cannot
             * be reused, so the strays it left can be killed safely. */
            siginfo_t si = { 0 };
            if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
                if (errno != ECHILD)
                    die("waitid: %s", strerror(errno));
                break;
            }
            if (si.si_pid == 0)
                break;
            kill(-si.si_pid, SIGKILL);
            int st;
            struct rusage ru;
            if (wait4(si.si_pid, &st, 0, &ru) != si.si_pid)
                die("wait4: %s", strerror(errno));
            for (int k = 0; k < nslots; k++)
                if (runs[k].pid == si.si_pid) {
                    finish_run(&runs[k], st, &ru);
                    runs[k].pid = 0;
                    done++;
                    last_draw = 0;
                }
        }
        double t = now();
        for (int k = 0; k < nslots; k++) {
            run *r = &runs[k];
            if (r->pid <= 0)
                continue;
            if (!r->timed_out && t > r->deadline) {
                r->timed_out = true;
                r->killed_at = t;
                kill(-r->pid, SIGTERM);
            } else if (r->timed_out && t > r->killed_at + TERM_GRACE_S) {
                kill(-r->pid, SIGKILL);
            }
        }
        if (done < total && t - last_draw >= 0.5) {
            show_progress(runs, nslots, done, total);
            last_draw = t;
        }
        if (done == total)
            break;
        if (done != done_before)
            continue; /* start the next runs before sleeping */
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        int s = sigtimedwait(&set, NULL, &ts);
        if (s == SIGINT || s == SIGTERM || s == SIGHUP) {
            kill_all(runs, nslots);
            clear_progress();
            fprintf(stderr, "grade: interrupted; the running tests were killed\n");
            exit(130);
        }
    }
    clear_progress();
    if (O.repeat > 1 && tty)
        for (int k = 0; k < ntests; k++)
            if (tests[k].entry)
                printf("  %-*s %3d/%-3d failed  mean %6.1f s  max %6.1f s  %s\n", name_width(), tests[k].name,
                       tests[k].failures, tests[k].done, tests[k].secs / tests[k].done,
                       tests[k].max_secs, report_verdict_name(res_of(&tests[k])->verdict));
    free(runs);
}

/* ---- summary ------------------------------------------------------------ */

static int summary(void)
{
    int passed = 0;
    double pts = 0, max = 0;
    printf("\nSummary\n  %-*s %-14s %8s %8s", name_width(), "test", "verdict", "time", "points");
    if (O.repeat > 1)
        printf("  %s", "runs failed");
    printf("\n");
    for (int k = 0; k < ntests; k++) {
        report_test *x = res_of(&tests[k]);
        passed += x->verdict == REPORT_PASSED;
        pts += x->points;
        max += x->max_points;
        char pts_s[48];
        snprintf(pts_s, sizeof pts_s, "%g/%g", x->points, x->max_points);
        printf("  %-*s %s%-14s%s %6.1f s %8s", name_width(), x->name, paint(x->verdict),
               report_verdict_name(x->verdict), plain(), x->seconds / x->runs, pts_s);
        if (O.repeat > 1)
            printf("  %4d %6d", x->runs, x->failures);
        printf("\n");
    }
    printf("\n  %-6s %7s %10s %10s\n", "stage", "passed", "wall", "cpu");
    double wall_all = 0, cpu_all = 0;
    for (int k = 0; k < ntests; k++) {
        bool first = true;
        for (int j = 0; j < k; j++)
            first &= strcmp(tests[j].stage, tests[k].stage) != 0;
        if (!first)
            continue;
        int n = 0, ok = 0;
        double wall = 0, cpu = 0;
        for (int j = k; j < ntests; j++)
            if (strcmp(tests[j].stage, tests[k].stage) == 0) {
                n++;
                ok += res_of(&tests[j])->verdict == REPORT_PASSED;
                wall += tests[j].secs;
                cpu += tests[j].cpu;
            }
        printf("  %-6s %3d/%-3d %8.1f s %8.2f s\n", tests[k].stage, ok, n, wall, cpu);
        wall_all += wall;
        cpu_all += cpu;
    }
    printf("  %-6s %3d/%-3d %8.1f s %8.2f s   (elapsed %.1f s)\n", "total", passed, ntests,
           wall_all, cpu_all, now() - t_start);
    printf("\nPoints: %g/%g\n", pts, max);
    if (kept_logs)
        printf("Output of the %s runs: %s\n", O.keep_logs ? "tests'" : "failing", logdir);
    printf("%s%d passed, %d failed%s\n", passed == ntests ? paint(REPORT_PASSED) : paint(REPORT_FAILED),
           passed, ntests - passed, plain());
    return passed == ntests ? 0 : 1;
}

/* ---- options ------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
"usage: grade [options]                 grade the Raft of --impl (default labs)\n"
"       grade --merge A.json B.json ... merge JSON reports into one, on stdout\n"
"\n"
"The submission is built from its own files only and checked against the\n"
"rules of handouts/rules.md (verdict \"build refused\" otherwise). Each test runs\n"
"in its own process with a wall-clock limit and hard resource limits; the\n"
"verdict is one of: passed, not checked (stage 4: the linearizability check ran\n"
"out of budget; no points), failed, crashed, timed out, memory errors, leaked,\n"
"data race, undefined behaviour, resource limit, build refused, grader error.\n"
"\n"
"Security:\n"
"  --secure          the default: every build and test in a sandbox (bubblewrap);\n"
"                    refuses to grade when no sandbox can be made\n"
"  --no-secure       no sandbox: for code you trust (make grade of labs/ and\n"
"                    solution/ uses it)\n"
"What to grade (make grade sets these from its variables of the same names):\n"
"  --impl DIR        the folder holding raft/raft.c: labs, solution or a path\n"
"                    (IMPL=); its raft/*.c and *.h are built against the kit\n"
"  --sim             build it in sim mode: virtual time, a seed (SIM=1)\n"
"  --binary FILE     grade this raft_test binary (built by the kit: trusted)\n"
"  --lab STAGE       only this stage: 3A, 3B, 3C, 3D, 4A, 4B, 4C (LAB=)\n"
"  --stop-after-failing-stage  stages in order; none after one with a failure\n"
"                    (make grade of labs/ without LAB, RUN, REPEAT or ALL=1)\n"
"  --run LIST        tests by name (\"Test\" optional) or glob pattern, comma-\n"
"                    separated, run in that order (RUN=), e.g. 'Backup3B,*3A'\n"
"Checkers:\n"
"  --valgrind TOOL   memcheck, helgrind or drd (VALGRIND=); limits x%d\n"
"  --san KIND        address, undefined or thread: a sanitizer build (SAN=)\n"
"  --supp FILE       helgrind suppressions (default grader/helgrind.supp)\n"
"Repeats:\n"
"  --repeat N        run each test N times (REPEAT=); default 1, and with --sim\n"
"                    %d, each on its own seed (unless RAFTLAB_SEED fixes one)\n"
"  --jobs J          J runs at a time (JOBS=); default 1, with --sim one a CPU\n"
"Limits (per test process):\n"
"  --timeout S       wall-clock seconds before the group is killed\n"
"                    (default %d, x%d under valgrind, x2 with SAN=thread)\n"
"  --mem-limit MB    address space (default %ld; not under valgrind/ASan/TSan)\n"
"  --fsize-limit MB  largest output (default %ld)\n"
"  --nproc N         processes+threads of the user (default %ld; root is exempt\n"
"                    but secure mode runs tests as nobody; the harness itself\n"
"                    stops a test past %d threads)\n"
"Points and reports:\n"
"  --points FILE     'TestName points' lines (POINTS=; default grader/points.txt)\n"
"  --json FILE       JSON report (JSON=)\n"
"  --junit FILE      JUnit XML report (JUNIT=)\n"
"  --gradescope FILE Gradescope results.json (GRADESCOPE=)\n"
"  --logs DIR        where failing runs' output is kept\n"
"                    (default build/grade-logs/<impl>-<date>; build/grade-logs/latest\n"
"                    names the last such folder)\n"
"  --keep-logs       keep every run's output, passing ones too (make grade\n"
"                    does when RAFT_VERBOSE is set)\n"
"  --trace           a picture (TestX.N.html) of every run, passing ones too\n"
"                    (TRACE=1); failing runs always get one\n"
"  --dry-run         check the options and print the tests they select; build\n"
"                    and run nothing (make grade DRY=1)\n"
"  -h, --help        this text\n"
"\n"
"Output: a line per test (colour on a terminal unless NO_COLOR is set), each\n"
"failure with its message, last output lines and the command that reruns it;\n"
"then a summary: per test, per stage (wall and CPU time), points.\n"
"Exit status: 0 every selected test passed; 1 some did not; 2 usage or build\n"
"error.\n",
            VALGRIND_FACTOR, SIM_SEEDS, TEST_LIMIT_S, VALGRIND_FACTOR, O.mem_mb, O.fsize_mb, O.nproc,
            CFG_MAX_THREADS);
}

static long parse_num(const char *flag, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        die("%s wants a number from %ld to %ld, not '%s'", flag, lo, hi, s);
    return v;
}

static const char *empty_null(const char *s) { return s && s[0] ? s : NULL; }

static void parse_args(int argc, char **argv)
{
    enum { IMPL = 256, BINARY, LAB, RUN, VALGRIND, SAN, SUPP, REPEAT, JOBS, TIMEOUT, MEM,
           FSIZE, NPROC, POINTS, JSON, JUNIT, GRADESCOPE, LOGS, SECURE, NO_SECURE, SIM, STOP,
           KEEP, DRY, TRACE };
    static const struct option lo[] = {
        { "impl", 1, 0, IMPL }, { "binary", 1, 0, BINARY }, { "lab", 1, 0, LAB },
        { "run", 1, 0, RUN }, { "valgrind", 1, 0, VALGRIND }, { "san", 1, 0, SAN },
        { "supp", 1, 0, SUPP }, { "repeat", 1, 0, REPEAT }, { "jobs", 1, 0, JOBS },
        { "timeout", 1, 0, TIMEOUT }, { "mem-limit", 1, 0, MEM }, { "fsize-limit", 1, 0, FSIZE },
        { "nproc", 1, 0, NPROC }, { "points", 1, 0, POINTS }, { "json", 1, 0, JSON },
        { "junit", 1, 0, JUNIT }, { "gradescope", 1, 0, GRADESCOPE }, { "logs", 1, 0, LOGS },
        { "secure", 0, 0, SECURE }, { "no-secure", 0, 0, NO_SECURE }, { "sim", 0, 0, SIM },
        { "stop-after-failing-stage", 0, 0, STOP }, { "keep-logs", 0, 0, KEEP },
        { "dry-run", 0, 0, DRY }, { "trace", 0, 0, TRACE },
        { "help", 0, 0, 'h' }, { 0, 0, 0, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case IMPL: O.impl = empty_null(optarg); break;
        case BINARY: O.binary = empty_null(optarg); break;
        case LAB: O.lab = empty_null(optarg); break;
        case RUN: O.run = empty_null(optarg); break;
        case VALGRIND: O.valgrind = empty_null(optarg); break;
        case SAN: O.san = empty_null(optarg); break;
        case SUPP: O.supp = optarg; break;
        case REPEAT: O.repeat = (int)parse_num("--repeat", optarg, 1, 100000); break;
        case JOBS: O.jobs = (int)parse_num("--jobs", optarg, 1, 1024); break;
        case TIMEOUT: O.timeout = (double)parse_num("--timeout", optarg, 1, 1000000); break;
        case MEM: O.mem_mb = parse_num("--mem-limit", optarg, 64, 1L << 30); break;
        case FSIZE: O.fsize_mb = parse_num("--fsize-limit", optarg, 1, 1L << 30); break;
        case NPROC: O.nproc = parse_num("--nproc", optarg, 16, 1L << 30); break;
        case POINTS: O.points = empty_null(optarg); break;
        case JSON: O.json = empty_null(optarg); break;
        case JUNIT: O.junit = empty_null(optarg); break;
        case GRADESCOPE: O.gradescope = empty_null(optarg); break;
        case LOGS: O.logs = empty_null(optarg); break;
        case SECURE: O.secure = true; break;
        case NO_SECURE: O.secure = false; break;
        case SIM: O.sim = true; break;
        case STOP: O.stop_stage = true; break;
        case KEEP: O.keep_logs = true; break;
        case DRY: O.dry_run = true; break;
        case TRACE: O.trace = O.keep_logs = true; break;
        case 'h': usage(stdout); exit(0);
        default:
            fprintf(stderr, "grade: see 'build/grade --help' for the options\n");
            exit(2);
        }
    }
    if (optind < argc)
        die("unexpected argument '%s'; see --help", argv[optind]);
    if (O.valgrind && strcmp(O.valgrind, "memcheck") && strcmp(O.valgrind, "helgrind") &&
        strcmp(O.valgrind, "drd"))
        die("unknown valgrind tool '%s': use memcheck, helgrind or drd", O.valgrind);
    if (O.san && strcmp(O.san, "address") && strcmp(O.san, "undefined") && strcmp(O.san, "thread"))
        die("unknown sanitizer '%s': use address, undefined or thread", O.san);
    if (O.san && O.valgrind)
        die("VALGRIND and SAN do not mix: a sanitizer build does not run under valgrind");
    if (O.sim && O.binary)
        die("--sim builds --impl in virtual time; a --binary is already built");
}

/* The kit's root: the folder above the one holding this program. */
static void find_kit(const char *argv0)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        if (!realpath(argv0, exe))
            return;
    } else {
        exe[n] = '\0';
    }
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash)
            return;
        *slash = '\0';
    }
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof probe, "%s/grader/raft/raft.h", exe);
    if (access(probe, R_OK) == 0)
        snprintf(kit, sizeof kit, "%s", exe);
}

/* The build did not give a binary: with JSON=, JUNIT= or GRADESCOPE=, a
 * report of one entry "build" (0 of every point) that says why, so that a
 * batch of submissions still gets a report for each; then exits (2, or 1
 * when the policy refused the submission: a verdict on it, not an error). */
static void build_entry(report_verdict v, const char *message, const char *details,
                        const char *rerun) __attribute__((noreturn));
static void build_entry(report_verdict v, const char *message, const char *details,
                        const char *rerun)
{
    if (O.json || O.junit || O.gradescope) {
        load_points();
        report_test x = { .impl = (char *)(O.impl ? O.impl : binary), .name = "build",
                          .stage = "", .verdict = v, .message = (char *)message,
                          .details = (char *)details, .rerun = (char *)rerun,
                          .max_points = points_total };
        if (!report_add(&rep, &x) ||
            (O.json && report_write_json(&rep, O.json) != 0) ||
            (O.junit && report_write_junit(&rep, O.junit) != 0) ||
            (O.gradescope && report_write_gradescope(&rep, O.gradescope) != 0))
            fprintf(stderr, "grade: could not write the reports\n");
        report_free(&rep);
    }
    fflush(stdout);
    exit(v == REPORT_REFUSED ? 1 : 2);
}

static void remove_scratch(void)
{
    if (scratch_temp && scratch[0])
        build_remove_tree(scratch);
}

/* Builds the submission of --impl (build.h); sets binary. In secure mode in
 * a temporary folder; otherwise in build/grade-build/<impl>, where it stays
 * for a debugger. */
static void build_impl(void)
{
    if (!kit[0])
        die("cannot find the kit (grader/raft/raft.h above this program) to build --impl %s; "
            "give --binary", O.impl);
    char impl[PATH_MAX];
    if (!realpath(O.impl, impl))
        die("IMPL %s: %s", O.impl, strerror(errno));
    if (sandboxed) {
        const char *tmp = getenv("TMPDIR");
        setf(scratch, sizeof scratch, "%s/raftlab-grade.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
        if (!mkdtemp(scratch))
            die("cannot create a folder in %s: %s", tmp && tmp[0] ? tmp : "/tmp", strerror(errno));
        scratch_temp = true;
        atexit(remove_scratch);
    } else {
        char tag[PATH_MAX];
        snprintf(tag, sizeof tag, "%s", O.impl);
        for (char *p = tag; *p; p++)
            if (*p == '/' || *p == '.')
                *p = '_';
        setf(scratch, sizeof scratch, "%s/build/grade-build/%s%s%s%s", kit, tag,
             O.sim ? "-sim" : "", O.san ? "-san-" : "", O.san ? O.san : "");
        char parent[PATH_MAX];
        setf(parent, sizeof parent, "%s/build/grade-build", kit);
        mkdir(parent, 0755);
    }
    build_spec spec = { .kit = kit, .impl = impl, .san = O.san, .sim = O.sim,
                        .sandboxed = sandboxed, .dir = scratch };
    build_result res;
    build_status st = build_submission(&spec, &res);
    const char *out = res.output ? res.output : "";
    if (st == BUILD_OK) {
        fputs(out, stderr); /* the compiler's warnings, as make would show them */
        setf(binary, sizeof binary, "%s", res.binary);
        build_result_free(&res);
        return;
    }
    char rerun[PATH_MAX + 64];
    snprintf(rerun, sizeof rerun, "make grade IMPL=%s", O.impl);
    if (st == BUILD_REFUSED) {
        int n = 0;
        for (const char *p = out; *p; p++)
            n += *p == '\n';
        char msg[512];
        snprintf(msg, sizeof msg, "the submission does what no submission may (%d problem%s): "
                 "%.*s", n, n == 1 ? "" : "s", (int)strcspn(out, "\n"), out);
        printf("  %-*s %s%-14s%s 0/%g\n", name_width(), "build", paint(REPORT_REFUSED),
               report_verdict_name(REPORT_REFUSED), plain(), points_total);
        for (const char *p = out; *p;) {
            size_t len = strcspn(p, "\n");
            printf("      | %.*s\n", (int)len, p);
            p += len + (p[len] == '\n');
        }
        printf("      The rules: handouts/rules.md. Nothing was run: 0 points.\n");
        build_entry(REPORT_REFUSED, msg, out, rerun);
    }
    fflush(stdout);
    fputs(out, stderr);
    if (out[0] && out[strlen(out) - 1] != '\n')
        fputc('\n', stderr);
    /* The compiler's first error as the message, its last lines as details. */
    const char *first = strstr(out, "error");
    char msg[512];
    if (st == BUILD_ERROR)
        snprintf(msg, sizeof msg, "the grader could not build: %.*s", (int)strcspn(out, "\n"), out);
    else if (first) {
        while (first > out && first[-1] != '\n')
            first--;
        snprintf(msg, sizeof msg, "the build failed: %.*s", (int)strcspn(first, "\n"), first);
    } else {
        snprintf(msg, sizeof msg, "the build failed: %.*s", (int)strcspn(out, "\n"), out);
    }
    size_t len = strlen(out);
    const char *tail = out;
    for (int lines = 0; len > 0; len--)
        if (out[len - 1] == '\n' && ++lines > 30) {
            tail = out + len;
            break;
        }
    fprintf(stderr, "grade: the build of %s failed (see above): fix the errors (or use WERROR=0 "
            "for warnings)\n", O.impl);
    build_entry(REPORT_ERROR, msg, tail, rerun);
}

/* Whether name is an executable in PATH (no shell asked). */
static bool in_path(const char *name)
{
    const char *path = getenv("PATH");
    char *copy = strdup(path && path[0] ? path : "/usr/bin:/bin");
    bool found = false;
    for (char *save = NULL, *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !found;
         d = strtok_r(NULL, ":", &save)) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", d, name);
        found = access(p, X_OK) == 0;
    }
    free(copy);
    return found;
}

static void make_logdir(void)
{
    if (O.logs) {
        snprintf(logdir, sizeof logdir, "%s", O.logs);
    } else {
        char stamp[32], tag[64];
        time_t t = time(NULL);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&t));
        snprintf(tag, sizeof tag, "%s", O.impl ? O.impl : "binary");
        for (char *p = tag; *p; p++)
            if (*p == '/')
                *p = '_';
        setf(logdir, sizeof logdir, "%s%sbuild/grade-logs/%s-%s-%d", kit, kit[0] ? "/" : "",
                 tag, stamp, (int)getpid());
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", logdir);
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die("cannot create the log folder %s: %s (--logs names another)", logdir, strerror(errno));
}

/* build/grade-logs/latest names the default log folder just kept, so that
 * a handout can give a path that always works. Best effort: a failure
 * here only loses the shortcut. */
static void link_latest(void)
{
    const char *base = strrchr(logdir, '/');
    if (!base)
        return;
    char tmp[PATH_MAX], dst[PATH_MAX];
    int n = (int)(base - logdir);
    setf(dst, sizeof dst, "%.*s/latest", n, logdir);
    setf(tmp, sizeof tmp, "%.*s/.latest.%d", n, logdir, (int)getpid());
    unlink(tmp);
    if (symlink(base + 1, tmp) != 0 || rename(tmp, dst) != 0)
        unlink(tmp);
}

/* --dry-run: what the options select, and that the folder to grade holds a
 * Raft; nothing is built or run. Bad options have already ended the run
 * (exit 2) with their message. */
static void dry_run(void)
{
    if (O.impl) {
        char raft_c[PATH_MAX + 16];
        setf(raft_c, sizeof raft_c, "%s/raft/raft.c", O.impl);
        if (access(raft_c, R_OK) != 0)
            die("IMPL %s: no %s (%s)", O.impl, raft_c, strerror(errno));
    }
    load_tests();
    printf("grade: would run %d test%s of %s%s%s%s%s%s, %d run%s each, limit %.0f s:\n", ntests,
           ntests == 1 ? "" : "s", O.impl ? O.impl : binary, O.sim ? " in sim mode" : "",
           O.valgrind ? " under " : "", O.valgrind ? O.valgrind : "", O.san ? ", SAN=" : "",
           O.san ? O.san : "", O.repeat, O.repeat == 1 ? "" : "s", O.timeout);
    for (int k = 0; k < ntests; k++)
        printf("  %s\n", tests[k].name);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    for (int k = 1; k < argc; k++)
        if (strcmp(argv[k], "--merge") == 0) {
            if (k != 1 || argc < 3)
                die("usage: grade --merge A.json B.json ... > all.json");
            return report_merge((const char *const *)argv + 2, argc - 2, stdout) == 0 ? 0 : 2;
        }
    find_kit(argv[0]);
    parse_args(argc, argv);
    tty = isatty(1);
    const char *nc = getenv("NO_COLOR");
    color = tty && !(nc && nc[0]);
    if (!O.impl && !O.binary)
        O.impl = "labs";
    /* A fixed seed (RAFTLAB_SEED, make grade SEED=) replays one schedule. */
    const char *seed = getenv("RAFTLAB_SEED");
    bool many_seeds = O.sim && !(seed && seed[0]);
    if (O.repeat <= 0)
        O.repeat = many_seeds ? SIM_SEEDS : 1;
    if (O.jobs <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        O.jobs = many_seeds && cpus > 1 ? (int)(cpus < 64 ? cpus : 64) : 1;
    }
    if (O.timeout <= 0)
        O.timeout = TEST_LIMIT_S * (O.valgrind ? VALGRIND_FACTOR : O.san && !strcmp(O.san, "thread") ? 2 : 1);
    static char supp[PATH_MAX], points[PATH_MAX];
    if (!O.supp) {
        setf(supp, sizeof supp, "%s%sgrader/helgrind.supp", kit, kit[0] ? "/" : "");
        O.supp = supp;
    }
    if (!O.points) {
        setf(points, sizeof points, "%s%sgrader/points.txt", kit, kit[0] ? "/" : "");
        O.points = points;
    }
    if (O.valgrind && strcmp(O.valgrind, "helgrind") == 0) {
        static char supp_abs[PATH_MAX]; /* bound into the sandbox by its path */
        if (!realpath(O.supp, supp_abs))
            die("cannot read the helgrind suppressions %s; give --supp FILE", O.supp);
        O.supp = supp_abs;
    }
    if (O.valgrind && !in_path("valgrind"))
        die("VALGRIND=%s but valgrind is not installed (apt-get install valgrind)", O.valgrind);
    if (O.binary) {
        if (!realpath(O.binary, binary))
            die("--binary %s: %s", O.binary, strerror(errno));
    }
    if (O.dry_run) {
        dry_run();
        return 0;
    }
    /* The first line says whether anything protects the machine. */
    if (O.secure) {
        sandboxed = sandbox_probe(no_sandbox, sizeof no_sandbox);
        if (!sandboxed) {
            printf("grade: %s: REFUSED: secure mode needs a sandbox, and %s. --no-secure grades "
                   "without one, for code you trust only.\n", O.impl ? O.impl : binary, no_sandbox);
            char msg[700];
            snprintf(msg, sizeof msg, "not graded: secure mode needs a sandbox, and %s", no_sandbox);
            rep.sandbox = "none: no sandbox could be made";
            build_entry(REPORT_ERROR, msg, "", "");
        }
        printf("grade: %s: secure mode: every build and test in a sandbox (bubblewrap: own PID "
               "and network namespaces, read-only system, hard limits%s)\n",
               O.impl ? O.impl : binary, geteuid() == 0 ? ", user nobody" : "");
    } else {
        snprintf(no_sandbox, sizeof no_sandbox, "--no-secure");
        printf("grade: %s: not sandboxed (--no-secure): for code you trust, such as your own\n",
               O.impl ? O.impl : binary);
    }
    static char sandbox_desc[700];
    snprintf(sandbox_desc, sizeof sandbox_desc, "%s", sandboxed ? (geteuid() == 0 ?
             "bubblewrap: own PID, network, IPC and user namespaces, read-only system, hard "
             "limits, user nobody" : "bubblewrap: own PID, network, IPC and user namespaces, "
             "read-only system, hard limits") : "none (--no-secure)");
    rep.sandbox = sandbox_desc;
    fflush(stdout);
    load_points();
    if (!O.binary)
        build_impl();
    if (access(binary, X_OK) != 0)
        die("%s is not an executable: build it first (make raft_test IMPL=...)", binary);
    if (O.trace && setenv("RAFTLAB_TRACE", "1", 1) != 0)
        die("out of memory");
    make_test_env();
    load_tests();
    make_logdir();

    t_start = now();
    printf("grade: %d test%s of %s%s%s%s%s, %d run%s each, %d at a time, limit %.0f s\n", ntests,
           ntests == 1 ? "" : "s", O.impl ? O.impl : binary, O.valgrind ? " under " : "",
           O.valgrind ? O.valgrind : "", O.san ? ", SAN=" : "", O.san ? O.san : "", O.repeat,
           O.repeat == 1 ? "" : "s", O.jobs, O.timeout);
    fflush(stdout);
    run_all();
    if (stopped_after[0]) /* the tests of later stages did not run */
        for (int k = 0; k < ntests; k++)
            if (!tests[k].entry) {
                ntests = k;
                break;
            }
    if (!kept_logs)
        rmdir(logdir);
    else if (!O.logs)
        link_latest();
    int rc = summary();
    if (stopped_after[0]) {
        printf("\nStopped after stage %s, which has failures: the later stages did not run.\n"
               "Fix %s first, or grade every stage anyway: make grade ALL=1\n",
               stopped_after, stopped_after);
        rc = rc ? rc : 1;
    }
    fflush(stdout);
    if (O.json && report_write_json(&rep, O.json) != 0)
        rc = 2;
    if (O.junit && report_write_junit(&rep, O.junit) != 0)
        rc = 2;
    if (O.gradescope && report_write_gradescope(&rep, O.gradescope) != 0)
        rc = 2;
    report_free(&rep);
    return rc;
}
