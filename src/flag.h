/* Command-line flags, read one way by adakv-run, adakv-server, the tools and adakv_press_set:
 * a flag's spellings matched, and an integer value taken whole or refused (trailing junk, an
 * empty string and overflow are errors, as strtol alone would not make them). Messages name the
 * flag: "--window: 'x' is not an integer", "-t: 513 is out of range [0, 512]",
 * "--prefix: missing value". */
#ifndef ADAKV_FLAG_H
#define ADAKV_FLAG_H

#include <stdbool.h>

#include "error.h"

/* True when the argument `arg` is the flag `name` or its other spelling `alias` (may be NULL). */
bool flag_is(const char *arg, const char *name, const char *alias);

/* Base-10 integer in [lo, hi] into *out. 0, or -1 with e set (and *out unchanged); s may be
 * NULL (a flag given last, without its value). */
int flag_parse_long(const char *flag, const char *s, long lo, long hi, long *out,
                    struct adakv_err *e);
/* The same for an int. */
int flag_parse_int(const char *flag, const char *s, int lo, int hi, int *out, struct adakv_err *e);

/* Splits a comma-separated value in place into items[0 .. *n), at most max of them. An empty
 * item, more than max, and (when unique) an item listed twice are errors: -1 with e set. */
int flag_split_list(const char *flag, char *list, const char **items, int max, int *n, bool unique,
                    struct adakv_err *e);

#endif
