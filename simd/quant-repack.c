/* The repacked decode layouts (quant.h, QUANT_RP_ROWS), in plain C: made once per weight matrix
 * at model load, read by the ISA files' gemv_rp / gemm_rp kernels.
 *
 * Every tile holds R = 16 rows and exactly 16 native rows' bytes: per block index b of the rows
 * (the tile's block b starts at b * 16 * sizeof(native block)), the rows' fields one after the
 * other, each field as 16 consecutive per-row entries, so that a 32-bit lane of a 512-bit
 * vector (or of a pair of 256-bit ones: rows 0-7, then 8-15) is one row. Rows past n_rows have
 * zero scales, minimums and weights (Q8_0's zero stored as 128): they add nothing, and kernels
 * never store them. The 4-bit and 5-bit layouts, byte offsets within block b's chunk of the
 * tile, row i = 0..15:
 *
 *   Q4_0 (288 B = 16 x 18): [0, 32)    f16 d of row i at 2 i
 *                           [32, 288)  4 steps of 64 B: byte 32 + 64 s + 4 i + j = qs[4 s + j]
 *   Q4_1 (320 B = 16 x 20): [0, 32) d, [32, 64) f16 m at 32 + 2 i, [64, 320) the 4 qs steps
 *   Q5_0 (352 B = 16 x 22): [0, 32) d, [32, 96) the native qh[0..3] of row i at 32 + 4 i (the
 *                           LE u32 whose bit e is bit 4 of element e), [96, 352) the qs steps
 *   Q5_1 (384 B = 16 x 24): [0, 32) d, [32, 64) m, [64, 128) qh as Q5_0, [128, 384) qs steps
 *
 * In a qs step s, byte j of row i's lane holds element 4 s + j in its low nibble and element
 * 16 + 4 s + j in its high nibble (the native qs bytes, moved 4 at a time). Q8_0 (below) keeps
 * the signed quants' order but stores them + 128. */
#include <string.h>

#include "quant.h"

enum { R = QUANT_RP_ROWS };

static const void *row_block(const void *src, size_t src_stride, int i, size_t block_off) {
    return (const char *)src + (size_t)i * src_stride + block_off;
}

/* The 4/5-bit tiles: a native block is n_f16 f16 fields (d, or d and m), then 4 qh bytes when
 * has_qh, then 16 qs bytes; the tile chunk keeps that field order, each field for 16 rows. */
static void tile_nibbles(const void *restrict src, size_t src_stride, int n_rows,
                         void *restrict dst, int64_t n, size_t bsz, int n_f16, int has_qh) {
    const int64_t nb = n / QK;
    const size_t qh_in = 2 * (size_t)n_f16, qs_in = qh_in + 4 * (size_t)has_qh;
    const size_t qh_out = 2 * R * (size_t)n_f16, qs_out = qh_out + 4 * R * (size_t)has_qh;
    uint8_t *out = dst;
    memset(out, 0, (size_t)nb * R * bsz);
    for (int64_t b = 0; b < nb; b++, out += R * bsz)
        for (int i = 0; i < n_rows; i++) {
            const uint8_t *x = row_block(src, src_stride, i, (size_t)b * bsz);
            for (int f = 0; f < n_f16; f++)
                memcpy(out + 2 * R * f + 2 * i, x + 2 * f, 2);
            if (has_qh)
                memcpy(out + qh_out + 4 * i, x + qh_in, 4);
            for (int s = 0; s < 4; s++)
                memcpy(out + qs_out + 64 * s + 4 * i, x + qs_in + 4 * s, 4);
        }
}

void quant_q4_0_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n) {
    tile_nibbles(src, src_stride, n_rows, dst, n, sizeof(struct block_q4_0), 1, 0);
}

void quant_q4_1_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n) {
    tile_nibbles(src, src_stride, n_rows, dst, n, sizeof(struct block_q4_1), 2, 0);
}

void quant_q5_0_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n) {
    tile_nibbles(src, src_stride, n_rows, dst, n, sizeof(struct block_q5_0), 1, 1);
}

void quant_q5_1_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n) {
    tile_nibbles(src, src_stride, n_rows, dst, n, sizeof(struct block_q5_1), 2, 1);
}

/* Q8_0 (544 B = 16 x 34): [0, 32) d, then 8 steps of 64 B: byte 32 + 64 s + 4 i + j =
 * qs[4 s + j] of row i + 128 (unsigned, the operand vpdpbusd takes from a register). */
void quant_q8_0_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n) {
    const int64_t nb = n / QK;
    uint8_t *out = dst;
    /* padding rows: scale 0, weights 0 (stored as 128) */
    memset(out, 0, (size_t)nb * R * sizeof(struct block_q8_0));
    for (int64_t b = 0; b < nb; b++, out += R * sizeof(struct block_q8_0)) {
        memset(out + 2 * R, 0x80, 8 * 64);
        for (int i = 0; i < n_rows; i++) {
            const struct block_q8_0 *x = row_block(src, src_stride, i, b * sizeof *x);
            memcpy(out + 2 * i, &x->d, 2);
            for (int j = 0; j < QK; j++)
                out[2 * R + 64 * (j / 4) + 4 * i + j % 4] = (uint8_t)(x->qs[j] ^ 0x80);
        }
    }
}
