/* Unit tests of the lane kernel (net_lanes.c, lanes_simd_int.h) and of the batched trainer's
 * lane path (train.c). The promises checked:
 *  - every lane of an 8-lane evaluation is bit for bit the 1-lane evaluation of its own θ, with
 *    every instruction set this CPU has (generic C, AVX2, AVX-512), on nets with odd widths,
 *    every activation kind, layers without bias, an output activation, every loss, a partial
 *    last sample block and index selections with repeats;
 *  - the kernel agrees with the BLAS path of basin_net_risk_grad (an independent
 *    implementation, itself checked against finite differences in test_net) to rounding;
 *  - it leaves the last chunk's layer values in the workspace as a forward pass does;
 *  - the row kernel (rows_int.h, wider dense nets) agrees with the BLAS path to rounding, on
 *    partial sample blocks and selections, and leaves the layer values too;
 *  - basin_train_batch on such a net really takes the lane path and is bit-identical to
 *    basin_train_restart for every restart: θ, every result field and every trajectory point,
 *    with stopping rules firing at different steps, l2, momentum and Adam, divergence and
 *    rollback, and cancellation of single restarts from either hook;
 *  - allocation failures on the lane path are reported, not leaked (ASan / valgrind). */
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
#include "basin/objective.h"
#include "basin/rng.h"
#include "basin/status.h"
#include "basin/train.h"
#include "lanes_int.h"
#include "layer_specs.h"
#include "net_int.h"

#define L BASIN__LANES

/* ---- nets and data ---- */

typedef struct net_case {
    const char *name;
    size_t d;
    size_t n_layers;
    basin_layer_spec layers[12];
    basin_loss loss;
} net_case;

static void set_case(net_case *c, const char *name, size_t d, size_t n_layers, basin_loss_kind loss,
                     double delta)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    c->d = d;
    c->n_layers = n_layers;
    c->loss.kind = loss;
    c->loss.huber_delta = delta;
}

/* Fills the catalogue; returns the number of cases. */
static size_t catalogue(net_case *c)
{
    size_t n = 0;
    /* case a of the benchmark */
    set_case(&c[n], "2-16-16-1 relu squared", 2, 5, BASIN_LOSS_SQUARED, 1.0);
    c[n].layers[0] = dense(16, 1);
    c[n].layers[1] = act(BASIN_ACT_RELU, 0, 0);
    c[n].layers[2] = dense(16, 1);
    c[n].layers[3] = act(BASIN_ACT_RELU, 0, 0);
    c[n].layers[4] = dense(1, 1);
    n++;
    /* odd widths (register-tile remainders everywhere), leaky and pwl, two outputs */
    set_case(&c[n], "3-13-7-2 leaky pwl squared", 3, 5, BASIN_LOSS_SQUARED, 1.0);
    c[n].layers[0] = dense(13, 1);
    c[n].layers[1] = act(BASIN_ACT_LEAKY_RELU, 0.1, 0);
    c[n].layers[2] = dense(7, 1);
    c[n].layers[3] = act(BASIN_ACT_PWL, 0.3, 1.7);
    c[n].layers[4] = dense(2, 1);
    n++;
    /* identity activation, a layer without bias, flatten no-ops, huber on 4 outputs */
    set_case(&c[n], "5-9-4 identity nobias huber", 5, 5, BASIN_LOSS_HUBER, 0.7);
    c[n].layers[0] = simple(BASIN_LAYER_FLATTEN, 0);
    c[n].layers[1] = dense(9, 0);
    c[n].layers[2] = act(BASIN_ACT_IDENTITY, 0, 0);
    c[n].layers[3] = simple(BASIN_LAYER_FLATTEN, 0);
    c[n].layers[4] = dense(4, 1);
    n++;
    /* cross entropy, three classes */
    set_case(&c[n], "4-8-3 relu cross entropy", 4, 3, BASIN_LOSS_CROSS_ENTROPY, 1.0);
    c[n].layers[0] = dense(8, 1);
    c[n].layers[1] = act(BASIN_ACT_RELU, 0, 0);
    c[n].layers[2] = dense(3, 1);
    n++;
    /* an output activation, logistic loss */
    set_case(&c[n], "2-5-1 relu + output leaky, logistic", 2, 4, BASIN_LOSS_LOGISTIC, 1.0);
    c[n].layers[0] = dense(5, 1);
    c[n].layers[1] = act(BASIN_ACT_RELU, 0, 0);
    c[n].layers[2] = dense(1, 1);
    c[n].layers[3] = act(BASIN_ACT_LEAKY_RELU, 0.2, 0);
    n++;
    /* the widest layers the kernel takes, absolute loss */
    set_case(&c[n], "6-32-32-1 relu absolute", 6, 5, BASIN_LOSS_ABSOLUTE, 1.0);
    c[n].layers[0] = dense(32, 1);
    c[n].layers[1] = act(BASIN_ACT_RELU, 0, 0);
    c[n].layers[2] = dense(32, 1);
    c[n].layers[3] = act(BASIN_ACT_RELU, 0, 0);
    c[n].layers[4] = dense(1, 1);
    n++;
    /* scalar everything, hinge; and a deep narrow one */
    set_case(&c[n], "1-1-1 relu hinge", 1, 3, BASIN_LOSS_HINGE, 1.0);
    c[n].layers[0] = dense(1, 1);
    c[n].layers[1] = act(BASIN_ACT_RELU, 0, 0);
    c[n].layers[2] = dense(1, 1);
    n++;
    set_case(&c[n], "2-3-3-3-3-3-1 leaky squared", 2, 11, BASIN_LOSS_SQUARED, 1.0);
    for (size_t i = 0; i < 5; i++) {
        c[n].layers[2 * i] = dense(3, i % 2);
        c[n].layers[2 * i + 1] = act(BASIN_ACT_LEAKY_RELU, 0.05, 0);
    }
    c[n].layers[10] = dense(1, 1);
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
    return net;
}

