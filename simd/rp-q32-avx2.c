/* AVX2 kernels over the repacked tiles of the 32-element block types Q4_0, Q4_1, Q5_0, Q5_1 and
 * Q8_0 (quant.h QUANT_RP_ROWS; tile layouts in quant-repack.c): gemv_rp for decode, gemm_rp for
 * prompt batches, and the activation packing both read. For CPUs without AVX-512 VNNI, so the
 * integer dots are vpmaddubsw (u8 x s8 -> saturating s16 pair sums) then vpmaddwd (-> s32).
 *
 * A tile's 16 rows are two 8-row halves, each a 256-bit vector with one row per 32-bit lane: a
 * step of 4 weight bytes per row is multiplied by the same 4 activation bytes broadcast to every
 * lane, so a row's dot accumulates in its own lane with no horizontal sums, and one 16-byte load
 * of f16 scales serves 8 rows. The per-block arithmetic is the vec_dot one (llama.cpp's): the
 * exact integer dot of the block times d_w * d_a, plus m * s for the types with a minimum, so
 * results differ from vec_dot only by float summation order.
 *
 * Every type runs the same inner step (block_dot), specialised at compile time by its kind:
 * - 4/5-bit: per step, the rows' low and high nibbles (Q5: or'ed with the fifth bits taken from
 *   qh) are dotted against the activation bytes of elements 4 s.. and 16 + 4 s... The offset
 *   types use the unsigned quants q (0..15, 0..31) and subtract offset * sum(a) per block, the
 *   exact integer sum kept in the packed activation row: sum((q - o) a) = sum(q a) - o sum(a).
 * - Q8_0: the tile's w + 128 is turned back into w (xor 0x80) and dotted as |w| x (a with w's
 *   sign), llama.cpp's trick, since (w + 128) * a would overflow the s16 pairs.
 *
 * Saturation bounds (|a| <= 127: the activation quantizer rounds x * 127 / amax with |x| <= amax,
 * so it never makes -128). One vpmaddubsw lane is the sum of two products:
 * - 4-bit weights <= 15: 2 * 15 * 127 = 3810 per call; a block is 8 calls (4 steps, low and high)
 *   summed in s16: 8 * 3810 = 30480 <= 32767, so one vpmaddwd per block and row half.
 * - 5-bit weights <= 31: 2 * 31 * 127 = 7874; 4 calls (2 steps) give 31496 <= 32767, so the s16
 *   sums are widened to s32 every 2 steps.
 * - Q8_0 |w| <= 128 (abs of -128 is 0x80, read as unsigned 128), |a| <= 127: 2 * 128 * 127 =
 *   32512 <= 32767; widened after every call.
 * The s32 block dots are at most 32 * 31 * 127 + 16 * 32 * 127 < 2^24 (Q5_0 with its offset term
 * taken out), so their conversion to float is exact, as in vec_dot. */
#include <immintrin.h>

#include "quant.h"
#include "rp-q32.h"

enum {
    R = QUANT_RP_ROWS, /* rows of a tile: two halves of 8 lanes */
    MAX_NB = QUANT_GEMM_MAX_N / QK,
    NT = 4 /* tokens per gemm pass: each unpacked weight vector serves this many */
};

static inline float f16(uint16_t h) {
    return _cvtsh_ss(h);
}

/* Sum of 32 int8 (exact): sad against 0 of the bytes + 128, minus 32 * 128. */
static inline int32_t sum_i8_32(__m256i v) {
    const __m256i s =
        _mm256_sad_epu8(_mm256_xor_si256(v, _mm256_set1_epi8(-128)), _mm256_setzero_si256());
    const __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return (int32_t)(_mm_cvtsi128_si64(t) + _mm_extract_epi64(t, 1)) - 32 * 128;
}

