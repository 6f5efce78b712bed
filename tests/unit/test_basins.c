/* Tests of the basins module (normalisation, alignment, comparison, clustering, region counts).
 *
 * The references are independent of the code under test: permuted and rescaled copies of a
 * point are built here by explicit index arithmetic on the documented θ layout; functions are
 * compared through basin_net_forward; optimal alignments of a one-hidden-layer net are found by
 * trying every permutation with a normalisation written here; the 1-D minima, their risks,
 * function distance, pattern agreement, barrier and region counts are computed by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/basins.h"
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

/* ---- building nets and data ---- */

static basin_layer_spec dense(size_t units, int bias)
{
    basin_layer_spec s = {0};
    s.kind = BASIN_LAYER_DENSE;
    s.units = units;
    s.bias = bias;
    return s;
}

static basin_layer_spec conv(size_t filters, size_t kernel, size_t stride, basin_padding padding,
                             size_t pad, int bias)
{
    basin_layer_spec s = {0};
    s.kind = BASIN_LAYER_CONV2D;
    s.filters = filters;
    s.kernel = kernel;
    s.stride = stride;
    s.padding = padding;
    s.pad = pad;
    s.bias = bias;
    return s;
}

static basin_layer_spec act(basin_act_kind kind, double p1, double p2)
{
    basin_layer_spec s = {0};
    s.kind = BASIN_LAYER_ACTIVATION;
    s.act = kind;
    s.slope = p1;
    s.s_neg = p1;
    s.s_pos = p2;
    return s;
}

static basin_layer_spec simple(basin_layer_kind kind, size_t size)
{
    basin_layer_spec s = {0};
    s.kind = kind;
    s.size = size;
    return s;
}

static basin_net *make_net(size_t in_rank, size_t s0, size_t s1, size_t s2,
                           const basin_layer_spec *layers, size_t n_layers)
{
    basin_arch arch = {in_rank, {s0, s1, s2}, n_layers, layers};
    basin_net *net = NULL;
    basin_net_error err;
    if (basin_net_create(&arch, &net, &err) != BASIN_OK) {
        print_error("net: layer %ld %s: %s\n", err.layer, err.field, err.message);
        fail();
    }
    return net;
}

static double *alloc_doubles(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

static void fill_normal(basin_rng *rng, double *x, size_t n, double std)
{
    for (size_t i = 0; i < n; i++)
        x[i] = std * basin_rng_normal(rng);
}

static void forward(const basin_net *net, const double *theta, const double *x, size_t m,
                    double *out)
{
    basin_net_ws *ws = NULL;
    assert_int_equal(basin_net_ws_create(net, m, &ws), BASIN_OK);
    assert_int_equal(basin_net_forward(net, ws, theta, x, m, out), BASIN_OK);
    basin_net_ws_free(ws);
}

/* Largest |f_a(x) − f_b(x)| over m random inputs. */
static double max_output_diff(const basin_net *net, const double *ta, const double *tb,
                              basin_rng *rng, size_t m)
{
    size_t din = basin_net_in_dim(net), dout = basin_net_out_dim(net);
    double *x = alloc_doubles(m * din), *oa = alloc_doubles(m * dout),
           *ob = alloc_doubles(m * dout);
    fill_normal(rng, x, m * din, 1.0);
    forward(net, ta, x, m, oa);
    forward(net, tb, x, m, ob);
    double d = 0.0;
    for (size_t j = 0; j < m * dout; j++)
        d = fmax(d, fabs(oa[j] - ob[j]));
    free(x);
    free(oa);
    free(ob);
    return d;
}

static double max_abs_diff(const double *a, const double *b, size_t n)
{
    double d = 0.0;
    for (size_t j = 0; j < n; j++)
        d = fmax(d, fabs(a[j] - b[j]));
    return d;
}

static double dist2(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t j = 0; j < n; j++)
        s += (a[j] - b[j]) * (a[j] - b[j]);
    return sqrt(s);
}

/* A dataset of n samples with input shape (rank, shape) and x given or random; targets y =
 * f_teacher(x) for a net and θ, or given. */
static basin_dataset *make_data(size_t n, size_t rank, const size_t *shape, const double *x,
                                size_t y_dim, const double *y)
{
    basin_dataset *ds = NULL;
    assert_int_equal(basin_dataset_create(n, rank, shape, y_dim, &ds), BASIN_OK);
    memcpy(ds->x, x, n * ds->in_dim * sizeof *x);
    memcpy(ds->y, y, n * y_dim * sizeof *y);
    return ds;
}

static double risk_of(const basin_net *net, const basin_dataset *ds, const basin_loss *loss,
                      const double *theta)
{
    basin_net_ws *ws = NULL;
    double r = NAN;
    assert_int_equal(basin_net_ws_create(net, ds->n, &ws), BASIN_OK);
    assert_int_equal(basin_net_risk_grad(net, ws, theta, ds, NULL, ds->n, loss, &r, NULL),
                     BASIN_OK);
    basin_net_ws_free(ws);
    return r;
}

/* ---- symmetry transforms written from the θ layout in net.h ---- */

/* One parametrised layer viewed as W[R][G][Q] (+ bias[R]): R output units, G input groups
 * (input units or channels) of Q weights each. Writes W'[r][g][q] = rs[r]/gs[g] ·
 * W[rp[r]][gp[g]][q], b'[r] = rs[r]·b[rp[r]]. NULL permutations are the identity, NULL scales 1.
 * So unit r of the new layer is unit rp[r] of the old one scaled by rs[r], and it reads the
 * previous layer's new unit g, which is old unit gp[g] scaled by gs[g]. */
static void transform_layer(const double *src, double *dst, size_t R, size_t G, size_t Q, int bias,
                            const size_t *rp, const double *rs, const size_t *gp, const double *gs)
{
    for (size_t r = 0; r < R; r++) {
        size_t r0 = rp ? rp[r] : r;
        double sr = rs ? rs[r] : 1.0;
        for (size_t g = 0; g < G; g++) {
            size_t g0 = gp ? gp[g] : g;
            double sg = gs ? gs[g] : 1.0;
            for (size_t q = 0; q < Q; q++)
                dst[(r * G + g) * Q + q] = sr / sg * src[(r0 * G + g0) * Q + q];
        }
        if (bias)
            dst[R * G * Q + r] = sr * src[R * G * Q + r0];
    }
}

