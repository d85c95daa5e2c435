/* AVX-512 VNNI decode and prompt kernels over repacked Q4_K and Q5_K tiles (layout:
 * repack-q45k.c), against llama.cpp's Q8_K activations as the AVX2 forms (rp-q45k-avx2.c) read
 * them. Why a second form: prefill is bound by the int8 multiplies, and VNNI's vpdpbusd does in
 * one instruction what AVX2 needs vpmaddubsw + vpaddsw (+ vpmaddwd) for, on a 512-bit register
 * that holds a whole tile step (4 bytes of each of the 16 rows, one row per 32-bit lane).
 *
 * Per step s of chunk c: one load, the two nibbles unpacked (and the fifth bits for Q5_K) once,
 * then for each token two vpdpbusd against the token's 4 activation bytes of sub-blocks 2c and
 * 2c + 1 broadcast to all lanes. vpdpbusd adds in int32 without saturation, so a sub-block's
 * 8 steps need no grouping: |q . a| <= 32 * 31 * 128 per sub-block, times the 6-bit scale
 * (vpmulld) and summed over 8 sub-blocks <= 8 * 63 * 126976 < 2^31. The minimum term
 * sm = sum_j m_j B_j takes 4 vpmaddwd of (m_2k, m_2k+1) int16 pairs against (B_2k, B_2k+1)
 * broadcast, |B_j| <= 32 * 127. Per super-block and row: acc += a.d * (d * si - dmin * sm), the
 * reference's integers and float products (dot_q4_k_q8_k), in another order.
 *
 * Instructions per 64 weight bytes (16 rows x 4) and token in gemm_rp: 2 vpdpbusd and 2
 * broadcasts, plus 2 loads of unpacked weights shared by NT_GEMM tokens (the unpack itself runs
 * once per tile and prompt batch: gemm_k). */
#include <immintrin.h>
#include <string.h>

#include "avx512-lanes.h"
#include "quant.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

enum {
    R = QUANT_RP_ROWS,
    STEP = 4 * R, /* bytes of one qs / qh step: one zmm */
    OFF_DMIN = 2 * R,
    OFF_SC = 4 * R,
    OFF_QH = 16 * R,
    NT_GEMM = 4, /* tokens per pass of gemm_rp: 6 and 8 spill (measured slower) */
    /* Prefetch distance in bytes. On the Zen 5 VM the head GEMV (perf/bench-matmul ... head, 2
     * threads, chrt, 5 alternating runs) streamed Q4_K / Q5_K at medians 40 / 35 GB/s with 1536
     * (tuned on an AVX2 machine), 45 / 37 with 3072, 61 / 58 with 8192, 57 / 59 with 12288; the 1B
     * Q4_K_M decode went 50 -> 73 t/s (7 alternating adakv-bench runs). One core streams more
     * bytes per DRAM latency than the hardware prefetcher runs ahead. */
    PF_DIST = 8192,
};
_Static_assert(STEP == 64, "a tile step is one 512-bit register");

/* Byte k (0..11) of the 16 rows' native scales, zero-extended to the rows' int32 lanes. */
static ALWAYS_INLINE __m512i scale_bytes(const uint8_t *sb, int k) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const void *)(sb + OFF_SC + R * k)));
}

/* The 6-bit scale (min 0) or minimum (min 1) of sub-block j of the 16 rows, one per int32 lane:
 * quant_k_scale_min() lane by lane. */
static ALWAYS_INLINE __m512i scale6(const uint8_t *sb, int j, int min) {
    if (j < 4)
        return _mm512_and_si512(scale_bytes(sb, j + 4 * min), _mm512_set1_epi32(63));
    const __m512i q = scale_bytes(sb, j + 4);
    const __m512i lo = _mm512_and_si512(min ? _mm512_srli_epi32(q, 4) : q, _mm512_set1_epi32(15));
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi32(scale_bytes(sb, j - 4 + 4 * min), 2),
                                        _mm512_set1_epi32(0x30));
    return _mm512_or_si512(lo, hi);
}

