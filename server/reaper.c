/* The lease reaper (reaper.h).
 *
 * DESIGN
 * One thread, a mutex + condition variable on CLOCK_MONOTONIC, and a stop flag guarded by the
 * mutex: the thread sleeps period_ms on the condition variable (so reaper_stop wakes it at
 * once), then calls store_requeue_stale with the cutoff now − lease_ms taken from the wall
 * clock (leases are wall-clock times written by other processes, possibly on other hosts, which
 * must therefore keep their clocks in sync). No lock is held while calling the store.
 * Invariant: a run is only requeued when its lease is older than lease_ms, i.e. its worker
 * missed lease_ms / heartbeat_ms heartbeats in a row; a live worker is never robbed as long as
 * its heartbeats reach the database within lease_ms. */
#include "reaper.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "store.h"
#include "store_int.h"

struct reaper {
    struct store *store;
    unsigned lease_ms, period_ms;
    void (*log)(void *user, const char *msg);
    void *log_user;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop; /* guarded by mu */
    pthread_t tid;
};

static void reaper_log(struct reaper *r, const char *msg)
{
    if (r->log)
        r->log(r->log_user, msg);
}

static void *reaper_main(void *arg)
{
    struct reaper *r = arg;
    char msg[160];

    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec deadline;
        int err = 0;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += r->period_ms / 1000;
        deadline.tv_nsec += (long)(r->period_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        while (!r->stop && err != ETIMEDOUT)
            err = pthread_cond_timedwait(&r->cv, &r->mu, &deadline);
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->mu);
        int64_t requeued = 0, failed = 0;
        int rc = store_requeue_stale(r->store, store__now_ms() - (int64_t)r->lease_ms, &requeued,
                                     &failed);
        if (rc != STORE_OK) {
            snprintf(msg, sizeof msg, "reaper: requeueing expired leases failed: %s",
                     store_strerror(rc));
            reaper_log(r, msg);
        } else if (requeued > 0 || failed > 0) {
            snprintf(msg, sizeof msg,
                     "reaper: %" PRId64 " runs whose worker stopped heartbeating queued again, "
                     "%" PRId64 " failed after too many attempts",
                     requeued, failed);
            reaper_log(r, msg);
        }
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int reaper_start(struct store *store, unsigned lease_ms, unsigned period_ms,
                 void (*log)(void *user, const char *msg), void *log_user, struct reaper **out)
{
    struct reaper *r = NULL;
    pthread_condattr_t attr;
    int rc = BASIN_EINVAL, mu_ok = 0, cv_ok = 0;

    if (out)
        *out = NULL;
    if (!store || !out || lease_ms == 0 || period_ms == 0)
        goto done;
    rc = BASIN_ENOMEM;
    r = basin_calloc(1, sizeof *r);
    if (!r)
        goto done;
    r->store = store;
    r->lease_ms = lease_ms;
    r->period_ms = period_ms;
    r->log = log;
    r->log_user = log_user;
    if (pthread_mutex_init(&r->mu, NULL) != 0)
        goto done;
    mu_ok = 1;
    if (pthread_condattr_init(&attr) != 0)
        goto done;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    cv_ok = pthread_cond_init(&r->cv, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!cv_ok)
        goto done;
    if (pthread_create(&r->tid, NULL, reaper_main, r) != 0)
        goto done;
    *out = r;
    r = NULL;
    rc = BASIN_OK;
done:
    if (r) {
        if (cv_ok)
            pthread_cond_destroy(&r->cv);
        if (mu_ok)
            pthread_mutex_destroy(&r->mu);
        basin_free(r);
    }
    return rc;
}

void reaper_stop(struct reaper *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->tid, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    basin_free(r);
}
