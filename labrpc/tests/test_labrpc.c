/* labrpc's network tests. Only the test's own thread calls CUnit: helper
 * threads record what they saw in plain variables the test then asserts. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "labrpc.h"
#include "suites.h"

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a test service ---------------------------------------------------- */

typedef struct junk {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool release;       /* Block returns once set */
    int blocked;        /* handlers inside Block */
    int calls;
} junk;

static void junk_init(junk *j)
{
    memset(j, 0, sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
}

static void junk_destroy(junk *j)
{
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
}

static void junk_count(junk *j)
{
    pthread_mutex_lock(&j->mu);
    j->calls++;
    pthread_mutex_unlock(&j->mu);
}

/* Echo: the reply is the request. */
static int h_echo(void *ctx, const uint8_t *args, size_t n, codec_enc *reply)
{
    junk_count(ctx);
    codec_put_raw(reply, args, n);
    return 0;
}

/* Add: two i64 in, their sum out; malformed input is rejected. */
static int h_add(void *ctx, const uint8_t *args, size_t n, codec_enc *reply)
{
    junk_count(ctx);
    codec_dec d;
    codec_dec_init(&d, args, n);
    int64_t a = codec_get_i64(&d), b = codec_get_i64(&d);
    if (codec_dec_finish(&d) != CODEC_OK)
        return -1;
    codec_put_i64(reply, a + b);
    return 0;
}

/* Block: waits until released (at most 20 s), then replies "late". */
static int h_block(void *ctx, const uint8_t *args, size_t n, codec_enc *reply)
{
    (void)args;
    (void)n;
    junk *j = ctx;
    int64_t deadline = ms_now() + 20000;
    pthread_mutex_lock(&j->mu);
    j->blocked++;
    pthread_cond_broadcast(&j->cv);
    while (!j->release && ms_now() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    }
    j->blocked--;
    pthread_mutex_unlock(&j->mu);
    codec_put_raw(reply, "late", 4);
    return 0;
}

static void junk_release(junk *j)
{
    pthread_mutex_lock(&j->mu);
    j->release = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Waits until n handlers are inside Block. */
static void junk_wait_blocked(junk *j, int n)
{
    pthread_mutex_lock(&j->mu);
    while (j->blocked < n)
        pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
}

static labrpc_server *junk_server(junk *j)
{
    labrpc_service *svc = labrpc_service_new("Junk", j);
    labrpc_server *srv = labrpc_server_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(svc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    CU_ASSERT_EQUAL(labrpc_service_add(svc, "Echo", h_echo), 0);
    CU_ASSERT_EQUAL(labrpc_service_add(svc, "Add", h_add), 0);
    CU_ASSERT_EQUAL(labrpc_service_add(svc, "Block", h_block), 0);
    CU_ASSERT_EQUAL(labrpc_server_add_service(srv, svc), 0);
    return srv;
}

/* A network with one junk server "s" and a connected, enabled end "e". */
typedef struct fixture {
    labrpc_net *net;
    junk j;
    labrpc_server *srv;
    labrpc_end *end;
} fixture;

static void fx_open(fixture *f)
{
    junk_init(&f->j);
    f->net = labrpc_net_new(42);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->net);
    f->srv = junk_server(&f->j);
    CU_ASSERT_EQUAL(labrpc_net_add_server(f->net, "s", f->srv), 0);
    f->end = labrpc_net_make_end(f->net, "e");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->end);
    labrpc_net_connect(f->net, f->end, "s");
    labrpc_net_enable(f->net, f->end, true);
}

static void fx_close(fixture *f)
{
    junk_release(&f->j);
    labrpc_net_cleanup(f->net);
    labrpc_server_free(f->srv);
    junk_destroy(&f->j);
}

/* A blocking Add(a, b); returns the status, and the sum in *sum. */
static int call_add(labrpc_end *e, int64_t a, int64_t b, int64_t *sum)
{
    codec_enc enc;
    codec_enc_init(&enc);
    codec_put_i64(&enc, a);
    codec_put_i64(&enc, b);
    uint8_t *reply;
    size_t len;
    int rc = labrpc_call(e, "Junk.Add", enc.buf, enc.len, &reply, &len);
    codec_enc_free(&enc);
    if (rc == LABRPC_OK) {
        codec_dec d;
        codec_dec_init(&d, reply, len);
        *sum = codec_get_i64(&d);
        if (codec_dec_finish(&d) != CODEC_OK)
            rc = -100;
        free(reply);
    }
    return rc;
}

/* ---- tests ------------------------------------------------------------- */

static void test_basic(void)
{
    fixture f;
    fx_open(&f);
    uint8_t *reply;
    size_t len;
    CU_ASSERT_EQUAL(labrpc_call(f.end, "Junk.Echo", "hello", 5, &reply, &len), LABRPC_OK);
    CU_ASSERT_EQUAL(len, 5);
    CU_ASSERT(reply && memcmp(reply, "hello", 5) == 0);
    free(reply);
    int64_t sum = 0;
    CU_ASSERT_EQUAL(call_add(f.end, 40, 2, &sum), LABRPC_OK);
    CU_ASSERT_EQUAL(sum, 42);
    /* An empty request and reply are fine too. */
    CU_ASSERT_EQUAL(labrpc_call(f.end, "Junk.Echo", NULL, 0, &reply, &len), LABRPC_OK);
    CU_ASSERT_EQUAL(len, 0);
    free(reply);
    fx_close(&f);
}

static void test_bad_requests(void)
{
    fixture f;
    fx_open(&f);
    uint8_t *reply;
    size_t len;
    /* A malformed request: the handler rejects it, the caller sees that. */
    CU_ASSERT_EQUAL(labrpc_call(f.end, "Junk.Add", "xyz", 3, &reply, &len), LABRPC_EHANDLER);
    CU_ASSERT_PTR_NULL(reply);
    /* Unknown method and service: a message naming it and what exists. */
    CU_ASSERT_EQUAL(labrpc_call(f.end, "Junk.Nope", "", 0, &reply, &len), LABRPC_ENOMETHOD);
    CU_ASSERT(reply && strstr((char *)reply, "Junk.Nope") && strstr((char *)reply, "Junk.Echo"));
    free(reply);
    CU_ASSERT_EQUAL(labrpc_call(f.end, "Other.Echo", "", 0, &reply, &len), LABRPC_ENOMETHOD);
    CU_ASSERT(reply && strstr((char *)reply, "Other.Echo") && strstr((char *)reply, "Junk.Add"));
    free(reply);
    CU_ASSERT_EQUAL(labrpc_call(f.end, "NoDot", "", 0, &reply, &len), LABRPC_ENOMETHOD);
    free(reply);
    /* Bad arguments to labrpc itself. */
    CU_ASSERT_EQUAL(labrpc_call(f.end, NULL, "", 0, &reply, &len), LABRPC_EINVAL);
    CU_ASSERT_EQUAL(labrpc_call(f.end, "Junk.Echo", NULL, 3, &reply, &len), LABRPC_EINVAL);
    CU_ASSERT_EQUAL(labrpc_go(f.end, "Junk.Echo", "", 0, NULL, NULL), LABRPC_EINVAL);
    /* Names are unique; services are frozen once in a server. */
    CU_ASSERT_PTR_NULL(labrpc_net_make_end(f.net, "e"));
    labrpc_service *dup = labrpc_service_new("Junk", NULL);
    labrpc_server *s2 = labrpc_server_new();
    CU_ASSERT_EQUAL(labrpc_server_add_service(f.srv, dup), -1);
    CU_ASSERT_EQUAL(labrpc_server_add_service(s2, dup), 0);
    CU_ASSERT_EQUAL(labrpc_service_add(dup, "Late", h_echo), -1);
    labrpc_server_free(s2);
    fx_close(&f);
}

static void test_disconnect(void)
{
    fixture f;
    fx_open(&f);
    int64_t sum;
    labrpc_net_enable(f.net, f.end, false);
    CU_ASSERT_EQUAL(call_add(f.end, 1, 2, &sum), LABRPC_FAIL);
    CU_ASSERT_EQUAL(f.j.calls, 0);
    labrpc_net_enable(f.net, f.end, true);
    CU_ASSERT_EQUAL(call_add(f.end, 1, 2, &sum), LABRPC_OK);
    CU_ASSERT_EQUAL(sum, 3);
    /* Connected to a name with no server: fails. */
    labrpc_end *e2 = labrpc_net_make_end(f.net, "e2");
    labrpc_net_connect(f.net, e2, "nobody");
    labrpc_net_enable(f.net, e2, true);
    CU_ASSERT_EQUAL(call_add(e2, 1, 2, &sum), LABRPC_FAIL);
    /* Never connected: fails. */
    labrpc_end *e3 = labrpc_net_make_end(f.net, "e3");
    labrpc_net_enable(f.net, e3, true);
    CU_ASSERT_EQUAL(call_add(e3, 1, 2, &sum), LABRPC_FAIL);
    fx_close(&f);
}

static void test_counts(void)
{
    fixture f;
    fx_open(&f);
    int64_t sum;
    for (int i = 0; i < 17; i++) {
        CU_ASSERT_EQUAL(call_add(f.end, i, i, &sum), LABRPC_OK);
        CU_ASSERT_EQUAL(sum, 2 * i);
    }
    CU_ASSERT_EQUAL(labrpc_server_count(f.srv), 17);
    CU_ASSERT_EQUAL(labrpc_net_server_count(f.net, "s"), 17);
    CU_ASSERT_EQUAL(labrpc_net_server_count(f.net, "nobody"), 0);
    CU_ASSERT_EQUAL(labrpc_net_total_count(f.net), 17);
    /* A failed call counts in the total, not at the server. */
    labrpc_net_enable(f.net, f.end, false);
    CU_ASSERT_EQUAL(call_add(f.end, 1, 1, &sum), LABRPC_FAIL);
    CU_ASSERT_EQUAL(labrpc_server_count(f.srv), 17);
    CU_ASSERT_EQUAL(labrpc_net_total_count(f.net), 18);
    fx_close(&f);
}

static void test_bytes(void)
{
    fixture f;
    fx_open(&f);
    uint8_t args[288];
    for (size_t i = 0; i < sizeof args; i++)
        args[i] = (uint8_t)i;
    uint8_t *reply;
    size_t len;
    /* Echo: each call costs its request plus an equal reply. */
    for (int i = 0; i < 17; i++) {
        CU_ASSERT_EQUAL(labrpc_call(f.end, "Junk.Echo", args, sizeof args, &reply, &len), LABRPC_OK);
        CU_ASSERT_EQUAL(len, sizeof args);
        free(reply);
    }
    CU_ASSERT_EQUAL(labrpc_net_total_bytes(f.net), 17 * 2 * 288);
    /* Add: 16 request bytes, 8 reply bytes. */
    int64_t sum;
    CU_ASSERT_EQUAL(call_add(f.end, 1, 2, &sum), LABRPC_OK);
    CU_ASSERT_EQUAL(labrpc_net_total_bytes(f.net), 17 * 2 * 288 + 16 + 8);
    /* A failed call: its request counts, no reply does. */
    labrpc_net_enable(f.net, f.end, false);
    CU_ASSERT_EQUAL(labrpc_call(f.end, "Junk.Echo", args, sizeof args, &reply, &len), LABRPC_FAIL);
    CU_ASSERT_EQUAL(labrpc_net_total_bytes(f.net), 17 * 2 * 288 + 16 + 8 + 288);
    fx_close(&f);
}

typedef struct client_arg {
    labrpc_net *net;
    labrpc_end *end;
    int calls;
    int ok;         /* calls that succeeded with the right answer */
    int wrong;      /* calls that succeeded with a wrong answer */
} client_arg;

static void *client_main(void *p)
{
    client_arg *a = p;
    for (int i = 0; i < a->calls; i++) {
        int64_t sum = -1;
        int rc = call_add(a->end, (int64_t)(uintptr_t)a, i, &sum);
        if (rc == LABRPC_OK && sum == (int64_t)(uintptr_t)a + i)
            a->ok++;
        else if (rc == LABRPC_OK)
            a->wrong++;
    }
    return NULL;
}

/* n clients, each with its own end (or all sharing one), calls each. */
static void run_clients(fixture *f, int n, int calls, bool share_end, int *ok, int *wrong)
{
    client_arg *args = calloc((size_t)n, sizeof *args);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    CU_ASSERT_PTR_NOT_NULL_FATAL(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(th);
    for (int i = 0; i < n; i++) {
        args[i].net = f->net;
        args[i].calls = calls;
        if (share_end) {
            args[i].end = f->end;
        } else {
            char name[32];
            snprintf(name, sizeof name, "c%d", i);
            args[i].end = labrpc_net_make_end(f->net, name);
            CU_ASSERT_PTR_NOT_NULL_FATAL(args[i].end);
            labrpc_net_connect(f->net, args[i].end, "s");
            labrpc_net_enable(f->net, args[i].end, true);
        }
    }
    for (int i = 0; i < n; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, client_main, &args[i]), 0);
    *ok = *wrong = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        *ok += args[i].ok;
        *wrong += args[i].wrong;
    }
    free(args);
    free(th);
}

