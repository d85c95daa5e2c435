/* Byte-level BPE (tokenizer.ggml.model = gpt2): pre-tokenizer, byte alphabet, merge loop.
 *
 * 1. The fragment is decoded into code points the way llama.cpp decodes it (invalid bytes
 *    become U+FFFD, so the tokens of invalid input match too).
 * 2. Pre-tokenization splits the code points into words with the regex set named by
 *    tokenizer.ggml.pre. llama.cpp runs each regex of the set over the pieces produced by the
 *    previous one; matches and the unmatched text between them both become pieces. Its
 *    hand-written matchers for the GPT-2, Llama 3 and Qwen2 patterns are reproduced branch by
 *    branch (including their look-ahead limits at piece ends); the single-class regexes it
 *    runs through std::regex on a "collapsed" text (\p{N} for smollm, the four stages of
 *    "default") are run-length matchers here.
 * 3. Each word is re-encoded as UTF-8, every byte mapped to GPT-2's printable alphabet, and
 *    merged: all adjacent pairs with a rank go into a min-heap keyed by (rank, left position);
 *    the best is popped, skipped if either side changed since it was pushed, merged, and the
 *    two new neighbour pairs pushed. O(n log n) per word.
 * 4. Each final symbol is looked up; a symbol that is not a token falls back to one lookup
 *    per byte (and bytes without a token are dropped, as llama.cpp drops them). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer-impl.h"

#define OUT_OF_PIECE 0xFFFFFFFFu

struct lens {
    size_t *v;
    size_t n, cap;
};

struct bpe_work {
    uint32_t *cpt;
    uint16_t *flags;
    struct lens a, b;
    char *word;
    size_t word_cap;
    struct tok_sym *syms;
    size_t syms_cap;
    struct tok_heap heap; /* candidate merges by rank */
    bool oom;
};

static void lens_push(struct bpe_work *w, struct lens *l, size_t v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) {
            w->oom = true;
            return;
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
}

/* Cursor of one matcher over the piece [ini, end): emits the text since the last cut. */
struct cut {
    struct bpe_work *w;
    struct lens *out;
    size_t prev;
};

static void emit(struct cut *c, size_t pos) {
    if (pos > c->prev)
        lens_push(c->w, c->out, pos - c->prev);
    c->prev = pos;
}

#define L_  UNICODE_LETTER
#define N_  UNICODE_NUMBER
#define WS_ UNICODE_WHITESPACE

