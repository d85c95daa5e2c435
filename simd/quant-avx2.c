/* AVX2 + FMA + F16C weight-type kernels for CPUs without AVX-512: the activation quantizers of
 * the 32-block formats and their dots, plus F32/F16 dots. Same contract as quant-scalar.c:
 * quantization is bit-exact, dots differ only by summation order. Types not listed in
 * quant_fill_avx2() keep the scalar kernels. */
#include <immintrin.h>

#include "quant.h"

static inline float f16(uint16_t h) {
    return _cvtsh_ss(h);
}

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* ============================== activation quantizers ============================== */

/* 8 int32 lanes to 8 int8 (values are within [-127, 127], so the saturating packs are exact). */
static inline void store_8_i8(int8_t *q, __m256i v) {
    __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    w = _mm_packs_epi16(w, w);
    _mm_storel_epi64((void *)q, w);
}

static inline float quantize_block_8(const float *x, uint16_t *d_out, int8_t *q, int *sum) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 v[4], m = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        m = _mm256_max_ps(m, _mm256_and_ps(v[k], absmask));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float amax = _mm_cvtss_f32(m4);
    float d = amax / 127.0f;
    float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    *d_out = quant_f32_to_f16(d);
    __m256 vid = _mm256_set1_ps(id);
    __m256i s = _mm256_setzero_si256();
    for (int k = 0; k < 4; k++) {
        __m256i qi = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], vid));
        store_8_i8(q + 8 * k, qi);
        s = _mm256_add_epi32(s, qi);
    }
    *sum = hsum_epi32(s);
    return d;
}

QUANT_Q8_0_Q8_1_FROM_BLOCK8

/* ============================== dot products ============================== */

static float dot_f32(int64_t n, const void *restrict w, const void *restrict a) {
    const float *x = w, *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), acc1);
    }
    float s = hsum_ps(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static float dot_f16(int64_t n, const void *restrict w, const void *restrict a) {
    const uint16_t *x = w, *y = a;
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const void *)(x + i))),
                              _mm256_cvtph_ps(_mm_loadu_si128((const void *)(y + i))), acc);
    float s = hsum_ps(acc);
    for (; i < n; i++)
        s += f16(x[i]) * f16(y[i]);
    return s;
}

static inline __m256i nibbles_32(const uint8_t *qs) {
    __m128i q = _mm_loadu_si128((const void *)qs);
    __m128i lo = _mm_and_si128(q, _mm_set1_epi8(0xf));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0xf));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

/* Bit j of the LE u32 at qh moved to bit 4 of byte j. */
static inline __m256i fifth_bits_32(const uint8_t *qh) {
    uint32_t bits;
    memcpy(&bits, qh, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), shuf);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* u8 x s8 in 4-byte groups to int32 (products of |u| <= 31 with s fit int16 pairs). */
static inline __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

#define DOT_BLOCKS(NAME, WT, AT, UBYTES, BIAS, MTERM)                                              \
    static float NAME(int64_t n, const void *restrict w, const void *restrict a) {                 \
        const WT *x = w;                                                                           \
        const AT *y = a;                                                                           \
        __m256 acc = _mm256_setzero_ps();                                                          \
        float mins = 0.0f;                                                                         \
        for (int64_t i = 0; i < n / QK; i++) {                                                     \
            __m256i s = _mm256_loadu_si256((const void *)y[i].qs);                                 \
            __m256i p = _mm256_maddubs_epi16(UBYTES(&x[i]), s);                                    \
            if (BIAS)                                                                              \
                p = _mm256_sub_epi16(p, _mm256_maddubs_epi16(_mm256_set1_epi8(BIAS), s));          \
            __m256i d = _mm256_madd_epi16(p, _mm256_set1_epi16(1));                                \
            acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)),                       \
                                  _mm256_cvtepi32_ps(d), acc);                                     \
            mins += MTERM(x[i], y[i]);                                                             \
        }                                                                                          \
        return hsum_ps(acc) + mins;                                                                \
    }

#define U_Q4(b)        nibbles_32((b)->qs)
#define U_Q5(b)        _mm256_or_si256(nibbles_32((b)->qs), fifth_bits_32((b)->qh))
#define NO_MIN(xb, yb) 0.0f
#define MIN_S(xb, yb)  (f16((xb).m) * f16((yb).s))

DOT_BLOCKS(dot_q4_0, struct block_q4_0, struct block_q8_0, U_Q4, 8, NO_MIN)
DOT_BLOCKS(dot_q4_1, struct block_q4_1, struct block_q8_1, U_Q4, 0, MIN_S)
DOT_BLOCKS(dot_q5_0, struct block_q5_0, struct block_q8_0, U_Q5, 16, NO_MIN)
DOT_BLOCKS(dot_q5_1, struct block_q5_1, struct block_q8_1, U_Q5, 0, MIN_S)

/* Signed x signed: |x| times y carrying x's sign. */
static float dot_q8_0(int64_t n, const void *restrict w, const void *restrict a) {
    const struct block_q8_0 *x = w, *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        __m256i xv = _mm256_loadu_si256((const void *)x[i].qs);
        __m256i yv = _mm256_loadu_si256((const void *)y[i].qs);
        __m256i d = dot_u8s8(_mm256_abs_epi8(xv), _mm256_sign_epi8(yv, xv));
        acc =
            _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)), _mm256_cvtepi32_ps(d), acc);
    }
    return hsum_ps(acc);
}

void quant_fill_avx2(struct quant_kernels *t) {
    t[TENSOR_TYPE_F32].vec_dot = dot_f32;
    t[TENSOR_TYPE_F16].vec_dot = dot_f16;
    t[TENSOR_TYPE_Q4_0].quantize_act = quantize_q8_0;
    t[TENSOR_TYPE_Q4_0].vec_dot = dot_q4_0;
    t[TENSOR_TYPE_Q4_1].quantize_act = quantize_q8_1;
    t[TENSOR_TYPE_Q4_1].vec_dot = dot_q4_1;
    t[TENSOR_TYPE_Q5_0].quantize_act = quantize_q8_0;
    t[TENSOR_TYPE_Q5_0].vec_dot = dot_q5_0;
    t[TENSOR_TYPE_Q5_1].quantize_act = quantize_q8_1;
    t[TENSOR_TYPE_Q5_1].vec_dot = dot_q5_1;
    t[TENSOR_TYPE_Q8_0].quantize_act = quantize_q8_0;
    t[TENSOR_TYPE_Q8_0].vec_dot = dot_q8_0;
}
