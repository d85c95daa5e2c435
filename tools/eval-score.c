/* Scoring of eval-tasks.h: RULER's string_match_all (scripts/eval/synthetic/constants.py), every
 * expected value found in the normalized answer. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "eval-tasks.h"
#include "eval-text.h"

/* Lowercase copy with each whitespace run turned into one space and the ends trimmed. */
static char *normalized(const char *s) {
    char *out = malloc(strlen(s) + 1), *o = out;
    if (!out)
        return NULL;
    bool space = false;
    for (; *s; s++) {
        if (is_space(*s)) {
            space = o != out;
            continue;
        }
        if (space)
            *o++ = ' ';
        space = false;
        *o++ = (char)tolower((unsigned char)*s);
    }
    *o = '\0';
    return out;
}

void eval_score_answer(const char *answer, char *const *expected, int n_expected,
                       struct eval_score *out) {
    *out = (struct eval_score){.n_expected = n_expected};
    char *a = normalized(answer);
    for (int i = 0; a && i < n_expected; i++) {
        char *x = normalized(expected[i]);
        out->n_found += x && *x && strstr(a, x);
        free(x);
    }
    free(a);
    out->score = n_expected ? (double)out->n_found / n_expected : 0.0;
    out->correct = n_expected && out->n_found == n_expected;
}
