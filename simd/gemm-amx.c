/* The AMX prompt product (gemm-amx.h). Tiles: 0-3 the 2 x 2 blocks of f32 sums (tokens t, t + 16
 * x the two row tiles of a pair), 4-5 the two A tiles (16 tokens x 32 bf16 values), 6-7 the two
 * B tiles (32 values of 16 rows each, as tdpbf16ps pairs them). Per 32 values: 4 tile loads, 4
 * tdpbf16ps. */
#include "gemm-amx.h"

#include <immintrin.h>
#include <string.h>

enum {
    T = 16,          /* rows of a tile */
    KB = 32,         /* bf16 values per tile row */
    B_WORDS = 512,   /* uint16 of one B tile */
    SUM_FLOATS = 256 /* floats of one tile of sums */
};

struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

void gemm_amx_pack_row(const float *restrict x, int64_t n, uint16_t *restrict out) {
    int64_t k = 0;
    for (; k + 16 <= n; k += 16)
        _mm256_storeu_si256((void *)(out + k), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + k)));
    if (k < n) {
        const __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        _mm256_mask_storeu_epi16(out + k, m,
                                 (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + k)));
    }
}

static void configure_tiles(void) {
    struct tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = T;
    }
    _tile_loadconfig(&cfg);
}

/* The 16 x 16 sums of tile i (a constant for the intrinsic) for the tokens t0.. and rows c0.. to
 * y: stored straight when all are in range, else through buf with the rows and columns in range
 * copied by masked vector moves. */
#define STORE_TO_Y(i, t0, c0, buf)                                                                 \
    do {                                                                                           \
        const int64_t nt_ = n_tok - (t0) < T ? n_tok - (t0) : T;                                   \
        const int64_t nc_ = n_rows - (c0) < T ? n_rows - (c0) : T;                                 \
        float *y_ = y + (size_t)(t0)*y_stride + (c0);                                              \
        if (nt_ == T && nc_ == T) {                                                                \
            _tile_stored(i, y_, y_stride * sizeof(float));                                         \
        } else if (nt_ > 0 && nc_ > 0) {                                                           \
            _tile_stored(i, buf, 64);                                                              \
            const __mmask16 m_ = (__mmask16)((1u << nc_) - 1);                                     \
            for (int64_t r_ = 0; r_ < nt_; r_++)                                                   \
                _mm512_mask_storeu_ps(y_ + (size_t)r_ * y_stride, m_,                              \
                                      _mm512_loadu_ps((buf) + T * r_));                            \
        }                                                                                          \
    } while (0)

void gemm_amx_rows(quant_panel_fn panel, int64_t n, const void *w, size_t tile_bytes,
                   size_t kc_bytes, int64_t n_rows, const uint16_t *act, int64_t n_tok, float *y,
                   size_t y_stride, void *scratch) {
    const int n_tiles = (int)((n_rows + T - 1) / T), n_pairs = (n_tiles + 1) / 2;
    const int64_t n_tb = gemm_amx_tokens_padded(n_tok) / (2 * T);
    const size_t stride = gemm_amx_act_stride(n);
    uint16_t *const pan = scratch; /* tile i's chunk at pan + i T KC */
    float *const sums = (float *)(void *)(pan + (size_t)GEMM_AMX_ROWS_MAX * GEMM_AMX_KC);
    if (n_tiles % 2) /* the odd tile's partner: zero weights */
        memset(pan + (size_t)n_tiles * T * GEMM_AMX_KC, 0, (size_t)T * GEMM_AMX_KC * 2);
    configure_tiles();
    for (int64_t k0 = 0; k0 < n; k0 += GEMM_AMX_KC) {
        const int64_t kc = n - k0 < GEMM_AMX_KC ? n - k0 : GEMM_AMX_KC;
        for (int i = 0; i < n_tiles; i++)
            panel((const uint8_t *)w + (size_t)i * tile_bytes +
                      (size_t)(k0 / GEMM_AMX_KC) * kc_bytes,
                  kc, pan + (size_t)i * T * GEMM_AMX_KC);
        for (int64_t k1 = 0; k1 < kc; k1 += GEMM_AMX_KR) {
            const int64_t kr = kc - k1 < GEMM_AMX_KR ? kc - k1 : GEMM_AMX_KR;
            for (int64_t tb = 0; tb < n_tb; tb++) {
                const uint8_t *a0 =
                    (const uint8_t *)act + (size_t)tb * 2 * T * stride + 2 * (k0 + k1);
                const uint8_t *a1 = a0 + T * stride;
                const int first = k0 + k1 == 0, last = k0 + k1 + kr >= n;
                for (int pair = 0; pair < n_pairs; pair++) {
                    float *c = sums + (size_t)(tb * n_pairs + pair) * 4 * SUM_FLOATS;
                    const uint16_t *b0 =
                        pan + (size_t)2 * pair * T * GEMM_AMX_KC + (size_t)k1 / KB * B_WORDS;
                    const uint16_t *b1 = b0 + T * GEMM_AMX_KC;
                    if (first) {
                        _tile_zero(0);
                        _tile_zero(1);
                        _tile_zero(2);
                        _tile_zero(3);
                    } else {
                        _tile_loadd(0, c, 64);
                        _tile_loadd(1, c + SUM_FLOATS, 64);
                        _tile_loadd(2, c + 2 * SUM_FLOATS, 64);
                        _tile_loadd(3, c + 3 * SUM_FLOATS, 64);
                    }
                    for (int64_t k = 0; k < kr / KB; k++) {
                        _tile_loadd(4, a0 + 64 * k, stride);
                        _tile_loadd(5, a1 + 64 * k, stride);
                        _tile_loadd(6, b0 + B_WORDS * k, 64);
                        _tile_loadd(7, b1 + B_WORDS * k, 64);
                        _tile_dpbf16ps(0, 4, 6);
                        _tile_dpbf16ps(1, 4, 7);
                        _tile_dpbf16ps(2, 5, 6);
                        _tile_dpbf16ps(3, 5, 7);
                    }
                    if (!last) {
                        _tile_stored(0, c, 64);
                        _tile_stored(1, c + SUM_FLOATS, 64);
                        _tile_stored(2, c + 2 * SUM_FLOATS, 64);
                        _tile_stored(3, c + 3 * SUM_FLOATS, 64);
                    } else { /* the last values: the sums are y's */
                        const int64_t t0 = tb * 2 * T, c0 = (int64_t)pair * 2 * T;
                        STORE_TO_Y(0, t0, c0, c);
                        STORE_TO_Y(1, t0, c0 + T, c);
                        STORE_TO_Y(2, t0 + T, c0, c);
                        STORE_TO_Y(3, t0 + T, c0 + T, c);
                    }
                }
            }
        }
    }
    _tile_release();
}
