/* The storage interface of `basinlab serve`: datasets, architectures, experiments, runs, run end
 * points, trajectories, SSE events and API tokens, behind one backend-neutral API.
 *
 * DESIGN
 * Shape. `struct store` is the base of every backend: a pointer to a table of operations
 * (`struct store_ops`) that the backend fills. Handlers and workers only call the `store_*`
 * wrappers below (static inline, one line each), so a PostgreSQL backend can be added by writing
 * another ops table and one branch in store_open(); nothing above this header changes.
 * store_open() picks the backend from the location: "sqlite:PATH" or a plain PATH is SQLite
 * (store_sqlite.c); "postgres://..." or "postgresql://..." is PostgreSQL (store_pg.c), which
 * many processes on many machines may share.
 *
 * Threads. A `struct store` is shared by every HTTP and worker thread. Each call borrows one
 * database connection from a pool for its duration (SQLite: one connection per concurrent caller,
 * WAL mode, busy_timeout, foreign_keys=ON, synchronous=FULL) and gives it back, so callers never
 * see connections. Every call is one transaction or a single statement: a call either happens
 * completely or not at all.
 *
 * Durability. A call that returns STORE_OK has committed (synchronous=FULL in WAL mode: the commit
 * is on disk before the call returns), so "202 Accepted" is only sent for a committed experiment.
 *
 * The queue. Runs are the queue: `queued` → `running` (claimed by one worker with a random claim
 * token and a lease time) → `finished` | `failed` | `cancelled`. Terminal states are never
 * rewritten: run_finish is a fenced update that only applies while the run is still `running`
 * with the caller's token. store_claim_runs() hands out up to B queued runs of ONE experiment,
 * chosen fairly: fewest running runs first, then the experiment served least recently, then the
 * oldest — so a big experiment cannot starve one submitted after it. store_requeue_stale() puts
 * runs whose lease expired (all running runs, at start-up) back to `queued`; of each lost claim
 * only the lowest-index run still running (the one its worker was training: a claim's runs execute
 * in index order) keeps its attempt, the others get it back; after `max_attempts` attempts a run is
 * failed instead, so one poison run cannot crash-loop the server. store_claim_release() is the
 * clean counterpart for a draining worker: its runs go back to `queued` at once, with the attempt
 * returned.
 *
 * Experiment status. `queued` until a run is claimed, then `running`; `finished` (finished_at set)
 * in the transaction that makes its last run terminal; `cancelled` (terminal, finished_at set) at
 * store_experiment_cancel(): queued runs become `cancelled` at once, running runs keep running
 * with the experiment's cancel_requested flag set, which heartbeats report to their worker.
 *
 * Events. The store appends SSE events in the same transaction as the change they describe:
 *   "status"       {"status": <experiment status>, "progress": {...}} on every experiment status
 *                  change (queued→running, →finished, →cancelled);
 *   "run_finished" {"run_id", "index", "status", "final_risk" (or null), "verdict" (label or null),
 *                  "progress": {...}} when a run becomes terminal through run_finish.
 * Other components may append their own with store_event_append(). Event ids increase strictly
 * (AUTOINCREMENT), so they serve as SSE ids and Last-Event-ID resumes with store_events_since().
 *
 * Lists use keyset pagination: `limit` rows after an opaque `cursor` (NULL or "" = first page);
 * the result's next_cursor is "" on the last page. A cursor is only valid for the same list and
 * the same filters; a malformed one is STORE_EINVAL (answer 400).
 *
 * Ownership. Strings and json_t* inside an input struct are borrowed (the store copies what it
 * keeps). Every record the store returns is owned by the caller and released with the matching
 * *_free function, which accepts NULL. JSON columns come back as json_t* (a new reference).
 * Times are milliseconds since the Unix epoch (0 = not set). Unknown reals are NaN. */
#ifndef BASINLAB_STORE_H
#define BASINLAB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Status codes. Distinct from BASIN_E* so a code says which layer it came from. */
enum {
    STORE_OK = 0,
    STORE_ENOTFOUND = -101, /* no such id (404) */
    STORE_ECONFLICT = -102, /* state conflict: referenced, fenced update lost, key reuse (409) */
    STORE_EBUSY = -103,     /* the database stayed locked past busy_timeout (503) */
    STORE_EFULL = -104,     /* disk or database full (503) */
    STORE_EIO = -105,       /* I/O error, cannot open (503) */
    STORE_ECORRUPT = -106,  /* the database file is damaged or not a database (500) */
    STORE_ETOONEW = -107,   /* the schema is newer than this binary */
    STORE_EINVAL = -108,    /* a bad argument or cursor (400) */
    STORE_ENOMEM = -109,    /* an allocation failed (500) */
    STORE_EINTERNAL = -110  /* an unexpected database error (500; logged with its cause) */
};

/* A static name for a code, never NULL. */
const char *store_strerror(int rc);
/* The HTTP status a handler should answer for a store code (200 for STORE_OK). */
int store_http_status(int rc);

