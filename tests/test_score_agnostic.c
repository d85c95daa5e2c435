/* The question-agnostic scorers (kv-score.h): KVzip's reconstruction maximum and Expected
 * Attention, each against a naive double-precision reference written from the papers' / kvpress's
 * formulas, on hand-built cases whose row ranking is known, and through the press hook. */
#include <criterion/criterion.h>
#include <math.h>

#include "key-rotation.h"
#include "kv-fixture.h"
#include "kv-press.h"
#include "kv-score.h"

static const struct simd_ops *const *tables(int *n) {
    static const struct simd_ops *t[2];
    t[0] = simd_ops_scalar();
    t[1] = simd_ops_best();
    *n = 2;
    return t;
}

static void key_row(const struct kv_cache *kv, int g, int j, float *out) {
    const struct kv_segment *s = kv_cache_seg(kv, 0, g);
    kv_row_to_f32(kv->type, s->k, s->k_scale, j, kv->head_dim, out);
}

/* ---------------------------------------------------------------- KVzip */

/* KVzip in pieces (kv-rec-pieces.h), written here from its definition rather than from the
 * header's ranges: a copy query (position p >= lead_end) repeats context row
 * a = clamp(p - shift) and sees the sinks, the context rows of a's piece, the repeat prompt, and
 * the copy from `overlap` rows before the piece's first copy row up to itself. rp NULL: every
 * row up to p. */
static bool naive_piece_sees(const struct kv_rec_pieces *rp, int32_t p, int32_t j) {
    if (!rp || p < rp->lead_end || p >= rp->rec_end)
        return j <= p;
    int32_t a = p - rp->shift;
    a = a < rp->ctx0 ? rp->ctx0 : a >= rp->ctx_end ? rp->ctx_end - 1 : a;
    const int32_t first = rp->ctx0 + (a - rp->ctx0) / rp->piece * rp->piece;
    return j < rp->head_end || (j >= first && j < first + rp->piece && j < rp->ctx_end) ||
           (j >= rp->rec0 && j < rp->lead_end) ||
           (j >= first + rp->shift - rp->overlap && j >= rp->lead_end && j <= p);
}

/* Over queries [t_begin, t_end) of the n_rep (query t at position n_ctx + t; every head's rows
 * at positions 0 .. len - 1): each row's largest probability, or with `sum` the sum of its
 * probabilities (the question's side of the question-aware score), over the rows each query sees
 * (naive_piece_sees); lse, if not NULL: each query's log-sum-exp ([n_rep][n_head]). */
static void naive_kvzip_part(const struct kv_cache *kv, int g, const float *q, int n_rep,
                             int n_head, int t_begin, int t_end, bool sum_mode,
                             const struct kv_rec_pieces *rp, double *out, float *lse) {
    const int d = kv->head_dim, group = n_head / kv->n_head_kv;
    const int len = kv_cache_seg(kv, 0, g)->len, n_ctx = len - n_rep;
    double *z = malloc((size_t)len * sizeof *z);
    float k[256];
    for (int j = 0; j < n_ctx; j++)
        out[j] = 0.0;
    for (int hh = 0; hh < group; hh++)
        for (int t = t_begin; t < t_end; t++) {
            const float *qt = q + ((size_t)t * n_head + g * group + hh) * d;
            const int32_t p = n_ctx + t;
            double m = -INFINITY, sum = 0.0;
            for (int j = 0; j <= p; j++) {
                key_row(kv, g, j, k);
                double dot = 0.0;
                for (int i = 0; i < d; i++)
                    dot += (double)qt[i] * k[i];
                z[j] = naive_piece_sees(rp, p, j) ? dot / sqrt((double)d) : -INFINITY;
                m = z[j] > m ? z[j] : m;
            }
            for (int j = 0; j <= p; j++)
                sum += exp(z[j] - m);
            if (lse)
                lse[(size_t)t * n_head + g * group + hh] = (float)(m + log(sum));
            for (int j = 0; j < n_ctx; j++) {
                const double pr = exp(z[j] - m) / sum;
                out[j] = sum_mode ? out[j] + pr : pr > out[j] ? pr : out[j];
            }
        }
    free(z);
}

