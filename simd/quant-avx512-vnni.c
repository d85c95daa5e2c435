/* AVX-512 VNNI weight kernels (vpdpbusd), set by quant_fill_avx512_vnni over quant-avx512.c's
 * table where the CPU has VNNI: the integer dots of the 32-blocks and K-quants, and the blocked
 * rows x tokens products of Q4_1 and Q8_0 with their activation packing. Semantics are those of
 * quant-scalar.c: dots differ only by summation order. */
#include <immintrin.h>
#include <math.h>

#include "avx512-lanes.h"
#include "avx512-quant.h"
#include "quant.h"

DOT_Q8_PAIRS(dot_q4_0_vnni, dot_u8s8_vnni, struct block_q4_0, struct block_q8_0, U_Q4, 8, DS,
             NO_MIN)
DOT_Q8_PAIRS(dot_q4_1_vnni, dot_u8s8_vnni, struct block_q4_1, struct block_q8_1, U_Q4, 0, DS, MIN_S)
DOT_Q8_PAIRS(dot_q5_0_vnni, dot_u8s8_vnni, struct block_q5_0, struct block_q8_0, U_Q5, 16, DS,
             NO_MIN)
DOT_Q8_PAIRS(dot_q5_1_vnni, dot_u8s8_vnni, struct block_q5_1, struct block_q8_1, U_Q5, 0, DS, MIN_S)
DOT_Q8_PAIRS(dot_q8_0_vnni, dot_u8s8_vnni, struct block_q8_0, struct block_q8_0, U_Q8, -128, DS,
             NO_MIN)

DOT_K45(dot_q4_k_vnni, dot_u8s8_vnni, struct block_q4_k, (void)0)
DOT_K45(dot_q5_k_vnni, dot_u8s8_vnni, struct block_q5_k,
        u = _mm512_or_si512(u, q5_k_high_bits(x[i].qh, c)))

DOT_Q6K(dot_q6_k_vnni, dot_u8s8_vnni)

/* ============================== blocked rows x tokens (VNNI) ============================== */

/* The 16 lanes of v spread two per vector, 8 lanes each, as the packed row's dpair / spair:
 * dst[16p + i] = v[2p + i / 8]. */
static inline void spread_pairs(float *dst, __m512 v) {
    const __m512i half = _mm512_srli_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 3);
    for (int p = 0; p < 8; p++)
        _mm512_storeu_ps(dst + 16 * p, _mm512_permutexvar_ps(
                                           _mm512_add_epi32(half, _mm512_set1_epi32(2 * p)), v));
}

/* Blocks b0 .. b0+15 of a packed row (pack_act_8), bit-exact with quantize_block_8 one block at a
 * time: the same per-element arithmetic (amax / 127, 127 / amax, the rounding conversions), the
 * f16 roundings in hardware (round to nearest even, as quant_f32_to_f16), and the block maxima
 * and integer sums, which do not depend on order, taken for 16 blocks at once by transposing
 * reductions instead of two horizontal reductions per block: 9.3 -> 5.1 ns a block (one row of
 * 576-2048 values packed 100,000 times, best of 5). */
