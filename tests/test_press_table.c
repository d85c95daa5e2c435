/* The tables of presses (press-table.c) and press options (press-options.c) walked row by row:
 * every press name, kvpress alias and ada name parses to its row; the rows can run (an evicting
 * press has a scorer or a positional plan); every option's default is what the configuration
 * starts with and lies in its range; values outside the range, and text that is no value, are
 * refused with one line naming --NAME and the range, leaving the configuration as it was; the
 * bounds themselves are accepted; and the --help text names every press and every flag. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adakv.h"
#include "kv-press.h"

/* ---------------------------------------------------------------- presses */

static void expect_parses(const char *name, const struct press_desc *row, bool ada) {
    struct adakv_err e = {{0}};
    struct kv_press_config c;
    kv_press_config_default(&c);
    c.press = NULL;
    cr_assert_eq(kv_press_parse_name(name, &c, &e), 0, "%s: %s", name, e.msg);
    cr_expect_eq(c.press, row, "%s parsed to %s, not %s", name, c.press->name, row->name);
    cr_expect_eq(c.alloc, ada ? KV_ALLOC_ADA : KV_ALLOC_UNIFORM, "%s: alloc %d", name, c.alloc);
    /* the public setter takes the same names */
    struct adakv_press *p = adakv_press_new();
    cr_assert(p);
    cr_expect_eq(adakv_press_set(p, "press", name, &e), 0, "%s: %s", name, e.msg);
    adakv_press_free(p);
}

Test(press_table, every_name_alias_and_ada_name_parses_to_its_row) {
    int n_names = 0;
    for (int i = 0; i < kv_n_presses; i++) {
        const struct press_desc *d = &kv_presses[i];
        expect_parses(d->name, d, false);
        for (int k = 0; k < 3 && d->alias[k]; k++)
            expect_parses(d->alias[k], d, false);
        for (int k = 0; k < 3 && d->ada[k]; k++)
            expect_parses(d->ada[k], d, true);
        /* a name names one row: find returns the first, so a repeat elsewhere would be shadowed */
        const char *const *lists[] = {&d->name, d->alias, d->ada};
        for (int l = 0; l < 3; l++)
            for (int k = 0; k < (l ? 3 : 1) && lists[l][k]; k++, n_names++) {
                bool ada = false;
                cr_expect_eq(kv_press_find(lists[l][k], &ada), d, "%s names two rows", lists[l][k]);
                cr_expect_eq(ada, l == 2, "%s", lists[l][k]);
            }
        /* adakv's ada name is "ada-" + its name (what --help and describe() print) */
        if (d->ada[0]) {
            char want[64];
            snprintf(want, sizeof want, "ada-%s", d->name);
            cr_expect_str_eq(d->ada[0], want);
        }
    }
    cr_expect_geq(n_names, 24, "only %d press names", n_names);
    struct adakv_err e = {{0}};
    struct kv_press_config c;
    kv_press_config_default(&c);
    cr_expect_eq(kv_press_parse_name("ada-full", &c, &e), -1); /* full has no head budgets */
    cr_expect(strstr(e.msg, "--press: unknown press 'ada-full'"), "%s", e.msg);
}

Test(press_table, every_row_can_run) {
    for (int i = 0; i < kv_n_presses; i++) {
        const struct press_desc *d = &kv_presses[i];
        cr_expect(d->help && *d->help, "%s: no help", d->name);
        if (!d->evicts) { /* keeps everything: nothing to score at a prefill */
            cr_expect(!d->score && !d->plan, "%s", d->name);
            continue;
        }
        /* kv-press.c calls exactly one of them, at a prefill and past --kv-max */
        cr_expect(!d->plan != !d->score, "%s: a scorer or a positional plan", d->name);
        cr_expect(!d->plan != !d->score_decode, "%s: a decode scorer or a plan", d->name);
        cr_expect(!d->score == !(d->needs & PRESS_NEEDS_QUERIES), "%s: queries", d->name);
        /* a positional press has no scores to share out under Ada-KV */
        cr_expect(!d->plan || !d->ada[0], "%s", d->name);
    }
}

/* ---------------------------------------------------------------- options */

static double field_value(const struct press_option *o, const struct kv_press_config *c) {
    const void *f = (const char *)c + o->offset;
    if (o->type == PRESS_OPT_FLOAT)
        return *(const float *)f;
    if (o->type == PRESS_OPT_U64)
        return (double)*(const uint64_t *)f;
    return *(const int *)f;
}

