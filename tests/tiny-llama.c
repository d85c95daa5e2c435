/* The tiny random Llama-3-shaped model (tiny-llama.h). */
#include "tiny-llama.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf-writer.h"
#include "quant.h"
#include "tensor-type.h"

/* EMBD_MAX: the llama and qwen2 width (= HEADS * HEAD_DIM); qwen3 is half as wide, so that its
 * attention is wider than its residual stream (q = 512 > n_embd = 256), as in Qwen3-0.6B. */
enum { EMBD_MAX = 512, LAYERS = 3, HEADS = 4, HEADS_KV = 1, HEAD_DIM = 128, FF = 768 };

static uint64_t rng_state;

static uint64_t next_u64(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static float uniform(void) { /* [-1, 1) */
    return (float)((next_u64() >> 40) * (2.0 / (1ull << 24)) - 1.0);
}

static void random_bytes(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(next_u64() >> 56);
}

static void put_f16(uint16_t *dst, float v) {
    *dst = quant_f32_to_f16(v);
}

/* A block scale around `base` (0.5x to 1.5x), so rows differ in magnitude. */
static float jitter(float base) {
    return base * (1.0f + 0.5f * uniform());
}

/* One block of type t with random quants and a scale that gives weights of order 0.03 g; the
 * minimum of the offset types is set so that weights are roughly centred on 0. */
static void random_block(uint32_t t, uint8_t *b, float g) {
    switch (t) {
    case TENSOR_TYPE_Q4_0: {
        struct block_q4_0 *q = (void *)b;
        random_bytes(q->qs, sizeof q->qs);
        put_f16(&q->d, jitter(g * 4e-3f));
        break;
    }
    case TENSOR_TYPE_Q4_1: {
        struct block_q4_1 *q = (void *)b;
        random_bytes(q->qs, sizeof q->qs);
        const float d = jitter(g * 4e-3f);
        put_f16(&q->d, d), put_f16(&q->m, -7.5f * d);
        break;
    }
    case TENSOR_TYPE_Q5_0: {
        struct block_q5_0 *q = (void *)b;
        random_bytes(q->qh, sizeof q->qh), random_bytes(q->qs, sizeof q->qs);
        put_f16(&q->d, jitter(g * 2e-3f));
        break;
    }
    case TENSOR_TYPE_Q5_1: {
        struct block_q5_1 *q = (void *)b;
        random_bytes(q->qh, sizeof q->qh), random_bytes(q->qs, sizeof q->qs);
        const float d = jitter(g * 2e-3f);
        put_f16(&q->d, d), put_f16(&q->m, -15.5f * d);
        break;
    }
    case TENSOR_TYPE_Q8_0: {
        struct block_q8_0 *q = (void *)b;
        random_bytes((uint8_t *)q->qs, sizeof q->qs);
        put_f16(&q->d, jitter(g * 4e-4f));
        break;
    }
    case TENSOR_TYPE_Q4_K: { /* w = d sc q - dmin m, sc and m in 0..63, q in 0..15 */
        struct block_q4_k *q = (void *)b;
        random_bytes(q->scales, sizeof q->scales), random_bytes(q->qs, sizeof q->qs);
        const float d = jitter(g * 1.5e-4f);
        put_f16(&q->d, d), put_f16(&q->dmin, 7.5f * d);
        break;
    }
    case TENSOR_TYPE_Q5_K: { /* q in 0..31 */
        struct block_q5_k *q = (void *)b;
        random_bytes(q->scales, sizeof q->scales), random_bytes(q->qh, sizeof q->qh);
        random_bytes(q->qs, sizeof q->qs);
        const float d = jitter(g * 7.5e-5f);
        put_f16(&q->d, d), put_f16(&q->dmin, 15.5f * d);
        break;
    }
    case TENSOR_TYPE_Q6_K: { /* w = d sc (q - 32), sc a signed byte */
        struct block_q6_k *q = (void *)b;
        random_bytes(q->ql, sizeof q->ql), random_bytes(q->qh, sizeof q->qh);
        for (size_t i = 0; i < sizeof q->scales; i++)
            q->scales[i] = (int8_t)(uniform() * 64.0f);
        put_f16(&q->d, jitter(g * 4e-5f));
        break;
    }
    default:
        fprintf(stderr, "tiny-llama: no random block for type %u\n", t);
        abort();
    }
}

/* A matrix of `rows` rows of n values in type t: random blocks, or for float types uniform
 * weights in [-amp, amp); g scales the block scales (g = 1: weights of order 0.03). */
static void add_matrix_gain(struct gw *w, const char *name, uint32_t t, int n, int rows, float amp,
                            float g) {
    const uint64_t ne[2] = {(uint64_t)n, (uint64_t)rows};
    const size_t bytes = (size_t)tensor_type_row_size(t, n) * rows;
    uint8_t *data = malloc(bytes);
    if (!data)
        abort();
    if (t == TENSOR_TYPE_F32 || t == TENSOR_TYPE_F16 || t == TENSOR_TYPE_BF16) {
        for (size_t i = 0; i < (size_t)n * rows; i++) {
            const float v = amp * uniform();
            if (t == TENSOR_TYPE_F32)
                memcpy(data + 4 * i, &v, 4);
            else {
                const uint16_t h =
                    t == TENSOR_TYPE_F16 ? quant_f32_to_f16(v) : quant_f32_to_bf16(v);
                memcpy(data + 2 * i, &h, 2);
            }
        }
    } else {
        const size_t block = tensor_type_size(t);
        for (size_t off = 0; off < bytes; off += block)
            random_block(t, data + off, g);
    }
    gw_tensor(w, name, t, 2, ne, data, bytes);
    free(data);
}

static void add_matrix(struct gw *w, const char *name, uint32_t t, int n, int rows, float amp) {
    add_matrix_gain(w, name, t, n, rows, amp, 1.0f);
}

/* An F32 vector of n values center + spread * uniform (norm weights, biases). */
static void add_vector(struct gw *w, const char *name, int n, float center, float spread) {
    float v[EMBD_MAX];
    for (int i = 0; i < n; i++)
        v[i] = center + spread * uniform();
    gw_tensor(w, name, TENSOR_TYPE_F32, 1, (const uint64_t[]){(uint64_t)n}, v,
              sizeof(float) * (size_t)n);
}

static void add_norm(struct gw *w, const char *name, int n_embd) {
    add_vector(w, name, n_embd, 1.0f, 0.2f);
}

/* Llama 3.1's RoPE frequency factors (factor 8, low/high frequency factors 1 and 4, original
 * context 8192), as its GGUF conversion stores them: 1 for short wavelengths, 8 for long ones,
 * a smooth blend between. */
static void add_rope_freqs(struct gw *w) {
    float f[HEAD_DIM / 2];
    const double base = 500000.0, factor = 8.0, lo = 1.0, hi = 4.0, orig = 8192.0;
    for (int i = 0; i < HEAD_DIM / 2; i++) {
        const double freq = pow(base, -2.0 * i / HEAD_DIM), wavelen = 2.0 * M_PI / freq;
        if (wavelen < orig / hi)
            f[i] = 1.0f;
        else if (wavelen > orig / lo)
            f[i] = (float)factor;
        else {
            const double smooth = (orig / wavelen - lo) / (hi - lo);
            f[i] = (float)(1.0 / ((1.0 - smooth) / factor + smooth));
        }
    }
    gw_tensor(w, "rope_freqs.weight", TENSOR_TYPE_F32, 1, (const uint64_t[]){HEAD_DIM / 2}, f,
              sizeof f);
}

static void add_vocab(struct gw *w) {
#define SP "\xe2\x96\x81" /* U+2581, SentencePiece's word-start mark */
    static const char *const pieces[] = {
        SP "the", SP "a",   SP "of", SP "and", SP "to",  SP "in",   SP "is",   SP "it", SP "cat",
        SP "dog", SP "sat", SP "on", SP "mat", SP "run", SP "long", SP "text", SP,      "e",
        "t",      "a",      "o",     "n",      "s",      "r",       "er",      "in",    "on",
        "at",     "en",     "ing",   "ed",     "es",     SP "c",    SP "d",    SP "s",  SP "m",
        SP "r",   SP "l",   SP "o",  ".",      ","};
#undef SP
    enum { N_PIECES = sizeof pieces / sizeof pieces[0] };
    _Static_assert(3 + 256 + N_PIECES == TINY_LLAMA_VOCAB, "vocabulary size");
    char bytes[256][7];
    const char *tok[TINY_LLAMA_VOCAB];
    float score[TINY_LLAMA_VOCAB];
    int32_t type[TINY_LLAMA_VOCAB];
    tok[0] = "<unk>", tok[1] = "<s>", tok[2] = "</s>";
    type[0] = 2, type[1] = type[2] = 3; /* unknown, control */
    score[0] = score[1] = score[2] = 0.0f;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        tok[3 + b] = bytes[b], type[3 + b] = 6, score[3 + b] = 0.0f; /* byte */
    }
    for (int i = 0; i < N_PIECES; i++)
        tok[259 + i] = pieces[i], type[259 + i] = 1, score[259 + i] = -(float)i;
    gw_kv_str(w, "tokenizer.ggml.model", "llama");
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", tok, TINY_LLAMA_VOCAB);
    gw_kv_arr_f32(w, "tokenizer.ggml.scores", score, TINY_LLAMA_VOCAB);
    gw_kv_arr_i32(w, "tokenizer.ggml.token_type", type, TINY_LLAMA_VOCAB);
    gw_kv_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gw_kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gw_kv_u32(w, "tokenizer.ggml.unknown_token_id", 0);
}

