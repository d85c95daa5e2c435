/* Weight-type kernels: the block layouts of the ggml quant formats and one table per ISA of
 * dequantize / quantize-activation / dot-product functions.
 *
 * A linear layer y = W x with W in a quantized type is computed the way llama.cpp computes it:
 * the f32 activation row x is first quantized into the weight type's "activation type" (its
 * vec_dot_type: Q4_0/Q5_0/Q8_0 -> Q8_0, Q4_1/Q5_1 -> Q8_1, K-quants -> Q8_K, F16 -> F16,
 * BF16 -> BF16, F32 -> F32), then each weight row is dotted with it in integer arithmetic where
 * the formats allow. Using the same activation quantization as llama.cpp keeps our logits close
 * to the reference we are judged against.
 *
 * The scalar table (quant-scalar.c) is the specification; every ISA table starts as a copy of it
 * and overwrites the entries it implements, so a missing kernel falls back to the reference.
 * Dequantization is exact in f32 and every ISA reproduces the scalar bits; quantization of
 * activations is bit-exact too; dot products differ only by float summation order.
 *
 * This header is included by ISA-specific files: declarations, macros and static inline only. */
#ifndef ADAKV_SIMD_QUANT_H
#define ADAKV_SIMD_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"
#include "kernels.h"
#include "tensor-type-id.h"

/* ---- block layouts (ggml-common.h; all fields little-endian, blocks packed, unaligned) ---- */

#define QK   32  /* elements per block of the 32-wide formats */
#define QK_K 256 /* elements per K-quant super-block */

struct block_q4_0 {
    uint16_t d;         /* f16 scale */
    uint8_t qs[QK / 2]; /* element j: low nibble of qs[j]; element j+16: high nibble */
};
struct block_q4_1 {
    uint16_t d, m; /* f16 scale and minimum: x = q*d + m */
    uint8_t qs[QK / 2];
};
struct block_q5_0 {
    uint16_t d;
    uint8_t qh[4]; /* bit j of the LE u32 is bit 4 of element j */
    uint8_t qs[QK / 2];
};
struct block_q5_1 {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[QK / 2];
};
struct block_q8_0 {
    uint16_t d;
    int8_t qs[QK];
};
struct block_q8_1 {
    uint16_t d; /* f16 scale */
    uint16_t s; /* f16 of d * sum(qs): lets Q4_1/Q5_1 dots fold in their minimum */
    int8_t qs[QK];
};
struct block_q4_k {
    uint16_t d, dmin;   /* super-block scale for the 6-bit scales and for the 6-bit mins */
    uint8_t scales[12]; /* 8 (scale, min) pairs of 6 bits, see quant_k_scale_min() */
    uint8_t qs[QK_K / 2];
};
struct block_q5_k {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};
struct block_q6_k {
    uint8_t ql[QK_K / 2]; /* low 4 bits */
    uint8_t qh[QK_K / 4]; /* high 2 bits */
    int8_t scales[QK_K / 16];
    uint16_t d; /* f16, last in the block */
};
struct block_q8_k {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16]; /* sums of each 16 qs: the K-quant minimum terms need them */
};

_Static_assert(sizeof(struct block_q4_0) == 18, "Q4_0 block");
_Static_assert(sizeof(struct block_q4_1) == 20, "Q4_1 block");
_Static_assert(sizeof(struct block_q5_0) == 22, "Q5_0 block");
_Static_assert(sizeof(struct block_q5_1) == 24, "Q5_1 block");
_Static_assert(sizeof(struct block_q8_0) == 34, "Q8_0 block");
_Static_assert(sizeof(struct block_q8_1) == 36, "Q8_1 block");
_Static_assert(sizeof(struct block_q4_k) == 144, "Q4_K block");
_Static_assert(sizeof(struct block_q5_k) == 176, "Q5_K block");
_Static_assert(sizeof(struct block_q6_k) == 210, "Q6_K block");
_Static_assert(sizeof(struct block_q8_k) == 292, "Q8_K block");

/* ---- scalar number formats (exact; shared by every ISA file for tails) ---- */

static inline float quant_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint32_t quant_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* IEEE half -> float, exact for every input (subnormals, inf, NaN payloads). */
static inline float quant_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {
        float v = (float)mant * 0x1p-24f; /* subnormal: mant * 2^-24 is exact in f32 */
        return quant_bits_f32(quant_f32_bits(v) | sign);
    }
    if (exp == 31)
        return quant_bits_f32(sign | 0x7f800000u | (mant << 13));
    return quant_bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

/* float -> IEEE half, round to nearest even, as F16C's vcvtps2ph with rounding 0 does it
 * (overflow gives inf, NaN stays a quiet NaN with the top payload bits). */
