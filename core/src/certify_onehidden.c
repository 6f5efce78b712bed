/* The exact local test for a dense one-hidden-layer network with scalar output,
 * f(x) = Σ_j v_j h(w_j·x + b_j) + c, and the convex polish built on the same problem.
 *
 * DESIGN
 * - With the slopes s_ij ∈ {s_neg, s_pos} that unit j uses on sample i held fixed, the output
 *   is Σ_j s_ij (u_j·x_i + β_j) + c with u_j = v_j w_j, β_j = v_j b_j: linear in
 *   p = (u, β, c), so E = (1/N) min_p Σ_i ℓ(D_i p, y_i) is a convex problem with the design row
 *   D_i = [s_i1 x_i, ..., s_iH x_i, s_i1, ..., s_iH, 1] (columns in θ's own order W1, b1, b2).
 *   Near θ (every margin positive) the network can realise only such outputs, so
 *   R(θ') ≥ E: R(θ) ≤ E + tol certifies a local minimum. When every v_j ≠ 0 the map
 *   (w, b, c) ↦ p is a local diffeomorphism with v held fixed, so R(θ) > E + tol means the
 *   segment from p0 (θ's own point) to the minimiser p* descends (convexity:
 *   F(p0 + tΔ) ≤ F(p0) − t(F(p0) − F(p*))), and with v fixed it is the straight line
 *   θ + t·d, d = (Δu_j / v_j, Δβ_j / v_j, Δc): a descent direction in θ (science.md §3).
 * - Squared loss: the increment Δ = argmin ‖DΔ − (y − Dp0)‖ by LAPACK dgelsd (SVD,
 *   minimum norm: directions the data do not pin, such as dead units' columns, stay unchanged).
 *   Logistic and Huber: damped Newton from p0 on Σ ℓ(D_i p), Hessian DᵀWD by dsyrk plus a
 *   ridge λ (never part of the objective: a floor 1e-12 on the curvature scale, raised ×1e3
 *   whenever backtracking fails — Huber points all in the linear zone have DᵀWD = 0 — and
 *   lowered ×10 after each accepted step), Armijo backtracking, converged at
 *   ‖∇‖ ≤ 1e-12·max(1, b·Σ‖D_i‖) (b bounds |ℓ'|). A logistic problem whose iterate has every
 *   margin positive with Σℓ < log 2 is separable: E = 0 (the infimum), not attained.
 * - Boundary form (0 < b pairs on a kink): the bound becomes min over the 2^b slope
 *   assignments of the boundary pairs; evaluated only when 2^b·N·P² stays under a flop budget,
 *   stopping at the first assignment that fails. At a boundary point R > E + tol proves nothing
 *   (the descent segment may leave the region), so no "not a minimum" answer there.
 * - LAPACK is called through the column-major *_work interfaces so that it allocates nothing
 *   (all memory through basin_alloc). */
#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "certify_int.h"

#define OH_MAX_DESIGN ((size_t)1 << 22) /* N·P doubles of the design */
#define OH_MAX_NEWTON_P 1024            /* unknowns for the dense Newton system */
#define OH_MAX_NEWTON 100
#define OH_MAX_HALVINGS 40
#define OH_MAX_DAMPING 12 /* ridge increases per Newton iteration */
#define OH_BOUNDARY_FLOPS 2e9
#define OH_GTOL 1e-12
#define OH_LOG2 0.69314718055994530942

int basin__cert_onehidden_detect(const basin_net *net, basin__onehidden *oh)
{
    size_t l = 0, nl = net->n_layers;
    if (nl > 0 && net->layers[0].spec.kind == BASIN_LAYER_FLATTEN)
        l = 1;
    if (nl - l != 3)
        return 0;
    const basin__layer *A = &net->layers[l], *S = &net->layers[l + 1], *O = &net->layers[l + 2];
    if (A->spec.kind != BASIN_LAYER_DENSE || S->spec.kind != BASIN_LAYER_ACTIVATION ||
        O->spec.kind != BASIN_LAYER_DENSE || O->info.out_dim != 1)
        return 0;
    memset(oh, 0, sizeof *oh);
    oh->l1 = l;
    oh->lact = l + 1;
    oh->lout = l + 2;
    oh->H = A->info.out_dim;
    oh->d = A->info.in_dim;
    oh->bias1 = A->info.bias_count > 0;
    oh->bias2 = O->info.bias_count > 0;
    oh->off_w1 = A->info.param_offset;
    oh->off_b1 = oh->off_w1 + A->info.weight_count;
    oh->off_w2 = O->info.param_offset;
    oh->off_b2 = oh->off_w2 + O->info.weight_count;
    oh->s_neg = S->spec.s_neg;
    oh->s_pos = S->spec.s_pos;
    size_t P;
    if (basin_mul_size(oh->H, oh->d, &P) || basin_add_size(P, oh->bias1 ? oh->H : 0, &P) ||
        basin_add_size(P, oh->bias2 ? 1 : 0, &P))
        return 0;
    oh->P = P;
    return 1;
}

