/* The fused prefill attention (ops.h attn_rows_i8) of every ISA table that has one against the
 * plain C reference (simd/attn-rows-scalar.c), and the reference against values worked out by
 * hand.
 *
 * Cases: 1 to 130 query rows (every count to 17, around the 4-, 8- and 16-row vectors and the
 * 64-row passes), rows of 1 to 256 values (Gemma 3's heads), 1 to 300 keys (around the 4-key score
 * blocks, key pairs and 64-key steps); key positions with gaps (a compressed cache), rows that see
 * every key, only some (causal), a sliding window, or none; random values, the int8 extremes at a
 * large scale, and equal scores.
 *
 * Tolerance per output value, and why: the kernel rounds each query row to int16 (each value
 * moves by at most max|q| / 65534) and each step's weights p_j v_scale_j to int16 (by at most
 * the largest / 65534). A score error of at most D moves the normalized weights by a factor in
 * [e^-2D, e^2D], so the output by at most 2 (e^2D - 1) max|v|; the weight rounding adds at most
 * max_j(p_j v_scale_j) / 65534 * sum_j |v_j|; 1% slack and 1e-5 relative for f32 around them. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ops.h"
#include "test-rng.h"

enum fill { RANDOM, EXTREME, EQUAL };
enum sight { CAUSAL, WINDOW, NONE_FOR_SOME };

struct attn_case {
    int n_q, d, n_k;
    int32_t window;
    float *q, *k_scale, *v_scale, *out_ref, *out, *lse_ref, *lse;
    int8_t *k, *v;
    int32_t *qpos, *kpos;
};

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n + 1, size); /* + 1: never 0 bytes */
    cr_assert_not_null(p);
    return p;
}

static void case_make(struct attn_case *c, int n_q, int d, int n_k, enum fill f, enum sight s) {
    *c = (struct attn_case){.n_q = n_q, .d = d, .n_k = n_k};
    c->q = xcalloc((size_t)n_q * d, sizeof *c->q);
    c->out_ref = xcalloc((size_t)n_q * d, sizeof *c->out_ref);
    c->out = xcalloc((size_t)n_q * d, sizeof *c->out);
    c->lse_ref = xcalloc(n_q, sizeof *c->lse_ref);
    c->lse = xcalloc(n_q, sizeof *c->lse);
    c->k = xcalloc((size_t)n_k * d, 1);
    c->v = xcalloc((size_t)n_k * d, 1);
    c->k_scale = xcalloc(n_k, sizeof *c->k_scale);
    c->v_scale = xcalloc(n_k, sizeof *c->v_scale);
    c->qpos = xcalloc(n_q, sizeof *c->qpos);
    c->kpos = xcalloc(n_k, sizeof *c->kpos);
    int32_t p = 0;
    for (int j = 0; j < n_k; j++) { /* gaps of 0-2 positions: rows evicted in between */
        p += 1 + (int32_t)((rng_uniform() + 1.0f) * 1.5f);
        c->kpos[j] = p;
    }
    for (size_t i = 0; i < (size_t)n_k * d; i++) {
        c->k[i] = f == RANDOM    ? (int8_t)(127.0f * rng_uniform())
                  : f == EXTREME ? (int8_t)((i & 1) ? 127 : -127)
                                 : 127;
        c->v[i] = f == RANDOM ? (int8_t)(127.0f * rng_uniform()) : (int8_t)((i % 3) ? 127 : -127);
    }
    for (int j = 0; j < n_k; j++) {
        c->k_scale[j] = f == EXTREME ? 1e3f : f == EQUAL ? 0.01f : 0.05f * (1.0f + rng_uniform());
        c->v_scale[j] = f == EXTREME ? 1e3f : 0.05f * (1.0f + rng_uniform());
    }
    for (size_t i = 0; i < (size_t)n_q * d; i++)
        c->q[i] = f == EQUAL ? 1.5f : 2.0f * rng_uniform();
    /* rows of 3 heads per token, the last tokens of the prompt: the newest keys are in some
     * rows' future; with NONE_FOR_SOME the first rows come before every key */
    const int32_t last = c->kpos[n_k - 1];
    for (int r = 0; r < n_q; r++) {
        const int back = (n_q - 1 - r) / 3;
        c->qpos[r] = s == NONE_FOR_SOME && r < 4 ? c->kpos[0] - 1 - r : last - back;
    }
    c->window = s == WINDOW ? 7 : 0;
}

static void case_free(struct attn_case *c) {
    free(c->q), free(c->out_ref), free(c->out), free(c->lse_ref), free(c->lse), free(c->k);
    free(c->v);
    free(c->k_scale), free(c->v_scale), free(c->qpos), free(c->kpos);
}

