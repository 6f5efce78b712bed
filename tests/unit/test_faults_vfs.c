/* Storage and run faults against the real request pipeline: an in-process HTTP server on the
 * full route table (routes.c), a SQLite store opened through the fault-injecting VFS
 * (server/vfs_fault.c), and, where runs must train, the worker pool. libcurl is the client.
 *
 * What is proven (docs/RELIABILITY.md lists it):
 *  - sweeps: for every N until the workload no longer reaches it, the Nth write / sync /
 *    truncate fails (once, or from then on until cleared) with an I/O error or "disk full": every
 *    submission is answered 2xx (acknowledged) or 503 + Retry-After (refused), never anything
 *    else; every earlier acknowledged record still reads back byte for byte while the fault is
 *    active; once the fault clears the refused submissions succeed (the experiment under the
 *    same Idempotency-Key exactly once); and at the end the database passes integrity_check;
 *  - the Nth open of a database file fails: store_open answers STORE_EIO and frees everything,
 *    the next open sees every record committed before;
 *  - faults while workers train: every write or sync fails for a while; submissions get 503,
 *    reads keep answering; afterwards every run finishes exactly once, with results identical
 *    to the same experiment trained after the faults (so no interrupted run left a trace);
 *  - run faults are isolated: a diverging run, a run over its time budget and a cancelled
 *    experiment end in their own terminal states while an experiment trained beside them
 *    gives exactly what it gives alone.
 * Expected values come from the test's own inputs (what it acknowledged), from SQLite's
 * integrity_check, or from a second fault-free training of the same spec. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>

#include "app.h"
#include "basin/status.h"
#include "handlers.h"
#include "http.h"
#include "http_client.h"
#include "limits.h"
#include "store.h"
#include "vfs_fault.h"
#include "worker.h"

/* ---- time ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- fixture: a store through the fault VFS behind an in-process server ---- */

struct fx {
    char dir[64];
    char db[128];
    struct app app;
    struct http_server *srv;
    struct worker_pool *pool;
    uint16_t port;
    CURL *curl;
};

static void quiet_log(void *user, const char *msg)
{
    (void)user;
    (void)msg;
}

static int open_store(struct fx *f, int verbose)
{
    struct store_options opt;
    char err[256] = "";
    memset(&opt, 0, sizeof opt);
    opt.vfs = VFS_FAULT_NAME;
    opt.log = quiet_log; /* every injected fault is logged by design: keep the output readable */
    opt.busy_timeout_ms = 2000;
    int rc = store_open(f->db, &opt, &f->app.store, err, sizeof err);
    if (rc != STORE_OK && verbose)
        fprintf(stderr, "store_open: %s\n", err);
    return rc;
}

