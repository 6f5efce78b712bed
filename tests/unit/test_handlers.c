/* Tests of the dataset, architecture, run and meta handlers (h_datasets.c, h_architectures.c,
 * h_runs.c, h_meta.c, h_common.c) over real HTTP: the full route table (routes.c) served by
 * http.c on 127.0.0.1 with an ephemeral port, a real SQLite store in a temporary directory, and
 * libcurl as the client. Expected values come from the test's own inputs, closed forms (the
 * least-squares fit of XOR is the constant ½ with risk ⅛; its best logistic fit is θ = 0 with
 * risk log 2), the core generator called directly, or records written straight into the store;
 * never from the handler under test. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "app.h"
#include "basin/data.h"
#include "basin/status.h"
#include "handlers.h"
#include "http.h"
#include "http_client.h"
#include "limits.h"
#include "store.h"

/* ---- fixture: one server and store for the whole group ---- */

static struct {
    char dir[64];
    char db[128];
    struct app app;
    struct http_server *srv;
    uint16_t port;
    CURL *curl;
} g;

static int group_setup(void **state)
{
    (void)state;
    char err[256] = "";
    struct http_config cfg;
    snprintf(g.dir, sizeof g.dir, "/tmp/basinlab_h2_XXXXXX");
    if (mkdtemp(g.dir) == NULL)
        return -1;
    snprintf(g.db, sizeof g.db, "%s/store.db", g.dir);
    memset(&g.app, 0, sizeof g.app);
    if (app_init(&g.app) != BASIN_OK)
        return -1;
    limits_defaults(&g.app.limits);
    if (store_open(g.db, NULL, &g.app.store, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
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
    char path[160];
    curl_easy_cleanup(g.curl);
    curl_global_cleanup();
    http_server_stop(g.srv);
    store_close(g.app.store);
    app_destroy(&g.app);
    static const char *const files[] = {"store.db", "store.db-wal", "store.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", g.dir, files[i]);
        unlink(path);
    }
    rmdir(g.dir);
    return 0;
}

/* ---- the client (http_client.h) ---- */

/* One request; extra is a NULL-terminated list of "Name: value" headers. */
static void call(const char *method, const char *path, const char *ctype, const char *body,
                 size_t body_len, const char *const *extra, struct http_resp *r)
{
    struct http_req q = {.method = method,
                         .path = path,
                         .content_type = ctype,
                         .body = body,
                         .body_len = body_len,
                         .headers = {"Expect:"},
                         .timeout_ms = 15000,
                         .parse_json = 1};
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        assert_true(i + 1 < HTTP_MAX_HEADERS);
        q.headers[i + 1] = extra[i];
    }
    assert_int_equal(http_request(g.curl, g.port, &q, r), CURLE_OK);
}

static void get(const char *path, struct http_resp *r)
{
    call("GET", path, NULL, NULL, 0, NULL, r);
}

static void post_json(const char *path, const char *body, struct http_resp *r)
{
    call("POST", path, "application/json", body, strlen(body), NULL, r);
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_int_t jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static double jnum(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

/* 1 when the problem lists an error at `pointer` whose message contains `substr` (NULL: any). */
static int has_error(const json_t *problem, const char *pointer, const char *substr)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(problem, "errors"), i, e)
    {
        const char *p = jstr(e, "pointer"), *m = jstr(e, "message");
        if (p && m && strcmp(p, pointer) == 0 && (substr == NULL || strstr(m, substr) != NULL))
            return 1;
    }
    return 0;
}

static void assert_problem(const struct http_resp *r, long status)
{
    char ct[128];
    assert_int_equal(r->status, status);
    assert_true(http_header_copy(r, "Content-Type", ct, sizeof ct));
    assert_string_equal(ct, "application/problem+json");
    assert_non_null(r->json);
    assert_int_equal(jint(r->json, "status"), status);
}

/* POST a JSON body that must be created (201); copies the new id. */
static void create(const char *path, const char *body, char id[STORE_ID_SIZE], struct http_resp *r)
{
    char loc[256], want[256];
    post_json(path, body, r);
    if (r->status != 201)
        fprintf(stderr, "unexpected answer %ld: %s\n", r->status, r->body ? r->body : "");
    assert_int_equal(r->status, 201);
    assert_non_null(r->json);
    snprintf(id, STORE_ID_SIZE, "%s", jstr(r->json, "id"));
    assert_true(http_header_copy(r, "Location", loc, sizeof loc));
    snprintf(want, sizeof want, "%s/%s", path, id);
    assert_string_equal(loc, want);
}

static const char arch_body[] =
    "{\"name\": \"a3\", \"input_shape\": [2], \"layers\": [{\"type\": \"dense\", \"units\": 3},"
    " {\"type\": \"activation\", \"kind\": \"relu\"}, {\"type\": \"dense\", \"units\": 1}]}";

static void new_experiment(const char *ds, const char *ar, int64_t restarts, char id[STORE_ID_SIZE])
{
    struct store_experiment_new e;
    int existed = 0;
    memset(&e, 0, sizeof e);
    e.dataset_id = ds;
    e.architecture_id = ar;
    e.spec = json_pack("{s:s, s:s, s:I}", "dataset_id", ds, "architecture_id", ar, "restarts",
                       (json_int_t)restarts);
    e.restarts = restarts;
    e.seed = 7;
    assert_int_equal(store_experiment_create(g.app.store, &e, id, &existed), STORE_OK);
    json_decref(e.spec);
}

/* ---- meta ---- */

