/* Architectures in the spec: {"input_shape": [...], "layers": [...], "name": ...} parsed into
 * basin_layer_spec entries, validated by basin_net_create (whose basin_net_error is mapped back
 * to /…/layers/<i>/<field>), and written back in canonical form.
 *
 * The parser checks each field's type and its limit (units, filters, kernel, ... ≤ max_width;
 * at most max_layers layers) itself, so that basin_net_create only sees sizes it can handle and
 * its errors are about how layers fit together (shapes, kernels larger than their input). The
 * parameter count from basin_net_create is compared with max_params, and the values one sample
 * produces (the sum of the layer output sizes) with max_activations, before anything of that
 * size is allocated anywhere: a conv layer with one filter and a padding of 16000 has two
 * parameters but a 32001 × 32001 feature map. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "spec.h"
#include "spec_int.h"

static const char *const layer_type_names[] = {"dense",   "conv2d",     "avgpool", "maxpool",
                                               "flatten", "activation", "sum"};
static const basin_layer_kind layer_type_kinds[] = {
    BASIN_LAYER_DENSE,   BASIN_LAYER_CONV2D,     BASIN_LAYER_AVGPOOL, BASIN_LAYER_MAXPOOL,
    BASIN_LAYER_FLATTEN, BASIN_LAYER_ACTIVATION, BASIN_LAYER_SUM};
#define N_LAYER_TYPES (sizeof layer_type_names / sizeof layer_type_names[0])

static const char *const act_names[] = {"relu", "leaky_relu", "pwl", "identity"};
static const basin_act_kind act_kinds[] = {BASIN_ACT_RELU, BASIN_ACT_LEAKY_RELU, BASIN_ACT_PWL,
                                           BASIN_ACT_IDENTITY};

static const char *const dense_keys[] = {"type", "units", "bias", NULL};
static const char *const conv_keys[] = {"type",    "filters", "kernel", "stride",
                                        "padding", "bias",    NULL};
static const char *const pool_keys[] = {"type", "size", NULL};
static const char *const bare_keys[] = {"type", NULL};
static const char *const relu_keys[] = {"type", "kind", NULL};
static const char *const leaky_keys[] = {"type", "kind", "slope", NULL};
static const char *const pwl_keys[] = {"type", "kind", "s_neg", "s_pos", NULL};
static const char *const any_act_keys[] = {"type", "kind", "slope", "s_neg", "s_pos", NULL};
static const char *const arch_keys[] = {"name", "input_shape", "layers", NULL};

void spec_arch_free(struct spec_arch *arch)
{
    if (arch == NULL)
        return;
    basin_net_free(arch->net);
    basin_free(arch->layers);
    basin_free(arch->name);
    basin_free(arch);
}

static int parse_padding(struct spec_ctx *c, const json_t *obj, basin_layer_spec *l)
{
    json_t *v = json_object_get(obj, "padding");
    l->padding = BASIN_PAD_VALID;
    l->pad = 0;
    if (v == NULL)
        return BASIN_OK;
    if (json_is_string(v) && strcmp(json_string_value(v), "valid") == 0)
        return BASIN_OK;
    if (json_is_string(v) && strcmp(json_string_value(v), "same") == 0) {
        l->padding = BASIN_PAD_SAME;
        return BASIN_OK;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        (unsigned long long)json_integer_value(v) <= c->lim->max_width) {
        l->padding = BASIN_PAD_EXPLICIT;
        l->pad = (size_t)json_integer_value(v);
        return BASIN_OK;
    }
    spec_err_at(c, "padding", "must be \"valid\", \"same\" or a non-negative integer ≤ %zu",
                c->lim->max_width);
    return BASIN_EINVAL;
}

static int parse_activation(struct spec_ctx *c, const json_t *obj, basin_layer_spec *l)
{
    size_t k;
    int rc = BASIN_OK;
    if (spec_get_enum(c, obj, "kind", 1, act_names, 4, 0, &k) != BASIN_OK) {
        spec_check_keys(c, obj, any_act_keys, "an activation layer");
        return BASIN_EINVAL;
    }
    l->act = act_kinds[k];
    l->s_neg = 0;
    l->s_pos = 1;
    switch (l->act) {
    case BASIN_ACT_LEAKY_RELU:
        rc |= spec_check_keys(c, obj, leaky_keys, "activation leaky_relu");
        rc |= spec_get_num(c, obj, "slope", 0, SPEC_NUM_FINITE, 0.01, &l->slope);
        break;
    case BASIN_ACT_PWL:
        rc |= spec_check_keys(c, obj, pwl_keys, "activation pwl");
        rc |= spec_get_num(c, obj, "s_neg", 1, SPEC_NUM_FINITE, 0, &l->s_neg);
        rc |= spec_get_num(c, obj, "s_pos", 1, SPEC_NUM_FINITE, 1, &l->s_pos);
        break;
    default:
        rc |= spec_check_keys(c, obj, relu_keys,
                              l->act == BASIN_ACT_RELU ? "activation relu" : "activation identity");
        break;
    }
    return rc ? BASIN_EINVAL : BASIN_OK;
}

static int parse_layer(struct spec_ctx *c, const json_t *obj, basin_layer_spec *l)
{
    const struct limits *lim = c->lim;
    size_t t;
    int rc = BASIN_OK;
    memset(l, 0, sizeof *l);
    if (!json_is_object(obj)) {
        spec_err(c, "must be an object");
        return BASIN_EINVAL;
    }
    if (spec_get_enum(c, obj, "type", 1, layer_type_names, N_LAYER_TYPES, 0, &t) != BASIN_OK)
        return BASIN_EINVAL;
    l->kind = layer_type_kinds[t];
    switch (l->kind) {
    case BASIN_LAYER_DENSE:
        rc |= spec_check_keys(c, obj, dense_keys, "a dense layer");
        rc |= spec_get_size(c, obj, "units", 1, 1, lim->max_width, 0, &l->units);
        rc |= spec_get_bool(c, obj, "bias", 1, &l->bias);
        break;
    case BASIN_LAYER_CONV2D:
        rc |= spec_check_keys(c, obj, conv_keys, "a conv2d layer");
        rc |= spec_get_size(c, obj, "filters", 1, 1, lim->max_width, 0, &l->filters);
        rc |= spec_get_size(c, obj, "kernel", 1, 1, lim->max_width, 0, &l->kernel);
        rc |= spec_get_size(c, obj, "stride", 0, 1, lim->max_width, 1, &l->stride);
        rc |= parse_padding(c, obj, l);
        rc |= spec_get_bool(c, obj, "bias", 1, &l->bias);
        break;
    case BASIN_LAYER_AVGPOOL:
    case BASIN_LAYER_MAXPOOL:
        rc |= spec_check_keys(c, obj, pool_keys,
                              l->kind == BASIN_LAYER_AVGPOOL ? "an avgpool layer"
                                                             : "a maxpool layer");
        rc |= spec_get_size(c, obj, "size", 1, 1, lim->max_width, 0, &l->size);
        break;
    case BASIN_LAYER_FLATTEN:
    case BASIN_LAYER_SUM:
        rc |= spec_check_keys(c, obj, bare_keys,
                              l->kind == BASIN_LAYER_SUM ? "a sum layer" : "a flatten layer");
        break;
    case BASIN_LAYER_ACTIVATION:
        rc |= parse_activation(c, obj, l);
        break;
    }
    return rc ? BASIN_EINVAL : BASIN_OK;
}

/* Point a basin_net_error at the field it names (or at the layer / the architecture when the
 * field was not written in the body, e.g. a defaulted stride). */
