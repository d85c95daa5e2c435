/* The table of architectures, keyed by the GGUF key general.architecture. */
#include <string.h>

#include "arch.h"

/* Every arch once: the declarations, the table and the names in messages come from this list. */
#define ARCHS(X) X(llama) X(qwen2) X(qwen3) X(gemma3)

#define DECLARE(a) extern const struct arch arch_##a;
ARCHS(DECLARE)
#define ENTRY(a) &arch_##a,
static const struct arch *const archs[] = {ARCHS(ENTRY)};
#define N_ARCHS (sizeof archs / sizeof archs[0])

const struct arch *arch_find(struct gguf_str name) {
    for (size_t i = 0; i < N_ARCHS; i++)
        if (gguf_str_eq(name, archs[i]->name))
            return archs[i];
    return NULL;
}

const char *arch_supported_names(void) {
#define NAME(a) ", " #a
    static const char names[] = ARCHS(NAME);
    return names + 2; /* past the first ", " */
}
