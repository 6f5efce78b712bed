/* The unit tests' shared HTTP client (http_client.h): one libcurl easy transfer per call, the
 * body grown on the heap, the final response's header lines kept NUL-separated for lookup.
 * Test code, so plain malloc and libcurl; nothing here asserts. */
#include "http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct upload {
    const char *data;
    size_t len;
    size_t pos;
    size_t step;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct http_resp *r = ud;
    size_t n = size * nmemb;
    char *grown = realloc(r->body, r->len + n + 1);
    if (grown == NULL)
        return 0;
    r->body = grown;
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct http_resp *r = ud;
    size_t n = size * nmemb, len = n;
    /* keep only the final response's fields (a 100 Continue comes first) */
    if (n > 5 && strncmp(data, "HTTP/", 5) == 0) {
        r->head_len = 0;
        return n;
    }
    while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n' || data[len - 1] == ' ' ||
                       data[len - 1] == '\t'))
        len--;
    if (len > 0 && r->head_len + len + 1 < sizeof r->head) {
        memcpy(r->head + r->head_len, data, len);
        r->head_len += len;
        r->head[r->head_len++] = '\0';
    }
    return n;
}

static size_t on_read(char *buffer, size_t size, size_t nitems, void *ud)
{
    struct upload *u = ud;
    size_t n = u->len - u->pos;
    if (n > u->step)
        n = u->step;
    if (n > size * nitems)
        n = size * nitems;
    memcpy(buffer, u->data + u->pos, n);
    u->pos += n;
    return n;
}

static int names_content_type(const struct http_req *q)
{
    for (size_t i = 0; i < HTTP_MAX_HEADERS && q->headers[i] != NULL; i++)
        if (strncasecmp(q->headers[i], "Content-Type:", 13) == 0)
            return 1;
    return 0;
}

struct http_req http_req_json(const char *method, const char *path, const char *body)
{
    struct http_req q = {.method = method,
                         .path = path,
                         .content_type = body != NULL ? "application/json" : NULL,
                         .body = body,
                         .body_len = body != NULL ? strlen(body) : 0};
    return q;
}

CURLcode http_request(CURL *c, int port, const struct http_req *q, struct http_resp *r)
{
    struct curl_slist *hdrs = NULL;
    struct upload up = {q->body, q->body_len, 0, q->chunk_bytes};
    const char *method = q->method != NULL ? q->method : "GET";
    CURL *own = NULL;
    char *url = NULL, ct[256];
    size_t url_cap = strlen(q->path) + 32;
    memset(r, 0, sizeof *r);
    r->body = calloc(1, 1);
    url = malloc(url_cap);
    if (c == NULL)
        c = own = curl_easy_init();
    else
        curl_easy_reset(c);
    if (r->body == NULL || url == NULL || c == NULL) {
        r->cc = CURLE_OUT_OF_MEMORY;
        goto done;
    }
    snprintf(url, url_cap, "http://127.0.0.1:%d%s", port, q->path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, q->timeout_ms ? q->timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (q->body != NULL) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        if (q->chunk_bytes > 0) {
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, &up);
            if (q->chunked)
                hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
            else
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        }
    }
    /* "Content-Type:" with no value removes the form type curl adds to every POST */
    if ((q->content_type != NULL || q->body != NULL) && !names_content_type(q)) {
        snprintf(ct, sizeof ct, "Content-Type:%s%s", q->content_type ? " " : "",
                 q->content_type ? q->content_type : "");
        hdrs = curl_slist_append(hdrs, ct);
    }
    for (size_t i = 0; i < HTTP_MAX_HEADERS && q->headers[i] != NULL; i++)
        hdrs = curl_slist_append(hdrs, q->headers[i]);
    if (hdrs != NULL)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    r->cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    r->sent = up.pos;
    if (q->parse_json && r->len > 0)
        r->json = json_loadb(r->body, r->len, 0, NULL);
done:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(own);
    free(url);
    return r->cc;
}

void http_resp_free(struct http_resp *r)
{
    if (r == NULL)
        return;
    free(r->body);
    json_decref(r->json);
    r->body = NULL;
    r->json = NULL;
    r->len = 0;
}

const char *http_header(const struct http_resp *r, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t at = 0; at < r->head_len; at += strlen(r->head + at) + 1) {
        const char *line = r->head + at;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
    }
    return NULL;
}

int http_header_copy(const struct http_resp *r, const char *name, char *out, size_t cap)
{
    const char *v = http_header(r, name);
    if (v == NULL)
        return 0;
    snprintf(out, cap, "%s", v);
    return 1;
}

const char *http_header_or(const struct http_resp *r, const char *name, const char *dflt)
{
    const char *v = http_header(r, name);
    return v != NULL ? v : dflt;
}

size_t http_header_count(const struct http_resp *r, const char *name)
{
    size_t nlen = strlen(name), n = 0;
    for (size_t at = 0; at < r->head_len; at += strlen(r->head + at) + 1)
        n += strncasecmp(r->head + at, name, nlen) == 0 && r->head[at + nlen] == ':';
    return n;
}
