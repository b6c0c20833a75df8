/* escape.c - printable, reversible escaping of captured bytes. */
#include "common/escape.h"

#include "common/ascii.h"

static const char sc__hex[] = "0123456789abcdef";

void sc_escape(struct sc_buf *out, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* Copy the longest run of plain printable bytes in one go. */
        size_t run = i;
        while (run < n && sc_is_print(p[run]) && p[run] != '\\')
            run++;
        if (run > i) {
            sc_buf_append(out, p + i, run - i);
            i = run;
            continue;
        }
        uint8_t c = p[i++];
        char e[4] = {'\\', 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '\\':
            e[1] = '\\';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\t':
            e[1] = 't';
            break;
        default:
            e[1] = 'x';
            e[2] = sc__hex[c >> 4];
            e[3] = sc__hex[c & 15];
            elen = 4;
            break;
        }
        sc_buf_append(out, e, elen);
    }
}

void sc_json_escape(struct sc_buf *out, const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] != '"' && p[run] != '\\' && p[run] < 0x7f)
            run++;
        if (run > i) {
            sc_buf_append(out, p + i, run - i);
            i = run;
            continue;
        }
        uint8_t c = p[i++];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sc_buf_append(out, e, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', sc__hex[c >> 4], sc__hex[c & 15]};
            sc_buf_append(out, e, 6);
        }
    }
}
