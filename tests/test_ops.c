/* Every forward-pass kernel of every ISA table against its plain C reference (simd/ops.h).
 *
 * Inputs come from a seeded RNG; lengths sweep 1..200 (tails of every size below, at and above
 * the 8- and 16-lane vector widths) plus a few head sizes; pointers are offset by one float so
 * nothing relies on alignment; extremes (zeros, huge and tiny magnitudes, -inf in softmax, int8
 * +-127, rows as long as the KV cache allows) get their own cases. Tolerances, and why:
 *   quant_row_i8   bit-exact (same multiply, same round-to-nearest-even, same clamp);
 *   rmsnorm        2e-6 relative (f32 vector sum vs the reference's double sum);
 *   rope           2 ulp-ish: 1e-6 * |row| (fused multiply-add vs separate mul/sub);
 *   exp_sum/softmax/swiglu  4e-7 .. 2e-6 relative (sleef expf is 1 ulp, libm expf 0.5 ulp);
 *   geglu          4e-6 relative plus 2e-7 |gate * up| absolute (both tanhf 1 ulp; for very
 *                  negative gates 1 + tanh cancels, leaving an absolute error of ulp(1) / 2);
 *   hadamard       bit-exact (the same butterflies in the same order, ops.h);
 *   attn qk/av     1e-5 of the sum of |terms| (f32 FMA chains vs double accumulation), plus for
 *                  the int8 kernels that multiply in int16 (AVX-512 VNNI, AVX2) the int16
 *                  rounding of queries and weights (below).
 * A failure names the ISA, the op, the length and the first bad index. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ops.h"
#include "test-rng.h"

static void fill(float *x, int n, float amp) {
    for (int i = 0; i < n; i++)
        x[i] = amp * rng_uniform();
}

static float *alloc_f(size_t n) { /* +1 offset: kernels must not assume alignment */
    float *p = calloc(n + 17, sizeof(float));
    cr_assert_not_null(p);
    return p + 1;
}
static void free_f(float *p) {
    free(p - 1);
}

/* Runs `body` for every table simd/kernels.h's lists give this machine (each ISA as this CPU
 * gets it and as a CPU with the bare ISA level gets it), so a kernel in a list is tested. */
#define FOR_EACH_ISA(ops)                                                                          \
    for (int isa_i_ = 0; simd_ops_variant(isa_i_); isa_i_++)                                       \
        for (const struct simd_ops *ops = simd_ops_variant(isa_i_); ops; ops = NULL)

static void expect_close(const char *isa, const char *op, int n, const float *got,
                         const float *want, int len, float rel, float abs_tol) {
    for (int i = 0; i < len; i++) {
        const float tol = rel * fabsf(want[i]) + abs_tol;
        if (!(fabsf(got[i] - want[i]) <= tol) && !(got[i] == want[i]))
            cr_assert_fail("%s %s n=%d: index %d got %.9g want %.9g (tol %.3g)", isa, op, n, i,
                           (double)got[i], (double)want[i], (double)tol);
    }
}

Test(ops, tables_are_complete) {
    const struct simd_ops *t[] = {simd_ops_scalar(), simd_ops_best(), simd_ops_by_name("avx512"),
                                  simd_ops_by_name("avx2"), simd_ops_by_name("neon")};
#ifdef __aarch64__
    cr_assert_not_null(t[4], "no NEON table on AArch64: the NEON kernels would go untested");
#endif
    for (int i = 0; i < 5; i++) {
        if (!t[i])
            continue;
        cr_assert(t[i]->rmsnorm && t[i]->rope && t[i]->max && t[i]->exp_sum && t[i]->softmax &&
                  t[i]->swiglu && t[i]->geglu);
        cr_assert(t[i]->quant_row_i8 && t[i]->attn_qk_i8 && t[i]->attn_qk_f16 && t[i]->attn_qk_f32);
        cr_assert(t[i]->attn_av_i8 && t[i]->attn_av_f16 && t[i]->attn_av_f32);
        cr_assert(t[i]->hadamard);
    }
    cr_assert_str_eq(simd_ops_scalar()->isa, "scalar");
#if defined(__x86_64__) && defined(ADAKV_BUILD_AVX2)
    /* an AVX2 CPU has the AVX2 table (so this file tests its kernels) */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        cr_assert(t[3] && strcmp(t[3]->isa, "avx2") == 0, "no AVX2 table on an AVX2 CPU");
#endif
    cr_assert_null(simd_ops_by_name("nonsense"));
}

