/* An attack (grader self-test): builds the reference solution instead of
 * its own code, through the kit's path (kit.h, written by run.sh, names
 * solution/raft/raft.c by its absolute path; "../../solution/..." is tried
 * too). In secure mode the build sees only the submission's files, so
 * neither resolves. Expected verdict: grader error, the build failed. */
#include "kit.h"
#if __has_include("../../solution/raft/raft.c")
#include "../../solution/raft/raft.c"
#else
#include KIT_REFERENCE
#endif