static void test_meta_endpoints(void **state)
{
    (void)state;
    struct http_resp r;
    char v[256];

    get("/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "status"), "ok");
    http_resp_free(&r);

    get("/readyz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "status"), "ready");
    http_resp_free(&r);

    atomic_store(&g.app.draining, 1);
    get("/readyz", &r);
    assert_problem(&r, 503);
    assert_true(http_header_copy(&r, "Retry-After", v, sizeof v));
    assert_true(atoi(v) > 0);
    http_resp_free(&r);
    get("/healthz", &r); /* liveness does not care about draining */
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    atomic_store(&g.app.draining, 0);

    get("/v1/limits", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(jint(r.json, "max_points"), (json_int_t)g.app.limits.max_points);
    assert_int_equal(jint(r.json, "max_params"), (json_int_t)g.app.limits.max_params);
    assert_int_equal(jint(r.json, "max_body_bytes"), (json_int_t)g.app.limits.max_body_bytes);
    http_resp_free(&r);

    /* the embedded contract is byte for byte the file in the source tree */
    char path[512];
    snprintf(path, sizeof path, "%s/api/openapi.yaml", BASINLAB_SOURCE_DIR);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char file[1 << 20];
    size_t flen = fread(file, 1, sizeof file, f);
    fclose(f);
    get("/openapi.yaml", &r);
    assert_int_equal(r.status, 200);
    assert_true(http_header_copy(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/yaml");
    assert_int_equal(r.len, flen);
    assert_memory_equal(r.body, file, flen);
    http_resp_free(&r);
}

/* Every line of a Prometheus 0.0.4 exposition: HELP/TYPE comments or `name{labels} value`. */
static void assert_prometheus_line(const char *line)
{
    if (line[0] == '#') {
        char name[128], kind[32];
        if (strncmp(line, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%127s", name), 1);
            assert_true(strlen(line) > 8 + strlen(name));
            return;
        }
        assert_int_equal(strncmp(line, "# TYPE ", 7), 0);
        assert_int_equal(sscanf(line + 7, "%127s %31s", name, kind), 2);
        assert_true(strcmp(kind, "gauge") == 0 || strcmp(kind, "counter") == 0 ||
                    strcmp(kind, "histogram") == 0);
        return;
    }
    const char *p = line;
    assert_true((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_');
    p += strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:");
    if (*p == '{') {
        p++;
        for (;;) {
            size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
            assert_true(n > 0);
            p += n;
            assert_int_equal(*p, '=');
            assert_int_equal(p[1], '"');
            const char *close = strchr(p + 2, '"');
            assert_non_null(close);
            p = close + 1;
            if (*p == ',') {
                p++;
                continue;
            }
            assert_int_equal(*p, '}');
            p++;
            break;
        }
    }
    assert_int_equal(*p, ' ');
    char *end = NULL;
    strtod(p + 1, &end);
    assert_true(end != p + 1);
    assert_int_equal(*end, '\0');
}

/* The value of the sample line that starts with `prefix` followed by a space. */
static double sample(const char *text, const char *prefix)
{
    size_t plen = strlen(prefix);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, prefix, plen) == 0 && line[plen] == ' ')
            return strtod(line + plen + 1, NULL);
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    fail_msg("no sample %s", prefix);
    return NAN;
}

static void test_metrics(void **state)
{
    (void)state;
    struct http_resp r;
    char v[128];
    struct store_metrics sm;

    atomic_store(&g.app.metrics.train_steps_total, 12345);
    app_record_request(&g.app, 200, 300);   /* 0.3 ms: the first bucket */
    app_record_request(&g.app, 404, 30000); /* 30 ms: le 0.05 */
    assert_int_equal(store_metrics(g.app.store, &sm), STORE_OK);
    get("/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_true(http_header_copy(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "text/plain; version=0.0.4");

    char *text = strdup(r.body);
    size_t lines = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        assert_prometheus_line(line);
        lines++;
    }
    free(text);
    assert_true(lines > 30);

    assert_int_equal((long long)sample(r.body, "basinlab_train_steps_total"), 12345);
    assert_int_equal((long long)sample(r.body, "basinlab_store_up"), 1);
    assert_int_equal((long long)sample(r.body, "basinlab_queue_depth"), sm.queue_depth);
    assert_int_equal((long long)sample(r.body, "basinlab_runs{status=\"finished\"}"),
                     sm.runs[STORE_RUN_FINISHED]);
    assert_int_equal((long long)sample(r.body, "basinlab_runs{status=\"queued\"}"),
                     sm.runs[STORE_RUN_QUEUED]);
    assert_int_equal((long long)sample(r.body, "basinlab_experiments{status=\"queued\"}"),
                     sm.experiments[STORE_EXP_QUEUED]);
    assert_int_equal((long long)sample(r.body, "basinlab_datasets"), sm.datasets);
    assert_true(sample(r.body, "basinlab_http_responses_total{class=\"2xx\"}") >= 1);
    assert_true(sample(r.body, "basinlab_http_responses_total{class=\"4xx\"}") >= 1);

    /* cumulative buckets: non-decreasing, +Inf equals _count, and our two requests show */
    double prev = 0;
    for (size_t b = 0; b < APP_LATENCY_BUCKETS; b++) {
        char name[128];
        snprintf(name, sizeof name, "basinlab_http_request_duration_seconds_bucket{le=\"%g\"}",
                 app_latency_bounds[b]);
        double c = sample(r.body, name);
        assert_true(c >= prev);
        prev = c;
    }
    double inf = sample(r.body, "basinlab_http_request_duration_seconds_bucket{le=\"+Inf\"}");
    assert_true(inf >= prev);
    assert_true(inf >= 2);
    assert_true(inf == sample(r.body, "basinlab_http_request_duration_seconds_count"));
    assert_true(sample(r.body, "basinlab_http_request_duration_seconds_bucket{le=\"0.0005\"}") >=
                1);
    assert_true(sample(r.body, "basinlab_http_request_duration_seconds_bucket{le=\"0.05\"}") -
                    sample(r.body, "basinlab_http_request_duration_seconds_bucket{le=\"0.025\"}") >=
                1);
    assert_true(sample(r.body, "basinlab_http_request_duration_seconds_sum") >= 0.0303 - 1e-9);
    http_resp_free(&r);
}

/* ---- datasets ---- */

static void test_dataset_inline_roundtrip(void **state)
{
    (void)state;
    struct http_resp r;
    char id[STORE_ID_SIZE], path[128];
    /* XOR on the unit square, plus a value that only prints shortly with round-trip care */
    const char *body = "{\"kind\": \"inline\", \"name\": \"xor\", \"x\": [[0, 0], [1, 0], [0, 1],"
                       " [1, 1]], \"y\": [0, 1, 1, 0]}";
    create("/v1/datasets", body, id, &r);
    json_t *d = r.json;
    assert_string_equal(jstr(d, "kind"), "inline");
    assert_string_equal(jstr(d, "name"), "xor");
    assert_string_equal(jstr(d, "task"), "binary");
    assert_int_equal(jint(d, "n"), 4);
    assert_int_equal(jint(d, "output_dim"), 1);
    assert_int_equal(json_array_size(json_object_get(d, "input_shape")), 1);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(d, "input_shape"), 0)), 2);
    assert_null(json_object_get(d, "x")); /* samples are served by /points */
    /* least squares: by symmetry A = 0, b = ½, residuals ±½ → R_lin = ½·¼ = ⅛ */
    json_t *sq =
        json_object_get(json_object_get(json_object_get(d, "linear_fit"), "loss"), "squared");
    assert_non_null(sq);
    assert_true(fabs(jnum(sq, "risk") - 0.125) < 1e-12);
    assert_true(json_is_false(json_object_get(sq, "linearly_fittable")));
    /* logistic: XOR is not separable; θ = 0 is optimal by symmetry → log 2 */
    json_t *lg =
        json_object_get(json_object_get(json_object_get(d, "linear_fit"), "loss"), "logistic");
    assert_non_null(lg);
    assert_true(fabs(jnum(lg, "risk") - log(2.0)) < 1e-9);
    assert_true(json_is_false(json_object_get(lg, "linearly_fittable")));
    http_resp_free(&r);

    snprintf(path, sizeof path, "/v1/datasets/%s", id);
    get(path, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "id"), id);
    assert_non_null(jstr(r.json, "created_at"));
    assert_int_equal(strlen(jstr(r.json, "created_at")), 24); /* 2024-01-02T03:04:05.678Z */
    http_resp_free(&r);

    snprintf(path, sizeof path, "/v1/datasets/%s/points", id);
    get(path, &r);
    assert_int_equal(r.status, 200);
    static const double xs[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
    static const double ys[4] = {0, 1, 1, 0};
    json_t *x = json_object_get(r.json, "x"), *y = json_object_get(r.json, "y");
    assert_int_equal(json_array_size(x), 4);
    assert_int_equal(json_array_size(y), 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(json_array_size(json_array_get(x, i)), 2);
        for (size_t j = 0; j < 2; j++)
            assert_true(json_number_value(json_array_get(json_array_get(x, i), j)) == xs[i][j]);
        assert_true(json_number_value(json_array_get(y, i)) == ys[i]);
    }
    assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
    char link[256];
    assert_false(http_header_copy(&r, "Link", link, sizeof link));
    http_resp_free(&r);

    /* a linear target: y = 2 x0 − 3 x1 + 0.1 is fitted exactly (R_lin ≈ 0) */
    const char *lin = "{\"kind\": \"inline\", \"x\": [[0, 0], [1, 0], [0, 1], [2, 5], [-1, 3]],"
                      " \"y\": [0.1, 2.1, -2.9, -10.9, -10.9]}";
    create("/v1/datasets", lin, id, &r);
    assert_string_equal(jstr(r.json, "task"), "regression");
    sq = json_object_get(json_object_get(json_object_get(r.json, "linear_fit"), "loss"), "squared");
    assert_true(jnum(sq, "risk") < 1e-20);
    assert_true(json_is_true(json_object_get(sq, "linearly_fittable")));
    assert_null(json_object_get(json_object_get(json_object_get(r.json, "linear_fit"), "loss"),
                                "logistic"));
    http_resp_free(&r);

    /* CSV of the same points: header x0,x1,y0 and the shortest round-trip numbers */
    snprintf(path, sizeof path, "/v1/datasets/%s/points?format=csv", id);
    get(path, &r);
    assert_int_equal(r.status, 200);
    char ct[128];
    assert_true(http_header_copy(&r, "Content-Type", ct, sizeof ct));
    assert_int_equal(strncmp(ct, "text/csv", 8), 0);
    assert_string_equal(r.body, "x0,x1,y0\n0,0,0.1\n1,0,2.1\n0,1,-2.9\n2,5,-10.9\n-1,3,-10.9\n");
    http_resp_free(&r);
}

static void test_dataset_generator(void **state)
{
    (void)state;
    struct http_resp r;
    char id[STORE_ID_SIZE], path[512], link[512], want[512];
    create("/v1/datasets",
           "{\"kind\": \"generator\", \"generator\": {\"name\": \"two_moons\", \"n\": 37, "
           "\"noise\": 0.1, \"seed\": 3}}",
           id, &r);
    assert_int_equal(jint(r.json, "n"), 37);
    assert_string_equal(jstr(r.json, "kind"), "generator");
    json_t *gen = json_object_get(r.json, "generator");
    assert_non_null(gen);
    assert_int_equal(jint(gen, "seed"), 3);
    http_resp_free(&r);

    /* the samples the server stored are the generator's, served in pages of 10 */
    basin_generator_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.kind = BASIN_GEN_TWO_MOONS;
    spec.n = 37;
    spec.noise = 0.1;
    spec.seed = 3;
    basin_dataset *ref = NULL;
    assert_int_equal(basin_data_generate(&spec, &ref), BASIN_OK);
    assert_int_equal(ref->in_dim, 2);

    size_t seen = 0, pages = 0;
    char cursor[64] = "";
    snprintf(path, sizeof path, "/v1/datasets/%s/points?limit=10", id);
    for (;;) {
        get(path, &r);
        assert_int_equal(r.status, 200);
        pages++;
        assert_int_equal(jint(r.json, "offset"), (json_int_t)seen);
        json_t *x = json_object_get(r.json, "x"), *y = json_object_get(r.json, "y");
        for (size_t i = 0; i < json_array_size(x); i++, seen++) {
            assert_true(seen < 37);
            for (size_t j = 0; j < 2; j++)
                assert_true(json_number_value(json_array_get(json_array_get(x, i), j)) ==
                            ref->x[seen * 2 + j]);
            assert_true(json_number_value(json_array_get(y, i)) == ref->y[seen]);
        }
        json_t *next = json_object_get(r.json, "next_cursor");
        if (json_is_null(next)) {
            assert_false(http_header_copy(&r, "Link", link, sizeof link));
            http_resp_free(&r);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        assert_true(http_header_copy(&r, "Link", link, sizeof link));
        snprintf(want, sizeof want, "</v1/datasets/%s/points?limit=10&cursor=%s>; rel=\"next\"", id,
                 cursor);
        assert_string_equal(link, want);
        /* follow the Link itself */
        size_t l = strlen(link);
        assert_true(l > 2);
        snprintf(path, sizeof path, "%.*s", (int)(strchr(link, '>') - link - 1), link + 1);
        http_resp_free(&r);
    }
    assert_int_equal(seen, 37);
    assert_int_equal(pages, 4);
    basin_dataset_free(ref);

    snprintf(path, sizeof path, "/v1/datasets/%s/points?cursor=p999", id);
    get(path, &r);
    assert_problem(&r, 400);
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/datasets/%s/points?cursor=garbage", id);
    get(path, &r);
    assert_problem(&r, 400);
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/datasets/%s/points?format=xml", id);
    get(path, &r);
    assert_problem(&r, 400);
    http_resp_free(&r);
}

static void test_dataset_csv_upload(void **state)
{
    (void)state;
    struct http_resp r;
    char path[256];
    const char csv[] = "a,b,t\n1,2,3\n4,5,6.5\n";
    call("POST", "/v1/datasets?y_cols=1&header=true&name=up", "text/csv", csv, sizeof csv - 1, NULL,
         &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(jstr(r.json, "kind"), "csv");
    assert_string_equal(jstr(r.json, "name"), "up");
    assert_int_equal(jint(r.json, "n"), 2);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(r.json, "input_shape"), 0)),
                     2);
    assert_null(json_object_get(r.json, "csv"));
    snprintf(path, sizeof path, "/v1/datasets/%s/points", jstr(r.json, "id"));
    http_resp_free(&r);
    get(path, &r);
    json_t *x = json_object_get(r.json, "x"), *y = json_object_get(r.json, "y");
    assert_true(json_number_value(json_array_get(json_array_get(x, 0), 0)) == 1.0);
    assert_true(json_number_value(json_array_get(json_array_get(x, 0), 1)) == 2.0);
    assert_true(json_number_value(json_array_get(json_array_get(x, 1), 0)) == 4.0);
    assert_true(json_number_value(json_array_get(json_array_get(x, 1), 1)) == 5.0);
    assert_true(json_number_value(json_array_get(y, 0)) == 3.0);
    assert_true(json_number_value(json_array_get(y, 1)) == 6.5);
    http_resp_free(&r);

    /* two targets: input shape [1], y rows of two */
    const char csv2[] = "1;2;3\n4;5;6\n";
    call("POST", "/v1/datasets?y_cols=2&header=false&delimiter=%3B", "text/csv", csv2,
         sizeof csv2 - 1, NULL, &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(jint(r.json, "output_dim"), 2);
    snprintf(path, sizeof path, "/v1/datasets/%s/points?format=csv", jstr(r.json, "id"));
    http_resp_free(&r);
    get(path, &r);
    assert_string_equal(r.body, "x0,y0,y1\n1,2,3\n4,5,6\n");
    http_resp_free(&r);

    /* a bad cell: pointer "" and the line in the message */
    const char bad[] = "1,2\n3,x\n";
    call("POST", "/v1/datasets", "text/csv", bad, sizeof bad - 1, NULL, &r);
    assert_problem(&r, 422);
    assert_true(has_error(r.json, "", "line 2"));
    http_resp_free(&r);

    /* query parameters that are not what they claim */
    call("POST", "/v1/datasets?y_cols=abc&header=maybe", "text/csv", csv, sizeof csv - 1, NULL, &r);
    assert_problem(&r, 422);
    assert_true(has_error(r.json, "?y_cols", NULL));
    assert_true(has_error(r.json, "?header", NULL));
    http_resp_free(&r);
    call("POST", "/v1/datasets?y_cols=0", "text/csv", csv, sizeof csv - 1, NULL, &r);
    assert_problem(&r, 422);
    assert_true(has_error(r.json, "?y_cols", NULL));
    http_resp_free(&r);
    call("POST", "/v1/datasets?delimiter=ab", "text/csv", csv, sizeof csv - 1, NULL, &r);
    assert_problem(&r, 422);
    assert_true(has_error(r.json, "?delimiter", NULL));
    http_resp_free(&r);
    const char latin1[] = "1,2\n3,\xff\n";
    call("POST", "/v1/datasets", "text/csv", latin1, sizeof latin1 - 1, NULL, &r);
    assert_problem(&r, 422);
    assert_true(has_error(r.json, "", "UTF-8"));
    http_resp_free(&r);
}

static void test_dataset_errors(void **state)
{
    (void)state;
    struct http_resp r;
    post_json("/v1/datasets",
              "{\"kind\": \"inline\", \"x\": [[1, 2], [3]], \"y\": [1, 2], \"bogus\": 1}", &r);
    assert_problem(&r, 422);
    assert_true(has_error(r.json, "/bogus", NULL));
    assert_true(has_error(r.json, "/x/1", NULL));
    http_resp_free(&r);

    post_json("/v1/datasets", "{\"kind\": \"generator\", \"generator\": {\"name\": \"nope\"}}", &r);
    assert_problem(&r, 422);
    assert_true(has_error(r.json, "/generator/name", NULL));
    http_resp_free(&r);

    call("POST", "/v1/datasets", "text/plain", "1,2", 3, NULL, &r);
    assert_problem(&r, 415);
    http_resp_free(&r);

    get("/v1/datasets/ds_0000000000000000", &r);
    assert_problem(&r, 404);
    assert_non_null(strstr(jstr(r.json, "detail"), "ds_0000000000000000"));
    http_resp_free(&r);
    get("/v1/datasets/%FF%FE", &r); /* not UTF-8: answered without echoing it */
    assert_problem(&r, 404);
    http_resp_free(&r);
    get("/v1/datasets/ar_0000000000000000", &r); /* an id of another kind */
    assert_problem(&r, 404);
    http_resp_free(&r);
    get("/v1/datasets/ds_0000000000000000/points", &r);
    assert_problem(&r, 404);
    http_resp_free(&r);
    call("DELETE", "/v1/datasets/ds_0000000000000000", NULL, NULL, 0, NULL, &r);
    assert_problem(&r, 404);
    http_resp_free(&r);

    static const char *const bad[] = {"/v1/datasets?limit=0", "/v1/datasets?limit=1001",
                                      "/v1/datasets?limit=abc", "/v1/datasets?cursor=zzz",
                                      "/v1/architectures?cursor=zzz"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        get(bad[i], &r);
        assert_problem(&r, 400);
        http_resp_free(&r);
    }
}

static void test_teacher_dataset(void **state)
{
    (void)state;
    struct http_resp r;
    char id[STORE_ID_SIZE], path[128];
    create("/v1/datasets", "{\"kind\": \"teacher_gaussian\", \"k\": 3, \"d\": 4}", id, &r);
    assert_int_equal(jint(r.json, "n"), 0);
    assert_int_equal(jint(r.json, "k"), 3);
    assert_int_equal(jint(r.json, "d"), 4);
    assert_string_equal(jstr(r.json, "teacher"), "identity");
    assert_true(json_is_null(json_object_get(r.json, "linear_fit")));
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/datasets/%s/points?format=csv", id);
    get(path, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "x0,x1,x2,x3,y0\n");
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/datasets/%s", id);
    call("DELETE", path, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 204);
    http_resp_free(&r);
}

static void test_pagination_and_etag(void **state)
{
    (void)state;
    struct http_resp r;
    enum { N = 7 };
    char ids[N][STORE_ID_SIZE], path[512], link[512], etag[128], inm[160];
    for (int i = 0; i < N; i++) {
        char body[160];
        snprintf(body, sizeof body,
                 "{\"kind\": \"inline\", \"name\": \"p%d\", \"x\": [[%d]], \"y\": [%d]}", i, i, i);
        create("/v1/datasets", body, ids[i], &r);
        http_resp_free(&r);
    }
    /* walk every page with limit=3: each created id exactly once, nothing twice */
    int found[N] = {0};
    size_t total = 0;
    snprintf(path, sizeof path, "/v1/datasets?limit=3");
    for (int page = 0; page < 100; page++) {
        get(path, &r);
        assert_int_equal(r.status, 200);
        json_t *items = json_object_get(r.json, "items");
        assert_true(json_array_size(items) <= 3);
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            total++;
            for (int k = 0; k < N; k++) {
                if (strcmp(jstr(it, "id"), ids[k]) == 0)
                    found[k]++;
            }
        }
        json_t *next = json_object_get(r.json, "next_cursor");
        if (json_is_null(next)) {
            assert_false(http_header_copy(&r, "Link", link, sizeof link));
            http_resp_free(&r);
            break;
        }
        char want[512];
        assert_true(http_header_copy(&r, "Link", link, sizeof link));
        snprintf(want, sizeof want, "</v1/datasets?limit=3&cursor=%s>; rel=\"next\"",
                 json_string_value(next));
        assert_string_equal(link, want);
        snprintf(path, sizeof path, "%.*s", (int)(strchr(link, '>') - link - 1), link + 1);
        http_resp_free(&r);
    }
    for (int k = 0; k < N; k++)
        assert_int_equal(found[k], 1);
    struct store_metrics sm;
    assert_int_equal(store_metrics(g.app.store, &sm), STORE_OK);
    assert_int_equal(total, (size_t)sm.datasets);

    /* conditional GET */
    snprintf(path, sizeof path, "/v1/datasets/%s", ids[0]);
    get(path, &r);
    assert_int_equal(r.status, 200);
    assert_true(http_header_copy(&r, "ETag", etag, sizeof etag));
    http_resp_free(&r);
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    const char *const extra[] = {inm, NULL};
    call("GET", path, NULL, NULL, 0, extra, &r);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.len, 0);
    http_resp_free(&r);
    const char *const other[] = {"If-None-Match: \"0000000000000000\"", NULL};
    call("GET", path, NULL, NULL, 0, other, &r);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);

    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof path, "/v1/datasets/%s", ids[i]);
        call("DELETE", path, NULL, NULL, 0, NULL, &r);
        assert_int_equal(r.status, 204);
        http_resp_free(&r);
    }
}

