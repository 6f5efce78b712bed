/* Unit tests of the network module (net.h): architecture validation and its errors, shapes
 * and the parameter layout against hand computations and explicit-loop reference layers,
 * gradients against central finite differences on every layer kind, activation and loss,
 * torch's conventions at ties and kinks, chunking and sample selection, initialisation, and
 * clean failure under allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "basin/alloc.h"
#include "basin/net.h"
#include "basin/rng.h"
#include "basin/status.h"
#include "gradcheck.h"

/* cmocka 1.1.5 has no double comparison. */
#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol))) {                                                           \
            print_error("%s = %.17g vs %s = %.17g (tol %g)\n", #a, a_, #b, b_, (double)(tol));     \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define FD_H 1e-6
#define FD_TOL 1e-6
#define MIN_MARGIN 1e-3

static basin_net *make_net(size_t in_rank, const size_t *shape, const basin_layer_spec *layers,
                           size_t n_layers)
{
    basin_arch arch = {in_rank,
                       {shape[0], in_rank > 1 ? shape[1] : 0, in_rank > 1 ? shape[2] : 0},
                       n_layers,
                       layers};
    basin_net *net = NULL;
    basin_net_error err;
    int rc = basin_net_create(&arch, &net, &err);
    if (rc != BASIN_OK)
        print_message("create failed: layer %ld field %s: %s\n", err.layer, err.field, err.message);
    assert_int_equal(rc, BASIN_OK);
    return net;
}

/* ---- gradients against finite differences ---- */

static void test_gradient_fd_every_case(void **state)
{
    (void)state;
    size_t n_cases;
    const gc_net_case *cases = gc_net_cases(&n_cases);
    for (size_t c = 0; c < n_cases; c++) {
        gc_net_fixture fx;
        assert_int_equal(gc_fixture_setup(&cases[c], &fx), BASIN_OK);
        double margin = gc_fixture_margin(&fx, fx.theta);
        if (!(margin >= MIN_MARGIN))
            print_message("%s: kink margin %g too small for FD\n", cases[c].name, margin);
        assert_true(margin >= MIN_MARGIN);
        double *g = malloc(fx.dim * sizeof *g), *fd = malloc(fx.dim * sizeof *fd), risk;
        assert_non_null(g);
        assert_non_null(fd);
        assert_int_equal(gc_fixture_risk(&fx, fx.theta, &risk, g), BASIN_OK);
        assert_true(isfinite(risk) && risk > 0);
        assert_int_equal(gc_fd_gradient(gc_fixture_risk, &fx, fx.theta, fx.dim, FD_H, fd),
                         BASIN_OK);
        double err = gc_rel_err(g, fd, fx.dim, 1e-8);
        print_message("%-22s dim %4zu margin %.1e gradient rel err %.1e\n", cases[c].name, fx.dim,
                      margin, err);
        assert_true(err <= FD_TOL);
        assert_true(gc_norm(fd, fx.dim) > 1e-3); /* a vanishing gradient would test nothing */
        free(g);
        free(fd);
        gc_fixture_teardown(&fx);
    }
}

/* ---- hand computations and reference loops ---- */

static void test_dense_221_by_hand(void **state)
{
    (void)state;
    const basin_layer_spec layers[] = {GC_DENSE(2), GC_RELU, GC_DENSE(1)};
    size_t shape[] = {2};
    basin_net *net = make_net(1, shape, layers, 3);
    assert_int_equal(basin_net_param_count(net), 9);
    basin_layer_info li;
    basin_net_layer_info(net, 0, &li);
    assert_int_equal(li.param_offset, 0);
    assert_int_equal(li.weight_count, 4);
    assert_int_equal(li.bias_count, 2);
    basin_net_layer_info(net, 2, &li);
    assert_int_equal(li.param_offset, 6);
    assert_int_equal(li.weight_count, 2);
    assert_int_equal(li.bias_count, 1);
    /* W1 = [[1,2],[3,4]], b1 = [0.5,-1], W2 = [[1,-1]], b2 = 0.25 (torch state_dict order). */
    const double theta[] = {1, 2, 3, 4, 0.5, -1, 1, -1, 0.25};
    const double x[] = {1, 1, 2, -1, 1, -1};
    /* x=(1,1): z=(3.5,6) -> 3.5-6+0.25; x=(2,-1): z=(0.5,1) -> -0.25; x=(1,-1): z<0 -> 0.25 */
    const double want[] = {-2.25, -0.25, 0.25};
    double out[3];
    basin_net_ws *ws;
    assert_int_equal(basin_net_ws_create(net, 3, &ws), BASIN_OK);
    assert_int_equal(basin_net_forward(net, ws, theta, x, 3, out), BASIN_OK);
    for (int i = 0; i < 3; i++)
        assert_near(out[i], want[i], 1e-15);
    /* The stored pre-activations of the relu layer are z. */
    const double *pre;
    size_t rows, cols;
    assert_int_equal(basin_net_ws_layer_input(ws, 1, &pre, &rows, &cols), BASIN_OK);
    assert_int_equal(rows, 3);
    assert_int_equal(cols, 2);
    const double want_pre[] = {3.5, 6, 0.5, 1, -0.5, -2};
    for (int i = 0; i < 6; i++)
        assert_near(pre[i], want_pre[i], 1e-15);
    assert_int_equal(basin_net_ws_layer_input(ws, 0, &pre, &rows, &cols), BASIN_EINVAL);
    assert_int_equal(basin_net_ws_layer_input(ws, 3, &pre, &rows, &cols), BASIN_EINVAL);
    /* Squared loss on x=(1,1), y=0: R = ½·2.25², dR/dθ by hand (both units active). */
    basin_dataset ds = {.n = 1, .in_rank = 1, .in_shape = {2}, .in_dim = 2, .y_dim = 1};
    double y = 0, g[9], risk;
    ds.x = (double *)x;
    ds.y = &y;
    basin_loss loss = {BASIN_LOSS_SQUARED, 1};
    assert_int_equal(basin_net_risk_grad(net, ws, theta, &ds, NULL, 1, &loss, &risk, g), BASIN_OK);
    assert_near(risk, 0.5 * 2.25 * 2.25, 1e-15);
    double r = -2.25; /* dR/df */
    const double want_g[] = {r * 1, r * 1, -r * 1, -r * 1, r, -r, r * 3.5, r * 6, r};
    for (int i = 0; i < 9; i++)
        assert_near(g[i], want_g[i], 1e-14);
    basin_net_ws_free(ws);
    basin_net_free(net);
}

/* Reference convolution: explicit zero-padded copy, then the textbook sum. */
static void ref_conv(const double *x, size_t C, size_t H, size_t W, const double *w,
                     const double *b, size_t F, size_t k, size_t stride, size_t pt, size_t pb,
                     size_t pl, size_t pr, double *out)
{
    size_t Hp = H + pt + pb, Wp = W + pl + pr;
    double *xp = calloc(C * Hp * Wp, sizeof *xp);
    assert_non_null(xp);
    for (size_t c = 0; c < C; c++)
        for (size_t i = 0; i < H; i++)
            for (size_t j = 0; j < W; j++)
                xp[(c * Hp + i + pt) * Wp + j + pl] = x[(c * H + i) * W + j];
    size_t OH = (Hp - k) / stride + 1, OW = (Wp - k) / stride + 1;
    for (size_t f = 0; f < F; f++)
        for (size_t oy = 0; oy < OH; oy++)
            for (size_t ox = 0; ox < OW; ox++) {
                double s = b ? b[f] : 0;
                for (size_t c = 0; c < C; c++)
                    for (size_t ky = 0; ky < k; ky++)
                        for (size_t kx = 0; kx < k; kx++)
                            s += w[((f * C + c) * k + ky) * k + kx] *
                                 xp[(c * Hp + oy * stride + ky) * Wp + ox * stride + kx];
                out[(f * OH + oy) * OW + ox] = s;
            }
    free(xp);
}

static void test_conv_against_loops(void **state)
{
    (void)state;
    struct {
        size_t C, H, W, F, k, stride;
        basin_padding mode;
        size_t pad;
        size_t pt, pb, pl, pr; /* the padding torch uses, written out */
        size_t OH, OW;
        int bias;
        size_t max_batch; /* 0: 2, so that 3 samples take two chunks */
    } cfg[] = {
        {1, 4, 4, 1, 3, 1, BASIN_PAD_VALID, 0, 0, 0, 0, 0, 2, 2, 1, 0},
        {2, 5, 6, 3, 3, 2, BASIN_PAD_EXPLICIT, 1, 1, 1, 1, 1, 3, 3, 1, 0},
        {2, 5, 5, 2, 4, 1, BASIN_PAD_SAME, 0, 1, 2, 1, 2, 5, 5, 1, 0},
        {1, 4, 4, 2, 2, 1, BASIN_PAD_SAME, 0, 0, 1, 0, 1, 4, 4, 0, 0},
        {3, 7, 5, 2, 3, 3, BASIN_PAD_VALID, 0, 0, 0, 0, 0, 2, 1, 1, 0},
        {1, 3, 3, 1, 5, 1, BASIN_PAD_EXPLICIT, 2, 2, 2, 2, 2, 3, 3, 1, 0},
        /* big enough that im2col splits a chunk of 3 into groups of 2 and 1 */
        {2, 40, 40, 2, 12, 1, BASIN_PAD_SAME, 0, 5, 6, 5, 6, 40, 40, 1, 3},
    };
    gc_rand r = {99};
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        basin_layer_spec layers[] = {{.kind = BASIN_LAYER_CONV2D,
                                      .filters = cfg[t].F,
                                      .kernel = cfg[t].k,
                                      .stride = cfg[t].stride,
                                      .padding = cfg[t].mode,
                                      .pad = cfg[t].pad,
                                      .bias = cfg[t].bias},
                                     GC_FLATTEN};
        size_t shape[] = {cfg[t].C, cfg[t].H, cfg[t].W};
        basin_net *net = make_net(3, shape, layers, 2);
        basin_layer_info li;
        basin_net_layer_info(net, 0, &li);
        assert_int_equal(li.out_shape[1], cfg[t].OH);
        assert_int_equal(li.out_shape[2], cfg[t].OW);
        assert_int_equal(li.pad_top, cfg[t].pt);
        assert_int_equal(li.pad_left, cfg[t].pl);
        size_t wc = cfg[t].F * cfg[t].C * cfg[t].k * cfg[t].k;
        assert_int_equal(li.weight_count, wc);
        assert_int_equal(basin_net_param_count(net), wc + (cfg[t].bias ? cfg[t].F : 0));
        size_t din = basin_net_in_dim(net), dout = basin_net_out_dim(net), m = 3;
        assert_int_equal(dout, cfg[t].F * cfg[t].OH * cfg[t].OW);
        double *theta = malloc(basin_net_param_count(net) * sizeof *theta);
        double *x = malloc(m * din * sizeof *x), *out = malloc(m * dout * sizeof *out);
        double *ref = malloc(dout * sizeof *ref);
        assert_true(theta && x && out && ref);
        for (size_t i = 0; i < basin_net_param_count(net); i++)
            theta[i] = gc_normal(&r);
        for (size_t i = 0; i < m * din; i++)
            x[i] = gc_normal(&r);
        basin_net_ws *ws;
        assert_int_equal(basin_net_ws_create(net, cfg[t].max_batch ? cfg[t].max_batch : 2, &ws),
                         BASIN_OK);
        assert_int_equal(basin_net_forward(net, ws, theta, x, m, out), BASIN_OK);
        for (size_t s = 0; s < m; s++) {
            ref_conv(x + s * din, cfg[t].C, cfg[t].H, cfg[t].W, theta,
                     cfg[t].bias ? theta + wc : NULL, cfg[t].F, cfg[t].k, cfg[t].stride, cfg[t].pt,
                     cfg[t].pb, cfg[t].pl, cfg[t].pr, ref);
            for (size_t j = 0; j < dout; j++)
                assert_near(out[s * dout + j], ref[j], 1e-13);
        }
        basin_net_ws_free(ws);
        basin_net_free(net);
        free(theta);
        free(x);
        free(out);
        free(ref);
    }
}

