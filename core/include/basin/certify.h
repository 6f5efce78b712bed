/* Verdicts for one end point θ of training: what kind of point it is (certified local minimum,
 * likely minimum, saddle, not converged), which test decided, and every number behind it.
 *
 * The method is science.md, "Verdict for one end point θ": an optional local polish, then
 * stationarity; activation patterns, region margin and dead units; the region certificate
 * (group samples by pattern, best affine fit per group, bound B); the exact test for one hidden
 * layer (a convex problem in the substituted parameters, value E); the boundary form of both when
 * a few sample–unit pairs sit exactly on a kink; second order by Lanczos on exact Hessian-vector
 * products; escape probes. A reviewer can recheck the certificate without trusting the trainer.
 *
 * Soundness notes. The region and exact certificates are only issued when the inner minima are
 * exact: losses whose affine fit is approximate (absolute, hinge: linfit.h reports exact = 0 and
 * an estimated gap) leave them inconclusive, and the verdict falls through to curvature and
 * probes. Both bounds ignore weight decay, so with l2 ≠ 0 they are not run. A pre-activation
 * counts as positive (unit on the s_pos side) when it is > 0, as the forward pass does.
 *
 * Ownership: basin_certify allocates *out; basin_certificate_free releases it and every array it
 * points to (NULL is fine). The net, dataset and loss are borrowed. */
#ifndef BASIN_CERTIFY_H
#define BASIN_CERTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "basin/data.h"
#include "basin/loss.h"
#include "basin/net.h"

typedef enum basin_verdict {
    BASIN_VERDICT_CERTIFIED_MINIMUM,
    BASIN_VERDICT_LIKELY_MINIMUM,
    BASIN_VERDICT_SADDLE,
    BASIN_VERDICT_NOT_CONVERGED
} basin_verdict;

/* The test that decided the label. */
typedef enum basin_decider {
    BASIN_DECIDED_STATIONARITY,           /* "stationarity": ‖∇R‖ above tolerance */
    BASIN_DECIDED_REGION_CERTIFICATE,     /* "region_certificate": R ≤ B + tol */
    BASIN_DECIDED_EXACT_ONE_HIDDEN_LAYER, /* "exact_one_hidden_layer": R ≤ E + tol, or R > E +
                                             tol with every v_j ≠ 0 (saddle) */
    BASIN_DECIDED_BOUNDARY_CERTIFICATE,   /* "boundary_certificate": min over side assignments */
    BASIN_DECIDED_NEGATIVE_CURVATURE,     /* "negative_curvature": λ_min < −curv_tol */
    BASIN_DECIDED_ESCAPE_PROBE,           /* "escape_probe": a smallest-radius probe went lower */
    BASIN_DECIDED_PROBES_NO_ESCAPE,       /* "probes_no_escape" */
    BASIN_DECIDED_SECOND_ORDER            /* "second_order": likely minimum, probes switched off */
} basin_decider;

/* Stable names ("certified_minimum", "likely_minimum", "saddle", "not_converged"; the decider
 * names above) and the reverse lookups (BASIN_EINVAL when unknown). */
const char *basin_verdict_name(basin_verdict v);
int basin_verdict_from_name(const char *name, basin_verdict *out);
const char *basin_decider_name(basin_decider d);

#define BASIN_CERTIFY_MAX_RADII 8
#define BASIN_CERTIFY_MAX_BOUNDARY 24 /* hard cap of max_boundary_pairs (2^24 assignments) */

