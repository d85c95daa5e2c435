/* The repacked Q4_1 layout of decode (quant.h, quant_q4_1_rp_pack), in plain C: made once per
 * weight matrix at model load, read by the ISA files' gemv_rp kernels. */
#include <string.h>

#include "quant.h"

size_t quant_q4_1_rp_bytes(int64_t n, int64_t n_rows) {
    const int64_t tiles = (n_rows + QUANT_RP_ROWS - 1) / QUANT_RP_ROWS;
    return (size_t)tiles * QUANT_RP_ROWS * (size_t)(n / QK) * sizeof(struct block_q4_1);
}

void quant_q4_1_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n) {
    enum { R = QUANT_RP_ROWS };
    const int64_t nb = n / QK;
    uint8_t *out = dst;
    /* rows past n_rows are zero: scale, minimum and weights, so they add nothing */
    memset(out, 0, (size_t)nb * R * sizeof(struct block_q4_1));
    for (int64_t b = 0; b < nb; b++, out += R * sizeof(struct block_q4_1)) {
        for (int i = 0; i < n_rows; i++) {
            const struct block_q4_1 *x =
                (const struct block_q4_1 *)(const void *)((const char *)src + i * src_stride) + b;
            memcpy(out + 2 * i, &x->d, 2);
            memcpy(out + 2 * R + 2 * i, &x->m, 2);
            /* qs[j] holds weight j (low nibble) and j + 16 (high): its 4-byte step s = j / 4
             * goes to bytes 4 i .. 4 i + 3 of the step's 64 bytes */
            for (int s = 0; s < 4; s++)
                memcpy(out + 4 * R + 64 * s + 4 * i, x->qs + 4 * s, 4);
        }
    }
}
