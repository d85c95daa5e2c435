/* CPU detection: cpuid + xgetbv on x86-64, getauxval on AArch64. See cpu.h for the contract. */
#include "cpu.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define SIMD_CPU_X86 1
#elif defined(__aarch64__)
#include <sys/auxv.h>
#define SIMD_CPU_ARM64 1
#endif

static struct simd_cpu_flags cpu_flags;
atomic_size_t simd_decode_prefetch;
static enum simd_isa isa_detected = SIMD_ISA_SCALAR;
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

/* SIMD_ISA_COUNT = no cap. Atomic because kernels read it from worker threads. */
static atomic_int isa_cap = SIMD_ISA_COUNT;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static char env_err[512]; /* the lazy read's message, for simd_isa_env_error() */
static atomic_bool env_bad;

static const char *const isa_names[SIMD_ISA_COUNT] = {
    [SIMD_ISA_SCALAR] = "scalar",
    [SIMD_ISA_AVX2] = "avx2",
    [SIMD_ISA_AVX512] = "avx512",
    [SIMD_ISA_NEON] = "neon",
};

#ifdef SIMD_CPU_X86
static unsigned long long read_xcr0(void) {
    unsigned lo, hi;
    /* Encoded by hand so that this baseline file needs no -mxsave. */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

/* AMX-BF16 and AMX-TILE (cpuid 7.0 edx bits 22, 24), their state enabled in XCR0 (bits 17, 18:
 * TILECFG, TILEDATA), and Linux's per-process permission for the 8 KiB of tile data
 * (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA): without it the first tile
 * instruction kills the process with SIGILL. */
static bool amx_granted(unsigned edx, unsigned long long xcr0) {
    if (!(edx & (1u << 22)) || !(edx & (1u << 24)) || (xcr0 & 0x60000) != 0x60000)
        return false;
#if defined(__linux__) && defined(SYS_arch_prctl)
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return false;
#endif
}

/* The largest cache of Intel's deterministic cache parameters (cpuid leaf 4): ways x partitions
 * x line bytes x sets of each subleaf until the null type. */
static uint64_t intel_llc_bytes(void) {
    uint64_t best = 0;
    if (__get_cpuid_max(0, NULL) < 4)
        return 0;
    for (unsigned i = 0; i < 16; i++) {
        unsigned a, b, c, d;
        __cpuid_count(4, i, a, b, c, d);
        if (!(a & 0x1f))
            break;
        const uint64_t size = (uint64_t)((b >> 22) + 1) * (((b >> 12) & 0x3ff) + 1) *
                              ((b & 0xfff) + 1) * ((uint64_t)c + 1);
        best = size > best ? size : best;
    }
    return best;
}

static void detect_x86(struct simd_cpu_flags *f) {
    unsigned a, b, c, d;
    if (__get_cpuid(0, &a, &b, &c, &d)) /* vendor "GenuineIntel" in ebx, edx, ecx */
        f->intel = b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e;
    if (f->intel)
        f->llc_bytes = intel_llc_bytes();
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    bool osxsave = c & (1u << 27), avx = c & (1u << 28);
    bool fma = c & (1u << 12), f16c = c & (1u << 29);
    if (!osxsave || !avx)
        return;
    unsigned long long xcr0 = read_xcr0();
    /* XMM+YMM state (bits 1,2); opmask+ZMM_Hi256+Hi16_ZMM (bits 5,6,7). */
    bool os_ymm = (xcr0 & 0x6) == 0x6;
    bool os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;
    if (!os_ymm)
        return;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 7)
        return;
    __cpuid_count(7, 0, a, b, c, d);
    f->fma = fma;
    f->f16c = f16c;
    f->avx2 = b & (1u << 5);
    if (os_zmm) {
        f->avx512f = b & (1u << 16);
        f->avx512dq = b & (1u << 17);
        f->avx512bw = b & (1u << 30);
        f->avx512vl = b & (1u << 31);
        f->avx512_vnni = f->avx512f && (c & (1u << 11));
        unsigned max_sub = a;
        if (max_sub >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            f->avx512_bf16 = f->avx512f && (a & (1u << 5));
        }
        __cpuid_count(7, 0, a, b, c, d);
        f->amx_bf16 = f->avx512_bf16 && amx_granted(d, xcr0);
    }
}
#endif

#ifdef SIMD_CPU_ARM64
static void detect_arm64(struct simd_cpu_flags *f) {
    unsigned long hw = getauxval(AT_HWCAP);
    /* HWCAP_ASIMD = bit 1, HWCAP_ASIMDDP = bit 20 (linux arch/arm64 uapi hwcap.h). */
    f->neon = hw & (1ul << 1);
    f->neon_dotprod = hw & (1ul << 20);
}
#endif

/* simd_decode_prefetch for a decode step that streams `bytes` of weights (cpu.h): 2 KiB on Intel
 * cores unless the stream fits in a quarter of the last-level cache, else 0 (each kernel's own). */
static size_t decode_prefetch(const struct simd_cpu_flags *f, uint64_t bytes) {
    const bool in_llc = f->llc_bytes && bytes <= f->llc_bytes / 4;
    return f->intel && !in_llc ? 2048 : 0;
}

