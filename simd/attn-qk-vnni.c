/* Attention scores over int8 keys, AVX-512 VNNI: integer dot products instead of widening every
 * key value to f32.
 *
 * Why: decode attention over an int8 cache is bound by arithmetic, not by memory (perf/bench-attn:
 * the f32 path widens each key value twice, int8 -> int32 -> f32, before one FMA per query head).
 * Here each query row is rounded once to int16 with its own scale (relative error 2^-16 of the
 * row's largest value, far below the int8 key's own 2^-8), keys are widened once to int16, and
 * vpdpwssd multiplies and adds pairs of them into int32 lanes: 32 products per instruction.
 * Exact integer sums (|q| <= 32767, |k| <= 128, d <= 128: |sum| < 2^31), then one scale
 * (mul * key scale * query scale) per score.
 *
 * Rows up to 128 values (two keys per register block, four for d <= 64); longer rows and more
 * than QK_VNNI_QMAX query rows per call are split or left to the f32 kernel. */
#include <immintrin.h>

#include "avx512-lanes.h"
#include "avx512-q16.h"

#include "ops.h"

enum { QK_VNNI_DMAX = 128, QK_VNNI_QMAX = 64, PREFETCH_ROWS = 16 };

/* The four sums of the int32 lanes of a0..a3 (one per key), in lanes 0..3. */
static inline __attribute__((always_inline)) __m128i reduce4_epi32(__m512i a0, __m512i a1,
                                                                   __m512i a2, __m512i a3) {
    const __m512i t0 =
        _mm512_add_epi32(_mm512_unpacklo_epi32(a0, a1), _mm512_unpackhi_epi32(a0, a1));
    const __m512i t1 =
        _mm512_add_epi32(_mm512_unpacklo_epi32(a2, a3), _mm512_unpackhi_epi32(a2, a3));
    __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
    u = _mm512_add_epi32(u, _mm512_shuffle_i32x4(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
    u = _mm512_add_epi32(u, _mm512_shuffle_i32x4(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_castsi512_si128(u);
}

/* Query rows rounded to int16, zero-padded to C * 32 values, and their scales. */
static void quantize_queries(int16_t *q16, float *qs, const float *q, size_t q_stride, int n_q,
                             int d, int C) {
    for (int qi = 0; qi < n_q; qi++)
        qs[qi] = avx512_row_to_q16(q16 + (size_t)qi * C * 32, q + qi * q_stride, d, C * 32);
}

/* Keys j..j+KB-1 against every query row: each key widened once to int16 in registers. */
static inline __attribute__((always_inline)) void
qk_block(float *s, size_t s_stride, const int16_t *q16, const float *qs, int n_q, const int8_t *k,
         const float *k_scale, int j, int d, float mul, const int C, const int KB) {
    __m512i kv[4][4];
    for (int b = 0; b < KB; b++) /* rows PREFETCH_ROWS ahead, so DRAM latency hides behind work */
        for (int c = 0; c < C; c += 2)
            _mm_prefetch((const char *)(k + (size_t)(j + b + PREFETCH_ROWS) * d + 32 * c),
                         _MM_HINT_T0);
    for (int b = 0; b < KB; b++)
        for (int c = 0; c < C; c++)
            kv[b][c] = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(
                avx512_lanes32(d - 32 * c), k + (size_t)(j + b) * d + 32 * c));
    const __m128 f =
        _mm_mul_ps(_mm_set1_ps(mul), KB == 4 ? _mm_loadu_ps(k_scale + j)
                                             : _mm_setr_ps(k_scale[j], k_scale[j + 1], 0.0f, 0.0f));
    for (int qi = 0; qi < n_q; qi++) {
        const int16_t *qr = q16 + (size_t)qi * C * 32;
        __m512i a[4];
        for (int b = 0; b < 4; b++)
            a[b] = _mm512_setzero_si512();
        for (int c = 0; c < C; c++) {
            const __m512i qv = _mm512_loadu_si512(qr + 32 * c);
            for (int b = 0; b < KB; b++)
                a[b] = _mm512_dpwssd_epi32(a[b], qv, kv[b][c]);
        }
        const __m128 r = _mm_mul_ps(_mm_cvtepi32_ps(reduce4_epi32(a[0], a[1], a[2], a[3])),
                                    _mm_mul_ps(f, _mm_set1_ps(qs[qi])));
        float *sr = s + qi * s_stride + j;
        if (KB == 4)
            _mm_storeu_ps(sr, r);
        else
            _mm_mask_storeu_ps(sr, 0x3, r);
    }
}

/* The last keys of a block loop, one at a time (the block with the missing keys' scores
 * discarded would read past the rows). */
static void qk_tail(float *s, size_t s_stride, const int16_t *q16, const float *qs, int n_q,
                    const int8_t *k, const float *k_scale, int j, int d, float mul, int C) {
    __m512i kv[4];
    for (int c = 0; c < C; c++)
        kv[c] = _mm512_cvtepi8_epi16(
            _mm256_maskz_loadu_epi8(avx512_lanes32(d - 32 * c), k + (size_t)j * d + 32 * c));
    for (int qi = 0; qi < n_q; qi++) {
        __m512i a = _mm512_setzero_si512();
        for (int c = 0; c < C; c++)
            a = _mm512_dpwssd_epi32(a, _mm512_loadu_si512(q16 + (size_t)qi * C * 32 + 32 * c),
                                    kv[c]);
        s[qi * s_stride + j] = (float)_mm512_reduce_add_epi32(a) * mul * k_scale[j] * qs[qi];
    }
}

void attn_qk_i8__avx512vnni(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                            const int8_t *k, const float *k_scale, int n_k, int d, float mul) {
    if (d > QK_VNNI_DMAX) {
        attn_qk_i8__avx512(s, s_stride, q, q_stride, n_q, k, k_scale, n_k, d, mul);
        return;
    }
    const int C = d <= 64 ? 2 : 4; /* 32-value chunks per row, padded with zeros */
    _Alignas(64) int16_t q16[QK_VNNI_QMAX * QK_VNNI_DMAX];
    float qs[QK_VNNI_QMAX];
    for (int q0 = 0; q0 < n_q; q0 += QK_VNNI_QMAX) {
        const int nq = n_q - q0 < QK_VNNI_QMAX ? n_q - q0 : QK_VNNI_QMAX;
        float *sq = s + (size_t)q0 * s_stride;
        quantize_queries(q16, qs, q + (size_t)q0 * q_stride, q_stride, nq, d, C);
        int j = 0;
        if (C == 2)
            for (; j + 4 <= n_k; j += 4)
                qk_block(sq, s_stride, q16, qs, nq, k, k_scale, j, d, mul, 2, 4);
        else
            for (; j + 2 <= n_k; j += 2)
                qk_block(sq, s_stride, q16, qs, nq, k, k_scale, j, d, mul, 4, 2);
        for (; j < n_k; j++)
            qk_tail(sq, s_stride, q16, qs, nq, k, k_scale, j, d, mul, C);
    }
}
