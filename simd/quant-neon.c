/* Weight-type kernels, AArch64 NEON: dequantization of Q4_0/Q4_1/Q8_0, the Q8_0/Q8_1 activation
 * quantizers, and the 32-block integer dots Q4_0.Q8_0, Q4_1.Q8_1, Q5_0.Q8_0, Q5_1.Q8_1 and
 * Q8_0.Q8_0 (contracts in quant.h).
 *
 * Each dot exists twice: with SDOT (vdotq_s32, ARMv8.2 dotprod, HWCAP_ASIMDDP) and with plain
 * NEON widening multiplies (vmull_s8 + pairwise add), for cores without dotprod. One body
 * serves both: `sdot` is a compile-time constant at each call (zstd's HUF_DGEN idea).
 *
 * Exactness: dequantization multiplies and adds separately in the reference's order, and the
 * quantizers use the reference's d = amax/127, id = 127/amax and round-to-nearest-even
 * (vcvtnq), so both are bit-identical to quant-scalar.c. Each dot forms the block's integer
 * sum exactly and then adds d_w * d_a * sum (+ m * s) to one running f32 in block order, the
 * reference's arithmetic, so it matches the reference bit for bit as well. */
#include <arm_neon.h>

#include "quant.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* ============================== integer dot of 16 int8 pairs ============================== */

ALWAYS_INLINE int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b, bool sdot) {
    if (sdot)
        return vdotq_s32(acc, a, b);
    /* |a * b| <= 128 * 128 fits int16; pairwise adds widen before any sum can overflow */
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
}

/* The 32 weights of a 4-bit block: low nibbles are elements 0..15, high nibbles 16..31. */
ALWAYS_INLINE void nibbles(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi) {
    const uint8x16_t q = vld1q_u8(qs);
    *lo = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0f)));
    *hi = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
}

/* 0x10 in byte j of lo/hi where bit j / j+16 of the Q5 block's qh is set. */
ALWAYS_INLINE void fifth_bits(const uint8_t qh[4], uint8x16_t *lo, uint8x16_t *hi) {
    static const uint8_t bit_of_lane[16] = {1, 2, 4, 8, 16, 32, 64, 128,
                                            1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t bits = vld1q_u8(bit_of_lane);
    const uint8x16_t b01 = vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1]));
    const uint8x16_t b23 = vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3]));
    *lo = vandq_u8(vtstq_u8(b01, bits), vdupq_n_u8(0x10));
    *hi = vandq_u8(vtstq_u8(b23, bits), vdupq_n_u8(0x10));
}

/* ============================== dots ============================== */

ALWAYS_INLINE float dot_q4_0_body(int64_t n, const void *restrict w, const void *restrict a,
                                  bool sdot) {
    const struct block_q4_0 *x = w;
    const struct block_q8_0 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        int8x16_t lo, hi;
        nibbles(x[i].qs, &lo, &hi);
        lo = vsubq_s8(lo, vdupq_n_s8(8));
        hi = vsubq_s8(hi, vdupq_n_s8(8));
        int32x4_t p = dot16(vdupq_n_s32(0), lo, vld1q_s8(y[i].qs), sdot);
        p = dot16(p, hi, vld1q_s8(y[i].qs + 16), sdot);
        sum += quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d) * (float)vaddvq_s32(p);
    }
    return sum;
}

ALWAYS_INLINE float dot_q4_1_body(int64_t n, const void *restrict w, const void *restrict a,
                                  bool sdot) {
    const struct block_q4_1 *x = w;
    const struct block_q8_1 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        int8x16_t lo, hi;
        nibbles(x[i].qs, &lo, &hi);
        int32x4_t p = dot16(vdupq_n_s32(0), lo, vld1q_s8(y[i].qs), sdot);
        p = dot16(p, hi, vld1q_s8(y[i].qs + 16), sdot);
        sum += quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d) * (float)vaddvq_s32(p) +
               quant_f16_to_f32(x[i].m) * quant_f16_to_f32(y[i].s);
    }
    return sum;
}