static void test_concurrent_clients(void)
{
    fixture f;
    fx_open(&f);
    int ok, wrong;
    run_clients(&f, 20, 10, false, &ok, &wrong);
    CU_ASSERT_EQUAL(ok, 200);
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(labrpc_server_count(f.srv), 200);
    CU_ASSERT_EQUAL(labrpc_net_total_count(f.net), 200);
    fx_close(&f);
}

static void test_concurrent_one_end(void)
{
    fixture f;
    fx_open(&f);
    int ok, wrong;
    run_clients(&f, 20, 1, true, &ok, &wrong);
    CU_ASSERT_EQUAL(ok, 20);
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(labrpc_server_count(f.srv), 20);
    fx_close(&f);
}

static void test_unreliable(void)
{
    fixture f;
    fx_open(&f);
    labrpc_net_reliable(f.net, false);
    int ok, wrong;
    run_clients(&f, 300, 1, false, &ok, &wrong);
    /* About 81% succeed; a fixed seed makes the count repeatable, but only
     * "some, not all" is the rule. */
    CU_ASSERT(ok > 0 && ok < 300);
    CU_ASSERT(ok > 150);
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(labrpc_net_total_count(f.net), 300);
    fx_close(&f);
}

typedef struct timed_call {
    labrpc_end *end;
    int rc;
    int64_t took_ms;
} timed_call;

