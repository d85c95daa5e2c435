/* RULER-style tasks (eval-tasks.h): the cases and their prompts; the haystack is cut in
 * eval-haystack.c and answers are scored in eval-score.c. Templates, needle sentences and the
 * metric follow RULER's scripts/data/synthetic/ (niah.py, variable_tracking.py,
 * common_words_extraction.py) and scripts/eval/synthetic/constants.py (string_match_all). */
#include "eval-tasks.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "eval-text.h"

/* ==== the task table ==== */

struct task_info {
    const char *name;
    bool has_depth;
    int answer_tokens;
};

static const struct task_info TASKS[EVAL_TASK_COUNT] = {
    [EVAL_TASK_NIAH_NUMBER] = {"niah-number", true, 32},
    [EVAL_TASK_NIAH_WORD] = {"niah-word", true, 32},
    [EVAL_TASK_NIAH_UUID] = {"niah-uuid", true, 48},
    [EVAL_TASK_MULTIKEY] = {"multikey", true, 32},
    [EVAL_TASK_MULTIVALUE] = {"multivalue", true, 64},
    [EVAL_TASK_MULTIQUERY] = {"multiquery", true, 48},
    [EVAL_TASK_VT] = {"vt", true, 32},
    [EVAL_TASK_CWE] = {"cwe", false, 96},
    [EVAL_TASK_PASSKEY] = {"passkey", true, 16},
    [EVAL_TASK_QA] = {"qa", true, 24},
};

const char *eval_task_name(enum eval_task t) {
    return (int)t >= 0 && t < EVAL_TASK_COUNT ? TASKS[t].name : "?";
}

int eval_task_parse(const char *s, enum eval_task *out) {
    for (int t = 0; t < EVAL_TASK_COUNT; t++)
        if (!strcmp(s, TASKS[t].name)) {
            *out = (enum eval_task)t;
            return 0;
        }
    return -1;
}

bool eval_task_has_depth(enum eval_task t) {
    return TASKS[t].has_depth;
}

int eval_task_answer_tokens(enum eval_task t) {
    return TASKS[t].answer_tokens;
}

/* ==== randomness: splitmix64, seeded per case so a case never depends on the others ==== */

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_next(uint64_t *s) {
    return mix64(*s += 0x9e3779b97f4a7c15ull);
}

