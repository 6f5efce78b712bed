/* Best affine fits (linfit.h): min over (A, b) of Σ_i ℓ(A x_i + b, y_i) for a set of samples.
 * This is the dataset's linear-fit risk R_lin and the per-region inner problem of the region
 * certificate, so its answer is a number a reviewer must be able to trust or see qualified.
 *
 * DESIGN
 * Write z_i = [x_i, 1] (p = in_dim + 1 numbers) and θ the k × p matrix [A b], so o_i = θ z_i.
 * - squared: the problem splits into out_dim least-squares problems with the same design Z;
 *   LAPACK dgelsd (SVD, minimum-norm, rcond = ε·max(m, p)) solves them at once and reports the
 *   rank. Rank deficiency (duplicate points, m < p, collinear inputs) needs no special case:
 *   a group too small to pin the map is interpolated and its risk is 0 up to rounding.
 * - logistic, cross_entropy, huber: damped Newton on the smooth convex objective. The system
 *   (H + λI) d = −g carries a small ridge λ (a 1e-10 relative part plus an absolute floor) so
 *   that singular Hessians (flat directions of softmax, rank-deficient designs, Huber points all
 *   in the linear zone) still give a descent direction; λ never enters the objective. When a
 *   step needs backtracking λ grows by the backtracking factor (Levenberg–Marquardt style), and
 *   it shrinks tenfold after each full step. Armijo backtracking (c = 1e-4) accepts the step;
 *   once the possible decrease is below the rounding error of f (64ε Σ|ℓ_i| + |o_i|), a step that
 *   keeps f within that error and halves ‖∇‖ is accepted instead (else Newton stalls at ‖∇‖ ≈ √ε).
 *   Converged when ‖∇‖ ≤ 1e-12 · max(1, Σ_i ‖z_i‖·b), b the per-sample bound on |∂ℓ/∂o| (the
 *   rounding error of ∇ is about ε times that sum). Systems of up to LINFIT_DENSE_MAX unknowns
 *   are factored (dposv); larger ones (cross-entropy with many classes and inputs) are solved by
 *   Jacobi-preconditioned CG on Hessian-vector products with forcing term min(0.1, √‖∇‖_rel).
 *   Huber and absolute split by output like squared; cross-entropy couples the k outputs.
 * - separable groups (logistic, cross-entropy): if every sample has a strictly positive margin
 *   (t_i o_i, or o_y − max_{j≠y} o_j, above 1e-9·‖θ‖‖z_i‖ so rounding cannot fake it), scaling θ
 *   drives the risk to 0, so the infimum is 0 and is not attained. Conversely, if the data are
 *   not strictly separable every θ leaves a sample with margin ≤ 0, i.e. loss ≥ log 2; so any
 *   iterate with risk below log 2 is such a witness and Newton reaches one on separable data.
 *   Reported: risk_sum = 0 (exact), attained = 0, and coef = the witness scaled to a minimum
 *   margin of 40 (risk at coef ≤ (k−1)·m·e^−40). Groups separable only with zero margins converge
 *   like ordinary ones to the gradient tolerance (their coef is large; attained is reported 1).
 * - absolute, hinge (linear programs): minimised through smooth surrogates f_μ ≤ f ≤ f_μ + cmμ,
 *   |r| ≈ √(r² + μ²) − μ (c = 1 per output) and max(0, u) ≈ μ·softplus(u/μ) − μ log 2 (c = log 2),
 *   by the Newton method above (each stage to ‖∇f_μ‖ ≤ 1e-9 of the scale, or 50 iterations) over
 *   μ = μ0, μ0/10, ..., μ0·1e-9 with warm starts (absolute: from the least-squares fit, μ0 = its
 *   mean |residual|, none when that fit interpolates; hinge: from 0, μ0 = 1). Reported risk_sum is
 *   the exact loss at the returned coef (an upper bound on the minimum) with exact = 0, and gap =
 *   f(θ) − (f_μ(θ) − ½ g^T (H + λI)^{-1} g): min f ≥ min f_μ, and the Newton decrement estimates
 *   f_μ(θ) − min f_μ. The gap is an estimate, not a proof (the decrement is exact only for
 *   quadratics). A hinge group that is strictly separable is solved exactly: the witness θ is
 *   scaled to margins ≥ 1, risk 0, exact = 1. A risk of exactly 0 is always exact.
 * References: Nocedal & Wright, Numerical Optimization (2006), ch. 3, 5, 7 (line search, CG,
 * Newton-CG); Boyd & Vandenberghe, Convex Optimization (2004), §9.5 (Newton decrement). */
#include "basin/linfit.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"

#define LINFIT_DENSE_MAX 1024  /* unknowns up to which the Newton system is factored */
#define LINFIT_MAX_NEWTON 200  /* Newton iterations per problem */
#define LINFIT_MAX_STAGE 50    /* ... per smoothing stage */
#define LINFIT_MAX_HALVINGS 60 /* backtracking steps per line search */
#define LINFIT_MAX_CG 2000
#define LINFIT_GTOL 1e-12
#define LINFIT_STAGE_GTOL 1e-9 /* smoothing stages: the surrogate is itself approximate */
#define LINFIT_STAGES 10       /* μ0 ... μ0·1e-9 */
#define LINFIT_SEP_MARGIN 40.0
#define LINFIT_LOG2 0.69314718055994530942

