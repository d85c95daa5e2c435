/* The forward pass (forward.h): context creation, layer-major prefill / decode, attention over
 * the KV cache with an online softmax, and the output head. */
#include "forward.h"
#include "press-ctx.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "decode-pack.h"
#include "matmul.h"
#include "mem-plan.h"
#include "prefill-gemm.h"
#include "quant.h"
#include "tensor-type.h"

/* ==== small helpers ==== */

/* t as matmul's operand, with its decode repack when the model made one. */
static struct matmul_weight weight_of(const struct adakv_model *m, const struct gguf_tensor *t) {
    struct matmul_weight w = {
        .type = t->type,
        .n_in = (int64_t)t->ne[0],
        .n_out = (int64_t)t->ne[1],
        .data = t->data,
        .row_bytes = (size_t)tensor_type_row_size(t->type, t->ne[0]),
    };
    w.rp = decode_pack_find(m->dpack, t);
    return w;
}

/* y[i] = x W_i^T for the n_t weights W_i of the same row length (Q, K, V; gate, up; or one):
 * through oneDNN for prompt batches (x converted once for all), else the dispatched matmul (all
 * of them in one parallel region) or, for reference contexts, the plain double-accumulating one
 * (which may fail to allocate its row buffer). */
static int linear_multi(struct adakv_ctx *c, const struct gguf_tensor *const *t, int n_t, float *x,
                        int n, float *const *y, struct adakv_err *e) {
    struct matmul_weight w[MATMUL_MULTI_MAX];
    const struct matmul_weight *wp[MATMUL_MULTI_MAX];
    for (int i = 0; i < n_t; i++)
        w[i] = weight_of(c->model, t[i]), wp[i] = &w[i];
    if (c->reference) {
        for (int i = 0; i < n_t; i++)
            if (matmul_ref(&w[i], x, n, y[i], e))
                return -1;
        return 0;
    }
    if (c->model->gemm && n >= PREFILL_GEMM_MIN_ROWS) {
        const int rc =
            prefill_gemm_run(c->model->gemm, t, n_t, x, n, c->chunk, y, c->ws, c->n_threads, e);
        if (rc <= 0)
            return rc;
    }
    if (n_t == 1)
        matmul(&w[0], x, n, y[0], c->ws);
    else
        matmul_multi(wp, n_t, x, n, y, c->ws);
    return 0;
}

static int linear(struct adakv_ctx *c, const struct gguf_tensor *t, float *x, int n, float *y,
                  struct adakv_err *e) {
    return linear_multi(c, &t, 1, x, n, &y, e);
}

static const float *f32_data(const struct gguf_tensor *t) {
    return (const float *)t->data;
}

/* x[t][i] += b[i] for m rows of n values (a bias vector, F32 [n]). */
static void add_bias(float *x, int m, int n, const struct gguf_tensor *bias) {
    const float *b = f32_data(bias);
    for (int t = 0; t < m; t++)
        for (int i = 0; i < n; i++)
            x[(size_t)t * n + i] += b[i];
}

static size_t kv_elem_bytes(enum kv_type t) {
    return t == KV_TYPE_INT8 ? 1 : t == KV_TYPE_F16 ? 2 : 4;
}

/* ==== RoPE angles ==== */

/* Computed the way ggml's rope cache does it (float theta advanced by repeated
 * multiplication, divided by the per-dim frequency factor, scaled by freq_scale), so that our
 * keys match llama.cpp's to the last bit that matters. */
static void rope_angles(const struct adakv_model *m, float base, float freq_scale, int32_t pos0,
                        int n, float *cs) {
    const struct model_hparams *hp = &m->hp;
    const int half = hp->n_rot / 2;
    const float theta_scale = powf(base, -2.0f / (float)hp->n_rot);
    const float ext = hp->yarn_ext_factor;
    float mscale = hp->rope_attn_factor;
    if (ext != 0.0f) /* YaRN's magnitude correction for the interpolated angles */
        mscale *= 1.0f + 0.1f * logf(1.0f / freq_scale);
    for (int t = 0; t < n; t++) {
        float *row = cs + (size_t)t * hp->n_rot;
        float theta = (float)(pos0 + t);
        for (int i = 0; i < half; i++) {
            float ff = 1.0f;
            if (m->w.rope_freqs)
                memcpy(&ff, (const char *)m->w.rope_freqs->data + i * sizeof ff, sizeof ff);
            const float extrap = theta / ff, interp = freq_scale * extrap;
            float th = interp;
            if (ext != 0.0f) { /* YaRN: fast pairs keep their angle, slow ones interpolate */
                const float y = ((float)i - hp->yarn_corr[0]) /
                                fmaxf(0.001f, hp->yarn_corr[1] - hp->yarn_corr[0]);
                const float ramp = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * ext;
                th = interp * (1.0f - ramp) + extrap * ramp;
            }
            row[i] = cosf(th) * mscale;
            row[half + i] = sinf(th) * mscale;
            theta *= theta_scale;
        }
    }
}

