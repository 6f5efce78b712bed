/* The worker pool (worker.h): threads that claim batches of queued runs, hand each claim to
 * their executor (run_exec.c), and stop cleanly on a drain.
 *
 * DESIGN
 * Shape (libuv's threadpool, Redis's bio): a fixed array of threads created at start, a stop
 * flag, a mutex + condition variable, and a join at the end. The queue itself is not in memory:
 * it is the `runs` table, so it survives a crash and can be shared by other processes. A worker
 * loops:
 *     seq ← notifier sequence
 *     claim ← store_claim_runs(B)      (one experiment, chosen fairly by the store)
 *     none?   wait for a notifier change after seq, at most idle_poll_ms
 *     else    run_exec_claim(claim)    (train, report or hand back every run)
 * Reading seq BEFORE claiming closes the lost-wake-up window: a submission committed after the
 * empty claim bumps the sequence past seq, so the wait returns at once. idle_poll_ms bounds the
 * wait for work that arrives without a notification (another process, a requeue).
 *
 * Drain. `drain` is an atomic flag read by the claim loop and by the training hook every 64
 * optimizer steps, so a drain needs no lock on the hot path. worker_pool_drain sets it,
 * broadcasts the pool's condition variable (threads backing off after a store error) and the
 * app notifier (idle threads), then waits on the condition variable until `alive` reaches zero
 * or the deadline passes. A training thread seeing the flag stops, and its executor releases
 * the claim (store_claim_release): the unfinished runs go back to `queued` with the attempt
 * returned, so a drain is neither a failure nor a cancel. Threads that overrun the deadline
 * keep stopping on their own; worker_pool_stop joins them. If the process dies first, the
 * start-up requeue (store_requeue_stale) recovers their runs.
 *
 * Store failures. A claim whose executor gave up on the store (RUN_EXEC_RETRY) is handed back
 * again and again (settle_claim) until the store accepts: while storage fails, the executor's
 * own release fails too, and runs left `running` under a dead claim would wait for the next
 * start-up.
 *
 * Invariants: `alive` and `joined` are guarded by mu; a thread decrements `alive` as its very
 * last action, so once it is zero every join returns promptly. No lock is held while training
 * or while calling the store.
 *
 * Priority. Training is throughput work; answering requests is latency work, and both share the
 * same cores. Each worker thread therefore lowers its own CPU priority at start by
 * BASINLAB_WORKER_NICE (default WORKER_DEFAULT_NICE; 0 turns it off; clamped to 19) relative to the
 * process: setpriority(PRIO_PROCESS, tid) on Linux applies to that thread only, so the HTTP
 * threads keep nice 0 and the scheduler serves a waiting request first while training still gets
 * every idle cycle. A thread cannot raise its priority back without CAP_SYS_NICE, which is fine:
 * it ends with the pool. A failed setpriority is logged and ignored. */
#define _GNU_SOURCE /* syscall(SYS_gettid) */
#include "worker.h"

#include <cblas.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "app.h"
#include "basin/alloc.h"
#include "basin/status.h"
#include "run_exec.h"
#include "store.h"

#define DEFAULT_IDLE_POLL_MS 1000u
#define DEFAULT_RETRY_MS 1000u
#define WORKER_ID_SIZE 64

struct worker_thread {
    struct worker_pool *pool;
    pthread_t tid;
    int started, joined;
    char id[WORKER_ID_SIZE]; /* claimed_by label */
    struct run_exec *exec;
};

struct worker_pool {
    struct app *app;
    struct worker_options opt; /* defaults filled in */
    char name[WORKER_ID_SIZE / 2];
    atomic_int drain;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a thread exited, or the drain began */
    unsigned alive;
    unsigned n_threads;
    struct worker_thread *threads;
};

static void pool_log(struct worker_pool *pool, const char *id, const char *what, int rc)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s: %s", id, what, store_strerror(rc));
    if (pool->opt.log)
        pool->opt.log(pool->opt.log_user, msg);
    else
        fprintf(stderr, "basinlab %s\n", msg);
}

