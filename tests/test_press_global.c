/* --budget global (kv-press.h, KV_BUDGET_GLOBAL): Ada-KV's split over every (layer, KV head) at
 * once. On random caches whose layers' key norms differ (knorm scores, so the winners are known):
 * the rows kept are the highest scores of the whole model, the total is the per-layer total,
 * every head keeps its floor, a layer can take more than its per-layer share; on one layer the
 * global split is the per-layer one. On the default model: the prefill's logits are those of the
 * per-layer press, the rows move between layers, the peak holds the whole prompt, and the options
 * it cannot run with are refused with one line naming the flag. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adakv-ext.h"
#include "kv-fixture.h"
#include "kv-press.h"
#include "test-env.h"

enum { N_KV = 2, N_HEAD = 4, D = 16, WIN = 8, LEN = 200, BUDGET = 40, MAX_LAYER = 4 };

struct fixture {
    struct kv_cache kv, orig;
    int n_layer;
    float *q; /* [n_layer][WIN][N_HEAD][D] */
};

/* f32 rows; layer l's keys scaled by amp[l], so knorm (-||k||) ranks a quiet layer's rows first. */
static void fixture_init(struct fixture *f, uint64_t seed, int n_layer, const float *amp) {
    fx_seed(seed);
    int len[N_KV] = {LEN, LEN};
    fx_cache(&f->kv, KV_TYPE_F32, n_layer, N_KV, D, len);
    for (int l = 0; l < n_layer; l++)
        for (int g = 0; g < N_KV; g++) {
            float *k = kv_cache_seg(&f->kv, l, g)->k;
            for (int i = 0; i < LEN * D; i++)
                k[i] *= amp[l];
        }
    fx_cache_copy(&f->orig, &f->kv);
    f->n_layer = n_layer;
    f->q = malloc((size_t)n_layer * WIN * N_HEAD * D * sizeof *f->q);
    for (int i = 0; i < n_layer * WIN * N_HEAD * D; i++)
        f->q[i] = fx_unif() * 3.0f;
}

static void fixture_free(struct fixture *f) {
    fx_cache_free(&f->kv);
    fx_cache_free(&f->orig);
    free(f->q);
}

/* Every layer through the hook; with global, the split and the compaction after the last. */
static void run(struct fixture *f, const struct kv_press_config *c, bool global) {
    struct adakv_err e = {{0}};
    struct kv_press_hook hk = {
        .cfg = c, .n_layer = f->n_layer, .n_head = N_HEAD, .n_embd = 8, .ops = simd_ops_scalar()};
    if (global)
        cr_assert((hk.deferred = kv_press_deferred_new(f->n_layer, &e)), "%s", e.msg);
    for (int l = 0; l < f->n_layer; l++) {
        const float *q = f->q + (size_t)l * WIN * N_HEAD * D;
        cr_assert_eq(kv_press_compress_layer(&hk, &f->kv, l, q, WIN, &e), 0, "%s", e.msg);
        if (global) /* scored, not compacted: the cache holds every row until the split */
            cr_assert(kv_press_deferred_pending(hk.deferred, l) &&
                      kv_cache_seg(&f->kv, l, 0)->len == LEN);
    }
    if (!global)
        return;
    cr_assert_eq(kv_press_deferred_split(&hk, &e), 0, "%s", e.msg);
    for (int l = 0; l < f->n_layer; l++)
        cr_assert_eq(kv_press_deferred_compact(&hk, &f->kv, l, &e), 0, "%s", e.msg);
    kv_press_deferred_free(hk.deferred);
}

static void config(struct kv_press_config *c, const char *press, enum kv_press_alloc alloc,
                   float alpha) {
    struct adakv_err e;
    kv_press_config_default(c);
    cr_assert_eq(kv_press_parse_name(press, c, &e), 0);
    c->alloc = alloc;
    c->alpha = alpha;
    c->window = WIN;
    c->budget = BUDGET;
    c->scope = KV_BUDGET_GLOBAL;
}

/* Whether the segment kept the row at position pos. */
static bool kept(const struct kv_segment *s, int pos) {
    for (int j = 0; j < s->len; j++)
        if (s->pos[j] == pos)
            return true;
    return false;
}

static double knorm_score(const struct kv_segment *orig, int j) {
    double sum = 0.0;
    for (int i = 0; i < D; i++)
        sum += (double)((const float *)orig->k)[(size_t)j * D + i] *
               ((const float *)orig->k)[(size_t)j * D + i];
    return -sqrt(sum);
}

