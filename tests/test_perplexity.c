/* --perplexity against llama.cpp: the same chunked computation as llama-perplexity (chunks of
 * n_ctx tokens, second half scored) on the committed English text, default model; the golden
 * value is in tests/data/golden/perplexity.json (made by tools/golden/make-perplexity.py). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adakv-ext.h"
#include "perplexity.h"
#include "test-env.h"
#include "tokenizer.h"

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    cr_assert(s && fread(s, 1, (size_t)len, f) == (size_t)len);
    s[len] = '\0';
    fclose(f);
    *n = (size_t)len;
    return s;
}

/* The first result object of perplexity.json is n_ctx 512 with flash attention off (the
 * "primary" setting, the same arithmetic as the golden logits); check that, then read its ppl,
 * or with n_chunk > 0 the running value llama-perplexity printed after that many chunks. */
static double golden_ppl_512(int n_chunk) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/golden/perplexity.json", env("ADAKV_SRCDIR"));
    size_t n;
    char *s = slurp(path, &n);
    char *res = strstr(s, "\"results\"");
    cr_assert(res, "%s: no results", path);
    char *ctx = strstr(res, "\"n_ctx\": 512"), *fa = strstr(res, "\"flash_attn\": false"),
         *ppl = strstr(res, "\"ppl\": "), *run = strstr(res, "\"running_ppl_after_each_chunk\"");
    cr_assert(ctx && fa && ppl && run && ctx < ppl && fa < ppl && ppl < run,
              "%s: unexpected layout", path);
    double v = strtod(ppl + 7, NULL);
    if (n_chunk > 0) {
        char *p = strchr(run, '[');
        cr_assert(p);
        for (int i = 0; i < n_chunk; i++) {
            char *end;
            v = strtod(p + 1, &end);
            cr_assert(end != p + 1, "%s: fewer than %d running values", path, n_chunk);
            p = end;
        }
    }
    free(s);
    cr_assert(v > 1.0 && v < 1000.0);
    return v;
}

/* ADAKV_TEST_LIGHT (the sanitizer pass of tools/test.sh): the first 4 chunks only. */
static int light(void) {
    return getenv("ADAKV_TEST_LIGHT") != NULL;
}

static double our_ppl(enum adakv_kv_type kv) {
    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {0};
    struct adakv_model *m = adakv_model_load(env("ADAKV_MODEL"), &mp, &e);
    cr_assert(m, "%s", e.msg);
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/text/perplexity-en.txt", env("ADAKV_SRCDIR"));
    size_t n;
    char *text = slurp(path, &n);
    const struct tokenizer *tok = adakv_model_tokenizer(m);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    cr_assert_eq(tokenizer_encode(tok, text, n, true, false, &ids, &n_ids, &e), 0, "%s", e.msg);
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = 512;
    cp.kv_type = kv;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
    cr_assert(c, "%s", e.msg);
    float *logits = malloc((size_t)512 * info.n_vocab * sizeof *logits);
    struct ppl_result r;
    int32_t bos = tokenizer_adds_bos(tok) ? tokenizer_bos(tok) : -1;
    size_t use = light() ? 4 * 512 : n_ids;
    cr_assert_eq(perplexity_run(c, info.n_vocab, ids, use, 512, bos, logits, NULL, NULL, &r, &e), 0,
                 "%s", e.msg);
    int want = light() ? 4 : 25; /* 12,839 tokens / 512, as llama-perplexity counts them */
    cr_assert_eq(r.n_chunk, want);
    cr_assert_eq(r.n_scored, want * 255L);
    free(logits);
    free(ids);
    free(text);
    adakv_ctx_free(c);
    adakv_model_free(m);
    return r.ppl;
}

Test(perplexity, within_one_percent_of_llama_cpp, .timeout = 1200) {
    double ref = golden_ppl_512(light() ? 4 : 0);
    double i8 = our_ppl(ADAKV_KV_INT8), f16 = light() ? ref : our_ppl(ADAKV_KV_F16);
    fprintf(stderr, "perplexity -c 512 (%s): llama.cpp %.4f, adakv int8 KV %.4f (%+.3f%%)",
            light() ? "first 4 chunks" : "25 chunks", ref, i8, 100.0 * (i8 / ref - 1.0));
    if (!light())
        fprintf(stderr, ", f16 KV %.4f (%+.3f%%)", f16, 100.0 * (f16 / ref - 1.0));
    fprintf(stderr, "\n");
    cr_assert_leq(fabs(f16 / ref - 1.0), 0.01);
    cr_assert_leq(fabs(i8 / ref - 1.0), 0.01);
}
