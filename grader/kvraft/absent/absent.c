/* absent.c: stage 4's API for a submission without a kvraft/ folder (a Raft
 * alone, as for stages 3A-3D), so that it still links. Each stage 4 test
 * then fails at once and says why. Kit code: the grader links it in place
 * of the submission's kvraft/ (see grader/build.c). */
#include <stdio.h>

#include "kvraft.h"
#include "rsm.h"

static void say_absent(void)
{
    printf("  (this submission has no kvraft/ folder: stage 4 needs labs/kvraft/ with the "
           "rsm (rsm.h), the server and the clerk (kvraft.h); see handouts/4A-rsm.md)\n");
    fflush(stdout);
}

rsm *rsm_make(labrpc_end **peers, int npeers, int me, persister *ps, int maxraftstate,
              const rsm_sm *sm)
{
    (void)peers, (void)npeers, (void)me, (void)ps, (void)maxraftstate, (void)sm;
    say_absent();
    return NULL;
}

raft *rsm_raft(rsm *r) { (void)r; return NULL; }

rsm_err rsm_submit(rsm *r, const void *req, size_t len, void **out, size_t *out_len)
{
    (void)r, (void)req, (void)len;
    *out = NULL;
    *out_len = 0;
    return RSM_WRONG_LEADER;
}

void rsm_kill(rsm *r) { (void)r; }
void rsm_free(rsm *r) { (void)r; }

kvserver *kvserver_make(labrpc_end **peers, int npeers, int me, persister *ps, int maxraftstate)
{
    (void)peers, (void)npeers, (void)me, (void)ps, (void)maxraftstate;
    say_absent();
    return NULL;
}

raft *kvserver_raft(kvserver *kv) { (void)kv; return NULL; }
int kvserver_register(kvserver *kv, labrpc_service *svc) { (void)kv, (void)svc; return -1; }
void kvserver_kill(kvserver *kv) { (void)kv; }
void kvserver_free(kvserver *kv) { (void)kv; }

kvclerk *kvclerk_make(labrpc_end **servers, int n) { (void)servers, (void)n; return NULL; }
char *kvclerk_get(kvclerk *ck, const char *key) { (void)ck, (void)key; return NULL; }
int kvclerk_put(kvclerk *ck, const char *key, const char *value)
{
    (void)ck, (void)key, (void)value;
    return -1;
}
int kvclerk_append(kvclerk *ck, const char *key, const char *value)
{
    (void)ck, (void)key, (void)value;
    return -1;
}
void kvclerk_free(kvclerk *ck) { (void)ck; }
