/* persona.c - SMTP client and server personas (RFC 5321, 2920, 3207, 4954). */
#include "pcaps/synth/persona.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/ascii.h"
#include "common/str.h"

#define MS (1000000LL)

/* ---- transport: plaintext or TLS over one endpoint ---- */

struct syn_io {
    struct sim_ep *ep;
    struct tlsgen_end *tls;
    bool tls_up;
    struct sc_buf out, app;
    struct sc_buf line; /* plaintext bytes of the current line */
    size_t record_max;
    struct syn_rng *rng;
    sc_time last_at; /* writes leave in the order they were decided */
};

static void io_init(struct syn_io *io, struct syn_rng *rng)
{
    memset(io, 0, sizeof(*io));
    sc_buf_init(&io->out, 0);
    sc_buf_init(&io->app, 0);
    sc_buf_init(&io->line, 8192);
    io->rng = rng;
}

static void io_free(struct syn_io *io)
{
    tlsgen_end_free(io->tls);
    sc_buf_free(&io->out);
    sc_buf_free(&io->app);
    sc_buf_free(&io->line);
}

static void io_write(struct sim *s, struct syn_io *io, const uint8_t *p, size_t n)
{
    if (!io->ep || n == 0)
        return;
    if (io->tls && io->tls_up) {
        sc_buf_reset(&io->out);
        size_t rec = io->record_max;
        if (rec == 0 && n > 2048)
            rec = 1024 + syn_rng_below(io->rng, 15361); /* random-sized records */
        tlsgen_write(io->tls, p, n, rec, &io->out);
        sim_ep_write(s, io->ep, io->out.data, io->out.len);
    } else {
        sim_ep_write(s, io->ep, p, n);
    }
}

/* Feeds received bytes through TLS when it is on; returns the plaintext in
 * io->app (valid until the next call). */
static const struct sc_buf *io_input(struct sim *s, struct syn_io *io, const uint8_t *p, size_t n)
{
    sc_buf_reset(&io->app);
    if (!io->tls) {
        sc_buf_append(&io->app, p, n);
        return &io->app;
    }
    sc_buf_reset(&io->out);
    tlsgen_input(io->tls, p, n, &io->out, &io->app);
    if (io->out.len)
        sim_ep_write(s, io->ep, io->out.data, io->out.len);
    return &io->app;
}

/* Splits plaintext into lines; calls fn for each complete line (without
 * CRLF).  Returns bytes consumed (a caller may switch modes mid-buffer). */
typedef bool (*line_fn)(struct sim *s, void *self, const char *line, size_t len);

static void io_lines(struct sim *s, struct syn_io *io, const uint8_t *p, size_t n, line_fn fn,
                     void *self)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n') {
            sc_buf_putc(&io->line, p[i]);
            continue;
        }
        size_t len = io->line.len;
        if (len && io->line.data[len - 1] == '\r')
            len--;
        char tmp[8192];
        size_t k = len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1;
        memcpy(tmp, io->line.data ? io->line.data : (const uint8_t *)"", k);
        tmp[k] = 0;
        sc_buf_reset(&io->line);
        if (!fn(s, self, tmp, k))
            return; /* the handler switched modes: drop what followed (no pipelining past it) */
    }
}

/* RFC 4648 base64 of n bytes into out (4*ceil(n/3)+1 bytes). */
static void b64enc(const uint8_t *p, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = 0;
}

static bool verb_is(const char *line, const char *verb)
{
    size_t n = strlen(verb);
    for (size_t i = 0; i < n; i++)
        if (sc_to_upper((uint8_t)line[i]) != (uint8_t)verb[i])
            return false;
    return line[n] == 0 || line[n] == ' ' || line[n] == '\t';
}

/* ---- the oracle view ---- */

static void view_init(struct syn_view *v)
{
    memset(v, 0, sizeof(*v));
    sc_buf_init(&v->banner, 0);
    sc_buf_init(&v->helo, 0);
    sc_buf_init(&v->keywords, 0);
    sc_buf_init(&v->mail_from, 0);
    sc_buf_init(&v->auth, 0);
    sc_buf_init(&v->commands, 0);
    sc_buf_init(&v->replies, 0);
}

static void view_free(struct syn_view *v)
{
    sc_buf_free(&v->banner);
    sc_buf_free(&v->helo);
    sc_buf_free(&v->keywords);
    sc_buf_free(&v->mail_from);
    sc_buf_free(&v->auth);
    sc_buf_free(&v->commands);
    sc_buf_free(&v->replies);
}

/* Records one command line: its verb the way smtpscope's transcript names
 * it (upper case for SMTP verbs, as sent otherwise), and the envelope. */
static void view_command(struct syn_view *v, const char *line)
{
    static const char *const known[] = {
        "HELO", "EHLO", "LHLO",           "MAIL",   "RCPT",    "DATA",     "BDAT", "RSET",
        "VRFY", "EXPN", "HELP",           "NOOP",   "QUIT",    "STARTTLS", "AUTH", "ETRN",
        "TURN", "ATRN", "X-ANONYMOUSTLS", "X-EXPS", "XEXCH50", NULL};
    char verb[64];
    size_t n = 0;
    while (line[n] && line[n] != ' ' && line[n] != '\t' && n < sizeof(verb) - 1) {
        verb[n] = line[n];
        n++;
    }
    verb[n] = 0;
    char up[64];
    for (size_t i = 0; i <= n; i++)
        up[i] = (char)sc_to_upper((uint8_t)verb[i]);
    const char *name = verb;
    for (int i = 0; known[i]; i++)
        if (strcmp(known[i], up) == 0)
            name = known[i];
    sc_buf_printf(&v->commands, "%s%s", v->commands.len ? " " : "", name);
    if ((strcmp(up, "HELO") == 0 || strcmp(up, "EHLO") == 0) && v->helo.len == 0)
        sc_buf_puts(&v->helo, line);
    else if (strcmp(up, "MAIL") == 0 && v->mail_from.len == 0) {
        const char *lt = strchr(line, '<');
        const char *gt = lt ? strchr(lt, '>') : NULL;
        if (lt && gt)
            sc_buf_append(&v->mail_from, lt, (size_t)(gt - lt + 1));
    } else if (strcmp(up, "RCPT") == 0)
        v->rcpt_count++;
    else if (strcmp(up, "STARTTLS") == 0 || strcmp(up, "X-ANONYMOUSTLS") == 0)
        v->attempted = true;
    else if (strcmp(up, "AUTH") == 0 && v->auth.len == 0) {
        const char *m = line + n;
        while (*m == ' ')
            m++;
        for (; *m && *m != ' '; m++)
            sc_buf_putc(&v->auth, sc_to_upper((uint8_t)*m));
    }
}

static void view_reply(struct syn_view *v, int code)
{
    sc_buf_printf(&v->replies, "%s%d", v->replies.len ? " " : "", code);
}