/* uniform in [lo, hi] */
static int rng_int(uint64_t *s, int lo, int hi) {
    return lo + (int)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

/* uniform in [0, 1) */
static double rng_unit(uint64_t *s) {
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

static uint64_t case_seed(uint64_t seed, enum eval_task t, int length, int depth, int sample) {
    uint64_t s = mix64(seed ^ 0x52554c4552000000ull /* "RULER" */);
    s = mix64(s ^ (uint64_t)t);
    s = mix64(s ^ (uint64_t)(uint32_t)length);
    s = mix64(s ^ (uint64_t)(uint32_t)(depth + 1));
    return mix64(s ^ (uint64_t)(uint32_t)sample);
}

/* ==== keys and word values: "adjective-noun" as RULER draws them from wonderwords; words
 * chosen to be absent from licence prose (tests/test_eval_tasks.c checks the shipped text) ==== */

static const char *const ADJECTIVES[] = {
    "amber",    "azure",  "bashful", "breezy",  "brisk",  "chubby", "cobalt",  "crimson",
    "crispy",   "dapper", "dizzy",   "drowsy",  "fluffy", "frosty", "fuzzy",   "gleaming",
    "glossy",   "grumpy", "hasty",   "hazel",   "hushed", "jaunty", "jolly",   "lanky",
    "lavender", "lilac",  "lofty",   "mellow",  "misty",  "murky",  "nimble",  "peppery",
    "plucky",   "pudgy",  "quirky",  "rosy",    "rusty",  "salty",  "scarlet", "shaggy",
    "silky",    "sleepy", "smoky",   "snowy",   "soggy",  "spicy",  "spotted", "squeaky",
    "stormy",   "sunny",  "tangy",   "thirsty", "velvet", "wobbly", "woolly",  "zesty",
};
static const char *const NOUNS[] = {
    "acorn",    "badger",  "beetle",  "biscuit", "bonnet",   "cactus",   "canoe",    "cobbler",
    "comet",    "cricket", "dolphin", "donkey",  "dumpling", "falcon",   "ferret",   "fiddle",
    "flamingo", "gecko",   "giraffe", "goblet",  "gopher",   "hamster",  "hedgehog", "iguana",
    "jackal",   "kettle",  "koala",   "ladle",   "lantern",  "lemur",    "lobster",  "meadow",
    "mitten",   "moose",   "muffin",  "nutmeg",  "otter",    "oyster",   "pancake",  "parrot",
    "peacock",  "pebble",  "pelican", "penguin", "pickle",   "pigeon",   "puffin",   "quail",
    "raccoon",  "radish",  "saddle",  "sardine", "seagull",  "squirrel", "teapot",   "thimble",
    "toucan",   "trumpet", "tulip",   "turnip",  "urchin",   "violin",   "waffle",   "walrus",
    "wombat",   "zebra",
};
#define N_ADJ  (int)(sizeof ADJECTIVES / sizeof *ADJECTIVES)
#define N_NOUN (int)(sizeof NOUNS / sizeof *NOUNS)

static void draw_key(uint64_t *s, char *buf, size_t cap) {
    snprintf(buf, cap, "%s-%s", ADJECTIVES[rng_int(s, 0, N_ADJ - 1)],
             NOUNS[rng_int(s, 0, N_NOUN - 1)]);
}

enum value_kind { VALUE_NUMBER, VALUE_WORD, VALUE_UUID, VALUE_VT_NUMBER, VALUE_VT_NAME };

static void draw_one(uint64_t *s, enum value_kind k, char *buf, size_t cap) {
    if (k == VALUE_NUMBER) {
        snprintf(buf, cap, "%d", rng_int(s, 1000000, 9999999));
    } else if (k == VALUE_VT_NUMBER) {
        snprintf(buf, cap, "%d", rng_int(s, 10000, 99999));
    } else if (k == VALUE_WORD) {
        draw_key(s, buf, cap);
    } else if (k == VALUE_VT_NAME) { /* five capitals, as RULER's variable names */
        int i = 0;
        for (; i < 5 && (size_t)i + 1 < cap; i++)
            buf[i] = (char)('A' + rng_int(s, 0, 25));
        buf[i] = '\0';
    } else { /* version-4 UUID, as Python's uuid.uuid4() that RULER calls */
        uint64_t hi = rng_next(s), lo = rng_next(s);
        hi = (hi & ~0xf000ull) | 0x4000ull;
        lo = (lo & ~(3ull << 62)) | (2ull << 62);
        snprintf(buf, cap, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32),
                 (unsigned)(hi >> 16) & 0xffffu, (unsigned)hi & 0xffffu, (unsigned)(lo >> 48),
                 (unsigned long long)(lo & 0xffffffffffffull));
    }
}

/* Draws into buf a value not in taken[0..n_taken). */
static void draw_distinct(uint64_t *s, enum value_kind k, char (*taken)[64], int n_taken,
                          char *buf) {
    for (;;) {
        draw_one(s, k, buf, 64);
        bool dup = false;
        for (int i = 0; i < n_taken; i++)
            dup |= !strcmp(taken[i], buf);
        if (!dup)
            return;
    }
}

/* ==== a growable string ==== */

struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n) {
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *g = realloc(b->s, cap);
        if (!g) {
            b->oom = true;
            return;
        }
        b->s = g;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s) {
    sb_put(b, s, strlen(s));
}

/* ==== a case's plan: what is inserted where, independent of how many words fit ==== */

struct plan {
    char preamble[256];
    char question[512];
    char reply[512];
    int n_ins;
    double frac[EVAL_MAX_NEEDLES]; /* depth of each inserted sentence, in [0, 1] */
    char ins[EVAL_MAX_NEEDLES][256];
    int start; /* first haystack word (a sentence start) */
    /* cwe */
    int *cwe_vocab; /* [10 + n_vocab] a permutation of vocabulary indices */
    uint64_t cwe_seed;
};

static const char *type_label(enum eval_task t) {
    return t == EVAL_TASK_NIAH_WORD ? "words" : t == EVAL_TASK_NIAH_UUID ? "uuids" : "numbers";
}

static void set_expected(struct eval_case *c, int i, const char *v, bool *oom) {
    if (!(c->expected[i] = xstrdup(v)))
        *oom = true;
    c->n_expected = i + 1 > c->n_expected ? i + 1 : c->n_expected;
}

