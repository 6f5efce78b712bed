/* Tests of the store (server/store.h) through its SQLite backend, on real database files in a
 * temporary directory: record round trips (float64 blobs bit-exact), delete conflicts, atomic
 * experiment creation (a trigger makes the 4th run insert fail), idempotency keys, fair claiming,
 * fenced finishing, requeueing after a crash, cancellation, cascading deletes, keyset pagination
 * (every row exactly once), trajectories (byte-exact round trip, chunking, spike-preserving
 * downsampling), SSE events, metrics, and 4 threads claiming concurrently. Every test ends with
 * PRAGMA integrity_check and foreign_key_check on the file. Expected values come from the
 * test's own bookkeeping or from direct SQL on the file, never from the store under test.
 * With BASINLAB_TEST_STORE set to a postgres:// URL (ctest's *_pg run, scripts/pg) the same
 * tests run against the PostgreSQL backend: each test gets a fresh schema (the URL's
 * schema= parameter), direct SQL goes through libpq, and the few statements that differ
 * between the dialects are given in both (DIALECT). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "ids.h"
#include "store.h"
#include "store_int.h"

struct fx {
    char dir[64];
    char path[512];
    char schema[32]; /* PostgreSQL: the test's own schema */
    struct store *s;
    char ds[STORE_ID_SIZE];
    char ar[STORE_ID_SIZE];
};

/* ---- helpers ---- */

/* The PostgreSQL URL under test, or NULL for SQLite. */
static const char *pg_url(void)
{
    const char *u = getenv("BASINLAB_TEST_STORE");
    return u && (strncmp(u, "postgres://", 11) == 0 || strncmp(u, "postgresql://", 13) == 0) ? u
                                                                                             : NULL;
}
#define DIALECT(sqlite_sql, pg_sql) (pg_url() ? (pg_sql) : (sqlite_sql))

/* A libpq connection to the test's schema. */
static PGconn *pg_connect(const struct fx *f)
{
    char sql[96];
    PGconn *c = PQconnectdb(pg_url());
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    if (f && f->schema[0]) {
        snprintf(sql, sizeof sql, "SET search_path TO %s", f->schema);
        PGresult *r = PQexec(c, sql);
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
    }
    return c;
}

static void pg_exec(const struct fx *f, const char *sql)
{
    PGconn *c = pg_connect(f);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
}

