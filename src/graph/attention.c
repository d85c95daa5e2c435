/* Attention of a context's query rows over its KV cache (attention.h): an online softmax over
 * key tiles, causal by stored position and windowed on sliding-window layers, GQA without
 * repeating K/V; decode spreads the KV heads over the threads by the head map, or splits every
 * head's rows when the map would leave the threads unbalanced. */
#include "attention.h"
#include "kv-rec-pieces.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

static size_t kv_elem_bytes(enum kv_type t) {
    return t == KV_TYPE_INT8 ? 1 : t == KV_TYPE_F16 ? 2 : 4;
}

/* First row index in [0, len) whose stored position exceeds p. */
static int32_t rows_up_to(const int32_t *pos, int32_t len, int32_t p) {
    return kv_rows_below(pos, len, p + 1);
}

static void attn_scores(const struct simd_ops *ops, enum kv_type type, const struct kv_segment *seg,
                        int32_t j0, int kt, float *s, int ks, const float *q, int rows, int d,
                        float mul) {
    const char *k = (const char *)seg->k + (size_t)j0 * d * kv_elem_bytes(type);
    switch (type) {
    case KV_TYPE_INT8:
        ops->attn_qk_i8(s, ks, q, d, rows, (const int8_t *)k, seg->k_scale + j0, kt, d, mul);
        break;
    case KV_TYPE_F16:
        ops->attn_qk_f16(s, ks, q, d, rows, (const uint16_t *)k, kt, d, mul);
        break;
    case KV_TYPE_F32:
        ops->attn_qk_f32(s, ks, q, d, rows, (const float *)k, kt, d, mul);
        break;
    }
}

static void attn_values(const struct simd_ops *ops, enum kv_type type, const struct kv_segment *seg,
                        int32_t j0, int kt, float *acc, const float *p, int ks, int rows, int d) {
    const char *v = (const char *)seg->v + (size_t)j0 * d * kv_elem_bytes(type);
    switch (type) {
    case KV_TYPE_INT8:
        ops->attn_av_i8(acc, d, p, ks, rows, (const int8_t *)v, seg->v_scale + j0, kt, d);
        break;
    case KV_TYPE_F16:
        ops->attn_av_f16(acc, d, p, ks, rows, (const uint16_t *)v, kt, d);
        break;
    case KV_TYPE_F32:
        ops->attn_av_f32(acc, d, p, ks, rows, (const float *)v, kt, d);
        break;
    }
}

/* Keys per online-softmax step for n query tokens. */
static int fold_tile(int n) {
    return n == 1 ? FORWARD_ATTN_KTILE_DECODE : FORWARD_ATTN_KTILE;
}

/* Scratch floats of one attn_fold over n query tokens (G rows each): the packed queries, one
 * key step of scores, and m, l, acc per row (the layout attn_fold carves out). */
static size_t fold_floats(const struct model_hparams *hp, int n) {
    const size_t rows = (size_t)n * (hp->n_head / hp->n_head_kv);
    return rows * (2 * (size_t)hp->head_dim + (size_t)fold_tile(n) + 2);
}

/* Scratch floats per thread of split decode: its own fold, then (m, l, acc) per query head. */
static size_t split_decode_floats(const struct model_hparams *hp) {
    return fold_floats(hp, 1) + (size_t)hp->n_head * (hp->head_dim + 2);
}

/* Folds keys [j_begin, j_end) of KV head g into the online-softmax state of the G query heads of
 * tokens t0..t1 of the chunk (token t at position pos0 + t), skipping keys whose position is
 * after the query's and, in a sliding-window layer of window W, keys at or before the query's
 * position - W (rows below the first query's window are not even read). Key tiles are folded in
 * with a running max m, running sum l and a rescaled accumulator, so no tokens x tokens matrix ever
 * exists. The state is left in the scratch: returns rows; *mx_out, *l_out, *acc_out point at
 * [rows], [rows], [rows][d]. */