/* The reference itself, against numbers worked out by hand. */
Test(ops, scalar_reference_by_hand) {
    const struct simd_ops *s = simd_ops_scalar();
    float x[4] = {1, -2, 3, -4}, w[4] = {1, 1, 2, 0.5f}, y[4];
    s->rmsnorm(y, x, w, 4, 0.0f); /* rms = sqrt(30/4) */
    const float r = 1.0f / sqrtf(7.5f);
    cr_assert_float_eq(y[2], 6.0f * r, 1e-6);
    cr_assert_float_eq(y[3], -2.0f * r, 1e-6);
    float sm[3] = {0.0f, logf(3.0f), -INFINITY};
    s->softmax(sm, 3);
    cr_assert_float_eq(sm[0], 0.25f, 1e-7);
    cr_assert_float_eq(sm[1], 0.75f, 1e-7);
    cr_assert_eq(sm[2], 0.0f);
    float g[2] = {0.0f, 2.0f}, u[2] = {5.0f, 3.0f}, o[2];
    s->swiglu(o, g, u, 2);
    cr_assert_float_eq(o[0], 0.0f, 1e-7);
    cr_assert_float_eq(o[1], 2.0f / (1.0f + expf(-2.0f)) * 3.0f, 1e-6);
    /* gelu(2) = 0.5 * 2 * (1 + tanh(0.79788456 * 2 * (1 + 0.044715 * 4))) = 1.95459769;
     * gelu(-1) = -0.5 * (1 + tanh(-0.79788456 * 1.044715)) = -0.15880801 */
    float gg[3] = {0.0f, 2.0f, -1.0f}, gu[3] = {5.0f, 3.0f, 2.0f}, go[3];
    s->geglu(go, gg, gu, 3);
    cr_assert_float_eq(go[0], 0.0f, 1e-7);
    cr_assert_float_eq(go[1], 1.95459769f * 3.0f, 1e-5);
    cr_assert_float_eq(go[2], -0.15880801f * 2.0f, 1e-6);
    int8_t q[3];
    float sc;
    s->quant_row_i8(q, &sc, (const float[]){1.27f, -0.635f, 0.0f}, 3);
    cr_assert_float_eq(sc, 0.01f, 1e-9);
    cr_assert(q[0] == 127 && q[1] == -64 && q[2] == 0); /* -63.5 rounds to even: -64 */
}

Test(ops, rmsnorm) {
    rng_seed(1);
    FOR_EACH_ISA(ops) {
        for (int n = 1; n <= 200; n++) {
            float *x = alloc_f(n), *w = alloc_f(n), *a = alloc_f(n), *b = alloc_f(n);
            fill(x, n, n % 3 == 0 ? 1000.0f : 1.0f);
            fill(w, n, 2.0f);
            simd_ops_scalar()->rmsnorm(a, x, w, n, 1e-5f);
            ops->rmsnorm(b, x, w, n, 1e-5f);
            expect_close(ops->isa, "rmsnorm", n, b, a, n, 2e-6f, 1e-30f);
            ops->rmsnorm(x, x, w, n, 1e-5f); /* in place */
            expect_close(ops->isa, "rmsnorm in-place", n, x, a, n, 2e-6f, 1e-30f);
            free_f(x), free_f(w), free_f(a), free_f(b);
        }
        float z[37] = {0}, w[37], y[37];
        for (int i = 0; i < 37; i++)
            w[i] = 1.0f;
        ops->rmsnorm(y, z, w, 37, 1e-5f); /* all zero: eps keeps it finite */
        for (int i = 0; i < 37; i++)
            cr_assert_eq(y[i], 0.0f, "%s rmsnorm zeros", ops->isa);
    }
}

