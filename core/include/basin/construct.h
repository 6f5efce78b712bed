/* The paper's constructions, executable (science.md, "Constructions"): parameter points of
 * piecewise-linear networks built on purpose, each with the numbers that say what it is.
 *
 *   basin_construct_linear_region  the linear-region minimum: the same architecture with identity
 *                                  activations brought to its minimum, then lifted so that every
 *                                  pre-activation on every sample is ≥ a margin (all units on their
 *                                  s_pos side); the PL net equals the linear one on the data.
 *   basin_construct_cpwl           the CPWL compiler: a ReLU network computing
 *                                  f(x) = max_i min_{j∈S_i} (a_j·x + b_j) exactly.
 *   basin_construct_group_fit      a partition of the samples, each group's best affine piece, and
 *                                  a network that uses piece g on group g (when one exists).
 *
 * Every construction returns a basin_construction: an owned architecture (layer specs + arch, so
 * the caller can build the net and serialise it) and θ in the flat PyTorch state_dict layout of
 * net.h. Reports are caller-owned structs; they are filled on failure too (message, and for
 * BASIN_ENOTSUP the reason a construction is impossible), so read them whatever the return code.
 * Ownership: *out is allocated by the call (NULL on failure) and released by
 * basin_construction_free; the group-fit report owns arrays released by
 * basin_group_fit_report_release (call it whatever the return code). Inputs are borrowed. */
#ifndef BASIN_CONSTRUCT_H
#define BASIN_CONSTRUCT_H

#include <stddef.h>
#include <stdint.h>

#include "basin/data.h"
#include "basin/loss.h"
#include "basin/net.h"
#include "basin/train.h"

#define BASIN_CONSTRUCT_MESSAGE_LEN 256

typedef struct basin_construction {
    basin_arch arch;          /* arch.layers == layers */
    basin_layer_spec *layers; /* arch.n_layers specs, owned */
    size_t n_params;          /* basin_net_param_count of the net built from arch */
    double *theta;            /* n_params values, owned */
    /* linear-region minimum only (NULL otherwise): the θ of the same architecture with identity
     * activations (the deep linear net at its minimum) that θ was lifted from; owned */
    double *theta_linear;
} basin_construction;

/* Release c and everything it owns (NULL is fine). */
void basin_construction_free(basin_construction *c);

/* ---- 1. linear-region minimum ---- */

typedef struct basin_linear_region_opts {
    /* Lift target: every pre-activation of every PL activation layer on every sample ends ≥
     * margin. margin ≤ 0 selects margin_rel · (data scale), the data scale being the largest
     * |x_ij| of the dataset (1 when every input is 0). Defaults: margin 0, margin_rel 1. */
    double margin;
    double margin_rel;
    /* 1: train the linear net even where the best affine fit can be written down. Default 0. */
    int force_train;
    /* Training of the linear net (conv nets, bottlenecks, nets without a first bias, or
     * force_train). train == NULL uses the defaults documented in construct_linear.c (heavy-ball
     * momentum with a step from the start point's largest Hessian eigenvalue, grad_tol 1e-10).
     * start (NULL or param_count values) is a warm start; else the spec's init is used. */
    const basin_train_spec *train;
    const double *start;
    size_t max_attempts; /* training attempts, the step divided by 4 after each divergence; 6 */
    uint64_t seed;       /* initialisation when training with the default spec; 0 */
} basin_linear_region_opts;

void basin_linear_region_defaults(basin_linear_region_opts *opts);

