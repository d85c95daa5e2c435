/* NEON kernels with SDOT (Armv8.2 dotprod) over the repacked tiles of the 32-element block types
 * Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 (quant.h QUANT_RP_ROWS; tile layouts in quant-repack.c, the
 * ones the AVX2 kernels read): gemv_rp for decode, gemm_rp for prompt batches, and the
 * activation packing both read. The dispatcher installs them only where the CPU has SDOT
 * (HWCAP_ASIMDDP); elsewhere no rp kernel is set, so the weights stay native (decode-pack.c).
 *
 * A 16-byte slice of a tile step holds 4 bytes of each of 4 rows (a row group; a tile is 4 of
 * them), one row per 32-bit lane. SDOT by element (vdotq_laneq_s32) multiplies each lane's 4
 * weight bytes by the same 4 activation bytes, lane l of a 16-byte activation vector, and adds
 * the 4 products into that lane: every row's dot accumulates in its own lane, with no horizontal
 * sums and no broadcasts. The per-block arithmetic is vec_dot's (llama.cpp's): the exact integer
 * dot of the block times d_w * d_a, plus m * s for the types with a minimum, added to the row's
 * running f32 block by block, so results differ from vec_dot only by float summation order.
 *
 * - 4/5-bit: per step, the rows' low nibbles are elements 4 s .. 4 s + 3 and the high nibbles
 *   elements 16 + 4 s .. (Q5: with the fifth bit from the row's qh word inserted at bit 4). The
 *   quants stay unsigned (0..15, 0..31); the offset types start each block's accumulator at
 *   -offset * sum(a), the exact integer kept in the packed activation row, since
 *   sum((q - o) a) = sum(q a) - o sum(a): one dup per block instead of a subtraction per weight.
 * - Q8_0: the tile stores w + 128 (for x86's u8 x s8 vpdpbusd); xor 0x80 gives back the signed
 *   w, which SDOT takes as it is.
 *
 * Bounds: SDOT multiplies s8 by s8 and adds in s32, with no narrower intermediate, so nothing
 * saturates (unlike vpmaddubsw on x86). |a| <= 127 (the quantizer rounds x * 127 / amax with
 * |x| <= amax). A block's s32 accumulator passes through at most 16 * 32 * 127 (the offset
 * start, Q5_0) + 32 * 31 * 127 = 191,008 in magnitude; Q8_0 reaches 32 * 128 * 127 = 520,192.
 * Both are below 2^24, so the block dot converts to float exactly, as in vec_dot. */
#include <arm_neon.h>

#include "neon-rp.h"
#include "quant.h"
#include "rp-q32.h"

enum {
    R = QUANT_RP_ROWS,
    G = 4,           /* rows per int32x4: a row group */
    NG = R / G,      /* row groups per tile */
    NT = 4,          /* tokens per gemm pass over a row group: each weight vector serves 4 */
    PACK_BLOCKS = 32 /* blocks quantized per call in pack_act: a 1.1 KiB stack buffer */
};

/* Complete unrolling of the short fixed-count loops over steps, row groups and tokens: it keeps
 * the accumulator arrays in registers and makes every SDOT lane an immediate (at -O2 GCC left
 * such loops rolled, with the accumulators going through the stack on every step). */
#define UNROLL _Pragma("GCC unroll 16")

/* ============================== the packed activation row ============================== */

/* Writes the packed activation row of rp-q32.h with the table's own quantizers. */
INLINE void pack_act_kind(enum kind k, const float *restrict x, void *restrict dst, int64_t n) {
    const int64_t nb = n / QK;
    int8_t *q = dst;
    float *d = (float *)(void *)(q + nb * QK);
    float *s = d + nb;
    int32_t *o = (int32_t *)(void *)(d + nb);
    for (int64_t b0 = 0; b0 < nb; b0 += PACK_BLOCKS) {
        const int64_t m = nb - b0 < PACK_BLOCKS ? nb - b0 : PACK_BLOCKS;
        if (has_min(k)) {
            struct block_q8_1 blk[PACK_BLOCKS];
            quantize_q8_1_act(x + QK * b0, blk, QK * m);
            for (int64_t i = 0; i < m; i++) {
                memcpy(q + QK * (b0 + i), blk[i].qs, QK);
                d[b0 + i] = quant_f16_to_f32(blk[i].d);
                s[b0 + i] = quant_f16_to_f32(blk[i].s);
            }
        } else {
            struct block_q8_0 blk[PACK_BLOCKS];
            quantize_q8_0_act(x + QK * b0, blk, QK * m);
            for (int64_t i = 0; i < m; i++) {
                const int8x16_t v0 = vld1q_s8(blk[i].qs), v1 = vld1q_s8(blk[i].qs + 16);
                vst1q_s8(q + QK * (b0 + i), v0);
                vst1q_s8(q + QK * (b0 + i) + 16, v1);
                d[b0 + i] = quant_f16_to_f32(blk[i].d);
                o[b0 + i] = offset_of(k) * (vaddlvq_s8(v0) + vaddlvq_s8(v1));
            }
        }
    }
}