/* Dense net with layer sizes d[0..L] (all with bias): apply per-hidden-layer permutations and
 * scalings (perm[k], scale[k] for hidden layer k = 1..L−1). */
static void transform_mlp(const size_t *d, size_t L, const double *src, double *dst,
                          const size_t *const *perm, const double *const *scale)
{
    size_t off = 0;
    for (size_t k = 1; k <= L; k++) {
        const size_t *rp = k < L ? perm[k] : NULL, *gp = k > 1 ? perm[k - 1] : NULL;
        const double *rs = k < L ? scale[k] : NULL, *gs = k > 1 ? scale[k - 1] : NULL;
        transform_layer(src + off, dst + off, d[k], d[k - 1], 1, 1, rp, rs, gp, gs);
        off += d[k] * d[k - 1] + d[k];
    }
}

/* ---- (1) permuted and rescaled copies are recovered ---- */

static void check_recovery(const basin_net *net, const double *ta, const double *tb,
                           const basin_dataset *ds, size_t expect_moved, size_t expect_units,
                           size_t expect_slots)
{
    size_t P = basin_net_param_count(net);
    double *na = alloc_doubles(P), *nb = alloc_doubles(P), *bal = alloc_doubles(P);
    basin_rng rng;
    basin_rng_init(&rng, 99, 0);
    assert_int_equal(basin_normalize(net, ta, na), BASIN_OK);
    assert_int_equal(basin_normalize(net, tb, nb), BASIN_OK);
    /* Normalisation alone does not undo a permutation. */
    assert_true(max_abs_diff(na, nb, P) > 0.1);
    basin_align_stats st;
    assert_int_equal(basin_align(net, ta, tb, bal, &st), BASIN_OK);
    assert_int_equal(st.moved, expect_moved);
    assert_int_equal(st.units, expect_units);
    assert_int_equal(st.slots, expect_slots);
    assert_int_equal(st.converged, 1);
    /* (2) aligned b is the same function as b, and normalize+align recovers normalised a. */
    assert_true(max_output_diff(net, tb, bal, &rng, 50) <= 1e-12);
    assert_int_equal(basin_normalize(net, bal, bal), BASIN_OK);
    assert_true(max_abs_diff(na, bal, P) <= 1e-12);
    /* Align after normalising: the same point. */
    assert_int_equal(basin_align(net, na, nb, nb, NULL), BASIN_OK);
    assert_true(max_abs_diff(na, nb, P) <= 1e-12);

    basin_loss loss = {BASIN_LOSS_SQUARED, 1.0};
    basin_compare_opts o;
    basin_compare_defaults(&o);
    assert_int_equal(o.path_points, 21);
    o.unaligned_path = 1;
    o.max_batch = 7; /* several chunks */
    basin_comparison *c = NULL;
    assert_int_equal(basin_compare(net, ds, &loss, ta, tb, &o, &c), BASIN_OK);
    assert_true(c->risk_a <= 1e-24); /* the data are f_a(x) */
    assert_true(c->risk_b <= 1e-24);
    assert_true(c->func_dist <= 1e-12);
    assert_true(c->output_rms_a > 0.1);
    assert_true(c->param_dist <= 1e-12);
    assert_true(c->param_dist_unaligned > 0.1);
    assert_true(c->unit_agreement == 1.0);
    assert_true(c->sample_agreement == 1.0);
    assert_int_equal(c->align.moved, expect_moved);
    assert_int_equal(c->aligned.points, 21);
    assert_true(c->aligned.t[0] == 0.0 && c->aligned.t[20] == 1.0 && c->aligned.t[10] == 0.5);
    assert_true(c->aligned.barrier <= 1e-10);
    for (size_t k = 0; k < 21; k++)
        assert_true(c->aligned.risk[k] <= 1e-20);
    /* The straight path between the points as given leaves the data fit. */
    assert_int_equal(c->unaligned.points, 21);
    assert_true(c->unaligned.barrier > 1e-3);
    double *mid = alloc_doubles(P);
    for (size_t j = 0; j < P; j++)
        mid[j] = 0.5 * ta[j] + 0.5 * tb[j];
    assert_near(c->unaligned.risk[10], risk_of(net, ds, &loss, mid), 1e-15);
    assert_true(c->unaligned.risk[c->unaligned.peak] >= c->unaligned.risk[10]);
    assert_near(c->unaligned.barrier, c->unaligned.risk[c->unaligned.peak], 1e-20);
    assert_true(max_abs_diff(c->theta_a_normalized, na, P) == 0.0);
    basin_comparison_free(c);
    free(mid);
    free(na);
    free(nb);
    free(bal);
}

static void test_mlp_permuted_rescaled(void **state)
{
    (void)state;
    const basin_layer_spec layers[] = {dense(5, 1), act(BASIN_ACT_RELU, 0, 0), dense(4, 1),
                                       act(BASIN_ACT_LEAKY_RELU, 0.1, 0), dense(2, 1)};
    basin_net *net = make_net(1, 3, 0, 0, layers, 5);
    const size_t d[] = {3, 5, 4, 2};
    size_t P = basin_net_param_count(net);
    assert_int_equal(P, 5 * 3 + 5 + 4 * 5 + 4 + 2 * 4 + 2);
    const size_t p1[] = {2, 0, 4, 1, 3}, p2[] = {3, 1, 0, 2};
    const double c1[] = {0.5, 3, 1.7, 0.2, 2.2}, c2[] = {1.3, 0.4, 5, 0.9};
    const size_t *perm[] = {NULL, p1, p2};
    const double *scale[] = {NULL, c1, c2};
    double *ta = alloc_doubles(P), *tb = alloc_doubles(P);
    basin_rng rng;
    basin_rng_init(&rng, 1, 0);
    fill_normal(&rng, ta, P, 1.0);
    transform_mlp(d, 3, ta, tb, perm, scale);
    /* The hand-made copy is the same function. */
    assert_true(max_output_diff(net, ta, tb, &rng, 50) <= 1e-12);
    enum { N = 40 };
    double x[N * 3], y[N * 2];
    fill_normal(&rng, x, N * 3, 1.0);
    forward(net, ta, x, N, y);
    size_t shape[1] = {3};
    basin_dataset *ds = make_data(N, 1, shape, x, 2, y);
    /* p1 has no fixed point, p2 one (position 1): 5 + 3 units move. */
    check_recovery(net, ta, tb, ds, 8, 9, 2);
    basin_dataset_free(ds);
    free(ta);
    free(tb);
    basin_net_free(net);
}

