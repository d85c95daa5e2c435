/* LPT head-to-thread map and NUMA placement of each head's KV memory (head-map.h). */
#include "head-map.h"

#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

/* ==== LPT ==== */

/* Heaviest first, ties by lower index. Insertion sort: n is a handful of KV heads. */
static void sort_heavier_first(const int64_t *w, int *idx, int n) {
    for (int i = 1; i < n; i++) {
        const int x = idx[i];
        int j = i - 1;
        while (j >= 0 && (w[idx[j]] < w[x] || (w[idx[j]] == w[x] && idx[j] > x))) {
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = x;
    }
}

void head_map_lpt(const int64_t *weight, int n, int n_bins, int *owner, int64_t *load) {
    for (int b = 0; b < n_bins; b++)
        load[b] = 0;
    int idx_small[64];
    int *idx = n <= 64 ? idx_small : malloc((size_t)n * sizeof *idx);
    if (!idx) { /* no memory for the order: still a valid map, round-robin */
        for (int i = 0; i < n; i++)
            owner[i] = i % n_bins, load[i % n_bins] += weight[i];
        return;
    }
    for (int i = 0; i < n; i++)
        idx[i] = i;
    sort_heavier_first(weight, idx, n);
    for (int k = 0; k < n; k++) {
        int best = 0;
        for (int b = 1; b < n_bins; b++)
            if (load[b] < load[best])
                best = b;
        owner[idx[k]] = best;
        load[best] += weight[idx[k]];
    }
    if (idx != idx_small)
        free(idx);
}

/* ==== the map ==== */

int head_map_init(struct head_map *m, int n_head_kv, int n_threads, struct adakv_err *e) {
    memset(m, 0, sizeof *m);
    if (n_head_kv < 1 || n_threads < 1)
        return err_set(e, "head map: %d KV heads over %d threads", n_head_kv, n_threads);
    m->owner = malloc((size_t)n_head_kv * sizeof *m->owner);
    m->order = malloc((size_t)n_head_kv * sizeof *m->order);
    m->start = malloc(((size_t)n_threads + 1) * sizeof *m->start);
    m->load = malloc((size_t)n_threads * sizeof *m->load);
    if (!m->owner || !m->order || !m->start || !m->load) {
        head_map_free(m);
        return err_set(e, "head map: out of memory for %d heads over %d threads", n_head_kv,
                       n_threads);
    }
    m->n_head_kv = n_head_kv;
    m->n_threads = n_threads;
    struct kv_cache empty = {.n_layer = 0, .n_head_kv = n_head_kv};
    head_map_build(m, &empty);
    return 0;
}

void head_map_free(struct head_map *m) {
    free(m->owner), free(m->order), free(m->start), free(m->load);
    memset(m, 0, sizeof *m);
}

void head_map_build(struct head_map *m, const struct kv_cache *kv) {
    const int H = m->n_head_kv;
    int64_t w_small[64] = {0};
    int64_t *w = H <= 64 ? w_small : calloc((size_t)H, sizeof *w);
    if (!w) { /* keep the previous map: it is still valid, only maybe less balanced */
        return;
    }
    for (int g = 0; g < H; g++) {
        w[g] = 0;
        for (int l = 0; l < kv->n_layer; l++)
            w[g] += kv_cache_seg(kv, l, g)->len;
    }
    head_map_lpt(w, H, m->n_threads, m->owner, m->load);
    /* counting sort by owner; within a thread, heads keep the LPT order (heaviest first) */
    for (int t = 0; t <= m->n_threads; t++)
        m->start[t] = 0;
    for (int g = 0; g < H; g++)
        m->start[m->owner[g] + 1]++;
    for (int t = 0; t < m->n_threads; t++)
        m->start[t + 1] += m->start[t];
    int fill_small[65];
    int *fill = m->n_threads < 65 ? fill_small : malloc((size_t)m->n_threads * sizeof *fill);
    if (fill) {
        memcpy(fill, m->start, (size_t)m->n_threads * sizeof *fill);
        for (int g = 0; g < H; g++)
            m->order[fill[m->owner[g]]++] = g;
        if (fill != fill_small)
            free(fill);
    } else { /* degenerate: rebuild the order by scanning, O(H * threads) */
        int k = 0;
        for (int t = 0; t < m->n_threads; t++)
            for (int g = 0; g < H; g++)
                if (m->owner[g] == t)
                    m->order[k++] = g;
    }
    if (w != w_small)
        free(w);
}

/* ==== NUMA placement ==== */

struct page_batch {
    void *page[256];
    int node[256];
    int status[256];
    int n;
    long on_node; /* pages found on their wanted node */
    int err;      /* errno of a failed move_pages, 0 if none */
};

static void batch_flush(struct page_batch *b) {
    if (b->n == 0 || b->err)
        return;
    if (numa_move_pages(0, (unsigned long)b->n, b->page, b->node, b->status, MPOL_MF_MOVE) < 0) {
        b->err = errno ? errno : EIO;
        return;
    }
    for (int i = 0; i < b->n; i++)
        b->on_node += b->status[i] == b->node[i];
    b->n = 0;
}

static void batch_range(struct page_batch *b, const void *p, size_t bytes, int node) {
    if (!p || !bytes)
        return;
    const uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(ps - 1);
    const uintptr_t end = (uintptr_t)p + bytes;
    for (; a < end; a += ps) {
        if (b->n == 256)
            batch_flush(b);
        b->page[b->n] = (void *)a;
        b->node[b->n] = node;
        b->n++;
    }
}

/* Writes zeros into rows [len, cap) so every page of the segment exists and can be moved; the
 * rows are free reserve, so their contents do not matter. */
static void touch_reserve(struct kv_segment *s, size_t row) {
    if (s->cap <= s->len)
        return;
    const size_t from = (size_t)s->len, n = (size_t)(s->cap - s->len);
    memset((char *)s->k + from * row, 0, n * row);
    memset((char *)s->v + from * row, 0, n * row);
    if (s->k_scale)
        memset(s->k_scale + from, 0, n * sizeof *s->k_scale);
    if (s->v_scale)
        memset(s->v_scale + from, 0, n * sizeof *s->v_scale);
    if (s->pos)
        memset(s->pos + from, 0, n * sizeof *s->pos);
}

long head_map_place(const struct head_map *m, const struct threads_plan *plan, struct kv_cache *kv,
                    struct adakv_err *e) {
    if (numa_available() < 0 || !plan->mem_node || kv->n_head_kv != m->n_head_kv)
        return 0;
    struct page_batch *b = calloc(1, sizeof *b);
    if (!b)
        return err_set(e, "numa placement: out of memory");
    const size_t row = kv_row_bytes(kv->type, kv->head_dim) -
                       (kv->type == KV_TYPE_INT8 ? sizeof(float) : 0); /* values only */
    for (int l = 0; l < kv->n_layer; l++)
        for (int g = 0; g < kv->n_head_kv; g++) {
            const int t = m->owner[g];
            const int node = t < plan->n_threads ? plan->mem_node[t] : -1;
            struct kv_segment *s = kv_cache_seg(kv, l, g);
            if (node < 0 || s->cap <= 0)
                continue;
            touch_reserve(s, row);
            const size_t cap = (size_t)s->cap;
            batch_range(b, s->k, cap * row, node);
            batch_range(b, s->v, cap * row, node);
            batch_range(b, s->k_scale, cap * sizeof(float), node);
            batch_range(b, s->v_scale, cap * sizeof(float), node);
            batch_range(b, s->pos, cap * sizeof(int32_t), node);
        }
    batch_flush(b);
    const int err = b->err;
    const long on = b->on_node;
    free(b);
    if (err)
        return err_set(e, "numa placement: move_pages failed: %s", strerror(err));
    return on;
}

int head_map_node_of(const void *addr) {
    if (numa_available() < 0 || !addr)
        return -1;
    const uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
    void *page = (void *)((uintptr_t)addr & ~(ps - 1));
    int status = -1;
    if (numa_move_pages(0, 1, &page, NULL, &status, 0) < 0)
        return -1;
    return status; /* a node, or a negative errno such as -ENOENT for a page never touched */
}
