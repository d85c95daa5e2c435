/* KVzip's running maximum, AVX-512 (contract and reference: col-max-scalar.c): 32 floats per
 * step, the tail through a lane mask. */
#include <immintrin.h>

#include "press-ops.h"

void col_max__avx512(float *acc, const float *x, int n) {
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        _mm512_storeu_ps(acc + j, _mm512_max_ps(_mm512_loadu_ps(acc + j), _mm512_loadu_ps(x + j)));
        _mm512_storeu_ps(acc + j + 16,
                         _mm512_max_ps(_mm512_loadu_ps(acc + j + 16), _mm512_loadu_ps(x + j + 16)));
    }
    for (; j < n; j += 16) {
        const __mmask16 m = (__mmask16)(n - j >= 16 ? 0xffff : (1u << (n - j)) - 1);
        const __m512 a = _mm512_maskz_loadu_ps(m, acc + j), b = _mm512_maskz_loadu_ps(m, x + j);
        _mm512_mask_storeu_ps(acc + j, m, _mm512_max_ps(a, b));
    }
}