static void test_pools_against_loops(void **state)
{
    (void)state;
    const size_t C = 2, H = 5, W = 7, p = 2, OH = 2, OW = 3; /* floor mode drops a row, a col */
    gc_rand r = {5};
    for (int kind = 0; kind < 2; kind++) {
        basin_layer_spec layers[] = {
            kind ? (basin_layer_spec)GC_MAXPOOL(2) : (basin_layer_spec)GC_AVGPOOL(2), GC_FLATTEN};
        size_t shape[] = {C, H, W};
        basin_net *net = make_net(3, shape, layers, 2);
        assert_int_equal(basin_net_out_dim(net), C * OH * OW);
        assert_int_equal(basin_net_param_count(net), 0);
        double x[2 * 2 * 5 * 7], out[2 * 2 * 2 * 3];
        for (size_t i = 0; i < 2 * C * H * W; i++)
            x[i] = gc_normal(&r);
        basin_net_ws *ws;
        assert_int_equal(basin_net_ws_create(net, 2, &ws), BASIN_OK);
        assert_int_equal(basin_net_forward(net, ws, x, x, 2, out), BASIN_OK);
        for (size_t s = 0; s < 2; s++)
            for (size_t c = 0; c < C; c++)
                for (size_t oy = 0; oy < OH; oy++)
                    for (size_t ox = 0; ox < OW; ox++) {
                        double acc = 0, mx = -INFINITY;
                        for (size_t dy = 0; dy < p; dy++)
                            for (size_t dx = 0; dx < p; dx++) {
                                double v =
                                    x[s * C * H * W + (c * H + oy * p + dy) * W + ox * p + dx];
                                acc += v;
                                mx = v > mx ? v : mx;
                            }
                        double want = kind ? mx : acc / 4;
                        assert_near(out[s * C * OH * OW + (c * OH + oy) * OW + ox], want, 1e-15);
                    }
        basin_net_ws_free(ws);
        basin_net_free(net);
    }
}

