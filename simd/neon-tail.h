/* Tails for the NEON kernels: AArch64 has no masked loads, so the last n % 4 floats of a row
 * go through a 4-float stack buffer padded with a neutral value (0 for sums, -inf for exp).
 * Included only by *-neon.c files. */
#ifndef ADAKV_SIMD_NEON_TAIL_H
#define ADAKV_SIMD_NEON_TAIL_H

#include <arm_neon.h>
#include <string.h>

/* The r (< 4) floats at p, then `pad` in the remaining lanes. */
static inline float32x4_t neon_load_tail(const float *p, int r, float pad) {
    float buf[4] = {pad, pad, pad, pad};
    memcpy(buf, p, (size_t)r * sizeof(float));
    return vld1q_f32(buf);
}

/* Stores the first r (< 4) lanes of v at p. */
static inline void neon_store_tail(float *p, float32x4_t v, int r) {
    float buf[4];
    vst1q_f32(buf, v);
    memcpy(p, buf, (size_t)r * sizeof(float));
}

#endif
