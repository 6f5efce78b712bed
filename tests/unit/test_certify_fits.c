/* The region certificate's group bound for classification losses, against fits computed here:
 * a 2-2-1 (logistic) and a 2-2-3 (cross-entropy) ReLU net whose kinks are the coordinate axes,
 * so the groups are the quadrants. Each group's best affine fit is recomputed by an independent
 * damped Newton iteration written here (multinomial logistic regression with the last class as
 * reference, which covers the binary case), the network's per-group risk by a forward pass
 * written here, and the grouping itself by the quadrant of each sample. Also the exact
 * one-hidden-layer test for the smooth non-quadratic losses (logistic, Huber): its value E
 * against a Newton solve of the slopes-fixed problem written here, its descent direction
 * against the risk written here, and its convex polish. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/certify.h"
#include "basin/data.h"
#include "basin/net.h"
#include "basin/rng.h"
#include "basin/status.h"

#define NS 48
#define MAXP 9 /* unknowns of the Newton problems written here */

#define assert_near(a, b, tol) assert_near_at((a), (b), (tol), #a, __FILE__, __LINE__)

static void assert_near_at(double a, double b, double tol, const char *expr, const char *file,
                           int line)
{
    if (!(fabs(a - b) <= tol)) {
        print_error("%s = %.17g, expected %.17g within %.3g\n", expr, a, b, tol);
        _fail(file, line);
    }
}

/* Solve A x = b (n ≤ MAXP) by Gaussian elimination with partial pivoting; A, b destroyed. */
static void gauss(double *A, double *b, int n, double *x)
{
    for (int k = 0; k < n; k++) {
        int p = k;
        for (int i = k + 1; i < n; i++)
            if (fabs(A[i * n + k]) > fabs(A[p * n + k]))
                p = i;
        for (int j = 0; j < n; j++) {
            double t = A[k * n + j];
            A[k * n + j] = A[p * n + j];
            A[p * n + j] = t;
        }
        double t = b[k];
        b[k] = b[p];
        b[p] = t;
        for (int i = k + 1; i < n; i++) {
            double f = A[i * n + k] / A[k * n + k];
            for (int j = k; j < n; j++)
                A[i * n + j] -= f * A[k * n + j];
            b[i] -= f * b[k];
        }
    }
    for (int k = n - 1; k >= 0; k--) {
        double s = b[k];
        for (int j = k + 1; j < n; j++)
            s -= A[k * n + j] * x[j];
        x[k] = s / A[k * n + k];
    }
}

/* Σ_i [logsumexp(o_i) − o_{i,y_i}] with o_{i,k} = a_k·(x_i, 1) for k < K−1, o_{i,K−1} = 0;
 * grad / hess (may be NULL) of the (K−1)·3 unknowns. */
static double mnl(const double *a, int K, const double *x, const int *cls, const size_t *idx,
                  size_t m, double *grad, double *hess)
{
    int n = (K - 1) * 3;
    double f = 0;
    if (grad)
        memset(grad, 0, (size_t)n * sizeof *grad);
    if (hess)
        memset(hess, 0, (size_t)(n * n) * sizeof *hess);
    for (size_t t = 0; t < m; t++) {
        size_t i = idx[t];
        double z[3] = {x[2 * i], x[2 * i + 1], 1.0}, o[4], mx = 0, se = 0, pi[4];
        for (int k = 0; k < K; k++) {
            o[k] = k < K - 1 ? a[3 * k] * z[0] + a[3 * k + 1] * z[1] + a[3 * k + 2] : 0.0;
            mx = fmax(mx, o[k]);
        }
        for (int k = 0; k < K; k++)
            se += exp(o[k] - mx);
        f += mx + log(se) - o[cls[i]];
        for (int k = 0; k < K; k++)
            pi[k] = exp(o[k] - mx) / se;
        for (int k = 0; k < K - 1; k++) {
            double e = pi[k] - (cls[i] == k);
            for (int p = 0; p < 3 && grad; p++)
                grad[3 * k + p] += e * z[p];
            for (int l = 0; l < K - 1 && hess; l++) {
                double w = (k == l ? pi[k] : 0.0) - pi[k] * pi[l];
                for (int p = 0; p < 3; p++)
                    for (int q = 0; q < 3; q++)
                        hess[(3 * k + p) * n + 3 * l + q] += w * z[p] * z[q];
            }
        }
    }
    return f;
}

