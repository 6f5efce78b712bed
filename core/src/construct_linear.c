/* The linear-region minimum (construct.h): a parameter point of a PL network at which every
 * sample sits strictly inside the all-active region and the network equals its deep linear
 * counterpart at that counterpart's minimum (Yun, Sra & Jadbabaie, ICLR 2019, Thm. 1 for one
 * hidden layer; Liu, arXiv 2102.13233, for deep nets). For dense nets it is a certified local
 * minimum with risk R_lin, spurious when anything beats R_lin.
 *
 * DESIGN
 * (a) The linear net: the same layers with every activation replaced by the identity.
 *   - Dense nets (dense/activation/flatten only) whose hidden widths are all ≥ k = out_dim and
 *     that have a bias somewhere: the best affine fit (A, b) of the dataset (linfit.h) is written
 *     down. Layer 1 carries A x in its first k units (the others 0), later layers pass those k
 *     values through identity blocks, the first layer with a bias adds b. The linear net then
 *     computes A x + b exactly, so its risk is R_lin (exact for the losses linfit solves exactly).
 *   - Otherwise (conv/pool nets, bottlenecks narrower than k, no bias, or force_train) the linear
 *     net is trained with basin_train_restart. Default spec: heavy-ball momentum μ = 0.9 with step
 *     1/λ_max, λ_max the largest Hessian eigenvalue at the start point (Lanczos on exact
 *     Hessian-vector products), He-normal start, grad_tol 1e-10, 50000 steps; a divergence
 *     restarts from the same start point with the step divided by 4 (max_attempts times). Heavy
 *     ball rather than plain GD: the deep linear landscape is ill-conditioned along the
 *     rescaling directions and momentum takes ~√κ instead of κ steps there. The reached risk is
 *     reported beside R_lin: weight sharing (conv) or a bottleneck may keep it above R_lin.
 * (b) The lift, layer by layer with exact bookkeeping. Invariant at every layer input:
 *       a_PL(x) = s · a_lin(x) + o         for every sample x,
 *   s > 0 a scalar and o a sample-independent vector (s = 1, o = 0 at the input). At a
 *   parametrised layer (W, b): W' = W/s makes W' a_PL = W a_lin + q with q = W' o (the layer's
 *   linear part applied to o, zero padding included), and b' = b + β gives
 *   z_PL = z_lin + q + β: the new offset is q + β and s = 1. β is per output unit (dense) or per
 *   channel (conv). If the next layer that is not an avgpool/flatten/identity is a PL
 *   activation, β_f = max(−mean_f q, margin − min over samples and over channel f's features of
 *   (z_lin + r)) where r is q carried through the avgpool/flatten layers in between (both linear
 *   and sample-independent, so mins shift by exactly r); otherwise β_f = −mean_f q, which
 *   cancels q exactly for dense layers and for convs whose q is constant per channel. A PL
 *   activation then sees inputs ≥ margin > 0 on every sample, so it multiplies by s_pos:
 *   s ← s·s_pos, o ← s_pos·o. Avgpool maps o → pool(o); flatten keeps it. At the end o must be
 *   0 (to rounding): that fails only when the last parametrised layer is a zero-padded conv fed a
 *   shifted input (its border outputs see the padding zeros instead of the shift, which no
 *   per-channel bias can cancel) or has no bias; both are reported as BASIN_ENOTSUP. Padded
 *   convs elsewhere are exact: their position-dependent offset is simply carried on.
 *   The offsets never depend on the sample, so the PL net equals the linear net on every sample
 *   in exact arithmetic; it is verified by evaluating both (max |Δf| ≤ 1e-9·max(1, max|f_lin|)).
 * Minimality: inside the all-active region the PL net is a linear net with the same function
 * class (slopes absorbed into the next layer), so a global minimum of the linear net's risk (the
 * dense case, and any point reaching R_lin) is a local minimum of the PL net. A merely local
 * minimum of a trained conv linear net carries over up to the reparametrisation β, which keeps
 * the function but not necessarily local minimality; certify the result. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/construct.h"
#include "basin/hessian.h"
#include "basin/linfit.h"
#include "basin/objective.h"
#include "basin/rng.h"
#include "basin/status.h"
#include "construct_int.h"

#define LR_CHUNK 256        /* samples per forward pass */
#define LR_VERIFY_TOL 1e-9  /* relative output agreement PL vs linear */
#define LR_OFFSET_TOL 1e-10 /* relative leftover offset at the output */
#define NO_LAYER ((size_t)-1)

#define SAY(rep, rc, ...)                                                                          \
    basin__construct_say((rep)->message, sizeof((rep)->message), rc, __VA_ARGS__)

void basin_linear_region_defaults(basin_linear_region_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->margin = 0.0;
    opts->margin_rel = 1.0;
    opts->max_attempts = 6;
}