/* niah family: needle 0 at the requested depth, the others at uniform random depths. */
static void plan_niah(struct plan *p, struct eval_case *c, uint64_t *s, bool *oom) {
    const enum eval_task t = c->task;
    const enum value_kind vk = t == EVAL_TASK_NIAH_WORD   ? VALUE_WORD
                               : t == EVAL_TASK_NIAH_UUID ? VALUE_UUID
                                                          : VALUE_NUMBER;
    int n_keys = t == EVAL_TASK_MULTIKEY || t == EVAL_TASK_MULTIQUERY ? 4 : 1;
    int n_vals = t == EVAL_TASK_MULTIVALUE ? 4 : 1;
    int n_ask = t == EVAL_TASK_MULTIQUERY ? 2 : 1;
    /* drawn[0..n_keys) keys, then the values: all distinct, so a word value is never a key */
    char drawn[8][64];
    for (int k = 0; k < n_keys; k++)
        draw_distinct(s, VALUE_WORD, drawn, k, drawn[k]);
    const char *label = type_label(t);
    snprintf(p->preamble, sizeof p->preamble,
             "Some special magic %s are hidden within the following text. Make sure to memorize "
             "it. I will quiz you about the %s afterwards.\n",
             label, label);
    p->n_ins = n_keys * n_vals;
    for (int k = 0, i = 0; k < n_keys; k++) {
        for (int v = 0; v < n_vals; v++, i++) {
            char *val = drawn[n_keys + i];
            draw_distinct(s, vk, drawn, n_keys + i, val);
            snprintf(p->ins[i], sizeof p->ins[i],
                     "One of the special magic %s for %.63s is: %.63s.", label, drawn[k], val);
            p->frac[i] = i == 0 ? c->depth / 100.0 : rng_unit(s);
            if (k < n_ask)
                set_expected(c, c->n_expected, val, oom);
        }
    }
    char query[160];
    if (n_ask == 2)
        snprintf(query, sizeof query, "%s and %s", drawn[0], drawn[1]);
    else
        snprintf(query, sizeof query, "%s", drawn[0]);
    snprintf(p->question, sizeof p->question,
             "What are all the special magic %s for %s mentioned in the provided text?", label,
             query);
    snprintf(p->reply, sizeof p->reply,
             "The special magic %s for %s mentioned in the provided text are", label, query);
}

/* Variable tracking: VAR A = 12345, then 4 hops VAR B = VAR A, ...; the first statement at the
 * requested depth, the hops after it in order at uniform random depths. */
static void plan_vt(struct plan *p, struct eval_case *c, uint64_t *s, bool *oom) {
    char names[5][64], value[64];
    for (int i = 0; i < 5; i++)
        draw_distinct(s, VALUE_VT_NAME, names, i, names[i]);
    draw_one(s, VALUE_VT_NUMBER, value, sizeof value);
    double d = c->depth / 100.0, f[5] = {d};
    for (int i = 1; i < 5; i++) { /* sorted insertion keeps the chain in order */
        double x = d + (1.0 - d) * rng_unit(s);
        int j = i;
        for (; j > 1 && f[j - 1] > x; j--)
            f[j] = f[j - 1];
        f[j] = x;
    }
    p->n_ins = 5;
    for (int i = 0; i < 5; i++) {
        if (i == 0)
            snprintf(p->ins[i], sizeof p->ins[i], "VAR %.15s = %.15s.", names[0], value);
        else
            snprintf(p->ins[i], sizeof p->ins[i], "VAR %.15s = VAR %.15s.", names[i], names[i - 1]);
        p->frac[i] = f[i];
        set_expected(c, i, names[i], oom);
    }
    snprintf(p->preamble, sizeof p->preamble,
             "Memorize and track the chain(s) of variable assignment hidden in the following "
             "text.\n\n");
    snprintf(p->question, sizeof p->question,
             "Question: Find all variables that are assigned the value %s in the text above.",
             value);
    snprintf(p->reply, sizeof p->reply,
             "Answer: According to the chain(s) of variable assignment in the text above, 5 "
             "variables are assigned the value %s, they are:",
             value);
}

