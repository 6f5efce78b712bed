/* Dataset and architecture records from parsed specs and back (records.h).
 *
 * DESIGN
 * The stored canonical spec is the source of truth for rebuilding a dataset or an architecture
 * (records_*_spec parse it again; generators are deterministic in their seed, so a regenerated
 * dataset equals the stored blobs); the other columns (x/y blobs, shape, task, counts, linear
 * fit) are derived from the parsed object at insertion, so listings and workers need not parse.
 * Linear-fit risk R_lin = (1/n) min Σ ℓ over affine maps (core/linfit.h): squared loss on the
 * raw targets (out_dim = y_dim; the outputs decouple into problems sharing one design, so the
 * work is n·(d+1)²), plus logistic (binary) or cross entropy (multiclass, out_dim = classes;
 * coupled, work n·((d+1)·k)²). Each runs on the request thread only when its work is at most
 * RECORDS_MAX_FIT_WORK; otherwise, or when it fails, its entry says why and has null numbers, so
 * "unknown" is never shown as a number. The format is the one h_datasets.c answers. */
#include "records.h"

#include <stdio.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/linfit.h"
#include "basin/status.h"
#include "handlers.h"

static const char *dataset_kind_name(enum spec_dataset_kind kind)
{
    switch (kind) {
    case SPEC_DATASET_INLINE:
        return "inline";
    case SPEC_DATASET_GENERATOR:
        return "generator";
    case SPEC_DATASET_CSV:
        return "csv";
    case SPEC_DATASET_TEACHER_GAUSSIAN:
        return "teacher_gaussian";
    }
    return "inline";
}

