/* Budget allocation: Ada-KV totals and floors, alpha = 1 is uniform, alpha = 0 is the plain
 * global top-k (checked against a sort), the kvpress variant, Pyramid sums to N x b'. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "kv-budget.h"
#include "kv-fixture.h"

/* Random flattened scores with ties (few distinct values) and ragged head lengths. */
static int make_layer(int n_kv, int32_t *off, float **scores, int ragged) {
    off[0] = 0;
    for (int g = 0; g < n_kv; g++)
        off[g + 1] = off[g] + (ragged ? 1 + (int)(fx_u32() % 400) : 300);
    *scores = malloc((size_t)off[n_kv] * sizeof **scores);
    for (int i = 0; i < off[n_kv]; i++)
        (*scores)[i] = (float)(fx_u32() % 50) / 50.0f * (1.0f + (float)(i % 7)); /* heads differ */
    return off[n_kv];
}

static int uniform_total(int n_kv, const int32_t *off, int b_sel) {
    int t = 0;
    for (int g = 0; g < n_kv; g++)
        t += b_sel < off[g + 1] - off[g] ? b_sel : off[g + 1] - off[g];
    return t;
}

Test(budget, ada_sums_to_layer_total_and_respects_floor) {
    const float alphas[] = {0.0f, 0.05f, 0.2f, 0.5f, 0.9f, 1.0f};
    for (int trial = 0; trial < 60; trial++) {
        int n_kv = 1 + trial % 8;
        int32_t off[9], budget[8];
        float *s;
        make_layer(n_kv, off, &s, trial % 2);
        int b_sel = 1 + (int)(fx_u32() % 350);
        for (size_t a = 0; a < sizeof alphas / sizeof alphas[0]; a++) {
            struct adakv_err e;
            for (int variant = 0; variant < 2; variant++) {
                int rc = variant ? kv_budget_ada_kvpress(s, n_kv, off, b_sel, alphas[a], budget, &e)
                                 : kv_budget_ada(s, n_kv, off, b_sel, alphas[a], budget, &e);
                cr_assert_eq(rc, 0);
                int sum = 0, floor_rows = (int)floorf(alphas[a] * b_sel);
                for (int g = 0; g < n_kv; g++) {
                    int n = off[g + 1] - off[g], fl = floor_rows < n ? floor_rows : n;
                    cr_assert(budget[g] >= fl && budget[g] <= n,
                              "variant %d alpha %g head %d: budget %d, floor %d, rows %d", variant,
                              alphas[a], g, budget[g], fl, n);
                    sum += budget[g];
                }
                cr_assert_eq(sum, uniform_total(n_kv, off, b_sel), "variant %d alpha %g", variant,
                             alphas[a]);
            }
        }
        free(s);
    }
}

Test(budget, alpha_one_is_exactly_uniform) {
    for (int trial = 0; trial < 30; trial++) {
        int n_kv = 1 + trial % 8;
        int32_t off[9], ada[8], uni[8];
        float *s;
        make_layer(n_kv, off, &s, 0);
        int b_sel = 1 + (int)(fx_u32() % 299);
        struct adakv_err e;
        cr_assert_eq(kv_budget_ada(s, n_kv, off, b_sel, 1.0f, ada, &e), 0);
        kv_budget_uniform(n_kv, off, b_sel, uni);
        for (int g = 0; g < n_kv; g++)
            cr_assert_eq(ada[g], uni[g]);
        free(s);
    }
}

static const float *ref_x;
static int by_score_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (ref_x[i] != ref_x[j])
        return ref_x[i] > ref_x[j] ? -1 : 1;
    return i - j;
}

Test(budget, alpha_zero_counts_the_global_top_k) {
    for (int trial = 0; trial < 30; trial++) {
        int n_kv = 2 + trial % 7;
        int32_t off[9], budget[8], want[8] = {0};
        float *s;
        int n = make_layer(n_kv, off, &s, 0);
        int b_sel = 1 + (int)(fx_u32() % 299);
        int *order = malloc((size_t)n * sizeof *order);
        for (int i = 0; i < n; i++)
            order[i] = i;
        ref_x = s;
        qsort(order, (size_t)n, sizeof *order, by_score_desc);
        for (int i = 0; i < n_kv * b_sel; i++)
            for (int g = 0; g < n_kv; g++)
                want[g] += order[i] >= off[g] && order[i] < off[g + 1];
        struct adakv_err e;
        cr_assert_eq(kv_budget_ada(s, n_kv, off, b_sel, 0.0f, budget, &e), 0);
        for (int g = 0; g < n_kv; g++)
            cr_assert_eq(budget[g], want[g], "head %d: %d, sort says %d", g, budget[g], want[g]);
        free(order);
        free(s);
    }
}

Test(budget, ada_moves_rows_to_the_dispersed_head) {
    /* Head 0: attention on 5 rows; head 1: flat. Ada-KV must give head 1 the larger share. */
    int32_t off[3] = {0, 100, 200}, budget[2];
    float s[200];
    for (int j = 0; j < 100; j++) {
        s[j] = j < 5 ? 0.19f : 0.0005f;
        s[100 + j] = 0.01f;
    }
    struct adakv_err e;
    cr_assert_eq(kv_budget_ada(s, 2, off, 20, 0.2f, budget, &e), 0);
    cr_assert_eq(budget[0] + budget[1], 40);
    cr_assert(budget[0] >= 4 && budget[1] > 20, "budgets %d %d", budget[0], budget[1]);
}

