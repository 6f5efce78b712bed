/* Permutation symmetry of PL networks: aligning the hidden units of one end point to another
 * by weight matching (basin_align in basins.h).
 *
 * DESIGN
 * Method: weight matching of Git Re-Basin (Ainsworth, Hayase & Srinivasa, ICLR 2023,
 * arXiv 2209.04836, Algorithm 2), on normalised copies of both points (basins_normalize.c) so
 * that the scale a unit happens to carry does not decide its match.
 * - Objective: J(P) = Σ over parametrised layers L of ⟨W_L^a, W_L^b(P)⟩ (biases included), where
 *   W_L^b(P) has its rows permuted by L's slot permutation and its input units by the previous
 *   slot's. With every other slot fixed, J is linear in slot k's permutation: unit i of a and
 *   unit j of b score S_ij = ⟨in_i^a, in_j^b⟩ + ⟨out_i^a, out_j^b⟩ (incoming row + bias, and the
 *   block of next-layer columns the unit feeds), so the best P_k is a linear assignment
 *   (lap.c, on −S).
 * - Two starts, the better final J wins (ties: the first):
 *   (1) one forward sweep on incoming weights only, then full sweeps. For a permuted and
 *   rescaled copy the first sweep already recovers every permutation exactly (slot k's
 *   incoming rows are compared after slots < k are aligned), where a full first sweep would
 *   mix in the outgoing weights of a not yet aligned next layer;
 *   (2) full sweeps from the identity. Since J never decreases along (2), the result is never
 *   worse than no alignment: ‖θ_a' − θ_b'‖² = ‖θ_a'‖² + ‖θ_b'‖² − 2J only shrinks.
 * - Full sweeps run in layer order. A new permutation is taken only when it raises J by more
 *   than a rounding-sized margin, so J increases strictly at every change, no permutation can
 *   repeat, and the loop ends (capped at MAX_SWEEPS anyway). With a single hidden slot J is
 *   linear in its permutation, so one full sweep finds the global optimum.
 * - Bookkeeping: permutations are applied to the working copy of b as they are found and
 *   composed into perm[] (position i of the aligned b holds unit perm[i] of the original b);
 *   at the end the composed permutations are applied to theta_b as given. Different slots
 *   permute different index sets (rows of their own layer, column blocks of the next), so the
 *   order of application does not matter. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/lap.h"
#include "basin/status.h"
#include "basins_int.h"

#define MAX_SWEEPS 32
#define BI(x) ((blasint)(x))

typedef struct align_ws {
    double *na, *nb0; /* normalised a and b */
    double *nb;       /* working copy of normalised b, permuted as the sweeps go */
    double *sim;      /* units² similarities, then costs */
    double *tmp;      /* scratch for applying a permutation */
    size_t *perm;     /* composed permutation of every slot, concatenated */
    size_t *best;     /* perm of the better of the two starts */
    size_t *sigma;    /* one LAP answer (units) + scratch (units) */
    size_t tmp_len;
} align_ws;

/* S = similarity of the units of slot s in a (rows) and b (columns). */
static void similarity(const basin__slot *s, const double *a, const double *b, int full, double *S)
{
    size_t n = s->units, k = s->in_len;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BI(n), BI(n), BI(k), 1.0, a + s->w_off,
                BI(k), b + s->w_off, BI(k), 0.0, S, BI(n));
    if (s->has_bias)
        cblas_dger(CblasRowMajor, BI(n), BI(n), 1.0, a + s->b_off, 1, b + s->b_off, 1, S, BI(n));
    if (!full)
        return;
    /* Row r of the next layer, viewed as units × block, holds every unit's outgoing weights. */
    for (size_t r = 0; r < s->next_rows; r++) {
        const double *ma = a + s->wn_off + r * s->next_cols;
        const double *mb = b + s->wn_off + r * s->next_cols;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BI(n), BI(n), BI(s->block), 1.0, ma,
                    BI(s->block), mb, BI(s->block), 1.0, S, BI(n));
    }
}

