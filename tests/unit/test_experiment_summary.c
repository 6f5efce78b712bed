/* Tests of the experiment summary of GET /v1/experiments/{id} (summary_json in h_experiments.c)
 * and the store operation behind it (store_experiment_run_counts: store_sqlite_summary.c,
 * store_pg_summary.c), over real HTTP: the full route table on 127.0.0.1 with an ephemeral port,
 * a real store (a SQLite file on tmpfs, or PostgreSQL when BASINLAB_TEST_STORE is a postgres://
 * URL), runs written through the store directly (claim + finish), libcurl as the client.
 *
 * Expected values are independent of the code under test: every run's outcome (status, stop
 * reason, label, risk) is decided by the test from its restart index, and the expected counts
 * and best run are the test's own loop over that table. The big experiment has more runs than
 * the old summary scanned (5000), where the counts used to be null. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "app.h"
#include "basin/status.h"
#include "handlers.h"
#include "http.h"
#include "http_client.h"
#include "ids.h"
#include "limits.h"
#include "store.h"

enum { OLD_SCAN_MAX = 5000, BIG_RUNS = OLD_SCAN_MAX + 37 };

static struct {
    char dir[64];
    char location[512];
    char schema[32];
    struct app app;
    struct http_server *srv;
    uint16_t port;
    CURL *curl;
    char ds[STORE_ID_SIZE];
    char ar[STORE_ID_SIZE];
} g;

/* The PostgreSQL URL under test, or NULL for SQLite. */
static const char *pg_url(void)
{
    const char *u = getenv("BASINLAB_TEST_STORE");
    return u && (strncmp(u, "postgres://", 11) == 0 || strncmp(u, "postgresql://", 13) == 0) ? u
                                                                                             : NULL;
}

