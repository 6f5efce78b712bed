/* `basinlab serve`: the REST service. Opens (and migrates) the store, puts runs a previous
 * process left `running` back in the queue, starts the worker pool and the HTTP server, prints
 * one line "basinlab listening on http://HOST:PORT (db PATH, N workers)" on stdout, and serves
 * until SIGTERM or SIGINT, then drains: submissions are refused with 503 + Retry-After while
 * reads are still answered, the workers hand their runs in flight back to the queue, the HTTP
 * server stops accepting and finishes what it has, and the process exits 0 (within
 * SERVE_DRAIN_TOTAL_MS). Settings: config.h. */
#ifndef BASINLAB_SERVE_H
#define BASINLAB_SERVE_H

#include <signal.h>
#include <stdio.h>

/* The whole shutdown budget, and its part for the workers. */
#define SERVE_DRAIN_TOTAL_MS 9000u
#define SERVE_DRAIN_WORKERS_MS 6000u

/* argv[0] is "serve". Returns the process exit status: 0 after a clean drain, 1 when the store
 * or the server cannot start (a database newer than this binary, a port in use, ...), 2 for a
 * usage error. */
int serve_main(int argc, char **argv);

void serve_usage(FILE *out);

/* The signal set-up of a long-running command (serve, worker), called in the main thread
 * BEFORE it starts any thread: blocks SIGTERM and SIGINT (threads inherit the mask), routes
 * the ones the kernel delivers to a thread that does not block them — OpenBLAS starts its pool
 * in a constructor, before main — back to this thread, and ignores SIGPIPE. *set receives
 * {SIGTERM, SIGINT} for serve_signals_wait. Returns 0, or -1 when a call failed. */
int serve_signals_setup(sigset_t *set);
/* Wait in the thread that called serve_signals_setup for SIGTERM or SIGINT; returns which. */
int serve_signals_wait(const sigset_t *set);

#endif