/* Max pooling ties go to the first maximum in row-major window order (torch). The conv makes
 * the pool input equal x's top-left 2×2 block while the gradient of its top-right tap reveals
 * which window position was routed. */
static void test_maxpool_tie_first(void **state)
{
    (void)state;
    const basin_layer_spec layers[] = {GC_CONV_NB(1, 2, 1, BASIN_PAD_VALID, 0), GC_MAXPOOL(2),
                                       GC_FLATTEN};
    size_t shape[] = {1, 3, 3};
    basin_net *net = make_net(3, shape, layers, 3);
    double theta[] = {1, 0, 0, 0}, x[] = {5, 1, 0, 5, 2, 0, 0, 0, 0}, y = 0, g[4], risk;
    basin_dataset ds = {.n = 1, .in_rank = 3, .in_shape = {1, 3, 3}, .in_dim = 9, .y_dim = 1};
    ds.x = x;
    ds.y = &y;
    basin_loss loss = {BASIN_LOSS_SQUARED, 1};
    basin_net_ws *ws;
    assert_int_equal(basin_net_ws_create(net, 1, &ws), BASIN_OK);
    assert_int_equal(basin_net_risk_grad(net, ws, theta, &ds, NULL, 1, &loss, &risk, g), BASIN_OK);
    assert_near(risk, 12.5, 1e-15);
    /* patch at (0,0) = [5,1,5,2]; the later tie at (1,0) would give [5,2,0,0]. */
    const double want[] = {25, 5, 25, 10};
    for (int i = 0; i < 4; i++)
        assert_near(g[i], want[i], 1e-14);
    basin_net_ws_free(ws);
    basin_net_free(net);
}

/* At a pre-activation of exactly 0 the derivative uses the z<0 slope, as torch does:
 * relu'(0) = 0, leaky_relu'(0) = slope, pwl'(0) = s_neg. */
static void test_activation_derivative_at_zero(void **state)
{
    (void)state;
    const basin_layer_spec acts[] = {GC_RELU, GC_LEAKY(0.1), GC_PWL(0.3, 1.7), GC_IDENTITY};
    const double slope0[] = {0.0, 0.1, 0.3, 1.0};
    for (int a = 0; a < 4; a++) {
        basin_layer_spec layers[] = {GC_DENSE(1), acts[a], GC_DENSE_NB(1)};
        size_t shape[] = {1};
        basin_net *net = make_net(1, shape, layers, 3);
        double theta[] = {1, -1, 2}, x = 1, y = 1, g[3], risk; /* z = 1·1 − 1 = 0 */
        basin_dataset ds = {.n = 1, .in_rank = 1, .in_shape = {1}, .in_dim = 1, .y_dim = 1};
        ds.x = &x;
        ds.y = &y;
        basin_loss loss = {BASIN_LOSS_SQUARED, 1};
        basin_net_ws *ws;
        assert_int_equal(basin_net_ws_create(net, 1, &ws), BASIN_OK);
        assert_int_equal(basin_net_risk_grad(net, ws, theta, &ds, NULL, 1, &loss, &risk, g),
                         BASIN_OK);
        assert_near(risk, 0.5, 0); /* f = 2·h(0) = 0 */
        /* dR/df = −1; dR/dw = dR/db = −1·2·h'(0); dR/dv = −h(0) = 0 */
        assert_near(g[0], -2 * slope0[a], 1e-15);
        assert_near(g[1], -2 * slope0[a], 1e-15);
        assert_near(g[2], 0.0, 0);
        basin_net_ws_free(ws);
        basin_net_free(net);
    }
}

/* ---- validation ---- */

