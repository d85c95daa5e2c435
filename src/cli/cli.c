#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "flag.h"

/* --help: the press flags' lines come from the library's table of press options (their ranges
 * and defaults included), between the cache type and the question flags. */
static const char usage_head[] =
    "usage: adakv-run [options] model.gguf [prompt.txt]\n"
    "\n"
    "input\n"
    "  -m, --model FILE       GGUF model (or the first positional argument)\n"
    "  -f, --file FILE        prompt file, '-' for stdin (or the second positional)\n"
    "  -p, --prompt TEXT      prompt text\n"
    "      --chat             wrap the prompt in the model's chat template\n"
    "      --perplexity FILE  perplexity of FILE in chunks of -c tokens (llama-perplexity)\n"
    "generation\n"
    "  -n, --n-predict N      tokens to generate (default 128, -1 = until end of turn)\n"
    "      --ignore-eos       never sample an end-of-generation token (runs -n tokens)\n"
    "  -c, --ctx-size N       context size in tokens (default min(model, 4096); more than\n"
    "                         the machine's RAM holds is refused before loading it)\n"
    "  -s, --seed N           sampling seed (default: random)\n"
    "      --temp F           temperature, 0 = greedy (default 0.8)\n"
    "      --top-k N          top-k, 0 = off (default 40)\n"
    "      --top-p F          top-p in (0, 1], 1 = off (default 0.95)\n"
    "KV cache\n"
    "      --kv-type T        int8 (default), f16 or f32; -ctk/-ctv are aliases\n";
static const char usage_tail[] =
    "      --question FILE    a question about the prompt (repeatable; or a line\n"
    "                         '<<<question>>>' in the prompt file separates it)\n"
    "      --question-aware   compress context and question together (default: the\n"
    "                         context alone, so it can answer several questions); with\n"
    "                         kvzip the question's attention scores the context beside the\n"
    "                         reconstruction's, and the question is kept whole\n"
    "      --kv-report        per layer: head budgets, attention mass kept, L1 bound,\n"
    "                         measured output change, bytes before -> after\n"
    "machine\n"
    "  -t, --threads N        threads, at most 512 (default: all cores)\n"
    "      --numa MODE        off (default; thread i on core i), distribute (threads spread\n"
    "                         over NUMA nodes), isolate (only the starting node's cores);\n"
    "                         OMP_PLACES/OMP_PROC_BIND, if set, place the threads instead\n"
    "      --reference        plain C kernels everywhere (slow; for comparisons)\n"
    "      --prefill-gemm G   prompt-batch matmuls: auto (default: the quantized weights,\n"
    "                         no extra memory; on AMX CPUs K-quants as bf16 tiles; oneDNN\n"
    "                         only for float weights), quant (the quantized weights in\n"
    "                         llama.cpp's 8-bit arithmetic), f32 or bf16 (oneDNN on a dense\n"
    "                         copy of every layer's weights, dequantized at load)\n"
    "output\n"
    "      --progress MODE    prefill progress on stderr: auto (TTY only), on, off\n"
    "      --no-perf          no timing summary on stderr\n"
    "  -h, --help             this text\n"
    "      --version          print the version\n"
    "Generated text goes to stdout; progress, timings and errors go to stderr.\n"
    "An option with a value may be given once (--question may repeat). Ctrl-C stops\n"
    "the run, prints the timings and exits with status 130.\n";

void cli_usage(FILE *out) {
    char *press = adakv_press_usage(); /* NULL: out of memory, the rest is still worth printing */
    fprintf(out, "%s%s%s", usage_head, press ? press : "", usage_tail);
    adakv_free(press);
}

static int parse_float(const char *flag, const char *s, double lo, double hi, bool lo_open,
                       float *out, struct adakv_err *e) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v))
        return err_set(e, "%s: expected a number, got '%s'", flag, s);
    if (v < lo || v > hi || (lo_open && v == lo))
        return err_set(e, "%s: %g is out of range %s%g, %g]", flag, v, lo_open ? "(" : "[", lo, hi);
    *out = (float)v;
    return 0;
}

