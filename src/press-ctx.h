/* The press bound to a context (press-ctx.c); the context owns it and frees it. */
#ifndef ADAKV_PRESS_CTX_H
#define ADAKV_PRESS_CTX_H

#include "adakv.h"

struct press_binding;
void press_binding_free(struct press_binding *b);

struct adakv_ctx;
/* Binds src's press (its options as given, its report flag, enabled or not) to dst, which has
 * the same model; the report of src's last compression stays with src. */
int press_binding_copy(struct adakv_ctx *dst, const struct adakv_ctx *src, struct adakv_err *e);
/* Decode-time eviction (--kv-max), called by the context after each decode step: any layer
 * whose heads outgrew the cap is re-scored with the recent queries and compacted in place. */
int press_after_decode(struct adakv_ctx *c, struct adakv_err *e);

#endif
