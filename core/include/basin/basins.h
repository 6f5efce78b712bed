/* Basins: comparing end points of training modulo the symmetries of piecewise-linear networks.
 *
 * Two parameter vectors can compute the same function. Every two-slope activation is
 * positively homogeneous (h(cz) = c·h(z) for c > 0), so each hidden unit of a dense layer and
 * each channel of a conv layer can be rescaled (incoming weights and bias × c, outgoing weights
 * ÷ c), and the units of a hidden layer can be permuted. This module removes both symmetries
 * (basin_normalize, basin_align), compares two end points (basin_compare: risks, function
 * distance, activation-pattern agreement, the risk profile along the straight path between
 * them and its barrier) and groups many end points into basins (basin_cluster). See
 * science.md, "Basins: comparing end points modulo symmetry".
 *
 * A "hidden slot" is a dense or conv2d layer whose output reaches the next dense or conv2d
 * layer only through activation, avgpool, maxpool and flatten layers (all of which act per
 * unit/channel and commute with positive scaling and with permutations of channels). Only
 * hidden slots are normalised and permuted; a layer followed by a `sum` layer, the last
 * parametrised layer, and everything else are left as they are.
 *
 * Risks here are the data term (1/N) Σ ℓ(f_θ(x_i), y_i) of basin_net_risk_grad, without weight
 * decay: an L2 term is not invariant under rescaling, so it has no place in a comparison modulo
 * rescaling. Every function needs a dataset with at least one sample (closed-form objectives
 * such as the teacher–student population risk are not supported here).
 *
 * Ownership: results are allocated by the function that fills them and released with their
 * _free function (which accepts NULL); inputs are borrowed. Functions are reentrant: several
 * threads may compare or cluster at once on the same (read-only) net and dataset. */
#ifndef BASIN_BASINS_H
#define BASIN_BASINS_H

#include <stddef.h>

#include "basin/data.h"
#include "basin/loss.h"
#include "basin/net.h"

/* ---- symmetry reduction ---- */

/* Rescale every unit/channel of every hidden slot that is followed by at least one nonlinear
 * activation (s_neg ≠ s_pos) so that its incoming weights and bias have Euclidean norm 1, and
 * multiply the outgoing weights it feeds (the next layer's weight columns of that unit, a block
 * of columns through flatten, the matching input channel of a conv filter) by the old norm.
 * Slots are processed from the input side, so the result is the same for every rescaling of
 * theta_in: a canonical form. Units with zero (or non-finite) incoming norm are left alone.
 * The computed function is unchanged up to rounding. theta_out may equal theta_in (in place);
 * otherwise the two must not overlap. Returns BASIN_OK, BASIN_EINVAL (NULL pointers),
 * BASIN_ERANGE or BASIN_ENOMEM (theta_out unspecified on failure). */
int basin_normalize(const basin_net *net, const double *theta_in, double *theta_out);

typedef struct basin_align_stats {
    size_t slots;  /* hidden slots whose units were matched */
    size_t units;  /* units/channels in those slots */
    size_t moved;  /* of those, units whose position changed */
    size_t sweeps; /* sweeps over the slots, the first (incoming weights only) included */
    int converged; /* 1: the last sweep changed no permutation (else the sweep cap was hit) */
} basin_align_stats;

/* Permute the units of every hidden slot of theta_b to match theta_a (weight matching, Git
 * Re-Basin, Ainsworth et al. 2022): on normalised copies of both, the similarity of unit i of a
 * and unit j of b is the inner product of their incoming weights and biases plus that of their
 * outgoing weights; each slot's permutation is an optimal linear assignment of that similarity
 * with the other slots held fixed, swept over the slots until no permutation changes. The
 * permutations are applied to theta_b as given (not normalised), so theta_b_aligned computes
 * the same function as theta_b. theta_b_aligned may equal theta_b but must not overlap
 * theta_a. stats may be NULL. Returns BASIN_OK, BASIN_EINVAL (NULL pointers, non-finite
 * parameters in a hidden slot), BASIN_ERANGE or BASIN_ENOMEM. */
int basin_align(const basin_net *net, const double *theta_a, const double *theta_b,
                double *theta_b_aligned, basin_align_stats *stats);

/* ---- activation regions ---- */

/* The number of distinct activation patterns θ uses on the samples of ds. A pattern is the
 * side (z > 0 or not, the slope net.h applies) of every unit of every nonlinear activation
 * layer (s_neg ≠ s_pos; linear ones define no regions) plus the argmax of every max-pool
 * window. A net without either has one region. Returns BASIN_OK, BASIN_EINVAL (ds->n == 0 or
 * ds does not match the net), BASIN_ERANGE or BASIN_ENOMEM. */
int basin_count_regions(const basin_net *net, const basin_dataset *ds, const double *theta,
                        size_t *regions);

/* ---- comparing two end points ---- */

typedef struct basin_compare_opts {
    size_t path_points; /* T ≥ 2: t_k = k/(T−1), k = 0..T−1 (t = 0 and 1 included); default 21 */
    int unaligned_path; /* 1: also the profile between theta_a and theta_b as given; default 0 */
    size_t max_batch;   /* samples evaluated at once (bounds scratch memory); 0 = 256 */
} basin_compare_opts;

void basin_compare_defaults(basin_compare_opts *opts);

