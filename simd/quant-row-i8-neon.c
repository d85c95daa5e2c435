/* Symmetric int8 row quantization, NEON. Same arithmetic as the reference: multiply by the
 * inverse scale, round to nearest-even (vcvtnq), clamp to +-127, so the bytes are identical.
 * The maximum uses vmaxnm, which like the reference's compare skips NaN. */
#include "neon-tail.h"
#include "ops.h"

static inline int32x4_t quant4(float32x4_t x, float32x4_t vid) {
    const int32x4_t v = vcvtnq_s32_f32(vmulq_f32(x, vid));
    return vminq_s32(vmaxq_s32(v, vdupq_n_s32(-127)), vdupq_n_s32(127));
}

/* Four int32 lanes, each in [-127, 127], as four bytes. */
static inline int8x8_t narrow8(int32x4_t a, int32x4_t b) {
    return vmovn_s16(vcombine_s16(vmovn_s32(a), vmovn_s32(b)));
}

void quant_row_i8__neon(int8_t *q, float *scale, const float *x, int n) {
    float32x4_t mx = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        mx = vmaxnmq_f32(mx, vabsq_f32(vld1q_f32(x + i)));
    if (i < n)
        mx = vmaxnmq_f32(mx, vabsq_f32(neon_load_tail(x + i, n - i, 0.0f)));
    const float amax = vmaxnmvq_f32(mx);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *scale = d;
    const float32x4_t vid = vdupq_n_f32(id);
    for (i = 0; i + 8 <= n; i += 8)
        vst1_s8(q + i, narrow8(quant4(vld1q_f32(x + i), vid), quant4(vld1q_f32(x + i + 4), vid)));
    if (i < n) {
        float buf[8] = {0};
        int8_t out[8];
        memcpy(buf, x + i, (size_t)(n - i) * sizeof(float));
        vst1_s8(out, narrow8(quant4(vld1q_f32(buf), vid), quant4(vld1q_f32(buf + 4), vid)));
        memcpy(q + i, out, (size_t)(n - i));
    }
}
