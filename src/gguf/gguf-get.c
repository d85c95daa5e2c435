/* GGUF lookups and typed getters over an opened (already validated) file: binary search over
 * the sorted indices built at open, and integer widening because writers disagree on widths. */
#include "gguf.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "gguf-bytes.h"

size_t gguf_type_size(enum gguf_type t) {
    switch (t) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL:
        return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
        return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32:
        return 4;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

const char *gguf_type_name(enum gguf_type t) {
    static const char *const names[GGUF_TYPE_COUNT] = {
        [GGUF_TYPE_UINT8] = "u8",    [GGUF_TYPE_INT8] = "i8",    [GGUF_TYPE_UINT16] = "u16",
        [GGUF_TYPE_INT16] = "i16",   [GGUF_TYPE_UINT32] = "u32", [GGUF_TYPE_INT32] = "i32",
        [GGUF_TYPE_FLOAT32] = "f32", [GGUF_TYPE_BOOL] = "bool",  [GGUF_TYPE_STRING] = "string",
        [GGUF_TYPE_ARRAY] = "array", [GGUF_TYPE_UINT64] = "u64", [GGUF_TYPE_INT64] = "i64",
        [GGUF_TYPE_FLOAT64] = "f64",
    };
    return ((unsigned)t < GGUF_TYPE_COUNT) ? names[t] : "invalid";
}

/* ------------------------------------------------------------------------------------------ */
/* Lookups                                                                                      */

const struct gguf_kv *gguf_find(const struct gguf_file *f, const char *key) {
    size_t klen = strlen(key);
    uint64_t lo = 0, hi = f->kv_by_key ? f->n_kv : 0;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        const struct gguf_kv *kv = &f->kv[f->kv_by_key[mid]];
        int c = bytes_cmp(kv->key.ptr, kv->key.len, key, klen);
        if (c == 0)
            return kv;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name) {
    uint64_t lo = 0, hi = f->tensor_by_name ? f->n_tensors : 0;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        const struct gguf_tensor *t = &f->tensors[f->tensor_by_name[mid]];
        int c = strcmp(t->name, name);
        if (c == 0)
            return t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool gguf_str_eq(struct gguf_str s, const char *cstr) {
    size_t n = strlen(cstr);
    return s.len == n && memcmp(s.ptr, cstr, n) == 0;
}

void gguf_count_tensor_types(const struct gguf_file *f, uint64_t counts[TENSOR_TYPE_COUNT]) {
    memset(counts, 0, TENSOR_TYPE_COUNT * sizeof counts[0]);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        counts[f->tensors[i].type]++; /* open refused ids outside the table */
}

/* ------------------------------------------------------------------------------------------ */
/* Typed getters                                                                                */

/* An integer value as sign + magnitude, so that widening rules are one comparison each. */
struct int_value {
    bool neg;
    uint64_t mag;
};

static bool decode_int(enum gguf_type t, const uint8_t *p, struct int_value *v) {
    int64_t s;
    switch (t) {
    case GGUF_TYPE_BOOL:
    case GGUF_TYPE_UINT8:
        *v = (struct int_value){false, p[0]};
        return true;
    case GGUF_TYPE_UINT16:
        *v = (struct int_value){false, le16(p)};
        return true;
    case GGUF_TYPE_UINT32:
        *v = (struct int_value){false, le32(p)};
        return true;
    case GGUF_TYPE_UINT64:
        *v = (struct int_value){false, le64(p)};
        return true;
    case GGUF_TYPE_INT8:
        s = (int8_t)p[0];
        break;
    case GGUF_TYPE_INT16:
        s = (int16_t)le16(p);
        break;
    case GGUF_TYPE_INT32:
        s = (int32_t)le32(p);
        break;
    case GGUF_TYPE_INT64:
        s = (int64_t)le64(p);
        break;
    default:
        return false;
    }
    /* magnitude of INT64_MIN is 2^63, computed without signed overflow */
    *v = s < 0 ? (struct int_value){true, (uint64_t)0 - (uint64_t)s}
               : (struct int_value){false, (uint64_t)s};
    return true;
}

static const struct gguf_kv *find_typed(const struct gguf_file *f, const char *key,
                                        struct adakv_err *e) {
    const struct gguf_kv *kv = gguf_find(f, key);
    if (!kv)
        err_set(e, "%s: metadata key '%s' not found", f->path, key);
    return kv;
}

static int wrong_type(const struct gguf_file *f, const struct gguf_kv *kv, const char *key,
                      const char *expected, struct adakv_err *e) {
    if (kv->type == GGUF_TYPE_ARRAY)
        return err_set(e, "%s: metadata key '%s' is an array of %s, expected %s", f->path, key,
                       gguf_type_name(kv->arr_type), expected);
    return err_set(e, "%s: metadata key '%s' has type %s, expected %s", f->path, key,
                   gguf_type_name(kv->type), expected);
}

static int get_int(const struct gguf_file *f, const char *key, struct int_value *v,
                   struct adakv_err *e) {
    const struct gguf_kv *kv = find_typed(f, key, e);
    if (!kv)
        return -1;
    if (!decode_int(kv->type, kv->data, v))
        return wrong_type(f, kv, key, "an integer", e);
    return 0;
}

static int get_unsigned(const struct gguf_file *f, const char *key, uint64_t max, uint64_t *out,
                        struct adakv_err *e) {
    struct int_value v = {false, 0};
    if (get_int(f, key, &v, e) < 0)
        return -1;
    if (v.neg)
        return err_set(e, "%s: metadata key '%s' is negative (-%llu), expected an unsigned value",
                       f->path, key, (unsigned long long)v.mag);
    if (v.mag > max)
        return err_set(e, "%s: metadata key '%s' = %llu does not fit in %s", f->path, key,
                       (unsigned long long)v.mag, max == UINT32_MAX ? "u32" : "u64");
    *out = v.mag;
    return 0;
}

int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out, struct adakv_err *e) {
    return get_unsigned(f, key, UINT64_MAX, out, e);
}

int gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out, struct adakv_err *e) {
    uint64_t v = 0;
    if (get_unsigned(f, key, UINT32_MAX, &v, e) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out, struct adakv_err *e) {
    struct int_value v = {false, 0};
    if (get_int(f, key, &v, e) < 0)
        return -1;
    if (!v.neg && v.mag > (uint64_t)INT64_MAX)
        return err_set(e, "%s: metadata key '%s' = %llu does not fit in i64", f->path, key,
                       (unsigned long long)v.mag);
    *out = v.neg ? (int64_t)(0 - v.mag) : (int64_t)v.mag; /* 0 - 2^63 wraps to INT64_MIN */
    return 0;
}

static float decode_float(enum gguf_type t, const uint8_t *p) {
    if (t == GGUF_TYPE_FLOAT32) {
        uint32_t bits = le32(p);
        float x;
        memcpy(&x, &bits, sizeof x);
        return x;
    }
    uint64_t bits = le64(p);
    double x;
    memcpy(&x, &bits, sizeof x);
    return (float)x;
}

int gguf_get_f32(const struct gguf_file *f, const char *key, float *out, struct adakv_err *e) {
    const struct gguf_kv *kv = find_typed(f, key, e);
    if (!kv)
        return -1;
    if (kv->type != GGUF_TYPE_FLOAT32 && kv->type != GGUF_TYPE_FLOAT64)
        return wrong_type(f, kv, key, "f32", e);
    *out = decode_float(kv->type, kv->data);
    return 0;
}

int gguf_get_bool(const struct gguf_file *f, const char *key, bool *out, struct adakv_err *e) {
    const struct gguf_kv *kv = find_typed(f, key, e);
    if (!kv)
        return -1;
    if (kv->type != GGUF_TYPE_BOOL)
        return wrong_type(f, kv, key, "bool", e);
    *out = kv->data[0] != 0;
    return 0;
}

int gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out,
                 struct adakv_err *e) {
    const struct gguf_kv *kv = find_typed(f, key, e);
    if (!kv)
        return -1;
    if (kv->type != GGUF_TYPE_STRING)
        return wrong_type(f, kv, key, "string", e);
    /* length was validated at open; the bytes follow the 8-byte length */
    *out = (struct gguf_str){le64(kv->data), (const char *)kv->data + 8};
    return 0;
}

