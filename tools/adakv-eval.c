/* adakv-eval: does the answer survive the eviction? RULER-style retrieval tasks
 * (tools/eval-tasks.h) hidden in the shipped licence prose, run through the library API for
 * every press x compression ratio x question-aware/agnostic mode, one CSV row each
 * (tools/eval-csv.h, resumable); tools/eval-plot.sh draws the figures of docs/eval.md.
 *
 * Each case (task, length, depth, sample) is tokenized as adakv-run --chat does
 * (src/text/prompt.h): the context (task instruction + haystack with the needles, never naming what
 * is asked), then the question and RULER's answer prefix at the start of the model's turn. Modes,
 * as adakv-run: agnostic  the context alone is prefilled with the press; the question is prefilled
 * on top of the compressed cache without compression; greedy decoding follows; aware     context
 * and question are prefilled with the press together.
 *
 * Shared prefill (default; --no-share turns it off). Layer-major prefill compresses layer l only
 * after that layer's attention over the whole batch ran, so every press sees the same K, V and
 * window queries and only the cache it leaves behind differs (adakv-fidelity's header explains
 * it). The context minus its last `window` tokens is therefore prefilled ONCE per case with the
 * full cache and copied (kv-cache.h, the one internal header used for it); each (press, ratio,
 * mode) restores the copy and prefills the rest with its press: the context's last window tokens
 * (agnostic; then the question, uncompressed) or those and the question (aware). The press then
 * scores each layer's whole segment with the last window queries, exactly what one compressed
 * prefill of the context (or context + question) does, for a fraction of its cost. The full
 * cache gives the same answer in both modes, so it runs once per case and is written per mode.
 *
 * --dump-cases FILE writes each case instead of running it: one JSON line with the context's and
 * the question's token ids exactly as prefilled here, so another engine (tools/kvpress/suite.py,
 * kvpress) answers the very same sequences (docs/eval.md).
 *
 * Usage: adakv-eval [options] --csv results.csv   (see usage() in eval-opts.c) */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adakv-ext.h"
#include "error.h"
#include "eval-csv.h"
#include "eval-opts.h"
#include "eval-tasks.h"
#include "flag.h"
#include "kv-cache.h"
#include "prompt.h"
#include "tokenizer.h"

#define MAX_TEXT_BYTES (64u << 20)

/* ==== the run's state ==== */

struct summary { /* per (press, ratio or full, mode) over this run's rows */
    int n, n_correct;
    double score;
};

struct progress {
    long total, done;
    double t0;
    bool on, tty;
    int decile;
};

struct eval_state {
    struct eval_opts o;
    bool full[MAX_LIST]; /* press i evicts nothing */
    struct eval_haystack hay;
    struct adakv_model *m;
    struct adakv_model_info info;
    const struct tokenizer *tok;
    struct adakv_ctx *ctx;
    struct kv_cache snap; /* the cache after the shared prefill */
    bool snap_ok;
    float *logits;
    int32_t *answer; /* [max answer tokens] */
    FILE *csv;
    FILE *dump;   /* --dump-cases */
    int32_t *eog; /* [n_eog] the tokenizer's end-of-generation ids (for the dump) */
    int n_eog;
    struct eval_done done;
    struct progress prog;
    struct summary sum[MAX_LIST][MAX_LIST + 1][2]; /* [press][ratio, n_ratio = full][aware] */
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void state_free(struct eval_state *s) {
    if (s->snap_ok)
        kv_cache_free(&s->snap);
    adakv_ctx_free(s->ctx);
    adakv_model_free(s->m);
    eval_haystack_free(&s->hay);
    eval_done_free(&s->done);
    if (s->csv)
        fclose(s->csv);
    if (s->dump)
        fclose(s->dump);
    free(s->eog);
    free(s->logits);
    free(s->answer);
}

static int read_file(const char *path, char **buf, size_t *len, struct adakv_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, "--haystack: %s: %s", path, strerror(errno));
    size_t had = *len;
    char *g = realloc(*buf, had + MAX_TEXT_BYTES + 2);
    size_t n = g ? fread(g + had, 1, MAX_TEXT_BYTES + 1, f) : 0;
    int rc = !g          ? err_set(e, "--haystack: %s: out of memory", path)
             : ferror(f) ? err_set(e, "--haystack: %s: read error", path)
             : n > MAX_TEXT_BYTES
                 ? err_set(e, "--haystack: %s: larger than %u MiB", path, MAX_TEXT_BYTES >> 20)
                 : 0;
    fclose(f);
    if (g) {
        *buf = g;
        g[had + n] = '\n'; /* the next file starts a new line */
        *len = had + n + 1;
    }
    return rc;
}

