/* SentencePiece-style tokenizer (tokenizer.ggml.model = llama: Llama 2, Mistral), with the
 * merge behaviour of llama.cpp's llm_tokenizer_spm_session, which adakv must reproduce:
 *
 * - Every ASCII space becomes U+2581 "▁" (the caller has already put one space in front of
 *   raw text that starts the prompt or follows a special token, when add_space_prefix).
 * - The text is cut into symbols of one UTF-8 character each, sized by the lead byte alone
 *   (no validation; a truncated last character keeps the bytes that are there).
 * - Every adjacent pair whose concatenation is a vocab token is a candidate, scored by that
 *   token's score. The highest score is merged first; equal scores go to the leftmost pair.
 *   After a merge, the new symbol's pairs with its neighbours become candidates. Stale pairs
 *   (a side already merged away or grown) are skipped.
 * - Each final symbol is emitted as its token; a symbol that is not a token (only single
 *   characters can be, since merges always form tokens) is emitted byte by byte as the
 *   <0xNN> byte tokens, falling back to a token whose text is that single byte, then to the
 *   unknown token (llama.cpp aborts there). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer-impl.h"

struct spm_work {
    const char *text;
    struct tok_sym *syms;
    struct tok_heap heap; /* candidate merges by score */
    bool oom;
};

static void try_pair(const struct tokenizer *t, struct spm_work *w, int left, int right) {
    if (left < 0 || right < 0)
        return;
    const struct tok_sym *l = &w->syms[left], *r = &w->syms[right];
    /* Adjacent symbols are contiguous in the text, so the pair's text is one slice. */
    int32_t id = tok_lookup(t, w->text + l->off, l->n + r->n);
    if (id < 0)
        return;
    const struct tok_pair p = {
        .score = t->tokens[id].score, .left = left, .right = right, .size = l->n + r->n};
    if (!tok_heap_push(&w->heap, p))
        w->oom = true; /* tok_spm_encode fails after its loop */
}

static int emit_bytes(const struct tokenizer *t, const char *s, size_t n, struct tok_ids *ids,
                      struct adakv_err *e) {
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char name[6] = {'<', '0', 'x', hex[c >> 4], hex[c & 15], '>'};
        int32_t id = tok_lookup(t, name, sizeof name);
        if (id < 0)
            id = tok_lookup(t, s + i, 1);
        if (id < 0)
            id = t->unk;
        if (id < 0)
            return err_set(e,
                           "tokenizer: the vocab has no token for byte 0x%02X and no "
                           "unknown token",
                           c);
        if (tok_ids_push(ids, id, e))
            return -1;
    }
    return 0;
}

int tok_spm_encode(const struct tokenizer *t, const char *raw, size_t len, struct tok_ids *ids,
                   struct adakv_err *e) {
    if (len == 0)
        return 0;
    /* Escape spaces: each ' ' becomes the 3 bytes of U+2581. */
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++)
        spaces += raw[i] == ' ';
    size_t tlen = len + 2 * spaces;
    struct spm_work w = {0};
    int rc = -1;
    char *text = malloc(tlen);
    w.syms = malloc(tlen * sizeof *w.syms);
    if (!text || !w.syms) {
        err_set(e, "tokenizer: out of memory for a %zu-byte text", len);
        goto done;
    }
    for (size_t i = 0, o = 0; i < len; i++) {
        if (raw[i] == ' ') {
            memcpy(text + o, "\xe2\x96\x81", 3);
            o += 3;
        } else {
            text[o++] = raw[i];
        }
    }
    w.text = text;

    int nsym = 0;
    for (size_t off = 0; off < tlen;) {
        size_t n = unicode_len_utf8((unsigned char)text[off]);
        if (n > tlen - off)
            n = tlen - off;
        w.syms[nsym] =
            (struct tok_sym){nsym - 1, off + n == tlen ? -1 : nsym + 1, (uint32_t)off, (uint32_t)n};
        nsym++;
        off += n;
    }
    for (int i = 1; i < nsym; i++)
        try_pair(t, &w, i - 1, i);
    while (w.heap.n > 0 && !w.oom) {
        const struct tok_pair p = tok_heap_pop(&w.heap);
        if (!tok_sym_merge(w.syms, p))
            continue;
        try_pair(t, &w, w.syms[p.left].prev, p.left);
        try_pair(t, &w, p.left, w.syms[p.left].next);
    }
    if (w.oom) {
        err_set(e, "tokenizer: out of memory");
        goto done;
    }
    for (int i = 0; i >= 0; i = w.syms[i].next) {
        const struct tok_sym *s = &w.syms[i];
        int32_t id = tok_lookup(t, text + s->off, s->n);
        if (id >= 0) {
            if (tok_ids_push(ids, id, e))
                goto done;
        } else if (emit_bytes(t, text + s->off, s->n, ids, e)) {
            goto done;
        }
    }
    rc = 0;
done:
    free(text);
    free(w.syms);
    free(w.heap.v);
    return rc;
}
