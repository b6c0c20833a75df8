/* encap.c - encapsulations around the synthesizer's IP datagrams, and fragmentation of the
 * outermost tunnel datagram.
 *
 * Implements: IEEE 802.1Q and 802.1ad tags; MPLS label stack entries (RFC 3032) over Ethernet
 * (RFC 3032 5, ethertype 0x8847); PPPoE session stage (RFC 2516 5.4) carrying PPP (RFC 1661 2,
 * protocol 0x0021 IPv4, 0x0057 IPv6); GRE (RFC 2784) with key and sequence number (RFC 2890),
 * transparent Ethernet bridging (protocol 0x6558); ERSPAN type II and III
 * (draft-foschiano-erspan-03, laid out as Linux's include/net/erspan.h builds them); VXLAN
 * (RFC 7348); Geneve without options (RFC 8926); IPv4-in-IP (RFC 2003) and IPv6-in-IPv4
 * (RFC 4213 3.5); the outer IPv4 (RFC 791) or IPv6 (RFC 8200) header with fragmentation
 * (RFC 791 3.2, RFC 8200 4.5); UDP (RFC 768) and the Internet checksum (RFC 1071).
 *
 * Every field is stored byte by byte in network order; nothing is cast to a struct.
 *
 * Policies the header leaves open:
 *  - The datagram is built from the inside out in a buffer with SYN_ENCAP_HEADROOM bytes in
 *    front of it; every layer prepends its header.
 *  - ERSPAN, VXLAN, Geneve and GRE carrying an Ethernet-based layer (a VLAN tag, MPLS, PPPoE)
 *    put the original frame inside: an Ethernet header with the vantage's MAC addresses.
 *  - Point-to-point tunnels (GRE, IP-in-IP) send the server->client direction from the other
 *    end: outer addresses and outer MAC addresses are swapped, and each end counts its own
 *    outer IPv4 identifications and GRE sequence numbers.  Mirror tunnels (ERSPAN, VXLAN,
 *    Geneve) carry both directions from the mirror source to the collector with one counter,
 *    as a switch or a cloud traffic mirror does.
 *  - MPLS: label L as given for client->server, L + 1 for server->client (LSPs are
 *    unidirectional); TC 0, TTL 64.
 *  - Outer IP headers: TTL / hop limit 64, DSCP 0, DF clear (so outer_mtu can fragment), the
 *    first IPv4 identification of each sender drawn from the seed, then +1 per datagram.
 *  - UDP checksums are computed (also over IPv4).  The VXLAN/Geneve source port is a hash of
 *    the inner flow, the same for both directions (as Linux's flow hash), in 32768..60999.
 *  - ERSPAN type II: En 3 and the tag's VLAN id when the mirrored frame carries a tag, else 0;
 *    index as configured.  Type III: P 1, frame type 0, granularity 0 (100 us) with the
 *    capture time as timestamp, BSO short below 60 bytes and oversized above 1514.
 *  - Fragments: every fragment carries the layers outside the fragmented header (VLAN, MPLS,
 *    PPPoE) and the outer Ethernet header, in offset order, all with the datagram's time.
 */
#include "pcaps/synth/encap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pcaps/synth/rng.h"

/* ---- limits and constants ---- */

/* Room in front of the datagram for every header the layers may add: at most SYN_ENCAP_MAX
 * layers of at most 40 (IPv6) + 8 (UDP or GRE) + 16 (GRE options or ERSPAN III 12) + 14 (inner
 * Ethernet) + 18 (ERSPAN II / MPLS) bytes, and the outer Ethernet header; rounded up. */
#define SYN_ENCAP_HEADROOM 1024
/* A datagram and everything built around it; the 16-bit IP and UDP lengths keep every layer's
 * content below 64 KiB, which the checks in the builders enforce. */
#define SYN_ENCAP_BUF (SYN_ENCAP_HEADROOM + 65536)