/* Writes the packed activation row of rp-q32.h with the table's own quantizers. */
INLINE void pack_act_kind(enum kind k, const float *restrict x, void *restrict dst, int64_t n) {
    const int64_t nb = n / QK;
    int8_t *q = dst;
    float *d = (float *)(void *)(q + nb * QK);
    if (has_min(k)) {
        struct block_q8_1 blk[MAX_NB];
        float *s = d + nb;
        quantize_q8_1_act(x, blk, n);
        for (int64_t b = 0; b < nb; b++) {
            memcpy(q + QK * b, blk[b].qs, QK);
            d[b] = f16(blk[b].d);
            s[b] = f16(blk[b].s);
        }
    } else {
        struct block_q8_0 blk[MAX_NB];
        int32_t *o = (int32_t *)(void *)(d + nb);
        quantize_q8_0_act(x, blk, n);
        for (int64_t b = 0; b < nb; b++) {
            const __m256i v = _mm256_loadu_si256((const void *)blk[b].qs);
            _mm256_storeu_si256((void *)(q + QK * b), v);
            d[b] = f16(blk[b].d);
            o[b] = offset_of(k) ? offset_of(k) * sum_i8_32(v) : 0;
        }
    }
}

/* ---- the shared inner step ---- */

/* An empty asm that the compiler must assume changes v: it keeps a chain of vpaddd as written,
 * instead of reassociating it into a tree that keeps every product live and spills registers
 * (the s16 chains use the saturating vpaddsw, exact within the bounds above, to the same end). */
static inline void keep_chain(__m256i *v) {
    __asm__("" : "+x"(*v));
}

/* 4 activation bytes (one step of one block) in every 32-bit lane. */
static inline __m256i bcast4(const int8_t *a) {
    int32_t v;
    memcpy(&v, a, 4);
    return _mm256_set1_epi32(v);
}

/* Fifth bits of one step: byte c of each row's qh word (elements 8 c .. 8 c + 7) copied to the
 * lane's 4 bytes, then in byte j bit 4 * odd + j (element 8 c + 4 odd + j) tested and turned
 * into 0x10. */
INLINE __m256i fifth_bits(__m256i qh, int c, int odd) {
    const __m256i idx = _mm256_add_epi8(_mm256_setr_epi32(0, 0x04040404, 0x08080808, 0x0c0c0c0c, 0,
                                                          0x04040404, 0x08080808, 0x0c0c0c0c),
                                        _mm256_set1_epi8((char)c));
    const __m256i sel = _mm256_set1_epi32(odd ? (int32_t)0x80402010 : 0x08040201);
    const __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(qh, idx), sel);
    return _mm256_and_si256(_mm256_cmpeq_epi8(v, sel), _mm256_set1_epi8(0x10));
}

/* Step s of a 4/5-bit half tile (qs: its first step's 32 bytes, steps 64 bytes apart): lo holds
 * each row's elements 4 s .. 4 s + 3, hi its elements 16 + 4 s .., as unsigned bytes. */
INLINE void unpack_step(enum kind k, const uint8_t *qs, __m256i qh, int s, __m256i *lo,
                        __m256i *hi) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i z = _mm256_loadu_si256((const void *)(qs + 64 * s));
    *lo = _mm256_and_si256(z, m4);
    *hi = _mm256_and_si256(_mm256_srli_epi16(z, 4), m4);
    if (is_q5(k)) {
        *lo = _mm256_or_si256(*lo, fifth_bits(qh, s >> 1, s & 1));
        *hi = _mm256_or_si256(*hi, fifth_bits(qh, 2 + (s >> 1), s & 1));
    }
}

/* The exact integer dots of one block of the 8 rows of half h of block chunk tb with nt
 * activation blocks a[t] (offset term not yet taken out): lane i of out[t] = sum_e q_e a_t,e for
 * row 8 h + i. Each unpacked weight vector is used for all nt tokens. */
