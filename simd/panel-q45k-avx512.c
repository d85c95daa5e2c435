/* Q4_K and Q5_K repacked tiles (repack-q45k.c) as the bf16 B operands of the AMX prompt products
 * (quant.h's quant_panel_fn, gemm-amx.h). Sub-block j of a super-block is one B tile: its 32
 * values are the low (j even) or high (j odd) nibbles of the 8 steps of chunk j / 2, each step
 * 4 consecutive values of every row, so step s gives the tile's rows 2 s and 2 s + 1. A value is
 * d sc_j q - dmin m_j, the reference's dequant_row_q4_k / _q5_k with d1 = d sc_j, m1 = dmin m_j. */
#include "avx512-q45k.h"
#include "panel-bf16.h"

enum { TILE_WORDS = 512 }; /* uint16 of one B tile: 16 rows x 64 bytes */

static ALWAYS_INLINE void panel_k(const void *restrict w, int64_t n, uint16_t *restrict panel,
                                  int five) {
    const size_t slab = R * (five ? sizeof(struct block_q5_k) : sizeof(struct block_q4_k));
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *sb = (const uint8_t *)w + b * slab;
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)sb));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(sb + OFF_DMIN)));
        for (int c = 0; c < 4; c++) {
            __m512 sc[2], mn[2];
            for (int h = 0; h < 2; h++) {
                sc[h] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(scale6(sb, 2 * c + h, 0)));
                mn[h] = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(scale6(sb, 2 * c + h, 1)));
            }
            uint16_t *lo = panel + (8 * b + 2 * c) * TILE_WORDS, *hi = lo + TILE_WORDS;
            for (int s = 0; s < 8; s++) {
                __m512i wl, wh;
                step_weights(sb, five, c, s, &wl, &wh);
                panel_step(wl, sc[0], mn[0], lo + 64 * s);
                panel_step(wh, sc[1], mn[1], hi + 64 * s);
            }
        }
    }
}

static void panel_q4_k(const void *restrict w, int64_t n, uint16_t *restrict panel) {
    panel_k(w, n, panel, 0);
}

static void panel_q5_k(const void *restrict w, int64_t n, uint16_t *restrict panel) {
    panel_k(w, n, panel, 1);
}

void quant_fill_panel_q45k_avx512(struct quant_kernels *t) {
    t[TENSOR_TYPE_Q4_K].panel_bf16 = panel_q4_k;
    t[TENSOR_TYPE_Q5_K].panel_bf16 = panel_q5_k;
}
