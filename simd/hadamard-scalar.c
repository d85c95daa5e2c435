/* Blocked Walsh-Hadamard transform, the plain C reference (ops.h op_hadamard_fn). */
#include <math.h>

#include "ops.h"

void hadamard__scalar(float *x, int n, int block) {
    if (block < 2)
        return;
    /* Butterflies of span h = 1, 2, 4, ... < block: log2(block) passes over the row. A group of
     * 2h values never straddles two blocks (block is a multiple of 2h), so one pass over the
     * whole row serves every block. */
    for (int h = 1; h < block; h *= 2)
        for (int b = 0; b < n; b += 2 * h)
            for (int j = b; j < b + h; j++) {
                const float a = x[j], c = x[j + h];
                x[j] = a + c;
                x[j + h] = a - c;
            }
    const float s = 1.0f / sqrtf((float)block);
    for (int i = 0; i < n; i++)
        x[i] *= s;
}
