/* The PostgreSQL backend's experiments and run queue (store.h): creating an experiment with its
 * queued runs, fair claiming with SELECT … FOR UPDATE SKIP LOCKED, heartbeats, fenced results,
 * cancellation, requeueing runs whose worker vanished, and the run lists. Same answers as
 * store_sqlite_runs.c; what differs is how concurrent writers in many processes are kept apart.
 *
 * DESIGN
 * SQLite serialises all writers with one lock; PostgreSQL runs them concurrently in READ
 * COMMITTED, so the invariants of store_sqlite_runs.c (a run is `running` iff it holds a claim
 * token and a lease; terminal runs and experiments are never rewritten; an experiment finishes
 * in the transaction that makes its last run terminal; `cancelled` implies cancel_requested)
 * are kept here by row locks taken in ONE order:
 *     experiment row (SELECT … FOR UPDATE)  →  its run rows  →  chunks, params, events.
 * Every transaction that changes an experiment's runs' states or appends its events first locks
 * the experiment row: claim, run_finish, cancel, claim_release, requeue_stale (all experiments
 * it touches, in id order), event_append. So per experiment those changes are serial, as in
 * SQLite — e.g. a cancel cannot slip between a requeue's "is it cancelled?" and its update, and
 * an experiment's event ids commit in increasing order (SSE's "id > last" never skips one).
 * Across experiments they run in parallel. Heartbeats and trajectory appends lock only run rows
 * (a share lock for the append's fence), never an experiment, so they cannot close a cycle.
 * The claim: pick candidate experiments in the fairness order without locks (fewest running
 * runs, then the one served longest ago — last_claim_seq from the sequence claim_seq — then the
 * oldest), lock the first candidate and re-check that it is still claimable, then take its
 * queued runs in index order with FOR UPDATE SKIP LOCKED and mark them `running` under a fresh
 * random token. Two workers never get the same run: the UPDATE only takes rows still `queued`
 * under its lock. If a candidate has nothing left the next one is tried.
 * Fencing: run_finish and the trajectory appends only write while the run is `running` with the
 * caller's token (checked under the row lock), so a worker whose lease expired and whose run
 * was requeued (and maybe re-claimed) can never write a result: results land exactly once.
 * Deadlocks that the order cannot rule out (two multi-row updates of the same runs, e.g. a
 * heartbeat and a reaper) are detected by PostgreSQL and the loser is re-run by store_pg_tx.
 * Attempts (same rule as store_sqlite_runs.c): the claim charges every run of the batch, but a
 * worker executes its batch one run at a time in restart_index order. So requeue_stale charges
 * only the lowest restart_index still `running` under each stale claim token (the run that was
 * executing); every other run of that claim gets its attempt back (attempts - 1, as
 * claim_release does for all of them) before the max_attempts check, in the same transaction
 * and under the same experiment locks. */
#include "store_pg_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "spurious.h"

/* ---- experiments ---- */

#define EXP_COLS                                                                                   \
    "e.id, e.dataset_id, e.architecture_id, e.spec, e.status, e.restarts, e.seed, "                \
    "e.idempotency_key, e.created_at, e.updated_at, e.finished_at, e.summary, "                    \
    "e.cancel_requested, e.seq, "                                                                  \
    "(SELECT count(*) FROM runs r WHERE r.experiment_id = e.id AND r.status = 'queued'), "         \
    "(SELECT count(*) FROM runs r WHERE r.experiment_id = e.id AND r.status = 'running'), "        \
    "(SELECT count(*) FROM runs r WHERE r.experiment_id = e.id AND r.status = 'finished'), "       \
    "(SELECT count(*) FROM runs r WHERE r.experiment_id = e.id AND r.status = 'failed'), "         \
    "(SELECT count(*) FROM runs r WHERE r.experiment_id = e.id AND r.status = 'cancelled'), "      \
    "e.objective_key"
#define EXP_COL_SEQ 13
#define EXP_COL_KEY 19

/* Runs are inserted this many per statement (unnest of two arrays). */
#define RUN_INSERT_BATCH 8192

static int read_experiment(const PGresult *res, int row, struct store_experiment *e)
{
    int rc;

    memset(e, 0, sizeof *e);
    rc = store_pg_col_id(res, row, 0, e->id);
    if (rc == STORE_OK)
        rc = store_pg_col_id(res, row, 1, e->dataset_id);
    if (rc == STORE_OK)
        rc = store_pg_col_id(res, row, 2, e->architecture_id);
    if (rc == STORE_OK)
        rc = store_pg_col_json(res, row, 3, &e->spec);
    if (rc == STORE_OK && store_exp_status_parse(PQgetvalue(res, row, 4), &e->status) != STORE_OK)
        rc = STORE_ECORRUPT;
    if (rc == STORE_OK)
        rc = store_pg_col_text(res, row, 7, &e->idempotency_key);
    if (rc == STORE_OK)
        rc = store_pg_col_json(res, row, 11, &e->summary);
    if (rc != STORE_OK)
        goto done;
    e->restarts = store_pg_col_int(res, row, 5);
    e->seed = (uint64_t)store_pg_col_int(res, row, 6);
    e->created_at_ms = store_pg_col_int(res, row, 8);
    e->updated_at_ms = store_pg_col_int(res, row, 9);
    e->finished_at_ms = store_pg_col_int(res, row, 10);
    e->cancel_requested = store_pg_col_bool(res, row, 12);
    e->progress.queued = store_pg_col_int(res, row, 14);
    e->progress.running = store_pg_col_int(res, row, 15);
    e->progress.finished = store_pg_col_int(res, row, 16);
    e->progress.failed = store_pg_col_int(res, row, 17);
    e->progress.cancelled = store_pg_col_int(res, row, 18);
    if (!PQgetisnull(res, row, EXP_COL_KEY) &&
        (size_t)PQgetlength(res, row, EXP_COL_KEY) < sizeof e->objective_key)
        memcpy(e->objective_key, PQgetvalue(res, row, EXP_COL_KEY),
               (size_t)PQgetlength(res, row, EXP_COL_KEY) + 1);
done:
    if (rc != STORE_OK)
        store__experiment_clear(e);
    return rc;
}

/* Within the transaction: the experiment already created under this idempotency key, if any. */
static int find_by_key(struct pg_store *ps, PGconn *conn, const char *key, const char *hash,
                       char id_out[STORE_ID_SIZE], int *found)
{
    struct pg_params p;
    PGresult *res = NULL;
    int rc;

    *found = 0;
    pgp_init(&p);
    pgp_text(&p, key);
    rc = store_pg_query(ps, conn,
                        "SELECT id, request_hash FROM experiments WHERE idempotency_key = $1::text",
                        &p, &res);
    if (rc != STORE_OK || PQntuples(res) == 0)
        goto done;
    if (PQgetisnull(res, 0, 1) || strcmp(PQgetvalue(res, 0, 1), hash) != 0) {
        rc = STORE_ECONFLICT; /* the key was used for a different request */
        goto done;
    }
    rc = store_pg_col_id(res, 0, 0, id_out);
    *found = rc == STORE_OK;
done:
    PQclear(res);
    return rc;
}

