/* Binds a press (kv-press.h) to a context as its KV policy (kv-policy.h's struct kv_policy): the
 * public adakv_press_* / adakv_ctx_set_press API.
 * The context calls press_layer() once per layer during layer-major prefill; for CriticalKV and
 * for --kv-report this dequantizes the layer's W_O first, so the press sees
 * ||v W_O^h||_1 through the weights actually in the file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adakv-ext.h"
#include "error.h"
#include "kv-policy.h"
#include "kv-press.h"
#include "kv-report.h"
#include "model.h"
#include "quant.h"
#include "rope-angles.h"
#include "tensor-type.h"

struct adakv_press {
    struct kv_press_config cfg;
    /* bit i: kv_press_options[i] given. Without press, a budget alone means ada-snapkv; without
     * alpha, a no_floor press (kvzip) splits without Ada-KV's safeguard (kvpress) */
    uint32_t given;
};

struct press_binding {
    struct adakv_press press; /* as given: a fork binds it again */
    struct kv_press_config cfg;
    struct kv_press_hook hook;
    const struct adakv_model *model;
    float *w_o;   /* [n_embd][n_head * head_dim] scratch when the press or report needs W_O */
    float *q_lin; /* [window][n_head * head_dim] recent queries, oldest first (--kv-max) */
    struct kv_report report;
    bool has_report;
    bool enabled;
    size_t peak_bytes; /* largest KV allocation seen at a compression point */
    /* inside a chunked prefill: the budget and ratio given, while cfg holds the batch's budget */
    int given_budget;
    float given_ratio;
    bool kvzip_active; /* inside adakv_ctx_prefill_kvzip: the window is the reconstruction */
    struct kv_press_deferred *deferred; /* --budget global: scores waiting for the batch's end */
    /* expected attention: [window][n_rot] inverse RoPE of each window query, [n_rot] the RoPE
     * averaged over the future positions, and [eattn_future][n_rot] scratch for it */
    float *rope_undo, *rope_future, *rope_tmp;
};

static void press_policy_free(void *self);

/* The press bound to c, if its KV policy is one. */
static struct press_binding *binding(const struct adakv_ctx *c) {
    const struct kv_policy *pol = kv_policy_of(c);
    return pol->free == press_policy_free ? pol->self : NULL;
}

struct adakv_press *adakv_press_new(void) {
    struct adakv_press *p = calloc(1, sizeof *p);
    if (p) {
        kv_press_config_default(&p->cfg);
        p->cfg.press = kv_press_find("full", NULL);
    }
    return p;
}

void adakv_press_free(struct adakv_press *p) {
    free(p);
}

int adakv_press_set(struct adakv_press *p, const char *name, const char *value,
                    struct adakv_err *e) {
    const struct press_option *o = kv_press_option_find(name);
    if (!o)
        return err_set(e, "unknown press option '%s'", name ? name : "");
    if (kv_press_option_set(o, &p->cfg, value, e))
        return -1;
    p->given |= 1u << (o - kv_press_options);
    return 0;
}

/* Whether the option called name was given to adakv_press_set. */
static bool given(const struct adakv_press *p, const char *name) {
    return p->given >> (kv_press_option_find(name) - kv_press_options) & 1u;
}

bool adakv_press_is_flag(const char *name) {
    const struct press_option *o = kv_press_option_find(name);
    return o && !o->api_only && !o->flag;
}

/* The configuration that will run: a budget or ratio without --press means ada-snapkv. */
static struct kv_press_config resolved(const struct adakv_press *p) {
    struct kv_press_config c = p->cfg;
    /* KVzip selects without Ada-KV's uniform floor (kvpress: "KVzip does not rely on
     * safeguards"; the reconstruction singles out the rows a head needs, and a floor spends
     * budget on heads that attend to nothing in particular): alpha 0 unless --alpha says */
    if (c.press->no_floor && !given(p, "alpha"))
        c.alpha = 0.0f;
    if (!given(p, "press") && (c.budget > 0 || c.ratio > 0.0f || c.kv_max > 0)) {
        c.press = kv_press_find("snapkv", NULL);
        c.alloc = KV_ALLOC_ADA;
    }
    return c;
}

