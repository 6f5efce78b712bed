/* Activation patterns, region margin, dead units and boundary pairs of an end point, and the
 * region certificate built on them: samples grouped by pattern, each group's best affine fit,
 * the bound B, and its boundary form (the minimum of B over the side assignments of the pairs
 * that sit on a kink).
 *
 * DESIGN
 * - Scan. One forward pass per chunk of samples; the pre-activations of every pattern layer are
 *   read from the workspace (net_int.h). A unit's side is pre > 0 (s_pos) or not, exactly as
 *   the forward pass applies it. Its scaled margin is |pre| / ‖(a, 1)‖ where a is the input of
 *   the nearest parametrised layer below on that sample: the distance, in that layer's own
 *   weights and bias, to the kink. Max pooling: the top-two gap of each window over the same
 *   scale. A pair with scaled margin ≤ margin_tol is a boundary pair: near θ it may take either
 *   side (a tied window: any of its tied entries). Entries of a window that come from an
 *   activation with s_neg = 0 and are strictly inactive are identically 0 near θ ("frozen");
 *   a window whose maximum is a tie of frozen entries outputs 0 whatever the argmax, so it gets
 *   the canonical code BASIN__CERT_ZERO_TIE and is no boundary.
 * - Grouping. Rows are hashed (FNV-1a 64) and the samples merge-sorted by (hash, row), so equal
 *   patterns are adjacent and collisions are resolved by the exact row comparison.
 * - Bound. With every margin positive, each group's outputs are one affine map of x for all θ'
 *   near θ, so R(θ') ≥ B = (1/N) Σ_g min_{A,b} Σ_{i∈g} ℓ(A x_i + b, y_i) (science.md §3). The
 *   certificate needs each inner minimum exactly (linfit.h's exact flag): an upper bound such as
 *   the absolute/hinge fits' risk_sum would make B too large and the certificate unsound.
 * - Boundary form. For θ' near θ the pattern of the b boundary items is one of the assignments
 *   σ of their alternatives, and the other samples keep theirs; so R(θ') ≥ min_σ B(σ). Samples
 *   without boundary items form fixed "core" groups fitted once; per σ only the boundary samples
 *   move: each joins the core group with its row (binary search over the sorted cores) or a new
 *   group. Fits of (core, set of boundary samples) are cached; the enumeration stops at the
 *   first σ whose bound fails (R > B(σ) + tol or an inexact fit), and after a fit budget. */
#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/linfit.h"
#include "basin/status.h"
#include "certify_int.h"

#define BOUNDARY_FIT_BUDGET ((size_t)1 << 16) /* affine fits per boundary enumeration */
#define CACHE_MAX ((size_t)1 << 17)
#define NO_CORE UINT64_MAX
#define BUDGET_SPENT 1 /* internal status: the fit budget ran out */

/* ---- layout ---- */

static size_t param_below(const basin_net *net, size_t l)
{
    while (l-- > 0)
        if (basin__layer_has_params(&net->layers[l]))
            return l;
    return net->n_layers; /* not reached for l > first_param */
}

/* Activation layers that can switch sides (s_neg ≠ s_pos) and max-pool layers. Those below the
 * first parametrised layer ("fixed") do not depend on θ, but they still decide which affine
 * piece of x a sample is on, so they belong to the pattern (with no margin of their own). */
static int is_pattern_layer(const basin_net *net, size_t l)
{
    const basin__layer *L = &net->layers[l];
    if (L->spec.kind == BASIN_LAYER_MAXPOOL)
        return 1;
    return L->spec.kind == BASIN_LAYER_ACTIVATION && L->spec.s_neg != L->spec.s_pos;
}

