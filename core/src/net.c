/* Building a network from its architecture: validation with precise errors, shapes, and the
 * flat parameter layout (net.h). The evaluation code lives in net_eval.c / net_hvp.c /
 * net_layers.c, initialisation in net_init.c, the workspace in net_ws.c.
 *
 * Error fields are named as in the JSON architecture spec ("type", "units", "filters",
 * "kernel", "stride", "padding", "size", "kind", "slope", "s_neg", "s_pos", "input_shape",
 * "layers"), so the server can turn them into JSON Pointers without a translation table.
 * Structural mistakes are BASIN_EINVAL; sizes above the hard limits or overflowing size_t are
 * BASIN_ERANGE. */
#include "basin/net.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "net_int.h"

static const char *const layer_names[] = {"dense",   "conv2d",     "avgpool", "maxpool",
                                          "flatten", "activation", "sum"};
static const char *const act_names[] = {"relu", "leaky_relu", "pwl", "identity"};

const char *basin_layer_kind_name(basin_layer_kind kind)
{
    if ((unsigned)kind < sizeof layer_names / sizeof layer_names[0])
        return layer_names[kind];
    return "unknown";
}

const char *basin_act_kind_name(basin_act_kind kind)
{
    if ((unsigned)kind < sizeof act_names / sizeof act_names[0])
        return act_names[kind];
    return "unknown";
}

int basin__layer_has_params(const basin__layer *L)
{
    return L->spec.kind == BASIN_LAYER_DENSE || L->spec.kind == BASIN_LAYER_CONV2D;
}