/* ---- architectures and delete conflicts ---- */

static void test_architectures_and_conflicts(void **state)
{
    (void)state;
    struct http_resp r;
    char ar[STORE_ID_SIZE], ds[STORE_ID_SIZE], ex[STORE_ID_SIZE], path[128];
    create("/v1/architectures", arch_body, ar, &r);
    assert_string_equal(jstr(r.json, "name"), "a3");
    assert_int_equal(jint(r.json, "param_count"), 2 * 3 + 3 + 3 * 1 + 1);
    assert_int_equal(jint(r.json, "output_dim"), 1);
    assert_int_equal(json_array_size(json_object_get(r.json, "layers")), 3);
    http_resp_free(&r);

    snprintf(path, sizeof path, "/v1/architectures/%s", ar);
    get(path, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(jint(r.json, "param_count"), 13);
    http_resp_free(&r);

    get("/v1/architectures?limit=1000", &r);
    assert_int_equal(r.status, 200);
    int listed = 0;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(r.json, "items"), i, it) listed +=
        strcmp(jstr(it, "id"), ar) == 0;
    assert_int_equal(listed, 1);
    http_resp_free(&r);

    post_json("/v1/architectures",
              "{\"input_shape\": [2], \"layers\": [{\"type\": \"dense\", \"units\": 0}]}", &r);
    assert_problem(&r, 422);
    assert_true(has_error(r.json, "/layers/0/units", NULL));
    http_resp_free(&r);
    post_json("/v1/architectures", "{\"layers\": []}", &r);
    assert_problem(&r, 422);
    assert_true(has_error(r.json, "/input_shape", NULL));
    http_resp_free(&r);
    post_json("/v1/architectures",
              "{\"input_shape\": [2], \"layers\": [{\"type\": \"activation\", \"kind\": "
              "\"relu\"}]}",
              &r);
    assert_problem(&r, 422);
    assert_true(has_error(r.json, "/layers", "no trainable parameters"));
    http_resp_free(&r);
    get("/v1/architectures/ar_ffffffffffffffff", &r);
    assert_problem(&r, 404);
    http_resp_free(&r);

    /* an experiment pins its dataset and architecture */
    create("/v1/datasets", "{\"kind\": \"inline\", \"x\": [[1, 2]], \"y\": [3]}", ds, &r);
    http_resp_free(&r);
    new_experiment(ds, ar, 1, ex);
    snprintf(path, sizeof path, "/v1/datasets/%s", ds);
    call("DELETE", path, NULL, NULL, 0, NULL, &r);
    assert_problem(&r, 409);
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/architectures/%s", ar);
    call("DELETE", path, NULL, NULL, 0, NULL, &r);
    assert_problem(&r, 409);
    http_resp_free(&r);

    assert_int_equal(store_experiment_delete(g.app.store, ex), STORE_OK);
    snprintf(path, sizeof path, "/v1/datasets/%s", ds);
    call("DELETE", path, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.len, 0);
    http_resp_free(&r);
    get(path, &r);
    assert_problem(&r, 404);
    http_resp_free(&r);
    call("DELETE", path, NULL, NULL, 0, NULL, &r);
    assert_problem(&r, 404);
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/architectures/%s", ar);
    call("DELETE", path, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 204);
    http_resp_free(&r);
}

