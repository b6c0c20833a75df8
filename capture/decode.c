/* decode.c - link, IPv4/IPv6 and TCP decoding (RFC 791, 8200, 9293, 7323). */
#include "capture/decode.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "common/wire.h"

#define ETH_HDR_LEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define ETHERTYPE_QINQ_OLD 0x9100
#define ETH_MAX_LEN_FIELD 1500 /* type values up to this are 802.3 lengths */

#define IPPROTO_TCP_ 6
#define IP6_HOPOPTS 0
#define IP6_ROUTING 43
#define IP6_FRAGMENT 44
#define IP6_ESP 50
#define IP6_AH 51
#define IP6_NONE 59
#define IP6_DSTOPTS 60
#define IP6_MOBILITY 135
#define IP6_HIP 139
#define IP6_SHIM6 140

/* BSD loopback address-family values for IPv6 differ per OS. */
#define BSD_AF_INET 2
#define BSD_AF_INET6_LINUX 10
#define BSD_AF_INET6_NETBSD 24
#define BSD_AF_INET6_FREEBSD 28
#define BSD_AF_INET6_DARWIN 30

static const char *const cap__status_names[CAP_ST__COUNT] = {
    "tcp", "link_unsupported", "not_ip", "not_tcp", "ip_fragment", "malformed",
};

const char *cap_status_name(enum cap_status st)
{
    return (unsigned)st < CAP_ST__COUNT ? cap__status_names[st] : "unknown";
}

bool cap_addr_is_v4(const struct cap_addr *a)
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a->b, prefix, sizeof(prefix)) == 0;
}

void cap_endpoint_str(char *out, size_t outlen, const struct cap_addr *a, uint16_t port)
{
    char ip[INET6_ADDRSTRLEN];
    if (cap_addr_is_v4(a)) {
        inet_ntop(AF_INET, a->b + 12, ip, sizeof(ip));
        snprintf(out, outlen, "%s:%u", ip, port);
    } else {
        inet_ntop(AF_INET6, a->b, ip, sizeof(ip));
        snprintf(out, outlen, "[%s]:%u", ip, port);
    }
}

static void cap__set_v4(struct cap_addr *a, const uint8_t *p)
{
    memset(a->b, 0, 10);
    a->b[10] = 0xff;
    a->b[11] = 0xff;
    memcpy(a->b + 12, p, 4);
}

static void cap__tcp_options(struct cap_tcpopts *o, const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t kind = p[i];
        if (kind == 0) /* end of option list */
            return;
        if (kind == 1) { /* no-operation */
            i++;
            continue;
        }
        if (i + 1 >= len || p[i + 1] < 2 || i + p[i + 1] > len) {
            o->malformed = true;
            return;
        }
        uint8_t olen = p[i + 1];
        const uint8_t *v = p + i + 2;
        switch (kind) {
        case 2:
            if (olen == 4) {
                o->mss_present = true;
                o->mss = sc_load_be16(v);
            }
            break;
        case 3:
            if (olen == 3) {
                o->wscale_present = true;
                o->wscale = v[0];
            }
            break;
        case 4:
            if (olen == 2)
                o->sack_perm = true;
            break;
        case 8:
            if (olen == 10) {
                o->ts_present = true;
                o->tsval = sc_load_be32(v);
                o->tsecr = sc_load_be32(v + 4);
            }
            break;
        default:
            break;
        }
        i += olen;
    }
}

/* Decodes TCP in [p, p+caplen); `wire` is the transport length the IP header
 * claims (0 when it claims nothing usable). */
