/* mbox.c - middlebox models: Cisco ASA/PIX inline inspection and SMTP proxies
 * (SIGNATURES.md A1-A9, P1-P3, O1, O4; RFC 5321, RFC 3207). */
#include "pcaps/synth/mbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/ascii.h"
#include "common/str.h"

#define MS (1000000LL)

static const char *const mb_names[MB__COUNT] = {
    "none",      "asa-default", "asa-allow-tls", "pix-noop",          "pix44",
    "tls-reset", "alg-delete",  "striptls-454",  "striptls-502-ehlo", "tls-intercept",
};

int mb_model_parse(const char *name)
{
    for (int i = 0; i < MB__COUNT; i++)
        if (strcmp(name, mb_names[i]) == 0)
            return i;
    return -1;
}

const char *mb_model_name(enum mb_model m)
{
    return (unsigned)m < MB__COUNT ? mb_names[m] : "?";
}

void mb_cfg_defaults(struct mb_cfg *c, enum mb_model m)
{
    memset(c, 0, sizeof(*c));
    c->model = m;
    c->mask_vrfy = true;
    c->mask_spaces = true; /* as in the documented example "220 ****2****..." */
    c->cmd_line_max = 512;
    c->rcpt_max = 100;
    c->header_line_max = 998;
    c->sender_max = 320;
    c->filename_max = 255;
    c->special_character = m == MB_ASA_DEFAULT || m == MB_ASA_ALLOW_TLS;
    c->reset_on_drop = m == MB_TLS_RESET;
    c->p3_window = 5000 * MS;
    c->delay = MS / 10;
    c->ttl = 255;
    c->mss = 1380;
}

static bool is_asa(const struct mb_cfg *c)
{
    return c->model == MB_ASA_DEFAULT || c->model == MB_ASA_ALLOW_TLS;
}

static bool is_pix(const struct mb_cfg *c)
{
    return c->model == MB_PIX_NOOP || c->model == MB_PIX44;
}

/* ---- inline inspection rules ---- */

enum { C_LINESTART = 0, C_VERB, C_ARG, C_BODY };
enum { D_MID = 0, D_CR, D_BOL, D_DOT, D_DOTCR };

struct mb_insp {
    struct mb_cfg cfg;
    bool tls; /* STARTTLS accepted with allow-tls: inspection stops */
    /* client to server */
    int cstate;
    size_t clinelen;
    char verb[16];
    size_t verblen;
    bool verb_fragment; /* the verb was cut by a segment end */
    bool addr_line;     /* MAIL or RCPT: A8 applies to the argument */
    size_t addrlen;
    size_t rcpts;
    /* What each command awaiting a reply was, in order (pipelining). */
    uint8_t pend[64];
    size_t pend_head, pend_len;
    int dot;
    bool headers;
    size_t blinelen;
    char bline[1100];
    size_t bkept;
    bool p3_dead;
    sc_time last_c2s;
    /* server to client */
    bool banner_done;
    bool s_linestart;
    size_t s_pos; /* position in the current server line */
    int s_lines;  /* lines of the current reply so far */
    bool s_final; /* current line is the last of its reply */
    char s_code[4];
    int s_reply_kind; /* 0 other, 1 banner, 2 EHLO reply, 3 DATA reply, 4 STARTTLS reply */
    bool s_mask_line; /* mask the rest of the current keyword line */
    int letter;       /* A4 counter within one EHLO reply */
    size_t s_mask_start;
    const char *reason;
    unsigned actions; /* enum mb_action */
};

struct mb_insp *mb_insp_new(const struct mb_cfg *c)
{
    struct mb_insp *in = calloc(1, sizeof(*in));
    if (!in)
        abort();
    in->cfg = *c;
    in->s_linestart = true;
    in->cstate = C_LINESTART;
    return in;
}

void mb_insp_free(struct mb_insp *in)
{
    free(in);
}

const char *mb_insp_reason(const struct mb_insp *in)
{
    return in->reason;
}

unsigned mb_insp_actions(const struct mb_insp *in)
{
    return in->actions;
}

/* Verbs the ASA lets through (SIGNATURES.md A5) and the PIX (P1). */
static bool verb_allowed(const struct mb_insp *in, const char *v)
{
    static const char *const asa[] = {"HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET",
                                      "NOOP", "QUIT", "AUTH", "ETRN", "HELP", "SAML",
                                      "SEND", "SOML", "VRFY", NULL};
    static const char *const pix[] = {"HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", NULL};
    if (!is_asa(&in->cfg) && !is_pix(&in->cfg))
        return true; /* other inline models filter no verbs */
    const char *const *set = is_pix(&in->cfg) ? pix : asa;
    for (int i = 0; set[i]; i++)
        if (strcmp(set[i], v) == 0)
            return true;
    return in->cfg.model == MB_ASA_ALLOW_TLS && strcmp(v, "STARTTLS") == 0;
}