static bool visible(const struct attn_case *c, int r, int j) {
    return c->kpos[j] <= c->qpos[r] && (c->window == 0 || c->kpos[j] > c->qpos[r] - c->window);
}

/* The largest error of row r's scores (the int16 rounding of the query, 1e-5 for f32), and
 * its largest score (-inf when it sees no key). */
static double score_error(const struct attn_case *c, int r, float mul, double *smax) {
    const int d = c->d;
    double qmax = 0, dmax = 0;
    *smax = -INFINITY;
    /* not fmax: aarch64 gcc 12 -O3 dies vectorizing that reduction here (internal compiler error
     * in vect_transform_reduction); the same maximum, as q holds no NaN */
    for (int x = 0; x < d; x++) {
        const double a = fabs(c->q[(size_t)r * d + x]);
        qmax = a > qmax ? a : qmax;
    }
    for (int j = 0; j < c->n_k; j++) {
        if (!visible(c, r, j))
            continue;
        double s = 0, k1 = 0, m = 0;
        for (int x = 0; x < d; x++) {
            s += (double)c->q[(size_t)r * d + x] * c->k[(size_t)j * d + x];
            k1 += abs(c->k[(size_t)j * d + x]);
            m += fabs((double)c->q[(size_t)r * d + x] * c->k[(size_t)j * d + x]);
        }
        const double ks = (double)c->k_scale[j] * mul;
        *smax = fmax(*smax, s * ks);
        dmax = fmax(dmax, ks * (1.01 * qmax / 65534.0 * k1 + 1e-5 * m));
    }
    return dmax;
}

/* The bound of the header for every dim of output row r, from the reference's own softmax, into
 * tol[0 .. d). What does not depend on the dim (the scores' error, the largest score, the sum and
 * the largest weight) is worked out once per row: the bound is the same number as per dim, in a
 * fraction of the time (the test runs under qemu too). */
static void bounds(const struct attn_case *c, int r, float mul, double *tol) {
    const int d = c->d;
    double smax, l = 0, wmax = 0;
    const double dmax = score_error(c, r, mul, &smax);
    if (smax == -INFINITY) {
        for (int i = 0; i < d; i++)
            tol[i] = 0.0; /* no key: the output must be exactly 0 */
        return;
    }
    double *dot = xcalloc(c->n_k, sizeof *dot);
    for (int j = 0; j < c->n_k; j++)
        if (visible(c, r, j)) {
            for (int x = 0; x < d; x++)
                dot[j] += (double)c->q[(size_t)r * d + x] * c->k[(size_t)j * d + x];
            l += exp(dot[j] * c->k_scale[j] * mul - smax);
        }
    for (int j = 0; j < c->n_k; j++)
        if (visible(c, r, j))
            wmax = fmax(wmax, exp(dot[j] * c->k_scale[j] * mul - smax) / l * c->v_scale[j]);
    free(dot);
    for (int i = 0; i < d; i++) {
        double umax = 0, v1 = 0;
        for (int j = 0; j < c->n_k; j++)
            if (visible(c, r, j)) {
                umax = fmax(umax, fabs((double)c->v_scale[j] * c->v[(size_t)j * d + i]));
                v1 += abs(c->v[(size_t)j * d + i]);
            }
        const double mix = 2.0 * fmin(expm1(2.0 * dmax), 1.0) * umax;
        tol[i] = mix + 1.01 * wmax / 65534.0 * v1 + 1e-5 * umax + 1e-30;
    }
}

