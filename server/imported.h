/* Parameter points that did not come from training — the paper's constructions (construct.h)
 * and user-supplied vectors — parsed, built, judged and stored as finished runs. Shared by
 * POST /v1/constructions, POST /v1/evaluations (h_constructions.c, h_evaluations.c) and the
 * offline commands `basinlab construct` / `basinlab certify` (cli_construct.c).
 *
 * The steps, each usable on its own:
 *   1. imported_parse     the JSON body → a request: the experiment-like part (dataset or
 *                         dataset_id, architecture or architecture_id, loss, l2) through the
 *                         experiment parser, the kind's own fields and the certify options here;
 *                         every error with its JSON Pointer.
 *   2. (caller)           resolve dataset_id / architecture_id into req->exp->dataset / ->arch
 *                         (the HTTP handlers read the store; the CLI has none and refuses ids).
 *   3. imported_build     the compatibility checks, then the construction (or the given
 *                         parameters): the architecture and θ. Impossible constructions are
 *                         errors at the pointer of the field that made them impossible (/groups,
 *                         /breakpoints, /pieces, /sets, /architecture...).
 *   4. imported_judge     risk, gradient and norms at θ, then the verdict a trained end point
 *                         would get (verdict.h): the verdict JSON and its label.
 *   5. imported_store     records for inline datasets and new architectures, then one
 *                         store_run_insert_finished: a one-run finished experiment whose run has
 *                         origin construction or imported, so the point is a witness (or a
 *                         spurious minimum) like any trained run of the same objective.
 *
 * Defaults that differ from a trained run's verdict: certify.polish is off (the point judged is
 * the point given or built; turn it on with "certify": {"polish": true}, and the stored end point
 * is then the polished one, with the given point's risk as initial_risk).
 *
 * Ownership: a request owns everything it parsed (its spec_experiment, arrays, a copy of the
 * certify object); a point owns θ, the report, the certificate and the verdict. Every *_free
 * accepts NULL. */
#ifndef BASINLAB_IMPORTED_H
#define BASINLAB_IMPORTED_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "basin/certify.h"
#include "basin/construct.h"
#include "limits.h"
#include "spec.h"
#include "store.h"

enum imported_kind {
    IMPORTED_EVALUATION,    /* POST /v1/evaluations: the given params */
    IMPORTED_LINEAR_REGION, /* "linear_region_minimum" */
    IMPORTED_CPWL,          /* "cpwl" */
    IMPORTED_GROUP_FIT      /* "group_fit" */
};

/* The API name of a kind ("evaluation", "linear_region_minimum", "cpwl", "group_fit"). */
const char *imported_kind_name(enum imported_kind kind);

/* The most work a request thread does judging a point: samples × parameters (each of the
 * certificate's few thousand gradient evaluations costs about this). Bigger problems are 422:
 * train them as an experiment, or judge them offline with `basinlab certify`. */
#define IMPORTED_MAX_WORK 4e6

/* CPWL specs: pieces, sets and set members (each bounded by limits.max_width as well). */
#define IMPORTED_MAX_PIECES 4096

struct imported_request {
    enum imported_kind kind;
    /* dataset (or dataset_id), architecture (or architecture_id), loss, l2; exp->certify_opts
     * are the point's certify options and exp->certify their canonical JSON; for cpwl and
     * group_fit exp->arch stays NULL until imported_build made it */
    struct spec_experiment *exp;
    int dataset_by_id, arch_by_id;
    /* evaluation: the given parameters */
    double *params;
    size_t n_params;
    /* linear_region_minimum */
    basin_linear_region_opts lr;
    /* cpwl: n_pieces × dim slopes a, intercepts b; sets as offsets into members */
    size_t dim, n_pieces, n_sets, n_members;
    double *a, *b;
    size_t *set_start, *members;
    /* group_fit: labels (n_labels of them, groups 0..n_groups−1) or breakpoints */
    size_t *labels;
    size_t n_labels, n_groups;
    double *breakpoints;
    size_t n_breakpoints;
    int by_breakpoints;
    basin_group_fit_method method;
    /* group_fit with a given architecture (dense(H) → relu → dense(1)): the one-hidden-layer
     * construction is written into it, the extra units switched off (imported.c) */
    int embed;
};

