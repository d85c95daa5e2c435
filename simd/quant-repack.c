/* The repacked Q4_1 row layout of decode (quant.h, quant_q4_1_rp_row), in plain C: made once
 * per weight row at model load, read by the ISA files' gemv_rp kernels. */
#include <string.h>

#include "quant.h"

enum { GROUP = 16 };

size_t quant_q4_1_rp_row_bytes(int64_t n) {
    const int64_t nb = n / QK;
    size_t bytes = 0;
    for (int64_t b0 = 0; b0 < nb; b0 += GROUP) {
        const int64_t g = nb - b0 < GROUP ? nb - b0 : GROUP;
        bytes += (size_t)(4 * g + (g + 1) / 2 * 32);
    }
    return bytes;
}

void quant_q4_1_rp_row(const void *restrict src, void *restrict dst, int64_t n) {
    const struct block_q4_1 *x = src;
    uint8_t *out = dst;
    const int64_t nb = n / QK;
    for (int64_t b0 = 0; b0 < nb; b0 += GROUP) {
        const int64_t g = nb - b0 < GROUP ? nb - b0 : GROUP;
        for (int64_t i = 0; i < g; i++) {
            memcpy(out + 2 * i, &x[b0 + i].d, 2);
            memcpy(out + 2 * g + 2 * i, &x[b0 + i].m, 2);
        }
        out += 4 * g;
        for (int64_t p = 0; p < (g + 1) / 2; p++, out += 32) {
            const struct block_q4_1 *a = &x[b0 + 2 * p];
            const struct block_q4_1 *b = 2 * p + 1 < g ? a + 1 : NULL;
            /* weight j of a block: low nibble of qs[j] for j < 16, high nibble of qs[j - 16] */
            for (int j = 0; j < 32; j++) {
                const int lo = j < 16 ? a->qs[j] & 0xf : a->qs[j - 16] >> 4;
                const int hi = !b ? 0 : j < 16 ? b->qs[j] & 0xf : b->qs[j - 16] >> 4;
                out[j] = (uint8_t)(lo | hi << 4);
            }
        }
    }
}
