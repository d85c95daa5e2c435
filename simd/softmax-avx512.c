/* Softmax, AVX-512, with sleef's 1-ulp vector expf (the explicitly named AVX-512F entry point,
 * never the dispatcher, so this object only runs where it was chosen). Tails are masked and
 * filled with -inf, whose exp is 0, so they add nothing to the sum. */
#include <immintrin.h>

#include "avx512-lanes.h"
#include <math.h>
#include <sleef.h>

#include "ops.h"

float max__avx512(const float *x, int n) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 m0 = ninf, m1 = ninf;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
        m1 = _mm512_max_ps(m1, _mm512_loadu_ps(x + i + 16));
    }
    for (; i < n; i += 16)
        m0 = _mm512_max_ps(m0, _mm512_mask_loadu_ps(ninf, avx512_lanes16(n - i), x + i));
    return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}

float exp_sum__avx512(float *x, int n, float shift) {
    const __m512 sh = _mm512_set1_ps(shift);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 e0 = Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh));
        const __m512 e1 = Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), sh));
        _mm512_storeu_ps(x + i, e0);
        _mm512_storeu_ps(x + i + 16, e1);
        acc0 = _mm512_add_ps(acc0, e0);
        acc1 = _mm512_add_ps(acc1, e1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = avx512_lanes16(n - i);
        const __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), m, x + i);
        const __m512 e = Sleef_expf16_u10avx512f(_mm512_sub_ps(v, sh));
        _mm512_mask_storeu_ps(x + i, m, e);
        acc0 = _mm512_add_ps(acc0, e);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

void softmax__avx512(float *x, int n) {
    const float sum = exp_sum__avx512(x, n, max__avx512(x, n));
    const __m512 inv = _mm512_set1_ps(1.0f / sum);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = avx512_lanes16(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
}
