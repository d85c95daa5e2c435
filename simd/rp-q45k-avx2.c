/* AVX2 decode and prompt kernels over repacked Q4_K and Q5_K tiles (layout: repack-q45k.c):
 * gemv_rp for one token, gemm_rp for many, against llama.cpp's Q8_K activations made by the
 * scalar (bit-exact) quantize_q8_k.
 *
 * One 256-bit vector of a qs step holds 4 bytes of each of 8 rows (a "half" of the tile), one
 * row per 32-bit lane. Its low nibbles (plus the fifth bits for Q5_K) are 4 weights of
 * sub-block 2c of every row, its high nibbles 4 weights of sub-block 2c + 1; vpmaddubsw against
 * the 4 matching activation bytes broadcast to all lanes gives each row's products in two int16
 * of its lane. These int16 sums are accumulated over several steps (bound below), then
 * vpmaddwd with the row's 6-bit sub-block scale duplicated in both int16 of its lane widens and
 * scales them into the int32 sum si = sum_j sc_j (q_j . a_j) of the super-block. The minimum
 * term sm = sum_j m_j B_j (B_j = bsums[2j] + bsums[2j + 1], the activation sum of sub-block j)
 * takes 4 vpmaddwd of (m_2k, m_2k+1) pairs against (B_2k, B_2k+1) broadcast. Per super-block
 * and half: acc += a.d * (d * si - dmin * sm), the reference's integers and the same float
 * products, in another order.
 *
 * int16 bound: a vpmaddubsw lane is two products u * a, u <= 15 (Q4_K) or 31 (Q5_K), |a| <= 128
 * (Q8_K quants are in [-127, 127]), so <= 3840 (Q4_K) or 7936 (Q5_K); 8 steps of Q4_K sum to
 * <= 30720 and 4 of Q5_K to <= 31744, both < 32768, so `group` steps add in int16 without
 * saturation. Widening: 2 * 63 * 31744 < 2^31. si <= 256 * 31 * 128 * 63 and |sm| <= 8 * 63 *
 * 32 * 128 fit int32 with room; si is converted to float once per super-block, as in the
 * reference. |B_j| <= 32 * 127 fits int16.
 *
 * Instructions per 32 weight bytes (8 rows x 4 bytes = 64 weights) in the inner loop, Q4_K
 * gemv_rp: load, vpand / vpsrlw / vpand for the two nibbles, 2 vpmaddubsw, 2 vpaddsw, and one
 * vpbroadcastd (the 2 activation broadcasts of a step serve both halves) = 9, plus half a
 * prefetch; Q5_K adds a load of qh and 2 shifts, 2 ands, 2 ors for the fifth bits (~16). Per
 * step group and half: 2 vpmaddwd + 2 vpaddd. A whole Q4_K super-block of 16 rows compiles to
 * ~840 instructions, ~13 per 32 weight bytes: the ~4 beyond the steps' 9 are the prefetches,
 * the scale and minimum decode, the float update and register spills. gemm_rp unpacks each
 * weight vector once for 4 tokens: 1 load, 3 unpack, 8 broadcasts, 8 vpmaddubsw, 8 vpaddsw =
 * 7 per 32 weight bytes and token (4 tokens x 2 int16 accumulators + the unpacked weights fill
 * the 16 ymm registers; 3 to 8 tokens were measured, 3 and 4 are the fastest).
 *
 * Measured on one Zen 3 core (1B-model shape, n 2048 x 8192 rows, streamed from DRAM): gemv_rp
 * reads Q4_K and Q5_K at ~0.9-1.0 of a one-thread STREAM-like read (~16-19 GB/s on a shared
 * machine); in L2 it runs at ~38 GB/s (Q4_K), so it is bound by memory. */
#include <immintrin.h>

#include "quant.h"
#include "rp-glue.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

enum {
    R = QUANT_RP_ROWS,
    HALF = 8,     /* rows per 256-bit vector: one per 32-bit lane */
    STEP = 4 * R, /* bytes of one qs / qh step */
    OFF_DMIN = 2 * R,
    OFF_SC = 4 * R,
    OFF_QH = 16 * R,
    NT_GEMM = 4,    /* tokens per pass of gemm_rp over a half tile */
    PF_DIST = 1536, /* prefetch distance: 24 lines ahead (1152 to 2304 measured alike) */
};

/* Byte k (0..11) of the 16 rows' native scales, in both 128-bit lanes (byte i = row i). */
static ALWAYS_INLINE __m256i scale_bytes(const uint8_t *sb, int k) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const void *)(sb + OFF_SC + R * k)));
}

