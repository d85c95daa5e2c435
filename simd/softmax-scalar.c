/* Softmax reference with libm expf. The sum is accumulated in double so the reference sets the
 * accuracy bar for the vector versions. */
#include <math.h>

#include "ops.h"

float max__scalar(const float *x, int n) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

float exp_sum__scalar(float *x, int n, float shift) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - shift);
        sum += x[i];
    }
    return (float)sum;
}

void softmax__scalar(float *x, int n) {
    const float inv = 1.0f / exp_sum__scalar(x, n, max__scalar(x, n));
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}
