/* test_ere.c - common/ere.h: the dialect, the errors, the limits, and a
 * differential run against glibc's regcomp/regexec on generated patterns. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/ere.h"

/* 1 match, 0 no match, -2 refused. */
static int try(const char *pattern, const char *subject)
{
    char err[160];
    struct ere *re = ere_compile(pattern, strlen(pattern), err, sizeof(err));
    if (!re)
        return -2;
    int m = ere_match(re, (const uint8_t *)subject, strlen(subject));
    ere_free(re);
    return m;
}

static void refused_with(const char *pattern, const char *want)
{
    char err[160];
    struct ere *re = ere_compile(pattern, strlen(pattern), err, sizeof(err));
    if (re) {
        ere_free(re);
        fail_msg("\"%s\" compiled", pattern);
    }
    if (!strstr(err, want))
        fail_msg("\"%s\": \"%s\" lacks \"%s\"", pattern, err, want);
}

static void test_dialect(void **state)
{
    (void)state;
    static const struct {
        const char *re, *s;
        int want;
    } t[] = {
        {"", "", 1},
        {"", "abc", 1},
        {"abc", "xxabcxx", 1},
        {"abc", "ab", 0},
        {"^220 .*MailGate", "220 mx MailGate ready", 1},
        {"^220 .*MailGate", " 220 mx MailGate", 0},
        {"^220 [*0 ]+$", "220 ****** ***** ***", 1},
        {"^220 [*0 ]+$", "220 ****** x", 0},
        {"250-XXXXXXXA", "250-XXXXXXXA", 1},
        {"a|b", "b", 1},
        {"a|", "zzz", 1},
        {"(a|b)c", "bc", 1},
        {"(a|b)c", "cc", 0},
        {"x(ab)*y", "xababy", 1},
        {"x(ab)*y", "xabay", 0},
        {"xa+y", "xy", 0},
        {"xa+y", "xaaay", 1},
        {"xa?y", "xy", 1},
        {"xa?y", "xaay", 0},
        {"xa{2}y", "xaay", 1},
        {"xa{2}y", "xay", 0},
        {"xa{2,}y", "xaaaay", 1},
        {"xa{2,3}y", "xaaaay", 0},
        {"xa{,2}y", "xy", 1},
        {"xa{,2}y", "xaaay", 0},
        {"xa{0}y", "xy", 1},
        {"xa+?y", "xy", 1}, /* (a+)? */
        {"x.y", "x\ty", 1},
        {"x[]a]y", "x]y", 1},
        {"x[^]a]y", "x]y", 0},
        {"x[a-]y", "x-y", 1},
        {"x[[:digit:]]+y", "x123y", 1},
        {"x[[:digit:]]+y", "x12ay", 0},
        {"x[[:alpha:][:space:]]y", "x y", 1},
        {"x[[:punct:]]y", "x*y", 1},
        {"x[[:punct:]]y", "xay", 0},
        {"x[[.-.]]y", "x-y", 1},
        {"x[[=a=]]y", "xay", 1},
        {"x[a-c]y", "xby", 1},
        {"x[a-c]y", "xdy", 0},
        {"x\\.y", "xay", 0},
        {"x\\.y", "x.y", 1},
        {"x\\\\y", "x\\y", 1},
        {"x\\[y", "x[y", 1},
        {"a)b", "a)b", 1}, /* an unmatched ')' is a literal */
        {"\\bword\\b", "a word here", 1},
        {"\\bword\\b", "swordfish", 0},
        {"\\<word", "a word", 1},
        {"\\<word", "sword", 0},
        {"word\\>", "words", 0},
        {"\\Bor\\B", "word", 1},
        {"\\w+@\\w+", "user@host", 1},
        {"\\W", "abc_12", 0},
        {"\\s", "a\tb", 1},
        {"\\S", "   ", 0},
        {"\\`a", "ba", 0},
        {"a\\'", "ba", 1},
        {"a$b", "a$b", 0}, /* $ anchors wherever it stands */
        {"(a*)*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", 0},
        {"(a|aa)*c", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (try(t[i].re, t[i].s) != t[i].want)
            fail_msg("\"%s\" on \"%s\": %d, want %d", t[i].re, t[i].s, try(t[i].re, t[i].s),
                     t[i].want);
}

static void test_errors(void **state)
{
    (void)state;
    refused_with("a(b", "at offset 1: missing ')'");
    refused_with("a[bc", "missing ']'");
    refused_with("*a", "at offset 0: '*' has nothing to repeat");
    refused_with("(+a)", "'+' has nothing to repeat");
    refused_with("a|?", "'?' has nothing to repeat");
    refused_with("^*", "cannot repeat an anchor");
    refused_with("a\\", "trailing backslash");
    refused_with("(a)\\1", "at offset 3: back-references");
    refused_with("a{2,1}", "maximum is under the minimum");
    refused_with("a{x}", "bad bound");
    refused_with("a{1", "bad bound");
    refused_with("a{99999}", "bound over 32767");
    refused_with("[z-a]", "range z-a runs backwards");
    refused_with("[\x7f-\x01]", "range \\x7f-\\x01 runs backwards");
    refused_with("[[:bogus:]]", "unknown character class");
    refused_with("[[.ab.]]", "exactly one character");
    refused_with("a+++++", "over 4 repetition operators in a row");
    refused_with("((a{255}){255}){255}", "repeats too much");
    char deep[2 * ERE_DEPTH_MAX + 8];
    memset(deep, '(', ERE_DEPTH_MAX + 1);
    memset(deep + ERE_DEPTH_MAX + 1, ')', ERE_DEPTH_MAX + 1);
    deep[2 * ERE_DEPTH_MAX + 2] = 0;
    refused_with(deep, "nest over");
    deep[2 * ERE_DEPTH_MAX + 1] = 0; /* one level less: accepted */
    memmove(deep, deep + 1, strlen(deep));
    assert_int_equal(try(deep, "x"), 1);
    char *big = malloc(ERE_PATTERN_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', ERE_PATTERN_MAX + 1);
    big[ERE_PATTERN_MAX + 1] = 0;
    refused_with(big, "longer than");
    big[ERE_PATTERN_MAX] = 0;
    assert_int_equal(try(big, "a"), 0);
    free(big);
}

/* The program's size follows the expansion exactly, up to the bound. */
static void test_size(void **state)
{
    (void)state;
    char err[160];
    struct ere *re = ere_compile(".{0,998}", 8, err, sizeof(err));
    assert_non_null(re);
    assert_int_equal(ere_size(re), 998 * 2 + 1);
    ere_free(re);
    /* ERE_PROG_MAX - 1 BYTEs and MATCH: just fits; one more does not. */
    char p[32];
    snprintf(p, sizeof(p), "a{%d}", ERE_PROG_MAX - 1);
    assert_non_null(re = ere_compile(p, strlen(p), err, sizeof(err)));
    assert_int_equal(ere_size(re), ERE_PROG_MAX);
    ere_free(re);
    snprintf(p, sizeof(p), "a{%d}", ERE_PROG_MAX);
    assert_null(ere_compile(p, strlen(p), err, sizeof(err)));
    /* Repeating nothing costs nothing, however often. */
    assert_non_null(re = ere_compile("((){32767}){32767}x", 19, err, sizeof(err)));
    assert_int_equal(ere_size(re), 2);
    ere_free(re);
}

/* A pattern glibc took a minute to compile, matched over a long line: the
 * program is big and its states are allocated per match. */
static void test_long_program(void **state)
{
    (void)state;
    const char *p = "(|a){1000}(a|)*b";
    char err[160];
    struct ere *re = ere_compile(p, strlen(p), err, sizeof(err));
    assert_non_null(re);
    uint8_t s[4000];
    memset(s, 'a', sizeof(s));
    assert_int_equal(ere_match(re, s, sizeof(s)), 0);
    s[sizeof(s) - 1] = 'b';
    assert_int_equal(ere_match(re, s, sizeof(s)), 1);
    ere_free(re);
}

static unsigned long long rng_state = 88172645463325252ULL;

static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

/* Generated patterns against glibc: where both compile, both must agree on
 * every subject; we must refuse nothing glibc accepts but stacked
 * repetitions past ERE_STACK_MAX, and accept nothing it refuses.  Anchors
 * stay outside groups: glibc mismatches "(^.){2}" (it matches "ab", which
 * "(^.)(^.)" does not). */
static void test_against_glibc(void **state)
{
    (void)state;
    static const char *const tok[] = {
        "a",     "b",
        "c",     "(",
        ")",     "|",
        "*",     "+",
        "?",     "{2}",
        "{1,2}", "{,2}",
        "{0}",   "{2,}",
        ".",     "[ab]",
        "[^a]",  "[a-c]",
        "^",     "$",
        "\\b",   "\\<",
        "\\>",   "\\w",
        "\\W",   "\\B",
        "\\s",   "[[:alpha:]]",
        "]",     "[]a]",
        "\\.",   "{",
        "}",     "\\",
        "-",     "[a-]",
        "x",     "[[:space:]_]",
        " ",
    };
    const size_t ntok = sizeof(tok) / sizeof(tok[0]);
    int both = 0;
    for (int t = 0; t < 30000; t++) {
        char p[160] = "";
        int depth = 0, k = 1 + (int)rnd(12);
        for (int i = 0; i < k; i++) {
            const char *x = tok[rnd((unsigned)ntok)];
            depth += x[0] == '(' ? 1 : x[0] == ')' ? -1 : 0;
            bool anchor = x[0] == '^' || x[0] == '$' || (x[0] == '\\' && strchr("bB<>", x[1]));
            if (depth > 0 && anchor)
                continue;
            strcat(p, x);
        }
        regex_t g;
        int grc = regcomp(&g, p, REG_EXTENDED | REG_NOSUB);
        char err[160];
        struct ere *re = ere_compile(p, strlen(p), err, sizeof(err));
        if (grc != 0) {
            if (re)
                fail_msg("\"%s\": glibc refuses it (%d), we compile it", p, grc);
            continue;
        }
        if (!re) {
            regfree(&g);
            if (!strstr(err, "in a row"))
                fail_msg("\"%s\": glibc compiles it, we refuse it: %s", p, err);
            continue;
        }
        both++;
        for (int j = 0; j < 24; j++) {
            char s[16];
            int n = (int)rnd(12);
            for (int i = 0; i < n; i++)
                s[i] = "abc .x_-]"[rnd(9)];
            s[n] = 0;
            int want = regexec(&g, s, 0, NULL, 0) == 0;
            int got = ere_match(re, (const uint8_t *)s, (size_t)n);
            if (want != got)
                fail_msg("\"%s\" on \"%s\": glibc %d, ours %d", p, s, want, got);
        }
        regfree(&g);
        ere_free(re);
    }
    /* The run must have compared something: about a third compile. */
    assert_true(both > 5000);
}

/* Bracket expressions against glibc: acceptance, and membership of every
 * printable byte. */
static void test_brackets_against_glibc(void **state)
{
    (void)state;
    static const char *const piece[] = {
        "a",         "c",     "e",     "-",     "]",      "^", "[",       "!", "[:alpha:]",
        "[:bogus:]", "[.-.]", "[.a.]", "[=e=]", "[.ab.]", ":", "[:digit", "."};
    const size_t npiece = sizeof(piece) / sizeof(piece[0]);
    int both = 0;
    for (int t = 0; t < 20000; t++) {
        char p[96] = "x[";
        int k = 1 + (int)rnd(6);
        for (int i = 0; i < k; i++)
            strcat(p, piece[rnd((unsigned)npiece)]);
        strcat(p, "]y");
        regex_t g;
        int grc = regcomp(&g, p, REG_EXTENDED | REG_NOSUB);
        char err[160];
        struct ere *re = ere_compile(p, strlen(p), err, sizeof(err));
        if ((grc == 0) != (re != NULL))
            fail_msg("\"%s\": glibc %s, ours %s", p, grc ? "refuses" : "accepts",
                     re ? "accepts" : err);
        if (!re)
            continue;
        both++;
        for (int c = 0x20; c < 0x7f; c++) {
            char s[4] = {'x', (char)c, 'y', 0};
            int want = regexec(&g, s, 0, NULL, 0) == 0;
            if (ere_match(re, (const uint8_t *)s, 3) != want)
                fail_msg("\"%s\" on \"%s\": glibc %d", p, s, want);
        }
        regfree(&g);
        ere_free(re);
    }
    assert_true(both > 2500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dialect),       cmocka_unit_test(test_errors),
        cmocka_unit_test(test_size),          cmocka_unit_test(test_long_program),
        cmocka_unit_test(test_against_glibc), cmocka_unit_test(test_brackets_against_glibc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
