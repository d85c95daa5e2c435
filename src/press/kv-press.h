/* Presses: which KV rows each layer keeps after prefill (issue 3; maths in algorithms.md 1-6).
 * Data flow per layer: int8 KV cache -> scores (kv-score) -> budgets (kv-budget) -> compaction
 * (kv-compact). This header holds the press configuration, the table of its options
 * (press-options.c) and the press names (kv-press-config.c; the presses themselves:
 * press-desc.h, press-table.c), and the per-layer hook the engine calls during layer-major
 * prefill (kv-press.c).
 *
 * How the engine wires it (adakv.h, struct adakv_ctx_params):
 *
 *     struct kv_press_config cfg;
 *     kv_press_config_default(&cfg);              // then kv_press_config_set(&cfg, name, value)
 *     if (kv_press_config_check(&cfg, &err) < 0) ...
 *     struct kv_press_hook hook = {
 *         .cfg = &cfg, .n_layer = n_layer, .n_head = n_head, .n_embd = n_embd,
 *         .w_o = NULL,        // if kv_press_needs_w_o(&cfg): before layer l's prefill attention
 *                             // set hook.w_o to layer l's W_O dequantized to f32
 *                             // [n_embd][n_head * head_dim] row-major; it is read only during
 *                             // the call and may be reused for the next layer
 *         .ops = NULL,        // NULL = simd_ops_best(); simd_ops_scalar() for reference runs
 *         .report = NULL,     // or a struct kv_report with n_layer entries (kv-report.h)
 *     };
 *     adakv_ctx_set_compress(ctx, kv_press_compress_layer, &hook); // one hook for all layers;
 *                                                 // it must outlive the evals
 *
 * The hook is called once per layer, right after the layer appended the K (post-RoPE) and V rows
 * of all L prompt tokens. Segments may have different lengths (a second prefill on top of a
 * compressed cache); the last n_window rows of each segment are the observation window whose
 * queries are q_window [n_window][n_head][head_dim]. Nothing is evicted when the budget is >= a
 * segment's length. Kept rows stay in position order; new tokens keep taking positions from the
 * original prompt length (the engine's counter), never from the compressed length.
 *
 * During decode with --kv-max N (cfg.kv_max), the engine keeps the last cfg.window query rows of
 * each layer (post-RoPE, same layout) and after appending a token calls, per layer,
 *     kv_press_compress_decode(&hook, kv, layer, q_recent, n_recent, cfg.kv_max, &err);
 * which returns at once unless a head of that layer holds more than N rows (see below). */
#ifndef ADAKV_KV_PRESS_H
#define ADAKV_KV_PRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "kv-cache.h"
#include "kv-score.h"
#include "ops.h"
#include "press-desc.h"

enum kv_press_alloc {
    KV_ALLOC_UNIFORM = 0, /* every head keeps the same number of rows */
    KV_ALLOC_ADA,         /* Ada-KV, paper code (algorithms.md 2.2) */
    KV_ALLOC_ADA_KVPRESS, /* Ada-KV, kvpress AdaKVPress (2.3): safeguard first, then global */
};

/* --budget: where Ada-KV's head budgets compete (docs/presses.md, "Global budget"). */
enum kv_budget_scope {
    KV_BUDGET_LAYER = 0, /* within each layer, as the paper: every layer keeps its share */
    /* every (layer, KV head) of the model at once, at the end of the prompt batch: one top-k
     * over all their scores, each head's floor as within a layer (kv_budget_ada_each) */
    KV_BUDGET_GLOBAL,
};

/* CriticalKV's stage-1 share (algorithms.md 4.2): of the head's selectable budget b, or, as
 * kvpress's CriticalKVPress and CriticalAdaKVPress count it, of the whole budget b + w with the w
 * protected window rows inside it: int(ratio (b + w)) - w prefix rows (docs/kvpress.md). */
enum kv_critical_split {
    KV_CRITICAL_SPLIT_PREFIX,  /* floor(ratio b) */
    KV_CRITICAL_SPLIT_KVPRESS, /* int(ratio (b + w)) - w, at least 0 */
};

