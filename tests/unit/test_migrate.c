/* Tests of the schema migration runner (server/migrate.c) on real SQLite files in a temporary
 * directory: a fresh database gets the embedded schema, re-opening is a no-op, a database newer
 * than the binary is refused with both versions named, and a migration that fails half-way is
 * rolled back completely, leaving user_version at the last good migration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "migrate.h"
#include "store.h"

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/basinlab_migrate_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/db.sqlite", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char p[160];
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    size_t i;
    for (i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    return db;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int table_exists(sqlite3 *db, const char *name)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='%s'",
             name);
    return (int)query_int(db, sql);
}

/* The schema text, to compare before and after a re-open. */
static char *schema_text(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    char *s;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT group_concat(sql, ';') FROM "
                                        "(SELECT sql FROM sqlite_master ORDER BY name)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    s = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    assert_non_null(s);
    return s;
}

static void test_embedded_list_is_sane(void **state)
{
    (void)state;
    assert_true(basinlab_sqlite_migration_count >= 1);
    assert_int_equal(basinlab_sqlite_migrations[0].version, 1);
    assert_null(basinlab_sqlite_migrations[basinlab_sqlite_migration_count].sql);
    assert_int_equal(migrate_latest_version(basinlab_sqlite_migrations),
                     basinlab_sqlite_migrations[basinlab_sqlite_migration_count - 1].version);
}

static void test_fresh_database(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = open_db(f->path);
    char err[256] = "";
    int version = -1, latest = migrate_latest_version(basinlab_sqlite_migrations);
    const char *tables[] = {"datasets",   "architectures",     "experiments", "runs",
                            "run_params", "trajectory_chunks", "events"};
    size_t i;

    assert_int_equal(query_int(db, "PRAGMA user_version"), 0);
    assert_int_equal(migrate_apply(db, basinlab_sqlite_migrations, &version, err, sizeof err),
                     STORE_OK);
    assert_int_equal(version, latest);
    assert_int_equal(query_int(db, "PRAGMA user_version"), latest);
    for (i = 0; i < sizeof tables / sizeof tables[0]; i++)
        assert_int_equal(table_exists(db, tables[i]), 1);
    /* STRICT tables reject a value of the wrong type. */
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO architectures (id, spec, param_count, out_dim, "
                                      "created_at) VALUES ('ar_0123456789abcdef', '{}', 'many', "
                                      "1, 0)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    {
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

static void test_reopen_is_noop(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = open_db(f->path);
    char *before, *after;
    int version = -1;

    assert_int_equal(migrate_apply(db, basinlab_sqlite_migrations, &version, NULL, 0), STORE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO architectures (id, spec, param_count, out_dim, "
                                  "created_at) VALUES ('ar_0123456789abcdef', '{}', 3, 1, 0)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    before = schema_text(db);
    sqlite3_close(db);

    db = open_db(f->path);
    assert_int_equal(migrate_apply(db, basinlab_sqlite_migrations, &version, NULL, 0), STORE_OK);
    assert_int_equal(version, migrate_latest_version(basinlab_sqlite_migrations));
    after = schema_text(db);
    assert_string_equal(before, after);
    assert_int_equal(query_int(db, "SELECT count(*) FROM architectures"), 1);
    free(before);
    free(after);
    sqlite3_close(db);
}

static void test_too_new_refused(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = open_db(f->path);
    struct store *s = NULL;
    char err[256] = "", want_new[32], want_old[32];
    int latest = migrate_latest_version(basinlab_sqlite_migrations);
    int version = -1;

    assert_int_equal(migrate_apply(db, basinlab_sqlite_migrations, NULL, NULL, 0), STORE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 4242", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(migrate_apply(db, basinlab_sqlite_migrations, &version, err, sizeof err),
                     STORE_ETOONEW);
    assert_int_equal(version, 4242);
    snprintf(want_new, sizeof want_new, "4242");
    snprintf(want_old, sizeof want_old, "(%d)", latest);
    assert_non_null(strstr(err, want_new));
    assert_non_null(strstr(err, want_old));
    assert_int_equal(query_int(db, "PRAGMA user_version"), 4242);
    sqlite3_close(db);

    /* The store refuses it too, with the same message. */
    err[0] = '\0';
    assert_int_equal(store_open(f->path, NULL, &s, err, sizeof err), STORE_ETOONEW);
    assert_null(s);
    assert_non_null(strstr(err, want_new));
    assert_non_null(strstr(err, want_old));
}

static void test_failure_rolls_back(void **state)
{
    struct fixture *f = *state;
    /* Migration 2 creates a table, then its second statement fails. */
    static const struct migration broken[] = {
        {1, "0001_a.sql", "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);"},
        {2, "0002_b.sql", "CREATE TABLE b (y INTEGER); INSERT INTO no_such_table VALUES (1);"},
        {3, "0003_c.sql", "CREATE TABLE c (z INTEGER);"},
        {0, 0, 0}};
    static const struct migration fixed[] = {
        {1, "0001_a.sql", "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);"},
        {2, "0002_b.sql", "CREATE TABLE b (y INTEGER); INSERT INTO b VALUES (2);"},
        {3, "0003_c.sql", "CREATE TABLE c (z INTEGER);"},
        {0, 0, 0}};
    sqlite3 *db = open_db(f->path);
    char err[256] = "";
    int version = -1;

    assert_int_not_equal(migrate_apply(db, broken, &version, err, sizeof err), STORE_OK);
    assert_int_equal(version, 1);
    assert_int_equal(query_int(db, "PRAGMA user_version"), 1);
    assert_int_equal(table_exists(db, "a"), 1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM a"), 1);
    assert_int_equal(table_exists(db, "b"), 0); /* its first statement was rolled back */
    assert_int_equal(table_exists(db, "c"), 0); /* never attempted */
    assert_non_null(strstr(err, "0002_b.sql"));
    assert_non_null(strstr(err, "no_such_table"));
    assert_true(sqlite3_get_autocommit(db)); /* no transaction left open */

    /* The corrected list resumes from version 1. */
    assert_int_equal(migrate_apply(db, fixed, &version, err, sizeof err), STORE_OK);
    assert_int_equal(version, 3);
    assert_int_equal(query_int(db, "SELECT count(*) FROM a"), 1); /* 0001 not re-run */
    assert_int_equal(query_int(db, "SELECT y FROM b"), 2);
    assert_int_equal(table_exists(db, "c"), 1);
    sqlite3_close(db);
}

static void test_bad_list_rejected(void **state)
{
    struct fixture *f = *state;
    static const struct migration unordered[] = {{2, "0002_b.sql", "CREATE TABLE b (y);"},
                                                 {1, "0001_a.sql", "CREATE TABLE a (x);"},
                                                 {0, 0, 0}};
    sqlite3 *db = open_db(f->path);
    int version = -1;

    assert_int_equal(migrate_apply(db, unordered, &version, NULL, 0), STORE_EINVAL);
    assert_int_equal(query_int(db, "PRAGMA user_version"), 0);
    assert_int_equal(table_exists(db, "b"), 0);
    /* Not in autocommit mode (a caller's transaction open): refused. */
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(migrate_apply(db, basinlab_sqlite_migrations, NULL, NULL, 0), STORE_EINVAL);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedded_list_is_sane),
        cmocka_unit_test_setup_teardown(test_fresh_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_new_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_list_rejected, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
