/* Stored document contexts (/v1/contexts) and the tokenizer endpoints (api.h). */
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

void ctx_create(struct api *a, const char *body, size_t len, struct api_reply *r) {
    struct check c = {.r = r};
    json_t *o = parse_body(&c, body, len);
    if (!o)
        return;
    static const char *const fields[] = {"text", "press", "chat", "model", NULL};
    known_fields(&c, o, fields);
    size_t n = 0;
    const char *text = json_get_str(&c, o, "text", &n);
    if (!text && !c.bad)
        bad(&c, "%s: required (a string)", "text");
    else if (text && n == 0)
        bad(&c, "%s: empty", "text");
    bool chat = true;
    json_get_bool(&c, o, "chat", &chat);
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

void ctx_delete(struct api *a, const char *id, struct api_reply *r) {
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

void tokenize(struct api *a, const char *body, size_t len, struct api_reply *r) {
    struct check c = {.r = r};
    json_t *o = parse_body(&c, body, len);
    if (!o)
        return;
    static const char *const fields[] = {"content", "add_special", "parse_special", "model", NULL};
    known_fields(&c, o, fields);
    size_t n = 0;
    const char *text = json_get_str(&c, o, "content", &n);
    if (!text && !c.bad)
        bad(&c, "%s: required (a string)", "content");
    bool add = false, special = true; /* llama-server's defaults */
    json_get_bool(&c, o, "add_special", &add);
    json_get_bool(&c, o, "parse_special", &special);
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

void detokenize(struct api *a, const char *body, size_t len, struct api_reply *r) {
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
