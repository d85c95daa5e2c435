/* The table of architectures, keyed by the GGUF key general.architecture. */
#include <string.h>

#include "arch.h"

extern const struct arch arch_llama, arch_qwen2, arch_qwen3;

static const struct arch *const archs[] = {&arch_llama, &arch_qwen2, &arch_qwen3};
#define N_ARCHS (sizeof archs / sizeof archs[0])

const struct arch *arch_find(struct gguf_str name) {
    for (size_t i = 0; i < N_ARCHS; i++)
        if (gguf_str_eq(name, archs[i]->name))
            return archs[i];
    return NULL;
}

const char *arch_supported_names(void) {
    return "llama, qwen2, qwen3";
}
