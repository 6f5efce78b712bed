/* The PostgreSQL backend of the store (store.h) on libpq: opening the database named by a
 * postgres:// URL and migrating it under an advisory lock, the connection pool, the helpers every
 * store_pg*.c file uses, and the dataset, architecture, event and metrics operations.
 * Experiments and the run queue live in store_pg_runs.c, trajectories in store_pg_traj.c. The
 * SQLite backend (store_sqlite*.c) is the reference: every operation here answers exactly what
 * its SQLite twin answers.
 *
 * DESIGN
 * Location. "postgres://user:pass@host:port/db?…" (or postgresql://) is handed to libpq as is,
 * except basinlab's own query parameter `schema=NAME` ([a-z_][a-z0-9_]*, at most 63 bytes),
 * which is removed from the URL: the store then creates that schema if needed and sets it as
 * the search_path of every connection, so several deployments (or test runs) can share one
 * database. libpq's PG* environment variables fill in whatever the URL leaves out.
 * Connections. A PGconn must not be used by two threads at once; like the SQLite pool, each
 * call borrows a connection from a mutex-guarded stack of idle ones (connecting when it is
 * empty) and gives it back; at most max_idle stay open. Each connection gets lock_timeout =
 * busy_timeout_ms (a row lock held longer answers STORE_EBUSY → 503, like SQLite's
 * busy_timeout), bytea_output = hex and UTF8. A connection found broken when a transaction
 * begins (the server restarted) is replaced once; one that breaks later is dropped on release.
 * Transactions. Every call is one transaction run by store_pg_tx: writers in READ COMMITTED
 * with explicit row locks (see store_pg_runs.c for the lock order), readers in a read-only
 * REPEATABLE READ snapshot (what SQLite's deferred BEGIN gives). A transaction that loses a
 * deadlock or a serialization race (SQLSTATE 40P01/40001) is run again from the start, up to
 * PG_TX_ATTEMPTS times with a short random back-off; bodies therefore reset their outputs.
 * Commits are durable when they return (synchronous_commit stays on), so "acknowledged =
 * committed" holds as with SQLite.
 * Migrations. Many processes may start at once against an empty database: each takes the
 * session advisory lock (PG_MIGRATE_LOCK, hash of the schema), creates the schema and the
 * schema_migrations table if missing, re-reads the version under the lock, refuses a database
 * newer than the binary (STORE_ETOONEW), and applies each pending file in its own transaction
 * that also records it. The lock makes the others wait and then find nothing to do, so every
 * migration is applied exactly once.
 * Values. Parameters travel as text (reals as the shortest exact decimal, NaN as NULL), bytea
 * as binary; results come back as text. All SQL text is constant; every value is a parameter. */
#include "store_pg_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ids.h"
#include "store_pg.h"

#define PG_TX_ATTEMPTS 6
#define PG_MIGRATE_LOCK 1650553710 /* "basn": the advisory lock's first key */
#define PG_SCHEMA_MAX 63

/* ---- errors ---- */

static void pg_log(struct pg_store *ps, const char *what, const char *detail)
{
    char msg[768];
    size_t len;
    if (!ps || !ps->log)
        return;
    snprintf(msg, sizeof msg, "store: %s: %s", what ? what : "?", detail ? detail : "?");
    len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        msg[--len] = '\0';
    ps->log(ps->log_user, msg);
}

static int map_sqlstate(const char *st)
{
    if (!st || strlen(st) != 5)
        return STORE_EIO;
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0)
        return STORE_PG_ERETRY;
    if (strcmp(st, "55P03") == 0 || strcmp(st, "57014") == 0 || strcmp(st, "53300") == 0)
        return STORE_EBUSY; /* lock_timeout, statement_timeout, too many connections */
    if (strcmp(st, "53200") == 0)
        return STORE_ENOMEM;
    if (strncmp(st, "53", 2) == 0)
        return STORE_EFULL; /* disk full, insufficient resources */
    if (strcmp(st, "23505") == 0 || strcmp(st, "23503") == 0)
        return STORE_ECONFLICT; /* unique key reuse, still referenced (ON DELETE RESTRICT) */
    if (strncmp(st, "23", 2) == 0 || strncmp(st, "22", 2) == 0 || strncmp(st, "54", 2) == 0)
        return STORE_EINVAL; /* CHECK, NOT NULL, bad value, too big: the values broke a rule */
    if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0 || strncmp(st, "28", 2) == 0 ||
        strcmp(st, "25006") == 0 || strcmp(st, "3D000") == 0 || strncmp(st, "58", 2) == 0)
        return STORE_EIO; /* connection, shutdown, authentication, read-only, no database */
    if (strcmp(st, "XX001") == 0 || strcmp(st, "XX002") == 0)
        return STORE_ECORRUPT;
    return STORE_EINTERNAL;
}

/* Maps a failed result (or none: out of memory, lost connection) to STORE_E*. */
static int pg_fail(struct pg_store *ps, PGconn *conn, const PGresult *res, const char *what)
{
    int rc;
    if (!res)
        rc = PQstatus(conn) == CONNECTION_BAD ? STORE_EIO : STORE_ENOMEM;
    else
        rc = map_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE));
    if (rc == STORE_EINTERNAL || rc == STORE_EIO || rc == STORE_ECORRUPT || rc == STORE_EFULL)
        pg_log(ps, what, res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    return rc;
}

/* ---- parameters ---- */

void pgp_init(struct pg_params *p)
{
    memset(p, 0, sizeof *p);
}

void pgp_clear(struct pg_params *p)
{
    int i;
    for (i = 0; i < p->n; i++)
        free(p->owned[i]);
    pgp_init(p);
}

/* The next slot, or -1 (and p->rc set) when full. */
static int pgp_slot(struct pg_params *p)
{
    if (p->n >= PG_MAX_PARAMS) {
        if (p->rc == STORE_OK)
            p->rc = STORE_EINTERNAL;
        return -1;
    }
    p->values[p->n] = NULL;
    p->lengths[p->n] = 0;
    p->formats[p->n] = 0;
    p->owned[p->n] = NULL;
    return p->n++;
}

void pgp_null(struct pg_params *p)
{
    (void)pgp_slot(p);
}

void pgp_text(struct pg_params *p, const char *s)
{
    int i = pgp_slot(p);
    if (i >= 0)
        p->values[i] = s;
}

void pgp_int(struct pg_params *p, int64_t v)
{
    int i = pgp_slot(p);
    if (i < 0)
        return;
    snprintf(p->num[i], sizeof p->num[i], "%" PRId64, v);
    p->values[i] = p->num[i];
}

void pgp_bool(struct pg_params *p, int v)
{
    pgp_text(p, v ? "true" : "false");
}

void pgp_real(struct pg_params *p, double v)
{
    int i = pgp_slot(p);
    if (i < 0 || isnan(v))
        return;
    if (isinf(v))
        snprintf(p->num[i], sizeof p->num[i], "%s", v > 0 ? "Infinity" : "-Infinity");
    else
        snprintf(p->num[i], sizeof p->num[i], "%.17g", v);
    p->values[i] = p->num[i];
}

