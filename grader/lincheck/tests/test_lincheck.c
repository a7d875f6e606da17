/* lincheck_test: lincheck's CUnit tests.
 *   lincheck_test            run every test
 *   lincheck_test NAME...    run the tests whose names contain one of NAMEs
 * Exit status 0 only if every test that ran passed. Under valgrind the
 * random cross-checks and big histories are scaled down. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/valgrind.h>

#include "../gen.h"
#include "../history.h"
#include "../lincheck.h"

#define NEVER LINCHECK_NEVER

static int scale(int n)
{
    return RUNNING_ON_VALGRIND ? (n + 3) / 4 : n;
}

/* ---- small hand-written histories ---- */

typedef struct hop {
    unsigned client;
    const char *kind;   /* "get", "put", "append" */
    const char *key, *value;
    uint64_t call, ret;
} hop;

static lincheck_history *mk(const hop *ops, size_t n)
{
    lincheck_history *h = lincheck_history_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    for (size_t i = 0; i < n; i++) {
        lincheck_kind k = ops[i].kind[0] == 'g' ? LINCHECK_GET : ops[i].kind[0] == 'p' ? LINCHECK_PUT
                                                                                       : LINCHECK_APPEND;
        CU_ASSERT_EQUAL_FATAL(lincheck_add_str(h, ops[i].client, k, ops[i].key, ops[i].value,
                                               ops[i].call, ops[i].ret), 0);
    }
    return h;
}

/* Checks ops and returns the verdict; an illegal one's report is sanity
 * checked, and its explanation must mention the key. */
static lincheck_verdict verdict_of(const hop *ops, size_t n, uint64_t steps)
{
    lincheck_history *h = mk(ops, n);
    lincheck_result r;
    CU_ASSERT_EQUAL_FATAL(lincheck_check(h, steps, &r), 0);
    lincheck_verdict v = r.verdict;
    if (v == LINCHECK_ILLEGAL) {
        CU_ASSERT(r.nblocked >= 1);
        CU_ASSERT(r.npartial <= r.nkey_ops);
        for (size_t b = 0; b < r.nblocked; b++) {
            const lincheck_op *o = lincheck_history_op(h, r.blocked[b].op);
            if (r.blocked[b].why == LINCHECK_WHY_VALUE) {
                CU_ASSERT(o->kind == LINCHECK_GET);
                CU_ASSERT(o->value_len != r.value_len || memcmp(o->value, r.value, r.value_len) != 0);
            }
        }
        if (r.npartial) {
            size_t len;
            char *val = lincheck_partial_value(h, &r, r.npartial - 1, &len);
            CU_ASSERT_PTR_NOT_NULL(val);
            CU_ASSERT(val && len == r.value_len && memcmp(val, r.value, len) == 0);
            free(val);
        }
        char *text = lincheck_explain_str(h, &r);
        CU_ASSERT_PTR_NOT_NULL(text);
        CU_ASSERT(text && strstr(text, r.keys[r.bad_key].key) != NULL);
        free(text);
    }
    lincheck_result_free(&r);
    lincheck_history_free(h);
    return v;
}

#define N(a) (sizeof(a) / sizeof(a)[0])
#define OK(a) CU_ASSERT_EQUAL(verdict_of(a, N(a), 0), LINCHECK_OK)
#define BAD(a) CU_ASSERT_EQUAL(verdict_of(a, N(a), 0), LINCHECK_ILLEGAL)

static void test_sequential(void)
{
    hop a[] = {
        { 0, "put", "a", "1", 0, 1 }, { 0, "get", "a", "1", 2, 3 },
        { 0, "append", "a", "2", 4, 5 }, { 0, "get", "a", "12", 6, 7 },
        { 1, "get", "b", "", 8, 9 }, { 1, "append", "b", "x", 10, 11 }, { 1, "get", "b", "x", 12, 13 },
    };
    OK(a);
    hop empty[] = { { 0, "get", "a", "", 0, 1 } };
    OK(empty);
    CU_ASSERT_EQUAL(verdict_of(NULL, 0, 0), LINCHECK_OK);
}

