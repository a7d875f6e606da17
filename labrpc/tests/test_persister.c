/* persister tests: copies, atomic saves, independent copies. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persister.h"
#include "suites.h"

static void test_save_read(void)
{
    persister *p = persister_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    size_t n;
    uint8_t *s = persister_read_state(p, &n);
    CU_ASSERT(s != NULL && n == 0);
    free(s);
    char state[] = "state-1", snap[] = "snapshot-1";
    CU_ASSERT_EQUAL(persister_save(p, state, 7, snap, 10), 0);
    state[0] = 'X';     /* the persister kept a copy */
    s = persister_read_state(p, &n);
    CU_ASSERT(n == 7 && memcmp(s, "state-1", 7) == 0);
    s[0] = 'Y';         /* and handed out a copy */
    free(s);
    s = persister_read_state(p, &n);
    CU_ASSERT(n == 7 && s[0] == 's');
    free(s);
    s = persister_read_snapshot(p, &n);
    CU_ASSERT(n == 10 && memcmp(s, "snapshot-1", 10) == 0);
    free(s);
    CU_ASSERT_EQUAL(persister_state_size(p), 7);
    CU_ASSERT_EQUAL(persister_snapshot_size(p), 10);
    CU_ASSERT_EQUAL(persister_save(p, "s", 1, NULL, 0), 0);
    CU_ASSERT_EQUAL(persister_snapshot_size(p), 0);
    persister_free(p);
}

static void test_copy(void)
{
    persister *p = persister_new();
    CU_ASSERT_EQUAL(persister_save(p, "a", 1, "b", 1), 0);
    persister *q = persister_copy(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    /* The dead instance keeps writing to p: q does not change. */
    CU_ASSERT_EQUAL(persister_save(p, "later", 5, "x", 1), 0);
    size_t n;
    uint8_t *s = persister_read_state(q, &n);
    CU_ASSERT(n == 1 && s[0] == 'a');
    free(s);
    CU_ASSERT_EQUAL(persister_state_size(p), 5);
    persister_free(p);
    persister_free(q);
}

/* A writer saves (state i, snapshot i) pairs; readers must never see a state
 * and snapshot from different saves. */
typedef struct race {
    persister *p;
    int rounds;
    int torn;
} race;

static void *writer(void *arg)
{
    race *r = arg;
    for (int i = 0; i < r->rounds; i++) {
        char buf[16];
        int n = snprintf(buf, sizeof buf, "%d", i);
        persister_save(r->p, buf, (size_t)n, buf, (size_t)n);
    }
    return NULL;
}

static void *copier(void *arg)
{
    race *r = arg;
    for (int i = 0; i < r->rounds; i++) {
        persister *q = persister_copy(r->p);
        if (!q)
            continue;
        size_t a, b;
        uint8_t *s = persister_read_state(q, &a), *t = persister_read_snapshot(q, &b);
        if (!s || !t || a != b || memcmp(s, t, a) != 0)
            r->torn++;
        free(s);
        free(t);
        persister_free(q);
    }
    return NULL;
}

static void test_atomic(void)
{
    race r = { persister_new(), 20000, 0 };
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.p);
    pthread_t w, c;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&w, NULL, writer, &r), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&c, NULL, copier, &r), 0);
    pthread_join(w, NULL);
    pthread_join(c, NULL);
    CU_ASSERT_EQUAL(r.torn, 0);
    persister_free(r.p);
}

/* The persister keeps its buffers across saves: growing, shrinking and
 * empty saves must each read back exactly what was saved. */
static void test_sizes(void)
{
    persister *p = persister_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    static const size_t sizes[] = { 10, 100000, 3, 0, 50000, 50001, 7, 1000000, 1 };
    uint8_t *src = malloc(1000001);     /* the snapshot starts at src + 1 */
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k], snap_n = sizes[(k + 3) % (sizeof sizes / sizeof *sizes)];
        for (size_t i = 0; i < 1000001; i++)
            src[i] = (uint8_t)(i * 7 + k);
        CU_ASSERT_EQUAL_FATAL(persister_save(p, src, n, src + 1, snap_n), 0);
        size_t got, got_snap;
        uint8_t *s = persister_read_state(p, &got), *t = persister_read_snapshot(p, &got_snap);
        CU_ASSERT(s && got == n && (n == 0 || memcmp(s, src, n) == 0));
        CU_ASSERT(t && got_snap == snap_n && (snap_n == 0 || memcmp(t, src + 1, snap_n) == 0));
        free(s);
        free(t);
    }
    free(src);
    persister_free(p);
}

static const suite_test tests[] = {
    { "save_read", test_save_read },
    { "copy", test_copy },
    { "atomic", test_atomic },
    { "sizes", test_sizes },
    { NULL, NULL },
};

const suite_def persister_suite = { "persister", tests };
