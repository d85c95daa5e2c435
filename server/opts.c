/* adakv-server's flags (opts.h): llama-server's names where it has one (-m, --host, --port,
 * -c, -t, --parallel, --api-key, --alias, --timeout), adakv-run's for the press. */
#include "opts.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "flag.h"

/* --help; the press flags' lines come from the library's table of press options, as in
 * adakv-run --help. */
static const char usage_head[] =
    "usage: adakv-server -m model.gguf [options]\n"
    "\n"
    "An HTTP server with llama-server/OpenAI-shaped endpoints: POST /v1/chat/completions,\n"
    "/v1/completions, /tokenize, /detokenize, /v1/contexts; GET /v1/models, /v1/contexts,\n"
    "/health, /metrics; DELETE /v1/contexts/ID. One engine thread owns the model and\n"
    "decodes every active request one token per step in one batch.\n"
    "\n"
    "server\n"
    "  -m, --model FILE       GGUF model (required)\n"
    "      --host ADDR        numeric address to listen on (default 127.0.0.1, loopback;\n"
    "                         0.0.0.0 or :: exposes the server: set --api-key)\n"
    "      --port N           TCP port (default 8080; 0 = any free port, printed)\n"
    "      --api-key KEY      require 'Authorization: Bearer KEY' (GET /health is exempt)\n"
    "      --alias NAME       model id in /v1/models (default: the file's general.name)\n"
    "      --max-body BYTES   largest request body, else 413 (default 16777216)\n"
    "      --timeout S        seconds an idle connection is kept (default 60)\n"
    "      --max-connections N open connections, one thread each (default 128)\n"
    "engine\n"
    "  -c, --ctx-size N       positions per sequence (default min(model, 4096))\n"
    "  -t, --threads N        threads of the engine, at most 512 (default: all cores)\n"
    "      --parallel N       requests decoded together, 1..64 (default 4)\n"
    "      --queue N          requests waiting for a slot before 503 (default 16)\n"
    "      --kv-memory BYTES  stored document contexts above this are evicted, least\n"
    "                         recently used first (default 0 = no limit)\n"
    "      --kv-type T        int8 (default), f16 or f32\n"
    "      --numa MODE        off (default), distribute, isolate (as adakv-run)\n"
    "KV press: the default of POST /v1/contexts and of prompts\n";
static const char usage_tail[] =
    "  -h, --help             this text\n"
    "      --version          print the version\n"
    "Prompts shorter than the press's window are prefilled without compression.\n"
    "SIGINT or SIGTERM stops the server: queued requests get 503, running ones end.\n";

void server_opts_usage(FILE *out) {
    char *press = adakv_press_usage(); /* NULL: out of memory, the rest is still worth printing */
    fprintf(out, "%s%s%s", usage_head, press ? press : "", usage_tail);
    adakv_free(press);
}

static int parse_u64(const char *flag, const char *s, uint64_t lo, uint64_t hi, uint64_t *out,
                     struct adakv_err *e) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || s[0] == '-')
        return err_set(e, "%s: expected a non-negative integer, got '%s'", flag, s);
    if (v < lo || v > hi)
        return err_set(e, "%s: %llu is out of range [%llu, %llu]", flag, v, (unsigned long long)lo,
                       (unsigned long long)hi);
    *out = v;
    return 0;
}

void server_opts_free(struct server_opts *o) {
    adakv_press_free(o->press);
    o->press = NULL;
}

static int press_arg(struct server_opts *o, const char *name, const char *v, struct adakv_err *e) {
    if (o->n_press_args == (int)(sizeof o->press_args / sizeof o->press_args[0]))
        return err_set(e, "--%s: too many press options", name);
    o->press_args[o->n_press_args][0] = name;
    o->press_args[o->n_press_args++][1] = v;
    return adakv_press_set(o->press, name, v, e);
}

