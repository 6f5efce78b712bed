/* libFuzzer target: the request pipeline of router.c and the query validators of reply.c and
 * h_common.c, without a network. Input layout: fields separated by '\n' — method, raw path,
 * query value, Content-Type, If-None-Match — then the body (the rest, newlines included).
 *
 * Asserted, each against an oracle that does not share the code under test:
 * - router_match on the real route table: a match has the right method and parameters that are
 *   non-empty, free of '/', not "." or ".."; a refusal is a 400/404/405 problem+json body that
 *   parses (405 with an Allow header listing only table methods); never "nothing answered".
 * - query_size_or_reply against a digit-by-digit reference, query_double_or_reply (a value is
 *   finite and in range), query_choice_or_reply (exact match), page_params_or_reply: a value or
 *   a 400 problem.
 * - router_check_content_type against a case-insensitive media-type prefix check.
 * - json_nesting_exceeds against the depth of the tree jansson builds from the same text.
 * - router_dispatch with a stub handler: a body nested too deep or not JSON is a 400 problem and
 *   the handler is not called; otherwise the handler sees the parsed body; the answer is 200 or
 *   a 304 with no body; never a 5xx. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "basin/status.h"
#include "fuzz.h"
#include "handlers.h"
#include "router.h"

enum { N_FIELDS = 5 };

struct fields {
    char *f[N_FIELDS]; /* NUL-terminated copies (an embedded NUL ends them, as in MHD) */
    const char *body;
    size_t body_len;
};

struct lookup_ctx {
    const char *query;
    const char *content_type;
    const char *if_none_match;
};

static const char *lookup(void *ctx, enum request_lookup_kind kind, const char *name)
{
    const struct lookup_ctx *l = ctx;
    if (kind == REQUEST_LOOKUP_QUERY)
        return l->query[0] != '\0' ? l->query : NULL;
    if (strcasecmp(name, "Content-Type") == 0)
        return l->content_type;
    if (strcasecmp(name, "If-None-Match") == 0)
        return l->if_none_match[0] != '\0' ? l->if_none_match : NULL;
    return NULL;
}

static void split(const uint8_t *data, size_t size, struct fields *out)
{
    size_t pos = 0;
    for (int i = 0; i < N_FIELDS; i++) {
        size_t end = pos;
        while (end < size && data[end] != '\n')
            end++;
        out->f[i] = calloc(end - pos + 1, 1);
        FUZZ_CHECK(out->f[i] != NULL);
        memcpy(out->f[i], data + pos, end - pos);
        pos = end < size ? end + 1 : end;
    }
    out->body = (const char *)data + pos;
    out->body_len = size - pos;
}

/* A problem answer: the status, problem+json, a body that parses and names the status. */
static void check_problem(const struct reply *rep, int status)
{
    FUZZ_CHECK(rep->status == status);
    FUZZ_CHECK(rep->content_type != NULL &&
               strcmp(rep->content_type, "application/problem+json") == 0);
    json_t *body = json_loadb(rep->body, rep->body_len, 0, NULL);
    FUZZ_CHECK(body != NULL);
    FUZZ_CHECK(json_integer_value(json_object_get(body, "status")) == status);
    json_decref(body);
}

static int count_params(const char *pattern)
{
    int n = 0;
    for (const char *p = pattern; *p != '\0'; p++)
        n += *p == '{';
    return n;
}

