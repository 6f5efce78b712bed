/* Unit tests of the block kernel for convolutional nets (net_conv.c, conv_simd_int.h). The
 * promises checked:
 *  - risk and gradient agree with the BLAS/im2col path of basin_net_risk_grad (an independent
 *    implementation, itself checked against finite differences in test_net) to 1e-12, on nets
 *    with odd image sizes, strides, valid/same/explicit padding (including windows lying
 *    wholly in the padding), no-bias layers, every activation kind, avg and max pools with
 *    floor-mode leftovers, a conv that is not the first layer, sum and dense layers, several
 *    losses, partial last sample blocks and index selections with repeats;
 *  - the gradient agrees with central finite differences of the risk;
 *  - every instruction set this CPU has (portable C, AVX2, AVX-512) gives the same bits;
 *  - basin_net_risk_grad really takes the kernel for such nets (same bits as the forced call),
 *    and the kernel leaves the last chunk's layer values in the workspace as a forward pass;
 *  - eligibility: nets without a conv layer or with a vector input are not taken. */
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
#include "basin/status.h"
#include "layer_specs.h"
#include "conv_int.h"
#include "gradcheck.h"
#include "net_int.h"

typedef struct ccase {
    const char *name;
    size_t shape[3];
    size_t n_layers;
    basin_layer_spec layers[12];
    basin_loss loss;
    size_t out_k;
} ccase;

/* The nets under test; index 0 is benchmark case d. */
static size_t make_case(size_t i, ccase *c)
{
    memset(c, 0, sizeof *c);
    c->loss.huber_delta = 1.0;
    c->out_k = 1;
    basin_layer_spec *L = c->layers;
    switch (i) {
    case 0:
        c->name = "case d";
        c->shape[0] = 1, c->shape[1] = 8, c->shape[2] = 8;
        L[0] = conv(8, 3, 1, BASIN_PAD_SAME, 0, 1);
        L[1] = act(BASIN_ACT_RELU, 0, 0);
        L[2] = simple(BASIN_LAYER_AVGPOOL, 2);
        L[3] = conv(16, 3, 1, BASIN_PAD_SAME, 0, 1);
        L[4] = act(BASIN_ACT_RELU, 0, 0);
        L[5] = simple(BASIN_LAYER_AVGPOOL, 4);
        L[6] = simple(BASIN_LAYER_FLATTEN, 0);
        L[7] = dense(1, 1);
        c->n_layers = 8;
        c->loss.kind = BASIN_LOSS_SQUARED;
        return 1;
    case 1: /* stride 2, explicit padding, leaky, max pool with a leftover column, CE */
        c->name = "strided";
        c->shape[0] = 2, c->shape[1] = 7, c->shape[2] = 6;
        L[0] = conv(5, 3, 2, BASIN_PAD_EXPLICIT, 1, 1);
        L[1] = act(BASIN_ACT_LEAKY_RELU, 0.1, 0);
        L[2] = simple(BASIN_LAYER_MAXPOOL, 2);
        L[3] = simple(BASIN_LAYER_FLATTEN, 0);
        L[4] = dense(7, 0);
        L[5] = act(BASIN_ACT_PWL, -0.3, 1.7);
        L[6] = dense(3, 1);
        c->n_layers = 7;
        c->loss.kind = BASIN_LOSS_CROSS_ENTROPY;
        c->out_k = 3;
        return 1;
    case 2: /* valid padding, no bias, identity, avg pool 3 with leftovers, 1×1 conv, sum */
        c->name = "valid+sum";
        c->shape[0] = 3, c->shape[1] = 9, c->shape[2] = 8;
        L[0] = conv(3, 2, 1, BASIN_PAD_VALID, 0, 0);
        L[1] = act(BASIN_ACT_IDENTITY, 0, 0);
        L[2] = simple(BASIN_LAYER_AVGPOOL, 3);
        L[3] = conv(2, 1, 1, BASIN_PAD_VALID, 0, 1);
        L[4] = act(BASIN_ACT_PWL, 0.5, 2.0);
        L[5] = simple(BASIN_LAYER_SUM, 0);
        c->n_layers = 6;
        c->loss.kind = BASIN_LOSS_HUBER;
        c->loss.huber_delta = 0.7;
        return 1;
    case 3: /* a pool before the first conv; padding 3 > kernel 2: corner windows see no image */
        c->name = "pool first, big pad";
        c->shape[0] = 2, c->shape[1] = 6, c->shape[2] = 5;
        L[0] = simple(BASIN_LAYER_MAXPOOL, 2);
        L[1] = conv(9, 2, 3, BASIN_PAD_EXPLICIT, 3, 1);
        L[2] = act(BASIN_ACT_RELU, 0, 0);
        L[3] = conv(11, 3, 1, BASIN_PAD_SAME, 0, 1);
        L[4] = act(BASIN_ACT_LEAKY_RELU, 0.05, 0);
        L[5] = simple(BASIN_LAYER_FLATTEN, 0);
        L[6] = dense(2, 1);
        c->n_layers = 7;
        c->loss.kind = BASIN_LOSS_SQUARED;
        c->out_k = 2;
        return 1;
    case 4: /* even kernel with same padding (left/top 1 of 3), more channels than a tile below */
        c->name = "same k=4";
        c->shape[0] = 3, c->shape[1] = 5, c->shape[2] = 5;
        L[0] = conv(13, 4, 1, BASIN_PAD_SAME, 0, 1);
        L[1] = act(BASIN_ACT_RELU, 0, 0);
        L[2] = conv(6, 3, 2, BASIN_PAD_VALID, 0, 0);
        L[3] = simple(BASIN_LAYER_FLATTEN, 0);
        L[4] = dense(1, 1);
        c->n_layers = 5;
        c->loss.kind = BASIN_LOSS_SQUARED;
        return 1;
    default:
        return 0;
    }
}

