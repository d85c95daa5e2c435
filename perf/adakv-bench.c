/* adakv-bench: llama-bench's tests on adakv, so the two can be run side by side.
 *   ppN        prefill of N random tokens as one prompt, N / seconds
 *   tgN        N single-token decodes from a warmed state, N / seconds
 *   tgN@dD     the same after a D-token prefill (the prefill itself is not timed)
 * Each test runs once as warm-up, then -r repetitions; prints median and min/max of tokens/s,
 * one CSV line per test to stdout:
 * test,kv,press,threads,reps,median_tps,min_tps,max_tps,ms_per_tok, and for decode tests the live
 * K/V rows, the K/V bytes one decode step reads (rows x (K+V) plus int8 row scales), the seconds
 * the untimed depth prefill (with its press) took and the seconds of it spent inside the press
 * (scoring, budget allocation, compaction). Random tokens exclude control tokens so the model
 * sees ordinary text ids. -p 0 (as llama-bench) runs no prompt test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adakv-ext.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fill_tokens(int32_t *t, int n, int n_vocab, unsigned *seed) {
    for (int i = 0; i < n; i++)
        t[i] = 1000 + (int32_t)(rand_r(seed) % (unsigned)(n_vocab - 1000));
}

static void usage(void) {
    fprintf(stderr, "usage: adakv-bench -m model.gguf [-p 512,4096] [-n 128] [-d 0,8192] [-r 5] "
                    "[-t 2] [--kv-type int8|f16|f32] [--prefill-gemm auto|quant|f32|bf16] [--press "
                    "P --kv-budget N ...]\n");
}

/* Parses "a,b,c" into up to 16 non-negative ints. */
static int parse_list(const char *s, int *out) {
    int n = 0;
    while (*s && n < 16) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > (1 << 20))
            return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return n;
}

/* A whole decimal integer in [lo, hi], or -1 (callers' values are all >= 0 or >= 1). */
static int parse_int(const char *s, int lo, int hi) {
    char *end;
    long v = strtol(s, &end, 10);
    return end != s && *end == '\0' && v >= lo && v <= hi ? (int)v : -1;
}