/* "run_" + 16 hex digits + NUL fits; ids are opaque to clients. */
#define STORE_ID_SIZE 24
#define STORE_TOKEN_SIZE 40
#define STORE_CURSOR_SIZE 128
#define STORE_EVENT_TYPE_SIZE 64
#define STORE_MAX_PAGE 10000 /* the largest `limit` a list accepts */
#define STORE_MAX_RESTARTS 1000000
#define STORE_MAX_CLAIM 4096 /* the largest batch store_claim_runs hands out */
#define STORE_TRAJ_CHUNK_POINTS 512
#define STORE_KEY_SIZE 160       /* an objective key (spurious.h) with its NUL */
#define STORE_NO_LIMIT INT64_MAX /* for store_requeue_stale at start-up: every running run */

enum store_exp_status {
    STORE_EXP_QUEUED,
    STORE_EXP_RUNNING,
    STORE_EXP_FINISHED,
    STORE_EXP_CANCELLED
};
enum store_run_status {
    STORE_RUN_QUEUED,
    STORE_RUN_RUNNING,
    STORE_RUN_FINISHED,
    STORE_RUN_FAILED,
    STORE_RUN_CANCELLED
};
enum store_run_origin { STORE_ORIGIN_TRAINED, STORE_ORIGIN_CONSTRUCTION, STORE_ORIGIN_IMPORTED };
#define STORE_EXP_STATUS_COUNT 4
#define STORE_RUN_STATUS_COUNT 5

/* Names as they appear in the API and the database; parse returns STORE_EINVAL for others. */
const char *store_exp_status_name(enum store_exp_status s);
const char *store_run_status_name(enum store_run_status s);
const char *store_run_origin_name(enum store_run_origin o);
int store_exp_status_parse(const char *name, enum store_exp_status *out);
int store_run_status_parse(const char *name, enum store_run_status *out);

/* ---- records ---- */

/* A dataset. On insert: id and created_at_ms are ignored (the store makes them); name and
 * linear_fit may be NULL; kind is inline|csv|generator|teacher_gaussian, task is
 * regression|binary|multiclass; x holds n·in_dim and y n·y_dim float64 values (stored as
 * little-endian blobs; n may be 0 for a population dataset such as teacher_gaussian). On get,
 * x and y are only filled with STORE_WITH_DATA (NULL otherwise). */
struct store_dataset {
    char id[STORE_ID_SIZE];
    char *name;
    char *kind;
    json_t *spec; /* canonical spec */
    json_t *input_shape;
    int64_t n, in_dim, y_dim;
    char *task;
    int64_t n_classes; /* 0 unless multiclass/binary */
    double *x;
    double *y;
    json_t *linear_fit;
    int64_t created_at_ms;
};
#define STORE_WITH_DATA 1u

struct store_architecture {
    char id[STORE_ID_SIZE];
    char *name; /* may be NULL */
    json_t *spec;
    int64_t param_count, out_dim;
    int64_t created_at_ms;
};

/* Run counts of one experiment by status. */
struct store_progress {
    int64_t queued, running, finished, failed, cancelled;
};

/* What store_experiment_create needs. run_seeds (restarts values) may be NULL: every run then
 * gets `seed` (restart r of an experiment is keyed by (seed, r) in core/train.h). With an
 * idempotency_key, request_hash (e.g. hex SHA-256 of the request) is required. */
struct store_experiment_new {
    const char *dataset_id;
    const char *architecture_id;
    json_t *spec;
    int64_t restarts;
    uint64_t seed;
    const uint64_t *run_seeds;
    const char *idempotency_key;
    const char *request_hash;
    /* The objective key (spurious.h), at most STORE_KEY_SIZE − 1 bytes; NULL: the store derives
     * it from spec (loss, l2 with parser defaults) where it can, else it stays unknown. */
    const char *objective_key;
};

struct store_experiment {
    char id[STORE_ID_SIZE];
    char dataset_id[STORE_ID_SIZE];
    char architecture_id[STORE_ID_SIZE];
    json_t *spec;
    enum store_exp_status status;
    int64_t restarts;
    uint64_t seed;
    char *idempotency_key; /* NULL when none */
    int64_t created_at_ms, updated_at_ms, finished_at_ms;
    json_t *summary; /* NULL until set */
    int cancel_requested;
    struct store_progress progress;
    char objective_key[STORE_KEY_SIZE]; /* "" when unknown */
};

struct store_run {
    char id[STORE_ID_SIZE];
    char experiment_id[STORE_ID_SIZE];
    int64_t index;
    uint64_t seed;
    enum store_run_status status;
    enum store_run_origin origin;
    int64_t steps;     /* -1 until terminal */
    char *stop_reason; /* NULL when unset; likewise verdict, verdict_label, error, claimed_by */
    double final_risk, grad_norm, param_norm, initial_risk;
    json_t *verdict;
    char *verdict_label;
    char *error;
    char *claimed_by; /* worker id of the current or last claim */
    int64_t attempts;
    int64_t lease_at_ms, started_at_ms, finished_at_ms;
    int has_params;
};