/* gemma3's keys: two sliding layers then a global one (pattern 3), windows of
 * TINY_GEMMA3_WINDOW positions; the global layer's RoPE scaled linearly 8x as in Gemma 3 4B
 * (the sliding ones never scale, and use the default local base 10000); logits soft-capped. */
static void add_gemma3_keys(struct gw *w) {
    gw_kv_u32(w, "gemma3.attention.sliding_window", TINY_GEMMA3_WINDOW);
    gw_kv_u32(w, "gemma3.attention.sliding_window_pattern", 3);
    gw_kv_str(w, "gemma3.rope.scaling.type", "linear");
    gw_kv_f32(w, "gemma3.rope.scaling.factor", 8.0f);
    gw_kv_f32(w, "gemma3.final_logit_softcapping", 10.0f);
}

int tiny_llama_write(const char *path, const char *variant) {
    /* "qwen2-yarn": the qwen2 model with YaRN metadata, context 2048 stretched 4x */
    const bool yarn = !strcmp(variant, "qwen2-yarn");
    const char *arch = yarn ? "qwen2" : variant;
    const bool llama = !strcmp(arch, "llama"), qwen2 = !strcmp(arch, "qwen2");
    const bool qwen3 = !strcmp(arch, "qwen3"), gemma3 = !strcmp(arch, "gemma3");
    if (!llama && !qwen2 && !qwen3 && !gemma3)
        return -1;
    const int EMBD = qwen3 ? EMBD_MAX / 2 : EMBD_MAX;
    rng_state = 0x7a11a3u;
    struct gw *w = gw_new();
    char key[96], name[64];
#define KEY(s) (snprintf(key, sizeof key, "%s." s, arch), key)
    gw_kv_str(w, "general.architecture", arch);
    snprintf(name, sizeof name, "tiny-%s-random", llama ? "llama3" : arch);
    gw_kv_str(w, "general.name", name);
    gw_kv_u32(w, KEY("context_length"), 8192);
    gw_kv_u32(w, KEY("embedding_length"), (uint32_t)EMBD);
    if (qwen3) { /* n_embd / n_head = 64 is not the head dimension: say it */
        gw_kv_u32(w, KEY("attention.key_length"), HEAD_DIM);
        gw_kv_u32(w, KEY("attention.value_length"), HEAD_DIM);
    }
    gw_kv_u32(w, KEY("block_count"), LAYERS);
    gw_kv_u32(w, KEY("feed_forward_length"), FF);
    gw_kv_u32(w, KEY("rope.dimension_count"), HEAD_DIM);
    gw_kv_u32(w, KEY("attention.head_count"), HEADS);
    gw_kv_u32(w, KEY("attention.head_count_kv"), HEADS_KV);
    gw_kv_f32(w, KEY("attention.layer_norm_rms_epsilon"), llama ? 1e-5f : 1e-6f);
    gw_kv_f32(w, KEY("rope.freq_base"), llama ? 500000.0f : 1000000.0f);
    gw_kv_u32(w, KEY("vocab_size"), TINY_LLAMA_VOCAB);
    if (yarn) {
        gw_kv_str(w, KEY("rope.scaling.type"), "yarn");
        gw_kv_f32(w, KEY("rope.scaling.factor"), 4.0f);
        gw_kv_u32(w, KEY("rope.scaling.original_context_length"), 2048);
    }
    if (gemma3)
        add_gemma3_keys(w);
#undef KEY
    add_vocab(w);

    add_matrix(w, "token_embd.weight", TENSOR_TYPE_Q4_K, EMBD, TINY_LLAMA_VOCAB, 0);
    if (llama) /* llama.cpp's qwen loaders take no factor table */
        add_rope_freqs(w);
    /* per layer: q, k, v, output, gate, up, down */
    static const uint32_t types[LAYERS][7] = {
        {TENSOR_TYPE_Q4_K, TENSOR_TYPE_Q4_K, TENSOR_TYPE_Q6_K, TENSOR_TYPE_Q4_K, TENSOR_TYPE_Q4_K,
         TENSOR_TYPE_Q4_K, TENSOR_TYPE_Q6_K},
        {TENSOR_TYPE_Q4_0, TENSOR_TYPE_Q8_0, TENSOR_TYPE_Q5_K, TENSOR_TYPE_Q5_0, TENSOR_TYPE_Q5_1,
         TENSOR_TYPE_Q4_1, TENSOR_TYPE_Q5_K},
        {TENSOR_TYPE_F16, TENSOR_TYPE_BF16, TENSOR_TYPE_F32, TENSOR_TYPE_Q5_K, TENSOR_TYPE_F16,
         TENSOR_TYPE_BF16, TENSOR_TYPE_F32},
    };
    for (int l = 0; l < LAYERS; l++) {
#define NAME(s) (snprintf(name, sizeof name, "blk.%d." s, l), name)
        add_norm(w, NAME("attn_norm.weight"), EMBD);
        add_matrix(w, NAME("attn_q.weight"), types[l][0], EMBD, HEADS * HEAD_DIM, 0.03f);
        add_matrix(w, NAME("attn_k.weight"), types[l][1], EMBD, HEADS_KV * HEAD_DIM, 0.03f);
        add_matrix(w, NAME("attn_v.weight"), types[l][2], EMBD, HEADS_KV * HEAD_DIM, 0.03f);
        if (qwen2) { /* biases of the size trained Qwen2 models have: up to a few units */
            add_vector(w, NAME("attn_q.bias"), HEADS * HEAD_DIM, 0.0f, 1.0f);
            add_vector(w, NAME("attn_k.bias"), HEADS_KV * HEAD_DIM, 0.0f, 1.0f);
            add_vector(w, NAME("attn_v.bias"), HEADS_KV * HEAD_DIM, 0.0f, 0.1f);
        }
        if (qwen3 || gemma3) {
            add_vector(w, NAME("attn_q_norm.weight"), HEAD_DIM, 1.0f, 0.5f);
            add_vector(w, NAME("attn_k_norm.weight"), HEAD_DIM, 1.0f, 0.5f);
        }
        add_matrix(w, NAME("attn_output.weight"), types[l][3], HEADS * HEAD_DIM, EMBD, 0.03f);
        add_norm(w, NAME("ffn_norm.weight"), EMBD);
        add_matrix(w, NAME("ffn_gate.weight"), types[l][4], EMBD, FF, 0.03f);
        add_matrix(w, NAME("ffn_up.weight"), types[l][5], EMBD, FF, 0.03f);
        add_matrix(w, NAME("ffn_down.weight"), types[l][6], FF, EMBD, 0.03f);
        if (gemma3) { /* the norms of the attention and FFN outputs */
            add_norm(w, NAME("post_attention_norm.weight"), EMBD);
            add_norm(w, NAME("post_ffw_norm.weight"), EMBD);
        }
#undef NAME
    }
    add_norm(w, "output_norm.weight", EMBD);
    /* a head 4x larger than the other weights: logits spread over a few nats, as a trained
     * model's do, so that top-1 and KL say something */
    add_matrix_gain(w, "output.weight", TENSOR_TYPE_Q6_K, EMBD, TINY_LLAMA_VOCAB, 0, 4.0f);
    gw_write(w, path);
    gw_free(w);
    return 0;
}
