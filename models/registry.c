/* The table of architectures (arch_registry, declared by src/model/arch.h), keyed by the GGUF key
 * general.architecture. The engine reads this table and includes nothing from models/, so an
 * arch is added here and in its own file without touching the engine. */
#include <stddef.h>

#include "arch.h"

/* Every arch once: the declarations, the table and the names in messages come from this list. */
#define ARCHS(X) X(llama) X(qwen2) X(qwen3) X(gemma3)

#define DECLARE(a) extern const struct arch arch_##a;
ARCHS(DECLARE)
#define ENTRY(a) &arch_##a,
const struct arch *const arch_registry[] = {ARCHS(ENTRY) NULL};

#define NAME(a) ", " #a
static const char names[] = ARCHS(NAME);
const char *const arch_registry_names = names + 2; /* past the first ", " */
