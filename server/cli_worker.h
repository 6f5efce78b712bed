/* `basinlab worker`: a training process without HTTP for a store shared by many processes
 * (PostgreSQL). It opens (and migrates) the store, requeues runs whose lease expired, starts a
 * lease reaper and a pool of training threads that claim runs (SELECT … FOR UPDATE SKIP LOCKED),
 * heartbeat while training and write each result in a short fenced transaction, prints one line
 * "basinlab worker ready (store URL, N threads, lease S s)" on stdout, and runs until SIGTERM or
 * SIGINT, when it hands its unfinished runs back to the queue and exits 0. Settings are those of
 * `basinlab serve` (config.h: --store/BASINLAB_STORE, --workers, --lease-timeout,
 * --max-run-seconds); the HTTP ones are ignored. */
#ifndef BASINLAB_CLI_WORKER_H
#define BASINLAB_CLI_WORKER_H

#include <stdio.h>

/* argv[0] is "worker". Returns the exit status: 0 after a clean drain, 1 when the store cannot
 * be opened, 2 for a usage error (including a store that is not shared). */
int cli_worker_main(int argc, char **argv);

void cli_worker_usage(FILE *out);

#endif