static void defaults(struct cli_opts *o) {
    memset(o, 0, sizeof *o);
    o->press = adakv_press_new();
    o->n_predict = 128;
    o->temp = 0.8f;
    o->top_k = 40;
    o->top_p = 0.95f;
    o->perf = true;
    o->kv_type = ADAKV_KV_INT8;
    o->progress = CLI_PROGRESS_AUTO;
}

/* The one spelling of an option with aliases, so "-c 8 --ctx-size 9" counts as given twice.
 * -ctv stays apart from -ctk: llama.cpp gives them separately, and equal values are fine. */
static const char *canonical(const char *a) {
    static const char *const alias[][2] = {
        {"-m", "--model"},     {"-f", "--file"},      {"-p", "--prompt"},
        {"-n", "--n-predict"}, {"-c", "--ctx-size"},  {"-t", "--threads"},
        {"-s", "--seed"},      {"-ctk", "--kv-type"}, {"--ada-kvpress", "--ada"},
    };
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (!strcmp(a, alias[i][0]))
            return alias[i][1];
    return a;
}

/* Options seen so far: an option given twice is an error rather than a silent last-wins, since
 * with ~40 options a repeated one is more often a mistake than an override. */
struct seen {
    const char *name[64];
    int n;
};

static int seen_once(struct seen *s, const char *a, struct adakv_err *e) {
    const char *c = canonical(a);
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], c))
            return err_set(e, "%s: given twice (each option once; --question may repeat)", a);
    if (s->n < (int)(sizeof s->name / sizeof s->name[0]))
        s->name[s->n++] = c;
    return 0;
}

void cli_opts_free(struct cli_opts *o) {
    adakv_press_free(o->press);
    o->press = NULL;
}

