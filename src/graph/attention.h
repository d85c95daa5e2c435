/* Attention over a context's KV cache (attention.c), for the forward pass (forward.c). */
#ifndef ADAKV_ATTENTION_H
#define ADAKV_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "forward.h"

/* Floats of attention scratch one thread needs (the context keeps one block per thread). */
size_t attention_scratch_floats(const struct model_hparams *hp);

/* Bytes of the scratch attention_batch keeps for the rows that forks of one document share
 * (the context family holds one block, for batches of up to `chunk` sequences). */
size_t attention_cascade_bytes(const struct model_hparams *hp, int chunk);

/* Where a prompt chunk's attention also leaves each query row's log-sum-exp over the rows it
 * saw (the KV policy's window: the KVzip scorer needs them and would otherwise recompute them):
 * chunk row t >= first, query head h, at dst[(t - first) * n_head + h]. */
struct attn_lse_out {
    float *dst;
    int first;
};

/* Rows 0..n of the context's chunk (c->q, token t at position pos0 + t) over layer `layer`'s
 * cache into c->att, on the context's threads; lse: NULL, or where prompt chunks (n > 1) leave
 * their rows' log-sum-exps. */
void attention_chunk(struct adakv_ctx *c, int layer, int n, int32_t pos0,
                     const struct attn_lse_out *lse);

/* Row i of c's chunk (c->q, c->att) is the next token of sequence seqs[i], at its position
 * n_past: each row attends over its own sequence's cache of `layer`, on c's threads and
 * scratch (adakv_eval_batch). Sequences whose caches share leading rows (forks of one
 * document, kv_cache_share) read those rows once for all of them, then each its own rest. */
void attention_batch(const struct adakv_ctx *c, struct adakv_ctx *const *seqs, int layer, int n);

#endif