typedef struct fixture {
    basin_net *net;
    basin_dataset *ds;
    basin_net_ws *ws;
    double *theta, *scratch;
    size_t dim, n;
    ccase c;
} fixture;

static void fixture_free(fixture *f)
{
    basin_net_ws_free(f->ws);
    basin_dataset_free(f->ds);
    basin_net_free(f->net);
    free(f->theta);
    free(f->scratch);
    memset(f, 0, sizeof *f);
}

static void fixture_make(size_t i, size_t n, uint64_t seed, fixture *f)
{
    memset(f, 0, sizeof *f);
    assert_true(make_case(i, &f->c));
    basin_arch arch = {.in_rank = 3, .n_layers = f->c.n_layers, .layers = f->c.layers};
    memcpy(arch.in_shape, f->c.shape, sizeof arch.in_shape);
    assert_int_equal(basin_net_create(&arch, &f->net, NULL), BASIN_OK);
    assert_int_equal(basin_net_out_dim(f->net), f->c.out_k);
    size_t y_dim = basin_loss_target_dim(&f->c.loss, f->c.out_k);
    assert_int_equal(basin_dataset_create(n, 3, f->c.shape, y_dim, &f->ds), BASIN_OK);
    gc_rand r = {seed};
    for (size_t j = 0; j < n * f->ds->in_dim; j++)
        f->ds->x[j] = gc_normal(&r);
    for (size_t j = 0; j < n * y_dim; j++)
        f->ds->y[j] = f->c.loss.kind == BASIN_LOSS_CROSS_ENTROPY
                          ? (double)((size_t)(gc_uniform(&r) * 3.0) % 3)
                          : gc_normal(&r);
    f->dim = basin_net_param_count(f->net);
    f->n = n;
    f->theta = malloc(f->dim * sizeof *f->theta);
    assert_non_null(f->theta);
    for (size_t j = 0; j < f->dim; j++)
        f->theta[j] = 0.5 * gc_normal(&r);
    assert_int_equal(basin_net_ws_create(f->net, 64, &f->ws), BASIN_OK);
    size_t need = basin__conv_scratch_need(f->net);
    assert_true(need > 0);
    f->scratch = malloc(need * sizeof *f->scratch);
    assert_non_null(f->scratch);
}

/* The BLAS path of basin_net_risk_grad: the same workspace with the kernel's scratch hidden. */
static void blas_eval(fixture *f, const size_t *idx, size_t m, const double *theta, double *risk,
                      double *grad)
{
    double *keep = f->ws->convscratch;
    f->ws->convscratch = NULL;
    assert_int_equal(
        basin_net_risk_grad(f->net, f->ws, theta, f->ds, idx, m, &f->c.loss, risk, grad), BASIN_OK);
    f->ws->convscratch = keep;
}

static const basin__lanes_isa isas[] = {BASIN__ISA_GENERIC, BASIN__ISA_AVX2, BASIN__ISA_AVX512};

