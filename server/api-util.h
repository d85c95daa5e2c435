/* What the endpoint files share (api.c, api-complete.c, api-ctx.c): replies, and request
 * field checks, each failure a 400 naming the field. */
#ifndef ADAKV_SERVER_API_UTIL_H
#define ADAKV_SERVER_API_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api.h"

struct check {
    struct api_reply *r;
    bool bad; /* a failure was answered: later ones are dropped */
};

/* r takes o's text (o is released); out of memory becomes a fixed 500. */
void reply_json(struct api_reply *r, int status, json_t *o);
/* Any bytes as a JSON string: invalid UTF-8 becomes U+FFFD (jansson refuses it otherwise). */
json_t *json_text(const char *s, size_t n);
/* The first failure is the answer; the format is always a literal (client text only ever goes
 * in through %s). Returns false. */
bool bad(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* false (after bad) when o has a key not in the NULL-terminated names */
bool known_fields(struct check *c, json_t *o, const char *const *names);
/* true when the field is there, of its type and in range; false when absent or null, or after
 * bad() when it is not */
bool json_get_int(struct check *c, json_t *o, const char *k, long long lo, long long hi,
                  long long *out);
bool json_get_num(struct check *c, json_t *o, const char *k, double lo, double hi, double *out);
bool json_get_bool(struct check *c, json_t *o, const char *k, bool *out);
const char *json_get_str(struct check *c, json_t *o, const char *k, size_t *len);
/* the body as a JSON object, or NULL after bad() */
json_t *parse_body(struct check *c, const char *body, size_t len);

/* the endpoints of api-complete.c and api-ctx.c */
void complete(struct api *a, bool chat, const char *body, size_t len, int fd, struct api_reply *r);
void ctx_create(struct api *a, const char *body, size_t len, struct api_reply *r);
void ctx_delete(struct api *a, const char *id, struct api_reply *r);
void tokenize(struct api *a, const char *body, size_t len, struct api_reply *r);
void detokenize(struct api *a, const char *body, size_t len, struct api_reply *r);

#endif
