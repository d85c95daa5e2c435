/* Special tokens: the end-of-turn, end-of-message and fill-in-the-middle tokens a file does not
 * name, found by their texts; the end-of-generation set; the control and user-defined tokens that
 * encoding matches before BPE/SPM, longest first.
 *
 * The rules follow llama.cpp's llama_vocab::impl::load (read as facts): which texts mark
 * end-of-generation, which control-looking tokens are forced to control type. */
#include "tokenizer-impl.h"

#include <stdlib.h>
#include <string.h>

/* Texts that llama.cpp treats as end-of-generation markers (forcing control type). */
static const char *const eog_texts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\uff5cend\u2581of\u2581sentence\uff5c>", /* DeepSeek's, UTF-8 */
    "[e~[",
};
/* Candidates for the end-of-turn token when tokenizer.ggml.eot_token_id is absent. */
static const char *const eot_texts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<\uff5cend\u2581of\u2581sentence\uff5c>", /* DeepSeek's, UTF-8 */
    "<end_of_utterance>",
};
/* Fill-in-the-middle markers: forced to control type; pad/repo/sep also end generation. */
static const char *const fim_control_texts[] = {
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<PRE>",
    "\xe2\x96\x81<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<SUF>",
    "\xe2\x96\x81<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<MID>",
    "\xe2\x96\x81<MID>",
    "<|code_middle|>",
    "<|middle|>",
};
static const char *const fim_pad_texts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
                                            "[PAD]"};
static const char *const fim_rep_texts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                                            "<reponame>"};
static const char *const fim_sep_texts[] = {"<|file_sep|>"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int32_t find_cstr(const struct tokenizer *t, const char *s) {
    return tok_lookup(t, s, strlen(s));
}

/* First text of the list present in the vocab (llama.cpp picks in hash order; we pick in list
 * order so the result is deterministic), forced to control type. */
static int32_t detect_first(struct tokenizer *t, const char *const *texts, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int32_t id = find_cstr(t, texts[i]);
        if (id >= 0) {
            t->tokens[id].attr |= TOKEN_ATTR_CONTROL;
            return id;
        }
    }
    return -1;
}

static int cmp_special(const void *a, const void *b, void *ctx) {
    const struct tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->tokens[x].len != t->tokens[y].len)
        return t->tokens[x].len > t->tokens[y].len ? -1 : 1;
    return x < y ? -1 : x > y;
}

int tok_special_setup(struct tokenizer *t, const struct gguf_file *f, struct adakv_err *e) {
    int32_t fim_pad = -1, fim_rep = -1, fim_sep = -1;
    if (tok_read_id(t, f, "tokenizer.ggml.fim_pad_token_id", &fim_pad, e) ||
        tok_read_id(t, f, "tokenizer.ggml.fim_rep_token_id", &fim_rep, e) ||
        tok_read_id(t, f, "tokenizer.ggml.fim_sep_token_id", &fim_sep, e))
        return -1;
    if (t->eot < 0)
        t->eot = detect_first(t, eot_texts, COUNT(eot_texts));
    if (t->eom < 0)
        t->eom = detect_first(t, (const char *const[]){"<|eom_id|>"}, 1);
    for (size_t i = 0; i < COUNT(fim_control_texts); i++)
        detect_first(t, &fim_control_texts[i], 1);
    if (fim_pad < 0)
        fim_pad = detect_first(t, fim_pad_texts, COUNT(fim_pad_texts));
    if (fim_rep < 0)
        fim_rep = detect_first(t, fim_rep_texts, COUNT(fim_rep_texts));
    if (fim_sep < 0)
        fim_sep = detect_first(t, fim_sep_texts, COUNT(fim_sep_texts));

    t->eog = calloc((size_t)t->n_vocab, 1);
    if (!t->eog)
        return err_set(e, "tokenizer: out of memory");
    for (size_t i = 0; i < COUNT(eog_texts); i++) {
        int32_t id = find_cstr(t, eog_texts[i]);
        if (id >= 0) {
            t->eog[id] = 1;
            t->tokens[id].attr |= TOKEN_ATTR_CONTROL;
        }
    }
    const int32_t extra[] = {fim_pad, fim_rep, fim_sep, t->eos, t->eot, t->eom};
    for (size_t i = 0; i < COUNT(extra); i++)
        if (extra[i] >= 0)
            t->eog[extra[i]] = 1;

    size_t n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        n += (t->tokens[id].attr &
              (TOKEN_ATTR_CONTROL | TOKEN_ATTR_USER_DEFINED | TOKEN_ATTR_UNKNOWN)) != 0;
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!t->special)
        return err_set(e, "tokenizer: out of memory");
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->tokens[id].attr &
            (TOKEN_ATTR_CONTROL | TOKEN_ATTR_USER_DEFINED | TOKEN_ATTR_UNKNOWN))
            t->special[t->n_special++] = id;
    /* Longest first so "<|im_start|>" wins over any shorter token inside it; equal lengths by
     * id (llama.cpp's std::sort leaves them in unspecified order). */
    qsort_r(t->special, t->n_special, sizeof *t->special, cmp_special, t);
    return 0;
}
