/* `basinlab serve` (serve.h): start-up, the signal wait and the drain.
 *
 * DESIGN
 * Signals. SIGTERM and SIGINT are blocked in the main thread before any other thread exists,
 * so every thread (MHD's, the workers') inherits the mask and the signals stay pending until
 * the main thread takes them with sigwait(): no handler runs, nothing async-signal-unsafe can
 * happen, and the shutdown is ordinary code. SIGPIPE is ignored (a client that goes away
 * mid-answer must not kill the process; MHD also sends with MSG_NOSIGNAL where it can).
 *
 * Start-up order: store (migrated; a database newer than this binary is refused) → requeue
 * every run left `running` (this process is the only worker set on this SQLite file, so all of
 * them are stale: STORE_NO_LIMIT) → worker pool → HTTP server → the "listening" line. The line
 * is printed only when everything is up and names the real port (tests use --port 0 and read
 * it from there).
 *
 * Drain, bounded by SERVE_DRAIN_TOTAL_MS (under the 10 s a supervisor usually allows):
 *   1. app.draining = 1: POST /v1/experiments answers 503 + Retry-After, reads keep working;
 *   2. worker_pool_drain: trainings stop at their next poll and their unfinished runs go back
 *      to `queued` (not failed, not cancelled) — the next start redoes them bit-identically;
 *   3. http_server_quiesce: the listening socket closes, event streams end, requests in flight
 *      finish; wait (bounded) for open connections to close, then stop the daemon;
 *   4. join the workers, close the store.
 * A run acknowledged with 202 was committed before the answer (the store commits first), so
 * SIGKILL at any point loses nothing acknowledged: the next start requeues what was running. */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "basin/status.h"
#include "cli_train.h"
#include "config.h"
#include "handlers.h"
#include "http.h"
#include "limits.h"
#include "store.h"
#include "worker.h"

enum { SERVE_POLL_MS = 50 };

void serve_usage(FILE *out)
{
    config_usage(out);
}

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

static void log_line(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "basinlab: %s\n", msg);
}

static void record_request(void *ctx, int status, uint64_t duration_us)
{
    app_record_request(ctx, status, duration_us);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* 1 for 127.0.0.0/8 and ::1 (and the v4-mapped ::ffff:127.x). */
static int is_loopback(const char *addr)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, addr, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &v6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&v6))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
    }
    return 0;
}

static unsigned default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS : (unsigned)n;
}

/* The store location without a "sqlite:" prefix, for the listening line. */
static const char *db_path(const char *location)
{
    return strncmp(location, "sqlite:", 7) == 0 ? location + 7 : location;
}

/* Wait for SIGTERM or SIGINT (blocked in every thread). */
static int wait_for_signal(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0) {
    }
    return sig;
}

static void drain(struct app *app, struct worker_pool *pool, struct http_server *srv)
{
    uint64_t t0 = now_ms();
    atomic_store(&app->draining, 1);
    fprintf(stderr, "basinlab: draining: new submissions get 503; runs in flight go back to "
                    "the queue\n");
    int rc = worker_pool_drain(pool, SERVE_DRAIN_WORKERS_MS);
    if (rc != BASIN_OK)
        fprintf(stderr, "basinlab: some workers did not stop within %u ms\n",
                SERVE_DRAIN_WORKERS_MS);
    http_server_quiesce(srv);
    while (http_server_connections(srv) > 0 && now_ms() - t0 < SERVE_DRAIN_TOTAL_MS)
        sleep_ms(SERVE_POLL_MS);
    http_server_stop(srv);
}