/* min over affine maps of the group's loss by damped Newton from 0. */
static double newton_fit(int K, const double *x, const int *cls, const size_t *idx, size_t m)
{
    int n = (K - 1) * 3;
    double a[MAXP] = {0}, g[MAXP], Hm[MAXP * MAXP], d[MAXP], trial[MAXP];
    double f = mnl(a, K, x, cls, idx, m, g, Hm);
    for (int it = 0; it < 200; it++) {
        double gn = 0;
        for (int j = 0; j < n; j++)
            gn += g[j] * g[j];
        if (sqrt(gn) < 1e-13 || f < 1e-12)
            break;
        double rhs[MAXP];
        for (int j = 0; j < n; j++) {
            rhs[j] = -g[j];
            Hm[j * n + j] += 1e-14;
        }
        gauss(Hm, rhs, n, d);
        double t = 1, ft = f, slope = 0;
        for (int j = 0; j < n; j++)
            slope += g[j] * d[j];
        for (int h = 0; h < 60; h++, t *= 0.5) {
            for (int j = 0; j < n; j++)
                trial[j] = a[j] + t * d[j];
            ft = mnl(trial, K, x, cls, idx, m, NULL, NULL);
            if (ft <= f + 1e-4 * t * slope)
                break;
        }
        if (!(ft < f))
            break;
        memcpy(a, trial, sizeof a);
        f = mnl(a, K, x, cls, idx, m, g, Hm);
    }
    return f;
}

static int quadrant(const double *x, size_t i)
{
    return (x[2 * i] > 0) + 2 * (x[2 * i + 1] > 0);
}

static basin_net *net_22k(size_t k)
{
    basin_layer_spec L[3];
    memset(L, 0, sizeof L);
    L[0].kind = BASIN_LAYER_DENSE;
    L[0].units = 2;
    L[0].bias = 1;
    L[1].kind = BASIN_LAYER_ACTIVATION;
    L[1].act = BASIN_ACT_RELU;
    L[2].kind = BASIN_LAYER_DENSE;
    L[2].units = k;
    L[2].bias = 1;
    basin_arch arch = {1, {2, 0, 0}, 3, L};
    basin_net *net = NULL;
    assert_int_equal(basin_net_create(&arch, &net, NULL), BASIN_OK);
    return net;
}

/* Check every group of cert against the quadrants and the Newton fits written here. */
static void check_groups(const basin_certificate *c, int K, const double *x, const int *cls,
                         const double *net_loss, size_t *n_nonsep, size_t *n_sep)
{
    size_t seen = 0;
    double sum = 0;
    *n_nonsep = 0;
    *n_sep = 0;
    for (size_t g = 0; g < c->region.n_groups; g++) {
        const basin_cert_group *gr = &c->region.groups[g];
        assert_int_equal(gr->n_indices, gr->n_samples); /* cap 64 > NS */
        int q = quadrant(x, gr->indices[0]);
        double own = 0;
        for (size_t t = 0; t < gr->n_samples; t++) {
            assert_int_equal(quadrant(x, gr->indices[t]), q);
            own += net_loss[gr->indices[t]];
        }
        seen += gr->n_samples;
        assert_near(gr->risk_sum, own, 1e-12);
        double ref = newton_fit(K, x, cls, gr->indices, gr->n_samples);
        assert_true(gr->fit_exact);
        if (ref < 1e-9) { /* separable: infimum 0, not attained */
            assert_near(gr->fit_risk_sum, 0.0, 0.0);
            assert_int_equal(gr->fit_attained, 0);
            (*n_sep)++;
        } else {
            assert_near(gr->fit_risk_sum, ref, 1e-9 * fmax(1.0, ref));
            (*n_nonsep)++;
        }
        sum += gr->fit_risk_sum;
    }
    assert_int_equal(seen, NS);
    assert_int_equal(c->region.n_groups, 4);
    assert_near(c->region.bound, sum / NS, 1e-15);
}

