#include "perplexity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* -log softmax(logits)[target] in double, as llama-perplexity's log_softmax does */
static double nll_of(const float *logits, int n_vocab, int32_t target) {
    float max = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > max)
            max = logits[i];
    double sum = 0.0;
    for (int i = 0; i < n_vocab; i++)
        sum += exp((double)logits[i] - max);
    return -((double)logits[target] - max - log(sum));
}

int perplexity_run(struct adakv_ctx *c, int n_vocab, const int32_t *tokens, size_t n_tokens,
                   int n_ctx, int32_t bos, float *logits, ppl_progress_fn cb, void *user,
                   struct ppl_result *out, struct adakv_err *e) {
    if (n_ctx < 4)
        return err_set(e, "perplexity: context of %d tokens is too small", n_ctx);
    if (n_tokens < 2 * (size_t)n_ctx)
        return err_set(e,
                       "perplexity: the text has %zu tokens, at least 2 * n_ctx = %d are needed "
                       "(use a smaller -c)",
                       n_tokens, 2 * n_ctx);
    int32_t *chunk = malloc((size_t)n_ctx * sizeof *chunk);
    if (!chunk)
        return err_set(e, "perplexity: out of memory");
    const int n_chunk = (int)(n_tokens / (size_t)n_ctx);
    const int first = n_ctx / 2;
    double nll = 0.0, nll2 = 0.0;
    long count = 0;
    for (int k = 0; k < n_chunk; k++) {
        memcpy(chunk, tokens + (size_t)k * n_ctx, (size_t)n_ctx * sizeof *chunk);
        if (bos >= 0)
            chunk[0] = bos;
        adakv_ctx_reset(c);
        if (adakv_eval(c, chunk, n_ctx, logits, true, e)) {
            free(chunk);
            return -1;
        }
        /* the logits at position j predict the original token j + 1 of the chunk */
        const int32_t *orig = tokens + (size_t)k * n_ctx;
        for (int j = first; j < n_ctx - 1; j++) {
            double v = nll_of(logits + (size_t)j * n_vocab, n_vocab, orig[j + 1]);
            nll += v;
            nll2 += v * v;
            count++;
        }
        if (cb)
            cb(user, k, n_chunk, exp(nll / count));
    }
    free(chunk);
    double mean = nll / count, var = nll2 / count - mean * mean;
    out->ppl = exp(mean);
    out->ppl_err = count > 1 && var > 0 ? out->ppl * sqrt(var / (count - 1)) : 0.0;
    out->n_chunk = n_chunk;
    out->n_scored = count;
    return 0;
}
