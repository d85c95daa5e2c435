/* SwiGLU, AVX2: silu(g) * u = g * u / (1 + exp(-g)) with sleef's vector expf. For very negative
 * g, exp(-g) overflows to inf and the quotient is -0, the correct limit. */
#include <sleef.h>

#include "avx2-lanes.h"
#include "ops.h"

AVX2_INLINE __m256 swiglu8(__m256 g, __m256 u) {
    const __m256 e = Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

void swiglu__avx2(float *out, const float *gate, const float *up, int n) {
    AVX2_MAP2(swiglu8, out, gate, up, n);
}
