/* smtp.h - the SMTP session engine: rebuilds an SMTP dialogue from the two
 * ordered byte streams of one connection.
 *
 * Implements the parts of RFC 5321 (commands, replies, DATA), RFC 2920
 * (PIPELINING), RFC 3030 (CHUNKING/BDAT), RFC 3463 (enhanced status codes),
 * RFC 4954 (AUTH) and RFC 3207 (STARTTLS) that a passive observer needs.
 *
 * The engine never sees packets.  It is fed in-order bytes per direction with
 * their stream offset, plus gap, FIN and close calls, so it can be driven from
 * strings in tests.  It is incremental: feeding one byte at a time gives the
 * same result as feeding everything at once, because every decision is taken
 * at a line boundary, a byte count, or an event of the other direction, never
 * at a packet boundary.
 *
 * Client bytes that follow a command whose reply decides how they must be read
 * (DATA, AUTH and its responses, STARTTLS) are held until that reply arrives,
 * up to `hold_max`; without a reply (a one-sided capture) the held bytes are
 * read by their content.  Replies are matched to commands through a bounded
 * queue of pending commands, so pipelined dialogues pair up correctly.
 *
 * Protocol anomalies become events on the session (common/event.h); nothing
 * in the input makes the engine fail.  AUTH credentials never leave it: the
 * transcript shows "[... redacted ...]" in their place.
 */
#ifndef SC_DISSECT_SMTP_H
#define SC_DISSECT_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/event.h"
#include "common/time.h"
#include "dissect/tls.h"

enum smtp_verb {
    SMTP_V_UNKNOWN = 0,
    SMTP_V_HELO,
    SMTP_V_EHLO,
    SMTP_V_LHLO,
    SMTP_V_MAIL,
    SMTP_V_RCPT,
    SMTP_V_DATA,
    SMTP_V_BDAT,
    SMTP_V_RSET,
    SMTP_V_VRFY,
    SMTP_V_EXPN,
    SMTP_V_HELP,
    SMTP_V_NOOP,
    SMTP_V_QUIT,
    SMTP_V_STARTTLS,
    SMTP_V_AUTH,
    SMTP_V_ETRN,
    SMTP_V_TURN,
    SMTP_V_ATRN,
    SMTP_V_SAML,
    SMTP_V_SEND,
    SMTP_V_SOML,
    SMTP_V_VERB,
    SMTP_V_ONEX,
    SMTP_V_BURL,
    SMTP_V_XCLIENT,
    SMTP_V_XFORWARD,
    SMTP_V_XEXCH50,
    SMTP_V_X_EXPS,
    SMTP_V_X_ANONYMOUSTLS,
    SMTP_V_X_LINK2STATE,
    SMTP_V_XSHADOW,
    /* Pseudo-commands: what the client "sent" that expects a reply. */
    SMTP_V_CONNECT,       /* the connection itself: expects the greeting */
    SMTP_V_END_OF_DATA,   /* CRLF.CRLF: expects the message's final reply */
    SMTP_V_AUTH_RESPONSE, /* a line answering a 334 challenge */
    SMTP_V__COUNT
};

/* Returns the canonical upper-case name ("MAIL", "X-EXPS", "<end-of-data>"). */
const char *smtp_verb_name(enum smtp_verb v);

/* Looks up a verb case-insensitively; SMTP_V_UNKNOWN if it is not one. */
enum smtp_verb smtp_verb_lookup(const uint8_t *p, size_t n);

enum smtp_starttls {
    SMTP_TLS_NOT_OFFERED = 0,
    SMTP_TLS_NOT_ATTEMPTED,
    SMTP_TLS_ACCEPTED,
    SMTP_TLS_REFUSED,
    SMTP_TLS_NO_REPLY,
    SMTP_TLS_ESTABLISHED,
    SMTP_TLS_CLEARTEXT_AFTER_220,
    SMTP_TLS__COUNT
};

/* Returns the contract name, e.g. "tls_established". */
const char *smtp_starttls_name(enum smtp_starttls r);

