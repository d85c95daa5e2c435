/* gemma3 (Gemma 3 text models, e.g. Gemma 3 270M), as llama.cpp builds it
 * (src/models/gemma3.cpp, llama-model.cpp, llama-hparams.cpp at the goldens' commit):
 *
 *   x = embed(token) * sqrt(n_embd)
 *   per layer: h = rmsnorm(x) * attn_norm; q, k, v = h W_q, h W_k, h W_v;
 *              q, k RMS-normalised per head (attn_q_norm, attn_k_norm), then NEOX RoPE with the
 *              layer's base; attention (causal; on sliding layers a window of n_swa positions)
 *              with scale 1/sqrt(head_dim); x += rmsnorm(attn W_o) * post_attention_norm;
 *              h = rmsnorm(x) * ffn_norm; x += rmsnorm((gelu_tanh(h W_gate) * h W_up) W_down)
 *                                               * post_ffw_norm
 *   logits = rmsnorm(x) * output_norm W_out (tied to token_embd when output.weight is absent),
 *            soft-capped when the file has final_logit_softcapping.
 *
 * Norm weights are used as stored: Gemma's norms multiply by (1 + w), and llama.cpp's converter
 * already adds the 1 (Gemma3Model norm_shift; ecosystem.md 1.4), as the stored values show
 * (Gemma 3 270M: attn_norm weights 7.4 .. 62.5).
 *
 * Sliding-window layers: with attention.sliding_window = N > 0, layer il slides when
 * il % P < P - 1 for the pattern P (attention.sliding_window_pattern, default 6: five sliding
 * layers, then a global one), or as the per-layer array of that key says. Sliding layers use
 * RoPE base rope.freq_base_swa (default 10000) and never scale positions; global layers use
 * rope.freq_base with the file's linear scaling. */
#include <math.h>
#include <stdio.h>

#include "arch.h"

#define PX "gemma3"

/* Default of llama.cpp's load_swa_pattern(ml, 6) for gemma3. */
enum { SWA_PATTERN_DEFAULT = 6 };

/* Which layers slide: is_swa[il] for il < n_layer. 0, or -1 with e set. */
static int swa_layers(const struct gguf_file *f, int n_layer, bool *is_swa, struct adakv_err *e) {
    const char *key = PX ".attention.sliding_window_pattern";
    const struct gguf_kv *kv = gguf_find(f, key);
    if (kv && kv->type == GGUF_TYPE_ARRAY) { /* one flag per layer */
        if (kv->arr_n != (uint64_t)n_layer)
            return err_set(e, "%s: metadata key '%s' has %llu entries, expected one per layer (%d)",
                           f->path, key, (unsigned long long)kv->arr_n, n_layer);
        for (int il = 0; il < n_layer; il++) {
            int64_t v;
            if (!gguf_arr_i64(kv, (uint64_t)il, &v))
                return err_set(e, "%s: metadata key '%s' must be an array of integers or bools",
                               f->path, key);
            is_swa[il] = v != 0;
        }
        return 0;
    }
    uint64_t pattern = SWA_PATTERN_DEFAULT;
    if (kv && gguf_get_u64(f, key, &pattern, e))
        return -1;
    if (pattern > ARCH_MAX_LAYER)
        return err_set(e, "%s: metadata key '%s' = %llu is out of range [0, %d]", f->path, key,
                       (unsigned long long)pattern, ARCH_MAX_LAYER);
    /* llama_hparams::set_swa_pattern: 0 means every layer slides */
    for (int il = 0; il < n_layer; il++)
        is_swa[il] = pattern == 0 || (uint64_t)il % pattern < pattern - 1;
    return 0;
}

