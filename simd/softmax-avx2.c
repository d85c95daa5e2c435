/* Softmax, AVX2, with sleef's 1-ulp vector expf (the explicitly named AVX2 entry point, never
 * the dispatcher, so this object only runs where it was chosen, with the accuracy of the
 * AVX-512 path). Tails are masked and padded with -inf, whose exp is 0, so they add nothing. */
#include <math.h>
#include <sleef.h>

#include "avx2-lanes.h"
#include "ops.h"

float max__avx2(const float *x, int n) {
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
        m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
    }
    for (; i < n; i += 8)
        m0 = _mm256_max_ps(m0, avx2_load_ps(x + i, n - i, -INFINITY));
    return avx2_hmax_ps(_mm256_max_ps(m0, m1));
}

float exp_sum__avx2(float *x, int n, float shift) {
    const __m256 sh = _mm256_set1_ps(shift);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 e0 = Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
        const __m256 e1 = Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), sh));
        _mm256_storeu_ps(x + i, e0);
        _mm256_storeu_ps(x + i + 8, e1);
        acc0 = _mm256_add_ps(acc0, e0);
        acc1 = _mm256_add_ps(acc1, e1);
    }
    for (; i < n; i += 8) {
        const __m256 e =
            Sleef_expf8_u10avx2(_mm256_sub_ps(avx2_load_ps(x + i, n - i, -INFINITY), sh));
        avx2_store_ps(x + i, n - i, e);
        acc0 = _mm256_add_ps(acc0, e);
    }
    return avx2_hsum_ps(_mm256_add_ps(acc0, acc1));
}

void softmax__avx2(float *x, int n) {
    const float sum = exp_sum__avx2(x, n, max__avx2(x, n));
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (int i = 0; i < n; i += 8)
        avx2_store_ps(x + i, n - i, _mm256_mul_ps(avx2_load_ps(x + i, n - i, 0.0f), inv));
}
