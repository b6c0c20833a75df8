/* escape.h - render captured bytes as printable ASCII, losslessly.
 *
 * Every byte a peer sent is escaped before it reaches a terminal or a log:
 * printable ASCII other than backslash stays as it is; backslash becomes
 * "\\", CR "\r", LF "\n", TAB "\t", and every other byte "\xHH".  The result
 * contains only 0x20..0x7e, so it is safe in text output and needs only the
 * JSON escaping of '"' and '\' on top.
 */
#ifndef SC_COMMON_ESCAPE_H
#define SC_COMMON_ESCAPE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Appends the escaped form of p[0..n) to out. */
void sc_escape(struct sc_buf *out, const uint8_t *p, size_t n);

/* Appends s (already printable ASCII) as the body of a JSON string, escaping
 * '"', '\' and any control character. */
void sc_json_escape(struct sc_buf *out, const char *s, size_t n);

/* Length of the run at p[0..n) that both escapes leave as it is: 0x20..0x7e
 * except '\' and '"'.  Bytes that are all such need neither escape. */
size_t sc_plain_len(const uint8_t *p, size_t n);

#endif
