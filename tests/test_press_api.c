/* Presses through the public API on the default model: a budget that covers the prompt changes
 * nothing (logits bit-identical to the uncompressed cache, through prefill and decode), a real
 * budget evicts and keeps positions, and the prefill's peak KV allocation is one layer's full
 * cache plus the compressed others. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adakv-ext.h"
#include "test-env.h"

enum { N_PROMPT = 300, N_DECODE = 6 };

/* Prefill N_PROMPT fixed tokens, then N_DECODE greedy steps; logits of every step are
 * written to out ([1 + N_DECODE][n_vocab]). */
static void run(struct adakv_model *m, const char *press, const char *budget, float *out,
                size_t *rows, size_t *peak) {
    struct adakv_err e = {{0}};
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = 512;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
    cr_assert(c, "%s", e.msg);
    struct adakv_press *p = adakv_press_new();
    if (press) {
        cr_assert_eq(adakv_press_set(p, "press", press, &e), 0, "%s", e.msg);
        cr_assert_eq(adakv_press_set(p, "kv-budget", budget, &e), 0, "%s", e.msg);
    }
    cr_assert_eq(adakv_ctx_set_press(c, p, false, &e), 0, "%s", e.msg);
    adakv_press_free(p);
    int32_t tok[N_PROMPT];
    for (int i = 0; i < N_PROMPT; i++)
        tok[i] = 500 + (i * 7919) % 30000;
    cr_assert_eq(adakv_eval(c, tok, N_PROMPT, out, false, &e), 0, "%s", e.msg);
    *rows = adakv_ctx_kv_rows(c);
    *peak = adakv_ctx_kv_peak_bytes(c);
    for (int s = 0; s < N_DECODE; s++) {
        const float *l = out + (size_t)s * info.n_vocab;
        int32_t next = 0;
        for (int j = 1; j < info.n_vocab; j++)
            if (l[j] > l[next])
                next = j;
        cr_assert_eq(adakv_eval(c, &next, 1, out + (size_t)(s + 1) * info.n_vocab, false, &e), 0,
                     "%s", e.msg);
    }
    adakv_ctx_free(c);
}

Test(press_api, budget_covering_the_prompt_is_bit_identical, .timeout = 600) {
    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {0};
    struct adakv_model *m = adakv_model_load(env("ADAKV_MODEL"), &mp, &e);
    cr_assert(m, "%s", e.msg);
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    size_t n = (size_t)(1 + N_DECODE) * info.n_vocab, r0, r1, r2, p0, p1, p2;
    float *full = malloc(n * sizeof *full), *big = malloc(n * sizeof *big),
          *small = malloc(n * sizeof *small);
    run(m, NULL, NULL, full, &r0, &p0);
    const char *presses[] = {"snapkv", "ada-snapkv", "ada-pyramid", "ada-critical"};
    for (int i = 0; i < 4; i++) {
        run(m, presses[i], "300", big, &r1, &p1); /* budget == prompt length */
        cr_assert_eq(r1, r0, "%s evicted rows with a covering budget", presses[i]);
        cr_assert(memcmp(full, big, n * sizeof *full) == 0, "%s: logits differ", presses[i]);
    }
    /* a real budget evicts: 64 rows per head of 300, and the prefill peak stays near one
     * layer's full cache (1/30 of the full model's) plus the compressed rest */
    run(m, "ada-snapkv", "64", small, &r2, &p2);
    size_t full_rows = (size_t)N_PROMPT * info.n_layer * info.n_head_kv;
    cr_assert_eq(r0, full_rows);
    cr_assert_eq(r2, (size_t)64 * info.n_layer * info.n_head_kv, "kept %zu rows", r2);
    cr_assert_lt(p2, p0 / 3, "peak %zu bytes vs full %zu", p2, p0);
    fprintf(stderr, "press_api: full cache %zu B, ada-snapkv budget 64: peak %zu B (%.1f%%)\n", p0,
            p2, 100.0 * p2 / p0);
    free(full), free(big), free(small);
    adakv_model_free(m);
}