/* EHLO keywords the ASA passes (SIGNATURES.md A3, A4). */
static bool keyword_allowed(const struct mb_insp *in, const char *kw, size_t n, bool more)
{
    static const char *const ok[] = {
        "SIZE",     "ETRN",       "PIPELINING", "DSN",  "ENHANCEDSTATUSCODES",
        "8BITMIME", "BINARYMIME", "DELIVERBY",  "HELP", NULL};
    char up[32];
    size_t k = 0;
    while (k < n && k < sizeof(up) - 1 && kw[k] != ' ' && kw[k] != '\r' && kw[k] != '\n') {
        up[k] = (char)sc_to_upper((uint8_t)kw[k]);
        k++;
    }
    up[k] = 0;
    /* "AUTH GSSAPI" passes, "AUTH=LOGIN" does not. */
    if (strcmp(up, "AUTH") == 0 && k < n && kw[k] == ' ')
        return true;
    if (strcmp(up, "AUTH") == 0 && k == n && more)
        return true; /* parameters in the next segment: give it the benefit */
    if (strcmp(up, "STARTTLS") == 0)
        return in->cfg.model == MB_ASA_ALLOW_TLS;
    if (strcmp(up, "VRFY") == 0)
        return !in->cfg.mask_vrfy;
    for (int i = 0; ok[i]; i++)
        if (strcmp(ok[i], up) == 0)
            return true;
    return false;
}

static enum mb_verdict drop(struct mb_insp *in, const char *why)
{
    in->reason = why;
    in->actions |= MB_ACT_DROP | (in->cfg.reset_on_drop ? MB_ACT_RESET : 0u);
    return MB_DROP_CONN;
}

/* Masks a verb fragment in place: X's (ASA) or NOOP plus blanks (PIX). */
static void mask_verb(const struct mb_insp *in, uint8_t *p, size_t n, bool whole)
{
    if (is_pix(&in->cfg) && whole && n >= 4) {
        memcpy(p, "NOOP", 4);
        for (size_t i = 4; i < n; i++)
            p[i] = ' ';
        return;
    }
    memset(p, 'X', n);
}

/* Reply kinds: what a server reply answers. */
enum { RK_OTHER = 0, RK_BANNER, RK_EHLO, RK_DATA, RK_STARTTLS };

/* A finished client line: the line-level limits and state. */
static enum mb_verdict c_line_end(struct mb_insp *in)
{
    const char *v = in->verb;
    if (in->verb_fragment)
        v = "";
    if (strcmp(v, "RCPT") == 0 && is_asa(&in->cfg) && ++in->rcpts > in->cfg.rcpt_max)
        return drop(in, "RCPT count over the limit (A7)");
    uint8_t kind = RK_OTHER;
    if (strcmp(v, "EHLO") == 0)
        kind = RK_EHLO;
    else if (strcmp(v, "DATA") == 0)
        kind = RK_DATA;
    else if (strcmp(v, "STARTTLS") == 0)
        kind = RK_STARTTLS;
    if (in->pend_len < sizeof(in->pend))
        in->pend[(in->pend_head + in->pend_len++) % sizeof(in->pend)] = kind;
    in->cstate = C_LINESTART;
    in->clinelen = 0;
    in->verblen = 0;
    in->verb[0] = 0;
    in->verb_fragment = false;
    in->addr_line = false;
    in->addrlen = 0;
    return MB_FORWARD;
}

/* A finished body line: header length and MIME filename limits. */
static enum mb_verdict b_line_end(struct mb_insp *in)
{
    if (!is_asa(&in->cfg))
        return MB_FORWARD;
    if (in->headers && in->blinelen == 0)
        in->headers = false;
    else if (in->headers && in->blinelen > in->cfg.header_line_max)
        return drop(in, "header line over the limit (A7)");
    in->bline[in->bkept] = 0;
    const char *f = strstr(in->bline, "filename=");
    if (f) {
        f += 9;
        bool q = *f == '"';
        if (q)
            f++;
        size_t len = 0;
        while (f[len] && f[len] != (q ? '"' : ';') && f[len] != '\r')
            len++;
        if (len > in->cfg.filename_max)
            return drop(in, "MIME filename over the limit (A7)");
    }
    return MB_FORWARD;
}

