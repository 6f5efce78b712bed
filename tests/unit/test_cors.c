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
#include "http_client.h"
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

/* method path with extra header lines (NULL-terminated) and an optional JSON body; *r
 * holds zeros or the previous answer, which is freed first. */
static void http(int port, const char *method, const char *path, const char *const *headers,
                 const char *body, struct http_resp *r)
{
    struct http_req q = http_req_json(method, path, body);
    q.timeout_ms = 15000;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        assert_true(i < HTTP_MAX_HEADERS);
        q.headers[i] = headers[i];
    }
    http_resp_free(r);
    assert_int_equal(http_request(NULL, port, &q, r), CURLE_OK);
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
    struct http_resp r = {0};
    const char *h1[] = {"Origin: " ORIGIN, NULL};
    http(f->port, "GET", "/items/a1", h1, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(http_header_count(&r, "Access-Control-Allow-Origin"), 1);
    assert_string_equal(http_header_or(&r, "Access-Control-Allow-Origin", ""),
                        ORIGIN); /* the exact origin, never "*" */
    assert_true(list_has(http_header_or(&r, "Vary", ""), "Origin"));
    assert_true(
        list_has(http_header_or(&r, "Vary", ""), "Accept")); /* merged with the handler's Vary */
    assert_true(list_has(http_header_or(&r, "Access-Control-Expose-Headers", ""), "ETag"));
    assert_true(list_has(http_header_or(&r, "Access-Control-Expose-Headers", ""), "Location"));
    assert_true(list_has(http_header_or(&r, "Access-Control-Expose-Headers", ""), "Retry-After"));
    assert_string_equal(http_header_or(&r, "Access-Control-Allow-Credentials", ""),
                        ""); /* never credentials */

    const char *h2[] = {"Origin: " ORIGIN2, NULL};
    http(f->port, "POST", "/items", h2, "{}", &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(http_header_or(&r, "Access-Control-Allow-Origin", ""), ORIGIN2);

    /* errors carry them too, so a script can read the problem */
    http(f->port, "GET", "/nothing/here", h1, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(http_header_or(&r, "Access-Control-Allow-Origin", ""), ORIGIN);
    assert_true(list_has(http_header_or(&r, "Vary", ""), "Origin"));
    http(f->port, "DELETE", "/items/a1", h1, NULL, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(http_header_or(&r, "Access-Control-Allow-Origin", ""), ORIGIN);
    http_resp_free(&r);
}

static void test_other_origins_get_none(void **state)
{
    struct fixture *f = *state;
    struct http_resp r = {0};
    const char *evil[] = {"Origin: https://evil.example", NULL};
    http(f->port, "GET", "/items/a1", evil, NULL, &r);
    assert_int_equal(r.status, 200); /* served: the browser, not the server, withholds it */
    assert_int_equal(http_header_count(&r, "Access-Control-Allow-Origin"), 0);
    assert_string_equal(http_header_or(&r, "Access-Control-Expose-Headers", ""), "");
    assert_true(
        list_has(http_header_or(&r, "Vary", ""), "Origin")); /* a cache must still key on Origin */
    const char *null_origin[] = {"Origin: null", NULL};
    http(f->port, "GET", "/items/a1", null_origin, NULL, &r);
    assert_int_equal(http_header_count(&r, "Access-Control-Allow-Origin"), 0);
    http(f->port, "GET", "/items/a1", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(http_header_count(&r, "Access-Control-Allow-Origin"), 0);
    assert_true(list_has(http_header_or(&r, "Vary", ""), "Origin"));
    http_resp_free(&r);
}

static void test_preflight(void **state)
{
    struct fixture *f = *state;
    struct http_resp r = {0};
    atomic_store(&handler_calls, 0);
    const char *pre[] = {"Origin: " ORIGIN, "Access-Control-Request-Method: POST",
                         "Access-Control-Request-Headers: authorization, content-type", NULL};
    http(f->port, "OPTIONS", "/items", pre, NULL, &r);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.len, 0);
    assert_int_equal(http_header_count(&r, "Access-Control-Allow-Origin"), 1);
    assert_string_equal(http_header_or(&r, "Access-Control-Allow-Origin", ""), ORIGIN);
    const char *methods[] = {"GET", "HEAD", "POST", "DELETE"};
    for (size_t i = 0; i < 4; i++)
        assert_true(list_has(http_header_or(&r, "Access-Control-Allow-Methods", ""), methods[i]));
    const char *headers[] = {"Authorization", "Content-Type", "Idempotency-Key", "If-None-Match",
                             "Last-Event-ID"};
    for (size_t i = 0; i < 5; i++)
        assert_true(list_has(http_header_or(&r, "Access-Control-Allow-Headers", ""), headers[i]));
    assert_string_equal(http_header_or(&r, "Access-Control-Max-Age", ""), "600");
    assert_true(list_has(http_header_or(&r, "Vary", ""), "Origin"));
    assert_string_equal(http_header_or(&r, "Access-Control-Allow-Credentials", ""), "");
    assert_int_equal(atomic_load(&handler_calls), 0);

    /* a preflight from another origin is not answered: the plain OPTIONS answer, 405 */
    const char *evil[] = {"Origin: https://evil.example", "Access-Control-Request-Method: POST",
                          NULL};
    http(f->port, "OPTIONS", "/items", evil, NULL, &r);
    assert_int_equal(r.status, 405);
    assert_int_equal(http_header_count(&r, "Access-Control-Allow-Origin"), 0);
    assert_string_equal(http_header_or(&r, "Access-Control-Allow-Methods", ""), "");
    /* OPTIONS that is not a preflight (no Access-Control-Request-Method) stays 405 + Allow */
    const char *plain[] = {"Origin: " ORIGIN, NULL};
    http(f->port, "OPTIONS", "/items", plain, NULL, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(http_header_or(&r, "Allow", ""), "POST");
    assert_string_equal(http_header_or(&r, "Access-Control-Allow-Methods", ""), "");
    assert_int_equal(atomic_load(&handler_calls), 0);
    http_resp_free(&r);
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
