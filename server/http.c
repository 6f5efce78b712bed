/* The libmicrohttpd adapter of `basinlab serve` (http.h): daemon start/quiesce/stop, the
 * per-request state ("exchange") with its capped body accumulator, conversion of a reply into
 * an MHD response, request ids and the access log. The pipeline itself is in router.c.
 *
 * DESIGN
 * - Threading: MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION by default.
 *   Handlers block (SQLite, waiting for a store lock) and event streams block for minutes in
 *   their content reader; with one thread per connection a blocked request holds only its own
 *   thread, and nothing needs MHD_suspend/resume bookkeeping. The cost — one thread per open
 *   connection — is bounded by MHD_OPTION_CONNECTION_LIMIT, and idle keep-alive connections are
 *   reaped by MHD_OPTION_CONNECTION_TIMEOUT. A thread pool (thread_pool_size > 0) is offered for
 *   deployments without event streams; start refuses it when the table has ROUTE_STREAM
 *   routes, because a blocking stream would stall every connection of its pool thread.
 * - Raw path: MHD percent-decodes the URL it hands to the access handler, which would turn
 *   "/v1/datasets/a%2Fb" into a three-segment path. MHD_OPTION_URI_LOG_CALLBACK sees the
 *   request target before decoding; it allocates the exchange (its return value becomes
 *   *con_cls) and keeps the raw target, which router.c splits and decodes itself. Query
 *   parameters are still read through MHD's lookup (decoded by MHD).
 * - One exchange per request, created in the URI callback and freed in the completion
 *   callback (MHD_OPTION_NOTIFY_COMPLETED), which also writes the access-log line, so every
 *   request that reached us is logged exactly once with its final status and duration.
 * - Body: the first access-handler call (headers only) runs route, method and content-type
 *   checks and refuses a Content-Length above max_body_bytes with 413 before reading any body
 *   (MHD then skips the body and closes the connection). Later calls append to a buffer that
 *   grows geometrically (4 KiB, doubling) and never beyond max_body_bytes + 1. MHD 0.9.75 lets
 *   a response be queued only before the body is read or after all of it was read, so a
 *   chunked body that passes the cap is not stored: the buffer is freed at once, further bytes
 *   are counted and dropped, and the 413 goes out when the body ends. A client that keeps
 *   sending more than HTTP_DRAIN_BYTES past the cap has its connection closed instead.
 * - Memory failures never crash: a failed allocation anywhere in the pipeline ends in a 500
 *   problem, and when even that cannot be built, in a static 500 body that needs no
 *   allocation; if MHD cannot allocate a response, the connection is closed (MHD_NO).
 * - Draining: quiesce closes the listening socket, sets the stop flag (event streams end
 *   within one poll slice) and every later answer carries `Connection: close`, so busy
 *   keep-alive connections end after their current request; idle ones wait for the client,
 *   the idle timeout or http_server_stop (which MHD ends by shutting their sockets down).
 * - Hooks (router.h, struct pipeline_hooks): admit and preflight run in the headers-only call
 *   before routing, authorize right after routing, all before any body byte is stored; so a
 *   rate-limited or unauthenticated client costs us no body buffer. decorate runs in
 *   send_reply, the one place every answer passes through (except the static 500 fallback).
 * - Host: RFC 9112 §3.2 makes an HTTP/1.1 request without exactly one Host header a 400, checked
 *   first thing in the headers-only call. Not MHD_OPTION_STRICT_FOR_CLIENT: in 0.9.75 it also
 *   drops a request whose target contains whitespace without answering at all.
 * - Known MHD 0.9.75 quirks we live with: 304 and 204 answers carry "Content-Length: 0"
 *   (MHD adds it and a second one cannot be suppressed); early answers (404/405/413/415
 *   before the body) always close the connection. */
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "sse.h"

