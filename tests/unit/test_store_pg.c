/* Tests of what only the PostgreSQL backend (server/store_pg*.c) has to get right, beyond the
 * store contract that test_store runs against both backends: the migration race (five
 * processes open an empty schema at the same moment; the schema is applied exactly once and
 * every process succeeds), a database newer than the binary, SSE event ids under concurrent
 * writers (a reader that only asks for ids above the last it saw never misses one), fencing
 * across two independent store handles (a worker whose lease expired cannot write a result or
 * trajectory points after the run was claimed again), the retry accounting of lost claims
 * reaped through another handle (only the run a worker was executing is charged), recovery of
 * pooled connections the server dropped, and the redaction of passwords in locations.
 *
 * Needs a PostgreSQL server: the URL comes from BASINLAB_TEST_STORE or, under ctest, from the
 * throwaway cluster of scripts/pg (BASINLAB_PG_STATE/url); without one every test is skipped.
 * Each test works in a fresh schema of its own. Expected values come from direct SQL (libpq)
 * and the test's own bookkeeping, never from the store under test. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "ids.h"
#include "store.h"
#include "store_pg.h"

static char base_url[512];

struct fx {
    char schema[32];
    char location[640];
    struct store *s;
    char ds[STORE_ID_SIZE];
    char ar[STORE_ID_SIZE];
};

/* ---- PostgreSQL ---- */

static int find_url(void)
{
    const char *u = getenv("BASINLAB_TEST_STORE");
    const char *state = getenv("BASINLAB_PG_STATE");
    if (u && (strncmp(u, "postgres://", 11) == 0 || strncmp(u, "postgresql://", 13) == 0)) {
        snprintf(base_url, sizeof base_url, "%s", u);
        return 1;
    }
    if (state) {
        char path[600];
        FILE *f;
        snprintf(path, sizeof path, "%s/url", state);
        f = fopen(path, "r");
        if (f && fgets(base_url, sizeof base_url, f)) {
            base_url[strcspn(base_url, "\r\n")] = '\0';
            fclose(f);
            return base_url[0] != '\0';
        }
        if (f)
            fclose(f);
    }
    return 0;
}