static int attn_fold(const struct adakv_ctx *c, int layer, int g, int t0, int t1, int32_t pos0,
                     const float *q, float *scratch, int32_t j_begin, int32_t j_end, float **mx_out,
                     float **l_out, float **acc_out) {
    const struct model_hparams *hp = &c->model->hp;
    const int G = hp->n_head / hp->n_head_kv, d = hp->head_dim;
    const size_t qdim = (size_t)hp->n_head * d;
    const int rows = (t1 - t0) * G, KT = fold_tile(t1 - t0);
    float *qbuf = scratch, *s = qbuf + (size_t)rows * d, *mx = s + (size_t)rows * KT;
    float *l = mx + rows, *acc = l + rows;
    const struct kv_segment *seg = kv_cache_seg(&c->kv, layer, g);
    const struct simd_ops *ops = c->ops;
    *mx_out = mx, *l_out = l, *acc_out = acc;

    /* Pack the query rows (token-major, then head within the group) contiguously. */
    for (int t = t0; t < t1; t++)
        memcpy(qbuf + (size_t)(t - t0) * G * d, q + t * qdim + (size_t)g * G * d,
               (size_t)G * d * sizeof *qbuf);
    for (int r = 0; r < rows; r++)
        mx[r] = -INFINITY, l[r] = 0.0f;
    memset(acc, 0, (size_t)rows * d * sizeof *acc);

    const int32_t first_pos = pos0 + t0, last_pos = pos0 + t1 - 1;
    int32_t n_k = rows_up_to(seg->pos, seg->len, last_pos);
    n_k = n_k < j_end ? n_k : j_end;
    const int32_t win = hp->layer[layer].window;
    if (win) { /* the first row some query of the chunk still sees */
        const int32_t lo = rows_up_to(seg->pos, seg->len, first_pos - win);
        j_begin = j_begin > lo ? j_begin : lo;
    }
    const float mul = hp->attn_scale;
    for (int32_t j0 = j_begin; j0 < n_k; j0 += KT) {
        const int kt = n_k - j0 < KT ? (int)(n_k - j0) : KT;
        attn_scores(ops, c->kv.type, seg, j0, kt, s, KT, qbuf, rows, d, mul);
        const bool causal_edge = seg->pos[j0 + kt - 1] > first_pos;
        const bool window_edge = win && seg->pos[j0] <= last_pos - win;
        for (int r = 0; r < rows; r++) {
            float *sr = s + (size_t)r * KT;
            if (causal_edge) {
                const int32_t qp = first_pos + r / G;
                for (int jj = 0; jj < kt; jj++)
                    if (seg->pos[j0 + jj] > qp)
                        sr[jj] = -INFINITY;
            }
            if (window_edge) {
                const int32_t oldest = first_pos + r / G - win; /* this key and older: out */
                for (int jj = 0; jj < kt && seg->pos[j0 + jj] <= oldest; jj++)
                    sr[jj] = -INFINITY;
            }
            const float mt = ops->max(sr, kt);
            if (mt == -INFINITY) { /* every key of this tile is in this row's future */
                memset(sr, 0, (size_t)kt * sizeof *sr);
                continue;
            }
            const float m_new = mt > mx[r] ? mt : mx[r];
            const float corr = expf(mx[r] - m_new); /* 0 on the first tile (mx = -inf) */
            l[r] = l[r] * corr + ops->exp_sum(sr, kt, m_new);
            if (corr != 1.0f) {
                float *ar = acc + (size_t)r * d;
                for (int i = 0; i < d; i++)
                    ar[i] *= corr;
            }
            mx[r] = m_new;
        }
        attn_values(ops, c->kv.type, seg, j0, kt, acc, s, KT, rows, d);
    }
    return rows;
}

/* Row r (token t0 + r / G, head g G + r % G) of a work item's log-sum-exps into lse's window. */
static void lse_store(const struct model_hparams *hp, const struct attn_lse_out *lse, int g, int t0,
                      int rows, const float *row_lse) {
    const int G = hp->n_head / hp->n_head_kv;
    for (int r = 0; r < rows; r++) {
        const int t = t0 + r / G;
        if (t >= lse->first)
            lse->dst[(size_t)(t - lse->first) * hp->n_head + g * G + r % G] = row_lse[r];
    }
}

/* Tokens t0..t1 of a prefill work item through the fused rows-in-lanes kernel (ops.h
 * attn_rows_i8) over keys [j_begin, j_end) of KV head g (narrowed to those some row may see; the
 * kernel masks the rest): the rows packed as attn_fold packs them, each with its token's
 * position; their normalized outputs into obuf [rows][d], log-sum-exps into row_lse (or NULL).
 * Uses scratch for the packed queries and positions. Returns rows. */