static int load_haystack(struct eval_state *s, struct adakv_err *e) {
    char *text = NULL;
    size_t len = 0;
    int rc = 0;
    for (int i = 0; !rc && i < s->o.n_haystack; i++)
        rc = read_file(s->o.haystacks[i], &text, &len, e);
    if (!rc && eval_haystack_init(&s->hay, text, len, e))
        rc = eval_err_wrap(e, "--haystack");
    free(text);
    return rc;
}

static bool is_kvzip(const struct eval_opts *o, int press) {
    struct adakv_err e;
    struct adakv_press *p = eval_make_press(o, o->presses[press], "0.5", 0, &e);
    bool yes = p && adakv_press_needs_reconstruction(p);
    adakv_press_free(p);
    return yes;
}

static bool any_kvzip(const struct eval_opts *o) {
    for (int i = 0; i < o->n_press; i++)
        if (is_kvzip(o, i))
            return true;
    return false;
}

static int max_answer_tokens(const struct eval_opts *o) {
    int n = o->n_predict;
    for (int i = 0; !o->n_predict && i < o->n_task; i++)
        n = eval_task_answer_tokens(o->tasks[i]) > n ? eval_task_answer_tokens(o->tasks[i]) : n;
    return n;
}

/* Whether the sweep runs the model (not --dry-run, not --dump-cases). */
static bool runs(const struct eval_opts *o) {
    return !o->dry_run && !o->dump;
}

/* Opens the --dump-cases file and collects the end-of-generation ids it lists. */
static int dump_open(struct eval_state *s, struct adakv_err *e) {
    const int32_t n = tokenizer_n_vocab(s->tok);
    if (!(s->eog = malloc((size_t)n * sizeof *s->eog)))
        return err_set(e, "out of memory");
    for (int32_t id = 0; id < n; id++)
        if (tokenizer_is_eog(s->tok, id))
            s->eog[s->n_eog++] = id;
    if (!(s->dump = fopen(s->o.dump, "w")))
        return err_set(e, "--dump-cases: %s: %s", s->o.dump, strerror(errno));
    return 0;
}

static int prepare(struct eval_state *s, struct adakv_err *e) {
    const struct eval_opts *o = &s->o;
    if (load_haystack(s, e))
        return -1;
    struct adakv_model_params mp = {.n_threads = o->n_threads};
    if (!(s->m = adakv_model_load(o->model, &mp, e)))
        return -1;
    adakv_model_get_info(s->m, &s->info);
    s->tok = adakv_model_tokenizer(s->m);
    int max_len = 0;
    for (int i = 0; i < o->n_length; i++)
        max_len = o->lengths[i] > max_len ? o->lengths[i] : max_len;
    if (max_len > s->info.n_ctx_train)
        return err_set(e, "--lengths: %d is longer than the model's training context (%d)", max_len,
                       s->info.n_ctx_train);
    if (o->dump)
        return dump_open(s, e);
    if (o->dry_run)
        return 0;
    struct adakv_ctx_params cp;
    adakv_ctx_params_default(&cp);
    cp.n_ctx = max_len + max_answer_tokens(o);
    if (any_kvzip(o)) /* room for the reconstruction: a prompt and the context again */
        cp.n_ctx += max_len + 64;
    cp.n_threads = o->n_threads;
    cp.window = o->window;
    if (!(s->ctx = adakv_ctx_new(s->m, &cp, e)))
        return -1;
    const struct kv_cache *kv = adakv_ctx_kv(s->ctx);
    if (kv_cache_init(&s->snap, kv->type, kv->n_layer, kv->n_head_kv, kv->head_dim, e))
        return -1;
    s->snap_ok = true;
    s->logits = malloc((size_t)s->info.n_vocab * sizeof *s->logits);
    s->answer = malloc((size_t)max_answer_tokens(o) * sizeof *s->answer);
    if (!s->logits || !s->answer)
        return err_set(e, "out of memory");
    return eval_csv_open(o->csv, &s->done, &s->csv, e);
}

