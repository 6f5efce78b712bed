/* Forward evaluation, empirical risk and its exact gradient by back-propagation (net.h).
 *
 * DESIGN
 * - The selected samples are processed in chunks of at most ws->chunk rows (≤ max_batch, sized
 *   so that a chunk's layer values stay in L2; net_ws.c): gather the input rows (a full batch
 *   in sample order is read in place, not copied: act[0] points into the dataset), run every
 *   layer forward on the whole chunk (act[l+1] = layer_l(act[l])), add
 *   the per-sample losses in sample order (so the risk does not depend on the chunking), set
 *   the output errors to ∂ℓ/∂o / m and propagate them down. Gradients of all chunks accumulate
 *   into grad; each weight gradient is one GEMM per chunk (net_layers.c).
 * - Back-propagation stops at the first parametrised layer: nothing below it has parameters,
 *   so the errors of its input are never formed.
 * - Errors ping-pong between two max_batch × max_dim buffers; a flatten layer changes neither
 *   data nor errors, so it is skipped (its buffers alias).
 * - Small dense nets (lanes_int.h) take the fused lane kernel instead, which sums every
 *   gradient entry and the risk in sample order too, so its results do not depend on the
 *   chunking either; mid-size dense nets on AVX-512 CPUs take the fused row kernel
 *   (rows_int.h), and convolutional nets the block kernel (conv_int.h). All leave the last
 *   chunk's layer values in ws like the path above.
 * - Invariant: nothing here allocates; all memory is in the workspace. */
#include <stdint.h>
#include <string.h>

#include "basin/status.h"
#include "conv_int.h"
#include "lanes_int.h"
#include "net_int.h"
#include "rows_int.h"

int basin__check_selection(const basin_net *net, const basin_net_ws *ws, const basin_dataset *ds,
                           const size_t *idx, size_t m, const basin_loss *loss)
{
    if (!net || !ws || !ds || !loss || ws->net != net || m == 0 || !ds->x || !ds->y)
        return BASIN_EINVAL;
    if (ds->in_dim != net->in_dim || basin_loss_check(loss, net->out_dim) != BASIN_OK ||
        ds->y_dim != basin_loss_target_dim(loss, net->out_dim))
        return BASIN_EINVAL;
    for (size_t i = 0; i < m; i++) {
        size_t s = idx ? idx[i] : i;
        if (s >= ds->n || basin_loss_check_target(loss, net->out_dim, ds->y + s * ds->y_dim))
            return BASIN_EINVAL;
    }
    return BASIN_OK;
}

void basin__gather(basin_net_ws *ws, const basin_dataset *ds, const size_t *idx, size_t start,
                   size_t count)
{
    size_t d = ds->in_dim;
    if (!idx) {
        memcpy(ws->act[0], ds->x + start * d, count * d * sizeof *ds->x);
        return;
    }
    for (size_t i = 0; i < count; i++)
        memcpy(ws->act[0] + i * d, ds->x + idx[start + i] * d, d * sizeof *ds->x);
}

/* act[0] and the act[] slots after leading flatten layers share one buffer (net_ws.c). */
static size_t input_aliases(const basin_net *net)
{
    size_t k = 1;
    while (k - 1 < net->n_layers && net->layers[k - 1].spec.kind == BASIN_LAYER_FLATTEN)
        k++;
    return k;
}

/* Make the input rows of the layers be `rows`. The layers only ever read act[0] (forward
 * passes write act[l + 1], back-propagation writes the delta buffers), so it may point into
 * the dataset, which is how a full-batch evaluation avoids copying every input row. */
static void point_input(basin_net_ws *ws, size_t aliases, double *rows)
{
    for (size_t l = 0; l < aliases; l++)
        ws->act[l] = rows;
}

/* 1 when basin_net_ws_layer_input can return the input rows (the first layer that is not a
 * flatten is an activation or max pool), so they must be left in the workspace's own buffer. */
static int input_values_kept(const basin_net *net, size_t aliases)
{
    if (aliases > net->n_layers)
        return 0;
    basin_layer_kind k = net->layers[aliases - 1].spec.kind;
    return k == BASIN_LAYER_ACTIVATION || k == BASIN_LAYER_MAXPOOL;
}

void basin__forward_rows(const basin_net *net, basin_net_ws *ws, const double *theta, size_t m)
{
    for (size_t l = 0; l < net->n_layers; l++) {
        const basin__layer *L = &net->layers[l];
        const double *a = ws->act[l];
        double *z = ws->act[l + 1];
        const double *W = theta + L->info.param_offset;
        const double *b = L->info.bias_count ? W + L->info.weight_count : NULL;
        switch (L->spec.kind) {
        case BASIN_LAYER_DENSE:
            basin__dense_fwd(L, m, a, W, b, 0, z);
            break;
        case BASIN_LAYER_CONV2D:
            basin__conv_fwd(L, ws, l, m, a, W, b, 0, z, basin__conv_keep(ws, l, m));
            break;
        case BASIN_LAYER_AVGPOOL:
            basin__avgpool_fwd(L, m, a, z);
            break;
        case BASIN_LAYER_MAXPOOL:
            basin__maxpool_fwd(L, m, a, z, ws->argmax[l]);
            break;
        case BASIN_LAYER_FLATTEN:
            break;
        case BASIN_LAYER_ACTIVATION:
            basin__act_apply(L, m, a, a, z);
            break;
        case BASIN_LAYER_SUM:
            basin__sum_fwd(L, m, a, z);
            break;
        }
    }
    ws->rows = m;
}

