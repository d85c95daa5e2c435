/* matmul against matmul_ref for every weight type, several token counts (GEMV and tiled
 * prefill paths, partial tiles) and odd row counts, under every ISA cap this machine has.
 *
 * matmul quantizes X to the weight type's activation type, matmul_ref does not, so the two
 * differ by that quantization. The bound is computed, not guessed: for each output,
 * sum_i |W[o][i]| * |Xq[t][i] - X[t][i]| with Xq the dequantized activations (plus, for Q8_1,
 * the minimum times the f16 rounding of the stored block sum), plus the float accumulation
 * error of the kernels, (blocks + 16) * 2^-22 * magnitude. */
#include <criterion/criterion.h>
#include <omp.h>

#include "matmul.h"
#include "quant-testutil.h"

static const int64_t tok_counts[] = {1, 2, 5, 17, 64, 70};
#define N_TOK ((int)(sizeof tok_counts / sizeof tok_counts[0]))

/* Per-(token, input) activation error |Xq - X| and, for Q8_1, per-(token, block) |s - d*sum q|. */
static void act_errors(const struct quant_kernels *k, const float *x, int64_t n_tok, int64_t n_in,
                       double *err, double *serr) {
    size_t ab = tensor_type_row_size(k->act_type, n_in);
    uint8_t *q = malloc(ab);
    float *xq = malloc(n_in * sizeof *xq);
    for (int64_t t = 0; t < n_tok; t++) {
        const float *xt = x + t * n_in;
        if (k->act_type == TENSOR_TYPE_F32) {
            for (int64_t i = 0; i < n_in; i++)
                err[t * n_in + i] = 0.0;
            continue;
        }
        k->quantize_act(xt, q, n_in);
        if (k->act_type == TENSOR_TYPE_Q8_K) {
            const struct block_q8_k *b = (const void *)q;
            for (int64_t i = 0; i < n_in; i++)
                err[t * n_in + i] =
                    fabs((double)b[i / QK_K].d * b[i / QK_K].qs[i % QK_K] - (double)xt[i]);
        } else {
            quant_kernels_isa(k->act_type, SIMD_ISA_SCALAR)->dequant_row(q, xq, n_in);
            for (int64_t i = 0; i < n_in; i++)
                err[t * n_in + i] = fabs((double)xq[i] - (double)xt[i]);
        }
        if (k->act_type == TENSOR_TYPE_Q8_1) {
            const struct block_q8_1 *b = (const void *)q;
            for (int64_t j = 0; j < n_in / QK; j++) {
                double s = 0.0;
                for (int l = 0; l < QK; l++)
                    s += xq[j * QK + l];
                serr[t * (n_in / QK) + j] = fabs((double)quant_f16_to_f32(b[j].s) - s);
            }
        }
    }
    free(q);
    free(xq);
}

