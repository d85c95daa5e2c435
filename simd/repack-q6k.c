/* The repacked Q6_K tile (quant.h, QUANT_RP_ROWS), in plain C: made once per weight matrix at
 * model load, read by the gemv_rp / gemm_rp kernels (rp-q6k-avx2.c, rp-q6k-neon.c).
 *
 * A tile holds 16 rows (i = 0..15; rows past n_rows are all zero bytes) and, like the native
 * rows, 210 bytes per row and 256-value super-block: for each super-block index b one record of
 * 16 * 210 = 3360 bytes, records consecutive. With q(i, k) the unsigned 6-bit quant (0..63,
 * value = d * scale * (q - 32)) of value k (0..255) of super-block b of row i, a record is
 *   [0, 32)      d: bytes 2i, 2i + 1 = the f16 d of row i (little-endian);
 *   [32, 288)    scales, transposed: byte 32 + 16 g + i = the int8 scale of sub-block g (values
 *                16 g .. 16 g + 15) of row i, g = 0..15;
 *   [288, 3360)  quants, 16 sub-blocks g of 3 steps s of 64 bytes: byte 288 + 192 g + 64 s + 4 i +
 * j (j = 0..3) of row i holds bits 0-5: q(i, 16 g + 4 s + j), bits 6-7: bits 2 s and 2 s + 1 of
 * q(i, 16 g + 12 + j). So each 32-bit lane of a step is one row and each step of 16 rows is one
 * 64-byte line, or one 32-byte vector per 8 rows. Why this arrangement: the 3 steps of a sub-block
 * give the row's 16 values as 4 groups of 4 (in activation order, so each group meets 4 consecutive
 * activation bytes broadcast to every lane) with 3 ANDs for the first three groups and 8 operations
 * (mask, shift, or) for the fourth: under 3 operations per 4 x 8 values, against about 4 for the
 * native split into 4-bit and 2-bit planes. A sub-block's values never straddle steps, so one
 * scale applies to all 4 groups. */
#include <string.h>

#include "quant.h"

enum {
    R = QUANT_RP_ROWS,
    SC_OFF = 2 * R,                 /* after the 16 f16 d */
    Q_OFF = SC_OFF + QK_K / 16 * R, /* after the 16 x 16 scales */
    STEP = 4 * R,                   /* 4 bytes of each row */
    SUB = 3 * STEP,                 /* one 16-value sub-block of 16 rows */
    REC = R * sizeof(struct block_q6_k),
};
_Static_assert(Q_OFF + QK_K / 16 * SUB == REC, "a record holds 16 native blocks' bytes");

/* The 256 unsigned quants of a native block: value 128 h + 32 p + l (half h, part p, l < 32) has
 * its 4 low bits in ql[64 h + 32 (p & 1) + l] (low nibble for p < 2, high nibble else) and its 2
 * high bits at bits 2p, 2p + 1 of qh[32 h + l]. */
static void q6_quants(const struct block_q6_k *x, uint8_t q[QK_K]) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const unsigned a = x->ql[64 * h + l], b = x->ql[64 * h + 32 + l],
                           hi = x->qh[32 * h + l];
            uint8_t *o = q + 128 * h + l;
            o[0] = (uint8_t)((a & 0xf) | (hi & 3) << 4);
            o[32] = (uint8_t)((b & 0xf) | (hi >> 2 & 3) << 4);
            o[64] = (uint8_t)((a >> 4) | (hi >> 4 & 3) << 4);
            o[96] = (uint8_t)((b >> 4) | (hi >> 6 & 3) << 4);
        }
}

/* The record bytes of row i from its native block x. The quants are unpacked once into q first:
 * the repack runs at every model load (the output head of a Llama 3 model alone is 215 MB of
 * Q6_K), so each native bit is extracted once, not once per output byte that needs it. */
static void put_row(const struct block_q6_k *x, int i, uint8_t *rec) {
    uint8_t q[QK_K];
    q6_quants(x, q);
    memcpy(rec + 2 * i, &x->d, 2);
    for (int g = 0; g < QK_K / 16; g++) {
        rec[SC_OFF + R * g + i] = (uint8_t)x->scales[g];
        const uint8_t *qg = q + 16 * g;
        for (int s = 0; s < 3; s++) {
            uint8_t *out = rec + Q_OFF + SUB * g + STEP * s + 4 * i;
            for (int j = 0; j < 4; j++)
                out[j] = (uint8_t)(qg[4 * s + j] | (qg[12 + j] >> (2 * s) & 3) << 6);
        }
    }
}

void quant_q6_k_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n) {
    const int64_t nb = n / QK_K;
    uint8_t *rec = dst;
    /* rows past n_rows: d, scales and quants zero, so they add nothing */
    memset(rec, 0, (size_t)nb * REC);
    for (int64_t b = 0; b < nb; b++, rec += REC)
        for (int i = 0; i < n_rows; i++) {
            const struct block_q6_k *x = (const void *)((const char *)src + (size_t)i * src_stride);
            put_row(x + b, i, rec);
        }
}
