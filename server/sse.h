/* Server-Sent Events responses (text/event-stream) for progress pushes such as
 * GET /v1/experiments/{id}/events.
 *
 * A handler calls sse_reply() with a producer: a function the stream calls repeatedly, giving
 * it a time budget, that may block up to that budget (e.g. pthread_cond_timedwait on the
 * store's "something changed" condition), emits zero or more events with sse_emit(), and says
 * whether the stream goes on. The stream adds a heartbeat comment when nothing was sent for a
 * while (default 15 s: proxies and browsers drop silent connections) and ends when the
 * producer says so, when the client goes away, or when the server drains or stops.
 * Resumption: the handler reads sse_last_event_id(req) and starts its producer after that id.
 *
 * The producer runs on the connection's own thread, so the server must run
 * thread-per-connection (http.c refuses ROUTE_STREAM routes with a thread pool). */
#ifndef BASINLAB_SSE_H
#define BASINLAB_SSE_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>

struct reply;
struct request;
struct sse_writer;
struct sse_stream;
struct MHD_Response;

enum {
    SSE_MORE = 0, /* producer: keep streaming */
    SSE_DONE = 1  /* producer: end the stream after what was emitted */
};

/* Called with a budget of wait_ms; returns SSE_MORE, SSE_DONE or a negative BASIN_E* (the
 * stream is then cut off, which a client sees as an error). May return early with nothing. */
typedef int (*sse_produce_fn)(void *ctx, struct sse_writer *w, unsigned wait_ms);

/* Queue one event: `id:` (optional, NULL), `event:` (optional, NULL) and `data:` (one `data:`
 * line per line of `data`; "" allowed). id and event must not contain CR or LF
 * (BASIN_EINVAL). BASIN_ENOMEM when the frame cannot be stored. */
int sse_emit(struct sse_writer *w, const char *id, const char *event, const char *data);

/* Answer `rep` with 200 text/event-stream driven by produce(ctx). Takes ownership of ctx:
 * ctx_free(ctx) (may be NULL) runs when the stream is finished, also when this call fails. */
int sse_reply(struct reply *rep, sse_produce_fn produce, void *ctx, void (*ctx_free)(void *));

/* The Last-Event-ID request header (a reconnecting EventSource sends it), or NULL. */
const char *sse_last_event_id(const struct request *req);

/* ---- for http.c ---- */

/* Release a stream reference (the reply's or http.c's). Accepts NULL. */
void sse_stream_release(struct sse_stream *s);
/* Take an extra reference (http.c keeps one to log the byte count after MHD is done). */
void sse_stream_retain(struct sse_stream *s);
/* Bytes of event-stream text handed to MHD so far. */
uint64_t sse_stream_bytes(const struct sse_stream *s);
/* Build the MHD response for the stream. The response takes its own reference. The stream
 * ends early once *stop becomes true (checked at least every poll_ms) and sends a heartbeat
 * comment after heartbeat_ms without output. NULL when out of memory. */
struct MHD_Response *sse_response_create(struct sse_stream *s, const atomic_bool *stop,
                                         unsigned heartbeat_ms, unsigned poll_ms);

#endif
