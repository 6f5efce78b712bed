/* The PostgreSQL backend's analysis reads and inserted points (store.h, "objectives and
 * spurious minima", store_run_insert_finished): the best evaluated point of an objective, an
 * experiment's runs counted by verdict label and spurious flag, the end points of its finished
 * runs, and a construction or imported point stored as a finished one-run experiment. Same
 * answers as store_sqlite_analysis.c and store_sqlite_finished.c.
 *
 * DESIGN
 * The best point uses the indexes of 0002_objective_key.sql: the experiments sharing the key
 * (experiments_objective_key), and per experiment the first entry of runs_finished_risk; ties go
 * to the older experiment (seq), then the lower run seq. Counts and flags use the rule of
 * spurious.h written once in SQL (STORE_PG_FLAG_* in store_pg_int.h) with the best read in the
 * same read-only snapshot. Non-finite risks never count (NaN is stored as NULL; ±inf fails
 * abs(r) < 'Infinity'). The inserted point is one write transaction that holds the new
 * experiment's row lock while it appends the "run_finished" and "status" events, as a trained
 * run's last result would. */
#include "store_pg_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"

/* Within a transaction: the best point of exp_id's objective. */
static int best_in_tx(struct pg_store *ps, PGconn *conn, const char *exp_id,
                      struct store_best_run *out)
{
    struct pg_params p;
    PGresult *res = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    out->final_risk = NAN;
    pgp_init(&p);
    pgp_text(&p, exp_id);
    rc = store_pg_query(ps, conn, "SELECT objective_key FROM experiments WHERE id = $1::text", &p,
                        &res);
    if (rc == STORE_OK && PQntuples(res) == 0)
        rc = STORE_ENOTFOUND;
    if (rc == STORE_OK && !PQgetisnull(res, 0, 0)) {
        if ((size_t)PQgetlength(res, 0, 0) >= STORE_KEY_SIZE)
            rc = STORE_ECORRUPT;
        else
            memcpy(out->objective_key, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0) + 1);
    }
    PQclear(res);
    res = NULL;
    if (rc != STORE_OK)
        return rc;
    out->experiments = 1;
    if (out->objective_key[0] != '\0') {
        pgp_init(&p);
        pgp_text(&p, out->objective_key);
        rc = store_pg_query(
            ps, conn, "SELECT count(*) FROM experiments WHERE objective_key = $1::text", &p, &res);
        if (rc == STORE_OK)
            out->experiments = store_pg_col_int(res, 0, 0);
        PQclear(res);
        res = NULL;
        if (rc != STORE_OK)
            return rc;
    }
    pgp_init(&p);
    pgp_text(&p, exp_id);
    pgp_text(&p, out->objective_key[0] ? out->objective_key : NULL);
    rc = store_pg_query(
        ps, conn,
        "WITH ex AS (SELECT e.id, e.seq FROM experiments e WHERE e.id = $1::text "
        "UNION SELECT e.id, e.seq FROM experiments e "
        "WHERE $2::text IS NOT NULL AND e.objective_key = $2::text) "
        "SELECT r.id, r.experiment_id, r.final_risk FROM ex JOIN runs r ON r.id = ("
        "SELECT r2.id FROM runs r2 WHERE r2.experiment_id = ex.id AND r2.status = 'finished' "
        "AND r2.final_risk IS NOT NULL AND abs(r2.final_risk) < 'Infinity'::float8 "
        "ORDER BY r2.final_risk, r2.seq LIMIT 1) "
        "ORDER BY r.final_risk, ex.seq, r.seq LIMIT 1",
        &p, &res);
    if (rc == STORE_OK && PQntuples(res) > 0) {
        rc = store_pg_col_id(res, 0, 0, out->run_id);
        if (rc == STORE_OK)
            rc = store_pg_col_id(res, 0, 1, out->experiment_id);
        if (rc == STORE_OK) {
            out->final_risk = store_pg_col_real(res, 0, 2);
            out->found = 1;
        }
    }
    PQclear(res);
    return rc;
}

struct best_ctx {
    const char *exp_id;
    struct store_best_run best;
};

static int best_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct best_ctx *c = vctx;
    return best_in_tx(ps, conn, c->exp_id, &c->best);
}

int store_pg_objective_best(struct store *s, const char *experiment_id, struct store_best_run *out)
{
    struct best_ctx c;
    int rc;

    if (!experiment_id || !out)
        return STORE_EINVAL;
    c.exp_id = experiment_id;
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, best_body, &c);
    if (rc == STORE_OK)
        *out = c.best;
    return rc;
}

struct stats_ctx {
    const char *exp_id;
    double tol_rel;
    struct store_spurious_stats v;
};

