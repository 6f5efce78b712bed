/* The worker pool of `basinlab serve`: a fixed set of threads that take runs from the durable
 * queue in the store (store_claim_runs), train them (run_exec.h) and report them back, plus the
 * drain that SIGTERM triggers. Training never runs on an HTTP thread: handlers only insert
 * queued runs and call app_notify(), which wakes idle workers. */
#ifndef BASINLAB_WORKER_H
#define BASINLAB_WORKER_H

#include <stddef.h>

struct app;
struct worker_pool;

#define WORKER_MAX_THREADS 256
#define WORKER_DEFAULT_BATCH 8
/* worker_pool_drain: some thread did not stop before the deadline (distinct from BASIN_E*). */
#define WORKER_ETIMEDOUT (-201)

/* Zero means the default everywhere. */
struct worker_options {
    size_t batch;           /* B: runs claimed at once, 1..STORE_MAX_CLAIM; 0 → 8 */
    double max_run_seconds; /* wall-clock budget of one run, else it fails; 0 = none */
    unsigned heartbeat_ms;  /* lease renewal while training (cancel latency); 0 → 1000 */
    unsigned flush_ms;      /* trajectory points reach the store at least this often; 0 → 2000 */
    unsigned idle_poll_ms;  /* an idle worker looks at the queue at least this often; 0 → 1000 */
    unsigned retry_ms;      /* back-off after a store failure; 0 → 1000 */
    size_t cache_entries;   /* experiments whose core objects a thread keeps; 0 → 2 */
    const char *name;       /* worker id prefix in the runs' claimed_by; NULL → "w<pid>" */
    /* Diagnostics, called from worker threads; NULL = stderr. */
    void (*log)(void *user, const char *msg);
    void *log_user;
};

/* Start n_threads (1..WORKER_MAX_THREADS) workers on app (borrowed: it must outlive the pool;
 * app->store must be open). opt may be NULL. Pins OpenBLAS to one thread: the workers are the
 * parallelism, and a single-threaded BLAS keeps every run bit-reproducible. Does not set
 * app->workers. BASIN_EINVAL, BASIN_ENOMEM (nothing left running on failure). */
int worker_pool_start(struct app *app, unsigned n_threads, const struct worker_options *opt,
                      struct worker_pool **out);

/* Stop claiming, tell running trainings to stop at their next poll, hand their unfinished runs
 * back to `queued` (neither cancelled nor failed: another worker redoes them bit-identically)
 * and join the threads. Waits at most timeout_ms from now: BASIN_OK when every thread stopped,
 * WORKER_ETIMEDOUT otherwise (the rest stop on their own; worker_pool_stop joins them). Safe to
 * call more than once; accepts NULL. */
int worker_pool_drain(struct worker_pool *pool, unsigned timeout_ms);

/* Drain without a deadline, join every thread and free the pool. Accepts NULL. */
void worker_pool_stop(struct worker_pool *pool);

#endif
