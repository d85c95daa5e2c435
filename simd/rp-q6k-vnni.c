/* Q6_K over repacked tiles (layout: repack-q6k.c) with AVX-512 VNNI: gemv_rp for decode, gemm_rp
 * for prompt batches, against llama.cpp's Q8_K activations (pack_act = the table's quantize_act,
 * as in the AVX2 form rp-q6k-avx2.c, which says more about the tile).
 *
 * A tile step is 64 bytes, 4 bytes of each of the 16 rows: one zmm holds a whole step, one row
 * per 32-bit lane. Per sub-block g of 16 values, the 3 steps unpack into 4 vectors of 4 unsigned
 * quants q (0..63) per row (as in the AVX2 form); per token, 4 vpdpbusd against the 4 groups of 4
 * activation bytes broadcast give s = sum q a over the sub-block in int32 (no saturation, no
 * pairing limit), the offset of Q6_K's q - 32 comes off as 32 * bsum_g (the Q8_K bsums are
 * exactly the sub-block sums), and a vpmulld by the rows' int8 scale adds it to the
 * super-block's dot. Each super-block's integer dot is exact and is scaled as the scalar
 * dot_q6_k_q8_k scales it, (d * a.d) * (float)dot, then summed over super-blocks in order.
 *
 * Bounds: |s - 32 bsum| <= 16 * 63 * 128 + 32 * 2048 < 2^18; times a scale (|.| <= 128) and
 * summed over 16 sub-blocks < 2^29. */
#include <immintrin.h>
#include <string.h>

#include "avx512-lanes.h"
#include "avx512-q6k.h"
#include "quant.h"
#include "rp-glue.h"

enum {
    NT = 4,                /* tokens per pass of gemm_rp: each unpacked vector serves 4 */
    PREFETCH_OTHER = 4096, /* bytes ahead off Intel: rp_prefetch_distance (rp-glue.h) */
};
_Static_assert(STEP == 64, "a tile step is one 512-bit register");

/* 4 activation bytes in every lane. */
INLINE __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* Slab b (record rec) of a tile against nt tokens (act[t]: token t's Q8_K row): acc[t] += the
 * super-block's dots, scaled. Each unpacked quant vector and each scale vector serves all nt
 * tokens. The quants come unpacked from w (unpack_slab: prompt batches) or, w NULL, are unpacked
 * and prefetched here, `ahead` bytes ahead (decode). */
INLINE void slab_pass(const uint8_t *rec, const __m512i *w, const struct block_q8_k *const *act,
                      int64_t b, int nt, size_t ahead, __m512 *acc) {
    __m512i dot[NT];
    for (int t = 0; t < nt; t++)
        dot[t] = _mm512_setzero_si512();
    for (int g = 0; g < QK_K / 16; g++) {
        __m512i own[4];
        const __m512i *wg = w ? w + 4 * g : own;
        if (!w) {
            for (int l = 0; l < SUB; l += 64)
                _mm_prefetch((const char *)rec + Q_OFF + SUB * g + l + ahead, _MM_HINT_T0);
            unpack(rec + Q_OFF + SUB * g, own);
        }
        const __m512i sc =
            _mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)(rec + SC_OFF + R * g)));
        for (int t = 0; t < nt; t++) {
            const int8_t *a = act[t][b].qs + 16 * g;
            __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wg[0], bcast4(a));
            s = _mm512_dpbusd_epi32(s, wg[1], bcast4(a + 4));
            s = _mm512_dpbusd_epi32(s, wg[2], bcast4(a + 8));
            s = _mm512_dpbusd_epi32(s, wg[3], bcast4(a + 12));
            s = _mm512_sub_epi32(s, _mm512_set1_epi32(32 * act[t][b].bsums[g]));
            dot[t] = _mm512_add_epi32(dot[t], _mm512_mullo_epi32(s, sc));
        }
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)rec));
    for (int t = 0; t < nt; t++) {
        const __m512 da = _mm512_mul_ps(d, _mm512_set1_ps(act[t][b].d));
        acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(da, _mm512_cvtepi32_ps(dot[t])));
    }
}

static void gemv_q6_k_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                         const void *restrict act, float *restrict y) {
    const struct block_q8_k *a[1] = {act};
    const size_t ahead = rp_prefetch_distance(PREFETCH_OTHER);
    for (int64_t r = 0; r < n_rows; r += R) {
        const uint8_t *tile = (const uint8_t *)w + (size_t)r * w_stride;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t b = 0; b < n / QK_K; b++)
            slab_pass(tile + b * REC, NULL, a, b, 1, ahead, &acc);
        _mm512_mask_storeu_ps(y + r, avx512_lanes16(n_rows - r < R ? (int)(n_rows - r) : R), acc);
    }
}