/* Delayed write: the persona thinks before it answers. */
struct later {
    struct syn_io *io;
    struct sc_buf b;
    int action; /* 0 write, 1 close, 2 abort */
};

static void later_ev(struct sim *s, void *arg)
{
    struct later *l = arg;
    if (l->action == 0)
        io_write(s, l->io, l->b.data, l->b.len);
    else if (l->io->ep && l->action == 1)
        sim_ep_close(s, l->io->ep);
    else if (l->io->ep && l->action == 2)
        sim_ep_abort(s, l->io->ep);
    sc_buf_free(&l->b);
    free(l);
}

static void later_drop(void *arg)
{
    struct later *l = arg;
    sc_buf_free(&l->b);
    free(l);
}

static void send_later(struct sim *s, struct syn_io *io, sc_time delay, int action,
                       const char *text)
{
    struct later *l = calloc(1, sizeof(*l));
    if (!l)
        abort();
    l->io = io;
    l->action = action;
    sc_buf_init(&l->b, 0);
    if (text)
        sc_buf_puts(&l->b, text);
    sc_time at = sim_now(s) + delay;
    if (at < io->last_at)
        at = io->last_at; /* think-time jitter must not reorder replies */
    io->last_at = at;
    sim_at_owned(s, at, later_ev, l, later_drop);
}

/* ---- server ---- */

/* States of the server's CRLF.CRLF matcher (RFC 5321 4.1.1.4). */
enum { BD_MID = 0, BD_CR, BD_BOL, BD_DOT, BD_DOTCR };

struct syn_server {
    struct syn_server_cfg cfg;
    struct syn_io io;
    struct syn_rng rng;
    char client_ip[64];
    char helo[128];
    bool data_mode;
    int dot;       /* CRLF.CRLF matcher: 0 mid-line, 1 after CRLF, 2 after ".", 3 after ".\r" */
    int auth_step; /* 0 none, 1 LOGIN user, 2 LOGIN pass, 3 PLAIN waiting */
    bool tls_next; /* switch to TLS after the 220 is written */
    bool quit;
    uint32_t qid;
    sc_time last_activity;
    bool idle_armed;
    struct sc_buf reply;
    struct syn_view view;
    bool ehlo_recorded;
};

static const char *srv_default_banner(const struct syn_server *sv, char *buf, size_t n)
{
    const char *h = sv->cfg.hostname;
    switch (sv->cfg.kind) {
    case SRV_SENDMAIL:
        snprintf(buf, n, "%s ESMTP Sendmail 8.15.2/8.15.2; Fri, 1 Mar 2024 10:00:00 GMT", h);
        break;
    case SRV_EXCHANGE:
        snprintf(buf, n, "%s Microsoft ESMTP MAIL Service ready at Fri, 1 Mar 2024 10:00:00 +0000",
                 h);
        break;
    case SRV_EXCHANGE2003:
        snprintf(buf, n,
                 "%s Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 ready at  Fri, 1 Mar "
                 "2024 10:00:00 +0000",
                 h);
        break;
    case SRV_CISCO_ESA:
        snprintf(buf, n, "%s ESMTP", h);
        break;
    default:
        snprintf(buf, n, "%s ESMTP Postfix", h);
        break;
    }
    return buf;
}

static void srv_keywords(struct syn_server *sv, const char **kw, size_t *n)
{
    size_t k = 0;
    if (sv->cfg.nkeywords) {
        for (size_t i = 0; i < sv->cfg.nkeywords && k < 40; i++)
            kw[k++] = sv->cfg.keywords[i];
        *n = k;
        return;
    }
    bool tls = sv->cfg.starttls, auth = sv->cfg.auth;
    switch (sv->cfg.kind) {
    case SRV_SENDMAIL:
        kw[k++] = "ENHANCEDSTATUSCODES";
        kw[k++] = "PIPELINING";
        kw[k++] = "8BITMIME";
        kw[k++] = "SIZE";
        kw[k++] = "DSN";
        kw[k++] = "ETRN";
        if (auth)
            kw[k++] = "AUTH PLAIN LOGIN";
        if (tls)
            kw[k++] = "STARTTLS";
        kw[k++] = "DELIVERBY";
        kw[k++] = "HELP";
        break;
    case SRV_EXCHANGE:
        kw[k++] = "SIZE 37748736";
        kw[k++] = "PIPELINING";
        kw[k++] = "DSN";
        kw[k++] = "ENHANCEDSTATUSCODES";
        if (tls) {
            kw[k++] = "STARTTLS";
            kw[k++] = "X-ANONYMOUSTLS";
        }
        if (auth)
            kw[k++] = "AUTH NTLM LOGIN";
        kw[k++] = "X-EXPS GSSAPI NTLM";
        kw[k++] = "8BITMIME";
        kw[k++] = "BINARYMIME";
        kw[k++] = "CHUNKING";
        kw[k++] = "XEXCH50";
        kw[k++] = "XRDST";
        kw[k++] = "XSHADOW";
        break;
    case SRV_EXCHANGE2003:
        /* The list from the published Exchange 2003 capture (SIGNATURES.md A4). */
        kw[k++] = "TURN";
        kw[k++] = "SIZE";
        kw[k++] = "ETRN";
        kw[k++] = "PIPELINING";
        kw[k++] = "DSN";
        kw[k++] = "ENHANCEDSTATUSCODES";
        kw[k++] = "8bitmime";
        kw[k++] = "BINARYMIME";
        kw[k++] = "CHUNKING";
        kw[k++] = "VRFY";
        if (tls) {
            kw[k++] = "STARTTLS";
            kw[k++] = "X-ANONYMOUSTLS";
        }
        kw[k++] = "X-EXPS GSSAPI NTLM LOGIN";
        kw[k++] = "X-EXPS=LOGIN";
        kw[k++] = "AUTH GSSAPI NTLM LOGIN";
        kw[k++] = "AUTH=LOGIN";
        kw[k++] = "X-LINK2STATE";
        kw[k++] = "XEXCH50";
        kw[k++] = "OK";
        break;
    case SRV_CISCO_ESA:
        kw[k++] = "8BITMIME";
        kw[k++] = "SIZE 10485760";
        if (tls)
            kw[k++] = "STARTTLS";
        if (auth)
            kw[k++] = "AUTH LOGIN PLAIN";
        break;
    default:
        kw[k++] = "PIPELINING";
        kw[k++] = "SIZE 10240000";
        kw[k++] = "VRFY";
        kw[k++] = "ETRN";
        if (tls)
            kw[k++] = "STARTTLS";
        if (auth)
            kw[k++] = "AUTH PLAIN LOGIN";
        kw[k++] = "ENHANCEDSTATUSCODES";
        kw[k++] = "8BITMIME";
        kw[k++] = "DSN";
        kw[k++] = "SMTPUTF8";
        kw[k++] = "CHUNKING";
        break;
    }
    *n = k;
}

