/* The merge loop's pieces shared by the BPE and SPM encoders (tokenizer-impl.h): the heap of
 * candidate pairs and the merge of one pair's symbols. */
#include <stdlib.h>

#include "tokenizer-impl.h"

/* x goes before y. With rank 0 throughout (SPM) this is "higher score, then leftmost"; with
 * score 0 throughout (BPE), "lower rank, then leftmost": the two orders llama.cpp's
 * llm_tokenizer_spm and llm_tokenizer_bpe queues use. */
static bool pair_before(const struct tok_pair *x, const struct tok_pair *y) {
    return x->rank < y->rank ||
           (x->rank == y->rank &&
            (x->score > y->score || (x->score == y->score && x->left < y->left)));
}

bool tok_heap_push(struct tok_heap *h, struct tok_pair p) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct tok_pair *nv = realloc(h->v, cap * sizeof *nv);
        if (!nv)
            return false;
        h->v = nv;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_before(&p, &h->v[parent]))
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = p;
    return true;
}

struct tok_pair tok_heap_pop(struct tok_heap *h) {
    struct tok_pair top = h->v[0], last = h->v[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        const struct tok_pair *bp = &last;
        if (l < n && pair_before(&h->v[l], bp)) {
            best = l;
            bp = &h->v[l];
        }
        if (l + 1 < n && pair_before(&h->v[l + 1], bp))
            best = l + 1;
        if (best == i)
            break;
        h->v[i] = h->v[best];
        i = best;
    }
    if (n)
        h->v[i] = last;
    return top;
}

bool tok_sym_merge(struct tok_sym *syms, struct tok_pair p) {
    struct tok_sym *l = &syms[p.left], *r = &syms[p.right];
    if (l->n == 0 || r->n == 0 || l->n + r->n != p.size)
        return false;
    l->n += r->n;
    r->n = 0;
    l->next = r->next;
    if (r->next >= 0)
        syms[r->next].prev = p.left;
    return true;
}
