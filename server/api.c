/* The endpoints (api.h): routing, request checks, answers. */
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
#include "prompt.h"
#include "unicode.h"

/* ==== replies ==== */

static void reply_json(struct api_reply *r, int status, json_t *o) {
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
static json_t *json_text(const char *s, size_t n) {
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

struct check {
    struct api_reply *r;
    bool bad;
};

/* The first failure is the answer; the format is always a literal of this file (client text
 * only ever goes in through %s). */
static bool bad(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool bad(struct check *c, const char *fmt, ...) {
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

static bool known_fields(struct check *c, json_t *o, const char *const *names) {
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

static bool get_int(struct check *c, json_t *o, const char *k, long long lo, long long hi,
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

static bool get_num(struct check *c, json_t *o, const char *k, double lo, double hi, double *out) {
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

static bool get_bool(struct check *c, json_t *o, const char *k, bool *out) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return false;
    if (!json_is_boolean(v))
        return bad(c, "%s: expected true or false", k);
    *out = json_is_true(v);
    return true;
}

static const char *get_str(struct check *c, json_t *o, const char *k, size_t *len) {
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

static json_t *parse_body(struct check *c, const char *body, size_t len) {
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

/* ==== completions ==== */

static const char *const complete_fields[] = {"model",
                                              "prompt",
                                              "messages",
                                              "max_tokens",
                                              "max_completion_tokens",
                                              "n_predict",
                                              "temperature",
                                              "top_k",
                                              "top_p",
                                              "seed",
                                              "stop",
                                              "stream",
                                              "stream_options",
                                              "n",
                                              "ignore_eos",
                                              "context_id",
                                              "user",
                                              "presence_penalty",
                                              "frequency_penalty",
                                              NULL};

/* The sampling and length fields shared by both completion endpoints. */
static void gen_fields(struct check *c, json_t *o, int n_ctx, struct job *j) {
    long long v = 0;
    double d = 0;
    if (get_int(c, o, "max_tokens", -1, n_ctx, &v) ||
        get_int(c, o, "max_completion_tokens", -1, n_ctx, &v) ||
        get_int(c, o, "n_predict", -1, n_ctx, &v))
        j->gen.max_tokens = (int)v;
    if (get_num(c, o, "temperature", 0, 100, &d))
        j->gen.temp = (float)d;
    if (get_int(c, o, "top_k", 0, 1 << 30, &v))
        j->gen.top_k = (int)v;
    if (get_num(c, o, "top_p", 0, 1, &d)) /* 0 keeps the most likely token alone */
        j->gen.top_p = d > 0 ? (float)d : 1.0f, j->gen.top_k = d > 0 ? j->gen.top_k : 1;
    if (get_int(c, o, "seed", -1, 1000000000000000000LL, &v) && v >= 0)
        j->gen.seed = (uint64_t)v;
    else if (getrandom(&j->gen.seed, sizeof j->gen.seed, 0) != (ssize_t)sizeof j->gen.seed)
        j->gen.seed = (uint64_t)(job_now() * 1e9); /* -1 or none: random, as llama-server */
    get_int(c, o, "n", 1, 1, &v);                  /* one choice per request */
    /* penalties are not implemented: 0 (OpenAI's default) is accepted, anything else refused
     * rather than silently ignored */
    get_num(c, o, "presence_penalty", 0, 0, &d);
    get_num(c, o, "frequency_penalty", 0, 0, &d);
    get_bool(c, o, "ignore_eos", &j->gen.ignore_eos);
    json_t *stop = json_object_get(o, "stop");
    if (stop && !json_is_null(stop)) {
        json_t *one = json_is_string(stop) ? stop : NULL;
        const size_t n = one ? 1 : json_is_array(stop) ? json_array_size(stop) : 0;
        if (!one && !json_is_array(stop))
            bad(c, "%s: expected a string or an array of strings", "stop");
        else if (n > JOB_MAX_STOP)
            bad(c, "%s: at most 4 strings", "stop");
        for (size_t i = 0; i < n && !c->bad; i++) {
            json_t *s = one ? one : json_array_get(stop, i);
            if (!json_is_string(s) || json_string_length(s) == 0)
                bad(c, "%s: expected non-empty strings", "stop");
            else if (!(j->gen.stop[j->gen.n_stop++] = strdup(json_string_value(s))))
                bad(c, "%s: out of memory", "stop");
        }
    }
}

/* The one user turn of a chat: optional system messages first (their text is put before the
 * user's, as the one-turn chat templates have no other place for it), then one user message. */
static char *chat_user_text(struct check *c, json_t *msgs, size_t *len) {
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        bad(c, "%s: expected a non-empty array of messages", "messages");
        return NULL;
    }
    size_t n = json_array_size(msgs), total = 0;
    char *out = NULL;
    for (size_t i = 0; i < n && !c->bad; i++) {
        json_t *m = json_array_get(msgs, i);
        static const char *const fields[] = {"role", "content", "name", NULL};
        if (!json_is_object(m)) {
            bad(c, "%s: each message must be an object", "messages");
            break;
        }
        if (!known_fields(c, m, fields))
            break;
        size_t rl = 0;
        const char *role = get_str(c, m, "role", &rl);
        if (!role) {
            bad(c, "%s: each message needs a role (string)", "messages");
            break;
        }
        const bool last = i + 1 == n;
        if (strcmp(role, last ? "user" : "system")) {
            bad(c,
                "%s: one user turn is supported (system messages, then a user message "
                "last): the chat templates here render one turn",
                "messages");
            break;
        }
        json_t *ct = json_object_get(m, "content");
        /* a string, or OpenAI's content parts of type text */
        const size_t parts = json_is_array(ct) ? json_array_size(ct) : 1;
        for (size_t p = 0; p < parts && !c->bad; p++) {
            json_t *part = json_is_array(ct) ? json_array_get(ct, p) : ct;
            json_t *t = json_is_object(part) ? json_object_get(part, "text") : part;
            json_t *ty = json_is_object(part) ? json_object_get(part, "type") : NULL;
            if (!json_is_string(t) ||
                (json_is_object(part) &&
                 (!json_is_string(ty) || strcmp(json_string_value(ty), "text")))) {
                bad(c, "%s: content must be a string or text parts", "messages");
                break;
            }
            const size_t tl = json_string_length(t);
            char *grown = realloc(out, total + tl + 3);
            if (!grown) {
                bad(c, "%s: out of memory", "messages");
                break;
            }
            out = grown;
            memcpy(out + total, json_string_value(t), tl);
            total += tl;
        }
        if (!last && out) { /* a system message ends with a blank line before the user's */
            memcpy(out + total, "\n\n", 2);
            total += 2;
        }
    }
    if (c->bad) {
        free(out);
        return NULL;
    }
    *len = total;
    return out;
}

/* Whether the client closed its end (a peer's FIN or an error), without reading from it. */
static bool client_gone(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void complete(struct api *a, bool chat, const char *body, size_t len, int fd,
                     struct api_reply *r) {
    struct check c = {.r = r};
    json_t *o = parse_body(&c, body, len);
    struct job *j = o ? job_new(JOB_COMPLETE) : NULL;
    if (o && !j)
        api_error(r, 500, "server_error", "out of memory");
    if (!j) {
        json_decref(o);
        return;
    }
    known_fields(&c, o, complete_fields);
    j->chat = chat;
    gen_fields(&c, o, engine_n_ctx(a->g), j);
    bool stream = false, usage = false;
    get_bool(&c, o, "stream", &stream);
    json_t *so = json_object_get(o, "stream_options");
    if (so && !c.bad) {
        static const char *const fields[] = {"include_usage", NULL};
        if (!json_is_object(so))
            bad(&c, "%s: expected an object", "stream_options");
        else if (known_fields(&c, so, fields))
            get_bool(&c, so, "include_usage", &usage);
    }
    size_t n = 0, idl = 0;
    const char *id = get_str(&c, o, "context_id", &idl);
    if (id && (idl == 0 || idl >= JOB_ID_LEN))
        bad(&c, "%s: not an id of this server", "context_id");
    else if (id)
        memcpy(j->ctx_id, id, idl + 1);
    char *text = NULL;
    if (chat) {
        if (json_object_get(o, "prompt"))
            bad(&c, "%s: not a field of chat completions (use messages)", "prompt");
        else if (!json_object_get(o, "messages"))
            bad(&c, "%s: required", "messages");
        else if (!c.bad)
            text = chat_user_text(&c, json_object_get(o, "messages"), &n);
    } else {
        const char *p = get_str(&c, o, "prompt", &n);
        if (json_object_get(o, "messages"))
            bad(&c, "%s: not a field of completions (use prompt)", "messages");
        else if (!p && !c.bad)
            bad(&c, "%s: required (a string)", "prompt");
        else if (p && !(text = malloc(n + 1)))
            bad(&c, "%s: out of memory", "prompt");
        else if (p)
            memcpy(text, p, n + 1);
    }
    /* prompt_tokenize as adakv-run: with a stored context, the question part only (the
     * document's part is in the context already; "." stands for it, since the question's
     * tokens do not depend on what precedes it) */
    if (!c.bad && n == 0 && !j->ctx_id[0])
        bad(&c, "%s: the prompt is empty", chat ? "messages" : "prompt");
    if (!c.bad) {
        struct adakv_err e;
        int32_t *ct = NULL, *qt = NULL;
        size_t n_ct = 0, n_qt = 0;
        struct prompt_text pt = {.context = j->ctx_id[0] ? "." : text,
                                 .n_context = j->ctx_id[0] ? 1 : n,
                                 .question = j->ctx_id[0] ? text : NULL,
                                 .n_question = j->ctx_id[0] ? n : 0};
        if (prompt_tokenize(adakv_model_tokenizer(a->m), chat ? adakv_model_gguf(a->m) : NULL, &pt,
                            &ct, &n_ct, &qt, &n_qt, &e))
            bad(&c, "%s", e.msg);
        if (j->ctx_id[0]) {
            free(ct);
            ct = NULL, n_ct = 0;
        }
        j->tokens = ct, j->n_tokens = n_ct;
        j->q = qt, j->n_q = n_qt;
        if (!c.bad && (long long)n_ct + (long long)n_qt >= engine_n_ctx(a->g)) {
            bad(&c, "%s: %zu tokens, no room left in the context of %d positions (-c)",
                chat ? "messages" : "prompt", n_ct + n_qt, engine_n_ctx(a->g));
        }
    }
    free(text);
    json_decref(o);
    if (c.bad || engine_submit(a->g, j)) {
        if (!c.bad)
            api_error(r, 503, "unavailable_error",
                      "the server is busy: all %d slots and the queue of %d are taken; retry "
                      "later",
                      a->o->parallel, a->o->queue);
        job_unref(j);
        return;
    }
    /* a client that leaves stops its request, as a stream's failed write does, instead of
     * holding a slot until max_tokens; a stream waits for its first text (or its failure) so
     * that an error before it still gets its HTTP status */
    while (!job_wait_for(j, 0.25, stream))
        if (client_gone(fd))
            job_cancel(j);
    pthread_mutex_lock(&j->mu);
    const int status = j->status; /* set once, with done: stable from here if not 0 */
    pthread_mutex_unlock(&j->mu);
    if (status) {
        api_error(r, status, j->err_type, "%s", j->err);
        job_unref(j);
        return;
    }
    if (stream) {
        struct api_stream *st = calloc(1, sizeof *st);
        if (!st) {
            job_cancel(j);
            job_unref(j);
            api_error(r, 500, "server_error", "out of memory");
            return;
        }
        st->j = j;
        st->chat = chat;
        st->include_usage = usage;
        st->model = a->model_id;
        st->created = (long long)time(NULL);
        snprintf(st->id, sizeof st->id, "%s-%016" PRIx64, chat ? "chatcmpl" : "cmpl",
                 j->gen.seed ^ (uint64_t)(uintptr_t)j);
        r->status = 200;
        r->type = "text/event-stream";
        r->stream = st;
        return;
    }
    char cid[48];
    snprintf(cid, sizeof cid, "%s-%016" PRIx64, chat ? "chatcmpl" : "cmpl",
             j->gen.seed ^ (uint64_t)(uintptr_t)j);
    json_t *content = json_stringn(j->text ? j->text : "", j->len);
    json_t *choice = chat ? json_pack("{s:i, s:{s:s, s:o}, s:s}", "index", 0, "message", "role",
                                      "assistant", "content", content, "finish_reason", j->finish)
                          : json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "text", content,
                                      "logprobs", "finish_reason", j->finish);
    const double pm = (j->t_first > 0 ? j->t_first : j->t_done) - j->t_started;
    const double gm = j->t_first > 0 ? j->t_done - j->t_first : 0;
    reply_json(r, 200,
               json_pack("{s:s, s:s, s:I, s:s, s:[o], s:{s:i, s:i, s:i}, s:{s:f, s:f, s:f}}", "id",
                         cid, "object", chat ? "chat.completion" : "text_completion", "created",
                         (json_int_t)time(NULL), "model", a->model_id, "choices", choice, "usage",
                         "prompt_tokens", j->n_prompt, "completion_tokens", j->n_gen,
                         "total_tokens", j->n_prompt + j->n_gen, "timings", "queued_ms",
                         (j->t_started - j->t_queued) * 1e3, "first_token_ms", pm * 1e3,
                         "predicted_ms", gm * 1e3));
    job_unref(j);
}

/* ==== streams: one SSE event per batch of new text ==== */

static bool put(struct api_stream *st, const char *s, size_t n) {
    if (st->len + n > st->cap) {
        size_t cap = st->cap ? st->cap : 1024;
        while (cap < st->len + n)
            cap *= 2;
        char *b = realloc(st->buf, cap);
        if (!b)
            return false;
        st->buf = b;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, s, n);
    st->len += n;
    return true;
}

static bool sse(struct api_stream *st, json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    const char *ev = s ? s
                       : "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                         "\"code\":500}}";
    const bool ok = put(st, "data: ", 6) && put(st, ev, strlen(ev)) && put(st, "\n\n", 2);
    free(s);
    return ok;
}

static json_t *chunk(struct api_stream *st, json_t *text, const char *finish, bool role) {
    json_t *fin = finish ? json_string(finish) : json_null();
    json_t *choice =
        st->chat ? (role ? json_pack("{s:i, s:{s:s, s:o}, s:o}", "index", 0, "delta", "role",
                                     "assistant", "content", text, "finish_reason", fin)
                         : json_pack("{s:i, s:{s:o}, s:o}", "index", 0, "delta", "content", text,
                                     "finish_reason", fin))
                 : json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "text", text, "logprobs",
                             "finish_reason", fin);
    return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", st->id, "object",
                     st->chat ? "chat.completion.chunk" : "text_completion", "created",
                     (json_int_t)st->created, "model", st->model, "choices", choice);
}

bool api_stream_more(struct api_stream *st) {
    if (st->ended)
        return false;
    st->len = st->off = 0;
    struct job *j = st->j;
    job_wait(j, true);
    pthread_mutex_lock(&j->mu);
    const size_t from = j->sent, to = j->ready;
    json_t *text = json_stringn(j->text ? j->text + from : "", to - from);
    j->sent = to;
    const bool done = j->done && j->sent == j->len;
    const int status = j->status, n_prompt = j->n_prompt, n_gen = j->n_gen;
    const char *finish = j->finish, *type = j->err_type;
    char err[sizeof j->err];
    memcpy(err, j->err, sizeof err);
    pthread_mutex_unlock(&j->mu);
    bool ok = true;
    if (st->chat && !st->role_sent) { /* OpenAI's first chunk names the role */
        ok = sse(st, chunk(st, json_string(""), NULL, true));
        st->role_sent = true;
    }
    if (to > from)
        ok = ok && sse(st, chunk(st, text, NULL, false));
    else
        json_decref(text);
    if (done && status) { /* the headers are out: the error travels as an event */
        ok = ok && sse(st, json_pack("{s:{s:s, s:s, s:i}}", "error", "message", err, "type", type,
                                     "code", status));
        st->ended = true;
    } else if (done) {
        ok = ok && sse(st, chunk(st, json_string(""), finish ? finish : "stop", false));
        if (st->include_usage)
            ok = ok &&
                 sse(st, json_pack("{s:s, s:s, s:I, s:s, s:[], s:{s:i, s:i, s:i}}", "id", st->id,
                                   "object", st->chat ? "chat.completion.chunk" : "text_completion",
                                   "created", (json_int_t)st->created, "model", st->model,
                                   "choices", "usage", "prompt_tokens", n_prompt,
                                   "completion_tokens", n_gen, "total_tokens", n_prompt + n_gen));
        ok = ok && put(st, "data: [DONE]\n\n", 14);
        st->ended = true;
    }
    if (!ok) { /* out of memory mid-stream: end it */
        st->ended = true;
        return st->len > 0;
    }
    return true;
}

void api_stream_free(struct api_stream *st) {
    if (!st)
        return;
    job_cancel(st->j); /* a no-op for a finished job; stops a running one */
    job_unref(st->j);
    free(st->buf);
    free(st);
}

/* ==== documents ==== */

/* press: {name, ratio | budget, other adakv-run press options} -> a press; option names are
 * adakv-run's flags with '_' for '-' (ratio and budget stand for kv-ratio and kv-budget). */
static struct adakv_press *press_from(struct api *a, struct check *c, json_t *p) {
    struct adakv_err e;
    struct adakv_press *press = server_opts_press(a->o, &e);
    if (!press) {
        bad(c, "%s", e.msg);
        return NULL;
    }
    if (p && !json_is_object(p)) {
        bad(c, "%s: expected an object {name, ratio | budget, ...}", "press");
    } else if (p) {
        if (json_object_get(p, "name")) /* a named press starts from the defaults, not --press */
            adakv_press_free(press), press = adakv_press_new();
        const char *k;
        json_t *v;
        json_object_foreach(p, k, v) {
            char name[48], val[64];
            snprintf(name, sizeof name, "%s",
                     !strcmp(k, "name")     ? "press"
                     : !strcmp(k, "ratio")  ? "kv-ratio"
                     : !strcmp(k, "budget") ? "kv-budget"
                                            : k);
            for (char *q = name; *q; q++)
                *q = *q == '_' ? '-' : *q;
            if (json_is_string(v))
                snprintf(val, sizeof val, "%s", json_string_value(v));
            else if (json_is_integer(v))
                snprintf(val, sizeof val, "%lld", (long long)json_integer_value(v));
            else if (json_is_real(v))
                snprintf(val, sizeof val, "%.17g", json_real_value(v));
            else if (json_is_boolean(v))
                snprintf(val, sizeof val, "%s", json_is_true(v) ? "on" : "off");
            else {
                bad(c, "press.%.40s: expected a string, number or boolean", k);
                break;
            }
            if (!strcmp(name, "reserve") || !press || adakv_press_set(press, name, val, &e)) {
                bad(c, "press.%.40s: %s", k,
                    !press                    ? "out of memory"
                    : strcmp(name, "reserve") ? e.msg
                                              : "unknown option");
                break;
            }
        }
    }
    if (!c->bad && press && adakv_press_check(press, &e))
        bad(c, "press: %s", e.msg);
    if (!c->bad && press && adakv_press_set(press, "reserve", "0", &e)) /* stored tight */
        bad(c, "press: %s", e.msg);
    if (c->bad) {
        adakv_press_free(press);
        return NULL;
    }
    return press;
}

static void ctx_create(struct api *a, const char *body, size_t len, struct api_reply *r) {
    struct check c = {.r = r};
    json_t *o = parse_body(&c, body, len);
    if (!o)
        return;
    static const char *const fields[] = {"text", "press", "chat", "model", NULL};
    known_fields(&c, o, fields);
    size_t n = 0;
    const char *text = get_str(&c, o, "text", &n);
    if (!text && !c.bad)
        bad(&c, "%s: required (a string)", "text");
    else if (text && n == 0)
        bad(&c, "%s: empty", "text");
    bool chat = true;
    get_bool(&c, o, "chat", &chat);
    struct job *j = c.bad ? NULL : job_new(JOB_CTX_CREATE);
    if (!c.bad && !j)
        api_error(r, 500, "server_error", "out of memory");
    if (j && !(j->press = press_from(a, &c, json_object_get(o, "press")))) {
        job_unref(j);
        j = NULL;
    }
    if (j) {
        struct adakv_err e;
        const struct tokenizer *tok = adakv_model_tokenizer(a->m);
        const struct gguf_file *tmpl = chat ? adakv_model_gguf(a->m) : NULL;
        int32_t *qt = NULL;
        size_t n_qt = 0;
        /* an empty question: the document's tokens as adakv-run cuts them before a question */
        struct prompt_text pt = {.context = text, .n_context = n, .question = "", .n_question = 0};
        int rc = prompt_tokenize(tok, tmpl, &pt, &j->tokens, &j->n_tokens, &qt, &n_qt, &e);
        free(qt);
        if (!rc && adakv_press_needs_reconstruction(j->press)) {
            /* KVzip: the model asked to repeat the document, then the document (as adakv-run) */
            struct prompt_text rt = {.context = text,
                                     .n_context = n,
                                     .question = KVZIP_REPEAT_PROMPT,
                                     .n_question = strlen(KVZIP_REPEAT_PROMPT),
                                     .reply = text,
                                     .n_reply = n};
            int32_t *ct = NULL;
            size_t n_ct = 0;
            rc = prompt_tokenize(tok, tmpl, &rt, &ct, &n_ct, &j->rec, &j->n_rec, &e);
            free(ct);
        }
        j->chat = chat;
        if (rc)
            bad(&c, "text: %s", e.msg);
        else if ((long long)j->n_tokens + (long long)j->n_rec >= engine_n_ctx(a->g)) {
            bad(&c, "text: %zu tokens%s, more than the context of %d positions", j->n_tokens,
                j->n_rec ? " twice (KVzip)" : "", engine_n_ctx(a->g));
        }
    }
    json_decref(o);
    if (!j)
        return;
    if (c.bad || engine_submit(a->g, j)) {
        if (!c.bad)
            api_error(r, 503, "unavailable_error", "the server is busy: the queue is full");
        job_unref(j);
        return;
    }
    job_wait(j, false);
    if (j->status)
        api_error(r, j->status, j->err_type, "%s", j->err);
    else {
        r->status = 200;
        r->type = "application/json";
        r->body = j->result;
        r->len = strlen(j->result);
        j->result = NULL;
    }
    job_unref(j);
}

static void ctx_delete(struct api *a, const char *id, struct api_reply *r) {
    struct job *j = job_new(JOB_CTX_DELETE);
    if (!j) {
        api_error(r, 500, "server_error", "out of memory");
        return;
    }
    if (strlen(id) >= JOB_ID_LEN || !*id) {
        api_error(r, 404, "not_found_error", "context '%s' not found", id);
        job_unref(j);
        return;
    }
    strcpy(j->ctx_id, id);
    if (engine_submit(a->g, j)) {
        api_error(r, 503, "unavailable_error", "the server is stopping");
        job_unref(j);
        return;
    }
    job_wait(j, false);
    if (j->status)
        api_error(r, j->status, j->err_type, "%s", j->err);
    else
        reply_json(r, 200,
                   json_pack("{s:s, s:s, s:b}", "id", id, "object", "context", "deleted", 1));
    job_unref(j);
}

/* ==== tokens ==== */

static void tokenize(struct api *a, const char *body, size_t len, struct api_reply *r) {
    struct check c = {.r = r};
    json_t *o = parse_body(&c, body, len);
    if (!o)
        return;
    static const char *const fields[] = {"content", "add_special", "parse_special", "model", NULL};
    known_fields(&c, o, fields);
    size_t n = 0;
    const char *text = get_str(&c, o, "content", &n);
    if (!text && !c.bad)
        bad(&c, "%s: required (a string)", "content");
    bool add = false, special = true; /* llama-server's defaults */
    get_bool(&c, o, "add_special", &add);
    get_bool(&c, o, "parse_special", &special);
    int32_t *t = NULL;
    size_t nt = 0;
    struct adakv_err e;
    if (!c.bad && adakv_tokenize(a->m, text, n, add, special, &t, &nt, &e))
        bad(&c, "content: %s", e.msg);
    if (!c.bad) {
        json_t *arr = json_array();
        for (size_t i = 0; i < nt; i++)
            json_array_append_new(arr, json_integer(t[i]));
        reply_json(r, 200, json_pack("{s:o}", "tokens", arr));
    }
    adakv_free(t);
    json_decref(o);
}

static void detokenize(struct api *a, const char *body, size_t len, struct api_reply *r) {
    struct check c = {.r = r};
    json_t *o = parse_body(&c, body, len);
    if (!o)
        return;
    static const char *const fields[] = {"tokens", "model", NULL};
    known_fields(&c, o, fields);
    json_t *arr = json_object_get(o, "tokens");
    const size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    if (!c.bad && !json_is_array(arr))
        bad(&c, "%s: required (an array of token ids)", "tokens");
    int32_t *t = malloc((n ? n : 1) * sizeof *t);
    if (!c.bad && !t)
        bad(&c, "%s: out of memory", "tokens");
    for (size_t i = 0; i < n && !c.bad; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= a->n_vocab) {
            bad(&c, "tokens[%zu]: expected a token id in [0, %d)", i, a->n_vocab);
        } else {
            t[i] = (int32_t)json_integer_value(v);
        }
    }
    char *text = NULL;
    size_t tl = 0;
    struct adakv_err e;
    if (!c.bad && adakv_detokenize(a->m, t, n, false, &text, &tl, &e))
        bad(&c, "tokens: %s", e.msg);
    if (!c.bad)
        reply_json(r, 200, json_pack("{s:o}", "content", json_text(text, tl)));
    adakv_free(text);
    free(t);
    json_decref(o);
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
