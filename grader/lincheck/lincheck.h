/* lincheck: is a history of key/value operations linearizable?
 *
 * The KV service of stage 4 (Get, Put, Append on string keys) is checked
 * the way 6.5840 checks it with Porcupine, but with a verdict that cannot be
 * mistaken for a pass when the search gives up, and an explanation a human
 * can read when it fails.
 *
 * The model, per key: the value is a byte string, "" when the key is missing.
 * Get is legal iff its output equals the value; Put sets the value; Append
 * concatenates its input to the value. An op touches one key, so each key's
 * sub-history is checked on its own (P-compositionality), keys in byte order.
 *
 * Real time. Op X must come before op Y iff X returned before Y was called.
 * Intervals are closed: an op that returns at t overlaps one called at t
 * (either may come first), since two clocks read at "the same" nanosecond
 * cannot say which event came first.
 *
 * Ops that never returned (return_ns == LINCHECK_NEVER) may have taken
 * effect at any point after their call, or never: the checker tries both.
 * A Get that never returned constrains nothing and is ignored.
 *
 * The search: Wing & Gong's backtracking over the history as a list of
 * call and return entries, with Lowe's memo of (set of linearized ops,
 * model state) pairs already explored, plus one pruning rule of the KV
 * model: until the next Get to return, the value only grows by Appends
 * unless a Put called before that Get returned comes first; so if neither
 * the value now nor the value of such a Put begins that Get's output, the
 * search is at a dead end.
 * Its cost is counted in steps: one step is one attempt to linearize a call
 * (one model step tried, legal or not) or one backtrack. The caller's budget
 * is a number of steps, so a check gives the same verdict on every machine
 * and in virtual time (sim/), where the clock does not move while we
 * compute. Memory grows with the steps taken (the memo holds at most one
 * entry per step): about 17 bytes a step measured on the hardest history
 * of bench.c, at most about 60 when every step finds a new state.
 *
 * Ownership: a history owns copies of every string added to it. A result
 * owns its arrays and strings; lincheck_result_free frees them. Pointers
 * into a history (lincheck_history_op) stay valid until it is freed.
 *
 * Thread safety: no global state. Separate histories and results may be
 * used on separate threads at once; one history may be read (checked,
 * written, explained) by several threads at once as long as none adds to it.
 */
#ifndef RAFTLAB_LINCHECK_H
#define RAFTLAB_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* return_ns of an op that never returned (the test ended while it ran). */
#define LINCHECK_NEVER UINT64_MAX

/* The default budget: about 1.3 s (and 340 MB) on the kit's test machine
 * for the worst case measured (bench.c: 15 clients on one key, 30% of ops
 * 20 times slower, which exhausts it at about 15 M steps/s). A KV test's
 * history of 30000 ops (15 clients, random keys) needs about 32000. */
#define LINCHECK_DEFAULT_STEPS 20000000ull

/* Error codes: every call that can fail returns 0 or one of these. */
enum {
    LINCHECK_ENOMEM = -1,  /* out of memory: nothing changed */
    LINCHECK_EINVAL = -2,  /* a bad argument (see the call) */
    LINCHECK_EFORMAT = -3, /* a malformed history file (history.h) */
    LINCHECK_EIO = -4,     /* a file could not be opened, read or written */
};
/* A short description of an error code ("out of memory"); never NULL. */
const char *lincheck_strerror(int err);

typedef enum lincheck_kind {
    LINCHECK_GET,
    LINCHECK_PUT,
    LINCHECK_APPEND,
} lincheck_kind;

/* "get", "put", "append" (or "?" for a bad kind). */
const char *lincheck_kind_name(lincheck_kind kind);

/* One client operation. Strings are byte strings with lengths (they may
 * hold NUL bytes); key and value may be NULL when their length is 0. */
typedef struct lincheck_op {
    uint32_t client;
    lincheck_kind kind;
    const char *key;
    size_t key_len;
    const char *value;    /* put/append: the input; get: the output */
    size_t value_len;
    uint64_t call_ns;     /* < LINCHECK_NEVER */
    uint64_t return_ns;   /* >= call_ns, or LINCHECK_NEVER */
} lincheck_op;

typedef struct lincheck_history lincheck_history;

/* An empty history, or NULL if out of memory. */
lincheck_history *lincheck_history_new(void);
void lincheck_history_free(lincheck_history *h);

/* Adds a copy of *op (its strings are copied). Returns 0, LINCHECK_ENOMEM,
 * or LINCHECK_EINVAL for a bad kind, call_ns == LINCHECK_NEVER, a return
 * before the call, or a NULL string with a non-zero length. Ops may be
 * added in any order (their times order them). */