const struct gguf_kv *gguf_get_arr(const struct gguf_file *f, const char *key,
                                   enum gguf_type elem_type, struct adakv_err *e) {
    const struct gguf_kv *kv = find_typed(f, key, e);
    if (!kv)
        return NULL;
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != elem_type) {
        char expected[32];
        snprintf(expected, sizeof expected, "an array of %s", gguf_type_name(elem_type));
        wrong_type(f, kv, key, expected, e);
        return NULL;
    }
    return kv;
}

/* ------------------------------------------------------------------------------------------ */
/* Array elements                                                                               */

struct gguf_str gguf_arr_str(const struct gguf_kv *kv, uint64_t i) {
    assert(kv->type == GGUF_TYPE_ARRAY && kv->arr_type == GGUF_TYPE_STRING && kv->arr_strs);
    assert(i < kv->arr_n);
    return kv->arr_strs[i];
}

bool gguf_arr_i64(const struct gguf_kv *kv, uint64_t i, int64_t *out) {
    assert(kv->type == GGUF_TYPE_ARRAY && i < kv->arr_n);
    size_t es = gguf_type_size(kv->arr_type);
    struct int_value v = {false, 0};
    if (!es || !decode_int(kv->arr_type, kv->data + i * es, &v))
        return false;
    if (!v.neg && v.mag > (uint64_t)INT64_MAX)
        return false;
    *out = v.neg ? (int64_t)(0 - v.mag) : (int64_t)v.mag;
    return true;
}

bool gguf_arr_f32(const struct gguf_kv *kv, uint64_t i, float *out) {
    assert(kv->type == GGUF_TYPE_ARRAY && i < kv->arr_n);
    if (kv->arr_type != GGUF_TYPE_FLOAT32 && kv->arr_type != GGUF_TYPE_FLOAT64)
        return false;
    *out = decode_float(kv->arr_type, kv->data + i * gguf_type_size(kv->arr_type));
    return true;
}