static void test_overlapping(void)
{
    hop before[] = { { 0, "append", "k", "x", 0, 10 }, { 1, "get", "k", "", 5, 15 } };
    OK(before);
    hop after[] = { { 0, "append", "k", "x", 0, 10 }, { 1, "get", "k", "x", 5, 15 } };
    OK(after);
    /* Two concurrent appends, read in the order opposite to their calls. */
    hop order[] = {
        { 0, "append", "k", "a", 0, 10 }, { 1, "append", "k", "b", 1, 10 },
        { 2, "get", "k", "ba", 11, 12 },
    };
    OK(order);
}

static void test_stale_read(void)
{
    hop a[] = { { 0, "put", "k", "1", 0, 1 }, { 0, "put", "k", "2", 2, 3 }, { 1, "get", "k", "1", 4, 5 } };
    BAD(a);
    hop b[] = {
        { 0, "append", "k", "x", 0, 1 }, { 1, "get", "k", "x", 2, 3 }, { 2, "get", "k", "", 4, 5 },
    };
    BAD(b);
}

static void test_lost_and_doubled_append(void)
{
    hop lost[] = { { 0, "append", "k", "a", 0, 1 }, { 0, "append", "k", "b", 2, 3 }, { 1, "get", "k", "b", 4, 5 } };
    BAD(lost);
    hop twice[] = { { 0, "append", "k", "x 0 1 y", 0, 1 }, { 1, "get", "k", "x 0 1 yx 0 1 y", 2, 3 } };
    BAD(twice);
    hop never[] = { { 0, "put", "k", "a", 0, 1 }, { 1, "get", "k", "zzz", 0, 3 } };
    BAD(never);
}

static void test_pending(void)
{
    hop took[] = { { 0, "append", "k", "a", 0, NEVER }, { 1, "get", "k", "a", 5, 6 } };
    OK(took);
    hop not_took[] = { { 0, "append", "k", "a", 0, NEVER }, { 1, "get", "k", "", 5, 6 } };
    OK(not_took);
    hop late[] = { { 0, "append", "k", "a", 0, NEVER }, { 1, "get", "k", "", 5, 6 }, { 1, "get", "k", "a", 7, 8 } };
    OK(late);
    hop undone[] = { { 0, "append", "k", "a", 0, NEVER }, { 1, "get", "k", "a", 5, 6 }, { 1, "get", "k", "", 7, 8 } };
    BAD(undone);
    /* A pending op takes effect after its call, never before. */
    hop early[] = { { 1, "get", "k", "a", 0, 1 }, { 0, "append", "k", "a", 2, NEVER } };
    BAD(early);
    hop get_ignored[] = { { 0, "get", "k", "garbage", 0, NEVER }, { 1, "get", "k", "", 5, 6 } };
    OK(get_ignored);
    hop put_late[] = { { 0, "put", "k", "z", 0, NEVER }, { 1, "get", "k", "z", 1, 2 }, { 1, "get", "k", "", 3, 4 } };
    BAD(put_late);
}

static void test_ties(void)
{
    /* Closed intervals: returned at 10, called at 10, they overlap. */
    hop tie[] = { { 0, "append", "k", "a", 0, 10 }, { 1, "get", "k", "", 10, 20 } };
    OK(tie);
    /* ...and one tick later they do not. */
    hop after[] = { { 0, "append", "k", "a", 0, 10 }, { 1, "get", "k", "", 11, 20 } };
    BAD(after);
    /* A zero-length op at 10 overlaps every op at 10. */
    hop instant[] = { { 0, "append", "k", "a", 10, 10 }, { 1, "get", "k", "", 10, 20 } };
    OK(instant);
    hop instant2[] = { { 0, "append", "k", "a", 10, 10 }, { 1, "append", "k", "b", 10, 10 }, { 2, "get", "k", "ba", 11, 12 } };
    OK(instant2);
    hop instant3[] = { { 0, "append", "k", "a", 0, 10 }, { 1, "get", "k", "", 10, 10 } };
    OK(instant3);
    hop instant4[] = { { 0, "append", "k", "a", 0, 9 }, { 1, "get", "k", "", 10, 10 } };
    BAD(instant4);
}

