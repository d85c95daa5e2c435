/* gguf-writer: builds small GGUF files for tests (test code only, not part of libadakv).
 *
 * It is written from the GGUF spec, independently of src/gguf/gguf.c, so that tests of the reader
 * do not share its mistakes. Typical use, a tiny llama model with random weights:
 *
 *     struct gw *w = gw_new();                         // GGUF v3, alignment 32
 *     gw_kv_str(w, "general.architecture", "llama");
 *     gw_kv_u32(w, "llama.block_count", 1);
 *     gw_kv_f32(w, "llama.rope.freq_base", 10000.0f);
 *     gw_kv_arr_str(w, "tokenizer.ggml.tokens", tokens, n_vocab);
 *     uint64_t ne[2] = {64, 128};                       // ne[0] is the contiguous dimension
 *     gw_tensor(w, "token_embd.weight", 0, 2, ne, floats, sizeof floats);   // 0 = F32
 *     gw_write(w, path);                                 // aborts on I/O errors
 *     gw_free(w);
 *
 * Type ids are the GGUF/ggml numbers (GGUF_TYPE_* from gguf.h for metadata, tensor-type.h ids
 * for tensors); the writer does not check them, so tests can write invalid ones. Tensor data is
 * laid out in call order, each tensor at the next multiple of the alignment; the byte count is
 * whatever the caller passes (the writer does not know block sizes).
 *
 * Corruption hooks: after adding everything, gw_patch_u32/u64 overwrite a field of the final
 * image (located by gw_field_pos), e.g. gw_patch_u32(w, GW_VERSION, 0, 0, 1) for a v1 file or
 * gw_patch_u64(w, GW_TENSOR_OFFSET, 1, 0, 0) to make tensor 1 overlap tensor 0. Patches are
 * kept in order and re-applied every time the image is built. gw_write_prefix writes a
 * truncated file.
 *
 * Errors: out of memory and I/O failures abort() with a message on stderr (test code only). */
#ifndef ADAKV_TESTS_GGUF_WRITER_H
#define ADAKV_TESTS_GGUF_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw;

struct gw *gw_new(void);
void gw_free(struct gw *w);

/* Header version (default 3). */
void gw_set_version(struct gw *w, uint32_t version);
/* Lays tensor data out with this alignment AND stores it as the u32 key general.alignment
 * (added at the first call; later calls update it). Without a call: 32 and no key. */
void gw_set_alignment(struct gw *w, uint32_t alignment);

/* Scalar metadata, in call order. `key` and string values are copied. */
void gw_kv_u8(struct gw *w, const char *key, uint8_t v);
void gw_kv_i8(struct gw *w, const char *key, int8_t v);
void gw_kv_u16(struct gw *w, const char *key, uint16_t v);
void gw_kv_i16(struct gw *w, const char *key, int16_t v);
void gw_kv_u32(struct gw *w, const char *key, uint32_t v);
void gw_kv_i32(struct gw *w, const char *key, int32_t v);
void gw_kv_u64(struct gw *w, const char *key, uint64_t v);
void gw_kv_i64(struct gw *w, const char *key, int64_t v);
void gw_kv_f32(struct gw *w, const char *key, float v);
void gw_kv_f64(struct gw *w, const char *key, double v);
void gw_kv_bool(struct gw *w, const char *key, bool v);
void gw_kv_str(struct gw *w, const char *key, const char *s);
void gw_kv_str_n(struct gw *w, const char *key, const char *s, uint64_t len); /* any bytes */

/* Arrays. gw_kv_arr takes `n` host-order elements of a fixed-size type (u8 ... f64, bool) and
 * stores them little-endian. String arrays take NUL-terminated strings, or explicit lengths with
 * gw_kv_arr_str_n (lens may be NULL for NUL-terminated). */
void gw_kv_arr(struct gw *w, const char *key, uint32_t elem_type, const void *elems, uint64_t n);
void gw_kv_arr_i32(struct gw *w, const char *key, const int32_t *v, uint64_t n);
void gw_kv_arr_f32(struct gw *w, const char *key, const float *v, uint64_t n);
void gw_kv_arr_str(struct gw *w, const char *key, const char *const *strs, uint64_t n);
void gw_kv_arr_str_n(struct gw *w, const char *key, const char *const *strs, const uint64_t *lens,
                     uint64_t n);

/* Any value: `type` then the `nbytes` value bytes exactly as they appear in the file (nested
 * arrays, invalid type ids, ...). */
void gw_kv_raw(struct gw *w, const char *key, uint32_t type, const void *value, size_t nbytes);

/* Appends a tensor and returns its index. `ne` holds n_dims values (n_dims <= 4); data is copied
 * (NULL writes nbytes zero bytes). */
uint32_t gw_tensor(struct gw *w, const char *name, uint32_t type, uint32_t n_dims,
                   const uint64_t *ne, const void *data, size_t nbytes);

/* Fields of the final image. `index` selects the metadata entry or tensor info (0-based, in call
 * order), `sub` the dimension for GW_TENSOR_NE; both are ignored for header fields. */
enum gw_field {
    GW_MAGIC,           /* u32 */
    GW_VERSION,         /* u32 */
    GW_N_TENSORS,       /* u64 */
    GW_N_KV,            /* u64 */
    GW_KV_KEY_LEN,      /* u64 */
    GW_KV_TYPE,         /* u32 */
    GW_KV_VALUE,        /* first value byte: a scalar, or a string's u64 length */
    GW_KV_ARR_TYPE,     /* u32, arrays only */
    GW_KV_ARR_COUNT,    /* u64, arrays only */
    GW_TENSOR_NAME_LEN, /* u64 */
    GW_TENSOR_N_DIMS,   /* u32 */
    GW_TENSOR_NE,       /* u64, ne[sub] */
    GW_TENSOR_TYPE,     /* u32 */
    GW_TENSOR_OFFSET,   /* u64, relative to the data section */
    GW_DATA,            /* start of the data section (after alignment padding) */
};

/* Byte position of a field in the image (aborts when index/sub/field do not exist). */
size_t gw_field_pos(struct gw *w, enum gw_field field, uint32_t index, uint32_t sub);
void gw_patch_u8(struct gw *w, enum gw_field field, uint32_t index, uint32_t sub, uint8_t v);
void gw_patch_u32(struct gw *w, enum gw_field field, uint32_t index, uint32_t sub, uint32_t v);
void gw_patch_u64(struct gw *w, enum gw_field field, uint32_t index, uint32_t sub, uint64_t v);

/* The file image with patches applied; owned by w, valid until the next gw_* call. */
const uint8_t *gw_bytes(struct gw *w, size_t *len);
/* Offset of tensor `index`'s data relative to the data section, as laid out (before patches). */
uint64_t gw_tensor_offset(struct gw *w, uint32_t index);

void gw_write(struct gw *w, const char *path);
/* Writes only the first `len` bytes of the image (len may exceed it: then the whole image). */
void gw_write_prefix(struct gw *w, const char *path, size_t len);

#endif
