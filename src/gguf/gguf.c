/* GGUF reader. The file is untrusted: the parser walks it with a cursor that never reads past
 * the mapping, and every count is compared with the bytes left before anything proportional to
 * it is allocated, so a bad file costs at most a few times its own size in memory. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf-bytes.h"

#define GGUF_MAGIC             0x46554747u /* "GGUF" read as a little-endian u32 */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_HEADER_SIZE       24 /* magic, version, tensor count, kv count */

/* Smallest encodings, used to bound counts by the bytes left before allocating. */
#define GGUF_MIN_KV_SIZE     13 /* key length, key type, 1-byte value */
#define GGUF_MIN_TENSOR_SIZE 32 /* name length, n_dims, one ne, type, offset */
#define GGUF_MIN_STR_SIZE    8  /* length field only */
#define GGUF_MIN_ARR_SIZE    12 /* element type, count */

/* ------------------------------------------------------------------------------------------ */
/* Names in messages: file bytes may hold newlines or escapes, but a message is one line.       */

#define SHOWN_NAME_MAX 80

/* Copies at most SHOWN_NAME_MAX bytes of s into out (size >= SHOWN_NAME_MAX + 4), replacing
 * bytes outside printable ASCII with '?' and marking a cut with "...". */
static const char *shown(struct gguf_str s, char *out) {
    size_t n = s.len < SHOWN_NAME_MAX ? (size_t)s.len : SHOWN_NAME_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (s.len > SHOWN_NAME_MAX)
        memcpy(out + n, "...", 3), n += 3;
    out[n] = '\0';
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Cursor over the mapping                                                                      */

struct reader {
    const char *path;
    const uint8_t *base;
    size_t size;
    size_t pos; /* invariant: pos <= size */
    struct adakv_err *e;
    char where[SHOWN_NAME_MAX + 64]; /* "metadata key 'x'", "tensor info 3 ('y')" for messages */
};

static size_t rd_left(const struct reader *r) {
    return r->size - r->pos;
}

static int rd_truncated(struct reader *r, const char *field) {
    return err_set(r->e, "%s: truncated file while reading %s of %s (offset %zu)", r->path, field,
                   r->where, r->pos);
}

static int rd_skip(struct reader *r, uint64_t n, const char *field) {
    if (n > rd_left(r))
        return rd_truncated(r, field);
    r->pos += (size_t)n;
    return 0;
}

/* Outputs are zeroed on failure too: callers stop at -1, but -O3 cannot see that err_set
 * always returns -1 and would warn about maybe-uninitialized values. */
static int rd_u32(struct reader *r, uint32_t *v, const char *field) {
    *v = 0;
    if (rd_left(r) < 4)
        return rd_truncated(r, field);
    *v = le32(r->base + r->pos);
    r->pos += 4;
    return 0;
}

static int rd_u64(struct reader *r, uint64_t *v, const char *field) {
    *v = 0;
    if (rd_left(r) < 8)
        return rd_truncated(r, field);
    *v = le64(r->base + r->pos);
    r->pos += 8;
    return 0;
}

static int rd_str(struct reader *r, struct gguf_str *s, const char *field) {
    uint64_t len = 0;
    if (rd_u64(r, &len, field) < 0)
        return -1;
    if (len > rd_left(r))
        return err_set(r->e,
                       "%s: %s of %s has length %llu but only %zu bytes are left in the file "
                       "(offset %zu)",
                       r->path, field, r->where, (unsigned long long)len, rd_left(r), r->pos);
    s->len = len;
    s->ptr = (const char *)(r->base + r->pos);
    r->pos += (size_t)len;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Metadata values                                                                              */

static int rd_type(struct reader *r, enum gguf_type *t, const char *field) {
    uint32_t v = 0;
    *t = GGUF_TYPE_UINT8;
    if (rd_u32(r, &v, field) < 0)
        return -1;
    if (v >= GGUF_TYPE_COUNT)
        return err_set(r->e, "%s: %s of %s is %u, not a GGUF value type (0..%d)", r->path, field,
                       r->where, v, GGUF_TYPE_COUNT - 1);
    *t = (enum gguf_type)v;
    return 0;
}

/* Walks one array body (element type and count already read). When strs is not NULL the
 * caller wants string element views, and has sized it to `n` after the bound check below. */
static int rd_array_body(struct reader *r, enum gguf_type et, uint64_t n, int depth,
                         struct gguf_str *strs);

/* Checks that `n` elements of at least `min_size` bytes each can fit in what is left, so that
 * loops and allocations sized by n are bounded by the file size. */
static int rd_check_count(struct reader *r, uint64_t n, size_t min_size) {
    if (n > rd_left(r) / min_size)
        return err_set(r->e,
                       "%s: array count %llu of %s needs at least %llu bytes but only %zu are "
                       "left in the file (offset %zu)",
                       r->path, (unsigned long long)n, r->where,
                       (n > UINT64_MAX / min_size) ? (unsigned long long)UINT64_MAX
                                                   : (unsigned long long)(n * min_size),
                       rd_left(r), r->pos);
    return 0;
}

static int rd_array_head(struct reader *r, enum gguf_type *et, uint64_t *n, int depth) {
    if (depth >= GGUF_MAX_ARRAY_DEPTH)
        return err_set(r->e, "%s: %s nests arrays deeper than %d levels", r->path, r->where,
                       GGUF_MAX_ARRAY_DEPTH);
    if (rd_type(r, et, "the array element type") < 0 || rd_u64(r, n, "the array count") < 0)
        return -1;
    return 0;
}

static int rd_array_body(struct reader *r, enum gguf_type et, uint64_t n, int depth,
                         struct gguf_str *strs) {
    size_t es = gguf_type_size(et);
    if (es) {
        if (rd_check_count(r, n, es) < 0)
            return -1;
        r->pos += (size_t)(n * es);
        return 0;
    }
    if (rd_check_count(r, n, et == GGUF_TYPE_STRING ? GGUF_MIN_STR_SIZE : GGUF_MIN_ARR_SIZE) < 0)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        if (et == GGUF_TYPE_STRING) {
            struct gguf_str s;
            if (rd_str(r, &s, "a string element") < 0)
                return -1;
            if (strs)
                strs[i] = s;
        } else {
            enum gguf_type sub_et = GGUF_TYPE_UINT8;
            uint64_t sub_n = 0;
            if (rd_array_head(r, &sub_et, &sub_n, depth + 1) < 0 ||
                rd_array_body(r, sub_et, sub_n, depth + 1, NULL) < 0)
                return -1;
        }
    }
    return 0;
}

static int rd_kv(struct reader *r, uint64_t index, struct gguf_kv *kv) {
    char name[SHOWN_NAME_MAX + 4];
    snprintf(r->where, sizeof r->where, "metadata entry %llu", (unsigned long long)index);
    if (rd_str(r, &kv->key, "the key") < 0)
        return -1;
    snprintf(r->where, sizeof r->where, "metadata key '%s'", shown(kv->key, name));
    if (rd_type(r, &kv->type, "the value type") < 0)
        return -1;
    if (kv->type == GGUF_TYPE_STRING) {
        struct gguf_str s;
        kv->data = r->base + r->pos;
        return rd_str(r, &s, "the string value");
    }
    if (kv->type != GGUF_TYPE_ARRAY) {
        kv->data = r->base + r->pos;
        return rd_skip(r, gguf_type_size(kv->type), "the value");
    }
    if (rd_array_head(r, &kv->arr_type, &kv->arr_n, 0) < 0)
        return -1;
    kv->data = r->base + r->pos;
    struct gguf_str *strs = NULL;
    if (kv->arr_type == GGUF_TYPE_STRING) {
        /* bound first: n * 8 bytes fit in the file, so this allocation is at most 2x its size */
        if (rd_check_count(r, kv->arr_n, GGUF_MIN_STR_SIZE) < 0)
            return -1;
        strs = malloc((size_t)(kv->arr_n ? kv->arr_n : 1) * sizeof *strs);
        if (!strs)
            return err_set(r->e, "%s: out of memory for %llu strings of %s", r->path,
                           (unsigned long long)kv->arr_n, r->where);
        kv->arr_strs = strs;
    }
    return rd_array_body(r, kv->arr_type, kv->arr_n, 0, strs);
}

/* ------------------------------------------------------------------------------------------ */
/* Sorted indices: duplicate detection and O(log n) lookups                                     */

/* qsort has no context argument in C11, so the arrays being sorted are parked here. */
static _Thread_local const struct gguf_file *sort_file;

static int kv_order(const void *a, const void *b) {
    const struct gguf_kv *x = &sort_file->kv[*(const uint64_t *)a];
    const struct gguf_kv *y = &sort_file->kv[*(const uint64_t *)b];
    int c = bytes_cmp(x->key.ptr, x->key.len, y->key.ptr, y->key.len);
    return c ? c
             : (*(const uint64_t *)a > *(const uint64_t *)b) -
                   (*(const uint64_t *)a < *(const uint64_t *)b);
}

static int tensor_name_order(const void *a, const void *b) {
    const struct gguf_tensor *x = &sort_file->tensors[*(const uint64_t *)a];
    const struct gguf_tensor *y = &sort_file->tensors[*(const uint64_t *)b];
    int c = strcmp(x->name, y->name);
    return c ? c
             : (*(const uint64_t *)a > *(const uint64_t *)b) -
                   (*(const uint64_t *)a < *(const uint64_t *)b);
}

static int tensor_offset_order(const void *a, const void *b) {
    const struct gguf_tensor *x = &sort_file->tensors[*(const uint64_t *)a];
    const struct gguf_tensor *y = &sort_file->tensors[*(const uint64_t *)b];
    return (x->offset > y->offset) - (x->offset < y->offset);
}

static uint64_t *sorted_index(const struct gguf_file *f, uint64_t n,
                              int (*order)(const void *, const void *)) {
    uint64_t *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    if (!idx)
        return NULL;
    for (uint64_t i = 0; i < n; i++)
        idx[i] = i;
    sort_file = f;
    qsort(idx, (size_t)n, sizeof *idx, order);
    sort_file = NULL;
    return idx;
}

static int index_kvs(struct gguf_file *f, struct adakv_err *e) {
    f->kv_by_key = sorted_index(f, f->n_kv, kv_order);
    if (!f->kv_by_key)
        return err_set(e, "%s: out of memory indexing %llu metadata keys", f->path,
                       (unsigned long long)f->n_kv);
    for (uint64_t i = 1; i < f->n_kv; i++) {
        const struct gguf_kv *a = &f->kv[f->kv_by_key[i - 1]], *b = &f->kv[f->kv_by_key[i]];
        char name[SHOWN_NAME_MAX + 4];
        if (bytes_cmp(a->key.ptr, a->key.len, b->key.ptr, b->key.len) == 0)
            return err_set(e, "%s: duplicate metadata key '%s' (entries %llu and %llu)", f->path,
                           shown(a->key, name), (unsigned long long)f->kv_by_key[i - 1],
                           (unsigned long long)f->kv_by_key[i]);
    }
    return 0;
}

static int index_tensors(struct gguf_file *f, struct adakv_err *e) {
    f->tensor_by_name = sorted_index(f, f->n_tensors, tensor_name_order);
    uint64_t *by_offset = sorted_index(f, f->n_tensors, tensor_offset_order);
    int rc = 0;
    if (!f->tensor_by_name || !by_offset) {
        rc = err_set(e, "%s: out of memory indexing %llu tensors", f->path,
                     (unsigned long long)f->n_tensors);
        goto out;
    }
    for (uint64_t i = 1; i < f->n_tensors; i++) {
        const struct gguf_tensor *a = &f->tensors[f->tensor_by_name[i - 1]];
        const struct gguf_tensor *b = &f->tensors[f->tensor_by_name[i]];
        if (strcmp(a->name, b->name) == 0) {
            rc = err_set(e, "%s: duplicate tensor name '%s' (tensor infos %llu and %llu)", f->path,
                         a->name, (unsigned long long)f->tensor_by_name[i - 1],
                         (unsigned long long)f->tensor_by_name[i]);
            goto out;
        }
    }
    for (uint64_t i = 1; i < f->n_tensors; i++) {
        const struct gguf_tensor *a = &f->tensors[by_offset[i - 1]];
        const struct gguf_tensor *b = &f->tensors[by_offset[i]];
        if (a->offset + a->nbytes > b->offset) { /* no overflow: both end inside the file */
            rc = err_set(e,
                         "%s: tensor '%s' (data offset %llu, %llu bytes) overlaps tensor '%s' "
                         "(data offset %llu)",
                         f->path, a->name, (unsigned long long)a->offset,
                         (unsigned long long)a->nbytes, b->name, (unsigned long long)b->offset);
            goto out;
        }
    }
out:
    free(by_offset);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Tensor infos                                                                                 */

static int rd_tensor_info(struct reader *r, uint64_t index, struct gguf_tensor *t) {
    struct gguf_str name;
    char shown_name[SHOWN_NAME_MAX + 4];
    snprintf(r->where, sizeof r->where, "tensor info %llu", (unsigned long long)index);
    if (rd_str(r, &name, "the name") < 0)
        return -1;
    if (name.len > GGUF_MAX_NAME)
        return err_set(r->e, "%s: tensor info %llu: name '%s' is %llu bytes, longer than %d",
                       r->path, (unsigned long long)index, shown(name, shown_name),
                       (unsigned long long)name.len, GGUF_MAX_NAME);
    if (memchr(name.ptr, '\0', (size_t)name.len))
        return err_set(r->e, "%s: tensor info %llu: name contains a NUL byte", r->path,
                       (unsigned long long)index);
    memcpy(t->name, name.ptr, (size_t)name.len);
    t->name[name.len] = '\0';
    snprintf(r->where, sizeof r->where, "tensor info %llu ('%s')", (unsigned long long)index,
             shown(name, shown_name));
    if (rd_u32(r, &t->n_dims, "n_dims") < 0)
        return -1;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return err_set(r->e, "%s: tensor '%s' has n_dims %u (must be 1..%d)", r->path, t->name,
                       t->n_dims, GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d < t->n_dims && rd_u64(r, &t->ne[d], "the dimensions") < 0)
            return -1;
    }
    if (rd_u32(r, &t->type, "the type") < 0 || rd_u64(r, &t->offset, "the data offset") < 0)
        return -1;
    return 0;
}

/* Checks one tensor's shape and type and computes its byte size (offsets are checked later,
 * once the data section start is known). */
static int check_tensor(const struct gguf_file *f, struct gguf_tensor *t, unsigned flags,
                        struct adakv_err *e) {
    uint64_t nrows = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] == 0)
            return err_set(e, "%s: tensor '%s' has ne[%u] = 0", f->path, t->name, d);
        /* ggml stores element counts as int64: the full product must fit */
        if (t->ne[d] > (uint64_t)INT64_MAX / nrows)
            return err_set(e, "%s: tensor '%s' element count overflows (ne[%u] = %llu)", f->path,
                           t->name, d, (unsigned long long)t->ne[d]);
        nrows *= t->ne[d];
    }
    nrows /= t->ne[0];
    const struct tensor_type_info *ti = tensor_type_info(t->type);
    if (!ti)
        return err_set(e, "%s: tensor '%s' has unknown type %u", f->path, t->name, t->type);
    if (!ti->supported && !(flags & GGUF_OPEN_ANY_KNOWN_TYPE))
        return err_set(e, "%s: tensor '%s' has unsupported type %u (%s)", f->path, t->name, t->type,
                       ti->name);
    struct adakv_err why;
    if (tensor_type_nbytes(t->type, t->ne[0], nrows, &t->nbytes, &why) < 0)
        return err_set(e, "%s: tensor '%s': %s", f->path, t->name, why.msg);
    if (t->offset % f->alignment != 0)
        return err_set(
            e, "%s: tensor '%s' data offset %llu is not a multiple of the alignment %llu", f->path,
            t->name, (unsigned long long)t->offset, (unsigned long long)f->alignment);
    return 0;
}

