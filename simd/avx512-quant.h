/* Shared by the AVX-512 weight kernels (quant-avx512.c, quant-avx512-vnni.c): the byte
 * unpacking of the block formats, the activation-block quantizer, the 16 x 16 transposing
 * reductions of the activation quantizers, and the loop shapes of the
 * integer dots, each instantiated once with vpdpbusd (quant-avx512-vnni.c) and once with
 * maddubs + madd (quant-avx512.c). Static inline functions and macros only. */
#ifndef ADAKV_SIMD_AVX512_QUANT_H
#define ADAKV_SIMD_AVX512_QUANT_H

#include <immintrin.h>
#include <string.h>

#include "quant.h"

static inline float f16(uint16_t h) {
    return _cvtsh_ss(h);
}

/* The 16 nibble bytes of a 32-block as 32 bytes in element order (low nibbles, then high). */
static inline __m256i nibbles_32(const uint8_t *qs) {
    __m128i q = _mm_loadu_si128((const void *)qs);
    __m128i lo = _mm_and_si128(q, _mm_set1_epi8(0xf));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0xf));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

/* 32 bytes whose bit 4 is bit j of the little-endian u32 at qh (the Q5 fifth bit). */
static inline __m256i fifth_bits_32(const uint8_t *qh) {
    uint32_t bits;
    memcpy(&bits, qh, 4);
    return _mm256_maskz_mov_epi8(bits, _mm256_set1_epi8(0x10));
}

/* Lanes of the two-vector permutes of a 16 x 16 transposing reduction: at level l every lane
 * index of the pair (A, B) with bit 3-l clear (lo), then with it set (hi). Merging op(lo, hi)
 * halves the lanes each vector's groups span and doubles the groups, so four levels fold 16
 * vectors into one whose lane b holds the reduction of vector b. */
static const int32_t reduce_lo[4][16]
    __attribute__((aligned(64))) = {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
                                    {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27},
                                    {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29},
                                    {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30}};

/* NAME(v): lane b = OP over the lanes of v[b] (v is overwritten), for vectors of type T
 * permuted by PERM. */
#define REDUCE_16X16(NAME, T, PERM, OP)                                                            \
    static inline T NAME(T *v) {                                                                   \
        for (int l = 0, cnt = 16; cnt > 1; l++, cnt /= 2) {                                        \
            const __m512i lo = _mm512_load_si512(reduce_lo[l]);                                    \
            const __m512i hi = _mm512_or_si512(lo, _mm512_set1_epi32(8 >> l));                     \
            for (int i = 0; i < cnt / 2; i++)                                                      \
                v[i] = OP(PERM(v[2 * i], lo, v[2 * i + 1]), PERM(v[2 * i], hi, v[2 * i + 1]));     \
        }                                                                                          \
        return v[0];                                                                               \
    }
REDUCE_16X16(max_16x16, __m512, _mm512_permutex2var_ps, _mm512_max_ps)
REDUCE_16X16(add_16x16, __m512i, _mm512_permutex2var_epi32, _mm512_add_epi32)

/* One 32-block to int8 as the reference: returns d = amax/127 (unrounded), *sum = sum(q). */
static inline float quantize_block_8(const float *x, uint16_t *d_out, int8_t *q, int *sum) {
    __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
    float d = amax / 127.0f;
    float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    *d_out = quant_f32_to_f16(d);
    __m512 vid = _mm512_set1_ps(id);
    __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, vid));
    __m512i qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, vid));
    _mm_storeu_si128((void *)q, _mm512_cvtsepi32_epi8(qa));
    _mm_storeu_si128((void *)(q + 16), _mm512_cvtsepi32_epi8(qb));
    *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
    return d;
}

/* Sum of u8 x s8 products in 4-byte groups into int32 lanes; vpdpbusd when the CPU has VNNI,
 * else maddubs + madd (no saturation: |u| <= 63 or |u| <= 128 with |s| <= 127 keeps pairs of
 * products within int16). */
static inline __m512i dot_u8s8_vnni(__m512i acc, __m512i u, __m512i s) {
    return _mm512_dpbusd_epi32(acc, u, s);
}
static inline __m512i dot_u8s8_plain(__m512i acc, __m512i u, __m512i s) {
    __m512i p = _mm512_maddubs_epi16(u, s);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(p, _mm512_set1_epi16(1)));
}

static inline __m512i join_256(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* Scale vector for a pair of blocks: lanes 0-7 get s0, lanes 8-15 get s1. */
static inline __m512 pair_scale(float s0, float s1) {
    return _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1);
}