/* n samples of Gaussian inputs with targets the loss accepts. */
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
    memset(ds->x, 0, d * sizeof *ds->x); /* x_0 = 0: exact zero pre-activations (below) */
    for (size_t i = 0; i < n * yd; i++) {
        double u = basin_rng_uniform(&rng);
        if (loss->kind == BASIN_LOSS_LOGISTIC || loss->kind == BASIN_LOSS_HINGE)
            ds->y[i] = u < 0.5 ? 0.0 : 1.0;
        else if (loss->kind == BASIN_LOSS_CROSS_ENTROPY)
            ds->y[i] = floor(u * (double)k);
        else
            ds->y[i] = basin_rng_normal(&rng);
    }
    return ds;
}

static void random_theta(size_t dim, uint64_t seed, double *theta)
{
    basin_rng rng;
    basin_rng_init(&rng, seed, 1);
    for (size_t i = 0; i < dim; i++)
        theta[i] = 0.7 * basin_rng_normal(&rng);
}

/* Zero biases in the first dense layer: with x_0 = 0 its pre-activations are exactly 0, where
 * the activation's derivative convention (s_neg at 0) is tested. */
static void zero_first_bias(const basin_net *net, double *theta)
{
    basin_layer_info li;
    for (size_t l = 0; l < basin_net_layer_count(net); l++) {
        basin_net_layer_info(net, l, &li);
        if (li.kind == BASIN_LAYER_DENSE) {
            memset(theta + li.param_offset + li.weight_count, 0, li.bias_count * sizeof *theta);
            return;
        }
    }
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

/* ---- the kernel ---- */

/* Each lane of every available instruction set equals the generic 1-lane evaluation. */
static void check_lanes_equal_single(const basin_net *net, const basin_dataset *ds,
                                     const basin_loss *loss, const size_t *idx, size_t m)
{
    size_t dim = basin_net_param_count(net);
    size_t len1 = basin__lanes_scratch_len(net, 1), len8 = basin__lanes_scratch_len(net, L);
    double *theta = malloc(L * dim * sizeof *theta), *P = malloc(L * dim * sizeof *P);
    double *g1 = malloc(L * dim * sizeof *g1), *G = malloc(L * dim * sizeof *G);
    double *gx = malloc(dim * sizeof *gx), *s1 = malloc(len1 * sizeof *s1);
    double *s8 = malloc(len8 * sizeof *s8);
    double r1[L], r8[L], rx;
    assert_true(theta && P && g1 && G && gx && s1 && s8 && len1 > 0 && len8 > len1);
    for (size_t l = 0; l < L; l++) {
        random_theta(dim, 100 + l, theta + l * dim);
        if (l % 2 == 0)
            zero_first_bias(net, theta + l * dim);
        memset(g1 + l * dim, 0, dim * sizeof *g1);
        assert_int_equal(basin__lanes_eval_isa(BASIN__ISA_GENERIC, net, 1, theta + l * dim, ds, idx,
                                               m, loss, g1 + l * dim, &r1[l], s1, NULL),
                         BASIN_OK);
        /* risk without the gradient: the same number */
        assert_int_equal(basin__lanes_eval_isa(BASIN__ISA_GENERIC, net, 1, theta + l * dim, ds, idx,
                                               m, loss, NULL, &rx, s1, NULL),
                         BASIN_OK);
        assert_memory_equal(&rx, &r1[l], sizeof rx);
    }
    for (size_t p = 0; p < dim; p++)
        for (size_t l = 0; l < L; l++)
            P[p * L + l] = theta[l * dim + p];
    /* the lanes really differ, so a mix-up between lanes would show */
    assert_memory_not_equal(&r1[0], &r1[1], sizeof r1[0]);
    const basin__lanes_isa isas[] = {BASIN__ISA_GENERIC, BASIN__ISA_AVX2, BASIN__ISA_AVX512};
    for (size_t k = 0; k < 3; k++) {
        memset(G, 0, L * dim * sizeof *G);
        int rc = basin__lanes_eval_isa(isas[k], net, L, P, ds, idx, m, loss, G, r8, s8, NULL);
        if (rc == BASIN_ENOTSUP)
            continue;
        assert_int_equal(rc, BASIN_OK);
        for (size_t l = 0; l < L; l++) {
            assert_memory_equal(&r8[l], &r1[l], sizeof r8[l]);
            for (size_t p = 0; p < dim; p++)
                if (memcmp(&G[p * L + l], &g1[l * dim + p], sizeof(double)) != 0)
                    fail_msg("isa %zu lane %zu param %zu: %.17g vs %.17g", k, l, p, G[p * L + l],
                             g1[l * dim + p]);
        }
        double r8v[L];
        assert_int_equal(
            basin__lanes_eval_isa(isas[k], net, L, P, ds, idx, m, loss, NULL, r8v, s8, NULL),
            BASIN_OK);
        assert_memory_equal(r8v, r8, sizeof r8);
        /* the 1-lane code compiled for this instruction set too */
        memset(gx, 0, dim * sizeof *gx);
        assert_int_equal(
            basin__lanes_eval_isa(isas[k], net, 1, theta, ds, idx, m, loss, gx, &rx, s1, NULL),
            BASIN_OK);
        assert_memory_equal(&rx, &r1[0], sizeof rx);
        assert_memory_equal(gx, g1, dim * sizeof *gx);
    }
    free(theta);
    free(P);
    free(g1);
    free(G);
    free(gx);
    free(s1);
    free(s8);
}

static void test_lanes_bit_identical(void **state)
{
    (void)state;
    net_case cases[16];
    size_t nc = catalogue(cases);
    const size_t idx[] = {5, 0, 5, 3, 11, 2, 2, 7, 9, 1, 4}; /* repeats, 11 = 8 + 3 */
    for (size_t c = 0; c < nc; c++) {
        basin_net *net = make_net(&cases[c]);
        assert_true(basin__lanes_eligible(net));
        const size_t sizes[] = {37, 5, 16};
        for (size_t z = 0; z < 3; z++) {
            basin_dataset *ds = make_data(net, &cases[c].loss, sizes[z], 7 + z);
            check_lanes_equal_single(net, ds, &cases[c].loss, NULL, ds->n);
            if (ds->n > 11)
                check_lanes_equal_single(net, ds, &cases[c].loss, idx, 11);
            basin_dataset_free(ds);
        }
        basin_net_free(net);
    }
}

/* basin_net_risk_grad (lane kernel) against the BLAS path of the same function, made to run by
 * a workspace without lane scratch. */
static void test_lanes_match_blas_path(void **state)
{
    (void)state;
    net_case cases[16];
    size_t nc = catalogue(cases);
    for (size_t c = 0; c < nc; c++) {
        basin_net *net = make_net(&cases[c]);
        basin_dataset *ds = make_data(net, &cases[c].loss, 41, 3);
        size_t dim = basin_net_param_count(net);
        basin_net_ws *lane_ws, *blas_ws;
        assert_int_equal(basin_net_ws_create(net, 41, &lane_ws), BASIN_OK);
        assert_int_equal(basin_net_ws_create(net, 41, &blas_ws), BASIN_OK);
        assert_non_null(lane_ws->lanes);
        basin_free(blas_ws->lanes);
        blas_ws->lanes = NULL;
        double *theta = malloc(dim * sizeof *theta), *g1 = malloc(dim * sizeof *g1);
        double *g2 = malloc(dim * sizeof *g2), r1, r2;
        assert_true(theta && g1 && g2);
        random_theta(dim, 9, theta);
        assert_int_equal(
            basin_net_risk_grad(net, lane_ws, theta, ds, NULL, ds->n, &cases[c].loss, &r1, g1),
            BASIN_OK);
        assert_int_equal(
            basin_net_risk_grad(net, blas_ws, theta, ds, NULL, ds->n, &cases[c].loss, &r2, g2),
            BASIN_OK);
        if (fabs(r1 - r2) > 1e-13 * fabs(r2))
            fail_msg("%s: risk %.17g vs %.17g", cases[c].name, r1, r2);
        if (rel_err(g1, g2, dim) > 1e-12)
            fail_msg("%s: gradient differs by %g", cases[c].name, rel_err(g1, g2, dim));
        assert_true(r1 > 0.0);
        free(theta);
        free(g1);
        free(g2);
        basin_net_ws_free(lane_ws);
        basin_net_ws_free(blas_ws);
        basin_dataset_free(ds);
        basin_net_free(net);
    }
}

/* After a lane evaluation of 37 samples in chunks of 16, the workspace holds the last chunk's 5
 * rows of every activation input, as basin_net_forward of those rows leaves them. */
static void test_lanes_leave_layer_values(void **state)
{
    (void)state;
    net_case cases[16];
    catalogue(cases);
    const net_case *c = &cases[1];
    basin_net *net = make_net(c);
    basin_dataset *ds = make_data(net, &c->loss, 37, 4);
    size_t dim = basin_net_param_count(net);
    basin_net_ws *ws, *ref;
    assert_int_equal(basin_net_ws_create(net, 16, &ws), BASIN_OK);
    assert_int_equal(basin_net_ws_create(net, 16, &ref), BASIN_OK);
    double *theta = malloc(dim * sizeof *theta), out[10], risk;
    assert_non_null(theta);
    random_theta(dim, 5, theta);
    assert_int_equal(basin_net_risk_grad(net, ws, theta, ds, NULL, 37, &c->loss, &risk, NULL),
                     BASIN_OK);
    assert_int_equal(basin_net_forward(net, ref, theta, ds->x + 32 * 3, 5, out), BASIN_OK);
    for (size_t l = 0; l < basin_net_layer_count(net); l++) {
        const double *a, *b;
        size_t ra, ca, rb, cb;
        int rc = basin_net_ws_layer_input(ref, l, &b, &rb, &cb);
        assert_int_equal(basin_net_ws_layer_input(ws, l, &a, &ra, &ca), rc);
        if (rc != BASIN_OK)
            continue;
        assert_int_equal(ra, 5);
        assert_int_equal(ra, rb);
        assert_int_equal(ca, cb);
        assert_true(rel_err(a, b, ra * ca) < 1e-14);
    }
    free(theta);
    basin_net_ws_free(ws);
    basin_net_ws_free(ref);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_eligibility(void **state)
{
    (void)state;
    net_case c;
    set_case(&c, "", 2, 0, BASIN_LOSS_SQUARED, 1.0);
    basin_net *net;
    /* 33 units: too wide */
    c.n_layers = 3;
    c.layers[0] = dense(33, 1);
    c.layers[1] = act(BASIN_ACT_RELU, 0, 0);
    c.layers[2] = dense(1, 1);
    net = make_net(&c);
    assert_false(basin__lanes_eligible(net));
    assert_int_equal(basin__lanes_scratch_len(net, 1), 0);
    basin_net_free(net);
    /* an activation on the raw input, two activations in a row */
    c.layers[0] = act(BASIN_ACT_RELU, 0, 0);
    c.layers[1] = dense(4, 1);
    c.layers[2] = dense(1, 1);
    net = make_net(&c);
    assert_false(basin__lanes_eligible(net));
    basin_net_free(net);
    c.n_layers = 4;
    c.layers[0] = dense(4, 1);
    c.layers[1] = act(BASIN_ACT_RELU, 0, 0);
    c.layers[2] = act(BASIN_ACT_LEAKY_RELU, 0.1, 0);
    c.layers[3] = dense(1, 1);
    net = make_net(&c);
    assert_false(basin__lanes_eligible(net));
    basin_net_free(net);
    /* nine dense layers; more than 4096 parameters */
    c.n_layers = 9;
    for (size_t i = 0; i < 9; i++)
        c.layers[i] = dense(2, 1);
    net = make_net(&c);
    assert_false(basin__lanes_eligible(net));
    basin_net_free(net);
    c.n_layers = 6;
    for (size_t i = 0; i < 5; i++)
        c.layers[i] = dense(32, 1);
    c.layers[5] = dense(1, 1);
    net = make_net(&c);
    assert_true(basin_net_param_count(net) > BASIN__LANES_MAX_PARAMS);
    assert_false(basin__lanes_eligible(net));
    basin_net_free(net);
    /* eight dense layers within the limits: taken */
    c.n_layers = 8;
    for (size_t i = 0; i < 8; i++)
        c.layers[i] = dense(3, 1);
    net = make_net(&c);
    assert_true(basin__lanes_eligible(net));
    basin_net_free(net);
    /* a [c,h,w] input */
    basin_layer_spec layers[2] = {simple(BASIN_LAYER_FLATTEN, 0), dense(1, 1)};
    basin_arch arch = {3, {1, 2, 2}, 2, layers};
    assert_int_equal(basin_net_create(&arch, &net, NULL), BASIN_OK);
    assert_false(basin__lanes_eligible(net));
    basin_net_free(net);
}

/* ---- the row kernel (rows_int.h): dense nets too wide for the lanes ---- */

static size_t wide_catalogue(net_case *c)
{
    size_t n = 0;
    set_case(&c[n], "2-64-64-64-1 relu squared (case b)", 2, 7, BASIN_LOSS_SQUARED, 1.0);
    for (size_t i = 0; i < 3; i++) {
        c[n].layers[2 * i] = dense(64, 1);
        c[n].layers[2 * i + 1] = act(BASIN_ACT_RELU, 0, 0);
    }
    c[n].layers[6] = dense(1, 1);
    n++;
    set_case(&c[n], "5-33-7-3 leaky pwl nobias, squared on 3", 5, 5, BASIN_LOSS_SQUARED, 1.0);
    c[n].layers[0] = dense(33, 0);
    c[n].layers[1] = act(BASIN_ACT_LEAKY_RELU, 0.1, 0);
    c[n].layers[2] = dense(7, 1);
    c[n].layers[3] = act(BASIN_ACT_PWL, 0.3, 1.7);
    c[n].layers[4] = dense(3, 1);
    n++;
    set_case(&c[n], "3-128-2 relu cross entropy", 3, 3, BASIN_LOSS_CROSS_ENTROPY, 1.0);
    c[n].layers[0] = dense(128, 1);
    c[n].layers[1] = act(BASIN_ACT_RELU, 0, 0);
    c[n].layers[2] = dense(2, 1);
    n++;
    set_case(&c[n], "1-40-1 + output relu, huber", 1, 4, BASIN_LOSS_HUBER, 0.5);
    c[n].layers[0] = dense(40, 1);
    c[n].layers[1] = act(BASIN_ACT_IDENTITY, 0, 0);
    c[n].layers[2] = dense(1, 1);
    c[n].layers[3] = act(BASIN_ACT_RELU, 0, 0);
    n++;
    return n;
}

/* basin_net_risk_grad through the row kernel (when this CPU has it) against the BLAS path, on
 * sample counts below, at and across the row kernel's sample blocks, and on a selection with
 * repeats. */
static void test_rows_match_blas_path(void **state)
{
    (void)state;
    net_case cases[8];
    size_t nc = wide_catalogue(cases);
    const size_t idx[] = {5, 0, 5, 3, 70, 2, 2, 7, 9, 1, 4, 64, 63, 65};
    for (size_t c = 0; c < nc; c++) {
        basin_net *net = make_net(&cases[c]);
        assert_false(basin__lanes_eligible(net));
        const size_t sizes[] = {131, 64, 7};
        for (size_t z = 0; z < 3; z++) {
            basin_dataset *ds = make_data(net, &cases[c].loss, sizes[z], 11 + z);
            size_t dim = basin_net_param_count(net);
            basin_net_ws *row_ws, *blas_ws;
            assert_int_equal(basin_net_ws_create(net, ds->n, &row_ws), BASIN_OK);
            assert_int_equal(basin_net_ws_create(net, ds->n, &blas_ws), BASIN_OK);
            if (!row_ws->rowscratch)
                print_message("row kernel not available on this CPU: BLAS path only\n");
            basin_free(blas_ws->rowscratch);
            blas_ws->rowscratch = NULL;
            double *theta = malloc(dim * sizeof *theta), *g1 = malloc(dim * sizeof *g1);
            double *g2 = malloc(dim * sizeof *g2), r1, r2, r3;
            assert_true(theta && g1 && g2);
            random_theta(dim, 17 + z, theta);
            zero_first_bias(net, theta);
            for (int sel = 0; sel < 2; sel++) {
                const size_t *ix = sel && ds->n > 70 ? idx : NULL;
                size_t m = ix ? sizeof idx / sizeof idx[0] : ds->n;
                assert_int_equal(
                    basin_net_risk_grad(net, row_ws, theta, ds, ix, m, &cases[c].loss, &r1, g1),
                    BASIN_OK);
                assert_int_equal(
                    basin_net_risk_grad(net, blas_ws, theta, ds, ix, m, &cases[c].loss, &r2, g2),
                    BASIN_OK);
                if (fabs(r1 - r2) > 1e-13 * fabs(r2))
                    fail_msg("%s n=%zu: risk %.17g vs %.17g", cases[c].name, ds->n, r1, r2);
                if (rel_err(g1, g2, dim) > 1e-12)
                    fail_msg("%s n=%zu: gradient differs by %g", cases[c].name, ds->n,
                             rel_err(g1, g2, dim));
                assert_int_equal(
                    basin_net_risk_grad(net, row_ws, theta, ds, ix, m, &cases[c].loss, &r3, NULL),
                    BASIN_OK);
                assert_memory_equal(&r3, &r1, sizeof r1);
            }
            /* the layer values left behind equal a forward pass of the same rows */
            basin_net_ws *ref;
            assert_int_equal(basin_net_ws_create(net, ds->n, &ref), BASIN_OK);
            double *out = malloc(ds->n * basin_net_out_dim(net) * sizeof *out);
            assert_non_null(out);
            assert_int_equal(
                basin_net_risk_grad(net, row_ws, theta, ds, NULL, ds->n, &cases[c].loss, &r1, NULL),
                BASIN_OK);
            assert_int_equal(basin_net_forward(net, ref, theta, ds->x, ds->n, out), BASIN_OK);
            for (size_t l = 0; l < basin_net_layer_count(net); l++) {
                const double *a, *b;
                size_t ra, ca, rb, cb;
                int rc = basin_net_ws_layer_input(ref, l, &b, &rb, &cb);
                assert_int_equal(basin_net_ws_layer_input(row_ws, l, &a, &ra, &ca), rc);
                if (rc == BASIN_OK) {
                    assert_int_equal(ra, rb);
                    assert_int_equal(ca, cb);
                    assert_true(rel_err(a, b, ra * ca) < 1e-13);
                }
            }
            free(out);
            basin_net_ws_free(ref);
            free(theta);
            free(g1);
            free(g2);
            basin_net_ws_free(row_ws);
            basin_net_ws_free(blas_ws);
            basin_dataset_free(ds);
        }
        basin_net_free(net);
    }
}

/* ---- the batched trainer ---- */

#define REC_MAX 4096

typedef struct recorder {
    size_t n;
    uint64_t restart[REC_MAX];
    basin_traj_point pt[REC_MAX];
    uint64_t cancel_restart; /* on_point returns 1 for this restart at cancel_step */
    size_t cancel_step;
    uint64_t stop_restart; /* should_stop returns 1 for this restart from stop_step on */
    size_t stop_polls;
} recorder;

static int rec_point(void *user, uint64_t restart, const basin_traj_point *pt)
{
    recorder *r = user;
    if (r->n < REC_MAX) {
        r->restart[r->n] = restart;
        r->pt[r->n] = *pt;
        r->n++;
    }
    return restart == r->cancel_restart && pt->step == r->cancel_step;
}

static int rec_stop(void *user, uint64_t restart)
{
    recorder *r = user;
    if (restart != r->stop_restart)
        return 0;
    return ++r->stop_polls >= 3; /* the third poll of that restart: step 128 */
}

/* The points of one restart, in the order they were emitted. */
static size_t points_of(const recorder *r, uint64_t restart, basin_traj_point *out)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->restart[i] == restart)
            out[n++] = r->pt[i];
    return n;
}

