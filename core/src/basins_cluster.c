/* Clustering end points into basins (basin_cluster in basins.h): same risk level and the same
 * function on the data, up to tolerances.
 *
 * DESIGN
 * - Leader clustering over the points sorted by (risk, index): the first point of a basin is
 *   its representative, so each representative is the lowest-risk member of its basin and the
 *   basins come out ordered by risk level. A point joins the first existing basin whose
 *   representative passes both tests, else founds a new one. The result depends on the input
 *   order only through exact risk ties (where the index decides).
 * - Tests against the representative r: |R_p − R_r| ≤ risk_tol·max(1, |R_r|), and
 *   d_f(p, r) = sqrt(mean_i ‖f_p(x_i) − f_r(x_i)‖²) ≤ func_tol_rel·(1 + RMS_r), with
 *   RMS_r = sqrt(mean_i ‖f_r(x_i)‖²): relative to the scale of the outputs, and absolute for
 *   outputs near 0. Comparing with the representative (not every member) keeps the rule
 *   order-free and stops chains of small steps from merging distant functions.
 * - d_f is a function of the outputs only, so it is invariant under rescaling and permutation
 *   of hidden units: no alignment is needed. Each point is evaluated once; the outputs of the
 *   representatives are kept (basins × N × out_dim doubles, grown geometrically), so the cost
 *   is one forward pass per point plus one output comparison per (point, candidate basin)
 *   at the same risk level. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "basins_int.h"

typedef struct ranked {
    double risk;
    size_t index;
} ranked;

static int cmp_ranked(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->risk != b->risk)
        return a->risk < b->risk ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

typedef struct cluster_ws {
    basin_net_ws *ws;
    ranked *order;
    double *cur;    /* outputs of the current point (N × out_dim) */
    double *reps;   /* outputs of every representative, basin after basin */
    size_t cap;     /* representatives reps can hold */
    size_t out_len; /* N × out_dim */
} cluster_ws;

static int check_args(const basin_net *net, const basin_dataset *ds, const basin_loss *loss,
                      size_t n_points, const double *thetas, const double *risks,
                      const basin_cluster_opts *o, basin_clustering **out)
{
    if (!out || (n_points > 0 && !thetas))
        return BASIN_EINVAL;
    if (!(o->risk_tol >= 0) || !isfinite(o->risk_tol) || !(o->func_tol_rel >= 0) ||
        !isfinite(o->func_tol_rel))
        return BASIN_EINVAL;
    int rc = basin__check_data(net, ds, loss);
    if (rc)
        return rc;
    size_t total;
    if (basin_mul_size(n_points, net->param_count, &total))
        return BASIN_ERANGE;
    for (size_t j = 0; j < total; j++)
        if (!isfinite(thetas[j]))
            return BASIN_EINVAL;
    for (size_t p = 0; risks && p < n_points; p++)
        if (!isfinite(risks[p]))
            return BASIN_EINVAL;
    return BASIN_OK;
}

/* Room for one more representative's outputs. */
static int reserve(cluster_ws *w, size_t basins)
{
    if (basins < w->cap)
        return BASIN_OK;
    size_t cap = w->cap ? 2 * w->cap : 4, len;
    if (cap < w->cap || basin_mul_size(cap, w->out_len, &len) ||
        basin_mul_size(len, sizeof *w->reps, &len))
        return BASIN_ERANGE;
    double *r = basin_realloc(w->reps, len);
    if (!r)
        return BASIN_ENOMEM;
    w->reps = r;
    w->cap = cap;
    return BASIN_OK;
}

static double rms_of(const double *o, size_t len, size_t n)
{
    double s = 0.0;
    for (size_t j = 0; j < len; j++)
        s += o[j] * o[j];
    return sqrt(s / (double)n);
}

static double dist_of(const double *x, const double *y, size_t len, size_t n)
{
    double s = 0.0;
    for (size_t j = 0; j < len; j++)
        s += (x[j] - y[j]) * (x[j] - y[j]);
    return sqrt(s / (double)n);
}

/* Put point p (risk r, outputs in w->cur) into a basin of cl. */
static int place(basin_clustering *cl, cluster_ws *w, const basin_cluster_opts *o, size_t p,
                 double r, size_t n)
{
    for (size_t b = 0; b < cl->n_basins; b++) {
        basin_basin_info *B = &cl->basins[b];
        double gap = fabs(r - B->risk);
        if (!(gap <= o->risk_tol * fmax(1.0, fabs(B->risk))))
            continue;
        double d = dist_of(w->cur, w->reps + b * w->out_len, w->out_len, n);
        if (!(d <= B->func_tol))
            continue;
        cl->assignment[p] = b;
        B->count++;
        B->max_func_dist = fmax(B->max_func_dist, d);
        B->max_risk_gap = fmax(B->max_risk_gap, gap);
        return BASIN_OK;
    }
    int rc = reserve(w, cl->n_basins);
    if (rc)
        return rc;
    basin_basin_info *B = &cl->basins[cl->n_basins];
    memcpy(w->reps + cl->n_basins * w->out_len, w->cur, w->out_len * sizeof *w->cur);
    B->risk = r;
    B->representative = p;
    B->count = 1;
    B->output_rms = rms_of(w->cur, w->out_len, n);
    B->func_tol = o->func_tol_rel * (1.0 + B->output_rms);
    cl->assignment[p] = cl->n_basins++;
    return BASIN_OK;
}

