/* The Gaussian teacher–student population risk F(W) = ½ E[(Σ_i relu(w_i·x) − Σ_j relu(v_j·x))²],
 * x ~ N(0, I_d), with its gradient, Hessian and Hessian-vector products in closed form
 * (teacher.h). It lets training and second-order analysis run on the exact population
 * objective, at O(n(n + k)d) per evaluation instead of a pass over a sample.
 *
 * DESIGN
 * Kernel (Cho & Saul 2009; Safran & Shamir, ICML 2018). For u, v ≠ 0 with unit vectors û, v̂,
 * angle θ ∈ [0, π], c = cos θ, s = sin θ:
 *     κ(u, v) = E[relu(u·x) relu(v·x)] = ‖u‖‖v‖ (s + (π − θ) c) / (2π),
 * and κ = 0 when u or v is 0. Expanding the square,
 *     F(W) = ½ Σ_{i,l} κ(w_i, w_l) − Σ_{i,j} κ(w_i, v_j) + ½ Σ_{i,j} κ(v_i, v_j),
 * the last sum being a constant of the teacher. κ(u, u) = ‖u‖²/2.
 *
 * The angle is computed as θ = 2·atan2(‖û − v̂‖, ‖û + v̂‖) (Kahan), accurate to a few ulps
 * for every θ including near 0 and π, where arccos(û·v̂) loses half the digits; it always lies
 * in [0, π], so the clamp to [−1, 1] that arccos would need is built in. sin θ and cos θ come
 * from the same two norms (half-angle formulas), exactly 0 and ±1 at θ ∈ {0, π}.
 *
 * Gradient. With ∂θ/∂u = −(v̂ − c û)/(‖u‖ s), ∂‖u‖/∂u = û and h(θ) = s + (π − θ) c, whose
 * derivative is h′(θ) = −(π − θ) s, differentiating κ in its first argument gives (the
 * (π − θ) c û terms of h û and of h′ ∂θ/∂u cancel):
 *     g(u, v) = ∂κ(u, v)/∂u = (‖v‖ s û + (π − θ) v) / (2π),        g(u, u) = u/2,
 * so ∇_{w_i} F = ½ w_i + Σ_{l≠i} g(w_i, w_l) − Σ_j g(w_i, v_j).
 *
 * Hessian. Write p = v̂ − c û and q = û − c v̂ (‖p‖ = ‖q‖ = s, p ⊥ û, q ⊥ v̂).
 * (a) In the first argument (g is homogeneous of degree 0 in u):
 *     2π ∂g/∂u = ‖v‖ [ û (c ∂θ/∂u)ᵀ + s (I − ûûᵀ)/‖u‖ ] − v (∂θ/∂u)ᵀ
 *              = (‖v‖/‖u‖) [ s (I − ûûᵀ) + p pᵀ / s ]  =: 2π G_w(u, v),
 *     using ‖v‖ c û − v = −‖v‖ p. Symmetric and PSD, G_w u = 0.
 * (b) In the second argument, with ∂θ/∂v = −q/(‖v‖ s), ∂‖v‖/∂v = v̂:
 *     2π ∂g/∂v = (π − θ) I + s û v̂ᵀ + p qᵀ / s  =: 2π G_v(u, v),
 *     with G_v(u, v)ᵀ = G_v(v, u) and G_v(u, v) v = g(u, v) (degree-1 homogeneity in v).
 *     This is also E[1{u·x > 0} 1{v·x > 0} x xᵀ]: ½I at θ = 0, 0 at θ = π.
 * The blocks of ∇²F, d × d each:
 *     ∂²F/∂w_i² = ½ I + Σ_{l≠i} G_w(w_i, w_l) − Σ_j G_w(w_i, v_j),
 *     ∂²F/∂w_i∂w_l = G_v(w_i, w_l)  (i ≠ l).
 * At s = 0 (parallel or antiparallel rows) p pᵀ/s and p qᵀ/s are O(s) and are taken as 0 (their
 * limits); G_w then vanishes and G_v = (π − θ)/(2π)·I. F is twice differentiable there (κ
 * differs from its limit by O(θ³), resp. O((π − θ)³)). The Hessian-vector product applies the
 * same blocks through the dot products û·x, v̂·x in O(d) per pair, never forming a block.
 *
 * Dead units. κ(u, v) is homogeneous of degree 1 in u, so F is not differentiable at w_i = 0
 * (g(w_i, ·) has no limit there). We follow the network with relu'(0) = 0 (autograd's
 * convention), whose unit i is then dead for every x: its gradient block and its Hessian rows
 * and columns are 0, and it adds nothing to F (which is exact: κ(0, ·) = 0). A teacher row
 * v_j = 0 needs no special case: g(w, 0) = 0 and G_w(w, 0) = 0. A row counts as zero when its
 * computed norm is 0 (entries so small that their squares underflow included).
 *
 * References: Y. Cho, L. Saul, "Kernel methods for deep learning", NIPS 2009 (the arc-cosine
 * kernel); I. Safran, O. Shamir, "Spurious local minima are common in two-layer ReLU neural
 * networks", ICML 2018 (F and its gradient); W. Kahan, "How futile are mindless assessments of
 * roundoff in floating-point computation?", 2006, §12 (the angle formula). */
