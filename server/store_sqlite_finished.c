/* The SQLite backend's store_run_insert_finished (store.h): a parameter point that did not come
 * from training — a construction or an imported vector — stored as a one-run experiment that is
 * finished from the start, so it takes part in run lists, verdict counts, spurious witnesses,
 * basins and comparisons exactly like a trained run of the same objective.
 *
 * DESIGN
 * One BEGIN IMMEDIATE transaction writes the experiment row (status finished, finished_at set,
 * restarts 1), its objective key (the caller's, or the one 0002_objective_key.sql derives from
 * the spec, as store_experiment_create does), run 0 (status finished with the origin, the result,
 * started_at = finished_at, no claim token), the end point, and the SSE events a trained run
 * would have produced ("run_finished", then "status" finished). Either all of it is visible or
 * none: the CHECK constraints of 0001_init.sql (finished ⇔ finished_at, running ⇔ claim token)
 * hold at every commit, and a reader never sees an experiment without its run. */
#include "store_sqlite_int.h"

#include <math.h>
#include <string.h>

#include "ids.h"

static int insert_experiment(struct sqlite_store *ss, sqlite3 *db, const char *id,
                             const struct store_finished_run *r, int64_t now)
{
    static const char sql[] =
        "INSERT INTO experiments (id, dataset_id, architecture_id, spec, status, restarts, seed, "
        "created_at, updated_at, finished_at, summary, objective_key) "
        "VALUES (?1, ?2, ?3, ?4, 'finished', 1, ?5, ?6, ?6, ?6, ?7, ?8)";
    static const char derive_key[] =
        "UPDATE experiments SET objective_key = "
        "(SELECT k.objective_key FROM experiment_derived_keys k WHERE k.id = ?1) WHERE id = ?1";
    sqlite3_stmt *st = NULL;
    int rc = store_sq_prepare(ss, db, sql, &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, id);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 2, r->dataset_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 3, r->architecture_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_json(st, 4, r->spec);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 5, (sqlite3_int64)r->seed));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 6, now));
    if (rc == STORE_OK)
        rc = store_sq_bind_json(st, 7, r->summary);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 8, r->objective_key);
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "finished experiment insert");
    sqlite3_finalize(st);
    st = NULL;
    if (rc == STORE_OK && r->objective_key == NULL) {
        rc = store_sq_prepare(ss, db, derive_key, &st);
        if (rc == STORE_OK)
            rc = store_sq_bind_text(st, 1, id);
        if (rc == STORE_OK)
            rc = store_sq_step_done(ss, db, st, "finished experiment key");
        sqlite3_finalize(st);
    }
    return rc;
}

static int insert_run(struct sqlite_store *ss, sqlite3 *db, const char *exp_id, const char *run_id,
                      const struct store_finished_run *r, int64_t now)
{
    static const char sql[] =
        "INSERT INTO runs (id, experiment_id, restart_index, seed, status, origin, steps, "
        "stop_reason, final_risk, grad_norm, param_norm, initial_risk, verdict, verdict_label, "
        "started_at, finished_at) "
        "VALUES (?1, ?2, 0, ?3, 'finished', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)";
    sqlite3_stmt *st = NULL;
    int rc = store_sq_prepare(ss, db, sql, &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, run_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 2, exp_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 3, (sqlite3_int64)r->seed));
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 4, store_run_origin_name(r->origin));
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(r->steps < 0 ? sqlite3_bind_null(st, 5)
                                           : sqlite3_bind_int64(st, 5, r->steps));
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 6, r->stop_reason);
    if (rc == STORE_OK)
        rc = store_sq_bind_real(st, 7, r->final_risk);
    if (rc == STORE_OK)
        rc = store_sq_bind_real(st, 8, r->grad_norm);
    if (rc == STORE_OK)
        rc = store_sq_bind_real(st, 9, r->param_norm);
    if (rc == STORE_OK)
        rc = store_sq_bind_real(st, 10, r->initial_risk);
    if (rc == STORE_OK)
        rc = store_sq_bind_json(st, 11, r->verdict);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 12, r->verdict_label);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 13, now));
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "finished run insert");
    sqlite3_finalize(st);
    if (rc != STORE_OK || r->params == NULL)
        return rc;
    st = NULL;
    rc = store_sq_prepare(ss, db,
                          "INSERT INTO run_params (run_id, count, data) VALUES (?1, ?2, ?3)", &st);
    if (rc == STORE_OK)
        rc = store_sq_bind_text(st, 1, run_id);
    if (rc == STORE_OK)
        rc = store_sq_bind_rc(sqlite3_bind_int64(st, 2, (sqlite3_int64)r->n_params));
    if (rc == STORE_OK)
        rc = store_sq_bind_f64(st, 3, r->params, r->n_params);
    if (rc == STORE_OK)
        rc = store_sq_step_done(ss, db, st, "finished run params insert");
    sqlite3_finalize(st);
    return rc;
}

