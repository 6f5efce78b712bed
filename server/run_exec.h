/* One worker thread's executor: turns a claim from the run queue (store_claim_runs) into core
 * calls and reports every run back to the store.
 *
 * For a claim it builds (or takes from a small cache keyed by experiment id) the experiment's
 * core objects from the stored records — the canonical spec, the architecture record's spec
 * (a basin_net) and the dataset record (x/y blobs, or the teacher_gaussian spec, whose objective
 * is the closed-form population risk) — then trains the claimed runs one after another with
 * basin_train_restart, restart index = the run's index and seed = the run's seed, so run r ends
 * bit-identical to a direct basin_train_restart of restart r of the same spec. Trajectory points
 * are buffered and appended in chunks; the result (status, stop reason, risks, norms, steps and
 * the end point) goes to store_run_finish. A run_exec is used by one thread only. */
#ifndef BASINLAB_RUN_EXEC_H
#define BASINLAB_RUN_EXEC_H

#include <stdatomic.h>
#include <stddef.h>

#include "store.h"

struct app;
struct run_exec;

struct run_exec_config {
    struct app *app;         /* store, limits, notifier and metrics; borrowed */
    const char *worker_id;   /* label for logs; borrowed, may be NULL */
    double max_run_seconds;  /* wall-clock budget of one run; 0 = none */
    unsigned heartbeat_ms;   /* lease renewal period while training; 0 → 1000 */
    unsigned flush_ms;       /* longest time trajectory points stay buffered; 0 → 2000 */
    size_t cache_entries;    /* experiments whose core objects are kept; 0 → 2 */
    const atomic_int *drain; /* nonzero: stop at the next poll and give the claim back */
    /* Diagnostics (store failures, lost claims); NULL = stderr. Called from the worker thread. */
    void (*log)(void *user, const char *msg);
    void *log_user;
};

/* How a claim ended. */
enum run_exec_outcome {
    RUN_EXEC_DONE,     /* every run of the claim was reported terminal */
    RUN_EXEC_RELEASED, /* draining: the runs not yet reported went back to the queue */
    RUN_EXEC_LOST,     /* the claim was taken away (experiment deleted, token fenced out) */
    RUN_EXEC_RETRY     /* the store or memory failed: unreported runs were handed back (if the
                          store allowed it); back off before claiming again */
};

/* BASIN_OK, BASIN_EINVAL (no app or store), BASIN_ENOMEM. cfg is copied. */
int run_exec_create(const struct run_exec_config *cfg, struct run_exec **out);
void run_exec_free(struct run_exec *x);

/* Execute one claim (borrowed) to the end; *outcome says how it ended. Always BASIN_OK: every
 * failure is reported through the runs (status failed with an error) or the outcome. */
int run_exec_claim(struct run_exec *x, const struct store_claim *claim,
                   enum run_exec_outcome *outcome);

#endif