/* What --budget global cannot run with, one line each naming the flag. */
static int global_check(const struct kv_press_config *c, struct adakv_err *e) {
    if (!c->press->evicts)
        return 0;
    if (c->alloc == KV_ALLOC_UNIFORM)
        return err_set(e,
                       "--budget global: splits Ada-KV head budgets across layers; choose an "
                       "ada- press or --ada (--press %s has uniform heads)",
                       c->press->name);
    if (!c->press->score)
        return err_set(e, "--budget global: %s keeps rows by position, with no scores to compare",
                       c->press->name);
    if (c->press->layer_budget)
        return err_set(e, "--budget global: %s gives each layer its own budget", c->press->name);
    /* a piece's selection would hold one piece in every layer, and re-split across layers at
     * each piece: not what --prefill-chunk promises (one layer's piece at a time) */
    if (c->prefill_chunk > 0)
        return err_set(e, "--prefill-chunk: not with --budget global, which selects over every "
                          "layer once the whole prompt has run");
    if (c->kv_max > 0)
        return err_set(e, "--kv-max: not with --budget global (decode-time eviction re-scores one "
                          "layer at a time)");
    return 0;
}

int adakv_press_check(const struct adakv_press *p, struct adakv_err *e) {
    struct kv_press_config c = resolved(p);
    if (kv_press_config_check(&c, e))
        return -1;
    if (c.press->evicts && c.budget == 0 && c.ratio == 0.0f && c.kv_max == 0)
        return err_set(e, "--press %s: give a budget (--kv-budget N or --kv-ratio R)",
                       c.press->name);
    /* each piece's last `window` queries score the cache, so a piece must hold a window */
    if (c.prefill_chunk > 0 && c.prefill_chunk < c.window)
        return err_set(e, "--prefill-chunk: %d is shorter than the press window (%d tokens)",
                       c.prefill_chunk, c.window);
    if (c.scope == KV_BUDGET_GLOBAL && global_check(&c, e))
        return -1;
    if (c.prefill_chunk > 0 && (c.press->needs & PRESS_NEEDS_RECONSTRUCTION))
        return err_set(e,
                       "--prefill-chunk: %s scores while the model repeats the whole context, "
                       "so it cannot compress piece by piece",
                       c.press->name);
    return 0;
}

bool adakv_press_evicts(const struct adakv_press *p) {
    struct kv_press_config c = resolved(p);
    return c.press->evicts && (c.budget > 0 || c.ratio > 0.0f);
}

bool adakv_press_needs_reconstruction(const struct adakv_press *p) {
    return (resolved(p).press->needs & PRESS_NEEDS_RECONSTRUCTION) && adakv_press_evicts(p);
}

int adakv_press_window(const struct adakv_press *p) {
    return p->cfg.window;
}

void adakv_press_describe(const struct adakv_press *p, char *buf, size_t size) {
    struct kv_press_config c = resolved(p);
    if (!adakv_press_evicts(p) && c.kv_max == 0) {
        snprintf(buf, size, "full (no eviction)");
        return;
    }
    char budget[48];
    if (c.budget > 0)
        snprintf(budget, sizeof budget, "budget %d", c.budget);
    else if (c.ratio > 0.0f)
        snprintf(budget, sizeof budget, "ratio %.2f", c.ratio);
    else
        snprintf(budget, sizeof budget, "no prefill eviction");
    int n = snprintf(buf, size, "%s%s, %s, window %d, %s",
                     c.alloc == KV_ALLOC_UNIFORM ? "" : "ada-", c.press->name, budget, c.window,
                     c.alloc == KV_ALLOC_UNIFORM ? "uniform heads"
                     : c.alloc == KV_ALLOC_ADA   ? "Ada-KV heads"
                                                 : "Ada-KV (kvpress) heads");
    if (c.alloc != KV_ALLOC_UNIFORM && n > 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, ", alpha %.2f%s", c.alpha,
                      c.scope == KV_BUDGET_GLOBAL ? ", one budget across layers" : "");
    if (c.kv_max > 0 && n > 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, ", decode cap %d rows/head (chunk %d)", c.kv_max,
                      c.decode_chunk);
    if (c.prefill_chunk > 0 && n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ", prefill in pieces of %d tokens", c.prefill_chunk);
}

