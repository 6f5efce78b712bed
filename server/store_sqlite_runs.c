/* The SQLite backend's experiments and run queue (store.h): creating an experiment with its
 * queued runs, fair claiming, heartbeats, fenced results, cancellation, requeueing after a crash,
 * and the run lists.
 *
 * DESIGN
 * Every operation that changes state is one BEGIN IMMEDIATE transaction, so the single SQLite
 * writer lock serialises them: two workers can never claim the same run (the claim's UPDATE only
 * takes rows that are still `queued` inside the locked transaction), and a result can never land
 * on a run that was requeued or cancelled meanwhile (the finish UPDATE is fenced on
 * status = 'running' AND claim_token = the caller's token; a miss is STORE_ECONFLICT).
 * Invariants kept by these transactions (and backed by CHECK constraints in 0001_init.sql):
 *   - a run is `running` iff it has a claim token and a lease time;
 *   - a run is terminal iff finished_at is set; terminal runs are never updated again;
 *   - an experiment is `finished`/`cancelled` iff finished_at is set; it becomes `finished` in the
 *     same transaction that makes its last run terminal; `cancelled` implies cancel_requested.
 * Fairness: the claim picks, among experiments that have queued runs and are not cancelled, the
 * one with the fewest running runs, then the smallest last_claim_seq (a global counter bumped at
 * each claim — the experiment served longest ago), then the oldest. With one worker this is
 * round-robin between experiments; with many, load spreads evenly. The ordering is recomputed
 * per claim with the (experiment_id, status, restart_index) index; the number of active
 * experiments is small.
 * Attempts: the claim charges one attempt to every run of the batch (attempts + 1), but a worker
 * executes its batch one run at a time in restart_index order, and each finished run leaves
 * `running` through the fenced finish. So when a worker is lost (requeue_stale), of the runs
 * still `running` under a stale claim token only the lowest restart_index was executing; it
 * keeps its attempt, and every other run of that claim never started and gets its attempt back
 * (attempts - 1, as claim_release does for all of them) before the max_attempts check, in the
 * same transaction. Otherwise a run that crashes its worker would, after max_attempts crashes,
 * fail the never-started runs batched with it ("its worker was lost N times"). A worker that
 * died between two runs charges the next one, which is the best the store can know. */
#include "store_sqlite_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"

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

static int read_experiment(sqlite3_stmt *st, struct store_experiment *e)
{
    int rc;

    memset(e, 0, sizeof *e);
    rc = store_sq_col_id(st, 0, e->id);
    if (rc == STORE_OK)
        rc = store_sq_col_id(st, 1, e->dataset_id);
    if (rc == STORE_OK)
        rc = store_sq_col_id(st, 2, e->architecture_id);
    if (rc == STORE_OK)
        rc = store_sq_col_json(st, 3, &e->spec);
    if (rc == STORE_OK &&
        store_exp_status_parse((const char *)sqlite3_column_text(st, 4), &e->status) != STORE_OK)
        rc = STORE_ECORRUPT;
    if (rc == STORE_OK)
        rc = store_sq_col_text(st, 7, &e->idempotency_key);
    if (rc == STORE_OK)
        rc = store_sq_col_json(st, 11, &e->summary);
    if (rc != STORE_OK)
        goto done;
    e->restarts = store_sq_col_int(st, 5);
    e->seed = (uint64_t)store_sq_col_int(st, 6);
    e->created_at_ms = store_sq_col_int(st, 8);
    e->updated_at_ms = store_sq_col_int(st, 9);
    e->finished_at_ms = store_sq_col_int(st, 10);
    e->cancel_requested = (int)store_sq_col_int(st, 12);
    e->progress.queued = store_sq_col_int(st, 14);
    e->progress.running = store_sq_col_int(st, 15);
    e->progress.finished = store_sq_col_int(st, 16);
    e->progress.failed = store_sq_col_int(st, 17);
    e->progress.cancelled = store_sq_col_int(st, 18);
    const unsigned char *key = sqlite3_column_text(st, EXP_COL_KEY);
    if (key && strlen((const char *)key) < sizeof e->objective_key)
        memcpy(e->objective_key, key, strlen((const char *)key) + 1);
done:
    if (rc != STORE_OK)
        store__experiment_clear(e);
    return rc;
}

/* Within the transaction: the experiment already created under this idempotency key, if any. */
static int find_by_key(struct sqlite_store *ss, sqlite3 *db, const char *key, const char *hash,
                       char id_out[STORE_ID_SIZE], int *found)
{
    sqlite3_stmt *st = NULL;
    const char *stored;
    int rc, src;

    *found = 0;
    rc = store_sq_prepare(
        ss, db, "SELECT id, request_hash FROM experiments WHERE idempotency_key = ?1", &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, key);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        goto done;
    if (src != SQLITE_ROW) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "idempotency lookup");
        goto done;
    }
    stored = (const char *)sqlite3_column_text(st, 1);
    if (!stored || strcmp(stored, hash) != 0) {
        rc = STORE_ECONFLICT; /* the key was used for a different request */
        goto done;
    }
    rc = store_sq_col_id(st, 0, id_out);
    *found = rc == STORE_OK;
done:
    sqlite3_finalize(st);
    return rc;
}

