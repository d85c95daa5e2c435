/* Prefill attention over an int8 KV cache, AVX-512 VNNI, with the query rows in the lanes: the
 * whole online softmax (scores, masks, exp, weighted values) of up to 64 rows per pass.
 *
 * Why: the decode kernels (attn-qk-vnni.c, attn-av-vnni.c) serve a few rows; in prefill a work
 * item has 16 tokens x G heads = 48-64 rows, and there their horizontal sums (scores) and
 * per-row value passes took 23% of a 4,096-token 1B prompt and ~50% of an 8k-token
 * default-model one. With 16 rows per vector nothing is ever summed across lanes:
 *   - scores: the queries are rounded to int16 (one scale per row, as attn-qk-vnni.c) and
 *     transposed ONCE per call, so lane l of qt[p] holds the dims (2p, 2p+1) of row l; each key
 *     pair of dims is broadcast and vpdpwssd adds 16 rows' products (4 keys x 4 row vectors a
 *     pass). The transposed scores st[key][row] are what the softmax wants;
 *   - softmax: maxima, exp and sums per row are lane-wise vector operations over the keys;
 *   - values: the weights p v_scale are rounded to int16 per row (one scale per row and step of
 *     keys), paired over keys (2j, 2j+1) in the lanes, and each value pair (v_2j[i], v_2j+1[i])
 *     is broadcast: the accumulator of dim i holds 16 rows.
 * The reverted d65b709 did the scores this way but per 128-key call, re-transposing the queries
 * each time and transposing the scores back for the row-major softmax: it lost in the model's
 * 128-key steps what it gained on long runs. Here nothing is transposed per key step.
 *
 * Integer sums are exact: scores |q| <= 32767, |k| <= 128, d <= 256 (<= 2^30); values |w| <=
 * 32767, |v| <= 128, KS = 64 keys per step (< 2^29). The error against the f32 reference is the
 * int16 rounding of queries and weights (2^-16 of a row's largest), as in the decode kernels. */
#include <immintrin.h>
#include <math.h>
#include <sleef.h>
#include <stdint.h>
#include <string.h>

#include "avx512-lanes.h"
#include "avx512-q16.h"
#include "ops.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

enum {
    RG = 4,                   /* row vectors per pass: 64 rows */
    KS = 64,                  /* keys per online-softmax step */
    NP = ATTN_ROWS_DMAX / 2,  /* dim pairs of the longest row */
    VD = ATTN_ROWS_DMAX + 16, /* value pair row: dims padded past the last dim block */
};

/* State of one pass of up to 64 rows, in the lanes. */
struct rows_pass {
    __m512i qt[NP * RG];     /* qt[p * ng + g] lane l: dims (2p, 2p+1) of row 16 g + l, int16 */
    __m512 qsm[RG];          /* per row: mul * its query scale */
    __m512i qp[RG];          /* per row: its position */
    __m512 m[RG], l[RG];     /* running max and sum */
    __m512 acc[VD * RG];     /* acc[i * ng + g]: dim i of the 16 rows of g, f32 */
    float st[KS * RG * 16];  /* st[j * 64 + row]: scores, then weights, of the step's keys */
    __m512i wp[KS / 2 * RG]; /* wp[jp * ng + g] lane l: int16 weights of keys 2jp, 2jp+1 */
    int32_t vp[KS / 2 * VD]; /* vp[jp * VD + i]: int16 values (v_2jp[i], v_2jp+1[i]) */
};

/* exp(x) for x <= 0 (a score minus its row's running maximum, or -inf), inline: 2^(x log2 e) as
 * 2^n times a degree-6 polynomial of the fraction f in [-1/2, 1/2] (Cephes exp2f's coefficients,
 * relative error ~2e-7). Why not Sleef's expf16_u10 (the engine's vector math elsewhere): here it
 * is called once per key and 16 rows, out of line, and took 12% of the kernel; its 1-ulp accuracy
 * buys nothing once the weights are rounded to int16 (2^-15 of a row's largest). Below 2^-150 the
 * result is exactly 0, so -inf (a masked key) gives 0, never NaN. */
