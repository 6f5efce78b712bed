/* The per-client token-bucket rate limit of `basinlab serve` (ratelimit.h).
 *
 * DESIGN
 * - Method: one token bucket per client key (Turner's token bucket, as in RFC 2697's committed
 *   burst): a bucket holds at most `burst` tokens and gains `rate` tokens per second; a request
 *   takes one token or, when there is none, is refused with Retry-After = the whole seconds until
 *   one token has accrued, ceil((1 − tokens) / rate), at least 1. Refill is computed lazily from
 *   the time of the bucket's last request, so idle buckets cost nothing. Invariant: 0 ≤ tokens ≤
 *   burst for every bucket, and last_ns never decreases (a caller whose clock reading is older
 *   than the bucket's, as happens between threads, is treated as arriving at last_ns).
 * - Bounded map: max_clients buckets are allocated once, at creation. They live in a hash table
 *   (chains through indices, 2·max_clients heads, keys hashed with a per-limiter random seed so
 *   a client cannot aim its addresses at one chain) and on an LRU list. A new client takes a
 *   free bucket or, when all are in use, the least recently seen client's: the idlest one. Its
 *   bucket is usually full again by then (the client has been silent for ≥ burst/rate seconds),
 *   and dropping a full bucket loses nothing, because a fresh bucket is a full one. When it was
 *   not full, more than max_clients clients were active within that time; the client then gets a
 *   fresh burst if it comes back. That is counted (evicted_busy) instead of hidden: memory
 *   stays bounded whatever the number of addresses, at the price of a looser limit under a
 *   flood of distinct addresses, which a per-address limit cannot stop anyway.
 * - Keys: the client's address; IPv6 addresses by their /64 (ratelimit_client_key). Behind a
 *   reverse proxy every request shares the proxy's address: rate-limit there instead.
 *   X-Forwarded-For is not trusted, since any client can send it.
 * - Threads: one mutex guards the table, the list and the counters. The critical section is a
 *   hash lookup and a few arithmetic operations, far shorter than the rest of a request, so
 *   a single lock does not become the bottleneck at the rates a limit is meant for. */
#include "ratelimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "reply.h"

#define NONE UINT32_MAX
enum { RATELIMIT_MAX_CLIENTS = 1 << 24 };

struct bucket {
    char key[RATELIMIT_KEY_SIZE];
    double tokens;
    uint64_t last_ns;
    uint32_t chain_next; /* next bucket in the same hash chain */
    uint32_t lru_prev;   /* towards the most recently seen */
    uint32_t lru_next;   /* towards the least recently seen */
};

struct ratelimit {
    double rate_per_ns;
    double rate_per_s;
    double burst;
    uint32_t capacity;
    uint32_t used;
    uint32_t mask; /* heads has mask + 1 entries */
    uint32_t *heads;
    struct bucket *buckets;
    uint32_t lru_head, lru_tail;
    uint64_t seed;
    pthread_mutex_t mu;
    struct ratelimit_stats stats;
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static uint64_t random_seed(const void *salt)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        /* no entropy yet (early boot): a weaker seed still spreads ordinary keys */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)salt;
    }
    return seed;
}

static uint64_t key_hash(const struct ratelimit *rl, const char *key)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325) ^ rl->seed;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= UINT64_C(0x100000001b3);
    }
    return mix64(h);
}

