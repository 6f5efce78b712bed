/* Tests of the trajectory chunk format (server/traj_codec.h, migration 0004): the codec against
 * hand-built bytes, exact round trips of regular and irregular step sequences through the SQLite
 * store, the migration of a schema-3 database with old 32-byte chunks, and the on-disk bytes per
 * point measured with dbstat like bench/server_bench.py does. */
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
#include <libpq-fe.h>
#include <sqlite3.h>

#include "ids.h"
#include "migrate.h"
#include "store.h"
#include "traj_codec.h"

/* ---- helpers ---- */

/* Little-endian float64 written without the store's helpers (an independent reference). */
static void le_f64(unsigned char *p, double v)
{
    uint64_t u;
    int i;
    memcpy(&u, &v, sizeof u);
    for (i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

/* Reals that must survive bit for bit: signed zero, subnormal, NaN, infinity. */
static struct store_traj_point point(int64_t step, size_t i)
{
    struct store_traj_point p;
    p.step = step;
    p.risk = i % 5 == 0 ? -0.0 : 1.0 / (1.0 + (double)i);
    p.grad_norm = i % 7 == 3 ? INFINITY : i % 11 == 4 ? 4.9e-324 : sqrt((double)i + 0.5);
    p.param_norm = i == 2 ? NAN : 3.0 + 1e-3 * (double)i;
    return p;
}

static void assert_points_equal(const struct store_traj_point *a, const struct store_traj_point *b,
                                size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        assert_int_equal(a[i].step, b[i].step);
        assert_memory_equal(&a[i].risk, &b[i].risk, sizeof(double));
        assert_memory_equal(&a[i].grad_norm, &b[i].grad_norm, sizeof(double));
        assert_memory_equal(&a[i].param_norm, &b[i].param_norm, sizeof(double));
    }
}

/* ---- codec ---- */

static void check_codec(const int64_t *steps, size_t n, int64_t want_stride)
{
    struct store_traj_point in[STORE_TRAJ_CHUNK_POINTS], out[STORE_TRAJ_CHUNK_POINTS];
    unsigned char buf[TRAJ_EXPLICIT_POINT_BYTES * STORE_TRAJ_CHUNK_POINTS];
    unsigned char ref[TRAJ_EXPLICIT_POINT_BYTES * STORE_TRAJ_CHUNK_POINTS];
    size_t i, len = 0, per = want_stride > 0 ? 24 : 32;
    int64_t stride = -1;

    for (i = 0; i < n; i++)
        in[i] = point(steps[i], i);
    traj_encode(in, n, buf, &stride, &len);
    assert_int_equal(stride, want_stride);
    assert_int_equal(len, per * n);
    assert_int_equal(traj_chunk_bytes(stride, n), len);
    /* the bytes are the documented layout */
    for (i = 0; i < n; i++) {
        unsigned char *p = ref + per * i;
        if (per == 32) {
            le_f64(p, (double)steps[i]);
            p += 8;
        }
        le_f64(p, in[i].risk);
        le_f64(p + 8, in[i].grad_norm);
        le_f64(p + 16, in[i].param_norm);
    }
    assert_memory_equal(buf, ref, len);
    memset(out, 0x55, sizeof out);
    assert_int_equal(traj_decode(buf, len, (int64_t)n, steps[0], steps[n - 1], stride, out),
                     STORE_OK);
    assert_points_equal(in, out, n);
}

static void test_codec_formats(void **state)
{
    int64_t s[STORE_TRAJ_CHUNK_POINTS];
    size_t i;
    (void)state;

    for (i = 0; i < 21; i++)
        s[i] = 100 * (int64_t)i; /* 0..2000: trajectory_every 100 */
    check_codec(s, 21, 100);
    s[20] = 1999; /* the run stopped off the grid */
    check_codec(s, 21, 100);
    s[0] = 42; /* a single point */
    check_codec(s, 1, 1);
    s[0] = 5, s[1] = 1000; /* two points: any gap is a grid */
    check_codec(s, 2, 995);
    for (i = 0; i < STORE_TRAJ_CHUNK_POINTS; i++)
        s[i] = 7 + (int64_t)i; /* every step, a full chunk */
    check_codec(s, STORE_TRAJ_CHUNK_POINTS, 1);
    s[0] = 0, s[1] = 1, s[2] = 3, s[3] = 6; /* irregular */
    check_codec(s, 4, 0);
    s[0] = 0, s[1] = 10, s[2] = 25, s[3] = 30; /* off-grid in the middle, regular tail */
    check_codec(s, 4, 0);
    s[0] = ((int64_t)1 << 53) - 2, s[1] = ((int64_t)1 << 53) - 1, s[2] = (int64_t)1 << 53;
    check_codec(s, 3, 1); /* the largest steps */
}

static void test_codec_rejects_inconsistent_chunks(void **state)
{
    unsigned char buf[32 * 4];
    struct store_traj_point out[4];
    (void)state;
    memset(buf, 0, sizeof buf);
    /* lengths that do not match the format */
    assert_int_equal(traj_decode(buf, 24 * 3, 4, 0, 30, 10, out), STORE_ECORRUPT);
    assert_int_equal(traj_decode(buf, 24 * 4, 4, 0, 30, 0, out), STORE_ECORRUPT);
    assert_int_equal(traj_decode(buf, 32 * 4, 4, 0, 30, 10, out), STORE_ECORRUPT);
    /* the last step must come after the grid: 0, 10, 20 then 20 is not increasing */
    assert_int_equal(traj_decode(buf, 24 * 4, 4, 0, 20, 10, out), STORE_ECORRUPT);
    assert_int_equal(traj_decode(buf, 24 * 4, 4, 0, 21, 10, out), STORE_OK);
    assert_int_equal(out[2].step, 20);
    assert_int_equal(out[3].step, 21);
    /* one point: first and last are the same step */
    assert_int_equal(traj_decode(buf, 24, 1, 3, 4, 1, out), STORE_ECORRUPT);
    assert_int_equal(traj_decode(buf, 24, 0, 3, 3, 1, out), STORE_ECORRUPT);
    assert_int_equal(traj_decode(buf, 24, 1, 3, 3, -1, out), STORE_ECORRUPT);
    assert_int_equal(traj_decode(NULL, 24, 1, 3, 3, 1, out), STORE_ECORRUPT);
}

/* ---- the store ---- */

struct fx {
    char dir[64];
    char path[512];
    char schema[32]; /* PostgreSQL: the test's own schema */
    struct store *s;
};

/* The PostgreSQL URL under test (BASINLAB_TEST_STORE), or NULL for SQLite. Only the store round
 * trips run there; the rest is about SQLite files. */
static const char *pg_url(void)
{
    const char *u = getenv("BASINLAB_TEST_STORE");
    return u && (strncmp(u, "postgres://", 11) == 0 || strncmp(u, "postgresql://", 13) == 0) ? u
                                                                                             : NULL;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/basinlab_traj_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    if (pg_url()) {
        if (ids_new("t_", f->schema, sizeof f->schema) != 0)
            return -1;
        snprintf(f->path, sizeof f->path, "%s%sschema=%s", pg_url(),
                 strchr(pg_url(), '?') ? "&" : "?", f->schema);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    const char *suffix[] = {"", "-wal", "-shm"};
    char p[600];
    size_t i;
    store_close(f->s);
    if (f->schema[0]) {
        char sql[96];
        PGconn *c = PQconnectdb(pg_url());
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", f->schema);
        PQclear(PQexec(c, sql));
        PQfinish(c);
    }
    for (i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void open_store(struct fx *f)
{
    char err[256] = "";
    int rc = store_open(f->path, NULL, &f->s, err, sizeof err);
    if (rc != STORE_OK)
        fprintf(stderr, "store_open: %s\n", err);
    assert_int_equal(rc, STORE_OK);
}

/* An experiment of `restarts` runs, all claimed by one worker. */
static struct store_claim *claimed_runs(struct fx *f, int64_t restarts)
{
    double x[2] = {0.5, -1.0}, y[1] = {1.0};
    struct store_dataset d;
    struct store_architecture a;
    struct store_experiment_new e;
    struct store_claim *c = NULL;
    char ds[STORE_ID_SIZE], ar[STORE_ID_SIZE], ex[STORE_ID_SIZE];
    int existed = 0;

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
    assert_int_equal(store_dataset_insert(f->s, &d, ds), STORE_OK);
    json_decref(d.spec);
    json_decref(d.input_shape);
    memset(&a, 0, sizeof a);
    a.spec = json_pack("{s[i]s[]}", "input_shape", 2, "layers");
    a.param_count = 3;
    a.out_dim = 1;
    assert_int_equal(store_architecture_insert(f->s, &a, ar), STORE_OK);
    json_decref(a.spec);
    memset(&e, 0, sizeof e);
    e.dataset_id = ds;
    e.architecture_id = ar;
    e.spec = json_pack("{sIsI}", "restarts", (json_int_t)restarts, "seed", (json_int_t)7);
    e.restarts = restarts;
    e.seed = 7;
    assert_int_equal(store_experiment_create(f->s, &e, ex, &existed), STORE_OK);
    json_decref(e.spec);
    assert_int_equal(store_claim_runs(f->s, "w", (size_t)restarts, &c), STORE_OK);
    assert_int_equal(c->n_runs, (size_t)restarts);
    return c;
}

/* The whole trajectory of a run, read in pages of 97 points (crossing chunk borders). */
static struct store_traj_point *read_all(struct store *s, const char *run_id, size_t *n)
{
    struct store_traj_point *all = NULL, *page = NULL;
    int64_t from = 0, next = 0;
    size_t got = 0;
    *n = 0;
    while (next >= 0) {
        assert_int_equal(store_trajectory_read(s, run_id, from, INT64_MAX, 97, &page, &got, &next),
                         STORE_OK);
        all = realloc(all, (*n + got + 1) * sizeof *all);
        assert_non_null(all);
        if (got)
            memcpy(all + *n, page, got * sizeof *page);
        *n += got;
        free(page);
        page = NULL;
        from = next;
    }
    return all;
}

/* One integer from SQL written for SQLite; on PostgreSQL ?1 becomes $1 (the rest of the checks'
 * SQL means the same there). */
static int64_t sql_int(const struct fx *f, const char *sql, const char *run_id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v;
    if (f->schema[0]) {
        char q[1024], *at;
        PGconn *c = PQconnectdb(pg_url());
        PGresult *r;
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        snprintf(q, sizeof q, "SET search_path TO %s", f->schema);
        PQclear(PQexec(c, q));
        snprintf(q, sizeof q, "%s", sql);
        for (at = strstr(q, "?1"); at; at = strstr(at, "?1"))
            *at = '$';
        r = PQexecParams(c, q, run_id ? 1 : 0, NULL, run_id ? &run_id : NULL, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fprintf(stderr, "%s: %s", q, PQresultErrorMessage(r));
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_int_equal(PQntuples(r), 1);
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return v;
    }
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (run_id)
        assert_int_equal(sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Appends pts in the given batch sizes, then checks the full read, a mid-range read and info. */
static void round_trip(struct fx *f, const struct store_claim *c, size_t run,
                       const struct store_traj_point *pts, size_t n, const size_t *batches,
                       size_t n_batches)
{
    const char *id = c->runs[run].id;
    struct store_traj_point *back, *mid = NULL;
    struct store_traj_info info;
    size_t i, k, off = 0, got = 0;
    int64_t next = 0, lo, hi;

    for (i = 0; i < n_batches; i++) {
        assert_int_equal(store_trajectory_append(f->s, id, c->token, pts + off, batches[i]),
                         STORE_OK);
        off += batches[i];
    }
    assert_int_equal(off, n);
    back = read_all(f->s, id, &got);
    assert_int_equal(got, n);
    assert_points_equal(pts, back, n);
    free(back);
    assert_int_equal(store_trajectory_info(f->s, id, &info), STORE_OK);
    assert_int_equal(info.count, (int64_t)n);
    assert_int_equal(info.first_step, pts[0].step);
    assert_int_equal(info.last_step, pts[n - 1].step);
    /* a range that starts and ends between recorded steps */
    lo = pts[n / 3].step - 1 + (n / 3 == 0);
    hi = pts[n - 1].step - 1;
    if (hi < lo)
        return; /* a single point: no such range */
    assert_int_equal(store_trajectory_read(f->s, id, lo, hi, 100000, &mid, &got, &next), STORE_OK);
    for (i = 0, k = 0; i < n; i++) {
        if (pts[i].step < lo || pts[i].step > hi)
            continue;
        assert_true(k < got);
        assert_points_equal(&pts[i], &mid[k], 1);
        k++;
    }
    assert_int_equal(k, got);
    assert_int_equal(next, -1);
    free(mid);
}

static void test_store_round_trips(void **state)
{
    struct fx *f = *state;
    struct store_claim *c;
    struct store_traj_point *p = calloc(1300, sizeof *p);
    size_t i;

    assert_non_null(p);
    open_store(f);
    c = claimed_runs(f, 6);

    /* run 0: every step, 1300 points appended as 1 + 700 + 599 (top-ups and full chunks) */
    for (i = 0; i < 1300; i++)
        p[i] = point((int64_t)i, i);
    round_trip(f, c, 0, p, 1300, (const size_t[]){1, 700, 599}, 3);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM trajectory_chunks WHERE run_id = ?1 AND "
                             "stride = 1 AND length(data) = 24 * count",
                             c->runs[0].id),
                     3);

    /* run 1: every 100 steps, stopped at 1999, flushed in three pieces into one chunk */
    for (i = 0; i < 21; i++)
        p[i] = point(i == 20 ? 1999 : 100 * (int64_t)i, i);
    round_trip(f, c, 1, p, 21, (const size_t[]){5, 10, 6}, 3);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM trajectory_chunks WHERE run_id = ?1 AND "
                             "stride = 100 AND count = 21 AND last_step = 1999 AND "
                             "length(data) = 504",
                             c->runs[1].id),
                     1);

    /* run 2: a single point */
    p[0] = point(0, 3);
    round_trip(f, c, 2, p, 1, (const size_t[]){1}, 1);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM trajectory_chunks WHERE run_id = ?1 AND "
                             "stride > 0 AND length(data) = 24",
                             c->runs[2].id),
                     1);

    /* run 3: regular at first, then an off-grid point becomes interior: explicit */
    for (i = 0; i < 6; i++)
        p[i] = point((int64_t[]){0, 100, 200, 250, 300, 400}[i], i);
    round_trip(f, c, 3, p, 6, (const size_t[]){4, 2}, 2);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM trajectory_chunks WHERE run_id = ?1 AND "
                             "stride = 0 AND length(data) = 32 * 6",
                             c->runs[3].id),
                     1);

    /* run 4: irregular steps (squares) across chunk borders */
    for (i = 0; i < 1100; i++)
        p[i] = point((int64_t)(i * i), i);
    round_trip(f, c, 4, p, 1100, (const size_t[]){300, 300, 500}, 3);

    /* run 5: exactly one full 512-point chunk, then a lone point in the next chunk */
    for (i = 0; i < 513; i++)
        p[i] = point(10 + 3 * (int64_t)i, i);
    round_trip(f, c, 5, p, 513, (const size_t[]){512, 1}, 2);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM trajectory_chunks WHERE run_id = ?1 AND "
                             "((chunk_no = 0 AND count = 512 AND stride = 3) OR (chunk_no = 1 AND "
                             "count = 1 AND first_step = 1546 AND last_step = 1546))",
                             c->runs[5].id),
                     2);

    /* the downsampled read sees the same points: a range that fits returns them all */
    {
        struct store_traj_point *ds = NULL;
        size_t n = 0;
        for (i = 0; i < 21; i++)
            p[i] = point(i == 20 ? 1999 : 100 * (int64_t)i, i);
        assert_int_equal(
            store_trajectory_downsample(f->s, c->runs[1].id, 0, INT64_MAX, 100, &ds, &n), STORE_OK);
        assert_int_equal(n, 21);
        assert_points_equal(p, ds, 21);
        free(ds);
    }
    store_claim_free(c);
    free(p);
}