#define ETH_HDR_LEN 14
#define IP4_HDR_LEN 20
#define IP6_HDR_LEN 40
#define IP6_FRAG_LEN 8
#define UDP_HDR_LEN 8
#define IP_LEN_MAX 65535u
#define IP4_MTU_MIN 68   /* RFC 791: every IPv4 host forwards 68-byte datagrams */
#define IP6_MTU_MIN 1280 /* RFC 8200 5 */
#define MPLS_LABEL_MAX 0xfffffu

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_8021Q 0x8100
#define ETHERTYPE_8021AD 0x88a8
#define ETHERTYPE_MPLS 0x8847
#define ETHERTYPE_PPPOE_SESSION 0x8864
#define ETHERTYPE_TEB 0x6558
#define ETHERTYPE_ERSPAN2 0x88be
#define ETHERTYPE_ERSPAN3 0x22eb
#define PPP_IPV4 0x0021
#define PPP_IPV6 0x0057

#define IPPROTO_IPIP_ 4
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_IPV6_ 41
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_GRE_ 47

#define GRE_C 0x8000u
#define GRE_K 0x2000u
#define GRE_S 0x1000u

#define UDP_PORT_VXLAN 4789
#define UDP_PORT_GENEVE 6081
/* Linux's default ip_local_port_range, where its VXLAN and Geneve source ports fall. */
#define UDP_SPORT_MIN 32768u
#define UDP_SPORT_MAX 60999u

#define OUTER_TTL 64

/* MAC addresses of the tunnel routers (or mirror source and collector): locally administered,
 * distinct from the vantages' 02:00:5e:10:00:xx. */
static const uint8_t tun_mac_a[6] = {0x02, 0x00, 0x5e, 0x20, 0x00, 0x01};
static const uint8_t tun_mac_b[6] = {0x02, 0x00, 0x5e, 0x20, 0x00, 0x02};

/* ---- byte stores and checksums ---- */

static void put_be16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Adds [p, p+n) as big-endian 16-bit words (RFC 1071; an odd last byte padded with zero). */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 1 < n; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (i < n)
        sum += (uint32_t)p[i] << 8;
    return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* ---- layer table ---- */

static const char *const kind_names[SYN_ENC__COUNT] = {
    [SYN_ENC_VLAN] = "vlan",       [SYN_ENC_QINQ] = "qinq",   [SYN_ENC_MPLS] = "mpls",
    [SYN_ENC_PPPOE] = "pppoe",     [SYN_ENC_GRE] = "gre",     [SYN_ENC_ERSPAN2] = "erspan2",
    [SYN_ENC_ERSPAN3] = "erspan3", [SYN_ENC_VXLAN] = "vxlan", [SYN_ENC_GENEVE] = "geneve",
    [SYN_ENC_IPIP] = "ipip",       [SYN_ENC_IP6IP] = "ip6ip",
};

/* See encap.h. */
const char *syn_encap_kind_name(enum syn_encap_kind k)
{
    return (unsigned)k < SYN_ENC__COUNT ? kind_names[k] : "?";
}

/* See encap.h. */
bool syn_encap_is_tunnel(enum syn_encap_kind k)
{
    return k == SYN_ENC_GRE || k == SYN_ENC_ERSPAN2 || k == SYN_ENC_ERSPAN3 || k == SYN_ENC_VXLAN ||
           k == SYN_ENC_GENEVE || k == SYN_ENC_IPIP || k == SYN_ENC_IP6IP;
}

/* Mirror tunnels carry both directions from the same source to the same collector. */
static bool is_mirror(enum syn_encap_kind k)
{
    return k == SYN_ENC_ERSPAN2 || k == SYN_ENC_ERSPAN3 || k == SYN_ENC_VXLAN ||
           k == SYN_ENC_GENEVE;
}

/* Index of the outermost tunnel layer, or c->n when there is none. */
static size_t outer_tunnel(const struct syn_encap_cfg *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (syn_encap_is_tunnel(c->layer[i].kind))
            return i;
    return c->n;
}

/* What the layers inside layer i hand it: a bare IPv4 or IPv6 datagram, or Ethernet-based
 * content (a tag, a label stack, a PPPoE session) that needs an Ethernet header. */
enum carried { CARRY_IP4, CARRY_IP6, CARRY_ETH };

static enum carried carried_at(const struct syn_encap_cfg *c, size_t i, bool inner_v6)
{
    if (i + 1 >= c->n)
        return inner_v6 ? CARRY_IP6 : CARRY_IP4;
    const struct syn_encap_layer *in = &c->layer[i + 1];
    if (syn_encap_is_tunnel(in->kind))
        return cap_addr_is_v4(&in->src) ? CARRY_IP4 : CARRY_IP6;
    return CARRY_ETH;
}

