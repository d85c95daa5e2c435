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

/* One stored row as f32 (dequantized for int8, converted for f16). */
void kv_row_to_f32(enum kv_type type, const void *rows, const float *scales, int row, int head_dim,
                   float *out);

#endif
