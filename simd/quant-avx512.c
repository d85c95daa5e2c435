/* AVX-512 (F/BW/VL/DQ) weight-type kernels, with VNNI vpdpbusd and BF16 vdpbf16ps where the
 * CPU has them (checked at run time: this file is compiled with those flags, but only the
 * cpu-flag-guarded paths execute them). Semantics are those of quant-scalar.c: dequantization
 * and quantization reproduce its bits exactly (no fused multiply-add where the reference rounds
 * twice), dots differ only by summation order. Two 32-element blocks fill one zmm. */
#include <immintrin.h>
#include <math.h>

#include "avx512-lanes.h"
#include "quant.h"

static inline float f16(uint16_t h) {
    return _cvtsh_ss(h);
}

/* ============================== dequantization ============================== */

static void dequant_f16(const void *restrict src, float *restrict dst, int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(s + i))));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, s + i)));
    }
}

static void dequant_bf16(const void *restrict src, float *restrict dst, int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)(s + i)));
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, s + i));
        _mm512_mask_storeu_ps(dst + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
    }
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

/* x = q*d + m elementwise for 32 unsigned bytes, rounded after the product as the reference. */
static inline void store_affine_32(float *dst, __m256i q, float d, float m, int has_min) {
    __m512 vd = _mm512_set1_ps(d), vm = _mm512_set1_ps(m);
    __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q)));
    __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1)));
    lo = _mm512_mul_ps(lo, vd);
    hi = _mm512_mul_ps(hi, vd);
    if (has_min) {
        lo = _mm512_add_ps(lo, vm);
        hi = _mm512_add_ps(hi, vm);
    }
    _mm512_storeu_ps(dst, lo);
    _mm512_storeu_ps(dst + 16, hi);
}

static void dequant_q4_0(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++) {
        __m256i q = _mm256_sub_epi8(nibbles_32(b[i].qs), _mm256_set1_epi8(8));
        store_affine_32(dst + i * QK, q, f16(b[i].d), 0.0f, 0);
    }
}

static void dequant_q4_1(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++)
        store_affine_32(dst + i * QK, nibbles_32(b[i].qs), f16(b[i].d), f16(b[i].m), 1);
}

static void dequant_q5_0(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q5_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++) {
        __m256i q = _mm256_or_si256(nibbles_32(b[i].qs), fifth_bits_32(b[i].qh));
        q = _mm256_sub_epi8(q, _mm256_set1_epi8(16));
        store_affine_32(dst + i * QK, q, f16(b[i].d), 0.0f, 0);
    }
}

static void dequant_q5_1(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q5_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++) {
        __m256i q = _mm256_or_si256(nibbles_32(b[i].qs), fifth_bits_32(b[i].qh));
        store_affine_32(dst + i * QK, q, f16(b[i].d), f16(b[i].m), 1);
    }
}

static void dequant_q8_0(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++)
        store_affine_32(dst + i * QK, _mm256_loadu_si256((const void *)b[i].qs), f16(b[i].d), 0.0f,
                        0);
}

/* ============================== activation quantizers ============================== */

static void quantize_f16(const float *restrict src, void *restrict dst, int64_t n) {
    uint16_t *o = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((void *)(o + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        o[i] = quant_f32_to_f16(src[i]);
}

/* ggml's rounding: u + 0x7fff + (bit 16 of u), NaN made quiet. */
static void quantize_bf16(const float *restrict src, void *restrict dst, int64_t n) {
    uint16_t *o = dst;
    int64_t i = 0;
    const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_loadu_si512(src + i);
        __m512i r = _mm512_add_epi32(
            u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
        r = _mm512_srli_epi32(r, 16);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, absmask), inf);
        r = _mm512_mask_mov_epi32(r, nan,
                                  _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(64)));
        _mm256_storeu_si256((void *)(o + i), _mm512_cvtepi32_epi16(r));
    }
    for (; i < n; i++)
        o[i] = quant_f32_to_bf16(src[i]);
}

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

static void quantize_q8_0(const float *restrict src, void *restrict dst, int64_t n) {
    struct block_q8_0 *b = dst;
    int sum;
    for (int64_t i = 0; i < n / QK; i++)
        quantize_block_8(src + i * QK, &b[i].d, b[i].qs, &sum);
}

static void quantize_q8_1(const float *restrict src, void *restrict dst, int64_t n) {
    struct block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / QK; i++) {
        int sum;
        float d = quantize_block_8(src + i * QK, &b[i].d, b[i].qs, &sum);
        b[i].s = quant_f32_to_f16(d * (float)sum);
    }
}

