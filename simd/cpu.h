/* Run-time CPU feature detection and the ISA level every kernel table dispatches on.
 *
 * The level in use is min(detected, cap). "Detected" is what the CPU has, the OS has enabled
 * (XCR0 state for YMM/ZMM registers) and this build compiled kernels for. The cap comes from the
 * environment variable ADAKV_ISA=scalar|avx2|avx512|neon (read once, by simd_isa_init() or the
 * first simd_isa() call) or from simd_set_isa_cap() (tests, benchmarks). Levels are ordered per
 * CPU family: scalar < avx2 < avx512 on x86-64, scalar < neon on AArch64. A cap of the other
 * family means scalar. */
#ifndef ADAKV_SIMD_CPU_H
#define ADAKV_SIMD_CPU_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum simd_isa {
    SIMD_ISA_SCALAR = 0,
    SIMD_ISA_AVX2,
    SIMD_ISA_AVX512,
    SIMD_ISA_NEON,
    SIMD_ISA_COUNT
};

/* Raw feature bits, already masked by OS support (an AVX-512 CPU under an OS that does not save
 * ZMM state reports avx512f = false). */
struct simd_cpu_flags {
    bool avx2, fma, f16c;                       /* x86 AVX2 level needs all three */
    bool avx512f, avx512bw, avx512vl, avx512dq; /* x86 AVX-512 level needs all four */
    bool avx512_vnni;                           /* vpdpbusd: int8 dots in one instruction */
    bool avx512_bf16;                           /* vdpbf16ps */
    bool amx_bf16; /* AMX tiles with tdpbf16ps, and Linux granted this process their state */
    bool neon, neon_dotprod; /* AArch64 ASIMD, SDOT/UDOT */
    bool intel; /* GenuineIntel: the decode kernels' prefetch distance depends on it (rp-glue.h) */
    uint64_t llc_bytes; /* last-level cache (cpuid leaf 4 on Intel; 0 where not read) */
};

const struct simd_cpu_flags *simd_cpu_flags(void);

/* How far ahead the decode kernels prefetch the weights they stream: 0 means each kernel's own
 * distance (tuned on Zen 5), else this many bytes for all of them. Relaxed atomic: kernels read
 * it on worker threads (rp-glue.h's rp_prefetch_distance). */
extern atomic_size_t simd_decode_prefetch;

/* Tells the decode kernels how many weight bytes one decode step streams (the model load calls
 * it with the repacked weights' size): on Intel cores streaming from DRAM they prefetch 2 KiB
 * ahead, but when the stream is at most a quarter of the last-level cache (which neighbours on a
 * VM share) it comes from there, and the farther distances stream faster (rp-glue.h). */
void simd_set_decode_stream_bytes(uint64_t bytes);

/* Best level this CPU and this build can run (ignores the cap). */
enum simd_isa simd_isa_detected(void);

/* Level in use: min(detected, cap). Cheap after the first call; safe from any thread. */
enum simd_isa simd_isa(void);

/* True when prompt products can run on AMX tiles (gemm-amx.h): the CPU has AMX-BF16, the level
 * in use is AVX-512 and this build compiled the AMX kernels. Cheap; safe from any thread. */
bool simd_amx(void);

/* True when `isa` can run here (and was compiled in); tests loop over these. */
bool simd_isa_available(enum simd_isa isa);

/* Caps the level (SIMD_ISA_COUNT removes the cap). Not for use while kernels run. */
void simd_set_isa_cap(enum simd_isa cap);

/* Errors: simd/ sits below src/ and does not know the library's error type, so the two calls that
 * can fail write their one-line message into a caller-owned buffer msg[msg_size] (may be NULL),
 * truncated and NUL-terminated like snprintf: callers pass `e.msg, sizeof e.msg`. */

/* Parses an ISA name ("scalar", "avx2", "avx512", "neon"). -1 with msg set on anything else. */
int simd_isa_parse(const char *name, enum simd_isa *out, char *msg, size_t msg_size);

/* Reads ADAKV_ISA now. An unknown value, or an ISA of the other CPU family, is an error (-1,
 * msg set, cap left unchanged); the CLI calls this first so a typo is reported, not ignored.
 * simd_isa() calls it lazily otherwise and keeps the message for simd_isa_env_error(). */
int simd_isa_init(char *msg, size_t msg_size);

/* The message of a bad ADAKV_ISA seen by the lazy path, or NULL. */
const char *simd_isa_env_error(void);

const char *simd_isa_name(enum simd_isa isa);

#endif
