/* The OpenAPI document (api/openapi.yaml) compiled into the binary by cmake/embed_file.cmake, so
 * GET /openapi.yaml serves exactly the contract the server was built with. */
#ifndef BASINLAB_OPENAPI_EMBED_H
#define BASINLAB_OPENAPI_EMBED_H

#include <stddef.h>

extern const unsigned char basinlab_openapi_yaml[]; /* the file's bytes, then a NUL */
extern const size_t basinlab_openapi_yaml_len;      /* bytes, without the NUL */

#endif