static int is_param(basin_layer_kind k)
{
    return k == BASIN_LAYER_DENSE || k == BASIN_LAYER_CONV2D;
}

static int lifted(const basin_layer_spec *s)
{
    return s->kind == BASIN_LAYER_ACTIVATION && s->act != BASIN_ACT_IDENTITY;
}

/* The structural rules of construct.h, on the normalised specs of the PL net. */
static int check_arch(const basin_net *net, basin_linear_region_report *rep)
{
    size_t n = basin_net_layer_count(net), last_param = NO_LAYER, open_act = NO_LAYER;
    for (size_t i = 0; i < n; i++) {
        const basin_layer_spec *s = basin_net_layer_spec(net, i);
        rep->layer = (long)i;
        switch (s->kind) {
        case BASIN_LAYER_MAXPOOL:
            return SAY(rep, BASIN_ENOTSUP,
                       "layer %zu is a maxpool: its switches are not constant under the lift "
                       "(use avgpool)",
                       i);
        case BASIN_LAYER_SUM:
            return SAY(rep, BASIN_ENOTSUP, "layer %zu is a sum layer: not supported here", i);
        case BASIN_LAYER_DENSE:
        case BASIN_LAYER_CONV2D:
            last_param = i;
            open_act = NO_LAYER;
            break;
        case BASIN_LAYER_ACTIVATION:
            if (!(s->s_pos > 0))
                return SAY(rep, BASIN_ENOTSUP,
                           "activation layer %zu has s_pos = %g: the all-active region needs "
                           "s_pos > 0",
                           i, s->s_pos);
            if (!lifted(s))
                break;
            if (last_param == NO_LAYER)
                return SAY(rep, BASIN_ENOTSUP,
                           "activation layer %zu acts on the input: no bias below it can lift "
                           "its pre-activations",
                           i);
            if (open_act != NO_LAYER)
                return SAY(rep, BASIN_ENOTSUP,
                           "activation layers %zu and %zu have no parametrised layer between "
                           "them",
                           open_act, i);
            open_act = i;
            break;
        default:
            break;
        }
    }
    if (open_act != NO_LAYER) {
        rep->layer = (long)open_act;
        return SAY(rep, BASIN_ENOTSUP,
                   "the last activation (layer %zu) must be followed by a parametrised layer: "
                   "the output itself cannot be shifted",
                   open_act);
    }
    rep->layer = -1;
    return BASIN_OK;
}

/* The identity-activation copy of the PL net. */
static int make_linear_net(const basin_net *pl, const basin_arch *arch, basin_net **out,
                           basin_linear_region_report *rep)
{
    size_t n = basin_net_layer_count(pl);
    basin_layer_spec *specs = basin_alloc_array(n, sizeof *specs);
    basin_net_error err;
    int rc = BASIN_ENOMEM;
    if (!specs)
        goto done;
    for (size_t i = 0; i < n; i++) {
        specs[i] = *basin_net_layer_spec(pl, i);
        if (specs[i].kind == BASIN_LAYER_ACTIVATION)
            specs[i].act = BASIN_ACT_IDENTITY;
    }
    basin_arch lin = *arch;
    lin.layers = specs;
    rc = basin_net_create(&lin, out, &err);
    if (rc)
        SAY(rep, rc, "identity-activation copy rejected: %s", err.message);
done:
    basin_free(specs);
    return rc;
}

static int check_data(const basin_net *net, const basin_dataset *ds, const basin_loss *loss,
                      basin_linear_region_report *rep)
{
    size_t k = basin_net_out_dim(net);
    if (basin_loss_check(loss, k) != BASIN_OK)
        return SAY(rep, BASIN_EINVAL, "loss %s does not suit %zu outputs",
                   basin_loss_name(loss->kind), k);
    if (ds->n == 0 || !ds->x || !ds->y)
        return SAY(rep, BASIN_EINVAL, "the dataset is empty");
    if (ds->in_dim != basin_net_in_dim(net))
        return SAY(rep, BASIN_EINVAL, "dataset inputs have %zu values, the net expects %zu",
                   ds->in_dim, basin_net_in_dim(net));
    if (ds->y_dim != basin_loss_target_dim(loss, k))
        return SAY(rep, BASIN_EINVAL, "dataset targets have %zu values, the loss expects %zu",
                   ds->y_dim, basin_loss_target_dim(loss, k));
    return BASIN_OK;
}

/* Dense nets whose hidden widths are all ≥ k and that have a bias: the affine fit can be
 * written down. */