/* Prompt batches: a register block of NR tiles (32 rows) x NT tokens, as rp-q45k-vnni.c's gemm_k:
 * each tile's quants are unpacked once per KC slabs into an L1 buffer (NR x KC slabs x 16
 * sub-blocks x 4 vectors, 32 KiB) that every pass of NT tokens reads. Per sub-block, each
 * broadcast of 4 activation bytes feeds both tiles, and the NR x NT sums are 8 independent
 * vpdpbusd chains (one tile at a time had 4, and waited on their latency). Q6_K's offset of 32
 * leaves the loop: sum_g sc_g (s_g - 32 bsum_g) = sum_g sc_g s_g - 32 sum_g sc_g bsum_g, the
 * second sum in 8 vpmaddwd of the (sc_2k, sc_2k+1) int16 pairs against the token's bsum pairs
 * (a dword of the Q8_K row, |bsum| <= 2048) per tile, token and slab, where the loop paid a
 * subtraction and a broadcast per sub-block. The integers are the same as slab_pass's
 * (|sum_g sc_g s_g| <= 16 * 128 * 16 * 63 * 128 < 2^29), scaled and summed into y in the same
 * order, so the outputs are too. */
enum { KC = 4, NR = 2 };

/* The (sc_2k, sc_2k+1) pairs of a slab's 16 rows as int16 in each row's lane, k = 0..7. */
INLINE void scale_pairs(const uint8_t *rec, __m512i *pairs) {
    for (int k = 0; k < 8; k++) {
        const __m512i lo =
            _mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)(rec + SC_OFF + R * 2 * k)));
        const __m512i hi =
            _mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)(rec + SC_OFF + R * (2 * k + 1))));
        pairs[k] = _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi32(0xffff)),
                                   _mm512_slli_epi32(hi, 16));
    }
}

/* Slab b of nr tiles (record rec[i], quants unpacked at w + i * KC * 64, scale pairs at
 * pairs[i]) against nt tokens (act[t]: token t's Q8_K row): y[t][rows of tile i] += the
 * super-block's dots, scaled. */
INLINE void gemm_slab(const uint8_t *const *rec, const __m512i *w, const __m512i *const *pairs,
                      const struct block_q8_k *const *act, int64_t b, int nr, int nt, float *y,
                      size_t y_stride, const __mmask16 *rows) {
    __m512i dot[NR][NT];
    for (int i = 0; i < nr; i++)
        for (int t = 0; t < nt; t++)
            dot[i][t] = _mm512_setzero_si512();
    for (int g = 0; g < QK_K / 16; g++) {
        __m512i sc[NR], wg[NR][4];
        for (int i = 0; i < nr; i++) {
            sc[i] = _mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)(rec[i] + SC_OFF + R * g)));
            for (int k = 0; k < 4; k++)
                wg[i][k] = w[i * KC * 64 + 4 * g + k];
        }
        for (int t = 0; t < nt; t++) {
            const int8_t *a = act[t][b].qs + 16 * g;
            const __m512i q0 = bcast4(a), q1 = bcast4(a + 4), q2 = bcast4(a + 8),
                          q3 = bcast4(a + 12);
            for (int i = 0; i < nr; i++) {
                __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wg[i][0], q0);
                s = _mm512_dpbusd_epi32(s, wg[i][1], q1);
                s = _mm512_dpbusd_epi32(s, wg[i][2], q2);
                s = _mm512_dpbusd_epi32(s, wg[i][3], q3);
                dot[i][t] = _mm512_add_epi32(dot[i][t], _mm512_mullo_epi32(s, sc[i]));
            }
        }
    }
    for (int t = 0; t < nt; t++) {
        const int16_t *bs = act[t][b].bsums;
        const float ad = act[t][b].d;
        for (int i = 0; i < nr; i++) {
            __m512i off = _mm512_setzero_si512();
            for (int k = 0; k < 8; k++)
                off = _mm512_add_epi32(
                    off, _mm512_madd_epi16(pairs[i][k], bcast4((const int8_t *)(bs + 2 * k))));
            const __m512i sum = _mm512_sub_epi32(dot[i][t], _mm512_slli_epi32(off, 5));
            const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)rec[i]));
            float *yt = y + (size_t)t * y_stride + R * i;
            const __m512 prev = _mm512_maskz_loadu_ps(rows[i], yt);
            _mm512_mask_storeu_ps(
                yt, rows[i],
                _mm512_add_ps(prev, _mm512_mul_ps(_mm512_mul_ps(d, _mm512_set1_ps(ad)),
                                                  _mm512_cvtepi32_ps(sum))));
        }
    }
}