static ALWAYS_INLINE __m512 exp_nonpos(__m512 x) {
    const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    const __mmask16 live = _mm512_cmp_ps_mask(t, _mm512_set1_ps(-150.0f), _CMP_GT_OQ);
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_maskz_sub_ps(live, t, n);
    __m512 p = _mm512_set1_ps(1.535336188319500e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440266574e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357674640e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471162809e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791363012e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028550421e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(live, p, n);
}

/* In-register transpose of 16 rows of 16 dwords: r[i] lane c becomes r[c] lane i. */
static ALWAYS_INLINE void transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    /* u[4i + m]: in 128-bit lane L, column 4L + m of rows 4i .. 4i + 3 */
    for (int i = 0; i < 4; i++) {
        u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int m = 0; m < 4; m++) {
        const __m512i x0 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x44);
        const __m512i x1 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xee);
        const __m512i y0 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x44);
        const __m512i y1 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xee);
        r[m] = _mm512_shuffle_i32x4(x0, y0, 0x88);
        r[4 + m] = _mm512_shuffle_i32x4(x0, y0, 0xdd);
        r[8 + m] = _mm512_shuffle_i32x4(x1, y1, 0x88);
        r[12 + m] = _mm512_shuffle_i32x4(x1, y1, 0xdd);
    }
}

/* Rounds rows 0..nr of q to int16 (zero past d and past nr), transposes them into ps->qt and
 * sets the scales, positions (a padding lane takes the last row's) and softmax state. */
static void pass_begin(struct rows_pass *ps, const float *q, const int32_t *qpos, int nr, int d,
                       float mul, int ng) {
    _Alignas(64) int16_t q16[RG * 16][ATTN_ROWS_DMAX];
    _Alignas(64) float qs[RG * 16];
    _Alignas(64) int32_t pos[RG * 16];
    const int w = (d + 31) / 32 * 32; /* int16 values per row that the transposes read */
    for (int r = 0; r < 16 * ng; r++) {
        pos[r] = qpos[r < nr ? r : nr - 1];
        if (r >= nr) {
            memset(q16[r], 0, sizeof q16[r]);
            qs[r] = 0.0f;
            continue;
        }
        qs[r] = avx512_row_to_q16(q16[r], q + (size_t)r * d, d, w) * mul;
    }
    for (int g = 0; g < ng; g++) {
        for (int p0 = 0; p0 < w / 2; p0 += 16) {
            __m512i b[16];
            for (int l = 0; l < 16; l++)
                b[l] = _mm512_load_si512(q16[16 * g + l] + 2 * p0);
            transpose16(b);
            for (int c = 0; c < 16; c++)
                ps->qt[(p0 + c) * ng + g] = b[c];
        }
        ps->qsm[g] = _mm512_load_ps(qs + 16 * g);
        ps->qp[g] = _mm512_load_si512(pos + 16 * g);
        ps->m[g] = _mm512_set1_ps(-INFINITY);
        ps->l[g] = _mm512_setzero_ps();
    }
    for (int i = 0; i < (d + 16) * ng; i++) /* dims past d too: the last block adds to them */
        ps->acc[i] = _mm512_setzero_ps();
}

/* Scores of keys j .. j + 4 (slots jt .. jt + 4 of st) against every row, their maximum folded
 * into mt (saves a pass over st when no key of the step is masked); a key at or past n_k reads
 * as the zero row (its slot is masked out afterwards). */
static ALWAYS_INLINE void scores4(struct rows_pass *ps, __m512 *mt, int jt, const int8_t *k,
                                  const float *k_scale, int j, int n_k, int d, const int ng) {
    _Alignas(64) int16_t kw[4][ATTN_ROWS_DMAX];
    float ks[4];
    for (int b = 0; b < 4; b++) {
        const bool in = j + b < n_k;
        for (int i = 0; i < d; i += 32)
            _mm512_store_si512(kw[b] + i,
                               _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(
                                   in ? avx512_lanes32(d - i) : 0, k + (size_t)(j + b) * d + i)));
        ks[b] = in ? k_scale[j + b] : 0.0f;
    }
    __m512i a[4][RG];
    for (int b = 0; b < 4; b++)
        for (int g = 0; g < ng; g++)
            a[b][g] = _mm512_setzero_si512();
    for (int p = 0; p < (d + 1) / 2; p++) {
        __m512i qv[RG];
        for (int g = 0; g < ng; g++)
            qv[g] = ps->qt[p * ng + g];
        for (int b = 0; b < 4; b++) {
            int32_t pair;
            memcpy(&pair, kw[b] + 2 * p, sizeof pair);
            const __m512i kv = _mm512_set1_epi32(pair);
            for (int g = 0; g < ng; g++)
                a[b][g] = _mm512_dpwssd_epi32(a[b][g], qv[g], kv);
        }
    }
    for (int b = 0; b < 4; b++)
        for (int g = 0; g < ng; g++) {
            const __m512 sc = _mm512_mul_ps(_mm512_cvtepi32_ps(a[b][g]),
                                            _mm512_mul_ps(ps->qsm[g], _mm512_set1_ps(ks[b])));
            mt[g] = _mm512_max_ps(mt[g], sc);
            _mm512_store_ps(ps->st + (size_t)(jt + b) * 64 + 16 * g, sc);
        }
}