static void assert_results_equal(const basin_run_result *x, const basin_run_result *y)
{
    assert_true(x->restart == y->restart);
    assert_int_equal(x->reason, y->reason);
    assert_int_equal(x->steps, y->steps);
    assert_memory_equal(&x->initial_risk, &y->initial_risk, sizeof(double));
    assert_memory_equal(&x->final_risk, &y->final_risk, sizeof(double));
    assert_memory_equal(&x->grad_norm, &y->grad_norm, sizeof(double));
    assert_memory_equal(&x->param_norm, &y->param_norm, sizeof(double));
    assert_int_equal(x->risk_falling, y->risk_falling);
}

static size_t n_allocs;
static void *counting_malloc(size_t size, void *ctx)
{
    (void)ctx;
    n_allocs++;
    return malloc(size);
}
static void *counting_realloc(void *p, size_t size, void *ctx)
{
    (void)ctx;
    return realloc(p, size);
}
static void plain_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

enum { COUNT = 19, FIRST = 4 };

/* Batch of COUNT restarts vs single calls: θ, results and trajectories bit-identical. Returns
 * how many results ended for each reason (counts[reason]). */
static void batch_vs_single(const net_case *c, size_t n, double l2, const basin_train_spec *s,
                            recorder *hb_init, size_t *counts)
{
    basin_net *net = make_net(c);
    basin_dataset *ds = make_data(net, &c->loss, n, 21);
    basin_objective o;
    assert_int_equal(basin_objective_empirical(net, ds, &c->loss, l2, 0, &o), BASIN_OK);
    size_t dim = o.dim;
    double *batch = malloc(COUNT * dim * sizeof *batch);
    double *single = malloc(COUNT * dim * sizeof *single);
    recorder *hb = malloc(sizeof *hb), *hs = malloc(sizeof *hs);
    basin_traj_point *pa = malloc(REC_MAX * sizeof *pa), *pb = malloc(REC_MAX * sizeof *pb);
    basin_run_result rb[COUNT], rs[COUNT];
    assert_true(batch && single && hb && hs && pa && pb);
    *hb = *hb_init;
    *hs = *hb_init;
    basin_train_hooks hooks_b = {rec_point, rec_stop, hb}, hooks_s = {rec_point, rec_stop, hs};

    /* The batch must take the lane path: it allocates a workspace per lane, i.e. at least
     * BASIN__LANES times what one single restart allocates. */
    basin_allocator counting = {counting_malloc, counting_realloc, plain_free, NULL};
    basin_set_allocator(&counting);
    n_allocs = 0;
    assert_int_equal(basin_train_batch(&o, net, s, FIRST, COUNT, batch, &hooks_b, rb), BASIN_OK);
    size_t batch_allocs = n_allocs;
    n_allocs = 0;
    for (size_t i = 0; i < COUNT; i++) {
        hs->stop_polls = 0;
        assert_int_equal(
            basin_train_restart(&o, net, s, FIRST + i, single + i * dim, &hooks_s, &rs[i]),
            BASIN_OK);
        if (i == 0)
            assert_true(batch_allocs >= L * n_allocs);
    }
    basin_set_allocator(NULL);

    assert_memory_equal(batch, single, COUNT * dim * sizeof *batch);
    for (size_t i = 0; i < COUNT; i++) {
        assert_results_equal(&rb[i], &rs[i]);
        assert_true(rb[i].restart == FIRST + i);
        counts[rb[i].reason]++;
        size_t na = points_of(hb, FIRST + i, pa), nb = points_of(hs, FIRST + i, pb);
        assert_int_equal(na, nb);
        assert_true(na >= 1);
        assert_memory_equal(pa, pb, na * sizeof *pa);
        assert_true(pa[na - 1].step == rb[i].steps);
    }
    assert_int_equal(hb->n, hs->n);
    assert_true(hb->n < REC_MAX);
    assert_memory_not_equal(batch, batch + dim, dim * sizeof *batch);
    free(batch);
    free(single);
    free(hb);
    free(hs);
    free(pa);
    free(pb);
    basin_objective_release(&o);
    basin_dataset_free(ds);
    basin_net_free(net);
}

