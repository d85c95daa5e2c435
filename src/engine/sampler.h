/* Next-token sampling from logits: greedy, or temperature with top-k and top-p (nucleus),
 * applied in llama.cpp's order (top-k, top-p, temperature, draw). Deterministic for a seed. */
#ifndef ADAKV_SAMPLER_H
#define ADAKV_SAMPLER_H

#include <stdint.h>

#include "error.h"

struct sampler_params {
    float temp;  /* <= 0: greedy (argmax, lowest id on ties) */
    int top_k;   /* <= 0: disabled */
    float top_p; /* >= 1: disabled */
    uint64_t seed;
};

struct sampler {
    struct sampler_params p;
    uint64_t rng[2]; /* xorshift128+ state */
    int n_vocab;
    struct sampler_cand {
        float logit;
        int32_t id;
    } * cand; /* [n_vocab] scratch, allocated once */
};

int sampler_init(struct sampler *s, const struct sampler_params *p, int n_vocab,
                 struct adakv_err *e);
void sampler_free(struct sampler *s);
int32_t sampler_sample(struct sampler *s, const float *logits);
/* Uniform double in [0, 1) from the sampler's stream (exposed for tests). */
double sampler_uniform(struct sampler *s);

#endif