/* ==== prompts ==== */

struct case_tokens {
    int32_t *ct, *qt; /* context; question + reply prefix (+ the template's suffix) */
    size_t n_ct, n_qt;
    int32_t *rt; /* KVzip's reconstruction (repeat prompt + the context again), or NULL */
    size_t n_rt;
};

static void case_tokens_free(struct case_tokens *t) {
    free(t->ct);
    free(t->qt);
    free(t->rt);
    *t = (struct case_tokens){0};
}

static int tokenize_case(const struct eval_state *s, const char *context, const char *question,
                         const char *reply, struct case_tokens *t, struct adakv_err *e) {
    /* without a template the answer prefix continues the question's line, as RULER's */
    char *spaced = NULL;
    if (!s->o.chat && (spaced = malloc(strlen(reply) + 2)))
        sprintf(spaced, " %s", reply);
    if (!s->o.chat && !spaced)
        return err_set(e, "out of memory");
    const char *r = spaced ? spaced : reply;
    struct prompt_text pt = {.context = context,
                             .n_context = strlen(context),
                             .question = question,
                             .n_question = strlen(question),
                             .reply = r,
                             .n_reply = strlen(r)};
    *t = (struct case_tokens){0};
    int rc = prompt_tokenize(s->tok, s->o.chat ? adakv_model_gguf(s->m) : NULL, &pt, &t->ct,
                             &t->n_ct, &t->qt, &t->n_qt, e);
    free(spaced);
    return rc;
}

/* eval_count_fn: the prompt's tokens as the model will see them */
static int count_tokens(void *user, const char *context, const char *question, const char *reply,
                        size_t *n_tokens, struct adakv_err *e) {
    struct case_tokens t;
    int rc = tokenize_case(user, context, question, reply, &t, e);
    *n_tokens = t.n_ct + t.n_qt;
    case_tokens_free(&t);
    return rc;
}

/* ==== the settings a case still needs ==== */

/* press, ratio (-1: full, run once) and the modes whose rows it writes */
struct job {
    int press, ratio;
    unsigned modes;
};

static struct eval_key job_key(const struct eval_opts *o, const struct eval_case *c,
                               const struct job *j, unsigned mode) {
    return (struct eval_key){.task = eval_task_name(c->task),
                             .length = c->length,
                             .depth = c->depth,
                             .sample = c->sample,
                             .seed = c->seed,
                             .press = o->presses[j->press],
                             .ratio = j->ratio < 0 ? 0.0 : o->ratios[j->ratio],
                             .mode = mode == MODE_AWARE ? "aware" : "agnostic"};
}

static bool row_done(const struct eval_state *s, const struct eval_case *c, const struct job *j,
                     unsigned mode) {
    char key[512];
    struct eval_key k = job_key(&s->o, c, j, mode);
    eval_key_format(&k, key, sizeof key);
    return eval_done_has(&s->done, key);
}

/* Fills jobs (room for n_press * (n_ratio + 1) * 2) with what c (only its coordinates are read)
 * still lacks; returns the job count, *rows the rows they write. */
static int case_jobs(const struct eval_state *s, const struct eval_case *c, struct job *jobs,
                     long *rows) {
    const struct eval_opts *o = &s->o;
    int n = 0;
    *rows = 0;
    for (int p = 0; p < o->n_press; p++) {
        for (int r = s->full[p] ? -1 : 0; r < (s->full[p] ? 0 : o->n_ratio); r++) {
            struct job j = {p, r, 0};
            for (unsigned m = MODE_AGNOSTIC; m <= MODE_AWARE; m <<= 1) {
                if (!(o->modes & m) || row_done(s, c, &j, m))
                    continue;
                if (r >= 0) /* one mode per run; full writes its one run per mode */
                    jobs[n++] = (struct job){p, r, m};
                j.modes |= m;
                ++*rows;
            }
            if (r < 0 && j.modes)
                jobs[n++] = j;
        }
    }
    return n;
}