enum {
    HTTP_BODY_INITIAL_BYTES = 4096,
    HTTP_DRAIN_BYTES = 1024 * 1024, /* dropped past the cap before the connection is closed */
    HTTP_SSE_POLL_MS = 200,
    HTTP_LOG_LINE_BYTES = 1024,
    HTTP_PATH_LOG_BYTES = 400
};

struct http_server {
    struct MHD_Daemon *daemon;
    const struct route *routes;
    size_t n_routes;
    void *app;
    struct http_config cfg;
    atomic_bool stopping; /* set by quiesce and stop: streams end, answers close */
    atomic_uint_least64_t next_request;
    uint64_t id_key;
    uint16_t port;
};

struct exchange {
    struct http_server *srv;
    char *target;    /* raw request target as sent (path and query) */
    char *path;      /* raw path: target up to '?' */
    char method[16]; /* for the log line (truncated if absurd) */
    char client[INET6_ADDRSTRLEN];
    char request_id[72];
    struct timespec t0;
    int started;  /* the headers-only call was handled */
    int answered; /* a response is queued */
    struct route_match match;
    enum body_kind body_kind;
    char *body;
    size_t body_len;
    size_t body_cap;
    int too_large;    /* 1: the body passed the cap; -1: storing it ran out of memory */
    uint64_t dropped; /* bytes dropped after the cap was passed */
    int status;       /* for the log */
    uint64_t bytes;
    const char *cause;
    struct sse_stream *stream; /* our reference, for the byte count */
};

/* Returned by the URI callback when the exchange cannot be allocated. */
static char exchange_oom_marker;

static const char fallback_500[] =
    "{\"type\":\"about:blank\",\"title\":\"Internal Server Error\",\"status\":500}";

void http_log_discard(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
}

void http_config_defaults(struct http_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->bind_address = "127.0.0.1";
    cfg->port = 8080;
    cfg->max_body_bytes = (size_t)8 * 1024 * 1024;
    cfg->thread_pool_size = 0;
    cfg->max_connections = 256;
    cfg->connection_timeout_s = 30;
    cfg->sse_heartbeat_ms = 15000;
}

/* ---- logging ---- */

static void emit_log(const struct http_server *srv, const char *line)
{
    if (srv->cfg.log_fn != NULL)
        srv->cfg.log_fn(srv->cfg.log_ctx, line);
    else
        fprintf(stderr, "%s\n", line);
}

/* Append "key=value" (logfmt) to line; the value is quoted when needed and control
 * characters are escaped, so a hostile path cannot forge log lines. */
static void log_field(char *line, size_t cap, size_t *used, const char *key, const char *value,
                      size_t max_value)
{
    size_t u = *used;
    int quote = value[0] == '\0' || strpbrk(value, " =\"\\") != NULL;
    for (const unsigned char *p = (const unsigned char *)value; *p && !quote; p++)
        quote = *p < 0x20 || *p == 0x7f;
    int n = snprintf(line + u, cap - u, "%s%s=%s", u ? " " : "", key, quote ? "\"" : "");
    u = n > 0 && (size_t)n < cap - u ? u + (size_t)n : cap - 1;
    size_t written = 0;
    for (const unsigned char *p = (const unsigned char *)value; *p && u + 6 < cap; p++) {
        if (written++ == max_value) {
            u += (size_t)snprintf(line + u, cap - u, "...");
            break;
        }
        if (*p < 0x20 || *p == 0x7f)
            u += (size_t)snprintf(line + u, cap - u, "\\x%02x", *p);
        else if (*p == '"' || *p == '\\')
            u += (size_t)snprintf(line + u, cap - u, "\\%c", *p);
        else
            line[u++] = (char)*p;
    }
    if (quote && u + 1 < cap)
        line[u++] = '"';
    line[u] = '\0';
    *used = u;
}

static void format_time(char *buf, size_t cap)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03ldZ", now.tv_nsec / 1000000L);
}