static int rows_pass(const struct adakv_ctx *c, int layer, int g, int t0, int t1, int32_t pos0,
                     const float *q, float *scratch, int32_t j_begin, int32_t j_end, float *obuf,
                     float *row_lse) {
    const struct model_hparams *hp = &c->model->hp;
    const int G = hp->n_head / hp->n_head_kv, d = hp->head_dim;
    const size_t qdim = (size_t)hp->n_head * d;
    const int rows = (t1 - t0) * G;
    float *qbuf = scratch;
    int32_t *qpos = (int32_t *)(qbuf + (size_t)rows * d);
    for (int t = t0; t < t1; t++) {
        memcpy(qbuf + (size_t)(t - t0) * G * d, q + t * qdim + (size_t)g * G * d,
               (size_t)G * d * sizeof *qbuf);
        for (int h = 0; h < G; h++)
            qpos[(t - t0) * G + h] = pos0 + t;
    }
    const struct kv_segment *seg = kv_cache_seg(&c->kv, layer, g);
    const int32_t first_pos = pos0 + t0, win = hp->layer[layer].window;
    const int32_t seen_end = rows_up_to(seg->pos, seg->len, pos0 + t1 - 1);
    const int32_t seen_begin = win ? rows_up_to(seg->pos, seg->len, first_pos - win) : 0;
    j_end = j_end < seen_end ? j_end : seen_end;
    j_begin = j_begin > seen_begin ? j_begin : seen_begin;
    j_end = j_end > j_begin ? j_end : j_begin;
    c->ops->attn_rows_i8(obuf, row_lse, qbuf, rows, qpos,
                         (const int8_t *)seg->k + (size_t)j_begin * d, seg->k_scale + j_begin,
                         (const int8_t *)seg->v + (size_t)j_begin * d, seg->v_scale + j_begin,
                         seg->pos + j_begin, j_end - j_begin, d, hp->attn_scale, win);
    return rows;
}

/* Rows of a work item's result (token t0 + r / G, head g G + r % G, obuf [rows][d]) into out. */
static void item_store(const struct model_hparams *hp, int g, int t0, int t1, const float *obuf,
                       float *out) {
    const int G = hp->n_head / hp->n_head_kv, d = hp->head_dim;
    const size_t qdim = (size_t)hp->n_head * d;
    for (int t = t0; t < t1; t++)
        memcpy(out + t * qdim + (size_t)g * G * d, obuf + (size_t)(t - t0) * G * d,
               (size_t)G * d * sizeof *out);
}

/* One prefill work item through the fused kernel over every key its rows may see. */
static void attn_item_rows(const struct adakv_ctx *c, int layer, int g, int t0, int t1,
                           int32_t pos0, const float *q, float *out, float *scratch,
                           const struct attn_lse_out *lse) {
    const struct model_hparams *hp = &c->model->hp;
    const int rows = (t1 - t0) * (hp->n_head / hp->n_head_kv);
    float *obuf = scratch + (size_t)rows * (hp->head_dim + 1);
    float *row_lse = lse ? obuf + (size_t)rows * hp->head_dim : NULL;
    rows_pass(c, layer, g, t0, t1, pos0, q, scratch, 0, INT32_MAX, obuf, row_lse);
    item_store(hp, g, t0, t1, obuf, out);
    if (lse)
        lse_store(hp, lse, g, t0, rows, row_lse);
}

/* One work item: the G query heads of KV head g for tokens t0..t1 against every cached row of
 * that head, normalized into out (and their log-sum-exps into lse, when given). */
static void attn_item(const struct adakv_ctx *c, int layer, int g, int t0, int t1, int32_t pos0,
                      const float *q, float *out, float *scratch, const struct attn_lse_out *lse) {
    const struct model_hparams *hp = &c->model->hp;
    const int G = hp->n_head / hp->n_head_kv, d = hp->head_dim;
    const size_t qdim = (size_t)hp->n_head * d;
    float *mx, *l, *acc;
    const int rows = attn_fold(c, layer, g, t0, t1, pos0, q, scratch, 0, INT32_MAX, &mx, &l, &acc);
    /* Every query sees at least its own key (appended before attention), so l > 0. */
    for (int r = 0; r < rows; r++) {
        const int t = t0 + r / G, h = g * G + r % G;
        float *o = out + t * qdim + (size_t)h * d;
        const float inv = 1.0f / l[r];
        for (int i = 0; i < d; i++)
            o[i] = acc[(size_t)r * d + i] * inv;
        if (lse) /* the scores' maximum and sum are the fold's state: mx is the shift of l */
            l[r] = mx[r] + logf(l[r]);
    }
    if (lse)
        lse_store(hp, lse, g, t0, rows, l);
}

