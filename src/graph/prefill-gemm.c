/* Prefill GEMMs through oneDNN (prefill-gemm.h). */
#include "prefill-gemm.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "tensor-type.h"

struct prefill_weight {
    const struct gguf_tensor *t; /* the model tensor this replaces (sorted by address) */
    int64_t n_in, n_out;
    dnnl_memory_t packed; /* weights in the brgemm layout, owned by oneDNN */
    size_t bytes;
};

/* One primitive per (weight shape, M): oneDNN 2.6 picks its fast brgemm kernels only for a
 * fixed M (with M left to run time it falls back to gemm:jit, measured 2.5x slower here), so M
 * is rounded up to a multiple of M_STEP (the caller's buffers hold that many rows) and a
 * primitive is made the first time a (shape, M) is met: at most 4 shapes x 8 M values for a
 * 512-row chunk, each ~0.5 ms to create, once per process. */
enum { M_STEP = 64, CACHE_MAX = 256 };

struct prim_entry {
    int64_t n_in, n_out, m;
    dnnl_primitive_t prim;
};

struct prefill_gemm {
    enum prefill_gemm_type type;
    dnnl_engine_t engine;
    int n;
    struct prefill_weight *w; /* [n], sorted by t */
    size_t bytes;
    pthread_mutex_t lock; /* guards the primitive cache (contexts may share the model) */
    int n_prim;
    struct prim_entry prim[CACHE_MAX];
};

static dnnl_data_type_t dt_of(enum prefill_gemm_type t) {
    return t == PREFILL_GEMM_BF16 ? dnnl_bf16 : dnnl_f32;
}

static size_t elem_of(enum prefill_gemm_type t) {
    return t == PREFILL_GEMM_BF16 ? 2 : 4;
}

const char *prefill_gemm_name(const struct prefill_gemm *g) {
    return g->type == PREFILL_GEMM_BF16 ? "bf16" : "f32";
}

size_t prefill_gemm_scratch_bytes(enum prefill_gemm_type type, int64_t n_in, int m) {
    return type == PREFILL_GEMM_BF16 ? (size_t)n_in * (size_t)m * sizeof(uint16_t) : 0;
}

/* f32 -> bf16, round to nearest even (NaN kept quiet), as vcvtneps2bf16 does. */
static void to_bf16(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], sizeof u);
        if ((u & 0x7fffffffu) > 0x7f800000u)
            dst[i] = (uint16_t)((u >> 16) | 0x40u);
        else
            dst[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}

static int dnnl_fail(struct adakv_err *e, const char *what, const char *name, dnnl_status_t st) {
    return err_set(e, "oneDNN: %s failed for %s (status %d)", what, name, (int)st);
}

/* Dequantizes t (rows of n_in values) into dense rows of the GEMM type, in parallel. */
static void *dense_rows(const struct gguf_tensor *t, enum prefill_gemm_type type, int n_threads) {
    const int64_t n_in = (int64_t)t->ne[0], n_out = (int64_t)t->ne[1];
    const struct quant_kernels *k = quant_kernels_isa(t->type, simd_isa());
    const size_t rb = (size_t)tensor_type_row_size(t->type, t->ne[0]);
    void *out = malloc((size_t)(n_in * n_out) * elem_of(type));
    float *tmp = malloc((size_t)n_threads * (size_t)n_in * sizeof *tmp);
    if (!out || !tmp) {
        free(out), free(tmp);
        return NULL;
    }
#pragma omp parallel for schedule(static) num_threads(n_threads)
    for (int64_t r = 0; r < n_out; r++) {
        float *row = tmp + (size_t)omp_get_thread_num() * (size_t)n_in;
        k->dequant_row((const char *)t->data + (size_t)r * rb, row, n_in);
        if (type == PREFILL_GEMM_BF16)
            to_bf16((uint16_t *)out + (size_t)(r * n_in), row, (size_t)n_in);
        else
            memcpy((float *)out + (size_t)(r * n_in), row, (size_t)n_in * sizeof *row);
    }
    free(tmp);
    return out;
}

