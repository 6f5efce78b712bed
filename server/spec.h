/* The JSON experiment spec: the body of POST /v1/experiments (and of `basinlab train --spec`),
 * parsed into the core's structs, validated strictly, and written back in canonical form.
 *
 * Parsing is strict and exhaustive: unknown fields, wrong types, non-finite or non-integral
 * numbers where integers are needed, zero or negative sizes and sizes above the published
 * limits (limits.h) are all errors, and ALL errors are collected (up to SPEC_MAX_ERRORS), each
 * with an RFC 6901 JSON Pointer into the body ("/architecture/layers/2/units") and a message.
 * Every size is checked against the limits before anything proportional to it is allocated.
 *
 * Defaults (filled in by the parser and written out by the serializer):
 *   loss              "squared"
 *   l2                0
 *   optimizer         {"kind": "gd", "lr": 0.01} (adam: lr 0.001), schedule constant;
 *                     momentum 0.9, beta1 0.9, beta2 0.999, eps 1e-8 (torch's defaults);
 *                     batch: 0 = full batch ("gd" is always full batch, "sgd" requires batch ≥ 1)
 *                     step schedule: gamma 0.1, step_every required
 *   init              {"kind": "he", "bias": 0}; normal: std 0.1; uniform: a 0.1
 *   restarts          1
 *   seed              0
 *   max_steps         10000
 *   stop              grad_tol 1e-8, risk_tol null (off), plateau null (off),
 *                     diverge_factor 1e6 (null: only non-finite values count as divergence)
 *   trajectory_every  100, or the smallest value that keeps a run within
 *                     limits.max_trajectory_points points (0 = first and last point only)
 *   max_batch         absent = the whole dataset is evaluated at once
 *   architecture.input_shape   the dataset's input shape when the dataset is inline
 *   dataset.input_shape        [len(x[0])] (inline) or [columns − y_cols] (csv)
 *   generator         noise 0.05, seed 0; spirals classes 2; gaussian_blobs classes 3, dim 2;
 *                     teacher dim 2; bars_stripes image_size 8
 *   csv               y_cols 1, header auto-detected when absent, delimiter ","
 *   teacher_gaussian  teacher "identity", seed 0
 *   dense/conv2d bias true; conv2d stride 1, padding "valid"; leaky_relu slope 0.01
 *   certify           see "certify" below (the canonical form always carries every field)
 * Runs that diverge are reported by the trainer; they are not spec errors.
 *
 * Ownership: a spec_experiment owns its dataset (and the dataset its samples and teacher
 * architecture), its architecture (layer array and validated basin_net), the given initial
 * parameters and the canonical JSON of `certify`. Every *_free accepts NULL. */
#ifndef BASINLAB_SPEC_H
#define BASINLAB_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "basin/certify.h"
#include "basin/data.h"
#include "basin/loss.h"
#include "basin/net.h"
#include "basin/train.h"
#include "limits.h"

/* ---- errors ---- */

#define SPEC_MAX_ERRORS 100

struct spec_error {
    char *pointer; /* RFC 6901; "" is the whole body */
    char *message;
};

struct spec_errors {
    struct spec_error *items;
    size_t count, cap;
    size_t dropped; /* errors found beyond SPEC_MAX_ERRORS (not stored) */
};

void spec_errors_init(struct spec_errors *errs);
/* Free every stored error; errs is empty and reusable afterwards. */
void spec_errors_clear(struct spec_errors *errs);
/* [{"pointer": ..., "message": ...}, ...]; when errors were dropped, a last entry with pointer ""
 * says how many. NULL when out of memory. */
json_t *spec_errors_to_json(const struct spec_errors *errs);

/* ---- architecture ---- */

struct spec_arch {
    char *name;                /* optional, NULL when absent */
    basin_arch arch;           /* arch.layers == layers */
    basin_layer_spec *layers;  /* owned, arch.n_layers entries */
    basin_net *net;            /* built by basin_net_create: the spec is valid */
    int input_shape_defaulted; /* 1 when input_shape came from the dataset */
};

/* ---- dataset ---- */

enum spec_dataset_kind {
    SPEC_DATASET_INLINE,
    SPEC_DATASET_GENERATOR,
    SPEC_DATASET_CSV,
    SPEC_DATASET_TEACHER_GAUSSIAN
};