static int stats_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    static const char sql[] =
        "SELECT count(*), "
        "count(*) FILTER (WHERE r.verdict_label = 'certified_minimum'), "
        "count(*) FILTER (WHERE r.verdict_label = 'likely_minimum'), "
        "count(*) FILTER (WHERE r.verdict_label = 'saddle'), "
        "count(*) FILTER (WHERE r.verdict_label = 'not_converged'), "
        "count(*) FILTER (WHERE r.verdict_label IS NULL), "
        "count(*) FILTER (WHERE r.verdict_label NOT IN ('certified_minimum', 'likely_minimum', "
        "'saddle', 'not_converged')), "
        "count(*) FILTER (WHERE " STORE_PG_IS_MIN(
            "r.") "), "
                  "count(*) FILTER (WHERE r.verdict_label IS NULL AND r.stop_reason = 'grad_tol'), "
                  "count(*) FILTER (WHERE " STORE_PG_FLAG_TRUE(
                      "r.", "$2::float8",
                      "$3::float8") "), "
                                    "count(*) FILTER (WHERE " STORE_PG_FLAG_FALSE(
                                        "r.", "$2::float8",
                                        "$3::float8") ") "
                                                      "FROM runs r WHERE r.experiment_id = "
                                                      "$1::text AND r.status = 'finished'";
    struct stats_ctx *c = vctx;
    struct store_spurious_stats *v = &c->v;
    struct pg_params p;
    PGresult *res = NULL;
    int rc;

    memset(v, 0, sizeof *v);
    rc = best_in_tx(ps, conn, c->exp_id, &v->best);
    if (rc != STORE_OK)
        return rc;
    pgp_init(&p);
    pgp_text(&p, c->exp_id);
    pgp_real(&p, v->best.found ? v->best.final_risk : NAN);
    pgp_real(&p, c->tol_rel);
    rc = store_pg_query(ps, conn, sql, &p, &res);
    if (rc == STORE_OK && PQntuples(res) != 1)
        rc = STORE_EINTERNAL;
    if (rc == STORE_OK) {
        v->finished = store_pg_col_int(res, 0, 0);
        v->labels.certified_minimum = store_pg_col_int(res, 0, 1);
        v->labels.likely_minimum = store_pg_col_int(res, 0, 2);
        v->labels.saddle = store_pg_col_int(res, 0, 3);
        v->labels.not_converged = store_pg_col_int(res, 0, 4);
        v->labels.none = store_pg_col_int(res, 0, 5);
        v->labels.other = store_pg_col_int(res, 0, 6);
        v->minima = store_pg_col_int(res, 0, 7);
        v->minima_stationary = store_pg_col_int(res, 0, 8);
        v->spurious = store_pg_col_int(res, 0, 9);
        v->not_spurious = store_pg_col_int(res, 0, 10);
    }
    PQclear(res);
    return rc;
}

int store_pg_experiment_spurious_stats(struct store *s, const char *experiment_id, double tol_rel,
                                       struct store_spurious_stats *out)
{
    struct stats_ctx c;
    int rc;

    if (!experiment_id || !out || !isfinite(tol_rel) || tol_rel < 0)
        return STORE_EINVAL;
    c.exp_id = experiment_id;
    c.tol_rel = tol_rel;
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, stats_body, &c);
    if (rc == STORE_OK)
        *out = c.v;
    return rc;
}

struct end_points_ctx {
    const char *exp_id;
    size_t max_points, n_params;
    struct store_end_points *p;
    unsigned char *raw; /* n_params·8 bytes */
};