/* The 32-block integer dots below all share one shape: per pair of blocks, build the unsigned
 * weight bytes u (64 B), the activation bytes a (64 B), the integer dot per block in 8 lanes
 * each, then one FMA with the per-block float scale. Instantiated once with vpdpbusd and once
 * with maddubs + madd. */
#define DOT_Q8_PAIRS(NAME, DOTFN, WT, AT, UBYTES, BIAS, DSCALE, MTERM)                             \
    static float NAME(int64_t n, const void *restrict w, const void *restrict a) {                 \
        const WT *x = w;                                                                           \
        const AT *y = a;                                                                           \
        int64_t nb = n / QK, i = 0;                                                                \
        __m512 acc = _mm512_setzero_ps();                                                          \
        float tail = 0.0f;                                                                         \
        for (; i + 2 <= nb; i += 2) {                                                              \
            __m512i u = join_256(UBYTES(&x[i]), UBYTES(&x[i + 1]));                                \
            __m512i s = join_256(_mm256_loadu_si256((const void *)y[i].qs),                        \
                                 _mm256_loadu_si256((const void *)y[i + 1].qs));                   \
            __m512i d = DOTFN(_mm512_setzero_si512(), u, s);                                       \
            if (BIAS)                                                                              \
                d = _mm512_sub_epi32(d, DOTFN(_mm512_setzero_si512(), _mm512_set1_epi8(BIAS), s)); \
            acc = _mm512_fmadd_ps(pair_scale(DSCALE(x[i], y[i]), DSCALE(x[i + 1], y[i + 1])),      \
                                  _mm512_cvtepi32_ps(d), acc);                                     \
            tail += MTERM(x[i], y[i]) + MTERM(x[i + 1], y[i + 1]);                                 \
        }                                                                                          \
        for (; i < nb; i++) {                                                                      \
            __m512i u = _mm512_castsi256_si512(UBYTES(&x[i]));                                     \
            __m512i s = _mm512_castsi256_si512(_mm256_loadu_si256((const void *)y[i].qs));         \
            u = _mm512_maskz_mov_epi64(0x0f, u);                                                   \
            s = _mm512_maskz_mov_epi64(0x0f, s);                                                   \
            __m512i d = DOTFN(_mm512_setzero_si512(), u, s);                                       \
            if (BIAS)                                                                              \
                d = _mm512_sub_epi32(d, DOTFN(_mm512_setzero_si512(), _mm512_set1_epi8(BIAS), s)); \
            tail += DSCALE(x[i], y[i]) * (float)_mm512_reduce_add_epi32(d) + MTERM(x[i], y[i]);    \
        }                                                                                          \
        return _mm512_reduce_add_ps(acc) + tail;                                                   \
    }

#define U_Q4(b) nibbles_32((b)->qs)
#define U_Q5(b) _mm256_or_si256(nibbles_32((b)->qs), fifth_bits_32((b)->qh))
/* Q8_0 weights are signed: the integer dot uses x+128 (unsigned) and subtracts 128*sum(y). */
static inline __m256i U_Q8(const struct block_q8_0 *b) {
    return _mm256_xor_si256(_mm256_loadu_si256((const void *)b->qs), _mm256_set1_epi8(-128));
}
#define DS(xb, yb)     (f16((xb).d) * f16((yb).d))
#define NO_MIN(xb, yb) 0.0f
#define MIN_S(xb, yb)  (f16((xb).m) * f16((yb).s))

/* Q4_K/Q5_K chunk c (64 elements, sub-blocks 2c and 2c+1) as 64 unsigned bytes in element order
 * (the Q5_K fifth bits come from bits 2c and 2c+1 of qh[0..31]). */
static inline __m512i q4_k_chunk(const uint8_t *qs) {
    __m256i q = _mm256_loadu_si256((const void *)qs);
    __m256i lo = _mm256_and_si256(q, _mm256_set1_epi8(0xf));
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(0xf));
    return join_256(lo, hi);
}
static inline __m512i q5_k_high_bits(const uint8_t *qh, int c) {
    __m256i h = _mm256_loadu_si256((const void *)qh);
    __m256i lo = _mm256_and_si256(_mm256_srli_epi16(h, 2 * c), _mm256_set1_epi8(1));
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(h, 2 * c + 1), _mm256_set1_epi8(1));
    return _mm512_slli_epi16(join_256(lo, hi), 4);
}

/* Sub-block scales and the min term of a Q4_K/Q5_K super-block: sc[8] for the integer dots,
 * returns sum_j m_j * (sum of the activations of sub-block j). */
