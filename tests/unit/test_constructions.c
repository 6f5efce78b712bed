/* Tests of the paper's constructions and imported points through the service: the store
 * operation store_run_insert_finished (store_sqlite_finished.c), POST /v1/constructions and
 * POST /v1/evaluations (h_constructions.c, h_evaluations.c, imported.c, certificate_json.c) over
 * real HTTP on 127.0.0.1 (the full route table, a SQLite store in a temporary directory, one
 * worker thread, libcurl as the client), the `basinlab construct` / `basinlab certify` commands
 * (the built binary), and one small teacher–student experiment.
 *
 * Expected values come from the test's own closed forms, never from the code under test:
 * least-squares affine fits by the normal equations (1-D formulas, a 3×3 solve in 2-D), the
 * max–min formula of a CPWL spec evaluated directly, the squared loss ½(f − y)² summed by hand,
 * the network evaluated with basin_net_forward at the stored parameters, and the teacher's
 * closed-form risk (basin_teacher_risk_grad) at a run's stored end point. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "app.h"
#include "basin/net.h"
#include "basin/status.h"
#include "basin/teacher.h"
#include "handlers.h"
#include "http.h"
#include "http_client.h"
#include "limits.h"
#include "spec.h"
#include "spurious.h"
#include "store.h"
#include "worker.h"

/* ---- fixture: one server, store and worker for the whole group ---- */

static struct {
    char dir[64];
    char db[128];
    struct app app;
    struct http_server *srv;
    struct worker_pool *pool;
    uint16_t port;
    CURL *curl;
} g;

static void quiet_log(void *user, const char *msg)
{
    (void)user;
    (void)msg;
}

static int group_setup(void **state)
{
    (void)state;
    char err[256] = "";
    struct http_config cfg;
    struct worker_options wo;
    snprintf(g.dir, sizeof g.dir, "/tmp/basinlab_cons_XXXXXX");
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
    memset(&wo, 0, sizeof wo);
    wo.idle_poll_ms = 100;
    wo.log = quiet_log;
    if (worker_pool_start(&g.app, 1, &wo, &g.pool) != BASIN_OK)
        return -1;
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
    char cmd[160];
    curl_easy_cleanup(g.curl);
    curl_global_cleanup();
    http_server_stop(g.srv);
    worker_pool_stop(g.pool);
    store_close(g.app.store);
    app_destroy(&g.app);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- the client (http_client.h) ---- */

static void call(const char *method, const char *path, const char *body, struct http_resp *r)
{
    struct http_req q = {.method = method,
                         .path = path,
                         .content_type = "application/json",
                         .body = body,
                         .body_len = body != NULL ? strlen(body) : 0,
                         .headers = {"Expect:"},
                         .timeout_ms = 30000,
                         .parse_json = 1};
    assert_int_equal(http_request(g.curl, g.port, &q, r), CURLE_OK);
}

static void get(const char *path, struct http_resp *r)
{
    call("GET", path, NULL, r);
}

/* POST with a printf-formatted body. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static void
postf(const char *path, struct http_resp *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n > 0);
    char *body = malloc((size_t)n + 1);
    assert_non_null(body);
    va_start(ap, fmt);
    vsnprintf(body, (size_t)n + 1, fmt, ap);
    va_end(ap);
    call("POST", path, body, r);
    free(body);
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static double jnum(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

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

static void expect_status(const struct http_resp *r, long status)
{
    if (r->status != status)
        fprintf(stderr, "expected %ld, got %ld: %s\n", status, r->status, r->body ? r->body : "");
    assert_int_equal(r->status, status);
}

/* POST a record; copy its id. */
static void create_record(const char *path, const char *body, char id[STORE_ID_SIZE])
{
    struct http_resp r;
    call("POST", path, body, &r);
    expect_status(&r, 201);
    snprintf(id, STORE_ID_SIZE, "%s", jstr(r.json, "id"));
    http_resp_free(&r);
}

/* The stored end point of a run. */
static double *run_params(const char *run_id, size_t *n)
{
    char path[128];
    struct http_resp r;
    snprintf(path, sizeof path, "/v1/runs/%s/params", run_id);
    get(path, &r);
    expect_status(&r, 200);
    const json_t *arr = json_is_array(r.json) ? r.json : json_object_get(r.json, "params");
    assert_true(json_is_array(arr));
    *n = json_array_size(arr);
    double *p = malloc(*n * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < *n; i++)
        p[i] = json_number_value(json_array_get(arr, i));
    http_resp_free(&r);
    return p;
}

/* The architecture of a construction's answer as a net (parsed by the spec parser). */
static struct spec_arch *answer_arch(const json_t *answer)
{
    struct spec_errors errs;
    struct spec_arch *a = NULL;
    json_t *arch = json_deep_copy(json_object_get(answer, "architecture"));
    assert_non_null(arch);
    json_object_del(arch, "output_dim");
    json_object_del(arch, "param_count");
    spec_errors_init(&errs);
    assert_int_equal(spec_arch_parse(arch, &g.app.limits, &a, &errs), BASIN_OK);
    spec_errors_clear(&errs);
    json_decref(arch);
    return a;
}

/* ---- independent references ---- */

/* Σ_i ½(a x_i + b − y_i)² at the least-squares line through (x_i, y_i), i in idx[0..m). */
static double ls_line_sum(const double *x, const double *y, const size_t *idx, size_t m)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t k = 0; k < m; k++) {
        double xi = x[idx[k]], yi = y[idx[k]];
        sx += xi;
        sy += yi;
        sxx += xi * xi;
        sxy += xi * yi;
    }
    double det = (double)m * sxx - sx * sx, a = 0, b = sy / (double)m;
    if (fabs(det) > 1e-12 * fmax(1.0, sxx)) {
        a = ((double)m * sxy - sx * sy) / det;
        b = (sy - a * sx) / (double)m;
    }
    double s = 0;
    for (size_t k = 0; k < m; k++) {
        double r = a * x[idx[k]] + b - y[idx[k]];
        s += 0.5 * r * r;
    }
    return s;
}