ALWAYS_INLINE float dot_q5_0_body(int64_t n, const void *restrict w, const void *restrict a,
                                  bool sdot) {
    const struct block_q5_0 *x = w;
    const struct block_q8_0 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        int8x16_t lo, hi;
        uint8x16_t hlo, hhi;
        nibbles(x[i].qs, &lo, &hi);
        fifth_bits(x[i].qh, &hlo, &hhi);
        lo = vsubq_s8(vorrq_s8(lo, vreinterpretq_s8_u8(hlo)), vdupq_n_s8(16));
        hi = vsubq_s8(vorrq_s8(hi, vreinterpretq_s8_u8(hhi)), vdupq_n_s8(16));
        int32x4_t p = dot16(vdupq_n_s32(0), lo, vld1q_s8(y[i].qs), sdot);
        p = dot16(p, hi, vld1q_s8(y[i].qs + 16), sdot);
        sum += quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d) * (float)vaddvq_s32(p);
    }
    return sum;
}

ALWAYS_INLINE float dot_q5_1_body(int64_t n, const void *restrict w, const void *restrict a,
                                  bool sdot) {
    const struct block_q5_1 *x = w;
    const struct block_q8_1 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        int8x16_t lo, hi;
        uint8x16_t hlo, hhi;
        nibbles(x[i].qs, &lo, &hi);
        fifth_bits(x[i].qh, &hlo, &hhi);
        lo = vorrq_s8(lo, vreinterpretq_s8_u8(hlo));
        hi = vorrq_s8(hi, vreinterpretq_s8_u8(hhi));
        int32x4_t p = dot16(vdupq_n_s32(0), lo, vld1q_s8(y[i].qs), sdot);
        p = dot16(p, hi, vld1q_s8(y[i].qs + 16), sdot);
        sum += quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d) * (float)vaddvq_s32(p) +
               quant_f16_to_f32(x[i].m) * quant_f16_to_f32(y[i].s);
    }
    return sum;
}

ALWAYS_INLINE float dot_q8_0_body(int64_t n, const void *restrict w, const void *restrict a,
                                  bool sdot) {
    const struct block_q8_0 *x = w;
    const struct block_q8_0 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        int32x4_t p = dot16(vdupq_n_s32(0), vld1q_s8(x[i].qs), vld1q_s8(y[i].qs), sdot);
        p = dot16(p, vld1q_s8(x[i].qs + 16), vld1q_s8(y[i].qs + 16), sdot);
        sum += quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d) * (float)vaddvq_s32(p);
    }
    return sum;
}

#define DOT_VARIANTS(name)                                                                         \
    static float name##_sdot(int64_t n, const void *restrict w, const void *restrict a) {          \
        return name##_body(n, w, a, true);                                                         \
    }                                                                                              \
    static float name##_plain(int64_t n, const void *restrict w, const void *restrict a) {         \
        return name##_body(n, w, a, false);                                                        \
    }
DOT_VARIANTS(dot_q4_0)
DOT_VARIANTS(dot_q4_1)
DOT_VARIANTS(dot_q5_0)
DOT_VARIANTS(dot_q5_1)
DOT_VARIANTS(dot_q8_0)

/* ============================== activation quantizers ============================== */

/* One 32-block as the reference's quantize_block_8 computes it; returns the unrounded d and
 * sets *sum to sum(q). */
static float quantize_block_8(const float *x, uint16_t *d_out, int8_t *q, int *sum) {
    float32x4_t v[8];
    float32x4_t mx = vdupq_n_f32(0.0f);
    for (int j = 0; j < 8; j++) {
        v[j] = vld1q_f32(x + 4 * j);
        mx = vmaxnmq_f32(mx, vabsq_f32(v[j])); /* maxnm skips NaN, like fmaxf */
    }
    const float amax = vmaxnmvq_f32(mx);
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    *d_out = quant_f32_to_f16(d);
    int16x8_t q16[4];
    for (int j = 0; j < 4; j++) {
        const int32x4_t a = vcvtnq_s32_f32(vmulq_n_f32(v[2 * j], id));
        const int32x4_t b = vcvtnq_s32_f32(vmulq_n_f32(v[2 * j + 1], id));
        q16[j] = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
    }
    const int8x16_t q0 = vcombine_s8(vqmovn_s16(q16[0]), vqmovn_s16(q16[1]));
    const int8x16_t q1 = vcombine_s8(vqmovn_s16(q16[2]), vqmovn_s16(q16[3]));
    vst1q_s8(q, q0);
    vst1q_s8(q + 16, q1);
    *sum = vaddlvq_s8(q0) + vaddlvq_s8(q1);
    return d;
}