/* The matmul primitive descriptor for m rows of w's shape, with weights in layout `wei`
 * (dnnl_format_tag_any to let oneDNN choose). */
static dnnl_status_t make_pd(const struct prefill_gemm *g, int64_t n_in, int64_t n_out, int64_t m,
                             const dnnl_memory_desc_t *wei, dnnl_primitive_desc_t *pd) {
    const dnnl_data_type_t dt = dt_of(g->type);
    dnnl_memory_desc_t src_md, dst_md;
    const dnnl_dims_t src_dims = {m, n_in}, dst_dims = {m, n_out};
    dnnl_status_t st;
    if ((st = dnnl_memory_desc_init_by_tag(&src_md, 2, src_dims, dt, dnnl_ab)) ||
        (st = dnnl_memory_desc_init_by_tag(&dst_md, 2, dst_dims, dnnl_f32, dnnl_ab)))
        return st;
    dnnl_matmul_desc_t md;
    if ((st = dnnl_matmul_desc_init(&md, &src_md, wei, NULL, &dst_md)))
        return st;
    return dnnl_primitive_desc_create(pd, &md, NULL, g->engine, NULL);
}

/* Lets oneDNN choose w's weight layout (for a full chunk of rows; the other M values are then
 * asked to use the same layout) and reorders the dense rows into it. */
static int pack_weight(struct prefill_gemm *g, struct prefill_weight *w, int n_threads,
                       struct adakv_err *e) {
    const struct gguf_tensor *t = w->t;
    const dnnl_data_type_t dt = dt_of(g->type);
    dnnl_memory_desc_t wei_any, wei_plain;
    const dnnl_dims_t wei_dims = {w->n_in, w->n_out};
    dnnl_status_t st;
    if ((st = dnnl_memory_desc_init_by_tag(&wei_any, 2, wei_dims, dt, dnnl_format_tag_any)) ||
        /* our rows are [n_out][n_in]: as the K x N weights matrix, that is the "ba" layout */
        (st = dnnl_memory_desc_init_by_tag(&wei_plain, 2, wei_dims, dt, dnnl_ba)))
        return dnnl_fail(e, "memory descriptor", t->name, st);
    dnnl_primitive_desc_t pd;
    if ((st = make_pd(g, w->n_in, w->n_out, 8 * M_STEP, &wei_any, &pd)))
        return dnnl_fail(e, "matmul primitive descriptor", t->name, st);
    const dnnl_memory_desc_t *wei_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    w->bytes = dnnl_memory_desc_get_size(wei_md);
    st = dnnl_memory_create(&w->packed, wei_md, g->engine, DNNL_MEMORY_ALLOCATE);
    dnnl_primitive_desc_t rpd = NULL;
    if (!st)
        st = dnnl_reorder_primitive_desc_create(&rpd, &wei_plain, g->engine, wei_md, g->engine,
                                                NULL);
    dnnl_primitive_desc_destroy(pd);
    if (st)
        return dnnl_fail(e, "weight packing", t->name, st);
    void *dense = dense_rows(t, g->type, n_threads);
    dnnl_memory_t plain = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_stream_t stream = NULL;
    if (!dense) {
        dnnl_primitive_desc_destroy(rpd);
        return err_set(e, "prefill GEMM: out of memory unpacking %s", t->name);
    }
    st = dnnl_memory_create(&plain, &wei_plain, g->engine, dense);
    if (!st)
        st = dnnl_primitive_create(&reorder, rpd);
    if (!st)
        st = dnnl_stream_create(&stream, g->engine, dnnl_stream_default_flags);
    if (!st) {
        const dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, w->packed}};
        st = dnnl_primitive_execute(reorder, stream, 2, args);
        if (!st)
            st = dnnl_stream_wait(stream);
    }
    if (stream)
        dnnl_stream_destroy(stream);
    if (reorder)
        dnnl_primitive_destroy(reorder);
    if (plain)
        dnnl_memory_destroy(plain);
    dnnl_primitive_desc_destroy(rpd);
    free(dense);
    return st ? dnnl_fail(e, "weight reorder", t->name, st) : 0;
}

