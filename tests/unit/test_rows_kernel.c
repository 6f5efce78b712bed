/* Unit tests of the row kernel (net_rows.c, rows_int.h): the fused AVX-512 risk/gradient of one
 * θ for dense nets too wide for the lane kernel. References are independent of the kernel:
 * central finite differences of the risk, and basin_net_risk_grad's BLAS path (the same call
 * on a workspace without the row scratch, which is also what a CPU without AVX-512 runs).
 * Shapes cover the padding of every width to whole vectors (1, 2, 5, 9, 17, 33, 40, 128),
 * leaky and pwl slopes, layers without bias, an output activation, more stages than the lane
 * kernel takes, and sample counts below, at and across the 48-sample blocks and the 6-row
 * register tiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/data.h"
#include "basin/net.h"
#include "basin/rng.h"
#include "basin/status.h"
#include "layer_specs.h"
#include "lanes_int.h"
#include "net_int.h"
#include "rows_int.h"

typedef struct net_case {
    const char *name;
    size_t d;
    size_t n_layers;
    basin_layer_spec layers[20];
    basin_loss loss;
} net_case;

static void set_case(net_case *c, const char *name, size_t d, basin_loss_kind loss)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    c->d = d;
    c->loss.kind = loss;
    c->loss.huber_delta = 0.8;
}

static size_t catalogue(net_case *c)
{
    size_t n = 0;
    set_case(&c[n], "2-64-64-64-1 relu squared (bench case b)", 2, BASIN_LOSS_SQUARED);
    for (size_t i = 0; i < 3; i++) {
        c[n].layers[2 * i] = dense(64, 1);
        c[n].layers[2 * i + 1] = act(BASIN_ACT_RELU, 0, 0);
    }
    c[n].layers[6] = dense(1, 1);
    c[n].n_layers = 7;
    n++;
    set_case(&c[n], "9-33-17-2 leaky pwl, squared on 2", 9, BASIN_LOSS_SQUARED);
    c[n].layers[0] = dense(33, 1);
    c[n].layers[1] = act(BASIN_ACT_LEAKY_RELU, 0.1, 0);
    c[n].layers[2] = dense(17, 0);
    c[n].layers[3] = act(BASIN_ACT_PWL, -0.4, 1.3);
    c[n].layers[4] = dense(2, 1);
    c[n].n_layers = 5;
    n++;
    set_case(&c[n], "5-128-40-5 nobias first, output pwl, huber", 5, BASIN_LOSS_HUBER);
    c[n].layers[0] = dense(128, 0);
    c[n].layers[1] = act(BASIN_ACT_RELU, 0, 0);
    c[n].layers[2] = dense(40, 1);
    c[n].layers[3] = act(BASIN_ACT_LEAKY_RELU, 0.05, 0);
    c[n].layers[4] = dense(5, 1);
    c[n].layers[5] = act(BASIN_ACT_PWL, 0.2, 0.9);
    c[n].n_layers = 6;
    n++;
    set_case(&c[n], "3-40-1-6 one-unit hidden layer, cross entropy", 3, BASIN_LOSS_CROSS_ENTROPY);
    c[n].layers[0] = dense(40, 1);
    c[n].layers[1] = act(BASIN_ACT_RELU, 0, 0);
    c[n].layers[2] = dense(1, 1);
    c[n].layers[3] = act(BASIN_ACT_LEAKY_RELU, 0.3, 0);
    c[n].layers[4] = dense(6, 1);
    c[n].n_layers = 5;
    n++;
    set_case(&c[n], "2-(8 leaky)x9-1: nine stages, logistic", 2, BASIN_LOSS_LOGISTIC);
    for (size_t i = 0; i < 9; i++) {
        c[n].layers[2 * i] = dense(8, 1);
        c[n].layers[2 * i + 1] = act(BASIN_ACT_LEAKY_RELU, 0.2, 0);
    }
    c[n].layers[18] = dense(1, 1);
    c[n].n_layers = 19;
    n++;
    return n;
}

static basin_net *make_net(const net_case *c)
{
    basin_arch arch;
    memset(&arch, 0, sizeof arch);
    arch.in_rank = 1;
    arch.in_shape[0] = c->d;
    arch.n_layers = c->n_layers;
    arch.layers = c->layers;
    basin_net *net = NULL;
    assert_int_equal(basin_net_create(&arch, &net, NULL), BASIN_OK);
    assert_false(basin__lanes_eligible(net));
    return net;
}

static basin_dataset *make_data(const basin_net *net, const basin_loss *loss, size_t n,
                                uint64_t seed)
{
    size_t d = basin_net_in_dim(net), k = basin_net_out_dim(net);
    size_t shape[1] = {d}, yd = basin_loss_target_dim(loss, k);
    basin_dataset *ds = NULL;
    assert_int_equal(basin_dataset_create(n, 1, shape, yd, &ds), BASIN_OK);
    basin_rng rng;
    basin_rng_init(&rng, seed, 0);
    for (size_t i = 0; i < n * d; i++)
        ds->x[i] = basin_rng_normal(&rng);
    for (size_t i = 0; i < n * yd; i++) {
        double u = basin_rng_uniform(&rng);
        if (loss->kind == BASIN_LOSS_LOGISTIC)
            ds->y[i] = u < 0.5 ? 0.0 : 1.0;
        else if (loss->kind == BASIN_LOSS_CROSS_ENTROPY)
            ds->y[i] = floor(u * (double)k);
        else
            ds->y[i] = basin_rng_normal(&rng);
    }
    return ds;
}

/* He-like scale so that deep and wide nets keep O(1) values. */
static double *make_theta(const basin_net *net, uint64_t seed)
{
    size_t dim = basin_net_param_count(net);
    double *theta = malloc(dim * sizeof *theta);
    assert_non_null(theta);
    basin_rng rng;
    basin_rng_init(&rng, seed, 1);
    basin_layer_info li;
    for (size_t l = 0; l < basin_net_layer_count(net); l++) {
        basin_net_layer_info(net, l, &li);
        if (li.kind != BASIN_LAYER_DENSE)
            continue;
        double sc = sqrt(2.0 / (double)li.in_dim);
        for (size_t p = 0; p < li.weight_count + li.bias_count; p++)
            theta[li.param_offset + p] = sc * basin_rng_normal(&rng);
    }
    return theta;
}

