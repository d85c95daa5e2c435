/* Weights repacked once at load for the decode GEMV (quant.h: QUANT_RP_ROWS): Q4_1 layer weights
 * and a Q8_0 output head.
 *
 * Why: decode multiplies one token by every weight, so it is bound by how fast the GEMV walks the
 * weights; with rows laid out one by one the kernel's instructions, not DRAM, set that pace on
 * 2 cores (one thread streamed 13.7 GB/s against a one-thread STREAM of 24.4). The native Q4_1
 * block (f16 scale, f16 minimum, 16 bytes of nibbles: 20 bytes) makes the kernel widen two f16
 * values per block and row and sum each row's lanes; the repacked tiles interleave 16 rows so
 * that every 32-bit lane of a dot product belongs to one row, and 16 scales come from one load
 * (perf/bench-matmul: GEMV GB/s). The copy costs those weights' bytes again (66 MB of Q4_1 and
 * 28 MB of head for the default model) and is made only where the ISA has the kernels (AVX-512
 * VNNI). */
#ifndef ADAKV_DECODE_PACK_H
#define ADAKV_DECODE_PACK_H

#include <stddef.h>

#include "error.h"
#include "gguf.h"

struct decode_pack;

/* Repacks those of the n tensors whose type has a repacked decode kernel at the ISA in use.
 * *out is NULL (and 0 returned) when none has; -1 with e set when out of memory. */
int decode_pack_create(const struct gguf_tensor *const *w, int n, struct decode_pack **out,
                       struct adakv_err *e);
void decode_pack_free(struct decode_pack *p);

/* The repacked tiles of t (QUANT_RP_ROWS rows of t's native row size each), or NULL when t was
 * not repacked. */
const void *decode_pack_find(const struct decode_pack *p, const struct gguf_tensor *t);
size_t decode_pack_bytes(const struct decode_pack *p);

#endif
