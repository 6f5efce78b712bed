/* The SQLite backend of the store (store.h): opening and migrating the database file, the
 * connection pool, the statement helpers every store_sqlite*.c file uses, and the dataset,
 * architecture, event and metrics operations. Experiments and the run queue live in
 * store_sqlite_runs.c, trajectories in store_sqlite_traj.c.
 *
 * DESIGN
 * Connections. A sqlite3 connection must not be used by two threads at once, and the server
 * calls the store from many HTTP and worker threads. Each store call therefore borrows a
 * connection from a mutex-guarded stack of idle connections (opening a new one when the stack is
 * empty) and pushes it back when done; at most max_idle stay open between calls. Connections are
 * opened with SQLITE_OPEN_NOMUTEX, since the pool already guarantees one user at a time.
 * Every connection: WAL journal (readers never block the writer and vice versa), busy_timeout
 * (writers queue for the single write lock instead of failing at once; after the timeout the
 * call answers STORE_EBUSY → 503), foreign_keys=ON (RESTRICT/CASCADE are enforced by the
 * database, not by hand), synchronous=FULL (in WAL mode NORMAL may lose the last commits on power
 * loss; we promise "acknowledged = committed", so every commit is fsynced) and the DEFENSIVE
 * flag. trusted_schema stays on: SQLite 3.40 does not mark json_valid() innocuous, and the
 * schema's CHECK (json_valid(...)) constraints would make every statement fail without it.
 * Transactions. Writers begin IMMEDIATE: the write lock is taken first, so a transaction never
 * has to upgrade from read to write, which SQLite cannot wait for (it would fail with BUSY at
 * once). Multi-statement reads use a deferred BEGIN for one consistent snapshot.
 * All values are bound parameters; SQL text is constant. */
#include "store_sqlite_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "json_out.h"
#include "migrate.h"

/* ---- errors ---- */

static void sq_log(struct sqlite_store *ss, const char *what, sqlite3 *db, int src)
{
    char msg[512];
    if (!ss || !ss->log)
        return;
    snprintf(msg, sizeof msg, "store: %s: %s (sqlite %d)", what ? what : "?",
             db ? sqlite3_errmsg(db) : sqlite3_errstr(src), src);
    ss->log(ss->log_user, msg);
}

int store_sq_fail(struct sqlite_store *ss, sqlite3 *db, int src, const char *what)
{
    int rc;
    switch (src & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return STORE_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        rc = STORE_EBUSY;
        break;
    case SQLITE_FULL:
        rc = STORE_EFULL;
        break;
    case SQLITE_NOMEM:
        rc = STORE_ENOMEM;
        break;
    case SQLITE_TOOBIG:
        rc = STORE_EINVAL;
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        rc = STORE_ECORRUPT;
        break;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
        rc = STORE_EIO;
        break;
    case SQLITE_CONSTRAINT:
        /* ON DELETE RESTRICT reports SQLITE_CONSTRAINT_TRIGGER (it is implemented as one);
         * the schema's own triggers (data_version) never RAISE, so that code means "still
         * referenced". */
        if (src == SQLITE_CONSTRAINT_UNIQUE || src == SQLITE_CONSTRAINT_PRIMARYKEY ||
            src == SQLITE_CONSTRAINT_FOREIGNKEY || src == SQLITE_CONSTRAINT_TRIGGER)
            rc = STORE_ECONFLICT;
        else
            rc = STORE_EINVAL; /* CHECK, NOT NULL, type: the values broke a rule */
        break;
    default:
        rc = STORE_EINTERNAL;
        break;
    }
    if (rc == STORE_EINTERNAL || rc == STORE_EIO || rc == STORE_ECORRUPT || rc == STORE_EFULL)
        sq_log(ss, what, db, src);
    return rc;
}

/* ---- connections ---- */

static int conn_setup(struct sqlite_store *ss, sqlite3 *db, char *err, size_t errcap)
{
    sqlite3_stmt *st = NULL;
    int rc, src;
    const unsigned char *mode;

    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, ss->busy_timeout_ms);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    rc = store_sq_exec(ss, db, "PRAGMA foreign_keys = ON");
    if (rc == STORE_OK)
        rc = store_sq_exec(ss, db, "PRAGMA synchronous = FULL");
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = store_sq_fail(ss, db, src, "journal_mode");
        goto done;
    }
    mode = sqlite3_column_text(st, 0);
    if (!mode || strcmp((const char *)mode, "wal") != 0) {
        if (err && errcap)
            snprintf(err, errcap, "%s: cannot use WAL mode (got %s)", ss->path,
                     mode ? (const char *)mode : "nothing");
        rc = STORE_EIO;
        goto done;
    }
    rc = STORE_OK;
done:
    sqlite3_finalize(st);
    if (rc != STORE_OK && err && errcap && !err[0])
        snprintf(err, errcap, "%s: %s", ss->path, sqlite3_errmsg(db));
    return rc;
}

