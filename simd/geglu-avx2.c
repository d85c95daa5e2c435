/* GEGLU, AVX2: gelu(g) * u = 0.5 g (1 + tanh(sqrt(2/pi) g (1 + 0.044715 g^2))) u with sleef's
 * vector tanhf (1 ulp, as libm's). Very negative g: tanh is -1 and the product is -0, the
 * correct limit; |g| so large that g^2 overflows: the tanh argument is +-inf and tanh +-1, so
 * no inf * 0 arises. */
#include <sleef.h>

#include "avx2-lanes.h"
#include "ops.h"

AVX2_INLINE __m256 geglu8(__m256 g, __m256 u) {
    const __m256 g2 = _mm256_mul_ps(g, g);
    const __m256 inner = _mm256_fmadd_ps(_mm256_set1_ps(GELU_COEF_A), g2, _mm256_set1_ps(1.0f));
    const __m256 arg = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_SQRT_2_OVER_PI), g), inner);
    const __m256 t = Sleef_tanhf8_u10avx2(arg);
    const __m256 half_g = _mm256_mul_ps(_mm256_set1_ps(0.5f), g);
    return _mm256_mul_ps(_mm256_mul_ps(half_g, _mm256_add_ps(_mm256_set1_ps(1.0f), t)), u);
}

void geglu__avx2(float *out, const float *gate, const float *up, int n) {
    AVX2_MAP2(geglu8, out, gate, up, n);
}
