/* Helpers shared by the NEON kernels over repacked tiles (rp-q32-neon.c, rp-q45k-neon.c,
 * rp-q6k-neon.c): one row per 32-bit lane, 4 rows per vector. Included only by those files. */
#ifndef ADAKV_SIMD_NEON_RP_H
#define ADAKV_SIMD_NEON_RP_H

#include <arm_neon.h>
#include <stdint.h>

#include "neon-tail.h"

/* An empty volatile asm, placed at the top of each unrolled step: GCC's scheduler never moves
 * instructions across one. Without it, the pre-allocation scheduler hoisted the loads of all the
 * unrolled steps to the top of the block and spilled most of them to the stack. */
static inline __attribute__((always_inline)) void step_barrier(void) {
    __asm__ volatile("");
}

/* acc + the dot of each lane's 4 weight bytes w with activation bytes 4 l .. 4 l + 3 of a. SDOT
 * by element wants l as an immediate: every caller's l is a constant once its loop is unrolled,
 * and the switch then folds to one instruction (it stays correct, only slower, if not). */
static inline __attribute__((always_inline)) int32x4_t sdot_lane(int32x4_t acc, uint8x16_t w,
                                                                 int8x16_t a, int l) {
    const int8x16_t ws = vreinterpretq_s8_u8(w);
    switch (l & 3) {
    case 0:
        return vdotq_laneq_s32(acc, ws, a, 0);
    case 1:
        return vdotq_laneq_s32(acc, ws, a, 1);
    case 2:
        return vdotq_laneq_s32(acc, ws, a, 2);
    default:
        return vdotq_laneq_s32(acc, ws, a, 3);
    }
}

/* 4 f16 at p (any alignment) as f32. */
static inline __attribute__((always_inline)) float32x4_t f16x4(const uint8_t *p) {
    return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p)));
}

/* The first `count` (may be <= 0) of the 4 row lanes of v to y. */
static inline void store_rows(float *y, float32x4_t v, int64_t count) {
    if (count >= 4)
        vst1q_f32(y, v);
    else if (count > 0)
        neon_store_tail(y, v, (int)count);
}

#endif
