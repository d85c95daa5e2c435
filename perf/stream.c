/* stream: a STREAM-style memory bandwidth probe, run in the same session as a benchmark so that
 * "% of bandwidth" figures use a same-run number (this VM's bandwidth drifts by up to 1.7x).
 * Prints best-of-N GB/s for read (sum of two arrays), copy and triad, counted STREAM-style
 * (write-allocate traffic not counted), with the OpenMP thread count in use.
 * usage: stream [MiB per array, default 256] [reps, default 8] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static double best(double a, double b) {
    return a < b ? a : b;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
    int reps = argc > 2 ? atoi(argv[2]) : 8;
    if (mib < 1 || mib > 8192 || reps < 1) {
        fprintf(stderr, "stream: usage: stream [MiB 1..8192] [reps >= 1]\n");
        return 1;
    }
    size_t n = mib * 1024 * 1024 / sizeof(float);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    if (!a || !b || !c) {
        fprintf(stderr, "stream: out of memory for 3 x %zu MiB\n", mib);
        return 1;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) { /* first touch by the thread that will read it */
        a[i] = 1.0f;
        b[i] = 2.0f;
        c[i] = 0.0f;
    }
    double t_read = 1e30, t_copy = 1e30, t_triad = 1e30, sink = 0.0;
    for (int r = 0; r < reps; r++) {
        double t0 = omp_get_wtime();
        float s = 0.0f; /* float + omp simd: the reduction vectorises, as a real read loop would */
#pragma omp parallel for simd schedule(static) reduction(+ : s)
        for (size_t i = 0; i < n; i++)
            s += a[i] + b[i];
        double t1 = omp_get_wtime();
        sink += s;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            c[i] = a[i];
        double t2 = omp_get_wtime();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] + 3.0f * c[i];
        double t3 = omp_get_wtime();
        t_read = best(t_read, t1 - t0);
        t_copy = best(t_copy, t2 - t1);
        t_triad = best(t_triad, t3 - t2);
    }
    double bytes = (double)n * sizeof(float);
    printf("stream,threads=%d,MiB=%zu,read_GBps=%.2f,copy_GBps=%.2f,triad_GBps=%.2f\n",
           omp_get_max_threads(), mib, 2 * bytes / t_read / 1e9, 2 * bytes / t_copy / 1e9,
           3 * bytes / t_triad / 1e9);
    fprintf(stderr, "(checksum %g)\n", sink);
    free(a);
    free(b);
    free(c);
    return 0;
}
