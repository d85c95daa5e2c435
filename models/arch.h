/* The architecture contract: an arch reads its namespaced GGUF keys into model_hparams and binds
 * its tensors by canonical name into model_weights, checking each tensor's type and shape. The
 * forward pass (src/forward.c) is written once against these two structs; no arch name appears
 * anywhere else. Adding an arch = one file here (or, for a close relative of llama, one
 * descriptor in llama.c) plus one line in registry.c. */
#ifndef ADAKV_MODELS_ARCH_H
#define ADAKV_MODELS_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "gguf.h"

/* How RoPE pairs dimensions (llama.cpp llama_model_rope_type): NORM rotates adjacent pairs
 * (x[2i], x[2i+1]); NEOX rotates (x[i], x[i + n_rot/2]). */
enum rope_pairing { ROPE_PAIRING_NORM = 0, ROPE_PAIRING_NEOX = 1 };

struct model_hparams {
    int n_vocab;
    int n_ctx_train;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim; /* per head, for Q, K and V */
    int n_ff;
    int n_rot; /* rotated dims per head (even, <= head_dim) */
    float norm_eps;
    float rope_base;        /* theta */
    float rope_freq_scale;  /* positions are multiplied by this (1 / linear scaling factor) */
    float rope_attn_factor; /* cos and sin are multiplied by this (1 unless YaRN / metadata) */
    float yarn_ext_factor;  /* 0: no YaRN; 1: YaRN's blend of interpolated and original angles */
    float yarn_corr[2];     /* YaRN: pair indices where the blend ramps from original to scaled */
    enum rope_pairing rope_pairing;
};

/* Views into the mapped file; never owned. */
struct model_layer {
    const struct gguf_tensor *attn_norm; /* [n_embd] F32 */
    const struct gguf_tensor *wq;        /* [n_embd, n_head * head_dim] */
    const struct gguf_tensor *wk;        /* [n_embd, n_head_kv * head_dim] */
    const struct gguf_tensor *wv;        /* [n_embd, n_head_kv * head_dim] */
    const struct gguf_tensor *wo;        /* [n_head * head_dim, n_embd] */
    const struct gguf_tensor *ffn_norm;  /* [n_embd] F32 */
    const struct gguf_tensor *w_gate;    /* [n_embd, n_ff] */
    const struct gguf_tensor *w_up;      /* [n_embd, n_ff] */
    const struct gguf_tensor *w_down;    /* [n_ff, n_embd] */
    /* Optional per-arch extras, NULL when the arch has none: */
    const struct gguf_tensor *bq, *bk, *bv; /* F32 biases of Q, K, V (qwen2) */
    const struct gguf_tensor *q_norm;       /* F32 [head_dim]: RMSNorm of each Q head (qwen3) */
    const struct gguf_tensor *k_norm;       /* F32 [head_dim]: of each K head, before RoPE */
};

struct model_weights {
    const struct gguf_tensor *token_embd;  /* [n_embd, n_vocab] */
    const struct gguf_tensor *output_norm; /* [n_embd] F32 */
    const struct gguf_tensor *output;      /* [n_embd, n_vocab]; == token_embd when tied */
    const struct gguf_tensor *rope_freqs;  /* [n_rot / 2] F32 per-dim divisors, or NULL */
    bool tied;                             /* output head shares token_embd */
    struct model_layer *layers;            /* [n_layer], malloc'ed by bind, freed by the model */
};

struct arch {
    const char *name; /* general.architecture */
    /* Reads hyperparameters (f names the file in messages). 0, or -1 with e set. */
    int (*load_hparams)(const struct gguf_file *f, struct model_hparams *hp, struct adakv_err *e);
    /* Binds every tensor, checking type and shape; allocates w->layers. 0, or -1 with e set
     * (nothing left allocated). */
    int (*bind_tensors)(const struct gguf_file *f, const struct model_hparams *hp,
                        struct model_weights *w, struct adakv_err *e);
};

/* The arch registered under `name`, or NULL. */
const struct arch *arch_find(struct gguf_str name);
/* "llama, qwen2, qwen3": the supported names, for error messages. */
const char *arch_supported_names(void);

/* Shared by arch files: binds `name` and checks it has `n_dims` dims equal to ne[0..n_dims)
 * and a type accepted by `type_ok` (described by `type_desc` in the message). Absent tensor:
 * -1 with e set when `required`, else *out = NULL and 0. */
int arch_bind_tensor(const struct gguf_file *f, const char *name, int n_dims, const int64_t *ne,
                     bool (*type_ok)(uint32_t type), const char *type_desc, bool required,
                     const struct gguf_tensor **out, struct adakv_err *e);
bool arch_type_is_f32(uint32_t type);
bool arch_type_is_matrix(uint32_t type); /* a weight type the matmul kernels support */

#endif