static void naive_kvzip(const struct kv_cache *kv, int g, const float *q, int n_rep, int n_head,
                        double *out) {
    naive_kvzip_part(kv, g, q, n_rep, n_head, 0, n_rep, false, NULL, out, NULL);
}

/* lse[t][h]: reconstruction query t's log-sum-exp over the rows it sees, as the forward pass
 * hands it to the hook. */
static void naive_lse(const struct kv_cache *kv, const float *q, int n_rep, int n_head,
                      float *lse) {
    const int d = kv->head_dim, group = n_head / kv->n_head_kv;
    for (int h = 0; h < n_head; h++) {
        const int len = kv_cache_seg(kv, 0, h / group)->len; /* the fixture's rows: pos = index */
        for (int t = 0; t < n_rep; t++)
            lse[(size_t)t * n_head + h] = (float)fx_row_lse(
                kv, 0, h / group, q + ((size_t)t * n_head + h) * d, len - n_rep + t);
    }
}

Test(score_agnostic, kvzip_matches_naive_reference) {
    const enum kv_type types[] = {KV_TYPE_INT8, KV_TYPE_F16, KV_TYPE_F32};
    int n_tab;
    const struct simd_ops *const *tab = tables(&n_tab);
    for (int trial = 0; trial < 9; trial++) {
        const enum kv_type t = types[trial % 3];
        const int n_kv = 1 + trial % 3, group = 1 + (trial / 3) % 3, n_head = n_kv * group;
        const int d = 16 + 3 * trial, n_rep = 1 + 17 * trial % 70; /* 1 .. 69: tails of 32 */
        int len[3];
        for (int g = 0; g < n_kv; g++)
            len[g] = n_rep + 1 + (int)(fx_u32() % 90);
        struct kv_cache kv;
        fx_cache(&kv, t, 1, n_kv, d, len);
        float *q = malloc((size_t)n_rep * n_head * d * sizeof *q);
        for (int i = 0; i < n_rep * n_head * d; i++)
            q[i] = 2.0f * fx_unif();
        int32_t off[4];
        struct adakv_err e;
        cr_assert_eq(kv_score_layout(&kv, 0, n_rep, off, &e), 0);
        float *got = malloc((size_t)(off[n_kv] + 1) * sizeof *got);
        /* the naive maxima, then normalized over the layer's rows as kv_score_kvzip returns them */
        double *want = malloc((size_t)(off[n_kv] + 1) * sizeof *want), sum = 0.0;
        for (int g = 0; g < n_kv; g++)
            naive_kvzip(&kv, g, q, n_rep, n_head, want + off[g]);
        for (int j = 0; j < off[n_kv]; j++)
            sum += want[j];
        /* and with the queries' log-sum-exps given, as the forward pass passes them */
        float *lse = malloc((size_t)n_rep * n_head * sizeof *lse);
        naive_lse(&kv, q, n_rep, n_head, lse);
        for (int ti = 0; ti < n_tab; ti++)
            for (int given = 0; given < 2; given++) {
                cr_assert_eq(kv_score_kvzip(tab[ti], &kv, 0, q, given ? lse : NULL, NULL, n_rep, 0,
                                            n_head, off, got, &e),
                             0);
                for (int j = 0; j < off[n_kv]; j++)
                    cr_assert(fabs(got[j] - want[j] / sum) <= 1e-9 + 1e-4 * want[j] / sum,
                              "%s type %d lse given %d row %d of %d: %g vs %g", tab[ti]->isa, t,
                              given, j, off[n_kv], got[j], want[j] / sum);
            }
        free(want), free(lse);
        free(got), free(q);
        fx_cache_free(&kv);
    }
}

