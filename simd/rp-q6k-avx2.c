/* Q6_K over repacked tiles (layout: repack-q6k.c), AVX2 without VNNI: gemv_rp for decode,
 * gemm_rp for prompt batches, against llama.cpp's Q8_K activations (pack_act = the table's
 * quantize_act, bit-exact with quantize_row_q8_K_ref).
 *
 * One 32-bit lane is one row, 8 rows per vector (a tile is two row groups). Per sub-block of 16
 * values and row group, 3 loads give 4 vectors of 4 unsigned quants q (0..63) per row (11
 * operations); each meets 4 consecutive activation bytes broadcast to every lane in a
 * vpmaddubsw (u8 x s8 -> s16 pair sums), two of those are added in s16 and multiplied by the
 * rows' scale in a vpmaddwd, which also widens to s32. gemm_rp does this for 4 tokens per
 * unpacked vector. Q6_K's offset, sum (q - 32) a = sum q a - 32 sum a, comes from the
 * Q8_K bsums, which are exactly the sub-block sums: 32 * sum_g scale_g * bsum_g per row, one
 * vpmaddwd per two sub-blocks. Each super-block's integer dot is exact in int32 and is scaled
 * as the scalar dot_q6_k_q8_k scales it, (d * a.d) * (float)dot, with a multiply and an add
 * (no FMA), and summed over super-blocks in the same order: the results are the scalar ones bit
 * for bit (checked; the contract only asks for the same up to summation order).
 *
 * Bounds (q in 0..63, activations in -128..127; Q8_K's are in -127..127):
 *   vpmaddubsw: 2 * 63 * 128 = 16128 per s16, no saturation;
 *   two of them added in s16: 32256 < 32767, so no more than two are added before widening;
 *   vpmaddwd by a scale (-128..127): 2 * 32256 * 128 = 8.3e6 per lane;
 *   super-block sum of scale * q * a: 256 * 63 * 128 * 128 = 2.7e8;
 *   offset: 32 * scale (s16: -4096..4064) times a bsum pair (|bsum| <= 16 * 128) in a vpmaddwd,
 *   2 * 4096 * 2048 = 1.7e7 per pair, 1.4e8 per super-block; so |dot| < 4.1e8 < 2^31. */
#include <immintrin.h>
#include <string.h>

#include "quant.h"
#include "rp-glue.h"

/* The record of one super-block of a tile (repack-q6k.c). */
enum {
    R = QUANT_RP_ROWS,
    RG = 8,                         /* rows per vector: a row group */
    SC_OFF = 2 * R,                 /* after the 16 f16 d */
    Q_OFF = SC_OFF + QK_K / 16 * R, /* after the 16 x 16 transposed scales */
    STEP = 4 * R,                   /* 4 quant bytes of each row */
    SUB = 3 * STEP,                 /* one 16-value sub-block */
    REC = R * sizeof(struct block_q6_k),
    NT = 4, /* tokens per pass of gemm_rp over a row group: each unpacked vector serves 4 */
    /* Bytes ahead to prefetch: decode streams the tiles from memory with about 8 vector
     * operations per 32 bytes, which leaves the hardware prefetcher behind; 1 KiB ahead took
     * gemv from about 0.75 to about 0.85 of a plain one-thread read of the same bytes. A prefetch
     * never faults, so running past the last tile is harmless. */
    PREFETCH = 1024,
};
_Static_assert(Q_OFF + QK_K / 16 * SUB == REC, "a record holds 16 native blocks' bytes");

#define INLINE static inline __attribute__((always_inline))

/* 4 activation bytes in every lane. */
INLINE __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* The quants of one sub-block and row group (q at its first step) as 4 vectors, value 4 s + j
 * of the sub-block in byte j of vector s, made in two halves so that only two are live while
 * they meet the tokens. Steps 0..2 carry values 0..11 in their low 6 bits and the 2-bit pieces
 * of values 12..15 in their top 2 bits. */
INLINE void unpack_lo(const uint8_t *q, __m256i w[2]) {
    const __m256i m6 = _mm256_set1_epi8(0x3f);
    w[0] = _mm256_and_si256(_mm256_loadu_si256((const void *)q), m6);
    w[1] = _mm256_and_si256(_mm256_loadu_si256((const void *)(q + STEP)), m6);
}