#include "basin/teacher.h"

#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/rng.h"
#include "basin/status.h"

/* math.h defines M_PI only outside strict C11 */
#define PI 3.14159265358979323846
#define TWO_PI (2.0 * PI)

/* Angle data of a pair of nonzero rows u, v. */
typedef struct pair_geom {
    double nu, nv; /* norms */
    double theta;  /* ∠(u, v) ∈ [0, π] */
    double c, s;   /* cos θ, sin θ */
} pair_geom;

static double row_norm(size_t d, const double *u)
{
    double s = 0.0;
    for (size_t a = 0; a < d; a++)
        s += u[a] * u[a];
    return sqrt(s);
}

static void geom(size_t d, const double *u, double nu, const double *v, double nv, pair_geom *g)
{
    double dm = 0.0, dp = 0.0;
    for (size_t a = 0; a < d; a++) {
        double ua = u[a] / nu, va = v[a] / nv;
        dm += (ua - va) * (ua - va);
        dp += (ua + va) * (ua + va);
    }
    /* half angle t = θ/2: sin t = √dm / r, cos t = √dp / r with r² = dm + dp (= 4 exactly in
     * real arithmetic); sin θ = 2 sin t cos t and cos θ = cos² t − sin² t come out exactly 0
     * and ±1 for (anti)parallel rows, where sin(π) in floating point would be 1.2e−16. */
    double r2 = dm + dp;
    g->nu = nu;
    g->nv = nv;
    g->theta = 2.0 * atan2(sqrt(dm), sqrt(dp));
    g->s = 2.0 * sqrt(dm * dp) / r2;
    g->c = (dp - dm) / r2;
}

static double kappa_of(const pair_geom *g)
{
    return g->nu * g->nv * (g->s + (PI - g->theta) * g->c) / TWO_PI;
}

double basin_teacher_kappa(size_t d, const double *u, const double *v)
{
    double nu = row_norm(d, u), nv = row_norm(d, v);
    if (nu == 0.0 || nv == 0.0)
        return 0.0;
    pair_geom g;
    geom(d, u, nu, v, nv, &g);
    return kappa_of(&g);
}

/* out += sign · g(u, v) = sign · (‖v‖ s û + (π − θ) v)/(2π). */
static void add_g(size_t d, const double *u, const double *v, const pair_geom *g, double sign,
                  double *out)
{
    double cu = sign * g->nv * g->s / (TWO_PI * g->nu);
    double cv = sign * (PI - g->theta) / TWO_PI;
    for (size_t a = 0; a < d; a++)
        out[a] += cu * u[a] + cv * v[a];
}

/* ---- teacher construction ---- */

void basin_teacher_free(basin_teacher *t)
{
    if (!t)
        return;
    basin_free(t->v);
    basin_free(t->vnorm);
    basin_free(t);
}

/* A teacher with k × d zeroed rows; *out owns them. */
static int teacher_alloc(size_t k, size_t d, basin_teacher **out)
{
    basin_teacher *t = NULL;
    size_t kd;
    int rc = BASIN_OK;
    *out = NULL;
    if (k == 0 || d == 0) {
        rc = BASIN_EINVAL;
        goto done;
    }
    if (basin_mul_size(k, d, &kd) != BASIN_OK) {
        rc = BASIN_ERANGE;
        goto done;
    }
    t = basin_calloc(1, sizeof *t);
    if (!t) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    t->k = k;
    t->d = d;
    t->v = basin_calloc(kd, sizeof(double));
    t->vnorm = basin_calloc(k, sizeof(double));
    if (!t->v || !t->vnorm) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    *out = t;
    t = NULL;
done:
    basin_teacher_free(t);
    return rc;
}