typedef enum obj_kind {
    OBJ_LOGISTIC,
    OBJ_CROSS_ENTROPY,
    OBJ_HUBER,
    OBJ_ABSOLUTE,
    OBJ_HINGE
} obj_kind;

/* One smooth convex problem in θ (k × p). */
typedef struct fit_obj {
    obj_kind kind;
    size_t m, p, k;
    const double *z;     /* m × p design rows [x_i, 1] */
    const double *znorm; /* m: ‖z_i‖ */
    const double *y;     /* target of sample i at y[i * ystride] */
    size_t ystride;
    double delta; /* huber */
    double mu;    /* smoothing width (absolute, hinge) */
    double gscale;
    double lam_floor;
    double fround;       /* rounding error bound of the last f: 64ε Σ_i (|ℓ_i| + Σ_k |o_ik|) */
    double *o, *go, *ho; /* m × k: outputs, ∂ℓ/∂o, diagonal of ∂²ℓ/∂o² or (CE) softmax */
    double *zw;          /* m × p (dense Hessian) */
    double *u;           /* m × k (Hessian-vector products) */
} fit_obj;

/* Work vectors of one Newton solve. */
typedef struct newton_ws {
    size_t n;
    double *g, *d, *trial, *gt, *h;  /* n, n, n, n, n² (dense) */
    double *r, *zv, *pv, *hp, *diag; /* CG: n each */
} newton_ws;

typedef struct newton_result {
    size_t iterations;
    int converged;
    int separated;
} newton_result;

/* ---- per-sample smooth losses ---- */

static double softplus(double v)
{
    return fmax(v, 0.0) + log1p(exp(-fabs(v)));
}

static double sigmoid(double v)
{
    if (v >= 0)
        return 1.0 / (1.0 + exp(-v));
    double e = exp(v);
    return e / (1.0 + e);
}

/* Value at output row o of sample i; writes ∂/∂o into g and the Hessian data into h. */
static double sample_eval(const fit_obj *ob, size_t i, const double *o, double *g, double *h)
{
    double y = ob->y[i * ob->ystride];
    switch (ob->kind) {
    case OBJ_LOGISTIC: {
        double s = sigmoid(o[0]);
        g[0] = s - y;
        h[0] = s * (1.0 - s);
        return softplus(o[0]) - y * o[0];
    }
    case OBJ_CROSS_ENTROPY: {
        size_t c = (size_t)y, k = ob->k;
        double mx = o[0], sum = 0;
        for (size_t j = 1; j < k; j++)
            mx = fmax(mx, o[j]);
        for (size_t j = 0; j < k; j++)
            sum += exp(o[j] - mx);
        for (size_t j = 0; j < k; j++) {
            h[j] = exp(o[j] - mx) / sum;
            g[j] = h[j] - (j == c ? 1.0 : 0.0);
        }
        return mx + log(sum) - o[c];
    }
    case OBJ_HUBER: {
        double r = o[0] - y, d = ob->delta;
        if (fabs(r) < d) {
            g[0] = r;
            h[0] = 1.0;
            return 0.5 * r * r;
        }
        g[0] = r > 0 ? d : -d;
        h[0] = 0.0;
        return d * (fabs(r) - 0.5 * d);
    }
    case OBJ_ABSOLUTE: {
        double r = o[0] - y, mu = ob->mu;
        double q = sqrt(r * r + mu * mu);
        g[0] = r / q;
        h[0] = mu * mu / (q * q * q);
        return r * r / (q + mu); /* √(r² + μ²) − μ without cancellation */
    }
    case OBJ_HINGE: {
        double t = 2.0 * y - 1.0, mu = ob->mu;
        double v = (1.0 - t * o[0]) / mu;
        double s = sigmoid(v);
        g[0] = -t * s;
        h[0] = s * (1.0 - s) / mu;
        return mu * (softplus(v) - LINFIT_LOG2);
    }
    }
    return 0.0;
}

/* Curvature bound per sample and output, and gradient bound, of each objective. */
static double curvature_scale(const fit_obj *ob)
{
    switch (ob->kind) {
    case OBJ_LOGISTIC:
        return 0.25;
    case OBJ_CROSS_ENTROPY:
        return 0.5;
    case OBJ_HUBER:
        return 1.0;
    case OBJ_ABSOLUTE:
        return 1.0 / ob->mu;
    case OBJ_HINGE:
        return 0.25 / ob->mu;
    }
    return 1.0;
}

static double gradient_bound(const fit_obj *ob)
{
    switch (ob->kind) {
    case OBJ_CROSS_ENTROPY:
        return sqrt(2.0);
    case OBJ_HUBER:
        return ob->delta;
    default:
        return 1.0;
    }
}

