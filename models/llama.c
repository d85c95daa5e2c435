/* The llama architecture (Llama 2/3, SmolLM2, Mistral): GGUF keys under "llama.", tensor names
 * from llama.cpp's llama-arch.cpp, NORM (adjacent-pair) RoPE because llama.cpp's converter
 * permutes Q/K rows back to Meta's interleaved layout. Defaults follow llama.cpp when an
 * optional key is absent (ecosystem.md 1.2). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"

/* Upper limits that keep every product of dimensions far inside int and size_t. */
#define MAX_EMBD     (1 << 16)
#define MAX_LAYER    1024
#define MAX_HEAD     1024
#define MAX_HEAD_DIM 1024
#define MAX_FF       (1 << 20)
#define MAX_VOCAB    (1 << 24)

/* Integer key `llama.<suffix>` in [1, max] (or [0, max] when zero_ok). Absent: *out = def and 0
 * if def >= 0, else an error. */
static int get_dim(const struct gguf_file *f, const char *suffix, int def, int max, int *out,
                   struct adakv_err *e) {
    char key[128];
    snprintf(key, sizeof key, "llama.%s", suffix);
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

static int get_float(const struct gguf_file *f, const char *key, float def, float *out,
                     struct adakv_err *e) {
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

/* RoPE scaling: none, or linear (positions divided by the factor). YaRN and LongRoPE need
 * extra terms adakv does not implement, so they are refused rather than run wrong. */
static int get_rope_scaling(const struct gguf_file *f, struct model_hparams *hp,
                            struct adakv_err *e) {
    float factor = 1.0f;
    if (get_float(f, "llama.rope.scale_linear", 1.0f, &factor, e))
        return -1;
    struct gguf_str type = {4, "none"};
    if (gguf_find(f, "llama.rope.scaling.type") &&
        gguf_get_str(f, "llama.rope.scaling.type", &type, e))
        return -1;
    if (gguf_str_eq(type, "linear")) {
        if (get_float(f, "llama.rope.scaling.factor", factor, &factor, e))
            return -1;
    } else if (!gguf_str_eq(type, "none")) {
        return err_set(e,
                       "%s: llama.rope.scaling.type '%.*s' is not supported (supported: none, "
                       "linear)",
                       f->path, (int)(type.len > 64 ? 64 : type.len), type.ptr);
    }
    hp->rope_freq_scale = 1.0f / factor;
    return 0;
}

static int llama_load_hparams(const struct gguf_file *f, struct model_hparams *hp,
                              struct adakv_err *e) {
    memset(hp, 0, sizeof *hp);
    hp->rope_pairing = ROPE_PAIRING_NORM;
    if (get_dim(f, "embedding_length", -1, MAX_EMBD, &hp->n_embd, e) ||
        get_dim(f, "block_count", -1, MAX_LAYER, &hp->n_layer, e) ||
        get_dim(f, "feed_forward_length", -1, MAX_FF, &hp->n_ff, e) ||
        get_dim(f, "attention.head_count", -1, MAX_HEAD, &hp->n_head, e) ||
        get_dim(f, "context_length", -1, INT32_MAX / 2, &hp->n_ctx_train, e) ||
        get_dim(f, "attention.head_count_kv", hp->n_head, MAX_HEAD, &hp->n_head_kv, e))
        return -1;
    if (hp->n_head % hp->n_head_kv)
        return err_set(e, "%s: llama.attention.head_count %d is not a multiple of head_count_kv %d",
                       f->path, hp->n_head, hp->n_head_kv);
    const int hd_default = hp->n_embd % hp->n_head == 0 ? hp->n_embd / hp->n_head : -1;
    int v_dim;
    if (get_dim(f, "attention.key_length", hd_default, MAX_HEAD_DIM, &hp->head_dim, e) ||
        get_dim(f, "attention.value_length", hp->head_dim, MAX_HEAD_DIM, &v_dim, e) ||
        get_dim(f, "rope.dimension_count", hp->head_dim, MAX_HEAD_DIM, &hp->n_rot, e))
        return -1;
    if (v_dim != hp->head_dim)
        return err_set(e,
                       "%s: llama.attention.value_length %d differs from key_length %d "
                       "(not supported)",
                       f->path, v_dim, hp->head_dim);
    if (hp->n_rot % 2 || hp->n_rot > hp->head_dim)
        return err_set(e,
                       "%s: llama.rope.dimension_count %d must be even and at most the head "
                       "dimension %d",
                       f->path, hp->n_rot, hp->head_dim);
    /* vocab: explicit key, else the token list, else (in bind) token_embd's second dim. */
    if (get_dim(f, "vocab_size", 0, MAX_VOCAB, &hp->n_vocab, e))
        return -1;
    if (!hp->n_vocab) {
        const struct gguf_kv *toks = gguf_find(f, "tokenizer.ggml.tokens");
        if (toks && toks->type == GGUF_TYPE_ARRAY && toks->arr_n <= MAX_VOCAB)
            hp->n_vocab = (int)toks->arr_n;
    }
    if (get_float(f, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &hp->norm_eps, e) ||
        get_float(f, "llama.rope.freq_base", 10000.0f, &hp->rope_base, e))
        return -1;
    return get_rope_scaling(f, hp, e);
}

static int bind_layer(const struct gguf_file *f, const struct model_hparams *hp, int il,
                      struct model_layer *l, struct adakv_err *e) {
    const int64_t d = hp->n_embd, q = (int64_t)hp->n_head * hp->head_dim;
    const int64_t kv = (int64_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff;
    const char *mat = "a supported weight type";
    struct {
        const char *suffix;
        int n_dims;
        int64_t ne[2];
        bool matrix;
        const struct gguf_tensor **out;
    } const spec[] = {
        {"attn_norm", 1, {d, 1}, false, &l->attn_norm},
        {"attn_q", 2, {d, q}, true, &l->wq},
        {"attn_k", 2, {d, kv}, true, &l->wk},
        {"attn_v", 2, {d, kv}, true, &l->wv},
        {"attn_output", 2, {q, d}, true, &l->wo},
        {"ffn_norm", 1, {d, 1}, false, &l->ffn_norm},
        {"ffn_gate", 2, {d, ff}, true, &l->w_gate},
        {"ffn_up", 2, {d, ff}, true, &l->w_up},
        {"ffn_down", 2, {ff, d}, true, &l->w_down},
    };
    for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++) {
        char name[GGUF_MAX_NAME + 1];
        snprintf(name, sizeof name, "blk.%d.%s.weight", il, spec[i].suffix);
        if (arch_bind_tensor(f, name, spec[i].n_dims, spec[i].ne,
                             spec[i].matrix ? arch_type_is_matrix : arch_type_is_f32,
                             spec[i].matrix ? mat : "F32", true, spec[i].out, e))
            return -1;
    }
    return 0;
}

static int llama_bind_tensors(const struct gguf_file *f, const struct model_hparams *hp,
                              struct model_weights *w, struct adakv_err *e) {
    memset(w, 0, sizeof *w);
    const int64_t d = hp->n_embd;
    const char *mat = "a supported weight type";
    if (hp->n_vocab <= 0) /* no vocab key and no token list: believe the embedding table */
        return err_set(e,
                       "%s: cannot tell the vocabulary size (no llama.vocab_size and no "
                       "tokenizer.ggml.tokens)",
                       f->path);
    const int64_t embd_ne[2] = {d, hp->n_vocab}, vec_ne[1] = {d};
    if (arch_bind_tensor(f, "token_embd.weight", 2, embd_ne, arch_type_is_matrix, mat, true,
                         &w->token_embd, e) ||
        arch_bind_tensor(f, "output_norm.weight", 1, vec_ne, arch_type_is_f32, "F32", true,
                         &w->output_norm, e) ||
        arch_bind_tensor(f, "output.weight", 2, embd_ne, arch_type_is_matrix, mat, false,
                         &w->output, e))
        return -1;
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
        if (bind_layer(f, hp, il, &w->layers[il], e)) {
            free(w->layers);
            w->layers = NULL;
            return -1;
        }
    }
    return 0;
}

const struct arch arch_llama = {
    .name = "llama",
    .rope_pairing = ROPE_PAIRING_NORM,
    .load_hparams = llama_load_hparams,
    .bind_tensors = llama_bind_tensors,
};