int basin__cert_layout(basin__cert_ctx *c)
{
    const basin_net *net = c->net;
    size_t n_play = 0, P = 0, n_active = 0;
    int rc = BASIN_OK;
    for (size_t l = 0; l < net->n_layers; l++)
        n_play += (size_t)is_pattern_layer(net, l);
    c->play = basin_calloc(n_play ? n_play : 1, sizeof *c->play);
    if (!c->play)
        return BASIN_ENOMEM;
    c->n_play = n_play;
    size_t p = 0;
    for (size_t l = 0; l < net->n_layers && !rc; l++) {
        if (!is_pattern_layer(net, l))
            continue;
        const basin__layer *L = &net->layers[l];
        basin__cert_play *pl = &c->play[p];
        pl->layer = l;
        pl->fixed = net->first_param >= net->n_layers || l < net->first_param;
        pl->src = pl->fixed ? net->n_layers : param_below(net, l);
        pl->src_bias = !pl->fixed && net->layers[pl->src].info.bias_count > 0;
        pl->below = -1;
        pl->offset = P;
        if (L->spec.kind == BASIN_LAYER_MAXPOOL) {
            pl->is_pool = 1;
            pl->cols = L->info.out_dim;
            if (!pl->fixed && p > 0 && c->play[p - 1].layer == l - 1 && !c->play[p - 1].is_pool &&
                c->play[p - 1].s_neg == 0.0)
                pl->below = (long)(p - 1);
        } else {
            pl->cols = L->info.in_dim;
            pl->s_neg = L->spec.s_neg;
            pl->s_pos = L->spec.s_pos;
            pl->track_dead = !pl->fixed && L->spec.s_neg == 0.0;
            pl->unit_div = L->info.in_rank == 3 ? L->info.in_shape[1] * L->info.in_shape[2] : 1;
            pl->units = L->info.in_dim / pl->unit_div;
            pl->active_offset = n_active;
            if (pl->track_dead)
                rc = basin_add_size(n_active, pl->units, &n_active);
        }
        if (!rc)
            rc = basin_add_size(P, pl->cols, &P);
        p++;
    }
    c->P = P;
    c->n_active = n_active;
    return rc;
}

/* ---- scan ---- */

static void play_scale(const basin__cert_ctx *c, const basin__cert_play *pl, size_t cm, double *out)
{
    const basin__layer *S = &c->net->layers[pl->src];
    const double *a = c->ws->act[pl->src];
    size_t din = S->info.in_dim;
    for (size_t i = 0; i < cm; i++) {
        double s = pl->src_bias ? 1.0 : 0.0;
        for (size_t j = 0; j < din; j++)
            s += a[i * din + j] * a[i * din + j];
        out[i] = sqrt(s);
    }
}

/* |v| / scale, with a zero scale meaning "cannot move" unless v is 0 itself. */
static double scaled(double v, double scale)
{
    if (scale > 0)
        return fabs(v) / scale;
    return v != 0.0 ? INFINITY : 0.0;
}

static void note_margin(basin_certificate *cert, double m, size_t layer, size_t sample, size_t unit)
{
    if (m < cert->margin) {
        cert->margin = m;
        cert->margin_at.layer = layer;
        cert->margin_at.sample = sample;
        cert->margin_at.unit = unit;
    }
}

static void add_item(basin__cert_ctx *c, basin_certificate *cert, const basin__cert_item *it)
{
    cert->n_boundary++;
    if (c->n_items < c->items_cap)
        c->items[c->n_items++] = *it;
}

static void scan_act(basin__cert_ctx *c, size_t pi, size_t row_i, size_t sample, uint32_t *row,
                     int full, basin_certificate *cert)
{
    const basin__cert_play *pl = &c->play[pi];
    const double *pre = c->ws->act[pl->layer] + row_i * pl->cols;
    double tol = c->opts->margin_tol;
    for (size_t u = 0; u < pl->cols; u++) {
        double z = pre[u];
        row[u] = z > 0 ? 1u : 0u;
        if (!full)
            continue;
        if (z > 0 && pl->track_dead)
            c->active[pl->active_offset + u / pl->unit_div] = 1;
        double m = scaled(z, c->scale[row_i]);
        note_margin(cert, m, pl->layer, sample, u);
        if (m <= tol) {
            basin__cert_item it;
            memset(&it, 0, sizeof it);
            it.sample = sample;
            it.play = pi;
            it.unit = u;
            it.pos = pl->offset + u;
            it.n_alt = 2;
            it.alt[0] = 0;
            it.alt[1] = 1;
            add_item(c, cert, &it);
        }
    }
}

