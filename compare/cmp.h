/* cmp.h - compare mode: pairs the SMTP sessions of two captures taken on
 * either side of a device and diffs their dialogues.
 *
 * Packet-level tools (tshark -z compare, pcapdiff) break as soon as a device
 * resegments, NATs or randomises sequence numbers.  Here each capture is
 * first rebuilt into sessions (the analyze pipeline), and the comparison
 * works on what the two ends said:
 *
 *  - pairing scores every candidate pair on the server port and identity,
 *    timing (after a clock offset estimated from the best matches) and
 *    dialogue similarity, then assigns pairs one to one, best first; a pair
 *    whose runner-up scores nearly as well is marked ambiguous;
 *  - alignment runs per direction over the line sequences (Myers' diff),
 *    then byte by byte inside changed lines;
 *  - classification names each difference (masked, removed, inserted,
 *    rewritten, cut, tls_changed, tcp_changed, capture_gap) relative to the
 *    direction of the bytes: a line the sender's side has and the
 *    receiver's side lacks was removed in between;
 *  - each difference names the rule it supports.
 *
 * The module does no I/O: cli/ feeds it sessions and report/ prints the
 * result.  Memory holds one compact record per session (its dialogue lines
 * as the transcript keeps them), never packets.  A capture's strings,
 * dialogue lines and their text are carved from blocks the capture owns, so
 * each costs its size and not a malloc of its own (the whole capture is
 * held until the pairing, so compare's memory grows with the sessions).
 */
#ifndef SC_COMPARE_CMP_H
#define SC_COMPARE_CMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/event.h"
#include "common/time.h"
#include "dissect/smtp.h"

/* Dialogue lines kept per session and direction for alignment; longer
 * dialogues are compared on their first lines (a note says so). */
#define CMP_LINES_MAX 20000
/* Most edit distance the line diff looks for in one direction; beyond it the
 * rest of the direction is one rewritten block. */
#define CMP_EDIT_MAX 500
/* Differences reported per pair (then counted only). */
#define CMP_DIFFS_PER_PAIR 256

enum cmp_side { CMP_OUTSIDE = 0, CMP_INSIDE = 1 };

/* One dialogue line, as the SMTP engine's transcript kept it. */
struct cmp_line {
    enum smtp_line_kind kind;
    uint16_t code;
    uint32_t len; /* full length (text may be cut at line_keep) */
    uint32_t text_len;
    uint64_t frame;
    sc_time ts;
    uint8_t *text; /* owned */
};

struct cmp_tcp {
    bool syn;
    uint16_t mss;
    bool mss_present, wscale_present, sack_perm, timestamps;
    uint8_t wscale;
    uint32_t isn;
    uint8_t ttl, ttl_min, ttl_max;
    uint32_t ipid_zero, ipid_small, ipid_big;
    bool rst;
    uint8_t rst_ttl;
    uint64_t rst_frame;
};

/* What a session's TLS handshake showed. */
struct cmp_tls {
    char version[16], cipher[64], cert_sha256[65], cert_issuer[128];
    bool cert_hidden;
};

/* One session of one capture.  Its strings and lines live in the capture's
 * blocks (cmp_capture_str, cmp_session_lines, cmp_session_tls). */
struct cmp_session {
    uint64_t id; /* as analyze numbers it */
    const char *client, *server;
    uint16_t cport, sport;
    uint16_t host_len; /* the server's address: its first host_len bytes */
    uint64_t first_frame, last_frame;
    sc_time start, end;
    char close[8];
    const char *file;
    struct cmp_tcp tcp[2];    /* by enum sc_dir */
    struct cmp_line *line[2]; /* per direction */
    size_t nline[2], line_cap[2];
    const uint16_t *codes; /* the s2c lines' codes, set for the pairing */
    uint64_t lines_dropped;
    uint64_t bytes[2];
    struct cmp_tls *tls; /* NULL: no TLS handshake was read */
    /* The rules that fired on this session in its own capture. */
    const char *findings; /* ids, comma-separated */
    bool paired;
};

struct cmp__block;

/* One capture's sessions. */
struct cmp_capture {
    const char *name; /* as the user labels it */
    struct cmp_session *s;
    size_t n, alloc;
    struct cmp__block *blocks; /* the newest first */
    const char *last_file;     /* cmp_capture_file's last copy */
};

void cmp_capture_init(struct cmp_capture *c, const char *name);
void cmp_capture_free(struct cmp_capture *c);

/* A new session at the end of c for the caller to fill (NULL on OOM): zero
 * but for its strings, which are "".  Pointers into c->s are valid until the
 * next call. */
struct cmp_session *cmp_capture_new(struct cmp_capture *c);

