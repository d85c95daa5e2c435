/* The forward pass (forward.h): layer-major prefill / decode of one context's tokens and the
 * output head (RoPE angles: rope-angles.c). Attention is attention.c's, the context's life
 * context.c's. */
#include "forward.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "cpu.h"
#include "decode-pack.h"
#include "matmul.h"
#include "mem-plan.h"
#include "prefill-gemm.h"
#include "quant.h"
#include "rope-angles.h"
#include "tensor-type.h"

/* ==== small helpers ==== */

/* t as matmul's operand, with its decode repack when the model made one. */
static struct matmul_weight weight_of(const struct adakv_model *m, const struct gguf_tensor *t) {
    struct matmul_weight w = {
        .type = t->type,
        .n_in = (int64_t)t->ne[0],
        .n_out = (int64_t)t->ne[1],
        .data = t->data,
        .row_bytes = (size_t)tensor_type_row_size(t->type, t->ne[0]),
    };
    w.rp = decode_pack_find(m->dpack, t);
    w.amx = m->prefill_amx;
    return w;
}

/* y[i] = x W_i^T for the n_t weights W_i of the same row length (Q, K, V; gate, up; or one):
 * through oneDNN for prompt batches (x converted once for all), else the dispatched matmul (all
 * of them in one parallel region) or, for reference contexts, the plain double-accumulating one
 * (which may fail to allocate its row buffer). */
static int linear_multi(struct adakv_ctx *c, const struct gguf_tensor *const *t, int n_t, float *x,
                        int n, float *const *y, struct adakv_err *e) {
    struct matmul_weight w[MATMUL_MULTI_MAX];
    const struct matmul_weight *wp[MATMUL_MULTI_MAX];
    for (int i = 0; i < n_t; i++)
        w[i] = weight_of(c->model, t[i]), wp[i] = &w[i];
    if (c->reference) {
        for (int i = 0; i < n_t; i++)
            if (matmul_ref(&w[i], x, n, y[i], e))
                return -1;
        return 0;
    }
    if (c->model->gemm && n >= PREFILL_GEMM_MIN_ROWS) {
        const int rc =
            prefill_gemm_run(c->model->gemm, t, n_t, x, n, c->chunk, y, c->ws, c->n_threads, e);
        if (rc <= 0)
            return rc;
    }
    if (n_t == 1)
        matmul(&w[0], x, n, y[0], c->ws);
    else
        matmul_multi(wp, n_t, x, n, y, c->ws);
    return 0;
}

static int linear(struct adakv_ctx *c, const struct gguf_tensor *t, float *x, int n, float *y,
                  struct adakv_err *e) {
    return linear_multi(c, &t, 1, x, n, &y, e);
}

static const float *f32_data(const struct gguf_tensor *t) {
    return (const float *)t->data;
}

/* x[t][i] += b[i] for m rows of n values (a bias vector, F32 [n]). */
static void add_bias(float *x, int m, int n, const struct gguf_tensor *bias) {
    const float *b = f32_data(bias);
    for (int t = 0; t < m; t++)
        for (int i = 0; i < n; i++)
            x[(size_t)t * n + i] += b[i];
}

/* Index of layer il's RoPE setting in c->rope (the context found every distinct one). */
static int rope_set_of(const struct adakv_ctx *c, int il) {
    const struct layer_hparams *lh = &c->model->hp.layer[il];
    int s = 0;
    while (s < c->n_rope - 1 &&
           (c->rope[s].base != lh->rope_base || c->rope[s].freq_scale != lh->rope_freq_scale))
        s++;
    return s;
}

/* Prompt chunks spread their row-wise steps (norms, RoPE, residuals, the activation, the key
 * rotation of the queries) over the threads: done by the main thread alone they took ~4% of a
 * 4,096-token 1B prefill, while the other thread spun in the barrier (perf record at ed876d1).
 * Decode rows stay on the calling thread and outside any parallel construct: even an if(0)
 * region costs libgomp ~350 ns to set up its team of one, and six a layer are 180 a token of the
 * default model (~63 us of a ~2 ms step; without them single-sequence decode ran 490 against 441
 * t/s in alternating rounds). FOR_ROWS(th, m, t, body) runs body for t in [0, m) so. */