static int64_t raw_int(const struct fx *f, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v;
    if (pg_url()) {
        PGconn *c = pg_connect(f);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_int_equal(PQntuples(r), 1);
        /* booleans answer t/f */
        v = PQgetvalue(r, 0, 0)[0] == 't' ? 1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return v;
    }
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_exec(const struct fx *f, const char *sql)
{
    sqlite3 *db = NULL;
    if (pg_url()) {
        pg_exec(f, sql);
        return;
    }
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int insert_dataset(struct store *s, const char *name, char id[STORE_ID_SIZE])
{
    double x[6] = {0.0, -0.0, 1e-310, -2.5, 3.0e300, 0.1};
    double y[3] = {1.0, 0.0, 1.0};
    struct store_dataset d;
    int rc;
    memset(&d, 0, sizeof d);
    d.name = (char *)name;
    d.kind = "inline";
    d.task = "binary";
    d.spec = json_pack("{ss}", "kind", "inline");
    d.input_shape = json_pack("[i]", 2);
    d.n = 3;
    d.in_dim = 2;
    d.y_dim = 1;
    d.n_classes = 2;
    d.x = x;
    d.y = y;
    rc = store_dataset_insert(s, &d, id);
    json_decref(d.spec);
    json_decref(d.input_shape);
    return rc;
}

static int insert_architecture(struct store *s, char id[STORE_ID_SIZE])
{
    struct store_architecture a;
    int rc;
    memset(&a, 0, sizeof a);
    a.name = "tiny";
    a.spec = json_pack("{s[i]s[]}", "input_shape", 2, "layers");
    a.param_count = 17;
    a.out_dim = 1;
    rc = store_architecture_insert(s, &a, id);
    json_decref(a.spec);
    return rc;
}

static int new_experiment(struct fx *f, int64_t restarts, const char *key, const char *hash,
                          char id[STORE_ID_SIZE], int *existed)
{
    struct store_experiment_new e;
    int dummy, rc;
    memset(&e, 0, sizeof e);
    e.dataset_id = f->ds;
    e.architecture_id = f->ar;
    e.spec = json_pack("{sisI}", "restarts", (int)restarts, "seed", (json_int_t)7);
    e.restarts = restarts;
    e.seed = 7;
    e.idempotency_key = key;
    e.request_hash = hash;
    rc = store_experiment_create(f->s, &e, id, existed ? existed : &dummy);
    json_decref(e.spec);
    return rc;
}

static int finish_run(struct store *s, const char *run_id, const char *token,
                      enum store_run_status status, double risk, const char *label)
{
    struct store_run_result r;
    memset(&r, 0, sizeof r);
    r.run_id = run_id;
    r.token = token;
    r.status = status;
    r.steps = 10;
    r.stop_reason = "grad_tol";
    r.initial_risk = 2.0;
    r.final_risk = risk;
    r.grad_norm = 1e-9;
    r.param_norm = 3.0;
    r.verdict_label = label;
    return store_run_finish(s, &r);
}

static struct store_run *get_run(struct store *s, const char *id)
{
    struct store_run *r = NULL;
    assert_int_equal(store_run_get(s, id, &r), STORE_OK);
    assert_non_null(r);
    return r;
}

static struct store_experiment *get_exp(struct store *s, const char *id)
{
    struct store_experiment *e = NULL;
    assert_int_equal(store_experiment_get(s, id, &e), STORE_OK);
    assert_non_null(e);
    return e;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- fixture ---- */

static int open_store(struct fx *f, const struct store_options *opt)
{
    char err[256] = "";
    int rc = store_open(f->path, opt, &f->s, err, sizeof err);
    if (rc != STORE_OK)
        fprintf(stderr, "store_open: %s\n", err);
    return rc;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/basinlab_store_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    if (pg_url()) {
        /* a fresh schema per test; the store creates it */
        char hex[STORE_ID_SIZE];
        if (ids_new("t_", hex, sizeof hex) != 0)
            return -1;
        snprintf(f->schema, sizeof f->schema, "%s", hex);
        snprintf(f->path, sizeof f->path, "%s%sschema=%s", pg_url(),
                 strchr(pg_url(), '?') ? "&" : "?", f->schema);
    }
    if (open_store(f, NULL) != STORE_OK)
        return -1;
    if (insert_dataset(f->s, "fixture", f->ds) != STORE_OK ||
        insert_architecture(f->s, f->ar) != STORE_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[600];
    const char *suffix[] = {"", "-wal", "-shm"};
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    size_t i;
    int ok = 1;

    store_close(f->s);
    if (f->schema[0]) {
        /* PostgreSQL enforces the constraints itself; drop the test's schema */
        char sql[96];
        snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", f->schema);
        pg_exec(NULL, sql);
        rmdir(f->dir);
        free(f);
        return 0;
    }
    /* The file must be sound after every test. */
    if (sqlite3_open(f->path, &db) != SQLITE_OK)
        ok = 0;
    if (ok && sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    else
        ok = 0;
    sqlite3_finalize(st);
    st = NULL;
    if (ok && sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL) == SQLITE_OK)
        ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_finalize(st);
    sqlite3_close(db);
    for (i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    if (!ok)
        fprintf(stderr, "integrity or foreign key check failed\n");
    return ok ? 0 : -1;
}

/* ---- ids, cursors, open ---- */

static void test_ids(void **state)
{
    char a[STORE_ID_SIZE], b[STORE_ID_SIZE], tok[STORE_TOKEN_SIZE], small[8];
    (void)state;
    assert_int_equal(ids_new(IDS_PREFIX_RUN, a, sizeof a), 0);
    assert_int_equal(ids_new(IDS_PREFIX_RUN, b, sizeof b), 0);
    assert_int_equal(strlen(a), 4 + 16);
    assert_true(ids_valid(a, IDS_PREFIX_RUN));
    assert_false(ids_valid(a, IDS_PREFIX_DATASET));
    assert_string_not_equal(a, b); /* 64 random bits: a collision here means no randomness */
    assert_int_equal(ids_token(tok, sizeof tok), 0);
    assert_int_equal(strlen(tok), 32);
    assert_int_equal(ids_new(IDS_PREFIX_RUN, small, sizeof small), -1);
    assert_false(ids_valid("ds_0123456789ABCDEF", "ds_")); /* uppercase */
    assert_false(ids_valid("ds_0123456789abcde", "ds_"));  /* 15 digits */
    assert_false(ids_valid("ds_0123456789abcdef0", "ds_"));
    assert_false(ids_valid("ds_0123456789abcdeg", "ds_"));
    assert_true(ids_valid("ds_0123456789abcdef", "ds_"));
}

static void test_cursor_codec(void **state)
{
    int64_t in[3] = {-5, INT64_MAX, INT64_MIN}, out[3] = {0, 0, 0};
    char c[STORE_CURSOR_SIZE], tampered[STORE_CURSOR_SIZE];
    (void)state;
    assert_int_equal(store__cursor_encode("rr", in, 3, c), STORE_OK);
    assert_null(strpbrk(c, "+/=")); /* URL-safe without escaping */
    assert_int_equal(store__cursor_decode(c, "rr", out, 3), STORE_OK);
    assert_memory_equal(in, out, sizeof in);
    assert_int_equal(store__cursor_decode(c, "ri", out, 3), STORE_EINVAL); /* other list */
    assert_int_equal(store__cursor_decode(c, "rr", out, 2), STORE_EINVAL); /* other shape */
    assert_int_equal(store__cursor_decode("!!!!", "rr", out, 1), STORE_EINVAL);
    assert_int_equal(store__cursor_decode("", "rr", out, 1), STORE_EINVAL);
    strcpy(tampered, c);
    tampered[strlen(tampered) - 1] = tampered[strlen(tampered) - 1] == 'A' ? 'B' : 'A';
    assert_int_equal(store__cursor_decode(tampered, "rr", out, 3), STORE_EINVAL);
}

static void test_open_errors(void **state)
{
    struct store *s = (struct store *)1;
    char err[256] = "";
    (void)state;
    assert_int_equal(store_open(":memory:", NULL, &s, err, sizeof err), STORE_EINVAL);
    assert_null(s);
    /* PostgreSQL: nothing listens on port 1; a bad schema name is refused before connecting */
    assert_int_equal(store_open("postgres://127.0.0.1:1/x", NULL, &s, err, sizeof err), STORE_EIO);
    assert_null(s);
    assert_non_null(strstr(err, "PostgreSQL"));
    assert_int_equal(
        store_open("postgres://127.0.0.1:1/x?schema=Bad-Name", NULL, &s, err, sizeof err),
        STORE_EINVAL);
    assert_non_null(strstr(err, "schema"));
    assert_int_equal(store_open("/nonexistent_dir_basinlab/x.db", NULL, &s, err, sizeof err),
                     STORE_EIO);
    assert_non_null(strstr(err, "/nonexistent_dir_basinlab/x.db"));
    store_close(NULL);

    /* A file that is not a database is reported as such, not overwritten. */
    {
        char path[] = "/tmp/basinlab_notadb_XXXXXX";
        static const char junk[] = "this is not an SQLite database, just 64 bytes of text......\n";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, junk, sizeof junk - 1), (ssize_t)(sizeof junk - 1));
        close(fd);
        assert_int_equal(store_open(path, NULL, &s, err, sizeof err), STORE_ECORRUPT);
        assert_null(s);
        unlink(path);
    }
}

/* ---- datasets and architectures ---- */

static void test_dataset_round_trip(void **state)
{
    struct fx *f = *state;
    double x[6] = {0.0, -0.0, 1e-310, -2.5, 3.0e300, 0.1};
    double y[3] = {1.0, 0.0, 1.0};
    struct store_dataset *d = NULL;
    int version = 0;

    assert_int_equal(store_ping(f->s), STORE_OK);
    assert_int_equal(store_schema_version(f->s, &version), STORE_OK);
    assert_int_equal(version, raw_int(f, DIALECT("PRAGMA user_version",
                                                 "SELECT max(version) FROM schema_migrations")));
    assert_true(ids_valid(f->ds, IDS_PREFIX_DATASET));
    assert_int_equal(store_dataset_get(f->s, f->ds, STORE_WITH_DATA, &d), STORE_OK);
    assert_string_equal(d->id, f->ds);
    assert_string_equal(d->name, "fixture");
    assert_string_equal(d->kind, "inline");
    assert_string_equal(d->task, "binary");
    assert_int_equal(d->n, 3);
    assert_int_equal(d->in_dim, 2);
    assert_int_equal(d->y_dim, 1);
    assert_int_equal(d->n_classes, 2);
    assert_memory_equal(d->x, x, sizeof x); /* bit-exact, including -0.0 and a denormal */
    assert_memory_equal(d->y, y, sizeof y);
    assert_int_equal(json_integer_value(json_array_get(d->input_shape, 0)), 2);
    assert_string_equal(json_string_value(json_object_get(d->spec, "kind")), "inline");
    assert_null(d->linear_fit);
    assert_true(d->created_at_ms > 1600000000000LL);
    store_dataset_free(d);
    /* The blob is little-endian float64: byte 7 of x[1] = -0.0 holds the sign bit. */
    assert_int_equal(
        raw_int(f, DIALECT("SELECT hex(substr(x, 9, 8)) = '0000000000000080' FROM datasets",
                           "SELECT encode(substring(x from 9 for 8), 'hex') = '0000000000000080' "
                           "FROM datasets")),
        1);

    /* Without STORE_WITH_DATA the arrays are not loaded. */
    assert_int_equal(store_dataset_get(f->s, f->ds, 0, &d), STORE_OK);
    assert_null(d->x);
    assert_null(d->y);
    store_dataset_free(d);

    assert_int_equal(store_dataset_get(f->s, "ds_0000000000000000", 0, &d), STORE_ENOTFOUND);
    assert_null(d);
}

static void test_dataset_checks(void **state)
{
    struct fx *f = *state;
    struct store_dataset d;
    char id[STORE_ID_SIZE];
    double x[2] = {1, 2}, y[1] = {3};

    memset(&d, 0, sizeof d);
    d.kind = "bogus"; /* refused by the CHECK constraint */
    d.task = "regression";
    d.spec = json_object();
    d.input_shape = json_pack("[i]", 2);
    d.n = 1;
    d.in_dim = 2;
    d.y_dim = 1;
    d.x = x;
    d.y = y;
    assert_int_equal(store_dataset_insert(f->s, &d, id), STORE_EINVAL);
    d.kind = "teacher_gaussian"; /* a population dataset: no points */
    d.n = 0;
    d.x = NULL;
    d.y = NULL;
    assert_int_equal(store_dataset_insert(f->s, &d, id), STORE_OK);
    d.n = 1; /* points promised but missing */
    assert_int_equal(store_dataset_insert(f->s, &d, id), STORE_EINVAL);
    d.n = INT64_MAX / 2; /* n·in_dim·8 overflows */
    d.x = x;
    d.y = y;
    assert_int_equal(store_dataset_insert(f->s, &d, id), STORE_EINVAL);
    json_decref(d.spec);
    json_decref(d.input_shape);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM datasets"), 2);
}

static void test_delete_conflict(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE], other[STORE_ID_SIZE];
    struct store_architecture *a = NULL;

    assert_int_equal(new_experiment(f, 2, NULL, NULL, ex, NULL), STORE_OK);
    assert_int_equal(store_dataset_delete(f->s, f->ds), STORE_ECONFLICT);
    assert_int_equal(store_architecture_delete(f->s, f->ar), STORE_ECONFLICT);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM datasets"), 1);
    assert_int_equal(store_architecture_get(f->s, f->ar, &a), STORE_OK);
    assert_int_equal(a->param_count, 17);
    assert_int_equal(a->out_dim, 1);
    assert_string_equal(a->name, "tiny");
    store_architecture_free(a);

    /* An unreferenced one deletes at once. */
    assert_int_equal(insert_dataset(f->s, "other", other), STORE_OK);
    assert_int_equal(store_dataset_delete(f->s, other), STORE_OK);
    assert_int_equal(store_dataset_delete(f->s, other), STORE_ENOTFOUND);

    assert_int_equal(store_experiment_delete(f->s, ex), STORE_OK);
    assert_int_equal(store_dataset_delete(f->s, f->ds), STORE_OK);
    assert_int_equal(store_architecture_delete(f->s, f->ar), STORE_OK);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM datasets"), 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM architectures"), 0);
}

/* ---- experiments ---- */

static void test_experiment_create(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE];
    struct store_experiment *e;
    struct store_run_list *l = NULL;
    struct store_progress p;
    uint64_t seeds[4] = {11, 22, 33, UINT64_MAX};
    struct store_experiment_new en;
    int existed = -1;
    size_t i;

    assert_int_equal(new_experiment(f, 5, NULL, NULL, ex, &existed), STORE_OK);
    assert_int_equal(existed, 0);
    assert_true(ids_valid(ex, IDS_PREFIX_EXPERIMENT));
    e = get_exp(f->s, ex);
    assert_int_equal(e->status, STORE_EXP_QUEUED);
    assert_int_equal(e->restarts, 5);
    assert_int_equal(e->seed, 7);
    assert_string_equal(e->dataset_id, f->ds);
    assert_string_equal(e->architecture_id, f->ar);
    assert_int_equal(e->progress.queued, 5);
    assert_int_equal(
        e->progress.running + e->progress.finished + e->progress.failed + e->progress.cancelled, 0);
    assert_int_equal(e->finished_at_ms, 0);
    assert_int_equal(json_integer_value(json_object_get(e->spec, "restarts")), 5);
    store_experiment_free(e);

    assert_int_equal(store_run_list(f->s, ex, NULL, 100, NULL, &l), STORE_OK);
    assert_int_equal(l->n, 5);
    for (i = 0; i < 5; i++) {
        assert_int_equal(l->items[i].index, (int64_t)i);
        assert_int_equal(l->items[i].seed, 7);
        assert_int_equal(l->items[i].status, STORE_RUN_QUEUED);
        assert_int_equal(l->items[i].origin, STORE_ORIGIN_TRAINED);
        assert_int_equal(l->items[i].attempts, 0);
        assert_true(isnan(l->items[i].final_risk));
        assert_true(ids_valid(l->items[i].id, IDS_PREFIX_RUN));
    }
    assert_string_equal(l->next_cursor, "");
    store_run_list_free(l);

    /* Per-run seeds, including one that needs all 64 bits. */
    memset(&en, 0, sizeof en);
    en.dataset_id = f->ds;
    en.architecture_id = f->ar;
    en.spec = json_object();
    en.restarts = 4;
    en.seed = 1;
    en.run_seeds = seeds;
    assert_int_equal(store_experiment_create(f->s, &en, ex, &existed), STORE_OK);
    json_decref(en.spec);
    assert_int_equal(store_run_list(f->s, ex, NULL, 100, NULL, &l), STORE_OK);
    assert_int_equal(l->n, 4);
    for (i = 0; i < 4; i++)
        assert_true(l->items[i].seed == seeds[i]);
    store_run_list_free(l);
    assert_int_equal(store_experiment_progress(f->s, ex, &p), STORE_OK);
    assert_int_equal(p.queued, 4);
    assert_int_equal(store_experiment_progress(f->s, "ex_0000000000000000", &p), STORE_ENOTFOUND);
}

