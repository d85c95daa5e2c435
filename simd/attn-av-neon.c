/* Attention output, NEON: acc[qi] += sum_j p[qi][j] * v_j. Each value row is widened to f32
 * eight elements at a time, once, and added into every query row's accumulator (a GQA group
 * reads its shared V row once); the d % 8 tail is scalar f32. `kind` is a compile-time
 * constant at every call, as in attn-qk-neon.c. */
#include <string.h>

#include "ops.h"
#include <arm_neon.h>

enum kv_kind { KV_I8, KV_F16, KV_F32 };

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE void load8(const void *row, int i, enum kv_kind kind, float32x4_t *lo,
                         float32x4_t *hi) {
    if (kind == KV_I8) {
        const int16x8_t w = vmovl_s8(vld1_s8((const int8_t *)row + i));
        *lo = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w)));
        *hi = vcvtq_f32_s32(vmovl_high_s16(w));
    } else if (kind == KV_F16) {
        const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16((const uint16_t *)row + i));
        *lo = vcvt_f32_f16(vget_low_f16(h));
        *hi = vcvt_high_f32_f16(h);
    } else {
        *lo = vld1q_f32((const float *)row + i);
        *hi = vld1q_f32((const float *)row + i + 4);
    }
}

ALWAYS_INLINE float load1(const void *row, int i, enum kv_kind kind) {
    if (kind == KV_I8)
        return (float)((const int8_t *)row)[i];
    if (kind == KV_F16) {
        _Float16 h;
        memcpy(&h, (const uint16_t *)row + i, sizeof h);
        return (float)h;
    }
    return ((const float *)row)[i];
}

ALWAYS_INLINE void av(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                      const void *v, const float *v_scale, int n_k, int d, enum kv_kind kind) {
    const size_t row_bytes = (size_t)d * (kind == KV_I8 ? 1 : kind == KV_F16 ? 2 : 4);
    for (int j = 0; j < n_k; j++) {
        const void *row = (const char *)v + (size_t)j * row_bytes;
        int i = 0;
        for (; i + 8 <= d; i += 8) {
            float32x4_t v0, v1;
            load8(row, i, kind, &v0, &v1);
            for (int qi = 0; qi < n_q; qi++) {
                /* the weight is p * scale, rounded once, as in the reference */
                const float w =
                    kind == KV_I8 ? p[qi * p_stride + j] * v_scale[j] : p[qi * p_stride + j];
                float *a = acc + qi * acc_stride + i;
                vst1q_f32(a, vfmaq_n_f32(vld1q_f32(a), v0, w));
                vst1q_f32(a + 4, vfmaq_n_f32(vld1q_f32(a + 4), v1, w));
            }
        }
        for (; i < d; i++) {
            const float x = load1(row, i, kind);
            for (int qi = 0; qi < n_q; qi++) {
                const float w =
                    kind == KV_I8 ? p[qi * p_stride + j] * v_scale[j] : p[qi * p_stride + j];
                acc[qi * acc_stride + i] += w * x;
            }
        }
    }
}

void attn_av_i8__neon(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                      const int8_t *v, const float *v_scale, int n_k, int d) {
    av(acc, acc_stride, p, p_stride, n_q, v, v_scale, n_k, d, KV_I8);
}

void attn_av_f16__neon(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                       const uint16_t *v, int n_k, int d) {
    av(acc, acc_stride, p, p_stride, n_q, v, NULL, n_k, d, KV_F16);
}

void attn_av_f32__neon(float *acc, size_t acc_stride, const float *p, size_t p_stride, int n_q,
                       const float *v, int n_k, int d) {
    av(acc, acc_stride, p, p_stride, n_q, v, NULL, n_k, d, KV_F32);
}
