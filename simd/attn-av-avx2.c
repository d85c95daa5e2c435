/* Attention output, AVX2 + FMA + F16C: acc += sum_j p_j v_j (contract: ops.h; reference:
 * attn-av-scalar.c; designs: attn-av-avx512.c, attn-av-vnni.c).
 *
 * The tile is up to 4 query rows x 16 dims: 8 accumulators stay in registers while the value
 * rows stream past, and each row's 16 values are loaded and converted once for the 4 rows (the
 * G query heads of a GQA group share them).
 *
 * int8 values take the integer path of attn-av-vnni.c, with vpmaddwd + vpaddd in place of
 * vpdpwssd. Why: like the scores (attn-qk-avx2.c), the weighted sum over an int8 cache is bound
 * by arithmetic, and widening to f32 costs two instructions per 8 values. Here the weights
 * w_j = p_j * v_scale_j of each query row are rounded to int16 over chunks of AV_CHUNK keys with
 * one scale per chunk (error at most 2^-16 of the chunk's largest weight per key: the VNNI
 * kernel's bound in test_ops), the bytes of value rows j and j + 1 are interleaved (vpunpcklbw)
 * and sign-extended, so each int32 lane holds one dimension of both rows in order, and vpmaddwd
 * adds w_j v_j + w_j+1 v_j+1 per lane. Sums stay exact in int32 (|w| <= 32767, |v| <= 128,
 * 256 keys: < 2^31); they are scaled into the f32 accumulators once per chunk and 16 dims.
 *
 * f16 and f32 values are converted to f32 and FMA'd with the f32 weights. */
#include "avx2-kv-row.h"
#include "ops.h"

enum {
    AV_ROWS = 4,    /* query rows per tile */
    AV_CHUNK = 256, /* keys per int16 weight scale */
    W16_LEN = AV_CHUNK + 16,
    AV_CHUNK_BYTES = 16384, /* bytes of value rows per pass over the dims: half a 32 KB L1 */
};

/* ---- f32 path: f16 and f32 values ---- */

/* Query rows 0 .. R - 1, dims g .. g + min(left, 16), every value row. */
AVX2_INLINE void avf_tile(float *acc, size_t acc_stride, const float *p, size_t p_stride,
                          const void *v, int n_k, int d, int g, int left, enum kv_kind kind,
                          const int R) {
    __m256 a[AV_ROWS][2];
    for (int r = 0; r < R; r++)
        for (int h = 0; h < 2; h++)
            a[r][h] = avx2_load_ps(acc + r * acc_stride + g + 8 * h, left - 8 * h, 0.0f);
    for (int j = 0; j < n_k; j++) {
        const void *row = kv_row(v, j, d, kind);
        const __m256 x0 = kv_load8(row, g, left, kind), x1 = kv_load8(row, g + 8, left - 8, kind);
        for (int r = 0; r < R; r++) {
            const __m256 w = _mm256_set1_ps(p[r * p_stride + j]);
            a[r][0] = _mm256_fmadd_ps(w, x0, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(w, x1, a[r][1]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int h = 0; h < 2; h++)
            avx2_store_ps(acc + r * acc_stride + g + 8 * h, left - 8 * h, a[r][h]);
}

AVX2_INLINE void avf_rows(float *acc, size_t acc_stride, const float *p, size_t p_stride, int rows,
                          const void *v, int n_k, int d, int g, int left, enum kv_kind kind) {
    if (rows >= 4)
        avf_tile(acc, acc_stride, p, p_stride, v, n_k, d, g, left, kind, 4);
    else if (rows == 3)
        avf_tile(acc, acc_stride, p, p_stride, v, n_k, d, g, left, kind, 3);
    else if (rows == 2)
        avf_tile(acc, acc_stride, p, p_stride, v, n_k, d, g, left, kind, 2);
    else
        avf_tile(acc, acc_stride, p, p_stride, v, n_k, d, g, left, kind, 1);
}

/* Keys in chunks of about AV_CHUNK_BYTES, so that the rows the first 16 dims pull in are still
 * in L1 when the next 16 dims pass over them. */
AVX2_INLINE void avf_body(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                          const void *v, int n_k, int d, enum kv_kind kind) {
    const size_t row_bytes = (size_t)d * (kind == KV_F16 ? 2 : 4);
    const int chunk = row_bytes * 16 >= AV_CHUNK_BYTES ? 16 : (int)(AV_CHUNK_BYTES / row_bytes);
    for (int r0 = 0; r0 < n_q; r0 += AV_ROWS) {
        float *ar = acc + r0 * acc_stride;
        for (int j0 = 0; j0 < n_k; j0 += chunk) {
            const int n = n_k - j0 < chunk ? n_k - j0 : chunk;
            const float *pr = p + r0 * p_stride + j0;
            const void *vc = kv_row(v, (size_t)j0, d, kind);
            int g = 0;
            for (; g + 16 <= d; g += 16)
                avf_rows(ar, acc_stride, pr, p_stride, n_q - r0, vc, n, d, g, 16, kind);
            if (g < d)
                avf_rows(ar, acc_stride, pr, p_stride, n_q - r0, vc, n, d, g, d - g, kind);
        }
    }
}

/* ---- int16 path: int8 values ---- */

/* Value rows j and j + 1 (x1; unread when two = 0, its weight is the zero padding), 16 dims
 * (`left` valid), into the int32 sums of R query rows. */
AVX2_INLINE void av16_pair(__m256i a[AV_ROWS][2], const int16_t (*w16)[W16_LEN], const int8_t *x0,
                           const int8_t *x1, int j, int left, const int R, const int two) {
    const __m128i b0 = avx2_load_bytes(x0, left);
    const __m128i b1 = two ? avx2_load_bytes(x1, left) : _mm_setzero_si128();
    const __m256i lo = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(b0, b1)); /* dims 0..7: j, j+1 */
    const __m256i hi = _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(b0, b1)); /* dims 8..15 */
    for (int r = 0; r < R; r++) {
        int32_t pair; /* w16[r][j] in the low half, as the value of row j is in each lane */
        memcpy(&pair, &w16[r][j], sizeof pair);
        const __m256i w = _mm256_set1_epi32(pair);
        a[r][0] = _mm256_add_epi32(a[r][0], _mm256_madd_epi16(lo, w));
        a[r][1] = _mm256_add_epi32(a[r][1], _mm256_madd_epi16(hi, w));
    }
}

/* Query rows 0 .. R - 1, dims g .. g + min(left, 16), the n keys of one chunk. */
AVX2_INLINE void av16_tile(float *acc, size_t acc_stride, const int16_t (*w16)[W16_LEN],
                           const float *sw, const int8_t *v, int n, int d, int g, int left,
                           const int R) {
    __m256i a[AV_ROWS][2];
    for (int r = 0; r < R; r++)
        a[r][0] = a[r][1] = _mm256_setzero_si256();
    const int8_t *x = v + g;
    int j = 0;
    for (; j + 2 <= n; j += 2, x += 2 * (size_t)d)
        av16_pair(a, w16, x, x + d, j, left, R, 1);
    if (j < n)
        av16_pair(a, w16, x, x, j, left, R, 0);
    for (int r = 0; r < R; r++) {
        const __m256 s = _mm256_set1_ps(sw[r]);
        for (int h = 0; h < 2; h++) {
            float *ar = acc + r * acc_stride + g + 8 * h;
            const __m256 old = avx2_load_ps(ar, left - 8 * h, 0.0f);
            avx2_store_ps(ar, left - 8 * h, _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[r][h]), s, old));
        }
    }
}

