/* Presses end to end on random caches: flag validation (one message per bad value), aliases,
 * budget >= length evicts nothing, kept rows and totals per press, alpha = 1 is uniform SnapKV,
 * CriticalKV with stage-1 ratio 1 is its base press, and the L1 eviction-loss bounds. */
#include <criterion/criterion.h>
#include <math.h>

#include "kv-fixture.h"
#include "kv-press.h"
#include "kv-report.h"

/* ---------------------------------------------------------------- flags */

#define REJECTS(call, needle)                                                                      \
    do {                                                                                           \
        struct adakv_err e_ = {{0}};                                                               \
        struct adakv_err *e = &e_;                                                                 \
        cr_assert_eq((call), -1, "accepted: %s", #call);                                           \
        cr_assert(strstr(e_.msg, needle), "message '%s' lacks '%s'", e_.msg, needle);              \
        cr_assert(!strchr(e_.msg, '\n'), "message is not one line: %s", e_.msg);                   \
    } while (0)

Test(press, bad_flag_values_are_rejected_with_their_message) {
    struct kv_press_config c;
    kv_press_config_default(&c);
    REJECTS(kv_press_config_set(&c, "kv-budget", "0", e), "--kv-budget");
    REJECTS(kv_press_config_set(&c, "kv-budget", "-5", e), "--kv-budget");
    REJECTS(kv_press_config_set(&c, "kv-budget", "12x", e), "--kv-budget");
    REJECTS(kv_press_config_set(&c, "kv-budget", "", e), "--kv-budget");
    REJECTS(kv_press_config_set(&c, "kv-budget", "99999999999999999999", e), "--kv-budget");
    REJECTS(kv_press_config_set(&c, "kv-ratio", "1", e), "--kv-ratio");
    REJECTS(kv_press_config_set(&c, "kv-ratio", "-0.1", e), "--kv-ratio");
    REJECTS(kv_press_config_set(&c, "kv-ratio", "1.5", e), "--kv-ratio");
    REJECTS(kv_press_config_set(&c, "kv-ratio", "nan", e), "--kv-ratio");
    REJECTS(kv_press_config_set(&c, "kv-ratio", "0.5abc", e), "--kv-ratio");
    REJECTS(kv_press_config_set(&c, "alpha", "-0.01", e), "--alpha");
    REJECTS(kv_press_config_set(&c, "alpha", "1.01", e), "--alpha");
    REJECTS(kv_press_config_set(&c, "alpha", "inf", e), "--alpha");
    REJECTS(kv_press_config_set(&c, "window", "0", e), "--window");
    REJECTS(kv_press_check_window(64, 50, e), "longer than the prompt");
    REJECTS(kv_press_parse_name("snapkvv", &c, e), "unknown press 'snapkvv'");
    REJECTS(kv_press_parse_name("", &c, e), "--press");
    REJECTS(kv_press_config_set(&c, "pool-kernel", "4", e), "even");
    REJECTS(kv_press_config_set(&c, "beta", "0", e), "--beta");
    REJECTS(kv_press_config_set(&c, "sink", "-1", e), "--sink");
    REJECTS(kv_press_config_set(&c, "pool", "min", e), "--pool");
    c.budget = 128;
    c.ratio = 0.5f;
    REJECTS(kv_press_config_check(&c, e), "mutually exclusive");
}

Test(press, good_flag_values_and_aliases) {
    struct adakv_err e;
    struct kv_press_config g;
    kv_press_config_default(&g);
    cr_assert_eq(kv_press_config_set(&g, "kv-budget", "128", &e), 0);
    cr_assert_eq(g.budget, 128);
    cr_assert_eq(kv_press_config_set(&g, "kv-ratio", "0", &e), 0);
    cr_assert_eq(kv_press_config_set(&g, "kv-ratio", "0.999", &e), 0);
    cr_assert_float_eq(g.ratio, 0.999f, 0);
    cr_assert_eq(kv_press_config_set(&g, "alpha", "1", &e), 0);
    cr_assert_eq(kv_press_config_set(&g, "alpha", "0", &e), 0);
    cr_assert_eq(g.alpha, 0.0f);
    cr_assert_eq(kv_press_check_window(32, 32, &e), 0);
    const struct {
        const char *name;
        const char *press; /* the row's adakv name */
        enum kv_press_alloc alloc;
    } cases[] = {
        {"no_press", "full", KV_ALLOC_UNIFORM},
        {"streaming_llm", "streaming", KV_ALLOC_UNIFORM},
        {"pyramidkv", "pyramid", KV_ALLOC_UNIFORM},
        {"critical_snapkv", "critical", KV_ALLOC_UNIFORM},
        {"adakv_snapkv", "snapkv", KV_ALLOC_ADA},
        {"critical_adakv_snapkv", "critical", KV_ALLOC_ADA},
        {"knorm", "knorm", KV_ALLOC_UNIFORM},
        {"random", "random", KV_ALLOC_UNIFORM},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct kv_press_config c;
        kv_press_config_default(&c);
        cr_assert_eq(kv_press_parse_name(cases[k].name, &c, &e), 0);
        cr_assert_str_eq(c.press->name, cases[k].press, "%s", cases[k].name);
        cr_assert_eq(c.alloc, cases[k].alloc, "%s", cases[k].name);
    }
    struct kv_press_config c;
    kv_press_config_default(&c);
    cr_assert_eq(kv_press_config_check(&c, &e), 0);
    c.ratio = 0.2f;
    cr_assert_eq(kv_press_head_budget(&c, 1000), 800);
}

/* ---------------------------------------------------------------- the hook */

enum { N_LAYER = 4, N_KV = 3, GROUP = 3, N_HEAD = 9, D = 32, N_EMBD = 24, WIN = 8, LEN = 300 };

struct fixture {
    struct kv_cache kv, orig;
    float *q;   /* [N_LAYER][WIN][N_HEAD][D] */
    float *w_o; /* [N_EMBD][N_HEAD * D] */
};

static void fixture_init(struct fixture *f, uint64_t seed, enum kv_type type) {
    fx_seed(seed);
    int len[N_KV] = {LEN, LEN, LEN};
    fx_cache(&f->kv, type, N_LAYER, N_KV, D, len);
    fx_cache_copy(&f->orig, &f->kv);
    f->q = malloc((size_t)N_LAYER * WIN * N_HEAD * D * sizeof *f->q);
    for (int i = 0; i < N_LAYER * WIN * N_HEAD * D; i++)
        f->q[i] = fx_unif() * 3.0f;
    f->w_o = malloc((size_t)N_EMBD * N_HEAD * D * sizeof *f->w_o);
    for (int i = 0; i < N_EMBD * N_HEAD * D; i++)
        f->w_o[i] = fx_unif();
}

static void fixture_free(struct fixture *f) {
    fx_cache_free(&f->kv);
    fx_cache_free(&f->orig);
    free(f->q);
    free(f->w_o);
}

static void run_press(struct fixture *f, const struct kv_press_config *c, struct kv_report *r) {
    struct kv_press_hook hk = {.cfg = c,
                               .n_layer = N_LAYER,
                               .n_head = N_HEAD,
                               .n_embd = N_EMBD,
                               .w_o = f->w_o,
                               .ops = simd_ops_scalar(),
                               .report = r};
    struct adakv_err e = {{0}};
    for (int l = 0; l < N_LAYER; l++)
        cr_assert_eq(
            kv_press_compress_layer(&hk, &f->kv, l, f->q + (size_t)l * WIN * N_HEAD * D, WIN, &e),
            0, "layer %d: %s", l, e.msg);
}

static void check_rows_and_window(const struct fixture *f) {
    for (int l = 0; l < N_LAYER; l++)
        for (int g = 0; g < N_KV; g++) {
            const struct kv_segment *s = kv_cache_seg(&f->kv, l, g);
            cr_assert(fx_rows_match_by_pos(&f->kv, s, kv_cache_seg(&f->orig, l, g)),
                      "layer %d head %d: kept rows are not the original rows in order", l, g);
        }
}

static int same_cache(const struct kv_cache *a, const struct kv_cache *b) {
    for (int i = 0; i < a->n_layer * a->n_head_kv; i++) {
        if (a->seg[i].len != b->seg[i].len)
            return 0;
        for (int j = 0; j < a->seg[i].len; j++)
            if (a->seg[i].pos[j] != b->seg[i].pos[j])
                return 0;
    }
    return 1;
}

Test(press, budget_at_least_length_evicts_nothing) {
    const char *names[] = {"snapkv", "ada-snapkv", "pyramid", "critical", "streaming", "knorm"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        struct fixture f;
        fixture_init(&f, 11 + k, KV_TYPE_INT8);
        struct kv_press_config c;
        struct adakv_err e;
        kv_press_config_default(&c);
        kv_press_parse_name(names[k], &c, &e);
        c.window = WIN;
        c.budget = LEN;
        void *k0 = f.kv.seg[0].k;
        run_press(&f, &c, NULL);
        cr_assert_eq(f.kv.seg[0].k, k0, "%s touched the segment", names[k]);
        for (int i = 0; i < N_LAYER * N_KV; i++) {
            cr_assert_eq(f.kv.seg[i].len, LEN);
            cr_assert_eq(f.kv.seg[i].cap, LEN);
            cr_assert_eq(memcmp(f.kv.seg[i].k, f.orig.seg[i].k, (size_t)LEN * D), 0);
            cr_assert_eq(memcmp(f.kv.seg[i].v, f.orig.seg[i].v, (size_t)LEN * D), 0);
            cr_assert_eq(memcmp(f.kv.seg[i].k_scale, f.orig.seg[i].k_scale, LEN * sizeof(float)),
                         0);
        }
        fixture_free(&f);
    }
}

Test(press, snapkv_keeps_budget_rows_window_included) {
    struct fixture f;
    fixture_init(&f, 3, KV_TYPE_INT8);
    struct kv_press_config c;
    kv_press_config_default(&c);
    c.window = WIN;
    c.budget = 40;
    c.reserve = 16;
    run_press(&f, &c, NULL);
    check_rows_and_window(&f);
    for (int i = 0; i < N_LAYER * N_KV; i++) {
        const struct kv_segment *s = &f.kv.seg[i];
        cr_assert_eq(s->len, 40);
        cr_assert_eq(s->cap, 56);
        for (int t = 0; t < WIN; t++) /* the window, always kept, ends the segment */
            cr_assert_eq(s->pos[40 - WIN + t], LEN - WIN + t);
    }
    fixture_free(&f);
}

Test(press, ada_keeps_the_layer_total_and_alpha_one_is_snapkv) {
    struct fixture a, b, u;
    fixture_init(&a, 5, KV_TYPE_INT8);
    fixture_init(&b, 5, KV_TYPE_INT8);
    fixture_init(&u, 5, KV_TYPE_INT8);
    struct kv_press_config ca, c1, cu;
    kv_press_config_default(&ca);
    ca.window = WIN;
    ca.budget = 50;
    ca.alloc = KV_ALLOC_ADA;
    c1 = ca;
    c1.alpha = 1.0f;
    cu = ca;
    cu.alloc = KV_ALLOC_UNIFORM;
    run_press(&a, &ca, NULL);
    run_press(&b, &c1, NULL);
    run_press(&u, &cu, NULL);
    check_rows_and_window(&a);
    cr_assert(same_cache(&b.kv, &u.kv), "alpha = 1 differs from uniform SnapKV");
    int moved = 0;
    for (int l = 0; l < N_LAYER; l++) {
        int total = 0;
        for (int g = 0; g < N_KV; g++) {
            int len = kv_cache_seg(&a.kv, l, g)->len;
            cr_assert_geq(len, WIN + (int)floorf(0.2f * (50 - WIN)));
            total += len;
            moved += len != 50;
        }
        cr_assert_eq(total, N_KV * 50, "layer %d total %d", l, total);
    }
    cr_assert_gt(moved, 0, "Ada-KV gave every head the same budget on random heads");
    fixture_free(&a);
    fixture_free(&b);
    fixture_free(&u);
}

Test(press, critical_with_stage1_ratio_one_is_its_base_press) {
    for (int ada = 0; ada < 2; ada++) {
        struct fixture a, b;
        fixture_init(&a, 9, KV_TYPE_F16);
        fixture_init(&b, 9, KV_TYPE_F16);
        struct kv_press_config cc, cs;
        kv_press_config_default(&cc);
        cc.press = kv_press_find("critical", NULL);
        cc.alloc = ada ? KV_ALLOC_ADA : KV_ALLOC_UNIFORM;
        cc.window = WIN;
        cc.budget = 60;
        cc.critical_ratio = 1.0f;
        cs = cc;
        cs.press = kv_press_find("snapkv", NULL);
        run_press(&a, &cc, NULL);
        run_press(&b, &cs, NULL);
        cr_assert(same_cache(&a.kv, &b.kv), "ada %d: critical(ratio 1) != snapkv", ada);
        fixture_free(&a);
        fixture_free(&b);
    }
    /* and with the default ratio 0.5 the value norms do change the choice */
    struct fixture a, b;
    fixture_init(&a, 9, KV_TYPE_F16);
    fixture_init(&b, 9, KV_TYPE_F16);
    struct kv_press_config cc, cs;
    kv_press_config_default(&cc);
    cc.press = kv_press_find("critical", NULL);
    cc.window = WIN;
    cc.budget = 60;
    cs = cc;
    cs.press = kv_press_find("snapkv", NULL);
    run_press(&a, &cc, NULL);
    run_press(&b, &cs, NULL);
    check_rows_and_window(&a);
    cr_assert(!same_cache(&a.kv, &b.kv));
    fixture_free(&a);
    fixture_free(&b);
}

Test(press, pyramid_layers_sum_to_n_times_budget) {
    struct fixture f;
    fixture_init(&f, 13, KV_TYPE_INT8);
    struct kv_press_config c;
    kv_press_config_default(&c);
    c.press = kv_press_find("pyramid", NULL);
    c.alloc = KV_ALLOC_ADA;
    c.window = WIN;
    c.budget = 70;
    run_press(&f, &c, NULL);
    check_rows_and_window(&f);
    int total = 0, first = 0, last = 0;
    for (int l = 0; l < N_LAYER; l++)
        for (int g = 0; g < N_KV; g++) {
            int len = kv_cache_seg(&f.kv, l, g)->len;
            total += len;
            first += l == 0 ? len : 0;
            last += l == N_LAYER - 1 ? len : 0;
        }
    cr_assert_eq(total, N_LAYER * N_KV * 70);
    cr_assert_gt(first, last);
    fixture_free(&f);
}

Test(press, streaming_keeps_sinks_and_recent_rows) {
    struct fixture f;
    fixture_init(&f, 17, KV_TYPE_F32);
    struct kv_press_config c;
    kv_press_config_default(&c);
    c.press = kv_press_find("streaming", NULL);
    c.budget = 20;
    run_press(&f, &c, NULL);
    for (int i = 0; i < N_LAYER * N_KV; i++) {
        const struct kv_segment *s = &f.kv.seg[i];
        cr_assert_eq(s->len, 20);
        for (int j = 0; j < 4; j++)
            cr_assert_eq(s->pos[j], j);
        for (int j = 4; j < 20; j++)
            cr_assert_eq(s->pos[j], LEN - 20 + j);
    }
    check_rows_and_window(&f);
    fixture_free(&f);
}

Test(press, critical_without_w_o_is_an_error) {
    struct fixture f;
    fixture_init(&f, 19, KV_TYPE_INT8);
    struct kv_press_config c;
    kv_press_config_default(&c);
    c.press = kv_press_find("critical", NULL);
    c.window = WIN;
    c.budget = 40;
    struct kv_press_hook hk = {.cfg = &c, .n_layer = N_LAYER, .n_head = N_HEAD, .n_embd = N_EMBD};
    struct adakv_err e;
    cr_assert_eq(kv_press_compress_layer(&hk, &f.kv, 0, f.q, WIN, &e), -1);
    cr_assert(strstr(e.msg, "W_O"), "%s", e.msg);
    fixture_free(&f);
}

/* ---------------------------------------------------------------- L1 bounds */

Test(press, measured_output_change_never_exceeds_the_l1_bounds) {
    const int n = 200, dim = 24;
    float *a = malloc(n * sizeof *a), *u = malloc((size_t)n * dim * sizeof *u);
    uint8_t *kept = malloc(n);
    for (int trial = 0; trial < 500; trial++) {
        double sum = 0, sharp = 0.5 + (trial % 10);
        for (int j = 0; j < n; j++)
            sum += (a[j] = expf((float)(fx_unif() * sharp)));
        for (int j = 0; j < n; j++)
            a[j] /= (float)sum;
        for (int i = 0; i < n * dim; i++)
            u[i] = fx_unif() * (1.0f + (float)(i % 5));
        int p_keep = 1 + trial % 9;
        for (int j = 0; j < n; j++)
            kept[j] = fx_u32() % 10 < (unsigned)p_keep;
        struct kv_head_change hc;
        kv_report_head_change(a, kept, u, n, dim, &hc);
        cr_assert(hc.change <= hc.bound_ada * (1 + 1e-9) + 1e-9, "trial %d: %g > Ada bound %g",
                  trial, hc.change, hc.bound_ada);
        cr_assert(hc.change <= hc.bound_critical * (1 + 1e-9) + 1e-9,
                  "trial %d: %g > CriticalKV bound %g", trial, hc.change, hc.bound_critical);
        cr_assert(hc.mass_kept >= 0 && hc.mass_kept <= 1 + 1e-6);
    }
    free(a);
    free(u);
    free(kept);
}

Test(press, report_change_within_bound_on_random_heads) {
    const char *names[] = {"snapkv", "ada-snapkv", "critical", "streaming", "random"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        struct fixture f;
        fixture_init(&f, 23 + k, KV_TYPE_INT8);
        struct kv_press_config c;
        struct adakv_err e;
        kv_press_config_default(&c);
        kv_press_parse_name(names[k], &c, &e);
        c.window = WIN;
        c.budget = 60;
        struct kv_report r;
        cr_assert_eq(kv_report_init(&r, N_LAYER, &e), 0);
        run_press(&f, &c, &r);
        for (int l = 0; l < N_LAYER; l++) {
            const struct kv_report_layer *L = &r.layer[l];
            cr_assert(L->evicted);
            cr_assert(L->out_change > 0 && L->out_change <= L->l1_bound * (1 + 1e-6),
                      "%s layer %d: change %g, bound %g", names[k], l, L->out_change, L->l1_bound);
            cr_assert(L->mass_kept > 0 && L->mass_kept < 1);
            cr_assert_lt(L->bytes_after, L->bytes_before);
            /* and for every query head and window query on its own, both bounds */
            cr_assert_eq(L->n_checked, N_HEAD * WIN, "%s layer %d", names[k], l);
            cr_assert_eq(L->n_over_ada, 0, "%s layer %d: %d of %d over the Ada-KV bound", names[k],
                         l, L->n_over_ada, L->n_checked);
            cr_assert_eq(L->n_over_critical, 0, "%s layer %d: %d over the CriticalKV bound",
                         names[k], l, L->n_over_critical);
            cr_assert(L->worst_ratio > 0 && L->worst_ratio <= 1 + 1e-9, "%s layer %d: ratio %g",
                      names[k], l, L->worst_ratio);
            char line[256];
            kv_report_format(&r, l, line, sizeof line);
            cr_assert(strstr(line, "L1 bound"), "%s", line);
        }
        kv_report_free(&r);
        fixture_free(&f);
    }
}

/* KVzip's window is its whole reconstruction: a layer's report measures only the last
 * KV_REPORT_QUERIES window queries, so a long window gives exactly the report of those queries
 * alone (same rows seen, same keep lists). */
Test(press, report_measures_the_last_window_queries) {
    enum { LONG_WIN = KV_REPORT_QUERIES + 37, ROWS = 200, KEEP = 90 };
    const int len[N_KV] = {ROWS, ROWS, ROWS};
    struct kv_cache kv;
    fx_cache(&kv, KV_TYPE_INT8, 1, N_KV, D, len);
    float *q = malloc((size_t)LONG_WIN * N_HEAD * D * sizeof *q);
    float *w_o = malloc((size_t)N_EMBD * N_HEAD * D * sizeof *w_o);
    for (int i = 0; i < LONG_WIN * N_HEAD * D; i++)
        q[i] = 2.0f * fx_unif();
    for (int i = 0; i < N_EMBD * N_HEAD * D; i++)
        w_o[i] = fx_unif();
    int32_t keep[N_KV * KEEP], start[N_KV], n_keep[N_KV];
    for (int g = 0; g < N_KV; g++) {
        start[g] = g * KEEP, n_keep[g] = KEEP;
        for (int i = 0; i < KEEP; i++)
            keep[g * KEEP + i] = (i * 7 + g) % ROWS; /* distinct: 7 is prime to 200 */
    }
    struct kv_report a, b;
    struct adakv_err e;
    cr_assert_eq(kv_report_init(&a, 1, &e), 0);
    cr_assert_eq(kv_report_init(&b, 1, &e), 0);
    cr_assert_eq(kv_report_layer(&a, simd_ops_scalar(), &kv, 0, q, LONG_WIN, N_HEAD, N_EMBD, w_o,
                                 keep, start, n_keep, &e),
                 0, "%s", e.msg);
    const float *last = q + (size_t)(LONG_WIN - KV_REPORT_QUERIES) * N_HEAD * D;
    cr_assert_eq(kv_report_layer(&b, simd_ops_scalar(), &kv, 0, last, KV_REPORT_QUERIES, N_HEAD,
                                 N_EMBD, w_o, keep, start, n_keep, &e),
                 0, "%s", e.msg);
    const struct kv_report_layer *A = &a.layer[0], *B = &b.layer[0];
    cr_assert_eq(A->n_checked, N_HEAD * KV_REPORT_QUERIES);
    cr_assert_eq(A->n_checked, B->n_checked);
    cr_assert(A->mass_kept == B->mass_kept && A->out_change == B->out_change &&
                  A->l1_bound == B->l1_bound && A->worst_ratio == B->worst_ratio,
              "mass %g / %g, change %g / %g", A->mass_kept, B->mass_kept, A->out_change,
              B->out_change);
    cr_assert(A->mass_kept > 0 && A->mass_kept < 1);
    kv_report_free(&a);
    kv_report_free(&b);
    free(q), free(w_o);
    fx_cache_free(&kv);
}
