/* Prefill attention over an int8 KV cache, NEON, with the query rows in the lanes: the algorithm
 * of attn-rows-vnni.c (which says why rows in lanes) with four rows per vector. ARMv8.0 Advanced
 * SIMD only, so one table entry serves every core (arm-check's Cortex-A57 pass would die on an
 * SDOT). Up to 64 rows per pass, as the VNNI kernel: a work item of the forward pass is 16 tokens
 * x G heads (48-64 rows), and a pass widens each key and value row to int16 once for all its
 * rows.
 *
 * Why int16 and SMLAL by element: the baseline has no int16 pair dot (vpdpwssd), and SDOT
 * multiplies int8 only, which would round queries and weights to 2^-8 of a row's largest
 * instead of 2^-16. SMLAL (vmlal_laneq_s16) takes its scalar from a lane of a register, so a
 * key's (or a value row's) eight dims are loaded once and each lane multiplies four rows' int16
 * with no broadcast; four products per instruction, like an f32 FMA, at half the bytes of
 * f32 operands. The rounding of queries and weights is the VNNI kernel's, so the tolerance of
 * tests/test_attn_rows.c covers both, and a row's result depends on no other row of the pass.
 *
 * Registers (32): the scores keep 4 keys x 4 row quads of int32 sums, the 4 keys' int16 dims
 * (by-element operands of 16-bit SMLAL must sit in v0-v15) and the 4 quads' queries: 24. The
 * values keep 8 dims x 2 row quads of sums, a value row and 2 weight quads: 19.
 *
 * Integer sums are exact: scores |q| <= 32767, |k| <= 128, d <= 256 (<= 2^30); values |w| <=
 * 32767, |v| <= 128, KS = 64 keys per step (<= 2^28). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "neon-tail.h"
#include "ops.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

enum {
    RP = 64,             /* rows per pass */
    NQ = RP / 4,         /* row quads per pass */
    SQ = 4,              /* row quads per chunk of the scores */
    KS = 64,             /* keys per online-softmax step */
    DM = ATTN_ROWS_DMAX, /* dims of the longest row, a multiple of 8 */
};

/* State of one pass of up to 64 rows, in the lanes; dims are handled in blocks of 8, so every
 * dim array holds zeros from d up to d rounded up to 8. */
struct rows_pass {
    /* qt[c][i][x]: dim i of row 16 c + x, int16: a scores chunk reads one contiguous block */
    int16_t qt[RP / (4 * SQ)][DM][4 * SQ];
    float acc[DM][RP];  /* acc[i][r]: dim i of row r, f32 */
    float st[KS][RP];   /* st[j][r]: scores, then weights, of the step's keys */
    int16_t wt[KS][RP]; /* wt[j][r]: the weights rounded to int16 with the row's step scale */
    int16_t vp[KS][DM]; /* vp[j][i]: the step's values as int16 */
    float qsm[RP];      /* per row: mul * its query scale */
    int32_t qp[RP];     /* per row: its position (a padding row takes the last row's) */
    float m[RP], l[RP]; /* running max and sum */
};

/* exp(x) for x <= 0 (a score minus its row's running maximum, or -inf), inline, for the reasons
 * of the VNNI kernel's exp_nonpos and with its polynomial (Cephes exp2f, relative error
 * ~2e-7). 2^n is built in the exponent bits, which reach normals only: below 2^-126 the result
 * is exactly 0 (so -inf, a masked key, gives 0, never NaN); such a weight is far below the
 * int16 rounding (2^-15 of the row's largest) and the f32 sum's ulp (the sum is >= 1). */
static ALWAYS_INLINE float32x4_t exp_nonpos(float32x4_t x) {
    const float32x4_t t = vmulq_n_f32(x, 1.44269504088896341f);
    const uint32x4_t live = vcgtq_f32(t, vdupq_n_f32(-126.0f));
    const float32x4_t n = vrndnq_f32(t);
    /* t - n is NaN at t = -inf: zeroed, so the polynomial stays finite and the mask wins */
    const float32x4_t f =
        vreinterpretq_f32_u32(vandq_u32(live, vreinterpretq_u32_f32(vsubq_f32(t, n))));
    float32x4_t p = vdupq_n_f32(1.535336188319500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.339887440266574e-3f), p, f);
    p = vfmaq_f32(vdupq_n_f32(9.618437357674640e-3f), p, f);
    p = vfmaq_f32(vdupq_n_f32(5.550332471162809e-2f), p, f);
    p = vfmaq_f32(vdupq_n_f32(2.402264791363012e-1f), p, f);
    p = vfmaq_f32(vdupq_n_f32(6.931472028550421e-1f), p, f);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, f);
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    const float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vandq_u32(live, vreinterpretq_u32_f32(y)));
}

