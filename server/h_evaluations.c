/* POST /v1/evaluations: risk, gradient and verdict of a user-supplied parameter vector, stored
 * as an imported run. (Skeleton: filled in shortly.) */
#include "handlers.h"

int h_evaluations_create(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}
