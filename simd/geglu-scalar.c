/* GEGLU reference: the gated FFN activation of Gemma, gelu(gate) * up, with GELU's tanh
 * approximation written as ggml_gelu_f32 writes it (llama.cpp LLM_FFN_GELU + LLM_FFN_PAR,
 * ggml_geglu_split). llama.cpp's CPU backend reads gelu from an f16 table of f16-rounded inputs;
 * this is the exact function that table samples. */
#include <math.h>

#include "ops.h"

void geglu__scalar(float *out, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        const float x = gate[i];
        const float gelu =
            0.5f * x * (1.0f + tanhf(GELU_SQRT_2_OVER_PI * x * (1.0f + GELU_COEF_A * x * x)));
        out[i] = gelu * up[i];
    }
}
