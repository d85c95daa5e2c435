/* Run-time choice of the press kernels (press-ops.h), expanded from the lists of kernels.h like
 * ops.c's tables: the scalar table reuses the attention score references of ops.h (the blocked
 * GEMMs implement the same contract), and an ISA without press kernels gets the reference. */
#include "press-ops.h"

#include <pthread.h>
#include <string.h>

#include "cpu.h"
#include "kernels-apply.h"

#define PRESS_SET(table, slot, symbol, need) PRESS_SET_##table(slot, symbol, need)
#define PRESS_SET_press(slot, symbol, need)                                                        \
    if (SIMD_NEED(f, need))                                                                        \
        t->slot = symbol;
#define PRESS_SET_ops(slot, symbol, need)
#define PRESS_SET_quant(slot, symbol, need)

static void press_build(struct press_ops *t, enum simd_isa isa, const struct simd_cpu_flags *f) {
    t->isa = simd_isa_name(isa);
    SIMD_KERNELS_APPLY(isa, PRESS_SET);
}

static struct press_ops tables[SIMD_ISA_COUNT];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_build(void) {
    for (int isa = 0; isa < SIMD_ISA_COUNT; isa++)
        press_build(&tables[isa], (enum simd_isa)isa, simd_cpu_flags());
}

static const struct press_ops *for_isa(enum simd_isa isa) {
    pthread_once(&tables_once, tables_build);
    return &tables[isa];
}

const struct press_ops *press_ops_scalar(void) {
    return for_isa(SIMD_ISA_SCALAR);
}

const struct press_ops *press_ops_best(void) {
    return for_isa(simd_isa());
}

const struct press_ops *press_ops_by_name(const char *name) {
    for (int isa = 0; isa < SIMD_ISA_COUNT; isa++)
        if (strcmp(simd_isa_name((enum simd_isa)isa), name) == 0)
            return simd_isa_available((enum simd_isa)isa) ? for_isa((enum simd_isa)isa) : NULL;
    return NULL;
}
