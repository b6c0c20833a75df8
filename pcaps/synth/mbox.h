/* mbox.h - middlebox models for the synthesizer (SIGNATURES.md sections 1-3).
 *
 * A middlebox sits between the outside link (client side) and the inside
 * link (server side) of one connection.  Two families:
 *
 *  - Inline inspectors (Cisco ASA "inspect esmtp", PIX Mailguard): every
 *    packet passes through; the payload is rewritten in place with the same
 *    length (sequence numbers stay aligned, checksums are rebuilt when the
 *    frame is written), optionally with NAT and an ISN offset on the inside;
 *    at a length limit the connection is dropped.  Retransmissions get the
 *    same rewriting as the original bytes.  Models: none, asa-default,
 *    asa-allow-tls, pix-noop, pix44, tls-reset.
 *  - Full proxies (ALGs, downgrade tools, TLS interception): the middlebox
 *    terminates TCP on both sides with its own endpoints and relays SMTP
 *    line by line, deleting, answering or re-encrypting as the model says.
 *    Models: alg-delete, striptls-454, striptls-502-ehlo, tls-intercept.
 *
 * The inline rewriting rules are also exposed as a pure function over
 * segments (mb_insp_*), so unit tests can check each rule on bytes.
 */
#ifndef SC_SYNTH_MBOX_H
#define SC_SYNTH_MBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/event.h" /* enum sc_dir */
#include "pcaps/synth/sim.h"
#include "pcaps/synth/tlsgen.h"

enum mb_model {
    MB_NONE = 0,
    MB_ASA_DEFAULT,
    MB_ASA_ALLOW_TLS,
    MB_PIX_NOOP,
    MB_PIX44,
    MB_TLS_RESET, /* inline: resets the connection at the client's first TLS record (O2) */
    MB_ALG_DELETE,
    MB_STRIPTLS_454,
    MB_STRIPTLS_502_EHLO,
    MB_TLS_INTERCEPT,
    MB__COUNT
};

/* Parses a model name ("asa-default"); returns -1 if unknown. */
int mb_model_parse(const char *name);
const char *mb_model_name(enum mb_model m);

struct mb_cfg {
    enum mb_model model;
    /* A1 variants: blanks in the banner masked too; no blank after the code. */
    bool mask_spaces;
    bool no_space_after_code;
    /* A4: VRFY is masked by some devices (it was in the published capture). */
    bool mask_vrfy;
    /* A7 thresholds of the ASA default map, and drop (false) or reset (true). */
    size_t cmd_line_max;    /* 512 */
    size_t rcpt_max;        /* 100 */
    size_t header_line_max; /* 998 */
    size_t sender_max;      /* 320 */
    size_t filename_max;    /* 255 */
    bool reset_on_drop;
    /* A8: '|' in MAIL/RCPT addresses becomes a blank. */
    bool special_character;
    /* P3: the end-of-data sequence split over segments that arrive closer
     * than this is dropped (Postfix waits longer: its PIX workaround). */
    sc_time p3_window;
    /* NAT on the inside: the client's address and port as the server sees them. */
    bool nat;
    struct cap_addr nat_addr;
    uint16_t nat_port;
    /* ASA sequence-number randomisation: added to the client's sequence
     * numbers on the inside. */
    uint32_t isn_offset;
    sc_time delay;                 /* forwarding / relay delay */
    uint8_t ttl;                   /* proxies: the TTL of the middlebox's own packets */
    uint16_t mss;                  /* proxies: the MSS the middlebox announces */
    struct tlsgen_ctx *own_tls;    /* tls-intercept: the middlebox's certificate */
    struct tlsgen_ctx *server_tls; /* tls-intercept: to talk TLS to the real server */
};

/* Fills c with the ASA default map's values for model m. */
void mb_cfg_defaults(struct mb_cfg *c, enum mb_model m);

/* What a middlebox did to one connection, by SIGNATURES.md row.  The
 * findings oracle (scenario.c) turns these into the findings each vantage
 * must show, without looking at the bytes. */
