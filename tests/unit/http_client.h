/* The HTTP client the unit tests share: one libcurl request to a basinlab server on
 * 127.0.0.1 (in-process or a child process), with the whole answer kept in memory — status,
 * body, the final response's header fields and, on request, the body parsed as JSON.
 *
 * What stays in the test files: how a test reaches its server (port, reused handle), its
 * default headers and timeout (thin wrappers that fill a struct http_req), raw-socket
 * requests and streaming reads. No cmocka here: a failed transfer is reported through the
 * returned CURLcode (also in resp->cc), and the caller decides whether it is a test failure. */
#ifndef BASINLAB_TESTS_HTTP_CLIENT_H
#define BASINLAB_TESTS_HTTP_CLIENT_H

#include <stddef.h>

#include <curl/curl.h>
#include <jansson.h>

enum { HTTP_MAX_HEADERS = 8, HTTP_HEAD_BYTES = 8192 };

struct http_req {
    const char *method;       /* NULL: GET; HEAD asks for no body; others are sent verbatim */
    const char *path;         /* sent as is, dot segments included */
    const char *content_type; /* NULL: none, but a body still gets an empty Content-Type so
                                 that curl adds no form type (unless headers name one) */
    const char *body;         /* NULL: no request body (with one, curl POSTs unless method says) */
    size_t body_len;
    size_t chunk_bytes; /* > 0: the body through a read callback, this many bytes per call */
    int chunked;        /* with chunk_bytes: Transfer-Encoding: chunked (size not announced) */
    const char *headers[HTTP_MAX_HEADERS]; /* extra "Name: value" lines, up to the first NULL */
    long timeout_ms;                       /* 0: 10000 */
    int parse_json;                        /* parse the body into resp->json */
};

struct http_resp {
    CURLcode cc;
    long status; /* 0 when no answer came */
    char *body;  /* the body, NUL-terminated; "" when empty (never NULL after a request) */
    size_t len;
    json_t *json; /* with parse_json: the body as JSON, NULL when it is not JSON */
    size_t sent;  /* body bytes handed to libcurl through the read callback */
    /* the final response's header lines, each "Name: value" without CRLF and NUL-terminated
     * (a 100 Continue's lines are dropped); lines that do not fit are dropped too */
    char head[HTTP_HEAD_BYTES];
    size_t head_len;
};

/* A request for method path with an optional JSON body (NULL: none); callers add headers,
 * timeout and parse_json to it. */
struct http_req http_req_json(const char *method, const char *path, const char *body);

/* One request to http://127.0.0.1:port; c: a handle to reuse (reset first) or NULL for a
 * fresh one. Fills *r (free with http_resp_free) also when the transfer fails. */
CURLcode http_request(CURL *c, int port, const struct http_req *q, struct http_resp *r);

void http_resp_free(struct http_resp *r);

/* The value of the first header field `name` (case-insensitive) of the answer, leading and
 * trailing blanks removed; NULL when there is none. Valid until http_resp_free. */
const char *http_header(const struct http_resp *r, const char *name);

/* The same copied into out (cap bytes, truncated); 1 when present, 0 (out untouched) when not. */
int http_header_copy(const struct http_resp *r, const char *name, char *out, size_t cap);

/* The same, with `dflt` when there is none. */
const char *http_header_or(const struct http_resp *r, const char *name, const char *dflt);

/* How many header fields `name` the answer has. */
size_t http_header_count(const struct http_resp *r, const char *name);

#endif