static const char *termination_name(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK:
        return NULL;
    case MHD_REQUEST_TERMINATED_WITH_ERROR:
        return "error";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
        return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
        return "shutdown";
    case MHD_REQUEST_TERMINATED_READ_ERROR:
        return "read_error";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
        return "client_abort";
    default:
        return "other";
    }
}

static void log_exchange(const struct exchange *ex, enum MHD_RequestTerminationCode toe)
{
    char line[HTTP_LOG_LINE_BYTES];
    char ts[40];
    char num[48];
    size_t used = 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ms =
        (double)(now.tv_sec - ex->t0.tv_sec) * 1e3 + (double)(now.tv_nsec - ex->t0.tv_nsec) / 1e6;
    uint64_t bytes = ex->stream != NULL ? sse_stream_bytes(ex->stream) : ex->bytes;
    if (ex->srv->cfg.done_fn != NULL)
        ex->srv->cfg.done_fn(ex->srv->cfg.done_ctx, ex->status, (uint64_t)(ms * 1e3));
    format_time(ts, sizeof(ts));
    line[0] = '\0';
    log_field(line, sizeof(line), &used, "ts", ts, 64);
    log_field(line, sizeof(line), &used, "req_id", ex->request_id[0] ? ex->request_id : "-", 80);
    log_field(line, sizeof(line), &used, "method", ex->method[0] ? ex->method : "-", 16);
    log_field(line, sizeof(line), &used, "path", ex->target ? ex->target : "-",
              HTTP_PATH_LOG_BYTES);
    snprintf(num, sizeof(num), "%d", ex->status);
    log_field(line, sizeof(line), &used, "status", num, 16);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)bytes);
    log_field(line, sizeof(line), &used, "bytes", num, 32);
    snprintf(num, sizeof(num), "%.3f", ms);
    log_field(line, sizeof(line), &used, "duration_ms", num, 32);
    log_field(line, sizeof(line), &used, "client", ex->client[0] ? ex->client : "-", 64);
    if (ex->cause != NULL)
        log_field(line, sizeof(line), &used, "err", ex->cause, 200);
    if (termination_name(toe) != NULL)
        log_field(line, sizeof(line), &used, "term", termination_name(toe), 32);
    emit_log(ex->srv, line);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    char line[HTTP_LOG_LINE_BYTES];
    char ts[40];
    size_t used = 0;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    format_time(ts, sizeof(ts));
    line[0] = '\0';
    log_field(line, sizeof(line), &used, "ts", ts, 64);
    log_field(line, sizeof(line), &used, "level", "warn", 8);
    log_field(line, sizeof(line), &used, "msg", msg, sizeof(msg));
    emit_log(cls, line);
}

/* ---- request ids ---- */

static uint64_t splitmix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* Echo a client's X-Request-Id when it is short and plain (it lands in logs and headers);
 * otherwise make one: a per-server random key through splitmix64 of a counter, so ids are
 * unique within the process and not guessable across restarts. */
static void assign_request_id(struct exchange *ex, struct MHD_Connection *conn)
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given != NULL) {
        size_t len = strlen(given);
        if (len > 0 && len <= 64 &&
            strspn(given, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
                len) {
            memcpy(ex->request_id, given, len + 1);
            return;
        }
    }
    uint64_t n = atomic_fetch_add(&ex->srv->next_request, 1);
    snprintf(ex->request_id, sizeof(ex->request_id), "%016llx",
             (unsigned long long)splitmix64(ex->srv->id_key ^ n));
}

/* ---- the exchange ---- */

static void exchange_free(struct exchange *ex)
{
    if (ex == NULL)
        return;
    route_match_clear(&ex->match);
    sse_stream_release(ex->stream);
    basin_free(ex->body);
    basin_free(ex->target);
    basin_free(ex->path);
    basin_free(ex);
}