/* One batch handed to a worker: runs of one experiment, all under one claim token. */
struct store_claimed_run {
    char id[STORE_ID_SIZE];
    int64_t index;
    uint64_t seed;
    int64_t attempts; /* including this one */
};
struct store_claim {
    char token[STORE_TOKEN_SIZE];
    char experiment_id[STORE_ID_SIZE];
    char dataset_id[STORE_ID_SIZE];
    char architecture_id[STORE_ID_SIZE];
    json_t *spec; /* the experiment's canonical spec */
    uint64_t seed;
    size_t n_runs;
    struct store_claimed_run *runs; /* sorted by index */
};

/* The result a worker reports. status is FINISHED, FAILED or CANCELLED. Reals may be NaN
 * (stored as unknown). stop_reason, verdict, verdict_label, error may be NULL; params (n_params
 * float64 values, the end point) may be NULL. */
struct store_run_result {
    const char *run_id;
    const char *token;
    enum store_run_status status;
    int64_t steps;
    const char *stop_reason;
    double initial_risk, final_risk, grad_norm, param_norm;
    json_t *verdict;
    const char *verdict_label;
    const char *error;
    const double *params;
    size_t n_params;
};

/* A parameter point that did not come from training (a construction or an imported vector),
 * for store_run_insert_finished: stored as a one-run experiment that is finished at once, so the
 * point takes part in run lists, verdict counts, spurious witnesses, basins and comparisons like
 * any trained run. origin is STORE_ORIGIN_CONSTRUCTION or STORE_ORIGIN_IMPORTED; spec is the
 * experiment's canonical spec (restarts 1, naming dataset_id and architecture_id); objective_key
 * NULL derives it from spec as store_experiment_create does; summary (may be NULL) is stored as
 * the experiment's summary (e.g. the construction report). steps −1 = none; reals may be NaN;
 * stop_reason, verdict, verdict_label may be NULL; params (n_params values) may be NULL. */
struct store_finished_run {
    const char *dataset_id;
    const char *architecture_id;
    json_t *spec;
    const char *objective_key;
    json_t *summary;
    enum store_run_origin origin;
    uint64_t seed;
    int64_t steps;
    const char *stop_reason;
    double final_risk, grad_norm, param_norm, initial_risk;
    json_t *verdict;
    const char *verdict_label;
    const double *params;
    size_t n_params;
};

/* A trajectory point (step ≤ 2^53, exact as float64); on disk 24 or 32 bytes, see traj_codec.h. */
struct store_traj_point {
    int64_t step;
    double risk, grad_norm, param_norm;
};
struct store_traj_info {
    int64_t count;                 /* points stored */
    int64_t first_step, last_step; /* -1 when count == 0 */
};

struct store_event {
    int64_t id;
    char type[STORE_EVENT_TYPE_SIZE];
    json_t *data;
    int64_t created_at_ms;
};

struct store_metrics {
    int64_t runs[STORE_RUN_STATUS_COUNT];        /* by enum store_run_status */
    int64_t experiments[STORE_EXP_STATUS_COUNT]; /* by enum store_exp_status */
    int64_t queue_depth; /* queued runs a worker could claim (experiment not cancelled) */
    int64_t datasets, architectures;
};

/* List results: items[0..n) and the cursor of the next page ("" on the last page). */
struct store_dataset_list {
    size_t n;
    struct store_dataset *items;
    char next_cursor[STORE_CURSOR_SIZE];
};
struct store_architecture_list {
    size_t n;
    struct store_architecture *items;
    char next_cursor[STORE_CURSOR_SIZE];
};
struct store_experiment_list {
    size_t n;
    struct store_experiment *items;
    char next_cursor[STORE_CURSOR_SIZE];
};
struct store_run_list {
    size_t n;
    struct store_run *items;
    char next_cursor[STORE_CURSOR_SIZE];
};
struct store_event_list {
    size_t n;
    struct store_event *items;
};

enum store_run_order { STORE_ORDER_INDEX, STORE_ORDER_FINAL_RISK };
/* Run list filters. status −1 = any; verdict_label NULL = any. ORDER_FINAL_RISK sorts by
 * (final_risk ascending, unknown last, then index). */
struct store_run_filter {
    int status;
    const char *verdict_label;
    enum store_run_order order;
};
/* The spurious filter of store_run_list_spurious (spurious.h states the rule): keep the runs
 * whose flag is true (or false; null never matches), judged against `best`, the best evaluated
 * risk of the objective (NaN when none), with relative tolerance tol_rel (≥ 0, finite). */
enum store_spurious_mode { STORE_SPURIOUS_TRUE = 1, STORE_SPURIOUS_FALSE = 2 };
struct store_spurious_filter {
    enum store_spurious_mode mode;
    double best;
    double tol_rel;
};

/* ---- objectives and spurious minima (spurious.h states the rule) ---- */

/* The best evaluated point of an objective: the finished run with the lowest finite final_risk
 * over every experiment with the same objective key (only the experiment itself when its key is
 * unknown); ties go to the older experiment, then the lower restart index. */