/* (o, lse) <- attention over the union of two disjoint sets of keys, from each one's normalized
 * output and log-sum-exp (-inf: the set held no key for the row), for rows of d values. */
static void lse_merge(float *o, float *lse, const float *o2, const float *lse2, int rows, int d) {
    for (int r = 0; r < rows; r++) {
        if (lse2[r] == -INFINITY)
            continue;
        float *dst = o + (size_t)r * d;
        const float *src = o2 + (size_t)r * d;
        if (lse[r] == -INFINITY) {
            memcpy(dst, src, (size_t)d * sizeof *dst);
            lse[r] = lse2[r];
            continue;
        }
        const float m = lse[r] > lse2[r] ? lse[r] : lse2[r];
        const float w1 = expf(lse[r] - m), w2 = expf(lse2[r] - m), inv = 1.0f / (w1 + w2);
        for (int i = 0; i < d; i++)
            dst[i] = (dst[i] * w1 + src[i] * w2) * inv;
        lse[r] = m + logf(w1 + w2);
    }
}

/* Tokens t0..t1 (every one of KVzip's piece k, kv-rec-pieces.h) see only the piece's position
 * ranges: each range is attended to on its own (the fused kernel, or a fold over its rows) and
 * the results merged by log-sum-exp. The merged rows live after the prefill fold's scratch. */
static void attn_item_pieces(const struct adakv_ctx *c, int layer, int g, int t0, int t1,
                             int32_t pos0, const float *q, float *out, float *scratch,
                             const struct attn_lse_out *lse, bool rows_kernel, int32_t k) {
    const struct model_hparams *hp = &c->model->hp;
    const int G = hp->n_head / hp->n_head_kv, d = hp->head_dim, rows = (t1 - t0) * G;
    const struct kv_segment *seg = kv_cache_seg(&c->kv, layer, g);
    float *o = scratch + fold_floats(hp, FORWARD_ATTN_QTILE), *o_lse = o + (size_t)rows * d;
    int32_t lo[KV_REC_RANGES], hi[KV_REC_RANGES];
    const int n_ranges = kv_rec_ranges(&c->rec_pieces, k, lo, hi);
    for (int r = 0; r < rows; r++)
        o_lse[r] = -INFINITY;
    for (int i = 0; i < n_ranges; i++) {
        const int32_t j0 = kv_rows_below(seg->pos, seg->len, lo[i]);
        const int32_t j1 = kv_rows_below(seg->pos, seg->len, hi[i]);
        if (rows_kernel) {
            float *obuf = scratch + (size_t)rows * (d + 1), *part_lse = obuf + (size_t)rows * d;
            rows_pass(c, layer, g, t0, t1, pos0, q, scratch, j0, j1, obuf, part_lse);
            lse_merge(o, o_lse, obuf, part_lse, rows, d);
            continue;
        }
        float *mx, *l, *acc;
        attn_fold(c, layer, g, t0, t1, pos0, q, scratch, j0, j1, &mx, &l, &acc);
        for (int r = 0; r < rows; r++) { /* the fold's state as a normalized part */
            const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
            for (int i2 = 0; i2 < d; i2++)
                acc[(size_t)r * d + i2] *= inv;
            mx[r] = l[r] > 0.0f ? mx[r] + logf(l[r]) : -INFINITY;
        }
        lse_merge(o, o_lse, acc, mx, rows, d);
    }
    item_store(hp, g, t0, t1, o, out);
    if (lse)
        lse_store(hp, lse, g, t0, rows, o_lse);
}

/* Decode with the head map would leave a thread more than 1/8 above an even share of this
 * layer's rows (3 KV heads over 2 threads: 2/3 of the work on one thread): then every head's
 * rows are split evenly across the threads instead (the scratch is sized for it).
 * On one NUMA node nothing is lost; on several, the owner's locality is traded for balance. */
static bool decode_split_pays(const struct adakv_ctx *c, int layer) {
    const int T = c->heads.n_threads;
    if (T < 2 || T > c->n_threads)
        return false;
    int64_t total = 0, worst = 0;
    for (int t = 0; t < T; t++) {
        int64_t load = 0;
        for (int i = c->heads.start[t]; i < c->heads.start[t + 1]; i++)
            load += kv_cache_seg(&c->kv, layer, c->heads.order[i])->len;
        total += load;
        worst = load > worst ? load : worst;
    }
    return total >= 1024 && worst * 8 * T > total * 9;
}

