/* Opaque random identifiers and claim tokens (see ids.h). getrandom(2) never blocks once the
 * kernel pool is initialised, needs no file descriptor, and is safe from any thread. */
#include "ids.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static int random_bytes(unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -2;
        }
        got += (size_t)r;
    }
    return 0;
}

static int random_hex(char *out, size_t digits)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char bytes[32];
    size_t i;
    int rc;

    if (digits > 2 * sizeof bytes || digits % 2 != 0)
        return -1;
    rc = random_bytes(bytes, digits / 2);
    if (rc != 0)
        return rc;
    for (i = 0; i < digits / 2; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[digits] = '\0';
    return 0;
}

int ids_new(const char *prefix, char *out, size_t cap)
{
    size_t plen;

    if (!prefix || !out)
        return -1;
    plen = strlen(prefix);
    if (plen > 8 || cap < plen + IDS_HEX_DIGITS + 1)
        return -1;
    memcpy(out, prefix, plen);
    return random_hex(out + plen, IDS_HEX_DIGITS);
}

int ids_token(char *out, size_t cap)
{
    if (!out || cap < IDS_TOKEN_HEX_DIGITS + 1)
        return -1;
    return random_hex(out, IDS_TOKEN_HEX_DIGITS);
}

int ids_valid(const char *id, const char *prefix)
{
    size_t plen, i;

    if (!id || !prefix)
        return 0;
    plen = strlen(prefix);
    if (strncmp(id, prefix, plen) != 0 || strlen(id) != plen + IDS_HEX_DIGITS)
        return 0;
    for (i = plen; i < plen + IDS_HEX_DIGITS; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}