/* Appends s to a growing buffer (a Postgres array literal under construction). */
struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_add(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? 2 * b->cap : 4096;
        char *q;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        q = realloc(b->p, ncap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static int insert_runs(struct pg_store *ps, PGconn *conn, const char *exp_id,
                       const struct store_experiment_new *e)
{
    struct sbuf ids = {0}, seeds = {0};
    struct pg_params p;
    char run_id[STORE_ID_SIZE], num[32];
    int64_t i, start;
    int rc = STORE_OK;

    for (start = 0; rc == STORE_OK && start < e->restarts; start += RUN_INSERT_BATCH) {
        int64_t end =
            start + RUN_INSERT_BATCH < e->restarts ? start + RUN_INSERT_BATCH : e->restarts;
        ids.len = seeds.len = 0;
        sb_add(&ids, "{");
        sb_add(&seeds, "{");
        for (i = start; i < end; i++) {
            uint64_t seed = e->run_seeds ? e->run_seeds[i] : e->seed;
            if (ids_new(IDS_PREFIX_RUN, run_id, sizeof run_id) != 0) {
                rc = STORE_EINTERNAL;
                goto done;
            }
            if (i > start) {
                sb_add(&ids, ",");
                sb_add(&seeds, ",");
            }
            sb_add(&ids, run_id);
            snprintf(num, sizeof num, "%lld", (long long)(int64_t)seed);
            sb_add(&seeds, num);
        }
        sb_add(&ids, "}");
        sb_add(&seeds, "}");
        if (ids.oom || seeds.oom) {
            rc = STORE_ENOMEM;
            goto done;
        }
        pgp_init(&p);
        pgp_text(&p, exp_id);
        pgp_int(&p, start);
        pgp_text(&p, ids.p);
        pgp_text(&p, seeds.p);
        rc = store_pg_query(ps, conn,
                            "INSERT INTO runs (id, experiment_id, restart_index, seed) "
                            "SELECT u.id, $1::text, $2::bigint + u.ord - 1, u.seed "
                            "FROM unnest($3::text[], $4::bigint[]) WITH ORDINALITY "
                            "AS u(id, seed, ord) ORDER BY u.ord",
                            &p, NULL);
    }
done:
    free(ids.p);
    free(seeds.p);
    return rc;
}

const char *store_pg_objective_key(const char *given, json_t *spec, const char *dataset_id,
                                   const char *architecture_id, char *key)
{
    if (given)
        return given;
    if (spurious_objective_key(spec, dataset_id, architecture_id, key, STORE_KEY_SIZE) != 0 ||
        key[0] == '\0')
        return NULL;
    return key;
}

struct create_ctx {
    const struct store_experiment_new *e;
    const char *id;
    const char *key;
    int64_t now;
    char found_id[STORE_ID_SIZE];
    int found;
};

static int experiment_create_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct create_ctx *c = vctx;
    const struct store_experiment_new *e = c->e;
    struct pg_params p;
    int rc, exists = 0;

    c->found = 0;
    if (e->idempotency_key) {
        rc = find_by_key(ps, conn, e->idempotency_key, e->request_hash, c->found_id, &c->found);
        if (rc != STORE_OK || c->found)
            return rc;
    }
    /* KEY SHARE: the dataset and architecture cannot be deleted before this commits */
    rc = store_pg_exists(ps, conn, "SELECT 1 FROM datasets WHERE id = $1::text FOR KEY SHARE",
                         e->dataset_id, &exists);
    if (rc == STORE_OK && exists)
        rc = store_pg_exists(ps, conn,
                             "SELECT 1 FROM architectures WHERE id = $1::text FOR KEY SHARE",
                             e->architecture_id, &exists);
    if (rc == STORE_OK && !exists)
        rc = STORE_ENOTFOUND;
    if (rc != STORE_OK)
        return rc;
    pgp_init(&p);
    pgp_text(&p, c->id);
    pgp_text(&p, e->dataset_id);
    pgp_text(&p, e->architecture_id);
    pgp_json(&p, e->spec);
    pgp_int(&p, e->restarts);
    pgp_int(&p, (int64_t)e->seed);
    pgp_text(&p, e->idempotency_key);
    pgp_text(&p, e->idempotency_key ? e->request_hash : NULL);
    pgp_int(&p, c->now);
    pgp_text(&p, c->key);
    rc = store_pg_query(ps, conn,
                        "INSERT INTO experiments (id, dataset_id, architecture_id, spec, restarts, "
                        "seed, idempotency_key, request_hash, created_at, updated_at, "
                        "objective_key) "
                        "VALUES ($1::text, $2::text, $3::text, $4::json, $5::bigint, $6::bigint, "
                        "$7::text, $8::text, $9::bigint, $9::bigint, $10::text)",
                        &p, NULL);
    /* Another process committed the same key first: run again, and find it. */
    if (rc == STORE_ECONFLICT && e->idempotency_key)
        return STORE_PG_ERETRY;
    if (rc == STORE_OK)
        rc = insert_runs(ps, conn, c->id, e);
    return rc;
}

int store_pg_experiment_create(struct store *s, const struct store_experiment_new *e,
                               char id_out[STORE_ID_SIZE], int *existed)
{
    struct create_ctx c;
    char id[STORE_ID_SIZE], key[STORE_KEY_SIZE];
    int rc;

    if (!e || !e->dataset_id || !e->architecture_id || !e->spec || e->restarts < 1 ||
        e->restarts > STORE_MAX_RESTARTS || (e->idempotency_key && !e->request_hash) ||
        (e->objective_key &&
         (e->objective_key[0] == '\0' || strlen(e->objective_key) >= STORE_KEY_SIZE)))
        return STORE_EINVAL;
    if (ids_new(IDS_PREFIX_EXPERIMENT, id, sizeof id) != 0)
        return STORE_EINTERNAL;
    memset(&c, 0, sizeof c);
    c.e = e;
    c.id = id;
    c.key =
        store_pg_objective_key(e->objective_key, e->spec, e->dataset_id, e->architecture_id, key);
    c.now = store__now_ms();
    rc = store_pg_tx(store_pgs(s), PG_TX_WRITE, experiment_create_body, &c);
    if (rc == STORE_OK) {
        memcpy(id_out, c.found ? c.found_id : id, STORE_ID_SIZE);
        *existed = c.found;
    }
    return rc;
}

struct exp_get_ctx {
    const char *id;
    struct store_experiment *e;
};

static int experiment_get_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct exp_get_ctx *c = vctx;
    struct pg_params p;
    PGresult *res = NULL;
    int rc;

    store__experiment_clear(c->e);
    pgp_init(&p);
    pgp_text(&p, c->id);
    rc = store_pg_query(ps, conn, "SELECT " EXP_COLS " FROM experiments e WHERE e.id = $1::text",
                        &p, &res);
    if (rc == STORE_OK)
        rc = PQntuples(res) == 0 ? STORE_ENOTFOUND : read_experiment(res, 0, c->e);
    PQclear(res);
    return rc;
}

int store_pg_experiment_get(struct store *s, const char *id, struct store_experiment **out)
{
    struct exp_get_ctx c;
    int rc;

    *out = NULL;
    if (!id)
        return STORE_EINVAL;
    c.id = id;
    c.e = calloc(1, sizeof *c.e);
    if (!c.e)
        return STORE_ENOMEM;
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, experiment_get_body, &c);
    if (rc == STORE_OK)
        *out = c.e;
    else
        store_experiment_free(c.e);
    return rc;
}

struct exp_list_ctx {
    int status;
    size_t limit;
    int has_cursor;
    int64_t after;
    struct store_experiment_list *l;
};

