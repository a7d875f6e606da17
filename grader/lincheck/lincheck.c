/* lincheck: the history container, the checker and its explanation.
 * See lincheck.h for the model, the rules on time and the budget. */
#include "lincheck.h"

#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

const char *lincheck_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case LINCHECK_ENOMEM: return "out of memory";
    case LINCHECK_EINVAL: return "invalid argument";
    case LINCHECK_EFORMAT: return "malformed history file";
    case LINCHECK_EIO: return "input/output error";
    default: return "unknown error";
    }
}

const char *lincheck_kind_name(lincheck_kind kind)
{
    switch (kind) {
    case LINCHECK_GET: return "get";
    case LINCHECK_PUT: return "put";
    case LINCHECK_APPEND: return "append";
    }
    return "?";
}

const char *lincheck_verdict_name(lincheck_verdict v)
{
    switch (v) {
    case LINCHECK_OK: return "linearizable";
    case LINCHECK_ILLEGAL: return "not linearizable";
    case LINCHECK_UNKNOWN: return "unknown (budget exceeded)";
    }
    return "?";
}

/* ---- the history ---- */

struct lincheck_history {
    lincheck_op *ops;
    size_t n, cap;
};

lincheck_history *lincheck_history_new(void)
{
    return calloc(1, sizeof(lincheck_history));
}

void lincheck_history_free(lincheck_history *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++) {
        free((char *)h->ops[i].key);
        free((char *)h->ops[i].value);
    }
    free(h->ops);
    free(h);
}

static char *dup_bytes(const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int lincheck_add(lincheck_history *h, const lincheck_op *op)
{
    if (!h || !op)
        return LINCHECK_EINVAL;
    if (op->kind != LINCHECK_GET && op->kind != LINCHECK_PUT && op->kind != LINCHECK_APPEND)
        return LINCHECK_EINVAL;
    if (op->call_ns == LINCHECK_NEVER || op->return_ns < op->call_ns)
        return LINCHECK_EINVAL;
    if ((!op->key && op->key_len) || (!op->value && op->value_len))
        return LINCHECK_EINVAL;
    /* Indices into the checker's tables are 32 bits. */
    if (h->n >= (size_t)INT32_MAX / 2)
        return LINCHECK_ENOMEM;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        lincheck_op *ops = realloc(h->ops, cap * sizeof *ops);
        if (!ops)
            return LINCHECK_ENOMEM;
        h->ops = ops;
        h->cap = cap;
    }
    char *key = dup_bytes(op->key, op->key_len);
    char *value = dup_bytes(op->value, op->value_len);
    if (!key || !value) {
        free(key);
        free(value);
        return LINCHECK_ENOMEM;
    }
    lincheck_op *o = &h->ops[h->n++];
    *o = *op;
    o->key = key;
    o->value = value;
    return 0;
}

int lincheck_add_str(lincheck_history *h, uint32_t client, lincheck_kind kind,
                     const char *key, const char *value,
                     uint64_t call_ns, uint64_t return_ns)
{
    if (!key)
        return LINCHECK_EINVAL;
    lincheck_op op = {
        .client = client, .kind = kind,
        .key = key, .key_len = strlen(key),
        .value = value ? value : "", .value_len = value ? strlen(value) : 0,
        .call_ns = call_ns, .return_ns = return_ns,
    };
    return lincheck_add(h, &op);
}

size_t lincheck_history_len(const lincheck_history *h)
{
    return h ? h->n : 0;
}

const lincheck_op *lincheck_history_op(const lincheck_history *h, size_t i)
{
    return h && i < h->n ? &h->ops[i] : NULL;
}

/* ---- hashing ---- */

/* Values are hashed as polynomials (mod 2^64), so that the hash of a + b
 * follows from the hashes of a and b: Append costs O(1), not O(length).
 * Collisions only cost an exact comparison. */
#define HASH_BASE 0x100000001b3ull

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static void hash_bytes(const char *s, size_t n, uint64_t *hash, uint64_t *pow)
{
    uint64_t h = 0, p = 1;
    for (size_t i = 0; i < n; i++) {
        h = h * HASH_BASE + (unsigned char)s[i] + 1;
        p *= HASH_BASE;
    }
    *hash = h;
    *pow = p;
}

/* Grows *p (of *cap elements of size sz) to hold at least need elements. */
static int grow(void *p, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / sz)
            return LINCHECK_ENOMEM;
        c *= 2;
    }
    void *q = realloc(*(void **)p, c * sz);
    if (!q)
        return LINCHECK_ENOMEM;
    *(void **)p = q;
    *cap = c;
    return 0;
}

/* ---- one key's search ---- */

/* A model state: a value, either flat (bytes held by the history) or the
 * value of parent with piece appended. Chains keep long appended values
 * cheap: an Append stores its piece, not a copy of the whole value. */
typedef struct node {
    uint64_t hash;
    size_t len;
    uint32_t parent;        /* NONE: flat */
    uint32_t pref_get;      /* memo of is_prefix: the Get last asked, */
    bool pref_ok;           /*   and its answer */
    const char *piece;
    size_t piece_len;
} node;

typedef struct kop {
    size_t gi;              /* history index */
    lincheck_kind kind;
    bool pending;
    const char *val;
    size_t vlen;
    uint64_t vhash, vpow;
    uint32_t sid;           /* put/get: the interned value */
    uint64_t zob;           /* its share of the linearized set's hash */
} kop;

typedef struct memo_ent {
    uint64_t hash;
    uint32_t state;
    uint32_t nwords;
    size_t off;             /* into kctx.mw */
} memo_ent;

