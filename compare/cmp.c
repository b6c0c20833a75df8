/* cmp.c - pairing and diffing of two captures' sessions (see cmp.h). */
#include "compare/cmp.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ascii.h"
#include "common/buf.h"
#include "common/escape.h"
#include "common/str.h"
#include "heuristics/heur.h"

static const char *const cmp__kinds[CMP__KIND_COUNT] = {
    "masked", "removed",     "inserted",    "rewritten",
    "cut",    "tls_changed", "tcp_changed", "capture_gap",
};

const char *cmp_kind_name(enum cmp_kind k)
{
    return (unsigned)k < CMP__KIND_COUNT ? cmp__kinds[k] : "?";
}

/* ---- captures ---- */

/* Size of a capture's blocks; a larger request gets a block of its own. */
#define CMP_BLOCK_SIZE (64u * 1024u)

struct cmp__block {
    struct cmp__block *next;
    size_t used, size;
    _Alignas(max_align_t) uint8_t data[];
};

void cmp_capture_init(struct cmp_capture *c, const char *name)
{
    memset(c, 0, sizeof(*c));
    c->name = name;
}

void cmp_capture_free(struct cmp_capture *c)
{
    for (struct cmp__block *b = c->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(c->s);
    memset(c, 0, sizeof(*c));
}

/* n bytes aligned to `align` (a power of two) from c's blocks; NULL on OOM. */
static void *cmp__carve(struct cmp_capture *c, size_t n, size_t align)
{
    struct cmp__block *b = c->blocks;
    if (b) {
        size_t at = (b->used + align - 1) & ~(align - 1);
        if (at <= b->size && n <= b->size - at) {
            b->used = at + n;
            return b->data + at;
        }
    }
    if (n > CMP_BLOCK_SIZE / 4) {
        /* Its own block, behind the current one, which keeps its room. */
        struct cmp__block *own = malloc(sizeof(*own) + n);
        if (!own)
            return NULL;
        own->size = own->used = n;
        if (b) {
            own->next = b->next;
            b->next = own;
        } else {
            own->next = NULL;
            c->blocks = own;
        }
        return own->data;
    }
    struct cmp__block *nb = malloc(sizeof(*nb) + CMP_BLOCK_SIZE);
    if (!nb)
        return NULL;
    nb->next = b;
    nb->size = CMP_BLOCK_SIZE;
    nb->used = n;
    c->blocks = nb;
    return nb->data;
}

struct cmp_session *cmp_capture_new(struct cmp_capture *c)
{
    if (c->n == c->alloc) {
        size_t want = c->alloc ? c->alloc + c->alloc / 2 : 64;
        struct cmp_session *v = realloc(c->s, want * sizeof(*v));
        if (!v)
            return NULL;
        c->s = v;
        c->alloc = want;
    }
    struct cmp_session *s = &c->s[c->n++];
    memset(s, 0, sizeof(*s));
    s->client = s->server = s->file = s->findings = "";
    return s;
}

const char *cmp_capture_str(struct cmp_capture *c, const char *str)
{
    size_t n = strlen(str) + 1;
    char *p = cmp__carve(c, n, 1);
    if (p)
        memcpy(p, str, n);
    return p;
}

const char *cmp_capture_file(struct cmp_capture *c, const char *name)
{
    if (!c->last_file || strcmp(c->last_file, name) != 0)
        c->last_file = cmp_capture_str(c, name);
    return c->last_file;
}

int cmp_session_endpoints(struct cmp_capture *c, struct cmp_session *s, const char *client,
                          const char *server)
{
    size_t nc = strlen(client) + 1, ns = strlen(server) + 1;
    char *p = cmp__carve(c, nc + ns, 1);
    if (!p)
        return -1;
    memcpy(p, client, nc);
    memcpy(p + nc, server, ns);
    s->client = p;
    s->server = p + nc;
    const char *colon = strrchr(s->server, ':');
    size_t host = colon ? (size_t)(colon - s->server) : ns - 1;
    s->host_len = (uint16_t)(host < UINT16_MAX ? host : UINT16_MAX);
    return 0;
}

/* Gives direction d of s room for `want` lines, keeping those it has. */
static int cmp__line_room(struct cmp_capture *c, struct cmp_session *s, int d, size_t want)
{
    if (want <= s->line_cap[d])
        return 0;
    struct cmp_line *v = cmp__carve(c, want * sizeof(*v), _Alignof(struct cmp_line));
    if (!v)
        return -1;
    if (s->nline[d])
        memcpy(v, s->line[d], s->nline[d] * sizeof(*v));
    s->line[d] = v; /* the old array stays in its block until the capture goes */
    s->line_cap[d] = want;
    return 0;
}

int cmp_session_lines(struct cmp_capture *c, struct cmp_session *s, const size_t n[2])
{
    for (int d = 0; d < 2; d++) {
        size_t want = s->nline[d] + (n[d] < CMP_LINES_MAX ? n[d] : CMP_LINES_MAX);
        if (want > CMP_LINES_MAX)
            want = CMP_LINES_MAX;
        if (cmp__line_room(c, s, d, want) != 0)
            return -1;
    }
    return 0;
}

struct cmp_tls *cmp_session_tls(struct cmp_capture *c, struct cmp_session *s)
{
    struct cmp_tls *t = cmp__carve(c, sizeof(*t), _Alignof(struct cmp_tls));
    if (t)
        memset(t, 0, sizeof(*t));
    s->tls = t;
    return t;
}

int cmp_session_add_line(struct cmp_capture *c, struct cmp_session *s, enum sc_dir dir,
                         enum smtp_line_kind kind, uint16_t code, uint32_t len, const uint8_t *text,
                         uint32_t text_len, uint64_t frame, sc_time ts)
{
    if (dir > SC_DIR_S2C)
        return 0;
    if (s->nline[dir] >= CMP_LINES_MAX) {
        s->lines_dropped++;
        return 0;
    }
    size_t n = s->nline[dir];
    size_t grow = n ? (2 * n < CMP_LINES_MAX ? 2 * n : CMP_LINES_MAX) : 16;
    if (n == s->line_cap[dir] && cmp__line_room(c, s, (int)dir, grow) != 0)
        return -1;
    uint8_t *t = cmp__carve(c, (size_t)text_len + 1, 1);
    if (!t)
        return -1;
    memcpy(t, text, text_len);
    t[text_len] = 0;
    struct cmp_line *l = &s->line[dir][n];
    memset(l, 0, sizeof(*l));
    l->text = t;
    l->text_len = text_len;
    l->kind = kind;
    l->code = code;
    l->len = len;
    l->frame = frame;
    l->ts = ts;
    s->nline[dir]++;
    return 0;
}

/* ---- line equality and the diff ---- */

static bool cmp__line_eq(const struct cmp_line *a, const struct cmp_line *b)
{
    return a->kind == b->kind && a->len == b->len && a->text_len == b->text_len &&
           memcmp(a->text, b->text, a->text_len) == 0;
}

/* The lines of one direction that take part in alignment: gaps are left
 * out (they are capture facts, not dialogue) and remembered apart. */
struct cmp__seq {
    const struct cmp_line **v;
    size_t n;
    size_t *gap_before; /* gaps seen before v[i] (index n: at the end) */
};

static int cmp__seq_build(struct cmp__seq *q, const struct cmp_session *s, enum sc_dir d)
{
    memset(q, 0, sizeof(*q));
    size_t n = s->nline[d];
    q->v = calloc(n + 1, sizeof(*q->v));
    q->gap_before = calloc(n + 1, sizeof(*q->gap_before));
    if (!q->v || !q->gap_before)
        return -1;
    size_t gaps = 0;
    for (size_t i = 0; i < n; i++) {
        const struct cmp_line *l = &s->line[d][i];
        if (l->kind == SMTP_L_GAP) {
            gaps++;
            continue;
        }
        q->gap_before[q->n] = gaps;
        q->v[q->n++] = l;
    }
    q->gap_before[q->n] = gaps;
    return 0;
}

static void cmp__seq_free(struct cmp__seq *q)
{
    free(q->v);
    free(q->gap_before);
}

enum cmp__op { OP_EQ, OP_DEL, OP_INS };

struct cmp__edit {
    enum cmp__op op;
    size_t a, b; /* indexes into the sequences (a for EQ/DEL, b for EQ/INS) */
};

/* Myers' O(ND) diff (1986) with the trace kept for the edit script.  Beyond
 * CMP_EDIT_MAX edits the rest is one block of deletions and insertions.
 * Returns the number of edits written to *out (allocated), or -1 on OOM. */
static long cmp__diff(const struct cmp__seq *A, const struct cmp__seq *B, struct cmp__edit **out)
{
    size_t n = A->n, m = B->n;
    size_t maxd = n + m < CMP_EDIT_MAX ? n + m : CMP_EDIT_MAX;
    size_t off = maxd + 1, width = 2 * maxd + 3;
    long *v = calloc(width, sizeof(*v));
    long **trace = calloc(maxd + 1, sizeof(*trace));
    struct cmp__edit *e = malloc((n + m + 1) * sizeof(*e));
    if (!v || !trace || !e) {
        free(v);
        free(trace);
        free(e);
        return -1;
    }
    long *V = v + off; /* V[k] for k in -d..d */
    long found = -1;
    for (size_t d = 0; d <= maxd && found < 0; d++) {
        for (long k = -(long)d; k <= (long)d; k += 2) {
            long x;
            if (k == -(long)d || (k != (long)d && V[k - 1] < V[k + 1]))
                x = V[k + 1];
            else
                x = V[k - 1] + 1;
            long y = x - k;
            while ((size_t)x < n && y >= 0 && (size_t)y < m && cmp__line_eq(A->v[x], B->v[y])) {
                x++;
                y++;
            }
            V[k] = x;
            if ((size_t)x >= n && y >= 0 && (size_t)y >= m) {
                found = (long)d;
                break;
            }
        }
        /* Keep v[-d..d] of this round: O(D^2) in all. */
        trace[d] = malloc((2 * d + 1) * sizeof(long));
        if (!trace[d]) {
            found = -2;
            break;
        }
        memcpy(trace[d], V - (long)d, (2 * d + 1) * sizeof(long));
    }
    size_t ne = 0;
    if (found >= 0) {
        /* Walk back from (n, m), collecting the edits in reverse. */
        long x = (long)n, y = (long)m;
        for (long d = found; d >= 0; d--) {
            long k = x - y;
            long pk;
            /* trace[d - 1][j] is v[j - (d - 1)] of round d - 1. */
            const long *pv = d > 0 ? trace[d - 1] : NULL;
            if (d == 0)
                pk = 0;
            else if (k == -d || (k != d && pv[k - 1 + d - 1] < pv[k + 1 + d - 1]))
                pk = k + 1;
            else
                pk = k - 1;
            long px = d == 0 ? 0 : pv[pk + d - 1];
            long py = px - pk;
            while (x > px && y > py) {
                x--;
                y--;
                e[ne++] = (struct cmp__edit){OP_EQ, (size_t)x, (size_t)y};
            }
            if (d > 0) {
                if (x == px)
                    e[ne++] = (struct cmp__edit){OP_INS, (size_t)x, (size_t)py};
                else
                    e[ne++] = (struct cmp__edit){OP_DEL, (size_t)px, (size_t)y};
            }
            x = px;
            y = py;
        }
        for (size_t i = 0; i < ne / 2; i++) {
            struct cmp__edit t = e[i];
            e[i] = e[ne - 1 - i];
            e[ne - 1 - i] = t;
        }
    } else if (found == -1) {
        /* Too different: the common head, then everything else changed. */
        size_t h = 0;
        while (h < n && h < m && cmp__line_eq(A->v[h], B->v[h])) {
            e[ne++] = (struct cmp__edit){OP_EQ, h, h};
            h++;
        }
        for (size_t i = h; i < n; i++)
            e[ne++] = (struct cmp__edit){OP_DEL, i, h};
        for (size_t j = h; j < m; j++)
            e[ne++] = (struct cmp__edit){OP_INS, n, j};
    }
    for (size_t d = 0; d <= maxd; d++)
        free(trace[d]);
    free(trace);
    free(v);
    if (found == -2) {
        free(e);
        return -1;
    }
    *out = e;
    return (long)ne;
}

/* ---- classification ---- */

/* A same-length change where the receiver's bytes are X or '*' runs (the
 * A4 counting letter allowed at the end), blanks and 2/0 kept as in A1. */
static bool cmp__is_mask(const struct cmp_line *src, const struct cmp_line *dst)
{
    if (src->len != dst->len || src->text_len != dst->text_len || src->text_len == 0)
        return false;
    size_t changed = 0;
    for (size_t i = 0; i < dst->text_len; i++) {
        uint8_t a = src->text[i], b = dst->text[i];
        if (a == b)
            continue;
        changed++;
        bool last = i + 1 == dst->text_len;
        if (b == 'X' || b == '*')
            continue;
        if (last && b >= 'A' && b <= 'Z' && i > 0 && dst->text[i - 1] == 'X')
            continue;
        return false;
    }
    return changed > 0;
}

static const char *cmp__rule_name(enum heur_rule r)
{
    return heur_rules()[r].id;
}

static enum cmp_sev cmp__rule_sev(const char *rule)
{
    for (int i = 0; i < HR__COUNT; i++)
        if (rule && strcmp(heur_rules()[i].id, rule) == 0)
            return (enum cmp_sev)heur_rules()[i].severity;
    return CMP_MEDIUM;
}

/* The keyword of an EHLO reply line ("250-STARTTLS" -> STARTTLS). */
static bool cmp__keyword_is(const struct cmp_line *l, const char *kw)
{
    size_t n = strlen(kw);
    if (l->text_len < 4 + n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (sc_to_upper(l->text[4 + i]) != (uint8_t)kw[i])
            return false;
    return l->text_len == 4 + n || l->text[4 + n] == ' ' || l->text[4 + n] == '=';
}

static bool cmp__verb_is(const struct cmp_line *l, const char *verb)
{
    size_t n = strlen(verb);
    if (l->text_len < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (sc_to_upper(l->text[i]) != (uint8_t)verb[i])
            return false;
    return l->text_len == n || l->text[n] == ' ';
}

/* The rule a dialogue difference supports, from the sender's line (src)
 * and the receiver's (dst); either may be NULL. */
static const char *cmp__dialogue_rule(enum sc_dir d, enum cmp_kind k, const struct cmp_line *src,
                                      const struct cmp_line *dst, bool banner)
{
    const struct cmp_line *l = src ? src : dst;
    if (d == SC_DIR_S2C) {
        if (banner && k == CMP_MASKED)
            return cmp__rule_name(HR_BANNER_MASKED);
        if (src && src->code == 220 && src->text_len > 3 && k == CMP_MASKED)
            return cmp__rule_name(HR_MULTILINE_BANNER_BROKEN); /* a continuation line (A2) */
        if (banner && k == CMP_REWRITTEN && dst && dst->text_len >= 3 && dst->text[3] != '-' &&
            src && src->text_len >= 3 && src->text[3] == '-')
            return cmp__rule_name(HR_MULTILINE_BANNER_BROKEN);
        if (l->code == 250 && (k == CMP_MASKED || k == CMP_REMOVED))
            return cmp__keyword_is(l, "STARTTLS") ? cmp__rule_name(HR_STARTTLS_STRIPPED)
                                                  : cmp__rule_name(HR_EHLO_KEYWORD_MASKED);
        if (k == CMP_INSERTED && l->code == 454)
            return cmp__rule_name(HR_STARTTLS_STRIPPED);
        if (k == CMP_INSERTED && (l->code == 502 || l->code == 500))
            return cmp__rule_name(HR_EHLO_DOWNGRADED);
        return NULL;
    }
    if (k == CMP_MASKED)
        return src && cmp__verb_is(src, "STARTTLS") ? cmp__rule_name(HR_STARTTLS_STRIPPED)
                                                    : cmp__rule_name(HR_COMMAND_MASKED);
    if (k == CMP_REWRITTEN && src && dst && cmp__verb_is(src, "EHLO") && cmp__verb_is(dst, "NOOP"))
        return cmp__rule_name(HR_EHLO_DOWNGRADED);
    if (k == CMP_REMOVED && src && cmp__verb_is(src, "STARTTLS"))
        return cmp__rule_name(HR_STARTTLS_STRIPPED);
    if (k == CMP_REMOVED && src && cmp__verb_is(src, "EHLO"))
        return cmp__rule_name(HR_EHLO_DOWNGRADED);
    return NULL;
}

struct cmp__out {
    struct cmp_pair *p;
    size_t alloc;
};

static struct cmp_diff *cmp__add(struct cmp__out *o, enum cmp_kind k, enum sc_dir d,
                                 const struct cmp_line *out_line, const struct cmp_line *in_line,
                                 const char *rule, enum cmp_sev sev, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

static struct cmp_diff *cmp__add(struct cmp__out *o, enum cmp_kind k, enum sc_dir d,
                                 const struct cmp_line *out_line, const struct cmp_line *in_line,
                                 const char *rule, enum cmp_sev sev, const char *fmt, ...)
{
    struct cmp_pair *p = o->p;
    if (p->nd >= CMP_DIFFS_PER_PAIR) {
        p->dropped++;
        return NULL;
    }
    if (p->nd == o->alloc) {
        size_t want = o->alloc ? o->alloc * 2 : 8;
        struct cmp_diff *v = realloc(p->d, want * sizeof(*v));
        if (!v) {
            p->dropped++;
            return NULL;
        }
        p->d = v;
        o->alloc = want;
    }
    struct cmp_diff *df = &p->d[p->nd++];
    memset(df, 0, sizeof(*df));
    df->kind = k;
    df->dir = d;
    df->line[CMP_OUTSIDE] = out_line;
    df->line[CMP_INSIDE] = in_line;
    df->frame[CMP_OUTSIDE] = out_line ? out_line->frame : 0;
    df->frame[CMP_INSIDE] = in_line ? in_line->frame : 0;
    df->rule = rule;
    df->severity = sev;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(df->what, sizeof(df->what), fmt, ap);
    va_end(ap);
    return df;
}

/* Escaped bytes of a line for a detail text. */
static void cmp__esc(char *out, size_t outlen, const struct cmp_line *l)
{
    struct sc_buf b;
    sc_buf_init(&b, outlen > 1 ? outlen - 1 : 1);
    if (l)
        sc_escape(&b, l->text, l->text_len);
    sc_strlcpy(out, outlen, sc_buf_str(&b));
    sc_buf_free(&b);
}

/* A changed line: the byte range that differs, escaped, for the detail. */
static void cmp__byte_diff(char *out, size_t outlen, const struct cmp_line *a,
                           const struct cmp_line *b)
{
    size_t n = a->text_len < b->text_len ? a->text_len : b->text_len;
    size_t lo = 0;
    while (lo < n && a->text[lo] == b->text[lo])
        lo++;
    size_t ea = a->text_len, eb = b->text_len;
    while (ea > lo && eb > lo && a->text[ea - 1] == b->text[eb - 1]) {
        ea--;
        eb--;
    }
    struct sc_buf x, y;
    sc_buf_init(&x, 80);
    sc_buf_init(&y, 80);
    sc_escape(&x, a->text + lo, ea - lo);
    sc_escape(&y, b->text + lo, eb - lo);
    snprintf(out, outlen, "bytes %zu-%zu: \"%s\" -> \"%s\"", lo, ea, sc_buf_str(&x),
             sc_buf_str(&y));
    sc_buf_free(&x);
    sc_buf_free(&y);
}

/* Whether the sequence has a gap between its lines at - 1 and end (the
 * stretch [at, end) and its borders). */
static bool cmp__gaps_in(const struct cmp__seq *q, size_t at, size_t end)
{
    if (end > q->n)
        end = q->n;
    if (at > end)
        at = end;
    size_t before = at > 0 ? q->gap_before[at - 1] : 0;
    return q->gap_before[end] > before;
}

/* The rule a cut supports: what the client side's own analysis found, or
 * the line where it happened. */
static const char *cmp__cut_rule(enum sc_dir d, const struct cmp_line *l,
                                 const struct cmp_session *outside)
{
    if (strstr(outside->findings, "dot_split_drop"))
        return cmp__rule_name(HR_DOT_SPLIT_DROP);
    if (strstr(outside->findings, "limit_drop"))
        return cmp__rule_name(HR_LIMIT_DROP);
    if (l->kind == SMTP_L_TLS)
        return cmp__rule_name(HR_STARTTLS_FAILED);
    if (d == SC_DIR_C2S && l->kind == SMTP_L_COMMAND && l->len > 510)
        return cmp__rule_name(HR_LIMIT_DROP);
    return NULL;
}

/* One direction of one pair. */
static int cmp__direction(struct cmp__out *o, enum sc_dir d)
{
    struct cmp_session *so = o->p->s[CMP_OUTSIDE], *si = o->p->s[CMP_INSIDE];
    struct cmp__seq A, B;
    memset(&A, 0, sizeof(A));
    memset(&B, 0, sizeof(B));
    if (cmp__seq_build(&A, so, d) != 0 || cmp__seq_build(&B, si, d) != 0) {
        cmp__seq_free(&A);
        cmp__seq_free(&B);
        return -1;
    }
    struct cmp__edit *e = NULL;
    long ne = cmp__diff(&A, &B, &e);
    if (ne < 0) {
        cmp__seq_free(&A);
        cmp__seq_free(&B);
        return -1;
    }
    /* The sender's side: outside for c2s, inside for s2c. */
    enum cmp_side src = d == SC_DIR_C2S ? CMP_OUTSIDE : CMP_INSIDE;
    size_t i = 0;
    while (i < (size_t)ne) {
        if (e[i].op == OP_EQ) {
            i++;
            continue;
        }
        /* A hunk: deletions (outside only) and insertions (inside only). */
        const struct cmp_line *dl[64], *il[64];
        size_t nd = 0, ni = 0, ndel_all = 0, nins_all = 0;
        size_t a_at = e[i].a, b_at = e[i].b;
        size_t a_end = a_at, b_end = b_at; /* the hunk spans [at, end) on each side */
        while (i < (size_t)ne && e[i].op != OP_EQ) {
            if (e[i].op == OP_DEL)
                a_end = e[i].a + 1;
            else
                b_end = e[i].b + 1;
            if (e[i].op == OP_DEL) {
                if (nd < 64)
                    dl[nd++] = A.v[e[i].a];
                ndel_all++;
            } else {
                if (ni < 64)
                    il[ni++] = B.v[e[i].b];
                nins_all++;
            }
            i++;
        }
        bool tail = i == (size_t)ne;
        size_t pairs = nd < ni ? nd : ni;
        /* Bytes missing from a capture inside this stretch (between the
         * equal lines around it) explain what differs there. */
        bool gap_a = cmp__gaps_in(&A, a_at, a_end), gap_b = cmp__gaps_in(&B, b_at, b_end);
        if (gap_a || gap_b) {
            /* One difference for the stretch, pointing at its first lines. */
            cmp__add(o, CMP_CAPTURE_GAP, d, nd ? dl[0] : NULL, ni ? il[0] : NULL, NULL, CMP_INFO,
                     "the %s capture is missing bytes here (capture loss, not the device): %zu "
                     "line%s differ",
                     gap_a && gap_b ? "outside and inside"
                     : gap_a        ? "outside"
                                    : "inside",
                     ndel_all + nins_all, ndel_all + nins_all == 1 ? "" : "s");
            continue;
        }
        for (size_t k = 0; k < pairs; k++) {
            const struct cmp_line *ol = dl[k], *il2 = il[k];
            const struct cmp_line *sl = src == CMP_OUTSIDE ? ol : il2;
            const struct cmp_line *rl = src == CMP_OUTSIDE ? il2 : ol;
            /* The greeting: the server's first line. */
            bool banner = d == SC_DIR_S2C && (sl == &si->line[d][0] || sl == &so->line[d][0]);
            enum cmp_kind k2 = cmp__is_mask(sl, rl) ? CMP_MASKED : CMP_REWRITTEN;
            const char *rule = cmp__dialogue_rule(d, k2, sl, rl, banner);
            char det[200];
            cmp__byte_diff(det, sizeof(det), sl, rl);
            cmp__add(o, k2, d, ol, il2, rule, rule ? cmp__rule_sev(rule) : CMP_MEDIUM, "%s", det);
        }
        /* Lines on one side only. */
        for (int side = 0; side < 2; side++) {
            const struct cmp_line **v = side == CMP_OUTSIDE ? dl : il;
            size_t cnt = side == CMP_OUTSIDE ? nd : ni;
            size_t all = side == CMP_OUTSIDE ? ndel_all : nins_all;
            if (cnt <= pairs)
                continue;
            for (size_t k = pairs; k < cnt; k++) {
                const struct cmp_line *l = v[k];
                const struct cmp_line *ol = side == CMP_OUTSIDE ? l : NULL;
                const struct cmp_line *il2 = side == CMP_OUTSIDE ? NULL : l;
                char t[160];
                cmp__esc(t, sizeof(t), l);
                bool is_src = (enum cmp_side)side == src;
                if (tail && is_src) {
                    /* The sender's side goes on, the receiver's stops: cut. */
                    const char *rule = cmp__cut_rule(d, l, so);
                    cmp__add(o, CMP_CUT, d, ol, il2, rule, rule ? cmp__rule_sev(rule) : CMP_MEDIUM,
                             "the %s side stops before \"%s\"%s",
                             side == CMP_OUTSIDE ? "inside" : "outside", t,
                             all > cnt || cnt - k > 1 ? " (and what follows)" : "");
                    break;
                }
                enum cmp_kind k2 = is_src ? CMP_REMOVED : CMP_INSERTED;
                const char *rule =
                    cmp__dialogue_rule(d, k2, is_src ? l : NULL, is_src ? NULL : l, false);
                cmp__add(o, k2, d, ol, il2, rule, rule ? cmp__rule_sev(rule) : CMP_MEDIUM, "\"%s\"",
                         t);
            }
            if (all > cnt)
                o->p->dropped += all - cnt;
        }
    }
    free(e);
    cmp__seq_free(&A);
    cmp__seq_free(&B);
    return 0;
}

/* Connection-level differences: TLS, TCP, resets. */
static void cmp__connection(struct cmp__out *o)
{
    const struct cmp_session *a = o->p->s[CMP_OUTSIDE], *b = o->p->s[CMP_INSIDE];
    if (a->tls && b->tls) {
        const struct cmp_tls *ta = a->tls, *tb = b->tls;
        if (strcmp(ta->cert_sha256, tb->cert_sha256) != 0 && ta->cert_sha256[0] &&
            tb->cert_sha256[0])
            cmp__add(o, CMP_TLS_CHANGED, SC_DIR_S2C, NULL, NULL, cmp__rule_name(HR_TLS_INTERCEPTED),
                     cmp__rule_sev("tls_intercepted"),
                     "certificate %.16s... (issuer %s) outside, %.16s... (issuer %s) inside",
                     ta->cert_sha256, ta->cert_issuer, tb->cert_sha256, tb->cert_issuer);
        if (strcmp(ta->version, tb->version) != 0 && ta->version[0] && tb->version[0])
            cmp__add(o, CMP_TLS_CHANGED, SC_DIR_S2C, NULL, NULL, cmp__rule_name(HR_TLS_INTERCEPTED),
                     cmp__rule_sev("tls_intercepted"), "TLS version %s outside, %s inside",
                     ta->version, tb->version);
        if (strcmp(ta->cipher, tb->cipher) != 0 && ta->cipher[0] && tb->cipher[0])
            cmp__add(o, CMP_TLS_CHANGED, SC_DIR_S2C, NULL, NULL, cmp__rule_name(HR_TLS_INTERCEPTED),
                     cmp__rule_sev("tls_intercepted"), "cipher %s outside, %s inside", ta->cipher,
                     tb->cipher);
    }
    for (int d = 0; d < 2; d++) {
        const struct cmp_tcp *x = &a->tcp[d], *y = &b->tcp[d];
        const char *who = d == SC_DIR_C2S ? "client" : "server";
        if (!x->syn || !y->syn)
            continue;
        if (x->isn != y->isn)
            cmp__add(o, CMP_TCP_CHANGED, (enum sc_dir)d, NULL, NULL, NULL, CMP_INFO,
                     "%s ISN %u outside, %u inside (offset %u): sequence numbers rewritten", who,
                     x->isn, y->isn, y->isn - x->isn);
        if (x->mss_present != y->mss_present || x->mss != y->mss)
            cmp__add(o, CMP_TCP_CHANGED, (enum sc_dir)d, NULL, NULL, NULL, CMP_INFO,
                     "%s MSS %u outside, %u inside%s", who, x->mss_present ? x->mss : 0,
                     y->mss_present ? y->mss : 0,
                     x->mss_present && y->mss_present && x->mss != y->mss ? " (clamped)" : "");
        if (x->wscale_present != y->wscale_present || x->wscale != y->wscale)
            cmp__add(o, CMP_TCP_CHANGED, (enum sc_dir)d, NULL, NULL, NULL, CMP_LOW,
                     "%s window scale %d outside, %d inside", who,
                     x->wscale_present ? x->wscale : -1, y->wscale_present ? y->wscale : -1);
        if (x->ttl && y->ttl && x->ttl != y->ttl) {
            int hops = (int)x->ttl - (int)y->ttl;
            cmp__add(o, CMP_TCP_CHANGED, (enum sc_dir)d, NULL, NULL, NULL, CMP_INFO,
                     "%s TTL %u outside, %u inside (%s%d)", who, x->ttl, y->ttl,
                     hops > 0 ? "+" : "", hops);
        }
        bool pat_x = x->ipid_small > x->ipid_big, pat_y = y->ipid_small > y->ipid_big;
        bool zero_x = x->ipid_zero > x->ipid_small + x->ipid_big;
        bool zero_y = y->ipid_zero > y->ipid_small + y->ipid_big;
        if (x->ipid_small + x->ipid_big + x->ipid_zero >= 3 &&
            y->ipid_small + y->ipid_big + y->ipid_zero >= 3 && (pat_x != pat_y || zero_x != zero_y))
            cmp__add(o, CMP_TCP_CHANGED, (enum sc_dir)d, NULL, NULL, NULL, CMP_INFO,
                     "%s IP id %s outside, %s inside: rewritten in between", who,
                     zero_x  ? "always 0"
                     : pat_x ? "counting"
                             : "random",
                     zero_y  ? "always 0"
                     : pat_y ? "counting"
                             : "random");
        if (x->sack_perm != y->sack_perm || x->timestamps != y->timestamps)
            cmp__add(o, CMP_TCP_CHANGED, (enum sc_dir)d, NULL, NULL, NULL, CMP_LOW,
                     "%s options: SACK %s/%s, timestamps %s/%s (outside/inside)", who,
                     x->sack_perm ? "on" : "off", y->sack_perm ? "on" : "off",
                     x->timestamps ? "on" : "off", y->timestamps ? "on" : "off");
    }
    /* A RST on one side only.  Seen where it arrives but not where its
     * claimed sender is: the device made it.  Seen only next to its sender:
     * the device did not pass it on (the connection was already dropped). */
    for (int d = 0; d < 2; d++) {
        bool ra = a->tcp[d].rst, rb = b->tcp[d].rst;
        if (ra == rb)
            continue;
        enum cmp_side sender = d == SC_DIR_C2S ? CMP_OUTSIDE : CMP_INSIDE;
        enum cmp_side seen = ra ? CMP_OUTSIDE : CMP_INSIDE;
        const struct cmp_tcp *t = ra ? &a->tcp[d] : &b->tcp[d];
        bool injected = seen != sender;
        cmp__add(o, CMP_CUT, (enum sc_dir)d, NULL, NULL,
                 injected ? cmp__rule_name(HR_INJECTED_RESET) : NULL,
                 injected ? cmp__rule_sev("injected_reset") : CMP_INFO,
                 "a RST from the %s appears %s only (frame %llu, TTL %u): %s",
                 d == SC_DIR_C2S ? "client" : "server", seen == CMP_OUTSIDE ? "outside" : "inside",
                 (unsigned long long)t->rst_frame, t->rst_ttl,
                 injected ? "the device sent it in the peer's name"
                          : "the device did not pass it on");
    }
}

/* ---- pairing ---- */

/* Gives every session of c its reply codes in one array (cmp__similar
 * reads them for every scored pair).  Returns 0, -1 on OOM. */
static int cmp__codes(struct cmp_capture *c)
{
    for (size_t i = 0; i < c->n; i++) {
        struct cmp_session *s = &c->s[i];
        size_t n = s->nline[SC_DIR_S2C];
        if (s->codes || n == 0)
            continue;
        uint16_t *v = cmp__carve(c, n * sizeof(*v), _Alignof(uint16_t));
        if (!v)
            return -1;
        for (size_t k = 0; k < n; k++)
            v[k] = s->line[SC_DIR_S2C][k].code;
        s->codes = v;
    }
    return 0;
}

/* Shape similarity of two dialogues, 0..1: reply codes in order and line
 * counts, which masking and NAT leave alone.  Needs cmp__codes. */
static double cmp__similar(const struct cmp_session *a, const struct cmp_session *b)
{
    size_t na = a->nline[SC_DIR_S2C], nb = b->nline[SC_DIR_S2C];
    size_t same = 0, n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++)
        same += a->codes[i] == b->codes[i];
    double codes = na + nb ? (2.0 * (double)same) / (double)(na + nb) : 1.0;
    double ca = (double)a->nline[0], cb = (double)b->nline[0];
    double counts = ca + cb > 0 ? 1.0 - fabs(ca - cb) / (ca > cb ? ca : cb) : 1.0;
    double tls = (a->tls != NULL) == (b->tls != NULL) ? 1.0 : 0.5;
    return 0.6 * codes + 0.3 * counts + 0.1 * tls;
}

/* A candidate pair: session a of A and the session at position q of B in
 * start order (byt).  16 bytes: a capture pair makes up to CMP_NEAREST per
 * session. */
struct cmp__cand {
    uint32_t a, q;
    double score;
};

/* Candidates are taken best first; equal scores in the order they were
 * found (a, then B's start order): a total order, so the pairing does not
 * depend on the sort algorithm. */
static bool cmp__cand_before(const struct cmp__cand *x, const struct cmp__cand *y)
{
    if (x->score != y->score)
        return x->score > y->score;
    return x->a != y->a ? x->a < y->a : x->q < y->q;
}

/* Moves c[i] down the heap c[0..n) (root last in cmp__cand_before order)
 * until neither child should come after it. */
static void cmp__cand_sift(struct cmp__cand *c, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && cmp__cand_before(&c[m], &c[l]))
            m = l;
        if (l + 1 < n && cmp__cand_before(&c[m], &c[l + 1]))
            m = l + 1;
        if (m == i)
            return;
        struct cmp__cand t = c[i];
        c[i] = c[m];
        c[m] = t;
        i = m;
    }
}

/* Heapsort into cmp__cand_before order: in place, no second copy (qsort's
 * merge sort makes one).  Used on one session's candidates at a time. */
static void cmp__cand_sort(struct cmp__cand *c, size_t n)
{
    for (size_t k = n / 2; k-- > 0;)
        cmp__cand_sift(c, n, k);
    for (size_t end = n; end-- > 1;) {
        struct cmp__cand t = c[0];
        c[0] = c[end];
        c[end] = t;
        cmp__cand_sift(c, end, 0);
    }
}

static int cmp__double_cmp(const void *x, const void *y)
{
    double p = *(const double *)x, q = *(const double *)y;
    return (p > q) - (p < q);
}

/* Window around the expected start of a session's partner: clocks, queueing
 * and proxies delay a side by seconds, not minutes. */
#define CMP_WINDOW_NS (60LL * SC_NS_PER_SEC)
/* Candidate partners scored per session: the nearest in start time to where
 * the partner is expected, within the window.  Farther ones lose on timing
 * anyway (exp(-dt/2)); at 10 sessions a second to one server, 128 reach 6 s
 * either side.  Without the bound, thousands of look-alike sessions within a
 * minute (one 4-tuple reused, a flood) made the candidate list quadratic:
 * 4000 sessions took 780 MB and 39 s, 20,000 never finished. */
#define CMP_NEAREST 128

static double cmp__score(const struct cmp_session *a, const struct cmp_session *b, sc_time offset)
{
    double sim = cmp__similar(a, b);
    double dt = fabs((double)(b->start - a->start - offset)) / 1e9;
    double timing = exp(-dt / 2.0);
    double sport = a->sport == b->sport ? 1.0 : 0.0;
    double cport = a->cport == b->cport ? 1.0 : 0.0;
    double host = a->host_len == b->host_len && memcmp(a->server, b->server, a->host_len) == 0;
    return 0.4 * sim + 0.3 * timing + 0.1 * sport + 0.1 * cport + 0.1 * host;
}

/* Clock offset (inside minus outside) from the clearest matches. */
static sc_time cmp__offset(const struct cmp_capture *A, const struct cmp_capture *B,
                           size_t *samples)
{
    size_t cap = 256, nd = 0;
    double *dts = malloc(cap * sizeof(*dts));
    if (!dts)
        return 0;
    size_t step = A->n > 200 ? A->n / 200 : 1;
    for (size_t i = 0; i < A->n; i += step) {
        const struct cmp_session *a = &A->s[i];
        double best = -1, second = -1, bdt = 0;
        for (size_t j = 0; j < B->n; j++) {
            const struct cmp_session *b = &B->s[j];
            if (b->sport != a->sport)
                continue;
            double sim = cmp__similar(a, b) + (a->cport == b->cport ? 0.2 : 0.0);
            if (sim > best) {
                second = best;
                best = sim;
                bdt = (double)(b->start - a->start);
            } else if (sim > second) {
                second = sim;
            }
        }
        if (best >= 0.9 && best - second > 0.05) {
            if (nd == cap) {
                double *v = realloc(dts, 2 * cap * sizeof(*v));
                if (!v)
                    break;
                dts = v;
                cap *= 2;
            }
            dts[nd++] = bdt;
        }
    }
    sc_time off = 0;
    if (nd) {
        qsort(dts, nd, sizeof(*dts), cmp__double_cmp);
        off = (sc_time)dts[nd / 2];
    }
    *samples = nd;
    free(dts);
    return off;
}

/* B's sessions in order of start time, to find each A session's window
 * by binary search. */
struct cmp__byt {
    sc_time start;
    size_t j;
};

/* By start time, then index: a total order (see cmp__cand_before). */
static int cmp__byt_cmp(const void *x, const void *y)
{
    const struct cmp__byt *p = x, *q = y;
    if (p->start != q->start)
        return (p->start > q->start) - (p->start < q->start);
    return (p->j > q->j) - (p->j < q->j);
}

/* The two best scores of one session's candidates, for the runner-up. */
struct cmp__top {
    double s1, s2;
    size_t o1; /* the other session of the best */
};

static void cmp__top_put(struct cmp__top *t, double sc, size_t other)
{
    if (sc > t->s1) {
        t->s2 = t->s1;
        t->s1 = sc;
        t->o1 = other;
    } else if (sc > t->s2) {
        t->s2 = sc;
    }
}

/* The best score among a session's candidates other than `other`. */
static double cmp__top_other(const struct cmp__top *t, size_t other)
{
    return t->o1 == other ? t->s2 : t->s1;
}

/* Candidates held at a time for one A session.  When they run out before
 * the session is paired, its window is scored again for the next ones:
 * the same scores, so the same order, and memory for CMP_RUN_KEEP
 * candidates a session instead of CMP_NEAREST. */
#define CMP_RUN_KEEP 16

/* All candidates in cmp__cand_before order, one at a time, without sorting
 * (or holding) them all.  Each A session has a run: its candidates in that
 * order, CMP_RUN_KEEP of them in its slots at a time.  A heap holds the A
 * sessions by the next candidate of their run, so its top is the first
 * candidate not yet taken of all, as in one sorted list; a run leaves the
 * heap when its session is paired or it has no candidate left. */
struct cmp__runs {
    const struct cmp_capture *A, *B;
    const struct cmp__byt *byt;
    sc_time offset;
    struct cmp__top *ta, *tb; /* the two best scores of each session */
    struct cmp__cand *c;      /* CMP_RUN_KEEP slots an A session */
    uint32_t *lo, *hi;        /* its window in byt */
    uint32_t *len, *pos;      /* candidates in its slots, and the next one */
    uint32_t *left;           /* its candidates not yet in its slots */
    uint32_t *h;              /* the heap: A sessions */
    size_t n;
    struct cmp__cand tmp[CMP_NEAREST];
};

/* The window of B sessions (in start order) scored against an A session
 * expected at `want`: the CMP_NEAREST nearest within CMP_WINDOW_NS, a
 * contiguous run [lo, hi) of byt grown from `want` one side at a time. */
static void cmp__window(const struct cmp__byt *byt, size_t n, sc_time want, size_t *plo,
                        size_t *phi)
{
    size_t l = 0, h = n;
    while (l < h) {
        size_t mid = l + (h - l) / 2;
        if (byt[mid].start < want)
            l = mid + 1;
        else
            h = mid;
    }
    size_t lo = l, hi = l;
    while (hi - lo < CMP_NEAREST) {
        /* Distances as unsigned differences: exact, and never an overflow. */
        uint64_t dl = lo > 0 ? (uint64_t)want - (uint64_t)byt[lo - 1].start : UINT64_MAX;
        uint64_t dr = hi < n ? (uint64_t)byt[hi].start - (uint64_t)want : UINT64_MAX;
        bool left = dl <= (uint64_t)CMP_WINDOW_NS, right = dr <= (uint64_t)CMP_WINDOW_NS;
        if (left && (!right || dl <= dr))
            lo--;
        else if (right)
            hi++;
        else
            break;
    }
    *plo = lo;
    *phi = hi;
}

/* Scores A session i's window and puts in its slots the first
 * CMP_RUN_KEEP of its candidates that come after `after` (all, when NULL:
 * the first time, which also counts them and notes the best scores). */
static void cmp__runs_fill(struct cmp__runs *r, uint32_t i, const struct cmp__cand *after)
{
    const struct cmp_session *a = &r->A->s[i];
    size_t n = 0;
    for (uint32_t q = r->lo[i]; q < r->hi[i]; q++) {
        size_t bj = r->byt[q].j;
        double sc = cmp__score(a, &r->B->s[bj], r->offset);
        if (sc < 0.45)
            continue;
        struct cmp__cand k = {i, q, sc};
        if (after && !cmp__cand_before(after, &k))
            continue;
        r->tmp[n++] = k;
        if (!after) {
            cmp__top_put(&r->ta[i], sc, bj);
            cmp__top_put(&r->tb[bj], sc, i);
        }
    }
    cmp__cand_sort(r->tmp, n);
    size_t keep = n < CMP_RUN_KEEP ? n : CMP_RUN_KEEP;
    if (after && keep > r->left[i])
        keep = r->left[i]; /* never: the same scores find the same candidates */
    memcpy(r->c + (size_t)i * CMP_RUN_KEEP, r->tmp, keep * sizeof(*r->tmp));
    r->len[i] = (uint32_t)keep;
    r->pos[i] = 0;
    r->left[i] = after ? r->left[i] - (uint32_t)keep : (uint32_t)(n - keep);
}

static const struct cmp__cand *cmp__runs_head(const struct cmp__runs *r, uint32_t i)
{
    return &r->c[(size_t)i * CMP_RUN_KEEP + r->pos[i]];
}

static void cmp__runs_sift(struct cmp__runs *r, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, t = i;
        if (l < r->n && cmp__cand_before(cmp__runs_head(r, r->h[l]), cmp__runs_head(r, r->h[t])))
            t = l;
        if (l + 1 < r->n &&
            cmp__cand_before(cmp__runs_head(r, r->h[l + 1]), cmp__runs_head(r, r->h[t])))
            t = l + 1;
        if (t == i)
            return;
        uint32_t x = r->h[i];
        r->h[i] = r->h[t];
        r->h[t] = x;
        i = t;
    }
}

