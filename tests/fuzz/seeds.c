/* fuzz.h's seed corpora, produced in code from the test GGUF writer, the tokenizer corpus and
 * the test models' chat templates, so that nothing large is committed and a change to the
 * writer or the corpus reaches the seeds. tools/fuzz.sh writes them to files with
 * fuzz-seeds; the replay tests of `make check` run every target over them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tok-testutil.h"
#include "fuzz.h"
#include "gguf.h"
#include "tiny-vocab.h"

static void emit_gw(struct gw *w, const char *name, fuzz_emit_fn emit, void *user) {
    size_t len;
    const uint8_t *img = gw_bytes(w, &len);
    emit(img, len, name, user);
    gw_free(w);
}

/* A model of `arch` small enough to mutate quickly (n_embd 32, 4 heads of 8 over 2 KV heads,
 * n_ff 32, one layer; zero weights, Q8_0 matrices and F32 norms) that model_bind accepts, so
 * the fuzzer starts past the binding checks instead of having to discover every key. */
static struct gw *tiny_model(const char *arch) {
    enum { EMBD = 32, HEADS = 4, HEADS_KV = 2, HEAD_DIM = 8, FF = 32 };
    const int qwen2 = !strcmp(arch, "qwen2"), qwen3 = !strcmp(arch, "qwen3");
    const int gemma3 = !strcmp(arch, "gemma3");
    struct gw *w = gw_new();
    char key[96], name[64];
#define KEY(s) (snprintf(key, sizeof key, "%s." s, arch), key)
    gw_kv_str(w, "general.architecture", arch);
    gw_kv_str(w, "general.name", "fuzz-seed");
    gw_kv_u32(w, KEY("context_length"), 256);
    gw_kv_u32(w, KEY("embedding_length"), EMBD);
    gw_kv_u32(w, KEY("block_count"), 1);
    gw_kv_u32(w, KEY("feed_forward_length"), FF);
    gw_kv_u32(w, KEY("rope.dimension_count"), HEAD_DIM);
    gw_kv_u32(w, KEY("attention.head_count"), HEADS);
    gw_kv_u32(w, KEY("attention.head_count_kv"), HEADS_KV);
    gw_kv_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-6f);
    gw_kv_f32(w, KEY("rope.freq_base"), 10000.0f);
    if (gemma3) {
        gw_kv_u32(w, KEY("attention.sliding_window"), 16);
        gw_kv_str(w, KEY("rope.scaling.type"), "linear");
        gw_kv_f32(w, KEY("rope.scaling.factor"), 8.0f);
    }
    if (qwen2) {
        gw_kv_str(w, KEY("rope.scaling.type"), "yarn");
        gw_kv_f32(w, KEY("rope.scaling.factor"), 4.0f);
        gw_kv_u32(w, KEY("rope.scaling.original_context_length"), 64);
    }
#undef KEY
    const int n_vocab = gemma3 ? tiny_vocab_add_spm(w) : tiny_vocab_add_bpe(w, "smollm");
    gw_kv_str(w, "tokenizer.chat_template",
              gemma3 ? "{{ bos_token }}<start_of_turn>user\n{{ content }}<end_of_turn>\n"
                     : "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
                       "<|im_end|>\n{% endfor %}");
    const uint32_t q8 = TENSOR_TYPE_Q8_0, f32 = TENSOR_TYPE_F32;
    const size_t q8_row = EMBD / 32 * 34; /* Q8_0 blocks of 32: f16 scale + 32 int8 */
#define MAT(nm, rows)                                                                              \
    gw_tensor(w, nm, q8, 2, (const uint64_t[]){EMBD, (rows)}, NULL, q8_row *(size_t)(rows))
