/* Reading a repacked Q4_K / Q5_K tile (layout: repack-q45k.c) with AVX-512: one 64-byte step is
 * one zmm, one row per 32-bit lane. Shared by the VNNI kernels (rp-q45k-vnni.c) and the bf16
 * panels of the AMX prompt products (panel-q45k-avx512.c). Static inline, compiled per includer. */
#ifndef ADAKV_SIMD_AVX512_Q45K_H
#define ADAKV_SIMD_AVX512_Q45K_H

#include <immintrin.h>
#include <stdint.h>

#include "quant.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

enum {
    R = QUANT_RP_ROWS,
    STEP = 4 * R, /* bytes of one qs / qh step: one zmm */
    OFF_DMIN = 2 * R,
    OFF_SC = 4 * R,
    OFF_QH = 16 * R,
};

/* Byte k (0..11) of the 16 rows' native scales, zero-extended to the rows' int32 lanes. */
static ALWAYS_INLINE __m512i scale_bytes(const uint8_t *sb, int k) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const void *)(sb + OFF_SC + R * k)));
}

/* The 6-bit scale (min 0) or minimum (min 1) of sub-block j of the 16 rows, one per int32 lane:
 * quant_k_scale_min() lane by lane. */
static ALWAYS_INLINE __m512i scale6(const uint8_t *sb, int j, int min) {
    if (j < 4)
        return _mm512_and_si512(scale_bytes(sb, j + 4 * min), _mm512_set1_epi32(63));
    const __m512i q = scale_bytes(sb, j + 4);
    const __m512i lo = _mm512_and_si512(min ? _mm512_srli_epi32(q, 4) : q, _mm512_set1_epi32(15));
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi32(scale_bytes(sb, j - 4 + 4 * min), 2),
                                        _mm512_set1_epi32(0x30));
    return _mm512_or_si512(lo, hi);
}

/* Bit k of every byte moved to bit 4 (the fifth bit of a Q5_K weight), others cleared. */
static ALWAYS_INLINE __m512i fifth_bit(__m512i qh, int k) {
    const __m512i v = k < 4   ? _mm512_slli_epi16(qh, 4 - k)
                      : k > 4 ? _mm512_srli_epi16(qh, k - 4)
                              : qh;
    return _mm512_and_si512(v, _mm512_set1_epi8(0x10));
}

/* Step s of chunk c (sub-blocks 2c, 2c + 1: qs step 8c + s) of one slab as bytes: the low
 * nibbles (sub-block 2c) to *wl, the high ones (2c + 1) to *wh, with Q5_K's fifth bits. */
static ALWAYS_INLINE void step_weights(const uint8_t *sb, int five, int c, int s, __m512i *wl,
                                       __m512i *wh) {
    const uint8_t *qs = sb + OFF_QH + (five ? QK_K / 8 * R : 0) + STEP * (8 * c + s);
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i z = _mm512_loadu_si512((const void *)qs);
    *wl = _mm512_and_si512(z, m4);
    *wh = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
    if (five) {
        const __m512i v = _mm512_loadu_si512((const void *)(sb + OFF_QH + STEP * s));
        *wl = _mm512_or_si512(*wl, fifth_bit(v, 2 * c));
        *wh = _mm512_or_si512(*wh, fifth_bit(v, 2 * c + 1));
    }
}

#endif
