/* report: the grader's results and the files it writes about them.
 *
 * A report holds one entry per test (per implementation, when reports of
 * several submissions are merged): its verdict, the message of its first
 * failing run, its times, runs and points. The grader (grade.c) fills one in
 * as tests finish; this module writes it as JSON, JUnit XML or Gradescope's
 * results.json, and merges JSON reports (--merge).
 *
 * Strings may hold any bytes (test output is not trusted): the writers
 * always produce valid UTF-8 JSON and well-formed XML 1.0 (invalid UTF-8 and
 * characters XML cannot hold become U+FFFD; no CDATA). A file is written
 * atomically: to a temporary file in the same folder, synced, then renamed
 * over the target, so the target is either the old file or the whole new
 * one. ("-" is stdout, and a device or pipe is written in place.)
 *
 * Ownership: a report owns every string in it (malloc'd copies);
 * report_free frees them. Thread safety: none; the grader is one thread.
 */
#ifndef RAFTLAB_REPORT_H
#define RAFTLAB_REPORT_H

#include <stdbool.h>
#include <stdio.h>

/* Verdicts, from best to worst for sorting. */
typedef enum report_verdict {
    REPORT_PASSED,
    REPORT_UNCHECKED,  /* ran to its end, but a check could not decide in its
                        * budget (stage 4's linearizability): no points */
    REPORT_FAILED,     /* the harness failed the test (or it exited early) */
    REPORT_CRASHED,    /* killed by a signal */
    REPORT_TIMEOUT,    /* over the wall-clock limit */
    REPORT_MEMORY,     /* memcheck or AddressSanitizer errors */
    REPORT_LEAKED,     /* definite leaks */
    REPORT_RACE,       /* helgrind, DRD or ThreadSanitizer */
    REPORT_UNDEFINED,  /* UndefinedBehaviorSanitizer */
    REPORT_LIMIT,      /* killed for a resource limit */
    REPORT_REFUSED,    /* the build broke the rules (grader/policy.h): not run */
    REPORT_ERROR,      /* the grader could not run the test */
    REPORT_NVERDICTS
} report_verdict;

typedef struct report_test {
    char *impl;           /* the implementation graded ("labs", a folder) */
    char *name;           /* "TestInitialElection3A" */
    char *stage;          /* "3A" */
    report_verdict verdict;   /* of the first failing run, else passed */
    char *message;        /* one line; the first failing run's, or "" */
    char *details;        /* first report or last output lines, or "" */
    char *rerun;          /* command that reruns this test, or "" */
    double seconds;       /* wall time, summed over runs */
    double max_seconds;   /* of the slowest run */
    double cpu_seconds;   /* user + system, summed over runs */
    int runs, failures;
    double points, max_points;
} report_test;

typedef struct report {
    report_test *tests;
    int n, cap;
    /* What protected the machine ("bubblewrap ...", or why nothing did);
     * NULL in a merged report. Not owned: the grader's static string. */
    const char *sandbox;
} report;

/* "passed", "timed out", ...; and back (-1 if unknown). */
const char *report_verdict_name(report_verdict v);
int report_verdict_parse(const char *s);

/* Appends a copy of t (its strings duplicated; NULL strings become "").
 * Returns the entry, or NULL when out of memory (message on stderr). */
report_test *report_add(report *r, const report_test *t);
void report_free(report *r);

/* Writers. Each returns 0, or -1 with a message on stderr (and the target
 * untouched). */
int report_write_json(const report *r, const char *path);
int report_write_junit(const report *r, const char *path);
int report_write_gradescope(const report *r, const char *path);

/* Reads the JSON reports of paths[0..n-1] and writes one report to out:
 * entries of the same implementation and test are combined (runs, failures
 * and times summed; the first failure kept). Input that is not such a report
 * (truncated, malformed, hostile) is rejected, never read past its end.
 * Returns 0, or -1 (message on stderr). */
int report_merge(const char *const *paths, int n, FILE *out);

#endif
