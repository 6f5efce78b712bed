/* Tests of the escape probes run in the lanes of the lane kernel (certify_probe.c): for nets the
 * lane kernel takes, basin_certify advances up to 8 probe descents in lock-step. The reference is
 * the sequential path (every probe on its own through the objective, basin__certify_ex with
 * use_lanes = 0; this also switches off polish's direct kernel calls); both must give the same
 * certificate bit for bit — probe counts, best risks, the witness point and its risk, label,
 * decider and reason — on random points, for Armijo and fixed-step descent, full and partial lane
 * batches (K = 8, 11, 5, 1), ReLU and leaky slopes, weight decay, probes that diverge to non-finite
 * values, and zero or one descent step. The reported witness is moreover checked against its risk
 * recomputed here through the objective, independently of either path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/certify.h"
#include "basin/data.h"
#include "basin/loss.h"
#include "basin/net.h"
#include "basin/objective.h"
#include "basin/rng.h"
#include "basin/status.h"
#include "certify_int.h"
#include "failing_alloc.h"

/* A 2-h1-h2-1 net with activations of negative slope s_neg (0: ReLU). */
static basin_net *make_mlp(size_t h1, size_t h2, double s_neg)
{
    basin_layer_spec L[5];
    memset(L, 0, sizeof L);
    size_t w[2] = {h1, h2};
    for (size_t i = 0; i < 2; i++) {
        L[2 * i].kind = BASIN_LAYER_DENSE;
        L[2 * i].units = w[i];
        L[2 * i].bias = 1;
        L[2 * i + 1].kind = BASIN_LAYER_ACTIVATION;
        L[2 * i + 1].act = s_neg > 0 ? BASIN_ACT_LEAKY_RELU : BASIN_ACT_RELU;
        L[2 * i + 1].slope = s_neg;
    }
    L[4].kind = BASIN_LAYER_DENSE;
    L[4].units = 1;
    L[4].bias = 1;
    basin_arch arch;
    memset(&arch, 0, sizeof arch);
    arch.in_rank = 1;
    arch.in_shape[0] = 2;
    arch.n_layers = 5;
    arch.layers = L;
    basin_net *net = NULL;
    assert_int_equal(basin_net_create(&arch, &net, NULL), BASIN_OK);
    return net;
}

static basin_dataset *moons(size_t n)
{
    basin_generator_spec g;
    memset(&g, 0, sizeof g);
    g.kind = BASIN_GEN_TWO_MOONS;
    g.n = n;
    g.noise = 0.1;
    g.seed = 3;
    basin_dataset *ds = NULL;
    assert_int_equal(basin_data_generate(&g, &ds), BASIN_OK);
    return ds;
}

static basin_loss squared(void)
{
    basin_loss l;
    memset(&l, 0, sizeof l);
    l.kind = BASIN_LOSS_SQUARED;
    l.huber_delta = 1.0;
    return l;
}

/* Options under which the probes always run: every point counts as stationary and curvature
 * never decides. */
static void probe_opts(basin_certify_opts *o, size_t K, size_t steps, double lr)
{
    basin_certify_defaults(o);
    o->polish = 0;
    o->grad_tol = 1e6;
    o->curv_tol = 1e300;
    o->dense_max_params = 0;
    o->lanczos_max_iter = 4;
    o->probes = K;
    o->probe_steps = steps;
    o->probe_lr = lr;
    o->seed = 11;
}