static PGconn *pg_connect(const char *schema)
{
    char sql[96];
    PGconn *c = PQconnectdb(base_url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    if (schema) {
        snprintf(sql, sizeof sql, "SET search_path TO %s", schema);
        PQclear(PQexec(c, sql));
    }
    return c;
}

static int64_t pg_int(const char *schema, const char *sql)
{
    PGconn *c = pg_connect(schema);
    PGresult *r = PQexec(c, sql);
    int64_t v;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    v = PQgetvalue(r, 0, 0)[0] == 't' ? 1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

static void pg_exec(const char *schema, const char *sql)
{
    PGconn *c = pg_connect(schema);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
    assert_true(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(c);
}

static void new_schema(struct fx *f)
{
    char hex[STORE_ID_SIZE];
    assert_int_equal(ids_new("p_", hex, sizeof hex), 0);
    snprintf(f->schema, sizeof f->schema, "%s", hex);
    /* the schema also names the sessions, so a test can find its own in pg_stat_activity */
    snprintf(f->location, sizeof f->location, "%s%sschema=%s&application_name=%s", base_url,
             strchr(base_url, '?') ? "&" : "?", f->schema, f->schema);
}

static int open_store(struct fx *f, struct store **s)
{
    char err[256] = "";
    int rc = store_open(f->location, NULL, s, err, sizeof err);
    if (rc != STORE_OK)
        fprintf(stderr, "store_open: %s\n", err);
    return rc;
}

/* ---- fixture ---- */

static int setup(void **state)
{
    struct fx *f;
    if (!base_url[0])
        return 0; /* every test skips */
    f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    new_schema(f);
    if (open_store(f, &f->s) != STORE_OK)
        return -1;
    {
        double x[2] = {0.5, -1.0}, y[1] = {1.0};
        struct store_dataset d;
        struct store_architecture a;
        int rc;
        memset(&d, 0, sizeof d);
        d.kind = "inline";
        d.task = "regression";
        d.spec = json_pack("{ss}", "kind", "inline");
        d.input_shape = json_pack("[i]", 2);
        d.n = 1;
        d.in_dim = 2;
        d.y_dim = 1;
        d.x = x;
        d.y = y;
        rc = store_dataset_insert(f->s, &d, f->ds);
        json_decref(d.spec);
        json_decref(d.input_shape);
        memset(&a, 0, sizeof a);
        a.spec = json_pack("{s[i]s[]}", "input_shape", 2, "layers");
        a.param_count = 3;
        a.out_dim = 1;
        if (rc == STORE_OK)
            rc = store_architecture_insert(f->s, &a, f->ar);
        json_decref(a.spec);
        if (rc != STORE_OK)
            return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char sql[96];
    if (!f)
        return 0;
    store_close(f->s);
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", f->schema);
    pg_exec(NULL, sql);
    free(f);
    return 0;
}

#define NEED_PG()                                                                                  \
    do {                                                                                           \
        if (!base_url[0])                                                                          \
            skip();                                                                                \
    } while (0)

static int new_experiment(struct fx *f, int64_t restarts, char id[STORE_ID_SIZE])
{
    struct store_experiment_new e;
    int existed, rc;
    memset(&e, 0, sizeof e);
    e.dataset_id = f->ds;
    e.architecture_id = f->ar;
    e.spec = json_pack("{sI}", "restarts", (json_int_t)restarts);
    e.restarts = restarts;
    e.seed = 11;
    rc = store_experiment_create(f->s, &e, id, &existed);
    json_decref(e.spec);
    return rc;
}

static int finish(struct store *s, const char *run_id, const char *token, double risk)
{
    struct store_run_result r;
    double params[3] = {risk, -risk, 0.25};
    memset(&r, 0, sizeof r);
    r.run_id = run_id;
    r.token = token;
    r.status = STORE_RUN_FINISHED;
    r.steps = 5;
    r.stop_reason = "grad_tol";
    r.initial_risk = 1.0;
    r.final_risk = risk;
    r.grad_norm = 1e-9;
    r.param_norm = 1.0;
    r.params = params;
    r.n_params = 3;
    return store_run_finish(s, &r);
}

/* ---- the migration race ---- */

#define RACERS 5

static void test_migration_race(void **state)
{
    struct fx *f = *state;
    int round;
    NEED_PG();
    for (round = 0; round < 3; round++) {
        struct fx g;
        pid_t pids[RACERS];
        int gate[2], i, ok = 0;
        memset(&g, 0, sizeof g);
        new_schema(&g);
        assert_int_equal(pipe(gate), 0);
        for (i = 0; i < RACERS; i++) {
            pids[i] = fork();
            assert_true(pids[i] >= 0);
            if (pids[i] == 0) {
                char c;
                struct store *s = NULL;
                char err[256] = "";
                close(gate[1]);
                /* every child blocks here until the parent closes the gate */
                if (read(gate[0], &c, 1) < 0)
                    _exit(3);
                int rc = store_open(g.location, NULL, &s, err, sizeof err);
                if (rc != STORE_OK)
                    fprintf(stderr, "racer %d: %s\n", i, err);
                store_close(s);
                _exit(rc == STORE_OK ? 0 : 1);
            }
        }
        close(gate[0]);
        close(gate[1]); /* go */
        for (i = 0; i < RACERS; i++) {
            int st = 0;
            assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
            ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
        }
        assert_int_equal(ok, RACERS);
        /* each migration recorded once, versions 1..N without gaps, tables present once */
        int64_t n = pg_int(g.schema, "SELECT count(*) FROM schema_migrations");
        assert_true(n >= 2);
        assert_int_equal(pg_int(g.schema, "SELECT count(DISTINCT version) FROM schema_migrations"),
                         n);
        assert_int_equal(pg_int(g.schema, "SELECT max(version) FROM schema_migrations"), n);
        char sql[200];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM information_schema.tables WHERE table_schema = '%s' "
                 "AND table_name = 'runs'",
                 g.schema);
        assert_int_equal(pg_int(NULL, sql), 1);
        snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", g.schema);
        pg_exec(NULL, sql);
    }
    (void)f;
}

/* ---- a database from the future ---- */

static void test_refuses_newer_schema(void **state)
{
    struct fx *f = *state;
    struct store *s = (struct store *)1;
    char err[256] = "";
    int version = 0;
    NEED_PG();
    assert_int_equal(store_schema_version(f->s, &version), STORE_OK);
    assert_int_equal(version, pg_int(f->schema, "SELECT max(version) FROM schema_migrations"));
    pg_exec(f->schema, "INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')");
    assert_int_equal(store_open(f->location, NULL, &s, err, sizeof err), STORE_ETOONEW);
    assert_null(s);
    assert_non_null(strstr(err, "9999"));
    /* nothing was changed: the future version is still the highest */
    assert_int_equal(pg_int(f->schema, "SELECT max(version) FROM schema_migrations"), 9999);
}

/* ---- SSE ids under concurrent writers ---- */

#define EV_RUNS 120
#define EV_WRITERS 4

struct writer {
    struct store *s;
    int errors;
    atomic_int *done; /* writers that have finished */
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (;;) {
        struct store_claim *c = NULL;
        if (store_claim_runs(w->s, "w", 1, &c) != STORE_OK) {
            w->errors++;
            break;
        }
        if (!c)
            break;
        if (finish(w->s, c->runs[0].id, c->token, 0.5) != STORE_OK)
            w->errors++;
        store_claim_free(c);
    }
    atomic_fetch_add(w->done, 1);
    return NULL;
}

static void test_event_ids_commit_in_order(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE];
    struct writer w[EV_WRITERS];
    pthread_t th[EV_WRITERS];
    struct store *wstore[EV_WRITERS];
    char(*seen)[STORE_ID_SIZE] = calloc(EV_RUNS * 2, STORE_ID_SIZE);
    size_t n_seen = 0, i, k;
    int64_t last = 0;
    struct timespec t0, t;
    atomic_int done;
    int quiet_after_done = 0;
    NEED_PG();
    atomic_init(&done, 0);
    assert_non_null(seen);
    assert_int_equal(new_experiment(f, EV_RUNS, ex), STORE_OK);
    for (i = 0; i < EV_WRITERS; i++) {
        /* separate store handles: separate pools, as separate processes would have */
        assert_int_equal(open_store(f, &wstore[i]), STORE_OK);
        w[i].s = wstore[i];
        w[i].errors = 0;
        w[i].done = &done;
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    /* the reader: only ever asks for ids above the last one it saw, like an SSE stream */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct store_event_list *l = NULL;
        int writers_done = atomic_load(&done) == EV_WRITERS;
        assert_int_equal(store_events_since(f->s, ex, last, 50, &l), STORE_OK);
        /* once every writer finished, a read that finds nothing new is the end: an event
         * skipped by the reader would never show up again */
        quiet_after_done = writers_done && l->n == 0;
        for (k = 0; k < l->n; k++) {
            assert_true(l->items[k].id > last);
            last = l->items[k].id;
            if (strcmp(l->items[k].type, "run_finished") == 0) {
                const char *rid = json_string_value(json_object_get(l->items[k].data, "run_id"));
                assert_non_null(rid);
                assert_true(n_seen < EV_RUNS * 2);
                snprintf(seen[n_seen++], STORE_ID_SIZE, "%s", rid);
            }
        }
        store_event_list_free(l);
        if (n_seen >= EV_RUNS || quiet_after_done)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        assert_true(t.tv_sec - t0.tv_sec < 60);
    }
    for (i = 0; i < EV_WRITERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].errors, 0);
        store_close(wstore[i]);
    }
    /* every run's event seen exactly once by the incremental reader */
    assert_int_equal(n_seen, EV_RUNS);
    for (i = 0; i < n_seen; i++)
        for (k = i + 1; k < n_seen; k++)
            assert_string_not_equal(seen[i], seen[k]);
    {
        char sql[200];
        snprintf(sql, sizeof sql,
                 "SELECT count(DISTINCT data->>'run_id') FROM events WHERE experiment_id = '%s' "
                 "AND type = 'run_finished'",
                 ex);
        assert_int_equal(pg_int(f->schema, sql), EV_RUNS);
    }
    assert_int_equal(pg_int(f->schema, "SELECT count(*) FROM experiments WHERE status = "
                                       "'finished'"),
                     1);
    free(seen);
}

