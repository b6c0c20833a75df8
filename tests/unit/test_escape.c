/* test_escape.c - common/escape.h against a byte-at-a-time reference: every
 * byte value at every place of a 16-byte block and across blocks, and
 * generated strings, through both escapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/escape.h"

/* The escapes as escape.h specifies them, one byte at a time. */
static void ref_escape(struct sc_buf *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        char e[8];
        if (c == '\\')
            snprintf(e, sizeof(e), "\\\\");
        else if (c == '\r')
            snprintf(e, sizeof(e), "\\r");
        else if (c == '\n')
            snprintf(e, sizeof(e), "\\n");
        else if (c == '\t')
            snprintf(e, sizeof(e), "\\t");
        else if (c >= 0x20 && c <= 0x7e)
            snprintf(e, sizeof(e), "%c", c);
        else
            snprintf(e, sizeof(e), "\\x%02x", c);
        sc_buf_puts(out, e);
    }
}

static void ref_json(struct sc_buf *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        char e[8];
        if (c == '"' || c == '\\')
            snprintf(e, sizeof(e), "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            snprintf(e, sizeof(e), "%c", c);
        else
            snprintf(e, sizeof(e), "\\u00%02x", c);
        sc_buf_puts(out, e);
    }
}

static void check(const uint8_t *p, size_t n)
{
    struct sc_buf a, b;
    sc_buf_init(&a, 0);
    sc_buf_init(&b, 0);
    sc_escape(&a, p, n);
    ref_escape(&b, p, n);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(sc_buf_str(&a), sc_buf_str(&b), a.len);
    sc_buf_reset(&a);
    sc_buf_reset(&b);
    sc_json_escape(&a, (const char *)p, n);
    ref_json(&b, p, n);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(sc_buf_str(&a), sc_buf_str(&b), a.len);
    /* sc_plain_len: the bytes before the first one either escape changes;
     * when that is all of them, the report copies them as they are. */
    size_t k = 0;
    while (k < n && p[k] >= 0x20 && p[k] <= 0x7e && p[k] != '\\' && p[k] != '"')
        k++;
    assert_int_equal(sc_plain_len(p, n), k);
    if (k == n) {
        sc_buf_reset(&a);
        sc_buf_reset(&b);
        ref_escape(&a, p, n);
        ref_json(&b, p, n);
        assert_int_equal(a.len, n);
        assert_int_equal(b.len, n);
        if (n) {
            assert_memory_equal(a.data, p, n);
            assert_memory_equal(b.data, p, n);
        }
    }
    sc_buf_free(&a);
    sc_buf_free(&b);
}

/* Each byte value at each of 40 places in plain text: inside the first and
 * second 16-byte blocks, on their edges, and in the scalar tail. */
static void test_every_byte_everywhere(void **state)
{
    (void)state;
    uint8_t s[40];
    for (unsigned c = 0; c < 256; c++) {
        for (size_t at = 0; at < sizeof(s); at++) {
            memset(s, 'a', sizeof(s));
            s[at] = (uint8_t)c;
            for (size_t n = at + 1; n <= sizeof(s); n += 13)
                check(s, n);
            check(s, sizeof(s));
        }
    }
}

static uint64_t rng(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Strings of 0-199 bytes, mostly printable, some runs of anything. */
static void test_generated_strings(void **state)
{
    (void)state;
    uint8_t s[200];
    uint64_t x = 7;
    for (unsigned round = 0; round < 20000; round++) {
        size_t n = (size_t)(rng(&x) % sizeof(s));
        unsigned odd = (unsigned)(rng(&x) % 64); /* 1 in `odd` bytes is any byte */
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rng(&x);
            s[i] = odd && r % odd == 0 ? (uint8_t)(r >> 8) : (uint8_t)(0x20 + (r >> 8) % 95);
        }
        check(s, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_byte_everywhere),
        cmocka_unit_test(test_generated_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