int basin__cert_onehidden_loss_ok(const basin_loss *loss, double l2)
{
    return l2 == 0.0 && (loss->kind == BASIN_LOSS_SQUARED || loss->kind == BASIN_LOSS_LOGISTIC ||
                         loss->kind == BASIN_LOSS_HUBER);
}

/* ---- workspace ---- */

typedef struct oh_ws {
    size_t n, P, ldb;
    int newton;
    double *slope;  /* n × H */
    double *D, *Dw; /* n × P column-major; Dw: √w-scaled copy (Newton) */
    double *b;      /* ldb */
    double *sv;     /* min(n, P) */
    double *work;   /* dgelsd */
    lapack_int lwork, *iwork;
    double *p0, *p, *dp, *trial, *grad, *gtrial; /* P each */
    double *o, *lg;                              /* n each */
    double *hess;                                /* P × P (Newton) */
} oh_ws;

static void oh_ws_free(oh_ws *w)
{
    basin_free(w->slope);
    basin_free(w->D);
    basin_free(w->Dw);
    basin_free(w->b);
    basin_free(w->sv);
    basin_free(w->work);
    basin_free(w->iwork);
    basin_free(w->p0);
    basin_free(w->p);
    basin_free(w->dp);
    basin_free(w->trial);
    basin_free(w->grad);
    basin_free(w->gtrial);
    basin_free(w->o);
    basin_free(w->lg);
    basin_free(w->hess);
}

/* BASIN_ENOTSUP when the problem is too large for the dense solvers. */
static int oh_ws_alloc(const basin__cert_ctx *c, const basin__onehidden *oh, oh_ws *w)
{
    size_t n = c->n, P = oh->P, nP, nH;
    memset(w, 0, sizeof *w);
    if (basin_mul_size(n, P, &nP) || basin_mul_size(n, oh->H, &nH) || nP > OH_MAX_DESIGN ||
        n > INT_MAX || P > INT_MAX)
        return BASIN_ENOTSUP;
    w->n = n;
    w->P = P;
    w->ldb = n > P ? n : P;
    w->newton = c->loss->kind != BASIN_LOSS_SQUARED;
    if (w->newton && P > OH_MAX_NEWTON_P)
        return BASIN_ENOTSUP;
    w->slope = basin_alloc_array(nH ? nH : 1, sizeof(double));
    w->D = basin_alloc_array(nP ? nP : 1, sizeof(double));
    w->b = basin_alloc_array(w->ldb, sizeof(double));
    w->sv = basin_alloc_array(n < P ? n : P, sizeof(double));
    w->p0 = basin_alloc_array(P, sizeof(double));
    w->p = basin_alloc_array(P, sizeof(double));
    w->dp = basin_alloc_array(P, sizeof(double));
    w->trial = basin_alloc_array(P, sizeof(double));
    w->grad = basin_alloc_array(P, sizeof(double));
    w->gtrial = basin_alloc_array(P, sizeof(double));
    w->o = basin_alloc_array(n, sizeof(double));
    w->lg = basin_alloc_array(n, sizeof(double));
    if (!w->slope || !w->D || !w->b || !w->sv || !w->p0 || !w->p || !w->dp || !w->trial ||
        !w->grad || !w->gtrial || !w->o || !w->lg)
        return BASIN_ENOMEM;
    if (w->newton) {
        w->Dw = basin_alloc_array(nP, sizeof(double));
        w->hess = basin_alloc_array(P * P, sizeof(double));
        return w->Dw && w->hess ? BASIN_OK : BASIN_ENOMEM;
    }
    double q = 0;
    lapack_int qi = 0, rank = 0;
    lapack_int info =
        LAPACKE_dgelsd_work(LAPACK_COL_MAJOR, (lapack_int)n, (lapack_int)P, 1, w->D, (lapack_int)n,
                            w->b, (lapack_int)w->ldb, w->sv, -1.0, &rank, &q, -1, &qi);
    if (info != 0 || !(q >= 1) || q > (double)INT_MAX || qi < 1)
        return BASIN_ENUMERIC;
    w->lwork = (lapack_int)q;
    w->work = basin_alloc_array((size_t)w->lwork, sizeof(double));
    w->iwork = basin_alloc_array((size_t)qi, sizeof(lapack_int));
    return w->work && w->iwork ? BASIN_OK : BASIN_ENOMEM;
}