struct store_best_run {
    int found; /* 0: no finished run with a finite risk */
    char run_id[STORE_ID_SIZE];
    char experiment_id[STORE_ID_SIZE];
    double final_risk;
    int64_t experiments;                /* experiments sharing the key (≥ 1) */
    char objective_key[STORE_KEY_SIZE]; /* of the asked experiment; "" when unknown */
};

/* Finished runs of one experiment by verdict label. */
struct store_label_counts {
    int64_t certified_minimum, likely_minimum, saddle, not_converged;
    int64_t none;  /* no label yet */
    int64_t other; /* a label this binary does not know */
};

/* One experiment's finished runs judged against the best point of its objective, all read in
 * one transaction (a consistent snapshot). */
struct store_spurious_stats {
    struct store_best_run best;
    int64_t finished; /* finished runs */
    struct store_label_counts labels;
    int64_t minima;            /* runs taken as minima (by label or, unlabeled, by grad_tol) */
    int64_t minima_stationary; /* of those, unlabeled runs that stopped at grad_tol */
    int64_t spurious;          /* flag true */
    int64_t not_spurious;      /* flag false */
};

/* One value of a text column of runs and how many runs of the experiment have it. */
struct store_name_count {
    char *name; /* malloc'd */
    int64_t count;
};
/* An experiment's runs of every status counted by stop reason and by verdict label (runs
 * without one are not counted), and its best run: the finished run with the lowest finite
 * final_risk, ties to the lower restart index (the first evaluated run of the FINAL_RISK
 * order). Read in one snapshot by GROUP BY in the database, never by loading the runs. */
struct store_run_counts {
    int best_found;
    char best_run_id[STORE_ID_SIZE];
    double best_risk; /* NaN when !best_found */
    size_t n_stop_reasons, n_verdicts;
    struct store_name_count *stop_reasons; /* ordered by name (strcmp) */
    struct store_name_count *verdicts;     /* ordered by name (strcmp) */
};
void store_run_counts_free(struct store_run_counts *c);

/* A finished run's end point, for analyses over many runs. */
struct store_end_point {
    char run_id[STORE_ID_SIZE];
    int64_t index;
    double final_risk;
    char verdict_label[32]; /* "" when none (a longer label is cut) */
};
struct store_end_points {
    size_t n;
    size_t n_params;
    struct store_end_point *items;
    double *params;   /* n rows of n_params values (malloc'd) */
    int64_t finished; /* finished runs of the experiment in the snapshot that was read */
    int64_t skipped;  /* finished runs left out: no end point or not n_params values */
    int truncated;    /* more than max_points finished runs have end points */
};
void store_end_points_free(struct store_end_points *p);

void store_dataset_free(struct store_dataset *d);
void store_architecture_free(struct store_architecture *a);
void store_experiment_free(struct store_experiment *e);
void store_run_free(struct store_run *r);
void store_claim_free(struct store_claim *c);
void store_dataset_list_free(struct store_dataset_list *l);
void store_architecture_list_free(struct store_architecture_list *l);
void store_experiment_list_free(struct store_experiment_list *l);
void store_run_list_free(struct store_run_list *l);
void store_event_list_free(struct store_event_list *l);

/* An API token of `basinlab serve --auth tokens` (auth.h). The store keeps only the SHA-256 of
 * the secret, never the secret itself. */
#define STORE_API_TOKEN_NAME_SIZE 65 /* a name of at most 64 bytes with its NUL */
#define STORE_API_TOKEN_HASH_SIZE 65 /* 64 lower-case hex digits with the NUL */
#define STORE_API_TOKEN_PREFIX "tok_"
struct store_api_token {
    char id[STORE_ID_SIZE];                        /* "tok_" + 16 hex digits; ignored on insert */
    char name[STORE_API_TOKEN_NAME_SIZE];          /* "" = none */
    char scope[8];                                 /* "read" or "write" */
    char secret_sha256[STORE_API_TOKEN_HASH_SIZE]; /* hex SHA-256 of the secret */
    int64_t created_at_ms;                         /* ignored on insert (the store sets it) */
    int64_t revoked_at_ms;                         /* 0 = active; ignored on insert */
};

/* ---- opening ---- */

struct store_options {
    int busy_timeout_ms; /* 0 → 5000 */
    int max_idle_conns;  /* connections kept open between calls; 0 → 8 */
    int max_attempts;    /* claims a run may use before requeue_stale fails it; 0 → 3 */
    /* Called (from any thread) with the cause of STORE_EINTERNAL/EIO/ECORRUPT errors; may be
     * NULL. */
    void (*log)(void *user, const char *msg);
    void *log_user;
    /* SQLite only: the name of a registered sqlite3_vfs to open the files with; NULL = SQLite's
     * default. Tests use it to inject storage faults (vfs_fault.h); production leaves it NULL. */
    const char *vfs;
};

struct store;

/* Open (creating if needed) and migrate the store at `location` ("sqlite:PATH", PATH or a
 * postgres:// URL, optionally with basinlab's own parameter schema=NAME). opt may
 * be NULL for defaults. On failure *out is NULL and err (if errcap > 0) holds a sentence, e.g.
 * "database schema version 3 is newer than this binary's (1)" with STORE_ETOONEW. */
