/* The RULER-style task generator and scorer of adakv-eval (tools/eval-tasks.c), without a
 * model: a fixture haystack of regular sentences and a counter that counts words stand in for
 * the licence texts and the tokenizer, so depths and lengths can be checked exactly. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval-tasks.h"
#include "test-env.h"

/* ==== fixture: 400 five-word sentences, "Sentence wordab follows wordac quietly." ==== */

#define FIX_SENTENCES 400

static void fixture_word(int i, char *buf) {
    snprintf(buf, 8, "word%c%c", 'a' + i / 26 % 26, 'a' + i % 26);
}

static struct eval_haystack fixture(void) {
    static char text[FIX_SENTENCES * 48];
    size_t n = 0;
    for (int i = 0; i < FIX_SENTENCES; i++) {
        char a[8], b[8];
        fixture_word(i % 300, a);
        fixture_word((i * 7 + 3) % 300, b);
        n += (size_t)snprintf(text + n, sizeof text - n, "%sSentence %s follows\n%s quietly.",
                              i ? "  " : "", a, b);
    }
    struct eval_haystack h;
    struct adakv_err e = {{0}};
    cr_assert_eq(eval_haystack_init(&h, text, n, &e), 0, "%s", e.msg);
    return h;
}

/* one token per space-separated word of the three parts */
static size_t words(const char *s) {
    size_t n = 0;
    for (bool in = false; *s; s++) {
        bool sp = *s == ' ' || *s == '\n';
        n += !sp && !in;
        in = !sp;
    }
    return n;
}

static int count_words(void *user, const char *context, const char *question, const char *reply,
                       size_t *n_tokens, struct adakv_err *e) {
    int *calls = user;
    if (calls)
        (*calls)++;
    *n_tokens = words(context) + words(question) + words(reply);
    return 0;
}

static struct eval_case make(const struct eval_haystack *h, enum eval_task t, int length, int depth,
                             int sample, uint64_t seed) {
    struct eval_case c;
    struct adakv_err e = {{0}};
    cr_assert_eq(eval_case_make(h, t, length, depth, sample, seed, count_words, NULL, &c, &e), 0,
                 "%s", e.msg);
    return c;
}