/* ---- the convex problem ---- */

/* The slopes of the pattern rows `codes` (every sample on s_pos for an identity layer). */
static void slopes_from_codes(const basin__cert_ctx *c, const basin__onehidden *oh,
                              const uint32_t *codes, oh_ws *w)
{
    for (size_t i = 0; i < w->n; i++)
        for (size_t j = 0; j < oh->H; j++) {
            int pos = c->n_play ? codes[i * c->P + j] != 0 : 1;
            w->slope[i * oh->H + j] = pos ? oh->s_pos : oh->s_neg;
        }
}

static void theta_to_p(const basin__onehidden *oh, const double *theta, double *p)
{
    size_t H = oh->H, d = oh->d;
    for (size_t j = 0; j < H; j++) {
        double v = theta[oh->off_w2 + j];
        for (size_t t = 0; t < d; t++)
            p[j * d + t] = v * theta[oh->off_w1 + j * d + t];
        if (oh->bias1)
            p[H * d + j] = v * theta[oh->off_b1 + j];
    }
    if (oh->bias2)
        p[oh->P - 1] = theta[oh->off_b2];
}

static void outputs(const basin__cert_ctx *c, const basin__onehidden *oh, const oh_ws *w,
                    const double *p, double *o)
{
    size_t H = oh->H, d = oh->d;
    for (size_t i = 0; i < w->n; i++) {
        const double *x = c->ds->x + i * d;
        double s = oh->bias2 ? p[oh->P - 1] : 0.0;
        for (size_t j = 0; j < H; j++) {
            double z = oh->bias1 ? p[H * d + j] : 0.0;
            for (size_t t = 0; t < d; t++)
                z += p[j * d + t] * x[t];
            s += w->slope[i * H + j] * z;
        }
        o[i] = s;
    }
}

static void build_design(const basin__cert_ctx *c, const basin__onehidden *oh, oh_ws *w)
{
    size_t H = oh->H, d = oh->d, n = w->n;
    for (size_t i = 0; i < n; i++) {
        const double *x = c->ds->x + i * d;
        for (size_t j = 0; j < H; j++) {
            double s = w->slope[i * H + j];
            for (size_t t = 0; t < d; t++)
                w->D[(j * d + t) * n + i] = s * x[t];
            if (oh->bias1)
                w->D[(H * d + j) * n + i] = s;
        }
        if (oh->bias2)
            w->D[(oh->P - 1) * n + i] = 1.0;
    }
}

/* Σ ℓ at p; with grad, also Dᵀℓ' (and the outputs / ℓ' stay in w->o / w->lg). */
static double objective(const basin__cert_ctx *c, const basin__onehidden *oh, oh_ws *w,
                        const double *p, double *grad)
{
    double f = 0.0;
    outputs(c, oh, w, p, w->o);
    for (size_t i = 0; i < w->n; i++)
        f += basin_loss_eval(c->loss, &w->o[i], c->ds->y + i * c->ds->y_dim, 1,
                             grad ? &w->lg[i] : NULL);
    if (grad)
        cblas_dgemv(CblasColMajor, CblasTrans, (int)w->n, (int)w->P, 1.0, w->D, (int)w->n, w->lg, 1,
                    0.0, grad, 1);
    return f;
}

