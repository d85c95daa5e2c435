/* adakv-eval on the default model, small enough for make check (256-token pass-key prompts):
 * the shared prefill (one full-cache prefill of the context minus its last window, restored
 * for each press) gives the rows a prefill from scratch gives; a rerun resumes from the CSV;
 * a compressed row keeps the rows its ratio says; --dump-cases writes the token ids the eval
 * prefills (they give its answer); bad flags are one-line errors. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adakv-ext.h"
#include "adakv.h"
#include "test-env.h"
#include "tokenizer.h"

struct run {
    int status;
    char err[16384];
};

static void run_eval(struct run *r, const char *const *args) {
    char exe[1024], hay[1024], err_path[1100];
    snprintf(exe, sizeof exe, "%s/adakv-eval", env("ADAKV_BUILDDIR"));
    snprintf(hay, sizeof hay, "%s/tests/data/text/fidelity-en.txt", env("ADAKV_SRCDIR"));
    snprintf(err_path, sizeof err_path, "%s/tests/eval-cli-%d.err", env("ADAKV_BUILDDIR"),
             (int)getpid());
    const char *argv[64] = {exe,  "-m", env("ADAKV_MODEL"), "--haystack", hay,
                            "-t", "1",  "--progress",       "off"};
    int n = 9;
    for (int i = 0; args[i]; i++)
        argv[n++] = args[i];
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
    FILE *f = fopen(err_path, "r");
    cr_assert(f);
    size_t k = fread(r->err, 1, sizeof r->err - 1, f);
    r->err[k] = '\0';
    fclose(f);
    unlink(err_path);
}

static const char *csv_path(const char *name) {
    static char buf[2][1024];
    static int i;
    char *p = buf[i++ % 2];
    snprintf(p, 1024, "%s/tests/%s-%d.csv", env("ADAKV_BUILDDIR"), name, (int)getpid());
    unlink(p);
    return p;
}

/* The rows of a results file, each without its seconds column (the 18th), sorted. */
static int rows_without_time(const char *path, char rows[][1024], int cap) {
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s", path);
    char line[2048];
    int n = 0;
    cr_assert(fgets(line, sizeof line, f));
    while (n < cap && fgets(line, sizeof line, f)) {
        char *o = rows[n++];
        int field = 1; /* commas end fields up to the answer (20th), which may hold some */
        for (char *c = line; *c && *c != '\n'; c++) {
            bool comma = *c == ',' && field < 20;
            if (field != 18) /* field 18 goes with its trailing comma */
                *o++ = *c;
            field += comma;
        }
        *o = '\0';
    }
    fclose(f);
    for (int i = 1; i < n; i++) /* insertion sort: a handful of rows */
        for (int j = i; j > 0 && strcmp(rows[j - 1], rows[j]) > 0; j--) {
            char t[1024];
            strcpy(t, rows[j]);
            strcpy(rows[j], rows[j - 1]);
            strcpy(rows[j - 1], t);
        }
    return n;
}

#define SWEEP                                                                                      \
    "--tasks", "passkey", "--lengths", "256", "--depths", "30,70", "--press",                      \
        "full,snapkv,ada-snapkv", "--kv-ratio", "0.8"

Test(eval_cli, shared_prefill_equals_prefill_from_scratch, .timeout = 600) {
    const char *shared = csv_path("eval-shared"), *scratch = csv_path("eval-scratch");
    struct run r;
    const char *a[] = {SWEEP, "--csv", shared, NULL};
    run_eval(&r, a);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "12 rows to run, 0 already"), "%s", r.err);
    const char *b[] = {SWEEP, "--no-share", "--csv", scratch, NULL};
    run_eval(&r, b);
    cr_assert_eq(r.status, 0, "%s", r.err);

    static char x[32][1024], y[32][1024];
    int nx = rows_without_time(shared, x, 32), ny = rows_without_time(scratch, y, 32);
    cr_assert_eq(nx, 12, "2 cases x (full in 2 modes + 2 presses x 2 modes)");
    cr_assert_eq(ny, 12);
    for (int i = 0; i < nx; i++)
        cr_expect_str_eq(x[i], y[i], "shared and from-scratch rows differ");

    /* kv_rows (11th column) against kv_rows_full (12th): 0.8 removed keeps floor(0.2 * len)
     * rows per head, window included, so a fifth over 30 layers x 3 KV heads; Ada-KV's
     * rounded head budgets may differ by a few rows per head (270 = 3 per head); the full
     * cache keeps them all */
    for (int i = 0; i < nx; i++) {
        char press[32];
        double ratio;
        unsigned long kept, full;
        cr_assert_eq(sscanf(x[i], "passkey,256,%*d,0,1,%31[^,],%lf,%*[^,],%*u,%*u,%lu,%lu", press,
                            &ratio, &kept, &full),
                     4, "%s", x[i]);
        if (!strcmp(press, "full"))
            cr_expect_eq(kept, full, "%s", x[i]);
        else
            cr_expect(kept <= full / 5 + 270 && kept + 270 >= full / 5, "%s: %lu of %lu", x[i],
                      kept, full);
    }

    /* a rerun finds every row done and runs nothing */
    run_eval(&r, a);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "0 rows to run, 12 already"), "%s", r.err);
    unlink(scratch);
    unlink(shared);
}

