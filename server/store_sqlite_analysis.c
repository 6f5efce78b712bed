/* The SQLite backend's analysis reads (store.h, "objectives and spurious minima"): the best
 * evaluated point of an objective, an experiment's runs counted by verdict label and spurious
 * flag, and the end points of an experiment's finished runs in one query.
 *
 * DESIGN
 * The best point of an objective is found with indexes only (0002_objective_key.sql): the
 * experiments sharing the asked experiment's objective_key come from experiments_objective_key,
 * and each one's lowest finished risk is the first entry of its slice of runs_finished_risk
 * (experiment_id, final_risk) WHERE status = 'finished' AND final_risk IS NOT NULL. So the cost is
 * O(E log N) for E experiments of the objective, independent of how many runs they hold. Ties
 * are broken by experiment age (seq), then by run seq (= restart index within an experiment),
 * so the witness named for a given database state is deterministic.
 * The spurious counts use the flag rule written once in SQL (STORE_SQ_FLAG_* in
 * store_sqlite_int.h) with the best risk read in the same deferred transaction, so the best and
 * the counts come from one snapshot. Non-finite risks never count: NaN is stored as NULL, and
 * ±inf is excluded with abs(final_risk) < 9e999 (9e999 reads as +inf in SQLite). */
#include "store_sqlite_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_end_points_free(struct store_end_points *p)
{
    if (!p)
        return;
    free(p->items);
    free(p->params);
    free(p);
}

/* The objective key of exp_id into key ("" for NULL); STORE_ENOTFOUND if there is no such
 * experiment. */
static int read_key(struct sqlite_store *ss, sqlite3 *db, const char *exp_id,
                    char key[STORE_KEY_SIZE])
{
    sqlite3_stmt *st = NULL;
    const unsigned char *t;
    int rc, src;

    key[0] = '\0';
    rc = store_sq_prepare(ss, db, "SELECT objective_key FROM experiments WHERE id = ?1", &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, exp_id);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE ? STORE_ENOTFOUND
                                : store_sq_fail(ss, db, sqlite3_extended_errcode(db), "key");
        goto done;
    }
    t = sqlite3_column_text(st, 0);
    if (t) {
        if (strlen((const char *)t) >= STORE_KEY_SIZE) {
            rc = STORE_ECORRUPT;
            goto done;
        }
        memcpy(key, t, strlen((const char *)t) + 1);
    }
done:
    sqlite3_finalize(st);
    return rc;
}

static int scalar(struct sqlite_store *ss, sqlite3 *db, sqlite3_stmt *st, int64_t *out)
{
    int src = sqlite3_step(st);
    if (src != SQLITE_ROW)
        return store_sq_fail(ss, db, src == SQLITE_DONE ? SQLITE_ERROR : src, "count");
    *out = store_sq_col_int(st, 0);
    return STORE_OK;
}

/* Within an open transaction: the best point of exp_id's objective. */
static int best_in_tx(struct sqlite_store *ss, sqlite3 *db, const char *exp_id,
                      struct store_best_run *out)
{
    static const char sql[] =
        "WITH ex AS (SELECT e.id, e.seq FROM experiments e WHERE e.id = ?1 "
        "UNION SELECT e.id, e.seq FROM experiments e "
        "WHERE ?2 IS NOT NULL AND e.objective_key = ?2) "
        "SELECT r.id, r.experiment_id, r.final_risk FROM ex JOIN runs r ON r.id = ("
        "SELECT r2.id FROM runs r2 WHERE r2.experiment_id = ex.id AND r2.status = 'finished' "
        "AND r2.final_risk IS NOT NULL AND abs(r2.final_risk) < 9e999 "
        "ORDER BY r2.final_risk, r2.seq LIMIT 1) "
        "ORDER BY r.final_risk, ex.seq, r.seq LIMIT 1";
    sqlite3_stmt *st = NULL;
    int rc, src;

