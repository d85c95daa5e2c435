/* Weight-type kernels: the scalar reference against the reference implementation's values
 * (golden file from tools/make-quant-golden.py), every ISA table against the scalar one, the
 * scalar dots against double-precision dots, the number-format conversions, and the ISA cap. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "quant-testutil.h"

static const int64_t block_counts[] = {1, 2, 3, 7, 33};
#define N_COUNTS ((int)(sizeof block_counts / sizeof block_counts[0]))

/* ------------------------------------------------------------------ golden */

static uint8_t *read_golden(size_t *size) {
    const char *dir = getenv("ADAKV_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/quant-golden.bin", dir ? dir : ".");
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s (set ADAKV_SRCDIR)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    cr_assert(buf && fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Dequantization is a fixed sequence of exactly rounded f32 operations per value, the same in
 * ggml, in gguf-py's numpy and here, so the bits must agree exactly (no tolerance). */
static void check_golden_isa(enum simd_isa isa) {
    size_t size;
    uint8_t *buf = read_golden(&size);
    cr_assert(size >= 12 && memcmp(buf, "AKQG", 4) == 0 && rd32(buf + 4) == 1);
    uint32_t n_rec = rd32(buf + 8);
    size_t off = 12;
    int types_seen = 0;
    for (uint32_t r = 0; r < n_rec; r++) {
        cr_assert(off + 12 <= size);
        uint32_t type = rd32(buf + off), n = rd32(buf + off + 4), nbytes = rd32(buf + off + 8);
        off += 12;
        cr_assert(off + nbytes + 4ull * n <= size);
        const struct quant_kernels *k = quant_kernels_isa(type, isa);
        cr_assert(k, "no kernels for golden type %s", tensor_type_name(type));
        cr_assert_eq(tensor_type_row_size(type, n), nbytes);
        float *got = malloc(4ull * n);
        k->dequant_row(buf + off, got, n);
        const uint8_t *want = buf + off + nbytes;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t g = quant_f32_bits(got[i]), w = rd32(want + 4ull * i);
            cr_assert_eq(g, w, "%s isa %s value %u: got %a (0x%08x), reference %a (0x%08x)",
                         tensor_type_name(type), simd_isa_name(isa), i, (double)got[i], g,
                         (double)quant_bits_f32(w), w);
        }
        free(got);
        off += nbytes + 4ull * n;
        types_seen++;
    }
    cr_assert_eq(off, size, "trailing bytes in the golden file");
    cr_assert_geq(types_seen, 10);
    free(buf);
}

Test(quant_golden, scalar_dequant_equals_reference) {
    check_golden_isa(SIMD_ISA_SCALAR);
}

Test(quant_golden, simd_dequant_equals_reference) {
    enum simd_isa isas[SIMD_ISA_COUNT];
    int n = qt_simd_isas(isas);
    for (int i = 0; i < n; i++)
        check_golden_isa(isas[i]);
}

/* ------------------------------------------------------------------ SIMD vs scalar */

/* Magnitude for dot tolerances: sum |w_i a_i| plus the parts that cancel inside the kernels
 * (the minimum / offset of each block, from a copy of the block with its quant bits zeroed). */
static double dot_magnitude(const struct qt_layout *l, const uint8_t *w, const float *a,
                            int64_t n) {
    const struct quant_kernels *k = quant_kernels_isa(l->type, SIMD_ISA_SCALAR);
    size_t nbytes = tensor_type_row_size(l->type, n);
    uint8_t *w0 = malloc(nbytes);
    float *fw = malloc(n * sizeof *fw), *fw0 = malloc(n * sizeof *fw0);
    memcpy(w0, w, nbytes);
    if (l->d_off >= 0)
        for (int64_t b = 0; b < n / l->blck; b++)
            memset(w0 + b * l->bytes + l->q_begin, 0, (size_t)(l->q_end - l->q_begin));
    k->dequant_row(w, fw, n);
    k->dequant_row(w0, fw0, n);
    double m = 0.0;
    for (int64_t i = 0; i < n; i++)
        m += (fabs(fw[i]) + (l->d_off >= 0 ? fabs(fw0[i]) : 0.0)) * fabs(a[i]);
    free(w0);
    free(fw);
    free(fw0);
    return m;
}

/* Dequantized activation row, in double where the activation type's f32 dequant would round. */
static void act_values(uint32_t act_type, const void *q, int64_t n, double *out) {
    if (act_type == TENSOR_TYPE_Q8_K) {
        const struct block_q8_k *b = q;
        for (int64_t i = 0; i < n; i++)
            out[i] = (double)b[i / QK_K].d * b[i / QK_K].qs[i % QK_K];
        return;
    }
    float *f = malloc(n * sizeof *f);
    quant_kernels_isa(act_type, SIMD_ISA_SCALAR)->dequant_row(q, f, n);
    for (int64_t i = 0; i < n; i++)
        out[i] = f[i];
    free(f);
}

/* Compares one ISA table `t` (an array indexed by type) against the scalar kernels. */
static void check_table_vs_scalar(const struct quant_kernels *(*get)(uint32_t, void *), void *ctx,
                                  const char *name) {
    uint64_t seed = 0x1234567ull;
    for (int li = 0; li < QT_N_LAYOUTS; li++) {
        const struct qt_layout *l = &qt_layouts[li];
        const struct quant_kernels *ref = quant_kernels_isa(l->type, SIMD_ISA_SCALAR);
        const struct quant_kernels *k = get(l->type, ctx);
        cr_assert(k && ref);
        for (int ci = 0; ci < N_COUNTS; ci++)
            for (int extreme = 0; extreme < 2; extreme++) {
                /* plain float types: odd lengths are whole "blocks" too */
                int64_t nb = block_counts[ci], n = nb * (l->blck == 1 ? 37 : l->blck);
                if (l->blck == 1)
                    nb = n;
                size_t wbytes = tensor_type_row_size(l->type, n);
                size_t abytes = tensor_type_row_size(ref->act_type, n);
                uint8_t *w = malloc(wbytes), *qa = malloc(abytes), *qa_ref = malloc(abytes);
                float *x = malloc(n * 4), *d1 = malloc(n * 4), *d2 = malloc(n * 4);
                qt_fill_blocks(l, w, nb, &seed, extreme);
                qt_fill_act(x, n, &seed, extreme);

                ref->dequant_row(w, d1, n);
                k->dequant_row(w, d2, n);
                cr_assert(memcmp(d1, d2, n * 4) == 0, "%s: %s dequant differs, n=%lld", name,
                          tensor_type_name(l->type), (long long)n);

                ref->quantize_act(x, qa_ref, n);
                k->quantize_act(x, qa, n);
                cr_assert(memcmp(qa, qa_ref, abytes) == 0, "%s: %s activation (%s) differs, n=%lld",
                          name, tensor_type_name(l->type), tensor_type_name(ref->act_type),
                          (long long)n);

                /* Both sum the same per-block exact integer dots (or exact products) scaled by
                 * the same float factors; only the order of the float additions and an int32 to
                 * float conversion per lane differ: each of the <= nb + 16 partial sums
                 * contributes at most a few 2^-24 relative roundings of the magnitude. The
                 * plain float types sum n products in f32 against the reference's double. */
                double *av = malloc(n * sizeof *av);
                act_values(ref->act_type, qa_ref, n, av);
                float *af = malloc(n * 4);
                for (int64_t i = 0; i < n; i++)
                    af[i] = (float)av[i];
                double mag = dot_magnitude(l, w, af, n);
                int64_t terms = l->blck == 1 ? n : nb;
                double tol = (double)(terms + 16) * 0x1p-22 * mag + 1e-30;
                float r = ref->vec_dot(n, w, qa_ref), g = k->vec_dot(n, w, qa_ref);
                cr_assert(fabs((double)r - (double)g) <= tol,
                          "%s: %s vec_dot n=%lld extreme=%d: scalar %.9g simd %.9g (tol %.3g)",
                          name, tensor_type_name(l->type), (long long)n, extreme, r, g, tol);
                free(av);
                free(af);
                free(w);
                free(qa);
                free(qa_ref);
                free(x);
                free(d1);
                free(d2);
            }
    }
}

static const struct quant_kernels *get_isa(uint32_t type, void *ctx) {
    return quant_kernels_isa(type, *(enum simd_isa *)ctx);
}

Test(quant_simd, every_isa_matches_scalar) {
    enum simd_isa isas[SIMD_ISA_COUNT];
    int n = qt_simd_isas(isas);
    for (int i = 0; i < n; i++)
        check_table_vs_scalar(get_isa, &isas[i], simd_isa_name(isas[i]));
}

static const struct quant_kernels *get_table(uint32_t type, void *ctx) {
    return &((const struct quant_kernels *)ctx)[type];
}

/* Every ISA table as a CPU with the bare ISA level gets it (simd/kernels.h's lines that need
 * VNNI, BF16 or SDOT left out), so the maddubs, widening and plain-NEON dots are tested on
 * machines (and qemu CPUs) that have the newer instructions too. */
Test(quant_simd, every_isa_without_its_extensions_matches_scalar) {
    static const struct simd_cpu_flags bare;
    enum simd_isa isas[SIMD_ISA_COUNT];
    int n = qt_simd_isas(isas);
#ifdef ADAKV_BUILD_NEON
    cr_assert(simd_isa_available(SIMD_ISA_NEON), "NEON build on a CPU without ASIMD");
#endif
    for (int i = 0; i < n; i++) {
        static struct quant_kernels t[QUANT_TYPE_TABLE_SIZE];
        memset(t, 0, sizeof t);
        quant_kernels_build(t, isas[i], &bare);
        char name[32];
        snprintf(name, sizeof name, "%s-base", simd_isa_name(isas[i]));
        check_table_vs_scalar(get_table, t, name);
    }
}

/* The blocked kernels (rows x tokens, and the one-token GEMV they switch to) against the scalar
 * vec_dot of the same weights and the scalar-quantized activations: same per-block integer sums
 * and scale products, so the vec_dot tolerance applies. Row counts cover the 4-row groups and
 * their tails, token counts the 2-token pairing and its tail, block counts odd and even. */
static void check_gemm(enum simd_isa isa) {
    uint64_t seed = 0xabcdefull;
    for (int li = 0; li < QT_N_LAYOUTS; li++) {
        const struct qt_layout *l = &qt_layouts[li];
        const struct quant_kernels *k = quant_kernels_isa(l->type, isa);
        const struct quant_kernels *ref = quant_kernels_isa(l->type, SIMD_ISA_SCALAR);
        if (!k->gemm)
            continue;
        for (int ci = 0; ci < N_COUNTS; ci++)
            for (int64_t n_rows = 1; n_rows <= 9; n_rows += 4)
                for (int64_t n_tok = 1; n_tok <= 3; n_tok++) {
                    int64_t nb = block_counts[ci], n = nb * l->blck;
                    size_t rb =
                        tensor_type_row_size(l->type, n) + 2; /* padded stride, not 64-aligned */
                    size_t pb = quant_pack_bytes(n), ab = tensor_type_row_size(ref->act_type, n);
                    uint8_t *w = malloc(rb * n_rows), *pa = malloc(pb * n_tok), *qa = malloc(ab);
                    float *x = malloc(n * n_tok * 4), *y = malloc(n_rows * n_tok * 4);
                    for (int64_t r = 0; r < n_rows; r++)
                        qt_fill_blocks(l, w + r * rb, nb, &seed, (int)(r % 2));
                    qt_fill_act(x, n * n_tok, &seed, (int)(n_tok % 2));
                    for (int64_t t = 0; t < n_tok; t++)
                        k->pack_act(x + t * n, pa + t * pb, n);
                    k->gemm(n, w, rb, n_rows, pa, pb, n_tok, y, (size_t)n_rows);
                    for (int64_t t = 0; t < n_tok; t++) {
                        ref->quantize_act(x + t * n, qa, n);
                        double *av = malloc(n * sizeof *av);
                        float *af = malloc(n * 4);
                        act_values(ref->act_type, qa, n, av);
                        for (int64_t i = 0; i < n; i++)
                            af[i] = (float)av[i];
                        for (int64_t r = 0; r < n_rows; r++) {
                            float want = ref->vec_dot(n, w + r * rb, qa);
                            double tol =
                                (double)(nb + 16) * 0x1p-22 * dot_magnitude(l, w + r * rb, af, n) +
                                1e-30;
                            float got = y[t * n_rows + r];
                            cr_assert(fabs((double)got - (double)want) <= tol,
                                      "%s %s gemm nb=%lld rows=%lld toks=%lld: y[%lld][%lld] = "
                                      "%.9g, scalar %.9g, tol %.3g",
                                      simd_isa_name(isa), tensor_type_name(l->type), (long long)nb,
                                      (long long)n_rows, (long long)n_tok, (long long)t,
                                      (long long)r, got, want, tol);
                        }
                        free(av);
                        free(af);
                    }
                    free(w);
                    free(pa);
                    free(qa);
                    free(x);
                    free(y);
                }
    }
}

Test(quant_simd, blocked_kernels_match_scalar_dot) {
    enum simd_isa isas[SIMD_ISA_COUNT];
    int n = qt_simd_isas(isas);
    for (int i = 0; i < n; i++)
        check_gemm(isas[i]);
}

/* The AVX-512 VNNI activation packing of Q4_1 (pack_act_q8_1) and Q8_0 (pack_act_q8_0u), read
 * back through its layout (quant_pack_bytes: quants, per-pair scales, block sums, sums / 8),
 * bit for bit against the scalar Q8_1 quantizer: the packing takes 16 blocks at a time through
 * transposing reductions and the rest one block at a time, so block counts cover a group, its
 * tail, and several groups; values random and extreme (zeros, -0, one dominant value, values
 * below the f16 normal range). */
Test(quant_simd, vnni_packing_is_the_scalar_quantization) {
    if (!simd_isa_available(SIMD_ISA_AVX512) || !simd_cpu_flags()->avx512_vnni)
        return; /* the packing exists only on VNNI CPUs */
    static const int64_t counts[] = {1, 2, 15, 16, 17, 33, 48, 64};
    const struct quant_kernels *ref = quant_kernels_isa(TENSOR_TYPE_Q4_1, SIMD_ISA_SCALAR);
    const uint32_t types[] = {TENSOR_TYPE_Q4_1, TENSOR_TYPE_Q8_0};
    uint64_t seed = 0x9ac4ull;
    for (int ti = 0; ti < 2; ti++) {
        const struct quant_kernels *k = quant_kernels_isa(types[ti], SIMD_ISA_AVX512);
        cr_assert(k->pack_act && k->pack_act != k->quantize_act, "%s: no VNNI packing",
                  tensor_type_name(types[ti]));
        const uint8_t flip = types[ti] == TENSOR_TYPE_Q8_0 ? 0x80 : 0; /* unsigned activations */
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++)
            for (int extreme = 0; extreme < 2; extreme++) {
                const int64_t nb = counts[ci], n = nb * QK, np = (nb + 1) / 2;
                uint8_t *pa = malloc(quant_pack_bytes(n));
                struct block_q8_1 *q = malloc((size_t)nb * sizeof *q);
                float *x = malloc((size_t)n * sizeof *x);
                qt_fill_act(x, n, &seed, extreme);
                k->pack_act(x, pa, n);
                ref->quantize_act(x, q, n);
                const float *dp = (const float *)(pa + np * 64), *sum = dp + np * 16;
                const float *sp = sum + (nb + 15) / 16 * 16;
                for (int64_t b = 0; b < nb; b++) {
                    for (int i = 0; i < QK; i++)
                        cr_assert_eq(pa[b * QK + i], (uint8_t)q[b].qs[i] ^ flip,
                                     "%s nb=%lld extreme=%d block %lld quant %d",
                                     tensor_type_name(types[ti]), (long long)nb, extreme,
                                     (long long)b, i);
                    const float d = quant_f16_to_f32(q[b].d), sb = quant_f16_to_f32(q[b].s);
                    for (int i = 0; i < 8; i++) {
                        cr_assert_eq(quant_f32_bits(dp[b * 8 + i]), quant_f32_bits(d),
                                     "%s nb=%lld block %lld scale lane %d: %a, scalar %a",
                                     tensor_type_name(types[ti]), (long long)nb, (long long)b, i,
                                     (double)dp[b * 8 + i], (double)d);
                        cr_assert_eq(quant_f32_bits(sp[b * 8 + i]), quant_f32_bits(sb / 8.0f));
                    }
                    cr_assert_eq(quant_f32_bits(sum[b]), quant_f32_bits(sb),
                                 "%s nb=%lld block %lld sum: %a, scalar %a",
                                 tensor_type_name(types[ti]), (long long)nb, (long long)b,
                                 (double)sum[b], (double)sb);
                }
                free(pa);
                free(q);
                free(x);
            }
    }
}

