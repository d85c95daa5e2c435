/* Attention of many query rows over int8 keys and values, the plain C reference of
 * attn_rows_i8 (ops.h): per row, the scores of the keys it sees, their softmax, and the weighted
 * sum of the dequantized values, in double. */
#include <math.h>

#include "ops.h"

static bool key_visible(int32_t kp, int32_t qp, int32_t window) {
    return kp <= qp && (window == 0 || kp > qp - window);
}

static double score(const float *qr, const int8_t *kr, float k_scale, int d, float mul) {
    double s = 0.0;
    for (int i = 0; i < d; i++)
        s += (double)qr[i] * kr[i];
    return s * k_scale * mul;
}

void attn_rows_i8__scalar(float *out, float *lse, const float *q, int n_q, const int32_t *qpos,
                          const int8_t *k, const float *k_scale, const int8_t *v,
                          const float *v_scale, const int32_t *kpos, int n_k, int d, float mul,
                          int32_t window) {
    for (int r = 0; r < n_q; r++) {
        const float *qr = q + (size_t)r * d;
        float *o = out + (size_t)r * d;
        double m = -INFINITY;
        for (int j = 0; j < n_k; j++) {
            if (!key_visible(kpos[j], qpos[r], window))
                continue;
            const double s = score(qr, k + (size_t)j * d, k_scale[j], d, mul);
            m = s > m ? s : m;
        }
        for (int i = 0; i < d; i++)
            o[i] = 0.0f;
        if (lse)
            lse[r] = -INFINITY;
        if (m == -INFINITY) /* the row sees no key: zeros, as the contract says */
            continue;
        double l = 0.0, acc[ATTN_ROWS_DMAX] = {0};
        for (int j = 0; j < n_k; j++) {
            if (!key_visible(kpos[j], qpos[r], window))
                continue;
            const double p = exp(score(qr, k + (size_t)j * d, k_scale[j], d, mul) - m);
            l += p;
            for (int i = 0; i < d; i++)
                acc[i] += p * v_scale[j] * v[(size_t)j * d + i];
        }
        for (int i = 0; i < d; i++)
            o[i] = (float)(acc[i] / l);
        if (lse)
            lse[r] = (float)(m + log(l));
    }
}