static int end_points_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct end_points_ctx *c = vctx;
    struct store_end_points *p = c->p;
    struct pg_params prm;
    PGresult *res = NULL;
    size_t rows, values, bytes, n_params = c->n_params;
    int rc, exists = 0, i;

    free(p->items);
    free(p->params);
    memset(p, 0, sizeof *p);
    p->n_params = n_params;
    rc = store_pg_exists(ps, conn, "SELECT 1 FROM experiments WHERE id = $1::text", c->exp_id,
                         &exists);
    if (rc == STORE_OK && !exists)
        rc = STORE_ENOTFOUND;
    if (rc != STORE_OK)
        return rc;
    pgp_init(&prm);
    pgp_text(&prm, c->exp_id);
    rc = store_pg_query(ps, conn,
                        "SELECT count(*) FROM runs WHERE experiment_id = $1::text "
                        "AND status = 'finished'",
                        &prm, &res);
    if (rc == STORE_OK)
        p->finished = store_pg_col_int(res, 0, 0);
    PQclear(res);
    res = NULL;
    if (rc != STORE_OK)
        return rc;
    rows = p->finished < 0 ? 0 : (size_t)p->finished;
    if (rows > c->max_points)
        rows = c->max_points;
    if (rows > 0) {
        if (store__mul_size(rows, n_params, &values) != STORE_OK ||
            store__mul_size(values, sizeof *p->params, &bytes) != STORE_OK)
            return STORE_EINVAL;
        p->items = calloc(rows, sizeof *p->items);
        p->params = malloc(bytes);
        if (!p->items || !p->params)
            return STORE_ENOMEM;
    }
    pgp_init(&prm);
    pgp_text(&prm, c->exp_id);
    rc = store_pg_query(ps, conn,
                        "SELECT r.id, r.restart_index, r.final_risk, r.verdict_label, p.count, "
                        "p.data FROM runs r LEFT JOIN run_params p ON p.run_id = r.id "
                        "WHERE r.experiment_id = $1::text AND r.status = 'finished' "
                        "ORDER BY r.restart_index",
                        &prm, &res);
    for (i = 0; rc == STORE_OK && i < PQntuples(res); i++) {
        struct store_end_point *it;
        if (PQgetisnull(res, i, 4) || store_pg_col_int(res, i, 4) != (int64_t)n_params ||
            store_pg_col_bytes(res, i, 5, c->raw, n_params * 8) != STORE_OK) {
            p->skipped++;
            continue;
        }
        if (p->n == rows) {
            p->truncated = 1;
            break;
        }
        it = &p->items[p->n];
        rc = store_pg_col_id(res, i, 0, it->run_id);
        if (rc != STORE_OK)
            break;
        it->index = store_pg_col_int(res, i, 1);
        it->final_risk = store_pg_col_real(res, i, 2);
        if (!PQgetisnull(res, i, 3))
            snprintf(it->verdict_label, sizeof it->verdict_label, "%s", PQgetvalue(res, i, 3));
        for (size_t j = 0; j < n_params; j++)
            p->params[p->n * n_params + j] = store__get_f64le(c->raw + 8 * j);
        p->n++;
    }
    PQclear(res);
    return rc;
}

int store_pg_experiment_end_points(struct store *s, const char *experiment_id, size_t max_points,
                                   size_t n_params, struct store_end_points **out)
{
    struct end_points_ctx c;
    size_t bytes;
    int rc;

    if (out)
        *out = NULL;
    if (!experiment_id || !out || max_points == 0 || max_points > STORE_MAX_RESTARTS ||
        n_params == 0 || store__mul_size(n_params, 8, &bytes) != STORE_OK)
        return STORE_EINVAL;
    memset(&c, 0, sizeof c);
    c.exp_id = experiment_id;
    c.max_points = max_points;
    c.n_params = n_params;
    c.p = calloc(1, sizeof *c.p);
    c.raw = malloc(bytes);
    if (!c.p || !c.raw) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, end_points_body, &c);
    if (rc == STORE_OK) {
        *out = c.p;
        c.p = NULL;
    }
done:
    free(c.raw);
    store_end_points_free(c.p);
    return rc;
}

/* ---- a finished point that did not come from training ---- */

struct finished_ctx {
    const struct store_finished_run *r;
    const char *key;
    const char *exp_id, *run_id;
    int64_t now;
};

/* The events a trained run leaves when it finishes its experiment (store_pg_run_finish). */
static int insert_events(struct pg_store *ps, PGconn *conn, struct finished_ctx *c)
{
    const struct store_finished_run *r = c->r;
    struct store_progress p;
    json_t *run_ev = NULL, *status_ev = NULL;
    int rc = store_pg_progress(ps, conn, c->exp_id, &p);
    if (rc != STORE_OK)
        goto done;
    run_ev = json_object();
    status_ev = json_object();
    if (!run_ev || !status_ev || json_object_set_new(run_ev, "run_id", json_string(c->run_id)) ||
        json_object_set_new(run_ev, "index", json_integer(0)) ||
        json_object_set_new(run_ev, "status", json_string("finished")) ||
        json_object_set_new(run_ev, "final_risk",
                            isfinite(r->final_risk) ? json_real(r->final_risk) : json_null()) ||
        json_object_set_new(run_ev, "verdict",
                            r->verdict_label ? json_string(r->verdict_label) : json_null()) ||
        json_object_set_new(run_ev, "progress", store_pg_progress_json(&p)) ||
        json_object_set_new(status_ev, "status", json_string("finished")) ||
        json_object_set_new(status_ev, "progress", store_pg_progress_json(&p))) {
        rc = STORE_ENOMEM;
        goto done;
    }
    rc = store_pg_event_add(ps, conn, c->exp_id, "run_finished", run_ev, c->now, NULL);
    if (rc == STORE_OK)
        rc = store_pg_event_add(ps, conn, c->exp_id, "status", status_ev, c->now, NULL);
done:
    json_decref(run_ev);
    json_decref(status_ev);
    return rc;
}