/* Σ ½ r² at the least-squares plane y ≈ c0 + c1 x1 + c2 x2 (normal equations, Gauss). */
static double ls_plane_sum(const double (*x)[2], const double *y, const size_t *idx, size_t m)
{
    double A[3][4] = {{0}};
    for (size_t k = 0; k < m; k++) {
        double f[3] = {1.0, x[idx[k]][0], x[idx[k]][1]};
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++)
                A[i][j] += f[i] * f[j];
            A[i][3] += f[i] * y[idx[k]];
        }
    }
    for (int c = 0; c < 3; c++) {
        int p = c;
        for (int i = c + 1; i < 3; i++)
            if (fabs(A[i][c]) > fabs(A[p][c]))
                p = i;
        for (int j = 0; j < 4; j++) {
            double t = A[c][j];
            A[c][j] = A[p][j];
            A[p][j] = t;
        }
        assert_true(fabs(A[c][c]) > 1e-12);
        for (int i = 0; i < 3; i++) {
            if (i == c)
                continue;
            double f = A[i][c] / A[c][c];
            for (int j = c; j < 4; j++)
                A[i][j] -= f * A[c][j];
        }
    }
    double coef[3] = {A[0][3] / A[0][0], A[1][3] / A[1][1], A[2][3] / A[2][2]};
    double s = 0;
    for (size_t k = 0; k < m; k++) {
        double r = coef[0] + coef[1] * x[idx[k]][0] + coef[2] * x[idx[k]][1] - y[idx[k]];
        s += 0.5 * r * r;
    }
    return s;
}

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol)) {
        fprintf(stderr, "got %.17g, want %.17g (tolerance %g)\n", got, want, tol);
        fail();
    }
}

/* The 1-D dataset used by several tests: a V with a bump, so no line fits it. */
static const double V_X[] = {-3, -2, -1, -0.5, 0.5, 1, 2, 3.5};
static const double V_Y[] = {2.9, 2.1, 0.8, 0.45, 0.6, 1.1, 1.9, 3.3};
#define V_N 8
static const char V_DATASET[] =
    "{\"kind\":\"inline\",\"x\":[[-3],[-2],[-1],[-0.5],[0.5],[1],[2],[3.5]],"
    "\"y\":[2.9,2.1,0.8,0.45,0.6,1.1,1.9,3.3]}";
static const char NET_1_4_1[] =
    "{\"input_shape\":[1],\"layers\":[{\"type\":\"dense\",\"units\":4},"
    "{\"type\":\"activation\",\"kind\":\"relu\"},{\"type\":\"dense\",\"units\":1}]}";

/* ---- the store operation ---- */

