/* policy: what a submission's code may define and call, checked on its own
 * preprocessed sources and objects before anything is linked with it.
 *
 *  - It may define (as global symbols) only the API of the public headers
 *    (grader/raft/raft.h, grader/kvraft/rsm.h, grader/kvraft/kvraft.h); every
 *    other function or variable is static, or hidden (then the build makes
 *    it local: see build.h), so nothing it defines can replace a function of
 *    the kit, of libc or of CUnit.
 *  - It may call only what grader/allowed-calls.txt lists (pthreads,
 *    allocation, strings, stdio, the allowed time, sleep and rand calls, the
 *    kit's public API for a peer) and its own raft.h API.
 *  - No asm, no constructors or destructors, no code in sections of its own,
 *    no system-call instruction.
 * handouts/rules.md states the same for students.
 *
 * A policy collects problems as text, one a line, "file:line: what"; the
 * caller shows them all at once (the verdict "build refused").
 *
 * Ownership: policy_load returns a policy the caller frees with
 * policy_free; strings passed in stay the caller's. Thread safety: none.
 */
#ifndef RAFTLAB_POLICY_H
#define RAFTLAB_POLICY_H

#include <stdbool.h>
#include <stddef.h>

typedef struct policy policy;

/* Reads the allowed calls (allow_file: a name a line, '#' comments) and the
 * API a submission defines (every raft_xxx(, rsm_xxx(, kvserver_xxx( and
 * kvclerk_xxx( declared in api_headers, a NULL-ended list).
 * extra_prefixes: prefixes of names a sanitizer's build may call or define
 * (its runtime, its instrumentation), NULL-ended, or NULL. Returns NULL with
 * a reason in err. */
policy *policy_load(const char *allow_file, const char *const *api_headers,
                    const char *const *extra_prefixes, char *err, size_t errlen);
void policy_free(policy *p);

/* Scans one preprocessed file (cc -E output). Lines that come from a file
 * whose name is relative and not under "../" are the submission's: asm and
 * the refused attributes there are problems, and the first place each name
 * is used is noted (for the messages of policy_check_symbols). */
void policy_scan_source(policy *p, const char *text);

/* Checks `nm -P` output of the submission's merged object. */
void policy_check_symbols(policy *p, const char *nm_text);

/* Checks `objdump -h` and `objdump -d` output of the same object: no
 * constructor or destructor sections (unless allow_ctors: a sanitizer's
 * instrumentation adds its own), no system-call instruction. */
void policy_check_code(policy *p, const char *sections, const char *disasm, bool allow_ctors);

/* The problems found so far, one a line ("" if none); owned by p. */
const char *policy_problems(const policy *p);
int policy_count(const policy *p);

#endif