static int insert_runs(struct sqlite_store *ss, sqlite3 *db, const char *exp_id,
                       const struct store_experiment_new *e)
{
    sqlite3_stmt *st = NULL;
    char run_id[STORE_ID_SIZE];
    int64_t i;
    int rc;

    rc = store_sq_prepare(ss, db,
                          "INSERT INTO runs (id, experiment_id, restart_index, seed) "
                          "VALUES (?1, ?2, ?3, ?4)",
                          &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 2, exp_id);
    for (i = 0; rc == STORE_OK && i < e->restarts; i++) {
        uint64_t seed = e->run_seeds ? e->run_seeds[i] : e->seed;
        if (ids_new(IDS_PREFIX_RUN, run_id, sizeof run_id) != 0) {
            rc = STORE_EINTERNAL;
            break;
        }
        rc = store_sq_bind_text(st, 1, run_id);
        if (rc == STORE_OK)
            rc = store_sq_bind_rc(sqlite3_bind_int64(st, 3, i));
        if (rc == STORE_OK)
            rc = store_sq_bind_rc(sqlite3_bind_int64(st, 4, (sqlite3_int64)seed));
        if (rc == STORE_OK)
            rc = store_sq_step_done(ss, db, st, "run insert");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

int store_sq_experiment_create(struct store *s, const struct store_experiment_new *e,
                               char id_out[STORE_ID_SIZE], int *existed)
{
    static const char sql[] =
        "INSERT INTO experiments (id, dataset_id, architecture_id, spec, restarts, seed, "
        "idempotency_key, request_hash, created_at, updated_at, objective_key) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)";
    /* without a key from the caller, the one 0002_objective_key.sql derives from the spec */
    static const char derive_key[] =
        "UPDATE experiments SET objective_key = "
        "(SELECT k.objective_key FROM experiment_derived_keys k WHERE k.id = ?1) WHERE id = ?1";
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char id[STORE_ID_SIZE];
    int rc, found = 0, exists = 0;
    int64_t now = store__now_ms();

    if (!e || !e->dataset_id || !e->architecture_id || !e->spec || e->restarts < 1 ||
        e->restarts > STORE_MAX_RESTARTS || (e->idempotency_key && !e->request_hash) ||
        (e->objective_key &&
         (e->objective_key[0] == '\0' || strlen(e->objective_key) >= STORE_KEY_SIZE))) {
        rc = STORE_EINVAL;
        goto done;
    }
    if (ids_new(IDS_PREFIX_EXPERIMENT, id, sizeof id) != 0) {
        rc = STORE_EINTERNAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 1);
    if (rc == STORE_OK && e->idempotency_key)
        rc = find_by_key(ss, db, e->idempotency_key, e->request_hash, id_out, &found);
    if (rc != STORE_OK || found)
        goto done;
    rc = store_sq_exists(ss, db, "SELECT 1 FROM datasets WHERE id = ?1", e->dataset_id, &exists);
    if (rc == STORE_OK && exists)
        rc = store_sq_exists(ss, db, "SELECT 1 FROM architectures WHERE id = ?1",
                             e->architecture_id, &exists);
    if (rc == STORE_OK && !exists)
        rc = STORE_ENOTFOUND;
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db, sql, &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 2, e->dataset_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 3, e->architecture_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_json(st, 4, e->spec);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 5, e->restarts));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 6, (sqlite3_int64)e->seed));
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 7, e->idempotency_key);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 8, e->idempotency_key ? e->request_hash : NULL);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 9, now));
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 10, e->objective_key);
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "experiment insert");
    if (rc == STORE_OK && !e->objective_key) {
        sqlite3_finalize(st);
        st = NULL;
        rc = store_sq_prepare(ss, db, derive_key, &st);
        if (rc == STORE_OK)
            rc = store_sq_bind_text(st, 1, id);
        if (rc == STORE_OK)
            rc = store_sq_step_done(ss, db, st, "experiment key");
    }
    if (rc == STORE_OK)
        rc = insert_runs(ss, db, id, e);
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
    if (rc == STORE_OK)
        memcpy(id_out, id, sizeof id);
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db); /* rolls back anything uncommitted */
    if (rc == STORE_OK)
        *existed = found;
    return rc;
}

int store_sq_experiment_get(struct store *s, const char *id, struct store_experiment **out)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct store_experiment *e = NULL;
    int rc, src;

    *out = NULL;
    e = calloc(1, sizeof *e);
    if (!e || !id) {
        rc = e ? STORE_EINVAL : STORE_ENOMEM;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc =
            store_sq_prepare(ss, db, "SELECT " EXP_COLS " FROM experiments e WHERE e.id = ?1", &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE
                 ? STORE_ENOTFOUND
                 : store_sq_fail(ss, db, sqlite3_extended_errcode(db), "experiment get");
        goto done;
    }
    rc = read_experiment(st, e);
    if (rc != STORE_OK)
        goto done;
    *out = e;
    e = NULL;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    free(e);
    return rc;
}

int store_sq_experiment_list(struct store *s, int status, size_t limit, const char *cursor,
                             struct store_experiment_list **out)
{
    static const char sql[] = "SELECT " EXP_COLS " FROM experiments e "
                              "WHERE (?1 = 0 OR e.seq < ?2) AND (?3 IS NULL OR e.status = ?3) "
                              "ORDER BY e.seq DESC LIMIT ?4";
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct store_experiment_list *l = NULL;
    int64_t after = 0, last_seq = 0;
    int rc, src, has_cursor = cursor && *cursor;

