/* Micro-benchmark of matmul on the default model's shapes (or the 1B zoo shape's, third argument
 * "1b", or its 263 MB-525 MB output head in four types, "head": larger than any cache, so its
 * GEMV figure is the kernel's DRAM streaming rate, to set beside perf/stream): decode GEMV
 * bandwidth (GB/s of weight bytes streamed) and prefill throughput (GFLOP/s = 2 * n_in * n_out *
 * n_tok / s), for each ISA level this machine has. Weights are random blocks (speed does not depend
 * on values); each GEMV matrix is larger than nothing in cache between reps only when it exceeds
 * L3, so the GEMV figure for small matrices is an L2/L3 figure and the 576x49152 one a DRAM figure;
 * both are printed as measured. Where the CPU has AMX (simd_amx), the repacked rows' prompt
 * batch also runs on AMX tiles (gemm-amx.h), the model's --prefill-gemm auto path, with the
 * activations' bf16 packing and the threads' split included.
 *
 * On a shared machine wall time mixes in other processes; the "per CPU-s" columns divide the
 * work by the process CPU time instead (all threads summed), i.e. throughput per busy core.
 *
 *   perf/bench-matmul [n_tok_prefill (512)] [reps (auto)] [smol|1b|head]    threads:
 * OMP_NUM_THREADS */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu.h"
#include "matmul.h"
#include "quant.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct shape {
    const char *name;
    uint32_t type;
    int64_t n_in, n_out;
};

static const struct shape smol_shapes[] = {
    {"attn_q/o 576x576 Q4_1", TENSOR_TYPE_Q4_1, 576, 576},
    {"ffn_up 576x1536 Q4_1", TENSOR_TYPE_Q4_1, 576, 1536},
    {"ffn_down 1536x576 Q4_1", TENSOR_TYPE_Q4_1, 1536, 576},
    {"lm_head 576x49152 Q8_0", TENSOR_TYPE_Q8_0, 576, 49152},
    {NULL, 0, 0, 0},
};

/* Llama-3.2-1B's projections in the types its Q4_K_M file gives them, and Q8_0. */
static const struct shape shapes_1b[] = {
    {"attn_q 2048x2048 Q4_K", TENSOR_TYPE_Q4_K, 2048, 2048},
    {"ffn_up 2048x8192 Q4_K", TENSOR_TYPE_Q4_K, 2048, 8192},
    {"ffn_down 8192x2048 Q4_K", TENSOR_TYPE_Q4_K, 8192, 2048},
    {"ffn_down 8192x2048 Q6_K", TENSOR_TYPE_Q6_K, 8192, 2048},
    {"ffn_up 2048x8192 Q5_K", TENSOR_TYPE_Q5_K, 2048, 8192},
    {"ffn_up 2048x8192 Q8_0", TENSOR_TYPE_Q8_0, 2048, 8192},
    {NULL, 0, 0, 0},
};

/* Llama-3.2-1B's tied output head (its token embedding, 128256 rows), in the types the zoo's
 * files give it (Q6_K in Q4_K_M/Q5_K_M/Q6_K, Q8_0) and two more for the kernels' sake. */
static const struct shape shapes_head[] = {
    {"output 2048x128256 Q6_K", TENSOR_TYPE_Q6_K, 2048, 128256},
    {"output 2048x128256 Q4_K", TENSOR_TYPE_Q4_K, 2048, 128256},
    {"output 2048x128256 Q5_K", TENSOR_TYPE_Q5_K, 2048, 128256},
    {"output 2048x128256 Q8_0", TENSOR_TYPE_Q8_0, 2048, 128256},
    {NULL, 0, 0, 0},
};

/* Median of reps timings of one matmul call (wall time), and in *cpu the median CPU time. */
static double median(double *t, int n);
static double time_matmul(const struct matmul_weight *w, const float *x, int64_t n_tok, float *y,
                          void *ws, int reps, double *cpu) {
    double t[64] = {0}, c[64] = {0};
    if (reps < 1)
        reps = 1;
    if (reps > 64)
        reps = 64;
    matmul(w, x, n_tok, y, ws); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        matmul(w, x, n_tok, y, ws);
        t[r] = clock_s(CLOCK_MONOTONIC) - t0;
        c[r] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
    *cpu = median(c, reps);
    return median(t, reps);
}

static double median(double *t, int reps) {
    for (int i = 1; i < reps; i++) /* insertion sort, reps is small */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double s = t[j];
            t[j] = t[j - 1];
            t[j - 1] = s;
        }
    return t[reps / 2];
}