/* Q8_K: the first element of largest magnitude sets the scale's sign, as in the reference. */
static void quantize_q8_k(const float *restrict src, void *restrict dst, int64_t n) {
    struct block_q8_k *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *x = src + i * QK_K;
        __m512 vmax = _mm512_setzero_ps();
        for (int j = 0; j < QK_K; j += 16)
            vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
        float amax = _mm512_reduce_max_ps(vmax);
        if (amax == 0.0f) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        float max = 0.0f;
        for (int j = 0; j < QK_K; j += 16) {
            __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + j)),
                                               _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (hit) {
                max = x[j + __builtin_ctz(hit)];
                break;
            }
        }
        float iscale = -127.0f / max;
        __m512 vs = _mm512_set1_ps(iscale);
        for (int j = 0; j < QK_K; j += 16) {
            __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j), vs));
            q = _mm512_min_epi32(q, _mm512_set1_epi32(127));
            _mm_storeu_si128((void *)(b[i].qs + j), _mm512_cvtsepi32_epi8(q));
            b[i].bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        b[i].d = 1.0f / iscale;
    }
}

/* ============================== dot products ============================== */

static float dot_f32(int64_t n, const void *restrict w, const void *restrict a) {
    const float *x = w, *y = a;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 4; k++)
            acc[k] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16 * k),
                                     _mm512_loadu_ps(y + i + 16 * k), acc[k]);
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        acc[0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i),
                                 acc[0]);
    }
    return _mm512_reduce_add_ps(
        _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

static float dot_f16(int64_t n, const void *restrict w, const void *restrict a) {
    const uint16_t *x = w, *y = a;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const void *)(x + i))),
                               _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(y + i))), acc0);
        acc1 =
            _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const void *)(x + i + 16))),
                            _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(y + i + 16))), acc1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        acc0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)),
                               _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, y + i)), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

static inline __m512 bf16_lo_to_ps(__m256i v) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}

/* Without AVX512-BF16: widen to f32 (exact) and FMA. */
static float dot_bf16(int64_t n, const void *restrict w, const void *restrict a) {
    const uint16_t *x = w, *y = a;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        acc = _mm512_fmadd_ps(bf16_lo_to_ps(_mm256_maskz_loadu_epi16(m, x + i)),
                              bf16_lo_to_ps(_mm256_maskz_loadu_epi16(m, y + i)), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* With AVX512-BF16: vdpbf16ps multiplies bf16 pairs exactly and accumulates in f32. */
static float dot_bf16_dp(int64_t n, const void *restrict w, const void *restrict a) {
    const uint16_t *x = w, *y = a;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 32) {
        __mmask32 m = n - i >= 32 ? 0xffffffffu : (__mmask32)((1ull << (n - i)) - 1);
        __m512i vx = _mm512_maskz_loadu_epi16(m, x + i), vy = _mm512_maskz_loadu_epi16(m, y + i);
        acc = _mm512_dpbf16_ps(acc, (__m512bh)vx, (__m512bh)vy);
    }
    return _mm512_reduce_add_ps(acc);
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

DOT_Q8_PAIRS(dot_q4_0_vnni, dot_u8s8_vnni, struct block_q4_0, struct block_q8_0, U_Q4, 8, DS,
             NO_MIN)
DOT_Q8_PAIRS(dot_q4_0_plain, dot_u8s8_plain, struct block_q4_0, struct block_q8_0, U_Q4, 8, DS,
             NO_MIN)
DOT_Q8_PAIRS(dot_q4_1_vnni, dot_u8s8_vnni, struct block_q4_1, struct block_q8_1, U_Q4, 0, DS, MIN_S)
DOT_Q8_PAIRS(dot_q4_1_plain, dot_u8s8_plain, struct block_q4_1, struct block_q8_1, U_Q4, 0, DS,
             MIN_S)
DOT_Q8_PAIRS(dot_q5_0_vnni, dot_u8s8_vnni, struct block_q5_0, struct block_q8_0, U_Q5, 16, DS,
             NO_MIN)
DOT_Q8_PAIRS(dot_q5_0_plain, dot_u8s8_plain, struct block_q5_0, struct block_q8_0, U_Q5, 16, DS,
             NO_MIN)
DOT_Q8_PAIRS(dot_q5_1_vnni, dot_u8s8_vnni, struct block_q5_1, struct block_q8_1, U_Q5, 0, DS, MIN_S)
DOT_Q8_PAIRS(dot_q5_1_plain, dot_u8s8_plain, struct block_q5_1, struct block_q8_1, U_Q5, 0, DS,
             MIN_S)
DOT_Q8_PAIRS(dot_q8_0_vnni, dot_u8s8_vnni, struct block_q8_0, struct block_q8_0, U_Q8, -128, DS,
             NO_MIN)

/* Q8_0 without VNNI: x+128 would overflow maddubs' int16 pairs, so use |x| and y with x's sign
 * (|x| <= 128, |y| <= 127 keeps each pair sum within int16). */
static inline __m256i sign_move_256(__m256i y, __m256i x) {
    return _mm256_sign_epi8(y, x);
}

static float dot_q8_0_plain(int64_t n, const void *restrict w, const void *restrict a) {
    const struct block_q8_0 *x = w, *y = a;
    __m512 acc = _mm512_setzero_ps();
    float tail = 0.0f;
    int64_t nb = n / QK, i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m256i x0 = _mm256_loadu_si256((const void *)x[i].qs);
        __m256i x1 = _mm256_loadu_si256((const void *)x[i + 1].qs);
        __m256i y0 = _mm256_loadu_si256((const void *)y[i].qs);
        __m256i y1 = _mm256_loadu_si256((const void *)y[i + 1].qs);
        __m512i u = join_256(_mm256_abs_epi8(x0), _mm256_abs_epi8(x1));
        __m512i s = join_256(sign_move_256(y0, x0), sign_move_256(y1, x1));
        __m512i d = dot_u8s8_plain(_mm512_setzero_si512(), u, s);
        acc = _mm512_fmadd_ps(pair_scale(DS(x[i], y[i]), DS(x[i + 1], y[i + 1])),
                              _mm512_cvtepi32_ps(d), acc);
    }
    for (; i < nb; i++) {
        __m256i x0 = _mm256_loadu_si256((const void *)x[i].qs);
        __m256i y0 = _mm256_loadu_si256((const void *)y[i].qs);
        __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(x0), sign_move_256(y0, x0));
        __m256i d = _mm256_madd_epi16(p, _mm256_set1_epi16(1));
        __m512i d512 = _mm512_maskz_mov_epi64(0x0f, _mm512_castsi256_si512(d));
        tail += DS(x[i], y[i]) * (float)_mm512_reduce_add_epi32(d512);
    }
    return _mm512_reduce_add_ps(acc) + tail;
}

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

