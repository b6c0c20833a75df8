/* heur.h - detection rules: from what one SMTP session (and the capture's
 * other sessions to the same server) showed, say what a middlebox did, how
 * sure that is, which kind of device most likely did it, and where the
 * evidence is.
 *
 * Every rule is grounded in a row of SIGNATURES.md (the catalogue of what
 * middleboxes do on the wire) and named in DESIGN.md.  Masking is the only
 * proof a single capture can hold; every other rule describes a symptom with
 * benign explanations, and says so with a lower confidence.
 *
 * The module does no I/O: the caller hands it the facts of a finished
 * session (SMTP engine results plus TCP details) and gets findings back.
 * Cross-session rules (a server that behaves differently in different
 * sessions) report when the caller says the input is over.
 */
#ifndef SC_HEURISTICS_HEUR_H
#define SC_HEURISTICS_HEUR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ere.h"
#include "common/time.h"
#include "dissect/smtp.h"

enum heur_sev {
    HEUR_INFO = 0,
    HEUR_LOW,
    HEUR_MEDIUM,
    HEUR_HIGH,
};

/* Returns "info", "low", "medium" or "high". */
const char *heur_sev_name(enum heur_sev s);
/* Parses a severity name; -1 if unknown. */
int heur_sev_parse(const char *name);

enum heur_rule {
    HR_BANNER_MASKED = 0,
    HR_EHLO_KEYWORD_MASKED,
    HR_STARTTLS_STRIPPED,
    HR_COMMAND_MASKED,
    HR_EHLO_DOWNGRADED,
    HR_STARTTLS_FAILED,
    HR_CLEARTEXT_AFTER_STARTTLS,
    HR_EXCHANGE_AUTH_FAILED,
    HR_LIMIT_DROP,
    HR_MULTILINE_BANNER_BROKEN,
    HR_DOT_SPLIT_DROP,
    HR_INCONSISTENT_SERVER,
    HR_TLS_INTERCEPTED,
    HR_INJECTED_RESET,
    HR__COUNT
};

/* A rule as `smtpscope rules` lists it. */
struct heur_rule_info {
    const char *id;
    enum heur_sev severity; /* default */
    const char *what;       /* what it detects */
    const char *source;     /* the SIGNATURES.md rows it rests on */
    const char *vantage;    /* where the evidence shows: outside, inside, either */
    const char *misses;     /* what it cannot see, and why */
};

/* The built-in rules, indexed by enum heur_rule. */
const struct heur_rule_info *heur_rules(void);

/* A custom signature from the configuration: a POSIX extended regex matched
 * against one kind of line. */
enum heur_target {
    HT_BANNER = 0,
    HT_EHLO,    /* EHLO keyword lines */
    HT_REPLY,   /* every server line */
    HT_COMMAND, /* every client command line */
};

struct heur_signature {
    char *id;
    enum heur_sev severity;
    enum heur_target target;
    char *pattern;
    char *explanation;
    struct ere *re; /* common/ere.h */
};

/* Most custom signatures in one configuration. */
#define HEUR_MAX_SIGNATURES 64
/* Most servers listed as known not to offer TLS. */
#define HEUR_MAX_NO_TLS 256

struct heur_config {
    bool enabled[HR__COUNT];
    enum heur_sev severity[HR__COUNT];
    /* SIGNATURES.md A7, the ASA default map. */
    uint64_t cmd_line_max;    /* 512 */
    uint64_t rcpt_max;        /* 100 */
    uint64_t header_line_max; /* 998 */
    uint64_t sender_max;      /* 320 */
    uint64_t filename_max;    /* 255 */
    struct heur_signature sig[HEUR_MAX_SIGNATURES];
    size_t nsig;
    /* Servers ("addr" or "addr:port") that do not offer TLS on purpose. */
    char *no_tls[HEUR_MAX_NO_TLS];
    size_t nno_tls;
};

