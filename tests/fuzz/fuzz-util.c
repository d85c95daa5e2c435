/* fuzz.h's input splitting and test-model paths, shared by every target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

char **fuzz_split(const uint8_t *data, size_t size, int *n) {
    size_t parts = 1;
    for (size_t i = 0; i < size; i++)
        parts += data[i] == 0;
    if (size && data[size - 1] == 0)
        parts--; /* a final NUL ends the last part instead of starting an empty one */
    /* one block: the pointer array, then a copy of the bytes with a NUL after the last one */
    char **v = malloc(parts * sizeof *v + size + 1);
    if (!v)
        return NULL;
    char *s = (char *)(v + parts);
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    size_t k = 0;
    for (size_t i = 0; k < parts; i++) {
        v[k++] = s + i;
        i += strlen(s + i);
    }
    *n = (int)parts;
    return v;
}

static const char *model_path(const char *env, const char *fallback, const char *fetch) {
    const char *p = getenv(env);
    if (!p || !*p)
        p = fallback;
    if (access(p, R_OK)) {
        fprintf(stderr, "fuzz: %s not readable: set %s or run %s\n", p, env, fetch);
        exit(1);
    }
    return p;
}

const char *fuzz_model_path(void) {
    return model_path("ADAKV_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf",
                      "tools/fetch-model.sh");
}

const char *fuzz_gemma3_path(void) {
    return model_path("ADAKV_GEMMA3_MODEL", "models/gemma-3-270m-q4_k_m.gguf",
                      "tools/fetch-gemma.sh");
}
