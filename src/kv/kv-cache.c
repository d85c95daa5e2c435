/* KV cache storage (kv-cache.h): one malloc'ed set of arrays per (layer, KV head) segment.
 * Plain malloc/realloc, because compaction (kv-compact.c) shrinks the same blocks in place. */
#include "kv-cache.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "key-rotation.h"
#include "quant.h"

static size_t elem_bytes(enum kv_type t) {
    return t == KV_TYPE_INT8 ? 1 : t == KV_TYPE_F16 ? 2 : 4;
}

size_t kv_row_bytes(enum kv_type t, int head_dim) {
    return elem_bytes(t) * (size_t)head_dim + (t == KV_TYPE_INT8 ? sizeof(float) : 0);
}

int kv_cache_init(struct kv_cache *c, enum kv_type type, int n_layer, int n_head_kv, int head_dim,
                  struct adakv_err *e) {
    memset(c, 0, sizeof *c);
    if (type != KV_TYPE_INT8 && type != KV_TYPE_F16 && type != KV_TYPE_F32)
        return err_set(e, "kv cache: unknown storage type %d", (int)type);
    if (n_layer <= 0 || n_head_kv <= 0 || head_dim <= 0 || head_dim > KV_HEAD_DIM_MAX)
        return err_set(e, "kv cache: bad shape (%d layers, %d KV heads, head_dim %d)", n_layer,
                       n_head_kv, head_dim);
    c->seg = calloc((size_t)n_layer * n_head_kv, sizeof *c->seg);
    if (!c->seg)
        return err_set(e, "kv cache: out of memory for %d x %d segments", n_layer, n_head_kv);
    c->type = type;
    c->n_layer = n_layer;
    c->n_head_kv = n_head_kv;
    c->head_dim = head_dim;
    c->k_rot = type == KV_TYPE_INT8 ? key_rotation_block(head_dim) : 0;
    return 0;
}

void kv_cache_free(struct kv_cache *c) {
    if (!c->seg)
        return;
    for (size_t i = 0; i < (size_t)c->n_layer * c->n_head_kv; i++) {
        struct kv_segment *s = &c->seg[i];
        free(s->k), free(s->v), free(s->k_scale), free(s->v_scale), free(s->pos);
    }
    free(c->seg);
    c->seg = NULL;
}

void kv_cache_clear(struct kv_cache *c) {
    for (size_t i = 0; i < (size_t)c->n_layer * c->n_head_kv; i++)
        c->seg[i].len = c->seg[i].shared = 0;
    c->epoch = 0;
}

void kv_cache_truncate(struct kv_cache *c, int32_t pos) {
    for (size_t i = 0; i < (size_t)c->n_layer * c->n_head_kv; i++) {
        struct kv_segment *s = &c->seg[i];
        while (s->len > 0 && s->pos[s->len - 1] >= pos) /* rows are in position order */
            s->len--;
        s->shared = s->shared < s->len ? s->shared : s->len;
    }
}

/* realloc of one array; on failure the old block stays valid and is still owned by s. */
static int grow(void **p, size_t bytes) {
    void *q = realloc(*p, bytes);
    if (!q)
        return -1;
    *p = q;
    return 0;
}

int kv_segment_reserve(struct kv_segment *s, enum kv_type type, int head_dim, int32_t rows,
                       struct adakv_err *e) {
    if (rows <= s->cap)
        return 0;
    const size_t row = elem_bytes(type) * (size_t)head_dim, n = (size_t)rows;
    /* Each array is grown separately; cap only moves once all of them have the room, so a
     * failure midway leaves a consistent (if partly larger) segment. */
    if (grow(&s->k, n * row) || grow(&s->v, n * row) ||
        grow((void **)&s->pos, n * sizeof *s->pos) ||
        (type == KV_TYPE_INT8 && (grow((void **)&s->k_scale, n * sizeof(float)) ||
                                  grow((void **)&s->v_scale, n * sizeof(float)))))
        return err_set(e, "kv cache: out of memory growing a segment to %d rows", (int)rows);
    s->cap = rows;
    return 0;
}

static void store_row(enum kv_type type, void *base, float *scale, int32_t row, int d,
                      const float *x, op_quant_row_i8_fn quant) {
    switch (type) {
    case KV_TYPE_INT8:
        quant((int8_t *)base + (size_t)row * d, &scale[row], x, d);
        break;
    case KV_TYPE_F16: {
        uint16_t *h = (uint16_t *)base + (size_t)row * d;
        /* round to nearest even, as vcvtps2ph does (quant.h; not _Float16, which clang 14 lacks
         * on x86) */
        for (int i = 0; i < d; i++)
            h[i] = quant_f32_to_f16(x[i]);
        break;
    }
    case KV_TYPE_F32:
        memcpy((float *)base + (size_t)row * d, x, (size_t)d * sizeof *x);
        break;
    }
}