static void test_keys_independent(void)
{
    hop a[] = {
        { 0, "append", "a", "1", 0, 10 }, { 1, "append", "b", "2", 0, 10 },
        { 2, "get", "a", "1", 11, 12 }, { 2, "get", "b", "", 13, 14 },
    };
    lincheck_history *h = mk(a, N(a));
    lincheck_result r;
    CU_ASSERT_EQUAL_FATAL(lincheck_check(h, 0, &r), 0);
    CU_ASSERT_EQUAL(r.verdict, LINCHECK_ILLEGAL);
    CU_ASSERT_EQUAL(r.nkeys, 2);
    CU_ASSERT_STRING_EQUAL(r.keys[r.bad_key].key, "b");
    CU_ASSERT_EQUAL(r.nblocked, 1);
    if (r.nblocked) {
        CU_ASSERT_EQUAL(r.blocked[0].op, 3);
        CU_ASSERT_EQUAL(r.blocked[0].why, LINCHECK_WHY_VALUE);
    }
    CU_ASSERT_STRING_EQUAL(r.value, "2");
    char *text = lincheck_explain_str(h, &r);
    CU_ASSERT(text && strstr(text, "returned \"\" but the value was \"2\""));
    free(text);
    lincheck_result_free(&r);
    lincheck_history_free(h);
}

static void test_bad_args(void)
{
    lincheck_history *h = lincheck_history_new();
    CU_ASSERT_EQUAL(lincheck_add_str(h, 0, LINCHECK_GET, "k", "", 5, 4), LINCHECK_EINVAL);
    CU_ASSERT_EQUAL(lincheck_add_str(h, 0, LINCHECK_GET, "k", "", NEVER, NEVER), LINCHECK_EINVAL);
    CU_ASSERT_EQUAL(lincheck_add_str(h, 0, (lincheck_kind)7, "k", "", 1, 2), LINCHECK_EINVAL);
    CU_ASSERT_EQUAL(lincheck_add_str(h, 0, LINCHECK_GET, NULL, "", 1, 2), LINCHECK_EINVAL);
    lincheck_op op = { .kind = LINCHECK_PUT, .key = NULL, .key_len = 3, .call_ns = 1, .return_ns = 2 };
    CU_ASSERT_EQUAL(lincheck_add(h, &op), LINCHECK_EINVAL);
    CU_ASSERT_EQUAL(lincheck_history_len(h), 0);
    lincheck_result r;
    CU_ASSERT_EQUAL(lincheck_check(NULL, 0, &r), LINCHECK_EINVAL);
    lincheck_history_free(h);
}

/* ---- a brute-force reference, cross-checked on random histories ---- */

#define BF_MAX 8
#define BF_VAL 48

typedef struct bop {
    int key;            /* 0 or 1 */
    lincheck_kind kind;
    char val[BF_VAL];
    uint64_t call, ret;
} bop;

/* Closed intervals: x precedes y only if it returned before y's call. */
static bool bf_precedes(const bop *x, const bop *y)
{
    return x->ret != NEVER && x->ret < y->call;
}

/* Every order of the ops that respects real time, pending ops optional. */
static bool bf_search(const bop *ops, int n, unsigned used, char st[2][BF_VAL])
{
    bool all = true;
    for (int i = 0; i < n; i++)
        if (!(used >> i & 1) && ops[i].ret != NEVER)
            all = false;
    if (all)
        return true;
    for (int y = 0; y < n; y++) {
        if (used >> y & 1)
            continue;
        bool ok = true;
        for (int x = 0; x < n && ok; x++)
            if (x != y && !(used >> x & 1) && bf_precedes(&ops[x], &ops[y]))
                ok = false;
        if (!ok)
            continue;
        char save[BF_VAL];
        char *s = st[ops[y].key];
        strcpy(save, s);
        if (ops[y].kind == LINCHECK_GET) {
            if (strcmp(s, ops[y].val) != 0)
                continue;
        } else if (ops[y].kind == LINCHECK_PUT) {
            strcpy(s, ops[y].val);
        } else {
            strcat(s, ops[y].val);
        }
        bool r = bf_search(ops, n, used | 1u << y, st);
        strcpy(s, save);
        if (r)
            return true;
    }
    return false;
}

static bool bf_check(const bop *ops, int n)
{
    char st[2][BF_VAL] = { "", "" };
    unsigned used = 0;
    for (int i = 0; i < n; i++)
        if (ops[i].kind == LINCHECK_GET && ops[i].ret == NEVER)
            used |= 1u << i;   /* a pending Get constrains nothing */
    return bf_search(ops, n, used, st);
}