/* Parse a construction (construction = 1: "kind" required) or an evaluation body. Returns
 * BASIN_OK and *out, BASIN_EINVAL with every error appended to errs (initialised by the caller),
 * or BASIN_ENOMEM. Sizes are checked against lim before anything proportional is allocated. */
int imported_parse(const json_t *body, int construction, const struct limits *lim,
                   struct imported_request **out, struct spec_errors *errs);
void imported_request_free(struct imported_request *rq);

/* A built and judged point. */
struct imported_point {
    double *theta; /* dim values: the end point (polished when certify.polish accepted it) */
    size_t dim;
    json_t *report; /* the construction report (NULL for evaluations) */
    /* at the point as given or built, with the l2 term */
    double given_risk, given_grad_norm, given_param_norm;
    /* at the judged point (the polished one when moved) */
    double risk, grad_norm, param_norm;
    int moved;
    json_t *verdict;   /* verdict JSON (certificate_json.h); NULL when certify is disabled */
    const char *label; /* static verdict name, NULL with verdict */
};
void imported_point_free(struct imported_point *pt);

/* Step 3: rq->exp must hold its dataset and (except cpwl/group_fit) its architecture. Runs the
 * compatibility checks, then builds θ: for cpwl and group_fit the constructed architecture
 * becomes rq->exp->arch. max_work (0 = no bound) bounds samples × parameters. BASIN_OK and *out;
 * BASIN_EINVAL with errs (pointers into the body: a dataset or architecture given by id is
 * pointed at as /dataset_id or /architecture_id); BASIN_ENOMEM; BASIN_ENUMERIC when a
 * construction failed its own verification (a bug: answer 500). */
int imported_build(struct imported_request *rq, const struct limits *lim, double max_work,
                   struct imported_point **out, struct spec_errors *errs);

/* Step 4: risk and gradient at pt->theta, then the verdict exactly as a trained end point gets it
 * (verdict_judge, verdict.h: basin_certify, or the closed-form Hessian for teacher_gaussian
 * datasets). BASIN_OK (also with certify disabled: no verdict), BASIN_ENOMEM, or another code
 * with the reason in why (answer 500). */
int imported_judge(const struct imported_request *rq, struct imported_point *pt, char *why,
                   size_t why_cap);

/* {"architecture": summary with param_count, "params": θ, "construction": report (constructions),
 * "risk", "grad_norm", "param_norm" (at the given or built point), "verdict"}: what the CLI
 * prints and what the API answers besides the stored run. NULL when out of memory. */
json_t *imported_result_json(const struct imported_request *rq, const struct imported_point *pt);

/* What imported_store made. */
struct imported_stored {
    char dataset_id[STORE_ID_SIZE];
    char architecture_id[STORE_ID_SIZE];
    char experiment_id[STORE_ID_SIZE];
    char run_id[STORE_ID_SIZE];
};

/* Step 5: store an inline dataset and an inline or constructed architecture as records of their
 * own (as POST /v1/experiments does), then the point as a finished run. BASIN_OK; BASIN_EINVAL
 * with *store_rc set when the store refused (answer with reply_store_error); BASIN_ENOMEM. */
int imported_store(struct store *st, const struct limits *lim, const struct imported_request *rq,
                   const struct imported_point *pt, struct imported_stored *ids, int *store_rc);

/* The certify options of a body ("certify": {...}; NULL = none): spec_certify_parse (spec.h:
 * the same fields and bounds as an experiment's), except that polish is off unless the object
 * sets it. Errors at /certify/... BASIN_OK, BASIN_EINVAL or BASIN_ENOMEM. */
int imported_parse_certify(const json_t *certify, struct spec_certify *out,
                           struct spec_errors *errs);

/* Append an error (pointer, printf-style message) to errs; BASIN_OK or BASIN_ENOMEM. */
int imported_error(struct spec_errors *errs, const char *pointer, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