static enum mb_verdict c2s(struct mb_insp *in, uint8_t *p, size_t n, sc_time t)
{
    int dot_at_start = in->dot;
    sc_time gap = t - in->last_c2s;
    in->last_c2s = t;
    size_t i = 0;
    bool seg_start = true;
    while (i < n) {
        uint8_t c = p[i];
        if (in->cstate == C_BODY) {
            switch (in->dot) {
            case D_CR:
                in->dot = c == '\n' ? D_BOL : c == '\r' ? D_CR : D_MID;
                break;
            case D_BOL:
                in->dot = c == '.' ? D_DOT : c == '\r' ? D_CR : D_MID;
                break;
            case D_DOT:
                in->dot = c == '\r' ? D_DOTCR : D_MID;
                break;
            case D_DOTCR:
                if (c == '\n') {
                    /* End of data.  P3: the PIX loses it when it was split. */
                    if (is_pix(&in->cfg) && i < 4 && dot_at_start != D_MID &&
                        gap < in->cfg.p3_window) {
                        in->p3_dead = true;
                        in->actions |= MB_ACT_P3;
                        return MB_DROP_PACKET;
                    }
                    in->cstate = C_LINESTART;
                    in->dot = D_MID;
                    in->clinelen = 0;
                    i++;
                    seg_start = false;
                    continue;
                }
                in->dot = c == '\r' ? D_CR : D_MID;
                break;
            default:
                in->dot = c == '\r' ? D_CR : D_MID;
                break;
            }
            if (c == '\n') {
                enum mb_verdict v = b_line_end(in);
                if (v != MB_FORWARD)
                    return v;
                in->blinelen = 0;
                in->bkept = 0;
            } else if (c != '\r') {
                in->blinelen++;
                if (in->bkept < sizeof(in->bline) - 1)
                    in->bline[in->bkept++] = (char)c;
            }
            i++;
            seg_start = false;
            continue;
        }
        if (in->cstate == C_LINESTART || (in->cstate == C_VERB && seg_start)) {
            /* A verb (or, A6, whatever part of one this segment holds) is
             * judged on this segment's bytes alone. */
            size_t j = i;
            while (j < n && p[j] != ' ' && p[j] != '\r' && p[j] != '\n')
                j++;
            char v[16];
            size_t vl = j - i < sizeof(v) - 1 ? j - i : sizeof(v) - 1;
            for (size_t k = 0; k < vl; k++)
                v[k] = (char)sc_to_upper(p[i + k]);
            v[vl] = 0;
            bool continued = in->cstate == C_VERB;
            bool allowed = j > i && !continued && verb_allowed(in, v);
            if (j > i && !allowed && (is_asa(&in->cfg) || is_pix(&in->cfg))) {
                bool whole = !continued && j < n;
                mask_verb(in, p + i, j - i, whole);
                if (is_pix(&in->cfg) && whole && j - i >= 4)
                    in->actions |= strcmp(v, "EHLO") == 0 ? MB_ACT_VERB_NOOP : MB_ACT_VERB_OTHER;
                else if (whole && strcmp(v, "STARTTLS") == 0)
                    in->actions |= MB_ACT_VERB_STARTTLS;
                else if (whole)
                    in->actions |= MB_ACT_VERB_OTHER;
                else
                    in->actions |= MB_ACT_VERB_PIECE;
            }
            if (!continued) {
                sc_strlcpy(in->verb, sizeof(in->verb), allowed ? v : "");
                in->verb_fragment = !allowed;
            }
            in->clinelen += j - i;
            in->addr_line = allowed && (strcmp(v, "MAIL") == 0 || strcmp(v, "RCPT") == 0);
            /* A blank, CR or LF ends the verb; the rest of the line follows. */
            in->cstate = j < n ? C_ARG : C_VERB;
            i = j;
            seg_start = false;
            continue;
        }
        /* Rest of a command line. */
        if (c == '\n') {
            enum mb_verdict v = c_line_end(in);
            if (v != MB_FORWARD)
                return v;
            i++;
            seg_start = false;
            continue;
        }
        if (c != '\r')
            in->clinelen++;
        if (is_asa(&in->cfg) && in->clinelen > in->cfg.cmd_line_max)
            return drop(in, "command line over the limit (A7)");
        if (in->addr_line) {
            if (c == '|' && in->cfg.special_character) {
                p[i] = ' ';
                in->actions |= MB_ACT_SPECIAL_CHAR;
            }
            if (c != '\r' && c != '<' && c != '>')
                in->addrlen++;
            if (is_asa(&in->cfg) && strcmp(in->verb, "MAIL") == 0 &&
                in->addrlen > in->cfg.sender_max + 5 /* "FROM:" */)
                return drop(in, "sender address over the limit (A7)");
        }
        i++;
        seg_start = false;
    }
    return MB_FORWARD;
}

/* Masks a banner character (A1, A2, P2, pix44). */
static uint8_t banner_mask(const struct mb_insp *in, uint8_t c, bool first_line, size_t pos)
{
    if (c == '\r' || c == '\n')
        return c;
    if (!first_line)
        return '*'; /* A2: continuation lines lose their code too */
    if (pos < 3)
        return c; /* the 220 itself */
    if (pos == 3)
        return in->cfg.no_space_after_code ? '*' : c;
    if (in->cfg.model == MB_PIX44)
        return '*';
    if (c == '2' || c == '0')
        return c;
    if ((c == ' ' || c == '\t') && !in->cfg.mask_spaces)
        return c;
    return '*';
}

