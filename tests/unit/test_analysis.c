/* Tests of the analysis endpoints (h_analysis.c, analysis.c, spurious.c) and the store operations
 * behind them (store_sqlite_analysis.c, 0002_objective_key.sql) over real HTTP: the full route
 * table served on 127.0.0.1 with an ephemeral port, a real SQLite store in a temporary
 * directory, runs written through the store directly (claim + finish with hand-set end points,
 * risks, stop reasons and labels), libcurl as the client.
 *
 * Expected values are independent of the code under test: risks and parameters set by hand
 * (the XOR end points below have risks 0 and 1/8 by hand computation), gaps as the test's own
 * subtraction, Wilson intervals from the formula written out here, basin_compare and the net's
 * forward pass called directly, kinks at −b/w, |x0 − x1| for the 2-D net, and objective keys
 * compared between the C writer and the SQL derivation. */
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
#include <sqlite3.h>

#include "analysis.h"
#include "app.h"
#include "basin/basins.h"
#include "basin/net.h"
#include "basin/status.h"
#include "handlers.h"
#include "http.h"
#include "http_client.h"
#include "limits.h"
#include "migrate.h"
#include "spurious.h"
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

static void remove_db(const char *base)
{
    char path[256];
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s%s", base, suffix[i]);
        unlink(path);
    }
}

static int group_setup(void **state)
{
    (void)state;
    char err[256] = "";
    struct http_config cfg;
    snprintf(g.dir, sizeof g.dir, "/tmp/basinlab_anl_XXXXXX");
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
    curl_easy_cleanup(g.curl);
    curl_global_cleanup();
    http_server_stop(g.srv);
    store_close(g.app.store);
    app_destroy(&g.app);
    analysis_cache_clear();
    remove_db(g.db);
    rmdir(g.dir);
    return 0;
}

/* ---- the client (http_client.h) ---- */

static void call(const char *method, const char *path, const char *body, struct http_resp *r)
{
    struct http_req q = http_req_json(method, path, body);
    q.headers[0] = "Expect:";
    q.timeout_ms = 15000;
    q.parse_json = 1;
    assert_int_equal(http_request(g.curl, g.port, &q, r), CURLE_OK);
}

static void getf(struct http_resp *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void getf(struct http_resp *r, const char *fmt, ...)
{
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    call("GET", path, NULL, r);
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

static void assert_problem(const struct http_resp *r, long status)
{
    char ct[128];
    if (r->status != status)
        fprintf(stderr, "expected %ld, got %ld: %s\n", status, r->status, r->body ? r->body : "");
    assert_int_equal(r->status, status);
    assert_true(http_header_copy(r, "Content-Type", ct, sizeof ct));
    assert_string_equal(ct, "application/problem+json");
    assert_non_null(r->json);
    assert_int_equal(jint(r->json, "status"), status);
}

static void assert_ok(const struct http_resp *r)
{
    if (r->status != 200)
        fprintf(stderr, "unexpected %ld: %s\n", r->status, r->body ? r->body : "");
    assert_int_equal(r->status, 200);
    assert_non_null(r->json);
}

static int detail_has(const struct http_resp *r, const char *s)
{
    const char *d = jstr(r->json, "detail");
    return d != NULL && strstr(d, s) != NULL;
}

/* ---- records written through the API and the store ---- */

static void create(const char *path, const char *body, char id[STORE_ID_SIZE])
{
    struct http_resp r;
    call("POST", path, body, &r);
    if (r.status != 201)
        fprintf(stderr, "create %s: %ld %s\n", path, r.status, r.body ? r.body : "");
    assert_int_equal(r.status, 201);
    snprintf(id, STORE_ID_SIZE, "%s", jstr(r.json, "id"));
    http_resp_free(&r);
}

static const char xor_dataset[] =
    "{\"kind\": \"inline\", \"x\": [[0, 0], [0, 1], [1, 0], [1, 1]], \"y\": [0, 1, 1, 0]}";
static const char arch_221[] =
    "{\"input_shape\": [2], \"layers\": [{\"type\": \"dense\", \"units\": 2},"
    " {\"type\": \"activation\", \"kind\": \"relu\"}, {\"type\": \"dense\", \"units\": 1}]}";

/* An experiment with n runs. extra: more spec members as JSON text ("" for none), e.g.
 * "\"loss\": \"squared\"". key_from_c: pass the C objective key (else the store derives it). */
static void new_experiment(const char *ds, const char *ar, const char *extra, int64_t n,
                           int key_from_c, char id[STORE_ID_SIZE])
{
    char text[1024];
    char key[STORE_KEY_SIZE];
    struct store_experiment_new e;
    int existed = 0;
    json_error_t jerr;
    snprintf(text, sizeof text, "{\"dataset_id\": \"%s\", \"architecture_id\": \"%s\"%s%s}", ds, ar,
             extra[0] ? ", " : "", extra);
    memset(&e, 0, sizeof e);
    e.spec = json_loads(text, 0, &jerr);
    assert_non_null(e.spec);
    e.dataset_id = ds;
    e.architecture_id = ar;
    e.restarts = n;
    e.seed = 1;
    if (key_from_c) {
        assert_int_equal(spurious_objective_key(e.spec, ds, ar, key, sizeof key), BASIN_OK);
        e.objective_key = key;
    }
    assert_int_equal(store_experiment_create(g.app.store, &e, id, &existed), STORE_OK);
    json_decref(e.spec);
}

/* The outcome of one run. */
struct outcome {
    enum store_run_status status; /* FINISHED or FAILED; QUEUED/RUNNING: left running */
    double risk;
    const char *stop;
    const char *label;
    const double *params; /* NULL: none */
    size_t n_params;
};

/* Claims every run of experiment ex (which must be the only one with queued runs) and reports
 * the outcomes in restart order; run ids into ids[]. */
static void run_all(const char *ex, const struct outcome *out, size_t n, char ids[][STORE_ID_SIZE])
{
    struct store_claim *c = NULL;
    assert_int_equal(store_claim_runs(g.app.store, "w-test", n, &c), STORE_OK);
    assert_non_null(c);
    assert_string_equal(c->experiment_id, ex);
    assert_int_equal(c->n_runs, n);
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], STORE_ID_SIZE, "%s", c->runs[i].id);
        if (out[i].status != STORE_RUN_FINISHED && out[i].status != STORE_RUN_FAILED)
            continue;
        struct store_run_result res;
        memset(&res, 0, sizeof res);
        res.run_id = c->runs[i].id;
        res.token = c->token;
        res.status = out[i].status;
        res.steps = 10;
        res.stop_reason = out[i].stop;
        res.initial_risk = 1.0;
        res.final_risk = out[i].status == STORE_RUN_FINISHED ? out[i].risk : NAN;
        res.grad_norm = 1e-9;
        res.param_norm = 1.0;
        res.verdict_label = out[i].label;
        res.params = out[i].params;
        res.n_params = out[i].params != NULL ? out[i].n_params : 0;
        res.error = out[i].status == STORE_RUN_FAILED ? "failed on purpose" : NULL;
        assert_int_equal(store_run_finish(g.app.store, &res), STORE_OK);
    }
    store_claim_free(c);
}