/* ---- migration of a schema-3 database ---- */

static void exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int src = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (src != SQLITE_OK)
        fprintf(stderr, "%s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    assert_int_equal(src, SQLITE_OK);
}

/* An old-format (32 bytes per point, step first) chunk row, built by hand. */
static void old_chunk(sqlite3 *db, const char *run_id, int64_t chunk_no,
                      const struct store_traj_point *pts, size_t n)
{
    unsigned char *buf = malloc(32 * n);
    sqlite3_stmt *st = NULL;
    size_t i;
    assert_non_null(buf);
    for (i = 0; i < n; i++) {
        le_f64(buf + 32 * i, (double)pts[i].step);
        le_f64(buf + 32 * i + 8, pts[i].risk);
        le_f64(buf + 32 * i + 16, pts[i].grad_norm);
        le_f64(buf + 32 * i + 24, pts[i].param_norm);
    }
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO trajectory_chunks (run_id, chunk_no, "
                                        "first_step, last_step, count, data) "
                                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, chunk_no);
    sqlite3_bind_int64(st, 3, pts[0].step);
    sqlite3_bind_int64(st, 4, pts[n - 1].step);
    sqlite3_bind_int64(st, 5, (int64_t)n);
    sqlite3_bind_blob(st, 6, buf, (int)(32 * n), SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    free(buf);
}

static void test_migrate_old_chunks(void **state)
{
    static const char run_a[] = "run_00000000000000aa", run_b[] = "run_00000000000000bb";
    struct fx *f = *state;
    struct migration upto3[8];
    struct store_traj_point a[515], b[12], *back;
    sqlite3 *db = NULL;
    char err[256] = "";
    int version = -1, k = 0;
    size_t i, n = 0;

    if (pg_url())
        skip(); /* SQLite files only; migrations/postgres/0003 is not covered here */
    /* a database at schema 3, with trajectories written in the old format */
    for (i = 0; basinlab_sqlite_migrations[i].sql && basinlab_sqlite_migrations[i].version <= 3;
         i++)
        upto3[k++] = basinlab_sqlite_migrations[i];
    assert_int_equal(k, 3);
    upto3[k] = (struct migration){0, NULL, NULL};
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(migrate_apply(db, upto3, &version, err, sizeof err), STORE_OK);
    assert_int_equal(version, 3);
    exec_sql(db, "INSERT INTO datasets (id, kind, spec, input_shape, n, in_dim, y_dim, task, x, y, "
                 "created_at) VALUES ('ds_0000000000000001', 'inline', '{}', '[1]', 0, 1, 1, "
                 "'regression', X'', X'', 1)");
    exec_sql(db, "INSERT INTO architectures (id, spec, param_count, out_dim, created_at) VALUES "
                 "('ar_0000000000000001', '{}', 1, 1, 1)");
    exec_sql(db, "INSERT INTO experiments (id, dataset_id, architecture_id, spec, status, "
                 "restarts, seed, created_at, updated_at) VALUES ('ex_0000000000000001', "
                 "'ds_0000000000000001', 'ar_0000000000000001', '{}', 'running', 2, 1, 1, 1)");
    exec_sql(db, "INSERT INTO runs (id, experiment_id, restart_index, seed, status, finished_at) "
                 "VALUES ('run_00000000000000aa', 'ex_0000000000000001', 0, 1, 'finished', 2)");
    exec_sql(db, "INSERT INTO runs (id, experiment_id, restart_index, seed, status, claim_token, "
                 "lease_at, started_at, claimed_by, attempts) VALUES ('run_00000000000000bb', "
                 "'ex_0000000000000001', 1, 2, 'running', 'tokb', 9999999999999, 1, 'w', 1)");
    /* run a: a full every-step chunk, then three irregular points */
    for (i = 0; i < 512; i++)
        a[i] = point((int64_t)i, i);
    a[512] = point(600, 512), a[513] = point(650, 513), a[514] = point(777, 514);
    old_chunk(db, run_a, 0, a, 512);
    old_chunk(db, run_a, 1, a + 512, 3);
    /* run b: five regular points of a run still training */
    for (i = 0; i < 12; i++)
        b[i] = point(i == 11 ? 1033 : 100 * (int64_t)i, i);
    old_chunk(db, run_b, 0, b, 5);
    sqlite3_close(db);

    /* the store migrates it to the latest schema and reads the old rows unchanged */
    open_store(f);
    assert_int_equal(sql_int(f, "PRAGMA user_version", NULL),
                     migrate_latest_version(basinlab_sqlite_migrations));
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM trajectory_chunks WHERE stride = 0 AND "
                             "length(data) = 32 * count",
                             NULL),
                     3);
    back = read_all(f->s, run_a, &n);
    assert_int_equal(n, 515);
    assert_points_equal(a, back, 515);
    free(back);
    back = read_all(f->s, run_b, &n);
    assert_int_equal(n, 5);
    assert_points_equal(b, back, 5);
    free(back);

    /* topping up the old chunk re-encodes it: regular now, with the final off-grid step */
    assert_int_equal(store_trajectory_append(f->s, run_b, "tokb", b + 5, 7), STORE_OK);
    back = read_all(f->s, run_b, &n);
    assert_int_equal(n, 12);
    assert_points_equal(b, back, 12);
    free(back);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM trajectory_chunks WHERE run_id = ?1 AND "
                             "stride = 100 AND count = 12 AND last_step = 1033 AND "
                             "length(data) = 24 * 12",
                             run_b),
                     1);
    /* the primary key index kept its name (bench/server_bench.py measures it) */
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM sqlite_schema WHERE name = "
                             "'sqlite_autoindex_trajectory_chunks_1' AND type = 'index'",
                             NULL),
                     1);
}