Test(ops, rope_both_pairings) {
    rng_seed(2);
    const int dims[][2] = {{64, 64}, {64, 32}, {128, 128}, {6, 6},   {10, 6},    {34, 34},
                           {2, 2},   {96, 96}, {80, 64},   {46, 46}, {256, 256}, {18, 14}};
    FOR_EACH_ISA(ops) {
        for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
            const int hd = dims[t][0], n_rot = dims[t][1], n_head = 1 + (int)t % 4;
            const size_t n = (size_t)hd * n_head;
            float *x = alloc_f(n), *a = alloc_f(n), *b = alloc_f(n), *cs = alloc_f(n_rot);
            fill(x, (int)n, 3.0f);
            for (int i = 0; i < n_rot / 2; i++) {
                const double th = 37.0 * pow(10000.0, -2.0 * i / n_rot);
                cs[i] = (float)cos(th);
                cs[n_rot / 2 + i] = (float)sin(th);
            }
            for (int neox = 0; neox <= 1; neox++) {
                memcpy(a, x, n * sizeof *x);
                memcpy(b, x, n * sizeof *x);
                simd_ops_scalar()->rope(a, n_head, hd, n_rot, cs, neox);
                ops->rope(b, n_head, hd, n_rot, cs, neox);
                expect_close(ops->isa, neox ? "rope neox" : "rope norm", hd, b, a, (int)n, 0.0f,
                             2e-6f);
                for (int h = 0; h < n_head; h++) /* dims past n_rot untouched */
                    for (int i = n_rot; i < hd; i++)
                        cr_assert_eq(b[h * hd + i], x[h * hd + i]);
            }
            free_f(x), free_f(a), free_f(b), free_f(cs);
        }
    }
}

/* The maximum is exact: equal to the reference bit for bit, wherever it sits (first, middle, a
 * vector tail), with -inf entries, all -inf, huge magnitudes and the empty row. */
Test(ops, max) {
    rng_seed(31);
    FOR_EACH_ISA(ops) {
        cr_assert(isinf(ops->max(NULL, 0)) && ops->max(NULL, 0) < 0, "%s max of nothing", ops->isa);
        for (int n = 1; n <= 200; n++) {
            float *x = alloc_f(n);
            for (int where = 0; where < 3; where++) {
                fill(x, n, n % 3 ? 50.0f : 3e38f);
                if (n > 3)
                    x[n / 3] = -INFINITY;
                const int at = where == 0 ? 0 : where == 1 ? n / 2 : n - 1;
                x[at] = 3.3e38f; /* the unique largest value */
                const float want = simd_ops_scalar()->max(x, n), got = ops->max(x, n);
                cr_assert(want == 3.3e38f && got == want, "%s max n %d at %d: %g, want %g",
                          ops->isa, n, at, (double)got, (double)want);
                x[at] = -3.4e38f; /* now the largest of the random rest */
                cr_assert(ops->max(x, n) == simd_ops_scalar()->max(x, n), "%s max n %d", ops->isa,
                          n);
            }
            for (int i = 0; i < n; i++)
                x[i] = -INFINITY;
            cr_assert(isinf(ops->max(x, n)) && ops->max(x, n) < 0, "%s max of -inf", ops->isa);
            free_f(x);
        }
    }
}