/* Keys for sliding layers that would give them other head dimensions: not supported. */
static int refuse_swa_dims(const struct gguf_file *f, const struct model_hparams *hp,
                           struct adakv_err *e) {
    static const char *const keys[] = {"attention.key_length_swa", "attention.value_length_swa",
                                       "rope.dimension_count_swa"};
    for (int i = 0; i < 3; i++) {
        int v, want = i < 2 ? hp->head_dim : hp->n_rot;
        if (arch_get_dim(f, PX, keys[i], want, 1 << 16, &v, e))
            return -1;
        if (v != want)
            return err_set(e, "%s: " PX ".%s %d differs from the global layers' %d (not supported)",
                           f->path, keys[i], v, want);
    }
    return 0;
}

static int gemma3_load_hparams(const struct gguf_file *f, struct model_hparams *hp,
                               struct adakv_err *e) {
    if (arch_load_common(f, PX, hp, e) || arch_get_rope_scaling(f, PX, false, hp, e))
        return -1;
    hp->rope_pairing = ROPE_PAIRING_NEOX; /* llama.cpp llama_model_rope_type: gemma3 is NEOX */
    arch_hparams_defaults(hp);
    hp->ffn_act = FFN_ACT_GEGLU_TANH;
    hp->embd_scale = sqrtf((float)hp->n_embd);
    /* gemma_pytorch's query_pre_attn_scalar, as llama.cpp encodes it: n_embd / n_head for the
     * 27B model (62 layers), head_dim for every other size */
    hp->attn_scale = hp->n_layer == 62 ? 1.0f / sqrtf((float)(hp->n_embd / hp->n_head))
                                       : 1.0f / sqrtf((float)hp->head_dim);
    const char *cap_key = PX ".final_logit_softcapping";
    if (gguf_find(f, cap_key)) {
        if (gguf_get_f32(f, cap_key, &hp->logit_softcap, e))
            return -1;
        if (!isfinite(hp->logit_softcap) || hp->logit_softcap < 0.0f)
            return err_set(e, "%s: metadata key '%s' = %g must be >= 0", f->path, cap_key,
                           (double)hp->logit_softcap);
    }
    const char *win_key = PX ".attention.sliding_window";
    uint64_t window = 0;
    if (gguf_find(f, win_key) && gguf_get_u64(f, win_key, &window, e))
        return -1;
    if (window == 0) /* absent or 0: every layer global, llama.cpp's LLAMA_SWA_TYPE_NONE */
        return 0;
    if (window > INT32_MAX / 2)
        return err_set(e, "%s: metadata key '%s' = %llu is too large", f->path, win_key,
                       (unsigned long long)window);
    float base_swa;
    bool is_swa[ARCH_MAX_LAYER];
    if (refuse_swa_dims(f, hp, e) ||
        arch_get_float(f, PX, "rope.freq_base_swa", 10000.0f, &base_swa, e) ||
        swa_layers(f, hp->n_layer, is_swa, e))
        return -1;
    for (int il = 0; il < hp->n_layer; il++)
        if (is_swa[il]) /* llama.cpp: rope_freq_scale_train_swa is always 1 */
            hp->layer[il] = (struct layer_hparams){
                .window = (int)window, .rope_base = base_swa, .rope_freq_scale = 1.0f};
    return 0;
}

static int gemma3_bind_tensors(const struct gguf_file *f, const struct model_hparams *hp,
                               struct model_weights *w, struct adakv_err *e) {
    /* EmbeddingGemma's extra projections belong to another graph: refuse, never skip */
    static const char *const foreign[] = {"dense_2.weight", "dense_3.weight"};
    for (int i = 0; i < 2; i++)
        if (gguf_find_tensor(f, foreign[i]))
            return err_set(e, "%s: tensor '%s' is not part of the gemma3 architecture", f->path,
                           foreign[i]);
    const struct arch_tensors want = {
        .arch = PX, .qkv_bias = false, .qk_norm = true, .post_norms = true, .rope_freqs_ok = false};
    return arch_bind_blocks(f, hp, &want, w, e);
}

const struct arch arch_gemma3 = {
    .name = "gemma3",
    .load_hparams = gemma3_load_hparams,
    .bind_tensors = gemma3_bind_tensors,
};
