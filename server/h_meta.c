/* The operational endpoints: liveness (/healthz: the process answers, nothing else is
 * touched), readiness (/readyz: not draining and the store answers a trivial query; 503 with
 * Retry-After otherwise, so a load balancer stops sending work), Prometheus metrics (/metrics,
 * text exposition format 0.0.4), the published limits (/v1/limits) and the OpenAPI contract
 * compiled into the binary (/openapi.yaml).
 *
 * Metrics: store gauges (queue depth, runs and experiments by status, datasets, architectures)
 * come from one store_metrics call; when it fails they are left out and basinlab_store_up is 0,
 * so the process counters stay scrapeable while the database is unavailable. Counters and the
 * latency histogram come from app->metrics (atomics). The histogram's buckets are stored per
 * interval and summed here into Prometheus' cumulative `le` buckets; _count is the +Inf bucket
 * so that the two always agree even while requests are being recorded. */
#include "handlers.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "basin/alloc.h"
#include "basin/status.h"
#include "openapi_embed.h"

enum { READYZ_RETRY_S = 5 };

int h_healthz(struct request *req, struct reply *rep)
{
    (void)req;
    int rc = reply_cache_control(rep, "no-store");
    if (rc == BASIN_OK)
        rc = reply_json(rep, 200, json_pack("{s:s}", "status", "ok"));
    return rc;
}

int h_readyz(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    const char *why = NULL;
    int rc = reply_cache_control(rep, "no-store");
    if (rc != BASIN_OK)
        return rc;
    if (atomic_load(&app->draining))
        why = "the server is draining: it finishes current work and takes no new work";
    else if (store_ping(app->store) != STORE_OK)
        why = "the data store does not answer";
    if (why == NULL)
        return reply_json(rep, 200, json_pack("{s:s}", "status", "ready"));
    rc = reply_retry_after(rep, READYZ_RETRY_S);
    if (rc == BASIN_OK)
        rc = reply_problem(rep, 503, "Not Ready", why, NULL, 0);
    return rc;
}

int h_limits(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    return reply_json(rep, 200, limits_to_json(&app->limits));
}

int h_openapi(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_bytes(rep, 200, "application/yaml", basinlab_openapi_yaml,
                       basinlab_openapi_yaml_len);
}

/* ---- /metrics ---- */

struct mtext {
    char *buf;
    size_t len, cap;
    int failed;
};

static void mt_printf(struct mtext *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void mt_printf(struct mtext *t, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2 && !t->failed; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->buf != NULL && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 4096;
        while (cap - t->len <= (size_t)n)
            cap *= 2;
        char *grown = basin_realloc(t->buf, cap);
        if (grown == NULL) {
            t->failed = 1;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
}

static void mt_family(struct mtext *t, const char *name, const char *type, const char *help)
{
    mt_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void store_gauges(struct mtext *t, const struct store_metrics *m)
{
    mt_family(t, "basinlab_queue_depth", "gauge", "Queued runs that a worker could claim.");
    mt_printf(t, "basinlab_queue_depth %lld\n", (long long)m->queue_depth);
    mt_family(t, "basinlab_runs", "gauge", "Runs in the store by status.");
    for (int s = 0; s < STORE_RUN_STATUS_COUNT; s++)
        mt_printf(t, "basinlab_runs{status=\"%s\"} %lld\n",
                  store_run_status_name((enum store_run_status)s), (long long)m->runs[s]);
    mt_family(t, "basinlab_experiments", "gauge", "Experiments in the store by status.");
    for (int s = 0; s < STORE_EXP_STATUS_COUNT; s++)
        mt_printf(t, "basinlab_experiments{status=\"%s\"} %lld\n",
                  store_exp_status_name((enum store_exp_status)s), (long long)m->experiments[s]);
    mt_family(t, "basinlab_datasets", "gauge", "Datasets in the store.");
    mt_printf(t, "basinlab_datasets %lld\n", (long long)m->datasets);
    mt_family(t, "basinlab_architectures", "gauge", "Architectures in the store.");
    mt_printf(t, "basinlab_architectures %lld\n", (long long)m->architectures);
}

static void counter(struct mtext *t, const char *name, const char *help, uint64_t v)
{
    mt_family(t, name, "counter", help);
    mt_printf(t, "%s %llu\n", name, (unsigned long long)v);
}

static void process_metrics(struct mtext *t, struct app_metrics *m)
{
    static const char *const classes[] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};
    counter(t, "basinlab_train_steps_total", "Optimizer steps taken by workers.",
            atomic_load(&m->train_steps_total));
    counter(t, "basinlab_runs_finished_total", "Runs that workers finished.",
            atomic_load(&m->runs_finished_total));
    counter(t, "basinlab_runs_failed_total", "Runs that failed.",
            atomic_load(&m->runs_failed_total));
    counter(t, "basinlab_http_requests_total", "HTTP requests answered.",
            atomic_load(&m->requests_total));
    mt_family(t, "basinlab_http_responses_total", "counter", "HTTP responses by status class.");
    for (int c = 1; c <= 5; c++)
        mt_printf(t, "basinlab_http_responses_total{class=\"%s\"} %llu\n", classes[c],
                  (unsigned long long)atomic_load(&m->responses_by_class[c]));
    mt_family(t, "basinlab_http_request_duration_seconds", "histogram",
              "Time from request start to the answer being queued.");
    unsigned long long cumulative = 0;
    for (int b = 0; b <= APP_LATENCY_BUCKETS; b++) {
        cumulative += (unsigned long long)atomic_load(&m->latency_bucket[b]);
        if (b < APP_LATENCY_BUCKETS)
            mt_printf(t, "basinlab_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                      app_latency_bounds[b], cumulative);
        else
            mt_printf(t, "basinlab_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                      cumulative);
    }
    mt_printf(t, "basinlab_http_request_duration_seconds_sum %.6f\n",
              (double)atomic_load(&m->latency_sum_us) / 1e6);
    mt_printf(t, "basinlab_http_request_duration_seconds_count %llu\n", cumulative);
}

int h_metrics(struct request *req, struct reply *rep)
{
    struct app *app = req->app;
    struct mtext t = {0};
    struct store_metrics sm;
    memset(&sm, 0, sizeof sm);
    int up = store_metrics(app->store, &sm) == STORE_OK;
    mt_family(&t, "basinlab_store_up", "gauge", "1 when the data store answered this scrape.");
    mt_printf(&t, "basinlab_store_up %d\n", up);
    if (up)
        store_gauges(&t, &sm);
    process_metrics(&t, &app->metrics);
    if (t.failed) {
        basin_free(t.buf);
        return BASIN_ENOMEM;
    }
    int rc = reply_cache_control(rep, "no-store");
    if (rc != BASIN_OK) {
        basin_free(t.buf);
        return rc;
    }
    return reply_take_body(rep, 200, "text/plain; version=0.0.4", t.buf, t.len);
}
