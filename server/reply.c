/* Reply helpers: the one JSON reply helper, the one RFC 9457 problem+json helper, response
 * headers (ETag, Link, Retry-After, Cache-Control), the body hash behind automatic ETags, and
 * query-string validators that answer 400 themselves. See reply.h for the contracts. */
#include "json_out.h"
#include "reply.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "router.h"
#include "sse.h"
#include "utf8.h"

void reply_init(struct reply *rep, const char *instance)
{
    memset(rep, 0, sizeof(*rep));
    rep->instance = instance;
}

static void reply_drop_body(struct reply *rep)
{
    basin_free(rep->body);
    basin_free(rep->content_type);
    rep->body = NULL;
    rep->content_type = NULL;
    rep->body_len = 0;
    sse_stream_release(rep->stream);
    rep->stream = NULL;
}

void reply_clear(struct reply *rep)
{
    if (rep == NULL)
        return;
    reply_drop_body(rep);
    for (size_t i = 0; i < rep->n_headers; i++) {
        basin_free(rep->headers[i].name);
        basin_free(rep->headers[i].value);
    }
    const char *instance = rep->instance;
    reply_init(rep, instance);
}

int reply_take_body(struct reply *rep, int status, const char *content_type, char *buf, size_t len)
{
    int rc = BASIN_OK;
    char *ct = basin_strdup(content_type);
    if (ct == NULL) {
        basin_free(buf);
        rc = BASIN_ENOMEM;
        goto done;
    }
    reply_drop_body(rep);
    rep->content_type = ct;
    rep->body = buf;
    rep->body_len = len;
    rep->status = status;
done:
    return rc;
}