Test(score_agnostic, kvzip_in_pieces_matches_naive_reference) {
    const enum kv_type types[] = {KV_TYPE_INT8, KV_TYPE_F16, KV_TYPE_F32};
    int n_tab;
    const struct simd_ops *const *tab = tables(&n_tab);
    for (int trial = 0; trial < 6; trial++) {
        const enum kv_type t = types[trial % 3];
        const int n_kv = 1 + trial % 2, group = 1 + trial % 3, n_head = n_kv * group;
        const int d = 16 + 5 * trial, piece = 7 + 6 * trial, n_ctx = 40 + 23 * trial;
        const int lead = trial % 2 ? 5 : 0, n_rep = lead + n_ctx - 3 * (trial % 3);
        int len[2] = {n_ctx + n_rep, n_ctx + n_rep};
        const struct kv_rec_pieces rp = {.piece = piece,
                                         .head_end = 4,
                                         .ctx0 = 0,
                                         .ctx_end = n_ctx,
                                         .rec0 = n_ctx,
                                         .lead_end = n_ctx + lead,
                                         .rec_end = n_ctx + n_rep,
                                         .shift = n_rep,
                                         .overlap = 3};
        struct kv_cache kv;
        fx_cache(&kv, t, 1, n_kv, d, len);
        float *q = malloc((size_t)n_rep * n_head * d * sizeof *q);
        for (int i = 0; i < n_rep * n_head * d; i++)
            q[i] = 2.0f * fx_unif();
        int32_t off[3];
        struct adakv_err e;
        cr_assert_eq(kv_score_layout(&kv, 0, n_rep, off, &e), 0);
        float *got = malloc((size_t)off[n_kv] * sizeof *got);
        float *lse = malloc((size_t)n_rep * n_head * sizeof *lse);
        double *want = malloc((size_t)off[n_kv] * sizeof *want), sum = 0.0;
        for (int g = 0; g < n_kv; g++)
            naive_kvzip_part(&kv, g, q, n_rep, n_head, 0, n_rep, false, &rp, want + off[g], lse);
        for (int j = 0; j < off[n_kv]; j++)
            sum += want[j];
        for (int ti = 0; ti < n_tab; ti++)
            for (int given = 0; given < 2; given++) {
                cr_assert_eq(kv_score_kvzip(tab[ti], &kv, 0, q, given ? lse : NULL, &rp, n_rep, 0,
                                            n_head, off, got, &e),
                             0);
                for (int j = 0; j < off[n_kv]; j++)
                    cr_assert(fabs(got[j] - want[j] / sum) <= 1e-9 + 1e-4 * want[j] / sum,
                              "%s type %d lse given %d row %d of %d: %g vs %g", tab[ti]->isa, t,
                              given, j, off[n_kv], got[j], want[j] / sum);
            }
        free(want), free(lse), free(got), free(q);
        fx_cache_free(&kv);
    }
}

/* One query peaks on row 2 (p ~ 1) once; every other reconstruction query gives row 4 a
 * moderate share. KVzip's maximum ranks row 2 first; a mean over the queries (SnapKV's
 * aggregation) would rank row 4 first. */
Test(score_agnostic, kvzip_ranks_by_the_peak_not_the_mean) {
    const int d = 4, n_ctx = 6, n_rep = 8, len[1] = {n_ctx + n_rep};
    struct kv_cache kv;
    fx_cache(&kv, KV_TYPE_F32, 1, 1, d, len);
    float *k = kv_cache_seg(&kv, 0, 0)->k;
    memset(k, 0, (size_t)len[0] * d * sizeof *k);
    k[2 * d + 0] = 1.0f; /* row 2 along e0 */
    k[4 * d + 1] = 1.0f; /* row 4 along e1 */
    float q[8 * 4] = {0};
    q[0] = 40.0f; /* query 0: exp(20) on row 2 */
    for (int t = 1; t < n_rep; t++)
        q[t * d + 1] = 4.0f; /* queries 1..7: exp(2) on row 4 against ~ n_ctx + t ones */
    int32_t off[2];
    struct adakv_err e;
    cr_assert_eq(kv_score_layout(&kv, 0, n_rep, off, &e), 0);
    float s[6];
    cr_assert_eq(kv_score_kvzip(simd_ops_scalar(), &kv, 0, q, NULL, NULL, n_rep, 0, 1, off, s, &e),
                 0);
    /* normalized over the rows: row 2's maximum (~1) against row 4's (e^2 / (e^2 + 5) for the
     * first of queries 1..7) keeps their ratio */
    cr_assert_gt(s[2], s[4]);
    for (int j = 0; j < n_ctx; j++)
        if (j != 2 && j != 4)
            cr_assert_lt(s[j], s[4], "row %d", j);
    cr_assert_gt(s[4], 0.2f * s[2]);
    /* a mean over the queries would rank row 4 first: about 0.9 / 8 against ~0.3 */
    fx_cache_free(&kv);
}