void pgp_json(struct pg_params *p, json_t *j)
{
    int i = pgp_slot(p);
    if (i < 0 || !j)
        return;
    p->owned[i] = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!p->owned[i] && p->rc == STORE_OK)
        p->rc = STORE_ENOMEM;
    p->values[i] = p->owned[i];
}

void pgp_bytes(struct pg_params *p, const unsigned char *data, size_t n)
{
    static const char empty[1] = "";
    int i = pgp_slot(p);
    if (i < 0)
        return;
    if (n > (size_t)INT32_MAX) {
        if (p->rc == STORE_OK)
            p->rc = STORE_EINVAL;
        return;
    }
    p->values[i] = n ? (const char *)data : empty;
    p->lengths[i] = (int)n;
    p->formats[i] = 1;
}

void pgp_f64(struct pg_params *p, const double *v, size_t n)
{
    size_t bytes, k;
    unsigned char *buf;
    int i;

    if (store__mul_size(n, 8, &bytes) != STORE_OK || bytes > (size_t)INT32_MAX || (n && !v)) {
        if (p->rc == STORE_OK)
            p->rc = STORE_EINVAL;
        (void)pgp_slot(p);
        return;
    }
    i = pgp_slot(p);
    if (i < 0)
        return;
    buf = malloc(bytes ? bytes : 1);
    if (!buf) {
        if (p->rc == STORE_OK)
            p->rc = STORE_ENOMEM;
        return;
    }
    for (k = 0; k < n; k++)
        store__put_f64le(buf + 8 * k, v[k]);
    p->owned[i] = (char *)buf;
    p->values[i] = (const char *)buf;
    p->lengths[i] = (int)bytes;
    p->formats[i] = 1;
}

/* ---- statements ---- */

int store_pg_query(struct pg_store *ps, PGconn *conn, const char *sql, struct pg_params *p,
                   PGresult **res)
{
    PGresult *r = NULL;
    ExecStatusType st;
    int rc;

    if (res)
        *res = NULL;
    if (p && p->rc != STORE_OK) {
        rc = p->rc;
        goto done;
    }
    if (p)
        r = PQexecParams(conn, sql, p->n, NULL, p->values, p->lengths, p->formats, 0);
    else
        r = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = pg_fail(ps, conn, r, sql);
        goto done;
    }
    rc = STORE_OK;
    if (res) {
        *res = r;
        r = NULL;
    }
done:
    PQclear(r);
    if (p)
        pgp_clear(p);
    return rc;
}

int64_t store_pg_changes(PGresult *res)
{
    const char *t = res ? PQcmdTuples(res) : NULL;
    return t && *t ? strtoll(t, NULL, 10) : 0;
}

/* ---- columns ---- */

int store_pg_is_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col);
}

int store_pg_col_text(const PGresult *res, int row, int col, char **out)
{
    if (PQgetisnull(res, row, col)) {
        *out = NULL;
        return STORE_OK;
    }
    return store__strdup(PQgetvalue(res, row, col), out);
}

int store_pg_col_json(const PGresult *res, int row, int col, json_t **out)
{
    json_error_t jerr;
    *out = NULL;
    if (PQgetisnull(res, row, col))
        return STORE_OK;
    *out = json_loadb(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col),
                      JSON_DECODE_ANY, &jerr);
    return *out ? STORE_OK : STORE_ECORRUPT;
}

double store_pg_col_real(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NAN;
    return strtod(PQgetvalue(res, row, col), NULL);
}

int64_t store_pg_col_int(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    return (int64_t)strtoll(PQgetvalue(res, row, col), NULL, 10);
}