static int affine_writable(const basin_net *net)
{
    size_t n = basin_net_layer_count(net), k = basin_net_out_dim(net), last = NO_LAYER;
    int has_bias = 0;
    for (size_t i = 0; i < n; i++) {
        const basin_layer_spec *s = basin_net_layer_spec(net, i);
        if (s->kind == BASIN_LAYER_CONV2D || s->kind == BASIN_LAYER_AVGPOOL)
            return 0;
        if (s->kind == BASIN_LAYER_DENSE) {
            last = i;
            has_bias |= s->bias;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const basin_layer_spec *s = basin_net_layer_spec(net, i);
        if (s->kind == BASIN_LAYER_DENSE && i != last && s->units < k)
            return 0;
    }
    return has_bias && last != NO_LAYER;
}

/* θ of the linear net computing A x + b (coef: A row-major k × d, then b). */
static void write_affine(const basin_net *net, const double *coef, double *theta)
{
    size_t n = basin_net_layer_count(net), k = basin_net_out_dim(net), d = basin_net_in_dim(net);
    int first = 1, b_done = 0;
    for (size_t i = 0; i < n; i++) {
        basin_layer_info info;
        basin_net_layer_info(net, i, &info);
        if (info.kind != BASIN_LAYER_DENSE)
            continue;
        double *W = theta + info.param_offset;
        memset(W, 0, (info.weight_count + info.bias_count) * sizeof *W);
        for (size_t r = 0; r < k; r++) {
            if (first)
                memcpy(W + r * info.in_dim, coef + r * d, d * sizeof *W);
            else
                W[r * info.in_dim + r] = 1.0;
        }
        if (info.bias_count && !b_done) {
            memcpy(W + info.weight_count, coef + k * d, k * sizeof *W);
            b_done = 1;
        }
        first = 0;
    }
}

typedef struct hvp_ctx {
    const basin_objective *obj;
    const double *theta;
} hvp_ctx;

static int hvp_matvec(void *ctx, const double *v, double *out)
{
    hvp_ctx *h = ctx;
    return h->obj->hvp(h->obj->ctx, h->theta, v, out);
}

/* The default step: 1/λ_max at the start point (a safe bound for the first steps). */
static int default_lr(const basin_objective *obj, const double *theta0, double *lr)
{
    basin_lanczos_opts lo;
    basin_lanczos_result res;
    hvp_ctx h = {obj, theta0};
    memset(&lo, 0, sizeof lo);
    lo.max_iter = obj->dim < 60 ? obj->dim : 60;
    lo.tol = 1e-3;
    int rc = basin_lanczos_extremes(obj->dim, hvp_matvec, &h, &lo, &res, NULL, NULL);
    if (rc)
        return rc;
    double lam = fmax(fabs(res.lambda_max), fabs(res.lambda_min));
    *lr = lam > 0 && isfinite(lam) ? 1.0 / lam : 0.01;
    return BASIN_OK;
}

static int train_linear(const basin_net *lin, const basin_dataset *ds, const basin_loss *loss,
                        const basin_linear_region_opts *opts, double *theta,
                        basin_linear_region_report *rep)
{
    basin_objective obj;
    basin_train_spec spec;
    basin_run_result res;
    size_t dim = basin_net_param_count(lin);
    double *theta0 = basin_alloc_array(dim ? dim : 1, sizeof *theta0);
    int rc = BASIN_ENOMEM;
    memset(&obj, 0, sizeof obj);
    if (!theta0)
        goto done;
    if ((rc = basin_objective_empirical(lin, ds, loss, 0.0, LR_CHUNK, &obj)) != BASIN_OK)
        goto done;
    if (opts->train) {
        spec = *opts->train;
    } else {
        basin_train_defaults(&spec);
        basin_optim_defaults(BASIN_OPT_MOMENTUM, 0.01, &spec.optim);
        spec.seed = opts->seed;
        spec.max_steps = 50000;
        spec.grad_tol = 1e-10;
        spec.trajectory_every = 0;
    }
    if (opts->start) {
        memcpy(theta0, opts->start, dim * sizeof *theta0);
    } else if (spec.init.kind == BASIN_INIT_GIVEN && spec.init.given) {
        if (spec.init.given_len != dim) {
            rc = SAY(rep, BASIN_EINVAL, "train.init.given has %zu values, the net %zu",
                     spec.init.given_len, dim);
            goto done;
        }
        memcpy(theta0, spec.init.given, dim * sizeof *theta0);
    } else if (spec.init.kind == BASIN_INIT_GIVEN) {
        rc = SAY(rep, BASIN_EINVAL, "init 'given' needs a start vector (opts.start)");
        goto done;
    } else {
        basin_rng rng;
        basin_rng_init(&rng, spec.seed, 0);
        if ((rc = basin_net_init_params(lin, &spec.init, &rng, theta0)) != BASIN_OK) {
            SAY(rep, rc, "initialisation failed");
            goto done;
        }
    }
    if (!opts->train && (rc = default_lr(&obj, theta0, &spec.optim.lr)) != BASIN_OK) {
        SAY(rep, rc, "Lanczos on the start point's Hessian failed");
        goto done;
    }
    spec.init.kind = BASIN_INIT_GIVEN;
    spec.init.given = theta0;
    spec.init.given_len = dim;
    size_t attempts = opts->max_attempts ? opts->max_attempts : 1;
    for (size_t a = 0; a < attempts; a++) {
        rep->train_attempts = a + 1;
        rep->train_lr = spec.optim.lr;
        if ((rc = basin_train_restart(&obj, lin, &spec, 0, theta, NULL, &res)) != BASIN_OK) {
            SAY(rep, rc, "training the linear net failed: %s", basin_strerror(rc));
            goto done;
        }
        if (res.reason != BASIN_STOP_DIVERGED)
            break;
        spec.optim.lr /= 4.0;
    }
    rep->train_steps = res.steps;
    rep->stop_reason = res.reason;
    if (res.reason == BASIN_STOP_DIVERGED || !isfinite(res.final_risk)) {
        rc = SAY(rep, BASIN_EDIVERGED, "training the linear net diverged %zu times (last step %g)",
                 rep->train_attempts, rep->train_lr);
        goto done;
    }
    rc = BASIN_OK;
done:
    basin_objective_release(&obj);
    basin_free(theta0);
    return rc;
}

/* ---- single-sample linear parts of layers, for the offset bookkeeping ---- */

static void dense_one(const basin_layer_info *li, const double *W, const double *x, double *z)
{
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)li->out_dim, (int)li->in_dim, 1.0, W,
                (int)li->in_dim, x, 1, 0.0, z, 1);
}