/* Dequantizes layer `layer`'s attn_output weight: row r (output dim r) holds n_head * head_dim
 * inputs, which is exactly the [n_embd][n_head * head_dim] layout the press reads. */
static void dequant_w_o(const struct adakv_model *m, int layer, float *dst) {
    const struct gguf_tensor *t = m->w.layers[layer].wo;
    const struct quant_kernels *k = quant_kernels_isa(t->type, simd_isa());
    const size_t row = (size_t)tensor_type_row_size(t->type, t->ne[0]);
    for (int64_t r = 0; r < (int64_t)t->ne[1]; r++)
        k->dequant_row((const char *)t->data + (size_t)r * row, dst + (size_t)r * t->ne[0],
                       t->ne[0]);
}

/* Expected attention's RoPE tables for this layer: the window queries are the last n_window rows
 * of the batch (their positions are those of the segment's last rows, which are their own keys),
 * and the future starts right after the last of them (kvpress: positions q_len .. q_len +
 * n_future_positions - 1). The inverse of the op's scaled rotation (c, s) is (c, -s) / (c^2 + s^2),
 * exact even when YaRN scales cos and sin. */
static void eattn_rope(struct press_binding *b, const struct kv_cache *kv, int layer,
                       int n_window) {
    const struct model_hparams *hp = &b->model->hp;
    const int half = hp->n_rot / 2, n_future = b->cfg.eattn_future;
    const struct kv_segment *seg = kv_cache_seg(kv, layer, 0);
    for (int t = 0; t < n_window; t++) {
        float *cs = b->rope_undo + (size_t)t * hp->n_rot;
        rope_angles_layer(b->model, layer, seg->pos[seg->len - n_window + t], 1, cs);
        for (int i = 0; i < half; i++) {
            const float c = cs[i], s = cs[half + i], r = c * c + s * s;
            cs[i] = c / r, cs[half + i] = -s / r;
        }
    }
    rope_angles_layer(b->model, layer, seg->pos[seg->len - 1] + 1, n_future, b->rope_tmp);
    for (int i = 0; i < hp->n_rot; i++) {
        double sum = 0.0;
        for (int p = 0; p < n_future; p++)
            sum += b->rope_tmp[(size_t)p * hp->n_rot + i];
        b->rope_future[i] = (float)(sum / n_future);
    }
    b->hook.rope_undo = b->rope_undo;
    b->hook.rope_future = b->rope_future;
    b->hook.n_rot = hp->n_rot;
    b->hook.rope_neox = hp->rope_pairing == ROPE_PAIRING_NEOX;
}

static int press_layer(void *user, struct kv_cache *kv, int layer, const float *q_window,
                       int n_window, struct adakv_err *e) {
    struct press_binding *b = user;
    /* the peak of a layer-major prefill is here: this layer full, the earlier ones compressed */
    size_t bytes = kv_cache_bytes(kv);
    b->peak_bytes = bytes > b->peak_bytes ? bytes : b->peak_bytes;
    /* sliding-window layers keep a bounded window by themselves (forward.c): presses act on
     * the global layers only */
    const int window = b->model->hp.layer[layer].window;
    if (window && b->has_report) { /* say so, rather than report an empty layer */
        kv_report_nothing_evicted(&b->report, kv, layer);
        b->report.layer[layer].sliding_window = window;
    }
    if (!b->enabled || window)
        return 0;
    if (b->w_o) {
        dequant_w_o(b->model, layer, b->w_o);
        b->hook.w_o = b->w_o;
    }
    if ((b->cfg.press->needs & PRESS_NEEDS_RECONSTRUCTION) && !b->kvzip_active)
        return err_set(e,
                       "kv-press: the %s press scores while the model repeats the context: "
                       "prefill with adakv_ctx_prefill_kvzip",
                       b->cfg.press->name);
    if ((b->cfg.press->needs & PRESS_NEEDS_ROPE) && n_window > 0)
        eattn_rope(b, kv, layer, n_window);
    return kv_press_compress_layer(&b->hook, kv, layer, q_window, n_window, e);
}

