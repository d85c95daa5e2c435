/* The int8 key rotation (key-rotation.h): the transform against the Hadamard matrix written
 * out, and the cache contract it serves (rotated queries over rotated int8 keys give q.k, key
 * norms kept, and a smaller int8 error than unrotated rows when a few channels dominate). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "key-rotation.h"
#include "kv-cache.h"
#include "ops.h"

Test(kv_rotation, block_is_the_largest_power_of_two_dividing_head_dim) {
    const int d[] = {64, 128, 80, 96, 112, 256, 7, 1}, want[] = {64, 128, 16, 32, 16, 256, 1, 1};
    for (size_t i = 0; i < sizeof d / sizeof *d; i++)
        cr_assert_eq(key_rotation_block(d[i]), want[i], "head_dim %d", d[i]);
}

/* H_ij = (-1)^popcount(i & j) / sqrt(block) within each block, zero across blocks. */
Test(kv_rotation, equals_the_hadamard_matrix_and_is_its_own_inverse) {
    const int cases[][2] = {{64, 64}, {128, 128}, {80, 16}, {96, 32}, {16, 16}, {6, 2}, {8, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const int n = cases[c][0], b = cases[c][1];
        float x[128] = {0}, y[128];
        for (int i = 0; i < n; i++)
            x[i] = (float)sin(1.7 * i + n) * (i == 3 ? 50.0f : 1.0f);
        memcpy(y, x, sizeof x);
        key_rotate(y, n, b);
        for (int i = 0; i < n; i++) {
            double want = 0.0;
            const int b0 = i / b * b;
            for (int j = b0; j < b0 + b; j++)
                want += (__builtin_popcount((unsigned)((i - b0) & (j - b0))) % 2 ? -1.0 : 1.0) *
                        x[j] / sqrt((double)b);
            cr_assert(fabs(y[i] - want) <= 1e-5 * (1.0 + fabs(want)),
                      "n %d block %d [%d]: %g want %g", n, b, i, (double)y[i], want);
        }
        key_rotate(y, n, b);
        for (int i = 0; i < n; i++)
            cr_assert(fabsf(y[i] - x[i]) <= 1e-5f * (1.0f + fabsf(x[i])),
                      "n %d block %d: twice [%d]", n, b, i);
    }
}

/* Keys shaped like RoPE keys of a real model (one channel pair 40x the rest) through an int8
 * cache: |q.k - rotated q . stored k| within half an int8 step per stored value, norms kept,
 * and the worst error at least 3x below the same rows stored unrotated. */
Test(kv_rotation, int8_cache_keeps_q_dot_k_and_norms_and_shrinks_the_error) {
    enum { D = 64, N = 16, HEADS = 2 };
    const struct simd_ops *ops = simd_ops_scalar();
    float keys[N][D], v[N][D] = {{0}}, q[HEADS][D];
    for (int r = 0; r < N; r++)
        for (int i = 0; i < D; i++)
            keys[r][i] = (float)sin(r * 7.1 + i) * (i == 4 || i == 5 ? 40.0f : 1.0f);
    for (int h = 0; h < HEADS; h++)
        for (int i = 0; i < D; i++)
            q[h][i] = (float)cos(i * 1.3 + h) * (i == 4 || i == 5 ? 0.05f : 3.0f);
    double worst[2] = {0, 0};
    for (int rot = 1; rot >= 0; rot--) {
        struct kv_cache kv;
        struct adakv_err e = {{0}};
        cr_assert_eq(kv_cache_init(&kv, KV_TYPE_INT8, 1, 1, D, &e), 0);
        cr_assert_eq(kv.k_rot, 64, "an int8 cache rotates its keys");
        if (!rot)
            kv.k_rot = 0;
        cr_assert_eq(kv_cache_append(&kv, 0, 0, keys[0], v[0], D, N, 0, ops->quant_row_i8, &e), 0);
        float qs[HEADS][D];
        memcpy(qs, q, sizeof q);
        kv_cache_rotate_queries(&kv, qs[0], HEADS, D, 1);
        const struct kv_segment *seg = kv_cache_seg(&kv, 0, 0);
        for (int h = 0; h < HEADS; h++) {
            float sc[N];
            ops->attn_qk_i8(sc, N, qs[h], D, 1, seg->k, seg->k_scale, N, D, 1.0f);
            double q1 = 0.0;
            for (int i = 0; i < D; i++)
                q1 += fabs((double)qs[h][i]);
            for (int r = 0; r < N; r++) {
                double want = 0.0;
                for (int i = 0; i < D; i++)
                    want += (double)q[h][i] * keys[r][i];
                const double err = fabs(sc[r] - want);
                const double bound = 0.5 * seg->k_scale[r] * q1 + 1e-4 * fabs(want);
                cr_assert(err <= bound, "rot %d head %d row %d: %g want %g (bound %g)", rot, h, r,
                          (double)sc[r], want, bound);
                worst[rot] = err > worst[rot] ? err : worst[rot];
            }
        }
        for (int r = 0; r < N; r++) {
            double n0 = 0.0, n1 = 0.0;
            for (int i = 0; i < D; i++) {
                n0 += (double)keys[r][i] * keys[r][i];
                const double s = ((const int8_t *)seg->k)[r * D + i] * (double)seg->k_scale[r];
                n1 += s * s;
            }
            cr_assert(fabs(sqrt(n1) - sqrt(n0)) <= 0.5 * seg->k_scale[r] * sqrt((double)D),
                      "rot %d row %d: norm %g want %g", rot, r, sqrt(n1), sqrt(n0));
        }
        kv_cache_free(&kv);
    }
    cr_log_info("worst |q.k error|: rotated %.4g, unrotated %.4g", worst[1], worst[0]);
    cr_assert(worst[1] * 3.0 <= worst[0], "rotated %g vs unrotated %g", worst[1], worst[0]);
}

Test(kv_rotation, f16_and_f32_caches_store_keys_as_given) {
    for (int t = KV_TYPE_F16; t <= KV_TYPE_F32; t++) {
        struct kv_cache kv;
        struct adakv_err e = {{0}};
        cr_assert_eq(kv_cache_init(&kv, (enum kv_type)t, 1, 1, 64, &e), 0);
        cr_assert_eq(kv.k_rot, 0);
        float q[64], q0[64];
        for (int i = 0; i < 64; i++)
            q[i] = q0[i] = (float)i;
        kv_cache_rotate_queries(&kv, q, 1, 64, 1);
        cr_assert_arr_eq(q, q0, sizeof q);
        kv_cache_free(&kv);
    }
}