static void client_address(struct MHD_Connection *conn, char *buf, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    buf[0] = '\0';
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
                  (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                  (socklen_t)cap);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct exchange *ex = basin_calloc(1, sizeof(*ex));
    if (ex == NULL)
        return &exchange_oom_marker;
    ex->srv = cls;
    clock_gettime(CLOCK_MONOTONIC, &ex->t0);
    ex->target = basin_strdup(uri);
    ex->path = basin_strdup(uri);
    if (ex->target == NULL || ex->path == NULL) {
        exchange_free(ex);
        return &exchange_oom_marker;
    }
    ex->path[strcspn(ex->path, "?")] = '\0';
    client_address(conn, ex->client, sizeof(ex->client));
    return ex;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    struct exchange *ex = *con_cls;
    *con_cls = NULL;
    if (ex == NULL || (void *)ex == (void *)&exchange_oom_marker)
        return;
    log_exchange(ex, toe);
    exchange_free(ex);
}

/* ---- answering ---- */

static enum MHD_Result queue_fallback_500(struct MHD_Connection *conn)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof(fallback_500) - 1, (void *)fallback_500, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/problem+json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(conn, 500, resp);
    MHD_destroy_response(resp);
    return ret;
}

static struct MHD_Response *response_from_reply(struct exchange *ex, struct reply *rep)
{
    struct MHD_Response *resp = NULL;
    if (rep->stream != NULL) {
        resp = sse_response_create(rep->stream, &ex->srv->stopping, ex->srv->cfg.sse_heartbeat_ms,
                                   HTTP_SSE_POLL_MS);
        if (resp != NULL) {
            ex->stream = rep->stream; /* the reply's reference moves to the exchange */
            rep->stream = NULL;
        }
    } else if (rep->body != NULL) {
        resp = MHD_create_response_from_buffer_with_free_callback(rep->body_len, rep->body,
                                                                  basin_free);
        if (resp != NULL) {
            ex->bytes = rep->body_len;
            rep->body = NULL;
        }
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (resp == NULL)
        return NULL;
    int ok = 1;
    if (rep->content_type != NULL)
        ok &= MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rep->content_type) ==
              MHD_YES;
    for (size_t i = 0; i < rep->n_headers; i++)
        ok &= MHD_add_response_header(resp, rep->headers[i].name, rep->headers[i].value) == MHD_YES;
    if (ex->request_id[0] != '\0')
        ok &= MHD_add_response_header(resp, "X-Request-Id", ex->request_id) == MHD_YES;
    if (atomic_load(&ex->srv->stopping))
        ok &= MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
    if (!ok) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    return resp;
}

static const char *conn_lookup(void *ctx, enum request_lookup_kind kind, const char *name);

/* The request as the pipeline sees it before the body: method, path, ids, client, route (when
 * matched) and the header/query lookup. */
static void request_from_exchange(struct exchange *ex, struct MHD_Connection *conn,
                                  const char *method, struct request *req)
{
    memset(req, 0, sizeof(*req));
    req->method = method;
    req->path = ex->path;
    req->request_id = ex->request_id;
    req->client = ex->client;
    req->app = ex->srv->app;
    req->route = ex->match.route;
    req->n_params = ex->match.n_params;
    memcpy(req->params, ex->match.params, sizeof(req->params));
    req->lookup = conn_lookup;
    req->lookup_ctx = conn;
}

/* Run an optional request hook of the pipeline (router.h). */
static int run_hook(const struct request_hook *hook, const struct request *req, struct reply *rep)
{
    return hook->fn != NULL ? hook->fn(hook->ctx, req, rep) : BASIN_OK;
}

