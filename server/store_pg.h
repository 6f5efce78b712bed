/* What the rest of the server needs to know about PostgreSQL store locations (store_pg.c): is
 * a location PostgreSQL (a store shared by many processes, where a process must not requeue
 * every running run at start-up, only those whose lease expired), and the location with its
 * password hidden, for logs and the listening line. */
#ifndef BASINLAB_STORE_PG_H
#define BASINLAB_STORE_PG_H

#include <stddef.h>

/* 1 for "postgres://..." and "postgresql://...", else 0. */
int store_location_is_postgres(const char *location);

/* location with the password of a postgres:// URL replaced by "***" (other locations are
 * copied); truncated to cap bytes. */
void store_location_redact(const char *location, char *out, size_t cap);

#endif
