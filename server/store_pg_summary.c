/* The PostgreSQL backend's run counts of an experiment summary (store_experiment_run_counts):
 * runs counted by stop reason and by verdict label, and the best finished run. Same answers as
 * store_sqlite_summary.c.
 *
 * DESIGN
 * Aggregated in SQL, so the summary never loads runs or their verdict JSON into C. One
 * read-only transaction (one snapshot) holds the reads: the existence check, one GROUP BY
 * status, verdict_label, stop_reason over the experiment's slice of the covering index
 * runs_experiment_outcome (0005_run_outcome_index.sql), folded into the two lists by
 * store__run_counts_add/_finish (store_run_counts.c), and the best run, the first entry of
 * runs_finished_risk for the experiment, ±inf skipped (abs < 'Infinity'; NaN is stored as
 * NULL), ties to the lower restart index like the FINAL_RISK run list. The body may run again
 * after a serialization retry, so it starts from an empty result each time. */
#include "store_pg_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct counts_ctx {
    const char *exp_id;
    int groups;
    struct store_run_counts *c;
};

static void counts_reset(struct store_run_counts *c)
{
    for (size_t i = 0; i < c->n_stop_reasons; i++)
        free(c->stop_reasons[i].name);
    for (size_t i = 0; i < c->n_verdicts; i++)
        free(c->verdicts[i].name);
    free(c->stop_reasons);
    free(c->verdicts);
    memset(c, 0, sizeof *c);
    c->best_risk = NAN;
}

static int counts_body(struct pg_store *ps, PGconn *conn, void *vctx)
{
    static const char sql_counts[] =
        "SELECT verdict_label, stop_reason, count(*) FROM runs WHERE experiment_id = $1::text "
        "GROUP BY status, verdict_label, stop_reason";
    static const char sql_best[] =
        "SELECT id, final_risk FROM runs WHERE experiment_id = $1::text AND status = 'finished' "
        "AND final_risk IS NOT NULL AND abs(final_risk) < 'Infinity'::float8 "
        "ORDER BY final_risk, restart_index LIMIT 1";
    struct counts_ctx *x = vctx;
    struct store_run_counts *c = x->c;
    struct pg_params p;
    PGresult *res = NULL;
    int rc, exists = 0;

    counts_reset(c);
    rc = store_pg_exists(ps, conn, "SELECT 1 FROM experiments WHERE id = $1::text", x->exp_id,
                         &exists);
    if (rc == STORE_OK && !exists)
        rc = STORE_ENOTFOUND;
    if (rc != STORE_OK)
        goto done;
    if (x->groups) {
        pgp_init(&p);
        pgp_text(&p, x->exp_id);
        rc = store_pg_query(ps, conn, sql_counts, &p, &res);
        for (int i = 0; rc == STORE_OK && i < PQntuples(res); i++)
            rc = store__run_counts_add(c, PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1),
                                       PQgetisnull(res, i, 0) ? NULL : PQgetvalue(res, i, 0),
                                       store_pg_col_int(res, i, 2));
        if (rc != STORE_OK)
            goto done;
        store__run_counts_finish(c);
    }
    PQclear(res);
    res = NULL;
    pgp_init(&p);
    pgp_text(&p, x->exp_id);
    rc = store_pg_query(ps, conn, sql_best, &p, &res);
    if (rc == STORE_OK && PQntuples(res) > 0) {
        rc = store_pg_col_id(res, 0, 0, c->best_run_id);
        if (rc == STORE_OK) {
            c->best_risk = store_pg_col_real(res, 0, 1);
            c->best_found = 1;
        }
    }
done:
    PQclear(res);
    return rc;
}

int store_pg_experiment_run_counts(struct store *s, const char *experiment_id, int groups,
                                   struct store_run_counts **out)
{
    struct counts_ctx x;
    int rc;

    if (out)
        *out = NULL;
    if (!experiment_id || !out)
        return STORE_EINVAL;
    x.exp_id = experiment_id;
    x.groups = groups;
    x.c = calloc(1, sizeof *x.c);
    if (!x.c)
        return STORE_ENOMEM;
    rc = store_pg_tx(store_pgs(s), PG_TX_READ, counts_body, &x);
    if (rc == STORE_OK)
        *out = x.c;
    else
        store_run_counts_free(x.c);
    return rc;
}
