/* Builds one weight-kernel table per ISA level, once: the scalar reference first, then each
 * compiled-in ISA overwrites the entries it implements, in ascending order (BLIS style), so any
 * kernel an ISA lacks falls back to the best lower one. Read-only after construction.
 * An ISA's fill function is itself compiled for that ISA (the compiler may use its vector
 * stores), so it only runs on a CPU that has it: elsewhere (an AVX2-only CPU, valgrind, which
 * hides AVX-512) that level's table keeps the lower level's kernels, and simd_isa() never
 * selects it anyway. */
#include <pthread.h>

#include "config.h"
#include "quant.h"

static struct quant_kernels tables[SIMD_ISA_COUNT][QUANT_TYPE_TABLE_SIZE];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_build(void) {
    for (int isa = 0; isa < SIMD_ISA_COUNT; isa++)
        quant_fill_scalar(tables[isa]);
    const enum simd_isa have = simd_isa_detected();
    (void)have;
#ifdef ADAKV_BUILD_AVX2
    if (have == SIMD_ISA_AVX2 || have == SIMD_ISA_AVX512) {
        for (int isa = SIMD_ISA_AVX2; isa <= SIMD_ISA_AVX512; isa++) {
            quant_fill_avx2(tables[isa]);
            quant_fill_rp_q32_avx2(tables[isa]);
            quant_fill_rp_q45k_avx2(tables[isa]);
            quant_fill_rp_q6k_avx2(tables[isa]);
        }
    }
#endif
#ifdef ADAKV_BUILD_AVX512
    if (have == SIMD_ISA_AVX512) {
        const struct simd_cpu_flags *f = simd_cpu_flags();
        quant_fill_avx512(tables[SIMD_ISA_AVX512], f->avx512_vnni, f->avx512_bf16);
        if (f->avx512_vnni) {
            quant_fill_rp_q45k_vnni(tables[SIMD_ISA_AVX512]);
            quant_fill_rp_q6k_vnni(tables[SIMD_ISA_AVX512]);
            quant_fill_rp_q32x_vnni(tables[SIMD_ISA_AVX512]);
        }
    }
#endif
#ifdef ADAKV_BUILD_NEON
    if (simd_isa_detected() == SIMD_ISA_NEON) {
        quant_fill_neon(tables[SIMD_ISA_NEON], simd_cpu_flags()->neon_dotprod);
        /* the repacked-tile kernels are SDOT only: without it the weights stay native */
        if (simd_cpu_flags()->neon_dotprod) {
            quant_fill_rp_q32_neon(tables[SIMD_ISA_NEON]);
            quant_fill_rp_q45k_neon(tables[SIMD_ISA_NEON]);
            quant_fill_rp_q6k_neon(tables[SIMD_ISA_NEON]);
        }
    }
#endif
}

const struct quant_kernels *quant_kernels_isa(uint32_t type, enum simd_isa isa) {
    if (type >= QUANT_TYPE_TABLE_SIZE || isa >= SIMD_ISA_COUNT)
        return NULL;
    pthread_once(&tables_once, tables_build);
    const struct quant_kernels *k = &tables[isa][type];
    return k->dequant_row ? k : NULL;
}

const struct quant_kernels *quant_kernels(uint32_t type) {
    return quant_kernels_isa(type, simd_isa());
}
