/* oneDNN prompt GEMMs (prefill-gemm.h) against matmul_ref for every weight type, f32 and bf16,
 * several row counts (odd ones included) and odd output counts.
 *
 * Bounds, per output, with mag = sum_i |W[o][i]| * |X[t][i]|:
 *  - f32: the dense weights are the dequantized ones exactly, so only float accumulation differs
 *    from the double-accumulating reference: (n_in + 16) * 2^-22 * mag.
 *  - bf16: weights and activations are each rounded to nearest with 8 significant bits
 *    (relative error <= 2^-8 each, so <= 2^-7 + 2^-16 for their product), plus the same
 *    accumulation term. */
#include <criterion/criterion.h>
#include <math.h>

#include "matmul.h"
#include "prefill-gemm.h"
#include "quant-testutil.h"

static const int row_counts[] = {16, 17, 64, 70, 71};

static void check_layout(const struct qt_layout *l, enum prefill_gemm_type type, uint64_t *seed) {
    const struct quant_kernels *k = quant_kernels_isa(l->type, SIMD_ISA_SCALAR);
    const int64_t n_in = l->blck == 256 ? 512 : (l->blck == 32 ? 96 : 45), n_out = 37;
    const size_t rb = tensor_type_row_size(l->type, n_in);
    uint8_t *wbuf = malloc(rb * n_out);
    for (int64_t o = 0; o < n_out; o++)
        qt_fill_blocks(l, wbuf + o * rb, n_in / l->blck, seed, o % 3 == 0);
    struct gguf_tensor t = {.name = "w",
                            .n_dims = 2,
                            .ne = {n_in, n_out, 1, 1},
                            .type = l->type,
                            .nbytes = rb * n_out,
                            .data = wbuf};
    float *wf = malloc(n_in * n_out * sizeof *wf);
    for (int64_t o = 0; o < n_out; o++)
        k->dequant_row(wbuf + o * rb, wf + o * n_in, n_in);
    const struct gguf_tensor *ts[] = {&t};
    struct adakv_err e;
    struct prefill_gemm *g = prefill_gemm_create(type, ts, 1, 2, &e);
    cr_assert(g, "%s", e.msg);
    cr_assert_geq(prefill_gemm_bytes(g),
                  (size_t)(n_in * n_out) * (type == PREFILL_GEMM_BF16 ? 2 : 4));
    for (size_t ri = 0; ri < sizeof row_counts / sizeof row_counts[0]; ri++) {
        const int m = row_counts[ri];
        /* buffers of a whole number of 64-row steps, or (odd counts) exactly m rows */
        const int cap = m % 2 ? m : (m + 63) / 64 * 64;
        float *x = malloc(cap * n_in * sizeof *x), *y = malloc(cap * n_out * sizeof *y);
        float *yr = malloc(m * n_out * sizeof *yr);
        void *scratch = malloc(prefill_gemm_scratch_bytes(type, n_in, cap) + 1);
        qt_fill_act(x, m * n_in, seed, (int)ri % 2);
        for (int64_t i = 0; i < m * n_out; i++)
            y[i] = NAN; /* every output must be written */
        cr_assert_eq(prefill_gemm_run(g, ts, 1, x, m, cap, &y, scratch, 2, &e), 0, "%s", e.msg);
        struct matmul_weight w = {
            .type = l->type, .n_in = n_in, .n_out = n_out, .data = wbuf, .row_bytes = rb};
        cr_assert_eq(matmul_ref(&w, x, m, yr, &e), 0, "%s", e.msg);
        const double rel = type == PREFILL_GEMM_BF16 ? 0x1p-7 + 0x1p-16 : 0.0;
        for (int64_t r = 0; r < m; r++)
            for (int64_t o = 0; o < n_out; o++) {
                double mag = 0.0;
                for (int64_t i = 0; i < n_in; i++)
                    mag += fabs(wf[o * n_in + i]) * fabs(x[r * n_in + i]);
                const double bound = (rel + (double)(n_in + 16) * 0x1p-22) * mag + 1e-30;
                const double got = y[r * n_out + o], want = yr[r * n_out + o];
                cr_assert(fabs(got - want) <= bound,
                          "%s %s m %d: y[%lld][%lld] = %.9g, reference %.9g, bound %.3g",
                          tensor_type_name(l->type), prefill_gemm_name(g), m, (long long)r,
                          (long long)o, got, want, bound);
            }
        free(x), free(y), free(yr), free(scratch);
    }
    /* a tensor it was not given: the caller's own matmul must run */
    struct gguf_tensor other = t;
    const struct gguf_tensor *others[] = {&other};
    cr_assert_eq(prefill_gemm_run(g, others, 1, wf, 16, 16, &wf, NULL, 2, &e), 1);
    prefill_gemm_free(g);
    free(wbuf), free(wf);
}

Test(prefill_gemm, f32_matches_reference_for_every_weight_type) {
    uint64_t seed = 31;
    for (int li = 0; li < QT_N_LAYOUTS; li++)
        check_layout(&qt_layouts[li], PREFILL_GEMM_F32, &seed);
}

Test(prefill_gemm, bf16_matches_reference_within_bf16_rounding) {
    if (!simd_isa_available(SIMD_ISA_AVX512)) /* oneDNN 2.x has bf16 matmuls on AVX-512 only */
        cr_skip_test("this CPU has no AVX-512: oneDNN has no bf16 GEMM for it (the engine "
                     "refuses --prefill-gemm bf16 here, tests/test_forward)");
    uint64_t seed = 32;
    for (int li = 0; li < QT_N_LAYOUTS; li++)
        check_layout(&qt_layouts[li], PREFILL_GEMM_BF16, &seed);
}
