/* Tests of the linear-region minimum (construct_linear.c) against independent references: the
 * best affine fit by the normal equations solved here, a dense-net evaluator written here (its
 * outputs, risk and pre-activations), central finite differences of that risk, the region
 * certificate of certify.c, and — for conv nets — the identity-activation net evaluated at the
 * linear θ the construction reports. */
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

#define MAXW 64

static basin_dataset *make_ds(size_t n, size_t d, size_t ydim)
{
    basin_dataset *ds = NULL;
    size_t shape[1] = {d};
    assert_int_equal(basin_dataset_create(n, 1, shape, ydim, &ds), BASIN_OK);
    return ds;
}

/* 13 points of |x| + a fixed wiggle on [−3, 3]: no line fits them. */
static basin_dataset *vee(void)
{
    basin_dataset *ds = make_ds(13, 1, 1);
    for (size_t i = 0; i < 13; i++) {
        ds->x[i] = -3.0 + 0.5 * (double)i;
        ds->y[i] = fabs(ds->x[i]) + 0.1 * sin(1.7 * (double)i);
    }
    return ds;
}

/* Least squares y ≈ A x + b by the normal equations (Gaussian elimination with pivoting), for
 * out_dim = 1; coef = [A, b]. Independent of linfit. */
static void normal_equations(const basin_dataset *ds, double *coef)
{
    size_t p = ds->in_dim + 1;
    double M[8][9];
    assert_true(p <= 8);
    memset(M, 0, sizeof M);
    for (size_t i = 0; i < ds->n; i++) {
        double z[8];
        for (size_t c = 0; c < ds->in_dim; c++)
            z[c] = ds->x[i * ds->in_dim + c];
        z[p - 1] = 1.0;
        for (size_t r = 0; r < p; r++) {
            for (size_t c = 0; c < p; c++)
                M[r][c] += z[r] * z[c];
            M[r][p] += z[r] * ds->y[i];
        }
    }
    for (size_t c = 0; c < p; c++) {
        size_t piv = c;
        for (size_t r = c + 1; r < p; r++)
            if (fabs(M[r][c]) > fabs(M[piv][c]))
                piv = r;
        for (size_t k = 0; k <= p; k++) {
            double t = M[c][k];
            M[c][k] = M[piv][k];
            M[piv][k] = t;
        }
        for (size_t r = 0; r < p; r++) {
            if (r == c)
                continue;
            double f = M[r][c] / M[c][c];
            for (size_t k = c; k <= p; k++)
                M[r][k] -= f * M[c][k];
        }
    }
    for (size_t c = 0; c < p; c++)
        coef[c] = M[c][p] / M[c][c];
}

static double affine_risk(const basin_dataset *ds, const double *coef)
{
    double sum = 0;
    for (size_t i = 0; i < ds->n; i++) {
        double o = coef[ds->in_dim];
        for (size_t c = 0; c < ds->in_dim; c++)
            o += coef[c] * ds->x[i * ds->in_dim + c];
        sum += 0.5 * (o - ds->y[i]) * (o - ds->y[i]);
    }
    return sum / (double)ds->n;
}

/* A dense/activation/flatten net evaluated by hand: out (out_dim values), min pre-activation of
 * the activation layers that are not identities (INFINITY when none). */
static void mlp_eval(const basin_arch *a, const double *theta, const double *x, double *out,
                     double *min_pre)
{
    double cur[MAXW], nxt[MAXW];
    size_t dim = a->in_shape[0];
    const double *p = theta;
    assert_true(a->in_rank == 1 && dim <= MAXW);
    memcpy(cur, x, dim * sizeof *cur);
    *min_pre = INFINITY;
    for (size_t l = 0; l < a->n_layers; l++) {
        const basin_layer_spec *s = &a->layers[l];
        if (s->kind == BASIN_LAYER_DENSE) {
            assert_true(s->units <= MAXW);
            const double *W = p, *b = p + s->units * dim;
            for (size_t u = 0; u < s->units; u++) {
                double acc = s->bias ? b[u] : 0.0;
                for (size_t c = 0; c < dim; c++)
                    acc += W[u * dim + c] * cur[c];
                nxt[u] = acc;
            }
            p += s->units * dim + (s->bias ? s->units : 0);
            dim = s->units;
            memcpy(cur, nxt, dim * sizeof *cur);
        } else if (s->kind == BASIN_LAYER_ACTIVATION) {
            double sn = 1, sp = 1;
            if (s->act == BASIN_ACT_RELU)
                sn = 0;
            else if (s->act == BASIN_ACT_LEAKY_RELU)
                sn = s->slope;
            else if (s->act == BASIN_ACT_PWL) {
                sn = s->s_neg;
                sp = s->s_pos;
            }
            for (size_t u = 0; u < dim; u++) {
                if (s->act != BASIN_ACT_IDENTITY)
                    *min_pre = fmin(*min_pre, cur[u]);
                cur[u] *= cur[u] > 0 ? sp : sn;
            }
        } else {
            assert_int_equal(s->kind, BASIN_LAYER_FLATTEN);
        }
    }
    memcpy(out, cur, dim * sizeof *out);
}