static double dotp(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Least squares: w->p = p0 + the minimum-norm increment. */
static int solve_ls(const basin__cert_ctx *c, const basin__onehidden *oh, oh_ws *w)
{
    build_design(c, oh, w);
    outputs(c, oh, w, w->p0, w->o);
    memset(w->b, 0, w->ldb * sizeof *w->b);
    for (size_t i = 0; i < w->n; i++)
        w->b[i] = c->ds->y[i * c->ds->y_dim] - w->o[i];
    lapack_int rank = 0;
    double rcond = DBL_EPSILON * (double)w->ldb;
    lapack_int info = LAPACKE_dgelsd_work(LAPACK_COL_MAJOR, (lapack_int)w->n, (lapack_int)w->P, 1,
                                          w->D, (lapack_int)w->n, w->b, (lapack_int)w->ldb, w->sv,
                                          rcond, &rank, w->work, w->lwork, w->iwork);
    if (info != 0)
        return BASIN_ENUMERIC;
    for (size_t j = 0; j < w->P; j++)
        w->p[j] = w->p0[j] + w->b[j];
    return BASIN_OK;
}

/* √ℓ''-scaled design rows at the outputs in w->o (which must be those of w->p). */
static void hessian_weights(const basin__cert_ctx *c, oh_ws *w)
{
    size_t n = w->n, P = w->P;
    for (size_t i = 0; i < n; i++) {
        double one = 1.0, h = 0.0;
        basin_loss_hess_vec(c->loss, &w->o[i], c->ds->y + i * c->ds->y_dim, 1, &one, &h);
        double r = sqrt(fmax(h, 0.0));
        for (size_t j = 0; j < P; j++)
            w->Dw[j * n + i] = r * w->D[j * n + i];
    }
}

/* dp from (DᵀWD + λI) dp = −grad. 1 when the matrix is not numerically positive definite. */
static int newton_direction(oh_ws *w, double lam)
{
    size_t n = w->n, P = w->P;
    cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, (int)P, (int)n, 1.0, w->Dw, (int)n, 0.0,
                w->hess, (int)P);
    for (size_t j = 0; j < P; j++) {
        w->hess[j * P + j] += lam;
        w->dp[j] = -w->grad[j];
    }
    lapack_int info = LAPACKE_dposv_work(LAPACK_COL_MAJOR, 'L', (lapack_int)P, 1, w->hess,
                                         (lapack_int)P, w->dp, (lapack_int)P);
    if (info < 0)
        return BASIN_ENUMERIC;
    return info > 0 ? 1 : BASIN_OK;
}

/* Armijo backtracking along w->dp from w->p (value f, gradient norm gn); on success w->p,
 * w->grad, w->o and *f describe the new point. */
static int line_search(const basin__cert_ctx *c, const basin__onehidden *oh, oh_ws *w, double *f,
                       double gn)
{
    size_t P = w->P;
    double slope = dotp(w->grad, w->dp, P), t = 1.0, fr = basin__cert_fround(*f);
    if (!(slope < 0))
        return 0;
    for (int h = 0; h < OH_MAX_HALVINGS; h++, t *= 0.5) {
        for (size_t j = 0; j < P; j++)
            w->trial[j] = w->p[j] + t * w->dp[j];
        double ft = objective(c, oh, w, w->trial, w->gtrial);
        if (ft <= *f + 1e-4 * t * slope ||
            (ft <= *f + fr && sqrt(dotp(w->gtrial, w->gtrial, P)) < gn)) {
            *f = ft;
            memcpy(w->p, w->trial, P * sizeof *w->p);
            memcpy(w->grad, w->gtrial, P * sizeof *w->grad);
            return 1;
        }
    }
    return 0;
}

static int separated(const basin__cert_ctx *c, const oh_ws *w, double f)
{
    if (c->loss->kind != BASIN_LOSS_LOGISTIC || !(f < OH_LOG2))
        return 0;
    for (size_t i = 0; i < w->n; i++)
        if (!((2.0 * c->ds->y[i * c->ds->y_dim] - 1.0) * w->o[i] > 0))
            return 0;
    return 1;
}

