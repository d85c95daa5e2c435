/* Attention scores, AVX-512, reading K straight from the cache storage: int8 rows are widened
 * to f32 in registers (the row scale is applied once to the finished dot), f16 rows converted
 * with vcvtph2ps. Keys go in blocks that stay in registers while every query row passes. */
#include <immintrin.h>

#include "avx512-lanes.h"

#include "ops.h"

enum { KV_I8, KV_F16, KV_F32 };

/* 16 (or fewer, masked) stored values as f32. */
static inline __attribute__((always_inline)) __m512 load16(const void *row, int i, __mmask16 m,
                                                           int type) {
    if (type == KV_I8)
        return _mm512_cvtepi32_ps(
            _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, (const int8_t *)row + i)));
    if (type == KV_F16)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i));
    return _mm512_maskz_loadu_ps(m, (const float *)row + i);
}

static inline __attribute__((always_inline)) const void *row_at(const void *base, int j, int d,
                                                                int type) {
    const size_t esz = type == KV_I8 ? 1 : type == KV_F16 ? 2 : 4;
    return (const char *)base + (size_t)j * d * esz;
}

/* The four sums of a0..a3 (one per key), in lanes 0..3: two unpack levels leave each 128-bit
 * lane holding one partial sum per key, then two lane swaps fold the four 128-bit lanes. About
 * 13 instructions for four keys, against about 8 per key for _mm512_reduce_add_ps. */
static inline __attribute__((always_inline)) __m128 reduce4(__m512 a0, __m512 a1, __m512 a2,
                                                            __m512 a3) {
    const __m512 t0 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
    const __m512 t1 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
    __m512 u = _mm512_add_ps(_mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 2, 3, 2)));
    u = _mm512_add_ps(u, _mm512_shuffle_f32x4(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
    u = _mm512_add_ps(u, _mm512_shuffle_f32x4(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_castps512_ps128(u);
}

/* Keys j..j+KB-1 (KB = 4 for d <= 64, 2 for d <= 128: C chunks of 16 per row) against every query
 * row. Each key row is loaded and widened once into registers and then serves all n_q rows (the
 * G query heads of a GQA group in decode, G x tile rows in prefill), so the int8 -> f32
 * conversion is not repeated per query head; the KB dot products of a row end in one reduce4. */
static inline __attribute__((always_inline)) void
qk_block(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q, const void *k,
         const float *k_scale, int j, int d, float mul, int type, const int C, const int KB) {
    __m512 kv[4][8];
    for (int b = 0; b < KB; b++)
        for (int c = 0; c < C; c++)
            kv[b][c] = load16(row_at(k, j + b, d, type), 16 * c, avx512_lanes16(d - 16 * c), type);
    __m128 f = _mm_set1_ps(mul);
    if (type == KV_I8)
        f = _mm_mul_ps(f, KB == 4 ? _mm_loadu_ps(k_scale + j)
                                  : _mm_setr_ps(k_scale[j], k_scale[j + 1], 0.0f, 0.0f));
    for (int qi = 0; qi < n_q; qi++) {
        const float *qr = q + qi * q_stride;
        __m512 a[4];
        for (int b = 0; b < 4; b++)
            a[b] = _mm512_setzero_ps();
        for (int c = 0; c < C; c++) {
            const __m512 qv = _mm512_maskz_loadu_ps(avx512_lanes16(d - 16 * c), qr + 16 * c);
            for (int b = 0; b < KB; b++)
                a[b] = _mm512_fmadd_ps(qv, kv[b][c], a[b]);
        }
        const __m128 r = _mm_mul_ps(reduce4(a[0], a[1], a[2], a[3]), f);
        float *sr = s + qi * s_stride + j;
        if (KB == 4)
            _mm_storeu_ps(sr, r);
        else
            _mm_mask_storeu_ps(sr, 0x3, r);
    }
}

/* One key against every query row: the tail of a block loop, and any d above 128. */
static inline __attribute__((always_inline)) void qk_one(float *s, size_t s_stride, const float *q,
                                                         size_t q_stride, int n_q, const void *k,
                                                         const float *k_scale, int j, int d,
                                                         float mul, int type) {
    const void *k0 = row_at(k, j, d, type);
    const float f = type == KV_I8 ? k_scale[j] * mul : mul;
    for (int qi = 0; qi < n_q; qi++) {
        const float *qr = q + qi * q_stride;
        __m512 a0 = _mm512_setzero_ps();
        for (int i = 0; i < d; i += 16) {
            const __mmask16 m = avx512_lanes16(d - i);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, qr + i), load16(k0, i, m, type), a0);
        }
        s[qi * s_stride + j] = _mm512_reduce_add_ps(a0) * f;
    }
}

static inline __attribute__((always_inline)) void qk_body(float *s, size_t s_stride, const float *q,
                                                          size_t q_stride, int n_q, const void *k,
                                                          const float *k_scale, int n_k, int d,
                                                          float mul, int type) {
    int j = 0;
    if (d <= 64)
        for (; j + 4 <= n_k; j += 4)
            qk_block(s, s_stride, q, q_stride, n_q, k, k_scale, j, d, mul, type, 4, 4);
    else if (d <= 128)
        for (; j + 2 <= n_k; j += 2)
            qk_block(s, s_stride, q, q_stride, n_q, k, k_scale, j, d, mul, type, 8, 2);
    for (; j < n_k; j++)
        qk_one(s, s_stride, q, q_stride, n_q, k, k_scale, j, d, mul, type);
}

void attn_qk_i8__avx512(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                        const int8_t *k, const float *k_scale, int n_k, int d, float mul) {
    qk_body(s, s_stride, q, q_stride, n_q, k, k_scale, n_k, d, mul, KV_I8);
}

void attn_qk_f16__avx512(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                         const uint16_t *k, int n_k, int d, float mul) {
    qk_body(s, s_stride, q, q_stride, n_q, k, NULL, n_k, d, mul, KV_F16);
}

void attn_qk_f32__avx512(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                         const float *k, int n_k, int d, float mul) {
    qk_body(s, s_stride, q, q_stride, n_q, k, NULL, n_k, d, mul, KV_F32);
}