static enum cap_status cap__tcp(struct cap_packet *pkt, const uint8_t *p, size_t caplen,
                                size_t wire)
{
    struct sc_wire w = sc_wire_init(p, caplen);
    pkt->sport = sc_wire_u16(&w);
    pkt->dport = sc_wire_u16(&w);
    pkt->seq = sc_wire_u32(&w);
    pkt->ack = sc_wire_u32(&w);
    uint8_t off = sc_wire_u8(&w);
    pkt->flags = sc_wire_u8(&w) & 0x3f;
    pkt->window = sc_wire_u16(&w);
    if (!sc_wire_ok(&w))
        return pkt->status = CAP_ST_MALFORMED;
    size_t hlen = (size_t)(off >> 4) * 4;
    if (hlen < 20 || hlen > caplen)
        return pkt->status = CAP_ST_MALFORMED;
    if (hlen > 20)
        cap__tcp_options(&pkt->opts, p + 20, hlen - 20);
    size_t have = caplen - hlen;
    size_t onwire = wire >= hlen ? wire - hlen : 0;
    if (wire == 0 || wire < hlen)
        onwire = have; /* no usable length (e.g. TSO capture with IP length 0) */
    if (have > onwire)
        have = onwire; /* link-layer padding after the IP datagram */
    pkt->payload = p + hlen;
    pkt->payload_len = (uint32_t)have;
    pkt->payload_wire = (uint32_t)(onwire > UINT32_MAX ? UINT32_MAX : onwire);
    return pkt->status = CAP_ST_TCP;
}

static enum cap_status cap__ipv4(struct cap_packet *pkt, const uint8_t *p, size_t len)
{
    struct sc_wire w = sc_wire_init(p, len);
    uint8_t vihl = sc_wire_u8(&w);
    sc_wire_skip(&w, 1);
    uint16_t total = sc_wire_u16(&w);
    uint16_t id = sc_wire_u16(&w);
    uint16_t frag = sc_wire_u16(&w);
    uint8_t ttl = sc_wire_u8(&w);
    uint8_t proto = sc_wire_u8(&w);
    sc_wire_skip(&w, 2);
    uint8_t src[4], dst[4];
    sc_wire_bytes(&w, src, 4);
    sc_wire_bytes(&w, dst, 4);
    if (!sc_wire_ok(&w) || (vihl >> 4) != 4)
        return pkt->status = CAP_ST_MALFORMED;
    size_t ihl = (size_t)(vihl & 15) * 4;
    if (ihl < 20 || ihl > len)
        return pkt->status = CAP_ST_MALFORMED;
    pkt->ipver = 4;
    pkt->ttl = ttl;
    pkt->ipid = id;
    cap__set_v4(&pkt->src, src);
    cap__set_v4(&pkt->dst, dst);
    /* total == 0 is what TCP segmentation offload leaves in host captures. */
    size_t end = len;
    size_t wire = 0;
    if (total != 0) {
        if (total < ihl)
            return pkt->status = CAP_ST_MALFORMED;
        wire = total - ihl;
        if (total < end)
            end = total;
    }
    if ((frag & 0x1fff) != 0)
        return pkt->status = CAP_ST_FRAGMENT;
    if (frag & 0x2000) {
        pkt->frag_first = true;
        wire = 0; /* the datagram's real length is unknown until reassembly */
    }
    if (proto != IPPROTO_TCP_)
        return pkt->status = CAP_ST_NOT_TCP;
    return cap__tcp(pkt, p + ihl, end - ihl, wire);
}

