/* The CPWL compiler (construct.h): a ReLU network that computes
 * f(x) = max_i min_{j∈S_i} (a_j·x + b_j) exactly, the proof device of the paper (every CPWL
 * function has such a max–min form, and this is how a deep PL network realises it). Also the
 * construction helpers shared by the construct_*.c files (construct_int.h).
 *
 * DESIGN
 * Values flow through "stages"; stage 0 holds the affine pieces a_j·x + b_j listed set by set
 * (V^0, one entry per member of every S_i). Each later stage t computes V^t from V^{t−1} with
 * one ReLU hidden layer, by ops that each produce one value from one or two inputs:
 *   carry  z       = relu(z) − relu(−z)                    2 units
 *   min    min(a,b) = a − relu(a − b) = relu(a) − relu(−a) − relu(a − b)   3 units
 *   max    max(a,b) = relu(a − b) + b = relu(a − b) + relu(b) − relu(−b)   3 units
 * A unit's pre-activation is c_a·a + c_b·b (coefficients per op kind in op_units), and the op's
 * value is a ±1 combination of its units' outputs. V^{t−1} is itself a linear combination of the
 * previous hidden layer's outputs, so the pre-activations of layer t are a linear map of layer
 * t−1's outputs: W_t[u, h] = Σ_refs c · out_sign(h). Layer 1 sees x directly: its rows are
 * c_a·a_{j} + c_b·a_{j'} with biases c_a·b_j + c_b·b_{j'}; later biases are 0.
 * Min phase: every set's list is halved per stage by pairing neighbours (an odd last entry is
 * carried), so set i is done after ⌈log2 |S_i|⌉ stages and the phase takes
 * D1 = ⌈log2 max_i |S_i|⌉ stages (finished sets are carried). Max phase: the s minima are
 * paired the same way, D2 = ⌈log2 s⌉ stages. The net is dense → relu → ... (D1 + D2 hidden
 * layers) → dense(1), the last dense reading V^{D1+D2}_0; with D1 = D2 = 0 (one set of one
 * piece) it is a single dense layer. All dense layers carry a bias vector (PyTorch's default).
 * Invariant: after stage t, value k equals (in exact arithmetic, for every x ∈ R^d) the k-th
 * partial min/max of the tree; rounding adds O(ε·depth·max|V|).
 * Widths: hidden layer t has at most 3·|V^t| units, |V^1| ≤ Σ|S_i|/2 + s. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/construct.h"
#include "basin/status.h"
#include "construct_int.h"

/* ---- construction helpers (construct_int.h) ---- */