typedef struct basin_certify_opts {
    double grad_tol; /* stationary when ‖∇R‖ ≤ max(grad_tol, grad_tol_rel·‖θ‖); 1e-6 */
    double grad_tol_rel; /* 0 (off) */
    double cert_tol;     /* certificates: R ≤ bound + cert_tol·max(1, R); escapes: a probe end
                            below R − cert_tol·max(1, R); 1e-9 */
    double curv_tol;     /* saddle when λ_min < −curv_tol·max(1, |λ_max|); 1e-6 */
    double margin_tol;   /* |pre| ≤ margin_tol·scale is ON the boundary; 1e-9 */
    size_t max_boundary_pairs; /* b above this skips the boundary certificate; 16 (≤ 24) */
    int polish;                /* 1: local solve before judging (theta is updated); 1 */
    size_t polish_max_iter;    /* L-BFGS iterations; 500 */
    double polish_grad_tol;    /* L-BFGS stops at ‖∇R‖ ≤ this; 1e-10 */
    size_t probes;             /* K random perturbations per radius; 8 (0 = no probes) */
    size_t n_radii;            /* 3 */
    double radii[BASIN_CERTIFY_MAX_RADII]; /* relative to ‖θ‖ (absolute if θ = 0);
                                              {1e-3, 1e-2, 1e-1} */
    size_t probe_steps;                    /* gradient steps after each perturbation; 200 */
    double probe_lr;                       /* > 0: fixed GD step; 0: Armijo backtracking GD; 0 */
    uint64_t seed;                         /* probes and the Lanczos start vector; 0 */
    size_t lanczos_max_iter;               /* 0 = min(dim, 200) */
    size_t dense_max_params; /* dense Hessian (near-zero eigenvalue count) up to this; 400 */
    int check_certified;     /* 1: run curvature and probes on certified points too; 0 */
    size_t group_sample_cap; /* sample indices stored per group; 32 */
} basin_certify_opts;

/* Fill opts with the documented defaults above. */
void basin_certify_defaults(basin_certify_opts *opts);
/* BASIN_OK, or BASIN_EINVAL for a negative / non-finite tolerance, n_radii out of range, a
 * radius ≤ 0, or max_boundary_pairs > BASIN_CERTIFY_MAX_BOUNDARY. */
int basin_certify_check_opts(const basin_certify_opts *opts);

/* A (layer, sample, unit) location: layer index in the net; unit = feature index of the
 * activation layer's input, or the output (window) index of a max-pool layer. */
typedef struct basin_cert_site {
    size_t layer, sample, unit;
} basin_cert_site;

typedef struct basin_cert_polish {
    int ran;             /* polish was attempted */
    int accepted;        /* theta was replaced by the polished point */
    const char *method;  /* static: "none", "one_hidden_layer_convex" or "lbfgs" */
    size_t iterations;   /* L-BFGS iterations / Newton steps of the accepted method */
    double moved;        /* ‖θ_after − θ_before‖ (0 when not accepted) */
    int pattern_changed; /* some side or max-pool argmax differs after polish */
    double risk_before, risk_after, grad_before, grad_after;
} basin_cert_polish;

/* Dead units of one activation layer: inactive (pre ≤ 0 with s_neg = 0: zero output, zero
 * derivative) on every sample. Units are features, or channels for [c,h,w] inputs (a channel is
 * dead when every position is). */
typedef struct basin_cert_dead {
    size_t layer;
    size_t units;
    size_t n_dead;
    size_t *dead; /* n_dead unit indices */
} basin_cert_dead;

typedef struct basin_cert_group {
    size_t n_samples;
    char pattern_hash[17]; /* FNV-1a 64 of the pattern, hex */
    double risk_sum;       /* Σ ℓ of the network over the group */
    double fit_risk_sum;   /* best affine fit's Σ ℓ (linfit.h) */
    double fit_gap;        /* linfit's estimated gap (0 when exact) */
    int fit_exact, fit_attained;
    size_t n_indices; /* min(n_samples, group_sample_cap) */
    size_t *indices;  /* the first n_indices sample indices (ascending) */
} basin_cert_group;

typedef struct basin_cert_region {
    int ran; /* 0 with l2 ≠ 0 (the bound ignores weight decay) */
    size_t n_groups;
    basin_cert_group *groups;
    double bound;     /* B = (1/N) Σ_groups fit_risk_sum, sides as θ uses them */
    double bound_gap; /* (1/N) Σ fit_gap: B − bound_gap estimates B when fits are inexact */
    int exact;        /* every fit exact (certificate_exact) */
    int holds;        /* b = 0, exact and R ≤ B + tol */
    /* boundary form (0 < b ≤ max_boundary_pairs) */
    int boundary_ran;
    size_t boundary_total;     /* side assignments in all */
    size_t boundary_evaluated; /* evaluated (stops at the first that fails) */
    double boundary_bound;     /* min of B over the evaluated assignments */
    int boundary_exact;        /* every fit used was exact */
    int boundary_holds;        /* every assignment evaluated, exact and R ≤ its B + tol */
} basin_cert_region;