/* The first candidate not yet taken, or NULL. */
static const struct cmp__cand *cmp__runs_top(const struct cmp__runs *r)
{
    return r->n ? cmp__runs_head(r, r->h[0]) : NULL;
}

/* Takes the top: its run goes on with its next candidate (scoring its
 * window again if its slots are used up), or leaves the heap when
 * `run_done` (its session is paired) or it has none left. */
static void cmp__runs_next(struct cmp__runs *r, bool run_done)
{
    uint32_t i = r->h[0];
    bool more = !run_done;
    if (more && ++r->pos[i] == r->len[i]) {
        more = r->left[i] > 0;
        if (more) {
            struct cmp__cand last = r->c[(size_t)i * CMP_RUN_KEEP + r->len[i] - 1];
            cmp__runs_fill(r, i, &last);
            more = r->len[i] > 0;
        }
    }
    if (!more)
        r->h[0] = r->h[--r->n];
    cmp__runs_sift(r, 0);
}

static int cmp__pair(struct cmp_capture *A, struct cmp_capture *B, struct cmp_result *res)
{
    if (cmp__codes(A) != 0 || cmp__codes(B) != 0)
        return -1;
    res->clock_offset = cmp__offset(A, B, &res->offset_samples);
    size_t na = A->n ? A->n : 1;
    struct cmp__runs *r = calloc(1, sizeof(*r));
    struct cmp__byt *byt = malloc((B->n ? B->n : 1) * sizeof(*byt));
    struct cmp__top *ta = calloc(na, sizeof(*ta));
    struct cmp__top *tb = calloc(B->n ? B->n : 1, sizeof(*tb));
    res->pairs = calloc(A->n < B->n ? na : (B->n ? B->n : 1), sizeof(*res->pairs));
    int rc = -1;
    if (!r || !byt || !ta || !tb || !res->pairs || A->n > UINT32_MAX || B->n > UINT32_MAX)
        goto out;
    *r = (struct cmp__runs){
        .A = A, .B = B, .byt = byt, .offset = res->clock_offset, .ta = ta, .tb = tb};
    r->c = malloc(na * CMP_RUN_KEEP * sizeof(*r->c));
    r->lo = malloc(na * sizeof(*r->lo));
    r->hi = malloc(na * sizeof(*r->hi));
    r->len = malloc(na * sizeof(*r->len));
    r->pos = malloc(na * sizeof(*r->pos));
    r->left = malloc(na * sizeof(*r->left));
    r->h = malloc(na * sizeof(*r->h));
    if (!r->c || !r->lo || !r->hi || !r->len || !r->pos || !r->left || !r->h)
        goto out;
    for (size_t j = 0; j < B->n; j++)
        byt[j] = (struct cmp__byt){B->s[j].start, j};
    qsort(byt, B->n, sizeof(*byt), cmp__byt_cmp);
    for (uint32_t i = 0; i < A->n; i++) {
        sc_time want;
        if (__builtin_add_overflow(A->s[i].start, res->clock_offset, &want))
            want = res->clock_offset > 0 ? INT64_MAX : INT64_MIN;
        size_t lo, hi;
        cmp__window(byt, B->n, want, &lo, &hi);
        r->lo[i] = (uint32_t)lo;
        r->hi[i] = (uint32_t)hi;
        cmp__runs_fill(r, i, NULL);
        if (r->len[i])
            r->h[r->n++] = i;
    }
    for (size_t k = r->n / 2; k-- > 0;)
        cmp__runs_sift(r, k);
    for (const struct cmp__cand *top; (top = cmp__runs_top(r)) != NULL;) {
        const struct cmp__cand k = *top;
        size_t bj = byt[k.q].j;
        struct cmp_session *a = &A->s[k.a], *b = &B->s[bj];
        /* a is not paired: its run left the heap when it was. */
        cmp__runs_next(r, !b->paired);
        if (b->paired)
            continue;
        /* The runner-up: the best other candidate of either session. */
        double ra = cmp__top_other(&ta[k.a], bj), rb = cmp__top_other(&tb[bj], k.a);
        double runner = ra > rb ? ra : rb;
        a->paired = b->paired = true;
        struct cmp_pair *p = &res->pairs[res->npairs++];
        memset(p, 0, sizeof(*p));
        p->s[CMP_OUTSIDE] = a;
        p->s[CMP_INSIDE] = b;
        p->score = k.score;
        p->confidence = k.score - runner > 0.5 ? 1.0 : (k.score - runner) * 2.0;
        p->ambiguous = runner > 0 && k.score - runner < 0.05;
        p->offset = b->start - a->start;
    }
    for (size_t i = 0; i < A->n; i++)
        res->only[CMP_OUTSIDE] += !A->s[i].paired;
    for (size_t j = 0; j < B->n; j++)
        res->only[CMP_INSIDE] += !B->s[j].paired;
    rc = 0;
out:
    if (r) {
        free(r->c);
        free(r->lo);
        free(r->hi);
        free(r->len);
        free(r->pos);
        free(r->left);
        free(r->h);
        free(r);
    }
    free(byt);
    free(ta);
    free(tb);
    return rc;
}

