/* Several sequences of one model (adakv.h): adakv_eval_batch decodes a token of each in one pass
 * and leaves every sequence as decoding it alone would (greedy tokens equal, logits within the
 * arithmetic of an n-row batch, caches row for row); adakv_ctx_fork copies a compressed cache so
 * that answers from forks equal answers from a document compressed separately, without
 * compressing again. On the default model (llama) and on Gemma 3 (sliding-window layers). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adakv-ext.h"
#include "forward.h"
#include "kv-cache.h"
#include "test-env.h"

enum { N_SEQ = 4, N_GEN = 12, N_CTX = 640 };

static struct adakv_model *load(const char *var) {
    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {.n_threads = 0};
    struct adakv_model *m = adakv_model_load(env(var), &mp, &e);
    cr_assert_not_null(m, "%s", e.msg);
    return m;
}

static void tokens(int32_t *ids, int n, uint32_t seed) {
    for (int i = 0; i < n; i++) { /* ordinary word-piece ids, reproducible */
        seed = seed * 1664525u + 1013904223u;
        ids[i] = 300 + (int32_t)(seed >> 8) % 20000;
    }
}

static struct adakv_ctx *ctx_new(struct adakv_model *m, const char *press, const char *ratio) {
    struct adakv_err e = {{0}};
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = N_CTX;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
    cr_assert_not_null(c, "%s", e.msg);
    if (press) {
        struct adakv_press *p = adakv_press_new();
        cr_assert_eq(adakv_press_set(p, "press", press, &e), 0, "%s", e.msg);
        cr_assert_eq(adakv_press_set(p, "kv-ratio", ratio, &e), 0, "%s", e.msg);
        cr_assert_eq(adakv_ctx_set_press(c, p, false, &e), 0, "%s", e.msg);
        adakv_press_free(p);
    }
    return c;
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        best = x[i] > x[best] ? i : best;
    return best;
}

/* Every live row of a and b: same positions, and values within int8 requantization of the
 * batch's slightly different arithmetic (exact for the prompt rows, which both prefilled alike). */
static void caches_match(const struct kv_cache *a, const struct kv_cache *b) {
    cr_assert_eq(a->n_layer * a->n_head_kv, b->n_layer * b->n_head_kv);
    for (int i = 0; i < a->n_layer * a->n_head_kv; i++) {
        const struct kv_segment *x = &a->seg[i], *y = &b->seg[i];
        cr_assert_eq(x->len, y->len, "segment %d: %d rows against %d", i, x->len, y->len);
        cr_assert_eq(memcmp(x->pos, y->pos, (size_t)x->len * sizeof *x->pos), 0,
                     "segment %d keeps other positions", i);
        for (int r = 0; r < x->len; r++)
            cr_assert_float_eq(x->k_scale[r], y->k_scale[r], 0.02f * fabsf(x->k_scale[r]) + 1e-6f,
                               "segment %d row %d: key scale", i, r);
    }
}

/* N_GEN greedy steps of n sequences as one batch and of their twins alone, from the first
 * tokens next_batch / next_alone: the logits agree within tol of their largest, and the tokens are
 * equal unless the lone sequence's best two are closer than twice the logits' difference (with
 * bit-equal logits, always). */
