/* Reading a repacked Q6_K tile (layout: repack-q6k.c) with AVX-512: one 64-byte step is one zmm,
 * one row per 32-bit lane. Shared by the VNNI kernels (rp-q6k-vnni.c) and the bf16 panels of the
 * AMX prompt products (panel-q6k-avx512.c). Static inline, compiled per includer. */
#ifndef ADAKV_SIMD_AVX512_Q6K_H
#define ADAKV_SIMD_AVX512_Q6K_H

#include <immintrin.h>
#include <stdint.h>

#include "quant.h"

#define INLINE static inline __attribute__((always_inline))

enum {
    R = QUANT_RP_ROWS,
    SC_OFF = 2 * R,                 /* after the 16 f16 d */
    Q_OFF = SC_OFF + QK_K / 16 * R, /* after the 16 x 16 transposed scales */
    STEP = 4 * R,                   /* 4 quant bytes of each row: one zmm */
    SUB = 3 * STEP,                 /* one 16-value sub-block */
    REC = R * sizeof(struct block_q6_k),
};

/* The 16 values of sub-block g of the 16 rows (q at its first step) as 4 vectors, value 4 s + j
 * in byte j of vector s: steps 0..2 carry values 0..11 in their low 6 bits and 2-bit pieces of
 * values 12..15 in their top 2 bits, moved down with 16-bit shifts that never take a byte's
 * bits 0-1 (so no bit crosses into the neighbouring byte). */
INLINE void unpack(const uint8_t *q, __m512i w[4]) {
    const __m512i m6 = _mm512_set1_epi8(0x3f);
    const __m512i l0 = _mm512_loadu_si512((const void *)q);
    const __m512i l1 = _mm512_loadu_si512((const void *)(q + STEP));
    const __m512i l2 = _mm512_loadu_si512((const void *)(q + 2 * STEP));
    w[0] = _mm512_and_si512(l0, m6);
    w[1] = _mm512_and_si512(l1, m6);
    w[2] = _mm512_and_si512(l2, m6);
    __m512i h = _mm512_srli_epi16(_mm512_andnot_si512(m6, l0), 2);                /* bits 4-5 */
    h = _mm512_srli_epi16(_mm512_or_si512(h, _mm512_andnot_si512(m6, l1)), 2);    /* 2-5 */
    w[3] = _mm512_srli_epi16(_mm512_or_si512(h, _mm512_andnot_si512(m6, l2)), 2); /* 0-5 */
}

#endif
