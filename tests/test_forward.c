/* The forward pass on tiny random-weight llama models written with tests/gguf-writer.h.
 *
 * Model: vocab 64, n_embd 64, 2 layers, 4 query heads of 16 dims, 2 KV heads, n_ff 96. Checks:
 *   (a) fast kernels + dispatched matmul == reference kernels + matmul_ref (bounds below);
 *   (b) one prefill of n tokens == the same tokens decoded one at a time (every position);
 *   (c) int8 KV logits close to f32 KV logits;
 *   (d) GQA (2 KV heads) == MHA with the K/V weights of each group repeated per query head;
 *   (e) tied output head == an explicit output.weight holding the same matrix;
 * plus layer-major order and the compression hook, positions after eviction, chunked prefill,
 * and one-line errors for bad tokens, context overflow and bad model files. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adakv-ext.h"
#include "cpu.h"
#include "forward.h"
#include "gguf-writer.h"
#include "kv-cache.h"
#include "kv-compact.h"
#include "model.h"
#include "quant.h"
#include "tensor-type.h"

#define VOCAB  64
#define EMBD   64
#define LAYERS 2
#define HEADS  4
#define HD     16
#define FF     96

struct spec {
    int n_head_kv;     /* 2 (GQA) or 4 (MHA) */
    bool repeat_kv;    /* with n_head_kv 4: KV weights of head h = GQA head h/2 */
    bool tied;         /* no output.weight */
    bool explicit_out; /* output.weight = copy of token_embd */
    uint32_t type;     /* matrices: F32 or Q8_0 */
    const char *arch;
    bool bad_shape; /* attn_k of layer 1 one row short */
    bool norm_q8;   /* attn_norm of layer 0 stored as Q8_0 */
    const char *rope_scaling;
    const char *extra_tensor; /* an F32 [EMBD] tensor of this name added at the end */
    /* how load() multiplies prompt batches: the tests of the cache and attention logic compare
     * prefill with decode, so they keep the quantized matmul decode uses (QUANT, the zero value
     * of this spec is mapped to it); fast_equals_reference checks the oneDNN GEMMs */
    enum adakv_prefill_gemm gemm;
};

static uint64_t rng;
static float urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / (1ull << 23)) - 1.0);
}

static float *rand_mat(int rows, int cols, float amp) {
    float *m = malloc(sizeof(float) * rows * cols);
    for (int i = 0; i < rows * cols; i++)
        m[i] = amp * urand();
    return m;
}

/* Q8_0 as ggml stores it (d = max|x|/127 in f16, q = round(x/d)), for quantized test weights. */
static void *to_q8_0(const float *x, size_t n, size_t *bytes) {
    struct block_q8_0 *b = malloc(n / 32 * sizeof *b);
    for (size_t i = 0; i < n / 32; i++) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[i * 32 + j]));
        const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        b[i].d = quant_f32_to_f16(d);
        for (int j = 0; j < 32; j++)
            b[i].qs[j] = (int8_t)roundf(x[i * 32 + j] * id);
    }
    *bytes = n / 32 * sizeof *b;
    return b;
}

static void put(struct gw *w, const char *name, uint32_t type, int ne0, int ne1, const float *v) {
    uint64_t ne[2] = {(uint64_t)ne0, (uint64_t)ne1};
    const uint32_t nd = ne1 > 1 ? 2 : 1;
    if (type == TENSOR_TYPE_Q8_0) {
        size_t bytes;
        void *q = to_q8_0(v, (size_t)ne0 * ne1, &bytes);
        gw_tensor(w, name, type, nd, ne, q, bytes);
        free(q);
    } else {
        gw_tensor(w, name, TENSOR_TYPE_F32, nd, ne, v, sizeof(float) * ne0 * ne1);
    }
}