DOT_K45(dot_q4_k_vnni, dot_u8s8_vnni, struct block_q4_k, (void)0)
DOT_K45(dot_q4_k_plain, dot_u8s8_plain, struct block_q4_k, (void)0)
DOT_K45(dot_q5_k_vnni, dot_u8s8_vnni, struct block_q5_k,
        u = _mm512_or_si512(u, q5_k_high_bits(x[i].qh, c)))
DOT_K45(dot_q5_k_plain, dot_u8s8_plain, struct block_q5_k,
        u = _mm512_or_si512(u, q5_k_high_bits(x[i].qh, c)))

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

DOT_Q6K(dot_q6_k_vnni, dot_u8s8_vnni)
DOT_Q6K(dot_q6_k_plain, dot_u8s8_plain)

/* ============================== blocked rows x tokens (VNNI) ============================== */

/* Packed activation row (see quant_pack_bytes): qs[np*64] int8 (or uint8 = q+128 for signed
 * weights), dpair[np*16] f32 (scale of block 2p in lanes 0-7, of 2p+1 in lanes 8-15), s[nb16]
 * f32 (Q8_1 block sums), spair[np*16] (s/8 spread like dpair, exact: a power-of-two division
 * of an f16 value). A missing last block of an odd count is zero. The quantization is
 * quantize_block_8, the same as quantize_act, so results match vec_dot's arithmetic. */
