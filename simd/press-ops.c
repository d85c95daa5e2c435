/* Run-time choice of the press kernels (press-ops.h). The scalar table reuses the attention
 * score references of ops.h: the blocked GEMMs implement the same contract. */
#include "press-ops.h"

#include <string.h>

#include "config.h"
#include "cpu.h"

static const struct press_ops press_scalar = {
    .isa = "scalar",
    .qk_i8 = attn_qk_i8__scalar,
    .qk_f16 = attn_qk_f16__scalar,
    .qk_f32 = attn_qk_f32__scalar,
    .vnorm_l1 = vnorm_l1__scalar,
    .col_max = col_max__scalar,
    .sq_combine = sq_combine__scalar,
};

#ifdef ADAKV_BUILD_AVX2
static const struct press_ops press_avx2 = {
    .isa = "avx2",
    .qk_i8 = qk_gemm_i8__avx2,
    .qk_f16 = qk_gemm_f16__avx2,
    .qk_f32 = qk_gemm_f32__avx2,
    .vnorm_l1 = vnorm_l1__avx2,
    .col_max = col_max__avx2,
    .sq_combine = sq_combine__avx2,
};
#endif

#ifdef ADAKV_BUILD_AVX512
static const struct press_ops press_avx512 = {
    .isa = "avx512",
    .qk_i8 = qk_gemm_i8__avx512,
    .qk_f16 = qk_gemm_f16__avx512,
    .qk_f32 = qk_gemm_f32__avx512,
    .vnorm_l1 = vnorm_l1__avx512,
    .col_max = col_max__avx512,
    .sq_combine = sq_combine__avx512,
};
#endif

const struct press_ops *press_ops_scalar(void) {
    return &press_scalar;
}

static const struct press_ops *for_isa(enum simd_isa isa) {
#ifdef ADAKV_BUILD_AVX2
    if (isa == SIMD_ISA_AVX2)
        return &press_avx2;
#endif
#ifdef ADAKV_BUILD_AVX512
    if (isa == SIMD_ISA_AVX512)
        return &press_avx512;
#endif
    (void)isa;
    return &press_scalar;
}

const struct press_ops *press_ops_best(void) {
    return for_isa(simd_isa());
}

const struct press_ops *press_ops_by_name(const char *name) {
    for (int isa = 0; isa < SIMD_ISA_COUNT; isa++)
        if (strcmp(simd_isa_name((enum simd_isa)isa), name) == 0)
            return simd_isa_available((enum simd_isa)isa) ? for_isa((enum simd_isa)isa) : NULL;
    return NULL;
}
