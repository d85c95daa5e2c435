/* Prompt -> tokens (prompt.h): the user turn, the chat template, the cut at the question. */
#include "prompt.h"

#include <stdlib.h>
#include <string.h>

#include "chat.h"

/* context + "\n" + question into a malloc'ed NUL-terminated buffer; *q_at = where the
 * question starts (the end when there is none). */
static char *user_text(const struct prompt_text *t, size_t *n_out, size_t *q_at) {
    size_t n = t->n_context + (t->question ? t->n_question + 1 : 0);
    char *user = malloc(n + 1);
    if (!user)
        return NULL;
    memcpy(user, t->context, t->n_context);
    *q_at = t->n_context;
    if (t->question) {
        bool nl = t->n_context && t->context[t->n_context - 1] == '\n';
        if (!nl)
            user[(*q_at)++] = '\n';
        memcpy(user + *q_at, t->question, t->n_question);
        n = *q_at + t->n_question;
    }
    user[n] = '\0';
    *n_out = n;
    return user;
}

int prompt_tokenize(const struct tokenizer *tok, const struct gguf_file *chat,
                    const struct prompt_text *t, int32_t **ctx_tok, size_t *n_ctx_tok,
                    int32_t **q_tok, size_t *n_q_tok, struct adakv_err *e) {
    size_t n = 0, q_at = 0;
    char *user = user_text(t, &n, &q_at);
    if (!user)
        return err_set(e, "out of memory");
    char *text = user;
    size_t text_len = n, split = q_at;
    if (chat) {
        /* render once with a marker-free user text, then locate the question by its offset
         * from the end: the template adds only a fixed suffix after the user text */
        if (chat_apply(chat, user, n, &text, &text_len, e)) {
            free(user);
            return -1;
        }
        char *at = memmem(text, text_len, user, n);
        split = at ? (size_t)(at - text) + q_at : text_len;
        free(user);
    }
    if (t->reply && t->n_reply) {
        char *grown = realloc(text, text_len + t->n_reply + 1);
        if (!grown) {
            free(text);
            return err_set(e, "out of memory");
        }
        text = grown;
        memcpy(text + text_len, t->reply, t->n_reply);
        text_len += t->n_reply;
        text[text_len] = '\0';
    }
    int rc = tokenizer_encode(tok, text, split, true, true, ctx_tok, n_ctx_tok, e);
    if (!rc)
        rc = tokenizer_encode(tok, text + split, text_len - split, false, true, q_tok, n_q_tok, e);
    free(text);
    return rc;
}
