/* Hyperparameter keys shared by the arch files of models/: the dimensions, norm epsilon, RoPE base
 * and RoPE scaling every decoder-only arch of llama.cpp stores under "<arch>." (llama-arch.cpp
 * LLM_KV_NAMES), read with llama.cpp's defaults when an optional key is absent (ecosystem.md
 * 1.2), and range-checked so that a bad file fails at load with one line naming the key. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "arch.h"

/* Upper limits that keep every product of dimensions far inside int and size_t. */
#define MAX_EMBD     (1 << 16)
#define MAX_HEAD     1024
#define MAX_HEAD_DIM 1024
#define MAX_FF       (1 << 20)
#define MAX_VOCAB    (1 << 24)
/* Training contexts: the longest in use are ~10M tokens (Llama 4 Scout); above this the key is
 * garbage, and a default -c derived from it would be too. */
#define MAX_CTX_TRAIN (1 << 26)

int arch_get_dim(const struct gguf_file *f, const char *prefix, const char *suffix, int def,
                 int max, int *out, struct adakv_err *e) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", prefix, suffix);
    if (!gguf_find(f, key)) {
        if (def < 0)
            return err_set(e, "%s: missing metadata key '%s'", f->path, key);
        *out = def;
        return 0;
    }
    uint64_t v;
    if (gguf_get_u64(f, key, &v, e))
        return -1;
    if (v < 1 || v > (uint64_t)max)
        return err_set(e, "%s: metadata key '%s' = %llu is out of range [1, %d]", f->path, key,
                       (unsigned long long)v, max);
    *out = (int)v;
    return 0;
}

int arch_get_float(const struct gguf_file *f, const char *prefix, const char *suffix, float def,
                   float *out, struct adakv_err *e) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", prefix, suffix);
    if (!gguf_find(f, key)) {
        *out = def;
        return 0;
    }
    if (gguf_get_f32(f, key, out, e))
        return -1;
    if (!isfinite(*out) || *out <= 0.0f)
        return err_set(e, "%s: metadata key '%s' = %g must be a positive number", f->path, key,
                       (double)*out);
    return 0;
}

/* One end of YaRN's correction range: the pair index whose wavelength makes n_rot full turns in
 * the original context (ggml_rope_yarn_corr_dim, in float as ggml computes it). */
static float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
    return (float)n_dims * logf((float)n_ctx_orig / (n_rot * 2.0f * (float)M_PI)) /
           (2.0f * logf(base));
}

/* RoPE scaling as llama.cpp reads it: the type (absent = linear), the factor
 * (rope.scaling.factor, or the old rope.scale_linear), rope.scaling.attn_factor, and for YaRN
 * the original context (rope.scaling.original_context_length, default the training context)
 * with llama.cpp's defaults beta_fast 32, beta_slow 1, ext_factor 1; the other yarn_* keys are
 * not read by llama.cpp for these archs, so not here either. LongRoPE and the rest need terms
 * adakv does not implement: refused rather than run wrong. */
int arch_get_rope_scaling(const struct gguf_file *f, const char *prefix, bool yarn_ok,
                          struct model_hparams *hp, struct adakv_err *e) {
    float factor = 1.0f, attn = 1.0f;
    if (arch_get_float(f, prefix, "rope.scale_linear", 1.0f, &factor, e) || /* the old key */
        arch_get_float(f, prefix, "rope.scaling.factor", factor, &factor, e) ||
        arch_get_float(f, prefix, "rope.scaling.attn_factor", 1.0f, &attn, e))
        return -1;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", prefix);
    struct gguf_str type = {6, "linear"};
    if (gguf_find(f, key) && gguf_get_str(f, key, &type, e))
        return -1;
    hp->rope_freq_scale = 1.0f / factor;
    hp->rope_attn_factor = attn;
    hp->yarn_ext_factor = 0.0f;
    if (gguf_str_eq(type, "none")) {
        hp->rope_freq_scale = 1.0f; /* llama.cpp: never scale with type none */
    } else if (gguf_str_eq(type, "yarn") && yarn_ok) {
        int n_ctx_orig;
        if (arch_get_dim(f, prefix, "rope.scaling.original_context_length", hp->n_ctx_train,
                         INT32_MAX / 2, &n_ctx_orig, e))
            return -1;
        hp->yarn_ext_factor = 1.0f;
        /* llama.cpp's attention factor for YaRN without a log multiplier: mscale(factor) over
         * the 1 + 0.1 ln(factor) that the rope op multiplies in again (about 1) */
        const float mscale = factor <= 1.0f ? 1.0f : 0.1f * logf(factor) + 1.0f;
        hp->rope_attn_factor = mscale * (1.0f / (1.0f + 0.1f * logf(factor))) * attn;
        const float lo = floorf(yarn_corr_dim(hp->n_rot, n_ctx_orig, 32.0f, hp->rope_base));
        const float hi = ceilf(yarn_corr_dim(hp->n_rot, n_ctx_orig, 1.0f, hp->rope_base));
        hp->yarn_corr[0] = fmaxf(0.0f, lo);
        hp->yarn_corr[1] = fminf((float)(hp->n_rot - 1), hi);
    } else if (!gguf_str_eq(type, "linear")) {
        return err_set(e, "%s: %s '%.*s' is not supported (supported: none, linear%s)", f->path,
                       key, (int)(type.len > 64 ? 64 : type.len), type.ptr,
                       yarn_ok ? ", yarn" : "");
    }
    return 0;
}

