/* peak: the compute peaks of this machine, measured in the same run as a benchmark (as perf/stream
 * measures its bandwidth), so that "% of peak" figures use this CPU's own numbers. Per thread, all
 * OpenMP threads at once: fp32 FMA GFLOP/s (2 flops per lane) and int8 GOP/s (2 ops per
 * multiply-add) of the instruction the prefill kernels use: vpdpbusd zmm on AVX-512 VNNI,
 * vpmaddubsw + vpmaddwd on AVX2, SDOT on NEON with dotprod.
 *
 * Why measured and not nominal: the AVX-512 of Zen 4 issues one 512-bit vpdpbusd per cycle (two
 * 256-bit halves), Zen 5's two; clocks under a hypervisor are unknown. A chart that assumed Zen 5's
 * 1 TOPS per core on a Zen 4 VM understated every kernel's share of the peak by 2.5x.
 *
 * Each kernel runs 12 independent accumulator chains (more than latency x throughput on the CPUs
 * above) for a fixed count; best of `reps` timings. Where the prompt products run on AMX tiles
 * (simd_amx(), gemm-amx.h) the bf16 tile product's rate is measured too: tdpbf16ps in the 2 x 2
 * block simd/gemm-amx.c runs, its four tile loads from L1, so that those products' share of the
 * peak is read against the unit that runs them (their GFLOP/s exceed the fp32 and int8 peaks).
 * usage: peak [reps, default 5]   prints one CSV line: peak,threads=T,fp32_GFLOPs_per_thread=...,
 * int8_GOPs_per_thread=...,amx_bf16_GFLOPs_per_thread=...,fma=ISA,int8=INSTRUCTION (0 where the
 * CPU has none). */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "cpu.h"

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

enum { CHAINS = 12, ITERS = 20000000 };

/* Each kernel returns the number of operations it ran; the sum it prints keeps the chains live. */
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static double fma_avx512(float *sink) {
    __m512 a[CHAINS];
    const __m512 x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        a[i] = _mm512_set1_ps((float)i);
    for (long n = 0; n < ITERS; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            a[i] = _mm512_fmadd_ps(a[i], x, y);
        __asm__ volatile("" : : "v"(x), "v"(y));
    }
    __m512 s = a[0];
    for (int i = 1; i < CHAINS; i++)
        s = _mm512_add_ps(s, a[i]);
    *sink += _mm512_reduce_add_ps(s);
    return 2.0 * 16 * CHAINS * (double)ITERS;
}

__attribute__((target("avx512f,avx512vnni"))) static double dot_vnni(float *sink) {
    __m512i a[CHAINS];
    const __m512i w = _mm512_set1_epi8(3), x = _mm512_set1_epi8(5);
    for (int i = 0; i < CHAINS; i++)
        a[i] = _mm512_set1_epi32(i);
    for (long n = 0; n < ITERS; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            a[i] = _mm512_dpbusd_epi32(a[i], w, x);
        __asm__ volatile("" : : "v"(w), "v"(x));
    }
    __m512i s = a[0];
    for (int i = 1; i < CHAINS; i++)
        s = _mm512_add_epi32(s, a[i]);
    *sink += (float)_mm512_reduce_add_epi32(s);
    return 2.0 * 64 * CHAINS * (double)ITERS;
}

