/* `basinlab serve`: the REST service. Opens (and migrates) the store, puts runs a previous
 * process left `running` back in the queue, starts the worker pool and the HTTP server, prints
 * one line "basinlab listening on http://HOST:PORT (db PATH, N workers)" on stdout, and serves
 * until SIGTERM or SIGINT, then drains: submissions are refused with 503 + Retry-After while
 * reads are still answered, the workers hand their runs in flight back to the queue, the HTTP
 * server stops accepting and finishes what it has, and the process exits 0 (within
 * SERVE_DRAIN_TOTAL_MS). Settings: config.h. */
#ifndef BASINLAB_SERVE_H
#define BASINLAB_SERVE_H

#include <stdio.h>

/* The whole shutdown budget, and its part for the workers. */
#define SERVE_DRAIN_TOTAL_MS 9000u
#define SERVE_DRAIN_WORKERS_MS 6000u

/* argv[0] is "serve". Returns the process exit status: 0 after a clean drain, 1 when the store
 * or the server cannot start (a database newer than this binary, a port in use, ...), 2 for a
 * usage error. */
int serve_main(int argc, char **argv);

void serve_usage(FILE *out);

#endif
