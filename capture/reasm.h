/* reasm.h - one direction of a TCP connection rebuilt into an ordered byte
 * stream (RFC 9293 sequence space; after Suricata's stream-tcp-reassemble).
 *
 * The stream turns segments, in whatever order the capture holds them, into
 * in-order deliveries at 64-bit stream offsets.  Sequence numbers are 32-bit
 * and wrap; only seq_* helpers compare them, and everything past this module
 * is a 64-bit offset from the first byte after the SYN (or the first byte
 * seen, for a connection picked up mid-stream).
 *
 * What it guarantees to its consumer:
 *  - data is delivered exactly once, in order, through `data`;
 *  - bytes known to be missing are announced through `gap` with a reason,
 *    never skipped silently: data ACKed by the peer but never captured,
 *    segments cut by the snap length, holes left when a limit is hit, and
 *    holes still open when the stream is flushed;
 *  - a retransmission or overlap whose bytes differ from the bytes already
 *    accepted is reported through `overlap` with both versions (the first
 *    version wins, as on most stacks); identical retransmissions are counted;
 *  - a FIN is reported when the stream reaches it in order.
 *
 * Memory: out-of-order segments are copied and held up to `ooo_max` bytes per
 * stream and `*pool_used <= pool_max` across all streams sharing a pool; the
 * last `history` delivered bytes are kept to compare retransmissions.  When a
 * limit is hit, the oldest hole is declared a gap and delivery moves on.
 *
 * Callbacks return 0 to continue or non-zero to stop: the stream then stops
 * delivering for the current call and the caller is expected to tear the
 * stream down (the consumer lost interest in the flow).
 */
#ifndef SC_CAPTURE_REASM_H
#define SC_CAPTURE_REASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/time.h"

/* Wrap-safe comparisons of 32-bit sequence numbers (RFC 1982 arithmetic). */
#define CAP_SEQ_LT(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)
#define CAP_SEQ_LEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) <= 0)
#define CAP_SEQ_GT(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) > 0)
#define CAP_SEQ_DIFF(a, b) ((int64_t)(int32_t)((uint32_t)(a) - (uint32_t)(b)))

enum cap_gap_reason {
    CAP_GAP_ACKED = 0, /* the peer acknowledged bytes the capture never saw */
    CAP_GAP_SNAPLEN,   /* the segment was cut by the capture's snap length */
    CAP_GAP_LIMIT,     /* an out-of-order buffer limit forced delivery past a hole */
    CAP_GAP_END,       /* the stream ended (FIN, RST, timeout, end of capture) with a hole */
    CAP_GAP_FRAGMENT,  /* the rest of an IP-fragmented segment was not reassembled */
    CAP_GAP__COUNT
};

/* Returns "acked_unseen", "snaplen", "buffer_limit", "end_of_stream" or "ip_fragment". */
const char *cap_gap_reason_name(enum cap_gap_reason r);

struct cap_stream_cb {
    int (*data)(void *user, uint64_t off, const uint8_t *p, size_t n, const struct sc_meta *m);
    int (*gap)(void *user, uint64_t off, uint64_t len, enum cap_gap_reason why,
               const struct sc_meta *m);
    /* old/new point at the first differing byte; each at most evidence_max bytes. */
    int (*overlap)(void *user, uint64_t off, const uint8_t *old_p, size_t old_n,
                   const uint8_t *new_p, size_t new_n, const struct sc_meta *m);
    int (*fin)(void *user, uint64_t off, const struct sc_meta *m);
};

struct cap_stream_limits {
    size_t ooo_max;      /* out-of-order bytes held by one stream */
    size_t pool_max;     /* out-of-order bytes held by all streams of a pool */
    size_t history;      /* delivered bytes remembered for retransmission checks */
    size_t evidence_max; /* bytes of each version passed to `overlap` */
};

struct cap__seg;

/* One direction.  Fields are private to reasm.c; the struct is public only so
 * it can be embedded in a flow without another allocation. */
struct cap_stream {
    bool init;       /* sequence base known */
    bool fin_seen;   /* a FIN's position is known */
    bool fin_done;   /* the FIN was delivered in order */
    bool fin_ack_ok; /* the FIN counted for ACK accounting */
    uint32_t next_seq;
    uint64_t next_off; /* offset of next_seq: bytes delivered or declared gaps */
    uint64_t fin_off;
    struct cap__seg *ooo; /* held segments, sorted by offset, non-overlapping */
    size_t ooo_bytes;
    uint8_t *hist; /* ring of the last `history` bytes before next_off */
    size_t hist_cap;
    uint64_t hist_valid_from; /* offsets below this are not in the ring (gaps) */
    /* Counters for the consumer. */
    uint64_t bytes;         /* payload bytes delivered */
    uint64_t gap_bytes;     /* bytes declared missing */
    uint32_t gaps;          /* gap announcements */
    uint32_t retransmits;   /* segments entirely already delivered */
    uint32_t overlaps_diff; /* overlaps whose bytes differed */
    uint32_t unverified;    /* retransmitted bytes too old for the history */
    uint64_t high;          /* highest stream offset seen (end of the furthest segment) */
    uint64_t acked;         /* highest stream offset the peer acknowledged */
    uint32_t tail_retx;     /* retransmissions since the peer's ACK last advanced */
    uint32_t ooo_count;     /* segments in ooo */
};

/* Zeroes a stream; no sequence base yet. */
void cap_stream_init(struct cap_stream *s);

/* Fixes the sequence base: `seq` is the sequence number of stream offset 0
 * (ISN + 1 after a SYN, or the first sequence number seen mid-stream). */
void cap_stream_set_base(struct cap_stream *s, uint32_t seq);

/* Releases held segments and history, returning their bytes to *pool_used. */
void cap_stream_free(struct cap_stream *s, size_t *pool_used);

/* Feeds one segment: `n` captured payload bytes out of `wire` on the wire
 * (wire > n means the rest was cut by the snap length or an IP fragment;
 * `tail_reason` says which), and whether it carried a FIN.  Returns non-zero
 * if a callback asked to stop. */
int cap_stream_segment(struct cap_stream *s, const struct cap_stream_limits *lim, size_t *pool_used,
                       uint32_t seq, const uint8_t *p, size_t n, size_t wire,
                       enum cap_gap_reason tail_reason, bool fin, const struct sc_meta *m,
                       const struct cap_stream_cb *cb, void *user);

/* Tells the stream that its peer acknowledged everything before `ack`; bytes
 * acknowledged but never seen become a gap (CAP_GAP_ACKED). */
int cap_stream_acked(struct cap_stream *s, const struct cap_stream_limits *lim, size_t *pool_used,
                     uint32_t ack, const struct sc_meta *m, const struct cap_stream_cb *cb,
                     void *user);

/* Delivers everything still held, announcing each hole as a gap with reason
 * `why`.  Used when the connection ends or a limit forces it. */
int cap_stream_flush(struct cap_stream *s, const struct cap_stream_limits *lim, size_t *pool_used,
                     enum cap_gap_reason why, const struct sc_meta *m,
                     const struct cap_stream_cb *cb, void *user);

#endif