static void test_batch_gd_rules_and_cancel(void **state)
{
    (void)state;
    net_case cases[16];
    catalogue(cases);
    basin_train_spec s;
    basin_train_defaults(&s);
    s.seed = 3;
    s.optim.lr = 0.05;
    s.max_steps = 150;
    s.grad_tol = 0.08; /* most restarts get there, at different steps; some run out */
    s.trajectory_every = 7;
    recorder init;
    memset(&init, 0, sizeof init);
    init.cancel_restart = FIRST + 5;
    init.cancel_step = 21;
    init.stop_restart = FIRST + 9;
    size_t counts[8] = {0};
    batch_vs_single(&cases[0], 37, 0.0, &s, &init, counts);
    assert_true(counts[BASIN_STOP_GRAD_TOL] >= 1);
    assert_true(counts[BASIN_STOP_MAX_STEPS] >= 1);
    assert_int_equal(counts[BASIN_STOP_CANCELLED], 2);
}

static void test_batch_momentum_l2_cross_entropy(void **state)
{
    (void)state;
    net_case cases[16];
    catalogue(cases);
    basin_train_spec s;
    basin_train_defaults(&s);
    basin_optim_defaults(BASIN_OPT_MOMENTUM, 0.05, &s.optim);
    s.seed = 8;
    s.max_steps = 150;
    s.risk_tol = 0.3;
    s.plateau_window = 20;
    s.plateau_tol = 1e-4;
    s.trajectory_every = 0;
    recorder init;
    memset(&init, 0, sizeof init);
    init.cancel_restart = init.stop_restart = UINT64_MAX;
    size_t counts[8] = {0};
    batch_vs_single(&cases[3], 29, 1e-3, &s, &init, counts);
    size_t n = 0;
    for (size_t k = 0; k < 8; k++)
        n += counts[k];
    assert_int_equal(n, COUNT);
}