/* Convolution with zero padding, stride and square kernel, no bias: net.h's conv2d. */
static void conv_one(const basin_layer_info *li, const basin_layer_spec *S, const double *W,
                     const double *x, double *z)
{
    size_t C = li->in_shape[0], H = li->in_shape[1], Wd = li->in_shape[2];
    size_t F = li->out_shape[0], OH = li->out_shape[1], OW = li->out_shape[2], k = S->kernel;
    for (size_t f = 0; f < F; f++)
        for (size_t oy = 0; oy < OH; oy++)
            for (size_t ox = 0; ox < OW; ox++) {
                double acc = 0.0;
                for (size_t c = 0; c < C; c++)
                    for (size_t ky = 0; ky < k; ky++) {
                        size_t yy = oy * S->stride + ky;
                        if (yy < li->pad_top || yy - li->pad_top >= H)
                            continue;
                        for (size_t kx = 0; kx < k; kx++) {
                            size_t xx = ox * S->stride + kx;
                            if (xx < li->pad_left || xx - li->pad_left >= Wd)
                                continue;
                            acc += W[((f * C + c) * k + ky) * k + kx] *
                                   x[(c * H + (yy - li->pad_top)) * Wd + (xx - li->pad_left)];
                        }
                    }
                z[(f * OH + oy) * OW + ox] = acc;
            }
}

static void pool_one(const basin_layer_info *li, size_t p, const double *x, double *z)
{
    size_t C = li->in_shape[0], H = li->in_shape[1], W = li->in_shape[2];
    size_t OH = li->out_shape[1], OW = li->out_shape[2];
    for (size_t c = 0; c < C; c++)
        for (size_t oy = 0; oy < OH; oy++)
            for (size_t ox = 0; ox < OW; ox++) {
                double acc = 0.0;
                for (size_t dy = 0; dy < p; dy++)
                    for (size_t dx = 0; dx < p; dx++)
                        acc += x[(c * H + oy * p + dy) * W + ox * p + dx];
                z[(c * OH + oy) * OW + ox] = acc / (double)(p * p);
            }
}

/* ---- the lift ---- */

typedef struct lift_ctx {
    const basin_net *net;
    double *theta;         /* transformed in place from θ_lin to θ_PL */
    const double *featmin; /* activation layer l: min over samples of the linear net's input */
    const size_t *fm_off;  /* per layer: offset into featmin */
    double margin, out_scale;
    double *o, *q, *r, *tmp, *beta; /* max_dim each */
    double s;
    int o_zero;
    size_t last_param;
    basin_linear_region_report *rep;
} lift_ctx;

/* The next layer above i that is neither avgpool, flatten nor an identity activation, if it is
 * a lifted activation; NO_LAYER otherwise. */
static size_t lift_target(const basin_net *net, size_t i)
{
    size_t n = basin_net_layer_count(net);
    for (size_t j = i + 1; j < n; j++) {
        const basin_layer_spec *s = basin_net_layer_spec(net, j);
        if (s->kind == BASIN_LAYER_AVGPOOL || s->kind == BASIN_LAYER_FLATTEN)
            continue;
        if (s->kind == BASIN_LAYER_ACTIVATION && !lifted(s))
            continue;
        return lifted(s) ? j : NO_LAYER;
    }
    return NO_LAYER;
}