static int place_tensor(const struct gguf_file *f, struct gguf_tensor *t, struct adakv_err *e) {
    uint64_t room = f->size - f->data_offset; /* caller checked data_offset <= size */
    if (t->offset > room || t->nbytes > room - t->offset)
        return err_set(e,
                       "%s: tensor '%s' data (offset %llu + %llu bytes after the data start "
                       "%llu) runs past the end of the file (%zu bytes)",
                       f->path, t->name, (unsigned long long)t->offset,
                       (unsigned long long)t->nbytes, (unsigned long long)f->data_offset, f->size);
    t->data = f->map + f->data_offset + t->offset;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Open / close                                                                                 */

static int map_file(struct gguf_file *f, struct adakv_err *e) {
    /* O_NONBLOCK: opening a FIFO by mistake must fail below, not wait for a writer */
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return err_set(e, "%s: cannot open: %s", f->path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = err_set(e, "%s: cannot stat: %s", f->path, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = err_set(e, "%s: is a directory, not a GGUF file", f->path);
    else if (!S_ISREG(st.st_mode))
        rc = err_set(e, "%s: not a regular file", f->path);
    else if (st.st_size == 0)
        rc = err_set(e, "%s: empty file, not a GGUF file", f->path);
    else if ((uint64_t)st.st_size > SIZE_MAX)
        rc = err_set(e, "%s: file too large to map (%lld bytes)", f->path, (long long)st.st_size);
    if (rc == 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            rc = err_set(e, "%s: cannot mmap: %s", f->path, strerror(errno));
        else
            f->map = m, f->size = (size_t)st.st_size, f->mapped = true;
    }
    close(fd);
    return rc;
}

static int read_header(struct gguf_file *f, struct reader *r) {
    snprintf(r->where, sizeof r->where, "the header");
    if (f->size < 4)
        return err_set(r->e, "%s: not a GGUF file (only %zu bytes)", f->path, f->size);
    uint32_t magic = le32(f->map);
    if (magic != GGUF_MAGIC)
        return err_set(r->e,
                       "%s: not a GGUF file (magic bytes %02x %02x %02x %02x, expected 'GGUF')",
                       f->path, f->map[0], f->map[1], f->map[2], f->map[3]);
    r->pos = 4;
    if (rd_u32(r, &f->version, "the version") < 0)
        return -1;
    uint32_t swapped = __builtin_bswap32(f->version);
    if (f->version == 1)
        return err_set(r->e,
                       "%s: GGUF version 1 is not supported (it used 32-bit counts); "
                       "convert the model again",
                       f->path);
    if (f->version != 2 && f->version != 3) {
        if (swapped >= 1 && swapped <= 3)
            return err_set(r->e,
                           "%s: big-endian GGUF file (version %u byte-swapped); only "
                           "little-endian files are supported",
                           f->path, swapped);
        return err_set(r->e, "%s: unsupported GGUF version %u (expected 2 or 3)", f->path,
                       f->version);
    }
    if (rd_u64(r, &f->n_tensors, "the tensor count") < 0 ||
        rd_u64(r, &f->n_kv, "the metadata count") < 0)
        return -1;
    return 0;
}

static int read_kvs(struct gguf_file *f, struct reader *r) {
    if (f->n_kv > rd_left(r) / GGUF_MIN_KV_SIZE)
        return err_set(r->e, "%s: metadata count %llu cannot fit in the %zu bytes after the header",
                       f->path, (unsigned long long)f->n_kv, rd_left(r));
    f->kv = calloc((size_t)(f->n_kv ? f->n_kv : 1), sizeof *f->kv);
    if (!f->kv)
        return err_set(r->e, "%s: out of memory for %llu metadata entries", f->path,
                       (unsigned long long)f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (rd_kv(r, i, &f->kv[i]) < 0)
            return -1;
    return index_kvs(f, r->e);
}

/* general.alignment must be set before tensor offsets are checked. */
static int read_alignment(struct gguf_file *f, struct adakv_err *e) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (!gguf_find(f, "general.alignment"))
        return 0;
    uint32_t a = 0;
    if (gguf_get_u32(f, "general.alignment", &a, e) < 0)
        return -1;
    if (a == 0 || (a & (a - 1)) != 0)
        return err_set(e, "%s: general.alignment is %u, not a non-zero power of two", f->path, a);
    f->alignment = a;
    return 0;
}

static int read_tensors(struct gguf_file *f, struct reader *r, unsigned flags) {
    if (f->n_tensors > rd_left(r) / GGUF_MIN_TENSOR_SIZE)
        return err_set(r->e, "%s: tensor count %llu cannot fit in the %zu bytes after the metadata",
                       f->path, (unsigned long long)f->n_tensors, rd_left(r));
    f->tensors = calloc((size_t)(f->n_tensors ? f->n_tensors : 1), sizeof *f->tensors);
    if (!f->tensors)
        return err_set(r->e, "%s: out of memory for %llu tensor infos", f->path,
                       (unsigned long long)f->n_tensors);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (rd_tensor_info(r, i, &f->tensors[i]) < 0 ||
            check_tensor(f, &f->tensors[i], flags, r->e) < 0)
            return -1;
    /* pos <= size < 2^63 and alignment <= 2^31, so this cannot overflow */
    f->data_offset = ((uint64_t)r->pos + f->alignment - 1) / f->alignment * f->alignment;
    if (f->n_tensors > 0 && f->data_offset > f->size)
        return err_set(r->e,
                       "%s: truncated file: the data section would start at %llu, past the "
                       "end of the file (%zu bytes)",
                       f->path, (unsigned long long)f->data_offset, f->size);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (place_tensor(f, &f->tensors[i], r->e) < 0)
            return -1;
    return index_tensors(f, r->e);
}

static struct gguf_file *file_new(const char *path, struct adakv_err *e) {
    struct gguf_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        err_set(e, "%s: out of memory", path);
        return NULL;
    }
    return f;
}

static struct gguf_file *parse(struct gguf_file *f, unsigned flags, struct adakv_err *e) {
    struct reader r = {.path = f->path, .base = f->map, .size = f->size, .e = e};
    if (read_header(f, &r) < 0 || read_kvs(f, &r) < 0 || read_alignment(f, e) < 0 ||
        read_tensors(f, &r, flags) < 0) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

struct gguf_file *gguf_open_flags(const char *path, unsigned flags, struct adakv_err *e) {
    struct gguf_file *f = file_new(path, e);
    if (!f)
        return NULL;
    if (map_file(f, e) < 0) {
        gguf_close(f);
        return NULL;
    }
    return parse(f, flags, e);
}

struct gguf_file *gguf_open_memory(const void *data, size_t size, const char *name, unsigned flags,
                                   struct adakv_err *e) {
    struct gguf_file *f = file_new(name, e);
    if (!f)
        return NULL;
    if (size == 0) {
        err_set(e, "%s: empty file, not a GGUF file", name);
        gguf_close(f);
        return NULL;
    }
    f->map = data;
    f->size = size;
    return parse(f, flags, e);
}

struct gguf_file *gguf_open(const char *path, struct adakv_err *e) {
    return gguf_open_flags(path, 0, e);
}

void gguf_release_pages(const struct gguf_file *f, const void *p, size_t n) {
    const uintptr_t lo = (uintptr_t)f->map, a = (uintptr_t)p;
    if (!f->mapped || a < lo || n > f->size || a - lo > f->size - n)
        return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t first = (a + page - 1) / page * page, last = (a + n) / page * page;
    if (first < last) /* advice only: if refused, the pages merely stay resident */
        (void)madvise((void *)first, last - first, MADV_DONTNEED);
}

void gguf_close(struct gguf_file *f) {
    if (!f)
        return;
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++)
            free((void *)f->kv[i].arr_strs);
    free(f->kv);
    free(f->tensors);
    free(f->kv_by_key);
    free(f->tensor_by_name);
    if (f->mapped)
        munmap((void *)f->map, f->size);
    free(f->path);
    free(f);
}
