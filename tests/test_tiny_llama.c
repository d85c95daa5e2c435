/* adakv against llama.cpp on the tiny random Llama-3-shaped model (tests/tiny-llama.h): the
 * weight types, head_dim 128, GQA 4, RoPE factors, untied head and SentencePiece vocabulary the
 * default model does not have; and on its Qwen2 (Q/K/V biases), Qwen3 (per-head Q/K norms) and
 * Qwen2 + YaRN variants, with NEOX RoPE; and on its Gemma 3 variant (post-norms, GEGLU, sliding
 * windows of 48 positions on two of its three layers, per-layer RoPE, soft-capped logits).
 * Golden logits: tools/golden/make-tiny-logits.py. Also: decoding token by token gives the
 * prefill's logits on each of them, and the sliding-window layers give the same logits whatever
 * the pieces the tokens come in, while holding a bounded number of rows. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adakv-ext.h"
#include "golden-logits.h"
#include "kv-cache.h"
#include "test-env.h"
#include "tiny-llama.h"

/* Logits of n golden tokens, one prefill (all logits) or n single-token decode steps. */
static float *logits_of(struct adakv_model *m, const int32_t *tok, int n, bool decode,
                        enum adakv_kv_type kv, bool reference) {
    struct adakv_err e = {{0}};
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = 256;
    cp.kv_type = kv;
    cp.reference = reference;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
    cr_assert(c, "%s", e.msg);
    float *l = malloc((size_t)n * TINY_LLAMA_VOCAB * sizeof *l);
    cr_assert(l);
    if (!decode)
        cr_assert_eq(adakv_eval(c, tok, n, l, true, &e), 0, "%s", e.msg);
    for (int i = 0; decode && i < n; i++)
        cr_assert_eq(adakv_eval(c, tok + i, 1, l + (size_t)i * TINY_LLAMA_VOCAB, false, &e), 0,
                     "%s", e.msg);
    adakv_ctx_free(c);
    return l;
}

/* Writes variant `arch` to the build tree (one file per test: tests run in parallel processes)
 * and loads it; *golden gets its golden logits. The caller removes `model`. */
static struct adakv_model *load_variant(const char *arch, const char *label,
                                        enum adakv_prefill_gemm gemm, char *model, size_t cap,
                                        struct golden *golden) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/golden/logits-tiny-%s.bin", env("ADAKV_SRCDIR"),
             arch);
    golden_read(golden, path);
    cr_assert_eq(golden->n_vocab, TINY_LLAMA_VOCAB);
    snprintf(model, cap, "%s/tests/tiny-%s-%s.gguf", env("ADAKV_BUILDDIR"), arch, label);
    cr_assert_eq(tiny_llama_write(model, arch), 0);
    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {.prefill_gemm = gemm};
    struct adakv_model *m = adakv_model_load(model, &mp, &e);
    cr_assert(m, "%s", e.msg);
    return m;
}

/* Teacher-forced logits of the golden tokens in one context, compared with llama.cpp's. */
static struct agreement run(const char *arch, enum adakv_kv_type kv, enum adakv_prefill_gemm gemm,
                            bool reference, const char *label) {
    char model[1024];
    struct golden g;
    struct adakv_model *m = load_variant(arch, label, gemm, model, sizeof model, &g);
    float *logits = logits_of(m, g.tokens, (int)g.n_pos, false, kv, reference);
    struct agreement a = compare(&g, logits, TINY_LLAMA_VOCAB);
    fprintf(stderr,
            "tiny %s vs llama.cpp, %s, %u positions: mean KL %.2e, max KL %.2e, top-1 %.2f%%\n",
            arch, label, g.n_pos, a.mean_kl, a.max_kl, 100.0 * a.top1);
    free(logits);
    golden_free(&g);
    adakv_model_free(m);
    remove(model);
    return a;
}

/* the variants of tests/tiny-llama.h, each with its golden file */
static const char *const archs[] = {"llama", "qwen2", "qwen3", "qwen2-yarn", "gemma3"};
#define N_ARCHS 5

/* Bounds. llama.cpp moves this far from its own golden file: flash attention on, mean KL 7.6e-4
 * and top-1 97.9%; the same source built for AVX2, 1.1e-4 and 99.5% (tests/data/golden/
 * README.md). A wrong detail moves the mean KL far more: ignoring the RoPE factor table alone
 * (which at these short positions touches only the slowest frequencies) gives 1.5e-2 and fails
 * all three tests. The bounds sit a little above llama.cpp's own spread. */

/* llama.cpp's arithmetic where it matters most: 8-bit activations before every quantized
 * matmul (Q8_0, Q8_1, Q8_K as llama.cpp picks them) and an f16 cache. Measured: mean KL
 * 7.8e-4, top-1 97.9%. */