    *out = NULL;
    l = calloc(1, sizeof *l);
    if (!l || limit == 0 || limit > STORE_MAX_PAGE || status < -1 ||
        status >= STORE_EXP_STATUS_COUNT) {
        rc = l ? STORE_EINVAL : STORE_ENOMEM;
        goto done;
    }
    if (has_cursor) {
        rc = store__cursor_decode(cursor, "ex", &after, 1);
        if (rc != STORE_OK)
            goto done;
    }
    l->items = calloc(limit, sizeof *l->items);
    if (!l->items) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db, sql, &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int(st, 1, has_cursor));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 2, after));
    if (rc == STORE_OK)
        rc = store_sq_bind_text(
            st, 3, status < 0 ? NULL : store_exp_status_name((enum store_exp_status)status));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 4, (sqlite3_int64)limit + 1));
    if (rc != STORE_OK)
        goto done;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (l->n == limit) {
            rc = store__cursor_encode("ex", &last_seq, 1, l->next_cursor);
            if (rc != STORE_OK)
                goto done;
            break;
        }
        rc = read_experiment(st, &l->items[l->n]);
        if (rc != STORE_OK)
            goto done;
        l->n++;
        last_seq = store_sq_col_int(st, EXP_COL_SEQ);
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "experiment list");
        goto done;
    }
    *out = l;
    l = NULL;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    store_experiment_list_free(l);
    return rc;
}

int store_sq_experiment_progress(struct store *s, const char *id, struct store_progress *out)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    struct store_progress p;
    int rc, exists = 0;

    if (!id) {
        rc = STORE_EINVAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 0);
    if (rc == STORE_OK)
        rc = store_sq_exists(ss, db, "SELECT 1 FROM experiments WHERE id = ?1", id, &exists);
    if (rc == STORE_OK && !exists)
        rc = STORE_ENOTFOUND;
    if (rc == STORE_OK)
        rc = store_sq_progress(ss, db, id, &p);
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
    if (rc == STORE_OK)
        *out = p;
done:
    store_sq_release(ss, db);
    return rc;
}

int store_sq_experiment_set_summary(struct store *s, const char *id, json_t *summary)
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
        rc = store_sq_prepare(
            ss, db, "UPDATE experiments SET summary = ?2, updated_at = ?3 WHERE id = ?1", &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc == STORE_OK)
        rc = store_sq_bind_json(st, 2, summary);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 3, store__now_ms()));
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "summary");
    if (rc == STORE_OK && sqlite3_changes(db) == 0)
        rc = STORE_ENOTFOUND;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    return rc;
}

/* Within a transaction: a "status" event carrying the experiment's current progress. */
static int status_event(struct sqlite_store *ss, sqlite3 *db, const char *exp_id,
                        enum store_exp_status status, int64_t now)
{
    struct store_progress p;
    json_t *data = NULL;
    int rc;

    rc = store_sq_progress(ss, db, exp_id, &p);
    if (rc != STORE_OK)
        goto done;
    data = json_pack("{ssso}", "status", store_exp_status_name(status), "progress",
                     store_sq_progress_json(&p));
    if (!data) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_sq_event_add(ss, db, exp_id, "status", data, now, NULL);
done:
    json_decref(data);
    return rc;
}

int store_sq_experiment_cancel(struct store *s, const char *id, int *changed)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum store_exp_status status;
    int64_t now = store__now_ms();
    int rc, src, did = 0;

    if (!id) {
        rc = STORE_EINVAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 1);
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db, "SELECT status FROM experiments WHERE id = ?1", &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE
                 ? STORE_ENOTFOUND
                 : store_sq_fail(ss, db, sqlite3_extended_errcode(db), "cancel lookup");
        goto done;
    }
    if (store_exp_status_parse((const char *)sqlite3_column_text(st, 0), &status) != STORE_OK) {
        rc = STORE_ECORRUPT;
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (status == STORE_EXP_FINISHED) {
        rc = STORE_ECONFLICT;
        goto done;
    }
    if (status == STORE_EXP_CANCELLED)
        goto done; /* already cancelled: nothing to do */
    rc = store_sq_prepare(ss, db,
                          "UPDATE runs SET status = 'cancelled', finished_at = ?2 "
                          "WHERE experiment_id = ?1 AND status = 'queued'",
                          &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 2, now));
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "cancel runs");
    sqlite3_finalize(st);
    st = NULL;
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db,
                              "UPDATE experiments SET status = 'cancelled', cancel_requested = 1, "
                              "finished_at = ?2, updated_at = ?2 WHERE id = ?1",
                              &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 2, now));
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "cancel experiment");
    if (rc == STORE_OK)
        rc = status_event(ss, db, id, STORE_EXP_CANCELLED, now);
    if (rc == STORE_OK)
        did = 1;
done:
    sqlite3_finalize(st);
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
    store_sq_release(ss, db);
    if (rc == STORE_OK)
        *changed = did;
    return rc;
}

int store_sq_experiment_delete(struct store *s, const char *id)
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
        rc = store_sq_prepare(ss, db, "DELETE FROM experiments WHERE id = ?1", &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "experiment delete");
    if (rc == STORE_OK && sqlite3_changes(db) == 0)
        rc = STORE_ENOTFOUND;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    return rc;
}

/* ---- the queue ---- */

/* Within the claim transaction: the experiment to serve, or *found = 0. */
static int pick_experiment(struct sqlite_store *ss, sqlite3 *db, struct store_claim *c,
                           enum store_exp_status *status, int *found)
{
    static const char sql[] =
        "SELECT e.id, e.dataset_id, e.architecture_id, e.spec, e.seed, e.status "
        "FROM experiments e "
        "WHERE e.status IN ('queued', 'running') AND e.cancel_requested = 0 "
        "  AND EXISTS (SELECT 1 FROM runs r WHERE r.experiment_id = e.id AND r.status = 'queued') "
        "ORDER BY (SELECT count(*) FROM runs r "
        "          WHERE r.experiment_id = e.id AND r.status = 'running'), "
        "         e.last_claim_seq, e.seq "
        "LIMIT 1";
    sqlite3_stmt *st = NULL;
    int rc, src;

