/* Text <-> ids: special-token partition and encode dispatch to BPE/SPM, token pieces, and
 * whole-sequence decode, following llama.cpp's llama_vocab::impl::tokenize, token_to_piece and
 * detokenize (read as facts). */
#include "tokenizer-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- encode */

/* A piece of the input: raw text still to be tokenized, or an already recognised token. */
struct fragment {
    int32_t token; /* -1 for raw text */
    size_t off, len;
};

struct frag_list {
    struct fragment *v;
    size_t n, cap;
};

static int frag_push(struct frag_list *l, struct fragment fr, struct adakv_err *e) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct fragment *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return err_set(e, "tokenizer: out of memory");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = fr;
    return 0;
}

/* Splits the raw fragments at every occurrence of each special token's text, longest tokens
 * first, leftmost occurrence first (llama.cpp's tokenizer_st_partition). */
static int partition_special(const struct tokenizer *t, const char *text, size_t len,
                             bool parse_special, struct frag_list *frags, struct adakv_err *e) {
    struct frag_list next = {0};
    if (len && frag_push(frags, (struct fragment){-1, 0, len}, e))
        return -1;
    for (size_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        const struct tok_token *tk = &t->tokens[id];
        if (!parse_special && (tk->attr & (TOKEN_ATTR_CONTROL | TOKEN_ATTR_UNKNOWN)))
            continue; /* user-defined tokens are matched even then */
        bool any = false;
        for (size_t i = 0; i < frags->n && !any; i++)
            any = frags->v[i].token < 0 &&
                  memmem(text + frags->v[i].off, frags->v[i].len, tk->text, tk->len);
        if (!any)
            continue;
        next.n = 0;
        for (size_t i = 0; i < frags->n; i++) {
            struct fragment fr = frags->v[i];
            if (fr.token >= 0) {
                if (frag_push(&next, fr, e))
                    goto fail;
                continue;
            }
            size_t off = fr.off, end = fr.off + fr.len;
            while (off < end) {
                const char *m = memmem(text + off, end - off, tk->text, tk->len);
                if (!m)
                    break;
                size_t at = (size_t)(m - text);
                if (at > off && frag_push(&next, (struct fragment){-1, off, at - off}, e))
                    goto fail;
                if (frag_push(&next, (struct fragment){id, at, tk->len}, e))
                    goto fail;
                off = at + tk->len;
            }
            if (off < end && frag_push(&next, (struct fragment){-1, off, end - off}, e))
                goto fail;
        }
        struct frag_list tmp = *frags;
        *frags = next;
        next = tmp;
    }
    free(next.v);
    return 0;
fail:
    free(next.v);
    return -1;
}

int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, bool add_special,
                     bool parse_special, int32_t **out, size_t *n_out, struct adakv_err *e) {
    struct tok_ids ids = {*out, 0, 0};
    struct frag_list frags = {0};
    char *buf = NULL; /* SPM: the fragment with its space prefix */
    size_t buf_cap = 0;
    *n_out = 0;
    if (partition_special(t, text, len, parse_special, &frags, e))
        goto fail;
    if (add_special && t->add_bos) {
        if (t->bos < 0) {
            err_set(e, "tokenizer: the model adds BOS but has no BOS token");
            goto fail;
        }
        if (tok_ids_push(&ids, t->bos, e))
            goto fail;
    }
    /* SPM puts a space before raw text at the start and after every special token. */
    bool prev_special = true;
    for (size_t i = 0; i < frags.n; i++) {
        const struct fragment *fr = &frags.v[i];
        if (fr->token >= 0) {
            if (tok_ids_push(&ids, fr->token, e))
                goto fail;
            prev_special = true;
            continue;
        }
        if (t->model == TOK_MODEL_BPE) {
            if (tok_bpe_encode(t, text + fr->off, fr->len, &ids, e))
                goto fail;
            continue;
        }
        size_t need = fr->len + 1;
        if (need > buf_cap) {
            char *nb = realloc(buf, need);
            if (!nb) {
                err_set(e, "tokenizer: out of memory");
                goto fail;
            }
            buf = nb;
            buf_cap = need;
        }
        size_t n = 0;
        if (t->add_space_prefix && prev_special)
            buf[n++] = ' ';
        memcpy(buf + n, text + fr->off, fr->len);
        if (tok_spm_encode(t, buf, n + fr->len, &ids, e))
            goto fail;
        prev_special = false;
    }
    if (add_special && t->add_eos) {
        if (t->eos < 0) {
            err_set(e, "tokenizer: the model adds EOS but has no EOS token");
            goto fail;
        }
        if (tok_ids_push(&ids, t->eos, e))
            goto fail;
    }
    free(buf);
    free(frags.v);
    *out = ids.v;
    *n_out = ids.n;
    return 0;
fail:
    free(buf);
    free(frags.v);
    *out = ids.v;
    *n_out = 0;
    return -1;
}

/* ---------------------------------------------------------------- pieces and decode */

struct sink {
    char *buf;
    size_t cap, n;
};

