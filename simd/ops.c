/* Kernel tables for the forward pass, expanded from the lists of kernels.h: the scalar table is
 * the reference; an ISA table is built from it by applying that ISA's list (BLIS-style fallback).
 * Tables are static and read-only after the first call. */
#include "ops.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cpu.h"
#include "kernels-apply.h"

/* One list line: sets the op when it belongs to this table and the CPU flags f meet its need. */
#define OPS_SET(table, slot, symbol, need) OPS_SET_##table(slot, symbol, need)
#define OPS_SET_ops(slot, symbol, need)                                                            \
    if (SIMD_NEED(f, need))                                                                        \
        t->slot = symbol;
#define OPS_SET_press(slot, symbol, need)
#define OPS_SET_quant(slot, symbol, need)

/* Builds the table of `isa` for a CPU with flags f on top of the scalar table (the reference
 * alone for a level this build did not compile). */
static void ops_build(struct simd_ops *t, enum simd_isa isa, const struct simd_cpu_flags *f) {
    t->isa = simd_isa_name(isa);
    SIMD_KERNELS_APPLY(isa, OPS_SET);
}

/* [isa][0]: for this CPU's flags; [isa][1]: for the bare ISA level (simd_ops_variant). */
static struct simd_ops tables[SIMD_ISA_COUNT][2];
static char base_names[SIMD_ISA_COUNT][24];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_build(void) {
    static const struct simd_cpu_flags bare; /* every feature beyond the ISA level off */
    for (int isa = 0; isa < SIMD_ISA_COUNT; isa++) {
        ops_build(&tables[isa][0], (enum simd_isa)isa, simd_cpu_flags());
        ops_build(&tables[isa][1], (enum simd_isa)isa, &bare);
        snprintf(base_names[isa], sizeof base_names[isa], "%s-base",
                 simd_isa_name((enum simd_isa)isa));
        tables[isa][1].isa = base_names[isa];
    }
}

static const struct simd_ops *ops_for(enum simd_isa isa) {
    pthread_once(&tables_once, tables_build);
    return &tables[isa][0];
}

const struct simd_ops *simd_ops_scalar(void) {
    return ops_for(SIMD_ISA_SCALAR);
}

const struct simd_ops *simd_ops_best(void) {
    /* a level without a compiled list is never detected (cpu.h) */
    return ops_for(simd_isa());
}

const struct simd_ops *simd_ops_by_name(const char *name) {
    for (int isa = 0; isa < SIMD_ISA_COUNT; isa++) {
        if (strcmp(simd_isa_name((enum simd_isa)isa), name) != 0)
            continue;
        if (!simd_isa_available((enum simd_isa)isa))
            return NULL;
        return ops_for((enum simd_isa)isa);
    }
    return NULL;
}

/* Two tables differ when any op differs (the names always do). */
static bool same_kernels(const struct simd_ops *a, const struct simd_ops *b) {
    struct simd_ops x = *a, y = *b;
    x.isa = y.isa = NULL;
    return memcmp(&x, &y, sizeof x) == 0;
}

const struct simd_ops *simd_ops_variant(int i) {
    pthread_once(&tables_once, tables_build);
    for (int isa = SIMD_ISA_SCALAR + 1; isa < SIMD_ISA_COUNT; isa++) {
        if (!simd_isa_available((enum simd_isa)isa))
            continue;
        if (i-- == 0)
            return &tables[isa][0];
        if (!same_kernels(&tables[isa][0], &tables[isa][1]) && i-- == 0)
            return &tables[isa][1];
    }
    return NULL;
}