/* Common words: a shuffled vocabulary; its first 10 words are the frequent ones. */
static int plan_cwe(struct plan *p, const struct eval_haystack *h, struct eval_case *c, uint64_t *s,
                    bool *oom, struct adakv_err *e) {
    if (h->n_vocab < 20)
        return err_set(e, "haystack: %d distinct words, cwe needs at least 20", h->n_vocab);
    if (!(p->cwe_vocab = malloc((size_t)h->n_vocab * sizeof *p->cwe_vocab)))
        return err_set(e, "out of memory");
    for (int i = 0; i < h->n_vocab; i++)
        p->cwe_vocab[i] = i;
    for (int i = h->n_vocab - 1; i > 0; i--) {
        int j = rng_int(s, 0, i), t = p->cwe_vocab[i];
        p->cwe_vocab[i] = p->cwe_vocab[j];
        p->cwe_vocab[j] = t;
    }
    p->cwe_seed = rng_next(s);
    for (int i = 0; i < 10; i++)
        set_expected(c, i, h->vocab[p->cwe_vocab[i]], oom);
    snprintf(p->preamble, sizeof p->preamble,
             "Below is a numbered list of words. In these words, some appear more often than "
             "others. Memorize the ones that appear most often.\n");
    snprintf(p->question, sizeof p->question,
             "Question: What are the 10 most common words in the above list?");
    snprintf(p->reply, sizeof p->reply,
             "Answer: The top 10 words that appear most often in the list are:");
    return 0;
}

/* Pass key (Mohtashami & Jaggi 2023, "Landmark Attention", the test LongLoRA and others reuse):
 * their instruction and needle sentence, the number said twice; a 5-digit key. */
static void plan_passkey(struct plan *p, struct eval_case *c, uint64_t *s, bool *oom) {
    int key = rng_int(s, 10000, 99999);
    char v[16];
    snprintf(v, sizeof v, "%d", key);
    set_expected(c, 0, v, oom);
    p->n_ins = 1;
    p->frac[0] = c->depth / 100.0;
    snprintf(p->ins[0], sizeof p->ins[0], "The pass key is %d. Remember it. %d is the pass key.",
             key, key);
    snprintf(p->preamble, sizeof p->preamble,
             "There is an important info hidden inside a lot of irrelevant text. Find it and "
             "memorize it. I will quiz you about the important information there.\n");
    snprintf(p->question, sizeof p->question, "What is the pass key?");
    snprintf(p->reply, sizeof p->reply, "The pass key is");
}

/* QA: RULER's qa task asks about real documents (SQuAD, HotpotQA) that cannot ship here, so the
 * passage is made up: invented people, towns and dates (nothing the model can know beforehand),
 * told in prose rather than as a key-value pair, and asked about in words. RULER's qa template
 * (its instruction before the documents and again before the question). */
static const char *const QA_FIRST[] = {"Orla",   "Tamsin", "Idris",  "Nell",  "Corin",  "Ysolde",
                                       "Alaric", "Mabel",  "Ewan",   "Freya", "Lorcan", "Rhosyn",
                                       "Anselm", "Wilma",  "Tobiah", "Isaura"};
static const char *const QA_LAST[] = {"Ashgrove",    "Blackthorn",  "Penhallow", "Quillfeather",
                                      "Rookwood",    "Thistlewood", "Wrenfield", "Marchbank",
                                      "Oakenshaw",   "Fairweather", "Kettleby",  "Moorcroft",
                                      "Brackenbury", "Silverdell",  "Gorringe",  "Hazelrigg"};
static const char *const QA_TOWN_A[] = {"Bram", "Cor", "Dun", "Fen", "Gal", "Hol", "Kes", "Lor",
                                        "Mar",  "Nor", "Pel", "Ros", "Tal", "Ver", "Wyn", "Ast"};
static const char *const QA_TOWN_B[] = {"bury", "dale",   "ford", "holm",
                                        "mere", "thorpe", "wick", "combe"};
static const char *const QA_TRADE[] = {"clockmaker",   "beekeeper",  "ferryman",   "glassblower",
                                       "cartographer", "bookbinder", "blacksmith", "shepherd",
                                       "stonemason",   "weaver",     "chandler",   "cooper"};
#define PICK(a) a[rng_int(s, 0, (int)(sizeof a / sizeof *a) - 1)]

