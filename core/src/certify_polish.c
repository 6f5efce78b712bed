/* Polish: finish training with a local solve so that the verdict is decisive. Plain gradient
 * descent crawls near minima (‖∇R‖ ≈ 1e-6 after thousands of steps); the tests that follow
 * need a point where the gradient is at rounding level.
 *
 * DESIGN
 * - One hidden layer (squared, logistic, huber; l2 = 0): the convex problem of the exact test
 *   with θ's own slopes is solved and mapped back (w_j = u_j / v_j, b_j = β_j / v_j, v and units
 *   with v_j = 0 unchanged). Accepted only when every pattern code is unchanged at the new point
 *   (it is then the minimiser over θ's region, so its gradient vanishes to rounding).
 * - Otherwise (or when that candidate is rejected) L-BFGS (Nocedal & Wright, Numerical
 *   Optimization, 2006, Alg. 7.4/7.5; memory 8) on R from θ, with Armijo backtracking (c = 1e-4).
 *   Once the possible decrease is below the rounding error of R, a step that keeps R within that
 *   error (16ε|R|) and lowers ‖∇R‖ is accepted instead, so the method can finish the gradient
 *   rather than stall at ‖∇R‖ ≈ √ε. A pair (s, y) with sᵀy ≤ 1e-16‖s‖‖y‖ is not stored; a
 *   non-descent direction resets the memory.
 * - The polished point replaces θ only if R did not rise beyond rounding and ‖∇R‖ fell; an
 *   L-BFGS result must moreover be stationary (‖∇R‖ ≤ grad_tol). Without that rule a run that
 *   was still moving (GD creeping towards a kink) would be carried far from the end point it is
 *   meant to judge, typically to a kink where L-BFGS stalls, and still be not_converged.
 * - Cost: the L-BFGS evaluations are nearly all of a certificate's time at a case-a end point
 *   that GD left short of stationarity; for nets the lane kernel takes they call it directly
 *   (eval() below: the same bits as the objective, less per-call overhead). */
#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "certify_int.h"
#include "lanes_int.h"

#define LBFGS_M 8
#define LBFGS_HALVINGS 50

typedef struct lbfgs_ws {
    size_t dim, count, head; /* stored pairs and the slot of the next one */
    double *s, *y;           /* LBFGS_M × dim */
    double rho[LBFGS_M], alpha[LBFGS_M];
    double *x, *g, *d, *xn, *gn; /* dim each */
    int direct;                  /* evaluate through the lane kernel directly (eval()) */
} lbfgs_ws;

static void lbfgs_free(lbfgs_ws *w)
{
    basin_free(w->s);
    basin_free(w->y);
    basin_free(w->x);
    basin_free(w->g);
    basin_free(w->d);
    basin_free(w->xn);
    basin_free(w->gn);
}