int store_open(const char *location, const struct store_options *opt, struct store **out, char *err,
               size_t errcap);

/* ---- the backend table ---- */

struct store_ops {
    void (*close)(struct store *s);
    int (*ping)(struct store *s);
    int (*schema_version)(struct store *s, int *version);

    int (*dataset_insert)(struct store *s, const struct store_dataset *d,
                          char id_out[STORE_ID_SIZE]);
    int (*dataset_get)(struct store *s, const char *id, unsigned flags, struct store_dataset **out);
    int (*dataset_list)(struct store *s, size_t limit, const char *cursor,
                        struct store_dataset_list **out);
    int (*dataset_delete)(struct store *s, const char *id);

    int (*architecture_insert)(struct store *s, const struct store_architecture *a,
                               char id_out[STORE_ID_SIZE]);
    int (*architecture_get)(struct store *s, const char *id, struct store_architecture **out);
    int (*architecture_list)(struct store *s, size_t limit, const char *cursor,
                             struct store_architecture_list **out);
    int (*architecture_delete)(struct store *s, const char *id);

    int (*experiment_create)(struct store *s, const struct store_experiment_new *e,
                             char id_out[STORE_ID_SIZE], int *existed);
    int (*experiment_get)(struct store *s, const char *id, struct store_experiment **out);
    int (*experiment_list)(struct store *s, int status, size_t limit, const char *cursor,
                           struct store_experiment_list **out);
    int (*experiment_progress)(struct store *s, const char *id, struct store_progress *out);
    int (*experiment_set_summary)(struct store *s, const char *id, json_t *summary);
    int (*experiment_cancel)(struct store *s, const char *id, int *changed);
    int (*experiment_delete)(struct store *s, const char *id);

    int (*claim_runs)(struct store *s, const char *worker_id, size_t max_runs,
                      struct store_claim **out);
    int (*claim_heartbeat)(struct store *s, const char *token, int *cancel_requested);
    int (*claim_release)(struct store *s, const char *token, int64_t *requeued);
    int (*run_finish)(struct store *s, const struct store_run_result *r);
    int (*requeue_stale)(struct store *s, int64_t lease_before_ms, int64_t *requeued,
                         int64_t *failed);
    int (*run_get)(struct store *s, const char *id, struct store_run **out);
    int (*run_list)(struct store *s, const char *experiment_id, const struct store_run_filter *f,
                    size_t limit, const char *cursor, struct store_run_list **out);
    int (*run_params_get)(struct store *s, const char *run_id, double **params, size_t *n);

    int (*trajectory_append)(struct store *s, const char *run_id, const char *token,
                             const struct store_traj_point *pts, size_t n);
    int (*trajectory_info)(struct store *s, const char *run_id, struct store_traj_info *out);
    int (*trajectory_read)(struct store *s, const char *run_id, int64_t from_step, int64_t to_step,
                           size_t limit, struct store_traj_point **pts, size_t *n,
                           int64_t *next_step);
    int (*trajectory_downsample)(struct store *s, const char *run_id, int64_t from_step,
                                 int64_t to_step, size_t max_points, struct store_traj_point **pts,
                                 size_t *n);

    int (*event_append)(struct store *s, const char *experiment_id, const char *type, json_t *data,
                        int64_t *id_out);
    int (*events_since)(struct store *s, const char *experiment_id, int64_t after_id, size_t limit,
                        struct store_event_list **out);

    int (*metrics)(struct store *s, struct store_metrics *out);

    int (*objective_best)(struct store *s, const char *experiment_id, struct store_best_run *out);
    int (*run_list_spurious)(struct store *s, const char *experiment_id,
                             const struct store_run_filter *f,
                             const struct store_spurious_filter *sf, size_t limit,
                             const char *cursor, struct store_run_list **out);
    int (*experiment_spurious_stats)(struct store *s, const char *experiment_id, double tol_rel,
                                     struct store_spurious_stats *out);
    int (*experiment_end_points)(struct store *s, const char *experiment_id, size_t max_points,
                                 size_t n_params, struct store_end_points **out);
    int (*experiment_run_counts)(struct store *s, const char *experiment_id, int groups,
                                 struct store_run_counts **out);

    int (*run_insert_finished)(struct store *s, const struct store_finished_run *r,
                               char experiment_id_out[STORE_ID_SIZE],
                               char run_id_out[STORE_ID_SIZE]);

    /* API tokens (optional: NULL in a backend that has none) */
    int (*api_token_insert)(struct store *s, const struct store_api_token *t,
                            char id_out[STORE_ID_SIZE]);
    int (*api_token_find)(struct store *s, const char *secret_sha256, struct store_api_token *out);
    int (*api_token_list)(struct store *s, struct store_api_token **items, size_t *n);
    int (*api_token_revoke)(struct store *s, const char *id, int *changed);

    /* The database-wide change counter (optional: NULL in a backend that has none) */
    int (*data_version)(struct store *s, uint64_t *out);
};

