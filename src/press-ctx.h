/* The press bound to a context (press-ctx.c); the context owns it and frees it. */
#ifndef ADAKV_PRESS_CTX_H
#define ADAKV_PRESS_CTX_H

struct press_binding;
void press_binding_free(struct press_binding *b);

#endif