static void plan_qa(struct plan *p, struct eval_case *c, uint64_t *s, bool *oom) {
    const char *first = PICK(QA_FIRST), *last = PICK(QA_LAST), *trade = PICK(QA_TRADE);
    char town[32], year[8];
    snprintf(town, sizeof town, "%s%s", PICK(QA_TOWN_A), PICK(QA_TOWN_B));
    snprintf(year, sizeof year, "%d", rng_int(s, 1701, 1899)); /* not a licence's year */
    p->n_ins = 1;
    p->frac[0] = c->depth / 100.0;
    snprintf(p->ins[0], sizeof p->ins[0],
             "%s %s was born in the town of %s in %s. For many years %s worked there as a %s.",
             first, last, town, year, first, trade);
    const int ask = rng_int(s, 0, 2);
    char q[128];
    if (ask == 0)
        snprintf(q, sizeof q, "In which town was %s %s born?", first, last);
    else if (ask == 1)
        snprintf(q, sizeof q, "In which year was %s %s born?", first, last);
    else
        snprintf(q, sizeof q, "What did %s %s work as?", first, last);
    set_expected(c, 0, ask == 0 ? town : ask == 1 ? year : trade, oom);
    static const char instr[] =
        "Answer the question based on the given documents. Only give me the answer and do not "
        "output any other words.";
    snprintf(p->preamble, sizeof p->preamble, "%s\n\nThe following are given documents.\n\n",
             instr);
    snprintf(p->question, sizeof p->question, "%s\n\nQuestion: %s", instr, q);
    snprintf(p->reply, sizeof p->reply, "Answer:");
}

/* ==== rendering for a given size ==== */

/* Before word b of an n-word haystack: its start, or after a sentence's end. The haystack's
 * end counts only if a sentence ends there: it is cut at a word, so a depth of 100% puts the
 * needle after the last whole sentence, never inside the fragment that may follow it. */
static bool boundary(const struct eval_haystack *h, const struct plan *p, int b) {
    return b == 0 || h->ends_sent[(p->start + b - 1) % h->n_word];
}

/* The sentence boundary of an n-word haystack nearest to fraction f (the lower on a tie). */
static int nearest_boundary(const struct eval_haystack *h, const struct plan *p, int n, double f) {
    int t = (int)(f * n + 0.5);
    for (int d = 0;; d++) {
        if (t - d >= 0 && boundary(h, p, t - d))
            return t - d;
        if (t + d <= n && boundary(h, p, t + d))
            return t + d;
    }
}

