/* The press options (kv-press.h, struct press_option): one row per option, which drives
 * adakv_press_set, the configuration's defaults and range checks, the error messages and the
 * press lines of adakv-run's and adakv-server's --help (adakv_press_usage). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv-press.h"

/* enum fields are written as int (gcc gives these enums int's size) */
_Static_assert(sizeof(enum kv_pool) == sizeof(int), "enum kv_pool is not int-sized");
_Static_assert(sizeof(enum kv_press_alloc) == sizeof(int), "enum kv_press_alloc is not int-sized");
_Static_assert(sizeof(enum kv_budget_scope) == sizeof(int),
               "enum kv_budget_scope is not int-sized");

static const char *const pool_values[] = {"max", "avg", NULL};          /* enum kv_pool */
static const char *const ada_values[] = {"off", "on", "kvpress", NULL}; /* kv_press_alloc */
static const char *const scope_values[] = {"layer", "global", NULL};    /* kv_budget_scope */
static const char *const split_values[] = {"prefix", "kvpress", NULL};  /* kv_critical_split */

#define FIELD(f) offsetof(struct kv_press_config, f)

/* Upper bounds from here on only keep products in range; --help shows them as ">= lo". */
#define NO_CAP (1 << 20)

const struct press_option kv_press_options[] = {
    {.name = "press",
     .type = PRESS_OPT_NAME,
     .meta = "NAME",
     .help = "which rows each layer keeps (default full):"},
    {.name = "kv-budget",
     .type = PRESS_OPT_INT,
     .lo = 1,
     .hi = 1 << 30,
     .zero_unset = true,
     .offset = FIELD(budget),
     .meta = "N",
     .help = "KV rows kept per KV head, window included (alone: ada-snapkv)"},
    {.name = "kv-ratio",
     .type = PRESS_OPT_FLOAT,
     .lo = 0,
     .hi = 1,
     .hi_open = true,
     .offset = FIELD(ratio),
     .meta = "R",
     .help = "fraction of rows removed (kvpress semantics)"},
    {.name = "ada",
     .type = PRESS_OPT_ENUM,
     .values = ada_values,
     .offset = FIELD(alloc),
     .flag = "--ada",
     .help = "Ada-KV head-wise budgets (paper code); --ada-kvpress: kvpress's"},
    {.name = "alpha",
     .type = PRESS_OPT_FLOAT,
     .lo = 0,
     .hi = 1,
     .def = 0.2,
     .offset = FIELD(alpha),
     .meta = "F",
     .help = "Ada-KV uniform floor (0 for kvzip unless given, as kvpress)"},
    {.name = "budget",
     .type = PRESS_OPT_ENUM,
     .values = scope_values,
     .offset = FIELD(scope),
     .meta = "layer|global",
     .help = "where Ada-KV head budgets compete: within each layer (the paper), or globally over "
             "every layer's heads at once (one top-k, the same per-head floor); global holds "
             "every layer's whole prompt until its last layer has run (not with --prefill-chunk, "
             "--kv-max, --kv-report or pyramid)"},
    {.name = "window",
     .type = PRESS_OPT_INT,
     .lo = 1,
     .hi = 1 << 20,
     .def = 32,
     .offset = FIELD(window),
     .meta = "N",
     .help = "observation window, query rows"},
    {.name = "pool-kernel",
     .type = PRESS_OPT_INT,
     .lo = 1,
     .hi = 1023,
     .odd = true,
     .def = 7,
     .offset = FIELD(kernel),
     .meta = "N",
     .help = "score pooling kernel, odd"},
    {.name = "pool",
     .type = PRESS_OPT_ENUM,
     .values = pool_values,
     .offset = FIELD(pool),
     .meta = "max|avg",
     .help = "score pooling"},
    {.name = "beta",
     .type = PRESS_OPT_FLOAT,
     .lo = 0,
     .hi = INFINITY,
     .lo_open = true,
     .hi_open = true,
     .def = 20,
     .offset = FIELD(beta),
     .meta = "F",
     .help = "PyramidKV steepness"},
    {.name = "sink",
     .type = PRESS_OPT_INT,
     .lo = 0,
     .hi = 1 << 20,
     .def = 4,
     .offset = FIELD(n_sink),
     .meta = "N",
     .help = "StreamingLLM sink tokens (KVzip, expected: rows never evicted)"},
    {.name = "critical-ratio",
     .type = PRESS_OPT_FLOAT,
     .lo = 0,
     .hi = 1,
     .def = 0.5,
     .offset = FIELD(critical_ratio),
     .meta = "F",
     .help = "CriticalKV stage-1 share of each head's budget"},
    {.name = "critical-split",
     .type = PRESS_OPT_ENUM,
     .values = split_values,
     .offset = FIELD(critical_split),
     .meta = "prefix|kvpress",
     .help = "CriticalKV stage 1 of the selectable rows, or (kvpress) of the budget with the "
             "window counted in it"},
    {.name = "kv-max",
     .type = PRESS_OPT_INT,
     .lo = 1,
     .hi = 1 << 30,
     .zero_unset = true,
     .offset = FIELD(kv_max),
     .meta = "N",
     .help = "while generating, cap every KV head at N rows (evicting with the press's scores; "
             "alone: ada-snapkv)"},
    {.name = "kv-chunk",
     .type = PRESS_OPT_INT,
     .lo = 1,
     .hi = 1 << 30,
     .def = 64,
     .offset = FIELD(decode_chunk),
     .meta = "N",
     .help = "with --kv-max: evict down to a chunk of N rows below the cap, so evictions come "
             "every ~N steps"},
    {.name = "prefill-chunk",
     .type = PRESS_OPT_INT,
     .lo = 1,
     .hi = 1 << 22,
     .zero_unset = true,
     .offset = FIELD(prefill_chunk),
     .meta = "N",
     .help = "prefill a longer prompt N tokens at a time, compressing to the whole prompt's "
             "budget after each piece, so the cache peaks at the budget + N rows in one layer "
             "instead of + the whole prompt in one layer (N >= --window; not with kvzip)"},
    {.name = "rec-chunk",
     .type = PRESS_OPT_INT,
     .lo = 0,
     .hi = 1 << 22,
     .def = 1024,
     .offset = FIELD(rec_chunk),
     .meta = "N",
     .help = "kvzip: repeat a longer context in pieces of N tokens, each piece's repeat attending "
             "to the sinks, that piece and itself (kvpress scores 2048-token chunks so), so the "
             "reconstruction's cost grows linearly with the length; 0: in one piece"},
    {.name = "seed",
     .type = PRESS_OPT_U64,
     .lo = 0,
     .hi = 0x7fffffff,
     .def = 42,
     .offset = FIELD(seed),
     .meta = "N",
     .api_only = true,
     .help = "the random press's seed"},
    {.name = "reserve",
     .type = PRESS_OPT_INT,
     .lo = 0,
     .hi = 1 << 24,
     .offset = FIELD(reserve),
     .meta = "N",
     .api_only = true,
     .help = "rows left free per KV head after compaction, for decode"},
};
const int kv_n_press_options = (int)(sizeof kv_press_options / sizeof kv_press_options[0]);
/* the options given to an adakv_press are bits of a uint32_t (press-ctx.c) */
_Static_assert(sizeof kv_press_options / sizeof kv_press_options[0] <= 32, "too many options");

