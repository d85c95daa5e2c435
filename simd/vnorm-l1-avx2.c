/* CriticalKV projected-value norm, AVX2 + FMA (contract and reference: vnorm-l1-scalar.c;
 * design: vnorm-l1-avx512.c). Blocks of 2 value rows x 32 outputs: 8 accumulators, 4 loads of
 * w[i][e0..e0+32) and 2 broadcasts per dimension; |.| folded into one running vector per row. */
#include <immintrin.h>

#include "press-ops.h"

static inline __m256i lane_mask(int left) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left < 0 ? 0 : left), idx);
}

static inline __attribute__((always_inline)) void rows_block(float *out, const float *v, int rows,
                                                             int d, const float *w, int n_out) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 sum[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int e0 = 0; e0 < n_out; e0 += 32) {
        const int full = n_out - e0 >= 32;
        const __m256i m0 = lane_mask(n_out - e0), m1 = lane_mask(n_out - e0 - 8);
        const __m256i m2 = lane_mask(n_out - e0 - 16), m3 = lane_mask(n_out - e0 - 24);
        __m256 a[2][4];
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 4; c++)
                a[r][c] = _mm256_setzero_ps();
        for (int i = 0; i < d; i++) {
            const float *wr = w + (size_t)i * n_out + e0;
            __m256 w0, w1, w2, w3;
            if (full) {
                w0 = _mm256_loadu_ps(wr), w1 = _mm256_loadu_ps(wr + 8);
                w2 = _mm256_loadu_ps(wr + 16), w3 = _mm256_loadu_ps(wr + 24);
            } else { /* masked-off lanes load zeros and add |0| */
                w0 = _mm256_maskload_ps(wr, m0), w1 = _mm256_maskload_ps(wr + 8, m1);
                w2 = _mm256_maskload_ps(wr + 16, m2), w3 = _mm256_maskload_ps(wr + 24, m3);
            }
            for (int r = 0; r < rows; r++) {
                const __m256 vb = _mm256_broadcast_ss(v + (size_t)r * d + i);
                a[r][0] = _mm256_fmadd_ps(vb, w0, a[r][0]);
                a[r][1] = _mm256_fmadd_ps(vb, w1, a[r][1]);
                a[r][2] = _mm256_fmadd_ps(vb, w2, a[r][2]);
                a[r][3] = _mm256_fmadd_ps(vb, w3, a[r][3]);
            }
        }
        for (int r = 0; r < rows; r++)
            sum[r] = _mm256_add_ps(sum[r],
                                   _mm256_add_ps(_mm256_add_ps(_mm256_and_ps(a[r][0], absmask),
                                                               _mm256_and_ps(a[r][1], absmask)),
                                                 _mm256_add_ps(_mm256_and_ps(a[r][2], absmask),
                                                               _mm256_and_ps(a[r][3], absmask))));
    }
    for (int r = 0; r < rows; r++) {
        __m128 x = _mm_add_ps(_mm256_castps256_ps128(sum[r]), _mm256_extractf128_ps(sum[r], 1));
        x = _mm_add_ps(x, _mm_movehl_ps(x, x));
        x = _mm_add_ss(x, _mm_movehdup_ps(x));
        out[r] += _mm_cvtss_f32(x);
    }
}

void vnorm_l1__avx2(float *out, const float *v, int n, int d, const float *w, int n_out) {
    int r = 0;
    for (; r + 2 <= n; r += 2)
        rows_block(out + r, v + (size_t)r * d, 2, d, w, n_out);
    if (r < n)
        rows_block(out + r, v + (size_t)r * d, 1, d, w, n_out);
}
