/* The llama family: llama (Llama 2/3, SmolLM2, Mistral), qwen2 (Qwen2, Qwen2.5) and qwen3 (dense
 * Qwen3). Same blocks (RMSNorm, grouped-query attention with RoPE, SwiGLU, tied or separate
 * head), GGUF keys under "<arch>.", tensor names from llama.cpp's llama-arch.cpp. They differ in
 * three details, one descriptor each: llama rotates adjacent pairs (NORM: llama.cpp's converter
 * permutes Q/K rows back to Meta's interleaved layout) while the Qwens rotate halves (NEOX);
 * qwen2 adds biases to Q, K and V; qwen3 RMS-normalises each Q and K head before RoPE. Defaults
 * follow llama.cpp when an optional key is absent (ecosystem.md 1.2); the keys and tensors all
 * decoder-only archs share are read and bound by src/model/arch-hparams.c and
 * src/model/arch-bind.c. */
#include "arch.h"

struct family {
    const char *prefix; /* metadata key namespace, = general.architecture */
    enum rope_pairing rope_pairing;
    bool qkv_bias; /* blk.N.attn_{q,k,v}.bias */
    bool qk_norm;  /* blk.N.attn_{q,k}_norm.weight */
};

static const struct family fam_llama = {"llama", ROPE_PAIRING_NORM, false, false};
static const struct family fam_qwen2 = {"qwen2", ROPE_PAIRING_NEOX, true, false};
static const struct family fam_qwen3 = {"qwen3", ROPE_PAIRING_NEOX, false, true};

static int load_hparams(const struct family *fam, const struct gguf_file *f,
                        struct model_hparams *hp, struct adakv_err *e) {
    if (arch_load_common(f, fam->prefix, hp, e) ||
        arch_get_rope_scaling(f, fam->prefix, true, hp, e))
        return -1;
    hp->rope_pairing = fam->rope_pairing;
    arch_hparams_defaults(hp); /* every layer global, with the model's RoPE; SwiGLU */
    return 0;
}

static int bind_tensors(const struct family *fam, const struct gguf_file *f,
                        const struct model_hparams *hp, struct model_weights *w,
                        struct adakv_err *e) {
    const struct arch_tensors want = {.arch = fam->prefix,
                                      .qkv_bias = fam->qkv_bias,
                                      .qk_norm = fam->qk_norm,
                                      .post_norms = false,
                                      .rope_freqs_ok = true};
    return arch_bind_blocks(f, hp, &want, w, e);
}

#define FAMILY_ARCH(fam)                                                                           \
    static int fam##_load_hparams(const struct gguf_file *f, struct model_hparams *hp,             \
                                  struct adakv_err *e) {                                           \
        return load_hparams(&fam_##fam, f, hp, e);                                                 \
    }                                                                                              \
    static int fam##_bind_tensors(const struct gguf_file *f, const struct model_hparams *hp,       \
                                  struct model_weights *w, struct adakv_err *e) {                  \
        return bind_tensors(&fam_##fam, f, hp, w, e);                                              \
    }                                                                                              \
    const struct arch arch_##fam = {                                                               \
        .name = #fam,                                                                              \
        .load_hparams = fam##_load_hparams,                                                        \
        .bind_tensors = fam##_bind_tensors,                                                        \
    };

/* One arch per family member: the registry's entries point here. */
FAMILY_ARCH(llama)
FAMILY_ARCH(qwen2)
FAMILY_ARCH(qwen3)
