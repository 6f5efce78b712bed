/* What a route handler answers: a status, a content type, a body and extra headers, built
 * with one JSON helper (reply_json) and one error-body helper (reply_problem, RFC 9457
 * application/problem+json). Also the small HTTP vocabulary handlers need: ETag, Link,
 * Retry-After, Cache-Control, and query-string validators in the Redis "...OrReply" style
 * (`if (query_size_or_reply(req, rep, ...)) return 0;`).
 *
 * A reply never touches libmicrohttpd: http.c turns it into an MHD response. Ownership: every
 * pointer inside a reply that is not marked "borrowed" is owned by the reply and released by
 * reply_clear(). All helpers return 0 or a negative BASIN_E* code and, on failure, leave the
 * reply's status untouched (a handler that returns with no status set gets a 500). */
#ifndef BASINLAB_REPLY_H
#define BASINLAB_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct request;
struct sse_stream;

enum { REPLY_MAX_HEADERS = 16 };

struct reply_header {
    char *name;  /* owned */
    char *value; /* owned */
};

struct reply {
    int status;         /* 0 = not answered yet */
    char *content_type; /* owned; NULL = no body */
    char *body;         /* owned (basin_malloc); may be NULL when body_len == 0 */
    size_t body_len;    /* bytes in body */
    struct reply_header headers[REPLY_MAX_HEADERS];
    size_t n_headers;          /* used entries of headers[] */
    const char *instance;      /* borrowed: the request path, the "instance" of problems */
    const char *log_cause;     /* borrowed static text: why a 5xx happened (logged, not sent) */
    struct sse_stream *stream; /* owned; set by sse_reply() for event streams */
};

/* One entry of a problem's "errors" array: a JSON Pointer into the request body
 * ("" = the whole body, "/layers/2/units") and a message for that spot. */
struct problem_error {
    const char *pointer;
    const char *message;
};

/* Start an empty reply whose problems name `instance` (borrowed; may be NULL). */
void reply_init(struct reply *rep, const char *instance);
/* Release everything the reply owns and leave it empty (instance kept). Accepts NULL. */
void reply_clear(struct reply *rep);

/* Answer `status` with the compact serialisation of `json` as application/json. Steals the
 * reference to `json` in every case, so `return reply_json(rep, 200, json_pack(...));` is safe
 * (NULL json → BASIN_ENOMEM, the usual meaning of a failed json_pack). Replaces any earlier
 * body. */
int reply_json(struct reply *rep, int status, json_t *json);

/* Answer `status` with a copy of `len` bytes of `data` as `content_type`. */
int reply_bytes(struct reply *rep, int status, const char *content_type, const void *data,
                size_t len);

/* Like reply_bytes but takes ownership of `buf` (allocated with basin_malloc), also on
 * failure. */
int reply_take_body(struct reply *rep, int status, const char *content_type, char *buf, size_t len);

/* Answer an RFC 9457 application/problem+json body:
 *   {type: "about:blank", title, status, detail, instance, errors: [{pointer, message}]}.
 * title NULL → the status's reason phrase; detail NULL → omitted; errors omitted when
 * n_errors == 0. Replaces any earlier body and content type. Every text (title, detail,
 * instance, pointers, messages) may echo request bytes: ill-formed UTF-8 in it is sent with
 * U+FFFD in its place (utf8.h), so a client error never becomes a 500. */
int reply_problem(struct reply *rep, int status, const char *title, const char *detail,
                  const struct problem_error *errors, size_t n_errors);
/* reply_problem with a detail built from a printf format. */
int reply_problemf(struct reply *rep, int status, const char *title, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Add a response header (both strings copied). BASIN_EINVAL when the name is not an RFC 9110
 * token or the value contains CR or LF (header injection), BASIN_ERANGE when
 * REPLY_MAX_HEADERS are in use. A later header of the same
 * name (case-insensitive) replaces the earlier one. */
int reply_header(struct reply *rep, const char *name, const char *value);
/* The value of a header already added (case-insensitive name), or NULL. */
const char *reply_find_header(const struct reply *rep, const char *name);

/* `Link: <url>; rel="next"` for paged lists. */
int reply_link_next(struct reply *rep, const char *url);
/* `Retry-After: seconds` for 429/503. */
int reply_retry_after(struct reply *rep, unsigned seconds);
/* `Cache-Control: value`. */
int reply_cache_control(struct reply *rep, const char *value);
/* An explicit strong ETag (the opaque part, quotes added here). Without one, every 200 answer
 * to GET/HEAD gets an ETag computed from its body. */
int reply_etag(struct reply *rep, const char *opaque);

/* FNV-1a 64-bit hash of `len` bytes: the ETag of a body is its hash as 16 lower-case hex
 * digits in quotes. */
uint64_t reply_fnv1a64(const void *data, size_t len);

/* The reason phrase of an HTTP status ("Not Found"); "Unknown" for codes not listed. */
const char *http_status_phrase(int status);

/* Percent-encode `s` for use inside a query component (RFC 3986 unreserved characters kept).
 * *out is allocated with basin_malloc. */
int url_encode(const char *s, char **out);

/* Query validators. Each returns 0 with *out set (default when the parameter is absent), or
 * answers 400 problem+json itself and returns BASIN_EINVAL (BASIN_ENOMEM if even that
 * failed; the handler then returns 0 and the pipeline answers 500). */
int query_size_or_reply(const struct request *req, struct reply *rep, const char *name, size_t def,
                        size_t min, size_t max, size_t *out);
int query_double_or_reply(const struct request *req, struct reply *rep, const char *name,
                          double def, double min, double max, double *out);
/* *out = index into choices[0..n_choices) of the given value; def_index when absent. */
int query_choice_or_reply(const struct request *req, struct reply *rep, const char *name,
                          const char *const *choices, size_t n_choices, size_t def_index,
                          size_t *out);

#endif