int store_pg_col_bool(const PGresult *res, int row, int col)
{
    return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

int store_pg_col_id(const PGresult *res, int row, int col, char dst[STORE_ID_SIZE])
{
    if (PQgetisnull(res, row, col))
        return STORE_ECORRUPT;
    return store__copy_id(dst, PQgetvalue(res, row, col)) == STORE_OK ? STORE_OK : STORE_ECORRUPT;
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int store_pg_col_bytes(const PGresult *res, int row, int col, unsigned char *buf, size_t bytes)
{
    const char *t;
    size_t len, i;

    if (PQgetisnull(res, row, col))
        return STORE_ECORRUPT;
    t = PQgetvalue(res, row, col);
    len = (size_t)PQgetlength(res, row, col);
    /* bytea_output = hex (set on every connection): "\x" and two digits per byte */
    if (len < 2 || t[0] != '\\' || t[1] != 'x' || (len - 2) / 2 != bytes || (len - 2) % 2 != 0)
        return STORE_ECORRUPT;
    for (i = 0; i < bytes; i++) {
        int hi = hex_value((unsigned char)t[2 + 2 * i]);
        int lo = hex_value((unsigned char)t[3 + 2 * i]);
        if (hi < 0 || lo < 0)
            return STORE_ECORRUPT;
        buf[i] = (unsigned char)(hi << 4 | lo);
    }
    return STORE_OK;
}

int store_pg_col_f64(const PGresult *res, int row, int col, size_t n, double **out)
{
    unsigned char *raw = NULL;
    double *v = NULL;
    size_t bytes, i;
    int rc;

    *out = NULL;
    if (store__mul_size(n, 8, &bytes) != STORE_OK) {
        rc = STORE_ECORRUPT;
        goto done;
    }
    if (n == 0) {
        rc = store_pg_col_bytes(res, row, col, NULL, 0);
        goto done;
    }
    raw = malloc(bytes);
    v = malloc(bytes);
    if (!raw || !v) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_pg_col_bytes(res, row, col, raw, bytes);
    if (rc != STORE_OK)
        goto done;
    for (i = 0; i < n; i++)
        v[i] = store__get_f64le(raw + 8 * i);
    *out = v;
    v = NULL;
done:
    free(raw);
    free(v);
    return rc;
}

/* ---- connections ---- */

static void notice_ignore(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int conn_open(struct pg_store *ps, PGconn **out, char *err, size_t errcap)
{
    /* Earlier keywords are defaults that the URL (dbname, expanded) may override. */
    const char *keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *vals[] = {"10", "basinlab", ps->conninfo, NULL};
    char setup[256];
    PGconn *conn;
    int rc;

    *out = NULL;
    conn = PQconnectdbParams(keys, vals, 1);
    if (!conn) {
        rc = STORE_ENOMEM;
        goto done;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        if (err && errcap)
            snprintf(err, errcap, "cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
        pg_log(ps, "connect", PQerrorMessage(conn));
        rc = STORE_EIO;
        goto done;
    }
    /* NOTICEs ("schema already exists, skipping") are not errors: keep them off stderr */
    PQsetNoticeProcessor(conn, notice_ignore, NULL);
    if (PQsetClientEncoding(conn, "UTF8") != 0) {
        rc = STORE_EIO;
        goto done;
    }
    /* The schema name was checked to be [a-z_][a-z0-9_]*: quoting it needs no escaping. */
    if (ps->schema)
        snprintf(setup, sizeof setup,
                 "SET search_path TO \"%s\"; SET lock_timeout = %d; SET bytea_output = 'hex'",
                 ps->schema, ps->busy_timeout_ms);
    else
        snprintf(setup, sizeof setup, "SET lock_timeout = %d; SET bytea_output = 'hex'",
                 ps->busy_timeout_ms);
    {
        PGresult *r = PQexec(conn, setup);
        rc = r && PQresultStatus(r) == PGRES_COMMAND_OK ? STORE_OK
                                                        : pg_fail(ps, conn, r, "session setup");
        PQclear(r);
    }
    if (rc != STORE_OK)
        goto done;
    *out = conn;
    conn = NULL;
done:
    if (rc != STORE_OK && err && errcap && !err[0])
        snprintf(err, errcap, "PostgreSQL session setup failed: %s",
                 conn ? PQerrorMessage(conn) : "out of memory");
    PQfinish(conn);
    return rc;
}

int store_pg_acquire(struct pg_store *ps, PGconn **conn)
{
    *conn = NULL;
    pthread_mutex_lock(&ps->mu);
    if (ps->n_idle > 0)
        *conn = ps->idle[--ps->n_idle];
    pthread_mutex_unlock(&ps->mu);
    if (*conn)
        return STORE_OK;
    return conn_open(ps, conn, NULL, 0);
}

void store_pg_release(struct pg_store *ps, PGconn *conn)
{
    if (!conn)
        return;
    if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
    if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE) {
        pthread_mutex_lock(&ps->mu);
        if (ps->n_idle < (size_t)ps->max_idle) {
            ps->idle[ps->n_idle++] = conn;
            conn = NULL;
        }
        pthread_mutex_unlock(&ps->mu);
    }
    PQfinish(conn);
}

static void backoff(int attempt)
{
    /* 1..4 ms, then doubling: enough for the winner of the race to commit */
    long ms = (1L << (attempt < 6 ? attempt : 6)) + (rand() & 3);
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

int store_pg_tx(struct pg_store *ps, int mode, pg_tx_fn body, void *ctx)
{
    static const char begin_read[] = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
    PGconn *conn = NULL;
    int rc, attempt, reconnected = 0;

    rc = store_pg_acquire(ps, &conn);
    for (attempt = 0; rc == STORE_OK; attempt++) {
        rc = store_pg_query(ps, conn, mode == PG_TX_READ ? begin_read : "BEGIN", NULL, NULL);
        if (rc != STORE_OK && PQstatus(conn) == CONNECTION_BAD && !reconnected) {
            /* a pooled connection the server dropped (restart, idle timeout): once more */
            PQfinish(conn);
            conn = NULL;
            reconnected = 1;
            rc = conn_open(ps, &conn, NULL, 0);
            if (rc == STORE_OK)
                rc = STORE_PG_ERETRY;
        } else {
            if (rc == STORE_OK)
                rc = body(ps, conn, ctx);
            if (rc == STORE_OK)
                rc = store_pg_query(ps, conn, "COMMIT", NULL, NULL);
        }
        if (rc != STORE_PG_ERETRY || attempt + 1 >= PG_TX_ATTEMPTS)
            break;
        if (conn && PQtransactionStatus(conn) != PQTRANS_IDLE)
            PQclear(PQexec(conn, "ROLLBACK"));
        backoff(attempt);
        rc = STORE_OK;
    }
    if (rc == STORE_PG_ERETRY)
        rc = STORE_EBUSY;
    store_pg_release(ps, conn);
    return rc;
}

/* ---- shared pieces ---- */

int store_pg_exists(struct pg_store *ps, PGconn *conn, const char *sql_select_one, const char *id,
                    int *exists)
{
    struct pg_params p;
    PGresult *res = NULL;
    int rc;

    pgp_init(&p);
    pgp_text(&p, id);
    rc = store_pg_query(ps, conn, sql_select_one, &p, &res);
    if (rc == STORE_OK)
        *exists = PQntuples(res) > 0;
    PQclear(res);
    return rc;
}

int store_pg_lock_experiment(struct pg_store *ps, PGconn *conn, const char *exp_id, int *found,
                             enum store_exp_status *status)
{
    struct pg_params p;
    PGresult *res = NULL;
    int rc;

    *found = 0;
    pgp_init(&p);
    pgp_text(&p, exp_id);
    rc = store_pg_query(ps, conn, "SELECT status FROM experiments WHERE id = $1::text FOR UPDATE",
                        &p, &res);
    if (rc != STORE_OK || PQntuples(res) == 0)
        goto done;
    if (status && store_exp_status_parse(PQgetvalue(res, 0, 0), status) != STORE_OK) {
        rc = STORE_ECORRUPT;
        goto done;
    }
    *found = 1;
done:
    PQclear(res);
    return rc;
}

int store_pg_progress(struct pg_store *ps, PGconn *conn, const char *exp_id,
                      struct store_progress *p)
{
    struct pg_params prm;
    PGresult *res = NULL;
    int rc, i;

    memset(p, 0, sizeof *p);
    pgp_init(&prm);
    pgp_text(&prm, exp_id);
    rc = store_pg_query(ps, conn,
                        "SELECT status, count(*) FROM runs WHERE experiment_id = $1::text "
                        "GROUP BY status",
                        &prm, &res);
    for (i = 0; rc == STORE_OK && i < PQntuples(res); i++) {
        enum store_run_status s;
        int64_t c = store_pg_col_int(res, i, 1);
        if (store_run_status_parse(PQgetvalue(res, i, 0), &s) != STORE_OK) {
            rc = STORE_ECORRUPT;
            break;
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
    PQclear(res);
    return rc;
}

json_t *store_pg_progress_json(const struct store_progress *p)
{
    return json_pack("{sIsIsIsIsI}", "queued", (json_int_t)p->queued, "running",
                     (json_int_t)p->running, "finished", (json_int_t)p->finished, "failed",
                     (json_int_t)p->failed, "cancelled", (json_int_t)p->cancelled);
}

int store_pg_event_add(struct pg_store *ps, PGconn *conn, const char *exp_id, const char *type,
                       json_t *data, int64_t now_ms, int64_t *id_out)
{
    struct pg_params p;
    PGresult *res = NULL;
    int rc;

    pgp_init(&p);
    pgp_text(&p, exp_id);
    pgp_text(&p, type);
    pgp_json(&p, data);
    pgp_int(&p, now_ms);
    rc = store_pg_query(ps, conn,
                        "INSERT INTO events (experiment_id, type, data, created_at) "
                        "VALUES ($1::text, $2::text, $3::json, $4::bigint) RETURNING id",
                        &p, &res);
    if (rc == STORE_OK && id_out)
        *id_out = store_pg_col_int(res, 0, 0);
    PQclear(res);
    return rc;
}

/* ---- the location ---- */

static int schema_name_ok(const char *s, size_t len)
{
    size_t i;
    if (len == 0 || len > PG_SCHEMA_MAX || !(islower((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (i = 0; i < len; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

/* Splits basinlab's `schema` parameter off the URL: *conninfo is the URL without it. */
static int parse_location(const char *url, char **conninfo, char **schema, char *err, size_t errcap)
{
    const char *q = strchr(url, '?');
    char *out = NULL, *sch = NULL;
    size_t len = strlen(url), o;
    int rc;

    *conninfo = NULL;
    *schema = NULL;
    out = malloc(len + 1);
    if (!out) {
        rc = STORE_ENOMEM;
        goto done;
    }
    if (!q) {
        memcpy(out, url, len + 1);
        rc = STORE_OK;
        goto ok;
    }
    o = (size_t)(q - url);
    memcpy(out, url, o);
    {
        const char *p = q + 1;
        int first = 1;
        while (*p) {
            const char *amp = strchr(p, '&');
            size_t plen = amp ? (size_t)(amp - p) : strlen(p);
            if (plen >= 7 && strncmp(p, "schema=", 7) == 0) {
                if (sch || !schema_name_ok(p + 7, plen - 7)) {
                    if (err && errcap)
                        snprintf(err, errcap,
                                 "the schema parameter must be one name of lowercase letters, "
                                 "digits and _ (at most %d bytes)",
                                 PG_SCHEMA_MAX);
                    rc = STORE_EINVAL;
                    goto done;
                }
                sch = malloc(plen - 7 + 1);
                if (!sch) {
                    rc = STORE_ENOMEM;
                    goto done;
                }
                memcpy(sch, p + 7, plen - 7);
                sch[plen - 7] = '\0';
            } else if (plen > 0) {
                out[o++] = first ? '?' : '&';
                memcpy(out + o, p, plen);
                o += plen;
                first = 0;
            }
            p += plen;
            if (*p == '&')
                p++;
        }
    }
    out[o] = '\0';
    rc = STORE_OK;
ok:
    *conninfo = out;
    *schema = sch;
    out = NULL;
    sch = NULL;
done:
    free(out);
    free(sch);
    return rc;
}

int store_location_is_postgres(const char *location)
{
    return location && (strncmp(location, "postgres://", 11) == 0 ||
                        strncmp(location, "postgresql://", 13) == 0);
}

void store_location_redact(const char *location, char *out, size_t cap)
{
    const char *scheme_end, *at, *colon, *slash;
    if (!out || cap == 0)
        return;
    if (!location) {
        out[0] = '\0';
        return;
    }
    scheme_end = strstr(location, "://");
    if (!store_location_is_postgres(location) || !scheme_end) {
        snprintf(out, cap, "%s", location);
        return;
    }
    /* the userinfo ends at the last '@' before the path */
    slash = strchr(scheme_end + 3, '/');
    at = NULL;
    for (const char *c = scheme_end + 3; *c && (!slash || c < slash); c++)
        if (*c == '@')
            at = c;
    colon = at ? memchr(scheme_end + 3, ':', (size_t)(at - (scheme_end + 3))) : NULL;
    if (!colon) {
        snprintf(out, cap, "%s", location);
        return;
    }
    snprintf(out, cap, "%.*s:***%s", (int)(colon - location), location, at);
}

/* ---- migrations ---- */

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

static int simple_exec(struct pg_store *ps, PGconn *conn, const char *sql, char *err, size_t cap,
                       const char *what)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int rc = STORE_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = pg_fail(ps, conn, r, what);
        set_err(err, cap, "%s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(conn));
        /* a broken migration file is a bad argument, not a broken database */
        if (rc == STORE_EINTERNAL || rc == STORE_PG_ERETRY)
            rc = STORE_EINVAL;
    }
    PQclear(r);
    return rc;
}

static int current_version(struct pg_store *ps, PGconn *conn, int *version)
{
    PGresult *res = NULL;
    int rc = store_pg_query(ps, conn, "SELECT coalesce(max(version), 0) FROM schema_migrations",
                            NULL, &res);
    if (rc == STORE_OK)
        *version = (int)store_pg_col_int(res, 0, 0);
    PQclear(res);
    return rc;
}

static int apply_migration(struct pg_store *ps, PGconn *conn, const struct migration *m, char *err,
                           size_t errcap)
{
    struct pg_params p;
    int rc;

    rc = simple_exec(ps, conn, "BEGIN", err, errcap, "begin");
    if (rc == STORE_OK) {
        char what[160];
        snprintf(what, sizeof what, "migration %s failed", m->name);
        rc = simple_exec(ps, conn, m->sql, err, errcap, what);
    }
    if (rc == STORE_OK) {
        pgp_init(&p);
        pgp_int(&p, m->version);
        pgp_text(&p, m->name);
        rc = store_pg_query(ps, conn,
                            "INSERT INTO schema_migrations (version, name) "
                            "VALUES ($1::integer, $2::text)",
                            &p, NULL);
        if (rc != STORE_OK)
            set_err(err, errcap, "migration %s: cannot record it: %s", m->name, store_strerror(rc));
    }
    if (rc == STORE_OK)
        rc = simple_exec(ps, conn, "COMMIT", err, errcap, "commit");
    if (rc != STORE_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
    return rc;
}

static int migrate(struct pg_store *ps, PGconn *conn, char *err, size_t errcap)
{
    const struct migration *m;
    struct pg_params p;
    char sql[160];
    int rc, version = 0, latest = 0, locked = 0, prev = 0;

    for (m = basinlab_postgres_migrations; m->sql; m++) {
        if (m->version <= prev) {
            set_err(err, errcap, "migration %s: version %d does not follow %d", m->name, m->version,
                    prev);
            rc = STORE_EINVAL;
            goto done;
        }
        prev = latest = m->version;
    }
    /* Waiting for another process's migration is not a busy database: no lock_timeout. */
    rc = simple_exec(ps, conn, "SET lock_timeout = 0", err, errcap, "lock_timeout");
    if (rc != STORE_OK)
        goto done;
    pgp_init(&p);
    pgp_int(&p, PG_MIGRATE_LOCK);
    pgp_text(&p, ps->schema ? ps->schema : "");
    rc = store_pg_query(ps, conn, "SELECT pg_advisory_lock($1::integer, hashtext($2::text))", &p,
                        NULL);
    if (rc != STORE_OK) {
        set_err(err, errcap, "cannot take the migration lock: %s", store_strerror(rc));
        goto done;
    }
    locked = 1;
    if (ps->schema) {
        snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS \"%s\"", ps->schema);
        rc = simple_exec(ps, conn, sql, err, errcap, "create schema");
        if (rc != STORE_OK)
            goto done;
    }
    rc = simple_exec(ps, conn,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     "version integer PRIMARY KEY, name text NOT NULL, "
                     "applied_at timestamptz NOT NULL DEFAULT now())",
                     err, errcap, "create schema_migrations");
    if (rc == STORE_OK)
        rc = current_version(ps, conn, &version);
    if (rc != STORE_OK) {
        set_err(err, errcap, "cannot read the schema version: %s", store_strerror(rc));
        goto done;
    }
    if (version > latest) {
        set_err(err, errcap,
                "database schema version %d is newer than this binary's (%d); "
                "use a newer basinlab",
                version, latest);
        rc = STORE_ETOONEW;
        goto done;
    }
    for (m = basinlab_postgres_migrations; m->sql; m++) {
        if (m->version <= version)
            continue;
        rc = apply_migration(ps, conn, m, err, errcap);
        if (rc != STORE_OK)
            goto done;
        version = m->version;
    }
done:
    if (locked) {
        pgp_init(&p);
        pgp_int(&p, PG_MIGRATE_LOCK);
        pgp_text(&p, ps->schema ? ps->schema : "");
        (void)store_pg_query(ps, conn, "SELECT pg_advisory_unlock($1::integer, hashtext($2::text))",
                             &p, NULL);
    }
    snprintf(sql, sizeof sql, "SET lock_timeout = %d", ps->busy_timeout_ms);
    PQclear(PQexec(conn, sql));
    return rc;
}

/* ---- open / close / ping ---- */

static const struct store_ops pg_ops;

static void pg_close(struct store *s)
{
    struct pg_store *ps = store_pgs(s);
    size_t i;
    if (!ps)
        return;
    for (i = 0; i < ps->n_idle; i++)
        PQfinish(ps->idle[i]);
    pthread_mutex_destroy(&ps->mu);
    free(ps->idle);
    free(ps->conninfo);
    free(ps->schema);
    free(ps);
}

int store__pg_open(const char *url, const struct store_options *opt, struct store **out, char *err,
                   size_t errcap)
{
    struct pg_store *ps = NULL;
    PGconn *conn = NULL;
    int rc;

    *out = NULL;
    if (err && errcap)
        err[0] = '\0';
    ps = calloc(1, sizeof *ps);
    if (!ps) {
        rc = STORE_ENOMEM;
        goto done;
    }
    ps->base.ops = &pg_ops;
    ps->busy_timeout_ms = opt && opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : 5000;
    ps->max_idle = opt && opt->max_idle_conns > 0 ? opt->max_idle_conns : 8;
    ps->max_attempts = opt && opt->max_attempts > 0 ? opt->max_attempts : 3;
    ps->log = opt ? opt->log : NULL;
    ps->log_user = opt ? opt->log_user : NULL;
    if (pthread_mutex_init(&ps->mu, NULL) != 0) {
        free(ps);
        ps = NULL;
        rc = STORE_ENOMEM;
        goto done;
    }
    ps->idle = calloc((size_t)ps->max_idle, sizeof *ps->idle);
    if (!ps->idle) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = parse_location(url, &ps->conninfo, &ps->schema, err, errcap);
    if (rc != STORE_OK)
        goto done;
    {
        /* libpq's own check of the URL, so that a typo is a usage error, not an I/O one */
        char *perr = NULL;
        PQconninfoOption *o = PQconninfoParse(ps->conninfo, &perr);
        if (!o) {
            set_err(err, errcap, "bad PostgreSQL URL: %s", perr ? perr : "out of memory");
            rc = perr ? STORE_EINVAL : STORE_ENOMEM;
            PQfreemem(perr);
            goto done;
        }
        PQconninfoFree(o);
    }
    rc = conn_open(ps, &conn, err, errcap);
    if (rc == STORE_OK)
        rc = migrate(ps, conn, err, errcap);
    if (rc != STORE_OK)
        goto done;
    store_pg_release(ps, conn);
    conn = NULL;
    *out = &ps->base;
    ps = NULL;
done:
    PQfinish(conn);
    pg_close(ps ? &ps->base : NULL);
    if (rc != STORE_OK && err && errcap && !err[0])
        snprintf(err, errcap, "PostgreSQL: %s", store_strerror(rc));
    return rc;
}

static int ping_body(struct pg_store *ps, PGconn *conn, void *ctx)
{
    (void)ctx;
    return store_pg_query(ps, conn, "SELECT 1", NULL, NULL);
}

static int pg_ping(struct store *s)
{
    return store_pg_tx(store_pgs(s), PG_TX_READ, ping_body, NULL);
}

static int version_body(struct pg_store *ps, PGconn *conn, void *ctx)
{
    return current_version(ps, conn, ctx);
}

static int pg_schema_version(struct store *s, int *version)
{
    int v = 0;
    int rc = store_pg_tx(store_pgs(s), PG_TX_READ, version_body, &v);
    if (rc == STORE_OK)
        *version = v;
    return rc;
}

/* ---- the change counter (migrations/postgres/0004_data_version.sql) ---- */

static int data_version_body(struct pg_store *ps, PGconn *conn, void *ctx)
{
    PGresult *res = NULL;
    int rc = store_pg_query(ps, conn, "SELECT COALESCE(sum(v), 0) FROM data_version", NULL, &res);
    if (rc == STORE_OK)
        *(uint64_t *)ctx = (uint64_t)store_pg_col_int(res, 0, 0);
    PQclear(res);
    return rc;
}

static int pg_data_version(struct store *s, uint64_t *out)
{
    uint64_t v = 0;
    int rc = store_pg_tx(store_pgs(s), PG_TX_READ, data_version_body, &v);
    if (rc == STORE_OK)
        *out = v;
    return rc;
}

/* ---- datasets ---- */

#define DATASET_COLS                                                                               \
    "id, name, kind, spec, input_shape, n, in_dim, y_dim, task, n_classes, linear_fit, "           \
    "created_at, seq"

static int read_dataset(const PGresult *res, int row, unsigned flags, struct store_dataset *d)
{
    int rc;
    size_t nx, ny;

    memset(d, 0, sizeof *d);
    rc = store_pg_col_id(res, row, 0, d->id);
    if (rc == STORE_OK)
        rc = store_pg_col_text(res, row, 1, &d->name);
    if (rc == STORE_OK)
        rc = store_pg_col_text(res, row, 2, &d->kind);
    if (rc == STORE_OK)
        rc = store_pg_col_json(res, row, 3, &d->spec);
    if (rc == STORE_OK)
        rc = store_pg_col_json(res, row, 4, &d->input_shape);
    if (rc == STORE_OK)
        rc = store_pg_col_text(res, row, 8, &d->task);
    if (rc == STORE_OK)
        rc = store_pg_col_json(res, row, 10, &d->linear_fit);
    if (rc != STORE_OK)
        goto done;
    d->n = store_pg_col_int(res, row, 5);
    d->in_dim = store_pg_col_int(res, row, 6);
    d->y_dim = store_pg_col_int(res, row, 7);
    d->n_classes = store_pg_col_int(res, row, 9);
    d->created_at_ms = store_pg_col_int(res, row, 11);
    if (flags & STORE_WITH_DATA) {
        if (d->n < 0 || d->in_dim < 1 || d->y_dim < 1 ||
            store__mul_size((size_t)d->n, (size_t)d->in_dim, &nx) != STORE_OK ||
            store__mul_size((size_t)d->n, (size_t)d->y_dim, &ny) != STORE_OK) {
            rc = STORE_ECORRUPT;
            goto done;
        }
        rc = store_pg_col_f64(res, row, 13, nx, &d->x);
        if (rc == STORE_OK)
            rc = store_pg_col_f64(res, row, 14, ny, &d->y);
    }
done:
    if (rc != STORE_OK)
        store__dataset_clear(d);
    return rc;
}

struct insert_ctx {
    const void *rec;
    const char *id;
    int64_t now;
    size_t nx, ny;
};

static int dataset_insert_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct insert_ctx *c = vctx;
    const struct store_dataset *d = c->rec;
    struct pg_params p;

    pgp_init(&p);
    pgp_text(&p, c->id);
    pgp_text(&p, d->name);
    pgp_text(&p, d->kind);
    pgp_json(&p, d->spec);
    pgp_json(&p, d->input_shape);
    pgp_int(&p, d->n);
    pgp_int(&p, d->in_dim);
    pgp_int(&p, d->y_dim);
    pgp_text(&p, d->task);
    pgp_int(&p, d->n_classes);
    pgp_f64(&p, d->x, c->nx);
    pgp_f64(&p, d->y, c->ny);
    pgp_json(&p, d->linear_fit);
    pgp_int(&p, c->now);
    return store_pg_query(
        ps, conn,
        "INSERT INTO datasets (id, name, kind, spec, input_shape, n, in_dim, y_dim, task, "
        "n_classes, x, y, linear_fit, created_at) VALUES ($1::text, $2::text, $3::text, "
        "$4::json, $5::json, $6::bigint, $7::bigint, $8::bigint, $9::text, $10::bigint, "
        "$11::bytea, $12::bytea, $13::json, $14::bigint)",
        &p, NULL);
}

static int pg_dataset_insert(struct store *s, const struct store_dataset *d,
                             char id_out[STORE_ID_SIZE])
{
    struct insert_ctx c;
    char id[STORE_ID_SIZE];
    int rc;

    memset(&c, 0, sizeof c);
    if (!d || !d->kind || !d->task || !d->spec || !d->input_shape || d->n < 0 || d->in_dim < 1 ||
        d->y_dim < 1 || d->n_classes < 0 ||
        store__mul_size((size_t)d->n, (size_t)d->in_dim, &c.nx) != STORE_OK ||
        store__mul_size((size_t)d->n, (size_t)d->y_dim, &c.ny) != STORE_OK || (c.nx > 0 && !d->x) ||
        (c.ny > 0 && !d->y))
        return STORE_EINVAL;
    if (ids_new(IDS_PREFIX_DATASET, id, sizeof id) != 0)
        return STORE_EINTERNAL;
    c.rec = d;
    c.id = id;
    c.now = store__now_ms();
    rc = store_pg_tx(store_pgs(s), PG_TX_WRITE, dataset_insert_body, &c);
    if (rc == STORE_OK)
        memcpy(id_out, id, sizeof id);
    return rc;
}

struct get_ctx {
    const char *id;
    unsigned flags;
    void *out; /* the record to fill */
};

static int dataset_get_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct get_ctx *c = vctx;
    struct pg_params p;
    PGresult *res = NULL;
    int rc;

    store__dataset_clear(c->out);
    pgp_init(&p);
    pgp_text(&p, c->id);
    rc = store_pg_query(ps, conn,
                        (c->flags & STORE_WITH_DATA)
                            ? "SELECT " DATASET_COLS ", x, y FROM datasets WHERE id = $1::text"
                            : "SELECT " DATASET_COLS " FROM datasets WHERE id = $1::text",
                        &p, &res);
    if (rc == STORE_OK)
        rc = PQntuples(res) == 0 ? STORE_ENOTFOUND : read_dataset(res, 0, c->flags, c->out);
    PQclear(res);
    return rc;
}

static int pg_dataset_get(struct store *s, const char *id, unsigned flags,
                          struct store_dataset **out)
{
    struct get_ctx c;
    struct store_dataset *d;
    int rc;

    *out = NULL;
    if (!id)
        return STORE_EINVAL;
    d = calloc(1, sizeof *d);
    if (!d)
        return STORE_ENOMEM;
    c.id = id;
    c.flags = flags;
    c.out = d;
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, dataset_get_body, &c);
    if (rc == STORE_OK)
        *out = d;
    else
        store_dataset_free(d);
    return rc;
}

/* The "newest first by seq" lists: fetch limit+1 rows to know whether another page follows;
 * the cursor is the seq of the last row returned. */
struct list_ctx {
    const char *sql;
    const char *tag;
    size_t limit;
    int has_cursor;
    int64_t after;
    int seq_col;
    int (*read)(const PGresult *res, int row, void *item);
    void (*clear)(void *item);
    size_t item_size;
    void *items; /* limit items */
    size_t *n;
    char *next_cursor;
};

static int list_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct list_ctx *c = vctx;
    struct pg_params p;
    PGresult *res = NULL;
    int64_t last_seq = 0;
    int rc, i;

    while (*c->n > 0)
        c->clear((char *)c->items + --*c->n * c->item_size);
    c->next_cursor[0] = '\0';
    pgp_init(&p);
    pgp_bool(&p, c->has_cursor);
    pgp_int(&p, c->after);
    pgp_int(&p, (int64_t)c->limit + 1);
    rc = store_pg_query(ps, conn, c->sql, &p, &res);
    for (i = 0; rc == STORE_OK && i < PQntuples(res); i++) {
        if (*c->n == c->limit) {
            rc = store__cursor_encode(c->tag, &last_seq, 1, c->next_cursor);
            break;
        }
        rc = c->read(res, i, (char *)c->items + *c->n * c->item_size);
        if (rc != STORE_OK)
            break;
        ++*c->n;
        last_seq = store_pg_col_int(res, i, c->seq_col);
    }
    PQclear(res);
    return rc;
}

static int list_run(struct store *s, struct list_ctx *c, const char *cursor)
{
    c->has_cursor = cursor && *cursor;
    c->after = 0;
    if (c->limit == 0 || c->limit > STORE_MAX_PAGE)
        return STORE_EINVAL;
    if (c->has_cursor) {
        int rc = store__cursor_decode(cursor, c->tag, &c->after, 1);
        if (rc != STORE_OK)
            return rc;
    }
    return store_pg_tx(store_pgs(s), PG_TX_READ, list_body, c);
}

static int read_dataset_item(const PGresult *res, int row, void *item)
{
    return read_dataset(res, row, 0, item);
}

static void clear_dataset_item(void *item)
{
    store__dataset_clear(item);
}

static int pg_dataset_list(struct store *s, size_t limit, const char *cursor,
                           struct store_dataset_list **out)
{
    struct list_ctx c;
    struct store_dataset_list *l = NULL;
    int rc;

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
    memset(&c, 0, sizeof c);
    c.sql = "SELECT " DATASET_COLS " FROM datasets WHERE NOT $1::boolean OR seq < $2::bigint "
            "ORDER BY seq DESC LIMIT $3::bigint";
    c.tag = "ds";
    c.limit = limit;
    c.seq_col = 12;
    c.read = read_dataset_item;
    c.clear = clear_dataset_item;
    c.item_size = sizeof *l->items;
    c.items = l->items;
    c.n = &l->n;
    c.next_cursor = l->next_cursor;
    rc = list_run(s, &c, cursor);
    if (rc == STORE_OK) {
        *out = l;
        l = NULL;
    }
done:
    store_dataset_list_free(l);
    return rc;
}

struct delete_ctx {
    const char *sql;
    const char *id;
};

static int delete_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct delete_ctx *c = vctx;
    struct pg_params p;
    PGresult *res = NULL;
    int rc;

    pgp_init(&p);
    pgp_text(&p, c->id);
    rc = store_pg_query(ps, conn, c->sql, &p, &res);
    if (rc == STORE_OK && store_pg_changes(res) == 0)
        rc = STORE_ENOTFOUND;
    PQclear(res);
    return rc;
}

/* DELETE by id; a foreign key RESTRICT violation (still referenced) is STORE_ECONFLICT. */
static int pg_delete_by_id(struct store *s, const char *sql, const char *id)
{
    struct delete_ctx c;
    if (!id)
        return STORE_EINVAL;
    c.sql = sql;
    c.id = id;
    return store_pg_tx(store_pgs(s), PG_TX_WRITE, delete_body, &c);
}

static int pg_dataset_delete(struct store *s, const char *id)
{
    return pg_delete_by_id(s, "DELETE FROM datasets WHERE id = $1::text", id);
}

/* ---- architectures ---- */

#define ARCH_COLS "id, name, spec, param_count, out_dim, created_at, seq"

static int read_architecture(const PGresult *res, int row, struct store_architecture *a)
{
    int rc;
    memset(a, 0, sizeof *a);
    rc = store_pg_col_id(res, row, 0, a->id);
    if (rc == STORE_OK)
        rc = store_pg_col_text(res, row, 1, &a->name);
    if (rc == STORE_OK)
        rc = store_pg_col_json(res, row, 2, &a->spec);
    a->param_count = store_pg_col_int(res, row, 3);
    a->out_dim = store_pg_col_int(res, row, 4);
    a->created_at_ms = store_pg_col_int(res, row, 5);
    if (rc != STORE_OK)
        store__architecture_clear(a);
    return rc;
}

static int architecture_insert_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct insert_ctx *c = vctx;
    const struct store_architecture *a = c->rec;
    struct pg_params p;

    pgp_init(&p);
    pgp_text(&p, c->id);
    pgp_text(&p, a->name);
    pgp_json(&p, a->spec);
    pgp_int(&p, a->param_count);
    pgp_int(&p, a->out_dim);
    pgp_int(&p, c->now);
    return store_pg_query(ps, conn,
                          "INSERT INTO architectures (id, name, spec, param_count, out_dim, "
                          "created_at) VALUES ($1::text, $2::text, $3::json, $4::bigint, "
                          "$5::bigint, $6::bigint)",
                          &p, NULL);
}

static int pg_architecture_insert(struct store *s, const struct store_architecture *a,
                                  char id_out[STORE_ID_SIZE])
{
    struct insert_ctx c;
    char id[STORE_ID_SIZE];
    int rc;

    if (!a || !a->spec || a->param_count < 1 || a->out_dim < 1)
        return STORE_EINVAL;
    if (ids_new(IDS_PREFIX_ARCHITECTURE, id, sizeof id) != 0)
        return STORE_EINTERNAL;
    memset(&c, 0, sizeof c);
    c.rec = a;
    c.id = id;
    c.now = store__now_ms();
    rc = store_pg_tx(store_pgs(s), PG_TX_WRITE, architecture_insert_body, &c);
    if (rc == STORE_OK)
        memcpy(id_out, id, sizeof id);
    return rc;
}

static int architecture_get_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct get_ctx *c = vctx;
    struct pg_params p;
    PGresult *res = NULL;
    int rc;

    store__architecture_clear(c->out);
    pgp_init(&p);
    pgp_text(&p, c->id);
    rc = store_pg_query(ps, conn, "SELECT " ARCH_COLS " FROM architectures WHERE id = $1::text", &p,
                        &res);
    if (rc == STORE_OK)
        rc = PQntuples(res) == 0 ? STORE_ENOTFOUND : read_architecture(res, 0, c->out);
    PQclear(res);
    return rc;
}

static int pg_architecture_get(struct store *s, const char *id, struct store_architecture **out)
{
    struct get_ctx c;
    struct store_architecture *a;
    int rc;

    *out = NULL;
    if (!id)
        return STORE_EINVAL;
    a = calloc(1, sizeof *a);
    if (!a)
        return STORE_ENOMEM;
    c.id = id;
    c.flags = 0;
    c.out = a;
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, architecture_get_body, &c);
    if (rc == STORE_OK)
        *out = a;
    else
        store_architecture_free(a);
    return rc;
}

static int read_architecture_item(const PGresult *res, int row, void *item)
{
    return read_architecture(res, row, item);
}

static void clear_architecture_item(void *item)
{
    store__architecture_clear(item);
}

static int pg_architecture_list(struct store *s, size_t limit, const char *cursor,
                                struct store_architecture_list **out)
{
    struct list_ctx c;
    struct store_architecture_list *l = NULL;
    int rc;

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
    memset(&c, 0, sizeof c);
    c.sql = "SELECT " ARCH_COLS " FROM architectures WHERE NOT $1::boolean OR seq < $2::bigint "
            "ORDER BY seq DESC LIMIT $3::bigint";
    c.tag = "ar";
    c.limit = limit;
    c.seq_col = 6;
    c.read = read_architecture_item;
    c.clear = clear_architecture_item;
    c.item_size = sizeof *l->items;
    c.items = l->items;
    c.n = &l->n;
    c.next_cursor = l->next_cursor;
    rc = list_run(s, &c, cursor);
    if (rc == STORE_OK) {
        *out = l;
        l = NULL;
    }
done:
    store_architecture_list_free(l);
    return rc;
}

static int pg_architecture_delete(struct store *s, const char *id)
{
    return pg_delete_by_id(s, "DELETE FROM architectures WHERE id = $1::text", id);
}

/* ---- events ---- */

struct event_ctx {
    const char *exp_id;
    const char *type;
    json_t *data;
    int64_t id;
};

static int event_append_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct event_ctx *c = vctx;
    int rc, found = 0;

    rc = store_pg_lock_experiment(ps, conn, c->exp_id, &found, NULL);
    if (rc == STORE_OK && !found)
        rc = STORE_ENOTFOUND;
    if (rc == STORE_OK)
        rc = store_pg_event_add(ps, conn, c->exp_id, c->type, c->data, store__now_ms(), &c->id);
    return rc;
}

static int pg_event_append(struct store *s, const char *experiment_id, const char *type,
                           json_t *data, int64_t *id_out)
{
    struct event_ctx c;
    int rc;

    if (!experiment_id || !type || !*type || strlen(type) >= STORE_EVENT_TYPE_SIZE || !data)
        return STORE_EINVAL;
    c.exp_id = experiment_id;
    c.type = type;
    c.data = data;
    c.id = 0;
    rc = store_pg_tx(store_pgs(s), PG_TX_WRITE, event_append_body, &c);
    if (rc == STORE_OK && id_out)
        *id_out = c.id;
    return rc;
}

struct events_ctx {
    const char *exp_id;
    int64_t after;
    size_t limit;
    struct store_event_list *l;
};

static int events_since_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct events_ctx *c = vctx;
    struct pg_params p;
    PGresult *res = NULL;
    int rc, exists = 0, i;

    while (c->l->n > 0)
        json_decref(c->l->items[--c->l->n].data);
    rc = store_pg_exists(ps, conn, "SELECT 1 FROM experiments WHERE id = $1::text", c->exp_id,
                         &exists);
    if (rc == STORE_OK && !exists)
        rc = STORE_ENOTFOUND;
    if (rc != STORE_OK)
        return rc;
    pgp_init(&p);
    pgp_text(&p, c->exp_id);
    pgp_int(&p, c->after);
    pgp_int(&p, (int64_t)c->limit);
    rc = store_pg_query(ps, conn,
                        "SELECT id, type, data, created_at FROM events "
                        "WHERE experiment_id = $1::text AND id > $2::bigint ORDER BY id "
                        "LIMIT $3::bigint",
                        &p, &res);
    for (i = 0; rc == STORE_OK && i < PQntuples(res); i++) {
        struct store_event *e = &c->l->items[c->l->n];
        const char *type = PQgetvalue(res, i, 1);
        if (strlen(type) >= sizeof e->type) {
            rc = STORE_ECORRUPT;
            break;
        }
        e->id = store_pg_col_int(res, i, 0);
        strcpy(e->type, type);
        e->created_at_ms = store_pg_col_int(res, i, 3);
        rc = store_pg_col_json(res, i, 2, &e->data);
        if (rc == STORE_OK)
            c->l->n++;
    }
    PQclear(res);
    return rc;
}

static int pg_events_since(struct store *s, const char *experiment_id, int64_t after_id,
                           size_t limit, struct store_event_list **out)
{
    struct events_ctx c;
    struct store_event_list *l = NULL;
    int rc;

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
    c.exp_id = experiment_id;
    c.after = after_id;
    c.limit = limit;
    c.l = l;
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, events_since_body, &c);
    if (rc == STORE_OK) {
        *out = l;
        l = NULL;
    }
done:
    store_event_list_free(l);
    return rc;
}