static int occurrences(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* ==== determinism ==== */

static bool same_case(const struct eval_case *a, const struct eval_case *b) {
    if (strcmp(a->context, b->context) || strcmp(a->question, b->question) ||
        strcmp(a->reply, b->reply) || a->n_expected != b->n_expected)
        return false;
    for (int i = 0; i < a->n_expected; i++)
        if (strcmp(a->expected[i], b->expected[i]))
            return false;
    return true;
}

Test(eval_tasks, same_seed_same_case_other_seed_or_sample_another) {
    struct eval_haystack h = fixture();
    for (int t = 0; t < EVAL_TASK_COUNT; t++) {
        int depth = eval_task_has_depth(t) ? 40 : -1;
        struct eval_case a = make(&h, t, 700, depth, 0, 7), b = make(&h, t, 700, depth, 0, 7);
        struct eval_case c = make(&h, t, 700, depth, 0, 8), d = make(&h, t, 700, depth, 1, 7);
        cr_expect(same_case(&a, &b), "%s: two runs with seed 7 differ", eval_task_name(t));
        cr_expect(!same_case(&a, &c), "%s: seeds 7 and 8 give the same case", eval_task_name(t));
        cr_expect(!same_case(&a, &d), "%s: samples 0 and 1 give the same case", eval_task_name(t));
        eval_case_free(&a);
        eval_case_free(&b);
        eval_case_free(&c);
        eval_case_free(&d);
    }
    eval_haystack_free(&h);
}

/* ==== the needle: once, at the requested depth, between sentences ==== */

Test(eval_tasks, needle_once_at_depth_on_a_sentence_boundary) {
    struct eval_haystack h = fixture();
    const enum eval_task tasks[] = {EVAL_TASK_NIAH_NUMBER, EVAL_TASK_NIAH_WORD,
                                    EVAL_TASK_NIAH_UUID};
    for (int ti = 0; ti < 3; ti++) {
        for (int depth = 0; depth <= 100; depth += 10) {
            struct eval_case c = make(&h, tasks[ti], 1000, depth, 2, 3);
            const char *name = eval_task_name(tasks[ti]);
            cr_assert_eq(c.n_expected, 1);
            cr_expect_eq(occurrences(c.context, c.expected[0]), 1, "%s at %d%%: value %s", name,
                         depth, c.expected[0]);
            cr_expect_eq(occurrences(c.context, "One of the special magic"), 1);
            /* find it independently of needle_at */
            const char *at = strstr(c.context, "One of the special magic");
            cr_assert(at);
            size_t off = (size_t)(at - c.context);
            cr_expect_eq(off, c.needle_at[c.depth_needle]);
            /* depth = the share of the filler before the needle (its own bytes not counted) */
            const char *end = strchr(at, '.');
            while (end && end[1] != ' ' && end[1] != '\0')
                end = strchr(end + 1, '.'); /* the needle's own full stop */
            cr_assert(end);
            double hay = (double)(c.hay_end - c.hay_begin) - (double)(end + 2 - at);
            double got = (off - c.hay_begin) / hay;
            /* a fixture sentence is ~45 bytes: the nearest boundary is at most one away */
            cr_expect(got > depth / 100.0 - 50 / hay && got < depth / 100.0 + 50 / hay,
                      "%s at %d%%: needle at %.3f of the haystack", name, depth, got);
            /* a boundary: haystack start or after "quietly. ", and a sentence (or the end) after */
            cr_expect(off == c.hay_begin || !strncmp(at - 9, "quietly. ", 9),
                      "%s at %d%%: not after a sentence end: '%.20s'", name, depth, at - 12);
            cr_expect(end[1] == '\0' || !strncmp(end + 1, " Sentence", 9),
                      "%s at %d%%: '%.20s' follows the needle", name, depth, end);
            cr_expect(strstr(c.question, "special magic") && !strstr(c.context, c.question));
            eval_case_free(&c);
        }
    }
    eval_haystack_free(&h);
}

/* Pass key and QA insert one unit (sentences of their own) at the depth: where it starts, over
 * the haystack without it, is the requested fraction to within one fixture sentence. */
static void expect_at_depth(const struct eval_case *c, int depth, const char *name) {
    cr_assert_eq(c->n_needles, 1, "%s", name);
    cr_assert_eq(c->depth_needle, 0);
    size_t off = c->needle_at[0], len = c->needle_len[0];
    double hay = (double)(c->hay_end - c->hay_begin - len - 1); /* and its one extra space */
    double got = (double)(off - c->hay_begin) / hay;
    cr_expect(got > depth / 100.0 - 50 / hay && got < depth / 100.0 + 50 / hay,
              "%s at %d%%: inserted at %.3f of the haystack", name, depth, got);
    cr_expect(off == c->hay_begin || !strncmp(c->context + off - 9, "quietly. ", 9),
              "%s at %d%%: not after a sentence end", name, depth);
    const char *after = c->context + off + len;
    cr_expect(*after == '\0' || !strncmp(after, " Sentence", 9), "%s at %d%%: '%.20s' follows",
              name, depth, after);
}

Test(eval_tasks, passkey_said_twice_at_the_depth) {
    struct eval_haystack h = fixture();
    for (int depth = 0; depth <= 100; depth += 11) {
        struct eval_case c = make(&h, EVAL_TASK_PASSKEY, 1000, depth, 0, 2);
        cr_assert_eq(c.n_expected, 1);
        cr_expect_eq(strlen(c.expected[0]), 5, "a 5-digit key: %s", c.expected[0]);
        char needle[96];
        snprintf(needle, sizeof needle, "The pass key is %s. Remember it. %s is the pass key.",
                 c.expected[0], c.expected[0]);
        cr_expect_eq(occurrences(c.context, needle), 1, "%s", needle);
        cr_expect_eq(occurrences(c.context, c.expected[0]), 2, "only the needle holds the key");
        cr_expect(!strncmp(c.context + c.needle_at[0], needle, strlen(needle)));
        cr_expect_eq(c.needle_len[0], strlen(needle));
        expect_at_depth(&c, depth, "passkey");
        cr_expect_str_eq(c.question, "What is the pass key?");
        cr_expect(!strstr(c.context, c.question), "the context never holds the question");
        eval_case_free(&c);
    }
    eval_haystack_free(&h);
}

Test(eval_tasks, qa_asks_one_fact_of_its_passage) {
    struct eval_haystack h = fixture();
    int asked[3] = {0};
    for (int s = 0; s < 30; s++) {
        int depth = (s * 37) % 101;
        struct eval_case c = make(&h, EVAL_TASK_QA, 900, depth, s, 1);
        cr_assert_eq(c.n_expected, 1);
        expect_at_depth(&c, depth, "qa");
        char first[32], last[32], town[32], trade[32];
        int year = 0;
        cr_assert_eq(sscanf(c.context + c.needle_at[0],
                            "%31s %31s was born in the town of %31s in %d. For many years", first,
                            last, town, &year),
                     4, "'%.100s'", c.context + c.needle_at[0]);
        const char *w = strstr(c.context + c.needle_at[0], " worked there as a ");
        cr_assert(w);
        cr_assert_eq(sscanf(w, " worked there as a %31[a-z ]", trade), 1);
        cr_expect(year >= 1701 && year <= 1899, "%d", year);
        char person[80], ys[8];
        snprintf(person, sizeof person, "%s %s", first, last);
        snprintf(ys, sizeof ys, "%d", year);
        cr_expect(strstr(c.question, person), "'%s' does not name %s", c.question, person);
        cr_expect(!strstr(c.context, c.question), "the context never holds the question");
        if (strstr(c.question, "which town")) {
            cr_expect_str_eq(c.expected[0], town);
            asked[0]++;
        } else if (strstr(c.question, "which year")) {
            cr_expect_str_eq(c.expected[0], ys);
            asked[1]++;
        } else {
            cr_expect(strstr(c.question, "work as"), "%s", c.question);
            cr_expect_str_eq(c.expected[0], trade);
            asked[2]++;
        }
        /* the answer is in the passage, and nowhere else in the prompt */
        cr_expect_eq(occurrences(c.context, c.expected[0]), 1, "%s", c.expected[0]);
        eval_case_free(&c);
    }
    cr_expect(asked[0] && asked[1] && asked[2], "town %d, year %d, trade %d times", asked[0],
              asked[1], asked[2]);
    eval_haystack_free(&h);
}

/* ==== lengths: the longest prompt that fits ==== */

Test(eval_tasks, prompt_fills_the_length_without_exceeding_it) {
    struct eval_haystack h = fixture();
    const int lengths[] = {300, 1024, 2048, 4096}; /* 4096 wraps the 2,000-word fixture */
    for (int t = 0; t < EVAL_TASK_COUNT; t++) {
        for (int li = 0; li < 4; li++) {
            int calls = 0, depth = eval_task_has_depth(t) ? 60 : -1;
            struct eval_case c;
            struct adakv_err e = {{0}};
            int rc = eval_case_make(&h, t, lengths[li], depth, 0, 1, count_words, &calls, &c, &e);
            if (t == EVAL_TASK_CWE && lengths[li] > 2048) { /* 302 fixture words, 3 each */
                cr_expect_eq(rc, -1, "cwe at %d: the fixture has too few words", lengths[li]);
                cr_expect(strstr(e.msg, "distinct words"), "%s", e.msg);
                eval_case_free(&c);
                continue;
            }
            cr_assert_eq(rc, 0, "%s", e.msg);
            size_t n = 0;
            count_words(NULL, c.context, c.question, c.reply, &n, &e);
            cr_expect_eq(n, c.n_tokens);
            /* one more word adds one token; one more cwe word adds 3 entries and may raise the
             * frequent words' count by one each: 13 entries of 2 tokens */
            size_t slack = t == EVAL_TASK_CWE ? 26 : 0;
            cr_expect(n <= (size_t)lengths[li] && n + slack >= (size_t)lengths[li],
                      "%s at %d: %zu tokens", eval_task_name(t), lengths[li], n);
            cr_expect(calls < 40, "%d counter calls: not a bisection", calls);
            eval_case_free(&c);
        }
    }
    eval_haystack_free(&h);
}

Test(eval_tasks, bad_depth_and_short_length_are_errors) {
    struct eval_haystack h = fixture();
    struct eval_case c;
    struct adakv_err e = {{0}};
    cr_expect_eq(
        eval_case_make(&h, EVAL_TASK_NIAH_NUMBER, 500, 101, 0, 1, count_words, NULL, &c, &e), -1);
    cr_expect(strstr(e.msg, "depth 101"), "%s", e.msg);
    eval_case_free(&c);
    cr_expect_eq(eval_case_make(&h, EVAL_TASK_CWE, 500, 50, 0, 1, count_words, NULL, &c, &e), -1);
    cr_expect(strstr(e.msg, "no depth"), "%s", e.msg);
    eval_case_free(&c);
    cr_expect_eq(eval_case_make(&h, EVAL_TASK_VT, 20, 50, 0, 1, count_words, NULL, &c, &e), -1);
    cr_expect(strstr(e.msg, "too short"), "%s", e.msg);
    eval_case_free(&c);
    enum eval_task t;
    cr_expect_eq(eval_task_parse("niah-uuid", &t), 0);
    cr_expect_eq(t, EVAL_TASK_NIAH_UUID);
    cr_expect_eq(eval_task_parse("niah", &t), -1);
    eval_haystack_free(&h);
}

/* ==== the other tasks' structure ==== */

Test(eval_tasks, multi_needle_tasks_ask_what_they_hide) {
    struct eval_haystack h = fixture();
    struct eval_case k = make(&h, EVAL_TASK_MULTIKEY, 900, 30, 0, 5);
    cr_expect_eq(k.n_needles, 4);
    cr_expect_eq(k.n_expected, 1);
    cr_expect_eq(occurrences(k.context, "One of the special magic numbers for "), 4);
    cr_expect_eq(occurrences(k.context, k.expected[0]), 1);
    /* the asked key is the depth needle's */
    const char *needle = k.context + k.needle_at[k.depth_needle];
    char key[64];
    cr_assert_eq(sscanf(needle, "One of the special magic numbers for %63s", key), 1);
    cr_expect(strstr(k.question, key), "question '%s' does not ask for %s", k.question, key);
    char sentence[160];
    snprintf(sentence, sizeof sentence, "One of the special magic numbers for %s is: %s.", key,
             k.expected[0]);
    cr_expect(!strncmp(needle, sentence, strlen(sentence)), "the depth needle is '%.60s'", needle);

    struct eval_case v = make(&h, EVAL_TASK_MULTIVALUE, 900, 30, 0, 5);
    cr_expect_eq(v.n_expected, 4);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(occurrences(v.context, v.expected[i]), 1, "%s", v.expected[i]);
    sscanf(v.context + v.needle_at[0], "One of the special magic numbers for %63s", key);
    cr_expect_eq(occurrences(v.context, key), 4, "one key, four values");

    struct eval_case q = make(&h, EVAL_TASK_MULTIQUERY, 900, 30, 0, 5);
    cr_expect_eq(q.n_expected, 2);
    cr_expect(strstr(q.question, " and "), "%s", q.question);
    cr_expect(strcmp(q.expected[0], q.expected[1]));
    for (int i = 0; i < 2; i++)
        cr_expect_eq(occurrences(q.context, q.expected[i]), 1);
    eval_case_free(&k);
    eval_case_free(&v);
    eval_case_free(&q);
    eval_haystack_free(&h);
}

Test(eval_tasks, variable_chain_in_order_from_the_depth) {
    struct eval_haystack h = fixture();
    for (int depth = 0; depth <= 100; depth += 50) {
        struct eval_case c = make(&h, EVAL_TASK_VT, 800, depth, 0, 9);
        cr_assert_eq(c.n_expected, 5);
        char value[16];
        cr_assert_eq(sscanf(c.question,
                            "Question: Find all variables that are assigned the "
                            "value %15s",
                            value),
                     1);
        char first[64], hop[64];
        snprintf(first, sizeof first, "VAR %s = %s.", c.expected[0], value);
        const char *prev = strstr(c.context, first);
        cr_assert(prev, "no '%s'", first);
        cr_expect_eq((size_t)(prev - c.context), c.needle_at[c.depth_needle]);
        for (int i = 1; i < 5; i++) {
            snprintf(hop, sizeof hop, "VAR %s = VAR %s.", c.expected[i], c.expected[i - 1]);
            const char *at = strstr(c.context, hop);
            cr_expect(at && at > prev, "hop %d '%s' missing or before the one it copies", i, hop);
            prev = at ? at : prev;
        }
        eval_case_free(&c);
    }
    eval_haystack_free(&h);
}

Test(eval_tasks, common_words_are_the_most_frequent) {
    struct eval_haystack h = fixture();
    struct eval_case c = make(&h, EVAL_TASK_CWE, 1000, -1, 0, 4);
    cr_assert_eq(c.n_expected, 10);
    char *list = malloc(strlen(c.context) + 2); /* a space after the last entry too */
    cr_assert(list);
    sprintf(list, "%s ", c.context);
    int min_common = 1 << 30, max_other = 0;
    for (int i = 0; i < h.n_vocab; i++) {
        char w[32];
        snprintf(w, sizeof w, ". %s ", h.vocab[i]); /* "12. word 13." */
        int n = occurrences(list, w);
        bool common = false;
        for (int j = 0; j < 10; j++)
            common |= !strcmp(c.expected[j], h.vocab[i]);
        if (common)
            min_common = n < min_common ? n : min_common;
        else
            max_other = n > max_other ? n : max_other;
    }
    cr_expect(max_other == 3 && min_common >= 6, "frequent words %d times, others %d", min_common,
              max_other);
    cr_expect(!strncmp(c.context + c.hay_begin, "1. ", 3));
    free(list);
    eval_case_free(&c);
    eval_haystack_free(&h);
}

/* ==== scoring ==== */

Test(eval_tasks, scoring_right_partial_wrong_case_and_whitespace) {
    char *four[] = {"1234567", "7654321", "amber-otter", "ABCDE"};
    struct eval_score s;
    eval_score_answer("1234567, 7654321, amber-otter and ABCDE.", four, 4, &s);
    cr_expect(s.correct && s.n_found == 4 && s.score == 1.0);
    eval_score_answer("1234567 and 7654321", four, 4, &s);
    cr_expect(!s.correct && s.n_found == 2 && s.score == 0.5);
    eval_score_answer("I do not know.", four, 4, &s);
    cr_expect(!s.correct && s.n_found == 0 && s.score == 0.0);
    eval_score_answer("", four, 4, &s);
    cr_expect(!s.correct && s.score == 0.0);
    eval_score_answer("  AMBER-OTTER\n abcde 1234567\t7654321 ", four, 4, &s);
    cr_expect(s.correct, "case is ignored");
    char *spaced[] = {"New  York"};
    eval_score_answer("it is new\nyork", spaced, 1, &s);
    cr_expect(s.correct, "whitespace runs compare as one space");
    eval_score_answer("newyork", spaced, 1, &s);
    cr_expect(!s.correct, "but not as no space");
    char *one[] = {"123"};
    eval_score_answer("1 2 3", one, 1, &s);
    cr_expect(!s.correct);
}

/* ==== the shipped haystack: keys and word values never occur in it ==== */

static char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    cr_assert(buf && fread(buf, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    buf[len] = '\0';
    *n = (size_t)len;
    return buf;
}

Test(eval_tasks, licence_haystack_has_no_key_words) {
    char path[4096];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/tests/data/text/fidelity-en.txt", env("ADAKV_SRCDIR"));
    char *text = read_file(path, &n);
    struct eval_haystack h;
    struct adakv_err e = {{0}};
    cr_assert_eq(eval_haystack_init(&h, text, n, &e), 0, "%s", e.msg);
    cr_expect(h.n_vocab > 500, "%d distinct words", h.n_vocab); /* 7,340 words of GPL-2 */
    int sentences = 0;
    for (int i = 0; i < h.n_word; i++)
        sentences += h.ends_sent[i];
    cr_expect(sentences > 180, "%d sentences in %d words", sentences, h.n_word);
    for (int s = 0; s < 60; s++) {
        struct eval_case c = make(&h, EVAL_TASK_MULTIKEY, 400, 50, s, 1);
        for (int k = 0; k < c.n_needles; k++) {
            char key[64];
            sscanf(c.context + c.needle_at[k], "One of the special magic numbers for %63s", key);
            for (char *w = strtok(key, "-"); w; w = strtok(NULL, "-"))
                for (int v = 0; v < h.n_vocab; v++)
                    cr_expect(strcmp(w, h.vocab[v]), "key word '%s' is in the haystack", w);
        }
        eval_case_free(&c);
    }
    /* QA's invented people and towns are not in the licence either (the answer must come from
     * the passage) */
    for (int s = 0; s < 60; s++) {
        struct eval_case c = make(&h, EVAL_TASK_QA, 400, 50, s, 1);
        char first[32], last[32], town[32];
        cr_assert_eq(sscanf(c.context + c.needle_at[0], "%31s %31s was born in the town of %31s",
                            first, last, town),
                     3);
        cr_expect_eq(occurrences(text, last), 0, "'%s' is in the licence", last);
        cr_expect_eq(occurrences(text, town), 0, "'%s' is in the licence", town);
        eval_case_free(&c);
    }
    eval_haystack_free(&h);
    free(text);
}