static void test_cnn_permuted_rescaled(void **state)
{
    (void)state;
    /* [2,6,6] → conv 3×(3×3, same) → relu → conv 4×(2×2) → relu → avgpool 2 → flatten → dense 2:
     * shapes [3,6,6], [4,5,5], [4,2,2], 16. */
    const basin_layer_spec layers[] = {conv(3, 3, 1, BASIN_PAD_SAME, 0, 1),
                                       act(BASIN_ACT_RELU, 0, 0),
                                       conv(4, 2, 1, BASIN_PAD_VALID, 0, 1),
                                       act(BASIN_ACT_RELU, 0, 0),
                                       simple(BASIN_LAYER_AVGPOOL, 2),
                                       simple(BASIN_LAYER_FLATTEN, 0),
                                       dense(2, 1)};
    basin_net *net = make_net(3, 2, 6, 6, layers, 7);
    size_t P = basin_net_param_count(net);
    size_t n1 = 3 * 2 * 9 + 3, n2 = 4 * 3 * 4 + 4, n3 = 2 * 16 + 2;
    assert_int_equal(P, n1 + n2 + n3);
    const size_t p1[] = {2, 0, 1}, p2[] = {1, 3, 0, 2};
    const double c1[] = {0.3, 2, 1.1}, c2[] = {4, 0.25, 1.5, 0.7};
    double *ta = alloc_doubles(P), *tb = alloc_doubles(P);
    basin_rng rng;
    basin_rng_init(&rng, 2, 0);
    fill_normal(&rng, ta, P, 0.5);
    transform_layer(ta, tb, 3, 2, 9, 1, p1, c1, NULL, NULL);
    transform_layer(ta + n1, tb + n1, 4, 3, 4, 1, p2, c2, p1, c1);
    transform_layer(ta + n1 + n2, tb + n1 + n2, 2, 4, 4, 1, NULL, NULL, p2, c2);
    assert_true(max_output_diff(net, ta, tb, &rng, 20) <= 1e-12);
    enum { N = 12 };
    double *x = alloc_doubles(N * 72), y[N * 2];
    fill_normal(&rng, x, N * 72, 1.0);
    forward(net, ta, x, N, y);
    size_t shape[3] = {2, 6, 6};
    basin_dataset *ds = make_data(N, 3, shape, x, 2, y);
    check_recovery(net, ta, tb, ds, 7, 7, 2);
    basin_dataset_free(ds);
    free(x);
    free(ta);
    free(tb);
    basin_net_free(net);
}

/* ---- (2) normalisation and alignment never change the function ---- */

/* Incoming norm (weights + bias) of unit u of a layer with R units of `in` weights at θ+off. */
static double row_norm(const double *theta, size_t off, size_t R, size_t in, int bias, size_t u)
{
    double s = 0.0;
    for (size_t j = 0; j < in; j++)
        s += theta[off + u * in + j] * theta[off + u * in + j];
    if (bias)
        s += theta[off + R * in + u] * theta[off + R * in + u];
    return sqrt(s);
}

static void check_invariance(const basin_net *net, uint64_t seed)
{
    size_t P = basin_net_param_count(net);
    double *ta = alloc_doubles(P), *tb = alloc_doubles(P), *na = alloc_doubles(P),
           *nb = alloc_doubles(P), *bal = alloc_doubles(P);
    basin_rng rng;
    basin_rng_init(&rng, seed, 0);
    fill_normal(&rng, ta, P, 1.0);
    fill_normal(&rng, tb, P, 1.0);
    assert_int_equal(basin_normalize(net, ta, na), BASIN_OK);
    assert_true(max_output_diff(net, ta, na, &rng, 30) <= 1e-12);
    assert_int_equal(basin_align(net, ta, tb, bal, NULL), BASIN_OK);
    assert_true(max_output_diff(net, tb, bal, &rng, 30) <= 1e-12);
    /* Aligning never ends farther away than not aligning (both normalised). */
    assert_int_equal(basin_normalize(net, tb, nb), BASIN_OK);
    double before = dist2(na, nb, P);
    assert_int_equal(basin_normalize(net, bal, bal), BASIN_OK);
    assert_true(dist2(na, bal, P) <= before + 1e-12);
    /* In place gives the same as out of place. */
    memcpy(nb, ta, P * sizeof *nb);
    assert_int_equal(basin_normalize(net, nb, nb), BASIN_OK);
    assert_true(max_abs_diff(na, nb, P) == 0.0);
    free(ta);
    free(tb);
    free(na);
    free(nb);
    free(bal);
}

