/* Stored documents of the engine (engine-internal.h): prefilled, compressed contexts that requests
 * fork, listed by id and evicted least recently used first beyond the KV memory limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "adakv-ext.h"
#include "engine-internal.h"

/* ==== stored documents (list under mu; contexts touched by the engine thread only) ==== */

struct doc *engine_doc_find(struct engine *g, const char *id) {
    for (struct doc *d = g->docs; d; d = d->next)
        if (!strcmp(d->id, id))
            return d;
    return NULL;
}

static void doc_unlink(struct engine *g, struct doc *d) {
    for (struct doc **p = &g->docs; *p; p = &(*p)->next)
        if (*p == d) {
            *p = d->next;
            g->st.n_ctx_stored--;
            g->st.ctx_bytes -= d->bytes;
            return;
        }
}

void engine_doc_free(struct doc *d) {
    if (d) {
        adakv_ctx_free(d->ctx);
        free(d);
    }
}

json_t *engine_list_contexts(struct engine *g) {
    json_t *data = json_array();
    pthread_mutex_lock(&g->mu);
    for (struct doc *d = g->docs; d; d = d->next)
        json_array_append_new(data,
                              json_pack("{s:s, s:s, s:i, s:b, s:I, s:I, s:I, s:s, s:f}", "id",
                                        d->id, "object", "context", "tokens", d->n_tokens, "chat",
                                        d->chat, "rows_kept", (json_int_t)d->rows, "rows_full",
                                        (json_int_t)d->rows_full, "bytes", (json_int_t)d->bytes,
                                        "press", d->press, "prefill_ms", d->prefill_s * 1e3));
    pthread_mutex_unlock(&g->mu);
    return json_pack("{s:s, s:o}", "object", "list", "data", data);
}

/* Least recently used first, until `need` more bytes fit under --kv-memory. */
static void evict_for(struct engine *g, size_t need) {
    while (g->p.kv_memory && g->docs && g->st.ctx_bytes + need > g->p.kv_memory) {
        struct doc *lru = g->docs;
        for (struct doc *d = g->docs; d; d = d->next)
            if (d->last_used < lru->last_used)
                lru = d;
        doc_unlink(g, lru);
        g->st.evictions++;
        fprintf(stderr, "adakv-server: evicted context %s (%zu bytes, least recently used)\n",
                lru->id, lru->bytes);
        engine_doc_free(lru);
    }
}

static void make_id(char *out) {
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) /* ids need to be unique, not secret */
        r = (uint64_t)(job_now() * 1e9);
    snprintf(out, JOB_ID_LEN, "ctx-%016llx", (unsigned long long)r);
}

/* JOB_CTX_CREATE: fork the empty base, prefill and compress the document once with the
 * request's press (question-agnostic), then store it with press disabled, so a question
 * prefilled on top of a fork leaves the compressed rows as they are. */
void engine_ctx_create(struct engine *g, struct job *j) {
    struct adakv_err e;
    const double t0 = job_now();
    struct adakv_ctx *c = adakv_ctx_fork(g->base, &e);
    int rc = c ? adakv_ctx_set_press(c, j->press, true, &e) : -1;
    if (!rc && (int)j->n_tokens + (int)j->n_rec > g->p.n_ctx) {
        job_fail(j, 400, "invalid_request_error",
                 "text: %zu tokens%s, more than the context of %d positions (-c)", j->n_tokens,
                 j->n_rec ? " twice (KVzip prefills the reconstruction too)" : "", g->p.n_ctx);
        adakv_ctx_free(c);
        return;
    }
    if (!rc && adakv_press_evicts(j->press) && (int)j->n_tokens < adakv_press_window(j->press)) {
        job_fail(j, 400, "invalid_request_error",
                 "text: %zu tokens, shorter than the press's window of %d", j->n_tokens,
                 adakv_press_window(j->press));
        adakv_ctx_free(c);
        return;
    }
    if (!rc) {
        adakv_ctx_press_enable(c, true);
        rc = j->rec ? adakv_ctx_prefill_kvzip(c, j->tokens, (int)j->n_tokens, j->rec, (int)j->n_rec,
                                              &e)
                    : adakv_eval(c, j->tokens, (int)j->n_tokens, NULL, false, &e);
    }
    if (rc) {
        job_fail(j, g->interrupt ? 503 : 500, "server_error", "context: %s", e.msg);
        adakv_ctx_free(c);
        return;
    }
    adakv_ctx_press_enable(c, false);
    struct doc *d = calloc(1, sizeof *d);
    char *report = NULL;
    if (!d || adakv_ctx_kv_report(c, &report, &e)) {
        job_fail(j, 500, "server_error", "context: out of memory");
        free(d);
        adakv_ctx_free(c);
        return;
    }
    struct adakv_model_info info;
    adakv_model_get_info(g->m, &info);
    d->ctx = c;
    d->n_tokens = (int)j->n_tokens;
    d->chat = j->chat;
    d->rows = adakv_ctx_kv_rows(c);
    d->rows_full = (size_t)j->n_tokens * info.n_layer * info.n_head_kv;
    d->bytes = adakv_ctx_kv_bytes(c);
    adakv_press_describe(j->press, d->press, sizeof d->press);
    d->created = t0;
    d->prefill_s = job_now() - t0;
    make_id(d->id);
    if (g->p.kv_memory && d->bytes > g->p.kv_memory) {
        job_fail(j, 413, "invalid_request_error",
                 "context: its compressed cache takes %zu bytes, more than --kv-memory %llu",
                 d->bytes, (unsigned long long)g->p.kv_memory);
        free(report);
        engine_doc_free(d);
        return;
    }
    pthread_mutex_lock(&g->mu);
    evict_for(g, d->bytes);
    d->last_used = ++g->use_clock;
    d->next = g->docs;
    g->docs = d;
    g->st.n_ctx_stored++;
    g->st.ctx_bytes += d->bytes;
    g->st.ctx_created++;
    g->st.prefill_s += d->prefill_s;
    g->st.prompt_tokens += j->n_tokens;
    json_t *o = json_pack("{s:s, s:s, s:i, s:b, s:I, s:I, s:I, s:s, s:f, s:s}", "id", d->id,
                          "object", "context", "tokens", d->n_tokens, "chat", d->chat, "rows_kept",
                          (json_int_t)d->rows, "rows_full", (json_int_t)d->rows_full, "bytes",
                          (json_int_t)d->bytes, "press", d->press, "prefill_ms", d->prefill_s * 1e3,
                          "report", report);
    pthread_mutex_unlock(&g->mu);
    free(report);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    pthread_mutex_lock(&j->mu);
    j->result = text;
    pthread_mutex_unlock(&j->mu);
    if (text)
        job_finish(j, "stop");
    else
        job_fail(j, 500, "server_error", "context: out of memory");
}

void engine_ctx_delete(struct engine *g, struct job *j) {
    pthread_mutex_lock(&g->mu);
    struct doc *d = engine_doc_find(g, j->ctx_id);
    if (d)
        doc_unlink(g, d);
    pthread_mutex_unlock(&g->mu);
    if (!d) {
        job_fail(j, 404, "not_found_error", "context '%s' not found", j->ctx_id);
        return;
    }
    engine_doc_free(d); /* running forks keep their own copy of its rows */
    job_finish(j, "stop");
}
