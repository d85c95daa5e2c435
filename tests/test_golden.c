/* The engine judged against llama.cpp on the default model (goldens made by tools/golden/,
 * format in tests/data/golden/README.md): teacher-forced logits over 2,048 positions of long
 * English text in one context, and greedy continuations of three committed prompts. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adakv.h"
#include "golden-logits.h"
#include "test-env.h"

static struct agreement run_logits(enum adakv_kv_type kv, const char *label) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/golden/logits-perplexity-en.bin",
             env("ADAKV_SRCDIR"));
    struct golden g;
    golden_read(&g, path);
    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {0};
    struct adakv_model *m = adakv_model_load(env("ADAKV_MODEL"), &mp, &e);
    cr_assert(m, "%s", e.msg);
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    cr_assert_eq((uint32_t)info.n_vocab, g.n_vocab);
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = (int)g.n_pos;
    cp.kv_type = kv;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
    cr_assert(c, "%s", e.msg);
    float *logits = malloc((size_t)g.n_pos * info.n_vocab * sizeof *logits);
    cr_assert(logits);
    cr_assert_eq(adakv_eval(c, g.tokens, (int)g.n_pos, logits, true, &e), 0, "%s", e.msg);
    struct agreement a = compare(&g, logits, info.n_vocab);
    fprintf(stderr,
            "golden logits, KV %s, %u positions: mean KL %.5f nats, max KL %.4f, top-1 %.2f%%\n",
            label, g.n_pos, a.mean_kl, a.max_kl, 100.0 * a.top1);
    free(logits);
    golden_free(&g);
    adakv_ctx_free(c);
    adakv_model_free(m);
    return a;
}

/* Bounds. Mean KL <= 0.01 is the foundation issue's bound. Its top-1 bound (99%) is not met and
 * cannot be met by arithmetic that differs from the binary that made the file in summation
 * order: the same llama.cpp commit with the same settings built for AVX2 instead of AVX-512
 * agrees 95.80% (tests/data/golden/README.md), its flash-attention path 95.85%, an independent
 * numpy forward pass (tools/golden/check-f32-forward.py) 96.2% in exact f32 and 95.6% with
 * llama.cpp's roundings emulated op by op: SmolLM2-135M's top two logits are often within
 * rounding noise on this text, and 8-bit activations amplify any last-bit difference. The top-1
 * floor below guards against regressions at the level every independent path reaches; the
 * README states the measured figures. */
#define GOLDEN_MAX_MEAN_KL 0.01
#define GOLDEN_MIN_TOP1    0.95

/* llama.cpp's golden run used an f16 KV cache: compare like with like first. */
Test(golden, logits_match_llama_cpp_f16_kv, .timeout = 600) {
    if (getenv("ADAKV_TEST_LIGHT")) /* sanitizer pass: the int8 test covers the same code */
        cr_skip_test("ADAKV_TEST_LIGHT: f16 comparison left to the optimised pass");
    struct agreement a = run_logits(ADAKV_KV_F16, "f16");
    cr_assert_leq(a.mean_kl, GOLDEN_MAX_MEAN_KL, "mean KL %.5f", a.mean_kl);
    cr_assert_geq(a.top1, GOLDEN_MIN_TOP1, "top-1 agreement %.4f", a.top1);
}

/* The default int8 cache must meet the same bounds against llama.cpp (measured with its keys
 * rotated, key-rotation.h: mean KL 0.0032, top-1 95.5%; 0.0039 and 94.9% before). */
Test(golden, logits_match_llama_cpp_int8_kv, .timeout = 600) {
    struct agreement a = run_logits(ADAKV_KV_INT8, "int8");
    cr_assert_leq(a.mean_kl, GOLDEN_MAX_MEAN_KL, "mean KL %.5f", a.mean_kl);
    cr_assert_geq(a.top1, GOLDEN_MIN_TOP1, "top-1 agreement %.4f", a.top1);
}

/* Reads "prompt ..." and "greedy ..." id lines of a golden .ids file. */
static int read_ids(const char *path, const char *tag, int32_t *out, int cap) {
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    char line[8192];
    int n = -1;
    size_t tl = strlen(tag);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, tag, tl) || line[tl] != ' ')
            continue;
        n = 0;
        for (char *p = line + tl, *end; n < cap; p = end) {
            long v = strtol(p, &end, 10);
            if (end == p)
                break;
            out[n++] = (int32_t)v;
        }
    }
    fclose(f);
    cr_assert(n > 0, "%s: no '%s' line", path, tag);
    return n;
}

static int greedy(struct adakv_model *m, enum adakv_kv_type kv, const int32_t *prompt, int n_prompt,
                  int n_gen, int32_t *out) {
    struct adakv_err e = {{0}};
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = 512;
    cp.kv_type = kv;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
    cr_assert(c, "%s", e.msg);
    float *logits = malloc((size_t)info.n_vocab * sizeof *logits);
    cr_assert_eq(adakv_eval(c, prompt, n_prompt, logits, false, &e), 0, "%s", e.msg);
    int n = 0;
    while (n < n_gen) {
        int32_t best = 0;
        for (int j = 1; j < info.n_vocab; j++)
            if (logits[j] > logits[best])
                best = j;
        out[n++] = best;
        if (best == 2 || n == n_gen) /* <|im_end|> is id 2 in SmolLM2's vocabulary */
            break;
        cr_assert_eq(adakv_eval(c, &best, 1, logits, false, &e), 0, "%s", e.msg);
    }
    free(logits);
    adakv_ctx_free(c);
    return n;
}

/* Greedy output with the default int8 cache is identical run to run. Against llama.cpp's greedy
 * tokens (made with an f16 cache) we compare with an f16 cache too. Greedy paths fork at the
 * first near-tie of the top two logits (raw-clockmaker has one at its second token: " been" vs
 * " dedicated"), where any rounding difference picks the other branch, so the decisive chat
 * answer must match llama.cpp token for token and the raw continuations in their first token;
 * the length of agreement is reported. Closeness of the distributions themselves is the job of
 * the logits tests above. */
Test(golden, greedy_three_prompts_deterministic, .timeout = 300) {
    const char *names[] = {"chat-capital-france", "raw-clockmaker", "raw-photosynthesis"};
    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {0};
    struct adakv_model *m = adakv_model_load(env("ADAKV_MODEL"), &mp, &e);
    cr_assert(m, "%s", e.msg);
    for (int i = 0; i < 3; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/data/golden/greedy-%s.ids", env("ADAKV_SRCDIR"),
                 names[i]);
        int32_t prompt[512], ref[64], a[64], b[64];
        int np = read_ids(path, "prompt", prompt, 512);
        int nr = read_ids(path, "greedy", ref, 64);
        int na = greedy(m, ADAKV_KV_INT8, prompt, np, nr, a);
        int nb = greedy(m, ADAKV_KV_INT8, prompt, np, nr, b);
        cr_assert_eq(na, nb, "%s: run-to-run length differs", names[i]);
        cr_assert_arr_eq(a, b, (size_t)na * sizeof *a, "%s: run-to-run tokens differ", names[i]);
        na = greedy(m, ADAKV_KV_F16, prompt, np, nr, a);
        int same = 0;
        while (same < na && same < nr && a[same] == ref[same])
            same++;
        fprintf(stderr, "greedy %s (f16 KV): %d/%d tokens equal to llama.cpp's\n", names[i], same,
                nr);
        int need = i == 0 ? nr : 1;
        cr_assert_geq(same, need, "%s: diverges from llama.cpp at token %d", names[i], same);
    }
    adakv_model_free(m);
}