static enum mb_verdict s2c(struct mb_insp *in, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (in->s_linestart) {
            in->s_linestart = false;
            in->s_pos = 0;
            in->s_final = true;
            in->s_mask_line = false;
            if (in->s_lines == 0) {
                /* First line of a reply: what does it answer? */
                if (!in->banner_done) {
                    in->s_reply_kind = RK_BANNER;
                } else if (in->pend_len > 0) {
                    in->s_reply_kind = in->pend[in->pend_head];
                    in->pend_head = (in->pend_head + 1) % sizeof(in->pend);
                    in->pend_len--;
                } else {
                    in->s_reply_kind = RK_OTHER;
                }
                in->letter = 0;
            }
        }
        size_t pos = in->s_pos++;
        if (pos < 3)
            in->s_code[pos] = (char)c;
        if (pos == 3)
            in->s_final = c != '-';
        bool masking = (is_asa(&in->cfg) || is_pix(&in->cfg));
        if (in->s_reply_kind == RK_BANNER && masking) {
            uint8_t was = p[i];
            p[i] = banner_mask(in, c, in->s_lines == 0, pos);
            if (p[i] != was)
                in->actions |= in->s_lines == 0 ? MB_ACT_BANNER_MASKED : MB_ACT_BANNER_MULTI;
        } else if (in->s_reply_kind == RK_EHLO && is_asa(&in->cfg) && in->s_lines > 0 && pos == 4) {
            /* A keyword line: judge the keyword (A3, A4). */
            size_t k = i;
            while (k < n && p[k] != '\r' && p[k] != '\n')
                k++;
            if (!keyword_allowed(in, (const char *)p + i, k - i, k == n)) {
                in->s_mask_line = true;
                size_t wl = 0;
                while (i + wl < k && p[i + wl] != ' ' && p[i + wl] != '=')
                    wl++;
                if (wl == 8 && strncasecmp((const char *)p + i, "STARTTLS", 8) == 0)
                    in->actions |= MB_ACT_KW_STARTTLS;
                else if ((wl == 14 &&
                          strncasecmp((const char *)p + i, "X-ANONYMOUSTLS", 14) == 0) ||
                         (wl == 6 && strncasecmp((const char *)p + i, "X-EXPS", 6) == 0))
                    in->actions |= MB_ACT_KW_XANON | MB_ACT_KW_OTHER;
                else
                    in->actions |= MB_ACT_KW_OTHER;
            }
        }
        if (in->s_mask_line && c != '\r' && c != '\n') {
            /* X's, the line's last character a letter counting up (A4). */
            size_t k = i;
            while (k < n && p[k] != '\r' && p[k] != '\n')
                k++;
            bool last = k < n && k == i + 1;
            p[i] = (uint8_t)(last ? 'A' + in->letter % 26 : 'X');
            if (last)
                in->letter++;
        }
        if (c == '\n') {
            in->s_linestart = true;
            bool final = in->s_final;
            in->s_lines++;
            if (final) {
                /* The reply is complete (judged on the original bytes). */
                int code = (in->s_code[0] - '0') * 100 + (in->s_code[1] - '0') * 10 +
                           (in->s_code[2] - '0');
                switch (in->s_reply_kind) {
                case RK_BANNER:
                    in->banner_done = true;
                    break;
                case RK_DATA:
                    if (code == 354) {
                        in->cstate = C_BODY;
                        in->dot = D_BOL;
                        in->headers = true;
                        in->blinelen = 0;
                        in->bkept = 0;
                    }
                    break;
                case RK_STARTTLS:
                    if (code == 220)
                        in->tls = true;
                    break;
                default:
                    break;
                }
                in->s_lines = 0;
            }
        }
    }
    return MB_FORWARD;
}

enum mb_verdict mb_insp_segment(struct mb_insp *in, enum sc_dir dir, uint8_t *p, size_t n,
                                sc_time t)
{
    if (dir == SC_DIR_C2S && in->p3_dead)
        return MB_DROP_PACKET; /* P3: the stalled end of data and its retransmissions */
    if (in->cfg.model == MB_TLS_RESET && in->tls && dir == SC_DIR_C2S && n > 0 && p[0] == 0x16) {
        /* O2: a policy that forbids encryption kills the handshake. */
        in->reason = "TLS blocked (O2)";
        in->actions |= MB_ACT_TLS_BLOCK | MB_ACT_RESET;
        return MB_DROP_CONN;
    }
    if (in->tls || in->cfg.model == MB_NONE || n == 0)
        return MB_FORWARD;
    enum mb_verdict v = dir == SC_DIR_C2S ? c2s(in, p, n, t) : s2c(in, p, n);
    return v;
}

/* ---- the inline middlebox ---- */

#define MB_HISTORY (256u * 1024u) /* rewritten bytes kept per direction for retransmissions */

struct mb_held {
    struct mb_held *next;
    struct sim_pkt *p;
};

struct mb_dir {
    bool init;
    uint32_t nxt;  /* next new sequence number (original numbering) */
    uint64_t done; /* new bytes seen so far */
    uint8_t *hist; /* ring of rewritten bytes by stream offset */
    struct mb_held *held;
};

struct mb_box {
    struct sim_node node; /* first: the node pointer is the box */
    struct mb_cfg cfg;
    struct sim_link *out, *in;
    struct mb_insp *insp;
    struct mb_dir d[2];
    bool dead;
    bool have_client;
    struct cap_addr client_addr, server_addr;
    uint16_t client_port, server_port;
    struct syn_rng rng;
    /* proxy models */
    struct sim_ep *ep_c, *ep_s; /* toward the client, toward the server */
    struct sim_ep_opts server_side, client_side;
    struct mb_relay *relay;
    struct sc_buf *log[2]; /* forwarded bytes per direction, or NULL */
};

static void box_forward(struct sim *s, struct mb_box *b, struct sim_pkt *p, bool to_inside)
{
    if (p->ip.ttl > 1)
        p->ip.ttl--;
    if (to_inside) {
        if (b->cfg.nat) {
            p->ip.src = b->cfg.nat_addr;
            p->tcp.sport = b->cfg.nat_port;
        }
        p->tcp.seq += b->cfg.isn_offset;
        sim_send(s, b->in, 0, p);
    } else {
        if (b->cfg.nat && b->have_client) {
            p->ip.dst = b->client_addr;
            p->tcp.dport = b->client_port;
        }
        if (p->tcp.flags & CAP_TH_ACK)
            p->tcp.ack -= b->cfg.isn_offset;
        sim_send(s, b->out, 0, p);
    }
}

