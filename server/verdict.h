/* The verdict of one trained end point, as the worker (run_exec.c) and the offline CLI
 * (cli_train.c) attach it to a finished run: the experiment's "certify" options (spec.h) applied
 * to θ, giving the verdict JSON (certificate_json.h), its label and the numbers of the judged
 * point, which is the polished one when polishing moved θ.
 *
 * Datasets with samples are judged by basin_certify (certify.h). teacher_gaussian experiments
 * have no samples: their objective is the closed-form population risk F(W) (teacher.h), judged
 * from its exact Hessian — a Newton polish, stationarity, the eigenvalues of the Hessian on the
 * directions of the live student rows (dense, basin_sym_eig; Lanczos above dense_max_params),
 * the first-order change along directions out of a dead row, and whether F is above the
 * realizable optimum 0 — in the same JSON shape, with decided_by "closed_form_hessian" and a
 * "closed_form" block.
 *
 * Ownership: a verdict_out owns its JSON; verdict_out_release frees it (and accepts a zeroed
 * struct). The experiment and the teacher are borrowed; several threads may judge at once. */
#ifndef BASINLAB_VERDICT_H
#define BASINLAB_VERDICT_H

#include <stddef.h>

#include <jansson.h>

#include "basin/teacher.h"
#include "spec.h"

#define VERDICT_ERROR_CAP 256
/* Judging costs a few thousand gradient evaluations (polish, probes, Lanczos) and cannot be
 * interrupted (no cancel, drain or time budget inside basin_certify), so points of datasets with
 * samples × parameters above this are not judged here: the run gets an error text instead
 * (judge such a point offline with `basinlab certify`). At the cap one verdict is minutes. */
#define VERDICT_MAX_WORK 5e7

struct verdict_out {
    int judged;        /* a verdict was computed (verdict and label are set) */
    json_t *verdict;   /* certificate JSON, owned; NULL when not judged */
    const char *label; /* static verdict name; NULL when not judged */
    int moved;         /* theta was replaced by the polished point */
    double risk;       /* objective (l2 term included) at the judged point; NaN if not judged */
    double grad_norm;  /* ‖∇R‖ there */
    double param_norm; /* ‖θ‖ there */
    char error[VERDICT_ERROR_CAP]; /* "" or why no verdict could be computed (not memory) */
};

/* Judge theta (basin_net_param_count values of exp's net; updated in place when the polish is
 * accepted) with exp->certify_opts. teacher is required for teacher_gaussian experiments and
 * ignored otherwise. With certify disabled nothing is computed (judged = 0, error ""). Returns
 * BASIN_OK — with a verdict, or with error set when judging failed for a reason other than
 * memory (bad arguments, a LAPACK failure, a problem above VERDICT_MAX_WORK, ...) — or
 * BASIN_ENOMEM (out is then empty and theta unspecified). */
int verdict_judge(const struct spec_experiment *exp, const basin_teacher *teacher, double *theta,
                  struct verdict_out *out);

void verdict_out_release(struct verdict_out *out);

#endif
