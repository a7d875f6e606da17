/* gen: linearizable KV histories made to order, for lincheck's tests and
 * bench. A store is simulated: each op gets a linearization point inside
 * its interval, ops are applied in that order, and Gets record what they
 * saw. Deterministic for a seed. No global state.
 */
#ifndef RAFTLAB_LINCHECK_GEN_H
#define RAFTLAB_LINCHECK_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lincheck.h"

typedef struct lcgen_params {
    unsigned clients;       /* concurrent clients, each one op at a time */
    size_t ops;             /* about this many ops in all */
    unsigned iterations;    /* rounds; all clients stop between rounds */
    uint64_t round_ns;      /* length of a round */
    double append_frac;     /* Appends to the client's own key */
    double put_frac;        /* of the rest: Puts to a random client's key */
    double slow_frac;       /* ops 20 times slower than usual (retries) */
    double pending_frac;    /* last round: a client's last op never returns */
    bool one_key;           /* every client on key "k" */
    size_t pad;             /* bytes added to each written value */
    bool final_get;         /* after the rounds, client 0 Gets every key */
    uint64_t seed;
} lcgen_params;

/* A history following p, linearizable by construction. With corrupt, one
 * Get that must follow a write in real time is changed to return the value
 * before that write (making it not linearizable); *bad_op gets its index
 * (SIZE_MAX if no Get qualified). Returns 0 or LINCHECK_ENOMEM. */
int lcgen_history(const lcgen_params *p, bool corrupt, lincheck_history **out, size_t *bad_op);

/* A deterministic 64-bit generator (splitmix64). */
uint64_t lcgen_rand(uint64_t *state);
double lcgen_unit(uint64_t *state);   /* uniform in [0, 1) */

#endif
