/* Plain C11 reference of every weight-type kernel: the specification the ISA files obey.
 *
 * Dequantization follows ggml's dequantize_row_* operation by operation (same products, same
 * order, never fused), so it is exact in f32 and matches the reference bit for bit. Activation
 * quantizers follow llama.cpp's x86 code path (d = amax/127, id = 127/amax, round to nearest
 * even), since that is the implementation our logits are compared with. Dots accumulate each
 * block in int32 (exact) and the blocks in float, like ggml's generic vec_dot. */
#include <math.h>

#include "quant.h"

/* Round to nearest, ties to even: what vcvtps2dq does under the default MXCSR, and what ggml's
 * nearest_int() magic-number trick computes. */
static inline int round_even(float x) {
    return (int)nearbyintf(x);
}

/* ============================== dequantization ============================== */

static void dequant_f32(const void *restrict src, float *restrict dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

/* F16 and BF16 rows alike: 2-byte values, any alignment, widened by to_f32. */
static inline void dequant_half(const uint8_t *s, float *restrict dst, int64_t n,
                                float (*to_f32)(uint16_t)) {
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = to_f32(h);
    }
}

static void dequant_f16(const void *restrict src, float *restrict dst, int64_t n) {
    dequant_half(src, dst, n, quant_f16_to_f32);
}

static void dequant_bf16(const void *restrict src, float *restrict dst, int64_t n) {
    dequant_half(src, dst, n, quant_bf16_to_f32);
}

/* Element j of a 32-block's quants (j < 16: low nibble of qs[j]; j >= 16: high nibble of
 * qs[j - 16]) with, for the Q5 types, bit j of their LE u32 qh as bit 4 (qh = 0 for Q4). */
static inline int q32_value(const uint8_t *qs, uint32_t qh, int j) {
    const int v = j < QK / 2 ? qs[j] & 0xf : qs[j - QK / 2] >> 4;
    return v | (int)((qh >> j) & 1) << 4;
}

static uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* x = (q - offset) * d for the symmetric types (Q4_0, Q5_0), q * d + m for those with a
 * minimum (Q4_1, Q5_1). */
static void dequant_block_32(const uint8_t *qs, uint32_t qh, float d, int offset, bool has_min,
                             float m, float *dst) {
    for (int j = 0; j < QK / 2; j++) {
        const int lo = q32_value(qs, qh, j), hi = q32_value(qs, qh, j + QK / 2);
        if (has_min) {
            dst[j] = (float)lo * d + m;
            dst[j + QK / 2] = (float)hi * d + m;
        } else {
            dst[j] = (float)(lo - offset) * d;
            dst[j + QK / 2] = (float)(hi - offset) * d;
        }
    }
}

static void dequant_q4_0(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK)
        dequant_block_32(b[i].qs, 0, quant_f16_to_f32(b[i].d), 8, false, 0.0f, dst);
}

static void dequant_q4_1(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK)
        dequant_block_32(b[i].qs, 0, quant_f16_to_f32(b[i].d), 0, true, quant_f16_to_f32(b[i].m),
                         dst);
}

static void dequant_q5_0(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q5_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK)
        dequant_block_32(b[i].qs, load_u32(b[i].qh), quant_f16_to_f32(b[i].d), 16, false, 0.0f,
                         dst);
}

static void dequant_q5_1(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q5_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK)
        dequant_block_32(b[i].qs, load_u32(b[i].qh), quant_f16_to_f32(b[i].d), 0, true,
                         quant_f16_to_f32(b[i].m), dst);
}

/* Q8_0 and Q8_1 blocks alike: x = q * d. */
static void dequant_block_i8(const int8_t *qs, float d, float *dst) {
    for (int j = 0; j < QK; j++)
        dst[j] = (float)qs[j] * d;
}

static void dequant_q8_0(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK)
        dequant_block_i8(b[i].qs, quant_f16_to_f32(b[i].d), dst);
}

static void dequant_q8_1(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q8_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK)
        dequant_block_i8(b[i].qs, quant_f16_to_f32(b[i].d), dst);
}

/* Value l of 64-element chunk c of a Q4_K / Q5_K super-block: sub-block 2c is the low nibbles of
 * the chunk's 32 bytes, 2c+1 their high nibbles (hi = 1); Q5_K (qh not NULL) adds a fifth bit,
 * bit 2c + hi of qh[l]. */