/* ---- bytes per point on disk ---- */

/* dbstat over the table and its primary key index, divided by the points. */
static double bytes_per_point(const struct fx *f)
{
    int64_t bytes = sql_int(f,
                            "SELECT sum(pgsize) FROM dbstat WHERE name IN ('trajectory_chunks', "
                            "'sqlite_autoindex_trajectory_chunks_1')",
                            NULL);
    int64_t points = sql_int(f, "SELECT sum(count) FROM trajectory_chunks", NULL);
    assert_true(points > 0);
    return (double)bytes / (double)points;
}

/* runs × points per run, recorded every `every` steps and flushed in `flushes` appends per run,
 * the runs interleaved like two workers' flushes. */
static double measure(struct fx *f, size_t runs, size_t per_run, int64_t every, size_t flushes)
{
    struct store_claim *c;
    struct store_traj_point *p;
    size_t r, i, part;
    double bpp;

    if (pg_url())
        skip(); /* dbstat is SQLite's */
    p = calloc(per_run, sizeof *p);

    assert_non_null(p);
    open_store(f);
    c = claimed_runs(f, (int64_t)runs);
    for (i = 0; i < per_run; i++)
        p[i] = point(every * (int64_t)i, i);
    for (part = 0; part < flushes; part++) {
        size_t lo = per_run * part / flushes, hi = per_run * (part + 1) / flushes;
        for (r = 0; r < runs; r++)
            assert_int_equal(
                store_trajectory_append(f->s, c->runs[r].id, c->token, p + lo, hi - lo), STORE_OK);
    }
    store_claim_free(c);
    free(p);
    bpp = bytes_per_point(f);
    fprintf(stderr, "%zu runs x %zu points, %zu flushes: %.2f bytes/point\n", runs, per_run,
            flushes, bpp);
    return bpp;
}

static void test_bytes_per_point_21(void **state)
{
    /* the default: trajectory_every 100 over 2000 steps, one flush per run */
    assert_true(measure(*state, 400, 21, 100, 1) <= 32.0);
}

static void test_bytes_per_point_21_two_flushes(void **state)
{
    /* the same runs flushed twice each (a run longer than the flush interval) */
    assert_true(measure(*state, 400, 21, 100, 2) <= 32.0);
}

static void test_bytes_per_point_512(void **state)
{
    /* every step recorded: full 512-point chunks */
    assert_true(measure(*state, 8, 2048, 1, 4) <= 32.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_formats),
        cmocka_unit_test(test_codec_rejects_inconsistent_chunks),
        cmocka_unit_test_setup_teardown(test_store_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_old_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_per_point_21, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_per_point_21_two_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_per_point_512, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