/* Writes the model to $ADAKV_BUILDDIR/<file>. Same seed => same weights, whatever the spec. */
static char *write_model(const char *file, const struct spec *s) {
    static char path[4096];
    const char *dir = getenv("ADAKV_BUILDDIR");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", file);
    rng = 0x1234567;
    struct gw *w = gw_new();
    gw_kv_str(w, "general.architecture", s->arch ? s->arch : "llama");
    gw_kv_str(w, "general.name", "tiny");
    gw_kv_u32(w, "llama.context_length", 2048);
    gw_kv_u32(w, "llama.embedding_length", EMBD);
    gw_kv_u32(w, "llama.block_count", LAYERS);
    gw_kv_u32(w, "llama.feed_forward_length", FF);
    gw_kv_u32(w, "llama.attention.head_count", HEADS);
    gw_kv_u32(w, "llama.attention.head_count_kv", (uint32_t)s->n_head_kv);
    gw_kv_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gw_kv_f32(w, "llama.rope.freq_base", 10000.0f);
    gw_kv_u32(w, "llama.vocab_size", VOCAB);
    if (s->rope_scaling)
        gw_kv_str(w, "llama.rope.scaling.type", s->rope_scaling);
    const uint32_t mt = s->type ? s->type : TENSOR_TYPE_F32;
    float *embd = rand_mat(VOCAB, EMBD, 1.0f);
    put(w, "token_embd.weight", mt, EMBD, VOCAB, embd);
    float *onorm = rand_mat(1, EMBD, 0.2f);
    for (int i = 0; i < EMBD; i++)
        onorm[i] += 1.0f;
    put(w, "output_norm.weight", TENSOR_TYPE_F32, EMBD, 1, onorm);
    if (s->explicit_out)
        put(w, "output.weight", mt, EMBD, VOCAB, embd);
    else if (!s->tied) {
        float *out = rand_mat(VOCAB, EMBD, 0.3f);
        put(w, "output.weight", mt, EMBD, VOCAB, out);
        free(out);
    }
    for (int il = 0; il < LAYERS; il++) {
        char name[64];
        float *an = rand_mat(1, EMBD, 0.2f), *fn = rand_mat(1, EMBD, 0.2f);
        for (int i = 0; i < EMBD; i++)
            an[i] += 1.0f, fn[i] += 1.0f;
        const float a = 1.0f / sqrtf(EMBD);
        float *wq = rand_mat(HEADS * HD, EMBD, 2.0f * a);
        float *wk = rand_mat(2 * HD, EMBD, 2.0f * a), *wv = rand_mat(2 * HD, EMBD, a);
        float *wo = rand_mat(EMBD, HEADS * HD, a), *wg = rand_mat(FF, EMBD, a);
        float *wu = rand_mat(FF, EMBD, a), *wd = rand_mat(EMBD, FF, 1.0f / sqrtf(FF));
        const int kv_rows = s->n_head_kv * HD;
        float *k = malloc(sizeof(float) * kv_rows * EMBD),
              *v = malloc(sizeof(float) * kv_rows * EMBD);
        for (int h = 0; h < s->n_head_kv; h++) { /* head h of this file <- generated head src */
            const int src = s->n_head_kv == 2 ? h : s->repeat_kv ? h / 2 : h % 2;
            memcpy(k + h * HD * EMBD, wk + src * HD * EMBD, sizeof(float) * HD * EMBD);
            memcpy(v + h * HD * EMBD, wv + src * HD * EMBD, sizeof(float) * HD * EMBD);
        }
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", il);
        put(w, name, s->norm_q8 && il == 0 ? TENSOR_TYPE_Q8_0 : TENSOR_TYPE_F32, EMBD, 1, an);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", il);
        put(w, name, mt, EMBD, HEADS * HD, wq);
        snprintf(name, sizeof name, "blk.%d.attn_k.weight", il);
        put(w, name, mt, EMBD, kv_rows - (s->bad_shape && il == 1 ? 1 : 0), k);
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", il);
        put(w, name, mt, EMBD, kv_rows, v);
        snprintf(name, sizeof name, "blk.%d.attn_output.weight", il);
        put(w, name, mt, HEADS * HD, EMBD, wo);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", il);
        put(w, name, TENSOR_TYPE_F32, EMBD, 1, fn);
        snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", il);
        put(w, name, mt, EMBD, FF, wg);
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", il);
        put(w, name, mt, EMBD, FF, wu);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", il);
        put(w, name, mt, FF, EMBD, wd);
        free(an), free(fn), free(wq), free(wk), free(wv), free(wo), free(wg), free(wu), free(wd);
        free(k), free(v);
    }
    if (s->extra_tensor) {
        float *x = rand_mat(1, EMBD, 1.0f);
        put(w, s->extra_tensor, TENSOR_TYPE_F32, EMBD, 1, x);
        free(x);
    }
    gw_write(w, path);
    gw_free(w);
    free(embd), free(onorm);
    return path;
}