/* ---- fencing across processes' handles ---- */

static void test_fencing_after_lease_expiry(void **state)
{
    struct fx *f = *state;
    struct store *other = NULL;
    struct store_claim *a = NULL, *b = NULL;
    struct store_traj_point pt = {1, 0.5, 0.1, 1.0};
    char ex[STORE_ID_SIZE];
    int64_t requeued = 0, failed = 0;
    int cancel = -1;
    char sql[200];
    NEED_PG();
    assert_int_equal(open_store(f, &other), STORE_OK);
    assert_int_equal(new_experiment(f, 1, ex), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "lost", 1, &a), STORE_OK);
    assert_non_null(a);
    assert_int_equal(store_trajectory_append(f->s, a->runs[0].id, a->token, &pt, 1), STORE_OK);
    /* a reaper elsewhere: this lease is older than "now + 1 s" */
    assert_int_equal(
        store_requeue_stale(other, (int64_t)time(NULL) * 1000 + 1000, &requeued, &failed),
        STORE_OK);
    assert_int_equal(requeued, 1);
    assert_int_equal(failed, 0);
    /* the partial trajectory of the lost attempt is gone */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM trajectory_chunks WHERE run_id = '%s'",
             a->runs[0].id);
    assert_int_equal(pg_int(f->schema, sql), 0);
    assert_int_equal(store_claim_runs(other, "new", 1, &b), STORE_OK);
    assert_non_null(b);
    assert_string_equal(b->runs[0].id, a->runs[0].id);
    assert_int_equal(b->runs[0].attempts, 2);
    /* the lost worker comes back: heartbeat, points and result are all refused */
    assert_int_equal(store_claim_heartbeat(f->s, a->token, &cancel), STORE_ECONFLICT);
    assert_int_equal(store_trajectory_append(f->s, a->runs[0].id, a->token, &pt, 1),
                     STORE_ECONFLICT);
    assert_int_equal(finish(f->s, a->runs[0].id, a->token, 9.0), STORE_ECONFLICT);
    assert_int_equal(finish(other, b->runs[0].id, b->token, 0.25), STORE_OK);
    assert_int_equal(finish(f->s, a->runs[0].id, a->token, 9.0), STORE_ECONFLICT);
    assert_int_equal(finish(other, b->runs[0].id, b->token, 0.125), STORE_ECONFLICT);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM runs WHERE id = '%s' AND final_risk = 0.25 AND "
             "claimed_by = 'new'",
             a->runs[0].id);
    assert_int_equal(pg_int(f->schema, sql), 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM events WHERE type = 'run_finished' AND data->>'run_id' = '%s'",
             a->runs[0].id);
    assert_int_equal(pg_int(f->schema, sql), 1);
    store_claim_free(a);
    store_claim_free(b);
    store_close(other);
}