enum mb_action {
    MB_ACT_BANNER_MASKED = 1u << 0,  /* A1, P2, pix44: greeting masked */
    MB_ACT_BANNER_MULTI = 1u << 1,   /* A2: continuation lines masked, codes included */
    MB_ACT_KW_STARTTLS = 1u << 2,    /* A3: 250-STARTTLS masked */
    MB_ACT_KW_OTHER = 1u << 3,       /* A4: another keyword masked */
    MB_ACT_KW_XANON = 1u << 4,       /* A4: X-ANONYMOUSTLS or X-EXPS masked (Exchange) */
    MB_ACT_VERB_STARTTLS = 1u << 5,  /* A5: STARTTLS sent on as XXXXXXXX */
    MB_ACT_VERB_OTHER = 1u << 6,     /* A5: another whole verb masked */
    MB_ACT_VERB_NOOP = 1u << 7,      /* P1: EHLO sent on as NOOP */
    MB_ACT_DROP = 1u << 8,           /* A7: connection dropped at a limit */
    MB_ACT_RESET = 1u << 9,          /* A7 reset action: RSTs sent in the peers' names */
    MB_ACT_P3 = 1u << 10,            /* P3: split end of data discarded */
    MB_ACT_DEL_STARTTLS = 1u << 11,  /* O1: STARTTLS line deleted */
    MB_ACT_DEL_OTHER = 1u << 12,     /* O1: other keyword lines deleted */
    MB_ACT_STARTTLS_454 = 1u << 13,  /* O4: STARTTLS answered 454 by the device */
    MB_ACT_EHLO_502 = 1u << 14,      /* O4: EHLO answered 502 by the device */
    MB_ACT_TLS_INTERCEPT = 1u << 15, /* O3: TLS terminated with the device's certificate */
    MB_ACT_SPECIAL_CHAR = 1u << 16,  /* A8: '|' in an address rewritten */
    MB_ACT_VERB_PIECE = 1u << 17,    /* A6: a verb typed in pieces, each piece masked */
    MB_ACT_TLS_BLOCK = 1u << 18,     /* O2: the ClientHello after STARTTLS answered with RSTs */
};

/* ---- the inline rewriting rules, on bytes ---- */

enum mb_verdict {
    MB_FORWARD = 0,
    MB_DROP_PACKET, /* this segment is discarded (P3) */
    MB_DROP_CONN,   /* this and every later packet of the connection (A7) */
};

struct mb_insp;

struct mb_insp *mb_insp_new(const struct mb_cfg *c);
void mb_insp_free(struct mb_insp *in);

/* Inspects and rewrites, in place, the new in-order payload bytes of one
 * segment in direction dir (SC_DIR_C2S or SC_DIR_S2C) arriving at time t. */
enum mb_verdict mb_insp_segment(struct mb_insp *in, enum sc_dir dir, uint8_t *p, size_t n,
                                sc_time t);

/* Why the last MB_DROP_CONN happened (static text), or NULL. */
const char *mb_insp_reason(const struct mb_insp *in);
/* The enum mb_action bits of what the rules did so far. */
unsigned mb_insp_actions(const struct mb_insp *in);

/* ---- the middlebox on a connection ---- */

struct mb_box;

/* Creates the middlebox of one connection between the outside and inside
 * links (it attaches to end 0 of both).  For proxy models it needs the
 * client's and server's addressing: the inside endpoint connects to the
 * server when the outside one is connected. */
struct mb_box *mb_box_new(struct sim *s, const struct mb_cfg *c, struct sim_link *outside,
                          struct sim_link *inside, const struct sim_ep_opts *server_side,
                          const struct sim_ep_opts *client_side, uint64_t seed);
void mb_box_free(struct mb_box *b);

/* Records what the middlebox sends on: the inside view of the client's
 * stream (c2s) and the outside view of the server's (s2c).  Must be called
 * before the simulation runs; the logs are owned by the caller. */
void mb_box_set_logs(struct mb_box *b, struct sc_buf *c2s, struct sc_buf *s2c);
/* The enum mb_action bits of what the middlebox did to the connection. */
unsigned mb_box_actions(const struct mb_box *b);

#endif