static void test_dense_variants(void **state)
{
    (void)state;
    /* Slots: layer 0 (pwl after it: rescalable), layer 2 (no bias, identity after it: permuted
     * only), layer 4 (leaky after it: rescalable). */
    const basin_layer_spec layers[] = {
        dense(6, 1), act(BASIN_ACT_PWL, -0.5, 2.0),     dense(5, 0), act(BASIN_ACT_IDENTITY, 0, 0),
        dense(3, 1), act(BASIN_ACT_LEAKY_RELU, 0.2, 0), dense(2, 1)};
    basin_net *net = make_net(1, 4, 0, 0, layers, 7);
    check_invariance(net, 3);
    size_t P = basin_net_param_count(net);
    size_t off0 = 0, off2 = 6 * 4 + 6, off4 = off2 + 5 * 6, off6 = off4 + 3 * 5 + 3;
    assert_int_equal(P, off6 + 2 * 3 + 2);
    double *t = alloc_doubles(P), *n = alloc_doubles(P), *r = alloc_doubles(P),
           *nr = alloc_doubles(P);
    basin_rng rng;
    basin_rng_init(&rng, 4, 0);
    fill_normal(&rng, t, P, 1.0);
    assert_int_equal(basin_normalize(net, t, n), BASIN_OK);
    for (size_t u = 0; u < 6; u++)
        assert_near(row_norm(n, off0, 6, 4, 1, u), 1.0, 1e-14);
    for (size_t u = 0; u < 3; u++)
        assert_near(row_norm(n, off4, 3, 5, 1, u), 1.0, 1e-14);
    /* Layer 2's rows are not normalised (only its columns carry layer 0's norms). */
    for (size_t u = 0; u < 5; u++) {
        double s = 0.0;
        for (size_t j = 0; j < 6; j++) {
            double w = t[off2 + u * 6 + j] * row_norm(t, off0, 6, 4, 1, j);
            assert_near(n[off2 + u * 6 + j], w, 1e-13);
            s += w * w;
        }
        assert_true(fabs(sqrt(s) - 1.0) > 1e-3);
    }
    /* The output layer is untouched by the identity slot and scaled by layer 4's norms. */
    for (size_t o = 0; o < 2; o++)
        for (size_t j = 0; j < 3; j++)
            assert_near(n[off6 + o * 3 + j], t[off6 + o * 3 + j] * row_norm(t, off4, 3, 5, 1, j),
                        1e-13);
    /* Canonical: rescaling the rescalable slots by hand does not change the normal form. */
    const double s0[] = {0.1, 7, 2, 0.5, 1.5, 3}, s4[] = {9, 0.05, 1.25};
    transform_layer(t + off0, r + off0, 6, 4, 1, 1, NULL, s0, NULL, NULL);
    transform_layer(t + off2, r + off2, 5, 6, 1, 0, NULL, NULL, NULL, s0);
    transform_layer(t + off4, r + off4, 3, 5, 1, 1, NULL, s4, NULL, NULL);
    transform_layer(t + off6, r + off6, 2, 3, 1, 1, NULL, NULL, NULL, s4);
    assert_true(max_output_diff(net, t, r, &rng, 20) <= 1e-12);
    assert_true(max_abs_diff(t, r, P) > 0.1);
    assert_int_equal(basin_normalize(net, r, nr), BASIN_OK);
    assert_true(max_abs_diff(n, nr, P) <= 1e-12);
    free(t);
    free(n);
    free(r);
    free(nr);
    basin_net_free(net);
}

static void test_conv_variants(void **state)
{
    (void)state;
    /* conv → maxpool → leaky → flatten → dense → relu → dense. */
    const basin_layer_spec a[] = {conv(2, 2, 1, BASIN_PAD_VALID, 0, 1),
                                  simple(BASIN_LAYER_MAXPOOL, 2),
                                  act(BASIN_ACT_LEAKY_RELU, 0.1, 0),
                                  simple(BASIN_LAYER_FLATTEN, 0),
                                  dense(3, 1),
                                  act(BASIN_ACT_RELU, 0, 0),
                                  dense(1, 1)};
    basin_net *net = make_net(3, 1, 5, 5, a, 7);
    check_invariance(net, 5);
    basin_net_free(net);
    /* explicit padding, no bias, strided second conv, no pooling. */
    const basin_layer_spec b[] = {
        conv(3, 3, 1, BASIN_PAD_EXPLICIT, 1, 0), act(BASIN_ACT_RELU, 0, 0),
        conv(2, 2, 2, BASIN_PAD_VALID, 0, 1),    act(BASIN_ACT_PWL, 0.3, -1.5),
        simple(BASIN_LAYER_FLATTEN, 0),          dense(1, 1)};
    net = make_net(3, 2, 5, 5, b, 6);
    check_invariance(net, 6);
    basin_net_free(net);
}

static void test_no_slots(void **state)
{
    (void)state;
    /* A layer feeding `sum` has no slot; nothing changes. */
    const basin_layer_spec layers[] = {dense(4, 1), act(BASIN_ACT_RELU, 0, 0),
                                       simple(BASIN_LAYER_SUM, 0)};
    basin_net *net = make_net(1, 3, 0, 0, layers, 3);
    size_t P = basin_net_param_count(net);
    double *ta = alloc_doubles(P), *tb = alloc_doubles(P), *o = alloc_doubles(P);
    basin_rng rng;
    basin_rng_init(&rng, 7, 0);
    fill_normal(&rng, ta, P, 1.0);
    fill_normal(&rng, tb, P, 1.0);
    assert_int_equal(basin_normalize(net, ta, o), BASIN_OK);
    assert_memory_equal(o, ta, P * sizeof *o);
    basin_align_stats st;
    assert_int_equal(basin_align(net, ta, tb, o, &st), BASIN_OK);
    assert_memory_equal(o, tb, P * sizeof *o);
    assert_int_equal(st.slots, 0);
    assert_int_equal(st.moved, 0);
    free(ta);
    free(tb);
    free(o);
    basin_net_free(net);
}

/* One hidden layer (2-4-1, relu): alignment must reach the best of all 4! permutations,
 * found here by brute force with a normalisation written in the test. */
static void normalize_1h(const double *t, double *n)
{
    /* layout: W1[4][2], b1[4], W2[1][4], b2[1] */
    memcpy(n, t, 17 * sizeof *n);
    for (size_t u = 0; u < 4; u++) {
        double s = sqrt(t[2 * u] * t[2 * u] + t[2 * u + 1] * t[2 * u + 1] + t[8 + u] * t[8 + u]);
        n[2 * u] /= s;
        n[2 * u + 1] /= s;
        n[8 + u] /= s;
        n[12 + u] *= s;
    }
}

static void test_single_slot_optimal(void **state)
{
    (void)state;
    const basin_layer_spec layers[] = {dense(4, 1), act(BASIN_ACT_RELU, 0, 0), dense(1, 1)};
    basin_net *net = make_net(1, 2, 0, 0, layers, 3);
    assert_int_equal(basin_net_param_count(net), 17);
    basin_rng rng;
    basin_rng_init(&rng, 8, 0);
    for (int trial = 0; trial < 20; trial++) {
        double ta[17], tb[17], na[17], nb[17], pb[17], al[17];
        fill_normal(&rng, ta, 17, 1.0);
        fill_normal(&rng, tb, 17, 1.0);
        normalize_1h(ta, na);
        double best = INFINITY;
        size_t p[4];
        for (p[0] = 0; p[0] < 4; p[0]++)
            for (p[1] = 0; p[1] < 4; p[1]++)
                for (p[2] = 0; p[2] < 4; p[2]++)
                    for (p[3] = 0; p[3] < 4; p[3]++) {
                        if (p[0] == p[1] || p[0] == p[2] || p[0] == p[3] || p[1] == p[2] ||
                            p[1] == p[3] || p[2] == p[3])
                            continue;
                        transform_layer(tb, pb, 4, 2, 1, 1, p, NULL, NULL, NULL);
                        transform_layer(tb + 12, pb + 12, 1, 4, 1, 1, NULL, NULL, p, NULL);
                        normalize_1h(pb, nb);
                        best = fmin(best, dist2(na, nb, 17));
                    }
        assert_int_equal(basin_align(net, ta, tb, al, NULL), BASIN_OK);
        normalize_1h(al, nb);
        assert_near(dist2(na, nb, 17), best, 1e-10);
    }
    basin_net_free(net);
}