const struct press_option *kv_press_option_find(const char *name) {
    for (int i = 0; name && i < kv_n_press_options; i++)
        if (!strcmp(kv_press_options[i].name, name))
            return &kv_press_options[i];
    return NULL;
}

/* ---------------------------------------------------------------- values in the config */

static void *field(const struct press_option *o, struct kv_press_config *c) {
    return (char *)c + o->offset;
}

static double get(const struct press_option *o, const struct kv_press_config *c) {
    const void *f = (const char *)c + o->offset;
    switch (o->type) {
    case PRESS_OPT_FLOAT:
        return *(const float *)f;
    case PRESS_OPT_U64:
        return (double)*(const uint64_t *)f;
    case PRESS_OPT_NAME:
        return 0;
    default: /* int and int-sized enums */
        return *(const int *)f;
    }
}

static void put(const struct press_option *o, struct kv_press_config *c, double v) {
    if (o->type == PRESS_OPT_FLOAT)
        *(float *)field(o, c) = (float)v;
    else if (o->type == PRESS_OPT_U64)
        *(uint64_t *)field(o, c) = (uint64_t)v;
    else if (o->type != PRESS_OPT_NAME)
        *(int *)field(o, c) = (int)v;
}

void kv_press_config_default(struct kv_press_config *c) {
    *c = (struct kv_press_config){
        .press = kv_press_find("snapkv", NULL),
        .critical_eps = 1e-4f,
        .eattn_future = 512,
        .eattn_eps = 0.0f,
    };
    for (int i = 0; i < kv_n_press_options; i++)
        put(&kv_press_options[i], c, kv_press_options[i].def);
}

/* The allowed values as the error messages and --help write them: "[0, 1)", "(0, inf)"; sp is
 * the space after a comma (--help: NBSP, a space it does not break at). */
