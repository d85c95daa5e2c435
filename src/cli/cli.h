/* adakv-run's command line: parsed and validated into struct cli_opts before anything is
 * loaded, so a bad flag costs no time and gets one line naming the flag. */
#ifndef ADAKV_CLI_H
#define ADAKV_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "adakv.h"

enum cli_progress { CLI_PROGRESS_AUTO, CLI_PROGRESS_ON, CLI_PROGRESS_OFF };

struct cli_opts {
    const char *model_path;
    const char *prompt_file; /* "-" = stdin */
    const char *prompt_text; /* -p */
    const char *perplexity_file;
    int n_predict;        /* -1 = until end of generation or context */
    int n_ctx;            /* 0 = min(training context, 4096) */
    int n_threads;        /* 0 = all cores */
    enum adakv_numa numa; /* --numa */
    uint64_t seed;
    bool seed_set;
    float temp;
    int top_k;
    float top_p;
    bool chat;
    bool ignore_eos; /* --ignore-eos: end-of-generation tokens are never sampled */
    bool reference;  /* --reference: plain C kernels (for comparisons) */
    enum adakv_prefill_gemm prefill_gemm; /* --prefill-gemm */
    bool perf;                            /* timing summary on stderr (on by default) */
    enum adakv_kv_type kv_type;
    const char *kv_type_flag;  /* the flag that set kv_type (-ctk and -ctv must agree) */
    struct adakv_press *press; /* owned: --press, --kv-budget, ... (see adakv_press_set) */
    bool kv_report;            /* --kv-report */
    const char *questions[16]; /* --question FILE, repeatable */
    int n_questions;
    bool question_aware; /* compress context and question together */
    enum cli_progress progress;
    bool help, version;
};

/* Parses argv. Returns 0, or -1 with one line in e naming the bad flag or value. */
int cli_parse(int argc, char **argv, struct cli_opts *o, struct adakv_err *e);
void cli_usage(FILE *out);
void cli_opts_free(struct cli_opts *o);

/* A prompt file may hold the question after a line that is exactly this. */
#define CLI_QUESTION_SEPARATOR "<<<question>>>"

#endif
