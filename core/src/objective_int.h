/* Private view into objectives made by basin_objective_empirical, for code in core/ that
 * evaluates the same objective by another route (the batched trainer's lane kernel) and must
 * reproduce it exactly: the net, dataset, loss and l2 weight it was created with. */
#ifndef BASIN_OBJECTIVE_INT_H
#define BASIN_OBJECTIVE_INT_H

#include "basin/objective.h"

/* BASIN_OK and the parts (borrowed) when obj was made by basin_objective_empirical; BASIN_EINVAL
 * for any other objective. */
int basin__objective_empirical_parts(const basin_objective *obj, const basin_net **net,
                                     const basin_dataset **ds, basin_loss *loss, double *l2);

#endif