/* SQLite's allocation statistics take one process-wide mutex on every sqlite3_malloc/free; with
 * dozens of request threads that mutex was a top item of the GET profile, and nothing here reads
 * the statistics. Must run before SQLite initializes: afterwards the call fails with
 * SQLITE_MISUSE and changes nothing, which is harmless. */
static void sqlite_global_config(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int conn_open(struct sqlite_store *ss, sqlite3 **out, char *err, size_t errcap)
{
    sqlite3 *db = NULL;
    int rc, src;

    *out = NULL;
    src = sqlite3_open_v2(
        ss->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, ss->vfs);
    if (src != SQLITE_OK) {
        if (err && errcap)
            snprintf(err, errcap, "%s: %s", ss->path, db ? sqlite3_errmsg(db) : "cannot open");
        rc = store_sq_fail(ss, db, src, "open");
        if (rc == STORE_EINTERNAL)
            rc = STORE_EIO;
        goto done;
    }
    rc = conn_setup(ss, db, err, errcap);
    if (rc != STORE_OK)
        goto done;
    *out = db;
    db = NULL;
done:
    sqlite3_close(db);
    return rc;
}

/* A connection may keep cached (persistent) statements, e.g. sq_data_version's: finalize them so
 * sqlite3_close does not fail with SQLITE_BUSY and leak the connection. Accepts NULL. */
static void conn_close(sqlite3 *db)
{
    sqlite3_stmt *st;
    while (db != NULL && (st = sqlite3_next_stmt(db, NULL)) != NULL)
        sqlite3_finalize(st);
    sqlite3_close(db);
}

int store_sq_acquire(struct sqlite_store *ss, sqlite3 **db)
{
    *db = NULL;
    pthread_mutex_lock(&ss->mu);
    if (ss->n_idle > 0)
        *db = ss->idle[--ss->n_idle];
    pthread_mutex_unlock(&ss->mu);
    if (*db)
        return STORE_OK;
    return conn_open(ss, db, NULL, 0);
}

void store_sq_release(struct sqlite_store *ss, sqlite3 *db)
{
    if (!db)
        return;
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    /* A ROLLBACK can itself fail (it must allocate a statement). A connection still inside a
     * transaction must not be reused: the next caller's statements would run inside it and a
     * later release would roll back writes that were reported committed. Closing it rolls the
     * transaction back. */
    if (!sqlite3_get_autocommit(db)) {
        conn_close(db);
        return;
    }
    pthread_mutex_lock(&ss->mu);
    if (ss->n_idle < (size_t)ss->max_idle) {
        ss->idle[ss->n_idle++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&ss->mu);
    conn_close(db);
}

/* ---- statements ---- */

int store_sq_prepare(struct sqlite_store *ss, sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    int src = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    if (src != SQLITE_OK) {
        *st = NULL;
        return store_sq_fail(ss, db, src, sql);
    }
    return STORE_OK;
}

int store_sq_exec(struct sqlite_store *ss, sqlite3 *db, const char *sql)
{
    int src = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return src == SQLITE_OK ? STORE_OK : store_sq_fail(ss, db, src, sql);
}

int store_sq_begin(struct sqlite_store *ss, sqlite3 *db, int immediate)
{
    return store_sq_exec(ss, db, immediate ? "BEGIN IMMEDIATE" : "BEGIN");
}

int store_sq_commit(struct sqlite_store *ss, sqlite3 *db)
{
    return store_sq_exec(ss, db, "COMMIT");
}

int store_sq_step_done(struct sqlite_store *ss, sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        return STORE_OK;
    if (src == SQLITE_ROW)
        return STORE_EINTERNAL;
    return store_sq_fail(ss, db, sqlite3_extended_errcode(db), what);
}

int store_sq_bind_rc(int src)
{
    switch (src) {
    case SQLITE_OK:
        return STORE_OK;
    case SQLITE_NOMEM:
        return STORE_ENOMEM;
    case SQLITE_TOOBIG:
        return STORE_EINVAL;
    default:
        return STORE_EINTERNAL;
    }
}

int store_sq_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
    if (!s)
        return store_sq_bind_rc(sqlite3_bind_null(st, idx));
    return store_sq_bind_rc(sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT));
}

/* A growable malloc'd text for json_write_compact. */
struct json_text {
    char *data;
    size_t len, cap;
};

static int json_text_append(const char *buf, size_t n, void *user)
{
    struct json_text *t = user;
    if (n >= t->cap - t->len || !t->data) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap - t->len <= n) {
            if (cap > SIZE_MAX / 2)
                return -1;
            cap *= 2;
        }
        char *grown = realloc(t->data, cap);
        if (!grown)
            return -1;
        t->data = grown;
        t->cap = cap;
    }
    memcpy(t->data + t->len, buf, n);
    t->len += n;
    t->data[t->len] = '\0';
    return 0;
}