Test(ops, exp_sum_and_softmax) {
    rng_seed(3);
    FOR_EACH_ISA(ops) {
        for (int n = 1; n <= 200; n++) {
            float *x = alloc_f(n), *a = alloc_f(n), *b = alloc_f(n);
            fill(x, n, n % 2 ? 20.0f : 80.0f);
            if (n > 3)
                x[n / 2] = -INFINITY, x[n - 1] = -INFINITY; /* masked keys */
            memcpy(a, x, n * sizeof *x);
            memcpy(b, x, n * sizeof *x);
            const float sa = simd_ops_scalar()->exp_sum(a, n, 5.0f);
            const float sb = ops->exp_sum(b, n, 5.0f);
            expect_close(ops->isa, "exp_sum values", n, b, a, n, 5e-7f, 1e-37f);
            expect_close(ops->isa, "exp_sum sum", n, &sb, &sa, 1, 1e-6f, 0.0f);
            memcpy(a, x, n * sizeof *x);
            memcpy(b, x, n * sizeof *x);
            simd_ops_scalar()->softmax(a, n);
            ops->softmax(b, n);
            expect_close(ops->isa, "softmax", n, b, a, n, 2e-6f, 1e-30f);
            if (n > 3)
                cr_assert(b[n / 2] == 0.0f && b[n - 1] == 0.0f, "%s softmax of -inf", ops->isa);
            free_f(x), free_f(a), free_f(b);
        }
        float eq[33];
        for (int i = 0; i < 33; i++)
            eq[i] = 7.5f;
        ops->softmax(eq, 33); /* all equal: exactly uniform */
        for (int i = 0; i < 33; i++)
            cr_assert_float_eq(eq[i], 1.0f / 33, 1e-7);
    }
}

Test(ops, swiglu) {
    rng_seed(4);
    FOR_EACH_ISA(ops) {
        for (int n = 1; n <= 200; n++) {
            float *g = alloc_f(n), *u = alloc_f(n), *a = alloc_f(n), *b = alloc_f(n);
            fill(g, n, n % 4 == 0 ? 60.0f : 6.0f);
            fill(u, n, 4.0f);
            if (n > 2)
                g[0] = -200.0f, g[1] = 200.0f; /* exp overflow / underflow limits */
            simd_ops_scalar()->swiglu(a, g, u, n);
            ops->swiglu(b, g, u, n);
            expect_close(ops->isa, "swiglu", n, b, a, n, 2e-6f, 1e-30f);
            ops->swiglu(g, g, u, n); /* in place */
            expect_close(ops->isa, "swiglu in-place", n, g, a, n, 2e-6f, 1e-30f);
            free_f(g), free_f(u), free_f(a), free_f(b);
        }
    }
}

static void expect_geglu(const char *isa, const char *op, int n, const float *got,
                         const float *want, const float *g, const float *u) {
    for (int i = 0; i < n; i++) {
        const float tol = 4e-6f * fabsf(want[i]) + 2e-7f * fabsf(g[i] * u[i]) + 1e-30f;
        if (!(fabsf(got[i] - want[i]) <= tol) && !(got[i] == want[i]))
            cr_assert_fail("%s %s n=%d: index %d (gate %.9g) got %.9g want %.9g (tol %.3g)", isa,
                           op, n, i, (double)g[i], (double)got[i], (double)want[i], (double)tol);
    }
}

Test(ops, geglu) {
    rng_seed(14);
    FOR_EACH_ISA(ops) {
        for (int n = 1; n <= 200; n++) {
            float *g = alloc_f(n), *u = alloc_f(n), *a = alloc_f(n), *b = alloc_f(n);
            fill(g, n, n % 4 == 0 ? 60.0f : 6.0f);
            fill(u, n, 4.0f);
            if (n > 4) /* saturated tanh both ways, and g^2 overflowing to inf */
                g[0] = -200.0f, g[1] = 200.0f, g[2] = -3e19f, g[3] = 3e19f;
            simd_ops_scalar()->geglu(a, g, u, n);
            ops->geglu(b, g, u, n);
            for (int i = 0; i < n; i++)
                cr_assert(isfinite(a[i]), "geglu reference n=%d index %d: %g", n, i, (double)a[i]);
            expect_geglu(ops->isa, "geglu", n, b, a, g, u);
            float *g0 = alloc_f(n);
            memcpy(g0, g, (size_t)n * sizeof *g);
            ops->geglu(g, g, u, n); /* in place */
            expect_geglu(ops->isa, "geglu in-place", n, g, a, g0, u);
            free_f(g), free_f(g0), free_f(u), free_f(a), free_f(b);
        }
    }
}