/* Vectors 2 and 3: the top pieces are masked in place and moved down 2 bits at a time with
 * 16-bit shifts, never from a byte's bits 0-1, so no bit crosses into the neighbouring byte. */
INLINE void unpack_hi(const uint8_t *q, __m256i w[2]) {
    const __m256i m6 = _mm256_set1_epi8(0x3f);
    const __m256i l0 = _mm256_loadu_si256((const void *)q);
    const __m256i l1 = _mm256_loadu_si256((const void *)(q + STEP));
    const __m256i l2 = _mm256_loadu_si256((const void *)(q + 2 * STEP));
    w[0] = _mm256_and_si256(l2, m6);
    __m256i h = _mm256_srli_epi16(_mm256_andnot_si256(m6, l0), 2);                /* bits 4-5 */
    h = _mm256_srli_epi16(_mm256_or_si256(h, _mm256_andnot_si256(m6, l1)), 2);    /* 2-5 */
    w[1] = _mm256_srli_epi16(_mm256_or_si256(h, _mm256_andnot_si256(m6, l2)), 2); /* 0-5 */
}

/* The scales of sub-blocks g and g + 1 of one row group (sc: scale g of row 0), as s16 per
 * row: dup[h] = (scale g+h, scale g+h) in each lane, for the vpmaddwd of the pair sums, and
 * off = 32 * (scale g, scale g+1), for the offset against a bsum pair. */
struct sc_pair {
    __m256i dup[2], off;
};

INLINE struct sc_pair load_scales(const uint8_t *sc, int rg) {
    const __m128i a = _mm_loadu_si128((const void *)sc);
    const __m128i b = _mm_loadu_si128((const void *)(sc + R));
    const __m256i p = _mm256_cvtepi8_epi16(rg ? _mm_unpackhi_epi8(a, b) : _mm_unpacklo_epi8(a, b));
    /* vpshufb indexes bytes within each 128-bit half: lane k of a half starts at byte 4 k */
    const __m256i lo = _mm256_broadcastsi128_si256(
        _mm_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13));
    const __m256i hi = _mm256_broadcastsi128_si256(
        _mm_setr_epi8(2, 3, 2, 3, 6, 7, 6, 7, 10, 11, 10, 11, 14, 15, 14, 15));
    return (struct sc_pair){.dup = {_mm256_shuffle_epi8(p, lo), _mm256_shuffle_epi8(p, hi)},
                            .off = _mm256_slli_epi16(p, 5)};
}

/* acc + scale * sum of q * a over 8 values of each row (w: two unpacked vectors, a: their 8
 * activations). Two vpmaddubsw are the most that may be added in s16 (header). */
INLINE __m256i dot_half(__m256i acc, const __m256i w[2], const int8_t *a, __m256i scale) {
    const __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(w[0], bcast4(a)),
                                       _mm256_maddubs_epi16(w[1], bcast4(a + 4)));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(s, scale));
}

/* acc[r][t] += the dot of rows 8 (rg0 + r) .. + 7 of the tile with token t, r < nrg, t < nt.
 * Each unpacked quant vector and each scale vector serves all nt tokens. */