typedef struct trans_ent {
    uint64_t key;           /* state << 32 | op; UINT64_MAX: empty */
    uint32_t to;
} trans_ent;

typedef struct kctx {
    const lincheck_history *h;
    uint32_t n, nc;         /* ops; completed ones come first */
    kop *ops;
    uint32_t *order;        /* entries in time order (2i call, 2i+1 return) */

    node *nodes;
    size_t nnodes, capnodes;
    uint32_t *itab;         /* interned values: node id + 1, 0 empty */
    size_t icap;
    trans_ent *ttab;        /* memo of Append transitions */
    size_t tcap, tcount;

    uint32_t *next, *prev;  /* the entry list; head is entry 2n */
    uint32_t head;

    uint64_t *bits;         /* linearized: completed words then pending */
    size_t nwc, nwp, lo, hi_end;
    uint64_t zob;

    memo_ent *ments;        /* Lowe's memo */
    size_t nment, capment;
    uint64_t *mw;           /* the memo's encoded sets */
    size_t nmw, capmw;
    uint32_t *mtab;
    size_t mcap;
    uint64_t *enc;

    uint32_t *stk_op, *stk_st;
    size_t depth;
    uint32_t *best;
    size_t nbest, low;

    bool no_prune;          /* the search for an explanation: see check_key */
    uint32_t *rank;         /* entry -> its place in order */
    uint32_t *gets, *puts;  /* completed Gets by return, all Puts by call */
    uint32_t *pos;          /* op -> its place in gets or puts */
    size_t ngets, nputs;
    size_t gfirst, pfirst;  /* the first of each not linearized */

    char *sa, *sb;          /* scratch for exact comparisons */
    size_t sacap, sbcap;
    uint32_t *walk;
    size_t walkcap;
} kctx;

static void kctx_free(kctx *k)
{
    free(k->ops);
    free(k->order);
    free(k->nodes);
    free(k->itab);
    free(k->ttab);
    free(k->next);
    free(k->prev);
    free(k->bits);
    free(k->ments);
    free(k->mw);
    free(k->mtab);
    free(k->enc);
    free(k->stk_op);
    free(k->stk_st);
    free(k->best);
    free(k->rank);
    free(k->gets);
    free(k->puts);
    free(k->pos);
    free(k->sa);
    free(k->sb);
    free(k->walk);
}

/* Writes value s (k->nodes[s].len bytes) into buf. */
static void materialize(const kctx *k, uint32_t s, char *buf)
{
    size_t p = k->nodes[s].len;
    while (k->nodes[s].parent != NONE) {
        p -= k->nodes[s].piece_len;
        memcpy(buf + p, k->nodes[s].piece, k->nodes[s].piece_len);
        s = k->nodes[s].parent;
    }
    if (p)
        memcpy(buf, k->nodes[s].piece, p);
}

static int scratch(char **buf, size_t *cap, size_t need)
{
    return grow(buf, cap, need ? need : 1, 1);
}

static int itab_resize(kctx *k)
{
    size_t cap = k->icap ? k->icap * 2 : 1024;
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t)
        return LINCHECK_ENOMEM;
    for (size_t i = 0; i < k->nnodes; i++) {
        size_t j = mix64(k->nodes[i].hash ^ k->nodes[i].len) & (cap - 1);
        while (t[j])
            j = (j + 1) & (cap - 1);
        t[j] = (uint32_t)i + 1;
    }
    free(k->itab);
    k->itab = t;
    k->icap = cap;
    return 0;
}

static int add_node(kctx *k, node nd, uint32_t *id)
{
    if (k->nnodes >= NONE - 1)
        return LINCHECK_ENOMEM;
    if (grow(&k->nodes, &k->capnodes, k->nnodes + 1, sizeof(node)))
        return LINCHECK_ENOMEM;
    if ((k->nnodes + 1) * 2 > k->icap) {
        /* Resizing rehashes every node; the new one joins after. */
        if (itab_resize(k))
            return LINCHECK_ENOMEM;
    }
    nd.pref_get = NONE;
    *id = (uint32_t)k->nnodes;
    k->nodes[k->nnodes++] = nd;
    size_t j = mix64(nd.hash ^ nd.len) & (k->icap - 1);
    while (k->itab[j])
        j = (j + 1) & (k->icap - 1);
    k->itab[j] = *id + 1;
    return 0;
}

/* The id of the value pre + suf (pre a node or NONE for "", suf bytes),
 * interning it if new. Equal values always get equal ids, so the model
 * compares states by id. */
static int intern(kctx *k, uint32_t pre, const char *suf, size_t sufl,
                  uint64_t hash, size_t len, uint32_t *id)
{
    size_t plen = pre == NONE ? 0 : k->nodes[pre].len;
    bool have_pre = false;
    for (size_t j = mix64(hash ^ len) & (k->icap - 1); k->itab[j]; j = (j + 1) & (k->icap - 1)) {
        uint32_t c = k->itab[j] - 1;
        if (k->nodes[c].hash != hash || k->nodes[c].len != len)
            continue;
        if (scratch(&k->sa, &k->sacap, len))
            return LINCHECK_ENOMEM;
        materialize(k, c, k->sa);
        if (plen && !have_pre) {
            if (scratch(&k->sb, &k->sbcap, plen))
                return LINCHECK_ENOMEM;
            materialize(k, pre, k->sb);
            have_pre = true;
        }
        if ((plen == 0 || memcmp(k->sa, k->sb, plen) == 0) &&
            (sufl == 0 || memcmp(k->sa + plen, suf, sufl) == 0)) {
            *id = c;
            return 0;
        }
    }
    node nd = { .hash = hash, .len = len, .parent = NONE, .piece = suf, .piece_len = sufl };
    if (pre != NONE && plen) {
        nd.parent = pre;
    } else if (pre != NONE) {
        nd.parent = NONE;   /* "" + suf is flat */
    }
    return add_node(k, nd, id);
}

