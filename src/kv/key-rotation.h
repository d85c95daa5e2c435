/* Walsh-Hadamard rotation of int8 keys (and of the queries that read them).
 *
 * Why: int8 keys with one scale per row are the main int8 error (measured on the default model,
 * 6,000-token context, 500 scored positions, f32 prompt GEMMs so that only storage differs:
 * keys alone in int8 cost KL 0.0032 against the f32 cache, values alone 0.0005). A row's scale
 * is set by its largest channel, and a few key channels (the low-frequency RoPE pairs) are far
 * larger than the rest, so the others get few levels. An orthonormal Hadamard transform spreads
 * every channel over all of them (as QuaRot does for KV caches): the row's maximum falls towards
 * its RMS and the same 8 bits resolve every direction evenly. Keys are stored as H k and queries
 * multiplied by the same H, and since H is orthonormal and symmetric, (H q).(H k) = q.k and the
 * L2 norm of a stored key is its original norm. Measured on the same run: KL 0.0032 -> 0.00125
 * (per-channel SmoothQuant-style factors from the weights, kept before this, reached 0.0022;
 * both together 0.0013). It needs nothing from the model and no change to the storage or the
 * attention kernels.
 *
 * The transform works on blocks of the largest power of two dividing head_dim (the whole row for
 * 64 or 128; 16 for 80), so it is defined for every head size; odd sizes get blocks of one, i.e.
 * no rotation. */
#ifndef ADAKV_KEY_ROTATION_H
#define ADAKV_KEY_ROTATION_H

/* The rotation's block length for rows of head_dim values. */
int key_rotation_block(int head_dim);

/* x[0..n) <- H x in place, H block-diagonal with blocks of `block` (a power of two dividing n),
 * each the Walsh-Hadamard matrix scaled by 1/sqrt(block): orthonormal and its own inverse. */
void key_rotate(float *x, int n, int block);

#endif
