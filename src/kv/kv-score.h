/* Per-KV-head importance of every cached row of one layer: the first step of a press
 * (int8 KV cache -> scores -> budget allocation -> compaction).
 *
 * Layout shared by every scorer and by kv-budget: KV head g contributes its prefix rows
 * j in [0, n_g), n_g = len_g - n_window (the last n_window rows of each segment are the
 * observation window, always kept, never scored). The scores of all heads are flattened:
 * head g's scores live at out[off[g] .. off[g+1]), off[0] = 0, off[n_head_kv] = total.
 * kv_score_layout() builds off from the segment lengths. Higher score = more worth keeping. */
#ifndef ADAKV_KV_SCORE_H
#define ADAKV_KV_SCORE_H

#include <stdint.h>

#include "error.h"
#include "kv-cache.h"
#include "kv-rec-pieces.h"
#include "ops.h"

enum kv_pool { KV_POOL_MAX = 0, KV_POOL_AVG, KV_POOL_NONE };

/* off[0..n_head_kv] from the segment lengths of `layer`; -1 with e set if a segment is shorter
 * than the window. */
int kv_score_layout(const struct kv_cache *kv, int layer, int n_window, int32_t *off,
                    struct adakv_err *e);

/* SnapKV (algorithms.md section 1): for each query head h and window query t (position
 * len - n_window + t), logits q.k_j / sqrt(head_dim) over all rows j of its KV head, causal
 * inside the window, softmax in f32; the probabilities are averaged over t and over the
 * n_head / n_head_kv query heads of the group (GQA mean BEFORE pooling), then the prefix is
 * pooled along j (kernel odd; max, or avg with zero padding counted, as PyTorch's default).
 * q_window: [n_window][n_head][head_dim] f32, post-RoPE. ops: the kernel table to use
 * (simd_ops_best() or simd_ops_scalar()). -1 with e set only when memory runs out. */
int kv_score_snapkv(const struct simd_ops *ops, const struct kv_cache *kv, int layer,
                    const float *q_window, int n_window, int n_head, enum kv_pool pool, int kernel,
                    const int32_t *off, float *out, struct adakv_err *e);

/* KNorm control: score = -||k_j||_2 (keys with small norm attract attention). */
void kv_score_knorm(const struct kv_cache *kv, int layer, const int32_t *off, float *out);

/* Random control: uniform [0,1) from a hash of (seed, layer, head, row); reproducible and
 * independent of evaluation order. */
void kv_score_random(uint64_t seed, int layer, int n_head_kv, const int32_t *off, float *out);

/* CriticalKV projected-value norm (algorithms.md 4.2 step 3): for KV head g and prefix row j,
 * out = mean over the group's query heads h of ||v_j W_O^h||_1, where W_O^h is the
 * head_dim x n_embd slice of the output projection. w_o: f32 [n_embd][n_head * head_dim]
 * row-major (out[e] = sum_c w_o[e][c] attn[c]), as the engine dequantizes it. */
int kv_score_value_norm(const struct simd_ops *ops, const struct kv_cache *kv, int layer,
                        int n_head, int n_embd, const float *w_o, const int32_t *off, float *out,
                        struct adakv_err *e);

/* 1-D pooling, stride 1, odd kernel, padding kernel/2 so the length is kept. Max ignores
 * out-of-range cells; avg divides by `kernel` with zeros outside. out must not alias in. */
void kv_score_pool(const float *in, int n, enum kv_pool pool, int kernel, float *out);