static void test_store_insert_finished(void **state)
{
    (void)state;
    struct store *st = g.app.store;
    char ds[STORE_ID_SIZE], ar[STORE_ID_SIZE], ex[STORE_ID_SIZE], run[STORE_ID_SIZE];
    char key[STORE_KEY_SIZE];
    struct store_finished_run fr;
    struct store_run *r = NULL;
    struct store_experiment *e = NULL;
    struct store_event_list *ev = NULL;
    const double params[3] = {0.25, -1.5, 3.0};
    double *got = NULL;
    size_t n = 0;

    create_record("/v1/datasets", V_DATASET, ds);
    create_record("/v1/architectures",
                  "{\"input_shape\":[1],\"layers\":[{\"type\":\"dense\",\"units\":1}],"
                  "\"name\":\"line\"}",
                  ar);
    json_t *spec = json_pack("{s:s, s:s, s:s, s:f}", "dataset_id", ds, "architecture_id", ar,
                             "loss", "squared", "l2", 0.0);
    json_t *verdict = json_pack("{s:s}", "label", "likely_minimum");
    json_t *summary = json_pack("{s:s}", "origin", "imported");
    memset(&fr, 0, sizeof fr);
    fr.dataset_id = ds;
    fr.architecture_id = ar;
    fr.spec = spec;
    fr.summary = summary;
    fr.origin = STORE_ORIGIN_IMPORTED;
    fr.seed = 9;
    fr.steps = -1;
    fr.final_risk = 0.125;
    fr.grad_norm = 1e-12;
    fr.param_norm = 3.3634060117684275;
    fr.initial_risk = 0.5;
    fr.verdict = verdict;
    fr.verdict_label = "likely_minimum";
    fr.params = params;
    fr.n_params = 3;

    /* refusals write nothing */
    fr.origin = STORE_ORIGIN_TRAINED;
    assert_int_equal(store_run_insert_finished(st, &fr, ex, run), STORE_EINVAL);
    fr.origin = STORE_ORIGIN_IMPORTED;
    fr.dataset_id = "ds_0000000000000000";
    assert_int_equal(store_run_insert_finished(st, &fr, ex, run), STORE_ENOTFOUND);
    fr.dataset_id = ds;
    fr.params = NULL;
    assert_int_equal(store_run_insert_finished(st, &fr, ex, run), STORE_EINVAL);
    fr.params = params;
    struct store_experiment_list *before = NULL;
    assert_int_equal(store_experiment_list(st, -1, 1000, NULL, &before), STORE_OK);
    size_t n_before = before->n;
    store_experiment_list_free(before);

    assert_int_equal(store_run_insert_finished(st, &fr, ex, run), STORE_OK);
    assert_int_equal(strncmp(ex, "ex_", 3), 0);
    assert_int_equal(strncmp(run, "run_", 4), 0);

    assert_int_equal(store_experiment_get(st, ex, &e), STORE_OK);
    assert_int_equal(e->status, STORE_EXP_FINISHED);
    assert_true(e->finished_at_ms > 0);
    assert_int_equal(e->restarts, 1);
    assert_int_equal(e->progress.finished, 1);
    assert_int_equal(e->progress.queued + e->progress.running + e->progress.failed, 0);
    assert_string_equal(e->dataset_id, ds);
    assert_string_equal(e->architecture_id, ar);
    assert_string_equal(jstr(e->summary, "origin"), "imported");
    /* the key the store derived equals the handlers' (spurious_objective_key) */
    assert_int_equal(spurious_objective_key(spec, ds, ar, key, sizeof key), BASIN_OK);
    assert_string_equal(e->objective_key, key);

    assert_int_equal(store_run_get(st, run, &r), STORE_OK);
    assert_int_equal(r->status, STORE_RUN_FINISHED);
    assert_int_equal(r->origin, STORE_ORIGIN_IMPORTED);
    assert_string_equal(r->experiment_id, ex);
    assert_int_equal(r->index, 0);
    assert_int_equal(r->seed, 9);
    assert_int_equal(r->steps, -1);
    assert_null(r->stop_reason);
    assert_true(r->final_risk == 0.125 && r->initial_risk == 0.5 && r->grad_norm == 1e-12);
    assert_string_equal(r->verdict_label, "likely_minimum");
    assert_string_equal(jstr(r->verdict, "label"), "likely_minimum");
    assert_true(r->has_params);
    assert_int_equal(store_run_params_get(st, run, &got, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(got, params, sizeof params);
    free(got);

    /* the events a trained run would leave */
    assert_int_equal(store_events_since(st, ex, 0, 10, &ev), STORE_OK);
    assert_int_equal(ev->n, 2);
    assert_string_equal(ev->items[0].type, "run_finished");
    assert_string_equal(jstr(ev->items[0].data, "run_id"), run);
    assert_string_equal(jstr(ev->items[0].data, "verdict"), "likely_minimum");
    assert_string_equal(ev->items[1].type, "status");
    assert_string_equal(jstr(ev->items[1].data, "status"), "finished");

    struct store_experiment_list *after = NULL;
    assert_int_equal(store_experiment_list(st, -1, 1000, NULL, &after), STORE_OK);
    assert_int_equal(after->n, n_before + 1);
    store_experiment_list_free(after);

    store_event_list_free(ev);
    store_run_free(r);
    store_experiment_free(e);
    json_decref(spec);
    json_decref(verdict);
    json_decref(summary);
}

/* ---- linear-region minimum ---- */

static void test_linear_region_minimum(void **state)
{
    (void)state;
    char ds[STORE_ID_SIZE], path[128];
    struct http_resp r, d, run;
    size_t idx[V_N], n = 0;
    for (size_t i = 0; i < V_N; i++)
        idx[i] = i;
    double r_lin = ls_line_sum(V_X, V_Y, idx, V_N) / V_N;
    assert_true(r_lin > 0.1); /* the premise: no line fits */

    create_record("/v1/datasets", V_DATASET, ds);
    postf("/v1/constructions", &r,
          "{\"kind\":\"linear_region_minimum\",\"dataset_id\":\"%s\",\"architecture\":%s}", ds,
          NET_1_4_1);
    expect_status(&r, 201);
    const json_t *rv = json_object_get(r.json, "run");
    snprintf(path, sizeof path, "/v1/runs/%s", jstr(rv, "id"));
    assert_string_equal(http_header_or(&r, "Location", ""), path);

    /* the stored final risk is the dataset's R_lin, from the dataset record and from the
     * normal equations */
    snprintf(path, sizeof path, "/v1/datasets/%s", ds);
    get(path, &d);
    expect_status(&d, 200);
    double rec_lin = json_number_value(json_object_get(
        json_object_get(json_object_get(json_object_get(d.json, "linear_fit"), "loss"), "squared"),
        "risk"));
    get(http_header_or(&r, "Location", ""), &run);
    expect_status(&run, 200);
    assert_string_equal(jstr(run.json, "origin"), "construction");
    assert_string_equal(jstr(run.json, "status"), "finished");
    assert_close(jnum(run.json, "final_risk"), rec_lin, 1e-12);
    assert_close(jnum(run.json, "final_risk"), r_lin, 1e-12);
    assert_string_equal(jstr(run.json, "verdict_label"), "certified_minimum");
    assert_close(jnum(json_object_get(r.json, "construction"), "r_lin"), r_lin, 1e-12);

    /* every hidden pre-activation is positive at the stored θ (the all-active region), and the
     * net is the least-squares line on the data */
    double *th = run_params(jstr(rv, "id"), &n);
    assert_int_equal(n, 4 + 4 + 4 + 1);
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t i = 0; i < V_N; i++) {
        sx += V_X[i];
        sy += V_Y[i];
        sxx += V_X[i] * V_X[i];
        sxy += V_X[i] * V_Y[i];
    }
    double a = (V_N * sxy - sx * sy) / (V_N * sxx - sx * sx), b = (sy - a * sx) / V_N;
    for (size_t i = 0; i < V_N; i++) {
        double f = th[12];
        for (size_t u = 0; u < 4; u++) {
            double pre = th[u] * V_X[i] + th[4 + u];
            assert_true(pre > 0);
            f += th[8 + u] * pre;
        }
        assert_close(f, a * V_X[i] + b, 1e-9);
    }
    free(th);
    http_resp_free(&run);
    http_resp_free(&d);
    http_resp_free(&r);

    /* a maxpool layer has no linear-region minimum: 422 at that layer */
    postf("/v1/constructions", &r,
          "{\"kind\":\"linear_region_minimum\",\"dataset\":{\"kind\":\"generator\","
          "\"generator\":{\"name\":\"bars_stripes\",\"n\":8,\"image_size\":4,\"seed\":1}},"
          "\"architecture\":{\"input_shape\":[1,4,4],\"layers\":[{\"type\":\"conv2d\",\"filters\":"
          "2,\"kernel\":2},"
          "{\"type\":\"activation\",\"kind\":\"relu\"},{\"type\":\"maxpool\",\"size\":3},"
          "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":1}]}}");
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/architecture/layers/2", NULL));
    http_resp_free(&r);
}

