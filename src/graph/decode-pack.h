/* Weights repacked once at load into tiles of QUANT_RP_ROWS interleaved rows (quant.h): every
 * quantized weight whose type has tile kernels at the ISA in use, layers and output head.
 *
 * Why: decode multiplies one token by every weight, so it is bound by how fast the GEMV walks the
 * weights; with rows laid out one by one the kernel's instructions, not DRAM, set that pace on
 * 2 cores (one thread streamed 13.7 GB/s against a one-thread STREAM of 24.4). The tiles
 * interleave 16 rows so that every 32-bit lane of a dot product belongs to one row, and the
 * scales of 16 rows come from one load (perf/bench-matmul: GEMV GB/s). Where the type also has a
 * tile GEMM for prompt batches (gemm_rp), the tiles replace the native rows: those pages of the
 * file's mapping are handed back after repacking, so resident memory stays near the file's size
 * and no dense copy is needed for prefill. Elsewhere (Q4_1 and Q8_0 on AVX-512, whose prompt
 * GEMMs read native rows) the tiles are a second copy. */
#ifndef ADAKV_DECODE_PACK_H
#define ADAKV_DECODE_PACK_H

#include <stddef.h>

#include "error.h"
#include "gguf.h"

struct decode_pack;

/* Repacks those of the n tensors of f whose type has tile kernels at the ISA in use, all threads
 * on each tensor. *out is NULL (and 0 returned) when none has; -1 with e set when out of memory. */
int decode_pack_create(const struct gguf_file *f, const struct gguf_tensor *const *w, int n,
                       struct decode_pack **out, struct adakv_err *e);
void decode_pack_free(struct decode_pack *p);

/* The repacked tiles of t (QUANT_RP_ROWS rows of t's native row size each), or NULL when t was
 * not repacked. */
const void *decode_pack_find(const struct decode_pack *p, const struct gguf_tensor *t);
size_t decode_pack_bytes(const struct decode_pack *p);
/* Native bytes whose pages were handed back because the tiles replace them. */
size_t decode_pack_released(const struct decode_pack *p);

#endif