/* The repacked-tile kernels (quant.h QUANT_RP_ROWS: rp_tile, pack_act, gemv_rp, gemm_rp) held
 * directly to the plain C reference: the scalar vec_dot of the native rows against the scalar
 * quantize_act of the same tokens. pack_act quantizes with the table's quantize_act (bit-exact
 * with the scalar one, checked above) and the kernels compute vec_dot's exact per-block integer
 * dots with its scale products, so only the float summation order differs: vec_dot's tolerance.
 * Row counts: 1, one whole tile, and counts leaving a short last tile (23 = 16 + 7, 37 = 2 * 16
 * + 5: the row groups of 4 and 8 and their tails); token counts around the kernels' passes of 4
 * tokens (1 .. 7, 9: gemm_rp's tails of 1, 2, 3); the native rows at a padded stride; outputs at
 * a padded y stride whose gaps must stay untouched; random and extreme blocks and activations. */
static void check_rp(enum simd_isa isa) {
    static const int64_t rows[] = {1, 16, 23, 37};
    static const int64_t toks[] = {1, 2, 3, 4, 5, 6, 7, 9};
    uint64_t seed = 0x5eedull + (uint64_t)isa;
    int combo = 0;
    for (int li = 0; li < QT_N_LAYOUTS; li++) {
        const struct qt_layout *l = &qt_layouts[li];
        const struct quant_kernels *k = quant_kernels_isa(l->type, isa);
        const struct quant_kernels *ref = quant_kernels_isa(l->type, SIMD_ISA_SCALAR);
        if (!k->rp_tile)
            continue;
        cr_assert(k->pack_act && k->gemv_rp, "%s %s: rp_tile without its kernels",
                  simd_isa_name(isa), tensor_type_name(l->type));
        for (int ci = 0; ci < N_COUNTS; ci++)
            for (int extreme = 0; extreme < 2; extreme++, combo++) {
                const int64_t nb = block_counts[ci], n = nb * l->blck;
                const int64_t n_rows = rows[combo % 4], n_tok = toks[combo % 8];
                const size_t rb = tensor_type_row_size(l->type, n), src_stride = rb + 2;
                /* room for either packed form (matmul.c's ws_row_bytes), not 64-aligned */
                size_t pb = quant_pack_bytes(n), ab = tensor_type_row_size(ref->act_type, n);
                pb = (pb > ab ? pb : ab) + 4;
                const size_t y_stride = (size_t)n_rows + 3;
                uint8_t *w = malloc(src_stride * n_rows), *rp = malloc(quant_rp_bytes(rb, n_rows));
                uint8_t *pa = malloc(pb * n_tok), *qa = malloc(ab);
                float *x = malloc(n * n_tok * 4), *y = malloc(y_stride * n_tok * 4),
                      *y1 = malloc(y_stride * 4), *af = malloc(n * 4);
                double *av = malloc(n * sizeof *av);
                for (int64_t r = 0; r < n_rows; r++)
                    qt_fill_blocks(l, w + r * src_stride, nb, &seed, extreme && r % 2 == 0);
                qt_fill_act(x, n * n_tok, &seed, extreme);
                for (int64_t r = 0; r < n_rows; r += QUANT_RP_ROWS)
                    k->rp_tile(w + r * src_stride, src_stride,
                               n_rows - r < QUANT_RP_ROWS ? (int)(n_rows - r) : QUANT_RP_ROWS,
                               rp + r * rb, n);
                for (int64_t t = 0; t < n_tok; t++)
                    k->pack_act(x + t * n, pa + t * pb, n);
                for (size_t i = 0; i < y_stride * n_tok; i++)
                    y[i] = NAN;
                for (size_t r = 0; r < y_stride; r++)
                    y1[r] = NAN;
                /* gemm_rp is optional in the table's contract (every ISA here has it: asserted
                 * below); without it only the decode kernel is checked */
                const bool gemm = k->gemm_rp != NULL;
                if (gemm)
                    k->gemm_rp(n, rp, rb, n_rows, pa, pb, n_tok, y, y_stride);
                /* the last token alone through the decode kernel */
                k->gemv_rp(n, rp, rb, n_rows, pa + (n_tok - 1) * pb, y1);
                for (int64_t t = 0; t < n_tok; t++) {
                    ref->quantize_act(x + t * n, qa, n);
                    act_values(ref->act_type, qa, n, av);
                    for (int64_t i = 0; i < n; i++)
                        af[i] = (float)av[i];
                    for (int64_t r = 0; r < n_rows; r++) {
                        const uint8_t *wr = w + r * src_stride;
                        const float want = ref->vec_dot(n, wr, qa);
                        const double tol =
                            (double)(nb + 16) * 0x1p-22 * dot_magnitude(l, wr, af, n) + 1e-30;
                        const float got = y[t * y_stride + r];
                        cr_assert(!gemm || fabs((double)got - (double)want) <= tol ||
                                      (isinf(want) && got == want),
                                  "%s %s gemm_rp nb=%lld rows=%lld toks=%lld extreme=%d: "
                                  "y[%lld][%lld] = %.9g, scalar %.9g, tol %.3g",
                                  simd_isa_name(isa), tensor_type_name(l->type), (long long)nb,
                                  (long long)n_rows, (long long)n_tok, extreme, (long long)t,
                                  (long long)r, got, want, tol);
                        if (t == n_tok - 1)
                            cr_assert(fabs((double)y1[r] - (double)want) <= tol ||
                                          (isinf(want) && y1[r] == want),
                                      "%s %s gemv_rp nb=%lld rows=%lld extreme=%d: y[%lld] = "
                                      "%.9g, scalar %.9g, tol %.3g",
                                      simd_isa_name(isa), tensor_type_name(l->type), (long long)nb,
                                      (long long)n_rows, extreme, (long long)r, y1[r], want, tol);
                    }
                    for (size_t r = (size_t)n_rows; r < y_stride; r++)
                        cr_assert(isnan(y1[r]) && (!gemm || isnan(y[t * y_stride + r])),
                                  "%s %s rows=%lld: wrote y[%lld][%zu] past the rows",
                                  simd_isa_name(isa), tensor_type_name(l->type), (long long)n_rows,
                                  (long long)t, r);
                }
                free(w), free(rp), free(pa), free(qa);
                free(x), free(y), free(y1), free(af), free(av);
            }
    }
}