int store_sq_bind_json(sqlite3_stmt *st, int idx, json_t *j)
{
    struct json_text t = {NULL, 0, 0};
    if (!j)
        return store_sq_bind_rc(sqlite3_bind_null(st, idx));
    /* Not json_dumps: under a failed allocation jansson 2.14 can drop an object key and still
     * return text (which the schema's json_valid CHECK then refuses as if the values were
     * wrong). Our writer reports every failed append. */
    if (json_write_compact(j, json_text_append, &t) != 0 || !t.data) {
        free(t.data);
        return STORE_ENOMEM;
    }
    /* sqlite calls free(t.data) whether or not the bind succeeds. */
    return store_sq_bind_rc(
        sqlite3_bind_text64(st, idx, t.data, (sqlite3_uint64)t.len, free, SQLITE_UTF8));
}

int store_sq_bind_real(sqlite3_stmt *st, int idx, double v)
{
    if (isnan(v))
        return store_sq_bind_rc(sqlite3_bind_null(st, idx));
    return store_sq_bind_rc(sqlite3_bind_double(st, idx, v));
}

int store_sq_bind_f64(sqlite3_stmt *st, int idx, const double *v, size_t n)
{
    unsigned char *buf;
    size_t bytes, i;

    if (n == 0)
        return store_sq_bind_rc(sqlite3_bind_zeroblob(st, idx, 0));
    if (store__mul_size(n, 8, &bytes) != STORE_OK || !v)
        return STORE_EINVAL;
    buf = malloc(bytes);
    if (!buf)
        return STORE_ENOMEM;
    for (i = 0; i < n; i++)
        store__put_f64le(buf + 8 * i, v[i]);
    return store_sq_bind_rc(sqlite3_bind_blob64(st, idx, buf, bytes, free));
}

int store_sq_col_text(sqlite3_stmt *st, int col, char **out)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return store__strdup((const char *)t, out);
}

int store_sq_col_json(sqlite3_stmt *st, int col, json_t **out)
{
    const char *t;
    json_error_t jerr;

    *out = NULL;
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return STORE_OK;
    t = (const char *)sqlite3_column_text(st, col);
    if (!t)
        return STORE_ENOMEM;
    *out = json_loadb(t, (size_t)sqlite3_column_bytes(st, col), JSON_DECODE_ANY, &jerr);
    if (*out)
        return STORE_OK;
    return json_error_code(&jerr) == json_error_out_of_memory ? STORE_ENOMEM : STORE_ECORRUPT;
}

double store_sq_col_real(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NAN;
    return sqlite3_column_double(st, col);
}

int64_t store_sq_col_int(sqlite3_stmt *st, int col)
{
    return (int64_t)sqlite3_column_int64(st, col);
}

int store_sq_col_id(sqlite3_stmt *st, int col, char dst[STORE_ID_SIZE])
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    return store__copy_id(dst, t) == STORE_OK ? STORE_OK : STORE_ECORRUPT;
}

int store_sq_col_f64(sqlite3_stmt *st, int col, size_t n, double **out)
{
    const unsigned char *blob;
    size_t bytes, i;
    double *v = NULL;
    int rc;

    *out = NULL;
    if (store__mul_size(n, 8, &bytes) != STORE_OK) {
        rc = STORE_ECORRUPT;
        goto done;
    }
    if (sqlite3_column_type(st, col) != SQLITE_BLOB ||
        (size_t)sqlite3_column_bytes(st, col) != bytes) {
        rc = STORE_ECORRUPT;
        goto done;
    }
    if (n == 0) {
        rc = STORE_OK;
        goto done;
    }
    blob = sqlite3_column_blob(st, col);
    v = malloc(bytes);
    if (!blob || !v) {
        rc = STORE_ENOMEM;
        goto done;
    }
    for (i = 0; i < n; i++)
        v[i] = store__get_f64le(blob + 8 * i);
    *out = v;
    v = NULL;
    rc = STORE_OK;
done:
    free(v);
    return rc;
}

int store_sq_exists(struct sqlite_store *ss, sqlite3 *db, const char *sql_select_one,
                    const char *id, int *exists)
{
    sqlite3_stmt *st = NULL;
    int rc, src;

    rc = store_sq_prepare(ss, db, sql_select_one, &st);
    if (rc != STORE_OK)
        goto done;
    rc = store_sq_bind_text(st, 1, id);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "exists");
        goto done;
    }
    *exists = src == SQLITE_ROW;
done:
    sqlite3_finalize(st);
    return rc;
}

/* ---- progress and events (shared with store_sqlite_runs.c) ---- */

int store_sq_progress(struct sqlite_store *ss, sqlite3 *db, const char *exp_id,
                      struct store_progress *p)
{
    sqlite3_stmt *st = NULL;
    int rc, src;

    memset(p, 0, sizeof *p);
    rc = store_sq_prepare(ss, db,
                          "SELECT status, count(*) FROM runs WHERE experiment_id = ?1 "
                          "GROUP BY status",
                          &st);
    if (rc != STORE_OK)
        goto done;
    rc = store_sq_bind_text(st, 1, exp_id);
    if (rc != STORE_OK)
        goto done;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        enum store_run_status s;
        int64_t c = store_sq_col_int(st, 1);
        if (store_run_status_parse((const char *)sqlite3_column_text(st, 0), &s) != STORE_OK) {
            rc = STORE_ECORRUPT;
            goto done;
        }
        switch (s) {
        case STORE_RUN_QUEUED:
            p->queued = c;
            break;
        case STORE_RUN_RUNNING:
            p->running = c;
            break;
        case STORE_RUN_FINISHED:
            p->finished = c;
            break;
        case STORE_RUN_FAILED:
            p->failed = c;
            break;
        case STORE_RUN_CANCELLED:
            p->cancelled = c;
            break;
        }
    }
    if (src != SQLITE_DONE)
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "progress");
done:
    sqlite3_finalize(st);
    return rc;
}