INLINE void block_dot(enum kind k, const uint8_t *tb, int h, const int8_t *const *a, int nt,
                      __m256i *out) {
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *qs = tb + off_qs(k) + 32 * h;
    if (k == K_Q8_0) {
        for (int t = 0; t < nt; t++)
            out[t] = _mm256_setzero_si256();
        for (int s = 0; s < 8; s++) {
            const __m256i w = _mm256_xor_si256(_mm256_loadu_si256((const void *)(qs + 64 * s)),
                                               _mm256_set1_epi8(-128));
            const __m256i aw = _mm256_abs_epi8(w);
            for (int t = 0; t < nt; t++) {
                const __m256i p =
                    _mm256_maddubs_epi16(aw, _mm256_sign_epi8(bcast4(a[t] + 4 * s), w));
                out[t] = _mm256_add_epi32(out[t], _mm256_madd_epi16(p, ones));
                keep_chain(&out[t]);
            }
        }
        return;
    }
    const __m256i qh = is_q5(k) ? _mm256_loadu_si256((const void *)(tb + off_qh(k) + 32 * h))
                                : _mm256_setzero_si256();
    __m256i p16[NT], p32[NT];
    for (int s = 0; s < 4; s++) {
        __m256i lo, hi;
        unpack_step(k, qs, qh, s, &lo, &hi);
        for (int t = 0; t < nt; t++) {
            const __m256i p =
                _mm256_adds_epi16(_mm256_maddubs_epi16(lo, bcast4(a[t] + 4 * s)),
                                  _mm256_maddubs_epi16(hi, bcast4(a[t] + 16 + 4 * s)));
            /* vpaddsw, not vpaddw: see keep_chain */
            p16[t] = s == 0 || (is_q5(k) && s == 2) ? p : _mm256_adds_epi16(p16[t], p);
        }
        if (is_q5(k) && s == 1)
            for (int t = 0; t < nt; t++)
                p32[t] = _mm256_madd_epi16(p16[t], ones);
    }
    for (int t = 0; t < nt; t++) {
        out[t] = _mm256_madd_epi16(p16[t], ones);
        if (is_q5(k))
            out[t] = _mm256_add_epi32(out[t], p32[t]);
    }
}

/* acc += d_w * d_a * (dot - offset * sum(a)) [+ m_w * s_a] for one block of one half and token:
 * vec_dot's per-block terms. */
INLINE __m256 block_fold(enum kind k, __m256 acc, __m256i dot, __m256 dw, __m256 mw,
                         const struct act_row *a, int64_t b) {
    if (offset_of(k))
        dot = _mm256_sub_epi32(dot, _mm256_set1_epi32(a->o[b]));
    acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(a->d[b])), _mm256_cvtepi32_ps(dot), acc);
    if (has_min(k))
        acc = _mm256_fmadd_ps(mw, _mm256_set1_ps(a->s[b]), acc);
    return acc;
}

INLINE __m256 f16x8(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const void *)p));
}

/* The first nr (<= 8) lanes of v to y. */
static inline void store_rows(float *y, __m256 v, int64_t nr) {
    if (nr >= 8) {
        _mm256_storeu_ps(y, v);
        return;
    }
    float tmp[8];
    _mm256_storeu_ps(tmp, v);
    memcpy(y, tmp, (size_t)nr * sizeof *y);
}

/* ---- decode: one token ---- */

/* Each tile streams once: per block chunk, both halves against the same activation block.
 * Software prefetch PREFETCH bytes ahead (about one DRAM latency at the rate one core streams):
 * the hardware prefetcher alone left this loop at about 80% of a plain AVX2 read of the same
 * bytes on Zen 3 (prefetches never fault, so running past the last tile is harmless). */
#define PREFETCH 2048
INLINE void gemv_kind(enum kind k, int64_t n, const void *restrict w, size_t w_stride,
                      int64_t n_rows, const void *restrict act, float *restrict y) {
    const int64_t nb = n / QK;
    const size_t chunk = R * block_bytes(k);
    const struct act_row a = act_view(act, nb);
    for (int64_t r = 0; r < n_rows; r += R) {
        const uint8_t *tile = (const uint8_t *)w + (size_t)r * w_stride;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *tb = tile + (size_t)b * chunk;
            const int8_t *ab = a.q + QK * b;
            for (size_t o = 0; o < chunk; o += 64) /* constant trip count: unrolled */
                _mm_prefetch((const char *)tb + PREFETCH + o, _MM_HINT_T0);
            __m256i dot0, dot1;
            block_dot(k, tb, 0, &ab, 1, &dot0);
            block_dot(k, tb, 1, &ab, 1, &dot1);
            const __m256 mw0 = has_min(k) ? f16x8(tb + off_m()) : _mm256_setzero_ps();
            const __m256 mw1 = has_min(k) ? f16x8(tb + off_m() + 16) : _mm256_setzero_ps();
            acc0 = block_fold(k, acc0, dot0, f16x8(tb), mw0, &a, b);
            acc1 = block_fold(k, acc1, dot1, f16x8(tb + 16), mw1, &a, b);
        }
        const int64_t nr = n_rows - r;
        store_rows(y + r, acc0, nr);
        if (nr > 8)
            store_rows(y + r + 8, acc1, nr - 8);
    }
}

