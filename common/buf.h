/* buf.h - a growable byte buffer with an optional hard cap (after Redis sds).
 *
 * Used for output formatting and for the few places that must copy captured
 * bytes.  The buffer always keeps a terminating NUL after len bytes so that
 * text built in it can be passed to stdio.  Appends beyond `cap` (when cap is
 * non-zero) are cut at the cap and set `truncated`; an allocation failure
 * sets `oom` and drops the append.  Neither ever aborts.
 */
#ifndef SC_COMMON_BUF_H
#define SC_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct sc_buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t len;
    size_t alloc;
    size_t cap; /* 0 = no cap */
    bool truncated;
    bool oom;
};

/* Initialises an empty buffer that never grows beyond cap bytes (0: no cap). */
void sc_buf_init(struct sc_buf *b, size_t cap);

/* Frees the storage; the buffer is empty and reusable afterwards. */
void sc_buf_free(struct sc_buf *b);

/* Empties the buffer, keeping its storage. */
static inline void sc_buf_reset(struct sc_buf *b)
{
    b->len = 0;
    b->truncated = false;
    if (b->data)
        b->data[0] = 0;
}

/* The general case of sc_buf_append (growth, the cap, OOM). */
bool sc__buf_append_slow(struct sc_buf *b, const void *p, size_t n);

/* Appends n bytes; returns false if anything was cut or dropped.  Inline
 * when the bytes fit: records are built from many short appends. */
static inline bool sc_buf_append(struct sc_buf *b, const void *p, size_t n)
{
    /* alloc > len whenever data is set (room for the NUL); both 0 before. */
    if (n < b->alloc - b->len && (b->cap == 0 || n <= b->cap - b->len)) {
        if (n)
            memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
        return true;
    }
    return sc__buf_append_slow(b, p, n);
}

static inline bool sc_buf_putc(struct sc_buf *b, uint8_t c)
{
    if (b->len + 1 < b->alloc && (b->cap == 0 || b->len < b->cap)) {
        b->data[b->len++] = c;
        b->data[b->len] = 0;
        return true;
    }
    return sc_buf_append(b, &c, 1);
}

static inline bool sc_buf_puts(struct sc_buf *b, const char *s)
{
    return sc_buf_append(b, s, strlen(s));
}

/* printf-style append. */
bool sc_buf_printf(struct sc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Returns the contents as a NUL-terminated string ("" when empty). */
static inline const char *sc_buf_str(const struct sc_buf *b)
{
    return b->data ? (const char *)b->data : "";
}

#endif