/* ==== progress: a bar redrawn on a terminal, a line per tenth in a log ==== */

static void progress_show(struct progress *p, long add) {
    p->done += add;
    if (!p->on || !p->total)
        return;
    double el = now_s() - p->t0, frac = (double)p->done / p->total;
    double eta = p->done ? el / frac - el : 0.0;
    int decile = (int)(frac * 10);
    if (!p->tty && decile == p->decile && p->done < p->total)
        return;
    p->decile = decile;
    char bar[31];
    for (int i = 0; i < 30; i++)
        bar[i] = i < (int)(frac * 30) ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "%s[%s] %3.0f%% %ld/%ld rows, %.0f:%02.0f elapsed, ETA %.0f:%02.0f%s",
            p->tty ? "\r" : "", bar, 100 * frac, p->done, p->total, floor(el / 60), fmod(el, 60),
            floor(eta / 60), fmod(eta, 60), p->tty && p->done < p->total ? "" : "\n");
    fflush(stderr);
}

/* ==== one run: restore, compressed prefill, question, greedy answer ==== */

struct run_out {
    size_t kv_rows, kv_rows_full;
    int n_answer;
    double seconds;
};

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        best = x[i] > x[best] ? i : best;
    return best;
}

/* Whether the n answer tokens so far already hold every expected value. */
static int answered(const struct eval_state *s, const struct eval_case *c, int n, bool *yes,
                    struct adakv_err *e) {
    char *text = NULL;
    size_t len = 0;
    if (tokenizer_decode(s->tok, s->answer, (size_t)n, true, false, &text, &len, e))
        return -1;
    struct eval_score sc;
    eval_score_answer(text, c->expected, c->n_expected, &sc);
    free(text);
    *yes = sc.correct;
    return 0;
}

/* Greedy decoding up to max tokens or an end-of-generation token. It also stops as soon as the
 * answer holds every expected value: the match is a substring test, so more tokens could not
 * undo it, and the rows that succeed cost a fraction of the budget. */
static int decode(struct eval_state *s, const struct eval_case *c, int max, int *n_out,
                  struct adakv_err *e) {
    int n = 0;
    for (;;) {
        int32_t id = argmax(s->logits, s->info.n_vocab);
        if (tokenizer_is_eog(s->tok, id))
            break;
        s->answer[n++] = id;
        bool done = false;
        if (answered(s, c, n, &done, e))
            return -1;
        if (done || n == max) /* the last token needs no forward pass */
            break;
        if (adakv_eval(s->ctx, &id, 1, s->logits, false, e))
            return -1;
    }
    *n_out = n;
    return 0;
}

/* The cache as the shared prefill left it (n_shared tokens), or empty without sharing. */
static int restore(struct eval_state *s, int n_shared, struct adakv_err *e) {
    if (!s->o.share) {
        adakv_ctx_reset(s->ctx);
        return 0;
    }
    if (adakv_ctx_n_past(s->ctx) == n_shared) /* right after the shared prefill */
        return 0;
    if (adakv_ctx_rewind(s->ctx, n_shared, e))
        return -1;
    return kv_cache_copy(adakv_ctx_kv(s->ctx), &s->snap, e);
}