json_t *store_sq_progress_json(const struct store_progress *p)
{
    return json_pack("{sIsIsIsIsI}", "queued", (json_int_t)p->queued, "running",
                     (json_int_t)p->running, "finished", (json_int_t)p->finished, "failed",
                     (json_int_t)p->failed, "cancelled", (json_int_t)p->cancelled);
}

int store_sq_event_add(struct sqlite_store *ss, sqlite3 *db, const char *exp_id, const char *type,
                       json_t *data, int64_t now_ms, int64_t *id_out)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = store_sq_prepare(ss, db,
                          "INSERT INTO events (experiment_id, type, data, created_at) "
                          "VALUES (?1, ?2, ?3, ?4)",
                          &st);
    if (rc != STORE_OK)
        goto done;
    rc = store_sq_bind_text(st, 1, exp_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 2, type);
    if (rc == STORE_OK)
        rc = store_sq_bind_json(st, 3, data);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 4, now_ms));
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "event insert");
    if (rc != STORE_OK)
        goto done;
    if (id_out)
        *id_out = (int64_t)sqlite3_last_insert_rowid(db);
done:
    sqlite3_finalize(st);
    return rc;
}

/* ---- open / close / ping ---- */

static const struct store_ops sqlite_ops;

/* ---- the change counter (migrations/sqlite/0005_data_version.sql) ---- */

static const char sql_data_version[] = "SELECT v FROM data_version WHERE id = 1";

/* One read per cached GET, so its statement is prepared once per connection (persistent) and
 * found again by its text among the connection's statements (at most a few are ever open). */
static int sq_data_version(struct store *s, uint64_t *out)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = store_sq_acquire(ss, &db);
    if (rc != STORE_OK)
        goto done;
    while ((st = sqlite3_next_stmt(db, st)) != NULL) {
        const char *text = sqlite3_sql(st);
        if (text != NULL && strcmp(text, sql_data_version) == 0)
            break;
    }
    if (st == NULL) {
        int src =
            sqlite3_prepare_v3(db, sql_data_version, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (src != SQLITE_OK) {
            st = NULL;
            rc = store_sq_fail(ss, db, src, "data_version");
            goto done;
        }
    }
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    else
        rc = src == SQLITE_DONE ? STORE_EINTERNAL : store_sq_fail(ss, db, src, "data_version");
    sqlite3_reset(st); /* ends the read transaction; the statement stays for the next call */
done:
    store_sq_release(ss, db);
    return rc;
}

static void sq_close(struct store *s)
{
    struct sqlite_store *ss = store_sq(s);
    size_t i;
    if (!ss)
        return;
    for (i = 0; i < ss->n_idle; i++)
        conn_close(ss->idle[i]);
    pthread_mutex_destroy(&ss->mu);
    free(ss->idle);
    free(ss->path);
    free(ss->vfs);
    free(ss);
}

int store__sqlite_open(const char *path, const struct store_options *opt, struct store **out,
                       char *err, size_t errcap)
{
    struct sqlite_store *ss = NULL;
    sqlite3 *db = NULL;
    int rc, version = 0;

    *out = NULL;
    if (err && errcap)
        err[0] = '\0';
    if (!path || !*path || strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0) {
        /* Each pooled connection would see its own in-memory database. */
        if (err && errcap)
            snprintf(err, errcap, "the SQLite store needs a file path");
        rc = STORE_EINVAL;
        goto done;
    }
    ss = calloc(1, sizeof *ss);
    if (!ss) {
        rc = STORE_ENOMEM;
        goto done;
    }
    ss->base.ops = &sqlite_ops;
    ss->busy_timeout_ms = opt && opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : 5000;
    ss->max_idle = opt && opt->max_idle_conns > 0 ? opt->max_idle_conns : 8;
    ss->max_attempts = opt && opt->max_attempts > 0 ? opt->max_attempts : 3;
    ss->log = opt ? opt->log : NULL;
    ss->log_user = opt ? opt->log_user : NULL;
    if (pthread_mutex_init(&ss->mu, NULL) != 0) {
        free(ss);
        ss = NULL;
        rc = STORE_ENOMEM;
        goto done;
    }
    ss->idle = calloc((size_t)ss->max_idle, sizeof *ss->idle);
    rc = store__strdup(path, &ss->path);
    if (rc == STORE_OK && opt && opt->vfs)
        rc = store__strdup(opt->vfs, &ss->vfs);
    if (rc != STORE_OK || !ss->idle) {
        rc = STORE_ENOMEM;
        goto done;
    }
    static pthread_once_t config_once = PTHREAD_ONCE_INIT;
    pthread_once(&config_once, sqlite_global_config);
    rc = conn_open(ss, &db, err, errcap);
    if (rc != STORE_OK)
        goto done;
    rc = migrate_apply(db, basinlab_sqlite_migrations, &version, err, errcap);
    if (rc != STORE_OK)
        goto done;
    store_sq_release(ss, db);
    db = NULL;
    *out = &ss->base;
    ss = NULL;
done:
    sqlite3_close(db);
    sq_close(ss ? &ss->base : NULL);
    if (rc != STORE_OK && err && errcap && !err[0])
        snprintf(err, errcap, "%s: %s", path ? path : "?", store_strerror(rc));
    return rc;
}