    *found = 0;
    rc = store_sq_prepare(ss, db, sql, &st);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        goto done;
    if (src != SQLITE_ROW) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "claim pick");
        goto done;
    }
    rc = store_sq_col_id(st, 0, c->experiment_id);
    if (rc == STORE_OK)
        rc = store_sq_col_id(st, 1, c->dataset_id);
    if (rc == STORE_OK)
        rc = store_sq_col_id(st, 2, c->architecture_id);
    if (rc == STORE_OK)
        rc = store_sq_col_json(st, 3, &c->spec);
    if (rc == STORE_OK &&
        store_exp_status_parse((const char *)sqlite3_column_text(st, 5), status) != STORE_OK)
        rc = STORE_ECORRUPT;
    c->seed = (uint64_t)store_sq_col_int(st, 4);
    *found = rc == STORE_OK;
done:
    sqlite3_finalize(st);
    return rc;
}

static int cmp_claimed(const void *a, const void *b)
{
    const struct store_claimed_run *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

/* Within the claim transaction: mark up to max_runs queued runs as running under c->token. */
static int take_runs(struct sqlite_store *ss, sqlite3 *db, struct store_claim *c,
                     const char *worker_id, size_t max_runs, int64_t now)
{
    static const char sql[] =
        "UPDATE runs SET status = 'running', claim_token = ?1, claimed_by = ?2, lease_at = ?3, "
        "started_at = ?3, attempts = attempts + 1 "
        "WHERE id IN (SELECT id FROM runs WHERE experiment_id = ?4 AND status = 'queued' "
        "             ORDER BY restart_index LIMIT ?5) "
        "RETURNING id, restart_index, seed, attempts";
    sqlite3_stmt *st = NULL;
    int rc, src;

    rc = store_sq_prepare(ss, db, sql, &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, c->token);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 2, worker_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 3, now));
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 4, c->experiment_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 5, (sqlite3_int64)max_runs));
    if (rc != STORE_OK)
        goto done;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_claimed_run *r = &c->runs[c->n_runs];
        if (c->n_runs == max_runs) {
            rc = STORE_EINTERNAL;
            goto done;
        }
        rc = store_sq_col_id(st, 0, r->id);
        if (rc != STORE_OK)
            goto done;
        r->index = store_sq_col_int(st, 1);
        r->seed = (uint64_t)store_sq_col_int(st, 2);
        r->attempts = store_sq_col_int(st, 3);
        c->n_runs++;
    }
    if (src != SQLITE_DONE) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "claim update");
        goto done;
    }
    qsort(c->runs, c->n_runs, sizeof *c->runs, cmp_claimed);
done:
    sqlite3_finalize(st);
    return rc;
}

/* Run a one-parameter (text ?1) + optional int (?2) statement to completion. */
static int exec_text_int(struct sqlite_store *ss, sqlite3 *db, const char *sql, const char *text,
                         int64_t value)
{
    sqlite3_stmt *st = NULL;
    int rc = store_sq_prepare(ss, db, sql, &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, text);
    if (rc == STORE_OK && sqlite3_bind_parameter_count(st) >= 2)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 2, value));
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, sql);
    sqlite3_finalize(st);
    return rc;
}

int store_sq_claim_runs(struct store *s, const char *worker_id, size_t max_runs,
                        struct store_claim **out)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    struct store_claim *c = NULL;
    enum store_exp_status status = STORE_EXP_QUEUED;
    int64_t now = store__now_ms();
    int rc, found = 0;

    *out = NULL;
    if (max_runs == 0 || max_runs > STORE_MAX_CLAIM) {
        rc = STORE_EINVAL;
        goto done;
    }
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
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 1);
    if (rc == STORE_OK)
        rc = pick_experiment(ss, db, c, &status, &found);
    if (rc != STORE_OK || !found)
        goto done;
    rc = take_runs(ss, db, c, worker_id, max_runs, now);
    /* Points written by an earlier attempt of these runs would mix with the new ones. */
    if (rc == STORE_OK)
        rc = exec_text_int(ss, db,
                           "DELETE FROM trajectory_chunks WHERE run_id IN "
                           "(SELECT id FROM runs WHERE claim_token = ?1)",
                           c->token, 0);
    if (rc == STORE_OK)
        rc = exec_text_int(ss, db,
                           "UPDATE experiments SET status = 'running', updated_at = ?2, "
                           "last_claim_seq = (SELECT max(last_claim_seq) FROM experiments) + 1 "
                           "WHERE id = ?1",
                           c->experiment_id, now);
    if (rc == STORE_OK && status == STORE_EXP_QUEUED)
        rc = status_event(ss, db, c->experiment_id, STORE_EXP_RUNNING, now);
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
    if (rc == STORE_OK && c->n_runs > 0) {
        *out = c;
        c = NULL;
    }
done:
    if (rc == STORE_OK && !found)
        rc = store_sq_commit(ss, db);
    store_sq_release(ss, db);
    store_claim_free(c);
    return rc;
}

int store_sq_claim_heartbeat(struct store *s, const char *token, int *cancel_requested)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc, src;

    if (!token) {
        rc = STORE_EINVAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 1);
    if (rc == STORE_OK)
        rc = exec_text_int(ss, db,
                           "UPDATE runs SET lease_at = ?2 "
                           "WHERE claim_token = ?1 AND status = 'running'",
                           token, store__now_ms());
    if (rc != STORE_OK)
        goto done;
    if (sqlite3_changes(db) == 0) {
        rc = STORE_ECONFLICT;
        goto done;
    }
    rc = store_sq_prepare(ss, db,
                          "SELECT e.cancel_requested FROM runs r "
                          "JOIN experiments e ON e.id = r.experiment_id "
                          "WHERE r.claim_token = ?1 LIMIT 1",
                          &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, token);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = store_sq_fail(ss, db, src == SQLITE_DONE ? SQLITE_ERROR : src, "heartbeat");
        goto done;
    }
    *cancel_requested = sqlite3_column_int(st, 0) != 0;
    sqlite3_finalize(st);
    st = NULL;
    rc = store_sq_commit(ss, db);
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    return rc;
}

