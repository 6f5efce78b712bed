/* Applies the embedded SQL migrations to a SQLite database (see migrate.h).
 *
 * DESIGN
 * The schema version lives in the database header (PRAGMA user_version), the pattern of Pidgin's
 * libpurple: read it, refuse a database newer than the binary (an old binary must never write a
 * schema it does not understand), then apply each pending file in its own transaction that also
 * bumps user_version. user_version is part of the database header, which SQLite writes inside the
 * transaction, so "migration N applied" and "user_version = N" commit or roll back together.
 * Invariant: after migrate_apply returns, user_version is the version of the last migration that
 * committed in full, whatever failed after it.
 * Migration files must not contain BEGIN/COMMIT themselves. */
#include "migrate.h"

#include <stdarg.h>
#include <stdio.h>

#include "store.h"

static void set_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (!err || cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static int map_sqlite(int src)
{
    switch (src & 0xff) {
    case SQLITE_OK:
        return STORE_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_EBUSY;
    case SQLITE_FULL:
        return STORE_EFULL;
    case SQLITE_NOMEM:
        return STORE_ENOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return STORE_ECORRUPT;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return STORE_EIO;
    default:
        return STORE_EINTERNAL;
    }
}

int migrate_latest_version(const struct migration *list)
{
    int v = 0;
    const struct migration *m;
    if (!list)
        return 0;
    for (m = list; m->sql; m++)
        v = m->version;
    return v;
}

int migrate_current_version(sqlite3 *db, int *version)
{
    sqlite3_stmt *st = NULL;
    int rc, src;

    src = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = map_sqlite(src);
        goto done;
    }
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = map_sqlite(src == SQLITE_DONE ? SQLITE_ERROR : src);
        goto done;
    }
    *version = sqlite3_column_int(st, 0);
    rc = STORE_OK;
done:
    sqlite3_finalize(st);
    return rc;
}

static int check_list(const struct migration *list, char *err, size_t errcap)
{
    const struct migration *m;
    int prev = 0;
    for (m = list; m->sql; m++) {
        if (m->version <= prev) {
            set_err(err, errcap, "migration %s: version %d does not follow %d",
                    m->name ? m->name : "?", m->version, prev);
            return STORE_EINVAL;
        }
        prev = m->version;
    }
    return STORE_OK;
}

/* One migration in one transaction; a no-op when another process applied it first. */
static int apply_one(sqlite3 *db, const struct migration *m, int *version, char *err, size_t errcap)
{
    char *msg = NULL;
    char pragma[64];
    int rc, src, now = 0, in_tx = 0;

    src = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
    if (src != SQLITE_OK) {
        rc = map_sqlite(src);
        set_err(err, errcap, "migration %s: cannot begin: %s", m->name, msg ? msg : "?");
        goto done;
    }
    in_tx = 1;
    rc = migrate_current_version(db, &now);
    if (rc != STORE_OK) {
        set_err(err, errcap, "migration %s: cannot read user_version", m->name);
        goto done;
    }
    if (now >= m->version) {
        *version = now;
        goto done;
    }
    src = sqlite3_exec(db, m->sql, NULL, NULL, &msg);
    if (src != SQLITE_OK) {
        rc = map_sqlite(src);
        if (rc == STORE_EINTERNAL)
            rc = STORE_EINVAL; /* a broken migration file, not a broken database */
        set_err(err, errcap, "migration %s failed: %s", m->name, msg ? msg : sqlite3_errstr(src));
        goto done;
    }
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", m->version);
    src = sqlite3_exec(db, pragma, NULL, NULL, &msg);
    if (src == SQLITE_OK)
        src = sqlite3_exec(db, "COMMIT", NULL, NULL, &msg);
    if (src != SQLITE_OK) {
        rc = map_sqlite(src);
        set_err(err, errcap, "migration %s: cannot commit: %s", m->name, msg ? msg : "?");
        goto done;
    }
    in_tx = 0;
    *version = m->version;
    rc = STORE_OK;
done:
    if (in_tx)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_free(msg);
    return rc;
}

int migrate_apply(sqlite3 *db, const struct migration *list, int *version_out, char *err,
                  size_t errcap)
{
    const struct migration *m;
    int rc, version = 0, latest;

    if (!db || !list || !sqlite3_get_autocommit(db)) {
        set_err(err, errcap, "migrate_apply: bad arguments");
        rc = STORE_EINVAL;
        goto done;
    }
    rc = check_list(list, err, errcap);
    if (rc != STORE_OK)
        goto done;
    rc = migrate_current_version(db, &version);
    if (rc != STORE_OK) {
        set_err(err, errcap, "cannot read the schema version: %s", sqlite3_errmsg(db));
        goto done;
    }
    latest = migrate_latest_version(list);
    if (version > latest) {
        set_err(err, errcap,
                "database schema version %d is newer than this binary's (%d); "
                "use a newer basinlab",
                version, latest);
        rc = STORE_ETOONEW;
        goto done;
    }
    for (m = list; m->sql; m++) {
        if (m->version <= version)
            continue;
        rc = apply_one(db, m, &version, err, errcap);
        if (rc != STORE_OK)
            goto done;
    }
    rc = STORE_OK;
done:
    if (version_out)
        *version_out = version;
    return rc;
}