Test(budget, pick_is_the_per_head_top_k_in_order) {
    float s[] = {0.1f, 0.9f, 0.5f, 0.9f, 0.2f, 0.5f};
    int32_t idx[6];
    uint32_t scratch[6];
    kv_budget_pick(s, 6, 3, scratch, idx);
    cr_assert(idx[0] == 1 && idx[1] == 2 && idx[2] == 3, "%d %d %d", idx[0], idx[1], idx[2]);
}

Test(budget, pyramid_layer_budgets_sum_to_n_times_b) {
    const float betas[] = {1.0f, 2.0f, 7.5f, 20.0f, 100.0f};
    for (int n_layer = 1; n_layer <= 40; n_layer += 3)
        for (int trial = 0; trial < 30; trial++) {
            int n_avail = 1 + (int)(fx_u32() % 3000), b_sel = 1 + (int)(fx_u32() % 1500);
            float beta = betas[trial % 5];
            int32_t lb[40];
            kv_budget_pyramid(n_layer, b_sel, n_avail, beta, lb);
            long long sum = 0;
            int want_each = b_sel < n_avail ? b_sel : n_avail;
            for (int l = 0; l < n_layer; l++) {
                cr_assert(lb[l] >= 0 && lb[l] <= n_avail, "layer %d: %d of %d", l, lb[l], n_avail);
                if (l > 0)
                    cr_assert(lb[l] <= lb[l - 1] + 1, "not decreasing at layer %d", l);
                sum += lb[l];
            }
            cr_assert_eq(sum, (long long)n_layer * want_each,
                         "N %d b' %d avail %d beta %g: sum %lld", n_layer, b_sel, n_avail, beta,
                         sum);
        }
}

Test(budget, pyramid_known_schedule) {
    /* N = 32, b' = 96, beta = 20 (algorithms.md 3): m_max = 187.2, m_min = 4.8. */
    int32_t lb[32];
    kv_budget_pyramid(32, 96, 100000, 20.0f, lb);
    cr_assert_eq(lb[0], 187);
    cr_assert(lb[31] == 4 || lb[31] == 5, "last layer %d", lb[31]);
}

/* The split over heads of different mean budgets (--budget global's, over every (layer, head)):
 * with one mean for all it is the per-layer split exactly, both Ada-KV forms. */
Test(budget, each_with_one_mean_is_the_layer_split) {
    for (int trial = 0; trial < 40; trial++) {
        int n_kv = 1 + trial % 8;
        int32_t off[9], want[8], got[8], b_each[8];
        float *s;
        make_layer(n_kv, off, &s, trial % 2);
        int b_sel = 1 + (int)(fx_u32() % 350);
        float alpha = (float)(trial % 5) / 4.0f;
        for (int g = 0; g < n_kv; g++)
            b_each[g] = b_sel;
        struct adakv_err e;
        cr_assert_eq(kv_budget_ada(s, n_kv, off, b_sel, alpha, want, &e), 0);
        cr_assert_eq(kv_budget_ada_each(s, n_kv, off, b_each, alpha, got, &e), 0);
        cr_assert_eq(memcmp(want, got, (size_t)n_kv * sizeof *got), 0, "trial %d", trial);
        cr_assert_eq(kv_budget_ada_kvpress(s, n_kv, off, b_sel, alpha, want, &e), 0);
        cr_assert_eq(kv_budget_ada_kvpress_each(s, n_kv, off, b_each, alpha, got, &e), 0);
        cr_assert_eq(memcmp(want, got, (size_t)n_kv * sizeof *got), 0, "trial %d kvpress", trial);
        free(s);
    }
}

/* Heads of two means (two layers' budgets): the total is sum_g min(b_g, n_g) and head g keeps
 * at least floor(alpha b_g), whichever head's scores win. */
Test(budget, each_sums_to_the_total_and_keeps_each_floor) {
    int32_t off[5] = {0, 100, 200, 260, 320}, b_each[4] = {30, 30, 10, 10}, budget[4];
    float s[320];
    for (int i = 0; i < 320; i++) /* the last two heads win every comparison */
        s[i] = i < 200 ? 0.01f * (float)(fx_u32() % 100) : 2.0f + (float)(fx_u32() % 100);
    for (int variant = 0; variant < 2; variant++) {
        struct adakv_err e;
        int rc = variant ? kv_budget_ada_kvpress_each(s, 4, off, b_each, 0.5f, budget, &e)
                         : kv_budget_ada_each(s, 4, off, b_each, 0.5f, budget, &e);
        cr_assert_eq(rc, 0);
        cr_assert_eq(budget[0] + budget[1] + budget[2] + budget[3], 80, "variant %d", variant);
        cr_assert(budget[0] >= 15 && budget[1] >= 15, "variant %d: %d %d", variant, budget[0],
                  budget[1]);
        cr_assert(budget[2] > 10 && budget[3] > 10, "variant %d: the winning heads got %d %d",
                  variant, budget[2], budget[3]);
    }
}