#define VEC(nm, n) gw_tensor(w, nm, f32, 1, (const uint64_t[]){(n)}, NULL, 4 * (size_t)(n))
#define BLK(s)     (snprintf(name, sizeof name, "blk.0." s), name)
    MAT("token_embd.weight", n_vocab);
    VEC(BLK("attn_norm.weight"), EMBD);
    MAT(BLK("attn_q.weight"), HEADS * HEAD_DIM);
    MAT(BLK("attn_k.weight"), HEADS_KV * HEAD_DIM);
    MAT(BLK("attn_v.weight"), HEADS_KV * HEAD_DIM);
    if (qwen2) {
        VEC(BLK("attn_q.bias"), HEADS * HEAD_DIM);
        VEC(BLK("attn_k.bias"), HEADS_KV * HEAD_DIM);
        VEC(BLK("attn_v.bias"), HEADS_KV * HEAD_DIM);
    }
    if (qwen3 || gemma3) {
        VEC(BLK("attn_q_norm.weight"), HEAD_DIM);
        VEC(BLK("attn_k_norm.weight"), HEAD_DIM);
    }
    MAT(BLK("attn_output.weight"), EMBD); /* n_head * head_dim == n_embd here */
    VEC(BLK("ffn_norm.weight"), EMBD);
    MAT(BLK("ffn_gate.weight"), FF);
    MAT(BLK("ffn_up.weight"), FF);
    MAT(BLK("ffn_down.weight"), EMBD);
    if (gemma3) {
        VEC(BLK("post_attention_norm.weight"), EMBD);
        VEC(BLK("post_ffw_norm.weight"), EMBD);
    }
    VEC("output_norm.weight", EMBD);
    if (!strcmp(arch, "llama")) /* untied head; the others tie it to token_embd */
        MAT("output.weight", n_vocab);
#undef MAT
#undef VEC
#undef BLK
    return w;
}

/* One value of every metadata type, arrays of each and a nested array: the reader's value
 * parser without any model around it. */
static struct gw *every_type(void) {
    struct gw *w = gw_new();
    gw_kv_u8(w, "t.u8", 1);
    gw_kv_i8(w, "t.i8", -1);
    gw_kv_u16(w, "t.u16", 2);
    gw_kv_i16(w, "t.i16", -2);
    gw_kv_u32(w, "t.u32", 3);
    gw_kv_i32(w, "t.i32", -3);
    gw_kv_u64(w, "t.u64", 4);
    gw_kv_i64(w, "t.i64", -4);
    gw_kv_f32(w, "t.f32", 0.5f);
    gw_kv_f64(w, "t.f64", 0.25);
    gw_kv_bool(w, "t.bool", true);
    gw_kv_str(w, "t.str", "text");
    static const int32_t ints[] = {1, -2, 3};
    static const float floats[] = {0.5f, -1.0f};
    static const char *const strs[] = {"a", "", "ccc"};
    gw_kv_arr_i32(w, "t.arr_i32", ints, 3);
    gw_kv_arr_f32(w, "t.arr_f32", floats, 2);
    gw_kv_arr_str(w, "t.arr_str", strs, 3);
    static const uint8_t u8s[] = {0, 1, 2};
    gw_kv_arr(w, "t.arr_bool", GGUF_TYPE_BOOL, u8s, 3);
    gw_kv_arr(w, "t.arr_u8", GGUF_TYPE_UINT8, u8s, 3);
    /* [[1, 2]]: an array (type 9) of one array of two u32 (type 4), as the value's bytes */
    static const uint8_t nested[] = {9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0,
                                     2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0};
    gw_kv_raw(w, "t.nested", GGUF_TYPE_ARRAY, nested, sizeof nested);
    return w;
}

static int gguf_seeds(fuzz_emit_fn emit, void *user) {
    static const char *const archs[] = {"llama", "qwen2", "qwen3", "gemma3"};
    int n = 0;
    char name[32];
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++, n++) {
        snprintf(name, sizeof name, "tiny-%s.gguf", archs[i]);
        emit_gw(tiny_model(archs[i]), name, emit, user);
    }
    struct gw *w = tiny_model("llama");
    gw_set_version(w, 2);
    gw_set_alignment(w, 64);
    emit_gw(w, "tiny-llama-v2-align64.gguf", emit, user), n++;
    emit_gw(every_type(), "every-type.gguf", emit, user), n++;
    emit_gw(gw_new(), "empty.gguf", emit, user), n++;
    return n;
}

