/* RoPE angles of a model (its hyperparameters and frequency factors), apart from the forward pass
 * so that the forward pass and the presses that undo or average a rotation (expected attention,
 * press-ctx.c) read one computation without the press calling into the forward pass. */
#ifndef ADAKV_ROPE_ANGLES_H
#define ADAKV_ROPE_ANGLES_H

#include <stdint.h>

#include "model.h"

/* RoPE angles for positions pos0 .. pos0 + n - 1 with RoPE base `base` and position scale
 * `freq_scale`: row t of cs [n][n_rot] holds n_rot/2 cosines then n_rot/2 sines of
 * pos * freq_scale * base^(-2i/n_rot) / freq_factor[i] (the simd rope op's layout), times the
 * attention factor; with YaRN the angle of pair i blends the scaled and the unscaled one by its
 * ramp, and the factor gains 1 + 0.1 ln(1 / freq_scale), as ggml's rope op computes them. */
void rope_angles_at(const struct adakv_model *m, float base, float freq_scale, int32_t pos0, int n,
                    float *cs);
/* The same with the model's RoPE base and scale. */
void rope_angles_model(const struct adakv_model *m, int32_t pos0, int n, float *cs);
/* The same with layer `layer`'s own RoPE base and scale (gemma3's local and global layers). */
void rope_angles_layer(const struct adakv_model *m, int layer, int32_t pos0, int n, float *cs);

#endif
