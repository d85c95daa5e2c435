/* Press kernels (simd/press-ops.h): every ISA table against the plain C reference on random
 * data, odd sizes around the tile widths (16-lane vectors, 64-key tiles, 4-row blocks), strided
 * rows, extreme magnitudes, and nothing written outside the rows and columns asked for.
 *
 * Tolerance: the ISA versions sum in f32 in another order than the double reference, so one
 * output may differ by the f32 rounding of a sum of `d` products: |err| <= d * 2^-23 * sum|terms|
 * (standard recursive-summation bound, a factor 2 of headroom over gamma_d with u = 2^-24), plus
 * the two final multiplies (scale, mul). The bound is computed per output from the same data. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "press-ops.h"

static uint64_t st = 0x853c49e6748fea9bull;
static uint32_t rnd(void) {
    st ^= st << 13;
    st ^= st >> 7;
    st ^= st << 17;
    return (uint32_t)(st >> 32);
}
static float unif(void) { /* [-1, 1) */
    return (float)rnd() / 2147483648.0f - 1.0f;
}

static float f16_val(uint16_t h) {
    _Float16 v;
    memcpy(&v, &h, sizeof v);
    return (float)v;
}
static uint16_t f16_bits(float x) {
    _Float16 v = (_Float16)x;
    uint16_t h;
    memcpy(&h, &v, sizeof h);
    return h;
}

/* ISA tables other than the reference that this machine runs. */
static int isa_tables(const struct press_ops **out) {
    int n = 0;
    for (int isa = 1; isa < SIMD_ISA_COUNT; isa++) {
        const struct press_ops *t = press_ops_by_name(simd_isa_name((enum simd_isa)isa));
        if (t && t != press_ops_scalar())
            out[n++] = t;
    }
    return n;
}

enum { T_I8, T_F16, T_F32 };
static const float GUARD = -12345.0f;

/* One qk case: n_q query rows (stride q_stride >= d) against n_k keys of type `type`, scores
 * at stride s_stride >= n_k; amp scales q and keys (extremes). */
static void qk_case(const struct press_ops *t, int type, int n_q, int n_k, int d, int q_pad,
                    int s_pad, float amp) {
    const size_t q_stride = (size_t)d + q_pad, s_stride = (size_t)n_k + s_pad;
    float *q = malloc((size_t)n_q * q_stride * sizeof *q);
    int8_t *k8 = malloc((size_t)n_k * d);
    uint16_t *k16 = malloc((size_t)n_k * d * sizeof *k16);
    float *k32 = malloc((size_t)n_k * d * sizeof *k32);
    float *ks = malloc((size_t)n_k * sizeof *ks);
    float *kf = malloc((size_t)n_k * d * sizeof *kf); /* the keys as f32, for the bound */
    float *want = malloc((size_t)n_q * s_stride * sizeof *want);
    float *got = malloc((size_t)n_q * s_stride * sizeof *got);
    for (size_t i = 0; i < (size_t)n_q * q_stride; i++)
        q[i] = unif() * amp;
    for (int j = 0; j < n_k; j++) {
        /* int8 extremes: -128 and 127 both appear; scales from tiny to large */
        ks[j] = ldexpf(1.0f + unif() * 0.5f, (int)(rnd() % 40) - 30);
        for (int i = 0; i < d; i++) {
            size_t at = (size_t)j * d + i;
            int r = (int)(rnd() % 259) - 129;
            k8[at] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
            float x = unif() * amp;
            k16[at] = f16_bits(x > 65504.0f ? 65504.0f : x < -65504.0f ? -65504.0f : x);
            k32[at] = x;
            kf[at] = type == T_I8 ? (float)k8[at] : type == T_F16 ? f16_val(k16[at]) : k32[at];
        }
    }
    const float mul = 1.0f / sqrtf((float)d);
    for (size_t i = 0; i < (size_t)n_q * s_stride; i++)
        want[i] = got[i] = GUARD;
    const struct press_ops *ref = press_ops_scalar();
    if (type == T_I8) {
        ref->qk_i8(want, s_stride, q, q_stride, n_q, k8, ks, n_k, d, mul);
        t->qk_i8(got, s_stride, q, q_stride, n_q, k8, ks, n_k, d, mul);
    } else if (type == T_F16) {
        ref->qk_f16(want, s_stride, q, q_stride, n_q, k16, n_k, d, mul);
        t->qk_f16(got, s_stride, q, q_stride, n_q, k16, n_k, d, mul);
    } else {
        ref->qk_f32(want, s_stride, q, q_stride, n_q, k32, n_k, d, mul);
        t->qk_f32(got, s_stride, q, q_stride, n_q, k32, n_k, d, mul);
    }
    for (int r = 0; r < n_q; r++)
        for (size_t j = 0; j < s_stride; j++) {
            const float g = got[r * s_stride + j], w = want[r * s_stride + j];
            if (j >= (size_t)n_k) {
                cr_assert_eq(g, GUARD, "%s type %d: wrote column %zu >= n_k %d", t->isa, type, j,
                             n_k);
                continue;
            }
            double mag = 0.0;
            for (int i = 0; i < d; i++)
                mag += fabs((double)q[r * q_stride + i] * kf[(size_t)j * d + i]);
            const double sc = (type == T_I8 ? ks[j] : 1.0) * mul;
            const double tol = (d * 0x1p-23 * mag + 0x1p-22 * fabs((double)w / sc)) * sc + 1e-30;
            cr_assert(isfinite(g) && fabs((double)g - w) <= tol,
                      "%s type %d n_q %d n_k %d d %d amp %g: s[%d][%zu] = %.9g, reference %.9g "
                      "(tolerance %g)",
                      t->isa, type, n_q, n_k, d, amp, r, j, g, w, tol);
        }
    free(q);
    free(k8);
    free(k16);
    free(k32);
    free(ks);
    free(kf);
    free(want);
    free(got);
}

