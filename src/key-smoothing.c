/* Per-channel smoothing of int8 keys from the model's weights (key-smoothing.h). */
#include "key-smoothing.h"

#include <math.h>
#include <stdlib.h>

#include "quant.h"
#include "tensor-type.h"

/* Squared norms of rows r0 .. r0 + n of t, each row scaled elementwise by g first. */
static void row_sq_norms(const struct gguf_tensor *t, const float *g, int r0, int n, double *out,
                         float *row) {
    const struct quant_kernels *k = quant_kernels_isa(t->type, simd_isa());
    const size_t rb = (size_t)tensor_type_row_size(t->type, t->ne[0]);
    const int64_t D = (int64_t)t->ne[0];
    for (int i = 0; i < n; i++) {
        k->dequant_row((const char *)t->data + (size_t)(r0 + i) * rb, row, D);
        double sq = 0.0;
        for (int64_t j = 0; j < D; j++)
            sq += (double)row[j] * g[j] * (double)row[j] * g[j];
        out[i] = sq;
    }
}

/* The channel that shares channel i's rotation: adjacent pairs (2j, 2j + 1), or for NEOX
 * (j, j + n_rot / 2); channels past n_rot are not rotated and stand alone. */
static int rope_partner(const struct model_hparams *hp, int i) {
    if (i >= hp->n_rot)
        return i;
    if (hp->rope_pairing == ROPE_PAIRING_NEOX)
        return i < hp->n_rot / 2 ? i + hp->n_rot / 2 : i - hp->n_rot / 2;
    return i ^ 1;
}

/* Channel sizes of one head from squared row norms: the pair combined, floored at 1e-6 of the
 * largest so that a dead channel cannot produce a zero or infinite factor. */
static void channel_sizes(const struct model_hparams *hp, const double *sq, double *size) {
    const int d = hp->head_dim;
    double top = 0.0;
    for (int i = 0; i < d; i++) {
        const int p = rope_partner(hp, i);
        size[i] = sqrt(sq[i] + (p != i ? sq[p] : 0.0));
        top = size[i] > top ? size[i] : top;
    }
    for (int i = 0; i < d; i++)
        size[i] = top > 0.0 ? fmax(size[i], 1e-6 * top) : 1.0;
}

float *key_smoothing_factors(const struct adakv_model *m, struct adakv_err *e) {
    const struct model_hparams *hp = &m->hp;
    const int d = hp->head_dim, group = hp->n_head / hp->n_head_kv;
    const size_t n = (size_t)hp->n_layer * hp->n_head_kv * d;
    float *f = malloc(n * sizeof *f), *row = malloc((size_t)hp->n_embd * sizeof *row);
    double *sq = malloc(2 * (size_t)d * sizeof *sq), *ksz = malloc(2 * (size_t)d * sizeof *ksz);
    if (!f || !row || !sq || !ksz) {
        free(f), free(row), free(sq), free(ksz);
        err_set(e, "key smoothing: out of memory");
        return NULL;
    }
    double *qsq = sq + d, *qsz = ksz + d;
    for (int il = 0; il < hp->n_layer; il++) {
        const struct model_layer *L = &m->w.layers[il];
        const float *g = (const float *)L->attn_norm->data;
        for (int h = 0; h < hp->n_head_kv; h++) {
            row_sq_norms(L->wk, g, h * d, d, sq, row);
            channel_sizes(hp, sq, ksz);
            for (int i = 0; i < d; i++)
                qsq[i] = 0.0;
            for (int hq = h * group; hq < (h + 1) * group; hq++) {
                row_sq_norms(L->wq, g, hq * d, d, sq, row);
                for (int i = 0; i < d; i++)
                    qsq[i] += sq[i] / group;
            }
            channel_sizes(hp, qsq, qsz);
            float *out = f + ((size_t)il * hp->n_head_kv + h) * d;
            for (int i = 0; i < d; i++)
                out[i] = (float)sqrt(ksz[i] / qsz[i]);
        }
    }
    free(row), free(sq), free(ksz);
    return f;
}