static int experiment_list_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct exp_list_ctx *c = vctx;
    struct pg_params p;
    PGresult *res = NULL;
    int64_t last_seq = 0;
    int rc, i;

    while (c->l->n > 0)
        store__experiment_clear(&c->l->items[--c->l->n]);
    c->l->next_cursor[0] = '\0';
    pgp_init(&p);
    pgp_bool(&p, c->has_cursor);
    pgp_int(&p, c->after);
    pgp_text(&p, c->status < 0 ? NULL : store_exp_status_name((enum store_exp_status)c->status));
    pgp_int(&p, (int64_t)c->limit + 1);
    rc = store_pg_query(ps, conn,
                        "SELECT " EXP_COLS " FROM experiments e "
                        "WHERE (NOT $1::boolean OR e.seq < $2::bigint) "
                        "AND ($3::text IS NULL OR e.status = $3::text) "
                        "ORDER BY e.seq DESC LIMIT $4::bigint",
                        &p, &res);
    for (i = 0; rc == STORE_OK && i < PQntuples(res); i++) {
        if (c->l->n == c->limit) {
            rc = store__cursor_encode("ex", &last_seq, 1, c->l->next_cursor);
            break;
        }
        rc = read_experiment(res, i, &c->l->items[c->l->n]);
        if (rc != STORE_OK)
            break;
        c->l->n++;
        last_seq = store_pg_col_int(res, i, EXP_COL_SEQ);
    }
    PQclear(res);
    return rc;
}

int store_pg_experiment_list(struct store *s, int status, size_t limit, const char *cursor,
                             struct store_experiment_list **out)
{
    struct exp_list_ctx c;
    int rc;

    *out = NULL;
    memset(&c, 0, sizeof c);
    c.l = calloc(1, sizeof *c.l);
    if (!c.l || limit == 0 || limit > STORE_MAX_PAGE || status < -1 ||
        status >= STORE_EXP_STATUS_COUNT) {
        rc = c.l ? STORE_EINVAL : STORE_ENOMEM;
        goto done;
    }
    c.status = status;
    c.limit = limit;
    c.has_cursor = cursor && *cursor;
    if (c.has_cursor) {
        rc = store__cursor_decode(cursor, "ex", &c.after, 1);
        if (rc != STORE_OK)
            goto done;
    }
    c.l->items = calloc(limit, sizeof *c.l->items);
    if (!c.l->items) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, experiment_list_body, &c);
    if (rc == STORE_OK) {
        *out = c.l;
        c.l = NULL;
    }
done:
    store_experiment_list_free(c.l);
    return rc;
}

struct progress_ctx {
    const char *id;
    struct store_progress p;
};

static int experiment_progress_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct progress_ctx *c = vctx;
    int exists = 0;
    int rc =
        store_pg_exists(ps, conn, "SELECT 1 FROM experiments WHERE id = $1::text", c->id, &exists);
    if (rc == STORE_OK && !exists)
        rc = STORE_ENOTFOUND;
    if (rc == STORE_OK)
        rc = store_pg_progress(ps, conn, c->id, &c->p);
    return rc;
}

int store_pg_experiment_progress(struct store *s, const char *id, struct store_progress *out)
{
    struct progress_ctx c;
    int rc;

    if (!id)
        return STORE_EINVAL;
    c.id = id;
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, experiment_progress_body, &c);
    if (rc == STORE_OK)
        *out = c.p;
    return rc;
}

struct summary_ctx {
    const char *id;
    json_t *summary;
};

static int set_summary_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct summary_ctx *c = vctx;
    struct pg_params p;
    PGresult *res = NULL;
    int rc;

    pgp_init(&p);
    pgp_text(&p, c->id);
    pgp_json(&p, c->summary);
    pgp_int(&p, store__now_ms());
    rc = store_pg_query(ps, conn,
                        "UPDATE experiments SET summary = $2::json, updated_at = $3::bigint "
                        "WHERE id = $1::text",
                        &p, &res);
    if (rc == STORE_OK && store_pg_changes(res) == 0)
        rc = STORE_ENOTFOUND;
    PQclear(res);
    return rc;
}

int store_pg_experiment_set_summary(struct store *s, const char *id, json_t *summary)
{
    struct summary_ctx c;
    if (!id)
        return STORE_EINVAL;
    c.id = id;
    c.summary = summary;
    return store_pg_tx(store_pgs(s), PG_TX_WRITE, set_summary_body, &c);
}

/* Within a transaction holding the experiment's lock: a "status" event with its progress. */
static int status_event(struct pg_store *ps, PGconn *conn, const char *exp_id,
                        enum store_exp_status status, int64_t now)
{
    struct store_progress p;
    json_t *data = NULL;
    int rc;

    rc = store_pg_progress(ps, conn, exp_id, &p);
    if (rc != STORE_OK)
        goto done;
    data = json_pack("{ssso}", "status", store_exp_status_name(status), "progress",
                     store_pg_progress_json(&p));
    if (!data) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_pg_event_add(ps, conn, exp_id, "status", data, now, NULL);
done:
    json_decref(data);
    return rc;
}

/* Runs a statement with parameters (text $1, and bigint $2 when it uses one); *changed
 * (optional) receives the rows changed. */
static int exec_text_int(struct pg_store *ps, PGconn *conn, const char *sql, const char *text,
                         int64_t value, int64_t *changed)
{
    struct pg_params p;
    PGresult *res = NULL;
    int rc;

    pgp_init(&p);
    pgp_text(&p, text);
    if (strstr(sql, "$2"))
        pgp_int(&p, value);
    rc = store_pg_query(ps, conn, sql, &p, &res);
    if (rc == STORE_OK && changed)
        *changed = store_pg_changes(res);
    PQclear(res);
    return rc;
}

struct cancel_ctx {
    const char *id;
    int did;
};

static int cancel_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct cancel_ctx *c = vctx;
    enum store_exp_status status = STORE_EXP_QUEUED;
    int64_t now = store__now_ms();
    int rc, found = 0;

    c->did = 0;
    rc = store_pg_lock_experiment(ps, conn, c->id, &found, &status);
    if (rc != STORE_OK)
        return rc;
    if (!found)
        return STORE_ENOTFOUND;
    if (status == STORE_EXP_FINISHED)
        return STORE_ECONFLICT;
    if (status == STORE_EXP_CANCELLED)
        return STORE_OK; /* already cancelled: nothing to do */
    rc = exec_text_int(ps, conn,
                       "UPDATE runs SET status = 'cancelled', finished_at = $2::bigint "
                       "WHERE experiment_id = $1::text AND status = 'queued'",
                       c->id, now, NULL);
    if (rc == STORE_OK)
        rc = exec_text_int(ps, conn,
                           "UPDATE experiments SET status = 'cancelled', cancel_requested = true, "
                           "finished_at = $2::bigint, updated_at = $2::bigint WHERE id = $1::text",
                           c->id, now, NULL);
    if (rc == STORE_OK)
        rc = status_event(ps, conn, c->id, STORE_EXP_CANCELLED, now);
    if (rc == STORE_OK)
        c->did = 1;
    return rc;
}

int store_pg_experiment_cancel(struct store *s, const char *id, int *changed)
{
    struct cancel_ctx c;
    int rc;

    if (!id)
        return STORE_EINVAL;
    c.id = id;
    c.did = 0;
    rc = store_pg_tx(store_pgs(s), PG_TX_WRITE, cancel_body, &c);
    if (rc == STORE_OK)
        *changed = c.did;
    return rc;
}