AVX2_INLINE void av16_rows(float *acc, size_t acc_stride, const int16_t (*w16)[W16_LEN],
                           const float *sw, int rows, const int8_t *v, int n, int d, int g,
                           int left) {
    if (rows >= 4)
        av16_tile(acc, acc_stride, w16, sw, v, n, d, g, left, 4);
    else if (rows == 3)
        av16_tile(acc, acc_stride, w16, sw, v, n, d, g, left, 3);
    else if (rows == 2)
        av16_tile(acc, acc_stride, w16, sw, v, n, d, g, left, 2);
    else
        av16_tile(acc, acc_stride, w16, sw, v, n, d, g, left, 1);
}

void attn_av_i8__avx2(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                      const int8_t *v, const float *v_scale, int n_k, int d) {
    _Alignas(32) int16_t w16[AV_ROWS][W16_LEN];
    float sw[AV_ROWS];
    for (int r0 = 0; r0 < n_q; r0 += AV_ROWS) {
        const int R = n_q - r0 < AV_ROWS ? n_q - r0 : AV_ROWS;
        float *ar = acc + r0 * acc_stride;
        /* chunks of AV_CHUNK keys: the int32 bound, and 16 KB of rows (d = 64) that stay in
         * L1 while the dims pass over them */
        for (int j0 = 0; j0 < n_k; j0 += AV_CHUNK) {
            const int n = n_k - j0 < AV_CHUNK ? n_k - j0 : AV_CHUNK;
            for (int r = 0; r < R; r++) /* zero-padded to 16: w16[r][n] partners an odd n */
                sw[r] = kv_round_i16(w16[r], p + (r0 + r) * p_stride + j0, v_scale + j0, n,
                                     (n + 15) & ~15);
            const int8_t *vc = v + (size_t)j0 * d;
            int g = 0;
            for (; g + 16 <= d; g += 16)
                av16_rows(ar, acc_stride, w16, sw, R, vc, n, d, g, 16);
            if (g < d)
                av16_rows(ar, acc_stride, w16, sw, R, vc, n, d, g, d - g);
        }
    }
}

void attn_av_f16__avx2(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                       const uint16_t *v, int n_k, int d) {
    avf_body(acc, acc_stride, p, p_stride, n_q, v, n_k, d, KV_F16);
}

void attn_av_f32__avx2(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                       const float *v, int n_k, int d) {
    avf_body(acc, acc_stride, p, p_stride, n_q, v, n_k, d, KV_F32);
}
