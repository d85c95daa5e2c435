/* Chat templates: a conversation (system first, then user and assistant turns, a user turn
 * last) in the model's chat format, as the model's Jinja template (tokenizer.chat_template)
 * renders these messages with add_generation_prompt = true. adakv has no Jinja engine: the
 * format is recognised from markers in the template text, and the parts that vary between models of
 * one format (a default system message, content trimming, spacing) are read from the template too.
 *
 * The result contains special-token text (e.g. "<|im_start|>"): encode it with
 * parse_special = true and add_special = true. A template's leading bos_token is NOT written,
 * because the tokenizer adds BOS itself when the model wants it (as llama.cpp strips it). */
#ifndef ADAKV_CHAT_H
#define ADAKV_CHAT_H

#include <stddef.h>

#include "adakv.h" /* struct adakv_chat_message */
#include "error.h"
#include "gguf.h"

enum chat_format {
    CHAT_FORMAT_UNKNOWN = 0,
    CHAT_FORMAT_CHATML,  /* <|im_start|>role\n...<|im_end|>\n (SmolLM2, Qwen) */
    CHAT_FORMAT_LLAMA3,  /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    CHAT_FORMAT_MISTRAL, /* [INST] ... [/INST] (Mistral, Llama 2 without system) */
    CHAT_FORMAT_GEMMA,   /* <start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n */
};

/* Format named by the markers in the template text (NUL-terminated not required). */
enum chat_format chat_detect(const char *tmpl, size_t len);
const char *chat_format_name(enum chat_format fmt);

/* Renders the messages m[0..n) with the template text tmpl[0..tmpl_len) (NULL as below). Roles
 * other than system, user and assistant, a system message after the first, or a last message
 * that is not the user's are refused with one line in e. */
int chat_apply_messages_template(const char *tmpl, size_t tmpl_len,
                                 const struct adakv_chat_message *m, size_t n, char **out,
                                 size_t *out_len, struct adakv_err *e);

/* Same, with the template read from the model's tokenizer.chat_template (see chat_apply). */
int chat_apply_messages(const struct gguf_file *f, const struct adakv_chat_message *m, size_t n,
                        char **out, size_t *out_len, struct adakv_err *e);

/* One user turn: renders user_text[0..len) with the template text tmpl[0..tmpl_len). tmpl may be
 * NULL: then plain ChatML without a system message (llama.cpp's fallback for models without a
 * template). *out is malloc'd, NUL-terminated, owned by the caller. Returns 0, or -1 with one line
 * in e (template of an unsupported format, out of memory). */
int chat_apply_template(const char *tmpl, size_t tmpl_len, const char *user_text, size_t len,
                        char **out, size_t *out_len, struct adakv_err *e);

/* Same, with the template read from the model's tokenizer.chat_template. A file without one
 * gets llama.cpp's fallback: Gemma's turns when general.architecture is gemma3 (Gemma 3 base
 * files carry no template; llama.cpp --chat-template gemma), else plain ChatML. */
int chat_apply(const struct gguf_file *f, const char *user_text, size_t len, char **out,
               size_t *out_len, struct adakv_err *e);

#endif