/* Queue rep as the answer (any time MHD allows it) and release the reply. */
static enum MHD_Result send_reply(struct exchange *ex, struct MHD_Connection *conn,
                                  struct reply *rep)
{
    enum MHD_Result ret = MHD_NO;
    const struct reply_hook *decorate = &ex->srv->cfg.hooks.decorate;
    ex->answered = 1;
    if (decorate->fn != NULL && rep->status != 0) {
        struct request req;
        request_from_exchange(ex, conn, ex->method, &req);
        decorate->fn(decorate->ctx, &req, rep);
    }
    ex->cause = rep->log_cause;
    struct MHD_Response *resp = rep->status != 0 ? response_from_reply(ex, rep) : NULL;
    if (resp == NULL) {
        ex->status = 500;
        if (ex->cause == NULL)
            ex->cause = "out of memory building the response";
        ret = queue_fallback_500(conn);
        goto done;
    }
    ex->status = rep->status;
    ret = MHD_queue_response(conn, (unsigned)rep->status, resp);
    MHD_destroy_response(resp);
done:
    reply_clear(rep);
    return ret;
}

/* ---- the access handler ---- */

static const char *conn_lookup(void *ctx, enum request_lookup_kind kind, const char *name)
{
    enum MHD_ValueKind k = kind == REQUEST_LOOKUP_HEADER ? MHD_HEADER_KIND : MHD_GET_ARGUMENT_KIND;
    return MHD_lookup_connection_value(ctx, k, name);
}

/* Parse a Content-Length value; absurd or overflowing values read as SIZE_MAX. */
static size_t parse_content_length(const char *s)
{
    size_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (basin_mul_size(v, 10, &v) != BASIN_OK ||
            basin_add_size(v, (size_t)(*s - '0'), &v) != BASIN_OK)
            return SIZE_MAX;
    }
    return v;
}

static enum MHD_Result count_host(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    (void)value;
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
        (*(unsigned *)cls)++;
    return MHD_YES;
}

/* RFC 9112 §3.2: a request of HTTP/1.1 (or later) carries exactly one Host header. */
static int host_ok(struct MHD_Connection *conn, const char *version)
{
    unsigned hosts = 0;
    if (version == NULL || strcmp(version, MHD_HTTP_VERSION_1_0) == 0)
        return 1;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_host, &hosts);
    return hosts == 1;
}

/* The headers-only call: Host, route, method, content type and announced size. */
static enum MHD_Result begin_request(struct exchange *ex, struct MHD_Connection *conn,
                                     const char *method, const char *version)
{
    struct http_server *srv = ex->srv;
    struct reply rep;
    struct request req;
    int rc = BASIN_OK;
    reply_init(&rep, ex->path);
    ex->started = 1;
    snprintf(ex->method, sizeof(ex->method), "%s", method);
    assign_request_id(ex, conn);
    if (!host_ok(conn, version)) {
        rc = reply_problem(&rep, 400, NULL,
                           "an HTTP/1.1 request needs exactly one Host header (RFC 9112, 3.2)",
                           NULL, 0);
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto answer;
    }
    request_from_exchange(ex, conn, method, &req);
    rc = run_hook(&srv->cfg.hooks.admit, &req, &rep);
    if (rc == BASIN_OK)
        rc = run_hook(&srv->cfg.hooks.preflight, &req, &rep);
    if (rc == BASIN_OK)
        rc = router_match(srv->routes, srv->n_routes, method, ex->path, &ex->match, &rep);
    if (rc != BASIN_OK)
        goto answer;
    request_from_exchange(ex, conn, method, &req);
    rc = run_hook(&srv->cfg.hooks.authorize, &req, &rep);
    if (rc != BASIN_OK)
        goto answer;
    const char *clen =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    size_t announced = clen != NULL ? parse_content_length(clen) : 0;
    if (announced > srv->cfg.max_body_bytes) {
        rc = reply_problemf(&rep, 413, NULL, "the request body may be at most %zu bytes",
                            srv->cfg.max_body_bytes);
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto answer;
    }
    const char *ct =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    rc = router_check_content_type(ex->match.route, ct, announced > 0 || te != NULL, &ex->body_kind,
                                   &rep);
    if (rc != BASIN_OK)
        goto answer;
    return MHD_YES;
answer:
    if (rc == BASIN_ENOMEM)
        reply_clear(&rep); /* status 0 → static 500 */
    return send_reply(ex, conn, &rep);
}

