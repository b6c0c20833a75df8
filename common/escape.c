/* escape.c - printable, reversible escaping of captured bytes. */
#include "common/escape.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/ascii.h"

static const char sc__hex[] = "0123456789abcdef";

/* Length of the run of bytes at p[0..n) that both escapes copy as they are:
 * 0x20..0x7e except '\\', and except '"' too when `quote`.  Most of what is
 * escaped is such text, so it is tested 16 bytes at a time. */
static size_t sc__plain_run(const uint8_t *p, size_t n, bool quote)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i lo = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
    const __m128i bs = _mm_set1_epi8('\\'), dq = _mm_set1_epi8(quote ? '"' : '\\');
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        /* Signed: bytes 0x80..0xff are negative, so under 0x20 as well. */
        __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, lo), _mm_cmpeq_epi8(v, del)),
                                   _mm_or_si128(_mm_cmpeq_epi8(v, bs), _mm_cmpeq_epi8(v, dq)));
        unsigned m = (unsigned)_mm_movemask_epi8(bad);
        if (m)
            return i + (size_t)__builtin_ctz(m);
    }
#endif
    while (i < n && sc_is_print(p[i]) && p[i] != '\\' && !(quote && p[i] == '"'))
        i++;
    return i;
}

size_t sc_plain_len(const uint8_t *p, size_t n)
{
    return sc__plain_run(p, n, true);
}

void sc_escape(struct sc_buf *out, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* Copy the longest run of plain printable bytes in one go. */
        size_t run = i + sc__plain_run(p + i, n - i, false);
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
        size_t run = i + sc__plain_run(p + i, n - i, true);
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