Test(tiny_llama, quantized_matmul_f16_kv_matches_llama_cpp) {
    for (int i = 0; i < N_ARCHS; i++) {
        struct agreement a = run(archs[i], ADAKV_KV_F16, ADAKV_PREFILL_GEMM_QUANT, false, "quant");
        cr_expect_leq(a.mean_kl, 2e-3, "%s: mean KL %.2e", archs[i], a.mean_kl);
        cr_expect_geq(a.top1, 0.96, "%s: top-1 %.4f", archs[i], a.top1);
    }
}

/* The plain C kernels (scalar reference matmul, exact f32 activations, f32 cache): no
 * activation rounding at all, so a little further from llama.cpp. Measured mean KL 6.9e-4 to
 * 1.5e-3, top-1 95.3% to 97.9% (qwen3's flatter logits: mean top-1 probability 0.28). */
Test(tiny_llama, plain_c_reference_matches_llama_cpp) {
    if (getenv("ADAKV_TEST_LIGHT")) /* sanitizer pass and qemu: the plain C path is the same */
        cr_skip_test("ADAKV_TEST_LIGHT: plain C comparison left to the optimised native pass");
    for (int i = 0; i < N_ARCHS; i++) {
        struct agreement a = run(archs[i], ADAKV_KV_F32, ADAKV_PREFILL_GEMM_QUANT, true, "ref");
        cr_expect_leq(a.mean_kl, 3e-3, "%s: mean KL %.2e", archs[i], a.mean_kl);
        cr_expect_geq(a.top1, 0.93, "%s: top-1 %.4f", archs[i], a.top1);
    }
}

/* What a user runs: int8 cache, prompt GEMMs in oneDNN (bf16 where the CPU has it, which rounds
 * weights and activations to 8 significant bits). The foundation issue's KL bound. Measured
 * 3.5e-3, 95.3%. */
Test(tiny_llama, default_settings_match_llama_cpp) {
    for (int i = 0; i < N_ARCHS; i++) {
        struct agreement a =
            run(archs[i], ADAKV_KV_INT8, ADAKV_PREFILL_GEMM_AUTO, false, "default");
        cr_expect_leq(a.mean_kl, 1e-2, "%s: mean KL %.2e", archs[i], a.mean_kl);
        cr_expect_geq(a.top1, 0.93, "%s: top-1 %.4f", archs[i], a.top1);
    }
}

/* Decode (one token at a time: the single-row matmuls, biases and head norms of m = 1, decode
 * attention) gives the prefill's logits at every position, for each arch. */
Test(tiny_llama, decode_equals_prefill) {
    for (int i = 0; i < N_ARCHS; i++) {
        char model[1024];
        struct golden g;
        struct adakv_model *m =
            load_variant(archs[i], "pd", ADAKV_PREFILL_GEMM_QUANT, model, sizeof model, &g);
        enum { N = 40 };
        for (int ref = 0; ref <= (getenv("ADAKV_TEST_LIGHT") ? 0 : 1); ref++) {
            float *lp = logits_of(m, g.tokens, N, false, ADAKV_KV_F32, ref);
            float *ld = logits_of(m, g.tokens, N, true, ADAKV_KV_F32, ref);
            float d = 0, r = 0;
            for (int j = 0; j < N * TINY_LLAMA_VOCAB; j++) {
                d = fmaxf(d, fabsf(lp[j] - ld[j]));
                r = fmaxf(r, fabsf(lp[j]));
            }
            fprintf(stderr, "tiny %s prefill vs decode, %s: max |diff| %.3g of range %.3g\n",
                    archs[i], ref ? "reference" : "fast", (double)d, (double)r);
            /* reference: the same f32 arithmetic in the same order (measured: identical). Fast:
             * the prompt GEMM and the decode GEMV sum in different orders, and a last-bit
             * difference can move an 8-bit activation across a rounding boundary (measured at
             * most 3.5e-3 of the range; a missing bias or head norm moves logits by units). */
            const float bound = ref ? 1e-5f : 1e-2f;
            cr_expect_leq(d, bound * r, "%s %s: prefill vs decode %g of range %g", archs[i],
                          ref ? "reference" : "fast", (double)d, (double)r);
            free(lp), free(ld);
        }
        adakv_model_free(m);
        golden_free(&g);
        remove(model);
    }
}

/* Logits of the n golden tokens fed in pieces of `piece` tokens (piece = n: one prefill, 1:
 * decode), plain C kernels and an f32 cache; *max_rows gets the most rows a sliding-window layer
 * (layers 0 and 1 of the gemma3 variant) held after any piece. The context is returned. */