static const json_t *spurious_of(const char *run_id, struct http_resp *r)
{
    getf(r, "/v1/runs/%s", run_id);
    assert_ok(r);
    const json_t *s = json_object_get(r->json, "spurious");
    assert_true(json_is_object(s));
    return s;
}

static int is_null(const json_t *o, const char *key)
{
    return json_is_null(json_object_get(o, key));
}

/* Wilson score interval written out independently of spurious.c. */
static void wilson(double k, double n, double *lo, double *hi)
{
    const double z = 1.959963984540054;
    double p = k / n;
    double c = (p + z * z / (2 * n)) / (1 + z * z / n);
    double h = (z / (1 + z * z / n)) * sqrt(p * (1 - p) / n + z * z / (4 * n * n));
    *lo = c - h < 0 ? 0 : c - h;
    *hi = c + h > 1 ? 1 : c + h;
}

/* ---- objective keys ---- */

static void test_objective_key_c_and_sql_agree(void **state)
{
    (void)state;
    static const char *const extras[] = {
        "\"loss\": \"squared\", \"l2\": 0.0",
        "\"loss\": {\"kind\": \"huber\", \"delta\": 0.5}, \"l2\": 0.0001",
        "\"loss\": \"logistic\", \"l2\": 2.5e-07",
        "\"l2\": 123.25",
        "\"loss\": \"huber\"",
        "\"loss\": {\"kind\": \"huber\"}, \"l2\": 1e-20",
    };
    char ds[STORE_ID_SIZE], ar[STORE_ID_SIZE], ex[STORE_ID_SIZE];
    char want[STORE_KEY_SIZE];
    create("/v1/datasets", xor_dataset, ds);
    create("/v1/architectures", arch_221, ar);
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++) {
        struct store_experiment *e = NULL;
        new_experiment(ds, ar, extras[i], 1, 0, ex); /* the store derives the key in SQL */
        assert_int_equal(store_experiment_get(g.app.store, ex, &e), STORE_OK);
        assert_int_equal(spurious_objective_key(e->spec, ds, ar, want, sizeof want), BASIN_OK);
        assert_string_equal(e->objective_key, want);
        store_experiment_free(e);
        assert_int_equal(store_experiment_delete(g.app.store, ex), STORE_OK);
    }
    /* the exact form, written out by hand */
    json_t *spec =
        json_pack("{s:{s:s, s:f}, s:f}", "loss", "kind", "huber", "delta", 0.5, "l2", 1e-4);
    assert_int_equal(spurious_objective_key(spec, ds, ar, want, sizeof want), BASIN_OK);
    char hand[STORE_KEY_SIZE];
    snprintf(hand, sizeof hand, "%s|%s|huber:0.5|l2=0.0001", ds, ar);
    assert_string_equal(want, hand);
    json_decref(spec);
    /* defaults: no loss, no l2 */
    spec = json_object();
    assert_int_equal(spurious_objective_key(spec, ds, ar, want, sizeof want), BASIN_OK);
    snprintf(hand, sizeof hand, "%s|%s|squared|l2=0", ds, ar);
    assert_string_equal(want, hand);
    json_decref(spec);
    /* a real that needs 17 digits: C writes it exactly, SQL leaves the key unknown */
    {
        struct store_experiment *e = NULL;
        new_experiment(ds, ar, "\"l2\": 0.1234567890123456789", 1, 0, ex);
        assert_int_equal(store_experiment_get(g.app.store, ex, &e), STORE_OK);
        assert_string_equal(e->objective_key, "");
        assert_int_equal(spurious_objective_key(e->spec, ds, ar, want, sizeof want), BASIN_OK);
        assert_non_null(strstr(want, "|l2=0.12345678901234568"));
        store_experiment_free(e);
        assert_int_equal(store_experiment_delete(g.app.store, ex), STORE_OK);
    }
    /* wrong types are refused */
    spec = json_pack("{s:i}", "loss", 3);
    assert_int_equal(spurious_objective_key(spec, ds, ar, want, sizeof want), BASIN_EINVAL);
    json_decref(spec);
    spec = json_pack("{s:s}", "l2", "0");
    assert_int_equal(spurious_objective_key(spec, ds, ar, want, sizeof want), BASIN_EINVAL);
    json_decref(spec);
    spec = json_object();
    assert_int_equal(spurious_objective_key(spec, ds, ar, want, 10), BASIN_ERANGE);
    json_decref(spec);
}