/* Rows [r, r + nr R) (nr tiles, the last possibly short) for every token. */
INLINE void gemm_tiles_q6(int64_t nb, const uint8_t *tile, size_t tile_stride, int64_t r,
                          int64_t n_rows, const uint8_t *act, size_t act_stride, int64_t n_tok,
                          float *y, size_t y_stride, int nr) {
    __m512i wbuf[NR * KC * 64];
    __m512i pbuf[NR * KC * 8];
    __mmask16 rows[NR];
    for (int i = 0; i < nr; i++) {
        const int64_t left = n_rows - r - R * i;
        rows[i] = avx512_lanes16(left < R ? (int)left : R);
    }
    for (int64_t t = 0; t < n_tok; t++)
        for (int i = 0; i < nr; i++)
            _mm512_mask_storeu_ps(y + (size_t)t * y_stride + r + R * i, rows[i],
                                  _mm512_setzero_ps());
    for (int64_t b0 = 0; b0 < nb; b0 += KC) {
        const int64_t b1 = b0 + KC < nb ? b0 + KC : nb;
        for (int i = 0; i < nr; i++)
            for (int64_t b = b0; b < b1; b++) {
                const uint8_t *rec = tile + i * tile_stride + b * REC;
                for (int g = 0; g < QK_K / 16; g++)
                    unpack(rec + Q_OFF + SUB * g, wbuf + i * KC * 64 + 64 * (b - b0) + 4 * g);
                scale_pairs(rec, pbuf + (i * KC + (b - b0)) * 8);
            }
        struct quant_chunk_prefetch pf; /* quant.h says why */
        quant_chunk_prefetch_init(&pf, tile, tile_stride, REC, nb, b1, KC, nr,
                                  (n_tok + NT - 1) / NT);
        for (int64_t t = 0; t < n_tok; t += NT) {
            const int nt = n_tok - t < NT ? (int)(n_tok - t) : NT;
            quant_chunk_prefetch_step(&pf);
            const struct block_q8_k *a[NT];
            for (int u = 0; u < nt; u++)
                a[u] = (const void *)(act + (size_t)(t + u) * act_stride);
            for (int64_t b = b0; b < b1; b++) {
                const uint8_t *rec[NR];
                const __m512i *pr[NR];
                for (int i = 0; i < nr; i++) {
                    rec[i] = tile + i * tile_stride + b * REC;
                    pr[i] = pbuf + (i * KC + (b - b0)) * 8;
                }
                if (nt == NT)
                    gemm_slab(rec, wbuf + 64 * (b - b0), pr, a, b, nr, NT, y + t * y_stride + r,
                              y_stride, rows);
                else
                    for (int u = 0; u < nt; u++)
                        gemm_slab(rec, wbuf + 64 * (b - b0), pr, a + u, b, nr, 1,
                                  y + (t + u) * y_stride + r, y_stride, rows);
            }
        }
    }
}

static void gemm_q6_k_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                         const void *restrict act, size_t act_stride, int64_t n_tok,
                         float *restrict y, size_t y_stride) {
    const int64_t nb = n / QK_K;
    const size_t tile_stride = (size_t)R * w_stride;
    int64_t r = 0;
    for (; r + R < n_rows; r += NR * R) /* a second tile, possibly short */
        gemm_tiles_q6(nb, (const uint8_t *)w + (size_t)r * w_stride, tile_stride, r, n_rows, act,
                      act_stride, n_tok, y, y_stride, NR);
    if (r < n_rows)
        gemm_tiles_q6(nb, (const uint8_t *)w + (size_t)r * w_stride, tile_stride, r, n_rows, act,
                      act_stride, n_tok, y, y_stride, 1);
}

/* Same tiles and Q8_K activations as the AVX2 group (rp_tile stays as set there); pack_act is
 * the table's quantize_act again, now quant_fill_avx512's vector form. */
void quant_fill_rp_q6k_vnni(struct quant_kernels *t) {
    rp_k_set_group(&t[TENSOR_TYPE_Q6_K], NULL, gemv_q6_k_rp, gemm_q6_k_rp);
}