/* ---- (3) two different minima of a 1-D problem ---- */

/* x = −3..3, y = |x|. With one ReLU unit, f = 1.4 + relu(x − 1.4) fits x ∈ {2, 3} exactly and
 * the rest by their mean 1.4 (the kink sits at that mean, between samples: a local minimum);
 * its mirror f = 1.4 + relu(−x − 1.4) has the same risk. Residuals² of either: 2.56, .36, .16,
 * 1.96, .16, 0, 0 → R = 5.2/14. Between them (normalised: w = ±1/s, b = −1.4/s, v = s with
 * s = √(1 + 1.96)) the unit's input is ((1 − 2t)x − 1.4)/s, off for every sample when
 * |1 − 2t|·3 < 1.4, where f ≡ 1.4 and R = 8.12/14: the barrier is 2.92/14. */
static basin_dataset *v_data(void)
{
    double x[7], y[7];
    for (int i = 0; i < 7; i++) {
        x[i] = i - 3;
        y[i] = fabs(x[i]);
    }
    size_t shape[1] = {1};
    return make_data(7, 1, shape, x, 1, y);
}

static void test_two_minima_1d(void **state)
{
    (void)state;
    const basin_layer_spec layers[] = {dense(1, 1), act(BASIN_ACT_RELU, 0, 0), dense(1, 1)};
    basin_net *net = make_net(1, 1, 0, 0, layers, 3);
    basin_dataset *ds = v_data();
    basin_loss loss = {BASIN_LOSS_SQUARED, 1.0};
    /* θ = [w, b, v, c] */
    double ta[4] = {1, -1.4, 1, 1.4}, tb[4] = {-1, -1.4, 1, 1.4};
    basin_compare_opts o;
    basin_compare_defaults(&o);
    o.unaligned_path = 1;
    basin_comparison *c = NULL;
    assert_int_equal(basin_compare(net, ds, &loss, ta, tb, &o, &c), BASIN_OK);
    assert_near(c->risk_a, 5.2 / 14, 1e-14);
    assert_near(c->risk_b, 5.2 / 14, 1e-14);
    assert_near(c->risk_diff, 0.0, 1e-14);
    /* f_a − f_b = ±0.6 at x = ±2, ±1.6 at x = ±3. */
    assert_near(c->func_dist, sqrt((2 * 0.36 + 2 * 2.56) / 7), 1e-14);
    /* The unit is on at x ∈ {2,3} for a and x ∈ {−3,−2} for b: same side on {−1,0,1}. */
    assert_int_equal(c->pattern_units, 1);
    assert_near(c->unit_agreement, 3.0 / 7, 1e-15);
    assert_near(c->sample_agreement, 3.0 / 7, 1e-15);
    assert_near(c->aligned.barrier, 2.92 / 14, 1e-12);
    assert_near(c->aligned.risk[10], 8.12 / 14, 1e-12);
    assert_near(c->aligned.risk[0], 5.2 / 14, 1e-12);
    assert_near(c->aligned.risk[20], 5.2 / 14, 1e-12);
    /* The peak lies on the plateau |1 − 2t|·3 < 1.4, i.e. grid points 6..14 (t = 0.3..0.7;
     * t = 0.25 gives 1.5 > 1.4), and is the largest risk on the grid. */
    assert_true(c->aligned.peak >= 6 && c->aligned.peak <= 14);
    for (size_t k = 0; k < 21; k++)
        assert_true(c->aligned.risk[k] <= c->aligned.risk[c->aligned.peak]);
    assert_true(c->aligned.risk[5] < 8.12 / 14 - 1e-3);
    /* Unnormalised: the same path here (w = ±1), so the same barrier. */
    assert_near(c->unaligned.barrier, 2.92 / 14, 1e-12);
    basin_comparison_free(c);

    /* Same risk level, different functions: two basins. */
    double thetas[8];
    memcpy(thetas, ta, sizeof ta);
    memcpy(thetas + 4, tb, sizeof tb);
    basin_clustering *cl = NULL;
    assert_int_equal(basin_cluster(net, ds, &loss, 2, thetas, NULL, NULL, &cl), BASIN_OK);
    assert_int_equal(cl->n_basins, 2);
    assert_int_equal(cl->basins[0].count, 1);
    assert_int_equal(cl->basins[1].count, 1);
    assert_true(cl->basins[0].representative != cl->basins[1].representative);
    assert_int_equal(cl->basins[0].regions, 2);
    assert_int_equal(cl->basins[1].regions, 2);
    basin_clustering_free(cl);
    basin_dataset_free(ds);
    basin_net_free(net);
}

/* ---- (4) clustering copies of two minima ---- */

/* 1-2-1 ReLU net, θ = [w1, w2, b1, b2, v1, v2, c]. On the V data:
 * A: |x| = relu(x) + relu(−x), R = 0, patterns on x < 0, x = 0, x > 0: 3 regions.
 * B: 1.4 + relu(x − 1.4) with a dead second unit relu(−x − 5) (−x − 5 ≤ −2 on the data) whose
 *    output weight 0.7 is irrelevant: R = 5.2/14, 2 regions.
 * Both have zero mean residual, so moving the output bias c by δ raises R by exactly δ²/2. */
static void copy_of(const double *src, int swap, double s1, double s2, double dc, double *dst)
{
    const size_t sw[2] = {1, 0};
    const double sc[2] = {s1, s2};
    transform_layer(src, dst, 2, 1, 1, 1, swap ? sw : NULL, sc, NULL, NULL);
    transform_layer(src + 4, dst + 4, 1, 2, 1, 1, NULL, NULL, swap ? sw : NULL, sc);
    dst[6] += dc;
}