static double rel_err(const double *a, const double *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num) / (sqrt(den) + 1e-300);
}

/* A workspace on the row kernel (row = 1) or on the BLAS path (row = 0). */
static basin_net_ws *make_ws(const basin_net *net, size_t max_batch, int row)
{
    basin_net_ws *ws = NULL;
    assert_int_equal(basin_net_ws_create(net, max_batch, &ws), BASIN_OK);
    if (!row) {
        basin_free(ws->rowscratch);
        ws->rowscratch = NULL;
    }
    return ws;
}

static int have_kernel(const basin_net *net)
{
    if (basin__rows_scratch_len(net) > 0)
        return 1;
    print_message("row kernel not available on this CPU: BLAS path against itself\n");
    return 0;
}

/* ∇R against central differences of R on up to 40 parameters (first, last, every bias and
 * weight block touched), on a partial second block (49 samples) and on a selection. The nets
 * are piecewise linear and the losses piecewise quadratic or smooth, so central differences
 * are exact up to rounding unless a kink is crossed within ±h (not at these random points). */
static void test_rows_grad_vs_finite_differences(void **state)
{
    (void)state;
    net_case cases[8];
    size_t nc = catalogue(cases);
    for (size_t c = 0; c < nc; c++) {
        basin_net *net = make_net(&cases[c]);
        have_kernel(net);
        basin_dataset *ds = make_data(net, &cases[c].loss, 60, 5 + c);
        size_t dim = basin_net_param_count(net);
        basin_net_ws *ws = make_ws(net, ds->n, 1);
        double *theta = make_theta(net, 40 + c), *g = malloc(dim * sizeof *g), r, rp, rm;
        assert_non_null(g);
        size_t idx[53];
        for (size_t i = 0; i < 53; i++)
            idx[i] = (i * 7 + 3) % ds->n; /* a permutation with repeats */
        for (int sel = 0; sel < 2; sel++) {
            const size_t *ix = sel ? idx : NULL;
            size_t m = sel ? 53 : 49;
            assert_int_equal(basin_net_risk_grad(net, ws, theta, ds, ix, m, &cases[c].loss, &r, g),
                             BASIN_OK);
            assert_true(isfinite(r));
            double gmax = 0.0;
            for (size_t p = 0; p < dim; p++)
                gmax = fmax(gmax, fabs(g[p]));
            assert_true(gmax > 0.0);
            const size_t step = dim / 40 + 1;
            for (size_t q = 0; q <= 40; q++) {
                const size_t p = q == 40 ? dim - 1 : q * step;
                if (p >= dim)
                    continue;
                const double t0 = theta[p], h = 1e-5 * fmax(1.0, fabs(t0));
                theta[p] = t0 + h;
                assert_int_equal(
                    basin_net_risk_grad(net, ws, theta, ds, ix, m, &cases[c].loss, &rp, NULL),
                    BASIN_OK);
                theta[p] = t0 - h;
                assert_int_equal(
                    basin_net_risk_grad(net, ws, theta, ds, ix, m, &cases[c].loss, &rm, NULL),
                    BASIN_OK);
                theta[p] = t0;
                const double fd = (rp - rm) / (2.0 * h);
                if (fabs(fd - g[p]) > 1e-6 * (fabs(g[p]) + 1e-2 * gmax))
                    fail_msg("%s sel=%d: dR/dθ[%zu] = %.12g, central difference %.12g",
                             cases[c].name, sel, p, g[p], fd);
            }
        }
        free(theta);
        free(g);
        basin_net_ws_free(ws);
        basin_dataset_free(ds);
        basin_net_free(net);
    }
}