/* Damped Newton from p0 (logistic, huber); *exact = converged or separated (E = 0). */
static int solve_newton(const basin__cert_ctx *c, const basin__onehidden *oh, oh_ws *w,
                        double *E_sum, int *exact, size_t *iterations)
{
    size_t n = w->n, P = w->P;
    int rc = BASIN_OK;
    build_design(c, oh, w);
    int huber = c->loss->kind == BASIN_LOSS_HUBER;
    double gb = huber ? c->loss->huber_delta : 1.0, dn = 0.0, zz = 0.0;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < P; j++)
            s += w->D[j * n + i] * w->D[j * n + i];
        dn += sqrt(s);
    }
    for (size_t j = 0; j < P; j++)
        zz = fmax(zz, dotp(w->D + j * n, w->D + j * n, n));
    double gtol = OH_GTOL * fmax(1.0, gb * dn);
    /* ridge floor on the curvature scale (ℓ'' ≤ 1 for Huber, ≤ 1/4 logistic); it grows
     * Levenberg–Marquardt style when a step fails and shrinks after each success */
    double lam_floor = 1e-12 * (huber ? 1.0 : 0.25) * fmax(zz, 1e-300), lam = lam_floor;
    memcpy(w->p, w->p0, P * sizeof *w->p);
    double f = objective(c, oh, w, w->p, w->grad);
    *exact = 0;
    for (size_t it = 0; it < OH_MAX_NEWTON; it++) {
        double gn = sqrt(dotp(w->grad, w->grad, P));
        if (gn <= gtol) {
            *exact = 1;
            break;
        }
        if (separated(c, w, f)) { /* infimum 0; push past p so that p* lies strictly lower */
            for (size_t j = 0; j < P; j++)
                w->p[j] *= 2.0;
            f = 0.0;
            *exact = 1;
            break;
        }
        hessian_weights(c, w);
        int accepted = 0;
        for (int attempt = 0; attempt < OH_MAX_DAMPING && !accepted; attempt++) {
            rc = newton_direction(w, lam);
            if (rc < 0)
                goto done;
            if (rc == 0)
                accepted = line_search(c, oh, w, &f, gn);
            rc = BASIN_OK;
            lam = accepted ? fmax(lam_floor, 0.1 * lam) : lam * 1e3;
        }
        (*iterations)++;
        if (!accepted)
            break;
    }
    *E_sum = f;
done:
    return rc;
}

/* Solve at the slopes in w (p0 already set): E_sum = min Σℓ, w->p its minimiser. */
static int solve(const basin__cert_ctx *c, const basin__onehidden *oh, oh_ws *w, double *E_sum,
                 int *exact, size_t *iterations)
{
    if (!w->newton) {
        int rc = solve_ls(c, oh, w);
        if (rc)
            return rc;
        (*iterations)++;
        *exact = 1;
        *E_sum = objective(c, oh, w, w->p, NULL);
        return BASIN_OK;
    }
    return solve_newton(c, oh, w, E_sum, exact, iterations);
}

/* ---- from p back to θ ---- */

static int all_v_nonzero(const basin__onehidden *oh, const double *theta)
{
    for (size_t j = 0; j < oh->H; j++)
        if (theta[oh->off_w2 + j] == 0.0)
            return 0;
    return 1;
}

/* dθ (dim values) for the increment Δ = p − p0, v held fixed; units with v_j = 0 unchanged. */
static void map_increment(const basin__onehidden *oh, const double *theta, const oh_ws *w,
                          double *dtheta, size_t dim)
{
    size_t H = oh->H, d = oh->d;
    memset(dtheta, 0, dim * sizeof *dtheta);
    for (size_t j = 0; j < H; j++) {
        double v = theta[oh->off_w2 + j];
        if (v == 0.0)
            continue;
        for (size_t t = 0; t < d; t++)
            dtheta[oh->off_w1 + j * d + t] = (w->p[j * d + t] - w->p0[j * d + t]) / v;
        if (oh->bias1)
            dtheta[oh->off_b1 + j] = (w->p[H * d + j] - w->p0[H * d + j]) / v;
    }
    if (oh->bias2)
        dtheta[oh->off_b2] = w->p[oh->P - 1] - w->p0[oh->P - 1];
}

/* Store the unit descent direction in cert, after checking R(θ + t·d) < R for some t. */
static int record_descent(basin__cert_ctx *c, const basin__onehidden *oh, const double *theta,
                          const oh_ws *w, double R, basin_certificate *cert)
{
    size_t dim = c->dim;
    int rc = BASIN_OK;
    map_increment(oh, theta, w, c->x1, dim);
    double nd = basin__cert_norm(c->x1, dim);
    if (!(nd > 0) || !isfinite(nd))
        return BASIN_OK;
    double t = 1.0;
    for (int h = 0; h < OH_MAX_HALVINGS && !cert->exact.descent_verified; h++, t *= 0.5) {
        double r;
        for (size_t i = 0; i < dim; i++)
            c->x2[i] = theta[i] + t * c->x1[i];
        if ((rc = c->obj.value_grad(c->obj.ctx, c->x2, NULL, 0, &r, NULL)) != BASIN_OK)
            return rc;
        cert->exact.descent_verified = r < R;
    }
    cert->descent = basin_alloc_array(dim, sizeof *cert->descent);
    if (!cert->descent)
        return BASIN_ENOMEM;
    for (size_t i = 0; i < dim; i++)
        cert->descent[i] = c->x1[i] / nd;
    cert->descent_from = BASIN_DECIDED_EXACT_ONE_HIDDEN_LAYER;
    return BASIN_OK;
}