static int trans_find(kctx *k, uint64_t key, uint32_t **to)
{
    if ((k->tcount + 1) * 2 > k->tcap) {
        size_t cap = k->tcap ? k->tcap * 2 : 1024;
        trans_ent *t = malloc(cap * sizeof *t);
        if (!t)
            return LINCHECK_ENOMEM;
        for (size_t i = 0; i < cap; i++)
            t[i].key = UINT64_MAX;
        for (size_t i = 0; i < k->tcap; i++) {
            if (k->ttab[i].key == UINT64_MAX)
                continue;
            size_t j = mix64(k->ttab[i].key) & (cap - 1);
            while (t[j].key != UINT64_MAX)
                j = (j + 1) & (cap - 1);
            t[j] = k->ttab[i];
        }
        free(k->ttab);
        k->ttab = t;
        k->tcap = cap;
    }
    size_t j = mix64(key) & (k->tcap - 1);
    while (k->ttab[j].key != UINT64_MAX && k->ttab[j].key != key)
        j = (j + 1) & (k->tcap - 1);
    if (k->ttab[j].key == UINT64_MAX) {
        k->ttab[j].key = key;
        k->ttab[j].to = NONE;
        k->tcount++;
    }
    *to = &k->ttab[j].to;
    return 0;
}

/* One model step of op i from state s: 1 legal (*to is the new state), 0
 * illegal, or an error. */
static int model_step(kctx *k, uint32_t s, uint32_t i, uint32_t *to)
{
    const kop *o = &k->ops[i];
    switch (o->kind) {
    case LINCHECK_GET:
        *to = s;
        return s == o->sid;
    case LINCHECK_PUT:
        *to = o->sid;
        return 1;
    case LINCHECK_APPEND:
        break;
    }
    if (o->vlen == 0) {
        *to = s;
        return 1;
    }
    uint32_t *t;
    if (trans_find(k, (uint64_t)s << 32 | i, &t))
        return LINCHECK_ENOMEM;
    if (*t == NONE) {
        const node *ns = &k->nodes[s];
        uint32_t id;
        if (intern(k, s, o->val, o->vlen, ns->hash * o->vpow + o->vhash, ns->len + o->vlen, &id))
            return LINCHECK_ENOMEM;
        *t = id;
    }
    *to = *t;
    return 1;
}

/* Is value s a prefix of Get g's output? Memoised per node for the last
 * Get asked, so a chain is walked once per target Get. */
static int is_prefix(kctx *k, uint32_t s, uint32_t g)
{
    const kop *G = &k->ops[g];
    size_t nw = 0;
    uint32_t c = s;
    for (;;) {
        if (grow(&k->walk, &k->walkcap, nw + 1, sizeof(uint32_t)))
            return LINCHECK_ENOMEM;
        k->walk[nw++] = c;
        if (k->nodes[c].pref_get == g || k->nodes[c].parent == NONE)
            break;
        c = k->nodes[c].parent;
    }
    bool ok;
    node *top = &k->nodes[k->walk[nw - 1]];
    if (top->pref_get == g) {
        ok = top->pref_ok;
    } else {
        ok = top->len <= G->vlen && (top->len == 0 || memcmp(G->val, top->piece, top->len) == 0);
        top->pref_get = g;
        top->pref_ok = ok;
    }
    for (size_t j = nw - 1; j-- > 0;) {
        node *nd = &k->nodes[k->walk[j]];
        size_t plen = nd->len - nd->piece_len;
        ok = ok && nd->len <= G->vlen && memcmp(G->val + plen, nd->piece, nd->piece_len) == 0;
        nd->pref_get = g;
        nd->pref_ok = ok;
    }
    return ok;
}

static bool bit_get(const kctx *k, uint32_t i)
{
    size_t w = i < k->nc ? i / 64 : k->nwc + (i - k->nc) / 64;
    unsigned b = i < k->nc ? i % 64 : (i - k->nc) % 64;
    return k->bits[w] >> b & 1;
}

static void bit_set(kctx *k, uint32_t i)
{
    k->zob ^= k->ops[i].zob;
    if (k->ops[i].kind == LINCHECK_PUT && k->pos[i] == k->pfirst)
        while (k->pfirst < k->nputs && bit_get(k, k->puts[k->pfirst]) | (k->puts[k->pfirst] == i))
            k->pfirst++;
    if (k->ops[i].kind == LINCHECK_GET && k->pos[i] == k->gfirst)
        while (k->gfirst < k->ngets && bit_get(k, k->gets[k->gfirst]) | (k->gets[k->gfirst] == i))
            k->gfirst++;
    if (i >= k->nc) {
        k->bits[k->nwc + (i - k->nc) / 64] |= 1ull << ((i - k->nc) % 64);
        return;
    }
    size_t w = i / 64;
    k->bits[w] |= 1ull << (i % 64);
    if (w + 1 > k->hi_end)
        k->hi_end = w + 1;
    while (k->lo < k->nwc && k->bits[k->lo] == UINT64_MAX)
        k->lo++;
}