/* Every head size's rotation (blocks 1-256, rows of one to several blocks, the vector kernels'
 * tail path below 16), random values and extremes (huge, tiny, zeros, infinities): the same bits
 * as the reference. */
Test(ops, hadamard_bit_exact) {
    const int rows[] = {1, 2, 7, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 160, 192, 256, 512};
    float *a = alloc_f(512), *b = alloc_f(512);
    FOR_EACH_ISA(ops) {
        for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
            const int n = rows[r], block = n & -n;
            for (int trial = 0; trial < 4; trial++) {
                fill(a, n, trial == 1 ? 3e37f : trial == 2 ? 1e-38f : 10.0f);
                if (trial == 3)
                    for (int i = 0; i < n; i += 3)
                        a[i] = i % 2 ? 0.0f : -0.0f;
                if (trial == 1 && n > 4)
                    a[n / 2] = INFINITY, a[n - 1] = -INFINITY;
                memcpy(b, a, (size_t)n * sizeof *a);
                simd_ops_scalar()->hadamard(a, n, block);
                ops->hadamard(b, n, block);
                for (int i = 0; i < n; i++)
                    cr_assert(memcmp(&a[i], &b[i], sizeof a[i]) == 0 ||
                                  (isnan(a[i]) && isnan(b[i])),
                              "%s hadamard n=%d block %d trial %d: [%d] %.9g want %.9g", ops->isa,
                              n, block, trial, i, (double)b[i], (double)a[i]);
            }
            /* a smaller block over the same row (head sizes like 80 = 5 x 16) */
            if (block >= 32) {
                fill(a, n, 1.0f);
                memcpy(b, a, (size_t)n * sizeof *a);
                simd_ops_scalar()->hadamard(a, n, 16);
                ops->hadamard(b, n, 16);
                cr_assert(memcmp(a, b, (size_t)n * sizeof *a) == 0, "%s hadamard n=%d block 16",
                          ops->isa, n);
            }
        }
    }
    free_f(a);
    free_f(b);
}

Test(ops, quant_row_i8_bit_exact) {
    rng_seed(5);
    FOR_EACH_ISA(ops) {
        for (int n = 1; n <= 200; n++) {
            float *x = alloc_f(n);
            int8_t qa[256], qb[256];
            float sa, sb;
            const float amps[] = {1.0f, 1e-30f, 3e4f, 1e30f};
            for (int k = 0; k < 4; k++) {
                fill(x, n, amps[k]);
                if (n > 5)
                    x[3] = amps[k] * 1.0f, x[4] = -amps[k]; /* hits +-127 exactly */
                simd_ops_scalar()->quant_row_i8(qa, &sa, x, n);
                ops->quant_row_i8(qb, &sb, x, n);
                cr_assert(sa == sb, "%s quant scale n=%d: %g vs %g", ops->isa, n, (double)sb,
                          (double)sa);
                cr_assert(memcmp(qa, qb, n) == 0, "%s quant values n=%d amp %g", ops->isa, n,
                          (double)amps[k]);
                for (int i = 0; i < n; i++) /* reconstruction within half a step */
                    cr_assert(fabsf(qa[i] * sa - x[i]) <= 0.5001f * sa + 1e-37f);
            }
            memset(x, 0, n * sizeof *x);
            ops->quant_row_i8(qb, &sb, x, n);
            cr_assert(sb == 0.0f);
            for (int i = 0; i < n; i++)
                cr_assert_eq(qb[i], 0);
            free_f(x);
        }
    }
}