/* ---- runs ---- */

enum { TRAJ_N = 1000, SPIKE_STEP = 537 };
#define SPIKE_RISK 1e6

static double traj_risk(int64_t step)
{
    return step == SPIKE_STEP ? SPIKE_RISK : 1.0 / (1.0 + (double)step);
}

struct run_fx {
    char ds[STORE_ID_SIZE], ar[STORE_ID_SIZE], ex[STORE_ID_SIZE];
    struct store_claim *claim;
};

static void runs_fixture(struct run_fx *f)
{
    struct http_resp r;
    create("/v1/datasets", "{\"kind\": \"inline\", \"x\": [[1, 2], [0, 1]], \"y\": [3, 1]}", f->ds,
           &r);
    http_resp_free(&r);
    create("/v1/architectures", arch_body, f->ar, &r);
    http_resp_free(&r);
    new_experiment(f->ds, f->ar, 2, f->ex);
    assert_int_equal(store_claim_runs(g.app.store, "w-test", 2, &f->claim), STORE_OK);
    assert_non_null(f->claim);
    assert_string_equal(f->claim->experiment_id, f->ex);
    assert_int_equal(f->claim->n_runs, 2);

    struct store_traj_point pts[TRAJ_N];
    for (int i = 0; i < TRAJ_N; i++) {
        pts[i].step = i;
        pts[i].risk = traj_risk(i);
        pts[i].grad_norm = 0.5 * (double)i;
        pts[i].param_norm = 3.0 + (double)i;
    }
    const char *run = f->claim->runs[0].id;
    assert_int_equal(store_trajectory_append(g.app.store, run, f->claim->token, pts, 400),
                     STORE_OK);
    assert_int_equal(
        store_trajectory_append(g.app.store, run, f->claim->token, pts + 400, TRAJ_N - 400),
        STORE_OK);

    static const double params[3] = {1.5, -2.0, 0.1};
    struct store_run_result res;
    memset(&res, 0, sizeof res);
    res.run_id = run;
    res.token = f->claim->token;
    res.status = STORE_RUN_FINISHED;
    res.steps = TRAJ_N - 1;
    res.stop_reason = "max_steps";
    res.initial_risk = 1.0;
    res.final_risk = 0.25;
    res.grad_norm = 1e-3;
    res.param_norm = NAN;
    res.params = params;
    res.n_params = 3;
    assert_int_equal(store_run_finish(g.app.store, &res), STORE_OK);
}