/* The cached primitive for m rows of w, made on first use; NULL when oneDNN cannot make one. */
static dnnl_primitive_t primitive_for(struct prefill_gemm *g, const struct prefill_weight *w,
                                      int64_t m) {
    dnnl_primitive_t p = NULL;
    bool known = false; /* a failed (shape, M) is remembered too, as a NULL primitive */
    pthread_mutex_lock(&g->lock);
    for (int i = 0; i < g->n_prim && !known; i++)
        if (g->prim[i].n_in == w->n_in && g->prim[i].n_out == w->n_out && g->prim[i].m == m)
            p = g->prim[i].prim, known = true;
    if (!known && g->n_prim < CACHE_MAX) {
        const dnnl_memory_desc_t *wei = NULL;
        dnnl_memory_get_memory_desc(w->packed, &wei);
        dnnl_primitive_desc_t pd;
        dnnl_status_t st = make_pd(g, w->n_in, w->n_out, m, wei, &pd);
        if (!st) {
            st = dnnl_primitive_create(&p, pd);
            dnnl_primitive_desc_destroy(pd);
        }
        if (st)
            p = NULL;
        g->prim[g->n_prim++] = (struct prim_entry){w->n_in, w->n_out, m, p};
    }
    pthread_mutex_unlock(&g->lock);
    return p;
}

static int cmp_weight(const void *a, const void *b) {
    const uintptr_t x = (uintptr_t)((const struct prefill_weight *)a)->t;
    const uintptr_t y = (uintptr_t)((const struct prefill_weight *)b)->t;
    return (x > y) - (x < y);
}

struct prefill_gemm *prefill_gemm_create(enum prefill_gemm_type type,
                                         const struct gguf_tensor *const *w, int n, int n_threads,
                                         struct adakv_err *e) {
    struct prefill_gemm *g = calloc(1, sizeof *g);
    if (!g || !(g->w = calloc((size_t)(n > 0 ? n : 1), sizeof *g->w))) {
        free(g);
        err_set(e, "prefill GEMM: out of memory");
        return NULL;
    }
    g->type = type;
    pthread_mutex_init(&g->lock, NULL);
    dnnl_status_t st = dnnl_engine_create(&g->engine, dnnl_cpu, 0);
    if (st) {
        dnnl_fail(e, "engine creation", "the CPU", st);
        free(g->w), free(g);
        return NULL;
    }
    /* oneDNN sizes its team from the OpenMP ICV: give it ours while packing, then restore. */
    const int saved = omp_get_max_threads();
    omp_set_num_threads(n_threads);
    for (int i = 0; i < n; i++) {
        struct prefill_weight *pw = &g->w[g->n];
        pw->t = w[i];
        pw->n_in = (int64_t)w[i]->ne[0];
        pw->n_out = (int64_t)w[i]->ne[1];
        g->n++; /* counted before packing so that a failure frees what was made */
        if (pack_weight(g, pw, n_threads, e)) {
            omp_set_num_threads(saved);
            prefill_gemm_free(g);
            return NULL;
        }
        g->bytes += pw->bytes;
    }
    omp_set_num_threads(saved);
    qsort(g->w, (size_t)g->n, sizeof *g->w, cmp_weight);
    return g;
}