static void *timed_add(void *p)
{
    timed_call *t = p;
    int64_t t0 = ms_now(), sum;
    t->rc = call_add(t->end, 1, 2, &sum);
    t->took_ms = ms_now() - t0;
    return NULL;
}

static void test_disabled_then_enabled(void)
{
    fixture f;
    fx_open(&f);
    labrpc_net_long_delays(f.net, true);
    labrpc_net_enable(f.net, f.end, false);
    /* A call on the disabled end waits out a long delay in the background. */
    pthread_t th;
    timed_call slow = { .end = f.end };
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, timed_add, &slow), 0);
    usleep(50 * 1000);
    labrpc_net_enable(f.net, f.end, true);
    int64_t t0 = ms_now(), sum;
    CU_ASSERT_EQUAL(call_add(f.end, 3, 4, &sum), LABRPC_OK);
    CU_ASSERT_EQUAL(sum, 7);
    /* The new call is not held behind the delayed one (which may take 7 s). */
    CU_ASSERT(ms_now() - t0 < 1000);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(slow.rc, LABRPC_FAIL);
    CU_ASSERT(slow.took_ms < 7000 + 2000);
    fx_close(&f);
}

static void test_failure_delays(void)
{
    fixture f;
    fx_open(&f);
    labrpc_net_enable(f.net, f.end, false);
    int64_t sum, max = 0;
    for (int i = 0; i < 10; i++) {
        int64_t t0 = ms_now();
        CU_ASSERT_EQUAL(call_add(f.end, 1, 1, &sum), LABRPC_FAIL);
        int64_t took = ms_now() - t0;
        max = took > max ? took : max;
    }
    /* Short delays: up to 100 ms each (plus slack for a slow machine). */
    CU_ASSERT(max < 100 + 1000);
    fx_close(&f);
}

