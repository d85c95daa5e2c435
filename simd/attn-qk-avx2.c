/* Attention scores, AVX2 + FMA + F16C (contract: ops.h; reference: attn-qk-scalar.c; designs:
 * attn-qk-avx512.c, attn-qk-vnni.c).
 *
 * The tile is 2 keys x up to 4 query rows: 8 accumulators, which with the 2 key chunks and the
 * operands fit the 16 ymm registers. Each chunk of the two key rows is loaded and converted
 * once and serves the 4 rows (the G query heads of a GQA group in decode, tokens x G rows in
 * prefill); the tile's 8 dot products end in one 8-way horizontal reduction.
 *
 * int8 keys take the integer path of attn-qk-vnni.c, with vpmaddwd + vpaddd in place of
 * vpdpwssd (AVX2 CPUs have no VNNI). Why: decode attention over an int8 cache is bound by
 * arithmetic, and widening key values to f32 costs two instructions per 8 values. Here each
 * query row is rounded once to int16 with its own scale (error at most 2^-16 of the row's largest
 * value, far below the int8 key's own 2^-8: the bound test_ops holds the int16 kernels to), keys
 * are sign-extended to int16 (one instruction per 16 values), and vpmaddwd multiplies and adds
 * pairs into int32 lanes: 16 products per instruction. The sums are exact: a score adds d
 * products of |q| <= 32767 and |k| <= 128, < 2^31 for d <= 512 (heads are 64 to 256 wide;
 * longer rows take the f32 path). Then one scale (mul x key scale x query scale) per score.
 *
 * f16 and f32 keys are converted to f32 (vcvtph2ps) and FMA'd with the f32 queries. */
#include "avx2-kv-row.h"
#include "ops.h"

enum {
    QK_I16_DMAX = 512, /* int32 sums stay exact up to here (above) */
    Q16_VALUES = 8192, /* int16 query values per batch: 16 KB of stack, 16 rows of 512 */
    Q16_ROWS = 64,     /* query rows per batch */
};

/* The scales of keys 0 and 1 (nk = 2) or of key 0 alone, in every lane pair (b = lane & 1). */
AVX2_INLINE __m256 key_scales(const float *k_scale, const int nk) {
    if (nk == 1)
        return _mm256_set1_ps(k_scale[0]);
    double pair;
    memcpy(&pair, k_scale, sizeof pair);
    return _mm256_castpd_ps(_mm256_set1_pd(pair));
}

/* Scales the tile's 8 dots (lane 2r + b: query row r, key b) by f and stores those of rows < R
 * and keys < nk at s[r * s_stride + b]. */
AVX2_INLINE void store_tile(float *s, size_t s_stride, __m256 dots, __m256 f, const int R,
                            const int nk) {
    const __m256 v = _mm256_mul_ps(dots, f);
    const __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    for (int r = 0; r < R; r++) {
        const __m128 h = r < 2 ? lo : hi;
        const __m128 pair = r & 1 ? _mm_movehl_ps(h, h) : h; /* lanes 2r, 2r + 1 in 0, 1 */
        float *sr = s + r * s_stride;
        if (nk == 2)
            _mm_storel_pi((__m64 *)sr, pair);
        else
            _mm_store_ss(sr, pair);
    }
}

/* ---- f32 path: f16 and f32 keys, int8 rows longer than QK_I16_DMAX ---- */

/* Values i .. i + min(left, 8) of key rows k0, k1 (k1 unread when nk = 1) against R rows. */
AVX2_INLINE void qkf_step(__m256 a[8], const float *q, size_t q_stride, const void *k0,
                          const void *k1, int i, int left, enum kv_kind kind, const int R,
                          const int nk) {
    const __m256 x0 = kv_load8(k0, i, left, kind);
    const __m256 x1 = nk == 2 ? kv_load8(k1, i, left, kind) : _mm256_setzero_ps();
    for (int r = 0; r < R; r++) {
        const __m256 qv = avx2_load_ps(q + r * q_stride + i, left, 0.0f);
        a[2 * r] = _mm256_fmadd_ps(qv, x0, a[2 * r]);
        if (nk == 2)
            a[2 * r + 1] = _mm256_fmadd_ps(qv, x1, a[2 * r + 1]);
    }
}