static void check_match(const char *method, const char *path)
{
    struct route_match m;
    struct reply rep;
    reply_init(&rep, path);
    int rc = router_match(basinlab_routes, basinlab_route_count, method, path, &m, &rep);
    FUZZ_CHECK(rc == BASIN_OK || rc == BASIN_EINVAL);
    if (rc == BASIN_OK) {
        FUZZ_CHECK(m.route != NULL && rep.status == 0);
        FUZZ_CHECK(strcmp(m.route->method, method) == 0 ||
                   (strcmp(method, "HEAD") == 0 && strcmp(m.route->method, "GET") == 0));
        FUZZ_CHECK((int)m.n_params == count_params(m.route->pattern));
        for (size_t i = 0; i < m.n_params; i++) {
            const char *v = m.params[i].value;
            FUZZ_CHECK(v[0] != '\0' && strchr(v, '/') == NULL);
            FUZZ_CHECK(strcmp(v, ".") != 0 && strcmp(v, "..") != 0);
        }
        /* as many segments as the pattern: a '/' decoded from %2F cannot add one */
        size_t slashes = 0, pslashes = 0;
        for (const char *p = path; *p; p++)
            slashes += *p == '/';
        for (const char *p = m.route->pattern; *p; p++)
            pslashes += *p == '/';
        FUZZ_CHECK(slashes == pslashes);
    } else {
        FUZZ_CHECK(m.route == NULL);
        FUZZ_CHECK(rep.status == 400 || rep.status == 404 || rep.status == 405);
        check_problem(&rep, rep.status);
        if (rep.status == 405) {
            const char *allow = reply_find_header(&rep, "Allow");
            FUZZ_CHECK(allow != NULL && allow[0] != '\0');
            char *copy = strdup(allow);
            FUZZ_CHECK(copy != NULL);
            for (char *save = NULL, *t = strtok_r(copy, ", ", &save); t != NULL;
                 t = strtok_r(NULL, ", ", &save))
                FUZZ_CHECK(strcmp(t, "GET") == 0 || strcmp(t, "HEAD") == 0 ||
                           strcmp(t, "POST") == 0 || strcmp(t, "DELETE") == 0);
            free(copy);
        }
    }
    route_match_clear(&m);
    reply_clear(&rep);
}

static void check_queries(struct request *req, const char *qv)
{
    struct reply rep;
    size_t n = 0;
    double d = 0;
    /* reference for an integer in [1, 1000]: digits only, no overflow, in range */
    size_t len = strlen(qv);
    int ref_ok = len > 0 && strspn(qv, "0123456789") == len;
    unsigned long long ref = 0;
    for (size_t i = 0; ref_ok && i < len; i++) {
        ref = ref * 10 + (unsigned)(qv[i] - '0');
        if (ref > 1000000)
            ref = 1000000; /* saturate: already out of range */
    }
    ref_ok = ref_ok && ref >= 1 && ref <= 1000;
    int absent = len == 0;

    reply_init(&rep, "/q");
    int rc = query_size_or_reply(req, &rep, "limit", 50, 1, 1000, &n);
    if (absent) {
        FUZZ_CHECK(rc == BASIN_OK && n == 50 && rep.status == 0);
    } else if (ref_ok) {
        FUZZ_CHECK(rc == BASIN_OK && n == ref && rep.status == 0);
    } else {
        FUZZ_CHECK(rc == BASIN_EINVAL);
        check_problem(&rep, 400);
    }
    reply_clear(&rep);

    reply_init(&rep, "/q");
    rc = query_double_or_reply(req, &rep, "x", 0.5, -1e3, 1e3, &d);
    if (rc == BASIN_OK) {
        FUZZ_CHECK(rep.status == 0 && d >= -1e3 && d <= 1e3);
    } else {
        FUZZ_CHECK(rc == BASIN_EINVAL && !absent);
        check_problem(&rep, 400);
    }
    reply_clear(&rep);

    static const char *const choices[] = {"json", "csv"};
    reply_init(&rep, "/q");
    rc = query_choice_or_reply(req, &rep, "format", choices, 2, 0, &n);
    if (absent || strcmp(qv, "json") == 0 || strcmp(qv, "csv") == 0) {
        FUZZ_CHECK(rc == BASIN_OK && rep.status == 0);
        FUZZ_CHECK(n == (strcmp(qv, "csv") == 0 ? 1u : 0u));
    } else {
        FUZZ_CHECK(rc == BASIN_EINVAL);
        check_problem(&rep, 400);
    }
    reply_clear(&rep);

    const char *cursor = NULL;
    reply_init(&rep, "/q");
    rc = page_params_or_reply(req, &rep, &n, &cursor);
    if (rc == BASIN_OK)
        FUZZ_CHECK(rep.status == 0 && n >= 1 && n <= 1000);
    else
        check_problem(&rep, 400);
    reply_clear(&rep);
}

/* Reference: after optional spaces/tabs, `want` case-insensitively, then the end, ';', ' ' or
 * '\t'. The router may still refuse such a type (a charset other than UTF-8, junk after it). */