/* See encap.h. */
const char *syn_encap_check(const struct syn_encap_cfg *c, bool inner_v6)
{
    if (c->n > SYN_ENCAP_MAX)
        return "too many encapsulation layers";
    for (size_t i = 0; i < c->n; i++) {
        const struct syn_encap_layer *y = &c->layer[i];
        enum carried in = carried_at(c, i, inner_v6);
        switch (y->kind) {
        case SYN_ENC_MPLS:
            if (in == CARRY_ETH)
                return "an MPLS stack must carry IP directly";
            break;
        case SYN_ENC_PPPOE:
            if (in == CARRY_ETH)
                return "PPPoE must carry IP directly";
            break;
        case SYN_ENC_IPIP:
            if (in != CARRY_IP4)
                return "ipip carries IPv4 (use ip6ip for IPv6)";
            break;
        case SYN_ENC_IP6IP:
            if (in != CARRY_IP6)
                return "ip6ip carries IPv6 (use ipip for IPv4)";
            break;
        default:
            break;
        }
        if (syn_encap_is_tunnel(y->kind) && cap_addr_is_v4(&y->src) != cap_addr_is_v4(&y->dst))
            return "tunnel endpoints must be of the same IP version";
    }
    if (c->outer_mtu) {
        size_t t = outer_tunnel(c);
        if (t == c->n)
            return "outer_mtu needs a tunnel layer (its outer IP header is fragmented)";
        bool v4 = cap_addr_is_v4(&c->layer[t].src);
        if (c->outer_mtu < (v4 ? IP4_MTU_MIN : IP6_MTU_MIN) || c->outer_mtu > IP_LEN_MAX)
            return v4 ? "outer_mtu must be 68..65535 over IPv4"
                      : "outer_mtu must be 1280..65535 "
                        "over IPv6";
    }
    return NULL;
}

/* See encap.h.  Stops (with the string cut at a layer boundary) rather than overflow out. */
size_t syn_encap_path(const struct syn_encap_cfg *c, bool inner_v6, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return 0;
    out[0] = '\0';
    for (size_t i = 0; i < c->n && i < SYN_ENCAP_MAX; i++) {
        const struct syn_encap_layer *y = &c->layer[i];
        char part[SYN_ENCAP_IDS * 16 + 1];
        size_t p = 0;
        part[0] = '\0';
        switch (y->kind) {
        case SYN_ENC_VLAN:
        case SYN_ENC_QINQ:
        case SYN_ENC_MPLS:
            for (uint8_t k = 0; k < y->nid && k < SYN_ENCAP_IDS; k++)
                p += (size_t)snprintf(part + p, sizeof(part) - p, "%s%s(%u)", k ? "/" : "",
                                      y->kind == SYN_ENC_MPLS ? "mpls" : "vlan", y->id[k]);
            break;
        case SYN_ENC_PPPOE:
            snprintf(part, sizeof(part), "pppoe(%u)", y->id[0]);
            break;
        case SYN_ENC_GRE:
            if (y->key)
                snprintf(part, sizeof(part), "gre(%u)", y->id[0]);
            else
                snprintf(part, sizeof(part), "gre");
            break;
        case SYN_ENC_ERSPAN2:
            snprintf(part, sizeof(part), "erspan(%u)", y->id[0]);
            break;
        case SYN_ENC_ERSPAN3:
            snprintf(part, sizeof(part), "erspan3(%u)", y->id[0]);
            break;
        case SYN_ENC_VXLAN:
            snprintf(part, sizeof(part), "vxlan(%u)", y->id[0]);
            break;
        case SYN_ENC_GENEVE:
            snprintf(part, sizeof(part), "geneve(%u)", y->id[0]);
            break;
        case SYN_ENC_IPIP:
        case SYN_ENC_IP6IP:
            snprintf(part, sizeof(part), "ipip");
            break;
        default:
            snprintf(part, sizeof(part), "?");
            break;
        }
        size_t pl = strlen(part);
        if (o + pl + 1 >= outlen)
            return o;
        memcpy(out + o, part, pl);
        o += pl;
        out[o++] = '/';
        out[o] = '\0';
    }
    const char *ipv = inner_v6 ? "ipv6" : "ipv4";
    if (o + 5 <= outlen) {
        memcpy(out + o, ipv, 5);
        o += 4;
    }
    return o;
}

/* ---- state ---- */

