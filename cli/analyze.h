/* analyze.h - the offline pipeline: capture file -> decode -> tracker ->
 * SMTP engine -> report, one file after the other.
 *
 * This is the glue between the layers: capture/ and dissect/ never see each
 * other, so the per-flow consumer that feeds tracker output into SMTP sessions
 * lives here.  Each file is analysed on its own (frame numbers restart with
 * each file, as in Wireshark); session ids continue across files.
 */
#ifndef SC_CLI_ANALYZE_H
#define SC_CLI_ANALYZE_H

#include <stdbool.h>
#include <stdio.h>

#include "capture/decode.h"
#include "capture/pcapfile.h"
#include "capture/tracker.h"
#include "dissect/smtp.h"
#include "heuristics/heur.h"
#include "report/report.h"

struct an_options {
    struct cap_reader_settings reader;
    struct cap_settings cap;
    struct smtp_settings smtp;
    struct rep_options rep;
    struct heur_config heur;
    /* Exit status 1 when a finding is at least this severe (an enum
     * heur_sev; HEUR_HIGH + 1 for never). */
    int fail_on;
    /* Implicit-TLS ports (RFC 8314 submissions on 465): TLS from the first
     * byte.  They are followed in addition to cap.ports. */
    uint8_t tls_ports[CAP_PORTS_BITMAP_BYTES];
    /* Transcript lines kept per session with --transcript. */
    size_t transcript_lines;
    /* The output's name for error messages ("standard output" or -o FILE). */
    const char *output_name;
    /* Write every packet of every flagged session here (NULL: no). */
    const char *write_flagged;
    /* For compare: called with every session as it is reported (its
     * findings included) and with every cross-session finding; with
     * `silent` nothing is written to the output, and the summary goes to
     * *summary_out when set. */
    void (*on_session)(void *user, const struct rep_session *s);
    void (*on_finding)(void *user, const struct heur_finding *f);
    void *user;
    bool silent;
    struct rep_summary *summary_out;
    /* Follow connections on other ports too when their handshake is in the
     * capture and they turn out to speak SMTP (greeting 220, then HELO/EHLO). */
    bool detect;
    bool quiet;
    /* Threads analysing each file (par.h); 0 and 1 mean one. */
    unsigned jobs;
    /* Input files larger than this show a progress line when stderr is a
     * terminal (50 MB: smaller files finish before a progress line helps). */
    uint64_t progress_min_bytes;
};

/* Transcript lines kept per session for the rules when --transcript is not
 * asked for.  Masks, refusals and downgrades show in the first few dozen
 * lines; the last command is kept apart (smtp_info.last_command), so a long
 * session loses nothing the rules need. */
#define AN_RULES_TRANSCRIPT_MAX 2048

/* Fills o with the defaults of every layer. */
void an_options_defaults(struct an_options *o);

/* Analyses each named file ("-" is stdin) and writes records to out.  Errors
 * go to stderr as "smtpscope: FILE: message".  Returns the exit status:
 * 0 ran without findings at or above o->fail_on, 1 ran and found some, 2 if
 * any input could not be read completely (what was found before the problem
 * is still reported). */
int an_run(const struct an_options *o, char *const *files, int nfiles, FILE *out);

/* One analysis fed packet by packet (live capture).  Sessions and their
 * findings are written to `out` as they end, the summary at the finish. */
struct an_stream;

struct an_stream_counts {
    uint64_t packets, bytes;
    uint64_t sessions_open; /* connections tracked now */
    uint64_t sessions;      /* SMTP sessions reported */
    uint64_t findings;
    bool failed; /* a finding reached fail_on */
};

/* label names the input in records ("eth0"); NULL on OOM. */
struct an_stream *an_stream_new(const struct an_options *o, FILE *out, const char *label);
/* Feeds one packet, decoded by the caller with cap_decode (the caller may
 * need it first: -w keeps packets). */
void an_stream_packet(struct an_stream *s, const struct cap_record *rec,
                      const struct cap_packet *pkt);
/* Writes a stats record to the output (JSON only). */
void an_stream_write_stats(struct an_stream *s, const struct rep_stats *st);
/* Wall-clock time passed: idle sessions expire. */
void an_stream_tick(struct an_stream *s, sc_time now);
/* Writes from now on to `out` (the old stream is flushed, not closed). */
void an_stream_set_output(struct an_stream *s, FILE *out);
void an_stream_counts(const struct an_stream *s, struct an_stream_counts *out);
/* Closes the open sessions as eof, reports the cross-session findings and
 * the summary (with the kernel's drop count); returns 0 or 1 (findings). */
int an_stream_finish(struct an_stream *s, uint64_t drops);
void an_stream_free(struct an_stream *s);

/* Which vantage a packet belongs to when one capture holds both legs of a
 * device: 0, 1, or -1 for neither. */
typedef int (*an_split_fn)(void *user, const struct cap_packet *pkt);

/* Reads one capture file and analyses it as two captures: each packet goes
 * to the side side_of gives it, and each side's sessions to
 * o->on_session with users[side].  Packets of no side are counted in
 * *unassigned.  Returns 0, or 2 if the file could not be read completely. */
int an_split(const struct an_options *o, const char *name, an_split_fn side_of, void *split_user,
             void *users[2], uint64_t *unassigned);

/* Said after an error in the configuration file. */
#define AN_CONFIG_HINT                                                                             \
    "smtpscope: hint: the configuration file is described in docs/USAGE.md (installed as "         \
    "/usr/share/doc/smtpscope/USAGE.md) and `smtpscope rules` lists the rule ids\n"

/* Prints "smtpscope: FILE: what went wrong[; results cover N packets before
 * it]" and, on a second line, what to do about it, for an error rc of the
 * capture reader rd (NULL if it could not be created).  `packets` is
 * (uint64_t)-1 when the file could not be opened as a capture at all. */
void an_read_error(const char *file, const struct cap_reader *rd, int rc, uint64_t packets);

#endif
