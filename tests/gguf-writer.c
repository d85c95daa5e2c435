/* GGUF writer for tests: serializes from the spec (ggml docs/gguf.md), little-endian. */
#include "gguf-writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Metadata type ids from the GGUF spec (deliberately not taken from src/gguf/gguf.h). */
enum { GW_T_STRING = 8, GW_T_ARRAY = 9, GW_T_BOOL = 7 };
#define GW_T_U32     4
#define GW_T_I32     5
#define GW_T_F32     6
#define GW_MAX_DIMS  4
#define GW_ALIGN_KEY "general.alignment"

struct gw_buf {
    uint8_t *p;
    size_t len, cap;
};

struct gw_kv {
    char *key;
    uint32_t type;
    struct gw_buf value; /* encoded value bytes */
    size_t key_len_pos, type_pos, value_pos;
};

struct gw_tensor {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[GW_MAX_DIMS];
    uint8_t *data;
    size_t nbytes;
    uint64_t offset;
    size_t name_len_pos, n_dims_pos, ne_pos, type_pos, offset_pos;
};

struct gw_patch {
    enum gw_field field;
    uint32_t index, sub, width;
    uint64_t value;
};

struct gw {
    uint32_t version, alignment;
    long align_kv; /* index of the general.alignment entry, or -1 */
    struct gw_kv *kv;
    size_t n_kv;
    struct gw_tensor *t;
    size_t n_t;
    struct gw_patch *patches;
    size_t n_patches;
    struct gw_buf image;
    size_t data_pos;
};

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "gguf-writer: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(xrealloc(NULL, n), s, n);
}

/* ------------------------------------------------------------------------------------------ */
/* Little-endian byte buffer                                                                   */

static void buf_put(struct gw_buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = xrealloc(b->p, b->cap);
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void buf_le(struct gw_buf *b, uint64_t v, unsigned width) {
    uint8_t bytes[8];
    for (unsigned i = 0; i < width; i++)
        bytes[i] = (uint8_t)(v >> (8 * i));
    buf_put(b, bytes, width);
}

static void buf_zeros(struct gw_buf *b, size_t n) {
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        buf_put(b, zeros, k);
        n -= k;
    }
}

static void buf_str(struct gw_buf *b, const char *s, uint64_t len) {
    buf_le(b, len, 8);
    buf_put(b, s, (size_t)len);
}

static void put_le_at(uint8_t *p, uint64_t v, unsigned width) {
    for (unsigned i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ------------------------------------------------------------------------------------------ */
/* Building                                                                                     */

struct gw *gw_new(void) {
    struct gw *w = xrealloc(NULL, sizeof *w);
    memset(w, 0, sizeof *w);
    w->version = 3;
    w->alignment = 32;
    w->align_kv = -1;
    return w;
}

void gw_free(struct gw *w) {
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++)
        free(w->kv[i].key), free(w->kv[i].value.p);
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].name), free(w->t[i].data);
    free(w->kv);
    free(w->t);
    free(w->patches);
    free(w->image.p);
    free(w);
}

void gw_set_version(struct gw *w, uint32_t version) {
    w->version = version;
}

static struct gw_kv *add_kv(struct gw *w, const char *key, uint32_t type) {
    w->kv = xrealloc(w->kv, (w->n_kv + 1) * sizeof *w->kv);
    struct gw_kv *kv = &w->kv[w->n_kv++];
    memset(kv, 0, sizeof *kv);
    kv->key = xstrdup(key);
    kv->type = type;
    return kv;
}

void gw_set_alignment(struct gw *w, uint32_t alignment) {
    w->alignment = alignment;
    if (w->align_kv < 0) {
        w->align_kv = (long)w->n_kv;
        add_kv(w, GW_ALIGN_KEY, GW_T_U32);
    }
    struct gw_buf *v = &w->kv[w->align_kv].value;
    v->len = 0;
    buf_le(v, alignment, 4);
}

static void kv_scalar(struct gw *w, const char *key, uint32_t type, uint64_t bits, unsigned width) {
    buf_le(&add_kv(w, key, type)->value, bits, width);
}

void gw_kv_u8(struct gw *w, const char *key, uint8_t v) {
    kv_scalar(w, key, 0, v, 1);
}
void gw_kv_i8(struct gw *w, const char *key, int8_t v) {
    kv_scalar(w, key, 1, (uint8_t)v, 1);
}
void gw_kv_u16(struct gw *w, const char *key, uint16_t v) {
    kv_scalar(w, key, 2, v, 2);
}
void gw_kv_i16(struct gw *w, const char *key, int16_t v) {
    kv_scalar(w, key, 3, (uint16_t)v, 2);
}
void gw_kv_u32(struct gw *w, const char *key, uint32_t v) {
    kv_scalar(w, key, GW_T_U32, v, 4);
}
void gw_kv_i32(struct gw *w, const char *key, int32_t v) {
    kv_scalar(w, key, GW_T_I32, (uint32_t)v, 4);
}
void gw_kv_u64(struct gw *w, const char *key, uint64_t v) {
    kv_scalar(w, key, 10, v, 8);
}
void gw_kv_i64(struct gw *w, const char *key, int64_t v) {
    kv_scalar(w, key, 11, (uint64_t)v, 8);
}
void gw_kv_bool(struct gw *w, const char *key, bool v) {
    kv_scalar(w, key, GW_T_BOOL, v, 1);
}