static void test_experiment_create_atomic(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE];
    struct store_experiment_new en;
    int existed = -1;

    /* The 4th run insert fails inside the transaction. */
    raw_exec(f, DIALECT("CREATE TRIGGER fail_4th BEFORE INSERT ON runs WHEN NEW.restart_index = 3 "
                        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
                        "CREATE FUNCTION fail_4th() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                        "IF NEW.restart_index = 3 THEN RAISE EXCEPTION 'injected failure'; "
                        "END IF; RETURN NEW; END $$; CREATE TRIGGER fail_4th BEFORE INSERT ON "
                        "runs FOR EACH ROW EXECUTE FUNCTION fail_4th()"));
    assert_int_not_equal(new_experiment(f, 6, "key-1", "hash-1", ex, &existed), STORE_OK);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM experiments"), 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM runs"), 0);
    /* 3 runs are fine. */
    assert_int_equal(new_experiment(f, 3, NULL, NULL, ex, NULL), STORE_OK);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM runs"), 3);
    raw_exec(f, DIALECT("DROP TRIGGER fail_4th", "DROP TRIGGER fail_4th ON runs"));

    /* The failed attempt did not consume its idempotency key. */
    assert_int_equal(new_experiment(f, 6, "key-1", "hash-1", ex, &existed), STORE_OK);
    assert_int_equal(existed, 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM runs"), 9);

    /* Refused before any SQL: nothing inserted either. */
    assert_int_equal(new_experiment(f, 0, NULL, NULL, ex, NULL), STORE_EINVAL);
    assert_int_equal(new_experiment(f, STORE_MAX_RESTARTS + 1, NULL, NULL, ex, NULL), STORE_EINVAL);
    assert_int_equal(new_experiment(f, 2, "key-2", NULL, ex, NULL), STORE_EINVAL);
    memset(&en, 0, sizeof en);
    en.dataset_id = "ds_ffffffffffffffff";
    en.architecture_id = f->ar;
    en.spec = json_object();
    en.restarts = 2;
    assert_int_equal(store_experiment_create(f->s, &en, ex, &existed), STORE_ENOTFOUND);
    en.dataset_id = f->ds;
    en.architecture_id = "ar_ffffffffffffffff";
    assert_int_equal(store_experiment_create(f->s, &en, ex, &existed), STORE_ENOTFOUND);
    json_decref(en.spec);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM experiments"), 2);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM runs"), 9);
}

static void test_idempotency(void **state)
{
    struct fx *f = *state;
    char a[STORE_ID_SIZE], b[STORE_ID_SIZE], c[STORE_ID_SIZE];
    int existed = -1;
    struct store_experiment *e;

    assert_int_equal(new_experiment(f, 4, "retry-me", "h1", a, &existed), STORE_OK);
    assert_int_equal(existed, 0);
    assert_int_equal(new_experiment(f, 4, "retry-me", "h1", b, &existed), STORE_OK);
    assert_int_equal(existed, 1);
    assert_string_equal(a, b);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM experiments"), 1);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM runs"), 4);

    /* Same key, another request: conflict, nothing inserted. */
    assert_int_equal(new_experiment(f, 4, "retry-me", "h2", c, &existed), STORE_ECONFLICT);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM experiments"), 1);

    /* Another key, or none: new experiments. */
    assert_int_equal(new_experiment(f, 4, "other", "h1", c, &existed), STORE_OK);
    assert_int_equal(existed, 0);
    assert_string_not_equal(a, c);
    assert_int_equal(new_experiment(f, 1, NULL, NULL, c, &existed), STORE_OK);
    assert_int_equal(new_experiment(f, 1, NULL, NULL, b, &existed), STORE_OK);
    assert_string_not_equal(b, c);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM experiments"), 4);
    e = get_exp(f->s, a);
    assert_string_equal(e->idempotency_key, "retry-me");
    store_experiment_free(e);
}

/* ---- the queue ---- */

static void test_claim_fairness(void **state)
{
    struct fx *f = *state;
    char big[STORE_ID_SIZE], small[STORE_ID_SIZE];
    struct store_claim *c1 = NULL, *c2 = NULL, *c3 = NULL, *c4 = NULL;
    struct store_experiment *e;
    size_t i;

    assert_int_equal(new_experiment(f, 10, NULL, NULL, big, NULL), STORE_OK);
    assert_int_equal(new_experiment(f, 3, NULL, NULL, small, NULL), STORE_OK);

    /* Two workers: the big (older) one first, then the small one while the big one still has
     * 8 queued runs. */
    assert_int_equal(store_claim_runs(f->s, "w1", 2, &c1), STORE_OK);
    assert_non_null(c1);
    assert_string_equal(c1->experiment_id, big);
    assert_int_equal(c1->n_runs, 2);
    assert_int_equal(c1->runs[0].index, 0);
    assert_int_equal(c1->runs[1].index, 1);
    assert_int_equal(c1->runs[0].attempts, 1);
    assert_string_equal(c1->dataset_id, f->ds);
    assert_string_equal(c1->architecture_id, f->ar);
    assert_int_equal(c1->seed, 7);
    assert_non_null(json_object_get(c1->spec, "restarts"));
    assert_int_equal(store_claim_runs(f->s, "w2", 2, &c2), STORE_OK);
    assert_non_null(c2);
    assert_string_equal(c2->experiment_id, small);
    assert_string_not_equal(c1->token, c2->token);
    e = get_exp(f->s, big);
    assert_int_equal(e->status, STORE_EXP_RUNNING);
    assert_int_equal(e->progress.queued, 8);
    store_experiment_free(e);

    /* A single worker alternates: both have 0 running after these finish, and the big one was
     * served less recently. */
    for (i = 0; i < c1->n_runs; i++)
        assert_int_equal(finish_run(f->s, c1->runs[i].id, c1->token, STORE_RUN_FINISHED, 0.5, NULL),
                         STORE_OK);
    for (i = 0; i < c2->n_runs; i++)
        assert_int_equal(finish_run(f->s, c2->runs[i].id, c2->token, STORE_RUN_FINISHED, 0.5, NULL),
                         STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "w1", 2, &c3), STORE_OK);
    assert_string_equal(c3->experiment_id, big);
    for (i = 0; i < c3->n_runs; i++)
        assert_int_equal(finish_run(f->s, c3->runs[i].id, c3->token, STORE_RUN_FINISHED, 0.5, NULL),
                         STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "w1", 2, &c4), STORE_OK);
    assert_string_equal(c4->experiment_id, small);
    assert_int_equal(c4->n_runs, 1); /* only index 2 was left */
    assert_int_equal(c4->runs[0].index, 2);
    store_claim_free(c1);
    store_claim_free(c2);
    store_claim_free(c3);
    store_claim_free(c4);

    /* A cancelled experiment is skipped: nothing left to claim. */
    {
        int changed = 0;
        struct store_claim *c5 = (struct store_claim *)1;
        assert_int_equal(store_experiment_cancel(f->s, big, &changed), STORE_OK);
        assert_int_equal(store_claim_runs(f->s, "w1", 4, &c5), STORE_OK);
        assert_null(c5);
    }
    assert_int_equal(store_claim_runs(f->s, "w1", 0, &c1), STORE_EINVAL);
}