static void random_theta(double *th, size_t dim, uint64_t seed, double scale)
{
    basin_rng r;
    basin_rng_init(&r, seed, 0);
    for (size_t i = 0; i < dim; i++)
        th[i] = scale * basin_rng_normal(&r);
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Certify theta both ways; assert the two certificates agree bit for bit; return the lanes one
 * (the caller frees it). */
static basin_certificate *both_ways(const basin_net *net, const basin_dataset *ds,
                                    const basin_loss *loss, double l2, const double *theta,
                                    const basin_certify_opts *o)
{
    size_t dim = basin_net_param_count(net);
    double *t0 = basin_alloc_array(dim, sizeof *t0), *t1 = basin_alloc_array(dim, sizeof *t1);
    assert_non_null(t0);
    assert_non_null(t1);
    memcpy(t0, theta, dim * sizeof *t0);
    memcpy(t1, theta, dim * sizeof *t1);
    basin_certificate *seq = NULL, *lan = NULL;
    assert_int_equal(basin__certify_ex(net, ds, loss, l2, t0, o, 0, &seq), BASIN_OK);
    assert_int_equal(basin__certify_ex(net, ds, loss, l2, t1, o, 1, &lan), BASIN_OK);
    assert_int_equal(lan->n_probe_levels, seq->n_probe_levels);
    for (size_t r = 0; r < seq->n_probe_levels; r++) {
        const basin_cert_probe_level *a = &seq->probes[r], *b = &lan->probes[r];
        assert_int_equal(a->tried, o->probes);
        assert_int_equal(b->tried, a->tried);
        assert_int_equal(b->escaped, a->escaped);
        assert_true(same_bits(b->best_risk, a->best_risk));
        assert_true(same_bits(b->radius_abs, a->radius_abs));
    }
    /* polish (the lanes path calls the kernel directly): same outcome, same bits */
    assert_int_equal(lan->polish.ran, seq->polish.ran);
    assert_int_equal(lan->polish.accepted, seq->polish.accepted);
    assert_string_equal(lan->polish.method, seq->polish.method);
    assert_int_equal(lan->polish.iterations, seq->polish.iterations);
    assert_true(same_bits(lan->polish.moved, seq->polish.moved));
    assert_true(same_bits(lan->polish.risk_after, seq->polish.risk_after));
    assert_true(same_bits(lan->polish.grad_after, seq->polish.grad_after));
    assert_memory_equal(t1, t0, dim * sizeof(double)); /* the judged (maybe polished) point */
    assert_true(same_bits(lan->risk, seq->risk));
    assert_true(same_bits(lan->grad_norm, seq->grad_norm));
    assert_int_equal(lan->label, seq->label);
    assert_int_equal(lan->decided_by, seq->decided_by);
    assert_string_equal(lan->reason, seq->reason);
    assert_int_equal(lan->contradiction, seq->contradiction);
    assert_true(same_bits(lan->witness_risk, seq->witness_risk));
    assert_true(same_bits(lan->witness_radius, seq->witness_radius));
    assert_int_equal(lan->witness != NULL, seq->witness != NULL);
    if (seq->witness)
        assert_memory_equal(lan->witness, seq->witness, dim * sizeof(double));
    basin_certificate_free(seq);
    basin_free(t0);
    basin_free(t1);
    return lan;
}

/* R(w) + (l2/2)‖w‖² through the objective, as an independent check of a reported witness. */
static double risk_at(const basin_net *net, const basin_dataset *ds, const basin_loss *loss,
                      double l2, const double *w)
{
    basin_objective obj;
    double f = NAN;
    assert_int_equal(basin_objective_empirical(net, ds, loss, l2, 0, &obj), BASIN_OK);
    assert_int_equal(obj.value_grad(obj.ctx, w, NULL, 0, &f, NULL), BASIN_OK);
    basin_objective_release(&obj);
    return f;
}

static void check_witness(const basin_net *net, const basin_dataset *ds, const basin_loss *loss,
                          double l2, const basin_certificate *c)
{
    assert_non_null(c->witness);
    double f = risk_at(net, ds, loss, l2, c->witness);
    assert_true(same_bits(f, c->witness_risk));
    assert_true(f < c->risk - 1e-9 * fmax(1.0, c->risk));
}

/* Armijo descent, one full batch of 8 per level, ReLU: random points are not minima, so the
 * smallest radius escapes and the witness is a true lower point. */
/* Allocation calls of one basin__certify_ex (nothing fails). */
static size_t alloc_calls(const basin_net *net, const basin_dataset *ds, const basin_loss *loss,
                          double *theta, const basin_certify_opts *o, int lanes)
{
    failing_alloc fa;
    basin_certificate *c = NULL;
    failing_alloc_install(&fa, 0, FAILING_ALLOC_FROM_N);
    int rc = basin__certify_ex(net, ds, loss, 0.0, theta, o, lanes, &c);
    basin_certificate_free(c);
    failing_alloc_remove();
    assert_int_equal(rc, BASIN_OK);
    assert_int_equal(fa.live, 0);
    return fa.calls;
}

static void test_armijo_full_batch(void **state)
{
    (void)state;
    basin_net *net = make_mlp(5, 4, 0.0);
    basin_dataset *ds = moons(37); /* not a multiple of the kernel's sample block */
    basin_loss loss = squared();
    size_t dim = basin_net_param_count(net);
    double th[64];
    assert_true(dim <= 64);
    basin_certify_opts o;
    probe_opts(&o, 8, 40, 0.0);
    int escaped = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        random_theta(th, dim, seed, 0.7);
        basin_certificate *c = both_ways(net, ds, &loss, 0.0, th, &o);
        if (c->witness) {
            check_witness(net, ds, &loss, 0.0, c);
            escaped++;
        }
        basin_certificate_free(c);
    }
    assert_true(escaped > 0);
    /* the lanes path was really taken: its batch buffers are two more allocations */
    size_t seq = alloc_calls(net, ds, &loss, th, &o, 0),
           lan = alloc_calls(net, ds, &loss, th, &o, 1);
    assert_int_equal(lan, seq + 2);
    basin_dataset_free(ds);
    basin_net_free(net);
}

