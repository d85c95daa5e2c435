/* eval-csv: adakv-eval's results file. One row per (task, length, depth, sample, seed, press,
 * ratio, mode); those eight columns come first and are the row's key, so a rerun reads the
 * file, skips the keys already there and appends the rest (resume after a stop or a crash).
 *
 * Every row is one line: the answer is the last column, CSV-quoted ("" for a quote), with
 * newlines, carriage returns and backslashes written as \n, \r and \\ so line tools (awk in
 * tools/eval-plot.sh) can read the numeric columns by splitting at commas. */
#ifndef ADAKV_EVAL_CSV_H
#define ADAKV_EVAL_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "adakv.h"
#include "eval-tasks.h"

#define EVAL_CSV_HEADER                                                                            \
    "task,length,depth,sample,seed,press,ratio,mode,n_tokens,n_context,kv_rows,kv_rows_full,"      \
    "n_expected,n_found,score,correct,answer_tokens,seconds,expected,answer"

struct eval_key {
    const char *task;
    int length, depth, sample;
    uint64_t seed;
    const char *press;
    double ratio;     /* fraction of rows removed; 0 for the full cache */
    const char *mode; /* "aware" or "agnostic" */
};

/* The key as it starts the row: "niah-number,1024,50,0,1,snapkv,0.8,aware". */
void eval_key_format(const struct eval_key *k, char *buf, size_t cap);

struct eval_result {
    size_t n_tokens;     /* prompt tokens: context + question (+ template, reply prefix) */
    size_t n_context;    /* of which the context part */
    size_t kv_rows;      /* live K/V rows right after compression, over layers and KV heads */
    size_t kv_rows_full; /* rows of the same tokens without eviction */
    struct eval_score score;
    int answer_tokens;
    double seconds; /* this row's own work (compressed prefill, question, decode) */
    char *const *expected;
    int n_expected;
    const char *answer;
};

/* Keys of the rows already in the file, sorted for lookup. */
struct eval_done {
    char **keys;
    size_t n;
};
bool eval_done_has(const struct eval_done *d, const char *key);
void eval_done_free(struct eval_done *d);

/* Opens `path` for appending: a new file gets the header; an existing one must start with it,
 * its rows' keys go into *done, and a last line cut short (a killed run) is dropped. 0, or -1
 * with e naming the file. */
int eval_csv_open(const char *path, struct eval_done *done, FILE **out, struct adakv_err *e);

/* Appends one row and flushes it. 0, or -1 with e set on a write error. */
int eval_csv_write(FILE *f, const char *path, const struct eval_key *k, const struct eval_result *r,
                   struct adakv_err *e);

#endif