static void random_small(uint64_t *rs, bop *ops, int *np)
{
    static const char *const vals[] = { "1", "2", "12", "x" };
    static const char *const outs[] = { "", "1", "2", "12", "21", "11", "x", "1x" };
    int n = 1 + (int)(lcgen_rand(rs) % BF_MAX);
    int nkeys = 1 + (int)(lcgen_rand(rs) % 2);
    for (int i = 0; i < n; i++) {
        bop *o = &ops[i];
        o->key = (int)(lcgen_rand(rs) % (uint64_t)nkeys);
        uint64_t u = lcgen_rand(rs) % 10;
        o->kind = u < 4 ? LINCHECK_GET : u < 6 ? LINCHECK_PUT : LINCHECK_APPEND;
        strcpy(o->val, vals[lcgen_rand(rs) % 4]);
        o->call = lcgen_rand(rs) % 12;
        o->ret = o->call + lcgen_rand(rs) % 6;
        if (lcgen_rand(rs) % 8 == 0)
            o->ret = NEVER;
    }
    /* Outputs from a real order (linearization points in the intervals,
     * pending ops taking effect or not), then sometimes one made wrong. */
    double lp[BF_MAX];
    int idx[BF_MAX];
    for (int i = 0; i < n; i++) {
        uint64_t end = ops[i].ret == NEVER ? ops[i].call + 8 : ops[i].ret;
        lp[i] = (double)ops[i].call + lcgen_unit(rs) * (double)(end - ops[i].call);
        if (ops[i].ret == NEVER && lcgen_rand(rs) % 2)
            lp[i] = 1e9;
        idx[i] = i;
    }
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && lp[idx[b - 1]] > lp[idx[b]]; b--) {
            int t = idx[b];
            idx[b] = idx[b - 1];
            idx[b - 1] = t;
        }
    char st[2][BF_VAL] = { "", "" };
    for (int j = 0; j < n; j++) {
        bop *o = &ops[idx[j]];
        if (lp[idx[j]] >= 1e9)
            continue;
        if (o->kind == LINCHECK_GET)
            strcpy(o->val, st[o->key]);
        else if (o->kind == LINCHECK_PUT)
            strcpy(st[o->key], o->val);
        else if (strlen(st[o->key]) + strlen(o->val) < BF_VAL)
            strcat(st[o->key], o->val);
    }
    if (lcgen_rand(rs) % 2 == 0) {
        int i = (int)(lcgen_rand(rs) % (uint64_t)n);
        for (int j = 0; j < n; j++, i = (i + 1) % n)
            if (ops[i].kind == LINCHECK_GET) {
                strcpy(ops[i].val, outs[lcgen_rand(rs) % 8]);
                break;
            }
    }
    *np = n;
}

static void test_brute_force_agrees(void)
{
    uint64_t rs = 42;
    int runs = scale(10000), ok = 0, bad = 0, disagree = 0;
    for (int t = 0; t < runs; t++) {
        bop ops[BF_MAX];
        int n;
        random_small(&rs, ops, &n);
        lincheck_history *h = lincheck_history_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(h);
        for (int i = 0; i < n; i++)
            CU_ASSERT_EQUAL_FATAL(lincheck_add_str(h, (uint32_t)i, ops[i].kind, ops[i].key ? "b" : "a",
                                                   ops[i].val, ops[i].call, ops[i].ret), 0);
        lincheck_result r;
        CU_ASSERT_EQUAL_FATAL(lincheck_check(h, 0, &r), 0);
        bool want = bf_check(ops, n);
        CU_ASSERT(r.verdict != LINCHECK_UNKNOWN);
        if ((r.verdict == LINCHECK_OK) != want) {
            if (disagree++ < 3) {
                fprintf(stderr, "\nlincheck says %s, brute force %s, on:\n",
                        lincheck_verdict_name(r.verdict), want ? "linearizable" : "not");
                lincheck_history_write(h, stderr);
            }
        }
        if (r.verdict == LINCHECK_ILLEGAL) {
            CU_ASSERT(r.nblocked >= 1);
            char *text = lincheck_explain_str(h, &r);
            CU_ASSERT_PTR_NOT_NULL(text);
            free(text);
        }
        ok += want;
        bad += !want;
        lincheck_result_free(&r);
        lincheck_history_free(h);
    }
    CU_ASSERT_EQUAL(disagree, 0);
    if (ok <= runs / 5 || bad <= runs / 5)
        fprintf(stderr, "\n%d linearizable, %d not\n", ok, bad);
    /* Both answers must be common, or the cross-check proves little. */
    CU_ASSERT(ok > runs / 5 && bad > runs / 5);
}

