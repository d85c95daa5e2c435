/* The per-layer hook (kv-press.h): which rows each head keeps, at a prefill's compression points
 * (or, under --budget global, once every layer is scored) and in decode past --kv-max, then the
 * compaction. What differs between presses comes from the
 * configured press's row (press-desc.h, press-table.c); the configuration it reads, its names and
 * flag parsers are in kv-press-config.c. */
#include "kv-press.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* One layer's scores: head g's first off[g + 1] - off[g] rows are its selectable ones, scored at
 * scores[off[g] ..); the n_tail rows after them are the window (kept) or, for KVzip at a prefill,
 * the reconstruction (dropped). b_sel: the mean selectable budget per head, after the press's
 * layer schedule. */
struct layer_scores {
    int32_t *off;
    float *scores;
    int n_tail, b_sel;
    bool keep_tail;
};

static void layer_scores_free(struct layer_scores *s) {
    free(s->off);
    free(s->scores);
    *s = (struct layer_scores){0};
}

static int max_prefix_of(const int32_t *off, int n_kv) {
    int m = 0;
    for (int g = 0; g < n_kv; g++)
        m = off[g + 1] - off[g] > m ? off[g + 1] - off[g] : m;
    return m;
}

/* Scores layer `layer` with the press's scorer into s (b_sel: the mean selectable budget per head,
 * window excluded; decode: no pyramid schedule). */
static int layer_scores_compute(const struct press_layer_in *in, int b_sel, bool decode,
                                struct layer_scores *s, struct adakv_err *e) {
    const struct press_desc *d = in->hk->cfg->press;
    const int n_kv = in->kv->n_head_kv;
    *s = (struct layer_scores){0};
    /* rows after each segment's scored prefix: the window (kept), KVzip's reconstruction rows
     * (dropped), none for expected attention (every row scored) */
    s->n_tail = d->window == PRESS_WINDOW_SCORED && !decode ? 0 : in->n_q;
    s->keep_tail = !(d->window == PRESS_WINDOW_RECONSTRUCTION && !decode);
    s->off = malloc((size_t)(n_kv + 1) * sizeof *s->off);
    if (!s->off)
        goto oom;
    if (kv_score_layout(in->kv, in->layer, s->n_tail, s->off, e) < 0)
        goto fail;
    const size_t total = (size_t)s->off[n_kv];
    s->scores = malloc((total ? total : 1) * sizeof *s->scores);
    if (!s->scores)
        goto oom;
    struct press_layer_in at = *in;
    at.off = s->off;
    if ((decode ? d->score_decode : d->score)(&at, s->scores, e) < 0)
        goto fail;
    const int max_prefix = max_prefix_of(s->off, n_kv);
    if (d->layer_budget && !decode && (b_sel = d->layer_budget(&at, b_sel, max_prefix, e)) < 0)
        goto fail;
    s->b_sel = b_sel;
    return 0;
oom:
    err_set(e, "kv-press: out of memory scoring layer %d", in->layer);
fail:
    layer_scores_free(s);
    return -1;
}

/* Head budgets of one layer from its scores: uniform or Ada-KV (cap_sel caps a head under
 * Ada-KV; INT_MAX: only by its own length); decode: Ada-KV always in the capped paper form. */
static int layer_budgets(const struct kv_press_config *c, const struct layer_scores *s, int n_kv,
                         int cap_sel, bool decode, int32_t *budget, struct adakv_err *e) {
    if (decode && c->alloc != KV_ALLOC_UNIFORM)
        return kv_budget_ada_capped(s->scores, n_kv, s->off, s->b_sel, cap_sel, c->alpha, budget,
                                    e);
    if (c->alloc == KV_ALLOC_ADA)
        return kv_budget_ada(s->scores, n_kv, s->off, s->b_sel, c->alpha, budget, e);
    if (c->alloc == KV_ALLOC_ADA_KVPRESS)
        return kv_budget_ada_kvpress(s->scores, n_kv, s->off, s->b_sel, c->alpha, budget, e);
    kv_budget_uniform(n_kv, s->off, s->b_sel, budget);
    return 0;
}

