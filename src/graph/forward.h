/* The forward pass of a decoder-only transformer (llama family) over a context's int8/f16/f32
 * KV cache, and the context that holds its state.
 *
 * Shape of one eval of n tokens (architecture.md section 1):
 *   embed all n tokens;
 *   for each layer (LAYER-MAJOR: the layer runs over every token before the next layer starts),
 *     in row chunks of at most FORWARD_CHUNK tokens:
 *       rmsnorm -> Q,K,V matmuls (+ biases, + per-head Q/K norms) -> RoPE on Q and K with the
 *       layer's base -> append K (post-RoPE), V to the layer's cache (a sliding-window layer
 *       first drops rows no query can see any more) -> attention of the chunk's queries over
 *       the cache (causal by stored position, and within the window on sliding layers; online
 *       softmax over key tiles, GQA without repeating K/V) -> O matmul (-> post-norm) ->
 *       residual -> rmsnorm -> SwiGLU or GEGLU MLP (-> post-norm) -> residual;
 *     keep the last `window` post-RoPE query rows of the layer;
 *     COMPRESSION POINT: if the context's KV policy (kv-policy.h) has an after_layer step and
 *     n > 1, call it with the layer's cache and query window, so a press can evict before the
 *     next layer runs (peak KV memory = one layer's full cache + the compressed others);
 *   END OF THE BATCH: if the policy has an after_batch step and n > 1, call it (a selection over
 *     every layer at once evicts here: until then every layer holds the whole batch);
 *   final rmsnorm and the output head for the rows whose logits are wanted.
 * CHUNKED PREFILL: a policy may ask (prefill_begin) for a long batch to run as consecutive
 * pieces of N tokens, each one eval of the shape above, so each piece's compression points evict
 * before the next piece is appended: the cache peaks at the budget plus one piece in one layer,
 * whatever the batch's length (the price: later pieces attend over the compressed cache).
 * Positions always continue from the number of tokens evaluated so far (n_past), never from a
 * head's (possibly compressed) length.
 *
 * All scratch is allocated by adakv_ctx_new for n_ctx tokens; eval never allocates except when
 * a KV segment's reserve is used up (geometric growth, kv-cache.c). */
#ifndef ADAKV_FORWARD_H
#define ADAKV_FORWARD_H

#include <stdbool.h>
#include <string.h>

#include "adakv-ext.h"
#include "head-map.h"
#include "kv-cache.h"
#include "kv-policy.h"
#include "kv-rec-pieces.h"
#include "model.h"
#include "ops.h"

#define FORWARD_CHUNK          512 /* rows per matmul call in prefill */
#define FORWARD_WINDOW_DEFAULT 32  /* query rows kept per layer for scoring */
#define FORWARD_ATTN_QTILE     16  /* query tokens per attention work item */
#define FORWARD_ATTN_KTILE     128 /* keys per online-softmax step */
/* Keys per online-softmax step when one token attends (decode): its G query rows leave room in
 * the scratch sized for QTILE tokens, and longer steps pay the per-step work (query rounding,
 * maxima, rescaling, one exp call) over more keys. */
#define FORWARD_ATTN_KTILE_DECODE 1024
/* Distinct RoPE settings (base, position scale) across a model's layers: gemma3 has two. */
#define FORWARD_MAX_ROPE 4

struct forward_rope {
    float base, freq_scale;
};

struct adakv_ctx {
    struct adakv_model *model;      /* not owned */
    struct adakv_ctx_params params; /* as created (adakv_ctx_fork makes another one alike) */
    int n_ctx;
    int n_threads;           /* resolved (>= 1) */
    bool reference;          /* scalar ops + matmul_ref */
    int window;              /* query rows kept per layer */
    struct kv_policy policy; /* owned (its free); set by kv_policy_install */
    void (*progress)(void *user, int layers_done, int n_layer);
    void *progress_user;
    /* a chunked prefill's layers done before this piece, and of all its pieces (0: one batch,
     * n_layer), so progress runs once from 0 to 100% */
    int progress_done, progress_total;
    const volatile sig_atomic_t *interrupt; /* adakv_ctx_params.interrupt */
    /* decode-time eviction (--kv-max) re-scores with the most recent queries: a ring of the
     * last recent_cap query rows of every layer, recorded only when a press asks for it */
    float *q_recent; /* [n_layer][recent_cap][n_head * head_dim], or NULL */
    int recent_cap;
    long recent_total;          /* tokens recorded since the last reset or rewind */
    double press_s;             /* seconds inside policy.after_layer since the last reset */
    const struct simd_ops *ops; /* kernel table in use */
    struct kv_cache kv;
    int n_past;  /* positions consumed so far */
    bool broken; /* a failed eval left the cache half-written: reset first */

    /* scratch, sized at creation; shapes in tokens x values. A context and its forks share one
     * set (scratch_refs of them hold it): each eval rewrites what it reads, and the family runs
     * one eval at a time */
    int *scratch_refs;
    int chunk;        /* min(n_ctx, FORWARD_CHUNK) */
    float *x;         /* [n_ctx][n_embd] residual stream of the batch */
    float *xn;        /* [chunk][n_embd] normed rows */
    float *q;         /* [chunk][n_head * head_dim] */
    float *k, *v;     /* [chunk][n_head_kv * head_dim] */
    float *att;       /* [chunk][n_head * head_dim] attention output */
    float *gate, *up; /* [chunk][n_ff] */
    float *proj;      /* [chunk][n_embd] O / down projection output */
    void *cascade;    /* [attention_cascade_bytes] a batch's reads of rows its forks share */
    float *rope_cs;   /* [n_rope][n_ctx][n_rot] cos then sin per token of the batch */
    int n_rope;       /* distinct RoPE settings of the layers, found at creation */
    struct forward_rope rope[FORWARD_MAX_ROPE];
    float *q_window;     /* [window][n_head * head_dim] last query rows of a layer */
    float *lse_window;   /* [window][n_head] their log-sum-exps in that layer's attention */
    void *ws;            /* matmul workspace */
    float *attn_scratch; /* [n_threads][attn_scratch_floats] */
    size_t attn_scratch_floats;
    /* KVzip's reconstruction in pieces: what each copy query sees (kv_policy_set_rec_pieces;
     * piece 0 outside adakv_ctx_prefill_kvzip) */
    struct kv_rec_pieces rec_pieces;

    /* where the threads run, and which thread serves each KV head in decode (threads.h,
     * head-map.h); pinned at the first eval, map rebuilt after each prefill */
    struct threads_plan plan;
    struct head_map heads;
    char placement[256]; /* adakv_ctx_placement */
};

/* Rebuilds the decode head-to-thread map from the current KV lengths and moves each head's
 * pages to its thread's node (after a compression; cheap when nothing moved). */
void forward_heads_changed(struct adakv_ctx *c);

#endif