static void test_cluster_copies(void **state)
{
    (void)state;
    const basin_layer_spec layers[] = {dense(2, 1), act(BASIN_ACT_RELU, 0, 0), dense(1, 1)};
    basin_net *net = make_net(1, 1, 0, 0, layers, 3);
    assert_int_equal(basin_net_param_count(net), 7);
    basin_dataset *ds = v_data();
    basin_loss loss = {BASIN_LOSS_SQUARED, 1.0};
    const double A[7] = {1, -1, 0, 0, 1, 1, 0}, B[7] = {1, -1, -1.4, -5, 1, 0.7, 1.4};
    /* label: 0..2 copies of A (A0 exact), 3..4 copies of B (B4 exact). */
    double pts[5][7];
    copy_of(A, 1, 2.5, 0.3, 0.0, pts[0]);
    copy_of(A, 0, 0.5, 4.0, 1e-4, pts[1]);
    copy_of(A, 1, 1.7, 0.9, -2e-4, pts[2]);
    copy_of(B, 1, 0.6, 3.0, 3e-4, pts[3]);
    copy_of(B, 0, 2.0, 0.25, 0.0, pts[4]);
    const double expect_risk[5] = {0, 0.5e-8, 2e-8, 5.2 / 14 + 4.5e-8, 5.2 / 14};
    for (size_t p = 0; p < 5; p++)
        assert_near(risk_of(net, ds, &loss, pts[p]), expect_risk[p], 1e-14);

    basin_rng rng;
    basin_rng_init(&rng, 9, 0);
    for (int trial = 0; trial < 6; trial++) {
        size_t order[5] = {0, 1, 2, 3, 4};
        if (trial > 0)
            basin_rng_shuffle(&rng, order, 5);
        double thetas[5 * 7], risks[5];
        for (size_t q = 0; q < 5; q++) {
            memcpy(thetas + q * 7, pts[order[q]], sizeof pts[0]);
            risks[q] = risk_of(net, ds, &loss, pts[order[q]]);
        }
        basin_clustering *cl = NULL;
        /* odd trials: risks computed by basin_cluster itself */
        assert_int_equal(
            basin_cluster(net, ds, &loss, 5, thetas, trial % 2 ? NULL : risks, NULL, &cl),
            BASIN_OK);
        assert_int_equal(cl->n_points, 5);
        assert_int_equal(cl->n_basins, 2);
        assert_int_equal(cl->lowest, 0);
        const basin_basin_info *ba = &cl->basins[0], *bb = &cl->basins[1];
        assert_int_equal(ba->count, 3);
        assert_int_equal(bb->count, 2);
        assert_int_equal(order[ba->representative], 0);
        assert_int_equal(order[bb->representative], 4);
        for (size_t k = 0; k < 3; k++)
            assert_true(order[ba->members[k]] <= 2);
        for (size_t k = 0; k < 2; k++)
            assert_true(order[bb->members[k]] >= 3);
        for (size_t k = 1; k < 3; k++)
            assert_true(ba->members[k - 1] < ba->members[k]);
        for (size_t q = 0; q < 5; q++)
            assert_int_equal(cl->assignment[q], order[q] <= 2 ? 0 : 1);
        assert_near(ba->risk, 0.0, 1e-14);
        assert_near(bb->risk, 5.2 / 14, 1e-14);
        assert_int_equal(ba->regions, 3);
        assert_int_equal(bb->regions, 2);
        /* d_f of a copy with c moved by δ is |δ|. */
        assert_near(ba->max_func_dist, 2e-4, 1e-12);
        assert_near(bb->max_func_dist, 3e-4, 1e-12);
        assert_near(ba->max_risk_gap, 2e-8, 1e-14);
        assert_near(bb->max_risk_gap, 4.5e-8, 1e-14);
        /* RMS of |x| on −3..3: sqrt(28/7) = 2. */
        assert_near(ba->output_rms, 2.0, 1e-12);
        assert_near(ba->func_tol, 1e-3 * 3.0, 1e-15);
        basin_clustering_free(cl);
    }

    /* Tighter tolerances split the copies. */
    double thetas[5 * 7];
    memcpy(thetas, pts, sizeof thetas);
    basin_cluster_opts o;
    basin_cluster_defaults(&o);
    o.func_tol_rel = 1e-5; /* below 1e-4 / (1 + RMS): every copy is its own basin */
    o.count_regions = 0;
    basin_clustering *cl = NULL;
    assert_int_equal(basin_cluster(net, ds, &loss, 5, thetas, NULL, &o, &cl), BASIN_OK);
    assert_int_equal(cl->n_basins, 5);
    assert_int_equal(cl->basins[0].regions, 0);
    basin_clustering_free(cl);
    basin_cluster_defaults(&o);
    o.risk_tol = 1e-9; /* below the 5e-9 risk gap of copy 1, above nothing else */
    assert_int_equal(basin_cluster(net, ds, &loss, 5, thetas, NULL, &o, &cl), BASIN_OK);
    assert_int_equal(cl->n_basins, 5);
    basin_clustering_free(cl);
    o.risk_tol = 1e-8; /* copy 1 (5e-9) joins A; copies 2 (2e-8) and 3 (4.5e-8) do not */
    assert_int_equal(basin_cluster(net, ds, &loss, 5, thetas, NULL, &o, &cl), BASIN_OK);
    assert_int_equal(cl->n_basins, 4);
    assert_int_equal(cl->basins[0].count, 2);
    basin_clustering_free(cl);
    /* No points: an empty clustering. */
    assert_int_equal(basin_cluster(net, ds, &loss, 0, NULL, NULL, NULL, &cl), BASIN_OK);
    assert_int_equal(cl->n_basins, 0);
    basin_clustering_free(cl);
    basin_dataset_free(ds);
    basin_net_free(net);
}

/* A (R = 0) against B (R = 5.2/14) from test_cluster_copies: different risks, so the barrier
 * is measured from the higher end point; patterns by hand. Alignment keeps the order (unit 1
 * of both points faces right: incoming similarity 1/√2.96 vs −1/√2.96 for the swap, and the
 * outgoing term is the same for both orders). Sides on x = −3..3:
 *   A: (0,1) (0,1) (0,1) (0,0) (1,0) (1,0) (1,0);  B: (0,0) ×5, (1,0) (1,0)
 * → 4 of 14 entries differ (x = −3, −2, −1 in unit 2; x = 1 in unit 1); samples 0, 2, 3 agree. */
