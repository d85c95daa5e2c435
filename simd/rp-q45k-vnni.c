/* AVX-512 VNNI decode and prompt kernels over repacked Q4_K and Q5_K tiles (layout:
 * repack-q45k.c), against llama.cpp's Q8_K activations as the AVX2 forms (rp-q45k-avx2.c) read
 * them. Why a second form: prefill is bound by the int8 multiplies, and VNNI's vpdpbusd does in
 * one instruction what AVX2 needs vpmaddubsw + vpaddsw (+ vpmaddwd) for, on a 512-bit register
 * that holds a whole tile step (4 bytes of each of the 16 rows, one row per 32-bit lane).
 *
 * Decode, per step s of chunk c: one load, the two nibbles unpacked (and the fifth bits for Q5_K),
 * then two vpdpbusd against the token's 4 activation bytes of sub-blocks 2c and 2c + 1 broadcast
 * to all lanes (prompt batches: gemm_k). vpdpbusd adds in int32 without saturation, so a
 * sub-block's 8 steps need no grouping: |q . a| <= 32 * 31 * 128 per sub-block, times the 6-bit
 * scale (vpmulld) and summed over 8 sub-blocks <= 8 * 63 * 126976 < 2^31. The minimum term sm =
 * sum_j m_j B_j takes 4 vpmaddwd of (m_2k, m_2k+1) int16 pairs against (B_2k, B_2k+1) broadcast,
 * |B_j| <= 32 * 127. Per super-block and row: acc += a.d * (d * si - dmin * sm), the reference's
 * integers and float products (dot_q4_k_q8_k), in another order. */
#include <immintrin.h>
#include <string.h>

#include "avx512-lanes.h"
#include "avx512-q45k.h"
#include "quant.h"
#include "rp-glue.h"

enum {
    NT_GEMM = 4, /* tokens per pass of gemm_rp (x NR_GEMM tiles: the register block) */
    /* Prefetch distance in bytes on non-Intel cores (rp_prefetch_distance, rp-glue.h). On the
     * Zen 5 VM the head GEMV (perf/bench-matmul ... head, 2 threads, chrt, 5 alternating runs)
     * streamed Q4_K / Q5_K at medians 40 / 35 GB/s with 1536 (tuned on an AVX2 machine), 45 / 37
     * with 3072, 61 / 58 with 8192, 57 / 59 with 12288; the 1B Q4_K_M decode went 50 -> 73 t/s (7
     * alternating adakv-bench runs). One core streams more bytes per DRAM latency than the
     * hardware prefetcher runs ahead. */
    PF_DIST_OTHER = 8192,
};
_Static_assert(STEP == 64, "a tile step is one 512-bit register");

/* A volatile asm prefetch stays at its step (rp-q45k-avx2.c says why). */
static ALWAYS_INLINE void prefetch_line(const void *p) {
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
}

/* 4 activation bytes broadcast to every lane. */
static ALWAYS_INLINE __m512i bcast4(const int8_t *q) {
    int32_t v;
    memcpy(&v, q, 4);
    return _mm512_set1_epi32(v);
}

/* A slab's scales unpacked once for every token that passes over it: the 8 sub-block scales and
 * the 4 (m_2k, m_2k+1) int16 pairs of minimums, one row per lane. */
struct slab_scales {
    __m512i sc[8], mp[4];
};

static ALWAYS_INLINE void slab_scales(const uint8_t *sb, struct slab_scales *s) {
    for (int j = 0; j < 8; j++)
        s->sc[j] = scale6(sb, j, 0);
    for (int k = 0; k < 4; k++)
        s->mp[k] =
            _mm512_or_si512(scale6(sb, 2 * k, 1), _mm512_slli_epi32(scale6(sb, 2 * k + 1, 1), 16));
}

/* The pairs (B_2k, B_2k+1) of a Q8_K block's sub-block sums as int16 in the 4 dwords of p, B_j =
 * bsums[2j] + bsums[2j + 1] (exact in int16: |B_j| <= 32 * 127), in 3 vector operations where
 * assembling them in scalar registers took ~40 instructions per token, slab and tile. A dword
 * of p broadcast is the vpmaddwd operand of the minimum term. */
static ALWAYS_INLINE void bsum_pairs(const struct block_q8_k *a, int32_t p[4]) {
    const __m256i b = _mm256_madd_epi16(_mm256_loadu_si256((const void *)a->bsums),
                                        _mm256_set1_epi16(1)); /* B_0..B_7 as int32 */
    _mm_storeu_si128((void *)p,
                     _mm_packs_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1)));
}

