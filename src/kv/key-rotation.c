/* Walsh-Hadamard rotation of int8 keys and their queries (key-rotation.h). */
#include "key-rotation.h"

#include "ops.h"

int key_rotation_block(int head_dim) {
    return head_dim > 0 ? head_dim & -head_dim : 1; /* lowest set bit */
}

void key_rotate(float *x, int n, int block) {
    /* the best table's kernel whatever table the caller's context runs: every ISA gives the
     * reference's bits (ops.h), so reference contexts see no difference */
    simd_ops_best()->hadamard(x, n, block);
}
