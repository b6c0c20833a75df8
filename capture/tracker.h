/* tracker.h - TCP connection tracking: the flow table, client/server roles,
 * per-direction reassembly, close reasons and idle timeouts.
 *
 * Fed decoded packets in capture order, the tracker keeps one flow per TCP
 * connection, keyed on the family-agnostic 4-tuple (both directions map to the
 * same flow), and hands its consumer ordered bytes per direction through
 * typed callbacks.  It never sees application protocols: the consumer decides
 * at `open` whether a flow interests it, and may drop interest later.
 *
 * Roles: the SYN's sender is the client (or the SYN-ACK's receiver); without
 * a handshake, the endpoint using a port from `ports` is the server; failing
 * that, the first payload decides (a line starting with a 3-digit reply code
 * comes from the server, a command verb from the client), and last the lower
 * port is taken for the server.
 *
 * Lifecycle: a RST closes a flow at once; a FIN in each direction, reached in
 * order, closes it; a flow idle for `idle_timeout` of capture time closes as a
 * timeout (capture time follows the packets' timestamps, except that one
 * packet stamped ahead of its neighbours does not move it: it is the highest
 * of min(each packet's time, the previous packet's)); cap_tracker_finish() closes the rest as end
 * of capture.  A closed flow stays as a small tombstone for `closed_linger` so late retransmissions
 * and ACKs are absorbed instead of opening a phantom connection; a new SYN on
 * the same 4-tuple starts a new connection (port reuse).
 *
 * Memory: only a flow that is followed, or about to be, holds per-side
 * counters and reassembly state.  Tombstones and flows the consumer declined
 * or dropped keep a ~200-byte head; a connection seen only as its opening
 * SYN keeps the head plus what that SYN showed, and is offered to `open`
 * when its next packet arrives, when it is closed (timeout, eviction, end of
 * capture) or evicted, with the same flow info it would have had at the SYN.
 * So a SYN flood costs ~250 bytes a flow, and no callback, event or count
 * depends on this.
 *
 * Identity: the 4-tuple plus the packet's observation context (decode.h:
 * VLAN ids, ERSPAN sessions, VNIs, tunnel endpoints), so one connection seen
 * through two mirror sessions or on two VLANs is two flows, never one flow
 * with duplicate segments.
 *
 * IP fragments are reassembled here (capture/defrag.h) before tracking; a
 * datagram that never completes still delivers its first fragment.
 *
 * Limits are fields of cap_settings; at each limit the tracker records an
 * event and carries on.  The tracker holds no global state: any number can
 * run in one process.
 */
#ifndef SC_CAPTURE_TRACKER_H
#define SC_CAPTURE_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture/decode.h"
#include "capture/defrag.h"
#include "capture/reasm.h"
#include "common/event.h"
#include "common/time.h"

#define CAP_PORTS_BITMAP_BYTES (65536 / 8)

struct cap_settings {
    /* Connections tracked at once (open, ignored and tombstones).  At the
     * limit the oldest tombstone, else the least recently active flow, is
     * evicted (closed as a timeout, with a "flow_evicted" event). */
    uint32_t max_flows;
    /* Heap bytes the whole process may hold (0: no cap).  Checked every
     * CAP_MEM_CHECK_EVERY packets; above it, tombstones, then the least
     * recently active flows, are evicted as at max_flows (a "flow_evicted"
     * event on the sessions cut short).  Measured with glibc's mallinfo2 (or
     * the sanitizer allocator's count); elsewhere only max_flows holds. */
    size_t mem_max;
    /* Out-of-order bytes held per direction (see reasm.h). 1 MiB covers a
     * full window of a fast local link; beyond it holes become gaps. */
    size_t ooo_max;
    /* Out-of-order bytes held across all flows. */
    size_t pool_max;
    /* Delivered bytes remembered per direction to compare retransmissions
     * with the original; covers one full-size segment with room to spare. */
    size_t history;
    /* Bytes of each version kept when overlapping data differs. */
    size_t evidence_max;
    /* Capture-time inactivity after which an open connection is closed as a
     * timeout.  RFC 5321 4.5.3.2 lets an SMTP client wait up to 10 minutes
     * for a reply, so anything shorter would cut live sessions. */
    sc_time idle_timeout;
    /* Capture time a closed connection's tombstone absorbs stragglers. */
    sc_time closed_linger;
    /* Ports whose listener is the server when no handshake was seen. */
    uint8_t ports[CAP_PORTS_BITMAP_BYTES];
    /* Decoding of reassembled datagrams (the caller decodes with the same). */
    struct cap_decode_opts decode;
    /* IP fragment reassembly. */
    struct cap_defrag_limits defrag;
};

