/* Tensor binding shared by the arch files of models/: look a tensor up by its canonical name and
 * check its type and shape before anything reads it, so a mismatched file fails at load with one
 * line naming the tensor, what was expected and what the file holds. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "matmul.h"
#include "tensor-type.h"

bool arch_type_is_f32(uint32_t type) {
    return type == TENSOR_TYPE_F32;
}

bool arch_type_is_matrix(uint32_t type) {
    return matmul_type_supported(type);
}

static void shape_str(char *buf, size_t size, int n_dims, const uint64_t *ne) {
    int off = snprintf(buf, size, "[");
    for (int i = 0; i < n_dims && off > 0 && (size_t)off < size; i++)
        off += snprintf(buf + off, size - off, "%s%" PRIu64, i ? ", " : "", ne[i]);
    if (off > 0 && (size_t)off < size)
        snprintf(buf + off, size - off, "]");
}

int arch_bind_tensor(const struct gguf_file *f, const char *name, int n_dims, const int64_t *ne,
                     bool (*type_ok)(uint32_t type), const char *type_desc, bool required,
                     const struct gguf_tensor **out, struct adakv_err *e) {
    const struct gguf_tensor *t = gguf_find_tensor(f, name);
    *out = NULL;
    if (!t) {
        if (required)
            return err_set(e, "%s: missing tensor '%s'", f->path, name);
        return 0;
    }
    /* Trailing dims of size 1 are the same shape (writers differ in n_dims for vectors). */
    bool same = t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS;
    for (int i = 0; same && i < GGUF_MAX_DIMS; i++) {
        const uint64_t want = i < n_dims ? (uint64_t)ne[i] : 1;
        same = t->ne[i] == want;
    }
    if (!same) {
        uint64_t want[GGUF_MAX_DIMS];
        for (int i = 0; i < n_dims; i++)
            want[i] = (uint64_t)ne[i];
        char a[96], b[96];
        shape_str(a, sizeof a, n_dims, want);
        shape_str(b, sizeof b, (int)t->n_dims, t->ne);
        return err_set(e, "%s: tensor '%s' has shape %s, expected %s", f->path, name, b, a);
    }
    if (!type_ok(t->type))
        return err_set(e, "%s: tensor '%s' has type %s, expected %s", f->path, name,
                       tensor_type_name(t->type), type_desc);
    *out = t;
    return 0;
}

static int bind_layer(const struct arch_tensors *want, const struct gguf_file *f,
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
        bool wanted; /* this arch has it (and then requires it) */
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
        {"attn_q.bias", 1, {q, 1}, false, want->qkv_bias, &l->bq},
        {"attn_k.bias", 1, {kv, 1}, false, want->qkv_bias, &l->bk},
        {"attn_v.bias", 1, {kv, 1}, false, want->qkv_bias, &l->bv},
        {"attn_q_norm", 1, {hp->head_dim, 1}, false, want->qk_norm, &l->q_norm},
        {"attn_k_norm", 1, {hp->head_dim, 1}, false, want->qk_norm, &l->k_norm},
        {"post_attention_norm", 1, {d, 1}, false, want->post_norms, &l->attn_post_norm},
        {"post_ffw_norm", 1, {d, 1}, false, want->post_norms, &l->ffn_post_norm},
    };
    for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++) {
        char name[GGUF_MAX_NAME + 1];
        const bool bias = strchr(spec[i].suffix, '.') != NULL;
        snprintf(name, sizeof name, bias ? "blk.%d.%s" : "blk.%d.%s.weight", il, spec[i].suffix);
        if (!spec[i].wanted) { /* present in the file but not in this arch: refuse, never skip */
            if (gguf_find_tensor(f, name))
                return err_set(e, "%s: tensor '%s' is not part of the %s architecture", f->path,
                               name, want->arch);
            continue;
        }
        if (arch_bind_tensor(f, name, spec[i].n_dims, spec[i].ne,
                             spec[i].matrix ? arch_type_is_matrix : arch_type_is_f32,
                             spec[i].matrix ? mat : "F32", true, spec[i].out, e))
            return -1;
    }
    return 0;
}

int arch_bind_blocks(const struct gguf_file *f, const struct model_hparams *hp,
                     const struct arch_tensors *want, struct model_weights *w,
                     struct adakv_err *e) {
    memset(w, 0, sizeof *w);
    const int64_t d = hp->n_embd;
    const char *mat = "a supported weight type";
    if (hp->n_vocab <= 0) /* no vocab key and no token list: believe the embedding table */
        return err_set(e,
                       "%s: cannot tell the vocabulary size (no %s.vocab_size and no "
                       "tokenizer.ggml.tokens)",
                       f->path, want->arch);
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
    if (!want->rope_freqs_ok && gguf_find_tensor(f, "rope_freqs.weight"))
        return err_set(e, "%s: tensor 'rope_freqs.weight' is not part of the %s architecture",
                       f->path, want->arch);
    if (arch_bind_tensor(f, "rope_freqs.weight", 1, rf_ne, arch_type_is_f32, "F32", false,
                         &w->rope_freqs, e))
        return -1;
    w->layers = calloc((size_t)hp->n_layer, sizeof *w->layers);
    if (!w->layers)
        return err_set(e, "%s: out of memory for %d layers", f->path, hp->n_layer);
    for (int il = 0; il < hp->n_layer; il++) {
        if (bind_layer(want, f, hp, il, &w->layers[il], e)) {
            free(w->layers);
            w->layers = NULL;
            return -1;
        }
    }
    return 0;
}
