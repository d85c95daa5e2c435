/* RMSNorm, AVX2 + FMA: sum of squares in four f32 accumulators (32 partial sums, so the f32
 * rounding stays far inside the reference's bound for any row the models have), masked tail. */
#include <math.h>

#include "avx2-lanes.h"
#include "ops.h"

void rmsnorm__avx2(float *y, const float *x, const float *w, int n, float eps) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
        const __m256 x2 = _mm256_loadu_ps(x + i + 16), x3 = _mm256_loadu_ps(x + i + 24);
        a0 = _mm256_fmadd_ps(x0, x0, a0);
        a1 = _mm256_fmadd_ps(x1, x1, a1);
        a2 = _mm256_fmadd_ps(x2, x2, a2);
        a3 = _mm256_fmadd_ps(x3, x3, a3);
    }
    for (; i < n; i += 8) {
        const __m256 x0 = avx2_load_ps(x + i, n - i, 0.0f);
        a0 = _mm256_fmadd_ps(x0, x0, a0);
    }
    const float ss = avx2_hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    const __m256 r = _mm256_set1_ps(1.0f / sqrtf(ss / n + eps));
    /* (x * r) * w, the reference's order; y may be x: each vector is read before it is written */
    for (i = 0; i < n; i += 8)
        avx2_store_ps(y + i, n - i,
                      _mm256_mul_ps(_mm256_mul_ps(avx2_load_ps(x + i, n - i, 0.0f), r),
                                    avx2_load_ps(w + i, n - i, 0.0f)));
}
