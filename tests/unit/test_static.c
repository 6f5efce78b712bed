/* Tests of the dashboard's static files (h_static.c) over real HTTP: the full route table
 * (routes.c) served by http.c on 127.0.0.1, a web root made in a temporary directory, and
 * libcurl as the client. Expected bodies are the bytes the test wrote; expected refusals are
 * the cases the design rules out (symlinks out of the root, dotfiles, directories, unknown
 * extensions, oversized files, traversal in any spelling). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "app.h"
#include "basin/status.h"
#include "handlers.h"
#include "http.h"
#include "http_client.h"
#include "limits.h"

static const char INDEX_HTML[] = "<!doctype html><title>t</title><p>index</p>\n";
static const char APP_JS[] = "export const answer = 42;\n";
static const char APP_CSS[] = "body { color: red; }\n";
static const char OUTSIDE[] = "secret outside the web root\n";

static struct {
    char dir[64];  /* the temporary directory */
    char root[96]; /* dir/web: the web root */
    struct app app;
    struct http_server *srv;
    uint16_t port;
    CURL *curl;
} g;

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static void path_in(char *out, size_t cap, const char *rel)
{
    snprintf(out, cap, "%s/%s", g.dir, rel);
}

/* dir/web/{index.html, app.css, js/app.js, js/inside.js -> app.js, js/leak.js ->
 * ../../outside.js, .hidden.js, notes.md, js/dir.js/, big.js (17 MiB, sparse)} and
 * dir/outside.js. */
static int make_tree(void)
{
    char p[160];
    const char *dirs[] = {"web", "web/js", "web/js/dir.js", "web/vendor"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        path_in(p, sizeof p, dirs[i]);
        if (mkdir(p, 0755) != 0)
            return -1;
    }
    struct {
        const char *rel, *text;
    } files[] = {{"web/index.html", INDEX_HTML}, {"web/app.css", APP_CSS},
                 {"web/js/app.js", APP_JS},      {"web/vendor/lib.mjs", APP_JS},
                 {"web/.hidden.js", APP_JS},     {"web/notes.md", "# notes\n"},
                 {"outside.js", OUTSIDE}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        path_in(p, sizeof p, files[i].rel);
        if (write_file(p, files[i].text) != 0)
            return -1;
    }
    path_in(p, sizeof p, "web/js/inside.js");
    if (symlink("app.js", p) != 0)
        return -1;
    path_in(p, sizeof p, "web/js/leak.js");
    if (symlink("../../outside.js", p) != 0)
        return -1;
    path_in(p, sizeof p, "web/big.js");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    int rc = ftruncate(fd, 17L * 1024 * 1024);
    close(fd);
    return rc;
}

static void remove_tree(void)
{
    static const char *const files[] = {"web/index.html",
                                        "web/app.css",
                                        "web/js/app.js",
                                        "web/vendor/lib.mjs",
                                        "web/.hidden.js",
                                        "web/notes.md",
                                        "outside.js",
                                        "web/js/inside.js",
                                        "web/js/leak.js",
                                        "web/big.js",
                                        NULL};
    static const char *const dirs[] = {"web/js/dir.js", "web/js", "web/vendor", "web", NULL};
    char p[160];
    for (size_t i = 0; files[i] != NULL; i++) {
        path_in(p, sizeof p, files[i]);
        unlink(p);
    }
    for (size_t i = 0; dirs[i] != NULL; i++) {
        path_in(p, sizeof p, dirs[i]);
        rmdir(p);
    }
    rmdir(g.dir);
}

static int group_setup(void **state)
{
    (void)state;
    struct http_config cfg;
    snprintf(g.dir, sizeof g.dir, "/tmp/basinlab_static_XXXXXX");
    if (mkdtemp(g.dir) == NULL)
        return -1;
    snprintf(g.root, sizeof g.root, "%s/web", g.dir);
    if (make_tree() != 0)
        return -1;
    memset(&g.app, 0, sizeof g.app);
    if (app_init(&g.app) != BASIN_OK)
        return -1;
    limits_defaults(&g.app.limits);
    g.app.web_root = g.root;
    http_config_defaults(&cfg);
    cfg.port = 0;
    cfg.log_fn = http_log_discard;
    if (http_server_start(&cfg, basinlab_routes, basinlab_route_count, &g.app, &g.srv) != 0)
        return -1;
    g.port = http_server_port(g.srv);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g.curl = curl_easy_init();
    return g.curl != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    curl_easy_cleanup(g.curl);
    curl_global_cleanup();
    http_server_stop(g.srv);
    app_destroy(&g.app);
    remove_tree();
    return 0;
}

/* ---- the client (http_client.h) ---- */

/* One request with the path sent exactly as given (no dot-segment removal by curl). */
static void call(const char *method, const char *path, const char *extra_header,
                 struct http_resp *r)
{
    struct http_req q = {
        .method = method, .path = path, .headers = {extra_header}, .timeout_ms = 15000};
    assert_int_equal(http_request(g.curl, g.port, &q, r), CURLE_OK);
}