/* The events a trained run leaves when it finishes its experiment (store_sq_run_finish). */
static int insert_events(struct sqlite_store *ss, sqlite3 *db, const char *exp_id,
                         const char *run_id, const struct store_finished_run *r, int64_t now)
{
    struct store_progress p;
    json_t *run_ev = NULL, *status_ev = NULL;
    int rc = store_sq_progress(ss, db, exp_id, &p);
    if (rc != STORE_OK)
        goto done;
    run_ev = json_object();
    status_ev = json_object();
    if (!run_ev || !status_ev || json_object_set_new(run_ev, "run_id", json_string(run_id)) ||
        json_object_set_new(run_ev, "index", json_integer(0)) ||
        json_object_set_new(run_ev, "status", json_string("finished")) ||
        json_object_set_new(run_ev, "final_risk",
                            isfinite(r->final_risk) ? json_real(r->final_risk) : json_null()) ||
        json_object_set_new(run_ev, "verdict",
                            r->verdict_label ? json_string(r->verdict_label) : json_null()) ||
        json_object_set_new(run_ev, "progress", store_sq_progress_json(&p)) ||
        json_object_set_new(status_ev, "status", json_string("finished")) ||
        json_object_set_new(status_ev, "progress", store_sq_progress_json(&p))) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_sq_event_add(ss, db, exp_id, "run_finished", run_ev, now, NULL);
    if (rc == STORE_OK)
        rc = store_sq_event_add(ss, db, exp_id, "status", status_ev, now, NULL);
done:
    json_decref(run_ev);
    json_decref(status_ev);
    return rc;
}

int store_sq_run_insert_finished(struct store *s, const struct store_finished_run *r,
                                 char experiment_id_out[STORE_ID_SIZE],
                                 char run_id_out[STORE_ID_SIZE])
{
    struct sqlite_store *ss = store_sq(s);
    sqlite3 *db = NULL;
    char exp_id[STORE_ID_SIZE], run_id[STORE_ID_SIZE];
    int rc, exists = 0;
    int64_t now = store__now_ms();

    if (!r || !r->dataset_id || !r->architecture_id || !r->spec ||
        (r->origin != STORE_ORIGIN_CONSTRUCTION && r->origin != STORE_ORIGIN_IMPORTED) ||
        (r->n_params > 0 && !r->params) ||
        (r->objective_key &&
         (r->objective_key[0] == '\0' || strlen(r->objective_key) >= STORE_KEY_SIZE))) {
        rc = STORE_EINVAL;
        goto done;
    }
    if (ids_new(IDS_PREFIX_EXPERIMENT, exp_id, sizeof exp_id) != 0 ||
        ids_new(IDS_PREFIX_RUN, run_id, sizeof run_id) != 0) {
        rc = STORE_EINTERNAL;
        goto done;
    }
    rc = store_sq_acquire(ss, &db);
    if (rc == STORE_OK)
        rc = store_sq_begin(ss, db, 1);
    if (rc == STORE_OK)
        rc =
            store_sq_exists(ss, db, "SELECT 1 FROM datasets WHERE id = ?1", r->dataset_id, &exists);
    if (rc == STORE_OK && exists)
        rc = store_sq_exists(ss, db, "SELECT 1 FROM architectures WHERE id = ?1",
                             r->architecture_id, &exists);
    if (rc == STORE_OK && !exists)
        rc = STORE_ENOTFOUND;
    if (rc == STORE_OK)
        rc = insert_experiment(ss, db, exp_id, r, now);
    if (rc == STORE_OK)
        rc = insert_run(ss, db, exp_id, run_id, r, now);
    if (rc == STORE_OK)
        rc = insert_events(ss, db, exp_id, run_id, r, now);
    if (rc == STORE_OK)
        rc = store_sq_commit(ss, db);
    if (rc == STORE_OK) {
        memcpy(experiment_id_out, exp_id, sizeof exp_id);
        memcpy(run_id_out, run_id, sizeof run_id);
    }
done:
    store_sq_release(ss, db); /* rolls back anything uncommitted */
    return rc;
}