/* One max-pool window: its code, and (full) its margin and boundary item. */
typedef struct window_scan {
    const double *a, *below; /* pool input, and the pre-activations under it (or NULL) */
    double sc, sc_below, tol;
    size_t p, H, W;
} window_scan;

static int frozen(const window_scan *w, size_t j)
{
    return w->below && w->below[j] < 0 && scaled(w->below[j], w->sc_below) > w->tol;
}

static void scan_window(basin__cert_ctx *c, const window_scan *w, size_t pi, size_t sample,
                        size_t ch, size_t oy, size_t ox, size_t o, uint32_t *code, int full,
                        basin_certificate *cert)
{
    const basin__cert_play *pl = &c->play[pi];
    size_t best = (ch * w->H + oy * w->p) * w->W + ox * w->p, bpos = 0, cnt = w->p * w->p;
    double mx = -INFINITY;
    for (size_t dy = 0; dy < w->p; dy++)
        for (size_t dx = 0; dx < w->p; dx++) {
            size_t j = (ch * w->H + oy * w->p + dy) * w->W + ox * w->p + dx;
            if (w->a[j] > mx || isnan(w->a[j])) { /* the forward pass's rule: first maximum */
                mx = w->a[j];
                best = j;
                bpos = dy * w->p + dx;
            }
        }
    *code = frozen(w, best) ? BASIN__CERT_ZERO_TIE : (uint32_t)bpos;
    if (!full)
        return;
    double tv = w->tol * w->sc, second = -INFINITY, outside = -INFINITY;
    size_t n_live = 0, n_frozen = 0;
    basin__cert_item it;
    memset(&it, 0, sizeof it);
    for (size_t dy = 0; dy < w->p; dy++)
        for (size_t dx = 0; dx < w->p; dx++) {
            size_t j = (ch * w->H + oy * w->p + dy) * w->W + ox * w->p + dx;
            if (j != best && w->a[j] > second)
                second = w->a[j];
            if (!(mx - w->a[j] <= tv)) {
                outside = fmax(outside, w->a[j]);
                continue;
            }
            if (frozen(w, j)) {
                n_frozen++;
            } else {
                if (n_live < BASIN__CERT_MAX_ALT)
                    it.alt[n_live] = (uint32_t)(dy * w->p + dx);
                n_live++;
            }
        }
    if (n_live == 0) { /* a tie of frozen zeros: output 0 near θ whatever the argmax */
        if (outside > -INFINITY)
            note_margin(cert, scaled(mx - outside, w->sc), pl->layer, sample, o);
        return;
    }
    if (cnt > 1)
        note_margin(cert, scaled(mx - second, w->sc), pl->layer, sample, o);
    if (n_live + n_frozen < 2)
        return;
    it.sample = sample;
    it.play = pi;
    it.unit = o;
    it.pos = pl->offset + o;
    it.n_alt = n_live + (n_frozen > 0);
    if (it.n_alt > BASIN__CERT_MAX_ALT)
        it.n_alt = 0; /* listed, not enumerable */
    else if (n_frozen > 0)
        it.alt[n_live] = BASIN__CERT_ZERO_TIE;
    add_item(c, cert, &it);
}