struct syn_encap {
    struct syn_encap_cfg c;
    uint32_t ipid[SYN_ENCAP_MAX][2]; /* next outer identification per tunnel layer and sender */
    uint32_t seq[SYN_ENCAP_MAX][2];  /* next GRE/ERSPAN sequence number per layer and sender */
    uint64_t seed;
    uint64_t dropped;
    uint8_t *buf;  /* the datagram, built backwards from buf + SYN_ENCAP_HEADROOM */
    uint8_t *frag; /* one fragment and the headers outside it */
};

/* See encap.h. */
struct syn_encap *syn_encap_new(const struct syn_encap_cfg *c, uint64_t seed)
{
    struct syn_encap *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->c = *c;
    if (e->c.n > SYN_ENCAP_MAX)
        e->c.n = SYN_ENCAP_MAX;
    e->seed = seed;
    e->buf = malloc(SYN_ENCAP_BUF);
    e->frag = malloc(SYN_ENCAP_BUF);
    if (!e->buf || !e->frag) {
        syn_encap_free(e);
        return NULL;
    }
    struct syn_rng r;
    syn_rng_seed(&r, seed, 0xe1ca);
    for (size_t i = 0; i < SYN_ENCAP_MAX; i++) {
        for (int d = 0; d < 2; d++)
            e->ipid[i][d] = (uint32_t)syn_rng_next(&r);
        /* A mirror session has been running for a while; a new GRE tunnel starts at 0. */
        e->seq[i][0] = is_mirror(e->c.layer[i].kind) ? (uint32_t)syn_rng_below(&r, 1u << 20) : 0;
        e->seq[i][1] = 0;
    }
    return e;
}

void syn_encap_free(struct syn_encap *e)
{
    if (!e)
        return;
    free(e->buf);
    free(e->frag);
    free(e);
}

/* See encap.h. */
uint64_t syn_encap_dropped(const struct syn_encap *e)
{
    return e->dropped;
}

/* ---- building ---- */

/* The packet under construction: bytes [p, p+len) inside a buffer that starts at base, and
 * what an enclosing header must announce for them. */
struct cur {
    uint8_t *base;
    uint8_t *p;
    size_t len;
    enum carried what;
    uint16_t ethertype; /* CARRY_ETH: the ethertype of the first header; IP: 0x0800/0x86dd */
    bool overflow;      /* a length did not fit its field: the datagram is not written */
};

/* Makes room for n header bytes in front; NULL (and overflow set) when the headroom is used
 * up (not possible for a list of at most SYN_ENCAP_MAX layers).  The 16-bit length fields are
 * checked by the layers that write them. */
static uint8_t *prepend(struct cur *c, size_t n)
{
    if ((size_t)(c->p - c->base) < n) {
        c->overflow = true;
        return NULL;
    }
    c->p -= n;
    c->len += n;
    return c->p;
}

struct ctx {
    struct syn_encap *e;
    const struct syn_link_opts *l;
    bool c2s;
    sc_time ts;
    uint16_t udp_sport; /* VXLAN/Geneve */
};

/* Destination and source MAC: a is the sender client->server, b its peer. */
static void put_macs(uint8_t *h, const uint8_t *a, const uint8_t *b, bool swap)
{
    memcpy(h, swap ? a : b, 6);     /* destination */
    memcpy(h + 6, swap ? b : a, 6); /* source */
}

/* Wraps the content in the mirrored (or bridged) frame's Ethernet header. */
static void wrap_eth(struct cur *c, const struct ctx *x)
{
    uint8_t *h = prepend(c, ETH_HDR_LEN);
    if (!h)
        return;
    put_macs(h, x->l->src_mac, x->l->dst_mac, !x->c2s);
    put_be16(h + 12, c->ethertype);
}

static void set_ip(struct cur *c, bool v6)
{
    c->what = v6 ? CARRY_IP6 : CARRY_IP4;
    c->ethertype = v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4;
}

static void set_chain(struct cur *c, uint16_t ethertype)
{
    c->what = CARRY_ETH;
    c->ethertype = ethertype;
}

/* One 802.1Q (or 802.1ad) tag in front of the content. */
static void push_tag(struct cur *c, uint16_t tpid, uint32_t vid)
{
    uint8_t *h = prepend(c, 4);
    if (!h)
        return;
    put_be16(h, vid & 0x0fffu); /* PCP 0, DEI 0 */
    put_be16(h + 2, c->ethertype);
    set_chain(c, tpid);
}

