/* Prompt products on AMX tiles (Intel Sapphire Rapids and later; simd_amx() says when):
 * y = x W^T for a batch of tokens over a weight's repacked 16-row tiles, with no dense copy of
 * the weights. Up to 128 rows (8 tiles) are dequantized to bf16 (quant_panel_fn) a chunk of
 * values at a time into the calling thread's scratch and meet every token, 32 at a time: 2 x 2
 * tiles of 16 x 16 f32 sums, tdpbf16ps over all of n with no rescaling between blocks.
 *
 * Why bf16 and not AMX's int8, which does 2.5x the multiplies per second here (perf/README.md):
 * every block of the weights carries its own scale, so int8 sums must leave the tiles every 32
 * values to be rescaled, or each K-quant weight sc q is split into two bytes (32 h + l) and
 * multiplied twice, which leaves int8 1.3x ahead before its per-super-block epilogue (scales,
 * minimum term) and the activations' quantization; bf16 sums in f32 across the whole row, and
 * one loop serves every weight type through its panel fill. Rounding the dequantized weights and
 * the activations to bf16 (8 significant bits, relative error <= 2^-9 each) errs less than the Q8_K
 * activations of the VNNI path and llama.cpp's (an absolute error up to 1/254 of a block's
 * largest value). */
#ifndef ADAKV_SIMD_GEMM_AMX_H
#define ADAKV_SIMD_GEMM_AMX_H

#include <stddef.h>
#include <stdint.h>

#include "quant.h"

#define GEMM_AMX_ROWS_MAX 128 /* weight rows per call: 8 tiles of 16, 4 pairs */
#define GEMM_AMX_TOKENS   32  /* tokens per block: two 16-row A tiles */
#define GEMM_AMX_KC       512 /* values per chunk of the rows (a multiple of every block size) */
#define GEMM_AMX_KR       128 /* values per run of the tiles over a chunk (a multiple of 32) */

/* Bytes between the bf16 activation rows of n values: 64 more than the row, so that the 16 rows
 * an A tile loads do not all fall in one L1 set (rows of 4 KiB would). */
static inline size_t gemm_amx_act_stride(int64_t n) {
    return (size_t)n * 2 + 64;
}

static inline int64_t gemm_amx_tokens_padded(int64_t n_tok) {
    return (n_tok + GEMM_AMX_TOKENS - 1) / GEMM_AMX_TOKENS * GEMM_AMX_TOKENS;
}

/* Bytes of the bf16 rows of n_tok tokens (rounded up to a whole block of GEMM_AMX_TOKENS). */
static inline size_t gemm_amx_act_bytes(int64_t n, int64_t n_tok) {
    return gemm_amx_act_stride(n) * (size_t)gemm_amx_tokens_padded(n_tok);
}

/* Bytes of one thread's scratch for gemm_amx_rows: the bf16 panel of a chunk and the f32 sums. */
static inline size_t gemm_amx_scratch_bytes(int64_t n_tok) {
    return (size_t)GEMM_AMX_ROWS_MAX * GEMM_AMX_KC * 2 +
           (size_t)gemm_amx_tokens_padded(n_tok) * GEMM_AMX_ROWS_MAX * sizeof(float);
}

/* Token row x (n f32) to its bf16 row (nearest even), as the A tiles read it. */
void gemm_amx_pack_row(const float *restrict x, int64_t n, uint16_t *restrict out);

/* y[t][r] = sum_k act[t][k] W[r][k] for t < n_tok, r < n_rows <= GEMM_AMX_ROWS_MAX: the rows of
 * the consecutive repacked tiles at w (tile_bytes apart), dequantized by panel a chunk of
 * GEMM_AMX_KC values at a time (chunk c of a tile starts c * kc_bytes into it). act: rows made by
 * gemm_amx_pack_row, gemm_amx_act_stride(n) bytes apart, readable up to
 * gemm_amx_tokens_padded(n_tok) rows (their values do not matter). y rows y_stride floats apart.
 * scratch: gemm_amx_scratch_bytes(n_tok). n a multiple of 32. Runs on the calling thread
 * (configures its tiles, releases them on return).
 *
 * Loops: per chunk of 512 values, the panel (at most 128 KiB, in L2) is filled once; then per run
 * of 128 values, its part of the panel (4 pairs of B tiles, 32 KiB) stays in L1 while every
 * block of 32 tokens passes (8 KiB of A each), the 2 x 2 sums of a pair and block going to
 * scratch between runs. So the tokens are read from L3 once per 128 rows, not once per 32 (which
 * held the first form to 20% of the tiles' peak), the weights are dequantized once, and the
 * tiles load from L1: runs of 512 values (A 32 KiB and B streaming through L1) ran 10-15% slower
 * (perf/README.md). */
void gemm_amx_rows(quant_panel_fn panel, int64_t n, const void *w, size_t tile_bytes,
                   size_t kc_bytes, int64_t n_rows, const uint16_t *act, int64_t n_tok, float *y,
                   size_t y_stride, void *scratch);

#endif