/* Random KV rows of each storage type, with the reference's view as f32 for the bounds. */
struct kv_rows {
    int8_t *i8;
    float *scale;
    uint16_t *f16;
    float *f32;
};

/* KV_EXTREME: int8 values +-127 alternating, scale 1e3; KV_PEAK: every int8 value +127 (and
 * every query value equal: the largest integer sums the int16 kernels can form). */
enum kv_fill { KV_RANDOM, KV_EXTREME, KV_PEAK };

static void kv_rows_fill(struct kv_rows *r, int n_k, int d, enum kv_fill mode) {
    const size_t n = (size_t)n_k * d;
    r->i8 = malloc(n + 64);
    r->f16 = malloc(2 * n + 64);
    r->f32 = alloc_f(n);
    r->scale = alloc_f(n_k);
    for (size_t i = 0; i < n; i++) {
        r->i8[i] = mode == KV_PEAK      ? 127
                   : mode == KV_EXTREME ? (int8_t)((i & 1) ? 127 : -127)
                                        : (int8_t)(rng_uniform() * 127.0f);
        r->f32[i] = 4.0f * rng_uniform();
        _Float16 h = (_Float16)r->f32[i];
        memcpy(&r->f16[i], &h, 2);
    }
    for (int j = 0; j < n_k; j++)
        r->scale[j] = mode == KV_EXTREME ? 1e3f : 0.05f * (1.0f + rng_uniform());
}

static void kv_rows_free(struct kv_rows *r) {
    free(r->i8), free(r->f16), free_f(r->f32), free_f(r->scale);
}

/* The int16 rounding of the int8 kernels that multiply in int16 (AVX-512 VNNI: attn-qk-vnni.c,
 * attn-av-vnni.c; AVX2: attn-qk-avx2.c, attn-av-avx2.c), on top of the f32 bound: each query
 * value moves by at most max|q| / 65534, each weight p_j * scale_j by at most
 * max_j |p_j scale_j| / 65534; 1% slack for the f32 arithmetic around them. The scores go back
 * to f32 for rows longer than the int16 kernel takes (VNNI: 128, AVX2: 512). */
static bool qk_int16(const struct simd_ops *ops, int d) {
    (void)ops, (void)d;
#if defined(__x86_64__) && defined(ADAKV_BUILD_AVX512)
    if (ops->attn_qk_i8 == attn_qk_i8__avx512vnni && d <= 128)
        return true;
#endif
#if defined(__x86_64__) && defined(ADAKV_BUILD_AVX2)
    if (ops->attn_qk_i8 == attn_qk_i8__avx2 && d <= 512)
        return true;
#endif
    return false;
}

static bool av_int16(const struct simd_ops *ops) {
    (void)ops;
#if defined(__x86_64__) && defined(ADAKV_BUILD_AVX512)
    if (ops->attn_av_i8 == attn_av_i8__avx512vnni)
        return true;
#endif
#if defined(__x86_64__) && defined(ADAKV_BUILD_AVX2)
    if (ops->attn_av_i8 == attn_av_i8__avx2)
        return true;
#endif
    return false;
}

/* Scores, then values weighted by their softmax, of n_q query rows against n_k KV rows of
 * length d, for every storage type, against the reference. */