/* Split decode: thread t folds part t of every KV head's rows and keeps (m, l, acc) per query
 * head after its own scratch; the parts are then merged, each rescaled to the common max. */
static void attention_decode_split(struct adakv_ctx *c, int layer, int32_t pos0) {
    const struct model_hparams *hp = &c->model->hp;
    const int n_kv = hp->n_head_kv, G = hp->n_head / n_kv, d = hp->head_dim;
    const int T = c->heads.n_threads;
    /* per thread, after the fold's own scratch: [g][r] (m, l, acc[d]) */
    const size_t part_off = fold_floats(hp, 1);
#pragma omp parallel num_threads(T)
    {
        const int team = omp_get_num_threads();
        for (int t = omp_get_thread_num(); t < T; t += team) {
            float *scratch =
                c->attn_scratch + (size_t)omp_get_thread_num() * c->attn_scratch_floats;
            float *part = c->attn_scratch + (size_t)t * c->attn_scratch_floats + part_off;
            for (int g = 0; g < n_kv; g++) {
                const int32_t len = kv_cache_seg(&c->kv, layer, g)->len;
                const int32_t j0 = (int32_t)((int64_t)len * t / T);
                const int32_t j1 = (int32_t)((int64_t)len * (t + 1) / T);
                float *mx, *l, *acc;
                attn_fold(c, layer, g, 0, 1, pos0, c->q, scratch, j0, j1, &mx, &l, &acc);
                for (int r = 0; r < G; r++) {
                    float *p = part + ((size_t)g * G + r) * (d + 2);
                    p[0] = mx[r], p[1] = l[r];
                    memcpy(p + 2, acc + (size_t)r * d, (size_t)d * sizeof *p);
                }
            }
        }
    }
    for (int g = 0; g < n_kv; g++)
        for (int r = 0; r < G; r++) {
            float m = -INFINITY, l = 0.0f;
            for (int t = 0; t < T; t++) {
                const float *p = c->attn_scratch + (size_t)t * c->attn_scratch_floats + part_off +
                                 ((size_t)g * G + r) * (d + 2);
                m = p[0] > m ? p[0] : m;
            }
            float *o = c->att + (size_t)(g * G + r) * d;
            memset(o, 0, (size_t)d * sizeof *o);
            for (int t = 0; t < T; t++) {
                const float *p = c->attn_scratch + (size_t)t * c->attn_scratch_floats + part_off +
                                 ((size_t)g * G + r) * (d + 2);
                if (p[0] == -INFINITY) /* this part held no key for the query */
                    continue;
                const float w = expf(p[0] - m);
                l += p[1] * w;
                for (int i = 0; i < d; i++)
                    o[i] += p[2 + i] * w;
            }
            const float inv = 1.0f / l; /* the query's own key is in some part: l > 0 */
            for (int i = 0; i < d; i++)
                o[i] *= inv;
        }
}

/* Attention of chunk rows 0..n (token t at position pos0 + t) over layer `layer`'s cache,
 * parallel over (KV head, query tile): each work item reads one KV head's rows once for all of
 * its G query heads. */
