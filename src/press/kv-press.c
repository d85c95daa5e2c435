/* The per-layer hook (kv-press.h): which rows each head keeps, at a prefill's compression points
 * and in decode past --kv-max, then the compaction. What differs between presses comes from the
 * configured press's row (press-desc.h, press-table.c); the configuration it reads, its names and
 * flag parsers are in kv-press-config.c. */
#include "kv-press.h"

#include <limits.h>
#include <stdlib.h>

#include "kv-budget.h"
#include "kv-compact.h"
#include "kv-report.h"

/* ---------------------------------------------------------------- selection per layer */

static void keep_range(int32_t *dst, int *n, int from, int to) {
    for (int j = from; j < to; j++)
        dst[(*n)++] = j;
}

/* Budget below the window: the most recent b rows of each head. */
static void plan_recent(const struct kv_cache *kv, int layer, int b, struct layer_plan *p) {
    for (int g = 0; g < kv->n_head_kv; g++) {
        int len = kv_cache_seg(kv, layer, g)->len, n = 0;
        keep_range(p->keep + p->start[g], &n, b < len ? len - b : 0, len);
        p->n_keep[g] = n;
    }
}

/* KVzip with nothing to evict: every row but the last n_drop (the reconstruction's). */
static void plan_prefix(const struct kv_cache *kv, int layer, int n_drop, struct layer_plan *p) {
    for (int g = 0; g < kv->n_head_kv; g++) {
        int len = kv_cache_seg(kv, layer, g)->len, n = 0;
        keep_range(p->keep + p->start[g], &n, 0, len - n_drop);
        p->n_keep[g] = n;
    }
}

struct scored_bufs {
    int32_t *off, *budget;
    float *scores;
    uint32_t *scratch;
};

static void scored_free(struct scored_bufs *s) {
    free(s->off);
    free(s->budget);
    free(s->scores);
    free(s->scratch);
}

/* Scores, budgets and picks for one layer: every head keeps its window plus its share of the
 * selectable rows. b_sel is the mean selectable budget per head (window excluded); cap_sel
 * caps a head under Ada-KV (INT_MAX: only by its own length). decode: no pyramid schedule, and
 * Ada-KV always in the capped paper form (kv_press_compress_decode). */
static int plan_scored(const struct kv_press_hook *hk, const struct simd_ops *ops,
                       const struct kv_cache *kv, int layer, const float *q_window, int n_window,
                       int b_sel, int cap_sel, bool decode, struct layer_plan *p,
                       struct adakv_err *e) {
    const struct kv_press_config *c = hk->cfg;
    const struct press_desc *d = c->press;
    const int n_kv = kv->n_head_kv;
    struct scored_bufs s = {0};
    s.off = malloc((size_t)(n_kv + 1) * sizeof *s.off);
    s.budget = malloc((size_t)n_kv * sizeof *s.budget);
    /* rows after each segment's scored prefix: the window (kept), KVzip's reconstruction rows
     * (dropped), none for expected attention (every row scored) */
    const int n_tail = d->window == PRESS_WINDOW_SCORED && !decode ? 0 : n_window;
    const bool keep_tail = !(d->window == PRESS_WINDOW_RECONSTRUCTION && !decode);
    if (!s.off || !s.budget || kv_score_layout(kv, layer, n_tail, s.off, e) < 0)
        goto fail;
    const size_t total = (size_t)s.off[n_kv];
    int max_prefix = 0;
    for (int g = 0; g < n_kv; g++)
        max_prefix = s.off[g + 1] - s.off[g] > max_prefix ? s.off[g + 1] - s.off[g] : max_prefix;
    const size_t nb = (size_t)(max_prefix ? max_prefix : 1);
    s.scores = malloc((total ? total : 1) * sizeof *s.scores);
    s.scratch = malloc(nb * sizeof *s.scratch);
    if (!s.scores || !s.scratch)
        goto oom;

    const struct press_layer_in in = {hk, ops, kv, layer, q_window, n_window, s.off};
    if ((decode ? d->score_decode : d->score)(&in, s.scores, e) < 0)
        goto fail;
    if (d->layer_budget && !decode && (b_sel = d->layer_budget(&in, b_sel, max_prefix, e)) < 0)
        goto fail;
    int rc = 0;
    if (decode && c->alloc != KV_ALLOC_UNIFORM)
        rc = kv_budget_ada_capped(s.scores, n_kv, s.off, b_sel, cap_sel, c->alpha, s.budget, e);
    else if (c->alloc == KV_ALLOC_ADA)
        rc = kv_budget_ada(s.scores, n_kv, s.off, b_sel, c->alpha, s.budget, e);
    else if (c->alloc == KV_ALLOC_ADA_KVPRESS)
        rc = kv_budget_ada_kvpress(s.scores, n_kv, s.off, b_sel, c->alpha, s.budget, e);
    else
        kv_budget_uniform(n_kv, s.off, b_sel, s.budget);
    if (rc < 0)
        goto fail;

    if (d->select && d->select(&in, s.scores, s.budget, p->keep, p->start, e) < 0)
        goto fail;
    for (int g = 0; g < n_kv; g++) {
        const int n_prefix = s.off[g + 1] - s.off[g], len = n_prefix + n_tail;
        if (!d->select)
            kv_budget_pick(s.scores + s.off[g], n_prefix, s.budget[g], s.scratch,
                           p->keep + p->start[g]);
        int n = s.budget[g];
        if (keep_tail)
            keep_range(p->keep + p->start[g], &n, n_prefix, len); /* the window, always kept */
        p->n_keep[g] = n;
    }
    scored_free(&s);
    return 0;
oom:
    err_set(e, "kv-press: out of memory scoring layer %d", layer);
fail:
    scored_free(&s);
    return -1;
}