/* ---- retry accounting of lost workers, reaped from another handle ---- */

/* The run's status and attempts as PostgreSQL has them (one row, or the test fails). */
static void expect_run(const struct fx *f, const char *run_id, const char *status, int64_t attempts)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT attempts FROM runs WHERE id = '%s' AND status = '%s'", run_id,
             status);
    assert_int_equal(pg_int(f->schema, sql), attempts);
}

/* A worker runs its claim one run at a time in index order, so the reaper charges a lost claim
 * to its lowest-index running run only. Three losses while on the first run of a batch of 3
 * (max_attempts 3) fail that run alone; the two that never started are queued, attempts 0. */
static void test_lost_batch_charges_executing_run(void **state)
{
    struct fx *f = *state;
    struct store *reaper = NULL;
    struct store_claim *c = NULL;
    char ex[STORE_ID_SIZE], sql[300];
    int64_t requeued = -1, failed = -1;
    int crash;
    NEED_PG();
    assert_int_equal(open_store(f, &reaper), STORE_OK);
    assert_int_equal(new_experiment(f, 3, ex), STORE_OK);
    for (crash = 1; crash <= 3; crash++) {
        assert_int_equal(store_claim_runs(f->s, "crashing", 3, &c), STORE_OK);
        assert_non_null(c);
        assert_int_equal(c->n_runs, 3);
        assert_int_equal(c->runs[0].index, 0);
        assert_int_equal(c->runs[0].attempts, crash);
        assert_int_equal(c->runs[1].attempts, 1);
        assert_int_equal(c->runs[2].attempts, 1);
        assert_int_equal(
            store_requeue_stale(reaper, (int64_t)time(NULL) * 1000 + 1000, &requeued, &failed),
            STORE_OK);
        assert_int_equal(failed, crash == 3 ? 1 : 0);
        assert_int_equal(requeued, crash == 3 ? 2 : 3);
        store_claim_free(c);
        c = NULL;
    }
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM runs WHERE experiment_id = '%s' AND restart_index = 0 AND "
             "status = 'failed' AND attempts = 3 AND error LIKE '%%lost 3 times%%'",
             ex);
    assert_int_equal(pg_int(f->schema, sql), 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM runs WHERE experiment_id = '%s' AND restart_index IN (1, 2) "
             "AND status = 'queued' AND attempts = 0 AND claim_token IS NULL",
             ex);
    assert_int_equal(pg_int(f->schema, sql), 2);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM experiments WHERE id = '%s' AND "
             "status = 'running'",
             ex);
    assert_int_equal(pg_int(f->schema, sql), 1);
    store_close(reaper);
}

/* The executing run is the lowest index still running under the claim (the earlier ones
 * finished); each lost claim is charged once even when two claims of one experiment are lost
 * together; a live claim held through another handle is not touched. */
