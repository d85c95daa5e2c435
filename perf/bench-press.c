/* bench-press: cost of one press call (scoring + budget allocation + compaction) per layer on
 * a random int8 KV cache, for every press and allocation, at the default model's shapes
 * (3 KV heads, 9 query heads, head_dim 64, n_embd 576, window 32, 30 layers).
 *
 *   perf/bench-press [-L rows] [-b budget] [-r reps] [-t threads] [-T int8|f16|f32]
 *
 * Every repetition refills the cache with the same random rows (not timed), then times one
 * kv_press_compress_layer call. Prints the median ms per layer and that median times 30 layers,
 * plus the two scoring kernels alone (SnapKV window scores, CriticalKV value norms). The issue's
 * bar is press time <= 5% of the prefill time of the same prompt. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv-cache.h"
#include "kv-press.h"
#include "kv-score.h"
#include "ops.h"

enum { N_LAYER_MODEL = 30, N_KV = 3, N_HEAD = 9, HEAD_DIM = 64, N_EMBD = 576 };

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float unif(void) { /* [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)(rng >> 40) * 0x1p-23f - 1.0f;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct bench {
    int L, reps;
    float *k, *v; /* [L][N_KV * HEAD_DIM] */
    float *q;     /* [window][N_HEAD][HEAD_DIM] */
    float *w_o;   /* [N_EMBD][N_HEAD * HEAD_DIM] */
    struct kv_cache kv;
};

static int refill(struct bench *b, struct adakv_err *e) {
    const struct simd_ops *ops = simd_ops_best();
    kv_cache_clear(&b->kv);
    for (int g = 0; g < N_KV; g++)
        if (kv_cache_append(&b->kv, 0, g, b->k + (size_t)g * HEAD_DIM, b->v + (size_t)g * HEAD_DIM,
                            (size_t)N_KV * HEAD_DIM, b->L, 0, ops->quant_row_i8, e) < 0)
            return -1;
    return 0;
}

/* Sorts t; its median, and its minimum in *lo (the figure least disturbed by other load on a
 * shared machine). */
static double median(double *t, int n, double *lo) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    *lo = t[0];
    return t[n / 2];
}

static void report(const char *what, double ms, double lo) {
    printf("%-26s %9.2f ms/layer %10.1f ms/%d layers   (min %.2f ms/layer)\n", what, ms,
           ms * N_LAYER_MODEL, N_LAYER_MODEL, lo);
}

static int bench_press(struct bench *b, const char *name, int budget, struct adakv_err *e) {
    struct kv_press_config cfg;
    kv_press_config_default(&cfg);
    if (kv_press_parse_name(name, &cfg, e) < 0)
        return -1;
    cfg.budget = budget;
    struct kv_press_hook hk = {.cfg = &cfg,
                               .n_layer = N_LAYER_MODEL,
                               .n_head = N_HEAD,
                               .n_embd = N_EMBD,
                               .w_o = kv_press_needs_w_o(&cfg) ? b->w_o : NULL};
    double *t = malloc((size_t)b->reps * sizeof *t);
    size_t kept = 0;
    for (int r = 0; r < b->reps; r++) {
        if (refill(b, e) < 0) {
            free(t);
            return -1;
        }
        /* Layer 0: for the pyramid presses the layer with the largest budget. */
        double t0 = now_ms();
        int rc = kv_press_compress_layer(&hk, &b->kv, 0, b->q, cfg.window, e);
        t[r] = now_ms() - t0;
        if (rc < 0) {
            free(t);
            return -1;
        }
        kept = kv_cache_layer_rows(&b->kv, 0);
    }
    char label[64];
    snprintf(label, sizeof label, "%s (kept %zu)", name, kept);
    double lo, med = median(t, b->reps, &lo);
    report(label, med, lo);
    free(t);
    return 0;
}

static int bench_kernels(struct bench *b, int window, struct adakv_err *e) {
    if (refill(b, e) < 0)
        return -1;
    int32_t off[N_KV + 1];
    if (kv_score_layout(&b->kv, 0, window, off, e) < 0)
        return -1;
    float *s = malloc((size_t)off[N_KV] * sizeof *s);
    double *t = malloc((size_t)b->reps * sizeof *t);
    int rc = 0;
    for (int r = 0; r < b->reps && rc == 0; r++) {
        double t0 = now_ms();
        rc = kv_score_snapkv(simd_ops_best(), &b->kv, 0, b->q, window, N_HEAD, KV_POOL_MAX, 7, off,
                             s, e);
        t[r] = now_ms() - t0;
    }
    double lo = 0.0;
    if (rc == 0) {
        double med = median(t, b->reps, &lo);
        report("  snapkv scores alone", med, lo);
    }
    for (int r = 0; r < b->reps && rc == 0; r++) {
        double t0 = now_ms();
        rc = kv_score_value_norm(simd_ops_best(), &b->kv, 0, N_HEAD, N_EMBD, b->w_o, off, s, e);
        t[r] = now_ms() - t0;
    }
    if (rc == 0) {
        double ms = median(t, b->reps, &lo);
        report("  value norms alone", ms, lo);
        printf("%-26s %9.1f GFLOP/s\n", "  value norms rate (min)",
               2.0 * off[N_KV] * (N_HEAD / N_KV) * HEAD_DIM * N_EMBD / (lo * 1e6));
    }
    free(s);
    free(t);
    return rc;
}