static void bit_clear(kctx *k, uint32_t i)
{
    k->zob ^= k->ops[i].zob;
    if (k->ops[i].kind == LINCHECK_PUT && k->pos[i] < k->pfirst)
        k->pfirst = k->pos[i];
    if (k->ops[i].kind == LINCHECK_GET && !k->ops[i].pending && k->pos[i] < k->gfirst)
        k->gfirst = k->pos[i];
    if (i >= k->nc) {
        k->bits[k->nwc + (i - k->nc) / 64] &= ~(1ull << ((i - k->nc) % 64));
        return;
    }
    size_t w = i / 64;
    k->bits[w] &= ~(1ull << (i % 64));
    if (w < k->lo)
        k->lo = w;
    while (k->hi_end > 0 && k->bits[k->hi_end - 1] == 0)
        k->hi_end--;
}

static int memo_resize(kctx *k)
{
    size_t cap = k->mcap ? k->mcap * 2 : 4096;
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t)
        return LINCHECK_ENOMEM;
    for (size_t i = 0; i < k->nment; i++) {
        size_t j = k->ments[i].hash & (cap - 1);
        while (t[j])
            j = (j + 1) & (cap - 1);
        t[j] = (uint32_t)i + 1;
    }
    free(k->mtab);
    k->mtab = t;
    k->mcap = cap;
    return 0;
}

/* Adds (linearized set, state) to the memo: 1 if new, 0 if seen. The set
 * is stored canonically and small: the index of the first completed word
 * that is not all ones (all before it are), the pending words, then the
 * completed words from there to the last non-zero one. Ops are numbered in
 * call order, so that window spans about the ops in flight. */
static int memo_add(kctx *k, uint32_t state)
{
    size_t ne = 0;
    k->enc[ne++] = k->lo;
    for (size_t i = 0; i < k->nwp; i++)
        k->enc[ne++] = k->bits[k->nwc + i];
    for (size_t i = k->lo; i < k->hi_end; i++)
        k->enc[ne++] = k->bits[i];
    uint64_t hash = mix64(k->zob ^ ((uint64_t)state * 0x9e3779b97f4a7c15ull));
    for (size_t j = hash & (k->mcap - 1); k->mtab[j]; j = (j + 1) & (k->mcap - 1)) {
        const memo_ent *e = &k->ments[k->mtab[j] - 1];
        if (e->hash == hash && e->state == state && e->nwords == ne &&
            memcmp(k->mw + e->off, k->enc, ne * sizeof(uint64_t)) == 0)
            return 0;
    }
    if (k->nment >= NONE - 1 ||
        grow(&k->ments, &k->capment, k->nment + 1, sizeof(memo_ent)) ||
        grow(&k->mw, &k->capmw, k->nmw + ne, sizeof(uint64_t)))
        return LINCHECK_ENOMEM;
    if ((k->nment + 1) * 2 > k->mcap && memo_resize(k))
        return LINCHECK_ENOMEM;
    memcpy(k->mw + k->nmw, k->enc, ne * sizeof(uint64_t));
    k->ments[k->nment] = (memo_ent){ .hash = hash, .state = state, .nwords = (uint32_t)ne, .off = k->nmw };
    k->nmw += ne;
    size_t j = hash & (k->mcap - 1);
    while (k->mtab[j])
        j = (j + 1) & (k->mcap - 1);
    k->mtab[j] = (uint32_t)++k->nment;
    return 1;
}

static void lift(kctx *k, uint32_t call)
{
    for (uint32_t e = call; e <= call + 1; e++) {
        k->next[k->prev[e]] = k->next[e];
        if (k->next[e] != NONE)
            k->prev[k->next[e]] = k->prev[e];
    }
}

static void unlift(kctx *k, uint32_t call)
{
    for (uint32_t e = call + 2; e-- > call;) {
        k->next[k->prev[e]] = e;
        if (k->next[e] != NONE)
            k->prev[k->next[e]] = e;
    }
}

/* The pruning rule. Let G be the completed Get not yet linearized that
 * returned first. Until G the value only grows by Appends, unless a Put
 * left that was called before G returned comes first. So G's output must
 * begin with the value now, or with the value of such a Put. May the
 * search move to state to (the op just tried is in the bit set already)?
 * 1 yes, 0 pruned (*g gets G), or an error. */
static int prune_ok(kctx *k, uint32_t to, uint32_t *g)
{
    *g = NONE;
    if (k->no_prune || k->gfirst == k->ngets)
        return 1;
    uint32_t G = k->gets[k->gfirst];
    int r = is_prefix(k, to, G);
    if (r != 0)
        return r;
    const kop *og = &k->ops[G];
    for (size_t j = k->pfirst; j < k->nputs && k->rank[2 * k->puts[j]] < k->rank[2 * G + 1]; j++) {
        const kop *p = &k->ops[k->puts[j]];
        if (!bit_get(k, k->puts[j]) && p->vlen <= og->vlen &&
            (p->vlen == 0 || memcmp(og->val, p->val, p->vlen) == 0))
            return 1;
    }
    *g = G;
    return 0;
}

typedef struct entry_key {
    uint64_t time;
    int cls;
    uint32_t entry;
} entry_key;

static int cmp_entry(const void *a, const void *b)
{
    const entry_key *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->cls != y->cls)
        return x->cls < y->cls ? -1 : 1;
    return x->entry < y->entry ? -1 : x->entry > y->entry;
}

typedef struct opkey {
    size_t gi;
    uint64_t call;
    bool pending;
} opkey;

static int cmp_opkey(const void *a, const void *b)
{
    const opkey *x = a, *y = b;
    if (x->pending != y->pending)
        return x->pending ? 1 : -1;
    if (x->call != y->call)
        return x->call < y->call ? -1 : 1;
    return x->gi < y->gi ? -1 : x->gi > y->gi;
}

