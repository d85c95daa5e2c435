/* Run-time choice of the partial top-k kernel (see topk.h). */
#include "topk.h"
#include "config.h"
#include "cpu.h"

topk_fn topk_for_isa(int isa) {
    switch (isa) {
    case SIMD_ISA_SCALAR:
        return topk__scalar;
#ifdef ADAKV_BUILD_AVX512
    case SIMD_ISA_AVX512:
        return topk__avx512;
#endif
#ifdef ADAKV_BUILD_NEON
    case SIMD_ISA_NEON:
        return topk__neon;
#endif
    default:
        return NULL;
    }
}

size_t topk_select(const float *x, size_t n, size_t k, uint32_t *scratch, int32_t *idx) {
    enum simd_isa isa = simd_isa();
    /* The AVX2 level has no top-k of its own: its scalar fallback is the reference. */
    topk_fn f = topk_for_isa(isa);
    return (f ? f : topk__scalar)(x, n, k, scratch, idx);
}