static struct adakv_model *load(const char *file, const struct spec *s) {
    struct adakv_err e = {{0}};
    const struct adakv_model_params mp = {
        .prefill_gemm = s->gemm == ADAKV_PREFILL_GEMM_AUTO ? ADAKV_PREFILL_GEMM_QUANT : s->gemm};
    struct adakv_model *m = adakv_model_load(write_model(file, s), &mp, &e);
    cr_assert_not_null(m, "load %s: %s", file, e.msg);
    return m;
}

static struct adakv_ctx *ctx(struct adakv_model *m, enum adakv_kv_type kt, bool ref, int n_ctx) {
    struct adakv_ctx_params p;
    adakv_ctx_params_default(&p);
    p.n_ctx = n_ctx;
    p.kv_type = kt;
    p.reference = ref;
    struct adakv_err e = {{0}};
    struct adakv_ctx *c = adakv_ctx_new(m, &p, &e);
    cr_assert_not_null(c, "ctx: %s", e.msg);
    return c;
}

static void tokens_of(int32_t *t, int n, int seed) {
    for (int i = 0; i < n; i++)
        t[i] = (int32_t)((i * 37 + seed * 11 + (i * i) % 7) % VOCAB);
}

/* logits [n][VOCAB] of one prefill */
static float *prefill(struct adakv_ctx *c, const int32_t *t, int n) {
    float *l = malloc(sizeof(float) * n * VOCAB);
    struct adakv_err e = {{0}};
    cr_assert_eq(adakv_eval(c, t, n, l, true, &e), 0, "eval: %s", e.msg);
    return l;
}

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

static float max_abs(const float *a, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmaxf(m, fabsf(a[i]));
    return m;
}

static const struct spec base = {.n_head_kv = 2};

Test(forward, model_info_and_tied_binding) {
    struct adakv_model *m = load("fw-info.gguf", &(struct spec){.n_head_kv = 2, .tied = true});
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    cr_assert_str_eq(info.arch, "llama");
    cr_assert_str_eq(info.name, "tiny");
    cr_assert(info.n_vocab == VOCAB && info.n_layer == LAYERS && info.n_embd == EMBD);
    cr_assert(info.n_head == HEADS && info.n_head_kv == 2 && info.head_dim == HD &&
              info.n_ff == FF);
    cr_assert_str_eq(info.type_counts, "F32: 20");
    cr_assert(m->w.tied && m->w.output == m->w.token_embd);
    cr_assert_eq(m->hp.rope_pairing, ROPE_PAIRING_NORM); /* llama = adjacent pairs */
    cr_assert_null(adakv_model_tokenizer(m));
    cr_assert_not_null(adakv_model_gguf(m));
    adakv_model_free(m);
}

/* (a) Fast path vs reference path. F32 weights: only summation order differs (bound 1e-4 of
 * the logit range), also through oneDNN's f32 GEMM. Q8_0 weights: the fast matmul also quantizes
 * activations to Q8_0 like llama.cpp, the reference does not (bound 3% of the logit range); the
 * same bound covers oneDNN's bf16 GEMM, whose weights and activations keep 8 significant bits.
 * An int8 cache read by the VNNI attention kernels also rounds queries and attention weights to
 * int16 (2^-16 of each row's largest value, attn-qk-vnni.c): measured 2.1e-4 of the logit range
 * with F32 weights on this random model, so int8 gets at least 5e-4. */
