/* One thread's rate in one repacked-tile prompt kernel (quant.h gemm_rp; for 1 token the decode
 * kernel gemv_rp) alone: rows x tokens
 * of one call, repeated on the same buffers, so that with small shapes its tiles and tokens stay
 * in L1/L2 and the figure is the kernel's compute rate, and with rows past L2 it includes the
 * streaming of the weights. perf/bench-matmul measures the whole matmul (threads, tiling,
 * activation packing) on the model shapes; this one isolates the kernel, to set against
 * perf/peak's vpdpbusd peak. Weights are random bytes with normal block scales.
 *
 *   perf/bench-gemm-kernel TYPE [n 2048] [rows 64] [tokens 512]     TYPE: q4_k q5_k q6_k q8_0
 *                                                                          q4_0 q5_0 q5_1 q4_1
 * Prints GOP/s = 2 n rows tokens / s and the weight bytes read per second, the best of 7 timings
 * of about 0.5 s of calls each. With 1 token and rows past L2 this is the decode kernel's
 * streaming rate, to set against perf/stream's one-thread read bandwidth: below it, decode is
 * bound by the kernel's instructions, not by DRAM. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quant.h"
#include "tensor-type.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const struct {
    const char *name;
    uint32_t type;
} types[] = {{"q4_k", TENSOR_TYPE_Q4_K}, {"q5_k", TENSOR_TYPE_Q5_K}, {"q6_k", TENSOR_TYPE_Q6_K},
             {"q8_0", TENSOR_TYPE_Q8_0}, {"q4_0", TENSOR_TYPE_Q4_0}, {"q5_0", TENSOR_TYPE_Q5_0},
             {"q5_1", TENSOR_TYPE_Q5_1}, {"q4_1", TENSOR_TYPE_Q4_1}};

static long arg(int argc, char **argv, int i, long def) {
    if (argc <= i)
        return def;
    char *end;
    const long v = strtol(argv[i], &end, 10);
    if (*end || v <= 0) {
        fprintf(stderr, "bench-gemm-kernel: argument %d: '%s' is not a positive integer\n", i,
                argv[i]);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    uint32_t type = UINT32_MAX;
    for (size_t i = 0; argc > 1 && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(argv[1], types[i].name))
            type = types[i].type;
    if (type == UINT32_MAX) {
        fprintf(stderr, "usage: bench-gemm-kernel q4_k|q5_k|q6_k|q8_0|q4_0|q5_0|q5_1|q4_1 "
                        "[n] [rows] [tokens]\n");
        return 2;
    }
    const int64_t n = arg(argc, argv, 2, 2048), rows = arg(argc, argv, 3, 64),
                  n_tok = arg(argc, argv, 4, 512);
    const struct quant_kernels *k = quant_kernels(type);
    if (!k || !k->rp_tile || !k->gemm_rp || !k->pack_act) {
        fprintf(stderr, "bench-gemm-kernel: no repacked prompt kernel for %s on this CPU\n",
                argv[1]);
        return 1;
    }
    if (n % tensor_type_blck_size(type) || n > QUANT_GEMM_MAX_N) {
        fprintf(stderr, "bench-gemm-kernel: n %lld: not a multiple of the block size or > %d\n",
                (long long)n, QUANT_GEMM_MAX_N);
        return 2;
    }
    const size_t rb = (size_t)tensor_type_row_size(type, (uint64_t)n);
    size_t ab = quant_pack_bytes(n), ab2 = (size_t)tensor_type_row_size(k->act_type, (uint64_t)n);
    ab = ((ab > ab2 ? ab : ab2) + 63) / 64 * 64;
    uint8_t *w = malloc(rb * (size_t)rows), *rp = aligned_alloc(64, quant_rp_bytes(rb, rows) + 64);
    uint8_t *act = aligned_alloc(64, ab * (size_t)n_tok);
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)(rows * n_tok) * sizeof *y);
    if (!w || !rp || !act || !x || !y) {
        fprintf(stderr, "bench-gemm-kernel: out of memory\n");
        return 1;
    }
    srand(1);
    for (size_t i = 0; i < rb * (size_t)rows; i++)
        w[i] = (uint8_t)rand();
    /* finite, normal f16 block scales (0x1c00 = 1/256): random ones are often subnormal or NaN,
     * and subnormal float operands slowed the Q4_K kernel by about 10% here. The scale is the first
     * f16 of every block (Q6_K: the last), the minimum the second where there is one; writing
     * both slots in every type only changes random quant bytes. */
    const size_t bb = (size_t)tensor_type_row_size(type, (uint64_t)tensor_type_blck_size(type));
    const uint8_t f16[2] = {0x00, 0x1c};
    for (size_t b = 0; b < rb * (size_t)rows; b += bb) {
        memcpy(w + b, f16, 2);
        memcpy(w + b + 2, f16, 2);
        if (type == TENSOR_TYPE_Q6_K)
            memcpy(w + b + bb - 2, f16, 2);
    }
    for (int64_t r = 0; r < rows; r += QUANT_RP_ROWS)
        k->rp_tile(w + (size_t)r * rb, rb,
                   rows - r < QUANT_RP_ROWS ? (int)(rows - r) : QUANT_RP_ROWS, rp + (size_t)r * rb,
                   n);
    for (int64_t t = 0; t < n_tok; t++) {
        for (int64_t i = 0; i < n; i++)
            x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        k->pack_act(x, act + (size_t)t * ab, n);
    }
    const double ops = 2.0 * (double)n * (double)rows * (double)n_tok;
    const bool gemv = n_tok == 1 && k->gemv_rp;
    double best = 1e30;
    for (int round = 0; round < 7; round++) {
        const double t0 = now();
        long calls = 0;
        double t;
        do {
            for (int i = 0; i < 8; i++, calls++)
                if (gemv)
                    k->gemv_rp(n, rp, rb, rows, act, y);
                else
                    k->gemm_rp(n, rp, rb, rows, act, ab, n_tok, y, (size_t)rows);
        } while ((t = now() - t0) < 0.5);
        const double s = t / (double)calls;
        best = s < best ? s : best;
    }
    printf("%s n=%lld rows=%lld tokens=%lld (%s): %.1f GOP/s, weights %.1f GB/s (%.3f ms per "
           "call)\n",
           argv[1], (long long)n, (long long)rows, (long long)n_tok, gemv ? "gemv_rp" : "gemm_rp",
           ops / best / 1e9, (double)(rb * (size_t)rows) / best / 1e9, best * 1e3);
    free(w);
    free(rp);
    free(act);
    free(x);
    free(y);
    return 0;
}