static int insert_records(void)
{
    double x[4] = {0, 0, 1, 1}, y[2] = {0, 1};
    struct store_dataset d;
    struct store_architecture a;
    memset(&d, 0, sizeof d);
    d.name = "pair";
    d.kind = "inline";
    d.task = "binary";
    d.spec = json_pack("{ss}", "kind", "inline");
    d.input_shape = json_pack("[i]", 2);
    d.n = 2;
    d.in_dim = 2;
    d.y_dim = 1;
    d.n_classes = 2;
    d.x = x;
    d.y = y;
    int rc = store_dataset_insert(g.app.store, &d, g.ds);
    json_decref(d.spec);
    json_decref(d.input_shape);
    if (rc != STORE_OK)
        return rc;
    memset(&a, 0, sizeof a);
    a.name = "tiny";
    a.spec = json_pack("{s[i]s[]}", "input_shape", 2, "layers");
    a.param_count = 17;
    a.out_dim = 1;
    rc = store_architecture_insert(g.app.store, &a, g.ar);
    json_decref(a.spec);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    char err[256] = "";
    struct http_config cfg;
    /* tmpfs: thousands of committed run results without waiting for a disk */
    snprintf(g.dir, sizeof g.dir, "%s/basinlab_esum_XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (mkdtemp(g.dir) == NULL)
        return -1;
    snprintf(g.location, sizeof g.location, "%s/store.db", g.dir);
    if (pg_url()) {
        char hex[STORE_ID_SIZE];
        if (ids_new("t_", hex, sizeof hex) != 0)
            return -1;
        snprintf(g.schema, sizeof g.schema, "%s", hex);
        snprintf(g.location, sizeof g.location, "%s%sschema=%s", pg_url(),
                 strchr(pg_url(), '?') ? "&" : "?", g.schema);
    }
    memset(&g.app, 0, sizeof g.app);
    if (app_init(&g.app) != BASIN_OK)
        return -1;
    limits_defaults(&g.app.limits);
    if (store_open(g.location, NULL, &g.app.store, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    if (insert_records() != STORE_OK)
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
    char path[256];
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    curl_easy_cleanup(g.curl);
    curl_global_cleanup();
    http_server_stop(g.srv);
    store_close(g.app.store);
    app_destroy(&g.app);
    if (g.schema[0]) {
        char sql[96];
        PGconn *c = PQconnectdb(pg_url());
        snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", g.schema);
        if (PQstatus(c) == CONNECTION_OK)
            PQclear(PQexec(c, sql));
        PQfinish(c);
    }
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/store.db%s", g.dir, suffix[i]);
        unlink(path);
    }
    rmdir(g.dir);
    return 0;
}

static void get_json(const char *path, struct http_resp *r)
{
    struct http_req q = http_req_json("GET", path, NULL);
    q.timeout_ms = 15000;
    q.parse_json = 1;
    assert_int_equal(http_request(g.curl, g.port, &q, r), CURLE_OK);
    if (r->status != 200)
        fprintf(stderr, "GET %s: %ld %s\n", path, r->status, r->body ? r->body : "");
    assert_int_equal(r->status, 200);
    assert_non_null(r->json);
}

/* ---- outcomes decided by the test ---- */

struct outcome {
    enum store_run_status status; /* FINISHED, FAILED; QUEUED: never claimed; RUNNING: claimed */
    const char *stop;
    const char *label;
    double risk;
};

static const char *const stops[] = {"grad_tol", "max_steps", "loss_tol", NULL, "diverged"};
static const char *const labels[] = {
    "certified_minimum",    "likely_minimum", "saddle", "not_converged", NULL,
    "label_from_the_future"};

/* Run i of n (the last 3 are never claimed, the 4 before them stay running). The lowest finite
 * risk, 0.125, is taken by two runs (ties go to the lower index); runs with NaN, +inf and −inf
 * risks and a failed run with a stop reason are in the mix. */
static struct outcome outcome_of(size_t i, size_t n)
{
    struct outcome o;
    uint32_t h = (uint32_t)i * 2654435761u;
    memset(&o, 0, sizeof o);
    if (i + 3 >= n) {
        o.status = STORE_RUN_QUEUED;
        return o;
    }
    if (i + 7 >= n) {
        o.status = STORE_RUN_RUNNING;
        return o;
    }
    if (i % 13 == 5) {
        o.status = STORE_RUN_FAILED;
        o.stop = i % 2 ? "diverged" : NULL;
        o.risk = NAN;
        return o;
    }
    o.status = STORE_RUN_FINISHED;
    o.stop = stops[(h >> 8) % 5];
    o.label = labels[(h >> 16) % 6];
    o.risk = 0.5 + (double)((h >> 4) % 1000) / 256.0;
    if (i == n / 2 || i == n / 2 + 11)
        o.risk = 0.125;
    if (i == 2)
        o.risk = NAN;
    if (i == 3)
        o.risk = INFINITY;
    if (i == 4)
        o.risk = -INFINITY;
    return o;
}

/* An experiment with n runs, reported per outcome_of; its run ids by restart index into ids
 * (n entries). */
static void build_experiment(size_t n, char ex[STORE_ID_SIZE], char (*ids)[STORE_ID_SIZE])
{
    struct store_experiment_new e;
    int existed = 0;
    size_t done = 0;
    memset(&e, 0, sizeof e);
    e.spec = json_pack("{ssss}", "dataset_id", g.ds, "architecture_id", g.ar);
    assert_non_null(e.spec);
    e.dataset_id = g.ds;
    e.architecture_id = g.ar;
    e.restarts = (int64_t)n;
    e.seed = 1;
    assert_int_equal(store_experiment_create(g.app.store, &e, ex, &existed), STORE_OK);
    json_decref(e.spec);
    while (done + 3 < n) {
        struct store_claim *c = NULL;
        size_t want = n - 3 - done;
        if (want > STORE_MAX_CLAIM)
            want = STORE_MAX_CLAIM;
        assert_int_equal(store_claim_runs(g.app.store, "w-esum", want, &c), STORE_OK);
        assert_non_null(c);
        assert_string_equal(c->experiment_id, ex);
        assert_int_equal(c->n_runs, want);
        for (size_t k = 0; k < c->n_runs; k++) {
            size_t i = (size_t)c->runs[k].index;
            assert_int_equal(i, done + k);
            snprintf(ids[i], STORE_ID_SIZE, "%s", c->runs[k].id);
            struct outcome o = outcome_of(i, n);
            if (o.status != STORE_RUN_FINISHED && o.status != STORE_RUN_FAILED)
                continue;
            struct store_run_result res;
            memset(&res, 0, sizeof res);
            res.run_id = c->runs[k].id;
            res.token = c->token;
            res.status = o.status;
            res.steps = 10;
            res.stop_reason = o.stop;
            res.initial_risk = 1.0;
            res.final_risk = o.risk;
            res.grad_norm = 1e-9;
            res.param_norm = 1.0;
            res.verdict_label = o.label;
            res.error = o.status == STORE_RUN_FAILED ? "failed on purpose" : NULL;
            assert_int_equal(store_run_finish(g.app.store, &res), STORE_OK);
        }
        done += c->n_runs;
        store_claim_free(c);
    }
    /* the queued rest becomes cancelled (no stop reason, no label), so later claims of the
     * next experiment do not get them */
    int changed = 0;
    assert_int_equal(store_experiment_cancel(g.app.store, ex, &changed), STORE_OK);
}

/* The expected {name: count} of the outcomes (stop reasons, or labels), runs of every status. */
static json_t *expected_counts(size_t n, int by_label)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        struct outcome oc = outcome_of(i, n);
        const char *k = by_label ? oc.label : oc.stop;
        if (k == NULL)
            continue;
        json_t *v = json_object_get(o, k);
        json_object_set_new(o, k, json_integer(v ? json_integer_value(v) + 1 : 1));
    }
    return o;
}