/* Bit k of every byte moved to bit 4 (the fifth bit of a Q5_K weight), others cleared. */
static ALWAYS_INLINE __m512i fifth_bit(__m512i qh, int k) {
    const __m512i v = k < 4   ? _mm512_slli_epi16(qh, 4 - k)
                      : k > 4 ? _mm512_srli_epi16(qh, k - 4)
                              : qh;
    return _mm512_and_si512(v, _mm512_set1_epi8(0x10));
}

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

/* Step s of chunk c (sub-blocks 2c, 2c + 1: qs step 8c + s) of one slab as bytes: the low
 * nibbles (sub-block 2c) to *wl, the high ones (2c + 1) to *wh, with Q5_K's fifth bits. */
static ALWAYS_INLINE void step_weights(const uint8_t *sb, int five, int c, int s, __m512i *wl,
                                       __m512i *wh) {
    const uint8_t *qs = sb + OFF_QH + (five ? QK_K / 8 * R : 0) + STEP * (8 * c + s);
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i z = _mm512_loadu_si512((const void *)qs);
    *wl = _mm512_and_si512(z, m4);
    *wh = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
    if (five) {
        const __m512i v = _mm512_loadu_si512((const void *)(sb + OFF_QH + STEP * s));
        *wl = _mm512_or_si512(*wl, fifth_bit(v, 2 * c));
        *wh = _mm512_or_si512(*wh, fifth_bit(v, 2 * c + 1));
    }
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

/* (B_2k, B_2k+1) as two int16 in every lane, B_j = bsums[2j] + bsums[2j + 1] (exact in int16). */
static ALWAYS_INLINE __m512i bsum_pair(const struct block_q8_k *a, int k) {
    const int32_t b0 = a->bsums[4 * k] + a->bsums[4 * k + 1];
    const int32_t b1 = a->bsums[4 * k + 2] + a->bsums[4 * k + 3];
    return _mm512_set1_epi32((int32_t)((uint32_t)(uint16_t)b0 | (uint32_t)b1 << 16));
}

/* One slab (super-block) of a tile for nt tokens (a[t]: the token's Q8_K block of it):
 * acc[t] += a.d * (d * si - dmin * sm), one row per lane. The weights come unpacked from w
 * (unpack_slab: prompt batches) or, w NULL, are unpacked and prefetched here (decode). */
static ALWAYS_INLINE void slab_dot(const uint8_t *sb, int five, const __m512i *w,
                                   const struct slab_scales *sc, const struct block_q8_k *const *a,
                                   int nt, __m512 *acc) {
    __m512i si[NT_GEMM];
    for (int t = 0; t < nt; t++)
        si[t] = _mm512_setzero_si512();
    for (int c = 0; c < 4; c++) { /* unrolled: c a constant, immediate shifts */
        __m512i lo[NT_GEMM], hi[NT_GEMM];
        for (int t = 0; t < nt; t++)
            lo[t] = hi[t] = _mm512_setzero_si512();
        for (int s = 0; s < 8; s++) {
            __m512i wl, wh;
            if (w) {
                wl = w[2 * (8 * c + s)];
                wh = w[2 * (8 * c + s) + 1];
            } else {
                prefetch_line(sb + OFF_QH + (five ? QK_K / 8 * R : 0) + STEP * (8 * c + s) +
                              PF_DIST);
                step_weights(sb, five, c, s, &wl, &wh);
            }
            for (int t = 0; t < nt; t++) {
                const int8_t *q = a[t]->qs + 64 * c + 4 * s;
                lo[t] = _mm512_dpbusd_epi32(lo[t], wl, bcast4(q));
                hi[t] = _mm512_dpbusd_epi32(hi[t], wh, bcast4(q + 32));
            }
        }
        for (int t = 0; t < nt; t++)
            si[t] = _mm512_add_epi32(
                si[t], _mm512_add_epi32(_mm512_mullo_epi32(lo[t], sc->sc[2 * c]),
                                        _mm512_mullo_epi32(hi[t], sc->sc[2 * c + 1])));
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)sb));
    const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(sb + OFF_DMIN)));
    for (int t = 0; t < nt; t++) {
        const __m512i sm =
            _mm512_add_epi32(_mm512_add_epi32(_mm512_madd_epi16(sc->mp[0], bsum_pair(a[t], 0)),
                                              _mm512_madd_epi16(sc->mp[1], bsum_pair(a[t], 1))),
                             _mm512_add_epi32(_mm512_madd_epi16(sc->mp[2], bsum_pair(a[t], 2)),
                                              _mm512_madd_epi16(sc->mp[3], bsum_pair(a[t], 3))));
        const __m512 f = _mm512_fnmadd_ps(dmin, _mm512_cvtepi32_ps(sm),
                                          _mm512_mul_ps(d, _mm512_cvtepi32_ps(si[t])));
        acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(a[t]->d), f, acc[t]);
    }
}

