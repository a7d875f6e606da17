/* labrpc: a simulated network for RPC between servers in one process
 * (6.5840's labrpc, in C).
 *
 * A network has client ends and servers, each with a name. An end is
 * connected to at most one server name; a server holds services, each a set
 * of named methods. A call names "Service.Method" and carries bytes (encode
 * them with codec.h): arguments and replies are always copied, so servers
 * never share memory, and byte counts are exact.
 *
 * The network can lose and delay messages:
 *  - unreliable (labrpc_net_reliable(net, false)): each request waits 0-26 ms,
 *    10% of requests are dropped before the handler runs, 10% of replies are
 *    dropped after it ran;
 *  - long reordering: about 2 in 3 replies are held 200-2200 ms;
 *  - a call on a disabled end, or to a missing or deleted server, fails after
 *    a random delay: up to 7 s with long delays on, up to 100 ms otherwise;
 *  - a call whose server is deleted or replaced while its handler runs fails
 *    within 100 ms of that, and the handler's late reply is discarded.
 * A failed call looks the same whatever the reason: LABRPC_FAIL, like a
 * false from Go's Call.
 *
 * Handlers and completion callbacks run on labrpc's own threads, a bounded
 * set that is reused; a handler that blocks does not stall other calls.
 * Delays wait in a timer queue, not in sleeping threads.
 *
 * Thread safety: every call is safe from any thread unless it says otherwise.
 */
#ifndef RAFTLAB_LABRPC_H
#define RAFTLAB_LABRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

typedef struct labrpc_net labrpc_net;
typedef struct labrpc_end labrpc_end;
typedef struct labrpc_server labrpc_server;
typedef struct labrpc_service labrpc_service;

/* Outcome of a call. Only LABRPC_OK carries a reply. */
enum {
    LABRPC_OK = 0,
    LABRPC_FAIL = 1,       /* lost, timed out, disabled, no server: Go's false */
    LABRPC_ENOMETHOD = 2,  /* the server has no such service or method */
    LABRPC_EHANDLER = 3,   /* the handler returned an error (bad arguments) */
    LABRPC_ECANCELED = 4,  /* the end was cancelled (labrpc_end_cancel) */
    LABRPC_ENOMEM = 5,     /* out of memory */
    LABRPC_EINVAL = 6,     /* bad arguments to labrpc itself */
};
const char *labrpc_strerror(int status);

/* ---- handlers ---------------------------------------------------------- */

/* A method handler. ctx is the service's context (labrpc_service_new); args
 * are the request bytes (borrowed, valid during the call); the handler
 * encodes its reply into reply (owned by labrpc). It returns 0, or non-zero
 * to reject the request (say, arguments that do not decode), in which case
 * the caller gets LABRPC_EHANDLER and no reply. Handlers run on labrpc's
 * threads, possibly several at once for one service. */
typedef int (*labrpc_handler)(void *ctx, const uint8_t *args, size_t args_len,
                              codec_enc *reply);

/* A service named name (copied) whose handlers get ctx. NULL if out of memory. */
labrpc_service *labrpc_service_new(const char *name, void *ctx);
/* Adds a method; name is copied. Returns 0, -1 if out of memory or if the
 * service is already in a server. */
int labrpc_service_add(labrpc_service *svc, const char *method, labrpc_handler fn);

/* A server: a set of services. */
labrpc_server *labrpc_server_new(void);
/* The server takes ownership of svc (freed by labrpc_server_free). Returns 0,
 * or -1 (out of memory, or a service of that name is already there). Call
 * before the server is added to a network. */
int labrpc_server_add_service(labrpc_server *srv, labrpc_service *svc);
/* Number of requests dispatched to this server (that reached a handler
 * lookup), like 6.5840's per-server GetCount. */
int labrpc_server_count(labrpc_server *srv);
/* Frees the server and its services. If it is still in a network it is
 * deleted from it first. Blocks until no handler of this server is running,
 * so once it returns no handler will touch the services' contexts again: free
 * the server before freeing what ctx points to. Must not be called from one
 * of this server's own handlers. */
void labrpc_server_free(labrpc_server *srv);

/* ---- the network ------------------------------------------------------- */

/* A network, reliable, no long delays, no long reordering; seed drives its
 * random delays and drops. NULL if out of memory or a thread cannot start. */
labrpc_net *labrpc_net_new(unsigned seed);
/* Stops the network: every call in flight fails (callbacks run with
 * LABRPC_FAIL), every thread is joined, every end is freed. Servers are
 * deleted but not freed (their creators free them, before or after). Must
 * not be called from a labrpc thread. */