#define ROWS_PARALLEL_MIN 16
/* (kept by hand: clang-format would break the _Pragma line across the loop header) */
/* clang-format off */
#define FOR_ROWS(th, m, t, ...)                                                                    \
    do {                                                                                           \
        const int for_rows_threads = (th);                                                         \
        if ((m) >= ROWS_PARALLEL_MIN) {                                                            \
            _Pragma("omp parallel for schedule(static) num_threads(for_rows_threads)")             \
            for (int t = 0; t < (m); t++) {                                                        \
                __VA_ARGS__                                                                        \
            }                                                                                      \
        } else {                                                                                   \
            for (int t = 0; t < (m); t++) {                                                        \
                __VA_ARGS__                                                                        \
            }                                                                                      \
        }                                                                                          \
    } while (0)
/* clang-format on */

/* linear_multi over rows made by row(ctx, t, .) (matmul.h's matmul_row_fn, n_in values each):
 * prompt batches hand the producer to the product (matmul_multi_rows: on the AMX path no f32
 * copy of the batch is written and read back); decode rows, the reference path and oneDNN's
 * GEMMs get the rows made into x first, as a separate step would. */
static int linear_rows(struct adakv_ctx *c, const struct gguf_tensor *const *t, int n_t,
                       matmul_row_fn row, void *ctx, float *x, int n, float *const *y,
                       struct adakv_err *e) {
    if (n >= ROWS_PARALLEL_MIN && !c->reference &&
        !(c->model->gemm && n >= PREFILL_GEMM_MIN_ROWS)) {
        struct matmul_weight w[MATMUL_MULTI_MAX];
        const struct matmul_weight *wp[MATMUL_MULTI_MAX];
        for (int i = 0; i < n_t; i++)
            w[i] = weight_of(c->model, t[i]), wp[i] = &w[i];
        matmul_multi_rows(wp, n_t, row, ctx, x, n, y, c->ws);
        return 0;
    }
    const int64_t n_in = weight_of(c->model, t[0]).n_in;
    FOR_ROWS(c->n_threads, n, i, row(ctx, i, x + (size_t)i * n_in););
    return linear_multi(c, t, n_t, x, n, y, e);
}

/* ==== one layer over one chunk ====
 * A layer is split where the rows stop being interchangeable: layer_qkv and layer_out work on
 * rows of the scratch whatever sequence they belong to (so a batch of sequences reads the
 * weights once); seq_store files rows into one sequence's cache and press buffers. */

/* Rows 0..m of x: attention norm, Q/K/V projections (+ biases, + per-head norms), RoPE with
 * row t's angles at rope_rows + t * n_rot, into c->q, c->k, c->v. */