void attention_chunk(struct adakv_ctx *c, int layer, int n, int32_t pos0,
                     const struct attn_lse_out *lse) {
    const int n_kv = c->model->hp.n_head_kv, QT = FORWARD_ATTN_QTILE;
    /* a one-row piece of a prompt batch that owes its log-sum-exp takes the prompt path */
    if (n == 1 && !lse && decode_split_pays(c, layer)) {
        attention_decode_split(c, layer, pos0);
        return;
    }
    if (n == 1 && !lse) {
        /* Decode: thread t serves the KV heads the head map gives it (balanced by length after
         * compression, pages on its node). A team smaller than asked for still covers every
         * head: thread t also serves the lists of threads t + team, t + 2 team, ... */
#pragma omp parallel num_threads(c->n_threads)
        {
            const int t = omp_get_thread_num(), team = omp_get_num_threads();
            float *scratch = c->attn_scratch + (size_t)t * c->attn_scratch_floats;
            for (int owner = t; owner < c->heads.n_threads; owner += team)
                for (int i = c->heads.start[owner]; i < c->heads.start[owner + 1]; i++)
                    attn_item(c, layer, c->heads.order[i], 0, 1, pos0, c->q, c->att, scratch, NULL);
        }
        return;
    }
    const int n_qt = (n + QT - 1) / QT, items = n_kv * n_qt;
    /* Prompt batches of int8 rows go to the fused kernel where the ISA has one, however short:
     * a row's result does not depend on the rows beside it, so a prompt gets the same logits
     * however it is split into batches (adakv-server prefills a chat prompt in one batch,
     * adakv-run in two: with short batches folded instead, a near-tie greedy token differed). */
    const bool rows_kernel = c->ops->attn_rows_i8 && c->kv.type == KV_TYPE_INT8 &&
                             c->model->hp.head_dim <= ATTN_ROWS_DMAX && n > 1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(c->n_threads)
    for (int it = 0; it < items; it++) {
        const int g = it % n_kv, qt = it / n_kv;
        const int t0 = qt * QT, t1 = t0 + QT < n ? t0 + QT : n;
        float *scratch = c->attn_scratch + (size_t)omp_get_thread_num() * c->attn_scratch_floats;
        /* a work item wholly before the window has no log-sum-exp to leave */
        const struct attn_lse_out *li = lse && t1 > lse->first ? lse : NULL;
        /* runs of tokens that see the same rows: all of them, or one of KVzip's pieces */
        for (int u0 = t0, u1; u0 < t1; u0 = u1) {
            const int32_t k = kv_rec_piece(&c->rec_pieces, pos0 + u0);
            for (u1 = u0 + 1; u1 < t1 && kv_rec_piece(&c->rec_pieces, pos0 + u1) == k; u1++)
                ;
            const struct attn_lse_out *lu = li && u1 > li->first ? li : NULL;
            if (k >= 0)
                attn_item_pieces(c, layer, g, u0, u1, pos0, c->q, c->att, scratch, lu, rows_kernel,
                                 k);
            else if (rows_kernel)
                attn_item_rows(c, layer, g, u0, u1, pos0, c->q, c->att, scratch, lu);
            else
                attn_item(c, layer, g, u0, u1, pos0, c->q, c->att, scratch, lu);
        }
    }
}

size_t attention_scratch_floats(const struct model_hparams *hp) {
    /* a prefill query tile's fold (then, for KVzip's pieces, its merged rows), or one decoding
     * token's split fold with its parts */
    const size_t prefill = fold_floats(hp, FORWARD_ATTN_QTILE) + (size_t)FORWARD_ATTN_QTILE *
                                                                     (hp->n_head / hp->n_head_kv) *
                                                                     ((size_t)hp->head_dim + 1),
                 decode = split_decode_floats(hp);
    return (prefill > decode ? prefill : decode) + 16;
}

/* ==== a batch of sequences, one token each, with rows shared between forks ====
 *
 * Forks of one document hold copies of its rows (kv_cache_share marks them). Attending over
 * each copy separately reads the document once per sequence; instead, the shared rows of each
 * KV head are read once for the query rows of all the forks in the batch (the fused kernel,
 * 16-row vectors filled by several sequences), in CASCADE_PARTS slices of the rows so both
 * threads have work, and each sequence then folds its own rows and merges the slices' softmax
 * states (their log-sum-exp) with its own. */
enum {
    CASCADE_PARTS = 2,     /* slices of a head's shared rows: work items for the threads */
    CASCADE_MIN_ROWS = 64, /* fewer shared rows are cheaper folded per sequence */
};

/* Per (part, sequence, query head): the slice's log-sum-exp, then its normalized output. */
static size_t cascade_slot_floats(const struct model_hparams *hp) {
    return (size_t)hp->head_dim + 1;
}

size_t attention_cascade_bytes(const struct model_hparams *hp, int chunk) {
    const size_t slots = (size_t)CASCADE_PARTS * chunk * hp->n_head;
    /* then int32: order[chunk], chunk_start[chunk + 1], shared rows [chunk][n_head_kv] */
    return slots * cascade_slot_floats(hp) * sizeof(float) +
           ((size_t)chunk * (2 + hp->n_head_kv) + 1) * sizeof(int32_t);
}

struct cascade {
    float *slot;     /* [CASCADE_PARTS][n][n_head][d + 1] */
    int32_t *order;  /* the batch's sequences, each group of forks together */
    int32_t *first;  /* [n_chunks + 1]: chunk k is order[first[k] .. first[k + 1]) */
    int32_t *shared; /* [n][n_kv]: rows of sequence i's head g read with its group */
    int n_chunks;
};