QUANT_Q8_0_Q8_1_FROM_BLOCK8

/* ============================== dequantization ============================== */

/* 16 int8 values as four f32 vectors. */
ALWAYS_INLINE void widen16(int8x16_t v, float32x4_t out[4]) {
    const int16x8_t l = vmovl_s8(vget_low_s8(v)), h = vmovl_high_s8(v);
    out[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(l)));
    out[1] = vcvtq_f32_s32(vmovl_high_s16(l));
    out[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(h)));
    out[3] = vcvtq_f32_s32(vmovl_high_s16(h));
}

/* dst[0..16) = v * d + m, multiply and add rounded separately as in the reference. */
ALWAYS_INLINE void store16(float *dst, int8x16_t v, float d, float m, bool add_m) {
    float32x4_t f[4];
    widen16(v, f);
    for (int k = 0; k < 4; k++) {
        float32x4_t r = vmulq_n_f32(f[k], d);
        if (add_m)
            r = vaddq_f32(r, vdupq_n_f32(m));
        vst1q_f32(dst + 4 * k, r);
    }
}

static void dequant_q4_0(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        int8x16_t lo, hi;
        nibbles(b[i].qs, &lo, &hi);
        const float d = quant_f16_to_f32(b[i].d);
        store16(dst, vsubq_s8(lo, vdupq_n_s8(8)), d, 0.0f, false);
        store16(dst + 16, vsubq_s8(hi, vdupq_n_s8(8)), d, 0.0f, false);
    }
}

static void dequant_q4_1(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        int8x16_t lo, hi;
        nibbles(b[i].qs, &lo, &hi);
        const float d = quant_f16_to_f32(b[i].d), m = quant_f16_to_f32(b[i].m);
        store16(dst, lo, d, m, true);
        store16(dst + 16, hi, d, m, true);
    }
}

static void dequant_q8_0(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        const float d = quant_f16_to_f32(b[i].d);
        store16(dst, vld1q_s8(b[i].qs), d, 0.0f, false);
        store16(dst + 16, vld1q_s8(b[i].qs + 16), d, 0.0f, false);
    }
}

/* ============================== the table ============================== */

void quant_fill_neon(struct quant_kernels *t) {
    t[TENSOR_TYPE_Q4_0].dequant_row = dequant_q4_0;
    t[TENSOR_TYPE_Q4_0].quantize_act = quantize_q8_0;
    t[TENSOR_TYPE_Q4_0].vec_dot = dot_q4_0_plain;
    t[TENSOR_TYPE_Q4_1].dequant_row = dequant_q4_1;
    t[TENSOR_TYPE_Q4_1].quantize_act = quantize_q8_1;
    t[TENSOR_TYPE_Q4_1].vec_dot = dot_q4_1_plain;
    t[TENSOR_TYPE_Q5_0].quantize_act = quantize_q8_0;
    t[TENSOR_TYPE_Q5_0].vec_dot = dot_q5_0_plain;
    t[TENSOR_TYPE_Q5_1].quantize_act = quantize_q8_1;
    t[TENSOR_TYPE_Q5_1].vec_dot = dot_q5_1_plain;
    t[TENSOR_TYPE_Q8_0].dequant_row = dequant_q8_0;
    t[TENSOR_TYPE_Q8_0].quantize_act = quantize_q8_0;
    t[TENSOR_TYPE_Q8_0].vec_dot = dot_q8_0_plain;
}

/* Over quant_fill_neon's entries where the CPU has SDOT: the same activations, dotted with it. */
void quant_fill_neon_dotprod(struct quant_kernels *t) {
    t[TENSOR_TYPE_Q4_0].vec_dot = dot_q4_0_sdot;
    t[TENSOR_TYPE_Q4_1].vec_dot = dot_q4_1_sdot;
    t[TENSOR_TYPE_Q5_0].vec_dot = dot_q5_0_sdot;
    t[TENSOR_TYPE_Q5_1].vec_dot = dot_q5_1_sdot;
    t[TENSOR_TYPE_Q8_0].vec_dot = dot_q8_0_sdot;
}
