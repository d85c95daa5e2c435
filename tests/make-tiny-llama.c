/* Writes the tiny random Llama-3-shaped model (tests/tiny-llama.h) to the given path, for
 * tools/golden/make-tiny-logits.py. Usage: make-tiny-llama out.gguf */
#include <stdio.h>

#include "tiny-llama.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make-tiny-llama out.gguf\n");
        return 2;
    }
    tiny_llama_write(argv[1]);
    return 0;
}
