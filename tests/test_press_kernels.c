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

/* col_max: exact (a maximum has no rounding); lanes past n keep their guard. */
Test(press_kernels, col_max_matches_reference_with_tails) {
    const struct press_ops *tabs[SIMD_ISA_COUNT];
    const int n_tab = isa_tables(tabs);
    const int nn[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 100, 1001};
    for (int ti = 0; ti < n_tab; ti++)
        for (size_t a = 0; a < sizeof nn / sizeof nn[0]; a++) {
            const int n = nn[a];
            float *acc = malloc((size_t)(n + 16) * sizeof *acc);
            float *ref = malloc((size_t)(n + 16) * sizeof *ref);
            float *x = malloc((size_t)(n + 16) * sizeof *x);
            for (int j = 0; j < n + 16; j++) {
                acc[j] = ref[j] = j < n ? unif() : GUARD;
                x[j] = j < n ? unif() : 1e30f; /* would win a max past n */
            }
            tabs[ti]->col_max(acc, x, n);
            press_ops_scalar()->col_max(ref, x, n);
            for (int j = 0; j < n + 16; j++)
                cr_assert_eq(acc[j], ref[j], "%s n=%d j=%d", tabs[ti]->isa, n, j);
            free(acc), free(ref), free(x);
        }
}

Test(press_kernels, col_max_reference_by_hand) {
    float acc[3] = {0.5f, 0.0f, 2.0f};
    const float x[3] = {0.25f, 1.0f, 2.5f};
    press_ops_scalar()->col_max(acc, x, 3);
    cr_assert(acc[0] == 0.5f && acc[1] == 1.0f && acc[2] == 2.5f);
}

/* sq_combine against a double reference: |err| <= rows * 2^-22 * (|a s0| + |b| sum s^2) (f32
 * summation of n_rows terms in the same order, FMA or not); lanes past n untouched. */
Test(press_kernels, sq_combine_matches_reference_with_tails) {
    const struct press_ops *all[SIMD_ISA_COUNT + 1];
    int n_tab = isa_tables(all);
    all[n_tab++] = press_ops_scalar();
    const int nn[] = {0, 1, 5, 8, 9, 16, 17, 33, 255, 256};
    const int rr[] = {1, 2, 3, 33};
    for (int ti = 0; ti < n_tab; ti++)
        for (size_t a = 0; a < sizeof nn / sizeof nn[0]; a++)
            for (size_t b = 0; b < sizeof rr / sizeof rr[0]; b++) {
                const int n = nn[a], rows = rr[b];
                const size_t stride = (size_t)n + 3;
                float *s = malloc((size_t)rows * stride * sizeof *s + sizeof *s);
                float *out = malloc((size_t)(n + 16) * sizeof *out);
                for (size_t i = 0; i < (size_t)rows * stride; i++)
                    s[i] = 4.0f * unif();
                for (int j = 0; j < n + 16; j++)
                    out[j] = GUARD;
                const float ka = 0.125f, kb = 0.0078125f;
                all[ti]->sq_combine(out, s, stride, rows, n, ka, kb);
                for (int j = 0; j < n; j++) {
                    double q = 0.0;
                    for (int r = 1; r < rows; r++)
                        q += (double)s[r * stride + j] * s[r * stride + j];
                    const double want = ka * (double)s[j] + kb * q;
                    const double tol = rows * 0x1p-22 * (fabs(ka * (double)s[j]) + kb * q) + 1e-30;
                    cr_assert(fabs(out[j] - want) <= tol, "%s n=%d rows=%d j=%d: %g vs %g",
                              all[ti]->isa, n, rows, j, out[j], want);
                }
                for (int j = n; j < n + 16; j++)
                    cr_assert_eq(out[j], GUARD, "%s wrote past n=%d", all[ti]->isa, n);
                free(s), free(out);
            }
}

