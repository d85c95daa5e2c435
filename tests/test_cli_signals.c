/* adakv-run interrupted and cut off, as a user does it: Ctrl-C (SIGINT) during prefill or
 * generation ends the run with the text so far flushed, the timing lines printed and status
 * 130, as llama.cpp's; a reader that goes away (`| head -c 1`) ends it quietly (status 0, or
 * death by SIGPIPE) with no error lines. Runs the built binary on the default model. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test-env.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct child {
    pid_t pid;
    int out, err; /* read ends of its stdout and stderr */
    char err_text[16384], out_text[16384];
    size_t n_err, n_out;
};

static void spawn(struct child *c, const char *const *args) {
    char exe[1024];
    snprintf(exe, sizeof exe, "%s/adakv-run", env("ADAKV_BUILDDIR"));
    const char *argv[32] = {exe};
    int n = 1;
    for (; args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    int po[2], pe[2];
    cr_assert(pipe(po) == 0 && pipe(pe) == 0);
    memset(c, 0, sizeof *c);
    c->pid = fork();
    cr_assert(c->pid >= 0);
    if (c->pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]), close(pe[0]), close(po[1]), close(pe[1]);
        signal(SIGINT, SIG_DFL); /* whatever the runner did, the child starts as from a shell */
        signal(SIGPIPE, SIG_DFL);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(po[1]), close(pe[1]);
    c->out = po[0];
    c->err = pe[0];
}

/* Reads what is ready on the child's pipes, waiting up to 100 ms; a pipe at EOF is closed and
 * set to -1 (poll skips it). False once both are closed. */
