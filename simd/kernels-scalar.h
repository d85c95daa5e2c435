/* The scalar list (see kernels.h): the plain C references, every slot of every table, which the
 * other ISAs' tables start from and the tests hold them to. */
#ifndef ADAKV_SIMD_KERNELS_SCALAR_H
#define ADAKV_SIMD_KERNELS_SCALAR_H

#define SIMD_KERNELS_SCALAR(K)                                                                     \
    K(ops, rmsnorm, rmsnorm__scalar, base)                                                         \
    K(ops, rope, rope__scalar, base)                                                               \
    K(ops, max, max__scalar, base)                                                                 \
    K(ops, exp_sum, exp_sum__scalar, base)                                                         \
    K(ops, softmax, softmax__scalar, base)                                                         \
    K(ops, swiglu, swiglu__scalar, base)                                                           \
    K(ops, geglu, geglu__scalar, base)                                                             \
    K(ops, quant_row_i8, quant_row_i8__scalar, base)                                               \
    K(ops, attn_qk_i8, attn_qk_i8__scalar, base)                                                   \
    K(ops, attn_qk_f16, attn_qk_f16__scalar, base)                                                 \
    K(ops, attn_qk_f32, attn_qk_f32__scalar, base)                                                 \
    K(ops, attn_av_i8, attn_av_i8__scalar, base)                                                   \
    K(ops, attn_av_f16, attn_av_f16__scalar, base)                                                 \
    K(ops, attn_av_f32, attn_av_f32__scalar, base)                                                 \
    K(ops, hadamard, hadamard__scalar, base)                                                       \
    /* the blocked press GEMMs share the attention scores' contract and reference */               \
    K(press, qk_i8, attn_qk_i8__scalar, base)                                                      \
    K(press, qk_f16, attn_qk_f16__scalar, base)                                                    \
    K(press, qk_f32, attn_qk_f32__scalar, base)                                                    \
    K(press, vnorm_l1, vnorm_l1__scalar, base)                                                     \
    K(press, col_max, col_max__scalar, base)                                                       \
    K(press, sq_combine, sq_combine__scalar, base)                                                 \
    K(quant, fill, quant_fill_scalar, base)

#endif
