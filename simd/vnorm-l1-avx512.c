/* CriticalKV projected-value norm, AVX-512 (contract and reference: vnorm-l1-scalar.c).
 *
 * It is a GEMM (n value rows) x (d x n_out) whose result is only needed through the L1 norm of
 * each row, so the product never reaches memory: a block of 4 rows x 64 outputs lives in 16
 * accumulators (per dimension i: 4 loads of w[i][e0..e0+64), 4 broadcasts of v[r][i], 16 FMAs),
 * then its absolute values are folded into one running vector per row. */
#include <immintrin.h>

#include "avx512-lanes.h"

#include "press-ops.h"

static inline __attribute__((always_inline)) void rows_block(float *out, const float *v, int rows,
                                                             int d, const float *w, int n_out) {
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    __m512 sum[4];
    for (int r = 0; r < 4; r++)
        sum[r] = _mm512_setzero_ps();
    for (int e0 = 0; e0 < n_out; e0 += 64) {
        const __mmask16 m0 = avx512_lanes16(n_out - e0), m1 = avx512_lanes16(n_out - e0 - 16);
        const __mmask16 m2 = avx512_lanes16(n_out - e0 - 32), m3 = avx512_lanes16(n_out - e0 - 48);
        __m512 a[4][4];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                a[r][c] = _mm512_setzero_ps();
        for (int i = 0; i < d; i++) {
            const float *wr = w + (size_t)i * n_out + e0;
            const __m512 w0 = _mm512_maskz_loadu_ps(m0, wr),
                         w1 = _mm512_maskz_loadu_ps(m1, wr + 16);
            const __m512 w2 = _mm512_maskz_loadu_ps(m2, wr + 32);
            const __m512 w3 = _mm512_maskz_loadu_ps(m3, wr + 48);
            for (int r = 0; r < rows; r++) {
                const __m512 vb = _mm512_set1_ps(v[(size_t)r * d + i]);
                a[r][0] = _mm512_fmadd_ps(vb, w0, a[r][0]);
                a[r][1] = _mm512_fmadd_ps(vb, w1, a[r][1]);
                a[r][2] = _mm512_fmadd_ps(vb, w2, a[r][2]);
                a[r][3] = _mm512_fmadd_ps(vb, w3, a[r][3]);
            }
        }
        /* Masked-off lanes loaded zeros, so they add |0|. */
        for (int r = 0; r < rows; r++)
            sum[r] = _mm512_add_ps(sum[r],
                                   _mm512_add_ps(_mm512_add_ps(_mm512_and_ps(a[r][0], absmask),
                                                               _mm512_and_ps(a[r][1], absmask)),
                                                 _mm512_add_ps(_mm512_and_ps(a[r][2], absmask),
                                                               _mm512_and_ps(a[r][3], absmask))));
    }
    for (int r = 0; r < rows; r++)
        out[r] += _mm512_reduce_add_ps(sum[r]);
}

void vnorm_l1__avx512(float *out, const float *v, int n, int d, const float *w, int n_out) {
    int r = 0;
    for (; r + 4 <= n; r += 4)
        rows_block(out + r, v + (size_t)r * d, 4, d, w, n_out);
    if (r < n)
        rows_block(out + r, v + (size_t)r * d, n - r, d, w, n_out);
}
