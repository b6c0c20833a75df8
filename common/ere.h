/* ere.h - POSIX extended regular expressions, matched in linear time.
 *
 * The configuration's custom signatures (heuristics/heur.h) are patterns an
 * admin writes, matched against lines a peer sent.  glibc's regcomp takes
 * time cubic in what some short patterns expand to ("(|a){1000}(a|)*": a
 * minute), and its regexec exponential time on back-references, over lines
 * an attacker chooses ("(a*)*\1b" on 200 bytes: 10 s).  This module compiles
 * a pattern to a Thompson automaton and simulates it (one set of states per
 * subject byte): compiling is linear in the program, matching in the subject
 * times the program, whatever either holds.
 *
 * Dialect: POSIX ERE (POSIX.1-2017, 9.4) over bytes in the C locale, read
 * as glibc's regcomp(REG_EXTENDED) reads it:
 *   - branches "|", groups "( )", repetitions "*" "+" "?" "{m}" "{m,}"
 *     "{m,n}" "{,n}" (stacked ones apply in turn: "a+?" is "(a+)?");
 *   - "." (any byte but NUL), bracket expressions with ranges, [:class:],
 *     [=c=] and [.c.] for a single byte;
 *   - "^" and "$" anchor at the subject's start and end wherever they stand
 *     (no REG_NEWLINE);
 *   - a ")" with no "(" is a literal, and so is any byte after "\" but:
 *   - the GNU escapes \w \W \s \S (word, space classes), \b \B \< \> (word
 *     boundaries), \` \' (subject start and end).
 * Refused with a message: back-references \1 to \9 (not POSIX ERE, and the
 * reason regexec is exponential), a repetition with nothing to repeat ("*a",
 * "(+a)", "a|?") or of an anchor ("^*", "\b{2}"), bounds over ERE_DUP_MAX or with m > n, unknown
 * classes, backward ranges, unbalanced "(" "[", a trailing "\", and the limits below. Matching
 * answers only whether the pattern matches somewhere in the subject (regexec with REG_NOSUB): no
 * positions, no leftmost-longest.
 *
 * A compiled pattern is read-only: threads may match with it at once.
 */
#ifndef SC_COMMON_ERE_H
#define SC_COMMON_ERE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest pattern, in bytes: a signature describes one SMTP line. */
#define ERE_PATTERN_MAX 4096
/* Largest bound in {m,n}, glibc's RE_DUP_MAX. */
#define ERE_DUP_MAX 32767
/* Most instructions a pattern compiles to, once {m,n} and + are expanded:
 * ".{0,998}" (any line) takes 1,997.  Matching costs this much per byte at
 * worst. */
#define ERE_PROG_MAX 8192
/* Deepest nesting of parentheses. */
#define ERE_DEPTH_MAX 64
/* Most repetition operators in a row on one operand ("a+?" has two). */
#define ERE_STACK_MAX 4

struct ere;

/* Compiles pattern[0..len) (NUL bytes included as literals).  Returns the
 * program, or NULL with a message ("at offset N: ...", or "out of memory")
 * in err[0..errlen). */
struct ere *ere_compile(const char *pattern, size_t len, char *err, size_t errlen);

/* Whether re matches somewhere in s[0..n): 1 or 0, or -1 when the states of
 * a long program could not be allocated. */
int ere_match(const struct ere *re, const uint8_t *s, size_t n);

/* Instructions in the program (for tests and limits). */
size_t ere_size(const struct ere *re);

void ere_free(struct ere *re);

#endif