static void runs_fixture_clear(struct run_fx *f)
{
    struct http_resp r;
    char path[128];
    store_claim_free(f->claim);
    assert_int_equal(store_experiment_delete(g.app.store, f->ex), STORE_OK);
    snprintf(path, sizeof path, "/v1/datasets/%s", f->ds);
    call("DELETE", path, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 204);
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/architectures/%s", f->ar);
    call("DELETE", path, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 204);
    http_resp_free(&r);
}

static void assert_point(const json_t *p, int64_t step)
{
    assert_int_equal(json_array_size(p), 4);
    assert_int_equal(json_integer_value(json_array_get(p, 0)), step);
    assert_true(json_number_value(json_array_get(p, 1)) == traj_risk(step));
    assert_true(json_number_value(json_array_get(p, 2)) == 0.5 * (double)step);
    assert_true(json_number_value(json_array_get(p, 3)) == 3.0 + (double)step);
}

static void test_run_view_and_params(void **state)
{
    (void)state;
    struct run_fx f;
    struct http_resp r;
    char path[256], v[64];
    runs_fixture(&f);
    const char *run = f.claim->runs[0].id;

    snprintf(path, sizeof path, "/v1/runs/%s", run);
    get(path, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "id"), run);
    assert_string_equal(jstr(r.json, "experiment_id"), f.ex);
    assert_int_equal(jint(r.json, "index"), f.claim->runs[0].index);
    assert_int_equal(jint(r.json, "seed"), 7);
    assert_string_equal(jstr(r.json, "status"), "finished");
    assert_string_equal(jstr(r.json, "origin"), "trained");
    assert_int_equal(jint(r.json, "steps"), TRAJ_N - 1);
    assert_string_equal(jstr(r.json, "stop_reason"), "max_steps");
    assert_true(jnum(r.json, "initial_risk") == 1.0);
    assert_true(jnum(r.json, "final_risk") == 0.25);
    assert_true(jnum(r.json, "grad_norm") == 1e-3);
    assert_true(json_is_null(json_object_get(r.json, "param_norm"))); /* NaN: unknown */
    assert_true(json_is_null(json_object_get(r.json, "verdict")));
    assert_true(json_is_null(json_object_get(r.json, "error")));
    assert_int_equal(jint(r.json, "attempts"), 1);
    json_t *t = json_object_get(r.json, "timings");
    assert_true(json_is_string(json_object_get(t, "started_at")));
    assert_true(json_is_string(json_object_get(t, "finished_at")));
    assert_true(jint(t, "duration_ms") >= 0);
    http_resp_free(&r);

    /* the still-running second run: steps unknown, no end point yet */
    snprintf(path, sizeof path, "/v1/runs/%s", f.claim->runs[1].id);
    get(path, &r);
    assert_string_equal(jstr(r.json, "status"), "running");
    assert_true(json_is_null(json_object_get(r.json, "steps")));
    assert_true(json_is_null(json_object_get(json_object_get(r.json, "timings"), "finished_at")));
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/runs/%s/params", f.claim->runs[1].id);
    get(path, &r);
    assert_problem(&r, 404);
    http_resp_free(&r);

    snprintf(path, sizeof path, "/v1/runs/%s/params", run);
    get(path, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(jint(r.json, "param_count"), 3);
    assert_string_equal(jstr(r.json, "layout"), "pytorch_state_dict");
    json_t *p = json_object_get(r.json, "params");
    assert_true(json_number_value(json_array_get(p, 0)) == 1.5);
    assert_true(json_number_value(json_array_get(p, 1)) == -2.0);
    assert_true(json_number_value(json_array_get(p, 2)) == 0.1);
    http_resp_free(&r);

    const char *const octets[] = {"Accept: application/octet-stream", NULL};
    call("GET", path, NULL, NULL, 0, octets, &r);
    assert_int_equal(r.status, 200);
    assert_true(http_header_copy(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/octet-stream");
    assert_int_equal(r.len, 24);
    static const double want[3] = {1.5, -2.0, 0.1};
    for (int i = 0; i < 3; i++) {
        uint64_t bits = 0;
        for (int b = 0; b < 8; b++)
            bits |= (uint64_t)(unsigned char)r.body[8 * i + b] << (8 * b);
        double d;
        memcpy(&d, &bits, sizeof d);
        assert_true(d == want[i]);
    }
    assert_true(http_header_copy(&r, "X-Param-Count", v, sizeof v));
    assert_string_equal(v, "3");
    http_resp_free(&r);

    get("/v1/runs/run_0123456789abcdef", &r);
    assert_problem(&r, 404);
    http_resp_free(&r);
    get("/v1/runs/ex_0123456789abcdef/params", &r);
    assert_problem(&r, 404);
    http_resp_free(&r);
    runs_fixture_clear(&f);
}

static void test_trajectory(void **state)
{
    (void)state;
    struct run_fx f;
    struct http_resp r;
    char path[256], link[512], want[512];
    runs_fixture(&f);
    const char *run = f.claim->runs[0].id;

    /* 1000 points fit the default max_points: every point, exactly */
    snprintf(path, sizeof path, "/v1/runs/%s/trajectory", run);
    get(path, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "run_id"), run);
    assert_int_equal(jint(r.json, "count"), TRAJ_N);
    assert_int_equal(jint(r.json, "total_count"), TRAJ_N);
    assert_int_equal(jint(r.json, "first_step"), 0);
    assert_int_equal(jint(r.json, "last_step"), TRAJ_N - 1);
    assert_true(json_is_false(json_object_get(r.json, "downsampled")));
    json_t *pts = json_object_get(r.json, "points");
    for (int i = 0; i < TRAJ_N; i++)
        assert_point(json_array_get(pts, (size_t)i), i);
    http_resp_free(&r);

    /* max_points=8: downsampled, the spike survives, first and last kept */
    snprintf(path, sizeof path, "/v1/runs/%s/trajectory?max_points=8", run);
    get(path, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "downsampled")));
    pts = json_object_get(r.json, "points");
    assert_true(json_array_size(pts) <= 8);
    assert_int_equal(jint(r.json, "count"), (json_int_t)json_array_size(pts));
    int spike = 0;
    int64_t prev = -1;
    for (size_t i = 0; i < json_array_size(pts); i++) {
        json_t *p = json_array_get(pts, i);
        int64_t step = json_integer_value(json_array_get(p, 0));
        assert_true(step > prev); /* increasing, no duplicates */
        prev = step;
        assert_point(p, step); /* every kept point is a real stored point */
        spike |= step == SPIKE_STEP;
    }
    assert_true(spike);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(pts, 0), 0)), 0);
    assert_int_equal(prev, TRAJ_N - 1);
    http_resp_free(&r);

    /* a range */
    snprintf(path, sizeof path, "/v1/runs/%s/trajectory?from=10&to=19", run);
    get(path, &r);
    assert_int_equal(jint(r.json, "count"), 10);
    pts = json_object_get(r.json, "points");
    for (int i = 0; i < 10; i++)
        assert_point(json_array_get(pts, (size_t)i), 10 + i);
    http_resp_free(&r);

    /* the full series in pages of 300: every point once, in order, Link to the next page */
    snprintf(path, sizeof path, "/v1/runs/%s/trajectory?full=true&limit=300", run);
    int64_t next_expected = 0;
    int pages = 0;
    for (;;) {
        get(path, &r);
        assert_int_equal(r.status, 200);
        pages++;
        pts = json_object_get(r.json, "points");
        for (size_t i = 0; i < json_array_size(pts); i++)
            assert_point(json_array_get(pts, i), next_expected++);
        json_t *next = json_object_get(r.json, "next_cursor");
        if (json_is_null(next)) {
            http_resp_free(&r);
            break;
        }
        assert_true(http_header_copy(&r, "Link", link, sizeof link));
        snprintf(want, sizeof want,
                 "</v1/runs/%s/trajectory?limit=300&full=true&cursor=%s>; "
                 "rel=\"next\"",
                 run, json_string_value(next));
        assert_string_equal(link, want);
        snprintf(path, sizeof path, "%.*s", (int)(strchr(link, '>') - link - 1), link + 1);
        http_resp_free(&r);
    }
    assert_int_equal(next_expected, TRAJ_N);
    assert_int_equal(pages, 4);

    /* CSV: header and exact rows, paged */
    snprintf(path, sizeof path, "/v1/runs/%s/trajectory?format=csv&limit=3", run);
    get(path, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "step,risk,grad_norm,param_norm\n0,1,0,3\n1,0.5,0.5,4\n"
                                "2,0.3333333333333333,1,5\n");
    assert_true(http_header_copy(&r, "Link", link, sizeof link));
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/runs/%s/trajectory?format=csv&from=%d&to=%d", run, SPIKE_STEP,
             SPIKE_STEP);
    get(path, &r);
    assert_string_equal(r.body, "step,risk,grad_norm,param_norm\n537,1000000,268.5,540\n");
    http_resp_free(&r);

    /* a run with no points yet */
    snprintf(path, sizeof path, "/v1/runs/%s/trajectory", f.claim->runs[1].id);
    get(path, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(jint(r.json, "count"), 0);
    assert_int_equal(jint(r.json, "first_step"), -1);
    http_resp_free(&r);

    /* malformed queries */
    static const char *const bad[] = {"max_points=3",
                                      "max_points=100001",
                                      "from=20&to=10",
                                      "from=-1",
                                      "to=abc",
                                      "format=xml",
                                      "full=yes",
                                      "full=true&cursor=x1",
                                      "full=true&from=5&cursor=s4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "/v1/runs/%s/trajectory?%s", run, bad[i]);
        get(path, &r);
        if (r.status != 400)
            fprintf(stderr, "query %s answered %ld\n", bad[i], r.status);
        assert_problem(&r, 400);
        http_resp_free(&r);
    }
    get("/v1/runs/run_0000000000000000/trajectory", &r);
    assert_problem(&r, 404);
    http_resp_free(&r);
    runs_fixture_clear(&f);
}