/* Decode: each tile's 16 rows against one token, slab by slab, unpacking as it streams. */
static ALWAYS_INLINE void gemv_k(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                                 const void *restrict act, float *restrict y, int five) {
    const int64_t nb = n / QK_K;
    const size_t slab = R * (five ? sizeof(struct block_q5_k) : sizeof(struct block_q4_k));
    const struct block_q8_k *a = act;
    for (int64_t r = 0; r < n_rows; r += R) {
        const uint8_t *tile = (const uint8_t *)w + (size_t)r * w_stride;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *sb = tile + b * slab;
            const struct block_q8_k *ab = a + b;
            for (size_t line = 0; line < slab - QK_K / 2 * R; line += 64) /* all but qs */
                prefetch_line(sb + PF_DIST + line);
            struct slab_scales sc;
            slab_scales(sb, &sc);
            slab_dot(sb, five, NULL, &sc, &ab, 1, &acc);
        }
        _mm512_mask_storeu_ps(y + r, avx512_lanes16(n_rows - r < R ? (int)(n_rows - r) : R), acc);
    }
}

/* Prompt batches. The unpack of a step (the nibbles split, Q5_K's fifth bits or-ed in: 3 and 10
 * vector operations) is done once per tile and KC slabs into a buffer of plain bytes that every
 * token pass then reads, so the inner loop is loads and vpdpbusd only; the buffer (KC slabs x 64
 * vectors, 32 KiB) stays in L1. In a 1-thread chrt A/B (perf/bench-matmul 512 3 1b) the 1B
 * shapes' prompt products took 15-30% less time on Q4_K and 30-40% less on Q5_K than unpacking
 * in every pass. Tokens in passes of NT_GEMM, the rest one by one; a pass's float sums are kept
 * in y between KC chunks (read back and added in the same order, so the values are those of one
 * pass over all slabs). The tile's scales are unpacked once for all passes. */
enum { KC = 8 };

static ALWAYS_INLINE void unpack_slab(const uint8_t *sb, int five, __m512i *w) {
    for (int c = 0; c < 4; c++)
        for (int s = 0; s < 8; s++)
            step_weights(sb, five, c, s, &w[2 * (8 * c + s)], &w[2 * (8 * c + s) + 1]);
}

/* nt tokens (act: the first one's Q8_K row) over slabs [b0, b1) of a tile unpacked in w (slab b0
 * at w[0]); the sums start at zero (b0 == 0) or from y. */
static ALWAYS_INLINE void gemm_pass(const __m512i *w, const uint8_t *tile, size_t slab,
                                    const struct slab_scales *sc, int64_t b0, int64_t b1,
                                    const uint8_t *act, size_t act_stride, int nt, float *y,
                                    size_t y_stride, __mmask16 rows) {
    __m512 acc[NT_GEMM];
    for (int t = 0; t < nt; t++)
        acc[t] = b0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(rows, y + t * y_stride);
    for (int64_t b = b0; b < b1; b++) {
        const struct block_q8_k *a[NT_GEMM];
        for (int t = 0; t < nt; t++)
            a[t] = (const struct block_q8_k *)(const void *)(act + t * act_stride) + b;
        slab_dot(tile + b * slab, 0, w + 64 * (b - b0), &sc[b], a, nt, acc);
    }
    for (int t = 0; t < nt; t++)
        _mm512_mask_storeu_ps(y + t * y_stride, rows, acc[t]);
}