/* Norms and ½ Σ_{i,j} κ(v_i, v_j) = Σ_i ‖v_i‖²/4 + Σ_{i<j} κ(v_i, v_j), once the rows are in
 * place. */
static void teacher_derive(basin_teacher *t)
{
    size_t k = t->k, d = t->d;
    double sum = 0.0;
    for (size_t j = 0; j < k; j++)
        t->vnorm[j] = row_norm(d, t->v + j * d);
    for (size_t i = 0; i < k; i++) {
        sum += 0.25 * t->vnorm[i] * t->vnorm[i];
        for (size_t j = i + 1; j < k; j++) {
            if (t->vnorm[i] == 0.0 || t->vnorm[j] == 0.0)
                continue;
            pair_geom g;
            geom(d, t->v + i * d, t->vnorm[i], t->v + j * d, t->vnorm[j], &g);
            sum += kappa_of(&g);
        }
    }
    t->risk_const = sum;
}

int basin_teacher_create_identity(size_t k, size_t d, basin_teacher **out)
{
    basin_teacher *t = NULL;
    int rc = BASIN_OK;
    if (!out)
        return BASIN_EINVAL;
    *out = NULL;
    if (k > d) {
        rc = BASIN_EINVAL;
        goto done;
    }
    rc = teacher_alloc(k, d, &t);
    if (rc != BASIN_OK)
        goto done;
    for (size_t j = 0; j < k; j++)
        t->v[j * d + j] = 1.0;
    teacher_derive(t);
    *out = t;
    t = NULL;
done:
    basin_teacher_free(t);
    return rc;
}

int basin_teacher_create_given(size_t k, size_t d, const double *v, basin_teacher **out)
{
    basin_teacher *t = NULL;
    int rc = BASIN_OK;
    if (!out)
        return BASIN_EINVAL;
    *out = NULL;
    if (!v) {
        rc = BASIN_EINVAL;
        goto done;
    }
    rc = teacher_alloc(k, d, &t);
    if (rc != BASIN_OK)
        goto done;
    for (size_t i = 0; i < k * d; i++) {
        if (!isfinite(v[i])) {
            rc = BASIN_EINVAL;
            goto done;
        }
        t->v[i] = v[i];
    }
    teacher_derive(t);
    *out = t;
    t = NULL;
done:
    basin_teacher_free(t);
    return rc;
}

int basin_teacher_create_random_orthonormal(size_t k, size_t d, uint64_t seed, basin_teacher **out)
{
    basin_teacher *t = NULL;
    double *tau = NULL, *work = NULL, *sign = NULL;
    int rc = BASIN_OK;
    if (!out)
        return BASIN_EINVAL;
    *out = NULL;
    if (k > d) {
        rc = BASIN_EINVAL;
        goto done;
    }
    if (d > (size_t)INT32_MAX) { /* LAPACK's 32-bit sizes */
        rc = BASIN_ERANGE;
        goto done;
    }
    rc = teacher_alloc(k, d, &t);
    if (rc != BASIN_OK)
        goto done;
    basin_rng rng;
    basin_rng_init(&rng, seed, 0);
    for (size_t i = 0; i < k * d; i++)
        t->v[i] = basin_rng_normal(&rng);
    /* The k × d row-major rows are the columns of a d × k column-major matrix A (lda = d):
     * A = QR, and the rows become Q's orthonormal columns. */
    lapack_int m = (lapack_int)d, nc = (lapack_int)k;
    double q1 = 0.0, q2 = 0.0;
    tau = basin_alloc_array(k, sizeof(double));
    sign = basin_alloc_array(k, sizeof(double));
    if (!tau || !sign) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, m, nc, t->v, m, tau, &q1, -1) != 0 ||
        LAPACKE_dorgqr_work(LAPACK_COL_MAJOR, m, nc, nc, t->v, m, tau, &q2, -1) != 0) {
        rc = BASIN_ENUMERIC;
        goto done;
    }
    size_t lwork = (size_t)fmax(fmax(q1, q2), 1.0);
    work = basin_alloc_array(lwork, sizeof(double));
    if (!work) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, m, nc, t->v, m, tau, work, (lapack_int)lwork) != 0) {
        rc = BASIN_ENUMERIC;
        goto done;
    }
    /* Q·diag(sign R_jj) is Haar-distributed (Mezzadri 2007); plain Q is not. */
    for (size_t j = 0; j < k; j++)
        sign[j] = t->v[j * d + j] < 0.0 ? -1.0 : 1.0;
    if (LAPACKE_dorgqr_work(LAPACK_COL_MAJOR, m, nc, nc, t->v, m, tau, work, (lapack_int)lwork) !=
        0) {
        rc = BASIN_ENUMERIC;
        goto done;
    }
    for (size_t j = 0; j < k; j++)
        for (size_t a = 0; a < d; a++)
            t->v[j * d + a] *= sign[j];
    teacher_derive(t);
    *out = t;
    t = NULL;
