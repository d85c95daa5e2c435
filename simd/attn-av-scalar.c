/* Attention output reference: probability-weighted sums of stored value rows, read straight
 * from the KV storage (int8 with a per-row scale, f16, or f32). */
#include <string.h>

#include "ops.h"
#include "quant.h"

/* quant.h's exact conversion, not _Float16: clang 14 has no _Float16 on x86 without
 * AVX512-FP16, and the parsers' fuzz targets are built with clang. */
static inline float f16_to_f32(uint16_t h) {
    return quant_f16_to_f32(h);
}

void attn_av_i8__scalar(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                        const int8_t *v, const float *v_scale, int n_k, int d) {
    for (int qi = 0; qi < n_q; qi++) {
        float *a = acc + qi * acc_stride;
        const float *pr = p + qi * p_stride;
        for (int j = 0; j < n_k; j++) {
            const float w = pr[j] * v_scale[j];
            const int8_t *vr = v + (size_t)j * d;
            for (int i = 0; i < d; i++)
                a[i] += w * vr[i];
        }
    }
}

void attn_av_f16__scalar(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                         const uint16_t *v, int n_k, int d) {
    for (int qi = 0; qi < n_q; qi++) {
        float *a = acc + qi * acc_stride;
        const float *pr = p + qi * p_stride;
        for (int j = 0; j < n_k; j++) {
            const uint16_t *vr = v + (size_t)j * d;
            for (int i = 0; i < d; i++)
                a[i] += pr[j] * f16_to_f32(vr[i]);
        }
    }
}

void attn_av_f32__scalar(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                         const float *v, int n_k, int d) {
    for (int qi = 0; qi < n_q; qi++) {
        float *a = acc + qi * acc_stride;
        const float *pr = p + qi * p_stride;
        for (int j = 0; j < n_k; j++) {
            const float *vr = v + (size_t)j * d;
            for (int i = 0; i < d; i++)
                a[i] += pr[j] * vr[i];
        }
    }
}