struct store {
    const struct store_ops *ops;
};

/* ---- the API: thin wrappers over the backend table ----
 * Unless said otherwise: STORE_ENOTFOUND for an unknown id, STORE_EINVAL for a bad argument,
 * outputs are only written on STORE_OK (pointer outputs are set to NULL on failure). */

/* Closes every pooled connection and frees s; accepts NULL. No call may be in flight. */
static inline void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}
/* A trivial query, for /readyz. */
static inline int store_ping(struct store *s)
{
    return s->ops->ping(s);
}
static inline int store_schema_version(struct store *s, int *version)
{
    return s->ops->schema_version(s, version);
}

static inline int store_dataset_insert(struct store *s, const struct store_dataset *d,
                                       char id_out[STORE_ID_SIZE])
{
    return s->ops->dataset_insert(s, d, id_out);
}
/* flags: STORE_WITH_DATA to also load x and y. */
static inline int store_dataset_get(struct store *s, const char *id, unsigned flags,
                                    struct store_dataset **out)
{
    return s->ops->dataset_get(s, id, flags, out);
}
/* Newest first, without x/y. */
static inline int store_dataset_list(struct store *s, size_t limit, const char *cursor,
                                     struct store_dataset_list **out)
{
    return s->ops->dataset_list(s, limit, cursor, out);
}
/* STORE_ECONFLICT while an experiment references the dataset. */
static inline int store_dataset_delete(struct store *s, const char *id)
{
    return s->ops->dataset_delete(s, id);
}

static inline int store_architecture_insert(struct store *s, const struct store_architecture *a,
                                            char id_out[STORE_ID_SIZE])
{
    return s->ops->architecture_insert(s, a, id_out);
}
static inline int store_architecture_get(struct store *s, const char *id,
                                         struct store_architecture **out)
{
    return s->ops->architecture_get(s, id, out);
}
static inline int store_architecture_list(struct store *s, size_t limit, const char *cursor,
                                          struct store_architecture_list **out)
{
    return s->ops->architecture_list(s, limit, cursor, out);
}
static inline int store_architecture_delete(struct store *s, const char *id)
{
    return s->ops->architecture_delete(s, id);
}

/* The experiment and its `restarts` queued runs (index 0..restarts−1) in one transaction.
 * Unknown dataset/architecture: STORE_ENOTFOUND. With an idempotency key already used: the same
 * request_hash returns the existing experiment's id with *existed = 1 (nothing inserted); a
 * different hash is STORE_ECONFLICT. Otherwise *existed = 0. */
static inline int store_experiment_create(struct store *s, const struct store_experiment_new *e,
                                          char id_out[STORE_ID_SIZE], int *existed)
{
    return s->ops->experiment_create(s, e, id_out, existed);
}
/* With its progress counts (one consistent snapshot). */
static inline int store_experiment_get(struct store *s, const char *id,
                                       struct store_experiment **out)
{
    return s->ops->experiment_get(s, id, out);
}
/* Newest first; status −1 = any, else an enum store_exp_status. */
static inline int store_experiment_list(struct store *s, int status, size_t limit,
                                        const char *cursor, struct store_experiment_list **out)
{
    return s->ops->experiment_list(s, status, limit, cursor, out);
}
static inline int store_experiment_progress(struct store *s, const char *id,
                                            struct store_progress *out)
{
    return s->ops->experiment_progress(s, id, out);
}
/* Replaces the summary JSON (borrowed). */
static inline int store_experiment_set_summary(struct store *s, const char *id, json_t *summary)
{
    return s->ops->experiment_set_summary(s, id, summary);
}
/* Cancel: queued runs → cancelled, running runs flagged, status → cancelled. *changed = 0 if it
 * was already cancelled. STORE_ECONFLICT if it already finished. */
static inline int store_experiment_cancel(struct store *s, const char *id, int *changed)
{
    return s->ops->experiment_cancel(s, id, changed);
}
/* Deletes the experiment with its runs, end points, trajectories and events, whatever their
 * state (a worker still holding one of its runs gets STORE_ENOTFOUND on its next call). */
static inline int store_experiment_delete(struct store *s, const char *id)
{
    return s->ops->experiment_delete(s, id);
}

/* Claims up to max_runs queued runs of one fairly chosen experiment for worker_id (a label kept
 * for diagnostics). *out = NULL (and STORE_OK) when nothing is queued. */
static inline int store_claim_runs(struct store *s, const char *worker_id, size_t max_runs,
                                   struct store_claim **out)
{
    return s->ops->claim_runs(s, worker_id, max_runs, out);
}
/* Extends the lease of every still-running run of the claim; *cancel_requested = 1 when its
 * experiment was cancelled (stop and report the runs as cancelled). STORE_ECONFLICT when no run
 * of the claim is running any more (the claim was lost: stop, do not report). */
