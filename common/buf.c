/* buf.c - growable byte buffer with an optional cap. */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sc_buf_init(struct sc_buf *b, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->cap = cap;
}

void sc_buf_free(struct sc_buf *b)
{
    size_t cap = b->cap;
    free(b->data);
    sc_buf_init(b, cap);
}

/* Makes room for `need` bytes plus the NUL; returns false on overflow or OOM. */
static bool sc__buf_grow(struct sc_buf *b, size_t need)
{
    if (need + 1 <= b->alloc)
        return true;
    size_t n = b->alloc ? b->alloc : 64;
    while (n < need + 1) {
        if (n > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        n *= 2;
    }
    uint8_t *p = realloc(b->data, n);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->alloc = n;
    return true;
}

bool sc__buf_append_slow(struct sc_buf *b, const void *p, size_t n)
{
    bool whole = true;
    if (b->cap && n > b->cap - (b->len < b->cap ? b->len : b->cap)) {
        n = b->len < b->cap ? b->cap - b->len : 0;
        b->truncated = true;
        whole = false;
    }
    if (!sc__buf_grow(b, b->len + n))
        return false;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return whole;
}

bool sc_buf_printf(struct sc_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    if ((size_t)n < sizeof(tmp))
        return sc_buf_append(b, tmp, (size_t)n);
    if (!sc__buf_grow(b, b->len + (size_t)n))
        return false;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    size_t keep = (size_t)n;
    if (b->cap && b->len + keep > b->cap) {
        keep = b->cap > b->len ? b->cap - b->len : 0;
        b->truncated = true;
    }
    b->len += keep;
    b->data[b->len] = 0;
    return keep == (size_t)n;
}