/* Sets up k for the ops gis[0..n) of one key (pending Gets left out). */
static int kctx_init(kctx *k, const lincheck_history *h, const size_t *gis, size_t n)
{
    memset(k, 0, sizeof *k);
    k->h = h;
    opkey *ok = malloc((n ? n : 1) * sizeof *ok);
    if (!ok)
        return LINCHECK_ENOMEM;
    size_t m = 0;
    for (size_t j = 0; j < n; j++) {
        const lincheck_op *o = &h->ops[gis[j]];
        if (o->kind == LINCHECK_GET && o->return_ns == LINCHECK_NEVER)
            continue;
        ok[m++] = (opkey){ .gi = gis[j], .call = o->call_ns, .pending = o->return_ns == LINCHECK_NEVER };
    }
    qsort(ok, m, sizeof *ok, cmp_opkey);
    k->n = (uint32_t)m;
    size_t ne = 2 * m + 1;
    k->ops = calloc(m ? m : 1, sizeof *k->ops);
    k->order = malloc(ne * sizeof *k->order);
    k->next = malloc(ne * sizeof *k->next);
    k->prev = malloc(ne * sizeof *k->prev);
    k->stk_op = malloc((m ? m : 1) * sizeof *k->stk_op);
    k->stk_st = malloc((m ? m : 1) * sizeof *k->stk_st);
    k->best = malloc((m ? m : 1) * sizeof *k->best);
    k->rank = malloc(ne * sizeof *k->rank);
    k->gets = malloc((m ? m : 1) * sizeof *k->gets);
    k->puts = malloc((m ? m : 1) * sizeof *k->puts);
    k->pos = malloc((m ? m : 1) * sizeof *k->pos);
    entry_key *ek = malloc(ne * sizeof *ek);
    if (!k->ops || !k->order || !k->next || !k->prev || !k->stk_op || !k->stk_st ||
        !k->best || !k->rank || !k->gets || !k->puts || !k->pos || !ek) {
        free(ok);
        free(ek);
        return LINCHECK_ENOMEM;
    }
    uint32_t np = 0;
    for (uint32_t i = 0; i < m; i++) {
        const lincheck_op *o = &h->ops[ok[i].gi];
        kop *p = &k->ops[i];
        p->gi = ok[i].gi;
        p->kind = o->kind;
        p->pending = ok[i].pending;
        p->val = o->value;
        p->vlen = o->value_len;
        hash_bytes(o->value, o->value_len, &p->vhash, &p->vpow);
        p->zob = mix64(0x6c696e636865636bull + i);
        np += p->pending;
        /* Closed intervals: at equal times calls come first, so an op
         * that returns at t overlaps one called at t. */
        ek[2 * i] = (entry_key){ .time = o->call_ns, .cls = 0, .entry = 2 * i };
        ek[2 * i + 1] = (entry_key){ .time = o->return_ns, .cls = 1, .entry = 2 * i + 1 };
    }
    free(ok);
    k->nc = k->n - np;
    qsort(ek, 2 * m, sizeof *ek, cmp_entry);
    k->head = 2 * (uint32_t)m;
    uint32_t last = k->head;
    k->next[k->head] = NONE;
    k->prev[k->head] = NONE;
    for (size_t j = 0; j < 2 * m; j++) {
        uint32_t e = ek[j].entry;
        k->order[j] = e;
        k->next[last] = e;
        k->prev[e] = last;
        k->next[e] = NONE;
        last = e;
    }
    free(ek);
    /* Gets by return and Puts by call: the order of the entry list. */
    for (size_t j = 0; j < 2 * m; j++) {
        uint32_t e = k->order[j], i = e / 2;
        k->rank[e] = (uint32_t)j;
        if (k->ops[i].kind == LINCHECK_GET && e % 2 == 1 && !k->ops[i].pending) {
            k->pos[i] = (uint32_t)k->ngets;
            k->gets[k->ngets++] = i;
        } else if (k->ops[i].kind == LINCHECK_PUT && e % 2 == 0) {
            k->pos[i] = (uint32_t)k->nputs;
            k->puts[k->nputs++] = i;
        }
    }
    k->nwc = (k->nc + 63) / 64;
    k->nwp = (np + 63) / 64;
    k->bits = calloc(k->nwc + k->nwp + 1, sizeof(uint64_t));
    k->enc = malloc((k->nwc + k->nwp + 1) * sizeof(uint64_t));
    if (!k->bits || !k->enc || itab_resize(k) || memo_resize(k))
        return LINCHECK_ENOMEM;
    uint32_t empty;
    node e0 = { .hash = 0, .len = 0, .parent = NONE, .piece = "", .piece_len = 0 };
    if (add_node(k, e0, &empty))
        return LINCHECK_ENOMEM;
    for (uint32_t i = 0; i < m; i++) {
        kop *p = &k->ops[i];
        if (p->kind != LINCHECK_APPEND &&
            intern(k, NONE, p->val, p->vlen, p->vhash, p->vlen, &p->sid))
            return LINCHECK_ENOMEM;
    }
    return 0;
}

typedef enum search_res { S_OK, S_ILLEGAL, S_UNKNOWN } search_res;

/* Wing & Gong's search with Lowe's memo over the entry list. Adds the steps
 * taken to *steps and stops (S_UNKNOWN) when it would pass limit. */