/* Which capture is outside: masks appear where the bytes arrive (the
 * client side for server bytes, the server side for client bytes), and
 * deleted keyword lines are missing where the bytes arrive.  TTLs are not
 * used: a proxy's own packets make them lie.  Positive: the order given is
 * right; 0: no evidence, the order given stands. */
static int cmp__orientation(const struct cmp_result *res, char *why, size_t whylen)
{
    int votes = 0, mask_votes = 0, del_votes = 0;
    for (size_t i = 0; i < res->npairs; i++) {
        const struct cmp_pair *p = &res->pairs[i];
        for (size_t k = 0; k < p->nd; k++) {
            const struct cmp_diff *d = &p->d[k];
            if (d->kind != CMP_MASKED && d->kind != CMP_REWRITTEN)
                continue;
            /* cmp__is_mask was judged with the receiver assumed; a mask seen
             * the other way round means the sides are swapped. */
            const struct cmp_line *o = d->line[CMP_OUTSIDE], *n = d->line[CMP_INSIDE];
            if (!o || !n)
                continue;
            bool out_masked = cmp__is_mask(n, o);
            bool in_masked = cmp__is_mask(o, n);
            if (d->dir == SC_DIR_S2C)
                mask_votes += out_masked ? 1 : in_masked ? -1 : 0;
            else
                mask_votes += in_masked ? 1 : out_masked ? -1 : 0;
        }
        /* EHLO keyword lines on one side only: devices delete them (O1),
         * they do not invent them, so the longer list is the server's side. */
        for (size_t k = 0; k < p->nd; k++) {
            const struct cmp_diff *d = &p->d[k];
            const struct cmp_line *l =
                d->line[CMP_OUTSIDE] ? d->line[CMP_OUTSIDE] : d->line[CMP_INSIDE];
            if (d->dir != SC_DIR_S2C || !l || l->code != 250 || l->text_len < 5 ||
                (d->kind != CMP_REMOVED && d->kind != CMP_INSERTED))
                continue;
            del_votes += d->line[CMP_INSIDE] ? 1 : -1;
        }
    }
    votes = mask_votes ? mask_votes : del_votes;
    snprintf(why, whylen, "%s (%d for the order given, %d against)",
             mask_votes ? "masks appear on the receiving side"
                        : "EHLO keyword lines are missing on the client's side",
             votes > 0 ? votes : 0, votes < 0 ? -votes : 0);
    return votes;
}

