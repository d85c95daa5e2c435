/* Completions (api.h): /v1/chat/completions and /v1/completions, whole or streamed as
 * server-sent events. */
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

#include "api-util.h"

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
    if (json_get_int(c, o, "max_tokens", -1, n_ctx, &v) ||
        json_get_int(c, o, "max_completion_tokens", -1, n_ctx, &v) ||
        json_get_int(c, o, "n_predict", -1, n_ctx, &v))
        j->gen.max_tokens = (int)v;
    if (json_get_num(c, o, "temperature", 0, 100, &d))
        j->gen.temp = (float)d;
    if (json_get_int(c, o, "top_k", 0, 1 << 30, &v))
        j->gen.top_k = (int)v;
    if (json_get_num(c, o, "top_p", 0, 1, &d)) /* 0 keeps the most likely token alone */
        j->gen.top_p = d > 0 ? (float)d : 1.0f, j->gen.top_k = d > 0 ? j->gen.top_k : 1;
    if (json_get_int(c, o, "seed", -1, 1000000000000000000LL, &v) && v >= 0)
        j->gen.seed = (uint64_t)v;
    else if (getrandom(&j->gen.seed, sizeof j->gen.seed, 0) != (ssize_t)sizeof j->gen.seed)
        j->gen.seed = (uint64_t)(job_now() * 1e9); /* -1 or none: random, as llama-server */
    json_get_int(c, o, "n", 1, 1, &v);             /* one choice per request */
    /* penalties are not implemented: 0 (OpenAI's default) is accepted, anything else refused
     * rather than silently ignored */
    json_get_num(c, o, "presence_penalty", 0, 0, &d);
    json_get_num(c, o, "frequency_penalty", 0, 0, &d);
    json_get_bool(c, o, "ignore_eos", &j->gen.ignore_eos);
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

/* The messages of a chat as the renderer takes them: each one's text parts joined into one
 * malloc'd string (contents are freed by chat_free). */
struct chat {
    struct adakv_chat_message *m;
    size_t n;
};

static void chat_free(struct chat *ch) {
    for (size_t i = 0; i < ch->n; i++)
        free((char *)ch->m[i].content);
    free(ch->m);
    ch->m = NULL;
    ch->n = 0;
}

/* One message's content: a string, or OpenAI's content parts of type text, joined. */
static char *message_text(struct check *c, json_t *ct, size_t *len) {
    const size_t parts = json_is_array(ct) ? json_array_size(ct) : 1;
    size_t total = 0;
    char *out = malloc(1);
    if (!out) {
        bad(c, "%s: out of memory", "messages");
        return NULL;
    }
    for (size_t p = 0; p < parts; p++) {
        json_t *part = json_is_array(ct) ? json_array_get(ct, p) : ct;
        json_t *t = json_is_object(part) ? json_object_get(part, "text") : part;
        json_t *ty = json_is_object(part) ? json_object_get(part, "type") : NULL;
        if (!json_is_string(t) ||
            (json_is_object(part) &&
             (!json_is_string(ty) || strcmp(json_string_value(ty), "text")))) {
            bad(c, "%s: content must be a string or text parts", "messages");
            free(out);
            return NULL;
        }
        const size_t tl = json_string_length(t);
        char *grown = realloc(out, total + tl + 1);
        if (!grown) {
            bad(c, "%s: out of memory", "messages");
            free(out);
            return NULL;
        }
        out = grown;
        memcpy(out + total, json_string_value(t), tl);
        total += tl;
    }
    out[total] = '\0';
    *len = total;
    return out;
}

/* The conversation: objects with a role and a content (a string or text parts). The roles and
 * their order are checked where the conversation is rendered (chat_apply_messages), with the
 * same words for the server and the library. */
