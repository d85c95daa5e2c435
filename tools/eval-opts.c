/* adakv-eval's flags (eval-opts.h): usage, parsing into struct eval_opts, and the checks that
 * fail before the model loads (a press that does not build, a list item given twice). */
#include "eval-opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adakv-ext.h"
#include "error.h"
#include "flag.h"

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: adakv-eval [options] --csv results.csv\n"
        "  RULER-style retrieval tasks in the shipped licence prose, answered greedily by the\n"
        "  model with each press x ratio x mode; one CSV row per case and setting (the answer,\n"
        "  the fraction of expected values found, KV rows kept). Rows already in the CSV are\n"
        "  skipped, so a stopped run resumes. Plots: tools/eval-plot.sh; see docs/eval.md.\n"
        "  -m, --model FILE   GGUF model (default models/SmolLM2-135M-Instruct.Q4_1.gguf)\n"
        "      --csv FILE     results, appended to (required)\n"
        "      --tasks LIST   passkey niah-number niah-word niah-uuid multikey multivalue\n"
        "                     multiquery vt cwe qa (default passkey,multikey,qa)\n"
        "      --lengths LIST prompt tokens, template included (default 1024,2048,4096)\n"
        "      --depths LIST  needle depths in %% of the haystack (default: 10 depths,\n"
        "                     0,11,...,89,100 as RULER's linspace; cwe has none and runs once\n"
        "                     per length)\n"
        "      --samples N    cases per (task, length, depth) (default 1)\n"
        "  -s, --seed N       task generation seed (default 1)\n"
        "      --press LIST   presses, any adakv-run --press name (default\n"
        "                     full,snapkv,ada-snapkv,critical,ada-critical)\n"
        "      --kv-ratio LIST fractions of rows removed (default 0.5,0.8; full ignores them)\n"
        "      --mode LIST    aware, agnostic (default both)\n"
        "  -n, --n-predict N  answer tokens at most (default: per task, 16-96); decoding also\n"
        "                     stops once the answer holds every expected value\n"
        "      --no-chat      the raw prompt, without the model's chat template\n"
        "      --window N     press observation window (default 32)\n"
        "      --press-opt K=V press option K for every press, as adakv-run's --K V; repeatable\n"
        "      --haystack LIST filler text files (default tests/data/text/perplexity-en.txt,\n"
        "                     tests/data/text/fidelity-en.txt, relative to the current directory)\n"
        "      --no-share     prefill every setting from scratch (slow; for checking the shared\n"
        "                     prefill, see the source's header)\n"
        "      --dry-run      print each case's prompt and expected answer, run nothing\n"
        "      --dump-cases FILE write every case as one JSON line (its key, the context and\n"
        "                     question token ids exactly as prefilled, expected values, answer\n"
        "                     tokens, end-of-generation ids) for tools/kvpress/suite.py; run\n"
        "                     nothing (--csv not needed)\n"
        "  -t, --threads N    threads (default: all cores)\n"
        "      --progress M   auto (default: a bar with ETA on a terminal, else a line per\n"
        "                     tenth of the rows) or off\n");
}

/* ==== flags ==== */

int eval_err_wrap(struct adakv_err *e, const char *what) {
    char msg[sizeof e->msg];
    memcpy(msg, e->msg, sizeof msg);
    return err_set(e, "%s: %s", what, msg);
}

static int int_list(const char *flag, char *list, int lo, int hi, int *out, int *n,
                    struct adakv_err *e) {
    const char *items[MAX_LIST];
    if (flag_split_list(flag, list, items, MAX_LIST, n, true, e))
        return -1;
    for (int i = 0; i < *n; i++)
        if (flag_parse_int(flag, items[i], lo, hi, &out[i], e))
            return -1;
    return 0;
}

static int apply_press_opts(const struct eval_opts *o, struct adakv_press *p, struct adakv_err *e) {
    for (int i = 0; i < o->n_press_opt; i++)
        if (adakv_press_set(p, o->opt_name[i], o->opt_value[i], e))
            return -1;
    return 0;
}

