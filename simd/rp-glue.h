/* Glue shared by the kernels over repacked tiles of every ISA (rp-*-avx2.c, rp-*-vnni.c,
 * rp-*-neon.c): the token passes of a gemm_rp, the per-type instances of the K-quant kernels and
 * the table entries of a tile group. Plain C macros and static inline, no intrinsics. */
#ifndef ADAKV_SIMD_RP_GLUE_H
#define ADAKV_SIMD_RP_GLUE_H

#include "cpu.h"
#include "quant.h"

/* The decode prefetch distance of the VNNI tile kernels in bytes: how far ahead of its loads a
 * core asks for the weights it streams. It depends on the core and on where the weights come
 * from: the Zen 5 VM streamed fastest 8 KiB ahead (rp-q45k-vnni.c: the head GEMV at 61 GB/s
 * against 40 at 1.5 KiB); the Sapphire Rapids VM streams from DRAM fastest 2 KiB ahead (1B
 * Q4_K_M decode 31.7 -> 36.5 t/s, Q4_0 25.8 -> 37.5, Q8_0 21.2 -> 22.8 against 8 KiB; 4 KiB
 * 31-33, 1 KiB 36 on Q4_0), but from its L3 8 KiB ahead (the default model, 92 MiB of weights
 * in a 480 MiB L3: 450 t/s against 390 at 2 KiB; Gemma 3 270M, 235 MiB: 110 against 117);
 * `adakv-bench -p 0 -n 64 -r 3`, chrt, alternating builds. simd_decode_prefetch holds the choice
 * (cpu.h): 0 for the distance each kernel file was tuned at (`other` bytes). */
static inline size_t rp_prefetch_distance(size_t other) {
    const size_t d = atomic_load_explicit(&simd_decode_prefetch, memory_order_relaxed);
    return d ? d : other;
}

/* Runs PASS(t, nt) for the tokens [t, t + nt) of n_tok: 4 at a time, then one pass for the 1 to
 * 3 left, nt a literal in every call so that each inlined pass is compiled for its token count
 * (each unpacked weight vector serves all of a pass's tokens). */
#define RP_TOKEN_PASSES(n_tok, PASS)                                                               \
    do {                                                                                           \
        int64_t t_ = 0;                                                                            \
        for (; t_ + 4 <= (n_tok); t_ += 4)                                                         \
            PASS(t_, 4);                                                                           \
        switch ((n_tok)-t_) {                                                                      \
        case 3:                                                                                    \
            PASS(t_, 3);                                                                           \
            break;                                                                                 \
        case 2:                                                                                    \
            PASS(t_, 2);                                                                           \
            break;                                                                                 \
        case 1:                                                                                    \
            PASS(t_, 1);                                                                           \
            break;                                                                                 \
        default:                                                                                   \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

/* gemv_q4_k_rp, gemv_q5_k_rp, gemm_q4_k_rp and gemm_q5_k_rp over the including file's gemv_k and
 * gemm_k, whose last argument says whether the type has the fifth bit (Q5_K). */
#define RP_K45_KERNELS                                                                             \
    static void gemv_q4_k_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,   \
                             const void *restrict act, float *restrict y) {                        \
        gemv_k(n, w, w_stride, n_rows, act, y, 0);                                                 \
    }                                                                                              \
    static void gemv_q5_k_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,   \
                             const void *restrict act, float *restrict y) {                        \
        gemv_k(n, w, w_stride, n_rows, act, y, 1);                                                 \
    }                                                                                              \
    static void gemm_q4_k_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,   \
                             const void *restrict act, size_t act_stride, int64_t n_tok,           \
                             float *restrict y, size_t y_stride) {                                 \
        gemm_k(n, w, w_stride, n_rows, act, act_stride, n_tok, y, y_stride, 0);                    \
    }                                                                                              \
    static void gemm_q5_k_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,   \
                             const void *restrict act, size_t act_stride, int64_t n_tok,           \
                             float *restrict y, size_t y_stride) {                                 \
        gemm_k(n, w, w_stride, n_rows, act, act_stride, n_tok, y, y_stride, 1);                    \
    }

/* Sets a K-quant type's tile group: the kernels read plain Q8_K rows, so pack_act is the table's
 * own Q8_K quantizer (bit-exact with llama.cpp's, whichever ISA's it is); rp_tile NULL keeps the
 * layout an earlier fill set (the VNNI kernels read the AVX2 group's tiles). */
static inline void rp_k_set_group(struct quant_kernels *k, quant_rp_tile_fn rp_tile,
                                  quant_gemv_rp_fn gemv_rp, quant_gemm_fn gemm_rp) {
    k->pack_act = k->quantize_act;
    if (rp_tile)
        k->rp_tile = rp_tile;
    k->gemv_rp = gemv_rp;
    k->gemm_rp = gemm_rp;
}

#endif