static void range_text(const struct press_option *o, const char *sp, char *buf, size_t size) {
    if (o->type == PRESS_OPT_ENUM) {
        size_t n = 0;
        buf[0] = '\0';
        for (int i = 0; o->values[i] && n < size; i++)
            n += (size_t)snprintf(buf + n, size - n, "%s%s%s", i ? "," : "", i ? sp : "",
                                  o->values[i]);
        return;
    }
    snprintf(buf, size, "%s%.10g,%s%.10g%s", o->lo_open ? "(" : "[", o->lo, sp, o->hi,
             o->hi_open ? ")" : "]");
}

static bool in_range(const struct press_option *o, double v) {
    if (o->type == PRESS_OPT_ENUM) {
        int n = 0;
        while (o->values[n])
            n++;
        return v >= 0 && v < n;
    }
    return (o->lo_open ? v > o->lo : v >= o->lo) && (o->hi_open ? v < o->hi : v <= o->hi) &&
           (!o->odd || fmod(v, 2.0) == 1.0);
}

static int out_of_range(const struct press_option *o, double v, struct adakv_err *e) {
    char range[96];
    range_text(o, " ", range, sizeof range);
    if (o->odd && in_range(o, v + 1)) /* the one even value between odd ones */
        return err_set(e, "--%s: %.10g is even (the pooling window must be centred; odd in %s)",
                       o->name, v, range);
    return err_set(e, "--%s: %.10g is out of range %s", o->name, v, range);
}

int kv_press_option_set(const struct press_option *o, struct kv_press_config *c, const char *value,
                        struct adakv_err *e) {
    char flag[48];
    snprintf(flag, sizeof flag, "--%s", o->name);
    if (!value)
        return err_set(e, "%s: missing value", flag);
    double v = 0;
    if (o->type == PRESS_OPT_NAME)
        return kv_press_parse_name(value, c, e);
    if (o->type == PRESS_OPT_ENUM) {
        for (int i = 0; o->values[i]; i++)
            if (!strcmp(value, o->values[i])) {
                put(o, c, i);
                return 0;
            }
        char range[96];
        range_text(o, " ", range, sizeof range);
        return err_set(e, "%s: '%s' is not one of %s", flag, value, range);
    }
    /* whole strings only: trailing junk, an empty string and overflow are errors; floats by
     * strtof (not strtod then a cast: the value a float flag always had) */
    char *end;
    errno = 0;
    const bool real = o->type == PRESS_OPT_FLOAT;
    v = real ? (double)strtof(value, &end) : (double)strtol(value, &end, 10);
    if (end == value || *end != '\0' || errno == ERANGE || !isfinite(v)) {
        char range[96];
        range_text(o, " ", range, sizeof range);
        return err_set(e, "%s: '%s' is not %s in %s", flag, value,
                       real ? "a finite number" : "an integer", range);
    }
    if (!in_range(o, v))
        return out_of_range(o, v, e);
    put(o, c, v);
    return 0;
}

int kv_press_config_set(struct kv_press_config *c, const char *name, const char *value,
                        struct adakv_err *e) {
    const struct press_option *o = kv_press_option_find(name);
    if (!o)
        return err_set(e, "unknown press option '%s'", name ? name : "");
    return kv_press_option_set(o, c, value, e);
}

int kv_press_config_check(const struct kv_press_config *c, struct adakv_err *e) {
    for (int i = 0; i < kv_n_press_options; i++) {
        const struct press_option *o = &kv_press_options[i];
        const double v = get(o, c);
        if (o->type != PRESS_OPT_NAME && !(o->zero_unset && v == 0) && !in_range(o, v))
            return out_of_range(o, v, e);
    }
    if (c->budget > 0 && c->ratio > 0.0f)
        return err_set(e, "--kv-budget and --kv-ratio are mutually exclusive");
    if (c->kv_max > 0 && c->kv_max <= c->window)
        return err_set(e, "--kv-max: %d must exceed --window %d (the recent rows re-scoring it)",
                       c->kv_max, c->window);
    return 0;
}

/* ---------------------------------------------------------------- --help */

enum { HELP_COL = 25, HELP_WIDTH = 92 };
#define NBSP "\x01" /* a space put_entry prints but never breaks a line at */

struct text {
    char *buf;
    size_t n, cap;
    bool oom;
};

static void put_str(struct text *t, const char *s, size_t len) {
    if (t->n + len + 1 > t->cap) {
        size_t cap = (t->n + len + 1) * 2;
        char *b = t->oom ? NULL : realloc(t->buf, cap);
        if (!b) {
            t->oom = true;
            return;
        }
        t->buf = b, t->cap = cap;
    }
    memcpy(t->buf + t->n, s, len);
    t->n += len;
    t->buf[t->n] = '\0';
}

/* One entry: `left` in the flag column, then `text` word-wrapped into the help column, each
 * continuation line starting at column `indent`; a `left` that leaves less than two spaces
 * before that column gets the text on the lines below it, as getopt-style help does. */