/* Fills c with every rule on at its default severity and the A7 defaults. */
void heur_config_defaults(struct heur_config *c);
/* Frees the strings and compiled expressions of c. */
void heur_config_free(struct heur_config *c);

/* TCP facts of one side of a session, as the capture layer saw them. */
struct heur_tcp {
    uint64_t packets;
    uint8_t ttl_min, ttl_max;
    bool rst;
    uint8_t rst_ttl;
    bool rst_ipid_mismatch;
    uint64_t rst_frame;
    sc_time rst_ts;
    uint64_t unacked;   /* bytes sent that the peer never acknowledged */
    uint32_t tail_retx; /* retransmissions of them */
    uint32_t retransmits;
    uint32_t overlaps_diff;
    sc_time last_ts;
    uint64_t last_frame;
};

/* Everything the rules look at for one finished session. */
struct heur_session {
    uint64_t id;
    const char *client; /* "addr:port" */
    const char *server;
    const char *close;            /* fin, rst, timeout, eof */
    const struct smtp_info *smtp; /* with its transcript */
    struct heur_tcp tcp[2];       /* indexed by enum sc_dir */
};

/* Bytes of evidence kept per finding (escaped). */
#define HEUR_EVIDENCE_MAX 400
#define HEUR_EXPLANATION_MAX 700

struct heur_finding {
    const char *rule; /* rule or custom signature id */
    enum heur_sev severity;
    double confidence;
    uint64_t session;
    char client[64], server[64];
    uint64_t frame;
    sc_time ts;
    enum sc_dir dir;
    const char *suspect; /* cisco-asa-esmtp, cisco-pix-mailguard, smtp-proxy, tls-proxy, unknown */
    char evidence[HEUR_EVIDENCE_MAX];
    char explanation[HEUR_EXPLANATION_MAX];
};

/* Where the evidence says this capture was taken, relative to the device. */
enum heur_vantage {
    HV_UNKNOWN = 0,
    HV_OUTSIDE, /* downstream of it for server-to-client traffic (client side) */
    HV_INSIDE,  /* downstream of it for client-to-server traffic (server side) */
};
const char *heur_vantage_name(enum heur_vantage v);

/* Findings a session can produce at most (one per rule, plus signatures). */
#define HEUR_SESSION_FINDINGS_MAX (HR__COUNT + HEUR_MAX_SIGNATURES)
/* Servers remembered for cross-session rules; beyond, new servers are not
 * compared (a capture with more SMTP servers than this gets no
 * inconsistent_server findings for the extra ones). */
#define HEUR_MAX_SERVERS 4096
/* Sessions remembered per server for cross-session rules. */
#define HEUR_MAX_SERVER_SESSIONS 64
/* Distinct leaf certificates remembered per server (tls_intercepted). */
#define HEUR_MAX_SERVER_CERTS 8

struct heur_ctx;

/* Creates the rule engine; cfg is copied by reference and must outlive it. */
struct heur_ctx *heur_new(const struct heur_config *cfg);
void heur_free(struct heur_ctx *h);

/* Runs the rules on a finished session.  Writes up to `max` findings to out
 * and returns how many; *vantage receives what the evidence implies. */
size_t heur_session(struct heur_ctx *h, const struct heur_session *s, struct heur_finding *out,
                    size_t max, enum heur_vantage *vantage);

/* Most findings one call of heur_finish returns (one server's):
 * inconsistent_server, then per remembered session a deleted STARTTLS and a
 * changed certificate. */
#define HEUR_FINISH_MAX (2 * HEUR_MAX_SERVER_SESSIONS + 1)

/* The input is over: cross-session findings (inconsistent_server, STARTTLS
 * deleted in some sessions only), one server at a time.  max must be at
 * least HEUR_FINISH_MAX.  Call repeatedly until it returns 0. */
size_t heur_finish(struct heur_ctx *h, struct heur_finding *out, size_t max);

#endif
