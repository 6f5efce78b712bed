/* Initial parameter vectors (basin_net_init_params in net.h): He / Xavier (normal or uniform),
 * plain normal / uniform, or a given vector.
 *
 * Fans follow torch.nn.init._calculate_fan_in_and_fan_out: dense fan_in = in features,
 * fan_out = units; conv fan_in = in_c·k·k, fan_out = out_c·k·k. Parameters are drawn in θ order
 * (layer by layer, weight then bias), so one (seed, stream) always gives the same θ. He and
 * Xavier set biases to the constant init->bias; NORMAL and UNIFORM draw every parameter. */
#include <math.h>
#include <string.h>

#include "basin/status.h"
#include "net_int.h"

static int init_valid(const basin_net *net, const basin_init *init, const basin_rng *rng,
                      const double *theta)
{
    if (!net || !init || !theta)
        return 0;
    switch (init->kind) {
    case BASIN_INIT_HE_NORMAL:
    case BASIN_INIT_HE_UNIFORM:
    case BASIN_INIT_XAVIER_NORMAL:
    case BASIN_INIT_XAVIER_UNIFORM:
        return rng && isfinite(init->bias);
    case BASIN_INIT_NORMAL:
        return rng && isfinite(init->std) && init->std >= 0;
    case BASIN_INIT_UNIFORM:
        return rng && isfinite(init->a) && init->a >= 0;
    case BASIN_INIT_GIVEN:
        if (!init->given || init->given_len != net->param_count)
            return 0;
        for (size_t i = 0; i < init->given_len; i++)
            if (!isfinite(init->given[i]))
                return 0;
        return 1;
    }
    return 0;
}

/* Fill n values with N(0, std²) (normal) or U(−bound, bound). */
static void draw(basin_rng *rng, int normal, double scale, double *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] =
            normal ? scale * basin_rng_normal(rng) : scale * (2.0 * basin_rng_uniform(rng) - 1.0);
}

int basin_net_init_params(const basin_net *net, const basin_init *init, basin_rng *rng,
                          double *theta)
{
    int rc = BASIN_OK;
    if (!init_valid(net, init, rng, theta)) {
        rc = BASIN_EINVAL;
        goto done;
    }
    if (init->kind == BASIN_INIT_GIVEN) {
        memcpy(theta, init->given, net->param_count * sizeof *theta);
        goto done;
    }
    if (init->kind == BASIN_INIT_NORMAL || init->kind == BASIN_INIT_UNIFORM) {
        int normal = init->kind == BASIN_INIT_NORMAL;
        draw(rng, normal, normal ? init->std : init->a, theta, net->param_count);
        goto done;
    }
    for (size_t l = 0; l < net->n_layers; l++) {
        const basin__layer *L = &net->layers[l];
        if (!basin__layer_has_params(L))
            continue;
        double *w = theta + L->info.param_offset;
        double fan_in = (double)L->fan_in, fan_out = (double)L->fan_out, scale = 0.0;
        int normal = 0;
        switch (init->kind) {
        case BASIN_INIT_HE_NORMAL:
            normal = 1;
            scale = sqrt(2.0 / fan_in);
            break;
        case BASIN_INIT_HE_UNIFORM:
            scale = sqrt(6.0 / fan_in);
            break;
        case BASIN_INIT_XAVIER_NORMAL:
            normal = 1;
            scale = sqrt(2.0 / (fan_in + fan_out));
            break;
        case BASIN_INIT_XAVIER_UNIFORM:
            scale = sqrt(6.0 / (fan_in + fan_out));
            break;
        default:
            break;
        }
        draw(rng, normal, scale, w, L->info.weight_count);
        for (size_t j = 0; j < L->info.bias_count; j++)
            w[L->info.weight_count + j] = init->bias;
    }
done:
    return rc;
}
