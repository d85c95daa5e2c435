/* Attention scores, AVX-512, reading K straight from the cache storage: int8 rows are widened
 * to f32 in registers (the row scale is applied once to the finished dot), f16 rows converted
 * with vcvtph2ps. Four keys per step keep four independent FMA chains busy. */
#include <immintrin.h>

#include "ops.h"

enum { KV_I8, KV_F16, KV_F32 };

static inline __mmask16 chunk_mask(int d, int i) {
    return d - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (d - i)) - 1u);
}

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

static inline __attribute__((always_inline)) void qk_body(float *s, size_t s_stride, const float *q,
                                                          size_t q_stride, int n_q, const void *k,
                                                          const float *k_scale, int n_k, int d,
                                                          float mul, int type) {
    for (int qi = 0; qi < n_q; qi++) {
        const float *qr = q + qi * q_stride;
        float *sr = s + qi * s_stride;
        int j = 0;
        for (; j + 4 <= n_k; j += 4) {
            const void *k0 = row_at(k, j, d, type), *k1 = row_at(k, j + 1, d, type);
            const void *k2 = row_at(k, j + 2, d, type), *k3 = row_at(k, j + 3, d, type);
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
            __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
            for (int i = 0; i < d; i += 16) {
                const __mmask16 m = chunk_mask(d, i);
                const __m512 qv = _mm512_maskz_loadu_ps(m, qr + i);
                a0 = _mm512_fmadd_ps(qv, load16(k0, i, m, type), a0);
                a1 = _mm512_fmadd_ps(qv, load16(k1, i, m, type), a1);
                a2 = _mm512_fmadd_ps(qv, load16(k2, i, m, type), a2);
                a3 = _mm512_fmadd_ps(qv, load16(k3, i, m, type), a3);
            }
            float d0 = _mm512_reduce_add_ps(a0), d1 = _mm512_reduce_add_ps(a1);
            float d2 = _mm512_reduce_add_ps(a2), d3 = _mm512_reduce_add_ps(a3);
            if (type == KV_I8) {
                d0 *= k_scale[j];
                d1 *= k_scale[j + 1];
                d2 *= k_scale[j + 2];
                d3 *= k_scale[j + 3];
            }
            sr[j] = d0 * mul;
            sr[j + 1] = d1 * mul;
            sr[j + 2] = d2 * mul;
            sr[j + 3] = d3 * mul;
        }
        for (; j < n_k; j++) {
            const void *k0 = row_at(k, j, d, type);
            __m512 a0 = _mm512_setzero_ps();
            for (int i = 0; i < d; i += 16) {
                const __mmask16 m = chunk_mask(d, i);
                a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, qr + i), load16(k0, i, m, type), a0);
            }
            float d0 = _mm512_reduce_add_ps(a0);
            if (type == KV_I8)
                d0 *= k_scale[j];
            sr[j] = d0 * mul;
        }
    }
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
