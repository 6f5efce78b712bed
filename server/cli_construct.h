/* `basinlab construct` and `basinlab certify`: the paper's constructions and the verdict of a
 * given parameter vector, offline (no server, no store), printed as one JSON document.
 *
 *   basinlab construct --spec FILE|-
 *       FILE is a POST /v1/constructions body with the dataset and architecture inline; prints
 *       {"kind", "architecture", "params", "construction", "risk", "grad_norm", "param_norm",
 *        "verdict"}.
 *   basinlab certify --spec FILE|- --params FILE [--restart N]
 *       the spec is an experiment spec (its dataset, architecture, loss, l2 and certify are used;
 *       training settings are ignored); the params file is a JSON array of param_count numbers or
 *       the output of `basinlab train --params` (run N = --restart N; the only run when there is
 *       one). Prints {"kind": "evaluation", "architecture", "risk", "grad_norm", "param_norm",
 *       "verdict"} ("params" too when certify.polish moved the point).
 *
 * Exit status (CLI_EXIT_* of cli_train.h): 0 success; 2 usage errors and invalid input, every
 * error on stderr as "<pointer>: <message>" (pointers into the spec; "params FILE: <pointer>:"
 * for the params file), stdout untouched; 1 internal failures (memory, a construction failing
 * its own verification, I/O writing the output). */
#ifndef BASINLAB_CLI_CONSTRUCT_H
#define BASINLAB_CLI_CONSTRUCT_H

#include <stdio.h>

/* argv[0] is "construct" / "certify". Return the process exit status. */
int cli_construct_main(int argc, char **argv);
int cli_certify_main(int argc, char **argv);

void cli_construct_usage(FILE *out);

#endif
