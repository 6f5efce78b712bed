/* The linear assignment problem: a minimum-cost perfect matching of n rows to n columns.
 *
 * Used by basin_align (basins.h) to match the hidden units of one end point to those of
 * another, and available to anything else in the core that needs an optimal one-to-one
 * matching. Pure computation: no state between calls. */
#ifndef BASIN_LAP_H
#define BASIN_LAP_H

#include <stddef.h>

/* Find a permutation σ minimising Σ_i cost[i·n + σ(i)] over the n×n row-major cost matrix
 * (every entry finite; to maximise a similarity pass its negation). On success row_to_col[i] =
 * σ(i) and, when total != NULL, *total = Σ_i cost[i·n + σ(i)]. Among several optimal
 * permutations the one returned is a deterministic function of the matrix. n == 0 is valid
 * (empty matching, total 0).
 * Returns BASIN_OK, BASIN_EINVAL (NULL pointers, a non-finite cost), BASIN_ERANGE (n too large
 * to index) or BASIN_ENOMEM; on failure row_to_col and *total are unspecified. O(n³) time,
 * O(n) extra memory. */
int basin_lap_solve(size_t n, const double *cost, size_t *row_to_col, double *total);

#endif