static int sq_ping(struct store *s)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    int rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_exec(ss, db, "SELECT 1");
    store_sq_release(ss, db);
    return rc;
}

static int sq_schema_version(struct store *s, int *version)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    int rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = migrate_current_version(db, version);
    store_sq_release(ss, db);
    return rc;
}

/* ---- datasets ---- */

#define DATASET_COLS                                                                               \
    "id, name, kind, spec, input_shape, n, in_dim, y_dim, task, n_classes, linear_fit, "           \
    "created_at, seq"

static int read_dataset(sqlite3_stmt *st, unsigned flags, struct store_dataset *d)
{
    int rc;
    size_t nx, ny;

    memset(d, 0, sizeof *d);
    rc = store_sq_col_id(st, 0, d->id);
    if (rc == STORE_OK)
        rc = store_sq_col_text(st, 1, &d->name);
    if (rc == STORE_OK)
        rc = store_sq_col_text(st, 2, &d->kind);
    if (rc == STORE_OK)
        rc = store_sq_col_json(st, 3, &d->spec);
    if (rc == STORE_OK)
        rc = store_sq_col_json(st, 4, &d->input_shape);
    if (rc == STORE_OK)
        rc = store_sq_col_text(st, 8, &d->task);
    if (rc == STORE_OK)
        rc = store_sq_col_json(st, 10, &d->linear_fit);
    if (rc != STORE_OK)
        goto done;
    d->n = store_sq_col_int(st, 5);
    d->in_dim = store_sq_col_int(st, 6);
    d->y_dim = store_sq_col_int(st, 7);
    d->n_classes = store_sq_col_int(st, 9);
    d->created_at_ms = store_sq_col_int(st, 11);
    if (flags & STORE_WITH_DATA) {
        if (d->n < 0 || d->in_dim < 1 || d->y_dim < 1 ||
            store__mul_size((size_t)d->n, (size_t)d->in_dim, &nx) != STORE_OK ||
            store__mul_size((size_t)d->n, (size_t)d->y_dim, &ny) != STORE_OK) {
            rc = STORE_ECORRUPT;
            goto done;
        }
        rc = store_sq_col_f64(st, 13, nx, &d->x);
        if (rc == STORE_OK)
            rc = store_sq_col_f64(st, 14, ny, &d->y);
    }
done:
    if (rc != STORE_OK)
        store__dataset_clear(d);
    return rc;
}

static int sq_dataset_insert(struct store *s, const struct store_dataset *d,
                             char id_out[STORE_ID_SIZE])
{
    static const char sql[] =
        "INSERT INTO datasets (id, name, kind, spec, input_shape, n, in_dim, y_dim, task, "
        "n_classes, x, y, linear_fit, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char id[STORE_ID_SIZE];
    size_t nx, ny;
    int rc;

    if (!d || !d->kind || !d->task || !d->spec || !d->input_shape || d->n < 0 || d->in_dim < 1 ||
        d->y_dim < 1 || d->n_classes < 0 ||
        store__mul_size((size_t)d->n, (size_t)d->in_dim, &nx) != STORE_OK ||
        store__mul_size((size_t)d->n, (size_t)d->y_dim, &ny) != STORE_OK || (nx > 0 && !d->x) ||
        (ny > 0 && !d->y)) {
        rc = STORE_EINVAL;
        goto done;
    }
    if (ids_new(IDS_PREFIX_DATASET, id, sizeof id) != 0) {
        rc = STORE_EINTERNAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db, sql, &st);
    if (rc != STORE_OK)
        goto done;
    rc = store_sq_bind_text(st, 1, id);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 2, d->name);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 3, d->kind);
    if (rc == STORE_OK)
        rc = store_sq_bind_json(st, 4, d->spec);
    if (rc == STORE_OK)
        rc = store_sq_bind_json(st, 5, d->input_shape);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 6, d->n));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 7, d->in_dim));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 8, d->y_dim));
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 9, d->task);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 10, d->n_classes));
    if (rc == STORE_OK)
        rc = store_sq_bind_f64(st, 11, d->x, nx);
    if (rc == STORE_OK)
        rc = store_sq_bind_f64(st, 12, d->y, ny);
    if (rc == STORE_OK)
        rc = store_sq_bind_json(st, 13, d->linear_fit);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 14, store__now_ms()));
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "dataset insert");
    if (rc == STORE_OK)
        memcpy(id_out, id, sizeof id);
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    return rc;
}

