/* Writes the tiny random Llama-3-shaped model (tests/tiny-llama.h), or one of its variants,
 * to the given path, for tools/golden/make-tiny-logits.py.
 * Usage: make-tiny-llama out.gguf [llama|qwen2|qwen3|qwen2-yarn|gemma3] */
#include <stdio.h>

#include "tiny-llama.h"

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3 || tiny_llama_write(argv[1], argc == 3 ? argv[2] : "llama")) {
        fprintf(stderr, "usage: make-tiny-llama out.gguf [llama|qwen2|qwen3|qwen2-yarn|gemma3]\n");
        return 2;
    }
    return 0;
}
