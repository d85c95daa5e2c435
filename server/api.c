/* The endpoints (api.h): replies, request field checks (api-util.h), the model, health and
 * metrics endpoints, and the routing to the completion (api-complete.c) and document and token
 * (api-ctx.c) endpoints. */
#include "api.h"

#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "adakv-ext.h"
#include "unicode.h"

#include "api-util.h"

/* ==== replies ==== */

void reply_json(struct api_reply *r, int status, json_t *o) {
    r->status = status;
    r->type = "application/json";
    r->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    r->len = r->body ? strlen(r->body) : 0;
    json_decref(o);
    if (!r->body) { /* only out of memory gets here: a fixed text needs no allocation */
        static const char oom[] =
            "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"code\":500}}";
        r->status = 500;
        r->body = strdup(oom);
        r->len = r->body ? strlen(oom) : 0;
    }
}

void api_error(struct api_reply *r, int status, const char *type, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* the message may quote client bytes: make it valid UTF-8 before it becomes JSON */
    char clean[3 * (sizeof msg + 4) + 8];
    struct utf8_stream us = {0};
    size_t n = utf8_stream_push(&us, msg, strlen(msg), clean, sizeof clean);
    n += utf8_stream_flush(&us, clean + n, sizeof clean - n);
    reply_json(r, status,
               json_pack("{s:{s:s%, s:s, s:i}}", "error", "message", clean, n, "type", type, "code",
                         status));
}

/* Any bytes as a JSON string: invalid UTF-8 becomes U+FFFD (jansson refuses it otherwise). */
json_t *json_text(const char *s, size_t n) {
    char *out = malloc(3 * (n + 4) + 4);
    if (!out)
        return NULL;
    struct utf8_stream us = {0};
    size_t k = utf8_stream_push(&us, s, n, out, 3 * (n + 4));
    k += utf8_stream_flush(&us, out + k, 4);
    json_t *j = json_stringn(out, k);
    free(out);
    return j;
}

/* ==== field checks: each failure is one 400 naming the field ==== */

/* The first failure is the answer; the format is always a literal of these files (client text
 * only ever goes in through %s). */
bool bad(struct check *c, const char *fmt, ...) {
    if (!c->bad) {
        char msg[700];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        api_error(c->r, 400, "invalid_request_error", "%s", msg);
    }
    c->bad = true;
    return false;
}

bool known_fields(struct check *c, json_t *o, const char *const *names) {
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        bool ok = false;
        for (int i = 0; names[i] && !ok; i++)
            ok = !strcmp(k, names[i]);
        if (!ok)
            return bad(c, "unknown field '%s'", k);
    }
    return true;
}

bool json_get_int(struct check *c, json_t *o, const char *k, long long lo, long long hi,
                  long long *out) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return false;
    if (!json_is_number(v))
        return bad(c, "%s: expected an integer", k);
    /* JSON has one number type: 5.0 is an integer as far as a client knows */
    const double d = json_number_value(v);
    if (!(d >= (double)lo && d <= (double)hi)) {
        return bad(c, "%s: %g is out of range [%lld, %lld]", k, d, lo, hi);
    }
    if (d != (double)(long long)d)
        return bad(c, "%s: expected an integer", k);
    *out = (long long)d;
    return true;
}

bool json_get_num(struct check *c, json_t *o, const char *k, double lo, double hi, double *out) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return false;
    if (!json_is_number(v))
        return bad(c, "%s: expected a number", k);
    const double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) {
        return bad(c, "%s: %g is out of range [%g, %g]", k, d, lo, hi);
    }
    *out = d;
    return true;
}

bool json_get_bool(struct check *c, json_t *o, const char *k, bool *out) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return false;
    if (!json_is_boolean(v))
        return bad(c, "%s: expected true or false", k);
    *out = json_is_true(v);
    return true;
}

const char *json_get_str(struct check *c, json_t *o, const char *k, size_t *len) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        bad(c, "%s: expected a string", k);
        return NULL;
    }
    *len = json_string_length(v);
    return json_string_value(v);
}

json_t *parse_body(struct check *c, const char *body, size_t len) {
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        bad(c, "malformed JSON: %.200s (line %d, column %d)", je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        bad(c, "the body must be a JSON object");
        return NULL;
    }
    return o;
}

/* ==== model, health, metrics ==== */

static void models(struct api *a, struct api_reply *r) {
    struct adakv_model_info info;
    adakv_model_get_info(a->m, &info);
    reply_json(r, 200,
               json_pack("{s:s, s:[{s:s, s:s, s:I, s:s, s:{s:s, s:i, s:i, s:i, s:i, s:i}}]}",
                         "object", "list", "data", "id", a->model_id, "object", "model", "created",
                         (json_int_t)time(NULL), "owned_by", "adakv", "meta", "arch", info.arch,
                         "n_vocab", info.n_vocab, "n_ctx_train", info.n_ctx_train, "n_ctx",
                         engine_n_ctx(a->g), "n_layer", info.n_layer, "n_embd", info.n_embd));
}