void gw_kv_f32(struct gw *w, const char *key, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    kv_scalar(w, key, GW_T_F32, bits, 4);
}

void gw_kv_f64(struct gw *w, const char *key, double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    kv_scalar(w, key, 12, bits, 8);
}

void gw_kv_str(struct gw *w, const char *key, const char *s) {
    gw_kv_str_n(w, key, s, strlen(s));
}

void gw_kv_str_n(struct gw *w, const char *key, const char *s, uint64_t len) {
    buf_str(&add_kv(w, key, GW_T_STRING)->value, s, len);
}

static unsigned elem_width(uint32_t type) {
    static const unsigned widths[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    unsigned w = type < 13 ? widths[type] : 0;
    if (!w) {
        fprintf(stderr, "gguf-writer: gw_kv_arr needs a fixed-size element type, got %u\n", type);
        abort();
    }
    return w;
}

void gw_kv_arr(struct gw *w, const char *key, uint32_t elem_type, const void *elems, uint64_t n) {
    unsigned width = elem_width(elem_type);
    struct gw_buf *v = &add_kv(w, key, GW_T_ARRAY)->value;
    buf_le(v, elem_type, 4);
    buf_le(v, n, 8);
    const uint8_t *p = elems;
    for (uint64_t i = 0; i < n; i++, p += width) {
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        switch (width) { /* memcpy: the caller's array may be unaligned for the element type */
        case 1:
            u8 = p[0], buf_le(v, u8, 1);
            break;
        case 2:
            memcpy(&u16, p, 2), buf_le(v, u16, 2);
            break;
        case 4:
            memcpy(&u32, p, 4), buf_le(v, u32, 4);
            break;
        default:
            memcpy(&u64, p, 8), buf_le(v, u64, 8);
        }
    }
}

void gw_kv_arr_i32(struct gw *w, const char *key, const int32_t *v, uint64_t n) {
    gw_kv_arr(w, key, GW_T_I32, v, n);
}

void gw_kv_arr_f32(struct gw *w, const char *key, const float *v, uint64_t n) {
    gw_kv_arr(w, key, GW_T_F32, v, n);
}

void gw_kv_arr_str(struct gw *w, const char *key, const char *const *strs, uint64_t n) {
    gw_kv_arr_str_n(w, key, strs, NULL, n);
}

void gw_kv_arr_str_n(struct gw *w, const char *key, const char *const *strs, const uint64_t *lens,
                     uint64_t n) {
    struct gw_buf *v = &add_kv(w, key, GW_T_ARRAY)->value;
    buf_le(v, GW_T_STRING, 4);
    buf_le(v, n, 8);
    for (uint64_t i = 0; i < n; i++)
        buf_str(v, strs[i], lens ? lens[i] : strlen(strs[i]));
}

void gw_kv_raw(struct gw *w, const char *key, uint32_t type, const void *value, size_t nbytes) {
    buf_put(&add_kv(w, key, type)->value, value, nbytes);
}

uint32_t gw_tensor(struct gw *w, const char *name, uint32_t type, uint32_t n_dims,
                   const uint64_t *ne, const void *data, size_t nbytes) {
    if (n_dims > GW_MAX_DIMS) {
        fprintf(stderr, "gguf-writer: %u dims (max %d): patch GW_TENSOR_N_DIMS instead\n", n_dims,
                GW_MAX_DIMS);
        abort();
    }
    w->t = xrealloc(w->t, (w->n_t + 1) * sizeof *w->t);
    struct gw_tensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < n_dims; d++)
        t->ne[d] = ne[d];
    t->nbytes = nbytes;
    t->data = xrealloc(NULL, nbytes);
    if (data)
        memcpy(t->data, data, nbytes);
    else
        memset(t->data, 0, nbytes);
    return (uint32_t)w->n_t++;
}

/* ------------------------------------------------------------------------------------------ */
/* Serializing                                                                                  */

static uint64_t align_up(uint64_t x, uint64_t a) {
    return a ? (x + a - 1) / a * a : x;
}