static void check_against_blas(fixture *f, const size_t *idx, size_t m)
{
    double *g_ref = malloc(f->dim * sizeof *g_ref), *g = malloc(f->dim * sizeof *g);
    double *g_first = malloc(f->dim * sizeof *g_first);
    assert_true(g_ref && g && g_first);
    double r_ref, r, r_first = 0;
    blas_eval(f, idx, m, f->theta, &r_ref, g_ref);
    int ran = 0;
    for (size_t t = 0; t < sizeof isas / sizeof isas[0]; t++) {
        memset(g, 0xff, f->dim * sizeof *g); /* overwritten, not accumulated */
        int rc = basin__conv_eval_isa(isas[t], f->net, f->theta, f->ds, idx, m, &f->c.loss, g, &r,
                                      f->scratch, NULL);
        if (rc == BASIN_ENOTSUP)
            continue;
        assert_int_equal(rc, BASIN_OK);
        assert_true(fabs(r - r_ref) <= 1e-12 * fabs(r_ref));
        double e = gc_rel_err(g, g_ref, f->dim, 1e-300);
        if (!(e <= 1e-12))
            fail_msg("%s isa %zu m %zu: gradient rel err %g", f->c.name, t, m, e);
        if (!ran) {
            memcpy(g_first, g, f->dim * sizeof *g);
            r_first = r;
            ran = 1;
        } else {
            assert_memory_equal(g, g_first, f->dim * sizeof *g);
            assert_memory_equal(&r, &r_first, sizeof r);
        }
        /* risk only */
        double r2;
        assert_int_equal(basin__conv_eval_isa(isas[t], f->net, f->theta, f->ds, idx, m, &f->c.loss,
                                              NULL, &r2, f->scratch, NULL),
                         BASIN_OK);
        assert_memory_equal(&r2, &r, sizeof r);
    }
    assert_true(ran); /* the portable instantiation always runs */
    free(g_ref);
    free(g);
    free(g_first);
}

static void test_matches_blas_path(void **state)
{
    (void)state;
    ccase c;
    for (size_t i = 0; make_case(i, &c); i++) {
        fixture f;
        fixture_make(i, 83, 100 + i, &f);
        assert_true(basin__conv_eligible(f.net));
        static const size_t ms[] = {1, 7, 16, 17, 83};
        for (size_t j = 0; j < sizeof ms / sizeof ms[0]; j++)
            check_against_blas(&f, NULL, ms[j]);
        size_t idx[41];
        gc_rand r = {7 + i};
        for (size_t j = 0; j < 41; j++)
            idx[j] = (size_t)(gc_uniform(&r) * 83.0) % 83;
        idx[5] = idx[6] = 82; /* a repeat */
        check_against_blas(&f, idx, 41);
        fixture_free(&f);
    }
}

typedef struct fd_ctx {
    fixture *f;
    size_t m;
} fd_ctx;

static int fd_value(void *ctx, const double *theta, double *value, double *grad)
{
    fd_ctx *c = ctx;
    return basin_net_risk_grad(c->f->net, c->f->ws, theta, c->f->ds, NULL, c->m, &c->f->c.loss,
                               value, grad);
}

static void test_finite_differences(void **state)
{
    (void)state;
    ccase c;
    for (size_t i = 0; make_case(i, &c); i++) {
        fixture f;
        double risk, margin = 0;
        /* the first of a fixed list of seeds whose data and θ keep away from every kink
         * (forward on the BLAS path: all 23 rows are one chunk, so the margin sees them all) */
        for (uint64_t seed = 300 + i; seed < 300 + i + 40 * 20; seed += 20) {
            fixture_make(i, 23, seed, &f);
            assert_true(23 <= f.ws->chunk);
            blas_eval(&f, NULL, 23, f.theta, &risk, NULL);
            margin = gc_net_kink_margin(f.net, f.ws);
            if (margin > 1e-4)
                break;
            fixture_free(&f);
        }
        if (!(margin > 1e-4))
            fail_msg("%s: no seed keeps away from the kinks (%g)", c.name, margin);
        fd_ctx ctx = {&f, 23};
        double *g = malloc(f.dim * sizeof *g), *fd = malloc(f.dim * sizeof *fd);
        assert_true(g && fd);
        assert_non_null(f.ws->convscratch); /* the kernel path below */
        assert_int_equal(fd_value(&ctx, f.theta, &risk, g), BASIN_OK);
        assert_int_equal(gc_fd_gradient(fd_value, &ctx, f.theta, f.dim, 1e-6, fd), BASIN_OK);
        double e = gc_rel_err(g, fd, f.dim, 1e-3);
        if (!(e <= 1e-6))
            fail_msg("%s: gradient vs finite differences rel err %g", c.name, e);
        free(g);
        free(fd);
        fixture_free(&f);
    }
}