int reply_bytes(struct reply *rep, int status, const char *content_type, const void *data,
                size_t len)
{
    int rc = BASIN_OK;
    /* one spare byte so that a zero-length body is still a valid allocation */
    char *copy = basin_malloc(len + 1);
    if (copy == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (len > 0)
        memcpy(copy, data, len);
    copy[len] = '\0';
    rc = reply_take_body(rep, status, content_type, copy, len);
done:
    return rc;
}

/* A growable byte buffer for json_dump_callback, so the serialisation is one pass straight
 * into basin_malloc'd memory (which the reply owns and http.c hands to MHD). */
struct dump_buf {
    char *data;
    size_t len;
    size_t cap;
    int failed;
};

static int dump_append(const char *buffer, size_t size, void *data)
{
    struct dump_buf *b = data;
    if (b->failed)
        return -1;
    if (size > b->cap - b->len) {
        size_t need = 0;
        size_t cap = b->cap ? b->cap : 256;
        if (basin_add_size(b->len, size, &need) != BASIN_OK)
            goto fail;
        while (cap < need) {
            if (basin_mul_size(cap, 2, &cap) != BASIN_OK)
                goto fail;
        }
        char *grown = basin_realloc(b->data, cap);
        if (grown == NULL)
            goto fail;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, buffer, size);
    b->len += size;
    return 0;
fail:
    b->failed = 1;
    return -1;
}

static int reply_json_typed(struct reply *rep, int status, const char *content_type, json_t *json)
{
    int rc = BASIN_OK;
    struct dump_buf b = {0};
    if (json == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (json_write_compact(json, dump_append, &b) != 0 || b.failed) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = reply_take_body(rep, status, content_type, b.data, b.len);
    b.data = NULL;
done:
    basin_free(b.data);
    json_decref(json);
    return rc;
}

int reply_json(struct reply *rep, int status, json_t *json)
{
    return reply_json_typed(rep, status, "application/json", json);
}

const char *http_status_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* json_object_set_new that also reports a NULL value (a failed json_string/json_integer). */
static int set_new(json_t *obj, const char *key, json_t *value)
{
    if (value == NULL)
        return BASIN_ENOMEM;
    return json_object_set_new(obj, key, value) == 0 ? BASIN_OK : BASIN_ENOMEM;
}

/* A JSON string of request-derived text, made well-formed first when it is not (utf8.h): the
 * text a problem echoes may hold any bytes, and only an allocation failure is our error. NULL
 * only when out of memory. */
static json_t *text_string(const char *s)
{
    size_t len = strlen(s);
    if (utf8_valid(s, len))
        return json_string(s);
    char *clean = NULL;
    if (utf8_sanitize(s, len, &clean) != BASIN_OK)
        return NULL;
    json_t *j = json_string(clean);
    basin_free(clean);
    return j;
}

static int problem_errors(const struct problem_error *errors, size_t n_errors, json_t **out)
{
    int rc = BASIN_OK;
    json_t *arr = json_array();
    if (arr == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n_errors; i++) {
        json_t *e = json_object();
        if (e == NULL || json_array_append_new(arr, e) != 0) {
            rc = BASIN_ENOMEM;
            goto done;
        }
        rc = set_new(e, "pointer", text_string(errors[i].pointer ? errors[i].pointer : ""));
        if (rc == BASIN_OK)
            rc = set_new(e, "message", text_string(errors[i].message ? errors[i].message : ""));
        if (rc != BASIN_OK)
            goto done;
    }
    *out = arr;
    arr = NULL;
done:
    json_decref(arr);
    return rc;
}

int reply_problem(struct reply *rep, int status, const char *title, const char *detail,
                  const struct problem_error *errors, size_t n_errors)
{
    int rc = BASIN_OK;
    json_t *errs = NULL;
    json_t *body = json_object();
    if (body == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = set_new(body, "type", json_string("about:blank"));
    if (rc == BASIN_OK)
        rc = set_new(body, "title", text_string(title ? title : http_status_phrase(status)));
    if (rc == BASIN_OK)
        rc = set_new(body, "status", json_integer(status));
    if (rc == BASIN_OK && detail != NULL)
        rc = set_new(body, "detail", text_string(detail));
    if (rc == BASIN_OK && rep->instance != NULL)
        rc = set_new(body, "instance", text_string(rep->instance));
    if (rc == BASIN_OK && n_errors > 0) {
        rc = problem_errors(errors, n_errors, &errs);
        if (rc == BASIN_OK)
            rc = set_new(body, "errors", errs);
        errs = NULL;
    }
    if (rc != BASIN_OK)
        goto done;
    rc = reply_json_typed(rep, status, "application/problem+json", body);
    body = NULL;
done:
    json_decref(body);
    return rc;
}

int reply_problemf(struct reply *rep, int status, const char *title, const char *fmt, ...)
{
    int rc = BASIN_OK;
    char *detail = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        rc = BASIN_EINVAL;
        goto done;
    }
    detail = basin_malloc((size_t)n + 1);
    if (detail == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    va_start(ap, fmt);
    vsnprintf(detail, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rc = reply_problem(rep, status, title, detail, NULL, 0);
done:
    basin_free(detail);
    return rc;
}

/* RFC 9110 token characters, the only ones allowed in a header name. */
static int is_token_char(unsigned char c)
{
    return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int header_name_ok(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (!is_token_char(*p))
            return 0;
    }
    return 1;
}

static int header_value_ok(const char *value)
{
    /* CR or LF would let a value inject further headers or a body */
    return value != NULL && strpbrk(value, "\r\n") == NULL;
}

int reply_header(struct reply *rep, const char *name, const char *value)
{
    int rc = BASIN_OK;
    char *n = NULL;
    char *v = NULL;
    if (!header_name_ok(name) || !header_value_ok(value)) {
        rc = BASIN_EINVAL;
        goto done;
    }
    size_t slot = rep->n_headers;
    for (size_t i = 0; i < rep->n_headers; i++) {
        if (strcasecmp(rep->headers[i].name, name) == 0)
            slot = i;
    }
    if (slot == REPLY_MAX_HEADERS) {
        rc = BASIN_ERANGE;
        goto done;
    }
    n = basin_strdup(name);
    v = basin_strdup(value);
    if (n == NULL || v == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (slot < rep->n_headers) {
        basin_free(rep->headers[slot].name);
        basin_free(rep->headers[slot].value);
    } else {
        rep->n_headers++;
    }
    rep->headers[slot].name = n;
    rep->headers[slot].value = v;
    n = NULL;
    v = NULL;
done:
    basin_free(n);
    basin_free(v);
    return rc;
}

const char *reply_find_header(const struct reply *rep, const char *name)
{
    for (size_t i = 0; i < rep->n_headers; i++) {
        if (strcasecmp(rep->headers[i].name, name) == 0)
            return rep->headers[i].value;
    }
    return NULL;
}

int reply_link_next(struct reply *rep, const char *url)
{
    int rc = BASIN_OK;
    char *value = NULL;
    if (url == NULL || strpbrk(url, "<>\r\n") != NULL) {
        rc = BASIN_EINVAL;
        goto done;
    }
    static const char prefix[] = "<";
    static const char suffix[] = ">; rel=\"next\"";
    size_t len = strlen(url);
    value = basin_malloc(len + sizeof(prefix) + sizeof(suffix));
    if (value == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    snprintf(value, len + sizeof(prefix) + sizeof(suffix), "%s%s%s", prefix, url, suffix);
    rc = reply_header(rep, "Link", value);
done:
    basin_free(value);
    return rc;
}

int reply_retry_after(struct reply *rep, unsigned seconds)
{
    char value[24];
    snprintf(value, sizeof(value), "%u", seconds);
    return reply_header(rep, "Retry-After", value);
}

int reply_cache_control(struct reply *rep, const char *value)
{
    return reply_header(rep, "Cache-Control", value);
}

int reply_etag(struct reply *rep, const char *opaque)
{
    int rc = BASIN_OK;
    char *value = NULL;
    if (opaque == NULL) {
        rc = BASIN_EINVAL;
        goto done;
    }
    /* RFC 9110 etagc: visible ASCII except '"' (and obs-text, which we do not emit) */
    for (const unsigned char *p = (const unsigned char *)opaque; *p; p++) {
        if (*p <= 0x20 || *p == '"' || *p >= 0x7f) {
            rc = BASIN_EINVAL;
            goto done;
        }
    }
    size_t len = strlen(opaque);
    value = basin_malloc(len + 3);
    if (value == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    snprintf(value, len + 3, "\"%s\"", opaque);
    rc = reply_header(rep, "ETag", value);
done:
    basin_free(value);
    return rc;
}

uint64_t reply_fnv1a64(const void *data, size_t len)
{
    /* FNV-1a, 64-bit offset basis and prime (Fowler, Noll, Vo; draft-eastlake-fnv) */
    const unsigned char *p = data;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

int url_encode(const char *s, char **out)
{
    int rc = BASIN_OK;
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(s);
    size_t cap = 0;
    char *buf = NULL;
    if (basin_mul_size(len, 3, &cap) != BASIN_OK || basin_add_size(cap, 1, &cap) != BASIN_OK) {
        rc = BASIN_ERANGE;
        goto done;
    }
    buf = basin_malloc(cap);
    if (buf == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    char *w = buf;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *w++ = (char)*p;
        } else {
            *w++ = '%';
            *w++ = hex[*p >> 4];
            *w++ = hex[*p & 15];
        }
    }
    *w = '\0';
    *out = buf;
    buf = NULL;
done:
    basin_free(buf);
    return rc;
}

/* Answer 400 for a bad query parameter; returns BASIN_EINVAL (or BASIN_ENOMEM). */
static int query_reject(struct reply *rep, const char *name, const char *value, const char *want)
{
    int rc = reply_problemf(rep, 400, "Invalid query parameter",
                            "query parameter '%s' is '%s'; expected %s", name, value, want);
    return rc == BASIN_OK ? BASIN_EINVAL : rc;
}

int query_size_or_reply(const struct request *req, struct reply *rep, const char *name, size_t def,
                        size_t min, size_t max, size_t *out)
{
    int rc = BASIN_OK;
    char want[96];
    const char *v = request_query(req, name);
    if (v == NULL) {
        *out = def;
        goto done;
    }
    snprintf(want, sizeof(want), "an integer in [%zu, %zu]", min, max);
    /* digits only: strtoull alone would accept " 12", "+12" and "-1" (wrapped) */
    int ok = v[0] != '\0' && strspn(v, "0123456789") == strlen(v);
    unsigned long long x = 0;
    if (ok) {
        errno = 0;
        x = strtoull(v, NULL, 10);
        ok = errno == 0 && x >= min && x <= max;
    }
    if (!ok) {
        rc = query_reject(rep, name, v, want);
        goto done;
    }
    *out = (size_t)x;
done:
    return rc;
}

int query_double_or_reply(const struct request *req, struct reply *rep, const char *name,
                          double def, double min, double max, double *out)
{
    int rc = BASIN_OK;
    char want[96];
    const char *v = request_query(req, name);
    if (v == NULL) {
        *out = def;
        goto done;
    }
    snprintf(want, sizeof(want), "a number in [%g, %g]", min, max);
    char *end = NULL;
    errno = 0;
    double x = v[0] != '\0' && !isspace((unsigned char)v[0]) ? strtod(v, &end) : NAN;
    if (end == NULL || *end != '\0' || errno != 0 || !isfinite(x) || x < min || x > max) {
        rc = query_reject(rep, name, v, want);
        goto done;
    }
    *out = x;
done:
    return rc;
}

int query_choice_or_reply(const struct request *req, struct reply *rep, const char *name,
                          const char *const *choices, size_t n_choices, size_t def_index,
                          size_t *out)
{
    int rc = BASIN_OK;
    char want[256];
    const char *v = request_query(req, name);
    if (v == NULL) {
        *out = def_index;
        goto done;
    }
    for (size_t i = 0; i < n_choices; i++) {
        if (strcmp(v, choices[i]) == 0) {
            *out = i;
            goto done;
        }
    }
    size_t used = (size_t)snprintf(want, sizeof(want), "one of");
    for (size_t i = 0; i < n_choices && used < sizeof(want); i++)
        used +=
            (size_t)snprintf(want + used, sizeof(want) - used, "%s '%s'", i ? "," : "", choices[i]);
    rc = query_reject(rep, name, v, want);
done:
    return rc;
}