struct kv_press_config {
    const struct press_desc *press; /* a row of kv_presses (press-desc.h), default snapkv */
    enum kv_press_alloc alloc;      /* default uniform (--ada: KV_ALLOC_ADA) */
    int budget;                     /* kept rows per KV head, window included; 0 = use ratio */
    float ratio;                    /* fraction removed, [0, 1); used when budget == 0 */
    int window;                     /* observation window w, default 32 */
    int kernel;                     /* pooling kernel (odd), default 7 */
    enum kv_pool pool;              /* default max */
    float alpha;                    /* Ada-KV safeguard fraction, default 0.2 */
    enum kv_budget_scope scope;     /* --budget, default per layer */
    float beta;                     /* PyramidKV steepness, default 20 */
    int n_sink;                     /* StreamingLLM sinks, default 4 */
    float critical_ratio; /* CriticalKV stage-1 share of each head's budget, default 0.5 */
    float critical_eps;   /* CriticalKV epsilon, default 1e-4 */
    enum kv_critical_split critical_split; /* CriticalKV stage 1, default over the prefix */
    uint64_t seed;                         /* random press */
    int reserve;      /* rows left free per segment for decode after compaction */
    int kv_max;       /* --kv-max: rows per KV head during decode, 0 = no cap (the engine's flag) */
    int decode_chunk; /* --kv-chunk: rows below --kv-max a decode-time eviction frees, default 64 */
    int prefill_chunk; /* --prefill-chunk: prompt tokens per piece of a compressed prefill, each
                          piece compressed before the next (press-ctx.c), 0 = the whole prompt */
    int rec_chunk;     /* KVzip: context tokens per piece of the reconstruction (kv-rec-pieces.h),
                          default 1024, 0 = one piece whatever the length */
    int eattn_future;  /* expected attention: future positions the RoPE is averaged over, 512 */
    float eattn_eps;   /* expected attention: (p + eps) * ||v||, default 0 (kvpress) */
};

struct kv_report;

struct kv_press_hook {
    const struct kv_press_config *cfg;
    int n_layer, n_head, n_embd;
    const float *w_o;           /* this layer's W_O, f32 [n_embd][n_head * head_dim], or NULL */
    const struct simd_ops *ops; /* NULL = simd_ops_best() */
    struct kv_report *report;   /* NULL = no report */
    /* --budget global: the layers scored and waiting for the model-wide split (kv-press.c);
     * NULL = each layer compressed by its own call */
    struct kv_press_deferred *deferred;
    /* expected attention only (the binding fills them per layer, kv-score.h kv_score_eattn):
     * rope_undo [n_window][n_rot] cos then sin undoing each window query's RoPE, rope_future
     * [n_rot] the RoPE averaged over the next eattn_future positions; RoPE pairing as ops.h */
    const float *rope_undo, *rope_future;
    int n_rot, rope_neox;
    /* KVzip question-aware (adakv_ctx_prefill_kvzip_aware): the window's last kvzip_question
     * queries are the question's (kv-score.h kv_score_kvzip); 0 otherwise */
    int kvzip_question;
    /* KVzip: the window queries' log-sum-exps [n_window][n_head] from the forward pass's
     * attention (kv_policy_window_lse), or NULL (the scorer computes them) */
    const float *kvzip_lse;
    /* KVzip: the reconstruction's pieces (what each copy query saw), or NULL: one piece */
    const struct kv_rec_pieces *kvzip_pieces;
};

/* One press option (press-options.c): what adakv_press_set takes as name = value, adakv-run
 * and adakv-server as --NAME VALUE. The table gives each option's field, type, allowed values,
 * default and help, and from them the defaults (kv_press_config_default), the parse and its
 * one-line errors (kv_press_option_set), the range checks (kv_press_config_check) and the press
 * part of --help (adakv_press_usage, adakv.h). */
enum press_opt_type {
    PRESS_OPT_NAME,  /* a press name (kv_press_parse_name); sets press and maybe alloc */
    PRESS_OPT_INT,   /* int field, whole base-10 string */
    PRESS_OPT_U64,   /* uint64_t field, whole base-10 string */
    PRESS_OPT_FLOAT, /* float field, finite */
    PRESS_OPT_ENUM,  /* int-sized enum field: the index of the value in `values` */
};

struct press_option {
    const char *name; /* adakv_press_set's name; --NAME on the command line */
    enum press_opt_type type;
    double lo, hi;             /* allowed values (int, u64, float) */
    bool lo_open, hi_open;     /* (lo, ...] and [..., hi) */
    bool odd;                  /* odd values only (a centred pooling window) */
    bool zero_unset;           /* default 0 = not given (no budget, no cap), outside the range */
    const char *const *values; /* enum: the spellings, NULL-terminated */
    size_t offset;             /* of the field in struct kv_press_config */
    double def;                /* default (enum: index into values) */
    const char *meta;          /* the value in --help: N, F, max|avg */
    const char *flag;          /* a valueless flag that sets it (--ada), or NULL */
    bool api_only; /* adakv_press_set and the tools' --press-opt only, no program flag */
    const char *help;
};

extern const struct press_option kv_press_options[];
extern const int kv_n_press_options;

/* The option called name, or NULL. */
const struct press_option *kv_press_option_find(const char *name);
/* Parses value into o's field of c. 0, or -1 with one line in e naming --NAME and the allowed
 * values; c is unchanged on error. */
