/* The ggml tensor type ids: the numbering GGUF files store (ggml docs/gguf.md) and the index of
 * every per-ISA weight kernel table (quant.h).
 *
 * Only the ids live here, in the kernel layer, so that simd/ needs nothing from src/: what each
 * type means for a file (names, block and byte sizes, which types adakv loads) is the file
 * format's business, in src/gguf/tensor-type.h, which includes this header. */
#ifndef ADAKV_SIMD_TENSOR_TYPE_ID_H
#define ADAKV_SIMD_TENSOR_TYPE_ID_H

enum tensor_type {
    TENSOR_TYPE_F32 = 0,
    TENSOR_TYPE_F16 = 1,
    TENSOR_TYPE_Q4_0 = 2,
    TENSOR_TYPE_Q4_1 = 3,
    /* 4 and 5 were Q4_2 and Q4_3, removed from ggml long ago */
    TENSOR_TYPE_Q5_0 = 6,
    TENSOR_TYPE_Q5_1 = 7,
    TENSOR_TYPE_Q8_0 = 8,
    TENSOR_TYPE_Q8_1 = 9,
    TENSOR_TYPE_Q2_K = 10,
    TENSOR_TYPE_Q3_K = 11,
    TENSOR_TYPE_Q4_K = 12,
    TENSOR_TYPE_Q5_K = 13,
    TENSOR_TYPE_Q6_K = 14,
    TENSOR_TYPE_Q8_K = 15,
    TENSOR_TYPE_IQ2_XXS = 16,
    TENSOR_TYPE_IQ2_XS = 17,
    TENSOR_TYPE_IQ3_XXS = 18,
    TENSOR_TYPE_IQ1_S = 19,
    TENSOR_TYPE_IQ4_NL = 20,
    TENSOR_TYPE_IQ3_S = 21,
    TENSOR_TYPE_IQ2_S = 22,
    TENSOR_TYPE_IQ4_XS = 23,
    TENSOR_TYPE_I8 = 24,
    TENSOR_TYPE_I16 = 25,
    TENSOR_TYPE_I32 = 26,
    TENSOR_TYPE_I64 = 27,
    TENSOR_TYPE_F64 = 28,
    TENSOR_TYPE_IQ1_M = 29,
    TENSOR_TYPE_BF16 = 30,
    /* 31-33 were Q4_0_4_4, Q4_0_4_8, Q4_0_8_8: repacked layouts, no longer in files */
    TENSOR_TYPE_TQ1_0 = 34,
    TENSOR_TYPE_TQ2_0 = 35,
    /* 36-38 were IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8 */
    TENSOR_TYPE_MXFP4 = 39,
    TENSOR_TYPE_NVFP4 = 40,
    TENSOR_TYPE_Q1_0 = 41,
    TENSOR_TYPE_COUNT
};

#endif
