/* Shared pieces of the basins module (basins.h): activation-pattern encoding and region
 * counting, argument checks, option defaults and the destructors of the result structs. The
 * symmetry reduction lives in basins_normalize.c and basins_align.c, the comparison of two
 * points in basins_compare.c, the clustering in basins_cluster.c.
 *
 * Pattern encoding: one bit per unit of every nonlinear activation layer (set when the
 * pre-activation is > 0, the side on which net.h applies s_pos) packed 32 to a word, then one
 * word per max-pool window holding the argmax (an input index < INT_MAX, which
 * basin_net_ws_create guarantees). Two samples are in the same region iff their words are
 * equal; regions are counted by sorting the patterns and comparing neighbours, so the count is
 * exact (no hashing). */
#include <stdlib.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "basins_int.h"

#define DEFAULT_BATCH 256

int basin__check_data(const basin_net *net, const basin_dataset *ds, const basin_loss *loss)
{
    if (!net || !ds || !loss || ds->n == 0 || !ds->x || !ds->y || ds->in_dim != net->in_dim)
        return BASIN_EINVAL;
    if (basin_loss_check(loss, net->out_dim) != BASIN_OK ||
        ds->y_dim != basin_loss_target_dim(loss, net->out_dim))
        return BASIN_EINVAL;
    for (size_t i = 0; i < ds->n; i++)
        if (basin_loss_check_target(loss, net->out_dim, ds->y + i * ds->y_dim) != BASIN_OK)
            return BASIN_EINVAL;
    return BASIN_OK;
}

size_t basin__batch_size(size_t requested, size_t n)
{
    size_t b = requested ? requested : DEFAULT_BATCH;
    return b < n ? b : n;
}

int basin__pattern_shape_of(const basin_net *net, basin__pattern_shape *shape)
{
    memset(shape, 0, sizeof *shape);
    for (size_t l = 0; l < net->n_layers; l++) {
        const basin__layer *L = &net->layers[l];
        if (L->spec.kind == BASIN_LAYER_ACTIVATION && L->spec.s_neg != L->spec.s_pos) {
            if (basin_add_size(shape->sign_units, L->info.in_dim, &shape->sign_units))
                return BASIN_ERANGE;
        } else if (L->spec.kind == BASIN_LAYER_MAXPOOL) {
            if (basin_add_size(shape->pool_units, L->info.out_dim, &shape->pool_units))
                return BASIN_ERANGE;
        }
    }
    shape->sign_words = shape->sign_units / 32 + (shape->sign_units % 32 != 0);
    if (basin_add_size(shape->sign_words, shape->pool_units, &shape->words))
        return BASIN_ERANGE;
    return BASIN_OK;
}

void basin__pattern_row(const basin_net *net, const basin_net_ws *ws,
                        const basin__pattern_shape *shape, size_t row, uint32_t *words)
{
    size_t bit = 0, pool = shape->sign_words;
    memset(words, 0, shape->words * sizeof *words);
    for (size_t l = 0; l < net->n_layers; l++) {
        const basin__layer *L = &net->layers[l];
        if (L->spec.kind == BASIN_LAYER_ACTIVATION && L->spec.s_neg != L->spec.s_pos) {
            const double *z = ws->act[l] + row * L->info.in_dim;
            for (size_t j = 0; j < L->info.in_dim; j++, bit++)
                if (z[j] > 0)
                    words[bit / 32] |= (uint32_t)1 << (bit % 32);
        } else if (L->spec.kind == BASIN_LAYER_MAXPOOL) {
            const size_t *am = ws->argmax[l] + row * L->info.out_dim;
            for (size_t o = 0; o < L->info.out_dim; o++)
                words[pool++] = (uint32_t)am[o];
        }
    }
}

static size_t popcount32(uint32_t x)
{
    size_t c = 0;
    for (; x; x &= x - 1)
        c++;
    return c;
}