/* ---------------------------------------------------------------- the hook */

static bool needs_w_o_missing(const struct kv_press_hook *hk) {
    return (hk->cfg->press->needs & PRESS_NEEDS_W_O) && (!hk->w_o || hk->n_embd < 1);
}

int kv_press_compress_layer(void *user, struct kv_cache *kv, int layer, const float *q_window,
                            int n_window, struct adakv_err *e) {
    const struct kv_press_hook *hk = user;
    const struct kv_press_config *c = hk->cfg;
    const struct press_desc *d = c->press;
    const int n_kv = kv->n_head_kv;
    if (!d->evicts)
        return 0;
    if (layer < 0 || layer >= kv->n_layer)
        return err_set(e, "kv-press: layer %d outside [0, %d)", layer, kv->n_layer);
    if (hk->n_head < n_kv || hk->n_head % n_kv != 0)
        return err_set(e, "kv-press: %d query heads do not group over %d KV heads", hk->n_head,
                       n_kv);
    if (needs_w_o_missing(hk))
        return err_set(e, "kv-press: the %s press needs this layer's W_O (hook.w_o)", d->name);
    if (d->layer_budget && hk->n_layer < 1)
        return err_set(e, "kv-press: the %s press needs n_layer", d->name);
    int max_len = 0;
    size_t rows = 0;
    for (int g = 0; g < n_kv; g++) {
        int len = kv_cache_seg(kv, layer, g)->len;
        max_len = len > max_len ? len : max_len;
        rows += (size_t)len;
    }
    /* KVzip: each segment ends in the reconstruction's n_window rows (repeat prompt and copy),
     * which never stay; the budget is a share of the context rows before them */
    const bool kvzip = d->window == PRESS_WINDOW_RECONSTRUCTION;
    if (kvzip && (n_window < 1 || !q_window || n_window >= max_len))
        return err_set(e,
                       "kv-press: layer %d: the %s press needs the reconstruction's "
                       "queries (adakv_ctx_prefill_kvzip)",
                       layer, d->name);
    const int n_drop = kvzip ? n_window : 0;
    const int b = kv_press_head_budget(c, max_len - n_drop);
    if (b >= max_len && !kvzip) {
        if (hk->report)
            kv_report_nothing_evicted(hk->report, kv, layer);
        return 0; /* nothing to evict: the cache stays bit-identical */
    }
    if ((d->needs & PRESS_NEEDS_QUERIES) && (n_window < 1 || !q_window))
        return err_set(e, "kv-press: layer %d: the %s press needs window queries", layer, d->name);
    if (n_window > 0 && kv_press_check_window(n_window, max_len, e) < 0)
        return -1;
    for (int g = 0; g < n_kv; g++)
        if (kv_cache_seg(kv, layer, g)->len < n_window)
            return err_set(e, "kv-press: layer %d head %d holds fewer rows than the window %d",
                           layer, g, n_window);

    struct layer_plan p = {malloc((rows ? rows : 1) * sizeof(int32_t)),
                           malloc((size_t)n_kv * sizeof(int32_t)),
                           malloc((size_t)n_kv * sizeof(int32_t))};
    int rc = 0;
    if (!p.keep || !p.start || !p.n_keep) {
        rc = err_set(e, "kv-press: out of memory planning layer %d", layer);
        goto done;
    }
    for (int g = 0, at = 0; g < n_kv; g++) {
        p.start[g] = at;
        at += kv_cache_seg(kv, layer, g)->len;
    }
    const struct simd_ops *ops = hk->ops ? hk->ops : simd_ops_best();
    /* KVzip and expected attention score every row they may keep (no window kept aside) */
    const bool whole = d->window != PRESS_WINDOW_KEPT;
    if (d->plan)
        d->plan(kv, layer, b, c, &p);
    else if (kvzip && b >= max_len - n_drop)
        plan_prefix(kv, layer, n_drop, &p);
    else if (!whole && b <= n_window)
        plan_recent(kv, layer, b, &p);
    else if ((rc = plan_scored(hk, ops, kv, layer, q_window, n_window, whole ? b : b - n_window,
                               INT_MAX, false, &p, e)) < 0)
        goto done;

    if (hk->report &&
        (rc = kv_report_layer(hk->report, ops, kv, layer, q_window, n_window, hk->n_head,
                              hk->n_embd, hk->w_o, p.keep, p.start, p.n_keep, e)) < 0)
        goto done;
    for (int g = 0; g < n_kv && rc == 0; g++)
        rc = kv_segment_compact(kv_cache_seg(kv, layer, g), kv->type, kv->head_dim,
                                p.keep + p.start[g], p.n_keep[g], c->reserve, e);
    if (hk->report && rc == 0)
        kv_report_layer_after(hk->report, kv, layer);
done:
    free(p.keep);
    free(p.start);
    free(p.n_keep);
    return rc;
}