static inline int32_t k_scales_mins(const uint8_t *scales, const int16_t *bsums, int32_t *sc) {
    int32_t sm = 0;
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        quant_k_scale_min(j, scales, &s, &m);
        sc[j] = s;
        sm += m * (bsums[2 * j] + bsums[2 * j + 1]);
    }
    return sm;
}

#define DOT_K45(NAME, DOTFN, WT, HIGH)                                                             \
    static float NAME(int64_t n, const void *restrict w, const void *restrict a) {                 \
        const WT *x = w;                                                                           \
        const struct block_q8_k *y = a;                                                            \
        float sum = 0.0f;                                                                          \
        for (int64_t i = 0; i < n / QK_K; i++) {                                                   \
            int32_t sc[8];                                                                         \
            int32_t sm = k_scales_mins(x[i].scales, y[i].bsums, sc);                               \
            __m512i isum = _mm512_setzero_si512();                                                 \
            for (int c = 0; c < 4; c++) {                                                          \
                __m512i u = q4_k_chunk(x[i].qs + 32 * c);                                          \
                HIGH;                                                                              \
                __m512i d =                                                                        \
                    DOTFN(_mm512_setzero_si512(), u, _mm512_loadu_si512(y[i].qs + 64 * c));        \
                __m512i s = _mm512_inserti64x4(_mm512_set1_epi32(sc[2 * c]),                       \
                                               _mm256_set1_epi32(sc[2 * c + 1]), 1);               \
                isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(d, s));                           \
            }                                                                                      \
            int32_t si = _mm512_reduce_add_epi32(isum);                                            \
            sum += f16(x[i].d) * y[i].d * (float)si - f16(x[i].dmin) * y[i].d * (float)sm;         \
        }                                                                                          \
        return sum;                                                                                \
    }

/* Q6_K: per 128-element half, four 32-byte parts of 6-bit unsigned values; the -32 offset is
 * taken out afterwards through the bsums: sum sc_g * (q-32).y = sum sc_g*q.y - 32 sum sc_g*bsum_g.
 * Lanes of a 64-byte dot cover 4 bytes, so each 16-group's scale is repeated over 4 lanes. */
#define DOT_Q6K(NAME, DOTFN)                                                                       \
    static float NAME(int64_t n, const void *restrict w, const void *restrict a) {                 \
        const struct block_q6_k *x = w;                                                            \
        const struct block_q8_k *y = a;                                                            \
        const __m512i rep4 = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);     \
        float sum = 0.0f;                                                                          \
        for (int64_t i = 0; i < n / QK_K; i++) {                                                   \
            __m512i sc16 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)x[i].scales));       \
            int32_t off = 0;                                                                       \
            for (int g = 0; g < 16; g++)                                                           \
                off += x[i].scales[g] * y[i].bsums[g];                                             \
            __m512i isum = _mm512_setzero_si512();                                                 \
            for (int h = 0; h < 2; h++) {                                                          \
                __m256i l0 = _mm256_loadu_si256((const void *)(x[i].ql + 64 * h));                 \
                __m256i l1 = _mm256_loadu_si256((const void *)(x[i].ql + 64 * h + 32));            \
                __m256i qh = _mm256_loadu_si256((const void *)(x[i].qh + 32 * h));                 \
                const __m256i m4 = _mm256_set1_epi8(0xf), m2 = _mm256_set1_epi8(3);                \
                __m256i p[4];                                                                      \
                p[0] = _mm256_and_si256(l0, m4);                                                   \
                p[1] = _mm256_and_si256(l1, m4);                                                   \
                p[2] = _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4);                             \
                p[3] = _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4);                             \
                for (int k = 0; k < 4; k++) {                                                      \
                    __m256i hb = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m2);               \
                    p[k] = _mm256_or_si256(p[k], _mm256_slli_epi16(hb, 4));                        \
                }                                                                                  \
                for (int k = 0; k < 4; k += 2) {                                                   \
                    int base = 128 * h + 32 * k; /* element index of this 64-byte pair */          \
                    __m512i d = DOTFN(_mm512_setzero_si512(), join_256(p[k], p[k + 1]),            \
                                      _mm512_loadu_si512(y[i].qs + base));                         \
                    __m512i idx = _mm512_add_epi32(rep4, _mm512_set1_epi32(base / 16));            \
                    __m512i s = _mm512_permutexvar_epi32(idx, sc16);                               \
                    isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(d, s));                       \
                }                                                                                  \
            }                                                                                      \
            int32_t si = _mm512_reduce_add_epi32(isum) - 32 * off;                                 \
            sum += f16(x[i].d) * y[i].d * (float)si;                                               \
        }                                                                                          \
        return sum;                                                                                \
    }

#endif