/* Rows kept per layer (window included); checks the windows and the kept rows' bytes. */
static void layer_rows(const struct fixture *f, int *rows) {
    for (int l = 0; l < f->n_layer; l++) {
        rows[l] = 0;
        for (int g = 0; g < N_KV; g++) {
            const struct kv_segment *s = kv_cache_seg(&f->kv, l, g);
            cr_assert(fx_rows_match_by_pos(&f->kv, s, kv_cache_seg(&f->orig, l, g)));
            for (int t = 0; t < WIN; t++)
                cr_assert(kept(s, LEN - WIN + t), "layer %d head %d lost window row %d", l, g, t);
            rows[l] += s->len;
        }
    }
}

Test(press_global, the_highest_scores_of_every_layer_win) {
    const float amp[3] = {0.5f, 1.0f, 2.0f};
    struct fixture f;
    fixture_init(&f, 7, 3, amp);
    struct kv_press_config c;
    config(&c, "knorm", KV_ALLOC_ADA, 0.0f); /* alpha 0: exactly one top-k, no floor */
    run(&f, &c, true);
    int rows[3], total = 0;
    layer_rows(&f, rows);
    for (int l = 0; l < 3; l++)
        total += rows[l];
    cr_assert_eq(total, 3 * N_KV * BUDGET, "kept %d rows", total);
    cr_assert_gt(rows[0], N_KV * BUDGET, "the quiet layer kept only %d rows", rows[0]);
    cr_assert_lt(rows[2], N_KV * BUDGET, "the loud layer kept %d rows", rows[2]);
    /* every kept selectable row scores at least every evicted one, across layers */
    double lowest_kept = INFINITY, highest_evicted = -INFINITY;
    for (int l = 0; l < 3; l++)
        for (int g = 0; g < N_KV; g++)
            for (int j = 0; j < LEN - WIN; j++) {
                const double s = knorm_score(kv_cache_seg(&f.orig, l, g), j);
                if (kept(kv_cache_seg(&f.kv, l, g), j))
                    lowest_kept = s < lowest_kept ? s : lowest_kept;
                else
                    highest_evicted = s > highest_evicted ? s : highest_evicted;
            }
    cr_assert_geq(lowest_kept, highest_evicted - 1e-5, "kept %g < evicted %g", lowest_kept,
                  highest_evicted);
    fixture_free(&f);
}

Test(press_global, every_head_keeps_its_floor) {
    const float amp[3] = {0.5f, 1.0f, 4.0f};
    const enum kv_press_alloc allocs[2] = {KV_ALLOC_ADA, KV_ALLOC_ADA_KVPRESS};
    for (int a = 0; a < 2; a++) {
        struct fixture f;
        fixture_init(&f, 11, 3, amp);
        struct kv_press_config c;
        config(&c, "knorm", allocs[a], 0.5f);
        run(&f, &c, true);
        int rows[3];
        layer_rows(&f, rows);
        cr_assert_eq(rows[0] + rows[1] + rows[2], 3 * N_KV * BUDGET, "alloc %d", a);
        cr_assert_gt(rows[0], N_KV * BUDGET, "alloc %d: the quiet layer kept %d", a, rows[0]);
        const int floor_rows = (int)floorf(0.5f * (BUDGET - WIN));
        for (int l = 0; l < 3; l++)
            for (int g = 0; g < N_KV; g++)
                cr_assert_geq(kv_cache_seg(&f.kv, l, g)->len, WIN + floor_rows,
                              "alloc %d layer %d head %d", a, l, g);
        /* the loud layer's heads win nothing beyond their floor */
        for (int g = 0; g < N_KV; g++)
            cr_assert_eq(kv_cache_seg(&f.kv, 2, g)->len, WIN + floor_rows, "alloc %d head %d", a,
                         g);
        fixture_free(&f);
    }
}

/* With one layer there is nothing to move between layers: the global split is the per-layer one,
 * on SnapKV scores (queries, pooling) under both Ada-KV forms. */
Test(press_global, one_layer_is_the_per_layer_split) {
    const float amp[1] = {1.0f};
    const enum kv_press_alloc allocs[2] = {KV_ALLOC_ADA, KV_ALLOC_ADA_KVPRESS};
    for (int a = 0; a < 2; a++) {
        struct fixture g, l;
        fixture_init(&g, 23, 1, amp);
        fixture_init(&l, 23, 1, amp);
        struct kv_press_config c;
        config(&c, "snapkv", allocs[a], 0.2f);
        run(&g, &c, true);
        c.scope = KV_BUDGET_LAYER;
        run(&l, &c, false);
        int moved = 0;
        for (int h = 0; h < N_KV; h++) {
            const struct kv_segment *sg = kv_cache_seg(&g.kv, 0, h),
                                    *sl = kv_cache_seg(&l.kv, 0, h);
            cr_assert_eq(sg->len, sl->len, "alloc %d head %d", a, h);
            cr_assert_eq(memcmp(sg->pos, sl->pos, (size_t)sg->len * sizeof *sg->pos), 0);
            moved += sg->len != BUDGET;
        }
        cr_assert_gt(moved, 0, "alloc %d: Ada-KV moved no rows between heads", a);
        fixture_free(&g);
        fixture_free(&l);
    }
}