/* Keys j .. j + nk - 1 against query rows 0 .. R - 1. */
AVX2_INLINE void qkf_tile(float *s, size_t s_stride, const float *q, size_t q_stride, const void *k,
                          const float *k_scale, int j, int d, float mul, enum kv_kind kind,
                          const int R, const int nk) {
    __m256 a[8];
    for (int t = 0; t < 8; t++)
        a[t] = _mm256_setzero_ps();
    const void *k0 = kv_row(k, j, d, kind), *k1 = kv_row(k, j + 1, d, kind);
    int i = 0;
    for (; i + 8 <= d; i += 8)
        qkf_step(a, q, q_stride, k0, k1, i, 8, kind, R, nk);
    if (i < d)
        qkf_step(a, q, q_stride, k0, k1, i, d - i, kind, R, nk);
    __m256 f = _mm256_set1_ps(mul);
    if (kind == KV_I8)
        f = _mm256_mul_ps(f, key_scales(k_scale + j, nk));
    store_tile(s + j, s_stride, avx2_reduce8_ps(a), f, R, nk);
}

/* The tile for R = min(rows, 4), each row count its own unrolled body. */
AVX2_INLINE void qkf_rows(float *s, size_t s_stride, const float *q, size_t q_stride, int rows,
                          const void *k, const float *k_scale, int j, int d, float mul,
                          enum kv_kind kind, const int nk) {
    if (rows >= 4)
        qkf_tile(s, s_stride, q, q_stride, k, k_scale, j, d, mul, kind, 4, nk);
    else if (rows == 3)
        qkf_tile(s, s_stride, q, q_stride, k, k_scale, j, d, mul, kind, 3, nk);
    else if (rows == 2)
        qkf_tile(s, s_stride, q, q_stride, k, k_scale, j, d, mul, kind, 2, nk);
    else
        qkf_tile(s, s_stride, q, q_stride, k, k_scale, j, d, mul, kind, 1, nk);
}

/* Key pairs outside, query rows inside: each key pair is read once per call. */
AVX2_INLINE void qkf_body(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                          const void *k, const float *k_scale, int n_k, int d, float mul,
                          enum kv_kind kind) {
    int j = 0;
    for (; j + 2 <= n_k; j += 2)
        for (int r0 = 0; r0 < n_q; r0 += 4)
            qkf_rows(s + r0 * s_stride, s_stride, q + r0 * q_stride, q_stride, n_q - r0, k, k_scale,
                     j, d, mul, kind, 2);
    if (j < n_k)
        for (int r0 = 0; r0 < n_q; r0 += 4)
            qkf_rows(s + r0 * s_stride, s_stride, q + r0 * q_stride, q_stride, n_q - r0, k, k_scale,
                     j, d, mul, kind, 1);
}

/* ---- int16 path: int8 keys ---- */

/* Values i .. i + min(left, 16) of int8 key rows k0, k1 against R int16 query rows of dpad
 * values (zero from d on, so the zeroed key lanes past d add nothing). */
AVX2_INLINE void qk16_step(__m256i a[8], const int16_t *q16, int dpad, const int8_t *k0,
                           const int8_t *k1, int i, int left, const int R, const int nk) {
    const __m256i x0 = _mm256_cvtepi8_epi16(avx2_load_bytes(k0 + i, left));
    const __m256i x1 =
        nk == 2 ? _mm256_cvtepi8_epi16(avx2_load_bytes(k1 + i, left)) : _mm256_setzero_si256();
    for (int r = 0; r < R; r++) {
        const __m256i qv = _mm256_load_si256((const __m256i *)(q16 + (size_t)r * dpad + i));
        a[2 * r] = _mm256_add_epi32(a[2 * r], _mm256_madd_epi16(qv, x0));
        if (nk == 2)
            a[2 * r + 1] = _mm256_add_epi32(a[2 * r + 1], _mm256_madd_epi16(qv, x1));
    }
}

