/* lincheck_bench: how long lincheck takes on histories shaped like the KV
 * tests (gen.h), and on hard ones. Prints a table; a figure of steps is
 * the same on every machine, a time is this machine's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "gen.h"
#include "lincheck.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void run(const char *name, lincheck_history *h, uint64_t steps)
{
    size_t n = lincheck_history_len(h), maxv = 0;
    for (size_t i = 0; i < n; i++)
        if (lincheck_history_op(h, i)->value_len > maxv)
            maxv = lincheck_history_op(h, i)->value_len;
    lincheck_result r;
    double t0 = now_ms();
    int rc = lincheck_check(h, steps, &r);
    double ms = now_ms() - t0;
    if (rc) {
        printf("%-44s error: %s\n", name, lincheck_strerror(rc));
        return;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%-44s %6zu %4zu %7zu %-17s %10llu %8.1f %7.1f %6ld\n", name, n, r.nkeys, maxv,
           lincheck_verdict_name(r.verdict), (unsigned long long)r.steps, ms,
           ms > 0 ? r.steps / ms / 1000 : 0.0, ru.ru_maxrss / 1024);
    fflush(stdout);
    lincheck_result_free(&r);
}

static void gen_run(const char *name, const lcgen_params *p, bool corrupt, uint64_t steps)
{
    lincheck_history *h;
    if (lcgen_history(p, corrupt, &h, NULL)) {
        printf("%-44s out of memory\n", name);
        return;
    }
    run(name, h, steps);
    lincheck_history_free(h);
}

/* n appends to one key, all overlapping, a Put that never returned, and a
 * final Get no order can give: without the pruning rule the search would
 * try every order (n! of them). */
static void hard(size_t n, uint64_t steps)
{
    lincheck_history *h = lincheck_history_new();
    if (!h)
        return;
    char v[64];
    lincheck_add_str(h, 99, LINCHECK_PUT, "k", "p", 0, LINCHECK_NEVER);
    for (size_t i = 0; i < n; i++) {
        snprintf(v, sizeof v, "x %zu 0 y", i);
        lincheck_add_str(h, (uint32_t)i, LINCHECK_APPEND, "k", v, 1 + i, 1000000);
    }
    lincheck_add_str(h, 0, LINCHECK_GET, "k", "bogus", 2000000, 2001000);
    char name[64];
    snprintf(name, sizeof name, "%zu overlapping appends, impossible Get", n);
    run(name, h, steps);
    lincheck_history_free(h);
}

int main(int argc, char **argv)
{
    uint64_t steps = argc > 1 ? strtoull(argv[1], NULL, 10) : 0;
    printf("budget %llu steps (0: LINCHECK_DEFAULT_STEPS = %llu)\n", (unsigned long long)steps,
           (unsigned long long)LINCHECK_DEFAULT_STEPS);
    printf("%-44s %6s %4s %7s %-17s %10s %8s %7s %6s\n", "history", "ops", "keys", "maxval", "verdict",
           "steps", "ms", "Msteps/s", "maxrssMB");
    static const size_t sizes[] = { 3000, 10000, 30000 };
    static const unsigned conc[] = { 5, 15 };
    for (size_t c = 0; c < 2; c++)
        for (size_t s = 0; s < 3; s++) {
            lcgen_params p = { .clients = conc[c], .ops = sizes[s], .iterations = 3,
                               .round_ns = 5000000000ull, .append_frac = 0.5, .put_frac = 0.1,
                               .slow_frac = 0.02, .pending_frac = 0.3, .seed = 1 + s };
            char name[64];
            snprintf(name, sizeof name, "KV random keys: %u clients", conc[c]);
            gen_run(name, &p, false, steps);
        }
    lcgen_params p15 = { .clients = 15, .ops = 30000, .iterations = 3, .round_ns = 5000000000ull,
                         .append_frac = 0.5, .put_frac = 0.0, .slow_frac = 0.02, .pending_frac = 0.3,
                         .seed = 7 };
    gen_run("KV own keys, 15 clients, one stale Get", &p15, true, steps);
    lcgen_params one = { .clients = 5, .ops = 50, .iterations = 1, .round_ns = 50000000,
                         .append_frac = 1.0, .slow_frac = 0.5, .one_key = true, .final_get = true, .seed = 3 };
    gen_run("one key: 5 clients x 10 appends, final Get", &one, false, steps);
    one.ops = 500;
    gen_run("one key: 5 clients x 100 appends, final Get", &one, false, steps);
    one.ops = 50;
    one.clients = 15;
    one.ops = 150;
    gen_run("one key: 15 clients x 10 appends, final Get", &one, false, steps);
    lcgen_params mix = { .clients = 5, .ops = 3000, .iterations = 3, .round_ns = 1000000000ull,
                         .append_frac = 0.5, .put_frac = 0.1, .slow_frac = 0.3, .pending_frac = 1,
                         .one_key = true, .seed = 4 };
    gen_run("one key: 5 clients, 3000 ops, 30% slow", &mix, false, steps);
    mix.clients = 15;
    gen_run("one key: 15 clients, 3000 ops, 30% slow", &mix, false, steps);
    lcgen_params lng = { .clients = 5, .ops = 1000, .iterations = 1, .round_ns = 1000000000ull,
                         .append_frac = 0.5, .slow_frac = 0.1, .one_key = true, .pad = 200, .seed = 5 };
    gen_run("long values: one key, 5 clients, +200 B", &lng, false, steps);
    lng.put_frac = 0.0;
    gen_run("long values, one stale Get", &lng, true, steps);
    hard(12, steps);
    hard(30, steps);
    return 0;
}
