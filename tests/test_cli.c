/* adakv-run as a user meets it: every bad input gives exactly one line on stderr that names the
 * file or flag, and a non-zero exit; never a crash. Runs the built binary as a child process. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv-press.h"
#include "test-env.h"

struct run {
    int status;      /* exit status, or 128 + signal */
    char err[8192];  /* stderr */
    char out[65536]; /* stdout */
};

static char *path_in_build(const char *name) {
    static char buf[4][1024];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, 1024, "%s/%s", env("ADAKV_BUILDDIR"), name);
    return p;
}

static void slurp(int fd, char *buf, size_t cap) {
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
}

/* Runs adakv-run with args (NULL-terminated); stdin from `stdin_text` (or /dev/null). */
static void run_cli(struct run *r, const char *stdin_text, const char *const *args) {
    char exe[1024];
    snprintf(exe, sizeof exe, "%s/adakv-run", env("ADAKV_BUILDDIR"));
    const char *argv[64] = {exe};
    int n = 1;
    for (; args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    char in_path[1024];
    snprintf(in_path, sizeof in_path, "%s/tests/cli-stdin-%d.txt", env("ADAKV_BUILDDIR"),
             (int)getpid());
    FILE *f = fopen(in_path, "w");
    cr_assert(f);
    if (stdin_text)
        fputs(stdin_text, f);
    fclose(f);
    char out_path[1100], err_path[1100];
    snprintf(out_path, sizeof out_path, "%s.out", in_path);
    snprintf(err_path, sizeof err_path, "%s.err", in_path);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int in = open(in_path, O_RDONLY), out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644),
            err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    int fd = open(err_path, O_RDONLY);
    slurp(fd, r->err, sizeof r->err);
    close(fd);
    fd = open(out_path, O_RDONLY);
    slurp(fd, r->out, sizeof r->out);
    close(fd);
    unlink(in_path);
    unlink(out_path);
    unlink(err_path);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The contract for bad input: non-zero exit (not a signal), one stderr line containing `what`. */
static void expect_one_line_error(const struct run *r, const char *what) {
    cr_assert(r->status != 0 && r->status < 128, "exit status %d, stderr: %s", r->status, r->err);
    cr_assert_eq(count_lines(r->err), 1, "expected one stderr line, got: %s", r->err);
    cr_assert(strstr(r->err, what), "stderr lacks '%s': %s", what, r->err);
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    fwrite(data, 1, n, f);
    fclose(f);
}

Test(cli, missing_model_file) {
    struct run r;
    const char *a[] = {"/nonexistent/model.gguf", "-p", "hi", NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, "/nonexistent/model.gguf");
}

Test(cli, non_gguf_file) {
    struct run r;
    char *p = path_in_build("tests/cli-not-gguf.bin");
    write_file(p, "this is plain text, not a GGUF model\n", 37);
    const char *a[] = {p, "-p", "hi", NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, p);
    unlink(p);
}

Test(cli, truncated_gguf) {
    /* the first 100 KiB of the real model: header and metadata cut mid-way */
    FILE *f = fopen(env("ADAKV_MODEL"), "rb");
    cr_assert(f, "default model missing: run tools/fetch-model.sh");
    static char buf[100 * 1024];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char *p = path_in_build("tests/cli-truncated.gguf");
    write_file(p, buf, n);
    struct run r;
    const char *a[] = {p, "-p", "hi", NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, p);
    unlink(p);
}

Test(cli, missing_prompt_file) {
    struct run r;
    const char *a[] = {env("ADAKV_MODEL"), "/nonexistent/prompt.txt", NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, "/nonexistent/prompt.txt");
}

/* fopen succeeds on a directory; the read fails, and the message says why. */
Test(cli, prompt_file_is_a_directory) {
    struct run r;
    const char *a[] = {env("ADAKV_MODEL"), "/", NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, "/: Is a directory");
}

Test(cli, empty_prompt_file) {
    char *p = path_in_build("tests/cli-empty.txt");
    write_file(p, "", 0);
    struct run r;
    const char *a[] = {env("ADAKV_MODEL"), p, NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, "empty");
    unlink(p);
}

Test(cli, empty_prompt_on_stdin) {
    struct run r;
    const char *a[] = {env("ADAKV_MODEL"), "-", NULL};
    run_cli(&r, "", a);
    expect_one_line_error(&r, "empty");
}

Test(cli, negative_n_predict) {
    struct run r;
    const char *a[] = {env("ADAKV_MODEL"), "-p", "hi", "-n", "-5", NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, "-n");
}

Test(cli, bad_numbers_and_unknown_flags) {
    const char *cases[][3] = {
        {"-c", "abc", "-c"},           {"-t", "-1", "-t"},
        {"--temp", "-0.5", "--temp"},  {"--top-p", "0", "--top-p"},
        {"--top-p", "1.5", "--top-p"}, {"--top-k", "x", "--top-k"},
        {"--kv-type", "q4_0", "q4_0"}, {"-s", "-3", "-s"},
        {"--bogus", "1", "--bogus"},   {"--progress", "maybe", "--progress"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct run r;
        const char *a[] = {env("ADAKV_MODEL"), "-p", "hi", cases[i][0], cases[i][1], NULL};
        run_cli(&r, NULL, a);
        expect_one_line_error(&r, cases[i][2]);
    }
}

Test(cli, missing_flag_value) {
    struct run r;
    const char *a[] = {env("ADAKV_MODEL"), "-p", NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, "-p");
}

Test(cli, prompt_longer_than_context) {
    struct run r;
    const char *a[] = {env("ADAKV_MODEL"),
                       "-p",
                       "one two three four five six seven eight nine ten eleven twelve",
                       "-c",
                       "8",
                       NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, "-c 8");
}

Test(cli, help_and_version_succeed) {
    struct run r;
    const char *a[] = {"--help", NULL};
    run_cli(&r, NULL, a);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "usage: adakv-run"));
    const char *b[] = {"--version", NULL};
    run_cli(&r, NULL, b);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "adakv-run "));
}