static bool chat_messages(struct check *c, json_t *msgs, struct chat *ch) {
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        bad(c, "%s: expected a non-empty array of messages", "messages");
        return false;
    }
    const size_t n = json_array_size(msgs);
    if (!(ch->m = calloc(n, sizeof *ch->m))) {
        bad(c, "%s: out of memory", "messages");
        return false;
    }
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
        const char *role = json_get_str(c, m, "role", &rl);
        if (!role) {
            bad(c, "%s: each message needs a role (string)", "messages");
            break;
        }
        size_t len = 0;
        char *text = message_text(c, json_object_get(m, "content"), &len);
        if (!text)
            break;
        ch->m[ch->n++] = (struct adakv_chat_message){role, text, len};
    }
    if (c->bad)
        chat_free(ch);
    return !c->bad;
}

/* With a stored context the question is one user turn after the document's: optional system
 * text (put before the question's, as before the document there is no other place for it),
 * then the user's. *len bytes, malloc'd. */
static char *question_text(struct check *c, const struct chat *ch, size_t *len) {
    const bool sys = ch->n == 2 && !strcmp(ch->m[0].role, "system");
    if (ch->n > 2 || (ch->n == 2 && !sys) || strcmp(ch->m[ch->n - 1].role, "user")) {
        bad(c,
            "%s: with context_id, one user turn (after an optional system message): the "
            "document is the conversation's first turn",
            "messages");
        return NULL;
    }
    const size_t n = (sys ? ch->m[0].len + 2 : 0) + ch->m[ch->n - 1].len;
    char *out = malloc(n + 1);
    if (!out) {
        bad(c, "%s: out of memory", "messages");
        return NULL;
    }
    size_t at = 0;
    if (sys) {
        memcpy(out, ch->m[0].content, ch->m[0].len);
        memcpy(out + ch->m[0].len, "\n\n", 2);
        at = ch->m[0].len + 2;
    }
    memcpy(out + at, ch->m[ch->n - 1].content, ch->m[ch->n - 1].len);
    out[n] = '\0';
    *len = n;
    return out;
}

/* Whether the client closed its end (a peer's FIN or an error), without reading from it. */
static bool client_gone(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

void complete(struct api *a, bool chat, const char *body, size_t len, int fd, struct api_reply *r) {
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
    json_get_bool(&c, o, "stream", &stream);
    json_t *so = json_object_get(o, "stream_options");
    if (so && !c.bad) {
        static const char *const fields[] = {"include_usage", NULL};
        if (!json_is_object(so))
            bad(&c, "%s: expected an object", "stream_options");
        else if (known_fields(&c, so, fields))
            json_get_bool(&c, so, "include_usage", &usage);
    }
    size_t n = 0, idl = 0;
    const char *id = json_get_str(&c, o, "context_id", &idl);
    if (id && (idl == 0 || idl >= JOB_ID_LEN))
        bad(&c, "%s: not an id of this server", "context_id");
    else if (id)
        memcpy(j->ctx_id, id, idl + 1);
    char *text = NULL;
    bool rendered = false; /* text is the chat template's output already */
    if (chat) {
        if (json_object_get(o, "prompt"))
            bad(&c, "%s: not a field of chat completions (use messages)", "prompt");
        else if (!json_object_get(o, "messages"))
            bad(&c, "%s: required", "messages");
        else if (!c.bad) {
            /* a stored context: the question turn only; else the whole conversation rendered
             * here and tokenized as plain text (it carries the template's markers) */
            struct chat ch = {0};
            struct adakv_err e;
            if (chat_messages(&c, json_object_get(o, "messages"), &ch)) {
                if (j->ctx_id[0])
                    text = question_text(&c, &ch, &n);
                else if (adakv_chat_apply_messages(a->m, ch.m, ch.n, &text, &n, &e))
                    bad(&c, "messages: %s", e.msg);
                else
                    rendered = true;
            }
            chat_free(&ch);
        }
    } else {
        const char *p = json_get_str(&c, o, "prompt", &n);
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
        const struct gguf_file *tmpl = chat && !rendered ? adakv_model_gguf(a->m) : NULL;
        if (prompt_tokenize(adakv_model_tokenizer(a->m), tmpl, &pt, &ct, &n_ct, &qt, &n_qt, &e))
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
