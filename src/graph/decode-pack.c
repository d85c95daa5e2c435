/* Weights repacked for the decode GEMV (decode-pack.h). */
#include "decode-pack.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "quant.h"
#include "tensor-type.h"

struct packed {
    const struct gguf_tensor *t; /* sorted by address */
    void *rows;
};

struct decode_pack {
    int n;
    struct packed *w;
    size_t bytes;    /* the tiles */
    size_t released; /* native bytes whose pages were handed back (replaces_native) */
    void *arena;     /* every tensor's rows, one block */
};

/* Huge pages for the arena: decode streams all of it for every token, and with 4 KiB pages
 * that is one TLB miss per 4 KiB of weights (about 16,000 per token for the default model). The
 * block is aligned to 2 MiB so that the kernel can back it with huge pages when transparent
 * huge pages are set to `madvise` (Debian's default) or `always`. */
enum { HUGE_PAGE = 2 << 20, ROW_ALIGN = 64 };

static void *arena_alloc(size_t bytes) {
    bytes = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *a = NULL;
    if (posix_memalign(&a, HUGE_PAGE, bytes))
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(a, bytes, MADV_HUGEPAGE); /* advice only: refused, small pages still work */
#endif
    return a;
}

static int cmp_packed(const void *a, const void *b) {
    const uintptr_t x = (uintptr_t)((const struct packed *)a)->t;
    const uintptr_t y = (uintptr_t)((const struct packed *)b)->t;
    return (x > y) - (x < y);
}

static bool repackable(const struct gguf_tensor *t) {
    const struct quant_kernels *k = quant_kernels(t->type);
    return k && k->gemv_rp && k->rp_tile && t->ne[0] <= QUANT_GEMM_MAX_N;
}

/* The tiles serve prompt batches too (gemm_rp), so the native rows are no longer read on the hot
 * path: their pages of the mapping can leave memory, which keeps the resident set near the
 * file's size instead of twice it. */
static bool replaces_native(const struct gguf_tensor *t) {
    return quant_kernels(t->type)->gemm_rp != NULL;
}

/* t's tiles, rounded up so that the next tensor starts on a cache line */
static size_t packed_bytes(const struct gguf_tensor *t) {
    const size_t b = quant_rp_bytes(tensor_type_row_size(t->type, t->ne[0]), (int64_t)t->ne[1]);
    return (b + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
}

int decode_pack_create(const struct gguf_file *f, const struct gguf_tensor *const *w, int n,
                       struct decode_pack **out, struct adakv_err *e) {
    *out = NULL;
    int n_rp = 0;
    for (int i = 0; i < n; i++)
        n_rp += repackable(w[i]);
    if (n_rp == 0)
        return 0;
    struct decode_pack *p = calloc(1, sizeof *p);
    if (!p || !(p->w = calloc((size_t)n_rp, sizeof *p->w))) {
        free(p);
        return err_set(e, "decode repack: out of memory");
    }
    size_t total = 0; /* tensors back to back */
    for (int i = 0; i < n; i++)
        if (repackable(w[i]))
            total += packed_bytes(w[i]);
    if (!(p->arena = arena_alloc(total))) {
        decode_pack_free(p);
        return err_set(e, "decode repack: out of memory for %zu bytes", total);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const struct gguf_tensor *t = w[i];
        if (!repackable(t))
            continue;
        const int64_t n_in = (int64_t)t->ne[0], n_out = (int64_t)t->ne[1];
        const size_t src_row = (size_t)tensor_type_row_size(t->type, t->ne[0]);
        struct packed *pk = &p->w[p->n++];
        pk->t = t;
        const quant_rp_tile_fn tile = quant_kernels(t->type)->rp_tile;
        pk->rows = (char *)p->arena + off;
        off += packed_bytes(t);
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < n_out; r += QUANT_RP_ROWS)
            tile((const char *)t->data + (size_t)r * src_row, src_row,
                 n_out - r < QUANT_RP_ROWS ? (int)(n_out - r) : QUANT_RP_ROWS,
                 (char *)pk->rows + (size_t)r * src_row, n_in); /* native bytes per row */
        p->bytes += quant_rp_bytes(src_row, n_out);
        if (replaces_native(t)) {
            gguf_release_pages(f, t->data, src_row * (size_t)n_out);
            p->released += src_row * (size_t)n_out;
        }
    }
    qsort(p->w, (size_t)p->n, sizeof *p->w, cmp_packed);
    *out = p;
    return 0;
}

void decode_pack_free(struct decode_pack *p) {
    if (!p)
        return;
    free(p->arena);
    free(p->w);
    free(p);
}

const void *decode_pack_find(const struct decode_pack *p, const struct gguf_tensor *t) {
    if (!p)
        return NULL;
    const struct packed key = {.t = t};
    const struct packed *f = bsearch(&key, p->w, (size_t)p->n, sizeof *p->w, cmp_packed);
    if (!f)
        return NULL;
    return f->rows;
}

size_t decode_pack_bytes(const struct decode_pack *p) {
    return p ? p->bytes : 0;
}

size_t decode_pack_released(const struct decode_pack *p) {
    return p ? p->released : 0;
}
