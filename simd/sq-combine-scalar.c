/* Expected Attention's logits from one block of dot products (press-ops.h):
 *     out[j] = a * s[j] + b * sum_{1 <= r < n_rows} s[r * stride + j]^2
 * Row 0 holds the mean query's dot products, rows 1.. the centred queries' (their squares
 * summed are k^T C k for the window's covariance C). The reference for the ISA versions. */
#include "press-ops.h"

void sq_combine__scalar(float *out, const float *s, size_t stride, int n_rows, int n, float a,
                        float b) {
    for (int j = 0; j < n; j++) {
        float q = 0.0f;
        for (int r = 1; r < n_rows; r++) {
            const float v = s[(size_t)r * stride + j];
            q += v * v;
        }
        out[j] = a * s[j] + b * q;
    }
}