/* r = q carried through layers i+1 .. l−1 (avgpool / flatten / identity). */
static void carry_offset(lift_ctx *L, size_t i, size_t l)
{
    basin_layer_info info;
    basin_net_layer_info(L->net, i, &info);
    memcpy(L->r, L->q, info.out_dim * sizeof *L->r);
    for (size_t j = i + 1; j < l; j++) {
        const basin_layer_spec *s = basin_net_layer_spec(L->net, j);
        if (s->kind != BASIN_LAYER_AVGPOOL)
            continue;
        basin_net_layer_info(L->net, j, &info);
        pool_one(&info, s->size, L->r, L->tmp);
        memcpy(L->r, L->tmp, info.out_dim * sizeof *L->r);
    }
}

/* β for a parametrised layer i with C channels of `per` features, q already computed. */
static int choose_beta(lift_ctx *L, size_t i, const basin_layer_info *info, size_t C, size_t per)
{
    int has_bias = info->bias_count > 0;
    for (size_t f = 0; f < C; f++) {
        double mean = 0.0;
        for (size_t u = 0; u < per; u++)
            mean += L->q[f * per + u];
        L->beta[f] = has_bias ? -mean / (double)per : 0.0;
    }
    size_t l = lift_target(L->net, i);
    if (l == NO_LAYER)
        return BASIN_OK;
    basin_layer_info li;
    basin_net_layer_info(L->net, l, &li);
    carry_offset(L, i, l);
    size_t per_l = li.in_dim / C;
    const double *fm = L->featmin + L->fm_off[l];
    for (size_t f = 0; f < C; f++) {
        double lo = INFINITY;
        for (size_t u = f * per_l; u < (f + 1) * per_l; u++)
            lo = fmin(lo, fm[u] + L->r[u]);
        double need = L->margin - lo;
        if (!has_bias && need > 0) {
            L->rep->layer = (long)i;
            return SAY(L->rep, BASIN_ENOTSUP,
                       "layer %zu has no bias, so the pre-activations of activation layer %zu "
                       "cannot be lifted to the margin",
                       i, l);
        }
        if (has_bias && need > L->beta[f]) {
            L->beta[f] = need;
            L->rep->n_shifted_units++;
        }
    }
    return BASIN_OK;
}

static int lift_param(lift_ctx *L, size_t i)
{
    basin_layer_info info;
    const basin_layer_spec *s = basin_net_layer_spec(L->net, i);
    basin_net_layer_info(L->net, i, &info);
    double *W = L->theta + info.param_offset, *bias = W + info.weight_count;
    if (L->s != 1.0)
        for (size_t k = 0; k < info.weight_count; k++)
            W[k] /= L->s;
    if (L->o_zero)
        memset(L->q, 0, info.out_dim * sizeof *L->q);
    else if (s->kind == BASIN_LAYER_DENSE)
        dense_one(&info, W, L->o, L->q);
    else
        conv_one(&info, s, W, L->o, L->q);
    size_t C = s->kind == BASIN_LAYER_DENSE ? s->units : s->filters, per = info.out_dim / C;
    int rc = choose_beta(L, i, &info, C, per);
    if (rc)
        return rc;
    L->o_zero = 1;
    for (size_t f = 0; f < C; f++) {
        if (info.bias_count)
            bias[f] += L->beta[f];
        for (size_t u = f * per; u < (f + 1) * per; u++) {
            L->o[u] = L->q[u] + L->beta[f];
            if (L->o[u] != 0.0)
                L->o_zero = 0;
        }
    }
    L->s = 1.0;
    L->last_param = i;
    return BASIN_OK;
}

static int lift(lift_ctx *L)
{
    size_t n = basin_net_layer_count(L->net), dim = basin_net_in_dim(L->net);
    L->s = 1.0;
    L->o_zero = 1;
    L->last_param = NO_LAYER;
    memset(L->o, 0, dim * sizeof *L->o);
    for (size_t i = 0; i < n; i++) {
        const basin_layer_spec *s = basin_net_layer_spec(L->net, i);
        basin_layer_info info;
        basin_net_layer_info(L->net, i, &info);
        if (is_param(s->kind)) {
            int rc = lift_param(L, i);
            if (rc)
                return rc;
        } else if (s->kind == BASIN_LAYER_AVGPOOL && !L->o_zero) {
            pool_one(&info, s->size, L->o, L->tmp);
            memcpy(L->o, L->tmp, info.out_dim * sizeof *L->o);
        } else if (lifted(s)) {
            L->rep->n_lifted_layers++;
            L->s *= s->s_pos;
            for (size_t u = 0; u < info.in_dim && !L->o_zero; u++)
                L->o[u] *= s->s_pos;
        }
        dim = info.out_dim;
    }
    double left = 0.0;
    for (size_t u = 0; u < dim && !L->o_zero; u++)
        left = fmax(left, fabs(L->o[u]));
    if (left > LR_OFFSET_TOL * L->out_scale) {
        const basin_layer_spec *s = basin_net_layer_spec(L->net, L->last_param);
        L->rep->layer = (long)L->last_param;
        if (s->kind == BASIN_LAYER_CONV2D && s->padding != BASIN_PAD_VALID)
            return SAY(L->rep, BASIN_ENOTSUP,
                       "the last conv (layer %zu) zero-pads a shifted input: its border outputs "
                       "differ from the interior by up to %g, which no per-channel bias can "
                       "cancel (use valid padding there)",
                       L->last_param, left);
        return SAY(L->rep, BASIN_ENOTSUP,
                   "layer %zu cannot absorb the lift (offset %g left at the output): it needs a "
                   "bias",
                   L->last_param, left);
    }
    return BASIN_OK;
}