/* The 6-bit scale (min 0) or minimum (min 1) of sub-block j of the 16 rows, byte i = row i in
 * both lanes: quant_k_scale_min() on every byte. */
static ALWAYS_INLINE __m256i scale6(const uint8_t *sb, int j, int min) {
    if (j < 4)
        return _mm256_and_si256(scale_bytes(sb, j + 4 * min), _mm256_set1_epi8(63));
    const __m256i q = scale_bytes(sb, j + 4);
    const __m256i lo = _mm256_and_si256(min ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(15));
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(scale_bytes(sb, j - 4 + 4 * min), 2),
                                        _mm256_set1_epi8(0x30));
    return _mm256_or_si256(lo, hi);
}

/* vpshufb patterns that move byte 8h + e (row 8h + e, from a vector with row i at byte i of
 * both lanes) to the 32-bit lane e as two int16: dup (v, v), lo (v, 0), hi (0, v). */
struct spread {
    __m256i dup, lo, hi;
};

static inline struct spread spread_for(int h) {
    const __m256i row =
        _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(HALF * h));
    const __m256i hi = _mm256_slli_epi32(row, 16); /* 0x80 in an index byte writes a zero */
    return (struct spread){
        .dup = _mm256_or_si256(_mm256_or_si256(row, hi), _mm256_set1_epi32((int)0x80008000u)),
        .lo = _mm256_or_si256(row, _mm256_set1_epi32((int)0x80808000u)),
        .hi = _mm256_or_si256(hi, _mm256_set1_epi32((int)0x80008080u)),
    };
}

/* Bit k of every byte moved to bit 4 (the fifth bit of a Q5_K weight), others cleared. The
 * 16-bit shifts carry bits across the bytes only outside bit 4. */
