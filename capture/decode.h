/* decode.h - link, IP and TCP header decoding of one captured packet.
 *
 * Link types: Ethernet (with 802.1Q, 802.1ad and 0x9100 tags, and 802.3/SNAP),
 * Linux cooked v1 and v2 (SLL, SLL2), raw IPv4/IPv6 (LINKTYPE_RAW, IPV4,
 * IPV6), BSD loopback NULL and LOOP.  Network: IPv4 with options (RFC 791),
 * IPv6 with its extension-header chain (RFC 8200).  Transport: TCP (RFC 9293)
 * with the MSS, window-scale, SACK-permitted and timestamp options (RFC 7323,
 * RFC 2018).  Every field is read through common/wire.h; nothing is cast.
 *
 * Decoding never fails hard: the result says how far it got (status), so the
 * caller can count what it could not use.
 */
#ifndef SC_CAPTURE_DECODE_H
#define SC_CAPTURE_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/time.h"

/* Link types we decode (values from the tcpdump.org link-type registry). */
#define CAP_LINKTYPE_NULL 0
#define CAP_LINKTYPE_ETHERNET 1
#define CAP_LINKTYPE_RAW_OPENBSD 14 /* DLT_RAW's value on OpenBSD, seen in files */
#define CAP_LINKTYPE_RAW_DLT 12     /* DLT_RAW's value elsewhere, seen in files */
#define CAP_LINKTYPE_RAW 101
#define CAP_LINKTYPE_LOOP 108
#define CAP_LINKTYPE_LINUX_SLL 113
#define CAP_LINKTYPE_IPV4 228
#define CAP_LINKTYPE_IPV6 229
#define CAP_LINKTYPE_LINUX_SLL2 276

/* VLAN tags walked before giving up; 802.1ad QinQ uses two, a few stacks use
 * three, more than this is malformed or hostile. */
#define CAP_MAX_VLAN_TAGS 4
/* IPv6 extension headers walked before giving up (RFC 8200 recommends a
 * limit; real packets carry at most two or three). */
#define CAP_MAX_IPV6_EXT 16

enum cap_status {
    CAP_ST_TCP = 0,          /* a TCP segment: every TCP field is valid */
    CAP_ST_LINK_UNSUPPORTED, /* link type we do not decode */
    CAP_ST_NOT_IP,           /* link layer carries something other than IP */
    CAP_ST_NOT_TCP,          /* IP, but another transport (or ESP) */
    CAP_ST_FRAGMENT,         /* non-first IP fragment: no TCP header */
    CAP_ST_MALFORMED,        /* a header is cut short or inconsistent */
    CAP_ST__COUNT
};

/* Returns a short name for a status, e.g. "not_tcp". */
const char *cap_status_name(enum cap_status st);

/* An IP address in a family-agnostic form: IPv4 is stored as the IPv4-mapped
 * IPv6 address ::ffff:a.b.c.d so one key type covers both families. */
struct cap_addr {
    uint8_t b[16];
};

struct cap_tcpopts {
    bool mss_present;
    bool wscale_present;
    bool sack_perm;
    bool ts_present;
    bool malformed; /* an option ran past the header; parsing stopped there */
    uint8_t wscale;
    uint16_t mss;
    uint32_t tsval;
    uint32_t tsecr;
};

#define CAP_TH_FIN 0x01
#define CAP_TH_SYN 0x02
#define CAP_TH_RST 0x04
#define CAP_TH_PSH 0x08
#define CAP_TH_ACK 0x10
#define CAP_TH_URG 0x20

struct cap_packet {
    /* From the capture record. */
    uint64_t frame;
    sc_time ts;
    uint32_t caplen;
    uint32_t wirelen;
    /* Decode result. */
    enum cap_status status;
    uint8_t ipver; /* 4 or 6, 0 if not IP */
    uint8_t ttl;   /* IPv4 TTL or IPv6 hop limit */
    uint8_t nvlan;
    bool frag_first; /* first fragment of a fragmented datagram: payload incomplete */
    uint16_t vlan[CAP_MAX_VLAN_TAGS];
    uint32_t ipid; /* IPv4 identification; IPv6: the fragment header's identification
                    * when there is one, else the flow label */
    bool has_mac;  /* Ethernet: the frame's addresses */
    uint8_t mac_dst[6], mac_src[6];
    struct cap_addr src;
    struct cap_addr dst;
    uint16_t sport;
    uint16_t dport;
    uint32_t seq;
    uint32_t ack;
    uint16_t window;
    uint8_t flags; /* CAP_TH_* */
    struct cap_tcpopts opts;
    const uint8_t *payload; /* points into the record; payload_len bytes captured */
    uint32_t payload_len;
    uint32_t payload_wire; /* payload bytes on the wire per the IP length (>= payload_len) */
};

/* Decodes caplen bytes of link type `linktype` into pkt (frame, ts, caplen
 * and wirelen are left as the caller set them).  Returns pkt->status.  The
 * payload pointer aims into data, which must outlive its use. */
enum cap_status cap_decode(struct cap_packet *pkt, uint32_t linktype, const uint8_t *data,
                           uint32_t caplen);

/* Returns true for the IPv4-mapped form used for IPv4 addresses. */
bool cap_addr_is_v4(const struct cap_addr *a);

/* Parses a numeric IPv4 or IPv6 address into a; false if it is neither. */
bool cap_addr_parse(struct cap_addr *a, const char *s);

/* Formats "a.b.c.d:port" or "[v6]:port" into out (at least 64 bytes). */
void cap_endpoint_str(char *out, size_t outlen, const struct cap_addr *a, uint16_t port);

#endif
