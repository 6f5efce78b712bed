/* The JSON form of a verdict (basin_certificate, core/include/basin/certify.h): the label, the
 * test that decided it, and every number behind it, so a reader can recheck the claim without
 * trusting the trainer. This is what a run's `verdict` holds (api/openapi.yaml, schema Verdict).
 *
 * Shape (every real is null when not finite; arrays are bounded by the certificate itself):
 *   {"label", "decided_by", "reason", "contradiction", "dim", "n_samples",
 *    "risk", "param_norm", "grad_norm", "grad_norm_rel", "stationary",
 *    "polish": {"ran", "accepted", "method", "iterations", "moved", "pattern_changed",
 *               "risk_before", "risk_after", "grad_before", "grad_after"},
 *    "margin": {"value" (null when no pattern depends on θ), "at": {"layer","sample","unit"}|null},
 *    "dead_units": [{"layer", "units", "dead": [unit, ...]}],
 *    "boundary": {"count", "pairs": [{"layer", "sample", "unit"}, ...]},
 *    "region": {"ran", "bound", "bound_gap", "exact", "holds", "n_groups",
 *               "groups": [{"n_samples", "pattern_hash", "risk_sum", "fit_risk_sum", "fit_gap",
 *                           "fit_exact", "fit_attained", "indices"}],
 *               "boundary": {"ran", "total", "evaluated", "bound", "exact", "holds"}},
 *    "exact": {"applicable", "ran", "value", "exact", "iterations", "holds", "not_minimum",
 *              "descent_verified", "boundary": {"ran", "total", "evaluated", "value", "holds"}},
 *    "curvature": {"ran", "lambda_min", "lambda_max", "converged", "iterations", "residual_min",
 *                  "residual_max", "threshold", "dense", "dense_lambda_min", "dense_lambda_max",
 *                  "near_zero_eigs"},
 *    "symmetry_zero_modes",
 *    "probes": [{"radius", "radius_abs", "tried", "escaped", "best_risk"}],
 *    "descent": {"from", "curvature", "direction": [...]} | null,
 *    "witness": {"risk", "radius", "params": [...]} | null} */
#ifndef BASINLAB_CERTIFICATE_JSON_H
#define BASINLAB_CERTIFICATE_JSON_H

#include <jansson.h>

#include "basin/certify.h"

/* NULL when out of memory. */
json_t *certificate_json(const basin_certificate *cert);

#endif