static void scan_pool(basin__cert_ctx *c, size_t pi, size_t row_i, size_t sample, uint32_t *row,
                      int full, basin_certificate *cert)
{
    const basin__cert_play *pl = &c->play[pi];
    const basin__layer *L = &c->net->layers[pl->layer];
    window_scan w;
    w.a = c->ws->act[pl->layer] + row_i * L->info.in_dim;
    w.below = pl->below >= 0 ? c->ws->act[c->play[pl->below].layer] + row_i * L->info.in_dim : NULL;
    w.sc = pl->fixed ? 0.0 : c->scale[row_i];
    w.sc_below = pl->below >= 0 ? c->scale2[row_i] : 0.0;
    w.tol = c->opts->margin_tol;
    w.p = L->spec.size;
    w.H = L->info.in_shape[1];
    w.W = L->info.in_shape[2];
    size_t C = L->info.out_shape[0], OH = L->info.out_shape[1], OW = L->info.out_shape[2];
    for (size_t ch = 0; ch < C; ch++)
        for (size_t oy = 0; oy < OH; oy++)
            for (size_t ox = 0; ox < OW; ox++) {
                size_t o = (ch * OH + oy) * OW + ox;
                scan_window(c, &w, pi, sample, ch, oy, ox, o, &row[o], full, cert);
            }
}

int basin__cert_scan(basin__cert_ctx *c, const double *theta, uint32_t *codes, int full,
                     basin_certificate *cert)
{
    const basin_dataset *ds = c->ds;
    size_t d = ds->in_dim, k = c->k, P = c->P;
    int rc = BASIN_OK;
    if (full) {
        memset(c->active, 0, c->n_active ? c->n_active : 1);
        c->n_items = 0;
        cert->n_boundary = 0;
        cert->has_margin = 0;
        for (size_t pi = 0; pi < c->n_play; pi++)
            cert->has_margin = cert->has_margin || !c->play[pi].fixed;
        cert->margin = INFINITY;
    }
    for (size_t start = 0; start < c->n; start += c->chunk) {
        size_t cm = c->n - start < c->chunk ? c->n - start : c->chunk;
        if ((rc = basin_net_forward(c->net, c->ws, theta, ds->x + start * d, cm, c->out)) != 0)
            goto done;
        for (size_t i = 0; i < cm && full; i++) {
            size_t s = start + i;
            c->loss_i[s] = basin_loss_eval(c->loss, c->out + i * k, ds->y + s * ds->y_dim, k, NULL);
        }
        for (size_t pi = 0; pi < c->n_play; pi++) {
            const basin__cert_play *pl = &c->play[pi];
            int measure = full && !pl->fixed; /* margins, boundary items, dead units */
            if (!pl->fixed) /* scales also decide frozen max-pool entries, hence the codes */
                play_scale(c, pl, cm, c->scale);
            if (!pl->fixed && pl->below >= 0)
                play_scale(c, &c->play[pl->below], cm, c->scale2);
            for (size_t i = 0; i < cm; i++) {
                uint32_t *row = codes + (start + i) * P + pl->offset;
                if (pl->is_pool)
                    scan_pool(c, pi, i, start + i, row, measure, cert);
                else
                    scan_act(c, pi, i, start + i, row, measure, cert);
            }
        }
    }
done:
    return rc;
}

/* ---- grouping ---- */

static uint64_t row_hash(const uint32_t *row, size_t P)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t j = 0; j < P; j++)
        for (unsigned b = 0; b < 4; b++) {
            h ^= (row[j] >> (8 * b)) & 0xffu;
            h *= 1099511628211ULL;
        }
    return h;
}

static int pat_cmp(uint64_t ha, const uint32_t *ra, uint64_t hb, const uint32_t *rb, size_t P)
{
    if (ha != hb)
        return ha < hb ? -1 : 1;
    return P ? memcmp(ra, rb, P * sizeof *ra) : 0;
}

typedef struct pattern_set {
    const uint64_t *hash;
    const uint32_t *codes;
    size_t P;
} pattern_set;

static int sample_cmp(const pattern_set *ps, size_t a, size_t b)
{
    return pat_cmp(ps->hash[a], ps->codes + a * ps->P, ps->hash[b], ps->codes + b * ps->P, ps->P);
}