/* ---- CPWL compiler ---- */

static void test_cpwl(void **state)
{
    (void)state;
    /* f(x) = max(min(x1 + 0.5, −x1 + x2), min(0.25 x2 − 1, 2 − x1, x1 − x2 + 0.3)) */
    static const double A[5][2] = {{1, 0}, {-1, 1}, {0, 0.25}, {-1, 0}, {1, -1}};
    static const double B[5] = {0.5, 0, -1, 2, 0.3};
    static const double X[6][2] = {{0, 0}, {1, -1}, {-2, 0.5}, {0.3, 2}, {2.5, 1}, {-1, -3}};
    static const double Y[6] = {0.1, -0.4, 0.7, 1.2, 0.2, -0.9};
    struct http_resp r, run;
    basin_net_ws *ws = NULL;
    double out[6], f[6], risk = 0;
    size_t n = 0;

    postf("/v1/constructions", &r,
          "{\"kind\":\"cpwl\",\"dataset\":{\"kind\":\"inline\",\"x\":[[0,0],[1,-1],[-2,0.5],"
          "[0.3,2],[2.5,1],[-1,-3]],\"y\":[0.1,-0.4,0.7,1.2,0.2,-0.9]},"
          "\"pieces\":[{\"a\":[1,0],\"b\":0.5},{\"a\":[-1,1],\"b\":0},{\"a\":[0,0.25],\"b\":-1},"
          "{\"a\":[-1,0],\"b\":2},{\"a\":[1,-1],\"b\":0.3}],\"sets\":[[0,1],[2,3,4]]}");
    expect_status(&r, 201);
    const char *run_id = jstr(json_object_get(r.json, "run"), "id");
    struct spec_arch *arch = answer_arch(r.json);
    double *th = run_params(run_id, &n);
    assert_int_equal(n, basin_net_param_count(arch->net));
    assert_int_equal(basin_net_ws_create(arch->net, 6, &ws), BASIN_OK);
    assert_int_equal(basin_net_forward(arch->net, ws, th, &X[0][0], 6, out), BASIN_OK);
    for (size_t i = 0; i < 6; i++) {
        double v[5];
        for (size_t j = 0; j < 5; j++)
            v[j] = A[j][0] * X[i][0] + A[j][1] * X[i][1] + B[j];
        double t0 = fmin(v[0], v[1]), t1 = fmin(v[2], fmin(v[3], v[4]));
        f[i] = fmax(t0, t1);
        assert_close(out[i], f[i], 1e-12 * fmax(1.0, fabs(f[i])));
        risk += 0.5 * (f[i] - Y[i]) * (f[i] - Y[i]);
    }
    risk /= 6;
    char path[128];
    snprintf(path, sizeof path, "/v1/runs/%s", run_id);
    get(path, &run);
    expect_status(&run, 200);
    assert_close(jnum(run.json, "final_risk"), risk, 1e-12);
    assert_close(jnum(r.json, "risk"), risk, 1e-12);
    assert_string_equal(jstr(run.json, "origin"), "construction");
    /* the report's depths: ⌈log2 3⌉ = 2 min stages and ⌈log2 2⌉ = 1 max stage */
    const json_t *rep = json_object_get(r.json, "construction");
    assert_int_equal(json_integer_value(json_object_get(rep, "min_depth")), 2);
    assert_int_equal(json_integer_value(json_object_get(rep, "max_depth")), 1);
    assert_int_equal(arch->arch.n_layers, 2 * 3 + 1);
    http_resp_free(&run);
    basin_net_ws_free(ws);
    spec_arch_free(arch);
    free(th);
    http_resp_free(&r);

    /* malformed specs: every field pointed at */
    postf("/v1/constructions", &r,
          "{\"kind\":\"cpwl\",\"dataset\":{\"kind\":\"inline\",\"x\":[[0,0]],\"y\":[1]},"
          "\"pieces\":[{\"a\":[1,0],\"b\":0},{\"a\":[1],\"b\":\"x\"}],\"sets\":[[0,5],[]]}");
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/pieces/1/a", "piece 0 has 2"));
    assert_true(has_error(r.json, "/pieces/1/b", NULL));
    assert_true(has_error(r.json, "/sets/1", NULL));
    http_resp_free(&r);
    postf("/v1/constructions", &r,
          "{\"kind\":\"cpwl\",\"dataset\":{\"kind\":\"inline\",\"x\":[[0,0]],\"y\":[1]},"
          "\"pieces\":[{\"a\":[1,0],\"b\":0}],\"sets\":[[0,5]]}");
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/sets/0/1", NULL));
    http_resp_free(&r);
    /* pieces of the wrong input size for the dataset */
    postf("/v1/constructions", &r,
          "{\"kind\":\"cpwl\",\"dataset\":{\"kind\":\"inline\",\"x\":[[0,0,1]],\"y\":[1]},"
          "\"pieces\":[{\"a\":[1,0],\"b\":0}],\"sets\":[[0]]}");
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/pieces/0/a", "inputs have 3"));
    http_resp_free(&r);
}

