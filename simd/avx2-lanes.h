/* Lane helpers for the AVX2 forward-pass kernels (*-avx2.c).
 *
 * Tails: AVX2 masks only 32- and 64-bit lanes (vmaskmovps, which never touches masked-off
 * memory, so a row's last partial vector cannot fault), so float tails go through masked loads
 * and stores, and byte or half-float tails through a zeroed 16-byte stack buffer. Every helper
 * takes the count of valid lanes `left`; at a call site where it is a constant (8, 16: the body
 * of a loop over whole vectors) the test folds away and only the plain load remains.
 *
 * Also the horizontal reductions and the int32 -> int16 narrowing the kernels share. Included
 * only by AVX2-flagged objects. */
#ifndef ADAKV_SIMD_AVX2_LANES_H
#define ADAKV_SIMD_AVX2_LANES_H

#include <immintrin.h>
#include <string.h>

#define AVX2_INLINE static inline __attribute__((always_inline))

/* All ones in the 32-bit lanes below `left` (none for left <= 0, all for left >= 8). */
AVX2_INLINE __m256i avx2_lanes8(int left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* x[0..left) in the low lanes, `pad` in the rest (a neutral value: 0 for sums, -inf for max and
 * exp). Reads nothing past x + left. */
AVX2_INLINE __m256 avx2_load_ps(const float *x, int left, float pad) {
    if (left >= 8)
        return _mm256_loadu_ps(x);
    const __m256i m = avx2_lanes8(left);
    const __m256 v = _mm256_maskload_ps(x, m); /* masked-off lanes read as 0 */
    return pad == 0.0f ? v : _mm256_blendv_ps(_mm256_set1_ps(pad), v, _mm256_castsi256_ps(m));
}

/* Stores the low min(left, 8) lanes of v at y. */
AVX2_INLINE void avx2_store_ps(float *y, int left, __m256 v) {
    if (left >= 8)
        _mm256_storeu_ps(y, v);
    else
        _mm256_maskstore_ps(y, avx2_lanes8(left), v);
}

/* out[i] = f8(a, b) lane by lane for i < n: whole vectors, then the tail through masked loads
 * (zeros in the unused lanes) and a masked store. The driver of the element-wise gated
 * activations (swiglu, geglu); out may equal a or b. */
#define AVX2_MAP2(f8, out, a, b, n)                                                                \
    do {                                                                                           \
        int i_ = 0;                                                                                \
        for (; i_ + 8 <= (n); i_ += 8)                                                             \
            _mm256_storeu_ps((out) + i_,                                                           \
                             f8(_mm256_loadu_ps((a) + i_), _mm256_loadu_ps((b) + i_)));            \
        if (i_ < (n))                                                                              \
            avx2_store_ps(                                                                         \
                (out) + i_, (n)-i_,                                                                \
                f8(avx2_load_ps((a) + i_, (n)-i_, 0.0f), avx2_load_ps((b) + i_, (n)-i_, 0.0f)));   \
    } while (0)

/* The first min(n, 16) bytes at p, zeros above. Reads nothing past p + n. */
AVX2_INLINE __m128i avx2_load_bytes(const void *p, int n) {
    if (n >= 16)
        return _mm_loadu_si128((const __m128i *)p);
    if (n == 8)
        return _mm_loadl_epi64((const __m128i *)p);
    _Alignas(16) unsigned char b[16] = {0};
    if (n > 0)
        memcpy(b, p, (size_t)n);
    return _mm_load_si128((const __m128i *)b);
}

/* Stores the low min(n, 16) bytes of v at p. */
AVX2_INLINE void avx2_store_bytes(void *p, int n, __m128i v) {
    if (n >= 16) {
        _mm_storeu_si128((__m128i *)p, v);
        return;
    }
    _Alignas(16) unsigned char b[16];
    _mm_store_si128((__m128i *)b, v);
    if (n > 0)
        memcpy(p, b, (size_t)n);
}

AVX2_INLINE float avx2_hsum_ps(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));
}

AVX2_INLINE float avx2_hmax_ps(__m256 v) {
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_max_ss(x, _mm_movehdup_ps(x)));
}

/* Lane t = the sum of the lanes of a[t]: two hadd levels leave each 128-bit half holding four
 * partial sums, one lane swap adds the halves: 9 instructions for 8 dot products, against about 6
 * per dot for avx2_hsum_ps. */
AVX2_INLINE __m256 avx2_reduce8_ps(const __m256 a[8]) {
    const __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20),
                         _mm256_permute2f128_ps(h0, h1, 0x31));
}

/* The same for int32 lanes (exact). */
AVX2_INLINE __m256i avx2_reduce8_epi32(const __m256i a[8]) {
    const __m256i h0 =
        _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
    const __m256i h1 =
        _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20),
                            _mm256_permute2x128_si256(h0, h1, 0x31));
}

/* a then b rounded to int32 in the current (nearest-even) mode and narrowed with signed
 * saturation to 16 int16 in order (vpackssdw works per 128-bit half, the permute undoes that). */
AVX2_INLINE __m256i avx2_round16_epi16(__m256 a, __m256 b) {
    return _mm256_permute4x64_epi64(
        _mm256_packs_epi32(_mm256_cvtps_epi32(a), _mm256_cvtps_epi32(b)), 0xD8);
}

#endif