static void put_entry(struct text *t, const char *left, const char *text, int indent) {
    int col = (int)strlen(left), shown = col;
    put_str(t, left, strlen(left));
    while (shown > 0 && left[shown - 1] == ' ')
        shown--;
    if (shown > indent - 2) {
        put_str(t, "\n", 1);
        col = 0;
    }
    const char *w = text;
    bool first = true;
    char word[HELP_WIDTH + 1];
    while (*w) {
        const size_t len = strcspn(w, " ");
        if (!first && col + 1 + (int)len > HELP_WIDTH) {
            put_str(t, "\n", 1);
            col = 0;
        }
        const int pad = col < indent ? indent - col : (first ? (col < HELP_COL ? 0 : 1) : 1);
        for (int i = 0; i < pad; i++)
            put_str(t, " ", 1);
        for (size_t i = 0; i < len; i += sizeof word - 1) {
            const size_t k = len - i < sizeof word - 1 ? len - i : sizeof word - 1;
            memcpy(word, w + i, k);
            for (size_t j = 0; j < k; j++)
                word[j] = word[j] == NBSP[0] ? ' ' : word[j];
            put_str(t, word, k);
        }
        col += pad + (int)len;
        first = false;
        w += len;
        while (*w == ' ')
            w++;
    }
    put_str(t, "\n", 1);
}

/* The presses under --press: one line each, then the ada names and the kvpress aliases. */
static void put_presses(struct text *t) {
    char left[64], ada[256] = "", alias[256] = "";
    size_t na = 0, nk = 0;
    for (int i = 0; i < kv_n_presses; i++) {
        const struct press_desc *d = &kv_presses[i];
        snprintf(left, sizeof left, "%*s%-10s", HELP_COL + 2, "", d->name);
        put_entry(t, left, d->help, HELP_COL + 13);
        for (int k = 0; k < 3 && d->ada[k]; k++) {
            char *buf = k ? alias : ada;
            size_t *n = k ? &nk : &na, size = k ? sizeof alias : sizeof ada;
            if (*n < size)
                *n += (size_t)snprintf(buf + *n, size - *n, "%s%s", *n ? ", " : "", d->ada[k]);
        }
        for (int k = 0; k < 3 && d->alias[k]; k++)
            if (nk < sizeof alias)
                nk += (size_t)snprintf(alias + nk, sizeof alias - nk, "%s%s", nk ? ", " : "",
                                       d->alias[k]);
    }
    char line[640];
    snprintf(line, sizeof line, "the same with Ada-KV head budgets: %s; kvpress names: %s", ada,
             alias);
    put_entry(t, "", line, HELP_COL);
}

/* What --help says after an option's own text: its range and default. */
static void option_suffix(const struct press_option *o, char *buf, size_t size) {
    char range[96];
    range_text(o, NBSP, range, sizeof range);
    size_t n = 0;
    if (o->type == PRESS_OPT_INT && o->hi >= NO_CAP)
        n = (size_t)snprintf(buf, size, ", >=" NBSP "%.10g", o->lo);
    else if (o->lo_open && isinf(o->hi))
        n = (size_t)snprintf(buf, size, ", >" NBSP "%.10g", o->lo);
    else if (o->type == PRESS_OPT_INT || o->type == PRESS_OPT_FLOAT)
        n = (size_t)snprintf(buf, size, ", in" NBSP "%s", range);
    if (n < size && o->type == PRESS_OPT_ENUM && !o->flag)
        snprintf(buf + n, size - n, " (default" NBSP "%s)", o->values[(int)o->def]);
    else if (n < size && !o->zero_unset && o->type != PRESS_OPT_NAME && o->type != PRESS_OPT_ENUM)
        snprintf(buf + n, size - n, " (default" NBSP "%.10g)", o->def);
}

char *adakv_press_usage(void) {
    struct text t = {0};
    put_str(&t, "", 0);
    for (int i = 0; i < kv_n_press_options; i++) {
        const struct press_option *o = &kv_press_options[i];
        if (o->api_only)
            continue;
        char left[64], text[640], suffix[128] = "";
        if (o->flag)
            snprintf(left, sizeof left, "      %s", o->flag);
        else
            snprintf(left, sizeof left, "      --%s %s", o->name, o->meta);
        option_suffix(o, suffix, sizeof suffix);
        snprintf(text, sizeof text, "%s%s", o->help, suffix);
        put_entry(&t, left, text, HELP_COL);
        if (o->type == PRESS_OPT_NAME)
            put_presses(&t);
    }
    if (t.oom) {
        free(t.buf);
        return NULL;
    }
    return t.buf;
}