/* The tokenizer corpus, each line behind a selector byte (fuzz-tokenizer.c) that cycles
 * through the vocabularies and the four flag combinations. */
static int tokenizer_seeds(fuzz_emit_fn emit, void *user) {
    const char *src = getenv("ADAKV_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/tokenizer-corpus.txt", src ? src : ".");
    struct tt_bytes *lines;
    const long n = tt_read_corpus(path, &lines);
    if (n < 0) {
        fprintf(stderr, "fuzz-seeds: cannot read %s (set ADAKV_SRCDIR)\n", path);
        return -1;
    }
    for (long i = 0; i < n; i++) {
        uint8_t *buf = malloc(lines[i].n + 1);
        if (!buf)
            abort();
        buf[0] = (uint8_t)(((i % 64) << 2) | (i & 3));
        memcpy(buf + 1, lines[i].p, lines[i].n);
        char name[32];
        snprintf(name, sizeof name, "corpus-%04ld", i);
        emit(buf, lines[i].n + 1, name, user);
        free(buf);
        free(lines[i].p);
    }
    free(lines);
    return (int)n;
}

/* Emits "a\0b\0c" for the NULL-terminated list of strings. */
static void emit_vec(const char *const *v, const char *name, fuzz_emit_fn emit, void *user) {
    size_t len = 0;
    for (int i = 0; v[i]; i++)
        len += strlen(v[i]) + 1;
    char *buf = malloc(len ? len : 1);
    if (!buf)
        abort();
    size_t off = 0;
    for (int i = 0; v[i]; i++) {
        memcpy(buf + off, v[i], strlen(v[i]) + 1);
        off += strlen(v[i]) + 1;
    }
    emit((const uint8_t *)buf, len ? len - 1 : 0, name, user); /* no NUL after the last */
    free(buf);
}

/* A model's tokenizer.chat_template, or NULL (the model file is required elsewhere). */
static char *model_template(const char *path, size_t *len) {
    struct adakv_err e = {{0}};
    struct gguf_file *f = gguf_open(path, &e);
    struct gguf_str s;
    char *t = NULL;
    if (f && !gguf_get_str(f, "tokenizer.chat_template", &s, &e) && (t = malloc(s.len + 1))) {
        memcpy(t, s.ptr, s.len);
        *len = s.len;
    }
    gguf_close(f);
    return t;
}

static int chat_seeds(fuzz_emit_fn emit, void *user) {
    /* one per format chat.c knows (markers and the parts it reads), and one it does not;
     * the concatenated literals are parenthesised for clang's -Wstring-concatenation */
    static const char *const tmpls[] = {
        ("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
         "2023<|eot_id|>{{ '<|start_header_id|>' + m.role + '<|end_header_id|>\n\n' + "
         "m.content | trim + '<|eot_id|>' }}"),
        "{{ bos_token }}{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}",
        "<start_of_turn>user\n{{ m.content | trim }}<end_of_turn>\n<start_of_turn>model\n",
        ("{% if not system %}<|im_start|>system\nYou are a helpful AI assistant named SmolLM, "
         "trained by Hugging Face<|im_end|>\n{% endif %}<|im_start|>user\n"),
        "no known markers"};
    static const char *const users[] = {"What is 2+2?", "", " padded \n", "a<|im_end|>b"};
    int n = 0;
    char name[32];
    for (size_t i = 0; i < sizeof tmpls / sizeof tmpls[0]; i++)
        for (size_t j = 0; j < sizeof users / sizeof users[0]; j++, n++) {
            snprintf(name, sizeof name, "tmpl-%zu-%zu", i, j);
            emit_vec((const char *const[]){tmpls[i], users[j], NULL}, name, emit, user);
        }
    const char *models[] = {fuzz_model_path(), fuzz_gemma3_path()};
    for (int i = 0; i < 2; i++) {
        size_t len = 0;
        char *t = model_template(models[i], &len);
        if (!t)
            continue; /* Gemma 3 base files carry none */
        t[len] = '\0';
        snprintf(name, sizeof name, "model-%d", i);
        emit_vec((const char *const[]){t, "Hello, world!", NULL}, name, emit, user), n++;
        free(t);
    }
    emit((const uint8_t *)"no template at all", 18, "fallback", user), n++;
    return n;
}