int kv_press_option_set(const struct press_option *o, struct kv_press_config *c, const char *value,
                        struct adakv_err *e);
/* kv_press_option_set by name; an unknown name is an error. */
int kv_press_config_set(struct kv_press_config *c, const char *name, const char *value,
                        struct adakv_err *e);

/* Every option's default (press snapkv, uniform heads). */
void kv_press_config_default(struct kv_press_config *c);

/* Every option's field in its range, then the cross-field checks (budget and ratio both set,
 * --kv-max not above the window). */
int kv_press_config_check(const struct kv_press_config *c, struct adakv_err *e);

/* --press NAME: a row's name, kvpress alias or ada name (press-table.c). Sets press (and alloc
 * for the ada names). */
int kv_press_parse_name(const char *s, struct kv_press_config *c, struct adakv_err *e);
/* --window must not exceed the prompt: checked once the prompt is tokenized. */
int kv_press_check_window(int window, int prompt_len, struct adakv_err *e);

bool kv_press_needs_w_o(const struct kv_press_config *c);

/* Rows per KV head a segment of `len` rows keeps (window included): the budget, or
 * floor(len * (1 - ratio)) but at least 1. */
int kv_press_head_budget(const struct kv_press_config *c, int len);

/* The hook (adakv_compress_layer_fn); user is a struct kv_press_hook. */
int kv_press_compress_layer(void *user, struct kv_cache *kv, int layer, const float *q_window,
                            int n_window, struct adakv_err *e);

/* --budget global (KV_BUDGET_GLOBAL). With hk.deferred set, kv_press_compress_layer scores a layer
 * whose budget is shared by scores and keeps the scores instead of compacting (the other cases,
 * a layer with nothing to evict or a budget below the window, compress at once); after the
 * batch's last layer, kv_press_deferred_split runs Ada-KV over every kept (layer, KV head) at
 * once (one top-k over all their scores; the total is the per-layer one, each head keeps at
 * least floor(alpha b_sel) of its layer's b_sel), and kv_press_deferred_compact compacts each
 * layer the split covered (hk.w_o set to that layer's first when the press needs W_O). The
 * cache holds every such layer's rows until then. kv_press_deferred_clear forgets a batch that
 * failed midway. */
struct kv_press_deferred;
struct kv_press_deferred *kv_press_deferred_new(int n_layer, struct adakv_err *e);
void kv_press_deferred_free(struct kv_press_deferred *d);
void kv_press_deferred_clear(struct kv_press_deferred *d);
/* Whether layer il waits for the split (then kv_press_deferred_compact it). */
bool kv_press_deferred_pending(const struct kv_press_deferred *d, int il);
int kv_press_deferred_split(const struct kv_press_hook *hk, struct adakv_err *e);
int kv_press_deferred_compact(const struct kv_press_hook *hk, struct kv_cache *kv, int layer,
                              struct adakv_err *e);

/* Decode-time eviction (--kv-max, issue 3 item 8), called by the engine between decode steps
 * for each layer (cheap when nothing overflows: it only reads the segment lengths).
 *
 * When some KV head of `layer` holds more than max_rows rows, the layer is re-scored with the
 * n_recent most recent query rows q_recent ([n_recent][n_head][head_dim], post-RoPE, the same
 * layout as q_window) against each head's rows, exactly like SnapKV scores a prompt with its
 * window: the last n_recent rows of every segment are those queries' own keys and are always
 * kept. Then every head is compacted in place, stable, to at most
 *     target = max_rows - cfg->decode_chunk rows (uniform), or
 *     up to max_rows - decode_chunk / 2 rows for a head that Ada-KV favours, with the layer
 *     total of the uniform case (kv_budget_ada_capped, for either --ada variant),
 * never below n_recent + 1. The freed rows stay allocated as reserve (no realloc), so decode
 * keeps appending without allocating and the layer is not evicted again for at least
 * decode_chunk / 2 steps. Scorers: the configured one (snapkv, critical (needs hook.w_o for this
 * layer), knorm, random; pyramid scores like snapkv (no layer schedule under a per-head cap);
 * full has no scorer of its own and uses SnapKV's); streaming keeps n_sink + the most recent
 * rows and needs no queries. Original positions are kept with every row.
 * When no head exceeds max_rows the call returns 0 and touches nothing (bytes identical).
 * -1 with e set: max_rows < 1 or <= n_recent, missing queries or W_O, out of memory. */
int kv_press_compress_decode(const struct kv_press_hook *hk, struct kv_cache *kv, int layer,
                             const float *q_recent, int n_recent, int max_rows,
                             struct adakv_err *e);

#endif
