/* Analyses that run on the HTTP thread (h_analysis.c): the core objects of an experiment rebuilt
 * from its stored records, the basins of its finished runs (with a small in-memory cache), and
 * the fitted function of one end point on a grid.
 *
 * Every analysis is bounded before it allocates or computes (the constants below; a request
 * over a bound is refused with a sentence for a 422 answer, never sampled): the cost of a
 * request is at most a few seconds of one core on the largest inputs the limits allow. */
#ifndef BASINLAB_ANALYSIS_H
#define BASINLAB_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "basin/data.h"
#include "basin/net.h"
#include "spec.h"
#include "store.h"

struct app;
struct reply;

/* Basins: finished runs clustered at most, bytes of their end points held at once, and the
 * forward-pass work points · samples · params of the clustering. */
#define ANALYSIS_BASINS_MAX_POINTS 20000
#define ANALYSIS_BASINS_MAX_BYTES ((size_t)128 << 20)
#define ANALYSIS_MAX_WORK 4e9
/* Member run ids listed per basin in the basins answer (the rest via /members). */
#define ANALYSIS_MEMBERS_SHOWN 100
/* Fitted-function grids: points per axis, and samples echoed as "data". */
#define ANALYSIS_GRID_MAX 400
#define ANALYSIS_DATA_SHOWN 10000
/* Breakpoints located in one 1-D answer; bisection stops at this fraction of the range. */
#define ANALYSIS_MAX_BREAKPOINTS 4096
#define ANALYSIS_BISECT_REL 1e-9

/* The core objects of one experiment, rebuilt from its stored records. */
struct analysis_setup {
    struct store_experiment *exp;
    struct spec_experiment *spec; /* the parsed canonical spec: loss, l2, certify */
    struct spec_arch *arch;       /* arch->net */
    basin_dataset *data;          /* NULL for a population dataset (teacher_gaussian, n = 0) */
    size_t param_count;
    double tol_rel; /* spurious_tol_rel of the spec */
};

/* Load experiment_id with its records and build the objects. BASIN_OK with *out set;
 * otherwise the problem was answered in rep (404 unknown id, 503 busy store, 500 a record this
 * binary cannot read) and BASIN_EINVAL is returned, or BASIN_ENOMEM (nothing answered). */
int analysis_setup_or_reply(struct app *app, struct reply *rep, const char *experiment_id,
                            struct analysis_setup **out);
void analysis_setup_free(struct analysis_setup *s);

/* ---- basins ---- */

struct analysis_basin {
    double risk;           /* the representative's data risk (basins.h) */
    double rep_final_risk; /* the representative's stored final_risk (objective value) */
    size_t count;
    size_t representative; /* point index */
    size_t *members;       /* count point indices, ascending (= by restart index) */
    size_t regions;        /* activation regions of the representative on the data */
    double output_rms, func_tol, max_func_dist, max_risk_gap;
    struct store_label_counts labels;
};

/* A clustering of one experiment's finished runs; immutable once made, shared by the cache and
 * its readers (reference counted: release every one you get). */
struct analysis_basins {
    double risk_tol, func_tol;
    int64_t finished;             /* finished runs in the snapshot that was clustered */
    int64_t skipped;              /* of those, runs without a usable end point */
    size_t n_points;              /* clustered runs */
    struct store_end_point *runs; /* n_points, by restart index */
    size_t n_basins;
    struct analysis_basin *basins; /* by risk level, lowest first */
};

/* The clustering of s's finished runs with these tolerances (basin_cluster: risk_tol, and
 * func_tol as func_tol_rel), from the cache when the experiment's finished count and the
 * tolerances match an entry, else computed and cached (*hit says which). Returns BASIN_OK;
 * BASIN_ERANGE or BASIN_EINVAL with why (≤ why_cap bytes) for a request over a bound or a
 * dataset without samples (answer 422); a store failure as *store_rc (≠ STORE_OK) with
 * BASIN_EINVAL; BASIN_ENOMEM. */
int analysis_basins_get(struct app *app, const struct analysis_setup *s, double risk_tol,
                        double func_tol, const struct analysis_basins **out, int *hit,
                        int *store_rc, char *why, size_t why_cap);
void analysis_basins_release(const struct analysis_basins *b);
/* Drop every cached clustering (tests; a server never needs it). */
void analysis_cache_clear(void);

/* ---- fitted functions ---- */

/* The function θ computes, for a net with 1 or 2 inputs, on a grid over the data range widened
 * by 10% of its span on each side ([−3, 3] for a population dataset):
 *   1-D: {"x", "y", "breakpoints", "data": {"x", "y"}, ...}
 *   2-D: {"x0", "x1", "values" (rows along x1: values[r][c] = f(x0[c], x1[r])), "region_ids"
 *         (same layout), "regions", "data": {"x0", "x1", "y"}, ...}
 * The value is output 0 for nets with one output ("value_kind": "output", a logit under the
 * logistic and hinge losses: "logit"), else the predicted class (argmax, "class"). nx, ny in
 * [2, ANALYSIS_GRID_MAX] (ny ignored for 1-D). BASIN_OK with *out; BASIN_EINVAL with why for
 * other input sizes or a θ of the wrong length; BASIN_ERANGE with why over the work bound;
 * BASIN_ENOMEM. */
int analysis_function_json(const struct analysis_setup *s, const double *theta, size_t n_theta,
                           size_t nx, size_t ny, json_t **out, char *why, size_t why_cap);

#endif