/* ---- metrics ---- */

static int count_by_status(struct pg_store *ps, PGconn *conn, const char *sql, int is_run,
                           int64_t *counts)
{
    PGresult *res = NULL;
    int rc, i;

    rc = store_pg_query(ps, conn, sql, NULL, &res);
    for (i = 0; rc == STORE_OK && i < PQntuples(res); i++) {
        const char *name = PQgetvalue(res, i, 0);
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
            break;
        }
        counts[k] = store_pg_col_int(res, i, 1);
    }
    PQclear(res);
    return rc;
}

static int scalar_int(struct pg_store *ps, PGconn *conn, const char *sql, int64_t *out)
{
    PGresult *res = NULL;
    int rc = store_pg_query(ps, conn, sql, NULL, &res);
    if (rc == STORE_OK && PQntuples(res) != 1)
        rc = STORE_EINTERNAL;
    if (rc == STORE_OK)
        *out = store_pg_col_int(res, 0, 0);
    PQclear(res);
    return rc;
}

static int metrics_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct store_metrics *m = vctx;
    int rc;

    memset(m, 0, sizeof *m);
    rc = count_by_status(ps, conn, "SELECT status, count(*) FROM runs GROUP BY status", 1, m->runs);
    if (rc == STORE_OK)
        rc = count_by_status(ps, conn, "SELECT status, count(*) FROM experiments GROUP BY status",
                             0, m->experiments);
    if (rc == STORE_OK)
        rc = scalar_int(ps, conn,
                        "SELECT count(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id "
                        "WHERE r.status = 'queued' AND NOT e.cancel_requested",
                        &m->queue_depth);
    if (rc == STORE_OK)
        rc = scalar_int(ps, conn, "SELECT count(*) FROM datasets", &m->datasets);
    if (rc == STORE_OK)
        rc = scalar_int(ps, conn, "SELECT count(*) FROM architectures", &m->architectures);
    return rc;
}

