/* The KV cache: one variable-length segment per (layer, KV head).
 *
 * Keys are stored after RoPE, so a kept key keeps its original phase and eviction never has to
 * re-rotate. The default storage is int8 with one f32 scale per row (symmetric, scale =
 * max|x|/127); f16 and f32 stay selectable for comparison. Each segment has its own `len` and
 * `cap`, so Ada-KV can give heads different budgets, compaction can pack a head's kept rows in
 * place, and decode appends into the reserve left after compaction without copying.
 *
 * Data flow: forward pass -> kv_cache_append (this file) -> kv-score -> kv-budget ->
 * kv_segment_compact -> decode attention reads each head's own `len` rows. */
#ifndef ADAKV_KV_CACHE_H
#define ADAKV_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum kv_type { KV_TYPE_INT8 = 0, KV_TYPE_F16, KV_TYPE_F32 };

struct kv_segment {
    int32_t len; /* live rows */
    int32_t cap; /* allocated rows */
    void *k;     /* [cap][head_dim] of the cache type */
    void *v;     /* [cap][head_dim] */
    float *k_scale; /* [cap] (int8 only, else NULL) */
    float *v_scale; /* [cap] (int8 only, else NULL) */
    int32_t *pos;   /* [cap] original token position of each row */
};

struct kv_cache {
    enum kv_type type;
    int n_layer;
    int n_head_kv;
    int head_dim;
    struct kv_segment *seg; /* [n_layer * n_head_kv], layer-major */
};

static inline struct kv_segment *kv_cache_seg(const struct kv_cache *c, int layer, int head) {
    return &c->seg[(size_t)layer * c->n_head_kv + head];
}

/* Bytes of one stored row (values only, plus its scale for int8). */
size_t kv_row_bytes(enum kv_type t, int head_dim);

#endif
