/* The haystack of eval-tasks.h: prose cut into words, sentence ends and the vocabulary cwe's
 * word lists draw from. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "eval-tasks.h"
#include "eval-text.h"

/* A sentence ends after a word like "works." or "it?" (closing quotes and brackets allowed)
 * when the next word starts with a capital, a digit or a bracket (a section number, "(a)"):
 * "0." list numbers, "e.g." and "Inc.," do not end one. */
static bool word_ends_sentence(const char *w, size_t n, const char *next) {
    while (n && (w[n - 1] == '"' || w[n - 1] == '\'' || w[n - 1] == ')'))
        n--;
    if (n < 3 || (w[n - 1] != '.' && w[n - 1] != '?' && w[n - 1] != '!'))
        return false;
    if (memchr(w, '.', n - 1) || !isalpha((unsigned char)w[n - 2]))
        return false;
    return next && (isupper((unsigned char)next[0]) || isdigit((unsigned char)next[0]) ||
                    next[0] == '"' || next[0] == '(');
}

/* The word stripped of surrounding punctuation, if it is lowercase letters only, >= 4 long. */
static bool vocab_word(const char *w, size_t n, char *out, size_t cap) {
    while (n && !isalpha((unsigned char)w[0]))
        w++, n--;
    while (n && !isalpha((unsigned char)w[n - 1]))
        n--;
    if (n < 4 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)w[i]))
            return false;
    memcpy(out, w, n);
    out[n] = '\0';
    return true;
}

static int collect_vocab(struct eval_haystack *h, struct adakv_err *e) {
    h->vocab = malloc((size_t)h->n_word * sizeof *h->vocab);
    if (!h->vocab)
        return err_set(e, "haystack: out of memory");
    for (int i = 0; i < h->n_word; i++) {
        char w[64];
        if (!vocab_word(h->text + h->word[i], h->word_len[i], w, sizeof w))
            continue;
        bool seen = false; /* quadratic, but once per run over ~2,000 distinct words */
        for (int j = 0; j < h->n_vocab && !seen; j++)
            seen = !strcmp(h->vocab[j], w);
        if (!seen && !(h->vocab[h->n_vocab++] = xstrdup(w)))
            return err_set(e, "haystack: out of memory");
    }
    return 0;
}

int eval_haystack_init(struct eval_haystack *h, const char *text, size_t len, struct adakv_err *e) {
    *h = (struct eval_haystack){0};
    h->text = malloc(len + 1);
    h->word = malloc((len / 2 + 1) * sizeof *h->word);
    h->word_len = malloc(len / 2 + 1);
    h->ends_sent = malloc(len / 2 + 1);
    if (!h->text || !h->word || !h->word_len || !h->ends_sent)
        return err_set(e, "haystack: out of memory");
    for (size_t i = 0; i < len;) {
        while (i < len && is_space(text[i]))
            i++;
        size_t j = i;
        while (j < len && !is_space(text[j]))
            j++;
        if (j == i)
            break;
        size_t n = j - i > 255 ? 255 : j - i; /* a 255-byte "word" is noise either way */
        if (h->len)
            h->text[h->len++] = ' ';
        h->word[h->n_word] = h->len;
        h->word_len[h->n_word++] = (uint8_t)n;
        memcpy(h->text + h->len, text + i, n);
        h->len += n;
        i = j;
    }
    h->text[h->len] = '\0';
    int n_sent = 0;
    for (int i = 0; i < h->n_word; i++) {
        const char *next = i + 1 < h->n_word ? h->text + h->word[i + 1] : NULL;
        h->ends_sent[i] = word_ends_sentence(h->text + h->word[i], h->word_len[i], next);
        n_sent += h->ends_sent[i];
    }
    if (n_sent < 2)
        return err_set(e, "haystack: %d sentences found, need at least 2", n_sent);
    return collect_vocab(h, e);
}

void eval_haystack_free(struct eval_haystack *h) {
    for (int i = 0; i < h->n_vocab; i++)
        free(h->vocab[i]);
    free(h->vocab);
    free(h->text);
    free(h->word);
    free(h->word_len);
    free(h->ends_sent);
    *h = (struct eval_haystack){0};
}
