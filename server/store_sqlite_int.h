/* Private to the SQLite backend (store_sqlite*.c): the store object with its connection pool,
 * statement/bind/column helpers and the operations implemented in the sibling files. */
#ifndef BASINLAB_STORE_SQLITE_INT_H
#define BASINLAB_STORE_SQLITE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store_int.h"

struct sqlite_store {
    struct store base; /* first: a struct store * is a struct sqlite_store * */
    char *path;
    char *vfs; /* NULL = SQLite's default VFS */
    int busy_timeout_ms;
    int max_idle;
    int max_attempts;
    void (*log)(void *user, const char *msg);
    void *log_user;
    pthread_mutex_t mu; /* guards idle/n_idle */
    sqlite3 **idle;
    size_t n_idle;
};

static inline struct sqlite_store *store_sq(struct store *s)
{
    return (struct sqlite_store *)s;
}

/* Borrow / return a connection (see the DESIGN block in store_sqlite.c). release rolls back a
 * transaction left open by an error path. */
int store_sq_acquire(struct sqlite_store *ss, sqlite3 **db);
void store_sq_release(struct sqlite_store *ss, sqlite3 *db);

/* Maps a SQLite result code to STORE_E* and logs the cause of unexpected ones. */
int store_sq_fail(struct sqlite_store *ss, sqlite3 *db, int src, const char *what);
int store_sq_prepare(struct sqlite_store *ss, sqlite3 *db, const char *sql, sqlite3_stmt **st);
/* Runs a parameterless statement to completion. */
int store_sq_exec(struct sqlite_store *ss, sqlite3 *db, const char *sql);
/* BEGIN IMMEDIATE for writers (takes the write lock first, so busy_timeout applies and no
 * transaction has to be upgraded later), BEGIN for consistent multi-statement reads. */
int store_sq_begin(struct sqlite_store *ss, sqlite3 *db, int immediate);
int store_sq_commit(struct sqlite_store *ss, sqlite3 *db);
/* Steps a statement that returns no rows; STORE_OK on SQLITE_DONE. */
int store_sq_step_done(struct sqlite_store *ss, sqlite3 *db, sqlite3_stmt *st, const char *what);

/* Binds; NULL text/json bind SQL NULL. json is dumped compactly; a NaN real binds NULL. */
int store_sq_bind_text(sqlite3_stmt *st, int idx, const char *s);
int store_sq_bind_json(sqlite3_stmt *st, int idx, json_t *j);
int store_sq_bind_real(sqlite3_stmt *st, int idx, double v);
/* n float64 values as a little-endian blob (an empty blob for n == 0). */
int store_sq_bind_f64(sqlite3_stmt *st, int idx, const double *v, size_t n);
/* Map a bind result (SQLITE_*) to STORE_*. */
int store_sq_bind_rc(int src);

/* Column readers: NULL column → NULL / NaN / 0. json: STORE_ECORRUPT if the text is not JSON. */
int store_sq_col_text(sqlite3_stmt *st, int col, char **out);
int store_sq_col_json(sqlite3_stmt *st, int col, json_t **out);
double store_sq_col_real(sqlite3_stmt *st, int col);
int64_t store_sq_col_int(sqlite3_stmt *st, int col);
int store_sq_col_id(sqlite3_stmt *st, int col, char dst[STORE_ID_SIZE]);
/* A blob of exactly n little-endian float64 (else STORE_ECORRUPT) into a malloc'd array (NULL for
 * n == 0). */
int store_sq_col_f64(sqlite3_stmt *st, int col, size_t n, double **out);

/* Within an open transaction: run counts of an experiment; an event row. */
int store_sq_progress(struct sqlite_store *ss, sqlite3 *db, const char *exp_id,
                      struct store_progress *p);
json_t *store_sq_progress_json(const struct store_progress *p);
int store_sq_event_add(struct sqlite_store *ss, sqlite3 *db, const char *exp_id, const char *type,
                       json_t *data, int64_t now_ms, int64_t *id_out);
/* *exists = 1 if sql_select_one (a constant "SELECT 1 FROM t WHERE id = ?1") finds id. */
int store_sq_exists(struct sqlite_store *ss, sqlite3 *db, const char *sql_select_one,
                    const char *id, int *exists);

/* store_sqlite_runs.c */
int store_sq_experiment_create(struct store *s, const struct store_experiment_new *e,
                               char id_out[STORE_ID_SIZE], int *existed);
int store_sq_experiment_get(struct store *s, const char *id, struct store_experiment **out);
int store_sq_experiment_list(struct store *s, int status, size_t limit, const char *cursor,
                             struct store_experiment_list **out);
int store_sq_experiment_progress(struct store *s, const char *id, struct store_progress *out);
int store_sq_experiment_set_summary(struct store *s, const char *id, json_t *summary);
int store_sq_experiment_cancel(struct store *s, const char *id, int *changed);
int store_sq_experiment_delete(struct store *s, const char *id);
int store_sq_claim_runs(struct store *s, const char *worker_id, size_t max_runs,
                        struct store_claim **out);
