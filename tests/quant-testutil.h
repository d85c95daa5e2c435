/* Test helpers shared by test_quant.c and test_matmul.c: the byte layout of each weight type (so
 * tests can write random but valid blocks, and split a block into its scale and offset parts),
 * a seeded generator, and the list of ISA tables to hold against the scalar reference. */
#ifndef ADAKV_TESTS_QUANT_TESTUTIL_H
#define ADAKV_TESTS_QUANT_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "quant.h"
#include "tensor-type.h" /* names and row sizes for the messages and buffers */

struct qt_layout {
    uint32_t type;
    int blck, bytes;
    int d_off;          /* f16 scale field (-1: plain float type) */
    int min_off;        /* f16 minimum field (-1: none) */
    int q_begin, q_end; /* bytes holding the quant bits */
};

static const struct qt_layout qt_layouts[] = {
    {TENSOR_TYPE_F32, 1, 4, -1, -1, 0, 0},         {TENSOR_TYPE_F16, 1, 2, -1, -1, 0, 0},
    {TENSOR_TYPE_BF16, 1, 2, -1, -1, 0, 0},        {TENSOR_TYPE_Q4_0, 32, 18, 0, -1, 2, 18},
    {TENSOR_TYPE_Q4_1, 32, 20, 0, 2, 4, 20},       {TENSOR_TYPE_Q5_0, 32, 22, 0, -1, 2, 22},
    {TENSOR_TYPE_Q5_1, 32, 24, 0, 2, 4, 24},       {TENSOR_TYPE_Q8_0, 32, 34, 0, -1, 2, 34},
    {TENSOR_TYPE_Q4_K, 256, 144, 0, 2, 16, 144},   {TENSOR_TYPE_Q5_K, 256, 176, 0, 2, 16, 176},
    {TENSOR_TYPE_Q6_K, 256, 210, 208, -1, 0, 192},
};
#define QT_N_LAYOUTS ((int)(sizeof qt_layouts / sizeof qt_layouts[0]))

/* xorshift64*: deterministic across runs and platforms. */
static inline uint64_t qt_rand(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}
static inline double qt_uniform(uint64_t *s) {
    return (double)(qt_rand(s) >> 11) * 0x1p-53;
}
static inline double qt_normal(uint64_t *s) {
    double u = qt_uniform(s) + 1e-300, v = qt_uniform(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static inline void qt_put_f16(uint8_t *p, uint16_t h) {
    memcpy(p, &h, 2);
}

/* A finite f16 scale of random sign, magnitude 2^-8 .. 2^2. */
static inline uint16_t qt_rand_scale(uint64_t *s) {
    float v = ldexpf(1.0f + (float)qt_uniform(s), -8 + (int)(qt_rand(s) % 10));
    return quant_f32_to_f16(qt_rand(s) & 1 ? -v : v);
}

/* n_blocks random blocks of layout l. extreme != 0 mixes in the edge cases: largest f16 scale
 * with all-ones quants, zero and negative-zero scales, subnormal scales. */
static inline void qt_fill_blocks(const struct qt_layout *l, uint8_t *dst, int64_t n_blocks,
                                  uint64_t *s, int extreme) {
    for (int64_t b = 0; b < n_blocks; b++) {
        uint8_t *p = dst + b * l->bytes;
        for (int i = 0; i < l->bytes; i++)
            p[i] = (uint8_t)qt_rand(s);
        if (l->type == TENSOR_TYPE_F32) {
            float v = (float)qt_normal(s);
            memcpy(p, &v, 4);
        } else if (l->type == TENSOR_TYPE_F16) {
            qt_put_f16(p, quant_f32_to_f16((float)qt_normal(s)));
        } else if (l->type == TENSOR_TYPE_BF16) {
            qt_put_f16(p, quant_f32_to_bf16((float)qt_normal(s)));
        } else {
            qt_put_f16(p + l->d_off, qt_rand_scale(s));
            if (l->min_off >= 0)
                qt_put_f16(p + l->min_off, qt_rand_scale(s));
        }
        if (!extreme || l->d_off < 0)
            continue;
        switch (b % 4) {
        case 0: /* largest scale, all quant bits set */
            qt_put_f16(p + l->d_off, 0x7bff);
            memset(p + l->q_begin, 0xff, (size_t)(l->q_end - l->q_begin));
            break;
        case 1:
            qt_put_f16(p + l->d_off, 0x8000);
            break; /* negative zero */
        case 2:
            qt_put_f16(p + l->d_off, 0x0001);
            break; /* smallest subnormal */
        default:
            break;
        }
    }
}

/* Activations: normal values, with whole blocks of zeros, of negative zeros, huge and tiny
 * magnitudes when extreme != 0. */
static inline void qt_fill_act(float *x, int64_t n, uint64_t *s, int extreme) {
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)qt_normal(s);
    if (!extreme)
        return;
    for (int64_t b = 0; b * 32 < n; b++) {
        float *p = x + b * 32;
        int64_t m = n - b * 32 < 32 ? n - b * 32 : 32;
        switch (b % 5) {
        case 1:
            memset(p, 0, (size_t)m * sizeof *p);
            break;
        case 2:
            for (int64_t i = 0; i < m; i++)
                p[i] = -0.0f;
            break;
        case 3:
            p[0] = 3e4f;
            break; /* one dominant value */
        case 4:
            for (int64_t i = 0; i < m; i++)
                p[i] *= 1e-6f; /* tiny, some below the f16 normal range */
            break;
        default:
            break;
        }
    }
}

/* The ISAs this machine can run besides the scalar one. */
static inline int qt_simd_isas(enum simd_isa *out) {
    int n = 0;
    for (int i = 1; i < SIMD_ISA_COUNT; i++)
        if (simd_isa_available((enum simd_isa)i))
            out[n++] = (enum simd_isa)i;
    return n;
}

#endif
