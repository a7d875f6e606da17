/* sandbox.c: see sandbox.h. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static char bwrap[256];
static bool disable_userns = true; /* bwrap 0.8 and later */

static const char *const BWRAP_DIRS[] = { "/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap", NULL };
/* The system's own folders, read-only inside: compilers, libraries,
 * valgrind. /etc has the loader's cache and the compilers' alternatives;
 * what it holds that is secret (shadow) is not readable by nobody. */
static const char *const SYSTEM_DIRS[] = { "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32",
                                           "/lib64", "/libx32", NULL };

#define MAX_ARGS 256

typedef struct args {
    const char *v[MAX_ARGS];
    int n;
    bool full;
} args;

static void add(args *a, const char *s)
{
    if (a->n < MAX_ARGS - 1)
        a->v[a->n++] = s;
    else
        a->full = true;
}

/* The bwrap command line for spec (strings in links must outlive it). */
static void bwrap_args(const sandbox_spec *s, args *a, char links[][256])
{
    add(a, bwrap);
    add(a, "--unshare-all");
    add(a, "--unshare-user");
    if (disable_userns)
        add(a, "--disable-userns"); /* no nested namespaces with new privileges */
    add(a, "--die-with-parent");  /* the grader gone: the sandbox goes too */
    add(a, "--new-session");      /* no terminal to push input into */
    add(a, "--cap-drop");
    add(a, "ALL");
    add(a, "--hostname");
    add(a, "raftlab");
    int nl = 0;
    for (int k = 0; SYSTEM_DIRS[k]; k++) {
        struct stat st;
        if (lstat(SYSTEM_DIRS[k], &st) != 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            ssize_t n = readlink(SYSTEM_DIRS[k], links[nl], 255);
            if (n <= 0)
                continue;
            links[nl][n] = '\0';
            add(a, "--symlink");
            add(a, links[nl++]);
            add(a, SYSTEM_DIRS[k]);
        } else if (S_ISDIR(st.st_mode)) {
            add(a, "--ro-bind");
            add(a, SYSTEM_DIRS[k]);
            add(a, SYSTEM_DIRS[k]);
        }
    }
    add(a, "--proc");
    add(a, "/proc");
    add(a, "--dev");
    add(a, "/dev");
    add(a, "--tmpfs");
    add(a, "/tmp");
    for (int k = 0; s->ro_paths && s->ro_paths[k]; k++) {
        add(a, "--ro-bind");
        add(a, s->ro_paths[k]);
        add(a, s->ro_paths[k]);
    }
    for (int k = 0; s->rw_paths && s->rw_paths[k]; k++) {
        add(a, "--bind");
        add(a, s->rw_paths[k]);
        add(a, s->rw_paths[k]);
    }
    add(a, "--remount-ro"); /* the new root too: /tmp alone is writable */
    add(a, "/");
    add(a, "--chdir");
    add(a, s->cwd ? s->cwd : "/tmp");
    add(a, "--");
    for (int k = 0; s->argv[k]; k++)
        add(a, s->argv[k]);
    a->v[a->n] = NULL;
}

/* In the child: a message on fd 2, then exit 127. */
static void child_fail(const char *what)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "grade: cannot start the %s: %s\n", what, strerror(errno));
    if (n > 0 && write(2, buf, (size_t)n) < 0)
        _exit(127);
    _exit(127);
}

static void move_fd(int from, int to)
{
    if (from < 0) {
        from = open("/dev/null", O_RDWR);
        if (from < 0)
            child_fail("command (/dev/null)");
    }
    if (from != to && dup2(from, to) < 0)
        child_fail("command (dup2)");
}

