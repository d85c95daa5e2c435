/* AVX-512 (F/BW/VL/DQ) weight-type kernels: dequantization, activation quantization and the dot
 * products a CPU without VNNI runs (maddubs + madd), plus the BF16 vdpbf16ps dot for CPUs with
 * AVX512_BF16 (quant_fill_avx512_bf16). The VNNI dots and the blocked kernels are in
 * quant-avx512-vnni.c. Semantics are those of quant-scalar.c: dequantization and quantization
 * reproduce its bits exactly (no fused multiply-add where the reference rounds twice), dots
 * differ only by summation order. Two 32-element blocks fill one zmm. */
#include <immintrin.h>
#include <math.h>

#include "avx512-lanes.h"
#include "avx512-quant.h"
#include "quant.h"

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

QUANT_Q8_0_Q8_1_FROM_BLOCK8

/* Q8_K: the first element of largest magnitude sets the scale's sign, as in the reference. The
 * 16 sub-block sums come from one transposing reduction of the 16 quantized vectors (add_16x16)
 * rather than a horizontal sum each. */
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
        __m512i q[QK_K / 16];
        for (int j = 0; j < QK_K / 16; j++) {
            q[j] =
                _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * j), vs)),
                                 _mm512_set1_epi32(127));
            _mm_storeu_si128((void *)(b[i].qs + 16 * j), _mm512_cvtsepi32_epi8(q[j]));
        }
        _Static_assert(QK_K / 16 == 16, "a Q8_K block has 16 sub-block sums: one reduction");
        _mm256_storeu_si256((void *)b[i].bsums, _mm512_cvtepi32_epi16(add_16x16(q)));
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

DOT_Q8_PAIRS(dot_q4_0_plain, dot_u8s8_plain, struct block_q4_0, struct block_q8_0, U_Q4, 8, DS,
             NO_MIN)
DOT_Q8_PAIRS(dot_q4_1_plain, dot_u8s8_plain, struct block_q4_1, struct block_q8_1, U_Q4, 0, DS,
             MIN_S)
DOT_Q8_PAIRS(dot_q5_0_plain, dot_u8s8_plain, struct block_q5_0, struct block_q8_0, U_Q5, 16, DS,
             NO_MIN)
DOT_Q8_PAIRS(dot_q5_1_plain, dot_u8s8_plain, struct block_q5_1, struct block_q8_1, U_Q5, 0, DS,
             MIN_S)

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

DOT_K45(dot_q4_k_plain, dot_u8s8_plain, struct block_q4_k, (void)0)
DOT_K45(dot_q5_k_plain, dot_u8s8_plain, struct block_q5_k,
        u = _mm512_or_si512(u, q5_k_high_bits(x[i].qh, c)))

DOT_Q6K(dot_q6_k_plain, dot_u8s8_plain)
/* ============================== the table ============================== */

/* The four always-present entries of a type, leaving its tile group (pack_act, rp_tile, gemv_rp,
 * gemm_rp) as the AVX2 fill set it: replacing the whole entry would drop kernels this file has no
 * better form of. */
static void set_dots(struct quant_kernels *k, quant_dequant_row_fn deq, quant_quantize_row_fn quant,
                     quant_vec_dot_fn dot, uint32_t act) {
    k->dequant_row = deq, k->quantize_act = quant, k->vec_dot = dot, k->act_type = act;
}

void quant_fill_avx512(struct quant_kernels *t) {
    t[TENSOR_TYPE_F32].vec_dot = dot_f32;
    set_dots(&t[TENSOR_TYPE_F16], dequant_f16, quantize_f16, dot_f16, TENSOR_TYPE_F16);
    set_dots(&t[TENSOR_TYPE_BF16], dequant_bf16, quantize_bf16, dot_bf16, TENSOR_TYPE_BF16);
    set_dots(&t[TENSOR_TYPE_Q4_0], dequant_q4_0, quantize_q8_0, dot_q4_0_plain, TENSOR_TYPE_Q8_0);
    set_dots(&t[TENSOR_TYPE_Q4_1], dequant_q4_1, quantize_q8_1, dot_q4_1_plain, TENSOR_TYPE_Q8_1);
    set_dots(&t[TENSOR_TYPE_Q5_0], dequant_q5_0, quantize_q8_0, dot_q5_0_plain, TENSOR_TYPE_Q8_0);
    set_dots(&t[TENSOR_TYPE_Q5_1], dequant_q5_1, quantize_q8_1, dot_q5_1_plain, TENSOR_TYPE_Q8_1);
    set_dots(&t[TENSOR_TYPE_Q8_0], dequant_q8_0, quantize_q8_0, dot_q8_0_plain, TENSOR_TYPE_Q8_0);
    t[TENSOR_TYPE_Q4_K].quantize_act = quantize_q8_k;
    t[TENSOR_TYPE_Q4_K].vec_dot = dot_q4_k_plain;
    t[TENSOR_TYPE_Q5_K].quantize_act = quantize_q8_k;
    t[TENSOR_TYPE_Q5_K].vec_dot = dot_q5_k_plain;
    t[TENSOR_TYPE_Q6_K].quantize_act = quantize_q8_k;
    t[TENSOR_TYPE_Q6_K].vec_dot = dot_q6_k_plain;
}

void quant_fill_avx512_bf16(struct quant_kernels *t) {
    t[TENSOR_TYPE_BF16].vec_dot = dot_bf16_dp;
}