/* ---- objective, gradient, Hessian ---- */

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void outputs(const fit_obj *ob, const double *theta, double *o)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ob->m, (int)ob->k, (int)ob->p, 1.0,
                ob->z, (int)ob->p, theta, (int)ob->p, 0.0, o, (int)ob->k);
}

/* g = Zᵀ-weighted sum of the stored ∂ℓ/∂o: the gradient at the θ of the last evaluation. */
static void obj_grad(const fit_obj *ob, double *g)
{
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ob->k, (int)ob->p, (int)ob->m, 1.0,
                ob->go, (int)ob->k, ob->z, (int)ob->p, 0.0, g, (int)ob->p);
}

/* f(θ), leaving o, go, ho for θ; and g = ∇f when g != NULL. */
static double obj_eval(fit_obj *ob, const double *theta, double *g)
{
    size_t k = ob->k;
    double f = 0, mag = 0;
    outputs(ob, theta, ob->o);
    for (size_t i = 0; i < ob->m; i++) {
        double v = sample_eval(ob, i, ob->o + i * k, ob->go + i * k, ob->ho + i * k);
        f += v;
        mag += fabs(v);
        for (size_t j = 0; j < k; j++)
            mag += fabs(ob->o[i * k + j]);
    }
    ob->fround = 64.0 * DBL_EPSILON * mag;
    if (g)
        obj_grad(ob, g);
    return f;
}

/* ∂²ℓ_i/∂o_a∂o_b from the stored ho. */
static double out_hess(const fit_obj *ob, size_t i, size_t a, size_t b)
{
    const double *h = ob->ho + i * ob->k;
    if (ob->kind == OBJ_CROSS_ENTROPY)
        return h[a] * ((a == b ? 1.0 : 0.0) - h[b]);
    return h[0];
}

/* Dense H (n × n, n = k·p) at the θ of the last obj_eval: block (a, b) = Zᵀ diag(w_ab) Z. */
static void hess_dense(fit_obj *ob, double *h)
{
    size_t k = ob->k, p = ob->p, m = ob->m, n = k * p;
    for (size_t a = 0; a < k; a++) {
        for (size_t b = a; b < k; b++) {
            for (size_t i = 0; i < m; i++) {
                double w = out_hess(ob, i, a, b);
                for (size_t j = 0; j < p; j++)
                    ob->zw[i * p + j] = w * ob->z[i * p + j];
            }
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)p, (int)p, (int)m, 1.0, ob->z,
                        (int)p, ob->zw, (int)p, 0.0, h + a * p * n + b * p, (int)n);
            if (a != b)
                for (size_t r = 0; r < p; r++)
                    for (size_t c = 0; c < p; c++)
                        h[(b * p + c) * n + a * p + r] = h[(a * p + r) * n + b * p + c];
        }
    }
}

/* hv = H v at the θ of the last obj_eval. */
static void hess_vec(fit_obj *ob, const double *v, double *hv)
{
    size_t k = ob->k, p = ob->p, m = ob->m;
    outputs(ob, v, ob->u);
    for (size_t i = 0; i < m; i++) {
        double *ui = ob->u + i * k;
        if (ob->kind == OBJ_CROSS_ENTROPY) {
            const double *pi = ob->ho + i * k;
            double pu = dot(pi, ui, k);
            for (size_t j = 0; j < k; j++)
                ui[j] = pi[j] * (ui[j] - pu);
        } else {
            ui[0] *= ob->ho[i];
        }
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)p, (int)m, 1.0, ob->u, (int)k,
                ob->z, (int)p, 0.0, hv, (int)p);
}

static void hess_diag(const fit_obj *ob, double *diag)
{
    size_t k = ob->k, p = ob->p;
    memset(diag, 0, k * p * sizeof *diag);
    for (size_t i = 0; i < ob->m; i++)
        for (size_t a = 0; a < k; a++) {
            double w = out_hess(ob, i, a, a);
            for (size_t j = 0; j < p; j++)
                diag[a * p + j] += w * ob->z[i * p + j] * ob->z[i * p + j];
        }
}

/* ---- Newton direction ---- */

/* Solve (H + λI) d = −g by Jacobi-preconditioned CG to relative residual eta. */
static void cg_direction(fit_obj *ob, newton_ws *w, double lam, double eta)
{
    size_t n = w->n;
    double gn = sqrt(dot(w->g, w->g, n));
    hess_diag(ob, w->diag);
    for (size_t j = 0; j < n; j++) {
        w->diag[j] += lam;
        w->d[j] = 0.0;
        w->r[j] = -w->g[j];
        w->zv[j] = w->r[j] / w->diag[j];
        w->pv[j] = w->zv[j];
    }
    double rz = dot(w->r, w->zv, n);
    size_t max_it = n < LINFIT_MAX_CG ? n : LINFIT_MAX_CG;
    for (size_t it = 0; it < max_it; it++) {
        hess_vec(ob, w->pv, w->hp);
        for (size_t j = 0; j < n; j++)
            w->hp[j] += lam * w->pv[j];
        double php = dot(w->pv, w->hp, n);
        if (!(php > 0))
            break;
        double alpha = rz / php;
        for (size_t j = 0; j < n; j++) {
            w->d[j] += alpha * w->pv[j];
            w->r[j] -= alpha * w->hp[j];
        }
        if (sqrt(dot(w->r, w->r, n)) <= eta * gn)
            break;
        for (size_t j = 0; j < n; j++)
            w->zv[j] = w->r[j] / w->diag[j];
        double rz_new = dot(w->r, w->zv, n);
        double beta = rz_new / rz;
        rz = rz_new;
        for (size_t j = 0; j < n; j++)
            w->pv[j] = w->zv[j] + beta * w->pv[j];
    }
    if (dot(w->d, w->d, n) == 0.0) /* no CG progress: a preconditioned gradient step */
        for (size_t j = 0; j < n; j++)
            w->d[j] = -w->g[j] / w->diag[j];
}