static int run_job(struct eval_state *s, const struct eval_case *c, const struct case_tokens *t,
                   int n_shared, const struct job *j, struct run_out *out, struct adakv_err *e) {
    const struct eval_opts *o = &s->o;
    const int max = o->n_predict ? o->n_predict : eval_task_answer_tokens(c->task);
    const bool aware = j->ratio >= 0 && j->modes == MODE_AWARE;
    const size_t per_token = (size_t)s->info.n_layer * s->info.n_head_kv;
    double t0 = now_s();
    struct adakv_press *p =
        eval_make_press(o, o->presses[j->press], j->ratio < 0 ? NULL : o->ratio_text[j->ratio],
                        (int)t->n_qt + max, e);
    if (!p)
        return -1;
    int rc = restore(s, n_shared, e);
    if (!rc)
        rc = adakv_ctx_set_press(s->ctx, p, false, e);
    adakv_press_free(p);
    if (rc)
        return -1;
    adakv_ctx_press_enable(s->ctx, true);
    const int from = adakv_ctx_n_past(s->ctx), n_rest = (int)t->n_ct - from;
    const bool kvzip = j->ratio >= 0 && is_kvzip(o, j->press);
    if (kvzip) {
        /* The context, then its reconstruction, which scores it and is dropped; the question
         * comes after, on the compressed cache. Question-aware, the question (and the reply
         * prefix) follows the reconstruction and its queries score the context too (a
         * departure from KVzip, which is question-agnostic, and from the other presses' aware
         * mode, which compresses the question's rows with the context; docs/eval.md). */
        rc = adakv_ctx_prefill_kvzip_aware(s->ctx, t->ct + from, n_rest, t->rt, (int)t->n_rt,
                                           aware ? t->qt : NULL, aware ? (int)t->n_qt : 0, e);
        out->kv_rows_full = t->n_ct * per_token;
    } else if (aware) { /* the rest of the context and the question, compressed together */
        int32_t *tail = malloc((n_rest + t->n_qt) * sizeof *tail);
        if (!tail)
            return err_set(e, "out of memory");
        memcpy(tail, t->ct + from, (size_t)n_rest * sizeof *tail);
        memcpy(tail + n_rest, t->qt, t->n_qt * sizeof *tail);
        rc = adakv_eval(s->ctx, tail, n_rest + (int)t->n_qt, s->logits, false, e);
        free(tail);
        out->kv_rows_full = (t->n_ct + t->n_qt) * per_token;
    } else { /* the context compressed alone, the question on top as it is */
        rc = adakv_eval(s->ctx, t->ct + from, n_rest, NULL, false, e);
        out->kv_rows_full = t->n_ct * per_token;
    }
    out->kv_rows = adakv_ctx_kv_rows(s->ctx);
    if (!rc && (!aware || kvzip)) {
        adakv_ctx_press_enable(s->ctx, false);
        rc = adakv_eval(s->ctx, t->qt, (int)t->n_qt, s->logits, false, e);
    }
    if (!rc)
        rc = decode(s, c, max, &out->n_answer, e);
    out->seconds = now_s() - t0;
    return rc;
}

/* Writes the job's row(s) and adds them to the summary. */
static int record(struct eval_state *s, const struct eval_case *c, const struct case_tokens *t,
                  const struct job *j, const struct run_out *ro, struct adakv_err *e) {
    char *text = NULL;
    size_t text_len = 0;
    if (tokenizer_decode(s->tok, s->answer, (size_t)ro->n_answer, true, false, &text, &text_len, e))
        return -1;
    struct eval_result res = {.n_tokens = t->n_ct + t->n_qt,
                              .n_context = t->n_ct,
                              .kv_rows = ro->kv_rows,
                              .kv_rows_full = ro->kv_rows_full,
                              .answer_tokens = ro->n_answer,
                              .seconds = ro->seconds,
                              .expected = c->expected,
                              .n_expected = c->n_expected,
                              .answer = text};
    eval_score_answer(text, c->expected, c->n_expected, &res.score);
    int rc = 0;
    for (unsigned m = MODE_AGNOSTIC; !rc && m <= MODE_AWARE; m <<= 1) {
        if (!(j->modes & m))
            continue;
        struct eval_key k = job_key(&s->o, c, j, m);
        rc = eval_csv_write(s->csv, s->o.csv, &k, &res, e);
        struct summary *sm =
            &s->sum[j->press][j->ratio < 0 ? s->o.n_ratio : j->ratio][m == MODE_AWARE];
        sm->n++;
        sm->n_correct += res.score.correct;
        sm->score += res.score.score;
        progress_show(&s->prog, 1);
    }
    free(text);
    return rc;
}

/* ==== one case ==== */

static void json_string(FILE *f, const char *str) {
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)str; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c == '\n')
            fputs("\\n", f);
        else if (*c < 0x20)
            fprintf(f, "\\u%04x", *c);
        else
            fputc(*c, f); /* UTF-8 as it is */
    }
    fputc('"', f);
}

