/* The presses (press-desc.h): one row each, and the small adapters that give the scorers of
 * src/kv/ (kv-score.h) the one press_score_fn signature. The maths of each is in algorithms.md
 * (SnapKV 1, Ada-KV 2, PyramidKV 3, CriticalKV 4) and docs/presses.md (KVzip, expected
 * attention, the controls). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kv-budget.h"
#include "kv-press.h"
#include "kv-score.h"

/* ---------------------------------------------------------------- scorers */

/* SnapKV (algorithms.md 1): attention of the window's queries, pooled along the keys. Also the
 * decode-time scorer of the presses whose own score needs a prefill (KVzip, expected). */
static int score_snapkv(const struct press_layer_in *in, float *out, struct adakv_err *e) {
    const struct kv_press_config *c = in->hk->cfg;
    return kv_score_snapkv(in->ops, in->kv, in->layer, in->q, in->n_q, in->hk->n_head, c->pool,
                           c->kernel, in->off, out, e);
}

/* Control: seeded random scores, the same for a (seed, layer) on every run. */
static int score_random(const struct press_layer_in *in, float *out, struct adakv_err *e) {
    (void)e;
    kv_score_random(in->hk->cfg->seed, in->layer, in->kv->n_head_kv, in->off, out);
    return 0;
}

/* Control: -||k||, the keys with the smallest norms kept (kvpress KnormPress). */
static int score_knorm(const struct press_layer_in *in, float *out, struct adakv_err *e) {
    (void)e;
    kv_score_knorm(in->kv, in->layer, in->off, out);
    return 0;
}

/* KVzip: the reconstruction's attention; the first n_sink rows are never evicted (attention
 * sinks; kvpress gives them the largest score of all + 1, so neither uniform nor Ada-KV budgets
 * can drop them). */
static int score_kvzip(const struct press_layer_in *in, float *out, struct adakv_err *e) {
    const int n_kv = in->kv->n_head_kv, n_sink = in->hk->cfg->n_sink;
    if (kv_score_kvzip(in->ops, in->kv, in->layer, in->q, in->hk->kvzip_lse, in->hk->kvzip_pieces,
                       in->n_q, in->hk->kvzip_question, in->hk->n_head, in->off, out, e) < 0)
        return -1;
    float top = 0.0f; /* scores are probabilities, >= 0 */
    for (int32_t i = 0; i < in->off[n_kv]; i++)
        top = out[i] > top ? out[i] : top;
    for (int g = 0; g < n_kv; g++)
        for (int j = 0; j < n_sink && j < in->off[g + 1] - in->off[g]; j++)
            out[in->off[g] + j] = top + 1.0f;
    return 0;
}

/* Expected attention: the attention the window's predicted future queries would pay. */
static int score_eattn(const struct press_layer_in *in, float *out, struct adakv_err *e) {
    const struct kv_press_hook *hk = in->hk;
    return kv_score_eattn(in->ops, in->kv, in->layer, in->q, in->n_q, hk->n_head, hk->rope_undo,
                          hk->rope_future, hk->n_rot, hk->rope_neox, hk->cfg->n_sink,
                          hk->cfg->eattn_eps, in->off, out, e);
}

/* ---------------------------------------------------------------- layer budgets, selection */

/* PyramidKV (algorithms.md 3): more rows for the lower layers, the model's total unchanged. */
static int budget_pyramid(const struct press_layer_in *in, int b_sel, int max_prefix,
                          struct adakv_err *e) {
    const int n_layer = in->hk->n_layer;
    int32_t *sched = malloc((size_t)(n_layer > 0 ? n_layer : 1) * sizeof *sched);
    if (!sched)
        return err_set(e, "kv-press: out of memory scoring layer %d", in->layer);
    kv_budget_pyramid(n_layer, b_sel, max_prefix, in->hk->cfg->beta, sched);
    const int b = sched[in->layer];
    free(sched);
    return b;
}

/* Merges two ascending index lists. */
static int merge(const int32_t *a, int na, const int32_t *b, int nb, int32_t *out) {
    int i = 0, j = 0, n = 0;
    while (i < na || j < nb)
        out[n++] = (j >= nb || (i < na && a[i] < b[j])) ? a[i++] : b[j++];
    return n;
}

/* CriticalKV two-stage pick for every head (algorithms.md 4.2): stage 1 the top
 * floor(ratio * budget) by base score (critical-split kvpress: int(ratio (budget + w)) - w, the
 * head's w protected window rows counted in stage 1 as kvpress counts them), stage 2 the rest by
 * (score + eps) * ||v W_O||_1. */