/* A database made at schema 1 gets keys for its existing experiments from migration 2. */
static void test_migration_backfills_keys(void **state)
{
    (void)state;
    char path[160], want[STORE_KEY_SIZE], err[256] = "";
    struct migration first[2];
    struct store *s = NULL;
    struct store_experiment *e = NULL;
    sqlite3 *db = NULL;
    static const char *const rows =
        "INSERT INTO datasets (id, kind, spec, input_shape, n, in_dim, y_dim, task, x, y, "
        "created_at) VALUES ('ds_00000000000000aa', 'inline', '{}', '[1]', 0, 1, 1, "
        "'regression', x'', x'', 0);"
        "INSERT INTO architectures (id, spec, param_count, out_dim, created_at) VALUES "
        "('ar_00000000000000bb', '{}', 3, 1, 0);"
        "INSERT INTO experiments (id, dataset_id, architecture_id, spec, restarts, seed, "
        "created_at, updated_at) VALUES "
        "('ex_0000000000000001', 'ds_00000000000000aa', 'ar_00000000000000bb', "
        "'{\"loss\":{\"kind\":\"huber\",\"delta\":0.5},\"l2\":0.0001}', 1, 0, 0, 0),"
        "('ex_0000000000000002', 'ds_00000000000000aa', 'ar_00000000000000bb', '{}', 1, 0, 0, 0),"
        "('ex_0000000000000003', 'ds_00000000000000aa', 'ar_00000000000000bb', "
        "'{\"loss\":\"logistic\",\"l2\":0.33333333333333331}', 1, 0, 0, 0);";
    static const char *const ids[] = {"ex_0000000000000001", "ex_0000000000000002"};

    snprintf(path, sizeof path, "%s/old.db", g.dir);
    first[0] = basinlab_sqlite_migrations[0];
    memset(&first[1], 0, sizeof first[1]);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(migrate_apply(db, first, NULL, err, sizeof err), STORE_OK);
    assert_int_equal(sqlite3_exec(db, rows, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(store_open(path, NULL, &s, err, sizeof err), STORE_OK);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(store_experiment_get(s, ids[i], &e), STORE_OK);
        assert_int_equal(spurious_objective_key(e->spec, "ds_00000000000000aa",
                                                "ar_00000000000000bb", want, sizeof want),
                         BASIN_OK);
        assert_string_equal(e->objective_key, want);
        store_experiment_free(e);
        e = NULL;
    }
    /* 1/3 needs 17 digits: left unknown */
    assert_int_equal(store_experiment_get(s, "ex_0000000000000003", &e), STORE_OK);
    assert_string_equal(e->objective_key, "");
    store_experiment_free(e);
    store_close(s);
    remove_db(path);
}

/* ---- spurious flags ---- */

static void test_spurious_flag_follows_the_best(void **state)
{
    (void)state;
    static const double th[9] = {0};
    char ds[STORE_ID_SIZE], ar[STORE_ID_SIZE], e1[STORE_ID_SIZE], e2[STORE_ID_SIZE],
        e3[STORE_ID_SIZE], e4[STORE_ID_SIZE], e5[STORE_ID_SIZE];
    char r1[4][STORE_ID_SIZE], r2[1][STORE_ID_SIZE], r3[1][STORE_ID_SIZE], r4[2][STORE_ID_SIZE],
        r5[1][STORE_ID_SIZE];
    struct http_resp r;
    const json_t *s;

    create("/v1/datasets", xor_dataset, ds);
    create("/v1/architectures", arch_221, ar);
    /* E1: a stationary point at 0.3, an unlabeled max_steps run at 0.5, a likely minimum at 0.4,
     * a saddle at 0.45 */
    new_experiment(ds, ar, "\"loss\": \"squared\", \"l2\": 0.0", 4, 1, e1);
    const struct outcome o1[4] = {
        {STORE_RUN_FINISHED, 0.3, "grad_tol", NULL, th, 9},
        {STORE_RUN_FINISHED, 0.5, "max_steps", NULL, th, 9},
        {STORE_RUN_FINISHED, 0.4, "max_steps", "likely_minimum", th, 9},
        {STORE_RUN_FINISHED, 0.45, "grad_tol", "saddle", th, 9},
    };
    run_all(e1, o1, 4, r1);

    /* alone, the best run (0.3) is the witness of the others, and not spurious itself */
    s = spurious_of(r1[0], &r);
    assert_true(json_is_false(json_object_get(s, "flag")));
    assert_string_equal(jstr(s, "basis"), "stationary");
    assert_true(is_null(s, "witness_run_id"));
    assert_true(jnum(s, "gap") == 0.0);
    assert_true(json_is_false(json_object_get(s, "global")));
    http_resp_free(&r);
    s = spurious_of(r1[2], &r);
    assert_true(json_is_true(json_object_get(s, "flag")));
    assert_string_equal(jstr(s, "basis"), "verdict");
    assert_string_equal(jstr(s, "witness_run_id"), r1[0]);
    assert_true(jnum(s, "gap") == 0.4 - 0.3);
    http_resp_free(&r);
    s = spurious_of(r1[1], &r); /* max_steps, no verdict: unknown, but the witness is named */
    assert_true(is_null(s, "flag"));
    assert_true(is_null(s, "basis"));
    assert_string_equal(jstr(s, "witness_run_id"), r1[0]);
    http_resp_free(&r);
    s = spurious_of(r1[3], &r); /* a saddle is never a spurious minimum */
    assert_true(json_is_false(json_object_get(s, "flag")));
    assert_string_equal(jstr(s, "basis"), "verdict");
    http_resp_free(&r);

    /* a better run in ANOTHER experiment with the same objective flips the flag */
    new_experiment(ds, ar, "\"loss\": \"squared\", \"l2\": 0.0", 1, 0, e2);
    const struct outcome o2[1] = {{STORE_RUN_FINISHED, 0.1, "max_steps", NULL, th, 9}};
    run_all(e2, o2, 1, r2);
    s = spurious_of(r1[0], &r);
    assert_true(json_is_true(json_object_get(s, "flag")));
    assert_string_equal(jstr(s, "witness_run_id"), r2[0]);
    assert_string_equal(jstr(s, "witness_experiment_id"), e2);
    assert_true(jnum(s, "gap") == 0.3 - 0.1);
    assert_true(jnum(s, "best_risk") == 0.1);
    http_resp_free(&r);

    /* an even better run under a different loss is no witness */
    new_experiment(ds, ar, "\"loss\": {\"kind\": \"huber\", \"delta\": 0.5}, \"l2\": 0.0", 1, 1,
                   e3);
    const struct outcome o3[1] = {{STORE_RUN_FINISHED, 0.01, "grad_tol", NULL, th, 9}};
    run_all(e3, o3, 1, r3);
    s = spurious_of(r1[0], &r);
    assert_string_equal(jstr(s, "witness_run_id"), r2[0]);
    assert_true(jnum(s, "gap") == 0.3 - 0.1);
    http_resp_free(&r);
    s = spurious_of(r3[0], &r); /* the huber run is the best of its own objective */
    assert_true(json_is_false(json_object_get(s, "flag")));
    assert_true(jnum(s, "gap") == 0.0);
    http_resp_free(&r);

    /* E4 (same objective as E1, tolerance 0.5): a minimum at risk 0 is global and never
     * spurious; a minimum at 0.25 is within its own tolerance of the new best 0 */
    new_experiment(ds, ar,
                   "\"loss\": \"squared\", \"l2\": 0.0, \"certify\": {\"spurious_tol\": 0.5}", 2, 1,
                   e4);
    const struct outcome o4[2] = {{STORE_RUN_FINISHED, 0.0, "grad_tol", "certified_minimum", th, 9},
                                  {STORE_RUN_FINISHED, 0.25, "grad_tol", NULL, th, 9}};
    run_all(e4, o4, 2, r4);
    s = spurious_of(r4[0], &r);
    assert_true(json_is_false(json_object_get(s, "flag")));
    assert_true(json_is_true(json_object_get(s, "global")));
    http_resp_free(&r);
    s = spurious_of(r4[1], &r);
    assert_true(json_is_false(json_object_get(s, "flag")));
    assert_true(jnum(s, "tol") == 0.5);
    assert_true(jnum(s, "gap") == 0.25);
    assert_true(is_null(s, "witness_run_id"));
    http_resp_free(&r);
    s = spurious_of(r1[0], &r); /* E1 keeps the default tolerance: witness is now r4[0] */
    assert_true(json_is_true(json_object_get(s, "flag")));
    assert_string_equal(jstr(s, "witness_run_id"), r4[0]);
    assert_true(jnum(s, "gap") == 0.3);
    assert_true(jnum(s, "tol") == 1e-6);
    http_resp_free(&r);

    /* a different l2 is a different objective too */
    new_experiment(ds, ar, "\"loss\": \"squared\", \"l2\": 0.001", 1, 0, e5);
    const struct outcome o5[1] = {{STORE_RUN_FINISHED, 0.2, "grad_tol", NULL, th, 9}};
    run_all(e5, o5, 1, r5);
    s = spurious_of(r5[0], &r);
    assert_true(json_is_false(json_object_get(s, "flag")));
    http_resp_free(&r);

    /* the run list shows the same flags and filters on them, page by page */
    const char *want_true[] = {r1[0], r1[2]};
    const char *want_false[] = {r1[3]};
    char cursor[256] = "";
    size_t seen = 0;
    for (int page = 0; page < 5; page++) {
        if (page == 0)
            getf(&r, "/v1/experiments/%s/runs?spurious=true&limit=1", e1);
        else
            getf(&r, "/v1/experiments/%s/runs?spurious=true&limit=1&cursor=%s", e1, cursor);
        assert_ok(&r);
        json_t *items = json_object_get(r.json, "items");
        assert_int_equal(json_array_size(items), page < 2 ? 1 : 0);
        if (page < 2) {
            json_t *it = json_array_get(items, 0);
            assert_string_equal(jstr(it, "id"), want_true[page]);
            assert_true(json_is_true(json_object_get(json_object_get(it, "spurious"), "flag")));
            seen++;
        }
        const char *next = jstr(r.json, "next_cursor");
        if (next == NULL) {
            http_resp_free(&r);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", next);
        http_resp_free(&r);
    }
    assert_int_equal(seen, 2);
    getf(&r, "/v1/experiments/%s/runs?spurious=false", e1);
    assert_ok(&r);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    assert_string_equal(jstr(json_array_get(json_object_get(r.json, "items"), 0), "id"),
                        want_false[0]);
    http_resp_free(&r);
    getf(&r, "/v1/experiments/%s/runs?order=final_risk", e1);
    assert_ok(&r);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *it = json_array_get(json_object_get(r.json, "items"), i);
        assert_true(json_is_object(json_object_get(it, "spurious")));
    }
    http_resp_free(&r);
    getf(&r, "/v1/experiments/%s/runs?spurious=maybe", e1);
    assert_problem(&r, 400);
    http_resp_free(&r);

    /* the summary counts the same judgement: 2 spurious of 4 finished */
    getf(&r, "/v1/experiments/%s", e1);
    assert_ok(&r);
    json_t *sum = json_object_get(r.json, "summary");
    double lo, hi;
    wilson(2, 4, &lo, &hi);
    assert_int_equal(jint(sum, "spurious_count"), 2);
    assert_true(jnum(sum, "spurious_share") == 0.5);
    json_t *ci = json_object_get(sum, "spurious_share_ci");
    assert_true(fabs(json_number_value(json_array_get(ci, 0)) - lo) < 1e-15);
    assert_true(fabs(json_number_value(json_array_get(ci, 1)) - hi) < 1e-15);
    assert_string_equal(jstr(sum, "spurious_basis"), "mixed");
    assert_int_equal(jint(json_object_get(sum, "label_counts"), "likely_minimum"), 1);
    assert_int_equal(jint(json_object_get(sum, "label_counts"), "saddle"), 1);
    assert_int_equal(jint(json_object_get(sum, "label_counts"), "none"), 2);
    assert_string_equal(jstr(json_object_get(sum, "objective_best"), "run_id"), r4[0]);
    http_resp_free(&r);
}

/* ---- basins ---- */

/* Hand-set end points of the 2-2-1 ReLU net on XOR; θ = (W1 row-major, b1, W2, b2).
 * A: |x1 − x2| exactly (risk 0); A scaled (unit 0 ×2 in, ÷2 out) and A permuted: the same
 * function; B: the constant ½ (risk ½·¼ = 1/8); B2: another constant-½ point; C: relu(x1 − x2)
 * (misses (0,1) by 1: risk ½·1/4 = 1/8, the same level as B but another function). */
static const double TH_A[9] = {1, -1, -1, 1, 0, 0, 1, 1, 0};
static const double TH_A_SCALED[9] = {2, -2, -1, 1, 0, 0, 0.5, 1, 0};
static const double TH_A_PERM[9] = {-1, 1, 1, -1, 0, 0, 1, 1, 0};
static const double TH_B[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0.5};
static const double TH_B2[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0.5};
static const double TH_C[9] = {1, -1, 0, 0, 0, 0, 1, 0, 0};
/* F: the constant 1 (risk ½·½ = 1/4), found with a clear barrier from A */
static const double TH_F[9] = {0, 2, 0, 0, 1, 1, 0, -1, 2};

static struct {
    char ds[STORE_ID_SIZE], ar[STORE_ID_SIZE], ex[STORE_ID_SIZE], ex_f[STORE_ID_SIZE];
    char runs[8][STORE_ID_SIZE];
    char run_f[1][STORE_ID_SIZE];
} xb;

static void basins_fixture(void)
{
    if (xb.ex[0] != '\0')
        return;
    create("/v1/datasets", xor_dataset, xb.ds);
    create("/v1/architectures", arch_221, xb.ar);
    new_experiment(xb.ds, xb.ar, "\"loss\": \"squared\"", 8, 1, xb.ex);
    const struct outcome o[8] = {
        {STORE_RUN_FINISHED, 0.125, "grad_tol", "likely_minimum", TH_B, 9},
        {STORE_RUN_FINISHED, 0.0, "grad_tol", "certified_minimum", TH_A, 9},
        {STORE_RUN_FINISHED, 0.125, "grad_tol", NULL, TH_C, 9},
        {STORE_RUN_FINISHED, 0.0, "grad_tol", "certified_minimum", TH_A_SCALED, 9},
        {STORE_RUN_FINISHED, 0.125, "grad_tol", "saddle", TH_B2, 9},
        {STORE_RUN_FINISHED, 0.0, "grad_tol", NULL, TH_A_PERM, 9},
        {STORE_RUN_FAILED, 0, NULL, NULL, NULL, 0},
        {STORE_RUN_RUNNING, 0, NULL, NULL, NULL, 0}, /* stays running: no end point */
    };
    run_all(xb.ex, o, 8, xb.runs);
    new_experiment(xb.ds, xb.ar, "\"loss\": \"squared\"", 1, 0, xb.ex_f);
    const struct outcome of[1] = {{STORE_RUN_FINISHED, 0.25, "max_steps", NULL, TH_F, 9}};
    run_all(xb.ex_f, of, 1, xb.run_f);
}

static void assert_ids(const json_t *arr, const char *const *want, size_t n)
{
    assert_int_equal(json_array_size(arr), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_array_get(arr, i)), want[i]);
}