static void json_ids(FILE *f, const char *name, const int32_t *ids, size_t n) {
    fprintf(f, ",\"%s\":[", name);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%d", i ? "," : "", (int)ids[i]);
    fputc(']', f);
}

/* One JSON line per case: its key fields (as in the CSV), the token ids the eval prefills (the
 * context, then the question with the template's turn change and the reply prefix: context_ids
 * + question_ids is the whole prompt), what the answer is scored against and how long it may
 * get, and the ids that end generation. */
static int dump_case(struct eval_state *s, const struct eval_case *c, const struct case_tokens *t,
                     struct adakv_err *e) {
    const struct eval_opts *o = &s->o;
    FILE *f = s->dump;
    fprintf(f, "{\"task\":\"%s\",\"length\":%d,\"depth\":%d,\"sample\":%d,\"seed\":%llu",
            eval_task_name(c->task), c->length, c->depth, c->sample, (unsigned long long)c->seed);
    fprintf(f, ",\"n_tokens\":%zu,\"n_context\":%zu,\"window\":%d,\"chat\":%s", t->n_ct + t->n_qt,
            t->n_ct, o->window, o->chat ? "true" : "false");
    fprintf(f, ",\"max_new_tokens\":%d,\"expected\":[",
            o->n_predict ? o->n_predict : eval_task_answer_tokens(c->task));
    for (int i = 0; i < c->n_expected; i++) {
        fputs(i ? "," : "", f);
        json_string(f, c->expected[i]);
    }
    fputs("],\"question\":", f);
    json_string(f, c->question);
    fputs(",\"reply\":", f);
    json_string(f, c->reply);
    json_ids(f, "eog_ids", s->eog, (size_t)s->n_eog);
    json_ids(f, "context_ids", t->ct, t->n_ct);
    json_ids(f, "question_ids", t->qt, t->n_qt);
    fputs("}\n", f);
    if (fflush(f) || ferror(f))
        return err_set(e, "--dump-cases: %s: write error", o->dump);
    return 0;
}

static void print_case(const struct eval_case *c, const struct case_tokens *t) {
    printf("=== %s, length %d, depth %d, sample %d: %zu tokens (context %zu), expected",
           eval_task_name(c->task), c->length, c->depth, c->sample, t->n_ct + t->n_qt, t->n_ct);
    for (int i = 0; i < c->n_expected; i++)
        printf(" %s", c->expected[i]);
    printf("\n%s\n--- question\n%s\n--- reply prefix\n%s\n", c->context, c->question, c->reply);
}

static int run_case(struct eval_state *s, enum eval_task task, int length, int depth, int sample,
                    struct job *jobs, struct adakv_err *e) {
    const struct eval_opts *o = &s->o;
    struct eval_case c = {
        .task = task, .length = length, .depth = depth, .sample = sample, .seed = o->seed};
    long rows = 0;
    int n_jobs = runs(o) ? case_jobs(s, &c, jobs, &rows) : 0;
    if (runs(o) && !n_jobs)
        return 0;
    struct case_tokens t = {0};
    int rc = eval_case_make(&s->hay, task, length, depth, sample, o->seed, count_tokens, s, &c, e);
    if (rc) {
        char what[64];
        snprintf(what, sizeof what, "--lengths %d, %s", length, eval_task_name(task));
        eval_err_wrap(e, what);
    }
    if (!rc)
        rc = tokenize_case(s, c.context, c.question, c.reply, &t, e);
    if (!rc && any_kvzip(o)) { /* the repeat prompt and the context again, after the context */
        struct case_tokens r = {0};
        rc = tokenize_case(s, c.context, KVZIP_REPEAT_PROMPT, c.context, &r, e);
        t.rt = r.qt, t.n_rt = r.n_qt;
        r.qt = NULL;
        case_tokens_free(&r);
    }
    if (!rc && o->dry_run)
        print_case(&c, &t);
    if (!rc && !o->dry_run && t.n_ct <= (size_t)o->window)
        rc =
            err_set(e, "--window: %d is not shorter than the %zu-token context", o->window, t.n_ct);
    if (!rc && o->dump)
        rc = dump_case(s, &c, &t, e);
    /* the shared prefill: everything but the context's last window tokens, full cache */
    int n_shared = (int)t.n_ct - o->window;
    if (!rc && n_jobs && o->share) {
        adakv_ctx_reset(s->ctx);
        adakv_ctx_press_enable(s->ctx, false);
        rc = adakv_eval(s->ctx, t.ct, n_shared, NULL, false, e) ||
             kv_cache_copy(&s->snap, adakv_ctx_kv(s->ctx), e);
    }
    for (int i = 0; !rc && i < n_jobs; i++) {
        struct run_out ro = {0};
        rc = run_job(s, &c, &t, n_shared, &jobs[i], &ro, e) || record(s, &c, &t, &jobs[i], &ro, e);
    }
    case_tokens_free(&t);
    eval_case_free(&c);
    return rc ? -1 : 0;
}