static int cli_seeds(fuzz_emit_fn emit, void *user) {
    static const char *const v[][20] = {
        {"-m", "model.gguf", "-p", "Hello", "-n", "16", NULL},
        {"-m", "m.gguf", "-f", "prompt.txt", "--chat", "-c", "2048", "-t", "2", NULL},
        {"--model", "m.gguf", "--perplexity", "wiki.txt", "-c", "512", NULL},
        {"-m", "m.gguf", "-p", "x", "--press", "ada-snapkv", "--kv-budget", "256", "--alpha", "0.2",
         "--window", "32", NULL},
        {"-m", "m.gguf", "-p", "x", "--press", "snapkv", "--kv-ratio", "0.5", "--question", "q.txt",
         "--question-aware", "--kv-report", NULL},
        {"-m", "m.gguf", "-p", "x", "-ctk", "f16", "-ctv", "f16", "--kv-max", "1024", "--kv-chunk",
         "64", NULL},
        {"-m", "m.gguf", "-p", "x", "--temp", "0", "--top-k", "1", "--top-p", "0.9", "-s", "42",
         NULL},
        {"-m", "m.gguf", "-p", "x", "--numa", "distribute", "--prefill-gemm", "f32", "--progress",
         "off", "--no-perf", "--reference", NULL},
        {"-m", "m.gguf", "-p", "x", "--ignore-eos", "--kv-type", "int8", "--ada", "kvpress",
         "--seed", "1", NULL},
        {"-m", "m.gguf", "-p", "x", "--press", "critical", "--critical-ratio", "0.3", "--beta",
         "0.2", "--sink", "4", "--pool", "avg", "--pool-kernel", "7", NULL},
        {"-m", "m.gguf", "prompt.txt", NULL},
        {"--help", NULL},
        {"--version", NULL},
    };
    char name[32];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        snprintf(name, sizeof name, "argv-%02zu", i);
        emit_vec(v[i], name, emit, user);
    }
    return (int)(sizeof v / sizeof v[0]);
}

static int press_seeds(fuzz_emit_fn emit, void *user) {
    static const char *const v[][20] = {
        {"press", "ada-snapkv", "kv-budget", "256", "alpha", "0.2", NULL},
        {"press", "snapkv", "kv-ratio", "0.5", "window", "32", "pool", "max", NULL},
        {"press", "critical_adakv_snapkv", "critical-ratio", "0.5", "ada", "kvpress", NULL},
        {"press", "streaming", "sink", "4", "kv-budget", "128", NULL},
        {"press", "pyramid", "beta", "20", "pool-kernel", "5", "pool", "avg", NULL},
        {"press", "random", "seed", "7", "kv-ratio", "0.9", "reserve", "16", NULL},
        {"press", "knorm", "kv-max", "1024", "kv-chunk", "64", NULL},
        {"press", "full", NULL},
        {"press", "no_press", "kv-budget", "1", "kv-ratio", "0.1", NULL},
    };
    char name[32];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        snprintf(name, sizeof name, "opts-%02zu", i);
        emit_vec(v[i], name, emit, user);
    }
    return (int)(sizeof v / sizeof v[0]);
}

int fuzz_seeds(const char *target, fuzz_emit_fn emit, void *user) {
    if (!strcmp(target, "gguf"))
        return gguf_seeds(emit, user);
    if (!strcmp(target, "tokenizer-bpe") || !strcmp(target, "tokenizer-spm"))
        return tokenizer_seeds(emit, user);
    if (!strcmp(target, "chat"))
        return chat_seeds(emit, user);
    if (!strcmp(target, "cli"))
        return cli_seeds(emit, user);
    if (!strcmp(target, "press"))
        return press_seeds(emit, user);
    fprintf(stderr, "fuzz-seeds: unknown target '%s'\n", target);
    return -1;
}
