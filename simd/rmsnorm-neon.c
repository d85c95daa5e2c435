/* RMSNorm, NEON: sum of squares in four f32 accumulators (16 floats per step), padded tail. */
#include <math.h>

#include "neon-tail.h"
#include "ops.h"

void rmsnorm__neon(float *y, const float *x, const float *w, int n, float eps) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const float32x4_t x0 = vld1q_f32(x + i), x1 = vld1q_f32(x + i + 4);
        const float32x4_t x2 = vld1q_f32(x + i + 8), x3 = vld1q_f32(x + i + 12);
        a0 = vfmaq_f32(a0, x0, x0);
        a1 = vfmaq_f32(a1, x1, x1);
        a2 = vfmaq_f32(a2, x2, x2);
        a3 = vfmaq_f32(a3, x3, x3);
    }
    for (; i + 4 <= n; i += 4) {
        const float32x4_t x0 = vld1q_f32(x + i);
        a0 = vfmaq_f32(a0, x0, x0);
    }
    if (i < n) {
        const float32x4_t x0 = neon_load_tail(x + i, n - i, 0.0f);
        a0 = vfmaq_f32(a0, x0, x0);
    }
    const float ss = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    const float32x4_t r = vdupq_n_f32(1.0f / sqrtf(ss / n + eps));
    /* x * r * w in that order, as the reference rounds it */
    for (i = 0; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vmulq_f32(vmulq_f32(vld1q_f32(x + i), r), vld1q_f32(w + i)));
    if (i < n) {
        const float32x4_t xt = neon_load_tail(x + i, n - i, 0.0f);
        const float32x4_t wt = neon_load_tail(w + i, n - i, 0.0f);
        neon_store_tail(y + i, vmulq_f32(vmulq_f32(xt, r), wt), n - i);
    }
}
