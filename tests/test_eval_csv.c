/* adakv-eval's results file (tools/eval-csv.c): rows written are read back as keys for resuming,
 * an answer with quotes, commas and newlines stays one CSV line, a row cut short by a killed run
 * is dropped (and truncated away), and a file with another header is refused. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval-csv.h"
#include "test-env.h"

static const char *tmp_path(const char *name) {
    static char buf[2][1024];
    static int i;
    char *p = buf[i++ % 2];
    snprintf(p, 1024, "%s/tests/%s-%d.csv", env("ADAKV_BUILDDIR"), name, (int)getpid());
    return p;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s", path);
    char *buf = calloc(1, 1 << 16);
    cr_assert(buf);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static struct eval_key key(const char *press, double ratio, const char *mode, int depth) {
    return (struct eval_key){.task = "passkey",
                             .length = 1024,
                             .depth = depth,
                             .sample = 0,
                             .seed = 1,
                             .press = press,
                             .ratio = ratio,
                             .mode = mode};
}

static void write_row(FILE *f, const char *path, struct eval_key k, const char *answer) {
    char *expected[] = {"12345", "amber-otter"};
    struct eval_result r = {.n_tokens = 1000,
                            .n_context = 960,
                            .kv_rows = 17280,
                            .kv_rows_full = 86400,
                            .answer_tokens = 9,
                            .seconds = 1.25,
                            .expected = expected,
                            .n_expected = 2,
                            .answer = answer};
    eval_score_answer(answer, expected, 2, &r.score);
    struct adakv_err e = {{0}};
    cr_assert_eq(eval_csv_write(f, path, &k, &r, &e), 0, "%s", e.msg);
}

Test(eval_csv, rows_come_back_as_resume_keys) {
    const char *path = tmp_path("eval-csv-roundtrip");
    unlink(path);
    struct eval_done done;
    FILE *f;
    struct adakv_err e = {{0}};
    cr_assert_eq(eval_csv_open(path, &done, &f, &e), 0, "%s", e.msg);
    cr_expect_eq(done.n, 0);
    write_row(f, path, key("full", 0, "aware", 50), "The pass key is 12345 (amber-otter).");
    write_row(f, path, key("snapkv", 0.8, "agnostic", 50), "a \"quoted\", comma\nnew line\\");
    write_row(f, path, key("snapkv", 0.5, "agnostic", 100), "");
    fclose(f);
    eval_done_free(&done);

    char *text = read_all(path);
    cr_expect_eq(lines(text), 4, "header + 3 rows, one line each:\n%s", text);
    cr_expect(!strncmp(text, EVAL_CSV_HEADER "\n", strlen(EVAL_CSV_HEADER) + 1));
    cr_expect(strstr(text, "\npasskey,1024,50,0,1,full,0,aware,1000,960,17280,86400,2,2,1.0000,1,"
                           "9,1.250,12345|amber-otter,\"The pass key is 12345 (amber-otter).\"\n"),
              "%s", text);
    cr_expect(strstr(text, ",0,0.0000,0,9,1.250,12345|amber-otter,"
                           "\"a \"\"quoted\"\", comma\\nnew line\\\\\"\n"),
              "the answer is escaped onto one line: %s", text);
    free(text);

    cr_assert_eq(eval_csv_open(path, &done, &f, &e), 0, "%s", e.msg);
    cr_expect_eq(done.n, 3);
    char k[256];
    struct eval_key want[] = {key("full", 0, "aware", 50), key("snapkv", 0.8, "agnostic", 50),
                              key("snapkv", 0.5, "agnostic", 100)};
    for (int i = 0; i < 3; i++) {
        eval_key_format(&want[i], k, sizeof k);
        cr_expect(eval_done_has(&done, k), "key %s not read back", k);
    }
    struct eval_key other[] = {key("full", 0, "agnostic", 50), key("snapkv", 0.8, "aware", 50),
                               key("snapkv", 0.8, "agnostic", 51)};
    for (int i = 0; i < 3; i++) {
        eval_key_format(&other[i], k, sizeof k);
        cr_expect(!eval_done_has(&done, k), "key %s was never written", k);
    }
    /* appending after a resume adds rows, it does not write a second header */
    write_row(f, path, key("full", 0, "agnostic", 50), "12345 amber-otter");
    fclose(f);
    eval_done_free(&done);
    text = read_all(path);
    cr_expect_eq(lines(text), 5);
    cr_expect_eq(strstr(text + 1, "task,length"), NULL, "one header only");
    free(text);
    unlink(path);
}

Test(eval_csv, a_row_cut_short_is_dropped) {
    const char *path = tmp_path("eval-csv-cut");
    unlink(path);
    struct eval_done done;
    FILE *f;
    struct adakv_err e = {{0}};
    cr_assert_eq(eval_csv_open(path, &done, &f, &e), 0, "%s", e.msg);
    write_row(f, path, key("full", 0, "aware", 0), "12345 amber-otter");
    fputs("passkey,1024,0,0,1,snapkv,0.8,aware,1000,96", f); /* killed mid-row */
    fclose(f);
    eval_done_free(&done);

    cr_assert_eq(eval_csv_open(path, &done, &f, &e), 0, "%s", e.msg);
    fclose(f);
    cr_expect_eq(done.n, 1, "the cut row is not a done key");
    char k[256];
    struct eval_key cut = key("snapkv", 0.8, "aware", 0);
    eval_key_format(&cut, k, sizeof k);
    cr_expect(!eval_done_has(&done, k));
    eval_done_free(&done);
    char *text = read_all(path);
    cr_expect_eq(lines(text), 2);
    cr_expect(text[strlen(text) - 1] == '\n', "the fragment is truncated away: %s", text);
    free(text);
    unlink(path);
}

Test(eval_csv, another_header_is_refused) {
    const char *path = tmp_path("eval-csv-other");
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("a,b,c\n1,2,3\n", f);
    fclose(f);
    struct eval_done done;
    struct adakv_err e = {{0}};
    cr_expect_eq(eval_csv_open(path, &done, &f, &e), -1);
    cr_expect(strstr(e.msg, path) && strstr(e.msg, "header"), "%s", e.msg);
    eval_done_free(&done);
    char *text = read_all(path);
    cr_expect_str_eq(text, "a,b,c\n1,2,3\n", "the file is left alone");
    free(text);
    unlink(path);
}
