/* Perplexity of a token stream, computed the way llama.cpp's llama-perplexity does, so the two
 * can be compared number for number: the text is cut into chunks of n_ctx tokens, each chunk is
 * evaluated from an empty cache (its first token replaced by BOS when the vocabulary adds BOS),
 * and only the second half of each chunk is scored (every scored token then has at least n_ctx/2
 * tokens of context). */
#ifndef ADAKV_PERPLEXITY_H
#define ADAKV_PERPLEXITY_H

#include <stddef.h>
#include <stdint.h>

#include "adakv.h"

struct ppl_result {
    double ppl;     /* exp(mean negative log-likelihood) */
    double ppl_err; /* standard error of ppl, as llama-perplexity prints it */
    int n_chunk;
    long n_scored;
};

/* Called after each chunk with the running estimate. */
typedef void (*ppl_progress_fn)(void *user, int chunk, int n_chunk, double ppl_so_far);

/* tokens: the whole text; n_ctx: chunk length; bos: token to put first in each chunk, or -1.
 * logits: caller scratch of n_ctx * n_vocab floats. Needs at least 2 * n_ctx tokens, like
 * llama-perplexity. */
int perplexity_run(struct adakv_ctx *c, int n_vocab, const int32_t *tokens, size_t n_tokens,
                   int n_ctx, int32_t bos, float *logits, ppl_progress_fn cb, void *user,
                   struct ppl_result *out, struct adakv_err *e);

#endif
