/* Strict metadata (docs/reliability.md): each inconsistent key of a tiny hand-made GGUF gives one
 * line naming the key, as an error where adakv refuses the file and as a tokenizer warning where
 * llama.cpp accepts it and a sensible default exists.
 *
 * The files carry metadata only: hyperparameters are checked before any tensor is bound, so a
 * rule that fires fails the load at its key, while a file that passes every rule fails later
 * with "missing tensor" (the control case below shows the base file gets that far). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "adakv.h"
#include "gguf-writer.h"
#include "gguf.h"
#include "tokenizer.h"

static const char *tmp_path(const char *name) {
    static char path[4096];
    const char *dir = getenv("ADAKV_BUILDDIR");
    snprintf(path, sizeof path, "%s/tests/%s", dir ? dir : ".", name);
    return path;
}

/* One u32 key of the base file replaced (value) or left out (drop). */
struct change {
    const char *key;
    uint32_t value;
    bool drop;
};

static void put_u32(struct gw *w, const struct change *c, const char *key, uint32_t v) {
    if (c && c->key && !strcmp(c->key, key)) {
        if (c->drop)
            return;
        v = c->value;
    }
    gw_kv_u32(w, key, v);
}

/* A llama file's hyperparameters: n_embd 64, 4 heads over 2 KV heads of 16 dims. */
static void put_hparams(struct gw *w, const struct change *c) {
    gw_kv_str(w, "general.architecture", "llama");
    put_u32(w, c, "llama.context_length", 2048);
    put_u32(w, c, "llama.embedding_length", 64);
    put_u32(w, c, "llama.block_count", 2);
    put_u32(w, c, "llama.feed_forward_length", 96);
    put_u32(w, c, "llama.attention.head_count", 4);
    put_u32(w, c, "llama.attention.head_count_kv", 2);
    put_u32(w, c, "llama.rope.dimension_count", 16);
}

/* A BPE vocab of 5 tokens ("<|endoftext|>", "a", "b", "ab", "<|im_end|>") with one merge. */
enum { N_TOK = 5 };
static void put_vocab(struct gw *w, const struct change *c, uint64_t n_types, uint64_t n_scores,
                      const char *merge) {
    static const char *tok[] = {"<|endoftext|>", "a", "b", "ab", "<|im_end|>"};
    const int32_t types[N_TOK + 1] = {3, 1, 1, 1, 3, 1};
    const float scores[N_TOK + 1] = {0};
    gw_kv_str(w, "tokenizer.ggml.model", "gpt2");
    gw_kv_str(w, "tokenizer.ggml.pre", "gpt2");
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", tok, N_TOK);
    gw_kv_arr_i32(w, "tokenizer.ggml.token_type", types, n_types);
    gw_kv_arr_f32(w, "tokenizer.ggml.scores", scores, n_scores);
    gw_kv_arr_str(w, "tokenizer.ggml.merges", (const char *const[]){merge}, 1);
    put_u32(w, c, "tokenizer.ggml.bos_token_id", 0);
    put_u32(w, c, "tokenizer.ggml.eos_token_id", 4);
}

static void expect_model_error(const struct change *c, const char *name, const char *key) {
    struct gw *w = gw_new();
    put_hparams(w, c);
    put_vocab(w, NULL, N_TOK, N_TOK, "a b");
    gw_write(w, tmp_path(name));
    gw_free(w);
    struct adakv_err e = {{0}};
    struct adakv_model *m = adakv_model_load(tmp_path(name), NULL, &e);
    cr_assert_null(m, "%s: loaded", name);
    cr_expect(strstr(e.msg, key), "%s: error '%s' does not name '%s'", name, e.msg, key);
    cr_expect(strstr(e.msg, tmp_path(name)), "%s: error '%s' does not name the file", name, e.msg);
    cr_expect_null(strchr(e.msg, '\n'), "%s: error is not one line", name);
}

