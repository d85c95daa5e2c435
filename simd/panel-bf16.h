/* Writing the bf16 B operand of AMX's tdpbf16ps from a repacked tile step (quant.h's
 * quant_panel_fn layout): shared by the panel fills of every weight type (panel-*-avx512.c).
 * Static inline, AVX-512 F/BW and BF16. */
#ifndef ADAKV_SIMD_PANEL_BF16_H
#define ADAKV_SIMD_PANEL_BF16_H

#include <immintrin.h>
#include <stdint.h>

/* Word 2 i of the result is even[i] as bf16, word 2 i + 1 odd[i]: one 64-byte row of a B tile,
 * row i's pair of consecutive values in 32-bit word i. vcvtne2ps2bf16 rounds to nearest even
 * (as the reference does) and puts even in words 0..15 and odd in 16..31; vpermw interleaves. */
static inline __attribute__((always_inline)) __m512i panel_pairs(__m512 even, __m512 odd) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24,
                                         8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(odd, even));
}

/* A tile step q (row i's 4 consecutive quants as the bytes of 32-bit word i, unsigned) to the two
 * B-tile rows of those values, value = q * scale[i] - offset[i] (one rounding, as the dequant
 * references' d1 * q - m1 under fma): values 0, 1 of each row to out[0..31], 2, 3 to out[32..63].
 */
static inline __attribute__((always_inline)) void panel_step(__m512i q, __m512 scale, __m512 offset,
                                                             uint16_t *out) {
    const __m512i ff = _mm512_set1_epi32(0xff);
    const __m512 v0 = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_and_si512(q, ff)), scale, offset);
    const __m512 v1 = _mm512_fmsub_ps(
        _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(q, 8), ff)), scale, offset);
    const __m512 v2 = _mm512_fmsub_ps(
        _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(q, 16), ff)), scale, offset);
    const __m512 v3 = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(q, 24)), scale, offset);
    _mm512_storeu_si512((void *)out, panel_pairs(v0, v1));
    _mm512_storeu_si512((void *)(out + 32), panel_pairs(v2, v3));
}

#endif
