/* Comparing two end points modulo symmetry (basin_compare in basins.h): risks, function
 * distance, activation-pattern agreement after alignment, and the risk profile along the
 * straight path between the normalised and aligned points.
 *
 * DESIGN
 * - Symmetry reduction first: θ_a' = normalize(θ_a), θ_b' = align(normalize(θ_b)) to θ_a'
 *   (basins_normalize.c, basins_align.c). θ_b' computes the same function as θ_b, and unit i
 *   of θ_b' is the unit matched to unit i of θ_a, so patterns are compared entry by entry.
 *   Positive rescaling keeps the sign of every pre-activation and the argmax of every max-pool
 *   window, so the patterns of θ_a and θ_a' (and of θ_b and θ_b') agree.
 * - One pass over the data in chunks of max_batch samples evaluates θ_a and θ_b' side by side
 *   in two workspaces: outputs give d_f and the output RMS, the pre-activations left in the
 *   workspaces give the patterns.
 * - Path: R((1−t)·θ_a' + t·θ_b') at t_k = k/(T−1) (t_0 = 0 and t_{T−1} = 1 exactly). The
 *   straight path between the points as given (optional) shows what the symmetry reduction
 *   changes: between a permuted copy and its original it mixes unrelated units. The barrier
 *   is measured against max(R_a, R_b) computed at the points as given, so a flat profile
 *   between equivalent points shows a rounding-sized barrier. */
#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "basins_int.h"

static int alloc_profile(basin_path_profile *p, size_t points)
{
    p->t = basin_alloc_array(points, sizeof *p->t);
    p->risk = basin_alloc_array(points, sizeof *p->risk);
    if (!p->t || !p->risk)
        return BASIN_ENOMEM;
    p->points = points;
    return BASIN_OK;
}

/* Fill p with the risks along (1−t)·x0 + t·x1, and its peak and barrier. */
static int path_profile(const basin_net *net, basin_net_ws *ws, const basin_dataset *ds,
                        const basin_loss *loss, const double *x0, const double *x1, double *theta,
                        double ref, basin_path_profile *p)
{
    size_t P = net->param_count, T = p->points;
    for (size_t k = 0; k < T; k++) {
        double t = (double)k / (double)(T - 1); /* exactly 0 and 1 at the ends */
        for (size_t j = 0; j < P; j++)
            theta[j] = (1.0 - t) * x0[j] + t * x1[j];
        int rc = basin_net_risk_grad(net, ws, theta, ds, NULL, ds->n, loss, &p->risk[k], NULL);
        if (rc)
            return rc;
        p->t[k] = t;
        if (k == 0 || p->risk[k] > p->risk[p->peak])
            p->peak = k;
    }
    p->barrier = p->risk[p->peak] - ref;
    return BASIN_OK;
}

/* d_f, the output RMS of a and the pattern agreement, in one pass over ds. */
static int functions_and_patterns(const basin_net *net, basin_net_ws *wa, basin_net_ws *wb,
                                  const basin_dataset *ds, const double *ta, const double *tb,
                                  basin_comparison *c)
{
    basin__pattern_shape shape;
    uint32_t *pa = NULL;
    int rc = basin__pattern_shape_of(net, &shape);
    if (rc)
        goto done;
    pa = basin_alloc_array(shape.words ? 2 * shape.words : 1, sizeof *pa);
    if (!pa) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    uint32_t *pb = pa + shape.words;
    size_t n = ds->n, k = net->out_dim, same_samples = 0;
    double diff2 = 0.0, out2 = 0.0, unit_diffs = 0.0;
    for (size_t start = 0; start < n; start += wa->max_batch) {
        size_t cm = n - start < wa->max_batch ? n - start : wa->max_batch;
        basin__gather(wa, ds, NULL, start, cm);
        basin__gather(wb, ds, NULL, start, cm);
        basin__forward_rows(net, wa, ta, cm);
        basin__forward_rows(net, wb, tb, cm);
        const double *oa = wa->act[net->n_layers], *ob = wb->act[net->n_layers];
        for (size_t j = 0; j < cm * k; j++) {
            double d = oa[j] - ob[j];
            diff2 += d * d;
            out2 += oa[j] * oa[j];
        }
        for (size_t i = 0; i < cm; i++) {
            basin__pattern_row(net, wa, &shape, i, pa);
            basin__pattern_row(net, wb, &shape, i, pb);
            size_t d = basin__pattern_diff(&shape, pa, pb);
            unit_diffs += (double)d;
            same_samples += d == 0;
        }
    }
    size_t units = shape.sign_units + shape.pool_units;
    c->func_dist = sqrt(diff2 / (double)n);
    c->output_rms_a = sqrt(out2 / (double)n);
    c->pattern_units = units;
    c->unit_agreement = units ? 1.0 - unit_diffs / ((double)n * (double)units) : 1.0;
    c->sample_agreement = (double)same_samples / (double)n;
done:
    basin_free(pa);
    return rc;
}

