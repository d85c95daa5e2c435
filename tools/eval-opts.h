/* adakv-eval's options: the flags, their defaults and checks (eval-opts.c), read by the run
 * (adakv-eval.c). */
#ifndef ADAKV_TOOLS_EVAL_OPTS_H
#define ADAKV_TOOLS_EVAL_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "adakv.h"
#include "eval-tasks.h"

#define MAX_LIST 32

enum { MODE_AGNOSTIC = 1, MODE_AWARE = 2 };

struct eval_opts {
    const char *model, *csv;
    const char *dump; /* --dump-cases FILE: write every case's token ids (JSON lines), run none */
    const char *haystacks[MAX_LIST];
    int n_haystack;
    enum eval_task tasks[EVAL_TASK_COUNT];
    int n_task;
    int lengths[MAX_LIST], n_length;
    int depths[MAX_LIST], n_depth;
    const char *presses[MAX_LIST];
    int n_press;
    double ratios[MAX_LIST];
    const char *ratio_text[MAX_LIST];
    int n_ratio;
    unsigned modes; /* MODE_* bits */
    int samples;
    uint64_t seed;
    int n_predict; /* 0 = the task's own (eval_task_answer_tokens) */
    bool chat, share, dry_run;
    int window, n_threads;
    const char *opt_name[MAX_LIST], *opt_value[MAX_LIST]; /* --press-opt NAME=VALUE */
    int n_press_opt;
    bool progress; /* a bar on a terminal, a line per tenth of the rows otherwise */
};

/* Reads the flags (exits 0 after --help) and checks every press at every ratio before the
 * model loads; full[i]: press i evicts nothing. -1 with e set. */
int eval_opts_parse(int argc, char **argv, struct eval_opts *o, bool *full, struct adakv_err *e);

/* The press for one setting; ratio NULL = none given. reserve: rows left free per head after
 * compaction for what is appended next (question, answer). NULL with e set. */
struct adakv_press *eval_make_press(const struct eval_opts *o, const char *name, const char *ratio,
                                    int reserve, struct adakv_err *e);

/* Prefixes e's message with `what: ` (e->msg cannot be both source and target of err_set). */
int eval_err_wrap(struct adakv_err *e, const char *what);

#endif