/* Keep lists of one layer: each head its budget of selectable rows (the press's selection, or
 * the top by score), then its tail when the tail stays. */
static int layer_pick(const struct press_layer_in *in, const struct layer_scores *s,
                      const int32_t *budget, struct layer_plan *p, struct adakv_err *e) {
    const struct press_desc *d = in->hk->cfg->press;
    const int n_kv = in->kv->n_head_kv;
    struct press_layer_in at = *in;
    at.off = s->off;
    if (d->select && d->select(&at, s->scores, budget, p->keep, p->start, e) < 0)
        return -1;
    const int max_prefix = max_prefix_of(s->off, n_kv);
    uint32_t *scratch = malloc((size_t)(max_prefix ? max_prefix : 1) * sizeof *scratch);
    if (!scratch)
        return err_set(e, "kv-press: out of memory scoring layer %d", in->layer);
    for (int g = 0; g < n_kv; g++) {
        const int n_prefix = s->off[g + 1] - s->off[g], len = n_prefix + s->n_tail;
        if (!d->select)
            kv_budget_pick(s->scores + s->off[g], n_prefix, budget[g], scratch,
                           p->keep + p->start[g]);
        int n = budget[g];
        if (s->keep_tail)
            keep_range(p->keep + p->start[g], &n, n_prefix, len); /* the window, always kept */
        p->n_keep[g] = n;
    }
    free(scratch);
    return 0;
}

/* Scores, budgets and picks for one layer: every head keeps its window plus its share of the
 * selectable rows. b_sel is the mean selectable budget per head (window excluded); cap_sel
 * caps a head under Ada-KV (INT_MAX: only by its own length). decode: no pyramid schedule, and
 * Ada-KV always in the capped paper form (kv_press_compress_decode). */
static int plan_scored(const struct kv_press_hook *hk, const struct simd_ops *ops,
                       const struct kv_cache *kv, int layer, const float *q_window, int n_window,
                       int b_sel, int cap_sel, bool decode, struct layer_plan *p,
                       struct adakv_err *e) {
    const struct press_layer_in in = {hk, ops, kv, layer, q_window, n_window, NULL};
    struct layer_scores s;
    if (layer_scores_compute(&in, b_sel, decode, &s, e) < 0)
        return -1;
    int32_t *budget = malloc((size_t)kv->n_head_kv * sizeof *budget);
    int rc = budget ? layer_budgets(hk->cfg, &s, kv->n_head_kv, cap_sel, decode, budget, e)
                    : err_set(e, "kv-press: out of memory scoring layer %d", layer);
    if (rc == 0)
        rc = layer_pick(&in, &s, budget, p, e);
    free(budget);
    layer_scores_free(&s);
    return rc;
}

/* ---------------------------------------------------------------- keep lists, compaction */

static bool needs_w_o_missing(const struct kv_press_hook *hk) {
    return (hk->cfg->press->needs & PRESS_NEEDS_W_O) && (!hk->w_o || hk->n_embd < 1);
}

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

/* Compacts every head of the layer to its keep list (reserve rows left free for decode). */
static int compact_layer(struct kv_cache *kv, int layer, const struct layer_plan *p, int reserve,
                         struct adakv_err *e) {
    int rc = 0;
    for (int g = 0; g < kv->n_head_kv && rc == 0; g++)
        rc = kv_segment_compact(kv_cache_seg(kv, layer, g), kv->type, kv->head_dim,
                                p->keep + p->start[g], p->n_keep[g], reserve, e);
    return rc;
}

/* ---------------------------------------------------------------- --budget global */

/* A layer scored at its compression point and waiting for the split over the whole model. */
struct deferred_layer {
    bool pending;
    struct layer_scores s;
    int32_t *budget; /* [n_head_kv] after kv_press_deferred_split */
};

