/* AVX-512 VNNI decode and prompt kernels over repacked Q4_1 and Q8_0 tiles (layouts:
 * quant-repack.c), against the activation packings of the native VNNI kernels (quant-avx512-vnni.c:
 * pack_act_q8_1 for Q4_1, pack_act_q8_0u for Q8_0, one layout for both: qs[np * 64] bytes, then
 * dpair[np * 16] f32 with block 2p's scale in lanes 0-7 and 2p + 1's in lanes 8-15, then the
 * Q8_1 block sums s[]). quant_fill_avx512_vnni sets those packings; the AVX-512 list
 * (kernels-avx512.h) runs quant_fill_rp_q32_vnni after it.
 *
 * Why gemm_rp here: without it a VNNI machine kept each Q4_1 / Q8_0 weight twice, the native
 * rows for prompt batches beside the tiles for decode (twice the file in memory). The prompt
 * kernels run NT tokens per pass over a tile, each unpacked weight vector serving all of them,
 * with per token the same integer dots and float operations, in the same order, as gemv_rp. */
#include <immintrin.h>
#include <string.h>

#include "avx512-lanes.h"
#include "quant.h"
#include "rp-glue.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

enum {
    R = QUANT_RP_ROWS,
    NT = 4, /* tokens per pass of gemm_rp over a tile */
    /* Decode prefetch distance in bytes off Intel cores (rp_prefetch_distance, rp-glue.h): DRAM
     * latency times the rate one core streams is a few KiB, and the hardware prefetcher alone
     * left the head GEMV at STREAM's rate (rp-q45k-vnni.c measured the distances). */
    PF_DIST_OTHER = 8192,
};

/* The bytes [p + ahead, p + ahead + len) towards L1 (a hint: never faults). A volatile asm
 * prefetch stays at its step (rp-q45k-avx2.c says why). */
static inline __attribute__((always_inline)) void prefetch_ahead(const uint8_t *p, size_t ahead,
                                                                 size_t len) {
    for (size_t o = 0; o < len; o += 64)
        __asm__ volatile("prefetcht0 %0" : : "m"(p[ahead + o]));
}

/* The packed activation row of n values at act (layout above): quants, block scales, sums. */
struct act_row {
    const int8_t *q;
    const float *dp, *s;
};

static ALWAYS_INLINE struct act_row act_row(const void *act, int64_t n) {
    const int64_t np = (n / QK + 1) / 2;
    const int8_t *q = act;
    const float *dp = (const float *)(const void *)(q + np * 64);
    return (struct act_row){.q = q, .dp = dp, .s = dp + np * 16};
}

/* Block b's activation scale in the dpair layout. */
static ALWAYS_INLINE float act_d(const struct act_row *a, int64_t b) {
    return a->dp[(b / 2) * 16 + (b % 2) * 8];
}

static ALWAYS_INLINE int32_t load4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Decode over repacked Q4_1 tiles (quant.h, quant_q4_1_rp_tile), 16 rows at a time, one row
 * per 32-bit lane. Per block and tile: 4 loads of 64 bytes, each split by a mask and a
 * shift-and-mask into 4 weights of every row for the block's low and high halves, and 8
 * vpdpbusd against 4 activation bytes broadcast from memory; then one FMA with the 16 row scales
 * times the activation scale and one with the 16 minimums times the activation block sum.
 * About 3 instructions per 32 weight bytes, against about 8 for rows repacked one by one (which
 * needed a horizontal sum per block and row and left decode bound by instructions on 2 cores;
 * with the tiles it is bound by memory). */