/* ---- group fit ---- */

static void test_group_fit(void **state)
{
    (void)state;
    char ds[STORE_ID_SIZE], ar[STORE_ID_SIZE], path[128];
    struct http_resp r, run;
    /* breakpoints 0 and 1.5 split V into {−3,−2,−1,−0.5}, {0.5,1}, {2,3.5} */
    static const size_t g0[] = {0, 1, 2, 3}, g1[] = {4, 5}, g2[] = {6, 7};
    double want = (ls_line_sum(V_X, V_Y, g0, 4) + ls_line_sum(V_X, V_Y, g1, 2) +
                   ls_line_sum(V_X, V_Y, g2, 2)) /
                  V_N;
    create_record("/v1/datasets", V_DATASET, ds);
    postf("/v1/constructions", &r,
          "{\"kind\":\"group_fit\",\"dataset_id\":\"%s\",\"breakpoints\":[0,1.5]}", ds);
    expect_status(&r, 201);
    snprintf(path, sizeof path, "/v1/runs/%s", jstr(json_object_get(r.json, "run"), "id"));
    get(path, &run);
    expect_status(&run, 200);
    assert_close(jnum(run.json, "final_risk"), want, 1e-12);
    assert_string_equal(jstr(run.json, "verdict_label"), "certified_minimum");
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(r.json, "construction"), "groups")), 3);
    http_resp_free(&run);
    http_resp_free(&r);

    /* the same partition as labels gives the same risk */
    postf("/v1/constructions", &r,
          "{\"kind\":\"group_fit\",\"dataset_id\":\"%s\",\"groups\":[0,0,0,0,1,1,2,2]}", ds);
    expect_status(&r, 201);
    assert_close(jnum(json_object_get(r.json, "run"), "final_risk"), want, 1e-12);
    http_resp_free(&r);

    /* embedded in a wider given architecture: same risk, same architecture record */
    create_record("/v1/architectures", NET_1_4_1, ar);
    postf("/v1/constructions", &r,
          "{\"kind\":\"group_fit\",\"dataset_id\":\"%s\",\"architecture_id\":\"%s\","
          "\"breakpoints\":[0]}",
          ds, ar);
    expect_status(&r, 201);
    static const size_t h0[] = {0, 1, 2, 3}, h1[] = {4, 5, 6, 7};
    assert_close(jnum(json_object_get(r.json, "run"), "final_risk"),
                 (ls_line_sum(V_X, V_Y, h0, 4) + ls_line_sum(V_X, V_Y, h1, 4)) / V_N, 1e-12);
    assert_string_equal(jstr(r.json, "architecture_id"), ar);
    http_resp_free(&r);
    postf("/v1/constructions", &r,
          "{\"kind\":\"group_fit\",\"dataset_id\":\"%s\",\"architecture_id\":\"%s\","
          "\"breakpoints\":[-2.5,0,1.5]}",
          ds, ar);
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/architecture_id", "hidden units"));
    http_resp_free(&r);

    /* a 2-D lattice partition: group g is where its plane is the larger one */
    static const double X2[8][2] = {{-2, 0},   {-1, 1},  {-1.5, -1}, {-0.5, 0.5},
                                    {0.5, -1}, {1, 0.5}, {2, 1},     {1.5, -0.5}};
    static const double Y2[8] = {2.1, 0.9, 1.6, 0.4, 0.45, 1.05, 2.2, 1.4};
    static const size_t q0[] = {0, 1, 2, 3}, q1[] = {4, 5, 6, 7};
    postf("/v1/constructions", &r,
          "{\"kind\":\"group_fit\",\"dataset\":{\"kind\":\"inline\",\"x\":[[-2,0],[-1,1],"
          "[-1.5,-1],[-0.5,0.5],[0.5,-1],[1,0.5],[2,1],[1.5,-0.5]],\"y\":[2.1,0.9,1.6,0.4,0.45,"
          "1.05,2.2,1.4]},\"groups\":[0,0,0,0,1,1,1,1]}");
    expect_status(&r, 201);
    assert_string_equal(jstr(json_object_get(r.json, "construction"), "method"), "lattice");
    assert_close(jnum(json_object_get(r.json, "run"), "final_risk"),
                 (ls_plane_sum(X2, Y2, q0, 4) + ls_plane_sum(X2, Y2, q1, 4)) / 8, 1e-12);
    http_resp_free(&r);

    /* impossible partitions */
    postf("/v1/constructions", &r,
          "{\"kind\":\"group_fit\",\"dataset\":{\"kind\":\"inline\",\"x\":[[-1],[0],[1]],"
          "\"y\":[1.5,0.25,1.5]},\"groups\":[0,1,0]}");
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/groups", "impossible partition"));
    http_resp_free(&r);
    postf("/v1/constructions", &r,
          "{\"kind\":\"group_fit\",\"dataset_id\":\"%s\",\"breakpoints\":[1]}", ds);
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/breakpoints", NULL));
    http_resp_free(&r);
    postf("/v1/constructions", &r,
          "{\"kind\":\"group_fit\",\"dataset_id\":\"%s\",\"groups\":[0,1,0]}", ds);
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/groups", "8 samples"));
    http_resp_free(&r);
    postf("/v1/constructions", &r,
          "{\"kind\":\"group_fit\",\"dataset_id\":\"%s\",\"groups\":[0,2,0,2,0,2,0,2]}", ds);
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/groups", "group 1 has no sample"));
    http_resp_free(&r);
    /* shared validation: unknown kind, unknown field, unknown dataset id */
    postf("/v1/constructions", &r, "{\"kind\":\"spline\",\"dataset_id\":\"%s\"}", ds);
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/kind", NULL));
    http_resp_free(&r);
    postf("/v1/constructions", &r,
          "{\"kind\":\"group_fit\",\"dataset_id\":\"%s\",\"breakpoints\":[0],\"pieces\":[]}", ds);
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/pieces", "unknown field"));
    http_resp_free(&r);
    postf("/v1/constructions", &r,
          "{\"kind\":\"group_fit\",\"dataset_id\":\"ds_0000000000000000\",\"breakpoints\":[0]}");
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/dataset_id", "no dataset"));
    http_resp_free(&r);
}

