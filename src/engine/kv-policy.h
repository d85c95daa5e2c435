/* The KV policy: the one interface between a context's forward pass and eviction (issue 15).
 *
 * A context (forward.h) holds one policy and calls its steps: after each layer of a prompt batch,
 * after the whole batch, after each decode token, around a prompt batch, when forked, when
 * freed. The policy (a press, bound by press-ctx.c; or a tool's own hook,
 * adakv_ctx_set_compress) sees the cache and the query rows the context records for it, and
 * never calls back into an eval.
 *
 * Why a header of its own, in engine/: the context (engine/) owns the policy and calls it, and
 * kv-policy.c is the context's side of the contract (install one, keep the query rows it reads).
 * This header needs only the cache (kv-cache.h) and the public API, so the press code includes it
 * without the forward pass (forward.h), and the forward pass includes no press header. */
#ifndef ADAKV_KV_POLICY_H
#define ADAKV_KV_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "adakv-ext.h"
#include "kv-cache.h"
#include "kv-rec-pieces.h"

struct simd_ops;

/* The recent query rows of every layer the context records for its policy (a ring). */
struct recent_queries {
    const float *ring; /* [n_layer][cap][qdim] */
    int cap;
    long total; /* rows recorded since the last reset or rewind; the newest in slot (total-1)%cap */
    size_t qdim;
};

/* Copies layer il's recorded rows, oldest first, into dst; returns how many. */
static inline int recent_queries_layer(const struct recent_queries *r, int il, float *dst) {
    const int n = r->total < r->cap ? (int)r->total : r->cap;
    for (int i = 0; i < n; i++) {
        const long slot = (r->total - n + i) % r->cap;
        memcpy(dst + (size_t)i * r->qdim, r->ring + ((size_t)il * r->cap + (size_t)slot) * r->qdim,
               r->qdim * sizeof *dst);
    }
    return n;
}

/* What a context asks of its KV policy. Any step may be NULL. */
struct kv_policy {
    void *self;
    /* at each compression point of a prefill (forward.h's shape of an eval) */
    adakv_compress_layer_fn after_layer;
    /* after the last layer of a prompt batch of n > 1 tokens (of each piece, in a chunked
     * prefill), before its logits: a policy that chose to select over every layer at once
     * (--budget global) evicts here, and the cache held every layer's whole batch until now */
    int (*after_batch)(void *self, struct kv_cache *kv, struct adakv_err *e);
    /* after each decode step, with the recorded recent queries; *evicted set when rows went (the
     * context then rebalances its threads over the heads) */
    int (*after_token)(void *self, struct kv_cache *kv, const struct recent_queries *recent,
                       bool *evicted, struct adakv_err *e);
    /* before a prompt batch of n > 1 tokens: how many tokens to prefill at a time so that the
     * cache is compressed after each piece and never holds the whole batch (0 = the batch at
     * once); when it returns > 0, prefill_end follows the batch, failed or not */
    int (*prefill_begin)(void *self, const struct kv_cache *kv, int n);
    void (*prefill_end)(void *self);
    /* binds a copy of itself to dst, a fork of the context it serves (NULL: cannot be copied
     * unless it owns nothing, free NULL too) */
    int (*fork)(void *self, struct adakv_ctx *dst, struct adakv_err *e);
    void (*free)(void *self);
};

/* Frees the context's policy and installs p (copied; NULL = none). */
void kv_policy_install(struct adakv_ctx *c, const struct kv_policy *p);

/* The policy installed on c (every step NULL when there is none). */
const struct kv_policy *kv_policy_of(const struct adakv_ctx *c);

/* What a policy may read of the context it serves. */
struct kv_policy_host {
    const struct adakv_model *model;
    const struct simd_ops *ops; /* the kernel table the context runs */
    int n_ctx;
    int window; /* query rows kept per layer (kv_policy_set_window, clamped to n_ctx) */
};
struct kv_policy_host kv_policy_host(const struct adakv_ctx *c);

/* Keeps the last `window` query rows of each layer from now on (clamped to n_ctx): the
 * q_window after_layer receives. */
int kv_policy_set_window(struct adakv_ctx *c, int window, struct adakv_err *e);

/* The log-sum-exps [window][n_head] of the q_window rows in the attention of the layer
 * after_layer is called for (valid until the window is set again). */
const float *kv_policy_window_lse(const struct adakv_ctx *c);

/* During a KVzip prefill, the copy's queries see only their piece of the context (NULL: every
 * query sees every row before it again). */
void kv_policy_set_rec_pieces(struct adakv_ctx *c, const struct kv_rec_pieces *rp);

/* Starts recording the last `cap` query rows of every layer (for decode-time eviction): the
 * recent_queries after_token receives. */
int kv_policy_record_recent(struct adakv_ctx *c, int cap, struct adakv_err *e);

#endif
