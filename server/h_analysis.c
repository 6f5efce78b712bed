/* The analysis endpoints: a run with its spurious flag, the basins of an experiment (and the
 * members of one basin), the comparison of two runs, and the function one run computes.
 *
 *   GET /v1/runs/{id}                      the run view (view_run) + "spurious" (spurious.h)
 *   GET /v1/experiments/{id}/basins        ?risk_tol=1e-6&func_tol=1e-3&limit=50&cursor=
 *   GET /v1/experiments/{id}/basins/{index}/members   ?risk_tol&func_tol&limit=50&cursor=
 *   GET /v1/compare                        ?a=RUN&b=RUN&grid=21&unaligned=true
 *   GET /v1/runs/{id}/function             ?nx=&ny=
 *
 * Basins: {"experiment_id", "risk_tol", "func_tol", "total_runs", "finished_runs" (the
 * clustered snapshot), "clustered_runs", "skipped_runs", "basin_count", "best_risk",
 * "best_run_id", "best_experiment_id" (the best evaluated point of the objective, any
 * experiment), "tol_rel", "basins": [{"index", "risk" (data risk of the representative),
 * "final_risk" (its stored objective value), "count", "share" (count / finished_runs),
 * "share_ci" (Wilson 95%), "representative_run_id", "member_run_ids" (first 100),
 * "members_total", "regions", "output_rms", "func_tol", "max_func_dist", "max_risk_gap",
 * "label_counts", "spurious" (bool; null when no best is known), "witness_run_id", "gap",
 * "tol"}], "next_cursor"}. A basin is spurious when its representative's final_risk R is above
 * the best by more than tol = tol_rel·max(1, |R|) and R > tol (spurious.h), whatever its
 * members' verdicts (label_counts shows them). Pages of basins use the cursor "b<index>",
 * pages of members "m<offset>". The answer carries `X-Basins-Cache: hit|miss`.
 *
 * Compare: both runs need end points (409 otherwise) and the same dataset, architecture and
 * loss (422 naming query parameter 'b'); l2 may differ, since basins.h compares data risks.
 * {"a", "b", "grid", "risk_a", "risk_b", "risk_diff", "function_distance", "output_rms",
 * "pattern_agreement": {"units", "samples", "pattern_units"}, "path": {"t", "aligned",
 * "unaligned" (null unless unaligned=true)}, "barrier": {"aligned", "unaligned"},
 * "param_distance": {"aligned", "unaligned"}, "alignment": {basin_align_stats}}.
 *
 * Function: analysis.h (analysis_function_json) + "run_id"; 409 without an end point, 422 for
 * inputs other than 1-D or 2-D. nx defaults to 201 (1-D) or 101 (2-D), ny to 101, both 2..400.
 *
 * Bounds (all on the HTTP thread): analysis.h for basins and grids; a comparison needs
 * (grid·(1 + unaligned) + 4)·N·P ≤ ANALYSIS_MAX_WORK; grid ≤ 201. */
#include "handlers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "app.h"
#include "basin/alloc.h"
#include "basin/basins.h"
#include "basin/status.h"
#include "ids.h"
#include "spurious.h"

enum {
    BASINS_DEFAULT_LIMIT = 50,
    BASINS_MAX_LIMIT = 1000,
    COMPARE_DEFAULT_GRID = 21,
    COMPARE_MAX_GRID = 201,
    FUNCTION_DEFAULT_NX_1D = 201,
    FUNCTION_DEFAULT_N_2D = 101,
    WHY_CAP = 256
};

/* Answered problems return BASIN_EINVAL from helpers; a handler then returns 0. */
static int answered(int rc)
{
    return rc == BASIN_OK ? BASIN_EINVAL : rc;
}

static int handler_rc(int rc)
{
    return rc == BASIN_EINVAL ? BASIN_OK : rc;
}

