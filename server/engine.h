/* The engine: one thread that owns the model's contexts (the shared empty base, the stored
 * documents and one fork per running request) and runs every eval. HTTP handler threads only
 * submit jobs and wait on them (job.h), so no context is ever touched by two threads: forks
 * share their parent's scratch (adakv_ctx_fork), which makes this the rule, not a choice.
 *
 * Continuous batching: between decode steps the engine retires finished requests and admits
 * waiting ones (prefilling their prompt, or forking a stored document and prefilling only the
 * question); each step then samples one token for every running request and evaluates all of
 * them in one adakv_eval_batch call (one pass over the weights). */
#ifndef ADAKV_SERVER_ENGINE_H
#define ADAKV_SERVER_ENGINE_H

#include <jansson.h>
#include <stdint.h>

#include "adakv.h"
#include "job.h"

struct engine_params {
    int n_ctx;                   /* positions of every sequence */
    int parallel;                /* requests decoded together */
    int queue;                   /* waiting requests allowed beyond the running ones */
    uint64_t kv_memory;          /* stored documents' KV bytes before LRU eviction; 0 = no limit */
    struct adakv_press *press;   /* default press of prompts; the engine takes it over */
    struct adakv_ctx_params ctx; /* of the base context every sequence is forked from */
};

struct engine_stats {
    uint64_t requests, rejected, prompt_tokens, gen_tokens, steps, evictions, ctx_created;
    double decode_s, prefill_s;
    int active, queued, n_ctx_stored;
    uint64_t kv_bytes, ctx_bytes; /* all contexts (stored + running); stored ones */
};

struct engine;

/* Creates the base context (the RAM check happens here) and starts the thread. */
struct engine *engine_start(struct adakv_model *m, const struct engine_params *p,
                            struct adakv_err *e);
/* Queues j (the engine takes a reference). -1 when the queue is full or the engine stopping:
 * the caller answers 503. */
int engine_submit(struct engine *g, struct job *j);
/* Queued requests fail with 503, running ones end where they are; joins the thread. */
void engine_stop(struct engine *g);
void engine_free(struct engine *g);
void engine_get_stats(struct engine *g, struct engine_stats *out);
/* {"object":"list","data":[{id, tokens, rows, bytes, press, ...}]}, a new reference. */
json_t *engine_list_contexts(struct engine *g);
int engine_n_ctx(const struct engine *g);

#endif