static uint32_t ascii_lower(uint32_t c) {
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Length of the contraction 's 't 're 've 'm 'll 'd at pos, 0 when there is none; fold matches
 * its letters in either case (Llama 3's (?i:...)). */
static size_t contraction_len(const uint32_t *C, size_t pos, size_t end, bool fold) {
    if (C[pos] != '\'' || pos + 1 >= end)
        return 0;
    const uint32_t c1 = fold ? ascii_lower(C[pos + 1]) : C[pos + 1];
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
        return 2;
    if (pos + 2 < end) {
        const uint32_t c2 = fold ? ascii_lower(C[pos + 2]) : C[pos + 2];
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
            return 3;
    }
    return 0;
}

/* The whitespace alternatives that end both patterns, over the nws whitespace code points at
 * pos: \s+(?!\S) leaves the last space to the word that follows, \s+ takes a run at the end of
 * the piece, and with no whitespace the code point stands alone. Returns the new position. */
static size_t emit_spaces(struct cut *c, size_t pos, size_t nws, size_t end) {
    if (nws > 1 && pos + nws < end)
        pos += nws - 1;
    else if (nws > 0)
        pos += nws;
    else
        pos++;
    emit(c, pos);
    return pos;
}

/* ---------------------------------------------------------------- GPT-2 pattern
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(struct bpe_work *w, size_t ini, size_t end, struct lens *out) {
    const uint32_t *C = w->cpt;
    const uint16_t *F = w->flags;
#define FL(p) ((p) < end ? F[p] : 0)
    struct cut c = {w, out, ini};
    size_t pos = ini;
    while (pos < end) {
        uint32_t cp = C[pos];
        uint16_t f = F[pos];
        const size_t nc = contraction_len(C, pos, end, false);
        if (nc) {
            emit(&c, pos += nc);
            continue;
        }
        uint16_t f2 = cp == ' ' ? FL(pos + 1) : f;
        if (f2 & L_) {
            pos += cp == ' ';
            while (FL(pos) & L_)
                pos++;
            emit(&c, pos);
            continue;
        }
        if (f2 & N_) {
            pos += cp == ' ';
            while (FL(pos) & N_)
                pos++;
            emit(&c, pos);
            continue;
        }
        if (!(f2 & (WS_ | L_ | N_)) && f2) {
            pos += cp == ' ';
            while (!(FL(pos) & (WS_ | L_ | N_)) && FL(pos))
                pos++;
            emit(&c, pos);
            continue;
        }
        size_t nws = 0;
        while (FL(pos + nws) & WS_)
            nws++;
        pos = emit_spaces(&c, pos, nws, end);
    }
#undef FL
}

/* ---------------------------------------------------------------- Llama 3 / Qwen2 patterns
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}
 * | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * Case folding only matters for ASCII here: no other code point lowercases to one of the
 * letters s t m d r e v l. */
static void split_llama3(struct bpe_work *w, size_t ini, size_t end, size_t max_digits,
                         struct lens *out) {
    const uint32_t *C = w->cpt;
    const uint16_t *F = w->flags;
#define FL(p) ((p) < end ? F[p] : 0)
#define CP(p) ((p) < end ? C[p] : OUT_OF_PIECE)
    struct cut c = {w, out, ini};
    size_t pos = ini;
    while (pos < end) {
        uint32_t cp = C[pos];
        uint16_t f = F[pos];
        const size_t nc = contraction_len(C, pos, end, true);
        if (nc) {
            emit(&c, pos += nc);
            continue;
        }
        if (!(cp == '\r' || cp == '\n' || (f & N_))) {
            if ((f & L_) || (FL(pos + 1) & L_)) {
                pos++;
                while (FL(pos) & L_)
                    pos++;
                emit(&c, pos);
                continue;
            }
        }
        if (f & N_) {
            size_t run_start = pos;
            while (FL(pos) & N_) {
                if (++pos - run_start >= max_digits) {
                    emit(&c, pos);
                    run_start = pos;
                }
            }
            emit(&c, pos);
            continue;
        }
        /* llama.cpp tests the current code point's flags (not the one after the space) for
         * being non-zero here; a lone trailing space therefore becomes its own piece. */
        uint16_t f2 = cp == ' ' ? FL(pos + 1) : f;
        if (!(f2 & (WS_ | L_ | N_)) && f) {
            pos += cp == ' ';
            while (!(FL(pos) & (WS_ | L_ | N_)) && FL(pos))
                pos++;
            while (CP(pos) == '\r' || CP(pos) == '\n')
                pos++;
            emit(&c, pos);
            continue;
        }
        size_t nws = 0, last_rn = 0;
        while (FL(pos + nws) & WS_) {
            uint32_t c2 = C[pos + nws];
            if (c2 == '\r' || c2 == '\n')
                last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) { /* \s*[\r\n]+ */
            emit(&c, pos = last_rn);
            continue;
        }
        pos = emit_spaces(&c, pos, nws, end);
    }
#undef FL
#undef CP
}

/* ---------------------------------------------------------------- single-class regexes
 * llama.cpp runs these with std::regex over a text where every code point >= 128 is replaced
 * by one byte for its class (whitespace first), so a class is: an ASCII rule for code points
 * below 128 and the category of non-whitespace code points above. */
enum run_class { RUN_NUMBER, RUN_PUNCT_DEFAULT, RUN_ASCII_DIGIT };

static bool in_class(enum run_class k, uint32_t cp, uint16_t f) {
    switch (k) {
    case RUN_NUMBER: /* \p{N} */
        if (cp < 128)
            return cp >= '0' && cp <= '9';
        return !(f & WS_) && (f & UNICODE_CATEGORY_MASK) == N_;
    case RUN_PUNCT_DEFAULT: /* [\p{P}\$\+<=>\^~\|] */
        if (cp < 128)
            return (f & UNICODE_CATEGORY_MASK) == UNICODE_PUNCTUATION ||
                   (cp && strchr("$+<=>^~|", (int)cp));
        return !(f & WS_) && (f & UNICODE_CATEGORY_MASK) == UNICODE_PUNCTUATION;
    case RUN_ASCII_DIGIT: /* [0-9] */
        return cp >= '0' && cp <= '9';
    }
    return false;
}

/* Leftmost matches of class{min,max} (max 0 = unbounded, greedy); the text between matches
 * is a piece of its own. */
static void split_runs(struct bpe_work *w, size_t ini, size_t end, enum run_class k, size_t min,
                       size_t max, struct lens *out) {
    struct cut c = {w, out, ini};
    size_t pos = ini;
    while (pos < end) {
        size_t run = 0;
        while (pos + run < end && in_class(k, w->cpt[pos + run], w->flags[pos + run]) &&
               (max == 0 || run < max))
            run++;
        if (run == 0) {
            pos++;
            continue;
        }
        if (run < min) { /* every start inside this run is shorter still */
            pos += run;
            continue;
        }
        emit(&c, pos);
        emit(&c, pos += run);
    }
    emit(&c, end);
}

/* Runs one stage over every current piece: w->a holds the piece lengths, the result replaces
 * them. */
enum stage { ST_GPT2, ST_LLAMA3, ST_QWEN2, ST_NUMBER1, ST_NUMBERS, ST_PUNCT, ST_DIGIT3 };

static void run_stage(struct bpe_work *w, enum stage st) {
    w->b.n = 0;
    size_t start = 0;
    for (size_t i = 0; i < w->a.n; i++) {
        size_t end = start + w->a.v[i];
        switch (st) {
        case ST_GPT2:
            split_gpt2(w, start, end, &w->b);
            break;
        case ST_LLAMA3:
            split_llama3(w, start, end, 3, &w->b);
            break;
        case ST_QWEN2:
            split_llama3(w, start, end, 1, &w->b);
            break;
        case ST_NUMBER1:
            split_runs(w, start, end, RUN_NUMBER, 1, 1, &w->b);
            break;
        case ST_NUMBERS:
            split_runs(w, start, end, RUN_NUMBER, 1, 0, &w->b);
            break;
        case ST_PUNCT:
            split_runs(w, start, end, RUN_PUNCT_DEFAULT, 1, 0, &w->b);
            break;
        case ST_DIGIT3:
            split_runs(w, start, end, RUN_ASCII_DIGIT, 3, 3, &w->b);
            break;
        }
        start = end;
    }
    struct lens tmp = w->a;
    w->a = w->b;
    w->b = tmp;
}

static void pretokenize(const struct tokenizer *t, struct bpe_work *w) {
    switch (t->pre) {
    case TOK_PRE_SMOLLM:
        run_stage(w, ST_NUMBER1);
        run_stage(w, ST_GPT2);
        break;
    case TOK_PRE_GPT2:
        run_stage(w, ST_GPT2);
        break;
    case TOK_PRE_LLAMA3:
        run_stage(w, ST_LLAMA3);
        break;
    case TOK_PRE_QWEN2:
        run_stage(w, ST_QWEN2);
        break;
    case TOK_PRE_DEFAULT:
        run_stage(w, ST_PUNCT);
        run_stage(w, ST_GPT2);
        run_stage(w, ST_NUMBERS);
        run_stage(w, ST_DIGIT3);
        break;
    }
}

/* ---------------------------------------------------------------- merge loop */

static void try_pair(const struct tokenizer *t, struct bpe_work *w, int left, int right) {
    if (left < 0 || right < 0)
        return;
    const struct tok_sym *l = &w->syms[left], *r = &w->syms[right];
    int32_t rank = tok_merge_rank(t, w->word + l->off, l->n, w->word + r->off, r->n);
    if (rank < 0)
        return;
    const struct tok_pair p = {.rank = rank, .left = left, .right = right, .size = l->n + r->n};
    if (!tok_heap_push(&w->heap, p))
        w->oom = true; /* merge_word fails after its loop */
}

static int emit_symbol(const struct tokenizer *t, const char *s, size_t n, struct tok_ids *ids,
                       struct adakv_err *e) {
    int32_t id = tok_lookup(t, s, n);
    if (id >= 0)
        return tok_ids_push(ids, id, e);
    for (size_t i = 0; i < n; i++) {
        id = tok_lookup(t, s + i, 1);
        if (id >= 0 && tok_ids_push(ids, id, e))
            return -1;
    }
    return 0;
}

static int merge_word(const struct tokenizer *t, struct bpe_work *w, size_t wlen,
                      struct tok_ids *ids, struct adakv_err *e) {
    if (t->ignore_merges) {
        int32_t id = tok_lookup(t, w->word, wlen);
        if (id >= 0)
            return tok_ids_push(ids, id, e);
    }
    if (wlen > w->syms_cap) {
        struct tok_sym *ns = realloc(w->syms, wlen * sizeof *ns);
        if (!ns)
            return err_set(e, "tokenizer: out of memory");
        w->syms = ns;
        w->syms_cap = wlen;
    }
    int nsym = 0;
    for (size_t off = 0; off < wlen;) {
        size_t n = unicode_len_utf8((unsigned char)w->word[off]);
        if (n > wlen - off)
            n = wlen - off;
        w->syms[nsym] =
            (struct tok_sym){nsym - 1, off + n == wlen ? -1 : nsym + 1, (uint32_t)off, (uint32_t)n};
        nsym++;
        off += n;
    }
    w->heap.n = 0;
    for (int i = 1; i < nsym; i++)
        try_pair(t, w, i - 1, i);
    while (w->heap.n > 0 && !w->oom) {
        const struct tok_pair b = tok_heap_pop(&w->heap);
        if (!tok_sym_merge(w->syms, b))
            continue;
        try_pair(t, w, w->syms[b.left].prev, b.left);
        try_pair(t, w, b.left, w->syms[b.left].next);
    }
    if (w->oom)
        return err_set(e, "tokenizer: out of memory");
    for (int i = 0; i >= 0 && i < nsym; i = w->syms[i].next)
        if (w->syms[i].n && emit_symbol(t, w->word + w->syms[i].off, w->syms[i].n, ids, e))
            return -1;
    return 0;
}

/* ---------------------------------------------------------------- driver */

static void work_free(struct bpe_work *w) {
    free(w->cpt);
    free(w->flags);
    free(w->a.v);
    free(w->b.v);
    free(w->word);
    free(w->syms);
    free(w->heap.v);
}

int tok_bpe_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_ids *ids,
                   struct adakv_err *e) {
    if (len == 0)
        return 0;
    struct bpe_work w = {0};
    int rc = -1;
    w.cpt = malloc(len * sizeof *w.cpt);
    w.flags = malloc(len * sizeof *w.flags);
    if (!w.cpt || !w.flags) {
        err_set(e, "tokenizer: out of memory for a %zu-byte text", len);
        goto done;
    }
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)text;
    for (size_t i = 0; i < len; n++) {
        size_t adv;
        w.cpt[n] = unicode_decode_lenient(p + i, len - i, &adv);
        w.flags[n] = unicode_cpt_flags(w.cpt[n]);
        i += adv;
    }
    lens_push(&w, &w.a, n);
    pretokenize(t, &w);
    if (w.oom) {
        err_set(e, "tokenizer: out of memory");
        goto done;
    }

    /* Byte -> alphabet code point, pre-encoded as UTF-8 (1 or 2 bytes). */
    char alpha[256][2];
    unsigned char alpha_len[256];
    for (unsigned b = 0; b < 256; b++)
        alpha_len[b] = (unsigned char)unicode_encode(unicode_byte_to_cpt((uint8_t)b), alpha[b]);

    size_t start = 0;
    for (size_t k = 0; k < w.a.n; k++) {
        size_t end = start + w.a.v[k];
        size_t need = (end - start) * 8; /* <= 4 UTF-8 bytes per code point, <= 2 per byte */
        if (need > w.word_cap) {
            char *nw = realloc(w.word, need);
            if (!nw) {
                err_set(e, "tokenizer: out of memory");
                goto done;
            }
            w.word = nw;
            w.word_cap = need;
        }
        size_t wl = 0;
        for (size_t i = start; i < end; i++) {
            char u[4];
            size_t ul = unicode_encode(w.cpt[i], u);
            for (size_t j = 0; j < ul; j++) {
                unsigned char b = (unsigned char)u[j];
                memcpy(w.word + wl, alpha[b], alpha_len[b]);
                wl += alpha_len[b];
            }
        }
        if (merge_word(t, &w, wl, ids, e))
            goto done;
        start = end;
    }
    rc = 0;
done:
    work_free(&w);
    return rc;
}