/* ---- evaluations ---- */

static void test_evaluations(void **state)
{
    (void)state;
    char ds[STORE_ID_SIZE], ar[STORE_ID_SIZE], path[128];
    struct http_resp r, run;
    const double w = 0.3, b = 1.1;
    double risk = 0, gw = 0, gb = 0;
    for (size_t i = 0; i < V_N; i++) {
        double res = w * V_X[i] + b - V_Y[i];
        risk += 0.5 * res * res;
        gw += res * V_X[i];
        gb += res;
    }
    risk /= V_N;
    gw /= V_N;
    gb /= V_N;

    create_record("/v1/datasets", V_DATASET, ds);
    create_record("/v1/architectures",
                  "{\"input_shape\":[1],\"layers\":[{\"type\":\"dense\","
                  "\"units\":1}]}",
                  ar);
    postf("/v1/evaluations", &r,
          "{\"dataset_id\":\"%s\",\"architecture_id\":\"%s\",\"params\":[0.3,1.1,7]}", ds, ar);
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/params", "has 3 values; the architecture has 2 parameters"));
    http_resp_free(&r);

    postf("/v1/evaluations", &r,
          "{\"dataset_id\":\"%s\",\"architecture_id\":\"%s\",\"params\":[0.3,1.1]}", ds, ar);
    expect_status(&r, 201);
    assert_close(jnum(r.json, "risk"), risk, 1e-14);
    assert_close(jnum(r.json, "grad_norm"), sqrt(gw * gw + gb * gb), 1e-14);
    /* not stationary: the verdict says so */
    assert_string_equal(jstr(json_object_get(r.json, "verdict"), "label"), "not_converged");
    const char *run_id = jstr(json_object_get(r.json, "run"), "id");
    snprintf(path, sizeof path, "/v1/runs/%s", run_id);
    assert_string_equal(http_header_or(&r, "Location", ""), path);
    get(path, &run);
    expect_status(&run, 200);
    assert_string_equal(jstr(run.json, "origin"), "imported");
    assert_string_equal(jstr(run.json, "status"), "finished");
    assert_close(jnum(run.json, "final_risk"), risk, 1e-14);
    size_t n = 0;
    double *th = run_params(run_id, &n);
    assert_int_equal(n, 2);
    assert_true(th[0] == w && th[1] == b);
    free(th);
    http_resp_free(&run);
    http_resp_free(&r);

    /* with l2 the risk has the weight-decay term (l2/2)‖θ‖² */
    postf("/v1/evaluations", &r,
          "{\"dataset_id\":\"%s\",\"architecture_id\":\"%s\",\"l2\":0.5,\"params\":[0.3,1.1]}", ds,
          ar);
    expect_status(&r, 201);
    assert_close(jnum(r.json, "risk"), risk + 0.25 * (w * w + b * b), 1e-14);
    http_resp_free(&r);

    /* spurious with a witness: the linear-region minimum of 1-4-1 against an exact V fit of
     * the same architecture record (f = relu(x) + relu(−x) on data y = |x|) */
    char vds[STORE_ID_SIZE], vnet[STORE_ID_SIZE];
    create_record("/v1/datasets",
                  "{\"kind\":\"inline\",\"x\":[[-2],[-1],[-0.5],[0.5],[1.5],[2.5]],"
                  "\"y\":[2,1,0.5,0.5,1.5,2.5]}",
                  vds);
    create_record("/v1/architectures", NET_1_4_1, vnet);
    postf("/v1/constructions", &r,
          "{\"kind\":\"linear_region_minimum\",\"dataset_id\":\"%s\",\"architecture_id\":\"%s\"}",
          vds, vnet);
    expect_status(&r, 201);
    char lr_run[STORE_ID_SIZE];
    snprintf(lr_run, sizeof lr_run, "%s", jstr(json_object_get(r.json, "run"), "id"));
    http_resp_free(&r);
    postf("/v1/evaluations", &r,
          "{\"dataset_id\":\"%s\",\"architecture_id\":\"%s\",\"params\":[1,-1,1,1, 0,0,-1,-1, "
          "1,1,0,0, 0]}",
          vds, vnet);
    expect_status(&r, 201);
    assert_close(jnum(r.json, "risk"), 0.0, 1e-30);
    char exact_run[STORE_ID_SIZE];
    snprintf(exact_run, sizeof exact_run, "%s", jstr(json_object_get(r.json, "run"), "id"));
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/runs/%s", lr_run);
    get(path, &run);
    expect_status(&run, 200);
    const json_t *sp = json_object_get(run.json, "spurious");
    assert_true(json_is_true(json_object_get(sp, "flag")));
    assert_string_equal(jstr(sp, "witness_run_id"), exact_run);
    assert_string_equal(jstr(run.json, "verdict_label"), "certified_minimum");
    http_resp_free(&run);

    /* teacher_gaussian: the closed-form risk. With one student row on e1 and the other dead,
     * F = ½κ(e1,e1) − κ(e1,e1) − κ(e1,e2) + ½(κ(e1,e1) + κ(e2,e2) + 2κ(e1,e2)) = ¼ (κ(v,v) = ½
     * for a unit v); the student equal to the teacher is at F = 0 */
    static const char teacher_body[] =
        "{\"dataset\":{\"kind\":\"teacher_gaussian\",\"k\":2,\"d\":2},\"architecture\":"
        "{\"input_shape\":[2],\"layers\":[{\"type\":\"dense\",\"units\":2,\"bias\":false},"
        "{\"type\":\"activation\",\"kind\":\"relu\"},{\"type\":\"sum\"}]},"
        "\"params\":%s}";
    postf("/v1/evaluations", &r, teacher_body, "[1,0,0,0]");
    expect_status(&r, 201);
    assert_close(jnum(r.json, "risk"), 0.25, 1e-15);
    assert_string_equal(jstr(json_object_get(r.json, "run"), "origin"), "imported");
    assert_true(json_is_object(json_object_get(r.json, "verdict")));
    http_resp_free(&r);
    postf("/v1/evaluations", &r, teacher_body, "[1,0,0,1]");
    expect_status(&r, 201);
    assert_close(jnum(r.json, "risk"), 0.0, 1e-15);
    assert_close(jnum(r.json, "grad_norm"), 0.0, 1e-15);
    const char *label = jstr(json_object_get(r.json, "verdict"), "label");
    assert_non_null(label);
    assert_true(strcmp(label, "certified_minimum") == 0 || strcmp(label, "likely_minimum") == 0);
    http_resp_free(&r);
    /* but constructions need samples */
    postf("/v1/constructions", &r,
          "{\"kind\":\"group_fit\",\"dataset\":{\"kind\":\"teacher_gaussian\",\"k\":2,"
          "\"d\":2},\"breakpoints\":[0]}");
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/dataset", "teacher_gaussian"));
    http_resp_free(&r);
    /* certify options are validated */
    postf("/v1/evaluations", &r,
          "{\"dataset_id\":\"%s\",\"architecture_id\":\"%s\",\"params\":[0.3,1.1],"
          "\"certify\":{\"probes\":1000,\"radii\":[0.1,-1],\"colour\":1}}",
          ds, ar);
    expect_status(&r, 422);
    assert_true(has_error(r.json, "/certify/probes", NULL));
    assert_true(has_error(r.json, "/certify/radii/1", NULL));
    assert_true(has_error(r.json, "/certify/colour", "unknown field"));
    http_resp_free(&r);
}