/* Sender index of a tunnel layer: point-to-point tunnels have one per end. */
static int sender(const struct syn_encap_layer *y, bool c2s)
{
    return is_mirror(y->kind) || c2s ? 0 : 1;
}

/* The outer IP header of tunnel layer i (protocol proto) in front of the content. */
static void push_outer_ip(struct cur *c, struct ctx *x, size_t i, uint8_t proto)
{
    const struct syn_encap_layer *y = &x->e->c.layer[i];
    bool swap = !is_mirror(y->kind) && !x->c2s;
    const struct cap_addr *src = swap ? &y->dst : &y->src;
    const struct cap_addr *dst = swap ? &y->src : &y->dst;
    bool v4 = cap_addr_is_v4(src);
    int s = sender(y, x->c2s);
    if (proto == IPPROTO_UDP_) {
        /* The UDP checksum needs the outer addresses: fill it in now. */
        uint8_t *u = c->p;
        uint64_t sum;
        if (v4)
            sum = csum_add(csum_add(0, src->b + 12, 4), dst->b + 12, 4);
        else
            sum = csum_add(csum_add(0, src->b, 16), dst->b, 16);
        sum += IPPROTO_UDP_ + c->len;
        uint16_t ck = csum_fold(csum_add(sum, u, c->len));
        put_be16(u + 6, ck == 0 ? 0xffffu : ck);
    }
    if (v4) {
        if (c->len + IP4_HDR_LEN > IP_LEN_MAX) {
            c->overflow = true;
            return;
        }
        uint8_t *h = prepend(c, IP4_HDR_LEN);
        if (!h)
            return;
        h[0] = 0x45;
        h[1] = 0;
        put_be16(h + 2, (uint32_t)c->len);
        put_be16(h + 4, x->e->ipid[i][s]++ & 0xffffu);
        put_be16(h + 6, 0); /* DF clear, offset 0 */
        h[8] = OUTER_TTL;
        h[9] = proto;
        put_be16(h + 10, 0);
        memcpy(h + 12, src->b + 12, 4);
        memcpy(h + 16, dst->b + 12, 4);
        put_be16(h + 10, csum_fold(csum_add(0, h, IP4_HDR_LEN)));
        set_ip(c, false);
        return;
    }
    if (c->len > IP_LEN_MAX) {
        c->overflow = true;
        return;
    }
    size_t plen = c->len;
    uint8_t *h = prepend(c, IP6_HDR_LEN);
    if (!h)
        return;
    put_be32(h, 0x60000000u);
    put_be16(h + 4, (uint32_t)plen);
    h[6] = proto;
    h[7] = OUTER_TTL;
    memcpy(h + 8, src->b, 16);
    memcpy(h + 24, dst->b, 16);
    set_ip(c, true);
}

/* A GRE header (RFC 2784/2890) with the given flags and protocol in front of the content. */
static void push_gre(struct cur *c, struct ctx *x, size_t i, uint32_t flags, uint16_t proto)
{
    const struct syn_encap_layer *y = &x->e->c.layer[i];
    size_t hl =
        4u + (flags & GRE_C ? 4u : 0u) + (flags & GRE_K ? 4u : 0u) + (flags & GRE_S ? 4u : 0u);
    uint8_t *h = prepend(c, hl);
    if (!h)
        return;
    put_be16(h, flags); /* version 0 */
    put_be16(h + 2, proto);
    size_t o = 4;
    if (flags & GRE_C) {
        put_be32(h + o, 0); /* checksum and reserved1, the checksum below */
        o += 4;
    }
    if (flags & GRE_K) {
        put_be32(h + o, y->id[0]);
        o += 4;
    }
    if (flags & GRE_S)
        put_be32(h + o, x->e->seq[i][sender(y, x->c2s)]++);
    if (flags & GRE_C)
        put_be16(h + 4, csum_fold(csum_add(0, h, c->len)));
}

/* The VLAN id of the mirrored frame's first tag, if the layer inside i is a tag. */
static bool inner_tag(const struct syn_encap_cfg *cfg, size_t i, uint32_t *vid)
{
    if (i + 1 >= cfg->n)
        return false;
    const struct syn_encap_layer *in = &cfg->layer[i + 1];
    if (in->kind != SYN_ENC_VLAN && in->kind != SYN_ENC_QINQ)
        return false;
    *vid = in->id[0] & 0x0fffu;
    return true;
}