/* ---- big generated histories ---- */

static lcgen_params kv_params(unsigned clients, size_t ops, double put_frac, uint64_t seed)
{
    return (lcgen_params){ .clients = clients, .ops = ops, .iterations = 3, .round_ns = 5000000000ull,
                           .append_frac = 0.5, .put_frac = put_frac, .slow_frac = 0.02,
                           .pending_frac = 0.3, .seed = seed };
}

static void test_big_linearizable(void)
{
    lcgen_params ps[] = {
        kv_params(15, (size_t)scale(10000), 0.1, 1),
        kv_params(5, (size_t)scale(3000), 0.1, 2),
        kv_params(7, (size_t)scale(3000), 0.0, 3),
        { .clients = 5, .ops = 50, .iterations = 1, .round_ns = 100000000, .append_frac = 1.0,
          .slow_frac = 0.3, .one_key = true, .final_get = true, .seed = 4 },
        { .clients = 5, .ops = (size_t)scale(1000), .iterations = 1, .round_ns = 1000000000,
          .append_frac = 0.5, .put_frac = 0.1, .slow_frac = 0.1, .pending_frac = 1, .one_key = true, .seed = 5 },
        { .clients = 3, .ops = 600, .iterations = 1, .round_ns = 100000000, .append_frac = 0.7,
          .slow_frac = 0.05, .one_key = true, .pad = 2000, .seed = 6 },
    };
    for (size_t i = 0; i < N(ps); i++) {
        lincheck_history *h;
        CU_ASSERT_EQUAL_FATAL(lcgen_history(&ps[i], false, &h, NULL), 0);
        lincheck_result r;
        CU_ASSERT_EQUAL_FATAL(lincheck_check(h, 0, &r), 0);
        CU_ASSERT_EQUAL(r.verdict, LINCHECK_OK);
        if (r.verdict != LINCHECK_OK)
            fprintf(stderr, "\nparams %zu: %s after %llu steps\n", i, lincheck_verdict_name(r.verdict),
                    (unsigned long long)r.steps);
        lincheck_result_free(&r);
        lincheck_history_free(h);
    }
}

static void test_big_corrupted(void)
{
    for (uint64_t seed = 1; seed <= 4; seed++) {
        lcgen_params p = kv_params(seed % 2 ? 15 : 5, (size_t)scale(6000), 0.0, seed);
        if (seed == 4) {
            p.one_key = true;
            p.ops = 400;
        }
        lincheck_history *h;
        size_t bad;
        CU_ASSERT_EQUAL_FATAL(lcgen_history(&p, true, &h, &bad), 0);
        CU_ASSERT_FATAL(bad != SIZE_MAX);
        lincheck_result r;
        CU_ASSERT_EQUAL_FATAL(lincheck_check(h, 0, &r), 0);
        CU_ASSERT_EQUAL(r.verdict, LINCHECK_ILLEGAL);
        if (r.verdict == LINCHECK_ILLEGAL) {
            const lincheck_op *o = lincheck_history_op(h, bad);
            CU_ASSERT_STRING_EQUAL(r.keys[r.bad_key].key, o->key);
            char *text = lincheck_explain_str(h, &r);
            CU_ASSERT(text && strstr(text, "returned") != NULL);
            free(text);
        }
        lincheck_result_free(&r);
        lincheck_history_free(h);
    }
}

