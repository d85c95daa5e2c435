/* Softmax, NEON, with sleef's 1-ulp vector expf for AdvSIMD (the explicitly named entry point,
 * never the dispatcher). Tails are padded with -inf, whose exp is 0, so they add nothing. */
#include <math.h>
#include <sleef.h>

#include "neon-tail.h"
#include "ops.h"

float max__neon(const float *x, int n) {
    float32x4_t m0 = vdupq_n_f32(-INFINITY), m1 = m0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        m0 = vmaxq_f32(m0, vld1q_f32(x + i));
        m1 = vmaxq_f32(m1, vld1q_f32(x + i + 4));
    }
    for (; i + 4 <= n; i += 4)
        m0 = vmaxq_f32(m0, vld1q_f32(x + i));
    if (i < n)
        m0 = vmaxq_f32(m0, neon_load_tail(x + i, n - i, -INFINITY));
    return vmaxvq_f32(vmaxq_f32(m0, m1));
}

float exp_sum__neon(float *x, int n, float shift) {
    const float32x4_t sh = vdupq_n_f32(shift);
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const float32x4_t e0 = Sleef_expf4_u10advsimd(vsubq_f32(vld1q_f32(x + i), sh));
        const float32x4_t e1 = Sleef_expf4_u10advsimd(vsubq_f32(vld1q_f32(x + i + 4), sh));
        vst1q_f32(x + i, e0);
        vst1q_f32(x + i + 4, e1);
        acc0 = vaddq_f32(acc0, e0);
        acc1 = vaddq_f32(acc1, e1);
    }
    for (; i + 4 <= n; i += 4) {
        const float32x4_t e = Sleef_expf4_u10advsimd(vsubq_f32(vld1q_f32(x + i), sh));
        vst1q_f32(x + i, e);
        acc0 = vaddq_f32(acc0, e);
    }
    if (i < n) {
        const float32x4_t e =
            Sleef_expf4_u10advsimd(vsubq_f32(neon_load_tail(x + i, n - i, -INFINITY), sh));
        neon_store_tail(x + i, e, n - i);
        acc0 = vaddq_f32(acc0, e);
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

void softmax__neon(float *x, int n) {
    const float sum = exp_sum__neon(x, n, max__neon(x, n));
    const float32x4_t inv = vdupq_n_f32(1.0f / sum);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(x + i, vmulq_f32(vld1q_f32(x + i), inv));
    if (i < n)
        neon_store_tail(x + i, vmulq_f32(neon_load_tail(x + i, n - i, 0.0f), inv), n - i);
}