static void press_policy_free(void *self) {
    struct press_binding *b = self;
    if (!b)
        return;
    if (b->has_report)
        kv_report_free(&b->report);
    free(b->w_o);
    free(b->q_lin);
    free(b->rope_undo);
    free(b->rope_future);
    free(b->rope_tmp);
    kv_press_deferred_free(b->deferred);
    free(b);
}

/* --budget global, after the batch's last layer: one Ada-KV split over every layer the hook
 * scored, then each of them compacted (W_O dequantized per layer when the press reads it). */
static int press_after_batch(void *self, struct kv_cache *kv, struct adakv_err *e) {
    struct press_binding *b = self;
    /* the peak of a global selection: every scored layer still holds the whole batch */
    size_t bytes = kv_cache_bytes(kv);
    b->peak_bytes = bytes > b->peak_bytes ? bytes : b->peak_bytes;
    int rc = kv_press_deferred_split(&b->hook, e);
    for (int il = 0; il < kv->n_layer && rc == 0; il++) {
        if (!kv_press_deferred_pending(b->deferred, il))
            continue;
        if (b->w_o) {
            dequant_w_o(b->model, il, b->w_o);
            b->hook.w_o = b->w_o;
        }
        rc = kv_press_deferred_compact(&b->hook, kv, il, e);
    }
    kv_press_deferred_clear(b->deferred);
    return rc;
}

/* A compressed prompt batch of n tokens longer than --prefill-chunk runs in pieces (kv-policy.h's
 * prefill_begin), each compressed before the next. Every piece evicts to the budget the whole batch
 * would get at once: with --kv-ratio that is the ratio of the batch's final length (rows before it
 * + n), not of the rows present, which would compound over the pieces. So the cache ends with as
 * many rows as a one-piece prefill keeps and never holds more than that plus one piece. (kvpress's
 * ChunkPress instead keeps the ratio of each chunk and never re-scores what it kept: its cache
 * grows with the prompt; docs/eval.md compares the two.) */
static int press_prefill_begin(void *self, const struct kv_cache *kv, int n) {
    struct press_binding *b = self;
    kv_press_deferred_clear(b->deferred); /* what a failed batch left */
    const int chunk = b->cfg.prefill_chunk;
    if (!b->enabled || chunk <= 0 || n <= chunk || !adakv_press_evicts(&b->press))
        return 0;
    b->given_budget = b->cfg.budget;
    b->given_ratio = b->cfg.ratio;
    if (b->cfg.budget == 0) {
        int rows = 0; /* the longest head of a compressed layer before this batch */
        for (int il = 0; il < kv->n_layer; il++)
            for (int g = 0; g < kv->n_head_kv && !b->model->hp.layer[il].window; g++)
                rows = kv_cache_seg(kv, il, g)->len > rows ? kv_cache_seg(kv, il, g)->len : rows;
        b->cfg.budget = kv_press_head_budget(&b->cfg, rows + n);
        b->cfg.ratio = 0.0f;
    }
    return chunk;
}

static void press_prefill_end(void *self) {
    struct press_binding *b = self;
    b->cfg.budget = b->given_budget;
    b->cfg.ratio = b->given_ratio;
}