static enum cap_status cap__ipv6(struct cap_packet *pkt, const uint8_t *p, size_t len)
{
    struct sc_wire w = sc_wire_init(p, len);
    uint32_t vtcfl = sc_wire_u32(&w);
    uint16_t plen = sc_wire_u16(&w);
    uint8_t next = sc_wire_u8(&w);
    uint8_t hlim = sc_wire_u8(&w);
    sc_wire_bytes(&w, pkt->src.b, 16);
    sc_wire_bytes(&w, pkt->dst.b, 16);
    if (!sc_wire_ok(&w) || (vtcfl >> 28) != 6)
        return pkt->status = CAP_ST_MALFORMED;
    pkt->ipver = 6;
    pkt->ttl = hlim;
    pkt->ipid = vtcfl & 0xfffff;
    size_t end = len;
    size_t wire = 0; /* plen 0: jumbogram (RFC 2675) or TSO; trust the capture */
    if (plen != 0) {
        if ((size_t)plen + 40 < end)
            end = (size_t)plen + 40;
        wire = plen;
    }
    size_t off = 40;
    for (int i = 0; i < CAP_MAX_IPV6_EXT; i++) {
        size_t hlen;
        switch (next) {
        case IPPROTO_TCP_:
            return cap__tcp(pkt, p + off, end - off,
                            wire ? (wire >= off - 40 ? wire - (off - 40) : 0) : 0);
        case IP6_HOPOPTS:
        case IP6_ROUTING:
        case IP6_DSTOPTS:
        case IP6_MOBILITY:
        case IP6_HIP:
        case IP6_SHIM6:
            if (off + 2 > end)
                return pkt->status = CAP_ST_MALFORMED;
            hlen = ((size_t)p[off + 1] + 1) * 8;
            break;
        case IP6_AH:
            if (off + 2 > end)
                return pkt->status = CAP_ST_MALFORMED;
            hlen = ((size_t)p[off + 1] + 2) * 4;
            break;
        case IP6_FRAGMENT: {
            if (off + 8 > end)
                return pkt->status = CAP_ST_MALFORMED;
            uint16_t fo = sc_load_be16(p + off + 2);
            pkt->ipid = sc_load_be32(p + off + 4);
            if ((fo & 0xfff8) != 0)
                return pkt->status = CAP_ST_FRAGMENT;
            if (fo & 1) {
                pkt->frag_first = true;
                wire = 0;
            }
            hlen = 8;
            break;
        }
        default: /* ESP, no next header, or another transport */
            return pkt->status = CAP_ST_NOT_TCP;
        }
        if (off + hlen > end)
            return pkt->status = CAP_ST_MALFORMED;
        next = p[off];
        off += hlen;
    }
    return pkt->status = CAP_ST_MALFORMED;
}

static enum cap_status cap__ethertype(struct cap_packet *pkt, uint16_t type, const uint8_t *p,
                                      size_t len)
{
    for (;;) {
        switch (type) {
        case ETHERTYPE_IPV4:
            return cap__ipv4(pkt, p, len);
        case ETHERTYPE_IPV6:
            return cap__ipv6(pkt, p, len);
        case ETHERTYPE_VLAN:
        case ETHERTYPE_QINQ:
        case ETHERTYPE_QINQ_OLD:
            if (len < 4 || pkt->nvlan >= CAP_MAX_VLAN_TAGS)
                return pkt->status = CAP_ST_MALFORMED;
            pkt->vlan[pkt->nvlan++] = sc_load_be16(p) & 0x0fff;
            type = sc_load_be16(p + 2);
            p += 4;
            len -= 4;
            continue;
        default:
            return pkt->status = CAP_ST_NOT_IP;
        }
    }
}

static enum cap_status cap__ethernet(struct cap_packet *pkt, const uint8_t *p, size_t len)
{
    if (len < ETH_HDR_LEN)
        return pkt->status = CAP_ST_MALFORMED;
    pkt->has_mac = true;
    memcpy(pkt->mac_dst, p, 6);
    memcpy(pkt->mac_src, p + 6, 6);
    uint16_t type = sc_load_be16(p + 12);
    p += ETH_HDR_LEN;
    len -= ETH_HDR_LEN;
    if (type <= ETH_MAX_LEN_FIELD) {
        /* 802.3 with LLC; only SNAP (AA AA 03, OUI 0) can carry IP. */
        if (len < 8 || p[0] != 0xaa || p[1] != 0xaa || p[2] != 0x03 || p[3] || p[4] || p[5])
            return pkt->status = CAP_ST_NOT_IP;
        type = sc_load_be16(p + 6);
        p += 8;
        len -= 8;
    }
    return cap__ethertype(pkt, type, p, len);
}

