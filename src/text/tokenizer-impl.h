/* Internal layout shared by tokenizer.c (loading, accessors), tokenizer-special.c (special tokens),
 * tokenizer-text.c (encode, decode), tokenizer-bpe.c and tokenizer-spm.c (the two encoders) and
 * tokenizer-merge.c (their merge loop's heap and merge step). Not part of the public API. */
#ifndef ADAKV_TOKENIZER_IMPL_H
#define ADAKV_TOKENIZER_IMPL_H

#include "tokenizer.h"

enum tok_model { TOK_MODEL_BPE, TOK_MODEL_SPM };

/* Pre-tokenizer regex sets of llama.cpp (llm_tokenizer_bpe), keyed by tokenizer.ggml.pre. */
enum tok_pre {
    TOK_PRE_DEFAULT, /* no tokenizer.ggml.pre: llama.cpp's 4-stage "default" */
    TOK_PRE_GPT2,    /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
    TOK_PRE_SMOLLM,  /* \p{N} first, then the GPT-2 pattern (starcoder family) */
    TOK_PRE_LLAMA3,  /* case-insensitive contractions, \p{N}{1,3}, newline-aware whitespace */
    TOK_PRE_QWEN2,   /* as LLAMA3 but single \p{N} */
};

struct tok_token {
    const char *text; /* into t->arena, not NUL-terminated */
    uint32_t len;
    float score;
    unsigned attr; /* enum token_attr */
};

struct tok_merge {
    const char *text; /* "left right" line, into t->arena */
    uint32_t len;
    uint32_t split; /* byte offset of the separating space */
};

/* Open-addressing hash table of indices (slot value = index + 1, 0 = empty). */
struct tok_index {
    uint32_t *slots;
    size_t mask;
};

struct tokenizer {
    enum tok_model model;
    enum tok_pre pre;
    char pre_name[48];
    int32_t n_vocab;
    struct tok_token *tokens;
    struct tok_index vocab_index;
    uint32_t n_merges;
    struct tok_merge *merges;
    struct tok_index merge_index;
    char *arena; /* copies of all token and merge strings */

    int32_t bos, eos, eot, eom, unk;
    bool add_bos, add_eos, add_space_prefix, clean_spaces, ignore_merges;
    uint8_t *eog; /* one flag per token */

    /* Control/user-defined/unknown tokens, longest text first: matched before BPE/SPM. */
    int32_t *special;
    size_t n_special;

    /* Warnings about metadata llama.cpp also accepts (one line each, '\n'-separated, oldest
     * first; a full buffer drops later ones): the caller decides whether to print them. */
    char warning[2048];
};

uint64_t tok_hash(const char *s, size_t n, uint64_t h);
#define TOK_HASH_SEED 0xcbf29ce484222325ull

/* Token id of text[0..len), -1 if none. */
int32_t tok_lookup(const struct tokenizer *t, const char *text, size_t len);
/* Rank of the merge (left, right), -1 if none. */
int32_t tok_merge_rank(const struct tokenizer *t, const char *l, size_t ln, const char *r,
                       size_t rn);

/* Optional token id key: an id outside the vocabulary keeps *id (the model family's default,
 * or none) with a warning naming the key, as llama.cpp's "bad special token" warning does.
 * 0, or -1 with e set when the key is not an unsigned integer. */
int tok_read_id(struct tokenizer *t, const struct gguf_file *f, const char *key, int32_t *id,
                struct adakv_err *e);
/* After the vocab and the ids the file names are loaded: finds the special tokens the file does
 * not name, forces control type on them, builds t->eog and t->special. 0, or -1 with e set. */
int tok_special_setup(struct tokenizer *t, const struct gguf_file *f, struct adakv_err *e);

/* Growable id array for the encoders. */
struct tok_ids {
    int32_t *v;
    size_t n, cap;
};
int tok_ids_push(struct tok_ids *ids, int32_t id, struct adakv_err *e);

/* ---- The merge loop both encoders run (tokenizer-merge.c): a word is a linked list of symbols;
 * candidate pairs of neighbours wait in a heap, best first; the best is popped, skipped when
 * stale, else its right symbol is merged into its left one and the new neighbour pairs pushed.
 * BPE and SPM differ only in which pairs are candidates and in their key. */

/* One symbol: the byte range [off, off + n) of the encoder's text, linked to its neighbours
 * (indices, -1 at the ends); n = 0 once merged into its left neighbour. */
struct tok_sym {
    int prev, next;
    uint32_t off, n;
};

/* A candidate merge of the adjacent symbols `left` and `right`. Merged in this order: the lower
 * rank first (BPE: the merge's line), else the higher score (SPM: the score of the token the
 * pair forms), else the leftmost pair. Each encoder sets one of rank and score and leaves the
 * other 0, so the one order is BPE's (rank, left) and SPM's (-score, left). size: the two
 * symbols' bytes when pushed (a popped pair whose symbols have changed since is stale). */
struct tok_pair {
    int32_t rank;
    float score;
    int left, right;
    uint32_t size;
};
/* Binary heap of candidates, best first; zero-initialised = empty. */
struct tok_heap {
    struct tok_pair *v; /* [cap], owned: free(v) */
    size_t n, cap;
};
/* Adds p (the array grows by doubling). False when out of memory: p is dropped. */
bool tok_heap_push(struct tok_heap *h, struct tok_pair p);
/* Removes and returns the best candidate; h->n > 0. */
struct tok_pair tok_heap_pop(struct tok_heap *h);
/* Merges p's right symbol into its left one, unless p is stale (either side merged away or grown
 * since p was pushed). True when merged: the caller then pushes p.left's pairs with its new
 * neighbours. */
bool tok_sym_merge(struct tok_sym *syms, struct tok_pair p);

/* Encoders of one raw-text fragment (no special tokens inside), appending to ids. */
int tok_bpe_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_ids *ids,
                   struct adakv_err *e);
int tok_spm_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_ids *ids,
                   struct adakv_err *e);

#endif