static void test_fenced_finish(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE];
    struct store_claim *c = NULL;
    struct store_run *r;
    struct store_run_result res;
    struct store_experiment *e;
    double params[5] = {1.5, -0.0, 1e-300, 42.0, -7.25}, *back = NULL;
    size_t n = 0;
    json_t *verdict = json_pack("{ssss}", "label", "local_min", "why", "hessian psd");

    assert_int_equal(new_experiment(f, 2, NULL, NULL, ex, NULL), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "w", 2, &c), STORE_OK);
    assert_int_equal(c->n_runs, 2);

    /* A stale or forged token is rejected and changes nothing. */
    assert_int_equal(finish_run(f->s, c->runs[0].id, "0123456789abcdef0123456789abcdef",
                                STORE_RUN_FINISHED, 0.25, NULL),
                     STORE_ECONFLICT);
    r = get_run(f->s, c->runs[0].id);
    assert_int_equal(r->status, STORE_RUN_RUNNING);
    assert_true(isnan(r->final_risk));
    assert_string_equal(r->claimed_by, "w");
    store_run_free(r);
    assert_int_equal(
        finish_run(f->s, "run_0000000000000000", c->token, STORE_RUN_FINISHED, 0.1, NULL),
        STORE_ENOTFOUND);

    memset(&res, 0, sizeof res);
    res.run_id = c->runs[0].id;
    res.token = c->token;
    res.status = STORE_RUN_FINISHED;
    res.steps = 1234;
    res.stop_reason = "grad_tol";
    res.initial_risk = 0.75;
    res.final_risk = 0.125;
    res.grad_norm = 3e-10;
    res.param_norm = 2.5;
    res.verdict = verdict;
    res.verdict_label = "local_min";
    res.params = params;
    res.n_params = 5;
    assert_int_equal(store_run_finish(f->s, &res), STORE_OK);

    /* Terminal: never rewritten, not even with the right token. */
    res.final_risk = 99.0;
    res.status = STORE_RUN_FAILED;
    assert_int_equal(store_run_finish(f->s, &res), STORE_ECONFLICT);
    r = get_run(f->s, c->runs[0].id);
    assert_int_equal(r->status, STORE_RUN_FINISHED);
    assert_true(r->final_risk == 0.125);
    assert_true(r->initial_risk == 0.75);
    assert_true(r->grad_norm == 3e-10);
    assert_true(r->param_norm == 2.5);
    assert_int_equal(r->steps, 1234);
    assert_string_equal(r->stop_reason, "grad_tol");
    assert_string_equal(r->verdict_label, "local_min");
    assert_string_equal(json_string_value(json_object_get(r->verdict, "why")), "hessian psd");
    assert_true(r->has_params);
    assert_true(r->finished_at_ms >= r->started_at_ms);
    assert_true(r->started_at_ms > 0);
    store_run_free(r);
    assert_int_equal(store_run_params_get(f->s, c->runs[0].id, &back, &n), STORE_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(back, params, sizeof params);
    free(back);
    assert_int_equal(store_run_params_get(f->s, c->runs[1].id, &back, &n), STORE_ENOTFOUND);

    e = get_exp(f->s, ex);
    assert_int_equal(e->status, STORE_EXP_RUNNING); /* one run still running */
    assert_int_equal(e->finished_at_ms, 0);
    store_experiment_free(e);
    assert_int_equal(finish_run(f->s, c->runs[1].id, c->token, STORE_RUN_FAILED, NAN, NULL),
                     STORE_OK);
    e = get_exp(f->s, ex);
    assert_int_equal(e->status, STORE_EXP_FINISHED);
    assert_true(e->finished_at_ms > 0);
    assert_int_equal(e->progress.finished, 1);
    assert_int_equal(e->progress.failed, 1);
    store_experiment_free(e);
    /* Finishing an experiment cannot be undone by a cancel. */
    {
        int changed = 0;
        assert_int_equal(store_experiment_cancel(f->s, ex, &changed), STORE_ECONFLICT);
    }
    json_decref(verdict);
    store_claim_free(c);
}

static void test_heartbeat(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE];
    struct store_claim *c = NULL;
    struct store_run *r;
    int64_t lease0;
    int cancel = -1;

    assert_int_equal(new_experiment(f, 2, NULL, NULL, ex, NULL), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "w", 2, &c), STORE_OK);
    r = get_run(f->s, c->runs[1].id);
    lease0 = r->lease_at_ms;
    store_run_free(r);
    sleep_ms(20);
    assert_int_equal(store_claim_heartbeat(f->s, c->token, &cancel), STORE_OK);
    assert_int_equal(cancel, 0);
    r = get_run(f->s, c->runs[1].id);
    assert_true(r->lease_at_ms >= lease0 + 20);
    store_run_free(r);
    assert_int_equal(store_claim_heartbeat(f->s, "nosuchtoken", &cancel), STORE_ECONFLICT);
    store_claim_free(c);
}

static void test_requeue_stale(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE];
    struct store_claim *c = NULL, *c2 = NULL;
    struct store_run *r;
    struct store_traj_point pts[3] = {{0, 1.0, 1.0, 1.0}, {1, 0.5, 1.0, 1.0}, {2, 0.25, 1.0, 1.0}};
    struct store_traj_info info;
    int64_t requeued = -1, failed = -1, lease;
    int cancel = 0;

    assert_int_equal(new_experiment(f, 3, NULL, NULL, ex, NULL), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "crashing", 2, &c), STORE_OK);
    assert_int_equal(store_trajectory_append(f->s, c->runs[0].id, c->token, pts, 3), STORE_OK);
    r = get_run(f->s, c->runs[0].id);
    lease = r->lease_at_ms;
    store_run_free(r);

    /* The cutoff is strict: a lease taken at `lease` is not older than `lease`. */
    assert_int_equal(store_requeue_stale(f->s, lease, &requeued, &failed), STORE_OK);
    assert_int_equal(requeued, 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM runs WHERE status = 'running'"), 2);

    /* Start-up after a crash: every running run goes back to the queue. Only the run that was
     * executing (the lowest index of the claim) is charged; index 1 never started. */
    assert_int_equal(store_requeue_stale(f->s, STORE_NO_LIMIT, &requeued, &failed), STORE_OK);
    assert_int_equal(requeued, 2);
    assert_int_equal(failed, 0);
    r = get_run(f->s, c->runs[0].id);
    assert_int_equal(r->status, STORE_RUN_QUEUED);
    assert_int_equal(r->attempts, 1); /* kept */
    store_run_free(r);
    r = get_run(f->s, c->runs[1].id);
    assert_int_equal(r->status, STORE_RUN_QUEUED);
    assert_int_equal(r->attempts, 0); /* given back */
    store_run_free(r);
    assert_int_equal(store_trajectory_info(f->s, c->runs[0].id, &info), STORE_OK);
    assert_int_equal(info.count, 0); /* the partial trajectory is gone */

    /* The lost worker can neither heartbeat nor report. */
    assert_int_equal(store_claim_heartbeat(f->s, c->token, &cancel), STORE_ECONFLICT);
    assert_int_equal(finish_run(f->s, c->runs[0].id, c->token, STORE_RUN_FINISHED, 0.1, NULL),
                     STORE_ECONFLICT);
    assert_int_equal(store_trajectory_append(f->s, c->runs[0].id, c->token, pts, 3),
                     STORE_ECONFLICT);

    /* Claimed again: the next attempt. */
    assert_int_equal(store_claim_runs(f->s, "w2", 3, &c2), STORE_OK);
    assert_int_equal(c2->n_runs, 3);
    assert_int_equal(c2->runs[0].attempts, 2);
    assert_int_equal(c2->runs[1].attempts, 1);
    assert_int_equal(c2->runs[2].attempts, 1);
    assert_int_equal(finish_run(f->s, c2->runs[0].id, c2->token, STORE_RUN_FINISHED, 0.1, NULL),
                     STORE_OK);
    /* A run whose worker keeps dying fails after max_attempts (here 2). */
    {
        struct store_options opt;
        struct store_claim *k = NULL;
        struct store_experiment *e;
        char ex2[STORE_ID_SIZE];
        memset(&opt, 0, sizeof opt);
        opt.max_attempts = 2;
        store_close(f->s);
        f->s = NULL;
        assert_int_equal(open_store(f, &opt), STORE_OK);
        /* The reopened store starts by requeueing what was left running: index 1 was executing
         * (charged, its 1st attempt), index 2 never started (given back). */
        assert_int_equal(store_requeue_stale(f->s, STORE_NO_LIMIT, &requeued, &failed), STORE_OK);
        assert_int_equal(requeued, 2);
        assert_int_equal(failed, 0);
        assert_int_equal(store_claim_runs(f->s, "w3", 2, &k), STORE_OK);
        assert_int_equal(k->n_runs, 2);
        assert_string_equal(k->runs[0].id, c2->runs[1].id);
        assert_int_equal(k->runs[0].attempts, 2);
        assert_int_equal(k->runs[1].attempts, 1);
        store_claim_free(k);
        k = NULL;
        /* Index 1 was on its 2nd attempt: failed; index 2 (never started) requeued. */
        assert_int_equal(store_requeue_stale(f->s, STORE_NO_LIMIT, &requeued, &failed), STORE_OK);
        assert_int_equal(requeued, 1);
        assert_int_equal(failed, 1);
        r = get_run(f->s, c2->runs[1].id);
        assert_int_equal(r->status, STORE_RUN_FAILED);
        assert_non_null(strstr(r->error, "lost 2 times"));
        store_run_free(r);
        r = get_run(f->s, c2->runs[2].id);
        assert_int_equal(r->status, STORE_RUN_QUEUED);
        assert_int_equal(r->attempts, 0);
        store_run_free(r);
        assert_int_equal(new_experiment(f, 1, NULL, NULL, ex2, NULL), STORE_OK);
        assert_int_equal(store_experiment_cancel(f->s, ex, &cancel), STORE_OK);
        assert_int_equal(store_claim_runs(f->s, "w", 1, &k), STORE_OK);
        assert_string_equal(k->experiment_id, ex2);
        store_claim_free(k);
        assert_int_equal(store_requeue_stale(f->s, STORE_NO_LIMIT, &requeued, &failed), STORE_OK);
        assert_int_equal(requeued, 1);
        assert_int_equal(store_claim_runs(f->s, "w", 1, &k), STORE_OK);
        assert_int_equal(k->runs[0].attempts, 2);
        store_claim_free(k);
        assert_int_equal(store_requeue_stale(f->s, STORE_NO_LIMIT, &requeued, &failed), STORE_OK);
        assert_int_equal(requeued, 0);
        assert_int_equal(failed, 1);
        e = get_exp(f->s, ex2);
        assert_int_equal(e->status, STORE_EXP_FINISHED); /* its only run is terminal */
        assert_int_equal(e->progress.failed, 1);
        store_experiment_free(e);
        assert_int_equal(raw_int(f, "SELECT count(*) FROM runs WHERE status = 'failed' AND "
                                    "error LIKE '%lost 2 times%'"),
                         2);
    }
    store_claim_free(c);
    store_claim_free(c2);
}