/* ---- prompt batches: tokens x rows ---- */

/* Rows 8 h .. 8 h + nrh - 1 of the tile at `tile` for the nt tokens from act (act_stride apart):
 * every weight vector unpacked once per block serves all nt tokens. */
INLINE void gemm_half(enum kind k, int nt, int64_t nb, const uint8_t *tile, int h, int64_t nrh,
                      const uint8_t *act, size_t act_stride, float *y, size_t y_stride) {
    const size_t chunk = R * block_bytes(k);
    struct act_row a[NT];
    __m256 acc[NT];
    for (int t = 0; t < nt; t++) {
        a[t] = act_view(act + (size_t)t * act_stride, nb);
        acc[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *tb = tile + (size_t)b * chunk;
        const int8_t *ab[NT];
        __m256i dot[NT];
        for (int t = 0; t < nt; t++)
            ab[t] = a[t].q + QK * b;
        block_dot(k, tb, h, ab, nt, dot);
        const __m256 dw = f16x8(tb + 16 * h);
        const __m256 mw = has_min(k) ? f16x8(tb + off_m() + 16 * h) : _mm256_setzero_ps();
        for (int t = 0; t < nt; t++)
            acc[t] = block_fold(k, acc[t], dot[t], dw, mw, &a[t], b);
    }
    for (int t = 0; t < nt; t++)
        store_rows(y + (size_t)t * y_stride, acc[t], nrh);
}

/* Tile by tile, half by half, NT tokens per pass, then the 1..3 left: a tile (16 native rows,
 * 24 KiB of Q5_1 at n = 2048) stays in L1/L2 while all the tokens pass over it, and the packed
 * tokens (40 bytes per block each) stay in L2. */
INLINE void gemm_kind(enum kind k, int64_t n, const void *restrict w, size_t w_stride,
                      int64_t n_rows, const void *restrict act, size_t act_stride, int64_t n_tok,
                      float *restrict y, size_t y_stride) {
    const int64_t nb = n / QK;
    const uint8_t *ab = act;
    for (int64_t r = 0; r < n_rows; r += R) {
        const uint8_t *tile = (const uint8_t *)w + (size_t)r * w_stride;
        for (int h = 0; h < 2 && 8 * h < n_rows - r; h++) {
            const int64_t nrh = n_rows - r - 8 * h;
            float *yh = y + r + 8 * h;
            int64_t t = 0;
            for (; t + NT <= n_tok; t += NT)
                gemm_half(k, NT, nb, tile, h, nrh, ab + (size_t)t * act_stride, act_stride,
                          yh + (size_t)t * y_stride, y_stride);
            const uint8_t *at = ab + (size_t)t * act_stride;
            float *yt = yh + (size_t)t * y_stride;
            switch (n_tok - t) {
            case 3:
                gemm_half(k, 3, nb, tile, h, nrh, at, act_stride, yt, y_stride);
                break;
            case 2:
                gemm_half(k, 2, nb, tile, h, nrh, at, act_stride, yt, y_stride);
                break;
            case 1:
                gemm_half(k, 1, nb, tile, h, nrh, at, act_stride, yt, y_stride);
                break;
            default:
                break;
            }
        }
    }
}

/* ---- one instance of each per type ---- */

RP_Q32_ALL(quant_fill_rp_q32_avx2)