struct smtp_settings {
    /* Bytes of each line kept for the transcript and as evidence.  RFC 5321
     * 4.5.3.1 caps command and reply lines at 512 octets and text lines at
     * 1000; 1024 keeps every legal line whole.  Longer lines are counted in
     * full and cut here (event "line_too_long" records their length). */
    size_t line_keep;
#define SMTP_LINE_KEEP_MAX 65535 /* larger line_keep values are taken as this */
    /* Commands awaiting a reply.  RFC 2920 pipelines a transaction at a time
     * (a few commands plus RCPTs); 512 covers a 500-recipient burst.  Beyond
     * it commands are not queued and replies stop being matched ("pending_overflow"). */
    size_t pending_max;
    /* Client bytes held while waiting for the reply to DATA, AUTH or STARTTLS.
     * A conforming client sends nothing in that window; 64 KiB leaves room
     * for eager clients, after which the bytes are read by their content
     * ("hold_overflow"). */
    size_t hold_max;
    /* Transcript lines kept per session when keep_transcript is set; later
     * lines are counted in transcript_dropped. */
    size_t transcript_max;
    /* Lines kept of one multi-line reply (the EHLO keyword list is one).
     * Real EHLO replies have under 20 lines; the rest are counted only. */
    size_t reply_lines_max;
    /* Bytes of a proxy handshake (SOCKS, HTTP CONNECT) buffered per direction
     * before SMTP starts.  A CONNECT request with a few headers fits in 8 KiB
     * (common proxies cap headers there); past it the connection is not
     * followed. */
    size_t proxy_max;
    /* Client bytes kept after a bare-LF end-of-data candidate, to be read
     * again as commands if the server's reply shows it ended the message
     * there.  A client pipelines a few commands after the data (RFC 2920);
     * past 4 KiB the candidate is dropped ("lax_replay_overflow"). */
    size_t lax_replay_max;
    bool keep_transcript;
    /* Read message bodies 16 bytes at a compare even on a CPU with AVX2
     * (the tests hold the two scans to the same results). */
    bool no_avx2;
    /* Certificate descriptions shared by the sessions of one analysis (see
     * tls.h); not owned, NULL to parse every certificate. */
    struct tls_cert_cache *cert_cache;
};

/* Fills s with the defaults documented above (keep_transcript false). */
void smtp_settings_defaults(struct smtp_settings *s);

enum smtp_line_kind {
    SMTP_L_COMMAND = 0,
    SMTP_L_REPLY,
    SMTP_L_AUTH,  /* a redacted AUTH line */
    SMTP_L_DATA,  /* summary of a message body or BDAT chunk */
    SMTP_L_GAP,   /* bytes missing from the capture */
    SMTP_L_TLS,   /* the direction switched to TLS */
    SMTP_L_OTHER, /* bytes that are neither (after a gap, garbage) */
};

/* Bytes of an AUTH mechanism kept (RFC 4422 names are at most 20). */
#define SMTP_AUTH_MECH_MAX 32

/* Room for an enhanced status code (RFC 3463): "x.yyy.zzz" and a NUL. */
#define SMTP_ENH_SIZE 10

/* One transcript entry.  `text` holds the raw bytes as sent (without CRLF),
 * at most line_keep of them; `len` is the full length on the wire.  For
 * SMTP_L_AUTH, SMTP_L_DATA, SMTP_L_GAP and SMTP_L_TLS, `text` is our own
 * bracketed description, never captured bytes.  40 bytes: an open session
 * holds one per line it has seen, so the enums are stored in bits and the
 * enhanced status code packed (smtp_line_enh gives it back). */
struct smtp_line {
    uint8_t *text;
    struct sc_meta meta; /* frame holding the line's last byte */
    uint32_t len;
    uint16_t text_len;       /* at most line_keep, which SMTP_LINE_KEEP_MAX bounds */
    uint16_t code;           /* replies: the 3-digit code, 0 if the line had none */
    uint32_t enh;            /* replies: the enhanced status code, packed; 0 if none */
    uint8_t verb;            /* enum smtp_verb, for commands */
    unsigned dir : 2;        /* enum sc_dir */
    unsigned kind : 3;       /* enum smtp_line_kind */
    unsigned last : 1;       /* replies: the final line of the reply */
    unsigned incomplete : 1; /* the line never ended (cut by FIN, RST or the capture) */
};

/* A transcript line's enhanced status code (RFC 3463) as it was sent, such
 * as "5.7.3", or "" when it had none. */
void smtp_line_enh(const struct smtp_line *l, char out[SMTP_ENH_SIZE]);

/* Bytes the session owns: `len` of them at `data`, NUL-terminated ("" when
 * unset). */
struct smtp_text {
    const uint8_t *data;
    size_t len;
};

/* What the engine learned; valid for the session's life.  An open session
 * holds this struct, so the small fields of every group come last,
 * together. */
