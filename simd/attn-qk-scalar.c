/* Attention score reference: dot products of query rows with stored key rows, read straight
 * from the KV storage (int8 with a per-row scale, f16, or f32). Sums in double. */
#include <string.h>

#include "ops.h"
#include "quant.h"

/* quant.h's exact conversion, not _Float16: clang 14 has no _Float16 on x86 without
 * AVX512-FP16, and the parsers' fuzz targets are built with clang. */
static inline float f16_to_f32(uint16_t h) {
    return quant_f16_to_f32(h);
}

void attn_qk_i8__scalar(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                        const int8_t *k, const float *k_scale, int n_k, int d, float mul) {
    for (int qi = 0; qi < n_q; qi++) {
        const float *qr = q + qi * q_stride;
        for (int j = 0; j < n_k; j++) {
            const int8_t *kr = k + (size_t)j * d;
            double acc = 0.0;
            for (int i = 0; i < d; i++)
                acc += (double)qr[i] * kr[i];
            s[qi * s_stride + j] = (float)acc * k_scale[j] * mul;
        }
    }
}

void attn_qk_f16__scalar(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                         const uint16_t *k, int n_k, int d, float mul) {
    for (int qi = 0; qi < n_q; qi++) {
        const float *qr = q + qi * q_stride;
        for (int j = 0; j < n_k; j++) {
            const uint16_t *kr = k + (size_t)j * d;
            double acc = 0.0;
            for (int i = 0; i < d; i++)
                acc += (double)qr[i] * f16_to_f32(kr[i]);
            s[qi * s_stride + j] = (float)acc * mul;
        }
    }
}

void attn_qk_f32__scalar(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                         const float *k, int n_k, int d, float mul) {
    for (int qi = 0; qi < n_q; qi++) {
        const float *qr = q + qi * q_stride;
        for (int j = 0; j < n_k; j++) {
            const float *kr = k + (size_t)j * d;
            double acc = 0.0;
            for (int i = 0; i < d; i++)
                acc += (double)qr[i] * kr[i];
            s[qi * s_stride + j] = (float)acc * mul;
        }
    }
}
