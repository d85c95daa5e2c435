/* Shared by the fuzz targets (tests/fuzz/fuzz-*.c), their replay driver and the seed writer.
 *
 * Every target defines LLVMFuzzerTestOneInput. Built with clang and -fsanitize=fuzzer
 * (configure --enable-fuzzers) it is a libFuzzer binary run by tools/fuzz.sh; built with the
 * normal compiler and replay.c's main it is a `make check` test that feeds the target the
 * generated seeds (seeds.c) and every committed crash reproducer (tests/fuzz/regress/TARGET/).
 * Targets never exit or print on bad input: library errors are return values. */
#ifndef ADAKV_TESTS_FUZZ_H
#define ADAKV_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input cut at its NUL bytes into NUL-terminated strings (a trailing part without a NUL
 * counts too; empty parts are kept). *n gets the count; the array and its strings are one
 * allocation, freed with free(). NULL when out of memory. Used for argv vectors and key=value
 * lists, so that libFuzzer's byte mutations can add, drop and edit arguments. */
char **fuzz_split(const uint8_t *data, size_t size, int *n);

/* The default model (env ADAKV_MODEL, else models/SmolLM2-135M-Instruct.Q4_1.gguf from the
 * current directory). A missing file is the harness's error, not the input's: the message
 * names the path and how to fetch it, and the process exits 1. */
const char *fuzz_model_path(void);
/* Gemma 3 270M (env ADAKV_GEMMA3_MODEL, else models/gemma-3-270m-q4_k_m.gguf): the
 * SentencePiece vocabulary of a real model; same rule when missing. */
const char *fuzz_gemma3_path(void);

/* Seeds of one target ("gguf", "tokenizer-bpe", ...), produced in memory and handed to emit
 * one by one with a short file name. Sources: the test GGUF writer (tiny models of every arch),
 * tests/data/tokenizer-corpus.txt (under $ADAKV_SRCDIR, else the current directory), the chat
 * templates of the two test models, and argv/option vectors written here. Returns the count,
 * or -1 for an unknown target or a missing data file (message on stderr). */
typedef void (*fuzz_emit_fn)(const uint8_t *data, size_t size, const char *name, void *user);
int fuzz_seeds(const char *target, fuzz_emit_fn emit, void *user);

#endif