static void deadline_after(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Back off for ms, returning early when the drain begins. */
static void pool_sleep(struct worker_pool *pool, unsigned ms)
{
    struct timespec deadline;
    int err = 0;
    deadline_after(&deadline, ms);
    pthread_mutex_lock(&pool->mu);
    while (!atomic_load(&pool->drain) && err != ETIMEDOUT)
        err = pthread_cond_timedwait(&pool->cv, &pool->mu, &deadline);
    pthread_mutex_unlock(&pool->mu);
}

static uint64_t notify_seq(struct app *app)
{
    pthread_mutex_lock(&app->notify_mu);
    uint64_t seq = app->notify_seq;
    pthread_mutex_unlock(&app->notify_mu);
    return seq;
}

/* After RUN_EXEC_RETRY: make sure the claim really went back. The executor tried once, but
 * when the store is failing that release fails too, and nothing else would requeue the runs
 * before the next start-up (store_requeue_stale runs only there): they would stay `running`
 * under a dead claim and their experiment would never finish. A release is idempotent (a claim
 * with nothing left running answers 0), so retry it until the store takes it, the claim turns
 * out to be gone, or the pool drains (then the next start-up requeues the runs). */
static void settle_claim(struct worker_pool *pool, struct worker_thread *w, const char *token)
{
    for (;;) {
        int64_t requeued = 0;
        int rc = store_claim_release(pool->app->store, token, &requeued);
        if (rc == STORE_OK) {
            if (requeued > 0)
                app_notify(pool->app);
            return;
        }
        if (rc == STORE_ECONFLICT || rc == STORE_ENOTFOUND)
            return;
        pool_log(pool, w->id, "handing a claim back failed (will retry)", rc);
        pool_sleep(pool, pool->opt.retry_ms);
        if (atomic_load(&pool->drain))
            return;
    }
}

#define WORKER_DEFAULT_NICE 10

/* The nice increment of worker threads: BASINLAB_WORKER_NICE (0..19), else the default. */
static int worker_nice(void)
{
    const char *v = getenv("BASINLAB_WORKER_NICE");
    char *end = NULL;
    if (v == NULL || v[0] == '\0')
        return WORKER_DEFAULT_NICE;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || n < 0)
        return WORKER_DEFAULT_NICE;
    return n > 19 ? 19 : (int)n;
}

static void lower_priority(struct worker_pool *pool, const char *id)
{
    int inc = worker_nice();
    if (inc == 0)
        return;
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, tid);
    if (cur == -1 && errno != 0)
        cur = 0;
    int want = cur + inc > 19 ? 19 : cur + inc;
    if (setpriority(PRIO_PROCESS, tid, want) != 0)
        pool_log(pool, id, "lowering the worker thread's priority failed", STORE_EINVAL);
}

static void *worker_main(void *arg)
{
    struct worker_thread *w = arg;
    struct worker_pool *pool = w->pool;
    struct app *app = pool->app;

    lower_priority(pool, w->id);

    while (!atomic_load(&pool->drain)) {
        struct store_claim *claim = NULL;
        enum run_exec_outcome outcome = RUN_EXEC_DONE;
        uint64_t seen = notify_seq(app);
        int rc = store_claim_runs(app->store, w->id, pool->opt.batch, &claim);
        if (rc != STORE_OK) {
            pool_log(pool, w->id, "claiming runs failed", rc);
            pool_sleep(pool, pool->opt.retry_ms);
            continue;
        }
        if (claim == NULL) {
            app_wait_change(app, &seen, pool->opt.idle_poll_ms);
            continue;
        }
        run_exec_claim(w->exec, claim, &outcome);
        if (outcome == RUN_EXEC_RETRY) {
            pool_sleep(pool, pool->opt.retry_ms);
            settle_claim(pool, w, claim->token);
        }
        store_claim_free(claim);
    }
    pthread_mutex_lock(&pool->mu);
    pool->alive--;
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

static void begin_drain(struct worker_pool *pool)
{
    atomic_store(&pool->drain, 1);
    pthread_mutex_lock(&pool->mu);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    app_notify(pool->app);
}

/* Join every started thread not joined yet; only call when they have exited or will. */
static void join_all(struct worker_pool *pool)
{
    for (unsigned i = 0; i < pool->n_threads; i++) {
        struct worker_thread *w = &pool->threads[i];
        if (w->started && !w->joined) {
            pthread_join(w->tid, NULL);
            w->joined = 1;
        }
    }
}

static void pool_free(struct worker_pool *pool)
{
    for (unsigned i = 0; pool->threads != NULL && i < pool->n_threads; i++)
        run_exec_free(pool->threads[i].exec);
    basin_free(pool->threads);
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
    basin_free(pool);
}

static void fill_defaults(struct worker_options *o)
{
    if (o->batch == 0)
        o->batch = WORKER_DEFAULT_BATCH;
    if (o->idle_poll_ms == 0)
        o->idle_poll_ms = DEFAULT_IDLE_POLL_MS;
    if (o->retry_ms == 0)
        o->retry_ms = DEFAULT_RETRY_MS;
}

/* The mutex and a monotonic condition variable (so deadlines ignore wall-clock jumps). */
static int pool_sync_init(struct worker_pool *pool)
{
    pthread_condattr_t attr;
    int rc = BASIN_ENOMEM;
    if (pthread_condattr_init(&attr) != 0)
        return rc;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&pool->mu, NULL) == 0) {
        if (pthread_cond_init(&pool->cv, &attr) == 0)
            rc = BASIN_OK;
        else
            pthread_mutex_destroy(&pool->mu);
    }
    pthread_condattr_destroy(&attr);
    return rc;
}