/* Fills s with the defaults documented above; `ports` gets 25 and 587. */
void cap_settings_defaults(struct cap_settings *s);

static inline bool cap_port_in(const struct cap_settings *s, uint16_t port)
{
    return (s->ports[port >> 3] >> (port & 7)) & 1;
}

static inline void cap_port_set(struct cap_settings *s, uint16_t port, bool on)
{
    if (on)
        s->ports[port >> 3] = (uint8_t)(s->ports[port >> 3] | (1u << (port & 7)));
    else
        s->ports[port >> 3] = (uint8_t)(s->ports[port >> 3] & ~(1u << (port & 7)));
}

enum cap_close {
    CAP_CLOSE_FIN = 0, /* FINs (at least one; normally both) */
    CAP_CLOSE_RST,
    CAP_CLOSE_TIMEOUT, /* idle timeout, eviction, or port reuse of a dead connection */
    CAP_CLOSE_EOF,     /* still open at the end of the capture */
    CAP_CLOSE_DROPPED, /* the consumer lost interest; nothing to report */
    CAP_CLOSE__COUNT
};

/* Returns "fin", "rst", "timeout", "eof" or "dropped". */
const char *cap_close_name(enum cap_close c);

/* What the tracker knows about one side of a connection. */
struct cap_side {
    struct cap_addr addr;
    uint16_t port;
    bool syn_seen; /* sent a SYN (or SYN-ACK) */
    uint8_t first_ttl;
    uint8_t ttl_min, ttl_max; /* over the side's packets other than RSTs */
    /* The first RST this side sent (with rst_ipid, rst_window, rst_frame and
     * rst_ts below). */
    bool rst;
    uint8_t rst_ttl;
    bool rst_ipid_mismatch;      /* its IP id broke the side's pattern */
    struct cap_tcpopts syn_opts; /* options of that SYN */
    uint32_t isn;                /* its sequence number */
    uint64_t packets;
    uint64_t payload_bytes;          /* captured payload bytes sent, retransmissions included */
    const struct cap_stream *stream; /* counters: bytes, gaps, retransmits, overlaps */
    /* IP identification pattern of the side's packets (IPv4): how many were
     * 0, how many followed the previous by a small step (1..64), how many
     * jumped. A sender that counts up or always sends 0 is predictable. */
    uint32_t ipid_zero, ipid_small, ipid_big;
    uint32_t last_ipid;
    uint32_t rst_ipid;
    uint16_t rst_window;
    sc_time last_ts;
    uint64_t last_frame;
    uint64_t rst_frame;
    sc_time rst_ts;
};

struct cap_flow_info {
    struct cap_side side[2]; /* indexed by enum sc_dir: [SC_DIR_C2S] is the client */
    bool handshake;          /* a SYN or SYN-ACK was seen: both streams start at byte 0 */
    bool roles_guessed;      /* roles came from ports or payload, not from a SYN */
    uint64_t first_frame;
    uint64_t last_frame;
    sc_time first_ts;
    sc_time last_ts;
    uint8_t nvlan;
    uint16_t vlan[CAP_MAX_VLAN_TAGS];
    /* In `open` only: the encapsulation (outside in) and IP version of the
     * packet that opened the flow; NULL and 0 in `close`. */
    const struct cap_encap *encap;
    uint8_t nencap;
    uint8_t ipver;
    uint64_t ctx;    /* observation context (part of the flow's identity) */
    uint64_t seq_no; /* order of creation in this tracker, from 1 */
    /* Frames the tracker was processing (cap_tracker_packet or _tick) when
     * the flow was created and when it was last active: the order of
     * creation, and of idle expiry, across trackers sharing a capture. */
    uint64_t created_frame, touched_frame;
    bool rst_seen;
    bool fin_seen[2];
    bool evicted; /* in `close`: evicted at max_flows or mem_max, not ended */
};

struct cap_tracker_cb {
    /* A new connection with known roles (for one opened by a plain SYN, no
     * later than its next packet or its close: see "Memory" above).  Return
     * the consumer's state for it, or NULL to ignore the connection for the
     * rest of its life. */
    void *(*open)(void *user, const struct cap_flow_info *fi);
    /* In-order bytes; return non-zero to drop the flow (close with DROPPED). */
    int (*data)(void *user, void *flow, enum sc_dir dir, uint64_t off, const uint8_t *p, size_t n,
                const struct sc_meta *m);
    /* Bytes known to be missing; return non-zero to drop the flow. */
    int (*gap)(void *user, void *flow, enum sc_dir dir, uint64_t off, uint64_t len,
               enum cap_gap_reason why, const struct sc_meta *m);
    /* An anomaly on the flow (kind is a static string; detail printable or NULL). */
    void (*event)(void *user, void *flow, const char *kind, enum sc_dir dir,
                  const struct sc_meta *m, const char *detail);
    /* One direction's FIN reached in order (the other may still send). */
    void (*fin)(void *user, void *flow, enum sc_dir dir, const struct sc_meta *m);
    /* The connection is over; the consumer frees its state here.  fi is
     * valid only during the call. */
    void (*close)(void *user, void *flow, const struct cap_flow_info *fi, enum cap_close why,
                  const struct sc_meta *m);
};