static int media_prefix(const char *ct, const char *want)
{
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen(want);
    return strncasecmp(ct, want, n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

static void check_content_type(const char *ct)
{
    static const struct route json_route = {"POST", "/x", NULL, ROUTE_BODY_JSON};
    static const struct route csv_route = {"POST", "/x", NULL, ROUTE_BODY_CSV_OR_JSON};
    const struct route *routes[2] = {&json_route, &csv_route};
    for (int i = 0; i < 2; i++) {
        struct reply rep;
        enum body_kind kind = BODY_KIND_NONE;
        reply_init(&rep, "/x");
        int rc = router_check_content_type(routes[i], ct, 1, &kind, &rep);
        if (rc == BASIN_OK) {
            FUZZ_CHECK(rep.status == 0);
            if (kind == BODY_KIND_JSON)
                FUZZ_CHECK(media_prefix(ct, "application/json"));
            else
                FUZZ_CHECK(i == 1 && kind == BODY_KIND_CSV && media_prefix(ct, "text/csv"));
        } else {
            FUZZ_CHECK(rc == BASIN_EINVAL);
            check_problem(&rep, 415);
        }
        reply_clear(&rep);
    }
}

/* Nesting depth of a jansson tree: scalars 0, a container 1 + its deepest member. */
static int tree_depth(const json_t *v)
{
    int deepest = 0;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            int d = tree_depth(json_array_get(v, i));
            deepest = d > deepest ? d : deepest;
        }
        return 1 + deepest;
    }
    if (json_is_object(v)) {
        const char *key;
        json_t *m;
        json_object_foreach((json_t *)v, key, m)
        {
            int d = tree_depth(m);
            deepest = d > deepest ? d : deepest;
        }
        return 1 + deepest;
    }
    return 0;
}

static void check_nesting(const char *body, size_t len)
{
    static const int depths[] = {0, 1, 2, 3, 5, ROUTE_MAX_JSON_DEPTH};
    int prev = 1;
    json_t *tree = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    int depth = tree != NULL ? tree_depth(tree) : -1;
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        int e = json_nesting_exceeds(body, len, depths[i]);
        FUZZ_CHECK(e == 0 || e == 1);
        FUZZ_CHECK(e <= prev); /* exceeding a depth implies exceeding every smaller one */
        prev = e;
        if (depth >= 0)
            FUZZ_CHECK(e == (depth > depths[i]));
    }
    json_decref(tree);
}

static int handler_calls;

static int stub_handler(struct request *req, struct reply *rep)
{
    handler_calls++;
    FUZZ_CHECK(req->json != NULL);
    return reply_json(rep, 200, json_pack("{s:b}", "ok", 1));
}

static void check_dispatch(struct request *req, const char *body, size_t len)
{
    static const struct route route = {"GET", "/x", stub_handler, ROUTE_BODY_JSON};
    struct reply rep;
    /* the transport keeps the body NUL-terminated */
    char *copy = malloc(len + 1);
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, body, len);
    copy[len] = '\0';
    req->route = &route;
    req->body_kind = BODY_KIND_JSON;
    req->body = copy;
    req->body_len = len;
    handler_calls = 0;
    int too_deep = json_nesting_exceeds(copy, len, ROUTE_MAX_JSON_DEPTH);
    json_t *ref = too_deep ? NULL : json_loadb(copy, len, JSON_REJECT_DUPLICATES, NULL);
    reply_init(&rep, "/x");
    router_dispatch(req, &rep);
    FUZZ_CHECK(req->json == NULL);
    if (ref == NULL) {
        FUZZ_CHECK(handler_calls == 0);
        check_problem(&rep, 400);
    } else {
        FUZZ_CHECK(handler_calls == 1);
        FUZZ_CHECK(rep.status == 200 || rep.status == 304);
        FUZZ_CHECK(reply_find_header(&rep, "ETag") != NULL);
        if (rep.status == 304)
            FUZZ_CHECK(rep.body_len == 0);
    }
    json_decref(ref);
    reply_clear(&rep);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fields fl;
    struct request req;
    split(data, size, &fl);
    struct lookup_ctx lc = {fl.f[2], fl.f[3], fl.f[4]};
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.path = "/x";
    req.request_id = "fuzz";
    req.client = "";
    req.lookup = lookup;
    req.lookup_ctx = &lc;

    check_match(fl.f[0], fl.f[1]);
    check_queries(&req, fl.f[2]);
    check_content_type(fl.f[3]);
    check_nesting(fl.body, fl.body_len);
    check_dispatch(&req, fl.body, fl.body_len);
    for (int i = 0; i < N_FIELDS; i++)
        free(fl.f[i]);
    return 0;
}
