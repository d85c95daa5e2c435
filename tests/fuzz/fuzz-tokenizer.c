/* Fuzz target: the tokenizers on arbitrary bytes (invalid UTF-8, NULs, special-token text).
 * Built twice: fuzz-tokenizer-bpe (byte-level BPE: the default model's 49k-token SmolLM2
 * vocabulary and a tiny vocabulary under ten pre-tokenizers) and, with FUZZ_TOKENIZER_SPM,
 * fuzz-tokenizer-spm (SentencePiece: Gemma 3's 262k-token vocabulary and two tiny ones).
 *
 * Input: byte 0 picks the vocabulary (bits 2-7) and the encode flags (bit 0 add_special, bit 1
 * parse_special); the rest is the text. The ids are then decoded whole and piece by piece,
 * which must stay inside the vocabulary and the buffers (ASan checks the bytes). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "tiny-vocab.h"
#include "tokenizer.h"

enum { MAX_VOCABS = 16 };
static struct tokenizer *vocabs[MAX_VOCABS];
static int n_vocabs;

static void add(struct tokenizer *t, const char *what, struct adakv_err *e) {
    if (!t) { /* a vocabulary the tests load must load here too: the harness is broken */
        fprintf(stderr, "fuzz-tokenizer: %s: %s\n", what, e->msg);
        exit(1);
    }
    vocabs[n_vocabs++] = t;
}

/* The real model's tokenizer; the file is closed after (tokenizer_load copies what it keeps). */
static void add_model(const char *path) {
    struct adakv_err e = {{0}};
    struct gguf_file *f = gguf_open(path, &e);
    add(f ? tokenizer_load(f, &e) : NULL, path, &e);
    gguf_close(f);
}

static void init(void) {
    struct adakv_err e = {{0}};
#ifdef FUZZ_TOKENIZER_SPM
    add_model(fuzz_gemma3_path());
    for (int variant = 0; variant < 2; variant++) {
        struct gw *w = gw_new();
        tiny_vocab_add_spm(w);
        if (variant) { /* the other branches of the SPM session: no space prefix, EOS added */
            gw_kv_bool(w, "tokenizer.ggml.add_space_prefix", false);
            gw_kv_bool(w, "tokenizer.ggml.add_eos_token", true);
        }
        add(tiny_vocab_load(w, &e), "tiny spm", &e);
    }
#else
    add_model(fuzz_model_path());
    /* one tiny vocabulary per pre-tokenizer family and flag set of tokenizer.c's table, plus
     * none (llama.cpp's default) and an unknown name (the GPT-2 fallback) */
    static const char *const pres[] = {NULL,   "llama3", "dbrx",    "smollm",   "starcoder",
                                       "gpt2", "qwen2",  "hunyuan", "trillion", "no-such-pre"};
    for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++) {
        struct gw *w = gw_new();
        tiny_vocab_add_bpe(w, pres[i]);
        add(tiny_vocab_load(w, &e), pres[i] ? pres[i] : "tiny bpe", &e);
    }
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!n_vocabs)
        init();
    if (size < 1)
        return 0;
    const struct tokenizer *t = vocabs[(data[0] >> 2) % n_vocabs];
    const bool add_special = data[0] & 1, parse_special = data[0] & 2;
    struct adakv_err e = {{0}};
    int32_t *ids = NULL;
    size_t n = 0;
    if (tokenizer_encode(t, (const char *)data + 1, size - 1, add_special, parse_special, &ids, &n,
                         &e)) {
        free(ids);
        return 0;
    }
    char *text = NULL;
    size_t len = 0;
    if (!tokenizer_decode(t, ids, n, add_special, parse_special, &text, &len, &e))
        free(text);
    char piece[8]; /* small on purpose: long pieces take the "call again" path */
    for (size_t i = 0; i < n; i++) {
        (void)tokenizer_piece(t, ids[i], parse_special, piece, sizeof piece);
        (void)tokenizer_is_eog(t, ids[i]);
    }
    free(ids);
    return 0;
}