/* ---- the CLI ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Run the binary with args; stdout and stderr into files; the exit status. */
static int run_cli(const char *args, char **out, char **err)
{
    char cmd[2048], o[128], e[128];
    snprintf(o, sizeof o, "%s/cli.out", g.dir);
    snprintf(e, sizeof e, "%s/cli.err", g.dir);
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s' 2> '%s'", BASINLAB_BINARY, args, o, e);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    *out = read_file(o);
    *err = read_file(e);
    return WEXITSTATUS(st);
}

static void test_cli(void **state)
{
    (void)state;
    char spec[128], params[128], bad[128], args[512];
    char *out = NULL, *err = NULL;
    static const size_t g0[] = {0, 1, 2, 3}, g1[] = {4, 5, 6, 7};

    snprintf(spec, sizeof spec, "%s/construct.json", g.dir);
    write_file(spec, "{\"kind\":\"group_fit\",\"dataset\":{\"kind\":\"inline\",\"x\":[[-3],[-2],"
                     "[-1],[-0.5],[0.5],[1],[2],[3.5]],\"y\":[2.9,2.1,0.8,0.45,0.6,1.1,1.9,3.3]},"
                     "\"breakpoints\":[0]}");
    snprintf(args, sizeof args, "construct --spec '%s'", spec);
    assert_int_equal(run_cli(args, &out, &err), 0);
    json_t *doc = json_loads(out, 0, NULL);
    assert_non_null(doc);
    assert_close(jnum(doc, "risk"),
                 (ls_line_sum(V_X, V_Y, g0, 4) + ls_line_sum(V_X, V_Y, g1, 4)) / V_N, 1e-12);
    assert_string_equal(jstr(json_object_get(doc, "verdict"), "label"), "certified_minimum");
    assert_true(json_is_array(json_object_get(doc, "params")));
    json_decref(doc);
    free(out);
    free(err);

    /* invalid spec: exit 2, nothing on stdout, pointers on stderr */
    snprintf(bad, sizeof bad, "%s/bad.json", g.dir);
    write_file(bad, "{\"kind\":\"group_fit\",\"dataset_id\":\"ds_1\",\"breakpoints\":[\"x\"]}");
    snprintf(args, sizeof args, "construct --spec '%s'", bad);
    assert_int_equal(run_cli(args, &out, &err), 2);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "/breakpoints/0: must be a finite number"));
    free(out);
    free(err);
    write_file(bad, "{\"kind\":\"group_fit\",\"dataset_id\":\"ds_1\",\"breakpoints\":[0]}");
    assert_int_equal(run_cli(args, &out, &err), 2);
    assert_non_null(strstr(err, "/dataset_id:"));
    free(out);
    free(err);
    assert_int_equal(run_cli("construct", &out, &err), 2);
    free(out);
    free(err);

    /* certify: a line on the V data, params as an array and as `train --params` output */
    snprintf(spec, sizeof spec, "%s/exp.json", g.dir);
    write_file(spec, "{\"dataset\":{\"kind\":\"inline\",\"x\":[[-3],[-2],[-1],[-0.5],[0.5],[1],"
                     "[2],[3.5]],\"y\":[2.9,2.1,0.8,0.45,0.6,1.1,1.9,3.3]},\"architecture\":"
                     "{\"layers\":[{\"type\":\"dense\",\"units\":1}]},\"restarts\":2}");
    snprintf(params, sizeof params, "%s/params.json", g.dir);
    write_file(params, "[0.3, 1.1]");
    snprintf(args, sizeof args, "certify --spec '%s' --params '%s'", spec, params);
    assert_int_equal(run_cli(args, &out, &err), 0);
    doc = json_loads(out, 0, NULL);
    assert_non_null(doc);
    double risk = 0;
    for (size_t i = 0; i < V_N; i++)
        risk += 0.5 * (0.3 * V_X[i] + 1.1 - V_Y[i]) * (0.3 * V_X[i] + 1.1 - V_Y[i]);
    assert_close(jnum(doc, "risk"), risk / V_N, 1e-14);
    assert_string_equal(jstr(json_object_get(doc, "verdict"), "label"), "not_converged");
    json_decref(doc);
    free(out);
    free(err);

    write_file(params, "[0.3, 1.1, 5]");
    assert_int_equal(run_cli(args, &out, &err), 2);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "has 3 values; the architecture has 2 parameters"));
    free(out);
    free(err);

    write_file(params, "{\"runs\":[{\"restart\":0,\"params\":[0.3,1.1]},"
                       "{\"restart\":1,\"params\":[0,1.5]}]}");
    assert_int_equal(run_cli(args, &out, &err), 2);
    assert_non_null(strstr(err, "--restart"));
    free(out);
    free(err);
    snprintf(args, sizeof args, "certify --spec '%s' --params '%s' --restart 1", spec, params);
    assert_int_equal(run_cli(args, &out, &err), 0);
    doc = json_loads(out, 0, NULL);
    assert_non_null(doc);
    risk = 0;
    for (size_t i = 0; i < V_N; i++)
        risk += 0.5 * (1.5 - V_Y[i]) * (1.5 - V_Y[i]);
    assert_close(jnum(doc, "risk"), risk / V_N, 1e-14);
    json_decref(doc);
    free(out);
    free(err);
    snprintf(args, sizeof args, "certify --spec '%s' --params '%s' --restart 7", spec, params);
    assert_int_equal(run_cli(args, &out, &err), 2);
    assert_non_null(strstr(err, "no run has restart 7"));
    free(out);
    free(err);
}

