/* Spurious minima, always judged against the current best: the objective key that says which
 * experiments minimise the same function, the flag of one run with its witness, and the Wilson
 * interval of a share (science.md, "Spurious, with a witness").
 *
 * The rule (the store's SQL in store_sqlite_int.h, STORE_SQ_FLAG_*, states it identically):
 *  - A run is *evaluated* when it finished with a finite final_risk R.
 *  - It is taken as a *minimum* when its verdict label is certified_minimum or likely_minimum
 *    (basis "verdict"), or, before any verdict exists, when it has no label and stopped at the
 *    gradient tolerance (stop_reason "grad_tol"; basis "stationary": a stationary point, which
 *    is only a candidate minimum). Labels saddle / not_converged make it a non-minimum (basis
 *    "verdict"); other runs have no basis.
 *  - tol = tol_rel·max(1, |R|), tol_rel = 1e-6 (SPURIOUS_DEFAULT_TOL) unless the experiment's
 *    spec says "certify": {"spurious_tol": t} with t a finite number ≥ 0.
 *  - best = the lowest final_risk of any finished run of any experiment with the same objective
 *    key (store_objective_best): dataset, architecture, loss with its Huber delta, l2.
 *  - global: R ≤ tol. Every loss here is ≥ 0 (and so is the l2 term), so a risk at 0 up to the
 *    tolerance is a global minimum without further proof; such a run is never flagged.
 *  - flag: true for a minimum with R − best > tol and not global; false for a minimum that is
 *    not (when a best is known) and for a non-minimum; null (unknown) for runs that are not
 *    evaluated or have no basis.
 *  - witness: the best run, named whenever R − best > tol (also for non-minima: it shows that
 *    a lower point exists); gap = R − best whenever best is known. */
#ifndef BASINLAB_SPURIOUS_H
#define BASINLAB_SPURIOUS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store.h"

#define SPURIOUS_DEFAULT_TOL 1e-6
/* The two-sided 95% normal quantile of the Wilson score interval. */
#define SPURIOUS_WILSON_Z 1.959963984540054

/* The objective key of an experiment from its canonical spec:
 *   "<dataset_id>|<architecture_id>|<loss>|l2=<l2>"
 * with <loss> the loss name, or "huber:<delta>"; reals in their shortest round-trip form
 * (format_double); a missing loss means "squared", a missing delta 1 and a missing l2 0 (the
 * parser's defaults). BASIN_OK, BASIN_EINVAL (a loss or l2 of the wrong type, non-finite) or
 * BASIN_ERANGE (does not fit in cap bytes; STORE_KEY_SIZE always suffices for real ids). */
int spurious_objective_key(const json_t *spec, const char *dataset_id, const char *architecture_id,
                           char *out, size_t cap);

/* The relative tolerance of an experiment's spec (see above). */
double spurious_tol_rel(const json_t *spec);

enum spurious_basis { SPURIOUS_BASIS_NONE, SPURIOUS_BASIS_VERDICT, SPURIOUS_BASIS_STATIONARY };

/* The judgement of one run. */
struct spurious_judgement {
    int flag;      /* 1, 0, or -1 for null (unknown) */
    int evaluated; /* finished with a finite risk */
    int minimum;   /* 1 minimum, 0 non-minimum, -1 unknown */
    enum spurious_basis basis;
    int global;
    double risk, tol;
    double best_risk; /* NaN when no best is known */
    double gap;       /* risk − best_risk; NaN when either is unknown */
    int has_witness;
    char witness_run_id[STORE_ID_SIZE];
    char witness_experiment_id[STORE_ID_SIZE];
};

/* Judge run r against best (may be NULL or not found) with relative tolerance tol_rel. */
void spurious_judge(const struct store_run *r, double tol_rel, const struct store_best_run *best,
                    struct spurious_judgement *out);

/* {"flag": bool|null, "basis": "verdict"|"stationary"|null, "global": bool, "witness_run_id",
 * "witness_experiment_id" (null without witness), "gap", "best_risk", "tol" (null when
 * unknown)}. NULL when out of memory. */
json_t *spurious_judgement_json(const struct spurious_judgement *j);

/* The Wilson score interval for k successes in n trials at z (n = 0 gives [0, 1]). */
void spurious_wilson(int64_t k, int64_t n, double z, double *lo, double *hi);

/* {"certified_minimum", "likely_minimum", "saddle", "not_converged", "none", "other"}: counts
 * of finished runs by verdict label (NULL when out of memory). */
json_t *spurious_labels_json(const struct store_label_counts *c);

/* The summary fields of one experiment (h_experiments.c): "label_counts", "minima_count",
 * "spurious_count", "spurious_share" and "spurious_share_ci" (Wilson 95%, over finished runs;
 * null without finished runs), "spurious_basis" ("verdict", "stationary", "mixed" or null when
 * no run is taken as a minimum), "spurious_tol", "objective_best" ({"risk", "run_id",
 * "experiment_id"} or null), "objective_experiments". Set into obj; BASIN_OK or BASIN_ENOMEM. */
int spurious_summary_into(json_t *obj, const struct store_spurious_stats *st, double tol_rel);

/* What judging the runs of one experiment needs: its tolerance and its objective's best. */
struct spurious_context {
    double tol_rel;
    struct store_best_run best;
};
/* Reads the experiment (for its spec) and the best point of its objective: a store code. */
int spurious_context_load(struct store *st, const char *experiment_id,
                          struct spurious_context *ctx);

/* Adds "spurious" (spurious_judgement_json of r under ctx) to a run view. BASIN_OK or
 * BASIN_ENOMEM. */
int spurious_attach(json_t *run_view, const struct store_run *r,
                    const struct spurious_context *ctx);

#endif