int arch_load_common(const struct gguf_file *f, const char *px, struct model_hparams *hp,
                     struct adakv_err *e) {
    memset(hp, 0, sizeof *hp);
    if (arch_get_dim(f, px, "embedding_length", -1, MAX_EMBD, &hp->n_embd, e) ||
        arch_get_dim(f, px, "block_count", -1, ARCH_MAX_LAYER, &hp->n_layer, e) ||
        arch_get_dim(f, px, "feed_forward_length", -1, MAX_FF, &hp->n_ff, e) ||
        arch_get_dim(f, px, "attention.head_count", -1, MAX_HEAD, &hp->n_head, e) ||
        arch_get_dim(f, px, "context_length", -1, MAX_CTX_TRAIN, &hp->n_ctx_train, e) ||
        arch_get_dim(f, px, "attention.head_count_kv", hp->n_head, MAX_HEAD, &hp->n_head_kv, e))
        return -1;
    if (hp->n_head % hp->n_head_kv)
        return err_set(e, "%s: %s.attention.head_count %d is not a multiple of head_count_kv %d",
                       f->path, px, hp->n_head, hp->n_head_kv);
    char key[128];
    snprintf(key, sizeof key, "%s.attention.key_length", px);
    if (hp->n_embd % hp->n_head && !gguf_find(f, key)) /* no head dimension to fall back on */
        return err_set(e,
                       "%s: %s.embedding_length %d is not a multiple of attention.head_count %d "
                       "and there is no %s",
                       f->path, px, hp->n_embd, hp->n_head, key);
    const int hd_default = hp->n_embd / hp->n_head;
    int v_dim;
    if (arch_get_dim(f, px, "attention.key_length", hd_default, MAX_HEAD_DIM, &hp->head_dim, e) ||
        arch_get_dim(f, px, "attention.value_length", hp->head_dim, MAX_HEAD_DIM, &v_dim, e) ||
        arch_get_dim(f, px, "rope.dimension_count", hp->head_dim, MAX_HEAD_DIM, &hp->n_rot, e))
        return -1;
    if (v_dim != hp->head_dim)
        return err_set(e,
                       "%s: %s.attention.value_length %d differs from key_length %d "
                       "(not supported)",
                       f->path, px, v_dim, hp->head_dim);
    if (hp->n_rot % 2 || hp->n_rot > hp->head_dim)
        return err_set(e,
                       "%s: %s.rope.dimension_count %d must be even and at most the head "
                       "dimension %d",
                       f->path, px, hp->n_rot, hp->head_dim);
    /* vocab: explicit key, else the token list, else (in bind) token_embd's second dim. */
    if (arch_get_dim(f, px, "vocab_size", 0, MAX_VOCAB, &hp->n_vocab, e))
        return -1;
    if (!hp->n_vocab) {
        const struct gguf_kv *toks = gguf_find(f, "tokenizer.ggml.tokens");
        if (toks && toks->type == GGUF_TYPE_ARRAY && toks->arr_n <= MAX_VOCAB)
            hp->n_vocab = (int)toks->arr_n;
    }
    return arch_get_float(f, px, "attention.layer_norm_rms_epsilon", 1e-5f, &hp->norm_eps, e) ||
                   arch_get_float(f, px, "rope.freq_base", 10000.0f, &hp->rope_base, e)
               ? -1
               : 0;
}

void arch_hparams_defaults(struct model_hparams *hp) {
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->embd_scale = 1.0f;
    hp->logit_softcap = 0.0f;
    hp->ffn_act = FFN_ACT_SWIGLU;
    for (int il = 0; il < hp->n_layer; il++)
        hp->layer[il] = (struct layer_hparams){
            .window = 0, .rope_base = hp->rope_base, .rope_freq_scale = hp->rope_freq_scale};
}