/* Copies the real model with `find` (n bytes) replaced by `repl` at its first occurrence after
 * byte offset `from`, so a test gets a GGUF that is valid except for one field. */
static char *patched_model(const char *name, const void *find, size_t n, const void *repl,
                           size_t skip_after_match) {
    FILE *f = fopen(env("ADAKV_MODEL"), "rb");
    cr_assert(f, "default model missing: run tools/fetch-model.sh");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size);
    cr_assert(buf && fread(buf, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    char *hit = memmem(buf, 8u << 20, find, n); /* metadata and tensor infos: first 8 MiB */
    cr_assert(hit, "pattern not found in the model header");
    memcpy(hit + skip_after_match, repl, n - skip_after_match);
    char *p = path_in_build(name);
    write_file(p, buf, (size_t)size);
    free(buf);
    return p;
}

Test(cli, unknown_architecture) {
    /* key "general.architecture", type 8 (string), length 5, "llama" -> "zzzzz" */
    char find[20 + 4 + 8 + 5], repl[sizeof find];
    memcpy(find, "general.architecture", 20);
    uint32_t t = 8;
    uint64_t len = 5;
    memcpy(find + 20, &t, 4);
    memcpy(find + 24, &len, 8);
    memcpy(find + 32, "llama", 5);
    memcpy(repl, find, sizeof find);
    memcpy(repl + 32, "zzzzz", 5);
    char *p = patched_model("tests/cli-arch.gguf", find, sizeof find, repl, 0);
    struct run r;
    const char *a[] = {p, "-p", "hi", NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, "zzzzz");
    unlink(p);
}

Test(cli, unsupported_tensor_type) {
    /* tensor info of token_embd.weight: name, n_dims 2, ne {576, 49152}, type 8 (Q8_0) -> 20
     * (IQ4_NL: a real ggml type with 32-element blocks that adakv does not implement) */
    const char *name = "token_embd.weight";
    char find[17 + 4 + 16 + 4], repl[sizeof find];
    memcpy(find, name, 17);
    uint32_t nd = 2, ty = 8, ty2 = 20;
    uint64_t ne[2] = {576, 49152};
    memcpy(find + 17, &nd, 4);
    memcpy(find + 21, ne, 16);
    memcpy(find + 37, &ty, 4);
    memcpy(repl, find, sizeof find);
    memcpy(repl + 37, &ty2, 4);
    char *p = patched_model("tests/cli-type.gguf", find, sizeof find, repl, 0);
    struct run r;
    const char *a[] = {p, "-p", "hi", NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, "token_embd.weight");
    unlink(p);
}

/* Every press flag rejects bad values with one line naming the flag (issue 3). */
Test(cli, bad_press_flags) {
    const char *cases[][3] = {
        {"--kv-budget", "0", "--kv-budget"},
        {"--kv-budget", "-5", "--kv-budget"},
        {"--kv-ratio", "1", "--kv-ratio"},
        {"--kv-ratio", "-0.1", "--kv-ratio"},
        {"--press", "h2o-ish", "h2o-ish"},
        {"--alpha", "1.5", "--alpha"},
        {"--alpha", "-0.2", "--alpha"},
        {"--pool-kernel", "4", "--pool-kernel"},
        {"--window", "0", "--window"},
        {"--beta", "0", "--beta"},
        {"--critical-ratio", "2", "--critical-ratio"},
        {"--prefill-chunk", "0", "--prefill-chunk"},
        {"--prefill-chunk", "12x", "--prefill-chunk"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct run r;
        const char *a[] = {env("ADAKV_MODEL"), "-p", "hi", cases[i][0], cases[i][1], NULL};
        run_cli(&r, NULL, a);
        expect_one_line_error(&r, cases[i][2]);
    }
}

Test(cli, press_needs_a_budget_and_not_two) {
    struct run r;
    const char *a[] = {env("ADAKV_MODEL"), "-p", "hi", "--press", "snapkv", NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, "--kv-budget");
    const char *b[] = {env("ADAKV_MODEL"), "-p",  "hi", "--kv-budget", "64",
                       "--kv-ratio",       "0.5", NULL};
    run_cli(&r, NULL, b);
    expect_one_line_error(&r, "mutually exclusive");
}

/* A piece of a chunked prefill must hold the window its queries score with, and KVzip needs the
 * whole context at once: both refused before the model loads. */
Test(cli, prefill_chunk_shorter_than_window_or_with_kvzip) {
    struct run r;
    const char *a[] = {env("ADAKV_MODEL"), "-p", "hi", "--kv-ratio", "0.5",
                       "--prefill-chunk",  "16", NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, "--prefill-chunk: 16 is shorter than the press window");
    const char *b[] = {env("ADAKV_MODEL"), "-p", "hi", "--press", "kvzip", "--kv-ratio", "0.5",
                       "--prefill-chunk",  "64", NULL};
    run_cli(&r, NULL, b);
    expect_one_line_error(&r, "--prefill-chunk: kvzip");
}

Test(cli, window_longer_than_prompt) {
    struct run r;
    const char *a[] = {env("ADAKV_MODEL"), "-p", "a short prompt", "--kv-budget", "16", NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, "--window");
}

Test(cli, empty_question_file) {
    char *p = path_in_build("tests/cli-empty-question.txt");
    write_file(p, "", 0);
    struct run r;
    const char *a[] = {env("ADAKV_MODEL"), "-p", "some context", "--question", p, NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, p);
    unlink(p);
}

/* KVzip with --question-aware: the question follows the reconstruction and scores the context
 * too (docs/eval.md), the context is compressed to the same budget as without it, and the answer
 * is generated. */
Test(cli, kvzip_question_aware, .timeout = 300) {
    char *ctx = path_in_build("tests/cli-kvzip-context.txt");
    char *q = path_in_build("tests/cli-kvzip-question.txt");
    const char *text = "There is a pass key hidden in this text. The grass is green and the sky is "
                       "blue. The pass key is 71432. Remember it. The sun is warm. Bees hum in the "
                       "garden and the river runs to the sea. Birds sing in the morning.";
    write_file(ctx, text, strlen(text));
    write_file(q, "What is the pass key?", 21);
    char kept[2][128];
    for (int aware = 0; aware < 2; aware++) {
        struct run r;
        const char *a[] = {env("ADAKV_MODEL"),
                           ctx,
                           "--question",
                           q,
                           "--chat",
                           "--press",
                           "ada-kvzip",
                           "--kv-ratio",
                           "0.5",
                           "-n",
                           "4",
                           aware ? "--question-aware" : "-t",
                           aware ? "-t" : "1",
                           aware ? "1" : NULL,
                           NULL};
        run_cli(&r, NULL, a);
        cr_assert_eq(r.status, 0, "aware %d: %s", aware, r.err);
        cr_assert(strlen(r.out) > 0, "aware %d: no answer", aware);
        /* "kv cache = int8, K of N rows kept (...)": K of N */
        const char *k = strstr(r.err, "kv cache = int8, ");
        cr_assert_not_null(k, "aware %d: no kv line in %s", aware, r.err);
        k += strlen("kv cache = int8, ");
        const char *end = strstr(k, " rows kept");
        cr_assert_not_null(end, "%s", k);
        snprintf(kept[aware], sizeof kept[aware], "%.*s", (int)(end - k), k);
    }
    cr_assert_str_eq(kept[0], kept[1], "the same budget with and without the question");
    unlink(ctx);
    unlink(q);
}

/* ---- limits before allocation, flag parity (issue 13, parts 3 and 6) ---- */

/* Peak RSS of the last child, to show a refusal came before the allocation. */
static long children_max_rss_kib(void) {
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return ru.ru_maxrss;
}

Test(cli, context_larger_than_ram_is_refused_before_allocation) {
    /* 4M positions of f32 K and V on the default model: ~190 GiB of cache alone */
    struct run r;
    const char *a[] = {env("ADAKV_MODEL"), "-p", "hi", "-c", "4194304", "--kv-type", "f32", NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, "n_ctx 4194304 needs");
    cr_expect(strstr(r.err, "GiB of RAM"), "%s", r.err);
    cr_expect_lt(children_max_rss_kib(), 2L << 20, "the refusal allocated more than 2 GiB");
    const char *b[] = {env("ADAKV_MODEL"), "-p", "hi", "-c", "4194305", NULL};
    run_cli(&r, NULL, b);
    expect_one_line_error(&r, "-c");
}

Test(cli, load_line_states_the_planned_bytes) {
    struct run r;
    const char *a[] = {env("ADAKV_MODEL"), "-p", "hi", "-n", "1", "-c", "256", NULL};
    run_cli(&r, NULL, a);
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *l = strstr(r.err, "load time =");
    cr_assert(l, "%s", r.err);
    double total, model, kv, scratch;
    const char *p = strstr(l, "planned ");
    cr_assert(p && sscanf(p, "planned %lf MiB = model %lf + KV %lf + scratch %lf", &total, &model,
                          &kv, &scratch) == 4,
              "%s", l);
    /* 256 positions x 30 layers x 3 KV heads x (K+V int8 rows of 64 + scale, + a position) */
    cr_expect(kv > 2.9 && kv < 3.3, "KV %.2f MiB", kv);
    cr_expect(model > 60.0 && total >= model + kv + scratch - 0.2, "%s", l);
}

Test(cli, threads_out_of_range) {
    struct run r;
    const char *a[] = {env("ADAKV_MODEL"), "-p", "hi", "-t", "513", NULL};
    run_cli(&r, NULL, a);
    expect_one_line_error(&r, "-t: 513 is out of range");
}

Test(cli, option_given_twice_or_contradicting) {
    const char *cases[][6] = {
        {"-c", "64", "--ctx-size", "64", "--ctx-size: given twice"},
        {"-n", "1", "-n", "2", "-n: given twice"},
        {"--kv-budget", "8", "--kv-budget", "9", "--kv-budget: given twice"},
        {"-ctk", "f16", "-ctv", "int8", "-ctv int8 contradicts -ctk"},
        {"--kv-type", "f16", "-ctk", "f16", "-ctk: given twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct run r;
        const char *a[] = {env("ADAKV_MODEL"), "-p",        "hi",        cases[i][0],
                           cases[i][1],        cases[i][2], cases[i][3], NULL};
        run_cli(&r, NULL, a);
        expect_one_line_error(&r, cases[i][4]);
    }
    struct run r;
    const char *ppl[] = {env("ADAKV_MODEL"), "--perplexity", env("ADAKV_MODEL"), "--chat", NULL};
    run_cli(&r, NULL, ppl);
    expect_one_line_error(&r, "--chat does not apply to --perplexity");
    /* the same type for K and V, as llama.cpp users write it, runs */
    const char *ok[] = {
        env("ADAKV_MODEL"), "-p", "hi", "-n", "1", "-ctk", "f16", "-ctv", "f16", NULL};
    run_cli(&r, NULL, ok);
    cr_expect_eq(r.status, 0, "%s", r.err);
}

/* Whether --help text `out` names flag, followed by a separator so "--ada" does not pass as a
 * prefix of "--ada-kvpress". */
static bool help_names(const char *out, const char *flag) {
    for (const char *h = out; (h = strstr(h, flag)); h++)
        if ((h == out || strchr(" ,/", h[-1])) && strchr(" ,/:\n", h[strlen(flag)]))
            return true;
    return false;
}

/* Every option cli.c accepts (each string literal starting with '-' on a line that compares
 * the argument, and the press flags it hands to the library's table of press options) is named
 * in --help. */
Test(cli, help_lists_every_accepted_option) {
    char path[1024];
    snprintf(path, sizeof path, "%s/src/cli/cli.c", env("ADAKV_SRCDIR"));
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s", path);
    struct run r;
    const char *a[] = {"--help", NULL};
    run_cli(&r, NULL, a);
    cr_assert_eq(r.status, 0);
    char line[512];
    int n_flags = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "is(a, "))
            continue;
        for (char *q = line; (q = strstr(q, "\"-")); q++) {
            char flag[64];
            const char *end = strchr(q + 1, '"');
            if (!end || end - q - 1 >= (long)sizeof flag || !strcmp(q, "\"-\""))
                continue;
            memcpy(flag, q + 1, (size_t)(end - q - 1));
            flag[end - q - 1] = '\0';
            if (!strcmp(flag, "-"))
                continue;
            cr_expect(help_names(r.out, flag), "%s is accepted but not in --help", flag);
            n_flags++;
        }
    }
    fclose(f);
    for (int i = 0; i < kv_n_press_options; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", kv_press_options[i].name);
        if (!adakv_press_is_flag(kv_press_options[i].name))
            continue;
        cr_expect(help_names(r.out, flag), "%s is accepted but not in --help", flag);
        n_flags++;
    }
    cr_expect_gt(n_flags, 40, "found only %d options in %s", n_flags, path);
}