static int lbfgs_alloc(lbfgs_ws *w, size_t dim)
{
    size_t md;
    memset(w, 0, sizeof *w);
    w->dim = dim;
    if (basin_mul_size(LBFGS_M, dim, &md))
        return BASIN_ERANGE;
    w->s = basin_alloc_array(md, sizeof(double));
    w->y = basin_alloc_array(md, sizeof(double));
    w->x = basin_alloc_array(dim, sizeof(double));
    w->g = basin_alloc_array(dim, sizeof(double));
    w->d = basin_alloc_array(dim, sizeof(double));
    w->xn = basin_alloc_array(dim, sizeof(double));
    w->gn = basin_alloc_array(dim, sizeof(double));
    if (!w->s || !w->y || !w->x || !w->g || !w->d || !w->xn || !w->gn)
        return BASIN_ENOMEM;
    return BASIN_OK;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* d = −H g by the two-loop recursion over the stored pairs (newest first). */
static void two_loop(lbfgs_ws *w)
{
    size_t n = w->dim;
    for (size_t i = 0; i < n; i++)
        w->d[i] = w->g[i];
    for (size_t k = 0; k < w->count; k++) {
        size_t slot = (w->head + LBFGS_M - 1 - k) % LBFGS_M;
        const double *s = w->s + slot * n, *y = w->y + slot * n;
        w->alpha[slot] = w->rho[slot] * dot(s, w->d, n);
        for (size_t i = 0; i < n; i++)
            w->d[i] -= w->alpha[slot] * y[i];
    }
    size_t newest = (w->head + LBFGS_M - 1) % LBFGS_M;
    const double *sn = w->s + newest * n, *yn = w->y + newest * n;
    double gamma = dot(sn, yn, n) / dot(yn, yn, n);
    for (size_t i = 0; i < n; i++)
        w->d[i] *= gamma;
    for (size_t k = w->count; k-- > 0;) {
        size_t slot = (w->head + LBFGS_M - 1 - k) % LBFGS_M;
        const double *s = w->s + slot * n, *y = w->y + slot * n;
        double beta = w->rho[slot] * dot(y, w->d, n);
        for (size_t i = 0; i < n; i++)
            w->d[i] += (w->alpha[slot] - beta) * s[i];
    }
    for (size_t i = 0; i < n; i++)
        w->d[i] = -w->d[i];
}

static void store_pair(lbfgs_ws *w)
{
    size_t n = w->dim;
    double *s = w->s + w->head * n, *y = w->y + w->head * n;
    for (size_t i = 0; i < n; i++) {
        s[i] = w->xn[i] - w->x[i];
        y[i] = w->gn[i] - w->g[i];
    }
    double sy = dot(s, y, n), ss = dot(s, s, n), yy = dot(y, y, n);
    if (!(sy > 1e-16 * sqrt(ss * yy)))
        return;
    w->rho[w->head] = 1.0 / sy;
    w->head = (w->head + 1) % LBFGS_M;
    if (w->count < LBFGS_M)
        w->count++;
}

/* R and ∇R at x, as c->obj.value_grad gives them. With w->direct (a net the lane kernel takes,
 * targets checked once by the caller) the kernel is called here as basin_net_risk_grad calls it
 * for one θ, with the l2 term added as objective.c adds it: the same bits, without the per-call
 * target check and the recording of layer values into the objective's workspace, which nothing
 * here reads (≈ 5% of a case-a evaluation). */
static int eval(basin__cert_ctx *c, const lbfgs_ws *w, const double *x, double *f, double *g)
{
    if (!w->direct)
        return c->obj.value_grad(c->obj.ctx, x, NULL, 0, f, g);
    size_t n = c->dim;
    double risk;
    memset(g, 0, n * sizeof *g);
    basin__lanes_eval(c->net, 1, x, c->ds, NULL, c->n, c->loss, g, &risk, c->ws->lanes, NULL);
    if (c->l2 != 0.0) {
        double sq = 0.0;
        for (size_t i = 0; i < n; i++)
            sq += x[i] * x[i];
        risk += 0.5 * c->l2 * sq;
        for (size_t i = 0; i < n; i++)
            g[i] += c->l2 * x[i];
    }
    *f = risk;
    return BASIN_OK;
}

/* L-BFGS from theta (risk f, gradient in c->g); the end point in w->x, its risk in *f_out. */
static int lbfgs_run(basin__cert_ctx *c, lbfgs_ws *w, const double *theta, double f, double *f_out,
                     size_t *iterations)
{
    size_t n = w->dim;
    int rc = BASIN_OK;
    memcpy(w->x, theta, n * sizeof *w->x);
    memcpy(w->g, c->g, n * sizeof *w->g);
    for (size_t it = 0; it < c->opts->polish_max_iter; it++) {
        double gnorm = sqrt(dot(w->g, w->g, n));
        if (gnorm <= c->opts->polish_grad_tol)
            break;
        double t = 1.0;
        if (w->count > 0)
            two_loop(w);
        double gd = w->count > 0 ? dot(w->g, w->d, n) : 0.0;
        if (!(gd < 0)) {
            w->count = 0;
            for (size_t i = 0; i < n; i++)
                w->d[i] = -w->g[i];
            gd = -gnorm * gnorm;
            t = fmin(1.0, 1.0 / gnorm);
        }
        int accepted = 0;
        double fn = f, fr = basin__cert_fround(f);
        for (int h = 0; h < LBFGS_HALVINGS && !accepted; h++, t *= 0.5) {
            for (size_t i = 0; i < n; i++)
                w->xn[i] = w->x[i] + t * w->d[i];
            if ((rc = eval(c, w, w->xn, &fn, w->gn)) != BASIN_OK)
                goto done;
            accepted =
                fn <= f + 1e-4 * t * gd || (fn <= f + fr && sqrt(dot(w->gn, w->gn, n)) < gnorm);
        }
        if (!accepted)
            break;
        store_pair(w);
        memcpy(w->x, w->xn, n * sizeof *w->x);
        memcpy(w->g, w->gn, n * sizeof *w->g);
        f = fn;
        (*iterations)++;
    }
done:
    *f_out = f;
    return rc;
}

static int codes_differ(const basin__cert_ctx *c)
{
    size_t total = c->n * c->P;
    return total ? memcmp(c->codes, c->codes2, total * sizeof *c->codes) != 0 : 0;
}

/* Take cand (risk f1, gradient norm g1) when it is no worse in R and better in ‖∇R‖. */
static int consider(basin__cert_ctx *c, double *theta, const double *cand, double f1, double g1,
                    basin_certificate *cert)
{
    basin_cert_polish *pol = &cert->polish;
    if (!(f1 <= pol->risk_before + basin__cert_fround(pol->risk_before)) ||
        !(g1 < pol->grad_before))
        return 0;
    for (size_t i = 0; i < c->dim; i++)
        c->x2[i] = cand[i] - theta[i];
    pol->moved = basin__cert_norm(c->x2, c->dim);
    memcpy(theta, cand, c->dim * sizeof *theta);
    pol->accepted = 1;
    pol->risk_after = f1;
    pol->grad_after = g1;
    return 1;
}

int basin__cert_polish(basin__cert_ctx *c, double *theta, basin_certificate *cert)
{
    basin_cert_polish *pol = &cert->polish;
    lbfgs_ws w;
    double f0, f1;
    int rc, ok = 0;
    memset(&w, 0, sizeof w);
    pol->ran = 1;
    pol->method = "none";
    if ((rc = c->obj.value_grad(c->obj.ctx, theta, NULL, 0, &f0, c->g)) != BASIN_OK)
        goto done;
    pol->risk_before = pol->risk_after = f0;
    pol->grad_before = pol->grad_after = basin__cert_norm(c->g, c->dim);
    if (!isfinite(f0) || !(pol->grad_before > c->opts->polish_grad_tol))
        goto done;
    if ((rc = lbfgs_alloc(&w, c->dim)) != BASIN_OK)
        goto done;
    w.direct = c->use_lanes && c->ws->lanes && basin__lanes_eligible(c->net) &&
               basin_net_param_count(c->net) == c->dim &&
               basin__check_selection(c->net, c->ws, c->ds, NULL, c->n, c->loss) == BASIN_OK;
    if ((rc = basin__cert_scan(c, theta, c->codes2, 0, cert)) != BASIN_OK)
        goto done;
    if (c->one_hidden) {
        size_t iters = 0;
        rc = basin__cert_convex_candidate(c, &c->oh, theta, c->x1, &iters, &ok);
        if (rc == BASIN_OK && ok)
            rc = basin__cert_scan(c, c->x1, c->codes, 0, cert);
        if (rc)
            goto done;
        if (ok && !codes_differ(c)) {
            if ((rc = c->obj.value_grad(c->obj.ctx, c->x1, NULL, 0, &f1, c->g1)) != BASIN_OK)
                goto done;
            if (consider(c, theta, c->x1, f1, basin__cert_norm(c->g1, c->dim), cert)) {
                pol->method = "one_hidden_layer_convex";
                pol->iterations = iters;
                goto done;
            }
        }
    }
    size_t iters = 0;
    if ((rc = lbfgs_run(c, &w, theta, f0, &f1, &iters)) != BASIN_OK)
        goto done;
    if ((rc = c->obj.value_grad(c->obj.ctx, w.x, NULL, 0, &f1, c->g1)) != BASIN_OK)
        goto done;
    if ((rc = basin__cert_scan(c, w.x, c->codes, 0, cert)) != BASIN_OK)
        goto done;
    int changed = codes_differ(c);
    double g1 = basin__cert_norm(c->g1, c->dim);
    if (g1 <= c->opts->grad_tol && consider(c, theta, w.x, f1, g1, cert)) {
        pol->method = "lbfgs";
        pol->iterations = iters;
        pol->pattern_changed = changed;
    }
done:
    lbfgs_free(&w);
    return rc;
}