/* Where a difference sits in the dialogue: its first frame on either side;
 * connection-level differences go last. */
static uint64_t cmp__pos(const struct cmp_diff *d)
{
    uint64_t a = d->frame[0], b = d->frame[1];
    if (!a && !b)
        return UINT64_MAX;
    return !a ? b : !b ? a : a < b ? a : b;
}

static int cmp__diff_pairs(struct cmp_result *res)
{
    for (size_t i = 0; i < res->npairs; i++) {
        struct cmp__out o = {&res->pairs[i], 0};
        if (cmp__direction(&o, SC_DIR_C2S) != 0 || cmp__direction(&o, SC_DIR_S2C) != 0)
            return -1;
        cmp__connection(&o);
        /* In dialogue order (stable: insertion sort over at most
         * CMP_DIFFS_PER_PAIR entries). */
        struct cmp_diff *d = res->pairs[i].d;
        for (size_t k = 1; k < res->pairs[i].nd; k++)
            for (size_t j = k; j > 0 && cmp__pos(&d[j - 1]) > cmp__pos(&d[j]); j--) {
                struct cmp_diff t = d[j];
                d[j] = d[j - 1];
                d[j - 1] = t;
            }
    }
    return 0;
}

static void cmp__reset(struct cmp_capture *A, struct cmp_capture *B, struct cmp_result *res)
{
    for (size_t i = 0; i < res->npairs; i++)
        free(res->pairs[i].d);
    free(res->pairs);
    memset(res, 0, sizeof(*res));
    for (size_t i = 0; i < A->n; i++)
        A->s[i].paired = false;
    for (size_t j = 0; j < B->n; j++)
        B->s[j].paired = false;
}