static void test_create_errors(void **state)
{
    (void)state;
    static basin_layer_spec many[BASIN_NET_MAX_LAYERS + 1];
    for (size_t i = 0; i < BASIN_NET_MAX_LAYERS + 1; i++)
        many[i] = (basin_layer_spec)GC_IDENTITY;
    const double nan = NAN;
    struct {
        basin_arch arch;
        basin_layer_spec l[3];
        int rc;
        long layer;
        const char *field;
    } t[] = {
        {{2, {3, 3, 0}, 1, NULL}, {GC_FLATTEN}, BASIN_EINVAL, -1, "input_shape"},
        {{3, {1, 0, 3}, 1, NULL}, {GC_FLATTEN}, BASIN_EINVAL, -1, "input_shape"},
        {{1, {BASIN_NET_MAX_WIDTH + 1}, 1, NULL}, {GC_DENSE(1)}, BASIN_ERANGE, -1, "input_shape"},
        {{1, {3}, 0, NULL}, {GC_DENSE(1)}, BASIN_EINVAL, -1, "layers"},
        {{3, {1, 4, 4}, 2, NULL}, {GC_DENSE(2), GC_FLATTEN}, BASIN_EINVAL, 0, "type"},
        {{1, {3}, 2, NULL}, {GC_RELU, GC_DENSE(0)}, BASIN_EINVAL, 1, "units"},
        {{1, {3}, 1, NULL}, {GC_DENSE(BASIN_NET_MAX_WIDTH + 1)}, BASIN_ERANGE, 0, "units"},
        {{1, {9}, 2, NULL},
         {GC_CONV(1, 3, 1, BASIN_PAD_VALID, 0), GC_FLATTEN},
         BASIN_EINVAL,
         0,
         "type"},
        {{3, {1, 4, 4}, 2, NULL},
         {GC_CONV(1, 5, 1, BASIN_PAD_VALID, 0), GC_FLATTEN},
         BASIN_EINVAL,
         0,
         "kernel"},
        {{3, {1, 4, 5}, 2, NULL},
         {GC_CONV(1, 7, 1, BASIN_PAD_EXPLICIT, 1), GC_FLATTEN},
         BASIN_EINVAL,
         0,
         "kernel"},
        {{3, {1, 4, 4}, 2, NULL},
         {GC_CONV(0, 3, 1, BASIN_PAD_VALID, 0), GC_FLATTEN},
         BASIN_EINVAL,
         0,
         "filters"},
        {{3, {1, 4, 4}, 2, NULL},
         {GC_CONV(1, 0, 1, BASIN_PAD_VALID, 0), GC_FLATTEN},
         BASIN_EINVAL,
         0,
         "kernel"},
        {{3, {1, 4, 4}, 2, NULL},
         {GC_CONV(1, 3, 0, BASIN_PAD_VALID, 0), GC_FLATTEN},
         BASIN_EINVAL,
         0,
         "stride"},
        {{3, {1, 4, 4}, 2, NULL},
         {GC_CONV(1, 3, 2, BASIN_PAD_SAME, 0), GC_FLATTEN},
         BASIN_EINVAL,
         0,
         "padding"},
        {{3, {1, 4, 4}, 2, NULL},
         {GC_CONV(1, 3, 1, (basin_padding)7, 0), GC_FLATTEN},
         BASIN_EINVAL,
         0,
         "padding"},
        {{3, {1, 4, 4}, 2, NULL},
         {GC_CONV(BASIN_NET_MAX_WIDTH + 1, 3, 1, BASIN_PAD_VALID, 0), GC_FLATTEN},
         BASIN_ERANGE,
         0,
         "filters"},
        {{3, {1, 4, 4}, 3, NULL}, {GC_RELU, GC_MAXPOOL(5), GC_FLATTEN}, BASIN_EINVAL, 1, "size"},
        {{3, {1, 6, 3}, 2, NULL}, {GC_AVGPOOL(4), GC_FLATTEN}, BASIN_EINVAL, 0, "size"},
        {{3, {1, 4, 4}, 2, NULL}, {GC_AVGPOOL(0), GC_FLATTEN}, BASIN_EINVAL, 0, "size"},
        {{1, {4}, 1, NULL}, {GC_MAXPOOL(2)}, BASIN_EINVAL, 0, "type"},
        {{1, {4}, 2, NULL}, {GC_LEAKY(nan), GC_DENSE(1)}, BASIN_EINVAL, 0, "slope"},
        {{1, {4}, 2, NULL}, {GC_PWL(INFINITY, 1), GC_DENSE(1)}, BASIN_EINVAL, 0, "s_neg"},
        {{1, {4}, 3, NULL}, {GC_DENSE(2), GC_PWL(0.5, nan), GC_DENSE(1)}, BASIN_EINVAL, 1, "s_pos"},
        {{1, {4}, 1, NULL},
         {{.kind = BASIN_LAYER_ACTIVATION, .act = (basin_act_kind)9}},
         BASIN_EINVAL,
         0,
         "kind"},
        {{1, {4}, 2, NULL}, {GC_DENSE(2), {.kind = (basin_layer_kind)42}}, BASIN_EINVAL, 1, "type"},
        {{3, {1, 4, 4}, 1, NULL}, {GC_RELU}, BASIN_EINVAL, -1, "layers"},
        /* 2^48 inputs × 2^16 units = 2^64 weights */
        {{3, {65536, 65536, 65536}, 2, NULL},
         {GC_FLATTEN, GC_DENSE(65536)},
         BASIN_ERANGE,
         1,
         "units"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        basin_net *net = (basin_net *)&t[i]; /* must be reset to NULL */
        basin_net_error err;
        t[i].arch.layers = t[i].l;
        int rc = basin_net_create(&t[i].arch, &net, &err);
        if (rc != t[i].rc || err.layer != t[i].layer || strcmp(err.field, t[i].field) != 0)
            print_message("case %zu: rc %d layer %ld field '%s' (%s)\n", i, rc, err.layer,
                          err.field, err.message);
        assert_int_equal(rc, t[i].rc);
        assert_int_equal(err.layer, t[i].layer);
        assert_string_equal(err.field, t[i].field);
        assert_true(strlen(err.message) > 0);
        assert_null(net);
    }
    basin_arch too_many = {1, {3}, BASIN_NET_MAX_LAYERS + 1, many};
    basin_net *net = NULL;
    basin_net_error err;
    assert_int_equal(basin_net_create(&too_many, &net, &err), BASIN_ERANGE);
    assert_int_equal(err.layer, -1);
    assert_string_equal(err.field, "layers");
    /* exactly the limit is fine (identity layers keep the [3] vector) */
    too_many.n_layers = BASIN_NET_MAX_LAYERS;
    assert_int_equal(basin_net_create(&too_many, &net, NULL), BASIN_OK);
    assert_int_equal(basin_net_out_dim(net), 3);
    basin_net_free(net);
    assert_int_equal(basin_net_create(NULL, &net, NULL), BASIN_EINVAL);
}

static void test_layer_info_and_specs(void **state)
{
    (void)state;
    const basin_layer_spec layers[] = {GC_CONV(4, 3, 1, BASIN_PAD_SAME, 0),
                                       GC_LEAKY(0.2),
                                       GC_MAXPOOL(2),
                                       GC_FLATTEN,
                                       GC_DENSE(3),
                                       GC_RELU,
                                       GC_SUM};
    size_t shape[] = {2, 6, 5};
    basin_net *net = make_net(3, shape, layers, 7);
    assert_int_equal(basin_net_layer_count(net), 7);
    assert_int_equal(basin_net_in_dim(net), 60);
    assert_int_equal(basin_net_out_dim(net), 1);
    basin_layer_info li;
    basin_net_layer_info(net, 0, &li);
    assert_int_equal(li.out_dim, 4 * 6 * 5);
    assert_int_equal(li.weight_count, 4 * 2 * 9);
    assert_int_equal(li.bias_count, 4);
    basin_net_layer_info(net, 2, &li);
    assert_int_equal(li.out_shape[0], 4);
    assert_int_equal(li.out_shape[1], 3);
    assert_int_equal(li.out_shape[2], 2);
    basin_net_layer_info(net, 3, &li);
    assert_int_equal(li.out_rank, 1);
    assert_int_equal(li.out_dim, 24);
    basin_net_layer_info(net, 4, &li);
    assert_int_equal(li.in_dim, 24);
    assert_int_equal(li.param_offset, 76);
    assert_int_equal(basin_net_param_count(net), 76 + 72 + 3);
    basin_net_layer_info(net, 1, &li);
    assert_near(li.s_neg, 0.2, 0);
    assert_near(li.s_pos, 1.0, 0);
    const basin_layer_spec *s = basin_net_layer_spec(net, 5);
    assert_near(s->s_neg, 0.0, 0);
    assert_near(s->s_pos, 1.0, 0);
    assert_null(basin_net_layer_spec(net, 7));
    assert_int_equal(basin_net_is_homogeneous(net), 1);
    basin_net_free(net);
    const basin_layer_spec dead[] = {GC_DENSE(2), GC_PWL(1.0, 0.0), GC_DENSE(1)};
    size_t shape1[] = {2};
    net = make_net(1, shape1, dead, 3);
    assert_int_equal(basin_net_is_homogeneous(net), 0);
    basin_net_free(net);
    assert_string_equal(basin_layer_kind_name(BASIN_LAYER_CONV2D), "conv2d");
    assert_string_equal(basin_layer_kind_name(BASIN_LAYER_SUM), "sum");
    assert_string_equal(basin_act_kind_name(BASIN_ACT_LEAKY_RELU), "leaky_relu");
    assert_string_equal(basin_act_kind_name((basin_act_kind)17), "unknown");
}

/* ---- chunking and sample selection ---- */

static void test_chunking_and_selection(void **state)
{
    (void)state;
    size_t n_cases;
    const gc_net_case *cases = gc_net_cases(&n_cases);
    for (size_t c = 0; c < n_cases; c++) {
        gc_net_fixture fx;
        assert_int_equal(gc_fixture_setup(&cases[c], &fx), BASIN_OK);
        basin_net_ws *small;
        assert_int_equal(basin_net_ws_create(fx.net, 3, &small), BASIN_OK);
        double *g1 = malloc(fx.dim * sizeof *g1), *g2 = malloc(fx.dim * sizeof *g2), r1, r2;
        assert_true(g1 && g2);
        assert_int_equal(
            basin_net_risk_grad(fx.net, fx.ws, fx.theta, &fx.ds, NULL, fx.ds.n, &fx.loss, &r1, g1),
            BASIN_OK);
        assert_int_equal(
            basin_net_risk_grad(fx.net, small, fx.theta, &fx.ds, NULL, fx.ds.n, &fx.loss, &r2, g2),
            BASIN_OK);
        assert_near(r1, r2, 1e-14 * fabs(r1));
        assert_true(gc_rel_err(g2, g1, fx.dim, 1e-300) <= 1e-14);
        /* risk without gradient is the same number */
        assert_int_equal(basin_net_risk_grad(fx.net, small, fx.theta, &fx.ds, NULL, fx.ds.n,
                                             &fx.loss, &r2, NULL),
                         BASIN_OK);
        assert_near(r1, r2, 1e-14 * fabs(r1));
        /* idx = {3,0,3,2} equals a dataset made of those rows (a repeated row counts twice) */
        const size_t idx[] = {3, 0, 3, 2};
        basin_dataset sub = fx.ds;
        size_t d = fx.ds.in_dim, yd = fx.ds.y_dim;
        sub.n = 4;
        sub.x = malloc(4 * d * sizeof *sub.x);
        sub.y = malloc(4 * yd * sizeof *sub.y);
        assert_true(sub.x && sub.y);
        for (int i = 0; i < 4; i++) {
            memcpy(sub.x + i * d, fx.ds.x + idx[i] * d, d * sizeof *sub.x);
            memcpy(sub.y + i * yd, fx.ds.y + idx[i] * yd, yd * sizeof *sub.y);
        }
        assert_int_equal(
            basin_net_risk_grad(fx.net, small, fx.theta, &fx.ds, idx, 4, &fx.loss, &r1, g1),
            BASIN_OK);
        assert_int_equal(
            basin_net_risk_grad(fx.net, fx.ws, fx.theta, &sub, NULL, 4, &fx.loss, &r2, g2),
            BASIN_OK);
        assert_near(r1, r2, 1e-14 * fabs(r2));
        assert_true(gc_rel_err(g1, g2, fx.dim, 1e-300) <= 1e-14);
        /* forward in chunks of 3 equals one chunk */
        size_t k = basin_net_out_dim(fx.net);
        double *o1 = malloc(fx.ds.n * k * sizeof *o1), *o2 = malloc(fx.ds.n * k * sizeof *o2);
        assert_true(o1 && o2);
        assert_int_equal(basin_net_forward(fx.net, fx.ws, fx.theta, fx.ds.x, fx.ds.n, o1),
                         BASIN_OK);
        assert_int_equal(basin_net_forward(fx.net, small, fx.theta, fx.ds.x, fx.ds.n, o2),
                         BASIN_OK);
        assert_true(gc_rel_err(o2, o1, fx.ds.n * k, 1e-300) <= 1e-14);
        free(o1);
        free(o2);
        free(sub.x);
        free(sub.y);
        free(g1);
        free(g2);
        basin_net_ws_free(small);
        gc_fixture_teardown(&fx);
    }
}

/* A full batch in order is read from the dataset in place (net_eval.c): the same bits as the
 * explicit selection 0..n−1 (which copies rows), on the same workspace before and after, the
 * dataset untouched, and the input values of a leading flatten + activation still reported by
 * basin_net_ws_layer_input for the last chunk. */
static void test_full_batch_in_place(void **state)
{
    (void)state;
    size_t n_cases;
    const gc_net_case *cases = gc_net_cases(&n_cases);
    for (size_t c = 0; c < n_cases; c++) {
        gc_net_fixture fx;
        assert_int_equal(gc_fixture_setup(&cases[c], &fx), BASIN_OK);
        basin_net_ws *small;
        assert_int_equal(basin_net_ws_create(fx.net, 3, &small), BASIN_OK);
        size_t n = fx.ds.n, d = fx.ds.in_dim;
        size_t *all = malloc(n * sizeof *all);
        double *x0 = malloc(n * d * sizeof *x0);
        double *g1 = malloc(fx.dim * sizeof *g1), *g2 = malloc(fx.dim * sizeof *g2), r1, r2;
        assert_true(all && x0 && g1 && g2);
        for (size_t i = 0; i < n; i++)
            all[i] = i;
        memcpy(x0, fx.ds.x, n * d * sizeof *x0);
        basin_net_ws *wss[2] = {fx.ws, small};
        for (int w = 0; w < 2; w++)
            for (int round = 0; round < 2; round++) {
                assert_int_equal(basin_net_risk_grad(fx.net, wss[w], fx.theta, &fx.ds, NULL, n,
                                                     &fx.loss, &r1, g1),
                                 BASIN_OK);
                assert_int_equal(basin_net_risk_grad(fx.net, wss[w], fx.theta, &fx.ds, all, n,
                                                     &fx.loss, &r2, g2),
                                 BASIN_OK);
                assert_memory_equal(&r1, &r2, sizeof r1);
                assert_memory_equal(g1, g2, fx.dim * sizeof *g1);
            }
        assert_memory_equal(x0, fx.ds.x, n * d * sizeof *x0);
        free(all);
        free(x0);
        free(g1);
        free(g2);
        basin_net_ws_free(small);
        gc_fixture_teardown(&fx);
    }

    /* [1,3,3] input → flatten → leaky relu → dense 2 → dense 1, 7 samples in chunks of 3 */
    basin_layer_spec layers[4];
    memset(layers, 0, sizeof layers);
    layers[0].kind = BASIN_LAYER_FLATTEN;
    layers[1].kind = BASIN_LAYER_ACTIVATION;
    layers[1].act = BASIN_ACT_LEAKY_RELU;
    layers[1].slope = 0.1;
    layers[2].kind = BASIN_LAYER_DENSE;
    layers[2].units = 2;
    layers[2].bias = 1;
    layers[3].kind = BASIN_LAYER_DENSE;
    layers[3].units = 1;
    layers[3].bias = 1;
    const size_t shape[3] = {1, 3, 3};
    basin_net *net = make_net(3, shape, layers, 4);
    basin_net_ws *ws;
    assert_int_equal(basin_net_ws_create(net, 3, &ws), BASIN_OK);
    double x[7 * 9], y[7], theta[64], grad[64], risk;
    assert_true(basin_net_param_count(net) <= 64);
    for (size_t i = 0; i < 7 * 9; i++)
        x[i] = (double)((i * 37) % 11) - 5.0;
    for (size_t i = 0; i < 7; i++)
        y[i] = (double)i;
    for (size_t i = 0; i < basin_net_param_count(net); i++)
        theta[i] = 0.1 * (double)(i % 5) - 0.2;
    basin_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.n = 7;
    ds.in_dim = 9;
    ds.y_dim = 1;
    ds.x = x;
    ds.y = y;
    basin_loss loss;
    memset(&loss, 0, sizeof loss);
    loss.kind = BASIN_LOSS_SQUARED;
    assert_int_equal(basin_net_risk_grad(net, ws, theta, &ds, NULL, 7, &loss, &risk, grad),
                     BASIN_OK);
    const double *v;
    size_t rows, cols;
    assert_int_equal(basin_net_ws_layer_input(ws, 1, &v, &rows, &cols), BASIN_OK);
    assert_int_equal(rows, 1); /* 7 = 3 + 3 + 1: the last chunk is sample 6 */
    assert_int_equal(cols, 9);
    assert_true(v < x || v >= x + 7 * 9); /* the workspace's own copy, not the dataset */
    assert_memory_equal(v, x + 6 * 9, 9 * sizeof *v);
    basin_net_ws_free(ws);
    basin_net_free(net);
}

static void test_risk_argument_errors(void **state)
{
    (void)state;
    size_t n_cases;
    const gc_net_case *cases = gc_net_cases(&n_cases);
    gc_net_fixture fx;
    assert_int_equal(gc_fixture_setup(&cases[5], &fx), BASIN_OK); /* cross entropy, 4 classes */
    double risk, *g = malloc(fx.dim * sizeof *g);
    assert_non_null(g);
    size_t bad_idx[] = {0, 7};
    assert_int_equal(
        basin_net_risk_grad(fx.net, fx.ws, fx.theta, &fx.ds, bad_idx, 2, &fx.loss, &risk, g),
        BASIN_EINVAL);
    assert_int_equal(
        basin_net_risk_grad(fx.net, fx.ws, fx.theta, &fx.ds, NULL, 8, &fx.loss, &risk, g),
        BASIN_EINVAL);
    assert_int_equal(
        basin_net_risk_grad(fx.net, fx.ws, fx.theta, &fx.ds, NULL, 0, &fx.loss, &risk, g),
        BASIN_EINVAL);
    double saved = fx.ds.y[2];
    fx.ds.y[2] = 4; /* class out of range */
    assert_int_equal(
        basin_net_risk_grad(fx.net, fx.ws, fx.theta, &fx.ds, NULL, 7, &fx.loss, &risk, g),
        BASIN_EINVAL);
    fx.ds.y[2] = saved;
    basin_loss logistic = {BASIN_LOSS_LOGISTIC, 1}; /* needs out_dim 1 */
    assert_int_equal(
        basin_net_risk_grad(fx.net, fx.ws, fx.theta, &fx.ds, NULL, 7, &logistic, &risk, g),
        BASIN_EINVAL);
    fx.ds.in_dim = 4;
    assert_int_equal(
        basin_net_risk_grad(fx.net, fx.ws, fx.theta, &fx.ds, NULL, 7, &fx.loss, &risk, g),
        BASIN_EINVAL);
    fx.ds.in_dim = 3;
    gc_net_fixture other;
    assert_int_equal(gc_fixture_setup(&cases[1], &other), BASIN_OK);
    assert_int_equal(
        basin_net_risk_grad(fx.net, other.ws, fx.theta, &fx.ds, NULL, 7, &fx.loss, &risk, g),
        BASIN_EINVAL);
    assert_int_equal(
        basin_net_risk_grad(fx.net, fx.ws, fx.theta, &fx.ds, NULL, 7, &fx.loss, &risk, g),
        BASIN_OK);
    basin_net_ws *ws = NULL;
    assert_int_equal(basin_net_ws_create(fx.net, 0, &ws), BASIN_EINVAL);
    assert_null(ws);
    gc_fixture_teardown(&other);
    gc_fixture_teardown(&fx);
    free(g);
}

/* ---- initialisation ---- */

static void moments(const double *w, size_t n, double *mean, double *sd, double *maxabs)
{
    double s = 0, ss = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        s += w[i];
        mx = fmax(mx, fabs(w[i]));
    }
    s /= (double)n;
    for (size_t i = 0; i < n; i++)
        ss += (w[i] - s) * (w[i] - s);
    *mean = s;
    *sd = sqrt(ss / (double)(n - 1));
    *maxabs = mx;
}

