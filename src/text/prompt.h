/* Prompt -> tokens for a context and an optional question, as adakv-run and adakv-eval feed
 * the model. The question part is tokenized on its own, so the context's tokens are the same
 * whatever question follows: a question-agnostic press can compress the context once and every
 * question is prefilled on top of it. */
#ifndef ADAKV_PROMPT_H
#define ADAKV_PROMPT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "gguf.h"
#include "tokenizer.h"

struct prompt_text {
    const char *context; /* [n_context] bytes, not NUL-terminated necessarily */
    size_t n_context;
    const char *question; /* [n_question] bytes, or NULL for none */
    size_t n_question;
    /* [n_reply] bytes the answer starts with (e.g. RULER's answer prefix), written after the
     * template's assistant header (or after the question without a template); NULL = none */
    const char *reply;
    size_t n_reply;
};

/* Tokenizes context + "\n" + question (the newline only when the context does not end in one)
 * as one user turn. chat: the model whose tokenizer.chat_template wraps the turn (chat.h), or
 * NULL for the raw text. The tokens are cut where the question starts (the template's prefix
 * stays with the context, its suffix goes with the question), then the reply prefix follows.
 * Special-token text is parsed, as llama.cpp's tools do. *ctx_tok and *q_tok are malloc'ed
 * (either may be NULL when empty) and owned by the caller. 0, or -1 with e set. */
int prompt_tokenize(const struct tokenizer *tok, const struct gguf_file *chat,
                    const struct prompt_text *t, int32_t **ctx_tok, size_t *n_ctx_tok,
                    int32_t **q_tok, size_t *n_q_tok, struct adakv_err *e);

#endif