/* Calls run_case for every case in sweep order, or (count != NULL) only counts the rows to do. */
static int sweep(struct eval_state *s, struct job *jobs, long *count, struct adakv_err *e) {
    const struct eval_opts *o = &s->o;
    for (int ti = 0; ti < o->n_task; ti++) {
        const enum eval_task task = o->tasks[ti];
        const int n_depth = eval_task_has_depth(task) ? o->n_depth : 1;
        for (int li = 0; li < o->n_length; li++)
            for (int di = 0; di < n_depth; di++)
                for (int sm = 0; sm < o->samples; sm++) {
                    int depth = eval_task_has_depth(task) ? o->depths[di] : -1;
                    if (count) {
                        struct eval_case c = {.task = task,
                                              .length = o->lengths[li],
                                              .depth = depth,
                                              .sample = sm,
                                              .seed = o->seed};
                        long rows = 0;
                        case_jobs(s, &c, jobs, &rows);
                        *count += rows;
                    } else if (run_case(s, task, o->lengths[li], depth, sm, jobs, e)) {
                        return -1;
                    }
                }
    }
    return 0;
}

static void print_summary(const struct eval_state *s) {
    const struct eval_opts *o = &s->o;
    printf("%-16s %6s %-9s %5s %7s %9s\n", "press", "ratio", "mode", "rows", "score", "accuracy");
    for (int p = 0; p < o->n_press; p++)
        for (int r = 0; r <= o->n_ratio; r++)
            for (int m = 0; m < 2; m++) {
                const struct summary *sm = &s->sum[p][r][m];
                if (!sm->n)
                    continue;
                printf("%-16s %6s %-9s %5d %7.3f %8.1f%%\n", o->presses[p],
                       r == o->n_ratio ? "-" : o->ratio_text[r], m ? "aware" : "agnostic", sm->n,
                       sm->score / sm->n, 100.0 * sm->n_correct / sm->n);
            }
}

int main(int argc, char **argv) {
    static struct eval_state s; /* large (the summary table): not on the stack */
    struct adakv_err e = {{0}};
    int rc = eval_opts_parse(argc, argv, &s.o, s.full, &e);
    if (!rc)
        rc = prepare(&s, &e);
    struct job *jobs = NULL;
    if (!rc && !(jobs = malloc((size_t)s.o.n_press * (s.o.n_ratio + 1) * 2 * sizeof *jobs)))
        rc = err_set(&e, "out of memory");
    if (!rc && runs(&s.o)) {
        sweep(&s, jobs, &s.prog.total, &e);
        s.prog.tty = isatty(STDERR_FILENO);
        s.prog.on = s.o.progress;
        s.prog.decile = 0;
        s.prog.t0 = now_s();
        fprintf(stderr, "adakv-eval: %ld rows to run, %zu already in %s\n", s.prog.total, s.done.n,
                s.o.csv);
    }
    if (!rc)
        rc = sweep(&s, jobs, NULL, &e);
    if (!rc && runs(&s.o)) {
        fprintf(stderr, "adakv-eval: %ld rows in %.1f s\n", s.prog.done, now_s() - s.prog.t0);
        print_summary(&s);
    }
    if (rc)
        fprintf(stderr, "adakv-eval: %s\n", e.msg);
    free(jobs);
    state_free(&s);
    return rc ? 1 : 0;
}