/* KVzip (Kim et al. 2025, arXiv 2505.23416; docs/presses.md): the segments of `layer` hold the
 * context rows [0, n_g) followed by the n_rep rows of the reconstruction (the repeat prompt and
 * the teacher-forced copy of the context); off is kv_score_layout(kv, layer, n_rep). For KV head
 * g and context row j:
 *     zip[off[g] + j] = max over the group's query heads h and reconstruction queries t of
 *                       softmax_j'(q_{h,t} . k_j' / sqrt(d)) [j],
 * the softmax over every row query t may see (the context and the reconstruction rows up to its
 * own, causal), normalized so that the layer's rows sum to 1: out = zip / sum(zip). Within a
 * layer this changes no selection; across layers (--budget global) it makes a layer's share
 * follow how its scores are spread rather than how high its peak probabilities run, which kept
 * more answers on the retrieval suite than the raw maxima (docs/eval.md; a departure from
 * KVzip's global ranking of raw scores). q_rep: [n_rep][n_head][head_dim] post-RoPE, as the
 * hook's q_window. lse_rep: [n_rep][n_head] each query's log-sum-exp over the rows it sees, as
 * the forward pass's attention computed it (the context's lse window), or NULL; with it the fused
 * kernel skips its first sweep. rp: the reconstruction in pieces (NULL or piece 0: one piece): a
 * copy query's softmax is then over the rows of its piece only (kv-rec-pieces.h), as the forward
 * pass attended, and it scores only those.
 * Question-aware (n_question > 0, this project's extension; docs/eval.md): the last n_question
 * of the n_rep queries are the question's; they add their probabilities instead,
 *     ask[off[g] + j] = sum over h and the question's t of the same softmax [j],
 * and out = max(zip / sum(zip), ask / sum(ask)), so what the question reads is kept beside what
 * the reconstruction needs. The f32 path runs queries in blocks of 32 (scratch
 * 32 x (n_g + n_rep) floats per thread whatever n_rep is). -1 with e set only when memory runs
 * out. */
int kv_score_kvzip(const struct simd_ops *ops, const struct kv_cache *kv, int layer,
                   const float *q_rep, const float *lse_rep, const struct kv_rec_pieces *rp,
                   int n_rep, int n_question, int n_head, const int32_t *off, float *out,
                   struct adakv_err *e);

/* Expected Attention (Devoto et al. 2025, kvpress ExpectedAttentionPress; docs/presses.md).
 * Every row of each segment is scored (off = kv_score_layout(kv, layer, 0)). Per query head h,
 * the window queries q_win ([n_win][n_head][head_dim], post-RoPE, in the stored keys' space) are
 * taken back to pre-RoPE with rope_undo ([n_win][n_rot] cos then sin of each query's inverse
 * rotation), their mean mu and centred rows c_t are turned by the RoPE rotation averaged over the
 * future positions (rope_future, [n_rot] mean cos then mean sin), and
 *     z_j = mu' . k_j / sqrt(d) + (1 / (2 d n_win)) sum_t (c'_t . k_j)^2
 * (the second term is k_j^T C' k_j / (2d), C' the window's covariance turned by the same
 * rotation). Rows j >= n_sink get softmax_j(z) averaged over the group's query heads, then
 * (p + eps) * ||v_j||_2; the first n_sink rows get the largest score + 1 (never evicted).
 * neox: RoPE pairing as ops->rope. -1 with e set only when memory runs out. */
int kv_score_eattn(const struct simd_ops *ops, const struct kv_cache *kv, int layer,
                   const float *q_win, int n_win, int n_head, const float *rope_undo,
                   const float *rope_future, int n_rot, int neox, int n_sink, float eps,
                   const int32_t *off, float *out, struct adakv_err *e);

struct press_ops;
/* The press kernel table matching a forward-pass table (scalar for a reference run). */
const struct press_ops *kv_score_press_ops(const struct simd_ops *ops);
/* s[r * s_stride + j] = mul * q_r . k_{j0 + j} for n_q query rows (q_stride floats apart) and
 * n_k stored key rows of seg, whatever the storage type. */
void kv_score_logits(const struct press_ops *po, enum kv_type type, const struct kv_segment *seg,
                     int j0, float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                     int n_k, int d, float mul);

/* One stored row as f32 (dequantized for int8, converted for f16). */
void kv_row_to_f32(enum kv_type type, const void *rows, const float *scales, int row, int head_dim,
                   float *out);

#endif