typedef struct basin_path_profile {
    size_t points; /* 0 when not computed */
    double *t;     /* points values of t */
    double *risk;  /* R((1−t)·θ_0 + t·θ_1) at each t */
    size_t peak;   /* index of the largest risk */
    /* max_k risk[k] − max(risk_a, risk_b): positive when the straight path climbs above both
     * end points; 0 or a rounding-sized negative number when it does not. */
    double barrier;
} basin_path_profile;

typedef struct basin_comparison {
    size_t param_count;
    double risk_a, risk_b;
    double risk_diff;    /* risk_b − risk_a */
    double func_dist;    /* d_f = sqrt(mean_i ‖f_a(x_i) − f_b(x_i)‖²) */
    double output_rms_a; /* sqrt(mean_i ‖f_a(x_i)‖²): the scale to judge func_dist by */
    /* ‖θ_a' − θ_b'‖ with θ_a' = normalised a, θ_b' = normalised and aligned b; and the same
     * distance with b normalised but not aligned (what alignment gained). */
    double param_dist, param_dist_unaligned;
    /* Activation patterns of a and of aligned b (basin_count_regions describes the entries):
     * pattern_units entries per sample; unit_agreement = share of (sample, entry) pairs on the
     * same side; sample_agreement = share of samples whose whole patterns are identical. Both
     * are 1 when pattern_units == 0. */
    size_t pattern_units;
    double unit_agreement, sample_agreement;
    basin_align_stats align;
    double *theta_a_normalized;   /* θ_a' (param_count values) */
    double *theta_b_aligned;      /* θ_b' (param_count values) */
    basin_path_profile aligned;   /* from θ_a' (t = 0) to θ_b' (t = 1) */
    basin_path_profile unaligned; /* from theta_a to theta_b as given, when requested */
} basin_comparison;

/* Compare two end points of the same net on ds under loss. opts may be NULL (defaults).
 * On success *out is a new comparison (free with basin_comparison_free). Returns BASIN_OK,
 * BASIN_EINVAL (NULL pointers, path_points < 2, a dataset or loss that does not suit the net,
 * ds->n == 0), BASIN_ERANGE or BASIN_ENOMEM; *out is NULL on failure. */
int basin_compare(const basin_net *net, const basin_dataset *ds, const basin_loss *loss,
                  const double *theta_a, const double *theta_b, const basin_compare_opts *opts,
                  basin_comparison **out);
void basin_comparison_free(basin_comparison *cmp);

/* ---- clustering end points into basins ---- */

typedef struct basin_cluster_opts {
    /* Same risk level: |R_p − R_rep| ≤ risk_tol·max(1, |R_rep|). Default 1e-6. */
    double risk_tol;
    /* Same function: d_f(p, rep) ≤ func_tol_rel·(1 + RMS of the representative's outputs),
     * with d_f and RMS as in basin_comparison. Default 1e-3. */
    double func_tol_rel;
    int count_regions; /* 1: count each representative's activation regions; default 1 */
    size_t max_batch;  /* samples evaluated at once; 0 = 256 */
} basin_cluster_opts;

void basin_cluster_defaults(basin_cluster_opts *opts);

typedef struct basin_basin_info {
    double risk;           /* the representative's risk */
    size_t representative; /* index of the representative point (the lowest-risk member) */
    size_t count;          /* members, representative included */
    size_t *members;       /* count point indices, ascending */
    size_t regions;       /* distinct activation patterns of the representative; 0 if not counted */
    double output_rms;    /* RMS of the representative's outputs */
    double func_tol;      /* the function-distance tolerance this basin used */
    double max_func_dist; /* largest d_f of a member from the representative */
    double max_risk_gap;  /* largest |R_member − R_rep| */
} basin_basin_info;

typedef struct basin_clustering {
    size_t n_points;
    size_t n_basins;
    basin_basin_info *basins; /* ordered by risk level, lowest first */
    size_t lowest;            /* index of the lowest-risk basin (0; meaningless when empty) */
    size_t *assignment;       /* n_points: the basin of each point */
    double *risks;            /* n_points: the risks used (given or computed) */
} basin_clustering;

/* Group n_points end points (thetas: n_points rows of param_count values) into basins by leader
 * clustering: points are visited in order of increasing risk (ties by index); a point joins the
 * first basin, in order of creation, whose representative is at the same risk level and within
 * the function tolerance (both in opts), else it founds a new basin and represents it. So every
 * representative is its basin's lowest-risk member and the result does not depend on the input
 * order except through exact ties in risk. The function distance is invariant under the
 * symmetries, so no alignment is needed. risks: n_points values R(θ_p) (data term, as
 * basin_net_risk_grad computes it), or NULL to compute them here. opts may be NULL (defaults).
 * Returns BASIN_OK, BASIN_EINVAL (NULL pointers, non-finite risks or parameters, negative
 * tolerances, a dataset or loss that does not suit the net, ds->n == 0), BASIN_ERANGE or
 * BASIN_ENOMEM; *out is NULL on failure. n_points == 0 gives an empty clustering. */
int basin_cluster(const basin_net *net, const basin_dataset *ds, const basin_loss *loss,
                  size_t n_points, const double *thetas, const double *risks,
                  const basin_cluster_opts *opts, basin_clustering **out);
void basin_clustering_free(basin_clustering *cl);

#endif