int store_sq_claim_heartbeat(struct store *s, const char *token, int *cancel_requested);
int store_sq_claim_release(struct store *s, const char *token, int64_t *requeued);
int store_sq_run_finish(struct store *s, const struct store_run_result *r);
int store_sq_requeue_stale(struct store *s, int64_t lease_before_ms, int64_t *requeued,
                           int64_t *failed);
int store_sq_run_get(struct store *s, const char *id, struct store_run **out);
int store_sq_run_list(struct store *s, const char *experiment_id, const struct store_run_filter *f,
                      size_t limit, const char *cursor, struct store_run_list **out);
int store_sq_run_params_get(struct store *s, const char *run_id, double **params, size_t *n);
int store_sq_run_list_spurious(struct store *s, const char *experiment_id,
                               const struct store_run_filter *f,
                               const struct store_spurious_filter *sf, size_t limit,
                               const char *cursor, struct store_run_list **out);

/* store_sqlite_analysis.c: objectives, spurious counts, bulk end points. The spurious flag in
 * SQL over a runs row (column prefix r, e.g. "r."), with the best risk and the relative
 * tolerance as parameter placeholders (e.g. "?9", "?10"); spurious.c states the same rule in C:
 * a finished run with a finite risk R taken as a minimum (labels certified_minimum /
 * likely_minimum, or no label and stop_reason grad_tol) is spurious when R − best >
 * tol·max(1, |R|) and R > tol·max(1, |R|) (not at risk 0); its flag is false when it is such a
 * minimum that is not above (and a best is known) or its label is saddle / not_converged. */
#define STORE_SQ_FINITE(r) "(" r "final_risk IS NOT NULL AND abs(" r "final_risk) < 9e999)"
#define STORE_SQ_IS_MIN(r)                                                                         \
    "(CASE WHEN " r "verdict_label IN ('certified_minimum', 'likely_minimum') THEN 1 "             \
    "WHEN " r "verdict_label IS NULL AND " r "stop_reason = 'grad_tol' THEN 1 ELSE 0 END)"
#define STORE_SQ_IS_NOT_MIN(r)                                                                     \
    "(CASE WHEN " r "verdict_label IN ('saddle', 'not_converged') THEN 1 ELSE 0 END)"
#define STORE_SQ_ABOVE(r, best, tol)                                                               \
    "(CASE WHEN " r "final_risk - " best " > " tol " * max(1.0, abs(" r "final_risk)) AND " r      \
    "final_risk > " tol " * max(1.0, abs(" r "final_risk)) THEN 1 ELSE 0 END)"
#define STORE_SQ_FLAG_TRUE(r, best, tol)                                                           \
    "(" r "status = 'finished' AND " STORE_SQ_FINITE(r) " AND " STORE_SQ_IS_MIN(                   \
        r) " = 1 AND " STORE_SQ_ABOVE(r, best, tol) " = 1)"
#define STORE_SQ_FLAG_FALSE(r, best, tol)                                                          \
    "(" r "status = 'finished' AND " STORE_SQ_FINITE(r) " AND ((" STORE_SQ_IS_MIN(                 \
        r) " = 1 AND " best                                                                        \
           " IS NOT NULL AND " STORE_SQ_ABOVE(r, best,                                             \
                                              tol) " = 0) OR " STORE_SQ_IS_NOT_MIN(r) " = 1))"

int store_sq_objective_best(struct store *s, const char *experiment_id, struct store_best_run *out);
int store_sq_experiment_spurious_stats(struct store *s, const char *experiment_id, double tol_rel,
                                       struct store_spurious_stats *out);
int store_sq_experiment_end_points(struct store *s, const char *experiment_id, size_t max_points,
                                   size_t n_params, struct store_end_points **out);
/* store_sqlite_summary.c */
int store_sq_experiment_run_counts(struct store *s, const char *experiment_id, int groups,
                                   struct store_run_counts **out);

/* store_sqlite_finished.c */
int store_sq_run_insert_finished(struct store *s, const struct store_finished_run *r,
                                 char experiment_id_out[STORE_ID_SIZE],
                                 char run_id_out[STORE_ID_SIZE]);

/* store_sqlite_tokens.c */
int store_sq_api_token_insert(struct store *s, const struct store_api_token *t,
                              char id_out[STORE_ID_SIZE]);
int store_sq_api_token_find(struct store *s, const char *secret_sha256,
                            struct store_api_token *out);
int store_sq_api_token_list(struct store *s, struct store_api_token **items, size_t *n);
int store_sq_api_token_revoke(struct store *s, const char *id, int *changed);

/* store_sqlite_traj.c */
int store_sq_trajectory_append(struct store *s, const char *run_id, const char *token,
                               const struct store_traj_point *pts, size_t n);
int store_sq_trajectory_info(struct store *s, const char *run_id, struct store_traj_info *out);
int store_sq_trajectory_read(struct store *s, const char *run_id, int64_t from_step,
                             int64_t to_step, size_t limit, struct store_traj_point **pts,
                             size_t *n, int64_t *next_step);
int store_sq_trajectory_downsample(struct store *s, const char *run_id, int64_t from_step,
                                   int64_t to_step, size_t max_points,
                                   struct store_traj_point **pts, size_t *n);

#endif