static int layer_qkv(struct adakv_ctx *c, int il, const float *x, int m, const float *rope_rows,
                     struct adakv_err *e) {
    const struct model_hparams *hp = &c->model->hp;
    const struct model_layer *L = &c->model->w.layers[il];
    const struct simd_ops *ops = c->ops;
    const int D = hp->n_embd, d = hp->head_dim;
    const int qdim = hp->n_head * d, kvdim = hp->n_head_kv * d;
    FOR_ROWS(c->n_threads, m, t,
             ops->rmsnorm(c->xn + (size_t)t * D, x + (size_t)t * D, f32_data(L->attn_norm), D,
                          hp->norm_eps););
    const struct gguf_tensor *qkv[] = {L->wq, L->wk, L->wv};
    float *qkv_out[] = {c->q, c->k, c->v};
    if (linear_multi(c, qkv, 3, c->xn, m, qkv_out, e))
        return -1;
    if (L->bq) { /* qwen2 */
        add_bias(c->q, m, qdim, L->bq);
        add_bias(c->k, m, kvdim, L->bk);
        add_bias(c->v, m, kvdim, L->bv);
    }
    const int neox = hp->rope_pairing == ROPE_PAIRING_NEOX;
    FOR_ROWS(c->n_threads, m, t, {
        if (L->q_norm) { /* qwen3: every head of Q and K RMS-normalised on its own, before RoPE */
            for (int h = 0; h < hp->n_head; h++) {
                float *qh = c->q + (size_t)t * qdim + (size_t)h * d;
                ops->rmsnorm(qh, qh, f32_data(L->q_norm), d, hp->norm_eps);
            }
            for (int h = 0; h < hp->n_head_kv; h++) {
                float *kh = c->k + (size_t)t * kvdim + (size_t)h * d;
                ops->rmsnorm(kh, kh, f32_data(L->k_norm), d, hp->norm_eps);
            }
        }
        const float *cs = rope_rows + (size_t)t * hp->n_rot;
        ops->rope(c->q + (size_t)t * qdim, hp->n_head, d, hp->n_rot, cs, neox);
        ops->rope(c->k + (size_t)t * kvdim, hp->n_head_kv, d, hp->n_rot, cs, neox);
    });
    return 0;
}

/* Rows 0..m of q, k, v (positions pos0..) become rows of sequence s's cache of layer il: they
 * are rows idx0.. of s's batch of n tokens. The queries are turned into the cache's key space,
 * and the press's query window and recent ring take the ones they keep. */
static int seq_store(struct adakv_ctx *s, int il, float *q, const float *k, const float *v, int m,
                     int32_t pos0, int idx0, int n, struct adakv_err *e) {
    const struct model_hparams *hp = &s->model->hp;
    const int d = hp->head_dim, qdim = hp->n_head * d, kvdim = hp->n_head_kv * d;
    /* A sliding-window layer forgets rows no query from pos0 on can see, once there are a
     * window's worth of them: a memmove of at most ~2 windows every window tokens, and at most
     * 2 windows + a chunk rows held. Positions stay in order, so every reader of the cache
     * (attention, truncation, compaction) works unchanged. */
    const int win = hp->layer[il].window;
    for (int g = 0; win && g < hp->n_head_kv; g++)
        kv_segment_drop_before(kv_cache_seg(&s->kv, il, g), s->kv.type, d, pos0 - win + 1, win);
    for (int g = 0; g < hp->n_head_kv; g++) {
        if (kv_cache_append(&s->kv, il, g, k + (size_t)g * d, v + (size_t)g * d, kvdim, m, pos0,
                            s->ops->quant_row_i8, e))
            return -1;
    }
    /* int8 keys are stored rotated (key-rotation.h): from here on, queries are in that space */
    FOR_ROWS(s->n_threads, m, t,
             kv_cache_rotate_queries(&s->kv, q + (size_t)t * qdim, hp->n_head, (size_t)qdim, 1););
    /* Keep the post-RoPE queries of the batch's last `window` tokens for the press. */
    const int n_window = n < s->window ? n : s->window;
    for (int t = 0; t < m; t++) {
        const int w = idx0 + t - (n - n_window);
        if (w >= 0)
            memcpy(s->q_window + (size_t)w * qdim, q + (size_t)t * qdim,
                   (size_t)qdim * sizeof(float));
    }
    for (int t = 0; s->q_recent && t < m; t++) {
        const int idx = idx0 + t;
        if (idx < n - s->recent_cap)
            continue;
        const long slot = (s->recent_total + idx) % s->recent_cap;
        memcpy(s->q_recent + ((size_t)il * s->recent_cap + (size_t)slot) * qdim,
               q + (size_t)t * qdim, (size_t)qdim * sizeof(float));
    }
    return 0;
}

/* The FFN's activation of row t, act(gate_t, up_t), as the down projection's input row
 * (linear_rows): out is a thread's own row on the AMX path, gate's row t (in place) elsewhere. */
struct ffn_rows {
    op_swiglu_fn act;
    const float *gate, *up;
    int n_ff;
};

