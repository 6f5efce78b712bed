/* The rendered-response cache of GET /v1/runs/{id} (resp_cache.h).
 *
 * DESIGN
 * Shape. RESP_CACHE_SHARDS independent shards, chosen by the FNV-1a hash of the key; each is a
 * chained hash table plus a doubly linked LRU list under its own mutex, and owns max_bytes /
 * RESP_CACHE_SHARDS of the byte budget. An entry is one allocation (header + body); its cost is
 * sizeof(header) + body length, and a shard evicts from the LRU tail until its cost fits, so the
 * whole cache never holds more than max_bytes of entries. Critical sections are a lookup and a
 * memcpy of one body (~14 KB for a certified run), so with 16 shards request threads rarely wait.
 *
 * Validity (why a cached body is never stale). The store keeps a database-wide change counter v
 * that every transaction writing a table the run view depends on bumps inside the same
 * transaction (migrations/sqlite/0005_data_version.sql, migrations/postgres/0004_*.sql). A request:
 *   1. reads v (committed state);
 *   2. on a hit for (id, v) answers the cached body;
 *   3. else renders from fresh reads, all of which start after step 1 and so see every change
 *      committed up to v (and maybe later ones), and stores the body under v.
 * A change committed after step 1 makes the counter exceed v, so the entry is never a hit again:
 * a concurrent write can only make an entry stale early (a body newer than its tag), never let
 * an older body be served under a newer counter. An entry is a hit only when its version EQUALS
 * the version just read; a put never replaces an entry of a newer version. Any change anywhere
 * invalidates every entry (cheap and obviously correct; rendering again costs ~1 ms).
 *
 * Memory. Entries and the cache itself outlive every request, so they come from malloc, not from
 * the basin allocator (which tests swap per request to inject faults and count live blocks);
 * only the copy handed to a reply is basin_malloc'd, as reply bodies must be.
 *
 * Invariants per shard, under its mutex: every entry is in exactly one bucket chain and in the
 * LRU list; bytes = Σ entry cost <= cap. */
#include "resp_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "reply.h"

#define SHARD_BUCKETS 256 /* power of two */

struct entry {
    struct entry *chain;
    struct entry *prev, *next; /* LRU: head = most recent */
    uint64_t hash, version;
    size_t len;
    char key[RESP_CACHE_KEY_SIZE];
    char etag[RESP_CACHE_ETAG_SIZE];
    char body[]; /* len bytes */
};

struct shard {
    pthread_mutex_t mu;
    struct entry *buckets[SHARD_BUCKETS];
    struct entry *head, *tail;
    size_t bytes, cap, entries;
    uint64_t hits, misses, evictions;
};

struct resp_cache {
    size_t max_bytes;
    struct shard shards[RESP_CACHE_SHARDS];
};

static size_t entry_cost(size_t len)
{
    return sizeof(struct entry) + len;
}

int resp_cache_create(size_t max_bytes, struct resp_cache **out)
{
    int rc = BASIN_OK;
    size_t inited = 0;
    struct resp_cache *c = NULL;
    *out = NULL;
    if (max_bytes == 0)
        goto done;
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    c->max_bytes = max_bytes;
    for (; inited < RESP_CACHE_SHARDS; inited++) {
        if (pthread_mutex_init(&c->shards[inited].mu, NULL) != 0) {
            rc = BASIN_ENOMEM;
            goto done;
        }
        c->shards[inited].cap = max_bytes / RESP_CACHE_SHARDS;
    }
    *out = c;
    c = NULL;
done:
    if (c != NULL) {
        for (size_t i = 0; i < inited; i++)
            pthread_mutex_destroy(&c->shards[i].mu);
        free(c);
    }
    return rc;
}

void resp_cache_destroy(struct resp_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < RESP_CACHE_SHARDS; i++) {
        struct shard *s = &c->shards[i];
        for (struct entry *e = s->head; e != NULL;) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
        pthread_mutex_destroy(&s->mu);
    }
    free(c);
}

static struct shard *shard_of(struct resp_cache *c, uint64_t hash)
{
    return &c->shards[(hash >> 56) % RESP_CACHE_SHARDS];
}

static struct entry **bucket_of(struct shard *s, uint64_t hash)
{
    return &s->buckets[hash & (SHARD_BUCKETS - 1)];
}

