/* Store records from parsed specs, and back: how a dataset or an architecture is represented in
 * the store, for POST /v1/experiments, whose inline objects become records of their own before
 * the experiment is inserted (so every stored experiment names "dataset_id" and
 * "architecture_id"). The representation is the one POST /v1/datasets and
 * POST /v1/architectures produce (h_datasets.c, h_architectures.c), so a dataset created inline
 * looks exactly like one created on its own.
 *
 * A dataset record holds the samples as x/y blobs (generator datasets are materialised, so every
 * run of every experiment on it sees the same samples), the canonical spec
 * (spec_dataset_to_json), the input shape, task, class count and the linear-fit risks
 *   {"loss": {"squared": E, "logistic" | "cross_entropy": E}},
 *   E = {"risk", "exact", "attained", "linearly_fittable", "tolerance"[, "skipped": reason]}
 * (null for population datasets: teacher_gaussian has n = 0 and its spec keeps k, d, teacher and
 * seed). An architecture record holds the canonical spec, the parameter count and the output
 * size. */
#ifndef BASINLAB_RECORDS_H
#define BASINLAB_RECORDS_H

#include "limits.h"
#include "spec.h"
#include "store.h"

/* A fit needing more than about this many flops (n·p², p unknowns per coupled problem) is not
 * run on a request thread: its entry has null numbers and a "skipped" reason. */
#define RECORDS_MAX_FIT_WORK 5e7
/* R_lin ≤ this × max(1, mean ½‖y‖²) (squared) or ≤ this (the others) counts as 0 (rounding). */
#define RECORDS_FIT_REL_TOL 1e-14

/* Fill *rec (overwritten) for store_dataset_insert. rec->x, rec->y and rec->name are borrowed
 * from ds (keep it alive until the insert); everything else is owned by rec and released by
 * records_dataset_release. Runs the linear fits (bounded by RECORDS_MAX_FIT_WORK each).
 * BASIN_OK or BASIN_ENOMEM (a fit that fails numerically is an entry with a reason). */
int records_dataset_build(const struct spec_dataset *ds, const struct limits *lim,
                          struct store_dataset *rec);
/* Release what records_dataset_build made (not the borrowed parts). Accepts NULL. */
void records_dataset_release(struct store_dataset *rec);

/* Same for an architecture (rec->name borrowed from arch). */
int records_arch_build(const struct spec_arch *arch, struct store_architecture *rec);
void records_arch_release(struct store_architecture *rec);

/* The linear-fit JSON of a dataset: *out = NULL for a dataset without samples. BASIN_OK or
 * BASIN_ENOMEM. */
int records_linear_fit(const basin_dataset *ds, const struct limits *lim, json_t **out);

/* Rebuild the parsed objects of stored records from their canonical specs: BASIN_OK,
 * BASIN_EINVAL with errs filled (a record this binary cannot read back), BASIN_ENOMEM. */
int records_dataset_spec(const struct store_dataset *rec, const struct limits *lim,
                         struct spec_dataset **out, struct spec_errors *errs);
int records_arch_spec(const struct store_architecture *rec, const struct limits *lim,
                      struct spec_arch **out, struct spec_errors *errs);

#endif