static void get(const char *path, struct http_resp *r)
{
    call("GET", path, NULL, r);
}

static void assert_header(const struct http_resp *r, const char *name, const char *want)
{
    char v[512];
    assert_true(http_header_copy(r, name, v, sizeof v));
    assert_string_equal(v, want);
}

/* A 200 with exactly `body` as `type`, and the security and caching headers. */
static void assert_file(const char *path, const char *type, const char *body)
{
    struct http_resp r;
    char v[512];
    get(path, &r);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", type);
    assert_int_equal(r.len, strlen(body));
    assert_memory_equal(r.body, body, r.len);
    assert_true(http_header_copy(&r, "Content-Security-Policy", v, sizeof v));
    assert_non_null(strstr(v, "default-src 'self'"));
    assert_non_null(strstr(v, "frame-ancestors 'none'"));
    assert_null(strstr(v, "unsafe-inline"));
    assert_header(&r, "X-Content-Type-Options", "nosniff");
    assert_header(&r, "X-Frame-Options", "DENY");
    assert_header(&r, "Referrer-Policy", "no-referrer");
    assert_header(&r, "Cache-Control", "no-cache");
    assert_true(http_header_copy(&r, "ETag", v, sizeof v));
    http_resp_free(&r);
}

static void assert_status(const char *method, const char *path, long status)
{
    struct http_resp r;
    call(method, path, NULL, &r);
    if (r.status != status)
        fprintf(stderr, "%s %s: %ld\n", method, path, r.status);
    assert_int_equal(r.status, status);
    http_resp_free(&r);
}

/* ---- tests ---- */

static void test_files_and_types(void **state)
{
    (void)state;
    assert_file("/", "text/html; charset=utf-8", INDEX_HTML);
    assert_file("/index.html", "text/html; charset=utf-8", INDEX_HTML);
    assert_file("/app.css", "text/css; charset=utf-8", APP_CSS);
    assert_file("/js/app.js", "text/javascript; charset=utf-8", APP_JS);
    assert_file("/vendor/lib.mjs", "text/javascript; charset=utf-8", APP_JS);
    /* a symlink that stays inside the root is served as its target */
    assert_file("/js/inside.js", "text/javascript; charset=utf-8", APP_JS);
}

static void test_conditional_and_head(void **state)
{
    (void)state;
    struct http_resp r;
    char etag[64], h[96];
    get("/js/app.js", &r);
    assert_true(http_header_copy(&r, "ETag", etag, sizeof etag));
    http_resp_free(&r);
    snprintf(h, sizeof h, "If-None-Match: %s", etag);
    call("GET", "/js/app.js", h, &r);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.len, 0);
    http_resp_free(&r);
    /* another file's tag does not match */
    call("GET", "/app.css", h, &r);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    call("HEAD", "/", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    assert_header(&r, "Content-Type", "text/html; charset=utf-8");
    http_resp_free(&r);
}

static void test_refusals(void **state)
{
    (void)state;
    assert_status("GET", "/js/leak.js", 404); /* symlink out of the root */
    assert_status("GET", "/.hidden.js", 404); /* dotfile */
    assert_status("GET", "/notes.md", 404);   /* extension not served */
    assert_status("GET", "/js/dir.js", 404);  /* a directory */
    assert_status("GET", "/big.js", 404);     /* over the size cap */
    assert_status("GET", "/missing.js", 404); /* absent */
    assert_status("GET", "/js/missing.js", 404);
    assert_status("GET", "/other/app.js", 404); /* no route for other directories */
    /* traversal, spelled every way the router sees it */
    assert_status("GET", "/../outside.js", 404);
    assert_status("GET", "/js/../../outside.js", 404);
    assert_status("GET", "/js/..", 400);
    assert_status("GET", "/js/%2e%2e", 400);
    assert_status("GET", "/js/..%2foutside.js", 400);
    assert_status("GET", "/%2e%2e%2foutside.js", 400);
    /* only GET and HEAD */
    assert_status("POST", "/", 405);
    assert_status("DELETE", "/js/app.js", 405);
}

static void test_api_not_shadowed(void **state)
{
    (void)state;
    struct http_resp r;
    get("/v1/limits", &r);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "application/json");
    http_resp_free(&r);
    /* an unknown API path is a problem, not a file */
    get("/v1/nothing", &r);
    assert_int_equal(r.status, 404);
    assert_header(&r, "Content-Type", "application/problem+json");
    http_resp_free(&r);
}

static void test_without_web_root(void **state)
{
    (void)state;
    struct http_resp r;
    const char *saved = g.app.web_root;
    g.app.web_root = NULL;
    get("/", &r);
    g.app.web_root = saved;
    assert_int_equal(r.status, 404);
    assert_header(&r, "Content-Type", "application/problem+json");
    assert_non_null(strstr(r.body, "--web"));
    http_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_and_types),  cmocka_unit_test(test_conditional_and_head),
        cmocka_unit_test(test_refusals),         cmocka_unit_test(test_api_not_shadowed),
        cmocka_unit_test(test_without_web_root),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
