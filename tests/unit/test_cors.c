/* Tests of the CORS allowlist (cors.c) and its hooks in the request pipeline (http.c).
 *
 * The list parser is checked on origins a browser really sends and on the entries it must refuse
 * (wildcards, "null", paths, trailing slashes, bad ports). Over real HTTP, an in-process server
 * on loopback with the preflight and decorate hooks installed: an allowed origin gets
 * Access-Control-Allow-Origin naming exactly it (also on error answers, so scripts can read a
 * 404 or 401 problem), other origins and requests without Origin get none, every answer varies
 * by Origin, a preflight from an allowed origin is answered 204 with the methods, headers and
 * max-age (without reaching any handler), a preflight from another origin gets the plain 405,
 * and Access-Control-Allow-Credentials is never sent. The expected header values are the ones
 * the Fetch standard requires, written out here. Plus --cors-origins in config.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "basin/status.h"
#include "config.h"
#include "cors.h"
#include "http.h"
#include "reply.h"
#include "router.h"

#define ORIGIN "https://dash.example.org"
#define ORIGIN2 "http://localhost:5173"

/* ---- the list ---- */

static void test_parse_list(void **state)
{
    (void)state;
    struct cors *c = NULL;
    char err[256];
    assert_int_equal(cors_create(" " ORIGIN " , HTTP://LocalHost:5173,http://[::1]:8080,"
                                 "https://192.0.2.10",
                                 &c, err, sizeof err),
                     BASIN_OK);
    assert_int_equal(cors_origin_count(c), 4);
    assert_true(cors_origin_allowed(c, ORIGIN));
    assert_true(cors_origin_allowed(c, ORIGIN2)); /* listed in upper case */
    assert_true(cors_origin_allowed(c, "http://[::1]:8080"));
    assert_true(cors_origin_allowed(c, "https://192.0.2.10"));
    /* exact: no other scheme, port, subdomain, suffix or prefix */
    assert_false(cors_origin_allowed(c, "http://dash.example.org"));
    assert_false(cors_origin_allowed(c, "https://dash.example.org:8443"));
    assert_false(cors_origin_allowed(c, "https://evil.dash.example.org"));
    assert_false(cors_origin_allowed(c, "https://dash.example.org.evil.com"));
    assert_false(cors_origin_allowed(c, "https://dash.example.or"));
    assert_false(cors_origin_allowed(c, "null"));
    assert_false(cors_origin_allowed(c, ""));
    assert_false(cors_origin_allowed(c, NULL));
    cors_free(c);
    cors_free(NULL);

    const char *bad[] = {"*",
                         "null",
                         "",
                         ORIGIN ",",
                         ORIGIN ",,",
                         "dash.example.org",
                         "ftp://dash.example.org",
                         ORIGIN "/",
                         ORIGIN "/app",
                         "https://user@dash.example.org",
                         "https://dash.example.org:0",
                         "https://dash.example.org:65536",
                         "https://dash.example.org:",
                         "https://",
                         "https://.example.org",
                         "https://[::1",
                         "https://*.example.org",
                         "https://dash.example.org?x=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = (struct cors *)(uintptr_t)1;
        err[0] = '\0';
        assert_int_equal(cors_create(bad[i], &c, err, sizeof err), BASIN_EINVAL);
        assert_null(c);
        assert_true(err[0] != '\0');
    }
    /* the message quotes the entry that is wrong, not the whole list */
    assert_int_equal(cors_create(ORIGIN ", https://x.org/", &c, err, sizeof err), BASIN_EINVAL);
    assert_non_null(strstr(err, "'https://x.org/'"));
    assert_null(strstr(err, "dash"));
}

static const char *env_origins(const char *name)
{
    return strcmp(name, "BASINLAB_CORS_ORIGINS") == 0 ? ORIGIN : NULL;
}

static void test_config_flag(void **state)
{
    (void)state;
    struct serve_config c;
    char err[256];
    int help = 0;
    char *none[] = {"serve"};
    assert_int_equal(config_load(&c, 1, none, NULL, &help, err, sizeof err), BASIN_OK);
    assert_null(c.cors_origins);
    assert_int_equal(config_load(&c, 1, none, env_origins, &help, err, sizeof err), BASIN_OK);
    assert_string_equal(c.cors_origins, ORIGIN);
    char *flag[] = {"serve", "--cors-origins", ORIGIN2};
    assert_int_equal(config_load(&c, 3, flag, env_origins, &help, err, sizeof err), BASIN_OK);
    assert_string_equal(c.cors_origins, ORIGIN2);
    char *star[] = {"serve", "--cors-origins=*"};
    assert_int_equal(config_load(&c, 2, star, NULL, &help, err, sizeof err), BASIN_EINVAL);
    assert_non_null(strstr(err, "--cors-origins"));
}

