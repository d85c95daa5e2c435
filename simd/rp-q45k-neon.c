/* NEON kernels with SDOT (Armv8.2 dotprod) over repacked Q4_K and Q5_K tiles (layout:
 * repack-q45k.c, the one the AVX2 kernels read): gemv_rp for one token, gemm_rp for many,
 * against llama.cpp's Q8_K activations made by the table's (scalar, bit-exact) quantize_q8_k.
 * The dispatcher installs them only where the CPU has SDOT (HWCAP_ASIMDDP).
 *
 * A 16-byte slice of a qs step holds 4 bytes of each of 4 rows (a row group; a tile is 4), one
 * row per 32-bit lane. Its low nibbles (Q5_K: with the fifth bit from the qh step inserted at
 * bit 4) are 4 weights of sub-block 2c of every row, its high nibbles 4 weights of sub-block
 * 2c + 1; SDOT by element against the matching 4 activation bytes (one lane of a 16-byte vector
 * of the Q8_K row) adds each row's products into its lane. The 8 steps of a chunk give each
 * row's two sub-block dots q_j . a_j in s32, which are multiplied by the rows' 6-bit scales
 * widened to s32 lanes and summed into si = sum_j sc_j (q_j . a_j) per super-block. The minimum
 * term sm = sum_j m_j B_j (B_j = bsums[2j] + bsums[2j + 1], the activation sum of sub-block j)
 * is one widening multiply-add of the rows' minimums (s16) by B_j per sub-block. Per super-block
 * and row: acc += d * a.d * si - dmin * a.d * sm, dot_q4_k_q8_k's integers and float products in
 * its order; only the sum over super-blocks and rows is arranged differently.
 *
 * Bounds: SDOT multiplies s8 by s8 into s32 lanes, so nothing narrower can saturate. The
 * unsigned weights are <= 15 (Q4_K) or 31 (Q5_K), the Q8_K quants in [-127, 127]: a sub-block
 * dot is at most 32 * 31 * 127 = 125,984 in magnitude, times a 6-bit scale 7,936,992, and
 * si over 8 sub-blocks < 6.4e7 < 2^31. |sm| <= 8 * 63 * 32 * 127 = 2,048,256; |B_j| <= 4,064 and
 * the minimums (<= 63) fit s16, as vmlal_n_s16 wants. si and sm are converted to float once per
 * super-block, as in the reference. */
#include <arm_neon.h>

#include "neon-rp.h"
#include "quant.h"
#include "rp-glue.h"

#define INLINE static inline __attribute__((always_inline))
/* Complete unrolling of the short fixed-count loops over steps, row groups and tokens: it keeps
 * the accumulator arrays in registers and makes every SDOT lane an immediate (at -O2 GCC left
 * such loops rolled, with the accumulators going through the stack on every step). */
#define UNROLL _Pragma("GCC unroll 16")
#define ROLLED _Pragma("GCC unroll 1")

enum {
    R = QUANT_RP_ROWS,
    G = 4,        /* rows per int32x4: a row group */
    NG = R / G,   /* row groups per tile */
    STEP = 4 * R, /* bytes of one qs / qh step */
    OFF_DMIN = 2 * R,
    OFF_SC = 4 * R,
    OFF_QH = 16 * R,
    NT = 4, /* tokens per gemm pass over a row group: each unpacked weight vector serves 4 */
};

/* Byte k (0..11) of the 16 rows' native scales, byte i = row i. */
INLINE uint8x16_t scale_bytes(const uint8_t *sb, int k) {
    return vld1q_u8(sb + OFF_SC + R * k);
}

/* The 6-bit scale (min 0) or minimum (min 1) of sub-block j of the 16 rows, byte i = row i:
 * quant_k_scale_min() on every byte. For j >= 4 the shift-left-insert keeps the low 4 bits of
 * its first operand and puts the 2 high bits, moved down from bits 6-7, above them. */
INLINE uint8x16_t scale6(const uint8_t *sb, int j, int min) {
    if (j < 4)
        return vandq_u8(scale_bytes(sb, j + 4 * min), vdupq_n_u8(63));
    const uint8x16_t q = scale_bytes(sb, j + 4);
    const uint8x16_t top = vshrq_n_u8(scale_bytes(sb, j - 4 + 4 * min), 6);
    return vsliq_n_u8(min ? vshrq_n_u8(q, 4) : q, top, 4);
}

/* Bytes 4 g .. 4 g + 3 of v (the rows of group g) widened to s32 lanes, and to s16. */
INLINE int32x4_t group_s32(uint8x16_t v, int g) {
    const uint16x8_t h = g < 2 ? vmovl_u8(vget_low_u8(v)) : vmovl_high_u8(v);
    return vreinterpretq_s32_u32(g & 1 ? vmovl_high_u16(h) : vmovl_u16(vget_low_u16(h)));
}
INLINE int16x4_t group_s16(uint8x16_t v, int g) {
    const uint16x8_t h = g < 2 ? vmovl_u8(vget_low_u8(v)) : vmovl_high_u8(v);
    return vreinterpret_s16_u16(g & 1 ? vget_high_u16(h) : vget_low_u16(h));
}

