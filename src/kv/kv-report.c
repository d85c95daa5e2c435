/* --kv-report measurements (kv-report.h). Report mode recomputes attention and v W_O for the
 * whole layer, so it costs about as much as the CriticalKV value norm; it is off by default. */
#include "kv-report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv-score.h"
#include "press-ops.h"

/* kv_report_head_change with the row norms ||u_j||_1 given (they are the same for every query
 * of a head) and a dim-sized scratch; reads u row by row. */
static void head_change(const float *a, const uint8_t *kept, const float *u, const double *norm,
                        int n, int dim, double *diff, struct kv_head_change *out) {
    double s = 0.0, f = 0.0, c = 0.0, all = 0.0, kept_sum = 0.0;
    for (int j = 0; j < n; j++) {
        c = norm[j] > c ? norm[j] : c;
        s += a[j];
        all += a[j] * norm[j];
        if (kept[j]) {
            f += a[j];
            kept_sum += a[j] * norm[j];
        }
    }
    /* y - y_hat = sum_j w_j u_j with w_j = a_j - a_j / F for kept rows, a_j for evicted ones */
    for (int i = 0; i < dim; i++)
        diff[i] = 0.0;
    for (int j = 0; j < n; j++) {
        const double w = kept[j] && f > 0.0 ? a[j] - a[j] / f : a[j];
        if (w == 0.0)
            continue;
        const float *uj = u + (size_t)j * dim;
        for (int i = 0; i < dim; i++)
            diff[i] += w * uj[i];
    }
    double change = 0.0;
    for (int i = 0; i < dim; i++)
        change += fabs(diff[i]);
    out->mass_kept = f;
    out->change = change;
    if (f <= 0.0) {
        out->bound_ada = 2.0 * c;
        out->bound_critical = all;
        return;
    }
    /* ||A - A_hat||_1 = (S - F) + |1 - F| for the vector as given (S = sum a_j): the paper's
     * 2 (1 - F) when S = 1, and still a bound when an f32 softmax sums to 1 +- a few ulps. */
    out->bound_ada = c * ((s - f) + fabs(1.0 - f));
    out->bound_critical = (all - kept_sum) + fabs(1.0 / f - 1.0) * kept_sum;
}

void kv_report_head_change(const float *a, const uint8_t *kept, const float *u, int n, int dim,
                           struct kv_head_change *out) {
    double *norm = malloc((size_t)(n > 0 ? n : 1) * sizeof *norm);
    double *diff = malloc((size_t)(dim > 0 ? dim : 1) * sizeof *diff);
    if (!norm || !diff) { /* a report helper: no error channel, report nothing measured */
        free(norm);
        free(diff);
        *out = (struct kv_head_change){NAN, NAN, NAN, NAN};
        return;
    }
    for (int j = 0; j < n; j++) {
        norm[j] = 0.0;
        for (int i = 0; i < dim; i++)
            norm[j] += fabs((double)u[(size_t)j * dim + i]);
    }
    head_change(a, kept, u, norm, n, dim, diff, out);
    free(norm);
    free(diff);
}

int kv_report_init(struct kv_report *r, int n_layer, struct adakv_err *e) {
    r->n_layer = n_layer;
    r->layer = calloc((size_t)(n_layer > 0 ? n_layer : 1), sizeof *r->layer);
    return r->layer ? 0 : err_set(e, "kv-report: out of memory for %d layers", n_layer);
}

void kv_report_free(struct kv_report *r) {
    free(r->layer);
    r->layer = NULL;
}

size_t kv_report_layer_bytes(const struct kv_cache *kv, int layer) {
    size_t elem = kv->type == KV_TYPE_INT8 ? 1 : kv->type == KV_TYPE_F16 ? 2 : 4;
    size_t per_row = 2 * elem * (size_t)kv->head_dim + sizeof(int32_t) +
                     (kv->type == KV_TYPE_INT8 ? 2 * sizeof(float) : 0);
    size_t bytes = 0;
    for (int g = 0; g < kv->n_head_kv; g++)
        bytes += (size_t)kv_cache_seg(kv, layer, g)->cap * per_row;
    return bytes;
}