static int experiment_delete_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    int64_t n = 0;
    int rc = exec_text_int(ps, conn, "DELETE FROM experiments WHERE id = $1::text", vctx, 0, &n);
    if (rc == STORE_OK && n == 0)
        rc = STORE_ENOTFOUND;
    return rc;
}

int store_pg_experiment_delete(struct store *s, const char *id)
{
    if (!id)
        return STORE_EINVAL;
    return store_pg_tx(store_pgs(s), PG_TX_WRITE, experiment_delete_body, (void *)id);
}

/* ---- the queue ---- */

#define CLAIM_CANDIDATES 8

struct claim_ctx {
    const char *worker_id;
    size_t max_runs;
    int64_t now;
    struct store_claim *c;
};

static int cmp_claimed(const void *a, const void *b)
{
    const struct store_claimed_run *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

/* Within the claim transaction, experiment exp_id locked: take up to max_runs of its queued
 * runs under c->token. */
static int take_runs(struct pg_store *ps, PGconn *conn, struct claim_ctx *x, const char *exp_id)
{
    struct store_claim *c = x->c;
    struct pg_params p;
    PGresult *res = NULL;
    int rc, i;

    pgp_init(&p);
    pgp_text(&p, c->token);
    pgp_text(&p, x->worker_id);
    pgp_int(&p, x->now);
    pgp_text(&p, exp_id);
    pgp_int(&p, (int64_t)x->max_runs);
    rc = store_pg_query(
        ps, conn,
        "UPDATE runs SET status = 'running', claim_token = $1::text, claimed_by = $2::text, "
        "lease_at = $3::bigint, started_at = $3::bigint, attempts = attempts + 1 "
        "WHERE id IN (SELECT id FROM runs WHERE experiment_id = $4::text AND status = 'queued' "
        "             ORDER BY restart_index LIMIT $5::bigint FOR UPDATE SKIP LOCKED) "
        "RETURNING id, restart_index, seed, attempts",
        &p, &res);
    for (i = 0; rc == STORE_OK && i < PQntuples(res); i++) {
        struct store_claimed_run *r = &c->runs[c->n_runs];
        if (c->n_runs == x->max_runs) {
            rc = STORE_EINTERNAL;
            break;
        }
        rc = store_pg_col_id(res, i, 0, r->id);
        r->index = store_pg_col_int(res, i, 1);
        r->seed = (uint64_t)store_pg_col_int(res, i, 2);
        r->attempts = store_pg_col_int(res, i, 3);
        if (rc == STORE_OK)
            c->n_runs++;
    }
    PQclear(res);
    if (rc == STORE_OK)
        qsort(c->runs, c->n_runs, sizeof *c->runs, cmp_claimed);
    return rc;
}

/* Lock one candidate and claim from it if it is still claimable; *took = runs claimed. */
static int claim_from(struct pg_store *ps, PGconn *conn, struct claim_ctx *x, const char *exp_id)
{
    struct store_claim *c = x->c;
    struct pg_params p;
    PGresult *res = NULL;
    enum store_exp_status status;
    int rc;

    pgp_init(&p);
    pgp_text(&p, exp_id);
    rc = store_pg_query(ps, conn,
                        "SELECT id, dataset_id, architecture_id, spec, seed, status "
                        "FROM experiments WHERE id = $1::text "
                        "AND status IN ('queued', 'running') AND NOT cancel_requested FOR UPDATE",
                        &p, &res);
    if (rc != STORE_OK || PQntuples(res) == 0)
        goto done;
    rc = store_pg_col_id(res, 0, 0, c->experiment_id);
    if (rc == STORE_OK)
        rc = store_pg_col_id(res, 0, 1, c->dataset_id);
    if (rc == STORE_OK)
        rc = store_pg_col_id(res, 0, 2, c->architecture_id);
    if (rc == STORE_OK && store_exp_status_parse(PQgetvalue(res, 0, 5), &status) != STORE_OK)
        rc = STORE_ECORRUPT;
    if (rc != STORE_OK)
        goto done;
    c->seed = (uint64_t)store_pg_col_int(res, 0, 4);
    rc = take_runs(ps, conn, x, exp_id);
    if (rc != STORE_OK || c->n_runs == 0)
        goto done;
    json_decref(c->spec);
    rc = store_pg_col_json(res, 0, 3, &c->spec);
    /* Points written by an earlier attempt of these runs would mix with the new ones. */
    if (rc == STORE_OK)
        rc = exec_text_int(ps, conn,
                           "DELETE FROM trajectory_chunks WHERE run_id IN "
                           "(SELECT id FROM runs WHERE claim_token = $1::text)",
                           c->token, 0, NULL);
    if (rc == STORE_OK)
        rc = exec_text_int(ps, conn,
                           "UPDATE experiments SET status = 'running', updated_at = $2::bigint, "
                           "last_claim_seq = nextval('claim_seq') WHERE id = $1::text",
                           exp_id, x->now, NULL);
    if (rc == STORE_OK && status == STORE_EXP_QUEUED)
        rc = status_event(ps, conn, exp_id, STORE_EXP_RUNNING, x->now);
done:
    PQclear(res);
    return rc;
}

static int claim_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct claim_ctx *x = vctx;
    struct pg_params p;
    PGresult *res = NULL;
    int rc, i;

    x->c->n_runs = 0;
    x->c->experiment_id[0] = '\0';
    pgp_init(&p);
    pgp_int(&p, CLAIM_CANDIDATES);
    rc = store_pg_query(
        ps, conn,
        "SELECT e.id FROM experiments e "
        "WHERE e.status IN ('queued', 'running') AND NOT e.cancel_requested "
        "  AND EXISTS (SELECT 1 FROM runs r WHERE r.experiment_id = e.id AND r.status = 'queued') "
        "ORDER BY (SELECT count(*) FROM runs r "
        "          WHERE r.experiment_id = e.id AND r.status = 'running'), "
        "         e.last_claim_seq, e.seq "
        "LIMIT $1::bigint",
        &p, &res);
    for (i = 0; rc == STORE_OK && x->c->n_runs == 0 && i < PQntuples(res); i++)
        rc = claim_from(ps, conn, x, PQgetvalue(res, i, 0));
    PQclear(res);
    return rc;
}

int store_pg_claim_runs(struct store *s, const char *worker_id, size_t max_runs,
                        struct store_claim **out)
{
    struct claim_ctx x;
    struct store_claim *c = NULL;
    int rc;

    *out = NULL;
    if (max_runs == 0 || max_runs > STORE_MAX_CLAIM)
        return STORE_EINVAL;
    c = calloc(1, sizeof *c);
    if (c)
        c->runs = calloc(max_runs, sizeof *c->runs);
    if (!c || !c->runs) {
        rc = STORE_ENOMEM;
        goto done;
    }
    if (ids_token(c->token, sizeof c->token) != 0) {
        rc = STORE_EINTERNAL;
        goto done;
    }
    x.worker_id = worker_id;
    x.max_runs = max_runs;
    x.now = store__now_ms();
    x.c = c;
    rc = store_pg_tx(store_pgs(s), PG_TX_WRITE, claim_body, &x);
    if (rc == STORE_OK && c->n_runs > 0) {
        *out = c;
        c = NULL;
    }
done:
    store_claim_free(c);
    return rc;
}