static double distance(const double *x, const double *y, size_t n)
{
    double s = 0.0;
    for (size_t j = 0; j < n; j++)
        s += (x[j] - y[j]) * (x[j] - y[j]);
    return sqrt(s);
}

int basin_compare(const basin_net *net, const basin_dataset *ds, const basin_loss *loss,
                  const double *theta_a, const double *theta_b, const basin_compare_opts *opts,
                  basin_comparison **out)
{
    basin_comparison *c = NULL;
    basin_net_ws *wa = NULL, *wb = NULL;
    double *theta = NULL;
    basin_compare_opts o;
    int rc = BASIN_OK;
    if (out)
        *out = NULL;
    if (opts)
        o = *opts;
    else
        basin_compare_defaults(&o);
    if (!out || !theta_a || !theta_b || o.path_points < 2) {
        rc = BASIN_EINVAL;
        goto done;
    }
    rc = basin__check_data(net, ds, loss);
    if (rc)
        goto done;
    size_t P = net->param_count, batch = basin__batch_size(o.max_batch, ds->n);
    c = basin_calloc(1, sizeof *c);
    if (!c) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    c->param_count = P;
    c->theta_a_normalized = basin_alloc_array(P, sizeof *c->theta_a_normalized);
    c->theta_b_aligned = basin_alloc_array(P, sizeof *c->theta_b_aligned);
    theta = basin_alloc_array(P, sizeof *theta);
    if (!c->theta_a_normalized || !c->theta_b_aligned || !theta) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = alloc_profile(&c->aligned, o.path_points);
    if (!rc && o.unaligned_path)
        rc = alloc_profile(&c->unaligned, o.path_points);
    if (!rc)
        rc = basin_net_ws_create(net, batch, &wa);
    if (!rc)
        rc = basin_net_ws_create(net, batch, &wb);
    if (!rc)
        rc = basin_normalize(net, theta_a, c->theta_a_normalized);
    if (!rc)
        rc = basin_normalize(net, theta_b, c->theta_b_aligned);
    if (rc)
        goto done;
    c->param_dist_unaligned = distance(c->theta_a_normalized, c->theta_b_aligned, P);
    rc = basin_align(net, c->theta_a_normalized, c->theta_b_aligned, c->theta_b_aligned, &c->align);
    if (rc)
        goto done;
    c->param_dist = distance(c->theta_a_normalized, c->theta_b_aligned, P);
    rc = basin_net_risk_grad(net, wa, theta_a, ds, NULL, ds->n, loss, &c->risk_a, NULL);
    if (!rc)
        rc = basin_net_risk_grad(net, wa, theta_b, ds, NULL, ds->n, loss, &c->risk_b, NULL);
    if (rc)
        goto done;
    c->risk_diff = c->risk_b - c->risk_a;
    rc = functions_and_patterns(net, wa, wb, ds, theta_a, c->theta_b_aligned, c);
    if (rc)
        goto done;
    double ref = c->risk_a > c->risk_b ? c->risk_a : c->risk_b;
    rc = path_profile(net, wa, ds, loss, c->theta_a_normalized, c->theta_b_aligned, theta, ref,
                      &c->aligned);
    if (!rc && o.unaligned_path)
        rc = path_profile(net, wa, ds, loss, theta_a, theta_b, theta, ref, &c->unaligned);
    if (rc)
        goto done;
    *out = c;
    c = NULL;
done:
    basin_comparison_free(c);
    basin_free(theta);
    basin_net_ws_free(wa);
    basin_net_ws_free(wb);
    return rc;
}