/* Keys j .. j + nk - 1 against int16 query rows 0 .. R - 1; qf[2r] = qf[2r + 1] = row r's scale
 * times mul (8 floats readable). */
AVX2_INLINE void qk16_tile(float *s, size_t s_stride, const int16_t *q16, int dpad, const float *qf,
                           const int8_t *k, const float *k_scale, int j, int d, const int R,
                           const int nk) {
    __m256i a[8];
    for (int t = 0; t < 8; t++)
        a[t] = _mm256_setzero_si256();
    const int8_t *k0 = k + (size_t)j * d, *k1 = k0 + d;
    int i = 0;
    for (; i + 16 <= d; i += 16)
        qk16_step(a, q16, dpad, k0, k1, i, 16, R, nk);
    if (i < d)
        qk16_step(a, q16, dpad, k0, k1, i, d - i, R, nk);
    store_tile(s + j, s_stride, _mm256_cvtepi32_ps(avx2_reduce8_epi32(a)),
               _mm256_mul_ps(key_scales(k_scale + j, nk), _mm256_loadu_ps(qf)), R, nk);
}

AVX2_INLINE void qk16_rows(float *s, size_t s_stride, const int16_t *q16, int dpad, const float *qf,
                           int rows, const int8_t *k, const float *k_scale, int j, int d,
                           const int nk) {
    if (rows >= 4)
        qk16_tile(s, s_stride, q16, dpad, qf, k, k_scale, j, d, 4, nk);
    else if (rows == 3)
        qk16_tile(s, s_stride, q16, dpad, qf, k, k_scale, j, d, 3, nk);
    else if (rows == 2)
        qk16_tile(s, s_stride, q16, dpad, qf, k, k_scale, j, d, 2, nk);
    else
        qk16_tile(s, s_stride, q16, dpad, qf, k, k_scale, j, d, 1, nk);
}

void attn_qk_i8__avx2(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                      const int8_t *k, const float *k_scale, int n_k, int d, float mul) {
    if (d > QK_I16_DMAX) {
        qkf_body(s, s_stride, q, q_stride, n_q, k, k_scale, n_k, d, mul, KV_I8);
        return;
    }
    const int dpad = (d + 15) & ~15;
    const int batch = Q16_VALUES / dpad < Q16_ROWS ? Q16_VALUES / dpad : Q16_ROWS;
    _Alignas(32) int16_t q16[Q16_VALUES];
    float qf[2 * Q16_ROWS + 8] = {0}; /* per row: its scale x mul, twice; a tile loads 8 */
    for (int q0 = 0; q0 < n_q; q0 += batch) {
        const int nq = n_q - q0 < batch ? n_q - q0 : batch;
        for (int r = 0; r < nq; r++)
            qf[2 * r] = qf[2 * r + 1] =
                kv_round_i16(q16 + (size_t)r * dpad, q + (q0 + r) * q_stride, NULL, d, dpad) * mul;
        float *sq = s + q0 * s_stride;
        int j = 0;
        for (; j + 2 <= n_k; j += 2)
            for (int r0 = 0; r0 < nq; r0 += 4)
                qk16_rows(sq + r0 * s_stride, s_stride, q16 + (size_t)r0 * dpad, dpad, qf + 2 * r0,
                          nq - r0, k, k_scale, j, d, 2);
        if (j < n_k)
            for (int r0 = 0; r0 < nq; r0 += 4)
                qk16_rows(sq + r0 * s_stride, s_stride, q16 + (size_t)r0 * dpad, dpad, qf + 2 * r0,
                          nq - r0, k, k_scale, j, d, 1);
    }
}

void attn_qk_f16__avx2(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                       const uint16_t *k, int n_k, int d, float mul) {
    qkf_body(s, s_stride, q, q_stride, n_q, k, NULL, n_k, d, mul, KV_F16);
}

void attn_qk_f32__avx2(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                       const float *k, int n_k, int d, float mul) {
    qkf_body(s, s_stride, q, q_stride, n_q, k, NULL, n_k, d, mul, KV_F32);
}
