/* The public text API (adakv.h): a model's tokenizer and chat template behind the opaque model
 * handle. Thin on purpose: each call is the internal stage's own function (tokenizer.c, chat.c),
 * which the CLI and the tests use directly, so the API cannot drift from what they check. */
#include <stdlib.h>

#include "adakv-ext.h"
#include "chat.h"
#include "error.h"
#include "tokenizer.h"

void adakv_free(void *p) {
    free(p);
}

/* The model's tokenizer, or an error naming what is missing (a file without tokenizer.ggml.*
 * keys loads, for benchmarks on bare tensors, but has no text API). */
static const struct tokenizer *need_tokenizer(const struct adakv_model *m, struct adakv_err *e) {
    const struct tokenizer *t = adakv_model_tokenizer(m);
    if (!t)
        err_set(e, "model: the file has no tokenizer (tokenizer.ggml.* keys)");
    return t;
}

int adakv_tokenize(const struct adakv_model *m, const char *text, size_t len, bool add_special,
                   bool parse_special, int32_t **tokens, size_t *n, struct adakv_err *e) {
    const struct tokenizer *t = need_tokenizer(m, e);
    *tokens = NULL;
    *n = 0;
    if (!t)
        return -1;
    return tokenizer_encode(t, text, len, add_special, parse_special, tokens, n, e);
}

int adakv_detokenize(const struct adakv_model *m, const int32_t *tokens, size_t n,
                     bool remove_special, char **text, size_t *len, struct adakv_err *e) {
    const struct tokenizer *t = need_tokenizer(m, e);
    *text = NULL;
    *len = 0;
    if (!t)
        return -1;
    return tokenizer_decode(t, tokens, n, remove_special, false, text, len, e);
}

size_t adakv_token_piece(const struct adakv_model *m, int32_t token, char *buf, size_t cap) {
    const struct tokenizer *t = adakv_model_tokenizer(m);
    return t ? tokenizer_piece(t, token, false, buf, cap) : 0;
}

int32_t adakv_token_bos(const struct adakv_model *m) {
    const struct tokenizer *t = adakv_model_tokenizer(m);
    return t ? tokenizer_bos(t) : -1;
}

int32_t adakv_token_eos(const struct adakv_model *m) {
    const struct tokenizer *t = adakv_model_tokenizer(m);
    return t ? tokenizer_eos(t) : -1;
}

bool adakv_token_is_eog(const struct adakv_model *m, int32_t token) {
    const struct tokenizer *t = adakv_model_tokenizer(m);
    return t && tokenizer_is_eog(t, token);
}

int adakv_chat_apply(const struct adakv_model *m, const char *user_text, size_t len, char **text,
                     size_t *text_len, struct adakv_err *e) {
    *text = NULL;
    *text_len = 0;
    return chat_apply(adakv_model_gguf(m), user_text, len, text, text_len, e);
}

int adakv_chat_apply_messages(const struct adakv_model *m, const struct adakv_chat_message *msgs,
                              size_t n, char **text, size_t *text_len, struct adakv_err *e) {
    *text = NULL;
    *text_len = 0;
    return chat_apply_messages(adakv_model_gguf(m), msgs, n, text, text_len, e);
}