static void gemv_q4_1_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                         const void *restrict act, float *restrict y) {
    const int64_t nb = n / QK, np = (nb + 1) / 2;
    const int8_t *qa = act;
    const float *dp = (const float *)(qa + np * 64), *s = dp + np * 16;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const size_t ahead = rp_prefetch_distance(PF_DIST_OTHER);
    for (int64_t r = 0; r < n_rows; r += R) {
        const uint8_t *t = (const uint8_t *)w + (size_t)r * w_stride;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++, t += R * sizeof(struct block_q4_1)) {
            prefetch_ahead(t, ahead, R * sizeof(struct block_q4_1));
            const int8_t *a = qa + QK * b;
            __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
            for (int st = 0; st < 4; st++) {
                const __m512i z = _mm512_loadu_si512(t + 4 * R + 64 * st);
                int32_t a_lo, a_hi;
                memcpy(&a_lo, a + 4 * st, 4);
                memcpy(&a_hi, a + 16 + 4 * st, 4);
                lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(z, m4), _mm512_set1_epi32(a_lo));
                hi = _mm512_dpbusd_epi32(hi, _mm512_and_si512(_mm512_srli_epi16(z, 4), m4),
                                         _mm512_set1_epi32(a_hi));
            }
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)t));
            const __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(t + 2 * R)));
            const __m512 da = _mm512_set1_ps(dp[(b / 2) * 16 + (b % 2) * 8]);
            /* the block's minimum term and scaled dot into one sum, as vec_dot adds them */
            acc = _mm512_fmadd_ps(mw, _mm512_set1_ps(s[b]), acc);
            acc = _mm512_fmadd_ps(_mm512_mul_ps(dw, da),
                                  _mm512_cvtepi32_ps(_mm512_add_epi32(lo, hi)), acc);
        }
        const int nr = n_rows - r < R ? (int)(n_rows - r) : R;
        _mm512_mask_storeu_ps(y + r, avx512_lanes16(nr), acc);
    }
}

/* A Q8_0 activation row packed as q + 128 turned back into q (the signed operand of vpdpbusd
 * against the tile's w + 128) in qs, and 128 * sum(q) of each block in corr: the correction of
 * the unsigned weights, as gemv_q8_0_rp computes both. Done once per token group, so that the
 * tile loop broadcasts q straight from memory: flipping each broadcast's top bits there went
 * through a general register (load, xor, vpbroadcastd from it) and ran the 4-token GEMM at 475
 * GOP/s in L1. */
static void q8_0_signed(const uint8_t *qu, int64_t nb, int8_t *qs, int32_t *corr) {
    const __m256i flip = _mm256_set1_epi8(-128);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i u = _mm256_loadu_si256((const void *)(qu + QK * b));
        _mm256_storeu_si256((void *)(qs + QK * b), _mm256_xor_si256(u, flip));
        const __m256i sad = _mm256_sad_epu8(u, _mm256_setzero_si256());
        const int64_t su = _mm256_extract_epi64(sad, 0) + _mm256_extract_epi64(sad, 1) +
                           _mm256_extract_epi64(sad, 2) + _mm256_extract_epi64(sad, 3);
        corr[b] = 128 * (int32_t)(su - 128 * QK);
    }
}

/* Decode over repacked Q8_0 tiles (quant.h, quant_q8_0_rp_tile), 16 rows at a time, one row per
 * 32-bit lane: the tile's unsigned weights w + 128 against signed activation bytes broadcast
 * from memory, so sum((w + 128) q) - 128 sum(q) is the dot, exact in int32. The activation row
 * comes packed as q + 128 (pack_act_q8_0u, shared with gemm); it is turned back into q, with
 * its block sums, once per call (q8_0_signed). */