static int search(kctx *k, uint64_t *steps, uint64_t limit, search_res *res)
{
    uint32_t state = 0;
    size_t left = k->nc;
    uint32_t e = k->next[k->head];
    k->depth = 0;
    k->nbest = 0;
    k->low = 0;
    for (;;) {
        if (left == 0) {
            *res = S_OK;
            return 0;
        }
        if (*steps >= limit) {
            *res = S_UNKNOWN;
            return 0;
        }
        ++*steps;
        if (e != NONE && e % 2 == 0) {
            uint32_t i = e / 2, to, g;
            int r = model_step(k, state, i, &to);
            if (r < 0)
                return r;
            if (r) {
                bit_set(k, i);
                r = prune_ok(k, to, &g);
                if (r > 0)
                    r = memo_add(k, to);
                if (r < 0)
                    return r;
                if (r) {
                    k->stk_op[k->depth] = i;
                    k->stk_st[k->depth] = state;
                    k->depth++;
                    state = to;
                    left -= !k->ops[i].pending;
                    lift(k, e);
                    e = k->next[k->head];
                    continue;
                }
                bit_clear(k, i);
            }
            e = k->next[e];
            continue;
        }
        /* A return (or the end): the op that returns first was not
         * linearized, so undo the last choice and try the next. */
        if (k->depth == 0) {
            *res = S_ILLEGAL;
            return 0;
        }
        if (k->depth > k->nbest) {
            memcpy(k->best + k->low, k->stk_op + k->low, (k->depth - k->low) * sizeof(uint32_t));
            k->nbest = k->depth;
            k->low = k->depth;
        }
        k->depth--;
        if (k->depth < k->low)
            k->low = k->depth;
        uint32_t i = k->stk_op[k->depth];
        state = k->stk_st[k->depth];
        unlift(k, 2 * i);
        bit_clear(k, i);
        left += !k->ops[i].pending;
        e = k->next[2 * i];
    }
}

/* ---- the check ---- */

typedef struct keyed {
    size_t gi;
    const lincheck_op *op;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const lincheck_op *x = ((const keyed *)a)->op, *y = ((const keyed *)b)->op;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = n ? memcmp(x->key, y->key, n) : 0;
    if (c)
        return c;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    size_t i = ((const keyed *)a)->gi, j = ((const keyed *)b)->gi;
    return i < j ? -1 : i > j;
}

void lincheck_result_free(lincheck_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nkeys; i++)
        free(r->keys[i].key);
    free(r->keys);
    free(r->key_ops);
    free(r->partial);
    free(r->partial_len);
    free(r->value);
    free(r->blocked);
    memset(r, 0, sizeof *r);
}

/* Fills r's illegal-key fields from the finished search of k. */
static int report_illegal(kctx *k, lincheck_result *r)
{
    r->nkey_ops = k->n;
    r->key_ops = malloc((k->n ? k->n : 1) * sizeof(size_t));
    r->npartial = k->nbest;
    r->partial = malloc((k->nbest ? k->nbest : 1) * sizeof(size_t));
    r->partial_len = malloc((k->nbest ? k->nbest : 1) * sizeof(size_t));
    r->blocked = malloc((k->n ? k->n : 1) * sizeof(lincheck_blocked));
    if (!r->key_ops || !r->partial || !r->partial_len || !r->blocked)
        return LINCHECK_ENOMEM;
    /* key_ops in call order (ops are numbered completed first). */
    size_t nk = 0;
    for (size_t j = 0; j < 2 * (size_t)k->n; j++)
        if (k->order[j] % 2 == 0)
            r->key_ops[nk++] = k->ops[k->order[j] / 2].gi;
    /* Replay the longest partial order to its state and set. */
    uint32_t state = 0;
    for (size_t d = 0; d < k->nbest; d++) {
        uint32_t i = k->best[d], to;
        int rc = model_step(k, state, i, &to);
        if (rc < 0)
            return rc;
        state = to;
        bit_set(k, i);
        r->partial[d] = k->ops[i].gi;
        r->partial_len[d] = k->nodes[state].len;
    }
    r->value_len = k->nodes[state].len;
    r->value = malloc(r->value_len + 1);
    if (!r->value)
        return LINCHECK_ENOMEM;
    materialize(k, state, r->value);
    r->value[r->value_len] = '\0';
    /* The ops that could come next: calls before the first return left. */
    r->nblocked = 0;
    for (size_t j = 0; j < 2 * (size_t)k->n; j++) {
        uint32_t e = k->order[j], i = e / 2;
        if (bit_get(k, i))
            continue;
        if (e % 2) {
            if (!k->ops[i].pending)
                for (size_t b = 0; b < r->nblocked; b++)
                    if (r->blocked[b].op == k->ops[i].gi)
                        r->blocked[b].returns_first = true;
            break;
        }
        uint32_t to, g = NONE;
        int rc = model_step(k, state, i, &to);
        if (rc < 0)
            return rc;
        lincheck_blocked *b = &r->blocked[r->nblocked++];
        *b = (lincheck_blocked){ .op = k->ops[i].gi, .why = LINCHECK_WHY_VALUE, .later_get = SIZE_MAX };
        if (rc == 0)
            continue;
        bit_set(k, i);
        rc = prune_ok(k, to, &g);
        bit_clear(k, i);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            b->why = LINCHECK_WHY_PREFIX;
            b->later_get = k->ops[g].gi;
        } else {
            b->why = LINCHECK_WHY_EXPLORED;
        }
    }
    return 0;
}

static search_res run_key(const lincheck_history *h, const size_t *gis, size_t n, bool no_prune,
                          uint64_t *steps, uint64_t limit, kctx *k, int *rc)
{
    search_res res = S_UNKNOWN;
    *rc = kctx_init(k, h, gis, n);
    k->no_prune = no_prune;
    if (*rc == 0)
        *rc = search(k, steps, limit, &res);
    return res;
}

