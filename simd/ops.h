/* Forward-pass kernels: one table of function pointers per ISA, chosen once.
 *
 * Every op has a plain C reference (<op>-scalar.c) and optional ISA versions (<op>-avx512.c,
 * <op>-avx2.c) with the same signature; tests/test_ops.c holds each ISA version to its reference.
 * Which kernel fills which op of which ISA's table is said once, in the lists of kernels.h: the
 * scalar table is complete; an ISA table starts as a copy of the scalar one and overwrites only
 * the ops its list has, so a missing kernel falls back to the reference.
 *
 * This header is included by ISA-flagged objects: it holds only declarations and macros. */
#ifndef ADAKV_SIMD_OPS_H
#define ADAKV_SIMD_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

/* ---- op signatures (contracts) ----
 * All lengths may be any value >= 1 (tails handled inside); pointers need no alignment. */

/* y[i] = x[i] * w[i] / sqrt(mean(x^2) + eps). y may equal x. */
typedef void (*op_rmsnorm_fn)(float *y, const float *x, const float *w, int n, float eps);

/* Rotates the first n_rot dims of each of n_head rows of length head_dim (rows contiguous), in
 * place. cs holds n_rot/2 cosines followed by n_rot/2 sines; pair i turns by the angle whose
 * cos/sin are cs[i], cs[n_rot/2 + i]. neox = 0: pair i is (x[2i], x[2i+1]) (GGML "NORM", the
 * llama arch); neox = 1: pair i is (x[i], x[i + n_rot/2]) (GGML "NEOX", qwen2/gemma3).
 * n_rot is even and <= head_dim; dims from n_rot on are left alone. */
typedef void (*op_rope_fn)(float *x, int n_head, int head_dim, int n_rot, const float *cs,
                           int neox);

/* The largest of x[0..n), -inf when n = 0 (x holds no NaN: scores and logits). */
typedef float (*op_max_fn)(const float *x, int n);

/* x[i] = exp(x[i] - shift); returns the sum of the new x. -inf entries become 0. */
typedef float (*op_exp_sum_fn)(float *x, int n, float shift);

/* In-place softmax over n values; -inf entries get probability 0. At least one entry must be
 * finite. */
typedef void (*op_softmax_fn)(float *x, int n);

/* out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). out may equal gate or up. */
typedef void (*op_swiglu_fn)(float *out, const float *gate, const float *up, int n);

/* out[i] = gelu(gate[i]) * up[i] with GELU's tanh approximation
 * gelu(g) = 0.5 g (1 + tanh(sqrt(2/pi) g (1 + 0.044715 g^2))) (ggml_gelu_f32's constants below).
 * out may equal gate or up. */
typedef void (*op_geglu_fn)(float *out, const float *gate, const float *up, int n);
#define GELU_COEF_A         0.044715f
#define GELU_SQRT_2_OVER_PI 0.79788456080286535587989211986876f

/* Symmetric int8 row: *scale = max|x| / 127, q[i] = round_half_even(x[i] / *scale) computed as
 * x[i] * (1 / *scale); an all-zero row gets scale 0 and zeros. Bit-exact across ISAs. */
typedef void (*op_quant_row_i8_fn)(int8_t *q, float *scale, const float *x, int n);

/* Attention scores of n_q query rows against n_k key rows of length d:
 *   s[qi * s_stride + j] = mul * dot(q + qi * q_stride, k_j) (* k_scale[j] for int8).
 * The key rows are contiguous: k_j = k + j * d. */
typedef void (*op_attn_qk_i8_fn)(float *s, size_t s_stride, const float *q, size_t q_stride,
                                 int n_q, const int8_t *k, const float *k_scale, int n_k, int d,
                                 float mul);
typedef void (*op_attn_qk_f16_fn)(float *s, size_t s_stride, const float *q, size_t q_stride,
                                  int n_q, const uint16_t *k, int n_k, int d, float mul);
typedef void (*op_attn_qk_f32_fn)(float *s, size_t s_stride, const float *q, size_t q_stride,
                                  int n_q, const float *k, int n_k, int d, float mul);

/* Weighted sum of n_k value rows into n_q accumulators of length d:
 *   acc[qi * acc_stride + :] += sum_j p[qi * p_stride + j] * v_j (* v_scale[j] for int8). */
typedef void (*op_attn_av_i8_fn)(float *acc, size_t acc_stride, const float *p, size_t p_stride,
                                 int n_q, const int8_t *v, const float *v_scale, int n_k, int d);
typedef void (*op_attn_av_f16_fn)(float *acc, size_t acc_stride, const float *p, size_t p_stride,
                                  int n_q, const uint16_t *v, int n_k, int d);
