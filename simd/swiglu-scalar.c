/* SwiGLU reference: the gated MLP activation of Llama, silu(gate) * up. */
#include <math.h>

#include "ops.h"

void swiglu__scalar(float *out, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        const float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}
