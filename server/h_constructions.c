/* POST /v1/constructions: the paper's constructions (construct.h) — linear-region minimum, CPWL
 * compiler, group fit — built on a dataset, certified and stored as a finished run with origin
 * `construction`; and the request flow it shares with POST /v1/evaluations (h_evaluations.c).
 *
 * The flow (imported.h has the steps): parse (422 with every pointer) → resolve dataset_id /
 * architecture_id in the store (422 at that pointer when unknown) → build (422 for impossible
 * constructions at the field that made them impossible; 500 when a construction fails its own
 * verification) → judge (basin_certify) → store (records for inline objects, then one
 * transaction for the experiment, run, end point and events) → 201 with Location: /v1/runs/{id}
 * and {run view with its spurious flag, ids, architecture, params, construction report, risk,
 * gradient norm, verdict}. Building and judging run on the request thread: imported_build
 * refuses problems above IMPORTED_MAX_WORK before any work starts. */
#include "handlers.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "basin/status.h"
#include "imported.h"
#include "records.h"
#include "spurious.h"
#include "verdict.h"

enum { RETRY_AFTER_DRAINING_S = 5, LOCATION_BYTES = 64 };

/* Resolve the ids of rq->exp into its dataset and architecture. Answers itself (422 for unknown
 * ids, the store's problem otherwise) and returns BASIN_EINVAL after answering. */
static int resolve_refs(struct request *req, struct reply *rep, struct imported_request *rq)
{
    struct app *app = req->app;
    struct spec_experiment *exp = rq->exp;
    struct store_dataset *d = NULL;
    struct store_architecture *a = NULL;
    struct spec_errors errs;
    struct problem_error pe[2];
    char msg[2][96];
    size_t n_pe = 0;
    int rc = BASIN_OK, src;

    spec_errors_init(&errs);
    if (exp->dataset == NULL) {
        src = store_dataset_get(app->store, exp->dataset_id, 0, &d);
        if (src == STORE_ENOTFOUND) {
            snprintf(msg[n_pe], sizeof msg[n_pe], "no dataset has the id '%.40s'", exp->dataset_id);
            pe[n_pe].pointer = "/dataset_id";
            pe[n_pe].message = msg[n_pe];
            n_pe++;
        } else if (src != STORE_OK) {
            rc = reply_store_error(rep, src, "dataset");
            rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
            goto done;
        }
    }
    if (exp->arch == NULL && rq->arch_by_id) {
        src = store_architecture_get(app->store, exp->architecture_id, &a);
        if (src == STORE_ENOTFOUND) {
            snprintf(msg[n_pe], sizeof msg[n_pe], "no architecture has the id '%.40s'",
                     exp->architecture_id);
            pe[n_pe].pointer = "/architecture_id";
            pe[n_pe].message = msg[n_pe];
            n_pe++;
        } else if (src != STORE_OK) {
            rc = reply_store_error(rep, src, "architecture");
            rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
            goto done;
        }
    }
    if (n_pe > 0) {
        rc = reply_problem(rep, 422, NULL, "the request refers to records that do not exist", pe,
                           n_pe);
        rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        goto done;
    }
    if (d != NULL) {
        rc = records_dataset_spec(d, &app->limits, &exp->dataset, &errs);
        if (rc == BASIN_EINVAL) {
            rep->log_cause = "a stored dataset spec does not parse";
            rc = reply_problem(rep, 500, NULL, "the stored dataset cannot be read", NULL, 0);
            rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        }
        if (rc != BASIN_OK)
            goto done;
    }
    if (a != NULL) {
        rc = records_arch_spec(a, &app->limits, &exp->arch, &errs);
        if (rc == BASIN_EINVAL) {
            rep->log_cause = "a stored architecture spec does not parse";
            rc = reply_problem(rep, 500, NULL, "the stored architecture cannot be read", NULL, 0);
            rc = rc == BASIN_OK ? BASIN_EINVAL : rc;
        }
    }
done:
    store_dataset_free(d);
    store_architecture_free(a);
    spec_errors_clear(&errs);
    return rc;
}