/* ============================== the shared inner step ============================== */

/* The fifth bits of one step of a Q5 row group (qh: each lane the row's qh word, whose bit e is
 * bit 4 of element e): byte c of the word copied to the lane's 4 bytes, then byte j shifted so
 * that bit 4 odd + j (element 8 c + 4 odd + j) lands on bit 4. Only bit 4 of the result is
 * meaningful; the caller inserts it with a bit select. */
INLINE uint8x16_t fifth_bits(uint8x16_t qh, int c, int odd) {
    static const uint8_t lane_byte0[16] = {0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12};
    static const int8_t shift[2][16] = {
        {4, 3, 2, 1, 4, 3, 2, 1, 4, 3, 2, 1, 4, 3, 2, 1},
        {0, -1, -2, -3, 0, -1, -2, -3, 0, -1, -2, -3, 0, -1, -2, -3}};
    const uint8x16_t idx = vaddq_u8(vld1q_u8(lane_byte0), vdupq_n_u8((uint8_t)c));
    /* USHL by a negative count shifts right */
    return vshlq_u8(vqtbl1q_u8(qh, idx), vld1q_s8(shift[odd]));
}

/* The integer dots of one block chunk tb with nt activation blocks, for the row groups g0 ..
 * g0 + ng - 1: dot[gi * nt + t] += sum_e q_e a_t,e, row 4 (g0 + gi) + lane in each lane (offset
 * term not included). a[t]: token t's 32 activation bytes as two vectors. Each unpacked weight
 * vector serves all nt tokens. */
INLINE void block_dot(enum kind k, const uint8_t *tb, int g0, int ng, const int8x16_t (*a)[2],
                      int nt, int32x4_t *dot) {
    const uint8_t *qs = tb + off_qs(k);
    if (k == K_Q8_0) {
        UNROLL
        for (int s = 0; s < 8; s++) {
            step_barrier();
            UNROLL
            for (int gi = 0; gi < ng; gi++) {
                const uint8x16_t w =
                    veorq_u8(vld1q_u8(qs + 64 * s + 16 * (g0 + gi)), vdupq_n_u8(0x80));
                UNROLL
                for (int t = 0; t < nt; t++)
                    dot[gi * nt + t] = sdot_lane(dot[gi * nt + t], w, a[t][s >> 2], s);
            }
        }
        return;
    }
    const uint8x16_t m4 = vdupq_n_u8(0x0f), bit4 = vdupq_n_u8(0x10);
    UNROLL
    for (int s = 0; s < 4; s++) {
        step_barrier();
        UNROLL
        for (int gi = 0; gi < ng; gi++) {
            const int g = g0 + gi;
            const uint8x16_t z = vld1q_u8(qs + 64 * s + 16 * g);
            uint8x16_t lo = vandq_u8(z, m4), hi = vshrq_n_u8(z, 4);
            if (is_q5(k)) {
                const uint8x16_t qh = vld1q_u8(tb + off_qh(k) + 16 * g);
                lo = vbslq_u8(bit4, fifth_bits(qh, s >> 1, s & 1), lo);
                hi = vbslq_u8(bit4, fifth_bits(qh, 2 + (s >> 1), s & 1), hi);
            }
            UNROLL
            for (int t = 0; t < nt; t++) {
                dot[gi * nt + t] = sdot_lane(dot[gi * nt + t], lo, a[t][0], s);
                dot[gi * nt + t] = sdot_lane(dot[gi * nt + t], hi, a[t][1], s);
            }
        }
    }
}

/* Each token's block accumulator starts at -offset * sum(a) (header). */
INLINE int32x4_t dot_start(enum kind k, const struct act_row *a, int64_t b) {
    return vdupq_n_s32(offset_of(k) ? -a->o[b] : 0);
}

/* acc + d_w * d_a * dot [+ m_w * s_a] for block b of row group g: vec_dot's per-block terms,
 * multiplied and added in its order. */
INLINE float32x4_t block_fold(enum kind k, float32x4_t acc, int32x4_t dot, const uint8_t *tb, int g,
                              const struct act_row *a, int64_t b) {
    float32x4_t t = vmulq_f32(vmulq_n_f32(f16x4(tb + 8 * g), a->d[b]), vcvtq_f32_s32(dot));
    if (has_min(k))
        t = vaddq_f32(t, vmulq_n_f32(f16x4(tb + off_m() + 8 * g), a->s[b]));
    return vaddq_f32(acc, t);
}

/* ============================== decode: one token ============================== */

/* Each tile streams once, in order: per block chunk, all 4 row groups against the same two
 * activation vectors. No software prefetch: the tiles are read front to back, which the stream
 * prefetchers of Cortex-A / Neoverse cores follow (x86 needed one on Zen 3; untested here). */
