/* The llama family: llama (Llama 2/3, SmolLM2, Mistral), qwen2 (Qwen2, Qwen2.5) and qwen3 (dense
 * Qwen3). Same blocks (RMSNorm, grouped-query attention with RoPE, SwiGLU, tied or separate
 * head), GGUF keys under "<arch>.", tensor names from llama.cpp's llama-arch.cpp. They differ in
 * three details, one descriptor each: llama rotates adjacent pairs (NORM: llama.cpp's converter
 * permutes Q/K rows back to Meta's interleaved layout) while the Qwens rotate halves (NEOX);
 * qwen2 adds biases to Q, K and V; qwen3 RMS-normalises each Q and K head before RoPE. Defaults
 * follow llama.cpp when an optional key is absent (ecosystem.md 1.2). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Upper limits that keep every product of dimensions far inside int and size_t. */
#define MAX_EMBD     (1 << 16)
#define MAX_LAYER    1024
#define MAX_HEAD     1024
#define MAX_HEAD_DIM 1024
#define MAX_FF       (1 << 20)
#define MAX_VOCAB    (1 << 24)

/* Integer key `<prefix>.<suffix>` in [1, max]. Absent: *out = def and 0 if def >= 0, else an
 * error. */
static int get_dim(const struct gguf_file *f, const char *prefix, const char *suffix, int def,
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

/* Float key `<prefix>.<suffix>`, positive and finite. Absent: *out = def. */
static int get_float(const struct gguf_file *f, const char *prefix, const char *suffix, float def,
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

/* RoPE scaling as llama.cpp reads it for these archs: the type (absent = linear), the factor
 * (rope.scaling.factor, or the old rope.scale_linear), rope.scaling.attn_factor, and for YaRN
 * the original context (rope.scaling.original_context_length, default the training context)
 * with llama.cpp's defaults beta_fast 32, beta_slow 1, ext_factor 1; the other yarn_* keys are
 * not read by llama.cpp for these archs, so not here either. LongRoPE and the rest need terms
 * adakv does not implement: refused rather than run wrong. */
static int get_rope_scaling(const struct gguf_file *f, const char *prefix, struct model_hparams *hp,
                            struct adakv_err *e) {
    float factor = 1.0f, attn = 1.0f;
    if (get_float(f, prefix, "rope.scale_linear", 1.0f, &factor, e) || /* the old key */
        get_float(f, prefix, "rope.scaling.factor", factor, &factor, e) ||
        get_float(f, prefix, "rope.scaling.attn_factor", 1.0f, &attn, e))
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
    } else if (gguf_str_eq(type, "yarn")) {
        int n_ctx_orig;
        if (get_dim(f, prefix, "rope.scaling.original_context_length", hp->n_ctx_train,
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
        return err_set(e, "%s: %s '%.*s' is not supported (supported: none, linear, yarn)", f->path,
                       key, (int)(type.len > 64 ? 64 : type.len), type.ptr);
    }
    return 0;
}

static int load_hparams(const struct family *fam, const struct gguf_file *f,
                        struct model_hparams *hp, struct adakv_err *e) {
    const char *px = fam->prefix;
    memset(hp, 0, sizeof *hp);
    hp->rope_pairing = fam->rope_pairing;
    if (get_dim(f, px, "embedding_length", -1, MAX_EMBD, &hp->n_embd, e) ||
        get_dim(f, px, "block_count", -1, MAX_LAYER, &hp->n_layer, e) ||
        get_dim(f, px, "feed_forward_length", -1, MAX_FF, &hp->n_ff, e) ||
        get_dim(f, px, "attention.head_count", -1, MAX_HEAD, &hp->n_head, e) ||
        get_dim(f, px, "context_length", -1, INT32_MAX / 2, &hp->n_ctx_train, e) ||
        get_dim(f, px, "attention.head_count_kv", hp->n_head, MAX_HEAD, &hp->n_head_kv, e))
        return -1;
    if (hp->n_head % hp->n_head_kv)
        return err_set(e, "%s: %s.attention.head_count %d is not a multiple of head_count_kv %d",
                       f->path, px, hp->n_head, hp->n_head_kv);
    const int hd_default = hp->n_embd % hp->n_head == 0 ? hp->n_embd / hp->n_head : -1;
    int v_dim;
    if (get_dim(f, px, "attention.key_length", hd_default, MAX_HEAD_DIM, &hp->head_dim, e) ||
        get_dim(f, px, "attention.value_length", hp->head_dim, MAX_HEAD_DIM, &v_dim, e) ||
        get_dim(f, px, "rope.dimension_count", hp->head_dim, MAX_HEAD_DIM, &hp->n_rot, e))
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
    if (get_dim(f, px, "vocab_size", 0, MAX_VOCAB, &hp->n_vocab, e))
        return -1;
    if (!hp->n_vocab) {
        const struct gguf_kv *toks = gguf_find(f, "tokenizer.ggml.tokens");
        if (toks && toks->type == GGUF_TYPE_ARRAY && toks->arr_n <= MAX_VOCAB)
            hp->n_vocab = (int)toks->arr_n;
    }
    if (get_float(f, px, "attention.layer_norm_rms_epsilon", 1e-5f, &hp->norm_eps, e) ||
        get_float(f, px, "rope.freq_base", 10000.0f, &hp->rope_base, e))
        return -1;
    return get_rope_scaling(f, px, hp, e);
}

static int bind_layer(const struct family *fam, const struct gguf_file *f,
                      const struct model_hparams *hp, int il, struct model_layer *l,
                      struct adakv_err *e) {
    const int64_t d = hp->n_embd, q = (int64_t)hp->n_head * hp->head_dim;
    const int64_t kv = (int64_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff;
    const char *mat = "a supported weight type";
    struct {
        const char *suffix; /* "attn_q" binds blk.N.attn_q.weight; "attn_q.bias" as it says */
        int n_dims;
        int64_t ne[2];
        bool matrix;
        bool wanted; /* this family has it (and then requires it) */
        const struct gguf_tensor **out;
    } const spec[] = {
        {"attn_norm", 1, {d, 1}, false, true, &l->attn_norm},
        {"attn_q", 2, {d, q}, true, true, &l->wq},
        {"attn_k", 2, {d, kv}, true, true, &l->wk},
        {"attn_v", 2, {d, kv}, true, true, &l->wv},
        {"attn_output", 2, {q, d}, true, true, &l->wo},
        {"ffn_norm", 1, {d, 1}, false, true, &l->ffn_norm},
        {"ffn_gate", 2, {d, ff}, true, true, &l->w_gate},
        {"ffn_up", 2, {d, ff}, true, true, &l->w_up},
        {"ffn_down", 2, {ff, d}, true, true, &l->w_down},
        {"attn_q.bias", 1, {q, 1}, false, fam->qkv_bias, &l->bq},
        {"attn_k.bias", 1, {kv, 1}, false, fam->qkv_bias, &l->bk},
        {"attn_v.bias", 1, {kv, 1}, false, fam->qkv_bias, &l->bv},
        {"attn_q_norm", 1, {hp->head_dim, 1}, false, fam->qk_norm, &l->q_norm},
        {"attn_k_norm", 1, {hp->head_dim, 1}, false, fam->qk_norm, &l->k_norm},
    };
    for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++) {
        char name[GGUF_MAX_NAME + 1];
        const bool bias = strchr(spec[i].suffix, '.') != NULL;
        snprintf(name, sizeof name, bias ? "blk.%d.%s" : "blk.%d.%s.weight", il, spec[i].suffix);
        if (!spec[i].wanted) { /* present in the file but not in this arch: refuse, never skip */
            if (gguf_find_tensor(f, name))
                return err_set(e, "%s: tensor '%s' is not part of the %s architecture", f->path,
                               name, fam->prefix);
            continue;
        }
        if (arch_bind_tensor(f, name, spec[i].n_dims, spec[i].ne,
                             spec[i].matrix ? arch_type_is_matrix : arch_type_is_f32,
                             spec[i].matrix ? mat : "F32", true, spec[i].out, e))
            return -1;
    }
    return 0;
}

static int bind_tensors(const struct family *fam, const struct gguf_file *f,
                        const struct model_hparams *hp, struct model_weights *w,
                        struct adakv_err *e) {
    memset(w, 0, sizeof *w);
    const int64_t d = hp->n_embd;
    const char *mat = "a supported weight type";
    if (hp->n_vocab <= 0) /* no vocab key and no token list: believe the embedding table */
        return err_set(e,
                       "%s: cannot tell the vocabulary size (no %s.vocab_size and no "
                       "tokenizer.ggml.tokens)",
                       f->path, fam->prefix);
    const int64_t embd_ne[2] = {d, hp->n_vocab}, vec_ne[1] = {d};
    if (arch_bind_tensor(f, "token_embd.weight", 2, embd_ne, arch_type_is_matrix, mat, true,
                         &w->token_embd, e) ||
        arch_bind_tensor(f, "output_norm.weight", 1, vec_ne, arch_type_is_f32, "F32", true,
                         &w->output_norm, e) ||
        arch_bind_tensor(f, "output.weight", 2, embd_ne, arch_type_is_matrix, mat, false,
                         &w->output, e))
        return -1;
    if (gguf_find_tensor(f, "output.bias"))
        return err_set(e, "%s: tensor 'output.bias' (a biased LM head) is not supported", f->path);
    /* llama.cpp marks output.weight optional: without it the LM head is the embedding table. */
    w->tied = w->output == NULL;
    if (w->tied)
        w->output = w->token_embd;
    const int64_t rf_ne[1] = {hp->n_rot / 2};
    if (arch_bind_tensor(f, "rope_freqs.weight", 1, rf_ne, arch_type_is_f32, "F32", false,
                         &w->rope_freqs, e))
        return -1;
    w->layers = calloc((size_t)hp->n_layer, sizeof *w->layers);
    if (!w->layers)
        return err_set(e, "%s: out of memory for %d layers", f->path, hp->n_layer);
    for (int il = 0; il < hp->n_layer; il++) {
        if (bind_layer(fam, f, hp, il, &w->layers[il], e)) {
            free(w->layers);
            w->layers = NULL;
            return -1;
        }
    }
    return 0;
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