static void make_data(uint64_t seed, int K, double *x, int *cls)
{
    basin_rng rng;
    basin_rng_init(&rng, seed, 0);
    for (int i = 0; i < NS; i++) {
        x[2 * i] = 2.0 * basin_rng_uniform(&rng) - 1.0;
        x[2 * i + 1] = 2.0 * basin_rng_uniform(&rng) - 1.0;
        /* labels mostly by a linear rule, with noise so most quadrants are not separable */
        int lab = x[2 * i] + 0.5 * x[2 * i + 1] > 0.1;
        if (K == 3)
            lab = lab + (x[2 * i + 1] > 0.4);
        if (basin_rng_uniform(&rng) < 0.3)
            lab = (int)basin_rng_below(&rng, (uint64_t)K);
        cls[i] = lab;
    }
    /* one quadrant made separable on purpose: every sample with x1 < 0, x2 < 0 gets class 0 */
    for (int i = 0; i < NS; i++)
        if (quadrant(x, (size_t)i) == 0)
            cls[i] = 0;
}

static void run_case(int K)
{
    double x[2 * NS];
    int cls[NS];
    make_data(K == 2 ? 11 : 12, K, x, cls);
    basin_loss loss = {K == 2 ? BASIN_LOSS_LOGISTIC : BASIN_LOSS_CROSS_ENTROPY, 1.0};
    size_t kout = K == 2 ? 1 : (size_t)K;
    basin_net *net = net_22k(kout);
    size_t shape[1] = {2};
    basin_dataset *ds = NULL;
    assert_int_equal(basin_dataset_create(NS, 1, shape, 1, &ds), BASIN_OK);
    memcpy(ds->x, x, sizeof x);
    for (int i = 0; i < NS; i++)
        ds->y[i] = cls[i];
    /* W1 = I, b1 = 0: unit j is active where x_j > 0 */
    double th[6 + 4 * 3] = {1, 0, 0, 1, 0, 0, 0.7, -1.1, 0.3, 0.5, 0.9, -0.4, 0.2, -0.1, 0.05};
    size_t dim = basin_net_param_count(net);
    assert_int_equal(dim, 6 + 3 * kout);
    /* network loss per sample, by a forward pass written here */
    double net_loss[NS];
    for (int i = 0; i < NS; i++) {
        double h[2] = {fmax(0.0, x[2 * i]), fmax(0.0, x[2 * i + 1])}, o[3];
        for (size_t k = 0; k < kout; k++)
            o[k] = th[6 + 2 * k] * h[0] + th[6 + 2 * k + 1] * h[1] + th[6 + 2 * kout + k];
        if (K == 2) {
            double v = o[0];
            net_loss[i] = fmax(v, 0.0) + log1p(exp(-fabs(v))) - cls[i] * v;
        } else {
            double mx = fmax(o[0], fmax(o[1], o[2]));
            net_loss[i] = mx + log(exp(o[0] - mx) + exp(o[1] - mx) + exp(o[2] - mx)) - o[cls[i]];
        }
    }
    basin_certify_opts opts;
    basin_certify_defaults(&opts);
    opts.polish = 0;
    opts.probes = 0;
    opts.group_sample_cap = 64;
    basin_certificate *c = NULL;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &opts, &c), BASIN_OK);
    assert_true(c->region.ran);
    size_t nonsep, sep;
    check_groups(c, K, x, cls, net_loss, &nonsep, &sep);
    assert_true(nonsep >= 2);
    assert_true(sep >= 1); /* at least the quadrant made single-class above */
    assert_true(c->region.exact);
    /* the bound is below the network's risk here, so nothing is certified by it */
    double R = 0;
    for (int i = 0; i < NS; i++)
        R += net_loss[i] / NS;
    assert_near(c->risk, R, 1e-14);
    assert_true(c->region.bound < R);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

/* ---- the exact test for logistic and Huber losses ---- */

#define N1 20
#define H1 3
#define P1 (2 * H1 + 1)

static double loss1(basin_loss_kind kind, double o, double y)
{
    if (kind == BASIN_LOSS_LOGISTIC)
        return fmax(o, 0.0) + log1p(exp(-fabs(o))) - y * o;
    double r = fabs(o - y), d = 0.1; /* huber, δ = 0.1 */
    return r < d ? 0.5 * r * r : d * (r - 0.5 * d);
}

static double dloss1(basin_loss_kind kind, double o, double y, double *h)
{
    if (kind == BASIN_LOSS_LOGISTIC) {
        double s = 1.0 / (1.0 + exp(-o));
        *h = s * (1 - s);
        return s - y;
    }
    double r = o - y, d = 0.1;
    *h = fabs(r) < d ? 1.0 : 0.0;
    return fabs(r) < d ? r : (r > 0 ? d : -d);
}

