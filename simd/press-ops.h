/* Kernels of the press stage (scoring the KV cache before eviction), one table per ISA, chosen
 * at run time like simd/ops.h. Every op has a plain C reference that tests/test_press_kernels.c
 * holds the ISA versions to.
 *
 * qk_*: attention logits of many query rows (the observation window of every query head of a
 *   GQA group) against all keys of one KV head. Same contract as the attn_qk ops of ops.h, whose
 *   scalar versions are the reference; the ISA versions are blocked GEMMs for n_q in the tens.
 * vnorm_l1: CriticalKV's ||v_r W_O^h||_1 per value row, accumulated into out (so a GQA group's
 *   query heads can sum into one buffer):
 *     out[r] += sum_{e < n_out} | sum_{i < d} v[r * d + i] * w[i * n_out + e] |
 *   v: n rows of d f32; w: [d][n_out] f32 row-major (W_O^h transposed). n, d, n_out >= 1.
 * col_max: KVzip's running maximum of attention probabilities, acc[j] = max(acc[j], x[j]),
 *   n >= 0.
 * attn_colmax_i8: KVzip's scores from a block of query rows over an int8 cache: each row r's
 *   softmax p_r over the keys it sees (kpos[j] <= qpos[r], j < n_k) of
 *   mul * k_scale[j] * dot(q_r, k_j), then colmax[j] = max(colmax[j], max_r p_rj) for j < n_out
 *   (n_out <= n_k; a row gives the keys it does not see 0). q: n_q rows of d floats,
 *   d <= ATTN_ROWS_DMAX. lse: each row's log-sum-exp of those scores when the caller has it
 *   (the forward pass's attn_rows_i8 returns it for the same rows and keys), so only the keys
 *   j < n_out are scored again; NULL: computed here, a sweep over all n_k keys first. Optional,
 *   as ops.h's attn_rows_i8: NULL in a table whose ISA has no such kernel (the caller then takes
 *   qk_i8, a softmax and col_max); attn_colmax_i8__scalar is the reference.
 * sq_combine: Expected Attention's logits from a block of dot products (row 0 the mean query's,
 *   rows 1 .. n_rows-1 the centred queries'), n_rows >= 1, n >= 0:
 *     out[j] = a * s[j] + b * sum_{1 <= r < n_rows} s[r * stride + j]^2 */
#ifndef ADAKV_SIMD_PRESS_OPS_H
#define ADAKV_SIMD_PRESS_OPS_H

#include "ops.h"

typedef void (*op_vnorm_l1_fn)(float *out, const float *v, int n, int d, const float *w, int n_out);
typedef void (*op_col_max_fn)(float *acc, const float *x, int n);
typedef void (*op_attn_colmax_i8_fn)(float *colmax, int n_out, const float *q, int n_q,
                                     const int32_t *qpos, const float *lse, const int8_t *k,
                                     const float *k_scale, const int32_t *kpos, int n_k, int d,
                                     float mul);
typedef void (*op_sq_combine_fn)(float *out, const float *s, size_t stride, int n_rows, int n,
                                 float a, float b);

struct press_ops {
    const char *isa; /* "scalar", "avx2", "avx512": names the table */
    op_attn_qk_i8_fn qk_i8;
    op_attn_qk_f16_fn qk_f16;
    op_attn_qk_f32_fn qk_f32;
    op_vnorm_l1_fn vnorm_l1;
    op_col_max_fn col_max;
    op_attn_colmax_i8_fn attn_colmax_i8; /* optional (see above) */
    op_sq_combine_fn sq_combine;
};

/* The reference table. */
const struct press_ops *press_ops_scalar(void);
/* The best table for this CPU, honouring the ISA cap of simd/cpu.h (ADAKV_ISA). */
const struct press_ops *press_ops_best(void);
/* The table named like a simd_ops table ("scalar", "avx2", "avx512"), so a caller that picked
 * simd_ops_scalar() for a reference run gets the reference here too. Levels without press
 * kernels (neon) get a table of the references; NULL for an ISA this CPU or build cannot run. */
const struct press_ops *press_ops_by_name(const char *isa);

/* Kernel symbols, declared from the lists of kernels.h with their slot's type. */
#define PRESS_OPS_DECLARE(table, slot, symbol, need) PRESS_OPS_DECLARE_##table(slot, symbol)
#define PRESS_OPS_DECLARE_press(slot, symbol)                                                      \
    extern __typeof__(*((struct press_ops *)0)->slot) symbol;
#define PRESS_OPS_DECLARE_ops(slot, symbol)
#define PRESS_OPS_DECLARE_quant(slot, symbol)
SIMD_KERNELS_ALL(PRESS_OPS_DECLARE)

/* attn_colmax_i8's plain C reference (attn-colmax-scalar.c), for the tests: it is in no table. */
extern __typeof__(*((struct press_ops *)0)->attn_colmax_i8) attn_colmax_i8__scalar;

#endif