static int select_critical(const struct press_layer_in *in, const float *scores,
                           const int32_t *budget, int32_t *keep, const int32_t *start,
                           struct adakv_err *e) {
    const struct kv_press_hook *hk = in->hk;
    const int n_kv = in->kv->n_head_kv;
    const int32_t *off = in->off;
    int max_prefix = 1;
    for (int g = 0; g < n_kv; g++)
        max_prefix = off[g + 1] - off[g] > max_prefix ? off[g + 1] - off[g] : max_prefix;
    const size_t total = (size_t)off[n_kv], nb = (size_t)max_prefix;
    float *vnorm = malloc((total ? total : 1) * sizeof *vnorm), *s2 = malloc(nb * sizeof *s2);
    uint32_t *scratch = malloc(nb * sizeof *scratch);
    int32_t *idx1 = malloc(nb * sizeof *idx1), *idx2 = malloc(nb * sizeof *idx2);
    int rc = 0;
    if (!vnorm || !s2 || !scratch || !idx1 || !idx2)
        rc = err_set(e, "kv-press: out of memory scoring layer %d", in->layer);
    else
        rc = kv_score_value_norm(in->ops, in->kv, in->layer, hk->n_head, hk->n_embd, hk->w_o, off,
                                 vnorm, e);
    for (int g = 0; g < n_kv && rc == 0; g++) {
        const int n = off[g + 1] - off[g], b = budget[g];
        const int w = hk->cfg->critical_split == KV_CRITICAL_SPLIT_KVPRESS
                          ? kv_cache_seg(in->kv, in->layer, g)->len - n
                          : 0;
        int n1 = (int)floorf(hk->cfg->critical_ratio * (float)(b + w)) - w;
        n1 = n1 < 0 ? 0 : n1 > b ? b : n1;
        const float *s = scores + off[g], *vn = vnorm + off[g];
        kv_budget_pick(s, n, n1, scratch, idx1);
        for (int j = 0; j < n; j++)
            s2[j] = (s[j] + hk->cfg->critical_eps) * vn[j];
        for (int i = 0; i < n1; i++)
            s2[idx1[i]] = -INFINITY;
        kv_budget_pick(s2, n, b - n1, scratch, idx2);
        merge(idx1, n1, idx2, b - n1, keep + start[g]);
    }
    free(vnorm), free(s2), free(scratch), free(idx1), free(idx2);
    return rc;
}

/* StreamingLLM: the first n_sink rows and the most recent ones, b per head. */
static void plan_streaming(const struct kv_cache *kv, int layer, int b,
                           const struct kv_press_config *c, struct layer_plan *p) {
    for (int g = 0; g < kv->n_head_kv; g++) {
        const int len = kv_cache_seg(kv, layer, g)->len;
        int32_t *dst = p->keep + p->start[g];
        int n = 0;
        const int sinks = b >= len ? len : (c->n_sink < b ? c->n_sink : b);
        for (int j = 0; j < sinks; j++)
            dst[n++] = j;
        for (int j = b >= len ? len : len - (b - sinks); j < len; j++)
            dst[n++] = j;
        p->n_keep[g] = n;
    }
}

/* ---------------------------------------------------------------- the table */

const struct press_desc kv_presses[] = {
    {.name = "full",
     .alias = {"none", "no_press"},
     .help = "keep every row (the default)",
     .evicts = false,
     .score_decode = score_snapkv},
    {.name = "streaming",
     .alias = {"streaming_llm"},
     .help = "the first --sink rows and the most recent ones (StreamingLLM)",
     .evicts = true,
     .plan = plan_streaming},
    {.name = "snapkv",
     .ada = {"ada-snapkv", "adakv_snapkv"},
     .help = "attention of the last --window queries, pooled (SnapKV)",
     .needs = PRESS_NEEDS_QUERIES,
     .evicts = true,
     .score = score_snapkv,
     .score_decode = score_snapkv},
    {.name = "pyramid",
     .alias = {"pyramidkv"},
     .ada = {"ada-pyramid"},
     .help = "SnapKV scores, more rows for lower layers (PyramidKV, --beta)",
     .needs = PRESS_NEEDS_QUERIES,
     .evicts = true,
     .score = score_snapkv,
     .score_decode = score_snapkv,
     .layer_budget = budget_pyramid},
    {.name = "critical",
     .alias = {"critical_snapkv"},
     .ada = {"ada-critical", "critical_adakv_snapkv"},
     .help = "SnapKV scores, then the rows that move the output most (CriticalKV, "
             "--critical-ratio)",
     .needs = PRESS_NEEDS_QUERIES | PRESS_NEEDS_W_O,
     .evicts = true,
     .score = score_snapkv,
     .score_decode = score_snapkv,
     .select = select_critical},
    {.name = "random",
     .help = "control: seeded random scores",
     .needs = PRESS_NEEDS_QUERIES | PRESS_NEEDS_SEED,
     .evicts = true,
     .score = score_random,
     .score_decode = score_random},
    {.name = "knorm",
     .help = "control: the keys of smallest norm",
     .needs = PRESS_NEEDS_QUERIES,
     .evicts = true,
     .score = score_knorm,
     .score_decode = score_knorm},
    {.name = "kvzip",
     .ada = {"ada-kvzip", "adakv_kvzip"},
     .help = "question-agnostic: max attention while the model repeats the context (KVzip; one "
             "more prefill, -c must hold the context twice)",
     .needs = PRESS_NEEDS_QUERIES | PRESS_NEEDS_RECONSTRUCTION,
     .evicts = true,
     .no_floor = true,
     .window = PRESS_WINDOW_RECONSTRUCTION,
     .score = score_kvzip,
     .score_decode = score_snapkv},
    {.name = "expected",
     .alias = {"expected_attention"},
     .ada = {"ada-expected", "adakv_expected_attention"},
     .help = "question-agnostic: attention of the window queries' mean and covariance under the "
             "RoPE of the next 512 positions (Expected Attention)",
     .needs = PRESS_NEEDS_QUERIES | PRESS_NEEDS_ROPE,
     .evicts = true,
     .window = PRESS_WINDOW_SCORED,
     .score = score_eattn,
     .score_decode = score_snapkv},
};
const int kv_n_presses = (int)(sizeof kv_presses / sizeof kv_presses[0]);

static bool listed(const char *const *names, int n, const char *s) {
    for (int i = 0; i < n && names[i]; i++)
        if (!strcmp(names[i], s))
            return true;
    return false;
}

const struct press_desc *kv_press_find(const char *s, bool *ada) {
    for (int i = 0; s && i < kv_n_presses; i++) {
        const struct press_desc *d = &kv_presses[i];
        const bool is_ada = listed(d->ada, 3, s);
        if (is_ada || !strcmp(d->name, s) || listed(d->alias, 3, s)) {
            if (ada)
                *ada = is_ada;
            return d;
        }
    }
    return NULL;
}
