/* The route handlers of the v1 API and the JSON views they share.
 *
 * Each h_*.c file implements one resource's handlers (router.h signature: take a request, fill
 * a reply, return 0); routes.c lists them all in one declarative table. req->app is the
 * `struct app` (app.h). Views turn store records into the API's JSON (api/openapi.yaml): one
 * function per resource, used by every handler that shows that resource. */
#ifndef BASINLAB_HANDLERS_H
#define BASINLAB_HANDLERS_H

#include <jansson.h>

#include "router.h"
#include "spec.h"
#include "store.h"

/* ---- h_datasets.c ---- */
int h_datasets_create(struct request *req, struct reply *rep);
int h_datasets_list(struct request *req, struct reply *rep);
int h_datasets_get(struct request *req, struct reply *rep);
int h_datasets_delete(struct request *req, struct reply *rep);
int h_datasets_points(struct request *req, struct reply *rep);

/* ---- h_architectures.c ---- */
int h_architectures_create(struct request *req, struct reply *rep);
int h_architectures_list(struct request *req, struct reply *rep);
int h_architectures_get(struct request *req, struct reply *rep);
int h_architectures_delete(struct request *req, struct reply *rep);

/* ---- h_runs.c ---- */
int h_runs_get(struct request *req, struct reply *rep);
int h_runs_trajectory(struct request *req, struct reply *rep);
int h_runs_params(struct request *req, struct reply *rep);

/* ---- h_meta.c ---- */
int h_healthz(struct request *req, struct reply *rep);
int h_readyz(struct request *req, struct reply *rep);
int h_metrics(struct request *req, struct reply *rep);
int h_limits(struct request *req, struct reply *rep);
int h_openapi(struct request *req, struct reply *rep);

/* ---- h_experiments.c ---- */
int h_experiments_create(struct request *req, struct reply *rep);
int h_experiments_list(struct request *req, struct reply *rep);
int h_experiments_get(struct request *req, struct reply *rep);
int h_experiments_cancel(struct request *req, struct reply *rep);
int h_experiments_delete(struct request *req, struct reply *rep);
int h_experiments_runs(struct request *req, struct reply *rep);
int h_experiments_events(struct request *req, struct reply *rep);

/* ---- h_analysis.c: spurious flags, basins, comparisons, fitted functions ---- */
int h_experiments_basins(struct request *req, struct reply *rep);
int h_experiments_basin_members(struct request *req, struct reply *rep);
int h_compare(struct request *req, struct reply *rep);
int h_runs_function(struct request *req, struct reply *rep);

/* ---- h_constructions.c, h_evaluations.c: the paper's constructions and imported points,
 * certified and stored as finished runs (imported.h) ---- */
int h_constructions_create(struct request *req, struct reply *rep);
int h_evaluations_create(struct request *req, struct reply *rep);
/* The flow both share: construction = 1 for POST /v1/constructions, 0 for evaluations. */
int h_imported_create(struct request *req, struct reply *rep, int construction);

/* ---- h_static.c: the dashboard's files under app.web_root ---- */
int h_static_index(struct request *req, struct reply *rep);
int h_static_file(struct request *req, struct reply *rep);

/* ---- routes.c ---- */
extern const struct route basinlab_routes[];
extern const size_t basinlab_route_count;

/* ---- h_common.c: shared answers and views ---- */

/* Answer the problem that matches a store status (404 unknown id naming `what`, 409 conflict,
 * 503 + Retry-After for busy/full, 400 bad cursor, 500 otherwise, with log_cause set). */
int reply_store_error(struct reply *rep, int store_rc, const char *what);
/* 422 (or `status`) problem+json listing every spec error with its JSON Pointer. */
int reply_spec_errors(struct reply *rep, int status, const struct spec_errors *errs);
/* A paged list: {"items": items, "next_cursor": cursor or null} plus `Link: <path?...>;
 * rel="next"` that repeats the request's other query parameters. Steals `items`. */
int reply_page(struct request *req, struct reply *rep, json_t *items, const char *next_cursor);
/* The `limit` and `cursor` query parameters (limit default 50, max 1000). Answers 400 itself and
 * returns nonzero when invalid. */
int page_params_or_reply(struct request *req, struct reply *rep, size_t *limit,
                         const char **cursor);

/* Just the `Link: <path?...&cursor=...>; rel="next"` header of reply_page (nothing when
 * next_cursor is NULL or ""), for paged answers that are not {"items": ...} lists. */
int reply_link_next_page(const struct request *req, struct reply *rep, const char *next_cursor);

/* View building blocks: an RFC 3339 UTC time with milliseconds from epoch ms (null for 0), and
 * a real that is null when not finite. */
json_t *view_time(int64_t ms);
json_t *view_real(double v);

/* The shortest decimal text of v that reads back as exactly v (%.15g, %.16g or %.17g), "NaN"
 * and "inf"/"-inf" for the non-finite; for CSV answers. Returns the length written into buf
 * (NUL-terminated); cap ≥ 32 always suffices. */
size_t format_double(char *buf, size_t cap, double v);

/* Views (NULL when out of memory). */
json_t *view_dataset(const struct store_dataset *d);
json_t *view_architecture(const struct store_architecture *a);
json_t *view_experiment(const struct store_experiment *e);
json_t *view_run(const struct store_run *r);
json_t *view_progress(const struct store_progress *p);

#endif
