/* Server-Sent Events: turns a producer callback into a text/event-stream MHD response
 * (sse.h has the contract).
 *
 * DESIGN
 * - MHD pulls the body through a content-reader callback (MHD_create_response_from_callback,
 *   size unknown → chunked). With one thread per connection, blocking inside that callback only
 *   holds this connection's thread, so the reader simply waits for the producer. It must never
 *   return 0 (MHD would call it again at once: a busy loop), so it loops until it has bytes,
 *   the producer is done, or the server stops.
 * - Time is cut into slices of at most poll_ms: the producer gets one slice as its budget, and
 *   between slices the reader checks the server's stop flag, so draining or stopping ends every
 *   stream within about one slice and MHD_stop_daemon can join the connection threads. A
 *   producer that returns early with nothing is put to sleep for the rest of its slice (at most
 *   50 ms at a time), so a non-blocking producer costs latency, never a spinning core.
 * - A heartbeat comment (": keep-alive") goes out when nothing was written for heartbeat_ms; a
 *   dead client is noticed when that write fails. The first call writes a comment at once so
 *   the headers reach the client before the first event.
 * - Frames follow the WHATWG HTML "event stream" format: optional `id:` and `event:` lines,
 *   one `data:` line per line of data (CR, LF and CRLF all split lines there, so all three are
 *   split here), and a blank line. id and event may not contain CR/LF.
 * - The stream object is reference-counted: the reply (until it is handed over), the MHD
 *   response, and http.c (which reads the byte count when it logs the finished request; MHD
 *   versions differ in whether the response or the completion callback goes first). The
 *   producer's ctx is freed with the last reference. */
#include "sse.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "reply.h"
#include "router.h"

enum { SSE_BLOCK_BYTES = 16 * 1024, SSE_IDLE_SLEEP_MS = 50 };

struct sse_writer {
    char *buf;
    size_t len; /* bytes stored */
    size_t off; /* bytes already handed to MHD */
    size_t cap;
    int failed; /* an append ran out of memory: the stream is cut off */
};

struct sse_stream {
    atomic_int refs;
    sse_produce_fn produce;
    void *ctx;
    void (*ctx_free)(void *);
    struct sse_writer w;
    atomic_uint_least64_t bytes;
    int opened;
    int done;
    const atomic_bool *stop;
    unsigned heartbeat_ms;
    unsigned poll_ms;
    struct timespec last_output;
};