int main(int argc, char **argv) {
    struct bench b = {.L = 8000, .reps = 5};
    int budget = 0, threads = 0;
    enum kv_type type = KV_TYPE_INT8;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) {
            fprintf(stderr, "bench-press: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "-L"))
            b.L = atoi(val);
        else if (!strcmp(a, "-b"))
            budget = atoi(val);
        else if (!strcmp(a, "-r"))
            b.reps = atoi(val);
        else if (!strcmp(a, "-t"))
            threads = atoi(val);
        else if (!strcmp(a, "-T"))
            type = !strcmp(val, "f16") ? KV_TYPE_F16 : !strcmp(val, "f32") ? KV_TYPE_F32 : type;
        else {
            fprintf(stderr, "usage: bench-press [-L rows] [-b budget] [-r reps] [-t threads] "
                            "[-T int8|f16|f32]\n");
            return 2;
        }
        i++;
    }
    const int window = 32;
    if (b.L <= window || b.reps < 1) {
        fprintf(stderr, "bench-press: -L must exceed the window (%d) and -r be >= 1\n", window);
        return 2;
    }
    if (budget <= 0)
        budget = b.L / 5; /* 20% kept, the memory case */
    if (threads > 0)
        omp_set_num_threads(threads);
    struct adakv_err e = {{0}};
    b.k = malloc((size_t)b.L * N_KV * HEAD_DIM * sizeof *b.k);
    b.v = malloc((size_t)b.L * N_KV * HEAD_DIM * sizeof *b.v);
    b.q = malloc((size_t)window * N_HEAD * HEAD_DIM * sizeof *b.q);
    b.w_o = malloc((size_t)N_EMBD * N_HEAD * HEAD_DIM * sizeof *b.w_o);
    if (!b.k || !b.v || !b.q || !b.w_o || kv_cache_init(&b.kv, type, 1, N_KV, HEAD_DIM, &e) < 0) {
        fprintf(stderr, "bench-press: %s\n", e.msg[0] ? e.msg : "out of memory");
        return 1;
    }
    /* Keys with a per-row spread so the window attention is peaked on some rows. */
    for (int j = 0; j < b.L; j++) {
        float amp = 0.5f + 1.5f * (unif() + 1.0f);
        for (int i = 0; i < N_KV * HEAD_DIM; i++) {
            b.k[(size_t)j * N_KV * HEAD_DIM + i] = unif() * amp;
            b.v[(size_t)j * N_KV * HEAD_DIM + i] = unif();
        }
    }
    for (int i = 0; i < window * N_HEAD * HEAD_DIM; i++)
        b.q[i] = unif() * 0.5f;
    for (int i = 0; i < N_EMBD * N_HEAD * HEAD_DIM; i++)
        b.w_o[i] = unif() * 0.05f;

    printf("bench-press: L %d, budget %d per KV head, %s KV, %d KV heads, %d query heads, "
           "head_dim %d, n_embd %d, window %d, %d threads, ISA %s, median of %d\n",
           b.L, budget,
           type == KV_TYPE_INT8  ? "int8"
           : type == KV_TYPE_F16 ? "f16"
                                 : "f32",
           N_KV, N_HEAD, HEAD_DIM, N_EMBD, window, omp_get_max_threads(), simd_ops_best()->isa,
           b.reps);
    const char *presses[] = {"streaming", "knorm",       "random",   "snapkv",      "ada-snapkv",
                             "pyramid",   "ada-pyramid", "critical", "ada-critical"};
    int rc = 0;
    for (size_t p = 0; p < sizeof presses / sizeof presses[0] && rc == 0; p++)
        rc = bench_press(&b, presses[p], budget, &e);
    if (rc == 0)
        rc = bench_kernels(&b, window, &e);
    if (rc < 0)
        fprintf(stderr, "bench-press: %s\n", e.msg);
    kv_cache_free(&b.kv);
    free(b.k);
    free(b.v);
    free(b.q);
    free(b.w_o);
    return rc < 0 ? 1 : 0;
}