/* Risk and gradient against the BLAS path on every sample count around the block (48) and the
 * register tile (6): 1, 5, 6, 7, 47, 48, 49, 96, 97, 131; and with x_0 = 0 and zero first
 * biases, pre-activations exactly 0, where both must take the slope s_neg. */
static void test_rows_match_blas_on_block_edges(void **state)
{
    (void)state;
    net_case cases[8];
    size_t nc = catalogue(cases);
    const size_t sizes[] = {1, 5, 6, 7, 47, 48, 49, 96, 97, 131};
    for (size_t c = 0; c < nc; c++) {
        basin_net *net = make_net(&cases[c]);
        have_kernel(net);
        basin_dataset *ds = make_data(net, &cases[c].loss, 131, 70 + c);
        memset(ds->x, 0, ds->in_dim * sizeof *ds->x);
        size_t dim = basin_net_param_count(net);
        basin_net_ws *rw = make_ws(net, ds->n, 1), *bw = make_ws(net, ds->n, 0);
        double *theta = make_theta(net, 90 + c), r1, r2;
        double *g1 = malloc(dim * sizeof *g1), *g2 = malloc(dim * sizeof *g2);
        assert_true(g1 && g2);
        for (int zb = 0; zb < 2; zb++) {
            if (zb) { /* zero the first layer's biases */
                basin_layer_info li;
                basin_net_layer_info(net, 0, &li);
                memset(theta + li.param_offset + li.weight_count, 0, li.bias_count * sizeof *theta);
            }
            for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
                size_t m = sizes[z];
                assert_int_equal(
                    basin_net_risk_grad(net, rw, theta, ds, NULL, m, &cases[c].loss, &r1, g1),
                    BASIN_OK);
                assert_int_equal(
                    basin_net_risk_grad(net, bw, theta, ds, NULL, m, &cases[c].loss, &r2, g2),
                    BASIN_OK);
                if (fabs(r1 - r2) > 1e-13 * fabs(r2))
                    fail_msg("%s m=%zu: risk %.17g vs BLAS %.17g", cases[c].name, m, r1, r2);
                if (rel_err(g1, g2, dim) > 1e-12)
                    fail_msg("%s m=%zu: gradient differs from BLAS by %g", cases[c].name, m,
                             rel_err(g1, g2, dim));
            }
        }
        free(theta);
        free(g1);
        free(g2);
        basin_net_ws_free(rw);
        basin_net_ws_free(bw);
        basin_dataset_free(ds);
        basin_net_free(net);
    }
}

