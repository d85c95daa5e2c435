/* Budget allocation of kv-budget.h. */
#include "kv-budget.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "topk.h"

void kv_budget_uniform(int n_head_kv, const int32_t *off, int b_sel, int32_t *budget) {
    for (int g = 0; g < n_head_kv; g++) {
        int n = off[g + 1] - off[g];
        budget[g] = b_sel < n ? b_sel : n;
    }
}

void kv_budget_pick(const float *scores, int n, int keep, uint32_t *scratch, int32_t *idx) {
    topk_select(scores, (size_t)n, (size_t)keep, scratch, idx);
}

/* Winners per head of the global top-`total` over all flattened scores. */
static int count_global_winners(const float *scores, int n_head_kv, const int32_t *off, int total,
                                int32_t *count, struct adakv_err *e) {
    size_t n = (size_t)off[n_head_kv];
    uint32_t *scratch = malloc((n ? n : 1) * sizeof *scratch);
    int32_t *idx = malloc((total ? (size_t)total : 1) * sizeof *idx);
    if (!scratch || !idx) {
        free(scratch);
        free(idx);
        return err_set(e, "kv-budget: out of memory for the top-%d of %zu scores", total, n);
    }
    topk_select(scores, n, (size_t)total, scratch, idx);
    memset(count, 0, (size_t)n_head_kv * sizeof *count);
    int g = 0;
    for (int i = 0; i < total; i++) { /* idx ascending, so heads come in order */
        while (idx[i] >= off[g + 1])
            g++;
        count[g]++;
    }
    free(scratch);
    free(idx);
    return 0;
}

/* Head g's mean selectable budget: its own (b_each, kv_budget_ada_each) or the layer's b_sel. */
static int mean_budget(int b_sel, const int32_t *b_each, int g) {
    return b_each ? b_each[g] : b_sel;
}

/* The uniform total sum_g min(b_sel, n_g): Ada-KV only moves rows between heads, so alpha = 1
 * (and every other alpha) keeps the same number of rows per layer as uniform SnapKV. */
static int layer_total(int n_head_kv, const int32_t *off, int b_sel, const int32_t *b_each) {
    int total = 0;
    for (int g = 0; g < n_head_kv; g++) {
        int n = off[g + 1] - off[g], b = mean_budget(b_sel, b_each, g);
        total += b < n ? b : n;
    }
    return total;
}

/* Ada-KV's uniform floor for a head of mean budget b: floor(alpha b), in float as the flag reads.
 */
static double floor_rows(float alpha, int b) {
    return floorf(alpha * (float)b);
}

/* Rows head g may keep at most: its candidates, and the cap. */
static int head_limit(const int32_t *off, int g, int cap) {
    int n = off[g + 1] - off[g];
    return n < cap ? n : cap;
}

/* kv_budget_ada with every head also capped at `cap` (>= b_sel); INT_MAX = no cap. b_each: the
 * heads' own mean budgets (kv_budget_ada_each), or NULL for b_sel each. */
static int ada_budget(const float *scores, int n_head_kv, const int32_t *off, int b_sel,
                      const int32_t *b_each, int cap, float alpha, int32_t *budget,
                      struct adakv_err *e) {
    const int total = layer_total(n_head_kv, off, b_sel, b_each);
    int32_t *count = malloc((size_t)n_head_kv * sizeof *count);
    double *frac = malloc((size_t)n_head_kv * sizeof *frac);
    if (!count || !frac) {
        free(count);
        free(frac);
        return err_set(e, "kv-budget: out of memory for %d heads", n_head_kv);
    }
    if (count_global_winners(scores, n_head_kv, off, total, count, e) < 0) {
        free(count);
        free(frac);
        return -1;
    }
    int given = 0;
    for (int g = 0; g < n_head_kv; g++) {
        double want = (1.0 - alpha) * count[g] + floor_rows(alpha, mean_budget(b_sel, b_each, g));
        int n = head_limit(off, g, cap);
        budget[g] = (int32_t)floor(want);
        frac[g] = want - budget[g];
        if (budget[g] >= n) {
            budget[g] = n;
            frac[g] = -1.0; /* full: takes nothing more */
        }
        given += budget[g];
    }
    /* Ragged heads (a second prefill on a compressed cache) can make the floors overshoot the
     * uniform total; take the excess from the heads furthest above their floor. */
    while (given > total) {
        int worst = -1, worst_extra = 0;
        for (int g = 0; g < n_head_kv; g++) {
            const double f = floor_rows(alpha, mean_budget(b_sel, b_each, g));
            int n = head_limit(off, g, cap), fl = f < n ? (int)f : n;
            if (budget[g] - fl > worst_extra || (worst >= 0 && budget[g] - fl == worst_extra)) {
                worst = g;
                worst_extra = budget[g] - fl;
            }
        }
        budget[worst]--;
        given--;
    }
    /* Hand out the residual one row per pass in (fraction, winners, lower head) order. The sum of
     * the limits min(n_g, cap) is >= total (cap >= b_sel), so a head with room always exists
     * while given < total. */
    while (given < total) {
        int best = -1;
        for (int g = 0; g < n_head_kv; g++) {
            if (budget[g] >= head_limit(off, g, cap))
                continue;
            if (best < 0 || frac[g] > frac[best] ||
                (frac[g] == frac[best] && count[g] > count[best]))
                best = g;
        }
        budget[best]++;
        frac[best] = -0.5; /* after every head with a fraction had its turn */
        given++;
        int reset = 1; /* once all fractions are spent, start a new round */
        for (int g = 0; g < n_head_kv; g++)
            reset &= frac[g] < 0.0;
        if (reset)
            for (int g = 0; g < n_head_kv; g++)
                frac[g] = budget[g] >= head_limit(off, g, cap) ? -1.0 : 0.0;
    }
    free(count);
    free(frac);
    return 0;
}