static void test_different_levels(void **state)
{
    (void)state;
    const basin_layer_spec layers[] = {dense(2, 1), act(BASIN_ACT_RELU, 0, 0), dense(1, 1)};
    basin_net *net = make_net(1, 1, 0, 0, layers, 3);
    basin_dataset *ds = v_data();
    basin_loss loss = {BASIN_LOSS_SQUARED, 1.0};
    const double A[7] = {1, -1, 0, 0, 1, 1, 0}, B[7] = {1, -1, -1.4, -5, 1, 0.7, 1.4};
    basin_comparison *c = NULL;
    for (int dir = 0; dir < 2; dir++) {
        assert_int_equal(basin_compare(net, ds, &loss, dir ? B : A, dir ? A : B, NULL, &c),
                         BASIN_OK);
        assert_near(c->risk_diff, dir ? -5.2 / 14 : 5.2 / 14, 1e-14);
        assert_int_equal(c->align.moved, 0);
        assert_int_equal(c->pattern_units, 2);
        assert_near(c->unit_agreement, 10.0 / 14, 1e-15);
        assert_near(c->sample_agreement, 3.0 / 7, 1e-15);
        double top = -INFINITY;
        for (size_t k = 0; k < c->aligned.points; k++)
            top = fmax(top, c->aligned.risk[k]);
        assert_near(c->aligned.barrier, top - 5.2 / 14, 1e-14);
        /* f_A − f_B: −1.6 (x=−3), −0.6, −0.4, −1.4, −0.4, 0, 0 */
        assert_near(c->func_dist, sqrt((2.56 + 0.36 + 0.16 + 1.96 + 0.16) / 7), 1e-14);
        basin_comparison_free(c);
    }
    basin_dataset_free(ds);
    basin_net_free(net);
}

/* Pattern agreement of a 2-6-1 ReLU net against a perturbed copy, recounted here from the
 * hidden pre-activations W1·x + b1 of θ_a and of the aligned θ_b the comparison returns. */
static void test_pattern_agreement_by_hand(void **state)
{
    (void)state;
    enum { N = 30, H = 6 };
    const basin_layer_spec layers[] = {dense(H, 1), act(BASIN_ACT_RELU, 0, 0), dense(1, 1)};
    basin_net *net = make_net(1, 2, 0, 0, layers, 3);
    size_t P = basin_net_param_count(net);
    double *ta = alloc_doubles(P), *tb = alloc_doubles(P), x[N * 2], y[N];
    basin_rng rng;
    basin_rng_init(&rng, 21, 0);
    fill_normal(&rng, ta, P, 1.0);
    fill_normal(&rng, tb, P, 0.7);
    for (size_t j = 0; j < P; j++)
        tb[j] += ta[j];
    fill_normal(&rng, x, N * 2, 1.0);
    fill_normal(&rng, y, N, 1.0);
    size_t shape[1] = {2};
    basin_dataset *ds = make_data(N, 1, shape, x, 1, y);
    basin_loss loss = {BASIN_LOSS_SQUARED, 1.0};
    basin_comparison *c = NULL;
    assert_int_equal(basin_compare(net, ds, &loss, ta, tb, NULL, &c), BASIN_OK);
    const double *tb2 = c->theta_b_aligned;
    size_t same_units = 0, same_samples = 0, multi = 0;
    for (size_t i = 0; i < N; i++) {
        size_t diff = 0;
        for (size_t u = 0; u < H; u++) {
            double za = ta[2 * u] * x[2 * i] + ta[2 * u + 1] * x[2 * i + 1] + ta[2 * H + u];
            double zb = tb2[2 * u] * x[2 * i] + tb2[2 * u + 1] * x[2 * i + 1] + tb2[2 * H + u];
            diff += (za > 0) != (zb > 0);
        }
        same_units += H - diff;
        same_samples += diff == 0;
        multi += diff >= 2;
    }
    assert_true(multi > 0); /* the case where bits, not words, must count */
    assert_true(same_samples > 0 && same_samples < N); /* neither all nor nothing agrees */
    assert_near(c->unit_agreement, (double)same_units / (N * H), 1e-15);
    assert_near(c->sample_agreement, (double)same_samples / N, 1e-15);
    basin_comparison_free(c);
    basin_dataset_free(ds);
    free(ta);
    free(tb);
    basin_net_free(net);
}

/* ---- region counts ---- */

static void test_regions_maxpool(void **state)
{
    (void)state;
    /* [1,2,2] → maxpool 2 → flatten → dense 1: the only pattern entry is the argmax of the one
     * window. Maxima at positions 0, 1, 1, 3 (row-major), the first of two equal values wins:
     * 3 regions. */
    const basin_layer_spec layers[] = {simple(BASIN_LAYER_MAXPOOL, 2),
                                       simple(BASIN_LAYER_FLATTEN, 0), dense(1, 1)};
    basin_net *net = make_net(3, 1, 2, 2, layers, 3);
    double x[4 * 4] = {5, 1, 2, 3, 0, 4, 1, 2, 1, 7, 7, 0, -1, -2, -3, 0};
    double y[4] = {0, 0, 0, 0}, theta[2] = {1, 0};
    size_t shape[3] = {1, 2, 2};
    basin_dataset *ds = make_data(4, 3, shape, x, 1, y);
    size_t regions = 0;
    assert_int_equal(basin_count_regions(net, ds, theta, &regions), BASIN_OK);
    assert_int_equal(regions, 3);
    basin_dataset_free(ds);
    basin_net_free(net);
    /* A sample on a kink (z = 0) uses s_neg, as net.h does: relu(x) on x ∈ {−1, 0} is one
     * piece (slope 0) on both samples, so one region. */
    const basin_layer_spec one[] = {dense(1, 1), act(BASIN_ACT_RELU, 0, 0), dense(1, 1)};
    net = make_net(1, 1, 0, 0, one, 3);
    double x1[2] = {-1, 0}, y1[2] = {0, 0}, t1[4] = {1, 0, 1, 0};
    size_t shape1[1] = {1};
    ds = make_data(2, 1, shape1, x1, 1, y1);
    assert_int_equal(basin_count_regions(net, ds, t1, &regions), BASIN_OK);
    assert_int_equal(regions, 1);
    t1[1] = 0.5; /* the kink moves to x = −0.5, between the samples: two regions */
    assert_int_equal(basin_count_regions(net, ds, t1, &regions), BASIN_OK);
    assert_int_equal(regions, 2);
    basin_dataset_free(ds);
    basin_net_free(net);
    /* A net with no nonlinearity has one region. */
    const basin_layer_spec lin[] = {dense(2, 1), act(BASIN_ACT_IDENTITY, 0, 0), dense(1, 1)};
    net = make_net(1, 1, 0, 0, lin, 3);
    ds = v_data();
    double t2[7] = {1, -1, 0, 0, 1, 1, 0};
    assert_int_equal(basin_count_regions(net, ds, t2, &regions), BASIN_OK);
    assert_int_equal(regions, 1);
    basin_dataset_free(ds);
    basin_net_free(net);
}