/* Elements i .. i + 8 of an int8 row of d as int16, zeros past d. */
static ALWAYS_INLINE int16x8_t load8_i8(const int8_t *row, int i, int d) {
    if (i + 8 <= d)
        return vmovl_s8(vld1_s8(row + i));
    int8_t buf[8] = {0};
    memcpy(buf, row + i, (size_t)(d - i));
    return vmovl_s8(vld1_s8(buf));
}

/* o[i] = round(x[i] * 32767 / max|x|) for i < d and 0 for d <= i < d8, as avx512_row_to_q16
 * (avx512-q16.h); returns max|x| / 32767 (0 for an all-zero row). */
static float row_to_q16(int16_t *o, const float *x, int d, int d8) {
    float32x4_t mx = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 4 <= d; i += 4)
        mx = vmaxq_f32(mx, vabsq_f32(vld1q_f32(x + i)));
    if (i < d)
        mx = vmaxq_f32(mx, vabsq_f32(neon_load_tail(x + i, d - i, 0.0f)));
    const float amax = vmaxvq_f32(mx);
    const float32x4_t inv = vdupq_n_f32(amax > 0.0f ? 32767.0f / amax : 0.0f);
    for (i = 0; i < d8; i += 4) {
        const float32x4_t v = i + 4 <= d ? vld1q_f32(x + i)
                              : i < d    ? neon_load_tail(x + i, d - i, 0.0f)
                                         : vdupq_n_f32(0.0f);
        vst1_s16(o + i, vqmovn_s32(vcvtnq_s32_f32(vmulq_f32(v, inv))));
    }
    return amax / 32767.0f;
}

/* Rounds rows 0..nr of q to int16 (zero past d and past nr), transposes them into ps->qt, four
 * rows at a time through zips, and sets the scales, positions and softmax state. */
static void pass_begin(struct rows_pass *ps, const float *q, const int32_t *qpos, int nr, int d,
                       float mul, int nq) {
    const int d8 = (d + 7) & ~7;
    for (int g = 0; g < nq; g++) {
        _Alignas(16) int16_t q16[4][DM];
        for (int x = 0; x < 4; x++) {
            const int r = 4 * g + x;
            ps->qp[r] = qpos[r < nr ? r : nr - 1];
            ps->m[r] = -INFINITY;
            ps->l[r] = 0.0f;
            if (r < nr) {
                ps->qsm[r] = row_to_q16(q16[x], q + (size_t)r * d, d, d8) * mul;
            } else {
                ps->qsm[r] = 0.0f;
                memset(q16[x], 0, (size_t)d8 * sizeof q16[x][0]);
            }
        }
        int16_t *qt = &ps->qt[g / SQ][0][4 * (g % SQ)];
        for (int i0 = 0; i0 < d8; i0 += 8) {
            const int16x8_t r0 = vld1q_s16(q16[0] + i0), r1 = vld1q_s16(q16[1] + i0);
            const int16x8_t r2 = vld1q_s16(q16[2] + i0), r3 = vld1q_s16(q16[3] + i0);
            /* pairs of rows per dim, then the four rows of dims (2m, 2m + 1) per vector */
            const int32x4_t a0 = vreinterpretq_s32_s16(vzip1q_s16(r0, r1));
            const int32x4_t a1 = vreinterpretq_s32_s16(vzip2q_s16(r0, r1));
            const int32x4_t b0 = vreinterpretq_s32_s16(vzip1q_s16(r2, r3));
            const int32x4_t b1 = vreinterpretq_s32_s16(vzip2q_s16(r2, r3));
            const int16x8_t c[4] = {vreinterpretq_s16_s32(vzip1q_s32(a0, b0)),
                                    vreinterpretq_s16_s32(vzip2q_s32(a0, b0)),
                                    vreinterpretq_s16_s32(vzip1q_s32(a1, b1)),
                                    vreinterpretq_s16_s32(vzip2q_s32(a1, b1))};
            for (int m = 0; m < 4; m++) {
                vst1_s16(qt + (size_t)(i0 + 2 * m) * 4 * SQ, vget_low_s16(c[m]));
                vst1_s16(qt + (size_t)(i0 + 2 * m + 1) * 4 * SQ, vget_high_s16(c[m]));
            }
        }
    }
    for (int i = 0; i < d8; i++)
        memset(ps->acc[i], 0, (size_t)nq * 4 * sizeof ps->acc[i][0]);
}

