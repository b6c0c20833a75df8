/* wire.h - bounds-checked reading of packet bytes (after Knot DNS wire_ctx).
 *
 * A reader walks a byte range.  Every accessor checks the remaining length;
 * the first failure sets a sticky error and every later read returns zero, so
 * a parser reads a whole header and checks sc_wire_ok() once at the end.
 * Multi-byte values are read big-endian (network order) unless the name ends
 * in _le.  Nothing here ever reads outside [start, end).
 */
#ifndef SC_COMMON_WIRE_H
#define SC_COMMON_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sc_wire {
    const uint8_t *start;
    const uint8_t *pos;
    const uint8_t *end;
    bool err;
};

static inline struct sc_wire sc_wire_init(const uint8_t *p, size_t len)
{
    struct sc_wire w = {p, p, p + len, false};
    return w;
}

static inline size_t sc_wire_left(const struct sc_wire *w)
{
    return w->err ? 0 : (size_t)(w->end - w->pos);
}

static inline size_t sc_wire_offset(const struct sc_wire *w)
{
    return (size_t)(w->pos - w->start);
}

static inline bool sc_wire_ok(const struct sc_wire *w)
{
    return !w->err;
}

/* Returns true when n more bytes can be read; otherwise sets the error. */
static inline bool sc_wire_need(struct sc_wire *w, size_t n)
{
    if (w->err || (size_t)(w->end - w->pos) < n) {
        w->err = true;
        return false;
    }
    return true;
}

static inline void sc_wire_skip(struct sc_wire *w, size_t n)
{
    if (sc_wire_need(w, n))
        w->pos += n;
}

static inline uint8_t sc_wire_u8(struct sc_wire *w)
{
    if (!sc_wire_need(w, 1))
        return 0;
    return *w->pos++;
}

static inline uint16_t sc_wire_u16(struct sc_wire *w)
{
    if (!sc_wire_need(w, 2))
        return 0;
    uint16_t v = (uint16_t)((unsigned)w->pos[0] << 8 | w->pos[1]);
    w->pos += 2;
    return v;
}

static inline uint32_t sc_wire_u32(struct sc_wire *w)
{
    if (!sc_wire_need(w, 4))
        return 0;
    uint32_t v = (uint32_t)w->pos[0] << 24 | (uint32_t)w->pos[1] << 16 | (uint32_t)w->pos[2] << 8 |
                 (uint32_t)w->pos[3];
    w->pos += 4;
    return v;
}

/* Copies n bytes to out (or zeroes out on error). */
static inline void sc_wire_bytes(struct sc_wire *w, void *out, size_t n)
{
    uint8_t *o = out;
    if (!sc_wire_need(w, n)) {
        for (size_t i = 0; i < n; i++)
            o[i] = 0;
        return;
    }
    for (size_t i = 0; i < n; i++)
        o[i] = w->pos[i];
    w->pos += n;
}

/* Unaligned loads from a buffer the caller has already length-checked. */
static inline uint16_t sc_load_be16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t sc_load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint16_t sc_load_le16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[1] << 8 | p[0]);
}

static inline uint32_t sc_load_le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | (uint32_t)p[0];
}

#endif