static int sq_dataset_get(struct store *s, const char *id, unsigned flags,
                          struct store_dataset **out)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct store_dataset *d = NULL;
    int rc, src;

    *out = NULL;
    if (!id) {
        rc = STORE_EINVAL;
        goto done;
    }
    d = calloc(1, sizeof *d);
    if (!d) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc != STORE_OK)
        goto done;
    rc = store_sq_prepare(ss, db,
                          (flags & STORE_WITH_DATA)
                              ? "SELECT " DATASET_COLS ", x, y FROM datasets WHERE id = ?1"
                              : "SELECT " DATASET_COLS " FROM datasets WHERE id = ?1",
                          &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        rc = STORE_ENOTFOUND;
        goto done;
    }
    if (src != SQLITE_ROW) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "dataset get");
        goto done;
    }
    rc = read_dataset(st, flags, d);
    if (rc != STORE_OK)
        goto done;
    *out = d;
    d = NULL;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    free(d);
    return rc;
}

/* Shared shape of the "newest first by seq" lists: fetch limit+1 rows to know whether another
 * page follows; the cursor is the seq of the last row returned. */
static int sq_list_prepare(struct sqlite_store *ss, sqlite3 *db, const char *sql, const char *tag,
                           size_t limit, const char *cursor, sqlite3_stmt **st)
{
    int64_t after = 0;
    int rc, has_cursor = cursor && *cursor;

    *st = NULL;
    if (limit == 0 || limit > STORE_MAX_PAGE)
        return STORE_EINVAL;
    if (has_cursor) {
        rc = store__cursor_decode(cursor, tag, &after, 1);
        if (rc != STORE_OK)
            return rc;
    }
    rc = store_sq_prepare(ss, db, sql, st);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int(*st, 1, has_cursor));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(*st, 2, after));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(*st, 3, (sqlite3_int64)limit + 1));
    return rc;
}

static int sq_dataset_list(struct store *s, size_t limit, const char *cursor,
                           struct store_dataset_list **out)
{
    static const char sql[] = "SELECT " DATASET_COLS " FROM datasets "
                              "WHERE ?1 = 0 OR seq < ?2 ORDER BY seq DESC LIMIT ?3";
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct store_dataset_list *l = NULL;
    int64_t last_seq = 0;
    int rc, src;

    *out = NULL;
    l = calloc(1, sizeof *l);
    if (!l || limit == 0 || limit > STORE_MAX_PAGE) {
        rc = l ? STORE_EINVAL : STORE_ENOMEM;
        goto done;
    }
    l->items = calloc(limit, sizeof *l->items);
    if (!l->items) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = sq_list_prepare(ss, db, sql, "ds", limit, cursor, &st);
    if (rc != STORE_OK)
        goto done;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (l->n == limit) {
            rc = store__cursor_encode("ds", &last_seq, 1, l->next_cursor);
            if (rc != STORE_OK)
                goto done;
            break;
        }
        rc = read_dataset(st, 0, &l->items[l->n]);
        if (rc != STORE_OK)
            goto done;
        l->n++;
        last_seq = store_sq_col_int(st, 12);
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "dataset list");
        goto done;
    }
    *out = l;
    l = NULL;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    store_dataset_list_free(l);
    return rc;
}

/* DELETE by id; a foreign key RESTRICT violation (still referenced) comes back as
 * STORE_ECONFLICT from store_sq_fail. */
static int sq_delete_by_id(struct store *s, const char *sql, const char *id)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc;

    if (!id) {
        rc = STORE_EINVAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db, sql, &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "delete");
    if (rc == STORE_OK && sqlite3_changes(db) == 0)
        rc = STORE_ENOTFOUND;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    return rc;
}

static int sq_dataset_delete(struct store *s, const char *id)
{
    return sq_delete_by_id(s, "DELETE FROM datasets WHERE id = ?1", id);
}

/* ---- architectures ---- */

#define ARCH_COLS "id, name, spec, param_count, out_dim, created_at, seq"

static int read_architecture(sqlite3_stmt *st, struct store_architecture *a)
{
    int rc;
    memset(a, 0, sizeof *a);
    rc = store_sq_col_id(st, 0, a->id);
    if (rc == STORE_OK)
        rc = store_sq_col_text(st, 1, &a->name);
    if (rc == STORE_OK)
        rc = store_sq_col_json(st, 2, &a->spec);
    a->param_count = store_sq_col_int(st, 3);
    a->out_dim = store_sq_col_int(st, 4);
    a->created_at_ms = store_sq_col_int(st, 5);
    if (rc != STORE_OK)
        store__architecture_clear(a);
    return rc;
}

