/* labrpc_bench: the cost of an RPC on a reliable network.
 *   labrpc: <X> us/rpc            100,000 sequential blocking calls, median of 3
 *   labrpc: <Y> rpcs/s with 8 callers
 * Usage: labrpc_bench [calls]  (default 100000) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "labrpc.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int h_inc(void *ctx, const uint8_t *args, size_t n, codec_enc *reply)
{
    (void)ctx;
    codec_dec d;
    codec_dec_init(&d, args, n);
    int64_t v = codec_get_i64(&d);
    if (codec_dec_finish(&d) != CODEC_OK)
        return -1;
    codec_put_i64(reply, v + 1);
    return 0;
}

typedef struct caller {
    labrpc_end *end;
    long calls;
    long failures;
} caller;

static void *run_calls(void *p)
{
    caller *c = p;
    for (long i = 0; i < c->calls; i++) {
        uint8_t args[8], *reply;
        size_t len;
        for (int b = 0; b < 8; b++)
            args[b] = (uint8_t)(i >> (8 * b));
        if (labrpc_call(c->end, "Bench.Inc", args, sizeof args, &reply, &len) != LABRPC_OK)
            c->failures++;
        else
            free(reply);
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long calls = argc > 1 ? atol(argv[1]) : 100000;
    if (calls <= 0) {
        fprintf(stderr, "usage: labrpc_bench [calls > 0]\n");
        return 2;
    }
    labrpc_net *net = labrpc_net_new(1);
    labrpc_service *svc = labrpc_service_new("Bench", NULL);
    labrpc_server *srv = labrpc_server_new();
    if (!net || !svc || !srv || labrpc_service_add(svc, "Inc", h_inc) ||
        labrpc_server_add_service(srv, svc) || labrpc_net_add_server(net, "s", srv)) {
        fprintf(stderr, "labrpc_bench: setup failed (out of memory?)\n");
        return 1;
    }
    caller cs[8];
    for (int i = 0; i < 8; i++) {
        char name[16];
        snprintf(name, sizeof name, "e%d", i);
        cs[i].end = labrpc_net_make_end(net, name);
        if (!cs[i].end) {
            fprintf(stderr, "labrpc_bench: cannot make end\n");
            return 1;
        }
        labrpc_net_connect(net, cs[i].end, "s");
        labrpc_net_enable(net, cs[i].end, true);
    }

    long failures = 0;
    double us[3];
    for (int r = 0; r < 3; r++) {
        cs[0].calls = calls;
        cs[0].failures = 0;
        double t0 = now_s();
        run_calls(&cs[0]);
        us[r] = (now_s() - t0) * 1e6 / calls;
        failures += cs[0].failures;
    }
    qsort(us, 3, sizeof us[0], cmp_double);
    printf("labrpc: %.2f us/rpc\n", us[1]);

    pthread_t th[8];
    double t0 = now_s();
    for (int i = 0; i < 8; i++) {
        cs[i].calls = calls / 8;
        cs[i].failures = 0;
        if (pthread_create(&th[i], NULL, run_calls, &cs[i]) != 0) {
            fprintf(stderr, "labrpc_bench: cannot start a thread\n");
            return 1;
        }
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        failures += cs[i].failures;
    }
    double secs = now_s() - t0;
    printf("labrpc: %.0f rpcs/s with 8 callers\n", 8 * (calls / 8) / secs);

    labrpc_net_cleanup(net);
    labrpc_server_free(srv);
    if (failures) {
        fprintf(stderr, "labrpc_bench: %ld calls failed on a reliable network\n", failures);
        return 1;
    }
    return 0;
}