/* ---- argument errors ---- */

static void test_errors(void **state)
{
    (void)state;
    const basin_layer_spec layers[] = {dense(2, 1), act(BASIN_ACT_RELU, 0, 0), dense(1, 1)};
    basin_net *net = make_net(1, 1, 0, 0, layers, 3);
    basin_dataset *ds = v_data();
    basin_loss loss = {BASIN_LOSS_SQUARED, 1.0};
    double t[14] = {1, -1, 0, 0, 1, 1, 0, 1, -1, 0, 0, 1, 1, 0}, out[7];
    assert_int_equal(basin_normalize(NULL, t, out), BASIN_EINVAL);
    assert_int_equal(basin_normalize(net, NULL, out), BASIN_EINVAL);
    assert_int_equal(basin_align(net, t, NULL, out, NULL), BASIN_EINVAL);
    basin_comparison *c = (basin_comparison *)1;
    basin_compare_opts o;
    basin_compare_defaults(&o);
    o.path_points = 1;
    assert_int_equal(basin_compare(net, ds, &loss, t, t + 7, &o, &c), BASIN_EINVAL);
    assert_null(c);
    basin_loss ce = {BASIN_LOSS_CROSS_ENTROPY, 1.0}; /* needs ≥ 2 outputs */
    assert_int_equal(basin_compare(net, ds, &ce, t, t + 7, NULL, &c), BASIN_EINVAL);
    size_t shape2[1] = {2};
    double x2[2] = {0, 0}, y2[1] = {0};
    basin_dataset *wrong = make_data(1, 1, shape2, x2, 1, y2);
    assert_int_equal(basin_compare(net, wrong, &loss, t, t + 7, NULL, &c), BASIN_EINVAL);
    basin_clustering *cl = (basin_clustering *)1;
    assert_int_equal(basin_cluster(net, wrong, &loss, 2, t, NULL, NULL, &cl), BASIN_EINVAL);
    assert_null(cl);
    basin_cluster_opts co;
    basin_cluster_defaults(&co);
    co.risk_tol = -1;
    assert_int_equal(basin_cluster(net, ds, &loss, 2, t, NULL, &co, &cl), BASIN_EINVAL);
    double risks[2] = {0, NAN};
    assert_int_equal(basin_cluster(net, ds, &loss, 2, t, risks, NULL, &cl), BASIN_EINVAL);
    t[3] = INFINITY;
    assert_int_equal(basin_cluster(net, ds, &loss, 2, t, NULL, NULL, &cl), BASIN_EINVAL);
    size_t regions;
    assert_int_equal(basin_count_regions(net, wrong, t, &regions), BASIN_EINVAL);
    basin_dataset_free(wrong);
    basin_dataset_free(ds);
    basin_net_free(net);
}

/* ---- allocation failures: every path returns BASIN_ENOMEM and frees everything ---- */

typedef struct alloc_case {
    const basin_net *net;
    const basin_dataset *ds;
    const double *thetas; /* 3 points */
} alloc_case;

static int run_compare(void *arg)
{
    const alloc_case *a = arg;
    basin_loss loss = {BASIN_LOSS_SQUARED, 1.0};
    basin_compare_opts o;
    basin_compare_defaults(&o);
    o.unaligned_path = 1;
    o.path_points = 5;
    basin_comparison *c = NULL;
    size_t P = basin_net_param_count(a->net);
    int rc = basin_compare(a->net, a->ds, &loss, a->thetas, a->thetas + P, &o, &c);
    if (rc == BASIN_OK && !c)
        rc = BASIN_EINVAL;
    basin_comparison_free(c);
    return rc;
}

static int run_cluster(void *arg)
{
    const alloc_case *a = arg;
    basin_loss loss = {BASIN_LOSS_SQUARED, 1.0};
    basin_clustering *cl = NULL;
    int rc = basin_cluster(a->net, a->ds, &loss, 3, a->thetas, NULL, NULL, &cl);
    if (rc == BASIN_OK && (!cl || cl->n_basins == 0))
        rc = BASIN_EINVAL;
    basin_clustering_free(cl);
    return rc;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    const basin_layer_spec layers[] = {dense(3, 1), act(BASIN_ACT_RELU, 0, 0), dense(2, 1),
                                       act(BASIN_ACT_RELU, 0, 0), dense(1, 1)};
    basin_net *net = make_net(1, 1, 0, 0, layers, 5);
    basin_dataset *ds = v_data();
    size_t P = basin_net_param_count(net);
    double *thetas = alloc_doubles(3 * P);
    basin_rng rng;
    basin_rng_init(&rng, 10, 0);
    fill_normal(&rng, thetas, 3 * P, 1.0);
    alloc_case ac = {net, ds, thetas};
    failing_alloc_report rep;
    assert_true(failing_alloc_sweep(run_compare, &ac, FAILING_ALLOC_FROM_N, 0, &rep));
    assert_true(rep.runs > 5);
    assert_true(failing_alloc_sweep(run_compare, &ac, FAILING_ALLOC_ONLY_N, 0, &rep));
    assert_true(failing_alloc_sweep(run_cluster, &ac, FAILING_ALLOC_FROM_N, 0, &rep));
    assert_true(rep.runs > 5);
    assert_true(failing_alloc_sweep(run_cluster, &ac, FAILING_ALLOC_ONLY_N, 0, &rep));
    free(thetas);
    basin_dataset_free(ds);
    basin_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_permuted_rescaled),
        cmocka_unit_test(test_cnn_permuted_rescaled),
        cmocka_unit_test(test_dense_variants),
        cmocka_unit_test(test_conv_variants),
        cmocka_unit_test(test_no_slots),
        cmocka_unit_test(test_single_slot_optimal),
        cmocka_unit_test(test_two_minima_1d),
        cmocka_unit_test(test_cluster_copies),
        cmocka_unit_test(test_different_levels),
        cmocka_unit_test(test_pattern_agreement_by_hand),
        cmocka_unit_test(test_regions_maxpool),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