/* Padded samples of a partial block contribute exactly nothing: m·R(m samples) equals the
 * weighted sum over a split of the same selection into two calls whose sizes put the padding
 * elsewhere (52 = 48 + 4 vs 30 + 22), to rounding. */
static void test_rows_split_selection_additive(void **state)
{
    (void)state;
    net_case cases[8];
    size_t nc = catalogue(cases);
    for (size_t c = 0; c < nc; c++) {
        basin_net *net = make_net(&cases[c]);
        have_kernel(net);
        basin_dataset *ds = make_data(net, &cases[c].loss, 52, 120 + c);
        size_t dim = basin_net_param_count(net);
        basin_net_ws *ws = make_ws(net, ds->n, 1);
        double *theta = make_theta(net, 130 + c), ra, rb, rc;
        double *ga = malloc(dim * sizeof *ga), *gb = malloc(dim * sizeof *gb);
        double *gc = malloc(dim * sizeof *gc), *gs = malloc(dim * sizeof *gs);
        assert_true(ga && gb && gc && gs);
        size_t idx[52];
        for (size_t i = 0; i < 52; i++)
            idx[i] = i;
        assert_int_equal(basin_net_risk_grad(net, ws, theta, ds, NULL, 52, &cases[c].loss, &ra, ga),
                         BASIN_OK);
        assert_int_equal(basin_net_risk_grad(net, ws, theta, ds, idx, 30, &cases[c].loss, &rb, gb),
                         BASIN_OK);
        assert_int_equal(
            basin_net_risk_grad(net, ws, theta, ds, idx + 30, 22, &cases[c].loss, &rc, gc),
            BASIN_OK);
        for (size_t p = 0; p < dim; p++)
            gs[p] = (30.0 * gb[p] + 22.0 * gc[p]) / 52.0;
        assert_true(fabs((30.0 * rb + 22.0 * rc) / 52.0 - ra) <= 1e-13 * fabs(ra));
        if (rel_err(gs, ga, dim) > 1e-13)
            fail_msg("%s: split selection differs by %g", cases[c].name, rel_err(gs, ga, dim));
        free(theta);
        free(ga);
        free(gb);
        free(gc);
        free(gs);
        basin_net_ws_free(ws);
        basin_dataset_free(ds);
        basin_net_free(net);
    }
}

/* The same θ and selection give the same bits whichever way the kernel is called: another
 * workspace, another chunk size (so another recording), idx = identity instead of NULL, with
 * or without the gradient, and again. */