/* K = 11 (a full batch and a partial one) and K = 1, leaky slopes, weight decay. */
static void test_partial_batches_leaky_l2(void **state)
{
    (void)state;
    basin_net *net = make_mlp(7, 3, 0.1);
    basin_dataset *ds = moons(29);
    basin_loss loss = squared();
    size_t dim = basin_net_param_count(net);
    double th[64];
    assert_true(dim <= 64);
    const size_t Ks[] = {11, 1, 9};
    for (size_t i = 0; i < 3; i++) {
        basin_certify_opts o;
        probe_opts(&o, Ks[i], 25, 0.0);
        random_theta(th, dim, 20 + i, 0.6);
        basin_certificate *c = both_ways(net, ds, &loss, 1e-3, th, &o);
        assert_false(c->region.ran); /* l2 ≠ 0: bounds off, the probes decide */
        if (c->witness)
            check_witness(net, ds, &loss, 1e-3, c);
        basin_certificate_free(c);
    }
    basin_dataset_free(ds);
    basin_net_free(net);
}

/* Fixed-step descent (probe_lr > 0), 5 probes per level. */
static void test_fixed_step(void **state)
{
    (void)state;
    basin_net *net = make_mlp(6, 6, 0.0);
    basin_dataset *ds = moons(50);
    basin_loss loss = squared();
    size_t dim = basin_net_param_count(net);
    double th[128];
    assert_true(dim <= 128);
    basin_certify_opts o;
    probe_opts(&o, 5, 30, 0.05);
    random_theta(th, dim, 5, 0.5);
    basin_certificate *c = both_ways(net, ds, &loss, 0.0, th, &o);
    if (c->witness)
        check_witness(net, ds, &loss, 0.0, c);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

/* A huge fixed step sends the probes to non-finite values: they count as tried, never as
 * escaped, and the best risk of a level where all diverged stays INFINITY. */
static void test_divergent(void **state)
{
    (void)state;
    basin_net *net = make_mlp(4, 4, 0.0);
    basin_dataset *ds = moons(20);
    basin_loss loss = squared();
    size_t dim = basin_net_param_count(net);
    double th[64];
    random_theta(th, dim, 9, 1.0);
    basin_certify_opts o;
    probe_opts(&o, 8, 60, 1e150);
    basin_certificate *c = both_ways(net, ds, &loss, 0.0, th, &o);
    int nonfinite = 0;
    for (size_t r = 0; r < c->n_probe_levels; r++)
        nonfinite += c->probes[r].escaped < c->probes[r].tried && isinf(c->probes[r].best_risk);
    assert_true(nonfinite > 0);
    basin_certificate_free(c);
    basin_dataset_free(ds);
    basin_net_free(net);
}

/* No descent step at all, and exactly one. */
static void test_zero_and_one_step(void **state)
{
    (void)state;
    basin_net *net = make_mlp(3, 5, 0.0);
    basin_dataset *ds = moons(17);
    basin_loss loss = squared();
    size_t dim = basin_net_param_count(net);
    double th[64];
    random_theta(th, dim, 13, 0.8);
    for (size_t steps = 0; steps < 2; steps++)
        for (int armijo = 0; armijo < 2; armijo++) {
            basin_certify_opts o;
            probe_opts(&o, 8, steps, armijo ? 0.0 : 0.1);
            basin_certificate *c = both_ways(net, ds, &loss, 0.0, th, &o);
            basin_certificate_free(c);
        }
    basin_dataset_free(ds);
    basin_net_free(net);
}

/* The default options (polish by L-BFGS, curvature, probes): the whole certificate agrees,
 * polished point included. */
static void test_default_pipeline(void **state)
{
    (void)state;
    basin_net *net = make_mlp(6, 5, 0.0);
    basin_dataset *ds = moons(40);
    basin_loss loss = squared();
    size_t dim = basin_net_param_count(net);
    double th[128];
    basin_certify_opts o;
    basin_certify_defaults(&o);
    o.grad_tol = 1e6; /* judged as stationary so that curvature and probes run */
    o.probe_steps = 20;
    int probed = 0, polished = 0;
    for (uint64_t seed = 17; seed < 21; seed++) {
        random_theta(th, dim, seed, 0.6);
        basin_certificate *c = both_ways(net, ds, &loss, 0.0, th, &o);
        probed += c->n_probe_levels > 0;
        polished += c->polish.accepted && strcmp(c->polish.method, "lbfgs") == 0 &&
                    c->polish.iterations > 10;
        basin_certificate_free(c);
    }
    assert_true(probed > 0);
    assert_true(polished > 0); /* L-BFGS ran through both evaluation paths and was kept */
    basin_dataset_free(ds);
    basin_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_armijo_full_batch), cmocka_unit_test(test_partial_batches_leaky_l2),
        cmocka_unit_test(test_fixed_step),        cmocka_unit_test(test_divergent),
        cmocka_unit_test(test_zero_and_one_step), cmocka_unit_test(test_default_pipeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