/* Through the hook: each head keeps floor(n_ctx * (1 - ratio)) context rows, the sinks, and no
 * reconstruction row; the rows kept are the top scores. */
Test(score_agnostic, kvzip_press_drops_the_reconstruction) {
    const int d = 16, n_kv = 2, n_head = 4, n_rep = 40, len[2] = {100 + n_rep, 100 + n_rep};
    struct kv_cache kv;
    fx_cache(&kv, KV_TYPE_F32, 1, n_kv, d, len);
    float *q = malloc((size_t)n_rep * n_head * d * sizeof *q);
    for (int i = 0; i < n_rep * n_head * d; i++)
        q[i] = 2.0f * fx_unif();
    int32_t off[3];
    struct adakv_err e;
    cr_assert_eq(kv_score_layout(&kv, 0, n_rep, off, &e), 0);
    float *s = malloc((size_t)off[n_kv] * sizeof *s);
    cr_assert_eq(
        kv_score_kvzip(simd_ops_scalar(), &kv, 0, q, NULL, NULL, n_rep, 0, n_head, off, s, &e), 0);
    struct kv_press_config c;
    kv_press_config_default(&c);
    c.press = kv_press_find("kvzip", NULL);
    c.ratio = 0.75f;
    struct kv_press_hook hk = {
        .cfg = &c, .n_layer = 1, .n_head = n_head, .n_embd = 64, .ops = simd_ops_scalar()};
    cr_assert_eq(kv_press_compress_layer(&hk, &kv, 0, q, n_rep, &e), 0, "%s", e.msg);
    for (int g = 0; g < n_kv; g++) {
        const struct kv_segment *seg = kv_cache_seg(&kv, 0, g);
        cr_assert_eq(seg->len, 25);
        float kth = INFINITY; /* the smallest kept score (sinks aside) */
        for (int i = 0; i < seg->len; i++) {
            cr_assert_lt(seg->pos[i], 100, "a reconstruction row stayed");
            if (i < c.n_sink)
                cr_assert_eq(seg->pos[i], i, "sink %d evicted", i);
            else
                kth = s[off[g] + seg->pos[i]] < kth ? s[off[g] + seg->pos[i]] : kth;
        }
        for (int j = c.n_sink, i = 0; j < 100; j++) { /* every dropped row scores <= kth */
            while (i < seg->len && seg->pos[i] < j)
                i++;
            if (i == seg->len || seg->pos[i] != j)
                cr_assert_leq(s[off[g] + j], kth, "row %d dropped above a kept one", j);
        }
    }
    free(q), free(s);
    fx_cache_free(&kv);
}

/* ---------------------------------------------------------------- Expected Attention */

/* Pair i's dims (RoPE pairing as the rope op). */
static void pair_dims(int i, int half, int neox, int *a, int *b) {
    *a = neox ? i : 2 * i;
    *b = neox ? i + half : 2 * i + 1;
}

static double theta(int i, int n_rot, double pos) {
    return pos * pow(10000.0, -2.0 * i / n_rot);
}