Test(metadata, base_file_passes_every_rule) {
    /* control: the unchanged file gets past the metadata to the tensors it lacks */
    expect_model_error(NULL, "meta-base.gguf", "token_embd.weight");
}

Test(metadata, context_length_zero_or_absurd) {
    expect_model_error(&(struct change){.key = "llama.context_length", .value = 0},
                       "meta-ctx0.gguf", "llama.context_length");
    expect_model_error(&(struct change){.key = "llama.context_length", .value = 1u << 30},
                       "meta-ctxbig.gguf", "llama.context_length");
    expect_model_error(&(struct change){.key = "llama.context_length", .value = 0, .drop = true},
                       "meta-ctxnone.gguf", "llama.context_length");
}

Test(metadata, rope_dimensions_larger_than_the_head) {
    expect_model_error(&(struct change){.key = "llama.rope.dimension_count", .value = 18},
                       "meta-rope.gguf", "llama.rope.dimension_count");
    expect_model_error(&(struct change){.key = "llama.rope.dimension_count", .value = 15},
                       "meta-rope-odd.gguf", "llama.rope.dimension_count");
}

Test(metadata, head_counts_that_do_not_divide) {
    expect_model_error(&(struct change){.key = "llama.attention.head_count_kv", .value = 3},
                       "meta-kv3.gguf", "head_count_kv");
    expect_model_error(&(struct change){.key = "llama.attention.head_count_kv", .value = 8},
                       "meta-kv8.gguf", "head_count_kv");
    expect_model_error(&(struct change){.key = "llama.embedding_length", .value = 66},
                       "meta-e66.gguf",
                       "llama.embedding_length 66 is not a multiple of attention.head_count 4");
    expect_model_error(&(struct change){.key = "llama.attention.head_count", .value = 0},
                       "meta-h0.gguf", "llama.attention.head_count");
    expect_model_error(&(struct change){.key = "llama.block_count", .value = 0}, "meta-l0.gguf",
                       "llama.block_count");
}

/* Tokenizer rules: loaded on their own (the model loader calls tokenizer_load the same way). */
static struct tokenizer *load_vocab_file(const struct change *c, uint64_t n_types,
                                         uint64_t n_scores, const char *merge, const char *name,
                                         struct gguf_file **f, struct adakv_err *e) {
    struct gw *w = gw_new();
    put_vocab(w, c, n_types, n_scores, merge);
    gw_write(w, tmp_path(name));
    gw_free(w);
    *f = gguf_open(tmp_path(name), e);
    cr_assert_not_null(*f, "%s", e->msg);
    return tokenizer_load(*f, e);
}

static void expect_warning(const struct change *c, uint64_t n_types, uint64_t n_scores,
                           const char *merge, const char *name, const char *key) {
    struct adakv_err e = {{0}};
    struct gguf_file *f;
    struct tokenizer *t = load_vocab_file(c, n_types, n_scores, merge, name, &f, &e);
    cr_assert_not_null(t, "%s: %s", name, e.msg);
    const char *w = tokenizer_warning(t);
    cr_expect(w && strstr(w, key), "%s: warning '%s' does not name '%s'", name, w ? w : "(none)",
              key);
    cr_expect(w && !strchr(w, '\n'), "%s: one rule, one line: '%s'", name, w ? w : "");
    tokenizer_free(t);
    gguf_close(f);
}

Test(metadata, clean_vocab_has_no_warning) {
    struct adakv_err e = {{0}};
    struct gguf_file *f;
    struct tokenizer *t = load_vocab_file(NULL, N_TOK, N_TOK, "a b", "meta-tok.gguf", &f, &e);
    cr_assert_not_null(t, "%s", e.msg);
    cr_expect_null(tokenizer_warning(t), "%s", tokenizer_warning(t));
    cr_expect_eq(tokenizer_eos(t), 4);
    tokenizer_free(t);
    gguf_close(f);
}

