/* GGUF v2/v3 reader: mmap the file, validate every table against the file size, and hand out
 * read-only views into the mapping. Nothing here trusts the file: every count, length, offset
 * and size is bounds-checked before it is used, and a malformed file yields one error line
 * naming the file and the field. See ../shared/design/ecosystem.md section 1. */
#ifndef ADAKV_GGUF_H
#define ADAKV_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor-type.h"

/* Metadata value types, as numbered by the GGUF spec. */
enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
};

/* A GGUF string: length + bytes inside the mapping, NOT NUL-terminated. */
struct gguf_str {
    uint64_t len;
    const char *ptr;
};

/* One metadata entry. For scalars, `data` points at the value bytes (little-endian, possibly
 * unaligned: read with memcpy, or better through the typed getters). For a string, `data` points
 * at its u64 length (gguf_get_str decodes it). For arrays, `arr_type` and `arr_n` describe the
 * elements and `data` points at the first element; string arrays also get `arr_strs` (one view
 * per element, built in one pass at open), walked directly or with gguf_arr_str(). Arrays of
 * arrays are validated but not indexed (arr_strs NULL). A bool byte other than 0 reads as true. */
struct gguf_kv {
    struct gguf_str key;
    enum gguf_type type;
    enum gguf_type arr_type; /* only for GGUF_TYPE_ARRAY */
    uint64_t arr_n;          /* only for GGUF_TYPE_ARRAY */
    const uint8_t *data;
    const struct gguf_str *arr_strs; /* string arrays: all element views, validated at open */
};

#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NAME 64

struct gguf_tensor {
    char name[GGUF_MAX_NAME + 1]; /* NUL-terminated copy */
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* unused dims are 1; ne[0] is the contiguous dimension */
    uint32_t type;              /* ggml type id, see tensor-type.h */
    uint64_t offset;            /* relative to the data section */
    uint64_t nbytes;            /* checked: data + nbytes lies inside the file */
    const void *data;           /* inside the mapping, aligned to the file's alignment */
};

struct gguf_file {
    char *path; /* owned copy, for messages */
    const uint8_t *map;
    size_t size;
    uint32_t version;
    uint64_t n_kv;
    struct gguf_kv *kv;
    uint64_t n_tensors;
    struct gguf_tensor *tensors;
    uint64_t alignment;   /* general.alignment or 32 */
    uint64_t data_offset; /* start of the tensor data section */
    /* private to gguf.c: indices sorted by key / tensor name, for binary-search lookups */
    uint64_t *kv_by_key;      /* [n_kv] */
    uint64_t *tensor_by_name; /* [n_tensors] */
    bool mapped;              /* map is an mmap of path (else the caller's memory) */
};

/* Nested arrays deeper than this are refused (bounds the parser's recursion). */
#define GGUF_MAX_ARRAY_DEPTH 8

/* Opens and validates `path`. On failure returns NULL and sets e to one line that starts with
 * the path, such as "model.gguf: truncated file while reading the type of tensor info 12
 * ('blk.1.attn_q.weight') (offset 4242)" or "model.gguf: tensor 'blk.0.attn_q.weight' has
 * unsupported type 16 (IQ2_XXS)". Checks: magic, version 2 or 3, every metadata value (nested
 * arrays up to GGUF_MAX_ARRAY_DEPTH), no duplicate keys, general.alignment (a power of two),
 * tensor names (<= 64 bytes, unique), n_dims 1..4, every ne >= 1, element and byte counts
 * without overflow, known type, whole blocks per row, aligned offsets, data inside the file,
 * no overlapping tensors. Nothing proportional to a count is allocated before the count is
 * checked against the bytes left. */
struct gguf_file *gguf_open(const char *path, struct adakv_err *e);

/* gguf_open with options. GGUF_OPEN_ANY_KNOWN_TYPE accepts tensors of every ggml type in
 * tensor-type.h (for the inspector); gguf_open refuses types adakv cannot compute with. Type ids
 * missing from the table are refused either way, since their byte size is unknown. */
enum { GGUF_OPEN_ANY_KNOWN_TYPE = 1u << 0 };
struct gguf_file *gguf_open_flags(const char *path, unsigned flags, struct adakv_err *e);

/* Parses a GGUF image already in memory (tests, fuzzing): same checks, no copy. `name` stands
 * for the path in messages; `data` must outlive the returned file. */
struct gguf_file *gguf_open_memory(const void *data, size_t size, const char *name, unsigned flags,
                                   struct adakv_err *e);
void gguf_close(struct gguf_file *f);

/* Hands back to the kernel the whole pages of the mapping inside [p, p + n) (a tensor's data that
 * is kept in another form from now on): they leave the process's resident set, and a later read
 * maps them in again from the file, so the tensor stays readable. Nothing happens when the file
 * is not mapped (gguf_open_memory) or p is outside the mapping. */
void gguf_release_pages(const struct gguf_file *f, const void *p, size_t n);

const struct gguf_kv *gguf_find(const struct gguf_file *f, const char *key);
const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name);

/* Typed getters. They return 0 on success and -1 when the key is absent or has an
 * incompatible type (message in e, naming key and file). Integer getters accept every integer
 * type (and bool) that fits the destination, because writers disagree on widths. */
int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out, struct adakv_err *e);
int gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out, struct adakv_err *e);
int gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out, struct adakv_err *e);
int gguf_get_f32(const struct gguf_file *f, const char *key, float *out, struct adakv_err *e);
int gguf_get_bool(const struct gguf_file *f, const char *key, bool *out, struct adakv_err *e);
int gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out,
                 struct adakv_err *e);
/* Arrays: returns the entry if `key` is an array of `elem_type`, else NULL with e set. */
const struct gguf_kv *gguf_get_arr(const struct gguf_file *f, const char *key,
                                   enum gguf_type elem_type, struct adakv_err *e);

/* Array element helpers; `i` must be < kv->arr_n (asserted). gguf_arr_str works for string
 * arrays. gguf_arr_i64 reads any integer (or bool) element type, returning false when the element
 * type is not an integer or a u64 value exceeds INT64_MAX. gguf_arr_f32 reads f32 or f64
 * elements (false for other types). */
struct gguf_str gguf_arr_str(const struct gguf_kv *kv, uint64_t i);
bool gguf_arr_i64(const struct gguf_kv *kv, uint64_t i, int64_t *out);
bool gguf_arr_f32(const struct gguf_kv *kv, uint64_t i, float *out);

/* Bytes of one scalar value of type t (0 for string, array and invalid types). */
size_t gguf_type_size(enum gguf_type t);

/* counts[type] = number of tensors of each ggml type id (ids >= TENSOR_TYPE_COUNT never occur
 * in an opened file). */
void gguf_count_tensor_types(const struct gguf_file *f, uint64_t counts[TENSOR_TYPE_COUNT]);

/* String compare helper for the non-terminated strings. */
bool gguf_str_eq(struct gguf_str s, const char *cstr);
const char *gguf_type_name(enum gguf_type t);

#endif