/* Requeue the runs of `token`'s claim as if its worker had stopped heartbeating a minute ago,
 * while every other claim stays live. */
static void age_claim(const struct fx *f, const char *token)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "UPDATE runs SET lease_at = lease_at - 60000 WHERE claim_token = '%s'", token);
    raw_exec(f, sql);
}

static void expect_run(const struct fx *f, const char *id, enum store_run_status status,
                       int64_t attempts)
{
    struct store_run *r = get_run(f->s, id);
    assert_int_equal(r->status, status);
    assert_int_equal(r->attempts, attempts);
    store_run_free(r);
}

/* A worker runs its claim one run at a time in index order, so a lost worker is charged for the
 * lowest-index run still running under its claim only; the never-started runs batched with it
 * get their attempt back. Three crashes on the first run of a batch of 3 fail that run alone. */
static void test_requeue_charges_executing_run(void **state)
{
    enum { MAX_ATTEMPTS = 3 };
    struct fx *f = *state;
    char ex[STORE_ID_SIZE], sql[256];
    struct store_options opt;
    struct store_claim *c = NULL;
    struct store_experiment *e;
    int64_t requeued = -1, failed = -1;
    int crash;

    memset(&opt, 0, sizeof opt);
    opt.max_attempts = MAX_ATTEMPTS;
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(open_store(f, &opt), STORE_OK);
    assert_int_equal(new_experiment(f, 3, NULL, NULL, ex, NULL), STORE_OK);
    for (crash = 1; crash <= MAX_ATTEMPTS; crash++) {
        assert_int_equal(store_claim_runs(f->s, "crashing", 3, &c), STORE_OK);
        assert_non_null(c);
        assert_int_equal(c->n_runs, 3);
        assert_int_equal(c->runs[0].index, 0);
        assert_int_equal(c->runs[0].attempts, crash);
        assert_int_equal(c->runs[1].attempts, 1);
        assert_int_equal(c->runs[2].attempts, 1);
        age_claim(f, c->token);
        assert_int_equal(store_requeue_stale(f->s, store__now_ms() - 30000, &requeued, &failed),
                         STORE_OK);
        assert_int_equal(failed, crash == MAX_ATTEMPTS ? 1 : 0);
        assert_int_equal(requeued, crash == MAX_ATTEMPTS ? 2 : 3);
        store_claim_free(c);
        c = NULL;
    }
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM runs WHERE experiment_id = '%s' AND restart_index = 0 "
             "AND status = 'failed' AND attempts = 3 AND error LIKE '%%lost 3 times%%'",
             ex);
    assert_int_equal(raw_int(f, sql), 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM runs WHERE experiment_id = '%s' AND restart_index IN (1, 2) "
             "AND status = 'queued' AND attempts = 0 AND claim_token IS NULL",
             ex);
    assert_int_equal(raw_int(f, sql), 2);
    e = get_exp(f->s, ex);
    assert_int_equal(e->status, STORE_EXP_RUNNING); /* two runs are still to do */
    assert_int_equal(e->progress.failed, 1);
    assert_int_equal(e->progress.queued, 2);
    store_experiment_free(e);
}

/* The run that was executing is the lowest index still running under the claim: the ones before
 * it finished. Each lost claim is charged once, whatever other claims of the same experiment are
 * lost with it, and a live claim is not touched. */
static void test_requeue_partial_claim(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE];
    struct store_claim *a = NULL, *b = NULL, *c = NULL;
    struct store_run *r;
    int64_t requeued = -1, failed = -1, cutoff;
    int i;

    assert_int_equal(new_experiment(f, 6, NULL, NULL, ex, NULL), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "A", 3, &a), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "B", 3, &b), STORE_OK);
    for (i = 0; i < 3; i++) {
        assert_int_equal(a->runs[i].index, i);
        assert_int_equal(b->runs[i].index, 3 + i);
    }
    /* A finished index 0 and died while executing index 1; B is alive. */
    assert_int_equal(finish_run(f->s, a->runs[0].id, a->token, STORE_RUN_FINISHED, 0.1, NULL),
                     STORE_OK);
    age_claim(f, a->token);
    r = get_run(f->s, b->runs[0].id);
    cutoff = r->lease_at_ms; /* strict: B's leases are not older than this */
    store_run_free(r);
    assert_int_equal(store_requeue_stale(f->s, cutoff, &requeued, &failed), STORE_OK);
    assert_int_equal(requeued, 2);
    assert_int_equal(failed, 0);
    expect_run(f, a->runs[0].id, STORE_RUN_FINISHED, 1);
    expect_run(f, a->runs[1].id, STORE_RUN_QUEUED, 1); /* was executing: charged */
    expect_run(f, a->runs[2].id, STORE_RUN_QUEUED, 0); /* never started */
    for (i = 0; i < 3; i++)
        expect_run(f, b->runs[i].id, STORE_RUN_RUNNING, 1);

    /* Now C takes indices 1 and 2 and both B and C are lost at once. */
    assert_int_equal(store_claim_runs(f->s, "C", 3, &c), STORE_OK);
    assert_int_equal(c->n_runs, 2);
    assert_string_equal(c->runs[0].id, a->runs[1].id);
    assert_int_equal(c->runs[0].attempts, 2);
    assert_int_equal(c->runs[1].attempts, 1);
    assert_int_equal(store_requeue_stale(f->s, STORE_NO_LIMIT, &requeued, &failed), STORE_OK);
    assert_int_equal(requeued, 5);
    assert_int_equal(failed, 0);
    expect_run(f, c->runs[0].id, STORE_RUN_QUEUED, 2);
    expect_run(f, c->runs[1].id, STORE_RUN_QUEUED, 0);
    expect_run(f, b->runs[0].id, STORE_RUN_QUEUED, 1);
    expect_run(f, b->runs[1].id, STORE_RUN_QUEUED, 0);
    expect_run(f, b->runs[2].id, STORE_RUN_QUEUED, 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM runs WHERE status = 'running'"), 0);
    store_claim_free(a);
    store_claim_free(b);
    store_claim_free(c);
}

/* A draining worker hands its claim back: runs queued again with the attempt returned, partial
 * trajectories dropped, the token dead; runs of a cancelled experiment end cancelled. */
static void test_claim_release(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE], ex2[STORE_ID_SIZE];
    struct store_claim *c = NULL, *again = NULL;
    struct store_traj_point pts[2] = {{0, 1.0, 1.0, 1.0}, {1, 0.5, 1.0, 1.0}};
    struct store_traj_info info;
    struct store_run *r;
    int64_t requeued = -1;
    int cancel = 0, changed = 0;

    assert_int_equal(new_experiment(f, 3, NULL, NULL, ex, NULL), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "w", 3, &c), STORE_OK);
    assert_int_equal(store_trajectory_append(f->s, c->runs[1].id, c->token, pts, 2), STORE_OK);
    assert_int_equal(finish_run(f->s, c->runs[0].id, c->token, STORE_RUN_FINISHED, 0.5, NULL),
                     STORE_OK);
    assert_int_equal(store_claim_release(f->s, c->token, &requeued), STORE_OK);
    assert_int_equal(requeued, 2); /* the finished one stays finished */
    r = get_run(f->s, c->runs[0].id);
    assert_int_equal(r->status, STORE_RUN_FINISHED);
    store_run_free(r);
    r = get_run(f->s, c->runs[1].id);
    assert_int_equal(r->status, STORE_RUN_QUEUED);
    assert_int_equal(r->attempts, 0);
    store_run_free(r);
    assert_int_equal(store_trajectory_info(f->s, c->runs[1].id, &info), STORE_OK);
    assert_int_equal(info.count, 0);
    assert_int_equal(store_claim_heartbeat(f->s, c->token, &cancel), STORE_ECONFLICT);
    assert_int_equal(finish_run(f->s, c->runs[1].id, c->token, STORE_RUN_FINISHED, 0.5, NULL),
                     STORE_ECONFLICT);
    assert_int_equal(store_claim_release(f->s, c->token, &requeued), STORE_OK);
    assert_int_equal(requeued, 0);
    assert_int_equal(store_claim_runs(f->s, "w2", 3, &again), STORE_OK);
    assert_int_equal(again->n_runs, 2);
    assert_int_equal(again->runs[0].index, 1);
    assert_int_equal(again->runs[0].attempts, 1);
    store_claim_free(c);
    c = NULL;

    /* Released after a cancel: cancelled, not queued. */
    assert_int_equal(new_experiment(f, 2, NULL, NULL, ex2, NULL), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "w", 2, &c), STORE_OK);
    assert_string_equal(c->experiment_id, ex2);
    assert_int_equal(store_experiment_cancel(f->s, ex2, &changed), STORE_OK);
    assert_int_equal(store_claim_release(f->s, c->token, &requeued), STORE_OK);
    assert_int_equal(requeued, 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM runs WHERE status = 'cancelled'"), 2);
    assert_int_equal(store_claim_release(f->s, "", &requeued), STORE_EINVAL);
    store_claim_free(c);
    store_claim_free(again);
}