static inline int store_claim_heartbeat(struct store *s, const char *token, int *cancel_requested)
{
    return s->ops->claim_heartbeat(s, token, cancel_requested);
}
/* A clean hand-back (a draining worker): the claim's runs that are still `running` go back to
 * `queued`, their partial trajectory dropped and the attempt they used returned (a drain is not
 * a lost worker, so it must not count towards max_attempts); runs of a cancelled experiment
 * become `cancelled` instead. The token is dead afterwards. *requeued (optional) counts the runs
 * queued again; a claim with nothing left running is not an error (0). */
static inline int store_claim_release(struct store *s, const char *token, int64_t *requeued)
{
    return s->ops->claim_release(s, token, requeued);
}
/* Fenced: writes the result (and end point) only if the run is `running` under r->token; then
 * STORE_ECONFLICT (stale token, terminal run) — a terminal run is never rewritten. Also finishes
 * the experiment when this was its last non-terminal run, and appends the events. */
static inline int store_run_finish(struct store *s, const struct store_run_result *r)
{
    return s->ops->run_finish(s, r);
}
/* Runs `running` with a lease older than lease_before_ms (STORE_NO_LIMIT: all of them) go back
 * to `queued` with their partial trajectory dropped, the attempt kept only by the lowest-index
 * running run of each claim (the others of that claim get it back); runs that used
 * max_attempts are failed, runs of a cancelled experiment cancelled. Counts are optional. */
static inline int store_requeue_stale(struct store *s, int64_t lease_before_ms, int64_t *requeued,
                                      int64_t *failed)
{
    return s->ops->requeue_stale(s, lease_before_ms, requeued, failed);
}
static inline int store_run_get(struct store *s, const char *id, struct store_run **out)
{
    return s->ops->run_get(s, id, out);
}
/* Runs of one experiment (STORE_ENOTFOUND if it does not exist); f may be NULL (all, by index). */
static inline int store_run_list(struct store *s, const char *experiment_id,
                                 const struct store_run_filter *f, size_t limit, const char *cursor,
                                 struct store_run_list **out)
{
    return s->ops->run_list(s, experiment_id, f, limit, cursor, out);
}
/* The end point (malloc'd, free()); STORE_ENOTFOUND if the run or its end point is unknown. */
static inline int store_run_params_get(struct store *s, const char *run_id, double **params,
                                       size_t *n)
{
    return s->ops->run_params_get(s, run_id, params, n);
}

/* Appends points (steps strictly increasing, after the last stored step; 0 ≤ step ≤ 2^53) to a
 * run `running` under token (else STORE_ECONFLICT). Points are packed into chunks of up to
 * STORE_TRAJ_CHUNK_POINTS, filling the last chunk first: batch calls, but any call size is
 * stored compactly. */
static inline int store_trajectory_append(struct store *s, const char *run_id, const char *token,
                                          const struct store_traj_point *pts, size_t n)
{
    return s->ops->trajectory_append(s, run_id, token, pts, n);
}
static inline int store_trajectory_info(struct store *s, const char *run_id,
                                        struct store_traj_info *out)
{
    return s->ops->trajectory_info(s, run_id, out);
}
/* Up to `limit` points with from_step ≤ step ≤ to_step in step order (malloc'd array, free(); NULL
 * when *n == 0). *next_step is the step to pass as from_step for the next page, −1 when done. */
static inline int store_trajectory_read(struct store *s, const char *run_id, int64_t from_step,
                                        int64_t to_step, size_t limit,
                                        struct store_traj_point **pts, size_t *n,
                                        int64_t *next_step)
{
    return s->ops->trajectory_read(s, run_id, from_step, to_step, limit, pts, n, next_step);
}
/* At most max_points (≥ 4) points of [from_step, to_step]: the whole range when it fits, else
 * per step bucket its first, last, min-risk and max-risk points (downsample.h), so spikes
 * survive. Malloc'd array, free(). */
static inline int store_trajectory_downsample(struct store *s, const char *run_id,
                                              int64_t from_step, int64_t to_step, size_t max_points,
                                              struct store_traj_point **pts, size_t *n)
{
    return s->ops->trajectory_downsample(s, run_id, from_step, to_step, max_points, pts, n);
}

/* type: 1..63 bytes; data (borrowed) any JSON value. */
static inline int store_event_append(struct store *s, const char *experiment_id, const char *type,
                                     json_t *data, int64_t *id_out)
{
    return s->ops->event_append(s, experiment_id, type, data, id_out);
}
/* Events with id > after_id in id order, at most limit (STORE_ENOTFOUND if the experiment is
 * gone, so a stream can end). */
static inline int store_events_since(struct store *s, const char *experiment_id, int64_t after_id,
                                     size_t limit, struct store_event_list **out)
{
    return s->ops->events_since(s, experiment_id, after_id, limit, out);
}

/* The database-wide change counter: it grows in every committed transaction that writes a table
 * the run view (GET /v1/runs/{id}) depends on: runs, run_params, experiments. Read it before
 * reading what a cached answer is made of (resp_cache.c). STORE_EINVAL when the backend has
 * none. One prepared statement per connection. */
static inline int store_data_version(struct store *s, uint64_t *out)
{
    return s->ops->data_version ? s->ops->data_version(s, out) : STORE_EINVAL;
}