/* --ignore-eos: a chat reply that ends by itself runs to -n instead. */
Test(cli, ignore_eos_runs_to_n_predict, .timeout = 120) {
    long n_gen[2];
    for (int i = 0; i < 2; i++) {
        struct run r;
        const char *a[] = {env("ADAKV_MODEL"),
                           "--chat",
                           "-p",
                           "Say hello.",
                           "--temp",
                           "0",
                           "-n",
                           "96",
                           "-t",
                           "2",
                           i ? "--ignore-eos" : NULL,
                           NULL};
        run_cli(&r, NULL, a);
        cr_assert_eq(r.status, 0, "%s", r.err);
        const char *s = strstr(r.err, "sampling time =");
        cr_assert(s && sscanf(strchr(s, '/') + 1, "%ld", &n_gen[i]) == 1, "%s", r.err);
    }
    cr_expect_lt(n_gen[0], 96, "the reply did not end by itself (%ld tokens)", n_gen[0]);
    cr_expect_eq(n_gen[1], 96, "--ignore-eos stopped after %ld tokens", n_gen[1]);
}

/* perf/adakv-bench -p 0 (llama-bench: no prompt test) runs only the decode test. */
Test(cli, bench_accepts_p_0, .timeout = 120) {
    char exe[1024];
    snprintf(exe, sizeof exe, "%s/perf/adakv-bench", env("ADAKV_BUILDDIR"));
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' -m '%s' -p 0 -n 2 -r 1 -t 1 2>&1", exe, env("ADAKV_MODEL"));
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    const int st = pclose(p);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d: %s", st, out);
    cr_expect(strstr(out, "\ntg2,"), "no decode line: %s", out);
    cr_expect_null(strstr(out, "\npp"), "a prompt test ran: %s", out);
}