struct adakv_press *eval_make_press(const struct eval_opts *o, const char *name, const char *ratio,
                                    int reserve, struct adakv_err *e) {
    struct adakv_press *p = adakv_press_new();
    if (!p) {
        err_set(e, "out of memory");
        return NULL;
    }
    char w[16], r[16];
    snprintf(w, sizeof w, "%d", o->window);
    snprintf(r, sizeof r, "%d", reserve);
    int rc = adakv_press_set(p, "press", name, e) || adakv_press_set(p, "window", w, e) ||
             apply_press_opts(o, p, e) || (ratio && adakv_press_set(p, "kv-ratio", ratio, e)) ||
             adakv_press_set(p, "reserve", r, e) || adakv_press_check(p, e);
    if (rc) {
        adakv_press_free(p);
        return NULL;
    }
    return p;
}

/* Every press must build with every ratio (a typo fails before the model loads); a press that
 * evicts nothing at a ratio (full) is run once per case. */
static int check_presses(const struct eval_opts *o, bool *full, struct adakv_err *e) {
    for (int i = 0; i < o->n_press; i++) {
        for (int j = 0; j < o->n_ratio; j++) {
            struct adakv_press *p = eval_make_press(o, o->presses[i], o->ratio_text[j], 0, e);
            char what[160];
            snprintf(what, sizeof what, "--press %s --kv-ratio %s", o->presses[i],
                     o->ratio_text[j]);
            if (!p)
                return eval_err_wrap(e, what);
            full[i] = !adakv_press_evicts(p);
            adakv_press_free(p);
        }
    }
    return 0;
}

static int parse_modes(char *list, unsigned *modes, struct adakv_err *e) {
    const char *items[MAX_LIST];
    int n;
    if (flag_split_list("--mode", list, items, MAX_LIST, &n, true, e))
        return -1;
    *modes = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(items[i], "aware"))
            *modes |= MODE_AWARE;
        else if (!strcmp(items[i], "agnostic"))
            *modes |= MODE_AGNOSTIC;
        else
            return err_set(e, "--mode: expected aware or agnostic, got '%s'", items[i]);
    }
    return 0;
}

static int parse_tasks(char *list, struct eval_opts *o, struct adakv_err *e) {
    const char *items[MAX_LIST];
    if (flag_split_list("--tasks", list, items, MAX_LIST, &o->n_task, true, e))
        return -1;
    if (o->n_task > EVAL_TASK_COUNT)
        return err_set(e, "--tasks: more than the %d tasks", EVAL_TASK_COUNT);
    for (int i = 0; i < o->n_task; i++)
        if (eval_task_parse(items[i], &o->tasks[i]))
            return err_set(e, "--tasks: unknown task '%s' (see --help)", items[i]);
    return 0;
}

static int parse_ratios(char *list, struct eval_opts *o, struct adakv_err *e) {
    if (flag_split_list("--kv-ratio", list, o->ratio_text, MAX_LIST, &o->n_ratio, true, e))
        return -1;
    for (int i = 0; i < o->n_ratio; i++) {
        char *end;
        o->ratios[i] = strtod(o->ratio_text[i], &end);
        if (end == o->ratio_text[i] || *end || !(o->ratios[i] > 0.0 && o->ratios[i] < 1.0))
            return err_set(e, "--kv-ratio: '%s' is not a number in (0, 1)", o->ratio_text[i]);
    }
    return 0;
}

/* The list flags' values, split after all flags are read. */
struct list_args {
    char *haystack, *tasks, *lengths, *depths, *press, *ratio, *mode;
};

static int parse_lists(struct eval_opts *o, struct list_args *l, bool *full, struct adakv_err *e) {
    if (flag_split_list("--haystack", l->haystack, o->haystacks, MAX_LIST, &o->n_haystack, true,
                        e) ||
        parse_tasks(l->tasks, o, e) ||
        int_list("--lengths", l->lengths, 64, 1 << 20, o->lengths, &o->n_length, e) ||
        int_list("--depths", l->depths, 0, 100, o->depths, &o->n_depth, e) ||
        flag_split_list("--press", l->press, o->presses, MAX_LIST, &o->n_press, true, e) ||
        parse_ratios(l->ratio, o, e) || parse_modes(l->mode, &o->modes, e))
        return -1;
    return check_presses(o, full, e);
}

