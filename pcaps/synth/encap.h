/* encap.h - the synthesizer's encapsulations: 802.1Q/802.1ad tags, MPLS, PPPoE, GRE, ERSPAN
 * type II and III, VXLAN, Geneve, IP-in-IP and IPv6-in-IPv4 wrapped around every IP packet a
 * vantage writes, with optional fragmentation of the outermost tunnel datagram.
 *
 * A vantage with an encapsulation builds its packets as bare IP datagrams (LINKTYPE_RAW
 * layout) and hands them to syn_encap_write(), which wraps them in the configured layers, from
 * the innermost to the outermost, adds an outer Ethernet header and writes the frame (or the
 * frames, when the outer datagram is fragmented) to the capture.  One struct syn_encap belongs
 * to one capture file: its counters (outer IPv4 identifications, GRE and ERSPAN sequence
 * numbers) run across every connection in that file, as a real tunnel's do.
 *
 * The layer list, its scenario syntax and the path string a decoder reports for it are
 * documented in pcaps/README.md ("Encapsulations").
 */
#ifndef SC_SYNTH_ENCAP_H
#define SC_SYNTH_ENCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture/decode.h" /* struct cap_addr */
#include "common/time.h"
#include "pcaps/synth/wire.h"

/* Layers in one encapsulation list.  Real captures rarely stack more than four (a VLAN, a
 * tunnel, a VLAN inside, an MPLS label); a longer list is a scenario error. */
#define SYN_ENCAP_MAX 8
/* Identifiers one layer carries: two VLAN ids for qinq, up to this many MPLS labels.  Longer
 * MPLS stacks are a scenario error. */
#define SYN_ENCAP_IDS 4
/* Longest path string syn_encap_path() writes: every layer at its longest name
 * ("erspan3(1023)/" is 14 bytes, "mpls(1048574)/" 14 per label) plus "ipv6". */
#define SYN_ENCAP_PATH_MAX (SYN_ENCAP_MAX * SYN_ENCAP_IDS * 16 + 8)

enum syn_encap_kind {
    SYN_ENC_VLAN = 0, /* 802.1Q tag (0x8100) */
    SYN_ENC_QINQ,     /* 802.1ad service tag (0x88a8) then 802.1Q customer tag */
    SYN_ENC_MPLS,     /* MPLS label stack (0x8847), bottom-of-stack on the last */
    SYN_ENC_PPPOE,    /* PPPoE session (0x8864) and PPP protocol field */
    SYN_ENC_GRE,      /* GRE (RFC 2784/2890): IP, or transparent Ethernet bridging (0x6558) */
    SYN_ENC_ERSPAN2,  /* GRE 0x88be with a sequence number, ERSPAN type II header, Ethernet */
    SYN_ENC_ERSPAN3,  /* GRE 0x22eb with a sequence number, ERSPAN type III header, Ethernet */
    SYN_ENC_VXLAN,    /* UDP 4789, VXLAN header (RFC 7348), Ethernet */
    SYN_ENC_GENEVE,   /* UDP 6081, Geneve header without options (RFC 8926), Ethernet */
    SYN_ENC_IPIP,     /* IPv4 in IP (protocol 4) */
    SYN_ENC_IP6IP,    /* IPv6 in IP (protocol 41) */
    SYN_ENC__COUNT
};

struct syn_encap_layer {
    enum syn_encap_kind kind;
    uint32_t id[SYN_ENCAP_IDS]; /* VLAN ids (qinq: S then C), MPLS labels as given for the
                                 * client->server direction, PPPoE session, GRE key, ERSPAN
                                 * session, VNI */
    uint8_t nid;
    bool key, seq, csum; /* GRE: key present (id[0]), sequence numbers, checksum */
    uint32_t index;      /* ERSPAN type II port index (20 bits) */
    struct cap_addr src; /* tunnel layers: the outer IP header's endpoints for the */
    struct cap_addr dst; /* client->server direction (both IPv4 or both IPv6) */
};

struct syn_encap_cfg {
    struct syn_encap_layer layer[SYN_ENCAP_MAX]; /* outermost first */
    size_t n;                                    /* 0: no encapsulation */
    uint32_t outer_mtu; /* fragment the outermost tunnel datagram above this size; 0: never */
};

/* The layer kind's scenario key ("vlan", "qinq", ...), or "?" outside the enum. */
const char *syn_encap_kind_name(enum syn_encap_kind k);

/* Whether a layer kind is a tunnel (brings an outer IP header of its own). */
bool syn_encap_is_tunnel(enum syn_encap_kind k);

/* Checks that the layers fit together (an MPLS stack, PPPoE, ipip or ip6ip must carry IP of
 * the right version directly; outer_mtu needs a tunnel layer and is at least 68 bytes, or 1280
 * over IPv6) for an inner IP version.  Returns NULL, or a static sentence saying what is
 * wrong. */
const char *syn_encap_check(const struct syn_encap_cfg *c, bool inner_v6);

/* Writes the decoder's path string for the client->server direction into out (at least
 * SYN_ENCAP_PATH_MAX bytes): the layers outside->in joined by "/" ("vlan(100)",
 * "mpls(100)", "pppoe(7)", "gre" or "gre(KEY)", "erspan(S)", "erspan3(S)", "vxlan(VNI)",
 * "geneve(VNI)", "ipip"), then "ipv4" or "ipv6".  The outer IP header of a tunnel is not
 * named.  Returns the string's length. */
size_t syn_encap_path(const struct syn_encap_cfg *c, bool inner_v6, char *out, size_t outlen);

struct syn_encap;

/* Creates the encapsulation state of one capture file; seed chooses the first outer IPv4
 * identifications, the first ERSPAN sequence number and the VXLAN/Geneve source ports.  The
 * configuration is copied.  Returns NULL when out of memory. */
struct syn_encap *syn_encap_new(const struct syn_encap_cfg *c, uint64_t seed);
void syn_encap_free(struct syn_encap *e);

/* Wraps the IP datagram ip[0..n) (as syn_build_tcp/udp write it for SYN_LINK_RAW) and writes
 * the resulting frame or fragments, all at ts, to w.  c2s says the datagram goes from the
 * client to the server: it picks the outer addresses of point-to-point tunnels, the MPLS
 * labels, the sequence counters and the MAC addresses.  l gives the MAC addresses of the
 * vantage's link as seen client->server (src_mac on the client's side); they become the
 * inner Ethernet header of ERSPAN, VXLAN, Geneve and bridged GRE, and the outer one when
 * there is no tunnel.  Returns the number of frames written, 0 when the datagram cannot be
 * encapsulated (a length field would overflow: see syn_encap_dropped), or -1 on a write
 * error. */
int syn_encap_write(struct syn_encap *e, struct syn_writer *w, const struct syn_link_opts *l,
                    sc_time ts, bool c2s, const uint8_t *ip, size_t n);

/* Datagrams syn_encap_write() could not encapsulate because a 16-bit length would overflow
 * (not possible for MSS-sized segments). */
uint64_t syn_encap_dropped(const struct syn_encap *e);

#endif