pid_t sandbox_spawn(const sandbox_spec *s, char *err, size_t errlen)
{
    args a = { .n = 0 };
    static char links[16][256];
    if (s->sandboxed) {
        if (!bwrap[0]) {
            snprintf(err, errlen, "no sandbox: sandbox_probe found no bwrap");
            return -1;
        }
        bwrap_args(s, &a, links);
    } else {
        for (int k = 0; s->argv[k]; k++)
            add(&a, s->argv[k]);
        a.v[a.n] = NULL;
    }
    if (a.full) {
        snprintf(err, errlen, "the command line is too long");
        return -1;
    }
    /* fd 0-2 may be what the caller names: dup above 2 first. */
    int fds[3] = { s->fd_in, s->fd_out, s->fd_err };
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        if (s->own_group)
            setpgid(pid, pid); /* also here: no race with the child's own call */
        return pid;
    }
    if (s->own_group)
        setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int hi[3];
    for (int k = 0; k < 3; k++)
        hi[k] = fds[k] >= 0 ? fcntl(fds[k], F_DUPFD, 10) : -1;
    for (int k = 0; k < 3; k++)
        move_fd(hi[k], k);
    /* Nothing else of the grader's: no report, log or pipe of another run. */
    if (close_range(3, ~0U, 0) != 0)
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
    for (int k = 0; k < s->nlimits; k++) {
        struct rlimit rl;
        rlim_t v = s->limits[k].value;
        if (getrlimit(s->limits[k].resource, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
            v > rl.rlim_max)
            v = rl.rlim_max;
        rl.rlim_cur = rl.rlim_max = v; /* hard too: setrlimit cannot lift it */
        if (setrlimit(s->limits[k].resource, &rl) != 0)
            child_fail("command (setrlimit)");
    }
    char *const *envp = s->envp ? (char *const *)s->envp : environ;
    if (!s->sandboxed && s->cwd && chdir(s->cwd) != 0)
        child_fail("command (chdir)");
    if (s->sandboxed) {
        if (geteuid() == 0) {
            gid_t g = SANDBOX_UID;
            if (setgroups(1, &g) != 0 || setresgid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) != 0 ||
                setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) != 0)
                child_fail("sandbox (dropping to user nobody)");
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            child_fail("sandbox (no_new_privs)");
        execve(a.v[0], (char *const *)a.v, envp);
        child_fail("sandbox (bwrap)");
    }
    execvpe(a.v[0], (char *const *)a.v, envp);
    child_fail(a.v[0]);
    return -1;
}

int sandbox_run(const sandbox_spec *s, double timeout_s, char *err, size_t errlen)
{
    pid_t pid = sandbox_spawn(s, err, errlen);
    if (pid < 0)
        return -1;
    int st;
    /* Polled: the grader blocks SIGCHLD, and a step lasts a second or so. */
    for (long waited_ms = 0;; waited_ms += 5) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0 && errno != EINTR) {
            snprintf(err, errlen, "waitpid: %s", strerror(errno));
            return -1;
        }
        if (waited_ms >= (long)(timeout_s * 1000)) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            snprintf(err, errlen, "it took more than %.0f s and was stopped", timeout_s);
            return -1;
        }
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

int sandbox_signal(int status, bool sandboxed, int *code)
{
    *code = -1;
    if (WIFSIGNALED(status))
        return WTERMSIG(status);
    if (!WIFEXITED(status))
        return 0;
    *code = WEXITSTATUS(status);
    if (sandboxed && *code > 128 && *code < 128 + 65) {
        int sig = *code - 128;
        *code = -1;
        return sig;
    }
    return 0;
}

int sandbox_give(const char *path)
{
    return geteuid() == 0 ? chown(path, SANDBOX_UID, SANDBOX_UID) : 0;
}

bool sandbox_probe(char *why, size_t len)
{
    bwrap[0] = '\0';
    for (int k = 0; BWRAP_DIRS[k]; k++)
        if (access(BWRAP_DIRS[k], X_OK) == 0) {
            snprintf(bwrap, sizeof bwrap, "%s", BWRAP_DIRS[k]);
            break;
        }
    if (!bwrap[0]) {
        snprintf(why, len, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap");
        return false;
    }
    char errpath[] = "/tmp/raftlab-probe.XXXXXX";
    int fd = mkstemp(errpath);
    if (fd < 0) {
        snprintf(why, len, "cannot create a file in /tmp: %s", strerror(errno));
        bwrap[0] = '\0';
        return false;
    }
    unlink(errpath);
    static const char *const argv[] = { "true", NULL };
    static const char *const env[] = { "PATH=/usr/bin:/bin", NULL };
    sandbox_spec s = { .sandboxed = true, .argv = argv, .envp = env, .fd_in = -1, .fd_out = fd,
                       .fd_err = fd, .own_group = true };
    char err[256];
    int st = sandbox_run(&s, 10, err, sizeof err);
    char out[300] = "";
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    if (st != 0 && n > 0 && strstr(out, "disable-userns")) {
        /* An older bwrap (Ubuntu 22.04 has 0.6): the rest still holds. */
        disable_userns = false;
        if (ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0)
            st = sandbox_run(&s, 10, err, sizeof err);
        n = pread(fd, out, sizeof out - 1, 0);
    }
    if (st == 0) {
        close(fd);
        return true;
    }
    out[n > 0 ? n : 0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    close(fd);
    snprintf(why, len, "bwrap cannot make a sandbox here (%s%s); are user namespaces "
             "disabled (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)?",
             st < 0 ? err : out[0] ? out : "it failed", "");
    bwrap[0] = '\0';
    return false;
}