/* A UDP header (checksum filled in with the outer IP header) in front of the content. */
static void push_udp(struct cur *c, const struct ctx *x, uint16_t dport)
{
    if (c->len + UDP_HDR_LEN > IP_LEN_MAX) {
        c->overflow = true;
        return;
    }
    uint8_t *h = prepend(c, UDP_HDR_LEN);
    if (!h)
        return;
    put_be16(h, x->udp_sport);
    put_be16(h + 2, dport);
    put_be16(h + 4, (uint32_t)c->len);
    put_be16(h + 6, 0);
}

/* Applies layer i to the content. */
static void apply(struct cur *c, struct ctx *x, size_t i)
{
    const struct syn_encap_layer *y = &x->e->c.layer[i];
    const struct syn_encap_cfg *cfg = &x->e->c;
    uint8_t *h;
    uint32_t vid = 0;
    switch (y->kind) {
    case SYN_ENC_VLAN:
        push_tag(c, ETHERTYPE_8021Q, y->id[0]);
        return;
    case SYN_ENC_QINQ:
        push_tag(c, ETHERTYPE_8021Q, y->id[1]);
        push_tag(c, ETHERTYPE_8021AD, y->id[0]);
        return;
    case SYN_ENC_MPLS:
        for (size_t k = y->nid; k-- > 0;) {
            uint32_t label = (y->id[k] + (x->c2s ? 0 : 1)) & MPLS_LABEL_MAX;
            h = prepend(c, 4);
            if (!h)
                return;
            /* label (20) | TC (3) = 0 | S (1) on the last entry | TTL (8) */
            put_be32(h, label << 12 | (k + 1 == y->nid ? 1u << 8 : 0) | OUTER_TTL);
        }
        set_chain(c, ETHERTYPE_MPLS);
        return;
    case SYN_ENC_PPPOE: {
        uint16_t ppp = c->what == CARRY_IP6 ? PPP_IPV6 : PPP_IPV4;
        if (c->len + 2 > IP_LEN_MAX) {
            c->overflow = true;
            return;
        }
        h = prepend(c, 8);
        if (!h)
            return;
        h[0] = 0x11; /* version 1, type 1 */
        h[1] = 0x00; /* code: session data */
        put_be16(h + 2, y->id[0]);
        put_be16(h + 4, (uint32_t)(c->len - 6)); /* PPP protocol field and payload */
        put_be16(h + 6, ppp);
        set_chain(c, ETHERTYPE_PPPOE_SESSION);
        return;
    }
    case SYN_ENC_GRE: {
        uint16_t proto = c->ethertype;
        if (c->what == CARRY_ETH) {
            wrap_eth(c, x);
            proto = ETHERTYPE_TEB;
        }
        uint32_t flags = (y->csum ? GRE_C : 0) | (y->key ? GRE_K : 0) | (y->seq ? GRE_S : 0);
        push_gre(c, x, i, flags, proto);
        push_outer_ip(c, x, i, IPPROTO_GRE_);
        return;
    }
    case SYN_ENC_ERSPAN2: {
        bool tagged = inner_tag(cfg, i, &vid);
        wrap_eth(c, x);
        h = prepend(c, 8);
        if (!h)
            return;
        /* Ver 1 | VLAN | COS 0 | En | T 0 | session; reserved | index */
        put_be32(h, 1u << 28 | vid << 16 | (tagged ? 3u : 0u) << 11 | (y->id[0] & 0x3ffu));
        put_be32(h + 4, y->index & 0xfffffu);
        push_gre(c, x, i, GRE_S, ETHERTYPE_ERSPAN2);
        push_outer_ip(c, x, i, IPPROTO_GRE_);
        return;
    }
    case SYN_ENC_ERSPAN3: {
        (void)inner_tag(cfg, i, &vid);
        wrap_eth(c, x);
        uint32_t bso = c->len < 60 ? 1u : c->len > 1514 ? 2u : 0u;
        uint64_t ts = x->ts < 0 ? 0 : (uint64_t)x->ts;
        h = prepend(c, 12);
        if (!h)
            return;
        /* Ver 2 | VLAN | COS 0 | BSO | T 0 | session; timestamp (100 us units);
         * SGT 0 | P 1 | FT 0 | Hw ID 0 | D 0 | Gra 0 | O 0 */
        put_be32(h, 2u << 28 | vid << 16 | bso << 11 | (y->id[0] & 0x3ffu));
        put_be32(h + 4, (uint32_t)(ts / 100000u));
        put_be32(h + 8, 1u << 15);
        push_gre(c, x, i, GRE_S, ETHERTYPE_ERSPAN3);
        push_outer_ip(c, x, i, IPPROTO_GRE_);
        return;
    }
    case SYN_ENC_VXLAN:
    case SYN_ENC_GENEVE:
        wrap_eth(c, x);
        h = prepend(c, 8);
        if (!h)
            return;
        if (y->kind == SYN_ENC_VXLAN) {
            put_be32(h, 0x08000000u); /* flags: I (VNI valid) */
        } else {
            h[0] = 0; /* version 0, no options */
            h[1] = 0; /* O, C, reserved */
            put_be16(h + 2, ETHERTYPE_TEB);
        }
        put_be32(h + 4, (y->id[0] & 0xffffffu) << 8);
        push_udp(c, x, y->kind == SYN_ENC_VXLAN ? UDP_PORT_VXLAN : UDP_PORT_GENEVE);
        push_outer_ip(c, x, i, IPPROTO_UDP_);
        return;
    case SYN_ENC_IPIP:
    case SYN_ENC_IP6IP:
        push_outer_ip(c, x, i, c->what == CARRY_IP6 ? IPPROTO_IPV6_ : IPPROTO_IPIP_);
        return;
    default:
        c->overflow = true;
        return;
    }
}