static void detect(void) {
    struct simd_cpu_flags f = {0};
    enum simd_isa best = SIMD_ISA_SCALAR;
#ifdef SIMD_CPU_X86
    detect_x86(&f);
#ifdef ADAKV_BUILD_AVX2
    if (f.avx2 && f.fma && f.f16c)
        best = SIMD_ISA_AVX2;
#endif
#ifdef ADAKV_BUILD_AVX512
    /* The AVX-512 library is also compiled with -mfma -mf16c and uses AVX2 helpers. */
    if (f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq)
        best = SIMD_ISA_AVX512;
#endif
#endif
#ifdef SIMD_CPU_ARM64
    detect_arm64(&f);
#ifdef ADAKV_BUILD_NEON
    if (f.neon)
        best = SIMD_ISA_NEON;
#endif
#endif
    cpu_flags = f;
    isa_detected = best;
    /* until a model says how much it streams: as from DRAM */
    atomic_store_explicit(&simd_decode_prefetch, decode_prefetch(&f, UINT64_MAX),
                          memory_order_relaxed);
}

const struct simd_cpu_flags *simd_cpu_flags(void) {
    pthread_once(&detect_once, detect);
    return &cpu_flags;
}

void simd_set_decode_stream_bytes(uint64_t bytes) {
    atomic_store_explicit(&simd_decode_prefetch, decode_prefetch(simd_cpu_flags(), bytes),
                          memory_order_relaxed);
}

enum simd_isa simd_isa_detected(void) {
    pthread_once(&detect_once, detect);
    return isa_detected;
}

/* Rank within a family; an ISA of the other family ranks as scalar. */
static int isa_rank(enum simd_isa isa) {
#ifdef SIMD_CPU_ARM64
    return isa == SIMD_ISA_NEON ? 1 : 0;
#else
    return isa == SIMD_ISA_AVX2 || isa == SIMD_ISA_AVX512 ? (int)isa : 0;
#endif
}

bool simd_isa_available(enum simd_isa isa) {
    if (isa == SIMD_ISA_SCALAR)
        return true;
    if (isa >= SIMD_ISA_COUNT || isa_rank(isa) == 0)
        return false;
    return isa_rank(isa) <= isa_rank(simd_isa_detected());
}

/* Formats the one-line message (when the caller gave a buffer) and returns -1, like err_set. */
__attribute__((format(printf, 3, 4))) static int msg_set(char *msg, size_t msg_size,
                                                         const char *fmt, ...) {
    if (msg && msg_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msg_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int simd_isa_parse(const char *name, enum simd_isa *out, char *msg, size_t msg_size) {
    for (int i = 0; i < SIMD_ISA_COUNT; i++) {
        if (name && strcmp(name, isa_names[i]) == 0) {
            *out = (enum simd_isa)i;
            return 0;
        }
    }
    return msg_set(msg, msg_size,
                   "ADAKV_ISA=%s: unknown ISA (expected scalar, avx2, avx512 or neon)",
                   name ? name : "(null)");
}

int simd_isa_init(char *msg, size_t msg_size) {
    const char *v = getenv("ADAKV_ISA");
    if (!v || !*v)
        return 0;
    enum simd_isa cap = SIMD_ISA_SCALAR;
    if (simd_isa_parse(v, &cap, msg, msg_size) < 0)
        return -1;
    if (cap != SIMD_ISA_SCALAR && isa_rank(cap) == 0)
        return msg_set(msg, msg_size, "ADAKV_ISA=%s: not an ISA of this CPU family", v);
    atomic_store(&isa_cap, (int)cap);
    return 0;
}

static void env_read_once(void) {
    if (simd_isa_init(env_err, sizeof env_err) < 0)
        atomic_store(&env_bad, true);
}

const char *simd_isa_env_error(void) {
    pthread_once(&env_once, env_read_once);
    return atomic_load(&env_bad) ? env_err : NULL;
}

void simd_set_isa_cap(enum simd_isa cap) {
    pthread_once(&env_once, env_read_once); /* so a later lazy read cannot undo this cap */
    atomic_store(&isa_cap, (int)cap);
}

enum simd_isa simd_isa(void) {
    pthread_once(&env_once, env_read_once);
    enum simd_isa det = simd_isa_detected();
    int cap = atomic_load_explicit(&isa_cap, memory_order_relaxed);
    if (cap >= SIMD_ISA_COUNT || isa_rank((enum simd_isa)cap) >= isa_rank(det))
        return det;
    return isa_rank((enum simd_isa)cap) == 0 ? SIMD_ISA_SCALAR : (enum simd_isa)cap;
}

bool simd_amx(void) {
#ifdef ADAKV_BUILD_AMX
    return simd_isa() == SIMD_ISA_AVX512 && simd_cpu_flags()->amx_bf16;
#else
    return false;
#endif
}

const char *simd_isa_name(enum simd_isa isa) {
    return isa < SIMD_ISA_COUNT ? isa_names[isa] : "unknown";
}