static void check_attention_case(const struct simd_ops *ops, int d, int n_k, int n_q,
                                 enum kv_fill mode) {
    const bool i16 = qk_int16(ops, d), av16 = av_int16(ops);
    struct kv_rows kr;
    kv_rows_fill(&kr, n_k, d, mode);
    float *q = alloc_f((size_t)n_q * d), *sa = alloc_f((size_t)n_q * n_k);
    float *sb = alloc_f((size_t)n_q * n_k), *bound = alloc_f((size_t)n_q * n_k);
    fill(q, n_q * d, 2.0f);
    if (mode == KV_PEAK)
        for (int i = 0; i < n_q * d; i++)
            q[i] = 1.5f;
    for (int t = 0; t < 3; t++) {
        const struct simd_ops *s = simd_ops_scalar();
        const char *name = t == 0 ? "qk i8" : t == 1 ? "qk f16" : "qk f32";
        if (t == 0) {
            s->attn_qk_i8(sa, n_k, q, d, n_q, kr.i8, kr.scale, n_k, d, 0.125f);
            ops->attn_qk_i8(sb, n_k, q, d, n_q, kr.i8, kr.scale, n_k, d, 0.125f);
        } else if (t == 1) {
            s->attn_qk_f16(sa, n_k, q, d, n_q, kr.f16, n_k, d, 0.125f);
            ops->attn_qk_f16(sb, n_k, q, d, n_q, kr.f16, n_k, d, 0.125f);
        } else {
            s->attn_qk_f32(sa, n_k, q, d, n_q, kr.f32, n_k, d, 0.125f);
            ops->attn_qk_f32(sb, n_k, q, d, n_q, kr.f32, n_k, d, 0.125f);
        }
        for (int qi = 0; qi < n_q; qi++) /* bound: 1e-5 of sum |q k| */
            for (int j = 0; j < n_k; j++) {
                double m = 0, k1 = 0, qmax = 0;
                for (int i = 0; i < d; i++) {
                    const double kv = t == 0   ? kr.i8[j * d + i] * kr.scale[j]
                                      : t == 1 ? 4.0
                                               : kr.f32[j * d + i];
                    m += fabs(q[qi * d + i] * kv);
                    k1 += fabs(kv);
                    qmax = fmax(qmax, fabs(q[qi * d + i]));
                }
                const double r16 = t == 0 && i16 ? 1.01 * qmax / 65534.0 * k1 : 0.0;
                bound[qi * n_k + j] = (float)(0.125 * (1e-5 * m + r16)) + 1e-30f;
            }
        for (int i = 0; i < n_q * n_k; i++)
            cr_assert(fabsf(sa[i] - sb[i]) <= bound[i],
                      "%s %s d=%d n_k=%d n_q=%d: index %d got %g want %g", ops->isa, name, d, n_k,
                      n_q, i, (double)sb[i], (double)sa[i]);
    }
    /* av: probabilities from a softmax over the scores, accumulators pre-filled */
    float *p = sa, *acc_a = alloc_f((size_t)n_q * d), *acc_b = alloc_f((size_t)n_q * d);
    for (int qi = 0; qi < n_q; qi++)
        simd_ops_scalar()->softmax(p + qi * n_k, n_k);
    for (int t = 0; t < 3; t++) {
        const struct simd_ops *s = simd_ops_scalar();
        fill(acc_a, n_q * d, 1.0f);
        memcpy(acc_b, acc_a, (size_t)n_q * d * sizeof(float));
        const float vmax = t == 0 ? 127.0f * (mode == KV_EXTREME ? 1e3f : 0.1f) : 4.0f;
        if (t == 0) {
            s->attn_av_i8(acc_a, d, p, n_k, n_q, kr.i8, kr.scale, n_k, d);
            ops->attn_av_i8(acc_b, d, p, n_k, n_q, kr.i8, kr.scale, n_k, d);
        } else if (t == 1) {
            s->attn_av_f16(acc_a, d, p, n_k, n_q, kr.f16, n_k, d);
            ops->attn_av_f16(acc_b, d, p, n_k, n_q, kr.f16, n_k, d);
        } else {
            s->attn_av_f32(acc_a, d, p, n_k, n_q, kr.f32, n_k, d);
            ops->attn_av_f32(acc_b, d, p, n_k, n_q, kr.f32, n_k, d);
        }
        /* probabilities sum to 1 per row, so sum |p v| <= vmax; plus |acc| <= 1 */
        for (int i = 0; i < n_q * d; i++) {
            double r16 = 0.0;
            if (t == 0 && av16) {
                const int qi = i / d, c = i % d;
                double wmax = 0, v1 = 0;
                for (int j = 0; j < n_k; j++) {
                    wmax = fmax(wmax, fabs((double)p[qi * n_k + j] * kr.scale[j]));
                    v1 += abs(kr.i8[j * d + c]);
                }
                r16 = 1.01 * wmax / 65534.0 * v1;
            }
            cr_assert(fabsf(acc_a[i] - acc_b[i]) <= 2e-6f * (vmax + 1.0f) * 4 + r16,
                      "%s av type %d d=%d n_k=%d n_q=%d: index %d got %g want %g", ops->isa, t, d,
                      n_k, n_q, i, (double)acc_b[i], (double)acc_a[i]);
        }
    }
    free_f(q), free_f(sa), free_f(sb), free_f(bound), free_f(acc_a), free_f(acc_b);
    kv_rows_free(&kr);
}