struct mb_fwd {
    struct mb_box *b;
    struct sim_pkt *p;
    bool to_inside;
};

static void fwd_ev(struct sim *s, void *arg)
{
    struct mb_fwd *f = arg;
    box_forward(s, f->b, f->p, f->to_inside);
    free(f);
}

static void fwd_drop(void *arg)
{
    struct mb_fwd *f = arg;
    sim_pkt_free(f->p);
    free(f);
}

static void box_later(struct sim *s, struct mb_box *b, struct sim_pkt *p, bool to_inside)
{
    struct mb_fwd *f = malloc(sizeof(*f));
    if (!f)
        abort();
    f->b = b;
    f->p = p;
    f->to_inside = to_inside;
    sim_at_owned(s, sim_now(s) + b->cfg.delay, fwd_ev, f, fwd_drop);
}

static void hist_put(struct mb_dir *d, uint64_t off, const uint8_t *p, size_t n)
{
    if (!d->hist) {
        d->hist = malloc(MB_HISTORY);
        if (!d->hist)
            abort();
    }
    for (size_t i = 0; i < n; i++)
        d->hist[(off + i) % MB_HISTORY] = p[i];
}

/* Applies the inspection to a packet's payload in sequence order; returns
 * false if the packet must not be forwarded. */
static bool box_inspect(struct sim *s, struct mb_box *b, struct sim_pkt *p, int dir)
{
    struct mb_dir *d = &b->d[dir];
    if (!d->init || p->len == 0)
        return true;
    int32_t rel = (int32_t)(p->tcp.seq - d->nxt);
    size_t old = 0;
    if (rel < 0) {
        /* Retransmitted bytes get their earlier rewriting back. */
        old = (size_t)-rel < p->len ? (size_t)-rel : p->len;
        uint64_t start = d->done - (uint64_t)-rel;
        if (d->hist && (uint64_t)-rel <= MB_HISTORY)
            for (size_t i = 0; i < old; i++)
                p->data[i] = d->hist[(start + i) % MB_HISTORY];
        if (old == p->len)
            return !b->insp ||
                   mb_insp_segment(b->insp, (enum sc_dir)dir, NULL, 0, sim_now(s)) == MB_FORWARD;
    }
    size_t fresh = p->len - old;
    enum mb_verdict v = MB_FORWARD;
    if (b->insp)
        v = mb_insp_segment(b->insp, (enum sc_dir)dir, p->data + old, fresh, sim_now(s));
    if (v == MB_DROP_CONN) {
        b->dead = true;
        return false;
    }
    if (v == MB_DROP_PACKET)
        return false;
    hist_put(d, d->done, p->data + old, fresh);
    if (b->log[dir])
        sc_buf_append(b->log[dir], p->data + old, fresh);
    d->done += fresh;
    d->nxt += (uint32_t)fresh;
    return true;
}

static void box_hold(struct mb_dir *d, struct sim_pkt *p)
{
    struct mb_held *h = malloc(sizeof(*h));
    if (!h)
        abort();
    h->p = p;
    struct mb_held **pp = &d->held;
    while (*pp && (int32_t)((*pp)->p->tcp.seq - p->tcp.seq) <= 0)
        pp = &(*pp)->next;
    h->next = *pp;
    *pp = h;
}

static void box_process(struct sim *s, struct mb_box *b, struct sim_pkt *p, int dir);

/* A7 with action "reset": the device sends a RST to each side, as the peer. */
static void box_reset_both(struct sim *s, struct mb_box *b)
{
    if (!b->have_client || !b->d[SC_DIR_S2C].init)
        return;
    for (int side = 0; side < 2; side++) {
        struct sim_pkt *r = sim_pkt_new(0);
        bool to_client = side == 0;
        r->ip.ttl = b->cfg.ttl;
        r->tcp.flags = CAP_TH_RST | CAP_TH_ACK;
        if (to_client) {
            r->ip.src = b->server_addr;
            r->ip.dst = b->client_addr;
            r->tcp.sport = b->server_port;
            r->tcp.dport = b->client_port;
            r->tcp.seq = b->d[SC_DIR_S2C].nxt;
            r->tcp.ack = b->d[SC_DIR_C2S].nxt;
            sim_send(s, b->out, 0, r);
        } else {
            r->ip.src = b->cfg.nat ? b->cfg.nat_addr : b->client_addr;
            r->ip.dst = b->server_addr;
            r->tcp.sport = b->cfg.nat ? b->cfg.nat_port : b->client_port;
            r->tcp.dport = b->server_port;
            r->tcp.seq = b->d[SC_DIR_C2S].nxt + b->cfg.isn_offset;
            r->tcp.ack = b->d[SC_DIR_S2C].nxt;
            sim_send(s, b->in, 0, r);
        }
    }
}

static void box_release(struct sim *s, struct mb_box *b, int dir)
{
    struct mb_dir *d = &b->d[dir];
    while (d->held && (int32_t)(d->held->p->tcp.seq - d->nxt) <= 0) {
        struct mb_held *h = d->held;
        d->held = h->next;
        struct sim_pkt *p = h->p;
        free(h);
        box_process(s, b, p, dir);
    }
}