INLINE void gemv_kind(enum kind k, int64_t n, const void *restrict w, size_t w_stride,
                      int64_t n_rows, const void *restrict act, float *restrict y) {
    const int64_t nb = n / QK;
    const size_t chunk = R * block_bytes(k);
    const struct act_row a = act_view(act, nb);
    for (int64_t r = 0; r < n_rows; r += R) {
        const uint8_t *tile = (const uint8_t *)w + (size_t)r * w_stride;
        float32x4_t acc[NG];
        UNROLL
        for (int g = 0; g < NG; g++)
            acc[g] = vdupq_n_f32(0.0f);
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *tb = tile + (size_t)b * chunk;
            const int8x16_t ab[1][2] = {{vld1q_s8(a.q + QK * b), vld1q_s8(a.q + QK * b + 16)}};
            int32x4_t dot[NG];
            UNROLL
            for (int g = 0; g < NG; g++)
                dot[g] = dot_start(k, &a, b);
            block_dot(k, tb, 0, NG, ab, 1, dot);
            UNROLL
            for (int g = 0; g < NG; g++)
                acc[g] = block_fold(k, acc[g], dot[g], tb, g, &a, b);
        }
        UNROLL
        for (int g = 0; g < NG; g++)
            store_rows(y + r + G * g, acc[g], n_rows - r - G * g);
    }
}

/* ============================== prompt batches: tokens x rows ============================== */

/* Row group g of the tile (its first nrg rows are stored) against the nt tokens from act,
 * act_stride apart: every weight vector unpacked once per block serves all nt tokens (4 rows x
 * 4 tokens: 4 s32 and 4 f32 accumulators and 8 activation vectors stay in registers). */
INLINE void gemm_group(enum kind k, int nt, int64_t nb, const uint8_t *tile, int g, int64_t nrg,
                       const uint8_t *act, size_t act_stride, float *y, size_t y_stride) {
    const size_t chunk = R * block_bytes(k);
    struct act_row a[NT];
    float32x4_t acc[NT];
    UNROLL
    for (int t = 0; t < nt; t++) {
        a[t] = act_view(act + (size_t)t * act_stride, nb);
        acc[t] = vdupq_n_f32(0.0f);
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *tb = tile + (size_t)b * chunk;
        int8x16_t ab[NT][2];
        int32x4_t dot[NT];
        UNROLL
        for (int t = 0; t < nt; t++) {
            ab[t][0] = vld1q_s8(a[t].q + QK * b);
            ab[t][1] = vld1q_s8(a[t].q + QK * b + 16);
            dot[t] = dot_start(k, &a[t], b);
        }
        block_dot(k, tb, g, 1, (const int8x16_t(*)[2])ab, nt, dot);
        UNROLL
        for (int t = 0; t < nt; t++)
            acc[t] = block_fold(k, acc[t], dot[t], tb, g, &a[t], b);
    }
    UNROLL
    for (int t = 0; t < nt; t++)
        store_rows(y + (size_t)t * y_stride, acc[t], nrg);
}

/* Tile by tile, row group by row group, NT tokens per pass, then the 1..3 left: a row group's
 * quarter of a tile (4 native rows, 4.5 KiB of Q4_0 at n = 2048) stays in L1 while all the
 * tokens pass over it, and the packed tokens (40 bytes per block each) stay in L2. */
INLINE void gemm_kind(enum kind k, int64_t n, const void *restrict w, size_t w_stride,
                      int64_t n_rows, const void *restrict act, size_t act_stride, int64_t n_tok,
                      float *restrict y, size_t y_stride) {
    const int64_t nb = n / QK;
    const uint8_t *ab = act;
    for (int64_t r = 0; r < n_rows; r += R) {
        const uint8_t *tile = (const uint8_t *)w + (size_t)r * w_stride;
        for (int g = 0; g < NG && G * g < n_rows - r; g++) {
            const int64_t nrg = n_rows - r - G * g;
            float *yg = y + r + G * g;
            int64_t t = 0;
            for (; t + NT <= n_tok; t += NT)
                gemm_group(k, NT, nb, tile, g, nrg, ab + (size_t)t * act_stride, act_stride,
                           yg + (size_t)t * y_stride, y_stride);
            const uint8_t *at = ab + (size_t)t * act_stride;
            float *yt = yg + (size_t)t * y_stride;
            switch (n_tok - t) { /* a constant token count in each instance */
            case 3:
                gemm_group(k, 3, nb, tile, g, nrg, at, act_stride, yt, y_stride);
                break;
            case 2:
                gemm_group(k, 2, nb, tile, g, nrg, at, act_stride, yt, y_stride);
                break;
            case 1:
                gemm_group(k, 1, nb, tile, g, nrg, at, act_stride, yt, y_stride);
                break;
            default:
                break;
            }
        }
    }
}

/* ============================== one instance of each per type ============================== */

RP_Q32_ALL(quant_fill_rp_q32_neon)