struct smtp_info {
    struct smtp_text banner; /* first line of the greeting, raw */
    struct sc_meta banner_meta;
    struct smtp_text helo;           /* first HELO/EHLO/LHLO command line, raw */
    struct smtp_text *ehlo_keywords; /* keyword lines of the first 250 EHLO reply, raw */
    size_t n_ehlo_keywords;
    struct smtp_text ehlo_reply;  /* first line of that reply, raw */
    struct sc_meta ehlo_meta;     /* the EHLO command */
    struct sc_meta starttls_meta; /* the STARTTLS command */
    /* mechanism of the first AUTH, upper-case, cut to SMTP_AUTH_MECH_MAX */
    struct smtp_text auth_mech;
    struct smtp_text mail_from; /* address of the first MAIL FROM, raw, with <> */
    uint64_t rcpt_count;
    uint64_t rcpt_accepted;
    uint64_t messages;          /* bodies completely sent (CRLF.CRLF or BDAT LAST) */
    uint64_t messages_accepted; /* ... and answered 2xx */
    uint64_t commands;
    uint64_t replies;
    /* Message properties middleboxes limit (SIGNATURES.md A7, P3). */
    uint64_t max_header_line; /* longest header line of any message (without CRLF) */
    struct sc_meta max_header_meta;
    uint64_t max_filename; /* longest MIME filename= value seen */
    struct sc_meta max_filename_meta;
    struct sc_meta eod_split_meta; /* see eod_split */
    struct sc_meta eod_meta;       /* see eod_unanswered */
    /* The last client command line in stream order (line_keep bytes of it),
     * kept whether or not the transcript is: what the client was doing when
     * a connection died. */
    struct smtp_text last_command;
    uint64_t last_command_len; /* its full length without CRLF */
    struct sc_meta last_command_meta;
    /* TLS after STARTTLS, or from the start on an implicit-TLS port: the
     * handshake as read (NULL when no TLS byte was seen; valid for the
     * session's life) and how it ended (tls_outcome). */
    const struct tls_info *tls;
    uint64_t bytes[2];     /* stream bytes seen per direction (enum sc_dir) */
    uint64_t tls_bytes[2]; /* of which after the switch to TLS */
    uint32_t tls_records[2];
    uint64_t gap_bytes;
    struct smtp_text proxy; /* "socks5 to host:port" when the dialogue ran through a proxy */
    double confidence;      /* 1.0, lowered by a missing start, gaps, lost sync */
    struct sc_events events;
    struct smtp_line *transcript;
    size_t n_transcript;
    uint64_t transcript_dropped;
    /* The small fields. */
    uint32_t banner_lines;
    uint32_t gaps;
    enum smtp_starttls starttls;
    enum smtp_verb last_command_verb;
    enum tls_outcome tls_outcome;
    uint16_t banner_code;
    uint16_t ehlo_code;   /* code of the first EHLO reply, 0 if none */
    bool banner_complete; /* the greeting reached its final line */
    bool ehlo_complete;   /* that reply arrived whole (no gap or close cut it) */
    bool starttls_offered;
    bool starttls_attempted;
    bool auth_success;
    bool eod_split;      /* a message's CRLF.CRLF was split over segments */
    bool eod_unanswered; /* a message's end of data never got its reply */
    bool implicit_tls;
    bool midstream;
};

struct smtp_session;

enum smtp_mode_flags {
    SMTP_F_PROBE = 1,        /* not known to be SMTP: give up unless it looks like it */
    SMTP_F_MIDSTREAM = 2,    /* the streams do not start at the connection's start */
    SMTP_F_IMPLICIT_TLS = 4, /* TLS from the first byte (port 465, RFC 8314) */
};

/* Creates a session (settings copied).  NULL on OOM. */
struct smtp_session *smtp_session_new(const struct smtp_settings *s, unsigned flags);

void smtp_session_free(struct smtp_session *s);

enum smtp_feed_result {
    SMTP_OK = 0,
    SMTP_NOT_SMTP = 1, /* a probing session saw something that is not SMTP */
};

/* Feeds in-order bytes of direction `dir` starting at stream offset `off`
 * (an offset beyond what was fed so far is treated as a gap).  The bytes are
 * not retained beyond the call except as documented (line_keep, hold_max). */
enum smtp_feed_result smtp_feed(struct smtp_session *s, enum sc_dir dir, uint64_t off,
                                const uint8_t *p, size_t n, const struct sc_meta *m);

/* Announces `len` missing bytes at the current position of `dir`. */
enum smtp_feed_result smtp_gap(struct smtp_session *s, enum sc_dir dir, uint64_t len,
                               const struct sc_meta *m);

/* Direction `dir` ended (FIN): a partial line is taken as it is. */
void smtp_fin(struct smtp_session *s, enum sc_dir dir, const struct sc_meta *m);

/* The connection is over: settles held bytes, open replies and results.
 * Further feeding is ignored. */
void smtp_close(struct smtp_session *s, const struct sc_meta *m);

/* Results so far (final after smtp_close). */
const struct smtp_info *smtp_session_info(const struct smtp_session *s);

/* The session's event list, for the caller to add its own (capture) events. */
struct sc_events *smtp_session_events(struct smtp_session *s);

/* True once a probing session has seen a greeting and a HELO/EHLO. */
bool smtp_session_confirmed(const struct smtp_session *s);

#endif