/* d = −(H + λI)^{-1} g at the θ of the last obj_eval; *lam_used is the ridge actually used. */
static int newton_direction(fit_obj *ob, newton_ws *w, double lam, double *lam_used)
{
    size_t n = w->n;
    double gn = sqrt(dot(w->g, w->g, n));
    if (n > LINFIT_DENSE_MAX) {
        double eta = fmin(0.1, sqrt(gn / fmax(ob->gscale, 1.0)));
        *lam_used = lam;
        cg_direction(ob, w, lam, eta);
        return BASIN_OK;
    }
    hess_dense(ob, w->h);
    double maxdiag = 0;
    for (size_t j = 0; j < n; j++)
        maxdiag = fmax(maxdiag, w->h[j * n + j]);
    double ridge = lam + 1e-10 * maxdiag;
    for (int attempt = 0; attempt < 8; attempt++) {
        if (attempt > 0) {
            hess_dense(ob, w->h);
            ridge *= 100.0; /* not numerically positive definite: more ridge */
        }
        for (size_t j = 0; j < n; j++) {
            w->h[j * n + j] += ridge;
            w->d[j] = -w->g[j];
        }
        lapack_int info =
            LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', (lapack_int)n, 1, w->h, (lapack_int)n, w->d, 1);
        if (info == 0) {
            *lam_used = ridge;
            return BASIN_OK;
        }
        if (info < 0)
            return BASIN_ENUMERIC;
    }
    return BASIN_ENUMERIC;
}

/* ---- separation ---- */

/* Smallest margin over the samples at the outputs ob->o of θ, and whether every margin is
 * safely (beyond rounding) positive. */
static int separated(const fit_obj *ob, const double *theta, double *min_margin)
{
    size_t k = ob->k;
    double tn = sqrt(dot(theta, theta, k * ob->p));
    int ok = tn > 0;
    *min_margin = INFINITY;
    for (size_t i = 0; i < ob->m; i++) {
        const double *o = ob->o + i * k;
        double y = ob->y[i * ob->ystride], margin;
        if (ob->kind == OBJ_CROSS_ENTROPY) {
            size_t c = (size_t)y;
            double other = -INFINITY;
            for (size_t j = 0; j < k; j++)
                if (j != c)
                    other = fmax(other, o[j]);
            margin = o[c] - other;
        } else {
            margin = (2.0 * y - 1.0) * o[0];
        }
        *min_margin = fmin(*min_margin, margin);
        if (!(margin > 1e-9 * tn * ob->znorm[i]))
            ok = 0;
    }
    return ok;
}

/* ---- damped Newton ---- */

static double norm2(const double *v, size_t n)
{
    return sqrt(dot(v, v, n));
}

/* Minimise ob from theta (updated in place) until ‖∇‖ ≤ gtol. Stops early, with
 * res->separated, when check_sep and θ strictly separates the samples. */