/* θ = (w[H1], b[H1], v[H1], c) of a 1-H1-1 ReLU net: its risk. */
static double risk1(basin_loss_kind kind, const double *th, const double *x, const double *y)
{
    double s = 0;
    for (int i = 0; i < N1; i++) {
        double f = th[3 * H1];
        for (int j = 0; j < H1; j++)
            f += th[2 * H1 + j] * fmax(0.0, th[j] * x[i] + th[H1 + j]);
        s += loss1(kind, f, y[i]);
    }
    return s / N1;
}

/* E = (1/N) min_p Σ ℓ(D_i p) with D_i = [s_ij x_i, s_ij, 1], s_ij = [w_j x_i + b_j > 0]: damped
 * Newton from θ's own p. */
static double exact_ref(basin_loss_kind kind, const double *th, const double *x, const double *y)
{
    double D[N1][P1], p[P1];
    for (int i = 0; i < N1; i++) {
        for (int j = 0; j < H1; j++) {
            double s = th[j] * x[i] + th[H1 + j] > 0 ? 1.0 : 0.0;
            D[i][j] = s * x[i];
            D[i][H1 + j] = s;
        }
        D[i][2 * H1] = 1.0;
    }
    for (int j = 0; j < H1; j++) {
        p[j] = th[2 * H1 + j] * th[j];
        p[H1 + j] = th[2 * H1 + j] * th[H1 + j];
    }
    p[2 * H1] = th[3 * H1];
    double f = 0;
    for (int it = 0; it < 100; it++) {
        double g[P1] = {0}, Hm[P1 * P1] = {0}, d[P1], rhs[P1];
        f = 0;
        for (int i = 0; i < N1; i++) {
            double o = 0, h;
            for (int k = 0; k < P1; k++)
                o += D[i][k] * p[k];
            f += loss1(kind, o, y[i]);
            double e = dloss1(kind, o, y[i], &h);
            for (int k = 0; k < P1; k++) {
                g[k] += e * D[i][k];
                for (int l = 0; l < P1; l++)
                    Hm[k * P1 + l] += h * D[i][k] * D[i][l];
            }
        }
        for (int k = 0; k < P1; k++) {
            rhs[k] = -g[k];
            Hm[k * P1 + k] += 1e-12;
        }
        gauss(Hm, rhs, P1, d);
        double t = 1, best = f, trial[P1];
        int moved = 0;
        for (int h = 0; h < 50 && !moved; h++, t *= 0.5) {
            double ft = 0;
            for (int k = 0; k < P1; k++)
                trial[k] = p[k] + t * d[k];
            for (int i = 0; i < N1; i++) {
                double o = 0;
                for (int k = 0; k < P1; k++)
                    o += D[i][k] * trial[k];
                ft += loss1(kind, o, y[i]);
            }
            if (ft < best) {
                moved = 1;
                memcpy(p, trial, sizeof p);
            }
        }
        if (!moved)
            break;
    }
    return f / N1;
}

static unsigned pattern1(const double *th, double xi)
{
    unsigned p = 0;
    for (int j = 0; j < H1; j++)
        p |= (th[j] * xi + th[H1 + j] > 0 ? 1u : 0u) << j;
    return p;
}

/* th1: an interior local minimum (found once by search, digits exact); the checks below
 * establish that here, then move off it. */
