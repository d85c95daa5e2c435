/* Reading K and V rows of the cache in the AVX2 attention kernels (attn-qk-avx2.c,
 * attn-av-avx2.c): the storage kind is a compile-time constant at every call site, so the
 * branches fold away. Also the int16 rounding of query rows and attention weights that the int8
 * paths multiply with (vpmaddwd). Included only by AVX2-flagged objects. */
#ifndef ADAKV_SIMD_AVX2_KV_ROW_H
#define ADAKV_SIMD_AVX2_KV_ROW_H

#include <stddef.h>
#include <stdint.h>

#include "avx2-lanes.h"

enum kv_kind { KV_I8, KV_F16, KV_F32 };

/* Row j of a [rows][d] array of the given kind. */
AVX2_INLINE const void *kv_row(const void *base, size_t j, int d, enum kv_kind kind) {
    const size_t esz = kind == KV_I8 ? 1 : kind == KV_F16 ? 2 : 4;
    return (const char *)base + j * (size_t)d * esz;
}

/* Values i .. i + min(left, 8) of a row as f32, zeros above. */
AVX2_INLINE __m256 kv_load8(const void *row, int i, int left, enum kv_kind kind) {
    const int n = left < 8 ? left : 8;
    if (kind == KV_I8)
        return _mm256_cvtepi32_ps(
            _mm256_cvtepi8_epi32(avx2_load_bytes((const int8_t *)row + i, n)));
    if (kind == KV_F16)
        return _mm256_cvtph_ps(avx2_load_bytes((const uint16_t *)row + i, 2 * n));
    return avx2_load_ps((const float *)row + i, left, 0.0f);
}

/* Values i .. i + 8 of x (times m when m is given), zeros from n on (the padding reads nothing). */
AVX2_INLINE __m256 round_i16_load(const float *x, const float *m, int i, int n) {
    if (i >= n)
        return _mm256_setzero_ps();
    const __m256 v = avx2_load_ps(x + i, n - i, 0.0f);
    return m ? _mm256_mul_ps(v, avx2_load_ps(m + i, n - i, 0.0f)) : v;
}

/* x[i] (times m[i] when m is given) for i < n, rounded to int16 with one scale s = max|x m| /
 * 32767: o[i] = round(x[i] m[i] / s), o[i] = 0 from n up to npad (a multiple of 16). Returns s
 * (0 for an all-zero row). Rounding moves each value by at most s / 2, 2^-16 of the largest.
 * The product x m is rounded to f32 first, as the f32 kernels form it. */
static inline float kv_round_i16(int16_t *o, const float *x, const float *m, int n, int npad) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mx = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8)
        mx = _mm256_max_ps(mx, _mm256_and_ps(round_i16_load(x, m, i, n), absmask));
    const float amax = avx2_hmax_ps(mx);
    const __m256 inv = _mm256_set1_ps(amax > 0.0f ? 32767.0f / amax : 0.0f);
    for (int i = 0; i < npad; i += 16) /* lanes from n on load as 0 and store 0 */
        _mm256_storeu_si256((__m256i *)(o + i),
                            avx2_round16_epi16(_mm256_mul_ps(round_i16_load(x, m, i, n), inv),
                                               _mm256_mul_ps(round_i16_load(x, m, i + 8, n), inv)));
    return amax / 32767.0f;
}

#endif