Test(press_table, every_default_is_the_configs_and_in_range) {
    struct adakv_err e = {{0}};
    struct kv_press_config c;
    kv_press_config_default(&c);
    cr_assert_eq(kv_press_config_check(&c, &e), 0, "%s", e.msg);
    cr_expect_str_eq(c.press->name, "snapkv");
    for (int i = 0; i < kv_n_press_options; i++) {
        const struct press_option *o = &kv_press_options[i];
        cr_expect(o->help && *o->help, "%s: no help", o->name);
        if (o->type == PRESS_OPT_NAME)
            continue;
        const double v = field_value(o, &c);
        const double def = o->type == PRESS_OPT_FLOAT ? (double)(float)o->def : o->def;
        cr_expect_eq(v, def, "%s: default %g, the config starts at %g", o->name, o->def, v);
        if (o->type == PRESS_OPT_ENUM) {
            int n = 0;
            while (o->values[n])
                n++;
            cr_expect(o->def >= 0 && o->def < n, "%s: default %g", o->name, o->def);
            continue;
        }
        if (o->zero_unset && o->def == 0) /* "not given" (no budget, no cap) */
            continue;
        cr_expect(o->lo_open ? o->def > o->lo : o->def >= o->lo, "%s: default %g < %g", o->name,
                  o->def, o->lo);
        cr_expect(o->hi_open ? o->def < o->hi : o->def <= o->hi, "%s: default %g > %g", o->name,
                  o->def, o->hi);
        cr_expect(!o->odd || fmod(o->def, 2) == 1, "%s: default %g is even", o->name, o->def);
    }
}

/* value must be refused with one line naming --NAME and the allowed values (`range`), and leave
 * the configuration unchanged. */
static void expect_refused(const struct press_option *o, const char *value, const char *range) {
    struct adakv_err e = {{0}};
    struct kv_press_config c, before;
    kv_press_config_default(&c);
    before = c;
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", o->name);
    cr_assert_eq(kv_press_option_set(o, &c, value, &e), -1, "%s %s accepted", flag, value);
    cr_expect(strstr(e.msg, flag) == e.msg, "%s %s: '%s' does not name it first", flag, value,
              e.msg);
    cr_expect(strstr(e.msg, range), "%s %s: '%s' lacks the range %s", flag, value, e.msg, range);
    cr_expect(!strchr(e.msg, '\n'), "%s %s: not one line: %s", flag, value, e.msg);
    cr_expect(!memcmp(&c, &before, sizeof c), "%s %s changed the config", flag, value);
    /* the public setter refuses it the same way */
    struct adakv_press *p = adakv_press_new();
    cr_expect_eq(adakv_press_set(p, o->name, value, &e), -1, "%s %s", flag, value);
    adakv_press_free(p);
}

static void expect_accepted(const struct press_option *o, double v) {
    struct adakv_err e = {{0}};
    struct kv_press_config c;
    kv_press_config_default(&c);
    char text[64];
    snprintf(text, sizeof text, "%.10g", v);
    cr_assert_eq(kv_press_option_set(o, &c, text, &e), 0, "--%s %s: %s", o->name, text, e.msg);
    cr_expect_eq(field_value(o, &c), o->type == PRESS_OPT_FLOAT ? (double)(float)v : v, "--%s %s",
                 o->name, text);
}

Test(press_table, values_outside_the_range_are_refused_naming_the_option) {
    int n_checked = 0;
    for (int i = 0; i < kv_n_press_options; i++) {
        const struct press_option *o = &kv_press_options[i];
        char range[128], v[64];
        if (o->type == PRESS_OPT_NAME) {
            expect_refused(o, "no-such-press", "full, streaming, snapkv");
            continue;
        }
        if (o->type == PRESS_OPT_ENUM) {
            range[0] = '\0';
            for (int k = 0; o->values[k]; k++) {
                snprintf(range + strlen(range), sizeof range - strlen(range), "%s%s", k ? ", " : "",
                         o->values[k]);
                struct adakv_err e = {{0}};
                struct kv_press_config c;
                kv_press_config_default(&c);
                cr_expect_eq(kv_press_option_set(o, &c, o->values[k], &e), 0, "%s", e.msg);
                cr_expect_eq(field_value(o, &c), k, "--%s %s", o->name, o->values[k]);
            }
            expect_refused(o, "nope", range);
            n_checked++;
            continue;
        }
        snprintf(range, sizeof range, "%s%.10g, %.10g%s", o->lo_open ? "(" : "[", o->lo, o->hi,
                 o->hi_open ? ")" : "]");
        const double step = o->type == PRESS_OPT_FLOAT ? 0.25 : 1;
        snprintf(v, sizeof v, "%.10g", o->lo_open ? o->lo : o->lo - step);
        expect_refused(o, v, range);
        if (!isinf(o->hi)) {
            snprintf(v, sizeof v, "%.10g", o->hi_open ? o->hi : o->hi + step);
            expect_refused(o, v, range);
        }
        expect_refused(o, "x", range);
        expect_refused(o, "", range);
        expect_refused(o, "1 ", range); /* trailing junk */
        if (!o->lo_open && (!o->odd || fmod(o->lo, 2) == 1))
            expect_accepted(o, o->lo);
        if (!o->hi_open && !isinf(o->hi) && (!o->odd || fmod(o->hi, 2) == 1))
            expect_accepted(o, o->hi);
        if (o->odd)
            expect_refused(o, "4", "odd in");
        n_checked++;
    }
    cr_expect_geq(n_checked, 15, "only %d options", n_checked);
    struct adakv_err e = {{0}};
    struct adakv_press *p = adakv_press_new();
    cr_expect_eq(adakv_press_set(p, "no-such-option", "1", &e), -1);
    cr_expect(strstr(e.msg, "unknown press option 'no-such-option'"), "%s", e.msg);
    adakv_press_free(p);
}

