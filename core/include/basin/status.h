/* Status codes shared by every libbasin function.
 *
 * Every fallible core function returns an int: 0 (BASIN_OK) on success or one of the negative
 * BASIN_E* codes below; outputs go through pointer arguments. basin_strerror() names a code. */
#ifndef BASIN_STATUS_H
#define BASIN_STATUS_H

enum {
    BASIN_OK = 0,
    BASIN_ENOMEM = -1,     /* an allocation failed */
    BASIN_EINVAL = -2,     /* an argument or spec is invalid */
    BASIN_ERANGE = -3,     /* a size overflows or exceeds a hard limit */
    BASIN_EDIVERGED = -4,  /* NaN/Inf or exploding values during training */
    BASIN_ENOTSUP = -5,    /* valid request, not supported for this configuration */
    BASIN_EPARSE = -6,     /* malformed input text (CSV) */
    BASIN_ENOCONV = -7,    /* an iterative method did not converge */
    BASIN_ECANCELLED = -8, /* stopped by the caller's cancel hook */
    BASIN_ENUMERIC = -9    /* a LAPACK routine reported failure */
};

/* A static, human-readable name for a status code (never NULL). */
const char *basin_strerror(int rc);

#endif