Test(forward, fast_equals_reference) {
    static const struct {
        uint32_t type;
        enum adakv_prefill_gemm gemm;
        float bound;
    } cases[] = {
        {TENSOR_TYPE_F32, ADAKV_PREFILL_GEMM_QUANT, 1e-4f},
        {TENSOR_TYPE_Q8_0, ADAKV_PREFILL_GEMM_QUANT, 3e-2f},
        {TENSOR_TYPE_F32, ADAKV_PREFILL_GEMM_F32, 1e-4f},
        {TENSOR_TYPE_F32, ADAKV_PREFILL_GEMM_BF16, 3e-2f},
        {TENSOR_TYPE_Q8_0, ADAKV_PREFILL_GEMM_BF16, 3e-2f},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        struct spec s = base;
        s.type = cases[ci].type;
        s.gemm = cases[ci].gemm;
        if (s.gemm == ADAKV_PREFILL_GEMM_BF16 && simd_isa() != SIMD_ISA_AVX512) {
            /* oneDNN's bf16 GEMMs need AVX-512: the load must say so in one line */
            struct adakv_err e = {{0}};
            const struct adakv_model_params mp = {.prefill_gemm = s.gemm};
            cr_assert_null(adakv_model_load(write_model("fw-fast-bf16.gguf", &s), &mp, &e));
            cr_assert(strstr(e.msg, "--prefill-gemm bf16 needs AVX-512"), "%s", e.msg);
            cr_log_info("bf16 prompt GEMMs refused on %s: %s", simd_isa_name(simd_isa()), e.msg);
            continue;
        }
        struct adakv_model *m = load("fw-fast.gguf", &s);
        struct adakv_model_info info;
        adakv_model_get_info(m, &info);
        for (int kt = 0; kt < 3; kt++) {
            int32_t t[48]; /* >= PREFILL_GEMM_MIN_ROWS: the prompt GEMM path runs */
            tokens_of(t, 48, 1);
            struct adakv_ctx *cf = ctx(m, (enum adakv_kv_type)kt, false, 128);
            struct adakv_ctx *cr = ctx(m, (enum adakv_kv_type)kt, true, 128);
            float *lf = prefill(cf, t, 48), *lr = prefill(cr, t, 48);
            const float d = max_abs_diff(lf, lr, 48 * VOCAB), r = max_abs(lr, 48 * VOCAB);
            cr_log_info("fast vs reference, %s weights, prompt GEMMs %s, kv %d: max |diff| %.3g "
                        "of range %.3g",
                        tensor_type_name(s.type), info.prefill_gemm, kt, (double)d, (double)r);
            const float bound =
                kt == ADAKV_KV_INT8 ? fmaxf(cases[ci].bound, 5e-4f) : cases[ci].bound;
            cr_assert(d <= bound * r, "%s, %s, kv %d: fast vs reference %g (range %g)",
                      tensor_type_name(s.type), info.prefill_gemm, kt, (double)d, (double)r);
            free(lf), free(lr);
            adakv_ctx_free(cf), adakv_ctx_free(cr);
        }
        adakv_model_free(m);
    }
}

/* (b) Prefill == decode one token at a time, at every position, for every KV type, for both
 * kernel paths. Both paths read the same stored rows; only the key tiling of the online softmax
 * differs (FORWARD_ATTN_KTILE vs FORWARD_ATTN_KTILE_DECODE), so the bound is float rounding:
 * 1e-5 of the logit range. The VNNI int8 kernels round each tile's attention weights to int16
 * against the tile's largest (attn-av-vnni.c), so other tiles round differently: measured 1.0e-4
 * of the range on this random model, bound 5e-4 for the fast int8 path. The AVX2 f16/f32 kernels
 * (attn-qk-avx2.c, attn-av-avx2.c) sum 8 lanes per dim group and walk the values in L1-sized key
 * chunks, orders that depend on the tile a call gets: measured 1.8e-5 of the range after 589
 * tokens with f16 rows (8.5e-7 with the scalar weighted sum, 2.0e-6 with the scalar scores), so
 * the fast f16/f32 paths get 5e-5; the reference path stays at 1e-5. */