struct heartbeat_ctx {
    const char *token;
    int cancel_requested;
};

static int heartbeat_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct heartbeat_ctx *c = vctx;
    struct pg_params p;
    PGresult *res = NULL;
    int64_t n = 0;
    int rc;

    rc = exec_text_int(ps, conn,
                       "UPDATE runs SET lease_at = $2::bigint "
                       "WHERE claim_token = $1::text AND status = 'running'",
                       c->token, store__now_ms(), &n);
    if (rc != STORE_OK)
        return rc;
    if (n == 0)
        return STORE_ECONFLICT;
    pgp_init(&p);
    pgp_text(&p, c->token);
    rc = store_pg_query(ps, conn,
                        "SELECT e.cancel_requested FROM runs r "
                        "JOIN experiments e ON e.id = r.experiment_id "
                        "WHERE r.claim_token = $1::text LIMIT 1",
                        &p, &res);
    if (rc == STORE_OK && PQntuples(res) != 1)
        rc = STORE_EINTERNAL;
    if (rc == STORE_OK)
        c->cancel_requested = store_pg_col_bool(res, 0, 0);
    PQclear(res);
    return rc;
}

int store_pg_claim_heartbeat(struct store *s, const char *token, int *cancel_requested)
{
    struct heartbeat_ctx c;
    int rc;

    if (!token)
        return STORE_EINVAL;
    c.token = token;
    c.cancel_requested = 0;
    rc = store_pg_tx(store_pgs(s), PG_TX_WRITE, heartbeat_body, &c);
    if (rc == STORE_OK)
        *cancel_requested = c.cancel_requested;
    return rc;
}

/* ---- results ---- */

struct finish_ctx {
    const struct store_run_result *r;
    int64_t now;
};

static int run_finished_event(struct pg_store *ps, PGconn *conn, const char *exp_id,
                              const struct store_run_result *r, int64_t index, int64_t now)
{
    struct store_progress p;
    json_t *data = NULL;
    int rc;

    rc = store_pg_progress(ps, conn, exp_id, &p);
    if (rc != STORE_OK)
        goto done;
    data = json_object();
    if (!data || json_object_set_new(data, "run_id", json_string(r->run_id)) ||
        json_object_set_new(data, "index", json_integer((json_int_t)index)) ||
        json_object_set_new(data, "status", json_string(store_run_status_name(r->status))) ||
        json_object_set_new(data, "final_risk",
                            isfinite(r->final_risk) ? json_real(r->final_risk) : json_null()) ||
        json_object_set_new(data, "verdict",
                            r->verdict_label ? json_string(r->verdict_label) : json_null()) ||
        json_object_set_new(data, "progress", store_pg_progress_json(&p))) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_pg_event_add(ps, conn, exp_id, "run_finished", data, now, NULL);
done:
    json_decref(data);
    return rc;
}

/* Within a transaction holding the experiment's lock: finish it if every run is terminal. */
static int maybe_finish_experiment(struct pg_store *ps, PGconn *conn, const char *exp_id,
                                   int64_t now)
{
    int64_t n = 0;
    int rc = exec_text_int(ps, conn,
                           "UPDATE experiments SET status = 'finished', finished_at = $2::bigint, "
                           "updated_at = $2::bigint WHERE id = $1::text AND status = 'running' "
                           "AND NOT EXISTS (SELECT 1 FROM runs WHERE experiment_id = $1::text "
                           " AND status IN ('queued', 'running'))",
                           exp_id, now, &n);
    if (rc == STORE_OK && n == 0)
        rc = exec_text_int(ps, conn,
                           "UPDATE experiments SET updated_at = $2::bigint WHERE id = $1::text",
                           exp_id, now, NULL);
    else if (rc == STORE_OK)
        rc = status_event(ps, conn, exp_id, STORE_EXP_FINISHED, now);
    return rc;
}

static int finish_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct finish_ctx *c = vctx;
    const struct store_run_result *r = c->r;
    struct pg_params p;
    PGresult *res = NULL;
    char exp_id[STORE_ID_SIZE];
    int64_t index;
    int rc, found = 0;

    /* the experiment first (the lock order), then the fenced update of the run */
    pgp_init(&p);
    pgp_text(&p, r->run_id);
    rc = store_pg_query(ps, conn, "SELECT experiment_id FROM runs WHERE id = $1::text", &p, &res);
    if (rc == STORE_OK && PQntuples(res) == 0)
        rc = STORE_ENOTFOUND;
    if (rc == STORE_OK)
        rc = store_pg_col_id(res, 0, 0, exp_id);
    PQclear(res);
    res = NULL;
    if (rc == STORE_OK)
        rc = store_pg_lock_experiment(ps, conn, exp_id, &found, NULL);
    if (rc == STORE_OK && !found)
        rc = STORE_ENOTFOUND; /* deleted meanwhile */
    if (rc != STORE_OK)
        return rc;
    pgp_init(&p);
    pgp_text(&p, r->run_id);
    pgp_text(&p, r->token);
    pgp_text(&p, store_run_status_name(r->status));
    if (r->steps < 0)
        pgp_null(&p);
    else
        pgp_int(&p, r->steps);
    pgp_text(&p, r->stop_reason);
    pgp_real(&p, r->final_risk);
    pgp_real(&p, r->grad_norm);
    pgp_real(&p, r->param_norm);
    pgp_real(&p, r->initial_risk);
    pgp_json(&p, r->verdict);
    pgp_text(&p, r->verdict_label);
    pgp_text(&p, r->error);
    pgp_int(&p, c->now);
    rc = store_pg_query(
        ps, conn,
        "UPDATE runs SET status = $3::text, steps = $4::bigint, stop_reason = $5::text, "
        "final_risk = $6::float8, grad_norm = $7::float8, param_norm = $8::float8, "
        "initial_risk = $9::float8, verdict = $10::json, verdict_label = $11::text, "
        "error = $12::text, claim_token = NULL, lease_at = NULL, finished_at = $13::bigint "
        "WHERE id = $1::text AND status = 'running' AND claim_token = $2::text "
        "RETURNING restart_index",
        &p, &res);
    if (rc == STORE_OK && PQntuples(res) == 0)
        rc = STORE_ECONFLICT; /* stale token or terminal run: never rewritten */
    index = rc == STORE_OK ? store_pg_col_int(res, 0, 0) : 0;
    PQclear(res);
    if (rc == STORE_OK && r->params) {
        pgp_init(&p);
        pgp_text(&p, r->run_id);
        pgp_int(&p, (int64_t)r->n_params);
        pgp_f64(&p, r->params, r->n_params);
        rc = store_pg_query(ps, conn,
                            "INSERT INTO run_params (run_id, count, data) "
                            "VALUES ($1::text, $2::bigint, $3::bytea)",
                            &p, NULL);
    }
    if (rc == STORE_OK)
        rc = run_finished_event(ps, conn, exp_id, r, index, c->now);
    if (rc == STORE_OK)
        rc = maybe_finish_experiment(ps, conn, exp_id, c->now);
    return rc;
}

int store_pg_run_finish(struct store *s, const struct store_run_result *r)
{
    struct finish_ctx c;

    if (!r || !r->run_id || !r->token ||
        (r->status != STORE_RUN_FINISHED && r->status != STORE_RUN_FAILED &&
         r->status != STORE_RUN_CANCELLED) ||
        (r->n_params > 0 && !r->params))
        return STORE_EINVAL;
    c.r = r;
    c.now = store__now_ms();
    return store_pg_tx(store_pgs(s), PG_TX_WRITE, finish_body, &c);
}