/* Reorder slot s of theta: new unit i = old unit sigma[i]. */
static void apply_perm(const basin__slot *s, const size_t *sigma, double *theta, double *tmp)
{
    size_t n = s->units;
    double *w = theta + s->w_off;
    for (size_t i = 0; i < n; i++)
        memcpy(tmp + i * s->in_len, w + sigma[i] * s->in_len, s->in_len * sizeof *tmp);
    memcpy(w, tmp, n * s->in_len * sizeof *tmp);
    if (s->has_bias) {
        double *b = theta + s->b_off;
        for (size_t i = 0; i < n; i++)
            tmp[i] = b[sigma[i]];
        memcpy(b, tmp, n * sizeof *tmp);
    }
    double *wn = theta + s->wn_off;
    for (size_t r = 0; r < s->next_rows; r++) {
        double *row = wn + r * s->next_cols;
        for (size_t i = 0; i < n; i++)
            memcpy(tmp + i * s->block, row + sigma[i] * s->block, s->block * sizeof *tmp);
        memcpy(row, tmp, s->next_cols * sizeof *tmp);
    }
}

static int is_identity(const size_t *sigma, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sigma[i] != i)
            return 0;
    return 1;
}

/* Match slot s once; *changed = 1 when a new permutation was applied to ws->nb and perm. */
static int match_slot(const basin__slot *s, int full, align_ws *ws, size_t *perm, int *changed)
{
    size_t n = s->units, *sigma = ws->sigma, *scratch = ws->sigma + n;
    double *S = ws->sim, keep = 0.0, best;
    *changed = 0;
    similarity(s, ws->na, ws->nb, full, S);
    for (size_t i = 0; i < n; i++)
        keep += S[i * n + i];
    for (size_t k = 0; k < n * n; k++)
        S[k] = -S[k];
    int rc = basin_lap_solve(n, S, sigma, &best);
    if (rc)
        return rc;
    best = -best;
    /* Full sweeps must raise J by more than rounding, so that they terminate. */
    if (is_identity(sigma, n) || (full && !(best > keep + 1e-12 * (1.0 + fabs(keep)))))
        return BASIN_OK;
    apply_perm(s, sigma, ws->nb, ws->tmp);
    for (size_t i = 0; i < n; i++)
        scratch[i] = perm[sigma[i]];
    memcpy(perm, scratch, n * sizeof *perm);
    *changed = 1;
    return BASIN_OK;
}

/* Sizes of the scratch buffers; BASIN_ERANGE on overflow. */
static int plan(const basin__slot *slots, size_t n_slots, size_t *max_units, size_t *sim_len,
                size_t *tmp_len, size_t *perm_len)
{
    *max_units = *sim_len = *tmp_len = *perm_len = 0;
    for (size_t k = 0; k < n_slots; k++) {
        const basin__slot *s = &slots[k];
        size_t sq, rows_len, next_len;
        if (basin_mul_size(s->units, s->units, &sq) ||
            basin_mul_size(s->units, s->in_len, &rows_len) ||
            basin_mul_size(s->next_rows, s->next_cols, &next_len) ||
            basin_add_size(*perm_len, s->units, perm_len))
            return BASIN_ERANGE;
        *max_units = s->units > *max_units ? s->units : *max_units;
        *sim_len = sq > *sim_len ? sq : *sim_len;
        *tmp_len = rows_len > *tmp_len ? rows_len : *tmp_len;
        *tmp_len = next_len > *tmp_len ? next_len : *tmp_len;
    }
    return BASIN_OK;
}

/* Sweep over the slots until a full sweep changes nothing. With incoming_first the first
 * sweep matches incoming weights only. */
static int run_sweeps(const basin__slot *slots, size_t n_slots, align_ws *ws, int incoming_first,
                      basin_align_stats *st)
{
    st->converged = 0;
    for (size_t sweep = 0; sweep < MAX_SWEEPS; sweep++) {
        int any = 0, full = !incoming_first || sweep > 0;
        size_t *perm = ws->perm;
        for (size_t k = 0; k < n_slots; k++) {
            int changed;
            int rc = match_slot(&slots[k], full, ws, perm, &changed);
            if (rc)
                return rc;
            any |= changed;
            perm += slots[k].units;
        }
        st->sweeps = sweep + 1;
        if (full && !any) {
            st->converged = 1;
            break;
        }
    }
    return BASIN_OK;
}

