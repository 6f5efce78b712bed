/* The route table and the request pipeline (router.h): path matching with decoded path
 * parameters, 404/405 from the table, content-type negotiation for bodies, the JSON nesting
 * guard and strict parse, handler dispatch, and conditional GET (ETag / If-None-Match).
 *
 * DESIGN
 * - Matching works on the raw request path (http.c gets it before MHD unescapes anything), so
 *   an encoded slash ("a%2Fb") stays inside one segment and can be refused instead of being
 *   silently re-split. Each segment is percent-decoded once; literal pattern segments compare
 *   against the decoded text (with its length, so an embedded %00 cannot shorten it), and a
 *   {param} takes any non-empty segment. A matched parameter that decodes to something
 *   containing '/' or NUL, or to "." / "..", is answered with 400: ids are opaque but must be
 *   safe to log, to use as keys, and to echo in a Location header.
 * - The first route (table order) whose pattern and method match wins. 405 lists, in `Allow`,
 *   every method the table has for that path, plus HEAD wherever GET is served: MHD strips
 *   the body of a HEAD answer, so a GET handler serves HEAD unchanged.
 * - jansson's parser is recursive. Before it sees a body, json_nesting_exceeds() scans the
 *   text once (tracking strings and escapes) and refuses more than ROUTE_MAX_JSON_DEPTH nested
 *   containers, so a hostile "[[[[..." cannot exhaust a connection thread's stack. The parse
 *   itself rejects duplicate keys (JSON_REJECT_DUPLICATES), NUL in strings and trailing data.
 * - ETags are strong validators derived from the exact body bytes (FNV-1a 64; a cache key, not
 *   a security boundary). If-None-Match uses the weak comparison RFC 9110 §13.1.2 prescribes,
 *   and a 304 keeps every header of the 200 (ETag, Cache-Control, Link) but no body. */
#include "router.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "basin/alloc.h"
#include "basin/status.h"

const char *request_param(const struct request *req, const char *name)
{
    for (size_t i = 0; i < req->n_params; i++) {
        if (strcmp(req->params[i].name, name) == 0)
            return req->params[i].value;
    }
    return NULL;
}

const char *request_query(const struct request *req, const char *name)
{
    if (req->lookup == NULL)
        return NULL;
    return req->lookup(req->lookup_ctx, REQUEST_LOOKUP_QUERY, name);
}

const char *request_header(const struct request *req, const char *name)
{
    if (req->lookup == NULL)
        return NULL;
    return req->lookup(req->lookup_ctx, REQUEST_LOOKUP_HEADER, name);
}

/* ---- patterns ---- */

/* Length of the segment starting at s (up to '/' or the end). */
static size_t seg_len(const char *s)
{
    return strcspn(s, "/");
}

static int is_param_seg(const char *s, size_t len)
{
    return len >= 3 && s[0] == '{' && s[len - 1] == '}';
}

static int pattern_ok(const char *pattern)
{
    size_t n_segs = 0;
    size_t n_params = 0;
    if (pattern == NULL || pattern[0] != '/')
        return 0;
    const char *p = pattern + 1;
    for (;;) {
        size_t len = seg_len(p);
        if (len == 0 && !(n_segs == 0 && *p == '\0'))
            return 0; /* empty segment: "//" or a trailing '/' (only "/" itself is allowed) */
        if (len > 0) {
            n_segs++;
            if (memchr(p, '{', len) || memchr(p, '}', len)) {
                if (!is_param_seg(p, len) || memchr(p + 1, '{', len - 2) ||
                    memchr(p + 1, '}', len - 2))
                    return 0;
                n_params++;
            }
        }
        p += len;
        if (*p == '\0')
            break;
        p++;
    }
    return n_segs <= ROUTE_MAX_SEGMENTS && n_params <= ROUTE_MAX_PARAMS;
}