static int newton(fit_obj *ob, newton_ws *w, double *theta, double gtol, size_t max_iter,
                  int check_sep, newton_result *res)
{
    size_t n = w->n;
    double lam = ob->lam_floor, lam_max = ob->lam_floor * 1e30;
    double f = obj_eval(ob, theta, w->g);
    res->converged = 0;
    res->separated = 0;
    for (size_t it = 0; it < max_iter; it++) {
        double gn = norm2(w->g, n), margin;
        if (check_sep && separated(ob, theta, &margin)) {
            res->separated = 1;
            break;
        }
        if (gn <= gtol) {
            res->converged = 1;
            break;
        }
        double lam_used;
        int rc = newton_direction(ob, w, lam, &lam_used);
        if (rc)
            return rc;
        double gd = dot(w->g, w->d, n);
        if (!(gd < 0)) {
            for (size_t j = 0; j < n; j++)
                w->d[j] = -w->g[j] / (lam_used > 0 ? lam_used : 1.0);
            gd = dot(w->g, w->d, n);
        }
        /* Armijo on f; but near the minimum the decrease falls below the rounding error of f,
         * and then a step that keeps f within rounding and halves ‖∇‖ is taken instead. */
        double t = 1.0, ft = f, fround = ob->fround;
        int accepted = 0;
        for (int h = 0; h < LINFIT_MAX_HALVINGS; h++, t *= 0.5) {
            for (size_t j = 0; j < n; j++)
                w->trial[j] = theta[j] + t * w->d[j];
            ft = obj_eval(ob, w->trial, NULL);
            if (ft <= f + 1e-4 * t * gd) {
                accepted = 1;
                obj_grad(ob, w->g);
                break;
            }
            if (ft <= f + fround + ob->fround) {
                obj_grad(ob, w->gt);
                if (norm2(w->gt, n) <= 0.5 * gn) {
                    accepted = 1;
                    memcpy(w->g, w->gt, n * sizeof *w->g);
                    break;
                }
            }
        }
        res->iterations++;
        if (!accepted) {
            obj_eval(ob, theta, NULL); /* restore o, go, ho at θ */
            if (lam >= lam_max) {
                /* No decrease at any scale: f is at its rounding floor. */
                res->converged = gn <= 1e3 * gtol;
                break;
            }
            lam = fmax(lam, lam_used) * 1e3;
            continue;
        }
        memcpy(theta, w->trial, n * sizeof *theta);
        f = ft;
        lam = t < 1.0 ? fmin(fmax(lam, lam_used) / t, lam_max) : fmax(lam / 10.0, ob->lam_floor);
    }
    if (!res->converged && !res->separated && norm2(w->g, n) <= gtol)
        res->converged = 1; /* the last permitted step got there */
    return BASIN_OK;
}

/* ---- problem setup ---- */

typedef struct group_data {
    size_t m, p, in_dim, out_dim, ydim;
    double *z, *znorm, *y; /* m × p, m, m × ydim */
} group_data;

static void group_data_free(group_data *gd)
{
    basin_free(gd->z);
    basin_free(gd->znorm);
    basin_free(gd->y);
}

static int gather(const basin_dataset *ds, const size_t *idx, size_t m, size_t out_dim,
                  group_data *gd)
{
    size_t p, mp, my;
    int rc;
    if ((rc = basin_add_size(ds->in_dim, 1, &p)) != BASIN_OK ||
        (rc = basin_mul_size(m, p, &mp)) != BASIN_OK ||
        (rc = basin_mul_size(m, ds->y_dim, &my)) != BASIN_OK)
        return rc;
    if (m > INT_MAX || p > INT_MAX || mp > INT_MAX || out_dim > INT_MAX)
        return BASIN_ERANGE; /* BLAS/LAPACK take int sizes */
    gd->m = m;
    gd->p = p;
    gd->in_dim = ds->in_dim;
    gd->out_dim = out_dim;
    gd->ydim = ds->y_dim;
    gd->z = basin_alloc_array(mp, sizeof(double));
    gd->znorm = basin_alloc_array(m, sizeof(double));
    gd->y = basin_alloc_array(my, sizeof(double));
    if (!gd->z || !gd->znorm || !gd->y)
        return BASIN_ENOMEM;
    for (size_t i = 0; i < m; i++) {
        size_t s = idx ? idx[i] : i;
        const double *x = ds->x + s * ds->in_dim;
        double *zi = gd->z + i * p;
        memcpy(zi, x, ds->in_dim * sizeof(double));
        zi[ds->in_dim] = 1.0;
        gd->znorm[i] = norm2(zi, p);
        memcpy(gd->y + i * ds->y_dim, ds->y + s * ds->y_dim, ds->y_dim * sizeof(double));
    }
    return BASIN_OK;
}

static int check_inputs(const basin_dataset *ds, const size_t *idx, size_t m,
                        const basin_loss *loss, size_t out_dim)
{
    if (!ds || !loss || basin_loss_check(loss, out_dim) != BASIN_OK)
        return BASIN_EINVAL;
    if (ds->y_dim != basin_loss_target_dim(loss, out_dim) || (!idx && m > ds->n))
        return BASIN_EINVAL;
    for (size_t i = 0; i < m; i++) {
        size_t s = idx ? idx[i] : i;
        if (s >= ds->n || basin_loss_check_target(loss, out_dim, ds->y + s * ds->y_dim))
            return BASIN_EINVAL;
        for (size_t j = 0; j < ds->in_dim; j++)
            if (!isfinite(ds->x[s * ds->in_dim + j]))
                return BASIN_EINVAL;
    }
    return BASIN_OK;
}

/* Least squares for all out_dim columns: theta (out_dim × p) and the rank of Z. */
static int least_squares(const group_data *gd, double *theta, size_t *rank)
{
    int rc = BASIN_OK;
    size_t m = gd->m, p = gd->p, k = gd->out_dim, rows = m > p ? m : p;
    double *a = basin_alloc_array(m * p, sizeof(double));
    double *b = basin_calloc(rows * k, sizeof(double)); /* rows·k ≤ (m + p)·k, checked below */
    double *s = basin_alloc_array(m < p ? m : p, sizeof(double));
    if (!a || !b || !s) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    memcpy(a, gd->z, m * p * sizeof(double));
    memcpy(b, gd->y, m * k * sizeof(double));
    lapack_int r = 0;
    double rcond = DBL_EPSILON * (double)rows;
    lapack_int info = LAPACKE_dgelsd(LAPACK_ROW_MAJOR, (lapack_int)m, (lapack_int)p, (lapack_int)k,
                                     a, (lapack_int)p, b, (lapack_int)k, s, rcond, &r);
    if (info != 0) {
        rc = info < 0 ? BASIN_EINVAL : BASIN_ENUMERIC;
        goto done;
    }
    for (size_t c = 0; c < k; c++)
        for (size_t j = 0; j < p; j++)
            theta[c * p + j] = b[j * k + c];
    *rank = (size_t)r;
done:
    basin_free(a);
    basin_free(b);
    basin_free(s);
    return rc;
}