/* One alignment from the normalised b in ws->nb0; *J = ⟨θ_a', θ_b'⟩ at the end. */
static int attempt(const basin__slot *slots, size_t n_slots, size_t P, align_ws *ws,
                   int incoming_first, basin_align_stats *st, double *J)
{
    memcpy(ws->nb, ws->nb0, P * sizeof *ws->nb);
    for (size_t k = 0, off = 0; k < n_slots; off += slots[k].units, k++)
        for (size_t i = 0; i < slots[k].units; i++)
            ws->perm[off + i] = i;
    int rc = run_sweeps(slots, n_slots, ws, incoming_first, st);
    if (rc)
        return rc;
    *J = 0.0;
    for (size_t j = 0; j < P; j++)
        *J += ws->na[j] * ws->nb[j];
    return BASIN_OK;
}

static int alloc_ws(align_ws *ws, size_t P, size_t sim_len, size_t perm_len, size_t max_units)
{
    ws->na = basin_alloc_array(P, sizeof *ws->na);
    ws->nb = basin_alloc_array(P, sizeof *ws->nb);
    ws->nb0 = basin_alloc_array(P, sizeof *ws->nb0);
    ws->sim = basin_alloc_array(sim_len, sizeof *ws->sim);
    ws->tmp = basin_alloc_array(ws->tmp_len, sizeof *ws->tmp);
    ws->perm = basin_alloc_array(perm_len, sizeof *ws->perm);
    ws->best = basin_alloc_array(perm_len, sizeof *ws->best);
    ws->sigma = basin_alloc_array(max_units, 2 * sizeof *ws->sigma);
    if (!ws->na || !ws->nb || !ws->nb0 || !ws->sim || !ws->tmp || !ws->perm || !ws->best ||
        !ws->sigma)
        return BASIN_ENOMEM;
    return BASIN_OK;
}

static void free_ws(align_ws *ws)
{
    basin_free(ws->na);
    basin_free(ws->nb);
    basin_free(ws->nb0);
    basin_free(ws->sim);
    basin_free(ws->tmp);
    basin_free(ws->perm);
    basin_free(ws->best);
    basin_free(ws->sigma);
}

int basin_align(const basin_net *net, const double *theta_a, const double *theta_b,
                double *theta_b_aligned, basin_align_stats *stats)
{
    basin__slot *slots = NULL;
    size_t n_slots = 0, max_units, sim_len, perm_len;
    align_ws ws = {0};
    basin_align_stats st = {0}, st2 = {0};
    int rc = BASIN_OK;
    if (!net || !theta_a || !theta_b || !theta_b_aligned) {
        rc = BASIN_EINVAL;
        goto done;
    }
    size_t P = net->param_count;
    rc = basin__find_slots(net, &slots, &n_slots);
    if (!rc)
        rc = plan(slots, n_slots, &max_units, &sim_len, &ws.tmp_len, &perm_len);
    if (!rc)
        rc = alloc_ws(&ws, P, sim_len, perm_len, max_units);
    if (rc)
        goto done;
    memcpy(ws.na, theta_a, P * sizeof *ws.na);
    memcpy(ws.nb0, theta_b, P * sizeof *ws.nb0);
    basin__normalize_slots(slots, n_slots, ws.na);
    basin__normalize_slots(slots, n_slots, ws.nb0);
    double J1, J2;
    rc = attempt(slots, n_slots, P, &ws, 1, &st, &J1);
    if (rc)
        goto done;
    memcpy(ws.best, ws.perm, perm_len * sizeof *ws.best);
    rc = attempt(slots, n_slots, P, &ws, 0, &st2, &J2);
    if (rc)
        goto done;
    if (J2 > J1) {
        memcpy(ws.best, ws.perm, perm_len * sizeof *ws.best);
        st = st2;
    }
    st.slots = n_slots;
    st.units = perm_len;
    if (theta_b_aligned != theta_b)
        memcpy(theta_b_aligned, theta_b, P * sizeof *theta_b_aligned);
    for (size_t k = 0, off = 0; k < n_slots; off += slots[k].units, k++) {
        apply_perm(&slots[k], ws.best + off, theta_b_aligned, ws.tmp);
        for (size_t i = 0; i < slots[k].units; i++)
            st.moved += ws.best[off + i] != i;
    }
done:
    if (stats)
        *stats = st;
    free_ws(&ws);
    basin_free(slots);
    return rc;
}
