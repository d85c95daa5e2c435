/* The architecture contract, the one header an arch file in models/ includes: an arch reads its
 * namespaced GGUF keys into model_hparams and binds its tensors by canonical name into
 * model_weights, checking each tensor's type and shape. The forward pass (src/graph/forward.c) is
 * written once against these two structs; no arch name appears anywhere else. Adding an arch =
 * one file in models/ (or, for a close relative of llama, one descriptor in models/llama.c) plus
 * one line in models/registry.c.
 *
 * The dependency runs one way: models/ builds on this header and the helpers below
 * (arch-hparams.c, arch-bind.c); the engine includes nothing from models/ and finds the archs
 * only through the table arch_registry, which models/registry.c defines. */
#ifndef ADAKV_ARCH_H
#define ADAKV_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "gguf.h"

/* How RoPE pairs dimensions (llama.cpp llama_model_rope_type): NORM rotates adjacent pairs
 * (x[2i], x[2i+1]); NEOX rotates (x[i], x[i + n_rot/2]). */
enum rope_pairing { ROPE_PAIRING_NORM = 0, ROPE_PAIRING_NEOX = 1 };

/* The gated FFN's activation: SwiGLU silu(gate) * up (llama family) or GEGLU with the tanh
 * approximation of GELU, gelu(gate) * up (gemma3; llama.cpp LLM_FFN_GELU + LLM_FFN_PAR). */
enum ffn_act { FFN_ACT_SWIGLU = 0, FFN_ACT_GEGLU_TANH = 1 };

enum { ARCH_MAX_LAYER = 1024 };

/* What may differ from layer to layer. Every arch fills all n_layer entries (arch_layers_uniform
 * gives every layer the model's RoPE and global attention). */
struct layer_hparams {
    /* 0: global causal attention. N > 0: sliding window, a query at position p sees the keys at
     * positions p - N < pos <= p (llama.cpp LLAMA_SWA_TYPE_STANDARD). */
    int window;
    float rope_base;       /* theta of this layer */
    float rope_freq_scale; /* positions are multiplied by this in this layer */
};

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
    float rope_base;        /* theta (of the layers that do not say otherwise) */
    float rope_freq_scale;  /* positions are multiplied by this (1 / linear scaling factor) */
    float rope_attn_factor; /* cos and sin are multiplied by this (1 unless YaRN / metadata) */
    float yarn_ext_factor;  /* 0: no YaRN; 1: YaRN's blend of interpolated and original angles */
    float yarn_corr[2];     /* YaRN: pair indices where the blend ramps from original to scaled */
    enum rope_pairing rope_pairing;
    float attn_scale;     /* q.k is multiplied by this (1/sqrt(head_dim) unless the arch says) */
    float embd_scale;     /* token embeddings are multiplied by this (gemma3: sqrt(n_embd)) */
    float logit_softcap;  /* 0, or logits become cap * tanh(logits / cap) */
    enum ffn_act ffn_act; /* the FFN's gate activation */
    struct layer_hparams layer[ARCH_MAX_LAYER]; /* [n_layer] used */
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
    const struct gguf_tensor *bq, *bk, *bv;   /* F32 biases of Q, K, V (qwen2) */
    const struct gguf_tensor *q_norm;         /* F32 [head_dim]: RMSNorm of each Q head (qwen3) */
    const struct gguf_tensor *k_norm;         /* F32 [head_dim]: of each K head, before RoPE */
    const struct gguf_tensor *attn_post_norm; /* F32 [n_embd]: RMSNorm of the attention output
                                                 before the residual add (gemma3) */
    const struct gguf_tensor *ffn_post_norm;  /* F32 [n_embd]: of the FFN output (gemma3) */
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

/* Shared key readers (arch-hparams.c); f names the file in messages, prefix is the arch's key
 * namespace. Integer key `<prefix>.<suffix>` in [1, max]; absent: *out = def and 0 if def >= 0,
 * else an error. */
int arch_get_dim(const struct gguf_file *f, const char *prefix, const char *suffix, int def,
                 int max, int *out, struct adakv_err *e);
/* Float key `<prefix>.<suffix>`, positive and finite. Absent: *out = def. */
int arch_get_float(const struct gguf_file *f, const char *prefix, const char *suffix, float def,
                   float *out, struct adakv_err *e);
/* Zeroes hp, then reads what every decoder-only arch stores: dimensions, head counts and head
 * dimension, RoPE dims and base, norm epsilon, vocabulary size (key, else the token list). */
int arch_load_common(const struct gguf_file *f, const char *prefix, struct model_hparams *hp,
                     struct adakv_err *e);
/* RoPE scaling (none, linear, and YaRN when yarn_ok) into the model-level RoPE fields; needs
 * n_rot, rope_base and n_ctx_train. Other types are refused in one line. */
int arch_get_rope_scaling(const struct gguf_file *f, const char *prefix, bool yarn_ok,
                          struct model_hparams *hp, struct adakv_err *e);

/* Sets what every arch has unless it says otherwise: every layer global with the model's RoPE
 * (rope_base, rope_freq_scale), attention scale 1/sqrt(head_dim), embedding scale 1, no logit
 * soft-capping, SwiGLU. Call after head_dim and the RoPE fields are read. */
void arch_hparams_defaults(struct model_hparams *hp);

/* The table of architectures, defined by models/registry.c and read by the model loader
 * (src/model/model.c) to find general.architecture: every supported arch once, NULL-terminated. */
extern const struct arch *const arch_registry[];
/* "llama, qwen2, qwen3, gemma3": the names in arch_registry, for error messages. */
extern const char *const arch_registry_names;

/* Shared by arch files: binds `name` and checks it has `n_dims` dims equal to ne[0..n_dims)
 * and a type accepted by `type_ok` (described by `type_desc` in the message). Absent tensor:
 * -1 with e set when `required`, else *out = NULL and 0. */
int arch_bind_tensor(const struct gguf_file *f, const char *name, int n_dims, const int64_t *ne,
                     bool (*type_ok)(uint32_t type), const char *type_desc, bool required,
                     const struct gguf_tensor **out, struct adakv_err *e);
bool arch_type_is_f32(uint32_t type);

/* Which optional tensors an arch's blocks have (each then required; present in a file of an arch
 * without it: refused, never skipped). */
struct arch_tensors {
    const char *arch;   /* for messages */
    bool qkv_bias;      /* blk.N.attn_{q,k,v}.bias (qwen2) */
    bool qk_norm;       /* blk.N.attn_{q,k}_norm.weight (qwen3, gemma3) */
    bool post_norms;    /* blk.N.post_attention_norm / post_ffw_norm.weight (gemma3) */
    bool rope_freqs_ok; /* rope_freqs.weight may be present (llama.cpp's llama loader) */
};
/* Binds the tensors of a pre-norm decoder (llama.cpp names): token_embd, output_norm, output
 * (absent: tied to token_embd), rope_freqs when allowed, and per block the norms, Q/K/V/O and
 * the gated FFN, plus the extras `want` names; allocates w->layers. 0, or -1 with e set
 * (nothing left allocated). */
int arch_bind_blocks(const struct gguf_file *f, const struct model_hparams *hp,
                     const struct arch_tensors *want, struct model_weights *w, struct adakv_err *e);
bool arch_type_is_matrix(uint32_t type); /* a weight type the matmul kernels support */

#endif
