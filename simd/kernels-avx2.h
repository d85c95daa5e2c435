/* The AVX2 (+FMA, F16C) list (see kernels.h). */
#ifndef ADAKV_SIMD_KERNELS_AVX2_H
#define ADAKV_SIMD_KERNELS_AVX2_H

#define SIMD_KERNELS_AVX2(K)                                                                       \
    K(ops, rmsnorm, rmsnorm__avx2, base)                                                           \
    K(ops, rope, rope__avx2, base)                                                                 \
    K(ops, max, max__avx2, base)                                                                   \
    K(ops, exp_sum, exp_sum__avx2, base)                                                           \
    K(ops, softmax, softmax__avx2, base)                                                           \
    K(ops, swiglu, swiglu__avx2, base)                                                             \
    K(ops, geglu, geglu__avx2, base)                                                               \
    K(ops, quant_row_i8, quant_row_i8__avx2, base)                                                 \
    K(ops, attn_qk_i8, attn_qk_i8__avx2, base)                                                     \
    K(ops, attn_qk_f16, attn_qk_f16__avx2, base)                                                   \
    K(ops, attn_qk_f32, attn_qk_f32__avx2, base)                                                   \
    K(ops, attn_av_i8, attn_av_i8__avx2, base)                                                     \
    K(ops, attn_av_f16, attn_av_f16__avx2, base)                                                   \
    K(ops, attn_av_f32, attn_av_f32__avx2, base)                                                   \
    K(ops, attn_rows_i8, attn_rows_i8__avx2, base)                                                 \
    K(ops, hadamard, hadamard__avx2, base)                                                         \
    K(press, qk_i8, qk_gemm_i8__avx2, base)                                                        \
    K(press, qk_f16, qk_gemm_f16__avx2, base)                                                      \
    K(press, qk_f32, qk_gemm_f32__avx2, base)                                                      \
    K(press, vnorm_l1, vnorm_l1__avx2, base)                                                       \
    K(press, col_max, col_max__avx2, base)                                                         \
    K(press, sq_combine, sq_combine__avx2, base)                                                   \
    K(quant, fill, quant_fill_avx2, base)                                                          \
    K(quant, fill, quant_fill_rp_q32_avx2, base)                                                   \
    K(quant, fill, quant_fill_rp_q45k_avx2, base)                                                  \
    K(quant, fill, quant_fill_rp_q6k_avx2, base)

#endif