/* Packets and flows counted for the summary. */
struct cap_tracker_stats {
    uint64_t packets;
    uint64_t by_status[CAP_ST__COUNT];
    uint64_t flows;          /* connections opened */
    uint64_t flows_followed; /* connections the consumer accepted */
    uint64_t evicted;
    uint64_t mem_evicted;  /* flows (tombstones included) evicted under mem_max */
    uint64_t table_full;   /* new flows refused because nothing could be evicted */
    uint64_t late_packets; /* packets absorbed by tombstones */
    uint64_t port_reuse;
    uint64_t ts_backwards; /* packets whose timestamp went back in time */
    struct cap_defrag_stats defrag;
    uint64_t encap[CAP_ENC__COUNT]; /* packets that went through each kind of layer */
    /* Packets whose encapsulation was not understood, by reason (the
     * decoder's static strings), the first CAP_MAX_UNSUPPORTED reasons. */
    struct {
        const char *what;
        uint64_t count;
    } unsupported[8];
    uint32_t n_unsupported;
};

struct cap_tracker;

/* Creates a tracker; settings and callbacks are copied.  NULL on OOM. */
struct cap_tracker *cap_tracker_new(const struct cap_settings *s, const struct cap_tracker_cb *cb,
                                    void *user);

/* Closes every open flow as CAP_CLOSE_EOF (see cap_tracker_finish) and frees. */
void cap_tracker_free(struct cap_tracker *t);

/* Processes one decoded packet (any status; non-TCP ones are only counted). */
void cap_tracker_packet(struct cap_tracker *t, const struct cap_packet *pkt);

/* ---- Parallel analysis: one capture shared by several trackers. ----
 * Each TCP connection's packets go to one tracker; every tracker is told of
 * every other packet's time with cap_tracker_tick, so idle flows expire at
 * the same frame as in a single tracker; fragments go to every tracker, each
 * reassembles them and only the owner (cap_tracker_set_owner) tracks what
 * they make, and only one counts them (CAP_PKT_UNCOUNTED elsewhere). */

/* The packet at `frame`, time `ts`, went to another tracker: time passes
 * here as if it had come (idle flows expire, fragments time out). */
void cap_tracker_tick(struct cap_tracker *t, uint64_t frame, sc_time ts);

/* Segments put together from IP fragments (and first fragments delivered
 * alone) are tracked only when mine(user, segment) is true. */
void cap_tracker_set_owner(struct cap_tracker *t,
                           bool (*mine)(void *user, const struct cap_packet *pkt), void *user);

/* cap_tracker_packet with flags: CAP_PKT_UNCOUNTED leaves the packet out
 * of the packet, status and encapsulation counts (another tracker counts
 * it); CAP_PKT_CLOCKED says cap_tracker_tick was just called with this
 * packet's frame and time (so the consumer knows which closes came from
 * time passing and which from the packet itself). */
#define CAP_PKT_UNCOUNTED 1u
#define CAP_PKT_CLOCKED 2u
void cap_tracker_packet_ex(struct cap_tracker *t, const struct cap_packet *pkt, unsigned flags);

/* Closes every open flow with CAP_CLOSE_EOF, in order of creation, with the
 * meta (frame, ts) of the last packet seen.  The tracker stays usable. */
void cap_tracker_finish(struct cap_tracker *t);

const struct cap_tracker_stats *cap_tracker_stats(const struct cap_tracker *t);

/* Adds `from`'s counters to `to` (trackers sharing one capture), all but
 * the fragment counters: every tracker reassembles every fragment, so
 * those are the same in each and taken from one. */
void cap_tracker_stats_add(struct cap_tracker_stats *to, const struct cap_tracker_stats *from);

/* Time passes without packets (live capture): flows idle for longer than
 * idle_timeout as of `now` are closed as timeouts.  Time never goes back. */
void cap_tracker_advance(struct cap_tracker *t, sc_time now);

/* Flows currently in the table (open, ignored and tombstones). */
size_t cap_tracker_flow_count(const struct cap_tracker *t);

/* Out-of-order bytes currently held across all flows. */
size_t cap_tracker_pool_used(const struct cap_tracker *t);

#endif