static void report_net_error(struct spec_ctx *c, const json_t *arch_json,
                             const basin_net_error *err)
{
    const json_t *layers_json = json_object_get(arch_json, "layers");
    const json_t *obj = arch_json;
    size_t mark = c->len;
    if (err->layer >= 0 && (size_t)err->layer < json_array_size(layers_json)) {
        obj = json_array_get(layers_json, (size_t)err->layer);
        spec_ptr_push(c, "layers");
        spec_ptr_push_index(c, (size_t)err->layer);
    }
    if (err->field[0] != '\0' && json_object_get(obj, err->field) != NULL)
        spec_err_at(c, err->field, "%s", err->message);
    else
        spec_err(c, "%s", err->message);
    spec_ptr_pop(c, mark);
}

static size_t add_sat(size_t a, size_t b)
{
    size_t s;
    return basin_add_size(a, b, &s) == BASIN_OK ? s : SIZE_MAX;
}

static size_t mul_sat(size_t a, size_t b)
{
    size_t p;
    return basin_mul_size(a, b, &p) == BASIN_OK ? p : SIZE_MAX;
}

size_t spec_net_activations(const basin_net *net)
{
    size_t total = 0;
    for (size_t i = 0; i < basin_net_layer_count(net); i++) {
        basin_layer_info info;
        basin_net_layer_info(net, i, &info);
        total = add_sat(total, info.out_dim);
    }
    return total;
}