static void check_case(const struct simd_ops *ops, int n_q, int d, int n_k, enum fill f,
                       enum sight s) {
    struct attn_case c;
    case_make(&c, n_q, d, n_k, f, s);
    const float mul = 0.125f;
    attn_rows_i8__scalar(c.out_ref, c.lse_ref, c.q, n_q, c.qpos, c.k, c.k_scale, c.v, c.v_scale,
                         c.kpos, n_k, d, mul, c.window);
    ops->attn_rows_i8(c.out, c.lse, c.q, n_q, c.qpos, c.k, c.k_scale, c.v, c.v_scale, c.kpos, n_k,
                      d, mul, c.window);
    for (int r = 0; r < n_q; r++) { /* the log-sum-exp moves by at most the scores' error */
        double smax;
        const double ds = score_error(&c, r, mul, &smax);
        if (smax == -INFINITY)
            cr_assert(c.lse[r] == -INFINITY && c.lse_ref[r] == -INFINITY, "row %d: lse %g", r,
                      (double)c.lse[r]);
        else
            cr_assert(fabs((double)c.lse[r] - c.lse_ref[r]) <=
                          ds + 1e-5 * fabs(c.lse_ref[r]) + 1e-6,
                      "%s n_q=%d d=%d n_k=%d: row %d lse got %.9g want %.9g", ops->isa, n_q, d, n_k,
                      r, (double)c.lse[r], (double)c.lse_ref[r]);
    }
    double *tol = xcalloc(d, sizeof *tol);
    for (int r = 0; r < n_q; r++) {
        bounds(&c, r, mul, tol);
        for (int i = 0; i < d; i++) {
            const size_t at = (size_t)r * d + i;
            cr_assert(fabs((double)c.out[at] - c.out_ref[at]) <= tol[i],
                      "%s n_q=%d d=%d n_k=%d fill %d sight %d: row %d dim %d got %.9g want %.9g "
                      "(tol %.3g)",
                      ops->isa, n_q, d, n_k, (int)f, (int)s, r, i, (double)c.out[at],
                      (double)c.out_ref[at], tol[i]);
        }
    }
    free(tol);
    case_free(&c);
}

/* The tables that carry the kernel (on x86 the VNNI and AVX2 ones, on Arm the NEON one). */
static int for_each_kernel(void (*fn)(const struct simd_ops *)) {
    const char *isas[] = {"avx512", "avx2", "neon"};
    int ran = 0;
    for (int i = 0; i < 3; i++) {
        const struct simd_ops *ops = simd_ops_by_name(isas[i]);
        if (ops && ops->attn_rows_i8) {
            fn(ops);
            ran++;
        }
    }
    return ran;
}

static void sweep(const struct simd_ops *ops) {
    rng_seed(11);
    const int nqs[] = {1, 3, 16, 17, 48, 64, 65, 112, 130};
    const int ds[] = {64, 1, 7, 16, 17, 33, 63, 65, 80, 100, 127, 128, 200, 255, 256};
    const int nks[] = {1, 2, 3, 4, 5, 63, 64, 65, 127, 129, 300};
    int n = 0;
    for (size_t a = 0; a < sizeof nqs / sizeof nqs[0]; a++)
        for (size_t b = 0; b < sizeof ds / sizeof ds[0]; b++) {
            const int k = nks[(a * 5 + b * 3) % (sizeof nks / sizeof nks[0])];
            check_case(ops, nqs[a], ds[b], k, n % 4 == 3 ? EXTREME : RANDOM, (enum sight)(n % 3));
            n++;
        }
    for (size_t b = 0; b < sizeof nks / sizeof nks[0]; b++) { /* every key count at 64 dims */
        check_case(ops, 48, 64, nks[b], RANDOM, CAUSAL);
        check_case(ops, 64, 128, nks[b], RANDOM, WINDOW);
    }
    check_case(ops, 64, 64, 600, EQUAL, CAUSAL);
    check_case(ops, 48, 128, 257, EXTREME, NONE_FOR_SOME);
    check_case(ops, 64, 256, 130, EQUAL, WINDOW); /* the int32 score sums at their largest */
    /* every row count up to two 4-row vectors and one more (NEON's lanes: a row quad partly
     * padding, chunks of 1-3 quads), key counts off the 4-key blocks */
    const int tds[] = {1, 7, 17, 64, 65, 100, 128, 255, 256};
    const int tks[] = {1, 2, 3, 5, 6, 7, 9, 13, 66, 67, 131};
    for (int nq = 1; nq <= 9; nq++) {
        check_case(ops, nq, tds[nq - 1], tks[(nq * 7) % 11], nq % 4 == 3 ? EXTREME : RANDOM,
                   (enum sight)(nq % 3));
        check_case(ops, nq, 64, tks[(nq * 3 + 1) % 11], RANDOM, (enum sight)((nq + 1) % 3));
    }
}

/* The kernels this CPU must run: each ISA table's own, so that a table losing its kernel (and
 * the sweeps with it) fails here instead of passing on the tables that remain. */
