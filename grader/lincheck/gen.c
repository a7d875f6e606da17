/* gen: linearizable KV histories for lincheck's tests and bench (gen.h). */
#include "gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t lcgen_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double lcgen_unit(uint64_t *s)
{
    return (double)(lcgen_rand(s) >> 11) / 9007199254740992.0;
}

typedef struct gop {
    uint32_t client;
    lincheck_kind kind;
    unsigned key;
    char *val;              /* input; a Get's output once applied */
    size_t vlen;
    uint64_t call, ret, lp; /* lp: linearization point, or NEVER */
} gop;

typedef struct gval {
    char *s;
    size_t len, cap;
    bool had_put;
    size_t last_write;      /* op index, SIZE_MAX none */
    size_t before_len;      /* value length before the last write */
} gval;

static int cmp_lp(const void *a, const void *b, const gop *ops)
{
    const gop *x = &ops[*(const size_t *)a], *y = &ops[*(const size_t *)b];
    if (x->lp != y->lp)
        return x->lp < y->lp ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* A merge sort, since qsort has no context argument. */
static void sort_idx(size_t *a, size_t *tmp, size_t n, const gop *ops)
{
    if (n < 2)
        return;
    size_t m = n / 2;
    sort_idx(a, tmp, m, ops);
    sort_idx(a + m, tmp, n - m, ops);
    size_t i = 0, j = m, k = 0;
    while (i < m && j < n)
        tmp[k++] = cmp_lp(&a[i], &a[j], ops) <= 0 ? a[i++] : a[j++];
    while (i < m)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

int lcgen_history(const lcgen_params *p, bool corrupt, lincheck_history **out, size_t *bad_op)
{
    uint64_t rs = p->seed * 0x2545f4914f6cdd1dull + 1;
    unsigned nc = p->clients ? p->clients : 1, iters = p->iterations ? p->iterations : 1;
    unsigned nkeys = p->one_key ? 1 : nc;
    size_t per = p->ops / ((size_t)nc * iters);
    if (per == 0)
        per = 1;
    size_t n = per * nc * iters + (p->final_get ? nkeys : 0), ng = 0;
    gop *ops = calloc(n, sizeof *ops);
    gval *kv = calloc(nkeys, sizeof *kv);
    size_t *idx = malloc(n * sizeof *idx), *tmp = malloc(n * sizeof *tmp);
    lincheck_history *h = lincheck_history_new();
    char *before = NULL;
    int rc = LINCHECK_ENOMEM;
    *out = NULL;
    if (bad_op)
        *bad_op = SIZE_MAX;
    if (!ops || !kv || !idx || !tmp || !h)
        goto done;
    double mean = (double)p->round_ns / (double)per / 1.2;
    uint64_t t0 = 1000000;
    for (unsigned it = 0; it < iters; it++) {
        uint64_t end = t0;
        for (unsigned c = 0; c < nc; c++) {
            uint64_t t = t0 + (uint64_t)(lcgen_unit(&rs) * mean);
            for (size_t j = 0; j < per; j++) {
                gop *o = &ops[ng++];
                o->client = c;
                double u = lcgen_unit(&rs);
                o->key = p->one_key ? 0 : c;
                if (u < p->append_frac) {
                    o->kind = LINCHECK_APPEND;
                } else if (lcgen_unit(&rs) < p->put_frac) {
                    o->kind = LINCHECK_PUT;
                    o->key = p->one_key ? 0 : (unsigned)(lcgen_rand(&rs) % nkeys);
                } else {
                    o->kind = LINCHECK_GET;
                }
                if (o->kind != LINCHECK_GET) {
                    char head[64];
                    int hl = snprintf(head, sizeof head, "x %u %zu y", c, it * per + j);
                    o->vlen = (size_t)hl + p->pad;
                    if (!(o->val = malloc(o->vlen + 1)))
                        goto done;
                    memcpy(o->val, head, (size_t)hl);
                    memset(o->val + hl, '.', p->pad);
                    o->val[o->vlen] = '\0';
                }
                double lat = mean * (0.3 + 1.4 * lcgen_unit(&rs));
                if (lcgen_unit(&rs) < p->slow_frac)
                    lat *= 20;
                o->call = t;
                o->ret = t + (uint64_t)lat;
                o->lp = o->call + (uint64_t)(lcgen_unit(&rs) * (double)(o->ret - o->call));
                if (it + 1 == iters && j + 1 == per && lcgen_unit(&rs) < p->pending_frac) {
                    o->ret = LINCHECK_NEVER;
                    if (lcgen_unit(&rs) < 0.5)
                        o->lp = LINCHECK_NEVER;
                }
                t = o->ret == LINCHECK_NEVER ? o->call : o->ret + (uint64_t)(lcgen_unit(&rs) * mean * 0.2);
                if (t > end)
                    end = t;
            }
        }
        t0 = end + 1000000;
    }
    for (unsigned k = 0; p->final_get && k < nkeys; k++) {
        gop *o = &ops[ng++];
        *o = (gop){ .client = 0, .kind = LINCHECK_GET, .key = k, .call = t0, .ret = t0 + 1000, .lp = t0 + k };
        t0 += 2000;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        kv[ops[i].key].last_write = SIZE_MAX;
        kv[ops[i].key].had_put |= ops[i].kind == LINCHECK_PUT;
        if (ops[i].lp != LINCHECK_NEVER)
            idx[m++] = i;
    }
    sort_idx(idx, tmp, m, ops);
    size_t cands = 0, bad = SIZE_MAX, before_len = 0;
    for (size_t j = 0; j < m; j++) {
        gop *o = &ops[idx[j]];
        gval *v = &kv[o->key];
        if (o->kind == LINCHECK_GET) {
            if (o->ret == LINCHECK_NEVER)
                continue;
            if (!(o->val = malloc(v->len + 1)))
                goto done;
            if (v->len)
                memcpy(o->val, v->s, v->len);
            o->val[v->len] = '\0';
            o->vlen = v->len;
            /* Only keys without Puts: then no order can rebuild the old
             * value once the last write is in, so the change is illegal. */
            if (corrupt && !v->had_put && v->last_write != SIZE_MAX && ops[v->last_write].ret < o->call) {
                if (lcgen_rand(&rs) % ++cands == 0) {
                    bad = idx[j];
                    before_len = v->before_len;
                    char *b = realloc(before, before_len + 1);
                    if (!b)
                        goto done;
                    before = b;
                    memcpy(before, v->s, before_len);
                }
            }
            continue;
        }
        v->before_len = v->len;
        if (o->kind == LINCHECK_PUT)
            v->len = 0;
        if (v->len + o->vlen + 1 > v->cap) {
            size_t cap = (v->len + o->vlen + 1) * 2;
            char *s = realloc(v->s, cap);
            if (!s)
                goto done;
            v->s = s;
            v->cap = cap;
        }
        memcpy(v->s + v->len, o->val, o->vlen);
        v->len += o->vlen;
        v->last_write = idx[j];
    }
    if (bad != SIZE_MAX) {
        free(ops[bad].val);
        ops[bad].val = before;
        ops[bad].vlen = before_len;
        before = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        gop *o = &ops[i];
        char key[32];
        if (p->one_key)
            snprintf(key, sizeof key, "k");
        else
            snprintf(key, sizeof key, "k%u", o->key);
        lincheck_op op = { .client = o->client, .kind = o->kind, .key = key, .key_len = strlen(key),
                           .value = o->val ? o->val : "", .value_len = o->vlen,
                           .call_ns = o->call, .return_ns = o->ret };
        if ((rc = lincheck_add(h, &op)))
            goto done;
        if (i == bad && bad_op)
            *bad_op = i;
    }
    *out = h;
    h = NULL;
    rc = 0;
done:
    if (ops)
        for (size_t i = 0; i < n; i++)
            free(ops[i].val);
    if (kv)
        for (unsigned k = 0; k < nkeys; k++)
            free(kv[k].s);
    free(ops);
    free(kv);
    free(idx);
    free(tmp);
    free(before);
    lincheck_history_free(h);
    return rc;
}