struct adakv_press *server_opts_press(const struct server_opts *o, struct adakv_err *e) {
    struct adakv_press *p = adakv_press_new();
    if (!p) {
        err_set(e, "out of memory");
        return NULL;
    }
    for (int i = 0; i < o->n_press_args; i++)
        if (adakv_press_set(p, o->press_args[i][0], o->press_args[i][1], e)) {
            adakv_press_free(p);
            return NULL;
        }
    return p;
}

int server_opts_parse(int argc, char **argv, struct server_opts *o, struct adakv_err *e) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->parallel = 4;
    o->queue = 16;
    o->max_body = 16u << 20;
    o->timeout = 60;
    o->max_connections = 128;
    o->kv_type = ADAKV_KV_INT8;
    if (!(o->press = adakv_press_new()))
        return err_set(e, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (flag_is(a, "-h", "--help")) {
            o->help = true;
            continue;
        }
        if (flag_is(a, "--version", NULL)) {
            o->version = true;
            continue;
        }
        if (flag_is(a, "--ada", "--ada-kvpress")) {
            if (press_arg(o, "ada", a[5] ? "kvpress" : "on", e))
                return -1;
            continue;
        }
        if (a[0] != '-')
            return err_set(e, "unexpected argument '%s' (the model is given with -m)", a);
        if (i + 1 >= argc)
            return err_set(e, "%s: missing value", a);
        const char *v = argv[++i];
        uint64_t u;
        if (flag_is(a, "-m", "--model"))
            o->model_path = v;
        else if (flag_is(a, "--host", NULL))
            o->host = v;
        else if (flag_is(a, "--api-key", NULL)) {
            if (!*v)
                return err_set(e, "%s: the key is empty", a);
            o->api_key = v;
        } else if (flag_is(a, "--alias", NULL))
            o->alias = v;
        else if (flag_is(a, "--port", NULL)) {
            if (flag_parse_int(a, v, 0, 65535, &o->port, e))
                return -1;
        } else if (flag_is(a, "-c", "--ctx-size")) {
            if (flag_parse_int(a, v, 0, 1 << 22, &o->n_ctx, e))
                return -1;
        } else if (flag_is(a, "-t", "--threads")) {
            if (flag_parse_int(a, v, 0, 512, &o->n_threads, e))
                return -1;
        } else if (flag_is(a, "--parallel", "-np")) {
            if (flag_parse_int(a, v, 1, 64, &o->parallel, e))
                return -1;
        } else if (flag_is(a, "--queue", NULL)) {
            if (flag_parse_int(a, v, 0, 4096, &o->queue, e))
                return -1;
        } else if (flag_is(a, "--timeout", NULL)) {
            if (flag_parse_int(a, v, 1, 86400, &o->timeout, e))
                return -1;
        } else if (flag_is(a, "--max-connections", NULL)) {
            if (flag_parse_int(a, v, 1, 4096, &o->max_connections, e))
                return -1;
        } else if (flag_is(a, "--kv-memory", NULL)) {
            if (parse_u64(a, v, 0, UINT64_MAX, &o->kv_memory, e))
                return -1;
        } else if (flag_is(a, "--max-body", NULL)) {
            if (parse_u64(a, v, 1, (uint64_t)1 << 32, &u, e))
                return -1;
            o->max_body = u;
        } else if (flag_is(a, "--kv-type", NULL)) {
            if (adakv_kv_type_parse(a, v, &o->kv_type, e))
                return -1;
        } else if (flag_is(a, "--numa", NULL)) {
            if (adakv_numa_parse(a, v, &o->numa, e))
                return -1;
        } else if (!strncmp(a, "--", 2) && adakv_press_is_flag(a + 2)) {
            /* under their adakv-run names (without the dashes) */
            if (press_arg(o, a + 2, v, e))
                return -1;
        } else {
            return err_set(e, "unknown option '%s' (see adakv-server --help)", a);
        }
    }
    if (o->help || o->version)
        return 0;
    if (!o->model_path)
        return err_set(e, "no model given (adakv-server -m model.gguf)");
    return adakv_press_check(o->press, e);
}