static enum cap_status cap__bsd_null(struct cap_packet *pkt, const uint8_t *p, size_t len,
                                     bool network_order)
{
    if (len < 4)
        return pkt->status = CAP_ST_MALFORMED;
    uint32_t af = network_order ? sc_load_be32(p) : sc_load_le32(p);
    if (!network_order && (af & 0xffff0000u))
        af = sc_load_be32(p); /* written on a big-endian host */
    switch (af) {
    case BSD_AF_INET:
        return cap__ipv4(pkt, p + 4, len - 4);
    case BSD_AF_INET6_LINUX:
    case BSD_AF_INET6_NETBSD:
    case BSD_AF_INET6_FREEBSD:
    case BSD_AF_INET6_DARWIN:
        return cap__ipv6(pkt, p + 4, len - 4);
    default:
        return pkt->status = CAP_ST_NOT_IP;
    }
}

static enum cap_status cap__raw(struct cap_packet *pkt, const uint8_t *p, size_t len)
{
    if (len < 1)
        return pkt->status = CAP_ST_MALFORMED;
    switch (p[0] >> 4) {
    case 4:
        return cap__ipv4(pkt, p, len);
    case 6:
        return cap__ipv6(pkt, p, len);
    default:
        return pkt->status = CAP_ST_NOT_IP;
    }
}

enum cap_status cap_decode(struct cap_packet *pkt, uint32_t linktype, const uint8_t *data,
                           uint32_t caplen)
{
    pkt->status = CAP_ST_MALFORMED;
    pkt->ipver = 0;
    pkt->ttl = 0;
    pkt->nvlan = 0;
    pkt->has_mac = false;
    pkt->frag_first = false;
    pkt->ipid = 0;
    pkt->sport = pkt->dport = 0;
    pkt->flags = 0;
    pkt->payload = NULL;
    pkt->payload_len = 0;
    pkt->payload_wire = 0;
    memset(&pkt->opts, 0, sizeof(pkt->opts));
    size_t len = caplen;
    switch (linktype) {
    case CAP_LINKTYPE_ETHERNET:
        return cap__ethernet(pkt, data, len);
    case CAP_LINKTYPE_NULL:
        return cap__bsd_null(pkt, data, len, false);
    case CAP_LINKTYPE_LOOP:
        return cap__bsd_null(pkt, data, len, true);
    case CAP_LINKTYPE_RAW:
    case CAP_LINKTYPE_RAW_DLT:
    case CAP_LINKTYPE_RAW_OPENBSD:
        return cap__raw(pkt, data, len);
    case CAP_LINKTYPE_IPV4:
        return cap__ipv4(pkt, data, len);
    case CAP_LINKTYPE_IPV6:
        return cap__ipv6(pkt, data, len);
    case CAP_LINKTYPE_LINUX_SLL:
        /* packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2) */
        if (len < 16)
            return pkt->status = CAP_ST_MALFORMED;
        return cap__ethertype(pkt, sc_load_be16(data + 14), data + 16, len - 16);
    case CAP_LINKTYPE_LINUX_SLL2:
        /* protocol(2) reserved(2) ifindex(4) ARPHRD(2) type(1) addr len(1) addr(8) */
        if (len < 20)
            return pkt->status = CAP_ST_MALFORMED;
        return cap__ethertype(pkt, sc_load_be16(data), data + 20, len - 20);
    default:
        return pkt->status = CAP_ST_LINK_UNSUPPORTED;
    }
}

bool cap_addr_parse(struct cap_addr *a, const char *s)
{
    uint8_t v4[4];
    memset(a, 0, sizeof(*a));
    if (inet_pton(AF_INET, s, v4) == 1) {
        a->b[10] = 0xff;
        a->b[11] = 0xff;
        memcpy(a->b + 12, v4, 4);
        return true;
    }
    return inet_pton(AF_INET6, s, a->b) == 1;
}
