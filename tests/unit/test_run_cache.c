/* Tests of the rendered-response cache behind GET /v1/runs/{id} (resp_cache.c, h_runs.c) and of
 * the store's change counter (store_data_version) it is validated with. The cache itself is
 * tested directly (hits only at the exact version, LRU eviction within the byte bound, newer
 * entries never replaced by older ones); the handler over real HTTP against a real SQLite store:
 * every change the run view depends on (the run finishing, a run of ANOTHER experiment with the
 * same objective finding a lower risk, cancellation, deletion) shows in the next GET and in its
 * ETag, conditional GETs answer 304 only for the current ETag, and concurrent GETs while runs
 * finish never see a run go back to an older state (run under TSan in CI). Expected values come
 * from the test's own inputs (risks, labels, ids), never from the handler. With
 * BASINLAB_TEST_STORE set to a postgres:// URL (ctest's test_run_cache_on_pg) the HTTP group runs
 * against PostgreSQL in a schema of its own. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "app.h"
#include "basin/alloc.h"
#include "basin/status.h"
#include "handlers.h"
#include "http.h"
#include "http_client.h"
#include "ids.h"
#include "limits.h"
#include "resp_cache.h"
#include "store.h"

/* ---- the cache alone ---- */

static void test_cache_versions(void **state)
{
    (void)state;
    struct resp_cache *c = NULL;
    char *body = NULL, etag[RESP_CACHE_ETAG_SIZE];
    size_t len = 0;
    assert_int_equal(resp_cache_create(1 << 20, &c), BASIN_OK);
    assert_non_null(c);

    assert_int_equal(resp_cache_get(c, "run_a", 5, &body, &len, etag), 0);
    resp_cache_put(c, "run_a", 5, "{\"v\":5}", 7, "\"e5\"");
    assert_int_equal(resp_cache_get(c, "run_a", 5, &body, &len, etag), 1);
    assert_int_equal(len, 7);
    assert_memory_equal(body, "{\"v\":5}", 7);
    assert_string_equal(etag, "\"e5\"");
    basin_free(body);
    /* any other version misses: the counter moved, so the entry may be stale */
    assert_int_equal(resp_cache_get(c, "run_a", 6, &body, &len, etag), 0);
    assert_null(body);
    /* ... and the stale entry was dropped, so even its own version misses now */
    assert_int_equal(resp_cache_get(c, "run_a", 5, &body, &len, etag), 0);

    /* a slow renderer (older version) never replaces a newer entry */
    resp_cache_put(c, "run_b", 9, "new", 3, "\"n\"");
    resp_cache_put(c, "run_b", 8, "old", 3, "\"o\"");
    assert_int_equal(resp_cache_get(c, "run_b", 9, &body, &len, etag), 1);
    assert_memory_equal(body, "new", 3);
    basin_free(body);
    /* a newer one does */
    resp_cache_put(c, "run_b", 10, "newer", 5, "\"m\"");
    assert_int_equal(resp_cache_get(c, "run_b", 10, &body, &len, etag), 1);
    assert_memory_equal(body, "newer", 5);
    assert_string_equal(etag, "\"m\"");
    basin_free(body);

    struct resp_cache_stats st;
    resp_cache_stats(c, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.hits, 3);
    resp_cache_destroy(c);

    /* disabled cache: NULL everywhere */
    assert_int_equal(resp_cache_create(0, &c), BASIN_OK);
    assert_null(c);
    resp_cache_put(NULL, "run_a", 1, "x", 1, "\"x\"");
    assert_int_equal(resp_cache_get(NULL, "run_a", 1, &body, &len, etag), 0);
    resp_cache_destroy(NULL);
}