static void test_basins_of_xor(void **state)
{
    (void)state;
    struct http_resp r;
    char v[64];
    double lo, hi;
    basins_fixture();
    analysis_cache_clear();

    getf(&r, "/v1/experiments/%s/basins", xb.ex);
    assert_ok(&r);
    assert_true(http_header_copy(&r, "X-Basins-Cache", v, sizeof v));
    assert_string_equal(v, "miss");
    assert_int_equal(jint(r.json, "total_runs"), 8);
    assert_int_equal(jint(r.json, "finished_runs"), 6);
    assert_int_equal(jint(r.json, "clustered_runs"), 6);
    assert_int_equal(jint(r.json, "basin_count"), 3);
    assert_true(jnum(r.json, "best_risk") == 0.0);
    assert_string_equal(jstr(r.json, "best_run_id"), xb.runs[1]);
    json_t *bs = json_object_get(r.json, "basins");
    assert_int_equal(json_array_size(bs), 3);

    /* counts sum to the finished runs; shares and intervals by the formula */
    static const size_t counts[3] = {3, 2, 1};
    json_int_t total = 0;
    for (size_t b = 0; b < 3; b++) {
        json_t *o = json_array_get(bs, b);
        assert_int_equal(jint(o, "index"), (json_int_t)b);
        assert_int_equal(jint(o, "count"), (json_int_t)counts[b]);
        total += jint(o, "count");
        assert_true(jnum(o, "share") == (double)counts[b] / 6.0);
        wilson((double)counts[b], 6.0, &lo, &hi);
        json_t *ci = json_object_get(o, "share_ci");
        assert_true(fabs(json_number_value(json_array_get(ci, 0)) - lo) < 1e-15);
        assert_true(fabs(json_number_value(json_array_get(ci, 1)) - hi) < 1e-15);
    }
    assert_int_equal(total, 6);

    json_t *a = json_array_get(bs, 0), *b0 = json_array_get(bs, 1), *c = json_array_get(bs, 2);
    const char *want_a[] = {xb.runs[1], xb.runs[3], xb.runs[5]};
    const char *want_b[] = {xb.runs[0], xb.runs[4]};
    const char *want_c[] = {xb.runs[2]};
    assert_ids(json_object_get(a, "member_run_ids"), want_a, 3);
    assert_ids(json_object_get(b0, "member_run_ids"), want_b, 2);
    assert_ids(json_object_get(c, "member_run_ids"), want_c, 1);
    assert_string_equal(jstr(a, "representative_run_id"), xb.runs[1]);
    assert_string_equal(jstr(b0, "representative_run_id"), xb.runs[0]);
    assert_true(fabs(jnum(a, "risk")) < 1e-15);
    assert_true(fabs(jnum(b0, "risk") - 0.125) < 1e-15);
    assert_true(fabs(jnum(c, "risk") - 0.125) < 1e-15);
    /* |x1 − x2| uses three patterns on XOR (on/off, off/on, both off); the constant one */
    assert_int_equal(jint(a, "regions"), 3);
    assert_int_equal(jint(b0, "regions"), 1);
    /* the best basin is not spurious; the others are, with the best run as witness */
    assert_true(json_is_false(json_object_get(a, "spurious")));
    assert_true(is_null(a, "witness_run_id"));
    assert_true(json_is_true(json_object_get(b0, "spurious")));
    assert_string_equal(jstr(b0, "witness_run_id"), xb.runs[1]);
    assert_true(jnum(b0, "gap") == 0.125);
    assert_true(json_is_true(json_object_get(c, "spurious")));
    /* verdict labels of the members */
    json_t *la = json_object_get(a, "label_counts"), *lb = json_object_get(b0, "label_counts");
    assert_int_equal(jint(la, "certified_minimum"), 2);
    assert_int_equal(jint(la, "none"), 1);
    assert_int_equal(jint(lb, "likely_minimum"), 1);
    assert_int_equal(jint(lb, "saddle"), 1);
    http_resp_free(&r);

    /* polling hits the cache; a page of basins */
    getf(&r, "/v1/experiments/%s/basins?limit=2", xb.ex);
    assert_ok(&r);
    assert_true(http_header_copy(&r, "X-Basins-Cache", v, sizeof v));
    assert_string_equal(v, "hit");
    assert_int_equal(json_array_size(json_object_get(r.json, "basins")), 2);
    assert_string_equal(jstr(r.json, "next_cursor"), "b2");
    assert_true(http_header_copy(&r, "Link", v, sizeof v));
    http_resp_free(&r);
    getf(&r, "/v1/experiments/%s/basins?limit=2&cursor=b2", xb.ex);
    assert_ok(&r);
    assert_int_equal(json_array_size(json_object_get(r.json, "basins")), 1);
    assert_int_equal(jint(json_array_get(json_object_get(r.json, "basins"), 0), "index"), 2);
    assert_true(is_null(r.json, "next_cursor"));
    http_resp_free(&r);

    /* other tolerances are another clustering: a huge function tolerance merges B and C */
    getf(&r, "/v1/experiments/%s/basins?func_tol=100", xb.ex);
    assert_ok(&r);
    assert_true(http_header_copy(&r, "X-Basins-Cache", v, sizeof v));
    assert_string_equal(v, "miss");
    assert_int_equal(jint(r.json, "basin_count"), 2);
    http_resp_free(&r);

    /* members, paged */
    getf(&r, "/v1/experiments/%s/basins/0/members?limit=2", xb.ex);
    assert_ok(&r);
    assert_int_equal(jint(r.json, "members_total"), 3);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(jstr(json_array_get(items, 0), "run_id"), xb.runs[1]);
    assert_int_equal(jint(json_array_get(items, 1), "index"), 3);
    assert_string_equal(jstr(r.json, "next_cursor"), "m2");
    http_resp_free(&r);
    getf(&r, "/v1/experiments/%s/basins/0/members?limit=2&cursor=m2", xb.ex);
    assert_ok(&r);
    assert_string_equal(jstr(json_array_get(json_object_get(r.json, "items"), 0), "run_id"),
                        xb.runs[5]);
    assert_true(is_null(r.json, "next_cursor"));
    http_resp_free(&r);
}