static int check_key(const lincheck_history *h, const size_t *gis, size_t n,
                     uint64_t *steps, uint64_t limit, lincheck_result *r,
                     lincheck_verdict *v, size_t *nops)
{
    kctx k;
    int rc;
    uint64_t before = *steps;
    search_res res = run_key(h, gis, n, false, steps, limit, &k, &rc);
    *nops = k.n;
    if (rc == 0 && res == S_ILLEGAL) {
        /* The prefix rule cuts orders short, which makes the longest one a
         * poor explanation. Search again without it, on a small budget,
         * and explain with that search if it finishes. */
        kctx k2;
        uint64_t used = *steps - before, limit2 = *steps + 4 * used + 10000;
        if (limit2 > limit || limit2 < *steps)
            limit2 = limit;
        search_res res2 = run_key(h, gis, n, true, steps, limit2, &k2, &rc);
        if (rc == 0 && res2 == S_ILLEGAL) {
            kctx_free(&k);
            k = k2;
        } else {
            kctx_free(&k2);
        }
    }
    if (rc == 0) {
        *v = res == S_OK ? LINCHECK_OK : res == S_ILLEGAL ? LINCHECK_ILLEGAL : LINCHECK_UNKNOWN;
        if (res == S_ILLEGAL)
            rc = report_illegal(&k, r);
    }
    kctx_free(&k);
    return rc;
}

int lincheck_check(const lincheck_history *h, uint64_t max_steps, lincheck_result *out)
{
    if (!out)
        return LINCHECK_EINVAL;
    memset(out, 0, sizeof *out);
    if (!h)
        return LINCHECK_EINVAL;
    if (max_steps == 0)
        max_steps = LINCHECK_DEFAULT_STEPS;
    lincheck_result *r = out;
    r->max_steps = max_steps;
    r->nops = h->n;
    size_t n = h->n;
    keyed *ks = malloc((n ? n : 1) * sizeof *ks);
    size_t *gis = malloc((n ? n : 1) * sizeof *gis);
    size_t *kstart = malloc((n + 1) * sizeof *kstart);
    int rc = LINCHECK_ENOMEM;
    if (!ks || !gis || !kstart)
        goto fail;
    for (size_t i = 0; i < n; i++)
        ks[i] = (keyed){ .gi = i, .op = &h->ops[i] };
    qsort(ks, n, sizeof *ks, cmp_keyed);
    size_t nk = 0;
    for (size_t i = 0; i < n; i++) {
        gis[i] = ks[i].gi;
        if (i == 0 || ks[i].op->key_len != ks[i - 1].op->key_len ||
            memcmp(ks[i].op->key, ks[i - 1].op->key, ks[i].op->key_len) != 0)
            kstart[nk++] = i;
    }
    kstart[nk] = n;
    r->keys = calloc(nk ? nk : 1, sizeof *r->keys);
    if (!r->keys)
        goto fail;
    r->nkeys = nk;
    for (size_t j = 0; j < nk; j++) {
        const lincheck_op *o = &h->ops[gis[kstart[j]]];
        r->keys[j].key = dup_bytes(o->key, o->key_len);
        if (!r->keys[j].key)
            goto fail;
        r->keys[j].key_len = o->key_len;
        r->keys[j].verdict = LINCHECK_UNKNOWN;
    }
    /* Pass 1: each key its share; pass 2: unknown keys get what is left. */
    uint64_t share = nk ? max_steps / nk : 0;
    if (share == 0)
        share = 1;
    bool illegal = false;
    for (int pass = 1; pass <= 2 && !illegal; pass++) {
        for (size_t j = 0; j < nk && !illegal; j++) {
            lincheck_key_result *kr = &r->keys[j];
            if (pass == 2 && kr->verdict != LINCHECK_UNKNOWN)
                continue;
            uint64_t left = max_steps - r->steps;
            if (pass == 2 && left == 0)
                break;
            uint64_t limit = r->steps + (pass == 1 && share < left ? share : left);
            uint64_t before = r->steps;
            rc = check_key(h, gis + kstart[j], kstart[j + 1] - kstart[j], &r->steps, limit, r,
                           &kr->verdict, &kr->nops);
            if (rc)
                goto fail;
            kr->checked = true;
            kr->steps += r->steps - before;
            if (kr->verdict == LINCHECK_ILLEGAL) {
                illegal = true;
                r->bad_key = j;
            }
        }
    }
    for (size_t j = 0; j < nk; j++)
        r->nunknown += r->keys[j].verdict == LINCHECK_UNKNOWN;
    r->verdict = illegal ? LINCHECK_ILLEGAL : r->nunknown ? LINCHECK_UNKNOWN : LINCHECK_OK;
    free(ks);
    free(gis);
    free(kstart);
    return 0;
fail:
    free(ks);
    free(gis);
    free(kstart);
    lincheck_result_free(r);
    return rc;
}

char *lincheck_partial_value(const lincheck_history *h, const lincheck_result *r,
                             size_t k, size_t *len)
{
    if (!h || !r || r->verdict != LINCHECK_ILLEGAL || k >= r->npartial)
        return NULL;
    size_t n = r->partial_len[k];
    char *v = malloc(n + 1);
    if (!v)
        return NULL;
    /* Walk back to the last Put at or before k; the value is its input
     * followed by the Appends after it. Lengths say where each piece goes. */
    size_t p = n, j = k + 1;
    while (j-- > 0 && p > 0) {
        const lincheck_op *o = &h->ops[r->partial[j]];
        if (o->kind == LINCHECK_GET)
            continue;
        size_t take = o->value_len < p ? o->value_len : p;
        memcpy(v + p - take, o->value + o->value_len - take, take);
        p -= take;
        if (o->kind == LINCHECK_PUT)
            break;
    }
    v[n] = '\0';
    if (len)
        *len = n;
    return v;
}

