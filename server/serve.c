/* `basinlab serve` (serve.h): start-up, the signal wait and the drain.
 *
 * DESIGN
 * Signals. SIGTERM and SIGINT are blocked in the main thread before any other thread exists,
 * so every thread (MHD's, the workers') inherits the mask and the signals stay pending until
 * the main thread takes them with sigwait(): no handler runs, nothing async-signal-unsafe can
 * happen, and the shutdown is ordinary code. SIGPIPE is ignored (a client that goes away
 * mid-answer must not kill the process; MHD also sends with MSG_NOSIGNAL where it can).
 * One exception to "before any other thread exists": OpenBLAS starts its thread pool in a
 * library constructor, before main, and those threads do not block the signals. While the main
 * thread is not inside sigwait() (e.g. just after start-up), the kernel may deliver a SIGTERM to
 * one of them, and the default action would kill the process without a drain. So SIGTERM and
 * SIGINT also get a handler, which only re-sends the signal to the main thread (pthread_kill is
 * async-signal-safe), where it stays pending until sigwait() takes it.
 *
 * Start-up order: store (migrated; a database newer than this binary is refused) → requeue
 * every run left `running` (this process is the only worker set on this SQLite file, so all of
 * them are stale: STORE_NO_LIMIT) → worker pool → the request pipeline's security hooks from
 * --rate-limit, --cors-origins and --auth (serve_guards) → HTTP server → the "listening" line.
 * The line is printed only when everything is up and names the real port (tests use --port 0
 * and read it from there).
 * A PostgreSQL store is shared by other `serve` and `worker` processes that may be training
 * right now: only runs whose lease expired (older than --lease-timeout) are requeued at start,
 * and a reaper thread (reaper.h) keeps doing so while the process runs, so a worker that dies
 * anywhere has its runs trained again. With --train 0 the process only serves the API.
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
#include "auth.h"
#include "basin/status.h"
#include "cli_train.h"
#include "config.h"
#include "cors.h"
#include "handlers.h"
#include "http.h"
#include "limits.h"
#include "ratelimit.h"
#include "reaper.h"
#include "store.h"
#include "store_pg.h"
#include "worker.h"

enum {
    SERVE_POLL_MS = 50,
    SERVE_SQLITE_IDLE_CONNS = 64 /* ≥ the request threads that hit the store at once */
};

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

/* Wall-clock milliseconds: leases are wall-clock times, shared between hosts. */
static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* The store location without a "sqlite:" prefix and without a password, for the listening
 * line. */
static const char *db_path(const char *location, char *buf, size_t cap)
{
    if (strncmp(location, "sqlite:", 7) == 0)
        return location + 7;
    store_location_redact(location, buf, cap);
    return buf;
}

/* The thread that waits for the signals (see DESIGN). */
static pthread_t signal_thread;

static void forward_to_main(int sig)
{
    pthread_kill(signal_thread, sig);
}

int serve_signals_setup(sigset_t *set)
{
    struct sigaction sa;
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, set, NULL) != 0)
        return -1;
    /* a SIGTERM/SIGINT that lands on a thread not blocking them goes to this one */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_to_main;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    signal_thread = pthread_self();
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    return signal(SIGPIPE, SIG_IGN) == SIG_ERR ? -1 : 0;
}

int serve_signals_wait(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0) {
    }
    return sig;
}

/* The security steps of the request pipeline, made from the flags (router.h hooks): the rate
 * limit (ratelimit.h), CORS (cors.h) and token authentication (auth.h). They must outlive the
 * HTTP server. */
struct serve_guards {
    struct auth_policy auth;
    struct cors *cors;
    struct ratelimit *limiter;
};

/* Count the active tokens, to warn about a server nobody can call. -1 when unknown. */
static long active_tokens(struct store *store)
{
    struct store_api_token *items = NULL;
    size_t n = 0;
    long active = 0;
    if (store_api_token_list(store, &items, &n) != STORE_OK)
        return -1;
    for (size_t i = 0; i < n; i++)
        active += items[i].revoked_at_ms == 0;
    free(items);
    return active;
}

static int guards_setup(const struct serve_config *cfg, struct store *store, struct serve_guards *g,
                        struct pipeline_hooks *hooks)
{
    char err[256];
    int rc = BASIN_OK;
    memset(g, 0, sizeof *g);
    if (cfg->rate_limit_rps > 0) {
        rc = ratelimit_create(cfg->rate_limit_rps, cfg->rate_limit_burst, 0, &g->limiter);
        if (rc != BASIN_OK) {
            fprintf(stderr, "basinlab serve: cannot set up the rate limit: %s\n",
                    basin_strerror(rc));
            return rc;
        }
        hooks->admit = (struct request_hook){ratelimit_hook, g->limiter};
    }
    if (cfg->cors_origins != NULL) {
        rc = cors_create(cfg->cors_origins, &g->cors, err, sizeof err);
        if (rc != BASIN_OK) {
            fprintf(stderr, "basinlab serve: --cors-origins: %s\n", err[0] ? err : "out of memory");
            return rc;
        }
        hooks->preflight = (struct request_hook){cors_preflight_hook, g->cors};
        hooks->decorate = (struct reply_hook){cors_decorate_hook, g->cors};
    }
    if (cfg->auth == CONFIG_AUTH_TOKENS) {
        if (!store_has_api_tokens(store)) {
            fprintf(stderr, "basinlab serve: --auth tokens needs a store that keeps API tokens "
                            "(SQLite)\n");
            return BASIN_ENOTSUP;
        }
        g->auth.store = store;
        g->auth.metrics_public = cfg->public_health;
        hooks->authorize = (struct request_hook){auth_hook, &g->auth};
        if (active_tokens(store) == 0)
            fprintf(stderr,
                    "basinlab: warning: --auth tokens but no active token: make one with "
                    "`basinlab token create --scope write --db %s`\n",
                    cfg->db);
    }
    return BASIN_OK;
}