typedef struct basin_linear_region_report {
    const char *method; /* static: "affine_exact" (written down from the best affine fit) or
                           "trained" (basin_train_restart on the linear net); "" on early failure */
    double r_lin;       /* the dataset's best affine-fit risk (linfit.h) */
    int r_lin_exact, r_lin_attained;
    double linear_risk; /* risk of the identity-activation net at its end point */
    double linear_grad_norm;
    double risk;      /* risk of the PL net at the constructed θ (= linear_risk on the data) */
    double grad_norm; /* ‖∇R‖ of the PL net at θ */
    double margin;    /* the lift target used */
    double min_preactivation; /* achieved: min over lifted layers, units and samples (INFINITY
                                 when no layer is lifted) */
    double max_output_diff;   /* max |f_PL − f_linear| over samples and outputs (verified ≤ 1e-9
                                 relative to max(1, max |f_linear|)) */
    size_t n_lifted_layers;   /* activation layers other than identity (all of them are lifted) */
    size_t n_shifted_units;   /* units / channels whose bias was raised to reach the margin */
    /* training (method "trained") */
    size_t train_steps;
    size_t train_attempts;
    double train_lr;
    basin_stop_reason stop_reason;
    /* failure */
    long layer; /* offending layer index, −1 when not tied to a layer */
    char message[BASIN_CONSTRUCT_MESSAGE_LEN];
} basin_linear_region_report;

/* Build the linear-region minimum of arch on (ds, loss). Allowed layers: dense, conv2d, avgpool,
 * flatten and activation with s_pos > 0; the last activation must be followed by a parametrised
 * layer, a parametrised layer below a PL activation needs a bias when that activation must be
 * raised, and two non-identity activations need a parametrised layer between them. Zero padding
 * (same/explicit) is handled exactly: the lift is carried as an offset map through later layers and
 * cancelled where a bias can absorb it; only a padded LAST conv whose border offsets differ from
 * its interior is rejected. Returns BASIN_OK and *out; BASIN_ENOTSUP (maxpool, sum, s_pos ≤ 0, a
 * missing bias, ...; report says which layer and why), BASIN_EINVAL (bad arguments, dataset/loss
 * not matching the net), BASIN_ENUMERIC (the PL outputs did not reproduce the linear ones: a bug),
 * BASIN_ENOMEM, BASIN_ERANGE, or a training error. */
int basin_construct_linear_region(const basin_arch *arch, const basin_dataset *ds,
                                  const basin_loss *loss, const basin_linear_region_opts *opts,
                                  basin_construction **out, basin_linear_region_report *report);

/* ---- 2. CPWL compiler ---- */

typedef struct basin_cpwl_spec {
    size_t dim;              /* d ≥ 1 */
    size_t n_pieces;         /* m ≥ 1 */
    const double *a;         /* m × d slopes, row j = a_j */
    const double *b;         /* m intercepts */
    size_t n_sets;           /* s ≥ 1 */
    const size_t *set_start; /* s + 1 offsets into members: S_i = members[set_start[i] ..
                                set_start[i+1]), each non-empty; set_start[0] = 0 */
    const size_t *members;   /* piece indices < m (repeats allowed) */
} basin_cpwl_spec;

typedef struct basin_cpwl_report {
    size_t min_depth;     /* ⌈log2 max_i |S_i|⌉ hidden layers of min trees */
    size_t max_depth;     /* ⌈log2 s⌉ hidden layers of the max tree */
    size_t hidden_layers; /* min_depth + max_depth (0: f is one affine piece, a single dense) */
    size_t max_width;     /* widest hidden layer */
    size_t n_params;
    char message[BASIN_CONSTRUCT_MESSAGE_LEN]; /* failure */
} basin_cpwl_report;

/* Compile f(x) = max_i min_{j∈S_i} (a_j·x + b_j) into dense → relu → ... → dense(1) with
 * input [d]. Exact in real arithmetic for every x ∈ R^d (rounding aside).
 * BASIN_EINVAL for a malformed spec (report->message says which field), BASIN_ERANGE when the
 * network would exceed the net.h limits, BASIN_ENOMEM. */
int basin_construct_cpwl(const basin_cpwl_spec *spec, basin_construction **out,
                         basin_cpwl_report *report);

/* ---- 3. group fit ---- */