int cmp_run(struct cmp_capture *a, struct cmp_capture *b, struct cmp_result *res)
{
    memset(res, 0, sizeof(*res));
    if (cmp__pair(a, b, res) != 0 || cmp__diff_pairs(res) != 0)
        return -1;
    char why[160];
    if (cmp__orientation(res, why, sizeof(why)) < 0) {
        /* The evidence says the second capture is the outside one. */
        cmp__reset(a, b, res);
        struct cmp_capture t = *a;
        *a = *b;
        *b = t;
        if (cmp__pair(a, b, res) != 0 || cmp__diff_pairs(res) != 0)
            return -1;
        res->swapped = true;
        sc_strlcpy(res->swap_reason, sizeof(res->swap_reason), why);
    }
    res->worst = CMP_INFO;
    for (size_t i = 0; i < res->npairs; i++)
        for (size_t k = 0; k < res->pairs[i].nd; k++) {
            const struct cmp_diff *d = &res->pairs[i].d[k];
            res->ndiffs[d->kind]++;
            if (d->severity > res->worst)
                res->worst = d->severity;
        }
    return 0;
}

void cmp_result_free(struct cmp_result *res)
{
    for (size_t i = 0; i < res->npairs; i++)
        free(res->pairs[i].d);
    free(res->pairs);
    memset(res, 0, sizeof(*res));
}