/* ---- explanations ---- */

void lincheck_print_value(FILE *f, const char *s, size_t n, size_t max)
{
    size_t from = n > max ? n - max : 0;
    fputs(from ? "\"..." : "\"", f);
    for (size_t i = from; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
    if (from)
        fprintf(f, " (%zu bytes)", n);
}

#define SHOW 40

static uint64_t first_call(const lincheck_history *h)
{
    uint64_t t = UINT64_MAX;
    for (size_t i = 0; i < h->n; i++)
        if (h->ops[i].call_ns < t)
            t = h->ops[i].call_ns;
    return t;
}

static void print_time(FILE *f, uint64_t t, uint64_t t0)
{
    if (t == LINCHECK_NEVER) {
        fputs("never", f);
        return;
    }
    uint64_t d = t - t0;
    fprintf(f, "%llu.%06llu s", (unsigned long long)(d / 1000000000u),
            (unsigned long long)(d % 1000000000u / 1000u));
}

/* "Get by client 2 (op 130, 0.120000 s to 0.125000 s)" */
static void print_op(FILE *f, const lincheck_history *h, size_t i, uint64_t t0)
{
    const lincheck_op *o = &h->ops[i];
    static const char *const names[] = { "Get", "Put", "Append" };
    fprintf(f, "%s", names[o->kind]);
    if (o->kind != LINCHECK_GET) {
        fputc(' ', f);
        lincheck_print_value(f, o->value, o->value_len, SHOW);
    }
    fprintf(f, " by client %u (op %zu, ", o->client, i);
    print_time(f, o->call_ns, t0);
    fputs(" to ", f);
    print_time(f, o->return_ns, t0);
    fputc(')', f);
}

int lincheck_explain(const lincheck_history *h, const lincheck_result *r, FILE *f)
{
    if (!h || !r || !f)
        return LINCHECK_EINVAL;
    if (r->verdict == LINCHECK_OK) {
        fprintf(f, "linearizable: %zu keys, %zu ops, %llu steps.\n", r->nkeys, r->nops,
                (unsigned long long)r->steps);
    } else if (r->verdict == LINCHECK_UNKNOWN) {
        fprintf(f, "not checked: the budget of %llu steps ran out on %zu of %zu keys (",
                (unsigned long long)r->max_steps, r->nunknown, r->nkeys);
        size_t shown = 0;
        for (size_t j = 0; j < r->nkeys && shown < 8; j++) {
            if (r->keys[j].verdict != LINCHECK_UNKNOWN)
                continue;
            if (shown++)
                fputs(", ", f);
            lincheck_print_value(f, r->keys[j].key, r->keys[j].key_len, SHOW);
        }
        fprintf(f, "%s). This is not a pass: raise the budget.\n", shown < r->nunknown ? ", ..." : "");
    } else {
        uint64_t t0 = first_call(h);
        const lincheck_key_result *kr = &r->keys[r->bad_key];
        fputs("key ", f);
        lincheck_print_value(f, kr->key, kr->key_len, SHOW);
        fprintf(f, ": no order of its %zu ops agrees with both real time and the key/value "
                "model. The longest order found places %zu of them", r->nkey_ops, r->npartial);
        size_t last = r->npartial;
        while (last-- > 0 && h->ops[r->partial[last]].kind == LINCHECK_GET)
            ;
        if (last < r->npartial) {
            fputs("; the value was then ", f);
            lincheck_print_value(f, r->value, r->value_len, SHOW);
            fputs(", last written by ", f);
            print_op(f, h, r->partial[last], t0);
        } else {
            fputs(" and the value was still \"\" (never written)", f);
        }
        fputs(". No op can come next:", f);
        for (size_t b = 0; b < r->nblocked; b++) {
            const lincheck_blocked *bl = &r->blocked[b];
            const lincheck_op *o = &h->ops[bl->op];
            fputs(b ? ";\n  " : "\n  ", f);
            print_op(f, h, bl->op, t0);
            if (bl->why == LINCHECK_WHY_VALUE) {
                fputs(" returned ", f);
                lincheck_print_value(f, o->value, o->value_len, SHOW);
                fputs(" but the value was ", f);
                lincheck_print_value(f, r->value, r->value_len, SHOW);
            } else if (bl->why == LINCHECK_WHY_PREFIX) {
                const lincheck_op *g = &h->ops[bl->later_get];
                fputs(" would make a value that the later ", f);
                print_op(f, h, bl->later_get, t0);
                fputs(" cannot return: it returned ", f);
                lincheck_print_value(f, g->value, g->value_len, SHOW);
                fputs(", and no Put left that could come before it writes the start of that", f);
            } else {
                fputs(" leads only to orders that fail later", f);
            }
            if (bl->returns_first)
                fputs(" (it returned before any op called later, so it must come here)", f);
        }
        fputs(".\n", f);
    }
    return ferror(f) ? LINCHECK_EINVAL : 0;
}

char *lincheck_explain_str(const lincheck_history *h, const lincheck_result *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    int rc = lincheck_explain(h, r, f);
    if (fclose(f) != 0 || rc) {
        free(buf);
        return NULL;
    }
    return buf;
}
