/* Blocked Walsh-Hadamard transform, NEON (ops.h op_hadamard_fn): the AVX-512 kernel's scheme on
 * 4-value vectors (hadamard-avx512.c says why and how): span 1 swaps neighbours (vrev64), span 2
 * the two halves (vext), each with a fused multiply-add by +-1; 4 and up across vectors; the
 * reference's bits. */
#include <arm_neon.h>
#include <math.h>

#include "ops.h"

void hadamard__neon(float *x, int n, int block) {
    if (block < 4 || n % 4) {
        hadamard__scalar(x, n, block);
        return;
    }
    static const float sign1[4] = {1.0f, -1.0f, 1.0f, -1.0f}, sign2[4] = {1.0f, 1.0f, -1.0f, -1.0f};
    const float32x4_t s1 = vld1q_f32(sign1), s2 = vld1q_f32(sign2);
    for (int i = 0; i < n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        v = vfmaq_f32(vrev64q_f32(v), v, s1); /* y + x s, one rounding: y +- x */
        v = vfmaq_f32(vextq_f32(v, v, 2), v, s2);
        vst1q_f32(x + i, v);
    }
    for (int h = 4; h < block; h *= 2)
        for (int b = 0; b < n; b += 2 * h)
            for (int j = b; j < b + h; j += 4) {
                const float32x4_t a = vld1q_f32(x + j), c = vld1q_f32(x + j + h);
                vst1q_f32(x + j, vaddq_f32(a, c));
                vst1q_f32(x + j + h, vsubq_f32(a, c));
            }
    const float32x4_t s = vdupq_n_f32(1.0f / sqrtf((float)block));
    for (int i = 0; i < n; i += 4)
        vst1q_f32(x + i, vmulq_f32(vld1q_f32(x + i), s));
}
