/* Minimum-cost perfect assignment (lap.h), the matching step of weight-matching alignment.
 *
 * DESIGN
 * Method: the shortest augmenting path algorithm with dual potentials (Kuhn 1955 and Munkres
 * 1957 in the O(n³) form of Tomizawa 1971 / Jonker & Volgenant 1987, "A shortest augmenting
 * path algorithm for dense and sparse linear assignment problems", Computing 38). Rows are
 * added one at a time; for each new row a Dijkstra-like search over the columns, run on the
 * reduced costs c_ij − u_i − v_j, finds the cheapest alternating path to a free column, and the
 * matching is augmented along it. Jonker–Volgenant's initialisation heuristics (column
 * reduction, reduction transfer, augmenting row reduction) only speed the start up; they are
 * left out to keep the code short, so this is O(n³) in every case.
 * Invariants, kept after every row is added (1-based internally, column 0 is the virtual start):
 * - dual feasibility: c_ij − u_i − v_j ≥ 0 for every row i added so far and every column j;
 * - complementary slackness: c_ij − u_i − v_j = 0 on every matched pair (i, j).
 * After the last row the matching is perfect, and by LP duality (the assignment polytope is
 * integral) Σ c_iσ(i) = Σ u_i + Σ v_j is the minimum. With floating-point costs the result is
 * optimal up to rounding of the potentials (a few ulps of the largest |cost| per row added).
 * Ties: the search always takes the lowest-numbered column among equal reduced costs, so the
 * answer depends only on the matrix. */
#include "basin/lap.h"

#include <math.h>
#include <stdint.h>

#include "basin/alloc.h"
#include "basin/status.h"

int basin_lap_solve(size_t n, const double *cost, size_t *row_to_col, double *total)
{
    double *pot = NULL; /* u[0..n], v[0..n], minv[0..n] */
    size_t *idx = NULL; /* match[0..n] (row of column j, 0 = free), way[0..n], used[0..n] */
    int rc = BASIN_OK;
    if ((n > 0 && (!cost || !row_to_col)) || n >= SIZE_MAX / 3) {
        rc = n >= SIZE_MAX / 3 ? BASIN_ERANGE : BASIN_EINVAL;
        goto done;
    }
    size_t nn;
    if (basin_mul_size(n, n, &nn) != BASIN_OK) {
        rc = BASIN_ERANGE;
        goto done;
    }
    for (size_t k = 0; k < nn; k++)
        if (!isfinite(cost[k])) {
            rc = BASIN_EINVAL;
            goto done;
        }
    size_t m = n + 1;
    pot = basin_alloc_array(3 * m, sizeof *pot);
    idx = basin_alloc_array(3 * m, sizeof *idx);
    if (!pot || !idx) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    double *u = pot, *v = pot + m, *minv = pot + 2 * m;
    size_t *match = idx, *way = idx + m, *used = idx + 2 * m;
    for (size_t j = 0; j < m; j++) {
        u[j] = v[j] = 0.0;
        match[j] = way[j] = 0;
    }
    for (size_t i = 1; i <= n; i++) {
        match[0] = i;
        size_t j0 = 0;
        for (size_t j = 0; j < m; j++) {
            minv[j] = INFINITY;
            used[j] = 0;
        }
        /* Grow the shortest-path tree from row i until it reaches a free column. */
        do {
            used[j0] = 1;
            size_t i0 = match[j0], j1 = 0;
            double delta = INFINITY;
            const double *row = cost + (i0 - 1) * n;
            for (size_t j = 1; j <= n; j++) {
                if (used[j])
                    continue;
                double cur = row[j - 1] - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta || j1 == 0) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (size_t j = 0; j < m; j++) {
                if (used[j]) {
                    u[match[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (match[j0] != 0);
        /* Flip the alternating path back to the root. */
        do {
            size_t j1 = way[j0];
            match[j0] = match[j1];
            j0 = j1;
        } while (j0 != 0);
    }
    double sum = 0.0;
    for (size_t j = 1; j <= n; j++)
        row_to_col[match[j] - 1] = j - 1;
    for (size_t i = 0; i < n; i++)
        sum += cost[i * n + row_to_col[i]];
    if (total)
        *total = sum;
done:
    basin_free(pot);
    basin_free(idx);
    return rc;
}
