/* KVzip's column maxima of attention over int8 keys, the plain C reference of attn_colmax_i8
 * (press-ops.h): per row, the scores of the keys it sees and their softmax, in double (or the
 * caller's log-sum-exp of them); per key, the largest probability any row gives it. */
#include <math.h>

#include "press-ops.h"

static double score(const float *qr, const int8_t *kr, float k_scale, int d, float mul) {
    double s = 0.0;
    for (int i = 0; i < d; i++)
        s += (double)qr[i] * kr[i];
    return s * k_scale * mul;
}

void attn_colmax_i8__scalar(float *colmax, int n_out, const float *q, int n_q, const int32_t *qpos,
                            const float *lse, const int8_t *k, const float *k_scale,
                            const int32_t *kpos, int n_k, int d, float mul) {
    for (int r = 0; r < n_q; r++) {
        const float *qr = q + (size_t)r * d;
        if (lse) {
            for (int j = 0; j < n_out; j++)
                if (kpos[j] <= qpos[r]) {
                    const float p =
                        (float)exp(score(qr, k + (size_t)j * d, k_scale[j], d, mul) - lse[r]);
                    colmax[j] = p > colmax[j] ? p : colmax[j];
                }
            continue;
        }
        double m = -INFINITY, l = 0.0;
        for (int j = 0; j < n_k; j++)
            if (kpos[j] <= qpos[r]) {
                const double s = score(qr, k + (size_t)j * d, k_scale[j], d, mul);
                m = s > m ? s : m;
            }
        if (m == -INFINITY) /* the row sees no key */
            continue;
        for (int j = 0; j < n_k; j++)
            if (kpos[j] <= qpos[r])
                l += exp(score(qr, k + (size_t)j * d, k_scale[j], d, mul) - m);
        for (int j = 0; j < n_out; j++) {
            if (kpos[j] > qpos[r])
                continue;
            const float p = (float)(exp(score(qr, k + (size_t)j * d, k_scale[j], d, mul) - m) / l);
            colmax[j] = p > colmax[j] ? p : colmax[j];
        }
    }
}