Test(press_kernels, sq_combine_reference_by_hand) {
    /* rows: (2, -1) mean, (3, 1) and (-1, 2) centred: out = a s0 + b (s1^2 + s2^2) */
    const float s[6] = {2, -1, 3, 1, -1, 2};
    float out[2];
    press_ops_scalar()->sq_combine(out, s, 2, 3, 2, 0.5f, 0.25f);
    cr_assert(out[0] == 0.5f * 2 + 0.25f * (9 + 1) && out[1] == 0.5f * -1 + 0.25f * (1 + 4));
}

/* One attn_colmax_i8 case against the reference: n_q rows at random positions (some before every
 * key, some after all), keys at even positions, the first n_out columns asked for, colmax starting
 * from small values both sides share. Tolerance: the kernel rounds each query row to int16 (error
 * <= half of amax_r / 32767 per dim), which moves a score by at most delta_rj = that x sum_i
 * |k_ji| x k_scale_j x mul and its row's log-sum-exp by at most the row's largest delta: a
 * probability's relative error is at most exp(2 delta) - 1, plus f32 sums and the inline exp.
 * given_lse: both take each row's log-sum-exp from the caller (computed here in double from the
 * reference's own scores, -inf for a row that sees no key), as the KVzip hook passes the forward
 * pass's. */
static void colmax_case(const struct press_ops *t, int n_q, int n_k, int n_out, int d, float amp,
                        bool given_lse) {
    float *q = malloc((size_t)n_q * d * sizeof *q);
    int8_t *k = malloc((size_t)n_k * d);
    float *ks = malloc((size_t)n_k * sizeof *ks);
    int32_t *qpos = malloc((size_t)n_q * sizeof *qpos), *kpos = malloc((size_t)n_k * sizeof *kpos);
    float *want = malloc((size_t)(n_k + 16) * sizeof *want);
    float *got = malloc((size_t)(n_k + 16) * sizeof *got);
    const float mul = 1.0f / sqrtf((float)d);
    double delta = 0.0;
    for (int j = 0; j < n_k; j++) {
        kpos[j] = 2 * j;
        ks[j] = amp * (0.5f + 0.5f * (unif() + 1.0f)) / 127.0f;
        for (int i = 0; i < d; i++) {
            int r = (int)(rnd() % 259) - 129;
            k[(size_t)j * d + i] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
        }
    }
    for (int r = 0; r < n_q; r++) {
        qpos[r] = (int32_t)(rnd() % (uint32_t)(2 * n_k + 4)) - 2;
        float amax = 0.0f;
        for (int i = 0; i < d; i++) {
            q[(size_t)r * d + i] = unif();
            amax = fmaxf(amax, fabsf(q[(size_t)r * d + i]));
        }
        for (int j = 0; j < n_k; j++) {
            double sk = 0.0;
            for (int i = 0; i < d; i++)
                sk += fabs((double)k[(size_t)j * d + i]);
            const double dj = 0.5 * amax / 32767.0 * sk * ks[j] * mul;
            delta = dj > delta ? dj : delta;
        }
    }
    float *lse = NULL;
    if (given_lse) {
        lse = malloc((size_t)n_q * sizeof *lse);
        for (int r = 0; r < n_q; r++) {
            double m = -INFINITY, l = 0.0;
            for (int pass = 0; pass < 2; pass++)
                for (int j = 0; j < n_k; j++) {
                    if (kpos[j] > qpos[r])
                        continue;
                    double s = 0.0;
                    for (int i = 0; i < d; i++)
                        s += (double)q[(size_t)r * d + i] * k[(size_t)j * d + i];
                    s *= (double)ks[j] * mul;
                    if (pass == 0)
                        m = s > m ? s : m;
                    else
                        l += exp(s - m);
                }
            lse[r] = m == -INFINITY ? -INFINITY : (float)(m + log(l));
        }
    }
    for (int j = 0; j < n_k + 16; j++)
        want[j] = got[j] = j < n_out ? 0.002f * (unif() + 1.0f) : GUARD;
    attn_colmax_i8__scalar(want, n_out, q, n_q, qpos, NULL, k, ks, kpos, n_k, d, mul);
    t->attn_colmax_i8(got, n_out, q, n_q, qpos, lse, k, ks, kpos, n_k, d, mul);
    const double rel = expm1(2.0 * delta) + 1e-5;
    for (int j = 0; j < n_k + 16; j++) {
        if (j >= n_out) {
            cr_assert_eq(got[j], GUARD, "%s wrote column %d >= n_out %d", t->isa, j, n_out);
            continue;
        }
        cr_assert(fabs((double)got[j] - want[j]) <= rel * want[j] + 1e-30,
                  "%s n_q %d n_k %d n_out %d d %d amp %g: colmax[%d] = %.9g, reference %.9g "
                  "(relative tolerance %g)",
                  t->isa, n_q, n_k, n_out, d, amp, j, got[j], want[j], rel);
    }
    free(q), free(k), free(ks), free(qpos), free(kpos), free(want), free(got), free(lse);
}

