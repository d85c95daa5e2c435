/* eval-tasks: RULER-style retrieval tasks and their scoring, without a model.
 *
 * RULER (Hsieh et al. 2024, "RULER: What's the Real Context Size of Your Long-Context Language
 * Models?", github.com/NVIDIA/RULER) hides facts ("needles") in long filler text ("haystack")
 * and asks for them back; its templates, needle sentences and string-match metric are
 * reproduced here. The haystack is any prose the caller passes (adakv-eval: the Debian licence
 * texts of tests/data/text/). Every case is a pure function of (task, length, depth, sample,
 * seed) and the haystack, so a sweep can be resumed or rerun and give the same prompts.
 *
 * A prompt is split the way a question-agnostic press needs it: `context` (task instruction +
 * haystack with needles; it never names what will be asked), `question`, and `reply` (RULER's
 * answer prefix, written at the start of the model's turn). Lengths are in tokens of the whole
 * prompt, measured by a caller-supplied counter (the real tokenizer and chat template in
 * adakv-eval; anything monotone in tests). */
#ifndef ADAKV_EVAL_TASKS_H
#define ADAKV_EVAL_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adakv.h"

enum eval_task {
    EVAL_TASK_NIAH_NUMBER, /* one needle, 7-digit number value (RULER niah_single_2) */
    EVAL_TASK_NIAH_WORD,   /* one needle, adjective-noun word value */
    EVAL_TASK_NIAH_UUID,   /* one needle, UUID value (niah_single_3) */
    EVAL_TASK_MULTIKEY,    /* 4 needles with different keys, one asked (niah_multikey_1) */
    EVAL_TASK_MULTIVALUE,  /* 1 key with 4 values, all asked (niah_multivalue) */
    EVAL_TASK_MULTIQUERY,  /* 4 needles with different keys, 2 asked (niah_multiquery) */
    EVAL_TASK_VT,          /* variable tracking: a chain of 5 assignments (vt, 1 chain, 4 hops) */
    EVAL_TASK_CWE,         /* common words extraction: the 10 most frequent words of a list */
    EVAL_TASK_PASSKEY,     /* the pass key of Mohtashami & Jaggi 2023: a 5-digit number */
    EVAL_TASK_QA,          /* a two-sentence passage about a person; a question in words about
                              one of its facts (town, year or trade), RULER's QA template */
    EVAL_TASK_COUNT
};

#define EVAL_MAX_EXPECTED 10 /* cwe's 10 words is the most */
#define EVAL_MAX_NEEDLES  8

const char *eval_task_name(enum eval_task t);
/* 0 and *out set, or -1 when s names no task. */
int eval_task_parse(const char *s, enum eval_task *out);
/* Whether the task places a needle at a requested depth (cwe has no haystack: depth -1). */
bool eval_task_has_depth(enum eval_task t);
/* Tokens the answer needs at most (RULER's tokens_to_generate, shortened where the expected
 * values fit in fewer: a 135M model rarely stops by itself). */
int eval_task_answer_tokens(enum eval_task t);

/* The filler text, cut into words (single spaces between them in `text`). */
struct eval_haystack {
    char *text; /* [len + 1] the words joined by single spaces */
    size_t len;
    size_t *word;       /* [n_word] byte offset of each word in text */
    uint8_t *word_len;  /* [n_word] its length, capped at 255 */
    uint8_t *ends_sent; /* [n_word] 1 if a sentence ends after this word */
    int n_word;
    char **vocab; /* [n_vocab] distinct lowercase letter-only words of >= 4 letters,
                     in order of first appearance (cwe's word lists) */
    int n_vocab;
};

/* Splits text[0..len) at whitespace; -1 with e set when it has fewer than 2 sentences or
 * memory runs out. */
int eval_haystack_init(struct eval_haystack *h, const char *text, size_t len, struct adakv_err *e);
void eval_haystack_free(struct eval_haystack *h);

/* Tokens of the whole prompt built from the three parts (context, question, reply) as the
 * model will see it. 0 with *n_tokens set, or -1 with e set. */
typedef int (*eval_count_fn)(void *user, const char *context, const char *question,
                             const char *reply, size_t *n_tokens, struct adakv_err *e);

struct eval_case {
    enum eval_task task;
    int length; /* requested prompt tokens */
    int depth;  /* percent of the haystack before the depth needle, or -1 (no depth) */
    int sample;
    uint64_t seed;
    char *context, *question, *reply; /* malloc'ed, NUL-terminated */
    char *expected[EVAL_MAX_EXPECTED];
    int n_expected;
    /* where the inserted sentences start in `context` (in text order), and which one was put
     * at the requested depth (-1 for none) */
    size_t needle_at[EVAL_MAX_NEEDLES];
    size_t needle_len[EVAL_MAX_NEEDLES]; /* bytes of each inserted sentence (or passage) */
    int n_needles, depth_needle;
    size_t hay_begin, hay_end; /* the haystack's byte range in `context` */
    size_t n_tokens;           /* the counter's tokens for the chosen prompt (<= length) */
    int n_units;               /* haystack words (cwe: list entries) used */
};

/* Generates one case whose prompt is as long as `length` tokens allows: the most haystack words
 * (cwe: list entries) for which count() stays <= length. depth in [0, 100] for tasks with a
 * depth (the needle goes to the sentence boundary nearest that fraction of the haystack), -1
 * otherwise. -1 with e set for a bad depth, a length too short for the task's fixed text, a
 * haystack without enough distinct words (cwe), or a counter error. eval_case_free after either
 * result. */
int eval_case_make(const struct eval_haystack *h, enum eval_task task, int length, int depth,
                   int sample, uint64_t seed, eval_count_fn count, void *user, struct eval_case *c,
                   struct adakv_err *e);
void eval_case_free(struct eval_case *c);

/* RULER's string_match_all: the fraction of expected values found in the answer, compared
 * case-insensitively with whitespace runs read as one space; `correct` when all are found. */
struct eval_score {
    int n_expected, n_found;
    double score;
    bool correct;
};
void eval_score_answer(const char *answer, char *const *expected, int n_expected,
                       struct eval_score *out);

#endif