static void pack_act_8(const float *restrict x, void *restrict dst, int64_t n, int unsigned_q) {
    int64_t nb = n / QK, np = (nb + 1) / 2;
    int8_t *qs = dst;
    float *dp = (float *)(qs + np * 64), *s = dp + np * 16, *sp = s + (nb + 15) / 16 * 16;
    for (int64_t b = 0; b < nb; b++) {
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
    for (int64_t b = nb; b < (nb + 15) / 16 * 16; b++)
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

static void gemm_q4_1(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                      const void *restrict act, size_t act_stride, int64_t n_tok, float *restrict y,
                      size_t y_stride) {
    if (n_tok == 1) {
        gemv_q4_1(n, w, w_stride, n_rows, act, y);
        return;
    }
    struct row_prep prep[2]; /* 2 x 50 KiB of stack: two unpacked rows, reused for every token */
    int64_t nb = n / QK, np = (nb + 1) / 2;
    const uint8_t *wb = w;
    for (int64_t r = 0; r < n_rows; r += 2) {
        int two_rows = r + 1 < n_rows;
        prep_q4_1(&prep[0], (const struct block_q4_1 *)(const void *)(wb + (size_t)r * w_stride),
                  nb);
        if (two_rows)
            prep_q4_1(&prep[1],
                      (const struct block_q4_1 *)(const void *)(wb + (size_t)(r + 1) * w_stride),
                      nb);
        gemm_tile_2x2(&prep[0], two_rows ? &prep[1] : &prep[0], nb, np, act, act_stride, n_tok, y,
                      y_stride, r, two_rows, 1, 1);
    }
}

static void gemm_q8_0(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                      const void *restrict act, size_t act_stride, int64_t n_tok, float *restrict y,
                      size_t y_stride) {
    if (n_tok == 1) {
        gemv_q8_0(n, w, w_stride, n_rows, act, y);
        return;
    }
    struct row_prep prep[2]; /* 2 x 50 KiB of stack: two unpacked rows, reused for every token */
    int64_t nb = n / QK, np = (nb + 1) / 2;
    const uint8_t *wb = w;
    for (int64_t r = 0; r < n_rows; r += 2) {
        int two_rows = r + 1 < n_rows;
        prep_q8_0(&prep[0], (const struct block_q8_0 *)(const void *)(wb + (size_t)r * w_stride),
                  nb);
        if (two_rows)
            prep_q8_0(&prep[1],
                      (const struct block_q8_0 *)(const void *)(wb + (size_t)(r + 1) * w_stride),
                      nb);
        gemm_tile_2x2(&prep[0], two_rows ? &prep[1] : &prep[0], nb, np, act, act_stride, n_tok, y,
                      y_stride, r, two_rows, 0, 0);
    }
}

/* ============================== the table ============================== */

/* The four always-present entries of a type, leaving its tile group (pack_act, rp_tile, gemv_rp,
 * gemm_rp) as the AVX2 fill set it: replacing the whole entry would drop kernels this file has no
 * better form of. */
static void set_dots(struct quant_kernels *k, quant_dequant_row_fn deq, quant_quantize_row_fn quant,
                     quant_vec_dot_fn dot, uint32_t act) {
    k->dequant_row = deq, k->quantize_act = quant, k->vec_dot = dot, k->act_type = act;
}

void quant_fill_avx512(struct quant_kernels *t, bool vnni, bool bf16) {
    t[TENSOR_TYPE_F32].vec_dot = dot_f32;
    set_dots(&t[TENSOR_TYPE_F16], dequant_f16, quantize_f16, dot_f16, TENSOR_TYPE_F16);
    set_dots(&t[TENSOR_TYPE_BF16], dequant_bf16, quantize_bf16, bf16 ? dot_bf16_dp : dot_bf16,
             TENSOR_TYPE_BF16);
    set_dots(&t[TENSOR_TYPE_Q4_0], dequant_q4_0, quantize_q8_0,
             vnni ? dot_q4_0_vnni : dot_q4_0_plain, TENSOR_TYPE_Q8_0);
    set_dots(&t[TENSOR_TYPE_Q4_1], dequant_q4_1, quantize_q8_1,
             vnni ? dot_q4_1_vnni : dot_q4_1_plain, TENSOR_TYPE_Q8_1);
    set_dots(&t[TENSOR_TYPE_Q5_0], dequant_q5_0, quantize_q8_0,
             vnni ? dot_q5_0_vnni : dot_q5_0_plain, TENSOR_TYPE_Q8_0);
    set_dots(&t[TENSOR_TYPE_Q5_1], dequant_q5_1, quantize_q8_1,
             vnni ? dot_q5_1_vnni : dot_q5_1_plain, TENSOR_TYPE_Q8_1);
    set_dots(&t[TENSOR_TYPE_Q8_0], dequant_q8_0, quantize_q8_0,
             vnni ? dot_q8_0_vnni : dot_q8_0_plain, TENSOR_TYPE_Q8_0);
    if (vnni) {
        t[TENSOR_TYPE_Q4_1].pack_act = pack_act_q8_1;
        t[TENSOR_TYPE_Q4_1].gemm = gemm_q4_1;
        t[TENSOR_TYPE_Q4_1].rp_tile = quant_q4_1_rp_tile;
        t[TENSOR_TYPE_Q8_0].pack_act = pack_act_q8_0u;
        t[TENSOR_TYPE_Q8_0].gemm = gemm_q8_0;
        t[TENSOR_TYPE_Q8_0].rp_tile = quant_q8_0_rp_tile;
        /* this group replaces the AVX2 one, whose kernels read another activation packing */
        quant_fill_rp_q32_vnni(t);
    }
    t[TENSOR_TYPE_Q4_K].quantize_act = quantize_q8_k;
    t[TENSOR_TYPE_Q4_K].vec_dot = vnni ? dot_q4_k_vnni : dot_q4_k_plain;
    t[TENSOR_TYPE_Q5_K].quantize_act = quantize_q8_k;
    t[TENSOR_TYPE_Q5_K].vec_dot = vnni ? dot_q5_k_vnni : dot_q5_k_plain;
    t[TENSOR_TYPE_Q6_K].quantize_act = quantize_q8_k;
    t[TENSOR_TYPE_Q6_K].vec_dot = vnni ? dot_q6_k_vnni : dot_q6_k_plain;
}