static void pack_16_blocks(const float *restrict x, int8_t *restrict qs, float *restrict dp,
                           float *restrict s, float *restrict sp, int unsigned_q) {
    __m512 m[16];
    for (int b = 0; b < 16; b++)
        m[b] = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + b * QK)),
                             _mm512_abs_ps(_mm512_loadu_ps(x + b * QK + 16)));
    const __m512 amax = max_16x16(m);
    const __m512 d = _mm512_div_ps(amax, _mm512_set1_ps(127.0f));
    const __m512 id = _mm512_maskz_div_ps(
        _mm512_cmp_ps_mask(amax, _mm512_setzero_ps(), _CMP_NEQ_OQ), _mm512_set1_ps(127.0f), amax);
    _Alignas(64) float idv[16];
    _mm512_store_ps(idv, id);
    const __m512i flip = _mm512_set1_epi32(unsigned_q ? 0x80808080 : 0);
    __m512i sums[16];
    for (int b = 0; b < 16; b++) {
        const __m512 vid = _mm512_set1_ps(idv[b]);
        const __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + b * QK), vid));
        const __m512i qb = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + b * QK + 16), vid));
        const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm512_cvtsepi32_epi8(qa)),
                                                  _mm512_cvtsepi32_epi8(qb), 1);
        _mm256_storeu_si256((void *)(qs + b * QK),
                            _mm256_xor_si256(q, _mm512_castsi512_si256(flip)));
        sums[b] = _mm512_add_epi32(qa, qb);
    }
    const __m512 sum = _mm512_cvtepi32_ps(add_16x16(sums));
    const __m512 dr =
        _mm512_cvtph_ps(_mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m512 sr = _mm512_cvtph_ps(
        _mm512_cvtps_ph(_mm512_mul_ps(d, sum), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    _mm512_storeu_ps(s, sr);
    spread_pairs(dp, dr);
    spread_pairs(sp, _mm512_mul_ps(sr, _mm512_set1_ps(0.125f))); /* s / 8, exact */
}

/* Packed activation row (see quant_pack_bytes): qs[np*64] int8 (or uint8 = q+128 for signed
 * weights), dpair[np*16] f32 (scale of block 2p in lanes 0-7, of 2p+1 in lanes 8-15), s[nb16]
 * f32 (Q8_1 block sums), spair[np*16] (s/8 spread like dpair, exact: a power-of-two division
 * of an f16 value). A missing last block of an odd count is zero. The quantization is
 * quantize_block_8, the same as quantize_act, so results match vec_dot's arithmetic; whole
 * groups of 16 blocks go through pack_16_blocks, the rest one block at a time. */
static void pack_act_8(const float *restrict x, void *restrict dst, int64_t n, int unsigned_q) {
    int64_t nb = n / QK, np = (nb + 1) / 2;
    int8_t *qs = dst;
    float *dp = (float *)(qs + np * 64), *s = dp + np * 16, *sp = s + (nb + 15) / 16 * 16;
    int64_t b = 0;
    for (; b + 16 <= nb; b += 16)
        pack_16_blocks(x + b * QK, qs + b * QK, dp + b * 8, s + b, sp + b * 8, unsigned_q);
    for (; b < nb; b++) {
        uint16_t dh;
        int sum;
        float d = quantize_block_8(x + b * QK, &dh, qs + b * QK, &sum);
        _mm256_storeu_ps(dp + (b / 2) * 16 + (b % 2) * 8, _mm256_set1_ps(f16(dh)));
        s[b] = f16(quant_f32_to_f16(d * (float)sum));
        _mm256_storeu_ps(sp + (b / 2) * 16 + (b % 2) * 8, _mm256_set1_ps(s[b] / 8.0f));
        if (unsigned_q) {
            __m256i q = _mm256_loadu_si256((const void *)(qs + b * QK));
            _mm256_storeu_si256((void *)(qs + b * QK), _mm256_xor_si256(q, _mm256_set1_epi8(-128)));
        }
    }
    if (nb % 2) {
        memset(qs + nb * QK, unsigned_q ? 0x80 : 0, QK);
        memset(dp + (nb / 2) * 16 + 8, 0, 8 * sizeof(float));
        memset(sp + (nb / 2) * 16 + 8, 0, 8 * sizeof(float));
    }
    for (b = nb; b < (nb + 15) / 16 * 16; b++)
        s[b] = 0.0f;
}
static void pack_act_q8_1(const float *restrict x, void *restrict dst, int64_t n) {
    pack_act_8(x, dst, n, 0);
}
static void pack_act_q8_0u(const float *restrict x, void *restrict dst, int64_t n) {
    pack_act_8(x, dst, n, 1);
}

/* One weight row unpacked for the inner loop: wq[np*64] bytes in activation order, dw[np*16]
 * the block scales spread like dpair, wm[nb16] the block minimums (Q4_1) and, for signed Q8_0
 * weights, corr[np*16] int32 = -128 * (sum of the lane's 4 weights), so that
 * dpbusd(corr, q+128, w) = sum(q*w) of the lane exactly. */
struct row_prep {
    _Alignas(64) uint8_t wq[QUANT_GEMM_MAX_N];
    _Alignas(64) float dw[QUANT_GEMM_MAX_N / 4];
    _Alignas(64) int32_t corr[QUANT_GEMM_MAX_N / 4];
    _Alignas(64) float wm[QUANT_GEMM_MAX_N / 32];
};

static void prep_q4_1(struct row_prep *p, const struct block_q4_1 *x, int64_t nb) {
    for (int64_t b = 0; b < nb; b++) {
        _mm256_store_si256((void *)(p->wq + b * QK), nibbles_32(x[b].qs));
        _mm256_store_ps(p->dw + (b / 2) * 16 + (b % 2) * 8, _mm256_set1_ps(f16(x[b].d)));
        p->wm[b] = f16(x[b].m);
    }
    if (nb % 2) {
        memset(p->wq + nb * QK, 0, QK);
        memset(p->dw + (nb / 2) * 16 + 8, 0, 8 * sizeof(float));
    }
    for (int64_t b = nb; b < (nb + 15) / 16 * 16; b++)
        p->wm[b] = 0.0f;
}

static void prep_q8_0(struct row_prep *p, const struct block_q8_0 *x, int64_t nb) {
    for (int64_t b = 0; b < nb; b++) {
        _mm256_store_si256((void *)(p->wq + b * QK), _mm256_loadu_si256((const void *)x[b].qs));
        _mm256_store_ps(p->dw + (b / 2) * 16 + (b % 2) * 8, _mm256_set1_ps(f16(x[b].d)));
    }
    if (nb % 2) {
        memset(p->wq + nb * QK, 0, QK);
        memset(p->dw + (nb / 2) * 16 + 8, 0, 8 * sizeof(float));
    }
    /* Each lane's own -128 * (sum of its 4 weights): the lane then holds exactly sum(q*w) of its
     * 4 bytes, so no large terms cancel later in float (a per-block correction spread evenly
     * over 8 lanes would be exact in int32 but lose ~7 bits to float cancellation). */
    for (int64_t k = 0; k < (nb + 1) / 2; k++) {
        __m512i c = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(-128),
                                        _mm512_load_si512(p->wq + 64 * k));
        _mm512_store_si512(p->corr + 16 * k, _mm512_sub_epi32(_mm512_setzero_si512(), c));
    }
}

/* Two rows x two tokens per pass: each unpacked weight pair is loaded once for both tokens and
 * each activation pair once for both rows. unsigned_w / has_min are constants at each call site,
 * so the compiler specializes the loop. */
static inline __attribute__((always_inline)) __m512i tile_dot(__m512i wv, __m512i a, __m512i c,
                                                              int unsigned_w) {
    return unsigned_w ? _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, a)
                      : _mm512_dpbusd_epi32(c, a, wv);
}