/* Which types must have tile kernels: all eight block types on AVX2 and AVX-512, and on NEON
 * where the CPU has SDOT (qemu's default cpu `max` has it), each with gemm_rp (else the native
 * rows stay in memory beside the tiles for prompt batches); none on NEON
 * without SDOT (the kernels are SDOT only, tools/arm-check.sh's cortex-a57 pass), where the
 * weights stay native. So a dispatcher change that dropped a type fails here instead of
 * skipping its check. */
static bool rp_expected(enum simd_isa isa) {
    if (isa == SIMD_ISA_NEON)
        return simd_cpu_flags()->neon_dotprod;
    return isa == SIMD_ISA_AVX2 || isa == SIMD_ISA_AVX512;
}

Test(quant_simd, repacked_kernels_match_scalar_dot) {
    static const uint32_t rp_types[] = {TENSOR_TYPE_Q4_0, TENSOR_TYPE_Q4_1, TENSOR_TYPE_Q5_0,
                                        TENSOR_TYPE_Q5_1, TENSOR_TYPE_Q8_0, TENSOR_TYPE_Q4_K,
                                        TENSOR_TYPE_Q5_K, TENSOR_TYPE_Q6_K};
    enum simd_isa isas[SIMD_ISA_COUNT];
    int n = qt_simd_isas(isas);
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < sizeof rp_types / sizeof rp_types[0]; j++) {
            const struct quant_kernels *k = quant_kernels_isa(rp_types[j], isas[i]);
            cr_assert_eq(k->rp_tile != NULL, rp_expected(isas[i]), "%s %s: tile kernels %s",
                         simd_isa_name(isas[i]), tensor_type_name(rp_types[j]),
                         k->rp_tile ? "present" : "missing");
            if (k->rp_tile)
                cr_assert(k->gemm_rp, "%s %s: no gemm_rp", simd_isa_name(isas[i]),
                          tensor_type_name(rp_types[j]));
        }
        check_rp(isas[i]);
    }
    cr_assert_null(quant_kernels_isa(TENSOR_TYPE_Q4_0, SIMD_ISA_SCALAR)->rp_tile);
}