/* Stable bottom-up merge sort of idx[0..m) by pattern (tmp: m scratch). */
static void sort_by_pattern(const pattern_set *ps, size_t *idx, size_t *tmp, size_t m)
{
    size_t *src = idx, *dst = tmp;
    for (size_t width = 1; width < m; width *= 2) {
        for (size_t lo = 0; lo < m; lo += 2 * width) {
            size_t mid = lo + width < m ? lo + width : m;
            size_t hi = lo + 2 * width < m ? lo + 2 * width : m;
            size_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                dst[o++] = sample_cmp(ps, src[j], src[i]) < 0 ? src[j++] : src[i++];
            while (i < mid)
                dst[o++] = src[i++];
            while (j < hi)
                dst[o++] = src[j++];
        }
        size_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx)
        memcpy(idx, src, m * sizeof *idx);
}

static void hash_hex(uint64_t h, char out[17])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = hex[h & 0xfu];
        h >>= 4;
    }
    out[16] = '\0';
}

static double cert_tol(const basin__cert_ctx *c, double R)
{
    return c->opts->cert_tol * fmax(1.0, fabs(R));
}

/* ---- boundary form ---- */

typedef struct cache_entry {
    uint64_t core;
    uint32_t mask;
    int used, exact;
    double risk;
} cache_entry;

typedef struct boundary_ws {
    size_t nb, n_core, cap, fits;
    const uint64_t *hash; /* n: pattern hashes */
    size_t *bsample;      /* nb sample indices */
    size_t *item_bs;      /* item → boundary sample */
    unsigned char *is_b;  /* n */
    size_t *core_order;   /* the non-boundary samples, sorted by pattern */
    size_t *core_start;   /* n_core + 1 */
    double *core_risk;    /* n_core */
    int *core_exact;      /* n_core */
    uint32_t *rows;       /* nb × P */
    uint64_t *hb;         /* nb */
    uint64_t *core_of;    /* nb */
    size_t *newg;         /* nb */
    size_t *idx;          /* n */
    cache_entry *cache;   /* cap (power of 2) */
} boundary_ws;

static void boundary_ws_free(boundary_ws *w)
{
    basin_free(w->bsample);
    basin_free(w->item_bs);
    basin_free(w->is_b);
    basin_free(w->core_order);
    basin_free(w->core_start);
    basin_free(w->core_risk);
    basin_free(w->core_exact);
    basin_free(w->rows);
    basin_free(w->hb);
    basin_free(w->core_of);
    basin_free(w->newg);
    basin_free(w->idx);
    basin_free(w->cache);
}

static size_t cache_slot(const boundary_ws *w, uint64_t core, uint32_t mask)
{
    uint64_t h = (core * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)mask * 0xC2B2AE3D27D4EB4FULL);
    h ^= h >> 29;
    return (size_t)(h & (w->cap - 1));
}

/* Σ ℓ of the best affine fit of core group `core` (NO_CORE: none) plus the boundary samples in
 * mask. */
static int group_fit(basin__cert_ctx *c, boundary_ws *w, uint64_t core, uint32_t mask, double *risk,
                     int *exact)
{
    size_t slot = cache_slot(w, core, mask), probes = 0;
    while (w->cache[slot].used && probes < w->cap) {
        if (w->cache[slot].core == core && w->cache[slot].mask == mask) {
            *risk = w->cache[slot].risk;
            *exact = w->cache[slot].exact;
            return BASIN_OK;
        }
        slot = (slot + 1) & (w->cap - 1);
        probes++;
    }
    if (w->fits >= BOUNDARY_FIT_BUDGET)
        return BUDGET_SPENT; /* the enumeration stops, inconclusive */
    size_t m = 0;
    if (core != NO_CORE)
        for (size_t i = w->core_start[core]; i < w->core_start[core + 1]; i++)
            w->idx[m++] = w->core_order[i];
    for (size_t t = 0; t < w->nb; t++)
        if (mask & (1u << t))
            w->idx[m++] = w->bsample[t];
    basin_affine_fit fit;
    int rc = basin_affine_fit_group(c->ds, w->idx, m, c->loss, c->k, &fit, NULL);
    if (rc)
        return rc;
    w->fits++;
    *risk = fit.risk_sum;
    *exact = fit.exact;
    if (!w->cache[slot].used && 4 * w->fits < 3 * w->cap) {
        w->cache[slot].used = 1;
        w->cache[slot].core = core;
        w->cache[slot].mask = mask;
        w->cache[slot].risk = fit.risk_sum;
        w->cache[slot].exact = fit.exact;
    }
    return BASIN_OK;
}