/* The fenced UPDATE of run_finish; *hit = 0 when the run is not running under this token. */
static int finish_update(struct sqlite_store *ss, sqlite3 *db, const struct store_run_result *r,
                         int64_t now, char exp_id[STORE_ID_SIZE], int64_t *index, int *hit)
{
    static const char sql[] =
        "UPDATE runs SET status = ?3, steps = ?4, stop_reason = ?5, final_risk = ?6, "
        "grad_norm = ?7, param_norm = ?8, initial_risk = ?9, verdict = ?10, verdict_label = ?11, "
        "error = ?12, claim_token = NULL, lease_at = NULL, finished_at = ?13 "
        "WHERE id = ?1 AND status = 'running' AND claim_token = ?2 "
        "RETURNING experiment_id, restart_index";
    sqlite3_stmt *st = NULL;
    int rc, src;

    *hit = 0;
    rc = store_sq_prepare(ss, db, sql, &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, r->run_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 2, r->token);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 3, store_run_status_name(r->status));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(r->steps < 0 ? sqlite3_bind_null(st, 4)
                                           : sqlite3_bind_int64(st, 4, r->steps));
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 5, r->stop_reason);
    if (rc == STORE_OK)
        rc = store_sq_bind_real(st, 6, r->final_risk);
    if (rc == STORE_OK)
        rc = store_sq_bind_real(st, 7, r->grad_norm);
    if (rc == STORE_OK)
        rc = store_sq_bind_real(st, 8, r->param_norm);
    if (rc == STORE_OK)
        rc = store_sq_bind_real(st, 9, r->initial_risk);
    if (rc == STORE_OK)
        rc = store_sq_bind_json(st, 10, r->verdict);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 11, r->verdict_label);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 12, r->error);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 13, now));
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        rc = store_sq_col_id(st, 0, exp_id);
        *index = store_sq_col_int(st, 1);
        *hit = rc == STORE_OK;
        src = sqlite3_step(st);
    }
    if (src != SQLITE_DONE)
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "run finish");
done:
    sqlite3_finalize(st);
    return rc;
}

static int insert_params(struct sqlite_store *ss, sqlite3 *db, const char *run_id,
                         const double *params, size_t n)
{
    sqlite3_stmt *st = NULL;
    int rc = store_sq_prepare(
        ss, db, "INSERT INTO run_params (run_id, count, data) VALUES (?1, ?2, ?3)", &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, run_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 2, (sqlite3_int64)n));
    if (rc == STORE_OK)
        rc = store_sq_bind_f64(st, 3, params, n);
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "params insert");
    sqlite3_finalize(st);
    return rc;
}

/* Within a transaction: finish a running experiment whose runs are all terminal. */
static int maybe_finish_experiment(struct sqlite_store *ss, sqlite3 *db, const char *exp_id,
                                   int64_t now, int *finished)
{
    int rc = exec_text_int(ss, db,
                           "UPDATE experiments SET status = 'finished', finished_at = ?2, "
                           "updated_at = ?2 WHERE id = ?1 AND status = 'running' AND NOT EXISTS "
                           "(SELECT 1 FROM runs WHERE experiment_id = ?1 "
                           " AND status IN ('queued', 'running'))",
                           exp_id, now);
    *finished = rc == STORE_OK && sqlite3_changes(db) > 0;
    if (rc == STORE_OK && !*finished)
        rc = exec_text_int(ss, db, "UPDATE experiments SET updated_at = ?2 WHERE id = ?1", exp_id,
                           now);
    if (rc == STORE_OK && *finished)
        rc = status_event(ss, db, exp_id, STORE_EXP_FINISHED, now);
    return rc;
}

static int run_finished_event(struct sqlite_store *ss, sqlite3 *db, const char *exp_id,
                              const struct store_run_result *r, int64_t index, int64_t now)
{
    struct store_progress p;
    json_t *data = NULL;
    int rc;

    rc = store_sq_progress(ss, db, exp_id, &p);
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
        json_object_set_new(data, "progress", store_sq_progress_json(&p))) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_sq_event_add(ss, db, exp_id, "run_finished", data, now, NULL);
done:
    json_decref(data);
    return rc;
}

int store_sq_run_finish(struct store *s, const struct store_run_result *r)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    char exp_id[STORE_ID_SIZE];
    int64_t index = 0, now = store__now_ms();
    int rc, hit = 0, exists = 0, finished = 0;

    if (!r || !r->run_id || !r->token ||
        (r->status != STORE_RUN_FINISHED && r->status != STORE_RUN_FAILED &&
         r->status != STORE_RUN_CANCELLED) ||
        (r->n_params > 0 && !r->params)) {
        rc = STORE_EINVAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 1);
    if (rc == STORE_OK)
        rc = finish_update(ss, db, r, now, exp_id, &index, &hit);
    if (rc != STORE_OK)
        goto done;
    if (!hit) {
        rc = store_sq_exists(ss, db, "SELECT 1 FROM runs WHERE id = ?1", r->run_id, &exists);
        if (rc == STORE_OK)
            rc = exists ? STORE_ECONFLICT : STORE_ENOTFOUND;
        goto done;
    }
    if (r->params)
        rc = insert_params(ss, db, r->run_id, r->params, r->n_params);
    if (rc == STORE_OK)
        rc = run_finished_event(ss, db, exp_id, r, index, now);
    if (rc == STORE_OK)
        rc = maybe_finish_experiment(ss, db, exp_id, now, &finished);
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
done:
    store_sq_release(ss, db);
    return rc;
}

