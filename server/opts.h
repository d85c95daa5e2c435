/* adakv-server's command line: parsed and checked into struct server_opts before the model is
 * loaded, so a bad flag costs no time and gets one line naming the flag (as adakv-run's). */
#ifndef ADAKV_SERVER_OPTS_H
#define ADAKV_SERVER_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "adakv.h"

struct server_opts {
    const char *model_path;
    const char *host;          /* numeric IPv4 or IPv6 address; default 127.0.0.1 (loopback) */
    int port;                  /* 0 = any free port (printed on the "listening" line) */
    int n_ctx;                 /* 0 = min(training context, 4096), as adakv-run */
    int n_threads;             /* 0 = all cores */
    int parallel;              /* requests decoded together (slots of the batch) */
    int queue;                 /* requests waiting for a slot beyond which a new one gets 503 */
    uint64_t kv_memory;        /* bytes of stored document contexts before LRU eviction; 0 = none */
    uint64_t max_body;         /* request body bytes beyond which 413 */
    int timeout;               /* seconds a connection may stay idle (slow clients) */
    int max_connections;       /* open connections (one thread each) */
    const char *api_key;       /* NULL = no authentication */
    const char *alias;         /* the model's id in /v1/models and responses */
    struct adakv_press *press; /* owned: the default press, checked at parse time */
    /* the press flags as given (name without dashes, value), to build more presses alike */
    const char *press_args[32][2];
    int n_press_args;
    enum adakv_kv_type kv_type;
    enum adakv_numa numa;
    bool help, version;
};

/* Parses argv. 0, or -1 with one line in e naming the bad flag or value. */
int server_opts_parse(int argc, char **argv, struct server_opts *o, struct adakv_err *e);
void server_opts_usage(FILE *out);
void server_opts_free(struct server_opts *o);
/* A new press from the press flags (the default of documents and prompts); NULL with e set. */
struct adakv_press *server_opts_press(const struct server_opts *o, struct adakv_err *e);

#endif