static void test_cancel(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE];
    struct store_claim *c = NULL, *none = NULL;
    struct store_experiment *e;
    struct store_run *r;
    int changed = -1, cancel = -1;

    assert_int_equal(new_experiment(f, 5, NULL, NULL, ex, NULL), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "w", 2, &c), STORE_OK);
    assert_int_equal(store_experiment_cancel(f->s, ex, &changed), STORE_OK);
    assert_int_equal(changed, 1);
    e = get_exp(f->s, ex);
    assert_int_equal(e->status, STORE_EXP_CANCELLED);
    assert_int_equal(e->cancel_requested, 1);
    assert_true(e->finished_at_ms > 0);
    assert_int_equal(e->progress.cancelled, 3); /* the queued ones at once */
    assert_int_equal(e->progress.running, 2);   /* the running ones are only flagged */
    store_experiment_free(e);
    assert_int_equal(store_claim_runs(f->s, "w", 5, &none), STORE_OK);
    assert_null(none);
    assert_int_equal(store_claim_heartbeat(f->s, c->token, &cancel), STORE_OK);
    assert_int_equal(cancel, 1);
    /* Workers stop and report. */
    assert_int_equal(finish_run(f->s, c->runs[0].id, c->token, STORE_RUN_CANCELLED, NAN, NULL),
                     STORE_OK);
    assert_int_equal(finish_run(f->s, c->runs[1].id, c->token, STORE_RUN_FINISHED, 0.3, NULL),
                     STORE_OK);
    r = get_run(f->s, c->runs[0].id);
    assert_int_equal(r->status, STORE_RUN_CANCELLED);
    store_run_free(r);
    e = get_exp(f->s, ex);
    assert_int_equal(e->status, STORE_EXP_CANCELLED); /* stays cancelled */
    assert_int_equal(e->progress.cancelled, 4);
    assert_int_equal(e->progress.finished, 1);
    store_experiment_free(e);
    assert_int_equal(store_experiment_cancel(f->s, ex, &changed), STORE_OK);
    assert_int_equal(changed, 0);
    assert_int_equal(store_experiment_cancel(f->s, "ex_0000000000000000", &changed),
                     STORE_ENOTFOUND);
    store_claim_free(c);
}

static void test_delete_cascades(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE], keep[STORE_ID_SIZE];
    struct store_claim *c = NULL;
    struct store_run_result res;
    struct store_traj_point pts[2] = {{0, 1.0, 1.0, 1.0}, {5, 0.5, 1.0, 1.0}};
    double params[3] = {1, 2, 3};
    struct store_experiment *e = NULL;
    struct store_run *r = NULL;

    assert_int_equal(new_experiment(f, 3, NULL, NULL, ex, NULL), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "w", 3, &c), STORE_OK);
    assert_int_equal(new_experiment(f, 2, NULL, NULL, keep, NULL), STORE_OK);
    assert_int_equal(store_trajectory_append(f->s, c->runs[0].id, c->token, pts, 2), STORE_OK);
    memset(&res, 0, sizeof res);
    res.run_id = c->runs[0].id;
    res.token = c->token;
    res.status = STORE_RUN_FINISHED;
    res.final_risk = 0.5;
    res.params = params;
    res.n_params = 3;
    assert_int_equal(store_run_finish(f->s, &res), STORE_OK);
    assert_true(raw_int(f, "SELECT count(*) FROM events") > 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM run_params"), 1);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM trajectory_chunks"), 1);

    assert_int_equal(store_experiment_delete(f->s, ex), STORE_OK);
    assert_int_equal(store_experiment_get(f->s, ex, &e), STORE_ENOTFOUND);
    assert_int_equal(store_run_get(f->s, c->runs[0].id, &r), STORE_ENOTFOUND);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM runs"), 2); /* only `keep`'s */
    assert_int_equal(raw_int(f, "SELECT count(*) FROM run_params"), 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM trajectory_chunks"), 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM events"), 0);
    /* The worker still holding runs of it learns that they are gone. */
    assert_int_equal(finish_run(f->s, c->runs[1].id, c->token, STORE_RUN_FINISHED, 0.5, NULL),
                     STORE_ENOTFOUND);
    assert_int_equal(store_experiment_delete(f->s, ex), STORE_ENOTFOUND);
    store_claim_free(c);
}

/* ---- pagination ---- */

static void test_pagination_datasets(void **state)
{
    struct fx *f = *state;
    char ids[24][STORE_ID_SIZE];
    int seen[24] = {0};
    char cursor[STORE_CURSOR_SIZE] = "";
    size_t total = 0, pages = 0, i, k;
    struct store_dataset_list *l = NULL;

    strcpy(ids[0], f->ds);
    for (i = 1; i < 24; i++)
        assert_int_equal(insert_dataset(f->s, "d", ids[i]), STORE_OK);
    do {
        assert_int_equal(store_dataset_list(f->s, 5, cursor, &l), STORE_OK);
        pages++;
        assert_true(l->n <= 5);
        for (i = 0; i < l->n; i++) {
            /* Newest first: position total+i holds the (23 − total − i)-th insert. */
            assert_string_equal(l->items[i].id, ids[23 - total - i]);
            assert_null(l->items[i].x);
            for (k = 0; k < 24; k++)
                if (strcmp(l->items[i].id, ids[k]) == 0)
                    seen[k]++;
        }
        total += l->n;
        strcpy(cursor, l->next_cursor);
        store_dataset_list_free(l);
        l = NULL;
    } while (cursor[0]);
    assert_int_equal(total, 24);
    assert_int_equal(pages, 5);
    for (k = 0; k < 24; k++)
        assert_int_equal(seen[k], 1);

    assert_int_equal(store_dataset_list(f->s, 5, "garbage!", &l), STORE_EINVAL);
    assert_int_equal(store_dataset_list(f->s, 0, NULL, &l), STORE_EINVAL);
    assert_int_equal(store_dataset_list(f->s, STORE_MAX_PAGE + 1, NULL, &l), STORE_EINVAL);
    assert_null(l);
}

static void test_pagination_exact_multiple(void **state)
{
    struct fx *f = *state;
    char id[STORE_ID_SIZE], cursor[STORE_CURSOR_SIZE] = "";
    struct store_architecture_list *l = NULL;
    struct store_dataset_list *dl = NULL;
    size_t total = 0, pages = 0, i;

    for (i = 1; i < 20; i++)
        assert_int_equal(insert_architecture(f->s, id), STORE_OK);
    do {
        assert_int_equal(store_architecture_list(f->s, 5, cursor, &l), STORE_OK);
        assert_int_equal(l->n, 5); /* never an empty last page */
        total += l->n;
        pages++;
        strcpy(cursor, l->next_cursor);
        store_architecture_list_free(l);
    } while (cursor[0]);
    assert_int_equal(total, 20);
    assert_int_equal(pages, 4);
    /* A cursor from another list is refused. */
    assert_int_equal(store_architecture_list(f->s, 5, NULL, &l), STORE_OK);
    assert_int_equal(store_dataset_list(f->s, 5, l->next_cursor, &dl), STORE_EINVAL);
    store_architecture_list_free(l);
}

static void test_pagination_experiments(void **state)
{
    struct fx *f = *state;
    char ids[7][STORE_ID_SIZE], cursor[STORE_CURSOR_SIZE] = "";
    struct store_experiment_list *l = NULL;
    size_t total = 0, i;
    int changed;

    for (i = 0; i < 7; i++)
        assert_int_equal(new_experiment(f, 1, NULL, NULL, ids[i], NULL), STORE_OK);
    assert_int_equal(store_experiment_cancel(f->s, ids[2], &changed), STORE_OK);
    assert_int_equal(store_experiment_cancel(f->s, ids[5], &changed), STORE_OK);
    do {
        assert_int_equal(store_experiment_list(f->s, -1, 3, cursor, &l), STORE_OK);
        for (i = 0; i < l->n; i++)
            assert_string_equal(l->items[i].id, ids[6 - total - i]);
        total += l->n;
        strcpy(cursor, l->next_cursor);
        store_experiment_list_free(l);
    } while (cursor[0]);
    assert_int_equal(total, 7);
    assert_int_equal(store_experiment_list(f->s, STORE_EXP_CANCELLED, 1, NULL, &l), STORE_OK);
    assert_int_equal(l->n, 1);
    assert_string_equal(l->items[0].id, ids[5]);
    assert_int_equal(l->items[0].progress.cancelled, 1);
    strcpy(cursor, l->next_cursor);
    store_experiment_list_free(l);
    assert_int_equal(store_experiment_list(f->s, STORE_EXP_CANCELLED, 1, cursor, &l), STORE_OK);
    assert_int_equal(l->n, 1);
    assert_string_equal(l->items[0].id, ids[2]);
    assert_string_equal(l->next_cursor, "");
    store_experiment_list_free(l);
}

static const double risk_of[13] = {0.5, 0.25, NAN, 0.5, 0.0, 1e9, 0.25,
                                   NAN, -1.0, 0.5, 3.0, 0.0, 0.25};

/* Expected order by (risk, index), unknown risk last: computed independently of the store. */
static int risk_before(size_t a, size_t b)
{
    double ra = isnan(risk_of[a]) ? INFINITY : risk_of[a];
    double rb = isnan(risk_of[b]) ? INFINITY : risk_of[b];
    return ra < rb || (ra == rb && a < b);
}