static void ffn_row(void *ctx, int64_t t, float *out) {
    const struct ffn_rows *r = ctx;
    r->act(out, r->gate + (size_t)t * r->n_ff, r->up + (size_t)t * r->n_ff, r->n_ff);
}

/* Rows 0..m: O projection of c->att (-> post-norm) and residual into x, then the FFN norm,
 * SwiGLU or GEGLU MLP (-> post-norm) and residual. */
static int layer_out(struct adakv_ctx *c, int il, float *x, int m, struct adakv_err *e) {
    const struct model_hparams *hp = &c->model->hp;
    const struct model_layer *L = &c->model->w.layers[il];
    const struct simd_ops *ops = c->ops;
    const int D = hp->n_embd;
    if (linear(c, L->wo, c->att, m, c->proj, e))
        return -1;
    FOR_ROWS(c->n_threads, m, t, {
        float *pt = c->proj + (size_t)t * D, *xt = x + (size_t)t * D;
        if (L->attn_post_norm) /* gemma3: the attention output is normalised before the residual */
            ops->rmsnorm(pt, pt, f32_data(L->attn_post_norm), D, hp->norm_eps);
        for (int i = 0; i < D; i++)
            xt[i] += pt[i];
        ops->rmsnorm(c->xn + (size_t)t * D, xt, f32_data(L->ffn_norm), D, hp->norm_eps);
    });
    const struct gguf_tensor *gate_up[] = {L->w_gate, L->w_up};
    float *gate_up_out[] = {c->gate, c->up};
    if (linear_multi(c, gate_up, 2, c->xn, m, gate_up_out, e))
        return -1;
    const op_swiglu_fn act = hp->ffn_act == FFN_ACT_GEGLU_TANH ? ops->geglu : ops->swiglu;
    struct ffn_rows rows = {act, c->gate, c->up, hp->n_ff};
    if (linear_rows(c, &L->w_down, 1, ffn_row, &rows, c->gate, m, &c->proj, e))
        return -1;
    FOR_ROWS(c->n_threads, m, t, {
        float *pt = c->proj + (size_t)t * D, *xt = x + (size_t)t * D;
        if (L->ffn_post_norm)
            ops->rmsnorm(pt, pt, f32_data(L->ffn_post_norm), D, hp->norm_eps);
        for (int i = 0; i < D; i++)
            xt[i] += pt[i];
    });
    return 0;
}

/* Rows c0..c0+m of the context's batch of n tokens (positions pos_base + c0 ..) through layer
 * il. */
static int layer_chunk(struct adakv_ctx *c, int il, int c0, int m, int n, int32_t pos_base,
                       struct adakv_err *e) {
    const struct model_hparams *hp = &c->model->hp;
    float *x = c->x + (size_t)c0 * hp->n_embd;
    const int32_t pos0 = pos_base + c0;
    const float *rope_rows =
        c->rope_cs + ((size_t)rope_set_of(c, il) * c->n_ctx + (size_t)c0) * hp->n_rot;
    if (layer_qkv(c, il, x, m, rope_rows, e) ||
        seq_store(c, il, c->q, c->k, c->v, m, pos0, c0, n, e))
        return -1;
    /* the window's rows (the batch's last n_window, as seq_store kept their queries) leave
     * their log-sum-exps beside them for the policy */
    const int n_window = n < c->window ? n : c->window, first = n - n_window - c0;
    const struct attn_lse_out lse = {c->lse_window +
                                         (first < 0 ? (size_t)-first * c->model->hp.n_head : 0),
                                     first > 0 ? first : 0};
    attention_chunk(c, il, m, pos0, n > 1 && first < m ? &lse : NULL);
    return layer_out(c, il, x, m, e);
}

/* ==== eval ==== */

/* The policy's decode-time step (eviction under a row cap), once this token's rows are in; a
 * policy that evicted leaves the heads with new lengths: rebalance them over the threads. */
