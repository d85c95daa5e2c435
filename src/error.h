/* One-line error messages for untrusted input.
 *
 * Every function that can fail on bad input (a GGUF file, a prompt, a flag) returns -1 (or NULL)
 * and writes one line "<what>: <why>" into a caller-owned struct adakv_err. Nothing in the
 * library prints or exits; the CLI prints the line and exits non-zero. */
#ifndef ADAKV_ERROR_H
#define ADAKV_ERROR_H

#include <stddef.h>

#include "adakv.h" /* struct adakv_err is public */

/* Formats into e->msg (if e is not NULL) and returns -1, so callers can write
 * `return err_set(e, "%s: truncated", path);`. */
int err_set(struct adakv_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