static void check_type(const struct qt_layout *l, enum simd_isa isa, uint64_t *seed) {
    simd_set_isa_cap(isa);
    cr_assert_eq(simd_isa(), isa);
    const struct quant_kernels *k = quant_kernels(l->type);
    int64_t n_in = l->blck == 256 ? 512 : (l->blck == 32 ? 96 : 45);
    int64_t n_out = 37; /* odd: partial row tiles */
    int64_t nb = n_in / l->blck;
    size_t row_bytes = tensor_type_row_size(l->type, n_in) + 4; /* padded stride, not 64-aligned */
    uint8_t *wbuf = malloc(row_bytes * n_out);
    for (int64_t o = 0; o < n_out; o++)
        qt_fill_blocks(l, wbuf + o * row_bytes, nb, seed, o % 3 == 0);
    struct matmul_weight w = {
        .type = l->type, .n_in = n_in, .n_out = n_out, .data = wbuf, .row_bytes = row_bytes};
    float *wf = malloc(n_in * n_out * sizeof *wf), *wf0 = malloc(n_in * n_out * sizeof *wf0);
    uint8_t *row0 = malloc(row_bytes);
    for (int64_t o = 0; o < n_out; o++) {
        k->dequant_row(wbuf + o * row_bytes, wf + o * n_in, n_in);
        memcpy(row0, wbuf + o * row_bytes, row_bytes);
        if (l->d_off >= 0)
            for (int64_t b = 0; b < nb; b++)
                memset(row0 + b * l->bytes + l->q_begin, 0, (size_t)(l->q_end - l->q_begin));
        k->dequant_row(row0, wf0 + o * n_in, n_in);
    }
    for (int ti = 0; ti < N_TOK; ti++) {
        int64_t n_tok = tok_counts[ti];
        float *x = malloc(n_tok * n_in * sizeof *x);
        float *y = malloc(n_tok * n_out * sizeof *y), *yr = malloc(n_tok * n_out * sizeof *yr);
        double *err = malloc(n_tok * n_in * sizeof *err);
        double *serr = calloc(n_tok * (n_in / QK + 1), sizeof *serr);
        qt_fill_act(x, n_tok * n_in, seed, ti % 2);
        size_t ws_size = matmul_ws_size(l->type, n_in, n_tok, omp_get_max_threads());
        void *ws = ws_size ? malloc(ws_size) : NULL;
        for (int64_t i = 0; i < n_tok * n_out; i++)
            y[i] = NAN; /* every output must be written */
        matmul(&w, x, n_tok, y, ws);
        struct adakv_err e;
        cr_assert_eq(matmul_ref(&w, x, n_tok, yr, &e), 0, "%s", e.msg);
        act_errors(k, x, n_tok, n_in, err, serr);
        for (int64_t t = 0; t < n_tok; t++)
            for (int64_t o = 0; o < n_out; o++) {
                double bound = 0.0, mag = 0.0;
                for (int64_t i = 0; i < n_in; i++) {
                    double aw = fabs(wf[o * n_in + i]), aw0 = fabs(wf0[o * n_in + i]);
                    double ax = fabs(x[t * n_in + i]) + err[t * n_in + i];
                    bound += aw * err[t * n_in + i];
                    mag += (aw + (l->d_off >= 0 ? aw0 : 0.0)) * ax;
                }
                if (k->act_type == TENSOR_TYPE_Q8_1)
                    for (int64_t j = 0; j < n_in / QK; j++)
                        bound += fabs(wf0[o * n_in + j * QK]) * serr[t * (n_in / QK) + j];
                int64_t terms = l->blck == 1 ? n_in : nb;
                bound += (double)(terms + 16) * 0x1p-22 * mag + 1e-30;
                double got = y[t * n_out + o], want = yr[t * n_out + o];
                cr_assert(fabs(got - want) <= bound,
                          "%s isa %s n_tok %lld: y[%lld][%lld] = %.9g, reference %.9g, bound %.3g",
                          tensor_type_name(l->type), simd_isa_name(isa), (long long)n_tok,
                          (long long)t, (long long)o, got, want, bound);
            }
        free(x);
        free(y);
        free(yr);
        free(err);
        free(serr);
        free(ws);
    }
    free(wbuf);
    free(wf);
    free(wf0);
    free(row0);
}

static void check_all_types(enum simd_isa isa) {
    uint64_t seed = 777 + (uint64_t)isa;
    for (int li = 0; li < QT_N_LAYOUTS; li++)
        check_type(&qt_layouts[li], isa, &seed);
}

Test(matmul, scalar_matches_reference) {
    check_all_types(SIMD_ISA_SCALAR);
}

Test(matmul, every_isa_matches_reference) {
    enum simd_isa isas[SIMD_ISA_COUNT];
    int n = qt_simd_isas(isas);
    for (int i = 0; i < n; i++)
        check_all_types(isas[i]);
}

