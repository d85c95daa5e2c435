/* The engine thread (engine.h): queue, slots, the batched decode step; stored documents are in
 * engine-docs.c. */
#include "engine-internal.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adakv-ext.h"
#include "unicode.h"

int engine_n_ctx(const struct engine *g) {
    return g->p.n_ctx;
}

/* ==== admission: a request's sequence, prefilled, becomes a slot ==== */

/* true when j now runs in a slot (which holds the engine's reference to it) */
static bool admit(struct engine *g, struct job *j) {
    struct adakv_err e;
    j->t_started = job_now();
    if (job_is_cancelled(j)) { /* its client left while it waited */
        job_finish(j, "cancelled");
        return false;
    }
    struct adakv_ctx *c = NULL;
    if (j->ctx_id[0]) {
        pthread_mutex_lock(&g->mu);
        struct doc *d = engine_doc_find(g, j->ctx_id);
        if (d)
            d->last_used = ++g->use_clock;
        const bool chat_ok = d && d->chat == j->chat;
        pthread_mutex_unlock(&g->mu);
        if (!d) {
            job_fail(j, 404, "not_found_error", "context_id: '%s' not found (deleted or evicted)",
                     j->ctx_id);
            return false;
        }
        if (!chat_ok) {
            job_fail(j, 400, "invalid_request_error",
                     "context_id: '%s' was stored %s the chat template; use %s", j->ctx_id,
                     d->chat ? "with" : "without",
                     d->chat ? "/v1/chat/completions" : "/v1/completions");
            return false;
        }
        if ((c = adakv_ctx_fork(d->ctx, &e)))
            adakv_ctx_press_enable(c, false); /* the question is not compressed */
    } else if ((c = adakv_ctx_fork(g->base, &e))) {
        /* the server's press, question-aware, with decode room for the answer (as adakv-run) */
        char reserve[16];
        snprintf(reserve, sizeof reserve, "%d",
                 j->gen.max_tokens < 0 || j->gen.max_tokens > g->p.n_ctx ? g->p.n_ctx
                                                                         : j->gen.max_tokens);
        adakv_press_set(g->press, "reserve", reserve, &e);
        const bool compress = adakv_press_evicts(g->press) &&
                              !adakv_press_needs_reconstruction(g->press) &&
                              (int)j->n_tokens >= adakv_press_window(g->press);
        if (adakv_ctx_set_press(c, g->press, false, &e)) {
            adakv_ctx_free(c);
            c = NULL;
        } else {
            adakv_ctx_press_enable(c, compress);
        }
    }
    if (!c) {
        job_fail(j, 500, "server_error", "%s", e.msg);
        return false;
    }
    if (j->n_tokens + j->n_q == 0) {
        job_fail(j, 400, "invalid_request_error", "the prompt has no tokens");
        adakv_ctx_free(c);
        return false;
    }
    const int room = g->p.n_ctx - adakv_ctx_n_past(c);
    const size_t n_prompt = j->n_tokens + j->n_q;
    if ((long)n_prompt >= room) { /* at least one position left to generate into */
        job_fail(j, 400, "invalid_request_error",
                 "the prompt is %zu tokens; %d positions are left in the context (-c %d)", n_prompt,
                 room - 1, g->p.n_ctx);
        adakv_ctx_free(c);
        return false;
    }
    struct slot *s = &g->slots[g->n_active];
    memset(s, 0, sizeof *s);
    s->logits = malloc(sizeof(float) * (size_t)g->n_vocab);
    struct adakv_sampler_params sp = {
        .temp = j->gen.temp, .top_k = j->gen.top_k, .top_p = j->gen.top_p, .seed = j->gen.seed};
    s->smp = s->logits ? adakv_sampler_new(g->m, &sp, &e) : NULL;
    const double t0 = job_now();
    /* as adakv-run: the context part with the press, then the question part on top without */
    int rc = s->smp ? 0 : -1;
    if (!rc && j->n_tokens)
        rc = adakv_eval(c, j->tokens, (int)j->n_tokens, s->logits, false, &e);
    adakv_ctx_press_enable(c, false);
    if (!rc && j->n_q)
        rc = adakv_eval(c, j->q, (int)j->n_q, s->logits, false, &e);
    if (rc) {
        job_fail(j, g->interrupt ? 503 : 500, "server_error", "%s",
                 s->logits ? e.msg : "out of memory");
        adakv_sampler_free(s->smp);
        free(s->logits);
        adakv_ctx_free(c);
        return false;
    }
    s->j = j;
    s->ctx = c;
    s->ignore_eos = j->gen.ignore_eos;
    pthread_mutex_lock(&j->mu);
    j->n_prompt = (int)n_prompt;
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_lock(&g->mu);
    g->n_active++;
    g->st.prompt_tokens += n_prompt;
    g->st.prefill_s += job_now() - t0;
    pthread_mutex_unlock(&g->mu);
    return true;
}