/* Chunk c (sub-blocks 2c, 2c + 1: qs steps 8c .. 8c + 7) of one slab, row groups g0 .. g0 +
 * ng - 1 and nt tokens (aq[t]: the token's 256 Q8_K quants of this super-block): adds
 * sc_2c (q_2c . a_2c) + sc_2c+1 (q_2c+1 . a_2c+1) to si[gi * nt + t], one row per lane. Steps
 * in two halves of 4, each needing one activation vector for the low nibbles (quants 64c + 16
 * half ..) and one for the high ones (64c + 32 + 16 half ..), lane u % 4 of them for step u. */
INLINE void chunk_dot(const uint8_t *sb, int five, int c, int g0, int ng, const int8_t *const *aq,
                      int nt, int32x4_t *si) {
    const uint8_t *qs = sb + OFF_QH + (five ? QK_K / 8 * R : 0) + STEP * 8 * c;
    const uint8_t *qh = sb + OFF_QH;
    const uint8x16_t m4 = vdupq_n_u8(0x0f), bit4 = vdupq_n_u8(0x10);
    /* USHL by these counts moves bit 2c (low nibbles) or 2c + 1 (high) of a qh byte to bit 4;
     * a negative count shifts right */
    const int8x16_t sh_lo = vdupq_n_s8((int8_t)(4 - 2 * c)),
                    sh_hi = vdupq_n_s8((int8_t)(3 - 2 * c));
    int32x4_t dl[NG * NT], dh[NG * NT];
    UNROLL
    for (int k = 0; k < ng * nt; k++)
        dl[k] = dh[k] = vdupq_n_s32(0);
    UNROLL
    for (int half = 0; half < 2; half++) {
        int8x16_t al[NT], ah[NT];
        UNROLL
        for (int t = 0; t < nt; t++) {
            al[t] = vld1q_s8(aq[t] + 64 * c + 16 * half);
            ah[t] = vld1q_s8(aq[t] + 64 * c + 32 + 16 * half);
        }
        UNROLL
        for (int l = 0; l < 4; l++) {
            step_barrier();
            const int u = 4 * half + l;
            UNROLL
            for (int gi = 0; gi < ng; gi++) {
                const int g = g0 + gi;
                const uint8x16_t z = vld1q_u8(qs + STEP * u + 16 * g);
                uint8x16_t wl = vandq_u8(z, m4), wh = vshrq_n_u8(z, 4);
                if (five) {
                    const uint8x16_t v = vld1q_u8(qh + STEP * u + 16 * g);
                    wl = vbslq_u8(bit4, vshlq_u8(v, sh_lo), wl);
                    wh = vbslq_u8(bit4, vshlq_u8(v, sh_hi), wh);
                }
                UNROLL
                for (int t = 0; t < nt; t++) {
                    const int k = gi * nt + t;
                    dl[k] = sdot_lane(dl[k], wl, al[t], l);
                    dh[k] = sdot_lane(dh[k], wh, ah[t], l);
                }
            }
        }
    }
    const uint8x16_t sc_lo = scale6(sb, 2 * c, 0), sc_hi = scale6(sb, 2 * c + 1, 0);
    UNROLL
    for (int gi = 0; gi < ng; gi++) {
        const int32x4_t xl = group_s32(sc_lo, g0 + gi), xh = group_s32(sc_hi, g0 + gi);
        UNROLL
        for (int t = 0; t < nt; t++) {
            const int k = gi * nt + t;
            si[k] = vmlaq_s32(vmlaq_s32(si[k], dl[k], xl), dh[k], xh);
        }
    }
}

/* One slab (super-block) of a tile, row groups g0 .. g0 + ng - 1, nt tokens:
 * acc[gi * nt + t] += d * a.d * si - dmin * a.d * sm, one row per lane. */
