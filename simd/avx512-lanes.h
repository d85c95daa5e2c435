/* Masks of the first `left` lanes of a vector, clamped to none or all: the tails of rows that
 * are not a multiple of the vector width go through AVX-512 masked loads and stores (which never
 * touch the masked-off bytes). Included only by the AVX-512 kernel files. */
#ifndef ADAKV_SIMD_AVX512_LANES_H
#define ADAKV_SIMD_AVX512_LANES_H

#include <immintrin.h>

static inline __mmask16 avx512_lanes16(int left) {
    return left >= 16  ? (__mmask16)0xffff
           : left <= 0 ? (__mmask16)0
                       : (__mmask16)((1u << left) - 1u);
}

static inline __mmask32 avx512_lanes32(int left) {
    return left >= 32  ? (__mmask32)0xffffffffu
           : left <= 0 ? (__mmask32)0
                       : (__mmask32)((1u << left) - 1u);
}

#endif