/* ---- over HTTP ---- */

struct resp {
    long status;
    char body[4096];
    size_t len;
    char acao[256];  /* Access-Control-Allow-Origin */
    char acam[256];  /* Access-Control-Allow-Methods */
    char acah[256];  /* Access-Control-Allow-Headers */
    char acma[32];   /* Access-Control-Max-Age */
    char aceh[256];  /* Access-Control-Expose-Headers */
    char acac[32];   /* Access-Control-Allow-Credentials */
    char vary[256];  /* Vary */
    char allow[128]; /* Allow */
    int n_acao;      /* how many Access-Control-Allow-Origin lines */
};

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    struct resp *r = user;
    size_t add = size * n;
    size_t room = sizeof r->body - 1 - r->len;
    size_t k = add < room ? add : room;
    memcpy(r->body + r->len, data, k);
    r->len += k;
    r->body[r->len] = '\0';
    return add;
}

static int copy_header(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return 0;
    const char *v = line + n + 1;
    const char *end = line + len;
    while (v < end && *v == ' ')
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t m = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
    memcpy(out, v, m);
    out[m] = '\0';
    return 1;
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
    struct resp *r = user;
    size_t len = size * n;
    r->n_acao += copy_header(data, len, "Access-Control-Allow-Origin", r->acao, sizeof r->acao);
    copy_header(data, len, "Access-Control-Allow-Methods", r->acam, sizeof r->acam);
    copy_header(data, len, "Access-Control-Allow-Headers", r->acah, sizeof r->acah);
    copy_header(data, len, "Access-Control-Max-Age", r->acma, sizeof r->acma);
    copy_header(data, len, "Access-Control-Expose-Headers", r->aceh, sizeof r->aceh);
    copy_header(data, len, "Access-Control-Allow-Credentials", r->acac, sizeof r->acac);
    copy_header(data, len, "Vary", r->vary, sizeof r->vary);
    copy_header(data, len, "Allow", r->allow, sizeof r->allow);
    return len;
}