/* x <- Rot(pos) x in double. */
static void rot(double *x, int n_rot, int neox, double pos) {
    for (int i = 0; i < n_rot / 2; i++) {
        int a, b;
        pair_dims(i, n_rot / 2, neox, &a, &b);
        const double c = cos(theta(i, n_rot, pos)), s = sin(theta(i, n_rot, pos));
        const double x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * s, x[b] = x0 * s + x1 * c;
    }
}

struct eattn_case {
    int d, n_kv, group, n_win, n_rot, neox, n_future, pos_end, hadamard;
    float eps;
};

/* The scorer's inputs from pre-RoPE window queries (stored post-RoPE, Hadamard-turned when the
 * case says so), and kvpress's formula in double from the pre-RoPE queries directly. */
static void eattn_check(const struct simd_ops *ops, const struct eattn_case *c) {
    const int d = c->d, n_head = c->n_kv * c->group, half = c->n_rot / 2;
    int len[3];
    for (int g = 0; g < c->n_kv; g++)
        len[g] = 5 + (int)(fx_u32() % 80);
    struct kv_cache kv;
    fx_cache(&kv, KV_TYPE_F32, 1, c->n_kv, d, len);
    double *qpre = malloc((size_t)c->n_win * n_head * d * sizeof *qpre);
    float *qwin = malloc((size_t)c->n_win * n_head * d * sizeof *qwin);
    float *undo = malloc((size_t)(c->n_win * c->n_rot + 1) * sizeof *undo);
    float *fut = malloc((size_t)(c->n_rot + 1) * sizeof *fut);
    for (int t = 0; t < c->n_win; t++) {
        const double pos = c->pos_end - c->n_win + t;
        for (int h = 0; h < n_head; h++) {
            double *x = qpre + ((size_t)t * n_head + h) * d, y[256];
            for (int i = 0; i < d; i++)
                x[i] = fx_unif() + (i % 3 == 0 ? 1.5 : 0.0); /* a mean away from 0 */
            memcpy(y, x, (size_t)d * sizeof *y);
            rot(y, c->n_rot, c->neox, pos);
            float *o = qwin + ((size_t)t * n_head + h) * d;
            for (int i = 0; i < d; i++)
                o[i] = (float)y[i];
        }
        for (int i = 0; i < half; i++) {
            undo[t * c->n_rot + i] = (float)cos(theta(i, c->n_rot, pos));
            undo[t * c->n_rot + half + i] = (float)-sin(theta(i, c->n_rot, pos));
        }
    }
    double cbar[128] = {0}, sbar[128] = {0};
    for (int p = 0; p < c->n_future; p++)
        for (int i = 0; i < half; i++) {
            cbar[i] += cos(theta(i, c->n_rot, c->pos_end + p)) / c->n_future;
            sbar[i] += sin(theta(i, c->n_rot, c->pos_end + p)) / c->n_future;
        }
    for (int i = 0; i < half; i++)
        fut[i] = (float)cbar[i], fut[half + i] = (float)sbar[i];
    if (c->hadamard) { /* stored keys and queries turned by H, as the int8 cache does */
        kv.k_rot = key_rotation_block(d);
        for (int g = 0; g < c->n_kv; g++)
            for (int j = 0; j < len[g]; j++)
                key_rotate((float *)kv_cache_seg(&kv, 0, g)->k + (size_t)j * d, d, kv.k_rot);
        for (int r = 0; r < c->n_win * n_head; r++)
            key_rotate(qwin + (size_t)r * d, d, kv.k_rot);
    }
    int32_t off[4];
    struct adakv_err e;
    cr_assert_eq(kv_score_layout(&kv, 0, 0, off, &e), 0);
    float *got = malloc((size_t)off[c->n_kv] * sizeof *got);
    const int n_sink = 2;
    cr_assert_eq(kv_score_eattn(ops, &kv, 0, qwin, c->n_win, n_head, undo, fut, c->n_rot, c->neox,
                                n_sink, c->eps, off, got, &e),
                 0);
    double top = -INFINITY;
    for (int g = 0; g < c->n_kv; g++) {
        const struct kv_segment *seg = kv_cache_seg(&kv, 0, g);
        double *p = calloc((size_t)len[g], sizeof *p), *z = malloc((size_t)len[g] * sizeof *z);
        for (int hh = 0; hh < c->group; hh++) {
            const int h = g * c->group + hh;
            double mu[256] = {0}, cov[64][64] = {{0}};
            for (int t = 0; t < c->n_win; t++)
                for (int i = 0; i < d; i++)
                    mu[i] += qpre[((size_t)t * n_head + h) * d + i] / c->n_win;
            for (int t = 0; t < c->n_win; t++)
                for (int i = 0; i < d; i++)
                    for (int k = 0; k < d; k++)
                        cov[i][k] += (qpre[((size_t)t * n_head + h) * d + i] - mu[i]) *
                                     (qpre[((size_t)t * n_head + h) * d + k] - mu[k]) / c->n_win;
            double R[64][64] = {{0}}; /* the averaged rotation as a matrix */
            for (int i = 0; i < d; i++)
                R[i][i] = 1.0;
            for (int i = 0; i < half; i++) {
                int a, b;
                pair_dims(i, half, c->neox, &a, &b);
                R[a][a] = cbar[i], R[a][b] = -sbar[i], R[b][a] = sbar[i], R[b][b] = cbar[i];
            }
            double mu2[64] = {0}, RC[64][64] = {{0}}, C2[64][64] = {{0}};
            for (int i = 0; i < d; i++)
                for (int k = 0; k < d; k++)
                    mu2[i] += R[i][k] * mu[k];
            for (int i = 0; i < d; i++)
                for (int k = 0; k < d; k++)
                    for (int l = 0; l < d; l++)
                        RC[i][k] += R[i][l] * cov[l][k];
            for (int i = 0; i < d; i++)
                for (int k = 0; k < d; k++)
                    for (int l = 0; l < d; l++)
                        C2[i][k] += RC[i][l] * R[k][l];
            double m = -INFINITY, sum = 0.0;
            for (int j = n_sink; j < len[g]; j++) {
                float kr[256];
                key_row(&kv, g, j, kr);
                if (c->hadamard)
                    key_rotate(kr, d, kv.k_rot); /* back to the true key */
                double lin = 0.0, quad = 0.0;
                for (int i = 0; i < d; i++) {
                    lin += mu2[i] * kr[i];
                    for (int k = 0; k < d; k++)
                        quad += kr[i] * C2[i][k] * kr[k];
                }
                z[j] = lin / sqrt((double)d) + quad / d / 2.0;
                m = z[j] > m ? z[j] : m;
            }
            for (int j = n_sink; j < len[g]; j++)
                sum += exp(z[j] - m);
            for (int j = n_sink; j < len[g]; j++)
                p[j] += exp(z[j] - m) / sum / c->group;
        }
        for (int j = n_sink; j < len[g]; j++) {
            float v[256];
            kv_row_to_f32(kv.type, seg->v, seg->v_scale, j, d, v);
            double vn = 0.0;
            for (int i = 0; i < d; i++)
                vn += (double)v[i] * v[i];
            const double want = (p[j] + c->eps) * sqrt(vn);
            top = want > top ? want : top;
            cr_assert(fabs(got[off[g] + j] - want) <= 1e-7 + 2e-4 * want,
                      "%s d=%d neox=%d had=%d head %d row %d: %g vs %g", ops->isa, d, c->neox,
                      c->hadamard, g, j, got[off[g] + j], want);
        }
        free(p), free(z);
    }
    for (int g = 0; g < c->n_kv; g++)
        for (int j = 0; j < n_sink; j++)
            cr_assert(got[off[g] + j] > top, "sink %d of head %d not above every row", j, g);
    free(got), free(qpre), free(qwin), free(undo), free(fut);
    fx_cache_free(&kv);
}

