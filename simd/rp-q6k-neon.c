/* Q6_K over repacked tiles (layout: repack-q6k.c, the one the AVX2 kernels read), NEON with SDOT
 * (Armv8.2 dotprod): gemv_rp for decode, gemm_rp for prompt batches, against llama.cpp's Q8_K
 * activations (pack_act = the table's quantize_act, bit-exact with quantize_row_q8_K_ref). The
 * dispatcher installs them only where the CPU has SDOT (HWCAP_ASIMDDP).
 *
 * One 32-bit lane is one row, 4 rows per vector (a row group; a tile is 4). Per sub-block of 16
 * values and row group, 3 loads give 4 vectors of 4 unsigned quants q (0..63) per row: three
 * ANDs for steps 0..2, and for the fourth the 2-bit pieces in bits 6-7 of the three steps
 * gathered by two shift-right-inserts and a shift (q(12 + j) = piece0 | piece1 << 2 |
 * piece2 << 4). Vector s meets activation bytes 4 s .. 4 s + 3 of the sub-block, lane s of one
 * 16-byte load, in an SDOT by element. Q6_K's offset, sum (q - 32) a = sum q a - 32 sum a,
 * comes from the Q8_K bsums, which are exactly the sub-block sums: each sub-block's accumulator
 * starts at -32 * bsums[g], then its exact dot is multiplied by the rows' int8 scales widened
 * to s32 lanes. Each super-block's integer dot is exact in int32 and is scaled as
 * dot_q6_k_q8_k scales it, (d * a.d) * (float)dot, then added in super-block order.
 *
 * Bounds (q in 0..63, Q8_K quants in [-127, 127], scales in -128..127): SDOT adds s8 x s8
 * products in s32 lanes, nothing narrower. A sub-block's accumulator passes through at most
 * 32 * 16 * 127 (the offset start) + 16 * 63 * 127 = 193,040 in magnitude and ends at
 * |sum (q - 32) a| <= 16 * 32 * 127 = 65,024; times a scale 8,323,072, over 16 sub-blocks
 * < 1.4e8 < 2^31. */
#include <arm_neon.h>

#include "neon-rp.h"
#include "quant.h"
#include "rp-glue.h"

/* The record of one super-block of a tile (repack-q6k.c). */
enum {
    R = QUANT_RP_ROWS,
    G = 4,                          /* rows per int32x4: a row group */
    NG = R / G,                     /* row groups per tile */
    SC_OFF = 2 * R,                 /* after the 16 f16 d */
    Q_OFF = SC_OFF + QK_K / 16 * R, /* after the 16 x 16 transposed scales */
    STEP = 4 * R,                   /* 4 quant bytes of each row */
    SUB = 3 * STEP,                 /* one 16-value sub-block */
    REC = R * sizeof(struct block_q6_k),
    NT = 4, /* tokens per gemm pass over a row group: each unpacked vector serves 4 */
};
_Static_assert(Q_OFF + QK_K / 16 * SUB == REC, "a record holds 16 native blocks' bytes");

#define INLINE static inline __attribute__((always_inline))
/* Complete unrolling of the short fixed-count loops over steps, row groups and tokens: it keeps
 * the accumulator arrays in registers and makes every SDOT lane an immediate (at -O2 GCC left
 * such loops rolled, with the accumulators going through the stack on every step). */
#define UNROLL _Pragma("GCC unroll 16")

/* The quants of one sub-block and row group (q at its first step) as 4 vectors, value 4 s + j of
 * the sub-block in byte j of vector s. Steps 0..2 carry values 0..11 in their low 6 bits and
 * the 2-bit pieces of values 12..15 in their top 2 bits: SRI keeps the top bits of its first
 * operand and shifts the second in below them, so the pieces of steps 2, 1, 0 end up at bits
 * 6-7, 4-5, 2-3 (with junk below), and a final shift by 2 puts them at 4-5, 2-3, 0-1. */
INLINE void unpack(const uint8_t *q, uint8x16_t w[4]) {
    const uint8x16_t m6 = vdupq_n_u8(0x3f);
    const uint8x16_t l0 = vld1q_u8(q), l1 = vld1q_u8(q + STEP), l2 = vld1q_u8(q + 2 * STEP);
    w[0] = vandq_u8(l0, m6);
    w[1] = vandq_u8(l1, m6);
    w[2] = vandq_u8(l2, m6);
    w[3] = vshrq_n_u8(vsriq_n_u8(vsriq_n_u8(l2, l1, 2), l0, 4), 2);
}

/* The int8 scales of sub-block g of row group rg as s32 lanes. */
INLINE int32x4_t scales_s32(const uint8_t *rec, int g, int rg) {
    const int8x16_t v = vld1q_s8((const int8_t *)(rec + SC_OFF + R * g));
    const int16x8_t h = rg < 2 ? vmovl_s8(vget_low_s8(v)) : vmovl_high_s8(v);
    return rg & 1 ? vmovl_high_s16(h) : vmovl_s16(vget_low_s16(h));
}