/* ---- requeue and release ---- */

struct requeue_ctx {
    int64_t cutoff;
    int64_t requeued, failed;
    char error[96];
};

/* The values of column 0 of res as a Postgres array literal (ids: no quoting needed). */
static int array_of(const PGresult *res, char **out)
{
    struct sbuf b = {0};
    int i;

    *out = NULL;
    sb_add(&b, "{");
    for (i = 0; i < PQntuples(res); i++) {
        if (i > 0)
            sb_add(&b, ",");
        sb_add(&b, PQgetvalue(res, i, 0));
    }
    sb_add(&b, "}");
    if (b.oom) {
        free(b.p);
        return STORE_ENOMEM;
    }
    *out = b.p;
    return STORE_OK;
}

/* Runs sql (its ids in column 0) and returns them as an array literal; *n = how many. */
static int select_ids(struct pg_store *ps, PGconn *conn, const char *sql, struct pg_params *p,
                      char **array, int64_t *n)
{
    PGresult *res = NULL;
    int rc;

    *array = NULL;
    *n = 0;
    rc = store_pg_query(ps, conn, sql, p, &res);
    if (rc == STORE_OK)
        rc = array_of(res, array);
    if (rc == STORE_OK)
        *n = PQntuples(res);
    PQclear(res);
    return rc;
}

/* Drops the trajectories of the runs in the array literal ids. */
static int drop_chunks(struct pg_store *ps, PGconn *conn, const char *ids)
{
    struct pg_params p;
    pgp_init(&p);
    pgp_text(&p, ids);
    return store_pg_query(ps, conn, "DELETE FROM trajectory_chunks WHERE run_id = ANY($1::text[])",
                          &p, NULL);
}

static int requeue_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct requeue_ctx *c = vctx;
    struct pg_params p;
    PGresult *res = NULL;
    char *exps = NULL, *runs = NULL;
    int64_t now = store__now_ms(), n = 0;
    int rc, i;

    c->requeued = c->failed = 0;
    pgp_init(&p);
    pgp_int(&p, c->cutoff);
    rc = select_ids(ps, conn,
                    "SELECT id FROM experiments WHERE id IN "
                    "(SELECT experiment_id FROM runs "
                    " WHERE status = 'running' AND lease_at < $1::bigint) "
                    "ORDER BY id FOR UPDATE",
                    &p, &exps, &n);
    if (rc != STORE_OK || n == 0)
        goto done;
    /* Every condition below is re-read under the experiments' locks. */
    pgp_init(&p);
    pgp_text(&p, exps);
    pgp_int(&p, c->cutoff);
    pgp_int(&p, now);
    rc = store_pg_query(ps, conn,
                        "UPDATE runs SET status = 'cancelled', claim_token = NULL, "
                        "lease_at = NULL, finished_at = $3::bigint "
                        "WHERE experiment_id = ANY($1::text[]) AND status = 'running' "
                        "AND lease_at < $2::bigint AND experiment_id IN "
                        "(SELECT id FROM experiments WHERE cancel_requested)",
                        &p, NULL);
    /* Only the run that was executing lost an attempt (see DESIGN): the rest get theirs back
     * before the max_attempts check below, as on the drain path. */
    if (rc == STORE_OK) {
        pgp_init(&p);
        pgp_text(&p, exps);
        pgp_int(&p, c->cutoff);
        rc = store_pg_query(ps, conn,
                            "UPDATE runs SET attempts = greatest(attempts - 1, 0) "
                            "WHERE experiment_id = ANY($1::text[]) AND status = 'running' "
                            "AND lease_at < $2::bigint AND restart_index > "
                            "(SELECT min(r.restart_index) FROM runs r "
                            " WHERE r.claim_token = runs.claim_token AND r.status = 'running')",
                            &p, NULL);
    }
    if (rc == STORE_OK) {
        pgp_init(&p);
        pgp_text(&p, exps);
        pgp_int(&p, c->cutoff);
        pgp_int(&p, now);
        pgp_int(&p, ps->max_attempts);
        pgp_text(&p, c->error);
        rc = store_pg_query(ps, conn,
                            "UPDATE runs SET status = 'failed', claim_token = NULL, "
                            "lease_at = NULL, finished_at = $3::bigint, error = $5::text "
                            "WHERE experiment_id = ANY($1::text[]) AND status = 'running' "
                            "AND lease_at < $2::bigint AND attempts >= $4::bigint",
                            &p, &res);
        if (rc == STORE_OK)
            c->failed = store_pg_changes(res);
        PQclear(res);
        res = NULL;
    }
    if (rc == STORE_OK) {
        pgp_init(&p);
        pgp_text(&p, exps);
        pgp_int(&p, c->cutoff);
        rc = select_ids(ps, conn,
                        "UPDATE runs SET status = 'queued', claim_token = NULL, lease_at = NULL, "
                        "started_at = NULL WHERE experiment_id = ANY($1::text[]) "
                        "AND status = 'running' AND lease_at < $2::bigint RETURNING id",
                        &p, &runs, &c->requeued);
    }
    if (rc == STORE_OK && c->requeued > 0)
        rc = drop_chunks(ps, conn, runs);
    if (rc == STORE_OK) {
        /* experiments left with no live run (all failed or cancelled) are finished now */
        pgp_init(&p);
        pgp_text(&p, exps);
        pgp_int(&p, now);
        rc = store_pg_query(ps, conn,
                            "UPDATE experiments SET status = 'finished', finished_at = $2::bigint, "
                            "updated_at = $2::bigint WHERE id = ANY($1::text[]) "
                            "AND status = 'running' AND NOT EXISTS "
                            "(SELECT 1 FROM runs r WHERE r.experiment_id = experiments.id "
                            " AND r.status IN ('queued', 'running')) RETURNING id",
                            &p, &res);
        for (i = 0; rc == STORE_OK && i < PQntuples(res); i++)
            rc = status_event(ps, conn, PQgetvalue(res, i, 0), STORE_EXP_FINISHED, now);
        PQclear(res);
    }
done:
    free(exps);
    free(runs);
    return rc;
}

int store_pg_requeue_stale(struct store *s, int64_t lease_before_ms, int64_t *requeued,
                           int64_t *failed)
{
    struct pg_store *ps = store_pgs(s);
    struct requeue_ctx c;
    int rc;

    memset(&c, 0, sizeof c);
    c.cutoff = lease_before_ms;
    snprintf(c.error, sizeof c.error, "its worker was lost %d times", ps->max_attempts);
    rc = store_pg_tx(ps, PG_TX_WRITE, requeue_body, &c);
    if (rc != STORE_OK)
        return rc;
    if (requeued)
        *requeued = c.requeued;
    if (failed)
        *failed = c.failed;
    return rc;
}

struct release_ctx {
    const char *token;
    int64_t requeued;
};

/* The drain path (store.h): the claim's experiment locked first; runs of a cancelled experiment
 * end `cancelled`; the rest go back to `queued` with the attempt returned, and their partial
 * trajectories are dropped. */