static void test_pagination_runs(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE], cursor[STORE_CURSOR_SIZE] = "";
    struct store_claim *c = NULL;
    struct store_run_list *l = NULL;
    struct store_run_filter flt = {-1, NULL, STORE_ORDER_FINAL_RISK};
    size_t order[13], got[13], n = 0, i, j;

    assert_int_equal(new_experiment(f, 13, NULL, NULL, ex, NULL), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "w", 13, &c), STORE_OK);
    assert_int_equal(c->n_runs, 13);
    for (i = 0; i < 13; i++)
        assert_int_equal(finish_run(f->s, c->runs[i].id, c->token,
                                    isnan(risk_of[i]) ? STORE_RUN_FAILED : STORE_RUN_FINISHED,
                                    risk_of[i], i % 3 == 0 ? "local_min" : "saddle"),
                         STORE_OK);
    for (i = 0; i < 13; i++)
        order[i] = i;
    for (i = 1; i < 13; i++) /* insertion sort with the reference comparison */
        for (j = i; j > 0 && risk_before(order[j], order[j - 1]); j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    do {
        assert_int_equal(store_run_list(f->s, ex, &flt, 4, cursor, &l), STORE_OK);
        for (i = 0; i < l->n; i++)
            got[n++] = (size_t)l->items[i].index;
        strcpy(cursor, l->next_cursor);
        store_run_list_free(l);
    } while (cursor[0] && n < 13);
    assert_string_equal(cursor, "");
    assert_int_equal(n, 13);
    for (i = 0; i < 13; i++)
        assert_int_equal(got[i], order[i]);

    /* Filters: finished runs labelled local_min (index % 3 == 0, all with a known risk), by
     * index, two per page. */
    flt.status = STORE_RUN_FINISHED;
    flt.verdict_label = "local_min";
    flt.order = STORE_ORDER_INDEX;
    n = 0;
    cursor[0] = '\0';
    do {
        assert_int_equal(store_run_list(f->s, ex, &flt, 2, cursor, &l), STORE_OK);
        for (i = 0; i < l->n; i++) {
            assert_int_equal(l->items[i].status, STORE_RUN_FINISHED);
            assert_string_equal(l->items[i].verdict_label, "local_min");
            got[n++] = (size_t)l->items[i].index;
        }
        strcpy(cursor, l->next_cursor);
        store_run_list_free(l);
    } while (cursor[0]);
    assert_int_equal(n, 5);
    assert_int_equal(got[0], 0);
    assert_int_equal(got[1], 3);
    assert_int_equal(got[2], 6);
    assert_int_equal(got[3], 9);
    assert_int_equal(got[4], 12);

    /* A by-risk cursor is not a by-index cursor. */
    flt.status = -1;
    flt.verdict_label = NULL;
    flt.order = STORE_ORDER_FINAL_RISK;
    assert_int_equal(store_run_list(f->s, ex, &flt, 4, NULL, &l), STORE_OK);
    strcpy(cursor, l->next_cursor);
    store_run_list_free(l);
    flt.order = STORE_ORDER_INDEX;
    assert_int_equal(store_run_list(f->s, ex, &flt, 4, cursor, &l), STORE_EINVAL);
    assert_int_equal(store_run_list(f->s, "ex_0000000000000000", NULL, 4, NULL, &l),
                     STORE_ENOTFOUND);
    store_claim_free(c);
}

/* ---- trajectories ---- */

static void make_points(struct store_traj_point *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        p[i].step = 3 * (int64_t)i + 1;
        p[i].risk = 1.0 / (1.0 + (double)i) + (i % 7 == 0 ? -0.0 : 1e-310);
        p[i].grad_norm = i == 17 ? INFINITY : sqrt((double)i);
        p[i].param_norm = -(double)i * 0.1;
    }
    p[777].risk = 1e6; /* a spike */
}

static void test_trajectory_round_trip(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE];
    struct store_claim *c = NULL;
    struct store_traj_point *pts = calloc(1300, sizeof *pts), *back = NULL, *all = NULL;
    struct store_traj_info info;
    size_t n = 0, got = 0;
    int64_t next = 0, from;

    assert_non_null(pts);
    make_points(pts, 1300);
    assert_int_equal(new_experiment(f, 1, NULL, NULL, ex, NULL), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "w", 1, &c), STORE_OK);
    assert_int_equal(store_trajectory_append(f->s, c->runs[0].id, c->token, pts, 1), STORE_OK);
    assert_int_equal(store_trajectory_append(f->s, c->runs[0].id, c->token, pts + 1, 700),
                     STORE_OK);
    assert_int_equal(store_trajectory_append(f->s, c->runs[0].id, c->token, pts + 701, 599),
                     STORE_OK);
    /* Filled chunk by chunk: 512 + 512 + 276, not one row per append. */
    assert_int_equal(raw_int(f, "SELECT count(*) FROM trajectory_chunks"), 3);
    assert_int_equal(raw_int(f, DIALECT("SELECT group_concat(count) FROM trajectory_chunks "
                                        "WHERE chunk_no = 1 AND count = 512 AND first_step = 1537",
                                        "SELECT string_agg(count::text, ',') FROM "
                                        "trajectory_chunks WHERE chunk_no = 1 AND count = 512 "
                                        "AND first_step = 1537")),
                     512);

    assert_int_equal(store_trajectory_info(f->s, c->runs[0].id, &info), STORE_OK);
    assert_int_equal(info.count, 1300);
    assert_int_equal(info.first_step, 1);
    assert_int_equal(info.last_step, 3 * 1299 + 1);

    assert_int_equal(
        store_trajectory_read(f->s, c->runs[0].id, 0, INT64_MAX, 5000, &back, &n, &next), STORE_OK);
    assert_int_equal(n, 1300);
    assert_int_equal(next, -1);
    assert_memory_equal(back, pts, 1300 * sizeof *pts);
    free(back);

    /* Page by page. */
    all = calloc(1300, sizeof *all);
    assert_non_null(all);
    from = 0;
    while (from >= 0) {
        assert_int_equal(
            store_trajectory_read(f->s, c->runs[0].id, from, INT64_MAX, 97, &back, &n, &next),
            STORE_OK);
        assert_true(got + n <= 1300);
        memcpy(all + got, back, n * sizeof *back);
        got += n;
        free(back);
        from = next;
    }
    assert_int_equal(got, 1300);
    assert_memory_equal(all, pts, 1300 * sizeof *pts);
    free(all);

    /* A step range: steps 3i+1 in [100, 200] are i = 33..66. */
    assert_int_equal(store_trajectory_read(f->s, c->runs[0].id, 100, 200, 1000, &back, &n, &next),
                     STORE_OK);
    assert_int_equal(n, 34);
    assert_memory_equal(back, pts + 33, 34 * sizeof *pts);
    free(back);
    assert_int_equal(store_trajectory_read(f->s, c->runs[0].id, 2, 3, 1000, &back, &n, &next),
                     STORE_OK);
    assert_int_equal(n, 0);
    assert_null(back);

    /* Refused appends change nothing. */
    {
        struct store_traj_point bad[2] = {{5000, 1, 1, 1}, {5000, 1, 1, 1}};
        struct store_traj_point old[1] = {{3898, 1, 1, 1}};
        assert_int_equal(store_trajectory_append(f->s, c->runs[0].id, c->token, bad, 2),
                         STORE_EINVAL);
        assert_int_equal(store_trajectory_append(f->s, c->runs[0].id, c->token, old, 1),
                         STORE_EINVAL);
        assert_int_equal(store_trajectory_append(f->s, c->runs[0].id, "wrong", bad, 1),
                         STORE_ECONFLICT);
        assert_int_equal(store_trajectory_append(f->s, "run_0000000000000000", c->token, bad, 1),
                         STORE_ENOTFOUND);
        assert_int_equal(store_trajectory_info(f->s, c->runs[0].id, &info), STORE_OK);
        assert_int_equal(info.count, 1300);
        assert_int_equal(finish_run(f->s, c->runs[0].id, c->token, STORE_RUN_FINISHED, 0.1, NULL),
                         STORE_OK);
        assert_int_equal(store_trajectory_append(f->s, c->runs[0].id, c->token, bad, 1),
                         STORE_ECONFLICT); /* terminal */
    }
    free(pts);
    store_claim_free(c);
}

static void test_trajectory_downsample(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE];
    struct store_claim *c = NULL;
    struct store_traj_point *pts = calloc(1300, sizeof *pts), *ds = NULL;
    size_t n = 0, i;
    int spike = 0, first = 0, last = 0;

    assert_non_null(pts);
    make_points(pts, 1300);
    assert_int_equal(new_experiment(f, 1, NULL, NULL, ex, NULL), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "w", 1, &c), STORE_OK);
    assert_int_equal(store_trajectory_append(f->s, c->runs[0].id, c->token, pts, 1300), STORE_OK);

    assert_int_equal(store_trajectory_downsample(f->s, c->runs[0].id, 0, INT64_MAX, 100, &ds, &n),
                     STORE_OK);
    assert_true(n <= 100);
    assert_true(n >= 50);
    for (i = 0; i < n; i++) {
        if (i > 0)
            assert_true(ds[i].step > ds[i - 1].step);
        spike |= ds[i].step == pts[777].step && ds[i].risk == 1e6;
        first |= ds[i].step == pts[0].step;
        last |= ds[i].step == pts[1299].step;
        /* every kept point is a stored point, unchanged */
        assert_memory_equal(&ds[i], &pts[(ds[i].step - 1) / 3], sizeof *ds);
    }
    assert_true(spike);
    assert_true(first);
    assert_true(last);
    free(ds);

    /* When the range fits, every point comes back. */
    assert_int_equal(store_trajectory_downsample(f->s, c->runs[0].id, 1000, 1600, 1000, &ds, &n),
                     STORE_OK);
    assert_int_equal(n, 201); /* steps 1000..1600 of the form 3i+1: i = 333..533 */
    assert_memory_equal(ds, pts + 333, 201 * sizeof *pts);
    free(ds);
    assert_int_equal(store_trajectory_downsample(f->s, c->runs[0].id, 0, 10, 3, &ds, &n),
                     STORE_EINVAL);
    free(pts);
    store_claim_free(c);
}

