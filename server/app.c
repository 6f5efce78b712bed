/* The shared application context (app.h): change notifier, request metrics and the run
 * response cache. */
#include "app.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "basin/status.h"
#include "resp_cache.h"

const double app_latency_bounds[APP_LATENCY_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                        0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

/* BASINLAB_RUN_CACHE_BYTES: a decimal byte count (0 disables the cache); anything else → the
 * default. */
static size_t run_cache_bytes(void)
{
    const char *v = getenv("BASINLAB_RUN_CACHE_BYTES");
    char *end = NULL;
    if (v == NULL || v[0] < '0' || v[0] > '9')
        return APP_RUN_CACHE_BYTES;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || (unsigned long long)(size_t)n != n)
        return APP_RUN_CACHE_BYTES;
    return (size_t)n;
}

int app_init(struct app *app)
{
    int rc = BASIN_OK;
    pthread_condattr_t attr;
    app->run_cache = NULL;
    if (pthread_condattr_init(&attr) != 0)
        return BASIN_ENOMEM;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&app->notify_mu, NULL) != 0) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    if (pthread_cond_init(&app->notify_cv, &attr) != 0) {
        pthread_mutex_destroy(&app->notify_mu);
        rc = BASIN_ENOMEM;
        goto done;
    }
    app->notify_seq = 0;
    atomic_init(&app->draining, 0);
    rc = resp_cache_create(run_cache_bytes(), &app->run_cache);
    if (rc != BASIN_OK) {
        pthread_cond_destroy(&app->notify_cv);
        pthread_mutex_destroy(&app->notify_mu);
    }
done:
    pthread_condattr_destroy(&attr);
    return rc;
}

void app_destroy(struct app *app)
{
    if (!app)
        return;
    pthread_cond_destroy(&app->notify_cv);
    pthread_mutex_destroy(&app->notify_mu);
    resp_cache_destroy(app->run_cache);
    app->run_cache = NULL;
}

void app_notify(struct app *app)
{
    pthread_mutex_lock(&app->notify_mu);
    app->notify_seq++;
    pthread_cond_broadcast(&app->notify_cv);
    pthread_mutex_unlock(&app->notify_mu);
}

int app_wait_change(struct app *app, uint64_t *seen, unsigned timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&app->notify_mu);
    int err = 0;
    while (app->notify_seq == *seen && err != ETIMEDOUT)
        err = pthread_cond_timedwait(&app->notify_cv, &app->notify_mu, &deadline);
    int changed = app->notify_seq != *seen;
    *seen = app->notify_seq;
    pthread_mutex_unlock(&app->notify_mu);
    return changed;
}

void app_record_request(struct app *app, int status, uint64_t duration_us)
{
    struct app_metrics *m = &app->metrics;
    atomic_fetch_add(&m->requests_total, 1);
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        atomic_fetch_add(&m->responses_by_class[cls], 1);
    double s = (double)duration_us / 1e6;
    size_t b = 0;
    while (b < APP_LATENCY_BUCKETS && s > app_latency_bounds[b])
        b++;
    atomic_fetch_add(&m->latency_bucket[b], 1);
    atomic_fetch_add(&m->latency_sum_us, duration_us);
}
