/* The evaluation workspace of a net (net.h): every buffer forward, backward and the R-operator
 * need for up to max_batch samples, allocated once so that evaluation never allocates.
 *
 * Layout: one double block holds act[] and ract[] (one buffer per layer boundary, flatten
 * boundaries aliased), four max_batch × max_dim error buffers, and the conv im2col and
 * transpose buffers (sized for the largest conv group); one size_t block holds the max-pool
 * switches. Conv groups are sized so that one im2col buffer stays near CONV_COL_CAP doubles.
 * Nets the lane kernel (lanes_int.h) or the row kernel (rows_int.h) takes also get that
 * kernel's scratch, so that basin_net_risk_grad can use it without allocating; so do the
 * convolutional nets the block kernel (conv_int.h) takes. */
#include <limits.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "conv_int.h"
#include "lanes_int.h"
#include "net_int.h"
#include "rows_int.h"

#define CONV_COL_CAP ((size_t)1 << 20)
/* Nets with convolutions are evaluated (basin_net_risk_grad, basin_net_hvp) in chunks whose
 * layer values and errors take about this many bytes (rows clamped to [CHUNK_MIN, CHUNK_MAX]):
 * chunks that stay in L2 make im2col, its reuse and the element-wise passes cheap, and the
 * GEMMs stay large enough. Dense-only nets use all of max_batch: their GEMMs gain more from
 * size (measured: 784-256-256-10 on 10000 rows runs ~2x faster unchunked than in 32-row chunks,
 * the conv case d ~1.4x faster in 32-row chunks than unchunked). */
#define CHUNK_BYTES ((size_t)512 * 1024)
/* At most this many doubles of conv im2col keep buffers (net_layers.c) per workspace. */
#define KEEP_CAP ((size_t)1 << 22)
#define CHUNK_MIN 32
#define CHUNK_MAX 256

/* Samples per im2col group of a conv layer and the col / tmp lengths that group needs. */
static int conv_plan(const basin__layer *L, size_t max_batch, size_t *group, size_t *col_len,
                     size_t *tmp_len)
{
    size_t per;
    if (basin_mul_size(L->conv_p, L->conv_ckk, &per) != BASIN_OK)
        return BASIN_ERANGE;
    size_t g = per > 0 ? CONV_COL_CAP / per : max_batch;
    if (g < 1)
        g = 1;
    if (g > max_batch)
        g = max_batch;
    *group = g;
    if (basin_mul_size(g, per, col_len) != BASIN_OK ||
        basin_mul_size(g * L->conv_p, L->spec.filters, tmp_len) != BASIN_OK)
        return BASIN_ERANGE;
    return BASIN_OK;
}

static int add_buffer(size_t rows, size_t cols, size_t *total)
{
    size_t n;
    if (basin_mul_size(rows, cols, &n) != BASIN_OK || basin_add_size(*total, n, total) != BASIN_OK)
        return BASIN_ERANGE;
    return BASIN_OK;
}

/* Count the doubles and size_t values the workspace needs; BASIN_ERANGE when a size overflows or
 * a matrix dimension does not fit BLAS's int. */
