/* An attack (grader self-test) on the reports: raft_make prints bytes
 * that break naive JSON and XML writers (invalid UTF-8, control bytes, a
 * CDATA end, markup, quotes), then crashes, so that they land in the
 * failure's details. Expected verdict: crashed; every report still parses
 * (run.sh checks the JSON and the JUnit XML with strict parsers). */
#include "selftest.h"
SELFTEST_BEGIN
#define raft_make ref_raft_make
#include "reference_raft.h"
#undef raft_make
SELFTEST_END

#include <stdio.h>

raft *raft_make(labrpc_end **peers, int npeers, int me, persister *ps, raft_apply_fn apply,
                void *apply_ctx)
{
    static const char evil[] = "\xff\xfe bad \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \x01\x02\x1b[31m"
                               " ]]> </failure></testcase> <![CDATA[ \"quote\" \\ &amp; \x7f"
                               " \xe2\x82";
    for (int k = 0; k < 20; k++)
        fwrite(evil, 1, sizeof evil - 1, stdout), fputc('\n', stdout);
    fflush(stdout);
    static volatile uintptr_t nowhere = 0;
    *(volatile int *)nowhere = me;
    return ref_raft_make(peers, npeers, me, ps, apply, apply_ctx);
}