void labrpc_net_cleanup(labrpc_net *net);

void labrpc_net_reliable(labrpc_net *net, bool yes);
void labrpc_net_long_reordering(labrpc_net *net, bool yes);
void labrpc_net_long_delays(labrpc_net *net, bool yes);
/* A network allowed to be worse than 6.5840's, as a real one is: with
 * yes, each request waits a further 0-100 ms (far more reordering), and one
 * in four delivered requests is delivered again later, 100-3000 ms after
 * it was sent: a duplicate that arrives after newer requests, often after
 * a new term and a new leader (a stale replay). The replay's reply goes
 * nowhere, and it is in no counter. Figure 2 tolerates all of this: a
 * correct Raft passes with it. Deterministic per seed in sim mode. */
void labrpc_net_hostile(labrpc_net *net, bool yes);

/* A crash point, for the harness: once the server registered under name
 * has answered `after` more requests (after >= 1), the network freezes it
 * at the moment that answer leaves, all at once under its lock: that reply
 * goes out as usual, replies of its handlers still running are dropped,
 * the server is deleted (labrpc_net_delete_server), its own client ends
 * ends[0..nends-1] (copied) are disabled, and then hook(arg) runs, still
 * at that moment and on a labrpc thread: it must be quick and call nothing
 * of labrpc (the harness copies the persister there, so that the restart
 * sees exactly what was saved before the answer left). One crash point at
 * a time: a new call replaces the armed one; name NULL disarms it, and
 * after that returns the hook will not run. LABRPC_OK, LABRPC_EINVAL or
 * LABRPC_ENOMEM. */
int labrpc_net_crash_point(labrpc_net *net, const char *name, int after, labrpc_end *const *ends,
                           int nends, void (*hook)(void *arg), void *arg);
/* Every request the network delivers waits a further request_min_ms ..
 * request_max_ms, and every reply reply_min_ms .. reply_max_ms (uniform,
 * from the seed), on top of the delays above: a slower network, or a server
 * that takes time to answer (a disk write before each reply: make figure16
 * sets 0-2 ms and 13-15 ms, a round trip of about 15 ms). All 0 (the
 * default) adds nothing. LABRPC_OK, or LABRPC_EINVAL if a minimum is
 * negative or above its maximum. */
int labrpc_net_delay(labrpc_net *net, int request_min_ms, int request_max_ms,
                     int reply_min_ms, int reply_max_ms);

/* Registers srv under name (copied), replacing any server of that name (the
 * replaced one's calls in flight fail). The network does not own srv. Returns
 * 0, or -1 if out of memory. */
int labrpc_net_add_server(labrpc_net *net, const char *name, labrpc_server *srv);
/* Removes the server of that name, if any: its calls in flight fail within
 * 100 ms and their late replies are discarded. Does not wait for handlers. */
void labrpc_net_delete_server(labrpc_net *net, const char *name);

/* A new client end named name (copied). The network owns it: it stays valid
 * until labrpc_net_cleanup. NULL if out of memory or the name is taken. */
labrpc_end *labrpc_net_make_end(labrpc_net *net, const char *name);
/* Connects end to the server named server_name (copied; it need not exist yet). */
void labrpc_net_connect(labrpc_net *net, labrpc_end *end, const char *server_name);
/* Enables or disables an end; a disabled end's calls fail. */
void labrpc_net_enable(labrpc_net *net, labrpc_end *end, bool enabled);
/* For the harness's constructed scenarios: while an end holds (hold
 * true), every request sent on it waits in the network, neither delivered
 * nor failed (a packet stuck in a router); with hold false new requests go
 * as usual and the held ones keep waiting. labrpc_end_release sends the
 * held ones at once, in the order sent: what arrives then is stale. A released request
 * is already on its way: it reaches the server even if its end has been
 * disabled since. A held request is still a call in flight:
 * labrpc_end_cancel and labrpc_net_cleanup end it. */
void labrpc_end_hold(labrpc_end *end, bool hold);
void labrpc_end_release(labrpc_end *end);
/* While lose is true, every request sent on end is handled as usual but
 * its reply is lost on the way back (the call fails): a server that
 * acts on what it hears while the sender learns nothing of it. */
void labrpc_end_lose_replies(labrpc_end *end, bool lose);
/* How many requests of end are held now. */
int labrpc_end_held(labrpc_end *end);
/* The oldest request held on end (if any) is delivered again copies times,
 * one every gap_ms from now, even if end is disabled (a router that keeps
 * resending an old packet); the replies go nowhere, no counter sees them,
 * and the request stays held. */
