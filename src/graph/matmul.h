/* The linear-layer product every forward pass step uses: Y = X W^T for a weight matrix stored in
 * any supported ggml type (rows of n_in values, quantized in blocks along the row).
 *
 * Numerics follow llama.cpp: X is first quantized to the weight type's activation type (see
 * simd/quant.h), then each weight row is dotted with each quantized activation row by the
 * dispatched kernel of the ISA in use. matmul_ref is the plain reference for tests: dequantized
 * weights times the unquantized f32 activations, accumulated in double. */
#ifndef ADAKV_MATMUL_H
#define ADAKV_MATMUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor-type.h" /* type ids and row sizes of the weights it takes */

struct matmul_weight {
    uint32_t type;    /* ggml type id of W (enum tensor_type) */
    int64_t n_in;     /* values per row; a multiple of the type's block size */
    int64_t n_out;    /* rows */
    const void *data; /* [n_out] rows of row_bytes, no alignment required */
    size_t row_bytes; /* stride between rows, >= the row size of n_in values */
    /* Optional copy of the rows repacked for decode in tiles of QUANT_RP_ROWS rows (quant.h,
     * QUANT_RP_ROWS), the type's native row size per row, or NULL. Used for one token where the ISA
     * has a gemv_rp kernel. */
    const void *rp;
    /* Prompt batches over rp may run on AMX tiles in bf16 (gemm-amx.h) where the CPU has them:
     * the model's --prefill-gemm auto. False keeps llama.cpp's 8-bit activations. */
    bool amx;
};

/* True when W of this type can be multiplied (a weight type with kernels). */
bool matmul_type_supported(uint32_t type);

/* Workspace bytes matmul() needs for n_tok activation rows (the quantized copy of X) in parallel
 * regions of up to n_threads threads (a few tokens are packed by every thread into its own part).
 */
size_t matmul_ws_size(uint32_t type, int64_t n_in, int64_t n_tok, int n_threads);

/* Y[t][o] = sum_i W[o][i] * X[t][i] for t < n_tok: X is [n_tok][n_in] f32, Y is [n_tok][n_out]
 * f32. ws: caller-owned, matmul_ws_size(type, n_in, n_tok, n_threads) bytes, n_threads at least
 * the OpenMP team of the calling thread; nothing is allocated inside. Threaded with OpenMP: call
 * it from outside any parallel region. Decode (few tokens) splits
 * output rows across threads; prefill tiles rows x tokens so that a block of weight rows is
 * reused across many tokens while it is in cache. Preconditions are asserted, not checked:
 * the model loader validates types and shapes once. GGUF tensors are 32-byte aligned and every
 * block size is even, so rows of a mapped tensor always meet the alignment; SIMD loads are
 * unaligned, so nothing more is needed. */
void matmul(const struct matmul_weight *w, const float *x, int64_t n_tok, float *y, void *ws);

/* Several products of the same X, y[i] = X w[i]^T (Q, K and V; gate and up): X is packed once
 * (a few tokens: once by each thread) and all tiles run in one parallel region, one barrier instead
 * of one per weight, which is most of a decode step's synchronisation. Same results as matmul() per
 * weight, bit for bit. Weights of different types or row lengths, or without a blocked kernel, fall
 * back to one matmul() each. ws: the largest matmul_ws_size of the weights for n_tok and the team.
 * n_w <= MATMUL_MULTI_MAX. */
#define MATMUL_MULTI_MAX 4
void matmul_multi(const struct matmul_weight *const *w, int n_w, const float *x, int64_t n_tok,
                  float *const *y, void *ws);

/* Row t of a product's X (n_in f32 values) made on demand into out: a step before the product
 * fused into it (matmul_multi_rows). Called from several threads at once. */
typedef void (*matmul_row_fn)(void *ctx, int64_t t, float *out);

/* matmul_multi over the rows row(ctx, t, .) makes for t < n_tok. Where they go straight to the
 * AMX tiles' bf16 copy (gemm-amx.h), each is made into a thread's own f32 row and packed, so no
 * f32 copy of the batch is written and read back (the FFN's SwiGLU into the down projection: 16
 * MB a layer at a 1B pp512, about 2% of it: perf/README.md); elsewhere they are made into x (n_tok
 * x n_in f32; out is then x's row t itself, so a producer that reads its own row of x must work
 * in place) and this is matmul_multi(w, n_w, x, ...). Same results as making the rows first, bit
 * for bit. */
void matmul_multi_rows(const struct matmul_weight *const *w, int n_w, matmul_row_fn row, void *ctx,
                       float *x, int64_t n_tok, float *const *y, void *ws);

/* Plain reference: dequantize each row, dot with the f32 row of X in double. Single-threaded.
 * Returns -1 (e set) only when its row buffer cannot be allocated or the type is unsupported. */
int matmul_ref(const struct matmul_weight *w, const float *x, int64_t n_tok, float *y,
               struct adakv_err *e);

#endif
