/* The head-to-thread map for decode attention (architecture.md section 3).
 *
 * Decode attention is split by KV head; after Ada-KV the heads have very different lengths, so
 * a round-robin split leaves threads idle. A KV head's weight is its length summed over layers;
 * heads go longest first onto the least loaded thread (LPT, within 4/3 of the optimum), and a
 * thread serves the same heads in every layer, so one thread owns all of a head's memory and
 * that memory can live on the thread's NUMA node. The map is rebuilt after each compression and
 * kept for the decode that follows. Any map is correct (each head served exactly once); only the
 * balance depends on the lengths. */
#ifndef ADAKV_HEAD_MAP_H
#define ADAKV_HEAD_MAP_H

#include <stdint.h>

#include "adakv.h"
#include "kv-cache.h"
#include "threads.h"

struct head_map {
    int n_threads;
    int n_head_kv;
    int *owner;    /* [n_head_kv] thread serving KV head g in every layer */
    int *order;    /* [n_head_kv] heads grouped by owner, each group longest first */
    int *start;    /* [n_threads + 1] thread t serves order[start[t] .. start[t + 1]) */
    int64_t *load; /* [n_threads] summed rows of the heads each thread serves */
};

/* Longest processing time first: items sorted by weight (descending, ties by lower index), each
 * onto the bin with the least load so far (ties by lower bin). owner[n], load[n_bins]. */
void head_map_lpt(const int64_t *weight, int n, int n_bins, int *owner, int64_t *load);

/* Allocates a map of n_head_kv heads over n_threads threads with every head's weight 0 (so
 * heads go round-robin). -1 with e set on bad sizes or out of memory. */
int head_map_init(struct head_map *m, int n_head_kv, int n_threads, struct adakv_err *e);
void head_map_free(struct head_map *m);

/* Rebuilds the map from the cache's current segment lengths (summed over layers). */
void head_map_build(struct head_map *m, const struct kv_cache *kv);

/* Moves the pages of every segment of the cache (K, V, scales, positions; the reserve rows
 * included, touched first) to the real NUMA node of the thread that serves its head
 * (plan->mem_node), with move_pages(2). Nothing to do when libnuma is unavailable or the plan
 * does not know its nodes. Returns the number of pages on the wanted node afterwards, or -1 with
 * e set when the kernel refuses. */
long head_map_place(const struct head_map *m, const struct threads_plan *plan, struct kv_cache *kv,
                    struct adakv_err *e);

/* Real NUMA node of the page holding addr (get_mempolicy), or -1 when it cannot be told. */
int head_map_node_of(const void *addr);

#endif
