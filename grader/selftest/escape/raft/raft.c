/* An attack (grader self-test) on the sandbox itself: compiled by the kit's
 * Makefile, so that no symbol policy stands in its way, and graded with
 * --binary in secure mode. Once per test process it tries to reach the
 * grader and the machine; if any try succeeds it aborts (verdict crashed,
 * and the self-test fails). It also leaves a daemon of its own behind
 * (named raftlab-stray), which must die with the sandbox. Otherwise it is
 * the reference solution: expected verdict passed. */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_make ref_raft_make
#include "reference_raft.h"
#undef raft_make
SELFTEST_END

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kit.h" /* KIT: the kit's folder, written by run.sh */

static int escaped;

static void escape(const char *how)
{
    printf("ESCAPED: %s\n", how);
    fflush(stdout);
    escaped++;
}

/* Any process of the grader's in sight (it is named grade). */
static void look_for_grader(void)
{
    DIR *d = opendir("/proc");
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[300], comm[64] = "";
        snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f && fgets(comm, sizeof comm, f) && strncmp(comm, "grade\n", 6) == 0)
            escape("the grader's process is visible");
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
}

static void try_escapes(void)
{
    look_for_grader();
    /* The kit: not there, or read-only. */
    int fd = open(KIT "/grader/raft/cfg.c", O_WRONLY | O_APPEND);
    if (fd >= 0) {
        escape("the kit is writable");
        close(fd);
    }
    /* KIT "/raftlab-pwned" with O_CREAT may succeed when the kit lies under
     * /tmp: in the sandbox's own /tmp, which goes with it. run.sh looks for
     * it on the machine. */
    fd = open(KIT "/raftlab-pwned", O_WRONLY | O_CREAT, 0644);
    if (fd >= 0)
        close(fd);
    fd = open("/usr/raftlab-pwned", O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) {
        escape("the system is writable");
        close(fd);
    }
    /* The log, opened again for reading (through the test's own stdout). */
    fd = open("/proc/self/fd/1", O_RDONLY);
    if (fd >= 0 && geteuid() != 0) {
        escape("the log can be read back");
    }
    if (fd >= 0)
        close(fd);
    /* Hard limits. */
    struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
    if (setrlimit(RLIMIT_FSIZE, &rl) == 0)
        escape("RLIMIT_FSIZE was lifted");
    if (setrlimit(RLIMIT_CPU, &rl) == 0)
        escape("RLIMIT_CPU was lifted");
    /* The network: only a loopback of its own. */
    FILE *f = fopen("/proc/net/dev", "r");
    char line[256];
    for (int n = 0; f && fgets(line, sizeof line, f); n++) {
        char *colon = strchr(line, ':');
        if (n >= 2 && colon) {
            *colon = '\0';
            if (strcmp(line + strspn(line, " "), "lo") != 0)
                escape("a network interface is visible");
        }
    }
    if (f)
        fclose(f);
    /* Signals to every process it may signal: only its own sandbox. */
    kill(-1, SIGCONT);
    /* A daemon that outlives the test, if it can. */
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        prctl(PR_SET_NAME, "raftlab-stray", 0, 0, 0);
        for (int k = 0; k < 600; k++) {
            int w = open(KIT "/raftlab-pwned", O_WRONLY | O_CREAT, 0644);
            if (w >= 0)
                close(w);
            usleep(100 * 1000);
        }
        _exit(0);
    }
}

raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps, raft_apply_fn apply,
                void *apply_ctx)
{
    static int tried;
    if (!tried++) {
        try_escapes();
        if (escaped)
            abort();
    }
    return ref_raft_make(peers, npeers, me, ps, apply, apply_ctx);
}