static void test_cache_byte_bound(void **state)
{
    (void)state;
    enum { BODY = 1000, N = 400 };
    const size_t max = 64 * 1024;
    struct resp_cache *c = NULL;
    char key[32], *body = NULL, etag[RESP_CACHE_ETAG_SIZE];
    size_t len;
    static char blob[BODY];
    struct resp_cache_stats st;
    assert_int_equal(resp_cache_create(max, &c), BASIN_OK);
    for (int i = 0; i < N; i++) {
        memset(blob, 'a' + i % 26, sizeof blob);
        snprintf(key, sizeof key, "run_%d", i);
        resp_cache_put(c, key, 1, blob, sizeof blob, "\"x\"");
        resp_cache_stats(c, &st);
        assert_true(st.bytes <= max);
    }
    /* 400 KB put into 64 KB: most were evicted, and the most recent one survives */
    assert_true(st.evictions > 0);
    assert_true(st.entries * BODY <= max);
    assert_true(st.entries > 0 && st.entries < N);
    snprintf(key, sizeof key, "run_%d", N - 1);
    assert_int_equal(resp_cache_get(c, key, 1, &body, &len, etag), 1);
    assert_int_equal(len, BODY);
    assert_int_equal(body[0], 'a' + (N - 1) % 26);
    basin_free(body);
    /* exactly the entries counted are retrievable: the others were really evicted */
    resp_cache_stats(c, &st);
    size_t found = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "run_%d", i);
        if (resp_cache_get(c, key, 1, &body, &len, etag)) {
            found++;
            assert_int_equal(body[0], 'a' + i % 26);
            basin_free(body);
        }
    }
    assert_int_equal(found, st.entries);
    /* a body larger than a shard's share is not cached at all */
    char *big = basin_calloc(1, max);
    assert_non_null(big);
    resp_cache_put(c, "run_big", 1, big, max, "\"b\"");
    assert_int_equal(resp_cache_get(c, "run_big", 1, &body, &len, etag), 0);
    basin_free(big);
    resp_cache_stats(c, &st);
    assert_true(st.bytes <= max);
    resp_cache_destroy(c);
}

/* ---- fixture: one server and store for the HTTP tests ---- */

static struct {
    char dir[64];
    char db[512]; /* the store's location: a SQLite file, or a postgres:// URL with a schema */
    char schema[32];
    struct app app;
    struct http_server *srv;
    uint16_t port;
    CURL *curl;
    char ds[STORE_ID_SIZE], ar[STORE_ID_SIZE];
} g;

/* The PostgreSQL URL under test (ctest's test_run_cache_on_pg, scripts/pg), or NULL for SQLite. */
static const char *pg_url(void)
{
    const char *u = getenv("BASINLAB_TEST_STORE");
    return u && (strncmp(u, "postgres://", 11) == 0 || strncmp(u, "postgresql://", 13) == 0) ? u
                                                                                             : NULL;
}

static int group_setup(void **state)
{
    (void)state;
    char err[256] = "";
    struct http_config cfg;
    snprintf(g.dir, sizeof g.dir, "/tmp/basinlab_rc_XXXXXX");
    if (mkdtemp(g.dir) == NULL)
        return -1;
    snprintf(g.db, sizeof g.db, "%s/store.db", g.dir);
    if (pg_url() != NULL) {
        if (ids_new("t_", g.schema, sizeof g.schema) != 0)
            return -1;
        snprintf(g.db, sizeof g.db, "%s%sschema=%s", pg_url(), strchr(pg_url(), '?') ? "&" : "?",
                 g.schema);
    }
    memset(&g.app, 0, sizeof g.app);
    /* a small cache, so the HTTP tests also exercise eviction; set before the server starts
     * (swapping app.run_cache under live keep-alive connections would be a data race) */
    if (setenv("BASINLAB_RUN_CACHE_BYTES", "32768", 1) != 0)
        return -1;
    if (app_init(&g.app) != BASIN_OK || g.app.run_cache == NULL)
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
    if (g.schema[0] != '\0') {
        char sql[96];
        PGconn *c = PQconnectdb(pg_url());
        snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", g.schema);
        if (PQstatus(c) == CONNECTION_OK)
            PQclear(PQexec(c, sql));
        PQfinish(c);
    }
    static const char *const files[] = {"store.db", "store.db-wal", "store.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", g.dir, files[i]);
        unlink(path);
    }
    rmdir(g.dir);
    return 0;
}