static bool pump(struct child *c) {
    int *fds[2] = {&c->out, &c->err};
    char *bufs[2] = {c->out_text, c->err_text};
    size_t *ns[2] = {&c->n_out, &c->n_err};
    struct pollfd p[2] = {{c->out, POLLIN, 0}, {c->err, POLLIN, 0}};
    if (poll(p, 2, 100) > 0)
        for (int i = 0; i < 2; i++) {
            if (*fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = read(*fds[i], bufs[i] + *ns[i], sizeof c->out_text - 1 - *ns[i]);
            if (r <= 0) {
                close(*fds[i]);
                *fds[i] = -1;
                continue;
            }
            *ns[i] += (size_t)r;
            bufs[i][*ns[i]] = '\0';
        }
    return c->out >= 0 || c->err >= 0;
}

/* Reads until `needle` shows up in stderr (or, with needle NULL, stdout has min_out bytes);
 * false after wait_s seconds or when the child closed both pipes. */
static bool read_until(struct child *c, const char *needle, size_t min_out, double wait_s) {
    const double end = now_s() + wait_s;
    while (now_s() < end) {
        if (needle ? strstr(c->err_text, needle) != NULL : c->n_out >= min_out)
            return true;
        if (!pump(c))
            return false;
    }
    return false;
}

/* Drains both pipes (up to 60 s) and reaps the child; the exit status, or 128 + signal. */
static int finish(struct child *c) {
    const double end = now_s() + 60.0;
    while (pump(c) && now_s() < end)
        ;
    int st;
    if (waitpid(c->pid, &st, now_s() < end ? 0 : WNOHANG) != c->pid) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, &st, 0);
    }
    if (c->out >= 0)
        close(c->out);
    if (c->err >= 0)
        close(c->err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A prompt long enough that its prefill takes a while on any machine (~3,000 tokens). */
static char *long_prompt(void) {
    static const char s[] = "The quick brown fox jumps over the lazy dog while the cat sleeps. ";
    const int reps = 200;
    char *p = malloc(sizeof s * reps + 1);
    p[0] = '\0';
    for (int i = 0; i < reps; i++)
        strcat(p, s);
    return p;
}

Test(signals, sigint_during_generation_flushes_and_prints_timings, .timeout = 300) {
    struct child c;
    const char *a[] = {env("ADAKV_MODEL"),
                       "-p",
                       "Once upon a time",
                       "-n",
                       "-1",
                       "--ignore-eos",
                       "--temp",
                       "0",
                       "-c",
                       "4096",
                       "-t",
                       "2",
                       NULL};
    spawn(&c, a);
    cr_assert(read_until(&c, NULL, 16, 120.0), "no generated text; stderr: %s", c.err_text);
    kill(c.pid, SIGINT);
    const int status = finish(&c);
    cr_expect_eq(status, 130, "exit status %d, stderr: %s", status, c.err_text);
    cr_expect(strstr(c.err_text, "adakv_perf:        eval time ="), "no timing line: %s",
              c.err_text);
    cr_expect(strstr(c.err_text, "adakv_perf:       total time ="), "%s", c.err_text);
    cr_expect_null(strstr(c.err_text, "adakv-run:"), "an error line: %s", c.err_text);
    cr_expect(c.n_out >= 16 && c.out_text[c.n_out - 1] == '\n', "text not flushed: '%s'",
              c.out_text);
}

Test(signals, sigint_during_prefill_stops_it, .timeout = 300) {
    char *prompt = long_prompt();
    struct child c;
    const char *a[] = {env("ADAKV_MODEL"), "-p", prompt, "-n", "8", "-c", "4096",
                       "--progress",       "on", "-t",   "2",  NULL};
    spawn(&c, a);
    /* the first progress line says prefill is under way (a tenth of the layers done) */
    cr_assert(read_until(&c, "prefill", 0, 120.0), "no progress line: %s", c.err_text);
    const double t0 = now_s();
    kill(c.pid, SIGINT);
    const int status = finish(&c);
    const double stop_s = now_s() - t0;
    free(prompt);
    cr_expect_eq(status, 130, "exit status %d, stderr: %s", status, c.err_text);
    cr_expect(strstr(c.err_text, "adakv_perf: prompt eval time ="), "%s", c.err_text);
    /* stopped within a chunk, not after the remaining layers and 8 tokens */
    cr_expect(strstr(c.err_text, "/     0 runs"), "generation ran: %s", c.err_text);
    cr_expect_null(strstr(c.err_text, "layer 30/30"), "prefill ran to the end: %s", c.err_text);
    cr_expect_null(strstr(c.err_text, "adakv-run:"), "an error line: %s", c.err_text);
    cr_log_info("stopped %.2f s after SIGINT", stop_s);
}

/* `adakv-run ... | head -c 1` through bash, with SIGPIPE as the shell leaves it and ignored
 * (then writes fail with EPIPE and the run must stop by itself). */
static void run_into_head(const char *sigpipe, int *status, char *err, size_t cap) {
    char cmd[4096], err_path[1024];
    snprintf(err_path, sizeof err_path, "%s/tests/cli-head-%d.err", env("ADAKV_BUILDDIR"),
             (int)getpid());
    snprintf(cmd, sizeof cmd,
             "%s; '%s/adakv-run' '%s' -p 'Once upon a time' -n 400 --ignore-eos -t 2 "
             "2>'%s' | head -c 1 >/dev/null; exit ${PIPESTATUS[0]}",
             sigpipe, env("ADAKV_BUILDDIR"), env("ADAKV_MODEL"), err_path);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        execl("/bin/bash", "bash", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    FILE *f = fopen(err_path, "r");
    cr_assert(f);
    size_t n = fread(err, 1, cap - 1, f);
    err[n] = '\0';
    fclose(f);
    unlink(err_path);
}

Test(signals, closed_stdout_ends_quietly, .timeout = 300) {
    char err[16384];
    int status;
    run_into_head("true", &status, err, sizeof err);
    cr_expect(status == 0 || status == 128 + SIGPIPE, "status %d, stderr: %s", status, err);
    cr_expect_null(strstr(err, "adakv-run:"), "an error line: %s", err);

    /* SIGPIPE ignored (inherited from a parent): the first failed write ends generation */
    run_into_head("trap '' PIPE", &status, err, sizeof err);
    cr_expect_eq(status, 0, "status %d, stderr: %s", status, err);
    cr_expect_null(strstr(err, "adakv-run:"), "an error line: %s", err);
    const char *s = strstr(err, "sampling time =");
    long n_gen = -1;
    cr_assert(s && sscanf(strchr(s, '/') + 1, "%ld", &n_gen) == 1, "%s", err);
    cr_expect(n_gen < 400, "generated all %ld tokens into a closed pipe", n_gen);
}
