/* An attack (grader self-test): replaces what the harness relies on and
 * calls what no Raft needs. Each line below is one way; the grader must
 * refuse to build it ("build refused"), naming each, and run nothing.
 * (Built from the skeleton's API: it never runs.) */
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "raft.h"

/* A libc function the harness calls: the submission's would win. */
int nanosleep(const struct timespec *req, struct timespec *rem)
{
    (void)req;
    (void)rem;
    return 0;
}

/* CUnit's assertion: a failing test would pass. */
unsigned CU_assertImplementation(unsigned value, unsigned line, const char *cond,
                                 const char *file, const char *func, unsigned fatal)
{
    (void)value, (void)line, (void)cond, (void)file, (void)func, (void)fatal;
    return 1;
}

/* A kit function: the RPC counter. */
int labrpc_net_total_count(labrpc_net *net)
{
    (void)net;
    return 0;
}

/* Code that runs before main. */
__attribute__((constructor)) static void early(void)
{
    void *page = (void *)((unsigned long)early & ~4095UL);
    mprotect(page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
}

/* Code placed where the checks would not look. */
__attribute__((section(".text.raftlab"))) static const unsigned char code[] = { 0x0f, 0x05, 0xc3 };

raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps, raft_apply_fn apply,
                void *apply_ctx)
{
    (void)peers, (void)npeers, (void)me, (void)ps, (void)apply, (void)apply_ctx;
    kill(getppid(), SIGSTOP);
    syscall(SYS_getpid);
    void *f = dlsym(RTLD_DEFAULT, "cfg_fail");
    __asm__ volatile("" ::: "memory");
    return (raft *)(f ? (void *)code : NULL);
}

int raft_register(raft *rf, labrpc_service *svc) { (void)rf, (void)svc; return 0; }
bool raft_start(raft *rf, const void *c, size_t n, int *i, int *t)
{
    (void)rf, (void)c, (void)n;
    *i = *t = 0;
    return false;
}
void raft_get_state(raft *rf, int *term, bool *leader) { (void)rf; *term = 0; *leader = false; }
void raft_snapshot(raft *rf, int i, const void *s, size_t n) { (void)rf, (void)i, (void)s, (void)n; }
void raft_kill(raft *rf) { (void)rf; }