static int plan_ws(const basin_net *net, basin_net_ws *ws, size_t *n_double, size_t *n_index,
                   size_t *col_len, size_t *tmp_len)
{
    size_t mb = ws->max_batch, total = 0, itotal = 0;
    int rc = BASIN_OK;
    if (mb > INT_MAX || net->max_dim > INT_MAX)
        return BASIN_ERANGE;
    *col_len = *tmp_len = 0;
    for (size_t l = 0; l <= net->n_layers && !rc; l++) {
        int alias = l > 0 && net->layers[l - 1].spec.kind == BASIN_LAYER_FLATTEN;
        size_t dim = l == 0 ? net->in_dim : net->layers[l - 1].info.out_dim;
        if (!alias)
            rc = add_buffer(2 * mb, dim, &total); /* act and ract */
    }
    for (size_t l = 0; l < net->n_layers && !rc; l++) {
        const basin__layer *L = &net->layers[l];
        if (L->spec.kind == BASIN_LAYER_MAXPOOL)
            rc = add_buffer(mb, L->info.out_dim, &itotal);
        if (L->spec.kind != BASIN_LAYER_CONV2D || rc)
            continue;
        size_t cl = 0, tl = 0;
        if (L->conv_ckk > INT_MAX)
            rc = BASIN_ERANGE;
        if (!rc)
            rc = conv_plan(L, mb, &ws->conv_group[l], &cl, &tl);
        if (!rc && cl / L->conv_ckk > INT_MAX) /* rows of the im2col GEMM */
            rc = BASIN_ERANGE;
        *col_len = cl > *col_len ? cl : *col_len;
        *tmp_len = tl > *tmp_len ? tl : *tmp_len;
    }
    if (!rc)
        rc = add_buffer(4 * mb, net->max_dim, &total);
    if (!rc)
        rc = add_buffer(1, *col_len, &total);
    if (!rc)
        rc = add_buffer(1, *tmp_len, &total);
    *n_double = total;
    *n_index = itotal;
    return rc;
}

/* Point act, ract, delta, col, tmp and argmax into the two blocks. */
static void carve(const basin_net *net, basin_net_ws *ws, size_t col_len)
{
    size_t mb = ws->max_batch;
    double *p = ws->block;
    for (size_t l = 0; l <= net->n_layers; l++) {
        if (l > 0 && net->layers[l - 1].spec.kind == BASIN_LAYER_FLATTEN) {
            ws->act[l] = ws->act[l - 1];
            ws->ract[l] = ws->ract[l - 1];
            continue;
        }
        size_t n = mb * (l == 0 ? net->in_dim : net->layers[l - 1].info.out_dim);
        ws->act[l] = p;
        ws->ract[l] = p + n;
        p += 2 * n;
    }
    for (int j = 0; j < 2; j++) {
        ws->delta[j] = p;
        ws->rdelta[j] = p + mb * net->max_dim;
        p += 2 * mb * net->max_dim;
    }
    ws->col = p;
    ws->tmp = p + col_len;
    size_t *q = ws->iblock;
    for (size_t l = 0; l < net->n_layers; l++) {
        if (net->layers[l].spec.kind != BASIN_LAYER_MAXPOOL)
            continue;
        ws->argmax[l] = q;
        q += mb * net->layers[l].info.out_dim;
    }
}

/* Rows per risk/gradient chunk (see CHUNK_BYTES). */
static size_t chunk_rows(const basin_net *net, size_t max_batch)
{
    size_t per_row = net->in_dim + 2 * net->max_dim;
    int conv = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        per_row += net->layers[l].info.out_dim;
        conv |= net->layers[l].spec.kind == BASIN_LAYER_CONV2D;
    }
    if (!conv)
        return max_batch;
    size_t rows = CHUNK_BYTES / (per_row * sizeof(double) + 1);
    rows = rows < CHUNK_MIN ? CHUNK_MIN : rows > CHUNK_MAX ? CHUNK_MAX : rows;
    return rows < max_batch ? rows : max_batch;
}

/* Keep buffers for the conv layers whose im2col of a whole chunk fits one group, while the
 * total stays under KEEP_CAP; layers without one unfold their input again for the gradient. */
static int alloc_keep(const basin_net *net, basin_net_ws *ws)
{
    size_t total = 0, len[BASIN_NET_MAX_LAYERS];
    for (size_t l = 0; l < net->n_layers; l++) {
        const basin__layer *L = &net->layers[l];
        len[l] = 0;
        if (L->spec.kind != BASIN_LAYER_CONV2D || ws->chunk > ws->conv_group[l])
            continue;
        size_t n = ws->chunk * L->conv_p * L->conv_ckk; /* ≤ CONV_COL_CAP: chunk ≤ group */
        if (total + n > KEEP_CAP)
            continue;
        len[l] = n;
        total += n;
    }
    if (total == 0)
        return BASIN_OK;
    ws->colkeep = basin_calloc(net->n_layers, sizeof *ws->colkeep);
    ws->keepblock = basin_alloc_array(total, sizeof *ws->keepblock);
    if (!ws->colkeep || !ws->keepblock)
        return BASIN_ENOMEM;
    double *p = ws->keepblock;
    for (size_t l = 0; l < net->n_layers; l++) {
        ws->colkeep[l] = len[l] ? p : NULL;
        p += len[l];
    }
    return BASIN_OK;
}

