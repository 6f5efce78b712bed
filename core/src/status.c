/* Names for the BASIN_* status codes of status.h. */
#include "basin/status.h"

const char *basin_strerror(int rc)
{
    switch (rc) {
    case BASIN_OK:
        return "ok";
    case BASIN_ENOMEM:
        return "out of memory";
    case BASIN_EINVAL:
        return "invalid argument";
    case BASIN_ERANGE:
        return "size out of range";
    case BASIN_EDIVERGED:
        return "diverged (non-finite or exploding values)";
    case BASIN_ENOTSUP:
        return "not supported for this configuration";
    case BASIN_EPARSE:
        return "malformed input";
    case BASIN_ENOCONV:
        return "iteration did not converge";
    case BASIN_ECANCELLED:
        return "cancelled";
    case BASIN_ENUMERIC:
        return "numerical library failure";
    default:
        return "unknown error";
    }
}