void forward_rope_angles(const struct adakv_model *m, int32_t pos0, int n, float *cs) {
    rope_angles(m, m->hp.rope_base, m->hp.rope_freq_scale, pos0, n, cs);
}

void forward_rope_angles_layer(const struct adakv_model *m, int layer, int32_t pos0, int n,
                               float *cs) {
    const struct layer_hparams *lh = &m->hp.layer[layer];
    rope_angles(m, lh->rope_base, lh->rope_freq_scale, pos0, n, cs);
}

/* Index of layer il's RoPE setting in c->rope (the context found every distinct one). */
static int rope_set_of(const struct adakv_ctx *c, int il) {
    const struct layer_hparams *lh = &c->model->hp.layer[il];
    int s = 0;
    while (s < c->n_rope - 1 &&
           (c->rope[s].base != lh->rope_base || c->rope[s].freq_scale != lh->rope_freq_scale))
        s++;
    return s;
}

/* ==== attention ==== */

/* First row index in [0, len) whose stored position exceeds p (positions are non-decreasing
 * in a segment: appends are in order and compaction is stable). */
static int32_t rows_up_to(const int32_t *pos, int32_t len, int32_t p) {
    int32_t lo = 0, hi = len;
    while (lo < hi) {
        const int32_t mid = lo + (hi - lo) / 2;
        if (pos[mid] <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
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

/* One work item: the G query heads of KV head g for tokens t0..t1 against every cached row of
 * that head, normalized into out. */
static void attn_item(const struct adakv_ctx *c, int layer, int g, int t0, int t1, int32_t pos0,
                      const float *q, float *out, float *scratch) {
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
    }
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
static void attention(struct adakv_ctx *c, int layer, int n, int32_t pos0) {
    const int n_kv = c->model->hp.n_head_kv, QT = FORWARD_ATTN_QTILE;
    if (n == 1 && decode_split_pays(c, layer)) {
        attention_decode_split(c, layer, pos0);
        return;
    }
    if (n == 1) {
        /* Decode: thread t serves the KV heads the head map gives it (balanced by length after
         * compression, pages on its node). A team smaller than asked for still covers every
         * head: thread t also serves the lists of threads t + team, t + 2 team, ... */
#pragma omp parallel num_threads(c->n_threads)
        {
            const int t = omp_get_thread_num(), team = omp_get_num_threads();
            float *scratch = c->attn_scratch + (size_t)t * c->attn_scratch_floats;
            for (int owner = t; owner < c->heads.n_threads; owner += team)
                for (int i = c->heads.start[owner]; i < c->heads.start[owner + 1]; i++)
                    attn_item(c, layer, c->heads.order[i], 0, 1, pos0, c->q, c->att, scratch);
        }
        return;
    }
    const int n_qt = (n + QT - 1) / QT, items = n_kv * n_qt;
#pragma omp parallel for schedule(dynamic, 1) num_threads(c->n_threads)
    for (int it = 0; it < items; it++) {
        const int g = it % n_kv, qt = it / n_kv;
        const int t0 = qt * QT, t1 = t0 + QT < n ? t0 + QT : n;
        float *scratch = c->attn_scratch + (size_t)omp_get_thread_num() * c->attn_scratch_floats;
        attn_item(c, layer, g, t0, t1, pos0, c->q, c->att, scratch);
    }
}

/* ==== one layer over one chunk ==== */

static int layer_chunk(struct adakv_ctx *c, int il, int c0, int m, int n, int32_t pos_base,
                       struct adakv_err *e) {
    const struct adakv_model *mod = c->model;
    const struct model_hparams *hp = &mod->hp;
    const struct model_layer *L = &mod->w.layers[il];
    const struct simd_ops *ops = c->ops;
    const int D = hp->n_embd, d = hp->head_dim;
    const int qdim = hp->n_head * d, kvdim = hp->n_head_kv * d;
    float *x = c->x + (size_t)c0 * D;
    const int32_t pos0 = pos_base + c0;

    for (int t = 0; t < m; t++)
        ops->rmsnorm(c->xn + (size_t)t * D, x + (size_t)t * D, f32_data(L->attn_norm), D,
                     hp->norm_eps);
    const struct gguf_tensor *qkv[] = {L->wq, L->wk, L->wv};
    float *qkv_out[] = {c->q, c->k, c->v};
    if (linear_multi(c, qkv, 3, c->xn, m, qkv_out, e))
        return -1;
    if (L->bq) { /* qwen2 */
        add_bias(c->q, m, qdim, L->bq);
        add_bias(c->k, m, kvdim, L->bk);
        add_bias(c->v, m, kvdim, L->bv);
    }
    if (L->q_norm) { /* qwen3: every head of Q and K RMS-normalised on its own, before RoPE */
        for (int i = 0; i < m * hp->n_head; i++)
            ops->rmsnorm(c->q + (size_t)i * d, c->q + (size_t)i * d, f32_data(L->q_norm), d,
                         hp->norm_eps);
        for (int i = 0; i < m * hp->n_head_kv; i++)
            ops->rmsnorm(c->k + (size_t)i * d, c->k + (size_t)i * d, f32_data(L->k_norm), d,
                         hp->norm_eps);
    }
    const int neox = hp->rope_pairing == ROPE_PAIRING_NEOX;
    const float *rope_cs = c->rope_cs + (size_t)rope_set_of(c, il) * c->n_ctx * hp->n_rot;
    for (int t = 0; t < m; t++) {
        const float *cs = rope_cs + (size_t)(c0 + t) * hp->n_rot;
        ops->rope(c->q + (size_t)t * qdim, hp->n_head, d, hp->n_rot, cs, neox);
        ops->rope(c->k + (size_t)t * kvdim, hp->n_head_kv, d, hp->n_rot, cs, neox);
    }
    /* A sliding-window layer forgets rows no query from pos0 on can see, once there are a
     * window's worth of them: a memmove of at most ~2 windows every window tokens, and at most
     * 2 windows + a chunk rows held. Positions stay in order, so every reader of the cache
     * (attention, truncation, compaction) works unchanged. */
    const int win = hp->layer[il].window;
    for (int g = 0; win && g < hp->n_head_kv; g++)
        kv_segment_drop_before(kv_cache_seg(&c->kv, il, g), c->kv.type, d, pos0 - win + 1, win);
    for (int g = 0; g < hp->n_head_kv; g++)
        if (kv_cache_append(&c->kv, il, g, c->k + (size_t)g * d, c->v + (size_t)g * d, kvdim, m,
                            pos0, ops->quant_row_i8, e))
            return -1;
    /* int8 keys are stored rotated (key-rotation.h): from here on, queries are in that space */
    kv_cache_rotate_queries(&c->kv, c->q, hp->n_head, (size_t)qdim, m);
    /* Keep the post-RoPE queries of the batch's last `window` tokens for the press. */
    const int n_window = n < c->window ? n : c->window;
    for (int t = 0; t < m; t++) {
        const int w = c0 + t - (n - n_window);
        if (w >= 0)
            memcpy(c->q_window + (size_t)w * qdim, c->q + (size_t)t * qdim,
                   (size_t)qdim * sizeof(float));
    }
    if (c->q_recent) {
        for (int t = 0; t < m; t++) {
            const int idx = c0 + t;
            if (idx < n - c->recent_cap)
                continue;
            const long slot = (c->recent_total + idx) % c->recent_cap;
            memcpy(c->q_recent + ((size_t)il * c->recent_cap + (size_t)slot) * qdim,
                   c->q + (size_t)t * qdim, (size_t)qdim * sizeof(float));
        }
    }
    attention(c, il, m, pos0);
    if (linear(c, L->wo, c->att, m, c->proj, e))
        return -1;
    if (L->attn_post_norm) /* gemma3: the attention output is normalised before the residual */
        for (int t = 0; t < m; t++)
            ops->rmsnorm(c->proj + (size_t)t * D, c->proj + (size_t)t * D,
                         f32_data(L->attn_post_norm), D, hp->norm_eps);
    for (size_t i = 0; i < (size_t)m * D; i++)
        x[i] += c->proj[i];

    for (int t = 0; t < m; t++)
        ops->rmsnorm(c->xn + (size_t)t * D, x + (size_t)t * D, f32_data(L->ffn_norm), D,
                     hp->norm_eps);
    const struct gguf_tensor *gate_up[] = {L->w_gate, L->w_up};
    float *gate_up_out[] = {c->gate, c->up};
    if (linear_multi(c, gate_up, 2, c->xn, m, gate_up_out, e))
        return -1;
    const op_swiglu_fn act = hp->ffn_act == FFN_ACT_GEGLU_TANH ? ops->geglu : ops->swiglu;
    for (int t = 0; t < m; t++)
        act(c->gate + (size_t)t * hp->n_ff, c->gate + (size_t)t * hp->n_ff,
            c->up + (size_t)t * hp->n_ff, hp->n_ff);
    if (linear(c, L->w_down, c->gate, m, c->proj, e))
        return -1;
    if (L->ffn_post_norm)
        for (int t = 0; t < m; t++)
            ops->rmsnorm(c->proj + (size_t)t * D, c->proj + (size_t)t * D,
                         f32_data(L->ffn_post_norm), D, hp->norm_eps);
    for (size_t i = 0; i < (size_t)m * D; i++)
        x[i] += c->proj[i];
    return 0;
}

/* ==== eval ==== */

static int embed(struct adakv_ctx *c, const int32_t *tokens, int n) {
    const struct gguf_tensor *t = c->model->w.token_embd;
    const struct quant_kernels *k = quant_kernels_isa(t->type, SIMD_ISA_SCALAR);
    const size_t row = (size_t)tensor_type_row_size(t->type, t->ne[0]);
    const int D = c->model->hp.n_embd;
    const float scale = c->model->hp.embd_scale;
    for (int i = 0; i < n; i++) {
        float *x = c->x + (size_t)i * D;
        k->dequant_row((const char *)t->data + (size_t)tokens[i] * row, x, D);
        if (scale != 1.0f) /* gemma3: sqrt(n_embd) */
            for (int j = 0; j < D; j++)
                x[j] *= scale;
    }
    return 0;
}

static int output_head(struct adakv_ctx *c, int n, float *logits, bool all_logits,
                       struct adakv_err *e) {
    const struct adakv_model *mod = c->model;
    const int D = mod->hp.n_embd;
    const int first = all_logits ? 0 : n - 1;
    for (int c0 = first; c0 < n; c0 += c->chunk) {
        const int m = n - c0 < c->chunk ? n - c0 : c->chunk;
        for (int t = 0; t < m; t++)
            c->ops->rmsnorm(c->xn + (size_t)t * D, c->x + (size_t)(c0 + t) * D,
                            f32_data(mod->w.output_norm), D, mod->hp.norm_eps);
        float *dst = logits + (size_t)(c0 - first) * mod->hp.n_vocab;
        if (linear(c, mod->w.output, c->xn, m, dst, e))
            return -1;
        const float cap = mod->hp.logit_softcap;
        if (cap > 0.0f) /* llama.cpp: scale by 1 / cap, tanh, scale by cap */
            for (size_t i = 0; i < (size_t)m * mod->hp.n_vocab; i++)
                dst[i] = tanhf(dst[i] * (1.0f / cap)) * cap;
    }
    return 0;
}

int adakv_eval(struct adakv_ctx *c, const int32_t *tokens, int n, float *logits, bool all_logits,
               struct adakv_err *e) {
    const struct model_hparams *hp = &c->model->hp;
    if (c->broken)
        return err_set(e, "eval: an earlier eval failed midway; reset the context first");
    if (n <= 0 || !tokens)
        return err_set(e, "eval: no tokens to evaluate (n = %d)", n);
    if (n > c->n_ctx - c->n_past)
        return err_set(e, "eval: %d tokens do not fit in the context (%d of %d positions used)", n,
                       c->n_past, c->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return err_set(e, "eval: token id %d at index %d is outside the vocabulary [0, %d)",
                           (int)tokens[i], i, hp->n_vocab);

    omp_set_num_threads(c->n_threads); /* for matmul's parallel regions */
    if (!c->plan.pinned) { /* once, in the context's first parallel region (threads.h) */
        threads_pin(&c->plan);
        threads_plan_describe(&c->plan, c->placement, sizeof c->placement);
    }
    const int32_t pos_base = c->n_past;
    for (int r = 0; r < c->n_rope; r++)
        rope_angles(c->model, c->rope[r].base, c->rope[r].freq_scale, pos_base, n,
                    c->rope_cs + (size_t)r * c->n_ctx * hp->n_rot);
    embed(c, tokens, n);
    c->broken = true; /* until every layer has appended its rows */
    for (int il = 0; il < hp->n_layer; il++) {
        for (int c0 = 0; c0 < n; c0 += c->chunk) {
            const int m = n - c0 < c->chunk ? n - c0 : c->chunk;
            if (n > 1 && c->interrupt && *c->interrupt) /* a long prompt stops within a chunk */
                return err_set(e, "eval: interrupted");
            if (layer_chunk(c, il, c0, m, n, pos_base, e))
                return -1;
        }
        /* COMPRESSION POINT: layer il's cache is complete for this batch. */
        if (c->compress_layer && n > 1) {
            const int n_window = n < c->window ? n : c->window;
            const double t0 = omp_get_wtime();
            if (c->compress_layer(c->compress_user, &c->kv, il, c->q_window, n_window, e))
                return -1;
            c->press_s += omp_get_wtime() - t0;
        }
        if (c->progress && n > 1)
            c->progress(c->progress_user, il + 1, hp->n_layer);
    }
    c->n_past += n;
    c->broken = false;
    c->recent_total += n;
    /* decode-time eviction runs between decode steps, once this token's rows are in */
    if (n == 1 && c->press && press_after_decode(c, e))
        return -1;
    if (n > 1)
        forward_heads_changed(c);
    if (logits)
        return output_head(c, n, logits, all_logits, e);
    return 0;
}

/* ==== context ==== */

void adakv_ctx_params_default(struct adakv_ctx_params *p) {
    memset(p, 0, sizeof *p);
    p->n_ctx = 4096;
    p->kv_type = ADAKV_KV_INT8;
    p->window = FORWARD_WINDOW_DEFAULT;
}

static size_t ws_bytes(const struct adakv_model *m, int chunk) {
    size_t best = matmul_ws_size(m->w.output->type, (int64_t)m->w.output->ne[0], chunk);
    for (int il = 0; il < m->hp.n_layer; il++) {
        const struct model_layer *L = &m->w.layers[il];
        const struct gguf_tensor *ts[] = {L->wq,     L->wk,   L->wv,    L->wo,
                                          L->w_gate, L->w_up, L->w_down};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
            const size_t b = matmul_ws_size(ts[i]->type, (int64_t)ts[i]->ne[0], chunk);
            best = b > best ? b : best;
            const size_t g =
                prefill_gemm_scratch_bytes(PREFILL_GEMM_BF16, (int64_t)ts[i]->ne[0], chunk);
            best = m->gemm && g > best ? g : best;
        }
    }
    return best;
}

void adakv_ctx_free(struct adakv_ctx *c) {
    if (!c)
        return;
    kv_cache_free(&c->kv);
    press_binding_free(c->press);
    free(c->x), free(c->xn), free(c->q), free(c->k), free(c->v), free(c->att);
    free(c->gate), free(c->up), free(c->proj), free(c->rope_cs), free(c->q_window);
    free(c->q_recent);
    free(c->ws), free(c->attn_scratch);
    threads_plan_free(&c->plan);
    head_map_free(&c->heads);
    free(c);
}

static float *alloc_floats(size_t rows, size_t cols, bool *ok) {
    float *p = malloc(rows * cols * sizeof(float) + 64);
    *ok = *ok && p;
    return p;
}

#define MAX_CTX (1 << 22)

/* Distinct (RoPE base, frequency scale) pairs of the layers: one cos/sin table each. */
static int rope_settings(const struct model_hparams *hp) {
    int n = 0;
    for (int il = 0; il < hp->n_layer; il++) {
        const struct layer_hparams *lh = &hp->layer[il];
        int j = 0;
        while (j < il && (hp->layer[j].rope_base != lh->rope_base ||
                          hp->layer[j].rope_freq_scale != lh->rope_freq_scale))
            j++;
        n += j == il;
    }
    return n;
}

static enum kv_type kv_type_of(enum adakv_kv_type t) {
    return t == ADAKV_KV_F16 ? KV_TYPE_F16 : t == ADAKV_KV_F32 ? KV_TYPE_F32 : KV_TYPE_INT8;
}

void adakv_ctx_plan(const struct adakv_model *m, const struct adakv_ctx_params *p,
                    struct adakv_mem_plan *out) {
    const struct model_hparams *hp = &m->hp;
    const uint64_t n_ctx = p->n_ctx > 0 ? (uint64_t)p->n_ctx : 0;
    const uint64_t chunk = n_ctx < FORWARD_CHUNK ? n_ctx : FORWARD_CHUNK;
    const int window = p->window > 0 ? p->window : FORWARD_WINDOW_DEFAULT;
    const int threads = p->n_threads > 0   ? p->n_threads
                        : m->n_threads > 0 ? m->n_threads
                                           : omp_get_num_procs();
    const uint64_t qdim = (uint64_t)hp->n_head * hp->head_dim;
    const uint64_t kvdim = (uint64_t)hp->n_head_kv * hp->head_dim;
    /* the same buffers adakv_ctx_new allocates, in floats */
    uint64_t floats = n_ctx * hp->n_embd + chunk * (2 * (uint64_t)hp->n_embd + 2 * qdim +
                                                    2 * kvdim + 2 * (uint64_t)hp->n_ff);
    floats += (uint64_t)rope_settings(hp) * n_ctx * hp->n_rot;
    floats += (uint64_t)(window < (int)n_ctx ? window : (int)n_ctx) * qdim;
    const size_t fold = fold_floats(hp, FORWARD_ATTN_QTILE), dec = split_decode_floats(hp);
    floats += (uint64_t)threads * ((fold > dec ? fold : dec) + 16);
    out->scratch = floats * sizeof(float) + ws_bytes(m, (int)chunk);
    /* the cache grows as tokens come, up to every (layer, KV head) holding n_ctx rows: K and V
     * rows plus a position each */
    const enum kv_type kt = kv_type_of(p->kv_type);
    out->kv = n_ctx * hp->n_layer * hp->n_head_kv *
              (2 * kv_row_bytes(kt, hp->head_dim) + sizeof(int32_t));
    out->model = (uint64_t)m->gguf->size + decode_pack_bytes(m->dpack) +
                 (m->gemm ? prefill_gemm_bytes(m->gemm) : 0) - decode_pack_released(m->dpack);
    out->ram = mem_plan_ram_bytes();
}

struct adakv_ctx *adakv_ctx_new(struct adakv_model *m, const struct adakv_ctx_params *p,
                                struct adakv_err *e) {
    struct adakv_ctx_params def;
    if (!p) {
        adakv_ctx_params_default(&def);
        p = &def;
    }
    if (p->n_ctx < 1 || p->n_ctx > MAX_CTX) {
        err_set(e, "context: n_ctx %d is out of range [1, %d]", p->n_ctx, MAX_CTX);
        return NULL;
    }
    if (p->window < 0) {
        err_set(e, "context: window %d is negative", p->window);
        return NULL;
    }
    enum kv_type kt;
    switch (p->kv_type) {
    case ADAKV_KV_INT8:
        kt = KV_TYPE_INT8;
        break;
    case ADAKV_KV_F16:
        kt = KV_TYPE_F16;
        break;
    case ADAKV_KV_F32:
        kt = KV_TYPE_F32;
        break;
    default:
        err_set(e, "context: unknown KV type %d", (int)p->kv_type);
        return NULL;
    }
    /* refuse what cannot fit before allocating any of it: the OOM killer gives no message */
    struct adakv_mem_plan plan;
    adakv_ctx_plan(m, p, &plan);
    const double gib = 1024.0 * 1024.0 * 1024.0;
    if (plan.ram && plan.model + plan.kv + plan.scratch > plan.ram) {
        err_set(e,
                "context: n_ctx %d needs %.1f GiB (model %.1f, %s KV cache at full context %.1f, "
                "scratch %.1f), more than the %.1f GiB of RAM here",
                p->n_ctx, (plan.model + plan.kv + plan.scratch) / gib, plan.model / gib,
                kt == KV_TYPE_INT8  ? "int8"
                : kt == KV_TYPE_F16 ? "f16"
                                    : "f32",
                plan.kv / gib, plan.scratch / gib, plan.ram / gib);
        return NULL;
    }
    struct adakv_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(e, "context: out of memory");
        return NULL;
    }
    const struct model_hparams *hp = &m->hp;
    c->model = m;
    c->n_ctx = p->n_ctx;
    c->n_threads = p->n_threads > 0   ? p->n_threads
                   : m->n_threads > 0 ? m->n_threads
                                      : omp_get_num_procs();
    c->reference = p->reference;
    c->window = p->window > 0 ? p->window : FORWARD_WINDOW_DEFAULT;
    c->window = c->window < c->n_ctx ? c->window : c->n_ctx;
    c->progress = p->progress;
    c->progress_user = p->progress_user;
    c->interrupt = p->interrupt;
    c->ops = p->reference ? simd_ops_scalar() : simd_ops_best();
    struct threads_topology topo;
    if (threads_topology_detect(&topo, e)) {
        free(c);
        return NULL;
    }
    if (p->n_threads <= 0 && m->n_threads <= 0) /* one thread per core (of the node: isolate) */
        c->n_threads = threads_default_count(&topo, p->numa);
    const int plan_rc = threads_plan_make(&topo, p->numa, c->n_threads, &c->plan, e);
    threads_topology_free(&topo);
    if (plan_rc || head_map_init(&c->heads, hp->n_head_kv, c->n_threads, e)) {
        threads_plan_free(&c->plan);
        free(c);
        return NULL;
    }
    threads_plan_describe(&c->plan, c->placement, sizeof c->placement);
    if (kv_cache_init(&c->kv, kt, hp->n_layer, hp->n_head_kv, hp->head_dim, e)) {
        threads_plan_free(&c->plan);
        head_map_free(&c->heads);
        free(c);
        return NULL;
    }
    c->chunk = c->n_ctx < FORWARD_CHUNK ? c->n_ctx : FORWARD_CHUNK;
    const size_t ch = (size_t)c->chunk, qdim = (size_t)hp->n_head * hp->head_dim;
    const size_t kvdim = (size_t)hp->n_head_kv * hp->head_dim;
    bool ok = true;
    c->x = alloc_floats(c->n_ctx, hp->n_embd, &ok);
    c->xn = alloc_floats(ch, hp->n_embd, &ok);
    c->q = alloc_floats(ch, qdim, &ok);
    c->k = alloc_floats(ch, kvdim, &ok);
    c->v = alloc_floats(ch, kvdim, &ok);
    c->att = alloc_floats(ch, qdim, &ok);
    c->gate = alloc_floats(ch, hp->n_ff, &ok);
    c->up = alloc_floats(ch, hp->n_ff, &ok);
    c->proj = alloc_floats(ch, hp->n_embd, &ok);
    for (int il = 0; il < hp->n_layer; il++) { /* the distinct RoPE settings of the layers */
        const struct layer_hparams *lh = &hp->layer[il];
        int r = 0;
        while (r < c->n_rope &&
               (c->rope[r].base != lh->rope_base || c->rope[r].freq_scale != lh->rope_freq_scale))
            r++;
        if (r == c->n_rope && r == FORWARD_MAX_ROPE) {
            err_set(e, "context: the layers use more than %d RoPE settings", FORWARD_MAX_ROPE);
            adakv_ctx_free(c);
            return NULL;
        }
        if (r == c->n_rope)
            c->rope[c->n_rope++] = (struct forward_rope){lh->rope_base, lh->rope_freq_scale};
    }
    c->rope_cs = alloc_floats((size_t)c->n_rope * c->n_ctx, hp->n_rot, &ok);
    c->q_window = alloc_floats(c->window, qdim, &ok);
    c->ws = malloc(ws_bytes(m, c->chunk) + 64);
    ok = ok && c->ws;
    /* a prefill query tile's fold, or one decoding token's split fold with its parts */
    const size_t prefill_floats = fold_floats(hp, FORWARD_ATTN_QTILE);
    const size_t decode_floats = split_decode_floats(hp);
    c->attn_scratch_floats = (prefill_floats > decode_floats ? prefill_floats : decode_floats) + 16;
    c->attn_scratch = alloc_floats(c->n_threads, c->attn_scratch_floats, &ok);
    if (!ok) {
        err_set(e, "context: out of memory for the scratch of %d tokens", c->n_ctx);
        adakv_ctx_free(c);
        return NULL;
    }
    return c;
}

int adakv_ctx_n_past(const struct adakv_ctx *c) {
    return c->n_past;
}

void adakv_ctx_reset(struct adakv_ctx *c) {
    kv_cache_clear(&c->kv);
    c->n_past = 0;
    c->recent_total = 0;
    c->press_s = 0;
    c->broken = false;
}

double adakv_ctx_press_seconds(const struct adakv_ctx *c) {
    return c->press_s;
}

int adakv_ctx_rewind(struct adakv_ctx *c, int n_past, struct adakv_err *e) {
    if (c->broken)
        return err_set(e, "rewind: an earlier eval failed midway; reset the context first");
    if (n_past < 0 || n_past > c->n_past)
        return err_set(e, "rewind: position %d is outside [0, %d]", n_past, c->n_past);
    /* sliding-window layers keep only the recent rows: the next token needs those of the
     * window before n_past still there */
    const struct model_hparams *hp = &c->model->hp;
    for (int il = 0; il < hp->n_layer && n_past > 0; il++) {
        const int32_t win = hp->layer[il].window,
                      need = n_past - win + 1 > 0 ? n_past - win + 1 : 0;
        for (int g = 0; win && g < hp->n_head_kv; g++) {
            const struct kv_segment *seg = kv_cache_seg(&c->kv, il, g);
            if (seg->len == 0 || seg->pos[0] > need)
                return err_set(
                    e,
                    "rewind: position %d needs keys from position %d, which sliding-window "
                    "layer %d no longer holds; reset and evaluate again",
                    n_past, (int)need, il);
        }
    }
    kv_cache_truncate(&c->kv, n_past);
    c->n_past = n_past;
    c->recent_total = 0; /* the recorded queries may belong to forgotten tokens */
    return 0;
}

size_t adakv_ctx_kv_rows(const struct adakv_ctx *c) {
    size_t rows = 0;
    for (size_t i = 0; i < (size_t)c->kv.n_layer * c->kv.n_head_kv; i++)
        rows += (size_t)c->kv.seg[i].len;
    return rows;
}

size_t adakv_ctx_kv_bytes(const struct adakv_ctx *c) {
    return kv_cache_bytes(&c->kv);
}
struct kv_cache *adakv_ctx_kv(struct adakv_ctx *c) {
    return &c->kv;
}

int forward_record_recent(struct adakv_ctx *c, int cap, struct adakv_err *e) {
    const struct model_hparams *hp = &c->model->hp;
    const size_t qdim = (size_t)hp->n_head * hp->head_dim;
    float *q = realloc(c->q_recent, (size_t)hp->n_layer * cap * qdim * sizeof *q);
    if (!q)
        return err_set(e, "context: out of memory for %d recent query rows per layer", cap);
    c->q_recent = q;
    c->recent_cap = cap;
    c->recent_total = 0;
    return 0;
}

int forward_recent_queries(const struct adakv_ctx *c, int il, float *dst) {
    const struct model_hparams *hp = &c->model->hp;
    const size_t qdim = (size_t)hp->n_head * hp->head_dim;
    const int n = c->recent_total < c->recent_cap ? (int)c->recent_total : c->recent_cap;
    for (int i = 0; i < n; i++) {
        const long slot = (c->recent_total - n + i) % c->recent_cap;
        memcpy(dst + (size_t)i * qdim,
               c->q_recent + ((size_t)il * c->recent_cap + (size_t)slot) * qdim,
               qdim * sizeof *dst);
    }
    return n;
}

int forward_set_window(struct adakv_ctx *c, int window, struct adakv_err *e) {
    if (window < 1)
        return err_set(e, "--window: %d must be >= 1", window);
    window = window < c->n_ctx ? window : c->n_ctx;
    const struct model_hparams *hp = &c->model->hp;
    float *q = realloc(c->q_window, (size_t)window * hp->n_head * hp->head_dim * sizeof *q);
    if (!q)
        return err_set(e, "context: out of memory for a %d-row query window", window);
    c->q_window = q;
    c->window = window;
    return 0;
}

const char *adakv_ctx_placement(const struct adakv_ctx *c) {
    return c->placement;
}

void forward_heads_changed(struct adakv_ctx *c) {
    head_map_build(&c->heads, &c->kv);
    struct adakv_err e;
    if (c->plan.pin && head_map_place(&c->heads, &c->plan, &c->kv, &e) < 0) {
        /* placement only affects speed: keep running, say why in the placement line */
        snprintf(c->plan.note, sizeof c->plan.note, "%.120s", e.msg);
        threads_plan_describe(&c->plan, c->placement, sizeof c->placement);
    }
}

void adakv_ctx_set_compress(struct adakv_ctx *c, adakv_compress_layer_fn fn, void *user) {
    c->compress_layer = fn;
    c->compress_user = user;
}
