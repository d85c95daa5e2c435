/* Attention logits of many query rows against one KV head, AVX2 + FMA (contract: the attn_qk
 * ops of ops.h, reference attn_qk_*__scalar; design: qk-gemm-avx512.c). With 16 vector
 * registers the block is 2 query rows x 32 keys: 8 accumulators, 4 loads of the transposed key
 * tile and 2 broadcasts per dimension. Keys are converted to f32 by plain C while packing (once
 * per key and call, shared by all query rows). head_dim above KT_DIM_MAX uses the reference. */
#include <immintrin.h>
#include <string.h>

#include "ops.h"
#include "press-ops.h"
#include "quant.h"

enum { KT_KEYS = 32, KT_DIM_MAX = 256 };
enum { T_I8, T_F16, T_F32 };

static inline __attribute__((always_inline)) void pack_tile(float *kt, const void *k, int j0,
                                                            int nt, int d, int type) {
    for (int jj = 0; jj < nt; jj++) {
        const size_t row = (size_t)(j0 + jj) * d;
        for (int i = 0; i < d; i++) {
            float x;
            if (type == T_I8)
                x = (float)((const int8_t *)k)[row + i];
            else if (type == T_F16) {
                x = quant_f16_to_f32(((const uint16_t *)k)[row + i]);
            } else
                x = ((const float *)k)[row + i];
            kt[(size_t)i * KT_KEYS + jj] = x;
        }
    }
    if (nt < KT_KEYS)
        for (int i = 0; i < d; i++)
            memset(kt + (size_t)i * KT_KEYS + nt, 0, (size_t)(KT_KEYS - nt) * sizeof *kt);
}

/* Lanes [0, left) of an 8-lane store. */
static inline __m256i lane_mask(int left) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left < 0 ? 0 : left), idx);
}

static inline __attribute__((always_inline)) void micro(float *s, size_t s_stride, const float *q,
                                                        size_t q_stride, int rows, const float *kt,
                                                        int d, const __m256 ksc[4], __m256 vmul,
                                                        int nt) {
    __m256 a[2][4];
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 4; c++)
            a[r][c] = _mm256_setzero_ps();
    for (int i = 0; i < d; i++) {
        const float *kr = kt + (size_t)i * KT_KEYS;
        const __m256 k0 = _mm256_load_ps(kr), k1 = _mm256_load_ps(kr + 8);
        const __m256 k2 = _mm256_load_ps(kr + 16), k3 = _mm256_load_ps(kr + 24);
        for (int r = 0; r < rows; r++) {
            const __m256 qb = _mm256_broadcast_ss(q + r * q_stride + i);
            a[r][0] = _mm256_fmadd_ps(qb, k0, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(qb, k1, a[r][1]);
            a[r][2] = _mm256_fmadd_ps(qb, k2, a[r][2]);
            a[r][3] = _mm256_fmadd_ps(qb, k3, a[r][3]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < 4 && nt > 8 * c; c++) {
            const __m256 out = _mm256_mul_ps(_mm256_mul_ps(a[r][c], ksc[c]), vmul);
            float *dst = s + r * s_stride + 8 * c;
            if (nt - 8 * c >= 8)
                _mm256_storeu_ps(dst, out);
            else
                _mm256_maskstore_ps(dst, lane_mask(nt - 8 * c), out);
        }
}

static inline __attribute__((always_inline)) void qk_gemm(float *s, size_t s_stride, const float *q,
                                                          size_t q_stride, int n_q, const void *k,
                                                          const float *k_scale, int n_k, int d,
                                                          float mul, int type) {
    float kt[KT_DIM_MAX * KT_KEYS] __attribute__((aligned(32)));
    const __m256 vmul = _mm256_set1_ps(mul);
    for (int j0 = 0; j0 < n_k; j0 += KT_KEYS) {
        const int nt = n_k - j0 < KT_KEYS ? n_k - j0 : KT_KEYS;
        pack_tile(kt, k, j0, nt, d, type);
        __m256 ksc[4]; /* the int8 row scale per key column, 1 for f16/f32 */
        for (int c = 0; c < 4; c++)
            ksc[c] = type == T_I8 ? _mm256_maskload_ps(k_scale + j0 + 8 * c, lane_mask(nt - 8 * c))
                                  : _mm256_set1_ps(1.0f);
        int q0 = 0;
        for (; q0 + 2 <= n_q; q0 += 2)
            micro(s + q0 * s_stride + j0, s_stride, q + q0 * q_stride, q_stride, 2, kt, d, ksc,
                  vmul, nt);
        if (q0 < n_q)
            micro(s + q0 * s_stride + j0, s_stride, q + q0 * q_stride, q_stride, 1, kt, d, ksc,
                  vmul, nt);
    }
}

void qk_gemm_i8__avx2(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                      const int8_t *k, const float *k_scale, int n_k, int d, float mul) {
    if (d > KT_DIM_MAX)
        attn_qk_i8__scalar(s, s_stride, q, q_stride, n_q, k, k_scale, n_k, d, mul);
    else
        qk_gemm(s, s_stride, q, q_stride, n_q, k, k_scale, n_k, d, mul, T_I8);
}

void qk_gemm_f16__avx2(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                       const uint16_t *k, int n_k, int d, float mul) {
    if (d > KT_DIM_MAX)
        attn_qk_f16__scalar(s, s_stride, q, q_stride, n_q, k, n_k, d, mul);
    else
        qk_gemm(s, s_stride, q, q_stride, n_q, k, NULL, n_k, d, mul, T_F16);
}

void qk_gemm_f32__avx2(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                       const float *k, int n_k, int d, float mul) {
    if (d > KT_DIM_MAX)
        attn_qk_f32__scalar(s, s_stride, q, q_stride, n_q, k, n_k, d, mul);
    else
        qk_gemm(s, s_stride, q, q_stride, n_q, k, NULL, n_k, d, mul, T_F32);
}
