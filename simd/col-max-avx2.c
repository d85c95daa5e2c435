/* KVzip's running maximum, AVX2 (contract and reference: col-max-scalar.c): 16 floats per step,
 * the tail through a masked load/store so no lane past n is read or written. */
#include <immintrin.h>

#include "press-ops.h"

void col_max__avx2(float *acc, const float *x, int n) {
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        _mm256_storeu_ps(acc + j, _mm256_max_ps(_mm256_loadu_ps(acc + j), _mm256_loadu_ps(x + j)));
        _mm256_storeu_ps(acc + j + 8,
                         _mm256_max_ps(_mm256_loadu_ps(acc + j + 8), _mm256_loadu_ps(x + j + 8)));
    }
    for (; j < n; j += 8) {
        const __m256i m =
            _mm256_cmpgt_epi32(_mm256_set1_epi32(n - j), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const __m256 a = _mm256_maskload_ps(acc + j, m), b = _mm256_maskload_ps(x + j, m);
        _mm256_maskstore_ps(acc + j, m, _mm256_max_ps(a, b));
    }
}