static int press_policy_fork(void *self, struct adakv_ctx *dst, struct adakv_err *e);
static int press_after_token(void *self, struct kv_cache *kv, const struct recent_queries *recent,
                             bool *evicted, struct adakv_err *e);

int adakv_ctx_set_press(struct adakv_ctx *c, const struct adakv_press *p, bool report,
                        struct adakv_err *e) {
    if (adakv_press_check(p, e))
        return -1;
    const struct kv_policy_host host = kv_policy_host(c);
    const struct model_hparams *hp = &host.model->hp;
    struct press_binding *b = calloc(1, sizeof *b);
    if (!b)
        return err_set(e, "press: out of memory");
    b->press = *p;
    b->cfg = resolved(p);
    b->model = host.model;
    b->enabled = true;
    b->hook = (struct kv_press_hook){.cfg = &b->cfg,
                                     .n_layer = hp->n_layer,
                                     .n_head = hp->n_head,
                                     .n_embd = hp->n_embd,
                                     .ops = host.ops};
    if (report) {
        if (kv_report_init(&b->report, hp->n_layer, e)) {
            free(b);
            return -1;
        }
        b->has_report = true;
        b->hook.report = &b->report;
    }
    if (b->cfg.scope == KV_BUDGET_GLOBAL && b->cfg.press->evicts) {
        if (report) {
            press_policy_free(b);
            return err_set(e, "--kv-report: not with --budget global (the report is written as "
                              "each layer is compressed)");
        }
        b->deferred = kv_press_deferred_new(hp->n_layer, e);
        if (!b->deferred) {
            press_policy_free(b);
            return -1;
        }
        b->hook.deferred = b->deferred;
    }
    if (report || kv_press_needs_w_o(&b->cfg)) {
        b->w_o = malloc((size_t)hp->n_embd * hp->n_head * hp->head_dim * sizeof *b->w_o);
        if (!b->w_o) {
            press_policy_free(b);
            return err_set(e, "press: out of memory for W_O");
        }
    }
    if (b->cfg.press->needs & PRESS_NEEDS_ROPE) {
        b->rope_undo = malloc((size_t)b->cfg.window * hp->n_rot * sizeof *b->rope_undo);
        b->rope_future = malloc((size_t)hp->n_rot * sizeof *b->rope_future);
        b->rope_tmp = malloc((size_t)b->cfg.eattn_future * hp->n_rot * sizeof *b->rope_tmp);
        if (!b->rope_undo || !b->rope_future || !b->rope_tmp) {
            press_policy_free(b);
            return err_set(e, "press: out of memory for expected attention's RoPE tables");
        }
    }
    /* KVzip scores with the reconstruction's queries, which live only in the sliding-window
     * layers' recent rows on a model that has them (kvpress refuses Gemma 3 for the same
     * reason): refused rather than approximated */
    const struct press_desc *d = b->cfg.press;
    for (int il = 0; (d->needs & PRESS_NEEDS_RECONSTRUCTION) && il < hp->n_layer; il++)
        if (hp->layer[il].window) {
            press_policy_free(b);
            return err_set(e,
                           "--press %s: layer %d attends over a sliding window; KVzip needs "
                           "global attention in every layer",
                           d->name, il);
        }
    /* the press scores the last `window` queries: the context must keep that many */
    if (kv_policy_set_window(c, b->cfg.window, e)) {
        press_policy_free(b);
        return -1;
    }
    if (b->cfg.kv_max > 0) {
        if (!b->cfg.press->evicts) {
            press_policy_free(b);
            return err_set(e, "--kv-max: the full press keeps everything (choose a press)");
        }
        const int window = kv_policy_host(c).window; /* as set above, clamped to n_ctx */
        b->q_lin = malloc((size_t)window * hp->n_head * hp->head_dim * sizeof *b->q_lin);
        int rc = b->q_lin ? kv_policy_record_recent(c, window, e)
                          : err_set(e, "press: out of memory for recent queries");
        if (rc) {
            press_policy_free(b);
            return -1;
        }
    }
    kv_policy_install(c, &(struct kv_policy){
                             .self = b,
                             .after_layer = adakv_press_evicts(p) || report ? press_layer : NULL,
                             .after_batch = b->deferred ? press_after_batch : NULL,
                             .after_token = b->cfg.kv_max > 0 ? press_after_token : NULL,
                             .prefill_begin = press_prefill_begin,
                             .prefill_end = press_prefill_end,
                             .fork = press_policy_fork,
                             .free = press_policy_free,
                         });
    return 0;
}