int kv_budget_ada(const float *scores, int n_head_kv, const int32_t *off, int b_sel, float alpha,
                  int32_t *budget, struct adakv_err *e) {
    return ada_budget(scores, n_head_kv, off, b_sel, NULL, INT_MAX, alpha, budget, e);
}

int kv_budget_ada_each(const float *scores, int n_head, const int32_t *off, const int32_t *b_sel,
                       float alpha, int32_t *budget, struct adakv_err *e) {
    return ada_budget(scores, n_head, off, 0, b_sel, INT_MAX, alpha, budget, e);
}

int kv_budget_ada_capped(const float *scores, int n_head_kv, const int32_t *off, int b_sel, int cap,
                         float alpha, int32_t *budget, struct adakv_err *e) {
    if (cap < b_sel)
        return err_set(e, "kv-budget: head cap %d is below the mean budget %d", cap, b_sel);
    return ada_budget(scores, n_head_kv, off, b_sel, NULL, cap, alpha, budget, e);
}

/* kv_budget_ada_kvpress with the heads' own mean budgets b_each, or b_sel each (NULL). */
static int ada_kvpress_budget(const float *scores, int n_head_kv, const int32_t *off, int b_sel,
                              const int32_t *b_each, float alpha, int32_t *budget,
                              struct adakv_err *e) {
    const int total = layer_total(n_head_kv, off, b_sel, b_each);
    size_t n = (size_t)off[n_head_kv];
    float *forced = malloc((n ? n : 1) * sizeof *forced);
    uint32_t *scratch = malloc((n ? n : 1) * sizeof *scratch);
    int32_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!forced || !scratch || !idx) {
        free(forced);
        free(scratch);
        free(idx);
        return err_set(e, "kv-budget: out of memory for %zu scores", n);
    }
    memcpy(forced, scores, n * sizeof *forced);
    for (int g = 0; g < n_head_kv; g++) {
        const int n_safe = (int)floor_rows(alpha, mean_budget(b_sel, b_each, g));
        int n_g = off[g + 1] - off[g], safe = n_safe < n_g ? n_safe : n_g;
        topk_select(scores + off[g], (size_t)n_g, (size_t)safe, scratch, idx);
        for (int i = 0; i < safe; i++)
            forced[off[g] + idx[i]] = INFINITY;
    }
    /* At most sum_g n_safe_g <= total entries are +inf, so all of them win. */
    int rc = count_global_winners(forced, n_head_kv, off, total, budget, e);
    free(forced);
    free(scratch);
    free(idx);
    return rc;
}

int kv_budget_ada_kvpress(const float *scores, int n_head_kv, const int32_t *off, int b_sel,
                          float alpha, int32_t *budget, struct adakv_err *e) {
    return ada_kvpress_budget(scores, n_head_kv, off, b_sel, NULL, alpha, budget, e);
}

int kv_budget_ada_kvpress_each(const float *scores, int n_head, const int32_t *off,
                               const int32_t *b_sel, float alpha, int32_t *budget,
                               struct adakv_err *e) {
    return ada_kvpress_budget(scores, n_head, off, 0, b_sel, alpha, budget, e);
}

void kv_budget_pyramid(int n_layer, int b_sel, int n_avail, float beta, int32_t *layer_b) {
    if (b_sel >= n_avail || n_layer == 1) {
        for (int l = 0; l < n_layer; l++)
            layer_b[l] = b_sel < n_avail ? b_sel : n_avail;
        return;
    }
    double m_min = (double)b_sel / beta, m_max = 2.0 * b_sel - m_min;
    if (m_max >= n_avail) {
        m_max = n_avail;
        m_min = 2.0 * b_sel - m_max;
    }
    const double step = (m_max - m_min) / (n_layer - 1);
    long long given = 0;
    for (int l = 0; l < n_layer; l++) {
        layer_b[l] = (int32_t)floor(m_max - l * step);
        given += layer_b[l];
    }
    /* The real budgets sum to n_layer * b_sel; the floors miss fewer than n_layer rows. Give them
     * to the largest fractional parts (ties: the lower layer, which is the larger budget). */
    long long missing = (long long)n_layer * b_sel - given;
    for (; missing > 0; missing--) {
        int best = -1;
        double best_frac = -1.0;
        for (int l = 0; l < n_layer; l++) {
            double frac = (m_max - l * step) - layer_b[l];
            if (layer_b[l] < n_avail && frac > best_frac) {
                best = l;
                best_frac = frac;
            }
        }
        if (best < 0)
            break;
        layer_b[best]++;
    }
}