int ratelimit_create(double rate_per_s, unsigned burst, size_t max_clients, struct ratelimit **out)
{
    int rc = BASIN_OK;
    struct ratelimit *rl = NULL;
    size_t n_heads = 1;
    *out = NULL;
    if (max_clients == 0)
        max_clients = RATELIMIT_DEFAULT_MAX_CLIENTS;
    if (!(rate_per_s >= RATELIMIT_MIN_RATE && rate_per_s <= RATELIMIT_MAX_RATE) || burst < 1 ||
        burst > RATELIMIT_MAX_BURST || max_clients > RATELIMIT_MAX_CLIENTS) {
        rc = BASIN_EINVAL;
        goto done;
    }
    while (n_heads < 2 * max_clients)
        n_heads *= 2;
    rl = basin_calloc(1, sizeof *rl);
    if (rl == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    rl->heads = basin_alloc_array(n_heads, sizeof *rl->heads);
    rl->buckets = basin_alloc_array(max_clients, sizeof *rl->buckets);
    if (rl->heads == NULL || rl->buckets == NULL || pthread_mutex_init(&rl->mu, NULL) != 0) {
        basin_free(rl->heads);
        basin_free(rl->buckets);
        basin_free(rl);
        rl = NULL;
        rc = BASIN_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n_heads; i++)
        rl->heads[i] = NONE;
    rl->rate_per_s = rate_per_s;
    rl->rate_per_ns = rate_per_s * 1e-9;
    rl->burst = (double)burst;
    rl->capacity = (uint32_t)max_clients;
    rl->mask = (uint32_t)(n_heads - 1);
    rl->lru_head = rl->lru_tail = NONE;
    rl->seed = random_seed(rl);
    *out = rl;
done:
    return rc;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (rl == NULL)
        return;
    pthread_mutex_destroy(&rl->mu);
    basin_free(rl->heads);
    basin_free(rl->buckets);
    basin_free(rl);
}

/* ---- the LRU list and the chains (all under rl->mu) ---- */

static void lru_unlink(struct ratelimit *rl, uint32_t i)
{
    struct bucket *b = &rl->buckets[i];
    if (b->lru_prev != NONE)
        rl->buckets[b->lru_prev].lru_next = b->lru_next;
    else
        rl->lru_head = b->lru_next;
    if (b->lru_next != NONE)
        rl->buckets[b->lru_next].lru_prev = b->lru_prev;
    else
        rl->lru_tail = b->lru_prev;
}

static void lru_push_front(struct ratelimit *rl, uint32_t i)
{
    struct bucket *b = &rl->buckets[i];
    b->lru_prev = NONE;
    b->lru_next = rl->lru_head;
    if (rl->lru_head != NONE)
        rl->buckets[rl->lru_head].lru_prev = i;
    rl->lru_head = i;
    if (rl->lru_tail == NONE)
        rl->lru_tail = i;
}

static void chain_remove(struct ratelimit *rl, uint32_t i)
{
    uint32_t *link = &rl->heads[key_hash(rl, rl->buckets[i].key) & rl->mask];
    while (*link != NONE && *link != i)
        link = &rl->buckets[*link].chain_next;
    if (*link == i)
        *link = rl->buckets[i].chain_next;
}

/* Tokens of bucket b at time now_ns (not stored). */
static double refilled(const struct ratelimit *rl, const struct bucket *b, uint64_t now_ns)
{
    double t = b->tokens;
    if (now_ns > b->last_ns)
        t += (double)(now_ns - b->last_ns) * rl->rate_per_ns;
    return t < rl->burst ? t : rl->burst;
}

/* The bucket of key, created (full) when the client is new; moved to the LRU front. */
static uint32_t bucket_for(struct ratelimit *rl, const char *key, uint64_t now_ns)
{
    uint32_t h = (uint32_t)(key_hash(rl, key) & rl->mask);
    uint32_t i = rl->heads[h];
    while (i != NONE && strcmp(rl->buckets[i].key, key) != 0)
        i = rl->buckets[i].chain_next;
    if (i != NONE) {
        lru_unlink(rl, i);
        lru_push_front(rl, i);
        return i;
    }
    if (rl->used < rl->capacity) {
        i = rl->used++;
    } else {
        i = rl->lru_tail;
        rl->stats.evicted++;
        if (refilled(rl, &rl->buckets[i], now_ns) < rl->burst)
            rl->stats.evicted_busy++;
        lru_unlink(rl, i);
        chain_remove(rl, i);
    }
    struct bucket *b = &rl->buckets[i];
    memcpy(b->key, key, sizeof b->key);
    b->tokens = rl->burst;
    b->last_ns = now_ns;
    b->chain_next = rl->heads[h];
    rl->heads[h] = i;
    lru_push_front(rl, i);
    return i;
}

int ratelimit_take_at(struct ratelimit *rl, const char *client, uint64_t now_ns, int *allowed,
                      unsigned *retry_after_s)
{
    char key[RATELIMIT_KEY_SIZE];
    if (rl == NULL || client == NULL || allowed == NULL || retry_after_s == NULL)
        return BASIN_EINVAL;
    ratelimit_client_key(client, key);
    pthread_mutex_lock(&rl->mu);
    struct bucket *b = &rl->buckets[bucket_for(rl, key, now_ns)];
    b->tokens = refilled(rl, b, now_ns);
    if (now_ns > b->last_ns)
        b->last_ns = now_ns;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        *allowed = 1;
        *retry_after_s = 0;
        rl->stats.allowed++;
    } else {
        /* a hair below a whole second must not round up to the next one */
        double wait_s = ceil((1.0 - b->tokens) / rl->rate_per_s - 1e-9);
        *allowed = 0;
        *retry_after_s = wait_s < 1.0 ? 1u : wait_s > 86400.0 ? 86400u : (unsigned)wait_s;
        rl->stats.limited++;
    }
    pthread_mutex_unlock(&rl->mu);
    return BASIN_OK;
}