void kv_report_nothing_evicted(struct kv_report *r, const struct kv_cache *kv, int layer) {
    if (layer < 0 || layer >= r->n_layer)
        return;
    struct kv_report_layer *L = &r->layer[layer];
    int lo = 1 << 30, hi = 0;
    for (int g = 0; g < kv->n_head_kv; g++) {
        int len = kv_cache_seg(kv, layer, g)->len;
        lo = len < lo ? len : lo;
        hi = len > hi ? len : hi;
    }
    *L = (struct kv_report_layer){.evicted = 0,
                                  .sliding_window = 0,
                                  .worst_ratio = 0.0,
                                  .b_min = lo,
                                  .b_med = lo,
                                  .b_max = hi,
                                  .mass_kept = 1.0,
                                  .l1_bound = 0.0,
                                  .out_change = 0.0};
    L->bytes_before = L->bytes_after = kv_report_layer_bytes(kv, layer);
}

void kv_report_layer_after(struct kv_report *r, const struct kv_cache *kv, int layer) {
    if (layer >= 0 && layer < r->n_layer)
        r->layer[layer].bytes_after = kv_report_layer_bytes(kv, layer);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Projected values u_j = v_j W_O^h of every row of a segment: [len][n_embd], through the
 * blocked GEMM of the press kernels (the value rows play the queries, W_O^h's rows the keys). */
static void project_values(const struct press_ops *po, const struct kv_cache *kv,
                           const struct kv_segment *seg, const float *w_o, int h, int n_head,
                           int n_embd, float *w_h, float *v, float *u) {
    const int d = kv->head_dim;
    for (int r = 0; r < n_embd; r++)
        memcpy(w_h + (size_t)r * d, w_o + (size_t)r * n_head * d + (size_t)h * d,
               (size_t)d * sizeof *w_h);
    for (int j = 0; j < seg->len; j++)
        kv_row_to_f32(kv->type, seg->v, seg->v_scale, j, d, v + (size_t)j * d);
    po->qk_f32(u, (size_t)n_embd, v, (size_t)d, seg->len, w_h, n_embd, d, 1.0f);
}

/* The check the report makes of every (query head, window query): measured change within the
 * bound, up to double rounding of the two sums. */
static int within(double change, double bound) {
    return change <= bound * (1.0 + 1e-9) + 1e-12;
}

int kv_report_layer(struct kv_report *r, const struct simd_ops *ops, const struct kv_cache *kv,
                    int layer, const float *q_window, int n_window, int n_head, int n_embd,
                    const float *w_o, const int32_t *keep, const int32_t *start,
                    const int32_t *n_keep, struct adakv_err *e) {
    if (layer < 0 || layer >= r->n_layer)
        return err_set(e, "kv-report: layer %d outside the report's %d layers", layer, r->n_layer);
    const struct press_ops *po = press_ops_by_name(ops->isa);
    po = po ? po : press_ops_scalar();
    struct kv_report_layer *L = &r->layer[layer];
    const int n_kv = kv->n_head_kv, d = kv->head_dim, group = n_head / n_kv;
    int32_t *sorted = malloc((size_t)n_kv * sizeof *sorted);
    int max_len = 0;
    for (int g = 0; g < n_kv; g++)
        max_len =
            kv_cache_seg(kv, layer, g)->len > max_len ? kv_cache_seg(kv, layer, g)->len : max_len;
    const size_t ml = (size_t)(max_len ? max_len : 1);
    const int dim = w_o ? n_embd : 1;
    float *a = malloc(ml * sizeof *a);
    uint8_t *mask = malloc(ml);
    float *u = malloc(ml * dim * sizeof *u);
    float *v = malloc(ml * d * sizeof *v);
    float *w_h = malloc((size_t)dim * d * sizeof *w_h);
    double *norm = malloc(ml * sizeof *norm);
    double *diff = malloc((size_t)dim * sizeof *diff);
    /* the last KV_REPORT_QUERIES window queries are measured: KVzip's window is its whole
     * reconstruction, and each query costs its rows x n_embd (every query of an 8k-token
     * reconstruction took a server's context minutes); 32, the default observation window */
    const int t_first = n_window > KV_REPORT_QUERIES ? n_window - KV_REPORT_QUERIES : 0;
    const int n_meas = n_window - t_first;
    double *change = calloc((size_t)(n_window ? n_window : 1), sizeof *change);
    double *bound = calloc((size_t)(n_window ? n_window : 1), sizeof *bound);
    int rc = 0;
    if (!sorted || !a || !mask || !u || !v || !w_h || !norm || !diff || !change || !bound) {
        rc = err_set(e, "kv-report: out of memory for layer %d", layer);
        goto done;
    }
    for (int g = 0; g < n_kv; g++)
        sorted[g] = n_keep[g];
    qsort(sorted, (size_t)n_kv, sizeof *sorted, cmp_int);
    L->evicted = 1;
    L->b_min = sorted[0];
    L->b_med = sorted[n_kv / 2];
    L->b_max = sorted[n_kv - 1];
    L->bytes_before = kv_report_layer_bytes(kv, layer);
    L->n_checked = L->n_over_ada = L->n_over_critical = 0;
    L->worst_ratio = 0.0;
    double mass = 0.0;
    for (int g = 0; g < n_kv; g++) {
        const struct kv_segment *seg = kv_cache_seg(kv, layer, g);
        const int len = seg->len, n_prefix = len - n_window;
        memset(mask, 0, (size_t)len);
        for (int i = 0; i < n_keep[g]; i++)
            mask[keep[start[g] + i]] = 1;
        for (int h = g * group; h < (g + 1) * group; h++) {
            if (w_o)
                project_values(po, kv, seg, w_o, h, n_head, n_embd, w_h, v, u);
            else
                memset(u, 0, (size_t)len * sizeof *u);
            for (int j = 0; j < len; j++) {
                norm[j] = 0.0;
                for (int i = 0; i < dim; i++)
                    norm[j] += fabs((double)u[(size_t)j * dim + i]);
            }
            for (int t = t_first; t < n_window; t++) {
                const int seen = n_prefix + t + 1; /* causal: rows this query attends to */
                const float *q = q_window + ((size_t)t * n_head + h) * d;
                if (kv->type == KV_TYPE_INT8)
                    ops->attn_qk_i8(a, ml, q, 0, 1, seg->k, seg->k_scale, seen, d,
                                    1.0f / sqrtf((float)d));
                else if (kv->type == KV_TYPE_F16)
                    ops->attn_qk_f16(a, ml, q, 0, 1, seg->k, seen, d, 1.0f / sqrtf((float)d));
                else
                    ops->attn_qk_f32(a, ml, q, 0, 1, seg->k, seen, d, 1.0f / sqrtf((float)d));
                ops->softmax(a, seen);
                struct kv_head_change hc;
                head_change(a, mask, u, norm, seen, dim, diff, &hc);
                mass += hc.mass_kept;
                change[t] += hc.change;
                bound[t] += hc.bound_ada;
                if (!w_o)
                    continue;
                L->n_checked++;
                L->n_over_ada += !within(hc.change, hc.bound_ada);
                L->n_over_critical += !within(hc.change, hc.bound_critical);
                if (hc.bound_ada > 0.0 && hc.change / hc.bound_ada > L->worst_ratio)
                    L->worst_ratio = hc.change / hc.bound_ada;
            }
        }
    }
    L->mass_kept = mass / ((double)n_head * (n_meas ? n_meas : 1));
    L->out_change = 0.0;
    L->l1_bound = 0.0;
    for (int t = t_first; t < n_window; t++) {
        L->out_change += change[t] / n_meas;
        L->l1_bound += bound[t] / n_meas;
    }
    if (!w_o)
        L->out_change = L->l1_bound = L->worst_ratio = NAN;
done:
    free(sorted);
    free(a);
    free(mask);
    free(u);
    free(v);
    free(w_h);
    free(norm);
    free(diff);
    free(change);
    free(bound);
    return rc;
}

int kv_report_format(const struct kv_report *r, int layer, char *buf, size_t size) {
    const struct kv_report_layer *L = &r->layer[layer];
    if (L->sliding_window)
        return snprintf(buf, size,
                        "layer %3d: sliding window of %d positions, %d rows/head held, KV bytes "
                        "%zu (not pressed: the window bounds it)",
                        layer, L->sliding_window, L->b_max, L->bytes_after);
    return snprintf(buf, size,
                    "layer %3d: kept/head min %d median %d max %d, attention mass kept %.4f, "
                    "L1 bound %.4g, output change %.4g, KV bytes %zu -> %zu%s",
                    layer, L->b_min, L->b_med, L->b_max, L->mass_kept, L->l1_bound, L->out_change,
                    L->bytes_before, L->bytes_after, L->evicted ? "" : " (nothing evicted)");
}