/* ---------------------------------------------------------------- decode-time eviction */

/* Keep lists for every head of a layer, sized by the live rows. */
static int plan_alloc(const struct kv_cache *kv, int layer, struct layer_plan *p,
                      struct adakv_err *e) {
    const int n_kv = kv->n_head_kv;
    size_t rows = 0;
    for (int g = 0; g < n_kv; g++)
        rows += (size_t)kv_cache_seg(kv, layer, g)->len;
    p->keep = malloc((rows ? rows : 1) * sizeof(int32_t));
    p->start = malloc((size_t)n_kv * sizeof(int32_t));
    p->n_keep = malloc((size_t)n_kv * sizeof(int32_t));
    if (!p->keep || !p->start || !p->n_keep)
        return err_set(e, "kv-press: out of memory planning layer %d", layer);
    for (int g = 0, at = 0; g < n_kv; g++) {
        p->start[g] = at;
        at += kv_cache_seg(kv, layer, g)->len;
    }
    return 0;
}

int kv_press_compress_decode(const struct kv_press_hook *hk, struct kv_cache *kv, int layer,
                             const float *q_recent, int n_recent, int max_rows,
                             struct adakv_err *e) {
    const struct kv_press_config *c = hk->cfg;
    const int n_kv = kv->n_head_kv;
    if (layer < 0 || layer >= kv->n_layer)
        return err_set(e, "kv-press: layer %d outside [0, %d)", layer, kv->n_layer);
    if (max_rows < 1)
        return err_set(e, "--kv-max: %d must be >= 1", max_rows);
    int over = 0;
    for (int g = 0; g < n_kv; g++)
        over |= kv_cache_seg(kv, layer, g)->len > max_rows;
    if (!over)
        return 0; /* under the cap: the cache stays bit-identical */

    const struct press_desc *d = c->press;
    const bool positional = d->plan != NULL;
    if (positional)
        n_recent = 0; /* sinks + the most recent rows: no scores, no queries */
    else if (n_recent < 1 || !q_recent)
        return err_set(e, "kv-press: layer %d: decode-time eviction needs the recent queries",
                       layer);
    if (n_recent >= max_rows)
        return err_set(e, "--kv-max: %d must exceed the %d recent rows that re-score the cache",
                       max_rows, n_recent);
    if (hk->n_head < n_kv || hk->n_head % n_kv != 0)
        return err_set(e, "kv-press: %d query heads do not group over %d KV heads", hk->n_head,
                       n_kv);
    if (needs_w_o_missing(hk))
        return err_set(e, "kv-press: the %s press needs this layer's W_O (hook.w_o)", d->name);
    for (int g = 0; g < n_kv; g++)
        if (kv_cache_seg(kv, layer, g)->len < n_recent)
            return err_set(e, "kv-press: layer %d head %d holds fewer rows than the %d recent ones",
                           layer, g, n_recent);
    /* Compact to a chunk below the cap, so the next eviction of this layer is at least a chunk
     * of decode steps away; Ada-KV may give a head up to half a chunk more than the mean (so
     * every head keeps half a chunk of headroom). Never below the recent rows plus one. */
    const int chunk = c->decode_chunk > 0 ? c->decode_chunk : 1;
    int target = max_rows - chunk;
    target = target > n_recent ? target : n_recent + 1;
    int cap = max_rows - chunk / 2;
    cap = cap > target ? cap : target;
    cap = cap < max_rows ? cap : max_rows;

    struct layer_plan p = {0};
    int rc = plan_alloc(kv, layer, &p, e);
    if (rc == 0) {
        const struct simd_ops *ops = hk->ops ? hk->ops : simd_ops_best();
        if (positional)
            d->plan(kv, layer, target, c, &p);
        else
            rc = plan_scored(hk, ops, kv, layer, q_recent, n_recent, target - n_recent,
                             cap - n_recent, true, &p, e);
    }
    for (int g = 0; g < n_kv && rc == 0; g++)
        rc = kv_segment_pack(kv_cache_seg(kv, layer, g), kv->type, kv->head_dim,
                             p.keep + p.start[g], p.n_keep[g], e);
    free(p.keep);
    free(p.start);
    free(p.n_keep);
    return rc;
}