static int kernels_expected(void) {
    int n = 0;
#if defined(__x86_64__) && defined(ADAKV_BUILD_AVX512)
    const struct simd_ops *avx512 = simd_ops_by_name("avx512");
    if (avx512 && avx512->attn_qk_i8 == attn_qk_i8__avx512vnni) {
        cr_assert(avx512->attn_rows_i8 == attn_rows_i8__avx512vnni,
                  "a VNNI CPU must run the VNNI kernel of attn_rows_i8");
        n++;
    }
#endif
#if defined(__x86_64__) && defined(ADAKV_BUILD_AVX2)
    const struct simd_ops *avx2 = simd_ops_by_name("avx2");
    if (avx2) {
        cr_assert(avx2->attn_rows_i8 == attn_rows_i8__avx2,
                  "an AVX2 CPU must run the AVX2 kernel of attn_rows_i8");
        n++;
    }
#endif
#if defined(__aarch64__) && defined(ADAKV_BUILD_NEON)
    const struct simd_ops *neon = simd_ops_by_name("neon");
    if (neon) {
        cr_assert(neon->attn_rows_i8 == attn_rows_i8__neon,
                  "a NEON CPU must have the NEON kernel of attn_rows_i8");
        n++;
    }
#endif
    return n;
}

Test(attn_rows, kernels_match_reference) {
    const int ran = for_each_kernel(sweep);
    cr_assert_eq(ran, kernels_expected(), "%d tables ran the sweep", ran);
}

/* Around the AVX2 kernel's 8-row vectors: every row count to 17 (it walks the row vectors two
 * at a time and an odd last one alone, and masks the rows past n_q in the last), odd vector
 * counts (5, 7) and passes ending 1 or 7 rows into a vector, each with key counts that end
 * inside a 4-key score block, a key pair and a 64-key step. */
static void lane_tails(const struct simd_ops *ops) {
    rng_seed(23);
    const int ds[] = {64, 7, 24, 100, 1, 17, 128, 33};
    const int nks[] = {1, 2, 3, 5, 6, 7, 9, 62, 66, 67, 131};
    const int nqs[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13,
                       14, 15, 16, 17, 24, 25, 40, 56, 57, 63, 72, 121};
    for (size_t a = 0; a < sizeof nqs / sizeof nqs[0]; a++)
        check_case(ops, nqs[a], ds[a % 8], nks[a % 11], a % 4 == 3 ? EXTREME : RANDOM,
                   (enum sight)(a % 3));
}

Test(attn_rows, lane_tails_match_reference) {
    const int ran = for_each_kernel(lane_tails);
    cr_assert_eq(ran, kernels_expected(), "%d tables ran the tails", ran);
}

/* The reference by hand: equal scores give the plain mean of the visible values; a row before
 * every key gives zeros; one visible key gives its value. */
Test(attn_rows, reference_by_hand) {
    enum { D = 3, NK = 4 };
    const float q[2 * D] = {1, 1, 1, 1, 1, 1};
    const int8_t k[NK * D] = {0}; /* every score 0 */
    const int8_t v[NK * D] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120};
    const float ks[NK] = {1, 1, 1, 1}, vs[NK] = {0.5f, 0.5f, 0.5f, 0.5f};
    const int32_t kpos[NK] = {0, 2, 5, 9};
    const int32_t qpos[2] = {5, 9};
    float out[2 * D], lse[2];
    attn_rows_i8__scalar(out, lse, q, 2, qpos, k, ks, v, vs, kpos, NK, D, 1.0f, 0);
    cr_assert_float_eq(lse[0], logf(3.0f), 1e-6f); /* three scores of 0 */
    cr_assert_float_eq(lse[1], logf(4.0f), 1e-6f);
    /* row 0 sees keys 0, 2, 5: mean of (10, 40, 70) * 0.5 = 20, (20, 50, 80) = 25, ... */
    cr_assert_float_eq(out[0], 20.0f, 1e-5f);
    cr_assert_float_eq(out[1], 25.0f, 1e-5f);
    cr_assert_float_eq(out[2], 30.0f, 1e-5f);
    cr_assert_float_eq(out[3], 0.5f * (10 + 40 + 70 + 100) / 4.0f, 1e-5f);
    /* window 3 at position 9: only keys at 7..9, i.e. the last one */
    attn_rows_i8__scalar(out, NULL, q, 2, qpos, k, ks, v, vs, kpos, NK, D, 1.0f, 3);
    cr_assert_float_eq(out[3], 50.0f, 1e-5f);
    cr_assert_float_eq(out[5], 60.0f, 1e-5f);
    /* row 0 at 5 with window 3 sees key 5 only */
    cr_assert_float_eq(out[0], 35.0f, 1e-5f);
    const int32_t early[2] = {-1, -1};
    attn_rows_i8__scalar(out, lse, q, 2, early, k, ks, v, vs, kpos, NK, D, 1.0f, 0);
    for (int i = 0; i < 2 * D; i++)
        cr_assert(out[i] == 0.0f);
    cr_assert(lse[0] == -INFINITY && lse[1] == -INFINITY);
}