static void get_with(CURL *c, const char *path, const char *inm, struct http_resp *r)
{
    char hdr[128];
    struct http_req q = {.path = path, .timeout_ms = 15000, .parse_json = 1};
    if (inm != NULL) {
        snprintf(hdr, sizeof hdr, "If-None-Match: %s", inm);
        q.headers[0] = hdr;
    }
    assert_int_equal(http_request(c, g.port, &q, r), CURLE_OK);
}

static void get_run(const char *run, const char *inm, struct http_resp *r)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/runs/%s", run);
    get_with(g.curl, path, inm, r);
}

static void create(const char *path, const char *body, char id[STORE_ID_SIZE])
{
    struct http_resp r;
    struct http_req q = http_req_json("POST", path, body);
    q.parse_json = 1;
    q.timeout_ms = 15000;
    assert_int_equal(http_request(g.curl, g.port, &q, &r), CURLE_OK);
    assert_int_equal(r.status, 201);
    snprintf(id, STORE_ID_SIZE, "%s", json_string_value(json_object_get(r.json, "id")));
    http_resp_free(&r);
}

static void ensure_objects(void)
{
    if (g.ds[0] != '\0')
        return;
    create("/v1/datasets", "{\"kind\": \"inline\", \"x\": [[1, 2], [0, 1]], \"y\": [3, 1]}", g.ds);
    create("/v1/architectures",
           "{\"name\": \"a3\", \"input_shape\": [2], \"layers\": [{\"type\": \"dense\", \"units\": "
           "3}, {\"type\": \"activation\", \"kind\": \"relu\"}, {\"type\": \"dense\", \"units\": "
           "1}]}",
           g.ar);
}

/* An experiment of restarts runs on the shared dataset and architecture (so every experiment
 * here has the same objective key), all its runs claimed when claim is set. */
static void new_experiment(int64_t restarts, char id[STORE_ID_SIZE], struct store_claim **claim)
{
    struct store_experiment_new e;
    int existed = 0;
    ensure_objects();
    memset(&e, 0, sizeof e);
    e.dataset_id = g.ds;
    e.architecture_id = g.ar;
    e.spec = json_pack("{s:s, s:s, s:I}", "dataset_id", g.ds, "architecture_id", g.ar, "restarts",
                       (json_int_t)restarts);
    e.restarts = restarts;
    e.seed = 7;
    assert_int_equal(store_experiment_create(g.app.store, &e, id, &existed), STORE_OK);
    json_decref(e.spec);
    if (claim == NULL)
        return;
    assert_int_equal(store_claim_runs(g.app.store, "w-test", (size_t)restarts, claim), STORE_OK);
    assert_non_null(*claim);
    assert_string_equal((*claim)->experiment_id, id);
    assert_int_equal((*claim)->n_runs, (size_t)restarts);
}

