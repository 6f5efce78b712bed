/* The application context of `basinlab serve`: what every handler and worker shares.
 *
 * DESIGN: one `struct app` per process, created by serve.c before the HTTP server and the
 * worker pool start and destroyed after both stopped. Everything in it is either immutable after
 * start-up (store pointer, limits, config) or safe to use from any thread (the store is
 * thread-safe, metrics are atomics, the change notifier is a mutex + condvar). The notifier is a
 * sequence number bumped on every state change a client may wait for (experiment submitted, run
 * finished, cancel); SSE producers and idle workers wait on it with a timeout, so progress reaches
 * clients without polling the database in a tight loop. */
#ifndef BASINLAB_APP_H
#define BASINLAB_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"

struct store;
struct worker_pool;
struct resp_cache;

#define APP_RUN_CACHE_BYTES ((size_t)64 << 20)

/* Request latency histogram buckets (seconds), Prometheus style. */
#define APP_LATENCY_BUCKETS 12

struct app_metrics {
    atomic_uint_fast64_t requests_total;
    atomic_uint_fast64_t responses_by_class[6];                   /* index status/100 (1xx..5xx) */
    atomic_uint_fast64_t latency_bucket[APP_LATENCY_BUCKETS + 1]; /* last = +Inf */
    atomic_uint_fast64_t latency_sum_us;
    atomic_uint_fast64_t train_steps_total; /* optimizer steps taken by workers */
    atomic_uint_fast64_t runs_finished_total;
    atomic_uint_fast64_t runs_failed_total;
};

struct app {
    struct store *store;
    struct limits limits;
    struct worker_pool *workers; /* NULL when this process runs no workers */
    struct app_metrics metrics;
    atomic_bool draining;   /* SIGTERM seen: refuse new work with 503 + Retry-After */
    size_t max_queued_runs; /* a submission that would exceed this answers 429 */
    const char *web_root;   /* directory of the dashboard's static files (NULL = none) */

    /* Rendered GET /v1/runs/{id} answers (resp_cache.h); NULL = disabled. Created by app_init
     * with APP_RUN_CACHE_BYTES, or BASINLAB_RUN_CACHE_BYTES from the environment (0 = off). */
    struct resp_cache *run_cache;

    pthread_mutex_t notify_mu;
    pthread_cond_t notify_cv;
    uint64_t notify_seq;
};

/* Initialise the parts of app that need it (notifier, metrics); the caller sets the rest. */
int app_init(struct app *app);
void app_destroy(struct app *app);

/* Wake every waiter: something observable changed. */
void app_notify(struct app *app);
/* Wait until the sequence number differs from *seen or timeout_ms passes; *seen is updated to
 * the current value. Returns 1 when a change was seen, 0 on timeout. */
int app_wait_change(struct app *app, uint64_t *seen, unsigned timeout_ms);

/* Record one finished request for /metrics. */
void app_record_request(struct app *app, int status, uint64_t duration_us);

/* The upper bounds (seconds) of the latency buckets. */
extern const double app_latency_bounds[APP_LATENCY_BUCKETS];

#endif
