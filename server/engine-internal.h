/* The engine's state, shared by the engine thread's files: engine.c (queue, slots, the batched
 * decode step, the thread) and engine-docs.c (stored documents). Private to server/. */
#ifndef ADAKV_SERVER_ENGINE_INTERNAL_H
#define ADAKV_SERVER_ENGINE_INTERNAL_H

#include <signal.h>

#include "engine.h"
#include "unicode.h"

/* A stored, compressed document: forked by every request that names it. */
struct doc {
    char id[JOB_ID_LEN];
    struct adakv_ctx *ctx; /* prefilled, compressed, press disabled for what follows */
    int n_tokens;
    bool chat;
    size_t rows, rows_full, bytes;
    char press[160];
    double created, prefill_s;
    uint64_t last_used; /* engine step counter at the last fork: LRU order */
    struct doc *next;
};

/* A running request. */
struct slot {
    struct job *j;
    struct adakv_ctx *ctx;
    struct adakv_sampler *smp;
    float *logits; /* [n_vocab] of the last evaluated position */
    struct utf8_stream us;
    bool ignore_eos;
};

struct engine {
    struct adakv_model *m;
    struct engine_params p;
    int n_vocab;
    struct adakv_ctx *base; /* empty; never evaluated; its scratch serves every fork */
    struct adakv_press *press;
    int32_t *eog; /* [n_eog] end-of-generation ids (ignore_eos masks them) */
    int n_eog;
    pthread_t thread;
    bool started;
    volatile sig_atomic_t interrupt; /* stops a prefill midway at shutdown */

    pthread_mutex_t mu; /* everything below */
    pthread_cond_t cv;
    struct job **pending; /* FIFO ring [cap_pending] */
    int cap_pending, head, n_pending, n_admitting;
    struct job **control; /* deletions: never refused, run before admissions */
    int n_control, cap_control;
    bool stopping;
    struct slot *slots; /* [parallel], the first n_active used */
    int n_active;
    struct doc *docs;
    uint64_t use_clock;
    struct engine_stats st;

    /* the decode step's buffers, engine thread only */
    struct adakv_ctx **b_seq;
    int32_t *b_tok;
    int *b_slot;
    float *b_logits; /* [parallel][n_vocab] */
    char *piece;
    size_t piece_cap;
};

/* ---- stored documents (engine-docs.c); the list is under mu, the contexts engine thread only ----
 */

/* The stored document named id, or NULL (caller holds mu). */
struct doc *engine_doc_find(struct engine *g, const char *id);
void engine_doc_free(struct doc *d);
/* The jobs that create (prefill, compress, store) and delete a document; engine thread. */
void engine_ctx_create(struct engine *g, struct job *j);
void engine_ctx_delete(struct engine *g, struct job *j);

#endif
