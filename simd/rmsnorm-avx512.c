/* RMSNorm, AVX-512: sum of squares in four f32 accumulators, masked tail. */
#include <immintrin.h>

#include "avx512-lanes.h"
#include <math.h>

#include "ops.h"

void rmsnorm__avx512(float *y, const float *x, const float *w, int n, float eps) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
        const __m512 x2 = _mm512_loadu_ps(x + i + 32), x3 = _mm512_loadu_ps(x + i + 48);
        a0 = _mm512_fmadd_ps(x0, x0, a0);
        a1 = _mm512_fmadd_ps(x1, x1, a1);
        a2 = _mm512_fmadd_ps(x2, x2, a2);
        a3 = _mm512_fmadd_ps(x3, x3, a3);
    }
    for (; i + 16 <= n; i += 16) {
        const __m512 x0 = _mm512_loadu_ps(x + i);
        a0 = _mm512_fmadd_ps(x0, x0, a0);
    }
    if (i < n) {
        const __m512 x0 = _mm512_maskz_loadu_ps(avx512_lanes16(n - i), x + i);
        a0 = _mm512_fmadd_ps(x0, x0, a0);
    }
    const float ss =
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    const __m512 r = _mm512_set1_ps(1.0f / sqrtf(ss / n + eps));
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(
            y + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), r), _mm512_loadu_ps(w + i)));
    if (i < n) {
        const __mmask16 m = avx512_lanes16(n - i);
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), r),
                                            _mm512_maskz_loadu_ps(m, w + i)));
    }
}