void labrpc_end_echo(labrpc_end *end, int copies, int gap_ms);

/* Every call made on the network, dropped ones too. */
int labrpc_net_total_count(labrpc_net *net);
/* Request bytes of every call plus reply bytes of every delivered reply. */
int64_t labrpc_net_total_bytes(labrpc_net *net);
/* labrpc_server_count of the server registered under name, 0 if none. */
int labrpc_net_server_count(labrpc_net *net, const char *name);

/* ---- observing (the kit's trace) -------------------------------------- */

typedef enum labrpc_obs_kind {
    LABRPC_OBS_CALL,          /* a call made (bytes: the request's) */
    LABRPC_OBS_DELIVER,       /* its request reaches the handler */
    LABRPC_OBS_DROP_REQUEST,  /* unreliable: the request is lost */
    LABRPC_OBS_DROP_REPLY,    /* unreliable: the handler ran, its reply is lost */
    LABRPC_OBS_HELD,          /* labrpc_end_hold: the request waits */
    LABRPC_OBS_ECHO,          /* a copy of call `of` to be delivered again later */
    LABRPC_OBS_REPLY,         /* the caller gets the reply (bytes: the reply's) */
    LABRPC_OBS_FAIL,          /* the caller gets any other outcome */
} labrpc_obs_kind;

typedef struct labrpc_obs {
    labrpc_obs_kind kind;
    uint64_t id;              /* the call's, from 1, unique in the network */
    uint64_t of;              /* LABRPC_OBS_ECHO: the call copied */
    int tag;                  /* the caller's end's tag (labrpc_end_tag) */
    const char *server;       /* the server name the end is connected to */
    const char *method;
    size_t bytes;
    int status;               /* LABRPC_OBS_FAIL: the outcome */
} labrpc_obs;

/* Called for each step of each call, on any thread and with the network's
 * lock held: it must be quick and must not call labrpc. The strings are
 * borrowed for the call. One observer a network; NULL removes it. Set it
 * before the first call. */
typedef void (*labrpc_observer)(void *arg, const labrpc_obs *ev);
void labrpc_net_observe(labrpc_net *net, labrpc_observer fn, void *arg);
/* A number for the observer to know who calls on end (default -1). Call it
 * before labrpc_net_connect of the end, from the thread that made it. */
void labrpc_end_tag(labrpc_end *end, int tag);

/* ---- calls ------------------------------------------------------------- */

/* A blocking call of "Service.Method" with args (copied). On LABRPC_OK,
 * *reply (if reply is not NULL) gets a malloc'd copy of the reply that the
 * caller must free(), and *reply_len its size; otherwise *reply is NULL. On
 * LABRPC_ENOMETHOD *reply holds a NUL-terminated message naming the missing
 * method and what the server offers (caller frees it too). Concurrent calls
 * on one end are allowed and may complete in any order. */
int labrpc_call(labrpc_end *end, const char *method, const void *args,
                size_t args_len, uint8_t **reply, size_t *reply_len);

/* Completion of a non-blocking call. status as for labrpc_call; reply is
 * borrowed, valid only during the callback (NULL unless LABRPC_OK, or the
 * message on LABRPC_ENOMETHOD). Runs on a labrpc thread; it may make new
 * calls, take locks and block briefly, but a callback that blocks for long
 * holds up that thread. */
typedef void (*labrpc_done_fn)(void *arg, int status, const uint8_t *reply,
                               size_t reply_len);

/* Starts a call and returns at once. Returns LABRPC_OK if the call is under
 * way: done(arg, ...) will then run exactly once, later, on another thread.
 * Any other return means the call was not made and done will not run. */
int labrpc_go(labrpc_end *end, const char *method, const void *args,
              size_t args_len, labrpc_done_fn done, void *arg);

/* Retires an end for good, for Raft's kill: its calls in flight complete at
 * once with LABRPC_ECANCELED (callbacks run, blocking calls return), new
 * calls on it return LABRPC_ECANCELED without being made, and this function
 * returns only when no callback of this end is still running. So after it
 * returns, no callback of this end will touch its arg again. Must not be
 * called from a callback of this same end (returns LABRPC_EINVAL then). */
int labrpc_end_cancel(labrpc_end *end);

/* How long (ns) a blocking caller and an idle worker stay awake waiting for
 * each other before sleeping: trades a little CPU for a much faster
 * labrpc_call. Only for an end whose recent calls mostly completed within
 * that time (a call that waits for Raft to commit is not spun for). 0 turns
 * it off (sim mode and valgrind do). Set it before creating a network. */
extern long labrpc_spin_ns;

#endif
