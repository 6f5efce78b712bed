/* `basinlab train`: the offline CLI that runs every restart of an experiment spec on local
 * threads and prints the results as JSON (no server, no store). */
#ifndef BASINLAB_CLI_TRAIN_H
#define BASINLAB_CLI_TRAIN_H

#include <stdio.h>

/* Exit statuses of the sub-commands. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_INTERNAL = 1, CLI_EXIT_USAGE = 2 };

/* argv[0] is "train". Returns the process exit status: 0 on success, 2 for a usage error or an
 * invalid spec (every error printed on stderr as "<pointer>: <message>", nothing on stdout),
 * 1 for an internal failure (out of memory, I/O error writing the output). */
int cli_train_main(int argc, char **argv);

void cli_train_usage(FILE *out);

#endif