static int policy_after_token(struct adakv_ctx *c, struct adakv_err *e) {
    if (!c->policy.after_token)
        return 0;
    const struct model_hparams *hp = &c->model->hp;
    const struct recent_queries recent = {.ring = c->q_recent,
                                          .cap = c->recent_cap,
                                          .total = c->recent_total,
                                          .qdim = (size_t)hp->n_head * hp->head_dim};
    bool evicted = false;
    if (c->policy.after_token(c->policy.self, &c->kv, &recent, &evicted, e))
        return -1;
    if (evicted)
        forward_heads_changed(c);
    return 0;
}

/* The context's thread count for matmul's parallel regions; its threads pinned once, in its
 * first parallel region (threads.h). */
static void threads_ready(struct adakv_ctx *c) {
    omp_set_num_threads(c->n_threads);
    if (!c->plan.pinned) {
        threads_pin(&c->plan);
        threads_plan_describe(&c->plan, c->placement, sizeof c->placement);
    }
}

static int embed(struct adakv_ctx *c, const int32_t *tokens, int n) {
    const struct gguf_tensor *t = c->model->w.token_embd;
    const struct quant_kernels *k = quant_kernels_isa(t->type, SIMD_ISA_SCALAR);
    const size_t row = (size_t)tensor_type_row_size(t->type, t->ne[0]);
    const int D = c->model->hp.n_embd;
    const float scale = c->model->hp.embd_scale;
    for (int i = 0; i < n; i++) {
        float *x = c->x + (size_t)i * D;
        k->dequant_row((const char *)t->data + (size_t)tokens[i] * row, x, D);
        if (scale != 1.0f) /* gemma3: sqrt(n_embd) */
            for (int j = 0; j < D; j++)
                x[j] *= scale;
    }
    return 0;
}

static int output_head(struct adakv_ctx *c, int n, float *logits, bool all_logits,
                       struct adakv_err *e) {
    const struct adakv_model *mod = c->model;
    const int D = mod->hp.n_embd;
    const int first = all_logits ? 0 : n - 1;
    for (int c0 = first; c0 < n; c0 += c->chunk) {
        const int m = n - c0 < c->chunk ? n - c0 : c->chunk;
        for (int t = 0; t < m; t++)
            c->ops->rmsnorm(c->xn + (size_t)t * D, c->x + (size_t)(c0 + t) * D,
                            f32_data(mod->w.output_norm), D, mod->hp.norm_eps);
        float *dst = logits + (size_t)(c0 - first) * mod->hp.n_vocab;
        if (linear(c, mod->w.output, c->xn, m, dst, e))
            return -1;
        const float cap = mod->hp.logit_softcap;
        if (cap > 0.0f) /* llama.cpp: scale by 1 / cap, tanh, scale by cap */
            for (size_t i = 0; i < (size_t)m * mod->hp.n_vocab; i++)
                dst[i] = tanhf(dst[i] * (1.0f / cap)) * cap;
    }
    return 0;
}

/* Gives every segment of global layer il room for exactly n more rows before a prompt batch
 * appends them, so the cache's allocation (kv_cache_bytes, the peak a press reports) is the rows
 * it holds rather than a 1.5x growth step past them (kv_cache_append grows geometrically for
 * decode, where appends come one at a time). Sliding-window layers drop rows as they append. */
static int reserve_batch(struct adakv_ctx *c, int il, int n, struct adakv_err *e) {
    if (c->model->hp.layer[il].window)
        return 0;
    for (int g = 0; g < c->kv.n_head_kv; g++) {
        struct kv_segment *s = kv_cache_seg(&c->kv, il, g);
        if (kv_segment_reserve(s, c->kv.type, c->kv.head_dim, s->len + n, e))
            return -1;
    }
    return 0;
}

