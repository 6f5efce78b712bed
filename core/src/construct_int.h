/* Private helpers shared by the construct_*.c files (construct.h is the public side): allocating
 * a basin_construction, building its net once the layer specs are filled in, and writing a
 * report message. */
#ifndef BASIN_CONSTRUCT_INT_H
#define BASIN_CONSTRUCT_INT_H

#include <stddef.h>

#include "basin/construct.h"
#include "basin/net.h"

/* A construction with n_layers zeroed layer specs (arch.layers points at them), no θ yet. */
int basin__construction_new(size_t n_layers, basin_construction **out);

/* Build the net of c->arch (input shape and layers filled in by the caller) and allocate a zeroed
 * θ of its parameter count. *net (may be NULL) receives the net, owned by the caller. On failure
 * msg (msg_len bytes) gets the net's complaint. */
int basin__construction_finish(basin_construction *c, basin_net **net, char *msg, size_t msg_len);

/* snprintf into a report message; returns rc so callers can write `return say(...)`. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
int basin__construct_say(char *msg, size_t msg_len, int rc, const char *fmt, ...);

#endif
