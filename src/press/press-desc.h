/* A press as one row of a table (press-table.c): its names, what it needs from the engine, how
 * it scores a layer's rows and how it turns scores and budgets into keep lists. kv-press.c runs
 * every press through these fields (no test of which press it is), and press-ctx.c binds a row's
 * needs to a context. Adding a press is one file with its scorer (the press_score_fn signature)
 * and one row in press-table.c.
 *
 * The budget allocation across heads (uniform or Ada-KV, kv-budget.h) is not a property of the
 * press: every scored press runs under either, and a row's ada names select KV_ALLOC_ADA. */
#ifndef ADAKV_PRESS_DESC_H
#define ADAKV_PRESS_DESC_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "kv-cache.h"
#include "ops.h"

struct kv_press_hook;
struct kv_press_config;

/* What a press needs from the engine that binds it (press-ctx.c) or the caller of the hook. */
enum press_need {
    PRESS_NEEDS_QUERIES = 1 << 0, /* the window's query rows (every scored press) */
    PRESS_NEEDS_W_O = 1 << 1,     /* this layer's W_O in hook.w_o (CriticalKV's value norms) */
    PRESS_NEEDS_SEED = 1 << 2,    /* cfg.seed (random scores) */
    PRESS_NEEDS_ROPE = 1 << 3,    /* hook.rope_undo / rope_future for the window (expected att.) */
    /* the window is a reconstruction of the context the model just read (KVzip): a prefill of
     * context ++ repeat prompt (adakv_ctx_prefill_kvzip), global attention in every layer, the
     * whole context in one piece */
    PRESS_NEEDS_RECONSTRUCTION = 1 << 4,
};

/* What the last n_window rows of each segment are at a prefill's compression point. */
enum press_window {
    PRESS_WINDOW_KEPT = 0,       /* the window's own keys: always kept, never scored */
    PRESS_WINDOW_SCORED,         /* scored with the rest, kept only if they win (expected) */
    PRESS_WINDOW_RECONSTRUCTION, /* the reconstruction's rows: never kept (KVzip) */
};

/* Keep lists of one layer: head g keeps keep[start[g] .. start[g] + n_keep[g]). */
struct layer_plan {
    int32_t *keep;
    int32_t *start;  /* [n_head_kv] */
    int32_t *n_keep; /* [n_head_kv] */
};

/* What a scorer reads: the layer's rows and the queries scoring them. Head g's scores go to
 * out[off[g] .. off[g + 1]) (kv_score_layout: the rows before each segment's tail). */
struct press_layer_in {
    const struct kv_press_hook *hk; /* cfg and engine data (W_O, RoPE tables, n_head, ...) */
    const struct simd_ops *ops;
    const struct kv_cache *kv;
    int layer;
    const float *q; /* [n_q][n_head][head_dim] post-RoPE, or NULL for a positional press */
    int n_q;
    const int32_t *off; /* [n_head_kv + 1] */
};

/* Scores every head's selectable rows (higher = keep). 0, or -1 with e set. */
typedef int (*press_score_fn)(const struct press_layer_in *in, float *out, struct adakv_err *e);
/* The layer's mean selectable budget per head from the model-wide one b_sel (max_prefix: the
 * longest head's selectable rows). -1 with e set on failure. */
typedef int (*press_layer_budget_fn)(const struct press_layer_in *in, int b_sel, int max_prefix,
                                     struct adakv_err *e);
/* Head g keeps budget[g] of its off[g + 1] - off[g] scored rows: their indices, ascending, go to
 * keep + start[g]. The default (NULL) is the top budget[g] by score. */
typedef int (*press_select_fn)(const struct press_layer_in *in, const float *scores,
                               const int32_t *budget, int32_t *keep, const int32_t *start,
                               struct adakv_err *e);
/* A press that keeps rows by position alone: b rows per head (no scores, no queries). */
typedef void (*press_plan_fn)(const struct kv_cache *kv, int layer, int b,
                              const struct kv_press_config *c, struct layer_plan *p);

struct press_desc {
    const char *name;     /* adakv's name (--press NAME) */
    const char *alias[3]; /* kvpress's names for the same press (NULL-terminated) */
    /* the same press under Ada-KV head budgets (KV_ALLOC_ADA): adakv's "ada-" name first, then
     * kvpress's; NULL-terminated, empty when the press has no head budgets to share */
    const char *ada[3];
    const char *help; /* one line for --help */
    unsigned needs;   /* enum press_need bits */
    bool evicts;      /* false: keeps everything (full) */
    bool no_floor;    /* Ada-KV without the uniform floor: alpha 0 unless --alpha is given */
    enum press_window window;
    press_score_fn score;        /* at a prefill's compression point; NULL: positional or none */
    press_score_fn score_decode; /* past --kv-max, with the recent queries; NULL: positional */
    press_plan_fn plan;          /* positional presses (streaming): keep lists without scores */
    press_layer_budget_fn layer_budget; /* prefill only; NULL: every layer gets b_sel */
    press_select_fn select;             /* NULL: top-k by score */
};

/* The table, in --help order. */
extern const struct press_desc kv_presses[];
extern const int kv_n_presses;

/* The row named s (adakv name, kvpress alias or ada name); *ada (if ada is not NULL) set to
 * whether s is an ada name. NULL when no row has that name. */
const struct press_desc *kv_press_find(const char *s, bool *ada);

#endif