typedef void (*op_attn_av_f32_fn)(float *acc, size_t acc_stride, const float *p, size_t p_stride,
                                  int n_q, const float *v, int n_k, int d);

/* Attention of n_q query rows (q[r * d ..], row r at position qpos[r]) over n_k int8 key and
 * value rows (k, v: row j at k + j * d, position kpos[j], non-decreasing) in one pass, as
 * prefill needs it: row r sees key j when kpos[j] <= qpos[r] and, with window > 0, kpos[j] >
 * qpos[r] - window; out[r * d ..] = sum_j p_rj v_scale[j] v_j with p_r the softmax over the
 * keys it sees of mul * k_scale[j] * dot(q_r, k_j) (zeros for a row that sees none); if lse is
 * not NULL, lse[r] = log sum_j exp(mul * k_scale[j] * dot(q_r, k_j)) over those keys (-inf for
 * none), what merging with attention over other keys needs. d <= ATTN_ROWS_DMAX. Optional:
 * NULL in a table whose ISA has no such kernel (the caller then folds the scores and values
 * ops itself). */
#define ATTN_ROWS_DMAX 256
typedef void (*op_attn_rows_i8_fn)(float *out, float *lse, const float *q, int n_q,
                                   const int32_t *qpos, const int8_t *k, const float *k_scale,
                                   const int8_t *v, const float *v_scale, const int32_t *kpos,
                                   int n_k, int d, float mul, int32_t window);

/* x[0..n) <- H x in place, H block-diagonal with blocks of `block` (a power of two dividing n),
 * each the Walsh-Hadamard matrix scaled by 1/sqrt(block) (key-rotation.h says why). The spans'
 * butterflies run in the order 1, 2, 4, ...: every ISA gives the reference's bits. */
typedef void (*op_hadamard_fn)(float *x, int n, int block);

struct simd_ops {
    const char *isa; /* "scalar", "avx2", "avx512", "neon" (+ "-base"): for logs and tests */
    op_rmsnorm_fn rmsnorm;
    op_rope_fn rope;
    op_max_fn max;
    op_exp_sum_fn exp_sum;
    op_softmax_fn softmax;
    op_swiglu_fn swiglu;
    op_geglu_fn geglu;
    op_quant_row_i8_fn quant_row_i8;
    op_attn_qk_i8_fn attn_qk_i8;
    op_attn_qk_f16_fn attn_qk_f16;
    op_attn_qk_f32_fn attn_qk_f32;
    op_attn_av_i8_fn attn_av_i8;
    op_attn_av_f16_fn attn_av_f16;
    op_attn_av_f32_fn attn_av_f32;
    op_attn_rows_i8_fn attn_rows_i8; /* optional (see above) */
    op_hadamard_fn hadamard;
};

/* The reference table (always complete). */
const struct simd_ops *simd_ops_scalar(void);
/* The best table for this CPU, honouring the ISA cap of simd/cpu.h (ADAKV_ISA). */
const struct simd_ops *simd_ops_best(void);
/* The table of one ISA by name ("scalar", "avx2", "avx512"), or NULL when it was not built or
 * this CPU cannot run it. Tests iterate over these. */
const struct simd_ops *simd_ops_by_name(const char *isa);

/* Tables for the tests, i = 0, 1, ... until NULL: every ISA table this CPU runs except the
 * reference, each followed by the same table built as a CPU with the bare ISA level gets it
 * (without avx512_vnni, neon_dotprod...) where that differs, so the kernels a CPU feature
 * replaces are held to the reference too. The second one's name says "-base". */
const struct simd_ops *simd_ops_variant(int i);

/* ---- kernel symbols, <op>__<isa>, declared from the lists of kernels.h ----
 * Each takes its slot's function type (__typeof__, which GCC and Clang have), so a kernel whose
 * definition drifts from its op's contract does not compile. */
#define SIMD_OPS_DECLARE(table, slot, symbol, need) SIMD_OPS_DECLARE_##table(slot, symbol)
#define SIMD_OPS_DECLARE_ops(slot, symbol)          extern __typeof__(*((struct simd_ops *)0)->slot) symbol;
#define SIMD_OPS_DECLARE_press(slot, symbol)
#define SIMD_OPS_DECLARE_quant(slot, symbol)
SIMD_KERNELS_ALL(SIMD_OPS_DECLARE)

/* attn_rows_i8's plain C reference (attn-rows-scalar.c), for the tests: it is in no table (the
 * scalar table leaves the op NULL and folds), so the lists do not declare it. */
extern __typeof__(*((struct simd_ops *)0)->attn_rows_i8) attn_rows_i8__scalar;

#endif