int main(int argc, char **argv) {
    int64_t n_tok = argc > 1 ? atoll(argv[1]) : 512;
    int reps_arg = argc > 2 ? atoi(argv[2]) : 0;
    const char *set = argc > 3 ? argv[3] : "smol";
    const struct shape *shapes = !strcmp(set, "1b")     ? shapes_1b
                                 : !strcmp(set, "head") ? shapes_head
                                 : !strcmp(set, "smol") ? smol_shapes
                                                        : NULL;
    if (!shapes) {
        fprintf(stderr, "bench-matmul: shape set '%s' is not smol, 1b or head\n", set);
        return 1;
    }
    if (n_tok < 1 || n_tok > 1 << 16) {
        fprintf(stderr, "bench-matmul: n_tok must be in 1..65536\n");
        return 1;
    }
    printf("threads %d, prefill n_tok %lld, detected ISA %s (vnni %d)\n", omp_get_max_threads(),
           (long long)n_tok, simd_isa_name(simd_isa_detected()), simd_cpu_flags()->avx512_vnni);
    printf("%-7s %-24s %9s %7s %10s %11s %8s %11s\n", "isa", "shape", "gemv us", "GB/s", "GB/CPU-s",
           "prefill ms", "GFLOP/s", "GFLOP/CPU-s");
    uint64_t seed = 1;
    /* the 1B shapes only at the best ISA: the scalar prefill of them takes minutes */
    for (int isa = shapes != smol_shapes ? (int)simd_isa_detected() : 0; isa < SIMD_ISA_COUNT;
         isa++) {
        if (!simd_isa_available((enum simd_isa)isa))
            continue;
        simd_set_isa_cap((enum simd_isa)isa);
        for (size_t s = 0; shapes[s].name; s++) {
            const struct shape *sh = &shapes[s];
            size_t rb = tensor_type_row_size(sh->type, (uint64_t)sh->n_in);
            size_t wbytes = rb * (size_t)sh->n_out;
            uint8_t *wd = malloc(wbytes);
            float *x = malloc((size_t)(n_tok * sh->n_in) * sizeof *x);
            float *y = malloc((size_t)(n_tok * sh->n_out) * sizeof *y);
            void *ws = malloc(matmul_ws_size(sh->type, sh->n_in, n_tok, omp_get_max_threads()) + 1);
            if (!wd || !x || !y || !ws) {
                fprintf(stderr, "bench-matmul: out of memory\n");
                return 1;
            }
            for (size_t i = 0; i < wbytes; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                wd[i] = (uint8_t)(seed >> 56);
            }
            /* sane f16 scales (0.01) at the start of every block so nothing overflows */
            size_t bb = tensor_type_size(sh->type);
            for (size_t off = 0; off + bb <= wbytes; off += bb) {
                uint16_t h = quant_f32_to_f16(0.01f);
                memcpy(wd + off, &h, 2);
                if (sh->type == TENSOR_TYPE_Q4_1 || sh->type == TENSOR_TYPE_Q4_K ||
                    sh->type == TENSOR_TYPE_Q5_K)
                    memcpy(wd + off + 2, &h, 2);  /* the second f16 (m, dmin) */
                if (sh->type == TENSOR_TYPE_Q6_K) /* its d is last */
                    memcpy(wd + off + bb - 2, &h, 2);
            }
            for (int64_t i = 0; i < n_tok * sh->n_in; i++)
                x[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f;
            struct matmul_weight w = {.type = sh->type,
                                      .n_in = sh->n_in,
                                      .n_out = sh->n_out,
                                      .data = wd,
                                      .row_bytes = rb};
            int reps = reps_arg ? reps_arg : (wbytes > (8u << 20) ? 15 : 51);
            double cg, cp;
            double tg = time_matmul(&w, x, 1, y, ws, reps, &cg);
            double tp = time_matmul(&w, x, n_tok, y, ws, reps_arg ? reps_arg : 5, &cp);
            double flop = 2.0 * (double)sh->n_in * (double)sh->n_out * (double)n_tok;
            printf("%-7s %-24s %9.1f %7.1f %10.1f %11.2f %8.1f %11.1f\n",
                   simd_isa_name((enum simd_isa)isa), sh->name, tg * 1e6,
                   (double)wbytes / tg * 1e-9, (double)wbytes / cg * 1e-9, tp * 1e3,
                   flop / tp * 1e-9, flop / cp * 1e-9);
            /* The decode GEMV over rows repacked at load (decode-pack.h), where the ISA has it;
             * GB/s counted in the model's own bytes, as above. */
            const struct quant_kernels *qk = quant_kernels(sh->type);
            if (qk && qk->gemv_rp && qk->rp_tile) {
                void *rp = malloc(quant_rp_bytes(rb, sh->n_out));
                if (!rp) {
                    fprintf(stderr, "bench-matmul: out of memory\n");
                    return 1;
                }
                for (int64_t r = 0; r < sh->n_out; r += QUANT_RP_ROWS) /* whole tiles here */
                    qk->rp_tile(wd + (size_t)r * rb, rb, QUANT_RP_ROWS, (char *)rp + (size_t)r * rb,
                                sh->n_in);
                w.rp = rp;
                tg = time_matmul(&w, x, 1, y, ws, reps, &cg);
                printf("%-7s %-24s %9.1f %7.1f %10.1f", simd_isa_name((enum simd_isa)isa),
                       "  same, repacked rows", tg * 1e6, (double)wbytes / tg * 1e-9,
                       (double)wbytes / cg * 1e-9);
                if (qk->gemm_rp) {
                    tp = time_matmul(&w, x, n_tok, y, ws, reps_arg ? reps_arg : 5, &cp);
                    printf(" %11.2f %8.1f %11.1f", tp * 1e3, flop / tp * 1e-9, flop / cp * 1e-9);
                }
                printf("\n");
                if (qk->panel_bf16 && simd_amx()) { /* prompt batches on AMX tiles (gemm-amx.h) */
                    w.amx = true;
                    tp = time_matmul(&w, x, n_tok, y, ws, reps_arg ? reps_arg : 5, &cp);
                    printf("%-7s %-24s %9s %7s %10s %11.2f %8.1f %11.1f\n",
                           simd_isa_name((enum simd_isa)isa), "  same, AMX bf16 tiles", "", "", "",
                           tp * 1e3, flop / tp * 1e-9, flop / cp * 1e-9);
                    w.amx = false;
                }
                free(rp);
            }
            free(wd);
            free(x);
            free(y);
            free(ws);
        }
    }
    return 0;
}