static void test_lost_partial_claim(void **state)
{
    struct fx *f = *state;
    struct store *other = NULL;
    struct store_claim *a = NULL, *b = NULL, *c = NULL;
    char ex[STORE_ID_SIZE], sql[200];
    int64_t requeued = -1, failed = -1;
    int i;
    NEED_PG();
    assert_int_equal(open_store(f, &other), STORE_OK);
    assert_int_equal(new_experiment(f, 6, ex), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "A", 3, &a), STORE_OK);
    assert_int_equal(store_claim_runs(other, "B", 3, &b), STORE_OK);
    assert_non_null(a);
    assert_non_null(b);
    for (i = 0; i < 3; i++) {
        assert_int_equal(a->runs[i].index, i);
        assert_int_equal(b->runs[i].index, 3 + i);
    }
    /* A finished index 0, then stopped heartbeating a minute ago while on index 1 */
    assert_int_equal(finish(f->s, a->runs[0].id, a->token, 0.5), STORE_OK);
    snprintf(sql, sizeof sql,
             "UPDATE runs SET lease_at = lease_at - 60000 WHERE claim_token = '%s'", a->token);
    pg_exec(f->schema, sql);
    assert_int_equal(
        store_requeue_stale(other, (int64_t)time(NULL) * 1000 - 30000, &requeued, &failed),
        STORE_OK);
    assert_int_equal(requeued, 2);
    assert_int_equal(failed, 0);
    expect_run(f, a->runs[0].id, "finished", 1);
    expect_run(f, a->runs[1].id, "queued", 1); /* was executing: charged */
    expect_run(f, a->runs[2].id, "queued", 0); /* never started */
    for (i = 0; i < 3; i++)
        expect_run(f, b->runs[i].id, "running", 1);

    /* C takes indices 1 and 2; then B and C are lost together */
    assert_int_equal(store_claim_runs(f->s, "C", 3, &c), STORE_OK);
    assert_non_null(c);
    assert_int_equal(c->n_runs, 2);
    assert_string_equal(c->runs[0].id, a->runs[1].id);
    assert_int_equal(
        store_requeue_stale(f->s, (int64_t)time(NULL) * 1000 + 1000, &requeued, &failed), STORE_OK);
    assert_int_equal(requeued, 5);
    assert_int_equal(failed, 0);
    expect_run(f, c->runs[0].id, "queued", 2);
    expect_run(f, c->runs[1].id, "queued", 0);
    expect_run(f, b->runs[0].id, "queued", 1);
    expect_run(f, b->runs[1].id, "queued", 0);
    expect_run(f, b->runs[2].id, "queued", 0);
    store_claim_free(a);
    store_claim_free(b);
    store_claim_free(c);
    store_close(other);
}

/* ---- pooled connections the server dropped ---- */

static void test_reconnects_after_server_drop(void **state)
{
    struct fx *f = *state;
    struct store_experiment *e = NULL;
    char ex[STORE_ID_SIZE], sql[300];
    NEED_PG();
    assert_int_equal(new_experiment(f, 2, ex), STORE_OK);
    assert_int_equal(store_ping(f->s), STORE_OK);
    /* the server ends every basinlab session (an administrator, a restart, an idle timeout) */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE application_name = '%s') t",
             f->schema);
    assert_true(pg_int(NULL, sql) >= 1);
    /* the next calls open new connections instead of failing */
    assert_int_equal(store_ping(f->s), STORE_OK);
    assert_int_equal(store_experiment_get(f->s, ex, &e), STORE_OK);
    assert_int_equal(e->progress.queued, 2);
    store_experiment_free(e);
}

/* ---- locations ---- */

static void test_redaction(void **state)
{
    char out[256];
    (void)state;
    store_location_redact("postgres://alice:s3cr3t@db.example:5432/basin?schema=x", out,
                          sizeof out);
    assert_string_equal(out, "postgres://alice:***@db.example:5432/basin?schema=x");
    assert_null(strstr(out, "s3cr3t"));
    store_location_redact("postgresql://alice@db/basin", out, sizeof out);
    assert_string_equal(out, "postgresql://alice@db/basin");
    store_location_redact("/var/lib/basinlab/x.db", out, sizeof out);
    assert_string_equal(out, "/var/lib/basinlab/x.db");
    assert_true(store_location_is_postgres("postgres://h/db"));
    assert_true(store_location_is_postgres("postgresql://h/db"));
    assert_false(store_location_is_postgres("sqlite:postgres://"));
    assert_false(store_location_is_postgres("x.db"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redaction),
        cmocka_unit_test_setup_teardown(test_migration_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_ids_commit_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fencing_after_lease_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_batch_charges_executing_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_partial_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnects_after_server_drop, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    if (!find_url())
        fprintf(stderr, "test_store_pg: no PostgreSQL (BASINLAB_TEST_STORE or "
                        "BASINLAB_PG_STATE): skipping\n");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