static ALWAYS_INLINE void gemm_k(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                                 const void *restrict act, size_t act_stride, int64_t n_tok,
                                 float *restrict y, size_t y_stride, int five) {
    const int64_t nb = n / QK_K;
    const size_t slab = R * (five ? sizeof(struct block_q5_k) : sizeof(struct block_q4_k));
    const uint8_t *a = act;
    struct slab_scales sc[QUANT_GEMM_MAX_N / QK_K]; /* 96 KiB at the largest n, 6 KiB at 2048 */
    __m512i wbuf[KC * 64];                          /* 32 KiB: KC slabs unpacked */
    if (nb > QUANT_GEMM_MAX_N / QK_K)               /* matmul never calls with more (quant.h) */
        __builtin_unreachable();
    for (int64_t r = 0; r < n_rows; r += R) {
        const uint8_t *tile = (const uint8_t *)w + (size_t)r * w_stride;
        const __mmask16 rows = avx512_lanes16(n_rows - r < R ? (int)(n_rows - r) : R);
        for (int64_t b = 0; b < nb; b++)
            slab_scales(tile + b * slab, &sc[b]);
        for (int64_t b0 = 0; b0 < nb; b0 += KC) {
            const int64_t b1 = b0 + KC < nb ? b0 + KC : nb;
            for (int64_t b = b0; b < b1; b++)
                unpack_slab(tile + b * slab, five, wbuf + 64 * (b - b0));
            int64_t t = 0;
            for (; t + NT_GEMM <= n_tok; t += NT_GEMM)
                gemm_pass(wbuf, tile, slab, sc, b0, b1, a + t * act_stride, act_stride, NT_GEMM,
                          y + t * y_stride + r, y_stride, rows);
            for (; t < n_tok; t++)
                gemm_pass(wbuf, tile, slab, sc, b0, b1, a + t * act_stride, act_stride, 1,
                          y + t * y_stride + r, y_stride, rows);
        }
    }
}

static void gemv_q4_k_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                         const void *restrict act, float *restrict y) {
    gemv_k(n, w, w_stride, n_rows, act, y, 0);
}

static void gemv_q5_k_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                         const void *restrict act, float *restrict y) {
    gemv_k(n, w, w_stride, n_rows, act, y, 1);
}

static void gemm_q4_k_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                         const void *restrict act, size_t act_stride, int64_t n_tok,
                         float *restrict y, size_t y_stride) {
    gemm_k(n, w, w_stride, n_rows, act, act_stride, n_tok, y, y_stride, 0);
}

static void gemm_q5_k_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                         const void *restrict act, size_t act_stride, int64_t n_tok,
                         float *restrict y, size_t y_stride) {
    gemm_k(n, w, w_stride, n_rows, act, act_stride, n_tok, y, y_stride, 1);
}

/* Same tiles and Q8_K activations as the AVX2 group (rp_tile stays as set there); pack_act is
 * the table's quantize_act again, now quant_fill_avx512's vector form (the AVX2 fill took the
 * scalar one that stood before it). */
void quant_fill_rp_q45k_vnni(struct quant_kernels *t) {
    t[TENSOR_TYPE_Q4_K].pack_act = t[TENSOR_TYPE_Q4_K].quantize_act;
    t[TENSOR_TYPE_Q5_K].pack_act = t[TENSOR_TYPE_Q5_K].quantize_act;
    t[TENSOR_TYPE_Q4_K].gemv_rp = gemv_q4_k_rp;
    t[TENSOR_TYPE_Q4_K].gemm_rp = gemm_q4_k_rp;
    t[TENSOR_TYPE_Q5_K].gemv_rp = gemv_q5_k_rp;
    t[TENSOR_TYPE_Q5_K].gemm_rp = gemm_q5_k_rp;
}
