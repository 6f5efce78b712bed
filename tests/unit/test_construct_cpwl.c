/* Tests of the CPWL compiler (construct_cpwl.c) and the group fit (construct_group.c).
 * References: the max–min formula evaluated directly at thousands of random points; per-group
 * least squares by closed forms / normal equations solved here; a one-hidden-layer evaluator
 * written here; the region certificate of certify.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/certify.h"
#include "basin/construct.h"
#include "basin/data.h"
#include "basin/loss.h"
#include "basin/net.h"
#include "basin/rng.h"
#include "basin/status.h"
#include "failing_alloc.h"

#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double near_a_ = (a), near_b_ = (b);                                                       \
        if (!(fabs(near_a_ - near_b_) <= (tol))) {                                                 \
            print_error("%.17g != %.17g (tolerance %g)\n", near_a_, near_b_, (double)(tol));       \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- CPWL compiler ---- */

static double maxmin(const basin_cpwl_spec *sp, const double *x, double *scale)
{
    double best = -INFINITY;
    *scale = 1.0;
    for (size_t i = 0; i < sp->n_sets; i++) {
        double mn = INFINITY;
        for (size_t k = sp->set_start[i]; k < sp->set_start[i + 1]; k++) {
            size_t j = sp->members[k];
            double v = sp->b[j];
            for (size_t c = 0; c < sp->dim; c++)
                v += sp->a[j * sp->dim + c] * x[c];
            *scale = fmax(*scale, fabs(v));
            mn = fmin(mn, v);
        }
        best = fmax(best, mn);
    }
    return best;
}

static size_t clog2(size_t n)
{
    size_t d = 0;
    while (((size_t)1 << d) < n)
        d++;
    return d;
}

/* Compile sp, check the architecture's shape and compare with the formula at n_pts points. */
static void check_compiled(const basin_cpwl_spec *sp, size_t n_pts, uint64_t seed)
{
    basin_construction *c = NULL;
    basin_cpwl_report rep;
    int rc = basin_construct_cpwl(sp, &c, &rep);
    if (rc)
        print_error("%s\n", rep.message);
    assert_int_equal(rc, BASIN_OK);
    size_t maxs = 0;
    for (size_t i = 0; i < sp->n_sets; i++)
        if (sp->set_start[i + 1] - sp->set_start[i] > maxs)
            maxs = sp->set_start[i + 1] - sp->set_start[i];
    size_t depth = clog2(maxs) + clog2(sp->n_sets);
    assert_int_equal(rep.hidden_layers, depth);
    assert_int_equal(c->arch.n_layers, 2 * depth + 1);
    for (size_t l = 0; l + 1 < c->arch.n_layers; l += 2) {
        assert_int_equal(c->layers[l].kind, BASIN_LAYER_DENSE);
        assert_int_equal(c->layers[l + 1].kind, BASIN_LAYER_ACTIVATION);
        assert_int_equal(c->layers[l + 1].act, BASIN_ACT_RELU);
    }
    assert_int_equal(c->layers[2 * depth].units, 1);

    basin_net *net = NULL;
    basin_net_ws *ws = NULL;
    assert_int_equal(basin_net_create(&c->arch, &net, NULL), BASIN_OK);
    assert_int_equal(basin_net_param_count(net), c->n_params);
    assert_int_equal(basin_net_in_dim(net), sp->dim);
    assert_int_equal(basin_net_ws_create(net, 256, &ws), BASIN_OK);
    double *x = malloc(n_pts * sp->dim * sizeof *x), *out = malloc(n_pts * sizeof *out);
    assert_true(x && out);
    basin_rng rng;
    basin_rng_init(&rng, seed, 1);
    for (size_t i = 0; i < n_pts * sp->dim; i++)
        x[i] = 4.0 * basin_rng_normal(&rng);
    assert_int_equal(basin_net_forward(net, ws, c->theta, x, n_pts, out), BASIN_OK);
    for (size_t i = 0; i < n_pts; i++) {
        double scale, ref = maxmin(sp, x + i * sp->dim, &scale);
        assert_near(out[i], ref, 1e-12 * scale);
    }
    free(x);
    free(out);
    basin_net_ws_free(ws);
    basin_net_free(net);
    basin_construction_free(c);
}

