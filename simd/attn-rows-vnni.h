/* The rows-in-lanes building blocks of the AVX-512 VNNI attention kernels over an int8 cache
 * (attn-rows-vnni.c: prefill attention; attn-colmax-vnni.c: KVzip's column maxima): up to 64
 * query rows rounded to int16 and transposed once into the lanes, and blocks of 4 keys scored
 * against all of them with vpdpwssd. attn-rows-vnni.c says why the rows go in the lanes.
 * Included by those two files only (static functions, AVX-512 VNNI flags). */
#ifndef ADAKV_SIMD_ATTN_ROWS_VNNI_H
#define ADAKV_SIMD_ATTN_ROWS_VNNI_H

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

/* Without GCC's partial redundancy elimination: with it, gcc 12 -O3 keeps the score sums of
 * scores4 in registers it copies around every vpdpwssd (two moves per multiply), and the kernel
 * runs 13-15% slower (perf/bench-attn, 48 and 64 rows at 4,096 keys). */
#if defined(__GNUC__) && !defined(__clang__)
#define WITHOUT_TREE_PRE __attribute__((optimize("no-tree-pre")))
#else
#define WITHOUT_TREE_PRE /* clang (the fuzz build) has no such attribute */
#endif

#endif
