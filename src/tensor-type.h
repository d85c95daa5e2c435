/* The ggml tensor type table: what each type id in a GGUF tensor info means for memory layout.
 *
 * Ids are the ggml_type numbering that GGUF files store (ggml docs/gguf.md). Every quantized type
 * stores a row of ne[0] values as ne[0]/blck_size blocks of type_size bytes, so the byte size of
 * a tensor is rows * (ne[0]/blck_size) * type_size. `supported` marks the weight types adakv can
 * compute with; the others are known only so that errors and the inspector can name them. */
#ifndef ADAKV_TENSOR_TYPE_H
#define ADAKV_TENSOR_TYPE_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

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

struct tensor_type_info {
    const char *name;   /* ggml's spelling: "Q4_1", "F32", ... */
    uint32_t blck_size; /* values per block (1 for plain float/int types) */
    uint32_t type_size; /* bytes per block */
    bool supported;     /* adakv can load weights of this type */
    bool activation;    /* a dot-product partner type (Q8_1, Q8_K), never a weight in a file */
};

/* NULL when `type` is not a ggml type id adakv knows (including removed ids). */
const struct tensor_type_info *tensor_type_info(uint32_t type);

/* Never NULL: unknown ids give "unknown". */
const char *tensor_type_name(uint32_t type);

bool tensor_type_known(uint32_t type);
bool tensor_type_supported(uint32_t type);
uint32_t tensor_type_blck_size(uint32_t type); /* 0 for unknown ids */
uint32_t tensor_type_size(uint32_t type);      /* bytes per block, 0 for unknown ids */

/* Bytes of `nrows` rows of `ne0` values each. Returns 0 and sets *out, or -1 with e set when the
 * type is unknown, ne0 is not a multiple of the block size, or the size overflows 63 bits
 * (sizes must also fit an off_t and an int64 ggml ne product). The message has no file name:
 * callers prefix their own context. */
int tensor_type_nbytes(uint32_t type, uint64_t ne0, uint64_t nrows, uint64_t *out,
                       struct adakv_err *e);

/* Bytes of one row of `ne0` values; 0 when the type is unknown or ne0 is not a whole number of
 * blocks. For callers that already validated the tensor (gguf_open did). */
uint64_t tensor_type_row_size(uint32_t type, uint64_t ne0);

#endif