static void box_process(struct sim *s, struct mb_box *b, struct sim_pkt *p, int dir)
{
    struct mb_dir *d = &b->d[dir];
    if (b->dead) {
        sim_pkt_free(p);
        return;
    }
    if (p->tcp.flags & CAP_TH_SYN) {
        d->init = true;
        d->nxt = p->tcp.seq + 1;
        if (dir == SC_DIR_C2S) {
            b->have_client = true;
            b->client_addr = p->ip.src;
            b->client_port = p->tcp.sport;
            b->server_addr = p->ip.dst;
            b->server_port = p->tcp.dport;
        }
    } else if (d->init && p->len > 0 && (int32_t)(p->tcp.seq - d->nxt) > 0) {
        box_hold(d, p); /* a hole before it: inspect in order, like the ASA */
        return;
    }
    if (!box_inspect(s, b, p, dir)) {
        sim_pkt_free(p);
        if (b->dead && b->cfg.reset_on_drop)
            box_reset_both(s, b);
        return;
    }
    box_later(s, b, p, dir == SC_DIR_C2S);
    box_release(s, b, dir);
}

static void box_recv(struct sim *s, struct sim_node *n, struct sim_link *from, struct sim_pkt *p)
{
    struct mb_box *b = (struct mb_box *)n;
    box_process(s, b, p, from == b->out ? SC_DIR_C2S : SC_DIR_S2C);
}

/* ---- proxies ---- */

struct mb_relay {
    struct mb_box *b;
    struct sc_buf cline;  /* client line being assembled */
    struct sc_buf sreply; /* server reply being assembled (whole lines) */
    struct sc_buf sline;  /* server line being assembled */
    bool body;            /* relaying message data */
    int dot;
    bool ehlo_sent; /* the last command was EHLO: its reply is filtered */
    bool starttls_sent;
    bool tls; /* both legs are TLS now */
    struct tlsgen_end *tls_c, *tls_s;
    bool tls_c_up, tls_s_up;
    struct sc_buf out, app, pending_s; /* pending_s: plaintext for the server before TLS is up */
    bool closing;
    unsigned actions; /* enum mb_action */
};

static void relay_to_server(struct sim *s, struct mb_relay *r, const uint8_t *p, size_t n)
{
    if (r->tls_s) {
        if (!r->tls_s_up) {
            sc_buf_append(&r->pending_s, p, n);
            return;
        }
        sc_buf_reset(&r->out);
        tlsgen_write(r->tls_s, p, n, 0, &r->out);
        sim_ep_write(s, r->b->ep_s, r->out.data, r->out.len);
        return;
    }
    sim_ep_write(s, r->b->ep_s, p, n);
}

static void relay_to_client(struct sim *s, struct mb_relay *r, const uint8_t *p, size_t n)
{
    if (r->tls_c && r->tls_c_up) {
        sc_buf_reset(&r->out);
        tlsgen_write(r->tls_c, p, n, 0, &r->out);
        sim_ep_write(s, r->b->ep_c, r->out.data, r->out.len);
        return;
    }
    sim_ep_write(s, r->b->ep_c, p, n);
}

static bool line_is(const struct sc_buf *l, const char *verb)
{
    size_t n = strlen(verb);
    if (l->len < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (sc_to_upper(l->data[i]) != (uint8_t)verb[i])
            return false;
    return l->len == n || l->data[n] == ' ' || l->data[n] == '\r' || l->data[n] == '\n';
}

static void relay_client_plain(struct sim *s, struct mb_relay *r, const uint8_t *p, size_t n)
{
    const struct mb_cfg *c = &r->b->cfg;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = p[i];
        if (r->body) {
            relay_to_server(s, r, &ch, 1);
            switch (r->dot) {
            case D_CR:
                r->dot = ch == '\n' ? D_BOL : ch == '\r' ? D_CR : D_MID;
                break;
            case D_BOL:
                r->dot = ch == '.' ? D_DOT : ch == '\r' ? D_CR : D_MID;
                break;
            case D_DOT:
                r->dot = ch == '\r' ? D_DOTCR : D_MID;
                break;
            case D_DOTCR:
                if (ch == '\n')
                    r->body = false;
                r->dot = ch == '\r' ? D_CR : D_MID;
                break;
            default:
                r->dot = ch == '\r' ? D_CR : D_MID;
            }
            continue;
        }
        sc_buf_putc(&r->cline, ch);
        if (ch != '\n')
            continue;
        /* A complete command line. */
        if (c->model == MB_STRIPTLS_454 && line_is(&r->cline, "STARTTLS")) {
            static const char rep[] = "454 4.7.0 TLS not available due to temporary reason\r\n";
            relay_to_client(s, r, (const uint8_t *)rep, sizeof(rep) - 1);
            r->actions |= MB_ACT_STARTTLS_454;
        } else if (c->model == MB_STRIPTLS_502_EHLO && line_is(&r->cline, "EHLO")) {
            static const char rep[] = "502 5.5.2 Error: command not recognized\r\n";
            relay_to_client(s, r, (const uint8_t *)rep, sizeof(rep) - 1);
            r->actions |= MB_ACT_EHLO_502;
        } else {
            r->ehlo_sent = line_is(&r->cline, "EHLO");
            if (line_is(&r->cline, "STARTTLS"))
                r->starttls_sent = true;
            relay_to_server(s, r, r->cline.data, r->cline.len);
        }
        sc_buf_reset(&r->cline);
    }
}