static void check_prefill_vs_decode(const char *file, int n, int n_ctx) {
    /* each test writes its own file: Criterion runs tests in parallel processes, and rewriting
     * a file another process has mapped would pull the bytes from under it */
    struct adakv_model *m = load(file, &base);
    int32_t *t = malloc(sizeof *t * n);
    tokens_of(t, n, 2);
    for (int kt = 0; kt < 3; kt++) {
        for (int ref = 0; ref <= 1; ref++) {
            struct adakv_ctx *cp = ctx(m, (enum adakv_kv_type)kt, ref, n_ctx);
            struct adakv_ctx *cd = ctx(m, (enum adakv_kv_type)kt, ref, n_ctx);
            float *lp = prefill(cp, t, n), *ld = malloc(sizeof(float) * n * VOCAB);
            struct adakv_err e = {{0}};
            for (int i = 0; i < n; i++)
                cr_assert_eq(adakv_eval(cd, t + i, 1, ld + i * VOCAB, false, &e), 0, "%s", e.msg);
            cr_assert_eq(adakv_ctx_n_past(cd), n);
            const float d = max_abs_diff(lp, ld, (size_t)n * VOCAB),
                        r = max_abs(lp, (size_t)n * VOCAB);
            cr_log_info("prefill vs decode n %d kv %d ref %d: %.3g of range %.3g", n, kt, ref,
                        (double)d, (double)r);
            const float bound = ref ? 1e-5f : kt == ADAKV_KV_INT8 ? 5e-4f : 5e-5f;
            cr_assert(d <= bound * r, "n %d kv %d ref %d: prefill vs decode %g (range %g)", n, kt,
                      ref, (double)d, (double)r);
            free(lp), free(ld);
            adakv_ctx_free(cp), adakv_ctx_free(cd);
        }
    }
    free(t);
    adakv_model_free(m);
}

Test(forward, prefill_equals_decode) {
    check_prefill_vs_decode("fw-pd.gguf", 70, 128);
}

/* More tokens than one prefill chunk (FORWARD_CHUNK = 512): still layer-major and causal. */
Test(forward, prefill_in_chunks_equals_decode, .timeout = 120) {
    check_prefill_vs_decode("fw-pd-chunks.gguf", FORWARD_CHUNK + 77, 1024);
}

/* (c) int8 KV vs f32 KV. int8 rows carry a relative error of at most 1/254 of the row's max;
 * through two layers of this model that moves logits by well under 2% of their range. */
Test(forward, int8_close_to_f32) {
    struct adakv_model *m = load("fw-i8.gguf", &base);
    int32_t t[96];
    tokens_of(t, 96, 3);
    struct adakv_ctx *c8 = ctx(m, ADAKV_KV_INT8, false, 128);
    struct adakv_ctx *c32 = ctx(m, ADAKV_KV_F32, false, 128);
    float *l8 = prefill(c8, t, 96), *l32 = prefill(c32, t, 96);
    const float d = max_abs_diff(l8, l32, 96 * VOCAB), r = max_abs(l32, 96 * VOCAB);
    cr_log_info("int8 vs f32 KV: max |diff| %.3g of range %.3g", (double)d, (double)r);
    cr_assert(d <= 0.02f * r, "int8 vs f32 KV: %g (range %g)", (double)d, (double)r);
    cr_assert(d > 0.0f, "int8 storage must actually differ from f32");
    cr_assert(adakv_ctx_kv_bytes(c8) < adakv_ctx_kv_bytes(c32) / 3);
    free(l8), free(l32);
    adakv_ctx_free(c8), adakv_ctx_free(c32);
    adakv_model_free(m);
}