/* basin_net_risk_grad dispatches to the kernel, and leaves the last chunk's layer values. */
static void test_dispatch_and_layer_values(void **state)
{
    (void)state;
    ccase c;
    for (size_t i = 0; make_case(i, &c); i++) {
        fixture f;
        size_t m = 150;
        fixture_make(i, m, 500 + i, &f);
        assert_non_null(f.ws->convscratch);
        double r1, r2, *g1 = malloc(f.dim * sizeof *g1), *g2 = malloc(f.dim * sizeof *g2);
        assert_true(g1 && g2);
        assert_int_equal(
            basin_net_risk_grad(f.net, f.ws, f.theta, f.ds, NULL, m, &f.c.loss, &r1, g1), BASIN_OK);
        int done = 0;
        for (size_t t = 3; t-- > 0 && !done;)
            done = basin__conv_eval_isa(isas[t], f.net, f.theta, f.ds, NULL, m, &f.c.loss, g2, &r2,
                                        f.scratch, NULL) == BASIN_OK;
        assert_true(done);
        assert_memory_equal(g1, g2, f.dim * sizeof *g1);
        assert_memory_equal(&r1, &r2, sizeof r1);
        /* layer values of the kernel's last chunk against the BLAS path's forward pass */
        size_t L = basin_net_layer_count(f.net);
        size_t rows = f.ws->rows;
        assert_true(rows > 0 && rows <= f.ws->chunk);
        size_t total = 0;
        for (size_t l = 0; l <= L; l++)
            total += rows * (l == 0 ? basin_net_in_dim(f.net) : f.net->layers[l - 1].info.out_dim);
        double *kept = malloc(total * sizeof *kept);
        assert_non_null(kept);
        size_t off = 0;
        for (size_t l = 0; l <= L; l++) {
            size_t n =
                rows * (l == 0 ? basin_net_in_dim(f.net) : f.net->layers[l - 1].info.out_dim);
            memcpy(kept + off, f.ws->act[l], n * sizeof *kept);
            off += n;
        }
        blas_eval(&f, NULL, m, f.theta, &r2, g2);
        assert_int_equal(f.ws->rows, rows);
        off = 0;
        for (size_t l = 0; l <= L; l++) {
            size_t n =
                rows * (l == 0 ? basin_net_in_dim(f.net) : f.net->layers[l - 1].info.out_dim);
            double e = gc_rel_err(kept + off, f.ws->act[l], n, 1e-300);
            if (!(e <= 1e-12))
                fail_msg("%s layer %zu: recorded values rel err %g", c.name, l, e);
            off += n;
        }
        free(kept);
        free(g1);
        free(g2);
        fixture_free(&f);
    }
}

static void test_eligibility(void **state)
{
    (void)state;
    basin_layer_spec mlp[3] = {dense(4, 1), act(BASIN_ACT_RELU, 0, 0), dense(1, 1)};
    basin_arch a1 = {.in_rank = 1, .in_shape = {3}, .n_layers = 3, .layers = mlp};
    basin_net *net = NULL;
    assert_int_equal(basin_net_create(&a1, &net, NULL), BASIN_OK);
    assert_false(basin__conv_eligible(net));
    assert_int_equal(basin__conv_scratch_need(net), 0);
    basin_net_free(net);
    /* an image net with no conv layer stays on the BLAS path */
    basin_layer_spec pooled[3] = {simple(BASIN_LAYER_AVGPOOL, 2), simple(BASIN_LAYER_FLATTEN, 0),
                                  dense(1, 1)};
    basin_arch a2 = {.in_rank = 3, .in_shape = {1, 4, 4}, .n_layers = 3, .layers = pooled};
    assert_int_equal(basin_net_create(&a2, &net, NULL), BASIN_OK);
    assert_false(basin__conv_eligible(net));
    basin_net_free(net);
    double r;
    assert_int_equal(
        basin__conv_eval_isa(BASIN__ISA_GENERIC, NULL, &r, NULL, NULL, 1, NULL, NULL, &r, &r, NULL),
        BASIN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eligibility),
        cmocka_unit_test(test_matches_blas_path),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_dispatch_and_layer_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
