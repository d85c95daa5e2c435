/* adakv-server: flags -> model -> engine thread -> HTTP threads; then the main thread waits for
 * SIGINT or SIGTERM and takes everything down in order (engine first, so every waiting
 * handler gets its answer, then the HTTP threads, then the model). Only main prints and exits. */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cpu.h"
#include "engine.h"
#include "http.h"
#include "opts.h"

static int fail(struct server_opts *o, const char *msg) {
    fprintf(stderr, "adakv-server: %s\n", msg);
    server_opts_free(o);
    return 1;
}

int main(int argc, char **argv) {
    struct server_opts o;
    struct adakv_err e = {{0}};
    if (server_opts_parse(argc, argv, &o, &e))
        return fail(&o, e.msg);
    if (o.help || o.version) {
        if (o.help)
            server_opts_usage(stdout);
        else
            printf("adakv-server %s\n", ADAKV_VERSION);
        server_opts_free(&o);
        return 0;
    }
    if (simd_isa_init(e.msg, sizeof e.msg))
        return fail(&o, e.msg);
    /* Freed memory stays in the process for the next request. Every request forks its stored
     * context (the cache's rows copied into new segments) and frees the fork at its end; handed
     * back to the kernel, the next forks fault every page in again, zeroed: 75% of the samples
     * of 8 clients on an 8k-token document went to clear_page under kv_cache_copy. So: one
     * arena (the engine thread's frees serve its next forks), the segments from the heap (below
     * glibc's 32 MiB mmap ceiling), never trimmed; the process keeps its high-water mark, as a
     * server that sized its slots would. */
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, -1);
    /* the threads started below inherit this mask: the signals reach only sigwait here */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-answer is a failed write, not our death */

    struct adakv_model_params mp = {.n_threads = o.n_threads};
    struct adakv_model *m = adakv_model_load(o.model_path, &mp, &e);
    if (!m)
        return fail(&o, e.msg);
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    struct engine_params ep = {.parallel = o.parallel, .queue = o.queue, .kv_memory = o.kv_memory};
    ep.n_ctx = o.n_ctx ? o.n_ctx : info.n_ctx_train < 4096 ? info.n_ctx_train : 4096;
    adakv_ctx_params_default(&ep.ctx);
    ep.ctx.kv_type = o.kv_type;
    ep.ctx.n_threads = o.n_threads;
    ep.ctx.numa = o.numa;
    struct engine *g = NULL;
    if (!(ep.press = server_opts_press(&o, &e)) || !(g = engine_start(m, &ep, &e))) {
        adakv_model_free(m);
        return fail(&o, e.msg);
    }
    const char *base = strrchr(o.model_path, '/');
    struct api a = {.m = m,
                    .g = g,
                    .o = &o,
                    .model_id = o.alias        ? o.alias
                                : info.name[0] ? info.name
                                : base         ? base + 1
                                               : o.model_path,
                    .n_vocab = info.n_vocab};
    int port = 0;
    struct http *h = http_start(&a, &o, &port, &e);
    if (!h) {
        engine_free(g);
        adakv_model_free(m);
        return fail(&o, e.msg);
    }
    char press[160];
    adakv_press_describe(o.press, press, sizeof press);
    fprintf(stderr,
            "adakv-server: model %s (%s, %d layers), context %d, %d slots, queue %d, press %s\n",
            a.model_id, info.arch, info.n_layer, ep.n_ctx, o.parallel, o.queue, press);
    /* the line tests and scripts wait for; the port is the bound one when --port 0 */
    printf("adakv-server: listening on http://%s%s%s:%d\n", strchr(o.host, ':') ? "[" : "", o.host,
           strchr(o.host, ':') ? "]" : "", port);
    fflush(stdout);
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "adakv-server: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    engine_stop(g);
    http_stop(h);
    engine_free(g);
    adakv_model_free(m);
    server_opts_free(&o);
    return 0;
}
