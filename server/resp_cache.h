/* A bounded in-process cache of rendered responses (body + ETag) keyed by a short id, each entry
 * tagged with the database change counter (store_data_version) seen before it was rendered. It
 * makes GET /v1/runs/{id} one counter read, one hash lookup and one memcpy (h_runs.c).
 *
 * Validity: resp_cache_get answers a hit only when the entry's version equals the version the
 * caller just read; the caller must read the version BEFORE rendering what it puts (see the
 * DESIGN block in resp_cache.c). Thread-safe; every function accepts a NULL cache (a disabled
 * cache: get always misses, put does nothing). */
#ifndef BASINLAB_RESP_CACHE_H
#define BASINLAB_RESP_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define RESP_CACHE_KEY_SIZE 32  /* longest key + NUL */
#define RESP_CACHE_ETAG_SIZE 24 /* "\"" + 16 hex + "\"" + NUL fits */
#define RESP_CACHE_SHARDS 16

struct resp_cache;

/* A cache holding at most max_bytes of entries (bodies plus per-entry overhead). max_bytes = 0
 * gives *out = NULL (disabled) and BASIN_OK. BASIN_ENOMEM on allocation failure. */
int resp_cache_create(size_t max_bytes, struct resp_cache **out);
void resp_cache_destroy(struct resp_cache *c);

/* On a hit (an entry for key rendered at exactly `version`): *body = a basin_malloc'd copy of the
 * body (the caller owns it; body NULL: no copy, for a 304), *len its length, etag
 * (RESP_CACHE_ETAG_SIZE bytes) the quoted ETag, and 1 is returned. 0 on a miss (or when the copy
 * cannot be allocated); a stale entry met on the way is dropped. */
int resp_cache_get(struct resp_cache *c, const char *key, uint64_t version, char **body,
                   size_t *len, char etag[RESP_CACHE_ETAG_SIZE]);

/* Store a copy of body under key, rendered after reading `version`. An existing entry with a
 * newer version is kept (a slow renderer must not replace newer data); least recently used
 * entries are evicted to stay within the byte bound; a body too large for its shard is not
 * cached. Keys longer than RESP_CACHE_KEY_SIZE - 1 are ignored. */
void resp_cache_put(struct resp_cache *c, const char *key, uint64_t version, const char *body,
                    size_t len, const char *etag);

/* Counters for tests and metrics (a consistent snapshot per shard, summed). */
struct resp_cache_stats {
    size_t entries;
    size_t bytes; /* accounted bytes, always <= max_bytes */
    size_t max_bytes;
    uint64_t hits, misses, evictions;
};
void resp_cache_stats(struct resp_cache *c, struct resp_cache_stats *out);

#endif