/* ---- teacher–student through the worker ---- */

static void test_teacher_experiment(void **state)
{
    (void)state;
    struct http_resp r, runs;
    char path[256];
    basin_teacher *t = NULL;

    postf("/v1/experiments", &r,
          "{\"dataset\":{\"kind\":\"teacher_gaussian\",\"k\":6,\"d\":6,\"teacher\":\"identity\"},"
          "\"architecture\":{\"input_shape\":[6],\"layers\":[{\"type\":\"dense\",\"units\":6,"
          "\"bias\":false},{\"type\":\"activation\",\"kind\":\"relu\"},{\"type\":\"sum\"}]},"
          "\"optimizer\":{\"kind\":\"gd\",\"lr\":0.5},\"init\":{\"kind\":\"normal\","
          "\"std\":0.408248},\"restarts\":4,\"seed\":1,\"max_steps\":20000,"
          "\"stop\":{\"grad_tol\":1e-9},\"trajectory_every\":0}");
    expect_status(&r, 202);
    snprintf(path, sizeof path, "%s", http_header_or(&r, "Location", ""));
    http_resp_free(&r);
    const char *status = NULL;
    for (int i = 0; i < 300; i++) { /* at most 30 s */
        get(path, &r);
        expect_status(&r, 200);
        status = jstr(r.json, "status");
        int done = status && strcmp(status, "finished") == 0;
        http_resp_free(&r);
        if (done)
            break;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    get(path, &r);
    assert_string_equal(jstr(r.json, "status"), "finished");
    http_resp_free(&r);

    /* every run: the stored risk and stationarity agree with the closed form at its end point */
    assert_int_equal(basin_teacher_create_identity(6, 6, &t), BASIN_OK);
    snprintf(path + strlen(path), sizeof path - strlen(path), "/runs?limit=10");
    get(path, &runs);
    expect_status(&runs, 200);
    const json_t *items = json_object_get(runs.json, "items");
    assert_int_equal(json_array_size(items), 4);
    for (size_t i = 0; i < 4; i++) {
        const json_t *run = json_array_get(items, i);
        size_t n = 0;
        double grad[36], F = 0, g2 = 0;
        assert_string_equal(jstr(run, "status"), "finished");
        double *th = run_params(jstr(run, "id"), &n);
        assert_int_equal(n, 36);
        assert_int_equal(basin_teacher_risk_grad(t, 6, th, &F, grad), BASIN_OK);
        for (size_t k = 0; k < 36; k++)
            g2 += grad[k] * grad[k];
        assert_close(jnum(run, "final_risk"), F, 1e-12);
        assert_true(sqrt(g2) <= 1.5e-9);
        assert_string_equal(jstr(run, "stop_reason"), "grad_tol");
        free(th);
    }
    basin_teacher_free(t);
    http_resp_free(&runs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_insert_finished),
        cmocka_unit_test(test_linear_region_minimum),
        cmocka_unit_test(test_cpwl),
        cmocka_unit_test(test_group_fit),
        cmocka_unit_test(test_evaluations),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_teacher_experiment),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
