/* In-tree extensions of the public API (adakv.h): the raw KV cache, the tokenizer and GGUF file
 * of a model, and the per-layer compression hook that the presses, tools and tests of this tree
 * use. Not installed and not exported by libadakv.so: these are the internal stages' own types,
 * free to change, which programs outside the tree must not come to depend on. */
#ifndef ADAKV_EXT_H
#define ADAKV_EXT_H

#include "adakv.h"

struct tokenizer; /* src/text/tokenizer.h */
struct gguf_file; /* src/gguf/gguf.h */
struct kv_cache;  /* src/kv/kv-cache.h: per (layer, KV head) segments */

const struct tokenizer *adakv_model_tokenizer(const struct adakv_model *m);
const struct gguf_file *adakv_model_gguf(const struct adakv_model *m);

/* Per-layer KV compression hook, called during layer-major prefill right after layer `layer`
 * appended the K (post-RoPE) and V rows of every prompt token to `kv`, and before the next
 * layer runs. q_window holds the last n_window post-RoPE query rows of this layer, laid out
 * [n_window][n_head][head_dim] f32 (token-major, query head, dim). The hook may evict rows and
 * compact segments in place (kv-compact.c); later tokens keep their original positions.
 * Returns 0, or -1 with e set (the eval then fails with that message). */
typedef int (*adakv_compress_layer_fn)(void *user, struct kv_cache *kv, int layer,
                                       const float *q_window, int n_window, struct adakv_err *e);

/* Sets or clears (fn = NULL) the compression hook (replacing a press set with
 * adakv_ctx_set_press), e.g. a test's own hook or a press wrapped with timing. */
void adakv_ctx_set_compress(struct adakv_ctx *c, adakv_compress_layer_fn fn, void *user);
/* The context's KV cache (for presses, reports and tests); owned by the context. */
struct kv_cache *adakv_ctx_kv(struct adakv_ctx *c);

#endif
