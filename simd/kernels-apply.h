/* The body of a table builder (ops.c, press-ops.c, quant-dispatch.c): the lists of kernels.h that
 * this build compiled, as statements. Included by those .c files only (it reads config.h). */
#ifndef ADAKV_SIMD_KERNELS_APPLY_H
#define ADAKV_SIMD_KERNELS_APPLY_H

#include "config.h"
#include "cpu.h"
#include "kernels.h"

#if defined(ADAKV_BUILD_AVX512) && !defined(ADAKV_BUILD_AVX2)
#error "the AVX-512 list takes AVX2 kernels: configure builds both or neither"
#endif

#ifdef ADAKV_BUILD_AVX2
#define SIMD_KERNELS_AVX2_BUILT(K) SIMD_KERNELS_AVX2(K)
#else
#define SIMD_KERNELS_AVX2_BUILT(K)
#endif
#ifdef ADAKV_BUILD_AVX512
#define SIMD_KERNELS_AVX512_BUILT(K) SIMD_KERNELS_AVX512(K)
#else
#define SIMD_KERNELS_AVX512_BUILT(K)
#endif
#ifdef ADAKV_BUILD_NEON
#define SIMD_KERNELS_NEON_BUILT(K) SIMD_KERNELS_NEON(K)
#else
#define SIMD_KERNELS_NEON_BUILT(K)
#endif

/* K over the scalar list, then over the list of `isa` (an enum simd_isa) when it was compiled:
 * later lines overwrite earlier ones, so the table is the reference where the ISA has nothing. */
#define SIMD_KERNELS_APPLY(isa, K)                                                                 \
    do {                                                                                           \
        SIMD_KERNELS_SCALAR(K)                                                                     \
        switch (isa) {                                                                             \
        case SIMD_ISA_AVX2:                                                                        \
            SIMD_KERNELS_AVX2_BUILT(K)                                                             \
            break;                                                                                 \
        case SIMD_ISA_AVX512:                                                                      \
            SIMD_KERNELS_AVX512_BUILT(K)                                                           \
            break;                                                                                 \
        case SIMD_ISA_NEON:                                                                        \
            SIMD_KERNELS_NEON_BUILT(K)                                                             \
            break;                                                                                 \
        default:                                                                                   \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

#endif
