/* Chunked compression (press option prefill-chunk, adakv.h): a prompt longer than the chunk is
 * prefilled piece by piece, each piece compressed before the next is appended. Held here, on the
 * default model: a chunk that covers the prompt leaves the cache row for row what one compressed
 * prefill leaves; a long prompt in pieces never allocates more than the budget plus one piece
 * (measured from the cache at every compression point) and ends with the rows a one-piece
 * prefill keeps; bad values are refused naming the flag. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adakv-ext.h"
#include "kv-cache.h"
#include "test-env.h"

enum { N_CTX = 2048 };

static struct adakv_model *g_model;

static void load(void) {
    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {0};
    g_model = adakv_model_load(env("ADAKV_MODEL"), &mp, &e);
    cr_assert(g_model, "%s", e.msg);
}

static void unload(void) {
    adakv_model_free(g_model);
}

/* Fixed token ids that spread over the vocabulary (no tokenizer needed). */
static void tokens(int32_t *t, int n) {
    for (int i = 0; i < n; i++)
        t[i] = 500 + (i * 7919) % 30000;
}

/* A context with the press given as NULL-terminated name/value pairs (reserve 0, so the cache
 * holds exactly its kept rows), prefilled with n tokens; last-token logits into `logits`. */
static struct adakv_ctx *prefill(const char *const *opts, int n, float *logits) {
    struct adakv_err e = {{0}};
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = N_CTX;
    struct adakv_ctx *c = adakv_ctx_new(g_model, &cp, &e);
    cr_assert(c, "%s", e.msg);
    struct adakv_press *p = adakv_press_new();
    cr_assert_eq(adakv_press_set(p, "reserve", "0", &e), 0, "%s", e.msg);
    for (int i = 0; opts[i]; i += 2)
        cr_assert_eq(adakv_press_set(p, opts[i], opts[i + 1], &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_ctx_set_press(c, p, false, &e), 0, "%s", e.msg);
    adakv_press_free(p);
    int32_t *t = malloc((size_t)n * sizeof *t);
    tokens(t, n);
    cr_assert_eq(adakv_eval(c, t, n, logits, false, &e), 0, "%s", e.msg);
    free(t);
    return c;
}

/* Every segment of a and b: the same rows (positions, K and V bytes, int8 scales). */
static void expect_same_cache(struct adakv_ctx *a, struct adakv_ctx *b, const char *what) {
    const struct kv_cache *ka = adakv_ctx_kv(a), *kb = adakv_ctx_kv(b);
    const size_t row = kv_row_bytes(ka->type, ka->head_dim) - (ka->type == KV_TYPE_INT8 ? 4 : 0);
    for (int il = 0; il < ka->n_layer; il++)
        for (int g = 0; g < ka->n_head_kv; g++) {
            const struct kv_segment *sa = kv_cache_seg(ka, il, g), *sb = kv_cache_seg(kb, il, g);
            cr_assert_eq(sa->len, sb->len, "%s: layer %d head %d keeps %d rows, not %d", what, il,
                         g, sb->len, sa->len);
            const size_t n = (size_t)sa->len;
            cr_assert(!memcmp(sa->pos, sb->pos, n * sizeof *sa->pos), "%s: layer %d head %d rows",
                      what, il, g);
            cr_assert(!memcmp(sa->k, sb->k, n * row) && !memcmp(sa->v, sb->v, n * row),
                      "%s: layer %d head %d K/V", what, il, g);
            if (sa->k_scale)
                cr_assert(!memcmp(sa->k_scale, sb->k_scale, n * sizeof(float)) &&
                              !memcmp(sa->v_scale, sb->v_scale, n * sizeof(float)),
                          "%s: layer %d head %d scales", what, il, g);
        }
}

/* A chunk at least as long as the prompt (or one whose rest would be shorter than the window,
 * which joins the piece) is one piece: the one-shot compression, row for row, and the same
 * logits, for a ratio (fixed to the prompt's budget by the chunked path) and a budget. */
Test(prefill_chunk, chunk_covering_the_prompt_is_the_one_shot_compression, .init = load,
     .fini = unload, .timeout = 900) {
    struct adakv_model_info info;
    adakv_model_get_info(g_model, &info);
    float *l0 = malloc((size_t)info.n_vocab * sizeof *l0), *l1 = malloc(sizeof *l1 * info.n_vocab);
    const char *budgets[][2] = {{"kv-ratio", "0.6"}, {"kv-budget", "96"}};
    for (int b = 0; b < 2; b++) {
        const char *one[] = {"press", "ada-snapkv", budgets[b][0], budgets[b][1], NULL};
        struct adakv_ctx *c0 = prefill(one, 300, l0);
        const char *chunks[] = {"300", "4096", "280"}; /* 280: the 20-token rest joins it */
        for (int i = 0; i < 3; i++) {
            const char *ch[] = {"press",         "ada-snapkv", budgets[b][0], budgets[b][1],
                                "prefill-chunk", chunks[i],    NULL};
            struct adakv_ctx *c1 = prefill(ch, 300, l1);
            char what[64];
            snprintf(what, sizeof what, "%s %s, chunk %s", budgets[b][0], budgets[b][1], chunks[i]);
            expect_same_cache(c0, c1, what);
            cr_assert(!memcmp(l0, l1, (size_t)info.n_vocab * sizeof *l0), "%s: logits", what);
            adakv_ctx_free(c1);
        }
        adakv_ctx_free(c0);
    }
    free(l0), free(l1);
}

/* 1,200 tokens in pieces of 256 with a budget of 128 rows per head: at every compression point
 * the cache holds at most every layer's budget plus one piece in one layer (K, V and scales,
 * counted by capacity), a small fraction of the one-shot peak, and it ends with the rows the
 * one-shot prefill keeps. With a ratio, every piece evicts to the whole prompt's budget, so the
 * chunked cache keeps as many rows as the one-shot one (not a ratio of a ratio). */
Test(prefill_chunk, peak_stays_within_budget_plus_one_chunk, .init = load, .fini = unload,
     .timeout = 900) {
    enum { B = 128, C = 256 };
    /* the sanitizer pass (tools/test.sh) runs 600 tokens: pieces of 256, 256 and 88 */
    const int N = getenv("ADAKV_TEST_LIGHT") ? 600 : 1200;
    const struct kv_cache *kv;
    const char *one[] = {"press", "ada-snapkv", "kv-budget", "128", NULL};
    const char *ch[] = {"press", "ada-snapkv", "kv-budget", "128", "prefill-chunk", "256", NULL};
    struct adakv_ctx *c0 = prefill(one, N, NULL), *c1 = prefill(ch, N, NULL);
    kv = adakv_ctx_kv(c1);
    const size_t row = 2 * kv_row_bytes(kv->type, kv->head_dim); /* a K row and a V row */
    const size_t L = (size_t)kv->n_layer, H = (size_t)kv->n_head_kv;
    const size_t peak0 = adakv_ctx_kv_peak_bytes(c0), peak1 = adakv_ctx_kv_peak_bytes(c1);
    cr_assert_eq(adakv_ctx_kv_rows(c1), L * H * B, "kept %zu rows", adakv_ctx_kv_rows(c1));
    cr_assert_eq(adakv_ctx_kv_rows(c0), adakv_ctx_kv_rows(c1));
    cr_assert_leq(peak1, row * (L * H * B + H * C), "peak %zu B > budget + one chunk %zu B", peak1,
                  row * (L * H * B + H * C));
    /* one shot: the earlier layers at their budget, the last one whole */
    cr_assert_geq(peak0, row * ((L - 1) * H * B + H * (size_t)N));
    fprintf(stderr,
            "prefill_chunk: %d tokens, budget %d: peak %zu B one-shot, %zu B in pieces of %d "
            "(bound %zu B)\n",
            N, B, peak0, peak1, C, row * (L * H * B + H * C));
    adakv_ctx_free(c0), adakv_ctx_free(c1);

    const char *r0[] = {"press", "snapkv", "kv-ratio", "0.75", NULL};
    const char *r1[] = {"press", "snapkv", "kv-ratio", "0.75", "prefill-chunk", "256", NULL};
    c0 = prefill(r0, N, NULL), c1 = prefill(r1, N, NULL);
    cr_assert_eq(adakv_ctx_kv_rows(c1), L * H * (N / 4), "kept %zu rows", adakv_ctx_kv_rows(c1));
    cr_assert_eq(adakv_ctx_kv_rows(c0), adakv_ctx_kv_rows(c1));
    cr_assert_leq(adakv_ctx_kv_peak_bytes(c1), row * (L * H * (N / 4) + H * C));
    /* the position counter covers the whole prompt, and decoding goes on from it */
    cr_assert_eq(adakv_ctx_n_past(c1), N);
    struct adakv_err e = {{0}};
    int32_t next = 42;
    cr_assert_eq(adakv_eval(c1, &next, 1, NULL, false, &e), 0, "%s", e.msg);
    adakv_ctx_free(c0), adakv_ctx_free(c1);
}

/* Through the API: a value that is not a positive integer, a chunk shorter than the window and
 * KVzip are refused with one line that names the flag. */
Test(prefill_chunk, bad_values_are_refused) {
    struct adakv_err e = {{0}};
    struct adakv_press *p = adakv_press_new();
    const char *bad[] = {"0", "-3", "abc", "", "99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(adakv_press_set(p, "prefill-chunk", bad[i], &e), -1, "'%s' accepted", bad[i]);
        cr_assert(!strncmp(e.msg, "--prefill-chunk: ", 17) && !strchr(e.msg, '\n'), "%s", e.msg);
    }
    cr_assert_eq(adakv_press_set(p, "kv-ratio", "0.5", &e), 0);
    cr_assert_eq(adakv_press_set(p, "prefill-chunk", "31", &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_press_check(p, &e), -1);
    cr_assert(strstr(e.msg, "--prefill-chunk: 31 is shorter than the press window (32"), "%s",
              e.msg);
    cr_assert_eq(adakv_press_set(p, "prefill-chunk", "32", &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_press_check(p, &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_press_set(p, "press", "kvzip", &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_press_check(p, &e), -1);
    cr_assert(strstr(e.msg, "--prefill-chunk: kvzip"), "%s", e.msg);
    adakv_press_free(p);
}