static ALWAYS_INLINE __m256i fifth_bit(__m256i qh, int k) {
    const __m256i v = k < 4   ? _mm256_slli_epi16(qh, 4 - k)
                      : k > 4 ? _mm256_srli_epi16(qh, k - 4)
                              : qh;
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* Software prefetch of the line at p (callers add PF_DIST; one line per 64-byte step, the
 * headers at the top of each slab): without it one thread's decode reached ~0.65 of a STREAM
 * read, with it ~0.95. Volatile asm because GCC's post-reload scheduler hoists _mm_prefetch out
 * of the unrolled steps into one burst of 36 at the top of the slab, which measured as slow as
 * no prefetch at all (a volatile asm is a scheduling barrier, so each stays at its step). */
static ALWAYS_INLINE void prefetch_line(const void *p) {
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
}

/* 4 activation bytes broadcast to every lane. */
static ALWAYS_INLINE __m256i bcast4(const int8_t *q) {
    int32_t v;
    memcpy(&v, q, 4);
    return _mm256_set1_epi32(v);
}

/* bp[k] = (B_2k, B_2k+1) as two int16 in every lane, B_j = bsums[2j] + bsums[2j + 1]. */
static ALWAYS_INLINE void bsum_pairs(const struct block_q8_k *a, __m256i bp[4]) {
    const __m256i b = _mm256_madd_epi16(_mm256_loadu_si256((const void *)a->bsums),
                                        _mm256_set1_epi16(1)); /* B_0..B_7 in int32 */
    /* int16 per 128-bit lane: B0 B1 B2 B3 B0 B1 B2 B3 | B4 B5 B6 B7 B4 B5 B6 B7 (exact) */
    const __m256i p = _mm256_packs_epi32(b, b);
    for (int k = 0; k < 4; k++)
        bp[k] = _mm256_permutevar8x32_epi32(p, _mm256_set1_epi32(k < 2 ? k : k + 2));
}

/* Chunk c (sub-blocks 2c, 2c + 1: qs steps 8c .. 8c + 7) of one slab for the halves h0 ..
 * h0 + nh - 1 and nt tokens (a[t]: the token's Q8_K block of this super-block): adds
 * sc_2c (q_2c . a_2c) + sc_2c+1 (q_2c+1 . a_2c+1) to si[t * nh + h], one row per lane. */
static ALWAYS_INLINE void chunk_dot(const uint8_t *sb, int five, int c, int h0, int nh,
                                    const struct spread *sp, const struct block_q8_k *const *a,
                                    int nt, __m256i *si) {
    const int group = five ? 4 : 8; /* steps summed in int16: see the bound at the top */
    const uint8_t *qs = sb + OFF_QH + (five ? QK_K / 8 * R : 0) + STEP * 8 * c + 32 * h0;
    const uint8_t *qh = sb + OFF_QH + 32 * h0;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i sc_lo = scale6(sb, 2 * c, 0), sc_hi = scale6(sb, 2 * c + 1, 0);
    for (int g = 0; g < 8; g += group) {
        __m256i lo[2 * NT_GEMM], hi[2 * NT_GEMM];
        for (int k = 0; k < nt * nh; k++)
            lo[k] = hi[k] = _mm256_setzero_si256();
        for (int s = g; s < g + group; s++) {
            prefetch_line(qs + STEP * s + PF_DIST);
            for (int h = 0; h < nh; h++) {
                const __m256i z = _mm256_loadu_si256((const void *)(qs + STEP * s + 32 * h));
                __m256i wl = _mm256_and_si256(z, m4);
                __m256i wh = _mm256_and_si256(_mm256_srli_epi16(z, 4), m4);
                if (five) {
                    const __m256i v = _mm256_loadu_si256((const void *)(qh + STEP * s + 32 * h));
                    wl = _mm256_or_si256(wl, fifth_bit(v, 2 * c));
                    wh = _mm256_or_si256(wh, fifth_bit(v, 2 * c + 1));
                }
                /* vpaddsw, not vpaddw: by the bound at the top it never saturates, so the sums
                 * are the same, but a saturating add is not reassociated; with vpaddw the
                 * compiler rebuilt the steps as a tree of partial sums and spilled them (gemv
                 * ~15% slower in L2) */
                for (int t = 0; t < nt; t++) {
                    const int8_t *q = a[t]->qs + 64 * c + 4 * s;
                    const int k = t * nh + h;
                    lo[k] = _mm256_adds_epi16(lo[k], _mm256_maddubs_epi16(wl, bcast4(q)));
                    hi[k] = _mm256_adds_epi16(hi[k], _mm256_maddubs_epi16(wh, bcast4(q + 32)));
                }
            }
        }
        for (int h = 0; h < nh; h++) {
            const __m256i xl = _mm256_shuffle_epi8(sc_lo, sp[h].dup);
            const __m256i xh = _mm256_shuffle_epi8(sc_hi, sp[h].dup);
            for (int t = 0; t < nt; t++) {
                const int k = t * nh + h;
                si[k] = _mm256_add_epi32(si[k], _mm256_add_epi32(_mm256_madd_epi16(lo[k], xl),
                                                                 _mm256_madd_epi16(hi[k], xh)));
            }
        }
    }
}

/* One slab (super-block) of a tile, halves h0 .. h0 + nh - 1, nt tokens:
 * acc[t * nh + h] += a.d * (d * si - dmin * sm), one row per lane. */
static ALWAYS_INLINE void slab_dot(const uint8_t *sb, int five, int h0, int nh,
                                   const struct spread *sp, const struct block_q8_k *const *a,
                                   int nt, __m256 *acc) {
    __m256i si[2 * NT_GEMM];
    for (int k = 0; k < nt * nh; k++)
        si[k] = _mm256_setzero_si256();
    /* written out so that c is a constant in each: immediate shifts for the fifth bits and
     * the scale decode, no branches */
    chunk_dot(sb, five, 0, h0, nh, sp, a, nt, si);
    chunk_dot(sb, five, 1, h0, nh, sp, a, nt, si);
    chunk_dot(sb, five, 2, h0, nh, sp, a, nt, si);
    chunk_dot(sb, five, 3, h0, nh, sp, a, nt, si);
    __m256i mp[2][4]; /* (m_2k, m_2k+1) of each row of half h */
    for (int k = 0; k < 4; k++) {
        const __m256i m0 = scale6(sb, 2 * k, 1), m1 = scale6(sb, 2 * k + 1, 1);
        for (int h = 0; h < nh; h++)
            mp[h][k] = _mm256_or_si256(_mm256_shuffle_epi8(m0, sp[h].lo),
                                       _mm256_shuffle_epi8(m1, sp[h].hi));
    }
    for (int t = 0; t < nt; t++) {
        __m256i bp[4];
        bsum_pairs(a[t], bp);
        const __m256 da = _mm256_set1_ps(a[t]->d);
        for (int h = 0; h < nh; h++) {
            const __m256i sm =
                _mm256_add_epi32(_mm256_add_epi32(_mm256_madd_epi16(mp[h][0], bp[0]),
                                                  _mm256_madd_epi16(mp[h][1], bp[1])),
                                 _mm256_add_epi32(_mm256_madd_epi16(mp[h][2], bp[2]),
                                                  _mm256_madd_epi16(mp[h][3], bp[3])));
            const int hh = h0 + h;
            const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const void *)(sb + 16 * hh)));
            const __m256 dmin =
                _mm256_cvtph_ps(_mm_loadu_si128((const void *)(sb + OFF_DMIN + 16 * hh)));
            const __m256 f = _mm256_fnmadd_ps(dmin, _mm256_cvtepi32_ps(sm),
                                              _mm256_mul_ps(d, _mm256_cvtepi32_ps(si[t * nh + h])));
            acc[t * nh + h] = _mm256_fmadd_ps(da, f, acc[t * nh + h]);
        }
    }
}