static int release_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct release_ctx *c = vctx;
    struct pg_params p;
    char *exps = NULL, *runs = NULL;
    int64_t n = 0;
    int rc;

    c->requeued = 0;
    pgp_init(&p);
    pgp_text(&p, c->token);
    rc = select_ids(ps, conn,
                    "SELECT id FROM experiments WHERE id IN "
                    "(SELECT experiment_id FROM runs WHERE claim_token = $1::text) "
                    "ORDER BY id FOR UPDATE",
                    &p, &exps, &n);
    if (rc != STORE_OK || n == 0)
        goto done;
    rc = exec_text_int(ps, conn,
                       "UPDATE runs SET status = 'cancelled', claim_token = NULL, "
                       "lease_at = NULL, finished_at = $2::bigint "
                       "WHERE claim_token = $1::text AND status = 'running' AND experiment_id IN "
                       "(SELECT id FROM experiments WHERE cancel_requested)",
                       c->token, store__now_ms(), NULL);
    if (rc == STORE_OK) {
        pgp_init(&p);
        pgp_text(&p, c->token);
        rc = select_ids(ps, conn,
                        "UPDATE runs SET status = 'queued', claim_token = NULL, lease_at = NULL, "
                        "started_at = NULL, attempts = greatest(attempts - 1, 0) "
                        "WHERE claim_token = $1::text AND status = 'running' RETURNING id",
                        &p, &runs, &c->requeued);
    }
    if (rc == STORE_OK && c->requeued > 0)
        rc = drop_chunks(ps, conn, runs);
done:
    free(exps);
    free(runs);
    return rc;
}

int store_pg_claim_release(struct store *s, const char *token, int64_t *requeued)
{
    struct release_ctx c;
    int rc;

    if (!token || !*token)
        return STORE_EINVAL;
    c.token = token;
    c.requeued = 0;
    rc = store_pg_tx(store_pgs(s), PG_TX_WRITE, release_body, &c);
    if (rc == STORE_OK && requeued)
        *requeued = c.requeued;
    return rc;
}

/* ---- runs ---- */

#define RUN_COLS                                                                                   \
    "r.id, r.experiment_id, r.restart_index, r.seed, r.status, r.origin, r.steps, "                \
    "r.stop_reason, r.final_risk, r.grad_norm, r.param_norm, r.initial_risk, r.verdict, "          \
    "r.verdict_label, r.error, r.claimed_by, r.attempts, r.lease_at, r.started_at, "               \
    "r.finished_at, EXISTS (SELECT 1 FROM run_params p WHERE p.run_id = r.id), "                   \
    "coalesce(r.final_risk, 'Infinity'::float8)"
#define RUN_COL_RISK_KEY 21

static int parse_origin(const char *name, enum store_run_origin *o)
{
    int i;
    for (i = 0; name && i <= STORE_ORIGIN_IMPORTED; i++) {
        if (strcmp(name, store_run_origin_name((enum store_run_origin)i)) == 0) {
            *o = (enum store_run_origin)i;
            return STORE_OK;
        }
    }
    return STORE_ECORRUPT;
}

static int read_run(const PGresult *res, int row, struct store_run *r)
{
    int rc;

    memset(r, 0, sizeof *r);
    rc = store_pg_col_id(res, row, 0, r->id);
    if (rc == STORE_OK)
        rc = store_pg_col_id(res, row, 1, r->experiment_id);
    if (rc == STORE_OK && store_run_status_parse(PQgetvalue(res, row, 4), &r->status) != STORE_OK)
        rc = STORE_ECORRUPT;
    if (rc == STORE_OK)
        rc = parse_origin(PQgetvalue(res, row, 5), &r->origin);
    if (rc == STORE_OK)
        rc = store_pg_col_text(res, row, 7, &r->stop_reason);
    if (rc == STORE_OK)
        rc = store_pg_col_json(res, row, 12, &r->verdict);
    if (rc == STORE_OK)
        rc = store_pg_col_text(res, row, 13, &r->verdict_label);
    if (rc == STORE_OK)
        rc = store_pg_col_text(res, row, 14, &r->error);
    if (rc == STORE_OK)
        rc = store_pg_col_text(res, row, 15, &r->claimed_by);
    if (rc != STORE_OK)
        goto done;
    r->index = store_pg_col_int(res, row, 2);
    r->seed = (uint64_t)store_pg_col_int(res, row, 3);
    r->steps = store_pg_is_null(res, row, 6) ? -1 : store_pg_col_int(res, row, 6);
    r->final_risk = store_pg_col_real(res, row, 8);
    r->grad_norm = store_pg_col_real(res, row, 9);
    r->param_norm = store_pg_col_real(res, row, 10);
    r->initial_risk = store_pg_col_real(res, row, 11);
    r->attempts = store_pg_col_int(res, row, 16);
    r->lease_at_ms = store_pg_col_int(res, row, 17);
    r->started_at_ms = store_pg_col_int(res, row, 18);
    r->finished_at_ms = store_pg_col_int(res, row, 19);
    r->has_params = store_pg_col_bool(res, row, 20);
done:
    if (rc != STORE_OK)
        store__run_clear(r);
    return rc;
}

struct run_get_ctx {
    const char *id;
    struct store_run *r;
};

static int run_get_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct run_get_ctx *c = vctx;
    struct pg_params p;
    PGresult *res = NULL;
    int rc;

    store__run_clear(c->r);
    pgp_init(&p);
    pgp_text(&p, c->id);
    rc =
        store_pg_query(ps, conn, "SELECT " RUN_COLS " FROM runs r WHERE r.id = $1::text", &p, &res);
    if (rc == STORE_OK)
        rc = PQntuples(res) == 0 ? STORE_ENOTFOUND : read_run(res, 0, c->r);
    PQclear(res);
    return rc;
}

int store_pg_run_get(struct store *s, const char *id, struct store_run **out)
{
    struct run_get_ctx c;
    int rc;

    *out = NULL;
    if (!id)
        return STORE_EINVAL;
    c.id = id;
    c.r = calloc(1, sizeof *c.r);
    if (!c.r)
        return STORE_ENOMEM;
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, run_get_body, &c);
    if (rc == STORE_OK)
        *out = c.r;
    else
        store_run_free(c.r);
    return rc;
}

/* Keyset conditions: by index, the cursor is (index); by risk, (risk key bits, index) where the
 * risk key is final_risk with unknown as +inf, so the order is total and stable. */
/* $M the spurious filter (enum store_spurious_mode, 0: none), $B the best risk, $T the
 * tolerance: $7-$9 by index, $8-$10 by risk (where $7 is the cursor's risk). */
#define RUN_LIST_SPURIOUS(m, b, t)                                                                 \
    "AND (" m " = 0 OR (" m                                                                        \
    " = 1 AND " STORE_PG_FLAG_TRUE("r.", b, t) ") OR (" m                                          \
                                               " = 2 AND " STORE_PG_FLAG_FALSE("r.", b, t) ")) "
static const char run_list_by_index[] =
    "SELECT " RUN_COLS " FROM runs r WHERE r.experiment_id = $1::text "
    "AND ($2::text IS NULL OR r.status = $2::text) "
    "AND ($3::text IS NULL OR r.verdict_label = $3::text) "
    "AND (NOT $4::boolean OR r.restart_index > $5::bigint) " RUN_LIST_SPURIOUS(
        "$7::integer", "$8::float8", "$9::float8") "ORDER BY r.restart_index LIMIT $6::bigint";