/* ------------------------------------------------------------------ scalar dot vs double */

/* The scalar dot equals the exact dot of dequantized weights and dequantized activations up to
 * float accumulation: per block one product of two exact factors with an exact integer sum, then
 * a float sum over blocks, so |error| <= (nb + 2) * 2^-23 * magnitude. Q6_K/K-quant f32
 * dequantization itself may round a value by 2^-24 relative; that is inside the same bound.
 * Q8_1's block sum s is a stored f16 (d * sum(q) rounded), by design as in llama.cpp: the
 * reference uses it for the minimum term, m * s, exactly as the format defines. */
Test(quant_scalar, dot_equals_double_dot_of_dequantized) {
    uint64_t seed = 42;
    for (int li = 0; li < QT_N_LAYOUTS; li++) {
        const struct qt_layout *l = &qt_layouts[li];
        const struct quant_kernels *k = quant_kernels_isa(l->type, SIMD_ISA_SCALAR);
        for (int ci = 0; ci < N_COUNTS; ci++) {
            int64_t nb = block_counts[ci], n = nb * (l->blck == 1 ? 37 : l->blck);
            if (l->blck == 1)
                nb = n;
            uint8_t *w = malloc(tensor_type_row_size(l->type, n));
            uint8_t *qa = malloc(tensor_type_row_size(k->act_type, n));
            float *x = malloc(n * 4), *fw = malloc(n * 4), *fw0 = malloc(n * 4);
            double *av = malloc(n * sizeof *av);
            qt_fill_blocks(l, w, nb, &seed, 1);
            qt_fill_act(x, n, &seed, 1);
            k->quantize_act(x, qa, n);
            k->dequant_row(w, fw, n);
            act_values(k->act_type, qa, n, av);
            double exact = 0.0;
            for (int64_t i = 0; i < n; i++)
                exact += (double)fw[i] * av[i];
            if (k->act_type == TENSOR_TYPE_Q8_1) {
                /* m * (s - d * sum q) per block: m is the value of a zero quant */
                uint8_t *w0 = malloc(tensor_type_row_size(l->type, n));
                memcpy(w0, w, tensor_type_row_size(l->type, n));
                for (int64_t b = 0; b < nb; b++)
                    memset(w0 + b * l->bytes + l->q_begin, 0, (size_t)(l->q_end - l->q_begin));
                k->dequant_row(w0, fw0, n);
                const struct block_q8_1 *y = (const void *)qa;
                for (int64_t b = 0; b < nb; b++) {
                    double sum = 0.0;
                    for (int j = 0; j < QK; j++)
                        sum += av[b * QK + j];
                    exact += (double)fw0[b * QK] * ((double)quant_f16_to_f32(y[b].s) - sum);
                }
                free(w0);
            }
            float *af = malloc(n * 4);
            for (int64_t i = 0; i < n; i++)
                af[i] = (float)av[i];
            double mag = dot_magnitude(l, w, af, n);
            double tol = (double)(l->blck == 1 ? 2 : nb + 2) * 0x1p-23 * mag + 1e-30;
            float got = k->vec_dot(n, w, qa);
            cr_assert(fabs((double)got - exact) <= tol,
                      "%s n=%lld: scalar dot %.9g, exact %.9g, tol %.3g", tensor_type_name(l->type),
                      (long long)n, got, exact, tol);
            free(af);
            free(w);
            free(qa);
            free(x);
            free(fw);
            free(fw0);
            free(av);
        }
    }
}