    memset(out, 0, sizeof *out);
    out->final_risk = NAN;
    rc = read_key(ss, db, exp_id, out->objective_key);
    if (rc != STORE_OK)
        goto done;
    out->experiments = 1;
    if (out->objective_key[0] != '\0') {
        rc = store_sq_prepare(ss, db, "SELECT count(*) FROM experiments WHERE objective_key = ?1",
                              &st);
        if (rc == STORE_OK)
            rc = store_sq_bind_text(st, 1, out->objective_key);
        if (rc == STORE_OK)
            rc = scalar(ss, db, st, &out->experiments);
        sqlite3_finalize(st);
        st = NULL;
        if (rc != STORE_OK)
            goto done;
    }
    rc = store_sq_prepare(ss, db, sql, &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, exp_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 2, out->objective_key[0] ? out->objective_key : NULL);
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        goto done;
    if (src != SQLITE_ROW) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "objective best");
        goto done;
    }
    rc = store_sq_col_id(st, 0, out->run_id);
    if (rc == STORE_OK)
        rc = store_sq_col_id(st, 1, out->experiment_id);
    if (rc != STORE_OK)
        goto done;
    out->final_risk = sqlite3_column_double(st, 2);
    out->found = 1;
done:
    sqlite3_finalize(st);
    return rc;
}

int store_sq_objective_best(struct store *s, const char *experiment_id, struct store_best_run *out)
{
    struct sqlite_store *ss = store_sq(s);
    struct store_best_run b;
    sqlite3 *db = NULL;
    int rc;

    if (!experiment_id || !out) {
        rc = STORE_EINVAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 0);
    if (rc == STORE_OK)
        rc = best_in_tx(ss, db, experiment_id, &b);
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
    if (rc == STORE_OK)
        *out = b;
done:
    store_sq_release(ss, db);
    return rc;
}

int store_sq_experiment_spurious_stats(struct store *s, const char *experiment_id, double tol_rel,
                                       struct store_spurious_stats *out)
{
    static const char sql[] =
        "SELECT count(*), "
        "coalesce(sum(r.verdict_label = 'certified_minimum'), 0), "
        "coalesce(sum(r.verdict_label = 'likely_minimum'), 0), "
        "coalesce(sum(r.verdict_label = 'saddle'), 0), "
        "coalesce(sum(r.verdict_label = 'not_converged'), 0), "
        "coalesce(sum(r.verdict_label IS NULL), 0), "
        "coalesce(sum(r.verdict_label NOT IN ('certified_minimum', 'likely_minimum', 'saddle', "
        "'not_converged')), 0), "
        "coalesce(sum(" STORE_SQ_IS_MIN(
            "r.") "), 0), "
                  "coalesce(sum(r.verdict_label IS NULL AND r.stop_reason = 'grad_tol'), 0), "
                  "coalesce(sum(" STORE_SQ_FLAG_TRUE(
                      "r.", "?2", "?3") "), 0), "
                                        "coalesce(sum(" STORE_SQ_FLAG_FALSE(
                                            "r.", "?2", "?3") "), 0) "
                                                              "FROM runs r WHERE r.experiment_id = "
                                                              "?1 AND r.status = 'finished'";
    struct sqlite_store *ss = store_sq(s);
    struct store_spurious_stats v;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc, src;

    memset(&v, 0, sizeof v);
    if (!experiment_id || !out || !isfinite(tol_rel) || tol_rel < 0) {
        rc = STORE_EINVAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 0);
    if (rc == STORE_OK)
        rc = best_in_tx(ss, db, experiment_id, &v.best);
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db, sql, &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, experiment_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_real(st, 2, v.best.found ? v.best.final_risk : NAN);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_double(st, 3, tol_rel));
    if (rc != STORE_OK)
        goto done;
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = store_sq_fail(ss, db, src == SQLITE_DONE ? SQLITE_ERROR : src, "spurious stats");
        goto done;
    }
    v.finished = store_sq_col_int(st, 0);
    v.labels.certified_minimum = store_sq_col_int(st, 1);
    v.labels.likely_minimum = store_sq_col_int(st, 2);
    v.labels.saddle = store_sq_col_int(st, 3);
    v.labels.not_converged = store_sq_col_int(st, 4);
    v.labels.none = store_sq_col_int(st, 5);
    v.labels.other = store_sq_col_int(st, 6);
    v.minima = store_sq_col_int(st, 7);
    v.minima_stationary = store_sq_col_int(st, 8);
    v.spurious = store_sq_col_int(st, 9);
    v.not_spurious = store_sq_col_int(st, 10);
    sqlite3_finalize(st);
    st = NULL;
    rc = store_sq_commit(ss, db);
    if (rc == STORE_OK)
        *out = v;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    return rc;
}