static inline int store_metrics(struct store *s, struct store_metrics *out)
{
    return s->ops->metrics(s, out);
}

/* The best evaluated point of experiment_id's objective (out->found = 0 when there is none). */
static inline int store_objective_best(struct store *s, const char *experiment_id,
                                       struct store_best_run *out)
{
    return s->ops->objective_best(s, experiment_id, out);
}
/* store_run_list with the spurious filter sf as well (keyset pagination as there: a cursor of
 * this list is only valid with the same f and sf). */
static inline int store_run_list_spurious(struct store *s, const char *experiment_id,
                                          const struct store_run_filter *f,
                                          const struct store_spurious_filter *sf, size_t limit,
                                          const char *cursor, struct store_run_list **out)
{
    return s->ops->run_list_spurious(s, experiment_id, f, sf, limit, cursor, out);
}
/* The best point of the objective and the experiment's finished runs counted by label and by
 * spurious flag, with the relative tolerance tol_rel (≥ 0, finite). */
static inline int store_experiment_spurious_stats(struct store *s, const char *experiment_id,
                                                  double tol_rel, struct store_spurious_stats *out)
{
    return s->ops->experiment_spurious_stats(s, experiment_id, tol_rel, out);
}
/* The end points of the experiment's finished runs, by restart index: at most max_points
 * (1..STORE_MAX_RESTARTS; truncated = 1 when there are more), each of exactly n_params (≥ 1)
 * values. Free with store_end_points_free. */
static inline int store_experiment_end_points(struct store *s, const char *experiment_id,
                                              size_t max_points, size_t n_params,
                                              struct store_end_points **out)
{
    return s->ops->experiment_end_points(s, experiment_id, max_points, n_params, out);
}

/* The run counts of the experiment summary (struct store_run_counts); with groups = 0 only the
 * best run (one indexed lookup; the groupings stay empty). Free with store_run_counts_free. A
 * backend without this operation answers STORE_EINVAL. */
static inline int store_experiment_run_counts(struct store *s, const char *experiment_id,
                                              int groups, struct store_run_counts **out)
{
    if (s->ops->experiment_run_counts == NULL) {
        if (out)
            *out = NULL;
        return STORE_EINVAL;
    }
    return s->ops->experiment_run_counts(s, experiment_id, groups, out);
}

/* One transaction: the experiment (status finished, restarts 1, the summary), its run 0
 * (status finished, r->origin, the result and end point) and the events "run_finished" and
 * "status" (finished). Unknown dataset or architecture: STORE_ENOTFOUND; a bad argument (origin
 * trained, missing ids or spec, params NULL with n_params > 0): STORE_EINVAL. A backend without
 * this operation answers STORE_EINVAL. */
static inline int store_run_insert_finished(struct store *s, const struct store_finished_run *r,
                                            char experiment_id_out[STORE_ID_SIZE],
                                            char run_id_out[STORE_ID_SIZE])
{
    if (s->ops->run_insert_finished == NULL)
        return STORE_EINVAL;
    return s->ops->run_insert_finished(s, r, experiment_id_out, run_id_out);
}

/* ---- API tokens (auth.h). A backend without them answers STORE_EINVAL to every call. ---- */

/* 1 when the backend stores API tokens. */
static inline int store_has_api_tokens(const struct store *s)
{
    return s->ops->api_token_insert != NULL && s->ops->api_token_find != NULL &&
           s->ops->api_token_list != NULL && s->ops->api_token_revoke != NULL;
}
/* Stores a new active token: t->name ("" = none, at most 64 bytes), t->scope ("read" or
 * "write") and t->secret_sha256 (64 lower-case hex digits; STORE_ECONFLICT if already
 * stored). */
static inline int store_api_token_insert(struct store *s, const struct store_api_token *t,
                                         char id_out[STORE_ID_SIZE])
{
    if (s->ops->api_token_insert == NULL)
        return STORE_EINVAL;
    return s->ops->api_token_insert(s, t, id_out);
}
/* The ACTIVE token whose secret has this hash; STORE_ENOTFOUND when there is none (never
 * stored, or revoked). */
static inline int store_api_token_find(struct store *s, const char *secret_sha256,
                                       struct store_api_token *out)
{
    if (s->ops->api_token_find == NULL)
        return STORE_EINVAL;
    return s->ops->api_token_find(s, secret_sha256, out);
}
/* Every token, revoked ones included, oldest first (malloc'd array, free(); NULL when *n is
 * 0). */
static inline int store_api_token_list(struct store *s, struct store_api_token **items, size_t *n)
{
    if (s->ops->api_token_list == NULL)
        return STORE_EINVAL;
    return s->ops->api_token_list(s, items, n);
}
/* Revokes the token (takes effect for the next request); *changed = 0 when it already was. */
static inline int store_api_token_revoke(struct store *s, const char *id, int *changed)
{
    if (s->ops->api_token_revoke == NULL)
        return STORE_EINVAL;
    return s->ops->api_token_revoke(s, id, changed);
}

#endif