/* Values of keys j0 .. j0 + 2 n_pairs as int16 pairs in ps->vp (zero past n_k and past d, up to
 * the 16 dims past d that the last block of values_block reads; not the whole VD row: at d = 64
 * that would triple the work). */
static void value_pairs(struct rows_pass *ps, const int8_t *v, int j0, int n_pairs, int n_k,
                        int d) {
    for (int jp = 0; jp < n_pairs; jp++) {
        const int j = j0 + 2 * jp;
        const bool two = j + 1 < n_k;
        int32_t *o = ps->vp + (size_t)jp * VD;
        for (int i = 0; i < d + 16; i += 16) {
            const __mmask16 m = avx512_lanes16(d - i);
            const __m512i x = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, v + (size_t)j * d + i));
            const __m512i y = _mm512_cvtepi8_epi32(
                _mm_maskz_loadu_epi8(two ? m : 0, v + (size_t)(two ? j + 1 : j) * d + i));
            _mm512_store_si512(o + i,
                               _mm512_or_si512(_mm512_and_si512(x, _mm512_set1_epi32(0xffff)),
                                               _mm512_slli_epi32(y, 16)));
        }
    }
}

/* acc[dims i0 .. i0 + DB] = corr acc + sw * sum over the step's key pairs of w16 * v16 (the
 * online softmax's rescale of the old sums rides on the epilogue, not a pass of its own). */
static ALWAYS_INLINE void values_block(struct rows_pass *ps, const __m512 *sw, const __m512 *corr,
                                       int i0, int n_pairs, const int ng, const int DB) {
    __m512i a[16];
    for (int x = 0; x < DB * ng; x++)
        a[x] = _mm512_setzero_si512();
    for (int jp = 0; jp < n_pairs; jp++) {
        __m512i wv[RG];
        for (int g = 0; g < ng; g++)
            wv[g] = ps->wp[jp * ng + g];
        const int32_t *vr = ps->vp + (size_t)jp * VD + i0;
        for (int di = 0; di < DB; di++) {
            const __m512i b = _mm512_set1_epi32(vr[di]);
            for (int g = 0; g < ng; g++)
                a[di * ng + g] = _mm512_dpwssd_epi32(a[di * ng + g], wv[g], b);
        }
    }
    for (int di = 0; di < DB; di++)
        for (int g = 0; g < ng; g++) {
            __m512 *o = &ps->acc[(i0 + di) * ng + g];
            *o = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[di * ng + g]), sw[g],
                                 _mm512_mul_ps(*o, corr[g]));
        }
}

