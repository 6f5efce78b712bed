/* Handlers of /v1/runs (skeleton: filled in shortly). */
#include "handlers.h"

int h_runs_get(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}

int h_runs_trajectory(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}

int h_runs_params(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}
