/* The HTTP layer (http.h). */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct http {
    struct MHD_Daemon *d;
    struct api *a;
    const struct server_opts *o;
};

/* What one request has received so far. */
struct req {
    char *body; /* [len], NUL-terminated for the JSON parser's error messages */
    size_t len, cap;
    bool too_big;  /* more than --max-body arrived: the rest is read and dropped, then 413 */
    bool answered; /* a response went out before the body (401, 413 by Content-Length) */
};

/* Every byte of the expected key is looked at whatever the given one holds, so the time taken
 * does not tell how much of a guess was right (only the key's length, which is not secret
 * enough to matter next to its content). */
static bool key_equal(const char *got, const char *want) {
    const size_t gl = strlen(got), wl = strlen(want);
    unsigned char diff = gl != wl;
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < gl ? got[i] : 0);
    return diff == 0;
}

static bool authorized(struct http *h, struct MHD_Connection *c, const char *url) {
    if (!h->o->api_key || !strcmp(url, "/health"))
        return true;
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!v || strncasecmp(v, "Bearer ", 7))
        return false;
    v += 7;
    while (*v == ' ')
        v++;
    return key_equal(v, h->o->api_key);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    struct api_stream *st = cls;
    while (st->off == st->len)
        if (!api_stream_more(st))
            return MHD_CONTENT_READER_END_OF_STREAM;
    const size_t n = st->len - st->off < max ? st->len - st->off : max;
    memcpy(buf, st->buf + st->off, n);
    st->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    api_stream_free(cls);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct api_reply *r) {
    struct MHD_Response *resp =
        r->stream ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read,
                                                      r->stream, stream_free)
                  : MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        if (r->stream)
            api_stream_free(r->stream);
        else
            free(r->body);
        return MHD_NO; /* out of memory: MHD closes the connection */
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->type);
    if (r->stream)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    const enum MHD_Result rc = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls) {
    (void)version;
    struct http *h = cls;
    struct req *q = *req_cls;
    struct api_reply r;
    memset(&r, 0, sizeof r);
    if (!q) { /* headers only so far: refuse early what needs no body to refuse */
        if (!(q = calloc(1, sizeof *q)))
            return MHD_NO;
        *req_cls = q;
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!authorized(h, c, url))
            api_error(&r, 401, "authentication_error",
                      "invalid or missing API key (send "
                      "'Authorization: Bearer KEY')");
        else if (cl && strtoull(cl, NULL, 10) > h->o->max_body)
            api_error(&r, 413, "invalid_request_error",
                      "the body is %s bytes, more than --max-body %llu", cl,
                      (unsigned long long)h->o->max_body);
        else
            return MHD_YES;
        q->answered = true;
        return send_reply(c, &r);
    }
    if (q->answered) { /* drop what still arrives */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        const size_t n = *upload_size;
        *upload_size = 0;
        if (q->too_big || q->len + n > h->o->max_body) {
            q->too_big = true; /* a chunked body without Content-Length got here */
            free(q->body);
            q->body = NULL;
            q->len = q->cap = 0;
            return MHD_YES;
        }
        if (q->len + n + 1 > q->cap) {
            size_t cap = q->cap ? q->cap : 4096;
            while (cap < q->len + n + 1)
                cap *= 2;
            char *b = realloc(q->body, cap);
            if (!b)
                return MHD_NO;
            q->body = b;
            q->cap = cap;
        }
        memcpy(q->body + q->len, upload, n);
        q->len += n;
        q->body[q->len] = '\0';
        return MHD_YES;
    }
    if (q->too_big)
        api_error(&r, 413, "invalid_request_error", "the body is more than --max-body %llu bytes",
                  (unsigned long long)h->o->max_body);
    else {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        api_handle(h->a, method, url, q->body ? q->body : "", q->len, ci ? ci->connect_fd : -1, &r);
    }
    q->answered = true;
    return send_reply(c, &r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    struct req *q = *req_cls;
    if (q) {
        free(q->body);
        free(q);
        *req_cls = NULL;
    }
}

struct http *http_start(struct api *a, const struct server_opts *o, int *port,
                        struct adakv_err *e) {
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    memset(&v4, 0, sizeof v4);
    memset(&v6, 0, sizeof v6);
    const struct sockaddr *addr;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG | MHD_USE_POLL;
    if (inet_pton(AF_INET, o->host, &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        v4.sin_port = htons((uint16_t)o->port);
        addr = (const struct sockaddr *)&v4;
    } else if (inet_pton(AF_INET6, o->host, &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons((uint16_t)o->port);
        addr = (const struct sockaddr *)&v6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(e->msg, sizeof e->msg, "--host: '%s' is not a numeric IPv4 or IPv6 address",
                 o->host);
        return NULL;
    }
    struct http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(e->msg, sizeof e->msg, "out of memory");
        return NULL;
    }
    h->a = a;
    h->o = o;
    h->d =
        MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                         addr, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!h->d) {
        snprintf(e->msg, sizeof e->msg, "--port: cannot listen on %s port %d (in use?)", o->host,
                 o->port);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : o->port;
    return h;
}

void http_stop(struct http *h) {
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