static void test_budget(void)
{
    lcgen_params p = { .clients = 5, .ops = 200, .iterations = 1, .round_ns = 100000000,
                       .append_frac = 0.8, .slow_frac = 0.3, .one_key = true, .seed = 9 };
    lincheck_history *h;
    CU_ASSERT_EQUAL_FATAL(lcgen_history(&p, false, &h, NULL), 0);
    lincheck_result r, r2;
    CU_ASSERT_EQUAL_FATAL(lincheck_check(h, 50, &r), 0);
    CU_ASSERT_EQUAL(r.verdict, LINCHECK_UNKNOWN);
    CU_ASSERT(r.steps <= 50);
    CU_ASSERT_EQUAL(r.nunknown, 1);
    CU_ASSERT(r.nkeys == 1 && r.keys[0].verdict == LINCHECK_UNKNOWN);
    char *text = lincheck_explain_str(h, &r);
    CU_ASSERT(text && strstr(text, "not checked") && strstr(text, "\"k\""));
    free(text);
    /* Deterministic: the same budget, the same steps. */
    CU_ASSERT_EQUAL_FATAL(lincheck_check(h, 50, &r2), 0);
    CU_ASSERT_EQUAL(r.steps, r2.steps);
    lincheck_result_free(&r);
    lincheck_result_free(&r2);
    /* And enough budget settles it. */
    CU_ASSERT_EQUAL_FATAL(lincheck_check(h, 0, &r), 0);
    CU_ASSERT_EQUAL(r.verdict, LINCHECK_OK);
    lincheck_result_free(&r);
    lincheck_history_free(h);

    /* Several keys: one small budget, unknown keys are listed. */
    lcgen_params q = kv_params(5, 500, 0.1, 10);
    CU_ASSERT_EQUAL_FATAL(lcgen_history(&q, false, &h, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(lincheck_check(h, 120, &r), 0);
    CU_ASSERT_EQUAL(r.verdict, LINCHECK_UNKNOWN);
    CU_ASSERT(r.nunknown >= 1 && r.steps <= 120);
    lincheck_result_free(&r);
    lincheck_history_free(h);
}

/* ---- files ---- */

static lincheck_history *read_str(const char *text, size_t len, char *err, size_t errlen, int *rc)
{
    FILE *f = fmemopen((void *)text, len, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    lincheck_history *h = NULL;
    *rc = lincheck_history_read(f, "history.txt", &h, err, errlen);
    fclose(f);
    return h;
}

static void test_round_trip(void)
{
    lincheck_history *h = lincheck_history_new();
    static const char weird[] = "a\"b\\c\nd\te\0f\x01\xff end";
    lincheck_op ops[] = {
        { 0, LINCHECK_GET, "k", 1, "", 0, 0, 0 },
        { 4294967295u, LINCHECK_PUT, weird, sizeof weird - 1, weird, sizeof weird - 1, 5, NEVER },
        { 7, LINCHECK_APPEND, "", 0, "x 1 2 y", 7, 18446744073709551614ull, 18446744073709551614ull },
    };
    for (size_t i = 0; i < N(ops); i++)
        CU_ASSERT_EQUAL_FATAL(lincheck_add(h, &ops[i]), 0);
    lcgen_params p = kv_params(5, 300, 0.1, 3);
    lincheck_history *g;
    CU_ASSERT_EQUAL_FATAL(lcgen_history(&p, false, &g, NULL), 0);
    for (size_t i = 0; i < lincheck_history_len(g); i++)
        CU_ASSERT_EQUAL_FATAL(lincheck_add(h, lincheck_history_op(g, i)), 0);
    lincheck_history_free(g);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CU_ASSERT_EQUAL_FATAL(lincheck_history_write(h, f), 0);
    fclose(f);
    char err[256];
    int rc;
    lincheck_history *back = read_str(buf, len, err, sizeof err, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc)
        fprintf(stderr, "\n%s\n", err);
    CU_ASSERT_EQUAL_FATAL(lincheck_history_len(back), lincheck_history_len(h));
    for (size_t i = 0; i < lincheck_history_len(h); i++) {
        const lincheck_op *a = lincheck_history_op(h, i), *b = lincheck_history_op(back, i);
        CU_ASSERT(a->client == b->client && a->kind == b->kind && a->call_ns == b->call_ns &&
                  a->return_ns == b->return_ns && a->key_len == b->key_len &&
                  a->value_len == b->value_len && memcmp(a->key, b->key, a->key_len) == 0 &&
                  memcmp(a->value, b->value, a->value_len) == 0);
    }
    /* And the file on disk, through the path functions. */
    char path[] = "/tmp/lincheck_test_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    fclose(fdopen(fd, "w"));
    CU_ASSERT_EQUAL(lincheck_history_write_file(h, path), 0);
    lincheck_history *disk;
    CU_ASSERT_EQUAL(lincheck_history_read_file(path, &disk, err, sizeof err), 0);
    CU_ASSERT(disk && lincheck_history_len(disk) == lincheck_history_len(h));
    lincheck_history_free(disk);
    remove(path);
    CU_ASSERT_EQUAL(lincheck_history_read_file("/nonexistent/h.txt", &disk, err, sizeof err), LINCHECK_EIO);
    CU_ASSERT(strstr(err, "/nonexistent/h.txt: cannot open") == err);
    free(buf);
    lincheck_history_free(back);
    lincheck_history_free(h);
}

static void test_parse_errors(void)
{
    static const struct {
        const char *text, *err;
    } cases[] = {
        { "", "history.txt: empty file" },
        { "hello\n", "history.txt:1: not a lincheck history" },
        { "lincheck-history 2\n", "history.txt:1: format version '2' is not supported" },
        { "lincheck-history\n", "history.txt:1: expected a format version" },
        { "lincheck-history 1\n\n# c\n0 get k1 \"\" 1 2\n", "history.txt:4: expected a quoted key, found 'k1'" },
        { "lincheck-history 1\nx get \"k\" \"\" 1 2\n", "history.txt:2: expected a client number, found 'x'" },
        { "lincheck-history 1\n99999999999 get \"k\" \"\" 1 2\n", "history.txt:2: client number" },
        { "lincheck-history 1\n0 gets \"k\" \"\" 1 2\n", "history.txt:2: expected get, put or append, found 'gets'" },
        { "lincheck-history 1\n0 get \"k\" 1 2\n", "history.txt:2: expected a quoted value, found '1'" },
        { "lincheck-history 1\n0 get \"k\" \"abc\n", "history.txt:2: the quoted value has no closing" },
        { "lincheck-history 1\n0 get \"k\\q\" \"\" 1 2\n", "history.txt:2: in the key: unknown escape '\\q'" },
        { "lincheck-history 1\n0 get \"k\\x4\" \"\" 1 2\n", "history.txt:2: in the key: \\x needs two hex digits" },
        { "lincheck-history 1\n0 get \"k\" \"\" 1\n", "history.txt:2: expected the return time in ns" },
        { "lincheck-history 1\n0 get \"k\" \"\" a 2\n", "history.txt:2: expected the call time in ns" },
        { "lincheck-history 1\n0 get \"k\" \"\" 99999999999999999999 2\n", "history.txt:2: the call time '99999999999999999999' is too large" },
        { "lincheck-history 1\n0 get \"k\" \"\" 18446744073709551615 -\n", "too large" },
        { "lincheck-history 1\n0 get \"k\" \"\" 9 5\n", "history.txt:2: the return time 5 is before the call time 9" },
        { "lincheck-history 1\n0 get \"k\" \"\" 1 2 3\n", "history.txt:2: unexpected '3' after the return time" },
        { "lincheck-history 1\n0 get \"k\"\"\" 1 2\n", "history.txt:2: expected a space after the quoted key" },
        { "lincheck-history 1\n0 get \"k\" \"\" 1 -x\n", "history.txt:2: expected the return time" },
    };
    for (size_t i = 0; i < N(cases); i++) {
        char err[256];
        int rc;
        lincheck_history *h = read_str(cases[i].text, strlen(cases[i].text), err, sizeof err, &rc);
        CU_ASSERT_PTR_NULL(h);
        CU_ASSERT_EQUAL(rc, LINCHECK_EFORMAT);
        if (!strstr(err, cases[i].err)) {
            fprintf(stderr, "\ncase %zu: got \"%s\", want \"%s\"\n", i, err, cases[i].err);
            CU_FAIL("parse error message");
        }
        lincheck_history_free(h);
    }
    /* A NUL byte in a line. */
    static const char nul[] = "lincheck-history 1\n0 get \"k\" \"a\0b\" 1 2\n";
    char err[256];
    int rc;
    lincheck_history *h = read_str(nul, sizeof nul - 1, err, sizeof err, &rc);
    CU_ASSERT(h == NULL && rc == LINCHECK_EFORMAT && strstr(err, "history.txt:2: NUL byte"));
    /* Good lines: CRLF, tabs, comments, a pending op. */
    static const char good[] = "lincheck-history 1\r\n  # comment\r\n\t0\tappend \"k\" \"x\\x41\" 1 2\r\n"
                               "1 put \"k\" \"\" 3 -\n";
    h = read_str(good, sizeof good - 1, err, sizeof err, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(lincheck_history_len(h), 2);
    if (lincheck_history_len(h) == 2) {
        CU_ASSERT_STRING_EQUAL(lincheck_history_op(h, 0)->value, "xA");
        CU_ASSERT_EQUAL(lincheck_history_op(h, 1)->return_ns, NEVER);
    }
    lincheck_history_free(h);
}

static void test_fuzz(void)
{
    uint64_t rs = 7;
    lcgen_params p = kv_params(3, 60, 0.2, 11);
    lincheck_history *g;
    CU_ASSERT_EQUAL_FATAL(lcgen_history(&p, false, &g, NULL), 0);
    char *good = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&good, &len);
    lincheck_history_write(g, f);
    fclose(f);
    lincheck_history_free(g);
    char err[256];
    int rc, n_ok = 0;
    /* Every truncation: a clean result or a clean error. */
    size_t step = RUNNING_ON_VALGRIND ? 37 : 1;
    for (size_t cut = 0; cut <= len; cut += step) {
        lincheck_history *h = read_str(good, cut, err, sizeof err, &rc);
        CU_ASSERT((rc == 0) == (h != NULL));
        CU_ASSERT(rc == 0 || strncmp(err, "history.txt:", 12) == 0);
        n_ok += rc == 0;
        lincheck_history_free(h);
    }
    CU_ASSERT(n_ok > 0);
    /* Random mutations, and random bytes after a good header. */
    char *buf = malloc(len + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    for (int t = 0; t < scale(2000); t++) {
        memcpy(buf, good, len);
        int nm = 1 + (int)(lcgen_rand(&rs) % 4);
        for (int m = 0; m < nm; m++)
            buf[lcgen_rand(&rs) % len] = (char)lcgen_rand(&rs);
        size_t cut = t % 2 ? len : 19 + lcgen_rand(&rs) % (len - 19);
        if (t % 5 == 0)
            for (size_t i = 19; i < cut; i++)
                buf[i] = (char)lcgen_rand(&rs);
        lincheck_history *h = read_str(buf, cut, err, sizeof err, &rc);
        CU_ASSERT((rc == 0) == (h != NULL));
        if (h) {
            lincheck_result r;
            CU_ASSERT_EQUAL(lincheck_check(h, 100000, &r), 0);
            lincheck_result_free(&r);
        }
        lincheck_history_free(h);
    }
    free(buf);
    free(good);
    /* A long value (4 MiB of escapes) reads; a longer line is refused. */
    size_t big = 4u << 20;
    char *line = malloc(big + 64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    int hl = sprintf(line, "lincheck-history 1\n0 put \"k\" \"");
    for (size_t i = 0; i < big; i += 4)
        memcpy(line + hl + i, "\\x41", 4);
    size_t tl = (size_t)hl + big;
    tl += (size_t)sprintf(line + tl, "\" 1 2\n");
    lincheck_history *h = read_str(line, tl, err, sizeof err, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(h && lincheck_history_op(h, 0)->value_len == big / 4);
    lincheck_history_free(h);
    free(line);
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    { "sequential", test_sequential },
    { "overlapping", test_overlapping },
    { "stale_read", test_stale_read },
    { "lost_and_doubled_append", test_lost_and_doubled_append },
    { "pending", test_pending },
    { "ties", test_ties },
    { "keys_independent", test_keys_independent },
    { "bad_args", test_bad_args },
    { "brute_force_agrees", test_brute_force_agrees },
    { "big_linearizable", test_big_linearizable },
    { "big_corrupted", test_big_corrupted },
    { "budget", test_budget },
    { "round_trip", test_round_trip },
    { "parse_errors", test_parse_errors },
    { "fuzz", test_fuzz },
};

int main(int argc, char **argv)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "lincheck_test: cannot start CUnit: %s\n", CU_get_error_msg());
        return 2;
    }
    CU_pSuite s = CU_add_suite("lincheck", NULL, NULL);
    if (!s)
        goto cunit_error;
    int added = 0;
    for (size_t i = 0; i < N(tests); i++) {
        bool want = argc < 2;
        for (int a = 1; a < argc; a++)
            want |= strstr(tests[i].name, argv[a]) != NULL;
        if (want) {
            if (!CU_add_test(s, tests[i].name, tests[i].fn))
                goto cunit_error;
            added++;
        }
    }
    if (!added) {
        fprintf(stderr, "lincheck_test: no test matches\n");
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (CU_basic_run_tests() != CUE_SUCCESS)
        goto cunit_error;
    /* CU_basic_run_tests succeeds even when tests fail: count them. */
    unsigned failed = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed() +
                      CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
cunit_error:
    fprintf(stderr, "lincheck_test: CUnit error: %s\n", CU_get_error_msg());
    CU_cleanup_registry();
    return 2;
}
