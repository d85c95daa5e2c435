/* adakv-fidelity's core claims on a short stretch of the real fidelity text (the full study in
 * tools/fidelity.sh takes an hour; these runs take seconds):
 *   - the full cache, and any press whose budget covers the whole context, reproduce the
 *     reference logits bit for bit: KL exactly 0, top-1 agreement 1;
 *   - a real eviction moves the distribution (KL > 0) and keeps exactly the budget per head;
 *   - the default shared prefill (one prefill, a restored copy of the cache per pair) gives the
 *     same rows and the same logits as a full prefill per pair (--no-reuse);
 *   - an int8 cache against an f32 reference differs, but only as much as a working cache;
 *   - bad flags and inputs give one stderr line and exit 1.
 * Runs the built binary as a child process and reads its CSV. */
#include "test-env.h"
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_LAYER   30 /* default model: 30 layers x 3 KV heads */
#define N_HEAD_KV 3

struct run {
    int status;      /* exit status, or 128 + signal */
    char err[16384]; /* stderr */
};

static void slurp(const char *path, char *buf, size_t cap) {
    size_t n = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        n = fread(buf, 1, cap - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
}

/* Runs adakv-fidelity with args (NULL-terminated); stdout is discarded, stderr kept. */
static void run_tool(struct run *r, const char *const *args) {
    char exe[1024], err_path[1100];
    snprintf(exe, sizeof exe, "%s/adakv-fidelity", env("ADAKV_BUILDDIR"));
    snprintf(err_path, sizeof err_path, "%s/tests/fidelity-%d.err", env("ADAKV_BUILDDIR"),
             (int)getpid());
    const char *argv[64] = {exe};
    int n = 1;
    for (; args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int out = open("/dev/null", O_WRONLY),
            err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(out, 1);
        dup2(err, 2);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    slurp(err_path, r->err, sizeof r->err);
    unlink(err_path);
}

static char *text_path(void) {
    static char p[1024];
    snprintf(p, sizeof p, "%s/tests/data/text/fidelity-en.txt", env("ADAKV_SRCDIR"));
    return p;
}

static char *csv_path(const char *name) {
    static char p[2][1024];
    static int i;
    char *s = p[i++ % 2];
    snprintf(s, 1024, "%s/tests/fidelity-%s-%d.csv", env("ADAKV_BUILDDIR"), name, (int)getpid());
    return s;
}

/* ==== the CSV the tool writes ==== */

#define MAX_ROWS 16
#define MAX_COLS 24

struct csv {
    char names[MAX_COLS][32];
    char cell[MAX_ROWS][MAX_COLS][48];
    int n_col, n_row;
};

static int split_line(char *line, char out[][48], int max) {
    int n = 0;
    for (char *tok = strtok(line, ",\n"); tok && n < max; tok = strtok(NULL, ",\n"))
        snprintf(out[n++], 48, "%s", tok);
    return n;
}

static void csv_read(const char *path, struct csv *c) {
    FILE *f = fopen(path, "r");
    cr_assert(f, "no CSV at %s", path);
    char line[1024], names[MAX_COLS][48];
    memset(c, 0, sizeof *c);
    cr_assert(fgets(line, sizeof line, f), "empty CSV %s", path);
    c->n_col = split_line(line, names, MAX_COLS);
    for (int i = 0; i < c->n_col; i++)
        snprintf(c->names[i], sizeof c->names[i], "%s", names[i]);
    while (c->n_row < MAX_ROWS && fgets(line, sizeof line, f)) {
        int n = split_line(line, c->cell[c->n_row], MAX_COLS);
        cr_assert_eq(n, c->n_col, "CSV row %d has %d cells, header %d", c->n_row, n, c->n_col);
        c->n_row++;
    }
    fclose(f);
    unlink(path);
}

static const char *csv_get(const struct csv *c, int row, const char *name) {
    for (int i = 0; i < c->n_col; i++)
        if (!strcmp(c->names[i], name))
            return c->cell[row][i];
    cr_assert_fail("CSV has no column '%s'", name);
    return NULL;
}

static double csv_num(const struct csv *c, int row, const char *name) {
    return strtod(csv_get(c, row, name), NULL);
}

/* Row index of (press, budget), or fails. */
static int csv_find(const struct csv *c, const char *press, const char *budget) {
    for (int r = 0; r < c->n_row; r++)
        if (!strcmp(csv_get(c, r, "press"), press) && !strcmp(csv_get(c, r, "budget"), budget))
            return r;
    cr_assert_fail("CSV has no row for %s at budget %s", press, budget);
    return -1;
}

static void expect_identical_to_reference(const struct csv *c, int r) {
    cr_expect_eq(csv_num(c, r, "kl_mean"), 0.0, "%s/%s: mean KL %s, expected exactly 0",
                 csv_get(c, r, "press"), csv_get(c, r, "budget"), csv_get(c, r, "kl_mean"));
    cr_expect_eq(csv_num(c, r, "kl_max"), 0.0);
    cr_expect_eq(csv_num(c, r, "top1"), 1.0);
    cr_expect_eq(csv_num(c, r, "nll"), csv_num(c, r, "nll_ref"));
}

/* ==== claims ==== */

Test(fidelity, full_and_covering_budgets_match_reference_evictions_do_not) {
    const char *csv = csv_path("agnostic");
    const char *a[] = {
        "-m",          env("ADAKV_MODEL"), "-f",    text_path(), "--prefix",
        "300",         "--continuation",   "24",    "--press",   "full,snapkv,ada-snapkv,streaming",
        "--kv-budget", "48,4096",          "--csv", csv,         NULL};
    struct run r;
    run_tool(&r, a);
    cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
    struct csv c;
    csv_read(csv, &c);
    cr_assert_eq(c.n_row, 7, "full once + 3 presses x 2 budgets, got %d rows", c.n_row);

    int full = csv_find(&c, "full", "all");
    expect_identical_to_reference(&c, full);
    cr_expect_eq(csv_num(&c, full, "kv_rows"), 300.0 * N_LAYER * N_HEAD_KV);
    cr_expect_eq(csv_num(&c, full, "n_scored"), 24.0);
    /* a budget above the context length evicts nothing: bit-identical logits */
    expect_identical_to_reference(&c, csv_find(&c, "snapkv", "4096"));
    expect_identical_to_reference(&c, csv_find(&c, "ada-snapkv", "4096"));
    expect_identical_to_reference(&c, csv_find(&c, "streaming", "4096"));

    const char *evicting[] = {"snapkv", "ada-snapkv", "streaming"};
    for (int i = 0; i < 3; i++) {
        int row = csv_find(&c, evicting[i], "48");
        double kl = csv_num(&c, row, "kl_mean");
        cr_expect(kl > 1e-6 && isfinite(kl), "%s/48: mean KL %g should be > 0", evicting[i], kl);
        cr_expect(csv_num(&c, row, "kl_max") >= kl);
        cr_expect(csv_num(&c, row, "top1") < 1.0 || kl < 0.05);
        /* Ada-KV moves rows between heads but keeps the layer total */
        cr_expect_eq(csv_num(&c, row, "kv_rows"), 48.0 * N_LAYER * N_HEAD_KV, "%s: %s rows",
                     evicting[i], csv_get(&c, row, "kv_rows"));
        cr_expect_eq(csv_num(&c, row, "nll_ref"), csv_num(&c, full, "nll_ref"));
    }
}

Test(fidelity, int8_cache_is_close_to_f32_but_not_identical) {
    const char *csv = csv_path("int8-f32");
    const char *a[] = {"-m",
                       env("ADAKV_MODEL"),
                       "-f",
                       text_path(),
                       "--prefix",
                       "300",
                       "--continuation",
                       "24",
                       "--press",
                       "full",
                       "--kv-type",
                       "int8",
                       "--ref-kv-type",
                       "f32",
                       "--csv",
                       csv,
                       NULL};
    struct run r;
    run_tool(&r, a);
    cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
    struct csv c;
    csv_read(csv, &c);
    cr_assert_eq(c.n_row, 1);
    double kl = csv_num(&c, 0, "kl_mean");
    /* Not issue 3's bar (KL 0.002): that one is measured by tools/fidelity.sh on 6,000 tokens
     * and currently fails (docs/fidelity.md: ~0.007, the same order as f16 against f32, so it
     * is the fast kernels' sensitivity, not int8 storage alone). Here: the types really differ,
     * and by far less than an eviction moves the logits (snapkv at budget 48 here: ~0.36), which
     * a broken int8 path (bad scales, wrong rows) would not manage. */
    cr_expect(kl > 0.0 && kl < 0.05, "int8 vs f32 mean KL %g, expected in (0, 0.05)", kl);
    cr_expect_str_eq(csv_get(&c, 0, "ref_kv_type"), "f32");
}

Test(fidelity, shared_prefill_equals_a_prefill_per_pair) {
    const char *presses = "snapkv,ada-snapkv,pyramid,critical,streaming";
    const char *csv[2] = {csv_path("reuse"), csv_path("no-reuse")};
    struct csv c[2];
    for (int k = 0; k < 2; k++) {
        const char *a[] = {"-m",
                           env("ADAKV_MODEL"),
                           "-f",
                           text_path(),
                           "--prefix",
                           "300",
                           "--continuation",
                           "16",
                           "--press",
                           presses,
                           "--kv-budget",
                           "48",
                           "--csv",
                           csv[k],
                           k ? "--no-reuse" : NULL,
                           NULL};
        struct run r;
        run_tool(&r, a);
        cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
        csv_read(csv[k], &c[k]);
    }
    cr_assert_eq(c[0].n_row, 5);
    cr_assert_eq(c[1].n_row, 5);
    /* Bit for bit: the same rows kept and the same logits (KL and NLL printed to 9 digits). If a
     * kernel's results ever depend on how many tokens one prefill call holds, this fails and
     * the shared-prefill shortcut has to be revisited. */
    const char *cols[] = {"press", "kv_rows", "kl_mean", "kl_max", "top1", "nll_ref", "nll"};
    for (int row = 0; row < 5; row++)
        for (size_t j = 0; j < sizeof cols / sizeof cols[0]; j++)
            cr_expect_str_eq(csv_get(&c[0], row, cols[j]), csv_get(&c[1], row, cols[j]),
                             "%s, column %s", csv_get(&c[0], row, "press"), cols[j]);
}

/* --press-opt reaches every press: with alpha=1 Ada-SnapKV's floor is the whole budget, so it
 * keeps exactly SnapKV's rows (same logits); with the default alpha it keeps other rows. */
Test(fidelity, press_options_apply_to_every_press) {
    const char *csv[2] = {csv_path("alpha1"), csv_path("alpha-default")};
    struct csv c[2];
    for (int k = 0; k < 2; k++) {
        const char *a[] = {"-m",
                           env("ADAKV_MODEL"),
                           "-f",
                           text_path(),
                           "--prefix",
                           "300",
                           "--continuation",
                           "16",
                           "--press",
                           "snapkv,ada-snapkv",
                           "--kv-budget",
                           "48",
                           "--csv",
                           csv[k],
                           k ? NULL : "--press-opt",
                           "alpha=1",
                           NULL};
        struct run r;
        run_tool(&r, a);
        cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
        csv_read(csv[k], &c[k]);
        cr_assert_eq(c[k].n_row, 2);
    }
    const int s1 = csv_find(&c[0], "snapkv", "48"), a1 = csv_find(&c[0], "ada-snapkv", "48");
    cr_expect_str_eq(csv_get(&c[0], s1, "kl_mean"), csv_get(&c[0], a1, "kl_mean"));
    cr_expect_str_eq(csv_get(&c[0], s1, "nll"), csv_get(&c[0], a1, "nll"));
    const int s2 = csv_find(&c[1], "snapkv", "48"), a2 = csv_find(&c[1], "ada-snapkv", "48");
    cr_expect_str_neq(csv_get(&c[1], s2, "kl_mean"), csv_get(&c[1], a2, "kl_mean"),
                      "Ada-SnapKV at alpha 0.2 kept the same rows as SnapKV");
}

Test(fidelity, aware_mode_scores_after_the_window) {
    const char *csv = csv_path("aware");
    const char *a[] = {"-m",
                       env("ADAKV_MODEL"),
                       "-f",
                       text_path(),
                       "--prefix",
                       "300",
                       "--continuation",
                       "40",
                       "--mode",
                       "aware",
                       "--press",
                       "full,snapkv",
                       "--kv-budget",
                       "48",
                       "--csv",
                       csv,
                       NULL};
    struct run r;
    run_tool(&r, a);
    cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
    struct csv c;
    csv_read(csv, &c);
    cr_assert_eq(c.n_row, 2);
    int full = csv_find(&c, "full", "all");
    expect_identical_to_reference(&c, full);
    cr_expect_eq(csv_num(&c, full, "n_scored"), 40.0 - 32.0);
    /* the press compressed context + the 32 window tokens: 332 rows per head before it */
    cr_expect_eq(csv_num(&c, full, "kv_rows"), 332.0 * N_LAYER * N_HEAD_KV);
    int snap = csv_find(&c, "snapkv", "48");
    cr_expect(csv_num(&c, snap, "kl_mean") > 1e-6);
    cr_expect_str_eq(csv_get(&c, snap, "mode"), "aware");
}

/* ==== bad input ==== */

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void expect_one_line_error(const struct run *r, const char *what) {
    cr_expect(r->status == 1, "exit status %d, stderr: %s", r->status, r->err);
    cr_expect_eq(count_lines(r->err), 1, "expected one stderr line, got: %s", r->err);
    cr_expect(strstr(r->err, what), "stderr lacks '%s': %s", what, r->err);
}

Test(fidelity, bad_flags_and_inputs) {
    const char *model = env("ADAKV_MODEL"), *text = text_path();
    struct {
        const char *args[12];
        const char *what;
    } cases[] = {
        {{"-m", model, "-f", text, "--press", "snapkvv"}, "snapkvv"},
        {{"-m", model, "-f", text, "--press", "full,,snapkv"}, "--press"},
        {{"-m", model, "-f", text, "--kv-budget", "0"}, "--kv-budget"},
        {{"-m", model, "-f", text, "--kv-budget", "64,-5"}, "--kv-budget"},
        {{"-m", model, "-f", text, "--kv-budget", "12x"}, "--kv-budget"},
        {{"-m", model, "-f", text, "--kv-type", "q4_0"}, "q4_0"},
        {{"-m", model, "-f", text, "--ref-kv-type", "bf16"}, "bf16"},
        {{"-m", model, "-f", text, "--mode", "sideways"}, "--mode"},
        {{"-m", model, "-f", text, "--prefix", "-3"}, "--prefix"},
        {{"-m", model, "-f", text, "--continuation", "0"}, "--continuation"},
        {{"-m", model, "-f", text, "--prefix", "9900", "--continuation", "500"}, "too short"},
        {{"-m", model, "-f", text, "--prefix", "16"}, "--window"},
        {{"-m", model, "-f", text, "--prefix", "100", "--continuation", "32", "--mode", "aware"},
         "aware"},
        {{"-m", model, "-f", "/nonexistent/text.txt"}, "/nonexistent/text.txt"},
        {{"-m", "/nonexistent/model.gguf", "-f", text}, "/nonexistent/model.gguf"},
        {{"-f", text}, "-m"},
        {{"-m", model}, "-f"},
        {{"-m", model, "-f", text, "--csv"}, "--csv"},
        {{"-m", model, "-f", text, "--bogus", "1"}, "--bogus"},
        {{"-m", model, "-f", text, "--press-opt", "alpha"}, "--press-opt"},
        {{"-m", model, "-f", text, "--press-opt", "=1"}, "--press-opt"},
        {{"-m", model, "-f", text, "--press-opt", "alfa=1"}, "alfa"},
        {{"-m", model, "-f", text, "--press-opt", "alpha=2"}, "--alpha"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct run r;
        run_tool(&r, cases[i].args);
        expect_one_line_error(&r, cases[i].what);
    }
}
