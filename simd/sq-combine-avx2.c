/* Expected Attention's logits, AVX2 + FMA (contract and reference: sq-combine-scalar.c): eight
 * keys per vector, the squares summed down the rows with FMA; the tail is masked. The sum's
 * order over rows is the reference's, so results differ from it only by FMA rounding. */
#include <immintrin.h>

#include "press-ops.h"

void sq_combine__avx2(float *out, const float *s, size_t stride, int n_rows, int n, float a,
                      float b) {
    const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    for (int j = 0; j < n; j += 8) {
        const __m256i m =
            _mm256_cmpgt_epi32(_mm256_set1_epi32(n - j), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const int full = n - j >= 8;
        __m256 q = _mm256_setzero_ps();
        for (int r = 1; r < n_rows; r++) {
            const float *row = s + (size_t)r * stride + j;
            const __m256 v = full ? _mm256_loadu_ps(row) : _mm256_maskload_ps(row, m);
            q = _mm256_fmadd_ps(v, v, q);
        }
        const __m256 s0 = full ? _mm256_loadu_ps(s + j) : _mm256_maskload_ps(s + j, m);
        const __m256 r = _mm256_fmadd_ps(va, s0, _mm256_mul_ps(vb, q));
        if (full)
            _mm256_storeu_ps(out + j, r);
        else
            _mm256_maskstore_ps(out + j, m, r);
    }
}