/* One step: keys j0 .. j0 + kt folded into the pass's softmax state and accumulators. */
static ALWAYS_INLINE void pass_step(struct rows_pass *ps, const int8_t *k, const float *k_scale,
                                    const int8_t *v, const float *v_scale, const int32_t *kpos,
                                    int j0, int kt, int n_k, int d, int32_t window, int32_t qmin,
                                    int32_t qmax, const int ng) {
    const int kt4 = (kt + 3) & ~3, n_pairs = (kt + 1) / 2;
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 mt[RG];
    for (int g = 0; g < ng; g++)
        mt[g] = ninf;
    for (int jt = 0; jt < kt4; jt += 4)
        scores4(ps, mt, jt, k, k_scale, j0 + jt, n_k, d, ng);
    bool masked = false; /* then mt is recomputed over what the rows may see */
    for (int jt = 0; jt < kt4; jt++) {
        float *sj = ps->st + (size_t)jt * 64;
        if (jt >= kt) { /* the zero rows past the step */
            for (int g = 0; g < ng; g++)
                _mm512_store_ps(sj + 16 * g, ninf);
            masked = true;
            continue;
        }
        const int32_t kp = kpos[j0 + jt];
        if (kp <= qmin && !(window && kp <= qmax - window))
            continue; /* every row sees this key */
        const __m512i kv = _mm512_set1_epi32(kp);
        for (int g = 0; g < ng; g++) {
            __mmask16 out = _mm512_cmpgt_epi32_mask(kv, ps->qp[g]);
            if (window)
                out |= _mm512_cmple_epi32_mask(
                    kv, _mm512_sub_epi32(ps->qp[g], _mm512_set1_epi32(window)));
            _mm512_mask_store_ps(sj + 16 * g, out, ninf);
            masked |= out != 0;
        }
    }
    __m512 shift[RG], corr[RG], amax[RG], lsum[RG];
    for (int g = 0; g < ng; g++) {
        if (masked) {
            mt[g] = ninf;
            for (int jt = 0; jt < kt4; jt++)
                mt[g] = _mm512_max_ps(mt[g], _mm512_load_ps(ps->st + (size_t)jt * 64 + 16 * g));
        }
        const __m512 m_new = _mm512_max_ps(ps->m[g], mt[g]);
        /* a row that has seen no key yet keeps shift 0: exp(-inf - 0) = 0, never inf - inf */
        shift[g] = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(m_new, ninf, _CMP_EQ_OQ), m_new,
                                        _mm512_setzero_ps());
        corr[g] = exp_nonpos(_mm512_sub_ps(ps->m[g], shift[g]));
        ps->m[g] = m_new;
        amax[g] = lsum[g] = _mm512_setzero_ps();
    }
    for (int jt = 0; jt < kt4; jt++) {
        const __m512 vs = _mm512_set1_ps(jt < kt ? v_scale[j0 + jt] : 0.0f);
        for (int g = 0; g < ng; g++) {
            float *s = ps->st + (size_t)jt * 64 + 16 * g;
            const __m512 p = exp_nonpos(_mm512_sub_ps(_mm512_load_ps(s), shift[g]));
            lsum[g] = _mm512_add_ps(lsum[g], p);
            const __m512 w = _mm512_mul_ps(p, vs); /* >= 0 */
            amax[g] = _mm512_max_ps(amax[g], w);
            _mm512_store_ps(s, w);
        }
    }
    __m512 sw[RG];
    for (int g = 0; g < ng; g++) {
        ps->l[g] = _mm512_fmadd_ps(ps->l[g], corr[g], lsum[g]);
        const __mmask16 some = _mm512_cmp_ps_mask(amax[g], _mm512_setzero_ps(), _CMP_GT_OQ);
        const __m512 inv = _mm512_maskz_div_ps(some, _mm512_set1_ps(32767.0f), amax[g]);
        sw[g] = _mm512_mul_ps(amax[g], _mm512_set1_ps(1.0f / 32767.0f));
        for (int jp = 0; jp < n_pairs; jp++) {
            const __m512i lo = _mm512_cvtps_epi32(
                _mm512_mul_ps(_mm512_load_ps(ps->st + (size_t)(2 * jp) * 64 + 16 * g), inv));
            const __m512i hi = _mm512_cvtps_epi32(
                _mm512_mul_ps(_mm512_load_ps(ps->st + (size_t)(2 * jp + 1) * 64 + 16 * g), inv));
            ps->wp[jp * ng + g] =
                _mm512_mask_blend_epi16(0xaaaaaaaa, lo, _mm512_slli_epi32(hi, 16));
        }
    }
    value_pairs(ps, v, j0, n_pairs, n_k, d);
    const int DB = ng == 1 ? 16 : ng == 2 ? 8 : ng == 3 ? 5 : 4; /* DB * ng int32 sums <= 16 */
    for (int i0 = 0; i0 < d; i0 += DB) {
        if (ng == 1)
            values_block(ps, sw, corr, i0, n_pairs, 1, 16);
        else if (ng == 2)
            values_block(ps, sw, corr, i0, n_pairs, 2, 8);
        else if (ng == 3)
            values_block(ps, sw, corr, i0, n_pairs, 3, 5);
        else
            values_block(ps, sw, corr, i0, n_pairs, 4, 4);
    }
}