static inline __attribute__((always_inline)) void
gemm_tile_2x2(const struct row_prep *p0, const struct row_prep *p1, int64_t nb, int64_t np,
              const uint8_t *act, size_t act_stride, int64_t n_tok, float *y, size_t y_stride,
              int64_t r, int two_rows, int unsigned_w, int has_min) {
    for (int64_t t = 0; t < n_tok; t += 2) {
        int two = t + 1 < n_tok;
        const int8_t *q0 = (const int8_t *)(act + (size_t)t * act_stride);
        const int8_t *q1 = two ? q0 + act_stride : q0;
        const float *d0 = (const float *)(q0 + np * 64), *d1 = (const float *)(q1 + np * 64);
        __m512 a00 = _mm512_setzero_ps(), a01 = _mm512_setzero_ps();
        __m512 a10 = _mm512_setzero_ps(), a11 = _mm512_setzero_ps();
        for (int64_t k = 0; k < np; k++) {
            __m512i x0 = _mm512_loadu_si512(q0 + 64 * k), x1 = _mm512_loadu_si512(q1 + 64 * k);
            __m512 s0 = _mm512_loadu_ps(d0 + 16 * k), s1 = _mm512_loadu_ps(d1 + 16 * k);
            __m512i w0 = _mm512_load_si512(p0->wq + 64 * k),
                    w1 = _mm512_load_si512(p1->wq + 64 * k);
            __m512i c0 = unsigned_w ? w0 : _mm512_load_si512(p0->corr + 16 * k);
            __m512i c1 = unsigned_w ? w1 : _mm512_load_si512(p1->corr + 16 * k);
            __m512 dw0 = _mm512_load_ps(p0->dw + 16 * k), dw1 = _mm512_load_ps(p1->dw + 16 * k);
            a00 = _mm512_fmadd_ps(_mm512_mul_ps(dw0, s0),
                                  _mm512_cvtepi32_ps(tile_dot(w0, x0, c0, unsigned_w)), a00);
            a01 = _mm512_fmadd_ps(_mm512_mul_ps(dw0, s1),
                                  _mm512_cvtepi32_ps(tile_dot(w0, x1, c0, unsigned_w)), a01);
            a10 = _mm512_fmadd_ps(_mm512_mul_ps(dw1, s0),
                                  _mm512_cvtepi32_ps(tile_dot(w1, x0, c1, unsigned_w)), a10);
            a11 = _mm512_fmadd_ps(_mm512_mul_ps(dw1, s1),
                                  _mm512_cvtepi32_ps(tile_dot(w1, x1, c1, unsigned_w)), a11);
        }
        if (has_min) {
            const float *m0 = d0 + np * 16, *m1 = d1 + np * 16;
            for (int64_t b = 0; b < nb; b += 16) {
                __m512 s0 = _mm512_loadu_ps(m0 + b), s1 = _mm512_loadu_ps(m1 + b);
                __m512 wm0 = _mm512_load_ps(p0->wm + b), wm1 = _mm512_load_ps(p1->wm + b);
                a00 = _mm512_fmadd_ps(wm0, s0, a00);
                a01 = _mm512_fmadd_ps(wm0, s1, a01);
                a10 = _mm512_fmadd_ps(wm1, s0, a10);
                a11 = _mm512_fmadd_ps(wm1, s1, a11);
            }
        }
        y[(size_t)t * y_stride + r] = _mm512_reduce_add_ps(a00);
        if (two)
            y[(size_t)(t + 1) * y_stride + r] = _mm512_reduce_add_ps(a01);
        if (two_rows) {
            y[(size_t)t * y_stride + r + 1] = _mm512_reduce_add_ps(a10);
            if (two)
                y[(size_t)(t + 1) * y_stride + r + 1] = _mm512_reduce_add_ps(a11);
        }
    }
}

