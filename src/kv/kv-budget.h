/* Budget allocation: how many prefix rows each KV head of a layer keeps (second step of a press:
 * scores -> budgets -> compaction), and which ones.
 *
 * Budgets here count selectable prefix rows only (b' = b - window in algorithms.md): the window
 * is outside the competition and always kept. Scores use the flattened layout of kv-score.h:
 * head g owns scores[off[g] .. off[g+1]), n_g = off[g+1] - off[g] candidates. */
#ifndef ADAKV_KV_BUDGET_H
#define ADAKV_KV_BUDGET_H

#include <stdint.h>

#include "error.h"

/* Every head keeps min(b_sel, n_g). */
void kv_budget_uniform(int n_head_kv, const int32_t *off, int b_sel, int32_t *budget);

/* Ada-KV as the paper's code does it (algorithms.md 2.2): global top-(n_head_kv * b_sel) over
 * the flattened scores (ties to the lower flat index), c_g = winners of head g, then
 * b_g = (1 - alpha) c_g + floor(alpha b_sel), capped at n_g.
 * Deviation, on purpose: the paper rounds each b_g and lets the layer total drift by a few rows;
 * here b_g starts at the floor of that value and the rows still missing to the exact uniform
 * total sum_g min(b_sel, n_g) go one at a time to the heads with the largest fractional
 * part (then the largest c_g, then the lower head), skipping heads already at n_g. So the layer
 * total is exact, every head keeps at least min(floor(alpha b_sel), n_g), and alpha = 1 gives
 * exactly uniform budgets. -1 with e set only when memory runs out. */
int kv_budget_ada(const float *scores, int n_head_kv, const int32_t *off, int b_sel, float alpha,
                  int32_t *budget, struct adakv_err *e);

/* kv_budget_ada with every head also capped at `cap` rows (cap >= b_sel; -1 with e set
 * otherwise): the same layer total sum_g min(b_sel, n_g), the rows a capped head cannot take
 * going to the other heads by the same residual rule. Decode-time eviction uses it so Ada-KV
 * can move rows between heads while every head stays under --kv-max. */
int kv_budget_ada_capped(const float *scores, int n_head_kv, const int32_t *off, int b_sel, int cap,
                         float alpha, int32_t *budget, struct adakv_err *e);

/* Ada-KV as kvpress's AdaKVPress does it (algorithms.md 2.3): each head's own top
 * floor(alpha b_sel) are forced in first, then the rest of the layer total competes globally.
 * Exact total; every head keeps at least min(floor(alpha b_sel), n_g). */
int kv_budget_ada_kvpress(const float *scores, int n_head_kv, const int32_t *off, int b_sel,
                          float alpha, int32_t *budget, struct adakv_err *e);

/* kv_budget_ada and kv_budget_ada_kvpress over heads of different mean budgets: head g's own
 * b_sel[g] sets its floor floor(alpha b_sel[g]) and its part min(b_sel[g], n_g) of the total.
 * With every b_sel[g] equal they are kv_budget_ada and kv_budget_ada_kvpress. --budget global
 * runs them over every (layer, KV head) of the model at once (kv-press.c), each layer's heads
 * with that layer's mean budget. */
int kv_budget_ada_each(const float *scores, int n_head, const int32_t *off, const int32_t *b_sel,
                       float alpha, int32_t *budget, struct adakv_err *e);
int kv_budget_ada_kvpress_each(const float *scores, int n_head, const int32_t *off,
                               const int32_t *b_sel, float alpha, int32_t *budget,
                               struct adakv_err *e);

/* PyramidKV layer schedule (algorithms.md 3), real-valued step: selectable budget per layer,
 * decreasing from layer 0, from m_max = 2 b_sel - b_sel/beta down to m_min = b_sel/beta, with
 * m_max clamped to n_avail (rows a head can give, len - window). Each layer gets the floor of
 * its real budget and the residual goes to the layers with the largest fractional parts, so
 * sum_l layer_b[l] == n_layer * b_sel exactly. When b_sel >= n_avail nothing is evicted and
 * every layer gets n_avail. beta > 0. */
void kv_budget_pyramid(int n_layer, int b_sel, int n_avail, float beta, int32_t *layer_b);

/* Indices (ascending, relative to the head) of the top `keep` scores of one head, ties to the
 * lower index: the rows that head keeps. scratch holds n uint32. Uses the dispatched top-k. */
void kv_budget_pick(const float *scores, int n, int keep, uint32_t *scratch, int32_t *idx);

#endif