/* ==== the decode step ==== */

/* KV bytes in use for /metrics: stored contexts plus every running sequence. */
static void update_kv(struct engine *g) {
    size_t b = 0;
    for (int i = 0; i < g->n_active; i++)
        b += adakv_ctx_kv_bytes(g->slots[i].ctx);
    pthread_mutex_lock(&g->mu);
    g->st.kv_bytes = g->st.ctx_bytes + b;
    pthread_mutex_unlock(&g->mu);
}

/* Ends slot i's request and frees its sequence; the last slot moves into its place. */
static void retire(struct engine *g, int i, const char *finish) {
    struct slot *s = &g->slots[i];
    char tail[8];
    const size_t n = utf8_stream_flush(&s->us, tail, sizeof tail);
    if (n)
        job_push_text(s->j, tail, n); /* a stop string it completes still cuts the text */
    job_finish(s->j, finish);
    job_unref(s->j);
    adakv_sampler_free(s->smp);
    adakv_ctx_free(s->ctx);
    free(s->logits);
    pthread_mutex_lock(&g->mu);
    g->slots[i] = g->slots[--g->n_active];
    pthread_mutex_unlock(&g->mu);
}

/* Bytes of token t as valid UTF-8 (an incomplete character waits for the next piece), pushed
 * into the request. true when a stop string ended it. */
static bool emit(struct engine *g, struct slot *s, int32_t t) {
    size_t np = adakv_token_piece(g->m, t, g->piece, g->piece_cap);
    if (np + 3 * (np + 4) > g->piece_cap) { /* untrusted vocab: any length; the output's room */
        size_t cap = 4 * np + 16;
        char *p = realloc(g->piece, cap);
        if (!p) {
            job_fail(s->j, 500, "server_error", "out of memory for a token piece");
            return true;
        }
        g->piece = p;
        g->piece_cap = cap;
        np = adakv_token_piece(g->m, t, g->piece, g->piece_cap);
    }
    /* the raw piece sits at the front, its UTF-8 output after it */
    char *out = g->piece + np;
    const size_t n = utf8_stream_push(&s->us, g->piece, np, out, g->piece_cap - np);
    return n && job_push_text(s->j, out, n);
}

