#include "matmul.h"

#include <assert.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cpu.h"
#include "gemm-amx.h"
#include "quant.h"
#include "tensor-type.h"

/* Tile of the prefill product: TILE_ROWS weight rows (a few KiB of Q4_1/Q8_0, stays in L1)
 * against TILE_TOKENS quantized activation rows (~40 KiB at n_in = 576, stays in L2). */
#define TILE_ROWS 16
_Static_assert(TILE_ROWS % QUANT_RP_ROWS == 0, "a decode tile starts on a repacked tile");
#define TILE_TOKENS 64
/* Below this many tokens the product is a GEMV: split only the rows. */
#define GEMV_MAX_TOKENS 4
/* Up to this many tokens (decode batches) the repacked rows are split evenly between the
 * threads rather than in the prompt path's tiles. */
#define FEW_TOKENS_MAX 16
#define WS_ALIGN       64

bool matmul_type_supported(uint32_t type) {
    const struct quant_kernels *k = quant_kernels_isa(type, SIMD_ISA_SCALAR);
    return k && k->vec_dot;
}

static size_t act_row_bytes(const struct quant_kernels *k, int64_t n_in) {
    size_t b = (size_t)tensor_type_row_size(k->act_type, (uint64_t)n_in);
    return (b + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
}

/* Bytes per activation row in ws: the activation type's row, or the packed row of the blocked
 * kernels, whichever is larger, so one size serves every ISA cap. */
static size_t ws_row_bytes(const struct quant_kernels *k, int64_t n_in) {
    size_t b = act_row_bytes(k, n_in);
    if (k->act_type == TENSOR_TYPE_Q8_0 || k->act_type == TENSOR_TYPE_Q8_1) {
        size_t p = (quant_pack_bytes(n_in) + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
        b = p > b ? p : b;
    }
    return b;
}

/* The AMX path's ws: the bf16 token rows, then each thread's panel scratch, each from a 64-byte
 * boundary (ws itself need not be on one: WS_ALIGN bytes of slack). */
static size_t amx_act_bytes(int64_t n_in, int64_t n_tok) {
    return (gemm_amx_act_bytes(n_in, n_tok) + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
}
static size_t amx_scratch_bytes(int64_t n_tok) {
    return (gemm_amx_scratch_bytes(n_tok) + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
}

/* Each thread's f32 row for matmul_multi_rows' producer on the AMX path. */
static size_t amx_rowbuf_bytes(int64_t n_in) {
    return ((size_t)n_in * sizeof(float) + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
}

size_t matmul_ws_size(uint32_t type, int64_t n_in, int64_t n_tok, int n_threads) {
    const struct quant_kernels *k = quant_kernels_isa(type, SIMD_ISA_SCALAR);
    if (!k || !k->vec_dot || k->act_type == TENSOR_TYPE_F32)
        return 0; /* f32 weights dot the f32 activations directly */
    const int64_t few = (n_tok < FEW_TOKENS_MAX ? n_tok : FEW_TOKENS_MAX) * n_threads;
    size_t b = ws_row_bytes(k, n_in) * (size_t)(n_tok > few ? n_tok : few);
    const struct quant_kernels *kk = quant_kernels(type);
    if (n_tok > FEW_TOKENS_MAX && kk && kk->panel_bf16 && simd_amx()) {
        const size_t a = WS_ALIGN + amx_act_bytes(n_in, n_tok) +
                         (amx_scratch_bytes(n_tok) + amx_rowbuf_bytes(n_in)) * (size_t)n_threads;
        b = a > b ? a : b;
    }
    return b;
}

/* Below this many tokens packing runs on the calling thread, outside any parallel construct: a
 * few rows take less time than a region costs, even an if(0) one (libgomp still sets up a team
 * of one, ~350 ns: forward.c's FOR_ROWS). */
#define PACK_PARALLEL_MIN 16

/* X's n_tok rows through quant (the type's pack_act or quantize_act), astride bytes apart in ws. */
static void quantize_rows(quant_quantize_row_fn quant, const float *x, int64_t n_in, int64_t n_tok,
                          uint8_t *ws, size_t astride) {
    if (n_tok < PACK_PARALLEL_MIN) {
        for (int64_t t = 0; t < n_tok; t++)
            quant(x + t * n_in, ws + (size_t)t * astride, n_in);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < n_tok; t++)
        quant(x + t * n_in, ws + (size_t)t * astride, n_in);
}

/* Prompt batches: tiles of tile_rows weight rows x TILE_TOKENS packed tokens of all n_w weights
 * in one parallel region, weight by weight and row blocks outermost in each, so that a static
 * split gives each thread its own slabs of every W (read from DRAM once) while the packed tokens
 * stay in L2; one gemm call per tile, over the repacked tiles (rp) or the native rows. */
static void gemm_tiles(quant_gemm_fn gemm, const struct matmul_weight *const *w, int n_w, bool rp,
                       int64_t tile_rows, const uint8_t *act, size_t astride, int64_t n_tok,
                       float *const *y) {
    const int64_t n_in = w[0]->n_in;
    const int64_t n_tb = (n_tok + TILE_TOKENS - 1) / TILE_TOKENS;
    int64_t first[MATMUL_MULTI_MAX + 1] = {0};
    for (int i = 0; i < n_w; i++)
        first[i + 1] = first[i] + (w[i]->n_out + tile_rows - 1) / tile_rows * n_tb;
#pragma omp parallel for schedule(static)
    for (int64_t tile = 0; tile < first[n_w]; tile++) {
        int i = 0;
        while (tile >= first[i + 1])
            i++;
        const struct matmul_weight *wi = w[i];
        /* the tiles keep the native bytes per row */
        const size_t stride =
            rp ? (size_t)tensor_type_row_size(wi->type, (uint64_t)n_in) : wi->row_bytes;
        const int64_t local = tile - first[i], rb = local / n_tb, tb = local % n_tb;
        const int64_t o0 = rb * tile_rows, t0 = tb * TILE_TOKENS;
        const int64_t nr = wi->n_out - o0 < tile_rows ? wi->n_out - o0 : tile_rows;
        const int64_t nt = n_tok - t0 < TILE_TOKENS ? n_tok - t0 : TILE_TOKENS;
        gemm(n_in, (const uint8_t *)(rp ? wi->rp : wi->data) + (size_t)o0 * stride, stride, nr,
             act + (size_t)t0 * astride, astride, nt, y[i] + t0 * wi->n_out + o0,
             (size_t)wi->n_out);
    }
}

/* The weight type's kernels when the repacked paths below can take these weights (all of them
 * repacked, one type and row length, the activation row packable), else NULL; each path then
 * checks for its own kernel. */
static const struct quant_kernels *rp_kernels(const struct matmul_weight *const *w, int n_w) {
    const struct quant_kernels *k = quant_kernels(w[0]->type);
    if (!k || !k->pack_act || w[0]->n_in > QUANT_GEMM_MAX_N)
        return NULL;
    for (int i = 0; i < n_w; i++)
        if (!w[i]->rp || w[i]->type != w[0]->type || w[i]->n_in != w[0]->n_in)
            return NULL;
    return k;
}

/* A few tokens over repacked rows (decode, or a decode batch of up to FEW_TOKENS_MAX sequences):
 * the row tiles of every weight in one parallel region, each thread one contiguous run of tiles
 * and one kernel call per weight in it (the kernel may prepare the activation rows per call). The
 * runs are equal to a tile: with the prompt path's 64-row tiles a static split of the default
 * model's 576-row projections (9 tiles) gave one thread 25% more. Each thread packs X itself into
 * its own part of ws: packed by one thread for all, the rows went to the other core's cache and
 * back every call (the packer's stores waited on the lines the other thread had read), and a
 * 4-sequence decode step of the default model ran 18% slower, one sequence 8% (bench-batch).
 * True when it ran (all weights repacked, one type and row length, and the ISA has the kernel). */
static bool matmul_rp_few(const struct matmul_weight *const *w, int n_w, const float *x,
                          int64_t n_tok, float *const *y, uint8_t *ws) {
    const struct quant_kernels *k = rp_kernels(w, n_w);
    if (!k || !(n_tok == 1 ? k->gemv_rp != NULL : k->gemm_rp != NULL))
        return false;
    const int64_t n_in = w[0]->n_in;
    const size_t rp_row = (size_t)tensor_type_row_size(w[0]->type, (uint64_t)n_in);
    const size_t astride = ws_row_bytes(k, n_in);
    int64_t first[MATMUL_MULTI_MAX + 1] = {0};
    for (int i = 0; i < n_w; i++)
        first[i + 1] = first[i] + (w[i]->n_out + TILE_ROWS - 1) / TILE_ROWS;
#pragma omp parallel
    {
        const int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
        const int64_t lo = first[n_w] * me / team, hi = first[n_w] * (me + 1) / team;
        uint8_t *const act = ws + (size_t)(me * n_tok) * astride;
        for (int64_t t = 0; t < n_tok; t++)
            k->pack_act(x + t * n_in, act + (size_t)t * astride, n_in);
        for (int i = 0; i < n_w; i++) {
            const int64_t a = lo > first[i] ? lo : first[i];
            const int64_t b = hi < first[i + 1] ? hi : first[i + 1];
            if (a >= b)
                continue;
            const int64_t o0 = (a - first[i]) * TILE_ROWS;
            const int64_t o1 =
                (b - first[i]) * TILE_ROWS < w[i]->n_out ? (b - first[i]) * TILE_ROWS : w[i]->n_out;
            const uint8_t *wt = (const uint8_t *)w[i]->rp + (size_t)o0 * rp_row;
            if (n_tok == 1)
                k->gemv_rp(n_in, wt, rp_row, o1 - o0, act, y[i] + o0);
            else
                k->gemm_rp(n_in, wt, rp_row, o1 - o0, act, astride, n_tok, y[i] + o0,
                           (size_t)w[i]->n_out);
        }
    }
    return true;
}

#ifdef ADAKV_BUILD_AMX /* the kernels exist only in builds for x86 compilers that have AMX */
/* Prompt batches on AMX tiles (gemm-amx.h), where the CPU has them and the type a panel fill:
 * the tokens as bf16 rows in ws (x's rows, or made by row(ctx, t, .) into each thread's f32 row
 * first), then groups of up to GEMM_AMX_ROWS_MAX rows of every weight split statically between
 * the threads, each run against all the tokens. Groups shrink (to 32 rows at least) until there
 * are 4 per thread, so that small weights still keep every thread busy. True when it ran. */
static bool matmul_amx(const struct matmul_weight *const *w, int n_w, const float *x,
                       matmul_row_fn row_of, void *ctx, int64_t n_tok, float *const *y,
                       uint8_t *ws_in) {
    const struct quant_kernels *k = rp_kernels(w, n_w);
    if (!k || !k->panel_bf16 || !simd_amx())
        return false;
    for (int i = 0; i < n_w; i++)
        if (!w[i]->amx)
            return false;
    /* A tile row is a 64-byte line: rows that straddle two lines halved the speed */
    uint8_t *const ws = (uint8_t *)(((uintptr_t)ws_in + WS_ALIGN - 1) & ~(uintptr_t)(WS_ALIGN - 1));
    const int64_t n_in = w[0]->n_in;
    const size_t stride = gemm_amx_act_stride(n_in);
    const size_t rp_row = (size_t)tensor_type_row_size(w[0]->type, (uint64_t)n_in);
    const size_t kc_bytes =
        (size_t)QUANT_RP_ROWS * tensor_type_row_size(w[0]->type, (uint64_t)GEMM_AMX_KC);
    uint8_t *const scratch = ws + amx_act_bytes(n_in, n_tok);
    int64_t rows = GEMM_AMX_ROWS_MAX, first[MATMUL_MULTI_MAX + 1] = {0};
    for (;; rows /= 2) {
        for (int i = 0; i < n_w; i++)
            first[i + 1] = first[i] + (w[i]->n_out + rows - 1) / rows;
        if (rows == 2 * QUANT_RP_ROWS || first[n_w] >= 4 * omp_get_max_threads())
            break;
    }
#pragma omp parallel
    {
        uint8_t *const mine = scratch + (amx_scratch_bytes(n_tok) + amx_rowbuf_bytes(n_in)) *
                                            (size_t)omp_get_thread_num();
        float *const made = (float *)(void *)(mine + amx_scratch_bytes(n_tok));
#pragma omp for schedule(static)
        for (int64_t t = 0; t < gemm_amx_tokens_padded(n_tok); t++) {
            uint16_t *row = (uint16_t *)(void *)(ws + (size_t)t * stride);
            if (t >= n_tok)
                memset(row, 0, (size_t)n_in * 2);
            else if (row_of) {
                row_of(ctx, t, made);
                gemm_amx_pack_row(made, n_in, row);
            } else
                gemm_amx_pack_row(x + t * n_in, n_in, row);
        }
#pragma omp for schedule(static)
        for (int64_t g = 0; g < first[n_w]; g++) {
            int i = 0;
            while (g >= first[i + 1])
                i++;
            const int64_t o0 = (g - first[i]) * rows;
            const int64_t nr = w[i]->n_out - o0 < rows ? w[i]->n_out - o0 : rows;
            gemm_amx_rows(k->panel_bf16, n_in, (const uint8_t *)w[i]->rp + (size_t)o0 * rp_row,
                          (size_t)QUANT_RP_ROWS * rp_row, kc_bytes, nr,
                          (const uint16_t *)(void *)ws, n_tok, y[i] + o0, (size_t)w[i]->n_out,
                          mine);
        }
    }
    return true;
}
#endif

/* Prompt batches over repacked rows, in tiles of RP_TILE_ROWS rows (a few tiles of 16: the
 * kernels reuse each unpacked weight vector for several tokens). True when it ran (all weights
 * repacked, one type and row length, and the ISA has the kernel). */
#define RP_TILE_ROWS 64
_Static_assert(RP_TILE_ROWS % QUANT_RP_ROWS == 0, "a tile of rows starts on a repacked tile");
static bool matmul_rp_batch(const struct matmul_weight *const *w, int n_w, const float *x,
                            int64_t n_tok, float *const *y, uint8_t *ws) {
#ifdef ADAKV_BUILD_AMX
    if (matmul_amx(w, n_w, x, NULL, NULL, n_tok, y, ws))
        return true;
#endif
    const struct quant_kernels *k = rp_kernels(w, n_w);
    if (!k || !k->gemm_rp)
        return false;
    const size_t astride = ws_row_bytes(k, w[0]->n_in);
    quantize_rows(k->pack_act, x, w[0]->n_in, n_tok, ws, astride);
    gemm_tiles(k->gemm_rp, w, n_w, true, RP_TILE_ROWS, ws, astride, n_tok, y);
    return true;
}

void matmul(const struct matmul_weight *w, const float *x, int64_t n_tok, float *y, void *ws) {
    const struct quant_kernels *k = quant_kernels(w->type);
    assert(k && k->vec_dot);
    assert(w->n_in % tensor_type_blck_size(w->type) == 0);
    assert(w->row_bytes >= tensor_type_row_size(w->type, (uint64_t)w->n_in));
    assert((uintptr_t)w->data % (w->type == TENSOR_TYPE_F32 ? 4 : 2) == 0);
    assert(w->row_bytes % (w->type == TENSOR_TYPE_F32 ? 4 : 2) == 0);
    const int64_t n_in = w->n_in, n_out = w->n_out;
    const uint8_t *wdata = w->data;
    const size_t wstride = w->row_bytes;

    if (w->rp && (n_tok <= FEW_TOKENS_MAX ? matmul_rp_few(&w, 1, x, n_tok, &y, ws)
                                          : matmul_rp_batch(&w, 1, x, n_tok, &y, ws)))
        return;
    if (k->gemm && n_in <= QUANT_GEMM_MAX_N) {
        const size_t astride = ws_row_bytes(k, n_in);
        quantize_rows(k->pack_act, x, n_in, n_tok, ws, astride);
        gemm_tiles(k->gemm, &w, 1, false, TILE_ROWS, ws, astride, n_tok, &y);
        return;
    }

    const uint8_t *act = (const uint8_t *)x;
    size_t astride = (size_t)n_in * sizeof(float);
    if (k->act_type != TENSOR_TYPE_F32) {
        assert(ws);
        astride = ws_row_bytes(k, n_in);
        quantize_rows(k->quantize_act, x, n_in, n_tok, ws, astride);
        act = ws;
    }

    quant_vec_dot_fn dot = k->vec_dot;
    if (n_tok <= GEMV_MAX_TOKENS) {
#pragma omp parallel for schedule(static)
        for (int64_t o = 0; o < n_out; o++)
            for (int64_t t = 0; t < n_tok; t++)
                y[t * n_out + o] =
                    dot(n_in, wdata + (size_t)o * wstride, act + (size_t)t * astride);
        return;
    }

    const int64_t n_rb = (n_out + TILE_ROWS - 1) / TILE_ROWS;
    const int64_t n_tb = (n_tok + TILE_TOKENS - 1) / TILE_TOKENS;
    /* Row blocks outermost in the iteration space, so a static split gives each thread its own
     * slab of W (read once from DRAM) and all tokens for it. */
#pragma omp parallel for schedule(static)
    for (int64_t tile = 0; tile < n_rb * n_tb; tile++) {
        int64_t rb = tile / n_tb, tb = tile % n_tb;
        int64_t o0 = rb * TILE_ROWS, o1 = o0 + TILE_ROWS < n_out ? o0 + TILE_ROWS : n_out;
        int64_t t0 = tb * TILE_TOKENS, t1 = t0 + TILE_TOKENS < n_tok ? t0 + TILE_TOKENS : n_tok;
        for (int64_t t = t0; t < t1; t++) {
            const uint8_t *a = act + (size_t)t * astride;
            float *yt = y + t * n_out;
            for (int64_t o = o0; o < o1; o++)
                yt[o] = dot(n_in, wdata + (size_t)o * wstride, a);
        }
    }
}

void matmul_multi(const struct matmul_weight *const *w, int n_w, const float *x, int64_t n_tok,
                  float *const *y, void *ws) {
    assert(n_w >= 1 && n_w <= MATMUL_MULTI_MAX);
    if (n_tok <= FEW_TOKENS_MAX ? matmul_rp_few(w, n_w, x, n_tok, y, ws)
                                : matmul_rp_batch(w, n_w, x, n_tok, y, ws))
        return;
    const struct quant_kernels *k = quant_kernels(w[0]->type);
    bool fused = k && k->gemm && w[0]->n_in <= QUANT_GEMM_MAX_N;
    for (int i = 1; i < n_w && fused; i++)
        fused = w[i]->type == w[0]->type && w[i]->n_in == w[0]->n_in;
    if (!fused) {
        for (int i = 0; i < n_w; i++)
            matmul(w[i], x, n_tok, y[i], ws);
        return;
    }
    for (int i = 0; i < n_w; i++)
        assert(w[i]->row_bytes >= tensor_type_row_size(w[i]->type, (uint64_t)w[0]->n_in));
    const size_t astride = ws_row_bytes(k, w[0]->n_in);
    quantize_rows(k->pack_act, x, w[0]->n_in, n_tok, ws, astride);
    gemm_tiles(k->gemm, w, n_w, false, TILE_ROWS, ws, astride, n_tok, y);
}

void matmul_multi_rows(const struct matmul_weight *const *w, int n_w, matmul_row_fn row, void *ctx,
                       float *x, int64_t n_tok, float *const *y, void *ws) {
#ifdef ADAKV_BUILD_AMX
    if (n_tok > FEW_TOKENS_MAX && matmul_amx(w, n_w, NULL, row, ctx, n_tok, y, ws))
        return;
#endif
    const int64_t n_in = w[0]->n_in;
#pragma omp parallel for schedule(static) if (n_tok > FEW_TOKENS_MAX)
    for (int64_t t = 0; t < n_tok; t++)
        row(ctx, t, x + t * n_in);
    matmul_multi(w, n_w, x, n_tok, y, ws);
}

int matmul_ref(const struct matmul_weight *w, const float *x, int64_t n_tok, float *y,
               struct adakv_err *e) {
    const struct quant_kernels *k = quant_kernels_isa(w->type, SIMD_ISA_SCALAR);
    if (!k)
        return err_set(e, "matmul_ref: weight type %s has no kernels", tensor_type_name(w->type));
    float *row = malloc((size_t)w->n_in * sizeof(float));
    if (!row)
        return err_set(e, "matmul_ref: out of memory for a row of %lld values", (long long)w->n_in);
    const uint8_t *wdata = w->data;
    for (int64_t o = 0; o < w->n_out; o++) {
        k->dequant_row(wdata + (size_t)o * w->row_bytes, row, w->n_in);
        for (int64_t t = 0; t < n_tok; t++) {
            const float *xt = x + t * w->n_in;
            double s = 0.0;
            for (int64_t i = 0; i < w->n_in; i++)
                s += (double)row[i] * (double)xt[i];
            y[t * w->n_out + o] = (float)s;
        }
    }
    free(row);
    return 0;
}