static void guards_free(struct serve_guards *g)
{
    ratelimit_free(g->limiter);
    cors_free(g->cors);
    memset(g, 0, sizeof *g);
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
    struct reaper *reaper = NULL;
    struct serve_guards guards;
    sigset_t set;
    char err[512], shown[512];
    int help = 0, app_ready = 0;
    int status = CLI_EXIT_INTERNAL;

    memset(&app, 0, sizeof app);
    memset(&guards, 0, sizeof guards);
    if (config_load(&cfg, argc, argv, env_lookup, &help, err, sizeof err) != BASIN_OK) {
        fprintf(stderr, "basinlab serve: %s\n", err);
        serve_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (help) {
        serve_usage(stdout);
        return CLI_EXIT_OK;
    }
    unsigned n_workers = !cfg.train ? 0 : cfg.workers > 0 ? cfg.workers : default_workers();
    int shared = store_location_is_postgres(cfg.db);
    unsigned lease_ms = (unsigned)(cfg.lease_timeout * 1000.0);

    /* before any thread exists: every thread inherits the mask */
    if (serve_signals_setup(&set) != 0) {
        fprintf(stderr, "basinlab serve: cannot block signals\n");
        goto done;
    }

    memset(&sopt, 0, sizeof sopt);
    sopt.log = log_line;
    /* SQLite: keep a connection for every concurrent request (MHD runs a thread per connection),
     * or the pool reopens one per request and re-reads the schema each time; not for PostgreSQL,
     * whose server-side connection limit the pool must not eat. */
    if (!shared)
        sopt.max_idle_conns = SERVE_SQLITE_IDLE_CONNS;
    int src = store_open(cfg.db, &sopt, &store, err, sizeof err);
    if (src != STORE_OK) {
        fprintf(stderr, "basinlab serve: cannot open the database %s: %s\n", cfg.db,
                err[0] ? err : store_strerror(src));
        goto done;
    }
    int64_t requeued = 0, failed = 0;
    src = store_requeue_stale(store, shared ? wall_ms() - (int64_t)lease_ms : STORE_NO_LIMIT,
                              &requeued, &failed);
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
    app.limits.rate_limit_rps = cfg.rate_limit_rps; /* published at /v1/limits */
    app.limits.rate_limit_burst = cfg.rate_limit_burst;
    app.web_root = cfg.web_root;
    if (cfg.web_root != NULL) {
        struct stat st;
        if (stat(cfg.web_root, &st) != 0 || !S_ISDIR(st.st_mode))
            fprintf(stderr, "basinlab: warning: --web %s is not a directory\n", cfg.web_root);
    }

    int rc;
    if (shared) {
        rc = reaper_start(store, lease_ms, lease_ms / 4 > 250 ? lease_ms / 4 : 250, log_line, NULL,
                          &reaper);
        if (rc != BASIN_OK) {
            fprintf(stderr, "basinlab serve: cannot start the lease reaper: %s\n",
                    basin_strerror(rc));
            goto done;
        }
    }
    memset(&wopt, 0, sizeof wopt);
    wopt.max_run_seconds = cfg.max_run_seconds;
    wopt.batch = cfg.batch;
    wopt.log = log_line;
    if (n_workers > 0) {
        rc = worker_pool_start(&app, n_workers, &wopt, &pool);
        if (rc != BASIN_OK) {
            fprintf(stderr, "basinlab serve: cannot start %u workers: %s\n", n_workers,
                    basin_strerror(rc));
            goto done;
        }
    }
    app.workers = pool;

    http_config_defaults(&hcfg);
    hcfg.bind_address = cfg.bind;
    hcfg.port = (uint16_t)cfg.port;
    hcfg.max_body_bytes = app.limits.max_body_bytes;
    hcfg.done_fn = record_request;
    hcfg.done_ctx = &app;
    rc = guards_setup(&cfg, store, &guards, &hcfg.hooks);
    if (rc != BASIN_OK)
        goto done;
    rc = http_server_start(&hcfg, basinlab_routes, basinlab_route_count, &app, &srv);
    if (rc != BASIN_OK) {
        fprintf(stderr, "basinlab serve: cannot listen on %s port %u: %s\n", cfg.bind, cfg.port,
                rc == BASIN_EINVAL ? "address invalid, in use or not permitted"
                                   : basin_strerror(rc));
        goto done;
    }
    if (!is_loopback(cfg.bind) && cfg.auth == CONFIG_AUTH_NONE)
        fprintf(stderr,
                "basinlab: warning: listening on %s, which is not a loopback address: the API "
                "has no authentication (--auth none); use --auth tokens or a proxy that adds "
                "some\n",
                cfg.bind);
    int v6 = strchr(cfg.bind, ':') != NULL;
    printf("basinlab listening on http://%s%s%s:%u (db %s, %u workers)\n", v6 ? "[" : "", cfg.bind,
           v6 ? "]" : "", (unsigned)http_server_port(srv), db_path(cfg.db, shown, sizeof shown),
           n_workers);
    fflush(stdout);

    int sig = serve_signals_wait(&set);
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
    reaper_stop(reaper);
    guards_free(&guards);
    store_close(store);
    if (app_ready)
        app_destroy(&app);
    if (status == CLI_EXIT_OK)
        fprintf(stderr, "basinlab: stopped\n");
    return status;
}