int serve_main(int argc, char **argv)
{
    struct serve_config cfg;
    struct store_options sopt;
    struct worker_options wopt;
    struct http_config hcfg;
    struct app app;
    struct store *store = NULL;
    struct worker_pool *pool = NULL;
    struct http_server *srv = NULL;
    sigset_t set;
    char err[512];
    int help = 0, app_ready = 0;
    int status = CLI_EXIT_INTERNAL;

    memset(&app, 0, sizeof app);
    if (config_load(&cfg, argc, argv, env_lookup, &help, err, sizeof err) != BASIN_OK) {
        fprintf(stderr, "basinlab serve: %s\n", err);
        serve_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (help) {
        serve_usage(stdout);
        return CLI_EXIT_OK;
    }
    unsigned n_workers = cfg.workers > 0 ? cfg.workers : default_workers();

    /* before any thread exists: every thread inherits the mask */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
        fprintf(stderr, "basinlab serve: cannot block signals\n");
        goto done;
    }
    signal(SIGPIPE, SIG_IGN);

    memset(&sopt, 0, sizeof sopt);
    sopt.log = log_line;
    int src = store_open(cfg.db, &sopt, &store, err, sizeof err);
    if (src != STORE_OK) {
        fprintf(stderr, "basinlab serve: cannot open the database %s: %s\n", cfg.db,
                err[0] ? err : store_strerror(src));
        goto done;
    }
    int64_t requeued = 0, failed = 0;
    src = store_requeue_stale(store, STORE_NO_LIMIT, &requeued, &failed);
    if (src != STORE_OK) {
        fprintf(stderr, "basinlab serve: cannot requeue interrupted runs: %s\n",
                store_strerror(src));
        goto done;
    }
    if (requeued > 0 || failed > 0)
        fprintf(stderr,
                "basinlab: %" PRId64 " interrupted runs queued again, %" PRId64
                " failed after too many attempts\n",
                requeued, failed);

    if (app_init(&app) != BASIN_OK) {
        fprintf(stderr, "basinlab serve: out of memory\n");
        goto done;
    }
    app_ready = 1;
    app.store = store;
    limits_defaults(&app.limits);
    app.max_queued_runs = cfg.max_queued_runs;
    app.web_root = cfg.web_root;
    if (cfg.web_root != NULL) {
        struct stat st;
        if (stat(cfg.web_root, &st) != 0 || !S_ISDIR(st.st_mode))
            fprintf(stderr, "basinlab: warning: --web %s is not a directory\n", cfg.web_root);
    }

    memset(&wopt, 0, sizeof wopt);
    wopt.max_run_seconds = cfg.max_run_seconds;
    wopt.log = log_line;
    int rc = worker_pool_start(&app, n_workers, &wopt, &pool);
    if (rc != BASIN_OK) {
        fprintf(stderr, "basinlab serve: cannot start %u workers: %s\n", n_workers,
                basin_strerror(rc));
        goto done;
    }
    app.workers = pool;

    http_config_defaults(&hcfg);
    hcfg.bind_address = cfg.bind;
    hcfg.port = (uint16_t)cfg.port;
    hcfg.max_body_bytes = app.limits.max_body_bytes;
    hcfg.done_fn = record_request;
    hcfg.done_ctx = &app;
    rc = http_server_start(&hcfg, basinlab_routes, basinlab_route_count, &app, &srv);
    if (rc != BASIN_OK) {
        fprintf(stderr, "basinlab serve: cannot listen on %s port %u: %s\n", cfg.bind, cfg.port,
                rc == BASIN_EINVAL ? "address invalid, in use or not permitted"
                                   : basin_strerror(rc));
        goto done;
    }
    if (!is_loopback(cfg.bind))
        fprintf(stderr,
                "basinlab: warning: listening on %s, which is not a loopback address: the API "
                "has no authentication; put it behind a proxy that adds some\n",
                cfg.bind);
    int v6 = strchr(cfg.bind, ':') != NULL;
    printf("basinlab listening on http://%s%s%s:%u (db %s, %u workers)\n", v6 ? "[" : "", cfg.bind,
           v6 ? "]" : "", (unsigned)http_server_port(srv), db_path(cfg.db), n_workers);
    fflush(stdout);

    int sig = wait_for_signal(&set);
    fprintf(stderr, "basinlab: %s received\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    drain(&app, pool, srv);
    srv = NULL;
    status = CLI_EXIT_OK;
done:
    if (srv != NULL) {
        http_server_quiesce(srv);
        http_server_stop(srv);
    }
    worker_pool_stop(pool);
    store_close(store);
    if (app_ready)
        app_destroy(&app);
    if (status == CLI_EXIT_OK)
        fprintf(stderr, "basinlab: stopped\n");
    return status;
}