done:
    basin_free(tau);
    basin_free(work);
    basin_free(sign);
    basin_teacher_free(t);
    return rc;
}

/* ---- risk, gradient, Hessian, HVP; wn[i] = ‖w_i‖ ---- */

static void student_norms(size_t n, size_t d, const double *W, double *wn)
{
    for (size_t i = 0; i < n; i++)
        wn[i] = row_norm(d, W + i * d);
}

static void risk_grad_core(const basin_teacher *t, size_t n, const double *W, const double *wn,
                           double *value, double *grad)
{
    size_t d = t->d, k = t->k;
    double f = t->risk_const;
    if (grad) {
        for (size_t i = 0; i < n; i++)
            for (size_t a = 0; a < d; a++)
                grad[i * d + a] = wn[i] == 0.0 ? 0.0 : 0.5 * W[i * d + a];
    }
    for (size_t i = 0; i < n; i++) {
        if (wn[i] == 0.0)
            continue;
        const double *wi = W + i * d;
        f += 0.25 * wn[i] * wn[i]; /* ½ κ(w_i, w_i) */
        for (size_t l = i + 1; l < n; l++) {
            if (wn[l] == 0.0)
                continue;
            const double *wl = W + l * d;
            pair_geom g, gt;
            geom(d, wi, wn[i], wl, wn[l], &g);
            f += kappa_of(&g); /* the (i,l) and (l,i) halves */
            if (grad) {
                add_g(d, wi, wl, &g, 1.0, grad + i * d);
                gt = g;
                gt.nu = g.nv;
                gt.nv = g.nu;
                add_g(d, wl, wi, &gt, 1.0, grad + l * d);
            }
        }
        for (size_t j = 0; j < k; j++) {
            if (t->vnorm[j] == 0.0)
                continue;
            const double *vj = t->v + j * d;
            pair_geom g;
            geom(d, wi, wn[i], vj, t->vnorm[j], &g);
            f -= kappa_of(&g);
            if (grad)
                add_g(d, wi, vj, &g, -1.0, grad + i * d);
        }
    }
    if (value)
        *value = f;
}

/* B += scale · G_w(u, v), B a d × d block with row stride ld. */
static void add_block_w(size_t d, const double *u, const double *v, const pair_geom *g,
                        double scale, double *B, size_t ld)
{
    if (g->s == 0.0)
        return;
    double f = scale * g->nv / (TWO_PI * g->nu);
    for (size_t a = 0; a < d; a++) {
        double ua = u[a] / g->nu, pa = v[a] / g->nv - g->c * ua;
        for (size_t b = 0; b < d; b++) {
            double ub = u[b] / g->nu, pb = v[b] / g->nv - g->c * ub;
            double e = g->s * ((a == b ? 1.0 : 0.0) - ua * ub) + pa * pb / g->s;
            B[a * ld + b] += f * e;
        }
    }
}

/* B = G_v(u, v). */
static void set_block_v(size_t d, const double *u, const double *v, const pair_geom *g, double *B,
                        size_t ld)
{
    for (size_t a = 0; a < d; a++) {
        double ua = u[a] / g->nu, va = v[a] / g->nv;
        double pa = va - g->c * ua;
        for (size_t b = 0; b < d; b++) {
            double ub = u[b] / g->nu, vb = v[b] / g->nv;
            double e = (a == b ? PI - g->theta : 0.0);
            if (g->s != 0.0)
                e += g->s * ua * vb + pa * (ub - g->c * vb) / g->s;
            B[a * ld + b] = e / TWO_PI;
        }
    }
}