/* One batch of n tokens through every layer (forward.h's shape of an eval). */
static int eval_once(struct adakv_ctx *c, const int32_t *tokens, int n, float *logits,
                     bool all_logits, struct adakv_err *e) {
    const struct model_hparams *hp = &c->model->hp;
    threads_ready(c);
    const int32_t pos_base = c->n_past;
    for (int r = 0; r < c->n_rope; r++)
        rope_angles_at(c->model, c->rope[r].base, c->rope[r].freq_scale, pos_base, n,
                       c->rope_cs + (size_t)r * c->n_ctx * hp->n_rot);
    embed(c, tokens, n);
    c->broken = true; /* until every layer has appended its rows */
    for (int il = 0; il < hp->n_layer; il++) {
        if (n > 1 && reserve_batch(c, il, n, e))
            return -1;
        for (int c0 = 0; c0 < n; c0 += c->chunk) {
            const int m = n - c0 < c->chunk ? n - c0 : c->chunk;
            if (n > 1 && c->interrupt && *c->interrupt) /* a long prompt stops within a chunk */
                return err_set(e, "eval: interrupted");
            if (layer_chunk(c, il, c0, m, n, pos_base, e))
                return -1;
        }
        /* COMPRESSION POINT: layer il's cache is complete for this batch. */
        if (c->policy.after_layer && n > 1) {
            const int n_window = n < c->window ? n : c->window;
            const double t0 = omp_get_wtime();
            if (c->policy.after_layer(c->policy.self, &c->kv, il, c->q_window, n_window, e))
                return -1;
            c->press_s += omp_get_wtime() - t0;
        }
        if (c->progress && n > 1)
            c->progress(c->progress_user, c->progress_done + il + 1,
                        c->progress_total ? c->progress_total : hp->n_layer);
    }
    /* END OF THE BATCH: a policy that selects over every layer at once evicts here */
    if (c->policy.after_batch && n > 1) {
        const double t0 = omp_get_wtime();
        if (c->policy.after_batch(c->policy.self, &c->kv, e))
            return -1;
        c->press_s += omp_get_wtime() - t0;
    }
    c->n_past += n;
    c->broken = false;
    c->recent_total += n;
    /* decode-time eviction runs between decode steps, once this token's rows are in */
    if (n == 1 && policy_after_token(c, e))
        return -1;
    if (n > 1)
        forward_heads_changed(c);
    if (logits)
        return output_head(c, n, logits, all_logits, e);
    return 0;
}

/* Tokens in the piece of a chunked prefill that starts at i of n: `chunk`, but a rest shorter
 * than `min_last` joins this piece, so the last piece still has a full press window of queries
 * to score with (and is never a single token, which would run as a decode step). */
static int piece_len(int i, int n, int chunk, int min_last) {
    const int rest = n - i - chunk;
    return rest <= 0 ? n - i : rest < min_last ? chunk + rest : chunk;
}

