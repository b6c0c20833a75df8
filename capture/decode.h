/* decode.h - link, tunnel, IP and TCP header decoding of one captured packet.
 *
 * Link types: Ethernet (with 802.1Q, 802.1ad and 0x9100 tags, and 802.3/SNAP),
 * Linux cooked v1 and v2 (SLL, SLL2), raw IPv4/IPv6 (LINKTYPE_RAW, IPV4,
 * IPV6), BSD loopback NULL and LOOP.  Network: IPv4 with options (RFC 791),
 * IPv6 with its extension-header chain (RFC 8200).  Transport: TCP (RFC 9293)
 * with the MSS, window-scale, SACK-permitted and timestamp options (RFC 7323,
 * RFC 2018).  Every field is read through common/wire.h; nothing is cast.
 *
 * Encapsulations, walked as a chain of layers up to CAP_MAX_ENCAP entries and
 * CAP_MAX_TUNNEL_DEPTH tunnels: GRE (RFC 2784/2890, with or without checksum,
 * key and sequence number; version 1 PPTP carrying PPP, RFC 2637), ERSPAN
 * type I, II and III (GRE protocols 0x88be and 0x22eb), VXLAN (RFC 7348, UDP
 * port configurable, default 4789), Geneve (RFC 8926, UDP 6081), IPv4 and
 * IPv6 directly in IPv4 or IPv6 (protocols 4 and 41), MPLS label stacks (RFC
 * 3032, with the pseudowire control word before Ethernet), PPPoE sessions
 * (RFC 2516), and 802.1Q/QinQ tags inside any of these.  Each layer is
 * recorded (cap_packet.encap) and the ones that tell observations of the same
 * connection apart (VLAN ids, ERSPAN sessions, VNIs, PPPoE sessions, tunnel
 * endpoints) are folded into cap_packet.ctx, which flow tracking adds to the
 * 4-tuple.  MPLS labels and GRE keys are not: they may differ per direction.
 *
 * IP fragments are described (cap_packet.frag) for capture/defrag.h to
 * reassemble; a first fragment is also decoded as far as it goes
 * (frag_first).  cap_decode_payload() continues decoding a reassembled
 * datagram.
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
/* Encapsulation layers recorded per packet (tags, labels, tunnels); a packet
 * with more is reported as CAP_ST_ENCAP_UNSUPPORTED.  Real stacks use four or
 * five (outer VLAN, ERSPAN, inner QinQ). */
#define CAP_MAX_ENCAP 12
/* Tunnels (IP in something in IP) entered before giving up. */
#define CAP_MAX_TUNNEL_DEPTH 4
/* MPLS labels walked before giving up (RFC 3032 sets no limit; real stacks
 * carry two or three). */
#define CAP_MAX_MPLS_LABELS 8
/* Default UDP ports of the UDP tunnels (IANA). */
#define CAP_VXLAN_PORT 4789
#define CAP_GENEVE_PORT 6081

