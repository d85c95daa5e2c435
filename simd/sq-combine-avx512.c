/* Expected Attention's logits, AVX-512 (contract and reference: sq-combine-scalar.c): sixteen
 * keys per vector, the squares summed down the rows with FMA; the tail is masked. */
#include <immintrin.h>

#include "press-ops.h"

void sq_combine__avx512(float *out, const float *s, size_t stride, int n_rows, int n, float a,
                        float b) {
    const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = (__mmask16)(n - j >= 16 ? 0xffff : (1u << (n - j)) - 1);
        __m512 q = _mm512_setzero_ps();
        for (int r = 1; r < n_rows; r++) {
            const __m512 v = _mm512_maskz_loadu_ps(m, s + (size_t)r * stride + j);
            q = _mm512_fmadd_ps(v, v, q);
        }
        const __m512 s0 = _mm512_maskz_loadu_ps(m, s + j);
        _mm512_mask_storeu_ps(out + j, m, _mm512_fmadd_ps(va, s0, _mm512_mul_ps(vb, q)));
    }
}