/* (d) GQA: 2 KV heads shared by 4 query heads == 4 KV heads holding copies (head h = h/2):
 * to float rounding, int8 included (a copied key row rotates and rounds to the same bytes). */
Test(forward, gqa_equals_repeated_kv) {
    struct adakv_model *mg = load("fw-gqa.gguf", &base);
    struct adakv_model *mm = load("fw-mha.gguf", &(struct spec){.n_head_kv = 4, .repeat_kv = true});
    int32_t t[40];
    tokens_of(t, 40, 4);
    for (int kt = 0; kt < 3; kt++) {
        struct adakv_ctx *cg = ctx(mg, (enum adakv_kv_type)kt, false, 64);
        struct adakv_ctx *cm = ctx(mm, (enum adakv_kv_type)kt, false, 64);
        float *lg = prefill(cg, t, 40), *lm = prefill(cm, t, 40);
        const float d = max_abs_diff(lg, lm, 40 * VOCAB);
        cr_log_info("GQA vs repeated K/V, kv %d: %.3g", kt, (double)d);
        cr_assert(d <= 1e-5f * max_abs(lg, 40 * VOCAB), "kv %d: GQA vs repeated %g", kt, (double)d);
        cr_assert_eq(adakv_ctx_kv_bytes(cm), 2 * adakv_ctx_kv_bytes(cg)); /* GQA stores half */
        free(lg), free(lm);
        adakv_ctx_free(cg), adakv_ctx_free(cm);
    }
    /* and a different KV layout does change the result (the test can fail) */
    struct adakv_model *mx = load("fw-mhx.gguf", &(struct spec){.n_head_kv = 4});
    struct adakv_ctx *cg = ctx(mg, ADAKV_KV_F32, false, 64), *cx = ctx(mx, ADAKV_KV_F32, false, 64);
    float *lg = prefill(cg, t, 40), *lx = prefill(cx, t, 40);
    cr_assert(max_abs_diff(lg, lx, 40 * VOCAB) > 1e-3f);
    free(lg), free(lx);
    adakv_ctx_free(cg), adakv_ctx_free(cx);
    adakv_model_free(mx);
    adakv_model_free(mg), adakv_model_free(mm);
}

/* (e) Tied head == explicit output.weight with the same matrix, bit for bit; a different
 * output matrix gives different logits. */
Test(forward, tied_equals_explicit_head) {
    struct adakv_model *mt = load("fw-tied.gguf", &(struct spec){.n_head_kv = 2, .tied = true});
    struct adakv_model *me =
        load("fw-expl.gguf", &(struct spec){.n_head_kv = 2, .explicit_out = true});
    struct adakv_model *ms = load("fw-sep.gguf", &base);
    cr_assert(mt->w.tied && !me->w.tied && !ms->w.tied);
    int32_t t[20];
    tokens_of(t, 20, 5);
    struct adakv_ctx *ct = ctx(mt, ADAKV_KV_INT8, false, 32),
                     *ce = ctx(me, ADAKV_KV_INT8, false, 32);
    struct adakv_ctx *cs = ctx(ms, ADAKV_KV_INT8, false, 32);
    float *lt = prefill(ct, t, 20), *le = prefill(ce, t, 20), *ls = prefill(cs, t, 20);
    cr_assert(memcmp(lt, le, sizeof(float) * 20 * VOCAB) == 0);
    cr_assert(max_abs_diff(lt, ls, 20 * VOCAB) > 1e-2f);
    free(lt), free(le), free(ls);
    adakv_ctx_free(ct), adakv_ctx_free(ce), adakv_ctx_free(cs);
    adakv_model_free(mt), adakv_model_free(me), adakv_model_free(ms);
}

/* ---- compression hook: layer-major order, window, eviction, positions ---- */

struct hook_log {
    int calls;
    int layers[LAYERS];
    int n_window;
    bool later_layer_empty; /* layer l+1 had no rows when layer l was compressed */
    size_t rows_seen;
    float q0;
};