/* One dim (lane l of the keys' 8-dim vectors) of the scores of 4 keys x NG quads. */
#define SCORES_DIM(l)                                                                              \
    for (int g = 0; g < NG; g++) {                                                                 \
        const int16x4_t qv = vld1_s16(qr + (l)*4 * SQ + 4 * g);                                    \
        for (int b = 0; b < 4; b++)                                                                \
            a[b][g] = vmlal_laneq_s16(a[b][g], qv, kv[b], l);                                      \
    }

/* Scores of the 4 keys in kw (kw[b * DM ..], slots jt .. jt + nb of st; zero rows past nb) against
 * the NG quads of scores chunk c, their maximum folded into mt (saves a pass over st when no key of
 * the step is masked). */
static ALWAYS_INLINE void scores_chunk(struct rows_pass *ps, float32x4_t *mt, const int16_t *kw,
                                       const float *ks, int jt, int nb, int c, int d8,
                                       const int NG) {
    int32x4_t a[4][SQ];
    for (int b = 0; b < 4; b++)
        for (int g = 0; g < NG; g++)
            a[b][g] = vdupq_n_s32(0);
    for (int i0 = 0; i0 < d8; i0 += 8) {
        int16x8_t kv[4];
        for (int b = 0; b < 4; b++)
            kv[b] = vld1q_s16(kw + b * DM + i0);
        const int16_t *qr = ps->qt[c][i0];
        SCORES_DIM(0)
        SCORES_DIM(1)
        SCORES_DIM(2)
        SCORES_DIM(3)
        SCORES_DIM(4)
        SCORES_DIM(5)
        SCORES_DIM(6)
        SCORES_DIM(7)
    }
    for (int b = 0; b < nb; b++)
        for (int g = 0; g < NG; g++) {
            const int r = 4 * (SQ * c + g);
            const float32x4_t sc =
                vmulq_f32(vcvtq_f32_s32(a[b][g]), vmulq_n_f32(vld1q_f32(ps->qsm + r), ks[b]));
            mt[SQ * c + g] = vmaxq_f32(mt[SQ * c + g], sc);
            vst1q_f32(ps->st[jt + b] + r, sc);
        }
}

/* One dim (lane l of the value row) of the weighted sums of NG quads. */
#define VALUES_DIM(l)                                                                              \
    for (int g = 0; g < NG; g++)                                                                   \
        a[l][g] = vmlal_laneq_s16(a[l][g], w[g], vv, l);

/* acc[dims i0 .. i0 + 8][quads g0 .. g0 + NG] = corr acc + sw * sum over the step's keys of
 * w16 * v16 (the online softmax's rescale of the old sums rides on the epilogue). */
static ALWAYS_INLINE void values_block(struct rows_pass *ps, const float32x4_t *sw,
                                       const float32x4_t *corr, int g0, int i0, int kt,
                                       const int NG) {
    int32x4_t a[8][2];
    for (int x = 0; x < 8; x++)
        for (int g = 0; g < NG; g++)
            a[x][g] = vdupq_n_s32(0);
    for (int j = 0; j < kt; j++) {
        const int16x8_t vv = vld1q_s16(ps->vp[j] + i0);
        int16x4_t w[2];
        for (int g = 0; g < NG; g++)
            w[g] = vld1_s16(ps->wt[j] + 4 * (g0 + g));
        VALUES_DIM(0)
        VALUES_DIM(1)
        VALUES_DIM(2)
        VALUES_DIM(3)
        VALUES_DIM(4)
        VALUES_DIM(5)
        VALUES_DIM(6)
        VALUES_DIM(7)
    }
    for (int x = 0; x < 8; x++)
        for (int g = 0; g < NG; g++) {
            float *o = ps->acc[i0 + x] + 4 * (g0 + g);
            vst1q_f32(o, vfmaq_f32(vmulq_f32(vld1q_f32(o), corr[g0 + g]), vcvtq_f32_s32(a[x][g]),
                                   sw[g0 + g]));
        }
}