/* ---- events and metrics ---- */

static void test_events(void **state)
{
    struct fx *f = *state;
    char ex[STORE_ID_SIZE];
    struct store_claim *c = NULL;
    struct store_event_list *l = NULL;
    json_t *data = json_pack("{si}", "basins", 3);
    int64_t id = 0, last;

    assert_int_equal(new_experiment(f, 2, NULL, NULL, ex, NULL), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "w", 2, &c), STORE_OK);
    assert_int_equal(finish_run(f->s, c->runs[0].id, c->token, STORE_RUN_FINISHED, 0.5, "saddle"),
                     STORE_OK);
    assert_int_equal(finish_run(f->s, c->runs[1].id, c->token, STORE_RUN_FINISHED, 0.25, NULL),
                     STORE_OK);
    assert_int_equal(store_events_since(f->s, ex, 0, 100, &l), STORE_OK);
    assert_int_equal(l->n, 4);
    assert_string_equal(l->items[0].type, "status");
    assert_string_equal(json_string_value(json_object_get(l->items[0].data, "status")), "running");
    assert_string_equal(l->items[1].type, "run_finished");
    assert_string_equal(json_string_value(json_object_get(l->items[1].data, "run_id")),
                        c->runs[0].id);
    assert_string_equal(json_string_value(json_object_get(l->items[1].data, "verdict")), "saddle");
    assert_true(json_real_value(json_object_get(l->items[1].data, "final_risk")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(l->items[1].data, "progress"), "finished")),
                     1);
    assert_string_equal(l->items[2].type, "run_finished");
    assert_true(json_is_null(json_object_get(l->items[2].data, "verdict")));
    assert_string_equal(l->items[3].type, "status");
    assert_string_equal(json_string_value(json_object_get(l->items[3].data, "status")), "finished");
    assert_true(l->items[0].id < l->items[1].id && l->items[1].id < l->items[2].id &&
                l->items[2].id < l->items[3].id);
    last = l->items[3].id;
    store_event_list_free(l);

    /* Resume after the last seen id. */
    assert_int_equal(store_event_append(f->s, ex, "summary", data, &id), STORE_OK);
    assert_true(id > last);
    assert_int_equal(store_events_since(f->s, ex, last, 100, &l), STORE_OK);
    assert_int_equal(l->n, 1);
    assert_int_equal(l->items[0].id, id);
    assert_string_equal(l->items[0].type, "summary");
    assert_int_equal(json_integer_value(json_object_get(l->items[0].data, "basins")), 3);
    store_event_list_free(l);
    assert_int_equal(store_events_since(f->s, ex, id, 100, &l), STORE_OK);
    assert_int_equal(l->n, 0);
    store_event_list_free(l);
    assert_int_equal(store_events_since(f->s, ex, 0, 2, &l), STORE_OK); /* limit honoured */
    assert_int_equal(l->n, 2);
    store_event_list_free(l);

    assert_int_equal(store_event_append(f->s, ex, "", data, &id), STORE_EINVAL);
    assert_int_equal(store_event_append(f->s, "ex_0000000000000000", "x", data, &id),
                     STORE_ENOTFOUND);
    assert_int_equal(store_events_since(f->s, "ex_0000000000000000", 0, 10, &l), STORE_ENOTFOUND);
    json_decref(data);
    store_claim_free(c);
}

static void test_metrics_and_summary(void **state)
{
    struct fx *f = *state;
    char a[STORE_ID_SIZE], b[STORE_ID_SIZE];
    struct store_claim *c = NULL;
    struct store_metrics m;
    struct store_experiment *e;
    json_t *summary = json_pack("{sf}", "best_risk", 0.125);
    int changed;

    assert_int_equal(new_experiment(f, 4, NULL, NULL, a, NULL), STORE_OK);
    assert_int_equal(new_experiment(f, 3, NULL, NULL, b, NULL), STORE_OK);
    assert_int_equal(store_claim_runs(f->s, "w", 2, &c), STORE_OK);
    assert_int_equal(finish_run(f->s, c->runs[0].id, c->token, STORE_RUN_FAILED, NAN, NULL),
                     STORE_OK);
    assert_int_equal(store_experiment_cancel(f->s, b, &changed), STORE_OK);
    assert_int_equal(store_metrics(f->s, &m), STORE_OK);
    assert_int_equal(m.runs[STORE_RUN_QUEUED], 2);
    assert_int_equal(m.runs[STORE_RUN_RUNNING], 1);
    assert_int_equal(m.runs[STORE_RUN_FAILED], 1);
    assert_int_equal(m.runs[STORE_RUN_FINISHED], 0);
    assert_int_equal(m.runs[STORE_RUN_CANCELLED], 3);
    assert_int_equal(m.experiments[STORE_EXP_RUNNING], 1);
    assert_int_equal(m.experiments[STORE_EXP_CANCELLED], 1);
    assert_int_equal(m.experiments[STORE_EXP_QUEUED], 0);
    assert_int_equal(m.queue_depth, 2);
    assert_int_equal(m.datasets, 1);
    assert_int_equal(m.architectures, 1);

    assert_int_equal(store_experiment_set_summary(f->s, a, summary), STORE_OK);
    e = get_exp(f->s, a);
    assert_true(json_real_value(json_object_get(e->summary, "best_risk")) == 0.125);
    store_experiment_free(e);
    assert_int_equal(store_experiment_set_summary(f->s, "ex_0000000000000000", summary),
                     STORE_ENOTFOUND);
    json_decref(summary);
    store_claim_free(c);
}

/* ---- concurrency ---- */

#define N_THREADS 4
#define N_EXPERIMENTS 3
#define RUNS_PER_EXPERIMENT 30

struct worker {
    struct store *s;
    pthread_barrier_t *start;
    char name[16];
    char (*ids)[STORE_ID_SIZE];
    size_t n, cap;
    int errors;
    int last_rc;
};

static void *claim_loop(void *arg)
{
    struct worker *w = arg;
    int first = 1;
    for (;;) {
        struct store_claim *c = NULL;
        size_t i;
        int rc = store_claim_runs(w->s, w->name, 3, &c);
        if (first) {
            /* Every worker holds its first claim before anyone finishes: the claims really
             * overlap, whatever the scheduler does. */
            pthread_barrier_wait(w->start);
            first = 0;
        }
        if (rc != STORE_OK) {
            w->errors++;
            w->last_rc = rc;
            break;
        }
        if (!c)
            break;
        for (i = 0; i < c->n_runs; i++) {
            if (w->n < w->cap)
                strcpy(w->ids[w->n++], c->runs[i].id);
            rc = finish_run(w->s, c->runs[i].id, c->token, STORE_RUN_FINISHED, 1.0, NULL);
            if (rc != STORE_OK) {
                w->errors++;
                w->last_rc = rc;
            }
        }
        store_claim_free(c);
    }
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_concurrent_claims(void **state)
{
    struct fx *f = *state;
    const size_t total = N_EXPERIMENTS * RUNS_PER_EXPERIMENT;
    struct worker w[N_THREADS];
    pthread_t th[N_THREADS];
    char ex[N_EXPERIMENTS][STORE_ID_SIZE];
    char(*all)[STORE_ID_SIZE] = calloc(total * N_THREADS, STORE_ID_SIZE);
    size_t n_all = 0, i, k;
    int per_worker_nonzero = 0;
    pthread_barrier_t start;

    assert_non_null(all);
    assert_int_equal(pthread_barrier_init(&start, NULL, N_THREADS), 0);
    for (i = 0; i < N_EXPERIMENTS; i++)
        assert_int_equal(new_experiment(f, RUNS_PER_EXPERIMENT, NULL, NULL, ex[i], NULL), STORE_OK);
    for (i = 0; i < N_THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].s = f->s;
        w[i].start = &start;
        snprintf(w[i].name, sizeof w[i].name, "worker%zu", i);
        w[i].cap = total;
        w[i].ids = calloc(total, STORE_ID_SIZE);
        assert_non_null(w[i].ids);
    }
    for (i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, claim_loop, &w[i]), 0);
    for (i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    for (i = 0; i < N_THREADS; i++) {
        if (w[i].errors)
            fprintf(stderr, "worker %zu: %d errors, last %s\n", i, w[i].errors,
                    store_strerror(w[i].last_rc));
        assert_int_equal(w[i].errors, 0);
        per_worker_nonzero += w[i].n > 0;
        for (k = 0; k < w[i].n; k++)
            strcpy(all[n_all++], w[i].ids[k]);
        free(w[i].ids);
    }
    /* Every run handed out exactly once. */
    assert_int_equal(n_all, total);
    qsort(all, n_all, STORE_ID_SIZE, cmp_id);
    for (i = 1; i < n_all; i++)
        assert_string_not_equal(all[i - 1], all[i]);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM runs WHERE status = 'finished' AND "
                                "attempts = 1"),
                     (int64_t)total);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM experiments WHERE status = 'finished'"),
                     N_EXPERIMENTS);
    assert_int_equal(per_worker_nonzero, N_THREADS); /* each held a claim at the same time */
    pthread_barrier_destroy(&start);
    free(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_cursor_codec),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test_setup_teardown(test_dataset_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_experiment_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_experiment_create_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_fairness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fenced_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeue_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeue_charges_executing_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeue_partial_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_cascades, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagination_datasets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagination_exact_multiple, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagination_experiments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagination_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trajectory_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trajectory_downsample, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_and_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_claims, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