static double mlp_risk(const basin_arch *a, const double *theta, const basin_dataset *ds,
                       double *min_pre)
{
    double sum = 0, o[MAXW], mp;
    *min_pre = INFINITY;
    for (size_t i = 0; i < ds->n; i++) {
        mlp_eval(a, theta, ds->x + i * ds->in_dim, o, &mp);
        *min_pre = fmin(*min_pre, mp);
        for (size_t k = 0; k < ds->y_dim; k++)
            sum += 0.5 * (o[k] - ds->y[i * ds->y_dim + k]) * (o[k] - ds->y[i * ds->y_dim + k]);
    }
    return sum / (double)ds->n;
}

/* max_j |∂R/∂θ_j| by central differences of mlp_risk. */
static double fd_grad_max(const basin_arch *a, double *theta, size_t dim, const basin_dataset *ds)
{
    double g = 0, mp, h = 1e-6;
    for (size_t j = 0; j < dim; j++) {
        double t = theta[j];
        theta[j] = t + h;
        double rp = mlp_risk(a, theta, ds, &mp);
        theta[j] = t - h;
        double rm = mlp_risk(a, theta, ds, &mp);
        theta[j] = t;
        g = fmax(g, fabs(rp - rm) / (2 * h));
    }
    return g;
}

static basin_layer_spec dense(size_t units)
{
    basin_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = BASIN_LAYER_DENSE;
    s.units = units;
    s.bias = 1;
    return s;
}

static basin_layer_spec act(basin_act_kind kind, double a, double b)
{
    basin_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = BASIN_LAYER_ACTIVATION;
    s.act = kind;
    s.slope = a;
    s.s_neg = a;
    s.s_pos = b;
    return s;
}

