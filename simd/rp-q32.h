/* What the kernels over repacked tiles of the 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1,
 * Q8_0) share whatever their ISA (rp-q32-avx2.c, rp-q32-neon.c, rp-q32x-vnni.c): the type's
 * kind, the offsets inside a tile's block chunk (layouts: quant-repack.c), the packed activation
 * row they read, and the per-type instances and table fill. Plain C (static inline and macros,
 * all folded to constants per kind); the ISA files write the loops. */
#ifndef ADAKV_SIMD_RP_Q32_H
#define ADAKV_SIMD_RP_Q32_H

#include <stddef.h>
#include <stdint.h>

#include "quant.h"

#define INLINE static inline __attribute__((always_inline))

enum kind { K_Q4_0, K_Q4_1, K_Q5_0, K_Q5_1, K_Q8_0 };

INLINE int has_min(enum kind k) {
    return k == K_Q4_1 || k == K_Q5_1;
}
INLINE int is_q5(enum kind k) {
    return k == K_Q5_0 || k == K_Q5_1;
}
/* The value the unsigned quants are stored above (Q4_0: q - 8, Q5_0: q - 16). */
INLINE int32_t offset_of(enum kind k) {
    return k == K_Q4_0 ? 8 : k == K_Q5_0 ? 16 : 0;
}
/* Native block bytes: a tile's block chunk is QUANT_RP_ROWS of them. */
INLINE size_t block_bytes(enum kind k) {
    static const size_t b[] = {sizeof(struct block_q4_0), sizeof(struct block_q4_1),
                               sizeof(struct block_q5_0), sizeof(struct block_q5_1),
                               sizeof(struct block_q8_0)};
    return b[k];
}
/* Offsets inside a block chunk (quant-repack.c): f16 d at 0, f16 m, the qh words, the qs steps. */
INLINE size_t off_m(void) {
    return 2 * QUANT_RP_ROWS;
}
INLINE size_t off_qh(enum kind k) {
    return 2 * QUANT_RP_ROWS * (size_t)(1 + has_min(k));
}
INLINE size_t off_qs(enum kind k) {
    return off_qh(k) + 4 * QUANT_RP_ROWS * (size_t)is_q5(k);
}

/* ---- the packed activation row ----
 * pack_act of every type here writes, for nb = n / 32 blocks:
 *   int8 q[nb * 32]  the activation type's quants in element order (block b at 32 b),
 *   f32  d[nb]       its f16 block scales as f32,
 *   then nb 4-byte words: Q4_1/Q5_1: f32 of Q8_1's f16 s (= d * sum(q), the minimum term);
 *                         Q4_0/Q5_0: int32 offset * sum(q) (exact); Q8_0: int32 0.
 * 40 bytes per block, within matmul.c's ws_row_bytes (at least quant_pack_bytes(n)). The
 * quantization is the table's own quantize_act, so it is bit for bit the one vec_dot sees. */
struct act_row {
    const int8_t *q;
    const float *d, *s;
    const int32_t *o;
};

INLINE struct act_row act_view(const void *p, int64_t nb) {
    struct act_row a;
    a.q = p;
    a.d = (const float *)(const void *)(a.q + nb * QK);
    a.s = a.d + nb;
    a.o = (const int32_t *)(const void *)(a.d + nb);
    return a;
}

/* gemv_<type>_rp and gemm_<type>_rp of one kind, over the including file's gemv_kind and
 * gemm_kind. */
#define RP_Q32_KERNELS(NAME, KIND)                                                                 \
    static void gemv_##NAME##_rp(int64_t n, const void *restrict w, size_t w_stride,               \
                                 int64_t n_rows, const void *restrict act, float *restrict y) {    \
        gemv_kind(KIND, n, w, w_stride, n_rows, act, y);                                           \
    }                                                                                              \
    static void gemm_##NAME##_rp(int64_t n, const void *restrict w, size_t w_stride,               \
                                 int64_t n_rows, const void *restrict act, size_t act_stride,      \
                                 int64_t n_tok, float *restrict y, size_t y_stride) {              \
        gemm_kind(KIND, n, w, w_stride, n_rows, act, act_stride, n_tok, y, y_stride);              \
    }

/* The activation quantizers of the table being filled (static in quant-<isa>.c), read by the
 * including file's pack_act_kind; every ISA's is bit-exact with the scalar reference, so whichever
 * one is read packs the same bytes. Set by the fill function of RP_Q32_ALL. */
static __attribute__((unused)) quant_quantize_row_fn quantize_q8_0_act, quantize_q8_1_act;

/* Every instance of the five types over the including file's pack_act_kind, gemv_kind and
 * gemm_kind, and the fill function FILL that sets their tile group (pack_act, rp_tile, gemv_rp,
 * gemm_rp) together. Q5_1 packs as Q4_1 (same activation type, no offset). */
#define RP_Q32_ALL(FILL)                                                                           \
    static void pack_act_q4_0(const float *restrict x, void *restrict dst, int64_t n) {            \
        pack_act_kind(K_Q4_0, x, dst, n);                                                          \
    }                                                                                              \
    static void pack_act_q4_1(const float *restrict x, void *restrict dst, int64_t n) {            \
        pack_act_kind(K_Q4_1, x, dst, n);                                                          \
    }                                                                                              \
    static void pack_act_q5_0(const float *restrict x, void *restrict dst, int64_t n) {            \
        pack_act_kind(K_Q5_0, x, dst, n);                                                          \
    }                                                                                              \
    static void pack_act_q8_0(const float *restrict x, void *restrict dst, int64_t n) {            \
        pack_act_kind(K_Q8_0, x, dst, n);                                                          \
    }                                                                                              \
    RP_Q32_KERNELS(q4_0, K_Q4_0)                                                                   \
    RP_Q32_KERNELS(q4_1, K_Q4_1)                                                                   \
    RP_Q32_KERNELS(q5_0, K_Q5_0)                                                                   \
    RP_Q32_KERNELS(q5_1, K_Q5_1)                                                                   \
    RP_Q32_KERNELS(q8_0, K_Q8_0)                                                                   \
    void FILL(struct quant_kernels *t) {                                                           \
        quantize_q8_0_act = t[TENSOR_TYPE_Q8_0].quantize_act;                                      \
        quantize_q8_1_act = t[TENSOR_TYPE_Q4_1].quantize_act;                                      \
        RP_Q32_SET(TENSOR_TYPE_Q4_0, pack_act_q4_0, q4_0)                                          \
        RP_Q32_SET(TENSOR_TYPE_Q4_1, pack_act_q4_1, q4_1)                                          \
        RP_Q32_SET(TENSOR_TYPE_Q5_0, pack_act_q5_0, q5_0)                                          \
        RP_Q32_SET(TENSOR_TYPE_Q5_1, pack_act_q4_1, q5_1)                                          \
        RP_Q32_SET(TENSOR_TYPE_Q8_0, pack_act_q8_0, q8_0)                                          \
    }
#define RP_Q32_SET(TYPE, PACK, NAME)                                                               \
    t[TYPE].pack_act = PACK;                                                                       \
    t[TYPE].rp_tile = quant_##NAME##_rp_tile;                                                      \
    t[TYPE].gemv_rp = gemv_##NAME##_rp;                                                            \
    t[TYPE].gemm_rp = gemm_##NAME##_rp;

#endif
