#include "tensor-type.h"

#include <stddef.h>

/* Block sizes and bytes per block follow ggml's block structs (ggml-common.h). Q8_1 is 36 bytes
 * there (f16 d, f16 s, 32 x i8); some older tables say 40 from when d and s were f32. */
static const struct tensor_type_info tensor_types[TENSOR_TYPE_COUNT] = {
    [TENSOR_TYPE_F32] = {"F32", 1, 4, true, false},
    [TENSOR_TYPE_F16] = {"F16", 1, 2, true, false},
    [TENSOR_TYPE_Q4_0] = {"Q4_0", 32, 18, true, false},
    [TENSOR_TYPE_Q4_1] = {"Q4_1", 32, 20, true, false},
    [TENSOR_TYPE_Q5_0] = {"Q5_0", 32, 22, true, false},
    [TENSOR_TYPE_Q5_1] = {"Q5_1", 32, 24, true, false},
    [TENSOR_TYPE_Q8_0] = {"Q8_0", 32, 34, true, false},
    [TENSOR_TYPE_Q8_1] = {"Q8_1", 32, 36, false, true},
    [TENSOR_TYPE_Q2_K] = {"Q2_K", 256, 84, false, false},
    [TENSOR_TYPE_Q3_K] = {"Q3_K", 256, 110, false, false},
    [TENSOR_TYPE_Q4_K] = {"Q4_K", 256, 144, true, false},
    [TENSOR_TYPE_Q5_K] = {"Q5_K", 256, 176, true, false},
    [TENSOR_TYPE_Q6_K] = {"Q6_K", 256, 210, true, false},
    [TENSOR_TYPE_Q8_K] = {"Q8_K", 256, 292, false, true},
    [TENSOR_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66, false, false},
    [TENSOR_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74, false, false},
    [TENSOR_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98, false, false},
    [TENSOR_TYPE_IQ1_S] = {"IQ1_S", 256, 50, false, false},
    [TENSOR_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18, false, false},
    [TENSOR_TYPE_IQ3_S] = {"IQ3_S", 256, 110, false, false},
    [TENSOR_TYPE_IQ2_S] = {"IQ2_S", 256, 82, false, false},
    [TENSOR_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136, false, false},
    [TENSOR_TYPE_I8] = {"I8", 1, 1, false, false},
    [TENSOR_TYPE_I16] = {"I16", 1, 2, false, false},
    [TENSOR_TYPE_I32] = {"I32", 1, 4, false, false},
    [TENSOR_TYPE_I64] = {"I64", 1, 8, false, false},
    [TENSOR_TYPE_F64] = {"F64", 1, 8, false, false},
    [TENSOR_TYPE_IQ1_M] = {"IQ1_M", 256, 56, false, false},
    [TENSOR_TYPE_BF16] = {"BF16", 1, 2, true, false},
    [TENSOR_TYPE_TQ1_0] = {"TQ1_0", 256, 54, false, false},
    [TENSOR_TYPE_TQ2_0] = {"TQ2_0", 256, 66, false, false},
    [TENSOR_TYPE_MXFP4] = {"MXFP4", 32, 17, false, false},
    [TENSOR_TYPE_NVFP4] = {"NVFP4", 64, 36, false, false},
    [TENSOR_TYPE_Q1_0] = {"Q1_0", 128, 18, false, false},
};

const struct tensor_type_info *tensor_type_info(uint32_t type) {
    if (type >= TENSOR_TYPE_COUNT || tensor_types[type].name == NULL)
        return NULL;
    return &tensor_types[type];
}

const char *tensor_type_name(uint32_t type) {
    const struct tensor_type_info *t = tensor_type_info(type);
    return t ? t->name : "unknown";
}

bool tensor_type_known(uint32_t type) {
    return tensor_type_info(type) != NULL;
}

bool tensor_type_supported(uint32_t type) {
    const struct tensor_type_info *t = tensor_type_info(type);
    return t && t->supported;
}

uint32_t tensor_type_blck_size(uint32_t type) {
    const struct tensor_type_info *t = tensor_type_info(type);
    return t ? t->blck_size : 0;
}

uint32_t tensor_type_size(uint32_t type) {
    const struct tensor_type_info *t = tensor_type_info(type);
    return t ? t->type_size : 0;
}

/* Sizes are capped at 2^63 - 1 so that they fit int64 ne products, off_t and ptrdiff_t. */
#define TENSOR_BYTES_MAX ((uint64_t)INT64_MAX)

int tensor_type_nbytes(uint32_t type, uint64_t ne0, uint64_t nrows, uint64_t *out,
                       struct adakv_err *e) {
    const struct tensor_type_info *t = tensor_type_info(type);
    if (!t)
        return err_set(e, "unknown tensor type %u", type);
    if (ne0 % t->blck_size != 0)
        return err_set(e, "row length %llu is not a multiple of the %s block size %u",
                       (unsigned long long)ne0, t->name, t->blck_size);
    if (ne0 / t->blck_size > TENSOR_BYTES_MAX / t->type_size)
        return err_set(e, "row of %llu %s values overflows the byte size", (unsigned long long)ne0,
                       t->name);
    uint64_t row = (ne0 / t->blck_size) * t->type_size;
    if (nrows != 0 && row > TENSOR_BYTES_MAX / nrows)
        return err_set(e, "%llu rows of %llu %s values overflow the byte size",
                       (unsigned long long)nrows, (unsigned long long)ne0, t->name);
    *out = row * nrows;
    return 0;
}

uint64_t tensor_type_row_size(uint32_t type, uint64_t ne0) {
    uint64_t n = 0;
    return tensor_type_nbytes(type, ne0, 1, &n, NULL) == 0 ? n : 0;
}