static void hessian_core(const basin_teacher *t, size_t n, const double *W, const double *wn,
                         double *H)
{
    size_t d = t->d, k = t->k, ld = n * d;
    memset(H, 0, ld * ld * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        if (wn[i] == 0.0)
            continue;
        const double *wi = W + i * d;
        double *Hii = H + (i * d) * ld + i * d;
        for (size_t a = 0; a < d; a++)
            Hii[a * ld + a] = 0.5;
        for (size_t l = 0; l < n; l++) {
            if (l == i || wn[l] == 0.0)
                continue;
            const double *wl = W + l * d;
            pair_geom g;
            geom(d, wi, wn[i], wl, wn[l], &g);
            add_block_w(d, wi, wl, &g, 1.0, Hii, ld);
            set_block_v(d, wi, wl, &g, H + (i * d) * ld + l * d, ld);
        }
        for (size_t j = 0; j < k; j++) {
            if (t->vnorm[j] == 0.0)
                continue;
            pair_geom g;
            geom(d, wi, wn[i], t->v + j * d, t->vnorm[j], &g);
            add_block_w(d, wi, t->v + j * d, &g, -1.0, Hii, ld);
        }
    }
}

static double dot(size_t d, const double *x, const double *y)
{
    double s = 0.0;
    for (size_t a = 0; a < d; a++)
        s += x[a] * y[a];
    return s;
}

/* out += scale · G_w(u, v) x, through a = û·x and b = v̂·x:
 * 2π G_w x = (‖v‖/‖u‖) [ s x − s a û + ((b − c a)/s) p ]. */
static void add_gw_x(size_t d, const double *u, const double *v, const pair_geom *g, double scale,
                     const double *x, double *out)
{
    if (g->s == 0.0)
        return;
    double a = dot(d, u, x) / g->nu, b = dot(d, v, x) / g->nv;
    double f = scale * g->nv / (TWO_PI * g->nu);
    double r = (b - g->c * a) / g->s;
    double cx = f * g->s;
    double cu = f * (-g->s * a - r * g->c) / g->nu;
    double cv = f * r / g->nv;
    for (size_t e = 0; e < d; e++)
        out[e] += cx * x[e] + cu * u[e] + cv * v[e];
}

/* out += G_v(u, v) y: 2π G_v y = (π − θ) y + s û (v̂·y) + p (û·y − c v̂·y)/s. */
static void add_gv_y(size_t d, const double *u, const double *v, const pair_geom *g,
                     const double *y, double *out)
{
    double cy = (PI - g->theta) / TWO_PI, cu = 0.0, cv = 0.0;
    if (g->s != 0.0) {
        double a = dot(d, u, y) / g->nu, b = dot(d, v, y) / g->nv;
        double r = (a - g->c * b) / g->s;
        /* s û b + r (v̂ − c û) */
        cu = (g->s * b - r * g->c) / (TWO_PI * g->nu);
        cv = r / (TWO_PI * g->nv);
    }
    for (size_t e = 0; e < d; e++)
        out[e] += cy * y[e] + cu * u[e] + cv * v[e];
}

static void hvp_core(const basin_teacher *t, size_t n, const double *W, const double *wn,
                     const double *x, double *hv)
{
    size_t d = t->d, k = t->k;
    for (size_t i = 0; i < n; i++) {
        double *out = hv + i * d;
        const double *xi = x + i * d, *wi = W + i * d;
        memset(out, 0, d * sizeof(double));
        if (wn[i] == 0.0)
            continue;
        for (size_t a = 0; a < d; a++)
            out[a] = 0.5 * xi[a];
        for (size_t l = 0; l < n; l++) {
            if (l == i || wn[l] == 0.0)
                continue;
            const double *wl = W + l * d;
            pair_geom g;
            geom(d, wi, wn[i], wl, wn[l], &g);
            add_gw_x(d, wi, wl, &g, 1.0, xi, out);
            add_gv_y(d, wi, wl, &g, x + l * d, out);
        }
        for (size_t j = 0; j < k; j++) {
            if (t->vnorm[j] == 0.0)
                continue;
            pair_geom g;
            geom(d, wi, wn[i], t->v + j * d, t->vnorm[j], &g);
            add_gw_x(d, wi, t->v + j * d, &g, -1.0, xi, out);
        }
    }
}

/* ---- public entry points ---- */

static int check_args(const basin_teacher *t, size_t n, const double *W, size_t *dim)
{
    if (!t || !W || n == 0)
        return BASIN_EINVAL;
    if (basin_mul_size(n, t->d, dim) != BASIN_OK)
        return BASIN_ERANGE;
    return BASIN_OK;
}