__attribute__((target("avx2,fma"))) static double fma_avx2(float *sink) {
    __m256 a[CHAINS];
    const __m256 x = _mm256_set1_ps(1.0000001f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        a[i] = _mm256_set1_ps((float)i);
    for (long n = 0; n < ITERS; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            a[i] = _mm256_fmadd_ps(a[i], x, y);
        __asm__ volatile("" : : "x"(x), "x"(y));
    }
    float t[8];
    __m256 s = a[0];
    for (int i = 1; i < CHAINS; i++)
        s = _mm256_add_ps(s, a[i]);
    _mm256_storeu_ps(t, s);
    *sink += t[0];
    return 2.0 * 8 * CHAINS * (double)ITERS;
}

/* AVX2's int8 dot: vpmaddubsw (32 u8 x s8 products, pair sums) then vpmaddwd by ones. */
__attribute__((target("avx2"))) static double dot_avx2(float *sink) {
    __m256i a[CHAINS];
    const __m256i w = _mm256_set1_epi8(3), x = _mm256_set1_epi8(5), one = _mm256_set1_epi16(1);
    for (int i = 0; i < CHAINS; i++)
        a[i] = _mm256_set1_epi32(i);
    for (long n = 0; n < ITERS; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), one));
        __asm__ volatile("" : : "x"(w), "x"(x));
    }
    __m256i s = a[0];
    for (int i = 1; i < CHAINS; i++)
        s = _mm256_add_epi32(s, a[i]);
    *sink += (float)_mm256_extract_epi32(s, 0);
    return 2.0 * 32 * CHAINS * (double)ITERS;
}
#elif defined(__aarch64__)
static double fma_neon(float *sink) {
    float32x4_t a[CHAINS];
    const float32x4_t x = vdupq_n_f32(1.0000001f), y = vdupq_n_f32(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        a[i] = vdupq_n_f32((float)i);
    for (long n = 0; n < ITERS; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            a[i] = vfmaq_f32(y, a[i], x);
        __asm__ volatile("" : : "w"(x), "w"(y));
    }
    float32x4_t s = a[0];
    for (int i = 1; i < CHAINS; i++)
        s = vaddq_f32(s, a[i]);
    *sink += vaddvq_f32(s);
    return 2.0 * 4 * CHAINS * (double)ITERS;
}

__attribute__((target("arch=armv8.2-a+dotprod"))) static double dot_sdot(float *sink) {
    int32x4_t a[CHAINS];
    const int8x16_t w = vdupq_n_s8(3), x = vdupq_n_s8(5);
    for (int i = 0; i < CHAINS; i++)
        a[i] = vdupq_n_s32(i);
    for (long n = 0; n < ITERS; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            a[i] = vdotq_s32(a[i], w, x);
        __asm__ volatile("" : : "w"(w), "w"(x));
    }
    int32x4_t s = a[0];
    for (int i = 1; i < CHAINS; i++)
        s = vaddq_s32(s, a[i]);
    *sink += (float)vaddvq_s32(s);
    return 2.0 * 16 * CHAINS * (double)ITERS;
}
#endif

#if defined(__x86_64__) && defined(ADAKV_BUILD_AMX)
/* The tile configuration tdpbf16ps needs: 8 tiles of 16 rows x 64 bytes (palette 1). */
struct amx_tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/* 4 tile loads and 4 tdpbf16ps per step (sums in tiles 0-3, A in 4-5, B in 6-7), as the prompt
 * products run; each product is 16 x 16 x 32 multiply-adds. */
__attribute__((target("amx-tile,amx-bf16"))) static double amx_bf16(float *sink) {
    enum { STEPS = ITERS / 8 };
    _Alignas(64) static _Thread_local uint16_t a[2][512], b[2][512];
    for (int i = 0; i < 512; i++)
        a[0][i] = a[1][i] = b[0][i] = b[1][i] = 0x3c00; /* bf16 2^-7 */
    struct amx_tile_config cfg = {.palette = 1};
    for (int i = 0; i < 8; i++)
        cfg.colsb[i] = 64, cfg.rows[i] = 16;
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (long n = 0; n < STEPS; n++) {
        _tile_loadd(4, a[0], 64);
        _tile_loadd(5, a[1], 64);
        _tile_loadd(6, b[0], 64);
        _tile_loadd(7, b[1], 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _Alignas(64) float out[256];
    _tile_stored(0, out, 64);
    _tile_release();
    *sink += out[0];
    return 4.0 * 2 * 16 * 16 * 32 * (double)STEPS;
}
#endif

typedef double (*kernel_fn)(float *sink);

/* Best-of-reps rate of `k` per thread, every thread running it at once (G operations / s). */
static double rate(kernel_fn k, int reps, float *sink) {
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        double ops = 0.0, slowest = 0.0;
#pragma omp parallel reduction(max : slowest) reduction(+ : ops)
        {
            float s = 0.0f;
#pragma omp barrier
            const double t0 = omp_get_wtime();
            ops = k(&s);
            slowest = omp_get_wtime() - t0;
#pragma omp atomic
            *sink += s;
        }
        const double per_thread = ops / omp_get_max_threads() / slowest * 1e-9;
        best = per_thread > best ? per_thread : best;
    }
    return best;
}

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1 || reps > 1000) {
        fprintf(stderr, "peak: reps must be in 1..1000\n");
        return 1;
    }
    const struct simd_cpu_flags *f = simd_cpu_flags();
    kernel_fn fma = NULL, dot = NULL;
    const char *fma_isa = "none", *dot_isa = "none";
#if defined(__x86_64__)
    if (f->avx512f)
        fma = fma_avx512, fma_isa = "avx512";
    else if (f->avx2 && f->fma)
        fma = fma_avx2, fma_isa = "avx2";
    if (f->avx512_vnni)
        dot = dot_vnni, dot_isa = "vpdpbusd-zmm";
    else if (f->avx2)
        dot = dot_avx2, dot_isa = "vpmaddubsw-ymm";
#elif defined(__aarch64__)
    fma = fma_neon, fma_isa = "neon";
    if (f->neon_dotprod)
        dot = dot_sdot, dot_isa = "sdot";
#endif
    kernel_fn tiles = NULL;
#if defined(__x86_64__) && defined(ADAKV_BUILD_AMX)
    if (simd_amx())
        tiles = amx_bf16;
#endif
    (void)f;
    float sink = 0.0f;
    const double gf = fma ? rate(fma, reps, &sink) : 0.0, gi = dot ? rate(dot, reps, &sink) : 0.0;
    const double ga = tiles ? rate(tiles, reps, &sink) : 0.0;
    printf("peak,threads=%d,fp32_GFLOPs_per_thread=%.1f,int8_GOPs_per_thread=%.1f,"
           "amx_bf16_GFLOPs_per_thread=%.1f,fma=%s,int8=%s (checksum %g)\n",
           omp_get_max_threads(), gf, gi, ga, fma_isa, dot_isa, (double)sink);
    return 0;
}