static void test_basins_errors(void **state)
{
    (void)state;
    struct http_resp r;
    char tds[STORE_ID_SIZE], tar[STORE_ID_SIZE], tex[STORE_ID_SIZE];
    basins_fixture();

    getf(&r, "/v1/experiments/ex_0000000000000000/basins");
    assert_problem(&r, 404);
    http_resp_free(&r);
    getf(&r, "/v1/experiments/nonsense/basins");
    assert_problem(&r, 404);
    http_resp_free(&r);
    getf(&r, "/v1/experiments/%s/basins?risk_tol=-1", xb.ex);
    assert_problem(&r, 400);
    assert_true(detail_has(&r, "risk_tol"));
    http_resp_free(&r);
    getf(&r, "/v1/experiments/%s/basins?func_tol=abc", xb.ex);
    assert_problem(&r, 400);
    http_resp_free(&r);
    getf(&r, "/v1/experiments/%s/basins?limit=0", xb.ex);
    assert_problem(&r, 400);
    http_resp_free(&r);
    getf(&r, "/v1/experiments/%s/basins?cursor=b99", xb.ex);
    assert_problem(&r, 400);
    http_resp_free(&r);
    getf(&r, "/v1/experiments/%s/basins?cursor=zz", xb.ex);
    assert_problem(&r, 400);
    http_resp_free(&r);
    getf(&r, "/v1/experiments/%s/basins/7/members", xb.ex);
    assert_problem(&r, 404);
    http_resp_free(&r);
    getf(&r, "/v1/experiments/%s/basins/x/members", xb.ex);
    assert_problem(&r, 404);
    http_resp_free(&r);

    /* a population dataset has no samples to compare end points on */
    create("/v1/datasets", "{\"kind\": \"teacher_gaussian\", \"k\": 2, \"d\": 2}", tds);
    create("/v1/architectures",
           "{\"input_shape\": [2], \"layers\": [{\"type\": \"dense\", \"units\": 2, \"bias\": "
           "false}, {\"type\": \"activation\", \"kind\": \"relu\"}, {\"type\": \"sum\"}]}",
           tar);
    new_experiment(tds, tar, "\"loss\": \"squared\"", 1, 1, tex);
    static const double tt[4] = {1, 0, 0, 1};
    char tr[1][STORE_ID_SIZE];
    const struct outcome to[1] = {{STORE_RUN_FINISHED, 0.0, "grad_tol", NULL, tt, 4}};
    run_all(tex, to, 1, tr);
    getf(&r, "/v1/experiments/%s/basins", tex);
    assert_problem(&r, 422);
    assert_true(detail_has(&r, "population"));
    http_resp_free(&r);
}