static char *dup_text(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = basin_malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static json_t *shape_json(size_t rank, const size_t *shape)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < rank; i++) {
        if (json_array_append_new(a, json_integer((json_int_t)shape[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

static json_t *fit_skipped(double tol, const char *reason)
{
    return json_pack("{s:n, s:b, s:n, s:n, s:f, s:s}", "risk", "exact", 0, "attained",
                     "linearly_fittable", "tolerance", tol, "skipped", reason);
}

/* One entry for `kind` with out_dim outputs; NULL only when out of memory. */
static json_t *fit_entry(const basin_dataset *ds, basin_loss_kind kind, size_t out_dim, double tol)
{
    char reason[160];
    basin_loss loss = {.kind = kind, .huber_delta = 1.0};
    basin_affine_fit fit;
    double p = ((double)ds->in_dim + 1.0) * (kind == BASIN_LOSS_SQUARED ? 1.0 : (double)out_dim);
    double work = (double)ds->n * p * p;
    if (work > RECORDS_MAX_FIT_WORK) {
        snprintf(reason, sizeof reason,
                 "n·p² = %.3g exceeds %.3g: too large to fit while answering the request", work,
                 RECORDS_MAX_FIT_WORK);
        return fit_skipped(tol, reason);
    }
    memset(&fit, 0, sizeof fit);
    int rc = basin_affine_fit_group(ds, NULL, ds->n, &loss, out_dim, &fit, NULL);
    if (rc == BASIN_ENOMEM)
        return NULL;
    if (rc != BASIN_OK) {
        snprintf(reason, sizeof reason, "the fit failed: %s", basin_strerror(rc));
        return fit_skipped(tol, reason);
    }
    double risk = fit.risk_sum / (double)ds->n;
    return json_pack("{s:o, s:b, s:b, s:b, s:f}", "risk", view_real(risk), "exact", fit.exact,
                     "attained", fit.attained, "linearly_fittable", risk <= tol, "tolerance", tol);
}

int records_linear_fit(const basin_dataset *ds, const struct limits *lim, json_t **out)
{
    int rc = BASIN_OK;
    json_t *losses = NULL, *e = NULL;
    *out = NULL;
    if (ds == NULL || ds->n == 0)
        goto done;
    double ysq = 0;
    for (size_t i = 0; i < ds->n * ds->y_dim; i++)
        ysq += 0.5 * ds->y[i] * ds->y[i];
    double scale = ysq / (double)ds->n;
    double sq_tol = RECORDS_FIT_REL_TOL * (scale > 1 ? scale : 1);
    losses = json_object();
    e = losses != NULL ? fit_entry(ds, BASIN_LOSS_SQUARED, ds->y_dim, sq_tol) : NULL;
    if (e == NULL || json_object_set_new(losses, "squared", e) != 0) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (ds->task == BASIN_TASK_BINARY && ds->y_dim == 1) {
        e = fit_entry(ds, BASIN_LOSS_LOGISTIC, 1, RECORDS_FIT_REL_TOL);
        if (e == NULL || json_object_set_new(losses, "logistic", e) != 0)
            rc = BASIN_ENOMEM;
    } else if (ds->task == BASIN_TASK_MULTICLASS && ds->y_dim == 1) {
        if (ds->n_classes >= 2 && ds->n_classes <= lim->max_classes)
            e = fit_entry(ds, BASIN_LOSS_CROSS_ENTROPY, ds->n_classes, RECORDS_FIT_REL_TOL);
        else
            e = fit_skipped(RECORDS_FIT_REL_TOL, "more classes than the published limit");
        if (e == NULL || json_object_set_new(losses, "cross_entropy", e) != 0)
            rc = BASIN_ENOMEM;
    }
    if (rc != BASIN_OK)
        goto done;
    *out = json_pack("{s:O}", "loss", losses);
    if (*out == NULL)
        rc = BASIN_ENOMEM;
done:
    json_decref(losses);
    return rc;
}

void records_dataset_release(struct store_dataset *rec)
{
    if (rec == NULL)
        return;
    basin_free(rec->kind);
    basin_free(rec->task);
    json_decref(rec->spec);
    json_decref(rec->input_shape);
    json_decref(rec->linear_fit);
    memset(rec, 0, sizeof *rec);
}

int records_dataset_build(const struct spec_dataset *ds, const struct limits *lim,
                          struct store_dataset *rec)
{
    int rc = BASIN_OK;
    memset(rec, 0, sizeof *rec);
    rec->name = ds->name;
    rec->kind = dup_text(dataset_kind_name(ds->kind));
    rec->spec = spec_dataset_to_json(ds);
    rec->input_shape = shape_json(ds->in_rank, ds->in_shape);
    if (ds->data != NULL) {
        const basin_dataset *d = ds->data;
        rec->n = (int64_t)d->n;
        rec->in_dim = (int64_t)d->in_dim;
        rec->y_dim = (int64_t)d->y_dim;
        rec->task = dup_text(spec_task_name(d->task));
        rec->n_classes = d->task == BASIN_TASK_REGRESSION ? 0 : (int64_t)d->n_classes;
        rec->x = d->x;
        rec->y = d->y;
        rc = records_linear_fit(d, lim, &rec->linear_fit);
    } else {
        /* the Gaussian teacher population: no samples, d inputs, one regression target */
        rec->n = 0;
        rec->in_dim = (int64_t)ds->tg.d;
        rec->y_dim = 1;
        rec->task = dup_text(spec_task_name(BASIN_TASK_REGRESSION));
    }
    if (rc == BASIN_OK &&
        (rec->kind == NULL || rec->spec == NULL || rec->input_shape == NULL || rec->task == NULL))
        rc = BASIN_ENOMEM;
    if (rc != BASIN_OK)
        records_dataset_release(rec);
    return rc;
}

void records_arch_release(struct store_architecture *rec)
{
    if (rec == NULL)
        return;
    json_decref(rec->spec);
    memset(rec, 0, sizeof *rec);
}

int records_arch_build(const struct spec_arch *arch, struct store_architecture *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->name = arch->name;
    rec->spec = spec_arch_to_json(arch);
    rec->param_count = (int64_t)basin_net_param_count(arch->net);
    rec->out_dim = (int64_t)basin_net_out_dim(arch->net);
    return rec->spec != NULL ? BASIN_OK : BASIN_ENOMEM;
}

int records_dataset_spec(const struct store_dataset *rec, const struct limits *lim,
                         struct spec_dataset **out, struct spec_errors *errs)
{
    *out = NULL;
    if (rec->spec == NULL)
        return BASIN_EINVAL;
    return spec_dataset_parse(rec->spec, lim, out, errs);
}

int records_arch_spec(const struct store_architecture *rec, const struct limits *lim,
                      struct spec_arch **out, struct spec_errors *errs)
{
    *out = NULL;
    if (rec->spec == NULL)
        return BASIN_EINVAL;
    return spec_arch_parse(rec->spec, lim, out, errs);
}