/* Runs an UPDATE with (?1 cutoff, ?2 now, ?3 int) and reports how many rows changed. */
static int exec_stale(struct sqlite_store *ss, sqlite3 *db, const char *sql, int64_t cutoff,
                      int64_t now, int64_t extra, int64_t *changed)
{
    sqlite3_stmt *st = NULL;
    int rc = store_sq_prepare(ss, db, sql, &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 1, cutoff));
    if (rc == STORE_OK && sqlite3_bind_parameter_count(st) >= 2)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 2, now));
    if (rc == STORE_OK && sqlite3_bind_parameter_count(st) >= 3)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 3, extra));
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "requeue");
    if (rc == STORE_OK && changed)
        *changed = sqlite3_changes(db);
    sqlite3_finalize(st);
    return rc;
}

/* After requeue_stale failed or cancelled runs: finish experiments left with no live run. */
static int finish_drained(struct sqlite_store *ss, sqlite3 *db, int64_t now)
{
    sqlite3_stmt *st = NULL;
    char(*ids)[STORE_ID_SIZE] = NULL;
    size_t n = 0, cap = 0, i;
    int rc, src;

    rc = store_sq_prepare(ss, db,
                          "UPDATE experiments SET status = 'finished', finished_at = ?1, "
                          "updated_at = ?1 WHERE status = 'running' AND NOT EXISTS "
                          "(SELECT 1 FROM runs r WHERE r.experiment_id = experiments.id "
                          " AND r.status IN ('queued', 'running')) RETURNING id",
                          &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 1, now));
    if (rc != STORE_OK)
        goto done;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            void *p = realloc(ids, ncap * sizeof *ids);
            if (!p) {
                rc = STORE_ENOMEM;
                goto done;
            }
            ids = p;
            cap = ncap;
        }
        rc = store_sq_col_id(st, 0, ids[n]);
        if (rc != STORE_OK)
            goto done;
        n++;
    }
    if (src != SQLITE_DONE) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "finish drained");
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    for (i = 0; i < n && rc == STORE_OK; i++)
        rc = status_event(ss, db, ids[i], STORE_EXP_FINISHED, now);
done:
    sqlite3_finalize(st);
    free(ids);
    return rc;
}

int store_sq_requeue_stale(struct store *s, int64_t lease_before_ms, int64_t *requeued,
                           int64_t *failed)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    int64_t now = store__now_ms(), n_failed = 0, n_requeued = 0;
    char msg[96];
    sqlite3_stmt *st = NULL;
    int rc;

    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 1);
    if (rc == STORE_OK)
        rc = exec_stale(ss, db,
                        "UPDATE runs SET status = 'cancelled', claim_token = NULL, "
                        "lease_at = NULL, finished_at = ?2 "
                        "WHERE status = 'running' AND lease_at < ?1 AND experiment_id IN "
                        "(SELECT id FROM experiments WHERE cancel_requested = 1)",
                        lease_before_ms, now, 0, NULL);
    /* Only the run that was executing lost an attempt (see DESIGN): the rest get theirs back
     * before the max_attempts check below, as on the drain path. */
    if (rc == STORE_OK)
        rc = exec_stale(ss, db,
                        "UPDATE runs SET attempts = max(attempts - 1, 0) "
                        "WHERE status = 'running' AND lease_at < ?1 AND restart_index > "
                        "(SELECT min(r.restart_index) FROM runs r "
                        " WHERE r.claim_token = runs.claim_token AND r.status = 'running')",
                        lease_before_ms, 0, 0, NULL);
    if (rc != STORE_OK)
        goto done;
    snprintf(msg, sizeof msg, "its worker was lost %d times", ss->max_attempts);
    rc = store_sq_prepare(ss, db,
                          "UPDATE runs SET status = 'failed', claim_token = NULL, lease_at = NULL, "
                          "finished_at = ?2, error = ?4 "
                          "WHERE status = 'running' AND lease_at < ?1 AND attempts >= ?3",
                          &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 1, lease_before_ms));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 2, now));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 3, ss->max_attempts));
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 4, msg);
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "requeue fail");
    if (rc == STORE_OK)
        n_failed = sqlite3_changes(db);
    if (rc == STORE_OK)
        rc = exec_stale(ss, db,
                        "DELETE FROM trajectory_chunks WHERE run_id IN "
                        "(SELECT id FROM runs WHERE status = 'running' AND lease_at < ?1)",
                        lease_before_ms, 0, 0, NULL);
    if (rc == STORE_OK)
        rc = exec_stale(ss, db,
                        "UPDATE runs SET status = 'queued', claim_token = NULL, lease_at = NULL, "
                        "started_at = NULL WHERE status = 'running' AND lease_at < ?1",
                        lease_before_ms, 0, 0, &n_requeued);
    if (rc == STORE_OK)
        rc = finish_drained(ss, db, now);
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
    if (rc != STORE_OK)
        goto done;
    if (requeued)
        *requeued = n_requeued;
    if (failed)
        *failed = n_failed;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    return rc;
}

/* The drain path (store.h): cancelled experiments first, so their runs end `cancelled`; then the
 * partial trajectories of the runs going back; then the requeue itself, giving the attempt back. */
