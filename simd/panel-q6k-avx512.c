/* Q6_K repacked tiles (repack-q6k.c) as the bf16 B operands of the AMX prompt products
 * (quant.h's quant_panel_fn, gemm-amx.h). A B tile of 32 values is two 16-value sub-blocks g, g +
 * 1; unpack() gives a sub-block as 4 vectors of 4 consecutive values per row, each two rows of
 * the tile. A value is d sc_g (q - 32), the reference's dequant_row_q6_k: scale d sc_g, offset
 * 32 d sc_g (exact: a power of two), so q * scale - offset rounds once, as scale * (q - 32) does.
 */
#include "avx512-q6k.h"
#include "panel-bf16.h"

static void panel_q6_k(const void *restrict w, int64_t n, uint16_t *restrict panel) {
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *rec = (const uint8_t *)w + b * REC;
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)rec));
        for (int g = 0; g < QK_K / 16; g++) {
            const __m512 sc =
                _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                     _mm_loadu_si128((const void *)(rec + SC_OFF + R * g)))));
            const __m512 off = _mm512_mul_ps(sc, _mm512_set1_ps(32.0f));
            __m512i q[4];
            unpack(rec + Q_OFF + SUB * g, q);
            uint16_t *out = panel + (size_t)(16 * b + g) * 256; /* 8 B-tile rows per sub-block */
            for (int s = 0; s < 4; s++)
                panel_step(q[s], sc, off, out + 64 * s);
        }
    }
}

void quant_fill_panel_q6k_avx512(struct quant_kernels *t) {
    t[TENSOR_TYPE_Q6_K].panel_bf16 = panel_q6_k;
}