/* The policy's fork: the same press (its options as given, its report flag, enabled or not) on
 * dst; the report of the last compression stays with the original. */
static int press_policy_fork(void *self, struct adakv_ctx *dst, struct adakv_err *e) {
    const struct press_binding *b = self;
    if (adakv_ctx_set_press(dst, &b->press, b->has_report, e))
        return -1;
    binding(dst)->enabled = b->enabled;
    return 0;
}

/* Decode-time eviction (--kv-max), after each decode step: any layer whose heads outgrew the cap
 * is re-scored with the recent queries and compacted in place. */
static int press_after_token(void *self, struct kv_cache *kv, const struct recent_queries *recent,
                             bool *evicted, struct adakv_err *e) {
    struct press_binding *b = self;
    for (int il = 0; il < kv->n_layer; il++) {
        if (b->model->hp.layer[il].window) /* bounded by its window already */
            continue;
        bool over = false;
        for (int g = 0; g < kv->n_head_kv && !over; g++)
            over = kv_cache_seg(kv, il, g)->len > b->cfg.kv_max;
        if (!over) /* the common case costs a few compares per layer */
            continue;
        const int n_recent = recent_queries_layer(recent, il, b->q_lin);
        if (b->w_o) {
            dequant_w_o(b->model, il, b->w_o);
            b->hook.w_o = b->w_o;
        }
        if (kv_press_compress_decode(&b->hook, kv, il, b->q_lin, n_recent, b->cfg.kv_max, e))
            return -1;
        *evicted = true;
    }
    return 0;
}