/* Rank of Z by its singular values (threshold ε·max(m, p)·σ_max, as dgelsd above). */
static int design_rank(const group_data *gd, size_t *rank)
{
    int rc = BASIN_OK;
    size_t m = gd->m, p = gd->p, ns = m < p ? m : p;
    double *a = basin_alloc_array(m * p, sizeof(double));
    double *s = basin_alloc_array(ns, sizeof(double));
    double *superb = basin_alloc_array(ns, sizeof(double));
    if (!a || !s || !superb) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    memcpy(a, gd->z, m * p * sizeof(double));
    lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', (lapack_int)m, (lapack_int)p, a,
                                     (lapack_int)p, s, NULL, 1, NULL, 1, superb);
    if (info != 0) {
        rc = BASIN_ENUMERIC;
        goto done;
    }
    double tol = DBL_EPSILON * (double)(m > p ? m : p) * s[0];
    *rank = 0;
    for (size_t j = 0; j < ns; j++)
        if (s[j] > tol)
            (*rank)++;
done:
    basin_free(a);
    basin_free(s);
    basin_free(superb);
    return rc;
}

static void fit_obj_free(fit_obj *ob)
{
    basin_free(ob->o);
    basin_free(ob->go);
    basin_free(ob->ho);
    basin_free(ob->zw);
    basin_free(ob->u);
}

static void newton_ws_free(newton_ws *w)
{
    basin_free(w->g);
    basin_free(w->d);
    basin_free(w->trial);
    basin_free(w->gt);
    basin_free(w->h);
    basin_free(w->r);
    basin_free(w->zv);
    basin_free(w->pv);
    basin_free(w->hp);
    basin_free(w->diag);
}

/* Allocate the work of a k-output problem on gd (ob->kind etc. set by the caller). */
static int problem_alloc(const group_data *gd, size_t k, fit_obj *ob, newton_ws *w)
{
    size_t n, mk;
    if (basin_mul_size(k, gd->p, &n) || basin_mul_size(gd->m, k, &mk) || n > INT_MAX ||
        mk > INT_MAX)
        return BASIN_ERANGE;
    ob->m = gd->m;
    ob->p = gd->p;
    ob->k = k;
    ob->z = gd->z;
    ob->znorm = gd->znorm;
    ob->o = basin_alloc_array(mk, sizeof(double));
    ob->go = basin_alloc_array(mk, sizeof(double));
    ob->ho = basin_alloc_array(mk, sizeof(double));
    w->n = n;
    w->g = basin_alloc_array(n, sizeof(double));
    w->d = basin_alloc_array(n, sizeof(double));
    w->trial = basin_alloc_array(n, sizeof(double));
    w->gt = basin_alloc_array(n, sizeof(double));
    if (!ob->o || !ob->go || !ob->ho || !w->g || !w->d || !w->trial || !w->gt)
        return BASIN_ENOMEM;
    if (n <= LINFIT_DENSE_MAX) {
        ob->zw = basin_alloc_array(gd->m * gd->p, sizeof(double));
        w->h = basin_alloc_array(n * n, sizeof(double));
        if (!ob->zw || !w->h)
            return BASIN_ENOMEM;
    } else {
        ob->u = basin_alloc_array(mk, sizeof(double));
        w->r = basin_alloc_array(n, sizeof(double));
        w->zv = basin_alloc_array(n, sizeof(double));
        w->pv = basin_alloc_array(n, sizeof(double));
        w->hp = basin_alloc_array(n, sizeof(double));
        w->diag = basin_alloc_array(n, sizeof(double));
        if (!ob->u || !w->r || !w->zv || !w->pv || !w->hp || !w->diag)
            return BASIN_ENOMEM;
    }
    return BASIN_OK;
}

/* Curvature and gradient scales of ob for its current μ. */
static void problem_scale(fit_obj *ob)
{
    double zz = 0, zsum = 0;
    for (size_t j = 0; j < ob->p; j++) {
        double c = 0;
        for (size_t i = 0; i < ob->m; i++)
            c += ob->z[i * ob->p + j] * ob->z[i * ob->p + j];
        zz = fmax(zz, c);
    }
    for (size_t i = 0; i < ob->m; i++)
        zsum += ob->znorm[i];
    ob->lam_floor = 1e-12 * curvature_scale(ob) * fmax(zz, DBL_MIN);
    ob->gscale = fmax(1.0, gradient_bound(ob) * zsum);
}

