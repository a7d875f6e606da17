/* build: compiles a submission into a raft_test binary, seeing only the
 * submission's own files.
 *
 * The submission's .c and .h files of <impl>/raft/ (regular files only) are
 * copied into a scratch folder beside the four public headers (raft.h,
 * labrpc.h, codec.h, persister.h), the only ones on the include path; no
 * path of the kit is. In the sandbox (sandbox.h, when spec->sandboxed) each
 * file is preprocessed and compiled, the objects are merged into one
 * (ld -r) whose hidden symbols are made local, and the policy (policy.h) is
 * checked on the sources and that object. Only then is it linked with the
 * kit's harness (objects the kit's Makefile built from the kit: `make
 * harness_info`), again in the sandbox.
 *
 * Ownership: build_submission fills result; build_result_free frees its
 * strings. Thread safety: none (it forks; call it single-threaded).
 */
#ifndef RAFTLAB_BUILD_H
#define RAFTLAB_BUILD_H

#include <stdbool.h>

typedef struct build_spec {
    const char *kit;        /* the kit's root */
    const char *impl;       /* the folder that holds raft/raft.c */
    const char *san;        /* address, undefined, thread, or NULL */
    bool sim;               /* link with sim/ (virtual time) */
    bool sandboxed;         /* every step in the sandbox */
    const char *dir;        /* scratch folder; emptied and filled */
} build_spec;

typedef enum build_status {
    BUILD_OK,
    BUILD_FAILED,    /* the compiler or linker said no: output has why */
    BUILD_REFUSED,   /* the policy said no: output names each problem */
    BUILD_ERROR,     /* the grader could not build (the kit, a file, ...) */
} build_status;

typedef struct build_result {
    build_status status;
    char *output;    /* the compiler's messages, or the refusal, or the error */
    char binary[4096];   /* the raft_test built, when BUILD_OK */
} build_result;

build_status build_submission(const build_spec *spec, build_result *result);
void build_result_free(build_result *result);

/* Removes path and everything under it (no link is followed). 0 or -1. */
int build_remove_tree(const char *path);

#endif