/* Threads must not change results: each output is computed by one dot, whatever the split. */
Test(matmul, thread_count_does_not_change_bits) {
    const struct qt_layout *l = &qt_layouts[4]; /* Q4_1 */
    cr_assert_eq(l->type, TENSOR_TYPE_Q4_1);
    uint64_t seed = 99;
    int64_t n_in = 576, n_out = 129, n_tok = 70;
    size_t rb = tensor_type_row_size(l->type, n_in);
    uint8_t *wbuf = malloc(rb * n_out);
    qt_fill_blocks(l, wbuf, n_out * (n_in / QK), &seed, 0);
    struct matmul_weight w = {
        .type = l->type, .n_in = n_in, .n_out = n_out, .data = wbuf, .row_bytes = rb};
    float *x = malloc(n_tok * n_in * 4), *y1 = malloc(n_tok * n_out * 4),
          *y2 = malloc(n_tok * n_out * 4);
    qt_fill_act(x, n_tok * n_in, &seed, 0);
    void *ws = malloc(matmul_ws_size(l->type, n_in, n_tok, omp_get_max_threads()));
    omp_set_num_threads(1);
    matmul(&w, x, n_tok, y1, ws);
    omp_set_num_threads(3);
    matmul(&w, x, n_tok, y2, ws);
    cr_assert(memcmp(y1, y2, n_tok * n_out * 4) == 0);
    free(wbuf);
    free(x);
    free(y1);
    free(y2);
    free(ws);
}

Test(matmul, supported_types) {
    for (int li = 0; li < QT_N_LAYOUTS; li++)
        cr_assert(matmul_type_supported(qt_layouts[li].type));
    cr_assert(!matmul_type_supported(TENSOR_TYPE_Q8_K)); /* activation-only */
    cr_assert(!matmul_type_supported(TENSOR_TYPE_Q2_K));
    cr_assert(!matmul_type_supported(1000));
    struct matmul_weight w = {
        .type = TENSOR_TYPE_Q2_K, .n_in = 256, .n_out = 1, .data = NULL, .row_bytes = 84};
    struct adakv_err e;
    cr_assert_eq(matmul_ref(&w, NULL, 0, NULL, &e), -1);
    cr_assert(strstr(e.msg, "Q2_K"), "%s", e.msg);
}

/* Repacks n_out native rows of layout l into tiles (quant.h, QUANT_RP_ROWS) with rp_tile. */
static uint8_t *repack_rows(const struct quant_kernels *k, const uint8_t *wbuf, size_t rb,
                            int64_t n_in, int64_t n_out) {
    uint8_t *rp = malloc(quant_rp_bytes(rb, n_out));
    for (int64_t o = 0; o < n_out; o += QUANT_RP_ROWS)
        k->rp_tile(wbuf + o * rb, rb, n_out - o < QUANT_RP_ROWS ? (int)(n_out - o) : QUANT_RP_ROWS,
                   rp + o * rb, n_in);
    return rp;
}

/* The repacked tiles (quant.h, QUANT_RP_ROWS) and the gemv_rp / gemm_rp kernels over them, for
 * every type and ISA that has them: several row lengths (odd block counts), a row count that
 * leaves a short last tile (37 = 16 + 16 + 5, split over the threads so that a call starts past
 * row 0), token counts of 1 (gemv_rp) and of several (gemm_rp, with token tails), random and
 * extreme blocks and activations. The result must equal the native matmul of the same tokens
 * (the vec_dot kernels, themselves held to matmul_ref and the scalar reference above: same
 * activation quantization) up to float summation order: (sub-blocks + 16) * 2^-22 * sum |w x|. */