/* A copy of str in c's blocks, valid until cmp_capture_free (NULL on OOM). */
const char *cmp_capture_str(struct cmp_capture *c, const char *str);

/* The same for a session's file name, which repeats from session to
 * session: the previous copy when the name is the same. */
const char *cmp_capture_file(struct cmp_capture *c, const char *name);

/* Sets s's endpoints (copied; host_len from the server's last ':').
 * Returns 0, -1 on OOM. */
int cmp_session_endpoints(struct cmp_capture *c, struct cmp_session *s, const char *client,
                          const char *server);

/* Room for n[dir] dialogue lines per direction, so that adding them takes
 * exactly their size (more can still be added).  Returns 0, -1 on OOM. */
int cmp_session_lines(struct cmp_capture *c, struct cmp_session *s, const size_t n[2]);

/* s's TLS record, zeroed and attached to s (NULL on OOM). */
struct cmp_tls *cmp_session_tls(struct cmp_capture *c, struct cmp_session *s);

/* Appends a dialogue line to s (copied into c's blocks; text cut to
 * line_keep by the caller).  Past CMP_LINES_MAX per direction lines are only
 * counted.  Returns 0, -1 on OOM. */
int cmp_session_add_line(struct cmp_capture *c, struct cmp_session *s, enum sc_dir dir,
                         enum smtp_line_kind kind, uint16_t code, uint32_t len, const uint8_t *text,
                         uint32_t text_len, uint64_t frame, sc_time ts);

enum cmp_kind {
    CMP_MASKED = 0,  /* same length, X or * runs */
    CMP_REMOVED,     /* the sender's side has it, the receiver's does not */
    CMP_INSERTED,    /* the receiver's side has it, the sender's does not */
    CMP_REWRITTEN,   /* any other change */
    CMP_CUT,         /* one side ends earlier, or a RST on one side only */
    CMP_TLS_CHANGED, /* another certificate, version or cipher */
    CMP_TCP_CHANGED, /* ISN, MSS, options, window scale, TTL, IP id */
    CMP_CAPTURE_GAP, /* missing from one capture only: capture loss, not the device */
    CMP__KIND_COUNT
};

const char *cmp_kind_name(enum cmp_kind k);

/* Severity of a difference, as findings count them (heur_sev values). */
enum cmp_sev { CMP_INFO = 0, CMP_LOW, CMP_MEDIUM, CMP_HIGH };

struct cmp_diff {
    enum cmp_kind kind;
    enum sc_dir dir;                /* c2s, s2c, or SC_DIR_NONE for connection-level */
    const struct cmp_line *line[2]; /* per side (enum cmp_side), or NULL */
    uint64_t frame[2];              /* 0 when the side has none */
    const char *rule;               /* the rule it supports, or NULL */
    enum cmp_sev severity;
    char what[256]; /* escaped detail: the field or the bytes that changed */
};

struct cmp_pair {
    struct cmp_session *s[2]; /* [CMP_OUTSIDE], [CMP_INSIDE] */
    double score;             /* 0..1 */
    double confidence;        /* how far ahead of the runner-up */
    bool ambiguous;
    sc_time offset; /* inside start minus outside start */
    struct cmp_diff *d;
    size_t nd;
    uint64_t dropped; /* differences beyond CMP_DIFFS_PER_PAIR */
};

struct cmp_result {
    struct cmp_pair *pairs;
    size_t npairs;
    sc_time clock_offset; /* estimated: inside clock minus outside clock */
    size_t offset_samples;
    bool swapped; /* the inputs were given inside first: evidence said so */
    char swap_reason[160];
    size_t only[2]; /* sessions seen in one capture only */
    size_t ndiffs[CMP__KIND_COUNT];
    enum cmp_sev worst;
};

/* Pairs and diffs the two captures (in the order given: a as outside, b as
 * inside, unless the evidence says the reverse, which res->swapped reports;
 * then a and b are exchanged in place).  Returns 0, -1 on OOM. */
int cmp_run(struct cmp_capture *a, struct cmp_capture *b, struct cmp_result *res);
void cmp_result_free(struct cmp_result *res);

/* A row of the side-by-side view of one pair: both dialogues (both
 * directions, in capture order) aligned line by line. */
struct cmp_row {
    const struct cmp_line *line[2]; /* per side, NULL where the side has none */
    enum sc_dir dir;
    char mark; /* '=' same, '!' changed, '<' outside only, '>' inside only */
};

/* Aligns a pair's whole dialogues for display; *rows is allocated.
 * Returns the number of rows, or -1 on OOM. */
long cmp_rows(const struct cmp_pair *p, struct cmp_row **rows);

#endif