/* Decode (one token): stream weight rows straight from their blocks (Q4_1: four rows at a time,
 * sharing each activation load between them). Per pair of blocks and row: unpack, one vpdpbusd, one
 * scale product and FMA; the f16 scales (and Q4_1 minimums) of both blocks are broadcast and
 * widened with one vcvtph2ps. */
static inline __m512 pair_f16(uint16_t h0, uint16_t h1) {
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)h0)),
                                        _mm_set1_epi16((short)h1), 1);
    return _mm512_cvtph_ps(v);
}

#define GEMV_ROWS 4

static void gemv_q4_1(int64_t n, const uint8_t *restrict w, size_t w_stride, int64_t n_rows,
                      const int8_t *restrict act, float *restrict y) {
    int64_t nb = n / QK, np = (nb + 1) / 2, npf = nb / 2; /* full pairs */
    const float *dp = (const float *)(act + np * 64);
    const float *sp = dp + np * 16 + (nb + 15) / 16 * 16;
    const float *s = dp + np * 16;
    int64_t r = 0;
    for (; r + GEMV_ROWS <= n_rows; r += GEMV_ROWS) {
        const struct block_q4_1 *x[GEMV_ROWS];
        __m512 acc[GEMV_ROWS];
        for (int k = 0; k < GEMV_ROWS; k++) {
            x[k] = (const void *)(w + (size_t)(r + k) * w_stride);
            acc[k] = _mm512_setzero_ps();
        }
        for (int64_t p = 0; p < npf; p++) {
            __m512i a = _mm512_loadu_si512(act + 64 * p);
            __m512 da = _mm512_loadu_ps(dp + 16 * p), sa = _mm512_loadu_ps(sp + 16 * p);
            for (int k = 0; k < GEMV_ROWS; k++) {
                const struct block_q4_1 *b = x[k] + 2 * p;
                __m512i u = join_256(nibbles_32(b[0].qs), nibbles_32(b[1].qs));
                __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, a);
                __m512 dw = pair_f16(b[0].d, b[1].d), mw = pair_f16(b[0].m, b[1].m);
                acc[k] = _mm512_fmadd_ps(mw, sa, acc[k]);
                acc[k] = _mm512_fmadd_ps(_mm512_mul_ps(dw, da), _mm512_cvtepi32_ps(d), acc[k]);
            }
        }
        for (int k = 0; k < GEMV_ROWS; k++) {
            float tail = 0.0f;
            if (nb % 2) { /* last single block: scalar scale and minimum */
                const struct block_q4_1 *b = x[k] + nb - 1;
                __m256i d = _mm256_dpbusd_epi32(_mm256_setzero_si256(), nibbles_32(b->qs),
                                                _mm256_loadu_si256((const void *)(act + 64 * npf)));
                __m512i d512 = _mm512_maskz_mov_epi64(0x0f, _mm512_castsi256_si512(d));
                tail = f16(b->d) * dp[16 * npf] * (float)_mm512_reduce_add_epi32(d512) +
                       f16(b->m) * s[nb - 1];
            }
            y[r + k] = _mm512_reduce_add_ps(acc[k]) + tail;
        }
    }
    for (; r < n_rows; r++) { /* fewer than four rows left */
        const struct block_q4_1 *x = (const void *)(w + (size_t)r * w_stride);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t p = 0; p < np; p++) {
            int two = 2 * p + 1 < nb;
            __m256i u1 = two ? nibbles_32(x[2 * p + 1].qs) : _mm256_setzero_si256();
            __m512i u = join_256(nibbles_32(x[2 * p].qs), u1);
            __m512i d =
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, _mm512_loadu_si512(act + 64 * p));
            __m512 dw = pair_f16(x[2 * p].d, two ? x[2 * p + 1].d : 0);
            __m512 mw = pair_f16(x[2 * p].m, two ? x[2 * p + 1].m : 0);
            acc = _mm512_fmadd_ps(mw, _mm512_loadu_ps(sp + 16 * p), acc);
            acc = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_loadu_ps(dp + 16 * p)),
                                  _mm512_cvtepi32_ps(d), acc);
        }
        y[r] = _mm512_reduce_add_ps(acc);
    }
}