Test(matmul, repacked_matches_native) {
    enum simd_isa isas[SIMD_ISA_COUNT];
    const int n_isa = qt_simd_isas(isas);
    const int64_t n_ins[] = {32, 96, 256, 512, 544, 576, 768, 1536, 2304};
    const int64_t n_toks[] = {1, 2, 5, 8, 21, 67};
    int checked = 0;
    uint64_t seed = 4242;
    for (int ii = 0; ii < n_isa; ii++) {
        int types = 0; /* types with tiles at this ISA */
        for (int li = 0; li < QT_N_LAYOUTS; li++) {
            const struct qt_layout *l = &qt_layouts[li];
            simd_set_isa_cap(isas[ii]);
            const struct quant_kernels *k = quant_kernels(l->type);
            if (!k->rp_tile)
                continue;
            types++;
            cr_assert(k->gemv_rp && k->pack_act, "%s: rp_tile without its kernels",
                      tensor_type_name(l->type));
            int n_len = 0; /* lengths this type has run: each takes the next token count */
            for (size_t ni = 0; ni < sizeof n_ins / sizeof n_ins[0]; ni++) {
                const int64_t n_in = n_ins[ni], n_out = 37;
                if (n_in % l->blck)
                    continue;
                const int64_t nb = n_in / l->blck;
                const size_t rb = tensor_type_row_size(l->type, n_in);
                cr_assert_eq(quant_rp_bytes(rb, n_out), rb * 48, "3 tiles of 16 native rows");
                uint8_t *wbuf = malloc(rb * n_out);
                qt_fill_blocks(l, wbuf, n_out * nb, &seed, (int)ni % 2);
                uint8_t *rp = repack_rows(k, wbuf, rb, n_in, n_out);
                /* one token where only the decode kernel exists (native rows kept for more) */
                const int64_t n_tok =
                    k->gemm_rp ? n_toks[(n_len++ + li) % (sizeof n_toks / sizeof n_toks[0])] : 1;
                float *x = malloc(n_in * n_tok * 4), *wf = malloc(n_in * 4);
                float *y_native = malloc(n_out * n_tok * 4), *y_rp = malloc(n_out * n_tok * 4);
                qt_fill_act(x, n_in * n_tok, &seed, (int)(ni / 2) % 2);
                void *ws = malloc(matmul_ws_size(l->type, n_in, n_tok, omp_get_max_threads()));
                struct matmul_weight w = {
                    .type = l->type, .n_in = n_in, .n_out = n_out, .data = wbuf, .row_bytes = rb};
                matmul(&w, x, n_tok, y_native, ws);
                /* the repacked form alone: native rows of NaN scales must not be read */
                uint8_t *dead = malloc(rb * n_out);
                memset(dead, 0xff, rb * n_out);
                w.data = dead;
                w.rp = rp;
                for (int64_t o = 0; o < n_out * n_tok; o++)
                    y_rp[o] = NAN; /* every output must be written */
                matmul(&w, x, n_tok, y_rp, ws);
                for (int64_t o = 0; o < n_out; o++) {
                    quant_kernels_isa(l->type, SIMD_ISA_SCALAR)
                        ->dequant_row(wbuf + o * rb, wf, n_in);
                    for (int64_t t = 0; t < n_tok; t++) {
                        const float *xt = x + t * n_in;
                        double mag = 0.0;
                        for (int64_t i = 0; i < n_in; i++)
                            mag += fabs(wf[i]) * (fabs(xt[i]) + 1.0 / 127 * fabs(xt[i]));
                        const double bound = (double)(n_in / 16 + 16) * 0x1p-22 * mag + 1e-30;
                        const double got = y_rp[t * n_out + o], want = y_native[t * n_out + o];
                        cr_assert(fabs(got - want) <= bound || (isinf(want) && got == want),
                                  "%s isa %s n_in %lld tokens %lld row %lld token %lld: "
                                  "repacked %.9g native %.9g bound %.3g",
                                  tensor_type_name(l->type), simd_isa_name(isas[ii]),
                                  (long long)n_in, (long long)n_tok, (long long)o, (long long)t,
                                  got, want, bound);
                    }
                }
                free(wbuf), free(dead);
                free(rp), free(x), free(wf), free(y_native), free(y_rp), free(ws);
                checked++;
            }
        }
        /* NEON with SDOT (qemu's default cpu) has tiles for all 8 block types: none may drop
         * out of this check unnoticed (test_quant's repacked_kernels_match_scalar_dot lists
         * them per ISA) */
        if (isas[ii] == SIMD_ISA_NEON && simd_cpu_flags()->neon_dotprod)
            cr_assert_eq(types, 8, "neon: %d of the 8 block types have tile kernels", types);
    }
    if (checked == 0)
        cr_skip_test("no ISA here has repacked kernels");
}