/* ---- direct calls: a store that is down, and the shared helpers ---- */

static int down_ping(struct store *s)
{
    (void)s;
    return STORE_EIO;
}

static int down_metrics(struct store *s, struct store_metrics *out)
{
    (void)s;
    (void)out;
    return STORE_EBUSY;
}

static int down_dataset_get(struct store *s, const char *id, unsigned flags,
                            struct store_dataset **out)
{
    (void)s;
    (void)id;
    (void)flags;
    *out = NULL;
    return STORE_EBUSY;
}

static int corrupt_run_get(struct store *s, const char *id, struct store_run **out)
{
    (void)s;
    (void)id;
    *out = NULL;
    return STORE_ECORRUPT;
}

static const struct store_ops down_ops = {.ping = down_ping,
                                          .metrics = down_metrics,
                                          .dataset_get = down_dataset_get,
                                          .run_get = corrupt_run_get};

static void direct_request(struct request *req, struct app *app, const char *path, const char *id)
{
    memset(req, 0, sizeof *req);
    req->method = "GET";
    req->path = path;
    req->app = app;
    if (id != NULL) {
        req->n_params = 1;
        req->params[0].name = "id";
        req->params[0].value = id;
    }
}

static void test_store_down(void **state)
{
    (void)state;
    struct store down = {.ops = &down_ops};
    struct app app;
    struct request req;
    struct reply rep;
    memset(&app, 0, sizeof app);
    assert_int_equal(app_init(&app), BASIN_OK);
    limits_defaults(&app.limits);
    app.store = &down;

    direct_request(&req, &app, "/readyz", NULL);
    reply_init(&rep, req.path);
    assert_int_equal(h_readyz(&req, &rep), 0);
    assert_int_equal(rep.status, 503);
    assert_non_null(reply_find_header(&rep, "Retry-After"));
    reply_clear(&rep);

    direct_request(&req, &app, "/healthz", NULL);
    assert_int_equal(h_healthz(&req, &rep), 0);
    assert_int_equal(rep.status, 200);
    reply_clear(&rep);

    /* metrics still answer, without the store's gauges */
    direct_request(&req, &app, "/metrics", NULL);
    assert_int_equal(h_metrics(&req, &rep), 0);
    assert_int_equal(rep.status, 200);
    char *text = strndup(rep.body, rep.body_len);
    assert_non_null(strstr(text, "\nbasinlab_store_up 0\n"));
    assert_null(strstr(text, "basinlab_queue_depth"));
    assert_non_null(strstr(text, "basinlab_http_requests_total "));
    free(text);
    reply_clear(&rep);

    /* busy → 503 + Retry-After; corrupt → 500 with a logged cause */
    direct_request(&req, &app, "/v1/datasets/ds_0123456789abcdef", "ds_0123456789abcdef");
    assert_int_equal(h_datasets_get(&req, &rep), 0);
    assert_int_equal(rep.status, 503);
    assert_non_null(reply_find_header(&rep, "Retry-After"));
    reply_clear(&rep);
    direct_request(&req, &app, "/v1/runs/run_0123456789abcdef", "run_0123456789abcdef");
    assert_int_equal(h_runs_get(&req, &rep), 0);
    assert_int_equal(rep.status, 500);
    assert_non_null(rep.log_cause);
    reply_clear(&rep);
    app_destroy(&app);
}

