/* Schema migrations embedded into the binary (generated from migrations/sqlite/ at build time
 * by cmake/embed_migrations.cmake), and the runner that applies them (migrate.c). */
#ifndef BASINLAB_MIGRATE_H
#define BASINLAB_MIGRATE_H

#include <stddef.h>

#include <sqlite3.h>

struct migration {
    int version;      /* NNNN of NNNN_name.sql; strictly increasing */
    const char *name; /* file name */
    const char *sql;  /* the file's text */
};

extern const struct migration basinlab_sqlite_migrations[]; /* terminated by {0, 0, 0} */
extern const int basinlab_sqlite_migration_count;

/* The highest version in a {0, 0, 0}-terminated list (0 for an empty list). */
int migrate_latest_version(const struct migration *list);

/* PRAGMA user_version of db. Returns STORE_OK or a STORE_E* code. */
int migrate_current_version(sqlite3 *db, int *version);

/* Brings db up to the last migration of `list` ({0, 0, 0}-terminated, versions strictly
 * increasing and ≥ 1, else STORE_EINVAL). Refuses (STORE_ETOONEW, nothing changed) a database
 * whose user_version is newer than the list's last version. Each pending migration runs in its
 * own IMMEDIATE transaction that also sets user_version, so a failure rolls that migration back
 * completely and stops: the database is left at the last good version. The version is re-read
 * inside each transaction, so two processes opening the same file apply each migration once.
 * db must be in autocommit mode. *version_out (may be NULL) gets the final version even on
 * failure; err (errcap bytes, may be NULL/0) gets a sentence naming the migration and cause. */
int migrate_apply(sqlite3 *db, const struct migration *list, int *version_out, char *err,
                  size_t errcap);

#endif