typedef struct basin_cert_exact {
    int applicable; /* dense one-hidden-layer net, scalar output, loss squared / logistic /
                       huber, l2 = 0 */
    int ran;
    double value; /* E: (1/N) min over (u, β, c) with the slopes θ uses */
    int exact;    /* the convex problem was solved (least squares, or Newton converged) */
    size_t iterations;
    int holds;            /* b = 0, exact and R ≤ E + tol */
    int not_minimum;      /* b = 0, exact, R > E + tol and every v_j ≠ 0: not a local minimum */
    int descent_verified; /* R(θ + t·d) < R(θ) was seen for some t > 0 */
    /* boundary form */
    int boundary_ran;
    size_t boundary_total, boundary_evaluated;
    double boundary_value; /* min of E over the evaluated assignments */
    int boundary_holds;
} basin_cert_exact;

typedef struct basin_cert_curvature {
    int ran;
    double lambda_min, lambda_max; /* Lanczos Rayleigh quotients */
    int lanczos_converged;
    size_t lanczos_iterations;
    double residual_min, residual_max;
    double threshold; /* curv_tol·max(1, |λ_max|) */
    int dense;        /* dense Hessian computed (dim ≤ dense_max_params) */
    double dense_lambda_min, dense_lambda_max;
    size_t near_zero_eigs; /* dense: |λ| ≤ 1e-8·max(1, |λ_max|) */
} basin_cert_curvature;

typedef struct basin_cert_probe_level {
    double radius;     /* relative (as in opts) */
    double radius_abs; /* ‖perturbation‖ */
    size_t tried, escaped;
    double best_risk; /* lowest end risk (INFINITY when every probe went non-finite) */
} basin_cert_probe_level;

typedef struct basin_certificate {
    basin_verdict label;
    basin_decider decided_by;
    char reason[384];  /* short human-readable summary */
    int contradiction; /* a certified point from which a smallest-radius probe escaped, or with
                          λ_min < −threshold (check_certified only); said loudly in reason */
    size_t dim, n_samples;
    double risk;                                 /* R(θ) (with the l2 term) at the judged point */
    double param_norm, grad_norm, grad_norm_rel; /* grad_norm_rel = ‖∇R‖/‖θ‖ (‖∇R‖ if θ = 0) */
    int stationary;
    basin_cert_polish polish;
    /* margins: min over units and samples of |pre|/scale (max pooling: top-two gap/scale), scale
     * = ‖(a, 1)‖ for a the input of the nearest parametrised layer below on that sample */
    int has_margin; /* 0 when no pattern depends on θ (margin = INFINITY) */
    double margin;
    basin_cert_site margin_at;
    size_t n_dead_layers;
    basin_cert_dead *dead_units;
    size_t n_boundary;        /* b: pairs (windows) with scaled margin ≤ margin_tol */
    size_t n_boundary_listed; /* listed (at most max(max_boundary_pairs, 64)) */
    basin_cert_site *boundary_pairs;
    basin_cert_region region;
    basin_cert_exact exact;
    basin_cert_curvature curvature;
    size_t symmetry_zero_modes;
    size_t n_probe_levels;
    basin_cert_probe_level probes[BASIN_CERTIFY_MAX_RADII];
    double *descent; /* dim values, unit norm, or NULL: the exact test's descent direction or the
                        Lanczos / dense eigenvector of a saddle */
    basin_decider descent_from;
    double descent_curvature; /* dᵀHd for a curvature direction (0 otherwise) */
    double *witness;          /* dim values or NULL: lowest escaped probe end point */
    double witness_risk;
    double witness_radius; /* the relative radius of the probe that found it */
} basin_certificate;

/* Judge the end point theta (basin_net_param_count values) of the objective
 * R(θ) = (1/N) Σ ℓ(f_θ(x_i), y_i) + (l2/2)‖θ‖² on all of ds. With opts->polish, theta is
 * replaced by the polished point when polish is accepted (see polish.accepted); otherwise it is
 * left unchanged. opts == NULL uses the defaults.
 * Returns BASIN_OK and *out, or BASIN_EINVAL (bad arguments, non-finite θ), BASIN_ENOMEM,
 * BASIN_ERANGE (sizes), BASIN_ENUMERIC (a LAPACK failure); *out is NULL on failure. A non-finite
 * risk is not an error: the label is not_converged. */
int basin_certify(const basin_net *net, const basin_dataset *ds, const basin_loss *loss, double l2,
                  double *theta, const basin_certify_opts *opts, basin_certificate **out);

void basin_certificate_free(basin_certificate *cert);

#endif
