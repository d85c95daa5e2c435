/* The KV cache: one variable-length segment per (layer, KV head).
 *
 * Keys are stored after RoPE, so a kept key keeps its original phase and eviction never has to
 * re-rotate. The default storage is int8 with one f32 scale per row (symmetric, scale =
 * max|x|/127); f16 and f32 stay selectable for comparison. int8 keys are first rotated by a
 * Walsh-Hadamard transform (key-rotation.h), and every reader rotates its queries the same way
 * (kv_cache_rotate_queries), so q.k and key norms are unchanged. Each segment has its own `len`
 * and `cap`, so Ada-KV can give heads different budgets, compaction can pack a head's
 * kept rows in place, and decode appends into the reserve left after compaction without copying.
 *
 * Data flow: forward pass -> kv_cache_append (this file) -> kv-score -> kv-budget ->
 * kv_segment_compact -> decode attention reads each head's own `len` rows. */
#ifndef ADAKV_KV_CACHE_H
#define ADAKV_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ops.h"

enum kv_type { KV_TYPE_INT8 = 0, KV_TYPE_F16, KV_TYPE_F32 };

enum { KV_HEAD_DIM_MAX = 4096 };

struct kv_segment {
    int32_t len;    /* live rows */
    int32_t cap;    /* allocated rows */
    void *k;        /* [cap][head_dim] of the cache type */
    void *v;        /* [cap][head_dim] */
    float *k_scale; /* [cap] (int8 only, else NULL) */
    float *v_scale; /* [cap] (int8 only, else NULL) */
    int32_t *pos;   /* [cap] original token position of each row */
    /* Leading rows known to equal those of every other cache of the same epoch (below): a
     * batch of forks attends over them once for all (attention.c). Appends leave it; any other
     * change of the rows lowers it (truncate) or clears it. */
    int32_t shared;
};

struct kv_cache {
    enum kv_type type;
    int n_layer;
    int n_head_kv;
    int head_dim;
    int k_rot; /* key rotation block (key-rotation.h): int8 only, 0 = keys stored as given */
    struct kv_segment *seg; /* [n_layer * n_head_kv], layer-major */
    /* 0: the rows are this cache's own. Otherwise the caches of one epoch, a document's cache
     * and the forks copied from it (kv_cache_share), hold the same first `shared` rows of each
     * segment. */
    uint64_t epoch;
};

static inline struct kv_segment *kv_cache_seg(const struct kv_cache *c, int layer, int head) {
    return &c->seg[(size_t)layer * c->n_head_kv + head];
}

/* How many of rows [0, len) have a position below p: positions are non-decreasing in a segment
 * (appends are in order and compaction is stable), so a binary search. */
static inline int32_t kv_rows_below(const int32_t *pos, int32_t len, int32_t p) {
    int32_t lo = 0, hi = len;
    while (lo < hi) {
        const int32_t mid = lo + (hi - lo) / 2;
        if (pos[mid] < p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Bytes of one stored row (values only, plus its scale for int8). */
size_t kv_row_bytes(enum kv_type t, int head_dim);

/* Sets up an empty cache: the segment table is allocated, every segment has len = cap = 0 and
 * gets its rows on first append (so a layer's memory exists only once that layer has run). An
 * int8 cache rotates its keys (k_rot set).
 * -1 with e set on bad dimensions or out of memory. */
int kv_cache_init(struct kv_cache *c, enum kv_type type, int n_layer, int n_head_kv, int head_dim,
                  struct adakv_err *e);
/* Frees every segment (malloc'ed arrays, which kv-compact.c may have realloc'ed) and the table. */
void kv_cache_free(struct kv_cache *c);
/* Sets every segment's len to 0 and keeps its memory for reuse. */
void kv_cache_clear(struct kv_cache *c);

/* Drops every row at position >= pos (rows stay in position order through appends and
 * compaction, so this only shortens each segment). Memory is kept for reuse. */
void kv_cache_truncate(struct kv_cache *c, int32_t pos);

/* Grows one segment to hold at least `rows` rows (realloc, live rows kept); never shrinks. */
int kv_segment_reserve(struct kv_segment *s, enum kv_type type, int head_dim, int32_t rows,
                       struct adakv_err *e);

/* Appends n rows to segment (layer, head): row r takes k + r * stride and v + r * stride
 * (head_dim f32 values each, K after RoPE), stored in the cache type (int8 rows through
 * `quant`, one scale per row for K and one for V), with position pos0 + r. Capacity grows
 * geometrically when the reserve is used up, so decode appends rarely allocate. -1 with e set
 * when memory runs out (the segment is unchanged). */
int kv_cache_append(struct kv_cache *c, int layer, int head, const float *k, const float *v,
                    size_t stride, int n, int32_t pos0, op_quant_row_i8_fn quant,
                    struct adakv_err *e);

/* Drops the rows of s at positions < pos, but only once there are at least min_drop of them
 * (rows are in position order, so they are the front): the others move to the front, the
 * capacity stays. A sliding-window layer calls this before each append, so its rows stay
 * bounded at a memmove of at most len rows every min_drop appends. Returns the rows dropped. */
int32_t kv_segment_drop_before(struct kv_segment *s, enum kv_type type, int head_dim, int32_t pos,
                               int32_t min_drop);

/* Rotates the n query rows (n_head * head_dim values each, `stride` floats apart) into the
 * space of the stored keys, which every q.k over them expects. No-op unless the keys rotate. */
void kv_cache_rotate_queries(const struct kv_cache *c, float *q, int n_head, size_t stride, int n);

/* Replaces dst's live rows (values, int8 scales, positions) with src's; the two caches must
 * have the same type and shape. -1 with e set when memory runs
 * out. */
int kv_cache_copy(struct kv_cache *dst, const struct kv_cache *src, struct adakv_err *e);

/* After kv_cache_copy(dst, src): marks dst and src as holding the same rows, so that a batch
 * of them may read their common rows once. src keeps its epoch while it has only appended rows
 * since it got it; otherwise (or without one) it starts a new epoch, since rows it changed may
 * differ from those of its earlier copies. */
void kv_cache_share(struct kv_cache *dst, struct kv_cache *src);

/* Bytes allocated for K and V rows (with their int8 scales) over all segments, by capacity. */
size_t kv_cache_bytes(const struct kv_cache *c);
/* Rows currently live over all segments of one layer. */
size_t kv_cache_layer_rows(const struct kv_cache *c, int layer);

#endif
