/* Kernel tables for the forward pass, expanded from the lists of kernels.h: the scalar table is
 * the reference; an ISA table is built from it by applying that ISA's list (BLIS-style fallback).
 * Tables are static and read-only after the first call. */
#include "ops.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "cpu.h"

#if defined(ADAKV_BUILD_AVX512) && !defined(ADAKV_BUILD_AVX2)
#error "the AVX-512 list takes AVX2 kernels: configure builds both or neither"
#endif

/* One list line: sets the op when it belongs to this table and the CPU flags f meet its need. */
#define OPS_SET(table, slot, symbol, need) OPS_SET_##table(slot, symbol, need)
#define OPS_SET_ops(slot, symbol, need)                                                            \
    if (SIMD_NEED(f, need))                                                                        \
        t->slot = symbol;
#define OPS_SET_press(slot, symbol, need)
#define OPS_SET_quant(slot, symbol, need)

/* Builds the table of `isa` for a CPU with flags f on top of the scalar table (NULL for a level
 * this build has no list for). */
static void ops_build(struct simd_ops *t, enum simd_isa isa, const struct simd_cpu_flags *f) {
    SIMD_KERNELS_SCALAR(OPS_SET)
    t->isa = simd_isa_name(isa);
    switch (isa) {
#ifdef ADAKV_BUILD_AVX2
    case SIMD_ISA_AVX2:
        SIMD_KERNELS_AVX2(OPS_SET)
        break;
#endif
#ifdef ADAKV_BUILD_AVX512
    case SIMD_ISA_AVX512:
        SIMD_KERNELS_AVX512(OPS_SET)
        break;
#endif
#ifdef ADAKV_BUILD_NEON
    case SIMD_ISA_NEON:
        SIMD_KERNELS_NEON(OPS_SET)
        break;
#endif
    default:
        break;
    }
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