static const char run_list_by_risk[] =
    "SELECT " RUN_COLS " FROM runs r WHERE r.experiment_id = $1::text "
    "AND ($2::text IS NULL OR r.status = $2::text) "
    "AND ($3::text IS NULL OR r.verdict_label = $3::text) "
    "AND (NOT $4::boolean OR (coalesce(r.final_risk, 'Infinity'::float8), r.restart_index) > "
    "($7::float8, $5::bigint)) " RUN_LIST_SPURIOUS(
        "$8::integer", "$9::float8",
        "$10::float8") "ORDER BY coalesce(r.final_risk, 'Infinity'::float8), r.restart_index LIMIT "
                       "$6::bigint";

struct run_list_ctx {
    const char *exp_id;
    const struct store_run_filter *f;
    const struct store_spurious_filter *sf;
    size_t limit;
    int has_cursor;
    int64_t key[2];
    struct store_run_list *l;
};

static int run_list_cursor(const PGresult *res, int row, const struct store_run_filter *f,
                           char out[STORE_CURSOR_SIZE])
{
    int64_t key[2];
    double risk = store_pg_col_real(res, row, RUN_COL_RISK_KEY);
    uint64_t bits;

    key[0] = store_pg_col_int(res, row, 2);
    if (f->order == STORE_ORDER_INDEX)
        return store__cursor_encode("ri", key, 1, out);
    memcpy(&bits, &risk, sizeof bits);
    key[1] = (int64_t)bits;
    return store__cursor_encode("rr", key, 2, out);
}

static int run_list_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct run_list_ctx *c = vctx;
    const struct store_run_filter *f = c->f;
    struct pg_params p;
    PGresult *res = NULL;
    int rc, exists = 0, i, rows;

    while (c->l->n > 0)
        store__run_clear(&c->l->items[--c->l->n]);
    c->l->next_cursor[0] = '\0';
    rc = store_pg_exists(ps, conn, "SELECT 1 FROM experiments WHERE id = $1::text", c->exp_id,
                         &exists);
    if (rc == STORE_OK && !exists)
        rc = STORE_ENOTFOUND;
    if (rc != STORE_OK)
        return rc;
    pgp_init(&p);
    pgp_text(&p, c->exp_id);
    pgp_text(&p, f->status < 0 ? NULL : store_run_status_name((enum store_run_status)f->status));
    pgp_text(&p, f->verdict_label);
    pgp_bool(&p, c->has_cursor);
    pgp_int(&p, c->key[0]);
    pgp_int(&p, (int64_t)c->limit + 1);
    if (f->order == STORE_ORDER_FINAL_RISK) {
        double risk;
        uint64_t bits = (uint64_t)c->key[1];
        memcpy(&risk, &bits, sizeof risk);
        pgp_real(&p, risk);
    }
    pgp_int(&p, c->sf ? (int64_t)c->sf->mode : 0);
    pgp_real(&p, c->sf ? c->sf->best : NAN);
    pgp_real(&p, c->sf ? c->sf->tol_rel : 0.0);
    rc = store_pg_query(
        ps, conn, f->order == STORE_ORDER_INDEX ? run_list_by_index : run_list_by_risk, &p, &res);
    rows = rc == STORE_OK ? PQntuples(res) : 0;
    for (i = 0; rc == STORE_OK && i < rows && c->l->n < c->limit; i++) {
        rc = read_run(res, i, &c->l->items[c->l->n]);
        if (rc != STORE_OK)
            break;
        c->l->n++;
        if (c->l->n == c->limit && (size_t)rows > c->limit)
            rc = run_list_cursor(res, i, f, c->l->next_cursor);
    }
    PQclear(res);
    return rc;
}

static int run_list(struct store *s, const char *experiment_id, const struct store_run_filter *f,
                    const struct store_spurious_filter *sf, size_t limit, const char *cursor,
                    struct store_run_list **out)
{
    static const struct store_run_filter all = {-1, NULL, STORE_ORDER_INDEX};
    struct run_list_ctx c;
    int rc;

    *out = NULL;
    if (!f)
        f = &all;
    memset(&c, 0, sizeof c);
    c.l = calloc(1, sizeof *c.l);
    if (!c.l || !experiment_id || limit == 0 || limit > STORE_MAX_PAGE || f->status < -1 ||
        f->status >= STORE_RUN_STATUS_COUNT ||
        (f->order != STORE_ORDER_INDEX && f->order != STORE_ORDER_FINAL_RISK) ||
        (sf && ((sf->mode != STORE_SPURIOUS_TRUE && sf->mode != STORE_SPURIOUS_FALSE) ||
                !isfinite(sf->tol_rel) || sf->tol_rel < 0))) {
        rc = c.l ? STORE_EINVAL : STORE_ENOMEM;
        goto done;
    }
    c.has_cursor = cursor && *cursor;
    if (c.has_cursor) {
        if (f->order == STORE_ORDER_INDEX)
            rc = store__cursor_decode(cursor, "ri", c.key, 1);
        else
            rc = store__cursor_decode(cursor, "rr", c.key, 2);
        if (rc != STORE_OK)
            goto done;
    }
    c.l->items = calloc(limit, sizeof *c.l->items);
    if (!c.l->items) {
        rc = STORE_ENOMEM;
        goto done;
    }
    c.exp_id = experiment_id;
    c.f = f;
    c.sf = sf;
    c.limit = limit;
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, run_list_body, &c);
    if (rc == STORE_OK) {
        *out = c.l;
        c.l = NULL;
    }
done:
    store_run_list_free(c.l);
    return rc;
}

int store_pg_run_list(struct store *s, const char *experiment_id, const struct store_run_filter *f,
                      size_t limit, const char *cursor, struct store_run_list **out)
{
    return run_list(s, experiment_id, f, NULL, limit, cursor, out);
}

int store_pg_run_list_spurious(struct store *s, const char *experiment_id,
                               const struct store_run_filter *f,
                               const struct store_spurious_filter *sf, size_t limit,
                               const char *cursor, struct store_run_list **out)
{
    if (!sf) {
        if (out)
            *out = NULL;
        return STORE_EINVAL;
    }
    return run_list(s, experiment_id, f, sf, limit, cursor, out);
}

struct params_ctx {
    const char *run_id;
    double *params;
    size_t n;
};

static int params_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct params_ctx *c = vctx;
    struct pg_params p;
    PGresult *res = NULL;
    int64_t count;
    int rc;

    free(c->params);
    c->params = NULL;
    pgp_init(&p);
    pgp_text(&p, c->run_id);
    rc = store_pg_query(ps, conn, "SELECT count, data FROM run_params WHERE run_id = $1::text", &p,
                        &res);
    if (rc == STORE_OK && PQntuples(res) == 0)
        rc = STORE_ENOTFOUND;
    if (rc == STORE_OK) {
        count = store_pg_col_int(res, 0, 0);
        if (count < 0)
            rc = STORE_ECORRUPT;
        else
            rc = store_pg_col_f64(res, 0, 1, (size_t)count, &c->params);
        if (rc == STORE_OK)
            c->n = (size_t)count;
    }
    PQclear(res);
    return rc;
}

int store_pg_run_params_get(struct store *s, const char *run_id, double **params, size_t *n)
{
    struct params_ctx c;
    int rc;

    *params = NULL;
    if (!run_id)
        return STORE_EINVAL;
    c.run_id = run_id;
    c.params = NULL;
    c.n = 0;
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, params_body, &c);
    if (rc == STORE_OK) {
        *params = c.params;
        *n = c.n;
    } else {
        free(c.params);
    }
    return rc;
}