int router_validate(const struct route *routes, size_t n_routes)
{
    int rc = BASIN_OK;
    if (routes == NULL && n_routes > 0) {
        rc = BASIN_EINVAL;
        goto done;
    }
    for (size_t i = 0; i < n_routes; i++) {
        const struct route *r = &routes[i];
        if (r->method == NULL || r->method[0] == '\0' || r->fn == NULL || !pattern_ok(r->pattern) ||
            (r->flags & ROUTE_BODY_MASK) == ROUTE_BODY_MASK ||
            (r->flags & ~(unsigned)(ROUTE_BODY_MASK | ROUTE_STREAM)) != 0) {
            rc = BASIN_EINVAL;
            goto done;
        }
    }
done:
    return rc;
}

/* ---- path decoding ---- */

struct path_segs {
    size_t n;
    const char *seg[ROUTE_MAX_SEGMENTS]; /* decoded, NUL-terminated (may hold earlier NULs) */
    size_t len[ROUTE_MAX_SEGMENTS];      /* decoded length */
};

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode `len` bytes of src into dst (room for len+1). Returns the decoded length, or -1 for
 * a '%' not followed by two hex digits. */
static long percent_decode(const char *src, size_t len, char *dst)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] != '%') {
            dst[w++] = src[i];
            continue;
        }
        if (i + 2 >= len)
            return -1;
        int hi = hex_val(src[i + 1]);
        int lo = hex_val(src[i + 2]);
        if (hi < 0 || lo < 0)
            return -1;
        dst[w++] = (char)(hi * 16 + lo);
        i += 2;
    }
    dst[w] = '\0';
    return (long)w;
}

/* Split and decode raw_path ("/a/b%20c") into segments stored in buf. Returns 0, 1 when the
 * path has more segments than any route can have (so: no route matches), or -1 for bad
 * percent-encoding. "/" has zero segments; an empty segment ("//", trailing '/') is kept as
 * an empty string, which no pattern segment matches. */
static int split_path(const char *raw_path, char *buf, struct path_segs *ps)
{
    ps->n = 0;
    const char *p = raw_path + 1;
    if (*p == '\0')
        return 0;
    for (;;) {
        size_t len = seg_len(p);
        if (ps->n == ROUTE_MAX_SEGMENTS)
            return 1;
        long dlen = percent_decode(p, len, buf);
        if (dlen < 0)
            return -1;
        ps->seg[ps->n] = buf;
        ps->len[ps->n] = (size_t)dlen;
        ps->n++;
        buf += (size_t)dlen + 1;
        p += len;
        if (*p == '\0')
            return 0;
        p++;
    }
}

/* Does `pattern` match the decoded segments? Literal segments compare exactly. */
static int pattern_matches(const char *pattern, const struct path_segs *ps)
{
    const char *p = pattern + 1;
    size_t i = 0;
    if (*p == '\0')
        return ps->n == 0;
    for (;;) {
        size_t len = seg_len(p);
        if (i == ps->n)
            return 0;
        if (is_param_seg(p, len)) {
            if (ps->len[i] == 0)
                return 0;
        } else if (ps->len[i] != len || memcmp(ps->seg[i], p, len) != 0) {
            return 0;
        }
        i++;
        p += len;
        if (*p == '\0')
            break;
        p++;
    }
    return i == ps->n;
}