static void gemv_q8_0_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                         const void *restrict act, float *restrict y) {
    const int64_t nb = n / QK, np = (nb + 1) / 2;
    const uint8_t *qu = act;
    const float *dp = (const float *)(qu + np * 64);
    _Alignas(64) int8_t q[QUANT_GEMM_MAX_N];
    int32_t corr[QUANT_GEMM_MAX_N / QK];
    q8_0_signed(qu, nb, q, corr);
    const size_t ahead = rp_prefetch_distance(PF_DIST_OTHER);
    for (int64_t r = 0; r < n_rows; r += R) {
        const uint8_t *t = (const uint8_t *)w + (size_t)r * w_stride;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++, t += R * sizeof(struct block_q8_0)) {
            prefetch_ahead(t, ahead, R * sizeof(struct block_q8_0));
            const int8_t *a = q + QK * b;
            __m512i d2[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
            for (int st = 0; st < 8; st++) {
                int32_t a4;
                memcpy(&a4, a + 4 * st, 4);
                d2[st % 2] = _mm512_dpbusd_epi32(
                    d2[st % 2], _mm512_loadu_si512(t + 2 * R + 64 * st), _mm512_set1_epi32(a4));
            }
            const __m512i dot =
                _mm512_sub_epi32(_mm512_add_epi32(d2[0], d2[1]), _mm512_set1_epi32(corr[b]));
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)t));
            const __m512 da = _mm512_set1_ps(dp[(b / 2) * 16 + (b % 2) * 8]);
            acc = _mm512_fmadd_ps(_mm512_mul_ps(dw, da), _mm512_cvtepi32_ps(dot), acc);
        }
        const int nr = n_rows - r < R ? (int)(n_rows - r) : R;
        _mm512_mask_storeu_ps(y + r, avx512_lanes16(nr), acc);
    }
}

/* The 16 rows of one Q4_1 tile against nt tokens: out[t] (per row lane) as gemv_q4_1_rp. */
static ALWAYS_INLINE void q4_1_tile(const uint8_t *t, int64_t nb, const struct act_row *a, int nt,
                                    __m512 *out) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int k = 0; k < nt; k++)
        out[k] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, t += R * sizeof(struct block_q4_1)) {
        __m512i lo[NT], hi[NT];
        for (int k = 0; k < nt; k++)
            lo[k] = hi[k] = _mm512_setzero_si512();
        for (int st = 0; st < 4; st++) {
            const __m512i z = _mm512_loadu_si512(t + 4 * R + 64 * st);
            const __m512i wl = _mm512_and_si512(z, m4);
            const __m512i wh = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
            for (int k = 0; k < nt; k++) {
                const int8_t *q = a[k].q + QK * b + 4 * st;
                lo[k] = _mm512_dpbusd_epi32(lo[k], wl, _mm512_set1_epi32(load4(q)));
                hi[k] = _mm512_dpbusd_epi32(hi[k], wh, _mm512_set1_epi32(load4(q + 16)));
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)t));
        const __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(t + 2 * R)));
        for (int k = 0; k < nt; k++) {
            const __m512 da = _mm512_set1_ps(act_d(&a[k], b));
            /* as in gemv_q4_1_rp, one sum per token (two, of the dots and of the minimum
             * terms over all blocks, added at the end, cancel more: the default model's int8-KV
             * golden run gave mean KL 0.0037 and top-1 94.8% with them, 0.0033 and 95.1%
             * with one) */
            out[k] = _mm512_fmadd_ps(mw, _mm512_set1_ps(a[k].s[b]), out[k]);
            out[k] = _mm512_fmadd_ps(_mm512_mul_ps(dw, da),
                                     _mm512_cvtepi32_ps(_mm512_add_epi32(lo[k], hi[k])), out[k]);
        }
    }
}

/* The 16 rows of one Q8_0 tile against nt tokens (qs[k]: token k's signed quants, from
 * q8_0_signed): out[t] as gemv_q8_0_rp. */
static ALWAYS_INLINE void q8_0_tile(const uint8_t *t, int64_t nb, const struct act_row *a,
                                    const int8_t (*qs)[QUANT_GEMM_MAX_N],
                                    const int32_t (*corr)[QUANT_GEMM_MAX_N / QK], int nt,
                                    __m512 *out) {
    for (int k = 0; k < nt; k++)
        out[k] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, t += R * sizeof(struct block_q8_0)) {
        __m512i d[NT];
        for (int k = 0; k < nt; k++)
            d[k] = _mm512_setzero_si512();
        for (int st = 0; st < 8; st++) {
            const __m512i wv = _mm512_loadu_si512(t + 2 * R + 64 * st);
            for (int k = 0; k < nt; k++) {
                d[k] = _mm512_dpbusd_epi32(d[k], wv,
                                           _mm512_set1_epi32(load4(qs[k] + QK * b + 4 * st)));
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)t));
        for (int k = 0; k < nt; k++) {
            const __m512i dot = _mm512_sub_epi32(d[k], _mm512_set1_epi32(corr[k][b]));
            const __m512 da = _mm512_set1_ps(act_d(&a[k], b));
            out[k] = _mm512_fmadd_ps(_mm512_mul_ps(dw, da), _mm512_cvtepi32_ps(dot), out[k]);
        }
    }
}

