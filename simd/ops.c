/* Kernel tables for the forward pass. The scalar table is the reference; an ISA table is
 * built from it by overwriting the ops that ISA implements (BLIS-style fallback), so adding a
 * kernel is one line here plus its file. Tables are static and read-only after the first call. */
#include "ops.h"

#include <pthread.h>
#include <string.h>

#include "config.h"
#include "cpu.h"

static const struct simd_ops ops_scalar = {
    .isa = "scalar",
    .rmsnorm = rmsnorm__scalar,
    .rope = rope__scalar,
    .max = max__scalar,
    .exp_sum = exp_sum__scalar,
    .softmax = softmax__scalar,
    .swiglu = swiglu__scalar,
    .geglu = geglu__scalar,
    .quant_row_i8 = quant_row_i8__scalar,
    .attn_qk_i8 = attn_qk_i8__scalar,
    .attn_qk_f16 = attn_qk_f16__scalar,
    .attn_qk_f32 = attn_qk_f32__scalar,
    .attn_av_i8 = attn_av_i8__scalar,
    .attn_av_f16 = attn_av_f16__scalar,
    .attn_av_f32 = attn_av_f32__scalar,
};

#ifdef ADAKV_BUILD_AVX2
static struct simd_ops ops_avx2;
#endif
#ifdef ADAKV_BUILD_AVX512
static struct simd_ops ops_avx512;
#endif
#ifdef ADAKV_BUILD_NEON
static struct simd_ops ops_neon;
#endif
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_build(void) {
#ifdef ADAKV_BUILD_AVX2
    ops_avx2 = ops_scalar;
    ops_avx2.isa = "avx2";
    ops_avx2.rmsnorm = rmsnorm__avx2;
    ops_avx2.rope = rope__avx2;
    ops_avx2.max = max__avx2;
    ops_avx2.exp_sum = exp_sum__avx2;
    ops_avx2.softmax = softmax__avx2;
    ops_avx2.swiglu = swiglu__avx2;
    ops_avx2.geglu = geglu__avx2;
    ops_avx2.quant_row_i8 = quant_row_i8__avx2;
    ops_avx2.attn_qk_i8 = attn_qk_i8__avx2;
    ops_avx2.attn_qk_f16 = attn_qk_f16__avx2;
    ops_avx2.attn_qk_f32 = attn_qk_f32__avx2;
    ops_avx2.attn_av_i8 = attn_av_i8__avx2;
    ops_avx2.attn_av_f16 = attn_av_f16__avx2;
    ops_avx2.attn_av_f32 = attn_av_f32__avx2;
#endif
#ifdef ADAKV_BUILD_AVX512
    ops_avx512 = ops_scalar;
    ops_avx512.isa = "avx512";
    ops_avx512.rmsnorm = rmsnorm__avx512;
    ops_avx512.rope = rope__avx512;
    ops_avx512.max = max__avx512;
    ops_avx512.exp_sum = exp_sum__avx512;
    ops_avx512.softmax = softmax__avx512;
    ops_avx512.swiglu = swiglu__avx512;
#ifdef ADAKV_BUILD_AVX2
    ops_avx512.geglu = geglu__avx2;
#endif
    ops_avx512.quant_row_i8 = quant_row_i8__avx512;
    ops_avx512.attn_qk_i8 = attn_qk_i8__avx512;
    ops_avx512.attn_qk_f16 = attn_qk_f16__avx512;
    ops_avx512.attn_qk_f32 = attn_qk_f32__avx512;
    ops_avx512.attn_av_i8 = attn_av_i8__avx512;
    ops_avx512.attn_av_f16 = attn_av_f16__avx512;
    ops_avx512.attn_av_f32 = attn_av_f32__avx512;
    if (simd_cpu_flags()->avx512_vnni) {
        ops_avx512.attn_qk_i8 = attn_qk_i8__avx512vnni;
        ops_avx512.attn_av_i8 = attn_av_i8__avx512vnni;
        ops_avx512.attn_rows_i8 = attn_rows_i8__avx512vnni;
    }
#endif
#ifdef ADAKV_BUILD_NEON
    ops_neon = ops_scalar; /* rope: the reference (no NEON version yet) */
    ops_neon.isa = "neon";
    ops_neon.rmsnorm = rmsnorm__neon;
    ops_neon.max = max__neon;
    ops_neon.exp_sum = exp_sum__neon;
    ops_neon.softmax = softmax__neon;
    ops_neon.swiglu = swiglu__neon;
    ops_neon.quant_row_i8 = quant_row_i8__neon;
    ops_neon.attn_qk_i8 = attn_qk_i8__neon;
    ops_neon.attn_qk_f16 = attn_qk_f16__neon;
    ops_neon.attn_qk_f32 = attn_qk_f32__neon;
    ops_neon.attn_av_i8 = attn_av_i8__neon;
    ops_neon.attn_av_f16 = attn_av_f16__neon;
    ops_neon.attn_av_f32 = attn_av_f32__neon;
#endif
}

const struct simd_ops *simd_ops_scalar(void) {
    return &ops_scalar;
}

static const struct simd_ops *ops_for(enum simd_isa isa) {
    pthread_once(&tables_once, tables_build);
    switch (isa) {
#ifdef ADAKV_BUILD_AVX2
    case SIMD_ISA_AVX2:
        return &ops_avx2;
#endif
#ifdef ADAKV_BUILD_AVX512
    case SIMD_ISA_AVX512:
        return &ops_avx512;
#endif
#ifdef ADAKV_BUILD_NEON
    case SIMD_ISA_NEON:
        return &ops_neon;
#endif
    case SIMD_ISA_SCALAR:
        return &ops_scalar;
    default:
        return NULL;
    }
}

const struct simd_ops *simd_ops_best(void) {
    /* a level without a compiled table is never detected (cpu.h): the fallback is only a guard */
    const struct simd_ops *t = ops_for(simd_isa());
    return t ? t : &ops_scalar;
}

const struct simd_ops *simd_ops_by_name(const char *name) {
    for (int isa = 0; isa < SIMD_ISA_COUNT; isa++) {
        if (strcmp(simd_isa_name((enum simd_isa)isa), name) != 0)
            continue;
        if (!simd_isa_available((enum simd_isa)isa))
            return NULL;
        return ops_for((enum simd_isa)isa);
    }
    return NULL;
}
