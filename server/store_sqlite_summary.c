/* The SQLite backend's run counts of an experiment summary (store_experiment_run_counts):
 * runs counted by stop reason and by verdict label, and the best finished run.
 *
 * DESIGN
 * Everything is aggregated in SQL, so GET /v1/experiments/{id} never loads runs or their
 * verdict JSON into C; the memory in C is O(distinct outcomes). One deferred transaction holds
 * the reads, so the counts and the best come from one snapshot.
 *  - Counts: one GROUP BY status, verdict_label, stop_reason over the experiment's slice of
 *    the covering index runs_experiment_outcome (0006_run_outcome_index.sql), grouped in the
 *    index's own order, so SQLite streams the groups without reading a table row (a row holds
 *    the verdict JSON in overflow pages) and without a sort; store__run_counts_add/_finish
 *    fold the few groups into the two lists. NULLs are not counted, like the old scan.
 *  - Best: the first entry of the experiment's slice of runs_finished_risk (experiment_id,
 *    final_risk) WHERE status = 'finished' AND final_risk IS NOT NULL, skipping ±inf
 *    (abs < 9e999, 9e999 reads as +inf) since NaN is stored as NULL; ties go to the lower
 *    restart index, the order of the FINAL_RISK run list. */
#include "store_sqlite_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int groups_query(struct sqlite_store *ss, sqlite3 *db, const char *exp_id,
                        struct store_run_counts *c)
{
    static const char sql[] =
        "SELECT verdict_label, stop_reason, count(*) FROM runs WHERE experiment_id = ?1 "
        "GROUP BY status, verdict_label, stop_reason";
    sqlite3_stmt *st = NULL;
    int rc = store_sq_prepare(ss, db, sql, &st), src = SQLITE_DONE;

    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, exp_id);
    while (rc == STORE_OK && (src = sqlite3_step(st)) == SQLITE_ROW)
        rc = store__run_counts_add(c, (const char *)sqlite3_column_text(st, 1),
                                   (const char *)sqlite3_column_text(st, 0),
                                   store_sq_col_int(st, 2));
    if (rc == STORE_OK && src != SQLITE_DONE)
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "run counts");
    if (rc == STORE_OK)
        store__run_counts_finish(c);
    sqlite3_finalize(st);
    return rc;
}

static int best_query(struct sqlite_store *ss, sqlite3 *db, const char *exp_id,
                      struct store_run_counts *c)
{
    static const char sql[] =
        "SELECT r.id, r.final_risk FROM runs r WHERE r.experiment_id = ?1 "
        "AND r.status = 'finished' AND r.final_risk IS NOT NULL AND abs(r.final_risk) < 9e999 "
        "ORDER BY r.final_risk, r.restart_index LIMIT 1";
    sqlite3_stmt *st = NULL;
    int rc = store_sq_prepare(ss, db, sql, &st), src;

    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, exp_id);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        rc = store_sq_col_id(st, 0, c->best_run_id);
        if (rc == STORE_OK) {
            c->best_risk = sqlite3_column_double(st, 1);
            c->best_found = 1;
        }
    } else if (src != SQLITE_DONE) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "best run");
    }
done:
    sqlite3_finalize(st);
    return rc;
}

int store_sq_experiment_run_counts(struct store *s, const char *experiment_id, int groups,
                                   struct store_run_counts **out)
{
    struct sqlite_store *ss = store_sq(s);
    struct store_run_counts *c = NULL;
    sqlite3 *db = NULL;
    int rc, exists = 0;

    if (out)
        *out = NULL;
    if (!experiment_id || !out) {
        rc = STORE_EINVAL;
        goto done;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        rc = STORE_ENOMEM;
        goto done;
    }
    c->best_risk = NAN;
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 0);
    if (rc == STORE_OK)
        rc = store_sq_exists(ss, db, "SELECT 1 FROM experiments WHERE id = ?1", experiment_id,
                             &exists);
    if (rc == STORE_OK && !exists)
        rc = STORE_ENOTFOUND;
    if (rc == STORE_OK && groups)
        rc = groups_query(ss, db, experiment_id, c);
    if (rc == STORE_OK)
        rc = best_query(ss, db, experiment_id, c);
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
    if (rc == STORE_OK) {
        *out = c;
        c = NULL;
    }
done:
    store_sq_release(ss, db);
    store_run_counts_free(c);
    return rc;
}
