/* RoPE against numbers computed by hand (double precision, written out below), for both
 * pairings and every kernel table, plus the angle table with Llama-3 frequency factors and
 * linear position scaling.
 *
 * x = [1, 2, 3, 4], head_dim = n_rot = 4, position 1, base 10000: pair 0 turns by 1 rad,
 * pair 1 by 10000^(-2/4) = 0.01 rad.
 *   NORM (adjacent pairs (x0,x1), (x2,x3)):
 *     x0' = cos1 - 2 sin1 = -1.14263966,  x1' = sin1 + 2 cos1 = 1.92207560,
 *     x2' = 3 cos.01 - 4 sin.01 = 2.95985067,  x3' = 3 sin.01 + 4 cos.01 = 4.02979950
 *   NEOX (half-offset pairs (x0,x2), (x1,x3)):
 *     x0' = cos1 - 3 sin1 = -1.98411065,  x2' = sin1 + 3 cos1 = 2.46237790,
 *     x1' = 2 cos.01 - 4 sin.01 = 1.95990067,  x3' = 2 sin.01 + 4 cos.01 = 4.01979967 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "model.h"
#include "ops.h"
#include "rope-angles.h"
#include "tensor-type.h"

static const float norm_want[4] = {-1.1426396637f, 1.9220755965f, 2.9598506679f, 4.0297995017f};
static const float neox_want[4] = {-1.9841106486f, 1.9599006675f, 2.4623779024f, 4.0197996683f};

static void check_table(const struct simd_ops *ops) {
    const float cs[4] = {cosf(1.0f), cosf(0.01f), sinf(1.0f), sinf(0.01f)};
    for (int neox = 0; neox <= 1; neox++) {
        float x[8] = {1, 2, 3, 4, 1, 2, 3, 4}; /* two heads, both rotated alike */
        ops->rope(x, 2, 4, 4, cs, neox);
        const float *want = neox ? neox_want : norm_want;
        for (int i = 0; i < 8; i++)
            cr_assert_float_eq(x[i], want[i % 4], 2e-6, "%s %s dim %d: %.8f vs %.8f", ops->isa,
                               neox ? "neox" : "norm", i, (double)x[i], (double)want[i % 4]);
    }
}

Test(rope, norm_and_neox_by_hand) {
    check_table(simd_ops_scalar());
    for (int i = 0; simd_ops_variant(i); i++)
        check_table(simd_ops_variant(i));
}

/* Dims past n_rot stay as they are (partial rotary). */
Test(rope, partial_rotation_leaves_tail) {
    const float cs[2] = {cosf(1.0f), sinf(1.0f)};
    float x[4] = {1, 2, 3, 4};
    simd_ops_scalar()->rope(x, 1, 4, 2, cs, 0);
    cr_assert_float_eq(x[0], norm_want[0], 2e-6);
    cr_assert_float_eq(x[1], norm_want[1], 2e-6);
    cr_assert(x[2] == 3.0f && x[3] == 4.0f);
}

static struct adakv_model angle_model(float base, float freq_scale, const float *freqs,
                                      struct gguf_tensor *ft) {
    struct adakv_model m;
    memset(&m, 0, sizeof m);
    m.hp.n_rot = 4;
    m.hp.head_dim = 4;
    m.hp.rope_base = base;
    m.hp.rope_freq_scale = freq_scale;
    m.hp.rope_attn_factor = 1.0f;
    if (freqs) {
        memset(ft, 0, sizeof *ft);
        ft->type = TENSOR_TYPE_F32;
        ft->n_dims = 1;
        ft->ne[0] = 2;
        ft->data = freqs;
        m.w.rope_freqs = ft;
    }
    return m;
}

Test(rope, angles_plain_scaled_and_with_freq_factors) {
    float cs[2 * 4];
    struct gguf_tensor ft;
    struct adakv_model m = angle_model(10000.0f, 1.0f, NULL, &ft);
    rope_angles_model(&m, 0, 2, cs); /* positions 0 and 1 */
    cr_assert(cs[0] == 1.0f && cs[1] == 1.0f && cs[2] == 0.0f && cs[3] == 0.0f);
    cr_assert_float_eq(cs[4], 0.5403023059f, 1e-6);
    cr_assert_float_eq(cs[5], 0.9999500004f, 1e-6);
    cr_assert_float_eq(cs[6], 0.8414709848f, 1e-6);
    cr_assert_float_eq(cs[7], 0.0099998333f, 1e-7);

    /* linear scaling factor 2 (freq_scale 0.5) and Llama-3 per-dim divisors [1, 2]:
     * position 1 -> angles 0.5 * 1 / 1 = 0.5 and 0.5 * 0.01 / 2 = 0.0025 */
    const float freqs[2] = {1.0f, 2.0f};
    m = angle_model(10000.0f, 0.5f, freqs, &ft);
    rope_angles_model(&m, 1, 1, cs);
    cr_assert_float_eq(cs[0], 0.8775825619f, 1e-6);
    cr_assert_float_eq(cs[1], 0.9999968750f, 1e-6);
    cr_assert_float_eq(cs[2], 0.4794255386f, 1e-6);
    cr_assert_float_eq(cs[3], 0.0024999974f, 1e-8);
}
