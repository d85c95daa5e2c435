/* --kv-report: what a press did to each layer, and the eviction-loss bound it has to respect
 * (algorithms.md 2.5 for Ada-KV, 4.1 for CriticalKV). */
#ifndef ADAKV_KV_REPORT_H
#define ADAKV_KV_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "kv-cache.h"
#include "ops.h"

/* One query, one head: attention a[0..n) (a probability vector), keep mask, projected values
 * u_j = v_j W_O^h ([n][dim]). After eviction the kept weights are renormalised by F. */
struct kv_head_change {
    double mass_kept;      /* F = sum of kept a_j */
    double change;         /* measured ||y - y_hat||_1 */
    double bound_ada;      /* 2 C (1 - F), C = max_j ||u_j||_1   (2.5) */
    double bound_critical; /* sum a_j|u_j| - (2 - 1/F) sum kept a_j|u_j|   (4.1) */
};
/* F == 0 (nothing kept that had weight) leaves y_hat = 0: change = ||y||_1, bounds 2C and
 * sum a_j |u_j| stated for that case. */
void kv_report_head_change(const float *a, const uint8_t *kept, const float *u, int n, int dim,
                           struct kv_head_change *out);

/* Window queries a layer's report measures: the last ones (the means below are over them). */
#define KV_REPORT_QUERIES 32

struct kv_report_layer {
    int evicted;             /* 0: the budget covered the layer, nothing evicted */
    int sliding_window;      /* > 0: a sliding-window layer, never pressed (b_max: its rows) */
    int b_min, b_med, b_max; /* rows kept per KV head (window included) */
    double mass_kept;        /* attention mass kept, mean over window queries and query heads */
    double l1_bound;         /* Ada-KV bound summed over heads, mean over window queries */
    double out_change; /* measured ||y - y_hat||_1 summed over heads, same mean; NAN w/o W_O */
    size_t bytes_before, bytes_after; /* bytes allocated for the layer's K/V segments */
    /* Per (query head, window query) checks, with W_O only (n_checked = 0 without it): how many
     * were measured, how many exceeded the Ada-KV bound (2.5) and the CriticalKV bound (4.1)
     * beyond double rounding (both must stay 0), and the largest change / Ada bound. */
    int n_checked, n_over_ada, n_over_critical;
    double worst_ratio;
};

struct kv_report {
    int n_layer;
    struct kv_report_layer *layer; /* [n_layer] */
};

int kv_report_init(struct kv_report *r, int n_layer, struct adakv_err *e);
void kv_report_free(struct kv_report *r);

/* Called by the press hook. kv_report_layer runs before compaction: keep lists as in
 * kv-press.c (head g keeps keep[start[g] .. start[g] + n_keep[g]), ascending). Without W_O the
 * output change and bound are NAN and only the mass is measured. */
int kv_report_layer(struct kv_report *r, const struct simd_ops *ops, const struct kv_cache *kv,
                    int layer, const float *q_window, int n_window, int n_head, int n_embd,
                    const float *w_o, const int32_t *keep, const int32_t *start,
                    const int32_t *n_keep, struct adakv_err *e);
void kv_report_layer_after(struct kv_report *r, const struct kv_cache *kv, int layer);
void kv_report_nothing_evicted(struct kv_report *r, const struct kv_cache *kv, int layer);

/* Bytes allocated for one layer's segments (capacity, K and V, scales, positions). */
size_t kv_report_layer_bytes(const struct kv_cache *kv, int layer);

/* One line for layer l, e.g. "layer  3: kept 64/96/130 mass 0.912 bound 1.234 change 0.101
 * bytes 540672 -> 49152". Returns the snprintf count. */
int kv_report_format(const struct kv_report *r, int layer, char *buf, size_t size);

#endif