/* matmul_multi_rows makes each row with its producer where the product reads it: straight into
 * the AMX path's bf16 rows where that runs, into x first elsewhere (decode-sized batches, no
 * AMX, native rows where the ISA has no repacked tiles). Either way the result must equal matmul
 * over the same rows made beforehand, bit for bit (the same packing and kernels), with the tiles
 * (amx) and without, batches of few and many tokens. The producer doubles a source row, so a row
 * made wrong or for the wrong token shows. */
struct doubled_rows {
    const float *src;
    int64_t n;
};

static void doubled_row(void *ctx, int64_t t, float *out) {
    const struct doubled_rows *d = ctx;
    for (int64_t i = 0; i < d->n; i++)
        out[i] = 2.0f * d->src[t * d->n + i];
}

Test(matmul, rows_made_on_demand_equal_rows_made_first) {
    uint64_t seed = 777;
    const int64_t n_toks[] = {5, 37, 97};
    int checked = 0, types = 0;
    for (int li = 0; li < QT_N_LAYOUTS; li++) {
        const struct qt_layout *l = &qt_layouts[li];
        const struct quant_kernels *k = quant_kernels(l->type);
        if (!k || !k->vec_dot || 512 % l->blck)
            continue;
        types++;
        const int64_t n_in = 512, n_out = 133;
        const size_t rb = tensor_type_row_size(l->type, n_in);
        uint8_t *wbuf = malloc(rb * n_out);
        qt_fill_blocks(l, wbuf, n_out * (n_in / l->blck), &seed, 0);
        /* the repacked tiles where this ISA has them, else the native rows (a57: no tiles) */
        uint8_t *rp = k->rp_tile ? repack_rows(k, wbuf, rb, n_in, n_out) : NULL;
        for (size_t ti = 0; ti < sizeof n_toks / sizeof n_toks[0]; ti++)
            for (int amx = 0; amx < 2; amx++) {
                const int64_t n_tok = n_toks[ti];
                float *src = malloc(n_in * n_tok * 4), *made = malloc(n_in * n_tok * 4);
                float *scratch = malloc(n_in * n_tok * 4);
                float *y_first = malloc(n_out * n_tok * 4), *y_rows = malloc(n_out * n_tok * 4);
                qt_fill_act(src, n_in * n_tok, &seed, 0);
                for (int64_t i = 0; i < n_in * n_tok; i++)
                    made[i] = 2.0f * src[i];
                void *ws = malloc(matmul_ws_size(l->type, n_in, n_tok, omp_get_max_threads()));
                const struct matmul_weight w = {.type = l->type,
                                                .n_in = n_in,
                                                .n_out = n_out,
                                                .data = wbuf,
                                                .row_bytes = rb,
                                                .rp = rp,
                                                .amx = amx};
                const struct matmul_weight *wp = &w;
                matmul(&w, made, n_tok, y_first, ws);
                struct doubled_rows d = {src, n_in};
                matmul_multi_rows(&wp, 1, doubled_row, &d, scratch, n_tok, &y_rows, ws);
                cr_assert(!memcmp(y_first, y_rows, (size_t)n_out * n_tok * 4),
                          "%s tokens %lld amx %d: rows made on demand differ",
                          tensor_type_name(l->type), (long long)n_tok, amx);
                free(src), free(made), free(scratch), free(y_first), free(y_rows), free(ws);
                checked++;
            }
        free(wbuf), free(rp);
    }
    cr_assert(types >= 8 && checked == 6 * types, "%d types ran %d of their 6 cases each", types,
              checked);
}