static inline uint16_t quant_f32_to_f16(float f) {
    uint32_t x = quant_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
    if (ax >= 0x477ff000u) /* >= 65520 rounds to inf */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) { /* below the smallest normal half: let an f32 add do the rounding */
        float v = quant_bits_f32(ax) + 0.5f;
        return (uint16_t)(sign | (quant_f32_bits(v) - 0x3f000000u));
    }
    uint32_t odd = (ax >> 13) & 1;
    ax += 0xc8000fffu + odd; /* rebias exponent (-112 << 23) and round to nearest even */
    return (uint16_t)(sign | (ax >> 13));
}

static inline float quant_bf16_to_f32(uint16_t b) {
    return quant_bits_f32((uint32_t)b << 16);
}

/* float -> bf16 as ggml does it: round to nearest even, NaN forced quiet. */
static inline uint16_t quant_f32_to_bf16(float f) {
    uint32_t u = quant_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

/* Sub-block j (0..7) scale and minimum of a Q4_K/Q5_K super-block (ggml get_scale_min_k4). */
static inline void quant_k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
        *mn = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* ---- the kernel table ---- */

/* dst[0..n) = values of the n elements stored at src; n a multiple of the block size. */
typedef void (*quant_dequant_row_fn)(const void *restrict src, float *restrict dst, int64_t n);
/* Encodes n floats as the activation type; n a multiple of its block size. */
typedef void (*quant_quantize_row_fn)(const float *restrict src, void *restrict dst, int64_t n);
/* sum over n elements of weight row w times activation row a (a in the activation type). */
typedef float (*quant_vec_dot_fn)(int64_t n, const void *restrict w, const void *restrict a);

/* Optional blocked kernel for many rows x many tokens (ISA tables only; NULL in the scalar one).
 * act holds n_tok rows made by pack_act, act_stride bytes apart; it computes
 * y[t * y_stride + r] = dot(weight row r, activation row t) for r < n_rows, t < n_tok, with the
 * same activation quantization (bit for bit) and the same per-block arithmetic as vec_dot, so
 * it differs from vec_dot only by summation order. n <= QUANT_GEMM_MAX_N. */
typedef void (*quant_gemm_fn)(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                              const void *restrict act, size_t act_stride, int64_t n_tok,
                              float *restrict y, size_t y_stride);

#define QUANT_GEMM_MAX_N 32768 /* rows up to 32k values: Qwen2.5-7B ffn_down has 18,944 */

/* Bytes of one packed activation row of n values (32-blocks): the int8 quants of block pairs
 * contiguous, then each pair's two f32 scales repeated over 8 lanes each, then the f32 block
 * sums of Q8_1 (padded to 16), then those sums / 8 repeated like the scales. The layout is
 * private to the ISA file that packs and reads it. */
static inline size_t quant_pack_bytes(int64_t n) {
    int64_t nb = n / 32, np = (nb + 1) / 2;
    return (size_t)(np * 64 + np * 64 + (nb + 15) / 16 * 16 * 4 + np * 64);
}

/* Prompt kernels over repacked tiles unpack a chunk of KC slabs of nr tiles at a time and then
 * run every token over it; the unpack of the next chunk would wait on L3 or DRAM (the hardware
 * prefetcher does not run ahead of a burst: a 1-thread Q4_K GEMM of 8192 rows ran 20% below the
 * same kernel over rows in L2). This spreads prefetches of the next chunk's bytes over
 * the passes of the current one. The next chunk is slabs [b1, b1 + kc) of the same tiles or,
 * after the last, the first slabs of the nr tiles that follow: possibly past this call's rows
 * (the caller's next tiles) or past the weights, which a prefetch may address: it never faults,
 * and the address is formed as an integer. */
struct quant_chunk_prefetch {
    uintptr_t base[4]; /* the next chunk's first byte in each tile (the kernels block 1-2) */
    size_t bytes;      /* per tile */
    size_t pos, per_pass;
    int nr;
};

static inline void quant_chunk_prefetch_init(struct quant_chunk_prefetch *pf, const void *tile,
                                             size_t tile_stride, size_t slab, int64_t nb,
                                             int64_t b1, int kc, int nr, int64_t passes) {
    const uintptr_t t0 = (uintptr_t)tile;
    pf->nr = nr < 4 ? nr : 4;
    for (int i = 0; i < pf->nr; i++)
        pf->base[i] = b1 < nb ? t0 + (uintptr_t)i * tile_stride + (uintptr_t)b1 * slab
                              : t0 + (uintptr_t)(nr + i) * tile_stride;
    pf->bytes = (size_t)kc * slab;
    pf->pos = 0;
    const size_t lines = (pf->bytes + 63) / 64, n = passes > 0 ? (size_t)passes : 1;
    pf->per_pass = (lines + n - 1) / n * 64; /* whole lines, all of them by the last pass */
}

static inline void quant_chunk_prefetch_step(struct quant_chunk_prefetch *pf) {
    const size_t end = pf->pos + pf->per_pass < pf->bytes ? pf->pos + pf->per_pass : pf->bytes;
    for (size_t off = pf->pos; off < end; off += 64)
        for (int i = 0; i < pf->nr; i++)
            __builtin_prefetch((const void *)(pf->base[i] + off), 0, 3);
    pf->pos = end;
}

/* Decode over weights repacked once at load into tiles of QUANT_RP_ROWS rows that interleave
 * the rows 4 bytes at a time, so that each 32-bit lane of a vpdpbusd holds one row's dot against
 * 4 activation bytes broadcast to all lanes: no horizontal sum per row, and one load brings the
 * scales of 16 rows. A tile keeps the native bytes per row (20 per 32 weights for Q4_1, 34 for
 * Q8_0); a short last tile is padded with zero rows. Per block index b of the tile's rows:
 *   Q4_1: [16 f16 d][16 f16 m][4 steps x 64 bytes], byte 4 i + j of step s = the native
 *         qs[4 s + j] of row i (weight 4 s + j in its low nibble, 16 + 4 s + j in its high one);
 *   Q8_0: [16 f16 d][8 steps x 64 bytes], byte 4 i + j of step s = qs[4 s + j] of row i + 128
 *         (unsigned, the operand vpdpbusd takes from a register).
 * Writes one tile from n_rows (<= QUANT_RP_ROWS) native rows of n values src_stride bytes apart
 * (plain C). */
#define QUANT_RP_ROWS 16
typedef void (*quant_rp_tile_fn)(const void *restrict src, size_t src_stride, int n_rows,
                                 void *restrict dst, int64_t n);
void quant_q4_1_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n);
void quant_q8_0_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n);
/* The other types' layouts are described beside their writers: Q4_0, Q5_0, Q5_1 in
 * quant-repack.c, Q4_K and Q5_K in repack-q45k.c, Q6_K in repack-q6k.c. */