static void finish(const struct store_claim *claim, size_t i, double risk)
{
    struct store_run_result res;
    memset(&res, 0, sizeof res);
    res.run_id = claim->runs[i].id;
    res.token = claim->token;
    res.status = STORE_RUN_FINISHED;
    res.steps = 10;
    res.stop_reason = "max_steps";
    res.initial_risk = 1.0;
    res.final_risk = risk;
    res.grad_norm = 1e-9;
    res.param_norm = 1.0;
    res.verdict = json_pack("{s:s}", "label", "certified_minimum");
    res.verdict_label = "certified_minimum";
    assert_int_equal(store_run_finish(g.app.store, &res), STORE_OK);
    json_decref(res.verdict);
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void etag_of(const struct http_resp *r, char *out, size_t cap)
{
    assert_true(http_header_copy(r, "ETag", out, cap));
    assert_true(strlen(out) >= 3 && out[0] == '"');
}

static uint64_t cache_hits(void)
{
    struct resp_cache_stats st;
    resp_cache_stats(g.app.run_cache, &st);
    return st.hits;
}

/* ---- every change shows ---- */

static void test_counter_moves_on_writes(void **state)
{
    (void)state;
    uint64_t v0 = 0, v1 = 0, v2 = 0;
    char ex[STORE_ID_SIZE];
    struct store_claim *claim = NULL;
    assert_int_equal(store_data_version(g.app.store, &v0), STORE_OK);
    assert_int_equal(store_data_version(g.app.store, &v1), STORE_OK);
    assert_true(v1 == v0); /* reads do not move it */
    new_experiment(1, ex, &claim);
    assert_int_equal(store_data_version(g.app.store, &v1), STORE_OK);
    assert_true(v1 > v0);
    finish(claim, 0, 0.75);
    assert_int_equal(store_data_version(g.app.store, &v2), STORE_OK);
    assert_true(v2 > v1);
    store_claim_free(claim);
    assert_int_equal(store_experiment_delete(g.app.store, ex), STORE_OK);
    assert_int_equal(store_data_version(g.app.store, &v0), STORE_OK);
    assert_true(v0 > v2);
}

static void test_get_follows_changes(void **state)
{
    (void)state;
    char exa[STORE_ID_SIZE], exb[STORE_ID_SIZE], exc[STORE_ID_SIZE];
    char e1[64], e2[64], e3[64], e4[64], run0[STORE_ID_SIZE], runb[STORE_ID_SIZE];
    struct store_claim *ca = NULL, *cb = NULL;
    struct http_resp r;

    new_experiment(2, exa, &ca);
    snprintf(run0, sizeof run0, "%s", ca->runs[0].id);

    /* running: 200, then a cache hit with the same body and ETag, then 304 for that ETag */
    get_run(run0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "status"), "running");
    etag_of(&r, e1, sizeof e1);
    char *first = strdup(r.body);
    http_resp_free(&r);
    uint64_t hits = cache_hits();
    get_run(run0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, first);
    assert_string_equal(http_header(&r, "ETag"), e1);
    assert_string_equal(http_header(&r, "Content-Type"), "application/json");
    assert_true(cache_hits() == hits + 1);
    http_resp_free(&r);
    free(first);
    hits = cache_hits();
    get_run(run0, e1, &r);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.len, 0);
    assert_string_equal(http_header(&r, "ETag"), e1);
    assert_true(cache_hits() == hits + 1); /* answered from the cache, without a body copy */
    http_resp_free(&r);
    /* a list naming the tag among others (the router's comparison) is a 304 too */
    char tags[160];
    snprintf(tags, sizeof tags, "\"0000000000000000\", W/%s", e1);
    get_run(run0, tags, &r);
    assert_int_equal(r.status, 304);
    http_resp_free(&r);

    /* the run finishes: the next GET shows it, with a new ETag; the old one gets a 200 */
    finish(ca, 0, 0.5);
    get_run(run0, e1, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "status"), "finished");
    assert_true(json_number_value(json_object_get(r.json, "final_risk")) == 0.5);
    json_t *sp = json_object_get(r.json, "spurious");
    assert_true(json_is_false(json_object_get(sp, "flag"))); /* it is the best so far */
    etag_of(&r, e2, sizeof e2);
    assert_string_not_equal(e2, e1);
    http_resp_free(&r);
    get_run(run0, e2, &r);
    assert_int_equal(r.status, 304);
    http_resp_free(&r);

    /* a run of ANOTHER experiment with the same objective finds a lower risk: run0 is now a
     * spurious minimum with that run as its witness */
    new_experiment(1, exb, &cb);
    snprintf(runb, sizeof runb, "%s", cb->runs[0].id);
    get_run(run0, e2, &r); /* only an unrelated insert so far: same body, so still 304 */
    assert_int_equal(r.status, 304);
    http_resp_free(&r);
    finish(cb, 0, 0.125);
    get_run(run0, e2, &r);
    assert_int_equal(r.status, 200);
    sp = json_object_get(r.json, "spurious");
    assert_true(json_is_true(json_object_get(sp, "flag")));
    assert_string_equal(jstr(sp, "witness_run_id"), runb);
    assert_string_equal(jstr(sp, "witness_experiment_id"), exb);
    assert_true(fabs(json_number_value(json_object_get(sp, "gap")) - 0.375) < 1e-15);
    etag_of(&r, e3, sizeof e3);
    assert_string_not_equal(e3, e2);
    http_resp_free(&r);

    /* the witness's experiment is deleted: its run is gone and run0 is the best again */
    store_claim_free(cb);
    assert_int_equal(store_experiment_delete(g.app.store, exb), STORE_OK);
    get_run(runb, NULL, &r);
    assert_int_equal(r.status, 404);
    http_resp_free(&r);
    get_run(run0, e3, &r);
    assert_int_equal(r.status, 200);
    sp = json_object_get(r.json, "spurious");
    assert_true(json_is_false(json_object_get(sp, "flag")));
    assert_true(json_is_null(json_object_get(sp, "witness_run_id")));
    etag_of(&r, e4, sizeof e4);
    assert_string_equal(e4, e2); /* the same body as before the witness existed */
    http_resp_free(&r);

    /* cancellation: a queued run becomes cancelled at once */
    new_experiment(1, exc, NULL);
    struct store_run_list *list = NULL;
    assert_int_equal(store_run_list(g.app.store, exc, NULL, 10, NULL, &list), STORE_OK);
    assert_int_equal(list->n, 1);
    char runc[STORE_ID_SIZE];
    snprintf(runc, sizeof runc, "%s", list->items[0].id);
    store_run_list_free(list);
    get_run(runc, NULL, &r);
    assert_string_equal(jstr(r.json, "status"), "queued");
    etag_of(&r, e1, sizeof e1);
    http_resp_free(&r);
    int changed = 0;
    assert_int_equal(store_experiment_cancel(g.app.store, exc, &changed), STORE_OK);
    assert_int_equal(changed, 1);
    get_run(runc, e1, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "status"), "cancelled");
    http_resp_free(&r);

    /* the run itself deleted (its experiment): 404, never the cached body */
    get_run(run0, NULL, &r);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    store_claim_free(ca);
    assert_int_equal(store_experiment_delete(g.app.store, exa), STORE_OK);
    get_run(run0, NULL, &r);
    assert_int_equal(r.status, 404);
    http_resp_free(&r);
    get_run(run0, e4, &r);
    assert_int_equal(r.status, 404);
    http_resp_free(&r);
    assert_int_equal(store_experiment_delete(g.app.store, exc), STORE_OK);
}

