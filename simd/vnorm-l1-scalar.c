/* CriticalKV projected-value norm, reference: out[r] += sum_e |sum_i v[r][i] w[i][e]|, the L1
 * norm of the value row v_r (head_dim d) projected through one head's slice of the output
 * projection (w: [d][n_out], row-major). Sums in double; the SIMD versions are held to this. */
#include <math.h>

#include "press-ops.h"

void vnorm_l1__scalar(float *out, const float *v, int n, int d, const float *w, int n_out) {
    for (int r = 0; r < n; r++) {
        const float *vr = v + (size_t)r * d;
        double l1 = 0.0;
        for (int e = 0; e < n_out; e++) {
            double u = 0.0;
            for (int i = 0; i < d; i++)
                u += (double)vr[i] * w[(size_t)i * n_out + e];
            l1 += fabs(u);
        }
        out[r] += (float)l1;
    }
}