/* Index of the core group whose pattern equals row t, or NO_CORE. */
static uint64_t find_core(const basin__cert_ctx *c, const boundary_ws *w, size_t t)
{
    size_t lo = 0, hi = w->n_core, P = c->P;
    const uint32_t *row = w->rows + t * P;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        size_t rep = w->core_order[w->core_start[mid]];
        int cmp = pat_cmp(w->hb[t], row, w->hash[rep], c->codes + rep * P, P);
        if (cmp == 0)
            return mid;
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NO_CORE;
}

static int boundary_alloc(basin__cert_ctx *c, boundary_ws *w, size_t b, size_t total)
{
    size_t n = c->n, nbP;
    if (basin_mul_size(b, c->P, &nbP))
        return BASIN_ERANGE;
    size_t want = total < CACHE_MAX ? total * (b + 1) : CACHE_MAX;
    w->cap = 16;
    while (w->cap < 2 * want && w->cap < CACHE_MAX)
        w->cap *= 2;
    w->bsample = basin_alloc_array(b, sizeof *w->bsample);
    w->item_bs = basin_alloc_array(b, sizeof *w->item_bs);
    w->is_b = basin_calloc(n, 1);
    w->core_order = basin_alloc_array(n, sizeof *w->core_order);
    w->core_start = basin_alloc_array(n + 1, sizeof *w->core_start);
    w->core_risk = basin_alloc_array(n, sizeof *w->core_risk);
    w->core_exact = basin_alloc_array(n, sizeof *w->core_exact);
    w->rows = basin_alloc_array(nbP ? nbP : 1, sizeof *w->rows);
    w->hb = basin_alloc_array(b, sizeof *w->hb);
    w->core_of = basin_alloc_array(b, sizeof *w->core_of);
    w->newg = basin_alloc_array(b, sizeof *w->newg);
    w->idx = basin_alloc_array(n, sizeof *w->idx);
    w->cache = basin_calloc(w->cap, sizeof *w->cache);
    if (!w->bsample || !w->item_bs || !w->is_b || !w->core_order || !w->core_start ||
        !w->core_risk || !w->core_exact || !w->rows || !w->hb || !w->core_of || !w->newg ||
        !w->idx || !w->cache)
        return BASIN_ENOMEM;
    return BASIN_OK;
}

/* Core groups from the full sorted order (boundary samples removed) and their fits. */
static int boundary_cores(basin__cert_ctx *c, boundary_ws *w, const size_t *order,
                          const uint64_t *hash, double *core_sum, size_t *core_bad)
{
    pattern_set ps = {hash, c->codes, c->P};
    size_t m = 0;
    int rc = BASIN_OK;
    for (size_t i = 0; i < c->n; i++)
        if (!w->is_b[order[i]])
            w->core_order[m++] = order[i];
    w->n_core = 0;
    for (size_t i = 0; i < m; i++)
        if (i == 0 || sample_cmp(&ps, w->core_order[i - 1], w->core_order[i]) != 0)
            w->core_start[w->n_core++] = i;
    w->core_start[w->n_core] = m;
    *core_sum = 0.0;
    *core_bad = 0;
    for (size_t g = 0; g < w->n_core && !rc; g++) {
        basin_affine_fit fit;
        rc = basin_affine_fit_group(c->ds, w->core_order + w->core_start[g],
                                    w->core_start[g + 1] - w->core_start[g], c->loss, c->k, &fit,
                                    NULL);
        if (rc)
            break;
        w->core_risk[g] = fit.risk_sum;
        w->core_exact[g] = fit.exact;
        *core_sum += fit.risk_sum;
        *core_bad += (size_t)!fit.exact;
    }
    return rc;
}

