/* ere.c - POSIX extended regular expressions in linear time (see ere.h).
 *
 * Three passes: a recursive-descent parser builds a tree of nodes (each
 * node's children are a list), a bottom-up pass sizes each node's code
 * (saturating, so "((a{9999}){9999}){9999}" is refused before anything is
 * built), and the emitter writes the program.  The matcher keeps the set of
 * live instructions as a sparse set (Briggs & Torczon) and follows jumps
 * with an explicit stack, so neither the pattern nor the subject can make
 * it recurse or revisit a state at one position.
 */
#include "common/ere.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ascii.h"

#define ERE_NONE UINT32_MAX
#define ERE_INF UINT32_MAX /* an unbounded repetition's max */
/* Programs up to this many instructions match with their states on the
 * stack (6 words each); longer ones allocate them per match. */
#define ERE_STACK_STATES 256

enum ere_op {
    EOP_BYTE,   /* the byte arg */
    EOP_SET,    /* a byte in set x */
    EOP_ANY,    /* any byte but NUL */
    EOP_SPLIT,  /* go on at x and at y */
    EOP_JMP,    /* go on at x */
    EOP_ASSERT, /* go on at pc + 1 if assertion arg holds here */
    EOP_MATCH,
};

enum ere_assert {
    EA_BEGIN,  /* ^ and \` */
    EA_END,    /* $ and \' */
    EA_WORDB,  /* \b */
    EA_NWORDB, /* \B */
    EA_WSTART, /* \< */
    EA_WEND,   /* \> */
};

struct ere_insn {
    uint8_t op;
    uint8_t arg;
    uint32_t x, y;
};

struct ere {
    struct ere_insn *prog;
    uint32_t n;
    uint8_t (*sets)[32]; /* 256-bit byte sets */
    uint32_t nsets;
};

/* An empty pattern or group is an EN_CAT without children. */
enum ere_kind { EN_BYTE, EN_SET, EN_ANY, EN_ASSERT, EN_CAT, EN_ALT, EN_REP };

struct ere_node {
    uint8_t kind;
    uint8_t arg;       /* EN_BYTE: the byte; EN_ASSERT: enum ere_assert */
    uint32_t set;      /* EN_SET */
    uint32_t first;    /* EN_CAT, EN_ALT, EN_REP: the first child */
    uint32_t last;     /* EN_CAT, EN_ALT: the last child, to append */
    uint32_t next;     /* the next sibling */
    uint32_t min, max; /* EN_REP */
    uint32_t size;     /* instructions, saturated at ERE_PROG_MAX + 1 */
};

struct ere_parser {
    const uint8_t *start, *p, *end;
    struct ere_node *nodes;
    uint32_t nnodes, capnodes;
    uint8_t (*sets)[32];
    uint32_t nsets, capsets;
    int depth;
    char *err;
    size_t errlen;
    bool failed;
};

