/* basinlab: entry point. Dispatches to the sub-commands: `train` (offline CLI, cli_train.c),
 * `version` and `help`; the server's `serve` joins this table when it exists. */
#include <stdio.h>
#include <string.h>

#include "cli_train.h"

static void usage(FILE *out)
{
    fputs("usage: basinlab <command> [options]\n"
          "commands:\n"
          "  train     run an experiment spec offline and print the results as JSON\n"
          "  version   print the version\n"
          "  help      show this help\n\n",
          out);
    cli_train_usage(out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("basinlab %s\n", BASINLAB_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "train") == 0)
        return cli_train_main(argc - 1, argv + 1);
    fprintf(stderr, "basinlab: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
