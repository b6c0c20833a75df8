/* persona.h - SMTP client and server personas for the synthesizer: small
 * SMTP implementations (RFC 5321, 2920, 3207, 4954) that answer and react the
 * way the real software does, including its wording and its workarounds.
 *
 * Servers: postfix, sendmail, exchange (2016), exchange2003, cisco-esa, with
 * banners, EHLO keyword lists and unknown-command replies as catalogued in
 * SIGNATURES.md section 4.
 * Clients: postfix (HELO after a banner made only of "2 0 *" and blanks, the
 * PIX workaround; STARTTLS when offered; PIPELINING when offered), exchange
 * (X-ANONYMOUSTLS when offered; gives up when Exchange authentication is
 * required and impossible), swaks (one command at a time; STARTTLS when
 * asked even if not offered), telnet (one keystroke per segment) and raw (an
 * exact script).
 *
 * A persona sits on one TCP endpoint.  It reacts to what it receives, after
 * any middlebox has acted, and can switch to TLS (pcaps/synth/tlsgen.h).
 */
#ifndef SC_SYNTH_PERSONA_H
#define SC_SYNTH_PERSONA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pcaps/synth/body.h"
#include "pcaps/synth/sim.h"
#include "pcaps/synth/tlsgen.h"

enum syn_server_kind {
    SRV_POSTFIX = 0,
    SRV_SENDMAIL,
    SRV_EXCHANGE,
    SRV_EXCHANGE2003,
    SRV_CISCO_ESA,
};

struct syn_server_cfg {
    enum syn_server_kind kind;
    const char *hostname;
    const char *banner;          /* text after "220 ", NULL for the persona's own */
    int banner_lines;            /* > 1: a multi-line greeting */
    bool starttls;               /* offer STARTTLS (X-ANONYMOUSTLS too for Exchange) */
    bool auth;                   /* offer AUTH PLAIN LOGIN */
    const char *const *keywords; /* override of the EHLO keyword list */
    size_t nkeywords;
    const char *const *reject; /* RCPT addresses answered 550 */
    size_t nreject;
    struct tlsgen_ctx *tls; /* server side of STARTTLS (not owned) */
    sc_time think;          /* time to answer a command */
    sc_time idle_timeout;   /* no client data for this long: 421 and close */
    bool implicit_tls;      /* TLS from the first byte, the greeting inside it (port 465) */
};

enum syn_client_kind {
    CLI_POSTFIX = 0,
    CLI_EXCHANGE,
    CLI_SWAKS,
    CLI_TELNET,
    CLI_RAW,
};

enum syn_tls_use {
    TLSUSE_AUTO = 0, /* when offered */
    TLSUSE_ALWAYS,   /* even when not offered */
    TLSUSE_NEVER,
};

enum syn_client_end {
    END_QUIT = 0, /* QUIT, wait for 221, close */
    END_FIN,      /* close without QUIT */
    END_RST,      /* abort with RST */
};

struct syn_client_cfg {
    enum syn_client_kind kind;
    const char *helo;
    const char *mail_from;
    const char *const *rcpt;
    size_t nrcpt;
    int messages;
    struct syn_body_opts body;
    enum syn_tls_use starttls;
    bool pipelining;            /* use PIPELINING when offered (postfix: always) */
    bool require_exchange_auth; /* exchange: give up without X-ANONYMOUSTLS */
    const char *auth_mech;      /* "PLAIN" or "LOGIN", NULL: no AUTH */
    const char *auth_user, *auth_pass;
    const char *const *script; /* raw: lines to send */
    size_t nscript;
    enum syn_client_end end;
    bool implicit_tls;      /* start TLS on connect, before the greeting (port 465) */
    bool rst_after_quit;    /* after the 221, abort with RST instead of closing (swaks
                             * over TLS does: it leaves the server's close_notify unread) */
    struct tlsgen_ctx *tls; /* client side of STARTTLS (not owned) */
    sc_time think;          /* time to react to a reply */
    sc_time keystroke;      /* telnet: time between keystrokes */
    sc_time reply_timeout;  /* no complete reply for this long: give up (close) */
    size_t tls_record_max;  /* application data record size cap (0: OpenSSL's) */
    sc_time dot_delay;      /* > 0: send the final ".\r\n" on its own, this much later
                             * (Postfix's PIX workaround waits 10 s) */
};

/* What one side saw of the SMTP dialogue in cleartext: the oracle the
 * expectation files are written from (never from smtpscope's output). */
struct syn_view {
    struct sc_buf banner;   /* first greeting line, raw, without CRLF */
    struct sc_buf helo;     /* first HELO/EHLO line */
    struct sc_buf keywords; /* lines of the first 250 EHLO reply after the first, NUL-separated */
    size_t nkeywords;
    bool keywords_set;
    bool offered, attempted, replied, tls;
    int starttls_code;
    struct sc_buf mail_from; /* first MAIL FROM address with its <> */
    int rcpt_count, messages;
    struct sc_buf auth;     /* first AUTH mechanism */
    struct sc_buf commands; /* verbs, blank-separated */
    struct sc_buf replies;  /* codes of complete replies, blank-separated */
};

struct syn_server;
struct syn_client;

/* The client's view (outside) and the server's view (inside). */
const struct syn_view *syn_client_view(const struct syn_client *c);
const struct syn_view *syn_server_view(const struct syn_server *sv);

/* The persona's TCP endpoint (to log what it sends). */
struct sim_ep *syn_client_ep(struct syn_client *c);
struct sim_ep *syn_server_ep(struct syn_server *sv);

/* Creates a server persona listening on endpoint options o at end `end` of
 * link l.  seed feeds its random choices (queue ids, think-time jitter). */
struct syn_server *syn_server_new(struct sim *s, const struct syn_server_cfg *cfg,
                                  const struct sim_ep_opts *o, struct sim_link *l, int end,
                                  uint64_t seed);
void syn_server_free(struct syn_server *sv);

/* Creates a client persona; it connects at time `at`. */
struct syn_client *syn_client_new(struct sim *s, const struct syn_client_cfg *cfg,
                                  const struct sim_ep_opts *o, struct sim_link *l, int end,
                                  sc_time at, uint64_t seed);
void syn_client_free(struct syn_client *c);

/* What the client achieved, for checks. */
struct syn_client_result {
    bool greeted;
    bool used_helo; /* fell back to (or chose) HELO */
    bool tls;       /* TLS established */
    int messages_accepted;
    bool gave_up; /* stopped without sending mail (Exchange 451 5.7.3 case) */
    bool aborted; /* the connection was reset or timed out */
};
const struct syn_client_result *syn_client_result(const struct syn_client *c);

#endif
