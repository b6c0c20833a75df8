/* fuzz_ere.c - libFuzzer target for common/ere.h: the input is a pattern, a
 * NUL, and a subject.
 *
 * Every pattern is compiled; what compiles is matched against the subject,
 * so the parser, the sizing, the emitter and the matcher all see hostile
 * input, and a program over ERE_PROG_MAX or a slow match shows as a crash
 * or a timeout.  Short patterns without bounds or anchors (where glibc is
 * quick and right: test_ere.c says why anchors are left out) and without
 * back-references (which we refuse and glibc takes) are also given
 * to glibc's regcomp and regexec, and the two must agree: on refusal (but
 * for ERE_STACK_MAX) and on the match.
 */
#include <regex.h>
#include <string.h>

#include "common/ere.h"
#include "fuzz/fuzz.h"

/* Longest pattern given to glibc too. */
#define FZ_GLIBC_PATTERN_MAX 24
/* Most repetition operators in a pattern given to glibc.  Its regcomp
 * copies the operand of every '+' and '?', so stacked and nested ones grow
 * its automaton exponentially: "()" and 11 '+' take 5 s, and each '+' more
 * about 4 times that; the CI smoke hit such a timeout, glibc's, not ours.
 * With 6 the worst found takes 4 ms. */
#define FZ_GLIBC_REPS_MAX 6

/* Whether glibc can be the oracle for pattern p. */
static bool fz_glibc_fits(const char *p, size_t n)
{
    if (n > FZ_GLIBC_PATTERN_MAX)
        return false;
    int reps = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)p[i];
        if (c < 0x20 || c > 0x7e || c == '{' || c == '^' || c == '$')
            return false;
        if ((c == '*' || c == '+' || c == '?') && ++reps > FZ_GLIBC_REPS_MAX)
            return false;
        if (c == '\\' && i + 1 < n && strchr("bB<>`'123456789", p[i + 1]))
            return false; /* anchors, and back-references (we refuse them) */
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t plen = nul ? (size_t)(nul - data) : size;
    char *pattern = malloc(plen + 1);
    if (!pattern)
        return 0;
    memcpy(pattern, data, plen);
    pattern[plen] = 0;
    const uint8_t *subj = nul ? nul + 1 : data + size;
    size_t slen = (size_t)(data + size - subj);
    char err[160];
    struct ere *re = ere_compile(pattern, plen, err, sizeof(err));
    FZ_CHECK(re || (err[0] && memchr(err, 0, sizeof(err))));
    int m = re ? ere_match(re, subj, slen) : 0;
    FZ_CHECK(m == 0 || m == 1);
    FZ_CHECK(!re || ere_size(re) <= ERE_PROG_MAX);
    if (fz_glibc_fits(pattern, plen)) {
        regex_t g;
        int grc = regcomp(&g, pattern, REG_EXTENDED | REG_NOSUB);
        if (grc == 0) {
            FZ_CHECK(re || strstr(err, "in a row"));
            /* regexec reads a C string: up to the subject's first NUL. */
            const uint8_t *end = memchr(subj, 0, slen);
            size_t n = end ? (size_t)(end - subj) : slen;
            char *s = malloc(n + 1);
            if (s && re) {
                memcpy(s, subj, n);
                s[n] = 0;
                FZ_CHECK(ere_match(re, subj, n) == (regexec(&g, s, 0, NULL, 0) == 0));
            }
            free(s);
            regfree(&g);
        } else {
            FZ_CHECK(!re);
        }
    }
    ere_free(re);
    free(pattern);
    return 0;
}
