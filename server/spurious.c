/* Spurious flags (spurious.h): the objective key, the judgement of one run against the best point
 * of its objective, and the Wilson interval of the spurious share.
 *
 * DESIGN
 * The flag is computed when it is read, never stored: a better run of another experiment with
 * the same objective can appear at any time and must flip the flag of every older run at once.
 * Reading costs one indexed store query (store_objective_best), so views stay cheap. The rule is
 * written twice, here in C for one run and in SQL (store_sqlite_int.h) for counts and list
 * filters; both compute R − best > tol·max(1, |R|) with the same IEEE double operations, so
 * the two agree exactly (test_analysis.c checks the list filter against this function).
 * Wilson score interval (Wilson 1927; Brown, Cai & DasGupta 2001): with p = k/n,
 *   centre = (p + z²/2n) / (1 + z²/n),  half = z·sqrt(p(1−p)/n + z²/4n²) / (1 + z²/n),
 * clipped to [0, 1]; it stays inside [0, 1] and is sensible for k = 0 or k = n, unlike the Wald
 * interval. */
#include "spurious.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "basin/status.h"
#include "handlers.h"

/* A real as in the key: shortest round-trip decimal, -0 written as 0. */
static int key_real(const json_t *v, double def, char *buf, size_t cap)
{
    double x = def;
    if (v != NULL) {
        if (!json_is_number(v))
            return BASIN_EINVAL;
        x = json_number_value(v);
    }
    if (!isfinite(x))
        return BASIN_EINVAL;
    format_double(buf, cap, x + 0.0);
    return BASIN_OK;
}

int spurious_objective_key(const json_t *spec, const char *dataset_id, const char *architecture_id,
                           char *out, size_t cap)
{
    char loss[64], num[40], l2[40];
    const json_t *lv = json_object_get(spec, "loss");
    int rc = BASIN_OK;

    if (out == NULL || cap == 0 || dataset_id == NULL || architecture_id == NULL ||
        !json_is_object(spec)) {
        rc = BASIN_EINVAL;
        goto done;
    }
    out[0] = '\0';
    if (lv == NULL) {
        snprintf(loss, sizeof loss, "squared");
    } else if (json_is_string(lv)) {
        if (strcmp(json_string_value(lv), "huber") == 0)
            snprintf(loss, sizeof loss, "huber:1");
        else if (snprintf(loss, sizeof loss, "%s", json_string_value(lv)) >= (int)sizeof loss)
            rc = BASIN_EINVAL;
    } else if (json_is_object(lv) && json_is_string(json_object_get(lv, "kind"))) {
        const char *kind = json_string_value(json_object_get(lv, "kind"));
        if (strcmp(kind, "huber") == 0) {
            rc = key_real(json_object_get(lv, "delta"), 1.0, num, sizeof num);
            if (rc == BASIN_OK)
                snprintf(loss, sizeof loss, "huber:%s", num);
        } else if (snprintf(loss, sizeof loss, "%s", kind) >= (int)sizeof loss) {
            rc = BASIN_EINVAL;
        }
    } else {
        rc = BASIN_EINVAL;
    }
    if (rc == BASIN_OK)
        rc = key_real(json_object_get(spec, "l2"), 0.0, l2, sizeof l2);
    if (rc != BASIN_OK)
        goto done;
    int len = snprintf(out, cap, "%s|%s|%s|l2=%s", dataset_id, architecture_id, loss, l2);
    if (len < 0 || (size_t)len >= cap) {
        out[0] = '\0';
        rc = BASIN_ERANGE;
    }
done:
    return rc;
}

double spurious_tol_rel(const json_t *spec)
{
    const json_t *t = json_object_get(json_object_get(spec, "certify"), "spurious_tol");
    if (json_is_number(t)) {
        double v = json_number_value(t);
        if (isfinite(v) && v >= 0)
            return v;
    }
    return SPURIOUS_DEFAULT_TOL;
}

void spurious_judge(const struct store_run *r, double tol_rel, const struct store_best_run *best,
                    struct spurious_judgement *out)
{
    const char *label = r->verdict_label;
    memset(out, 0, sizeof *out);
    out->flag = -1;
    out->minimum = -1;
    out->basis = SPURIOUS_BASIS_NONE;
    out->risk = r->final_risk;
    out->tol = NAN;
    out->best_risk = best != NULL && best->found ? best->final_risk : NAN;
    out->gap = NAN;
    if (label != NULL) {
        if (strcmp(label, "certified_minimum") == 0 || strcmp(label, "likely_minimum") == 0) {
            out->minimum = 1;
            out->basis = SPURIOUS_BASIS_VERDICT;
        } else if (strcmp(label, "saddle") == 0 || strcmp(label, "not_converged") == 0) {
            out->minimum = 0;
            out->basis = SPURIOUS_BASIS_VERDICT;
        }
    } else if (r->stop_reason != NULL && strcmp(r->stop_reason, "grad_tol") == 0) {
        out->minimum = 1;
        out->basis = SPURIOUS_BASIS_STATIONARY;
    }
    out->evaluated = r->status == STORE_RUN_FINISHED && isfinite(r->final_risk);
    if (!out->evaluated)
        return;
    double R = r->final_risk;
    out->tol = tol_rel * fmax(1.0, fabs(R));
    out->global = R <= out->tol;
    int above = 0;
    if (best != NULL && best->found) {
        out->gap = R - best->final_risk;
        above = R - best->final_risk > out->tol && R > out->tol;
        if (R - best->final_risk > out->tol) {
            out->has_witness = 1;
            memcpy(out->witness_run_id, best->run_id, sizeof out->witness_run_id);
            memcpy(out->witness_experiment_id, best->experiment_id,
                   sizeof out->witness_experiment_id);
        }
    }
    if (out->minimum == 1 && best != NULL && best->found)
        out->flag = above;
    else if (out->minimum == 0)
        out->flag = 0;
}