size_t spec_net_forward_work(const basin_net *net)
{
    size_t total = 0;
    for (size_t i = 0; i < basin_net_layer_count(net); i++) {
        basin_layer_info info;
        basin_net_layer_info(net, i, &info);
        size_t positions = info.kind == BASIN_LAYER_CONV2D ? info.out_shape[1] * info.out_shape[2]
                                                           : 1; /* ≤ out_dim: no overflow */
        total = add_sat(total, mul_sat(info.weight_count, positions));
        total = add_sat(total, info.out_dim);
    }
    return total;
}

/* The field that made layer i's output large: units, filters, or the padding when it is what
 * made the feature map larger than the layer's input. */
static const char *size_field(const basin_layer_info *info, const basin_layer_spec *l)
{
    if (info->kind == BASIN_LAYER_DENSE)
        return "units";
    if (l->padding == BASIN_PAD_EXPLICIT && l->pad > 0 &&
        info->out_shape[1] * info->out_shape[2] > info->in_shape[1] * info->in_shape[2])
        return "padding";
    return "filters";
}

/* Σ layer outputs ≤ max_activations. The error names the layer whose output crossed the limit
 * or, for a layer that only copies or shrinks its input (activation, pool, flatten, sum), the
 * dense or conv layer before it, at the field that sets the size. */
static int check_activations(struct spec_ctx *c, const json_t *arch_json, const struct spec_arch *a)
{
    const basin_net *net = a->net;
    size_t total = 0, blame = SIZE_MAX;
    for (size_t i = 0; i < basin_net_layer_count(net); i++) {
        basin_layer_info info;
        basin_net_layer_info(net, i, &info);
        if (info.kind == BASIN_LAYER_DENSE || info.kind == BASIN_LAYER_CONV2D)
            blame = i;
        total = add_sat(total, info.out_dim);
        if (total <= c->lim->max_activations)
            continue;
        size_t at = blame != SIZE_MAX ? blame : i;
        basin_layer_info binfo;
        basin_net_layer_info(net, at, &binfo);
        const char *field = blame != SIZE_MAX ? size_field(&binfo, &a->layers[at]) : NULL;
        const json_t *obj = json_array_get(json_object_get(arch_json, "layers"), at);
        size_t mark = spec_ptr_push(c, "layers");
        spec_ptr_push_index(c, at);
        if (field != NULL && json_object_get(obj, field) != NULL)
            spec_ptr_push(c, field);
        if (total == SIZE_MAX)
            spec_err(c,
                     "makes the network compute more values per sample than can be counted; "
                     "the limit is %zu (the sum of the layer output sizes)",
                     c->lim->max_activations);
        else
            spec_err(c,
                     "makes the network compute %zu values per sample by layer %zu; the limit is "
                     "%zu (the sum of the layer output sizes)",
                     total, i, c->lim->max_activations);
        spec_ptr_pop(c, mark);
        return BASIN_EINVAL;
    }
    return BASIN_OK;
}