static struct adakv_ctx *gemma3_pieces(struct adakv_model *m, const int32_t *tok, int n, int piece,
                                       float *logits, int *max_rows) {
    struct adakv_err e = {{0}};
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = 256;
    cp.kv_type = ADAKV_KV_F32;
    cp.reference = true;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
    cr_assert(c, "%s", e.msg);
    *max_rows = 0;
    for (int i = 0; i < n; i += piece) {
        const int k = n - i < piece ? n - i : piece;
        cr_assert_eq(adakv_eval(c, tok + i, k, logits + (size_t)i * TINY_LLAMA_VOCAB, true, &e), 0,
                     "%s", e.msg);
        for (int il = 0; il < 2; il++) {
            const int len = kv_cache_seg(adakv_ctx_kv(c), il, 0)->len;
            *max_rows = len > *max_rows ? len : *max_rows;
        }
    }
    cr_assert_eq(kv_cache_seg(adakv_ctx_kv(c), 2, 0)->len, n, "the global layer keeps every row");
    return c;
}

/* The sliding-window layers over 192 positions, 4 windows: one prefill (the mask alone), pieces
 * of 37 tokens (the mask across pieces, rows dropped between them) and token by token (rows
 * dropped every window, decode attention) give the same logits; the golden comparison above
 * judges them against llama.cpp. Before each append a sliding layer keeps at most W - 1 rows of
 * the window plus fewer than W rows it may drop, so it never holds more than 2W - 2 + piece
 * rows. A rewind that needs rows already dropped is refused in one line; a short one works and
 * recomputes the same logits. */
Test(tiny_llama, gemma3_sliding_window_pieces) {
    char model[1024];
    struct golden g;
    struct adakv_model *m =
        load_variant("gemma3", "swa", ADAKV_PREFILL_GEMM_QUANT, model, sizeof model, &g);
    const int n = (int)g.n_pos, W = TINY_GEMMA3_WINDOW;
    cr_assert_geq(n, 4 * W);
    const size_t sz = (size_t)n * TINY_LLAMA_VOCAB;
    float *one = malloc(sz * sizeof *one), *l = malloc(sz * sizeof *l);
    cr_assert(one && l);
    int rows;
    adakv_ctx_free(gemma3_pieces(m, g.tokens, n, n, one, &rows));
    cr_expect_eq(rows, n, "one chunk of %d tokens drops nothing before it", n);
    float r = 0;
    for (size_t j = 0; j < sz; j++)
        r = fmaxf(r, fabsf(one[j]));
    const int pieces[] = {37, 1};
    for (int p = 0; p < 2; p++) {
        struct adakv_ctx *c = gemma3_pieces(m, g.tokens, n, pieces[p], l, &rows);
        float d = 0;
        for (size_t j = 0; j < sz; j++)
            d = fmaxf(d, fabsf(one[j] - l[j]));
        fprintf(stderr,
                "tiny gemma3 in pieces of %d vs one prefill: max |diff| %.3g of range %.3g, "
                "sliding layers held at most %d rows\n",
                pieces[p], (double)d, (double)r, rows);
        /* the same f32 arithmetic; only the key tiles of the online softmax start elsewhere */
        cr_expect_leq(d, 1e-5f * r, "pieces of %d: %g of range %g", pieces[p], (double)d,
                      (double)r);
        cr_expect_leq(rows, 2 * W - 2 + pieces[p], "pieces of %d: %d rows", pieces[p], rows);
        cr_expect_geq(rows, W, "pieces of %d: the window itself is kept", pieces[p]);
        if (pieces[p] == 1) {
            struct adakv_err e = {{0}};
            cr_expect_eq(adakv_ctx_rewind(c, n - 2 * W, &e), -1);
            cr_expect(strstr(e.msg, "sliding-window layer 0") && !strchr(e.msg, '\n'), "%s", e.msg);
            cr_assert_eq(adakv_ctx_rewind(c, n - 1, &e), 0, "%s", e.msg);
            float *last = malloc(TINY_LLAMA_VOCAB * sizeof *last);
            cr_assert(last);
            cr_assert_eq(adakv_eval(c, g.tokens + n - 1, 1, last, false, &e), 0, "%s", e.msg);
            cr_expect_arr_eq(last, l + (size_t)(n - 1) * TINY_LLAMA_VOCAB,
                             TINY_LLAMA_VOCAB * sizeof *last, "rewound by one, same logits");
            free(last);
        }
        adakv_ctx_free(c);
    }
    free(one), free(l);
    adakv_model_free(m);
    golden_free(&g);
    remove(model);
}