enum cap_status {
    CAP_ST_TCP = 0,           /* a TCP segment: every TCP field is valid */
    CAP_ST_LINK_UNSUPPORTED,  /* link type we do not decode */
    CAP_ST_NOT_IP,            /* link layer carries something other than IP */
    CAP_ST_NOT_TCP,           /* IP, but another transport (or ESP) */
    CAP_ST_FRAGMENT,          /* non-first IP fragment: no TCP header */
    CAP_ST_MALFORMED,         /* a header is cut short or inconsistent */
    CAP_ST_ENCAP_UNSUPPORTED, /* a tunnel or label stack we do not decode (see unsupported) */
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

/* Kinds of encapsulation layer. */
enum cap_encap_kind {
    CAP_ENC_VLAN = 0, /* id: VLAN id */
    CAP_ENC_MPLS,     /* id: label */
    CAP_ENC_PPPOE,    /* id: session id */
    CAP_ENC_GRE,      /* id: key (has_id when present) */
    CAP_ENC_PPTP,     /* GRE version 1 with PPP; id: call id */
    CAP_ENC_ERSPAN1,  /* no header, no id */
    CAP_ENC_ERSPAN2,  /* id: session id */
    CAP_ENC_ERSPAN3,  /* id: session id */
    CAP_ENC_VXLAN,    /* id: VNI */
    CAP_ENC_GENEVE,   /* id: VNI */
    CAP_ENC_IPIP,     /* IPv4 or IPv6 directly in IP */
    CAP_ENC__COUNT
};

/* Returns the layer's name as printed in paths: "vlan", "erspan", ... */
const char *cap_encap_name(enum cap_encap_kind k);

struct cap_encap {
    uint8_t kind; /* enum cap_encap_kind */
    bool has_id;
    uint32_t id;
};

/* Settings of the decoder. */
struct cap_decode_opts {
    uint16_t vxlan_port;  /* 0: no VXLAN */
    uint16_t geneve_port; /* 0: no Geneve */
    bool vlan_in_ctx;     /* VLAN ids tell observations apart (default on) */
    bool tunnel_in_ctx;   /* tunnel ids and endpoints do (default on) */
};

/* Fills o with the defaults above. */
void cap_decode_opts_defaults(struct cap_decode_opts *o);

/* An IP fragment, as found by the decoder (the outermost fragmented layer). */
struct cap_frag {
    bool present;
    uint8_t ipver;
    uint8_t proto; /* IPv4 protocol, or the fragment header's next header */
    bool more;     /* more fragments follow */
    uint32_t id;
    uint32_t off;  /* byte offset of this fragment's data in the datagram */
    uint32_t len;  /* data bytes captured */
    uint32_t wire; /* data bytes on the wire (> len: cut by the snaplen) */
    const uint8_t *data;
    struct cap_addr src, dst;
    uint8_t nencap; /* layers and context outside the fragmented header */
    uint64_t ctx;
    uint8_t depth;
};

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
    /* Encapsulation, outside in; the innermost Ethernet header gives nvlan,
     * vlan[] and the MAC addresses. */
    uint8_t nencap;
    uint8_t depth; /* tunnels entered */
    struct cap_encap encap[CAP_MAX_ENCAP];
    uint64_t ctx;            /* observation context (0: none); see the top of this file */
    const char *unsupported; /* CAP_ST_ENCAP_UNSUPPORTED: what, e.g. "gre-routing" */
    struct cap_frag frag;
    /* Set by capture/defrag.h on a reassembled datagram. */
    uint16_t frag_count; /* fragments it was made of (0: not reassembled) */
    bool frag_conflict;  /* overlapping fragments carried different bytes */
};

/* Decodes caplen bytes of link type `linktype` into pkt (frame, ts, caplen
 * and wirelen are left as the caller set them).  Returns pkt->status.  The
 * payload pointer aims into data, which must outlive its use.  cap_decode
 * uses the default options. */
enum cap_status cap_decode(struct cap_packet *pkt, uint32_t linktype, const uint8_t *data,
                           uint32_t caplen);
enum cap_status cap_decode_ex(struct cap_packet *pkt, uint32_t linktype, const uint8_t *data,
                              uint32_t caplen, const struct cap_decode_opts *o);

/* Continues decoding a reassembled datagram: pkt holds what was decoded
 * outside the fragmented header (its frag describes it); [p, p+len) is the
 * whole datagram's payload.  Returns pkt->status; frag is cleared. */
enum cap_status cap_decode_payload(struct cap_packet *pkt, const uint8_t *p, size_t len,
                                   const struct cap_decode_opts *o);

/* Formats the encapsulation path, e.g. "vlan(100)/erspan(12)/vlan(20)/ipv4",
 * into out (CAP_ENCAP_STR_MAX bytes suffice). */
#define CAP_ENCAP_STR_MAX (CAP_MAX_ENCAP * 20 + 8)
void cap_encap_str(char *out, size_t outlen, const struct cap_encap *e, size_t n, uint8_t ipver);

/* Returns true for the IPv4-mapped form used for IPv4 addresses. */
bool cap_addr_is_v4(const struct cap_addr *a);

/* Parses a numeric IPv4 or IPv6 address into a; false if it is neither. */
bool cap_addr_parse(struct cap_addr *a, const char *s);

/* Formats "a.b.c.d:port" or "[v6]:port" into out (at least 64 bytes). */
void cap_endpoint_str(char *out, size_t outlen, const struct cap_addr *a, uint16_t port);

#endif
