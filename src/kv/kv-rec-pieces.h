/* KVzip's reconstruction in pieces (the kvzip presses' rec-chunk option; docs/presses.md).
 *
 * KVzip scores the context by the attention it receives while the model repeats it. Repeated in
 * one pass, every query of the copy attends over the whole context and the copy before it, so
 * the reconstruction costs more than the context's own prefill and grows quadratically. kvpress
 * repeats the context in chunks of 2,048 tokens and scores each chunk's rows only with that
 * chunk's repeat, over a softmax of the sinks, the chunk and the repeat. Here the copy is cut the
 * same way, and a copy query also attends only over those rows (and the repeat prompt): its
 * scores are exactly kvpress's formula, its hidden states differ from kvpress's (which see the
 * whole context), and the reconstruction's cost is linear in the length.
 *
 * All bounds are positions (the attention masks by stored position). The batch is the context
 * [ctx0, ctx_end), then the reconstruction [rec0, rec_end): the repeat prompt [rec0, lead_end),
 * whose queries see every row before them, then the copy, whose query at position p repeats the
 * context row at p - shift (the two end together, so a chat template's few extra tokens only
 * shift the alignment). Context row a belongs to piece (a - ctx0) / piece. A copy query of piece
 * k sees the head [0, head_end) (rows before the context and its first sinks), piece k's context
 * rows, the repeat prompt, and the copy from `overlap` rows before piece k's first copy row up to
 * itself (kvpress starts a chunk's repeat with the previous chunk's last 8 tokens). */
#ifndef ADAKV_KV_REC_PIECES_H
#define ADAKV_KV_REC_PIECES_H

#include <stdint.h>

struct kv_rec_pieces {
    int32_t piece; /* context rows per piece; 0: off, every query sees every row before it */
    int32_t head_end, ctx0, ctx_end, rec0, lead_end, rec_end, shift, overlap;
};

enum {
    KV_REC_RANGES = 4,
    KVZIP_PIECE_OVERLAP = 8, /* copy rows of the previous piece a copy query sees (kvpress's) */
};

/* The piece whose rows the query at position p sees, or -1 when it sees every row (pieces off,
 * the context's own rows, the repeat prompt, rows after the copy). */
static inline int32_t kv_rec_piece(const struct kv_rec_pieces *rp, int32_t p) {
    if (!rp || rp->piece <= 0 || p < rp->lead_end || p >= rp->rec_end)
        return -1;
    int32_t a = p - rp->shift;
    a = a < rp->ctx0 ? rp->ctx0 : a >= rp->ctx_end ? rp->ctx_end - 1 : a;
    return (a - rp->ctx0) / rp->piece;
}

/* Context rows [*lo, *hi) of piece k, past the head. */
static inline void kv_rec_piece_rows(const struct kv_rec_pieces *rp, int32_t k, int32_t *lo,
                                     int32_t *hi) {
    const int32_t a = rp->ctx0 + k * rp->piece, b = a + rp->piece;
    *lo = a > rp->head_end ? a : rp->head_end;
    *hi = b < rp->ctx_end ? b : rp->ctx_end;
    if (*hi < *lo)
        *hi = *lo;
}

/* The position ranges [lo[i], hi[i]) a query of piece k sees, in increasing order, adjacent
 * ones merged (causality within the copy is the attention's): returns how many (<= 4). */
static inline int kv_rec_ranges(const struct kv_rec_pieces *rp, int32_t k,
                                int32_t lo[KV_REC_RANGES], int32_t hi[KV_REC_RANGES]) {
    int32_t a, b;
    kv_rec_piece_rows(rp, k, &a, &b);
    const int32_t copy0 = rp->ctx0 + k * rp->piece + rp->shift - rp->overlap;
    const int32_t all_lo[KV_REC_RANGES] = {0, a, rp->rec0,
                                           copy0 > rp->lead_end ? copy0 : rp->lead_end};
    const int32_t all_hi[KV_REC_RANGES] = {rp->head_end, b, rp->lead_end, rp->rec_end};
    int n = 0;
    for (int i = 0; i < KV_REC_RANGES; i++) {
        if (all_hi[i] <= all_lo[i])
            continue;
        if (n && all_lo[i] <= hi[n - 1]) {
            hi[n - 1] = all_hi[i] > hi[n - 1] ? all_hi[i] : hi[n - 1];
            continue;
        }
        lo[n] = all_lo[i], hi[n] = all_hi[i], n++;
    }
    return n;
}

#endif