/* Tokens t0 .. t0 + nt (nt a constant in each call) over every tile of the rows: the group's
 * corrections made once, the tiles (a few, from matmul's row blocks) re-read from cache. */
static ALWAYS_INLINE void gemm_group(int q8, int64_t n, const uint8_t *w, size_t w_stride,
                                     int64_t n_rows, const uint8_t *act, size_t act_stride,
                                     int64_t t0, int nt, float *y, size_t y_stride) {
    const int64_t nb = n / QK;
    struct act_row a[NT];
    /* Q8_0: 128 + 16 KiB of stack (gemv_q8_0_rp takes 32 + 4) */
    _Alignas(64) int8_t qs[q8 ? NT : 1][QUANT_GEMM_MAX_N];
    int32_t corr[q8 ? NT : 1][QUANT_GEMM_MAX_N / QK];
    for (int k = 0; k < nt; k++) {
        a[k] = act_row(act + (size_t)(t0 + k) * act_stride, n);
        if (q8)
            q8_0_signed((const uint8_t *)a[k].q, nb, qs[k], corr[k]);
    }
    for (int64_t r = 0; r < n_rows; r += R) {
        __m512 out[NT];
        const uint8_t *tile = w + (size_t)r * w_stride;
        if (q8)
            q8_0_tile(tile, nb, a, (const int8_t(*)[QUANT_GEMM_MAX_N])qs,
                      (const int32_t(*)[QUANT_GEMM_MAX_N / QK]) corr, nt, out);
        else
            q4_1_tile(tile, nb, a, nt, out);
        for (int k = 0; k < nt; k++)
            _mm512_mask_storeu_ps(y + (size_t)(t0 + k) * y_stride + r,
                                  avx512_lanes16((int)(n_rows - r < R ? n_rows - r : R)), out[k]);
    }
}

static ALWAYS_INLINE void gemm_rp(int q8, int64_t n, const void *restrict w, size_t w_stride,
                                  int64_t n_rows, const void *restrict act, size_t act_stride,
                                  int64_t n_tok, float *restrict y, size_t y_stride) {
#define PASS(t, nt) gemm_group(q8, n, w, w_stride, n_rows, act, act_stride, (t), nt, y, y_stride)
    RP_TOKEN_PASSES(n_tok, PASS);
#undef PASS
}

static void gemm_q4_1_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                         const void *restrict act, size_t act_stride, int64_t n_tok,
                         float *restrict y, size_t y_stride) {
    gemm_rp(0, n, w, w_stride, n_rows, act, act_stride, n_tok, y, y_stride);
}

static void gemm_q8_0_rp(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                         const void *restrict act, size_t act_stride, int64_t n_tok,
                         float *restrict y, size_t y_stride) {
    gemm_rp(1, n, w, w_stride, n_rows, act, act_stride, n_tok, y, y_stride);
}

void quant_fill_rp_q32_vnni(struct quant_kernels *t) {
    t[TENSOR_TYPE_Q4_1].gemv_rp = gemv_q4_1_rp;
    t[TENSOR_TYPE_Q4_1].gemm_rp = gemm_q4_1_rp;
    t[TENSOR_TYPE_Q8_0].gemv_rp = gemv_q8_0_rp;
    t[TENSOR_TYPE_Q8_0].gemm_rp = gemm_q8_0_rp;
}