static int id_or_reply(struct request *req, struct reply *rep, const char *prefix, const char *what,
                       const char **id)
{
    *id = request_param(req, "id");
    if (*id != NULL && ids_valid(*id, prefix))
        return BASIN_OK;
    return answered(reply_problemf(rep, 404, NULL, "no %s has this id", what));
}

static int store_error(struct reply *rep, int src, const char *kind, const char *id)
{
    char what[80];
    snprintf(what, sizeof what, "%s %s", kind, id);
    return answered(reply_store_error(rep, src, what));
}

static void set(json_t *o, const char *key, json_t *v, int *ok)
{
    if (v == NULL || json_object_set_new(o, key, v) != 0)
        *ok = 0;
}

/* ---- GET /v1/runs/{id} ---- */

/* ---- basins ---- */

struct basins_query {
    double risk_tol, func_tol;
    size_t limit;
    size_t start; /* offset from the cursor */
};

/* A cursor "<tag><offset>" with offset < n; 0 when absent. */
static int offset_cursor_or_reply(struct request *req, struct reply *rep, char tag, size_t n,
                                  size_t *start)
{
    const char *c = request_query(req, "cursor");
    *start = 0;
    if (c == NULL || c[0] == '\0')
        return BASIN_OK;
    size_t len = strlen(c);
    int ok = c[0] == tag && len >= 2 && len <= 12 && strspn(c + 1, "0123456789") == len - 1;
    if (ok) {
        unsigned long long v = strtoull(c + 1, NULL, 10);
        ok = v > 0 && v < n;
        *start = (size_t)v;
    }
    if (ok)
        return BASIN_OK;
    return answered(reply_problem(rep, 400, "Invalid query parameter",
                                  "query parameter 'cursor' is not a cursor of this list (the "
                                  "list may have changed: start again without a cursor)",
                                  NULL, 0));
}

static int basins_query_or_reply(struct request *req, struct reply *rep, struct basins_query *q)
{
    int rc = query_double_or_reply(req, rep, "risk_tol", 1e-6, 0.0, 1.0, &q->risk_tol);
    if (rc == BASIN_OK)
        rc = query_double_or_reply(req, rep, "func_tol", 1e-3, 0.0, 1e3, &q->func_tol);
    if (rc == BASIN_OK)
        rc = query_size_or_reply(req, rep, "limit", BASINS_DEFAULT_LIMIT, 1, BASINS_MAX_LIMIT,
                                 &q->limit);
    return rc;
}

/* The clustering of experiment `id` for the query (answers every failure itself). */
static int basins_load(struct request *req, struct reply *rep, const char *id,
                       const struct basins_query *q, struct analysis_setup **setup,
                       const struct analysis_basins **b)
{
    struct app *app = req->app;
    char why[WHY_CAP] = "";
    int hit = 0, src = STORE_OK;
    int rc = analysis_setup_or_reply(app, rep, id, setup);
    if (rc != BASIN_OK)
        return rc;
    rc = analysis_basins_get(app, *setup, q->risk_tol, q->func_tol, b, &hit, &src, why, sizeof why);
    if (rc == BASIN_OK)
        return reply_header(rep, "X-Basins-Cache", hit ? "hit" : "miss");
    if (src != STORE_OK)
        return store_error(rep, src, "experiment", id);
    if (rc == BASIN_EINVAL || rc == BASIN_ERANGE)
        return answered(reply_problem(rep, 422, "The basins cannot be computed", why, NULL, 0));
    return rc;
}