static int sq_architecture_insert(struct store *s, const struct store_architecture *a,
                                  char id_out[STORE_ID_SIZE])
{
    static const char sql[] = "INSERT INTO architectures (id, name, spec, param_count, out_dim, "
                              "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char id[STORE_ID_SIZE];
    int rc;

    if (!a || !a->spec || a->param_count < 1 || a->out_dim < 1) {
        rc = STORE_EINVAL;
        goto done;
    }
    if (ids_new(IDS_PREFIX_ARCHITECTURE, id, sizeof id) != 0) {
        rc = STORE_EINTERNAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db, sql, &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 2, a->name);
    if (rc == STORE_OK)
        rc = store_sq_bind_json(st, 3, a->spec);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 4, a->param_count));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 5, a->out_dim));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 6, store__now_ms()));
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "architecture insert");
    if (rc == STORE_OK)
        memcpy(id_out, id, sizeof id);
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    return rc;
}

static int sq_architecture_get(struct store *s, const char *id, struct store_architecture **out)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct store_architecture *a = NULL;
    int rc, src;

    *out = NULL;
    a = calloc(1, sizeof *a);
    if (!a || !id) {
        rc = a ? STORE_EINVAL : STORE_ENOMEM;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db, "SELECT " ARCH_COLS " FROM architectures WHERE id = ?1", &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE
                 ? STORE_ENOTFOUND
                 : store_sq_fail(ss, db, sqlite3_extended_errcode(db), "architecture get");
        goto done;
    }
    rc = read_architecture(st, a);
    if (rc != STORE_OK)
        goto done;
    *out = a;
    a = NULL;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    free(a);
    return rc;
}

static int sq_architecture_list(struct store *s, size_t limit, const char *cursor,
                                struct store_architecture_list **out)
{
    static const char sql[] = "SELECT " ARCH_COLS " FROM architectures "
                              "WHERE ?1 = 0 OR seq < ?2 ORDER BY seq DESC LIMIT ?3";
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct store_architecture_list *l = NULL;
    int64_t last_seq = 0;
    int rc, src;

    *out = NULL;
    l = calloc(1, sizeof *l);
    if (!l || limit == 0 || limit > STORE_MAX_PAGE) {
        rc = l ? STORE_EINVAL : STORE_ENOMEM;
        goto done;
    }
    l->items = calloc(limit, sizeof *l->items);
    if (!l->items) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = sq_list_prepare(ss, db, sql, "ar", limit, cursor, &st);
    if (rc != STORE_OK)
        goto done;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (l->n == limit) {
            rc = store__cursor_encode("ar", &last_seq, 1, l->next_cursor);
            if (rc != STORE_OK)
                goto done;
            break;
        }
        rc = read_architecture(st, &l->items[l->n]);
        if (rc != STORE_OK)
            goto done;
        l->n++;
        last_seq = store_sq_col_int(st, 6);
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "architecture list");
        goto done;
    }
    *out = l;
    l = NULL;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    store_architecture_list_free(l);
    return rc;
}

static int sq_architecture_delete(struct store *s, const char *id)
{
    return sq_delete_by_id(s, "DELETE FROM architectures WHERE id = ?1", id);
}

/* ---- events ---- */

static int sq_event_append(struct store *s, const char *experiment_id, const char *type,
                           json_t *data, int64_t *id_out)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    int rc, exists = 0;

    if (!experiment_id || !type || !*type || strlen(type) >= STORE_EVENT_TYPE_SIZE || !data) {
        rc = STORE_EINVAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 1);
    if (rc == STORE_OK)
        rc = store_sq_exists(ss, db, "SELECT 1 FROM experiments WHERE id = ?1", experiment_id,
                             &exists);
    if (rc != STORE_OK)
        goto done;
    if (!exists) {
        rc = STORE_ENOTFOUND;
        goto done;
    }
    rc = store_sq_event_add(ss, db, experiment_id, type, data, store__now_ms(), id_out);
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
done:
    store_sq_release(ss, db);
    return rc;
}

static int sq_events_since(struct store *s, const char *experiment_id, int64_t after_id,
                           size_t limit, struct store_event_list **out)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct store_event_list *l = NULL;
    int rc, src, exists = 0;

    *out = NULL;
    l = calloc(1, sizeof *l);
    if (!l || !experiment_id || limit == 0 || limit > STORE_MAX_PAGE) {
        rc = l ? STORE_EINVAL : STORE_ENOMEM;
        goto done;
    }
    l->items = calloc(limit, sizeof *l->items);
    if (!l->items) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 0);
    if (rc == STORE_OK)
        rc = store_sq_exists(ss, db, "SELECT 1 FROM experiments WHERE id = ?1", experiment_id,
                             &exists);
    if (rc != STORE_OK)
        goto done;
    if (!exists) {
        rc = STORE_ENOTFOUND;
        goto done;
    }
    rc = store_sq_prepare(ss, db,
                          "SELECT id, type, data, created_at FROM events "
                          "WHERE experiment_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                          &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, experiment_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 2, after_id));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 3, (sqlite3_int64)limit));
    if (rc != STORE_OK)
        goto done;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_event *e = &l->items[l->n];
        const char *type = (const char *)sqlite3_column_text(st, 1);
        if (!type || strlen(type) >= sizeof e->type) {
            rc = STORE_ECORRUPT;
            goto done;
        }
        e->id = store_sq_col_int(st, 0);
        strcpy(e->type, type);
        e->created_at_ms = store_sq_col_int(st, 3);
        rc = store_sq_col_json(st, 2, &e->data);
        if (rc != STORE_OK)
            goto done;
        l->n++;
    }
    if (src != SQLITE_DONE) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "events");
        goto done;
    }
    rc = store_sq_commit(ss, db);
    if (rc != STORE_OK)
        goto done;
    *out = l;
    l = NULL;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    store_event_list_free(l);
    return rc;
}

