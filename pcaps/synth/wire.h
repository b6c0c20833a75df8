/* wire.h - the synthesizer's packet builder and capture-file writer.
 *
 * Builds complete frames (link header, IPv4 or IPv6 header, TCP or UDP
 * header with options, payload) with correct lengths and checksums, and
 * writes them to pcap (microsecond or nanosecond) or pcapng files through a
 * large output buffer.  Everything a frame needs is given explicitly; the
 * builder keeps no state and no globals, so the simulator can write two
 * captures (outside and inside) at once.
 *
 * Link types: Ethernet (LINKTYPE_ETHERNET, optionally with up to two VLAN
 * tags: 802.1ad 0x88a8 outer + 802.1Q 0x8100 inner, or a single 0x8100),
 * Linux cooked v2 (LINKTYPE_LINUX_SLL2) and raw IP (LINKTYPE_RAW).
 */
#ifndef SC_SYNTH_WIRE_H
#define SC_SYNTH_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture/decode.h" /* struct cap_addr, CAP_TH_*, CAP_LINKTYPE_* */
#include "common/time.h"

/* Largest frame the builder produces: 64 KiB of payload plus headers. */
#define SYN_FRAME_MAX (65535 + 256)

enum syn_link {
    SYN_LINK_ETHERNET = 0,
    SYN_LINK_SLL2,
    SYN_LINK_RAW,
};

struct syn_link_opts {
    enum syn_link type;
    uint8_t nvlan;      /* 0, 1 (802.1Q) or 2 (802.1ad outer, 802.1Q inner) */
    uint16_t vlan[2];   /* VLAN ids, outermost first */
    uint8_t src_mac[6]; /* Ethernet and SLL2 (SLL2 carries the sender's address) */
    uint8_t dst_mac[6];
    uint32_t ifindex; /* SLL2 interface index */
    uint8_t pkttype;  /* SLL2 packet type: 0 host, 4 outgoing */
};

struct syn_ip {
    struct cap_addr src; /* IPv4 as ::ffff:a.b.c.d (cap_addr_is_v4), else IPv6 */
    struct cap_addr dst;
    uint8_t ttl;        /* IPv4 TTL / IPv6 hop limit */
    uint16_t ipid;      /* IPv4 identification */
    bool df;            /* IPv4 don't-fragment */
    uint32_t flowlabel; /* IPv6, 20 bits */
};

struct syn_tcp {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags; /* CAP_TH_* */
    uint16_t window;
    /* Options, written in the order Linux uses: MSS, SACK-permitted,
     * timestamps, NOP, window scale (SYN) / NOP NOP timestamps (others). */
    bool mss_on;
    uint16_t mss;
    bool sack_perm;
    bool ts_on;
    uint32_t tsval, tsecr;
    bool ws_on;
    uint8_t ws;
};

struct syn_udp {
    uint16_t sport, dport;
};

/* Builds a TCP frame into out (at least SYN_FRAME_MAX bytes); returns its
 * length.  IPv4 header and TCP checksums are computed. */
size_t syn_build_tcp(uint8_t *out, const struct syn_link_opts *l, const struct syn_ip *ip,
                     const struct syn_tcp *t, const uint8_t *payload, size_t n);

/* Same for UDP (DNS and other background traffic). */
size_t syn_build_udp(uint8_t *out, const struct syn_link_opts *l, const struct syn_ip *ip,
                     const struct syn_udp *u, const uint8_t *payload, size_t n);

/* The pcap link-type value for a link (1, 276 or 101). */
uint32_t syn_linktype(enum syn_link type);

enum syn_format {
    SYN_PCAP_US = 0, /* classic pcap, microsecond timestamps */
    SYN_PCAP_NS,     /* classic pcap, nanosecond timestamps */
    SYN_PCAPNG,      /* pcapng: SHB, one IDB (if_tsresol 9 = ns), EPBs */
};

struct syn_writer;

/* Opens path for writing ("-" is stdout).  snaplen cuts every frame (the
 * original length is kept in the record).  Returns NULL with errno set. */
struct syn_writer *syn_writer_open(const char *path, enum syn_format fmt, uint32_t linktype,
                                   uint32_t snaplen);

/* Appends one frame captured at ts.  Returns 0 or -1 on a write error. */
int syn_writer_packet(struct syn_writer *w, sc_time ts, const uint8_t *frame, size_t len);

/* Flushes and closes; returns 0 or -1 if any write failed. */
int syn_writer_close(struct syn_writer *w);

/* Packets written so far. */
uint64_t syn_writer_count(const struct syn_writer *w);

#endif
