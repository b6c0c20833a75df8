/* report.h - writers for session and summary records: text, JSON Lines and
 * YAML.
 *
 * JSON Lines follows the contract in DESIGN.md ("type" and "schema": 1 on
 * every record).  Text is one compact block per session for a terminal.  In
 * both, every captured byte goes through common/escape.h first, so output is
 * printable ASCII whatever the capture holds.  Findings are written with
 * their session (JSON: "finding" records right after it; text: at the top of
 * its block).  Writers own no session data:
 * records are formatted and written as they are handed in, so memory does not
 * grow with the number of sessions.
 */
#ifndef SC_REPORT_REPORT_H
#define SC_REPORT_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/time.h"
#include "compare/cmp.h"
#include "dissect/smtp.h"
#include "heuristics/heur.h"

#define REP_SCHEMA 1

enum rep_format {
    REP_TEXT = 0,
    REP_JSON,
    REP_YAML, /* the JSON records, one YAML document each (report/yamlout.c) */
};

/* Writes n bytes of JSON Lines records to out: as they are for REP_JSON
 * (and REP_TEXT, which passes text through), one YAML document per line for
 * REP_YAML.  Returns 0, or -1 if writing failed. */
int rep_write_records(FILE *out, enum rep_format fmt, const void *p, size_t n);

/* What one side of the TCP connection showed (from its SYN or SYN-ACK). */
struct rep_tcp_side {
    bool syn_seen;
    bool mss_present;
    bool wscale_present;
    bool sack_perm;
    bool timestamps;
    uint16_t mss;
    uint8_t wscale;
    uint8_t ttl; /* of its first packet */
    uint32_t retransmits;
    uint32_t overlaps_diff; /* retransmissions whose bytes differed */
    /* For compare: the SYN's sequence number, the TTL range, the IP id
     * pattern (counts of ids that were 0, that followed the previous by a
     * small step, that jumped) and the side's first RST. */
    uint32_t isn;
    uint8_t ttl_min, ttl_max;
    uint32_t ipid_zero, ipid_small, ipid_big;
    bool rst;
    uint8_t rst_ttl;
    uint64_t rst_frame;
};

/* One SMTP session as reported: connection facts from the capture layer
 * (already formatted by the caller) plus what the SMTP engine found. */
struct rep_session {
    uint64_t id;
    const char *file;
    const char *client; /* "a.b.c.d:port" or "[v6]:port" */
    const char *server;
    uint64_t first_frame;
    uint64_t last_frame;
    sc_time start;
    sc_time end;
    const char *close;          /* fin, rst, timeout, eof */
    bool partial;               /* the handshake was not captured */
    struct rep_tcp_side tcp[2]; /* indexed by enum sc_dir: [SC_DIR_C2S] is the client */
    const struct smtp_info *smtp;
    /* What the rules found in this session; written after the session record
     * (JSON) or inside its block (text). */
    const struct heur_finding *findings;
    size_t n_findings;
    const char *vantage; /* heur_vantage_name() */
    /* Encapsulation path, e.g. "vlan(100)/erspan(12)/vlan(20)/ipv4" (capture/decode.h). */
    const char *encap;
};

/* Named counters of the summary (decapsulated layers, unsupported ones). */
#define REP_MAX_NAMED 16
struct rep_named {
    const char *name;
    uint64_t count;
};

/* Distinct rule ids counted in the summary (built-in rules plus custom
 * signatures). */
#define REP_MAX_RULE_COUNTS (HR__COUNT + HEUR_MAX_SIGNATURES)
/* Session ids named per rule in the verdict line. */
#define REP_VERDICT_SESSIONS 8
/* Device classes counted for the verdict line. */
#define REP_MAX_SUSPECTS 8