INLINE void slab_dot(const uint8_t *sb, int five, int g0, int ng, const struct block_q8_k *const *a,
                     int nt, float32x4_t *acc) {
    const int8_t *aq[NT];
    int32x4_t si[NG * NT], sm[NG * NT];
    UNROLL
    for (int t = 0; t < nt; t++)
        aq[t] = a[t]->qs;
    UNROLL
    for (int k = 0; k < ng * nt; k++)
        si[k] = sm[k] = vdupq_n_s32(0);
    /* rolled: unrolled, the slab was 4 times the code and GCC kept the loads common to the
     * chunks alive across all four, spilled (it still hoists Q5_K's qh loads, the same in
     * every chunk, out of this loop onto the stack: an L1 load either way) */
    ROLLED
    for (int c = 0; c < 4; c++)
        chunk_dot(sb, five, c, g0, ng, aq, nt, si);
    UNROLL
    for (int j = 0; j < 8; j++) {
        step_barrier();
        const uint8x16_t m = scale6(sb, j, 1);
        UNROLL
        for (int gi = 0; gi < ng; gi++) {
            const int16x4_t mg = group_s16(m, g0 + gi);
            UNROLL
            for (int t = 0; t < nt; t++) {
                const int16_t bj = (int16_t)(a[t]->bsums[2 * j] + a[t]->bsums[2 * j + 1]);
                sm[gi * nt + t] = vmlal_n_s16(sm[gi * nt + t], mg, bj);
            }
        }
    }
    UNROLL
    for (int gi = 0; gi < ng; gi++) {
        const float32x4_t d = f16x4(sb + 8 * (g0 + gi));
        const float32x4_t dmin = f16x4(sb + OFF_DMIN + 8 * (g0 + gi));
        UNROLL
        for (int t = 0; t < nt; t++) {
            const int k = gi * nt + t;
            const float32x4_t f =
                vsubq_f32(vmulq_f32(vmulq_n_f32(d, a[t]->d), vcvtq_f32_s32(si[k])),
                          vmulq_f32(vmulq_n_f32(dmin, a[t]->d), vcvtq_f32_s32(sm[k])));
            acc[k] = vaddq_f32(acc[k], f);
        }
    }
}

/* acc[gi * nt + t] = the dots of the tile's rows of groups g0 .. g0 + ng - 1 with nt tokens,
 * token t's Q8_K row at act + t * act_stride. No software prefetch: the slabs are read front to
 * back, which the stream prefetchers of Cortex-A / Neoverse cores follow (untested on hardware;
 * x86 needed one on Zen 3). */
INLINE void tile_dot(const uint8_t *tile, int64_t nb, int five, int g0, int ng, const uint8_t *act,
                     size_t act_stride, int nt, float32x4_t *acc) {
    const size_t slab = R * (five ? sizeof(struct block_q5_k) : sizeof(struct block_q4_k));
    UNROLL
    for (int k = 0; k < ng * nt; k++)
        acc[k] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        const struct block_q8_k *a[NT];
        UNROLL
        for (int t = 0; t < nt; t++)
            a[t] = (const struct block_q8_k *)(const void *)(act + t * act_stride) + b;
        slab_dot(tile + b * slab, five, g0, ng, a, nt, acc);
    }
}

/* y[r] for the n_rows rows of the tiles at w against one token: all 4 row groups of a tile per
 * pass, so the tile streams once and each activation vector serves 16 rows. */
INLINE void gemv_k(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                   const void *restrict act, float *restrict y, int five) {
    for (int64_t r = 0; r < n_rows; r += R) {
        float32x4_t acc[NG];
        tile_dot((const uint8_t *)w + (size_t)r * w_stride, n / QK_K, five, 0, NG, act, 0, 1, acc);
        UNROLL
        for (int g = 0; g < NG; g++)
            store_rows(y + r + G * g, acc[g], n_rows - r - G * g);
    }
}

/* Tokens t .. t + nt - 1 (nt a constant in each call) over row group g of a tile. */
INLINE void gemm_group(const uint8_t *tile, int64_t nb, int five, int g, const uint8_t *act,
                       size_t act_stride, int64_t t, int nt, float *y, size_t y_stride,
                       int64_t rows) {
    float32x4_t acc[NT];
    tile_dot(tile, nb, five, g, 1, act + (size_t)t * act_stride, act_stride, nt, acc);
    UNROLL
    for (int k = 0; k < nt; k++)
        store_rows(y + (size_t)(t + k) * y_stride, acc[k], rows);
}

/* Tokens in passes of NT over each row group of a tile (its quarter of the tile, 4 native rows,
 * stays in L1 between passes; each unpacked weight vector serves NT tokens), then the 1..3
 * left in one pass. */
INLINE void gemm_k(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                   const void *restrict act, size_t act_stride, int64_t n_tok, float *restrict y,
                   size_t y_stride, int five) {
    const int64_t nb = n / QK_K;
    for (int64_t r = 0; r < n_rows; r += R) {
        const uint8_t *tile = (const uint8_t *)w + (size_t)r * w_stride;
        for (int g = 0; g < NG && G * g < n_rows - r; g++) {
            const int64_t rows = n_rows - r - G * g;
            float *yg = y + r + G * g;
#define PASS(t, nt) gemm_group(tile, nb, five, g, act, act_stride, (t), nt, yg, y_stride, rows)
            RP_TOKEN_PASSES(n_tok, PASS);
#undef PASS
        }
    }
}

RP_K45_KERNELS

/* pack_act is the table's Q8_K quantizer (bit-exact with llama.cpp's): the kernels read plain
 * Q8_K rows. */
void quant_fill_rp_q45k_neon(struct quant_kernels *t) {
    rp_k_set_group(&t[TENSOR_TYPE_Q4_K], quant_q4_k_rp_tile, gemv_q4_k_rp, gemm_q4_k_rp);
    rp_k_set_group(&t[TENSOR_TYPE_Q5_K], quant_q5_k_rp_tile, gemv_q5_k_rp, gemm_q5_k_rp);
}