static void exact_case(basin_loss_kind kind, const double *th1)
{
    static const int lab[N1] = {1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1};
    double x[N1], y[N1];
    for (int i = 0; i < N1; i++) {
        x[i] = -1.0 + 2.0 * i / (N1 - 1);
        y[i] = kind == BASIN_LOSS_LOGISTIC ? lab[i] : fabs(x[i]) + (i % 3 == 0 ? 0.3 : -0.05);
    }
    basin_layer_spec L[3];
    memset(L, 0, sizeof L);
    L[0].kind = BASIN_LAYER_DENSE;
    L[0].units = H1;
    L[0].bias = 1;
    L[1].kind = BASIN_LAYER_ACTIVATION;
    L[1].act = BASIN_ACT_RELU;
    L[2].kind = BASIN_LAYER_DENSE;
    L[2].units = 1;
    L[2].bias = 1;
    basin_arch arch = {1, {1, 0, 0}, 3, L};
    basin_net *net = NULL;
    assert_int_equal(basin_net_create(&arch, &net, NULL), BASIN_OK);
    size_t shape[1] = {1};
    basin_dataset *ds = NULL;
    assert_int_equal(basin_dataset_create(N1, 1, shape, 1, &ds), BASIN_OK);
    memcpy(ds->x, x, sizeof x);
    memcpy(ds->y, y, sizeof y);
    basin_loss loss = {kind, 0.1};
    double E1 = exact_ref(kind, th1, x, y), th[3 * H1 + 1];
    unsigned pats = 0;
    for (int i = 1; i < N1; i++)
        pats += pattern1(th1, x[i]) != pattern1(th1, x[i - 1]);
    assert_true(pats >= 1);                         /* a kink inside the data */
    assert_near(risk1(kind, th1, x, y), E1, 1e-11); /* θ1 minimises its region's problem */
    basin_certify_opts opts;
    basin_certify_defaults(&opts);
    opts.polish = 0;
    opts.probes = 0;
    basin_certificate *c = NULL;
    memcpy(th, th1, sizeof th);
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &opts, &c), BASIN_OK);
    assert_true(c->exact.applicable && c->exact.ran && c->exact.exact);
    assert_near(c->exact.value, E1, 1e-11);
    assert_true(c->exact.holds);
    assert_int_equal(c->label, BASIN_VERDICT_CERTIFIED_MINIMUM);
    basin_certificate_free(c);
    /* moved off: same sides (checked here), so the same convex problem, value E1 */
    for (int i = 0; i < 3 * H1 + 1; i++)
        th[i] = th1[i] + 1e-3 * sin(1.0 + 2.0 * i);
    for (int i = 0; i < N1; i++)
        assert_int_equal(pattern1(th, x[i]), pattern1(th1, x[i]));
    double R = risk1(kind, th, x, y);
    assert_near(exact_ref(kind, th, x, y), E1, 1e-11);
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &opts, &c), BASIN_OK);
    assert_near(c->risk, R, 1e-14);
    assert_near(c->exact.value, E1, 1e-11);
    assert_true(R > E1 + 1e-7);
    assert_true(c->exact.not_minimum);
    assert_non_null(c->descent);
    for (double eps = 1e-6; eps <= 1e-4; eps *= 10) {
        double t[3 * H1 + 1];
        for (int i = 0; i < 3 * H1 + 1; i++)
            t[i] = th[i] + eps * c->descent[i];
        assert_true(risk1(kind, t, x, y) < R);
    }
    basin_certificate_free(c);
    /* polish: the convex solve keeps every side, so it lands on E1 with ∇R = 0 */
    opts.polish = 1;
    assert_int_equal(basin_certify(net, ds, &loss, 0.0, th, &opts, &c), BASIN_OK);
    assert_string_equal(c->polish.method, "one_hidden_layer_convex");
    assert_false(c->polish.pattern_changed);
    assert_true(c->grad_norm <= 1e-9);
    assert_near(c->risk, E1, 1e-11);
    assert_near(risk1(kind, th, x, y), E1, 1e-11);
    assert_int_equal(c->label, BASIN_VERDICT_CERTIFIED_MINIMUM);
    assert_true(c->exact.holds);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_exact_logistic(void **state)
{
    (void)state;
    static const double th1[3 * H1 + 1] = {
        0.3213635462803488,  0.021254456936804556, 12.650310873251451, 1.1054734756586539,
        1.146548708162026,   -8.5401742527853504,  1.0945815973326676, -0.71193698627533841,
        0.39890464843958878, -0.32289169303690013};
    exact_case(BASIN_LOSS_LOGISTIC, th1);
}

static void test_exact_huber(void **state)
{
    (void)state;
    static const double th1[3 * H1 + 1] = {
        -0.32145315718278861, -1.2588876072704933,  -0.91548301976697311,  1.7153125625930947,
        1.2882859827934763,   0.018010333721647159, 0.0027155185657136037, -0.82053989620771606,
        2.2196966527094459,   1.0291212726881043};
    exact_case(BASIN_LOSS_HUBER, th1);
}

static void test_logistic_groups(void **state)
{
    (void)state;
    run_case(2);
}

static void test_cross_entropy_groups(void **state)
{
    (void)state;
    run_case(3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logistic_groups),
        cmocka_unit_test(test_cross_entropy_groups),
        cmocka_unit_test(test_exact_logistic),
        cmocka_unit_test(test_exact_huber),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
