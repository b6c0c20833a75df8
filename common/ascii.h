/* ascii.h - character classes on uint8_t, independent of the C locale.
 *
 * <ctype.h> takes an int, is undefined for negative char values and follows
 * the locale; captured bytes are none of our locale's business.  These macros
 * take any integer holding a byte value 0..255 and evaluate it once.
 */
#ifndef SC_COMMON_ASCII_H
#define SC_COMMON_ASCII_H

#include <stdbool.h>
#include <stdint.h>

static inline bool sc_is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static inline bool sc_is_alpha(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static inline bool sc_is_alnum(uint8_t c)
{
    return sc_is_alpha(c) || sc_is_digit(c);
}

/* Printable ASCII: space through tilde. */
static inline bool sc_is_print(uint8_t c)
{
    return c >= 0x20 && c <= 0x7e;
}

/* SP or HTAB, the only "whitespace" SMTP knows inside a line (RFC 5321 4.1.1). */
static inline bool sc_is_wsp(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static inline uint8_t sc_to_upper(uint8_t c)
{
    return (c >= 'a' && c <= 'z') ? (uint8_t)(c - 'a' + 'A') : c;
}

static inline bool sc_is_hex(uint8_t c)
{
    return sc_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

#endif