int basin_net_ws_create(const basin_net *net, size_t max_batch, basin_net_ws **out)
{
    basin_net_ws *ws = NULL;
    int rc = BASIN_OK;
    if (!net || !out || max_batch == 0) {
        rc = BASIN_EINVAL;
        goto done;
    }
    *out = NULL;
    ws = basin_calloc(1, sizeof *ws);
    if (!ws) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    ws->net = net;
    ws->max_batch = max_batch;
    ws->chunk = chunk_rows(net, max_batch);
    ws->act = basin_calloc(net->n_layers + 1, sizeof *ws->act);
    ws->ract = basin_calloc(net->n_layers + 1, sizeof *ws->ract);
    ws->conv_group = basin_calloc(net->n_layers, sizeof *ws->conv_group);
    ws->argmax = basin_calloc(net->n_layers, sizeof *ws->argmax);
    if (!ws->act || !ws->ract || !ws->conv_group || !ws->argmax) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    size_t n_double, n_index, col_len, tmp_len;
    rc = plan_ws(net, ws, &n_double, &n_index, &col_len, &tmp_len);
    if (rc)
        goto done;
    ws->block = basin_alloc_array(n_double, sizeof *ws->block);
    ws->iblock = basin_alloc_array(n_index, sizeof *ws->iblock);
    if (!ws->block || !ws->iblock) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    carve(net, ws, col_len);
    rc = alloc_keep(net, ws);
    if (rc)
        goto done;
    size_t rows_len = basin__rows_scratch_len(net);
    if (rows_len > 0) {
        ws->rowscratch = basin_alloc_array(rows_len, sizeof *ws->rowscratch);
        if (!ws->rowscratch) {
            rc = BASIN_ENOMEM;
            goto done;
        }
    }
    size_t conv_len = basin__conv_scratch_len(net);
    if (conv_len > 0) {
        ws->convscratch = basin_alloc_array(conv_len, sizeof *ws->convscratch);
        if (!ws->convscratch) {
            rc = BASIN_ENOMEM;
            goto done;
        }
    }
    if (basin__lanes_eligible(net)) {
        ws->lanes = basin_alloc_array(basin__lanes_scratch_len(net, 1), sizeof *ws->lanes);
        if (!ws->lanes) {
            rc = BASIN_ENOMEM;
            goto done;
        }
    }
    *out = ws;
    ws = NULL;
done:
    basin_net_ws_free(ws);
    return rc;
}

void basin_net_ws_free(basin_net_ws *ws)
{
    if (!ws)
        return;
    basin_free(ws->block);
    basin_free(ws->iblock);
    basin_free(ws->lanes);
    basin_free(ws->rowscratch);
    basin_free(ws->convscratch);
    basin_free(ws->colkeep);
    basin_free(ws->keepblock);
    basin_free(ws->act);
    basin_free(ws->ract);
    basin_free(ws->conv_group);
    basin_free(ws->argmax);
    basin_free(ws);
}

int basin_net_ws_layer_input(const basin_net_ws *ws, size_t layer, const double **values,
                             size_t *rows, size_t *cols)
{
    if (!ws || !values || !rows || !cols || layer >= ws->net->n_layers || ws->rows == 0)
        return BASIN_EINVAL;
    const basin__layer *L = &ws->net->layers[layer];
    if (L->spec.kind != BASIN_LAYER_ACTIVATION && L->spec.kind != BASIN_LAYER_MAXPOOL)
        return BASIN_EINVAL;
    *values = ws->act[layer];
    *rows = ws->rows;
    *cols = L->info.in_dim;
    return BASIN_OK;
}