enum spec_teacher_kind {
    SPEC_TEACHER_IDENTITY,           /* v_j = e_j (k ≤ d) */
    SPEC_TEACHER_RANDOM_ORTHONORMAL, /* k orthonormal rows drawn from `seed` (k ≤ d) */
    SPEC_TEACHER_MATRIX              /* the given k × d matrix */
};

struct spec_teacher_gaussian {
    size_t k, d;
    enum spec_teacher_kind teacher;
    double *matrix; /* k × d row-major for SPEC_TEACHER_MATRIX (owned), else NULL */
    uint64_t seed;
};

struct spec_dataset {
    enum spec_dataset_kind kind;
    char *name; /* optional, NULL when absent */
    /* The samples for inline, csv and generator datasets; NULL for teacher_gaussian, whose
     * objective is the closed-form population risk. */
    basin_dataset *data;
    size_t in_rank, in_shape[3]; /* the input shape, for every kind */
    /* generator: gen.teacher points into teacher_arch (owned) for the "teacher" generator */
    basin_generator_spec gen;
    struct spec_arch *teacher_arch;
    /* csv: the text as given (owned, NUL-terminated), options (header −1 = auto-detected) */
    char *csv;
    size_t csv_len;
    basin_csv_options csv_opts;
    struct spec_teacher_gaussian tg;
};

/* ---- certify: the verdict of every finished run (spec_certify.c) ----
 *
 * "certify": {...} says how each end point is judged (basin_certify, certify.h; science.md,
 * "Verdict for one end point θ"). Every field is optional; unknown fields and values out of
 * range are errors at /certify/<field>. Defaults and ranges:
 *   enabled            true     false: runs are trained only, their verdict stays null
 *   polish             true     local solve before judging; the POLISHED point becomes the
 *                               run's end point (params, final_risk, grad_norm), the training
 *                               values stay in the verdict's "polish" block
 *   polish_max_iter    500      [0, 5000]      L-BFGS iterations of the polish
 *   polish_grad_tol    1e-10    ≥ 0            the polish stops at ‖∇R‖ ≤ this
 *   grad_tol           1e-6     ≥ 0            stationary when ‖∇R‖ ≤ max(grad_tol,
 *   grad_tol_rel       0        ≥ 0              grad_tol_rel·‖θ‖)
 *   cert_tol           1e-9     ≥ 0            certificates: R ≤ bound + cert_tol·max(1, R)
 *   curv_tol           1e-6     ≥ 0            saddle when λ_min < −curv_tol·max(1, |λ_max|)
 *   margin_tol         1e-9     ≥ 0            |pre-activation| ≤ margin_tol·scale is a kink
 *   max_boundary_pairs 16       [0, 24]        boundary certificate up to this many pairs
 *   probes             8        [0, 64]        random perturbations per radius (0 = none)
 *   probe_radii        [1e-3, 1e-2, 1e-1]     1 to 8 radii > 0, relative to ‖θ‖ ("radii",
 *                                              the name of evaluations, is accepted too)
 *   probe_steps        200      [0, 5000]      descent steps after each perturbation
 *   probe_lr           0        ≥ 0            fixed step (0: Armijo backtracking)
 *   lanczos_max_iter   0        [0, 1000]      0 = min(dim, 200)
 *   dense_max_params   400      [0, 2000]      dense Hessian (near-zero eigenvalues) up to this
 *   check_certified    false    also run curvature and probes on certified points
 *   group_sample_cap   32       [0, 100000]    sample indices listed per activation group
 *   seed               0        integer ≥ 0    probes and the Lanczos start vector
 *   spurious_tol       1e-6     ≥ 0            relative tolerance of the spurious flag
 *                                              (spurious.h: R − best > tol·max(1, |R|))
 *   global_tol         1e-3     ≥ 0            teacher_gaussian: a realizable student (n ≥ k)
 *                                              at F ≥ global_tol is not a global minimum
 * teacher_gaussian experiments (no samples) are judged from the closed-form Hessian instead
 * (decided_by "closed_form_hessian"); the options above that concern samples are ignored. */

#define SPEC_CERTIFY_MAX_POLISH_ITER 5000
#define SPEC_CERTIFY_MAX_PROBES 64
#define SPEC_CERTIFY_MAX_PROBE_STEPS 5000
#define SPEC_CERTIFY_MAX_LANCZOS 1000
#define SPEC_CERTIFY_MAX_DENSE_PARAMS 2000
#define SPEC_CERTIFY_MAX_GROUP_SAMPLES 100000