int basin_teacher_risk_grad(const basin_teacher *t, size_t n, const double *W, double *value,
                            double *grad)
{
    double *wn = NULL;
    size_t dim;
    int rc = check_args(t, n, W, &dim);
    if (rc == BASIN_OK && !value)
        rc = BASIN_EINVAL;
    if (rc != BASIN_OK)
        goto done;
    wn = basin_alloc_array(n, sizeof(double));
    if (!wn) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    student_norms(n, t->d, W, wn);
    risk_grad_core(t, n, W, wn, value, grad);
done:
    basin_free(wn);
    return rc;
}

int basin_teacher_hessian(const basin_teacher *t, size_t n, const double *W, double *H)
{
    double *wn = NULL;
    size_t dim, total;
    int rc = check_args(t, n, W, &dim);
    if (rc == BASIN_OK && !H)
        rc = BASIN_EINVAL;
    if (rc == BASIN_OK && basin_mul_size(dim, dim, &total) != BASIN_OK)
        rc = BASIN_ERANGE;
    if (rc != BASIN_OK)
        goto done;
    wn = basin_alloc_array(n, sizeof(double));
    if (!wn) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    student_norms(n, t->d, W, wn);
    hessian_core(t, n, W, wn, H);
done:
    basin_free(wn);
    return rc;
}

int basin_teacher_hvp(const basin_teacher *t, size_t n, const double *W, const double *v,
                      double *hv)
{
    double *wn = NULL;
    size_t dim;
    int rc = check_args(t, n, W, &dim);
    if (rc == BASIN_OK && (!v || !hv))
        rc = BASIN_EINVAL;
    if (rc != BASIN_OK)
        goto done;
    wn = basin_alloc_array(n, sizeof(double));
    if (!wn) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    student_norms(n, t->d, W, wn);
    hvp_core(t, n, W, wn, v, hv);
done:
    basin_free(wn);
    return rc;
}

/* ---- the objective ---- */

typedef struct teacher_obj {
    basin_teacher *t; /* owned copy */
    size_t n;
    double *wn; /* n: scratch for the student norms */
} teacher_obj;

static void teacher_obj_release(void *ctx)
{
    teacher_obj *o = ctx;
    if (!o)
        return;
    basin_teacher_free(o->t);
    basin_free(o->wn);
    basin_free(o);
}

static int teacher_obj_value_grad(void *ctx, const double *theta, const size_t *idx, size_t m,
                                  double *value, double *grad)
{
    teacher_obj *o = ctx;
    (void)idx; /* a closed form has no samples: every "batch" is the full objective */
    (void)m;
    if (!theta)
        return BASIN_EINVAL;
    student_norms(o->n, o->t->d, theta, o->wn);
    risk_grad_core(o->t, o->n, theta, o->wn, value, grad);
    return BASIN_OK;
}

static int teacher_obj_hvp(void *ctx, const double *theta, const double *v, double *hv)
{
    teacher_obj *o = ctx;
    if (!theta || !v || !hv)
        return BASIN_EINVAL;
    student_norms(o->n, o->t->d, theta, o->wn);
    hvp_core(o->t, o->n, theta, o->wn, v, hv);
    return BASIN_OK;
}

int basin_teacher_objective(const basin_teacher *t, size_t n_students, basin_objective *out)
{
    teacher_obj *o = NULL;
    size_t dim;
    int rc = BASIN_OK;
    if (!out)
        return BASIN_EINVAL;
    memset(out, 0, sizeof *out);
    if (!t || n_students == 0) {
        rc = BASIN_EINVAL;
        goto done;
    }
    if (basin_mul_size(n_students, t->d, &dim) != BASIN_OK) {
        rc = BASIN_ERANGE;
        goto done;
    }
    o = basin_calloc(1, sizeof *o);
    if (!o) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    o->n = n_students;
    o->wn = basin_alloc_array(n_students, sizeof(double));
    if (!o->wn) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = basin_teacher_create_given(t->k, t->d, t->v, &o->t);
    if (rc != BASIN_OK)
        goto done;
    out->dim = dim;
    out->n_samples = 0;
    out->ctx = o;
    out->value_grad = teacher_obj_value_grad;
    out->hvp = teacher_obj_hvp;
    out->release = teacher_obj_release;
    o = NULL;
done:
    teacher_obj_release(o);
    return rc;
}