static inline int k45_value(const uint8_t *q, const uint8_t *qh, int c, int l, int hi) {
    const int v = hi ? q[l] >> 4 : q[l] & 0xf;
    return qh ? v | ((qh[l] >> (2 * c + hi)) & 1) << 4 : v;
}

/* One Q4_K / Q5_K super-block: x = (d*sc)*q - (dmin*m). */
static void dequant_block_k45(uint16_t d16, uint16_t dmin16, const uint8_t *scales,
                              const uint8_t *qh, const uint8_t *q, float *dst) {
    const float d = quant_f16_to_f32(d16), dmin = quant_f16_to_f32(dmin16);
    for (int c = 0; c < 4; c++, q += 32) {
        uint8_t sc0, m0, sc1, m1;
        quant_k_scale_min(2 * c, scales, &sc0, &m0);
        quant_k_scale_min(2 * c + 1, scales, &sc1, &m1);
        float d0 = d * sc0, mm0 = dmin * m0, d1 = d * sc1, mm1 = dmin * m1;
        for (int l = 0; l < 32; l++)
            *dst++ = d0 * (float)k45_value(q, qh, c, l, 0) - mm0;
        for (int l = 0; l < 32; l++)
            *dst++ = d1 * (float)k45_value(q, qh, c, l, 1) - mm1;
    }
}

static void dequant_q4_k(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q4_k *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, dst += QK_K)
        dequant_block_k45(b[i].d, b[i].dmin, b[i].scales, NULL, b[i].qs, dst);
}

static void dequant_q5_k(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q5_k *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, dst += QK_K)
        dequant_block_k45(b[i].d, b[i].dmin, b[i].scales, b[i].qh, b[i].qs, dst);
}

/* Q6_K value k (0..255) of a block: 4 low bits from ql, 2 high bits from qh, minus 32. */
static inline int q6_k_value(const struct block_q6_k *b, int k) {
    int h = k / 128, r = k % 128, part = r / 32, l = r % 32;
    uint8_t lo = b->ql[64 * h + 32 * (part & 1) + l];
    lo = part < 2 ? (lo & 0xf) : (lo >> 4);
    int hi = (b->qh[32 * h + l] >> (2 * part)) & 3;
    return (lo | hi << 4) - 32;
}

static void dequant_q6_k(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q6_k *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, dst += QK_K) {
        float d = quant_f16_to_f32(b[i].d);
        for (int k = 0; k < QK_K; k++)
            dst[k] = d * (float)b[i].scales[k / 16] * (float)q6_k_value(&b[i], k);
    }
}

static void dequant_q8_k(const void *restrict src, float *restrict dst, int64_t n) {
    const struct block_q8_k *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, dst += QK_K)
        for (int k = 0; k < QK_K; k++)
            dst[k] = b[i].d * (float)b[i].qs[k];
}

/* ============================== activation quantizers ============================== */

static void quantize_f32(const float *restrict src, void *restrict dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static inline void quantize_half(const float *restrict src, uint8_t *o, int64_t n,
                                 uint16_t (*from_f32)(float)) {
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = from_f32(src[i]);
        memcpy(o + 2 * i, &h, 2);
    }
}

static void quantize_f16(const float *restrict src, void *restrict dst, int64_t n) {
    quantize_half(src, dst, n, quant_f32_to_f16);
}

static void quantize_bf16(const float *restrict src, void *restrict dst, int64_t n) {
    quantize_half(src, dst, n, quant_f32_to_bf16);
}

/* One 32-block as symmetric int8: d = amax/127 (returned unrounded, stored as f16), q = round(x *
 * 127/amax). *sum gets sum(q) for Q8_1. */
static float quantize_block_8(const float *x, uint16_t *d_out, int8_t *q, int *sum) {
    float amax = 0.0f;
    for (int j = 0; j < QK; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127.0f;
    float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    *d_out = quant_f32_to_f16(d);
    int s = 0;
    for (int j = 0; j < QK; j++) {
        q[j] = (int8_t)round_even(x[j] * id);
        s += q[j];
    }
    *sum = s;
    return d;
}

QUANT_Q8_0_Q8_1_FROM_BLOCK8

/* Q8_K as ggml's quantize_row_q8_K_ref: the element of largest magnitude maps to -127 (the
 * scale carries its sign), values are clamped at 127, d = 1/iscale is kept in f32. */
static void quantize_q8_k(const float *restrict src, void *restrict dst, int64_t n) {
    struct block_q8_k *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *x = src + i * QK_K;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) {
            int v = round_even(iscale * x[j]);
            b[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++)
                s += b[i].qs[16 * g + j];
            b[i].bsums[g] = (int16_t)s;
        }
        b[i].d = 1.0f / iscale;
    }
}