static int evict_odd_rows(void *user, struct kv_cache *kv, int layer, const float *q_window,
                          int n_window, struct adakv_err *e) {
    struct hook_log *h = user;
    h->layers[h->calls++] = layer;
    h->n_window = n_window;
    h->rows_seen = kv_cache_layer_rows(kv, layer);
    h->q0 = q_window[0];
    h->later_layer_empty = layer + 1 >= kv->n_layer || kv_cache_layer_rows(kv, layer + 1) == 0;
    for (int g = 0; g < kv->n_head_kv; g++) { /* keep even rows: positions 0, 2, 4, ... */
        struct kv_segment *s = kv_cache_seg(kv, layer, g);
        int32_t keep[256];
        int n = 0;
        for (int32_t r = 0; r < s->len; r += 2)
            keep[n++] = r;
        if (kv_segment_compact(s, kv->type, kv->head_dim, keep, n, 8, e))
            return -1;
    }
    return 0;
}

Test(forward, compress_hook_runs_per_layer_and_positions_continue) {
    struct adakv_model *m = load("fw-hook.gguf", &base);
    struct hook_log log = {0};
    struct adakv_ctx_params p;
    adakv_ctx_params_default(&p);
    p.n_ctx = 128;
    struct adakv_err e = {{0}};
    struct adakv_ctx *c = adakv_ctx_new(m, &p, &e);
    cr_assert_not_null(c, "%s", e.msg);
    adakv_ctx_set_compress(c, evict_odd_rows, &log);
    int32_t t[50];
    tokens_of(t, 50, 6);
    float *l = malloc(sizeof(float) * VOCAB);
    cr_assert_eq(adakv_eval(c, t, 50, l, false, &e), 0, "%s", e.msg);
    cr_assert_eq(log.calls, LAYERS);
    cr_assert(log.layers[0] == 0 && log.layers[1] == 1);
    cr_assert_eq(log.n_window, FORWARD_WINDOW_DEFAULT);
    cr_assert_eq(log.rows_seen, 50 * 2); /* all 50 tokens x 2 KV heads before eviction */
    cr_assert(log.later_layer_empty, "layer-major: later layers run after compression");
    struct kv_segment *s = kv_cache_seg(adakv_ctx_kv(c), 1, 1);
    cr_assert_eq(s->len, 25);
    cr_assert_eq(s->pos[24], 48);
    /* decode: the new token takes position 50 (not 25), no hook call */
    cr_assert_eq(adakv_eval(c, t, 1, l, false, &e), 0, "%s", e.msg);
    cr_assert_eq(log.calls, LAYERS);
    cr_assert_eq(s->len, 26);
    cr_assert_eq(s->pos[25], 50);
    cr_assert_eq(adakv_ctx_n_past(c), 51);
    for (int i = 0; i < VOCAB; i++)
        cr_assert(isfinite(l[i]));
    /* a second prefill (question on a compressed context) with the hook switched off */
    adakv_ctx_set_compress(c, NULL, NULL);
    cr_assert_eq(adakv_eval(c, t, 5, l, false, &e), 0, "%s", e.msg);
    cr_assert_eq(s->len, 31);
    cr_assert_eq(s->pos[30], 55);
    adakv_ctx_reset(c);
    cr_assert_eq(adakv_ctx_n_past(c), 0);
    cr_assert_eq(s->len, 0);
    free(l);
    adakv_ctx_free(c);
    adakv_model_free(m);
}

/* ---- errors: one line, no crash ---- */