struct spec_certify {
    int enabled;
    basin_certify_opts opts;
    double spurious_tol;
    double global_tol;
};

/* The defaults above. */
void spec_certify_defaults(struct spec_certify *out);
/* Parse a "certify" value (NULL = absent: the defaults) into out; errors are appended to errs at
 * /certify/... Returns BASIN_OK, BASIN_EINVAL or BASIN_ENOMEM. */
int spec_certify_parse(const json_t *certify, struct spec_certify *out, struct spec_errors *errs);
/* The canonical form: every field, defaults filled in. NULL when out of memory. */
json_t *spec_certify_to_json(const struct spec_certify *c);

/* ---- experiment ---- */

struct spec_experiment {
    struct spec_dataset *dataset; /* NULL when given by dataset_id */
    char *dataset_id;
    struct spec_arch *arch; /* NULL when given by architecture_id */
    char *architecture_id;
    basin_loss loss;
    double l2;
    /* optim, init, seed, max_steps, stopping rules, trajectory_every; init.given points into
     * given_params for {"kind": "given"} */
    basin_train_spec train;
    double *given_params;
    size_t given_len;
    size_t restarts;
    size_t max_batch; /* 0 = the whole dataset at once */
    /* The canonical JSON of the body's "certify" (NULL when the body had none; the canonical
     * spec then shows the defaults). Callers that judge points with options of their own may
     * replace it; spec_experiment_to_json writes it as it is. */
    json_t *certify;
    struct spec_certify certify_opts; /* parsed "certify" (defaults when absent) */
};

/* Parse and validate an experiment body. Returns BASIN_OK with *out set, BASIN_EINVAL with the
 * errors in errs (which must have been initialised; errors are appended), or BASIN_ENOMEM.
 * lim NULL means limits_defaults(). A body naming dataset_id / architecture_id is valid
 * without the referenced objects; the caller resolves them and then calls
 * spec_experiment_check_compat. */
int spec_experiment_parse(const json_t *body, const struct limits *lim,
                          struct spec_experiment **out, struct spec_errors *errs);
/* The same from JSON text (json_loadb with JSON_REJECT_DUPLICATES). Malformed JSON and a body
 * above lim->max_body_bytes are reported as one error at pointer "" (with line and column). */
int spec_experiment_parse_text(const char *text, size_t len, const struct limits *lim,
                               struct spec_experiment **out, struct spec_errors *errs);
/* The checks that need both the dataset and the architecture (input shapes, loss against the
 * output size and every target, batch sizes against n, given parameters against param_count).
 * spec_experiment_parse runs them itself when both are inline. */
int spec_experiment_check_compat(const struct spec_experiment *exp, const struct limits *lim,
                                 struct spec_errors *errs);
void spec_experiment_free(struct spec_experiment *exp);

/* A dataset body on its own (POST /v1/datasets): pointers are relative to the body. */
int spec_dataset_parse(const json_t *body, const struct limits *lim, struct spec_dataset **out,
                       struct spec_errors *errs);
void spec_dataset_free(struct spec_dataset *ds);

/* An architecture body on its own (POST /v1/architectures): input_shape is required. */
int spec_arch_parse(const json_t *body, const struct limits *lim, struct spec_arch **out,
                    struct spec_errors *errs);
void spec_arch_free(struct spec_arch *arch);

/* Canonical JSON (defaults filled in): parsing it gives the same spec and the same canonical
 * JSON again. NULL when out of memory. */
json_t *spec_experiment_to_json(const struct spec_experiment *exp);
json_t *spec_dataset_to_json(const struct spec_dataset *ds);
json_t *spec_arch_to_json(const struct spec_arch *arch);

/* Summaries for listings: dataset {kind, name?, n, input_shape, output_dim, task, n_classes}
 * (teacher_gaussian: {kind, name?, input_shape, k, d, task}); architecture {name?, input_shape,
 * layers, output_dim, param_count}. NULL when out of memory. */
json_t *spec_dataset_summary(const struct spec_dataset *ds);
json_t *spec_arch_summary(const struct spec_arch *arch);

/* "regression", "binary", "multiclass". */
const char *spec_task_name(basin_task task);

#endif
