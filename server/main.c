/* basinlab: entry point. Dispatches to the sub-commands: `train` (offline CLI, cli_train.c),
 * `construct` and `certify` (offline constructions and verdicts, cli_construct.c), `serve` (the
 * REST service, serve.c), `worker` (training for a shared store, cli_worker.c), `token` (API
 * tokens, cli_token.c), `version` and `help`. */
#include <stdio.h>
#include <string.h>

#include "cli_construct.h"
#include "cli_token.h"
#include "cli_train.h"
#include "cli_worker.h"
#include "serve.h"

static void usage(FILE *out)
{
    fputs("usage: basinlab <command> [options]\n"
          "commands:\n"
          "  serve     run the REST service (see basinlab serve --help)\n"
          "  worker    train queued runs of a shared PostgreSQL store, without HTTP\n"
          "  train     run an experiment spec offline and print the results as JSON\n"
          "  construct build one of the paper's constructions offline and certify it\n"
          "  certify   print the verdict of a parameter vector (offline)\n"
          "  token     create, list or revoke API tokens (basinlab serve --auth tokens)\n"
          "  version   print the version\n"
          "  help      show this help\n\n",
          out);
    cli_train_usage(out);
    cli_construct_usage(out);
    cli_token_usage(out);
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
    if (strcmp(cmd, "construct") == 0)
        return cli_construct_main(argc - 1, argv + 1);
    if (strcmp(cmd, "certify") == 0)
        return cli_certify_main(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return serve_main(argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0)
        return cli_token_main(argc - 1, argv + 1);
    if (strcmp(cmd, "worker") == 0)
        return cli_worker_main(argc - 1, argv + 1);
    fprintf(stderr, "basinlab: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
