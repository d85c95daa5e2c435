/* A request between an HTTP handler thread and the engine thread: what to run, and the channel
 * its results come back on. The handler creates it, the engine fills it; both hold a reference
 * and the last to let go frees it, so a client that disconnects mid-answer (its handler gone)
 * leaves the engine nothing dangling: the engine sees `cancelled` and retires the request. */
#ifndef ADAKV_SERVER_JOB_H
#define ADAKV_SERVER_JOB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adakv.h"

enum job_kind {
    JOB_COMPLETE,   /* prompt (or question on a stored context) -> generated text */
    JOB_CTX_CREATE, /* prefill + compress a document once, store it */
    JOB_CTX_DELETE, /* drop a stored document (runs on the engine: it owns every context) */
};

#define JOB_MAX_STOP 4 /* OpenAI's limit on stop strings */
#define JOB_ID_LEN   32

struct job_gen {
    int max_tokens;           /* -1: until end of generation or a full context */
    float temp, top_p;        /* llama-server's defaults: 0.8, 0.95 */
    int top_k;                /* 40 */
    uint64_t seed;            /* random when the request gives none */
    char *stop[JOB_MAX_STOP]; /* owned, NUL-terminated, non-empty */
    int n_stop;
    bool ignore_eos; /* llama-server's: end-of-generation tokens are never sampled */
};

struct job {
    enum job_kind kind;
    /* ---- input, written by the handler before submitting, then read-only ---- */
    /* [n_tokens]: the prompt's context part (compressed by the press), or the document; then
     * [n_q] the question part, prefilled on top uncompressed (prompt_tokenize's split, so a
     * request prefills exactly as adakv-run does); with ctx_id only the question */
    int32_t *tokens, *q;
    size_t n_tokens, n_q;
    int32_t *rec; /* [n_rec] KVzip's reconstruction of the document (JOB_CTX_CREATE), or NULL */
    size_t n_rec;
    char ctx_id[JOB_ID_LEN];   /* stored context to fork (JOB_COMPLETE) or to delete */
    bool chat;                 /* the prompt was built with the chat template */
    struct adakv_press *press; /* owned: JOB_CTX_CREATE's press */
    struct job_gen gen;

    /* ---- output, under mu; the engine signals cv on every change ---- */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *text; /* [len] generated UTF-8 so far (stop strings cut); [0, ready) may be sent */
    size_t len, cap, ready;
    size_t sent; /* bytes the handler has taken */
    int n_prompt, n_gen;
    bool done;
    const char *finish; /* "stop" or "length" once done */
    int status;         /* HTTP status of a failure, 0 = success */
    const char *err_type;
    char err[512];
    double t_queued, t_started, t_first, t_done; /* seconds, CLOCK_MONOTONIC */
    /* JOB_CTX_CREATE's result: the stored context's id and report (JSON text, owned) */
    char *result;
    bool cancelled; /* the client is gone: the engine stops generating */
    int refs;
};

struct job *job_new(enum job_kind kind);
void job_ref(struct job *j);
void job_unref(struct job *j);

double job_now(void);

/* ---- engine side: each takes j->mu itself and wakes the handler ---- */
/* Appends a generated piece (valid UTF-8); cuts the text at the first stop string and returns
 * true when one is found. Text that could still become a stop string is held back from ready. */
bool job_push_text(struct job *j, const char *s, size_t n);
void job_finish(struct job *j, const char *finish);
/* Ends the job with an error; safe after partial output (a stream then reports it inline). */
void job_fail(struct job *j, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool job_is_cancelled(struct job *j);

/* ---- handler side ---- */
/* Waits until the job is done (or, with `some`, until unsent ready text exists). */
void job_wait(struct job *j, bool some);
/* Same, for at most `seconds`; true when what was waited for happened. */
bool job_wait_for(struct job *j, double seconds, bool some);
void job_cancel(struct job *j);

#endif
