/* Decode-time eviction on the default model: with --kv-max N every KV head stays at or below N
 * rows through a long generation, the newest rows survive, and positions keep counting from the
 * prompt (issue 3 item 8); after each eviction the head-to-thread map is rebuilt from the new
 * lengths. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "adakv-ext.h"
#include "forward.h"
#include "kv-cache.h"
#include "test-env.h"

Test(kv_max, heads_stay_under_the_cap_during_decode, .timeout = 600) {
    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {0};
    struct adakv_model *m = adakv_model_load(env("ADAKV_MODEL"), &mp, &e);
    cr_assert(m, "%s", e.msg);
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = 512;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
    cr_assert(c, "%s", e.msg);
    struct adakv_press *p = adakv_press_new();
    cr_assert_eq(adakv_press_set(p, "press", "ada-snapkv", &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_press_set(p, "kv-max", "96", &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_press_set(p, "kv-chunk", "16", &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_ctx_set_press(c, p, false, &e), 0, "%s", e.msg);
    adakv_press_free(p);

    enum { N_PROMPT = 80, N_GEN = 160 };
    int32_t tok[N_PROMPT];
    for (int i = 0; i < N_PROMPT; i++)
        tok[i] = 1000 + (i * 37) % 20000;
    float *logits = malloc((size_t)info.n_vocab * sizeof *logits);
    cr_assert_eq(adakv_eval(c, tok, N_PROMPT, logits, false, &e), 0, "%s", e.msg);
    const struct kv_cache *kv = adakv_ctx_kv(c);
    int evictions_seen = 0, rebalances_seen = 0;
    int64_t rows_before = 0;
    for (int s = 0; s < N_GEN; s++) {
        int32_t next = 0;
        for (int j = 1; j < info.n_vocab; j++)
            if (logits[j] > logits[next])
                next = j;
        cr_assert_eq(adakv_eval(c, &next, 1, logits, false, &e), 0, "%s", e.msg);
        const int32_t pos_new = N_PROMPT + s; /* the token just evaluated */
        for (int l = 0; l < kv->n_layer; l++)
            for (int g = 0; g < kv->n_head_kv; g++) {
                const struct kv_segment *sg = kv_cache_seg(kv, l, g);
                cr_assert_leq(sg->len, 96, "layer %d head %d holds %d rows", l, g, sg->len);
                cr_assert_eq(sg->pos[sg->len - 1], pos_new, "newest row lost (layer %d)", l);
                for (int r = 1; r < sg->len; r++)
                    cr_assert_lt(sg->pos[r - 1], sg->pos[r], "rows out of order");
                evictions_seen += sg->len < N_PROMPT + s + 1;
            }
        /* Rows dropped in this step: the decode attention map must reflect the new lengths
         * (each thread's load = the rows of the heads it serves), not the prefill's. */
        int64_t rows = 0;
        for (int l = 0; l < kv->n_layer; l++)
            for (int g = 0; g < kv->n_head_kv; g++)
                rows += kv_cache_seg(kv, l, g)->len;
        if (rows < rows_before) {
            const struct head_map *hm = &c->heads;
            for (int t = 0; t < hm->n_threads; t++) {
                int64_t want = 0;
                for (int i = hm->start[t]; i < hm->start[t + 1]; i++)
                    for (int l = 0; l < kv->n_layer; l++)
                        want += kv_cache_seg(kv, l, hm->order[i])->len;
                cr_assert_eq(hm->load[t], want, "step %d: thread %d load %lld, rows %lld", s, t,
                             (long long)hm->load[t], (long long)want);
            }
            rebalances_seen++;
        }
        rows_before = rows;
    }
    cr_assert_gt(rebalances_seen, 0, "no step dropped rows");
    cr_assert_gt(evictions_seen, 0, "the cap never triggered an eviction");
    cr_assert_eq(adakv_ctx_n_past(c), N_PROMPT + N_GEN);
    free(logits);
    adakv_ctx_free(c);
    adakv_model_free(m);
}