/* Store (or, past the cap, count and drop) one piece of the body. */
static enum MHD_Result accept_body(struct exchange *ex, const char *data, size_t n)
{
    size_t cap = ex->srv->cfg.max_body_bytes;
    if (ex->too_large) {
        ex->dropped += n;
        if (ex->dropped <= HTTP_DRAIN_BYTES)
            return MHD_YES;
        ex->status = 413;
        ex->cause = "body far past the size cap; connection closed";
        return MHD_NO;
    }
    if (n > cap - ex->body_len) {
        ex->too_large = 1;
        ex->dropped = n;
        basin_free(ex->body);
        ex->body = NULL;
        ex->body_cap = 0;
        return MHD_YES;
    }
    if (ex->body_kind == BODY_KIND_NONE) {
        ex->body_len += n; /* counted against the cap, never stored */
        return MHD_YES;
    }
    size_t need = ex->body_len + n + 1; /* +1 keeps the body NUL-terminated */
    if (need > ex->body_cap) {
        size_t grown = ex->body_cap ? ex->body_cap : HTTP_BODY_INITIAL_BYTES;
        while (grown < need && grown <= cap)
            grown *= 2;
        if (grown < need || grown > cap + 1)
            grown = cap + 1 > need ? cap + 1 : need;
        char *p = basin_realloc(ex->body, grown);
        if (p == NULL) {
            /* answered 500 at the end of the body; keep counting like an oversized body */
            ex->cause = "out of memory storing the request body";
            ex->too_large = -1;
            return MHD_YES;
        }
        ex->body = p;
        ex->body_cap = grown;
    }
    memcpy(ex->body + ex->body_len, data, n);
    ex->body_len += n;
    ex->body[ex->body_len] = '\0';
    return MHD_YES;
}

/* The body is complete: run the pipeline and answer. */
static enum MHD_Result finish_request(struct exchange *ex, struct MHD_Connection *conn,
                                      const char *method)
{
    struct http_server *srv = ex->srv;
    struct reply rep;
    struct request req;
    reply_init(&rep, ex->path);
    if (ex->too_large > 0) {
        if (reply_problemf(&rep, 413, NULL, "the request body may be at most %zu bytes",
                           srv->cfg.max_body_bytes) != BASIN_OK)
            reply_clear(&rep);
        return send_reply(ex, conn, &rep);
    }
    if (ex->too_large < 0) {
        rep.log_cause = ex->cause;
        if (reply_problem(&rep, 500, NULL, NULL, NULL, 0) != BASIN_OK)
            reply_clear(&rep);
        return send_reply(ex, conn, &rep);
    }
    request_from_exchange(ex, conn, method, &req);
    req.body_kind = ex->body_kind;
    req.body = ex->body;
    req.body_len = ex->body_kind == BODY_KIND_NONE ? 0 : ex->body_len;
    router_dispatch(&req, &rep);
    return send_reply(ex, conn, &rep);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct exchange *ex = *con_cls;
    if (ex == NULL) {
        /* MHD always calls the URI callback first; this only guards against a change */
        ex = on_uri(cls, url, conn);
        *con_cls = ex;
    }
    if ((void *)ex == (void *)&exchange_oom_marker) {
        *upload_data_size = 0;
        return queue_fallback_500(conn);
    }
    if (!ex->started)
        return begin_request(ex, conn, method, version);
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return ex->answered ? MHD_YES : accept_body(ex, upload_data, n);
    }
    if (ex->answered)
        return MHD_YES;
    return finish_request(ex, conn, method);
}

/* ---- lifecycle ---- */

