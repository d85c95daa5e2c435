/* adakv public API: load a GGUF model, run prompts with an int8, Ada-KV-evicted KV cache. */
#ifndef ADAKV_H
#define ADAKV_H

#define ADAKV_VERSION "0.1.0"

#endif
