/* Exact Hessian-vector products of the empirical risk (basin_net_hvp in net.h).
 *
 * DESIGN — Pearlmutter's R-operator (Pearlmutter, "Fast exact multiplication by the Hessian",
 * Neural Computation 6(1), 1994). R{g} = d/dε g(θ + εv) at ε = 0 is applied to every quantity
 * of the forward and backward passes; R{∇R} is then H·v.
 * - R-forward: R{a_0} = 0 (inputs do not depend on θ). A dense or conv layer z = W∗a + b gives
 *   R{z} = W∗R{a} + V_W∗a + V_b (V_W, V_b: v at the layer's offset). An activation gives
 *   R{h(z)} = h'(z)·R{z} (h'' = 0 off the kinks); pools and sum are linear in their input,
 *   max pooling with its switches frozen at the forward pass's argmax.
 * - Output: e = ∂ℓ/∂o / m and R{e} = ∇²ℓ(o)·R{o} / m (basin_loss_hess_vec).
 * - R-backward, layer by layer from the top: for z = W∗a + b with output error δ,
 *     R{∂/∂W} = R{δ} ⋆ a + δ ⋆ R{a},   R{∂/∂b} = Σ R{δ},
 *     R{δ_in} = Wᵀ∗R{δ} + V_Wᵀ∗δ,      δ_in = Wᵀ∗δ,
 *   (⋆ the weight-gradient contraction of the layer); activations multiply δ and R{δ} by the
 *   same slopes h'(z), pools and sum apply their transposes to both.
 * - Layers below the first parametrised layer are skipped in both passes: their R-values are
 *   zero and their errors are not needed. Chunks of max_batch rows accumulate into hv; nothing
 *   allocates. */
#include <string.h>

#include "basin/status.h"
#include "net_int.h"

/* ract[l+1] for every layer from the first parametrised one up, given act[] of the same rows. */
static void rforward_rows(const basin_net *net, basin_net_ws *ws, const double *theta,
                          const double *v, size_t m)
{
    for (size_t l = net->first_param; l < net->n_layers; l++) {
        const basin__layer *L = &net->layers[l];
        const double *a = ws->act[l], *ra = ws->ract[l];
        double *rz = ws->ract[l + 1];
        size_t off = L->info.param_offset, wc = L->info.weight_count;
        const double *W = theta + off, *VW = v + off;
        const double *Vb = L->info.bias_count ? VW + wc : NULL;
        int r_in = l > net->first_param; /* R{a} is zero at the first parametrised layer */
        switch (L->spec.kind) {
        case BASIN_LAYER_DENSE:
            basin__dense_fwd(L, m, a, VW, Vb, 0, rz);
            if (r_in)
                basin__dense_fwd(L, m, ra, W, NULL, 1, rz);
            break;
        case BASIN_LAYER_CONV2D:
            basin__conv_fwd(L, ws, l, m, a, VW, Vb, 0, rz, NULL);
            if (r_in)
                basin__conv_fwd(L, ws, l, m, ra, W, NULL, 1, rz, NULL);
            break;
        case BASIN_LAYER_AVGPOOL:
            basin__avgpool_fwd(L, m, ra, rz);
            break;
        case BASIN_LAYER_MAXPOOL:
            basin__maxpool_gather(L, m, ra, ws->argmax[l], rz);
            break;
        case BASIN_LAYER_FLATTEN:
            break;
        case BASIN_LAYER_ACTIVATION:
            basin__act_apply(L, m, a, ra, rz);
            break;
        case BASIN_LAYER_SUM:
            basin__sum_fwd(L, m, ra, rz);
            break;
        }
    }
}

