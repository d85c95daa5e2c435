/* One row of f32 values rounded to int16 with its own scale, the form the VNNI attention kernels
 * multiply in (attn-qk-vnni.c, attn-rows-vnni.c): the row's largest |x| maps to 32767. Included
 * only by AVX-512 kernel files. */
#ifndef ADAKV_SIMD_AVX512_Q16_H
#define ADAKV_SIMD_AVX512_Q16_H

#include <immintrin.h>
#include <stdint.h>

#include "avx512-lanes.h"

/* o[i] = round(x[i] * 32767 / max|x|) for i < d and 0 for d <= i < w (w a multiple of 16);
 * returns max|x| / 32767, the value of one int16 step (0 for an all-zero row). */
static inline float avx512_row_to_q16(int16_t *o, const float *x, int d, int w) {
    __m512 mx = _mm512_setzero_ps();
    for (int i = 0; i < d; i += 16)
        mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_maskz_loadu_ps(avx512_lanes16(d - i), x + i)));
    const float amax = _mm512_reduce_max_ps(mx);
    const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 32767.0f / amax : 0.0f);
    for (int i = 0; i < w; i += 16) /* lanes past d load as 0 and store 0 */
        _mm256_storeu_si256((void *)(o + i),
                            _mm512_cvtsepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(
                                _mm512_maskz_loadu_ps(avx512_lanes16(d - i), x + i), inv))));
    return amax / 32767.0f;
}

#endif