int main(int argc, char **argv) {
    const char *model = NULL, *kv = "int8";
    enum adakv_prefill_gemm gemm = ADAKV_PREFILL_GEMM_AUTO;
    int pp[16], n_pp = 0, depth[16] = {0}, n_depth = 1, n_gen = 128, reps = 5, threads = 0;
    struct adakv_press *press = adakv_press_new();
    struct adakv_err e = {{0}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) {
            usage();
            return 1;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-m"))
            model = v;
        else if (!strcmp(a, "-p"))
            n_pp = parse_list(v, pp);
        else if (!strcmp(a, "-d"))
            n_depth = parse_list(v, depth);
        else if (!strcmp(a, "-n"))
            n_gen = parse_int(v, 0, 1 << 20);
        else if (!strcmp(a, "-r"))
            reps = parse_int(v, 1, 1000);
        else if (!strcmp(a, "-t"))
            threads = parse_int(v, 0, 512);
        else if (!strcmp(a, "--kv-type"))
            kv = v;
        else if (!strcmp(a, "--prefill-gemm")) {
            if (adakv_prefill_gemm_parse(a, v, &gemm, &e)) {
                fprintf(stderr, "adakv-bench: %s\n", e.msg);
                return 1;
            }
        } else if (!strncmp(a, "--", 2) && adakv_press_set(press, a + 2, v, &e) == 0)
            continue; /* press options, named as adakv-run's */
        else {
            if (e.msg[0])
                fprintf(stderr, "adakv-bench: %s\n", e.msg);
            usage();
            return 1;
        }
        if (n_pp < 0 || n_depth < 0 || reps < 1 || n_gen < 0 || threads < 0) {
            fprintf(stderr, "adakv-bench: bad value for %s: '%s'\n", a, v);
            return 1;
        }
    }
    if (!model) {
        usage();
        return 1;
    }
    if (adakv_press_check(press, &e)) {
        fprintf(stderr, "adakv-bench: %s\n", e.msg);
        return 1;
    }
    char press_name[160];
    adakv_press_describe(press, press_name, sizeof press_name);
    for (char *p = press_name; *p; p++)
        *p = *p == ',' ? ';' : *p; /* keep the CSV columns */
    enum adakv_kv_type kvt = !strcmp(kv, "f16")   ? ADAKV_KV_F16
                             : !strcmp(kv, "f32") ? ADAKV_KV_F32
                                                  : ADAKV_KV_INT8;
    const size_t kv_elem = kvt == ADAKV_KV_F16 ? 2 : kvt == ADAKV_KV_F32 ? 4 : 1;
    struct adakv_model_params mp = {.n_threads = threads, .prefill_gemm = gemm};
    struct adakv_model *m = adakv_model_load(model, &mp, &e);
    if (!m) {
        fprintf(stderr, "adakv-bench: %s\n", e.msg);
        return 1;
    }
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    int max_tok = n_gen + 1;
    for (int i = 0; i < n_pp; i++)
        max_tok = pp[i] > max_tok ? pp[i] : max_tok;
    for (int i = 0; i < n_depth; i++)
        max_tok = depth[i] + n_gen + 1 > max_tok ? depth[i] + n_gen + 1 : max_tok;

    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = max_tok;
    cp.kv_type = kvt;
    cp.n_threads = threads;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
    if (!c || adakv_ctx_set_press(c, press, false, &e)) {
        fprintf(stderr, "adakv-bench: %s\n", e.msg);
        return 1;
    }
    int32_t *tok = malloc((size_t)max_tok * sizeof *tok);
    float *logits = malloc((size_t)info.n_vocab * sizeof *logits);
    double *tps = malloc((size_t)(reps + 1) * sizeof *tps);
    unsigned seed = 1234;
    printf("test,kv,press,threads,reps,median_tps,min_tps,max_tps,ms_per_tok,kv_rows,kv_read_bytes,"
           "depth_fill_s,press_s\n");

    for (int ip = 0; ip < n_pp; ip++) {
        int n = pp[ip];
        if (n == 0)
            continue; /* llama-bench's -p 0: no prompt test */
        for (int r = 0; r <= reps; r++) {
            fill_tokens(tok, n, info.n_vocab, &seed);
            adakv_ctx_reset(c);
            double t0 = now_s();
            if (adakv_eval(c, tok, n, logits, false, &e)) {
                fprintf(stderr, "adakv-bench: %s\n", e.msg);
                return 1;
            }
            tps[r] = n / (now_s() - t0);
        }
        qsort(tps + 1, (size_t)reps, sizeof *tps, cmp_d); /* tps[0] is the warm-up */
        printf("pp%d,%s,%s,%d,%d,%.2f,%.2f,%.2f,%.3f,,,,\n", n, kv, press_name, threads, reps,
               tps[1 + reps / 2], tps[1], tps[reps], 1e3 / tps[1 + reps / 2]);
        fflush(stdout);
    }
    /* Depth tests prefill once (untimed, as llama-bench caches its depth state), then every
     * repetition rewinds to the prefilled (and, with a press, compressed) cache and times n_gen
     * decodes on top of it. */
    for (int id = 0; id < n_depth && n_gen > 0; id++) {
        int d = depth[id];
        adakv_ctx_reset(c);
        fill_tokens(tok, d + n_gen, info.n_vocab, &seed);
        double t_fill = now_s();
        if (d > 0 && adakv_eval(c, tok, d, logits, false, &e)) {
            fprintf(stderr, "adakv-bench: %s\n", e.msg);
            return 1;
        }
        t_fill = now_s() - t_fill;
        const double t_press = adakv_ctx_press_seconds(c);
        /* K and V bytes one decode step reads: every live row, plus the f32 row scales of int8 */
        const size_t rows = adakv_ctx_kv_rows(c);
        const size_t row_bytes =
            2 * (size_t)info.head_dim * kv_elem + (kvt == ADAKV_KV_INT8 ? 8 : 0);
        for (int r = 0; r <= reps; r++) {
            if (adakv_ctx_rewind(c, d, &e)) {
                fprintf(stderr, "adakv-bench: %s\n", e.msg);
                return 1;
            }
            double t0 = now_s();
            for (int g = 0; g < n_gen; g++) {
                if (adakv_eval(c, tok + d + g, 1, logits, false, &e)) {
                    fprintf(stderr, "adakv-bench: %s\n", e.msg);
                    return 1;
                }
            }
            tps[r] = n_gen / (now_s() - t0);
        }
        qsort(tps + 1, (size_t)reps, sizeof *tps, cmp_d);
        char name[64];
        if (d)
            snprintf(name, sizeof name, "tg%d@d%d", n_gen, d);
        else
            snprintf(name, sizeof name, "tg%d", n_gen);
        printf("%s,%s,%s,%d,%d,%.2f,%.2f,%.2f,%.3f,%zu,%zu,%.3f,%.3f\n", name, kv, press_name,
               threads, reps, tps[1 + reps / 2], tps[1], tps[reps], 1e3 / tps[1 + reps / 2], rows,
               rows * row_bytes, t_fill, t_press);
        fflush(stdout);
    }
    free(tps);
    free(logits);
    free(tok);
    adakv_ctx_free(c);
    adakv_model_free(m);
    adakv_press_free(press);
    return 0;
}