/* The integers of the JSON array after "name":[ in line, into ids (cap); their count. */
static int json_ids(const char *line, const char *name, int32_t *ids, int cap) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\":[", name);
    const char *p = strstr(line, key);
    cr_assert(p, "no %s in the dump", name);
    p += strlen(key);
    int n = 0;
    while (*p != ']') {
        char *end;
        long v = strtol(p, &end, 10);
        cr_assert(end != p && n < cap, "%s: bad array at '%.20s'", name, p);
        ids[n++] = (int32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

/* A CSV field (1-based) of row, unquoted and unescaped; fields before the answer hold no commas. */
static void csv_field(const char *row, int field, char *out, size_t cap) {
    const char *p = row;
    for (int f = 1; f < field; f++) {
        p = strchr(p, ',');
        cr_assert(p, "row has fewer than %d fields: %s", field, row);
        p++;
    }
    size_t n = 0;
    if (*p == '"') {
        for (p++; *p && !(p[0] == '"' && p[1] != '"') && n + 1 < cap; p++) {
            if (p[0] == '\\' && p[1]) /* eval-csv.h writes \n, \r and \\ */
                out[n++] = *++p == 'n' ? '\n' : *p == 'r' ? '\r' : *p;
            else
                out[n++] = *p;
            p += p[0] == '"'; /* "" */
        }
    } else {
        for (; *p && *p != ',' && *p != '\n' && n + 1 < cap; p++)
            out[n++] = *p;
    }
    out[n] = '\0';
}

/* tools/kvpress/suite.py reads the cases from --dump-cases: its token ids must be the ones the
 * eval prefills. Here they are prefilled through the library as the eval does (context, then
 * question, full cache) and decoded greedily: the answer must be the CSV's, token for token, and
 * the counts must be the CSV's n_tokens and n_context. */
Test(eval_cli, dumped_cases_are_what_the_eval_prefills, .timeout = 600) {
    const char *csv = csv_path("eval-dump"), *dump = csv_path("eval-dump-jsonl");
    struct run r;
    const char *a[] = {"--tasks",      "passkey", "--lengths", "256",    "--depths",
                       "70",           "--press", "full",      "--mode", "agnostic",
                       "--dump-cases", dump,      NULL};
    run_eval(&r, a);
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *b[] = {"--tasks", "passkey", "--lengths", "256",   "--depths", "70", "--press",
                       "full",    "--mode",  "agnostic",  "--csv", csv,        NULL};
    run_eval(&r, b);
    cr_assert_eq(r.status, 0, "%s", r.err);

    static char line[1 << 16], row[4096];
    FILE *f = fopen(dump, "r");
    cr_assert(f);
    cr_assert(fgets(line, sizeof line, f));
    cr_expect(!fgets(row, sizeof row, f), "one case, one line");
    fclose(f);
    cr_expect(strstr(line, "{\"task\":\"passkey\",\"length\":256,\"depth\":70,\"sample\":0,"
                           "\"seed\":1,") == line,
              "%.100s", line);
    f = fopen(csv, "r");
    cr_assert(f);
    cr_assert(fgets(row, sizeof row, f) && fgets(row, sizeof row, f)); /* the header, one row */
    fclose(f);

    static int32_t ct[1024], qt[256], eog[64];
    const int n_ct = json_ids(line, "context_ids", ct, 1024),
              n_qt = json_ids(line, "question_ids", qt, 256),
              n_eog = json_ids(line, "eog_ids", eog, 64);
    char field[1024], expected[64];
    csv_field(row, 9, field, sizeof field);
    cr_expect_eq(atoi(field), n_ct + n_qt, "n_tokens %s against the dump's %d + %d", field, n_ct,
                 n_qt);
    csv_field(row, 10, field, sizeof field);
    cr_expect_eq(atoi(field), n_ct, "n_context %s against the dump's %d", field, n_ct);
    csv_field(row, 17, field, sizeof field);
    const int n_answer = atoi(field);
    csv_field(row, 19, expected, sizeof expected);
    cr_expect(strstr(line, "\"expected\":[\"") && strstr(line, expected), "expected %s", expected);
    char answer[1024];
    csv_field(row, 20, answer, sizeof answer);

    struct adakv_err e = {{0}};
    struct adakv_model_params mp = {.n_threads = 1};
    struct adakv_model *m = adakv_model_load(env("ADAKV_MODEL"), &mp, &e);
    cr_assert(m, "%s", e.msg);
    const struct tokenizer *tok = adakv_model_tokenizer(m);
    for (int i = 0; i < n_eog; i++)
        cr_expect(tokenizer_is_eog(tok, eog[i]), "eog id %d", eog[i]);
    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(tokenizer_decode(tok, ct, (size_t)n_ct, true, false, &text, &len, &e), 0);
    cr_expect(strstr(text, expected), "the context holds the pass key %s", expected);
    free(text);
    cr_assert_eq(tokenizer_decode(tok, qt, (size_t)n_qt, true, false, &text, &len, &e), 0);
    cr_expect(strstr(text, "What is the pass key?") && strstr(text, "The pass key is"), "%s", text);
    free(text);

    struct adakv_model_info info;
    adakv_model_get_info(m, &info);
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = 512;
    cp.n_threads = 1;
    struct adakv_ctx *c = adakv_ctx_new(m, &cp, &e);
    cr_assert(c, "%s", e.msg);
    float *logits = malloc((size_t)info.n_vocab * sizeof *logits);
    int32_t out[64];
    cr_assert(logits && n_answer > 0 && n_answer <= 64);
    cr_assert_eq(adakv_eval(c, ct, n_ct, NULL, false, &e), 0, "%s", e.msg);
    cr_assert_eq(adakv_eval(c, qt, n_qt, logits, false, &e), 0, "%s", e.msg);
    for (int i = 0; i < n_answer; i++) {
        int32_t best = 0;
        for (int32_t v = 1; v < info.n_vocab; v++)
            best = logits[v] > logits[best] ? v : best;
        out[i] = best;
        if (i + 1 < n_answer)
            cr_assert_eq(adakv_eval(c, &best, 1, logits, false, &e), 0, "%s", e.msg);
    }
    cr_assert_eq(tokenizer_decode(tok, out, (size_t)n_answer, true, false, &text, &len, &e), 0);
    cr_expect_str_eq(text, answer, "the dumped ids answer otherwise than the eval");
    free(text);
    free(logits);
    adakv_ctx_free(c);
    adakv_model_free(m);
    unlink(csv);
    unlink(dump);
}

Test(eval_cli, bad_flags_are_one_line_errors) {
    struct {
        const char *args[4], *what;
    } cases[] = {
        {{"--tasks", "passkey,nosuch", NULL}, "nosuch"},
        {{"--kv-ratio", "1.5", NULL}, "--kv-ratio"},
        {{"--press", "snapkv,snapkv", NULL}, "listed twice"},
        {{"--mode", "sideways", NULL}, "sideways"},
        {{"--depths", "120", NULL}, "--depths"},
        {{"--lengths", "999999", NULL}, "training context"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct run r;
        const char *a[8] = {"--csv", csv_path("eval-bad")};
        for (int k = 0; cases[i].args[k]; k++)
            a[2 + k] = cases[i].args[k];
        run_eval(&r, a);
        cr_expect(r.status == 1, "%s: exit %d", cases[i].what, r.status);
        cr_expect(strstr(r.err, cases[i].what) && strchr(r.err, '\n') == strrchr(r.err, '\n'),
                  "expected one line naming '%s': %s", cases[i].what, r.err);
    }
}