int basin__construct_say(char *msg, size_t msg_len, int rc, const char *fmt, ...)
{
    if (msg && msg_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msg_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int basin__construction_new(size_t n_layers, basin_construction **out)
{
    int rc = BASIN_ENOMEM;
    basin_construction *c = basin_calloc(1, sizeof *c);
    if (!c)
        goto done;
    c->layers = basin_calloc(n_layers, sizeof *c->layers);
    if (!c->layers)
        goto done;
    c->arch.n_layers = n_layers;
    c->arch.layers = c->layers;
    rc = BASIN_OK;
done:
    if (rc) {
        basin_construction_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

int basin__construction_finish(basin_construction *c, basin_net **net, char *msg, size_t msg_len)
{
    basin_net *n = NULL;
    basin_net_error err;
    int rc = basin_net_create(&c->arch, &n, &err);
    if (rc == BASIN_ENOMEM) {
        basin__construct_say(msg, msg_len, rc, "out of memory");
        goto done;
    }
    if (rc) {
        basin__construct_say(msg, msg_len, rc,
                             "the constructed architecture is invalid (layer %ld, %s): %s",
                             err.layer, err.field, err.message);
        goto done;
    }
    c->n_params = basin_net_param_count(n);
    c->theta = basin_calloc(c->n_params ? c->n_params : 1, sizeof(double));
    if (!c->theta)
        rc = BASIN_ENOMEM;
done:
    if (rc || !net)
        basin_net_free(n);
    else
        *net = n;
    return rc;
}

void basin_construction_free(basin_construction *c)
{
    if (!c)
        return;
    basin_free(c->layers);
    basin_free(c->theta);
    basin_free(c->theta_linear);
    basin_free(c);
}

/* ---- the compiler ---- */

typedef enum op_kind { OP_CARRY, OP_MIN, OP_MAX } op_kind;

typedef struct cpwl_op {
    op_kind kind;
    size_t i, j; /* input values (j = i for carry) */
    size_t u0;   /* first unit in its hidden layer */
} cpwl_op;

static const struct {
    size_t n;
    double ca[3], cb[3]; /* pre-activation = ca·V_i + cb·V_j */
    double out[3];       /* value = Σ out·relu(pre) */
} op_units[] = {
    [OP_CARRY] = {2, {1, -1, 0}, {0, 0, 0}, {1, -1, 0}},
    [OP_MIN] = {3, {1, -1, 1}, {0, 0, -1}, {1, -1, -1}},
    [OP_MAX] = {3, {1, 0, 0}, {-1, 1, -1}, {1, 1, -1}},
};

static size_t ceil_log2(size_t n)
{
    size_t d = 0;
    for (size_t v = n > 0 ? n - 1 : 0; v > 0; v >>= 1)
        d++;
    return d;
}

static int check_spec(const basin_cpwl_spec *sp, char *msg, size_t len)
{
    if (!sp)
        return basin__construct_say(msg, len, BASIN_EINVAL, "no spec");
    if (sp->dim == 0 || sp->dim > BASIN_NET_MAX_WIDTH)
        return basin__construct_say(msg, len, sp->dim ? BASIN_ERANGE : BASIN_EINVAL,
                                    "dim must be in [1, %d], got %zu", BASIN_NET_MAX_WIDTH,
                                    sp->dim);
    if (sp->n_pieces == 0 || !sp->a || !sp->b)
        return basin__construct_say(msg, len, BASIN_EINVAL, "pieces: at least one piece (a, b)");
    if (sp->n_sets == 0 || !sp->set_start || !sp->members)
        return basin__construct_say(msg, len, BASIN_EINVAL, "sets: at least one non-empty set");
    size_t na;
    if (basin_mul_size(sp->n_pieces, sp->dim, &na))
        return basin__construct_say(msg, len, BASIN_ERANGE, "pieces: size overflows");
    for (size_t k = 0; k < na; k++)
        if (!isfinite(sp->a[k]))
            return basin__construct_say(msg, len, BASIN_EINVAL, "pieces: a[%zu][%zu] is not finite",
                                        k / sp->dim, k % sp->dim);
    for (size_t k = 0; k < sp->n_pieces; k++)
        if (!isfinite(sp->b[k]))
            return basin__construct_say(msg, len, BASIN_EINVAL, "pieces: b[%zu] is not finite", k);
    if (sp->set_start[0] != 0)
        return basin__construct_say(msg, len, BASIN_EINVAL, "sets: set_start[0] must be 0");
    for (size_t i = 0; i < sp->n_sets; i++)
        if (sp->set_start[i + 1] <= sp->set_start[i])
            return basin__construct_say(msg, len, BASIN_EINVAL, "sets: set %zu is empty", i);
    for (size_t k = 0; k < sp->set_start[sp->n_sets]; k++)
        if (sp->members[k] >= sp->n_pieces)
            return basin__construct_say(msg, len, BASIN_EINVAL,
                                        "sets: member %zu names piece %zu of %zu", k,
                                        sp->members[k], sp->n_pieces);
    return BASIN_OK;
}

/* The stage plan: ops of every stage, stage offsets into ops, hidden widths. */
typedef struct plan {
    size_t stages, d1, d2;
    size_t *stage_off; /* stages + 1 */
    size_t *width;     /* stages */
    cpwl_op *ops;
    size_t *cnt, *start; /* per set: values of the current stage */
} plan;

static void plan_release(plan *p)
{
    basin_free(p->stage_off);
    basin_free(p->width);
    basin_free(p->ops);
    basin_free(p->cnt);
    basin_free(p->start);
}

/* Append an op pairing value v with v+1 (or carrying v), assign its units. */
static int add_op(plan *p, size_t *n_ops, size_t t, op_kind pair, size_t v, int single)
{
    cpwl_op *op = &p->ops[(*n_ops)++];
    op->kind = single ? OP_CARRY : pair;
    op->i = v;
    op->j = single ? v : v + 1;
    op->u0 = p->width[t];
    return basin_add_size(p->width[t], op_units[op->kind].n, &p->width[t]);
}

/* One stage's ops; with fill = 0 only counts them (n_ops advances either way). */
static int plan_stage(plan *p, size_t n_sets, size_t t, int fill, size_t *n_ops)
{
    size_t pos = 0;
    int rc = BASIN_OK;
    int min_phase = t < p->d1;
    size_t groups = min_phase ? n_sets : 1;
    for (size_t g = 0; g < groups && rc == BASIN_OK; g++) {
        size_t start = p->start[g], cnt = p->cnt[g], made = 0;
        for (size_t r = 0; r < cnt; r += 2, made++) {
            if (fill)
                rc = add_op(p, n_ops, t, min_phase ? OP_MIN : OP_MAX, start + r, r + 1 == cnt);
            else
                rc = basin_add_size(*n_ops, 1, n_ops);
            if (rc)
                break;
        }
        p->start[g] = pos;
        p->cnt[g] = made;
        pos += made;
    }
    if (rc == BASIN_OK && min_phase && t + 1 == p->d1) {
        /* the max phase sees one list: the s minima, in set order */
        p->start[0] = 0;
        p->cnt[0] = n_sets;
    }
    return rc;
}

static void plan_reset_counts(plan *p, const basin_cpwl_spec *sp)
{
    if (p->d1 == 0) {
        p->start[0] = 0;
        p->cnt[0] = sp->n_sets;
        return;
    }
    for (size_t i = 0; i < sp->n_sets; i++) {
        p->start[i] = sp->set_start[i];
        p->cnt[i] = sp->set_start[i + 1] - sp->set_start[i];
    }
}

static int make_plan(const basin_cpwl_spec *sp, plan *p, char *msg, size_t len)
{
    int rc = BASIN_ENOMEM;
    size_t n_ops = 0;
    for (size_t i = 0; i < sp->n_sets; i++) {
        size_t d = ceil_log2(sp->set_start[i + 1] - sp->set_start[i]);
        if (d > p->d1)
            p->d1 = d;
    }
    p->d2 = ceil_log2(sp->n_sets);
    p->stages = p->d1 + p->d2;
    if (2 * p->stages + 1 > BASIN_NET_MAX_LAYERS) {
        rc = basin__construct_say(msg, len, BASIN_ERANGE,
                                  "the network would need %zu layers (limit %d)", 2 * p->stages + 1,
                                  BASIN_NET_MAX_LAYERS);
        goto done;
    }
    p->cnt = basin_alloc_array(sp->n_sets, sizeof *p->cnt);
    p->start = basin_alloc_array(sp->n_sets, sizeof *p->start);
    p->stage_off = basin_calloc(p->stages + 1, sizeof *p->stage_off);
    p->width = basin_calloc(p->stages + 1, sizeof *p->width);
    if (!p->cnt || !p->start || !p->stage_off || !p->width)
        goto done;
    /* pass 1: count the ops */
    plan_reset_counts(p, sp);
    for (size_t t = 0; t < p->stages; t++)
        if ((rc = plan_stage(p, sp->n_sets, t, 0, &n_ops)) != BASIN_OK)
            goto done;
    p->ops = basin_alloc_array(n_ops ? n_ops : 1, sizeof *p->ops);
    if (!p->ops) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    /* pass 2: fill them */
    n_ops = 0;
    plan_reset_counts(p, sp);
    for (size_t t = 0; t < p->stages; t++) {
        p->stage_off[t] = n_ops;
        if ((rc = plan_stage(p, sp->n_sets, t, 1, &n_ops)) != BASIN_OK)
            goto done;
        if (p->width[t] > BASIN_NET_MAX_WIDTH) {
            rc = basin__construct_say(msg, len, BASIN_ERANGE,
                                      "hidden layer %zu would have %zu units (limit %d)", t + 1,
                                      p->width[t], BASIN_NET_MAX_WIDTH);
            goto done;
        }
    }
    p->stage_off[p->stages] = n_ops;
    rc = BASIN_OK;
done:
    return rc;
}

/* Layer 1: pre-activations as affine maps of x. Stage-0 value v is piece members[v]. */
static void fill_first(const basin_cpwl_spec *sp, const plan *p, double *W, double *bias)
{
    size_t d = sp->dim;
    for (size_t k = p->stage_off[0]; k < p->stage_off[1]; k++) {
        const cpwl_op *op = &p->ops[k];
        size_t pi = sp->members[op->i], pj = sp->members[op->j];
        for (size_t r = 0; r < op_units[op->kind].n; r++) {
            double ca = op_units[op->kind].ca[r], cb = op_units[op->kind].cb[r];
            double *row = W + (op->u0 + r) * d;
            for (size_t c = 0; c < d; c++)
                row[c] = ca * sp->a[pi * d + c] + cb * sp->a[pj * d + c];
            bias[op->u0 + r] = ca * sp->b[pi] + cb * sp->b[pj];
        }
    }
}

/* Add coef · (value v of stage t−1, as a combination of layer t−1's units) to row. */
static void add_value(const plan *p, size_t t, size_t v, double coef, double *row)
{
    const cpwl_op *q = &p->ops[p->stage_off[t - 1] + v];
    for (size_t r = 0; r < op_units[q->kind].n; r++)
        row[q->u0 + r] += coef * op_units[q->kind].out[r];
}

/* Layer t+1 (t ≥ 1): rows over layer t's units; biases stay 0. */
static void fill_hidden(const plan *p, size_t t, double *W)
{
    size_t prev = p->width[t - 1];
    for (size_t k = p->stage_off[t]; k < p->stage_off[t + 1]; k++) {
        const cpwl_op *op = &p->ops[k];
        for (size_t r = 0; r < op_units[op->kind].n; r++) {
            double *row = W + (op->u0 + r) * prev;
            double ca = op_units[op->kind].ca[r], cb = op_units[op->kind].cb[r];
            if (ca != 0.0)
                add_value(p, t, op->i, ca, row);
            if (cb != 0.0)
                add_value(p, t, op->j, cb, row);
        }
    }
}

static void fill_theta(const basin_cpwl_spec *sp, const plan *p, const basin_net *net,
                       double *theta)
{
    basin_layer_info info;
    if (p->stages == 0) {
        basin_net_layer_info(net, 0, &info);
        size_t piece = sp->members[0];
        memcpy(theta + info.param_offset, sp->a + piece * sp->dim, sp->dim * sizeof *theta);
        theta[info.param_offset + info.weight_count] = sp->b[piece];
        return;
    }
    for (size_t t = 0; t < p->stages; t++) {
        basin_net_layer_info(net, 2 * t, &info);
        double *W = theta + info.param_offset, *bias = W + info.weight_count;
        if (t == 0)
            fill_first(sp, p, W, bias);
        else
            fill_hidden(p, t, W);
    }
    basin_net_layer_info(net, 2 * p->stages, &info);
    add_value(p, p->stages, 0, 1.0, theta + info.param_offset);
}

int basin_construct_cpwl(const basin_cpwl_spec *spec, basin_construction **out,
                         basin_cpwl_report *report)
{
    plan p;
    basin_construction *c = NULL;
    basin_net *net = NULL;
    basin_cpwl_report scratch;
    basin_cpwl_report *rep = report ? report : &scratch;
    int rc = BASIN_EINVAL;
    memset(&p, 0, sizeof p);
    memset(rep, 0, sizeof *rep);
    if (!out)
        goto done;
    *out = NULL;
    if ((rc = check_spec(spec, rep->message, sizeof rep->message)) != BASIN_OK)
        goto done;
    if ((rc = make_plan(spec, &p, rep->message, sizeof rep->message)) != BASIN_OK)
        goto done;
    if ((rc = basin__construction_new(2 * p.stages + 1, &c)) != BASIN_OK)
        goto done;
    c->arch.in_rank = 1;
    c->arch.in_shape[0] = spec->dim;
    for (size_t t = 0; t < p.stages; t++) {
        c->layers[2 * t].kind = BASIN_LAYER_DENSE;
        c->layers[2 * t].units = p.width[t];
        c->layers[2 * t].bias = 1;
        c->layers[2 * t + 1].kind = BASIN_LAYER_ACTIVATION;
        c->layers[2 * t + 1].act = BASIN_ACT_RELU;
        if (p.width[t] > rep->max_width)
            rep->max_width = p.width[t];
    }
    c->layers[2 * p.stages].kind = BASIN_LAYER_DENSE;
    c->layers[2 * p.stages].units = 1;
    c->layers[2 * p.stages].bias = 1;
    if ((rc = basin__construction_finish(c, &net, rep->message, sizeof rep->message)) != BASIN_OK)
        goto done;
    fill_theta(spec, &p, net, c->theta);
    rep->min_depth = p.d1;
    rep->max_depth = p.d2;
    rep->hidden_layers = p.stages;
    rep->n_params = c->n_params;
done:
    if (rc == BASIN_ENOMEM && rep->message[0] == '\0')
        basin__construct_say(rep->message, sizeof rep->message, rc, "out of memory");
    plan_release(&p);
    basin_net_free(net);
    if (rc) {
        basin_construction_free(c);
        c = NULL;
    }
    if (out)
        *out = c;
    return rc;
}
