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
#include "tensor-type-id.h" /* enum tensor_type: the ids, shared with the kernels */

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
