/* adakv-eval on the default model, small enough for make check (256-token pass-key prompts):
 * the shared prefill (one full-cache prefill of the context minus its last window, restored
 * for each press) gives the rows a prefill from scratch gives; a rerun resumes from the CSV;
 * a compressed row keeps the rows its ratio says; bad flags are one-line errors. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-env.h"

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