/* Keywords an SMTP ALG keeps (O1); the rest of the EHLO reply is deleted. */
static bool alg_keeps(const uint8_t *kw, size_t n)
{
    static const char *const keep[] = {"SIZE", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES",
                                       "DSN",  "HELP",       "AUTH",     NULL};
    for (int i = 0; keep[i]; i++) {
        size_t k = strlen(keep[i]);
        if (n >= k && strncasecmp((const char *)kw, keep[i], k) == 0 &&
            (n == k || kw[k] == ' ' || kw[k] == '\r' || kw[k] == '='))
            return true;
    }
    return false;
}

static void relay_start_tls(struct sim *s, struct mb_relay *r);

/* A complete server reply (all its lines) in r->sreply. */
static void relay_reply(struct sim *s, struct mb_relay *r)
{
    const struct mb_cfg *c = &r->b->cfg;
    const uint8_t *p = r->sreply.data;
    size_t n = r->sreply.len;
    int code = n >= 3 ? (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0') : 0;
    if (c->model == MB_ALG_DELETE && r->ehlo_sent && code == 250) {
        /* O1: delete unsupported keyword lines and fix the final marker. */
        struct sc_buf o;
        sc_buf_init(&o, 0);
        size_t i = 0, lineno = 0;
        while (i < n) {
            size_t j = i;
            while (j < n && p[j] != '\n')
                j++;
            j = j < n ? j + 1 : j;
            if (lineno == 0 || (j - i > 4 && alg_keeps(p + i + 4, j - i - 4)))
                sc_buf_append(&o, p + i, j - i);
            else if (j - i >= 12 && strncasecmp((const char *)p + i + 4, "STARTTLS", 8) == 0)
                r->actions |= MB_ACT_DEL_STARTTLS;
            else
                r->actions |= MB_ACT_DEL_OTHER;
            i = j;
            lineno++;
        }
        /* Every line but the last gets "250-", the last "250 ". */
        for (size_t k = 0; k < o.len; k++) {
            if (k + 3 < o.len && (k == 0 || o.data[k - 1] == '\n')) {
                size_t e = k;
                while (e < o.len && o.data[e] != '\n')
                    e++;
                o.data[k + 3] = e + 1 >= o.len ? ' ' : '-';
            }
        }
        relay_to_client(s, r, o.data, o.len);
        sc_buf_free(&o);
    } else {
        relay_to_client(s, r, p, n);
    }
    r->ehlo_sent = false;
    if (code == 354) {
        r->body = true;
        r->dot = D_BOL;
    }
    if (r->starttls_sent && c->model == MB_TLS_INTERCEPT) {
        r->starttls_sent = false;
        if (code == 220)
            relay_start_tls(s, r);
    }
    if (code == 221 || code == 421)
        r->closing = true;
    sc_buf_reset(&r->sreply);
}

static void relay_server_plain(struct sim *s, struct mb_relay *r, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sc_buf_putc(&r->sline, p[i]);
        if (p[i] != '\n')
            continue;
        sc_buf_append(&r->sreply, r->sline.data, r->sline.len);
        bool final = r->sline.len < 4 || r->sline.data[3] != '-';
        sc_buf_reset(&r->sline);
        if (final)
            relay_reply(s, r);
    }
}

static void relay_start_tls(struct sim *s, struct mb_relay *r)
{
    const struct mb_cfg *c = &r->b->cfg;
    if (!c->own_tls || !c->server_tls)
        return;
    r->tls = true;
    r->actions |= MB_ACT_TLS_INTERCEPT;
    r->tls_c = tlsgen_server(c->own_tls);
    r->tls_s = tlsgen_client(c->server_tls);
    sc_buf_reset(&r->out);
    tlsgen_start(r->tls_s, &r->out);
    sim_ep_write(s, r->b->ep_s, r->out.data, r->out.len);
}

static void pc_data(struct sim *s, struct sim_ep *e, void *app, const uint8_t *p, size_t n)
{
    (void)e;
    struct mb_relay *r = app;
    if (r->tls_c) {
        sc_buf_reset(&r->out);
        sc_buf_reset(&r->app);
        tlsgen_input(r->tls_c, p, n, &r->out, &r->app);
        if (r->out.len)
            sim_ep_write(s, r->b->ep_c, r->out.data, r->out.len);
        if (tlsgen_established(r->tls_c))
            r->tls_c_up = true;
        if (r->app.len) {
            struct sc_buf a = r->app;
            sc_buf_init(&r->app, 0);
            relay_client_plain(s, r, a.data, a.len);
            sc_buf_free(&a);
        }
        return;
    }
    relay_client_plain(s, r, p, n);
}

static void ps_data(struct sim *s, struct sim_ep *e, void *app, const uint8_t *p, size_t n)
{
    (void)e;
    struct mb_relay *r = app;
    if (r->tls_s) {
        sc_buf_reset(&r->out);
        sc_buf_reset(&r->app);
        tlsgen_input(r->tls_s, p, n, &r->out, &r->app);
        if (r->out.len)
            sim_ep_write(s, r->b->ep_s, r->out.data, r->out.len);
        if (!r->tls_s_up && tlsgen_established(r->tls_s)) {
            r->tls_s_up = true;
            if (r->pending_s.len) {
                struct sc_buf q = r->pending_s;
                sc_buf_init(&r->pending_s, 0);
                relay_to_server(s, r, q.data, q.len);
                sc_buf_free(&q);
            }
        }
        if (r->app.len) {
            struct sc_buf a = r->app;
            sc_buf_init(&r->app, 0);
            relay_server_plain(s, r, a.data, a.len);
            sc_buf_free(&a);
        }
        return;
    }
    relay_server_plain(s, r, p, n);
}