static void test_batch_adam_divergence(void **state)
{
    (void)state;
    net_case cases[16];
    catalogue(cases);
    basin_train_spec s;
    basin_train_defaults(&s);
    s.seed = 2;
    s.optim.lr = 0.5; /* plain GD this large diverges from most starts, not from all */
    s.max_steps = 60;
    s.grad_tol = 0.0;
    s.diverge_factor = 10.0;
    s.trajectory_every = 5;
    recorder init;
    memset(&init, 0, sizeof init);
    init.cancel_restart = init.stop_restart = UINT64_MAX;
    size_t counts[8] = {0};
    batch_vs_single(&cases[1], 23, 0.0, &s, &init, counts);
    assert_true(counts[BASIN_STOP_DIVERGED] >= 1);
    assert_true(counts[BASIN_STOP_MAX_STEPS] >= 1);

    basin_optim_defaults(BASIN_OPT_ADAM, 0.01, &s.optim);
    s.diverge_factor = 1e6;
    memset(counts, 0, sizeof counts);
    batch_vs_single(&cases[5], 17, 0.0, &s, &init, counts);
    assert_int_equal(counts[BASIN_STOP_MAX_STEPS], COUNT);
}

static int fail_after;
static void *failing_malloc(size_t size, void *ctx)
{
    (void)ctx;
    if (fail_after-- <= 0)
        return NULL;
    return malloc(size);
}