void prefill_gemm_free(struct prefill_gemm *g) {
    if (!g)
        return;
    for (int i = 0; i < g->n; i++)
        if (g->w[i].packed)
            dnnl_memory_destroy(g->w[i].packed);
    for (int i = 0; i < g->n_prim; i++)
        if (g->prim[i].prim)
            dnnl_primitive_destroy(g->prim[i].prim);
    pthread_mutex_destroy(&g->lock);
    if (g->engine)
        dnnl_engine_destroy(g->engine);
    free(g->w);
    free(g);
}

size_t prefill_gemm_bytes(const struct prefill_gemm *g) {
    return g ? g->bytes : 0;
}

int prefill_gemm_run(struct prefill_gemm *g, const struct gguf_tensor *const *t, int n_t, float *x,
                     int m, int m_cap, float *const *y, void *scratch, int n_threads,
                     struct adakv_err *e) {
    int64_t mp = ((int64_t)m + M_STEP - 1) / M_STEP * M_STEP;
    mp = mp < m_cap ? mp : m_cap;
    const struct prefill_weight *w[PREFILL_GEMM_MULTI_MAX];
    dnnl_primitive_t prim[PREFILL_GEMM_MULTI_MAX];
    for (int i = 0; i < n_t; i++) {
        const struct prefill_weight key = {.t = t[i]};
        w[i] = bsearch(&key, g->w, (size_t)g->n, sizeof *g->w, cmp_weight);
        /* oneDNN may not offer this M with the packed layout: the caller's own matmul runs */
        if (!w[i] || !(prim[i] = primitive_for(g, w[i], mp)))
            return 1;
    }
    const dnnl_data_type_t dt = dt_of(g->type);
    const size_t row_in = (size_t)w[0]->n_in;
    /* x is converted (bf16) and padded once for all the weights that share it */
    void *src = x;
    if (g->type == PREFILL_GEMM_BF16) {
#pragma omp parallel for schedule(static) num_threads(n_threads)
        for (int r = 0; r < m; r++)
            to_bf16((uint16_t *)scratch + (size_t)r * row_in, x + (size_t)r * row_in, row_in);
        src = scratch;
    }
    /* The rows past m only pad M up to the primitive's: zero them so nothing undefined is read
     * (their outputs land in the caller's spare rows and are never used). */
    memset((char *)src + (size_t)m * row_in * elem_of(g->type), 0,
           (size_t)(mp - m) * row_in * elem_of(g->type));
    const dnnl_dims_t src_dims = {mp, (int64_t)row_in};
    dnnl_memory_desc_t src_md;
    dnnl_memory_t sm = NULL;
    dnnl_stream_t stream = NULL;
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&src_md, 2, src_dims, dt, dnnl_ab);
    if (!st)
        st = dnnl_memory_create(&sm, &src_md, g->engine, src);
    if (!st)
        st = dnnl_stream_create(&stream, g->engine, dnnl_stream_default_flags);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(n_threads);
    const char *name = t[0]->name; /* of the weight a failure concerns */
    for (int i = 0; i < n_t && !st; i++) {
        name = t[i]->name;
        const dnnl_dims_t dst_dims = {mp, w[i]->n_out};
        dnnl_memory_desc_t dst_md;
        dnnl_memory_t dm = NULL;
        st = dnnl_memory_desc_init_by_tag(&dst_md, 2, dst_dims, dnnl_f32, dnnl_ab);
        if (!st)
            st = dnnl_memory_create(&dm, &dst_md, g->engine, y[i]);
        if (!st) {
            const dnnl_exec_arg_t args[] = {
                {DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, w[i]->packed}, {DNNL_ARG_DST, dm}};
            st = dnnl_primitive_execute(prim[i], stream, 3, args);
            if (!st)
                st = dnnl_stream_wait(stream);
        }
        if (dm)
            dnnl_memory_destroy(dm);
    }
    omp_set_num_threads(saved);
    if (stream)
        dnnl_stream_destroy(stream);
    if (sm)
        dnnl_memory_destroy(sm);
    return st ? dnnl_fail(e, "matmul", name, st) : 0;
}