/* acc[t * nh + h] = the dots of the tile's rows of halves h0 .. h0 + nh - 1 with nt tokens,
 * token t's Q8_K row at act + t * act_stride. */
static ALWAYS_INLINE void tile_dot(const uint8_t *tile, int64_t nb, int five, int h0, int nh,
                                   const struct spread *sp, const uint8_t *act, size_t act_stride,
                                   int nt, __m256 *acc) {
    const size_t slab = R * (five ? sizeof(struct block_q5_k) : sizeof(struct block_q4_k));
    for (int k = 0; k < nt * nh; k++)
        acc[k] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const struct block_q8_k *a[NT_GEMM];
        for (int t = 0; t < nt; t++)
            a[t] = (const struct block_q8_k *)(const void *)(act + t * act_stride) + b;
        for (size_t line = 0; line < slab - QK_K / 2 * R; line += 64) /* all but qs */
            prefetch_line(tile + b * slab + PF_DIST + line);
        slab_dot(tile + b * slab, five, h0, nh, sp, a, nt, acc);
    }
}

/* The first `count` (may be <= 0) of the 8 row lanes to y. */
static inline void store_rows(float *y, __m256 v, int64_t count) {
    if (count >= HALF) {
        _mm256_storeu_ps(y, v);
    } else if (count > 0) {
        float tmp[HALF];
        _mm256_storeu_ps(tmp, v);
        memcpy(y, tmp, (size_t)count * sizeof *y);
    }
}

/* y[r] for the n_rows rows of the tiles at w against one token: both halves of a tile per pass,
 * so each activation broadcast serves 16 rows. */
static ALWAYS_INLINE void gemv_k(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                                 const void *restrict act, float *restrict y, int five) {
    const struct spread sp[2] = {spread_for(0), spread_for(1)};
    for (int64_t r = 0; r < n_rows; r += R) {
        __m256 acc[2];
        tile_dot((const uint8_t *)w + (size_t)r * w_stride, n / QK_K, five, 0, 2, sp, act, 0, 1,
                 acc);
        store_rows(y + r, acc[0], n_rows - r);
        store_rows(y + r + HALF, acc[1], n_rows - r - HALF);
    }
}

/* Tokens in passes of NT_GEMM over each half tile (the weights stay in L1/L2 between passes,
 * each unpacked weight vector serves NT_GEMM tokens); the last n_tok % NT_GEMM tokens one at a
 * time as in gemv. */
static ALWAYS_INLINE void gemm_k(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                                 const void *restrict act, size_t act_stride, int64_t n_tok,
                                 float *restrict y, size_t y_stride, int five) {
    const struct spread sp[2] = {spread_for(0), spread_for(1)};
    const int64_t nb = n / QK_K;
    const uint8_t *a = act;
    for (int64_t r = 0; r < n_rows; r += R) {
        const uint8_t *tile = (const uint8_t *)w + (size_t)r * w_stride;
        int64_t t = 0;
        for (; t + NT_GEMM <= n_tok; t += NT_GEMM)
            for (int h = 0; h < 2; h++) {
                __m256 acc[NT_GEMM];
                tile_dot(tile, nb, five, h, 1, &sp[h], a + t * act_stride, act_stride, NT_GEMM,
                         acc);
                for (int k = 0; k < NT_GEMM; k++)
                    store_rows(y + (t + k) * y_stride + r + HALF * h, acc[k],
                               n_rows - r - HALF * h);
            }
        for (; t < n_tok; t++) {
            __m256 acc[2];
            tile_dot(tile, nb, five, 0, 2, sp, a + t * act_stride, 0, 1, acc);
            store_rows(y + t * y_stride + r, acc[0], n_rows - r);
            store_rows(y + t * y_stride + r + HALF, acc[1], n_rows - r - HALF);
        }
    }
}

RP_K45_KERNELS

/* pack_act is the table's Q8_K quantizer (the scalar one here, bit-exact with llama.cpp): the
 * kernels read plain Q8_K rows. */
void quant_fill_rp_q45k_avx2(struct quant_kernels *t) {
    rp_k_set_group(&t[TENSOR_TYPE_Q4_K], quant_q4_k_rp_tile, gemv_q4_k_rp, gemm_q4_k_rp);
    rp_k_set_group(&t[TENSOR_TYPE_Q5_K], quant_q5_k_rp_tile, gemv_q5_k_rp, gemm_q5_k_rp);
}