static void srv_say(struct sim *s, struct syn_server *sv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void srv_say(struct sim *s, struct syn_server *sv, const char *fmt, ...)
{
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
    va_end(ap);
    if (!sv->io.tls) {
        if (sv->view.banner.len == 0)
            sc_buf_puts(&sv->view.banner, buf);
        if (strlen(buf) < 4 || buf[3] != '-')
            view_reply(&sv->view, atoi(buf));
    }
    strcat(buf, "\r\n");
    sc_buf_puts(&sv->reply, buf);
    (void)s;
}

static void srv_flush(struct sim *s, struct syn_server *sv)
{
    if (sv->reply.len == 0)
        return;
    sc_time jitter = (sc_time)syn_rng_below(&sv->rng, 200000);
    send_later(s, &sv->io, sv->cfg.think + jitter, 0, sc_buf_str(&sv->reply));
    sc_buf_reset(&sv->reply);
}

static const char *srv_unknown(struct syn_server *sv, const char *line, char *buf, size_t n)
{
    switch (sv->cfg.kind) {
    case SRV_SENDMAIL:
        snprintf(buf, n, "500 5.5.1 Command unrecognized: \"%.400s\"", line);
        break;
    case SRV_EXCHANGE:
    case SRV_EXCHANGE2003:
        snprintf(buf, n, "500 5.3.3 Unrecognized command");
        break;
    case SRV_CISCO_ESA:
        snprintf(buf, n, "500 #5.5.1 command not recognized");
        break;
    default:
        snprintf(buf, n, "500 5.5.2 Error: command not recognized");
        break;
    }
    return buf;
}

static void srv_ehlo(struct sim *s, struct syn_server *sv, bool ehlo, const char *arg)
{
    snprintf(sv->helo, sizeof(sv->helo), "%.100s", arg);
    const char *h = sv->cfg.hostname;
    char first[400];
    switch (sv->cfg.kind) {
    case SRV_SENDMAIL:
        snprintf(first, sizeof(first), "%s Hello %s [%s], pleased to meet you", h, arg,
                 sv->client_ip);
        break;
    case SRV_EXCHANGE:
    case SRV_EXCHANGE2003:
        snprintf(first, sizeof(first), "%s Hello [%s]", h, sv->client_ip);
        break;
    default:
        sc_strlcpy(first, sizeof(first), h);
        break;
    }
    if (!ehlo) {
        srv_say(s, sv, "250 %s", first);
        return;
    }
    const char *kw[48];
    size_t n = 0;
    srv_keywords(sv, kw, &n);
    if (!sv->ehlo_recorded && !sv->io.tls) {
        sv->ehlo_recorded = true;
        sv->view.keywords_set = true;
        for (size_t i = 0; i < n; i++) {
            sc_buf_append(&sv->view.keywords, kw[i], strlen(kw[i]) + 1);
            sv->view.nkeywords++;
            if (verb_is(kw[i], "STARTTLS") || verb_is(kw[i], "X-ANONYMOUSTLS"))
                sv->view.offered = true;
        }
    }
    srv_say(s, sv, "250%c%s", n ? '-' : ' ', first);
    for (size_t i = 0; i < n; i++)
        srv_say(s, sv, "250%c%s", i + 1 < n ? '-' : ' ', kw[i]);
}

static bool srv_rejects(const struct syn_server *sv, const char *line)
{
    for (size_t i = 0; i < sv->cfg.nreject; i++)
        if (strstr(line, sv->cfg.reject[i]))
            return true;
    return false;
}

static void srv_idle_ev(struct sim *s, void *arg);

/* Notes activity; one idle timer at a time checks it (RFC 5321 4.5.3.2). */
static void srv_touch(struct sim *s, struct syn_server *sv)
{
    sv->last_activity = sim_now(s);
    if (sv->cfg.idle_timeout <= 0 || sv->idle_armed)
        return;
    sv->idle_armed = true;
    sim_at(s, sim_now(s) + sv->cfg.idle_timeout, srv_idle_ev, sv);
}

static void srv_idle_ev(struct sim *s, void *arg)
{
    struct syn_server *sv = arg;
    sv->idle_armed = false;
    if (sv->quit || !sv->io.ep || sim_ep_closed(sv->io.ep))
        return;
    sc_time idle = sim_now(s) - sv->last_activity;
    if (idle < sv->cfg.idle_timeout) {
        sv->idle_armed = true;
        sim_at(s, sv->last_activity + sv->cfg.idle_timeout, srv_idle_ev, sv);
        return;
    }
    sv->quit = true;
    srv_say(s, sv, "421 4.4.2 %s Error: timeout exceeded", sv->cfg.hostname);
    sv->cfg.think = 0;
    srv_flush(s, sv);
    send_later(s, &sv->io, 1 * MS, 1, NULL);
}

static bool srv_line(struct sim *s, void *self, const char *line, size_t len);

static bool srv_command(struct sim *s, struct syn_server *sv, const char *line)
{
    char buf[600];
    const char *sp = strchr(line, ' ');
    const char *arg = sp ? sp + 1 : "";
    bool tls_offer = sv->cfg.starttls && !sv->io.tls;
    enum syn_server_kind k = sv->cfg.kind;
    bool exch = k == SRV_EXCHANGE || k == SRV_EXCHANGE2003;
    if (sv->auth_step == 0 && !sv->io.tls)
        view_command(&sv->view, line);
    if (sv->auth_step == 1 || sv->auth_step == 2) {
        if (sv->auth_step == 1) {
            srv_say(s, sv, "334 UGFzc3dvcmQ6");
            sv->auth_step = 2;
        } else {
            srv_say(s, sv, "235 2.7.0 Authentication successful");
            sv->auth_step = 0;
        }
        return true;
    }
    if (sv->auth_step == 3) {
        srv_say(s, sv, "235 2.7.0 Authentication successful");
        sv->auth_step = 0;
        return true;
    }
    if (verb_is(line, "EHLO") || verb_is(line, "HELO")) {
        srv_ehlo(s, sv, verb_is(line, "EHLO"), arg);
    } else if (verb_is(line, "MAIL")) {
        const char *lt = strchr(line, '<');
        srv_say(s, sv, "%s",
                k == SRV_SENDMAIL    ? "250 2.1.0 Sender ok"
                : exch               ? "250 2.1.0 Sender OK"
                : k == SRV_CISCO_ESA ? "250 sender ok"
                                     : "250 2.1.0 Ok");
        (void)lt;
    } else if (verb_is(line, "RCPT")) {
        if (srv_rejects(sv, line))
            srv_say(s, sv, "%s",
                    exch ? "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by "
                           "SMTP address lookup"
                         : "550 5.1.1 <unknown>: Recipient address rejected: User unknown in "
                           "local recipient table");
        else
            srv_say(s, sv, "%s",
                    k == SRV_SENDMAIL    ? "250 2.1.5 Recipient ok"
                    : exch               ? "250 2.1.5 Recipient OK"
                    : k == SRV_CISCO_ESA ? "250 recipient ok"
                                         : "250 2.1.5 Ok");
    } else if (verb_is(line, "DATA")) {
        srv_say(s, sv, "%s",
                k == SRV_SENDMAIL    ? "354 Enter mail, end with \".\" on a line by itself"
                : exch               ? "354 Start mail input; end with <CRLF>.<CRLF>"
                : k == SRV_CISCO_ESA ? "354 go ahead"
                                     : "354 End data with <CR><LF>.<CR><LF>");
        sv->data_mode = true;
        sv->dot = BD_BOL;
        return false; /* what follows is the message */
    } else if (verb_is(line, "RSET")) {
        srv_say(s, sv, "250 2.0.0 Ok");
    } else if (verb_is(line, "NOOP")) {
        srv_say(s, sv, "%s", k == SRV_SENDMAIL || exch ? "250 2.0.0 OK" : "250 2.0.0 Ok");
    } else if (verb_is(line, "VRFY")) {
        srv_say(s, sv, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
    } else if (verb_is(line, "QUIT")) {
        srv_say(s, sv, "%s",
                k == SRV_SENDMAIL ? "221 2.0.0 closing connection"
                : exch            ? "221 2.0.0 Service closing transmission channel"
                                  : "221 2.0.0 Bye");
        sv->quit = true;
        srv_flush(s, sv);
        send_later(s, &sv->io, sv->cfg.think + 1 * MS, 1, NULL);
        return false;
    } else if ((verb_is(line, "STARTTLS") || (exch && verb_is(line, "X-ANONYMOUSTLS"))) &&
               tls_offer && sv->cfg.tls) {
        srv_say(s, sv, "%s", exch ? "220 2.0.0 SMTP server ready" : "220 2.0.0 Ready to start TLS");
        sv->view.replied = true;
        sv->view.starttls_code = 220;
        sv->tls_next = true;
        return false; /* nothing after it is read in cleartext */
    } else if (verb_is(line, "STARTTLS")) {
        srv_say(s, sv, "%s",
                k == SRV_SENDMAIL ? "454 4.3.3 TLS not available after start"
                : exch            ? "500 5.3.3 Unrecognized command"
                                  : "502 5.5.1 Error: command not implemented");
        sv->view.replied = true;
        sv->view.starttls_code = k == SRV_SENDMAIL ? 454 : exch ? 500 : 502;
    } else if (verb_is(line, "AUTH")) {
        if (!sv->cfg.auth) {
            srv_say(s, sv, "503 5.5.1 Error: authentication not enabled");
        } else if (strncasecmp(arg, "LOGIN", 5) == 0) {
            srv_say(s, sv, "334 VXNlcm5hbWU6");
            sv->auth_step = 1;
        } else if (strncasecmp(arg, "PLAIN", 5) == 0 && strlen(arg) > 6) {
            srv_say(s, sv, "235 2.7.0 Authentication successful");
        } else if (strncasecmp(arg, "PLAIN", 5) == 0) {
            srv_say(s, sv, "334 ");
            sv->auth_step = 3;
        } else {
            srv_say(s, sv, "504 5.5.4 Unrecognized authentication type");
        }
    } else {
        srv_say(s, sv, "%s", srv_unknown(sv, line, buf, sizeof(buf)));
    }
    return true;
}

static bool srv_line(struct sim *s, void *self, const char *line, size_t len)
{
    (void)len;
    struct syn_server *sv = self;
    if (sv->quit)
        return false;
    return srv_command(s, sv, line);
}

static void srv_queued(struct sim *s, struct syn_server *sv)
{
    if (!sv->io.tls)
        sv->view.messages++;
    sv->qid = sv->qid * 1103515245u + 12345u;
    switch (sv->cfg.kind) {
    case SRV_SENDMAIL:
        srv_say(s, sv, "250 2.0.0 4%07X Message accepted for delivery", sv->qid & 0xfffffff);
        break;
    case SRV_EXCHANGE:
    case SRV_EXCHANGE2003:
        srv_say(s, sv, "250 2.6.0 <%08X@%s> Queued mail for delivery", sv->qid, sv->cfg.hostname);
        break;
    case SRV_CISCO_ESA:
        srv_say(s, sv, "250 ok:  Message %u accepted", sv->qid & 0xffffff);
        break;
    default:
        srv_say(s, sv, "250 2.0.0 Ok: queued as %08X", sv->qid);
        break;
    }
    srv_flush(s, sv);
}

/* Message bytes: look for CRLF.CRLF; returns bytes consumed. */
static size_t srv_body(struct sim *s, struct syn_server *sv, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        switch (sv->dot) {
        case BD_CR:
            sv->dot = c == '\n' ? BD_BOL : c == '\r' ? BD_CR : BD_MID;
            break;
        case BD_BOL:
            sv->dot = c == '.' ? BD_DOT : c == '\r' ? BD_CR : BD_MID;
            break;
        case BD_DOT:
            sv->dot = c == '\r' ? BD_DOTCR : BD_MID;
            break;
        case BD_DOTCR:
            if (c == '\n') {
                sv->data_mode = false;
                sv->dot = BD_MID;
                srv_queued(s, sv);
                return i + 1;
            }
            sv->dot = c == '\r' ? BD_CR : BD_MID;
            break;
        default:
            sv->dot = c == '\r' ? BD_CR : BD_MID;
            break;
        }
    }
    return n;
}

static void srv_plain(struct sim *s, struct syn_server *sv, const uint8_t *p, size_t n)
{
    while (n > 0 && !sv->quit) {
        if (sv->data_mode) {
            size_t k = srv_body(s, sv, p, n);
            p += k;
            n -= k;
            continue;
        }
        /* Feed lines until one switches modes. */
        size_t i = 0;
        bool go_on = true;
        while (i < n && go_on && !sv->data_mode) {
            uint8_t c = p[i++];
            if (c != '\n') {
                sc_buf_putc(&sv->io.line, c);
                continue;
            }
            size_t len = sv->io.line.len;
            if (len && sv->io.line.data[len - 1] == '\r')
                len--;
            char tmp[8192];
            size_t k = len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1;
            memcpy(tmp, sv->io.line.data ? sv->io.line.data : (const uint8_t *)"", k);
            tmp[k] = 0;
            sc_buf_reset(&sv->io.line);
            go_on = srv_line(s, sv, tmp, k);
        }
        srv_flush(s, sv);
        p += i;
        n -= i;
        if (!go_on && !sv->data_mode)
            break; /* QUIT or STARTTLS: ignore the rest */
    }
}

static void srv_greet(struct sim *s, struct syn_server *sv);

static void srv_data(struct sim *s, struct sim_ep *e, void *app, const uint8_t *p, size_t n)
{
    (void)e;
    struct syn_server *sv = app;
    srv_touch(s, sv);
    const struct sc_buf *plain = io_input(s, &sv->io, p, n);
    if (plain->len)
        srv_plain(s, sv, plain->data, plain->len);
    if (sv->tls_next) {
        /* The 220 is on its way; the next bytes are the ClientHello. */
        sv->tls_next = false;
        sv->io.tls = tlsgen_server(sv->cfg.tls);
        sv->io.tls_up = false;
    }
    if (sv->io.tls && !sv->io.tls_up && tlsgen_established(sv->io.tls)) {
        sv->io.tls_up = true;
        sv->view.tls = true;
        if (sv->cfg.implicit_tls)
            srv_greet(s, sv);
    }
}

static void srv_greet(struct sim *s, struct syn_server *sv)
{
    char banner[400];
    const char *text =
        sv->cfg.banner ? sv->cfg.banner : srv_default_banner(sv, banner, sizeof(banner));
    if (sv->cfg.banner_lines > 1) {
        srv_say(s, sv, "220-%s", text);
        for (int i = 1; i < sv->cfg.banner_lines - 1; i++)
            srv_say(s, sv, "220-Unauthorised use of this system is prohibited (line %d)", i);
        srv_say(s, sv, "220 Ready");
    } else {
        srv_say(s, sv, "220 %s", text);
    }
    srv_flush(s, sv);
    srv_touch(s, sv);
}

static void srv_connected(struct sim *s, struct sim_ep *e, void *app)
{
    (void)e;
    struct syn_server *sv = app;
    if (sv->cfg.implicit_tls && sv->cfg.tls) {
        /* Port 465: the handshake first, the greeting inside TLS. */
        sv->io.tls = tlsgen_server(sv->cfg.tls);
        sv->io.tls_up = false;
        srv_touch(s, sv);
        return;
    }
    srv_greet(s, sv);
}

static void srv_fin(struct sim *s, struct sim_ep *e, void *app)
{
    struct syn_server *sv = app;
    if (!sv->quit) {
        sv->quit = true;
        send_later(s, &sv->io, 1 * MS, 1, NULL);
    }
    (void)e;
}

static void srv_reset(struct sim *s, struct sim_ep *e, void *app)
{
    (void)s;
    (void)e;
    struct syn_server *sv = app;
    sv->quit = true;
}

static const struct sim_ep_cb srv_cb = {srv_connected, srv_data, srv_fin, srv_reset};

struct syn_server *syn_server_new(struct sim *s, const struct syn_server_cfg *cfg,
                                  const struct sim_ep_opts *o, struct sim_link *l, int end,
                                  uint64_t seed)
{
    struct syn_server *sv = calloc(1, sizeof(*sv));
    if (!sv)
        abort();
    sv->cfg = *cfg;
    if (!sv->cfg.hostname)
        sv->cfg.hostname = "mx.example.com";
    syn_rng_seed(&sv->rng, seed, 0x5e7);
    io_init(&sv->io, &sv->rng);
    sc_buf_init(&sv->reply, 0);
    view_init(&sv->view);
    sv->qid = (uint32_t)syn_rng_next(&sv->rng);
    cap_endpoint_str(sv->client_ip, sizeof(sv->client_ip), &o->peer_addr, 0);
    char *colon = strrchr(sv->client_ip, ':');
    if (colon)
        *colon = 0;
    if (sv->client_ip[0] == '[') {
        memmove(sv->client_ip, sv->client_ip + 1, strlen(sv->client_ip));
        char *rb = strchr(sv->client_ip, ']');
        if (rb)
            *rb = 0;
    }
    sv->io.ep = sim_ep_new(s, o, l, end, &srv_cb, sv);
    return sv;
}

void syn_server_free(struct syn_server *sv)
{
    if (!sv)
        return;
    sim_ep_free(sv->io.ep);
    io_free(&sv->io);
    sc_buf_free(&sv->reply);
    view_free(&sv->view);
    free(sv);
}

const struct syn_view *syn_server_view(const struct syn_server *sv)
{
    return &sv->view;
}

/* ---- client ---- */

enum cli_phase {
    PH_BANNER = 0,
    PH_HELLO,
    PH_STARTTLS,
    PH_HANDSHAKE,
    PH_AUTH,
    PH_TX, /* MAIL, RCPT..., DATA replies */
    PH_BODY,
    PH_QUIT,
    PH_DONE,
    PH_SCRIPT,
};

struct syn_client {
    struct syn_client_cfg cfg;
    struct syn_io io;
    struct syn_rng rng;
    struct syn_client_result res;
    enum cli_phase ph;
    bool ehlo_failed, helo_only;
    bool offered_tls, offered_xanon, offered_pipe, offered_auth, offered_xexps;
    bool in_tls;
    int auth_step;
    int msg;       /* messages sent so far */
    int tx_expect; /* replies still expected in PH_TX */
    int rcpt_ok;
    bool data_ok;
    size_t script_i;
    bool script_data;
    int reply_code;
    struct sc_buf body;
    sc_time last_reply; /* when the last complete reply arrived (or the connect) */
    bool timer_armed;
    struct syn_view view;
    bool ehlo_recorded;
    char script_verb[16]; /* raw scripts: the verb of the last line sent */
};

static void cli_timeout_ev(struct sim *s, void *arg);

/* A reply is due: one timer at a time watches for it (RFC 5321 4.5.3.2). */
static void cli_expect(struct sim *s, struct syn_client *c)
{
    if (c->cfg.reply_timeout <= 0 || c->timer_armed)
        return;
    c->timer_armed = true;
    sim_at(s, sim_now(s) + c->cfg.reply_timeout, cli_timeout_ev, c);
}

/* Sends one line; `record` is false for AUTH responses (no command). */
static void cli_send_line(struct sim *s, struct syn_client *c, const char *line, bool record);

static void cli_send(struct sim *s, struct syn_client *c, const char *line)
{
    cli_send_line(s, c, line, true);
}

static void cli_send_line(struct sim *s, struct syn_client *c, const char *line, bool record)
{
    cli_expect(s, c);
    if (record && !c->in_tls && !c->script_data)
        view_command(&c->view, line);
    char buf[2048];
    snprintf(buf, sizeof(buf), "%s\r\n", line);
    if (c->cfg.kind == CLI_TELNET) {
        /* One keystroke per segment. */
        size_t n = strlen(buf);
        for (size_t i = 0; i < n; i++) {
            char one[2] = {buf[i], 0};
            send_later(s, &c->io, c->cfg.think + (sc_time)i * c->cfg.keystroke, 0, one);
        }
        return;
    }
    send_later(s, &c->io, c->cfg.think, 0, buf);
}

static void cli_quit(struct sim *s, struct syn_client *c)
{
    switch (c->cfg.end) {
    case END_FIN:
        c->ph = PH_DONE;
        send_later(s, &c->io, c->cfg.think, 1, NULL);
        break;
    case END_RST:
        c->ph = PH_DONE;
        send_later(s, &c->io, c->cfg.think, 2, NULL);
        break;
    default:
        c->ph = PH_QUIT;
        cli_send(s, c, "QUIT");
        break;
    }
}

static void cli_hello(struct sim *s, struct syn_client *c)
{
    char line[2048];
    c->ph = PH_HELLO;
    c->offered_tls = c->offered_xanon = c->offered_pipe = c->offered_auth = false;
    c->offered_xexps = false;
    snprintf(line, sizeof(line), "%s %s", c->helo_only ? "HELO" : "EHLO",
             c->cfg.helo ? c->cfg.helo : "client.example.org");
    cli_send(s, c, line);
}

static void cli_transaction(struct sim *s, struct syn_client *c)
{
    char line[2048];
    c->ph = PH_TX;
    c->rcpt_ok = 0;
    c->data_ok = false;
    bool pipe = c->offered_pipe &&
                (c->cfg.pipelining || c->cfg.kind == CLI_POSTFIX || c->cfg.kind == CLI_EXCHANGE);
    struct sc_buf batch;
    sc_buf_init(&batch, 0);
    snprintf(line, sizeof(line), "MAIL FROM:<%s>", c->cfg.mail_from ? c->cfg.mail_from : "");
    sc_buf_printf(&batch, "%s\r\n", line);
    size_t n = c->cfg.nrcpt ? c->cfg.nrcpt : 1;
    for (size_t i = 0; i < n; i++)
        sc_buf_printf(&batch, "RCPT TO:<%s>\r\n",
                      c->cfg.nrcpt ? c->cfg.rcpt[i] : "postmaster@example.com");
    sc_buf_puts(&batch, "DATA\r\n");
    c->tx_expect = (int)n + 2;
    if (pipe && !c->in_tls) {
        /* Record the pipelined batch line by line. */
        char *copy = strdup(sc_buf_str(&batch));
        for (char *save = NULL, *ln = strtok_r(copy, "\r\n", &save); ln;
             ln = strtok_r(NULL, "\r\n", &save))
            view_command(&c->view, ln);
        free(copy);
    }
    if (pipe) {
        send_later(s, &c->io, c->cfg.think, 0, sc_buf_str(&batch));
    } else {
        /* One at a time: send MAIL now, the rest as the replies come. */
        cli_send(s, c, line);
    }
    sc_buf_free(&batch);
}

static void cli_next_tx_command(struct sim *s, struct syn_client *c)
{
    /* Without pipelining: which command follows the reply just received. */
    size_t n = c->cfg.nrcpt ? c->cfg.nrcpt : 1;
    int sent_rcpt = (int)n + 2 - c->tx_expect - 1; /* replies seen so far minus MAIL */
    char line[2048];
    if (sent_rcpt < (int)n) {
        snprintf(line, sizeof(line), "RCPT TO:<%s>",
                 c->cfg.nrcpt ? c->cfg.rcpt[sent_rcpt] : "postmaster@example.com");
        cli_send(s, c, line);
    } else {
        cli_send(s, c, "DATA");
    }
}

static void cli_body(struct sim *s, struct syn_client *c)
{
    c->ph = PH_BODY;
    sc_buf_reset(&c->body);
    struct syn_body_opts bo = c->cfg.body;
    if (!bo.from)
        bo.from = c->cfg.mail_from;
    if (!bo.to && c->cfg.nrcpt)
        bo.to = c->cfg.rcpt[0];
    syn_body(&c->body, &bo, &c->rng);
    if (c->cfg.dot_delay > 0) {
        /* The message now, its end on its own later (a separate segment). */
        send_later(s, &c->io, c->cfg.think, 0, sc_buf_str(&c->body));
        send_later(s, &c->io, c->cfg.think + c->cfg.dot_delay, 0, ".\r\n");
    } else {
        sc_buf_puts(&c->body, ".\r\n");
        send_later(s, &c->io, c->cfg.think, 0, sc_buf_str(&c->body));
    }
    c->msg++;
    if (!c->in_tls)
        c->view.messages++;
}

static void cli_after_hello(struct sim *s, struct syn_client *c)
{
    /* "always" tries even without TLS of its own (it is then refused, or
     * quits on a 220 it cannot follow). */
    bool want_tls =
        !c->in_tls &&
        (c->cfg.starttls == TLSUSE_ALWAYS ||
         (c->cfg.starttls == TLSUSE_AUTO && c->cfg.tls && (c->offered_tls || c->offered_xanon)));
    if (c->cfg.kind == CLI_TELNET && c->cfg.starttls != TLSUSE_ALWAYS)
        want_tls = false;
    if (c->cfg.kind == CLI_EXCHANGE && c->cfg.require_exchange_auth && !c->in_tls &&
        !c->offered_xanon) {
        /* Exchange cannot authenticate its peer: it queues the mail with
         * "451 5.7.3 Cannot achieve Exchange Server authentication". */
        c->res.gave_up = true;
        cli_quit(s, c);
        return;
    }
    if (want_tls) {
        c->ph = PH_STARTTLS;
        cli_send(s, c,
                 c->cfg.kind == CLI_EXCHANGE && c->offered_xanon ? "X-ANONYMOUSTLS" : "STARTTLS");
        return;
    }
    if (c->cfg.auth_mech && c->offered_auth && c->auth_step == 0) {
        c->ph = PH_AUTH;
        c->auth_step = 1;
        if (strcmp(c->cfg.auth_mech, "PLAIN") == 0) {
            /* RFC 4616: base64("\0" user "\0" password) as the initial response. */
            uint8_t raw[300];
            size_t ul = strlen(c->cfg.auth_user ? c->cfg.auth_user : "");
            size_t pl = strlen(c->cfg.auth_pass ? c->cfg.auth_pass : "");
            if (ul > 140)
                ul = 140;
            if (pl > 140)
                pl = 140;
            raw[0] = 0;
            memcpy(raw + 1, c->cfg.auth_user ? c->cfg.auth_user : "", ul);
            raw[1 + ul] = 0;
            memcpy(raw + 2 + ul, c->cfg.auth_pass ? c->cfg.auth_pass : "", pl);
            char enc[420], line[440];
            b64enc(raw, 2 + ul + pl, enc);
            snprintf(line, sizeof(line), "AUTH PLAIN %s", enc);
            cli_send(s, c, line);
        } else {
            cli_send(s, c, "AUTH LOGIN");
        }
        return;
    }
    if (c->msg < c->cfg.messages)
        cli_transaction(s, c);
    else
        cli_quit(s, c);
}

static bool banner_is_masked(const char *text)
{
    /* Postfix's PIX workaround: a banner made only of '2', '0', '*' and blanks. */
    if (!*text)
        return false;
    for (const char *p = text; *p; p++)
        if (*p != '2' && *p != '0' && *p != '*' && *p != ' ' && *p != '\t')
            return false;
    return true;
}

static void cli_script_next(struct sim *s, struct syn_client *c)
{
    while (c->script_i < c->cfg.nscript) {
        const char *line = c->cfg.script[c->script_i++];
        if (c->script_data && strcmp(line, ".") == 0 && !c->in_tls)
            c->view.messages++;
        if (!c->script_data) {
            /* Remember the verb so its reply updates the view as a persona's would. */
            size_t k = 0;
            while (line[k] && line[k] != ' ' && k < sizeof(c->script_verb) - 1) {
                c->script_verb[k] = (char)sc_to_upper((uint8_t)line[k]);
                k++;
            }
            c->script_verb[k] = 0;
        }
        cli_send(s, c, line);
        if (c->script_data) {
            if (strcmp(line, ".") == 0)
                c->script_data = false;
            else
                continue; /* message lines go out without waiting */
        }
        return;
    }
    if (c->ph != PH_DONE) {
        c->ph = PH_DONE;
        send_later(s, &c->io, c->cfg.think + 5 * MS, c->cfg.end == END_RST ? 2 : 1, NULL);
    }
}

static void cli_timeout_ev(struct sim *s, void *arg)
{
    struct syn_client *c = arg;
    c->timer_armed = false;
    if (c->ph == PH_DONE || c->res.aborted)
        return;
    sc_time waited = sim_now(s) - c->last_reply;
    if (waited < c->cfg.reply_timeout) {
        c->timer_armed = true;
        sim_at(s, c->last_reply + c->cfg.reply_timeout, cli_timeout_ev, c);
        return;
    }
    c->res.aborted = true;
    c->ph = PH_DONE;
    send_later(s, &c->io, 0, 1, NULL);
}

static void cli_reply(struct sim *s, struct syn_client *c, int code, const char *first,
                      const char *const *lines, size_t nlines)
{
    c->last_reply = sim_now(s);
    if (c->ph == PH_SCRIPT || c->cfg.kind == CLI_RAW) {
        c->ph = PH_SCRIPT;
        if (code == 354)
            c->script_data = true;
        if (code == 220 && !c->res.greeted)
            c->res.greeted = true;
        cli_script_next(s, c);
        return;
    }
    switch (c->ph) {
    case PH_BANNER:
        c->res.greeted = true;
        if (code != 220) {
            cli_quit(s, c);
            return;
        }
        if (c->cfg.kind == CLI_POSTFIX && banner_is_masked(first + (strlen(first) > 3 ? 4 : 3)))
            c->helo_only = true;
        if (c->helo_only)
            c->res.used_helo = true;
        cli_hello(s, c);
        return;
    case PH_HELLO:
        if (code / 100 == 5 && !c->helo_only) {
            c->helo_only = true;
            c->res.used_helo = true;
            cli_hello(s, c);
            return;
        }
        if (code != 250) {
            cli_quit(s, c);
            return;
        }
        for (size_t i = 1; i < nlines; i++) {
            const char *kw = lines[i];
            if (verb_is(kw, "STARTTLS"))
                c->offered_tls = true;
            else if (verb_is(kw, "X-ANONYMOUSTLS"))
                c->offered_xanon = true;
            else if (verb_is(kw, "PIPELINING"))
                c->offered_pipe = true;
            else if (verb_is(kw, "AUTH"))
                c->offered_auth = true;
            else if (verb_is(kw, "X-EXPS"))
                c->offered_xexps = true;
        }
        cli_after_hello(s, c);
        return;
    case PH_STARTTLS:
        if (code == 220 && !c->cfg.tls) {
            cli_quit(s, c);
            return;
        }
        if (code == 220) {
            c->ph = PH_HANDSHAKE;
            c->io.tls = tlsgen_client(c->cfg.tls);
            c->io.tls_up = false;
            sc_buf_reset(&c->io.out);
            tlsgen_start(c->io.tls, &c->io.out);
            sim_ep_write(s, c->io.ep, c->io.out.data, c->io.out.len);
            return;
        }
        /* Refused: carry on in cleartext, as opportunistic TLS does. */
        c->cfg.starttls = TLSUSE_NEVER;
        cli_after_hello(s, c);
        return;
    case PH_AUTH:
        if (code == 334 && (c->auth_step == 1 || c->auth_step == 2)) {
            const char *v = c->auth_step == 1 ? c->cfg.auth_user : c->cfg.auth_pass;
            char enc[420];
            size_t vl = strlen(v ? v : "");
            b64enc((const uint8_t *)(v ? v : ""), vl > 300 ? 300 : vl, enc);
            c->auth_step++;
            cli_send_line(s, c, enc, false);
        } else {
            c->auth_step = 9;
            cli_after_hello(s, c);
        }
        return;
    case PH_TX: {
        bool pipe = c->offered_pipe && (c->cfg.pipelining || c->cfg.kind == CLI_POSTFIX ||
                                        c->cfg.kind == CLI_EXCHANGE);
        size_t n = c->cfg.nrcpt ? c->cfg.nrcpt : 1;
        int idx = (int)n + 2 - c->tx_expect; /* 0 MAIL, 1..n RCPT, n+1 DATA */
        c->tx_expect--;
        if (idx >= 1 && idx <= (int)n && code / 100 == 2)
            c->rcpt_ok++;
        if (idx == (int)n + 1) {
            if (code == 354 && c->rcpt_ok > 0) {
                cli_body(s, c);
            } else if (code == 354) {
                /* Nothing to deliver: end the data at once (RFC 2920 3.1). */
                c->ph = PH_BODY;
                send_later(s, &c->io, c->cfg.think, 0, ".\r\n");
            } else {
                cli_quit(s, c);
            }
            return;
        }
        if (idx == 0 && code / 100 != 2 && !pipe) {
            cli_quit(s, c);
            return;
        }
        if (!pipe) {
            if (idx == (int)n && c->rcpt_ok == 0) {
                cli_quit(s, c);
                return;
            }
            cli_next_tx_command(s, c);
        }
        return;
    }
    case PH_BODY:
        if (code / 100 == 2)
            c->res.messages_accepted++;
        if (c->msg < c->cfg.messages)
            cli_transaction(s, c);
        else
            cli_quit(s, c);
        return;
    case PH_QUIT:
        c->ph = PH_DONE;
        send_later(s, &c->io, c->cfg.think, c->cfg.rst_after_quit ? 2 : 1, NULL);
        return;
    default:
        return;
    }
}

/* Reply assembly: lines of one (multi-line) reply. */
struct cli_rep {
    char lines[64][256];
    size_t n;
};

static bool cli_line(struct sim *s, void *self, const char *line, size_t len);

struct cli_with_rep {
    struct syn_client *c;
    struct cli_rep rep;
    char first[512]; /* the greeting's first line, raw */
};

static bool cli_line(struct sim *s, void *self, const char *line, size_t len)
{
    struct cli_with_rep *cw = self;
    struct syn_client *c = cw->c;
    if (len < 3 || !sc_is_digit((uint8_t)line[0]))
        return true; /* not a reply line (a masked continuation): keep waiting */
    if (cw->rep.n == 0 && c->view.banner.len == 0)
        sc_strlcpy(cw->first, sizeof(cw->first), line);
    if (cw->rep.n < 64)
        sc_strlcpy(cw->rep.lines[cw->rep.n++], 256, len > 4 ? line + 4 : "");
    if (len > 3 && line[3] == '-')
        return true;
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (!c->in_tls) {
        if (c->view.banner.len == 0)
            sc_buf_puts(&c->view.banner, cw->first);
        view_reply(&c->view, code);
        bool script = c->ph == PH_SCRIPT || c->cfg.kind == CLI_RAW;
        bool ehlo_reply =
            script ? strcmp(c->script_verb, "EHLO") == 0 : c->ph == PH_HELLO && !c->helo_only;
        bool tls_reply = script ? strcmp(c->script_verb, "STARTTLS") == 0 : c->ph == PH_STARTTLS;
        if (ehlo_reply && code == 250 && !c->ehlo_recorded) {
            c->ehlo_recorded = true;
            c->view.keywords_set = true;
            for (size_t i = 1; i < cw->rep.n; i++) {
                const char *kw = cw->rep.lines[i];
                sc_buf_append(&c->view.keywords, kw, strlen(kw) + 1);
                c->view.nkeywords++;
                if (verb_is(kw, "STARTTLS") || verb_is(kw, "X-ANONYMOUSTLS"))
                    c->view.offered = true;
            }
        }
        if (tls_reply && !c->view.replied) {
            c->view.replied = true;
            c->view.starttls_code = code;
        }
    }
    const char *ptrs[64];
    for (size_t i = 0; i < cw->rep.n; i++)
        ptrs[i] = cw->rep.lines[i];
    size_t n = cw->rep.n;
    cw->rep.n = 0;
    c->reply_code = code;
    cli_reply(s, c, code, line, ptrs, n);
    return c->ph != PH_HANDSHAKE;
}

static struct cli_with_rep *cli_rep_state(struct syn_client *c);

static void cli_data(struct sim *s, struct sim_ep *e, void *app, const uint8_t *p, size_t n)
{
    (void)e;
    struct syn_client *c = app;
    const struct sc_buf *plain = io_input(s, &c->io, p, n);
    if (c->ph == PH_HANDSHAKE && c->io.tls && tlsgen_established(c->io.tls)) {
        c->io.tls_up = true;
        c->in_tls = true;
        c->res.tls = true;
        c->view.tls = true;
        c->helo_only = false;
        sc_buf_reset(&c->io.line);
        if (c->cfg.implicit_tls && !c->res.greeted)
            c->ph = PH_BANNER; /* the greeting comes inside TLS */
        else
            cli_hello(s, c); /* RFC 3207 4.2: start over with EHLO */
    }
    if (c->ph == PH_HANDSHAKE && c->io.tls && tlsgen_failed(c->io.tls)) {
        c->ph = PH_DONE;
        send_later(s, &c->io, c->cfg.think, 1, NULL);
        return;
    }
    if (plain->len && c->ph != PH_HANDSHAKE)
        io_lines(s, &c->io, plain->data, plain->len, cli_line, cli_rep_state(c));
}

static void cli_connected(struct sim *s, struct sim_ep *e, void *app)
{
    (void)e;
    struct syn_client *c = app;
    if (!c->cfg.implicit_tls || !c->cfg.tls)
        return;
    /* Port 465: the handshake before anything else. */
    c->ph = PH_HANDSHAKE;
    c->io.tls = tlsgen_client(c->cfg.tls);
    c->io.tls_up = false;
    sc_buf_reset(&c->io.out);
    tlsgen_start(c->io.tls, &c->io.out);
    sim_ep_write(s, c->io.ep, c->io.out.data, c->io.out.len);
}

static void cli_fin(struct sim *s, struct sim_ep *e, void *app)
{
    struct syn_client *c = app;
    (void)e;
    if (c->ph != PH_DONE) {
        c->ph = PH_DONE;
        send_later(s, &c->io, c->cfg.think, 1, NULL);
    }
}

static void cli_reset(struct sim *s, struct sim_ep *e, void *app)
{
    (void)s;
    (void)e;
    struct syn_client *c = app;
    c->res.aborted = true;
    c->ph = PH_DONE;
}

static const struct sim_ep_cb cli_cb = {cli_connected, cli_data, cli_fin, cli_reset};

struct syn_client_full {
    struct syn_client c;
    struct cli_with_rep rs;
};

static struct cli_with_rep *cli_rep_state(struct syn_client *c)
{
    return &((struct syn_client_full *)c)->rs;
}

static void cli_connect_ev(struct sim *s, void *arg)
{
    struct syn_client *c = arg;
    c->last_reply = sim_now(s);
    sim_ep_connect(s, c->io.ep);
    cli_expect(s, c); /* the greeting */
}

struct syn_client *syn_client_new(struct sim *s, const struct syn_client_cfg *cfg,
                                  const struct sim_ep_opts *o, struct sim_link *l, int end,
                                  sc_time at, uint64_t seed)
{
    struct syn_client_full *f = calloc(1, sizeof(*f));
    if (!f)
        abort();
    struct syn_client *c = &f->c;
    f->rs.c = c;
    c->cfg = *cfg;
    if (c->cfg.messages < 0)
        c->cfg.messages = 0;
    if (c->cfg.keystroke <= 0)
        c->cfg.keystroke = 120 * MS;
    syn_rng_seed(&c->rng, seed, 0xc11);
    io_init(&c->io, &c->rng);
    c->io.record_max = cfg->tls_record_max;
    sc_buf_init(&c->body, 0);
    view_init(&c->view);
    struct sim_ep_opts eo = *o;
    eo.nodelay_each_byte = cfg->kind == CLI_TELNET;
    c->io.ep = sim_ep_new(s, &eo, l, end, &cli_cb, c);
    c->ph = cfg->kind == CLI_RAW ? PH_SCRIPT : PH_BANNER;
    sim_at(s, at, cli_connect_ev, c);
    return c;
}

void syn_client_free(struct syn_client *c)
{
    if (!c)
        return;
    sim_ep_free(c->io.ep);
    io_free(&c->io);
    sc_buf_free(&c->body);
    view_free(&c->view);
    free((struct syn_client_full *)c);
}

const struct syn_view *syn_client_view(const struct syn_client *c)
{
    return &c->view;
}

const struct syn_client_result *syn_client_result(const struct syn_client *c)
{
    return &c->res;
}

struct sim_ep *syn_client_ep(struct syn_client *c)
{
    return c->io.ep;
}

struct sim_ep *syn_server_ep(struct syn_server *sv)
{
    return sv->io.ep;
}