/* Puts the layers outside the outermost tunnel (0..t-1) and the outer Ethernet header around
 * the content and writes the frame. */
static int finish(struct cur *c, struct ctx *x, size_t t, struct syn_writer *w)
{
    const struct syn_encap_cfg *cfg = &x->e->c;
    for (size_t i = t; i-- > 0 && !c->overflow;)
        apply(c, x, i);
    uint8_t *h = c->overflow ? NULL : prepend(c, ETH_HDR_LEN);
    if (!h) {
        x->e->dropped++;
        return 0;
    }
    if (t < cfg->n)
        put_macs(h, tun_mac_a, tun_mac_b, !is_mirror(cfg->layer[t].kind) && !x->c2s);
    else
        put_macs(h, x->l->src_mac, x->l->dst_mac, !x->c2s);
    put_be16(h + 12, c->ethertype);
    return syn_writer_packet(w, x->ts, c->p, c->len) < 0 ? -1 : 1;
}

/* The VXLAN/Geneve source port: a seeded hash of the inner flow's endpoints, the same in both
 * directions.  Datagrams too short to hold the ports hash what they have. */
static uint16_t flow_port(uint64_t seed, const uint8_t *ip, size_t n)
{
    const uint8_t *a = NULL, *b = NULL, *pa = NULL, *pb = NULL;
    size_t alen = 0, hl = 0;
    uint8_t proto = 0;
    if (n >= IP4_HDR_LEN && ip[0] >> 4 == 4) {
        a = ip + 12;
        b = ip + 16;
        alen = 4;
        hl = (size_t)(ip[0] & 0x0f) * 4;
        proto = ip[9];
    } else if (n >= IP6_HDR_LEN && ip[0] >> 4 == 6) {
        a = ip + 8;
        b = ip + 24;
        alen = 16;
        hl = IP6_HDR_LEN;
        proto = ip[6];
    }
    if (a && (proto == IPPROTO_TCP_ || proto == IPPROTO_UDP_) && n >= hl + 4) {
        pa = ip + hl;
        pb = ip + hl + 2;
    }
    /* Order the two endpoints so that both directions hash alike. */
    uint8_t ea[18] = {0}, eb[18] = {0};
    if (a) {
        memcpy(ea, a, alen);
        memcpy(eb, b, alen);
    }
    if (pa) {
        memcpy(ea + 16, pa, 2);
        memcpy(eb + 16, pb, 2);
    }
    const uint8_t *lo = memcmp(ea, eb, sizeof(ea)) <= 0 ? ea : eb;
    const uint8_t *hi = lo == ea ? eb : ea;
    uint64_t h = seed ^ 0xcbf29ce484222325ull;
    for (size_t k = 0; k < sizeof(ea); k++)
        h = (h ^ lo[k]) * 0x100000001b3ull;
    for (size_t k = 0; k < sizeof(eb); k++)
        h = (h ^ hi[k]) * 0x100000001b3ull;
    h = (h ^ proto) * 0x100000001b3ull;
    uint64_t x = h;
    h = syn_splitmix64(&x);
    return (uint16_t)(UDP_SPORT_MIN + h % (UDP_SPORT_MAX - UDP_SPORT_MIN + 1));
}