void quant_q4_0_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n);
void quant_q5_0_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n);
void quant_q5_1_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n);
void quant_q4_k_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n);
void quant_q5_k_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n);
void quant_q6_k_rp_tile(const void *restrict src, size_t src_stride, int n_rows, void *restrict dst,
                        int64_t n);
/* Bytes of the repacked form of n_rows rows of row_bytes native bytes each. */
static inline size_t quant_rp_bytes(size_t row_bytes, int64_t n_rows) {
    return (size_t)((n_rows + QUANT_RP_ROWS - 1) / QUANT_RP_ROWS) * QUANT_RP_ROWS * row_bytes;
}
/* y[r] = dot(row r, the one activation row packed by pack_act) for the n_rows rows of the
 * consecutive tiles at w (w_stride: native bytes per row). Same activation quantization as gemm;
 * only the summation order differs. */
typedef void (*quant_gemv_rp_fn)(int64_t n, const void *restrict w, size_t w_stride, int64_t n_rows,
                                 const void *restrict act, float *restrict y);
/* Many tokens over repacked tiles (prompt batches): the quant_gemm_fn contract with w at the
 * first of the consecutive tiles of n_rows rows (w_stride: native bytes per row) and act rows
 * made by pack_act. A weight kept only in repacked form is multiplied by gemv_rp and gemm_rp
 * alone, so a type with rp_tile has all three. */

/* The values [0, n) of the 16 rows of one repacked tile (w: its first byte) dequantized as the
 * type's dequant_row does, rounded to bf16 (nearest even) and laid out as the B operand of AMX's
 * tdpbf16ps (gemm-amx.h): n / 32 tiles of 1 KiB, tile k holding values 32 k .. 32 k + 31; in it
 * the 32-bit word 16 p + i holds row i's values 32 k + 2 p (low half) and 32 k + 2 p + 1. */
typedef void (*quant_panel_fn)(const void *restrict w, int64_t n, uint16_t *restrict panel);

/* Every repacked tile is the native rows transposed, byte for byte as many bytes: 16 rows of
 * any type take 16 native rows' bytes, so a tensor's repacked copy is the size of the file's. */

struct quant_kernels {
    quant_dequant_row_fn dequant_row;   /* NULL: type unsupported */
    quant_quantize_row_fn quantize_act; /* f32 -> act_type (only for weight types) */
    quant_vec_dot_fn vec_dot;           /* weight row . act_type row (only for weight types) */
    uint32_t act_type;                  /* llama.cpp's vec_dot_type for this weight type */
    quant_quantize_row_fn pack_act;     /* optional, with gemm: f32 -> packed rows */
    quant_gemm_fn gemm;                 /* optional: rows x tokens at once */
    quant_rp_tile_fn rp_tile;           /* optional, with gemv_rp: its layout (plain C) */
    quant_gemv_rp_fn gemv_rp;           /* optional: one token over repacked rows */
    quant_gemm_fn gemm_rp;              /* optional, with gemv_rp: tokens x repacked rows */
    quant_panel_fn panel_bf16;          /* optional, with rp_tile: AMX operand of a tile */
};