/* Q8_0 rows against unsigned activations (q+128): sum(q*w) = dpbusd(q+128, w) - 128*sum(w),
 * the second term from a dpbusd of 128s against the same weights, per lane, so the lanes hold
 * exact partial dots and nothing cancels in float.
 * One row at a time: measured on the 576x49152 LM head streamed from memory, 2 or 4 interleaved
 * rows ran 2-3x slower than 1 (cause not pinned down; 34-byte blocks make many 32-byte loads
 * split cache lines), while Q4_1 gains ~25% from 4 rows. */
#define GEMV_ROWS_Q8 1
static void gemv_q8_0(int64_t n, const uint8_t *restrict w, size_t w_stride, int64_t n_rows,
                      const int8_t *restrict act, float *restrict y) {
    int64_t nb = n / QK, np = (nb + 1) / 2;
    const float *dp = (const float *)(act + np * 64);
    const __m512i c128 = _mm512_set1_epi8(-128);
    int64_t r = 0;
    for (; r < n_rows; r += GEMV_ROWS_Q8) {
        int nr = n_rows - r < GEMV_ROWS_Q8 ? (int)(n_rows - r) : GEMV_ROWS_Q8;
        const struct block_q8_0 *x[GEMV_ROWS_Q8];
        __m512 acc[GEMV_ROWS_Q8];
        for (int k = 0; k < GEMV_ROWS_Q8; k++) {
            x[k] = (const void *)(w + (size_t)(r + (k < nr ? k : 0)) * w_stride);
            acc[k] = _mm512_setzero_ps();
        }
        for (int64_t p = 0; p < np; p++) {
            int two = 2 * p + 1 < nb;
            __m512i a = _mm512_loadu_si512(act + 64 * p);
            __m512 da = _mm512_loadu_ps(dp + 16 * p);
            for (int k = 0; k < GEMV_ROWS_Q8; k++) {
                const struct block_q8_0 *b = x[k] + 2 * p;
                __m256i w1 =
                    two ? _mm256_loadu_si256((const void *)b[1].qs) : _mm256_setzero_si256();
                __m512i wv = join_256(_mm256_loadu_si256((const void *)b[0].qs), w1);
                __m512i d = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), a, wv),
                                             _mm512_dpbusd_epi32(_mm512_setzero_si512(), c128, wv));
                __m512 dw = pair_f16(b[0].d, two ? b[1].d : 0);
                acc[k] = _mm512_fmadd_ps(_mm512_mul_ps(dw, da), _mm512_cvtepi32_ps(d), acc[k]);
            }
        }
        for (int k = 0; k < nr; k++)
            y[r + k] = _mm512_reduce_add_ps(acc[k]);
    }
}