static const char *basis_name(enum spurious_basis b)
{
    switch (b) {
    case SPURIOUS_BASIS_VERDICT:
        return "verdict";
    case SPURIOUS_BASIS_STATIONARY:
        return "stationary";
    case SPURIOUS_BASIS_NONE:
        break;
    }
    return NULL;
}

json_t *spurious_judgement_json(const struct spurious_judgement *j)
{
    const char *basis = basis_name(j->basis);
    return json_pack(
        "{s:o, s:o, s:b, s:o, s:o, s:o, s:o, s:o}", "flag",
        j->flag < 0 ? json_null() : json_boolean(j->flag), "basis",
        basis ? json_string(basis) : json_null(), "global", j->global, "witness_run_id",
        j->has_witness ? json_string(j->witness_run_id) : json_null(), "witness_experiment_id",
        j->has_witness ? json_string(j->witness_experiment_id) : json_null(), "gap",
        view_real(j->gap), "best_risk", view_real(j->best_risk), "tol", view_real(j->tol));
}

void spurious_wilson(int64_t k, int64_t n, double z, double *lo, double *hi)
{
    if (n <= 0) {
        *lo = 0.0;
        *hi = 1.0;
        return;
    }
    double nn = (double)n, p = (double)k / nn, z2 = z * z;
    double denom = 1.0 + z2 / nn;
    double centre = (p + z2 / (2.0 * nn)) / denom;
    double half = z * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn)) / denom;
    *lo = fmax(0.0, centre - half);
    *hi = fmin(1.0, centre + half);
}

int spurious_context_load(struct store *st, const char *experiment_id, struct spurious_context *ctx)
{
    struct store_experiment *e = NULL;
    int rc = store_experiment_get(st, experiment_id, &e);
    if (rc == STORE_OK) {
        ctx->tol_rel = spurious_tol_rel(e->spec);
        rc = store_objective_best(st, experiment_id, &ctx->best);
    }
    store_experiment_free(e);
    return rc;
}

int spurious_attach(json_t *run_view, const struct store_run *r, const struct spurious_context *ctx)
{
    struct spurious_judgement j;
    spurious_judge(r, ctx->tol_rel, &ctx->best, &j);
    json_t *v = spurious_judgement_json(&j);
    if (v == NULL || json_object_set_new(run_view, "spurious", v) != 0)
        return BASIN_ENOMEM;
    return BASIN_OK;
}

json_t *spurious_labels_json(const struct store_label_counts *c)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "certified_minimum",
                     (json_int_t)c->certified_minimum, "likely_minimum",
                     (json_int_t)c->likely_minimum, "saddle", (json_int_t)c->saddle,
                     "not_converged", (json_int_t)c->not_converged, "none", (json_int_t)c->none,
                     "other", (json_int_t)c->other);
}

int spurious_summary_into(json_t *obj, const struct store_spurious_stats *st, double tol_rel)
{
    double lo, hi;
    const char *basis = NULL;
    int fin = st->finished > 0;
    if (st->minima > 0)
        basis = st->minima_stationary == st->minima ? "stationary"
                : st->minima_stationary == 0        ? "verdict"
                                                    : "mixed";
    spurious_wilson(st->spurious, st->finished, SPURIOUS_WILSON_Z, &lo, &hi);
    json_t *best =
        st->best.found
            ? json_pack("{s:o, s:s, s:s}", "risk", view_real(st->best.final_risk), "run_id",
                        st->best.run_id, "experiment_id", st->best.experiment_id)
            : json_null();
    json_t *fields = json_pack(
        "{s:o, s:I, s:I, s:o, s:o, s:o, s:f, s:o, s:I}", "label_counts",
        spurious_labels_json(&st->labels), "minima_count", (json_int_t)st->minima, "spurious_count",
        (json_int_t)st->spurious, "spurious_share",
        fin ? json_real((double)st->spurious / (double)st->finished) : json_null(),
        "spurious_share_ci", fin ? json_pack("[f, f]", lo, hi) : json_null(), "spurious_basis",
        basis ? json_string(basis) : json_null(), "spurious_tol", tol_rel, "objective_best", best,
        "objective_experiments", (json_int_t)st->best.experiments);
    int rc = fields != NULL && json_object_update(obj, fields) == 0 ? BASIN_OK : BASIN_ENOMEM;
    json_decref(fields);
    return rc;
}
