/* `basinlab token`: the API tokens of `basinlab serve --auth tokens` (auth.h), managed offline
 * on the store (the server may be running: SQLite's WAL lets both use the file).
 *   basinlab token create --scope read|write [--name N] [--db PATH]
 *       prints the new token on stdout, once (only its hash is stored); id and scope on stderr
 *   basinlab token list [--db PATH]      id, scope, state, creation time and name of each token
 *   basinlab token revoke ID [--db PATH] the server refuses the token from its next request on
 * PATH defaults to $BASINLAB_DB, else ./basinlab.db (the same as `basinlab serve`). */
#ifndef BASINLAB_CLI_TOKEN_H
#define BASINLAB_CLI_TOKEN_H

#include <stdio.h>

/* argv[0] is "token". Returns the exit status (cli_train.h): 0, 1 for a failure of the store
 * (or an unknown id to revoke), 2 for a usage error. */
int cli_token_main(int argc, char **argv);

void cli_token_usage(FILE *out);

#endif