size_t basin__pattern_diff(const basin__pattern_shape *shape, const uint32_t *a, const uint32_t *b)
{
    size_t d = 0;
    for (size_t k = 0; k < shape->sign_words; k++)
        d += popcount32(a[k] ^ b[k]);
    for (size_t k = shape->sign_words; k < shape->words; k++)
        d += a[k] != b[k];
    return d;
}

typedef struct pattern_ref {
    const uint32_t *w;
    size_t words;
} pattern_ref;

static int cmp_pattern(const void *pa, const void *pb)
{
    const pattern_ref *a = pa, *b = pb;
    for (size_t k = 0; k < a->words; k++)
        if (a->w[k] != b->w[k])
            return a->w[k] < b->w[k] ? -1 : 1;
    return 0;
}

int basin__count_regions_ws(const basin_net *net, basin_net_ws *ws, const basin_dataset *ds,
                            const double *theta, size_t *regions)
{
    uint32_t *pat = NULL;
    pattern_ref *refs = NULL;
    basin__pattern_shape shape;
    size_t n = ds->n, total;
    int rc = basin__pattern_shape_of(net, &shape);
    if (rc)
        goto done;
    if (shape.words == 0) {
        *regions = 1;
        goto done;
    }
    if (basin_mul_size(n, shape.words, &total)) {
        rc = BASIN_ERANGE;
        goto done;
    }
    pat = basin_alloc_array(total, sizeof *pat);
    refs = basin_alloc_array(n, sizeof *refs);
    if (!pat || !refs) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    for (size_t start = 0; start < n; start += ws->max_batch) {
        size_t cm = n - start < ws->max_batch ? n - start : ws->max_batch;
        basin__gather(ws, ds, NULL, start, cm);
        basin__forward_rows(net, ws, theta, cm);
        for (size_t i = 0; i < cm; i++)
            basin__pattern_row(net, ws, &shape, i, pat + (start + i) * shape.words);
    }
    for (size_t i = 0; i < n; i++) {
        refs[i].w = pat + i * shape.words;
        refs[i].words = shape.words;
    }
    qsort(refs, n, sizeof *refs, cmp_pattern);
    size_t count = 1;
    for (size_t i = 1; i < n; i++)
        count += cmp_pattern(&refs[i - 1], &refs[i]) != 0;
    *regions = count;
done:
    basin_free(pat);
    basin_free(refs);
    return rc;
}

int basin_count_regions(const basin_net *net, const basin_dataset *ds, const double *theta,
                        size_t *regions)
{
    basin_net_ws *ws = NULL;
    int rc = BASIN_OK;
    if (!net || !ds || !theta || !regions || ds->n == 0 || !ds->x || ds->in_dim != net->in_dim) {
        rc = BASIN_EINVAL;
        goto done;
    }
    rc = basin_net_ws_create(net, basin__batch_size(0, ds->n), &ws);
    if (!rc)
        rc = basin__count_regions_ws(net, ws, ds, theta, regions);
done:
    basin_net_ws_free(ws);
    return rc;
}

void basin_compare_defaults(basin_compare_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->path_points = 21;
    opts->unaligned_path = 0;
    opts->max_batch = 0;
}

void basin_comparison_free(basin_comparison *cmp)
{
    if (!cmp)
        return;
    basin_free(cmp->theta_a_normalized);
    basin_free(cmp->theta_b_aligned);
    basin_free(cmp->aligned.t);
    basin_free(cmp->aligned.risk);
    basin_free(cmp->unaligned.t);
    basin_free(cmp->unaligned.risk);
    basin_free(cmp);
}

void basin_cluster_defaults(basin_cluster_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->risk_tol = 1e-6;
    opts->func_tol_rel = 1e-3;
    opts->count_regions = 1;
    opts->max_batch = 0;
}

void basin_clustering_free(basin_clustering *cl)
{
    if (!cl)
        return;
    if (cl->basins)
        for (size_t k = 0; k < cl->n_basins; k++)
            basin_free(cl->basins[k].members);
    basin_free(cl->basins);
    basin_free(cl->assignment);
    basin_free(cl->risks);
    basin_free(cl);
}