static int parse_flag(struct eval_opts *o, struct list_args *l, const char *a, char *v,
                      struct adakv_err *e) {
    long n;
    if (!strcmp(a, "-m") || !strcmp(a, "--model"))
        o->model = v;
    else if (!strcmp(a, "--csv"))
        o->csv = v;
    else if (!strcmp(a, "--dump-cases"))
        o->dump = v;
    else if (!strcmp(a, "--haystack"))
        l->haystack = v;
    else if (!strcmp(a, "--tasks"))
        l->tasks = v;
    else if (!strcmp(a, "--lengths"))
        l->lengths = v;
    else if (!strcmp(a, "--depths"))
        l->depths = v;
    else if (!strcmp(a, "--press"))
        l->press = v;
    else if (!strcmp(a, "--kv-ratio"))
        l->ratio = v;
    else if (!strcmp(a, "--mode"))
        l->mode = v;
    else if (!strcmp(a, "--samples"))
        return flag_parse_int(a, v, 1, 100000, &o->samples, e);
    else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) {
        if (flag_parse_long(a, v, 0, 0x7fffffffL, &n, e))
            return -1;
        o->seed = (uint64_t)n;
    } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict"))
        return flag_parse_int(a, v, 1, 4096, &o->n_predict, e);
    else if (!strcmp(a, "--window"))
        return flag_parse_int(a, v, 1, 4096, &o->window, e);
    else if (!strcmp(a, "-t") || !strcmp(a, "--threads"))
        return flag_parse_int(a, v, 0, 1024, &o->n_threads, e);
    else if (!strcmp(a, "--progress")) {
        if (strcmp(v, "auto") && strcmp(v, "off"))
            return err_set(e, "--progress: expected auto or off, got '%s'", v);
        o->progress = !strcmp(v, "auto");
    } else if (!strcmp(a, "--press-opt")) {
        char *eq = strchr(v, '=');
        if (!eq || eq == v)
            return err_set(e, "--press-opt: expected NAME=VALUE, got '%s'", v);
        if (o->n_press_opt == MAX_LIST)
            return err_set(e, "--press-opt: more than %d options", MAX_LIST);
        *eq = '\0'; /* argv strings are the program's to modify */
        o->opt_name[o->n_press_opt] = v;
        o->opt_value[o->n_press_opt++] = eq + 1;
    } else
        return err_set(e, "unknown flag '%s' (see --help)", a);
    return 0;
}

int eval_opts_parse(int argc, char **argv, struct eval_opts *o, bool *full, struct adakv_err *e) {
    static char d_hay[] = "tests/data/text/perplexity-en.txt,tests/data/text/fidelity-en.txt";
    static char d_tasks[] = "passkey,multikey,qa"; /* the suite of docs/eval.md */
    static char d_len[] = "1024,2048,4096", d_depth[] = "0,11,22,33,44,56,67,78,89,100";
    static char d_press[] = "full,snapkv,ada-snapkv,critical,ada-critical";
    static char d_ratio[] = "0.5,0.8";
    static char d_mode[] = "aware,agnostic";
    *o = (struct eval_opts){.model = "models/SmolLM2-135M-Instruct.Q4_1.gguf",
                            .samples = 1,
                            .seed = 1,
                            .chat = true,
                            .share = true,
                            .progress = true,
                            .window = 32};
    struct list_args l = {d_hay, d_tasks, d_len, d_depth, d_press, d_ratio, d_mode};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--no-chat")) {
            o->chat = false;
        } else if (!strcmp(a, "--no-share")) {
            o->share = false;
        } else if (!strcmp(a, "--dry-run")) {
            o->dry_run = true;
        } else if (i + 1 == argc) {
            return err_set(e, a[0] == '-' ? "%s: missing value" : "unexpected argument '%s'", a);
        } else if (parse_flag(o, &l, a, argv[++i], e)) {
            return -1;
        }
    }
    if (!o->csv && !o->dry_run && !o->dump)
        return err_set(e, "--csv: give the results file (it is appended to and resumed)");
    /* the shared prefill hands every press the context uncompressed, then prefills one window:
     * a chunked prefill (adakv.h, prefill-chunk) only happens in a prefill from scratch */
    for (int i = 0; i < o->n_press_opt && o->share; i++)
        if (!strcmp(o->opt_name[i], "prefill-chunk"))
            return err_set(e, "--press-opt prefill-chunk: needs --no-share (a shared prefill "
                              "would compress the context in one piece)");
    return parse_lists(o, &l, full, e);
}
