/* RoPE reference. GGML names the two pairings NORM (adjacent dims, Meta's layout, which
 * llama.cpp's converter restores for the llama arch by permuting Q/K rows) and NEOX (dim i with
 * dim i + n_rot/2, the HF "rotate_half" layout kept by qwen2 and gemma3). */
#include "ops.h"

void rope__scalar(float *x, int n_head, int head_dim, int n_rot, const float *cs, int neox) {
    const int half = n_rot / 2;
    const float *cosv = cs, *sinv = cs + half;
    for (int h = 0; h < n_head; h++) {
        float *r = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            const int a = neox ? i : 2 * i;        /* first dim of pair i */
            const int b = neox ? i + half : a + 1; /* its partner */
            const float x0 = r[a], x1 = r[b];
            r[a] = x0 * cosv[i] - x1 * sinv[i];
            r[b] = x0 * sinv[i] + x1 * cosv[i];
        }
    }
}
