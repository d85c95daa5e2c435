/* The NEON (AArch64 ASIMD) list (see kernels.h). No rope, geglu or press kernels yet: those slots
 * keep the references. */
#ifndef ADAKV_SIMD_KERNELS_NEON_H
#define ADAKV_SIMD_KERNELS_NEON_H

#define SIMD_KERNELS_NEON(K)                                                                       \
    K(ops, rmsnorm, rmsnorm__neon, base)                                                           \
    K(ops, max, max__neon, base)                                                                   \
    K(ops, exp_sum, exp_sum__neon, base)                                                           \
    K(ops, softmax, softmax__neon, base)                                                           \
    K(ops, swiglu, swiglu__neon, base)                                                             \
    K(ops, quant_row_i8, quant_row_i8__neon, base)                                                 \
    K(ops, attn_qk_i8, attn_qk_i8__neon, base)                                                     \
    K(ops, attn_qk_f16, attn_qk_f16__neon, base)                                                   \
    K(ops, attn_qk_f32, attn_qk_f32__neon, base)                                                   \
    K(ops, attn_av_i8, attn_av_i8__neon, base)                                                     \
    K(ops, attn_av_f16, attn_av_f16__neon, base)                                                   \
    K(ops, attn_av_f32, attn_av_f32__neon, base)                                                   \
    K(ops, attn_rows_i8, attn_rows_i8__neon, base)                                                 \
    K(ops, hadamard, hadamard__neon, base)                                                         \
    K(quant, fill, quant_fill_neon, base)                                                          \
    K(quant, fill, quant_fill_neon_dotprod, neon_dotprod)                                          \
    /* the repacked-tile kernels are SDOT only: without it the weights stay native */              \
    K(quant, fill, quant_fill_rp_q32_neon, neon_dotprod)                                           \
    K(quant, fill, quant_fill_rp_q45k_neon, neon_dotprod)                                          \
    K(quant, fill, quant_fill_rp_q6k_neon, neon_dotprod)

#endif