/* One step: keys j0 .. j0 + kt folded into the pass's softmax state and accumulators. */
static void pass_step(struct rows_pass *ps, const int8_t *k, const float *k_scale, const int8_t *v,
                      const float *v_scale, const int32_t *kpos, int j0, int kt, int d,
                      int32_t window, int32_t qmin, int32_t qmax, int nq) {
    const int d8 = (d + 7) & ~7, nc = (nq + SQ - 1) / SQ;
    const float32x4_t ninf = vdupq_n_f32(-INFINITY), zero = vdupq_n_f32(0.0f);
    float32x4_t mt[NQ];
    for (int g = 0; g < nq; g++)
        mt[g] = ninf;
    for (int jt = 0; jt < kt; jt += 4) {
        const int nb = kt - jt < 4 ? kt - jt : 4;
        _Alignas(16) int16_t kw[4][DM];
        float ks[4];
        for (int b = 0; b < 4; b++) { /* zero rows past the step */
            ks[b] = b < nb ? k_scale[j0 + jt + b] : 0.0f;
            for (int i0 = 0; i0 < d8; i0 += 8)
                vst1q_s16(kw[b] + i0,
                          b < nb ? load8_i8(k + (size_t)(j0 + jt + b) * d, i0, d) : vdupq_n_s16(0));
        }
        for (int c = 0; c < nc; c++) {
            const int ng = nq - SQ * c < SQ ? nq - SQ * c : SQ;
            if (ng == 4)
                scores_chunk(ps, mt, kw[0], ks, jt, nb, c, d8, 4);
            else if (ng == 3)
                scores_chunk(ps, mt, kw[0], ks, jt, nb, c, d8, 3);
            else if (ng == 2)
                scores_chunk(ps, mt, kw[0], ks, jt, nb, c, d8, 2);
            else
                scores_chunk(ps, mt, kw[0], ks, jt, nb, c, d8, 1);
        }
    }
    bool masked = false; /* then mt is recomputed over what the rows may see */
    for (int jt = 0; jt < kt; jt++) {
        const int32_t kp = kpos[j0 + jt];
        if (kp <= qmin && !(window && kp <= qmax - window))
            continue; /* every row sees this key */
        const int32x4_t kv = vdupq_n_s32(kp);
        uint32x4_t any = vdupq_n_u32(0);
        for (int g = 0; g < nq; g++) {
            const int32x4_t qp = vld1q_s32(ps->qp + 4 * g);
            uint32x4_t out = vcgtq_s32(kv, qp);
            if (window)
                out = vorrq_u32(out, vcleq_s32(kv, vsubq_s32(qp, vdupq_n_s32(window))));
            float *s = ps->st[jt] + 4 * g;
            vst1q_f32(s, vbslq_f32(out, ninf, vld1q_f32(s)));
            any = vorrq_u32(any, out);
        }
        masked |= vmaxvq_u32(any) != 0;
    }
    float32x4_t sw[NQ], corr[NQ];
    for (int g = 0; g < nq; g++) {
        const int r = 4 * g;
        if (masked) {
            mt[g] = ninf;
            for (int jt = 0; jt < kt; jt++)
                mt[g] = vmaxq_f32(mt[g], vld1q_f32(ps->st[jt] + r));
        }
        const float32x4_t m_old = vld1q_f32(ps->m + r), m_new = vmaxq_f32(m_old, mt[g]);
        /* a row that has seen no key yet keeps shift 0: exp(-inf - 0) = 0, never inf - inf */
        const float32x4_t shift = vbslq_f32(vceqq_f32(m_new, ninf), zero, m_new);
        corr[g] = exp_nonpos(vsubq_f32(m_old, shift));
        vst1q_f32(ps->m + r, m_new);
        float32x4_t lsum = zero, amax = zero;
        for (int jt = 0; jt < kt; jt++) {
            float *s = ps->st[jt] + r;
            const float32x4_t p = exp_nonpos(vsubq_f32(vld1q_f32(s), shift));
            lsum = vaddq_f32(lsum, p);
            const float32x4_t w = vmulq_n_f32(p, v_scale[j0 + jt]); /* >= 0 */
            amax = vmaxq_f32(amax, w);
            vst1q_f32(s, w);
        }
        vst1q_f32(ps->l + r, vfmaq_f32(lsum, vld1q_f32(ps->l + r), corr[g]));
        /* a row whose weights are all 0 (it saw no key of the step) gets weights 0, not 0/0 */
        const float32x4_t inv =
            vbslq_f32(vcgtq_f32(amax, zero), vdivq_f32(vdupq_n_f32(32767.0f), amax), zero);
        sw[g] = vmulq_n_f32(amax, 1.0f / 32767.0f);
        for (int jt = 0; jt < kt; jt++)
            vst1_s16(ps->wt[jt] + r,
                     vqmovn_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(ps->st[jt] + r), inv))));
    }
    for (int jt = 0; jt < kt; jt++) {
        const int8_t *vr = v + (size_t)(j0 + jt) * d;
        for (int i0 = 0; i0 < d8; i0 += 8)
            vst1q_s16(ps->vp[jt] + i0, load8_i8(vr, i0, d));
    }
    for (int g0 = 0; g0 < nq; g0 += 2)
        for (int i0 = 0; i0 < d8; i0 += 8) {
            if (nq - g0 >= 2)
                values_block(ps, sw, corr, g0, i0, kt, 2);
            else
                values_block(ps, sw, corr, g0, i0, kt, 1);
        }
}

