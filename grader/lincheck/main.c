/* lincheck: checks a KV history file for linearizability (lincheck.h).
 *   lincheck [--steps N] [--quiet] FILE     (FILE "-" reads stdin)
 * Exit status: 0 linearizable, 1 not linearizable, 2 not checked (the step
 * budget ran out: never a pass), 3 bad usage or a bad file. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "history.h"
#include "lincheck.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: lincheck [--steps N] [--quiet] FILE\n"
            "Checks that the key/value history in FILE (\"-\": stdin) is linearizable.\n"
            "  --steps N   the search budget in steps (default %llu, about 1-2 s);\n"
            "              the same budget gives the same verdict on any machine\n"
            "  --quiet     print only the verdict line, no explanation\n"
            "  --help      this text\n"
            "Exit status: 0 linearizable, 1 not linearizable, 2 not checked (budget\n"
            "exceeded: raise --steps), 3 bad usage or bad file.\n"
            "The file format is described in grader/lincheck/history.h.\n",
            (unsigned long long)LINCHECK_DEFAULT_STEPS);
}

static int bad_usage(const char *fmt, const char *arg)
{
    fputs("lincheck: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'lincheck --help'.\n", stderr);
    return 3;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    unsigned long long steps = LINCHECK_DEFAULT_STEPS;
    int quiet = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = 1;
        } else if (strcmp(a, "--steps") == 0 || strncmp(a, "--steps=", 8) == 0) {
            const char *v = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v)
                return bad_usage("--steps needs a number of steps%s", "");
            char *end;
            if (*v < '0' || *v > '9')
                return bad_usage("--steps needs a positive number of steps, not '%s'", v);
            steps = strtoull(v, &end, 10);
            if (*end || steps == 0 || steps == ULLONG_MAX)
                return bad_usage("--steps needs a positive number of steps, not '%s'", v);
        } else if (a[0] == '-' && a[1] != '\0') {
            return bad_usage("unknown option '%s'", a);
        } else if (path) {
            return bad_usage("one history file at a time (got a second one, '%s')", a);
        } else {
            path = a;
        }
    }
    if (!path)
        return bad_usage("no history file given%s", "");

    char err[512];
    lincheck_history *h;
    if (lincheck_history_read_file(path, &h, err, sizeof err)) {
        fprintf(stderr, "lincheck: %s\n", err);
        return 3;
    }
    lincheck_result r;
    double t0 = now_ms();
    int rc = lincheck_check(h, steps, &r);
    double ms = now_ms() - t0;
    if (rc) {
        fprintf(stderr, "lincheck: cannot check %s: %s\n", path, lincheck_strerror(rc));
        lincheck_history_free(h);
        return 3;
    }
    int status;
    if (r.verdict == LINCHECK_OK) {
        printf("linearizable (%zu keys, %zu ops, %llu steps, %.0f ms)\n", r.nkeys, r.nops,
               (unsigned long long)r.steps, ms);
        status = 0;
    } else if (r.verdict == LINCHECK_ILLEGAL) {
        const lincheck_key_result *k = &r.keys[r.bad_key];
        fputs("NOT linearizable: key ", stdout);
        lincheck_print_value(stdout, k->key, k->key_len, 60);
        printf(" (%llu steps, %.0f ms)\n", (unsigned long long)r.steps, ms);
        if (!quiet)
            lincheck_explain(h, &r, stdout);
        status = 1;
    } else {
        fputs("not checked: budget exceeded on keys ", stdout);
        size_t shown = 0;
        for (size_t j = 0; j < r.nkeys && shown < 10; j++) {
            if (r.keys[j].verdict != LINCHECK_UNKNOWN)
                continue;
            fputs(shown++ ? ", " : "", stdout);
            lincheck_print_value(stdout, r.keys[j].key, r.keys[j].key_len, 40);
        }
        printf("%s (%llu steps, %.0f ms); raise --steps\n", shown < r.nunknown ? ", ..." : "",
               (unsigned long long)r.steps, ms);
        status = 2;
    }
    if (fflush(stdout) != 0)
        status = 3;
    lincheck_result_free(&r);
    lincheck_history_free(h);
    return status;
}