/* ---- the side-by-side view ---- */

/* Both directions of a session in capture order (frames), gaps included. */
static int cmp__merged(const struct cmp_session *s, struct cmp__seq *q, enum sc_dir **dirs)
{
    size_t n0 = s->nline[0], n1 = s->nline[1], n = n0 + n1;
    memset(q, 0, sizeof(*q));
    q->v = calloc(n + 1, sizeof(*q->v));
    q->gap_before = calloc(n + 1, sizeof(*q->gap_before));
    *dirs = calloc(n + 1, sizeof(**dirs));
    if (!q->v || !q->gap_before || !*dirs)
        return -1;
    size_t i = 0, j = 0;
    while (i < n0 || j < n1) {
        bool take0 = j >= n1 || (i < n0 && s->line[0][i].frame <= s->line[1][j].frame);
        (*dirs)[q->n] = take0 ? SC_DIR_C2S : SC_DIR_S2C;
        q->v[q->n++] = take0 ? &s->line[0][i++] : &s->line[1][j++];
    }
    return 0;
}

long cmp_rows(const struct cmp_pair *p, struct cmp_row **rows)
{
    struct cmp__seq A, B;
    memset(&A, 0, sizeof(A));
    memset(&B, 0, sizeof(B));
    enum sc_dir *da = NULL, *db = NULL;
    long nr = -1;
    struct cmp__edit *e = NULL;
    if (cmp__merged(p->s[CMP_OUTSIDE], &A, &da) != 0 || cmp__merged(p->s[CMP_INSIDE], &B, &db) != 0)
        goto out;
    long ne = cmp__diff(&A, &B, &e);
    if (ne < 0)
        goto out;
    struct cmp_row *r = calloc((size_t)ne + 1, sizeof(*r));
    if (!r)
        goto out;
    nr = 0;
    for (long i = 0; i < ne;) {
        if (e[i].op == OP_EQ) {
            r[nr++] = (struct cmp_row){{A.v[e[i].a], B.v[e[i].b]}, da[e[i].a], '='};
            i++;
            continue;
        }
        /* A hunk: pair deletions and insertions of the same direction. */
        long h = i;
        while (i < ne && e[i].op != OP_EQ)
            i++;
        bool *used = calloc((size_t)(i - h), sizeof(*used));
        if (!used) {
            free(r);
            nr = -1;
            goto out;
        }
        for (long k = h; k < i; k++) {
            if (used[k - h])
                continue;
            used[k - h] = true;
            if (e[k].op == OP_DEL) {
                long m = k + 1;
                while (m < i && (used[m - h] || e[m].op != OP_INS || db[e[m].b] != da[e[k].a]))
                    m++;
                if (m < i) {
                    used[m - h] = true;
                    r[nr++] = (struct cmp_row){{A.v[e[k].a], B.v[e[m].b]}, da[e[k].a], '!'};
                } else {
                    r[nr++] = (struct cmp_row){{A.v[e[k].a], NULL}, da[e[k].a], '<'};
                }
            } else {
                long m = k + 1;
                while (m < i && (used[m - h] || e[m].op != OP_DEL || da[e[m].a] != db[e[k].b]))
                    m++;
                if (m < i) {
                    used[m - h] = true;
                    r[nr++] = (struct cmp_row){{A.v[e[m].a], B.v[e[k].b]}, db[e[k].b], '!'};
                } else {
                    r[nr++] = (struct cmp_row){{NULL, B.v[e[k].b]}, db[e[k].b], '>'};
                }
            }
        }
        free(used);
    }
    *rows = r;
out:
    free(e);
    free(da);
    free(db);
    cmp__seq_free(&A);
    cmp__seq_free(&B);
    return nr;
}
