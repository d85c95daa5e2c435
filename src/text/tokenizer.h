/* Tokenizers from GGUF metadata: prompt text -> token ids, token ids -> bytes.
 *
 * Two models, chosen by tokenizer.ggml.model:
 *   gpt2  - byte-level BPE (SmolLM2, Llama 3, Qwen2) with the pre-tokenizer named by
 *           tokenizer.ggml.pre (tokenizer-bpe.c);
 *   llama - SentencePiece-style merges by score with <0xNN> byte fallback (Llama 2, Mistral;
 *           tokenizer-spm.c).
 * Both reproduce llama.cpp's token ids, including its handling of special-token text and of
 * invalid UTF-8 (see ../shared/design/ecosystem.md sections 1.4 and 2).
 *
 * Lifetime: tokenizer_load copies every string it needs, so the gguf_file may be closed right
 * after. A loaded tokenizer is read-only: encode/piece/decode may run from several threads. */
#ifndef ADAKV_TOKENIZER_H
#define ADAKV_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "gguf.h"
#include "unicode.h" /* struct utf8_stream, utf8_stream_push/flush */

struct tokenizer;

/* Token attributes, from tokenizer.ggml.token_type (1 normal, 2 unknown, 3 control,
 * 4 user-defined, 5 unused, 6 byte; anything else undefined). */
enum token_attr {
    TOKEN_ATTR_UNDEFINED = 0,
    TOKEN_ATTR_UNKNOWN = 1 << 0,
    TOKEN_ATTR_UNUSED = 1 << 1,
    TOKEN_ATTR_NORMAL = 1 << 2,
    TOKEN_ATTR_CONTROL = 1 << 3,
    TOKEN_ATTR_USER_DEFINED = 1 << 4,
    TOKEN_ATTR_BYTE = 1 << 5,
};

struct tokenizer *tokenizer_load(const struct gguf_file *f, struct adakv_err *e);
void tokenizer_free(struct tokenizer *t);

int32_t tokenizer_n_vocab(const struct tokenizer *t);
/* -1 when the model has none. */
int32_t tokenizer_bos(const struct tokenizer *t);
int32_t tokenizer_eos(const struct tokenizer *t);
int32_t tokenizer_eot(const struct tokenizer *t);
/* Whether encode with add_special puts BOS first (tokenizer.ggml.add_bos_token or the model
 * family's default). */
bool tokenizer_adds_bos(const struct tokenizer *t);
/* eos, eot, eom, and end-of-turn control tokens such as <|im_end|> (llama.cpp's EOG set). */
bool tokenizer_is_eog(const struct tokenizer *t, int32_t id);
unsigned tokenizer_attr(const struct tokenizer *t, int32_t id); /* enum token_attr bits */

/* The stored text of a token (vocab alphabet, e.g. "Ġthe"); NULL for a bad id. */
const char *tokenizer_token_text(const struct tokenizer *t, int32_t id, size_t *len);
/* Id of the token whose stored text is exactly text[0..len), or -1. */
int32_t tokenizer_find(const struct tokenizer *t, const char *text, size_t len);

/* Warnings the caller may print (an unknown pre-tokenizer that fell back to GPT-2's regex, a
 * special-token id outside the vocabulary, ...: docs/reliability.md), one per line separated by
 * '\n', or NULL. */
const char *tokenizer_warning(const struct tokenizer *t);
/* "gpt2" or "llama", and the pre-tokenizer in use ("smollm", "llama3", ...). */
const char *tokenizer_model_name(const struct tokenizer *t);
const char *tokenizer_pre_name(const struct tokenizer *t);

/* Encode text (len bytes, may contain NULs/invalid UTF-8). add_special adds BOS/EOS as the
 * model's add_bos_token/add_eos_token say; parse_special recognises the text of control tokens
 * (user-defined tokens are always recognised, as in llama.cpp). *out must be NULL or a malloc'd
 * array; it is realloc'd to hold the *n_out ids and is owned by the caller. Returns 0, or -1
 * with one line in e (out of memory, or a model without the BOS/byte token it needs). */
int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, bool add_special,
                     bool parse_special, int32_t **out, size_t *n_out, struct adakv_err *e);

/* Raw bytes of one token (byte-level decoding applied, SPM's U+2581 turned back into spaces).
 * Control and unknown tokens render their text only if `special`; unused ones render nothing.
 * Returns the byte count; the bytes are copied only if it is <= cap (else call again). A bad id
 * gives 0. */
size_t tokenizer_piece(const struct tokenizer *t, int32_t id, bool special, char *buf, size_t cap);

/* Whole-sequence detokenisation as llama_detokenize does it: drops the SPM space prefix of
 * the first piece, with remove_special drops a leading BOS / trailing EOS the model adds, and
 * applies the model's space clean-up (clean_spaces). *out is malloc'd and NUL-terminated. */
int tokenizer_decode(const struct tokenizer *t, const int32_t *ids, size_t n, bool remove_special,
                     bool unparse_special, char **out, size_t *out_len, struct adakv_err *e);

#endif
