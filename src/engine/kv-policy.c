/* The context's side of the KV policy interface (kv-policy.h): installing a policy, and the
 * query rows the context keeps for it. */
#include "kv-policy.h"

#include <stdlib.h>
#include <string.h>

#include "forward.h"

void kv_policy_install(struct adakv_ctx *c, const struct kv_policy *p) {
    if (c->policy.free)
        c->policy.free(c->policy.self);
    if (p)
        c->policy = *p;
    else
        memset(&c->policy, 0, sizeof c->policy);
}

const struct kv_policy *kv_policy_of(const struct adakv_ctx *c) {
    return &c->policy;
}

struct kv_policy_host kv_policy_host(const struct adakv_ctx *c) {
    return (struct kv_policy_host){
        .model = c->model, .ops = c->ops, .n_ctx = c->n_ctx, .window = c->window};
}

void adakv_ctx_set_compress(struct adakv_ctx *c, adakv_compress_layer_fn fn, void *user) {
    kv_policy_install(c, &(struct kv_policy){.self = user, .after_layer = fn});
}

const float *kv_policy_window_lse(const struct adakv_ctx *c) {
    return c->lse_window;
}

void kv_policy_set_rec_pieces(struct adakv_ctx *c, const struct kv_rec_pieces *rp) {
    c->rec_pieces = rp ? *rp : (struct kv_rec_pieces){0};
}

int kv_policy_record_recent(struct adakv_ctx *c, int cap, struct adakv_err *e) {
    const struct model_hparams *hp = &c->model->hp;
    const size_t qdim = (size_t)hp->n_head * hp->head_dim;
    float *q = realloc(c->q_recent, (size_t)hp->n_layer * cap * qdim * sizeof *q);
    if (!q)
        return err_set(e, "context: out of memory for %d recent query rows per layer", cap);
    c->q_recent = q;
    c->recent_cap = cap;
    c->recent_total = 0;
    return 0;
}

int kv_policy_set_window(struct adakv_ctx *c, int window, struct adakv_err *e) {
    if (window < 1)
        return err_set(e, "--window: %d must be >= 1", window);
    window = window < c->n_ctx ? window : c->n_ctx;
    const struct model_hparams *hp = &c->model->hp;
    float *q = realloc(c->q_window, (size_t)window * hp->n_head * hp->head_dim * sizeof *q);
    if (!q)
        return err_set(e, "context: out of memory for a %d-row query window", window);
    c->q_window = q;
    float *lse = realloc(c->lse_window, (size_t)window * hp->n_head * sizeof *lse);
    if (!lse) { /* q_window holds `window` rows, lse_window still the old count */
        c->window = window < c->window ? window : c->window;
        return err_set(e, "context: out of memory for a %d-row query window", window);
    }
    c->lse_window = lse;
    c->window = window;
    return 0;
}