/* Groups the sequences by epoch (serial: n is small) and sets each group's shared rows per KV
 * head: the fewest any member holds; 0 for sequences alone or with few shared rows. Chunks are
 * runs of at most FORWARD_ATTN_QTILE members of one group, whose rows fit a thread's scratch as
 * a prefill tile's do. Returns whether any rows are shared. */
static bool cascade_plan(const struct adakv_ctx *c, struct adakv_ctx *const *seqs, int layer, int n,
                         struct cascade *cs) {
    const struct model_hparams *hp = &c->model->hp;
    const int n_kv = hp->n_head_kv;
    cs->slot = c->cascade;
    cs->order =
        (int32_t *)(cs->slot + (size_t)CASCADE_PARTS * n * hp->n_head * cascade_slot_floats(hp));
    cs->first = cs->order + n;
    cs->shared = cs->first + n + 1;
    memset(cs->shared, 0, (size_t)n * n_kv * sizeof *cs->shared);
    int placed = 0;
    bool any = false;
    cs->n_chunks = 0;
    for (int i = 0; i < n; i++) {
        const uint64_t ep = seqs[i]->kv.epoch;
        bool seen = false; /* a group is placed by its first member */
        for (int k = 0; k < i && ep && !seen; k++)
            seen = seqs[k]->kv.epoch == ep;
        if (seen)
            continue;
        int members = 0;
        for (int k = i; k < n; k++)
            if (k == i || (ep && seqs[k]->kv.epoch == ep)) {
                if (members % FORWARD_ATTN_QTILE == 0)
                    cs->first[cs->n_chunks++] = placed;
                cs->order[placed++] = k;
                members++;
            }
        if (members < 2)
            continue;
        for (int g = 0; g < n_kv; g++) {
            int32_t rows = INT32_MAX;
            for (int m = placed - members; m < placed; m++) {
                const int32_t sh = kv_cache_seg(&seqs[cs->order[m]]->kv, layer, g)->shared;
                rows = sh < rows ? sh : rows;
            }
            if (rows < CASCADE_MIN_ROWS)
                continue;
            any = true;
            for (int m = placed - members; m < placed; m++)
                cs->shared[(size_t)cs->order[m] * n_kv + g] = rows;
        }
    }
    cs->first[cs->n_chunks] = placed;
    return any;
}

/* Part `part` of KV head g's shared rows against the query rows of one chunk's sequences, into
 * their slots. */
static void cascade_slice(const struct adakv_ctx *c, struct adakv_ctx *const *seqs, int layer,
                          int n, const struct cascade *cs, int chunk, int g, int part,
                          float *scratch) {
    const struct model_hparams *hp = &c->model->hp;
    const int n_kv = hp->n_head_kv, G = hp->n_head / n_kv, d = hp->head_dim;
    const size_t qdim = (size_t)hp->n_head * d, slot = cascade_slot_floats(hp);
    const int m0 = cs->first[chunk], m1 = cs->first[chunk + 1];
    const int32_t rows = cs->shared[(size_t)cs->order[m0] * n_kv + g];
    if (rows == 0)
        return;
    const int32_t j0 = (int32_t)((int64_t)rows * part / CASCADE_PARTS);
    const int32_t j1 = (int32_t)((int64_t)rows * (part + 1) / CASCADE_PARTS);
    const int nr = (m1 - m0) * G;
    float *qbuf = scratch, *obuf = qbuf + (size_t)nr * d, *lse = obuf + (size_t)nr * d;
    int32_t *qpos = (int32_t *)(lse + nr);
    for (int m = m0; m < m1; m++) {
        const int i = cs->order[m];
        memcpy(qbuf + (size_t)(m - m0) * G * d, c->q + i * qdim + (size_t)g * G * d,
               (size_t)G * d * sizeof *qbuf);
        for (int r = 0; r < G; r++)
            qpos[(m - m0) * G + r] = seqs[i]->n_past;
    }
    /* the members' rows are equal up to `rows`: the first member's serve them all */
    const struct kv_segment *seg = kv_cache_seg(&seqs[cs->order[m0]]->kv, layer, g);
    c->ops->attn_rows_i8(obuf, lse, qbuf, nr, qpos, (const int8_t *)seg->k + (size_t)j0 * d,
                         seg->k_scale + j0, (const int8_t *)seg->v + (size_t)j0 * d,
                         seg->v_scale + j0, seg->pos + j0, j1 - j0, d, hp->attn_scale,
                         hp->layer[layer].window);
    for (int m = m0; m < m1; m++)
        for (int r = 0; r < G; r++) {
            const int row = (m - m0) * G + r;
            float *o =
                cs->slot + (((size_t)part * n + cs->order[m]) * hp->n_head + g * G + r) * slot;
            o[0] = lse[row];
            memcpy(o + 1, obuf + (size_t)row * d, (size_t)d * sizeof *o);
        }
}

