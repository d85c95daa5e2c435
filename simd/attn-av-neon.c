/* Attention output, NEON: acc[qi] += sum_j p[qi][j] * v_j. Each value row is widened to f32
 * eight elements at a time, once, and added into every query row's accumulator (a GQA group
 * reads its shared V row once); the d % 8 tail is scalar f32. `kind` is a compile-time
 * constant at every call, as in attn-qk-neon.c. */
#include <string.h>

#include "ops.h"
#include <arm_neon.h>

#include "neon-kv-row.h"

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