static void test_batch_alloc_failures(void **state)
{
    (void)state;
    net_case cases[16];
    catalogue(cases);
    basin_net *net = make_net(&cases[0]);
    basin_dataset *ds = make_data(net, &cases[0].loss, 20, 1);
    basin_objective o;
    assert_int_equal(basin_objective_empirical(net, ds, &cases[0].loss, 0.0, 0, &o), BASIN_OK);
    basin_train_spec s;
    basin_train_defaults(&s);
    s.max_steps = 5;
    double thetas[10 * 337];
    basin_run_result res[10];
    assert_int_equal(o.dim, 337);
    basin_allocator a = {failing_malloc, counting_realloc, plain_free, NULL};
    int n, rc = BASIN_ENOMEM;
    for (n = 0; n < 200 && rc == BASIN_ENOMEM; n++) {
        fail_after = n;
        basin_set_allocator(&a);
        rc = basin_train_batch(&o, net, &s, 0, 10, thetas, NULL, res);
        basin_set_allocator(NULL);
    }
    assert_int_equal(rc, BASIN_OK);
    assert_true(n > L); /* a workspace per lane: many failure points */
    basin_objective_release(&o);
    basin_dataset_free(ds);
    basin_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lanes_bit_identical),
        cmocka_unit_test(test_lanes_match_blas_path),
        cmocka_unit_test(test_lanes_leave_layer_values),
        cmocka_unit_test(test_eligibility),
        cmocka_unit_test(test_rows_match_blas_path),
        cmocka_unit_test(test_batch_gd_rules_and_cancel),
        cmocka_unit_test(test_batch_momentum_l2_cross_entropy),
        cmocka_unit_test(test_batch_adam_divergence),
        cmocka_unit_test(test_batch_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