/* acc[gi * nt + t] = the dots of rows 4 (g0 + gi) .. + 3 of the tile with token t, gi < ng,
 * t < nt. Each unpacked quant vector and each scale vector serves all nt tokens. No software
 * prefetch: the records are read front to back, which the stream prefetchers of Cortex-A /
 * Neoverse cores follow (untested on hardware; x86 needed one on Zen 3). */
INLINE void tile_pass(const uint8_t *tile, int64_t nb, int g0, int ng,
                      const struct block_q8_k *const *act, int nt, float32x4_t *acc) {
    UNROLL
    for (int k = 0; k < ng * nt; k++)
        acc[k] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *rec = tile + b * REC;
        int32x4_t si[NG * NT];
        UNROLL
        for (int k = 0; k < ng * nt; k++)
            si[k] = vdupq_n_s32(0);
        for (int g = 0; g < QK_K / 16; g++) {
            step_barrier();
            int8x16_t av[NT];
            int32x4_t start[NT];
            UNROLL
            for (int t = 0; t < nt; t++) {
                av[t] = vld1q_s8(act[t][b].qs + 16 * g);
                start[t] = vdupq_n_s32(-32 * act[t][b].bsums[g]);
            }
            UNROLL
            for (int gi = 0; gi < ng; gi++) {
                uint8x16_t w[4];
                unpack(rec + Q_OFF + SUB * g + 16 * (g0 + gi), w);
                const int32x4_t sc = scales_s32(rec, g, g0 + gi);
                UNROLL
                for (int t = 0; t < nt; t++) {
                    int32x4_t d = sdot_lane(start[t], w[0], av[t], 0);
                    d = sdot_lane(d, w[1], av[t], 1);
                    d = sdot_lane(d, w[2], av[t], 2);
                    d = sdot_lane(d, w[3], av[t], 3);
                    si[gi * nt + t] = vmlaq_s32(si[gi * nt + t], d, sc);
                }
            }
        }
        UNROLL
        for (int gi = 0; gi < ng; gi++) {
            const float32x4_t d = f16x4(rec + 2 * G * (g0 + gi));
            UNROLL
            for (int t = 0; t < nt; t++) {
                const int k = gi * nt + t;
                const float32x4_t da = vmulq_n_f32(d, act[t][b].d);
                acc[k] = vaddq_f32(acc[k], vmulq_f32(da, vcvtq_f32_s32(si[k])));
            }
        }
    }
}

/* One token: all row groups in one pass, so the tile streams from memory once, in order. */
static void gemv_q6_k_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                         const void *restrict act, float *restrict y) {
    const struct block_q8_k *a[1] = {act};
    for (int64_t r = 0; r < n_rows; r += R) {
        float32x4_t acc[NG];
        tile_pass((const uint8_t *)w + (size_t)r * w_stride, n / QK_K, 0, NG, a, 1, acc);
        UNROLL
        for (int g = 0; g < NG; g++)
            store_rows(y + r + G * g, acc[g], n_rows - r - G * g);
    }
}

/* Tokens t0 .. t0 + nt - 1 of one row group of a tile (nt a constant in each call below). */
INLINE void gemm_group(const uint8_t *tile, int64_t nb, int g, const uint8_t *act,
                       size_t act_stride, int64_t t0, int nt, float *y, size_t y_stride,
                       int64_t rows) {
    const struct block_q8_k *a[NT];
    UNROLL
    for (int t = 0; t < nt; t++)
        a[t] = (const void *)(act + (size_t)(t0 + t) * act_stride);
    float32x4_t acc[NT];
    tile_pass(tile, nb, g, 1, a, nt, acc);
    UNROLL
    for (int t = 0; t < nt; t++)
        store_rows(y + (size_t)(t0 + t) * y_stride, acc[t], rows);
}

/* Many tokens: per row group of a tile (6.6 KiB of quants at n = 2048, cached after the first
 * pass), NT tokens per pass, so the unpacking is shared by NT tokens. */
static void gemm_q6_k_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                         const void *restrict act, size_t act_stride, int64_t n_tok,
                         float *restrict y, size_t y_stride) {
    const int64_t nb = n / QK_K;
    for (int64_t r = 0; r < n_rows; r += R) {
        const uint8_t *tile = (const uint8_t *)w + (size_t)r * w_stride;
        for (int g = 0; g < NG && r + G * g < n_rows; g++) {
            const int64_t rows = n_rows - r - G * g;
            float *yg = y + r + G * g;
#define PASS(t, nt) gemm_group(tile, nb, g, act, act_stride, (t), nt, yg, y_stride, rows)
            RP_TOKEN_PASSES(n_tok, PASS);
#undef PASS
        }
    }
}

void quant_fill_rp_q6k_neon(struct quant_kernels *t) {
    rp_k_set_group(&t[TENSOR_TYPE_Q6_K], quant_q6_k_rp_tile, gemv_q6_k_rp, gemm_q6_k_rp);
}