Test(score_agnostic, eattn_matches_naive_reference) {
    int n_tab;
    const struct simd_ops *const *tab = tables(&n_tab);
    const struct eattn_case cases[] = {
        {16, 1, 1, 8, 16, 0, 64, 300, 0, 0.0f},     {16, 2, 3, 5, 16, 1, 512, 40, 0, 0.0f},
        {32, 3, 2, 17, 24, 0, 100, 1000, 0, 0.01f}, {32, 2, 2, 9, 32, 1, 33, 77, 1, 0.0f},
        {64, 1, 3, 32, 64, 0, 512, 2000, 1, 0.0f},
    };
    for (int ti = 0; ti < n_tab; ti++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            eattn_check(tab[ti], &cases[i]);
}

/* No RoPE (n_rot 0), unit value norms: queries 6 e0 +- 3 e1. Row A (2 e0: mean logit 6) beats
 * row B (2 e1: mean logit 0, covariance term 36 / 8), which beats row C (2 e2: neither), which
 * beats row D (-2 e0). */
Test(score_agnostic, eattn_ranks_by_mean_then_variance) {
    const int d = 4, n_win = 16, len[1] = {2 + 4};
    struct kv_cache kv;
    fx_cache(&kv, KV_TYPE_F32, 1, 1, d, len);
    float *k = kv_cache_seg(&kv, 0, 0)->k, *v = kv_cache_seg(&kv, 0, 0)->v;
    memset(k, 0, (size_t)len[0] * d * sizeof *k);
    for (int j = 0; j < len[0] * d; j++)
        v[j] = j % d == 0 ? 1.0f : 0.0f;
    k[2 * d + 0] = 2.0f, k[3 * d + 1] = 2.0f, k[4 * d + 2] = 2.0f, k[5 * d + 0] = -2.0f;
    float q[16 * 4] = {0};
    for (int t = 0; t < n_win; t++)
        q[t * d + 0] = 6.0f, q[t * d + 1] = t % 2 ? 3.0f : -3.0f;
    int32_t off[2];
    struct adakv_err e;
    cr_assert_eq(kv_score_layout(&kv, 0, 0, off, &e), 0);
    float s[6];
    cr_assert_eq(kv_score_eattn(simd_ops_scalar(), &kv, 0, q, n_win, 1, NULL, NULL, 0, 0, 2, 0.0f,
                                off, s, &e),
                 0);
    cr_assert(s[2] > s[3] && s[3] > s[4] && s[4] > s[5], "%g %g %g %g", s[2], s[3], s[4], s[5]);
    /* the covariance term is exactly (1/(2d)) * mean (c.k)^2 = 36 / 8 on row B */
    const double zb = 36.0 / 8.0, za = 12.0 / 2.0, zd = -6.0;
    const double sum = exp(za) + exp(zb) + exp(0.0) + exp(zd);
    cr_assert(fabs(s[3] - exp(zb) / sum) < 1e-5, "%g vs %g", s[3], exp(zb) / sum);
    fx_cache_free(&kv);
}

/* Question-aware KVzip (kv-score.h): the reconstruction's maxima and the question's sums, each
 * normalized over the layer's context rows, then the larger of the two, against the naive
 * reference on every storage type, both tables (the fused kernel on a VNNI machine) and
 * questions of 1 to 40 queries. */
Test(score_agnostic, kvzip_question_aware_matches_naive_reference) {
    const enum kv_type types[] = {KV_TYPE_INT8, KV_TYPE_F16, KV_TYPE_F32};
    int n_tab;
    const struct simd_ops *const *tab = tables(&n_tab);
    for (int trial = 0; trial < 6; trial++) {
        const enum kv_type t = types[trial % 3];
        const int n_kv = 1 + trial % 2, group = 1 + trial % 3, n_head = n_kv * group, d = 32;
        const int n_question = 1 + 13 * trial % 40, n_rep = n_question + 20 + 9 * trial;
        int len[2];
        for (int g = 0; g < n_kv; g++)
            len[g] = n_rep + 30 + (int)(fx_u32() % 60);
        struct kv_cache kv;
        fx_cache(&kv, t, 1, n_kv, d, len);
        float *q = malloc((size_t)n_rep * n_head * d * sizeof *q);
        for (int i = 0; i < n_rep * n_head * d; i++)
            q[i] = 2.0f * fx_unif();
        int32_t off[3];
        struct adakv_err e;
        cr_assert_eq(kv_score_layout(&kv, 0, n_rep, off, &e), 0);
        const int total = off[n_kv];
        double *zip = malloc((size_t)total * sizeof *zip),
               *ask = malloc((size_t)total * sizeof *ask);
        double sz = 0.0, sa = 0.0;
        for (int g = 0; g < n_kv; g++) {
            naive_kvzip_part(&kv, g, q, n_rep, n_head, 0, n_rep - n_question, false, NULL,
                             zip + off[g], NULL);
            naive_kvzip_part(&kv, g, q, n_rep, n_head, n_rep - n_question, n_rep, true, NULL,
                             ask + off[g], NULL);
        }
        for (int j = 0; j < total; j++)
            sz += zip[j], sa += ask[j];
        float *got = malloc((size_t)total * sizeof *got);
        for (int ti = 0; ti < n_tab; ti++) {
            cr_assert_eq(kv_score_kvzip(tab[ti], &kv, 0, q, NULL, NULL, n_rep, n_question, n_head,
                                        off, got, &e),
                         0);
            for (int j = 0; j < total; j++) {
                const double want = fmax(zip[j] / sz, ask[j] / sa);
                cr_assert(fabs(got[j] - want) <= 1e-9 + 1e-3 * want,
                          "%s type %d question %d of %d: row %d %g vs %g", tab[ti]->isa, t,
                          n_question, n_rep, j, got[j], want);
            }
        }
        free(got), free(zip), free(ask), free(q);
        fx_cache_free(&kv);
    }
}

/* What the question-aware form is for: the reconstruction peaks on row 2 and weakly on every
 * other row; the question's queries all point at row 4 a little (never its largest share for
 * any one of them). The agnostic score puts row 4 among the weak rows; with the question
 * (normalized sums), row 4 comes first after row 2. */
Test(score_agnostic, kvzip_question_lifts_what_the_question_reads) {
    const int d = 4, n_ctx = 8, n_question = 6, n_rep = 10 + n_question, len[1] = {n_ctx + n_rep};
    struct kv_cache kv;
    fx_cache(&kv, KV_TYPE_F32, 1, 1, d, len);
    float *k = kv_cache_seg(&kv, 0, 0)->k;
    memset(k, 0, (size_t)len[0] * d * sizeof *k);
    k[2 * d + 0] = 1.0f; /* row 2 along e0: the reconstruction's peak */
    k[4 * d + 1] = 1.0f; /* row 4 along e1: the question's */
    k[6 * d + 2] = 1.0f; /* row 6 along e2: the reconstruction's second */
    float q[16 * 4] = {0};
    for (int t = 0; t < n_rep - n_question; t++)
        q[t * d + (t % 2 ? 2 : 0)] = t % 2 ? 3.0f : 30.0f;
    for (int t = n_rep - n_question; t < n_rep; t++)
        q[t * d + 1] = 2.5f;
    int32_t off[2];
    struct adakv_err e;
    cr_assert_eq(kv_score_layout(&kv, 0, n_rep, off, &e), 0);
    float agnostic[8], aware[8];
    /* n_question 0: the question's queries join the reconstruction's maximum (the earlier form) */
    cr_assert_eq(
        kv_score_kvzip(simd_ops_scalar(), &kv, 0, q, NULL, NULL, n_rep, 0, 1, off, agnostic, &e),
        0);
    cr_assert_eq(kv_score_kvzip(simd_ops_scalar(), &kv, 0, q, NULL, NULL, n_rep, n_question, 1, off,
                                aware, &e),
                 0);
    cr_assert_lt(agnostic[4], agnostic[6], "in the maximum, the question's row is not singled out");
    for (int j = 0; j < n_ctx; j++)
        if (j != 2 && j != 4)
            cr_assert_lt(aware[j], aware[4], "aware: row %d above the question's row 4", j);
    fx_cache_free(&kv);
}
