/* The HTTP server of `basinlab serve`: a libmicrohttpd daemon that runs every request through
 * the route table and pipeline of router.h and answers with the reply built by the handler
 * (reply.h, sse.h). It owns the connection lifecycle, the capped body accumulator, request
 * ids and the one-line-per-request access log. Handlers never see MHD.
 *
 * Lifecycle: http_server_start() → serve → http_server_quiesce() (stop accepting; in-flight
 * requests finish, event streams end, answers carry `Connection: close`) → wait for
 * http_server_connections() to reach 0 (or a deadline) → http_server_stop(). */
#ifndef BASINLAB_HTTP_H
#define BASINLAB_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "router.h"

/* Receives each finished log line (no trailing newline); may be called from any server
 * thread at once. */
typedef void (*http_log_fn)(void *ctx, const char *line);
/* Receives each finished request's status (0 if none was sent) and duration, e.g. for metrics;
 * may be called from any server thread at once. */
typedef void (*http_done_fn)(void *ctx, int status, uint64_t duration_us);

struct http_config {
    const char *bind_address;      /* numeric IPv4 or IPv6 address; NULL = "127.0.0.1" */
    uint16_t port;                 /* 0 = an ephemeral port (see http_server_port) */
    size_t max_body_bytes;         /* request bodies above this get 413 */
    unsigned thread_pool_size;     /* 0 = one thread per connection (required for streams) */
    unsigned max_connections;      /* MHD_OPTION_CONNECTION_LIMIT */
    unsigned connection_timeout_s; /* idle connections are closed after this */
    unsigned sse_heartbeat_ms;     /* comment line on a silent event stream */
    http_log_fn log_fn;            /* NULL = one line to stderr */
    void *log_ctx;
    http_done_fn done_fn; /* NULL = none */
    void *done_ctx;
    struct pipeline_hooks hooks; /* optional steps of the pipeline (router.h); zeroed = none */
};

struct http_server;

/* Defaults: 127.0.0.1, port 8080, 8 MiB bodies, thread-per-connection, 256 connections,
 * 30 s idle timeout, 15 s heartbeat, log to stderr. */
void http_config_defaults(struct http_config *cfg);

/* Start serving `routes` (borrowed; must outlive the server) with `app` passed to every
 * handler. BASIN_EINVAL for a bad config or route table (or ROUTE_STREAM routes with a thread
 * pool), BASIN_ENOMEM; also BASIN_EINVAL when the daemon cannot start (address in use, no
 * permission: MHD's reason goes to the log function). */
int http_server_start(const struct http_config *cfg, const struct route *routes, size_t n_routes,
                      void *app, struct http_server **out);

/* The port the server listens on (the chosen one when cfg.port was 0). */
uint16_t http_server_port(const struct http_server *srv);

/* Stop accepting connections: the listening socket is closed (new clients are refused),
 * requests in flight finish and their answers carry `Connection: close`, event streams end
 * within one poll slice (~200 ms). Idle keep-alive connections stay open until the client
 * closes them, connection_timeout_s passes, or http_server_stop. Idempotent. */
void http_server_quiesce(struct http_server *srv);

/* Connections currently open (for a drain loop after quiesce). */
unsigned http_server_connections(const struct http_server *srv);

/* Stop the daemon (ending event streams within one poll interval), join its threads and free
 * the server. Accepts NULL. */
void http_server_stop(struct http_server *srv);

/* A log sink that drops everything (tests). */
void http_log_discard(void *ctx, const char *line);

#endif
