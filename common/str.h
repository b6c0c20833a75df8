/* str.h - bounded C string copies.
 *
 * snprintf(dst, cap, "%s", src) runs the whole format engine (hundreds of
 * instructions) to copy a string; a session record copies a dozen.
 */
#ifndef SC_COMMON_STR_H
#define SC_COMMON_STR_H

#include <stddef.h>
#include <string.h>

/* Copies the NUL-terminated src into dst[cap], cut to cap - 1 bytes, always
 * NUL-terminated when cap > 0.  Returns the bytes copied (without the NUL). */
static inline size_t sc_strlcpy(char *dst, size_t cap, const char *src)
{
    if (cap == 0)
        return 0;
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

/* Writes v in decimal at p (at most 20 bytes, no NUL); returns the end. */
static inline char *sc_put_u64(char *p, unsigned long long v)
{
    char d[20], *q = d + sizeof(d);
    do {
        *--q = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t n = (size_t)(d + sizeof(d) - q);
    memcpy(p, q, n);
    return p + n;
}

#endif