/* ============================== dot products ============================== */

static float dot_f32(int64_t n, const void *restrict w, const void *restrict a) {
    const float *x = w, *y = a;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * (double)y[i];
    return (float)s;
}

/* F16 and BF16 rows alike, in double like the F32 dot. */
static inline float dot_half(int64_t n, const uint8_t *x, const uint8_t *y,
                             float (*to_f32)(uint16_t)) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t hx, hy;
        memcpy(&hx, x + 2 * i, 2);
        memcpy(&hy, y + 2 * i, 2);
        s += (double)to_f32(hx) * (double)to_f32(hy);
    }
    return (float)s;
}

static float dot_f16(int64_t n, const void *restrict w, const void *restrict a) {
    return dot_half(n, w, a, quant_f16_to_f32);
}

static float dot_bf16(int64_t n, const void *restrict w, const void *restrict a) {
    return dot_half(n, w, a, quant_bf16_to_f32);
}

/* The exact integer dot of a 32-block's quants, less their offset, with an int8 block. */
static int dot_block_32(const uint8_t *qs, uint32_t qh, int offset, const int8_t *y) {
    int si = 0;
    for (int j = 0; j < QK / 2; j++)
        si += (q32_value(qs, qh, j) - offset) * y[j] +
              (q32_value(qs, qh, j + QK / 2) - offset) * y[j + QK / 2];
    return si;
}

static float dot_q4_0_q8_0(int64_t n, const void *restrict w, const void *restrict a) {
    const struct block_q4_0 *x = w;
    const struct block_q8_0 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++)
        sum += quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d) *
               (float)dot_block_32(x[i].qs, 0, 8, y[i].qs);
    return sum;
}

/* The minimum m of each weight block multiplies the activation block sum, which Q8_1 stores. */
static float dot_q4_1_q8_1(int64_t n, const void *restrict w, const void *restrict a) {
    const struct block_q4_1 *x = w;
    const struct block_q8_1 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++)
        sum += quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d) *
                   (float)dot_block_32(x[i].qs, 0, 0, y[i].qs) +
               quant_f16_to_f32(x[i].m) * quant_f16_to_f32(y[i].s);
    return sum;
}

static float dot_q5_0_q8_0(int64_t n, const void *restrict w, const void *restrict a) {
    const struct block_q5_0 *x = w;
    const struct block_q8_0 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++)
        sum += quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d) *
               (float)dot_block_32(x[i].qs, load_u32(x[i].qh), 16, y[i].qs);
    return sum;
}

static float dot_q5_1_q8_1(int64_t n, const void *restrict w, const void *restrict a) {
    const struct block_q5_1 *x = w;
    const struct block_q8_1 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++)
        sum += quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d) *
                   (float)dot_block_32(x[i].qs, load_u32(x[i].qh), 0, y[i].qs) +
               quant_f16_to_f32(x[i].m) * quant_f16_to_f32(y[i].s);
    return sum;
}

static float dot_q8_0_q8_0(int64_t n, const void *restrict w, const void *restrict a) {
    const struct block_q8_0 *x = w;
    const struct block_q8_0 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        int si = 0;
        for (int j = 0; j < QK; j++)
            si += x[i].qs[j] * y[i].qs[j];
        sum += quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d) * (float)si;
    }
    return sum;
}

/* K-quants: per super-block, sum_j sc_j * (q_j . y_j) and sum_j m_j * (sum of y_j) are exact
 * integers (the latter from Q8_K's bsums); only their scaling by d*y.d and dmin*y.d is float. */
