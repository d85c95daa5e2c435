/* Attention output, AVX-512: acc += sum_j p_j * v_j, reading V straight from the cache storage.
 * A query row's accumulator is held in up to four registers (64 dims) while all value rows
 * stream past, so the only memory traffic per value row is the row itself. The int8 row scale
 * is folded into the weight p_j. */
#include <immintrin.h>

#include "ops.h"

enum { KV_I8, KV_F16, KV_F32 };

static inline __mmask16 chunk_mask(int d, int i) {
    if (i >= d)
        return 0;
    return d - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (d - i)) - 1u);
}

static inline __attribute__((always_inline)) __m512 load16(const void *row, int i, __mmask16 m,
                                                           int type) {
    if (type == KV_I8)
        return _mm512_cvtepi32_ps(
            _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, (const int8_t *)row + i)));
    if (type == KV_F16)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i));
    return _mm512_maskz_loadu_ps(m, (const float *)row + i);
}

static inline __attribute__((always_inline)) void av_body(float *acc, size_t acc_stride,
                                                          const float *p, size_t p_stride, int n_q,
                                                          const void *v, const float *v_scale,
                                                          int n_k, int d, int type) {
    const size_t esz = type == KV_I8 ? 1 : type == KV_F16 ? 2 : 4;
    for (int qi = 0; qi < n_q; qi++) {
        float *a = acc + qi * acc_stride;
        const float *pr = p + qi * p_stride;
        for (int g = 0; g < d; g += 64) { /* 64 dims = four registers per group */
            const __mmask16 m0 = chunk_mask(d, g), m1 = chunk_mask(d, g + 16);
            const __mmask16 m2 = chunk_mask(d, g + 32), m3 = chunk_mask(d, g + 48);
            __m512 a0 = _mm512_maskz_loadu_ps(m0, a + g),
                   a1 = _mm512_maskz_loadu_ps(m1, a + g + 16);
            __m512 a2 = _mm512_maskz_loadu_ps(m2, a + g + 32);
            __m512 a3 = _mm512_maskz_loadu_ps(m3, a + g + 48);
            for (int j = 0; j < n_k; j++) {
                const void *row = (const char *)v + (size_t)j * d * esz;
                const __m512 w = _mm512_set1_ps(type == KV_I8 ? pr[j] * v_scale[j] : pr[j]);
                a0 = _mm512_fmadd_ps(w, load16(row, g, m0, type), a0);
                a1 = _mm512_fmadd_ps(w, load16(row, g + 16, m1, type), a1);
                a2 = _mm512_fmadd_ps(w, load16(row, g + 32, m2, type), a2);
                a3 = _mm512_fmadd_ps(w, load16(row, g + 48, m3, type), a3);
            }
            _mm512_mask_storeu_ps(a + g, m0, a0);
            _mm512_mask_storeu_ps(a + g + 16, m1, a1);
            _mm512_mask_storeu_ps(a + g + 32, m2, a2);
            _mm512_mask_storeu_ps(a + g + 48, m3, a3);
        }
    }
}

void attn_av_i8__avx512(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                        const int8_t *v, const float *v_scale, int n_k, int d) {
    av_body(acc, acc_stride, p, p_stride, n_q, v, v_scale, n_k, d, KV_I8);
}

void attn_av_f16__avx512(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                         const uint16_t *v, int n_k, int d) {
    av_body(acc, acc_stride, p, p_stride, n_q, v, NULL, n_k, d, KV_F16);
}

void attn_av_f32__avx512(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                         const float *v, int n_k, int d) {
    av_body(acc, acc_stride, p, p_stride, n_q, v, NULL, n_k, d, KV_F32);
}