/* ---------------------------------------------------------------- the default model */

enum { N_PROMPT = 300 };

struct model_run {
    size_t rows, peak, after; /* live rows; KV bytes at the peak and after the prefill */
    int layer_rows[64];
    int min_head;
};

static struct adakv_press *press_of(const char *const *opts) {
    struct adakv_err e = {{0}};
    struct adakv_press *p = adakv_press_new();
    for (int i = 0; opts[i]; i += 2)
        cr_assert_eq(adakv_press_set(p, opts[i], opts[i + 1], &e), 0, "%s", e.msg);
    return p;
}

/* Prefills N_PROMPT fixed tokens with the press; the last row's logits go to out. */
static void run_model(struct adakv_model *m, const char *budget, float *out, struct model_run *r) {
    struct adakv_err e = {{0}};
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = 512;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
    cr_assert(c, "%s", e.msg);
    const char *opts[] = {"press", "ada-snapkv", "kv-ratio", "0.5", "budget", budget, NULL};
    struct adakv_press *p = press_of(opts);
    cr_assert_eq(adakv_ctx_set_press(c, p, false, &e), 0, "%s", e.msg);
    adakv_press_free(p);
    int32_t tok[N_PROMPT];
    for (int i = 0; i < N_PROMPT; i++)
        tok[i] = 500 + (i * 7919) % 30000;
    cr_assert_eq(adakv_eval(c, tok, N_PROMPT, out, false, &e), 0, "%s", e.msg);
    r->rows = adakv_ctx_kv_rows(c);
    r->peak = adakv_ctx_kv_peak_bytes(c);
    r->after = adakv_ctx_kv_bytes(c);
    const struct kv_cache *kv = adakv_ctx_kv(c);
    cr_assert_leq(kv->n_layer, 64);
    r->min_head = N_PROMPT;
    for (int l = 0; l < kv->n_layer; l++) {
        r->layer_rows[l] = 0;
        for (int g = 0; g < kv->n_head_kv; g++) {
            const int len = kv_cache_seg(kv, l, g)->len;
            r->layer_rows[l] += len;
            r->min_head = len < r->min_head ? len : r->min_head;
        }
    }
    int32_t next = 1; /* and a decode step runs on the compressed cache */
    cr_assert_eq(adakv_eval(c, &next, 1, NULL, false, &e), 0, "%s", e.msg);
    adakv_ctx_free(c);
}

Test(press_global, model_prefill_moves_rows_between_layers, .timeout = 600) {
    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {0};
    struct adakv_model *m = adakv_model_load(env("ADAKV_MODEL"), &mp, &e);
    cr_assert(m, "%s", e.msg);
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    float *lg = malloc((size_t)info.n_vocab * sizeof *lg), *ll = malloc(info.n_vocab * sizeof *ll);
    { /* the report is written as each layer is compressed: refused rather than empty */
        struct adakv_ctx_params cp;
        adakv_ctx_params_default(&cp);
        cp.n_ctx = 64;
        struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
        const char *opts[] = {"press", "ada-snapkv", "kv-ratio", "0.5", "budget", "global", NULL};
        struct adakv_press *p = press_of(opts);
        cr_assert_eq(adakv_ctx_set_press(c, p, true, &e), -1);
        cr_assert(strstr(e.msg, "--kv-report"), "'%s'", e.msg);
        adakv_press_free(p);
        adakv_ctx_free(c);
    }
    struct model_run g, l;
    run_model(m, "global", lg, &g);
    run_model(m, "layer", ll, &l);
    /* compression after the batch changes nothing the batch itself computed */
    cr_assert_eq(memcmp(lg, ll, (size_t)info.n_vocab * sizeof *lg), 0, "prefill logits differ");
    const int share = info.n_head_kv * (N_PROMPT / 2); /* kv-ratio 0.5: 150 rows per head */
    cr_assert_eq(l.rows, (size_t)info.n_layer * share);
    cr_assert_eq(g.rows, l.rows, "global kept %zu rows, per layer %zu", g.rows, l.rows);
    int above = 0, below = 0;
    for (int i = 0; i < info.n_layer; i++) {
        cr_assert_eq(l.layer_rows[i], share, "per-layer budget moved rows off layer %d", i);
        above += g.layer_rows[i] > share;
        below += g.layer_rows[i] < share;
    }
    cr_assert(above > 0 && below > 0, "no rows moved between layers (%d above, %d below)", above,
              below);
    /* the floor: 32 window rows + floor(0.2 * (150 - 32)) */
    cr_assert_geq(g.min_head, 32 + (int)floorf(0.2f * (150 - 32)), "a head kept %d", g.min_head);
    /* the price: the whole prompt in every layer until the split (at kv-ratio 0.5, twice what
     * stays), against one layer's at a time */
    cr_assert_geq((double)g.peak, 1.9 * (double)g.after, "global peak %zu, after %zu", g.peak,
                  g.after);
    cr_assert_lt((double)l.peak, 1.2 * (double)l.after, "per-layer peak %zu, after %zu", l.peak,
                 l.after);
    cr_log_info("press_global: rows per layer %d .. %d around %d; peak %zu B (per layer %zu B)",
                g.layer_rows[0], g.layer_rows[info.n_layer - 1], share, g.peak, l.peak);
    free(lg), free(ll);
    adakv_model_free(m);
}

