/* adakv's presses against kvpress's keep-sets (issue 12 part 2, docs/kvpress.md).
 *
 * tests/data/kvpress/<case>.txt holds, for one kvpress press and compression ratio, the token
 * positions kvpress kept in every layer and KV head of the default model after a prefill of
 * tests/data/kvpress/tokens.txt (adakv's own tokens of prompt.txt: context and question,
 * question-aware), and the adakv press settings meant to select the same rows. Written by
 * tools/kvpress/golden.py with kvpress on CPU torch; no Python is needed here.
 *
 * Each case prefills the same ids through adakv with that press (the public API, int8 KV cache)
 * and compares the rows every (layer, KV head) segment holds afterwards: overlap = |adakv kept
 * and kvpress kept| / max(|adakv kept|, |kvpress kept|). The bound is MIN_OVERLAP for every head:
 * kvpress scores over f32 keys and values, adakv over int8 ones, so near-ties can swap; anything
 * more is a departure docs/kvpress.md must explain. A sensitivity case checks the bound is not
 * vacuous: SnapKV at adakv's own defaults (window 32, max-pool 7) must fall below it. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adakv-ext.h"
#include "kv-cache.h"
#include "ops.h"
#include "test-env.h"
#include "tokenizer.h"

#define MIN_OVERLAP 0.95

enum { MAX_TOKENS = 4096, MAX_LINE = 32768 };

struct golden {
    char settings[512]; /* "press=snapkv kv-ratio=0.5 ..." */
    int n_layer, n_head_kv, n_tok;
    unsigned char *kept; /* [n_layer][n_head_kv][n_tok] 0/1 */
    int32_t *rec;        /* KVzip: the reconstruction ids kvpress fed after the prompt, or NULL */
    int n_rec;
};

static void path_of(char *buf, size_t size, const char *file) {
    snprintf(buf, size, "%.3000s/tests/data/kvpress/%.250s", env("ADAKV_SRCDIR"), file);
}

static int read_tokens(int32_t *ids) {
    char path[4096];
    path_of(path, sizeof path, "tokens.txt");
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    int n = 0;
    while (n < MAX_TOKENS && fscanf(f, "%d", &ids[n]) == 1)
        n++;
    fclose(f);
    cr_assert_gt(n, 0, "%s holds no token ids", path);
    return n;
}

static int hex_digit(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void read_golden(const char *name, struct golden *g) {
    char path[4096], file[256], line[MAX_LINE];
    snprintf(file, sizeof file, "%.200s.txt", name);
    path_of(path, sizeof path, file);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s (tools/kvpress/run.sh writes it)", path);
    memset(g, 0, sizeof *g);
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (!strncmp(line, "adakv ", 6)) {
            cr_assert_lt(strlen(line + 6), sizeof g->settings, "%s: settings too long", path);
            memcpy(g->settings, line + 6, strlen(line + 6) + 1);
        } else if (!strncmp(line, "rec ", 4)) {
            g->rec = malloc(MAX_TOKENS * sizeof *g->rec);
            int at = 4, k = 0;
            while (g->n_rec < MAX_TOKENS && sscanf(line + at, "%d%n", &g->rec[g->n_rec], &k) == 1)
                g->n_rec++, at += k;
            cr_assert_gt(g->n_rec, 0, "%s: empty rec line", path);
        } else if (!strncmp(line, "shape ", 6)) {
            cr_assert_eq(sscanf(line + 6, "%d %d %d", &g->n_layer, &g->n_head_kv, &g->n_tok), 3);
            g->kept = calloc((size_t)g->n_layer * g->n_head_kv * g->n_tok, 1);
        } else {
            int l, h, n, at;
            cr_assert_not_null(g->kept, "%s: keep-set before the shape line", path);
            cr_assert_eq(sscanf(line, "%d %d %d %n", &l, &h, &n, &at), 3, "%s: bad line", path);
            cr_assert(l >= 0 && l < g->n_layer && h >= 0 && h < g->n_head_kv, "%s: bad head", path);
            unsigned char *k = g->kept + ((size_t)l * g->n_head_kv + h) * g->n_tok;
            int count = 0;
            for (int j = 0; j < g->n_tok; j++) {
                int d = hex_digit(line[at + j / 4]);
                cr_assert(d >= 0, "%s: layer %d head %d: bad mask", path, l, h);
                k[j] = (unsigned char)((d >> (j % 4)) & 1);
                count += k[j];
            }
            cr_assert_eq(count, n, "%s: layer %d head %d: mask holds %d, line says %d", path, l, h,
                         count, n);
            rows++;
        }
    }
    fclose(f);
    cr_assert_eq(rows, g->n_layer * g->n_head_kv, "%s: %d keep-sets", path, rows);
}