/* Through HTTP the cache keeps to its bound (32 KB, from BASINLAB_RUN_CACHE_BYTES), and an
 * evicted run renders the same answer again. */
static void test_http_byte_bound(void **state)
{
    (void)state;
    enum { RUNS = 48 };
    char ex[STORE_ID_SIZE];
    char *bodies[RUNS];
    struct store_claim *claim = NULL;
    struct http_resp r;
    struct resp_cache_stats st;

    resp_cache_stats(g.app.run_cache, &st);
    assert_int_equal(st.max_bytes, 32768);
    uint64_t evictions0 = st.evictions;
    new_experiment(RUNS, ex, &claim);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < RUNS; i++) {
            get_run(claim->runs[i].id, NULL, &r);
            assert_int_equal(r.status, 200);
            assert_string_equal(jstr(r.json, "id"), claim->runs[i].id);
            if (pass == 0)
                bodies[i] = strdup(r.body);
            else
                assert_string_equal(r.body, bodies[i]); /* evicted or not, the same answer */
            http_resp_free(&r);
            resp_cache_stats(g.app.run_cache, &st);
            assert_true(st.bytes <= st.max_bytes);
        }
    }
    assert_true(st.evictions > evictions0);
    assert_true(st.entries < RUNS);
    for (size_t i = 0; i < RUNS; i++)
        free(bodies[i]);
    store_claim_free(claim);
    assert_int_equal(store_experiment_delete(g.app.store, ex), STORE_OK);
}

