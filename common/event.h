/* event.h - a bounded list of protocol anomalies recorded on a session.
 *
 * Anomalies in the input (bare LF, gaps, overlapping retransmissions with
 * different bytes, lines over the limit...) are events, never errors.  The
 * list aggregates by (kind, direction): the first occurrence keeps its frame,
 * timestamp and detail, later ones only bump `count` and `last_frame`.  At
 * most SC_EVENT_KINDS_MAX distinct entries are kept (see sc_events_add).
 */
#ifndef SC_COMMON_EVENT_H
#define SC_COMMON_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/time.h"

/* Distinct (kind, direction) entries kept per session.  Event kinds are a
 * short fixed vocabulary (about 30 names across capture/ and dissect/), so 48
 * holds every kind in both directions; beyond it new kinds are only counted in
 * `dropped`. */
#define SC_EVENT_KINDS_MAX 48

/* Bytes of escaped detail kept per event: enough for two 100-byte versions of
 * an overlapping segment, escaped, plus the framing text. */
#define SC_EVENT_DETAIL_MAX 512

enum sc_dir {
    SC_DIR_C2S = 0,
    SC_DIR_S2C = 1,
    SC_DIR_NONE = 2,
};

/* Returns "c2s", "s2c" or "-". */
const char *sc_dir_name(enum sc_dir d);

struct sc_event {
    const char *kind; /* static string, e.g. "bare_lf" */
    enum sc_dir dir;
    uint64_t frame;      /* first occurrence */
    uint64_t last_frame; /* last occurrence */
    sc_time ts;
    uint64_t count;
    char *detail; /* owned, escaped printable ASCII, may be NULL */
};

struct sc_events {
    struct sc_event *v;
    size_t n;
    uint64_t dropped; /* occurrences not kept because the list was full */
};

void sc_events_init(struct sc_events *e);
void sc_events_free(struct sc_events *e);

/* Records one occurrence of `kind` (a string with static storage).  `detail`
 * is copied (cut at SC_EVENT_DETAIL_MAX) and must already be printable ASCII;
 * it may be NULL.  Never fails: on a full list or no memory it only counts. */
void sc_events_add(struct sc_events *e, const char *kind, enum sc_dir dir, uint64_t frame,
                   sc_time ts, const char *detail);

/* Returns the total number of occurrences of `kind` in either direction. */
uint64_t sc_events_count(const struct sc_events *e, const char *kind);

#endif