static void test_init_fans(void **state)
{
    (void)state;
    const basin_layer_spec dl[] = {GC_DENSE(200), GC_RELU, GC_DENSE(1)};
    size_t dshape[] = {100};
    basin_net *dense = make_net(1, dshape, dl, 3);
    const basin_layer_spec cl[] = {GC_CONV(16, 3, 1, BASIN_PAD_VALID, 0), GC_FLATTEN, GC_DENSE(1)};
    size_t cshape[] = {3, 10, 10};
    basin_net *conv = make_net(3, cshape, cl, 3);
    double *theta = malloc(basin_net_param_count(dense) * sizeof *theta);
    assert_non_null(theta);
    struct {
        basin_net *net;
        basin_init_kind kind;
        size_t n; /* weights of layer 0 */
        double want_sd, rel_tol;
        double bound; /* uniform: half-width; 0 for normal */
    } t[] = {
        {dense, BASIN_INIT_HE_NORMAL, 20000, sqrt(2.0 / 100), 0.03, 0},
        {dense, BASIN_INIT_HE_UNIFORM, 20000, sqrt(2.0 / 100), 0.03, sqrt(6.0 / 100)},
        {dense, BASIN_INIT_XAVIER_NORMAL, 20000, sqrt(2.0 / 300), 0.03, 0},
        {dense, BASIN_INIT_XAVIER_UNIFORM, 20000, sqrt(2.0 / 300), 0.03, sqrt(6.0 / 300)},
        /* conv: fan_in = 3·3·3 = 27, fan_out = 16·3·3 = 144 */
        {conv, BASIN_INIT_HE_NORMAL, 432, sqrt(2.0 / 27), 0.2, 0},
        {conv, BASIN_INIT_XAVIER_NORMAL, 432, sqrt(2.0 / 171), 0.2, 0},
        {conv, BASIN_INIT_HE_UNIFORM, 432, sqrt(2.0 / 27), 0.2, sqrt(6.0 / 27)},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        basin_init init = {.kind = t[i].kind, .bias = 0.125};
        basin_rng rng;
        basin_rng_init(&rng, 42, i);
        assert_int_equal(basin_net_init_params(t[i].net, &init, &rng, theta), BASIN_OK);
        double mean, sd, mx;
        moments(theta, t[i].n, &mean, &sd, &mx);
        assert_true(fabs(sd / t[i].want_sd - 1) < t[i].rel_tol);
        assert_true(fabs(mean) < 5 * t[i].want_sd / sqrt((double)t[i].n));
        if (t[i].bound > 0) {
            assert_true(mx <= t[i].bound);
            assert_true(mx > 0.95 * t[i].bound);
        }
        basin_layer_info li;
        basin_net_layer_info(t[i].net, 0, &li);
        for (size_t j = 0; j < li.bias_count; j++)
            assert_near(theta[li.weight_count + j], 0.125, 0);
        /* second layer: dense fan_in = 200 (dense net) or 16·8·8 = 1024 (conv net) */
        basin_net_layer_info(t[i].net, 2, &li);
        double fan_in = (double)li.in_dim, fan_out = 1, want2;
        int uni = t[i].bound > 0;
        if (t[i].kind == BASIN_INIT_HE_NORMAL || t[i].kind == BASIN_INIT_HE_UNIFORM)
            want2 = sqrt(2.0 / fan_in);
        else
            want2 = sqrt(2.0 / (fan_in + fan_out));
        moments(theta + li.param_offset, li.weight_count, &mean, &sd, &mx);
        assert_true(fabs(sd / want2 - 1) < (li.weight_count >= 1000 ? 0.1 : 0.3));
        if (uni)
            assert_true(mx <= want2 * sqrt(3.0));
        assert_near(theta[li.param_offset + li.weight_count], 0.125, 0);
    }
    basin_net_free(dense);
    basin_net_free(conv);
    free(theta);
}