struct kv_press_deferred {
    int n_layer, n_head_kv;
    struct deferred_layer *layer; /* [n_layer] */
};

struct kv_press_deferred *kv_press_deferred_new(int n_layer, struct adakv_err *e) {
    struct kv_press_deferred *d = calloc(1, sizeof *d);
    if (d)
        d->layer = calloc((size_t)(n_layer > 0 ? n_layer : 1), sizeof *d->layer);
    if (!d || !d->layer) {
        free(d);
        err_set(e, "kv-press: out of memory for --budget global's %d layers", n_layer);
        return NULL;
    }
    d->n_layer = n_layer;
    return d;
}

/* Forgets layer il's scores and budgets. */
static void deferred_drop(struct kv_press_deferred *d, int il) {
    layer_scores_free(&d->layer[il].s);
    free(d->layer[il].budget);
    d->layer[il] = (struct deferred_layer){0};
}

void kv_press_deferred_clear(struct kv_press_deferred *d) {
    for (int il = 0; d && il < d->n_layer; il++)
        deferred_drop(d, il);
}

void kv_press_deferred_free(struct kv_press_deferred *d) {
    kv_press_deferred_clear(d);
    if (d)
        free(d->layer);
    free(d);
}

bool kv_press_deferred_pending(const struct kv_press_deferred *d, int il) {
    return d && il >= 0 && il < d->n_layer && d->layer[il].pending;
}

/* Scores the layer and keeps the scores for the split; the cache stays as it is. */
static int defer_layer(const struct kv_press_hook *hk, const struct simd_ops *ops,
                       const struct kv_cache *kv, int layer, const float *q_window, int n_window,
                       int b_sel, struct adakv_err *e) {
    struct kv_press_deferred *d = hk->deferred;
    if (layer >= d->n_layer)
        return err_set(e, "kv-press: layer %d outside --budget global's %d", layer, d->n_layer);
    deferred_drop(d, layer);
    const struct press_layer_in in = {hk, ops, kv, layer, q_window, n_window, NULL};
    if (layer_scores_compute(&in, b_sel, false, &d->layer[layer].s, e) < 0)
        return -1;
    d->layer[layer].pending = true;
    d->n_head_kv = kv->n_head_kv;
    return 0;
}

int kv_press_deferred_split(const struct kv_press_hook *hk, struct adakv_err *e) {
    struct kv_press_deferred *d = hk->deferred;
    const struct kv_press_config *c = hk->cfg;
    const int n_kv = d ? d->n_head_kv : 0; /* every layer's, as the cache has one count */
    int n_pairs = 0;
    size_t rows = 0;
    for (int il = 0; d && il < d->n_layer; il++)
        if (d->layer[il].pending) {
            n_pairs += n_kv;
            rows += (size_t)d->layer[il].s.off[n_kv];
        }
    if (n_pairs == 0)
        return 0;
    float *scores = malloc((rows ? rows : 1) * sizeof *scores);
    int32_t *off = malloc(((size_t)n_pairs + 1) * sizeof *off);
    int32_t *b_sel = malloc((size_t)n_pairs * sizeof *b_sel);
    int32_t *budget = malloc((size_t)n_pairs * sizeof *budget);
    int rc = 0;
    if (!scores || !off || !b_sel || !budget || rows > INT32_MAX) {
        rc = err_set(e, "kv-press: out of memory for --budget global's %zu scores", rows);
        goto done;
    }
    /* (layer, head) pairs in layer order: the flat index of a score orders ties as within a
     * layer (lower head, then lower row), and the lower layer first */
    int pair = 0;
    off[0] = 0;
    for (int il = 0; il < d->n_layer; il++) {
        const struct layer_scores *s = &d->layer[il].s;
        if (!d->layer[il].pending)
            continue;
        memcpy(scores + off[pair], s->scores, (size_t)s->off[n_kv] * sizeof *scores);
        for (int g = 0; g < n_kv; g++, pair++) {
            off[pair + 1] = off[pair] + (s->off[g + 1] - s->off[g]);
            b_sel[pair] = s->b_sel;
        }
    }
    if (c->alloc == KV_ALLOC_ADA_KVPRESS)
        rc = kv_budget_ada_kvpress_each(scores, n_pairs, off, b_sel, c->alpha, budget, e);
    else if (c->alloc == KV_ALLOC_ADA)
        rc = kv_budget_ada_each(scores, n_pairs, off, b_sel, c->alpha, budget, e);
    else /* uniform heads: the split changes nothing, every head keeps its layer's b_sel */
        for (int i = 0; i < n_pairs; i++)
            budget[i] = b_sel[i] < off[i + 1] - off[i] ? b_sel[i] : off[i + 1] - off[i];
    pair = 0;
    for (int il = 0; il < d->n_layer && rc == 0; il++) {
        if (!d->layer[il].pending)
            continue;
        int32_t *b = malloc((size_t)n_kv * sizeof *b);
        if (!b) {
            rc = err_set(e, "kv-press: out of memory for --budget global's budgets");
            break;
        }
        memcpy(b, budget + pair, (size_t)n_kv * sizeof *b);
        free(d->layer[il].budget);
        d->layer[il].budget = b;
        pair += n_kv;
    }
done:
    free(scores);
    free(off);
    free(b_sel);
    free(budget);
    return rc;
}