/* ------------------------------------------------------------------ number formats */

Test(quant_format, f16_round_trip_is_identity) {
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue; /* NaN payloads: checked below */
        cr_assert_eq(quant_f32_to_f16(quant_f16_to_f32((uint16_t)h)), h, "half 0x%04x", h);
    }
}

Test(quant_format, f16_rounding_cases) {
    cr_assert_eq(quant_f32_to_f16(1.0f), 0x3c00);
    cr_assert_eq(quant_f32_to_f16(-0.0f), 0x8000);
    cr_assert_eq(quant_f32_to_f16(65504.0f), 0x7bff);
    cr_assert_eq(quant_f32_to_f16(65519.99f), 0x7bff);
    cr_assert_eq(quant_f32_to_f16(65520.0f), 0x7c00); /* tie rounds to even = overflow */
    cr_assert_eq(quant_f32_to_f16(1e9f), 0x7c00);
    cr_assert_eq(quant_f32_to_f16(-INFINITY), 0xfc00);
    cr_assert_eq(quant_f32_to_f16(0x1p-24f), 0x0001);
    cr_assert_eq(quant_f32_to_f16(0x1p-25f), 0x0000);     /* tie to even */
    cr_assert_eq(quant_f32_to_f16(0x1.8p-24f), 0x0002);   /* tie to even, upwards */
    cr_assert_eq(quant_f32_to_f16(0x1.ffcp-15f), 0x0400); /* subnormal tie rounds up to normal */
    cr_assert_eq(quant_f32_to_f16(0x1.ff8p-15f), 0x03ff);
    cr_assert_eq(quant_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie to even */
    cr_assert_eq(quant_f32_to_f16(1.0f + 0x3p-11f), 0x3c02);
    cr_assert_eq(quant_f32_to_f16(NAN) & 0x7e00, 0x7e00);
    cr_assert(isnan(quant_f16_to_f32(0x7e00)));
    cr_assert_eq(quant_f32_bits(quant_f16_to_f32(0x0001)), quant_f32_bits(0x1p-24f));
}

Test(quant_format, bf16_rounding_cases) {
    cr_assert_eq(quant_f32_to_bf16(1.0f), 0x3f80);
    cr_assert_eq(quant_f32_to_bf16(quant_bits_f32(0x3f808000u)), 0x3f80); /* tie to even */
    cr_assert_eq(quant_f32_to_bf16(quant_bits_f32(0x3f818000u)), 0x3f82);
    cr_assert_eq(quant_f32_to_bf16(quant_bits_f32(0x3f808001u)), 0x3f81);
    cr_assert_eq(quant_f32_to_bf16(quant_bits_f32(0x7f7fffffu)), 0x7f80); /* overflow to inf */
    cr_assert_eq(quant_f32_to_bf16(quant_bits_f32(0x7f800001u)), 0x7fc0); /* NaN made quiet */
    cr_assert_eq(quant_f32_bits(quant_bf16_to_f32(0xbf80)), quant_f32_bits(-1.0f));
}

/* Q8_K keeps llama.cpp's convention: the element of largest magnitude becomes -127. */
Test(quant_format, q8_k_sign_convention) {
    float x[QK_K] = {0};
    x[5] = 2.0f;
    x[9] = -1.0f;
    struct block_q8_k b;
    quant_kernels_isa(TENSOR_TYPE_Q4_K, SIMD_ISA_SCALAR)->quantize_act(x, &b, QK_K);
    cr_assert_eq(b.qs[5], -127);
    cr_assert_eq(b.qs[9], 64); /* -1 * -127/2 = 63.5 -> 64 (ties to even) */
    cr_assert_float_eq(b.d, -2.0f / 127.0f, 1e-9);
    cr_assert_eq(b.bsums[0], -127 + 64);
}

/* ------------------------------------------------------------------ ISA cap */

Test(simd_cpu, parse_names) {
    char msg[512] = ""; /* simd/ reports into a plain buffer (cpu.h) */
    enum simd_isa isa;
    cr_assert_eq(simd_isa_parse("scalar", &isa, msg, sizeof msg), 0);
    cr_assert_eq(isa, SIMD_ISA_SCALAR);
    cr_assert_eq(simd_isa_parse("avx2", &isa, msg, sizeof msg), 0);
    cr_assert_eq(isa, SIMD_ISA_AVX2);
    cr_assert_eq(simd_isa_parse("avx512", &isa, msg, sizeof msg), 0);
    cr_assert_eq(isa, SIMD_ISA_AVX512);
    cr_assert_eq(simd_isa_parse("neon", &isa, msg, sizeof msg), 0);
    cr_assert_eq(isa, SIMD_ISA_NEON);
    cr_assert_eq(simd_isa_parse("AVX512", &isa, msg, sizeof msg), -1);
    cr_assert(strstr(msg, "ADAKV_ISA=AVX512") && strstr(msg, "unknown ISA"), "%s", msg);
}

/* The decode kernels' prefetch distance (cpu.h, rp-glue.h): 2 KiB on Intel cores when the weights
 * stream from DRAM, each kernel's own (0) when they fit in a quarter of the last-level cache or
 * the core is not Intel's; this machine's answer follows from its own flags. */
Test(simd_cpu, decode_prefetch_follows_the_stream_size) {
    const struct simd_cpu_flags *f = simd_cpu_flags();
    const uint64_t llc = f->llc_bytes;
    simd_set_decode_stream_bytes(UINT64_C(64) << 30); /* past any cache */
    cr_assert_eq(atomic_load(&simd_decode_prefetch), f->intel ? 2048u : 0u);
    simd_set_decode_stream_bytes(llc / 4);
    cr_assert_eq(atomic_load(&simd_decode_prefetch), f->intel && !llc ? 2048u : 0u);
    if (llc) {
        simd_set_decode_stream_bytes(llc / 4 + 1);
        cr_assert_eq(atomic_load(&simd_decode_prefetch), f->intel ? 2048u : 0u);
    }
}

Test(simd_cpu, unknown_env_value_is_reported) {
    setenv("ADAKV_ISA", "avx513", 1);
    char msg[512] = ""; /* simd/ reports into a plain buffer (cpu.h) */
    cr_assert_eq(simd_isa_init(msg, sizeof msg), -1);
    cr_assert(strstr(msg, "avx513"), "%s", msg);
    cr_assert_eq(simd_isa(), simd_isa_detected()); /* cap untouched */
    cr_assert(simd_isa_env_error() && strstr(simd_isa_env_error(), "avx513"));
}

Test(simd_cpu, env_cap_scalar) {
    setenv("ADAKV_ISA", "scalar", 1);
    cr_assert_eq(simd_isa(), SIMD_ISA_SCALAR);
    cr_assert_null(simd_isa_env_error());
}

Test(simd_cpu, other_family_is_an_error) {
#if defined(__x86_64__)
    setenv("ADAKV_ISA", "neon", 1);
#else
    setenv("ADAKV_ISA", "avx2", 1);
#endif
    char msg[512] = ""; /* simd/ reports into a plain buffer (cpu.h) */
    cr_assert_eq(simd_isa_init(msg, sizeof msg), -1);
    cr_assert(strstr(msg, "CPU family"), "%s", msg);
}

Test(simd_cpu, cap_is_min_of_detected_and_cap) {
    unsetenv("ADAKV_ISA");
    enum simd_isa det = simd_isa_detected();
    for (int c = 0; c < SIMD_ISA_COUNT; c++) {
        simd_set_isa_cap((enum simd_isa)c);
        enum simd_isa got = simd_isa();
        cr_assert(simd_isa_available(got));
        if (simd_isa_available((enum simd_isa)c))
            cr_assert_eq(got, (enum simd_isa)c, "cap %s", simd_isa_name((enum simd_isa)c));
        else
            cr_assert(got == det || got == SIMD_ISA_SCALAR, "cap %s gave %s",
                      simd_isa_name((enum simd_isa)c), simd_isa_name(got));
    }
    simd_set_isa_cap(SIMD_ISA_COUNT);
    cr_assert_eq(simd_isa(), det);
#if defined(__x86_64__) && defined(ADAKV_BUILD_AVX512)
    const struct simd_cpu_flags *f = simd_cpu_flags();
    if (f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq)
        cr_assert_eq(det, SIMD_ISA_AVX512);
#endif
}
