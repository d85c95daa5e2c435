/* Text helpers shared by the files of eval-tasks.h (eval-tasks.c, eval-haystack.c, eval-score.c).
 */
#ifndef ADAKV_EVAL_TEXT_H
#define ADAKV_EVAL_TEXT_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static inline bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static inline char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

#endif