/* Random pieces and random sets (sizes 1..m, repeats allowed). */
static void random_case(size_t d, size_t m, size_t s, uint64_t seed)
{
    basin_rng rng;
    basin_rng_init(&rng, seed, 0);
    double *a = malloc(m * d * sizeof *a), *b = malloc(m * sizeof *b);
    size_t *start = malloc((s + 1) * sizeof *start), *mem = malloc(s * m * sizeof *mem);
    assert_true(a && b && start && mem);
    for (size_t i = 0; i < m * d; i++)
        a[i] = basin_rng_normal(&rng);
    for (size_t i = 0; i < m; i++)
        b[i] = basin_rng_normal(&rng);
    start[0] = 0;
    for (size_t i = 0; i < s; i++) {
        size_t sz = 1 + (size_t)basin_rng_below(&rng, m);
        for (size_t k = 0; k < sz; k++)
            mem[start[i] + k] = (size_t)basin_rng_below(&rng, m);
        start[i + 1] = start[i] + sz;
    }
    basin_cpwl_spec sp = {d, m, a, b, s, start, mem};
    check_compiled(&sp, 2000, seed);
    free(a);
    free(b);
    free(start);
    free(mem);
}

static void test_cpwl_random(void **state)
{
    (void)state;
    random_case(1, 5, 3, 1);
    random_case(1, 8, 6, 2);
    random_case(2, 6, 4, 3);
    random_case(2, 9, 5, 4);
    random_case(5, 7, 3, 5);
    random_case(5, 12, 9, 6);
}