static json_t *basin_json(const struct analysis_basins *bs, size_t index, double tol_rel,
                          const struct store_best_run *best)
{
    const struct analysis_basin *b = &bs->basins[index];
    double lo, hi, R = b->rep_final_risk;
    size_t shown = b->count < ANALYSIS_MEMBERS_SHOWN ? b->count : ANALYSIS_MEMBERS_SHOWN;
    json_t *o = json_object(), *members = json_array();
    int ok = o != NULL && members != NULL;

    for (size_t m = 0; ok && m < shown; m++)
        ok = json_array_append_new(members, json_string(bs->runs[b->members[m]].run_id)) == 0;
    spurious_wilson((int64_t)b->count, bs->finished, SPURIOUS_WILSON_Z, &lo, &hi);
    double tol = tol_rel * fmax(1.0, fabs(R));
    int known = best->found && isfinite(R);
    int spurious = known && R - best->final_risk > tol && R > tol;
    if (!ok) {
        json_decref(o);
        json_decref(members);
        return NULL;
    }
    set(o, "index", json_integer((json_int_t)index), &ok);
    set(o, "risk", view_real(b->risk), &ok);
    set(o, "final_risk", view_real(R), &ok);
    set(o, "count", json_integer((json_int_t)b->count), &ok);
    set(o, "share",
        bs->finished > 0 ? json_real((double)b->count / (double)bs->finished) : json_null(), &ok);
    set(o, "share_ci", bs->finished > 0 ? json_pack("[f, f]", lo, hi) : json_null(), &ok);
    set(o, "representative_run_id", json_string(bs->runs[b->representative].run_id), &ok);
    set(o, "member_run_ids", members, &ok);
    set(o, "members_total", json_integer((json_int_t)b->count), &ok);
    set(o, "regions", json_integer((json_int_t)b->regions), &ok);
    set(o, "output_rms", view_real(b->output_rms), &ok);
    set(o, "func_tol", view_real(b->func_tol), &ok);
    set(o, "max_func_dist", view_real(b->max_func_dist), &ok);
    set(o, "max_risk_gap", view_real(b->max_risk_gap), &ok);
    set(o, "label_counts", spurious_labels_json(&b->labels), &ok);
    set(o, "spurious", known ? json_boolean(spurious) : json_null(), &ok);
    set(o, "witness_run_id", spurious ? json_string(best->run_id) : json_null(), &ok);
    set(o, "gap", known ? view_real(R - best->final_risk) : json_null(), &ok);
    set(o, "tol", view_real(tol), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int basins_answer(struct request *req, struct reply *rep, const struct analysis_setup *s,
                         const struct analysis_basins *bs, const struct basins_query *q,
                         const struct store_best_run *best)
{
    const struct store_progress *pg = &s->exp->progress;
    int64_t total = pg->queued + pg->running + pg->finished + pg->failed + pg->cancelled;
    size_t end = q->start + q->limit < bs->n_basins ? q->start + q->limit : bs->n_basins;
    char next[32] = "";
    json_t *o = json_object(), *list = json_array();
    int ok = o != NULL && list != NULL;
    int rc = BASIN_OK;

    for (size_t i = q->start; ok && i < end; i++)
        ok = json_array_append_new(list, basin_json(bs, i, s->tol_rel, best)) == 0;
    if (end < bs->n_basins)
        snprintf(next, sizeof next, "b%zu", end);
    set(o, "experiment_id", json_string(s->exp->id), &ok);
    set(o, "risk_tol", json_real(bs->risk_tol), &ok);
    set(o, "func_tol", json_real(bs->func_tol), &ok);
    set(o, "tol_rel", json_real(s->tol_rel), &ok);
    set(o, "total_runs", json_integer((json_int_t)total), &ok);
    set(o, "finished_runs", json_integer((json_int_t)bs->finished), &ok);
    set(o, "clustered_runs", json_integer((json_int_t)bs->n_points), &ok);
    set(o, "skipped_runs", json_integer((json_int_t)bs->skipped), &ok);
    set(o, "basin_count", json_integer((json_int_t)bs->n_basins), &ok);
    set(o, "best_risk", best->found ? view_real(best->final_risk) : json_null(), &ok);
    set(o, "best_run_id", best->found ? json_string(best->run_id) : json_null(), &ok);
    set(o, "best_experiment_id", best->found ? json_string(best->experiment_id) : json_null(), &ok);
    if (ok && json_object_set(o, "basins", list) != 0)
        ok = 0;
    set(o, "next_cursor", next[0] ? json_string(next) : json_null(), &ok);
    if (!ok) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = reply_link_next_page(req, rep, next);
    if (rc == BASIN_OK) {
        rc = reply_json(rep, 200, o);
        o = NULL;
    }
done:
    json_decref(o);
    json_decref(list);
    return rc;
}

int h_experiments_basins(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    struct analysis_setup *s = NULL;
    const struct analysis_basins *bs = NULL;
    struct store_best_run best;
    struct basins_query q;
    const char *id = NULL;
    int rc = id_or_reply(req, rep, IDS_PREFIX_EXPERIMENT, "experiment", &id);
    if (rc == BASIN_OK)
        rc = basins_query_or_reply(req, rep, &q);
    if (rc == BASIN_OK)
        rc = basins_load(req, rep, id, &q, &s, &bs);
    if (rc == BASIN_OK)
        rc = offset_cursor_or_reply(req, rep, 'b', bs->n_basins, &q.start);
    if (rc != BASIN_OK)
        goto done;
    int src = store_objective_best(app->store, id, &best);
    if (src != STORE_OK) {
        rc = store_error(rep, src, "experiment", id);
        goto done;
    }
    rc = basins_answer(req, rep, s, bs, &q, &best);
done:
    analysis_basins_release(bs);
    analysis_setup_free(s);
    return handler_rc(rc);
}

int h_experiments_basin_members(struct request *req, struct reply *rep)
{
    struct analysis_setup *s = NULL;
    const struct analysis_basins *bs = NULL;
    struct basins_query q;
    const char *id = NULL, *index = request_param(req, "index");
    json_t *items = NULL;
    char next[32] = "";
    size_t bi = 0;
    int rc = id_or_reply(req, rep, IDS_PREFIX_EXPERIMENT, "experiment", &id);
    if (rc == BASIN_OK)
        rc = basins_query_or_reply(req, rep, &q);
    if (rc == BASIN_OK)
        rc = basins_load(req, rep, id, &q, &s, &bs);
    if (rc != BASIN_OK)
        goto done;
    size_t len = index != NULL ? strlen(index) : 0;
    if (len == 0 || len > 9 || strspn(index, "0123456789") != len ||
        (bi = (size_t)strtoull(index, NULL, 10)) >= bs->n_basins) {
        rc = answered(reply_problemf(rep, 404, NULL,
                                     "experiment %s has no basin '%.16s' (it has %zu basins with "
                                     "these tolerances)",
                                     id, index != NULL ? index : "", bs->n_basins));
        goto done;
    }
    const struct analysis_basin *b = &bs->basins[bi];
    rc = offset_cursor_or_reply(req, rep, 'm', b->count, &q.start);
    if (rc != BASIN_OK)
        goto done;
    size_t end = q.start + q.limit < b->count ? q.start + q.limit : b->count;
    items = json_array();
    for (size_t m = q.start; items != NULL && m < end; m++) {
        const struct store_end_point *p = &bs->runs[b->members[m]];
        json_t *it =
            json_pack("{s:s, s:I, s:o, s:o}", "run_id", p->run_id, "index", (json_int_t)p->index,
                      "final_risk", view_real(p->final_risk), "verdict_label",
                      p->verdict_label[0] ? json_string(p->verdict_label) : json_null());
        if (json_array_append_new(items, it) != 0) {
            rc = BASIN_ENOMEM;
            goto done;
        }
    }
    if (end < b->count)
        snprintf(next, sizeof next, "m%zu", end);
    json_t *body = json_pack("{s:s, s:I, s:I, s:O, s:o}", "experiment_id", id, "basin_index",
                             (json_int_t)bi, "members_total", (json_int_t)b->count, "items", items,
                             "next_cursor", next[0] ? json_string(next) : json_null());
    if (body == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = reply_link_next_page(req, rep, next);
    if (rc == BASIN_OK)
        rc = reply_json(rep, 200, body);
    else
        json_decref(body);
done:
    json_decref(items);
    analysis_basins_release(bs);
    analysis_setup_free(s);
    return handler_rc(rc);
}

/* ---- GET /v1/compare ---- */

struct compare_side {
    const char *param; /* "a" or "b" */
    const char *id;
    struct store_run *run;
    double *theta;
    size_t n;
};

static int side_or_reply(struct request *req, struct reply *rep, struct compare_side *sd)
{
    struct app *app = req->app;
    sd->id = request_query(req, sd->param);
    if (sd->id == NULL)
        return answered(reply_problemf(rep, 400, "Invalid query parameter",
                                       "query parameter '%s' (a run id) is required", sd->param));
    if (!ids_valid(sd->id, IDS_PREFIX_RUN))
        return answered(reply_problemf(rep, 400, "Invalid query parameter",
                                       "query parameter '%s' is not a run id", sd->param));
    int src = store_run_get(app->store, sd->id, &sd->run);
    if (src == STORE_OK)
        src = store_run_params_get(app->store, sd->id, &sd->theta, &sd->n);
    if (src == STORE_ENOTFOUND && sd->run != NULL)
        return answered(reply_problemf(
            rep, 409, NULL, "query parameter '%s': run %s has no end point yet (status %s)",
            sd->param, sd->id, store_run_status_name(sd->run->status)));
    if (src == STORE_ENOTFOUND)
        return answered(reply_problemf(
            rep, 404, NULL, "query parameter '%s': run %s does not exist", sd->param, sd->id));
    if (src != STORE_OK)
        return store_error(rep, src, "run", sd->id);
    return BASIN_OK;
}

/* 422 naming 'b' unless run b's experiment has a's dataset, architecture and loss. */
static int same_objective_or_reply(struct request *req, struct reply *rep,
                                   const struct analysis_setup *sa, const struct compare_side *a,
                                   const struct compare_side *b)
{
    struct app *app = req->app;
    struct store_experiment *eb = NULL;
    struct spec_experiment *pb = NULL;
    struct spec_errors errs;
    const char *what = NULL;
    int rc = BASIN_OK;

    spec_errors_init(&errs);
    int src = store_experiment_get(app->store, b->run->experiment_id, &eb);
    if (src != STORE_OK) {
        rc = store_error(rep, src, "experiment", b->run->experiment_id);
        goto done;
    }
    if (strcmp(eb->dataset_id, sa->exp->dataset_id) != 0) {
        what = "dataset";
    } else if (strcmp(eb->architecture_id, sa->exp->architecture_id) != 0) {
        what = "architecture";
    } else {
        rc = spec_experiment_parse(eb->spec, &app->limits, &pb, &errs);
        if (rc == BASIN_EINVAL) {
            rep->log_cause = "a stored experiment spec does not parse";
            rc = answered(reply_problem(rep, 500, NULL, "a stored record cannot be read", NULL, 0));
            goto done;
        }
        if (rc != BASIN_OK)
            goto done;
        if (pb->loss.kind != sa->spec->loss.kind ||
            (pb->loss.kind == BASIN_LOSS_HUBER &&
             pb->loss.huber_delta != sa->spec->loss.huber_delta))
            what = "loss";
    }
    if (what != NULL)
        rc = answered(reply_problemf(rep, 422, "The runs cannot be compared",
                                     "query parameter 'b': run %s was trained with another %s than "
                                     "run %s; both runs need the same dataset, architecture and "
                                     "loss",
                                     b->id, what, a->id));
done:
    spec_experiment_free(pb);
    store_experiment_free(eb);
    spec_errors_clear(&errs);
    return rc;
}

static json_t *alignment_json(const basin_align_stats *a)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:b}", "slots", (json_int_t)a->slots, "units",
                     (json_int_t)a->units, "moved", (json_int_t)a->moved, "sweeps",
                     (json_int_t)a->sweeps, "converged", a->converged);
}