static int has_stream_routes(const struct route *routes, size_t n_routes)
{
    for (size_t i = 0; i < n_routes; i++) {
        if (routes[i].flags & ROUTE_STREAM)
            return 1;
    }
    return 0;
}

static uint64_t make_id_key(const struct http_server *srv)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t k = (uint64_t)now.tv_sec * UINT64_C(1000000000) + (uint64_t)now.tv_nsec;
    k = splitmix64(k ^ ((uint64_t)getpid() << 32));
    return splitmix64(k ^ (uint64_t)(uintptr_t)srv);
}

union bind_addr {
    struct sockaddr sa;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
};

static int parse_bind(const char *address, uint16_t port, union bind_addr *addr, int *ipv6)
{
    memset(addr, 0, sizeof(*addr));
    if (inet_pton(AF_INET, address, &addr->v4.sin_addr) == 1) {
        addr->v4.sin_family = AF_INET;
        addr->v4.sin_port = htons(port);
        *ipv6 = 0;
        return BASIN_OK;
    }
    if (inet_pton(AF_INET6, address, &addr->v6.sin6_addr) == 1) {
        addr->v6.sin6_family = AF_INET6;
        addr->v6.sin6_port = htons(port);
        *ipv6 = 1;
        return BASIN_OK;
    }
    return BASIN_EINVAL;
}

int http_server_start(const struct http_config *cfg, const struct route *routes, size_t n_routes,
                      void *app, struct http_server **out)
{
    int rc = BASIN_OK;
    struct http_server *srv = NULL;
    union bind_addr addr;
    int ipv6 = 0;
    *out = NULL;
    if (cfg == NULL || cfg->max_body_bytes == 0 || cfg->max_body_bytes > SIZE_MAX / 4 ||
        cfg->max_connections == 0 || router_validate(routes, n_routes) != BASIN_OK ||
        (cfg->thread_pool_size > 0 && has_stream_routes(routes, n_routes))) {
        rc = BASIN_EINVAL;
        goto done;
    }
    rc = parse_bind(cfg->bind_address ? cfg->bind_address : "127.0.0.1", cfg->port, &addr, &ipv6);
    if (rc != BASIN_OK)
        goto done;
    srv = basin_calloc(1, sizeof(*srv));
    if (srv == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    srv->routes = routes;
    srv->n_routes = n_routes;
    srv->app = app;
    srv->cfg = *cfg;
    srv->cfg.bind_address = NULL; /* not kept: the caller's string may go away */
    atomic_init(&srv->stopping, false);
    atomic_init(&srv->next_request, 0);
    srv->id_key = make_id_key(srv);

    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_USE_AUTO;
    if (cfg->thread_pool_size == 0)
        flags |= MHD_USE_THREAD_PER_CONNECTION;
    if (ipv6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem pool[2] = {{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}};
    if (cfg->thread_pool_size > 0)
        pool[0] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE,
                                          (intptr_t)cfg->thread_pool_size, NULL};
    /* the logger goes first so that MHD's messages about later options reach it */
    srv->daemon = MHD_start_daemon(
        flags, cfg->port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, &addr.sa, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)cfg->connection_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_ARRAY, pool, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        rc = BASIN_EINVAL; /* MHD logged why (address in use, no permission, ...) */
        goto done;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info != NULL ? info->port : cfg->port;
    *out = srv;
    srv = NULL;
done:
    basin_free(srv);
    return rc;
}

uint16_t http_server_port(const struct http_server *srv)
{
    return srv->port;
}

void http_server_quiesce(struct http_server *srv)
{
    if (srv == NULL || atomic_exchange(&srv->stopping, true))
        return;
    MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

unsigned http_server_connections(const struct http_server *srv)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info != NULL ? info->num_connections : 0;
}

void http_server_stop(struct http_server *srv)
{
    if (srv == NULL)
        return;
    atomic_store(&srv->stopping, true);
    MHD_stop_daemon(srv->daemon);
    basin_free(srv);
}
