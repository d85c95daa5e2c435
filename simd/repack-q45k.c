/* The repacked decode tiles of Q4_K and Q5_K (quant.h, QUANT_RP_ROWS), in plain C: made once per
 * weight matrix at model load, read by the ISA files' gemv_rp / gemm_rp kernels.
 *
 * A tile is 16 rows (R = QUANT_RP_ROWS) transposed byte for byte: for each super-block index b
 * of the rows (256 weights), one slab of R native blocks' bytes (R * 144 for Q4_K, R * 176 for
 * Q5_K), slabs in order of b. Byte offsets inside a slab, row i = 0..15:
 *
 *   0        d     f16 of row i at 2 i              (16 x f16: rows 0..7 then rows 8..15)
 *   32       dmin  f16 of row i at 32 + 2 i
 *   64       scales: native scales[k] (k = 0..11) of row i at 64 + 16 k + i, so one 16-byte
 *                    load gives byte k of every row; decode the 6-bit scale and minimum of
 *                    sub-block j with quant_k_scale_min()'s bit operations, lane by lane
 *   256      (Q5_K only) qh: 8 steps u of 64 bytes; byte 256 + 64 u + 4 i + j = native
 *                    qh[4 u + j] of row i. Bit 2c of it is bit 4 of weight 64c + 4u + j,
 *                    bit 2c + 1 that of weight 64c + 32 + 4u + j (c = 0..3)
 *   QS       qs: 32 steps s of 64 bytes, QS = 256 (Q4_K) or 768 (Q5_K); byte QS + 64 s + 4 i + j
 *                    = native qs[4 s + j] of row i. With c = s / 8 and l = 4 (s % 8) + j, its
 *                    low nibble is weight 64c + l (sub-block 2c) and its high nibble weight
 *                    64c + 32 + l (sub-block 2c + 1)
 *
 * So every 32-bit lane of a step holds 4 consecutive bytes of one row: rows 0..7 fill the first
 * 32 bytes of the step, rows 8..15 the next 32 (one 256-bit vector each, or four 128-bit
 * ones), and a step's 4 activation bytes (Q8_K qs[64c + l..] for the low nibbles, qs[64c + 32 +
 * l..] for the high ones) are broadcast to all lanes: no horizontal sum per row. The qh step u
 * serves the steps s with s % 8 == u of all four chunks c. Rows past n_rows are all zero (zero
 * d and dmin and weights), so they add exactly nothing.
 *
 * A kernel computes per row and super-block, as dot_q4_k_q8_k does, the integers
 * si = sum_j sc_j (q_j . a_j) and sm = sum_j m_j (bsums[2j] + bsums[2j + 1]) over the 8
 * sub-blocks j of 32 weights, then adds a.d * (d * si - dmin * sm). */
#include <string.h>

#include "quant.h"

enum {
    R = QUANT_RP_ROWS,
    STEP = 4 * R, /* bytes of one step: 4 bytes of each row */
    /* native block offsets: d at 0, dmin at 2, scales[12] at 4, then Q5_K's qh[32], then qs */
    NAT_SCALES = 4,
    NAT_QH = 16,
    TILE_SCALES = 4 * R,
    TILE_QH = 16 * R, /* after each row's 4 bytes of d and dmin and 12 of scales */
};
_Static_assert(TILE_QH + QK_K / 2 * R == R * sizeof(struct block_q4_k), "Q4_K slab size");
_Static_assert(TILE_QH + (QK_K / 8 + QK_K / 2) * R == R * sizeof(struct block_q5_k),
               "Q5_K slab size");

/* The 4 * steps native bytes at row (of tile row i) to out: native byte 4 s + j goes to byte
 * 4 i + j of step s. The 4-byte interleave of both the qs and the qh bits. */
static void interleave4(uint8_t *out, const uint8_t *row, int i, int steps) {
    for (int s = 0; s < steps; s++)
        memcpy(out + STEP * s + 4 * i, row + 4 * s, 4);
}

/* One tile of Q4_K (has_qh 0) or Q5_K (has_qh 1) rows; block_bytes is the native block size. */
static void rp_tile_k(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                      int64_t n, size_t block_bytes, int has_qh) {
    const int64_t nb = n / QK_K;
    const size_t qh_bytes = has_qh ? QK_K / 8 : 0;
    const size_t tile_qs = TILE_QH + qh_bytes * R, nat_qs = NAT_QH + qh_bytes;
    uint8_t *out = dst;
    memset(out, 0, (size_t)nb * R * block_bytes);
    for (int64_t b = 0; b < nb; b++, out += R * block_bytes)
        for (int i = 0; i < n_rows; i++) {
            const uint8_t *x = (const uint8_t *)src + (size_t)i * src_stride + b * block_bytes;
            memcpy(out + 2 * i, x, 2);             /* d */
            memcpy(out + 2 * R + 2 * i, x + 2, 2); /* dmin */
            for (int k = 0; k < 12; k++)
                out[TILE_SCALES + R * k + i] = x[NAT_SCALES + k];
            if (has_qh)
                interleave4(out + TILE_QH, x + NAT_QH, i, QK_K / 8 / 4);
            interleave4(out + tile_qs, x + nat_qs, i, QK_K / 2 / 4);
        }
}

void quant_q4_k_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n) {
    rp_tile_k(src, src_stride, n_rows, dst, n, sizeof(struct block_q4_k), 0);
}

void quant_q5_k_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n) {
    rp_tile_k(src, src_stride, n_rows, dst, n, sizeof(struct block_q5_k), 1);
}