static int finished_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    struct finished_ctx *c = vctx;
    const struct store_finished_run *r = c->r;
    struct pg_params p;
    int rc, exists = 0, found = 0;

    rc = store_pg_exists(ps, conn, "SELECT 1 FROM datasets WHERE id = $1::text FOR KEY SHARE",
                         r->dataset_id, &exists);
    if (rc == STORE_OK && exists)
        rc = store_pg_exists(ps, conn,
                             "SELECT 1 FROM architectures WHERE id = $1::text FOR KEY SHARE",
                             r->architecture_id, &exists);
    if (rc == STORE_OK && !exists)
        rc = STORE_ENOTFOUND;
    if (rc != STORE_OK)
        return rc;
    pgp_init(&p);
    pgp_text(&p, c->exp_id);
    pgp_text(&p, r->dataset_id);
    pgp_text(&p, r->architecture_id);
    pgp_json(&p, r->spec);
    pgp_int(&p, (int64_t)r->seed);
    pgp_int(&p, c->now);
    pgp_json(&p, r->summary);
    pgp_text(&p, c->key);
    rc = store_pg_query(ps, conn,
                        "INSERT INTO experiments (id, dataset_id, architecture_id, spec, status, "
                        "restarts, seed, created_at, updated_at, finished_at, summary, "
                        "objective_key) VALUES ($1::text, $2::text, $3::text, $4::json, "
                        "'finished', 1, $5::bigint, $6::bigint, $6::bigint, $6::bigint, $7::json, "
                        "$8::text)",
                        &p, NULL);
    /* the new row's lock, held while its events are appended (store_pg_runs.c) */
    if (rc == STORE_OK)
        rc = store_pg_lock_experiment(ps, conn, c->exp_id, &found, NULL);
    if (rc != STORE_OK)
        return rc;
    pgp_init(&p);
    pgp_text(&p, c->run_id);
    pgp_text(&p, c->exp_id);
    pgp_int(&p, (int64_t)r->seed);
    pgp_text(&p, store_run_origin_name(r->origin));
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
    pgp_int(&p, c->now);
    rc = store_pg_query(ps, conn,
                        "INSERT INTO runs (id, experiment_id, restart_index, seed, status, origin, "
                        "steps, stop_reason, final_risk, grad_norm, param_norm, initial_risk, "
                        "verdict, verdict_label, started_at, finished_at) VALUES ($1::text, "
                        "$2::text, 0, $3::bigint, 'finished', $4::text, $5::bigint, $6::text, "
                        "$7::float8, $8::float8, $9::float8, $10::float8, $11::json, $12::text, "
                        "$13::bigint, $13::bigint)",
                        &p, NULL);
    if (rc == STORE_OK && r->params) {
        pgp_init(&p);
        pgp_text(&p, c->run_id);
        pgp_int(&p, (int64_t)r->n_params);
        pgp_f64(&p, r->params, r->n_params);
        rc = store_pg_query(ps, conn,
                            "INSERT INTO run_params (run_id, count, data) "
                            "VALUES ($1::text, $2::bigint, $3::bytea)",
                            &p, NULL);
    }
    if (rc == STORE_OK)
        rc = insert_events(ps, conn, c);
    return rc;
}

int store_pg_run_insert_finished(struct store *s, const struct store_finished_run *r,
                                 char experiment_id_out[STORE_ID_SIZE],
                                 char run_id_out[STORE_ID_SIZE])
{
    struct finished_ctx c;
    char exp_id[STORE_ID_SIZE], run_id[STORE_ID_SIZE], key[STORE_KEY_SIZE];
    int rc;

    if (!r || !r->dataset_id || !r->architecture_id || !r->spec ||
        (r->origin != STORE_ORIGIN_CONSTRUCTION && r->origin != STORE_ORIGIN_IMPORTED) ||
        (r->n_params > 0 && !r->params) ||
        (r->objective_key &&
         (r->objective_key[0] == '\0' || strlen(r->objective_key) >= STORE_KEY_SIZE)))
        return STORE_EINVAL;
    if (ids_new(IDS_PREFIX_EXPERIMENT, exp_id, sizeof exp_id) != 0 ||
        ids_new(IDS_PREFIX_RUN, run_id, sizeof run_id) != 0)
        return STORE_EINTERNAL;
    c.r = r;
    c.key =
        store_pg_objective_key(r->objective_key, r->spec, r->dataset_id, r->architecture_id, key);
    c.exp_id = exp_id;
    c.run_id = run_id;
    c.now = store__now_ms();
    rc = store_pg_tx(store_pgs(s), PG_TX_WRITE, finished_body, &c);
    if (rc == STORE_OK) {
        memcpy(experiment_id_out, exp_id, sizeof exp_id);
        memcpy(run_id_out, run_id, sizeof run_id);
    }
    return rc;
}
