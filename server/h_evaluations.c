/* POST /v1/evaluations: a user-supplied parameter vector (PyTorch state_dict layout, length
 * param_count) on a dataset, architecture and loss: its risk, gradient norm and verdict with
 * evidence, stored as a finished run with origin `imported` so it can be a witness against (or
 * a spurious minimum beside) the trained runs of the same objective. The flow is the one of
 * POST /v1/constructions (h_constructions.c, imported.h). */
#include "handlers.h"

int h_evaluations_create(struct request *req, struct reply *rep)
{
    return h_imported_create(req, rep, 0);
}