/* context = preamble + n haystack words with the plan's sentences at their boundaries. */
static int render_hay(const struct eval_haystack *h, const struct plan *p, int n,
                      struct eval_case *c, struct sbuf *b) {
    int at[EVAL_MAX_NEEDLES], order[EVAL_MAX_NEEDLES];
    for (int i = 0; i < p->n_ins; i++) { /* stable by boundary: equal ones keep plan order */
        at[i] = nearest_boundary(h, p, n, p->frac[i]);
        int j = i;
        for (; j > 0 && at[order[j - 1]] > at[i]; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    sb_str(b, p->preamble);
    c->hay_begin = b->n;
    c->n_needles = 0;
    bool sep = false;
    for (int w = 0, k = 0; w <= n; w++) {
        for (; k < p->n_ins && at[order[k]] == w; k++) {
            if (sep)
                sb_put(b, " ", 1);
            if (order[k] == 0)
                c->depth_needle = c->n_needles;
            c->needle_at[c->n_needles] = b->n;
            c->needle_len[c->n_needles++] = strlen(p->ins[order[k]]);
            sb_str(b, p->ins[order[k]]);
            sep = true;
        }
        if (w == n)
            break;
        int i = (p->start + w) % h->n_word;
        if (sep)
            sb_put(b, " ", 1);
        sb_put(b, h->text + h->word[i], h->word_len[i]);
        sep = true;
    }
    c->hay_end = b->n;
    return b->oom ? -1 : 0;
}

/* cwe: the 10 frequent words fc times each and n uncommon words 3 times each, shuffled and
 * numbered. RULER uses fc = 30 with ~4k-token prompts; fc shrinks with the list (n / 8, at
 * least 6) so that short prompts still hold many distinct words. */
static int cwe_freq(int n) {
    int fc = n / 8;
    return fc < 6 ? 6 : fc > 30 ? 30 : fc;
}

static int render_cwe(const struct eval_haystack *h, const struct plan *p, int n,
                      struct eval_case *c, struct sbuf *b) {
    const int fc = cwe_freq(n), total = 10 * fc + 3 * n;
    int *list = malloc((size_t)total * sizeof *list);
    if (!list)
        return -1;
    int m = 0;
    for (int i = 0; i < 10 + n; i++)
        for (int r = 0; r < (i < 10 ? fc : 3); r++)
            list[m++] = p->cwe_vocab[i];
    uint64_t s = p->cwe_seed; /* the same order for this n however often it is rendered */
    for (int i = total - 1; i > 0; i--) {
        int j = rng_int(&s, 0, i), t = list[i];
        list[i] = list[j];
        list[j] = t;
    }
    sb_str(b, p->preamble);
    c->hay_begin = b->n;
    for (int i = 0; i < total; i++) {
        char num[16];
        snprintf(num, sizeof num, "%s%d. ", i ? " " : "", i + 1);
        sb_str(b, num);
        sb_str(b, h->vocab[list[i]]);
    }
    c->hay_end = b->n;
    c->n_needles = 0;
    free(list);
    return b->oom ? -1 : 0;
}

/* Renders size n into c->context and counts the prompt's tokens. */
static int try_size(const struct eval_haystack *h, const struct plan *p, int n, struct eval_case *c,
                    eval_count_fn count, void *user, size_t *n_tok, struct adakv_err *e) {
    struct sbuf b = {0};
    int rc = c->task == EVAL_TASK_CWE ? render_cwe(h, p, n, c, &b) : render_hay(h, p, n, c, &b);
    if (rc) {
        free(b.s);
        return err_set(e, "out of memory");
    }
    free(c->context);
    c->context = b.s;
    c->n_units = n;
    return count(user, c->context, c->question, c->reply, n_tok, e);
}

/* ==== the case ==== */

static int make_plan(const struct eval_haystack *h, struct plan *p, struct eval_case *c,
                     struct adakv_err *e) {
    uint64_t s = case_seed(c->seed, c->task, c->length, c->depth, c->sample);
    bool oom = false;
    if (c->task == EVAL_TASK_CWE) {
        if (plan_cwe(p, h, c, &s, &oom, e))
            return -1;
    } else {
        int w = rng_int(&s, 0, h->n_word - 1); /* the next sentence start, wrapping */
        while (w && !h->ends_sent[w - 1])
            w = (w + 1) % h->n_word;
        p->start = w;
        if (c->task == EVAL_TASK_VT)
            plan_vt(p, c, &s, &oom);
        else if (c->task == EVAL_TASK_PASSKEY)
            plan_passkey(p, c, &s, &oom);
        else if (c->task == EVAL_TASK_QA)
            plan_qa(p, c, &s, &oom);
        else
            plan_niah(p, c, &s, &oom);
    }
    c->question = xstrdup(p->question);
    c->reply = xstrdup(p->reply);
    if (oom || !c->question || !c->reply)
        return err_set(e, "out of memory");
    return 0;
}

int eval_case_make(const struct eval_haystack *h, enum eval_task task, int length, int depth,
                   int sample, uint64_t seed, eval_count_fn count, void *user, struct eval_case *c,
                   struct adakv_err *e) {
    *c = (struct eval_case){
        .task = task, .length = length, .depth = depth, .sample = sample, .seed = seed};
    c->depth_needle = -1;
    if ((int)task < 0 || task >= EVAL_TASK_COUNT)
        return err_set(e, "task %d does not exist", (int)task);
    if (eval_task_has_depth(task) ? depth < 0 || depth > 100 : depth != -1)
        return err_set(e, "%s: depth %d is not %s", eval_task_name(task), depth,
                       eval_task_has_depth(task) ? "in [0, 100]" : "-1 (the task has no depth)");
    struct plan p = {0};
    int rc = make_plan(h, &p, c, e);
    /* Largest size whose prompt fits: each word (list entry) adds at least one token, so
     * `length` bounds it; the token count grows with the size, so bisect. */
    int lo = 0, hi = task == EVAL_TASK_CWE ? h->n_vocab - 10 : length;
    hi = hi < length ? hi : length;
    size_t n_tok = 0;
    if (!rc)
        rc = try_size(h, &p, 0, c, count, user, &n_tok, e);
    if (!rc && n_tok > (size_t)length)
        rc = err_set(e, "length %d: too short for %s, whose prompt without filler is %zu tokens",
                     length, eval_task_name(task), n_tok);
    while (!rc && lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        rc = try_size(h, &p, mid, c, count, user, &n_tok, e);
        if (n_tok <= (size_t)length)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (!rc)
        rc = try_size(h, &p, lo, c, count, user, &c->n_tokens, e);
    if (!rc && task == EVAL_TASK_CWE && lo == h->n_vocab - 10 && lo < length)
        rc = err_set(e, "length %d: cwe needs more than the haystack's %d distinct words", length,
                     h->n_vocab);
    free(p.cwe_vocab);
    return rc;
}

void eval_case_free(struct eval_case *c) {
    free(c->context);
    free(c->question);
    free(c->reply);
    for (int i = 0; i < c->n_expected; i++)
        free(c->expected[i]);
    *c = (struct eval_case){0};
}
