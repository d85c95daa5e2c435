/* Micro-benchmark of decode attention on one thread, per ISA and KV storage type: the G query
 * heads of a GQA group against n_k cached rows (scores, exp-sum, weighted values: the three
 * kernels decode runs per KV head), repeated over H segments so that the rows come from memory
 * as they do in decode (the default 90 segments x 8,192 rows = the default model's 30 layers x
 * 3 KV heads after 8,192 tokens: 100 MB of int8 K+V). Reports ms per pass over all segments,
 * ns per row and the GB/s of K and V bytes (with int8 scales) read, to set beside perf/stream.
 * With G = 48 or 64 (16 prompt tokens x a GQA group) it is the shape of a prefill work item, and
 * a table with the fused prefill kernel (ops.h attn_rows_i8) adds a line "<isa>+rows" for it
 * (every row sees every key). The minimum beside the median is the figure to use on a busy
 * machine.
 *
 *   perf/bench-attn [n_k (8192)] [segments (90)] [G (3)] [reps (5)]   head_dim 64 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops.h"

enum { D = 64 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct segs {
    size_t esz;     /* bytes per stored value */
    void *k, *v;    /* [H][n_k][D] */
    float *k_scale; /* [H][n_k] (int8) */
    float *v_scale;
};

/* One decode step's attention over every segment with one ops table and storage type. */
static void pass(const struct simd_ops *ops, int type, const struct segs *m, int H, int n_k, int G,
                 const float *q, float *s, float *acc, const int32_t *pos) {
    const float mul = 0.125f;
    for (int h = 0; h < H; h++) {
        const size_t row0 = (size_t)h * n_k;
        const char *k = (const char *)m->k + row0 * D * m->esz;
        const char *v = (const char *)m->v + row0 * D * m->esz;
        if (pos) { /* the fused kernel: every row at position n_k sees keys 0 .. n_k - 1 */
            ops->attn_rows_i8(acc, NULL, q, G, pos + n_k, (const int8_t *)k, m->k_scale + row0,
                              (const int8_t *)v, m->v_scale + row0, pos, n_k, D, mul, 0);
            continue;
        }
        if (type == 0)
            ops->attn_qk_i8(s, n_k, q, D, G, (const int8_t *)k, m->k_scale + row0, n_k, D, mul);
        else if (type == 1)
            ops->attn_qk_f16(s, n_k, q, D, G, (const uint16_t *)k, n_k, D, mul);
        else
            ops->attn_qk_f32(s, n_k, q, D, G, (const float *)k, n_k, D, mul);
        for (int r = 0; r < G; r++)
            ops->exp_sum(s + (size_t)r * n_k, n_k, 4.0f);
        if (type == 0)
            ops->attn_av_i8(acc, D, s, n_k, G, (const int8_t *)v, m->v_scale + row0, n_k, D);
        else if (type == 1)
            ops->attn_av_f16(acc, D, s, n_k, G, (const uint16_t *)v, n_k, D);
        else
            ops->attn_av_f32(acc, D, s, n_k, G, (const float *)v, n_k, D);
    }
}

int main(int argc, char **argv) {
    const int n_k = argc > 1 ? atoi(argv[1]) : 8192, H = argc > 2 ? atoi(argv[2]) : 90;
    const int G = argc > 3 ? atoi(argv[3]) : 3, reps = argc > 4 ? atoi(argv[4]) : 5;
    if (n_k < 1 || n_k > 1 << 20 || H < 1 || H > 4096 || G < 1 || G > 64 || reps < 1 ||
        reps > 101) {
        fprintf(stderr, "bench-attn: usage: bench-attn [n_k 1..2^20] [segments 1..4096] "
                        "[G 1..64] [reps 1..101]\n");
        return 1;
    }
    const size_t rows = (size_t)H * n_k;
    float *q = malloc((size_t)G * D * sizeof *q), *acc = malloc((size_t)G * D * sizeof *acc);
    float *s = malloc((size_t)G * n_k * sizeof *s);
    int32_t *pos = malloc(((size_t)n_k + G) * sizeof *pos); /* keys 0 .. n_k - 1, then rows */
    if (!q || !acc || !s || !pos) {
        fprintf(stderr, "bench-attn: out of memory\n");
        return 1;
    }
    for (int i = 0; i < G * D; i++)
        q[i] = (float)((i * 37) % 19 - 9) * 0.05f;
    for (int i = 0; i < n_k + G; i++)
        pos[i] = i < n_k ? i : n_k;
    printf("decode attention, one thread: %d segments x %d rows, head_dim %d, %d query heads "
           "per KV head, median and minimum of %d\n",
           H, n_k, D, G, reps);
    printf("%-16s %-5s %10s %9s %8s %10s\n", "isa", "kv", "ms/pass", "ns/row", "GB/s", "min ms");
    static const char *const types[] = {"int8", "f16", "f32"};
    static const size_t esz[] = {1, 2, 4};
    for (int type = 0; type < 3; type++) {
        struct segs m = {esz[type], malloc(rows * D * esz[type]), malloc(rows * D * esz[type]),
                         malloc(rows * sizeof(float)), malloc(rows * sizeof(float))};
        if (!m.k || !m.v || !m.k_scale || !m.v_scale) {
            fprintf(stderr, "bench-attn: out of memory for %zu rows\n", rows);
            return 1;
        }
        /* Small values of every type: f16 0x2c00 is 0.0625, f32 bytes 0x3c... stay finite. */
        memset(m.k, type == 0 ? 3 : 0x2c, rows * D * esz[type]);
        memset(m.v, type == 0 ? 5 : 0x2c, rows * D * esz[type]);
        for (size_t i = 0; i < rows; i++)
            m.k_scale[i] = m.v_scale[i] = 0.01f;
        const double bytes = 2.0 * (double)rows * (D * (double)esz[type] + (type == 0 ? 4 : 0));
        /* the reference, then every table of simd/kernels.h's lists this CPU runs, each table
         * with the fused kernel a second time through it */
        for (int ii = -2; ii < 0 || simd_ops_variant(ii / 2); ii++) {
            const struct simd_ops *ops = ii < 0 ? simd_ops_scalar() : simd_ops_variant(ii / 2);
            const bool fused = ii % 2 != 0;
            if (fused && (type != 0 || !ops->attn_rows_i8))
                continue;
            const int32_t *p = fused ? pos : NULL;
            double t[101];
            pass(ops, type, &m, H, n_k, G, q, s, acc, p); /* warm-up */
            for (int r = 0; r < reps; r++) {
                const double t0 = now_s();
                pass(ops, type, &m, H, n_k, G, q, s, acc, p);
                t[r] = now_s() - t0;
            }
            qsort(t, (size_t)reps, sizeof *t, cmp_double);
            const double tm = t[reps / 2];
            char name[32];
            snprintf(name, sizeof name, "%s%s", ops->isa, fused ? "+rows" : "");
            printf("%-16s %-5s %10.2f %9.2f %8.1f %10.2f\n", name, types[type], tm * 1e3,
                   tm * 1e9 / (double)rows, bytes / tm * 1e-9, t[0] * 1e3);
        }
        free(m.k), free(m.v), free(m.k_scale), free(m.v_scale);
    }
    free(q), free(acc), free(s), free(pos);
    return 0;
}