/* Capture-wide counters for the summary record. */
struct rep_summary {
    uint64_t files;
    uint64_t files_failed;
    uint64_t packets;
    uint64_t bytes; /* sum of captured lengths */
    uint64_t sessions;
    uint64_t tcp_flows;
    uint64_t empty_connections; /* SMTP-port connections that carried no payload */
    uint64_t not_ip;
    uint64_t not_tcp;
    uint64_t ip_fragments;                 /* fragment packets */
    uint64_t ip_reassembled;               /* datagrams reassembled from them */
    uint64_t ip_incomplete;                /* datagrams given up (timeout, limits, end of input) */
    uint64_t ip_frag_conflicts;            /* fragments whose overlapping bytes differed */
    struct rep_named decap[REP_MAX_NAMED]; /* packets through each kind of layer */
    size_t n_decap;
    struct rep_named encap_unsupported[REP_MAX_NAMED]; /* packets not understood, by reason */
    size_t n_encap_unsupported;
    uint64_t encap_unsupported_total;
    uint64_t malformed;
    uint64_t link_unsupported;
    uint32_t unsupported_linktypes[8]; /* distinct values seen, up to 8 */
    uint64_t unsupported_counts[8];
    uint32_t n_unsupported;
    uint64_t evicted;
    uint64_t ts_backwards;
    double elapsed; /* wall-clock seconds */
    /* Findings per rule id, in order of first appearance. */
    struct {
        const char *rule;
        uint64_t count;
        enum heur_sev worst;
        uint64_t sessions[REP_VERDICT_SESSIONS]; /* the first sessions it flagged */
        size_t nsessions;
    } rules[REP_MAX_RULE_COUNTS];
    size_t n_rules;
    /* Sessions per suspected device class, for the verdict line. */
    struct {
        const char *suspect;
        uint64_t sessions;
        uint64_t last; /* the last session counted */
    } suspects[REP_MAX_SUSPECTS];
    size_t n_suspects;
    uint64_t by_severity[HEUR_HIGH + 1];
    uint64_t sessions_flagged;
    const char *write_flagged; /* -w file, or NULL */
    bool live;                 /* from a live capture: drops are counted */
    uint64_t drops;            /* packets the kernel or the interface dropped */
    uint64_t packets_written;  /* to it */
    /* Sessions whose evidence places the capture outside (client side) or
     * inside (server side) of the device. */
    uint64_t vantage_outside, vantage_inside;
};

/* Counts one finding in the summary. */
void rep_summary_count(struct rep_summary *s, const struct heur_finding *f);

struct rep_options {
    enum rep_format format;
    bool transcript; /* include the transcript */
    bool verbose;    /* text: list events */
    bool color;      /* text: ANSI colours (the caller decides: tty, NO_COLOR, --color) */
};

struct rep_writer;

/* Creates a writer on `out` (not closed by the writer).  NULL on OOM. */
struct rep_writer *rep_new(FILE *out, const struct rep_options *o);

/* Writes one session record. */
void rep_session(struct rep_writer *w, const struct rep_session *s);

/* Writes a finding that belongs to no single session record: the
 * cross-session ones, reported once the input is over. */
void rep_finding(struct rep_writer *w, const struct heur_finding *f);

/* Writes a live capture's periodic statistics (JSON: a "stats" record). */
struct rep_stats {
    double uptime;
    uint64_t packets, bytes, sessions_open, sessions, findings;
    uint64_t received, dropped, if_dropped; /* pcap_stats */
    uint64_t rss;                           /* bytes */
};
void rep_stats(struct rep_writer *w, const struct rep_stats *st);

/* Flushes and switches the writer to `out` (log rotation). */
void rep_set_output(struct rep_writer *w, FILE *out);

/* Writes the summary record. */
void rep_summary(struct rep_writer *w, const struct rep_summary *s);

/* Flushes and frees; returns 0, or -1 if any write to `out` failed. */
int rep_free(struct rep_writer *w);

enum rep_rules_format {
    REP_RULES_TEXT = 0,
    REP_RULES_JSON,
    REP_RULES_MARKDOWN, /* docs/RULES.md */
    REP_RULES_YAML,
};

/* Lists the built-in rules (with cfg's enabled flags and severities) and
 * cfg's custom signatures.  Returns 0, or -1 if writing failed. */
int rep_rules(FILE *out, enum rep_rules_format fmt, const struct heur_config *cfg);

/* ---- compare ---- */

enum rep_cmp_dialogue {
    REP_CMP_DIALOGUE_CHANGED = 0, /* side by side for pairs with differences */
    REP_CMP_DIALOGUE_ALL,
    REP_CMP_DIALOGUE_NONE,
};

struct rep_cmp_options {
    enum rep_format format;
    const char *names[2]; /* labels of the outside and inside captures */
    const char *files[2]; /* their files */
    enum rep_cmp_dialogue dialogue;
};

/* Writes a comparison: text (per pair, the differences then the two
 * dialogues side by side in 80 columns) or JSON Lines (session records with
 * "side" and "pair", "pair" records, "diff" records, a summary).  Returns 0,
 * or -1 if writing failed. */
int rep_compare(FILE *out, const struct rep_cmp_options *o, const struct cmp_capture *outside,
                const struct cmp_capture *inside, const struct cmp_result *r);

/* Writes the comparison as one self-contained HTML page. */
int rep_compare_html(FILE *out, const struct rep_cmp_options *o, const struct cmp_capture *outside,
                     const struct cmp_capture *inside, const struct cmp_result *r);

/* Formats t as seconds since the epoch with microseconds ("1254722767.492342"). */
void rep_fmt_epoch(char *out, size_t outlen, sc_time t);

#endif