static json_t *compare_json(const struct compare_side *a, const struct compare_side *b,
                            const basin_comparison *c, size_t grid, int unaligned)
{
    json_t *o = json_object(), *path = json_object(), *barrier = json_object(),
           *dist = json_object(), *agree = json_object();
    int ok = o != NULL && path != NULL && barrier != NULL && dist != NULL && agree != NULL;
    json_t *t = NULL, *al = NULL, *un = NULL;
    if (ok) {
        t = json_array();
        al = json_array();
        un = unaligned ? json_array() : json_null();
        ok = t != NULL && al != NULL && un != NULL;
    }
    for (size_t k = 0; ok && k < c->aligned.points; k++) {
        ok = json_array_append_new(t, json_real(c->aligned.t[k])) == 0 &&
             json_array_append_new(al, view_real(c->aligned.risk[k])) == 0;
        if (ok && unaligned && k < c->unaligned.points)
            ok = json_array_append_new(un, view_real(c->unaligned.risk[k])) == 0;
    }
    set(path, "t", t, &ok);
    set(path, "aligned", al, &ok);
    set(path, "unaligned", un, &ok);
    set(barrier, "aligned", view_real(c->aligned.barrier), &ok);
    set(barrier, "unaligned", unaligned ? view_real(c->unaligned.barrier) : json_null(), &ok);
    set(dist, "aligned", view_real(c->param_dist), &ok);
    set(dist, "unaligned", view_real(c->param_dist_unaligned), &ok);
    set(agree, "units", view_real(c->unit_agreement), &ok);
    set(agree, "samples", view_real(c->sample_agreement), &ok);
    set(agree, "pattern_units", json_integer((json_int_t)c->pattern_units), &ok);
    set(o, "a", json_string(a->id), &ok);
    set(o, "b", json_string(b->id), &ok);
    set(o, "grid", json_integer((json_int_t)grid), &ok);
    set(o, "risk_a", view_real(c->risk_a), &ok);
    set(o, "risk_b", view_real(c->risk_b), &ok);
    set(o, "risk_diff", view_real(c->risk_diff), &ok);
    set(o, "function_distance", view_real(c->func_dist), &ok);
    set(o, "output_rms", view_real(c->output_rms_a), &ok);
    set(o, "pattern_agreement", agree, &ok);
    set(o, "path", path, &ok);
    set(o, "barrier", barrier, &ok);
    set(o, "param_distance", dist, &ok);
    set(o, "alignment", alignment_json(&c->align), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int h_compare(struct request *req, struct reply *rep)
{
    static const char *const flags[] = {"false", "true"};
    struct app *app = req->app;
    struct compare_side a = {"a", NULL, NULL, NULL, 0}, b = {"b", NULL, NULL, NULL, 0};
    struct analysis_setup *s = NULL;
    basin_comparison *cmp = NULL;
    basin_compare_opts opts;
    size_t grid = 0, unaligned = 1;
    int rc =
        query_size_or_reply(req, rep, "grid", COMPARE_DEFAULT_GRID, 2, COMPARE_MAX_GRID, &grid);
    if (rc == BASIN_OK)
        rc = query_choice_or_reply(req, rep, "unaligned", flags, 2, 1, &unaligned);
    if (rc == BASIN_OK)
        rc = side_or_reply(req, rep, &a);
    if (rc == BASIN_OK)
        rc = side_or_reply(req, rep, &b);
    if (rc == BASIN_OK)
        rc = analysis_setup_or_reply(app, rep, a.run->experiment_id, &s);
    if (rc == BASIN_OK)
        rc = same_objective_or_reply(req, rep, s, &a, &b);
    if (rc != BASIN_OK)
        goto done;
    if (s->data == NULL) {
        rc = answered(reply_problem(rep, 422, "The runs cannot be compared",
                                    "comparisons evaluate both end points on the samples of the "
                                    "dataset; this dataset is a population objective without "
                                    "samples",
                                    NULL, 0));
        goto done;
    }
    if (a.n != s->param_count || b.n != s->param_count) {
        rc = answered(reply_problemf(rep, 422, "The runs cannot be compared",
                                     "the end points have %zu and %zu values; the net has %zu "
                                     "parameters",
                                     a.n, b.n, s->param_count));
        goto done;
    }
    double work = ((double)grid * (unaligned ? 2.0 : 1.0) + 4.0) * (double)s->data->n *
                  (double)s->param_count;
    if (work > ANALYSIS_MAX_WORK) {
        rc = answered(reply_problemf(rep, 422, "The runs cannot be compared",
                                     "a %zu-point path of a %zu-parameter net on %zu samples "
                                     "needs about %.3g operations; the bound is %.3g (use a "
                                     "smaller 'grid' or unaligned=false)",
                                     grid, s->param_count, s->data->n, work, ANALYSIS_MAX_WORK));
        goto done;
    }
    basin_compare_defaults(&opts);
    opts.path_points = grid;
    opts.unaligned_path = (int)unaligned;
    rc = basin_compare(s->arch->net, s->data, &s->spec->loss, a.theta, b.theta, &opts, &cmp);
    if (rc == BASIN_EINVAL) {
        rc = answered(reply_problem(rep, 422, "The runs cannot be compared",
                                    "the end points cannot be evaluated on this dataset (a "
                                    "non-finite parameter or an unsuitable loss)",
                                    NULL, 0));
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    json_t *body = compare_json(&a, &b, cmp, grid, (int)unaligned);
    rc = body != NULL ? reply_json(rep, 200, body) : BASIN_ENOMEM;
done:
    basin_comparison_free(cmp);
    analysis_setup_free(s);
    store_run_free(a.run);
    store_run_free(b.run);
    free(a.theta);
    free(b.theta);
    return handler_rc(rc);
}

/* ---- GET /v1/runs/{id}/function ---- */

int h_runs_function(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    struct store_run *r = NULL;
    struct analysis_setup *s = NULL;
    double *theta = NULL;
    json_t *body = NULL;
    size_t n = 0, nx = 0, ny = 0;
    char why[WHY_CAP] = "";
    const char *id = NULL;
    int rc = id_or_reply(req, rep, IDS_PREFIX_RUN, "run", &id);
    if (rc != BASIN_OK)
        goto done;
    int src = store_run_get(app->store, id, &r);
    if (src == STORE_OK)
        src = store_run_params_get(app->store, id, &theta, &n);
    if (src == STORE_ENOTFOUND && r != NULL) {
        rc = answered(reply_problemf(rep, 409, NULL, "run %s has no end point yet (status %s)", id,
                                     store_run_status_name(r->status)));
        goto done;
    }
    if (src != STORE_OK) {
        rc = store_error(rep, src, "run", id);
        goto done;
    }
    rc = analysis_setup_or_reply(app, rep, r->experiment_id, &s);
    if (rc != BASIN_OK)
        goto done;
    int two = basin_net_in_dim(s->arch->net) == 2;
    rc = query_size_or_reply(req, rep, "nx", two ? FUNCTION_DEFAULT_N_2D : FUNCTION_DEFAULT_NX_1D,
                             2, ANALYSIS_GRID_MAX, &nx);
    if (rc == BASIN_OK)
        rc = query_size_or_reply(req, rep, "ny", FUNCTION_DEFAULT_N_2D, 2, ANALYSIS_GRID_MAX, &ny);
    if (rc != BASIN_OK)
        goto done;
    rc = analysis_function_json(s, theta, n, nx, ny, &body, why, sizeof why);
    if (rc == BASIN_EINVAL || rc == BASIN_ERANGE) {
        rc = answered(reply_problem(rep, 422, "The function cannot be drawn", why, NULL, 0));
        goto done;
    }
    if (rc != BASIN_OK)
        goto done;
    if (json_object_set_new(body, "run_id", json_string(id)) != 0) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = reply_json(rep, 200, body);
    body = NULL;
done:
    json_decref(body);
    analysis_setup_free(s);
    store_run_free(r);
    free(theta);
    return handler_rc(rc);
}