static int method_serves(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

static int param_value_ok(const char *value, size_t len)
{
    return len > 0 && strlen(value) == len && memchr(value, '/', len) == NULL &&
           strcmp(value, ".") != 0 && strcmp(value, "..") != 0;
}

/* Fill m->params from the chosen route; names are copied after the decoded path in storage.
 * Returns the index of the first unacceptable parameter value, or -1 when all are fine. */
static int bind_params(const struct route *r, const struct path_segs *ps, char *names,
                       struct route_match *m)
{
    int bad = -1;
    const char *p = r->pattern + 1;
    size_t i = 0;
    m->n_params = 0;
    while (*p != '\0' && i < ps->n) {
        size_t len = seg_len(p);
        if (is_param_seg(p, len)) {
            memcpy(names, p + 1, len - 2);
            names[len - 2] = '\0';
            m->params[m->n_params].name = names;
            m->params[m->n_params].value = ps->seg[i];
            if (bad < 0 && !param_value_ok(ps->seg[i], ps->len[i]))
                bad = (int)m->n_params;
            m->n_params++;
            names += len - 1;
        }
        i++;
        p += len;
        if (*p == '/')
            p++;
    }
    return bad;
}

/* "GET, HEAD, DELETE": the table's methods for the path, each once, HEAD after GET. */
static void build_allow(const struct route *routes, size_t n_routes, const struct path_segs *ps,
                        char *allow, size_t cap)
{
    const char *listed[16];
    size_t n_listed = 0;
    size_t used = 0;
    allow[0] = '\0';
    for (size_t i = 0; i < n_routes; i++) {
        const char *meth[2] = {routes[i].method, NULL};
        if (!pattern_matches(routes[i].pattern, ps))
            continue;
        if (strcmp(routes[i].method, "GET") == 0)
            meth[1] = "HEAD";
        for (size_t k = 0; k < 2 && meth[k] != NULL; k++) {
            int seen = 0;
            for (size_t j = 0; j < n_listed; j++)
                seen |= strcmp(listed[j], meth[k]) == 0;
            if (seen || n_listed == sizeof(listed) / sizeof(listed[0]) ||
                used + strlen(meth[k]) + 3 > cap)
                continue;
            listed[n_listed++] = meth[k];
            used += (size_t)snprintf(allow + used, cap - used, "%s%s", used ? ", " : "", meth[k]);
        }
    }
}

void route_match_clear(struct route_match *m)
{
    if (m == NULL)
        return;
    basin_free(m->storage);
    memset(m, 0, sizeof(*m));
}

/* Answer a pipeline error; BASIN_EINVAL when answered, BASIN_ENOMEM when not even that. */
static int answered(int rc)
{
    return rc == BASIN_OK ? BASIN_EINVAL : rc;
}

int router_match(const struct route *routes, size_t n_routes, const char *method,
                 const char *raw_path, struct route_match *m, struct reply *rep)
{
    int rc = BASIN_OK;
    struct path_segs ps;
    size_t max_pattern = 0;
    memset(m, 0, sizeof(*m));
    if (raw_path == NULL || raw_path[0] != '/') {
        rc = answered(reply_problem(rep, 400, NULL, "the request target must be a path", NULL, 0));
        goto done;
    }
    for (size_t i = 0; i < n_routes; i++) {
        size_t len = strlen(routes[i].pattern);
        max_pattern = len > max_pattern ? len : max_pattern;
    }
    size_t path_len = strlen(raw_path);
    size_t cap = 0;
    if (basin_add_size(path_len, max_pattern, &cap) != BASIN_OK ||
        basin_add_size(cap, 2, &cap) != BASIN_OK) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    m->storage = basin_malloc(cap);
    if (m->storage == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    int split = split_path(raw_path, m->storage, &ps);
    if (split < 0) {
        rc = answered(
            reply_problem(rep, 400, NULL, "malformed percent-encoding in the path", NULL, 0));
        goto done;
    }
    int path_known = 0;
    for (size_t i = 0; split == 0 && i < n_routes; i++) {
        if (!pattern_matches(routes[i].pattern, &ps))
            continue;
        path_known = 1;
        if (method_serves(routes[i].method, method)) {
            m->route = &routes[i];
            break;
        }
    }
    if (m->route == NULL && !path_known) {
        rc = answered(reply_problem(rep, 404, NULL, "no resource at this path", NULL, 0));
        goto done;
    }
    if (m->route == NULL) {
        char allow[160];
        build_allow(routes, n_routes, &ps, allow, sizeof(allow));
        rc = reply_header(rep, "Allow", allow);
        if (rc == BASIN_OK)
            rc = answered(reply_problemf(rep, 405, NULL, "%s is not allowed here; allowed: %s",
                                         method, allow));
        goto done;
    }
    /* names go right after the decoded segments (decoding never lengthens the path) */
    int bad = bind_params(m->route, &ps, m->storage + path_len + 1, m);
    if (bad >= 0) {
        m->route = NULL;
        rc = answered(reply_problemf(rep, 400, "Invalid path parameter",
                                     "path parameter '%s' must be non-empty and must not "
                                     "contain '/' or NUL or be '.' or '..'",
                                     m->params[bad].name));
        goto done;
    }
done:
    if (rc != BASIN_OK)
        m->route = NULL;
    return rc;
}

/* ---- content type ---- */

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Is [s, s+len) equal to `word`, ignoring ASCII case? */
static int span_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* Parse "type/subtype; charset=utf-8; ..." and say whether it is `want` with no charset or a
 * UTF-8 one. Other parameters are ignored. */
static int media_type_is(const char *ct, const char *want)
{
    const char *p = skip_ows(ct);
    size_t len = strcspn(p, "; \t");
    if (!span_is(p, len, want))
        return 0;
    p = skip_ows(p + len);
    while (*p == ';') {
        p = skip_ows(p + 1);
        size_t nlen = strcspn(p, "=; \t");
        const char *name = p;
        p = skip_ows(p + nlen);
        if (*p != '=') {
            if (*p != ';' && *p != '\0')
                return 0;
            continue;
        }
        p = skip_ows(p + 1);
        const char *val = p;
        size_t vlen;
        if (*p == '"') {
            val = p + 1;
            vlen = strcspn(val, "\"");
            p = val + vlen + (val[vlen] == '"');
        } else {
            vlen = strcspn(p, "; \t");
            p += vlen;
        }
        if (span_is(name, nlen, "charset") && !span_is(val, vlen, "utf-8"))
            return 0;
        p = skip_ows(p);
        if (*p != ';' && *p != '\0')
            return 0;
    }
    return *p == '\0';
}

int router_check_content_type(const struct route *route, const char *content_type, int has_body,
                              enum body_kind *kind, struct reply *rep)
{
    int rc = BASIN_OK;
    unsigned body = route->flags & ROUTE_BODY_MASK;
    const char *accepted =
        body == ROUTE_BODY_JSON ? "application/json" : "application/json or text/csv";
    *kind = BODY_KIND_NONE;
    if (body == ROUTE_BODY_NONE)
        goto done;
    if (!has_body) {
        rc = answered(reply_problemf(rep, 400, "Request body required",
                                     "this endpoint needs a request body (%s)", accepted));
        goto done;
    }
    if (content_type != NULL && media_type_is(content_type, "application/json")) {
        *kind = BODY_KIND_JSON;
    } else if (body == ROUTE_BODY_CSV_OR_JSON && content_type != NULL &&
               media_type_is(content_type, "text/csv")) {
        *kind = BODY_KIND_CSV;
    } else {
        rc = answered(reply_problemf(rep, 415, NULL, "Content-Type must be %s (UTF-8); got %s",
                                     accepted, content_type ? content_type : "none"));
        goto done;
    }
done:
    return rc;
}

/* ---- body parsing and dispatch ---- */

int json_nesting_exceeds(const char *text, size_t len, int max_depth)
{
    int depth = 0;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character cannot end the string */
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return 1;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

static int parse_json_body(struct request *req, struct reply *rep)
{
    int rc = BASIN_OK;
    json_error_t err;
    if (json_nesting_exceeds(req->body, req->body_len, ROUTE_MAX_JSON_DEPTH)) {
        /* shaped like every other malformed-JSON answer: the whole body is at fault */
        char msg[64];
        snprintf(msg, sizeof(msg), "JSON nesting deeper than %d levels", (int)ROUTE_MAX_JSON_DEPTH);
        struct problem_error deep = {"", msg};
        rc = answered(reply_problem(rep, 400, "Malformed JSON", msg, &deep, 1));
        goto done;
    }
    req->json = json_loadb(req->body ? req->body : "", req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (req->json != NULL)
        goto done;
    /* jansson reports most allocation failures as such, but a failure while setting up the
     * lexer returns NULL with the error untouched (empty text): also not the client's fault */
    if (json_error_code(&err) == json_error_out_of_memory || err.text[0] == '\0') {
        rc = BASIN_ENOMEM;
        goto done;
    }
    struct problem_error pe = {"", err.text};
    char detail[256];
    snprintf(detail, sizeof(detail), "invalid JSON at line %d, column %d: %s", err.line, err.column,
             err.text);
    rc = answered(reply_problem(rep, 400, "Malformed JSON", detail, &pe, 1));
done:
    return rc;
}

/* Weak comparison of one entity tag against another (RFC 9110 §8.8.3.2). */
static int etag_weak_equal(const char *a, size_t alen, const char *b)
{
    if (alen >= 2 && strncmp(a, "W/", 2) == 0) {
        a += 2;
        alen -= 2;
    }
    if (strncmp(b, "W/", 2) == 0)
        b += 2;
    return strlen(b) == alen && strncmp(a, b, alen) == 0;
}

/* Does the If-None-Match list ("*", or "a", W/"b", ...) match etag? */
static int if_none_match_hits(const char *list, const char *etag)
{
    const char *p = list;
    for (;;) {
        p += strspn(p, " \t,");
        if (*p == '\0')
            return 0;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed > 0 && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
            trimmed--;
        if ((trimmed == 1 && p[0] == '*') || etag_weak_equal(p, trimmed, etag))
            return 1;
        p += len;
    }
}

static void apply_conditional(const struct request *req, struct reply *rep)
{
    char tag[24];
    if (rep->status != 200 || rep->stream != NULL ||
        (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0))
        return;
    const char *etag = reply_find_header(rep, "ETag");
    if (etag == NULL) {
        snprintf(tag, sizeof(tag), "\"%016llx\"",
                 (unsigned long long)reply_fnv1a64(rep->body, rep->body_len));
        if (reply_header(rep, "ETag", tag) != BASIN_OK)
            return; /* out of memory: answer without a validator rather than fail */
        etag = tag;
    }
    const char *inm = request_header(req, "If-None-Match");
    if (inm == NULL || !if_none_match_hits(inm, etag))
        return;
    basin_free(rep->body);
    basin_free(rep->content_type);
    rep->body = NULL;
    rep->content_type = NULL;
    rep->body_len = 0;
    rep->status = 304;
}

/* Replace whatever the handler left with a 500 problem, keeping the logged cause. */
static void answer_internal_error(struct reply *rep, int rc)
{
    const char *cause = rep->log_cause;
    if (cause == NULL)
        cause = rc != BASIN_OK ? basin_strerror(rc) : "handler returned without an answer";
    reply_clear(rep);
    if (reply_problem(rep, 500, NULL, "internal error (see the server log for this request id)",
                      NULL, 0) != BASIN_OK)
        reply_clear(rep); /* status 0: http.c sends its static 500 */
    rep->log_cause = cause;
}

void router_dispatch(struct request *req, struct reply *rep)
{
    int rc = BASIN_OK;
    if (req->body_kind == BODY_KIND_JSON) {
        rc = parse_json_body(req, rep);
        if (rc != BASIN_OK) {
            if (rc != BASIN_EINVAL) /* EINVAL: answered 400 */
                answer_internal_error(rep, rc);
            goto done;
        }
    }
    rc = req->route->fn(req, rep);
    if (rc != BASIN_OK || rep->status == 0) {
        answer_internal_error(rep, rc);
        goto done;
    }
    apply_conditional(req, rep);
done:
    json_decref(req->json);
    req->json = NULL;
}