static int build_net(struct spec_ctx *c, const json_t *arch_json, struct spec_arch *a)
{
    basin_net_error err;
    memset(&err, 0, sizeof err);
    err.layer = -1;
    int rc = basin_net_create(&a->arch, &a->net, &err);
    if (rc == BASIN_ENOMEM) {
        c->oom = 1;
        return rc;
    }
    if (rc != BASIN_OK) {
        if (err.message[0] == '\0')
            snprintf(err.message, sizeof err.message, "rejected: %s", basin_strerror(rc));
        report_net_error(c, arch_json, &err);
        return BASIN_EINVAL;
    }
    size_t params = basin_net_param_count(a->net);
    rc = BASIN_OK;
    if (params > c->lim->max_params) {
        spec_err(c, "has %zu parameters; the limit is %zu", params, c->lim->max_params);
        rc = BASIN_EINVAL;
    }
    if (check_activations(c, arch_json, a) != BASIN_OK)
        rc = BASIN_EINVAL;
    return rc;
}

int spec_arch_parse_at(struct spec_ctx *c, const json_t *v, size_t default_rank,
                       const size_t *default_shape, struct spec_arch **out)
{
    const struct limits *lim = c->lim;
    struct spec_arch *a = NULL;
    int rc = BASIN_OK, present = 0, shape_unknown = 0;
    size_t errors_before = spec_err_count(c);

    *out = NULL;
    if (!json_is_object(v)) {
        spec_err(c, "must be an object");
        rc = BASIN_EINVAL;
        goto done;
    }
    a = basin_calloc(1, sizeof *a);
    if (a == NULL) {
        c->oom = 1;
        rc = BASIN_ENOMEM;
        goto done;
    }
    spec_check_keys(c, v, arch_keys, NULL);
    spec_get_name(c, v, &a->name);
    if (spec_get_shape(c, v, "input_shape", lim->max_input_dim, &a->arch.in_rank, a->arch.in_shape,
                       &present) == BASIN_OK &&
        !present) {
        if (default_rank == 0) {
            spec_err_at(c, "input_shape", "required");
        } else if (default_rank == SPEC_SHAPE_UNKNOWN) {
            shape_unknown = 1;
        } else {
            a->arch.in_rank = default_rank;
            for (size_t i = 0; i < 3; i++)
                a->arch.in_shape[i] = i < default_rank ? default_shape[i] : 0;
            a->input_shape_defaulted = 1;
        }
    }

    json_t *layers = json_object_get(v, "layers");
    size_t n = json_is_array(layers) ? json_array_size(layers) : 0;
    if (layers == NULL) {
        spec_err_at(c, "layers", "required");
    } else if (n == 0) {
        spec_err_at(c, "layers", "must be a non-empty array of layers");
    } else if (n > lim->max_layers) {
        spec_err_at(c, "layers", "has %zu layers; the limit is %zu", n, lim->max_layers);
    } else {
        a->layers = basin_alloc_array(n, sizeof *a->layers);
        if (a->layers == NULL) {
            c->oom = 1;
            rc = BASIN_ENOMEM;
            goto done;
        }
        a->arch.layers = a->layers;
        a->arch.n_layers = n;
        size_t mark = spec_ptr_push(c, "layers");
        for (size_t i = 0; i < n; i++) {
            size_t m2 = spec_ptr_push_index(c, i);
            parse_layer(c, json_array_get(layers, i), &a->layers[i]);
            spec_ptr_pop(c, m2);
        }
        spec_ptr_pop(c, mark);
    }
    if (c->oom) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (spec_err_count(c) != errors_before || shape_unknown) {
        rc = BASIN_EINVAL;
        goto done;
    }
    rc = build_net(c, v, a);
done:
    if (rc == BASIN_OK)
        *out = a;
    else
        spec_arch_free(a);
    return rc;
}

