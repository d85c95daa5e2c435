/* The AMX prompt products (gemm-amx.h) in two steps, each against plain C:
 *   1. the panel fills (quant_panel_fn: AVX-512 BF16, run wherever the CPU has it) hold every
 *      value of the scalar dequant_row, rounded to bf16 (nearest even), at its place in the B
 *      tiles; the one allowed difference is a rounding flip where the fused q * d - m of the
 *      panel and the reference's product and difference straddle a bf16 midpoint;
 *   2. matmul over repacked rows with AMX on (where the CPU has it) equals the sum, in double,
 *      of those panel weights times the activations rounded to bf16, up to the f32 accumulation
 *      of the tiles: n * 2^-23 * sum |w x|, for odd row counts (a short last tile and group,
 *      rows split over the threads), token counts that leave partial blocks of 32, and both
 *      the random and the extreme blocks and activations of quant-testutil.h. */
#include <criterion/criterion.h>
#include <omp.h>

#include "cpu.h"
#include "gemm-amx.h"
#include "matmul.h"
#include "quant-testutil.h"

static float bf16_to_f32(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Nearest-even bf16 of a finite f (the reference of vcvtne2ps2bf16 for normal values). */
static uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

/* A repacked tile's rows as bf16 in row-major order: row i, value k = panel word of tile k / 32,
 * pair row (k % 32) / 2, column i, half k % 2. */
static float panel_value(const uint16_t *panel, int i, int64_t k) {
    return bf16_to_f32(panel[(k / 32) * 512 + ((k % 32) / 2) * 32 + 2 * i + (k % 2)]);
}

static const int64_t panel_lens[] = {32, 96, 256, 512, 768, 2304};

Test(gemm_amx, panels_match_dequant_in_bf16) {
    if (!simd_isa_available(SIMD_ISA_AVX512) || !simd_cpu_flags()->avx512_bf16)
        cr_skip_test("no AVX-512 BF16 here: no panel fills");
    uint64_t seed = 77;
    int types = 0;
    for (int li = 0; li < QT_N_LAYOUTS; li++) {
        const struct qt_layout *l = &qt_layouts[li];
        const struct quant_kernels *k = quant_kernels_isa(l->type, SIMD_ISA_AVX512);
        if (!k || !k->panel_bf16)
            continue;
        types++;
        const struct quant_kernels *ref = quant_kernels_isa(l->type, SIMD_ISA_SCALAR);
        for (size_t ni = 0; ni < sizeof panel_lens / sizeof panel_lens[0]; ni++) {
            const int64_t n = panel_lens[ni], n_rows = 13; /* 3 zero rows in the tile */
            if (n % l->blck)
                continue;
            const size_t rb = tensor_type_row_size(l->type, n);
            uint8_t *wbuf = malloc(rb * n_rows), *tile = malloc(rb * QUANT_RP_ROWS);
            qt_fill_blocks(l, wbuf, n_rows * (n / l->blck), &seed, (int)ni % 2);
            k->rp_tile(wbuf, rb, (int)n_rows, tile, n);
            uint16_t *panel = malloc((size_t)n * QUANT_RP_ROWS * 2);
            float *row = malloc((size_t)n * 4);
            k->panel_bf16(tile, n, panel);
            int flips = 0;
            for (int i = 0; i < QUANT_RP_ROWS; i++) {
                if (i < n_rows)
                    ref->dequant_row(wbuf + i * rb, row, n);
                for (int64_t v = 0; v < n; v++) {
                    const float want = i < n_rows ? bf16_to_f32(f32_to_bf16(row[v])) : 0.0f;
                    const float got = panel_value(panel, i, v);
                    if (got == want || (isnan(got) && isnan(want)))
                        continue;
                    /* a flip: the reference's f32 value lies within 2^-20 of a bf16 midpoint */
                    const float mid = (got + want) / 2;
                    cr_assert(
                        fabsf(row[v] - mid) <= 0x1p-20f * fabsf(mid) &&
                            fabsf(got - want) <= 0x1p-7f * fabsf(mid),
                        "%s n %lld row %d value %lld: panel %.9g, bf16 of dequant %.9g (%.9g)",
                        tensor_type_name(l->type), (long long)n, i, (long long)v, got, want,
                        row[v]);
                    flips++;
                }
            }
            cr_assert(flips <= n / 64, "%s n %lld: %d rounding flips", tensor_type_name(l->type),
                      (long long)n, flips);
            free(wbuf), free(tile), free(panel), free(row);
        }
    }
    cr_assert(types == 8, "the 8 block types have panel fills (found %d)", types);
}

Test(gemm_amx, matmul_matches_bf16_reference) {
    if (!simd_amx())
        cr_skip_test("no AMX-BF16 here: the prompt products run the 8-bit kernels");
    const int64_t n_ins[] = {256, 512, 576, 2304}; /* 576: a chunk and a run cut short */
    const int64_t n_outs[] = {37, 133, 300};
    const int64_t n_toks[] = {17, 32, 45, 97};
    uint64_t seed = 99;
    int checked = 0;
    for (int li = 0; li < QT_N_LAYOUTS; li++) {
        const struct qt_layout *l = &qt_layouts[li];
        const struct quant_kernels *k = quant_kernels(l->type);
        if (!k || !k->panel_bf16)
            continue;
        for (size_t ni = 0; ni < sizeof n_ins / sizeof n_ins[0]; ni++) {
            const int64_t n_in = n_ins[ni], n_out = n_outs[(ni + li) % 3];
            if (n_in % l->blck)
                continue;
            const int64_t n_tok = n_toks[(ni + 2 * li) % 4];
            const size_t rb = tensor_type_row_size(l->type, n_in);
            uint8_t *wbuf = malloc(rb * n_out), *rp = malloc(quant_rp_bytes(rb, n_out));
            qt_fill_blocks(l, wbuf, n_out * (n_in / l->blck), &seed, (int)ni % 2);
            for (int64_t o = 0; o < n_out; o += QUANT_RP_ROWS)
                k->rp_tile(wbuf + o * rb, rb,
                           n_out - o < QUANT_RP_ROWS ? (int)(n_out - o) : QUANT_RP_ROWS,
                           rp + o * rb, n_in);
            float *x = malloc(n_in * n_tok * 4), *y = malloc(n_out * n_tok * 4);
            qt_fill_act(x, n_in * n_tok, &seed, (int)ni % 2);
            for (int64_t o = 0; o < n_out * n_tok; o++)
                y[o] = NAN; /* every output must be written */
            void *ws = malloc(matmul_ws_size(l->type, n_in, n_tok, omp_get_max_threads()));
            struct matmul_weight w = {.type = l->type,
                                      .n_in = n_in,
                                      .n_out = n_out,
                                      .data = NULL,
                                      .rp = rp,
                                      .row_bytes = rb,
                                      .amx = true}; /* no native rows: the tiles alone */
            matmul(&w, x, n_tok, y, ws);
            uint16_t *panel = malloc((size_t)n_in * QUANT_RP_ROWS * 2);
            for (int64_t o = 0; o < n_out; o++) {
                if (o % QUANT_RP_ROWS == 0)
                    k->panel_bf16(rp + o * rb, n_in, panel);
                for (int64_t t = 0; t < n_tok; t++) {
                    double want = 0.0, mag = 0.0;
                    for (int64_t v = 0; v < n_in; v++) {
                        const double p = (double)panel_value(panel, (int)(o % QUANT_RP_ROWS), v) *
                                         bf16_to_f32(f32_to_bf16(x[t * n_in + v]));
                        want += p;
                        mag += fabs(p);
                    }
                    const double got = y[t * n_out + o];
                    const double bound = (double)n_in * 0x1p-23 * mag + 1e-30;
                    cr_assert(fabs(got - want) <= bound,
                              "%s n_in %lld n_out %lld tokens %lld: row %lld token %lld: "
                              "AMX %.9g reference %.9g bound %.3g",
                              tensor_type_name(l->type), (long long)n_in, (long long)n_out,
                              (long long)n_tok, (long long)o, (long long)t, got, want, bound);
                }
            }
            free(wbuf), free(rp), free(x), free(y), free(ws), free(panel);
            checked++;
        }
    }
    cr_assert(checked == 29, "3 K-quant x 3 and 5 other types x 4 shapes ran (%d)", checked);
}