Test(press_kernels, qk_gemm_matches_reference_on_odd_shapes) {
    const struct press_ops *tabs[SIMD_ISA_COUNT];
    const int n_tab = isa_tables(tabs);
    const int nq[] = {1, 2, 3, 4, 5, 7, 13, 96};
    const int nk[] = {1, 15, 16, 17, 63, 64, 65, 129, 300};
    const int dd[] = {1, 3, 16, 17, 64, 100};
    for (int ti = 0; ti < n_tab; ti++)
        for (int type = 0; type < 3; type++)
            for (size_t a = 0; a < sizeof nq / sizeof nq[0]; a++)
                for (size_t b = 0; b < sizeof nk / sizeof nk[0]; b++) {
                    const int d = dd[(a + b + type) % (sizeof dd / sizeof dd[0])];
                    qk_case(tabs[ti], type, nq[a], nk[b], d, (int)(a % 3), (int)(b % 4), 2.0f);
                }
    if (n_tab == 0)
        cr_log_info("no ISA press kernels on this machine: only the reference ran");
}

Test(press_kernels, qk_gemm_extremes_and_wide_heads) {
    const struct press_ops *tabs[SIMD_ISA_COUNT];
    const int n_tab = isa_tables(tabs);
    for (int ti = 0; ti < n_tab; ti++)
        for (int type = 0; type < 3; type++) {
            qk_case(tabs[ti], type, 9, 70, 64, 0, 0, 1e15f); /* products near 1e30 */
            qk_case(tabs[ti], type, 9, 70, 64, 0, 0, 1e-12f);
            qk_case(tabs[ti], type, 5, 33, 256, 1, 1, 1.0f); /* the largest tiled head_dim */
            qk_case(tabs[ti], type, 5, 33, 257, 1, 1, 1.0f); /* above it: the fallback */
        }
}

static void vnorm_case(const struct press_ops *t, int n, int d, int n_out, float amp) {
    float *v = malloc((size_t)n * d * sizeof *v);
    float *w = malloc((size_t)d * n_out * sizeof *w);
    float *want = malloc((size_t)(n + 1) * sizeof *want);
    float *got = malloc((size_t)(n + 1) * sizeof *got);
    for (int i = 0; i < n * d; i++)
        v[i] = unif() * amp;
    for (int i = 0; i < d * n_out; i++)
        w[i] = unif() * 0.1f;
    for (int r = 0; r < n; r++)
        want[r] = got[r] = unif() * amp; /* the kernels accumulate into out */
    want[n] = got[n] = GUARD;
    press_ops_scalar()->vnorm_l1(want, v, n, d, w, n_out);
    t->vnorm_l1(got, v, n, d, w, n_out);
    cr_assert_eq(got[n], GUARD, "%s: wrote past row %d", t->isa, n);
    for (int r = 0; r < n; r++) {
        double mag = 0.0;
        for (int e = 0; e < n_out; e++)
            for (int i = 0; i < d; i++)
                mag += fabs((double)v[(size_t)r * d + i] * w[(size_t)i * n_out + e]);
        /* per output the dot's bound, then the sum of n_out absolute values and the add */
        const double tol = (d + n_out + 2) * 0x1p-23 * (mag + fabs((double)want[r]));
        cr_assert(fabs((double)got[r] - want[r]) <= tol,
                  "%s n %d d %d n_out %d amp %g row %d: %.9g vs reference %.9g (tol %g)", t->isa, n,
                  d, n_out, amp, r, got[r], want[r], tol);
    }
    free(v);
    free(w);
    free(want);
    free(got);
}

Test(press_kernels, value_norm_matches_reference) {
    const struct press_ops *tabs[SIMD_ISA_COUNT];
    const int n_tab = isa_tables(tabs);
    const int nn[] = {1, 2, 3, 4, 5, 9, 130};
    const int dd[] = {1, 7, 16, 64, 65};
    const int no[] = {1, 15, 16, 17, 63, 64, 65, 100, 576};
    for (int ti = 0; ti < n_tab; ti++) {
        for (size_t a = 0; a < sizeof nn / sizeof nn[0]; a++)
            for (size_t b = 0; b < sizeof no / sizeof no[0]; b++)
                vnorm_case(tabs[ti], nn[a], dd[(a + b) % 5], no[b], 1.0f);
        vnorm_case(tabs[ti], 6, 64, 576, 1e17f); /* projected values near 1e17 * 6.4 */
        vnorm_case(tabs[ti], 6, 64, 576, 1e-20f);
    }
}

Test(press_kernels, value_norm_reference_by_hand) {
    /* v = (1, -2), w = [[1, 0, 3], [1, 1, -1]]: u = (-1, -2, 5), ||u||_1 = 8; out starts at 0.5 */
    const float v[2] = {1, -2}, w[6] = {1, 0, 3, 1, 1, -1};
    float out[1] = {0.5f};
    press_ops_scalar()->vnorm_l1(out, v, 1, 2, w, 3);
    cr_assert_eq(out[0], 8.5f);
}

Test(press_kernels, tables_follow_the_isa_names) {
    cr_assert_eq(press_ops_by_name("scalar"), press_ops_scalar());
    cr_assert_null(press_ops_by_name("no-such-isa"));
    const struct press_ops *best = press_ops_best();
    cr_assert_not_null(best);
    cr_assert_str_eq(best->isa, press_ops_by_name(simd_isa_name(simd_isa()))->isa);
}