/* Without GCC's partial redundancy elimination: with it, gcc 12 -O3 keeps the score sums of
 * scores4 in registers it copies around every vpdpwssd (two moves per multiply), and the kernel
 * runs 13-15% slower (perf/bench-attn, 48 and 64 rows at 4,096 keys). */
#if defined(__GNUC__) && !defined(__clang__)
#define WITHOUT_TREE_PRE __attribute__((optimize("no-tree-pre")))
#else
#define WITHOUT_TREE_PRE /* clang (the fuzz build) has no such attribute */
#endif
WITHOUT_TREE_PRE static void pass_run(struct rows_pass *ps, const int8_t *k, const float *k_scale,
                                      const int8_t *v, const float *v_scale, const int32_t *kpos,
                                      int n_k, int d, int32_t window, int32_t qmin, int32_t qmax,
                                      int ng) {
    for (int j0 = 0; j0 < n_k; j0 += KS) {
        const int kt = n_k - j0 < KS ? n_k - j0 : KS;
        if (ng == 1)
            pass_step(ps, k, k_scale, v, v_scale, kpos, j0, kt, n_k, d, window, qmin, qmax, 1);
        else if (ng == 2)
            pass_step(ps, k, k_scale, v, v_scale, kpos, j0, kt, n_k, d, window, qmin, qmax, 2);
        else if (ng == 3)
            pass_step(ps, k, k_scale, v, v_scale, kpos, j0, kt, n_k, d, window, qmin, qmax, 3);
        else
            pass_step(ps, k, k_scale, v, v_scale, kpos, j0, kt, n_k, d, window, qmin, qmax, 4);
    }
}

void attn_rows_i8__avx512vnni(float *out, float *lse, const float *q, int n_q, const int32_t *qpos,
                              const int8_t *k, const float *k_scale, const int8_t *v,
                              const float *v_scale, const int32_t *kpos, int n_k, int d, float mul,
                              int32_t window) {
    static _Thread_local struct rows_pass ps __attribute__((aligned(64)));
    for (int r0 = 0; r0 < n_q; r0 += RG * 16) {
        const int nr = n_q - r0 < RG * 16 ? n_q - r0 : RG * 16, ng = (nr + 15) / 16;
        int32_t qmin = qpos[r0], qmax = qpos[r0];
        for (int r = 1; r < nr; r++) {
            qmin = qpos[r0 + r] < qmin ? qpos[r0 + r] : qmin;
            qmax = qpos[r0 + r] > qmax ? qpos[r0 + r] : qmax;
        }
        pass_begin(&ps, q + (size_t)r0 * d, qpos + r0, nr, d, mul, ng);
        pass_run(&ps, k, k_scale, v, v_scale, kpos, n_k, d, window, qmin, qmax, ng);
        for (int g = 0; g < ng; g++) {
            /* rows that saw no key have l = 0: their output is 0, not 0/0 */
            const __mmask16 seen = _mm512_cmp_ps_mask(ps.l[g], _mm512_setzero_ps(), _CMP_GT_OQ);
            const __m512 inv = _mm512_maskz_div_ps(seen, _mm512_set1_ps(1.0f), ps.l[g]);
            _Alignas(64) float col[16];
            if (lse) { /* m + log l, -inf where no key was seen (log 0) */
                _mm512_store_ps(col, _mm512_add_ps(ps.m[g], Sleef_logf16_u10avx512f(ps.l[g])));
                for (int l = 0; l < 16 && 16 * g + l < nr; l++)
                    lse[r0 + 16 * g + l] = col[l];
            }
            for (int i = 0; i < d; i++) {
                _mm512_store_ps(col, _mm512_mul_ps(ps.acc[i * ng + g], inv));
                for (int l = 0; l < 16 && 16 * g + l < nr; l++)
                    out[(size_t)(r0 + 16 * g + l) * d + i] = col[l];
            }
        }
    }
}