#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static int
fail(basin_net_error *err, int rc, long layer, const char *field, const char *fmt, ...)
{
    if (err) {
        err->layer = layer;
        snprintf(err->field, sizeof err->field, "%s", field);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Product of a shape; BASIN_ERANGE on overflow. */
static int shape_dim(size_t rank, const size_t *shape, size_t *out)
{
    size_t d = 1;
    for (size_t i = 0; i < rank; i++)
        if (basin_mul_size(d, shape[i], &d) != BASIN_OK)
            return BASIN_ERANGE;
    *out = d;
    return BASIN_OK;
}

/* A size field of layer i: ≥ 1 and ≤ BASIN_NET_MAX_WIDTH. */
static int check_size(size_t v, long i, const char *field, basin_net_error *err)
{
    if (v == 0)
        return fail(err, BASIN_EINVAL, i, field, "%s must be at least 1", field);
    if (v > BASIN_NET_MAX_WIDTH)
        return fail(err, BASIN_ERANGE, i, field, "%s %zu exceeds the limit %d", field, v,
                    BASIN_NET_MAX_WIDTH);
    return BASIN_OK;
}

static int need_image(const basin_layer_info *info, long i, basin_net_error *err)
{
    if (info->in_rank != 3)
        return fail(err, BASIN_EINVAL, i, "type", "%s needs a [c,h,w] input, got a vector",
                    basin_layer_kind_name(info->kind));
    return BASIN_OK;
}

static int plan_dense(basin__layer *L, long i, basin_net_error *err)
{
    basin_layer_info *info = &L->info;
    if (info->in_rank != 1)
        return fail(err, BASIN_EINVAL, i, "type",
                    "dense needs a vector input, got [%zu,%zu,%zu]: add a flatten layer",
                    info->in_shape[0], info->in_shape[1], info->in_shape[2]);
    int rc = check_size(L->spec.units, i, "units", err);
    if (rc)
        return rc;
    if (basin_mul_size(L->spec.units, info->in_dim, &info->weight_count) != BASIN_OK)
        return fail(err, BASIN_ERANGE, i, "units", "weight count overflows");
    L->spec.bias = L->spec.bias != 0;
    info->bias_count = L->spec.bias ? L->spec.units : 0;
    info->out_rank = 1;
    info->out_shape[0] = L->spec.units;
    L->fan_in = info->in_dim;
    L->fan_out = L->spec.units;
    return BASIN_OK;
}

static int plan_conv(basin__layer *L, long i, basin_net_error *err)
{
    basin_layer_spec *s = &L->spec;
    basin_layer_info *info = &L->info;
    int rc = need_image(info, i, err);
    if (!rc)
        rc = check_size(s->filters, i, "filters", err);
    if (!rc)
        rc = check_size(s->kernel, i, "kernel", err);
    if (!rc)
        rc = check_size(s->stride, i, "stride", err);
    if (rc)
        return rc;
    size_t k = s->kernel, total = 0;
    switch (s->padding) {
    case BASIN_PAD_VALID:
        s->pad = 0;
        break;
    case BASIN_PAD_SAME:
        if (s->stride != 1)
            return fail(err, BASIN_EINVAL, i, "padding",
                        "same padding needs stride 1 (as in torch), got stride %zu", s->stride);
        s->pad = 0;
        total = k - 1;
        info->pad_top = info->pad_left = (k - 1) / 2;
        break;
    case BASIN_PAD_EXPLICIT:
        if (s->pad > BASIN_NET_MAX_WIDTH)
            return fail(err, BASIN_ERANGE, i, "padding", "padding %zu exceeds the limit %d", s->pad,
                        BASIN_NET_MAX_WIDTH);
        total = 2 * s->pad;
        info->pad_top = info->pad_left = s->pad;
        break;
    default:
        return fail(err, BASIN_EINVAL, i, "padding", "unknown padding mode %d", (int)s->padding);
    }
    size_t c = info->in_shape[0], h = info->in_shape[1] + total, w = info->in_shape[2] + total;
    if (k > h || k > w)
        return fail(err, BASIN_EINVAL, i, "kernel",
                    "kernel %zu is larger than the padded input %zu×%zu", k, h, w);
    info->out_rank = 3;
    info->out_shape[0] = s->filters;
    info->out_shape[1] = (h - k) / s->stride + 1;
    info->out_shape[2] = (w - k) / s->stride + 1;
    size_t kk;
    if (basin_mul_size(k, k, &kk) != BASIN_OK || basin_mul_size(c, kk, &L->conv_ckk) != BASIN_OK ||
        basin_mul_size(L->conv_ckk, s->filters, &info->weight_count) != BASIN_OK ||
        basin_mul_size(s->filters, kk, &L->fan_out) != BASIN_OK)
        return fail(err, BASIN_ERANGE, i, "filters", "weight count overflows");
    L->conv_p = info->out_shape[1] * info->out_shape[2];
    s->bias = s->bias != 0;
    info->bias_count = s->bias ? s->filters : 0;
    L->fan_in = L->conv_ckk;
    return BASIN_OK;
}

static int plan_pool(basin__layer *L, long i, basin_net_error *err)
{
    basin_layer_info *info = &L->info;
    int rc = need_image(info, i, err);
    if (!rc)
        rc = check_size(L->spec.size, i, "size", err);
    if (rc)
        return rc;
    size_t p = L->spec.size;
    if (p > info->in_shape[1] || p > info->in_shape[2])
        return fail(err, BASIN_EINVAL, i, "size",
                    "pool window %zu is larger than the input %zu×%zu", p, info->in_shape[1],
                    info->in_shape[2]);
    info->out_rank = 3;
    info->out_shape[0] = info->in_shape[0];
    info->out_shape[1] = info->in_shape[1] / p;
    info->out_shape[2] = info->in_shape[2] / p;
    return BASIN_OK;
}

static int plan_activation(basin__layer *L, long i, basin_net_error *err)
{
    basin_layer_spec *s = &L->spec;
    switch (s->act) {
    case BASIN_ACT_RELU:
        s->s_neg = 0.0;
        s->s_pos = 1.0;
        break;
    case BASIN_ACT_LEAKY_RELU:
        if (!isfinite(s->slope))
            return fail(err, BASIN_EINVAL, i, "slope", "leaky_relu slope must be finite");
        s->s_neg = s->slope;
        s->s_pos = 1.0;
        break;
    case BASIN_ACT_PWL:
        if (!isfinite(s->s_neg))
            return fail(err, BASIN_EINVAL, i, "s_neg", "pwl s_neg must be finite");
        if (!isfinite(s->s_pos))
            return fail(err, BASIN_EINVAL, i, "s_pos", "pwl s_pos must be finite");
        break;
    case BASIN_ACT_IDENTITY:
        s->s_neg = s->s_pos = 1.0;
        break;
    default:
        return fail(err, BASIN_EINVAL, i, "kind", "unknown activation kind %d", (int)s->act);
    }
    L->info.s_neg = s->s_neg;
    L->info.s_pos = s->s_pos;
    L->info.out_rank = L->info.in_rank;
    memcpy(L->info.out_shape, L->info.in_shape, sizeof L->info.out_shape);
    return BASIN_OK;
}

/* Work out layer i's output shape and parameter counts from its input shape (already in
 * L->info). */
static int plan_layer(basin__layer *L, long i, basin_net_error *err)
{
    basin_layer_info *info = &L->info;
    switch (L->spec.kind) {
    case BASIN_LAYER_DENSE:
        return plan_dense(L, i, err);
    case BASIN_LAYER_CONV2D:
        return plan_conv(L, i, err);
    case BASIN_LAYER_AVGPOOL:
    case BASIN_LAYER_MAXPOOL:
        return plan_pool(L, i, err);
    case BASIN_LAYER_FLATTEN:
        info->out_rank = 1;
        info->out_shape[0] = info->in_dim;
        return BASIN_OK;
    case BASIN_LAYER_ACTIVATION:
        return plan_activation(L, i, err);
    case BASIN_LAYER_SUM:
        info->out_rank = 1;
        info->out_shape[0] = 1;
        return BASIN_OK;
    }
    return fail(err, BASIN_EINVAL, i, "type", "unknown layer type %d", (int)L->spec.kind);
}

static int check_input(const basin_arch *arch, size_t *in_dim, basin_net_error *err)
{
    if (arch->in_rank != 1 && arch->in_rank != 3)
        return fail(err, BASIN_EINVAL, -1, "input_shape",
                    "input shape must be [d] or [c,h,w], got rank %zu", arch->in_rank);
    for (size_t j = 0; j < arch->in_rank; j++) {
        if (arch->in_shape[j] == 0)
            return fail(err, BASIN_EINVAL, -1, "input_shape", "input_shape[%zu] must be at least 1",
                        j);
        if (arch->in_shape[j] > BASIN_NET_MAX_WIDTH)
            return fail(err, BASIN_ERANGE, -1, "input_shape",
                        "input_shape[%zu] = %zu exceeds the limit %d", j, arch->in_shape[j],
                        BASIN_NET_MAX_WIDTH);
    }
    if (shape_dim(arch->in_rank, arch->in_shape, in_dim) != BASIN_OK)
        return fail(err, BASIN_ERANGE, -1, "input_shape", "input size overflows");
    if (arch->n_layers == 0 || !arch->layers)
        return fail(err, BASIN_EINVAL, -1, "layers", "the net needs at least one layer");
    if (arch->n_layers > BASIN_NET_MAX_LAYERS)
        return fail(err, BASIN_ERANGE, -1, "layers", "%zu layers exceed the limit %d",
                    arch->n_layers, BASIN_NET_MAX_LAYERS);
    return BASIN_OK;
}

/* Plan every layer in order, threading shapes and parameter offsets through. */
static int plan_layers(basin_net *net, basin_net_error *err)
{
    size_t rank = net->in_rank, dim = net->in_dim, offset = 0;
    size_t shape[3] = {net->in_shape[0], net->in_shape[1], net->in_shape[2]};
    net->max_dim = dim;
    net->first_param = net->n_layers;
    for (size_t i = 0; i < net->n_layers; i++) {
        basin__layer *L = &net->layers[i];
        basin_layer_info *info = &L->info;
        info->kind = L->spec.kind;
        info->in_rank = rank;
        memcpy(info->in_shape, shape, sizeof shape);
        info->in_dim = dim;
        info->param_offset = offset;
        int rc = plan_layer(L, (long)i, err);
        if (rc)
            return rc;
        if (shape_dim(info->out_rank, info->out_shape, &info->out_dim) != BASIN_OK)
            return fail(err, BASIN_ERANGE, (long)i, "type", "output size overflows");
        size_t count;
        if (basin_add_size(info->weight_count, info->bias_count, &count) != BASIN_OK ||
            basin_add_size(offset, count, &offset) != BASIN_OK)
            return fail(err, BASIN_ERANGE, (long)i,
                        L->spec.kind == BASIN_LAYER_CONV2D ? "filters" : "units",
                        "parameter count overflows");
        if (count > 0 && net->first_param == net->n_layers)
            net->first_param = i;
        rank = info->out_rank;
        memcpy(shape, info->out_shape, sizeof shape);
        dim = info->out_dim;
        if (dim > net->max_dim)
            net->max_dim = dim;
    }
    if (rank != 1)
        return fail(err, BASIN_EINVAL, -1, "layers",
                    "the output must be a vector: end with flatten, dense or sum");
    net->out_dim = dim;
    net->param_count = offset;
    return BASIN_OK;
}

int basin_net_create(const basin_arch *arch, basin_net **out, basin_net_error *err)
{
    basin_net *net = NULL;
    int rc;
    if (err) {
        err->layer = -1;
        err->field[0] = '\0';
        err->message[0] = '\0';
    }
    if (!arch || !out) {
        rc = fail(err, BASIN_EINVAL, -1, "", "missing architecture or output pointer");
        goto done;
    }
    *out = NULL;
    size_t in_dim = 0;
    rc = check_input(arch, &in_dim, err);
    if (rc)
        goto done;
    net = basin_calloc(1, sizeof *net);
    if (net)
        net->layers = basin_calloc(arch->n_layers, sizeof *net->layers);
    if (!net || !net->layers) {
        rc = fail(err, BASIN_ENOMEM, -1, "", "out of memory");
        goto done;
    }
    net->n_layers = arch->n_layers;
    net->in_rank = arch->in_rank;
    for (size_t j = 0; j < 3; j++)
        net->in_shape[j] = j < arch->in_rank ? arch->in_shape[j] : 0;
    net->in_dim = in_dim;
    for (size_t i = 0; i < arch->n_layers; i++)
        net->layers[i].spec = arch->layers[i];
    rc = plan_layers(net, err);
    if (rc)
        goto done;
    *out = net;
    net = NULL;
done:
    basin_net_free(net);
    return rc;
}

void basin_net_free(basin_net *net)
{
    if (!net)
        return;
    basin_free(net->layers);
    basin_free(net);
}

size_t basin_net_param_count(const basin_net *net)
{
    return net->param_count;
}

size_t basin_net_in_dim(const basin_net *net)
{
    return net->in_dim;
}

size_t basin_net_out_dim(const basin_net *net)
{
    return net->out_dim;
}

size_t basin_net_layer_count(const basin_net *net)
{
    return net->n_layers;
}

void basin_net_layer_info(const basin_net *net, size_t layer, basin_layer_info *info)
{
    if (layer < net->n_layers)
        *info = net->layers[layer].info;
    else
        memset(info, 0, sizeof *info);
}

const basin_layer_spec *basin_net_layer_spec(const basin_net *net, size_t layer)
{
    return layer < net->n_layers ? &net->layers[layer].spec : NULL;
}

int basin_net_is_homogeneous(const basin_net *net)
{
    for (size_t i = 0; i < net->n_layers; i++) {
        const basin_layer_spec *s = &net->layers[i].spec;
        if (s->kind == BASIN_LAYER_ACTIVATION && s->act != BASIN_ACT_IDENTITY && !(s->s_pos > 0))
            return 0;
    }
    return 1;
}
