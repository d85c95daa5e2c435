/* KVzip's running maximum (press-ops.h): acc[j] = max(acc[j], x[j]). The reference the ISA
 * versions are held to; NaN never occurs (the inputs are softmax probabilities). */
#include "press-ops.h"

void col_max__scalar(float *acc, const float *x, int n) {
    for (int j = 0; j < n; j++)
        acc[j] = x[j] > acc[j] ? x[j] : acc[j];
}