static void decode_both(struct adakv_ctx *const *batch, struct adakv_ctx *const *alone, int n,
                        int32_t *next_batch, int32_t *next_alone, int V, float tol) {
    struct adakv_err e = {{0}};
    float *logits = malloc((size_t)n * V * sizeof *logits), *one = malloc((size_t)V * sizeof *one);
    cr_assert(logits && one);
    for (int step = 0; step < N_GEN; step++) {
        cr_assert_eq(adakv_eval_batch(batch, next_batch, n, logits, &e), 0, "%s", e.msg);
        for (int s = 0; s < n; s++) {
            cr_assert_eq(adakv_eval(alone[s], &next_alone[s], 1, one, false, &e), 0, "%s", e.msg);
            const float *row = logits + (size_t)s * V;
            float worst = 0.0f, scale = 0.0f;
            for (int i = 0; i < V; i++) {
                worst = fmaxf(worst, fabsf(row[i] - one[i]));
                scale = fmaxf(scale, fabsf(one[i]));
            }
            cr_assert_leq(worst, tol * scale, "step %d sequence %d: logits differ by %g (max %g)",
                          step, s, worst, scale);
            next_alone[s] = argmax(one, V);
            next_batch[s] = argmax(row, V);
            /* a token within the logits' difference of the runner-up may go either way: then
             * both continue with the lone sequence's token */
            float second = -INFINITY;
            for (int i = 0; i < V; i++)
                second = i != next_alone[s] && one[i] > second ? one[i] : second;
            if (one[next_alone[s]] - second <= 2.0f * worst) {
                next_batch[s] = next_alone[s];
                continue;
            }
            cr_assert_eq(next_batch[s], next_alone[s], "step %d sequence %d: token %d against %d",
                         step, s, next_batch[s], next_alone[s]);
        }
    }
    free(logits), free(one);
}

/* N_SEQ prompts of different lengths (one with an Ada-SnapKV press, compressed at prefill) are
 * decoded greedily N_GEN steps, alone and as one batch. The caches stay short enough that decoding
 * alone does not split a head's rows over the threads (attention.c): that merge rounds
 * differently (the int8 value products weigh probabilities quantized per part), so past ~1k
 * rows per layer the logits agree to ~2%, not to the bit, and near-ties may pick other tokens. */
static void batch_equals_alone(const char *model_var) {
    struct adakv_model *m = load(model_var);
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    const int V = info.n_vocab;
    struct adakv_err e = {{0}};
    static const int len[N_SEQ] = {37, 200, 5, 300};
    struct adakv_ctx *alone[N_SEQ], *batch[N_SEQ];
    int32_t next_alone[N_SEQ], next_batch[N_SEQ];
    float *one = malloc((size_t)V * sizeof *one);
    cr_assert(one);
    for (int s = 0; s < N_SEQ; s++) {
        int32_t prompt[300];
        tokens(prompt, len[s], 10u + (uint32_t)s);
        const char *press = s == 1 ? "ada-snapkv" : NULL;
        alone[s] = ctx_new(m, press, "0.5");
        batch[s] = ctx_new(m, press, "0.5");
        cr_assert_eq(adakv_eval(alone[s], prompt, len[s], one, false, &e), 0, "%s", e.msg);
        next_alone[s] = argmax(one, V);
        cr_assert_eq(adakv_eval(batch[s], prompt, len[s], one, false, &e), 0, "%s", e.msg);
        next_batch[s] = argmax(one, V);
    }
    cr_assert_lt(adakv_ctx_kv_rows(alone[1]), adakv_ctx_kv_rows(alone[0]) * 200 / 37,
                 "the press did not compress");
    decode_both(batch, alone, N_SEQ, next_batch, next_alone, V, 0.02f);
    for (int s = 0; s < N_SEQ; s++) {
        cr_assert_eq(adakv_ctx_n_past(batch[s]), len[s] + N_GEN);
        caches_match(adakv_ctx_kv(alone[s]), adakv_ctx_kv(batch[s]));
        adakv_ctx_free(alone[s]), adakv_ctx_free(batch[s]);
    }
    free(one);
    adakv_model_free(m);
}

Test(batch, equals_alone_llama, .timeout = 300) {
    batch_equals_alone("ADAKV_MODEL");
}

Test(batch, equals_alone_gemma3_sliding_window, .timeout = 300) {
    batch_equals_alone("ADAKV_GEMMA3_MODEL");
}