int adakv_eval(struct adakv_ctx *c, const int32_t *tokens, int n, float *logits, bool all_logits,
               struct adakv_err *e) {
    const struct model_hparams *hp = &c->model->hp;
    if (c->broken)
        return err_set(e, "eval: an earlier eval failed midway; reset the context first");
    if (n <= 0 || !tokens)
        return err_set(e, "eval: no tokens to evaluate (n = %d)", n);
    if (n > c->n_ctx - c->n_past)
        return err_set(e, "eval: %d tokens do not fit in the context (%d of %d positions used)", n,
                       c->n_past, c->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return err_set(e, "eval: token id %d at index %d is outside the vocabulary [0, %d)",
                           (int)tokens[i], i, hp->n_vocab);
    const int chunk =
        n > 1 && c->policy.prefill_begin ? c->policy.prefill_begin(c->policy.self, &c->kv, n) : 0;
    if (chunk <= 0)
        return eval_once(c, tokens, n, logits, all_logits, e);
    /* CHUNKED PREFILL (forward.h): the pieces, with the logits the caller asked for */
    const int min_last = c->window > 2 ? c->window : 2;
    int pieces = 0;
    for (int i = 0; i < n; i += piece_len(i, n, chunk, min_last))
        pieces++;
    c->progress_total = pieces * hp->n_layer;
    int rc = 0;
    for (int i = 0, p = 0; !rc && i < n; p++) {
        const int m = piece_len(i, n, chunk, min_last);
        float *lg = !logits      ? NULL
                    : all_logits ? logits + (size_t)i * hp->n_vocab
                    : i + m == n ? logits
                                 : NULL;
        c->progress_done = p * hp->n_layer;
        rc = eval_once(c, tokens + i, m, lg, all_logits, e);
        i += m;
    }
    c->progress_done = c->progress_total = 0;
    if (c->policy.prefill_end)
        c->policy.prefill_end(c->policy.self);
    return rc;
}

/* ==== a batch of sequences, one token each ==== */

int adakv_eval_batch(struct adakv_ctx *const *seqs, const int32_t *tokens, int n, float *logits,
                     struct adakv_err *e) {
    if (n <= 0 || !seqs || !tokens)
        return err_set(e, "eval batch: no sequences to evaluate (n = %d)", n);
    struct adakv_ctx *c = seqs[0]; /* its scratch and threads serve the whole batch */
    if (!c)
        return err_set(e, "eval batch: sequence 0 is NULL");
    const struct model_hparams *hp = &c->model->hp;
    if (n > c->chunk)
        return err_set(e, "eval batch: %d sequences, more than the %d rows of sequence 0's scratch",
                       n, c->chunk);
    for (int i = 0; i < n; i++) {
        const struct adakv_ctx *s = seqs[i];
        if (!s)
            return err_set(e, "eval batch: sequence %d is NULL", i);
        if (s->model != c->model || s->reference != c->reference)
            return err_set(e,
                           "eval batch: sequence %d has another model or kernel set than "
                           "sequence 0",
                           i);
        for (int j = 0; j < i; j++)
            if (seqs[j] == s)
                return err_set(e, "eval batch: sequence %d is sequence %d again", i, j);
        if (s->broken)
            return err_set(e,
                           "eval batch: sequence %d: an earlier eval failed midway; reset it "
                           "first",
                           i);
        if (s->n_past >= s->n_ctx)
            return err_set(e, "eval batch: sequence %d is full (%d of %d positions used)", i,
                           s->n_past, s->n_ctx);
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return err_set(e,
                           "eval batch: token id %d of sequence %d is outside the vocabulary "
                           "[0, %d)",
                           (int)tokens[i], i, hp->n_vocab);
    }
    threads_ready(c);
    /* row i of the batch is sequence i's next token, at its own position */
    for (int r = 0; r < c->n_rope; r++)
        for (int i = 0; i < n; i++)
            rope_angles_at(c->model, c->rope[r].base, c->rope[r].freq_scale, seqs[i]->n_past, 1,
                           c->rope_cs + ((size_t)r * c->n_ctx + (size_t)i) * hp->n_rot);
    embed(c, tokens, n);
    for (int i = 0; i < n; i++)
        seqs[i]->broken = true; /* until every layer has appended its rows */
    const size_t qdim = (size_t)hp->n_head * hp->head_dim;
    const size_t kvdim = (size_t)hp->n_head_kv * hp->head_dim;
    for (int il = 0; il < hp->n_layer; il++) {
        /* the projections see n rows, so each weight is read once for all the sequences */
        if (layer_qkv(c, il, c->x, n,
                      c->rope_cs + (size_t)rope_set_of(c, il) * c->n_ctx * hp->n_rot, e))
            return -1;
        for (int i = 0; i < n; i++)
            if (seq_store(seqs[i], il, c->q + i * qdim, c->k + i * kvdim, c->v + i * kvdim, 1,
                          seqs[i]->n_past, 0, 1, e))
                return -1;
        attention_batch(c, seqs, il, n);
        if (layer_out(c, il, c->x, n, e))
            return -1;
    }
    for (int i = 0; i < n; i++) {
        struct adakv_ctx *s = seqs[i];
        s->n_past++;
        s->recent_total++;
        s->broken = false;
        if (policy_after_token(s, e))
            return -1;
    }
    return logits ? output_head(c, n, logits, true, e) : 0;
}
