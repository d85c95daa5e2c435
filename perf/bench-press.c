/* bench-press: cost of one press call (scoring + budget allocation + compaction) per layer on
 * a random int8 KV cache, for every press and allocation, at the default model's shapes
 * (3 KV heads, 9 query heads, head_dim 64, n_embd 576, window 32, 30 layers).
 *
 *   perf/bench-press [-L rows] [-b budget] [-r reps] [-t threads] [-T int8|f16|f32]
 *   perf/bench-press -m model.gguf -f text.txt [-L tokens] [-b budget] [-t threads] [-p press]
 *
 * With -m, it also prefills the first L tokens of the text on the real model (the text repeats
 * if it is shorter) once without a press and once per press with the hook installed, timing
 * every hook call: the press share of the prefill in the same run, which is the bar
 * (<= 5%). For critical, dequantizing W_O to f32 happens before the timed call (the engine
 * would hold it; it is reported apart).
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

#include "adakv-ext.h"
#include "gguf.h"
#include "kv-cache.h"
#include "kv-press.h"
#include "kv-score.h"
#include "ops.h"
#include "quant.h"
#include "tensor-type.h"
#include "tokenizer.h"

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

/* ---------------------------------------------------------------- real model mode */

struct timed_hook {
    struct kv_press_hook press;
    const struct gguf_file *gguf;
    float *w_o;
    int n_embd, qdim;
    double press_ms, w_o_ms;
};

static int load_w_o(struct timed_hook *th, int layer, struct adakv_err *e) {
    char name[64];
    snprintf(name, sizeof name, "blk.%d.attn_output.weight", layer);
    const struct gguf_tensor *t = gguf_find_tensor(th->gguf, name);
    const struct quant_kernels *k = t ? quant_kernels(t->type) : NULL;
    if (!t || !k || !k->dequant_row || t->ne[0] != (uint64_t)th->qdim ||
        t->ne[1] != (uint64_t)th->n_embd)
        return err_set(e, "bench-press: cannot read %s as [%d][%d]", name, th->n_embd, th->qdim);
    const size_t row = (size_t)tensor_type_row_size(t->type, t->ne[0]);
    for (int r = 0; r < th->n_embd; r++)
        k->dequant_row((const char *)t->data + r * row, th->w_o + (size_t)r * th->qdim, th->qdim);
    return 0;
}

static int timed_compress(void *user, struct kv_cache *kv, int layer, const float *q_window,
                          int n_window, struct adakv_err *e) {
    struct timed_hook *th = user;
    if (kv_press_needs_w_o(th->press.cfg)) {
        double t0 = now_ms();
        if (load_w_o(th, layer, e) < 0)
            return -1;
        th->press.w_o = th->w_o;
        th->w_o_ms += now_ms() - t0;
    }
    double t0 = now_ms();
    int rc = kv_press_compress_layer(&th->press, kv, layer, q_window, n_window, e);
    th->press_ms += now_ms() - t0;
    return rc;
}

/* Prefill of n tokens with `press` (NULL: no hook); returns ms, or < 0 on error. */
static double prefill_ms(struct adakv_model *m, const int32_t *ids, int n, const char *press,
                         int budget, struct timed_hook *th, struct adakv_err *e) {
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = n;
    struct kv_press_config cfg;
    kv_press_config_default(&cfg);
    if (press) {
        if (kv_press_parse_name(press, &cfg, e) < 0)
            return -1;
        cfg.budget = budget;
        th->press.cfg = &cfg;
        th->press_ms = th->w_o_ms = 0.0;
    }
    struct adakv_ctx *ctx = adakv_ctx_new(m, &cp, e);
    if (!ctx)
        return -1;
    if (press)
        adakv_ctx_set_compress(ctx, timed_compress, th);
    double t0 = now_ms();
    int rc = adakv_eval(ctx, ids, n, NULL, false, e);
    double ms = now_ms() - t0;
    size_t bytes = adakv_ctx_kv_bytes(ctx);
    adakv_ctx_free(ctx);
    if (rc < 0)
        return -1;
    if (!press)
        printf("%-14s prefill %9.1f ms (%7.1f tok/s), KV %zu bytes\n", "no press", ms, n * 1e3 / ms,
               bytes);
    else
        printf("%-14s prefill %9.1f ms, press %7.1f ms = %5.2f%% of the prefill (%.2f ms/layer)"
               "%s, KV %zu bytes\n",
               press, ms, th->press_ms, 100.0 * th->press_ms / (ms - th->w_o_ms),
               th->press_ms / th->press.n_layer, kv_press_needs_w_o(&cfg) ? " + W_O dequant" : "",
               bytes);
    if (press && kv_press_needs_w_o(&cfg))
        printf("%-14s   (W_O dequantized to f32 outside the timed press: %.1f ms)\n", "",
               th->w_o_ms);
    return ms;
}