static basin_arch vec_arch(size_t d, const basin_layer_spec *layers, size_t n)
{
    basin_arch a;
    memset(&a, 0, sizeof a);
    a.in_rank = 1;
    a.in_shape[0] = d;
    a.layers = layers;
    a.n_layers = n;
    return a;
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

/* The dense checks shared by every dense case: risk = R_lin (normal equations), outputs =
 * the affine fit, every lifted pre-activation ≥ margin, zero gradient, certified with B = R. */
static void check_dense_case(const basin_layer_spec *layers, size_t n_layers, basin_dataset *ds)
{
    basin_arch a = vec_arch(ds->in_dim, layers, n_layers);
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_construction *c = NULL;
    basin_linear_region_report rep;
    double coef[8], mp, o[MAXW];
    normal_equations(ds, coef);
    double r_lin = affine_risk(ds, coef);
    int rc = basin_construct_linear_region(&a, ds, &sq, NULL, &c, &rep);
    if (rc)
        print_error("%s\n", rep.message);
    assert_int_equal(rc, BASIN_OK);
    assert_string_equal(rep.method, "affine_exact");
    assert_near(rep.r_lin, r_lin, 1e-12 * r_lin);
    assert_near(rep.risk, r_lin, 1e-12 * r_lin);
    /* default margin: the largest |x_ij| */
    double scale = 0;
    for (size_t i = 0; i < ds->n * ds->in_dim; i++)
        scale = fmax(scale, fabs(ds->x[i]));
    assert_near(rep.margin, scale, 0);
    /* independent evaluation of the returned net */
    assert_int_equal(c->arch.n_layers, n_layers);
    assert_near(mlp_risk(&c->arch, c->theta, ds, &mp), r_lin, 1e-12 * r_lin);
    assert_true(mp >= rep.margin * (1 - 1e-12));
    assert_near(rep.min_preactivation, mp, 1e-12 * mp);
    for (size_t i = 0; i < ds->n; i++) {
        mlp_eval(&c->arch, c->theta, ds->x + i * ds->in_dim, o, &mp);
        double ref = coef[ds->in_dim];
        for (size_t k = 0; k < ds->in_dim; k++)
            ref += coef[k] * ds->x[i * ds->in_dim + k];
        assert_near(o[0], ref, 1e-12 * fmax(1, fabs(ref)));
    }
    assert_true(fd_grad_max(&c->arch, c->theta, c->n_params, ds) < 1e-7);
    assert_true(rep.grad_norm < 1e-10);
    basin_certificate *cert = certify(c, ds);
    if (cert->label != BASIN_VERDICT_CERTIFIED_MINIMUM)
        print_error("%s\n", cert->reason);
    assert_int_equal(cert->label, BASIN_VERDICT_CERTIFIED_MINIMUM);
    assert_true(cert->region.holds);
    assert_near(cert->region.bound, r_lin, 1e-12 * r_lin);
    assert_near(cert->risk, r_lin, 1e-12 * r_lin);
    assert_true(cert->margin > 0);
    basin_certificate_free(cert);
    basin_construction_free(c);
}

static void test_dense_two_hidden(void **state)
{
    (void)state;
    basin_dataset *ds = vee();
    basin_layer_spec L[] = {dense(3), act(BASIN_ACT_RELU, 0, 0), dense(4),
                            act(BASIN_ACT_RELU, 0, 0), dense(1)};
    check_dense_case(L, 5, ds);
    basin_dataset_free(ds);
}

static void test_dense_one_hidden(void **state)
{
    (void)state;
    basin_dataset *ds = vee();
    basin_layer_spec L[] = {dense(5), act(BASIN_ACT_RELU, 0, 0), dense(1)};
    check_dense_case(L, 3, ds);
    basin_dataset_free(ds);
}

static void test_dense_leaky_and_pwl(void **state)
{
    (void)state;
    basin_dataset *ds = vee();
    basin_layer_spec L1[] = {dense(2), act(BASIN_ACT_LEAKY_RELU, 0.1, 0), dense(1)};
    check_dense_case(L1, 3, ds);
    /* s_pos ≠ 1 must be divided out of the next layer; s_neg < 0 is a two-slope PL unit */
    basin_layer_spec L2[] = {dense(3), act(BASIN_ACT_PWL, -0.5, 2.5), dense(2),
                             act(BASIN_ACT_PWL, 0.25, 0.4), dense(1)};
    check_dense_case(L2, 5, ds);
    basin_dataset_free(ds);
}

/* 2-D inputs, XOR targets: the best affine fit is the constant 1/2, R_lin = 1/8. */
static void test_dense_xor_closed_form(void **state)
{
    (void)state;
    basin_dataset *ds = make_ds(8, 2, 1);
    for (size_t i = 0; i < 8; i++) {
        double s0 = (i & 1) ? 1 : -1, s1 = (i & 2) ? 1 : -1, e = (i & 4) ? 0.5 : 1.0;
        ds->x[2 * i] = e * s0;
        ds->x[2 * i + 1] = e * s1;
        ds->y[i] = s0 * s1 > 0 ? 0.0 : 1.0;
    }
    basin_layer_spec L[] = {dense(4), act(BASIN_ACT_RELU, 0, 0), dense(1)};
    basin_arch a = vec_arch(2, L, 3);
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_construction *c = NULL;
    basin_linear_region_report rep;
    assert_int_equal(basin_construct_linear_region(&a, ds, &sq, NULL, &c, &rep), BASIN_OK);
    assert_near(rep.r_lin, 0.125, 1e-14);
    assert_near(rep.risk, 0.125, 1e-14);
    check_dense_case(L, 3, ds);
    basin_construction_free(c);
    basin_dataset_free(ds);
}

/* Training the deep linear net instead (force_train) reaches R_lin too: its local minima are
 * global (squared loss), and the lifted PL net keeps the trained net's outputs. */
static void test_dense_force_train(void **state)
{
    (void)state;
    basin_dataset *ds = vee();
    basin_layer_spec L[] = {dense(3), act(BASIN_ACT_RELU, 0, 0), dense(2),
                            act(BASIN_ACT_LEAKY_RELU, 0.3, 0), dense(1)};
    basin_arch a = vec_arch(1, L, 5);
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_linear_region_opts o;
    basin_linear_region_defaults(&o);
    o.force_train = 1;
    o.seed = 3;
    basin_construction *c = NULL;
    basin_linear_region_report rep;
    double coef[2], mp, ml, o1[MAXW], o2[MAXW];
    normal_equations(ds, coef);
    double r_lin = affine_risk(ds, coef);
    assert_int_equal(basin_construct_linear_region(&a, ds, &sq, &o, &c, &rep), BASIN_OK);
    assert_string_equal(rep.method, "trained");
    assert_int_equal(rep.stop_reason, BASIN_STOP_GRAD_TOL);
    assert_near(rep.linear_risk, r_lin, 1e-9 * r_lin);
    assert_near(mlp_risk(&c->arch, c->theta, ds, &mp), rep.linear_risk, 1e-12 * r_lin);
    assert_true(mp >= rep.margin * (1 - 1e-12));
    basin_layer_spec Lin[5];
    memcpy(Lin, c->layers, sizeof Lin);
    Lin[1].act = Lin[3].act = BASIN_ACT_IDENTITY;
    basin_arch la = vec_arch(1, Lin, 5);
    for (size_t i = 0; i < ds->n; i++) {
        mlp_eval(&c->arch, c->theta, ds->x + i, o1, &mp);
        mlp_eval(&la, c->theta_linear, ds->x + i, o2, &ml);
        assert_near(o1[0], o2[0], 1e-12 * fmax(1, fabs(o2[0])));
        assert_near(o1[0], coef[0] * ds->x[i] + coef[1], 1e-6);
    }
    basin_construction_free(c);
    basin_dataset_free(ds);
}

/* A hand-set margin is honoured exactly (min pre-activation = margin: the lift is minimal). */
static void test_margin_option(void **state)
{
    (void)state;
    basin_dataset *ds = vee();
    basin_layer_spec L[] = {dense(2), act(BASIN_ACT_RELU, 0, 0), dense(1)};
    basin_arch a = vec_arch(1, L, 3);
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_linear_region_opts o;
    basin_linear_region_defaults(&o);
    o.margin = 0.25;
    basin_construction *c = NULL;
    basin_linear_region_report rep;
    assert_int_equal(basin_construct_linear_region(&a, ds, &sq, &o, &c, &rep), BASIN_OK);
    double mp;
    mlp_risk(&c->arch, c->theta, ds, &mp);
    assert_near(mp, 0.25, 1e-14);
    assert_int_equal(rep.n_lifted_layers, 1);
    /* unit 0 carries A x + b, raised only if it dips below the margin; unit 1 is 0 on every
     * sample and must be raised */
    double coef[2], lo = INFINITY;
    normal_equations(ds, coef);
    for (size_t i = 0; i < ds->n; i++)
        lo = fmin(lo, coef[0] * ds->x[i] + coef[1]);
    assert_int_equal(rep.n_shifted_units, lo < 0.25 ? 2 : 1);
    const double *b1 = c->theta + 2;
    assert_near(b1[1], 0.25, 0);
    assert_near(b1[0], lo < 0.25 ? coef[1] + 0.25 - lo : coef[1], 1e-12);
    basin_construction_free(c);
    basin_dataset_free(ds);
}

/* ---- conv nets (trained linear net) ---- */

static basin_dataset *images(size_t n, size_t c, size_t h, size_t w, size_t ydim, uint64_t seed)
{
    basin_dataset *ds = NULL;
    size_t shape[3] = {c, h, w};
    basin_rng rng;
    assert_int_equal(basin_dataset_create(n, 3, shape, ydim, &ds), BASIN_OK);
    basin_rng_init(&rng, seed, 0);
    for (size_t i = 0; i < n * ds->in_dim; i++)
        ds->x[i] = basin_rng_normal(&rng);
    for (size_t i = 0; i < n * ydim; i++)
        ds->y[i] = basin_rng_normal(&rng);
    return ds;
}

static basin_layer_spec conv(size_t filters, size_t k, basin_padding pad)
{
    basin_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = BASIN_LAYER_CONV2D;
    s.filters = filters;
    s.kernel = k;
    s.stride = 1;
    s.padding = pad;
    s.bias = 1;
    return s;
}

static basin_layer_spec plain(basin_layer_kind kind, size_t size)
{
    basin_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.size = size;
    return s;
}

/* Outputs of c (PL) and of the identity-activation arch at c->theta_linear agree on every
 * sample; every lifted pre-activation is ≥ the margin (read from the net's own forward pass). */
static void check_against_linear(const basin_construction *c, const basin_dataset *ds,
                                 const basin_linear_region_report *rep)
{
    basin_net *pl = NULL, *lin = NULL;
    basin_net_ws *wp = NULL, *wl = NULL;
    size_t nl = c->arch.n_layers;
    basin_layer_spec *ls = malloc(nl * sizeof *ls);
    assert_non_null(ls);
    memcpy(ls, c->layers, nl * sizeof *ls);
    for (size_t l = 0; l < nl; l++)
        if (ls[l].kind == BASIN_LAYER_ACTIVATION)
            ls[l].act = BASIN_ACT_IDENTITY;
    basin_arch la = c->arch;
    la.layers = ls;
    assert_int_equal(basin_net_create(&c->arch, &pl, NULL), BASIN_OK);
    assert_int_equal(basin_net_create(&la, &lin, NULL), BASIN_OK);
    assert_int_equal(basin_net_ws_create(pl, ds->n, &wp), BASIN_OK);
    assert_int_equal(basin_net_ws_create(lin, ds->n, &wl), BASIN_OK);
    size_t k = basin_net_out_dim(pl);
    double *op = malloc(ds->n * k * sizeof *op), *ol = malloc(ds->n * k * sizeof *ol);
    assert_true(op && ol);
    assert_int_equal(basin_net_forward(lin, wl, c->theta_linear, ds->x, ds->n, ol), BASIN_OK);
    assert_int_equal(basin_net_forward(pl, wp, c->theta, ds->x, ds->n, op), BASIN_OK);
    double scale = 1, diff = 0, lo = INFINITY;
    for (size_t i = 0; i < ds->n * k; i++) {
        scale = fmax(scale, fabs(ol[i]));
        diff = fmax(diff, fabs(op[i] - ol[i]));
    }
    assert_true(diff <= 1e-12 * scale);
    for (size_t l = 0; l < nl; l++) {
        if (c->layers[l].kind != BASIN_LAYER_ACTIVATION)
            continue;
        const double *v;
        size_t rows, cols;
        assert_int_equal(basin_net_ws_layer_input(wp, l, &v, &rows, &cols), BASIN_OK);
        assert_int_equal(rows, ds->n);
        for (size_t i = 0; i < rows * cols; i++)
            lo = fmin(lo, v[i]);
    }
    assert_true(lo >= rep->margin * (1 - 1e-12));
    assert_near(rep->min_preactivation, lo, 1e-12 * lo);
    /* the lift changed θ (else the test would not exercise it) */
    double moved = 0;
    for (size_t j = 0; j < c->n_params; j++)
        moved = fmax(moved, fabs(c->theta[j] - c->theta_linear[j]));
    assert_true(moved > 1e-3);
    free(op);
    free(ol);
    free(ls);
    basin_net_ws_free(wp);
    basin_net_ws_free(wl);
    basin_net_free(pl);
    basin_net_free(lin);
}

static void test_conv_valid_avgpool(void **state)
{
    (void)state;
    basin_dataset *ds = images(40, 1, 5, 5, 1, 7); /* n > 26: R_lin > 0 */
    basin_layer_spec L[] = {conv(2, 2, BASIN_PAD_VALID),
                            act(BASIN_ACT_RELU, 0, 0),
                            plain(BASIN_LAYER_AVGPOOL, 2),
                            plain(BASIN_LAYER_FLATTEN, 0),
                            dense(3),
                            act(BASIN_ACT_LEAKY_RELU, 0.2, 0),
                            dense(1)};
    basin_arch a;
    memset(&a, 0, sizeof a);
    a.in_rank = 3;
    a.in_shape[0] = 1;
    a.in_shape[1] = 5;
    a.in_shape[2] = 5;
    a.layers = L;
    a.n_layers = 7;
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_construction *c = NULL;
    basin_linear_region_report rep;
    int rc = basin_construct_linear_region(&a, ds, &sq, NULL, &c, &rep);
    if (rc)
        print_error("%s\n", rep.message);
    assert_int_equal(rc, BASIN_OK);
    assert_string_equal(rep.method, "trained");
    assert_int_equal(rep.n_lifted_layers, 2);
    check_against_linear(c, ds, &rep);
    /* the linear net was trained to a stationary point; its risk cannot beat the affine fit
     * (it is an affine map of x), and the PL risk equals it */
    assert_true(rep.linear_grad_norm < 1e-6);
    assert_true(rep.r_lin > 0.01);
    assert_true(rep.linear_risk >= rep.r_lin * (1 - 1e-12));
    assert_near(rep.risk, rep.linear_risk, 1e-12 * rep.linear_risk);
    basin_construction_free(c);
    basin_dataset_free(ds);
}

/* Zero padding in a conv that is NOT the last parametrised layer is handled exactly: the
 * border offsets are carried into the next layer. */
static void test_conv_same_padding_inside(void **state)
{
    (void)state;
    basin_dataset *ds = images(16, 1, 4, 4, 1, 11);
    basin_layer_spec L[] = {conv(2, 3, BASIN_PAD_SAME),    act(BASIN_ACT_RELU, 0, 0),
                            conv(2, 3, BASIN_PAD_SAME),    act(BASIN_ACT_RELU, 0, 0),
                            plain(BASIN_LAYER_FLATTEN, 0), dense(1)};
    basin_arch a;
    memset(&a, 0, sizeof a);
    a.in_rank = 3;
    a.in_shape[0] = 1;
    a.in_shape[1] = 4;
    a.in_shape[2] = 4;
    a.layers = L;
    a.n_layers = 6;
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_construction *c = NULL;
    basin_linear_region_report rep;
    basin_linear_region_opts o;
    basin_linear_region_defaults(&o);
    o.margin = 3.0;
    int rc = basin_construct_linear_region(&a, ds, &sq, &o, &c, &rep);
    if (rc)
        print_error("%s\n", rep.message);
    assert_int_equal(rc, BASIN_OK);
    check_against_linear(c, ds, &rep);
    basin_construction_free(c);
    basin_dataset_free(ds);
}

/* A zero-padded LAST conv fed a shifted input cannot be compensated: rejected, and said so. */
static void test_conv_same_padding_last_rejected(void **state)
{
    (void)state;
    basin_dataset *ds = images(10, 1, 4, 4, 4, 3);
    basin_layer_spec L[] = {conv(2, 3, BASIN_PAD_VALID), act(BASIN_ACT_RELU, 0, 0),
                            conv(1, 2, BASIN_PAD_SAME), plain(BASIN_LAYER_FLATTEN, 0)};
    basin_arch a;
    memset(&a, 0, sizeof a);
    a.in_rank = 3;
    a.in_shape[0] = 1;
    a.in_shape[1] = 4;
    a.in_shape[2] = 4;
    a.layers = L;
    a.n_layers = 4;
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_construction *c = (basin_construction *)&a; /* must be reset to NULL */
    basin_linear_region_report rep;
    basin_linear_region_opts o;
    basin_linear_region_defaults(&o);
    o.margin = 10.0; /* far above every trained pre-activation: a shift is certain */
    assert_int_equal(basin_construct_linear_region(&a, ds, &sq, &o, &c, &rep), BASIN_ENOTSUP);
    assert_null(c);
    assert_int_equal(rep.layer, 2);
    assert_non_null(strstr(rep.message, "pad"));
    basin_dataset_free(ds);
}

/* A bottleneck narrower than the output: trained, outputs equal the linear net's. */
static void test_bottleneck_trained(void **state)
{
    (void)state;
    basin_dataset *ds = make_ds(12, 2, 2);
    basin_rng rng;
    basin_rng_init(&rng, 5, 0);
    for (size_t i = 0; i < 24; i++) {
        ds->x[i] = basin_rng_normal(&rng);
        ds->y[i] = basin_rng_normal(&rng);
    }
    basin_layer_spec L[] = {dense(3), act(BASIN_ACT_RELU, 0, 0), dense(1),
                            act(BASIN_ACT_RELU, 0, 0), dense(2)};
    basin_arch a = vec_arch(2, L, 5);
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_construction *c = NULL;
    basin_linear_region_report rep;
    int rc = basin_construct_linear_region(&a, ds, &sq, NULL, &c, &rep);
    if (rc)
        print_error("%s\n", rep.message);
    assert_int_equal(rc, BASIN_OK);
    assert_string_equal(rep.method, "trained");
    double mp, ml, o1[MAXW], o2[MAXW];
    basin_layer_spec Lin[5];
    memcpy(Lin, c->layers, sizeof Lin);
    Lin[1].act = Lin[3].act = BASIN_ACT_IDENTITY;
    basin_arch la = vec_arch(2, Lin, 5);
    for (size_t i = 0; i < ds->n; i++) {
        mlp_eval(&c->arch, c->theta, ds->x + 2 * i, o1, &mp);
        mlp_eval(&la, c->theta_linear, ds->x + 2 * i, o2, &ml);
        assert_near(o1[0], o2[0], 1e-12 * fmax(1, fabs(o2[0])));
        assert_near(o1[1], o2[1], 1e-12 * fmax(1, fabs(o2[1])));
        assert_true(mp >= rep.margin * (1 - 1e-12));
    }
    assert_near(mlp_risk(&c->arch, c->theta, ds, &mp), rep.risk, 1e-12 * rep.risk);
    assert_true(rep.linear_risk >= rep.r_lin * (1 - 1e-12));
    assert_true(rep.linear_grad_norm < 1e-6);
    basin_construction_free(c);
    basin_dataset_free(ds);
}

static void expect_notsup(const basin_layer_spec *L, size_t n, long layer, const char *word)
{
    basin_dataset *ds = vee();
    basin_arch a = vec_arch(1, L, n);
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_construction *c = NULL;
    basin_linear_region_report rep;
    assert_int_equal(basin_construct_linear_region(&a, ds, &sq, NULL, &c, &rep), BASIN_ENOTSUP);
    assert_null(c);
    assert_int_equal(rep.layer, layer);
    if (!strstr(rep.message, word))
        print_error("message '%s' lacks '%s'\n", rep.message, word);
    assert_non_null(strstr(rep.message, word));
    basin_dataset_free(ds);
}

static void test_rejections(void **state)
{
    (void)state;
    basin_layer_spec neg[] = {dense(2), act(BASIN_ACT_PWL, 1.0, -0.5), dense(1)};
    expect_notsup(neg, 3, 1, "s_pos");
    basin_layer_spec zero[] = {dense(2), act(BASIN_ACT_PWL, 1.0, 0.0), dense(1)};
    expect_notsup(zero, 3, 1, "s_pos");
    basin_layer_spec last[] = {dense(2), act(BASIN_ACT_RELU, 0, 0), dense(1),
                               act(BASIN_ACT_RELU, 0, 0)};
    expect_notsup(last, 4, 3, "followed by a parametrised layer");
    basin_layer_spec first[] = {act(BASIN_ACT_RELU, 0, 0), dense(1)};
    expect_notsup(first, 2, 0, "input");
    basin_layer_spec twice[] = {dense(2), act(BASIN_ACT_RELU, 0, 0), act(BASIN_ACT_RELU, 0, 0),
                                dense(1)};
    expect_notsup(twice, 4, 2, "no parametrised layer between");
    basin_layer_spec nobias[] = {dense(2), act(BASIN_ACT_RELU, 0, 0), dense(1)};
    nobias[0].bias = 0;
    nobias[2].bias = 1;
    expect_notsup(nobias, 3, 0, "no bias");

    basin_dataset *ds = images(4, 1, 4, 4, 1, 1);
    basin_layer_spec mp[] = {conv(1, 2, BASIN_PAD_VALID), act(BASIN_ACT_RELU, 0, 0),
                             plain(BASIN_LAYER_MAXPOOL, 2), plain(BASIN_LAYER_FLATTEN, 0),
                             dense(1)};
    basin_arch a;
    memset(&a, 0, sizeof a);
    a.in_rank = 3;
    a.in_shape[0] = 1;
    a.in_shape[1] = 4;
    a.in_shape[2] = 4;
    a.layers = mp;
    a.n_layers = 5;
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_construction *c = NULL;
    basin_linear_region_report rep;
    assert_int_equal(basin_construct_linear_region(&a, ds, &sq, NULL, &c, &rep), BASIN_ENOTSUP);
    assert_int_equal(rep.layer, 2);
    assert_non_null(strstr(rep.message, "maxpool"));
    basin_dataset_free(ds);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    basin_dataset *ds = vee();
    basin_layer_spec L[] = {dense(2), act(BASIN_ACT_RELU, 0, 0), dense(1)};
    basin_arch a = vec_arch(2, L, 3); /* the data are 1-D */
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_construction *c = NULL;
    basin_linear_region_report rep;
    assert_int_equal(basin_construct_linear_region(&a, ds, &sq, NULL, &c, &rep), BASIN_EINVAL);
    assert_non_null(strstr(rep.message, "expects"));
    a = vec_arch(1, L, 3);
    basin_linear_region_opts o;
    basin_linear_region_defaults(&o);
    o.margin = NAN;
    assert_int_equal(basin_construct_linear_region(&a, ds, &sq, &o, &c, &rep), BASIN_EINVAL);
    assert_int_equal(basin_construct_linear_region(&a, ds, &sq, NULL, NULL, &rep), BASIN_EINVAL);
    basin_dataset_free(ds);
}

typedef struct sweep_arg {
    basin_dataset *ds;
} sweep_arg;

static int sweep_dense(void *p)
{
    sweep_arg *s = p;
    basin_layer_spec L[] = {dense(3), act(BASIN_ACT_RELU, 0, 0), dense(2),
                            act(BASIN_ACT_RELU, 0, 0), dense(1)};
    basin_arch a = vec_arch(1, L, 5);
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_construction *c = NULL;
    int rc = basin_construct_linear_region(&a, s->ds, &sq, NULL, &c, NULL);
    basin_construction_free(c);
    return rc;
}

/* The trained path (a bottleneck): objective, Lanczos, trainer and lift all fail cleanly. */
static int sweep_trained(void *p)
{
    sweep_arg *s = p;
    basin_layer_spec L[] = {dense(2), act(BASIN_ACT_RELU, 0, 0), dense(1)};
    basin_arch a = vec_arch(1, L, 3);
    basin_loss sq = {BASIN_LOSS_SQUARED, 1.0};
    basin_linear_region_opts o;
    basin_linear_region_defaults(&o);
    o.force_train = 1;
    basin_construction *c = NULL;
    int rc = basin_construct_linear_region(&a, s->ds, &sq, &o, &c, NULL);
    basin_construction_free(c);
    return rc;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    sweep_arg s = {vee()};
    failing_alloc_report r;
    int ok = failing_alloc_sweep(sweep_dense, &s, FAILING_ALLOC_FROM_N, 0, &r);
    if (!ok)
        print_error("bad_n %zu rc %d live %ld\n", r.bad_n, r.bad_rc, r.bad_live);
    assert_true(ok);
    assert_true(r.runs > 5);
    ok = failing_alloc_sweep(sweep_trained, &s, FAILING_ALLOC_FROM_N, 0, &r);
    if (!ok)
        print_error("trained: bad_n %zu rc %d live %ld\n", r.bad_n, r.bad_rc, r.bad_live);
    assert_true(ok);
    assert_true(r.runs > 10);
    basin_dataset_free(s.ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_two_hidden),
        cmocka_unit_test(test_dense_one_hidden),
        cmocka_unit_test(test_dense_leaky_and_pwl),
        cmocka_unit_test(test_dense_xor_closed_form),
        cmocka_unit_test(test_dense_force_train),
        cmocka_unit_test(test_margin_option),
        cmocka_unit_test(test_conv_valid_avgpool),
        cmocka_unit_test(test_conv_same_padding_inside),
        cmocka_unit_test(test_conv_same_padding_last_rejected),
        cmocka_unit_test(test_bottleneck_trained),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
