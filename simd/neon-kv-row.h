/* Reading one K or V row of the cache as f32 in the NEON attention kernels (attn-qk-neon.c,
 * attn-av-neon.c): the storage kind is a compile-time constant at every call site, so the
 * branches fold away. Included only by *-neon.c files. */
#ifndef ADAKV_SIMD_NEON_KV_ROW_H
#define ADAKV_SIMD_NEON_KV_ROW_H

#include <arm_neon.h>
#include <string.h>

enum kv_kind { KV_I8, KV_F16, KV_F32 };

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Elements i..i+7 of a key row as two f32 vectors. */
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

#endif