/* quantize_q8_0 and quantize_q8_1 (static) over the including file's quantize_block_8(x, &d_f16,
 * q, &sum), which quantizes one 32-block as the reference and returns the unrounded d: every ISA
 * file runs its own block quantizer through the same loops. Q8_1 additionally stores
 * s = d * sum(q) with the unrounded d, as llama.cpp does. */
#define QUANT_Q8_0_Q8_1_FROM_BLOCK8                                                                \
    static void quantize_q8_0(const float *restrict src, void *restrict dst, int64_t n) {          \
        struct block_q8_0 *b = dst;                                                                \
        int sum;                                                                                   \
        for (int64_t i = 0; i < n / QK; i++)                                                       \
            quantize_block_8(src + i * QK, &b[i].d, b[i].qs, &sum);                                \
    }                                                                                              \
    static void quantize_q8_1(const float *restrict src, void *restrict dst, int64_t n) {          \
        struct block_q8_1 *b = dst;                                                                \
        for (int64_t i = 0; i < n / QK; i++) {                                                     \
            int sum;                                                                               \
            const float d = quantize_block_8(src + i * QK, &b[i].d, b[i].qs, &sum);                \
            b[i].s = quant_f32_to_f16(d * (float)sum);                                             \
        }                                                                                          \
    }

/* A table entry without the optional blocked kernels. */
#define QUANT_ENTRY(deq, quant, dot, act)                                                          \
    ((struct quant_kernels){                                                                       \
        .dequant_row = (deq), .quantize_act = (quant), .vec_dot = (dot), .act_type = (act)})

#define QUANT_TYPE_TABLE_SIZE 31 /* ids 0..30 (BF16 is 30) */

/* Kernels for `type` at ISA level `isa` (NULL when the type has no kernels). For weight types
 * all three functions are set; the activation-only types Q8_1 and Q8_K have dequant_row. An ISA
 * the CPU cannot run must not be asked for (check simd_isa_available()). */
const struct quant_kernels *quant_kernels_isa(uint32_t type, enum simd_isa isa);

/* Same, at the level in use (simd_isa()). */
const struct quant_kernels *quant_kernels(uint32_t type);

/* Table fillers, one per ISA file, each overwriting the entries its file implements; the lists of
 * kernels.h say which ISA table runs which, in which order and on which CPU feature:
 *   AVX2: quant-avx2.c, then the kernels over repacked tiles (pack_act, rp_tile, gemv_rp and
 *     gemm_rp of a type, set together) of rp-q32-avx2.c (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0),
 *     rp-q45k-avx2.c (Q4_K, Q5_K) and rp-q6k-avx2.c (Q6_K);
 *   AVX-512: the AVX2 ones, then quant-avx512.c (no VNNI), _bf16 (vdpbf16ps), and with VNNI
 *     quant-avx512-vnni.c (which replaces Q4_1's and Q8_0's tile group with its own activation
 *     packing, for rp-q32-vnni.c) and the VNNI gemv_rp and gemm_rp of rp-q32-vnni.c (Q4_1, Q8_0),
 *     rp-q45k-vnni.c, rp-q6k-vnni.c and rp-q32x-vnni.c (Q4_0, Q5_0, Q5_1, over the AVX2 packing);
 *   NEON: quant-neon.c (plain widening dots), _dotprod (SDOT), and with SDOT only the tile
 *     kernels of rp-q32-neon.c, rp-q45k-neon.c and rp-q6k-neon.c (without it the weights stay
 *     native). */
#define QUANT_FILL_DECLARE(table, slot, symbol, need) QUANT_FILL_DECLARE_##table(symbol)
#define QUANT_FILL_DECLARE_quant(symbol)              void symbol(struct quant_kernels *t);
#define QUANT_FILL_DECLARE_ops(symbol)
#define QUANT_FILL_DECLARE_press(symbol)
SIMD_KERNELS_ALL(QUANT_FILL_DECLARE)

/* Builds the table of `isa` as a CPU with flags f gets it: the scalar fill, then the ISA's list
 * (kernels.h) minus the lines whose need f lacks. The dispatcher passes simd_cpu_flags(); tests
 * pass all-false flags to reach the kernels VNNI, BF16 or SDOT replace. The ISA must be one this
 * CPU runs (simd_isa_available()): the fillers are compiled for it. */
void quant_kernels_build(struct quant_kernels *t, enum simd_isa isa,
                         const struct simd_cpu_flags *f);

#endif
