/* Compaction: the last step of a press (scores -> budgets -> compaction). Packs the kept rows
 * of one segment to its front, in place and stable, then cuts its capacity to kept + reserve so
 * decode appends into the reserve without copying (architecture.md 2). */
#ifndef ADAKV_KV_COMPACT_H
#define ADAKV_KV_COMPACT_H

#include <stdint.h>

#include "error.h"
#include "kv-cache.h"

/* Keeps rows keep[0..n_keep) of `s` (strictly ascending, each in [0, s->len)): K and V rows,
 * their int8 scales and their original positions move forward in order; s->len = n_keep.
 * Then every array is realloc'ed to n_keep + reserve rows (segments are malloc'ed by
 * kv-cache.c; a shrink that realloc refuses keeps the larger block, which is harmless).
 * -1 with e set when keep is not strictly ascending or out of range (s untouched), or when
 * growing to the reserve runs out of memory (rows already packed, len and cap consistent). */
int kv_segment_compact(struct kv_segment *s, enum kv_type type, int head_dim, const int32_t *keep,
                       int n_keep, int reserve, struct adakv_err *e);

/* The packing half of kv_segment_compact: rows keep[0..n_keep) move to the front in order and
 * s->len = n_keep, but the capacity stays, so the freed rows become reserve (decode-time
 * eviction: the cap is fixed and decode keeps appending without allocating). Same checks; on
 * error s is untouched. */
int kv_segment_pack(struct kv_segment *s, enum kv_type type, int head_dim, const int32_t *keep,
                    int n_keep, struct adakv_err *e);

#endif
