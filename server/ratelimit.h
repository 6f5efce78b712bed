/* A per-client token-bucket rate limit for `basinlab serve --rate-limit RPS[:BURST]`: every
 * client (its address; IPv6 by /64) may send BURST requests at once and RPS per second on
 * average; beyond that the pipeline answers 429 with Retry-After (ratelimit_hook, run before
 * routing by http.c). The bucket map has a fixed capacity chosen at creation: it never grows
 * with the number of clients (the idlest client is evicted instead), and the limiter is safe to
 * call from every connection thread at once. The clock is a parameter (ratelimit_take_at) so
 * tests can drive it. */
#ifndef BASINLAB_RATELIMIT_H
#define BASINLAB_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "router.h"

enum {
    RATELIMIT_KEY_SIZE = 64,               /* a textual IPv6 address, "/64" and NUL fit */
    RATELIMIT_DEFAULT_MAX_CLIENTS = 16384, /* buckets kept (about 1.5 MiB) */
    RATELIMIT_MAX_BURST = 1000000
};
#define RATELIMIT_MIN_RATE 0.001 /* requests per second */
#define RATELIMIT_MAX_RATE 1e6

struct ratelimit;

struct ratelimit_stats {
    size_t clients;        /* buckets in use (≤ max_clients) */
    uint64_t allowed;      /* requests let through */
    uint64_t limited;      /* requests answered 429 */
    uint64_t evicted;      /* buckets dropped to make room */
    uint64_t evicted_busy; /* of those, buckets that were not yet full again (the client gets a
                              fresh burst if it returns: raise max_clients if this grows) */
};

/* A limiter of `rate_per_s` requests per second with bursts of `burst`, keeping at most
 * max_clients buckets (0 → RATELIMIT_DEFAULT_MAX_CLIENTS). BASIN_EINVAL when rate_per_s is not
 * in [RATELIMIT_MIN_RATE, RATELIMIT_MAX_RATE] or burst not in [1, RATELIMIT_MAX_BURST];
 * BASIN_ENOMEM. Every allocation happens here, none per request. */
int ratelimit_create(double rate_per_s, unsigned burst, size_t max_clients, struct ratelimit **out);
/* Accepts NULL. No call may be in flight. */
void ratelimit_free(struct ratelimit *rl);

/* Take one token from the bucket of `client` (an address as text; ratelimit_client_key
 * normalises it) at monotonic time now_ns (never decreasing between calls; an earlier time is
 * taken as now). *allowed = 1 when a token was there; else 0 and *retry_after_s = whole seconds
 * (≥ 1) until the bucket holds a token again. BASIN_EINVAL for NULL arguments. */
int ratelimit_take_at(struct ratelimit *rl, const char *client, uint64_t now_ns, int *allowed,
                      unsigned *retry_after_s);
/* ratelimit_take_at with CLOCK_MONOTONIC. */
int ratelimit_take(struct ratelimit *rl, const char *client, int *allowed, unsigned *retry_after_s);

/* A snapshot of the counters. */
void ratelimit_get_stats(struct ratelimit *rl, struct ratelimit_stats *out);

/* The bucket key of a client address: IPv4 as is, an IPv4-mapped IPv6 address as its IPv4,
 * other IPv6 addresses as their /64 prefix ("2001:db8:1:2::/64"), since one host usually holds
 * a whole /64 and could otherwise rotate through fresh buckets. Text that is no address (""
 * when the transport could not tell) is used as is, truncated to fit. */
void ratelimit_client_key(const char *client, char out[RATELIMIT_KEY_SIZE]);

/* Parse "RPS[:BURST]" (RPS a positive decimal number, BURST a whole number; without it the
 * burst is RPS rounded up, at least 1). BASIN_EINVAL for anything else or out of range. */
int ratelimit_parse(const char *text, double *rate_per_s, unsigned *burst);

/* The pipeline hook (router.h, struct pipeline_hooks.admit): ctx is the struct ratelimit. Lets
 * the request through, or answers 429 problem+json with Retry-After. */
int ratelimit_hook(void *ctx, const struct request *req, struct reply *rep);

#endif