/* ---- concurrent GETs while runs finish ---- */

enum { CONC_RUNS = 12, CONC_READERS = 3 };

struct conc {
    const struct store_claim *claim;
    atomic_int done;
};

static int status_rank(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "running") == 0)
        return 0;
    if (strcmp(s, "finished") == 0)
        return 1;
    return -1;
}

struct reader {
    struct conc *c;
    int errors;
    long requests;
};

/* Loops over the runs; a run once seen finished must never be seen running again. */
static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    int seen[CONC_RUNS] = {0};
    char path[96];
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        rd->errors++;
        return NULL;
    }
    while (!atomic_load(&rd->c->done)) {
        for (size_t i = 0; i < CONC_RUNS; i++) {
            struct http_resp r;
            struct http_req q = {.path = path, .timeout_ms = 15000, .parse_json = 1};
            snprintf(path, sizeof path, "/v1/runs/%s", rd->c->claim->runs[i].id);
            if (http_request(curl, g.port, &q, &r) != CURLE_OK || r.status != 200) {
                rd->errors++;
            } else {
                int rank = status_rank(jstr(r.json, "status"));
                if (rank < seen[i])
                    rd->errors++;
                else
                    seen[i] = rank;
            }
            rd->requests++;
            http_resp_free(&r);
        }
    }
    curl_easy_cleanup(curl);
    return NULL;
}

static void test_concurrent_gets(void **state)
{
    (void)state;
    char ex[STORE_ID_SIZE];
    struct store_claim *claim = NULL;
    struct conc c;
    struct reader rd[CONC_READERS];
    pthread_t tid[CONC_READERS];
    struct http_resp r;

    new_experiment(CONC_RUNS, ex, &claim);
    c.claim = claim;
    atomic_init(&c.done, 0);
    for (int t = 0; t < CONC_READERS; t++) {
        rd[t] = (struct reader){.c = &c};
        assert_int_equal(pthread_create(&tid[t], NULL, reader_main, &rd[t]), 0);
    }
    for (size_t i = 0; i < CONC_RUNS; i++) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
        finish(claim, i, 1.0 - 0.01 * (double)i);
        /* read-your-writes: a GET after the commit sees it, whatever the readers cached */
        get_run(claim->runs[i].id, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(jstr(r.json, "status"), "finished");
        assert_true(json_number_value(json_object_get(r.json, "final_risk")) ==
                    1.0 - 0.01 * (double)i);
        http_resp_free(&r);
        /* and an earlier run's witness is now the newest (lowest) one */
        if (i > 0) {
            get_run(claim->runs[0].id, NULL, &r);
            json_t *sp = json_object_get(r.json, "spurious");
            assert_string_equal(jstr(sp, "witness_run_id"), claim->runs[i].id);
            http_resp_free(&r);
        }
    }
    atomic_store(&c.done, 1);
    long total = 0;
    for (int t = 0; t < CONC_READERS; t++) {
        pthread_join(tid[t], NULL);
        assert_int_equal(rd[t].errors, 0);
        total += rd[t].requests;
    }
    assert_true(total > 0);
    store_claim_free(claim);
    assert_int_equal(store_experiment_delete(g.app.store, ex), STORE_OK);
}

int main(void)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(test_cache_versions),
        cmocka_unit_test(test_cache_byte_bound),
    };
    const struct CMUnitTest http[] = {
        cmocka_unit_test(test_counter_moves_on_writes),
        cmocka_unit_test(test_get_follows_changes),
        cmocka_unit_test(test_http_byte_bound),
        cmocka_unit_test(test_concurrent_gets),
    };
    int failed = cmocka_run_group_tests_name("resp_cache", unit, NULL, NULL);
    failed += cmocka_run_group_tests_name("run_cache_http", http, group_setup, group_teardown);
    return failed;
}