static void metrics(struct api *a, struct api_reply *r) {
    struct engine_stats s;
    engine_get_stats(a->g, &s);
    char *b = malloc(8192);
    if (!b) {
        api_error(r, 500, "server_error", "out of memory");
        return;
    }
    /* Prometheus text format 0.0.4; counters end in _total */
    const int n = snprintf(
        b, 8192,
        "# HELP adakv_requests_total Requests accepted into the engine's queue.\n"
        "# TYPE adakv_requests_total counter\nadakv_requests_total %" PRIu64 "\n"
        "# HELP adakv_requests_rejected_total Requests refused with 503 (queue full).\n"
        "# TYPE adakv_requests_rejected_total counter\nadakv_requests_rejected_total %" PRIu64 "\n"
        "# HELP adakv_requests_processing Requests decoding now.\n"
        "# TYPE adakv_requests_processing gauge\nadakv_requests_processing %d\n"
        "# HELP adakv_requests_deferred Requests waiting for a slot.\n"
        "# TYPE adakv_requests_deferred gauge\nadakv_requests_deferred %d\n"
        "# HELP adakv_prompt_tokens_total Prompt and document tokens prefilled.\n"
        "# TYPE adakv_prompt_tokens_total counter\nadakv_prompt_tokens_total %" PRIu64 "\n"
        "# HELP adakv_prompt_seconds_total Seconds spent prefilling.\n"
        "# TYPE adakv_prompt_seconds_total counter\nadakv_prompt_seconds_total %.3f\n"
        "# HELP adakv_tokens_predicted_total Tokens generated.\n"
        "# TYPE adakv_tokens_predicted_total counter\nadakv_tokens_predicted_total %" PRIu64 "\n"
        "# HELP adakv_tokens_predicted_seconds_total Seconds spent in batched decode steps.\n"
        "# TYPE adakv_tokens_predicted_seconds_total counter\n"
        "adakv_tokens_predicted_seconds_total %.3f\n"
        "# HELP adakv_predicted_tokens_per_second Generated tokens per decode second.\n"
        "# TYPE adakv_predicted_tokens_per_second gauge\nadakv_predicted_tokens_per_second %.2f\n"
        "# HELP adakv_decode_steps_total Batched decode steps (one eval_batch each).\n"
        "# TYPE adakv_decode_steps_total counter\nadakv_decode_steps_total %" PRIu64 "\n"
        "# HELP adakv_kv_bytes KV cache bytes allocated: stored contexts and running requests.\n"
        "# TYPE adakv_kv_bytes gauge\nadakv_kv_bytes %" PRIu64 "\n"
        "# HELP adakv_kv_bytes_contexts KV cache bytes of the stored document contexts.\n"
        "# TYPE adakv_kv_bytes_contexts gauge\nadakv_kv_bytes_contexts %" PRIu64 "\n"
        "# HELP adakv_contexts Stored document contexts.\n"
        "# TYPE adakv_contexts gauge\nadakv_contexts %d\n"
        "# HELP adakv_contexts_created_total Document contexts prefilled and stored.\n"
        "# TYPE adakv_contexts_created_total counter\nadakv_contexts_created_total %" PRIu64 "\n"
        "# HELP adakv_context_evictions_total Contexts evicted under --kv-memory (LRU).\n"
        "# TYPE adakv_context_evictions_total counter\nadakv_context_evictions_total %" PRIu64 "\n",
        s.requests, s.rejected, s.active, s.queued, s.prompt_tokens, s.prefill_s, s.gen_tokens,
        s.decode_s, s.decode_s > 0 ? s.gen_tokens / s.decode_s : 0.0, s.steps, s.kv_bytes,
        s.ctx_bytes, s.n_ctx_stored, s.ctx_created, s.evictions);
    r->status = 200;
    r->type = "text/plain; version=0.0.4";
    r->body = b;
    r->len = n > 0 && n < 8192 ? (size_t)n : strlen(b);
}

/* ==== routing ==== */

void api_handle(struct api *a, const char *method, const char *path, const char *body, size_t len,
                int fd, struct api_reply *r) {
    memset(r, 0, sizeof *r);
    const bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    static const char ctx_prefix[] = "/v1/contexts/";
    const char *want = NULL; /* the method the path takes, when it is not this one */
    if (!strcmp(path, "/health") || !strcmp(path, "/v1/health")) {
        if (get) {
            reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
            return;
        }
        want = "GET";
    } else if (!strcmp(path, "/v1/models") || !strcmp(path, "/models")) {
        if (get) {
            models(a, r);
            return;
        }
        want = "GET";
    } else if (!strcmp(path, "/metrics")) {
        if (get) {
            metrics(a, r);
            return;
        }
        want = "GET";
    } else if (!strcmp(path, "/v1/chat/completions") || !strcmp(path, "/chat/completions")) {
        if (post) {
            complete(a, true, body, len, fd, r);
            return;
        }
        want = "POST";
    } else if (!strcmp(path, "/v1/completions") || !strcmp(path, "/completions")) {
        if (post) {
            complete(a, false, body, len, fd, r);
            return;
        }
        want = "POST";
    } else if (!strcmp(path, "/tokenize")) {
        if (post) {
            tokenize(a, body, len, r);
            return;
        }
        want = "POST";
    } else if (!strcmp(path, "/detokenize")) {
        if (post) {
            detokenize(a, body, len, r);
            return;
        }
        want = "POST";
    } else if (!strcmp(path, "/v1/contexts")) {
        if (post) {
            ctx_create(a, body, len, r);
            return;
        }
        if (get) {
            reply_json(r, 200, engine_list_contexts(a->g));
            return;
        }
        want = "GET or POST";
    } else if (!strncmp(path, ctx_prefix, sizeof ctx_prefix - 1) && path[sizeof ctx_prefix - 1]) {
        if (!strcmp(method, "DELETE")) {
            ctx_delete(a, path + sizeof ctx_prefix - 1, r);
            return;
        }
        want = "DELETE";
    } else {
        {
            api_error(r, 404, "not_found_error", "no endpoint %s", path);
            return;
        }
    }
    api_error(r, 405, "invalid_request_error", "%s %s: method not allowed (use %s)", method, path,
              want);
}
