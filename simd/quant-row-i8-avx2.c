/* Symmetric int8 row quantization, AVX2. Same arithmetic as the reference (multiply by the
 * inverse scale, round to nearest-even via the default MXCSR mode, clamp to +-127), so the
 * result is bit-identical. 16 values per step: two rounded int32 vectors narrow to int16
 * (avx2_round16_epi16), are clamped there, and narrow again to 16 bytes. */
#include "avx2-lanes.h"
#include "ops.h"

void quant_row_i8__avx2(int8_t *q, float *scale, const float *x, int n) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mx = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8)
        mx = _mm256_max_ps(mx, _mm256_and_ps(avx2_load_ps(x + i, n - i, 0.0f), absmask));
    const float amax = avx2_hmax_ps(mx);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *scale = d;
    const __m256 vid = _mm256_set1_ps(id);
    const __m256i lo = _mm256_set1_epi16(-127), hi = _mm256_set1_epi16(127);
    for (int i = 0; i < n; i += 16) {
        /* the second load reads nothing when fewer than 9 values are left */
        __m256i v =
            avx2_round16_epi16(_mm256_mul_ps(avx2_load_ps(x + i, n - i, 0.0f), vid),
                               _mm256_mul_ps(avx2_load_ps(x + i + 8, n - i - 8, 0.0f), vid));
        v = _mm256_min_epi16(_mm256_max_epi16(v, lo), hi);
        avx2_store_bytes(
            q + i, n - i,
            _mm_packs_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
    }
}