static int bench_model(const char *model, const char *text_path, int n, int budget,
                       const char *only, struct adakv_err *e) {
    struct adakv_model_params mp = {.n_threads = 0};
    struct adakv_model *m = adakv_model_load(model, &mp, e);
    if (!m)
        return -1;
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    FILE *f = fopen(text_path, "rb");
    if (!f) {
        adakv_model_free(m);
        return err_set(e, "bench-press: cannot open %s", text_path);
    }
    char *text = malloc(1 << 20);
    size_t len = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    int32_t *ids = NULL, *prompt = malloc((size_t)n * sizeof *prompt);
    size_t n_ids = 0;
    int rc = tokenizer_encode(adakv_model_tokenizer(m), text, len, false, false, &ids, &n_ids, e);
    free(text);
    if (rc == 0 && n_ids == 0)
        rc = err_set(e, "bench-press: %s has no tokens", text_path);
    for (int i = 0; rc == 0 && i < n; i++)
        prompt[i] = ids[(size_t)i % n_ids];
    struct timed_hook th = {
        .press = {.n_layer = info.n_layer, .n_head = info.n_head, .n_embd = info.n_embd},
        .gguf = adakv_model_gguf(m),
        .n_embd = info.n_embd,
        .qdim = info.n_head * info.head_dim};
    th.w_o = malloc((size_t)th.n_embd * th.qdim * sizeof *th.w_o);
    if (rc == 0) {
        printf("\nreal model: %s, %d prompt tokens from %s, budget %d per KV head\n", info.name, n,
               text_path, budget);
        rc = prefill_ms(m, prompt, n, NULL, 0, &th, e) < 0 ? -1 : 0;
    }
    const char *presses[] = {"ada-snapkv", "snapkv", "ada-critical"};
    for (size_t p = 0; rc == 0 && p < sizeof presses / sizeof presses[0]; p++)
        if (!only || !strcmp(only, presses[p]))
            rc = prefill_ms(m, prompt, n, presses[p], budget, &th, e) < 0 ? -1 : 0;
    free(th.w_o);
    free(ids);
    free(prompt);
    adakv_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    struct bench b = {.L = 8000, .reps = 5};
    int budget = 0, threads = 0;
    const char *model = NULL, *text = NULL, *only = NULL;
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
        else if (!strcmp(a, "-m"))
            model = val;
        else if (!strcmp(a, "-f"))
            text = val;
        else if (!strcmp(a, "-p"))
            only = val;
        else if (!strcmp(a, "-T"))
            type = !strcmp(val, "f16") ? KV_TYPE_F16 : !strcmp(val, "f32") ? KV_TYPE_F32 : type;
        else {
            fprintf(stderr, "usage: bench-press [-L rows] [-b budget] [-r reps] [-t threads] "
                            "[-T int8|f16|f32] [-m model.gguf -f text.txt [-p press]]\n");
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
    if (rc == 0 && model)
        rc = bench_model(model, text ? text : "tests/data/text/perplexity-en.txt", b.L, budget,
                         only, &e);
    if (rc < 0)
        fprintf(stderr, "bench-press: %s\n", e.msg);
    kv_cache_free(&b.kv);
    free(b.k);
    free(b.v);
    free(b.q);
    free(b.w_o);
    return rc < 0 ? 1 : 0;
}