static void test_cpwl_edge_cases(void **state)
{
    (void)state;
    double a[14] = {1, -2, 0.5, 3, -1, 0, 2, 1, -0.5, 0.25, 4, -3, 0.1, 0.2};
    double b[7] = {0.5, -1, 2, 0, 1.5, -0.25, 0.75};
    size_t all[7] = {0, 1, 2, 3, 4, 5, 6};
    size_t one_start[2] = {0, 1};
    /* one piece: a single dense layer */
    basin_cpwl_spec one = {2, 1, a, b, 1, one_start, all};
    check_compiled(&one, 500, 10);
    /* one set of 7 pieces: min tree only, odd counts carried */
    size_t s7[2] = {0, 7};
    basin_cpwl_spec min7 = {2, 7, a, b, 1, s7, all};
    check_compiled(&min7, 2000, 11);
    /* 7 sets of size 1: max tree only */
    size_t singles[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    basin_cpwl_spec max7 = {2, 7, a, b, 7, singles, all};
    check_compiled(&max7, 2000, 12);
    /* mixed sizes 1, 3, 2, 1 over 7 pieces in 1-D (a used as 1-D slopes) */
    size_t mixed[5] = {0, 1, 4, 6, 7};
    basin_cpwl_spec mix = {1, 7, a, b, 4, mixed, all};
    check_compiled(&mix, 2000, 13);
}

static void test_cpwl_invalid(void **state)
{
    (void)state;
    double a[2] = {1, 2}, b[2] = {0, 1};
    size_t mem[2] = {0, 1};
    basin_construction *c = (basin_construction *)a;
    basin_cpwl_report rep;
    size_t empty[3] = {0, 1, 1};
    basin_cpwl_spec sp = {1, 2, a, b, 2, empty, mem};
    assert_int_equal(basin_construct_cpwl(&sp, &c, &rep), BASIN_EINVAL);
    assert_null(c);
    assert_non_null(strstr(rep.message, "set 1 is empty"));
    size_t ok[2] = {0, 2};
    size_t bad[2] = {0, 2};
    basin_cpwl_spec sp2 = {1, 2, a, b, 1, ok, bad};
    assert_int_equal(basin_construct_cpwl(&sp2, &c, &rep), BASIN_EINVAL);
    assert_non_null(strstr(rep.message, "piece 2"));
    double nb[2] = {0, NAN};
    basin_cpwl_spec sp3 = {1, 2, a, nb, 1, ok, mem};
    assert_int_equal(basin_construct_cpwl(&sp3, &c, &rep), BASIN_EINVAL);
    basin_cpwl_spec sp4 = {0, 2, a, b, 1, ok, mem};
    assert_int_equal(basin_construct_cpwl(&sp4, &c, &rep), BASIN_EINVAL);
}

static int sweep_cpwl(void *p)
{
    (void)p;
    double a[6] = {1, -1, 0.5, 2, -2, 0};
    double b[6] = {0, 1, -1, 0.5, 0.25, 2};
    size_t start[3] = {0, 3, 5}, mem[5] = {0, 1, 2, 3, 4};
    basin_cpwl_spec sp = {1, 6, a, b, 2, start, mem};
    basin_construction *c = NULL;
    int rc = basin_construct_cpwl(&sp, &c, NULL);
    basin_construction_free(c);
    return rc;
}

/* ---- group fit ---- */

static basin_dataset *make_ds(size_t n, size_t d)
{
    basin_dataset *ds = NULL;
    size_t shape[1] = {d};
    assert_int_equal(basin_dataset_create(n, 1, shape, 1, &ds), BASIN_OK);
    return ds;
}

/* 12 points of a W shape (| |x| − 1.5 |) plus a fixed wiggle. */
static basin_dataset *w_shape(void)
{
    basin_dataset *ds = make_ds(12, 1);
    for (size_t i = 0; i < 12; i++) {
        ds->x[i] = -2.75 + 0.5 * (double)i;
        ds->y[i] = fabs(fabs(ds->x[i]) - 1.5) + 0.05 * sin(3.7 * (double)i);
    }
    return ds;
}

/* Σ ½ residual² of the 1-D least-squares line through samples [lo, hi) (closed form). */
static double line_sse(const basin_dataset *ds, size_t lo, size_t hi, double *slope, double *icpt)
{
    double n = (double)(hi - lo), mx = 0, my = 0, sxx = 0, sxy = 0, sse = 0;
    for (size_t i = lo; i < hi; i++) {
        mx += ds->x[i] / n;
        my += ds->y[i] / n;
    }
    for (size_t i = lo; i < hi; i++) {
        sxx += (ds->x[i] - mx) * (ds->x[i] - mx);
        sxy += (ds->x[i] - mx) * (ds->y[i] - my);
    }
    *slope = sxx > 0 ? sxy / sxx : 0;
    *icpt = my - *slope * mx;
    for (size_t i = lo; i < hi; i++) {
        double r = *slope * ds->x[i] + *icpt - ds->y[i];
        sse += 0.5 * r * r;
    }
    return sse;
}

/* f(x) of dense(K) → relu → dense(1) from θ, evaluated here. */
static double one_hidden(const basin_construction *c, double x)
{
    size_t K = c->layers[0].units;
    const double *W1 = c->theta, *b1 = W1 + K, *W2 = b1 + K, *b2 = W2 + K;
    double f = *b2;
    for (size_t k = 0; k < K; k++)
        f += W2[k] * fmax(0.0, W1[k] * x + b1[k]);
    return f;
}

static basin_certificate *certify(const basin_construction *c, const basin_dataset *ds)
{
    basin_net *net = NULL;
    basin_certificate *cert = NULL;
    basin_certify_opts o;
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_certify_defaults(&o);
    o.polish = 0;
    o.probes = 0;
    assert_int_equal(basin_net_create(&c->arch, &net, NULL), BASIN_OK);
    double *theta = malloc(c->n_params * sizeof *theta);
    assert_non_null(theta);
    memcpy(theta, c->theta, c->n_params * sizeof *theta);
    assert_int_equal(basin_certify(net, ds, &sq, 0.0, theta, &o, &cert), BASIN_OK);
    free(theta);
    basin_net_free(net);
    return cert;
}

/* Breakpoints split the sorted x (x increases with the sample index here). Returns the risk. */
static double check_one_d(const basin_dataset *ds, const double *breaks, size_t nb)
{
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_group_fit_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.breakpoints = breaks;
    sp.n_breakpoints = nb;
    basin_construction *c = NULL;
    basin_group_fit_report rep;
    int rc = basin_construct_group_fit(ds, &sq, &sp, &c, &rep);
    if (rc)
        print_error("%s\n", rep.message);
    assert_int_equal(rc, BASIN_OK);
    assert_string_equal(rep.method, "one_d");
    assert_int_equal(rep.n_groups, nb + 1);
    /* reference: the closed-form line of each interval */
    double total = 0;
    size_t lo = 0;
    for (size_t g = 0; g <= nb; g++) {
        size_t hi = lo;
        while (hi < ds->n && (g == nb || ds->x[hi] < breaks[g]))
            hi++;
        double sl, ic, sse = line_sse(ds, lo, hi, &sl, &ic);
        assert_int_equal(rep.groups[g].n, hi - lo);
        assert_near(rep.groups[g].risk_sum, sse, 1e-12 * fmax(sse, 1e-3));
        assert_near(rep.coef[2 * g], sl, 1e-10);
        assert_near(rep.coef[2 * g + 1], ic, 1e-10);
        /* the network reproduces the piece on the group */
        for (size_t i = lo; i < hi; i++)
            assert_near(one_hidden(c, ds->x[i]), sl * ds->x[i] + ic, 1e-12);
        total += sse;
        lo = hi;
    }
    double R = total / (double)ds->n;
    assert_near(rep.risk, R, 1e-12 * R);
    assert_near(rep.net_risk, R, 1e-12 * R);
    double net_R = 0;
    for (size_t i = 0; i < ds->n; i++) {
        double r = one_hidden(c, ds->x[i]) - ds->y[i];
        net_R += 0.5 * r * r / (double)ds->n;
    }
    assert_near(net_R, R, 1e-12 * R);
    /* kinks: none on a sample, every one strictly between two groups */
    assert_int_equal(c->layers[0].units, rep.n_kinks + 1);
    double dmin = INFINITY;
    for (size_t k = 0; k < rep.n_kinks; k++) {
        for (size_t i = 0; i < ds->n; i++)
            dmin = fmin(dmin, fabs(rep.kinks[k] - ds->x[i]));
        int between = 0;
        for (size_t g = 0; g < nb; g++)
            between |= rep.kinks[k] > rep.groups[g].x_hi && rep.kinks[k] < rep.groups[g + 1].x_lo;
        assert_true(between);
    }
    if (rep.n_kinks == 0)
        assert_true(isinf(rep.min_kink_distance));
    else
        assert_near(rep.min_kink_distance, dmin, 0);
    assert_true(dmin > 0.001);
    assert_true(rep.t0 < ds->x[0]);
    /* certified local minimum with B = R */
    basin_certificate *cert = certify(c, ds);
    if (cert->label != BASIN_VERDICT_CERTIFIED_MINIMUM)
        print_error("%s\n", cert->reason);
    assert_int_equal(cert->label, BASIN_VERDICT_CERTIFIED_MINIMUM);
    assert_near(cert->region.bound, R, 1e-10 * R);
    basin_certificate_free(cert);
    basin_group_fit_report_release(&rep);
    basin_construction_free(c);
    return R;
}

static void test_group_fit_one_d(void **state)
{
    (void)state;
    basin_dataset *ds = w_shape();
    double b2[1] = {0.0};
    double b3[2] = {-1.0, 1.0};
    double b4[3] = {-1.5, 0.0, 1.5};
    double r2 = check_one_d(ds, b2, 1);
    double r3 = check_one_d(ds, b3, 2);
    double r4 = check_one_d(ds, b4, 3);
    /* different partitions, different risk levels */
    assert_true(fabs(r2 - r3) > 1e-3);
    assert_true(fabs(r3 - r4) > 1e-3);
    assert_true(fabs(r2 - r4) > 1e-3);
    /* one group: the global affine fit (R_lin), no kinks; every partition beats it, so the
     * linear-region minimum of this dataset is spurious */
    double r1 = check_one_d(ds, NULL, 0);
    assert_true(r1 > r2 && r1 > r3 && r1 > r4);
    /* without a report (nothing may leak: checked under ASan / valgrind) */
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_group_fit_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.breakpoints = b3;
    sp.n_breakpoints = 2;
    basin_construction *c = NULL;
    assert_int_equal(basin_construct_group_fit(ds, &sq, &sp, &c, NULL), BASIN_OK);
    double sl, ic;
    line_sse(ds, 0, 4, &sl, &ic); /* group 0: the four samples below −1 */
    assert_near(one_hidden(c, ds->x[0]), sl * ds->x[0] + ic, 1e-12);
    basin_construction_free(c);
    basin_dataset_free(ds);
}

/* Labels that are contiguous in x but given out of order, and a connector forced by pieces
 * whose intersection is not in the gap (parallel pieces). */
static void test_group_fit_labels_and_connector(void **state)
{
    (void)state;
    basin_dataset *ds = make_ds(8, 1);
    /* two groups on parallel lines y = x and y = x + 3, x in {0..3} and {5..8} */
    double xs[8] = {5, 0, 6, 1, 7, 2, 8, 3};
    size_t lab[8];
    for (size_t i = 0; i < 8; i++) {
        ds->x[i] = xs[i];
        lab[i] = xs[i] > 4 ? 0 : 1; /* group 0 is the right one */
        ds->y[i] = xs[i] + (xs[i] > 4 ? 3.0 : 0.0);
    }
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_group_fit_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.group = lab;
    sp.n_groups = 2;
    basin_construction *c = NULL;
    basin_group_fit_report rep;
    int rc = basin_construct_group_fit(ds, &sq, &sp, &c, &rep);
    assert_int_equal(rc, BASIN_OK);
    assert_string_equal(rep.method, "one_d");
    assert_int_equal(rep.n_kinks, 2); /* a connecting segment: two kinks in (3, 5) */
    assert_near(rep.kinks[0], 3 + 2.0 / 3, 1e-12);
    assert_near(rep.kinks[1], 3 + 4.0 / 3, 1e-12);
    assert_near(rep.risk, 0, 1e-20);
    for (size_t i = 0; i < 8; i++)
        assert_near(one_hidden(c, ds->x[i]), ds->y[i], 1e-12);
    basin_group_fit_report_release(&rep);
    basin_construction_free(c);
    /* interleaved labels: not contiguous, one_d refused; auto falls back to the lattice */
    for (size_t i = 0; i < 8; i++)
        lab[i] = (size_t)xs[i] % 2;
    sp.method = BASIN_GROUP_FIT_ONE_D;
    assert_int_equal(basin_construct_group_fit(ds, &sq, &sp, &c, &rep), BASIN_EINVAL);
    assert_null(c);
    assert_non_null(strstr(rep.message, "disjoint x intervals"));
    basin_group_fit_report_release(&rep);
    sp.method = BASIN_GROUP_FIT_AUTO;
    rc = basin_construct_group_fit(ds, &sq, &sp, &c, &rep);
    assert_string_equal(rep.method, "lattice");
    assert_true(rc == BASIN_OK || rc == BASIN_ENOTSUP);
    basin_group_fit_report_release(&rep);
    basin_construction_free(c);
    basin_dataset_free(ds);
}

/* Normal equations for a 2-D affine fit of the listed samples; coef = [a1, a2, b]. */
static double plane_fit(const basin_dataset *ds, const size_t *idx, size_t m, double *coef)
{
    double M[3][4];
    memset(M, 0, sizeof M);
    for (size_t r = 0; r < m; r++) {
        const double *x = ds->x + 2 * idx[r];
        double z[3] = {x[0], x[1], 1.0};
        for (size_t i = 0; i < 3; i++) {
            for (size_t j = 0; j < 3; j++)
                M[i][j] += z[i] * z[j];
            M[i][3] += z[i] * ds->y[idx[r]];
        }
    }
    for (size_t c = 0; c < 3; c++)
        for (size_t r = 0; r < 3; r++) {
            if (r == c)
                continue;
            double f = M[r][c] / M[c][c];
            for (size_t k = c; k < 4; k++)
                M[r][k] -= f * M[c][k];
        }
    double sse = 0;
    for (size_t c = 0; c < 3; c++)
        coef[c] = M[c][3] / M[c][c];
    for (size_t r = 0; r < m; r++) {
        const double *x = ds->x + 2 * idx[r];
        double e = coef[0] * x[0] + coef[1] * x[1] + coef[2] - ds->y[idx[r]];
        sse += 0.5 * e * e;
    }
    return sse;
}

/* 2-D: 2 groups left/right of x1 = 0, y = sign·x1 + wiggle (sign = −1: V, +1 ... ). */
static basin_dataset *two_groups_2d(double left_slope, double right_slope, double right_offset,
                                    size_t *lab)
{
    basin_dataset *ds = make_ds(16, 2);
    for (size_t i = 0; i < 16; i++) {
        double x1 = (i < 8 ? -1.0 : 1.0) * (1.0 + 0.25 * (double)(i % 8));
        double x2 = cos(1.3 * (double)i);
        ds->x[2 * i] = x1;
        ds->x[2 * i + 1] = x2;
        ds->y[i] = (i < 8 ? left_slope * x1 : right_slope * x1 + right_offset) +
                   0.05 * sin(2.1 * (double)i);
        lab[i] = i < 8 ? 0 : 1;
    }
    return ds;
}

static void check_lattice_holds(double ls, double rs)
{
    size_t lab[16];
    basin_dataset *ds = two_groups_2d(ls, rs, 0.0, lab);
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_group_fit_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.group = lab;
    sp.n_groups = 2;
    basin_construction *c = NULL;
    basin_group_fit_report rep;
    int rc = basin_construct_group_fit(ds, &sq, &sp, &c, &rep);
    if (rc)
        print_error("%s\n", rep.message);
    assert_int_equal(rc, BASIN_OK);
    assert_string_equal(rep.method, "lattice");
    size_t idx[2][8];
    for (size_t i = 0; i < 16; i++)
        idx[i / 8][i % 8] = i;
    double coef[2][3], total = 0;
    for (size_t g = 0; g < 2; g++) {
        total += plane_fit(ds, idx[g], 8, coef[g]);
        for (size_t k = 0; k < 3; k++)
            assert_near(rep.coef[3 * g + k], coef[g][k], 1e-10);
    }
    double R = total / 16;
    assert_near(rep.risk, R, 1e-12 * R);
    assert_near(rep.net_risk, R, 1e-12 * R);
    basin_net *net = NULL;
    basin_net_ws *ws = NULL;
    double out[16];
    assert_int_equal(basin_net_create(&c->arch, &net, NULL), BASIN_OK);
    assert_int_equal(basin_net_ws_create(net, 16, &ws), BASIN_OK);
    assert_int_equal(basin_net_forward(net, ws, c->theta, ds->x, 16, out), BASIN_OK);
    for (size_t i = 0; i < 16; i++) {
        const double *k = coef[lab[i]];
        assert_near(out[i], k[0] * ds->x[2 * i] + k[1] * ds->x[2 * i + 1] + k[2], 1e-12);
    }
    basin_net_ws_free(ws);
    basin_net_free(net);
    basin_group_fit_report_release(&rep);
    basin_construction_free(c);
    basin_dataset_free(ds);
}

static void test_group_fit_lattice_holds(void **state)
{
    (void)state;
    check_lattice_holds(-1.0, 1.0); /* V: f = max(p0, p1), S_g = {g} */
    check_lattice_holds(1.0, -1.0); /* Λ: f = min(p0, p1), S_g = {0, 1} */
}

/* Two pieces that do not cross on the data (p1 above p0 everywhere): the lattice form must use
 * p1 on group 0 too, so the partition is reported impossible. */
static void test_group_fit_lattice_fails(void **state)
{
    (void)state;
    size_t lab[16];
    basin_dataset *ds = two_groups_2d(0.0, 0.1, 5.0, lab);
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_group_fit_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.group = lab;
    sp.n_groups = 2;
    basin_construction *c = (basin_construction *)lab;
    basin_group_fit_report rep;
    assert_int_equal(basin_construct_group_fit(ds, &sq, &sp, &c, &rep), BASIN_ENOTSUP);
    assert_null(c);
    assert_int_equal(rep.fail_group, 0);
    assert_int_equal(rep.fail_term, 1);
    assert_true(rep.fail_sample >= 0 && rep.fail_sample < 8);
    /* the offending values, recomputed from the reported pieces */
    const double *x = ds->x + 2 * rep.fail_sample;
    double p0 = rep.coef[0] * x[0] + rep.coef[1] * x[1] + rep.coef[2];
    double p1 = rep.coef[3] * x[0] + rep.coef[4] * x[1] + rep.coef[5];
    assert_near(rep.fail_piece_value, p0, 1e-12);
    assert_near(rep.fail_term_value, p1, 1e-12);
    assert_true(p1 > p0 + 1.0);
    assert_non_null(strstr(rep.message, "no CPWL function of the lattice form"));
    /* S_0 = {0, 1} (p1 ≥ p0 on group 0), S_1 = {1} */
    assert_int_equal(rep.set_start[1] - rep.set_start[0], 2);
    assert_int_equal(rep.set_start[2] - rep.set_start[1], 1);
    assert_int_equal(rep.set_members[rep.set_start[1]], 1);
    basin_group_fit_report_release(&rep);
    basin_dataset_free(ds);
}

static void test_group_fit_invalid(void **state)
{
    (void)state;
    basin_dataset *ds = w_shape();
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_group_fit_spec sp;
    basin_construction *c = NULL;
    basin_group_fit_report rep;
    memset(&sp, 0, sizeof sp);
    double on_sample[1] = {-0.25};
    sp.breakpoints = on_sample;
    sp.n_breakpoints = 1;
    assert_int_equal(basin_construct_group_fit(ds, &sq, &sp, &c, &rep), BASIN_EINVAL);
    assert_non_null(strstr(rep.message, "equals"));
    basin_group_fit_report_release(&rep);
    double empty[2] = {0.1, 0.2};
    sp.breakpoints = empty;
    sp.n_breakpoints = 2;
    assert_int_equal(basin_construct_group_fit(ds, &sq, &sp, &c, &rep), BASIN_EINVAL);
    assert_non_null(strstr(rep.message, "group 1 has no samples"));
    basin_group_fit_report_release(&rep);
    size_t lab[12] = {0};
    sp.group = lab;
    sp.n_groups = 1;
    assert_int_equal(basin_construct_group_fit(ds, &sq, &sp, &c, &rep), BASIN_EINVAL);
    basin_group_fit_report_release(&rep);
    basin_loss ce = {BASIN_LOSS_CROSS_ENTROPY, 1.0};
    sp.breakpoints = NULL;
    assert_int_equal(basin_construct_group_fit(ds, &ce, &sp, &c, &rep), BASIN_EINVAL);
    basin_group_fit_report_release(&rep);
    basin_dataset_free(ds);
}

static int sweep_group(void *p)
{
    basin_dataset *ds = p;
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    double br[2] = {-1.0, 1.0};
    basin_group_fit_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.breakpoints = br;
    sp.n_breakpoints = 2;
    basin_construction *c = NULL;
    basin_group_fit_report rep;
    int rc = basin_construct_group_fit(ds, &sq, &sp, &c, &rep);
    basin_group_fit_report_release(&rep);
    basin_construction_free(c);
    if (rc)
        return rc;
    sp.method = BASIN_GROUP_FIT_LATTICE;
    rc = basin_construct_group_fit(ds, &sq, &sp, &c, &rep);
    basin_group_fit_report_release(&rep);
    basin_construction_free(c);
    return rc == BASIN_ENOTSUP ? BASIN_OK : rc;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    failing_alloc_report r;
    assert_true(failing_alloc_sweep(sweep_cpwl, NULL, FAILING_ALLOC_FROM_N, 0, &r));
    assert_true(r.runs > 3);
    basin_dataset *ds = w_shape();
    int ok = failing_alloc_sweep(sweep_group, ds, FAILING_ALLOC_FROM_N, 0, &r);
    if (!ok)
        print_error("bad_n %zu rc %d live %ld\n", r.bad_n, r.bad_rc, r.bad_live);
    assert_true(ok);
    basin_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpwl_random),
        cmocka_unit_test(test_cpwl_edge_cases),
        cmocka_unit_test(test_cpwl_invalid),
        cmocka_unit_test(test_group_fit_one_d),
        cmocka_unit_test(test_group_fit_labels_and_connector),
        cmocka_unit_test(test_group_fit_lattice_holds),
        cmocka_unit_test(test_group_fit_lattice_fails),
        cmocka_unit_test(test_group_fit_invalid),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