int kv_press_deferred_compact(const struct kv_press_hook *hk, struct kv_cache *kv, int layer,
                              struct adakv_err *e) {
    struct kv_press_deferred *d = hk->deferred;
    if (!kv_press_deferred_pending(d, layer) || !d->layer[layer].budget)
        return err_set(e, "kv-press: layer %d has no --budget global split to apply", layer);
    if (needs_w_o_missing(hk))
        return err_set(e, "kv-press: the %s press needs this layer's W_O (hook.w_o)",
                       hk->cfg->press->name);
    const struct simd_ops *ops = hk->ops ? hk->ops : simd_ops_best();
    const struct press_layer_in in = {hk, ops, kv, layer, NULL, 0, NULL};
    struct layer_plan p = {0};
    int rc = plan_alloc(kv, layer, &p, e);
    if (rc == 0)
        rc = layer_pick(&in, &d->layer[layer].s, d->layer[layer].budget, &p, e);
    if (rc == 0)
        rc = compact_layer(kv, layer, &p, hk->cfg->reserve, e);
    free(p.keep);
    free(p.start);
    free(p.n_keep);
    deferred_drop(d, layer);
    return rc;
}

/* ---------------------------------------------------------------- the hook */

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
    for (int g = 0; g < n_kv; g++) {
        int len = kv_cache_seg(kv, layer, g)->len;
        max_len = len > max_len ? len : max_len;
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

    const struct simd_ops *ops = hk->ops ? hk->ops : simd_ops_best();
    /* KVzip and expected attention score every row they may keep (no window kept aside) */
    const bool whole = d->window != PRESS_WINDOW_KEPT;
    const bool scored = !d->plan && !(kvzip && b >= max_len - n_drop) && !(!whole && b <= n_window);
    if (scored && hk->deferred)
        return defer_layer(hk, ops, kv, layer, q_window, n_window, whole ? b : b - n_window, e);
    struct layer_plan p = {0};
    int rc = plan_alloc(kv, layer, &p, e);
    if (rc)
        goto done;
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
    rc = compact_layer(kv, layer, &p, c->reserve, e);
    if (hk->report && rc == 0)
        kv_report_layer_after(hk->report, kv, layer);
done:
    free(p.keep);
    free(p.start);
    free(p.n_keep);
    return rc;
}

/* ---------------------------------------------------------------- decode-time eviction */

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