static void ere__fail(struct ere_parser *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records the first error, with the offset the parser stands at. */
static void ere__fail(struct ere_parser *ps, const char *fmt, ...)
{
    if (ps->failed)
        return;
    ps->failed = true;
    int n = snprintf(ps->err, ps->errlen, "at offset %zu: ", (size_t)(ps->p - ps->start));
    if (n < 0 || (size_t)n >= ps->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static uint32_t ere__node(struct ere_parser *ps, enum ere_kind kind)
{
    if (ps->failed)
        return ERE_NONE;
    if (ps->nnodes == ps->capnodes) {
        /* Capacity was sized from the pattern; reaching it is a bug. */
        ere__fail(ps, "pattern too complex");
        return ERE_NONE;
    }
    struct ere_node *nd = &ps->nodes[ps->nnodes];
    memset(nd, 0, sizeof(*nd));
    nd->kind = (uint8_t)kind;
    nd->first = nd->last = nd->next = ERE_NONE;
    return ps->nnodes++;
}

static void ere__append(struct ere_parser *ps, uint32_t parent, uint32_t child)
{
    if (ps->failed)
        return;
    struct ere_node *p = &ps->nodes[parent];
    if (p->first == ERE_NONE)
        p->first = child;
    else
        ps->nodes[p->last].next = child;
    p->last = child;
}

/* A new byte set, all clear; ERE_NONE once failed. */
static uint32_t ere__set(struct ere_parser *ps)
{
    if (ps->failed)
        return ERE_NONE;
    if (ps->nsets == ps->capsets) {
        ere__fail(ps, "pattern too complex");
        return ERE_NONE;
    }
    memset(ps->sets[ps->nsets], 0, 32);
    return ps->nsets++;
}

static void set_add(uint8_t *set, unsigned c)
{
    set[c >> 3] |= (uint8_t)(1u << (c & 7));
}

static bool set_has(const uint8_t *set, unsigned c)
{
    return (set[c >> 3] >> (c & 7)) & 1;
}

static bool ere__is_word(uint8_t c)
{
    return sc_is_alnum(c) || c == '_';
}

/* The C locale's classes, in the order of ere__class's names. */
enum ere_class {
    EC_ALPHA,
    EC_DIGIT,
    EC_ALNUM,
    EC_UPPER,
    EC_LOWER,
    EC_SPACE,
    EC_BLANK,
    EC_PUNCT,
    EC_PRINT,
    EC_GRAPH,
    EC_CNTRL,
    EC_XDIGIT,
    EC__COUNT
};

static bool ere__in_class(enum ere_class k, unsigned c)
{
    bool upper = c >= 'A' && c <= 'Z', lower = c >= 'a' && c <= 'z';
    bool digit = c >= '0' && c <= '9', graph = c >= 0x21 && c <= 0x7e;
    switch (k) {
    case EC_ALPHA:
        return upper || lower;
    case EC_DIGIT:
        return digit;
    case EC_ALNUM:
        return upper || lower || digit;
    case EC_UPPER:
        return upper;
    case EC_LOWER:
        return lower;
    case EC_SPACE:
        return c == ' ' || (c >= '\t' && c <= '\r');
    case EC_BLANK:
        return c == ' ' || c == '\t';
    case EC_PUNCT:
        return graph && !(upper || lower || digit);
    case EC_PRINT:
        return graph || c == ' ';
    case EC_GRAPH:
        return graph;
    case EC_CNTRL:
        return c < 0x20 || c == 0x7f;
    case EC_XDIGIT:
        return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    case EC__COUNT:
        break;
    }
    return false;
}

/* Adds class name[0..len) to set.  Returns false for an unknown name. */
static bool ere__class(uint8_t *set, const uint8_t *name, size_t len)
{
    static const char *const names[EC__COUNT] = {"alpha", "digit", "alnum", "upper",
                                                 "lower", "space", "blank", "punct",
                                                 "print", "graph", "cntrl", "xdigit"};
    for (int k = 0; k < EC__COUNT; k++) {
        if (strlen(names[k]) != len || memcmp(names[k], name, len) != 0)
            continue;
        for (unsigned c = 0; c < 256; c++)
            if (ere__in_class((enum ere_class)k, c))
                set_add(set, c);
        return true;
    }
    return false;
}

/* A byte for a message: itself if printable, else \xHH; buf holds 8. */
static const char *ere__show(char *buf, uint8_t c)
{
    if (sc_is_print(c))
        snprintf(buf, 8, "%c", c);
    else
        snprintf(buf, 8, "\\x%02x", c);
    return buf;
}

/* Reads "[.c.]" or "[=c=]" at ps->p (on the '['): one byte.  Returns the
 * byte, or -1 after an error. */
static int ere__coll(struct ere_parser *ps)
{
    uint8_t kind = ps->p[1];
    const uint8_t *q = ps->p + 2;
    if (q + 2 < ps->end && q[1] == kind && q[2] == ']') {
        ps->p = q + 3;
        return q[0];
    }
    ere__fail(ps, "[%c...%c] must hold exactly one character", kind, kind);
    return -1;
}

/* A bracket expression; ps->p is just past its '['. */
static uint32_t ere__bracket(struct ere_parser *ps)
{
    uint32_t s = ere__set(ps);
    if (s == ERE_NONE)
        return ERE_NONE;
    uint8_t *set = ps->sets[s];
    bool negate = false, first = true;
    if (ps->p < ps->end && *ps->p == '^') {
        negate = true;
        ps->p++;
    }
    for (;;) {
        if (ps->p >= ps->end) {
            ere__fail(ps, "missing ']'");
            return ERE_NONE;
        }
        uint8_t c = *ps->p;
        if (c == ']' && !first) {
            ps->p++;
            break;
        }
        first = false;
        int lo;
        if (c == '[' && ps->p + 1 < ps->end && ps->p[1] == ':') {
            const uint8_t *name = ps->p + 2, *q = name;
            while (q + 1 < ps->end && !(q[0] == ':' && q[1] == ']'))
                q++;
            if (q + 1 >= ps->end) {
                ere__fail(ps, "missing ':]'");
                return ERE_NONE;
            }
            if (!ere__class(set, name, (size_t)(q - name))) {
                ere__fail(ps, "unknown character class \"%.*s\"", (int)(q - name),
                          (const char *)name);
                return ERE_NONE;
            }
            ps->p = q + 2;
            if (ps->p + 1 < ps->end && ps->p[0] == '-' && ps->p[1] != ']') {
                ere__fail(ps, "a range cannot start or end at a class");
                return ERE_NONE;
            }
            continue;
        }
        bool equiv = c == '[' && ps->p + 1 < ps->end && ps->p[1] == '=';
        if (c == '[' && ps->p + 1 < ps->end && (ps->p[1] == '.' || ps->p[1] == '=')) {
            if ((lo = ere__coll(ps)) < 0)
                return ERE_NONE;
        } else {
            lo = c;
            ps->p++;
        }
        int hi = lo;
        if (ps->p + 1 < ps->end && ps->p[0] == '-' && ps->p[1] != ']') {
            ps->p++;
            if (equiv ||
                (ps->p[0] == '[' && ps->p + 1 < ps->end && (ps->p[1] == ':' || ps->p[1] == '='))) {
                ere__fail(ps, "a range cannot start or end at a class");
                return ERE_NONE;
            }
            if (ps->p[0] == '[' && ps->p + 1 < ps->end && ps->p[1] == '.') {
                if ((hi = ere__coll(ps)) < 0)
                    return ERE_NONE;
            } else {
                hi = *ps->p++;
            }
            if (hi < lo) {
                char a[8], b[8];
                ere__fail(ps, "range %s-%s runs backwards", ere__show(a, (uint8_t)lo),
                          ere__show(b, (uint8_t)hi));
                return ERE_NONE;
            }
            /* "[a-e-g]": POSIX leaves it undefined, glibc refuses it. */
            if (ps->p + 1 < ps->end && ps->p[0] == '-' && ps->p[1] != ']') {
                ere__fail(ps, "a range cannot start where another ends");
                return ERE_NONE;
            }
        }
        for (int k = lo; k <= hi; k++)
            set_add(set, (unsigned)k);
    }
    if (negate)
        for (int k = 0; k < 32; k++)
            set[k] = (uint8_t)~set[k];
    uint32_t nd = ere__node(ps, EN_SET);
    if (nd != ERE_NONE)
        ps->nodes[nd].set = s;
    return nd;
}

/* \w \W \s \S as a set node. */
static uint32_t ere__escape_set(struct ere_parser *ps, uint8_t e)
{
    uint32_t s = ere__set(ps);
    if (s == ERE_NONE)
        return ERE_NONE;
    uint8_t *set = ps->sets[s];
    for (unsigned c = 0; c < 256; c++) {
        bool in = (e == 'w' || e == 'W') ? ere__is_word((uint8_t)c) : ere__in_class(EC_SPACE, c);
        if (in != (e == 'W' || e == 'S'))
            set_add(set, c);
    }
    uint32_t nd = ere__node(ps, EN_SET);
    if (nd != ERE_NONE)
        ps->nodes[nd].set = s;
    return nd;
}

static uint32_t ere__byte(struct ere_parser *ps, uint8_t c)
{
    uint32_t nd = ere__node(ps, EN_BYTE);
    if (nd != ERE_NONE)
        ps->nodes[nd].arg = c;
    return nd;
}

static uint32_t ere__assert(struct ere_parser *ps, enum ere_assert a)
{
    uint32_t nd = ere__node(ps, EN_ASSERT);
    if (nd != ERE_NONE)
        ps->nodes[nd].arg = (uint8_t)a;
    return nd;
}

static uint32_t ere__alt(struct ere_parser *ps);

static uint32_t ere__atom(struct ere_parser *ps)
{
    uint8_t c = *ps->p++;
    switch (c) {
    case '(': {
        if (ps->depth >= ERE_DEPTH_MAX) {
            ps->p--;
            ere__fail(ps, "parentheses nest over %d deep", ERE_DEPTH_MAX);
            return ERE_NONE;
        }
        const uint8_t *open = ps->p - 1;
        ps->depth++;
        uint32_t in = ere__alt(ps);
        ps->depth--;
        if (ps->failed)
            return ERE_NONE;
        if (ps->p >= ps->end || *ps->p != ')') {
            ps->p = open;
            ere__fail(ps, "missing ')'");
            return ERE_NONE;
        }
        ps->p++;
        return in;
    }
    case '[':
        return ere__bracket(ps);
    case '.':
        return ere__node(ps, EN_ANY);
    case '^':
        return ere__assert(ps, EA_BEGIN);
    case '$':
        return ere__assert(ps, EA_END);
    case '\\': {
        if (ps->p >= ps->end) {
            ps->p--;
            ere__fail(ps, "trailing backslash");
            return ERE_NONE;
        }
        uint8_t e = *ps->p++;
        switch (e) {
        case 'w':
        case 'W':
        case 's':
        case 'S':
            return ere__escape_set(ps, e);
        case 'b':
            return ere__assert(ps, EA_WORDB);
        case 'B':
            return ere__assert(ps, EA_NWORDB);
        case '<':
            return ere__assert(ps, EA_WSTART);
        case '>':
            return ere__assert(ps, EA_WEND);
        case '`':
            return ere__assert(ps, EA_BEGIN);
        case '\'':
            return ere__assert(ps, EA_END);
        default:
            if (e >= '1' && e <= '9') {
                ps->p -= 2;
                ere__fail(ps,
                          "back-references (\\%c) are not POSIX extended expressions, and "
                          "matching them takes exponential time",
                          e);
                return ERE_NONE;
            }
            return ere__byte(ps, e);
        }
    }
    default:
        /* ')' here stands unmatched at the top: a literal. */
        return ere__byte(ps, c);
    }
}

/* Reads a bound's number: -1 if there is none, over ERE_DUP_MAX (not the
 * number) if it is larger. */
static long ere__count(struct ere_parser *ps)
{
    if (ps->p >= ps->end || !sc_is_digit(*ps->p))
        return -1;
    long v = 0;
    while (ps->p < ps->end && sc_is_digit(*ps->p)) {
        if (v <= ERE_DUP_MAX)
            v = v * 10 + (*ps->p - '0');
        ps->p++;
    }
    return v;
}

static bool ere__is_rep(uint8_t c)
{
    return c == '*' || c == '+' || c == '?' || c == '{';
}

/* Applies the repetition at ps->p to operand; returns the new node. */
static uint32_t ere__rep(struct ere_parser *ps, uint32_t operand)
{
    const uint8_t *at = ps->p;
    uint8_t c = *ps->p++;
    uint32_t min = 0, max = ERE_INF;
    if (c == '+') {
        min = 1;
    } else if (c == '?') {
        max = 1;
    } else if (c == '{') {
        long m = ere__count(ps), n = m;
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            n = ere__count(ps);
            if (m < 0)
                m = 0;
        }
        if (m < 0 || ps->p >= ps->end || *ps->p != '}') {
            ps->p = at;
            ere__fail(ps, "bad bound: {m}, {m,}, {m,n} or {,n}");
            return ERE_NONE;
        }
        ps->p++;
        if (m > ERE_DUP_MAX || n > ERE_DUP_MAX) {
            ps->p = at;
            ere__fail(ps, "bound over %d", ERE_DUP_MAX);
            return ERE_NONE;
        }
        if (n >= 0 && n < m) {
            ps->p = at;
            ere__fail(ps, "bound {%ld,%ld}: the maximum is under the minimum", m, n);
            return ERE_NONE;
        }
        min = (uint32_t)m;
        max = n < 0 ? ERE_INF : (uint32_t)n;
    }
    uint32_t nd = ere__node(ps, EN_REP);
    if (nd == ERE_NONE)
        return ERE_NONE;
    ps->nodes[nd].first = operand;
    ps->nodes[nd].min = min;
    ps->nodes[nd].max = max;
    return nd;
}

/* One branch: pieces up to '|', the group's ')' or the end. */
static uint32_t ere__branch(struct ere_parser *ps)
{
    uint32_t cat = ere__node(ps, EN_CAT);
    while (!ps->failed && ps->p < ps->end && *ps->p != '|' && !(*ps->p == ')' && ps->depth > 0)) {
        if (ere__is_rep(*ps->p)) {
            ere__fail(ps, "'%c' has nothing to repeat", *ps->p);
            break;
        }
        uint32_t piece = ere__atom(ps);
        if (!ps->failed && ps->p < ps->end && ere__is_rep(*ps->p) &&
            ps->nodes[piece].kind == EN_ASSERT) {
            ere__fail(ps, "'%c' cannot repeat an anchor", *ps->p);
            break;
        }
        int stacked = 0;
        while (!ps->failed && ps->p < ps->end && ere__is_rep(*ps->p)) {
            if (++stacked > ERE_STACK_MAX) {
                ere__fail(ps, "over %d repetition operators in a row", ERE_STACK_MAX);
                break;
            }
            piece = ere__rep(ps, piece);
        }
        if (!ps->failed)
            ere__append(ps, cat, piece);
    }
    return cat;
}

/* Branches separated by '|', up to the group's ')' or the end. */
static uint32_t ere__alt(struct ere_parser *ps)
{
    uint32_t alt = ere__node(ps, EN_ALT);
    ere__append(ps, alt, ere__branch(ps));
    while (!ps->failed && ps->p < ps->end && *ps->p == '|') {
        ps->p++;
        ere__append(ps, alt, ere__branch(ps));
    }
    return alt;
}

static uint32_t sat_add(uint32_t a, uint32_t b)
{
    uint64_t s = (uint64_t)a + b;
    return s > ERE_PROG_MAX ? ERE_PROG_MAX + 1 : (uint32_t)s;
}

static uint32_t sat_mul(uint32_t a, uint32_t b)
{
    uint64_t s = (uint64_t)a * b;
    return s > ERE_PROG_MAX ? ERE_PROG_MAX + 1 : (uint32_t)s;
}

/* Sizes node i's code (and its children's).  Recursion follows the tree's
 * height, which ERE_DEPTH_MAX and ERE_STACK_MAX bound. */
static uint32_t ere__size(struct ere_node *nodes, uint32_t i)
{
    struct ere_node *nd = &nodes[i];
    uint32_t s = 0;
    switch ((enum ere_kind)nd->kind) {
    case EN_BYTE:
    case EN_SET:
    case EN_ANY:
    case EN_ASSERT:
        s = 1;
        break;
    case EN_CAT:
    case EN_ALT: {
        uint32_t k = 0;
        for (uint32_t c = nd->first; c != ERE_NONE; c = nodes[c].next, k++)
            s = sat_add(s, ere__size(nodes, c));
        if (nd->kind == EN_ALT && k > 1)
            s = sat_add(s, sat_mul(2, k - 1)); /* a SPLIT and a JMP per extra branch */
        break;
    }
    case EN_REP: {
        uint32_t c = ere__size(nodes, nd->first);
        if (c == 0)
            break; /* repeating nothing is nothing */
        if (nd->max == ERE_INF)
            s = nd->min == 0 ? sat_add(c, 2) : sat_add(sat_mul(nd->min, c), 1);
        else
            s = sat_add(sat_mul(nd->min, c), sat_mul(nd->max - nd->min, sat_add(c, 1)));
        break;
    }
    }
    nd->size = s;
    return s;
}

struct ere_emit {
    struct ere_node *nodes;
    struct ere_insn *prog;
    uint32_t n;
};

static uint32_t ere__put(struct ere_emit *em, enum ere_op op, uint8_t arg, uint32_t x, uint32_t y)
{
    struct ere_insn *in = &em->prog[em->n];
    in->op = (uint8_t)op;
    in->arg = arg;
    in->x = x;
    in->y = y;
    return em->n++;
}

/* Emits node i; the sizes were checked, so the program has room. */
static void ere__emit(struct ere_emit *em, uint32_t i)
{
    const struct ere_node *nd = &em->nodes[i];
    switch ((enum ere_kind)nd->kind) {
    case EN_BYTE:
        ere__put(em, EOP_BYTE, nd->arg, 0, 0);
        break;
    case EN_SET:
        ere__put(em, EOP_SET, 0, nd->set, 0);
        break;
    case EN_ANY:
        ere__put(em, EOP_ANY, 0, 0, 0);
        break;
    case EN_ASSERT:
        ere__put(em, EOP_ASSERT, nd->arg, 0, 0);
        break;
    case EN_CAT:
        /* Children that emit nothing are skipped, so the work of emitting
         * copies follows the instructions written, whatever "()" they hold. */
        for (uint32_t c = nd->first; c != ERE_NONE; c = em->nodes[c].next)
            if (em->nodes[c].size > 0)
                ere__emit(em, c);
        break;
    case EN_ALT: {
        /* SPLIT next-branch; branch; JMP end ... last branch.  The JMPs are
         * chained through x until the end is known. */
        uint32_t jumps = ERE_NONE;
        for (uint32_t c = nd->first; c != ERE_NONE; c = em->nodes[c].next) {
            if (em->nodes[c].next == ERE_NONE) {
                ere__emit(em, c);
                break;
            }
            uint32_t split = ere__put(em, EOP_SPLIT, 0, em->n + 1, 0);
            ere__emit(em, c);
            jumps = ere__put(em, EOP_JMP, 0, jumps, 0);
            em->prog[split].y = em->n;
        }
        while (jumps != ERE_NONE) {
            uint32_t prev = em->prog[jumps].x;
            em->prog[jumps].x = em->n;
            jumps = prev;
        }
        break;
    }
    case EN_REP: {
        uint32_t c = nd->first;
        if (em->nodes[c].size == 0)
            break;
        if (nd->max == ERE_INF && nd->min == 0) {
            uint32_t split = ere__put(em, EOP_SPLIT, 0, em->n + 1, 0);
            ere__emit(em, c);
            ere__put(em, EOP_JMP, 0, split, 0);
            em->prog[split].y = em->n;
            break;
        }
        for (uint32_t k = 1; k < nd->min; k++)
            ere__emit(em, c);
        if (nd->max == ERE_INF) {
            uint32_t top = em->n;
            ere__emit(em, c);
            ere__put(em, EOP_SPLIT, 0, top, em->n + 1);
            break;
        }
        if (nd->min > 0)
            ere__emit(em, c);
        /* max - min optional copies, each behind a SPLIT to the end; the
         * SPLITs are chained through y until the end is known. */
        uint32_t splits = ERE_NONE;
        for (uint32_t k = nd->min; k < nd->max; k++) {
            splits = ere__put(em, EOP_SPLIT, 0, em->n + 1, splits);
            ere__emit(em, c);
        }
        while (splits != ERE_NONE) {
            uint32_t prev = em->prog[splits].y;
            em->prog[splits].y = em->n;
            splits = prev;
        }
        break;
    }
    }
}

struct ere *ere_compile(const char *pattern, size_t len, char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = 0;
    if (len > ERE_PATTERN_MAX) {
        snprintf(err, errlen, "longer than %d bytes", ERE_PATTERN_MAX);
        return NULL;
    }
    struct ere_parser ps;
    memset(&ps, 0, sizeof(ps));
    ps.start = ps.p = (const uint8_t *)pattern;
    ps.end = ps.p + len;
    ps.err = err;
    ps.errlen = errlen;
    /* Every byte makes at most two nodes (an atom or a repetition, and a
     * CAT at a '|' or a '('), and the top makes an ALT and a CAT. */
    ps.capnodes = (uint32_t)(2 * len + 2);
    ps.capsets = (uint32_t)(len / 2 + 1); /* "[]" or "\w" per set */
    ps.nodes = malloc(ps.capnodes * sizeof(*ps.nodes));
    ps.sets = malloc(ps.capsets * sizeof(*ps.sets));
    struct ere *re = calloc(1, sizeof(*re));
    if (!ps.nodes || !ps.sets || !re) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* At the top a ')' is a literal, so the parse reads to the end. */
    uint32_t root = ere__alt(&ps);
    if (ps.failed)
        goto fail;
    uint32_t size = ere__size(ps.nodes, root);
    if (size + 1 > ERE_PROG_MAX) {
        snprintf(err, errlen,
                 "repeats too much: over %d instructions once {m,n} and + are expanded",
                 ERE_PROG_MAX);
        goto fail;
    }
    re->prog = malloc((size + 1) * sizeof(*re->prog));
    if (!re->prog) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    struct ere_emit em = {ps.nodes, re->prog, 0};
    ere__emit(&em, root);
    ere__put(&em, EOP_MATCH, 0, 0, 0);
    re->n = em.n;
    re->nsets = ps.nsets;
    if (ps.nsets > 0) {
        re->sets = malloc(ps.nsets * sizeof(*re->sets));
        if (!re->sets) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        memcpy(re->sets, ps.sets, ps.nsets * sizeof(*re->sets));
    }
    free(ps.nodes);
    free(ps.sets);
    return re;
fail:
    free(ps.nodes);
    free(ps.sets);
    ere_free(re);
    return NULL;
}

/* A sparse set of instructions: membership and insertion in O(1), clearing
 * by resetting n. */
struct ere_list {
    uint32_t *dense, *sparse;
    uint32_t n;
};

static bool ere__in(const struct ere_list *l, uint32_t pc)
{
    uint32_t k = l->sparse[pc];
    return k < l->n && l->dense[k] == pc;
}

/* Whether assertion a holds between s[i - 1] and s[i]. */
static bool ere__holds(enum ere_assert a, const uint8_t *s, size_t n, size_t i)
{
    bool before = i > 0 && ere__is_word(s[i - 1]);
    bool after = i < n && ere__is_word(s[i]);
    switch (a) {
    case EA_BEGIN:
        return i == 0;
    case EA_END:
        return i == n;
    case EA_WORDB:
        return before != after;
    case EA_NWORDB:
        return before == after;
    case EA_WSTART:
        return !before && after;
    case EA_WEND:
        return before && !after;
    }
    return false;
}

/* Adds pc and every instruction it reaches without reading a byte, at
 * position i, to l.  Returns true on reaching MATCH. */
static bool ere__add(const struct ere *re, struct ere_list *l, uint32_t *stack, uint32_t pc,
                     const uint8_t *s, size_t n, size_t i)
{
    uint32_t top = 0;
    stack[top++] = pc;
    while (top > 0) {
        pc = stack[--top];
        if (ere__in(l, pc))
            continue;
        l->sparse[pc] = l->n;
        l->dense[l->n++] = pc;
        const struct ere_insn *in = &re->prog[pc];
        switch ((enum ere_op)in->op) {
        case EOP_MATCH:
            return true;
        case EOP_JMP:
            stack[top++] = in->x;
            break;
        case EOP_SPLIT:
            stack[top++] = in->y;
            stack[top++] = in->x;
            break;
        case EOP_ASSERT:
            if (ere__holds((enum ere_assert)in->arg, s, n, i))
                stack[top++] = pc + 1;
            break;
        default:
            break; /* reads a byte: waits in the list */
        }
    }
    return false;
}

int ere_match(const struct ere *re, const uint8_t *s, size_t n)
{
    /* Two lists (dense and sparse each) and a stack of 2 per state: every
     * state pushes at most two others, once per position. */
    uint32_t local[6 * ERE_STACK_STATES + 2];
    uint32_t *mem = local;
    size_t words = 6 * (size_t)re->n + 2;
    if (re->n > ERE_STACK_STATES && !(mem = malloc(words * sizeof(*mem))))
        return -1;
    memset(mem, 0, 4 * (size_t)re->n * sizeof(*mem)); /* the lists: defined reads */
    struct ere_list a = {mem, mem + re->n, 0}, b = {mem + 2 * re->n, mem + 3 * re->n, 0};
    uint32_t *stack = mem + 4 * re->n;
    struct ere_list *cur = &a, *nxt = &b;
    int found = 0;
    for (size_t i = 0;; i++) {
        /* A match may start at every position. */
        if (ere__add(re, cur, stack, 0, s, n, i)) {
            found = 1;
            break;
        }
        if (i == n)
            break;
        uint8_t c = s[i];
        nxt->n = 0;
        for (uint32_t k = 0; k < cur->n; k++) {
            uint32_t pc = cur->dense[k];
            const struct ere_insn *in = &re->prog[pc];
            bool step = false;
            switch ((enum ere_op)in->op) {
            case EOP_BYTE:
                step = c == in->arg;
                break;
            case EOP_SET:
                step = set_has(re->sets[in->x], c);
                break;
            case EOP_ANY:
                step = c != 0;
                break;
            default:
                break;
            }
            if (step && ere__add(re, nxt, stack, pc + 1, s, n, i + 1)) {
                found = 1;
                break;
            }
        }
        if (found)
            break;
        struct ere_list *t = cur;
        cur = nxt;
        nxt = t;
    }
    if (mem != local)
        free(mem);
    return found;
}

size_t ere_size(const struct ere *re)
{
    return re->n;
}

void ere_free(struct ere *re)
{
    if (!re)
        return;
    free(re->prog);
    free(re->sets);
    free(re);
}