/* ---- evaluation helpers ---- */

/* Per-feature minima over samples of every activation layer's input, and the outputs. */
static int scan_net(const basin_net *net, basin_net_ws *ws, const double *theta,
                    const basin_dataset *ds, const size_t *fm_off, double *featmin, double *out,
                    int only_lifted)
{
    size_t nl = basin_net_layer_count(net), din = ds->in_dim, dout = basin_net_out_dim(net);
    for (size_t start = 0; start < ds->n; start += LR_CHUNK) {
        size_t m = ds->n - start < LR_CHUNK ? ds->n - start : LR_CHUNK;
        int rc = basin_net_forward(net, ws, theta, ds->x + start * din, m, out + start * dout);
        if (rc)
            return rc;
        for (size_t l = 0; l < nl; l++) {
            const basin_layer_spec *s = basin_net_layer_spec(net, l);
            if (s->kind != BASIN_LAYER_ACTIVATION || (only_lifted && !lifted(s)))
                continue;
            const double *v;
            size_t rows, cols;
            if ((rc = basin_net_ws_layer_input(ws, l, &v, &rows, &cols)) != BASIN_OK)
                return rc;
            double *fm = featmin + fm_off[l];
            for (size_t r = 0; r < rows; r++)
                for (size_t u = 0; u < cols; u++)
                    fm[u] = fmin(fm[u], v[r * cols + u]);
        }
    }
    return BASIN_OK;
}

typedef struct lr_work {
    basin_net *pl, *lin;
    basin_net_ws *ws_pl, *ws_lin;
    double *theta, *theta_pl, *coef, *featmin, *out_lin, *out_pl, *grad, *buf;
    size_t *fm_off;
    size_t fm_total, max_dim; /* featmin length; largest layer input/output */
} lr_work;

static void work_release(lr_work *w)
{
    basin_net_ws_free(w->ws_pl);
    basin_net_ws_free(w->ws_lin);
    basin_net_free(w->pl);
    basin_net_free(w->lin);
    basin_free(w->theta);
    basin_free(w->theta_pl);
    basin_free(w->coef);
    basin_free(w->featmin);
    basin_free(w->out_lin);
    basin_free(w->out_pl);
    basin_free(w->grad);
    basin_free(w->buf);
    basin_free(w->fm_off);
}

static void reset_minima(lr_work *w)
{
    for (size_t u = 0; u < w->fm_total; u++)
        w->featmin[u] = INFINITY;
}

/* Buffers; fm_off/featmin sized by the activation layers' inputs. */
static int work_alloc(lr_work *w, const basin_dataset *ds)
{
    size_t nl = basin_net_layer_count(w->pl), k = basin_net_out_dim(w->pl);
    size_t dim = basin_net_param_count(w->pl), total = 0, max_dim = basin_net_in_dim(w->pl);
    size_t nk, ncoef, batch = ds->n < LR_CHUNK ? ds->n : LR_CHUNK;
    int rc = BASIN_ERANGE;
    w->fm_off = basin_calloc(nl, sizeof *w->fm_off);
    if (!w->fm_off)
        return BASIN_ENOMEM;
    for (size_t l = 0; l < nl; l++) {
        basin_layer_info info;
        basin_net_layer_info(w->pl, l, &info);
        if (info.out_dim > max_dim)
            max_dim = info.out_dim;
        w->fm_off[l] = total;
        if (info.kind == BASIN_LAYER_ACTIVATION && basin_add_size(total, info.in_dim, &total))
            return rc;
    }
    w->fm_total = total;
    w->max_dim = max_dim;
    if (basin_mul_size(ds->n, k, &nk) || basin_add_size(ds->in_dim, 1, &ncoef) ||
        basin_mul_size(ncoef, k, &ncoef) || basin_mul_size(max_dim, 5, &max_dim))
        return rc;
    w->theta = basin_calloc(dim ? dim : 1, sizeof(double));
    w->theta_pl = basin_calloc(dim ? dim : 1, sizeof(double));
    w->grad = basin_calloc(dim ? dim : 1, sizeof(double));
    w->coef = basin_calloc(ncoef, sizeof(double));
    w->featmin = basin_alloc_array(total ? total : 1, sizeof(double));
    w->out_lin = basin_alloc_array(nk, sizeof(double));
    w->out_pl = basin_alloc_array(nk, sizeof(double));
    w->buf = basin_calloc(max_dim, sizeof(double));
    if (!w->theta || !w->theta_pl || !w->grad || !w->coef || !w->featmin || !w->out_lin ||
        !w->out_pl || !w->buf)
        return BASIN_ENOMEM;
    reset_minima(w);
    if ((rc = basin_net_ws_create(w->pl, batch, &w->ws_pl)) != BASIN_OK)
        return rc;
    return basin_net_ws_create(w->lin, batch, &w->ws_lin);
}