/* sm = sum_j m_j B_j of the 16 rows (the scales' minimum pairs) for the pairs p of a token. */
static ALWAYS_INLINE __m512i min_term(const struct slab_scales *sc, const int32_t p[4]) {
    return _mm512_add_epi32(
        _mm512_add_epi32(_mm512_madd_epi16(sc->mp[0], _mm512_set1_epi32(p[0])),
                         _mm512_madd_epi16(sc->mp[1], _mm512_set1_epi32(p[1]))),
        _mm512_add_epi32(_mm512_madd_epi16(sc->mp[2], _mm512_set1_epi32(p[2])),
                         _mm512_madd_epi16(sc->mp[3], _mm512_set1_epi32(p[3]))));
}

/* Decode: one slab (super-block) of a tile for one token (a: its Q8_K block of the slab),
 * unpacking and prefetching as it streams: acc += a.d * (d * si - dmin * sm), one row per lane. */
static ALWAYS_INLINE void slab_dot(const uint8_t *sb, int five, const struct slab_scales *sc,
                                   const struct block_q8_k *a, size_t ahead, __m512 *acc) {
    __m512i si = _mm512_setzero_si512();
    for (int c = 0; c < 4; c++) { /* unrolled: c a constant, immediate shifts */
        __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
        for (int s = 0; s < 8; s++) {
            __m512i wl, wh;
            prefetch_line(sb + OFF_QH + (five ? QK_K / 8 * R : 0) + STEP * (8 * c + s) + ahead);
            step_weights(sb, five, c, s, &wl, &wh);
            const int8_t *q = a->qs + 64 * c + 4 * s;
            lo = _mm512_dpbusd_epi32(lo, wl, bcast4(q));
            hi = _mm512_dpbusd_epi32(hi, wh, bcast4(q + 32));
        }
        si = _mm512_add_epi32(si, _mm512_add_epi32(_mm512_mullo_epi32(lo, sc->sc[2 * c]),
                                                   _mm512_mullo_epi32(hi, sc->sc[2 * c + 1])));
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)sb));
    const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(sb + OFF_DMIN)));
    int32_t p[4];
    bsum_pairs(a, p);
    const __m512 f = _mm512_fnmadd_ps(dmin, _mm512_cvtepi32_ps(min_term(sc, p)),
                                      _mm512_mul_ps(d, _mm512_cvtepi32_ps(si)));
    *acc = _mm512_fmadd_ps(_mm512_set1_ps(a->d), f, *acc);
}

/* Decode: each tile's 16 rows against one token, slab by slab, unpacking as it streams. */
static ALWAYS_INLINE void gemv_k(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                                 const void *restrict act, float *restrict y, int five) {
    const int64_t nb = n / QK_K;
    const size_t slab = R * (five ? sizeof(struct block_q5_k) : sizeof(struct block_q4_k));
    const struct block_q8_k *a = act;
    const size_t ahead = rp_prefetch_distance(PF_DIST_OTHER);
    for (int64_t r = 0; r < n_rows; r += R) {
        const uint8_t *tile = (const uint8_t *)w + (size_t)r * w_stride;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *sb = tile + b * slab;
            for (size_t line = 0; line < slab - QK_K / 2 * R; line += 64) /* all but qs */
                prefetch_line(sb + ahead + line);
            struct slab_scales sc;
            slab_scales(sb, &sc);
            slab_dot(sb, five, &sc, a + b, ahead, &acc);
        }
        _mm512_mask_storeu_ps(y + r, avx512_lanes16(n_rows - r < R ? (int)(n_rows - r) : R), acc);
    }
}

/* Prompt batches: a register block of NR_GEMM tiles (32 rows) x NT_GEMM tokens. The unpack of a
 * step (the nibbles split, Q5_K's fifth bits or-ed in: 3 and 10 vector operations) is done once
 * per tile and KC slabs into a buffer of plain bytes (KC slabs x 64 vectors per tile, the two
 * tiles 32 KiB: it stays in L1) that every token pass then reads, so the inner loop is one
 * broadcast per token and one load per tile feeding NR_GEMM x NT_GEMM vpdpbusd: 12 loads per 16
 * multiplies where one tile at a time needed 10 per 8. A pass runs the sub-blocks one after
 * the other (one int32 sum per tile and token for the current sub-block, scaled into the
 * super-block's sum at its end: 8 + 8 sums + 2 weights fit the 32 registers, where both
 * sub-blocks of a step at once would spill). Tokens in passes of NT_GEMM, the rest one by one; the
 * float sums accumulate in y slab by slab, so the values are those of one pass over all slabs. An
 * odd last tile runs alone (NR 1). Against the one-tile form before it (10 loads per 8
 * multiplies), ffn_up 2048x8192 Q4_K at 512 tokens, 1 thread, 5 alternating chrt runs: minimum
 * 31.4 -> 28.7 ms (perf/bench-matmul 512 9 1b); the 1B Q4_K_M pp512 +8-12%. */