/* Sequence i's own rows of KV head g (those after the shared ones), merged with the shared
 * slices' states, normalized into c->att. */
static void cascade_finish(const struct adakv_ctx *c, struct adakv_ctx *const *seqs, int layer,
                           int n, const struct cascade *cs, int i, int g, float *scratch) {
    const struct model_hparams *hp = &c->model->hp;
    const int n_kv = hp->n_head_kv, G = hp->n_head / n_kv, d = hp->head_dim;
    const size_t qdim = (size_t)hp->n_head * d, slot = cascade_slot_floats(hp);
    const int32_t rows = cs->shared[(size_t)i * n_kv + g];
    float *mx, *l, *acc;
    attn_fold(seqs[i], layer, g, 0, 1, seqs[i]->n_past, c->q + i * qdim, scratch, rows, INT32_MAX,
              &mx, &l, &acc);
    for (int r = 0; r < G; r++) {
        const int h = g * G + r;
        const float *part[CASCADE_PARTS];
        float top = mx[r];
        for (int p = 0; p < CASCADE_PARTS; p++) {
            part[p] = rows ? cs->slot + (((size_t)p * n + i) * hp->n_head + h) * slot : NULL;
            top = part[p] && part[p][0] > top ? part[p][0] : top;
        }
        /* the token's own key is among its own rows: l > 0 and top is finite */
        float *o = c->att + i * qdim + (size_t)h * d;
        const float w_own = expf(mx[r] - top);
        float sum = l[r] * w_own;
        for (int x = 0; x < d; x++)
            o[x] = acc[(size_t)r * d + x] * w_own;
        for (int p = 0; p < CASCADE_PARTS; p++) {
            if (!part[p] || part[p][0] == -INFINITY)
                continue;
            const float w = expf(part[p][0] - top); /* a slice's normalized output times its sum */
            sum += w;
            for (int x = 0; x < d; x++)
                o[x] += part[p][1 + x] * w;
        }
        const float inv = 1.0f / sum;
        for (int x = 0; x < d; x++)
            o[x] *= inv;
    }
}

void attention_batch(const struct adakv_ctx *c, struct adakv_ctx *const *seqs, int layer, int n) {
    const struct model_hparams *hp = &c->model->hp;
    const int n_kv = hp->n_head_kv;
    const size_t qdim = (size_t)hp->n_head * hp->head_dim;
    struct cascade cs;
    const bool cascade = c->ops->attn_rows_i8 && c->kv.type == KV_TYPE_INT8 &&
                         hp->head_dim <= ATTN_ROWS_DMAX && n >= 2 &&
                         cascade_plan(c, seqs, layer, n, &cs);
    if (cascade) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(c->n_threads)
        for (int it = 0; it < cs.n_chunks * n_kv * CASCADE_PARTS; it++) {
            float *scratch =
                c->attn_scratch + (size_t)omp_get_thread_num() * c->attn_scratch_floats;
            cascade_slice(c, seqs, layer, n, &cs, it / (n_kv * CASCADE_PARTS),
                          it / CASCADE_PARTS % n_kv, it % CASCADE_PARTS, scratch);
        }
    }
    /* one (sequence, KV head) per item: the sequences' lengths differ, so dynamic */
#pragma omp parallel for schedule(dynamic, 1) num_threads(c->n_threads)
    for (int it = 0; it < n * n_kv; it++) {
        const int i = it / n_kv, g = it % n_kv;
        float *scratch = c->attn_scratch + (size_t)omp_get_thread_num() * c->attn_scratch_floats;
        if (cascade && cs.shared[(size_t)i * n_kv + g])
            cascade_finish(c, seqs, layer, n, &cs, i, g, scratch);
        else
            attn_item(seqs[i], layer, g, 0, 1, seqs[i]->n_past, c->q + i * qdim, c->att + i * qdim,
                      scratch, NULL);
    }
}