/* Applies "name=value name=value ..." through adakv_press_set, then `extra` the same way. */
static void set_all(struct adakv_press *p, const char *settings, const char *extra) {
    const char *lists[2] = {settings, extra};
    for (int i = 0; i < 2; i++) {
        if (!lists[i])
            continue;
        char buf[512];
        cr_assert_lt(strlen(lists[i]), sizeof buf);
        memcpy(buf, lists[i], strlen(lists[i]) + 1);
        for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok;
             tok = strtok_r(NULL, " ", &save)) {
            char *eq = strchr(tok, '=');
            cr_assert_not_null(eq, "setting '%s' is not name=value", tok);
            *eq = '\0';
            struct adakv_err e = {{0}};
            cr_assert_eq(adakv_press_set(p, tok, eq + 1, &e), 0, "%s", e.msg);
        }
    }
}

struct overlap {
    double min, mean;
    int min_layer, min_head, count_diff; /* largest |adakv rows - kvpress rows| of a head */
};

/* Prefills the golden's tokens through adakv with its settings (plus `extra`, which overrides)
 * and compares every head's kept positions with kvpress's. */
static struct overlap compare(const char *name, const char *extra, bool f32) {
    static struct adakv_model *models[2];
    struct adakv_err e = {{0}};
    if (!models[f32]) {
        struct adakv_model_params mp = {
            .n_threads = 0, .prefill_gemm = f32 ? ADAKV_PREFILL_GEMM_F32 : ADAKV_PREFILL_GEMM_AUTO};
        models[f32] = adakv_model_load(env("ADAKV_MODEL"), &mp, &e);
        cr_assert_not_null(models[f32], "%s", e.msg);
    }
    struct adakv_model *m = models[f32];
    struct golden g;
    read_golden(name, &g);
    static int32_t ids[MAX_TOKENS];
    const int n = read_tokens(ids);
    cr_assert_eq(n, g.n_tok, "%s: %d tokens, tokens.txt has %d", name, g.n_tok, n);
    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    cr_assert_eq(info.n_layer, g.n_layer);
    cr_assert_eq(info.n_head_kv, g.n_head_kv);

    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = n + g.n_rec + 16;
    cp.kv_type = f32 ? ADAKV_KV_F32 : ADAKV_KV_INT8;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
    cr_assert_not_null(c, "%s", e.msg);
    struct adakv_press *p = adakv_press_new();
    set_all(p, g.settings, extra);
    cr_assert_eq(adakv_press_check(p, &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_ctx_set_press(c, p, false, &e), 0, "%s", e.msg);
    adakv_press_free(p);
    /* KVzip: the prompt, then kvpress's reconstruction ids (dropped again by the press) */
    cr_assert_eq(adakv_ctx_prefill_kvzip(c, ids, n, g.rec, g.n_rec, &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_ctx_n_past(c), n);

    const struct kv_cache *kv = adakv_ctx_kv(c);
    struct overlap o = {.min = 2.0};
    double sum = 0.0;
    for (int l = 0; l < g.n_layer; l++)
        for (int h = 0; h < g.n_head_kv; h++) {
            const struct kv_segment *s = kv_cache_seg(kv, l, h);
            const unsigned char *k = g.kept + ((size_t)l * g.n_head_kv + h) * g.n_tok;
            int both = 0, theirs = 0;
            for (int j = 0; j < g.n_tok; j++)
                theirs += k[j];
            for (int i = 0; i < s->len; i++) {
                cr_assert(s->pos[i] >= 0 && s->pos[i] < g.n_tok);
                both += k[s->pos[i]];
            }
            /* over the larger set, so keeping too many rows costs as much as too few */
            const double ov = (double)both / (s->len > theirs ? s->len : theirs);
            const int diff = abs(s->len - theirs);
            o.count_diff = diff > o.count_diff ? diff : o.count_diff;
            sum += ov;
            if (ov < o.min) {
                o.min = ov;
                o.min_layer = l;
                o.min_head = h;
            }
        }
    o.mean = sum / (g.n_layer * g.n_head_kv);
    fprintf(stderr,
            "kvpress_keep: %-16s %s%s%s%s: overlap per head min %.4f (layer %d head %d) mean "
            "%.4f, rows per head differ by <= %d\n",
            name, g.settings, extra ? " + " : "", extra ? extra : "", f32 ? " (f32 path)" : "",
            o.min, o.min_layer, o.min_head, o.mean, o.count_diff);
    adakv_ctx_free(c);
    free(g.kept);
    free(g.rec);
    return o;
}

static void check_bound(const char *name, double bound) {
    struct overlap o = compare(name, NULL, false);
    cr_expect_geq(o.min, bound,
                  "%s: layer %d head %d keeps only %.2f%% of kvpress's rows (bound %.0f%%)", name,
                  o.min_layer, o.min_head, 100.0 * o.min, 100.0 * bound);
}

/* The int8 path's per-head bound on the table this machine runs. The golden comparison is
 * documented on the AVX-512 table (docs/kvpress.md). On the AVX2 table the prompt's attention is
 * the AVX2 form of the fused kernel over AVX2 GEMMs: the same algorithm, but the hidden states,
 * and so the window queries, round differently, and near-tied rows of the weakest heads swap
 * (measured on an AVX-512 machine with ADAKV_ISA=avx2: adakv-50 91.9%, criticaladakv-50 93.4%,
 * expected-80 94.6% at their weakest head, means within 0.1 point of the AVX-512 table's; with the
 * VNNI kernel in the AVX2 table every figure matched). Elsewhere the bound is therefore 0.90,
 * still far above the wrong-window case below (docs/kvpress.md). */
static double int8_bound(void) {
    return strcmp(simd_ops_best()->isa, "avx512") == 0 ? MIN_OVERLAP : 0.90;
}

static void check(const char *name) {
    check_bound(name, int8_bound());
}

/* The ids are adakv's tokens of prompt.txt: the golden files were made from them, so a changed
 * tokenizer (or prompt) would silently compare different sequences. */
Test(kvpress_keep, tokens_are_adakvs_tokenization_of_the_prompt, .timeout = 120) {
    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {.n_threads = 1};
    struct adakv_model *m = adakv_model_load(env("ADAKV_MODEL"), &mp, &e);
    cr_assert_not_null(m, "%s", e.msg);
    char path[4096];
    path_of(path, sizeof path, "prompt.txt");
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    static char text[1 << 16];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    int32_t *got = NULL;
    size_t n = 0;
    cr_assert_eq(tokenizer_encode(adakv_model_tokenizer(m), text, len, true, false, &got, &n, &e),
                 0, "%s", e.msg);
    static int32_t want[MAX_TOKENS];
    const int nw = read_tokens(want);
    cr_assert_eq((int)n, nw, "prompt.txt gives %zu tokens, tokens.txt holds %d", n, nw);
    for (int i = 0; i < nw; i++)
        cr_assert_eq(got[i], want[i], "token %d: %d, tokens.txt says %d", i, got[i], want[i]);
    free(got);
    adakv_model_free(m);
}

Test(kvpress_keep, snapkv, .timeout = 600) {
    check("snapkv-50");
    check("snapkv-80");
}

Test(kvpress_keep, pyramidkv, .timeout = 600) {
    check("pyramidkv-50");
    check("pyramidkv-80");
}

Test(kvpress_keep, adakv_snapkv, .timeout = 600) {
    check("adakv-50");
    check("adakv-80");
}

Test(kvpress_keep, critical_adakv_snapkv, .timeout = 600) {
    check("criticaladakv-50");
    check("criticaladakv-80");
}

/* The question-agnostic presses (tools/kvpress/golden_agnostic.py, docs/presses.md): Expected
 * Attention as kvpress runs it (statistics of every query after the 4 sinks: --window L - 4),
 * and KVzip's scores (the reconstruction kvpress fed, prefilled through adakv_ctx_prefill_kvzip)
 * under adakv's uniform per-head selection. */
Test(kvpress_keep, expected_attention, .timeout = 600) {
    check("expected-50");
    check("expected-80");
}

/* KVzip on the int8 path: min 0.954 (0.5) and 0.913 (0.8), both in layer 18 head 2, which is
 * also SnapKV's weakest head; on the f32 path below it is >= 0.97 everywhere, so the residual is
 * the engine's int8 arithmetic: a row's score is one probability (a maximum), not SnapKV's mean
 * over a window, so near-ties among the many rows no reconstruction query singles out swap more
 * easily (docs/presses.md). */
Test(kvpress_keep, kvzip, .timeout = 600) {
    check_bound("kvzip-50", 0.95);
    check_bound("kvzip-80", 0.90);
}

Test(kvpress_keep, agnostic_f32_path, .timeout = 600) {
    const char *names[] = {"expected-50", "expected-80", "kvzip-50", "kvzip-80"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct overlap o = compare(names[i], NULL, true);
        cr_expect_geq(o.min, 0.97, "%s, f32 path: layer %d head %d keeps %.2f%% of kvpress's rows",
                      names[i], o.min_layer, o.min_head, 100.0 * o.min);
    }
}

/* The bound must be able to fail: adakv's own SnapKV defaults (window 32, max-pool 7) select
 * visibly different rows from kvpress's (window 64, avg-pool 5). */
Test(kvpress_keep, bound_catches_a_wrong_window, .timeout = 600) {
    struct overlap o = compare("snapkv-80", "window=32 pool-kernel=7 pool=max", false);
    cr_expect_lt(o.min, MIN_OVERLAP,
                 "window 32, max-pool 7 still keeps >= %.0f%% of kvpress's rows in every head",
                 100.0 * MIN_OVERLAP);
}

/* What is left below 100% above is the engine's arithmetic, not the presses: with f32 prompt
 * GEMMs (oneDNN on the dequantized weights, as transformers runs them) and an f32 KV cache,
 * SnapKV and AdaKV keep exactly kvpress's rows; PyramidKV differs by its per-layer rounding
 * (one row) and CriticalAdaKV by its stage-1 split (docs/kvpress.md, departures). */
Test(kvpress_keep, f32_engine_keeps_kvpress_rows, .timeout = 600) {
    const char *exact[] = {"snapkv-50", "snapkv-80", "adakv-50", "adakv-80"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        struct overlap o = compare(exact[i], NULL, true);
        cr_expect_eq(o.min, 1.0, "%s, f32 path: layer %d head %d keeps %.2f%% of kvpress's rows",
                     exact[i], o.min_layer, o.min_head, 100.0 * o.min);
    }
    const char *close[] = {"pyramidkv-50", "pyramidkv-80", "criticaladakv-50", "criticaladakv-80"};
    for (size_t i = 0; i < sizeof close / sizeof close[0]; i++) {
        struct overlap o = compare(close[i], NULL, true);
        cr_expect_geq(o.min, 0.98, "%s, f32 path: layer %d head %d keeps %.2f%% of kvpress's rows",
                      close[i], o.min_layer, o.min_head, 100.0 * o.min);
    }
}

/* CriticalAdaKV's stage 1 as kvpress splits it (critical-split=kvpress, the window counted in
 * each head's share, kvpress's own first_stage_ratio 0.5): on the f32 path every head keeps
 * exactly kvpress's rows, where the golden settings' one mapped critical-ratio only matches the
 * mean head (>= 0.98 above). */
Test(kvpress_keep, f32_critical_split_kvpress_keeps_kvpress_rows, .timeout = 600) {
    const char *names[] = {"criticaladakv-50", "criticaladakv-80"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct overlap o = compare(names[i], "critical-ratio=0.5 critical-split=kvpress", true);
        cr_expect_eq(o.min, 1.0, "%s, f32 path: layer %d head %d keeps %.2f%% of kvpress's rows",
                     names[i], o.min_layer, o.min_head, 100.0 * o.min);
    }
}
