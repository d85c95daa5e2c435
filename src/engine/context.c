/* The context (forward.h): creation with its memory plan, reset, rewind, fork, and the decode
 * head map (its KV policy: kv-policy.c). */
#include "forward.h"

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "decode-pack.h"
#include "matmul.h"
#include "mem-plan.h"
#include "prefill-gemm.h"

void adakv_ctx_params_default(struct adakv_ctx_params *p) {
    memset(p, 0, sizeof *p);
    p->n_ctx = 4096;
    p->kv_type = ADAKV_KV_INT8;
    p->window = FORWARD_WINDOW_DEFAULT;
}

static size_t ws_bytes(const struct adakv_model *m, int chunk, int n_threads) {
    size_t best = matmul_ws_size(m->w.output->type, (int64_t)m->w.output->ne[0], chunk, n_threads);
    for (int il = 0; il < m->hp.n_layer; il++) {
        const struct model_layer *L = &m->w.layers[il];
        const struct gguf_tensor *ts[] = {L->wq,     L->wk,   L->wv,    L->wo,
                                          L->w_gate, L->w_up, L->w_down};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
            const size_t b = matmul_ws_size(ts[i]->type, (int64_t)ts[i]->ne[0], chunk, n_threads);
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
    if (c->policy.free)
        c->policy.free(c->policy.self);
    free(c->q_window), free(c->lse_window), free(c->q_recent);
    if (c->scratch_refs && --*c->scratch_refs == 0) { /* the last of a family of forks */
        free(c->x), free(c->xn), free(c->q), free(c->k), free(c->v), free(c->att);
        free(c->gate), free(c->up), free(c->proj), free(c->rope_cs);
        free(c->ws), free(c->attn_scratch), free(c->cascade), free(c->scratch_refs);
    }
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
    floats += (uint64_t)threads * attention_scratch_floats(hp);
    out->scratch = floats * sizeof(float) + ws_bytes(m, (int)chunk, threads) +
                   attention_cascade_bytes(hp, (int)chunk);
    /* the cache grows as tokens come, up to every (layer, KV head) holding n_ctx rows: K and V
     * rows plus a position each */
    const enum kv_type kt = kv_type_of(p->kv_type);
    out->kv = n_ctx * hp->n_layer * hp->n_head_kv *
              (2 * kv_row_bytes(kt, hp->head_dim) + sizeof(int32_t));
    out->model = (uint64_t)m->gguf->size + decode_pack_bytes(m->dpack) +
                 (m->gemm ? prefill_gemm_bytes(m->gemm) : 0) - decode_pack_released(m->dpack);
    out->ram = mem_plan_ram_bytes();
}

/* A new context; with `share`, one that uses share's scratch (same model and parameters: a fork)
 * instead of allocating its own, and is not held to the RAM check (its cache will be a copy of
 * rows that already fit). */
static struct adakv_ctx *ctx_make(struct adakv_model *m, const struct adakv_ctx_params *p,
                                  struct adakv_ctx *share, struct adakv_err *e) {
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
    if (!share && plan.ram && plan.model + plan.kv + plan.scratch > plan.ram) {
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
    c->params = *p;
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
    bool ok = true;
    c->q_window = alloc_floats(c->window, qdim, &ok);
    c->lse_window = alloc_floats(c->window, (size_t)hp->n_head, &ok);
    c->attn_scratch_floats = attention_scratch_floats(hp);
    if (share) { /* every scratch buffer is rewritten by each eval before it is read */
        c->x = share->x, c->xn = share->xn, c->q = share->q, c->k = share->k, c->v = share->v;
        c->att = share->att, c->gate = share->gate, c->up = share->up, c->proj = share->proj;
        c->rope_cs = share->rope_cs, c->ws = share->ws, c->attn_scratch = share->attn_scratch;
        c->cascade = share->cascade;
        c->scratch_refs = share->scratch_refs;
        ++*c->scratch_refs;
    } else {
        c->scratch_refs = malloc(sizeof *c->scratch_refs);
        if (!c->scratch_refs) { /* before the buffers, which only a count can free */
            err_set(e, "context: out of memory");
            adakv_ctx_free(c);
            return NULL;
        }
        *c->scratch_refs = 1;
        c->x = alloc_floats(c->n_ctx, hp->n_embd, &ok);
        c->xn = alloc_floats(ch, hp->n_embd, &ok);
        c->q = alloc_floats(ch, qdim, &ok);
        c->k = alloc_floats(ch, kvdim, &ok);
        c->v = alloc_floats(ch, kvdim, &ok);
        c->att = alloc_floats(ch, qdim, &ok);
        c->gate = alloc_floats(ch, hp->n_ff, &ok);
        c->up = alloc_floats(ch, hp->n_ff, &ok);
        c->proj = alloc_floats(ch, hp->n_embd, &ok);
        c->rope_cs = alloc_floats((size_t)c->n_rope * c->n_ctx, hp->n_rot, &ok);
        c->ws = malloc(ws_bytes(m, c->chunk, c->n_threads) + 64);
        ok = ok && c->ws;
        c->attn_scratch = alloc_floats(c->n_threads, c->attn_scratch_floats, &ok);
        c->cascade = malloc(attention_cascade_bytes(hp, c->chunk));
        ok = ok && c->cascade;
    }
    if (!ok) {
        err_set(e, "context: out of memory for the scratch of %d tokens", c->n_ctx);
        adakv_ctx_free(c);
        return NULL;
    }
    return c;
}

struct adakv_ctx *adakv_ctx_new(struct adakv_model *m, const struct adakv_ctx_params *p,
                                struct adakv_err *e) {
    return ctx_make(m, p, NULL, e);
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

struct adakv_ctx *adakv_ctx_fork(struct adakv_ctx *src, struct adakv_err *e) {
    if (src->broken) {
        err_set(e, "fork: an earlier eval failed midway; reset the context first");
        return NULL;
    }
    struct adakv_ctx *c = ctx_make(src->model, &src->params, src, e);
    if (!c)
        return NULL;
    /* the policy first: it sizes the query window and the recent ring; a hook that owns
     * nothing (adakv_ctx_set_compress) is shared as it is */
    const struct kv_policy *pol = &src->policy;
    if (!pol->fork && pol->free) {
        err_set(e, "fork: the context's KV policy cannot be copied");
        adakv_ctx_free(c);
        return NULL;
    }
    if (!pol->fork)
        kv_policy_install(c, pol);
    if ((pol->fork && pol->fork(pol->self, c, e)) || kv_policy_set_window(c, src->window, e) ||
        kv_cache_copy(&c->kv, &src->kv, e) ||
        (src->q_recent && !c->q_recent && kv_policy_record_recent(c, src->recent_cap, e))) {
        adakv_ctx_free(c);
        return NULL;
    }
    kv_cache_share(&c->kv, &src->kv); /* a batch of forks reads the common rows once */
    if (src->q_recent) {
        const struct model_hparams *hp = &src->model->hp;
        memcpy(c->q_recent, src->q_recent,
               (size_t)hp->n_layer * src->recent_cap * hp->n_head * hp->head_dim * sizeof(float));
        c->recent_total = src->recent_total;
    }
    c->n_past = src->n_past;
    forward_heads_changed(c);
    return c;
}

int adakv_kv_type_parse(const char *flag, const char *s, enum adakv_kv_type *out,
                        struct adakv_err *e) {
    if (!strcmp(s, "int8") || !strcmp(s, "q8") || !strcmp(s, "i8"))
        *out = ADAKV_KV_INT8;
    else if (!strcmp(s, "f16"))
        *out = ADAKV_KV_F16;
    else if (!strcmp(s, "f32"))
        *out = ADAKV_KV_F32;
    else
        return err_set(e, "%s: unsupported KV type '%s' (supported: int8, f16, f32)", flag, s);
    return 0;
}