/* Add the gradient of Σ_i e_i·f(x_i) to grad, where the errors e (m × out_dim) are in
 * ws->delta[0] and act[] holds the forward pass of the same rows. */
static void backward_rows(const basin_net *net, basin_net_ws *ws, const double *theta, size_t m,
                          double *grad)
{
    double *d = ws->delta[0], *e = ws->delta[1];
    for (size_t l = net->n_layers; l-- > net->first_param;) {
        const basin__layer *L = &net->layers[l];
        const double *a = ws->act[l];
        const double *W = theta + L->info.param_offset;
        double *gW = grad + L->info.param_offset;
        double *gb = L->info.bias_count ? gW + L->info.weight_count : NULL;
        int need_in = l > net->first_param;
        switch (L->spec.kind) {
        case BASIN_LAYER_DENSE:
            basin__dense_wgrad(L, m, d, a, gW, gb);
            if (need_in)
                basin__dense_bwd(L, m, d, W, 0, e);
            break;
        case BASIN_LAYER_CONV2D:
            basin__conv_wgrad(L, ws, l, m, d, a, gW, gb, basin__conv_keep(ws, l, m));
            if (need_in) /* with a kept im2col, wgrad left d in GEMM order in ws->tmp */
                basin__conv_bwd(L, ws, l, m, d, W, 0, e, basin__conv_keep(ws, l, m) != NULL);
            break;
        case BASIN_LAYER_AVGPOOL:
            basin__avgpool_bwd(L, m, d, e);
            break;
        case BASIN_LAYER_MAXPOOL:
            basin__maxpool_bwd(L, m, d, ws->argmax[l], e);
            break;
        case BASIN_LAYER_FLATTEN:
            continue;
        case BASIN_LAYER_ACTIVATION:
            basin__act_apply(L, m, a, d, e);
            break;
        case BASIN_LAYER_SUM:
            basin__sum_bwd(L, m, d, e);
            break;
        }
        double *t = d;
        d = e;
        e = t;
    }
}

int basin_net_forward(const basin_net *net, basin_net_ws *ws, const double *theta, const double *x,
                      size_t m, double *out)
{
    if (!net || !ws || ws->net != net || !theta || !x || !out)
        return BASIN_EINVAL;
    size_t din = net->in_dim, dout = net->out_dim;
    for (size_t start = 0; start < m; start += ws->max_batch) {
        size_t cm = m - start < ws->max_batch ? m - start : ws->max_batch;
        memcpy(ws->act[0], x + start * din, cm * din * sizeof *x);
        basin__forward_rows(net, ws, theta, cm);
        memcpy(out + start * dout, ws->act[net->n_layers], cm * dout * sizeof *out);
    }
    return BASIN_OK;
}

int basin_net_risk_grad(const basin_net *net, basin_net_ws *ws, const double *theta,
                        const basin_dataset *ds, const size_t *idx, size_t m,
                        const basin_loss *loss, double *risk, double *grad)
{
    int rc = basin__check_selection(net, ws, ds, idx, m, loss);
    if (rc == BASIN_OK && (!theta || !risk))
        rc = BASIN_EINVAL;
    if (rc)
        goto done;
    size_t k = net->out_dim;
    double sum = 0.0, inv_m = 1.0 / (double)m;
    if (grad)
        memset(grad, 0, net->param_count * sizeof *grad);
    if (ws->lanes) {
        basin__lanes_eval(net, 1, theta, ds, idx, m, loss, grad, risk, ws->lanes, ws);
        goto done;
    }
    if (ws->rowscratch) {
        basin__rows_eval(net, theta, ds, idx, m, loss, grad, risk, ws->rowscratch, ws);
        goto done;
    }
    if (ws->convscratch) {
        basin__conv_eval(net, theta, ds, idx, m, loss, grad, risk, ws->convscratch, ws);
        goto done;
    }
    /* Samples 0..m−1 in order (full batch): the layers read the dataset's rows in place. */
    double *own_input = ws->act[0];
    size_t aliases = input_aliases(net), last = 0;
    for (size_t start = 0; start < m; start += ws->chunk) {
        size_t cm = m - start < ws->chunk ? m - start : ws->chunk;
        if (idx)
            basin__gather(ws, ds, idx, start, cm);
        else
            point_input(ws, aliases, (double *)(uintptr_t)(ds->x + start * ds->in_dim));
        last = start;
        basin__forward_rows(net, ws, theta, cm);
        const double *o = ws->act[net->n_layers];
        double *e = ws->delta[0];
        for (size_t i = 0; i < cm; i++) {
            size_t s = idx ? idx[start + i] : start + i;
            sum +=
                basin_loss_eval(loss, o + i * k, ds->y + s * ds->y_dim, k, grad ? e + i * k : NULL);
        }
        if (!grad)
            continue;
        for (size_t j = 0; j < cm * k; j++)
            e[j] *= inv_m;
        backward_rows(net, ws, theta, cm, grad);
    }
    if (!idx) {
        point_input(ws, aliases, own_input);
        if (input_values_kept(net, aliases)) /* basin_net_ws_layer_input may ask for them */
            memcpy(own_input, ds->x + last * ds->in_dim, ws->rows * ds->in_dim * sizeof *ds->x);
    }
    *risk = sum / (double)m;
done:
    return rc;
}