int store_sq_claim_release(struct store *s, const char *token, int64_t *requeued)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    int64_t n = 0;
    int rc;

    if (!token || !*token) {
        rc = STORE_EINVAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 1);
    if (rc == STORE_OK)
        rc = exec_text_int(ss, db,
                           "UPDATE runs SET status = 'cancelled', claim_token = NULL, "
                           "lease_at = NULL, finished_at = ?2 "
                           "WHERE claim_token = ?1 AND status = 'running' AND experiment_id IN "
                           "(SELECT id FROM experiments WHERE cancel_requested = 1)",
                           token, store__now_ms());
    if (rc == STORE_OK)
        rc = exec_text_int(ss, db,
                           "DELETE FROM trajectory_chunks WHERE run_id IN "
                           "(SELECT id FROM runs WHERE claim_token = ?1 AND status = 'running')",
                           token, 0);
    if (rc == STORE_OK)
        rc =
            exec_text_int(ss, db,
                          "UPDATE runs SET status = 'queued', claim_token = NULL, lease_at = NULL, "
                          "started_at = NULL, attempts = max(attempts - 1, 0) "
                          "WHERE claim_token = ?1 AND status = 'running'",
                          token, 0);
    if (rc == STORE_OK)
        n = sqlite3_changes(db);
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
    if (rc == STORE_OK && requeued)
        *requeued = n;
done:
    store_sq_release(ss, db);
    return rc;
}

/* ---- runs ---- */

#define RUN_COLS                                                                                   \
    "r.id, r.experiment_id, r.restart_index, r.seed, r.status, r.origin, r.steps, "                \
    "r.stop_reason, r.final_risk, r.grad_norm, r.param_norm, r.initial_risk, r.verdict, "          \
    "r.verdict_label, r.error, r.claimed_by, r.attempts, r.lease_at, r.started_at, "               \
    "r.finished_at, EXISTS (SELECT 1 FROM run_params p WHERE p.run_id = r.id), "                   \
    "IFNULL(r.final_risk, 9e999)"
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

static int read_run(sqlite3_stmt *st, struct store_run *r)
{
    int rc;

    memset(r, 0, sizeof *r);
    rc = store_sq_col_id(st, 0, r->id);
    if (rc == STORE_OK)
        rc = store_sq_col_id(st, 1, r->experiment_id);
    if (rc == STORE_OK &&
        store_run_status_parse((const char *)sqlite3_column_text(st, 4), &r->status) != STORE_OK)
        rc = STORE_ECORRUPT;
    if (rc == STORE_OK)
        rc = parse_origin((const char *)sqlite3_column_text(st, 5), &r->origin);
    if (rc == STORE_OK)
        rc = store_sq_col_text(st, 7, &r->stop_reason);
    if (rc == STORE_OK)
        rc = store_sq_col_json(st, 12, &r->verdict);
    if (rc == STORE_OK)
        rc = store_sq_col_text(st, 13, &r->verdict_label);
    if (rc == STORE_OK)
        rc = store_sq_col_text(st, 14, &r->error);
    if (rc == STORE_OK)
        rc = store_sq_col_text(st, 15, &r->claimed_by);
    if (rc != STORE_OK)
        goto done;
    r->index = store_sq_col_int(st, 2);
    r->seed = (uint64_t)store_sq_col_int(st, 3);
    r->steps = sqlite3_column_type(st, 6) == SQLITE_NULL ? -1 : store_sq_col_int(st, 6);
    r->final_risk = store_sq_col_real(st, 8);
    r->grad_norm = store_sq_col_real(st, 9);
    r->param_norm = store_sq_col_real(st, 10);
    r->initial_risk = store_sq_col_real(st, 11);
    r->attempts = store_sq_col_int(st, 16);
    r->lease_at_ms = store_sq_col_int(st, 17);
    r->started_at_ms = store_sq_col_int(st, 18);
    r->finished_at_ms = store_sq_col_int(st, 19);
    r->has_params = sqlite3_column_int(st, 20) != 0;
done:
    if (rc != STORE_OK)
        store__run_clear(r);
    return rc;
}

int store_sq_run_get(struct store *s, const char *id, struct store_run **out)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct store_run *r = NULL;
    int rc, src;

    *out = NULL;
    r = calloc(1, sizeof *r);
    if (!r || !id) {
        rc = r ? STORE_EINVAL : STORE_ENOMEM;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db, "SELECT " RUN_COLS " FROM runs r WHERE r.id = ?1", &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE ? STORE_ENOTFOUND
                                : store_sq_fail(ss, db, sqlite3_extended_errcode(db), "run get");
        goto done;
    }
    rc = read_run(st, r);
    if (rc != STORE_OK)
        goto done;
    *out = r;
    r = NULL;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    free(r);
    return rc;
}

/* Keyset conditions: by index, the cursor is (index); by risk, (risk key bits, index) where the
 * risk key is final_risk with unknown as +inf, so the order is total and stable. */
/* ?8 the spurious filter (enum store_spurious_filter), ?9 the best risk, ?10 the tolerance. */
#define RUN_LIST_SPURIOUS                                                                          \
    "AND (?8 = 0 OR (?8 = 1 AND " STORE_SQ_FLAG_TRUE(                                              \
        "r.", "?9", "?10") ") OR (?8 = 2 AND " STORE_SQ_FLAG_FALSE("r.", "?9", "?10") ")) "
static const char run_list_by_index[] =
    "SELECT " RUN_COLS " FROM runs r WHERE r.experiment_id = ?1 "
    "AND (?2 IS NULL OR r.status = ?2) AND (?3 IS NULL OR r.verdict_label = ?3) "
    "AND (?4 = 0 OR r.restart_index > ?5) " RUN_LIST_SPURIOUS "ORDER BY r.restart_index LIMIT ?6";