/* labrpc_net_delay holds both legs: a round trip takes at least the two
 * minimums (only lower bounds: an upper one would be a timing test). */
static void test_leg_delay(void)
{
    fixture f;
    fx_open(&f);
    CU_ASSERT_EQUAL(labrpc_net_delay(f.net, -1, 5, 0, 0), LABRPC_EINVAL);
    CU_ASSERT_EQUAL(labrpc_net_delay(f.net, 10, 5, 0, 0), LABRPC_EINVAL);
    CU_ASSERT_EQUAL(labrpc_net_delay(f.net, 0, 0, 7, 6), LABRPC_EINVAL);
    CU_ASSERT_EQUAL(labrpc_net_delay(f.net, 10, 15, 30, 40), LABRPC_OK);
    int64_t sum;
    for (int i = 0; i < 3; i++) {
        int64_t t0 = ms_now();
        CU_ASSERT_EQUAL(call_add(f.end, 2, i, &sum), LABRPC_OK);
        CU_ASSERT_EQUAL(sum, 2 + i);
        CU_ASSERT(ms_now() - t0 >= 40);
    }
    CU_ASSERT_EQUAL(labrpc_net_delay(f.net, 0, 0, 0, 0), LABRPC_OK);
    CU_ASSERT_EQUAL(call_add(f.end, 1, 1, &sum), LABRPC_OK);
    fx_close(&f);
}

/* A blocking call of Junk.Block, noting when it returned. */
typedef struct block_call {
    labrpc_end *end;
    int rc;
    int64_t done_at;
} block_call;

static void *block_main(void *p)
{
    block_call *bc = p;
    uint8_t *reply = NULL;
    size_t len;
    bc->rc = labrpc_call(bc->end, "Junk.Block", "", 0, &reply, &len);
    bc->done_at = ms_now();
    free(reply);
    return NULL;
}

static void test_delete_while_handler_runs(void)
{
    fixture f;
    fx_open(&f);
    block_call bc = { f.end, -1, 0 };
    pthread_t bt;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&bt, NULL, block_main, &bc), 0);
    junk_wait_blocked(&f.j, 1);
    /* The handler would run 20 s; the caller must hear promptly. */
    int64_t t0 = ms_now();
    labrpc_net_delete_server(f.net, "s");
    pthread_join(bt, NULL);
    CU_ASSERT_EQUAL(bc.rc, LABRPC_FAIL);
    CU_ASSERT(bc.done_at - t0 < 1000);
    /* The server is gone: new calls fail. */
    int64_t sum;
    CU_ASSERT_EQUAL(call_add(f.end, 1, 1, &sum), LABRPC_FAIL);
    fx_close(&f);
}

static void test_replaced_server_reply_discarded(void)
{
    fixture f;
    fx_open(&f);
    block_call bc = { f.end, -1, 0 };
    pthread_t bt;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&bt, NULL, block_main, &bc), 0);
    junk_wait_blocked(&f.j, 1);
    /* Replace "s" by a fresh server while the old handler runs. */
    junk j2;
    junk_init(&j2);
    labrpc_server *s2 = junk_server(&j2);
    int64_t t0 = ms_now();
    CU_ASSERT_EQUAL(labrpc_net_add_server(f.net, "s", s2), 0);
    pthread_join(bt, NULL);
    CU_ASSERT_EQUAL(bc.rc, LABRPC_FAIL);
    CU_ASSERT(bc.done_at - t0 < 1000);
    /* Let the old handler produce its late reply: nobody sees it. */
    junk_release(&f.j);
    labrpc_server_free(f.srv);  /* waits for the old handler */
    f.srv = NULL;
    int64_t sum;
    CU_ASSERT_EQUAL(call_add(f.end, 5, 6, &sum), LABRPC_OK);
    CU_ASSERT_EQUAL(sum, 11);
    CU_ASSERT_EQUAL(j2.calls, 1);
    labrpc_net_cleanup(f.net);
    labrpc_server_free(s2);
    junk_destroy(&j2);
    junk_destroy(&f.j);
}