static void scale_vec(double *v, size_t n, double c)
{
    for (size_t j = 0; j < n; j++)
        v[j] *= c;
}

/* ---- the fits ---- */

/* Logistic (k = 1) or cross-entropy (k = out_dim): theta (k × p) from 0. */
static int fit_classification(const group_data *gd, const basin_loss *loss, double *theta,
                              basin_affine_fit *fit)
{
    int rc;
    fit_obj ob;
    newton_ws w;
    newton_result res = {0, 0, 0};
    memset(&ob, 0, sizeof ob);
    memset(&w, 0, sizeof w);
    size_t k = loss->kind == BASIN_LOSS_CROSS_ENTROPY ? gd->out_dim : 1;
    ob.kind = k > 1 ? OBJ_CROSS_ENTROPY : OBJ_LOGISTIC;
    ob.y = gd->y;
    ob.ystride = 1;
    if ((rc = problem_alloc(gd, k, &ob, &w)) != BASIN_OK)
        goto done;
    problem_scale(&ob);
    memset(theta, 0, k * gd->p * sizeof *theta);
    if ((rc = newton(&ob, &w, theta, LINFIT_GTOL * ob.gscale, LINFIT_MAX_NEWTON, 1, &res)) !=
        BASIN_OK)
        goto done;
    fit->iterations += res.iterations;
    if (res.separated) {
        double margin;
        separated(&ob, theta, &margin);
        scale_vec(theta, k * gd->p, LINFIT_SEP_MARGIN / margin);
        fit->attained = 0;
        fit->exact = 1;
        fit->risk_sum = 0.0; /* the infimum; coef comes within (k−1)·m·e^−40 of it */
    } else {
        fit->attained = 1;
        fit->exact = res.converged;
        fit->risk_sum = NAN; /* computed from coef by the caller */
    }
done:
    fit_obj_free(&ob);
    newton_ws_free(&w);
    return rc;
}

/* Huber, absolute or hinge on output column c (theta: p values, warm start given). */
static int fit_column(const group_data *gd, const basin_loss *loss, size_t c, double *theta,
                      basin_affine_fit *fit)
{
    int rc;
    fit_obj ob;
    newton_ws w;
    newton_result res = {0, 0, 0};
    memset(&ob, 0, sizeof ob);
    memset(&w, 0, sizeof w);
    ob.y = gd->y + c;
    ob.ystride = gd->ydim;
    ob.delta = loss->huber_delta;
    if ((rc = problem_alloc(gd, 1, &ob, &w)) != BASIN_OK)
        goto done;
    if (loss->kind == BASIN_LOSS_HUBER) {
        ob.kind = OBJ_HUBER;
        problem_scale(&ob);
        rc = newton(&ob, &w, theta, LINFIT_GTOL * ob.gscale, LINFIT_MAX_NEWTON, 0, &res);
        fit->iterations += res.iterations;
        fit->exact = fit->exact && res.converged;
        goto done;
    }
    /* Linear programs: smoothing continuation. */
    ob.kind = loss->kind == BASIN_LOSS_HINGE ? OBJ_HINGE : OBJ_ABSOLUTE;
    double mu0 = 1.0;
    if (ob.kind == OBJ_ABSOLUTE) {
        double sum = 0, ysum = 0;
        outputs(&ob, theta, ob.o);
        for (size_t i = 0; i < gd->m; i++) {
            sum += fabs(ob.o[i] - ob.y[i * ob.ystride]);
            ysum += fabs(ob.y[i * ob.ystride]);
        }
        mu0 = sum / (double)gd->m;
        /* The least-squares start interpolates to rounding: the minimum 0 is reached. */
        if (mu0 <= 1e-13 * (1.0 + ysum / (double)gd->m))
            goto done;
    }
    double fmu = 0, lam_used = 0;
    for (int stage = 0; stage < LINFIT_STAGES; stage++) {
        ob.mu = mu0 * pow(10.0, -stage);
        problem_scale(&ob);
        double gtol = LINFIT_STAGE_GTOL * ob.gscale;
        if ((rc = newton(&ob, &w, theta, gtol, LINFIT_MAX_STAGE, ob.kind == OBJ_HINGE, &res)) !=
            BASIN_OK)
            goto done;
        fit->iterations += res.iterations;
        res.iterations = 0;
        if (res.separated) {
            double margin;
            separated(&ob, theta, &margin);
            scale_vec(theta, gd->p, (1.0 + 1e-6) / margin);
            goto done; /* hinge risk 0 at coef: exact */
        }
    }
    /* Gap estimate at the final θ: f(θ) − (f_μ(θ) − ½ gᵀ(H + λI)⁻¹g). */
    fmu = obj_eval(&ob, theta, w.g);
    if ((rc = newton_direction(&ob, &w, ob.lam_floor, &lam_used)) != BASIN_OK)
        goto done;
    double lower = fmax(0.0, fmu + 0.5 * dot(w.g, w.d, w.n));
    outputs(&ob, theta, ob.o);
    double f = 0;
    for (size_t i = 0; i < gd->m; i++) {
        double yi = ob.y[i * ob.ystride];
        f +=
            ob.kind == OBJ_HINGE ? fmax(0.0, 1.0 - (2.0 * yi - 1.0) * ob.o[i]) : fabs(ob.o[i] - yi);
    }
    if (f > 0) {
        fit->gap += fmax(0.0, f - lower);
        fit->exact = 0;
    }
done:
    fit_obj_free(&ob);
    newton_ws_free(&w);
    return rc;
}

