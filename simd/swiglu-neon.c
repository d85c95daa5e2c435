/* SwiGLU, NEON: silu(g) * u = g / (1 + exp(-g)) * u with sleef's AdvSIMD expf. For very
 * negative g, exp(-g) overflows to inf and the quotient is -0, the correct limit. */
#include <sleef.h>

#include "neon-tail.h"
#include "ops.h"

static inline float32x4_t swiglu4(float32x4_t g, float32x4_t u) {
    const float32x4_t e = Sleef_expf4_u10advsimd(vnegq_f32(g));
    return vmulq_f32(vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), e)), u);
}

void swiglu__neon(float *out, const float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, swiglu4(vld1q_f32(gate + i), vld1q_f32(up + i)));
    if (i < n) {
        const float32x4_t g = neon_load_tail(gate + i, n - i, 0.0f);
        const float32x4_t u = neon_load_tail(up + i, n - i, 0.0f);
        neon_store_tail(out + i, swiglu4(g, u), n - i);
    }
}