int lincheck_add(lincheck_history *h, const lincheck_op *op);
/* The same for NUL-terminated strings (value NULL reads as ""). */
int lincheck_add_str(lincheck_history *h, uint32_t client, lincheck_kind kind,
                     const char *key, const char *value,
                     uint64_t call_ns, uint64_t return_ns);

size_t lincheck_history_len(const lincheck_history *h);
/* Op i (0 <= i < len), in the order added. Its strings belong to h and
 * are also NUL-terminated. */
const lincheck_op *lincheck_history_op(const lincheck_history *h, size_t i);

typedef enum lincheck_verdict {
    LINCHECK_OK,        /* linearizable */
    LINCHECK_ILLEGAL,   /* not linearizable */
    LINCHECK_UNKNOWN,   /* the budget ran out first: NOT a pass */
} lincheck_verdict;

/* "linearizable", "not linearizable", "unknown (budget exceeded)". */
const char *lincheck_verdict_name(lincheck_verdict v);

typedef struct lincheck_key_result {
    char *key;            /* owned, NUL-terminated copy */
    size_t key_len;
    lincheck_verdict verdict;
    bool checked;         /* false: the check stopped (at an illegal key)
                           * before this key; verdict is then UNKNOWN */
    size_t nops;          /* ops on the key, pending Gets excluded */
    uint64_t steps;       /* spent on this key (both passes) */
} lincheck_key_result;

/* Why an op could not come next after the longest partial linearization. */
typedef enum lincheck_why {
    LINCHECK_WHY_VALUE,     /* a Get whose output was not the value */
    LINCHECK_WHY_PREFIX,    /* the value after it would not begin the
                             * output of later_get, a Get still to come,
                             * nor would any Put that could come between */
    LINCHECK_WHY_EXPLORED,  /* legal, but every order after it failed */
} lincheck_why;

typedef struct lincheck_blocked {
    size_t op;            /* index into the history */
    lincheck_why why;
    size_t later_get;     /* LINCHECK_WHY_PREFIX: that Get; else SIZE_MAX */
    bool returns_first;   /* its return is the earliest left: it had to be
                           * linearized before any op called later */
} lincheck_blocked;

typedef struct lincheck_result {
    lincheck_verdict verdict;
    uint64_t steps;           /* spent in total, <= the budget */
    uint64_t max_steps;       /* the budget the check was given */
    size_t nops;              /* ops in the history */
    size_t nkeys;
    lincheck_key_result *keys;   /* in the order checked (key bytes) */
    size_t nunknown;          /* keys with verdict UNKNOWN (checked or not) */

    /* The rest is set only when verdict == LINCHECK_ILLEGAL. */
    size_t bad_key;           /* index into keys[] */
    size_t *key_ops;          /* the bad key's ops (history indices), in */
    size_t nkey_ops;          /*   call order, pending Gets excluded */
    size_t *partial;          /* the longest partial linearization found: */
    size_t npartial;          /*   history indices in linearization order */
    size_t *partial_len;      /* length of the value after each of them */
    char *value;              /* the value after the whole partial order */
    size_t value_len;         /*   (owned, NUL-terminated) */
    lincheck_blocked *blocked;   /* ops that could come next but were */
    size_t nblocked;             /*   illegal there, in call order */
} lincheck_result;

/* Checks h with a budget of max_steps (0 means LINCHECK_DEFAULT_STEPS).
 * Keys are checked in byte order, each first with an equal share of the
 * budget; keys left unknown are then retried in order with all that is
 * left. The check stops at the first illegal key. Returns 0 and fills *out
 * (free it with lincheck_result_free), or LINCHECK_ENOMEM (then *out holds
 * nothing to free). Deterministic: the same history and budget give the
 * same result. */
int lincheck_check(const lincheck_history *h, uint64_t max_steps,
                   lincheck_result *out);
void lincheck_result_free(lincheck_result *r);

/* The value after the first k+1 ops of r->partial (k < r->npartial), as a
 * malloc'd NUL-terminated string for the caller to free (*len gets its
 * length); NULL if out of memory or r has no such step. */
char *lincheck_partial_value(const lincheck_history *h, const lincheck_result *r,
                             size_t k, size_t *len);

/* A short plain-text paragraph saying why r is not linearizable (or that
 * it is, or was not checked), long values shortened to their ends with
 * their lengths. Written to f; returns 0, or LINCHECK_EINVAL if f failed. */
int lincheck_explain(const lincheck_history *h, const lincheck_result *r, FILE *f);
/* The same as a malloc'd string for the caller to free, or NULL. */
char *lincheck_explain_str(const lincheck_history *h, const lincheck_result *r);

/* Writes s (n bytes) to f for a human: quoted, C escapes, and when longer
 * than max bytes only its end, as "...<end>" (N bytes). */
void lincheck_print_value(FILE *f, const char *s, size_t n, size_t max);

#endif