/* Fragments the outer datagram in c (built by tunnel layer t) to the MTU and writes every
 * fragment.  Returns the frames written or -1. */
static int fragment(struct cur *c, struct ctx *x, size_t t, struct syn_writer *w)
{
    struct syn_encap *e = x->e;
    bool v4 = c->what == CARRY_IP4;
    size_t hl = v4 ? IP4_HDR_LEN : IP6_HDR_LEN;
    size_t mtu = e->c.outer_mtu;
    size_t chunk = ((mtu - hl - (v4 ? 0 : IP6_FRAG_LEN)) / 8) * 8;
    const uint8_t *hdr = c->p;
    const uint8_t *data = c->p + hl;
    size_t dlen = c->len - hl;
    /* IPv6 fragments carry their own identification (RFC 8200 4.5); IPv4 ones keep the
     * datagram's. */
    const struct syn_encap_layer *y = &e->c.layer[t];
    uint32_t id6 = v4 ? 0 : e->ipid[t][sender(y, x->c2s)]++;
    int frames = 0;
    for (size_t off = 0; off < dlen; off += chunk) {
        size_t fl = dlen - off < chunk ? dlen - off : chunk;
        bool more = off + fl < dlen;
        struct cur f = {e->frag, e->frag + SYN_ENCAP_HEADROOM, 0, c->what, c->ethertype, false};
        uint8_t *p = f.p;
        if (v4) {
            memcpy(p, hdr, IP4_HDR_LEN);
            put_be16(p + 2, (uint32_t)(IP4_HDR_LEN + fl));
            put_be16(p + 6, (more ? 0x2000u : 0) | (uint32_t)(off / 8));
            put_be16(p + 10, 0);
            put_be16(p + 10, csum_fold(csum_add(0, p, IP4_HDR_LEN)));
            memcpy(p + IP4_HDR_LEN, data + off, fl);
            f.len = IP4_HDR_LEN + fl;
        } else {
            memcpy(p, hdr, IP6_HDR_LEN);
            put_be16(p + 4, (uint32_t)(IP6_FRAG_LEN + fl));
            p[6] = IPPROTO_FRAGMENT_;
            uint8_t *fh = p + IP6_HDR_LEN;
            fh[0] = hdr[6]; /* the original next header */
            fh[1] = 0;
            put_be16(fh + 2, (uint32_t)(off / 8) << 3 | (more ? 1u : 0u));
            put_be32(fh + 4, id6);
            memcpy(fh + IP6_FRAG_LEN, data + off, fl);
            f.len = IP6_HDR_LEN + IP6_FRAG_LEN + fl;
        }
        int r = finish(&f, x, t, w);
        if (r < 0)
            return -1;
        frames += r;
    }
    return frames;
}

/* See encap.h. */
int syn_encap_write(struct syn_encap *e, struct syn_writer *w, const struct syn_link_opts *l,
                    sc_time ts, bool c2s, const uint8_t *ip, size_t n)
{
    if (n > IP_LEN_MAX) {
        e->dropped++;
        return 0;
    }
    struct ctx x = {e, l, c2s, ts, 0};
    x.udp_sport = flow_port(e->seed, ip, n);
    struct cur c = {e->buf, e->buf + SYN_ENCAP_HEADROOM, n, CARRY_IP4, ETHERTYPE_IPV4, false};
    memcpy(c.p, ip, n);
    set_ip(&c, n > 0 && ip[0] >> 4 == 6);
    size_t t = outer_tunnel(&e->c);
    for (size_t i = e->c.n; i-- > t && !c.overflow;)
        apply(&c, &x, i);
    if (c.overflow) {
        e->dropped++;
        return 0;
    }
    if (t < e->c.n && e->c.outer_mtu && c.len > e->c.outer_mtu)
        return fragment(&c, &x, t, w);
    return finish(&c, &x, t, w);
}