enum { KC = 4, NR_GEMM = 2 };

static ALWAYS_INLINE void unpack_slab(const uint8_t *sb, int five, __m512i *w) {
    for (int c = 0; c < 4; c++)
        for (int s = 0; s < 8; s++)
            step_weights(sb, five, c, s, &w[8 * (2 * c) + s], &w[8 * (2 * c + 1) + s]);
}

/* One slab of nr tiles (tile i unpacked at w + i * KC * 64, its record at sb[i], its scales at
 * sc[i]) for nt tokens: y[t][rows of tile i] += a.d * (d * si - dmin * sm), as slab_dot. The
 * float sums live in y (a masked load and store per slab and token, against 512 vpdpbusd): in
 * registers beside the 16 int32 sums they made gcc spill inside the multiply loop. */
static ALWAYS_INLINE void pass_slab(const __m512i *w, const uint8_t *const *sb,
                                    const struct slab_scales *const *sc,
                                    const struct block_q8_k *const *a, int nr, int nt, float *y,
                                    size_t y_stride, const __mmask16 *rows) {
    __m512i si[NR_GEMM][NT_GEMM];
    for (int i = 0; i < nr; i++)
        for (int t = 0; t < nt; t++)
            si[i][t] = _mm512_setzero_si512();
#pragma GCC unroll 1              /* unrolled 8 x 8 the loop left the op cache: 15% slower */
    for (int j = 0; j < 8; j++) { /* sub-block j: the 8 vectors from w[8 j] */
        __m512i cur[NR_GEMM][NT_GEMM];
        for (int i = 0; i < nr; i++)
            for (int t = 0; t < nt; t++)
                cur[i][t] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int s = 0; s < 8; s++) {
            __m512i wv[NR_GEMM];
            for (int i = 0; i < nr; i++)
                wv[i] = w[i * KC * 64 + 8 * j + s];
            for (int t = 0; t < nt; t++) {
                const __m512i q = bcast4(a[t]->qs + 32 * j + 4 * s);
                for (int i = 0; i < nr; i++)
                    cur[i][t] = _mm512_dpbusd_epi32(cur[i][t], wv[i], q);
            }
        }
        for (int i = 0; i < nr; i++)
            for (int t = 0; t < nt; t++)
                si[i][t] = _mm512_add_epi32(si[i][t], _mm512_mullo_epi32(cur[i][t], sc[i]->sc[j]));
    }
    int32_t p[NT_GEMM][4]; /* each token's pairs, for every tile */
    for (int t = 0; t < nt; t++)
        bsum_pairs(a[t], p[t]);
    for (int i = 0; i < nr; i++) {
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)sb[i]));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(sb[i] + OFF_DMIN)));
        for (int t = 0; t < nt; t++) {
            const __m512i sm = min_term(sc[i], p[t]);
            const __m512 f = _mm512_fnmadd_ps(dmin, _mm512_cvtepi32_ps(sm),
                                              _mm512_mul_ps(d, _mm512_cvtepi32_ps(si[i][t])));
            float *yt = y + t * y_stride + R * i;
            _mm512_mask_storeu_ps(
                yt, rows[i],
                _mm512_fmadd_ps(_mm512_set1_ps(a[t]->d), f, _mm512_maskz_loadu_ps(rows[i], yt)));
        }
    }
}

/* nt tokens (act: the first one's Q8_K row) over slabs [b0, b1) of nr tiles unpacked in w
 * (slab b0 at w[0]) with scales sc (slab b0 at sc[0], tile i at sc + i * KC), summed into y
 * (y: tile 0's rows, tile i's R * i further), zeroed first when b0 == 0. */
