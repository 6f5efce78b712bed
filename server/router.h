/* The declarative route table and the request pipeline every request runs through:
 *
 *   [admit hook: rate limit (429)] → [preflight hook: CORS preflight (204)] → match path
 *   (404) → method (405 + Allow; HEAD served by GET routes) → [authorize hook: token (401 /
 *   403)] → content type (415) → body size (413, enforced by http.c while the body streams in)
 *   → JSON nesting guard and strict parse (400 with line/column) → handler → ETag /
 *   If-None-Match (304) → [decorate hook on every answer: CORS headers].
 * The bracketed steps are optional hooks (struct pipeline_hooks below) that `basinlab serve`
 * installs from its flags; everything before the body runs on the headers alone, so a refused
 * request never makes the server read or store its body.
 *
 * Handlers see only `struct request` and fill a `struct reply` (reply.h); they never touch
 * libmicrohttpd. This file is free of MHD so the pipeline can be read (and tested) alone:
 * http.c supplies the header/query lookups through a function pointer.
 *
 * Table order matters: the first route whose pattern and method match wins, so list literal
 * routes ("/v1/experiments/search") before parameterised ones ("/v1/experiments/{id}"). */
#ifndef BASINLAB_ROUTER_H
#define BASINLAB_ROUTER_H

#include <stddef.h>

#include <jansson.h>

#include "reply.h"

enum {
    ROUTE_MAX_PARAMS = 4,     /* {name} segments per pattern */
    ROUTE_MAX_SEGMENTS = 16,  /* '/'-separated segments per path */
    ROUTE_MAX_JSON_DEPTH = 64 /* deeper request bodies are refused before jansson sees them */
};

/* route.flags: what body the route takes (one of the first three) and how it answers. */
enum route_flags {
    ROUTE_BODY_NONE = 0,        /* any body is read (size-capped) and ignored */
    ROUTE_BODY_JSON = 1,        /* application/json required; parsed into request.json */
    ROUTE_BODY_CSV_OR_JSON = 2, /* application/json (parsed) or text/csv (raw bytes) */
    ROUTE_BODY_MASK = 3,
    ROUTE_STREAM = 4 /* answers with an event stream (sse.h): needs thread-per-connection */
};

enum body_kind { BODY_KIND_NONE = 0, BODY_KIND_JSON, BODY_KIND_CSV };

/* Where a lookup searches (http.c maps these to MHD value kinds). */
enum request_lookup_kind { REQUEST_LOOKUP_HEADER, REQUEST_LOOKUP_QUERY };

struct path_param {
    const char *name;  /* borrowed from the route pattern storage of the match */
    const char *value; /* percent-decoded; never empty, never contains '/' or NUL, never ".." */
};

struct request {
    const char *method;     /* as sent ("HEAD" when a GET route serves a HEAD) */
    const char *path;       /* the request target's path, as sent (not decoded), no query */
    const char *request_id; /* X-Request-Id: echoed when sane, generated otherwise */
    const char *client;     /* client address as text ("127.0.0.1"), "" if unknown */
    void *app;              /* the app pointer given to http_server_start */
    const struct route *route;
    size_t n_params;
    struct path_param params[ROUTE_MAX_PARAMS];
    enum body_kind body_kind; /* what the body is; BODY_KIND_NONE for no/ignored body */
    json_t *json;             /* borrowed: parsed body for BODY_KIND_JSON, else NULL */
    const char *body;         /* borrowed raw body; body[body_len] == '\0' (it may hold NULs); NULL
                                 when there is no body */
    size_t body_len;
    /* Header / query lookup supplied by the transport; use the accessors below. */
    const char *(*lookup)(void *lookup_ctx, enum request_lookup_kind kind, const char *name);
    void *lookup_ctx;
};

/* A handler answers through `rep` and returns 0. A negative BASIN_E* return (or returning
 * with rep->status still 0) makes the pipeline answer 500 problem+json and log the cause. */
typedef int (*route_handler)(struct request *req, struct reply *rep);

