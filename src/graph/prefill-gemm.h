/* Prefill GEMMs through oneDNN: y[m][n_out] = x[m][n_in] W^T for batches of prompt tokens.
 *
 * Why: the quantized matmul of matmul.c streams Q4_1/Q8_0 blocks and is the right tool for decode
 * (one token: bandwidth-bound), but for a batch of hundreds of tokens it reaches ~130 GFLOP/s on
 * two cores, while oneDNN's brgemm kernels run dense f32 at ~470 and bf16 at ~930 GFLOP/s here
 * (../shared/design/perf.md 5.1). So at load every linear weight of the model is dequantized once
 * into oneDNN's own blocked layout (a reorder from the plain [n_out][n_in] rows: "prepacked"), and
 * one matmul primitive per weight, with the number of rows M left to run time, is created then and
 * reused for every chunk of every prompt; nothing is created per token.
 *
 * oneDNN runs its own OpenMP team (libgomp, shared with the engine), so prefill_gemm_run must be
 * called from the serial part of the forward pass: inside one of our parallel regions it would run
 * on one thread. */
#ifndef ADAKV_PREFILL_GEMM_H
#define ADAKV_PREFILL_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "gguf.h"

enum prefill_gemm_type { PREFILL_GEMM_F32, PREFILL_GEMM_BF16 };

/* Batches below this many rows stay on the quantized matmul (decode, short questions): a small
 * GEMM is bandwidth-bound like a GEMV, where the 4-bit weights read 3-6x fewer bytes. */
enum { PREFILL_GEMM_MIN_ROWS = 16 };

struct prefill_gemm;

/* Prepacks the n weights (any type with a dequantizer; 2-D, row-major [n_out][n_in]) with
 * n_threads threads. NULL with e set on a oneDNN failure or out of memory. */
struct prefill_gemm *prefill_gemm_create(enum prefill_gemm_type type,
                                         const struct gguf_tensor *const *w, int n, int n_threads,
                                         struct adakv_err *e);
void prefill_gemm_free(struct prefill_gemm *g);

/* Bytes held by the prepacked weights. */
size_t prefill_gemm_bytes(const struct prefill_gemm *g);
/* "f32" or "bf16". */
const char *prefill_gemm_name(const struct prefill_gemm *g);

/* Bytes of scratch prefill_gemm_run needs for up to m_cap rows of n_in inputs (the bf16 copy). */
size_t prefill_gemm_scratch_bytes(enum prefill_gemm_type type, int64_t n_in, int m_cap);

/* y[i][m][n_out_i] = x[m][n_in] W_i^T for the n_t <= PREFILL_GEMM_MULTI_MAX weights W_i given
 * at creation, all with n_in inputs (Q, K, V; gate, up: x is converted once for all of them),
 * on n_threads threads. x and every y[i] must hold m_cap >= m rows: M is rounded up to a
 * multiple of 64 (at most m_cap) for oneDNN's fast fixed-M kernels, so rows m.. of x (f32 type)
 * are zeroed and rows m.. of y[i] are written with nothing useful. 1 when some W_i is not one
 * of the weights or oneDNN offers no kernel for this M (nothing was computed: the caller uses
 * its own matmul), 0 on success, -1 with e set when oneDNN fails to run. Thread-safe. */
#define PREFILL_GEMM_MULTI_MAX 4
int prefill_gemm_run(struct prefill_gemm *g, const struct gguf_tensor *const *t, int n_t, float *x,
                     int m, int m_cap, float *const *y, void *scratch, int n_threads,
                     struct adakv_err *e);

#endif