static float dot_block_k45(uint16_t d, uint16_t dmin, const uint8_t *scales, const uint8_t *qh,
                           const uint8_t *qs, const struct block_q8_k *y) {
    int32_t si = 0, sm = 0;
    for (int c = 0; c < 4; c++) {
        const uint8_t *q = qs + 32 * c;
        const int8_t *ya = y->qs + 64 * c;
        uint8_t sc0, m0, sc1, m1;
        quant_k_scale_min(2 * c, scales, &sc0, &m0);
        quant_k_scale_min(2 * c + 1, scales, &sc1, &m1);
        int s0 = 0, s1 = 0;
        for (int l = 0; l < 32; l++) {
            s0 += k45_value(q, qh, c, l, 0) * ya[l];
            s1 += k45_value(q, qh, c, l, 1) * ya[l + 32];
        }
        si += sc0 * s0 + sc1 * s1;
        sm += m0 * (y->bsums[4 * c] + y->bsums[4 * c + 1]) +
              m1 * (y->bsums[4 * c + 2] + y->bsums[4 * c + 3]);
    }
    return quant_f16_to_f32(d) * y->d * (float)si - quant_f16_to_f32(dmin) * y->d * (float)sm;
}

static float dot_q4_k_q8_k(int64_t n, const void *restrict w, const void *restrict a) {
    const struct block_q4_k *x = w;
    const struct block_q8_k *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++)
        sum += dot_block_k45(x[i].d, x[i].dmin, x[i].scales, NULL, x[i].qs, &y[i]);
    return sum;
}

static float dot_q5_k_q8_k(int64_t n, const void *restrict w, const void *restrict a) {
    const struct block_q5_k *x = w;
    const struct block_q8_k *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++)
        sum += dot_block_k45(x[i].d, x[i].dmin, x[i].scales, x[i].qh, x[i].qs, &y[i]);
    return sum;
}

static float dot_q6_k_q8_k(int64_t n, const void *restrict w, const void *restrict a) {
    const struct block_q6_k *x = w;
    const struct block_q8_k *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32_t si = 0;
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += q6_k_value(&x[i], 16 * g + l) * y[i].qs[16 * g + l];
            si += x[i].scales[g] * s;
        }
        sum += quant_f16_to_f32(x[i].d) * y[i].d * (float)si;
    }
    return sum;
}

/* ============================== the table ============================== */

void quant_fill_scalar(struct quant_kernels *t) {
    t[TENSOR_TYPE_F32] = QUANT_ENTRY(dequant_f32, quantize_f32, dot_f32, TENSOR_TYPE_F32);
    t[TENSOR_TYPE_F16] = QUANT_ENTRY(dequant_f16, quantize_f16, dot_f16, TENSOR_TYPE_F16);
    t[TENSOR_TYPE_BF16] = QUANT_ENTRY(dequant_bf16, quantize_bf16, dot_bf16, TENSOR_TYPE_BF16);
    t[TENSOR_TYPE_Q4_0] = QUANT_ENTRY(dequant_q4_0, quantize_q8_0, dot_q4_0_q8_0, TENSOR_TYPE_Q8_0);
    t[TENSOR_TYPE_Q4_1] = QUANT_ENTRY(dequant_q4_1, quantize_q8_1, dot_q4_1_q8_1, TENSOR_TYPE_Q8_1);
    t[TENSOR_TYPE_Q5_0] = QUANT_ENTRY(dequant_q5_0, quantize_q8_0, dot_q5_0_q8_0, TENSOR_TYPE_Q8_0);
    t[TENSOR_TYPE_Q5_1] = QUANT_ENTRY(dequant_q5_1, quantize_q8_1, dot_q5_1_q8_1, TENSOR_TYPE_Q8_1);
    t[TENSOR_TYPE_Q8_0] = QUANT_ENTRY(dequant_q8_0, quantize_q8_0, dot_q8_0_q8_0, TENSOR_TYPE_Q8_0);
    t[TENSOR_TYPE_Q8_1] = QUANT_ENTRY(dequant_q8_1, NULL, NULL, TENSOR_TYPE_Q8_1);
    t[TENSOR_TYPE_Q4_K] = QUANT_ENTRY(dequant_q4_k, quantize_q8_k, dot_q4_k_q8_k, TENSOR_TYPE_Q8_K);
    t[TENSOR_TYPE_Q5_K] = QUANT_ENTRY(dequant_q5_k, quantize_q8_k, dot_q5_k_q8_k, TENSOR_TYPE_Q8_K);
    t[TENSOR_TYPE_Q6_K] = QUANT_ENTRY(dequant_q6_k, quantize_q8_k, dot_q6_k_q8_k, TENSOR_TYPE_Q8_K);
    t[TENSOR_TYPE_Q8_K] = QUANT_ENTRY(dequant_q8_k, NULL, NULL, TENSOR_TYPE_Q8_K);
}