static void test_shared_helpers(void **state)
{
    (void)state;
    char buf[64];
    static const double values[] = {0.1,
                                    1.0 / 3.0,
                                    -2.5,
                                    1e-310,
                                    5e-324,
                                    1e300,
                                    -0.0,
                                    123456789012345678.0,
                                    1.7976931348623157e308,
                                    0.30000000000000004};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        size_t n = format_double(buf, sizeof buf, values[i]);
        assert_int_equal(n, strlen(buf));
        assert_true(n <= 24);
        assert_true(strtod(buf, NULL) == values[i]); /* round trip */
    }
    format_double(buf, sizeof buf, 0.1);
    assert_string_equal(buf, "0.1"); /* shortest, not 0.10000000000000001 */
    format_double(buf, sizeof buf, NAN);
    assert_string_equal(buf, "NaN");
    format_double(buf, sizeof buf, -INFINITY);
    assert_string_equal(buf, "-inf");

    json_t *t = view_time(1700000000123);
    assert_string_equal(json_string_value(t), "2023-11-14T22:13:20.123Z");
    json_decref(t);
    t = view_time(0);
    assert_true(json_is_null(t));
    json_decref(t);

    /* dropped spec errors are summarised in one more entry at "" */
    struct spec_error items[1] = {{"/a", "bad"}};
    struct spec_errors errs = {.items = items, .count = 1, .cap = 1, .dropped = 5};
    struct reply rep;
    reply_init(&rep, "/x");
    assert_int_equal(reply_spec_errors(&rep, 422, &errs), 0);
    assert_int_equal(rep.status, 422);
    json_t *body = json_loadb(rep.body, rep.body_len, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(body, "errors")), 2);
    assert_true(has_error(body, "/a", "bad"));
    assert_true(has_error(body, "", "5 more"));
    json_decref(body);
    reply_clear(&rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_endpoints),
        cmocka_unit_test(test_dataset_inline_roundtrip),
        cmocka_unit_test(test_dataset_generator),
        cmocka_unit_test(test_dataset_csv_upload),
        cmocka_unit_test(test_dataset_errors),
        cmocka_unit_test(test_teacher_dataset),
        cmocka_unit_test(test_pagination_and_etag),
        cmocka_unit_test(test_architectures_and_conflicts),
        cmocka_unit_test(test_run_view_and_params),
        cmocka_unit_test(test_trajectory),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_store_down),
        cmocka_unit_test(test_shared_helpers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
