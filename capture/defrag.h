/* defrag.h - IPv4 and IPv6 fragment reassembly (RFC 791, RFC 8200 4.5).
 *
 * Fed the packets whose decode found a fragment (cap_packet.frag), it holds
 * their data per datagram, keyed on the IP version, addresses, identification,
 * protocol and the observation context outside the fragmented header (so the
 * same datagram seen through two mirror sessions is two datagrams).  When
 * the last hole closes, the datagram's payload is assembled into one buffer
 * and decoded on from the fragmented header (cap_decode_payload): the result
 * is an ordinary packet, with the frame number and time of the fragment that
 * completed it, as Wireshark shows reassembled data.
 *
 * Overlaps: a fragment whose bytes repeat bytes already held is a duplicate
 * and costs nothing; where the bytes differ, the first copy is kept and the
 * datagram is marked (frag_conflict) so the flow can record an event: the
 * end host may have kept the other copy (RFC 5722 tells IPv6 hosts to drop
 * such datagrams; IPv4 stacks differ), which is an evasion signature.
 *
 * Bounds: the data held across all datagrams (mem_max), the datagrams in
 * progress (max_datagrams), the datagram size (CAP_DEFRAG_MAX_SIZE) and the
 * fragments per datagram (CAP_DEFRAG_MAX_PIECES).  A datagram that waits
 * longer than `timeout` of capture time, or is evicted to make room (oldest
 * first), is given up: if its first fragment was seen, the caller gets that
 * fragment's decode (frag_first: the transport header and the first bytes,
 * the rest known missing) from cap_defrag_expired(), so a gap is reported
 * rather than nothing.  Nothing here is global.
 */
#ifndef SC_CAPTURE_DEFRAG_H
#define SC_CAPTURE_DEFRAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture/decode.h"
#include "common/time.h"

/* The largest datagram payload: IPv4's total length is 16 bits, and an IPv6
 * fragment's offset plus length must fit the 16-bit payload length. */
#define CAP_DEFRAG_MAX_SIZE 65535
/* Fragments kept per datagram (a 64 KiB datagram in 8-byte pieces would be
 * 8192; real ones have two to fifty, attacks many tiny ones). */
#define CAP_DEFRAG_MAX_PIECES 1024

struct cap_defrag_limits {
    size_t mem_max;         /* fragment bytes held, all datagrams (default 16 MiB) */
    uint32_t max_datagrams; /* datagrams in progress (default 4096) */
    sc_time timeout;        /* capture time a datagram may wait (default 30 s, as Linux) */
};

void cap_defrag_limits_defaults(struct cap_defrag_limits *l);

struct cap_defrag_stats {
    uint64_t fragments;   /* fragments taken */
    uint64_t reassembled; /* datagrams completed */
    uint64_t duplicates;  /* fragments that repeated bytes already held */
    uint64_t conflicts;   /* fragments whose overlapping bytes differed */
    uint64_t timed_out;   /* datagrams given up after the timeout */
    uint64_t evicted;     /* datagrams given up to stay within the limits */
    uint64_t invalid;     /* fragments refused: past CAP_DEFRAG_MAX_SIZE, cut short, too many */
};

struct cap_defrag;

/* NULL on OOM; the limits are copied. */
struct cap_defrag *cap_defrag_new(const struct cap_defrag_limits *l,
                                  const struct cap_decode_opts *o);
void cap_defrag_free(struct cap_defrag *d);

enum cap_defrag_result {
    CAP_DEFRAG_HELD = 0, /* kept; nothing to process yet */
    CAP_DEFRAG_DONE,     /* *out is the reassembled packet */
    CAP_DEFRAG_REFUSED,  /* not kept (invalid, or no memory): process pkt as it is */
};

/* Takes a packet with pkt->frag.present.  On CAP_DEFRAG_DONE, *out is the
 * reassembled datagram decoded on; its payload points into a buffer of d,
 * valid until the next call on d. */
enum cap_defrag_result cap_defrag_add(struct cap_defrag *d, const struct cap_packet *pkt,
                                      struct cap_packet *out);

/* Gives up the datagrams older than the timeout as of `now`, and delivers
 * the ones given up (by timeout or eviction) whose first fragment was seen:
 * returns true with *out set to one of them (valid until the next call on
 * d), false when there are no more.  Call it until it returns false. */
bool cap_defrag_expired(struct cap_defrag *d, sc_time now, struct cap_packet *out);

/* True when nothing is held: no datagram in progress, none given up and not
 * yet collected (cap_defrag_expired would return false at any time). */
bool cap_defrag_idle(const struct cap_defrag *d);

/* Gives up every datagram in progress (end of input); then drain with
 * cap_defrag_expired(). */
void cap_defrag_flush(struct cap_defrag *d);

const struct cap_defrag_stats *cap_defrag_stats(const struct cap_defrag *d);

/* Bytes of fragment data held now. */
size_t cap_defrag_mem(const struct cap_defrag *d);

#endif