/* The expected best: lowest finite risk among finished runs, ties to the lower index. */
static size_t expected_best(size_t n, double *risk)
{
    size_t best = n;
    for (size_t i = 0; i < n; i++) {
        struct outcome o = outcome_of(i, n);
        if (o.status != STORE_RUN_FINISHED || !isfinite(o.risk))
            continue;
        if (best == n || o.risk < *risk) {
            best = i;
            *risk = o.risk;
        }
    }
    return best;
}

static void assert_counts(const json_t *got, const json_t *want)
{
    if (!json_equal(got, want)) {
        char *a = json_dumps(got, JSON_SORT_KEYS), *b = json_dumps(want, JSON_SORT_KEYS);
        fprintf(stderr, "got %s\nwant %s\n", a ? a : "?", b ? b : "?");
        free(a);
        free(b);
    }
    assert_true(json_equal(got, want));
}

/* The summary of experiment ex with n runs, checked against the outcome table. */
static void check_summary(const char *ex, size_t n, char (*ids)[STORE_ID_SIZE])
{
    struct http_resp r;
    char path[128];
    double best_risk = NAN;
    size_t best = expected_best(n, &best_risk);
    json_t *reasons = expected_counts(n, 0), *verdicts = expected_counts(n, 1);
    int64_t fin = 0, lab[6] = {0};

    snprintf(path, sizeof path, "/v1/experiments/%s", ex);
    get_json(path, &r);
    const json_t *s = json_object_get(r.json, "summary");
    assert_true(json_is_object(s));
    assert_counts(json_object_get(s, "stop_reasons"), reasons);
    assert_counts(json_object_get(s, "verdicts"), verdicts);
    assert_true(best < n);
    assert_string_equal(json_string_value(json_object_get(s, "best_run_id")), ids[best]);
    assert_true(json_number_value(json_object_get(s, "best_risk")) == best_risk);
    /* the finished runs by label (spurious_stats), from the same table */
    for (size_t i = 0; i < n; i++) {
        struct outcome o = outcome_of(i, n);
        if (o.status != STORE_RUN_FINISHED)
            continue;
        fin++;
        size_t k = 0;
        while (k < 6 &&
               !(o.label == labels[k] || (o.label && labels[k] && strcmp(o.label, labels[k]) == 0)))
            k++;
        lab[k]++;
    }
    const json_t *lc = json_object_get(s, "label_counts");
    assert_int_equal(json_integer_value(json_object_get(lc, "certified_minimum")), lab[0]);
    assert_int_equal(json_integer_value(json_object_get(lc, "likely_minimum")), lab[1]);
    assert_int_equal(json_integer_value(json_object_get(lc, "saddle")), lab[2]);
    assert_int_equal(json_integer_value(json_object_get(lc, "not_converged")), lab[3]);
    assert_int_equal(json_integer_value(json_object_get(lc, "none")), lab[4]);
    assert_int_equal(json_integer_value(json_object_get(lc, "other")), lab[5]);
    assert_true(fin > 0);
    http_resp_free(&r);
    json_decref(reasons);
    json_decref(verdicts);
}