static int pg_metrics(struct store *s, struct store_metrics *out)
{
    struct store_metrics m;
    int rc = store_pg_tx(store_pgs(s), PG_TX_READ, metrics_body, &m);
    if (rc == STORE_OK)
        *out = m;
    return rc;
}

static const struct store_ops pg_ops = {
    .close = pg_close,
    .ping = pg_ping,
    .schema_version = pg_schema_version,
    .dataset_insert = pg_dataset_insert,
    .dataset_get = pg_dataset_get,
    .dataset_list = pg_dataset_list,
    .dataset_delete = pg_dataset_delete,
    .architecture_insert = pg_architecture_insert,
    .architecture_get = pg_architecture_get,
    .architecture_list = pg_architecture_list,
    .architecture_delete = pg_architecture_delete,
    .experiment_create = store_pg_experiment_create,
    .experiment_get = store_pg_experiment_get,
    .experiment_list = store_pg_experiment_list,
    .experiment_progress = store_pg_experiment_progress,
    .experiment_set_summary = store_pg_experiment_set_summary,
    .experiment_cancel = store_pg_experiment_cancel,
    .experiment_delete = store_pg_experiment_delete,
    .claim_runs = store_pg_claim_runs,
    .claim_heartbeat = store_pg_claim_heartbeat,
    .claim_release = store_pg_claim_release,
    .run_finish = store_pg_run_finish,
    .requeue_stale = store_pg_requeue_stale,
    .run_get = store_pg_run_get,
    .run_list = store_pg_run_list,
    .run_params_get = store_pg_run_params_get,
    .trajectory_append = store_pg_trajectory_append,
    .trajectory_info = store_pg_trajectory_info,
    .trajectory_read = store_pg_trajectory_read,
    .trajectory_downsample = store_pg_trajectory_downsample,
    .event_append = pg_event_append,
    .events_since = pg_events_since,
    .metrics = pg_metrics,
    .objective_best = store_pg_objective_best,
    .run_list_spurious = store_pg_run_list_spurious,
    .experiment_spurious_stats = store_pg_experiment_spurious_stats,
    .experiment_end_points = store_pg_experiment_end_points,
    .experiment_run_counts = store_pg_experiment_run_counts,
    .run_insert_finished = store_pg_run_insert_finished,
    .data_version = pg_data_version,
};