static void test_rows_deterministic(void **state)
{
    (void)state;
    net_case cases[8];
    size_t nc = catalogue(cases);
    for (size_t c = 0; c < nc; c++) {
        basin_net *net = make_net(&cases[c]);
        have_kernel(net);
        basin_dataset *ds = make_data(net, &cases[c].loss, 100, 150 + c);
        size_t dim = basin_net_param_count(net);
        basin_net_ws *w1 = make_ws(net, ds->n, 1), *w2 = make_ws(net, 7, 1);
        double *theta = make_theta(net, 160 + c), r1, r2, r3, r4;
        double *g1 = malloc(dim * sizeof *g1), *g2 = malloc(dim * sizeof *g2);
        double *g3 = malloc(dim * sizeof *g3);
        assert_true(g1 && g2 && g3);
        size_t idx[100];
        for (size_t i = 0; i < 100; i++)
            idx[i] = i;
        assert_int_equal(
            basin_net_risk_grad(net, w1, theta, ds, NULL, 100, &cases[c].loss, &r1, g1), BASIN_OK);
        assert_int_equal(basin_net_risk_grad(net, w2, theta, ds, idx, 100, &cases[c].loss, &r2, g2),
                         BASIN_OK);
        assert_int_equal(
            basin_net_risk_grad(net, w1, theta, ds, NULL, 100, &cases[c].loss, &r3, NULL),
            BASIN_OK);
        assert_int_equal(
            basin_net_risk_grad(net, w2, theta, ds, NULL, 100, &cases[c].loss, &r4, g3), BASIN_OK);
        assert_memory_equal(&r1, &r2, sizeof r1);
        assert_memory_equal(&r1, &r3, sizeof r1);
        assert_memory_equal(&r1, &r4, sizeof r1);
        assert_memory_equal(g1, g2, dim * sizeof *g1);
        assert_memory_equal(g1, g3, dim * sizeof *g1);
        free(theta);
        free(g1);
        free(g2);
        free(g3);
        basin_net_ws_free(w1);
        basin_net_ws_free(w2);
        basin_dataset_free(ds);
        basin_net_free(net);
    }
}

/* After a pass over m = 131 selected rows with chunks of 20, the pre-activations of the last
 * chunk (rows 120..130 of the selection: the second half of the third block) are left in the
 * workspace and equal a forward pass of those rows. */
static void test_rows_record_last_chunk(void **state)
{
    (void)state;
    net_case cases[8];
    size_t nc = catalogue(cases);
    for (size_t c = 0; c < nc; c++) {
        basin_net *net = make_net(&cases[c]);
        have_kernel(net);
        basin_dataset *ds = make_data(net, &cases[c].loss, 140, 180 + c);
        basin_net_ws *ws = make_ws(net, 20, 1), *ref = make_ws(net, 20, 0);
        double *theta = make_theta(net, 190 + c), r;
        size_t idx[131];
        for (size_t i = 0; i < 131; i++)
            idx[i] = (i * 37 + 11) % ds->n;
        assert_int_equal(
            basin_net_risk_grad(net, ws, theta, ds, idx, 131, &cases[c].loss, &r, NULL), BASIN_OK);
        size_t d = ds->in_dim, k = basin_net_out_dim(net);
        double *x = malloc(11 * d * sizeof *x), *out = malloc(11 * k * sizeof *out);
        assert_true(x && out);
        for (size_t i = 0; i < 11; i++)
            memcpy(x + i * d, ds->x + idx[120 + i] * d, d * sizeof *x);
        assert_int_equal(basin_net_forward(net, ref, theta, x, 11, out), BASIN_OK);
        size_t checked = 0;
        for (size_t l = 0; l < basin_net_layer_count(net); l++) {
            const double *a, *b;
            size_t ra, ca, rb, cb;
            int rc = basin_net_ws_layer_input(ref, l, &b, &rb, &cb);
            assert_int_equal(basin_net_ws_layer_input(ws, l, &a, &ra, &ca), rc);
            if (rc != BASIN_OK)
                continue;
            assert_int_equal(ra, 11);
            assert_int_equal(rb, 11);
            assert_int_equal(ca, cb);
            if (rel_err(a, b, ra * ca) > 1e-13)
                fail_msg("%s layer %zu: recorded values differ by %g", cases[c].name, l,
                         rel_err(a, b, ra * ca));
            checked++;
        }
        assert_true(checked > 0);
        free(x);
        free(out);
        free(theta);
        basin_net_ws_free(ws);
        basin_net_ws_free(ref);
        basin_dataset_free(ds);
        basin_net_free(net);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_grad_vs_finite_differences),
        cmocka_unit_test(test_rows_match_blas_on_block_edges),
        cmocka_unit_test(test_rows_split_selection_additive),
        cmocka_unit_test(test_rows_deterministic),
        cmocka_unit_test(test_rows_record_last_chunk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