/* Add R{∇} of this chunk to hv; ws->delta[0] / ws->rdelta[0] hold e and R{e} of the output. */
static void rbackward_rows(const basin_net *net, basin_net_ws *ws, const double *theta,
                           const double *v, size_t m, double *hv)
{
    double *d = ws->delta[0], *e = ws->delta[1], *rd = ws->rdelta[0], *re = ws->rdelta[1];
    for (size_t l = net->n_layers; l-- > net->first_param;) {
        const basin__layer *L = &net->layers[l];
        const double *a = ws->act[l], *ra = ws->ract[l];
        size_t off = L->info.param_offset, wc = L->info.weight_count;
        const double *W = theta + off, *VW = v + off;
        double *hW = hv + off, *hb = L->info.bias_count ? hW + wc : NULL;
        int below = l > net->first_param; /* also: R{a} ≠ 0 */
        switch (L->spec.kind) {
        case BASIN_LAYER_DENSE:
            basin__dense_wgrad(L, m, rd, a, hW, hb);
            if (!below)
                break;
            basin__dense_wgrad(L, m, d, ra, hW, NULL);
            basin__dense_bwd(L, m, d, W, 0, e);
            basin__dense_bwd(L, m, rd, W, 0, re);
            basin__dense_bwd(L, m, d, VW, 1, re);
            break;
        case BASIN_LAYER_CONV2D:
            /* act[l] was unfolded by basin__forward_rows of these rows */
            basin__conv_wgrad(L, ws, l, m, rd, a, hW, hb, basin__conv_keep(ws, l, m));
            if (!below)
                break;
            basin__conv_wgrad(L, ws, l, m, d, ra, hW, NULL, NULL);
            basin__conv_bwd(L, ws, l, m, d, W, 0, e, 0);
            basin__conv_bwd(L, ws, l, m, rd, W, 0, re, 0);
            basin__conv_bwd(L, ws, l, m, d, VW, 1, re, 0);
            break;
        case BASIN_LAYER_AVGPOOL:
            basin__avgpool_bwd(L, m, d, e);
            basin__avgpool_bwd(L, m, rd, re);
            break;
        case BASIN_LAYER_MAXPOOL:
            basin__maxpool_bwd(L, m, d, ws->argmax[l], e);
            basin__maxpool_bwd(L, m, rd, ws->argmax[l], re);
            break;
        case BASIN_LAYER_FLATTEN:
            continue;
        case BASIN_LAYER_ACTIVATION:
            basin__act_apply(L, m, a, d, e);
            basin__act_apply(L, m, a, rd, re);
            break;
        case BASIN_LAYER_SUM:
            basin__sum_bwd(L, m, d, e);
            basin__sum_bwd(L, m, rd, re);
            break;
        }
        double *t = d;
        d = e;
        e = t;
        t = rd;
        rd = re;
        re = t;
    }
}

int basin_net_hvp(const basin_net *net, basin_net_ws *ws, const double *theta,
                  const basin_dataset *ds, const size_t *idx, size_t m, const basin_loss *loss,
                  const double *v, double *hv)
{
    int rc = basin__check_selection(net, ws, ds, idx, m, loss);
    if (rc == BASIN_OK && (!theta || !v || !hv))
        rc = BASIN_EINVAL;
    if (rc || net->param_count == 0)
        goto done;
    size_t k = net->out_dim;
    double inv_m = 1.0 / (double)m;
    memset(hv, 0, net->param_count * sizeof *hv);
    for (size_t start = 0; start < m; start += ws->chunk) {
        size_t cm = m - start < ws->chunk ? m - start : ws->chunk;
        basin__gather(ws, ds, idx, start, cm);
        basin__forward_rows(net, ws, theta, cm);
        rforward_rows(net, ws, theta, v, cm);
        const double *o = ws->act[net->n_layers], *ro = ws->ract[net->n_layers];
        double *e = ws->delta[0], *re = ws->rdelta[0];
        for (size_t i = 0; i < cm; i++) {
            const double *y = ds->y + (idx ? idx[start + i] : start + i) * ds->y_dim;
            basin_loss_eval(loss, o + i * k, y, k, e + i * k);
            basin_loss_hess_vec(loss, o + i * k, y, k, ro + i * k, re + i * k);
        }
        for (size_t j = 0; j < cm * k; j++) {
            e[j] *= inv_m;
            re[j] *= inv_m;
        }
        rbackward_rows(net, ws, theta, v, cm, hv);
    }
done:
    return rc;
}