/* Member lists (ascending point index) and region counts of the finished basins. */
static int finish(const basin_net *net, const basin_dataset *ds, const double *thetas,
                  const basin_cluster_opts *o, basin_clustering *cl, cluster_ws *w)
{
    for (size_t b = 0; b < cl->n_basins; b++) {
        cl->basins[b].members = basin_alloc_array(cl->basins[b].count, sizeof(size_t));
        if (!cl->basins[b].members)
            return BASIN_ENOMEM;
        cl->basins[b].count = 0;
    }
    for (size_t p = 0; p < cl->n_points; p++) {
        basin_basin_info *B = &cl->basins[cl->assignment[p]];
        B->members[B->count++] = p;
    }
    for (size_t b = 0; o->count_regions && b < cl->n_basins; b++) {
        const double *theta = thetas + cl->basins[b].representative * net->param_count;
        int rc = basin__count_regions_ws(net, w->ws, ds, theta, &cl->basins[b].regions);
        if (rc)
            return rc;
    }
    return BASIN_OK;
}

static int cluster_points(const basin_net *net, const basin_dataset *ds, const double *thetas,
                          const basin_cluster_opts *o, basin_clustering *cl, cluster_ws *w)
{
    size_t n = ds->n, P = net->param_count;
    for (size_t p = 0; p < cl->n_points; p++) {
        w->order[p].risk = cl->risks[p];
        w->order[p].index = p;
    }
    qsort(w->order, cl->n_points, sizeof *w->order, cmp_ranked);
    for (size_t q = 0; q < cl->n_points; q++) {
        size_t p = w->order[q].index;
        int rc = basin_net_forward(net, w->ws, thetas + p * P, ds->x, n, w->cur);
        if (!rc)
            rc = place(cl, w, o, p, cl->risks[p], n);
        if (rc)
            return rc;
    }
    return finish(net, ds, thetas, o, cl, w);
}

int basin_cluster(const basin_net *net, const basin_dataset *ds, const basin_loss *loss,
                  size_t n_points, const double *thetas, const double *risks,
                  const basin_cluster_opts *opts, basin_clustering **out)
{
    basin_clustering *cl = NULL;
    cluster_ws w = {0};
    basin_cluster_opts o;
    int rc;
    if (out)
        *out = NULL;
    if (opts)
        o = *opts;
    else
        basin_cluster_defaults(&o);
    rc = check_args(net, ds, loss, n_points, thetas, risks, &o, out);
    if (rc)
        goto done;
    if (basin_mul_size(ds->n, net->out_dim, &w.out_len)) {
        rc = BASIN_ERANGE;
        goto done;
    }
    cl = basin_calloc(1, sizeof *cl);
    if (cl) {
        cl->n_points = n_points;
        cl->basins = basin_calloc(n_points, sizeof *cl->basins);
        cl->assignment = basin_alloc_array(n_points, sizeof *cl->assignment);
        cl->risks = basin_alloc_array(n_points, sizeof *cl->risks);
    }
    w.order = basin_alloc_array(n_points, sizeof *w.order);
    w.cur = basin_alloc_array(w.out_len, sizeof *w.cur);
    if (!cl || !cl->basins || !cl->assignment || !cl->risks || !w.order || !w.cur) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = basin_net_ws_create(net, basin__batch_size(o.max_batch, ds->n), &w.ws);
    if (rc)
        goto done;
    for (size_t p = 0; p < n_points && !rc; p++) {
        if (risks)
            cl->risks[p] = risks[p];
        else
            rc = basin_net_risk_grad(net, w.ws, thetas + p * net->param_count, ds, NULL, ds->n,
                                     loss, &cl->risks[p], NULL);
        if (!rc && !isfinite(cl->risks[p]))
            rc = BASIN_EINVAL; /* an overflowing point: no risk level to compare */
    }
    if (!rc)
        rc = cluster_points(net, ds, thetas, &o, cl, &w);
    if (rc)
        goto done;
    cl->lowest = 0;
    *out = cl;
    cl = NULL;
done:
    basin_clustering_free(cl);
    basin_net_ws_free(w.ws);
    basin_free(w.order);
    basin_free(w.cur);
    basin_free(w.reps);
    return rc;
}
