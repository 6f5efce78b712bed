/* Rescaling symmetry of PL networks: finding the hidden slots of a net and normalising them
 * (basin_normalize in basins.h). basins_align.c builds on the same slot table.
 *
 * DESIGN
 * - Symmetry: for a two-slope unit h(z) = s_pos·z (z > 0), s_neg·z (z ≤ 0) and c > 0,
 *   h(c·z) = c·h(z), whatever the slopes. Average pooling is linear, max pooling satisfies
 *   max(c·z) = c·max(z), flatten moves no data; all act per channel. So multiplying the
 *   incoming weights and bias of unit u by 1/c and the columns of the next parametrised layer
 *   that u feeds by c leaves every later pre-activation, hence the function, unchanged.
 * - A slot is normalised only when a nonlinear activation (s_neg ≠ s_pos) lies between it and
 *   the next parametrised layer: with linear maps only, the symmetry group is all of GL(n) and
 *   fixing the scales alone would not give a canonical form worth having.
 * - Canonical form: processing slots from the input side, slot k's rows are normalised after
 *   the earlier slots have rescaled its columns. If θ' = D·θ for per-unit scalings D, the
 *   first slot's normalised rows coincide (w/‖w‖ is scale-free) and pass identical columns on,
 *   and by induction every slot does: normalize(θ') = normalize(θ) up to rounding.
 * - Units with zero incoming norm compute the constant h(0) = 0 and are left alone (their
 *   outgoing weights are then irrelevant to the function and stay as given). */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "basins_int.h"

/* Walk from parametrised layer l to the next one; *next = n_layers when none is reached
 * through per-channel layers only. *nonlinear tells whether a nonlinear activation was passed. */
static void follow(const basin_net *net, size_t l, size_t *next, int *nonlinear)
{
    *nonlinear = 0;
    *next = net->n_layers;
    for (size_t j = l + 1; j < net->n_layers; j++) {
        const basin__layer *L = &net->layers[j];
        switch (L->spec.kind) {
        case BASIN_LAYER_DENSE:
        case BASIN_LAYER_CONV2D:
            *next = j;
            return;
        case BASIN_LAYER_ACTIVATION:
            if (L->spec.s_neg != L->spec.s_pos)
                *nonlinear = 1;
            break;
        case BASIN_LAYER_AVGPOOL:
        case BASIN_LAYER_MAXPOOL:
        case BASIN_LAYER_FLATTEN:
            break;
        case BASIN_LAYER_SUM:
            return;
        }
    }
}

/* Fill s for layer l feeding layer n; BASIN_ENOTSUP if the shapes do not split per unit (cannot
 * happen for nets basin_net_create accepted, checked anyway), BASIN_ERANGE beyond BLAS's int. */
static int describe(const basin_net *net, size_t l, size_t n, int nonlinear, basin__slot *s)
{
    const basin__layer *L = &net->layers[l], *N = &net->layers[n];
    memset(s, 0, sizeof *s);
    s->layer = l;
    s->next = n;
    s->units = L->info.out_shape[0];
    s->in_len = L->fan_in;
    s->has_bias = L->info.bias_count > 0;
    s->next_rows = N->info.out_shape[0];
    s->next_cols = N->fan_in;
    s->rescalable = nonlinear;
    s->w_off = L->info.param_offset;
    s->b_off = L->info.param_offset + L->info.weight_count;
    s->wn_off = N->info.param_offset;
    if (s->units == 0 || s->next_cols % s->units != 0 ||
        (N->spec.kind == BASIN_LAYER_CONV2D && N->info.in_shape[0] != s->units))
        return BASIN_ENOTSUP;
    s->block = s->next_cols / s->units;
    if (s->units > INT_MAX || s->in_len > INT_MAX || s->next_cols > INT_MAX ||
        s->next_rows > INT_MAX)
        return BASIN_ERANGE;
    return BASIN_OK;
}

int basin__find_slots(const basin_net *net, basin__slot **slots, size_t *n_slots)
{
    basin__slot *tab = NULL;
    size_t count = 0;
    int rc = BASIN_OK;
    *slots = NULL;
    *n_slots = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        size_t n;
        int nonlinear;
        if (!basin__layer_has_params(&net->layers[l]))
            continue;
        follow(net, l, &n, &nonlinear);
        if (n == net->n_layers)
            continue;
        if (!tab) {
            tab = basin_alloc_array(net->n_layers, sizeof *tab);
            if (!tab) {
                rc = BASIN_ENOMEM;
                goto done;
            }
        }
        rc = describe(net, l, n, nonlinear, &tab[count]);
        if (rc)
            goto done;
        count++;
    }
    *slots = tab;
    *n_slots = count;
    tab = NULL;
done:
    basin_free(tab);
    return rc;
}

void basin__normalize_slots(const basin__slot *slots, size_t n_slots, double *theta)
{
    for (size_t k = 0; k < n_slots; k++) {
        const basin__slot *s = &slots[k];
        if (!s->rescalable)
            continue;
        for (size_t u = 0; u < s->units; u++) {
            double *w = theta + s->w_off + u * s->in_len;
            double *b = s->has_bias ? theta + s->b_off + u : NULL;
            double sq = b ? *b * *b : 0.0;
            for (size_t j = 0; j < s->in_len; j++)
                sq += w[j] * w[j];
            double norm = sqrt(sq);
            if (!(norm > 0.0) || !isfinite(norm))
                continue;
            for (size_t j = 0; j < s->in_len; j++)
                w[j] /= norm;
            if (b)
                *b /= norm;
            for (size_t r = 0; r < s->next_rows; r++) {
                double *col = theta + s->wn_off + r * s->next_cols + u * s->block;
                for (size_t j = 0; j < s->block; j++)
                    col[j] *= norm;
            }
        }
    }
}

int basin_normalize(const basin_net *net, const double *theta_in, double *theta_out)
{
    basin__slot *slots = NULL;
    size_t n_slots = 0;
    int rc = BASIN_OK;
    if (!net || !theta_in || !theta_out) {
        rc = BASIN_EINVAL;
        goto done;
    }
    rc = basin__find_slots(net, &slots, &n_slots);
    if (rc)
        goto done;
    if (theta_out != theta_in)
        memcpy(theta_out, theta_in, net->param_count * sizeof *theta_out);
    basin__normalize_slots(slots, n_slots, theta_out);
done:
    basin_free(slots);
    return rc;
}