Test(forward, eval_errors) {
    struct adakv_model *m = load("fw-err.gguf", &base);
    struct adakv_ctx *c = ctx(m, ADAKV_KV_INT8, false, 16);
    struct adakv_err e = {{0}};
    int32_t t[20];
    tokens_of(t, 20, 7);
    cr_assert_eq(adakv_eval(c, t, 17, NULL, false, &e), -1);
    cr_assert(strstr(e.msg, "do not fit in the context"), "%s", e.msg);
    int32_t bad[2] = {3, VOCAB};
    cr_assert_eq(adakv_eval(c, bad, 2, NULL, false, &e), -1);
    cr_assert(strstr(e.msg, "outside the vocabulary"), "%s", e.msg);
    cr_assert_eq(adakv_eval(c, t, 0, NULL, false, &e), -1);
    cr_assert_eq(adakv_ctx_n_past(c), 0);
    cr_assert_eq(adakv_eval(c, t, 16, NULL, false, &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_eval(c, t, 1, NULL, false, &e), -1);
    struct adakv_ctx_params p;
    adakv_ctx_params_default(&p);
    p.n_ctx = 0;
    cr_assert_null(adakv_ctx_new(m, &p, &e));
    cr_assert(strstr(e.msg, "n_ctx"), "%s", e.msg);
    adakv_ctx_free(c);
    adakv_model_free(m);
}

static void expect_load_error(const char *file, const struct spec *s, const char *want) {
    struct adakv_err e = {{0}};
    const struct adakv_model_params mp = {
        .prefill_gemm = s->gemm == ADAKV_PREFILL_GEMM_AUTO ? ADAKV_PREFILL_GEMM_QUANT : s->gemm};
    struct adakv_model *m = adakv_model_load(write_model(file, s), &mp, &e);
    cr_assert_null(m, "%s should not load", file);
    cr_assert(strstr(e.msg, want), "%s: got '%s', want '%s'", file, e.msg, want);
    cr_assert_null(strchr(e.msg, '\n'));
}

Test(forward, model_load_errors) {
    expect_load_error("fw-arch.gguf", &(struct spec){.n_head_kv = 2, .arch = "xyz"},
                      "unknown architecture 'xyz' (supported: llama, qwen2, qwen3, gemma3)");
    expect_load_error("fw-shape.gguf", &(struct spec){.n_head_kv = 2, .bad_shape = true},
                      "tensor 'blk.1.attn_k.weight' has shape [64, 31], expected [64, 32]");
    expect_load_error("fw-type.gguf", &(struct spec){.n_head_kv = 2, .norm_q8 = true},
                      "tensor 'blk.0.attn_norm.weight' has type Q8_0, expected F32");
    expect_load_error("fw-longrope.gguf",
                      &(struct spec){.n_head_kv = 2, .rope_scaling = "longrope"},
                      "llama.rope.scaling.type 'longrope' is not supported");
    expect_load_error("fw-gqa3.gguf", &(struct spec){.n_head_kv = 3}, "not a multiple");
    /* a tensor this arch does not use is refused, never skipped (a qwen2 bias in a llama file) */
    expect_load_error("fw-bias.gguf",
                      &(struct spec){.n_head_kv = 2, .extra_tensor = "blk.0.attn_q.bias"},
                      "tensor 'blk.0.attn_q.bias' is not part of the llama architecture");
    /* gemma3's post-norms in a llama file: refused as well, not silently left out */
    expect_load_error("fw-postnorm.gguf",
                      &(struct spec){.n_head_kv = 2, .extra_tensor = "blk.0.post_ffw_norm.weight"},
                      "tensor 'blk.0.post_ffw_norm.weight' is not part of the llama architecture");
    expect_load_error("fw-outb.gguf", &(struct spec){.n_head_kv = 2, .extra_tensor = "output.bias"},
                      "'output.bias' (a biased LM head) is not supported");
    /* keys are read under the file's own arch: a qwen2 file with llama.* keys lacks them */
    expect_load_error("fw-qwen.gguf", &(struct spec){.n_head_kv = 2, .arch = "qwen2"},
                      "missing metadata key 'qwen2.embedding_length'");
    struct adakv_err e = {{0}};
    cr_assert_null(adakv_model_load("/nonexistent/model.gguf", NULL, &e));
    cr_assert(strstr(e.msg, "/nonexistent/model.gguf"), "%s", e.msg);
}
