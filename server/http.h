/* HTTP on libmicrohttpd: one thread per connection (so a handler may block on its request's
 * channel while the engine works), a connection limit and an idle timeout for slow clients,
 * the body size limit (413), the API key (401), then api_handle. */
#ifndef ADAKV_SERVER_HTTP_H
#define ADAKV_SERVER_HTTP_H

#include "api.h"
#include "opts.h"

struct http;

/* Listens on o->host:o->port; *port receives the bound port (o->port 0 picks a free one).
 * NULL with e set when the address is bad or the port taken. */
struct http *http_start(struct api *a, const struct server_opts *o, int *port, struct adakv_err *e);
/* Closes the listening socket and waits for every connection's thread. */
void http_stop(struct http *h);

#endif
