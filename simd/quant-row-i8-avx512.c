/* Symmetric int8 row quantization, AVX-512. Same arithmetic as the reference (multiply by the
 * inverse scale, round to nearest-even via the default MXCSR mode, clamp to +-127), so the
 * result is bit-identical. */
#include <immintrin.h>

#include "avx512-lanes.h"

#include "ops.h"

void quant_row_i8__avx512(int8_t *q, float *scale, const float *x, int n) {
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    __m512 mx = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = avx512_lanes16(n - i);
        mx = _mm512_max_ps(mx, _mm512_and_ps(_mm512_maskz_loadu_ps(m, x + i), absmask));
    }
    const float amax = _mm512_reduce_max_ps(mx);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *scale = d;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = avx512_lanes16(n - i);
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vid));
        v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
        _mm_mask_storeu_epi8(q + i, m, _mm512_cvtepi32_epi8(v));
    }
}