/* ---- metrics ---- */

static int count_by_status(struct sqlite_store *ss, sqlite3 *db, const char *sql, int is_run,
                           int64_t *counts)
{
    sqlite3_stmt *st = NULL;
    int rc, src;

    rc = store_sq_prepare(ss, db, sql, &st);
    if (rc != STORE_OK)
        goto done;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int k;
        if (is_run) {
            enum store_run_status r;
            rc = store_run_status_parse(name, &r);
            k = (int)r;
        } else {
            enum store_exp_status e;
            rc = store_exp_status_parse(name, &e);
            k = (int)e;
        }
        if (rc != STORE_OK) {
            rc = STORE_ECORRUPT;
            goto done;
        }
        counts[k] = store_sq_col_int(st, 1);
    }
    if (src != SQLITE_DONE)
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "metrics");
done:
    sqlite3_finalize(st);
    return rc;
}

static int scalar_int(struct sqlite_store *ss, sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc, src;

    rc = store_sq_prepare(ss, db, sql, &st);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = store_sq_fail(ss, db, src == SQLITE_DONE ? SQLITE_ERROR : src, sql);
        goto done;
    }
    *out = store_sq_col_int(st, 0);
done:
    sqlite3_finalize(st);
    return rc;
}

static int sq_metrics(struct store *s, struct store_metrics *out)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    struct store_metrics m;
    int rc;

    memset(&m, 0, sizeof m);
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 0);
    if (rc == STORE_OK)
        rc =
            count_by_status(ss, db, "SELECT status, count(*) FROM runs GROUP BY status", 1, m.runs);
    if (rc == STORE_OK)
        rc = count_by_status(ss, db, "SELECT status, count(*) FROM experiments GROUP BY status", 0,
                             m.experiments);
    if (rc == STORE_OK)
        rc = scalar_int(ss, db,
                        "SELECT count(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id "
                        "WHERE r.status = 'queued' AND e.cancel_requested = 0",
                        &m.queue_depth);
    if (rc == STORE_OK)
        rc = scalar_int(ss, db, "SELECT count(*) FROM datasets", &m.datasets);
    if (rc == STORE_OK)
        rc = scalar_int(ss, db, "SELECT count(*) FROM architectures", &m.architectures);
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
    if (rc == STORE_OK)
        *out = m;
    store_sq_release(ss, db);
    return rc;
}

static const struct store_ops sqlite_ops = {
    .close = sq_close,
    .ping = sq_ping,
    .schema_version = sq_schema_version,
    .dataset_insert = sq_dataset_insert,
    .dataset_get = sq_dataset_get,
    .dataset_list = sq_dataset_list,
    .dataset_delete = sq_dataset_delete,
    .architecture_insert = sq_architecture_insert,
    .architecture_get = sq_architecture_get,
    .architecture_list = sq_architecture_list,
    .architecture_delete = sq_architecture_delete,
    .experiment_create = store_sq_experiment_create,
    .experiment_get = store_sq_experiment_get,
    .experiment_list = store_sq_experiment_list,
    .experiment_progress = store_sq_experiment_progress,
    .experiment_set_summary = store_sq_experiment_set_summary,
    .experiment_cancel = store_sq_experiment_cancel,
    .experiment_delete = store_sq_experiment_delete,
    .claim_runs = store_sq_claim_runs,
    .claim_heartbeat = store_sq_claim_heartbeat,
    .claim_release = store_sq_claim_release,
    .run_finish = store_sq_run_finish,
    .requeue_stale = store_sq_requeue_stale,
    .run_get = store_sq_run_get,
    .run_list = store_sq_run_list,
    .run_params_get = store_sq_run_params_get,
    .trajectory_append = store_sq_trajectory_append,
    .trajectory_info = store_sq_trajectory_info,
    .trajectory_read = store_sq_trajectory_read,
    .trajectory_downsample = store_sq_trajectory_downsample,
    .event_append = sq_event_append,
    .events_since = sq_events_since,
    .metrics = sq_metrics,
    .objective_best = store_sq_objective_best,
    .run_list_spurious = store_sq_run_list_spurious,
    .experiment_spurious_stats = store_sq_experiment_spurious_stats,
    .experiment_end_points = store_sq_experiment_end_points,
    .experiment_run_counts = store_sq_experiment_run_counts,
    .run_insert_finished = store_sq_run_insert_finished,
    .api_token_insert = store_sq_api_token_insert,
    .api_token_find = store_sq_api_token_find,
    .api_token_list = store_sq_api_token_list,
    .api_token_revoke = store_sq_api_token_revoke,
    .data_version = sq_data_version,
};