static const char run_list_by_risk[] =
    "SELECT " RUN_COLS " FROM runs r WHERE r.experiment_id = ?1 "
    "AND (?2 IS NULL OR r.status = ?2) AND (?3 IS NULL OR r.verdict_label = ?3) "
    "AND (?4 = 0 OR (IFNULL(r.final_risk, 9e999), r.restart_index) > (?7, ?5)) " RUN_LIST_SPURIOUS
    "ORDER BY IFNULL(r.final_risk, 9e999), r.restart_index LIMIT ?6";

static int run_list_bind(sqlite3_stmt *st, const char *experiment_id,
                         const struct store_run_filter *f, const struct store_spurious_filter *sf,
                         int has_cursor, const int64_t *key, size_t limit)
{
    int rc = store_sq_bind_text(st, 1, experiment_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(
            st, 2, f->status < 0 ? NULL : store_run_status_name((enum store_run_status)f->status));
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 3, f->verdict_label);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int(st, 4, has_cursor));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 5, key[0]));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 6, (sqlite3_int64)limit + 1));
    if (rc == STORE_OK && f->order == STORE_ORDER_FINAL_RISK) {
        double risk;
        uint64_t bits = (uint64_t)key[1];
        memcpy(&risk, &bits, sizeof risk);
        rc = store_sq_bind_rc(sqlite3_bind_double(st, 7, risk));
    }
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int(st, 8, sf ? (int)sf->mode : 0));
    if (rc == STORE_OK)
        rc = store_sq_bind_real(st, 9, sf ? sf->best : NAN);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_double(st, 10, sf ? sf->tol_rel : 0.0));
    return rc;
}

static int run_list_cursor(sqlite3_stmt *st, const struct store_run_filter *f,
                           char out[STORE_CURSOR_SIZE])
{
    int64_t key[2];
    double risk = sqlite3_column_double(st, RUN_COL_RISK_KEY);
    uint64_t bits;

    key[0] = store_sq_col_int(st, 2);
    if (f->order == STORE_ORDER_INDEX)
        return store__cursor_encode("ri", key, 1, out);
    memcpy(&bits, &risk, sizeof bits);
    key[1] = (int64_t)bits;
    return store__cursor_encode("rr", key, 2, out);
}

static int run_list(struct store *s, const char *experiment_id, const struct store_run_filter *f,
                    const struct store_spurious_filter *sf, size_t limit, const char *cursor,
                    struct store_run_list **out)
{
    static const struct store_run_filter all = {-1, NULL, STORE_ORDER_INDEX};
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct store_run_list *l = NULL;
    int64_t key[2] = {0, 0};
    int rc, src, exists = 0, has_cursor = cursor && *cursor;

    *out = NULL;
    if (!f)
        f = &all;
    l = calloc(1, sizeof *l);
    if (!l || !experiment_id || limit == 0 || limit > STORE_MAX_PAGE || f->status < -1 ||
        f->status >= STORE_RUN_STATUS_COUNT ||
        (f->order != STORE_ORDER_INDEX && f->order != STORE_ORDER_FINAL_RISK) ||
        (sf && ((sf->mode != STORE_SPURIOUS_TRUE && sf->mode != STORE_SPURIOUS_FALSE) ||
                !isfinite(sf->tol_rel) || sf->tol_rel < 0))) {
        rc = l ? STORE_EINVAL : STORE_ENOMEM;
        goto done;
    }
    if (has_cursor) {
        if (f->order == STORE_ORDER_INDEX)
            rc = store__cursor_decode(cursor, "ri", key, 1);
        else
            rc = store__cursor_decode(cursor, "rr", key, 2);
        if (rc != STORE_OK)
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
    if (rc == STORE_OK && !exists)
        rc = STORE_ENOTFOUND;
    if (rc == STORE_OK)
        rc = store_sq_prepare(
            ss, db, f->order == STORE_ORDER_INDEX ? run_list_by_index : run_list_by_risk, &st);
    if (rc == STORE_OK)
        rc = run_list_bind(st, experiment_id, f, sf, has_cursor, key, limit);
    if (rc != STORE_OK)
        goto done;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (l->n == limit)
            break;
        rc = read_run(st, &l->items[l->n]);
        if (rc != STORE_OK)
            goto done;
        l->n++;
        if (l->n == limit) {
            rc = run_list_cursor(st, f, l->next_cursor);
            if (rc != STORE_OK)
                goto done;
        }
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "run list");
        goto done;
    }
    if (src == SQLITE_DONE)
        l->next_cursor[0] = '\0'; /* exactly `limit` rows: no further page */
    rc = store_sq_commit(ss, db);
    if (rc != STORE_OK)
        goto done;
    *out = l;
    l = NULL;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    store_run_list_free(l);
    return rc;
}

int store_sq_run_list(struct store *s, const char *experiment_id, const struct store_run_filter *f,
                      size_t limit, const char *cursor, struct store_run_list **out)
{
    return run_list(s, experiment_id, f, NULL, limit, cursor, out);
}

int store_sq_run_list_spurious(struct store *s, const char *experiment_id,
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

int store_sq_run_params_get(struct store *s, const char *run_id, double **params, size_t *n)
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t count;
    int rc, src;

    *params = NULL;
    if (!run_id) {
        rc = STORE_EINVAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db, "SELECT count, data FROM run_params WHERE run_id = ?1", &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, run_id);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE ? STORE_ENOTFOUND
                                : store_sq_fail(ss, db, sqlite3_extended_errcode(db), "params");
        goto done;
    }
    count = store_sq_col_int(st, 0);
    if (count < 0) {
        rc = STORE_ECORRUPT;
        goto done;
    }
    rc = store_sq_col_f64(st, 1, (size_t)count, params);
    if (rc == STORE_OK)
        *n = (size_t)count;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    return rc;
}