/* ---- compare ---- */

static void compare_direct(const double *ta, const double *tb, int unaligned, size_t grid,
                           basin_comparison **out)
{
    static const basin_layer_spec layers[3] = {
        {.kind = BASIN_LAYER_DENSE, .units = 2, .bias = 1},
        {.kind = BASIN_LAYER_ACTIVATION, .act = BASIN_ACT_RELU},
        {.kind = BASIN_LAYER_DENSE, .units = 1, .bias = 1}};
    basin_arch arch = {1, {2, 0, 0}, 3, layers};
    basin_net *net = NULL;
    basin_dataset *ds = NULL;
    static const double x[8] = {0, 0, 0, 1, 1, 0, 1, 1}, y[4] = {0, 1, 1, 0};
    size_t shape[1] = {2};
    basin_loss loss = {BASIN_LOSS_SQUARED, 1.0};
    basin_compare_opts opts;
    assert_int_equal(basin_net_create(&arch, &net, NULL), BASIN_OK);
    assert_int_equal(basin_dataset_create(4, 1, shape, 1, &ds), BASIN_OK);
    memcpy(ds->x, x, sizeof x);
    memcpy(ds->y, y, sizeof y);
    basin_compare_defaults(&opts);
    opts.path_points = grid;
    opts.unaligned_path = unaligned;
    assert_int_equal(basin_compare(net, ds, &loss, ta, tb, &opts, out), BASIN_OK);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_compare(void **state)
{
    (void)state;
    struct http_resp r;
    basin_comparison *cmp = NULL;
    basins_fixture();

    /* a run with itself: the same function, a flat path */
    getf(&r, "/v1/compare?a=%s&b=%s", xb.runs[1], xb.runs[1]);
    assert_ok(&r);
    assert_true(jnum(r.json, "function_distance") == 0.0);
    json_t *bar = json_object_get(r.json, "barrier");
    /* the aligned path runs between normalised copies: rounding-sized at most */
    assert_true(fabs(jnum(bar, "aligned")) <= 1e-15);
    assert_true(jnum(bar, "unaligned") == 0.0);
    assert_int_equal(json_array_size(json_object_get(json_object_get(r.json, "path"), "t")), 21);
    http_resp_free(&r);

    /* A (risk 0) against F (risk 1/4, another basin of the same objective) */
    getf(&r, "/v1/compare?a=%s&b=%s&grid=11", xb.runs[1], xb.run_f[0]);
    assert_ok(&r);
    compare_direct(TH_A, TH_F, 1, 11, &cmp);
    assert_true(cmp->aligned.barrier > 0.0);
    bar = json_object_get(r.json, "barrier");
    assert_true(jnum(bar, "aligned") == cmp->aligned.barrier);
    assert_true(jnum(bar, "unaligned") == cmp->unaligned.barrier);
    assert_true(jnum(r.json, "function_distance") == cmp->func_dist);
    assert_true(jnum(r.json, "risk_a") == cmp->risk_a);
    assert_true(jnum(r.json, "risk_b") == cmp->risk_b);
    assert_true(fabs(cmp->risk_b - 0.25) < 1e-15);
    assert_true(jnum(r.json, "risk_diff") == cmp->risk_diff);
    assert_true(jnum(json_object_get(r.json, "param_distance"), "aligned") == cmp->param_dist);
    assert_true(jnum(json_object_get(r.json, "pattern_agreement"), "units") == cmp->unit_agreement);
    json_t *path = json_object_get(r.json, "path");
    for (size_t k = 0; k < 11; k++) {
        assert_true(json_number_value(json_array_get(json_object_get(path, "aligned"), k)) ==
                    cmp->aligned.risk[k]);
        assert_true(json_number_value(json_array_get(json_object_get(path, "unaligned"), k)) ==
                    cmp->unaligned.risk[k]);
        assert_true(json_number_value(json_array_get(json_object_get(path, "t"), k)) ==
                    cmp->aligned.t[k]);
    }
    basin_comparison_free(cmp);
    http_resp_free(&r);
    getf(&r, "/v1/compare?a=%s&b=%s&unaligned=false", xb.runs[1], xb.run_f[0]);
    assert_ok(&r);
    assert_true(is_null(json_object_get(r.json, "barrier"), "unaligned"));
    assert_true(is_null(json_object_get(r.json, "path"), "unaligned"));
    http_resp_free(&r);
}

static void test_compare_errors(void **state)
{
    (void)state;
    struct http_resp r;
    char ods[STORE_ID_SIZE], oex[STORE_ID_SIZE], orun[1][STORE_ID_SIZE], hex[STORE_ID_SIZE],
        hrun[1][STORE_ID_SIZE];
    basins_fixture();

    getf(&r, "/v1/compare?b=%s", xb.runs[1]);
    assert_problem(&r, 400);
    assert_true(detail_has(&r, "'a'"));
    http_resp_free(&r);
    getf(&r, "/v1/compare?a=%s&b=ex_0000000000000000", xb.runs[1]);
    assert_problem(&r, 400);
    assert_true(detail_has(&r, "'b'"));
    http_resp_free(&r);
    getf(&r, "/v1/compare?a=%s&b=run_0000000000000000", xb.runs[1]);
    assert_problem(&r, 404);
    assert_true(detail_has(&r, "'b'"));
    http_resp_free(&r);
    getf(&r, "/v1/compare?a=%s&b=%s", xb.runs[1], xb.runs[7]); /* still running */
    assert_problem(&r, 409);
    http_resp_free(&r);
    getf(&r, "/v1/compare?a=%s&b=%s&grid=1", xb.runs[1], xb.runs[0]);
    assert_problem(&r, 400);
    http_resp_free(&r);
    getf(&r, "/v1/compare?a=%s&b=%s&unaligned=yes", xb.runs[1], xb.runs[0]);
    assert_problem(&r, 400);
    http_resp_free(&r);

    /* another dataset, another loss: 422 naming 'b' */
    create("/v1/datasets",
           "{\"kind\": \"inline\", \"x\": [[0, 0], [0, 1], [1, 0], [1, 1]], \"y\": [1, 0, 0, 1]}",
           ods);
    new_experiment(ods, xb.ar, "\"loss\": \"squared\"", 1, 1, oex);
    const struct outcome o[1] = {{STORE_RUN_FINISHED, 0.1, "grad_tol", NULL, TH_A, 9}};
    run_all(oex, o, 1, orun);
    getf(&r, "/v1/compare?a=%s&b=%s", xb.runs[1], orun[0]);
    assert_problem(&r, 422);
    assert_true(detail_has(&r, "'b'"));
    assert_true(detail_has(&r, "dataset"));
    http_resp_free(&r);
    new_experiment(xb.ds, xb.ar, "\"loss\": {\"kind\": \"huber\", \"delta\": 2}", 1, 1, hex);
    run_all(hex, o, 1, hrun);
    getf(&r, "/v1/compare?a=%s&b=%s", xb.runs[1], hrun[0]);
    assert_problem(&r, 422);
    assert_true(detail_has(&r, "loss"));
    http_resp_free(&r);
}

/* ---- fitted functions ---- */

/* 1-3-1: f(x) = Σ v_j relu(w_j x + b_j) + c, kinks at −b_j/w_j = −0.1, 0.15, 0.4 */
static const double W1D[3] = {1, -2, 0.5}, B1D[3] = {0.1, 0.3, -0.2}, V1D[3] = {1, 0.5, -1};
static const double C1D = 0.2;

static double f1d(double x)
{
    double s = C1D;
    for (int j = 0; j < 3; j++)
        s += V1D[j] * fmax(0.0, W1D[j] * x + B1D[j]);
    return s;
}

static void test_function_1d(void **state)
{
    (void)state;
    struct http_resp r;
    char ds[STORE_ID_SIZE], ar[STORE_ID_SIZE], ex[STORE_ID_SIZE], run[1][STORE_ID_SIZE];
    double th[10];
    memcpy(th, W1D, sizeof W1D);
    memcpy(th + 3, B1D, sizeof B1D);
    memcpy(th + 6, V1D, sizeof V1D);
    th[9] = C1D;
    create("/v1/datasets",
           "{\"kind\": \"inline\", \"x\": [[-0.5], [-0.25], [0], [0.25], [0.5]], \"y\": [1, 0, 1, "
           "0, 1]}",
           ds);
    create("/v1/architectures",
           "{\"input_shape\": [1], \"layers\": [{\"type\": \"dense\", \"units\": 3}, {\"type\": "
           "\"activation\", \"kind\": \"relu\"}, {\"type\": \"dense\", \"units\": 1}]}",
           ar);
    new_experiment(ds, ar, "\"loss\": \"squared\"", 1, 1, ex);
    const struct outcome o[1] = {{STORE_RUN_FINISHED, 0.3, "grad_tol", NULL, th, 10}};
    run_all(ex, o, 1, run);

    for (int pass = 0; pass < 2; pass++) {
        size_t nx = pass == 0 ? 201 : 3;
        if (pass == 0)
            getf(&r, "/v1/runs/%s/function", run[0]);
        else
            getf(&r, "/v1/runs/%s/function?nx=3", run[0]);
        assert_ok(&r);
        assert_string_equal(jstr(r.json, "run_id"), run[0]);
        json_t *x = json_object_get(r.json, "x"), *y = json_object_get(r.json, "y");
        assert_int_equal(json_array_size(x), nx);
        /* the data range [−0.5, 0.5] widened by 10% of its span on each side */
        assert_true(fabs(json_number_value(json_array_get(x, 0)) + 0.6) < 1e-15);
        assert_true(fabs(json_number_value(json_array_get(x, nx - 1)) - 0.6) < 1e-15);
        for (size_t k = 0; k < nx; k++) {
            double xk = json_number_value(json_array_get(x, k));
            assert_true(fabs(json_number_value(json_array_get(y, k)) - f1d(xk)) < 1e-14);
        }
        json_t *br = json_object_get(r.json, "breakpoints");
        static const double kinks[3] = {-0.1, 0.15, 0.4};
        assert_int_equal(json_array_size(br), 3);
        for (size_t k = 0; k < 3; k++)
            assert_true(fabs(json_number_value(json_array_get(br, k)) - kinks[k]) <=
                        0.5e-9 * 1.2 + 1e-15);
        assert_true(json_is_true(json_object_get(r.json, "breakpoints_complete")));
        json_t *data = json_object_get(r.json, "data");
        assert_int_equal(json_array_size(json_object_get(data, "x")), 5);
        assert_true(json_number_value(json_array_get(json_object_get(data, "y"), 2)) == 1.0);
        assert_string_equal(jstr(r.json, "value_kind"), "output");
        http_resp_free(&r);
    }

    getf(&r, "/v1/runs/%s/function?nx=1", run[0]);
    assert_problem(&r, 400);
    http_resp_free(&r);
    getf(&r, "/v1/runs/%s/function?nx=401", run[0]);
    assert_problem(&r, 400);
    http_resp_free(&r);
    getf(&r, "/v1/runs/run_0000000000000000/function");
    assert_problem(&r, 404);
    http_resp_free(&r);
    getf(&r, "/v1/runs/ex_0000000000000000/function");
    assert_problem(&r, 404);
    http_resp_free(&r);
}

static void test_function_2d(void **state)
{
    (void)state;
    struct http_resp r;
    basins_fixture();
    /* A = |x0 − x1| on [−0.1, 1.1]²; 7 columns along x0, 5 rows along x1 */
    getf(&r, "/v1/runs/%s/function?nx=7&ny=5", xb.runs[1]);
    assert_ok(&r);
    json_t *x0 = json_object_get(r.json, "x0"), *x1 = json_object_get(r.json, "x1");
    json_t *vals = json_object_get(r.json, "values"), *ids = json_object_get(r.json, "region_ids");
    assert_int_equal(json_array_size(x0), 7);
    assert_int_equal(json_array_size(x1), 5);
    assert_int_equal(json_array_size(vals), 5);
    assert_int_equal(json_array_size(ids), 5);
    assert_true(fabs(json_number_value(json_array_get(x0, 0)) + 0.1) < 1e-15);
    assert_true(fabs(json_number_value(json_array_get(x1, 4)) - 1.1) < 1e-15);
    for (size_t rr = 0; rr < 5; rr++) {
        assert_int_equal(json_array_size(json_array_get(vals, rr)), 7);
        for (size_t c = 0; c < 7; c++) {
            double a = json_number_value(json_array_get(x0, c));
            double b = json_number_value(json_array_get(x1, rr));
            double v = json_number_value(json_array_get(json_array_get(vals, rr), c));
            assert_true(fabs(v - fabs(a - b)) < 1e-14);
        }
    }
    /* row 0 is x1 = −0.1: the first cell (x0 = −0.1) is on the kink line (both units off:
     * region 0, first seen), the others have x0 > x1 (region 1); the last row has x0 < x1 in
     * its first cell: another region */
    json_t *row0 = json_array_get(ids, 0), *row4 = json_array_get(ids, 4);
    assert_int_equal(json_integer_value(json_array_get(row0, 0)), 0);
    assert_int_equal(json_integer_value(json_array_get(row0, 1)), 1);
    assert_int_equal(json_integer_value(json_array_get(row0, 6)), 1);
    json_int_t below = json_integer_value(json_array_get(row4, 0));
    assert_true(below != 0 && below != 1);
    assert_int_equal(jint(r.json, "regions"), 3);
    assert_int_equal(json_array_size(json_object_get(json_object_get(r.json, "data"), "x1")), 4);
    http_resp_free(&r);

    /* no end point yet: 409 */
    getf(&r, "/v1/runs/%s/function", xb.runs[7]);
    assert_problem(&r, 409);
    http_resp_free(&r);
}

static void test_function_other_dims(void **state)
{
    (void)state;
    struct http_resp r;
    char ds[STORE_ID_SIZE], ar[STORE_ID_SIZE], ex[STORE_ID_SIZE], run[1][STORE_ID_SIZE];
    static const double th[5] = {1, 1, 1, 0, 0};
    create("/v1/datasets", "{\"kind\": \"inline\", \"x\": [[0, 0, 1], [1, 1, 0]], \"y\": [0, 1]}",
           ds);
    create("/v1/architectures",
           "{\"input_shape\": [3], \"layers\": [{\"type\": \"dense\", \"units\": 1}, {\"type\": "
           "\"activation\", \"kind\": \"relu\"}, {\"type\": \"dense\", \"units\": 1, \"bias\": "
           "false}]}",
           ar);
    new_experiment(ds, ar, "\"loss\": \"squared\"", 1, 1, ex);
    const struct outcome o[1] = {{STORE_RUN_FINISHED, 0.3, "grad_tol", NULL, th, 5}};
    run_all(ex, o, 1, run);
    getf(&r, "/v1/runs/%s/function", run[0]);
    assert_problem(&r, 422);
    assert_true(detail_has(&r, "3"));
    http_resp_free(&r);
}

/* The store operations on their own: the best point and the bulk end points. */
static void test_store_operations(void **state)
{
    (void)state;
    struct store_best_run best;
    struct store_end_points *p = NULL;
    basins_fixture();
    assert_int_equal(store_objective_best(g.app.store, xb.ex_f, &best), STORE_OK);
    assert_true(best.found);
    assert_string_equal(best.run_id, xb.runs[1]); /* the key is shared with xb.ex */
    assert_string_equal(best.experiment_id, xb.ex);
    assert_true(best.final_risk == 0.0);
    assert_true(best.experiments >= 2);
    assert_int_equal(store_objective_best(g.app.store, "ex_0000000000000000", &best),
                     STORE_ENOTFOUND);

    assert_int_equal(store_experiment_end_points(g.app.store, xb.ex, 4, 9, &p), STORE_OK);
    assert_int_equal(p->finished, 6);
    assert_int_equal(p->n, 4);
    assert_true(p->truncated);
    assert_string_equal(p->items[1].run_id, xb.runs[1]);
    assert_string_equal(p->items[1].verdict_label, "certified_minimum");
    assert_memory_equal(p->params + 9, TH_A, sizeof TH_A);
    assert_memory_equal(p->params + 3 * 9, TH_A_SCALED, sizeof TH_A_SCALED);
    store_end_points_free(p);
    p = NULL;
    /* a parameter count the end points do not have: every run skipped */
    assert_int_equal(store_experiment_end_points(g.app.store, xb.ex, 100, 8, &p), STORE_OK);
    assert_int_equal(p->n, 0);
    assert_int_equal(p->skipped, 6);
    store_end_points_free(p);
    p = NULL;
    assert_int_equal(store_experiment_end_points(g.app.store, xb.ex, 0, 9, &p), STORE_EINVAL);
    assert_null(p);

    struct store_spurious_stats st;
    assert_int_equal(store_experiment_spurious_stats(g.app.store, xb.ex, 1e-6, &st), STORE_OK);
    assert_int_equal(st.finished, 6);
    /* minima: 2 certified + 1 likely + 2 unlabeled grad_tol; the saddle is not one */
    assert_int_equal(st.minima, 5);
    assert_int_equal(st.minima_stationary, 2);
    assert_int_equal(st.spurious, 2);     /* the likely minimum B and the stationary C */
    assert_int_equal(st.not_spurious, 4); /* three at 0 and the saddle */
    assert_int_equal(store_experiment_spurious_stats(g.app.store, xb.ex, -1, &st), STORE_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_objective_key_c_and_sql_agree),
        cmocka_unit_test(test_migration_backfills_keys),
        cmocka_unit_test(test_spurious_flag_follows_the_best),
        cmocka_unit_test(test_basins_of_xor),
        cmocka_unit_test(test_basins_errors),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_compare_errors),
        cmocka_unit_test(test_function_1d),
        cmocka_unit_test(test_function_2d),
        cmocka_unit_test(test_function_other_dims),
        cmocka_unit_test(test_store_operations),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