/* The answer: the point's result JSON plus the stored run's view and the ids. */
static int answer_created(struct request *req, struct reply *rep, const struct imported_request *rq,
                          const struct imported_point *pt, const struct imported_stored *ids)
{
    struct app *app = req->app;
    struct store_run *run = NULL;
    struct spurious_context ctx;
    json_t *body = NULL, *view = NULL;
    char location[LOCATION_BYTES];
    int rc = BASIN_OK, src;

    src = store_run_get(app->store, ids->run_id, &run);
    if (src != STORE_OK) {
        rc = reply_store_error(rep, src, "run");
        goto done;
    }
    view = view_run(run);
    body = imported_result_json(rq, pt);
    if (view == NULL || body == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    memset(&ctx, 0, sizeof ctx);
    if (spurious_context_load(app->store, ids->experiment_id, &ctx) == STORE_OK &&
        spurious_attach(view, run, &ctx) != BASIN_OK) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (json_object_set_new(body, "run", view) != 0) {
        view = NULL;
        rc = BASIN_ENOMEM;
        goto done;
    }
    view = NULL;
    if (json_object_set_new(body, "experiment_id", json_string(ids->experiment_id)) != 0 ||
        json_object_set_new(body, "dataset_id", json_string(ids->dataset_id)) != 0 ||
        json_object_set_new(body, "architecture_id", json_string(ids->architecture_id)) != 0) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    snprintf(location, sizeof location, "/v1/runs/%s", ids->run_id);
    rc = reply_json(rep, 201, body);
    body = NULL;
    if (rc == BASIN_OK)
        rc = reply_header(rep, "Location", location);
done:
    json_decref(view);
    json_decref(body);
    store_run_free(run);
    return rc;
}

int h_imported_create(struct request *req, struct reply *rep, int construction)
{
    struct app *app = req->app;
    struct spec_errors errs;
    struct imported_request *rq = NULL;
    struct imported_point *pt = NULL;
    struct imported_stored ids;
    char why[VERDICT_ERROR_CAP];
    int rc = BASIN_OK, src = STORE_OK;

    spec_errors_init(&errs);
    if (atomic_load(&app->draining)) {
        rc = reply_problem(rep, 503, NULL, "the server is shutting down; submit again later", NULL,
                           0);
        if (rc == BASIN_OK)
            rc = reply_retry_after(rep, RETRY_AFTER_DRAINING_S);
        goto done;
    }
    if (req->json == NULL) {
        rc = reply_problem(rep, 400, NULL,
                           construction ? "a JSON construction body is required"
                                        : "a JSON evaluation body is required",
                           NULL, 0);
        goto done;
    }
    rc = imported_parse(req->json, construction, &app->limits, &rq, &errs);
    if (rc == BASIN_EINVAL) {
        rc = reply_spec_errors(rep, 422, &errs);
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    rc = resolve_refs(req, rep, rq);
    if (rc != BASIN_OK) {
        if (rc == BASIN_EINVAL) /* answered */
            rc = BASIN_OK;
        goto done;
    }
    rc = imported_build(rq, &app->limits, IMPORTED_MAX_WORK, &pt, &errs);
    if (rc == BASIN_EINVAL) {
        rc = reply_spec_errors(rep, 422, &errs);
        goto done;
    }
    if (rc == BASIN_ENUMERIC) {
        rep->log_cause = "a construction failed its own verification";
        rc = reply_problem(rep, 500, NULL, "the construction did not verify", NULL, 0);
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    rc = imported_judge(rq, pt, why, sizeof why);
    if (rc != BASIN_OK) {
        if (rc != BASIN_ENOMEM) {
            rep->log_cause = "certifying a constructed or imported point failed";
            rc = reply_problemf(rep, 500, NULL, "the point could not be certified: %s",
                                why[0] ? why : basin_strerror(rc));
        }
        goto done;
    }
    rc = imported_store(app->store, &app->limits, rq, pt, &ids, &src);
    if (rc == BASIN_EINVAL) {
        rc = reply_store_error(rep, src, "point");
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    app_notify(app);
    rc = answer_created(req, rep, rq, pt, &ids);
done:
    imported_point_free(pt);
    imported_request_free(rq);
    spec_errors_clear(&errs);
    return rc;
}

int h_constructions_create(struct request *req, struct reply *rep)
{
    return h_imported_create(req, rep, 1);
}