/* method path with up to 3 extra header lines (NULL-terminated) and an optional JSON body. */
static void http(int port, const char *method, const char *path, const char *const *headers,
                 const char *body, struct resp *r)
{
    char url[256];
    struct curl_slist *hdrs = NULL;
    memset(r, 0, sizeof *r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *h = curl_easy_init();
    assert_non_null(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        hdrs = curl_slist_append(hdrs, headers[i]);
    if (body != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
}

static atomic_int handler_calls;

static int h_item(struct request *req, struct reply *rep)
{
    atomic_fetch_add(&handler_calls, 1);
    int rc = reply_header(rep, "Vary", "Accept");
    if (rc == BASIN_OK)
        rc = reply_json(rep, 200, json_pack("{s:s}", "id", request_param(req, "id")));
    return rc;
}

static int h_create(struct request *req, struct reply *rep)
{
    (void)req;
    atomic_fetch_add(&handler_calls, 1);
    return reply_json(rep, 201, json_pack("{s:b}", "created", 1));
}

static const struct route test_routes[] = {
    {"GET", "/items/{id}", h_item, ROUTE_BODY_NONE},
    {"POST", "/items", h_create, ROUTE_BODY_JSON},
};

struct fixture {
    struct cors *cors;
    struct http_server *srv;
    int port;
};

static int setup(void **state)
{
    static struct fixture f;
    struct http_config cfg;
    char err[128];
    memset(&f, 0, sizeof f);
    if (cors_create(ORIGIN "," ORIGIN2, &f.cors, err, sizeof err) != BASIN_OK)
        return -1;
    http_config_defaults(&cfg);
    cfg.port = 0;
    cfg.log_fn = http_log_discard;
    cfg.hooks.preflight = (struct request_hook){cors_preflight_hook, f.cors};
    cfg.hooks.decorate = (struct reply_hook){cors_decorate_hook, f.cors};
    if (http_server_start(&cfg, test_routes, 2, NULL, &f.srv) != BASIN_OK)
        return -1;
    f.port = http_server_port(f.srv);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    http_server_quiesce(f->srv);
    http_server_stop(f->srv);
    cors_free(f->cors);
    return 0;
}

/* Does the comma-separated list contain token (ignoring case and spaces)? */
static int list_has(const char *list, const char *token)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", list);
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        size_t n = strlen(t);
        while (n > 0 && t[n - 1] == ' ')
            t[--n] = '\0';
        if (strcasecmp(t, token) == 0)
            return 1;
    }
    return 0;
}

static void test_allowed_origin_gets_headers(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    const char *h1[] = {"Origin: " ORIGIN, NULL};
    http(f->port, "GET", "/items/a1", h1, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.n_acao, 1);
    assert_string_equal(r.acao, ORIGIN); /* the exact origin, never "*" */
    assert_true(list_has(r.vary, "Origin"));
    assert_true(list_has(r.vary, "Accept")); /* merged with the handler's Vary */
    assert_true(list_has(r.aceh, "ETag"));
    assert_true(list_has(r.aceh, "Location"));
    assert_true(list_has(r.aceh, "Retry-After"));
    assert_string_equal(r.acac, ""); /* never credentials */

    const char *h2[] = {"Origin: " ORIGIN2, NULL};
    http(f->port, "POST", "/items", h2, "{}", &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.acao, ORIGIN2);

    /* errors carry them too, so a script can read the problem */
    http(f->port, "GET", "/nothing/here", h1, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.acao, ORIGIN);
    assert_true(list_has(r.vary, "Origin"));
    http(f->port, "DELETE", "/items/a1", h1, NULL, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.acao, ORIGIN);
}

static void test_other_origins_get_none(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    const char *evil[] = {"Origin: https://evil.example", NULL};
    http(f->port, "GET", "/items/a1", evil, NULL, &r);
    assert_int_equal(r.status, 200); /* served: the browser, not the server, withholds it */
    assert_int_equal(r.n_acao, 0);
    assert_string_equal(r.aceh, "");
    assert_true(list_has(r.vary, "Origin")); /* a cache must still key on Origin */
    const char *null_origin[] = {"Origin: null", NULL};
    http(f->port, "GET", "/items/a1", null_origin, NULL, &r);
    assert_int_equal(r.n_acao, 0);
    http(f->port, "GET", "/items/a1", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.n_acao, 0);
    assert_true(list_has(r.vary, "Origin"));
}

static void test_preflight(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    atomic_store(&handler_calls, 0);
    const char *pre[] = {"Origin: " ORIGIN, "Access-Control-Request-Method: POST",
                         "Access-Control-Request-Headers: authorization, content-type", NULL};
    http(f->port, "OPTIONS", "/items", pre, NULL, &r);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.len, 0);
    assert_int_equal(r.n_acao, 1);
    assert_string_equal(r.acao, ORIGIN);
    const char *methods[] = {"GET", "HEAD", "POST", "DELETE"};
    for (size_t i = 0; i < 4; i++)
        assert_true(list_has(r.acam, methods[i]));
    const char *headers[] = {"Authorization", "Content-Type", "Idempotency-Key", "If-None-Match",
                             "Last-Event-ID"};
    for (size_t i = 0; i < 5; i++)
        assert_true(list_has(r.acah, headers[i]));
    assert_string_equal(r.acma, "600");
    assert_true(list_has(r.vary, "Origin"));
    assert_string_equal(r.acac, "");
    assert_int_equal(atomic_load(&handler_calls), 0);

    /* a preflight from another origin is not answered: the plain OPTIONS answer, 405 */
    const char *evil[] = {"Origin: https://evil.example", "Access-Control-Request-Method: POST",
                          NULL};
    http(f->port, "OPTIONS", "/items", evil, NULL, &r);
    assert_int_equal(r.status, 405);
    assert_int_equal(r.n_acao, 0);
    assert_string_equal(r.acam, "");
    /* OPTIONS that is not a preflight (no Access-Control-Request-Method) stays 405 + Allow */
    const char *plain[] = {"Origin: " ORIGIN, NULL};
    http(f->port, "OPTIONS", "/items", plain, NULL, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "POST");
    assert_string_equal(r.acam, "");
    assert_int_equal(atomic_load(&handler_calls), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(test_parse_list),
        cmocka_unit_test(test_config_flag),
    };
    const struct CMUnitTest over_http[] = {
        cmocka_unit_test(test_allowed_origin_gets_headers),
        cmocka_unit_test(test_other_origins_get_none),
        cmocka_unit_test(test_preflight),
    };
    int failed = cmocka_run_group_tests(unit, NULL, NULL);
    failed += cmocka_run_group_tests(over_http, setup, teardown);
    curl_global_cleanup();
    return failed;
}