/* NAME: prompt batches over native rows of BLOCK, two rows at a time unpacked by PREP into
 * stack buffers reused for every token, through gemm_tile_2x2 with the format's flags (unsigned
 * weights, a min term); one token goes to GEMV. */
#define GEMM_NATIVE(NAME, GEMV, PREP, BLOCK, UNSIGNED_W, HAS_MIN)                                  \
    static void NAME(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,           \
                     const void *restrict act, size_t act_stride, int64_t n_tok,                   \
                     float *restrict y, size_t y_stride) {                                         \
        if (n_tok == 1) {                                                                          \
            GEMV(n, w, w_stride, n_rows, act, y);                                                  \
            return;                                                                                \
        }                                                                                          \
        struct row_prep prep[2]; /* 2 x 50 KiB of stack */                                         \
        const int64_t nb = n / QK, np = (nb + 1) / 2;                                              \
        const uint8_t *wb = w;                                                                     \
        for (int64_t r = 0; r < n_rows; r += 2) {                                                  \
            const int two_rows = r + 1 < n_rows;                                                   \
            for (int i = 0; i <= two_rows; i++)                                                    \
                PREP(&prep[i], (const BLOCK *)(const void *)(wb + (size_t)(r + i) * w_stride),     \
                     nb);                                                                          \
            gemm_tile_2x2(&prep[0], &prep[two_rows], nb, np, act, act_stride, n_tok, y, y_stride,  \
                          r, two_rows, UNSIGNED_W, HAS_MIN);                                       \
        }                                                                                          \
    }
GEMM_NATIVE(gemm_q4_1, gemv_q4_1, prep_q4_1, struct block_q4_1, 1, 1)
GEMM_NATIVE(gemm_q8_0, gemv_q8_0, prep_q8_0, struct block_q8_0, 0, 0)

/* ============================== the table ============================== */

/* Over quant_fill_avx512's entries: the same activations, dotted with vpdpbusd. */
void quant_fill_avx512_vnni(struct quant_kernels *t) {
    t[TENSOR_TYPE_Q4_0].vec_dot = dot_q4_0_vnni;
    t[TENSOR_TYPE_Q4_1].vec_dot = dot_q4_1_vnni;
    t[TENSOR_TYPE_Q5_0].vec_dot = dot_q5_0_vnni;
    t[TENSOR_TYPE_Q5_1].vec_dot = dot_q5_1_vnni;
    t[TENSOR_TYPE_Q8_0].vec_dot = dot_q8_0_vnni;
    t[TENSOR_TYPE_Q4_1].pack_act = pack_act_q8_1;
    t[TENSOR_TYPE_Q4_1].gemm = gemm_q4_1;
    t[TENSOR_TYPE_Q4_1].rp_tile = quant_q4_1_rp_tile;
    t[TENSOR_TYPE_Q8_0].pack_act = pack_act_q8_0u;
    t[TENSOR_TYPE_Q8_0].gemm = gemm_q8_0;
    t[TENSOR_TYPE_Q8_0].rp_tile = quant_q8_0_rp_tile;
    t[TENSOR_TYPE_Q4_K].vec_dot = dot_q4_k_vnni;
    t[TENSOR_TYPE_Q5_K].vec_dot = dot_q5_k_vnni;
    t[TENSOR_TYPE_Q6_K].vec_dot = dot_q6_k_vnni;
}
