/* RoPE angles of a model (rope-angles.h). */
#include "rope-angles.h"

#include <math.h>
#include <string.h>

/* Computed the way ggml's rope cache does it (float theta advanced by repeated
 * multiplication, divided by the per-dim frequency factor, scaled by freq_scale), so that our
 * keys match llama.cpp's to the last bit that matters. */
void rope_angles_at(const struct adakv_model *m, float base, float freq_scale, int32_t pos0, int n,
                    float *cs) {
    const struct model_hparams *hp = &m->hp;
    const int half = hp->n_rot / 2;
    const float theta_scale = powf(base, -2.0f / (float)hp->n_rot);
    const float ext = hp->yarn_ext_factor;
    float mscale = hp->rope_attn_factor;
    if (ext != 0.0f) /* YaRN's magnitude correction for the interpolated angles */
        mscale *= 1.0f + 0.1f * logf(1.0f / freq_scale);
    for (int t = 0; t < n; t++) {
        float *row = cs + (size_t)t * hp->n_rot;
        float theta = (float)(pos0 + t);
        for (int i = 0; i < half; i++) {
            float ff = 1.0f;
            if (m->w.rope_freqs)
                memcpy(&ff, (const char *)m->w.rope_freqs->data + i * sizeof ff, sizeof ff);
            const float extrap = theta / ff, interp = freq_scale * extrap;
            float th = interp;
            if (ext != 0.0f) { /* YaRN: fast pairs keep their angle, slow ones interpolate */
                const float y = ((float)i - hp->yarn_corr[0]) /
                                fmaxf(0.001f, hp->yarn_corr[1] - hp->yarn_corr[0]);
                const float ramp = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * ext;
                th = interp * (1.0f - ramp) + extrap * ramp;
            }
            row[i] = cosf(th) * mscale;
            row[half + i] = sinf(th) * mscale;
            theta *= theta_scale;
        }
    }
}

void rope_angles_model(const struct adakv_model *m, int32_t pos0, int n, float *cs) {
    rope_angles_at(m, m->hp.rope_base, m->hp.rope_freq_scale, pos0, n, cs);
}

void rope_angles_layer(const struct adakv_model *m, int layer, int32_t pos0, int n, float *cs) {
    const struct layer_hparams *lh = &m->hp.layer[layer];
    rope_angles_at(m, lh->rope_base, lh->rope_freq_scale, pos0, n, cs);
}