static void sink_put(struct sink *s, const void *p, size_t k) {
    if (s->n + k <= s->cap)
        memcpy(s->buf + s->n, p, k);
    s->n += k;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Byte of an SPM "<0xNN>" token (strtol on the two characters after "<0x", like llama.cpp). */
static unsigned char spm_byte(const struct tok_token *tk) {
    unsigned v = 0;
    for (size_t i = 3; i < 5 && i < tk->len; i++) {
        int d = hex_digit(tk->text[i]);
        if (d < 0)
            break;
        v = v * 16 + (unsigned)d;
    }
    return (unsigned char)v;
}

/* Vocab alphabet -> bytes. A code point outside GPT-2's byte alphabet is written as
 * "[UNK_BYTE_0x<its UTF-8 in hex><token text>]", as llama_decode_text does. */
static void bpe_decode_text(const struct tok_token *tk, struct sink *s) {
    const unsigned char *p = (const unsigned char *)tk->text;
    size_t i = 0;
    while (i < tk->len) {
        size_t adv;
        uint32_t cpt = unicode_decode_lenient(p + i, tk->len - i, &adv);
        i += adv;
        int b = unicode_cpt_to_byte(cpt);
        if (b >= 0) {
            unsigned char c = (unsigned char)b;
            sink_put(s, &c, 1);
            continue;
        }
        char u[4], hex[3];
        size_t k = unicode_encode(cpt, u);
        sink_put(s, "[UNK_BYTE_0x", 12);
        for (size_t j = 0; j < k; j++) {
            snprintf(hex, sizeof hex, "%02x", (unsigned char)u[j]);
            sink_put(s, hex, 2);
        }
        sink_put(s, tk->text, tk->len);
        sink_put(s, "]", 1);
    }
}

static void spm_unescape(const struct tok_token *tk, struct sink *s) {
    size_t i = 0;
    while (i < tk->len) {
        if (i + 3 <= tk->len && memcmp(tk->text + i, "\xe2\x96\x81", 3) == 0) {
            sink_put(s, " ", 1);
            i += 3;
        } else {
            sink_put(s, tk->text + i, 1);
            i++;
        }
    }
}

static void piece_to_sink(const struct tokenizer *t, int32_t id, bool special, struct sink *s) {
    if (id < 0 || id >= t->n_vocab)
        return;
    const struct tok_token *tk = &t->tokens[id];
    unsigned a = tk->attr;
    if (!special && (a & (TOKEN_ATTR_UNKNOWN | TOKEN_ATTR_CONTROL)))
        return;
    if (a & (TOKEN_ATTR_UNKNOWN | TOKEN_ATTR_CONTROL | TOKEN_ATTR_USER_DEFINED)) {
        sink_put(s, tk->text, tk->len);
    } else if (a & TOKEN_ATTR_NORMAL) {
        if (t->model == TOK_MODEL_BPE)
            bpe_decode_text(tk, s);
        else
            spm_unescape(tk, s);
    } else if (a & TOKEN_ATTR_BYTE) {
        unsigned char c = spm_byte(tk); /* BPE byte tokens use the same <0xNN> form */
        sink_put(s, &c, 1);
    }
    /* unused and undefined tokens render nothing */
}

size_t tokenizer_piece(const struct tokenizer *t, int32_t id, bool special, char *buf, size_t cap) {
    struct sink s = {buf, cap, 0};
    piece_to_sink(t, id, special, &s);
    return s.n;
}

/* llama.cpp's clean_spaces passes: " ?" " !" " ." " ," lose the space, " ' " loses both,
 * and " 's" " 'm" " 're" " 've" lose the space. */
static size_t clean_spaces(char *text, size_t total) {
    size_t n = total ? 1 : 0;
    for (size_t i = 1; i < total; i++) {
        char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            n--;
        text[n++] = x;
    }
    total = n;
    n = total ? 1 : 0;
    for (size_t i = 1; i < total; i++) {
        char x = text[i];
        if (x == '\'' && i + 1 < total && text[i - 1] == ' ' && text[i + 1] == ' ') {
            n--;
            text[++i] = '\0';
        }
        text[n++] = x;
    }
    total = n;
    n = total ? 1 : 0;
    for (size_t i = 1; i < total; i++) {
        char x = text[i];
        if (text[i - 1] == ' ' && x == '\'' && i + 1 < total) {
            char x1 = text[i + 1];
            if (x1 == 's' || x1 == 'm')
                n--;
            else if (i + 2 < total &&
                     ((x1 == 'r' && text[i + 2] == 'e') || (x1 == 'v' && text[i + 2] == 'e')))
                n--;
        }
        text[n++] = x;
    }
    return n;
}

int tokenizer_decode(const struct tokenizer *t, const int32_t *ids, size_t n, bool remove_special,
                     bool unparse_special, char **out, size_t *out_len, struct adakv_err *e) {
    bool remove_space = t->add_space_prefix;
    if (remove_special && t->add_bos && n > 0 && ids[0] == t->bos) {
        remove_space = false;
        ids++;
        n--;
    }
    if (remove_special && t->add_eos && n > 0 && ids[n - 1] == t->eos)
        n--;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += tokenizer_piece(t, ids[i], unparse_special, NULL, 0);
    char *buf = malloc(total + 1);
    if (!buf)
        return err_set(e, "tokenizer: out of memory for %zu decoded bytes", total);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = tokenizer_piece(t, ids[i], unparse_special, buf + o, total - o);
        /* Only the first piece loses one leading space (llama.cpp's lstrip = remove_space). */
        if (i == 0 && remove_space && k > 0 && buf[o] == ' ') {
            memmove(buf + o, buf + o + 1, k - 1);
            k--;
        }
        o += k;
    }
    if (t->clean_spaces)
        o = clean_spaces(buf, o);
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return 0;
}
