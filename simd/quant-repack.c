/* The repacked decode layouts (quant.h, QUANT_RP_ROWS), in plain C: made once per weight matrix
 * at model load, read by the ISA files' gemv_rp kernels. */
#include <string.h>

#include "quant.h"

enum { R = QUANT_RP_ROWS };

static const void *row_block(const void *src, size_t src_stride, int i, size_t block_off) {
    return (const char *)src + (size_t)i * src_stride + block_off;
}

void quant_q4_1_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n) {
    const int64_t nb = n / QK;
    uint8_t *out = dst;
    /* rows past n_rows are zero: scale, minimum and weights, so they add nothing */
    memset(out, 0, (size_t)nb * R * sizeof(struct block_q4_1));
    for (int64_t b = 0; b < nb; b++, out += R * sizeof(struct block_q4_1))
        for (int i = 0; i < n_rows; i++) {
            const struct block_q4_1 *x = row_block(src, src_stride, i, b * sizeof *x);
            memcpy(out + 2 * i, &x->d, 2);
            memcpy(out + 2 * R + 2 * i, &x->m, 2);
            for (int s = 0; s < 4; s++)
                memcpy(out + 4 * R + 64 * s + 4 * i, x->qs + 4 * s, 4);
        }
}

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