/* ---- non-blocking calls ------------------------------------------------ */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int ok;
    int canceled;
    int failed;
    int64_t sum;
    bool bad_reply;
} waiter;

static void waiter_init(waiter *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void waiter_destroy(waiter *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static void on_done(void *arg, int status, const uint8_t *reply, size_t len)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    if (status == LABRPC_OK) {
        codec_dec d;
        codec_dec_init(&d, reply, len);
        w->sum += codec_get_i64(&d);
        if (codec_dec_finish(&d) != CODEC_OK)
            w->bad_reply = true;
        w->ok++;
    } else if (status == LABRPC_ECANCELED) {
        w->canceled++;
    } else {
        w->failed++;
    }
    w->done++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void waiter_wait(waiter *w, int n)
{
    pthread_mutex_lock(&w->mu);
    while (w->done < n)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static int go_add(labrpc_end *e, int64_t a, int64_t b, waiter *w)
{
    codec_enc enc;
    codec_enc_init(&enc);
    codec_put_i64(&enc, a);
    codec_put_i64(&enc, b);
    int rc = labrpc_go(e, "Junk.Add", enc.buf, enc.len, on_done, w);
    codec_enc_free(&enc);
    return rc;
}

static void test_go_callbacks(void)
{
    fixture f;
    fx_open(&f);
    waiter w;
    waiter_init(&w);
    for (int i = 1; i <= 50; i++)
        CU_ASSERT_EQUAL(go_add(f.end, i, 0, &w), LABRPC_OK);
    waiter_wait(&w, 50);
    CU_ASSERT_EQUAL(w.ok, 50);
    CU_ASSERT_EQUAL(w.sum, 50 * 51 / 2);
    CU_ASSERT_FALSE(w.bad_reply);
    /* A failed one completes too. */
    labrpc_net_enable(f.net, f.end, false);
    CU_ASSERT_EQUAL(go_add(f.end, 1, 1, &w), LABRPC_OK);
    waiter_wait(&w, 51);
    CU_ASSERT_EQUAL(w.failed, 1);
    fx_close(&f);
    waiter_destroy(&w);
}

static void test_cancel(void)
{
    fixture f;
    fx_open(&f);
    labrpc_net_long_delays(f.net, true);
    waiter w;
    waiter_init(&w);
    /* Calls stuck behind long delays and in a handler: cancel ends them now. */
    labrpc_end *dead = labrpc_net_make_end(f.net, "dead");
    labrpc_net_connect(f.net, dead, "nobody");
    labrpc_net_enable(f.net, dead, true);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(go_add(dead, 1, 1, &w), LABRPC_OK);
    CU_ASSERT_EQUAL(labrpc_go(f.end, "Junk.Block", "", 0, on_done, &w), LABRPC_OK);
    junk_wait_blocked(&f.j, 1);
    int64_t t0 = ms_now();
    CU_ASSERT_EQUAL(labrpc_end_cancel(dead), LABRPC_OK);
    CU_ASSERT_EQUAL(labrpc_end_cancel(f.end), LABRPC_OK);
    CU_ASSERT(ms_now() - t0 < 1000);
    /* Every callback has run by the time cancel returns. */
    pthread_mutex_lock(&w.mu);
    CU_ASSERT_EQUAL(w.done, 6);
    CU_ASSERT_EQUAL(w.canceled, 6);
    pthread_mutex_unlock(&w.mu);
    /* New calls are refused and make no callback. */
    int64_t sum;
    CU_ASSERT_EQUAL(go_add(f.end, 1, 1, &w), LABRPC_ECANCELED);
    CU_ASSERT_EQUAL(call_add(dead, 1, 1, &sum), LABRPC_ECANCELED);
    fx_close(&f);
    CU_ASSERT_EQUAL(w.done, 6);
    waiter_destroy(&w);
}

static void test_long_reordering(void)
{
    fixture f;
    fx_open(&f);
    labrpc_net_long_reordering(f.net, true);
    waiter w;
    waiter_init(&w);
    int64_t t0 = ms_now();
    for (int i = 1; i <= 30; i++)
        CU_ASSERT_EQUAL(go_add(f.end, i, 0, &w), LABRPC_OK);
    waiter_wait(&w, 30);
    int64_t took = ms_now() - t0;
    /* All arrive (reordering loses nothing), some were held >= 200 ms. */
    CU_ASSERT_EQUAL(w.ok, 30);
    CU_ASSERT_EQUAL(w.sum, 30 * 31 / 2);
    CU_ASSERT(took >= 200);
    CU_ASSERT(took < 2200 + 3000);
    fx_close(&f);
    waiter_destroy(&w);
}

/* Hostile mode: every call still completes exactly once with its own
 * reply; some requests reach the handler a second time, later. */
static void test_hostile(void)
{
    fixture f;
    fx_open(&f);
    labrpc_net_hostile(f.net, true);
    waiter w;
    waiter_init(&w);
    for (int i = 1; i <= 200; i++)
        CU_ASSERT_EQUAL(go_add(f.end, i, 0, &w), LABRPC_OK);
    waiter_wait(&w, 200);
    CU_ASSERT_EQUAL(w.ok, 200);
    CU_ASSERT_EQUAL(w.sum, 200 * 201 / 2);
    CU_ASSERT_FALSE(w.bad_reply);
    /* The replays (about one in four) arrive within 3 s. */
    int64_t t0 = ms_now();
    int calls = 0;
    while (ms_now() - t0 < 3500) {
        pthread_mutex_lock(&f.j.mu);
        calls = f.j.calls;
        pthread_mutex_unlock(&f.j.mu);
        usleep(50 * 1000);
    }
    CU_ASSERT(calls > 200 + 20);
    CU_ASSERT(calls < 200 + 100);
    CU_ASSERT_EQUAL(labrpc_net_total_count(f.net), 200);   /* replays are in no counter */
    fx_close(&f);
    waiter_destroy(&w);
}

/* With lost replies the server handles every request, and the caller
 * sees each call fail; afterwards replies come back again. */
static void test_lose_replies(void)
{
    fixture f;
    fx_open(&f);
    int64_t sum = 0;
    labrpc_end_lose_replies(f.end, true);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(call_add(f.end, i, 1, &sum), LABRPC_FAIL);
    CU_ASSERT_EQUAL(labrpc_server_count(f.srv), 5);
    labrpc_end_lose_replies(f.end, false);
    CU_ASSERT_EQUAL(call_add(f.end, 40, 2, &sum), LABRPC_OK);
    CU_ASSERT_EQUAL(sum, 42);
    CU_ASSERT_EQUAL(labrpc_server_count(f.srv), 6);
    fx_close(&f);
}

/* Held requests wait, neither delivered nor failed; a release sends them
 * in order; new requests after hold(false) go at once. */
static void test_hold(void)
{
    fixture f;
    fx_open(&f);
    waiter w;
    waiter_init(&w);
    labrpc_end_hold(f.end, true);
    for (int i = 1; i <= 5; i++)
        CU_ASSERT_EQUAL(go_add(f.end, i, 0, &w), LABRPC_OK);
    usleep(200 * 1000);
    CU_ASSERT_EQUAL(labrpc_end_held(f.end), 5);
    pthread_mutex_lock(&w.mu);
    CU_ASSERT_EQUAL(w.done, 0);
    pthread_mutex_unlock(&w.mu);
    labrpc_end_hold(f.end, false);
    CU_ASSERT_EQUAL(go_add(f.end, 100, 0, &w), LABRPC_OK);   /* not held */
    waiter_wait(&w, 1);
    CU_ASSERT_EQUAL(w.sum, 100);
    CU_ASSERT_EQUAL(labrpc_end_held(f.end), 5);
    labrpc_end_release(f.end);
    waiter_wait(&w, 6);
    CU_ASSERT_EQUAL(w.ok, 6);
    CU_ASSERT_EQUAL(w.sum, 115);
    CU_ASSERT_EQUAL(labrpc_end_held(f.end), 0);
    /* A released request is on its way: delivered although the end is off. */
    labrpc_end_hold(f.end, true);
    CU_ASSERT_EQUAL(go_add(f.end, 1000, 0, &w), LABRPC_OK);
    CU_ASSERT_EQUAL(go_add(f.end, 2000, 0, &w), LABRPC_OK);
    labrpc_net_enable(f.net, f.end, false);
    labrpc_end_release(f.end);
    waiter_wait(&w, 8);
    CU_ASSERT_EQUAL(w.sum, 3115);
    labrpc_net_enable(f.net, f.end, true);
    /* Held calls are calls in flight: cancel ends them. */
    labrpc_end_hold(f.end, true);
    CU_ASSERT_EQUAL(go_add(f.end, 1, 0, &w), LABRPC_OK);
    CU_ASSERT_EQUAL(labrpc_end_cancel(f.end), LABRPC_OK);
    CU_ASSERT_EQUAL(w.canceled, 1);
    fx_close(&f);
    waiter_destroy(&w);
}

/* The observer sees each step of each call: a plain call, a held one, a
 * copy of it, and one to a disabled end; ids are unique, tags passed on. */
typedef struct obs_log {
    pthread_mutex_t mu;
    int n;
    labrpc_obs ev[64];
} obs_log;

static void obs_record(void *arg, const labrpc_obs *ev)
{
    obs_log *l = arg;
    pthread_mutex_lock(&l->mu);
    if (l->n < 64) {
        l->ev[l->n] = *ev;
        l->ev[l->n].method = l->ev[l->n].server = NULL;   /* borrowed: not kept */
        l->n++;
    }
    pthread_mutex_unlock(&l->mu);
}

static int obs_count(obs_log *l, labrpc_obs_kind kind, uint64_t id)
{
    pthread_mutex_lock(&l->mu);
    int k = 0;
    for (int i = 0; i < l->n; i++)
        k += l->ev[i].kind == kind && (id == 0 || l->ev[i].id == id);
    pthread_mutex_unlock(&l->mu);
    return k;
}

static void test_observe(void)
{
    fixture f;
    fx_open(&f);
    static obs_log l = { .mu = PTHREAD_MUTEX_INITIALIZER };
    l.n = 0;
    labrpc_end_tag(f.end, 7);   /* no call on it yet */
    labrpc_net_observe(f.net, obs_record, &l);
    int64_t sum;
    CU_ASSERT_EQUAL(call_add(f.end, 1, 2, &sum), LABRPC_OK);   /* id 1 */
    CU_ASSERT_EQUAL(obs_count(&l, LABRPC_OBS_CALL, 1), 1);
    CU_ASSERT_EQUAL(obs_count(&l, LABRPC_OBS_DELIVER, 1), 1);
    CU_ASSERT_EQUAL(obs_count(&l, LABRPC_OBS_REPLY, 1), 1);
    pthread_mutex_lock(&l.mu);
    CU_ASSERT_EQUAL(l.ev[0].kind, LABRPC_OBS_CALL);
    CU_ASSERT_EQUAL(l.ev[0].tag, 7);
    CU_ASSERT_EQUAL(l.ev[0].bytes, 16);
    CU_ASSERT_EQUAL(l.ev[2].kind, LABRPC_OBS_REPLY);
    CU_ASSERT_EQUAL(l.ev[2].bytes, 8);
    pthread_mutex_unlock(&l.mu);

    waiter w;
    waiter_init(&w);
    labrpc_end_hold(f.end, true);
    CU_ASSERT_EQUAL(go_add(f.end, 5, 0, &w), LABRPC_OK);        /* id 2, held */
    CU_ASSERT_EQUAL(obs_count(&l, LABRPC_OBS_HELD, 2), 1);
    labrpc_end_echo(f.end, 1, 10);                              /* id 3, a copy of 2 */
    usleep(100 * 1000);
    CU_ASSERT_EQUAL(obs_count(&l, LABRPC_OBS_ECHO, 3), 1);
    CU_ASSERT_EQUAL(obs_count(&l, LABRPC_OBS_DELIVER, 3), 1);
    CU_ASSERT_EQUAL(obs_count(&l, LABRPC_OBS_REPLY, 3), 0);     /* a copy's reply goes nowhere */
    labrpc_end_hold(f.end, false);
    labrpc_end_release(f.end);
    waiter_wait(&w, 1);
    CU_ASSERT_EQUAL(obs_count(&l, LABRPC_OBS_REPLY, 2), 1);
    labrpc_net_enable(f.net, f.end, false);
    CU_ASSERT_EQUAL(call_add(f.end, 1, 2, &sum), LABRPC_FAIL);  /* id 4 */
    CU_ASSERT_EQUAL(obs_count(&l, LABRPC_OBS_FAIL, 4), 1);
    CU_ASSERT_EQUAL(obs_count(&l, LABRPC_OBS_DELIVER, 4), 0);
    fx_close(&f);
    waiter_destroy(&w);
}

/* An echo delivers the oldest held request again, copies times, gap_ms
 * apart, even on a disabled end; the call itself stays held, and no
 * counter sees the copies. */
static void test_echo(void)
{
    fixture f;
    fx_open(&f);
    waiter w;
    waiter_init(&w);
    labrpc_end_hold(f.end, true);
    CU_ASSERT_EQUAL(go_add(f.end, 7, 0, &w), LABRPC_OK);
    CU_ASSERT_EQUAL(go_add(f.end, 8, 0, &w), LABRPC_OK);
    labrpc_net_enable(f.net, f.end, false);
    int64_t t0 = ms_now();
    labrpc_end_echo(f.end, 4, 50);
    int calls = 0;
    while (calls < 4 && ms_now() - t0 < 2000) {
        usleep(10 * 1000);
        pthread_mutex_lock(&f.j.mu);
        calls = f.j.calls;
        pthread_mutex_unlock(&f.j.mu);
    }
    CU_ASSERT_EQUAL(calls, 4);
    CU_ASSERT(ms_now() - t0 >= 200);
    usleep(200 * 1000);
    pthread_mutex_lock(&f.j.mu);
    CU_ASSERT_EQUAL(f.j.calls, 4);                          /* no more than asked */
    pthread_mutex_unlock(&f.j.mu);
    CU_ASSERT_EQUAL(labrpc_end_held(f.end), 2);
    pthread_mutex_lock(&w.mu);
    CU_ASSERT_EQUAL(w.done, 0);                             /* the replies went nowhere */
    pthread_mutex_unlock(&w.mu);
    CU_ASSERT_EQUAL(labrpc_net_total_count(f.net), 2);
    labrpc_end_release(f.end);
    waiter_wait(&w, 2);
    CU_ASSERT_EQUAL(w.ok, 2);
    CU_ASSERT_EQUAL(w.sum, 15);
    labrpc_end_echo(f.end, 3, 10);                          /* nothing held: nothing */
    usleep(100 * 1000);
    pthread_mutex_lock(&f.j.mu);
    CU_ASSERT_EQUAL(f.j.calls, 6);
    pthread_mutex_unlock(&f.j.mu);
    fx_close(&f);
    waiter_destroy(&w);
}

static void crash_hook(void *arg)
{
    (*(int *)arg)++;
}

/* A crash point: the nth answer goes out, then the server is gone, the
 * given ends are disabled and the hook has run, once. */
static void test_crash_point(void)
{
    fixture f;
    fx_open(&f);
    labrpc_end *own = labrpc_net_make_end(f.net, "own");
    labrpc_net_connect(f.net, own, "s");
    labrpc_net_enable(f.net, own, true);
    int fired = 0;
    CU_ASSERT_EQUAL(labrpc_net_crash_point(f.net, "s", 3, &own, 1, crash_hook, &fired),
                    LABRPC_OK);
    int64_t sum;
    for (int i = 1; i <= 3; i++) {
        CU_ASSERT_EQUAL(call_add(f.end, i, 0, &sum), LABRPC_OK);
        CU_ASSERT_EQUAL(sum, i);
    }
    CU_ASSERT_EQUAL(fired, 1);
    CU_ASSERT_NOT_EQUAL(call_add(f.end, 4, 0, &sum), LABRPC_OK);   /* gone */
    CU_ASSERT_NOT_EQUAL(call_add(own, 4, 0, &sum), LABRPC_OK);     /* disabled */
    CU_ASSERT_EQUAL(fired, 1);
    /* Disarming: a new server of that name answers, no hook. */
    CU_ASSERT_EQUAL(labrpc_net_crash_point(f.net, "s", 1, &own, 1, crash_hook, &fired),
                    LABRPC_OK);
    CU_ASSERT_EQUAL(labrpc_net_crash_point(f.net, NULL, 0, NULL, 0, NULL, NULL), LABRPC_OK);
    labrpc_server *again = junk_server(&f.j);
    CU_ASSERT_EQUAL(labrpc_net_add_server(f.net, "s", again), 0);
    CU_ASSERT_EQUAL(call_add(f.end, 5, 0, &sum), LABRPC_OK);
    CU_ASSERT_EQUAL(fired, 1);
    fx_close(&f);
    labrpc_server_free(again);
}

static void test_cleanup_in_flight(void)
{
    fixture f;
    fx_open(&f);
    labrpc_net_long_delays(f.net, true);
    labrpc_net_long_reordering(f.net, true);
    labrpc_net_reliable(f.net, false);
    waiter w;
    waiter_init(&w);
    labrpc_end *dead = labrpc_net_make_end(f.net, "dead");
    labrpc_net_enable(f.net, dead, false);
    for (int i = 0; i < 20; i++) {
        CU_ASSERT_EQUAL(go_add(f.end, i, 0, &w), LABRPC_OK);
        CU_ASSERT_EQUAL(go_add(dead, i, 0, &w), LABRPC_OK);
    }
    /* Cleanup completes every call (valgrind checks nothing is left), and
     * fails the waiting ones rather than waiting out their delays; under
     * valgrind on a busy machine it may take longer. */
    int64_t t0 = ms_now();
    labrpc_net_cleanup(f.net);
    CU_ASSERT(ms_now() - t0 < (RUNNING_ON_VALGRIND ? 10000 : 2000));
    CU_ASSERT_EQUAL(w.done, 40);
    labrpc_server_free(f.srv);
    junk_destroy(&f.j);
    waiter_destroy(&w);
}

static const suite_test tests[] = {
    { "basic", test_basic },
    { "bad_requests", test_bad_requests },
    { "disconnect", test_disconnect },
    { "counts", test_counts },
    { "bytes", test_bytes },
    { "concurrent_clients", test_concurrent_clients },
    { "concurrent_one_end", test_concurrent_one_end },
    { "unreliable", test_unreliable },
    { "disabled_then_enabled", test_disabled_then_enabled },
    { "failure_delays", test_failure_delays },
    { "leg_delay", test_leg_delay },
    { "delete_while_handler_runs", test_delete_while_handler_runs },
    { "replaced_server_reply_discarded", test_replaced_server_reply_discarded },
    { "go_callbacks", test_go_callbacks },
    { "cancel", test_cancel },
    { "long_reordering", test_long_reordering },
    { "cleanup_in_flight", test_cleanup_in_flight },
    { "hostile", test_hostile },
    { "hold", test_hold },
    { "lose_replies", test_lose_replies },
    { "echo", test_echo },
    { "observe", test_observe },
    { "crash_point", test_crash_point },
    { NULL, NULL },
};

const suite_def labrpc_suite = { "labrpc", tests };