int basin_affine_fit_group(const basin_dataset *ds, const size_t *idx, size_t m,
                           const basin_loss *loss, size_t out_dim, basin_affine_fit *fit,
                           double *coef)
{
    int rc = BASIN_OK;
    group_data gd;
    double *theta = NULL, *o = NULL;
    size_t ncoef = 0; /* out_dim · (in_dim + 1) once known not to overflow */
    memset(&gd, 0, sizeof gd);
    if (!fit)
        return BASIN_EINVAL;
    memset(fit, 0, sizeof *fit);
    fit->exact = 1;
    fit->attained = 1;
    if ((rc = check_inputs(ds, idx, m, loss, out_dim)) != BASIN_OK)
        goto done;
    size_t in_dim = ds->in_dim;
    if ((rc = basin_add_size(in_dim, 1, &ncoef)) != BASIN_OK ||
        (rc = basin_mul_size(ncoef, out_dim, &ncoef)) != BASIN_OK) {
        ncoef = 0;
        goto done;
    }
    if (coef)
        memset(coef, 0, ncoef * sizeof *coef);
    if (m == 0)
        goto done; /* the empty sum: 0, attained by anything */
    if ((rc = gather(ds, idx, m, out_dim, &gd)) != BASIN_OK)
        goto done;
    size_t p = gd.p, np, mk;
    if ((rc = basin_mul_size(out_dim, p, &np)) != BASIN_OK ||
        (rc = basin_mul_size(m, out_dim, &mk)) != BASIN_OK)
        goto done;
    theta = basin_calloc(np, sizeof(double));
    o = basin_alloc_array(mk, sizeof(double));
    if (!theta || !o) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    size_t ls_rank = 0;
    switch (loss->kind) {
    case BASIN_LOSS_SQUARED:
        rc = least_squares(&gd, theta, &ls_rank);
        fit->rank = ls_rank;
        break;
    case BASIN_LOSS_HUBER:
    case BASIN_LOSS_ABSOLUTE:
        if ((rc = least_squares(&gd, theta, &ls_rank)) != BASIN_OK)
            break;
        fit->rank = ls_rank;
        for (size_t c = 0; c < out_dim && rc == BASIN_OK; c++)
            rc = fit_column(&gd, loss, c, theta + c * p, fit);
        break;
    case BASIN_LOSS_HINGE:
        if ((rc = design_rank(&gd, &fit->rank)) == BASIN_OK)
            rc = fit_column(&gd, loss, 0, theta, fit);
        break;
    case BASIN_LOSS_LOGISTIC:
    case BASIN_LOSS_CROSS_ENTROPY:
        if ((rc = design_rank(&gd, &fit->rank)) == BASIN_OK)
            rc = fit_classification(&gd, loss, theta, fit);
        break;
    }
    if (rc)
        goto done;
    if (fit->attained) {
        /* The reported risk is the loss's own value at the returned coefficients. */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)out_dim, (int)p, 1.0,
                    gd.z, (int)p, theta, (int)p, 0.0, o, (int)out_dim);
        double sum = 0;
        for (size_t i = 0; i < m; i++)
            sum += basin_loss_eval(loss, o + i * out_dim, gd.y + i * gd.ydim, out_dim, NULL);
        fit->risk_sum = sum;
        if (sum == 0.0) {
            fit->exact = 1; /* no loss is below 0 */
            fit->gap = 0.0;
        }
    }
    if (coef) {
        for (size_t c = 0; c < out_dim; c++) {
            memcpy(coef + c * in_dim, theta + c * p, in_dim * sizeof *coef);
            coef[out_dim * in_dim + c] = theta[c * p + in_dim];
        }
    }
done:
    if (rc) {
        memset(fit, 0, sizeof *fit);
        if (coef)
            memset(coef, 0, ncoef * sizeof *coef);
    }
    group_data_free(&gd);
    basin_free(theta);
    basin_free(o);
    return rc;
}

int basin_linear_fit_risk(const basin_dataset *ds, const basin_loss *loss, size_t out_dim,
                          double tol, double *risk, int *exact, int *fittable)
{
    basin_affine_fit fit;
    if (!ds || !risk || ds->n == 0 || !(tol >= 0))
        return BASIN_EINVAL;
    int rc = basin_affine_fit_group(ds, NULL, ds->n, loss, out_dim, &fit, NULL);
    if (rc)
        return rc;
    *risk = fit.risk_sum / (double)ds->n;
    if (exact)
        *exact = fit.exact;
    if (fittable)
        *fittable = *risk <= tol;
    return BASIN_OK;
}