Test(batch, refuses_bad_batches, .timeout = 120) {
    struct adakv_model *m = load("ADAKV_MODEL");
    struct adakv_err e = {{0}};
    struct adakv_ctx *a = ctx_new(m, NULL, NULL), *b = ctx_new(m, NULL, NULL);
    int32_t t[2] = {300, 301};
    struct adakv_ctx *twice[2] = {a, a}, *pair[2] = {a, b}, *hole[2] = {a, NULL};
    cr_assert_eq(adakv_eval_batch(twice, t, 2, NULL, &e), -1);
    cr_assert(strstr(e.msg, "sequence 1 is sequence 0 again"), "%s", e.msg);
    cr_assert_eq(adakv_eval_batch(hole, t, 2, NULL, &e), -1);
    cr_assert(strstr(e.msg, "sequence 1 is NULL"), "%s", e.msg);
    int32_t bad[2] = {300, -1};
    cr_assert_eq(adakv_eval_batch(pair, bad, 2, NULL, &e), -1);
    cr_assert(strstr(e.msg, "sequence 1"), "%s", e.msg);
    cr_assert_eq(adakv_eval_batch(pair, t, 0, NULL, &e), -1);
    /* a full sequence is refused before anything runs; the other is left untouched */
    int32_t fill[N_CTX];
    tokens(fill, N_CTX, 3);
    cr_assert_eq(adakv_eval(b, fill, N_CTX, NULL, false, &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_eval_batch(pair, t, 2, NULL, &e), -1);
    cr_assert(strstr(e.msg, "sequence 1 is full"), "%s", e.msg);
    cr_assert_eq(adakv_ctx_n_past(a), 0);
    cr_assert_eq(adakv_eval_batch(pair, t, 1, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_ctx_n_past(a), 1);
    adakv_ctx_free(a), adakv_ctx_free(b);
    adakv_model_free(m);
}

/* One document compressed once (Ada-SnapKV keeps 20%, question-agnostic: the press is off for
 * the questions), three questions answered from forks; each answer equals the one from the
 * document compressed separately for that question, and the forks spend no press time. */
Test(batch, fork_answers_like_a_fresh_compression, .timeout = 300) {
    struct adakv_model *m = load("ADAKV_MODEL");
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    const int V = info.n_vocab;
    struct adakv_err e = {{0}};
    enum { DOC = 500, Q = 9, ANS = 8 };
    int32_t doc[DOC];
    tokens(doc, DOC, 7);
    float *logits = malloc((size_t)V * sizeof *logits);
    cr_assert_not_null(logits);
    struct adakv_ctx *base = ctx_new(m, "ada-snapkv", "0.8");
    cr_assert_eq(adakv_eval(base, doc, DOC, NULL, false, &e), 0, "%s", e.msg);
    adakv_ctx_press_enable(base, false);
    const size_t rows = adakv_ctx_kv_rows(base);
    cr_assert_lt(rows, (size_t)DOC * info.n_layer * info.n_head_kv / 4, "20%% kept: %zu", rows);
    for (int qi = 0; qi < 3; qi++) {
        int32_t q[Q], a_fork[ANS], a_fresh[ANS];
        tokens(q, Q, 100u + (uint32_t)qi);
        /* earlier forks answered without touching the document */
        cr_assert_eq(adakv_ctx_n_past(base), DOC);
        cr_assert_eq(adakv_ctx_kv_rows(base), rows);
        struct adakv_ctx *f = adakv_ctx_fork(base, &e);
        cr_assert_not_null(f, "%s", e.msg);
        cr_assert_eq(adakv_ctx_n_past(f), DOC);
        cr_assert_eq(adakv_ctx_kv_rows(f), rows);
        cr_assert_eq(adakv_ctx_press_seconds(f), 0.0, "the fork compressed again");
        /* the fork's memory is its cache: the scratch is the document's */
        cr_assert_eq(adakv_ctx_kv_bytes(f) <= adakv_ctx_kv_bytes(base), 1);
        cr_assert_eq(f->x, base->x, "the fork allocated its own scratch");
        struct adakv_ctx *fresh = ctx_new(m, "ada-snapkv", "0.8");
        cr_assert_eq(adakv_eval(fresh, doc, DOC, NULL, false, &e), 0, "%s", e.msg);
        adakv_ctx_press_enable(fresh, false);
        struct adakv_ctx *both[2] = {f, fresh};
        int32_t *ans[2] = {a_fork, a_fresh};
        for (int w = 0; w < 2; w++) {
            cr_assert_eq(adakv_eval(both[w], q, Q, logits, false, &e), 0, "%s", e.msg);
            for (int i = 0; i < ANS; i++) {
                ans[w][i] = argmax(logits, V);
                cr_assert_eq(adakv_eval(both[w], &ans[w][i], 1, logits, false, &e), 0, "%s", e.msg);
            }
        }
        cr_assert_eq(memcmp(a_fork, a_fresh, sizeof a_fork), 0, "question %d: other answer", qi);
        caches_match(adakv_ctx_kv(f), adakv_ctx_kv(fresh));
        /* the question's prefill passes the (disabled) press hook, which costs nothing */
        cr_assert_lt(adakv_ctx_press_seconds(f), adakv_ctx_press_seconds(fresh) / 10,
                     "the fork compressed the question");
        if (qi < 2) {
            adakv_ctx_free(f), adakv_ctx_free(fresh);
            continue;
        }
        /* the document goes first: the last fork still holds the shared scratch */
        adakv_ctx_free(base);
        base = NULL;
        cr_assert_eq(adakv_eval(f, q, 1, logits, false, &e), 0, "%s", e.msg);
        adakv_ctx_free(f), adakv_ctx_free(fresh);
    }
    free(logits);
    adakv_model_free(m);
}

/* A fork keeps its parent's decode-time policy: with --kv-max 80 the fork's heads never pass
 * 80 rows while it decodes, and the parent's recent queries came along (the fork evicts exactly
 * as the parent would: the same rows kept after the same steps). */
Test(batch, fork_keeps_the_decode_cap, .timeout = 300) {
    struct adakv_model *m = load("ADAKV_MODEL");
    struct adakv_err e = {{0}};
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = 256;
    struct adakv_ctx *a = adakv_ctx_new(m, &cp, &e);
    cr_assert_not_null(a, "%s", e.msg);
    struct adakv_press *p = adakv_press_new();
    cr_assert_eq(adakv_press_set(p, "press", "ada-snapkv", &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_press_set(p, "kv-max", "80", &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_ctx_set_press(a, p, false, &e), 0, "%s", e.msg);
    adakv_press_free(p);
    int32_t prompt[70], t = 400;
    tokens(prompt, 70, 5);
    cr_assert_eq(adakv_eval(a, prompt, 70, NULL, false, &e), 0, "%s", e.msg);
    for (int i = 0; i < 5; i++) /* some recent queries recorded before the fork */
        cr_assert_eq(adakv_eval(a, &t, 1, NULL, false, &e), 0, "%s", e.msg);
    struct adakv_ctx *f = adakv_ctx_fork(a, &e);
    cr_assert_not_null(f, "%s", e.msg);
    for (int step = 0; step < 40; step++) {
        t = 500 + step;
        cr_assert_eq(adakv_eval(a, &t, 1, NULL, false, &e), 0, "%s", e.msg);
        cr_assert_eq(adakv_eval(f, &t, 1, NULL, false, &e), 0, "%s", e.msg);
        const struct kv_cache *ka = adakv_ctx_kv(a), *kf = adakv_ctx_kv(f);
        for (int i = 0; i < kf->n_layer * kf->n_head_kv; i++) {
            cr_assert_leq(kf->seg[i].len, 80, "step %d segment %d: %d rows", step, i,
                          kf->seg[i].len);
            cr_assert_eq(kf->seg[i].len, ka->seg[i].len, "step %d segment %d", step, i);
            cr_assert_eq(memcmp(kf->seg[i].pos, ka->seg[i].pos,
                                (size_t)kf->seg[i].len * sizeof *kf->seg[i].pos),
                         0, "step %d segment %d keeps other rows", step, i);
        }
    }
    adakv_ctx_free(a), adakv_ctx_free(f);
    adakv_model_free(m);
}

/* Forks of one document decoded together read the document's rows once (kv_cache_share and
 * attention.c's shared-row pass) and still decode as each fork alone: the full cache and
 * Ada-SnapKV at 50%, each fork with its own question, one fork rewound into the document (fewer
 * shared rows for its group), and a sequence of its own in the same batch. The document is
 * short enough that decoding alone does not split heads over the threads (see above). */
Test(batch, forks_read_the_document_once, .timeout = 300) {
    struct adakv_model *m = load("ADAKV_MODEL");
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    const int V = info.n_vocab;
    struct adakv_err e = {{0}};
    enum { DOC = 300, Q = 7, NF = 5, N = NF + 1 };
    int32_t doc[DOC], q[Q];
    tokens(doc, DOC, 3);
    float *one = malloc((size_t)V * sizeof *one);
    cr_assert_not_null(one);
    for (int variant = 0; variant < 2; variant++) {
        struct adakv_ctx *base = ctx_new(m, variant ? "ada-snapkv" : NULL, "0.5");
        cr_assert_eq(adakv_eval(base, doc, DOC, NULL, false, &e), 0, "%s", e.msg);
        adakv_ctx_press_enable(base, false);
        struct adakv_ctx *batch[N], *alone[N];
        int32_t next_batch[N], next_alone[N];
        for (int s = 0; s < N; s++) {
            struct adakv_ctx *pair[2];
            for (int w = 0; w < 2; w++) {
                pair[w] = s < NF ? adakv_ctx_fork(base, &e) : ctx_new(m, NULL, NULL);
                cr_assert_not_null(pair[w], "%s", e.msg);
                if (s == 3)
                    cr_assert_eq(adakv_ctx_rewind(pair[w], DOC - 100, &e), 0, "%s", e.msg);
                if (s == NF)
                    cr_assert_eq(adakv_eval(pair[w], doc, 90, NULL, false, &e), 0, "%s", e.msg);
                tokens(q, Q, 200u + (uint32_t)s);
                cr_assert_eq(adakv_eval(pair[w], q, Q, one, false, &e), 0, "%s", e.msg);
            }
            batch[s] = pair[0], alone[s] = pair[1];
            next_batch[s] = next_alone[s] = argmax(one, V);
        }
        const struct kv_cache *k0 = adakv_ctx_kv(batch[0]), *k3 = adakv_ctx_kv(batch[3]);
        cr_assert_neq(k0->epoch, 0u, "a fork does not know its rows are the document's");
        cr_assert_eq(k0->epoch, k3->epoch);
        cr_assert_eq(adakv_ctx_kv(batch[NF])->epoch, 0u);
        int sharing = 0; /* heads whose group reads enough common rows for the shared pass */
        for (int i = 0; i < k0->n_layer * k0->n_head_kv; i++) {
            cr_assert_leq(k3->seg[i].shared, k0->seg[i].shared);
            sharing += k3->seg[i].shared >= 64;
        }
        cr_assert_gt(sharing, k0->n_layer * k0->n_head_kv / 2, "%d heads share rows", sharing);
        /* The shared rows go through the fused kernel (int16 queries and weights rounded in other
         * groups than the decode kernels'): attention outputs agree to ~1e-3, and the 8-bit
         * activations of the later matmuls turn that into up to ~3% of the logits (as splitting
         * a head over the threads does, above). */
        decode_both(batch, alone, N, next_batch, next_alone, V, 0.04f);
        /* appends keep the shared rows; the document kept its rows and its epoch */
        cr_assert_eq(k0->seg[0].shared, adakv_ctx_kv(base)->seg[0].len);
        cr_assert_eq(adakv_ctx_kv(base)->epoch, k0->epoch);
        adakv_ctx_reset(batch[0]);
        cr_assert_eq(k0->epoch, 0u, "a reset cache still claims the document's rows");
        for (int s = 0; s < N; s++)
            adakv_ctx_free(batch[s]), adakv_ctx_free(alone[s]);
        adakv_ctx_free(base);
    }
    free(one);
    adakv_model_free(m);
}
