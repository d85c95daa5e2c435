/* Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 repacked tiles (quant-repack.c, rp-q32.h) as the bf16 B
 * operands of the AMX prompt products (quant.h's quant_panel_fn, gemm-amx.h): one 32-value block
 * is one B tile. A 4-bit step s holds values 4 s + j (low nibbles: tile rows 2 s, 2 s + 1) and
 * 16 + 4 s + j (high: rows 8 + 2 s, 9 + 2 s); Q5's fifth bit of value e is bit e of the row's qh
 * word; Q8_0's 8 steps hold values 4 s + j + 128. A value is d (q - offset) (Q4_0, Q5_0, Q8_0:
 * offset 8, 16, 128, so q d - offset d rounds once as the reference's d (q - offset) does) or
 * d q + m (Q4_1, Q5_1). */
#include "panel-bf16.h"
#include "rp-q32.h"

enum { TILE_WORDS = 512 }; /* uint16 of one B tile */

/* Bits k..k + 3 of each lane of qh moved to bit 4 of the lane's bytes 0..3: the fifth bits of the
 * 4 values a step gives each row (values k..k + 3). */
INLINE __m512i fifth_bits(__m512i qh, int k) {
    const __m512i t = _mm512_srli_epi32(qh, (unsigned)k);
    const __m512i b0 = _mm512_slli_epi32(_mm512_and_si512(t, _mm512_set1_epi32(1)), 4);
    const __m512i b1 = _mm512_slli_epi32(_mm512_and_si512(t, _mm512_set1_epi32(2)), 11);
    const __m512i b2 = _mm512_slli_epi32(_mm512_and_si512(t, _mm512_set1_epi32(4)), 18);
    const __m512i b3 = _mm512_slli_epi32(_mm512_and_si512(t, _mm512_set1_epi32(8)), 25);
    return _mm512_or_si512(_mm512_or_si512(b0, b1), _mm512_or_si512(b2, b3));
}

INLINE void panel_kind(enum kind k, const void *restrict w, int64_t n, uint16_t *restrict panel) {
    const size_t chunk = QUANT_RP_ROWS * block_bytes(k);
    for (int64_t b = 0; b < n / QK; b++) {
        const uint8_t *c = (const uint8_t *)w + b * chunk;
        uint16_t *out = panel + b * TILE_WORDS;
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)c));
        if (k == K_Q8_0) {
            const __m512 off = _mm512_mul_ps(d, _mm512_set1_ps(128.0f));
            for (int s = 0; s < 8; s++)
                panel_step(_mm512_loadu_si512((const void *)(c + 2 * QUANT_RP_ROWS + 64 * s)), d,
                           off, out + 64 * s);
            continue;
        }
        const __m512 off =
            has_min(k)
                ? _mm512_sub_ps(_mm512_setzero_ps(),
                                _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(c + off_m()))))
                : _mm512_mul_ps(d, _mm512_set1_ps((float)offset_of(k)));
        const __m512i qh =
            is_q5(k) ? _mm512_loadu_si512((const void *)(c + off_qh(k))) : _mm512_setzero_si512();
        const __m512i m4 = _mm512_set1_epi8(0x0f);
        for (int s = 0; s < 4; s++) {
            const __m512i z = _mm512_loadu_si512((const void *)(c + off_qs(k) + 64 * s));
            __m512i lo = _mm512_and_si512(z, m4),
                    hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
            if (is_q5(k)) {
                lo = _mm512_or_si512(lo, fifth_bits(qh, 4 * s));
                hi = _mm512_or_si512(hi, fifth_bits(qh, 16 + 4 * s));
            }
            panel_step(lo, d, off, out + 64 * s);
            panel_step(hi, d, off, out + 256 + 64 * s);
        }
    }
}

#define PANEL_KIND(NAME, KIND)                                                                     \
    static void panel_##NAME(const void *restrict w, int64_t n, uint16_t *restrict panel) {        \
        panel_kind(KIND, w, n, panel);                                                             \
    }
PANEL_KIND(q4_0, K_Q4_0)
PANEL_KIND(q4_1, K_Q4_1)
PANEL_KIND(q5_0, K_Q5_0)
PANEL_KIND(q5_1, K_Q5_1)
PANEL_KIND(q8_0, K_Q8_0)

void quant_fill_panel_q32_avx512(struct quant_kernels *t) {
    t[TENSOR_TYPE_Q4_0].panel_bf16 = panel_q4_0;
    t[TENSOR_TYPE_Q4_1].panel_bf16 = panel_q4_1;
    t[TENSOR_TYPE_Q5_0].panel_bf16 = panel_q5_0;
    t[TENSOR_TYPE_Q5_1].panel_bf16 = panel_q5_1;
    t[TENSOR_TYPE_Q8_0].panel_bf16 = panel_q8_0;
}