static void lru_unlink(struct shard *s, struct entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(struct shard *s, struct entry *e)
{
    e->prev = NULL;
    e->next = s->head;
    if (s->head != NULL)
        s->head->prev = e;
    s->head = e;
    if (s->tail == NULL)
        s->tail = e;
}

/* The slot pointing at the entry for key, or at the NULL ending its chain. */
static struct entry **find_slot(struct shard *s, uint64_t hash, const char *key)
{
    struct entry **slot = bucket_of(s, hash);
    while (*slot != NULL && ((*slot)->hash != hash || strcmp((*slot)->key, key) != 0))
        slot = &(*slot)->chain;
    return slot;
}

static void remove_entry(struct shard *s, struct entry *e)
{
    struct entry **slot = find_slot(s, e->hash, e->key);
    *slot = e->chain;
    lru_unlink(s, e);
    s->bytes -= entry_cost(e->len);
    s->entries--;
    free(e);
}

int resp_cache_get(struct resp_cache *c, const char *key, uint64_t version, char **body,
                   size_t *len, char etag[RESP_CACHE_ETAG_SIZE])
{
    int hit = 0;
    if (body != NULL)
        *body = NULL;
    *len = 0;
    if (c == NULL || strlen(key) >= RESP_CACHE_KEY_SIZE)
        return 0;
    uint64_t hash = reply_fnv1a64(key, strlen(key));
    struct shard *s = shard_of(c, hash);
    pthread_mutex_lock(&s->mu);
    struct entry *e = *find_slot(s, hash, key);
    if (e != NULL && e->version < version) {
        remove_entry(s, e); /* stale for good: the counter never goes back */
        e = NULL;
    }
    if (e != NULL && e->version == version) {
        char *copy = NULL;
        if (body != NULL)
            copy = basin_malloc(e->len > 0 ? e->len : 1);
        if (body == NULL || copy != NULL) {
            if (copy != NULL) {
                memcpy(copy, e->body, e->len);
                *body = copy;
            }
            memcpy(etag, e->etag, RESP_CACHE_ETAG_SIZE);
            *len = e->len;
            lru_unlink(s, e);
            lru_push_front(s, e);
            hit = 1;
        }
    }
    if (hit)
        s->hits++;
    else
        s->misses++;
    pthread_mutex_unlock(&s->mu);
    return hit;
}

void resp_cache_put(struct resp_cache *c, const char *key, uint64_t version, const char *body,
                    size_t len, const char *etag)
{
    if (c == NULL || strlen(key) >= RESP_CACHE_KEY_SIZE || strlen(etag) >= RESP_CACHE_ETAG_SIZE)
        return;
    uint64_t hash = reply_fnv1a64(key, strlen(key));
    struct shard *s = shard_of(c, hash);
    if (len > s->cap || entry_cost(len) > s->cap)
        return;
    /* allocate and fill outside the lock: only the linking needs it */
    struct entry *n = malloc(entry_cost(len));
    if (n == NULL)
        return;
    memset(n, 0, sizeof *n);
    n->hash = hash;
    n->version = version;
    n->len = len;
    memcpy(n->key, key, strlen(key) + 1);
    memcpy(n->etag, etag, strlen(etag) + 1);
    memcpy(n->body, body, len);

    pthread_mutex_lock(&s->mu);
    struct entry *old = *find_slot(s, hash, key);
    if (old != NULL && old->version > version) {
        pthread_mutex_unlock(&s->mu);
        free(n);
        return;
    }
    if (old != NULL)
        remove_entry(s, old);
    while (s->tail != NULL && s->bytes + entry_cost(len) > s->cap) {
        remove_entry(s, s->tail);
        s->evictions++;
    }
    struct entry **slot = bucket_of(s, hash);
    n->chain = *slot;
    *slot = n;
    lru_push_front(s, n);
    s->bytes += entry_cost(len);
    s->entries++;
    pthread_mutex_unlock(&s->mu);
}

void resp_cache_stats(struct resp_cache *c, struct resp_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (c == NULL)
        return;
    out->max_bytes = c->max_bytes;
    for (size_t i = 0; i < RESP_CACHE_SHARDS; i++) {
        struct shard *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        out->entries += s->entries;
        out->bytes += s->bytes;
        out->hits += s->hits;
        out->misses += s->misses;
        out->evictions += s->evictions;
        pthread_mutex_unlock(&s->mu);
    }
}
