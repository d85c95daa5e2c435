/* SwiGLU, AVX-512: silu(g) * u = g * u / (1 + exp(-g)) with sleef's vector expf. For very
 * negative g, exp(-g) overflows to inf and the quotient is -0, the correct limit. */
#include <immintrin.h>

#include "avx512-lanes.h"
#include <sleef.h>

#include "ops.h"

static inline __m512 swiglu16(__m512 g, __m512 u) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 e = Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_setzero_ps(), g));
    return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), u);
}

void swiglu__avx512(float *out, const float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, swiglu16(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
    if (i < n) {
        const __mmask16 m = avx512_lanes16(n - i);
        _mm512_mask_storeu_ps(
            out + i, m,
            swiglu16(_mm512_maskz_loadu_ps(m, gate + i), _mm512_maskz_loadu_ps(m, up + i)));
    }
}