/* Boundary form: E minimised over the slope assignments of the boundary pairs. */
static int exact_boundary(basin__cert_ctx *c, const basin__onehidden *oh, oh_ws *w, double R,
                          basin_certificate *cert)
{
    basin_cert_exact *ex = &cert->exact;
    size_t b = c->n_items;
    int rc = BASIN_OK;
    double flops = ldexp((double)w->n * (double)w->P * (double)w->P, (int)b);
    if (b != cert->n_boundary || b > c->opts->max_boundary_pairs || flops > OH_BOUNDARY_FLOPS)
        return BASIN_OK;
    size_t total = (size_t)1 << b;
    ex->boundary_ran = 1;
    ex->boundary_total = total;
    ex->boundary_value = INFINITY;
    int pass = 1;
    for (size_t a = 0; a < total && pass; a++) {
        slopes_from_codes(c, oh, c->codes, w);
        for (size_t i = 0; i < b; i++) {
            const basin__cert_item *it = &c->items[i];
            int side = (int)((a >> i) & 1u);
            w->slope[it->sample * oh->H + it->unit] = side ? oh->s_pos : oh->s_neg;
        }
        double E_sum;
        int exact;
        size_t iters = 0;
        if ((rc = solve(c, oh, w, &E_sum, &exact, &iters)) != BASIN_OK)
            return rc;
        double E = E_sum / (double)w->n;
        ex->boundary_evaluated++;
        ex->boundary_value = fmin(ex->boundary_value, E);
        pass = exact && R <= E + c->opts->cert_tol * fmax(1.0, fabs(R));
    }
    ex->boundary_holds = pass && ex->boundary_evaluated == total;
    return BASIN_OK;
}

int basin__cert_exact(basin__cert_ctx *c, const basin__onehidden *oh, const double *theta, double R,
                      basin_certificate *cert)
{
    basin_cert_exact *ex = &cert->exact;
    oh_ws w;
    int rc = oh_ws_alloc(c, oh, &w);
    if (rc == BASIN_ENOTSUP) { /* too large: reported as applicable but not run */
        rc = BASIN_OK;
        goto done;
    }
    if (rc)
        goto done;
    theta_to_p(oh, theta, w.p0);
    slopes_from_codes(c, oh, c->codes, &w);
    double E_sum;
    if ((rc = solve(c, oh, &w, &E_sum, &ex->exact, &ex->iterations)) != BASIN_OK)
        goto done;
    ex->ran = 1;
    ex->value = E_sum / (double)w.n;
    double tol = c->opts->cert_tol * fmax(1.0, fabs(R));
    if (cert->n_boundary == 0) {
        ex->holds = ex->exact && R <= ex->value + tol;
        /* E is the value at an actual p, so R > E + tol proves descent even when inexact. */
        ex->not_minimum = R > ex->value + tol && all_v_nonzero(oh, theta);
        if (ex->not_minimum)
            rc = record_descent(c, oh, theta, &w, R, cert);
    } else {
        rc = exact_boundary(c, oh, &w, R, cert);
    }
done:
    oh_ws_free(&w);
    return rc;
}

int basin__cert_convex_candidate(basin__cert_ctx *c, const basin__onehidden *oh,
                                 const double *theta, double *out, size_t *iterations, int *ok)
{
    oh_ws w;
    *ok = 0;
    int rc = oh_ws_alloc(c, oh, &w);
    if (rc == BASIN_ENOTSUP) {
        rc = BASIN_OK;
        goto done;
    }
    if (rc)
        goto done;
    theta_to_p(oh, theta, w.p0);
    slopes_from_codes(c, oh, c->codes2, &w);
    int any = 0;
    for (size_t j = 0; j < oh->H; j++) {
        if (theta[oh->off_w2 + j] != 0.0) {
            any = 1;
            continue;
        }
        for (size_t i = 0; i < w.n; i++)
            w.slope[i * oh->H + j] = 0.0; /* v_j = 0: the unit cannot be moved through p */
    }
    if (!any && !oh->bias2)
        goto done;
    double E_sum;
    int exact;
    if ((rc = solve(c, oh, &w, &E_sum, &exact, iterations)) != BASIN_OK)
        goto done;
    map_increment(oh, theta, &w, out, c->dim);
    for (size_t i = 0; i < c->dim; i++)
        out[i] += theta[i];
    *ok = isfinite(basin__cert_norm(out, c->dim));
done:
    oh_ws_free(&w);
    return rc;
}