static void check_attention(const struct simd_ops *ops) {
    rng_seed(6);
    const int ds[] = {64, 1, 7, 16, 17, 33, 48, 80, 100, 128, 200};
    const int nks[] = {1, 3, 4, 5, 31, 64, 129, 300, 600};
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++)
        for (size_t ki = 0; ki < sizeof nks / sizeof nks[0]; ki++)
            check_attention_case(ops, ds[di], nks[ki], 1 + (int)(di + ki) % 7,
                                 (di + ki) % 5 == 0 ? KV_EXTREME : KV_RANDOM);
}

Test(ops, attention_qk_and_av) {
    FOR_EACH_ISA(ops) {
        check_attention(ops);
    }
}

/* Prefill tiles: the rows of 16 query tokens x a GQA group per call (48 for the default model,
 * 64 for Llama 3.2 1B) and more, around the 64-row passes of the VNNI scores, against keys around
 * their 4-key blocks, rows of 1 to 128 values, at the int32 peak and at the int8 extremes. */
Test(ops, attention_prefill_rows) {
    rng_seed(9);
    const int ds[] = {64, 1, 17, 63, 65, 100, 128};
    const int nks[] = {1, 3, 4, 15, 16, 17, 33, 129};
    const int nqs[] = {16, 17, 31, 48, 64, 65, 130};
    FOR_EACH_ISA(ops) {
        for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++)
            for (size_t ki = 0; ki < sizeof nks / sizeof nks[0]; ki++)
                check_attention_case(ops, ds[di], nks[ki], nqs[(di + ki) % 7],
                                     (di + ki) % 3 == 0 ? KV_EXTREME : KV_RANDOM);
        check_attention_case(ops, 64, 600, 48, KV_PEAK);
        check_attention_case(ops, 128, 37, 64, KV_PEAK);
    }
}

/* The int32 sums of the int16 kernels at their largest, and rows as long as the cache allows
 * (KV_HEAD_DIM_MAX = 4096) and one longer. Every int8 value +127 against equal queries gives a
 * score of d x 32767 x 127: just under 2^31 at d = 512, the longest row the AVX2 int8 scores
 * take in int16 (from 513 on, f32). Uniform weights over +127 values give 256 x 32767 x 127 per
 * chunk of the weighted sum. */
Test(ops, attention_peak_and_long_rows) {
    rng_seed(7);
    FOR_EACH_ISA(ops) {
        check_attention_case(ops, 64, 600, 4, KV_PEAK);
        check_attention_case(ops, 512, 5, 5, KV_PEAK);
        check_attention_case(ops, 513, 6, 3, KV_PEAK);
        check_attention_case(ops, 4096, 6, 3, KV_RANDOM);
        check_attention_case(ops, 4099, 5, 6, KV_EXTREME);
    }
}
