/* The AVX-512 (F, BW, VL, DQ) list (see kernels.h). */
#ifndef ADAKV_SIMD_KERNELS_AVX512_H
#define ADAKV_SIMD_KERNELS_AVX512_H

#define SIMD_KERNELS_AVX512(K)                                                                     \
    K(ops, rmsnorm, rmsnorm__avx512, base)                                                         \
    K(ops, rope, rope__avx512, base)                                                               \
    K(ops, max, max__avx512, base)                                                                 \
    K(ops, exp_sum, exp_sum__avx512, base)                                                         \
    K(ops, softmax, softmax__avx512, base)                                                         \
    K(ops, swiglu, swiglu__avx512, base)                                                           \
    K(ops, geglu, geglu__avx2, base) /* no AVX-512 GEGLU: an AVX-512 CPU runs the AVX2 one */      \
    K(ops, quant_row_i8, quant_row_i8__avx512, base)                                               \
    K(ops, attn_qk_i8, attn_qk_i8__avx512, base)                                                   \
    K(ops, attn_qk_f16, attn_qk_f16__avx512, base)                                                 \
    K(ops, attn_qk_f32, attn_qk_f32__avx512, base)                                                 \
    K(ops, attn_av_i8, attn_av_i8__avx512, base)                                                   \
    K(ops, attn_av_f16, attn_av_f16__avx512, base)                                                 \
    K(ops, attn_av_f32, attn_av_f32__avx512, base)                                                 \
    K(ops, hadamard, hadamard__avx512, base)                                                       \
    K(ops, attn_qk_i8, attn_qk_i8__avx512vnni, avx512_vnni)                                        \
    K(ops, attn_av_i8, attn_av_i8__avx512vnni, avx512_vnni)                                        \
    K(ops, attn_rows_i8, attn_rows_i8__avx512vnni, avx512_vnni)                                    \
    K(press, qk_i8, qk_gemm_i8__avx512, base)                                                      \
    K(press, qk_f16, qk_gemm_f16__avx512, base)                                                    \
    K(press, qk_f32, qk_gemm_f32__avx512, base)                                                    \
    K(press, vnorm_l1, vnorm_l1__avx512, base)                                                     \
    K(press, col_max, col_max__avx512, base)                                                       \
    K(press, attn_colmax_i8, attn_colmax_i8__avx512vnni, avx512_vnni)                              \
    K(press, sq_combine, sq_combine__avx512, base)                                                 \
    /* the AVX2 weight kernels, then the AVX-512 ones over them */                                 \
    K(quant, fill, quant_fill_avx2, base)                                                          \
    K(quant, fill, quant_fill_rp_q32_avx2, base)                                                   \
    K(quant, fill, quant_fill_rp_q45k_avx2, base)                                                  \
    K(quant, fill, quant_fill_rp_q6k_avx2, base)                                                   \
    K(quant, fill, quant_fill_avx512, base)                                                        \
    K(quant, fill, quant_fill_avx512_bf16, avx512_bf16)                                            \
    K(quant, fill, quant_fill_avx512_vnni, avx512_vnni)                                            \
    /* after quant_fill_avx512_vnni, whose activation packing it reads */                          \
    K(quant, fill, quant_fill_rp_q32_vnni, avx512_vnni)                                            \
    K(quant, fill, quant_fill_rp_q45k_vnni, avx512_vnni)                                           \
    K(quant, fill, quant_fill_rp_q6k_vnni, avx512_vnni)                                            \
    K(quant, fill, quant_fill_rp_q32x_vnni, avx512_vnni)                                           \
    /* the tiles as bf16 operands of the AMX prompt products (gemm-amx.h) */                       \
    K(quant, fill, quant_fill_panel_q45k_avx512, avx512_bf16)                                      \
    K(quant, fill, quant_fill_panel_q6k_avx512, avx512_bf16)                                       \
    K(quant, fill, quant_fill_panel_q32_avx512, avx512_bf16)

#endif