static void pc_connected(struct sim *s, struct sim_ep *e, void *app)
{
    (void)e;
    struct mb_relay *r = app;
    sim_ep_connect(s, r->b->ep_s); /* open the inside leg once the client is in */
}

static void pc_fin(struct sim *s, struct sim_ep *e, void *app)
{
    (void)e;
    struct mb_relay *r = app;
    sim_ep_close(s, r->b->ep_s);
    sim_ep_close(s, r->b->ep_c);
}

static void ps_fin(struct sim *s, struct sim_ep *e, void *app)
{
    (void)e;
    struct mb_relay *r = app;
    sim_ep_close(s, r->b->ep_c);
    sim_ep_close(s, r->b->ep_s);
}

static void pc_reset(struct sim *s, struct sim_ep *e, void *app)
{
    (void)e;
    struct mb_relay *r = app;
    sim_ep_abort(s, r->b->ep_s);
}

static void ps_reset(struct sim *s, struct sim_ep *e, void *app)
{
    (void)e;
    struct mb_relay *r = app;
    sim_ep_abort(s, r->b->ep_c);
}

static const struct sim_ep_cb pc_cb = {pc_connected, pc_data, pc_fin, pc_reset};
static const struct sim_ep_cb ps_cb = {NULL, ps_data, ps_fin, ps_reset};

struct mb_box *mb_box_new(struct sim *s, const struct mb_cfg *c, struct sim_link *outside,
                          struct sim_link *inside, const struct sim_ep_opts *server_side,
                          const struct sim_ep_opts *client_side, uint64_t seed)
{
    struct mb_box *b = calloc(1, sizeof(*b));
    if (!b)
        abort();
    b->cfg = *c;
    b->out = outside;
    b->in = inside;
    syn_rng_seed(&b->rng, seed, 0xb0c);
    bool proxy = c->model >= MB_ALG_DELETE;
    if (!proxy) {
        b->node.recv = box_recv;
        outside->end[0] = &b->node;
        inside->end[0] = &b->node;
        if (c->model != MB_NONE)
            b->insp = mb_insp_new(c);
        return b;
    }
    struct mb_relay *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->b = b;
    sc_buf_init(&r->cline, 0);
    sc_buf_init(&r->sreply, 0);
    sc_buf_init(&r->sline, 0);
    sc_buf_init(&r->out, 0);
    sc_buf_init(&r->app, 0);
    sc_buf_init(&r->pending_s, 0);
    b->relay = r;
    /* The proxy answers as the server toward the client, and connects to
     * the server as the client (transparently), with its own TCP stack. */
    struct sim_ep_opts oc = *server_side, os = *client_side;
    oc.ttl = os.ttl = c->ttl;
    oc.mss = os.mss = c->mss;
    oc.iss = (uint32_t)syn_rng_next(&b->rng);
    os.iss = (uint32_t)syn_rng_next(&b->rng);
    oc.ts_base = (uint32_t)syn_rng_next(&b->rng);
    os.ts_base = (uint32_t)syn_rng_next(&b->rng);
    if (c->nat) {
        os.addr = c->nat_addr;
        os.port = c->nat_port;
    }
    b->ep_c = sim_ep_new(s, &oc, outside, 0, &pc_cb, r);
    b->ep_s = sim_ep_new(s, &os, inside, 0, &ps_cb, r);
    return b;
}

void mb_box_set_logs(struct mb_box *b, struct sc_buf *c2s, struct sc_buf *s2c)
{
    b->log[SC_DIR_C2S] = c2s;
    b->log[SC_DIR_S2C] = s2c;
    if (b->ep_s)
        sim_ep_set_log(b->ep_s, c2s); /* a proxy's own endpoints send */
    if (b->ep_c)
        sim_ep_set_log(b->ep_c, s2c);
}

unsigned mb_box_actions(const struct mb_box *b)
{
    return (b->insp ? mb_insp_actions(b->insp) : 0u) | (b->relay ? b->relay->actions : 0u);
}

void mb_box_free(struct mb_box *b)
{
    if (!b)
        return;
    for (int d = 0; d < 2; d++) {
        free(b->d[d].hist);
        struct mb_held *h = b->d[d].held;
        while (h) {
            struct mb_held *n = h->next;
            sim_pkt_free(h->p);
            free(h);
            h = n;
        }
    }
    mb_insp_free(b->insp);
    if (b->relay) {
        struct mb_relay *r = b->relay;
        tlsgen_end_free(r->tls_c);
        tlsgen_end_free(r->tls_s);
        sc_buf_free(&r->cline);
        sc_buf_free(&r->sreply);
        sc_buf_free(&r->sline);
        sc_buf_free(&r->out);
        sc_buf_free(&r->app);
        sc_buf_free(&r->pending_s);
        free(r);
    }
    sim_ep_free(b->ep_c);
    sim_ep_free(b->ep_s);
    free(b);
}
