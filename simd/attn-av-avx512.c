/* Attention output, AVX-512: acc += sum_j p_j * v_j, reading V straight from the cache storage.
 * Up to four query rows' accumulators (64 dims each) are held in registers while all value rows
 * stream past, so the only memory traffic per value row is the row itself. The int8 row scale
 * is folded into the weight p_j. */
#include <immintrin.h>

#include "avx512-lanes.h"

#include "ops.h"

enum { KV_I8, KV_F16, KV_F32 };

static inline __attribute__((always_inline)) __m512 load16(const void *row, int i, __mmask16 m,
                                                           int type) {
    if (type == KV_I8)
        return _mm512_cvtepi32_ps(
            _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, (const int8_t *)row + i)));
    if (type == KV_F16)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i));
    return _mm512_maskz_loadu_ps(m, (const float *)row + i);
}

/* R query rows (R <= 4) over the 64 dims from g: their accumulators (4 registers each) stay in
 * registers while the value rows stream past, and each value row is loaded and widened once for
 * all R rows (the G query heads of a GQA group share it). */
static inline __attribute__((always_inline)) void
av_rows(float *acc, size_t acc_stride, const float *p, size_t p_stride, const void *v,
        const float *v_scale, int n_k, int d, int g, int type, const int R) {
    const size_t esz = type == KV_I8 ? 1 : type == KV_F16 ? 2 : 4;
    __mmask16 m[4];
    __m512 a[4][4];
    for (int c = 0; c < 4; c++)
        m[c] = avx512_lanes16(d - (g + 16 * c));
    for (int r = 0; r < R; r++)
        for (int c = 0; c < 4; c++)
            a[r][c] = _mm512_maskz_loadu_ps(m[c], acc + r * acc_stride + g + 16 * c);
    for (int j = 0; j < n_k; j++) {
        const void *row = (const char *)v + (size_t)j * d * esz;
        __m512 x[4];
        for (int c = 0; c < 4; c++)
            x[c] = load16(row, g + 16 * c, m[c], type);
        const float sc = type == KV_I8 ? v_scale[j] : 1.0f;
        for (int r = 0; r < R; r++) {
            const __m512 w = _mm512_set1_ps(p[r * p_stride + j] * sc);
            for (int c = 0; c < 4; c++)
                a[r][c] = _mm512_fmadd_ps(w, x[c], a[r][c]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < 4; c++)
            _mm512_mask_storeu_ps(acc + r * acc_stride + g + 16 * c, m[c], a[r][c]);
}

static inline __attribute__((always_inline)) void av_body(float *acc, size_t acc_stride,
                                                          const float *p, size_t p_stride, int n_q,
                                                          const void *v, const float *v_scale,
                                                          int n_k, int d, int type) {
    for (int g = 0; g < d; g += 64) { /* 64 dims = four registers per row */
        int qi = 0;
        for (; qi + 4 <= n_q; qi += 4)
            av_rows(acc + qi * acc_stride, acc_stride, p + qi * p_stride, p_stride, v, v_scale, n_k,
                    d, g, type, 4);
        const int rest = n_q - qi;
        float *ar = acc + qi * acc_stride;
        const float *pr = p + qi * p_stride;
        if (rest == 3)
            av_rows(ar, acc_stride, pr, p_stride, v, v_scale, n_k, d, g, type, 3);
        else if (rest == 2)
            av_rows(ar, acc_stride, pr, p_stride, v, v_scale, n_k, d, g, type, 2);
        else if (rest == 1)
            av_rows(ar, acc_stride, pr, p_stride, v, v_scale, n_k, d, g, type, 1);
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
