/* Builds one weight-kernel table per ISA level, once, from the lists of kernels.h: the scalar
 * reference first, then the ISA's fillers in list order (BLIS style), each overwriting the
 * entries it implements, so any kernel an ISA lacks falls back to the one before it.
 * Read-only after construction. A filler is itself compiled for its ISA (the compiler may use its
 * vector stores), so a level's table is only built on a CPU that runs it: elsewhere (an AVX2-only
 * CPU, valgrind, which hides AVX-512) it keeps the reference, and simd_isa() never selects it. */
#include <pthread.h>

#include "kernels-apply.h"
#include "quant.h"

#define QUANT_FILL(table, slot, symbol, need) QUANT_FILL_##table(symbol, need)
#define QUANT_FILL_quant(symbol, need)                                                             \
    if (SIMD_NEED(f, need))                                                                        \
        symbol(t);
#define QUANT_FILL_ops(symbol, need)
#define QUANT_FILL_press(symbol, need)

void quant_kernels_build(struct quant_kernels *t, enum simd_isa isa,
                         const struct simd_cpu_flags *f) {
    SIMD_KERNELS_APPLY(isa, QUANT_FILL);
}

static struct quant_kernels tables[SIMD_ISA_COUNT][QUANT_TYPE_TABLE_SIZE];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_build(void) {
    for (int isa = 0; isa < SIMD_ISA_COUNT; isa++)
        quant_kernels_build(tables[isa],
                            simd_isa_available((enum simd_isa)isa) ? (enum simd_isa)isa
                                                                   : SIMD_ISA_SCALAR,
                            simd_cpu_flags());
}

const struct quant_kernels *quant_kernels_isa(uint32_t type, enum simd_isa isa) {
    if (type >= QUANT_TYPE_TABLE_SIZE || isa >= SIMD_ISA_COUNT)
        return NULL;
    pthread_once(&tables_once, tables_build);
    const struct quant_kernels *k = &tables[isa][type];
    return k->dequant_row ? k : NULL;
}

const struct quant_kernels *quant_kernels(uint32_t type) {
    return quant_kernels_isa(type, simd_isa());
}