static int make_executors(struct worker_pool *pool)
{
    struct run_exec_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.app = pool->app;
    cfg.max_run_seconds = pool->opt.max_run_seconds;
    cfg.heartbeat_ms = pool->opt.heartbeat_ms;
    cfg.flush_ms = pool->opt.flush_ms;
    cfg.cache_entries = pool->opt.cache_entries;
    cfg.drain = &pool->drain;
    cfg.log = pool->opt.log;
    cfg.log_user = pool->opt.log_user;
    for (unsigned i = 0; i < pool->n_threads; i++) {
        struct worker_thread *w = &pool->threads[i];
        w->pool = pool;
        snprintf(w->id, sizeof w->id, "%s-%u", pool->name, i);
        cfg.worker_id = w->id;
        int rc = run_exec_create(&cfg, &w->exec);
        if (rc != BASIN_OK)
            return rc;
    }
    return BASIN_OK;
}

int worker_pool_start(struct app *app, unsigned n_threads, const struct worker_options *opt,
                      struct worker_pool **out)
{
    struct worker_pool *pool = NULL;
    int rc = BASIN_EINVAL, sync_ok = 0;

    if (out)
        *out = NULL;
    if (!app || !app->store || !out || n_threads < 1 || n_threads > WORKER_MAX_THREADS ||
        (opt && (opt->batch > STORE_MAX_CLAIM || !(opt->max_run_seconds >= 0.0))))
        goto done;
    rc = BASIN_ENOMEM;
    pool = basin_calloc(1, sizeof *pool);
    if (pool == NULL)
        goto done;
    pool->app = app;
    if (opt)
        pool->opt = *opt;
    fill_defaults(&pool->opt);
    if (pool->opt.name)
        snprintf(pool->name, sizeof pool->name, "%s", pool->opt.name);
    else
        snprintf(pool->name, sizeof pool->name, "w%ld", (long)getpid());
    atomic_init(&pool->drain, 0);
    rc = pool_sync_init(pool);
    if (rc != BASIN_OK)
        goto done;
    sync_ok = 1;
    pool->n_threads = n_threads;
    pool->threads = basin_calloc(n_threads, sizeof *pool->threads);
    if (pool->threads == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rc = make_executors(pool);
    if (rc != BASIN_OK)
        goto done;
    openblas_set_num_threads(1);
    for (unsigned i = 0; i < n_threads; i++) {
        pthread_mutex_lock(&pool->mu);
        pool->alive++;
        pthread_mutex_unlock(&pool->mu);
        if (pthread_create(&pool->threads[i].tid, NULL, worker_main, &pool->threads[i]) != 0) {
            pthread_mutex_lock(&pool->mu);
            pool->alive--;
            pthread_mutex_unlock(&pool->mu);
            rc = BASIN_ENOMEM;
            goto done;
        }
        pool->threads[i].started = 1;
    }
    rc = BASIN_OK;
done:
    if (rc == BASIN_OK) {
        *out = pool;
    } else if (pool != NULL) {
        if (sync_ok) {
            begin_drain(pool);
            join_all(pool);
            pool_free(pool);
        } else {
            basin_free(pool);
        }
    }
    return rc;
}

int worker_pool_drain(struct worker_pool *pool, unsigned timeout_ms)
{
    struct timespec deadline;
    int err = 0;
    unsigned left;

    if (pool == NULL)
        return BASIN_OK;
    deadline_after(&deadline, timeout_ms);
    begin_drain(pool);
    pthread_mutex_lock(&pool->mu);
    while (pool->alive > 0 && err != ETIMEDOUT)
        err = pthread_cond_timedwait(&pool->cv, &pool->mu, &deadline);
    left = pool->alive;
    pthread_mutex_unlock(&pool->mu);
    if (left > 0)
        return WORKER_ETIMEDOUT;
    join_all(pool);
    return BASIN_OK;
}

void worker_pool_stop(struct worker_pool *pool)
{
    if (pool == NULL)
        return;
    begin_drain(pool);
    join_all(pool);
    pool_free(pool);
}