static void layout(struct gw *w) {
    struct gw_buf *b = &w->image;
    b->len = 0;
    buf_le(b, 0x46554747u, 4); /* "GGUF" */
    buf_le(b, w->version, 4);
    buf_le(b, w->n_t, 8);
    buf_le(b, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        struct gw_kv *kv = &w->kv[i];
        kv->key_len_pos = b->len;
        buf_str(b, kv->key, strlen(kv->key));
        kv->type_pos = b->len;
        buf_le(b, kv->type, 4);
        kv->value_pos = b->len;
        buf_put(b, kv->value.p, kv->value.len);
    }
    uint64_t next = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        struct gw_tensor *t = &w->t[i];
        t->offset = align_up(next, w->alignment);
        next = t->offset + t->nbytes;
        t->name_len_pos = b->len;
        buf_str(b, t->name, strlen(t->name));
        t->n_dims_pos = b->len;
        buf_le(b, t->n_dims, 4);
        t->ne_pos = b->len;
        for (uint32_t d = 0; d < t->n_dims; d++)
            buf_le(b, t->ne[d], 8);
        t->type_pos = b->len;
        buf_le(b, t->type, 4);
        t->offset_pos = b->len;
        buf_le(b, t->offset, 8);
    }
    w->data_pos = (size_t)align_up(b->len, w->alignment);
    buf_zeros(b, w->data_pos - b->len);
    for (size_t i = 0; i < w->n_t; i++) {
        buf_zeros(b, (size_t)(w->data_pos + w->t[i].offset - b->len));
        buf_put(b, w->t[i].data, w->t[i].nbytes);
    }
}

static size_t field_pos(const struct gw *w, enum gw_field f, uint32_t index, uint32_t sub) {
    bool is_kv = f >= GW_KV_KEY_LEN && f <= GW_KV_ARR_COUNT;
    bool is_t = f >= GW_TENSOR_NAME_LEN && f <= GW_TENSOR_OFFSET;
    if ((is_kv && index >= w->n_kv) || (is_t && index >= w->n_t) ||
        (f == GW_TENSOR_NE && sub >= w->t[index].n_dims) ||
        ((f == GW_KV_ARR_TYPE || f == GW_KV_ARR_COUNT) && w->kv[index].type != GW_T_ARRAY)) {
        fprintf(stderr, "gguf-writer: no field %d at index %u sub %u\n", (int)f, index, sub);
        abort();
    }
    switch (f) {
    case GW_MAGIC:
        return 0;
    case GW_VERSION:
        return 4;
    case GW_N_TENSORS:
        return 8;
    case GW_N_KV:
        return 16;
    case GW_KV_KEY_LEN:
        return w->kv[index].key_len_pos;
    case GW_KV_TYPE:
        return w->kv[index].type_pos;
    case GW_KV_VALUE:
    case GW_KV_ARR_TYPE:
        return w->kv[index].value_pos;
    case GW_KV_ARR_COUNT:
        return w->kv[index].value_pos + 4;
    case GW_TENSOR_NAME_LEN:
        return w->t[index].name_len_pos;
    case GW_TENSOR_N_DIMS:
        return w->t[index].n_dims_pos;
    case GW_TENSOR_NE:
        return w->t[index].ne_pos + 8 * (size_t)sub;
    case GW_TENSOR_TYPE:
        return w->t[index].type_pos;
    case GW_TENSOR_OFFSET:
        return w->t[index].offset_pos;
    case GW_DATA:
        return w->data_pos;
    }
    abort();
}

size_t gw_field_pos(struct gw *w, enum gw_field field, uint32_t index, uint32_t sub) {
    layout(w);
    return field_pos(w, field, index, sub);
}

static void add_patch(struct gw *w, enum gw_field f, uint32_t index, uint32_t sub, uint32_t width,
                      uint64_t v) {
    layout(w);
    (void)field_pos(w, f, index, sub); /* abort now on a bad field rather than at write time */
    w->patches = xrealloc(w->patches, (w->n_patches + 1) * sizeof *w->patches);
    w->patches[w->n_patches++] = (struct gw_patch){f, index, sub, width, v};
}

void gw_patch_u8(struct gw *w, enum gw_field field, uint32_t index, uint32_t sub, uint8_t v) {
    add_patch(w, field, index, sub, 1, v);
}
void gw_patch_u32(struct gw *w, enum gw_field field, uint32_t index, uint32_t sub, uint32_t v) {
    add_patch(w, field, index, sub, 4, v);
}
void gw_patch_u64(struct gw *w, enum gw_field field, uint32_t index, uint32_t sub, uint64_t v) {
    add_patch(w, field, index, sub, 8, v);
}

const uint8_t *gw_bytes(struct gw *w, size_t *len) {
    layout(w);
    for (size_t i = 0; i < w->n_patches; i++) {
        const struct gw_patch *p = &w->patches[i];
        size_t pos = field_pos(w, p->field, p->index, p->sub);
        if (pos + p->width > w->image.len) {
            fprintf(stderr, "gguf-writer: patch at %zu runs past the image\n", pos);
            abort();
        }
        put_le_at(w->image.p + pos, p->value, p->width);
    }
    *len = w->image.len;
    return w->image.p;
}

uint64_t gw_tensor_offset(struct gw *w, uint32_t index) {
    layout(w);
    if (index >= w->n_t)
        abort();
    return w->t[index].offset;
}

void gw_write_prefix(struct gw *w, const char *path, size_t len) {
    size_t n;
    const uint8_t *p = gw_bytes(w, &n);
    if (len > n)
        len = n;
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(p, 1, len, fp) != len || fclose(fp) != 0) {
        fprintf(stderr, "gguf-writer: cannot write %s\n", path);
        abort();
    }
}

void gw_write(struct gw *w, const char *path) {
    gw_write_prefix(w, path, SIZE_MAX);
}
