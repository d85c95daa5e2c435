/* RMSNorm reference: y = x * w / sqrt(mean(x^2) + eps), accumulated in double so that the
 * reference is more accurate than any vector version it judges. */
#include <math.h>

#include "ops.h"

void rmsnorm__scalar(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    const float r = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++)
        y[i] = x[i] * r * w[i];
}
