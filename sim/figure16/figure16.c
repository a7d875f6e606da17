/* figure16.c: one curve of the Raft paper's Figure 16 (§9.3), in sim mode:
 * the time to detect and replace a crashed leader, for one range of
 * election timeouts.
 *
 *   figure16 --range MIN-MAX [--trials N] [--cap-ms MS]
 *            [--request-ms A-B] [--reply-ms C-D] --out FILE
 *
 * Five servers of the reference solution (raft_tuning.h: the paper's Raft,
 * so PreVote and check quorum off; heartbeats every MIN/2 ms) on a network
 * whose requests wait A..B ms and replies C..D ms. The defaults, 2-4 and
 * 8-12, give the paper's broadcast time of about 15 ms (round trips of
 * 10-16 ms; a broadcast waits for the slowest of four). Putting most of it
 * on the reply is our model, not a measurement: a server writes to stable
 * storage before it answers (Figure 2), so a RequestVote reaches the others
 * (and stops their timers) well before its answer comes back. These
 * defaults are the ones that bring the paper's figures within 20%; split
 * votes, hence the top graph, depend mostly on the request delay.
 *
 * Each trial follows the paper's script: once the cluster is stable, the
 * leader replicates a new entry (a synchronised broadcast that resets the
 * followers' timers, and leaves some of them without the entry if the
 * crash comes soon) and crashes at a uniformly random point of its
 * heartbeat interval; the downtime runs from the crash to the moment a
 * server becomes leader in a later term (raft_tuning.on_leader), in virtual
 * time. A trial with no leader after MS ms counts as MS, marked capped, and
 * the next one starts from a restarted cluster. The crashed server then
 * restarts from its persisted state and rejoins.
 *
 * FILE gets a header line and one downtime per trial, in ms ('>' before a
 * capped one); figure16_plot turns the files into the table and the plot.
 * Built only with SIM=1 (make figure16); the seed is RAFTLAB_SEED.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "raft_tuning.h"

#define SERVERS 5

/* The newest leader any peer announced (raft_tuning.on_leader). */
typedef struct watch {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    int term;
    int64_t at_ns;
} watch;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Runs with the new leader's lock held: take note, nothing more. */
static void on_leader(void *ctx, int me, int term)
{
    (void)me;
    watch *w = ctx;
    pthread_mutex_lock(&w->mu);
    if (term > w->term) {
        w->term = term;
        w->at_ns = now_ns();
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

/* Waits until some peer becomes leader in a term after `term`, or until
 * deadline_ns. true and *at_ns if one did. */
static bool wait_leader_after(watch *w, int term, int64_t deadline_ns, int64_t *at_ns)
{
    struct timespec until = { .tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000 };
    pthread_mutex_lock(&w->mu);
    while (w->term <= term && now_ns() < deadline_ns)
        pthread_cond_timedwait(&w->cv, &w->mu, &until);
    bool ok = w->term > term;
    if (ok)
        *at_ns = w->at_ns;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

static int watch_term(watch *w)
{
    pthread_mutex_lock(&w->mu);
    int term = w->term;
    pthread_mutex_unlock(&w->mu);
    return term;
}

static void sleep_us(int64_t us)
{
    struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The leader of a stable cluster: every server up, one leader, one term.
 * Sleeps settle_ms first, then checks every step_ms; -1 after limit_ms. */
static int stable_leader(cfg *c, int settle_ms, int step_ms, int64_t limit_ms, int *term)
{
    sleep_us((int64_t)settle_ms * 1000);
    for (int64_t waited = settle_ms; waited <= limit_ms; waited += step_ms) {
        int leader = -1, leaders = 0, t0 = -1;
        bool same = true;
        for (int i = 0; i < SERVERS; i++) {
            int t;
            bool is_leader;
            if (!cfg_get_state(c, i, &t, &is_leader)) {
                same = false;
                break;
            }
            if (t0 == -1)
                t0 = t;
            same = same && t == t0;
            if (is_leader) {
                leader = i;
                leaders++;
            }
        }
        if (same && leaders == 1) {
            *term = t0;
            return leader;
        }
        sleep_us((int64_t)step_ms * 1000);
    }
    return -1;
}

/* A cluster with a leader, every follower running with t: all servers
 * restart with boot (wider timeouts: without randomness an election may
 * never end), and once they have a leader the followers restart with t (a
 * trial then crashes that leader). The leader, or -1 after limit_ms. */
static int bootstrap(cfg *c, watch *w, const raft_tuning *boot, const raft_tuning *t,
                     int settle_ms, int64_t limit_ms)
{
    int64_t at;
    int term, leader = -1;
    raft_tuning_set(boot);
    int before = watch_term(w);
    for (int i = 0; i < SERVERS; i++)
        if (cfg_start1(c, i))
            cfg_connect(c, i);
    if (wait_leader_after(w, before, now_ns() + limit_ms * 1000000, &at))
        leader = stable_leader(c, settle_ms, t->heartbeat_ms, limit_ms, &term);
    raft_tuning_set(t);
    for (int i = 0; i < SERVERS && leader >= 0; i++)
        if (i != leader && cfg_start1(c, i))
            cfg_connect(c, i);
    return leader;
}

static bool parse_range(const char *s, int *lo, int *hi)
{
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || *end != '-')
        return false;
    const char *b_s = end + 1;
    long b = strtol(b_s, &end, 10);
    if (end == b_s || *end || a < 0 || b < a || b > 1000000)
        return false;
    *lo = (int)a;
    *hi = (int)b;
    return true;
}

static int usage(const char *why)
{
    fprintf(stderr, "figure16: %s\n"
                    "usage: figure16 --range MIN-MAX [--trials N] [--cap-ms MS] [--request-ms A-B]\n"
                    "                [--reply-ms C-D] --out FILE\n"
                    "  (build and run it with make figure16; see sim/figure16/run.sh)\n", why);
    return 2;
}

int main(int argc, char **argv)
{
    int lo = -1, hi = -1, trials = 1000, req_lo = 2, req_hi = 4, rep_lo = 8, rep_hi = 12;
    long cap_ms = 30000;
    const char *out_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage("every option takes a value");
        i++;
        if (!strcmp(a, "--range")) {
            if (!parse_range(v, &lo, &hi) || lo < 2)
                return usage("--range wants MIN-MAX in ms, 2 <= MIN <= MAX, e.g. 150-300");
        } else if (!strcmp(a, "--request-ms")) {
            if (!parse_range(v, &req_lo, &req_hi))
                return usage("--request-ms wants A-B in ms, A <= B, e.g. 0-2");
        } else if (!strcmp(a, "--reply-ms")) {
            if (!parse_range(v, &rep_lo, &rep_hi))
                return usage("--reply-ms wants A-B in ms, A <= B, e.g. 13-15");
        } else if (!strcmp(a, "--trials")) {
            trials = atoi(v);
            if (trials < 1 || trials > 1000000)
                return usage("--trials wants 1..1000000");
        } else if (!strcmp(a, "--cap-ms")) {
            cap_ms = atol(v);
            if (cap_ms < 1 || cap_ms > 3600 * 1000)
                return usage("--cap-ms wants 1..3600000");
        } else if (!strcmp(a, "--out")) {
            out_path = v;
        } else {
            return usage("unknown option");
        }
    }
    if (lo < 0 || !out_path)
        return usage("--range and --out are required");

    FILE *out = fopen(out_path, "w");
    if (!out) {
        fprintf(stderr, "figure16: cannot write %s: %s\n", out_path, strerror(errno));
        return 1;
    }
    watch w = { .term = 0 };
    pthread_condattr_t ca;
    if (pthread_mutex_init(&w.mu, NULL) || pthread_condattr_init(&ca) ||
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) || pthread_cond_init(&w.cv, &ca)) {
        fprintf(stderr, "figure16: cannot set up a mutex or condition variable\n");
        return 1;
    }
    pthread_condattr_destroy(&ca);

    /* The paper: heartbeats at half the minimum election timeout. */
    raft_tuning t = raft_tuning_default();
    t.heartbeat_ms = lo / 2;
    t.retry_ms = t.heartbeat_ms;
    t.election_min_ms = lo;
    t.election_max_ms = hi;
    t.pre_vote = false;
    t.check_quorum = false;
    t.on_leader = on_leader;
    t.on_leader_ctx = &w;
    raft_tuning boot = t;
    if (boot.election_max_ms < 2 * lo)
        boot.election_max_ms = 2 * lo;
    if (!raft_tuning_set(&t) || !raft_tuning_set(&boot)) {
        fprintf(stderr, "figure16: the solution refused the settings\n");
        return 1;
    }
    cfg *c = cfg_make(SERVERS, false, false);
    if (!c)
        return 1;
    cfg_set_time_limit(c, 1 << 30);
    if (!cfg_set_delay(c, req_lo, req_hi, rep_lo, rep_hi)) {
        fprintf(stderr, "figure16: the network refused delays of %d-%d and %d-%d ms\n", req_lo,
                req_hi, rep_lo, rep_hi);
        cfg_cleanup(c);
        return 1;
    }
    int settle_ms = 2 * hi + 4 * t.heartbeat_ms + 4 * (req_hi + rep_hi);
    int64_t limit_ms = 10 * cap_ms;
    int term, leader;

    fprintf(out, "# figure16 range %d %d trials %d request_ms %d %d reply_ms %d %d cap_ms %ld\n",
            lo, hi, trials, req_lo, req_hi, rep_lo, rep_hi, cap_ms);
    int capped = 0;
    double sum_ms = 0;
    int64_t t_begin = now_ns();
    bool fresh = true; /* the cluster needs a bootstrap */
    for (int k = 0; k < trials; k++) {
        leader = -1;
        if (fresh)
            leader = bootstrap(c, &w, &boot, &t, settle_ms, limit_ms);
        if (!fresh || leader >= 0)
            leader = stable_leader(c, settle_ms, t.heartbeat_ms, limit_ms, &term);
        if (leader < 0 || cfg_failed(c)) {
            char msg[512] = "";
            if (cfg_failed(c))
                cfg_failure(c, msg, sizeof msg);
            fprintf(stderr, "figure16: %d-%d ms, trial %d: the cluster did not settle in %lld ms%s%s\n",
                    lo, hi, k + 1, (long long)limit_ms, msg[0] ? ": " : "", msg);
            fclose(out);
            cfg_cleanup(c);
            return 1;
        }
        cfg_start_int(c, leader, k + 1, NULL, NULL);
        sleep_us(cfg_rand63(c) % ((int64_t)t.heartbeat_ms * 1000));
        int64_t crash = now_ns(), at;
        cfg_crash1(c, leader);
        bool ok = wait_leader_after(&w, term, crash + (int64_t)cap_ms * 1000000, &at);
        double ms = ok ? (double)(at - crash) / 1e6 : (double)cap_ms;
        capped += !ok;
        fresh = !ok; /* still electing: start again from a working cluster */
        sum_ms += ms;
        fprintf(out, "%s%.3f\n", ok ? "" : ">", ms);
        if (cfg_start1(c, leader))
            cfg_connect(c, leader);
    }
    double virtual_s = (double)(now_ns() - t_begin) / 1e9;
    cfg_cleanup(c);
    if (fclose(out) != 0) {
        fprintf(stderr, "figure16: cannot write %s\n", out_path);
        return 1;
    }
    printf("figure16: %d-%d ms: %d trials, mean %.1f ms, %d capped at %ld ms, %.0f s of virtual time\n",
           lo, hi, trials, sum_ms / trials, capped, cap_ms, virtual_s);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return 0;
}