static double data_scale(const basin_dataset *ds)
{
    double s = 0.0;
    for (size_t i = 0; i < ds->n * ds->in_dim; i++)
        s = fmax(s, fabs(ds->x[i]));
    return s > 0 ? s : 1.0;
}

static double max_abs(const double *v, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

/* (a) the linear net at its minimum, into w->theta. */
static int linear_minimum(lr_work *w, const basin_dataset *ds, const basin_loss *loss,
                          const basin_linear_region_opts *opts, basin_linear_region_report *rep)
{
    basin_affine_fit fit;
    size_t k = basin_net_out_dim(w->pl);
    int rc = basin_affine_fit_group(ds, NULL, ds->n, loss, k, &fit, w->coef);
    if (rc)
        return SAY(rep, rc, "the best affine fit failed: %s", basin_strerror(rc));
    rep->r_lin = fit.risk_sum / (double)ds->n;
    rep->r_lin_exact = fit.exact;
    rep->r_lin_attained = fit.attained;
    if (!opts->force_train && affine_writable(w->pl)) {
        rep->method = "affine_exact";
        write_affine(w->lin, w->coef, w->theta);
        return BASIN_OK;
    }
    rep->method = "trained";
    return train_linear(w->lin, ds, loss, opts, w->theta, rep);
}

/* (b) lift θ_lin (w->theta) into θ_PL (w->theta_pl). */
static int lift_all(lr_work *w, double margin, double out_scale, basin_linear_region_report *rep)
{
    size_t max_dim = w->max_dim;
    lift_ctx L;
    memset(&L, 0, sizeof L);
    L.net = w->pl;
    L.theta = w->theta_pl;
    L.featmin = w->featmin;
    L.fm_off = w->fm_off;
    L.margin = margin;
    L.out_scale = out_scale;
    L.o = w->buf;
    L.q = L.o + max_dim;
    L.r = L.q + max_dim;
    L.tmp = L.r + max_dim;
    L.beta = L.tmp + max_dim;
    L.rep = rep;
    memcpy(w->theta_pl, w->theta, basin_net_param_count(w->pl) * sizeof *w->theta);
    return lift(&L);
}

/* Evaluate the PL net on every sample: outputs must match the linear net's, every lifted
 * pre-activation must be positive. */
static int verify(lr_work *w, const basin_dataset *ds, double out_scale,
                  basin_linear_region_report *rep)
{
    size_t nl = basin_net_layer_count(w->pl), nk = ds->n * basin_net_out_dim(w->pl);
    reset_minima(w);
    int rc = scan_net(w->pl, w->ws_pl, w->theta_pl, ds, w->fm_off, w->featmin, w->out_pl, 1);
    if (rc)
        return rc;
    double diff = 0.0, lo = INFINITY;
    for (size_t i = 0; i < nk; i++)
        diff = fmax(diff, fabs(w->out_pl[i] - w->out_lin[i]));
    for (size_t l = 0; l < nl; l++) {
        const basin_layer_spec *s = basin_net_layer_spec(w->pl, l);
        basin_layer_info info;
        basin_net_layer_info(w->pl, l, &info);
        if (lifted(s))
            for (size_t u = 0; u < info.in_dim; u++)
                lo = fmin(lo, w->featmin[w->fm_off[l] + u]);
    }
    rep->max_output_diff = diff;
    rep->min_preactivation = lo;
    if (!(diff <= LR_VERIFY_TOL * out_scale))
        return SAY(rep, BASIN_ENUMERIC,
                   "the lifted PL net differs from the linear net by %g on the data (tolerance "
                   "%g)",
                   diff, LR_VERIFY_TOL * out_scale);
    if (!(lo > 0))
        return SAY(rep, BASIN_ENUMERIC, "a lifted pre-activation is %g, not positive", lo);
    return BASIN_OK;
}

static double norm2(const double *v, size_t n)
{
    return n ? cblas_dnrm2((int)n, v, 1) : 0.0;
}

/* Risks and gradient norms of the linear net at θ_lin and the PL net at θ_PL. */
static int measure(lr_work *w, const basin_dataset *ds, const basin_loss *loss, int pl,
                   basin_linear_region_report *rep)
{
    size_t dim = basin_net_param_count(w->pl);
    double risk;
    int rc = pl ? basin_net_risk_grad(w->pl, w->ws_pl, w->theta_pl, ds, NULL, ds->n, loss, &risk,
                                      w->grad)
                : basin_net_risk_grad(w->lin, w->ws_lin, w->theta, ds, NULL, ds->n, loss, &risk,
                                      w->grad);
    if (rc)
        return SAY(rep, rc, "evaluating the risk failed: %s", basin_strerror(rc));
    if (pl) {
        rep->risk = risk;
        rep->grad_norm = norm2(w->grad, dim);
    } else {
        rep->linear_risk = risk;
        rep->linear_grad_norm = norm2(w->grad, dim);
    }
    return BASIN_OK;
}

static int resolve_margin(const basin_linear_region_opts *opts, const basin_dataset *ds,
                          double *margin, basin_linear_region_report *rep)
{
    if (isnan(opts->margin) || isinf(opts->margin))
        return SAY(rep, BASIN_EINVAL, "margin must be finite");
    if (opts->margin > 0) {
        *margin = opts->margin;
    } else {
        if (!(isfinite(opts->margin_rel) && opts->margin_rel > 0))
            return SAY(rep, BASIN_EINVAL, "margin_rel must be positive and finite");
        *margin = opts->margin_rel * data_scale(ds);
        if (!isfinite(*margin))
            return SAY(rep, BASIN_EINVAL, "margin_rel times the data scale overflows");
    }
    rep->margin = *margin;
    return BASIN_OK;
}

static int package(const lr_work *w, const basin_arch *arch, basin_construction **out,
                   basin_linear_region_report *rep)
{
    basin_construction *c = NULL;
    size_t nl = basin_net_layer_count(w->pl);
    int rc = basin__construction_new(nl, &c);
    if (rc)
        goto done;
    c->arch.in_rank = arch->in_rank;
    memcpy(c->arch.in_shape, arch->in_shape, sizeof c->arch.in_shape);
    for (size_t l = 0; l < nl; l++)
        c->layers[l] = *basin_net_layer_spec(w->pl, l);
    if ((rc = basin__construction_finish(c, NULL, rep->message, sizeof rep->message)) != BASIN_OK)
        goto done;
    c->theta_linear = basin_alloc_array(c->n_params ? c->n_params : 1, sizeof *c->theta_linear);
    if (!c->theta_linear) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    memcpy(c->theta, w->theta_pl, c->n_params * sizeof *c->theta);
    memcpy(c->theta_linear, w->theta, c->n_params * sizeof *c->theta_linear);
done:
    if (rc) {
        basin_construction_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

int basin_construct_linear_region(const basin_arch *arch, const basin_dataset *ds,
                                  const basin_loss *loss, const basin_linear_region_opts *opts,
                                  basin_construction **out, basin_linear_region_report *report)
{
    basin_linear_region_opts dflt;
    basin_linear_region_report scratch;
    basin_linear_region_report *rep = report ? report : &scratch;
    lr_work w;
    basin_net_error err;
    double margin = 0.0;
    int rc = BASIN_EINVAL;
    memset(&w, 0, sizeof w);
    memset(rep, 0, sizeof *rep);
    rep->layer = -1;
    rep->method = "";
    rep->min_preactivation = INFINITY;
    if (!opts) {
        basin_linear_region_defaults(&dflt);
        opts = &dflt;
    }
    if (!out || !arch || !ds || !loss) {
        SAY(rep, rc, "missing argument");
        goto done;
    }
    *out = NULL;
    if ((rc = basin_net_create(arch, &w.pl, &err)) != BASIN_OK) {
        rep->layer = err.layer;
        SAY(rep, rc, "invalid architecture: %s", err.message);
        goto done;
    }
    if ((rc = check_arch(w.pl, rep)) || (rc = check_data(w.pl, ds, loss, rep)) ||
        (rc = resolve_margin(opts, ds, &margin, rep)) ||
        (rc = make_linear_net(w.pl, arch, &w.lin, rep)) || (rc = work_alloc(&w, ds)))
        goto done;
    if ((rc = linear_minimum(&w, ds, loss, opts, rep)) != BASIN_OK)
        goto done;
    if ((rc = scan_net(w.lin, w.ws_lin, w.theta, ds, w.fm_off, w.featmin, w.out_lin, 0)) ||
        (rc = measure(&w, ds, loss, 0, rep)))
        goto done;
    double out_scale = fmax(1.0, max_abs(w.out_lin, ds->n * basin_net_out_dim(w.pl)));
    if ((rc = lift_all(&w, margin, out_scale, rep)) || (rc = verify(&w, ds, out_scale, rep)) ||
        (rc = measure(&w, ds, loss, 1, rep)))
        goto done;
    rc = package(&w, arch, out, rep);
done:
    if (rc == BASIN_ENOMEM && rep->message[0] == '\0')
        SAY(rep, rc, "out of memory");
    work_release(&w);
    return rc;
}