static void test_init_plain_given_and_reproducible(void **state)
{
    (void)state;
    const basin_layer_spec dl[] = {GC_DENSE(50), GC_RELU, GC_DENSE(1)};
    size_t shape[] = {40};
    basin_net *net = make_net(1, shape, dl, 3);
    size_t P = basin_net_param_count(net);
    double *a = malloc(P * sizeof *a), *b = malloc(P * sizeof *b);
    assert_true(a && b);
    basin_rng rng;
    basin_init normal = {.kind = BASIN_INIT_NORMAL, .std = 0.35};
    basin_rng_init(&rng, 7, 0);
    assert_int_equal(basin_net_init_params(net, &normal, &rng, a), BASIN_OK);
    double mean, sd, mx;
    moments(a, P, &mean, &sd, &mx);
    assert_true(fabs(sd / 0.35 - 1) < 0.05);
    assert_true(a[2000] != a[2001]); /* biases are drawn too */
    basin_rng_init(&rng, 7, 0);
    assert_int_equal(basin_net_init_params(net, &normal, &rng, b), BASIN_OK);
    assert_memory_equal(a, b, P * sizeof *a);
    basin_rng_init(&rng, 7, 1);
    assert_int_equal(basin_net_init_params(net, &normal, &rng, b), BASIN_OK);
    assert_memory_not_equal(a, b, P * sizeof *a);
    basin_init uni = {.kind = BASIN_INIT_UNIFORM, .a = 0.5};
    basin_rng_init(&rng, 8, 0);
    assert_int_equal(basin_net_init_params(net, &uni, &rng, a), BASIN_OK);
    moments(a, P, &mean, &sd, &mx);
    assert_true(mx <= 0.5 && mx > 0.45);
    assert_true(fabs(sd / (0.5 / sqrt(3.0)) - 1) < 0.05);
    for (size_t i = 0; i < P; i++)
        b[i] = 0.001 * (double)i - 1;
    basin_init given = {.kind = BASIN_INIT_GIVEN, .given = b, .given_len = P};
    assert_int_equal(basin_net_init_params(net, &given, NULL, a), BASIN_OK);
    assert_memory_equal(a, b, P * sizeof *a);
    given.given_len = P - 1;
    assert_int_equal(basin_net_init_params(net, &given, NULL, a), BASIN_EINVAL);
    given.given_len = P;
    b[3] = NAN;
    assert_int_equal(basin_net_init_params(net, &given, NULL, a), BASIN_EINVAL);
    basin_init he = {.kind = BASIN_INIT_HE_NORMAL};
    assert_int_equal(basin_net_init_params(net, &he, NULL, a), BASIN_EINVAL);
    normal.std = -1;
    assert_int_equal(basin_net_init_params(net, &normal, &rng, a), BASIN_EINVAL);
    basin_net_free(net);
    free(a);
    free(b);
}