static void step(struct engine *g) {
    int n = 0;
    for (int i = 0; i < g->n_active;) {
        struct slot *s = &g->slots[i];
        struct job *j = s->j;
        if (job_is_cancelled(j)) {
            retire(g, i, "cancelled");
            continue;
        }
        for (int k = 0; s->ignore_eos && k < g->n_eog; k++) /* llama.cpp's -inf logit bias */
            s->logits[g->eog[k]] = -INFINITY;
        const int32_t t = adakv_sample(s->smp, s->logits);
        if (adakv_token_is_eog(g->m, t)) {
            retire(g, i, "stop");
            continue;
        }
        const bool stopped = emit(g, s, t);
        pthread_mutex_lock(&j->mu);
        const int n_gen = ++j->n_gen;
        if (n_gen == 1)
            j->t_first = job_now();
        pthread_mutex_unlock(&j->mu);
        pthread_mutex_lock(&g->mu);
        g->st.gen_tokens++;
        pthread_mutex_unlock(&g->mu);
        if (stopped) {
            retire(g, i, "stop");
            continue;
        }
        /* the last token needs no forward pass; a full context ends the answer */
        if (n_gen == j->gen.max_tokens || adakv_ctx_n_past(s->ctx) >= g->p.n_ctx) {
            retire(g, i, "length");
            continue;
        }
        g->b_seq[n] = s->ctx;
        g->b_tok[n] = t;
        g->b_slot[n] = i;
        n++;
        i++;
    }
    if (n == 0)
        return;
    struct adakv_err e;
    const double t0 = job_now();
    /* one sequence alone decodes through adakv_eval, adakv-run's own path: a batch of one
     * does the same work, but its arithmetic may differ in the last bits (adakv.h) */
    const int rc = n == 1 ? adakv_eval(g->b_seq[0], g->b_tok, 1, g->b_logits, false, &e)
                          : adakv_eval_batch(g->b_seq, g->b_tok, n, g->b_logits, &e);
    const double dt = job_now() - t0;
    /* slots were compacted only before this point, so b_slot still names them */
    for (int r = 0; r < n; r++)
        memcpy(g->slots[g->b_slot[r]].logits, g->b_logits + (size_t)r * g->n_vocab,
               sizeof(float) * (size_t)g->n_vocab);
    pthread_mutex_lock(&g->mu);
    g->st.decode_s += dt;
    g->st.steps++;
    pthread_mutex_unlock(&g->mu);
    if (rc) { /* every sequence of a failed batch is broken: end them all */
        fprintf(stderr, "adakv-server: decode step: %s\n", e.msg);
        for (int i = g->n_active - 1; i >= 0; i--) {
            job_fail(g->slots[i].j, 500, "server_error", "decode: %s", e.msg);
            retire(g, i, "error");
        }
    }
}

/* ==== the thread ==== */

static void run_job(struct engine *g, struct job *j) {
    if (j->kind == JOB_CTX_CREATE)
        engine_ctx_create(g, j);
    else if (j->kind == JOB_CTX_DELETE)
        engine_ctx_delete(g, j);
    else if (admit(g, j))
        return; /* the slot keeps the reference */
    job_unref(j);
}

static void *engine_main(void *arg) {
    struct engine *g = arg;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (!g->stopping && !g->n_pending && !g->n_control && !g->n_active)
            pthread_cond_wait(&g->cv, &g->mu);
        if (g->stopping)
            break;
        while (g->n_control) {
            struct job *j = g->control[--g->n_control];
            pthread_mutex_unlock(&g->mu);
            run_job(g, j);
            pthread_mutex_lock(&g->mu);
        }
        while (g->n_pending && g->n_active < g->p.parallel && !g->stopping) {
            struct job *j = g->pending[g->head];
            g->head = (g->head + 1) % g->cap_pending;
            g->n_pending--;
            g->n_admitting++;
            g->st.queued = g->n_pending;
            pthread_mutex_unlock(&g->mu);
            run_job(g, j);
            pthread_mutex_lock(&g->mu);
            g->n_admitting--;
        }
        g->st.active = g->n_active;
        pthread_mutex_unlock(&g->mu);
        if (g->n_active)
            step(g);
        update_kv(g);
        pthread_mutex_lock(&g->mu);
    }
    /* stopping: nothing new starts; waiting requests are refused, running ones end here */
    while (g->n_pending) {
        struct job *j = g->pending[g->head];
        g->head = (g->head + 1) % g->cap_pending;
        g->n_pending--;
        job_fail(j, 503, "unavailable_error", "the server is stopping");
        job_unref(j);
    }
    while (g->n_control) {
        struct job *j = g->control[--g->n_control];
        job_fail(j, 503, "unavailable_error", "the server is stopping");
        job_unref(j);
    }
    pthread_mutex_unlock(&g->mu);
    while (g->n_active)
        retire(g, g->n_active - 1, "abort");
    return NULL;
}

/* ==== outside the thread ==== */