/* out and lse of rows 0 .. nr from the pass's sums: acc / l, transposed back to rows four dims
 * by four rows at a time. */
static void pass_end(struct rows_pass *ps, float *out, float *lse, int nr, int d, int nq) {
    for (int g = 0; g < nq; g++) {
        const int r0 = 4 * g;
        const float32x4_t l = vld1q_f32(ps->l + r0);
        /* rows that saw no key have l = 0: their output is 0, not 0/0 */
        const float32x4_t inv = vbslq_f32(vcgtq_f32(l, vdupq_n_f32(0.0f)),
                                          vdivq_f32(vdupq_n_f32(1.0f), l), vdupq_n_f32(0.0f));
        const int rows = nr - r0 < 4 ? nr - r0 : 4;
        if (lse) /* m + log l, -inf where no key was seen (-inf + log 0) */
            for (int x = 0; x < rows; x++)
                lse[r0 + x] = ps->m[r0 + x] + logf(ps->l[r0 + x]);
        for (int i0 = 0; i0 < d; i0 += 4) { /* acc holds zeros up to d rounded up to 8 */
            const float32x4_t a0 = vmulq_f32(vld1q_f32(ps->acc[i0] + r0), inv);
            const float32x4_t a1 = vmulq_f32(vld1q_f32(ps->acc[i0 + 1] + r0), inv);
            const float32x4_t a2 = vmulq_f32(vld1q_f32(ps->acc[i0 + 2] + r0), inv);
            const float32x4_t a3 = vmulq_f32(vld1q_f32(ps->acc[i0 + 3] + r0), inv);
            const float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(a0, a1));
            const float64x2_t t1 = vreinterpretq_f64_f32(vtrn2q_f32(a0, a1));
            const float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(a2, a3));
            const float64x2_t t3 = vreinterpretq_f64_f32(vtrn2q_f32(a2, a3));
            const float32x4_t row[4] = {vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)),
                                        vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)),
                                        vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)),
                                        vreinterpretq_f32_f64(vtrn2q_f64(t1, t3))};
            for (int x = 0; x < rows; x++) {
                float *o = out + (size_t)(r0 + x) * d + i0;
                if (i0 + 4 <= d)
                    vst1q_f32(o, row[x]);
                else
                    neon_store_tail(o, row[x], d - i0);
            }
        }
    }
}

void attn_rows_i8__neon(float *out, float *lse, const float *q, int n_q, const int32_t *qpos,
                        const int8_t *k, const float *k_scale, const int8_t *v,
                        const float *v_scale, const int32_t *kpos, int n_k, int d, float mul,
                        int32_t window) {
    static _Thread_local struct rows_pass ps __attribute__((aligned(16)));
    for (int r0 = 0; r0 < n_q; r0 += RP) {
        const int nr = n_q - r0 < RP ? n_q - r0 : RP, nq = (nr + 3) / 4;
        int32_t qmin = qpos[r0], qmax = qpos[r0];
        for (int r = 1; r < nr; r++) {
            qmin = qpos[r0 + r] < qmin ? qpos[r0 + r] : qmin;
            qmax = qpos[r0 + r] > qmax ? qpos[r0 + r] : qmax;
        }
        pass_begin(&ps, q + (size_t)r0 * d, qpos + r0, nr, d, mul, nq);
        for (int j0 = 0; j0 < n_k; j0 += KS) {
            const int kt = n_k - j0 < KS ? n_k - j0 : KS;
            pass_step(&ps, k, k_scale, v, v_scale, kpos, j0, kt, d, window, qmin, qmax, nq);
        }
        pass_end(&ps, out + (size_t)r0 * d, lse ? lse + r0 : NULL, nr, d, nq);
    }
}