/* What global cannot run with: one line naming the flag. */
Test(press_global, unsupported_combinations_are_refused) {
    const struct {
        const char *opts[9];
        const char *needle;
    } cases[] = {
        {{"press", "snapkv", "kv-budget", "64", "budget", "global", NULL}, "--budget global"},
        {{"press", "ada-pyramid", "kv-budget", "64", "budget", "global", NULL}, "--budget global"},
        {{"press", "ada-snapkv", "kv-budget", "64", "budget", "global", "prefill-chunk", "128",
          NULL},
         "--prefill-chunk"},
        {{"press", "ada-snapkv", "kv-budget", "64", "budget", "global", "kv-max", "200", NULL},
         "--kv-max"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct adakv_err e = {{0}};
        struct adakv_press *p = press_of(cases[i].opts);
        cr_assert_eq(adakv_press_check(p, &e), -1, "case %zu accepted", i);
        cr_assert(strstr(e.msg, cases[i].needle), "case %zu: '%s'", i, e.msg);
        cr_assert(!strchr(e.msg, '\n'));
        adakv_press_free(p);
    }
    struct adakv_err e = {{0}};
    struct adakv_press *p = adakv_press_new();
    cr_assert_eq(adakv_press_set(p, "budget", "model", &e), -1);
    cr_assert(strstr(e.msg, "--budget") && strstr(e.msg, "layer, global"), "'%s'", e.msg);
    adakv_press_free(p);
}

/* KVzip under the global split: every layer holds context and reconstruction until the end of
 * the batch, then keeps the per-layer total of context rows and no reconstruction row. */
Test(press_global, kvzip_drops_the_reconstruction_in_every_layer, .timeout = 300) {
    enum { N = 200, N_REC = 80 };
    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {0};
    struct adakv_model *m = adakv_model_load(env("ADAKV_MODEL"), &mp, &e);
    cr_assert(m, "%s", e.msg);
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = N + N_REC + 8;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
    cr_assert(c, "%s", e.msg);
    const char *opts[] = {"press", "ada-kvzip", "kv-ratio", "0.5", "budget", "global", NULL};
    struct adakv_press *p = press_of(opts);
    cr_assert_eq(adakv_ctx_set_press(c, p, false, &e), 0, "%s", e.msg);
    adakv_press_free(p);
    int32_t tok[N + N_REC];
    for (int i = 0; i < N + N_REC; i++)
        tok[i] = 300 + (i * 7919) % 20000;
    cr_assert_eq(adakv_ctx_prefill_kvzip(c, tok, N, tok + N, N_REC, &e), 0, "%s", e.msg);
    const struct kv_cache *kv = adakv_ctx_kv(c);
    int moved = 0;
    for (int l = 0; l < kv->n_layer; l++) {
        int rows = 0;
        for (int g = 0; g < kv->n_head_kv; g++) {
            const struct kv_segment *s = kv_cache_seg(kv, l, g);
            rows += s->len;
            for (int i = 0; i < s->len; i++)
                cr_assert_lt(s->pos[i], N, "layer %d head %d: reconstruction row", l, g);
        }
        moved += rows != kv->n_head_kv * N / 2;
    }
    cr_assert_eq(adakv_ctx_kv_rows(c), (size_t)kv->n_layer * kv->n_head_kv * N / 2);
    cr_assert_gt(moved, 0, "no layer kept more or less than its per-layer share");
    adakv_ctx_free(c);
    adakv_model_free(m);
}
