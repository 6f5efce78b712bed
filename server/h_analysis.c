/* The analysis endpoints: basins of an experiment, comparison of two runs, the fitted function of
 * one run, and the run view with its spurious flag. (Skeleton: filled in shortly.) */
#include "handlers.h"

int h_runs_get_spurious(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}

int h_experiments_basins(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}

int h_experiments_basin_members(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}

int h_compare(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}

int h_runs_function(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}
