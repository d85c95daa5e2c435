/* Per-channel smoothing of int8 keys, derived from the model's weights.
 *
 * Why: int8 keys with one scale per row are the main int8 error (measured on the default model,
 * 6,000-token context, 500 scored positions, f32 prompt GEMMs so that only storage differs:
 * keys alone in int8 cost KL 0.0032 against the f32 cache, values alone 0.0005). A key error
 * matters through q.k, so what counts per channel is the product of the query's and the key's
 * magnitudes, and a few channels of q or k are far larger than the rest. As SmoothQuant does
 * for activations and weights, each channel c is rescaled by f_c = sqrt(|k_c| / |q_c|): keys
 * are stored as k_c / f_c and queries multiplied by f_c, so q.k is unchanged while both operands'
 * channels come to the same typical size sqrt(|q_c| |k_c|), and the row scale no longer follows
 * the few channels that dominate one operand. Measured on the same run: KL 0.0034 -> 0.0023
 * (the key-only variants f_c = |k_c| and |k_c|^0.75 / |q_c|^0.75 gave 0.0034 and 0.0023).
 *
 * |q_c| and |k_c| are estimated from the weights, not from the prompt, so the factors are the
 * same whatever the batching (prefill in chunks == token by token): the L2 norm of row c of W_Q
 * (resp. W_K) times the attention-norm weights, i.e. the channel's size for a unit input, with
 * the two channels of a RoPE pair combined (rotation moves size between them), and for queries
 * the mean over the GQA group's query heads. */
#ifndef ADAKV_KEY_SMOOTHING_H
#define ADAKV_KEY_SMOOTHING_H

#include "error.h"
#include "model.h"

/* Returns malloc'ed factors [n_layer][n_head_kv][head_dim], all positive and finite. NULL with e
 * set when out of memory. */
float *key_smoothing_factors(const struct adakv_model *m, struct adakv_err *e);

#endif