int spec_arch_parse(const json_t *body, const struct limits *lim, struct spec_arch **out,
                    struct spec_errors *errs)
{
    struct limits dl;
    struct spec_ctx c;
    if (lim == NULL) {
        limits_defaults(&dl);
        lim = &dl;
    }
    spec_ctx_init(&c, lim, errs);
    int rc = spec_arch_parse_at(&c, body, 0, NULL, out);
    return c.oom ? BASIN_ENOMEM : rc;
}

/* ---- canonical JSON ---- */

static json_t *layer_to_json(const basin_layer_spec *l)
{
    json_t *o = json_object();
    int ok = o != NULL;
    const char *type = "dense";
    for (size_t i = 0; i < N_LAYER_TYPES; i++)
        if (layer_type_kinds[i] == l->kind)
            type = layer_type_names[i];
    spec_set(o, "type", json_string(type), &ok);
    switch (l->kind) {
    case BASIN_LAYER_DENSE:
        spec_set(o, "units", json_integer((json_int_t)l->units), &ok);
        spec_set(o, "bias", json_boolean(l->bias), &ok);
        break;
    case BASIN_LAYER_CONV2D:
        spec_set(o, "filters", json_integer((json_int_t)l->filters), &ok);
        spec_set(o, "kernel", json_integer((json_int_t)l->kernel), &ok);
        spec_set(o, "stride", json_integer((json_int_t)l->stride), &ok);
        if (l->padding == BASIN_PAD_EXPLICIT)
            spec_set(o, "padding", json_integer((json_int_t)l->pad), &ok);
        else
            spec_set(o, "padding", json_string(l->padding == BASIN_PAD_SAME ? "same" : "valid"),
                     &ok);
        spec_set(o, "bias", json_boolean(l->bias), &ok);
        break;
    case BASIN_LAYER_AVGPOOL:
    case BASIN_LAYER_MAXPOOL:
        spec_set(o, "size", json_integer((json_int_t)l->size), &ok);
        break;
    case BASIN_LAYER_ACTIVATION:
        for (size_t i = 0; i < 4; i++)
            if (act_kinds[i] == l->act)
                spec_set(o, "kind", json_string(act_names[i]), &ok);
        if (l->act == BASIN_ACT_LEAKY_RELU)
            spec_set(o, "slope", json_real(l->slope), &ok);
        if (l->act == BASIN_ACT_PWL) {
            spec_set(o, "s_neg", json_real(l->s_neg), &ok);
            spec_set(o, "s_pos", json_real(l->s_pos), &ok);
        }
        break;
    case BASIN_LAYER_FLATTEN:
    case BASIN_LAYER_SUM:
        break;
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *layers_to_json(const struct spec_arch *a)
{
    json_t *arr = json_array();
    int ok = arr != NULL;
    for (size_t i = 0; ok && i < a->arch.n_layers; i++)
        spec_append(arr, layer_to_json(&a->layers[i]), &ok);
    if (!ok) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

json_t *spec_arch_to_json(const struct spec_arch *a)
{
    json_t *o = json_object();
    int ok = o != NULL;
    if (a->name != NULL)
        spec_set(o, "name", json_string(a->name), &ok);
    spec_set(o, "input_shape", spec_json_shape(a->arch.in_rank, a->arch.in_shape), &ok);
    spec_set(o, "layers", layers_to_json(a), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *spec_arch_summary(const struct spec_arch *a)
{
    json_t *o = spec_arch_to_json(a);
    int ok = o != NULL;
    spec_set(o, "output_dim", json_integer((json_int_t)basin_net_out_dim(a->net)), &ok);
    spec_set(o, "param_count", json_integer((json_int_t)basin_net_param_count(a->net)), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}
