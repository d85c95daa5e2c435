/* In-place stable compaction of one KV segment (kv-compact.h). */
#include "kv-compact.h"

#include <stdlib.h>
#include <string.h>

static size_t elem_bytes(enum kv_type type) {
    return type == KV_TYPE_INT8 ? 1 : type == KV_TYPE_F16 ? 2 : 4;
}

/* keep[i] >= i for a strictly ascending list, so moving rows front to back never overwrites a
 * row that is still to be read. */
static void pack(void *base, size_t row, const int32_t *keep, int n_keep) {
    char *b = base;
    for (int i = 0; i < n_keep; i++)
        if (keep[i] != i)
            memcpy(b + (size_t)i * row, b + (size_t)keep[i] * row, row);
}

/* realloc that keeps the old block when a shrink is refused; NULL only if a growth failed. */
static void *resize(void *p, size_t bytes, size_t old_bytes) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (q)
        return q;
    return bytes <= old_bytes ? p : NULL;
}

int kv_segment_pack(struct kv_segment *s, enum kv_type type, int head_dim, const int32_t *keep,
                    int n_keep, struct adakv_err *e) {
    if (n_keep < 0 || n_keep > s->len)
        return err_set(e, "kv-compact: keeping %d of %d rows", n_keep, s->len);
    for (int i = 0; i < n_keep; i++)
        if (keep[i] < 0 || keep[i] >= s->len || (i > 0 && keep[i] <= keep[i - 1]))
            return err_set(e, "kv-compact: kept row %d (index %d) is not ascending within [0, %d)",
                           keep[i], i, s->len);
    const size_t row = elem_bytes(type) * (size_t)head_dim;
    pack(s->k, row, keep, n_keep);
    pack(s->v, row, keep, n_keep);
    if (s->k_scale)
        pack(s->k_scale, sizeof *s->k_scale, keep, n_keep);
    if (s->v_scale)
        pack(s->v_scale, sizeof *s->v_scale, keep, n_keep);
    if (s->pos)
        pack(s->pos, sizeof *s->pos, keep, n_keep);
    s->len = n_keep;
    s->shared = 0; /* rows moved */
    return 0;
}

int kv_segment_compact(struct kv_segment *s, enum kv_type type, int head_dim, const int32_t *keep,
                       int n_keep, int reserve, struct adakv_err *e) {
    if (reserve < 0)
        return err_set(e, "kv-compact: reserve %d must be >= 0", reserve);
    if (kv_segment_pack(s, type, head_dim, keep, n_keep, e) < 0)
        return -1;
    const size_t row = elem_bytes(type) * (size_t)head_dim;
    const size_t cap = (size_t)n_keep + (size_t)reserve, old = (size_t)s->cap;
    if (cap == old)
        return 0;
    void *k = resize(s->k, cap * row, old * row);
    if (k)
        s->k = k;
    void *v = resize(s->v, cap * row, old * row);
    if (v)
        s->v = v;
    void *ks = s->k_scale ? resize(s->k_scale, cap * sizeof(float), old * sizeof(float)) : NULL;
    if (ks)
        s->k_scale = ks;
    void *vs = s->v_scale ? resize(s->v_scale, cap * sizeof(float), old * sizeof(float)) : NULL;
    if (vs)
        s->v_scale = vs;
    void *pos = s->pos ? resize(s->pos, cap * sizeof(int32_t), old * sizeof(int32_t)) : NULL;
    if (pos)
        s->pos = pos;
    if (!k || !v || (s->k_scale && !ks) || (s->v_scale && !vs) || (s->pos && !pos))
        return err_set(e, "kv-compact: out of memory growing a segment to %zu rows", cap);
    s->cap = (int32_t)cap;
    return 0;
}
