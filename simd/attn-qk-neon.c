/* Attention scores, NEON. Each key row is loaded and widened to f32 once and then dotted with
 * up to four query rows (a GQA group reads its shared K row once); f32 FMA accumulators, tail
 * of d % 8 elements in scalar f32. One body serves the three storage types: `kind` is a
 * compile-time constant at every call, so each type gets its own straight-line loop. */
#include <string.h>

#include "ops.h"
#include <arm_neon.h>

#include "neon-kv-row.h"

/* s[b * s_stride] = post * dot(q + b * q_stride, row) for b < nb (nb <= 4, constant). */
ALWAYS_INLINE void dot_rows(float *s, size_t s_stride, const float *q, size_t q_stride,
                            const void *row, int d, enum kv_kind kind, float post, int nb) {
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f),
                          vdupq_n_f32(0.0f)};
    int i = 0;
    for (; i + 8 <= d; i += 8) {
        float32x4_t k0, k1;
        load8(row, i, kind, &k0, &k1);
        for (int b = 0; b < nb; b++) {
            acc[b] = vfmaq_f32(acc[b], vld1q_f32(q + b * q_stride + i), k0);
            acc[b] = vfmaq_f32(acc[b], vld1q_f32(q + b * q_stride + i + 4), k1);
        }
    }
    for (int b = 0; b < nb; b++) {
        float t = vaddvq_f32(acc[b]);
        for (int r = i; r < d; r++)
            t += q[b * q_stride + r] * load1(row, r, kind);
        s[b * s_stride] = t * post;
    }
}

ALWAYS_INLINE void qk(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                      const void *k, const float *k_scale, int n_k, int d, float mul,
                      enum kv_kind kind) {
    const size_t row_bytes = (size_t)d * (kind == KV_I8 ? 1 : kind == KV_F16 ? 2 : 4);
    for (int j = 0; j < n_k; j++) {
        const void *row = (const char *)k + (size_t)j * row_bytes;
        /* the reference rounds (dot * k_scale) * mul; folding the scales first moves the
         * result by at most an ulp, well inside the test's bound */
        const float post = kind == KV_I8 ? k_scale[j] * mul : mul;
        int qi = 0;
        for (; qi + 4 <= n_q; qi += 4)
            dot_rows(s + qi * s_stride + j, s_stride, q + qi * q_stride, q_stride, row, d, kind,
                     post, 4);
        const int rest = n_q - qi;
        float *sj = s + qi * s_stride + j;
        const float *qr = q + qi * q_stride;
        if (rest == 3)
            dot_rows(sj, s_stride, qr, q_stride, row, d, kind, post, 3);
        else if (rest == 2)
            dot_rows(sj, s_stride, qr, q_stride, row, d, kind, post, 2);
        else if (rest == 1)
            dot_rows(sj, s_stride, qr, q_stride, row, d, kind, post, 1);
    }
}

void attn_qk_i8__neon(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                      const int8_t *k, const float *k_scale, int n_k, int d, float mul) {
    qk(s, s_stride, q, q_stride, n_q, k, k_scale, n_k, d, mul, KV_I8);
}

void attn_qk_f16__neon(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                       const uint16_t *k, int n_k, int d, float mul) {
    qk(s, s_stride, q, q_stride, n_q, k, NULL, n_k, d, mul, KV_F16);
}

void attn_qk_f32__neon(float *s, size_t s_stride, const float *q, size_t q_stride, int n_q,
                       const float *k, int n_k, int d, float mul) {
    qk(s, s_stride, q, q_stride, n_q, k, NULL, n_k, d, mul, KV_F32);
}
