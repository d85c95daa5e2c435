/* Attention output over int8 values, AVX-512 VNNI: acc += sum_j p_j * v_scale_j * v_j with
 * integer multiply-adds instead of widening every value to f32.
 *
 * Why: like the scores (attn-qk-vnni.c), decode's weighted sum over an int8 cache is bound by
 * arithmetic: the f32 path widens each value twice and spends one FMA per 16 values per query
 * head. Here the weights w_j = p_j * v_scale_j of each query row are rounded to int16 over
 * chunks of AV_CHUNK keys with one scale per chunk (error at most 2^-16 of the chunk's largest
 * weight per key), two value rows are widened to int16 and interleaved so that each int32 lane
 * holds one dimension of both, and vpdpwssd adds w_j v_j + w_j+1 v_j+1 per lane: 32 products
 * per instruction. Sums stay exact in int32 (|w| <= 32767, |v| <= 128, 256 keys: < 2^31), and
 * are scaled and added to the f32 accumulators once per chunk.
 *
 * The interleave works within 128-bit lanes, so lane dword i of the low (high) half holds
 * dimension 8 L + i (8 L + 4 + i) of 128-bit lane L; a two-source permute restores the order. */
#include <immintrin.h>

#include "avx512-lanes.h"
#include <stdbool.h>
#include <string.h>

#include "ops.h"

enum { AV_CHUNK = 256, AV_ROWS = 4, PREFETCH_ROWS = 16 };

/* w16[j] = round((p[j] * scale[j]) / s) for j < n, with s = max |p scale| / 32767, zero-padded
 * to an even count; returns s. */
static float quantize_weights(int16_t *w16, const float *p, const float *scale, int n) {
    __m512 mx = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = avx512_lanes16(n - j);
        const __m512 w =
            _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + j), _mm512_maskz_loadu_ps(m, scale + j));
        mx = _mm512_max_ps(mx, _mm512_abs_ps(w));
    }
    const float amax = _mm512_reduce_max_ps(mx);
    const __m512 inv = _mm512_set1_ps(amax > 0.0f ? 32767.0f / amax : 0.0f);
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = avx512_lanes16(n - j);
        const __m512 w =
            _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + j), _mm512_maskz_loadu_ps(m, scale + j));
        _mm256_mask_storeu_epi16(w16 + j, m,
                                 _mm512_cvtsepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(w, inv))));
    }
    w16[n] = 0; /* the partner of an odd last key */
    return amax / 32767.0f;
}

/* Adds scale * (the permuted int32 sums of 32 dims in lo, hi) to acc[0..32) (dims < d - i0). */
static inline __attribute__((always_inline)) void flush32(float *acc, int d, int i0, __m512i lo,
                                                          __m512i hi, __m512 scale) {
    const __m512i first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const __m512i second =
        _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    const __m512 fl = _mm512_cvtepi32_ps(lo), fh = _mm512_cvtepi32_ps(hi);
    for (int h = 0; h < 2; h++) {
        const __mmask16 m = avx512_lanes16(d - (i0 + 16 * h));
        if (!m)
            return;
        const __m512 x = _mm512_permutex2var_ps(fl, h ? second : first, fh);
        float *a = acc + i0 + 16 * h;
        _mm512_mask_storeu_ps(a, m, _mm512_fmadd_ps(x, scale, _mm512_maskz_loadu_ps(m, a)));
    }
}

/* R query rows (R <= 4), dims g .. g + 64, keys [0, n) of the chunk, weights w16[r][0..n]. */
static inline __attribute__((always_inline)) void av_dims64(float *acc, size_t acc_stride,
                                                            const int16_t (*w16)[AV_CHUNK + 2],
                                                            const float *sw, const int8_t *v, int n,
                                                            int d, int g, const int R) {
    __m512i a[AV_ROWS][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < 4; c++)
            a[r][c] = _mm512_setzero_si512();
    const __mmask32 m0 = avx512_lanes32(d - g), m1 = avx512_lanes32(d - (g + 32));
    for (int j = 0; j < n; j += 2) {
        const int8_t *r0 = v + (size_t)j * d + g;
        const bool two = j + 1 < n;
        /* rows PREFETCH_ROWS ahead, so DRAM latency hides behind work (hints: never fault) */
        _mm_prefetch((const char *)(r0 + PREFETCH_ROWS * d), _MM_HINT_T0);
        _mm_prefetch((const char *)(r0 + (PREFETCH_ROWS + 1) * d), _MM_HINT_T0);
        const __m512i x0 = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m0, r0));
        const __m512i x1 = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m1, r0 + 32));
        const __m512i y0 =
            _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(two ? m0 : 0, r0 + (two ? d : 0)));
        const __m512i y1 =
            _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(two ? m1 : 0, r0 + (two ? d : 0) + 32));
        const __m512i u[4] = {_mm512_unpacklo_epi16(x0, y0), _mm512_unpackhi_epi16(x0, y0),
                              _mm512_unpacklo_epi16(x1, y1), _mm512_unpackhi_epi16(x1, y1)};
        for (int r = 0; r < R; r++) {
            int32_t pair;
            memcpy(&pair, &w16[r][j], sizeof pair);
            const __m512i wv = _mm512_set1_epi32(pair);
            for (int c = 0; c < 4; c++)
                a[r][c] = _mm512_dpwssd_epi32(a[r][c], u[c], wv);
        }
    }
    for (int r = 0; r < R; r++) {
        const __m512 s = _mm512_set1_ps(sw[r]);
        float *ar = acc + r * acc_stride;
        flush32(ar, d, g, a[r][0], a[r][1], s);
        flush32(ar, d, g + 32, a[r][2], a[r][3], s);
    }
}

static void av_rows(float *acc, size_t acc_stride, const float *p, size_t p_stride, const int8_t *v,
                    const float *v_scale, int n_k, int d, int R) {
    _Alignas(64) int16_t w16[AV_ROWS][AV_CHUNK + 2];
    float sw[AV_ROWS];
    for (int j0 = 0; j0 < n_k; j0 += AV_CHUNK) {
        const int n = n_k - j0 < AV_CHUNK ? n_k - j0 : AV_CHUNK;
        for (int r = 0; r < R; r++)
            sw[r] = quantize_weights(w16[r], p + r * p_stride + j0, v_scale + j0, n);
        const int8_t *vc = v + (size_t)j0 * d;
        for (int g = 0; g < d; g += 64) {
            if (R == 4)
                av_dims64(acc, acc_stride, w16, sw, vc, n, d, g, 4);
            else if (R == 3)
                av_dims64(acc, acc_stride, w16, sw, vc, n, d, g, 3);
            else if (R == 2)
                av_dims64(acc, acc_stride, w16, sw, vc, n, d, g, 2);
            else
                av_dims64(acc, acc_stride, w16, sw, vc, n, d, g, 1);
        }
    }
}

void attn_av_i8__avx512vnni(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                            const int8_t *v, const float *v_scale, int n_k, int d) {
    for (int q0 = 0; q0 < n_q; q0 += AV_ROWS) {
        const int R = n_q - q0 < AV_ROWS ? n_q - q0 : AV_ROWS;
        av_rows(acc + q0 * acc_stride, acc_stride, p + q0 * p_stride, p_stride, v, v_scale, n_k, d,
                R);
    }
}