int store_sq_experiment_end_points(struct store *s, const char *experiment_id, size_t max_points,
                                   size_t n_params, struct store_end_points **out)
{
    static const char sql_count[] =
        "SELECT count(*) FROM runs WHERE experiment_id = ?1 AND status = 'finished'";
    static const char sql[] =
        "SELECT r.id, r.restart_index, r.final_risk, r.verdict_label, p.count, p.data "
        "FROM runs r LEFT JOIN run_params p ON p.run_id = r.id "
        "WHERE r.experiment_id = ?1 AND r.status = 'finished' ORDER BY r.restart_index";
    struct sqlite_store *ss = store_sq(s);
    struct store_end_points *p = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t finished = 0;
    size_t rows, values, bytes;
    int rc, src, exists = 0;

    if (out)
        *out = NULL;
    if (!experiment_id || !out || max_points == 0 || max_points > STORE_MAX_RESTARTS ||
        n_params == 0 || store__mul_size(n_params, 8, &bytes) != STORE_OK) {
        rc = STORE_EINVAL;
        goto done;
    }
    p = calloc(1, sizeof *p);
    if (!p) {
        rc = STORE_ENOMEM;
        goto done;
    }
    p->n_params = n_params;
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 0);
    if (rc == STORE_OK)
        rc = store_sq_exists(ss, db, "SELECT 1 FROM experiments WHERE id = ?1", experiment_id,
                             &exists);
    if (rc == STORE_OK && !exists)
        rc = STORE_ENOTFOUND;
    if (rc == STORE_OK)
        rc = store_sq_prepare(ss, db, sql_count, &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, experiment_id);
    if (rc == STORE_OK)
        rc = scalar(ss, db, st, &finished);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != STORE_OK)
        goto done;
    p->finished = finished;
    rows = finished < 0 ? 0 : (size_t)finished;
    if (rows > max_points)
        rows = max_points;
    if (rows > 0) {
        if (store__mul_size(rows, n_params, &values) != STORE_OK ||
            store__mul_size(values, sizeof *p->params, &bytes) != STORE_OK) {
            rc = STORE_EINVAL;
            goto done;
        }
        p->items = calloc(rows, sizeof *p->items);
        p->params = malloc(bytes);
        if (!p->items || !p->params) {
            rc = STORE_ENOMEM;
            goto done;
        }
    }
    rc = store_sq_prepare(ss, db, sql, &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, experiment_id);
    if (rc != STORE_OK)
        goto done;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *blob;
        const unsigned char *label;
        struct store_end_point *it;
        if (sqlite3_column_type(st, 4) == SQLITE_NULL ||
            sqlite3_column_int64(st, 4) != (sqlite3_int64)n_params ||
            (size_t)sqlite3_column_bytes(st, 5) != n_params * 8) {
            p->skipped++;
            continue;
        }
        if (p->n == rows) {
            p->truncated = 1;
            break;
        }
        it = &p->items[p->n];
        rc = store_sq_col_id(st, 0, it->run_id);
        if (rc != STORE_OK)
            goto done;
        it->index = store_sq_col_int(st, 1);
        it->final_risk = store_sq_col_real(st, 2);
        label = sqlite3_column_text(st, 3);
        if (label)
            snprintf(it->verdict_label, sizeof it->verdict_label, "%s", (const char *)label);
        blob = sqlite3_column_blob(st, 5);
        if (!blob) {
            rc = STORE_ENOMEM;
            goto done;
        }
        for (size_t j = 0; j < n_params; j++)
            p->params[p->n * n_params + j] = store__get_f64le(blob + 8 * j);
        p->n++;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = store_sq_fail(ss, db, sqlite3_extended_errcode(db), "end points");
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = store_sq_commit(ss, db);
    if (rc != STORE_OK)
        goto done;
    *out = p;
    p = NULL;
done:
    sqlite3_finalize(st);
    store_sq_release(ss, db);
    store_end_points_free(p);
    return rc;
}
