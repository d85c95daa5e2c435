/* The endpoints' JSON: request bodies checked field by field into jobs (unknown fields, wrong
 * types and out-of-range values are 400s naming the field), and the OpenAI/llama-server-shaped
 * answers, whole or as server-sent events. No HTTP here (http.c) and no model work (engine.c):
 * only tokenization, which reads the model's constant tokenizer from any thread. */
#ifndef ADAKV_SERVER_API_H
#define ADAKV_SERVER_API_H

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"
#include "job.h"
#include "opts.h"

struct api {
    struct adakv_model *m;
    struct engine *g;
    const struct server_opts *o;
    const char *model_id; /* --alias, general.name or the file name */
    int n_vocab;
};

/* A whole answer: status, content type and a malloc'ed body. */
struct api_reply {
    int status;
    const char *type; /* "application/json" unless said otherwise */
    char *body;
    size_t len;
    struct api_stream *stream; /* set instead of body for a streamed answer */
};

/* A streamed completion: its job and what is formatted but not yet sent. */
struct api_stream {
    struct job *j;
    bool chat, include_usage, role_sent, ended;
    char id[48];
    long long created;
    const char *model;
    char *buf; /* [len] SSE bytes, [off, len) unsent */
    size_t len, off, cap;
};

/* Routes one request (method, path, body) to its endpoint; always fills r. fd is the client's
 * socket (or -1): a whole answer waited for is cancelled when the client hangs up. */
void api_handle(struct api *a, const char *method, const char *path, const char *body, size_t len,
                int fd, struct api_reply *r);
/* {"error":{"message":msg,"type":type,"code":status}} into r. */
void api_error(struct api_reply *r, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Blocks until more events are formatted into st->buf; false once the stream has ended. */
bool api_stream_more(struct api_stream *st);
/* The client is gone or the answer sent: cancels the job if still running, frees. */
void api_stream_free(struct api_stream *st);

#endif
