/* Attention logits of MANY query rows against one KV head, AVX-512: the press scorer's
 * (query rows) x (all keys) block, a small GEMM. Same contract as the attn_qk ops of ops.h
 * (attn_qk_*__scalar is the reference), but blocked for n_q in the tens:
 *
 *   a tile of 64 keys is converted once to f32 and transposed to kt[i][0..64), then every
 *   group of 4 query rows runs over it with 16 accumulators (4 rows x 64 keys): per dimension i
 *   4 vector loads of kt[i] and 4 broadcasts of q[r][i] feed 16 FMAs.
 *
 * The per-query-row kernel of ops.h re-widens every int8 key for every query row and ends each
 * dot product with a horizontal sum; here the widening is paid once per key and per call, and
 * no horizontal sums remain. The int8 row scale and `mul` are applied at the store, in the
 * reference's order (dot * scale * mul). head_dim above KT_DIM_MAX uses the reference. */
#include <immintrin.h>

#include "avx512-lanes.h"
#include <string.h>

#include "ops.h"
#include "press-ops.h"

enum { KT_KEYS = 64, KT_DIM_MAX = 256 };
enum { T_I8, T_F16, T_F32 };

/* kt[i * KT_KEYS + jj] = key (j0 + jj) dim i as f32, zero for jj >= nt. */
static inline __attribute__((always_inline)) void pack_tile(float *kt, const void *k, int j0,
                                                            int nt, int d, int type) {
    for (int jj = 0; jj < nt; jj++) {
        const size_t row = (size_t)(j0 + jj) * d;
        for (int i = 0; i < d; i += 16) {
            const __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (d - i)) - 1);
            __m512 x;
            if (type == T_I8)
                x = _mm512_cvtepi32_ps(
                    _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, (const int8_t *)k + row + i)));
            else if (type == T_F16)
                x = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)k + row + i));
            else
                x = _mm512_maskz_loadu_ps(m, (const float *)k + row + i);
            /* Scatter the 16 dims down column jj of the tile. */
            float tmp[16];
            _mm512_storeu_ps(tmp, x);
            const int n = d - i < 16 ? d - i : 16;
            for (int c = 0; c < n; c++)
                kt[(size_t)(i + c) * KT_KEYS + jj] = tmp[c];
        }
    }
    if (nt < KT_KEYS)
        for (int i = 0; i < d; i++)
            memset(kt + (size_t)i * KT_KEYS + nt, 0, (size_t)(KT_KEYS - nt) * sizeof *kt);
}

/* `rows` (1..4) query rows against one packed tile; stores nt logits per row, each as
 * (dot * ksc) * vmul, the reference's rounding order. */
static inline __attribute__((always_inline)) void micro(float *s, size_t s_stride, const float *q,
                                                        size_t q_stride, int rows, const float *kt,
                                                        int d, const __m512 ksc[4], __m512 vmul,
                                                        int nt) {
    __m512 a[4][4];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            a[r][c] = _mm512_setzero_ps();
    for (int i = 0; i < d; i++) {
        const float *kr = kt + (size_t)i * KT_KEYS;
        const __m512 k0 = _mm512_load_ps(kr), k1 = _mm512_load_ps(kr + 16);
        const __m512 k2 = _mm512_load_ps(kr + 32), k3 = _mm512_load_ps(kr + 48);
        for (int r = 0; r < rows; r++) {
            const __m512 qb = _mm512_set1_ps(q[r * q_stride + i]);
            a[r][0] = _mm512_fmadd_ps(qb, k0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(qb, k1, a[r][1]);
            a[r][2] = _mm512_fmadd_ps(qb, k2, a[r][2]);
            a[r][3] = _mm512_fmadd_ps(qb, k3, a[r][3]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < 4 && nt > 16 * c; c++)
            _mm512_mask_storeu_ps(s + r * s_stride + 16 * c, avx512_lanes16(nt - 16 * c),
                                  _mm512_mul_ps(_mm512_mul_ps(a[r][c], ksc[c]), vmul));
}

static inline __attribute__((always_inline)) void qk_gemm(float *s, size_t s_stride, const float *q,
                                                          size_t q_stride, int n_q, const void *k,
                                                          const float *k_scale, int n_k, int d,
                                                          float mul, int type) {
    float kt[KT_DIM_MAX * KT_KEYS] __attribute__((aligned(64)));
    const __m512 vmul = _mm512_set1_ps(mul);
    for (int j0 = 0; j0 < n_k; j0 += KT_KEYS) {
        const int nt = n_k - j0 < KT_KEYS ? n_k - j0 : KT_KEYS;
        pack_tile(kt, k, j0, nt, d, type);
        __m512 ksc[4]; /* the int8 row scale per key column, 1 for f16/f32 */
        for (int c = 0; c < 4; c++)
            ksc[c] = type == T_I8
                         ? _mm512_maskz_loadu_ps(avx512_lanes16(nt - 16 * c), k_scale + j0 + 16 * c)
                         : _mm512_set1_ps(1.0f);
        int q0 = 0;
        for (; q0 + 4 <= n_q; q0 += 4)
            micro(s + q0 * s_stride + j0, s_stride, q + q0 * q_stride, q_stride, 4, kt, d, ksc,
                  vmul, nt);
        if (q0 < n_q) /* 1..3 rows left: the same body, fewer accumulators live */
            micro(s + q0 * s_stride + j0, s_stride, q + q0 * q_stride, q_stride, n_q - q0, kt, d,
                  ksc, vmul, nt);
    }
}

void qk_gemm_i8__avx512(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                        const int8_t *k, const float *k_scale, int n_k, int d, float mul) {
    if (d > KT_DIM_MAX)
        attn_qk_i8__scalar(s, s_stride, q, q_stride, n_q, k, k_scale, n_k, d, mul);
    else
        qk_gemm(s, s_stride, q, q_stride, n_q, k, k_scale, n_k, d, mul, T_I8);
}

void qk_gemm_f16__avx512(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                         const uint16_t *k, int n_k, int d, float mul) {
    if (d > KT_DIM_MAX)
        attn_qk_f16__scalar(s, s_stride, q, q_stride, n_q, k, n_k, d, mul);
    else
        qk_gemm(s, s_stride, q, q_stride, n_q, k, NULL, n_k, d, mul, T_F16);
}

void qk_gemm_f32__avx512(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                         const float *k, int n_k, int d, float mul) {
    if (d > KT_DIM_MAX)
        attn_qk_f32__scalar(s, s_stride, q, q_stride, n_q, k, n_k, d, mul);
    else
        qk_gemm(s, s_stride, q, q_stride, n_q, k, NULL, n_k, d, mul, T_F32);
}
