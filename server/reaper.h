/* The lease reaper of a store shared by many processes (PostgreSQL): a thread that every
 * period_ms calls store_requeue_stale(now − lease_ms), so the runs of a worker that stopped
 * heartbeating (killed, crashed, cut off) go back to the queue — or fail after max_attempts —
 * and another worker trains them again. Every `basinlab serve` and `basinlab worker` process on
 * PostgreSQL runs one; running several at once is safe (requeue_stale is one transaction under
 * row locks, and only runs whose lease expired qualify). */
#ifndef BASINLAB_REAPER_H
#define BASINLAB_REAPER_H

struct store;
struct reaper;

/* lease_ms ≥ 1, period_ms ≥ 1. log (may be NULL) gets one line per requeue that moved runs and
 * per store failure. BASIN_OK, BASIN_EINVAL, BASIN_ENOMEM. */
int reaper_start(struct store *store, unsigned lease_ms, unsigned period_ms,
                 void (*log)(void *user, const char *msg), void *log_user, struct reaper **out);

/* Stops and joins the thread (promptly: it waits on a condition variable); accepts NULL. */
void reaper_stop(struct reaper *r);

#endif