static int writer_append(struct sse_writer *w, const char *s, size_t n)
{
    int rc = BASIN_OK;
    if (w->off == w->len) {
        w->off = 0;
        w->len = 0;
    }
    if (n > w->cap - w->len) {
        size_t need = 0;
        size_t cap = w->cap ? w->cap : 512;
        if (basin_add_size(w->len, n, &need) != BASIN_OK) {
            rc = BASIN_ERANGE;
            goto done;
        }
        while (cap < need) {
            if (basin_mul_size(cap, 2, &cap) != BASIN_OK) {
                rc = BASIN_ERANGE;
                goto done;
            }
        }
        char *grown = basin_realloc(w->buf, cap);
        if (grown == NULL) {
            rc = BASIN_ENOMEM;
            goto done;
        }
        w->buf = grown;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
done:
    if (rc != BASIN_OK)
        w->failed = 1;
    return rc;
}

static int append_field(struct sse_writer *w, const char *field, const char *value, size_t n)
{
    int rc = writer_append(w, field, strlen(field));
    if (rc == BASIN_OK)
        rc = writer_append(w, value, n);
    if (rc == BASIN_OK)
        rc = writer_append(w, "\n", 1);
    return rc;
}

int sse_emit(struct sse_writer *w, const char *id, const char *event, const char *data)
{
    int rc = BASIN_OK;
    if ((id != NULL && strpbrk(id, "\r\n") != NULL) ||
        (event != NULL && strpbrk(event, "\r\n") != NULL) || data == NULL) {
        rc = BASIN_EINVAL;
        goto done;
    }
    if (id != NULL)
        rc = append_field(w, "id: ", id, strlen(id));
    if (rc == BASIN_OK && event != NULL)
        rc = append_field(w, "event: ", event, strlen(event));
    for (const char *p = data; rc == BASIN_OK;) {
        size_t n = strcspn(p, "\r\n");
        rc = append_field(w, "data: ", p, n);
        p += n;
        if (*p == '\0')
            break;
        p += (p[0] == '\r' && p[1] == '\n') ? 2 : 1;
    }
    if (rc == BASIN_OK)
        rc = writer_append(w, "\n", 1);
done:
    return rc;
}

const char *sse_last_event_id(const struct request *req)
{
    return request_header(req, "Last-Event-ID");
}

void sse_stream_retain(struct sse_stream *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void sse_stream_release(struct sse_stream *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->ctx_free != NULL)
        s->ctx_free(s->ctx);
    basin_free(s->w.buf);
    basin_free(s);
}

uint64_t sse_stream_bytes(const struct sse_stream *s)
{
    return atomic_load(&s->bytes);
}

int sse_reply(struct reply *rep, sse_produce_fn produce, void *ctx, void (*ctx_free)(void *))
{
    int rc = BASIN_OK;
    struct sse_stream *s = NULL;
    if (produce == NULL) {
        rc = BASIN_EINVAL;
        goto done;
    }
    s = basin_calloc(1, sizeof(*s));
    if (s == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    atomic_init(&s->refs, 1);
    atomic_init(&s->bytes, 0);
    s->produce = produce;
    s->ctx = ctx;
    s->ctx_free = ctx_free;
    ctx = NULL;
    char *ct = basin_strdup("text/event-stream");
    if (ct == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    /* no-cache: every GET must reach us; X-Accel-Buffering: nginx would hold the frames */
    rc = reply_header(rep, "Cache-Control", "no-cache");
    if (rc == BASIN_OK)
        rc = reply_header(rep, "X-Accel-Buffering", "no");
    if (rc != BASIN_OK) {
        basin_free(ct);
        goto done;
    }
    basin_free(rep->body);
    basin_free(rep->content_type);
    sse_stream_release(rep->stream);
    rep->body = NULL;
    rep->body_len = 0;
    rep->content_type = ct;
    rep->stream = s;
    rep->status = 200;
    s = NULL;
done:
    if (ctx != NULL && ctx_free != NULL)
        ctx_free(ctx);
    sse_stream_release(s);
    return rc;
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Run the producer for one slice (or write a heartbeat when one is due). Returns 0, or -1 when
 * the stream must be cut off. */
static int produce_slice(struct sse_stream *s)
{
    struct timespec now;
    struct timespec after;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double idle = ms_between(&s->last_output, &now);
    if (idle >= (double)s->heartbeat_ms)
        return writer_append(&s->w, ": keep-alive\n\n", 14) == BASIN_OK ? 0 : -1;
    double until_beat = (double)s->heartbeat_ms - idle;
    unsigned wait = s->poll_ms;
    if (until_beat < (double)wait)
        wait = (unsigned)until_beat + 1;
    int r = s->produce(s->ctx, &s->w, wait);
    if (r < 0 || s->w.failed)
        return -1;
    if (r == SSE_DONE)
        s->done = 1;
    if (s->w.len == s->w.off && !s->done) {
        clock_gettime(CLOCK_MONOTONIC, &after);
        double used = ms_between(&now, &after);
        if (used < (double)wait) {
            double rest = (double)wait - used;
            sleep_ms(rest < SSE_IDLE_SLEEP_MS ? (unsigned)rest + 1 : SSE_IDLE_SLEEP_MS);
        }
    }
    return 0;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct sse_stream *s = cls;
    (void)pos;
    while (s->w.len == s->w.off) {
        if (s->done || atomic_load(s->stop))
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!s->opened) {
            s->opened = 1;
            if (writer_append(&s->w, ": stream open\n\n", 15) != BASIN_OK)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        if (produce_slice(s) != 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = s->w.len - s->w.off;
    if (n > max)
        n = max;
    memcpy(buf, s->w.buf + s->w.off, n);
    s->w.off += n;
    atomic_fetch_add(&s->bytes, (uint_least64_t)n);
    clock_gettime(CLOCK_MONOTONIC, &s->last_output);
    return (ssize_t)n;
}

static void sse_response_freed(void *cls)
{
    sse_stream_release(cls);
}

struct MHD_Response *sse_response_create(struct sse_stream *s, const atomic_bool *stop,
                                         unsigned heartbeat_ms, unsigned poll_ms)
{
    s->stop = stop;
    s->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : 15000;
    s->poll_ms = poll_ms > 0 ? poll_ms : 250;
    clock_gettime(CLOCK_MONOTONIC, &s->last_output);
    sse_stream_retain(s);
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK_BYTES,
                                                                  sse_read, s, sse_response_freed);
    if (resp == NULL)
        sse_stream_release(s);
    return resp;
}