struct route {
    const char *method;  /* "GET", "POST", "DELETE", ... */
    const char *pattern; /* "/v1/experiments/{id}/runs": literal segments and {name} */
    route_handler fn;
    unsigned flags; /* enum route_flags */
};

/* Value of the path parameter `name` (decoded), or NULL. */
const char *request_param(const struct request *req, const char *name);
/* Decoded value of query parameter `name` (first occurrence), or NULL. */
const char *request_query(const struct request *req, const char *name);
/* Value of request header `name` (case-insensitive), or NULL. */
const char *request_header(const struct request *req, const char *name);

/* The result of matching one path against the table: the route and its decoded params. */
struct route_match {
    const struct route *route;
    size_t n_params;
    struct path_param params[ROUTE_MAX_PARAMS];
    char *storage; /* owned: decoded segments and parameter names */
};

/* Check a table once at start-up: every pattern starts with '/', has at most
 * ROUTE_MAX_SEGMENTS segments and ROUTE_MAX_PARAMS well-formed {name}s, every route has a
 * method and handler. BASIN_EINVAL otherwise. */
int router_validate(const struct route *routes, size_t n_routes);

/* Find the route for (method, raw_path). Returns 0 with *m filled, or answers the client
 * itself (404 unknown path, 405 + Allow, 400 malformed percent-encoding or a forbidden path
 * parameter) and returns BASIN_EINVAL; BASIN_ENOMEM when out of memory (nothing answered).
 * Release *m with route_match_clear() in every case. */
int router_match(const struct route *routes, size_t n_routes, const char *method,
                 const char *raw_path, struct route_match *m, struct reply *rep);
void route_match_clear(struct route_match *m);

/* Decide what the body of a request to `route` is, from its Content-Type (NULL if absent)
 * and whether the request carries a body. Returns 0 with *kind set, or answers 415 (wrong
 * media type or charset) / 400 (a body is required) and returns BASIN_EINVAL. */
int router_check_content_type(const struct route *route, const char *content_type, int has_body,
                              enum body_kind *kind, struct reply *rep);

/* 1 when the JSON text nests arrays/objects deeper than max_depth (strings are skipped with
 * their escapes), else 0. Linear, no recursion, no allocation. */
int json_nesting_exceeds(const char *text, size_t len, int max_depth);

/* Parse the body (when req->body_kind is JSON), run the handler, turn failures into 500, and
 * apply ETag / If-None-Match to 200 answers of GET/HEAD. Always leaves rep answered unless
 * memory ran out so badly that not even a problem body could be built (then rep->status is
 * 500 with no body and http.c sends its static fallback). req->json is freed and reset. */
void router_dispatch(struct request *req, struct reply *rep);

/* ---- pipeline hooks (run by http.c; each one optional: fn NULL = skipped) ----
 * A request hook sees the request before its body is read (req->body is NULL, req->json NULL;
 * before routing req->route is NULL and there are no params). It returns 0 to let the request
 * go on, or answers through rep and returns BASIN_EINVAL; any other error (or returning an
 * error with rep->status still 0) answers 500. A reply hook adds headers to an answer: it runs
 * on every answer (handlers, pipeline errors, other hooks' answers) just before it is sent, and
 * cannot fail the request. Hooks run on connection threads, many at once. */
typedef int (*request_hook_fn)(void *ctx, const struct request *req, struct reply *rep);
typedef void (*reply_hook_fn)(void *ctx, const struct request *req, struct reply *rep);

struct request_hook {
    request_hook_fn fn;
    void *ctx;
};
struct reply_hook {
    reply_hook_fn fn;
    void *ctx;
};

struct pipeline_hooks {
    struct request_hook admit;     /* first, before routing (rate limit: 429) */
    struct request_hook preflight; /* before routing (CORS preflight: 204) */
    struct request_hook authorize; /* after routing, before the body (token: 401 / 403) */
    struct reply_hook decorate;    /* every answer (CORS headers) */
};

#endif