/* B(σ) for the assignment already written into w->rows. */
static int assignment_bound(basin__cert_ctx *c, boundary_ws *w, double core_sum, size_t core_bad,
                            double *B, int *exact)
{
    int rc = BASIN_OK, all_exact = 1;
    double sum = core_sum;
    size_t bad = core_bad, P = c->P;
    for (size_t t = 0; t < w->nb; t++) {
        w->hb[t] = row_hash(w->rows + t * P, P);
        w->core_of[t] = find_core(c, w, t);
        w->newg[t] = t;
        if (w->core_of[t] != NO_CORE)
            continue;
        for (size_t u = 0; u < t; u++)
            if (w->core_of[u] == NO_CORE && w->newg[u] == u &&
                pat_cmp(w->hb[u], w->rows + u * P, w->hb[t], w->rows + t * P, P) == 0) {
                w->newg[t] = u;
                break;
            }
    }
    for (size_t t = 0; t < w->nb && !rc; t++) {
        int first = 1;
        uint32_t mask = 0;
        for (size_t u = 0; u < w->nb; u++) {
            int same = w->core_of[t] != NO_CORE ? w->core_of[u] == w->core_of[t]
                                                : w->core_of[u] == NO_CORE && w->newg[u] == t;
            if (same && u < t && w->core_of[t] != NO_CORE)
                first = 0;
            if (same)
                mask |= 1u << u;
        }
        if (!first || (w->core_of[t] == NO_CORE && w->newg[t] != t))
            continue;
        double r;
        int ex;
        if ((rc = group_fit(c, w, w->core_of[t], mask, &r, &ex)) != BASIN_OK)
            break;
        sum += r;
        all_exact = all_exact && ex;
        if (w->core_of[t] != NO_CORE) {
            sum -= w->core_risk[w->core_of[t]];
            bad -= (size_t)!w->core_exact[w->core_of[t]];
        }
    }
    *B = sum / (double)c->n;
    *exact = all_exact && bad == 0;
    return rc;
}

static int boundary_bound(basin__cert_ctx *c, double R, basin_certificate *cert,
                          const size_t *order, const uint64_t *hash)
{
    basin_cert_region *rg = &cert->region;
    size_t b = c->n_items, total = 1, limit = (size_t)1 << c->opts->max_boundary_pairs;
    boundary_ws w;
    int rc = BASIN_OK;
    memset(&w, 0, sizeof w);
    for (size_t i = 0; i < b; i++) {
        if (c->items[i].n_alt == 0 || total > limit / c->items[i].n_alt)
            return BASIN_OK; /* not enumerable: the certificate stays inconclusive */
        total *= c->items[i].n_alt;
    }
    if ((rc = boundary_alloc(c, &w, b, total)) != BASIN_OK)
        goto done;
    w.hash = hash;
    for (size_t i = 0; i < b; i++) {
        size_t s = c->items[i].sample, t = 0;
        while (t < w.nb && w.bsample[t] != s)
            t++;
        if (t == w.nb)
            w.bsample[w.nb++] = s;
        w.item_bs[i] = t;
        w.is_b[s] = 1;
    }
    for (size_t t = 0; t < w.nb; t++)
        memcpy(w.rows + t * c->P, c->codes + w.bsample[t] * c->P, c->P * sizeof *w.rows);
    double core_sum;
    size_t core_bad;
    if ((rc = boundary_cores(c, &w, order, hash, &core_sum, &core_bad)) != BASIN_OK)
        goto done;
    rg->boundary_ran = 1;
    rg->boundary_total = total;
    rg->boundary_bound = INFINITY;
    rg->boundary_exact = 1;
    int all_pass = 1;
    for (size_t a = 0; a < total && all_pass; a++) {
        size_t rem = a;
        for (size_t i = 0; i < b; i++) {
            const basin__cert_item *it = &c->items[i];
            w.rows[w.item_bs[i] * c->P + it->pos] = it->alt[rem % it->n_alt];
            rem /= it->n_alt;
        }
        double B;
        int exact;
        rc = assignment_bound(c, &w, core_sum, core_bad, &B, &exact);
        if (rc == BUDGET_SPENT) {
            rc = BASIN_OK;
            all_pass = 0;
            break;
        }
        if (rc)
            goto done;
        rg->boundary_evaluated++;
        rg->boundary_bound = fmin(rg->boundary_bound, B);
        rg->boundary_exact = rg->boundary_exact && exact;
        all_pass = exact && R <= B + cert_tol(c, R);
    }
    rg->boundary_holds = all_pass && rg->boundary_evaluated == total;
done:
    boundary_ws_free(&w);
    return rc;
}

