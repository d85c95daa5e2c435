/* Tiny tokenizer vocabularies built in code with the test GGUF writer, for the tokenizer fuzz
 * targets and the GGUF seeds: small enough that every merge rule and special-token path is a
 * few mutations away, unlike a real model's 49k- or 262k-token vocabulary. */
#ifndef ADAKV_TESTS_FUZZ_TINY_VOCAB_H
#define ADAKV_TESTS_FUZZ_TINY_VOCAB_H

#include "gguf-writer.h"
#include "tokenizer.h"

/* Byte-level BPE ("gpt2"): the 256 GPT-2 byte symbols, a few merges ("Ġ t", "h e", ...),
 * control tokens <|endoftext|> <|im_start|> <|im_end|>, a user-defined <tool>; pre may be NULL
 * (no tokenizer.ggml.pre key). Returns the token count. */
int tiny_vocab_add_bpe(struct gw *w, const char *pre);
/* SentencePiece ("llama"): <unk> <s> </s>, <0x00>..<0xFF>, "▁" and pieces with scores, a
 * control <start_of_turn> and a user-defined <u>. Returns the token count. */
int tiny_vocab_add_spm(struct gw *w);

/* Loads the tokenizer of w's image through gguf_open_memory (the tokenizer copies what it
 * keeps, so the image is not needed afterwards); frees w. NULL with e set on failure. */
struct tokenizer *tiny_vocab_load(struct gw *w, struct adakv_err *e);

#endif