Test(metadata, special_token_ids_outside_the_vocabulary) {
    static const char *const keys[] = {
        "tokenizer.ggml.bos_token_id",     "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",     "tokenizer.ggml.padding_token_id",
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "meta-special-%zu.gguf", i);
        const struct change c = {.key = keys[i], .value = N_TOK}; /* one past the last id */
        struct gw *w = gw_new();
        put_vocab(w, &c, N_TOK, N_TOK, "a b");
        if (!strstr(keys[i], "bos_") && !strstr(keys[i], "eos_")) /* put_vocab writes those */
            gw_kv_u32(w, keys[i], N_TOK);
        gw_write(w, tmp_path(name));
        gw_free(w);
        struct adakv_err e = {{0}};
        struct gguf_file *f = gguf_open(tmp_path(name), &e);
        cr_assert_not_null(f, "%s", e.msg);
        struct tokenizer *t = tokenizer_load(f, &e);
        cr_assert_not_null(t, "%s: %s", name, e.msg);
        const char *warn = tokenizer_warning(t);
        cr_expect(warn && strstr(warn, keys[i]) && strstr(warn, "outside the vocabulary"),
                  "%s: warning '%s'", keys[i], warn ? warn : "(none)");
        tokenizer_free(t);
        gguf_close(f);
    }
}

Test(metadata, eos_outside_the_vocabulary_keeps_a_default) {
    struct adakv_err e = {{0}};
    struct gguf_file *f;
    struct tokenizer *t =
        load_vocab_file(&(struct change){.key = "tokenizer.ggml.eos_token_id", .value = 999}, N_TOK,
                        N_TOK, "a b", "meta-eos.gguf", &f, &e);
    cr_assert_not_null(t, "%s", e.msg);
    const char *w = tokenizer_warning(t);
    cr_expect(w && strstr(w, "tokenizer.ggml.eos_token_id = 999"), "%s", w ? w : "(none)");
    cr_expect_eq(tokenizer_eos(t), -1); /* BPE's default 11 is outside 5 tokens too: none */
    cr_expect(tokenizer_is_eog(t, 4), "<|im_end|> still ends generation by its text");
    tokenizer_free(t);
    gguf_close(f);
}

Test(metadata, vocab_arrays_that_disagree_in_length) {
    /* shorter: an error (there is nothing to read for the last tokens) */
    struct adakv_err e = {{0}};
    struct gguf_file *f;
    struct tokenizer *t = load_vocab_file(NULL, N_TOK - 1, N_TOK, "a b", "meta-types.gguf", &f, &e);
    cr_expect_null(t);
    cr_expect(strstr(e.msg, "tokenizer.ggml.token_type has 4 entries for 5 tokens"), "%s", e.msg);
    tokenizer_free(t);
    gguf_close(f);
    t = load_vocab_file(NULL, N_TOK, N_TOK - 1, "a b", "meta-scores.gguf", &f, &e);
    cr_expect_null(t);
    cr_expect(strstr(e.msg, "tokenizer.ggml.scores has 4 entries for 5 tokens"), "%s", e.msg);
    tokenizer_free(t);
    gguf_close(f);
    /* longer: llama.cpp reads the first n; a warning */
    expect_warning(NULL, N_TOK + 1, N_TOK, "a b", "meta-types-long.gguf",
                   "tokenizer.ggml.token_type");
    expect_warning(NULL, N_TOK, N_TOK + 1, "a b", "meta-scores-long.gguf", "tokenizer.ggml.scores");
}

Test(metadata, merges_that_name_unknown_tokens) {
    expect_warning(NULL, N_TOK, N_TOK, "a c", "meta-merge-right.gguf", "tokenizer.ggml.merges");
    expect_warning(NULL, N_TOK, N_TOK, "c a", "meta-merge-left.gguf", "tokenizer.ggml.merges");
    expect_warning(NULL, N_TOK, N_TOK, "b a", "meta-merge-result.gguf", "'b a'");
}