int adakv_ctx_prefill_kvzip_aware(struct adakv_ctx *c, const int32_t *tokens, int n,
                                  const int32_t *rec, int n_rec, const int32_t *question,
                                  int n_question, struct adakv_err *e) {
    struct press_binding *b = binding(c);
    if (!b || !b->enabled || !(b->cfg.press->needs & PRESS_NEEDS_RECONSTRUCTION) ||
        !kv_policy_of(c)->after_layer)
        return adakv_eval(c, tokens, n, NULL, false, e);
    if (n < 1 || !tokens || n_rec < 1 || !rec || n_question < 0 || (n_question && !question))
        return err_set(e,
                       "kvzip: %d context, %d reconstruction and %d question tokens (the first two "
                       "must be >= 1)",
                       n, n_rec, n_question);
    const int past = adakv_ctx_n_past(c);
    const int n_ctx = kv_policy_host(c).n_ctx;
    if ((long)n + n_rec + n_question > (long)n_ctx - past)
        return err_set(e,
                       "kvzip: %d context + %d reconstruction + %d question tokens do not fit in "
                       "the context (%d of %d positions used); KVzip needs room for all of them",
                       n, n_rec, n_question, past, n_ctx);
    int32_t *all = malloc(((size_t)n + n_rec + n_question) * sizeof *all);
    if (!all)
        return err_set(e, "kvzip: out of memory");
    memcpy(all, tokens, (size_t)n * sizeof *all);
    memcpy(all + n, rec, (size_t)n_rec * sizeof *all);
    if (n_question)
        memcpy(all + n + n_rec, question, (size_t)n_question * sizeof *all);
    /* a context longer than rec-chunk is repeated in pieces (kv-rec-pieces.h). The context is
     * every row before the reconstruction (a caller may have prefilled most of it already, as
     * adakv-eval's shared prefill does); the copy ends with it, and what comes before the copy
     * in the reconstruction is the repeat prompt */
    const int piece = b->cfg.rec_chunk, ctx_end = past + n;
    const struct kv_rec_pieces rp = {.piece = piece > 0 && ctx_end > piece ? piece : 0,
                                     .head_end = b->cfg.n_sink < ctx_end ? b->cfg.n_sink : ctx_end,
                                     .ctx0 = 0,
                                     .ctx_end = ctx_end,
                                     .rec0 = ctx_end,
                                     .lead_end = ctx_end + (n_rec > ctx_end ? n_rec - ctx_end : 0),
                                     .rec_end = ctx_end + n_rec,
                                     .shift = n_rec,
                                     .overlap = KVZIP_PIECE_OVERLAP};
    /* one layer-major prefill of context ++ reconstruction (++ question): at each layer the hook
     * sees the reconstruction's (and the question's) queries as its window, scores the context
     * rows with them and drops the rest, so the next layer still attends over the full,
     * uncompressed batch */
    int rc = kv_policy_set_window(c, n_rec + n_question, e);
    if (!rc) {
        b->kvzip_active = true;
        b->hook.kvzip_question = n_question;
        b->hook.kvzip_pieces = rp.piece ? &rp : NULL;
        kv_policy_set_rec_pieces(c, rp.piece ? &rp : NULL);
        /* the scorer's logits are q.k / sqrt(d) (kvpress's); the forward pass's log-sum-exps
         * match them where the model's attention scale is that too (llama, qwen, gemma 3) */
        const struct model_hparams *hp = &b->model->hp;
        b->hook.kvzip_lse =
            hp->attn_scale == 1.0f / sqrtf((float)hp->head_dim) ? kv_policy_window_lse(c) : NULL;
        rc = adakv_eval(c, all, n + n_rec + n_question, NULL, false, e);
        b->hook.kvzip_question = 0;
        b->hook.kvzip_lse = NULL;
        b->hook.kvzip_pieces = NULL;
        kv_policy_set_rec_pieces(c, NULL);
        b->kvzip_active = false;
        struct adakv_err ignored;
        if (kv_policy_set_window(c, b->cfg.window, rc ? &ignored : e) && !rc)
            rc = -1;
    }
    free(all);
    /* every layer dropped the reconstruction's rows: only the position counter moves back, so
     * the next token takes position past + n, as after a prefill of the context alone */
    if (!rc)
        rc = adakv_ctx_rewind(c, past + n, e);
    return rc;
}

int adakv_ctx_prefill_kvzip(struct adakv_ctx *c, const int32_t *tokens, int n, const int32_t *rec,
                            int n_rec, struct adakv_err *e) {
    return adakv_ctx_prefill_kvzip_aware(c, tokens, n, rec, n_rec, NULL, 0, e);
}

size_t adakv_ctx_kv_peak_bytes(const struct adakv_ctx *c) {
    const struct press_binding *b = binding(c);
    size_t now = adakv_ctx_kv_bytes(c), peak = b ? b->peak_bytes : 0;
    return peak > now ? peak : now;
}

void adakv_ctx_press_enable(struct adakv_ctx *c, bool on) {
    struct press_binding *b = binding(c);
    if (b)
        b->enabled = on;
}

int adakv_ctx_kv_report(const struct adakv_ctx *c, char **out, struct adakv_err *e) {
    const struct press_binding *b = binding(c);
    if (!b || !b->has_report)
        return err_set(e, "kv report: no press with a report is installed");
    const struct kv_report *r = &b->report;
    size_t cap = (size_t)r->n_layer * 200 + 1, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return err_set(e, "kv report: out of memory");
    buf[0] = '\0';
    for (int l = 0; l < r->n_layer; l++) {
        int k = kv_report_format(r, l, buf + n, cap - n);
        if (k < 0 || (size_t)k + 2 >= cap - n)
            break;
        n += (size_t)k;
        buf[n++] = '\n';
        buf[n] = '\0';
    }
    *out = buf;
    return 0;
}