typedef enum basin_group_fit_method {
    BASIN_GROUP_FIT_AUTO,   /* one_d for 1-D inputs whose groups are contiguous in x, else
                               lattice */
    BASIN_GROUP_FIT_ONE_D,  /* one hidden layer f(x) = c + a0·x + Σ_k d_k relu(x − t_k) */
    BASIN_GROUP_FIT_LATTICE /* f = max_g min_{h∈S_g} p_h through the CPWL compiler */
} basin_group_fit_method;

typedef struct basin_group_fit_spec {
    /* Either labels (group[i] in [0, n_groups) for every sample, every group non-empty) ... */
    const size_t *group;
    size_t n_groups;
    /* ... or (group == NULL), for 1-D inputs, breakpoints (strictly increasing, none equal to a
     * sample's x): group g = the samples between breakpoints g−1 and g; n_groups =
     * n_breakpoints + 1 (0 breakpoints, NULL allowed: one group). */
    const double *breakpoints;
    size_t n_breakpoints;
    basin_group_fit_method method;
} basin_group_fit_spec;

typedef struct basin_group_piece {
    size_t n;            /* samples in the group */
    double risk_sum;     /* Σ ℓ(p_g(x_i), y_i) over the group, at the returned piece */
    double fit_risk_sum; /* linfit's minimum (differs only when not attained) */
    double fit_gap;
    int fit_exact, fit_attained;
    double x_lo, x_hi; /* 1-D inputs: the group's x range */
} basin_group_piece;

typedef struct basin_group_fit_report {
    const char *method; /* static: "one_d" or "lattice" ("" before one is chosen) */
    size_t n_groups, dim;
    basin_group_piece *groups; /* n_groups, owned */
    double *coef;              /* n_groups × (dim + 1): group g's slopes then intercept, owned */
    double risk;               /* (1/N) Σ_g groups[g].risk_sum */
    double net_risk; /* the compiled network's risk (verified equal to risk, 1e-10 rel.) */
    /* one_d */
    size_t n_kinks;
    double *kinks; /* owned: the kink positions t_k (k ≥ 1), ascending */
    double t0;     /* the carrier unit relu(x − t0), t0 below all data, carries a0·x */
    double min_kink_distance; /* smallest |t_k − x_i| over kinks and samples (INFINITY: none) */
    /* lattice: S_g as offsets (n_groups + 1) into members, owned */
    size_t *set_start, *set_members;
    basin_cpwl_report cpwl;
    /* failure (BASIN_ENOTSUP from the lattice check): on sample fail_sample of group
     * fail_group, the term of group fail_term, min_{h∈S_term} p_h = fail_term_value, exceeds
     * p_{fail_group} = fail_piece_value. −1 when unused. */
    long fail_group, fail_term, fail_sample;
    double fail_term_value, fail_piece_value;
    char message[BASIN_CONSTRUCT_MESSAGE_LEN];
} basin_group_fit_report;

/* Fit each group's best affine piece (basin_affine_fit_group, scalar output only: the loss must
 * accept out_dim 1) and compile a CPWL network equal to p_g on group g.
 * one_d: a continuous PL function through the pieces (consecutive pieces meet at their
 * intersection when it lies well inside the gap between the groups, else a connecting segment
 * with kinks at 1/3 and 2/3 of the gap), so no kink sits on a sample.
 * lattice: S_g = {h : p_h ≥ p_g on every sample of g}; BASIN_ENOTSUP with the offending group,
 * term and sample in the report when some max–min term exceeds p_g on group g.
 * Returns BASIN_OK and *out, BASIN_EINVAL (bad spec: empty group, breakpoint on a sample, groups
 * not contiguous for one_d, ...), BASIN_ENOTSUP, BASIN_ENUMERIC (the network's risk did not
 * reproduce the pieces': a bug), BASIN_ENOMEM, BASIN_ERANGE. */
int basin_construct_group_fit(const basin_dataset *ds, const basin_loss *loss,
                              const basin_group_fit_spec *spec, basin_construction **out,
                              basin_group_fit_report *report);

/* Release what the report owns and zero those fields (NULL is fine). */
void basin_group_fit_report_release(basin_group_fit_report *report);

#endif
