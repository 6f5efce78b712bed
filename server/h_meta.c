/* Meta endpoints (skeleton: filled in shortly). */
#include "handlers.h"

int h_healthz(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}

int h_readyz(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}

int h_metrics(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}

int h_limits(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}

int h_openapi(struct request *req, struct reply *rep)
{
    (void)req;
    return reply_problem(rep, 501, NULL, "not implemented yet", NULL, 0);
}