Test(press_kernels, attn_colmax_matches_reference_on_odd_shapes) {
    const struct press_ops *tabs[SIMD_ISA_COUNT];
    int ran = 0;
    for (int ti = 0, nt = isa_tables(tabs); ti < nt; ti++) {
        if (!tabs[ti]->attn_colmax_i8)
            continue;
        ran++;
        const int nqs[] = {1, 3, 15, 16, 17, 48, 63, 64, 65, 130};
        const int nks[] = {1, 3, 64, 65, 203};
        const int ds[] = {1, 33, 64, 128, 256};
        for (size_t a = 0; a < sizeof nqs / sizeof *nqs; a++)
            for (size_t b = 0; b < sizeof nks / sizeof *nks; b++)
                for (size_t c = 0; c < sizeof ds / sizeof *ds; c++)
                    for (int given = 0; given < 2; given++) {
                        colmax_case(tabs[ti], nqs[a], nks[b], nks[b], ds[c], 8.0f, given);
                        colmax_case(tabs[ti], nqs[a], nks[b], nks[b] / 2, ds[c], 8.0f, given);
                    }
        /* extremes: peaked softmax (large scores) and nearly flat (tiny ones) */
        for (int given = 0; given < 2; given++) {
            colmax_case(tabs[ti], 48, 203, 150, 64, 200.0f, given);
            colmax_case(tabs[ti], 48, 203, 150, 64, 1e-4f, given);
        }
    }
    if (simd_cpu_flags()->avx512_vnni)
        cr_assert_gt(ran, 0, "a VNNI CPU must run the VNNI kernel of attn_colmax_i8");
}

Test(press_kernels, attn_colmax_reference_by_hand) {
    /* one row sees two keys of equal score (p = 1/2 each), one row sees only the first (p = 1),
     * one row sees none; the third key is asked for but seen by nobody: its colmax stays */
    const float q[3] = {1, 1, 1};
    const int8_t k[3] = {2, 2, 5};
    const float ks[3] = {1, 1, 1};
    const int32_t qpos[3] = {1, 0, -1}, kpos[3] = {0, 1, 2};
    float out[3] = {0, 0, 0.25f};
    attn_colmax_i8__scalar(out, 3, q, 3, qpos, NULL, k, ks, kpos, 3, 1, 1.0f);
    cr_assert(out[0] == 1.0f && out[1] == 0.5f && out[2] == 0.25f, "%g %g %g", out[0], out[1],
              out[2]);
    /* the same with the rows' log-sum-exps given: log(2 e^2), 2, and -inf (no key) */
    const float lse[3] = {2.0f + logf(2.0f), 2.0f, -INFINITY};
    float given[3] = {0, 0, 0.25f};
    attn_colmax_i8__scalar(given, 3, q, 3, qpos, lse, k, ks, kpos, 3, 1, 1.0f);
    cr_assert(fabsf(given[0] - 1.0f) < 1e-6f && fabsf(given[1] - 0.5f) < 1e-6f && given[2] == 0.25f,
              "%g %g %g", given[0], given[1], given[2]);
}
