/* POST /v1/constructions: the paper's constructions (construct.h) built on a stored dataset,
 * certified and stored as a finished run. (Skeleton: filled in shortly.) */
#include "handlers.h"

int h_constructions_create(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}