static ALWAYS_INLINE void gemm_pass(const __m512i *w, const struct slab_scales *sc,
                                    const uint8_t *tile, size_t tile_stride, size_t slab,
                                    int64_t b0, int64_t b1, const uint8_t *act, size_t act_stride,
                                    int nr, int nt, float *y, size_t y_stride,
                                    const __mmask16 *rows) {
    if (b0 == 0)
        for (int i = 0; i < nr; i++)
            for (int t = 0; t < nt; t++)
                _mm512_mask_storeu_ps(y + t * y_stride + R * i, rows[i], _mm512_setzero_ps());
    for (int64_t b = b0; b < b1; b++) {
        const struct block_q8_k *a[NT_GEMM];
        for (int t = 0; t < nt; t++)
            a[t] = (const struct block_q8_k *)(const void *)(act + t * act_stride) + b;
        const uint8_t *sb[NR_GEMM];
        const struct slab_scales *s[NR_GEMM];
        for (int i = 0; i < nr; i++) {
            sb[i] = tile + i * tile_stride + b * slab;
            s[i] = sc + i * KC + (b - b0);
        }
        pass_slab(w + 64 * (b - b0), sb, s, a, nr, nt, y, y_stride, rows);
    }
}

/* Rows [r, r + nr R) (nr tiles, the last possibly short) for every token. */
static ALWAYS_INLINE void gemm_tiles_k(int64_t nb, const uint8_t *tile, size_t tile_stride,
                                       size_t slab, int64_t r, int64_t n_rows, const uint8_t *a,
                                       size_t act_stride, int64_t n_tok, float *y, size_t y_stride,
                                       int five, int nr) {
    struct slab_scales sc[NR_GEMM * KC];
    __m512i wbuf[NR_GEMM * KC * 64];
    __mmask16 rows[NR_GEMM];
    for (int i = 0; i < nr; i++) {
        const int64_t left = n_rows - r - R * i;
        rows[i] = avx512_lanes16(left < R ? (int)left : R);
    }
    for (int64_t b0 = 0; b0 < nb; b0 += KC) {
        const int64_t b1 = b0 + KC < nb ? b0 + KC : nb;
        for (int i = 0; i < nr; i++)
            for (int64_t b = b0; b < b1; b++) {
                const uint8_t *sb = tile + i * tile_stride + b * slab;
                slab_scales(sb, &sc[i * KC + (b - b0)]);
                unpack_slab(sb, five, wbuf + i * KC * 64 + 64 * (b - b0));
            }
        /* the next chunk's weights (or the next tiles' first chunk) on their way in while
         * this one computes, a share per pass */
        struct quant_chunk_prefetch pf;
        quant_chunk_prefetch_init(&pf, tile, tile_stride, slab, nb, b1, KC, nr,
                                  (n_tok + NT_GEMM - 1) / NT_GEMM);
        int64_t t = 0;
        for (; t + NT_GEMM <= n_tok; t += NT_GEMM) {
            quant_chunk_prefetch_step(&pf);
            gemm_pass(wbuf, sc, tile, tile_stride, slab, b0, b1, a + t * act_stride, act_stride, nr,
                      NT_GEMM, y + t * y_stride + r, y_stride, rows);
        }
        for (; t < n_tok; t++)
            gemm_pass(wbuf, sc, tile, tile_stride, slab, b0, b1, a + t * act_stride, act_stride, nr,
                      1, y + t * y_stride + r, y_stride, rows);
    }
}

static ALWAYS_INLINE void gemm_k(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                                 const void *restrict act, size_t act_stride, int64_t n_tok,
                                 float *restrict y, size_t y_stride, int five) {
    const int64_t nb = n / QK_K;
    const size_t slab = R * (five ? sizeof(struct block_q5_k) : sizeof(struct block_q4_k));
    const size_t tile_stride = (size_t)R * w_stride;
    int64_t r = 0;
    for (; r + R < n_rows; r += NR_GEMM * R) /* a second tile, possibly short */
        gemm_tiles_k(nb, (const uint8_t *)w + (size_t)r * w_stride, tile_stride, slab, r, n_rows,
                     act, act_stride, n_tok, y, y_stride, five, NR_GEMM);
    if (r < n_rows)
        gemm_tiles_k(nb, (const uint8_t *)w + (size_t)r * w_stride, tile_stride, slab, r, n_rows,
                     act, act_stride, n_tok, y, y_stride, five, 1);
}

RP_K45_KERNELS

/* Same tiles and Q8_K activations as the AVX2 group (rp_tile stays as set there); pack_act is
 * the table's quantize_act again, now quant_fill_avx512's vector form (the AVX2 fill took the
 * scalar one that stood before it). */
void quant_fill_rp_q45k_vnni(struct quant_kernels *t) {
    rp_k_set_group(&t[TENSOR_TYPE_Q4_K], NULL, gemv_q4_k_rp, gemm_q4_k_rp);
    rp_k_set_group(&t[TENSOR_TYPE_Q5_K], NULL, gemv_q5_k_rp, gemm_q5_k_rp);
}