/* ---- allocation failures ---- */

typedef struct fail_alloc {
    long countdown; /* calls left before failing; < 0: never */
} fail_alloc;

static void *fa_malloc(size_t size, void *ctx)
{
    fail_alloc *f = ctx;
    if (f->countdown == 0)
        return NULL;
    if (f->countdown > 0)
        f->countdown--;
    return malloc(size);
}

static void *fa_realloc(void *p, size_t size, void *ctx)
{
    fail_alloc *f = ctx;
    if (f->countdown == 0)
        return NULL;
    if (f->countdown > 0)
        f->countdown--;
    return realloc(p, size);
}

static void fa_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    const basin_layer_spec layers[] = {GC_CONV(2, 3, 1, BASIN_PAD_SAME, 0), GC_RELU, GC_MAXPOOL(2),
                                       GC_FLATTEN, GC_DENSE(2)};
    basin_arch arch = {3, {1, 6, 6}, 5, layers};
    fail_alloc fa;
    basin_allocator al = {fa_malloc, fa_realloc, fa_free, &fa};
    int ok = 0;
    for (long n = 0; n < 50 && !ok; n++) {
        fa.countdown = n;
        basin_set_allocator(&al);
        basin_net *net = NULL;
        basin_net_ws *ws = NULL;
        basin_net_error err;
        int rc = basin_net_create(&arch, &net, &err);
        if (rc == BASIN_OK)
            rc = basin_net_ws_create(net, 4, &ws);
        basin_set_allocator(NULL);
        if (rc == BASIN_OK) {
            ok = 1;
            assert_true(n >= 3); /* at least net, layers, ws, ... were allocated */
        } else {
            assert_int_equal(rc, BASIN_ENOMEM);
            assert_null(ws);
        }
        basin_net_ws_free(ws);
        basin_net_free(net);
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_fd_every_case),
        cmocka_unit_test(test_dense_221_by_hand),
        cmocka_unit_test(test_conv_against_loops),
        cmocka_unit_test(test_pools_against_loops),
        cmocka_unit_test(test_maxpool_tie_first),
        cmocka_unit_test(test_activation_derivative_at_zero),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_layer_info_and_specs),
        cmocka_unit_test(test_chunking_and_selection),
        cmocka_unit_test(test_full_batch_in_place),
        cmocka_unit_test(test_risk_argument_errors),
        cmocka_unit_test(test_init_fans),
        cmocka_unit_test(test_init_plain_given_and_reproducible),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
