/* adakv public API: load a Llama-family GGUF model and run prompts on the CPU with an int8 KV
 * cache that Ada-KV presses can evict. The CLI (src/main.c) is a thin program on top of this.
 *
 * Errors: every call that can fail takes a struct adakv_err * and returns -1 or NULL with one
 * line in err->msg naming the file, flag or field at fault. Nothing here prints or exits. */
#ifndef ADAKV_H
#define ADAKV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADAKV_VERSION "0.1.0"

struct adakv_err {
    char msg[512];
};

struct adakv_model; /* weights (mapped from the GGUF file), hyperparameters, tokenizer */
struct adakv_ctx;   /* one sequence: KV cache, positions, scratch */

/* KV storage type; int8 (symmetric, one scale per row) is the default. */
enum adakv_kv_type { ADAKV_KV_INT8 = 0, ADAKV_KV_F16 = 1, ADAKV_KV_F32 = 2 };

#endif
