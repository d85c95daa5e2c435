/* The kernel lists: one per ISA (kernels-<isa>.h), one line per kernel. A line is the only place a
 * kernel is registered: the declarations (ops.h, press-ops.h, quant.h), the dispatch tables
 * (ops.c, press-ops.c, quant-dispatch.c) and the tables the tests iterate over are all expanded
 * from these lines, so adding a kernel is one line in its ISA's list plus its file.
 *
 * A line is K(table, slot, symbol, need):
 *   table   ops (struct simd_ops of ops.h), press (struct press_ops of press-ops.h) or quant (a
 *           filler of quant.h's weight-kernel table, void symbol(struct quant_kernels *t), that
 *           sets the entries its file implements);
 *   slot    the struct field the kernel fills (quant: fill);
 *   symbol  the function: <op>__<isa>[variant] (ops, press), quant_fill_<file> (quant);
 *   need    a CPU feature beyond the list's ISA level, a struct simd_cpu_flags field
 *           (avx512_vnni, avx512_bf16, neon_dotprod), or base when the ISA level is enough.
 *
 * A table of ISA X is the scalar list's table with X's list applied in order, skipping the lines
 * whose need this CPU lacks: a later line replaces an earlier one of the same slot (the VNNI
 * variants after the plain ones), and a slot that X's list leaves out keeps the reference
 * (BLIS-style fallback). A list may name another ISA's kernel that its CPUs run (the AVX-512
 * list takes the AVX2 GEGLU and weight kernels it has no better form of).
 *
 * This header is macros only: ISA-flagged objects include it through ops.h and quant.h. */
#ifndef ADAKV_SIMD_KERNELS_H
#define ADAKV_SIMD_KERNELS_H

#include "kernels-avx2.h"
#include "kernels-avx512.h"
#include "kernels-neon.h"
#include "kernels-scalar.h"

/* The lists' needs, on a struct simd_cpu_flags *: a table built with all-false flags is the one a
 * CPU with the bare ISA level gets (tests run it to reach the kernels the features replace). */
#define SIMD_NEED(f, need)        SIMD_NEED_##need(f)
#define SIMD_NEED_base(f)         ((void)(f), 1)
#define SIMD_NEED_avx512_vnni(f)  ((f)->avx512_vnni)
#define SIMD_NEED_avx512_bf16(f)  ((f)->avx512_bf16)
#define SIMD_NEED_neon_dotprod(f) ((f)->neon_dotprod)

/* Every list, for expansions that do not depend on the ISA (declarations). */
#define SIMD_KERNELS_ALL(K)                                                                        \
    SIMD_KERNELS_SCALAR(K) SIMD_KERNELS_AVX2(K) SIMD_KERNELS_AVX512(K) SIMD_KERNELS_NEON(K)

#endif