int ratelimit_take(struct ratelimit *rl, const char *client, int *allowed, unsigned *retry_after_s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now_ns = (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
    return ratelimit_take_at(rl, client, now_ns, allowed, retry_after_s);
}

void ratelimit_get_stats(struct ratelimit *rl, struct ratelimit_stats *out)
{
    pthread_mutex_lock(&rl->mu);
    *out = rl->stats;
    out->clients = rl->used;
    pthread_mutex_unlock(&rl->mu);
}

void ratelimit_client_key(const char *client, char out[RATELIMIT_KEY_SIZE])
{
    struct in_addr v4;
    struct in6_addr v6;
    char text[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, client, &v4) == 1) {
        inet_ntop(AF_INET, &v4, out, RATELIMIT_KEY_SIZE);
    } else if (inet_pton(AF_INET6, client, &v6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&v6)) {
            memcpy(&v4, &v6.s6_addr[12], 4);
            inet_ntop(AF_INET, &v4, out, RATELIMIT_KEY_SIZE);
            return;
        }
        memset(&v6.s6_addr[8], 0, 8);
        inet_ntop(AF_INET6, &v6, text, sizeof text);
        snprintf(out, RATELIMIT_KEY_SIZE, "%s/64", text);
    } else {
        snprintf(out, RATELIMIT_KEY_SIZE, "%s", client);
    }
}

int ratelimit_parse(const char *text, double *rate_per_s, unsigned *burst)
{
    char *end = NULL;
    if (text == NULL || !((text[0] >= '0' && text[0] <= '9') || text[0] == '.'))
        return BASIN_EINVAL;
    errno = 0;
    double rate = strtod(text, &end);
    if (errno != 0 || end == text || !(rate >= RATELIMIT_MIN_RATE && rate <= RATELIMIT_MAX_RATE))
        return BASIN_EINVAL;
    double b = ceil(rate);
    if (*end == ':') {
        const char *s = end + 1;
        if (*s < '0' || *s > '9')
            return BASIN_EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno != 0 || v < 1 || v > RATELIMIT_MAX_BURST)
            return BASIN_EINVAL;
        b = (double)v;
    }
    if (*end != '\0' || b > RATELIMIT_MAX_BURST)
        return BASIN_EINVAL;
    *rate_per_s = rate;
    *burst = b < 1.0 ? 1u : (unsigned)b;
    return BASIN_OK;
}

int ratelimit_hook(void *ctx, const struct request *req, struct reply *rep)
{
    struct ratelimit *rl = ctx;
    int allowed = 0;
    unsigned retry_s = 0;
    int rc = ratelimit_take(rl, req->client != NULL ? req->client : "", &allowed, &retry_s);
    if (rc != BASIN_OK || allowed)
        return rc;
    rc = reply_retry_after(rep, retry_s);
    if (rc == BASIN_OK)
        rc = reply_problemf(rep, 429, NULL,
                            "rate limit: at most %.0f requests at once and %g per second from "
                            "one client; retry in %u s",
                            rl->burst, rl->rate_per_s, retry_s);
    return rc == BASIN_OK ? BASIN_EINVAL : rc;
}