/* ---- tests ---- */

/* More runs than the old scan read: every count is still there and exact. SQLite only: on
 * PostgreSQL the 5000 committed results take close to a minute here (a synchronous commit
 * each), and its SQL has no size limit to test; the small experiments cover its answers. */
static void test_big_experiment(void **state)
{
    (void)state;
    if (pg_url() != NULL)
        skip();
    char ex[STORE_ID_SIZE];
    char(*ids)[STORE_ID_SIZE] = calloc(BIG_RUNS, sizeof *ids);
    assert_non_null(ids);
    build_experiment(BIG_RUNS, ex, ids);
    check_summary(ex, BIG_RUNS, ids);
    free(ids);
}

/* A small experiment: the counts as objects, and a list item with the same summary except
 * stop_reasons / verdicts (null there), the best run included. */
static void test_small_experiment_and_list_item(void **state)
{
    (void)state;
    char ex[STORE_ID_SIZE];
    char ids[40][STORE_ID_SIZE];
    struct http_resp one, list;
    build_experiment(40, ex, ids);
    check_summary(ex, 40, ids);

    get_json("/v1/experiments?limit=100", &list);
    char path[128];
    snprintf(path, sizeof path, "/v1/experiments/%s", ex);
    get_json(path, &one);
    const json_t *items = json_object_get(list.json, "items"), *item = NULL;
    for (size_t i = 0; i < json_array_size(items); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(items, i), "id")), ex) == 0)
            item = json_array_get(items, i);
    assert_non_null(item);
    json_t *want = json_deep_copy(json_object_get(one.json, "summary"));
    assert_non_null(want);
    assert_true(json_is_object(json_object_get(want, "stop_reasons")));
    json_object_set_new(want, "stop_reasons", json_null());
    json_object_set_new(want, "verdicts", json_null());
    assert_counts(json_object_get(item, "summary"), want);
    json_decref(want);
    http_resp_free(&one);
    http_resp_free(&list);
}

/* No run reported yet: empty counts, no best. */
static void test_nothing_finished(void **state)
{
    (void)state;
    char ex[STORE_ID_SIZE], path[128];
    struct store_experiment_new e;
    struct http_resp r;
    int existed = 0;
    memset(&e, 0, sizeof e);
    e.spec = json_pack("{ssss}", "dataset_id", g.ds, "architecture_id", g.ar);
    e.dataset_id = g.ds;
    e.architecture_id = g.ar;
    e.restarts = 3;
    e.seed = 2;
    assert_int_equal(store_experiment_create(g.app.store, &e, ex, &existed), STORE_OK);
    json_decref(e.spec);
    snprintf(path, sizeof path, "/v1/experiments/%s", ex);
    get_json(path, &r);
    const json_t *s = json_object_get(r.json, "summary");
    assert_true(json_is_object(json_object_get(s, "stop_reasons")));
    assert_int_equal(json_object_size(json_object_get(s, "stop_reasons")), 0);
    assert_true(json_is_object(json_object_get(s, "verdicts")));
    assert_int_equal(json_object_size(json_object_get(s, "verdicts")), 0);
    assert_true(json_is_null(json_object_get(s, "best_run_id")));
    assert_true(json_is_null(json_object_get(s, "best_risk")));
    http_resp_free(&r);
    int changed = 0;
    assert_int_equal(store_experiment_cancel(g.app.store, ex, &changed), STORE_OK);
}

/* The store operation's own contract: unknown id, bad arguments. */
static void test_store_contract(void **state)
{
    (void)state;
    struct store_run_counts *c = (struct store_run_counts *)&c;
    assert_int_equal(store_experiment_run_counts(g.app.store, "ex_0000000000000000", 1, &c),
                     STORE_ENOTFOUND);
    assert_null(c);
    c = (struct store_run_counts *)&c;
    assert_int_equal(store_experiment_run_counts(g.app.store, NULL, 1, &c), STORE_EINVAL);
    assert_null(c);
    store_run_counts_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_contract),
        cmocka_unit_test(test_nothing_finished),
        cmocka_unit_test(test_small_experiment_and_list_item),
        cmocka_unit_test(test_big_experiment),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