int kv_cache_append(struct kv_cache *c, int layer, int head, const float *k, const float *v,
                    size_t stride, int n, int32_t pos0, op_quant_row_i8_fn quant,
                    struct adakv_err *e) {
    struct kv_segment *s = kv_cache_seg(c, layer, head);
    const int64_t need = (int64_t)s->len + n;
    if (need > INT32_MAX)
        return err_set(e, "kv cache: segment of layer %d head %d would exceed 2^31 rows", layer,
                       head);
    if (need > s->cap) {
        /* 1.5x growth (at least 16 rows) keeps decode appends amortised O(1) in allocations. */
        int64_t cap = (int64_t)s->cap + s->cap / 2;
        cap = cap < need ? need : cap;
        cap = cap < 16 ? 16 : cap;
        cap = cap > INT32_MAX ? INT32_MAX : cap;
        if (kv_segment_reserve(s, c->type, c->head_dim, (int32_t)cap, e))
            return -1;
    }
    for (int r = 0; r < n; r++) {
        const int32_t row = s->len + r;
        const float *kr = k + r * stride;
        float rotated[KV_HEAD_DIM_MAX];
        if (c->k_rot) {
            memcpy(rotated, kr, (size_t)c->head_dim * sizeof *kr);
            key_rotate(rotated, c->head_dim, c->k_rot);
            kr = rotated;
        }
        store_row(c->type, s->k, s->k_scale, row, c->head_dim, kr, quant);
        store_row(c->type, s->v, s->v_scale, row, c->head_dim, v + r * stride, quant);
        s->pos[row] = pos0 + r;
    }
    s->len = (int32_t)need;
    return 0;
}

int32_t kv_segment_drop_before(struct kv_segment *s, enum kv_type type, int head_dim, int32_t pos,
                               int32_t min_drop) {
    int32_t n = 0;
    while (n < s->len && s->pos[n] < pos)
        n++;
    if (n == 0 || n < min_drop)
        return 0;
    const int32_t keep = s->len - n;
    const size_t row = elem_bytes(type) * (size_t)head_dim;
    memmove(s->k, (char *)s->k + (size_t)n * row, (size_t)keep * row);
    memmove(s->v, (char *)s->v + (size_t)n * row, (size_t)keep * row);
    memmove(s->pos, s->pos + n, (size_t)keep * sizeof *s->pos);
    if (type == KV_TYPE_INT8) {
        memmove(s->k_scale, s->k_scale + n, (size_t)keep * sizeof *s->k_scale);
        memmove(s->v_scale, s->v_scale + n, (size_t)keep * sizeof *s->v_scale);
    }
    s->len = keep;
    s->shared = 0; /* rows moved */
    return n;
}

void kv_cache_rotate_queries(const struct kv_cache *c, float *q, int n_head, size_t stride, int n) {
    if (!c->k_rot)
        return;
    for (int r = 0; r < n; r++)
        for (int h = 0; h < n_head; h++)
            key_rotate(q + r * stride + (size_t)h * c->head_dim, c->head_dim, c->k_rot);
}

int kv_cache_copy(struct kv_cache *dst, const struct kv_cache *src, struct adakv_err *e) {
    const size_t row =
        kv_row_bytes(src->type, src->head_dim) - (src->type == KV_TYPE_INT8 ? sizeof(float) : 0);
    dst->epoch = 0;
    for (size_t i = 0; i < (size_t)src->n_layer * src->n_head_kv; i++) {
        const struct kv_segment *s = &src->seg[i];
        struct kv_segment *d = &dst->seg[i];
        if (kv_segment_reserve(d, dst->type, dst->head_dim, s->len, e))
            return -1;
        d->len = s->len;
        d->shared = 0; /* dst's rows are its own until kv_cache_share says otherwise */
        if (s->len == 0)
            continue;
        memcpy(d->k, s->k, (size_t)s->len * row);
        memcpy(d->v, s->v, (size_t)s->len * row);
        memcpy(d->pos, s->pos, (size_t)s->len * sizeof *s->pos);
        if (src->type == KV_TYPE_INT8) {
            memcpy(d->k_scale, s->k_scale, (size_t)s->len * sizeof *s->k_scale);
            memcpy(d->v_scale, s->v_scale, (size_t)s->len * sizeof *s->v_scale);
        }
    }
    return 0;
}

void kv_cache_share(struct kv_cache *dst, struct kv_cache *src) {
    static _Atomic uint64_t next_epoch = 1;
    const size_t n = (size_t)src->n_layer * src->n_head_kv;
    bool grown = false;
    for (size_t i = 0; i < n; i++)
        grown = grown || src->seg[i].shared != src->seg[i].len;
    if (!src->epoch || grown) {
        src->epoch = next_epoch++;
        for (size_t i = 0; i < n; i++)
            src->seg[i].shared = src->seg[i].len;
    }
    dst->epoch = src->epoch;
    for (size_t i = 0; i < n; i++)
        dst->seg[i].shared = dst->seg[i].len;
}

size_t kv_cache_bytes(const struct kv_cache *c) {
    size_t rows = 0;
    for (size_t i = 0; i < (size_t)c->n_layer * c->n_head_kv; i++)
        rows += (size_t)c->seg[i].cap;
    return 2 * rows * kv_row_bytes(c->type, c->head_dim);
}

size_t kv_cache_layer_rows(const struct kv_cache *c, int layer) {
    size_t rows = 0;
    for (int h = 0; h < c->n_head_kv; h++)
        rows += (size_t)kv_cache_seg(c, layer, h)->len;
    return rows;
}