int cli_parse(int argc, char **argv, struct cli_opts *o, struct adakv_err *e) {
    defaults(o);
    if (!o->press)
        return err_set(e, "out of memory");
    const char *positional[2] = {NULL, NULL};
    int n_pos = 0;
    struct seen seen = {.n = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long v = 0;
        /* flags without a value */
        if (flag_is(a, "-h", "--help")) {
            o->help = true;
            continue;
        }
        if (flag_is(a, "--version", NULL)) {
            o->version = true;
            continue;
        }
        if (flag_is(a, "--chat", NULL)) {
            o->chat = true;
            continue;
        }
        if (flag_is(a, "--ignore-eos", NULL)) {
            o->ignore_eos = true;
            continue;
        }
        if (flag_is(a, "--no-perf", NULL)) {
            o->perf = false;
            continue;
        }
        if (flag_is(a, "--reference", NULL)) {
            o->reference = true;
            continue;
        }
        if (flag_is(a, "--kv-report", NULL)) {
            o->kv_report = true;
            continue;
        }
        if (flag_is(a, "--question-aware", NULL)) {
            o->question_aware = true;
            continue;
        }
        if (flag_is(a, "--ada", NULL) || flag_is(a, "--ada-kvpress", NULL)) {
            if (seen_once(&seen, a, e))
                return -1;
            if (adakv_press_set(o->press, "ada", a[5] ? "kvpress" : "on", e))
                return -1;
            continue;
        }
        if (a[0] != '-' || !strcmp(a, "-")) {
            if (n_pos == 2)
                return err_set(e, "unexpected argument '%s' (model and prompt file already given)",
                               a);
            positional[n_pos++] = a;
            continue;
        }
        /* flags with a value */
        if (i + 1 >= argc)
            return err_set(e, "%s: missing value", a);
        const char *val = argv[++i];
        if (!flag_is(a, "--question", NULL) && seen_once(&seen, a, e))
            return -1;
        if (flag_is(a, "-m", "--model"))
            o->model_path = val;
        else if (flag_is(a, "-f", "--file"))
            o->prompt_file = val;
        else if (flag_is(a, "-p", "--prompt"))
            o->prompt_text = val;
        else if (flag_is(a, "--perplexity", NULL))
            o->perplexity_file = val;
        else if (flag_is(a, "--question", NULL)) {
            if (o->n_questions == (int)(sizeof o->questions / sizeof o->questions[0]))
                return err_set(e, "--question: at most %d questions",
                               (int)(sizeof o->questions / sizeof o->questions[0]));
            o->questions[o->n_questions++] = val;
        } else if (!strncmp(a, "--", 2) && adakv_press_is_flag(a + 2)) {
            /* --press, --kv-budget, ...: the library's table of press options */
            if (adakv_press_set(o->press, a + 2, val, e))
                return -1;
        } else if (flag_is(a, "-n", "--n-predict")) {
            if (flag_parse_long(a, val, -1, INT_MAX, &v, e))
                return -1;
            o->n_predict = (int)v;
        } else if (flag_is(a, "-c", "--ctx-size")) {
            /* up to the library's limit: whether the machine holds it is checked at load */
            if (flag_parse_long(a, val, 0, 1 << 22, &v, e))
                return -1;
            o->n_ctx = (int)v;
        } else if (flag_is(a, "-t", "--threads")) {
            if (flag_parse_long(a, val, 0, 512, &v, e)) /* llama.cpp's GGML_MAX_N_THREADS */
                return -1;
            o->n_threads = (int)v;
        } else if (flag_is(a, "-s", "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(val, &end, 10);
            if (errno || end == val || *end != '\0' || val[0] == '-')
                return err_set(e, "%s: expected a non-negative integer, got '%s'", a, val);
            o->seed = s;
            o->seed_set = true;
        } else if (flag_is(a, "--temp", NULL)) {
            if (parse_float(a, val, 0.0, 100.0, false, &o->temp, e))
                return -1;
        } else if (flag_is(a, "--top-k", NULL)) {
            if (flag_parse_long(a, val, 0, INT_MAX, &v, e))
                return -1;
            o->top_k = (int)v;
        } else if (flag_is(a, "--top-p", NULL)) {
            if (parse_float(a, val, 0.0, 1.0, true, &o->top_p, e))
                return -1;
        } else if (flag_is(a, "--kv-type", "-ctk") || flag_is(a, "-ctv", NULL)) {
            enum adakv_kv_type t = ADAKV_KV_INT8;
            if (adakv_kv_type_parse(a, val, &t, e))
                return -1;
            if (o->kv_type_flag && t != o->kv_type) /* one cache type holds K and V both */
                return err_set(e, "%s %s contradicts %s: K and V share one type here", a, val,
                               o->kv_type_flag);
            o->kv_type = t;
            o->kv_type_flag = a;
        } else if (flag_is(a, "--prefill-gemm", NULL)) {
            if (adakv_prefill_gemm_parse(a, val, &o->prefill_gemm, e))
                return -1;
        } else if (flag_is(a, "--numa", NULL)) {
            if (adakv_numa_parse(a, val, &o->numa, e))
                return -1;
        } else if (flag_is(a, "--progress", NULL)) {
            if (!strcmp(val, "auto"))
                o->progress = CLI_PROGRESS_AUTO;
            else if (!strcmp(val, "on"))
                o->progress = CLI_PROGRESS_ON;
            else if (!strcmp(val, "off"))
                o->progress = CLI_PROGRESS_OFF;
            else
                return err_set(e, "%s: expected auto, on or off, got '%s'", a, val);
        } else {
            return err_set(e, "unknown option '%s' (see adakv-run --help)", a);
        }
    }
    if (o->help || o->version)
        return 0;
    int p = 0;
    if (!o->model_path && p < n_pos)
        o->model_path = positional[p++];
    if (p < n_pos) {
        if (o->prompt_file)
            return err_set(e, "prompt file given twice ('%s' and -f '%s')", positional[p],
                           o->prompt_file);
        o->prompt_file = positional[p++];
    }
    if (p < n_pos)
        return err_set(e, "unexpected argument '%s'", positional[p]);
    if (!o->model_path)
        return err_set(e, "no model given (adakv-run [options] model.gguf [prompt.txt])");
    int sources = !!o->prompt_file + !!o->prompt_text + !!o->perplexity_file;
    if (sources > 1)
        return err_set(e, "give only one of a prompt file, -p and --perplexity");
    if (sources == 0)
        return err_set(e, "no prompt given (a prompt file, '-' for stdin, or -p TEXT)");
    if (o->perplexity_file && o->n_questions)
        return err_set(e, "--question does not apply to --perplexity");
    if (o->perplexity_file && (o->chat || o->ignore_eos))
        return err_set(e, "%s does not apply to --perplexity (it generates nothing)",
                       o->chat ? "--chat" : "--ignore-eos");
    return adakv_press_check(o->press, e);
}