int engine_submit(struct engine *g, struct job *j) {
    pthread_mutex_lock(&g->mu);
    int rc = 0;
    if (g->stopping) {
        rc = -1;
    } else if (j->kind == JOB_CTX_DELETE) {
        if (g->n_control == g->cap_control) {
            const int cap = g->cap_control ? 2 * g->cap_control : 16;
            struct job **c = realloc(g->control, (size_t)cap * sizeof *c);
            if (!c)
                rc = -1;
            else
                g->control = c, g->cap_control = cap;
        }
        if (!rc)
            g->control[g->n_control++] = j;
    } else if (g->n_active + g->n_admitting + g->n_pending >= g->p.parallel + g->p.queue) {
        rc = -1; /* every slot busy and the queue full */
    } else {
        g->pending[(g->head + g->n_pending) % g->cap_pending] = j;
        g->n_pending++;
        g->st.queued = g->n_pending;
    }
    if (rc)
        g->st.rejected++;
    else {
        g->st.requests++;
        job_ref(j);
        pthread_cond_signal(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

void engine_get_stats(struct engine *g, struct engine_stats *out) {
    pthread_mutex_lock(&g->mu);
    *out = g->st;
    out->active = g->n_active;
    out->queued = g->n_pending;
    pthread_mutex_unlock(&g->mu);
}

struct engine *engine_start(struct adakv_model *m, const struct engine_params *p,
                            struct adakv_err *e) {
    struct engine *g = calloc(1, sizeof *g);
    if (!g) {
        adakv_press_free(p->press);
        snprintf(e->msg, sizeof e->msg, "out of memory");
        return NULL;
    }
    g->m = m;
    g->p = *p;
    g->p.press = NULL;
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    g->n_vocab = info.n_vocab;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    struct adakv_ctx_params cp = p->ctx;
    cp.n_ctx = p->n_ctx;
    cp.interrupt = &g->interrupt;
    g->cap_pending = p->parallel + p->queue;
    g->pending = calloc((size_t)g->cap_pending, sizeof *g->pending);
    g->slots = calloc((size_t)p->parallel, sizeof *g->slots);
    g->b_seq = calloc((size_t)p->parallel, sizeof *g->b_seq);
    g->b_tok = calloc((size_t)p->parallel, sizeof *g->b_tok);
    g->b_slot = calloc((size_t)p->parallel, sizeof *g->b_slot);
    g->b_logits = malloc((size_t)p->parallel * g->n_vocab * sizeof(float));
    g->piece_cap = 1024;
    g->piece = malloc(g->piece_cap);
    g->press = p->press; /* owned from here, even on failure */
    for (int32_t t = 0; t < g->n_vocab; t++)
        g->n_eog += adakv_token_is_eog(m, t);
    g->eog = malloc(sizeof(int32_t) * (size_t)(g->n_eog + 1));
    if (!g->pending || !g->slots || !g->b_seq || !g->b_tok || !g->b_slot || !g->b_logits ||
        !g->piece || !g->press || !g->eog) {
        snprintf(e->msg, sizeof e->msg, "out of memory");
        engine_free(g);
        return NULL;
    }
    for (int32_t t = 0, k = 0; t < g->n_vocab; t++)
        if (adakv_token_is_eog(m, t))
            g->eog[k++] = t;
    if (p->parallel > (p->n_ctx < 512 ? p->n_ctx : 512)) {
        snprintf(e->msg, sizeof e->msg, "--parallel: %d is more than the batch of %d rows",
                 p->parallel, p->n_ctx < 512 ? p->n_ctx : 512);
        engine_free(g);
        return NULL;
    }
    if (!(g->base = adakv_ctx_new(m, &cp, e))) {
        engine_free(g);
        return NULL;
    }
    if (pthread_create(&g->thread, NULL, engine_main, g)) {
        snprintf(e->msg, sizeof e->msg, "cannot start the engine thread");
        engine_free(g);
        return NULL;
    }
    g->started = true;
    return g;
}

void engine_stop(struct engine *g) {
    if (!g || !g->started)
        return;
    pthread_mutex_lock(&g->mu);
    g->stopping = true;
    g->interrupt = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    g->started = false;
}

void engine_free(struct engine *g) {
    if (!g)
        return;
    engine_stop(g);
    while (g->docs) {
        struct doc *d = g->docs;
        g->docs = d->next;
        engine_doc_free(d);
    }
    adakv_ctx_free(g->base);
    adakv_press_free(g->press);
    free(g->pending);
    free(g->control);
    free(g->slots);
    free(g->b_seq);
    free(g->b_tok);
    free(g->b_slot);
    free(g->b_logits);
    free(g->piece);
    free(g->eog);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}
