/* `basinlab worker` (cli_worker.h): the worker process of a multi-machine deployment.
 *
 * DESIGN
 * The same parts as `basinlab serve` minus HTTP: the store, the worker pool (worker.c; claims,
 * heartbeats and fenced results live in run_exec.c and the store) and the lease reaper
 * (reaper.c). Signals are blocked before any thread exists and taken with sigwait() in the main
 * thread, with serve.c's set-up (serve_signals_setup, which also routes a signal that lands on
 * one of OpenBLAS's threads back to the main thread), so the shutdown is ordinary code: drain
 * the pool (trainings stop at
 * their next poll and their runs go back to `queued` with the attempt returned), stop the
 * reaper, close the store.
 * Safety with many processes: a worker never requeues runs that another process may be
 * training; only runs whose lease is older than --lease-timeout are taken back (at start and by
 * the reaper). A worker killed with SIGKILL or cut off from the database stops heartbeating; its
 * runs come back after the lease timeout and are trained again elsewhere, and its own late
 * writes are refused by the fenced updates, so each result is written exactly once.
 * The worker id in claimed_by is "<host>-<pid>-<thread>", so runs can be traced to a machine. */
#include "cli_worker.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "basin/status.h"
#include "cli_train.h"
#include "config.h"
#include "limits.h"
#include "reaper.h"
#include "serve.h"
#include "store.h"
#include "store_pg.h"
#include "worker.h"

void cli_worker_usage(FILE *out)
{
    fputs("usage: basinlab worker --store postgres://USER:PASS@HOST:PORT/DB [options]\n"
          "Trains queued runs of a PostgreSQL store shared with `basinlab serve` and other\n"
          "workers, on any machine; no HTTP. Settings are serve's (the HTTP ones are ignored):\n"
          "  --store / BASINLAB_STORE            the shared store (postgres:// URL)\n"
          "  --workers / BASINLAB_WORKERS        training threads, default one per core\n"
          "  --lease-timeout / BASINLAB_LEASE_TIMEOUT  seconds without a heartbeat before a\n"
          "                                      run is requeued, default 30\n"
          "  --max-run-seconds / BASINLAB_MAX_RUN_SECONDS  wall-clock budget of one run\n"
          "  --batch / BASINLAB_BATCH            runs a thread claims at once, default 8\n",
          out);
}

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

static void log_line(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "basinlab worker: %s\n", msg);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_worker_main(int argc, char **argv)
{
    struct serve_config cfg;
    struct store_options sopt;
    struct worker_options wopt;
    struct app app;
    struct store *store = NULL;
    struct worker_pool *pool = NULL;
    struct reaper *reaper = NULL;
    sigset_t set;
    char err[512], shown[512], host[64], name[32];
    int help = 0, app_ready = 0, sig = 0;
    int status = CLI_EXIT_INTERNAL;

    memset(&app, 0, sizeof app);
    if (config_load(&cfg, argc, argv, env_lookup, &help, err, sizeof err) != BASIN_OK) {
        fprintf(stderr, "basinlab worker: %s\n", err);
        cli_worker_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (help) {
        cli_worker_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!store_location_is_postgres(cfg.db)) {
        fprintf(stderr, "basinlab worker: needs a store shared between processes: "
                        "--store postgres://... (a SQLite file is trained by `basinlab serve`)\n");
        return CLI_EXIT_USAGE;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n_threads = cfg.workers > 0              ? cfg.workers
                         : cores < 1                  ? 1
                         : cores > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS
                                                      : (unsigned)cores;
    unsigned lease_ms = (unsigned)(cfg.lease_timeout * 1000.0);
    store_location_redact(cfg.db, shown, sizeof shown);

    if (serve_signals_setup(&set) != 0) {
        fprintf(stderr, "basinlab worker: cannot block signals\n");
        goto done;
    }

    memset(&sopt, 0, sizeof sopt);
    sopt.log = log_line;
    int rc = store_open(cfg.db, &sopt, &store, err, sizeof err);
    if (rc != STORE_OK) {
        fprintf(stderr, "basinlab worker: cannot open the store %s: %s\n", shown,
                err[0] ? err : store_strerror(rc));
        goto done;
    }
    int64_t requeued = 0, failed = 0;
    rc = store_requeue_stale(store, wall_ms() - (int64_t)lease_ms, &requeued, &failed);
    if (rc != STORE_OK) {
        fprintf(stderr, "basinlab worker: cannot requeue expired runs: %s\n", store_strerror(rc));
        goto done;
    }
    rc = reaper_start(store, lease_ms, lease_ms / 4 > 250 ? lease_ms / 4 : 250, log_line, NULL,
                      &reaper);
    if (rc != BASIN_OK) {
        fprintf(stderr, "basinlab worker: cannot start the lease reaper: %s\n", basin_strerror(rc));
        goto done;
    }
    if (app_init(&app) != BASIN_OK) {
        fprintf(stderr, "basinlab worker: out of memory\n");
        goto done;
    }
    app_ready = 1;
    app.store = store;
    limits_defaults(&app.limits);

    if (gethostname(host, sizeof host) != 0)
        strcpy(host, "host");
    host[sizeof host - 1] = '\0';
    snprintf(name, sizeof name, "%.16s-%ld", host, (long)getpid() % 100000000L);
    memset(&wopt, 0, sizeof wopt);
    wopt.max_run_seconds = cfg.max_run_seconds;
    wopt.batch = cfg.batch;
    wopt.name = name;
    wopt.log = log_line;
    rc = worker_pool_start(&app, n_threads, &wopt, &pool);
    if (rc != BASIN_OK) {
        fprintf(stderr, "basinlab worker: cannot start %u threads: %s\n", n_threads,
                basin_strerror(rc));
        goto done;
    }
    app.workers = pool;
    printf("basinlab worker ready (store %s, %u threads, lease %g s)\n", shown, n_threads,
           cfg.lease_timeout);
    fflush(stdout);

    sig = serve_signals_wait(&set);
    fprintf(stderr, "basinlab worker: %s received: runs in flight go back to the queue\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    if (worker_pool_drain(pool, SERVE_DRAIN_WORKERS_MS) != BASIN_OK)
        fprintf(stderr, "basinlab worker: some threads did not stop within %u ms\n",
                SERVE_DRAIN_WORKERS_MS);
    status = CLI_EXIT_OK;
done:
    worker_pool_stop(pool);
    reaper_stop(reaper);
    store_close(store);
    if (app_ready)
        app_destroy(&app);
    if (status == CLI_EXIT_OK)
        fprintf(stderr, "basinlab worker: stopped\n");
    return status;
}
