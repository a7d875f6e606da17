/* sandbox: runs one command of the grader's (a compiler step or a test) in
 * a sandbox that the untrusted code in it cannot leave: Debian's bubblewrap
 * (bwrap) with its own PID, network, IPC, UTS and user namespaces, a new
 * session, no capabilities, the machine's system folders (/usr, /etc, ...)
 * read-only, a private /tmp, and only the paths the caller names bound in;
 * hard resource limits; and, when the grader runs as root, the unprivileged
 * user nobody (65534) outside the namespaces too. Killing the process that
 * sandbox_spawn returns kills everything in the sandbox (its PID namespace
 * dies with it). Without bwrap (or when the kernel refuses user namespaces)
 * the same call runs the command plainly, and sandbox_probe says why.
 *
 * Ownership: the spec and its arrays stay the caller's. Thread safety:
 * none; the grader is one thread. sandbox_spawn forks: call it from a
 * single-threaded process.
 */
#ifndef RAFTLAB_SANDBOX_H
#define RAFTLAB_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#define SANDBOX_MAX_LIMITS 8
#define SANDBOX_UID 65534   /* nobody, when the grader is root */

typedef struct sandbox_spec {
    bool sandboxed;                /* false: run plainly (--no-secure) */
    const char *const *argv;       /* argv[0] a path or a name found in PATH */
    const char *const *envp;       /* the whole environment inside (NULL: empty) */
    const char *cwd;               /* working folder (must be bound, or /tmp) */
    const char *const *ro_paths;   /* bound read-only at the same path; NULL-ended */
    const char *const *rw_paths;   /* bound writable at the same path; NULL-ended */
    int fd_in, fd_out, fd_err;     /* become 0, 1, 2 (-1: /dev/null) */
    struct { int resource; rlim_t value; } limits[SANDBOX_MAX_LIMITS];
    int nlimits;                   /* soft and hard limits, both set to value */
    bool own_group;                /* the child leads a new process group */
} sandbox_spec;

/* Finds bwrap and checks that a sandbox can be made here (one tiny run).
 * Returns true, or false with the reason in why. Call once, early. */
bool sandbox_probe(char *why, size_t len);

/* Starts spec's command; every other fd of the grader is closed in it.
 * Returns the child's pid, or -1 with the reason in err. A sandboxed child
 * that cannot be set up exits 127 after printing why on its fd_err. */
pid_t sandbox_spawn(const sandbox_spec *spec, char *err, size_t errlen);

/* Runs spec's command to its end, at most timeout_s seconds (then its
 * process group is killed: spec->own_group must be set). Returns its wait
 * status, or -1 with the reason in err. */
int sandbox_run(const sandbox_spec *spec, double timeout_s, char *err, size_t errlen);

/* How a sandboxed command ended: bwrap turns a death by signal N into exit
 * status 128+N, so that is read back as the signal. Returns the signal, or
 * 0 (then *code is the exit status). */
int sandbox_signal(int status, bool sandboxed, int *code);

/* Makes the folder path writable by the sandbox's user: chown to it when
 * the grader is root (it then runs as nobody); a no-op otherwise. */
int sandbox_give(const char *path);

#endif