INLINE void tile_pass(const uint8_t *tile, int64_t nb, int rg0, int nrg,
                      const struct block_q8_k *const *act, int nt, __m256 acc[2][NT]) {
    for (int r = 0; r < nrg; r++)
        for (int t = 0; t < nt; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *rec = tile + b * REC;
        __m256i dot[2][NT];
        for (int r = 0; r < nrg; r++)
            for (int t = 0; t < nt; t++)
                dot[r][t] = _mm256_setzero_si256();
        for (int g = 0; g < QK_K / 16; g += 2) {
            for (int l = 0; l < 2 * SUB; l += 64)
                _mm_prefetch((const char *)rec + Q_OFF + SUB * g + l + PREFETCH, _MM_HINT_T0);
            struct sc_pair sc[2];
            for (int r = 0; r < nrg; r++)
                sc[r] = load_scales(rec + SC_OFF + R * g, rg0 + r);
            for (int h = 0; h < 2; h++)
                for (int r = 0; r < nrg; r++) {
                    const uint8_t *q = rec + Q_OFF + SUB * (g + h) + 4 * RG * (rg0 + r);
                    const int sub = 16 * (g + h);
                    __m256i w[2];
                    unpack_lo(q, w);
                    for (int t = 0; t < nt; t++)
                        dot[r][t] = dot_half(dot[r][t], w, act[t][b].qs + sub, sc[r].dup[h]);
                    unpack_hi(q, w);
                    for (int t = 0; t < nt; t++)
                        dot[r][t] = dot_half(dot[r][t], w, act[t][b].qs + sub + 8, sc[r].dup[h]);
                }
            for (int t = 0; t < nt; t++) {
                const __m256i bs = bcast4((const int8_t *)(act[t][b].bsums + g));
                for (int r = 0; r < nrg; r++)
                    dot[r][t] = _mm256_sub_epi32(dot[r][t], _mm256_madd_epi16(sc[r].off, bs));
            }
        }
        for (int r = 0; r < nrg; r++) {
            const __m256 d =
                _mm256_cvtph_ps(_mm_loadu_si128((const void *)(rec + 2 * RG * (rg0 + r))));
            for (int t = 0; t < nt; t++) {
                const __m256 da = _mm256_mul_ps(d, _mm256_set1_ps(act[t][b].d));
                acc[r][t] =
                    _mm256_add_ps(acc[r][t], _mm256_mul_ps(da, _mm256_cvtepi32_ps(dot[r][t])));
            }
        }
    }
}

/* y[0 .. n) = v[0 .. n), n <= 8. */
static void store_rows(float *y, int64_t n, __m256 v) {
    if (n >= RG) {
        _mm256_storeu_ps(y, v);
    } else if (n > 0) {
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n),
                                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        _mm256_maskstore_ps(y, mask, v);
    }
}

/* One token: both row groups in one pass, so the tile streams from memory once, in order. */
static void gemv_q6_k_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                         const void *restrict act, float *restrict y) {
    const struct block_q8_k *a[1] = {act};
    for (int64_t r = 0; r < n_rows; r += R) {
        __m256 acc[2][NT];
        tile_pass((const uint8_t *)w + (size_t)r * w_stride, n / QK_K, 0, 2, a, 1, acc);
        store_rows(y + r, n_rows - r, acc[0][0]);
        store_rows(y + r + RG, n_rows - r - RG, acc[1][0]);
    }
}

/* Tokens t0 .. t0 + nt of one row group of a tile (nt a constant in each call below). */
INLINE void gemm_group(const uint8_t *tile, int64_t nb, int rg, const uint8_t *act,
                       size_t act_stride, int64_t t0, int nt, float *y, size_t y_stride,
                       int64_t rows) {
    const struct block_q8_k *a[NT];
    for (int t = 0; t < nt; t++)
        a[t] = (const void *)(act + (size_t)(t0 + t) * act_stride);
    __m256 acc[2][NT];
    tile_pass(tile, nb, rg, 1, a, nt, acc);
    for (int t = 0; t < nt; t++)
        store_rows(y + (size_t)(t0 + t) * y_stride, rows, acc[0][t]);
}

/* Many tokens: per row group of a tile (13 KiB of quants at n = 2048, cached after the first
 * pass), NT tokens per pass, so the unpacking is shared by NT tokens. */
static void gemm_q6_k_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                         const void *restrict act, size_t act_stride, int64_t n_tok,
                         float *restrict y, size_t y_stride) {
    const int64_t nb = n / QK_K;
    for (int64_t r = 0; r < n_rows; r += R) {
        const uint8_t *tile = (const uint8_t *)w + (size_t)r * w_stride;
        for (int rg = 0; rg < 2 && r + RG * rg < n_rows; rg++) {
            const int64_t rows = n_rows - r - RG * rg;
            float *yr = y + r + RG * rg;
#define PASS(t, nt) gemm_group(tile, nb, rg, act, act_stride, (t), nt, yr, y_stride, rows)
            RP_TOKEN_PASSES(n_tok, PASS);
#undef PASS
        }
    }
}

void quant_fill_rp_q6k_avx2(struct quant_kernels *t) {
    rp_k_set_group(&t[TENSOR_TYPE_Q6_K], quant_q6_k_rp_tile, gemv_q6_k_rp, gemm_q6_k_rp);
}