/* ---- the region certificate ---- */

static int fill_group(basin__cert_ctx *c, basin_cert_group *g, const size_t *members, size_t m,
                      uint64_t hash)
{
    basin_affine_fit fit;
    int rc = basin_affine_fit_group(c->ds, members, m, c->loss, c->k, &fit, NULL);
    if (rc)
        return rc;
    g->n_samples = m;
    hash_hex(hash, g->pattern_hash);
    g->risk_sum = 0.0;
    for (size_t i = 0; i < m; i++)
        g->risk_sum += c->loss_i[members[i]];
    g->fit_risk_sum = fit.risk_sum;
    g->fit_gap = fit.gap;
    g->fit_exact = fit.exact;
    g->fit_attained = fit.attained;
    size_t cap = c->opts->group_sample_cap;
    g->n_indices = m < cap ? m : cap;
    g->indices = basin_alloc_array(g->n_indices ? g->n_indices : 1, sizeof *g->indices);
    if (!g->indices)
        return BASIN_ENOMEM;
    memcpy(g->indices, members, g->n_indices * sizeof *members);
    return BASIN_OK;
}

int basin__cert_region(basin__cert_ctx *c, double R, basin_certificate *cert)
{
    basin_cert_region *rg = &cert->region;
    size_t n = c->n, P = c->P;
    int rc = BASIN_OK;
    uint64_t *hash = basin_alloc_array(n, sizeof *hash);
    size_t *order = basin_alloc_array(n, sizeof *order);
    size_t *tmp = basin_alloc_array(n, sizeof *tmp);
    if (!hash || !order || !tmp) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        hash[i] = row_hash(c->codes + i * P, P);
        order[i] = i;
    }
    pattern_set ps = {hash, c->codes, P};
    sort_by_pattern(&ps, order, tmp, n);
    size_t ng = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || sample_cmp(&ps, order[i - 1], order[i]) != 0)
            tmp[ng++] = i; /* group starts */
    rg->groups = basin_calloc(ng, sizeof *rg->groups);
    if (!rg->groups) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rg->n_groups = ng;
    rg->ran = 1;
    rg->exact = 1;
    double sum = 0.0, gap = 0.0;
    for (size_t g = 0; g < ng; g++) {
        size_t s0 = tmp[g], s1 = g + 1 < ng ? tmp[g + 1] : n;
        if ((rc = fill_group(c, &rg->groups[g], order + s0, s1 - s0, hash[order[s0]])) != 0)
            goto done;
        sum += rg->groups[g].fit_risk_sum;
        gap += rg->groups[g].fit_gap;
        rg->exact = rg->exact && rg->groups[g].fit_exact;
    }
    rg->bound = sum / (double)n;
    rg->bound_gap = gap / (double)n;
    rg->holds = cert->n_boundary == 0 && rg->exact && R <= rg->bound + cert_tol(c, R);
    if (cert->n_boundary > 0 && cert->n_boundary <= c->opts->max_boundary_pairs)
        rc = boundary_bound(c, R, cert, order, hash);
done:
    basin_free(hash);
    basin_free(order);
    basin_free(tmp);
    return rc;
}