/* ---------------------------------------------------------------- --help */

/* Whether text names word as a word of its own (not a prefix: --ada / --ada-kvpress). */
static bool names(const char *text, const char *word) {
    for (const char *h = text; (h = strstr(h, word)); h++)
        if ((h == text || strchr(" ,(\n", h[-1])) && strchr(" ,;:)\n", h[strlen(word)]))
            return true;
    return false;
}

/* The --help entry of the flag `flag`: from the line that starts with it to the next flag's line
 * (empty when no line starts with it). */
static void entry_of(const char *help, const char *flag, char *buf, size_t size) {
    char needle[96];
    snprintf(needle, sizeof needle, "      %s ", flag);
    const char *at = help;
    while (at && strncmp(at, needle, strlen(needle)))
        at = (at = strchr(at, '\n')) ? at + 1 : NULL;
    buf[0] = '\0';
    if (!at)
        return;
    const char *end = strstr(at + 1, "\n      -");
    snprintf(buf, size, "%.*s", (int)(end ? end - at : (long)strlen(at)), at);
}

Test(press_table, help_lists_every_press_and_option) {
    char *help = adakv_press_usage();
    cr_assert(help);
    for (int i = 0; i < kv_n_presses; i++) {
        const struct press_desc *d = &kv_presses[i];
        cr_expect(names(help, d->name), "press %s not in --help", d->name);
        for (int k = 0; k < 3 && d->alias[k]; k++)
            cr_expect(names(help, d->alias[k]), "alias %s not in --help", d->alias[k]);
        for (int k = 0; k < 3 && d->ada[k]; k++)
            cr_expect(names(help, d->ada[k]), "ada name %s not in --help", d->ada[k]);
    }
    for (int i = 0; i < kv_n_press_options; i++) {
        const struct press_option *o = &kv_press_options[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", o->name);
        /* programs take the option as a flag or not, and --help says exactly that */
        cr_expect_eq(names(help, o->flag ? o->flag : flag), !o->api_only, "%s", flag);
        cr_expect_eq(adakv_press_is_flag(o->name), !o->api_only && !o->flag, "%s", flag);
        if (o->api_only)
            continue;
        /* the option's help text, its default and its range are on its lines */
        char at[1024], first[24];
        entry_of(help, o->flag ? o->flag : flag, at, sizeof at);
        cr_expect(*at, "no line starts with %s", flag);
        snprintf(first, sizeof first, "%.*s", (int)strcspn(o->help, " "), o->help);
        cr_expect(strstr(at, first), "%s: help text '%s' missing: %s", flag, first, at);
        if (o->type == PRESS_OPT_INT || o->type == PRESS_OPT_FLOAT) {
            /* as adakv_press_usage writes it: "in [lo, hi]" with a real upper bound, ">= lo"
             * when the bound only guards overflow, "> lo" when open below */
            char lo[64];
            if (o->lo_open)
                snprintf(lo, sizeof lo, "> %.10g", o->lo);
            else if (o->hi >= 1 << 20)
                snprintf(lo, sizeof lo, ">= %.10g", o->lo);
            else
                snprintf(lo, sizeof lo, "in [%.10g, %.10g%s", o->lo, o->hi, o->hi_open ? ")" : "]");
            cr_expect(strstr(at, lo), "%s: range '%s' not shown: %s", flag, lo, at);
        }
        if (!o->zero_unset && o->type != PRESS_OPT_NAME && !o->flag) {
            char def[48];
            if (o->type == PRESS_OPT_ENUM)
                snprintf(def, sizeof def, "(default %s)", o->values[(int)o->def]);
            else
                snprintf(def, sizeof def, "(default %.10g)", o->def);
            cr_expect(strstr(at, def), "%s: %s not shown: %s", flag, def, at);
        }
    }
    for (const char *l = help; l && *l; l = (l = strchr(l, '\n')) ? l + 1 : NULL)
        cr_expect_leq(strcspn(l, "\n"), 92, "line longer than 92 columns: %.*s",
                      (int)strcspn(l, "\n"), l);
    adakv_free(help);
}
