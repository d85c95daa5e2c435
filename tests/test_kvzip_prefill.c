/* adakv_ctx_prefill_kvzip (adakv.h) on the default model: the reconstruction leaves no trace
 * (no row of it in any layer, the position counter back at the context's end), the budget and
 * the sinks hold, decoding continues at the right position, a budget that evicts nothing leaves
 * exactly the cache of a plain prefill, and the kvzip press refuses a plain adakv_eval. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "adakv-ext.h"
#include "kv-cache.h"
#include "kv-fixture.h"
#include "kv-policy.h"
#include "test-env.h"

enum { N_CTX = 300, N_REC = 120 };

static struct adakv_model *model(void) {
    static struct adakv_model *m;
    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {.n_threads = 0};
    if (!m)
        m = adakv_model_load(env("ADAKV_MODEL"), &mp, &e);
    cr_assert_not_null(m, "%s", e.msg);
    return m;
}

static void tokens(int32_t *ids, int n, uint32_t seed) {
    for (int i = 0; i < n; i++) { /* ordinary word-piece ids, reproducible */
        seed = seed * 1664525u + 1013904223u;
        ids[i] = 300 + (int32_t)(seed >> 8) % 20000;
    }
}

static struct adakv_ctx *ctx_with(const char *press, const char *budget_flag, const char *value) {
    struct adakv_err e = {{0}};
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = N_CTX + N_REC + 8;
    struct adakv_ctx *c = adakv_ctx_new(model(), &cp, &e);
    cr_assert_not_null(c, "%s", e.msg);
    struct adakv_press *p = adakv_press_new();
    cr_assert_eq(adakv_press_set(p, "press", press, &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_press_set(p, budget_flag, value, &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_ctx_set_press(c, p, false, &e), 0, "%s", e.msg);
    adakv_press_free(p);
    return c;
}

Test(kvzip_prefill, reconstruction_leaves_no_trace, .timeout = 300) {
    int32_t ctx[N_CTX], rec[N_REC];
    tokens(ctx, N_CTX, 1);
    tokens(rec, N_REC, 2);
    struct adakv_err e = {{0}};
    struct adakv_ctx *c = ctx_with("kvzip", "kv-ratio", "0.5");
    cr_assert_eq(adakv_ctx_prefill_kvzip(c, ctx, N_CTX, rec, N_REC, &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_ctx_n_past(c), N_CTX);
    const struct kv_cache *kv = adakv_ctx_kv(c);
    for (int l = 0; l < kv->n_layer; l++)
        for (int g = 0; g < kv->n_head_kv; g++) {
            const struct kv_segment *s = kv_cache_seg(kv, l, g);
            cr_assert_eq(s->len, N_CTX / 2, "layer %d head %d keeps %d", l, g, s->len);
            for (int i = 0; i < s->len; i++)
                cr_assert_lt(s->pos[i], N_CTX, "layer %d head %d: reconstruction row", l, g);
            for (int i = 0; i < 4; i++)
                cr_assert_eq(s->pos[i], i, "layer %d head %d: sink %d evicted", l, g, i);
        }
    /* the next token takes position N_CTX, after the compressed context */
    adakv_ctx_press_enable(c, false);
    static float logits[1 << 18];
    cr_assert_eq(adakv_eval(c, &ctx[0], 1, logits, false, &e), 0, "%s", e.msg);
    const struct kv_segment *s0 = kv_cache_seg(kv, 0, 0);
    cr_assert_eq(s0->pos[s0->len - 1], N_CTX);
    adakv_ctx_free(c);
}

/* A budget above the context evicts nothing: the reconstruction ran through the same layer-major
 * batch, yet the context's rows are exactly those a plain prefill stores (causal attention:
 * later tokens never change an earlier row). */
Test(kvzip_prefill, nothing_evicted_equals_a_plain_prefill, .timeout = 300) {
    int32_t ctx[N_CTX], rec[N_REC];
    tokens(ctx, N_CTX, 3);
    tokens(rec, N_REC, 4);
    struct adakv_err e = {{0}};
    struct adakv_ctx *a = ctx_with("kvzip", "kv-budget", "100000");
    struct adakv_ctx *b = ctx_with("full", "kv-ratio", "0");
    cr_assert_eq(adakv_ctx_prefill_kvzip(a, ctx, N_CTX, rec, N_REC, &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_eval(b, ctx, N_CTX, NULL, false, &e), 0, "%s", e.msg);
    const struct kv_cache *ka = adakv_ctx_kv(a), *kb = adakv_ctx_kv(b);
    for (int i = 0; i < ka->n_layer * ka->n_head_kv; i++) {
        const struct kv_segment *sa = &ka->seg[i], *sb = &kb->seg[i];
        cr_assert_eq(sa->len, N_CTX);
        cr_assert_eq(sb->len, N_CTX);
        cr_assert_eq(memcmp(sa->pos, sb->pos, N_CTX * sizeof *sa->pos), 0);
        cr_assert_eq(memcmp(sa->k, sb->k, (size_t)N_CTX * ka->head_dim), 0, "segment %d keys", i);
        cr_assert_eq(memcmp(sa->v, sb->v, (size_t)N_CTX * ka->head_dim), 0, "segment %d values", i);
    }
    adakv_ctx_free(a);
    adakv_ctx_free(b);
}

Test(kvzip_prefill, plain_eval_is_refused_and_other_presses_ignore_rec, .timeout = 300) {
    int32_t ctx[N_CTX], rec[N_REC];
    tokens(ctx, N_CTX, 5);
    tokens(rec, N_REC, 6);
    struct adakv_err e = {{0}};
    struct adakv_ctx *c = ctx_with("kvzip", "kv-ratio", "0.5");
    cr_assert_neq(adakv_eval(c, ctx, N_CTX, NULL, false, &e), 0);
    cr_assert(strstr(e.msg, "adakv_ctx_prefill_kvzip"), "%s", e.msg);
    adakv_ctx_free(c);
    c = ctx_with("snapkv", "kv-ratio", "0.5"); /* rec ignored: a plain compressed prefill */
    cr_assert_eq(adakv_ctx_prefill_kvzip(c, ctx, N_CTX, rec, N_REC, &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_ctx_n_past(c), N_CTX);
    cr_assert_eq(kv_cache_seg(adakv_ctx_kv(c), 0, 0)->len, N_CTX / 2);
    adakv_ctx_free(c);
}

/* KVzip's Ada-KV split has no uniform floor unless --alpha says (kvpress's KVzip uses none);
 * the other presses keep the 0.2 default. */
Test(kvzip_prefill, kvzip_alpha_defaults_to_zero) {
    const char *cases[][3] = {{"ada-kvzip", NULL, "alpha 0.00"},
                              {"ada-kvzip", "0.3", "alpha 0.30"},
                              {"ada-snapkv", NULL, "alpha 0.20"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct adakv_err e = {{0}};
        struct adakv_press *p = adakv_press_new();
        cr_assert_eq(adakv_press_set(p, "press", cases[i][0], &e), 0, "%s", e.msg);
        cr_assert_eq(adakv_press_set(p, "kv-ratio", "0.5", &e), 0, "%s", e.msg);
        if (cases[i][1])
            cr_assert_eq(adakv_press_set(p, "alpha", cases[i][1], &e), 0, "%s", e.msg);
        char buf[256];
        adakv_press_describe(p, buf, sizeof buf);
        cr_assert(strstr(buf, cases[i][2]), "%s: '%s'", cases[i][0], buf);
        adakv_press_free(p);
    }
}

/* The forward pass leaves each window query's log-sum-exp over the rows it saw beside the window
 * (kv_policy_window_lse), which the KVzip scorer takes instead of a sweep of its own: checked in
 * every layer against the scores recomputed from the window queries and the stored keys, for a
 * batch inside one prompt chunk and one whose last token is a one-row chunk (513 = 512 + 1). */
struct lse_probe {
    struct adakv_ctx *c;
    const struct kv_rec_pieces *rp; /* KVzip's pieces (each copy query sees its piece), or NULL */
    int n_head, head_dim, layers;
    int32_t pos0; /* the first window row's position */
    double worst;
    int changed, pieced; /* with pieces: lse off the whole context's; copy queries (layer 0) */
};

static int check_lse(void *user, struct kv_cache *kv, int layer, const float *q_window,
                     int n_window, struct adakv_err *e) {
    (void)e;
    struct lse_probe *p = user;
    const float *lse = kv_policy_window_lse(p->c);
    const int group = p->n_head / kv->n_head_kv;
    for (int t = 0; t < n_window; t++) {
        const int32_t pos = p->pos0 + t, k = kv_rec_piece(p->rp, pos);
        int32_t lo[KV_REC_RANGES], hi[KV_REC_RANGES];
        const int nr = k < 0 ? 0 : kv_rec_ranges(p->rp, k, lo, hi);
        p->pieced += k >= 0 && layer == 0;
        for (int h = 0; h < p->n_head; h++) {
            const float *q = q_window + ((size_t)t * p->n_head + h) * p->head_dim;
            const double want = fx_row_lse_in(kv, layer, h / group, q, pos, lo, hi, nr);
            const double diff = fabs(lse[(size_t)t * p->n_head + h] - want);
            p->worst = diff > p->worst ? diff : p->worst;
            if (k >= 0)
                p->changed += fabs(fx_row_lse(kv, layer, h / group, q, pos) - want) > 0.01;
        }
    }
    p->layers++;
    return 0;
}

Test(kvzip_prefill, forward_pass_leaves_the_window_log_sum_exps, .timeout = 300) {
    const int lens[] = {40, 513}, window = 16;
    for (int li = 0; li < 2; li++) {
        const int n = lens[li];
        int32_t ids[513];
        tokens(ids, n, 7);
        struct adakv_err e = {{0}};
        struct adakv_ctx_params cp;
        adakv_ctx_params_default(&cp);
        cp.n_ctx = 600;
        cp.window = window;
        struct adakv_ctx *c = adakv_ctx_new(model(), &cp, &e);
        cr_assert_not_null(c, "%s", e.msg);
        struct adakv_model_info mi;
        adakv_model_get_info(model(), &mi);
        struct lse_probe p = {c, NULL, mi.n_head, mi.head_dim, 0, n - window, 0.0, 0, 0};
        adakv_ctx_set_compress(c, check_lse, &p);
        cr_assert_eq(adakv_eval(c, ids, n, NULL, false, &e), 0, "%s", e.msg);
        cr_assert_eq(p.layers, mi.n_layer);
        /* the kernel rounds each query to int16: scores move by ~1e-4 here */
        cr_assert_lt(p.worst, 2e-3, "%d tokens: a window log-sum-exp is off by %g", n, p.worst);
        adakv_ctx_free(c);
    }
}

/* KVzip in pieces (kv-rec-pieces.h): where the policy installs a plan, as adakv_ctx_prefill_kvzip
 * does for rec-chunk, each copy query's log-sum-exp in every layer covers only its piece's rows
 * (the sinks, its piece of the context, the repeat prompt and its part of the copy), recomputed
 * here from the stored keys; for int8 rows (the fused kernel) and f16 rows (the fold); over a
 * batch of two prompt chunks (620 = 512 + 108); and the masks matter (the whole context's
 * log-sum-exp differs). */
Test(kvzip_prefill, pieces_attend_only_to_their_rows, .timeout = 300) {
    enum { CTX = 300, LEAD = 20, REC = LEAD + CTX };
    int32_t ids[CTX + REC];
    tokens(ids, CTX, 11);
    tokens(ids + CTX, LEAD, 12);
    memcpy(ids + CTX + LEAD, ids, CTX * sizeof *ids); /* the copy */
    const struct kv_rec_pieces rp = {.piece = 64,
                                     .head_end = 4,
                                     .ctx0 = 0,
                                     .ctx_end = CTX,
                                     .rec0 = CTX,
                                     .lead_end = CTX + LEAD,
                                     .rec_end = CTX + REC,
                                     .shift = REC,
                                     .overlap = KVZIP_PIECE_OVERLAP};
    const enum adakv_kv_type types[] = {ADAKV_KV_INT8, ADAKV_KV_F16};
    for (int ti = 0; ti < 2; ti++) {
        struct adakv_err e = {{0}};
        struct adakv_ctx_params cp;
        adakv_ctx_params_default(&cp);
        cp.n_ctx = CTX + REC;
        cp.window = REC;
        cp.kv_type = types[ti];
        struct adakv_ctx *c = adakv_ctx_new(model(), &cp, &e);
        cr_assert_not_null(c, "%s", e.msg);
        struct adakv_model_info mi;
        adakv_model_get_info(model(), &mi);
        struct lse_probe p = {c, &rp, mi.n_head, mi.head_dim, 0, rp.rec0, 0.0, 0, 0};
        adakv_ctx_set_compress(c, check_lse, &p);
        kv_policy_set_rec_pieces(c, &rp);
        cr_assert_eq(adakv_eval(c, ids, CTX + REC, NULL, false, &e), 0, "%s", e.msg);
        cr_assert_eq(p.layers, mi.n_layer);
        cr_assert_eq(p.pieced, CTX, "copy queries in pieces: %d", p.pieced);
        /* most copy queries' pieces hide rows they would attend to */
        cr_assert_gt(p.changed, mi.n_layer * mi.n_head * CTX / 2, "type %d: %d changed", ti,
                     p.changed);
        cr_assert_lt(p.worst, 2e-3, "type %d: a piece's log-sum-exp is off by %g", ti, p.worst);
        adakv_ctx_free(c);
    }
}

/* The ranges of kv-rec-pieces.h on a hand-worked plan: context [0, 300) in pieces of 64, sinks
 * [0, 4), repeat prompt [300, 320), copy [320, 620) repeating row p - 320. */
Test(kvzip_prefill, piece_ranges_by_hand) {
    const struct kv_rec_pieces rp = {.piece = 64,
                                     .head_end = 4,
                                     .ctx0 = 0,
                                     .ctx_end = 300,
                                     .rec0 = 300,
                                     .lead_end = 320,
                                     .rec_end = 620,
                                     .shift = 320,
                                     .overlap = 8};
    cr_assert_eq(kv_rec_piece(&rp, 299), -1); /* the context */
    cr_assert_eq(kv_rec_piece(&rp, 319), -1); /* the repeat prompt */
    cr_assert_eq(kv_rec_piece(&rp, 320), 0);
    cr_assert_eq(kv_rec_piece(&rp, 320 + 63), 0);
    cr_assert_eq(kv_rec_piece(&rp, 320 + 64), 1);
    cr_assert_eq(kv_rec_piece(&rp, 619), 4);
    cr_assert_eq(kv_rec_piece(&rp, 620), -1); /* after the copy (a question) */
    int32_t lo[KV_REC_RANGES], hi[KV_REC_RANGES];
    /* piece 0: the head joins the piece, the prompt joins the copy */
    cr_assert_eq(kv_rec_ranges(&rp, 0, lo, hi), 2);
    cr_assert(lo[0] == 0 && hi[0] == 64 && lo[1] == 300 && hi[1] == 620);
    /* piece 2: rows 128..192, the copy from 8 rows before its own start (320 + 128 - 8) */
    cr_assert_eq(kv_rec_ranges(&rp, 2, lo, hi), 4);
    cr_assert(lo[0] == 0 && hi[0] == 4 && lo[1] == 128 && hi[1] == 192);
    cr_assert(lo[2] == 300 && hi[2] == 320 && lo[3] == 440 && hi[3] == 620);
    /* the last piece ends with the context, so it joins the repeat prompt */
    cr_assert_eq(kv_rec_ranges(&rp, 4, lo, hi), 3);
    cr_assert(lo[1] == 256 && hi[1] == 320 && lo[2] == 568 && hi[2] == 620);
    /* a copy shifted onto the context's start (no repeat prompt: chat-templated callers) maps its
     * first queries to piece 0, and a query past the context's end to the last piece */
    const struct kv_rec_pieces short_rec = {.piece = 64,
                                            .head_end = 4,
                                            .ctx0 = 0,
                                            .ctx_end = 300,
                                            .rec0 = 300,
                                            .lead_end = 300,
                                            .rec_end = 400,
                                            .shift = 100,
                                            .overlap = 8};
    cr_assert_eq(kv_rec_piece(&short_rec, 300), 3); /* row 200 */
    cr_assert_eq(kv_rec_piece(&short_rec, 399), 4); /* row 299 */
}

/* The press option reaches the engine: the same context and reconstruction compressed with
 * rec-chunk 64 (five pieces) and 0 (one) keep different rows, each within its budget and with
 * its sinks, and a piece longer than the context is one piece (the same rows as 0). */
static void kept_with(const char *rec_chunk, const int32_t *ctx, const int32_t *rec,
                      int32_t *pos_out) {
    struct adakv_err e = {{0}};
    struct adakv_ctx *c = ctx_with("ada-kvzip", "kv-ratio", "0.5");
    struct adakv_press *p = adakv_press_new();
    cr_assert_eq(adakv_press_set(p, "press", "ada-kvzip", &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_press_set(p, "kv-ratio", "0.5", &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_press_set(p, "rec-chunk", rec_chunk, &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_ctx_set_press(c, p, false, &e), 0, "%s", e.msg);
    adakv_press_free(p);
    cr_assert_eq(adakv_ctx_prefill_kvzip(c, ctx, N_CTX, rec, N_REC, &e), 0, "%s", e.msg);
    const struct kv_cache *kv = adakv_ctx_kv(c);
    int total = 0;
    for (int i = 0; i < kv->n_layer * kv->n_head_kv; i++) {
        const struct kv_segment *s = &kv->seg[i];
        for (int j = 0; j < N_CTX; j++)
            pos_out[(size_t)i * N_CTX + j] = -1;
        for (int j = 0; j < s->len; j++)
            pos_out[(size_t)i * N_CTX + j] = s->pos[j];
        for (int j = 0; j < 4; j++)
            cr_assert_eq(s->pos[j], j, "rec-chunk %s segment %d: sink %d evicted", rec_chunk, i, j);
        total += s->len;
    }
    cr_assert_eq(total, kv->n_layer * kv->n_head_kv * N_CTX / 2, "rec-chunk %s", rec_chunk);
    adakv_ctx_free(c);
}

Test(kvzip_prefill, rec_chunk_changes_what_is_kept, .timeout = 300) {
    int32_t ctx[N_CTX], rec[N_REC];
    tokens(ctx, N_CTX, 13);
    tokens(rec, 20, 14);
    memcpy(rec + 20, ctx + N_CTX - (N_REC - 20), (N_REC - 20) * sizeof *rec);
    struct adakv_model_info mi;
    adakv_model_get_info(model(), &mi);
    const size_t n = (size_t)mi.n_layer * mi.n_head_kv * N_CTX;
    int32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *w = malloc(n * sizeof *w);
    kept_with("64", ctx, rec, a);
    kept_with("0", ctx, rec, b);
    kept_with("4096", ctx, rec, w);
    cr_assert_neq(memcmp(a, b, n * sizeof *a), 0, "pieces of 64 kept the rows of one piece");
    cr_assert_eq(memcmp(w, b, n * sizeof *w), 0, "a piece longer than the context changed rows");
    free(a), free(b), free(w);
}
