/* Symmetric int8 quantization of one KV row (one scale per row, scale = max|x| / 127). The
 * division is done as a multiply by the inverse scale, and rounding is to nearest-even
 * (lrintf in the default rounding mode), because that is what vector conversions do: the
 * vector versions must match this bit for bit. */
#include <math.h>

#include "ops.h"

void quant_row_i8__scalar(int8_t *q, float *scale, const float *x, int n) {
    float amax = 0.0f;
    for (int i = 0; i < n; i++) {
        const float a = fabsf(x[i]);
        amax = a > amax ? a : amax;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *scale = d;
    for (int i = 0; i < n; i++) {
        long v = lrintf(x[i] * id);
        v = v > 127 ? 127 : v < -127 ? -127 : v; /* x*id can round up past 127 by an ulp */
        q[i] = (int8_t)v;
    }
}