static int setup(void **state)
{
    struct http_config cfg;
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL || vfs_fault_register() != 0)
        return -1;
    vfs_fault_clear();
    /* tmpfs when there is one: the sweeps make thousands of fsynced commits */
    snprintf(f->dir, sizeof f->dir, "%s/basinlab_faults_XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->db, sizeof f->db, "%s/store.db", f->dir);
    if (app_init(&f->app) != BASIN_OK)
        return -1;
    limits_defaults(&f->app.limits);
    if (open_store(f, 1) != STORE_OK)
        return -1;
    http_config_defaults(&cfg);
    cfg.port = 0;
    cfg.log_fn = http_log_discard;
    if (http_server_start(&cfg, basinlab_routes, basinlab_route_count, &f->app, &f->srv) != 0)
        return -1;
    f->port = http_server_port(f->srv);
    f->curl = curl_easy_init();
    *state = f;
    return f->curl != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char path[192];
    vfs_fault_clear();
    curl_easy_cleanup(f->curl);
    worker_pool_stop(f->pool);
    http_server_stop(f->srv);
    store_close(f->app.store);
    app_destroy(&f->app);
    static const char *const files[] = {"store.db", "store.db-wal", "store.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, files[i]);
        unlink(path);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Worker diagnostics that report a failed store call (results, points, heartbeats, releases). */
static atomic_int worker_store_failures;

static void worker_log(void *user, const char *msg)
{
    (void)user;
    if (strstr(msg, "failed") != NULL)
        atomic_fetch_add(&worker_store_failures, 1);
}

static void start_workers(struct fx *f, unsigned threads, double max_run_seconds)
{
    struct worker_options o;
    memset(&o, 0, sizeof o);
    o.batch = 4;
    o.idle_poll_ms = 50;
    o.retry_ms = 30;
    o.heartbeat_ms = 100;
    o.flush_ms = 50;
    o.max_run_seconds = max_run_seconds;
    o.name = "faults";
    o.log = worker_log;
    assert_int_equal(worker_pool_start(&f->app, threads, &o, &f->pool), BASIN_OK);
    f->app.workers = f->pool;
}

/* ---- the client (http_client.h) ---- */

/* One request; key (may be NULL) is sent as Idempotency-Key. */
static void call(struct fx *f, const char *method, const char *path, const char *body,
                 const char *key, struct http_resp *r)
{
    char keyh[160];
    struct http_req q = http_req_json(method, path, body);
    q.headers[0] = "Expect:";
    q.timeout_ms = 20000;
    q.parse_json = 1;
    if (key != NULL) {
        snprintf(keyh, sizeof keyh, "Idempotency-Key: %s", key);
        q.headers[1] = keyh;
    }
    assert_int_equal(http_request(f->curl, f->port, &q, r), CURLE_OK);
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* A refusal must be 503 problem+json with Retry-After: the client is told to come back. */
static void assert_refused(const struct http_resp *r, const char *what)
{
    if (r->status != 503)
        fail_msg("%s: expected 2xx or 503, got %ld: %s", what, r->status, r->body ? r->body : "");
    assert_non_null(http_header(r, "Retry-After"));
    assert_non_null(strstr(http_header_or(r, "Content-Type", ""), "application/problem+json"));
    assert_non_null(r->json);
    assert_int_equal(json_integer_value(json_object_get(r->json, "status")), 503);
}

/* ---- what the server acknowledged ---- */

#define MAX_ACKS 512

struct ack {
    char path[96]; /* GET path of the record */
    json_t *view;  /* the body of the 201 (datasets, architectures: immutable views) */
    int is_experiment;
};

struct ledger {
    struct ack acks[MAX_ACKS];
    size_t n;
    size_t keys;    /* distinct Idempotency-Keys used for experiments */
    size_t refused; /* 503 answers seen */
    size_t faulted; /* rounds in which the plan made something fail */
};

static void ledger_add(struct ledger *l, const char *collection, const struct http_resp *r,
                       int is_exp)
{
    assert_true(l->n < MAX_ACKS);
    const char *id = jstr(r->json, "id");
    assert_non_null(id);
    struct ack *a = &l->acks[l->n++];
    snprintf(a->path, sizeof a->path, "%s/%s", collection, id);
    a->view = json_incref(r->json);
    a->is_experiment = is_exp;
}

static void ledger_clear(struct ledger *l)
{
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->acks[i].view);
    l->n = 0;
}

/* Every acknowledged record reads back: datasets and architectures exactly as acknowledged,
 * experiments with their identity and spec unchanged. */
static void ledger_check(struct fx *f, const struct ledger *l, size_t from)
{
    static const char *const exp_fields[] = {"id",       "dataset_id", "architecture_id",
                                             "restarts", "seed",       "created_at"};
    for (size_t i = from; i < l->n; i++) {
        const struct ack *a = &l->acks[i];
        struct http_resp r;
        call(f, "GET", a->path, NULL, NULL, &r);
        if (r.status != 200)
            fail_msg("GET %s while faulted: %ld %s", a->path, r.status, r.body ? r.body : "");
        assert_non_null(r.json);
        if (!a->is_experiment) {
            assert_true(json_equal(r.json, a->view));
        } else {
            for (size_t k = 0; k < sizeof exp_fields / sizeof exp_fields[0]; k++)
                assert_true(json_equal(json_object_get(r.json, exp_fields[k]),
                                       json_object_get(a->view, exp_fields[k])));
        }
        http_resp_free(&r);
    }
}

/* ---- bodies ---- */

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static char *
fmt(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(NULL, 0, format, ap);
    va_end(ap);
    assert_true(n >= 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    va_start(ap, format);
    vsnprintf(s, (size_t)n + 1, format, ap);
    va_end(ap);
    return s;
}

static char *dataset_body(unsigned round)
{
    return fmt("{\"name\": \"ds-%u\", \"kind\": \"inline\", \"x\": [[0,0],[0,1],[1,0],[1,1]], "
               "\"y\": [0,1,1,%u]}",
               round, round % 5);
}

static char *arch_body(unsigned round)
{
    return fmt("{\"name\": \"ar-%u\", \"input_shape\": [2], \"layers\": [{\"type\": \"dense\", "
               "\"units\": %u}, {\"type\": \"activation\", \"kind\": \"relu\"}, {\"type\": "
               "\"dense\", \"units\": 1}]}",
               round, 1 + round % 4);
}

#define XOR_DATA                                                                                   \
    "\"dataset\": {\"kind\": \"inline\", \"x\": [[0,0],[0,1],[1,0],[1,1],[0.5,0.2],[0.3,0.9]], "   \
    "\"y\": [0,1,1,0,0.4,0.7]}"
#define RELU_ARCH                                                                                  \
    "\"architecture\": {\"input_shape\": [2], \"layers\": [{\"type\": \"dense\", \"units\": 3}, "  \
    "{\"type\": \"activation\", \"kind\": \"relu\"}, {\"type\": \"dense\", \"units\": 1}]}"

static char *experiment_body(unsigned restarts, unsigned seed, unsigned max_steps)
{
    return fmt("{" XOR_DATA ", " RELU_ARCH ", \"loss\": \"squared\", \"optimizer\": {\"kind\": "
               "\"gd\", \"lr\": 0.1}, \"restarts\": %u, \"seed\": %u, \"max_steps\": %u, "
               "\"trajectory_every\": 10}",
               restarts, seed, max_steps);
}

/* ---- one round of the sweep ---- */

struct pending {
    const char *collection;
    char *body;
    char key[32];
    int is_exp;
};

/* POST and sort the answer: acknowledged (2xx, into the ledger) or refused (503, into todo). */
static void submit(struct fx *f, struct ledger *l, const char *collection, char *body,
                   const char *key, int is_exp, struct pending *todo, size_t *n_todo)
{
    struct http_resp r;
    call(f, "POST", collection, body, key, &r);
    if (r.status == 201 || r.status == 202) {
        ledger_add(l, collection, &r, is_exp);
        free(body);
    } else {
        assert_refused(&r, collection);
        l->refused++;
        struct pending *p = &todo[(*n_todo)++];
        p->collection = collection;
        p->body = body;
        snprintf(p->key, sizeof p->key, "%s", key ? key : "");
        p->is_exp = is_exp;
    }
    http_resp_free(&r);
}

/* Submissions under the armed plan, reads while it is still armed, then the plan is cleared
 * and every refused submission is sent again and must be acknowledged. */
static void round_under_fault(struct fx *f, struct ledger *l, const struct vfs_fault_plan *plan,
                              unsigned round, struct vfs_fault_stats *stats)
{
    struct pending todo[3];
    size_t n_todo = 0;
    char key[32];
    size_t before = l->n;
    snprintf(key, sizeof key, "sweep-%u", round);

    vfs_fault_arm(plan);
    submit(f, l, "/v1/datasets", dataset_body(round), NULL, 0, todo, &n_todo);
    submit(f, l, "/v1/architectures", arch_body(round), NULL, 0, todo, &n_todo);
    submit(f, l, "/v1/experiments", experiment_body(2, round, 20), key, 1, todo, &n_todo);
    l->keys++;
    /* reads keep working while the fault is still armed: the oldest and newest records */
    ledger_check(f, l, before > 2 ? before - 2 : 0);
    struct http_resp r;
    call(f, "GET", "/v1/experiments?limit=5", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    vfs_fault_get_stats(stats);
    vfs_fault_clear();
    if (stats->failed > 0)
        l->faulted++;
    else
        assert_int_equal(n_todo, 0); /* no fault, no refusal */

    for (size_t i = 0; i < n_todo; i++) {
        struct pending *p = &todo[i];
        call(f, "POST", p->collection, p->body, p->key[0] ? p->key : NULL, &r);
        if (r.status != 201 && r.status != 202)
            fail_msg("retry of %s after the fault cleared: %ld %s", p->collection, r.status,
                     r.body ? r.body : "");
        ledger_add(l, p->collection, &r, p->is_exp);
        http_resp_free(&r);
        free(p->body);
    }
}

static long long db_count(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void assert_integrity(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* The store's own view agrees with the ledger: one experiment per Idempotency-Key, each with
 * its runs, and nothing acknowledged missing. */
static void final_checks(struct fx *f, const struct ledger *l)
{
    ledger_check(f, l, 0);
    assert_int_equal(db_count(f->db, "SELECT count(*) FROM experiments"), (long long)l->keys);
    assert_int_equal(db_count(f->db, "SELECT count(*) FROM experiments WHERE idempotency_key "
                                     "IS NULL"),
                     0);
    assert_int_equal(db_count(f->db, "SELECT count(*) FROM experiments e WHERE restarts <> "
                                     "(SELECT count(*) FROM runs r WHERE r.experiment_id = e.id)"),
                     0);
    assert_integrity(f->db);
}

/* N = 1, 2, ... until the round's workload no longer reaches the Nth operation. */
static void sweep(struct fx *f, struct ledger *l, unsigned ops, enum vfs_fault_error error,
                  int persistent, unsigned *round)
{
    struct vfs_fault_plan plan = {.ops = ops, .persistent = persistent, .error = error};
    struct vfs_fault_stats stats;
    size_t faulted_before = l->faulted;
    for (uint64_t n = 1; n <= 400; n++) {
        plan.nth = n;
        round_under_fault(f, l, &plan, (*round)++, &stats);
        if (stats.failed == 0)
            break;
        assert_true(n < 400); /* the workload is finite: the sweep must end */
    }
    assert_true(l->faulted > faulted_before); /* the plan did make something fail */
    fprintf(stderr,
            "  sweep ops=%u error=%d persistent=%d: %zu faulted rounds, %zu refusals so far\n", ops,
            (int)error, persistent, l->faulted - faulted_before, l->refused);
}

/* ---- the tests ---- */

static void test_write_faults_sweep(void **state)
{
    struct fx *f = *state;
    struct ledger l;
    unsigned round = 0;
    memset(&l, 0, sizeof l);
    sweep(f, &l, VFS_FAULT_WRITE, VFS_FAULT_EIO, 0, &round);
    sweep(f, &l, VFS_FAULT_WRITE, VFS_FAULT_FULL, 1, &round);
    sweep(f, &l, VFS_FAULT_WRITE | VFS_FAULT_TRUNCATE, VFS_FAULT_EIO, 1, &round);
    assert_true(l.refused > 0);
    final_checks(f, &l);
    ledger_clear(&l);
}

static void test_sync_faults_sweep(void **state)
{
    struct fx *f = *state;
    struct ledger l;
    unsigned round = 0;
    memset(&l, 0, sizeof l);
    sweep(f, &l, VFS_FAULT_SYNC, VFS_FAULT_EIO, 0, &round);
    sweep(f, &l, VFS_FAULT_SYNC, VFS_FAULT_EIO, 1, &round);
    sweep(f, &l, VFS_FAULT_SYNC, VFS_FAULT_FULL, 1, &round);
    assert_true(l.refused > 0);
    final_checks(f, &l);
    ledger_clear(&l);
}

/* The Nth open fails while the store opens (the database file, its WAL): a clean STORE_EIO,
 * and the next open sees everything committed before. */
static void test_open_faults(void **state)
{
    struct fx *f = *state;
    struct ledger l;
    struct vfs_fault_stats stats;
    struct http_resp r;
    memset(&l, 0, sizeof l);
    /* something to find again: one record made through the server */
    char *body = dataset_body(1);
    call(f, "POST", "/v1/datasets", body, NULL, &r);
    free(body);
    assert_int_equal(r.status, 201);
    ledger_add(&l, "/v1/datasets", &r, 0);
    http_resp_free(&r);
    http_server_stop(f->srv);
    f->srv = NULL;
    store_close(f->app.store);
    f->app.store = NULL;

    size_t failures = 0;
    const char *ds_id = json_string_value(json_object_get(l.acks[0].view, "id"));
    for (int persistent = 0; persistent <= 1; persistent++) {
        for (uint64_t n = 1; n <= 50; n++) {
            struct vfs_fault_plan plan = {
                .ops = VFS_FAULT_OPEN, .nth = n, .persistent = persistent, .error = VFS_FAULT_EIO};
            struct store_dataset *d = NULL;
            vfs_fault_arm(&plan);
            int rc = open_store(f, 0); /* failures expected */
            /* a read through the freshly opened store, with the plan still armed */
            int grc = rc == STORE_OK ? store_dataset_get(f->app.store, ds_id, STORE_WITH_DATA, &d)
                                     : STORE_OK;
            vfs_fault_get_stats(&stats);
            vfs_fault_clear();
            if (stats.failed > 0) {
                failures++;
                assert_true(rc == STORE_EIO || grc == STORE_EIO);
            } else {
                assert_int_equal(rc, STORE_OK);
                assert_int_equal(grc, STORE_OK);
            }
            if (rc == STORE_OK) {
                assert_non_null(f->app.store);
                if (grc == STORE_OK) {
                    assert_non_null(d);
                    assert_int_equal(d->n, 4);
                }
                store_dataset_free(d);
                store_close(f->app.store);
            } else {
                assert_null(f->app.store);
            }
            f->app.store = NULL;
            if (stats.failed == 0)
                break; /* the opens of one start-up are all behind us */
        }
    }
    assert_true(failures > 0);
    /* fault cleared: the store opens and the record made before is intact */
    assert_int_equal(open_store(f, 1), STORE_OK);
    struct http_config cfg;
    http_config_defaults(&cfg);
    cfg.port = 0;
    cfg.log_fn = http_log_discard;
    assert_int_equal(
        http_server_start(&cfg, basinlab_routes, basinlab_route_count, &f->app, &f->srv), 0);
    f->port = http_server_port(f->srv);
    ledger_check(f, &l, 0);
    assert_integrity(f->db);
    ledger_clear(&l);
}

/* ---- faults while workers train ---- */

static json_t *get_json(struct fx *f, const char *path)
{
    struct http_resp r;
    call(f, "GET", path, NULL, NULL, &r);
    if (r.status != 200)
        fail_msg("GET %s: %ld %s", path, r.status, r.body ? r.body : "");
    json_t *j = json_incref(r.json);
    assert_non_null(j);
    http_resp_free(&r);
    return j;
}

static void wait_settled(struct fx *f, const char *id, const char *want, double timeout_s)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/experiments/%s", id);
    double t0 = now_s();
    for (;;) {
        json_t *e = get_json(f, path);
        const char *st = jstr(e, "status");
        int done = st != NULL && strcmp(st, want) == 0;
        if (!done && now_s() - t0 > timeout_s)
            fail_msg("experiment %s still %s after %.0f s: %s", id, st ? st : "?", timeout_s,
                     json_dumps(json_object_get(e, "progress"), JSON_COMPACT));
        json_decref(e);
        if (done)
            return;
        sleep_ms(50);
    }
}

static json_t *runs_of(struct fx *f, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/experiments/%s/runs?limit=1000", id);
    json_t *page = get_json(f, path);
    json_t *items = json_incref(json_object_get(page, "items"));
    json_decref(page);
    return items;
}

/* The runs of a and b agree index by index on what training determines. */
static void assert_same_results(struct fx *f, const char *a, const char *b, size_t n)
{
    static const char *const fields[] = {"status", "steps", "final_risk", "grad_norm",
                                         "stop_reason"};
    json_t *ra = runs_of(f, a), *rb = runs_of(f, b);
    assert_int_equal(json_array_size(ra), n);
    assert_int_equal(json_array_size(rb), n);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(ra, i), *y = json_array_get(rb, i);
        assert_int_equal(json_integer_value(json_object_get(x, "index")), (json_int_t)i);
        assert_int_equal(json_integer_value(json_object_get(y, "index")), (json_int_t)i);
        for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
            if (!json_equal(json_object_get(x, fields[k]), json_object_get(y, fields[k])))
                fail_msg("run %zu differs in %s", i, fields[k]);
        }
    }
    json_decref(ra);
    json_decref(rb);
}

static char *submit_ok(struct fx *f, const char *body, const char *key)
{
    struct http_resp r;
    call(f, "POST", "/v1/experiments", body, key, &r);
    if (r.status != 202)
        fail_msg("submit: %ld %s", r.status, r.body ? r.body : "");
    char *id = strdup(jstr(r.json, "id"));
    http_resp_free(&r);
    return id;
}

/* Each run of the experiment got exactly one run_finished event (one terminal transition). */
static void assert_finished_once(struct fx *f, const char *id, long long restarts)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM events WHERE experiment_id = '%s' AND type = 'run_finished'",
             id);
    assert_int_equal(db_count(f->db, sql), restarts);
    snprintf(sql, sizeof sql,
             "SELECT count(DISTINCT json_extract(data, '$.run_id')) FROM events "
             "WHERE experiment_id = '%s' AND type = 'run_finished'",
             id);
    assert_int_equal(db_count(f->db, sql), restarts);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM runs WHERE experiment_id = '%s' AND status = 'finished'", id);
    assert_int_equal(db_count(f->db, sql), restarts);
}

static void test_faults_while_training(void **state)
{
    struct fx *f = *state;
    static const struct vfs_fault_plan windows[] = {
        {VFS_FAULT_WRITE, 1, 1, VFS_FAULT_EIO},
        {VFS_FAULT_SYNC, 1, 1, VFS_FAULT_FULL},
        {VFS_FAULT_WRITE | VFS_FAULT_TRUNCATE, 1, 1, VFS_FAULT_FULL},
        {VFS_FAULT_SYNC, 1, 1, VFS_FAULT_EIO},
        {VFS_FAULT_WRITE, 3, 0, VFS_FAULT_EIO},
        {VFS_FAULT_SYNC, 2, 0, VFS_FAULT_EIO},
    };
    enum { RESTARTS = 24 };
    char *body = experiment_body(RESTARTS, 11, 1500);
    char *first = submit_ok(f, body, "training-0");
    char *later[sizeof windows / sizeof windows[0]];
    size_t n_windows = sizeof windows / sizeof windows[0];
    char *small = experiment_body(3, 5, 200);
    atomic_store(&worker_store_failures, 0);
    start_workers(f, 2, 0.0);

    for (size_t w = 0; w < n_windows; w++) {
        char key[32];
        struct http_resp r;
        struct vfs_fault_stats stats;
        char path[96];
        snprintf(key, sizeof key, "training-%zu", w + 1);
        sleep_ms(60);
        vfs_fault_arm(&windows[w]);
        call(f, "POST", "/v1/experiments", small, key, &r);
        if (windows[w].persistent)
            assert_refused(&r, "submission while every write fails");
        else
            assert_true(r.status == 202 || r.status == 503);
        http_resp_free(&r);
        snprintf(path, sizeof path, "/v1/experiments/%s", first);
        json_t *e = get_json(f, path); /* reads keep working */
        json_decref(e);
        json_decref(runs_of(f, first));
        sleep_ms(150); /* the workers hit the fault: results, trajectories, releases fail */
        vfs_fault_get_stats(&stats);
        vfs_fault_clear();
        assert_true(stats.failed > 0);
        later[w] = submit_ok(f, small, key); /* same key: at most one experiment */
    }
    /* the workers did meet the faults (a result, points or a hand-back failed) */
    assert_true(atomic_load(&worker_store_failures) > 0);
    wait_settled(f, first, "finished", 30.0);
    for (size_t w = 0; w < n_windows; w++)
        wait_settled(f, later[w], "finished", 30.0);
    assert_finished_once(f, first, RESTARTS);
    for (size_t w = 0; w < n_windows; w++)
        assert_finished_once(f, later[w], 3);
    assert_int_equal(db_count(f->db, "SELECT count(*) FROM experiments"), (long long)n_windows + 1);

    /* the same experiment without faults trains to the same results */
    char *again = submit_ok(f, body, NULL);
    wait_settled(f, again, "finished", 60.0);
    assert_same_results(f, first, again, RESTARTS);
    worker_pool_stop(f->pool);
    f->pool = NULL;
    f->app.workers = NULL;
    assert_int_equal(db_count(f->db, "SELECT count(*) FROM runs WHERE status <> 'finished'"), 0);
    assert_integrity(f->db);
    for (size_t w = 0; w < n_windows; w++)
        free(later[w]);
    free(again);
    free(first);
    free(small);
    free(body);
}

/* ---- run faults are isolated ---- */

static void stop_workers(struct fx *f)
{
    worker_pool_stop(f->pool);
    f->pool = NULL;
    f->app.workers = NULL;
}

static void assert_all_runs(struct fx *f, const char *id, const char *status,
                            const char *stop_reason)
{
    json_t *runs = runs_of(f, id);
    assert_true(json_array_size(runs) > 0);
    for (size_t i = 0; i < json_array_size(runs); i++) {
        json_t *x = json_array_get(runs, i);
        assert_string_equal(jstr(x, "status"), status);
        if (stop_reason != NULL)
            assert_string_equal(jstr(x, "stop_reason"), stop_reason);
    }
    json_decref(runs);
}

/* Two pools, so that no run meets two faults at once: without a time budget a diverging
 * experiment and a cancelled one beside a good one; with a budget a run that overruns it beside
 * the good one again. Each good experiment must give what it gives alone. */
static void test_run_faults_isolated(void **state)
{
    struct fx *f = *state;
    /* linear regression with lr 50 diverges (the GD map has eigenvalues far outside (−1, 1)) */
    static const char diverging[] =
        "{" XOR_DATA ", \"architecture\": {\"input_shape\": [2], \"layers\": [{\"type\": "
        "\"dense\", \"units\": 1}]}, \"loss\": \"squared\", \"optimizer\": {\"kind\": \"gd\", "
        "\"lr\": 50}, \"restarts\": 2, \"seed\": 3, \"max_steps\": 2000}";
    char *slow = fmt("{" XOR_DATA ", " RELU_ARCH ", \"loss\": \"squared\", \"optimizer\": "
                     "{\"kind\": \"gd\", \"lr\": 0.0001}, \"restarts\": 2, \"seed\": %d, "
                     "\"max_steps\": 10000000, \"trajectory_every\": 100000}",
                     4);
    char *good = experiment_body(6, 9, 400);
    char path[128];
    struct http_resp r;

    /* (1) divergence and a cancel mid-step, no budget */
    start_workers(f, 2, 0.0);
    char *div_id = submit_ok(f, diverging, NULL);
    char *cancel_id = submit_ok(f, slow, NULL);
    char *good_id = submit_ok(f, good, NULL);
    snprintf(path, sizeof path, "/v1/experiments/%s", cancel_id);
    double t0 = now_s();
    for (;;) {
        json_t *e = get_json(f, path);
        json_int_t running =
            json_integer_value(json_object_get(json_object_get(e, "progress"), "running"));
        json_decref(e);
        if (running > 0)
            break;
        assert_true(now_s() - t0 < 20.0);
        sleep_ms(10);
    }
    sleep_ms(100); /* well into its first run: 10^7 steps take far longer */
    snprintf(path, sizeof path, "/v1/experiments/%s/cancel", cancel_id);
    call(f, "POST", path, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    wait_settled(f, div_id, "finished", 30.0);
    wait_settled(f, cancel_id, "cancelled", 30.0);
    wait_settled(f, good_id, "finished", 30.0);
    stop_workers(f);
    assert_all_runs(f, div_id, "failed", "diverged");
    assert_all_runs(f, cancel_id, "cancelled", NULL);
    assert_all_runs(f, good_id, "finished", NULL);

    /* (2) a run over its time budget */
    start_workers(f, 2, 0.3);
    char *slow_id = submit_ok(f, slow, NULL);
    char *good2_id = submit_ok(f, good, NULL);
    wait_settled(f, slow_id, "finished", 30.0);
    wait_settled(f, good2_id, "finished", 30.0);
    stop_workers(f);
    assert_all_runs(f, slow_id, "failed", "time_budget");
    assert_all_runs(f, good2_id, "finished", NULL);

    /* (3) the good experiment alone */
    start_workers(f, 2, 0.0);
    char *alone = submit_ok(f, good, NULL);
    wait_settled(f, alone, "finished", 30.0);
    stop_workers(f);
    assert_same_results(f, good_id, alone, 6);
    assert_same_results(f, good2_id, alone, 6);
    free(div_id);
    free(slow_id);
    free(cancel_id);
    free(good_id);
    free(good2_id);
    free(alone);
    free(slow);
    free(good);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_faults_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_faults_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults_while_training, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_faults_isolated, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
