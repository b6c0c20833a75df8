/* decode.c - link, tunnel, IPv4/IPv6 and TCP decoding (RFC 791, 8200, 9293,
 * 7323; tunnels and tags as listed in decode.h). */
#include "capture/decode.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "common/str.h"
#include "common/wire.h"

#define ETH_HDR_LEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define ETHERTYPE_QINQ_OLD 0x9100
#define ETHERTYPE_MPLS 0x8847
#define ETHERTYPE_MPLS_MC 0x8848
#define ETHERTYPE_PPPOE_SESS 0x8864
#define ETHERTYPE_TEB 0x6558     /* transparent Ethernet bridging (GRE, Geneve) */
#define ETHERTYPE_ERSPAN2 0x88be /* type II (type I without the sequence bit) */
#define ETHERTYPE_ERSPAN3 0x22eb
#define ETHERTYPE_PPP 0x880b   /* GRE version 1 (PPTP) */
#define ETH_MAX_LEN_FIELD 1500 /* type values up to this are 802.3 lengths */

#define PPP_IPV4 0x0021
#define PPP_IPV6 0x0057

#define IPPROTO_IPIP_ 4
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_IPV6_ 41
#define IPPROTO_GRE_ 47
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
    "tcp", "link_unsupported", "not_ip", "not_tcp", "ip_fragment", "malformed", "encap_unsupported",
};

static const char *const cap__encap_names[CAP_ENC__COUNT] = {
    "vlan",   "mpls",    "pppoe", "gre",    "pptp", "erspan1",
    "erspan", "erspan3", "vxlan", "geneve", "ipip",
};

const char *cap_encap_name(enum cap_encap_kind k)
{
    return (unsigned)k < CAP_ENC__COUNT ? cap__encap_names[k] : "unknown";
}

void cap_decode_opts_defaults(struct cap_decode_opts *o)
{
    o->vxlan_port = CAP_VXLAN_PORT;
    o->geneve_port = CAP_GENEVE_PORT;
    o->vlan_in_ctx = true;
    o->tunnel_in_ctx = true;
}

void cap_encap_str(char *out, size_t outlen, const struct cap_encap *e, size_t n, uint8_t ipver)
{
    /* Built without printf (once per session record): "gre/vxlan(42)/ipv4". */
    char s[CAP_MAX_ENCAP * 32 + 8], *p = s;
    for (size_t i = 0; i < n && i < CAP_MAX_ENCAP; i++) {
        const char *name = cap_encap_name(e[i].kind);
        size_t k = strlen(name);
        memcpy(p, name, k);
        p += k;
        if (e[i].has_id) {
            *p++ = '(';
            p = sc_put_u64(p, e[i].id);
            *p++ = ')';
        }
        *p++ = '/';
    }
    sc_strlcpy(p, 5, ipver == 6 ? "ipv6" : ipver == 4 ? "ipv4" : "ip");
    sc_strlcpy(out, outlen, s);
}

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
    /* "[" IPv6 "]:" port, built without printf (two per session record);
     * IPv4 the way inet_ntop writes it. */
    char s[1 + INET6_ADDRSTRLEN + 2 + 5 + 1], *p = s;
    if (cap_addr_is_v4(a)) {
        for (int i = 0; i < 4; i++) {
            if (i)
                *p++ = '.';
            p = sc_put_u64(p, a->b[12 + i]);
        }
    } else {
        *p++ = '[';
        if (!inet_ntop(AF_INET6, a->b, p, INET6_ADDRSTRLEN))
            *p = '\0';
        p += strlen(p);
        *p++ = ']';
    }
    *p++ = ':';
    p = sc_put_u64(p, port);
    *p = '\0';
    sc_strlcpy(out, outlen, s);
}

static void cap__set_v4(struct cap_addr *a, const uint8_t *p)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memcpy(a->b, mapped, 12);
    memcpy(a->b + 12, p, 4);
}

static void cap__tcp_options(struct cap_tcpopts *o, const uint8_t *p, size_t len)
{
    /* Most segments of an established connection carry exactly NOP, NOP,
     * timestamps (RFC 7323 appendix A's layout): read that without the walk. */
    if (len == 12 && sc_load_be32(p) == 0x0101080au) {
        o->ts_present = true;
        o->tsval = sc_load_be32(p + 4);
        o->tsecr = sc_load_be32(p + 8);
        return;
    }
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
    /* One length check for the fixed header, then plain loads: this runs
     * for every packet. */
    if (caplen < 20)
        return pkt->status = CAP_ST_MALFORMED;
    pkt->sport = sc_load_be16(p);
    pkt->dport = sc_load_be16(p + 2);
    pkt->seq = sc_load_be32(p + 4);
    pkt->ack = sc_load_be32(p + 8);
    uint8_t off = p[12];
    pkt->flags = p[13] & 0x3f;
    pkt->window = sc_load_be16(p + 14);
    size_t hlen = (size_t)(off >> 4) * 4;
    if (hlen < 20)
        return pkt->status = CAP_ST_MALFORMED;
    if (hlen > caplen) {
        /* The snap length cut the options (tcpdump -s 64 with timestamps on):
         * the fixed header is whole and the IP length says the segment goes on,
         * so flags, sequence numbers and the payload's length still count and
         * the whole payload is missing (a snaplen gap).  The options that were
         * captured are read; one cut in the middle is not malformed. */
        if (caplen < 20 || wire < hlen)
            return pkt->status = CAP_ST_MALFORMED;
        cap__tcp_options(&pkt->opts, p + 20, caplen - 20);
        pkt->opts.malformed = false;
        pkt->payload = p + caplen;
        pkt->payload_len = 0;
        pkt->payload_wire = (uint32_t)(wire - hlen > UINT32_MAX ? UINT32_MAX : wire - hlen);
        return pkt->status = CAP_ST_TCP;
    }
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

/* ---- the decoding chain ---- */

/* One decode: the packet and the options (no state survives it). */
struct cap__dc {
    struct cap_packet *pkt;
    const struct cap_decode_opts *o;
};

static enum cap_status cap__ipv4(struct cap__dc *dc, const uint8_t *p, size_t len);
static enum cap_status cap__ipv6(struct cap__dc *dc, const uint8_t *p, size_t len);
static enum cap_status cap__ethernet(struct cap__dc *dc, const uint8_t *p, size_t len);
static enum cap_status cap__ethertype(struct cap__dc *dc, uint16_t type, const uint8_t *p,
                                      size_t len);

static enum cap_status cap__unsupported(struct cap_packet *pkt, const char *what)
{
    pkt->unsupported = what;
    return pkt->status = CAP_ST_ENCAP_UNSUPPORTED;
}

static uint64_t cap__mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    return h ? h : 1;
}

static uint64_t cap__addr_hash(const struct cap_addr *a)
{
    uint64_t w0, w1;
    memcpy(&w0, a->b, 8);
    memcpy(&w1, a->b + 8, 8);
    return cap__mix(cap__mix(0x5bd1e995u, w0), w1);
}

/* Records a layer; false (and status set) when there is no room. */
static bool cap__push(struct cap__dc *dc, enum cap_encap_kind k, bool has_id, uint32_t id)
{
    struct cap_packet *pkt = dc->pkt;
    if (pkt->nencap >= CAP_MAX_ENCAP) {
        cap__unsupported(pkt, "too-many-layers");
        return false;
    }
    pkt->encap[pkt->nencap].kind = (uint8_t)k;
    pkt->encap[pkt->nencap].has_id = has_id;
    pkt->encap[pkt->nencap].id = has_id ? id : 0;
    pkt->nencap++;
    return true;
}

/* Records a tunnel layer entered from the current IP header (whose
 * addresses are the tunnel's endpoints) and folds it into the context:
 * kind, the id when it names an observation (`ctx_id`), and the endpoints in
 * either order.  False (status set) past the depth limit. */
static bool cap__tunnel(struct cap__dc *dc, enum cap_encap_kind k, bool has_id, uint32_t id,
                        bool ctx_id)
{
    struct cap_packet *pkt = dc->pkt;
    if (pkt->depth >= CAP_MAX_TUNNEL_DEPTH) {
        cap__unsupported(pkt, "too-many-tunnels");
        return false;
    }
    if (!cap__push(dc, k, has_id, id))
        return false;
    pkt->depth++;
    if (dc->o->tunnel_in_ctx) {
        uint64_t a = cap__addr_hash(&pkt->src), b = cap__addr_hash(&pkt->dst);
        uint64_t h = cap__mix(pkt->ctx, 0x7400u + (uint64_t)k);
        h = cap__mix(h, a < b ? a : b);
        h = cap__mix(h, a < b ? b : a);
        if (ctx_id && has_id)
            h = cap__mix(h, id);
        pkt->ctx = h;
    }
    return true;
}

/* Decodes TCP in [p, p+caplen); `wire` is the transport length the IP header
 * claims (0 when it claims nothing usable). */
static enum cap_status cap__tcp_at(struct cap__dc *dc, const uint8_t *p, size_t caplen, size_t wire)
{
    return cap__tcp(dc->pkt, p, caplen, wire);
}

/* VXLAN (RFC 7348): flags with I set, VNI, then an Ethernet frame. */
static enum cap_status cap__vxlan(struct cap__dc *dc, const uint8_t *p, size_t len)
{
    if (len < 8)
        return dc->pkt->status = CAP_ST_MALFORMED;
    if (!(p[0] & 0x08))
        return cap__unsupported(dc->pkt, "vxlan-no-vni");
    uint32_t vni = (uint32_t)p[4] << 16 | (uint32_t)p[5] << 8 | p[6];
    if (!cap__tunnel(dc, CAP_ENC_VXLAN, true, vni, true))
        return dc->pkt->status;
    return cap__ethernet(dc, p + 8, len - 8);
}

/* Geneve (RFC 8926): version 0, options, protocol, VNI. */
static enum cap_status cap__geneve(struct cap__dc *dc, const uint8_t *p, size_t len)
{
    if (len < 8)
        return dc->pkt->status = CAP_ST_MALFORMED;
    if (p[0] >> 6)
        return cap__unsupported(dc->pkt, "geneve-version");
    size_t hlen = 8 + (size_t)(p[0] & 0x3f) * 4;
    if (hlen > len)
        return dc->pkt->status = CAP_ST_MALFORMED;
    uint16_t proto = sc_load_be16(p + 2);
    uint32_t vni = (uint32_t)p[4] << 16 | (uint32_t)p[5] << 8 | p[6];
    if (proto != ETHERTYPE_TEB && proto != ETHERTYPE_IPV4 && proto != ETHERTYPE_IPV6)
        return cap__unsupported(dc->pkt, "geneve-protocol");
    if (!cap__tunnel(dc, CAP_ENC_GENEVE, true, vni, true))
        return dc->pkt->status;
    if (proto == ETHERTYPE_TEB)
        return cap__ethernet(dc, p + hlen, len - hlen);
    return cap__ethertype(dc, proto, p + hlen, len - hlen);
}

static enum cap_status cap__udp(struct cap__dc *dc, const uint8_t *p, size_t len)
{
    if (len < 8)
        return dc->pkt->status = CAP_ST_MALFORMED;
    uint16_t sport = sc_load_be16(p), dport = sc_load_be16(p + 2), ulen = sc_load_be16(p + 4);
    if (ulen >= 8 && ulen < len)
        len = ulen;
    const struct cap_decode_opts *o = dc->o;
    if (o->vxlan_port && (dport == o->vxlan_port || sport == o->vxlan_port))
        return cap__vxlan(dc, p + 8, len - 8);
    if (o->geneve_port && (dport == o->geneve_port || sport == o->geneve_port))
        return cap__geneve(dc, p + 8, len - 8);
    return dc->pkt->status = CAP_ST_NOT_TCP;
}

/* PPP (RFC 1661) as PPTP carries it: optional address/control, a protocol
 * field that may be compressed to one byte. */
static enum cap_status cap__ppp(struct cap__dc *dc, const uint8_t *p, size_t len)
{
    if (len >= 2 && p[0] == 0xff && p[1] == 0x03) {
        p += 2;
        len -= 2;
    }
    if (len < 1)
        return dc->pkt->status = CAP_ST_MALFORMED;
    uint16_t proto;
    if (p[0] & 1) {
        proto = p[0];
        p++;
        len--;
    } else {
        if (len < 2)
            return dc->pkt->status = CAP_ST_MALFORMED;
        proto = sc_load_be16(p);
        p += 2;
        len -= 2;
    }
    if (proto == PPP_IPV4)
        return cap__ipv4(dc, p, len);
    if (proto == PPP_IPV6)
        return cap__ipv6(dc, p, len);
    return cap__unsupported(dc->pkt, "ppp-protocol"); /* e.g. MPPE-encrypted PPTP */
}

/* ERSPAN type II (version 1) or III (version 2) header, then the mirrored
 * frame. */
static enum cap_status cap__erspan(struct cap__dc *dc, const uint8_t *p, size_t len, int type)
{
    struct cap_packet *pkt = dc->pkt;
    size_t hlen = type == 2 ? 8 : 12;
    if (len < hlen)
        return pkt->status = CAP_ST_MALFORMED;
    unsigned ver = p[0] >> 4;
    if ((type == 2 && ver != 1) || (type == 3 && ver != 2))
        return cap__unsupported(pkt, "erspan-version");
    uint32_t session = sc_load_be16(p + 2) & 0x3ff;
    bool ip_frame = false;
    if (type == 3) {
        unsigned ft = (p[10] >> 2) & 0x1f;
        if (p[11] & 1) /* O: an 8-byte platform-specific subheader follows */
            hlen += 8;
        if (hlen > len)
            return pkt->status = CAP_ST_MALFORMED;
        if (ft == 2)
            ip_frame = true;
        else if (ft != 0)
            return cap__unsupported(pkt, "erspan-frame-type");
    }
    if (!cap__tunnel(dc, type == 2 ? CAP_ENC_ERSPAN2 : CAP_ENC_ERSPAN3, true, session, true))
        return pkt->status;
    if (ip_frame) {
        if (len - hlen < 1)
            return pkt->status = CAP_ST_MALFORMED;
        return (p[hlen] >> 4) == 6 ? cap__ipv6(dc, p + hlen, len - hlen)
                                   : cap__ipv4(dc, p + hlen, len - hlen);
    }
    return cap__ethernet(dc, p + hlen, len - hlen);
}

/* GRE (RFC 2784, key and sequence RFC 2890; version 1 is PPTP, RFC 2637). */
static enum cap_status cap__gre(struct cap__dc *dc, const uint8_t *p, size_t len)
{
    struct cap_packet *pkt = dc->pkt;
    if (len < 4)
        return pkt->status = CAP_ST_MALFORMED;
    uint16_t flags = sc_load_be16(p);
    uint16_t proto = sc_load_be16(p + 2);
    unsigned ver = flags & 7;
    bool csum = flags & 0x8000, routing = flags & 0x4000, key = flags & 0x2000,
         seq = flags & 0x1000, ack = flags & 0x0080;
    if (routing)
        return cap__unsupported(pkt, "gre-routing");
    size_t off = 4;
    uint32_t keyv = 0;
    if (ver == 1) {
        /* PPTP: key is payload length + call id, always present. */
        if (!key || proto != ETHERTYPE_PPP)
            return cap__unsupported(pkt, "gre-version");
        if (len < 8)
            return pkt->status = CAP_ST_MALFORMED;
        uint16_t plen = sc_load_be16(p + 4);
        uint32_t call = sc_load_be16(p + 6);
        off = 8 + (seq ? 4u : 0u) + (ack ? 4u : 0u);
        if (off > len)
            return pkt->status = CAP_ST_MALFORMED;
        if (!seq || plen == 0)
            return pkt->status = CAP_ST_NOT_IP; /* an acknowledgment without payload */
        size_t n = len - off < plen ? len - off : plen;
        if (!cap__tunnel(dc, CAP_ENC_PPTP, true, call, false))
            return pkt->status;
        return cap__ppp(dc, p + off, n);
    }
    if (ver != 0)
        return cap__unsupported(pkt, "gre-version");
    if (csum)
        off += 4;
    if (key) {
        if (off + 4 > len)
            return pkt->status = CAP_ST_MALFORMED;
        keyv = sc_load_be32(p + off);
        off += 4;
    }
    if (seq)
        off += 4;
    if (off > len)
        return pkt->status = CAP_ST_MALFORMED;
    p += off;
    len -= off;
    switch (proto) {
    case ETHERTYPE_ERSPAN2:
        if (!seq) { /* type I: no header, the frame follows */
            if (!cap__tunnel(dc, CAP_ENC_ERSPAN1, false, 0, false))
                return pkt->status;
            return cap__ethernet(dc, p, len);
        }
        return cap__erspan(dc, p, len, 2);
    case ETHERTYPE_ERSPAN3:
        return cap__erspan(dc, p, len, 3);
    case ETHERTYPE_TEB:
        if (!cap__tunnel(dc, CAP_ENC_GRE, key, keyv, false))
            return pkt->status;
        return cap__ethernet(dc, p, len);
    case ETHERTYPE_IPV4:
    case ETHERTYPE_IPV6:
    case ETHERTYPE_MPLS:
    case ETHERTYPE_MPLS_MC:
        if (!cap__tunnel(dc, CAP_ENC_GRE, key, keyv, false))
            return pkt->status;
        return cap__ethertype(dc, proto, p, len);
    default:
        return cap__unsupported(pkt, "gre-protocol");
    }
}

/* What an IP header's protocol field leads to: TCP, a tunnel, or nothing we
 * follow.  `wire` is the payload length the header claims (0: unknown). */
static enum cap_status cap__ipproto(struct cap__dc *dc, uint8_t proto, const uint8_t *p, size_t len,
                                    size_t wire)
{
    struct cap_packet *pkt = dc->pkt;
    switch (proto) {
    case IPPROTO_TCP_:
        return cap__tcp_at(dc, p, len, wire);
    case IPPROTO_GRE_:
        return cap__gre(dc, p, len);
    case IPPROTO_UDP_:
        return cap__udp(dc, p, len);
    case IPPROTO_IPIP_:
        if (!cap__tunnel(dc, CAP_ENC_IPIP, false, 0, false))
            return pkt->status;
        return cap__ipv4(dc, p, len);
    case IPPROTO_IPV6_:
        if (!cap__tunnel(dc, CAP_ENC_IPIP, false, 0, false))
            return pkt->status;
        return cap__ipv6(dc, p, len);
    default:
        return pkt->status = CAP_ST_NOT_TCP;
    }
}

/* Describes a fragment in pkt->frag unless an outer one already is. */
static void cap__frag_note(struct cap_packet *pkt, uint8_t ipver, uint8_t proto, uint32_t id,
                           uint32_t off, bool more, const uint8_t *data, size_t len, size_t wire)
{
    if (pkt->frag.present)
        return;
    struct cap_frag *f = &pkt->frag;
    f->present = true;
    f->ipver = ipver;
    f->proto = proto;
    f->id = id;
    f->off = off;
    f->more = more;
    f->data = data;
    f->len = (uint32_t)len;
    f->wire = (uint32_t)(wire > len ? wire : len);
    f->src = pkt->src;
    f->dst = pkt->dst;
    f->nencap = pkt->nencap;
    f->ctx = pkt->ctx;
    f->depth = pkt->depth;
}

static enum cap_status cap__ipv4(struct cap__dc *dc, const uint8_t *p, size_t len)
{
    struct cap_packet *pkt = dc->pkt;
    /* One length check for the fixed header, then plain loads. */
    if (len < 20 || (p[0] >> 4) != 4)
        return pkt->status = CAP_ST_MALFORMED;
    uint8_t vihl = p[0];
    uint16_t total = sc_load_be16(p + 2);
    uint16_t id = sc_load_be16(p + 4);
    uint16_t frag = sc_load_be16(p + 6);
    uint8_t ttl = p[8];
    uint8_t proto = p[9];
    const uint8_t *src = p + 12, *dst = p + 16;
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
    uint32_t foff = (uint32_t)(frag & 0x1fff) * 8;
    bool more = frag & 0x2000;
    if (foff != 0 || more)
        cap__frag_note(pkt, 4, proto, id, foff, more, p + ihl, end - ihl, wire);
    if (foff != 0)
        return pkt->status = CAP_ST_FRAGMENT;
    if (more) {
        pkt->frag_first = true;
        wire = 0; /* the datagram's real length is unknown until reassembly */
    }
    return cap__ipproto(dc, proto, p + ihl, end - ihl, wire);
}

/* Walks the IPv6 extension-header chain from `next` over [p, p+len), the
 * payload after the fixed header; `wire` is the payload length (0: unknown). */
static enum cap_status cap__ip6_chain(struct cap__dc *dc, uint8_t next, const uint8_t *p,
                                      size_t len, size_t wire)
{
    struct cap_packet *pkt = dc->pkt;
    size_t off = 0;
    for (int i = 0; i < CAP_MAX_IPV6_EXT; i++) {
        size_t hlen;
        switch (next) {
        case IPPROTO_TCP_:
        case IPPROTO_GRE_:
        case IPPROTO_UDP_:
        case IPPROTO_IPIP_:
        case IPPROTO_IPV6_:
            return cap__ipproto(dc, next, p + off, len - off,
                                wire ? (wire >= off ? wire - off : 0) : 0);
        case IP6_HOPOPTS:
        case IP6_ROUTING:
        case IP6_DSTOPTS:
        case IP6_MOBILITY:
        case IP6_HIP:
        case IP6_SHIM6:
            if (off + 2 > len)
                return pkt->status = CAP_ST_MALFORMED;
            hlen = ((size_t)p[off + 1] + 1) * 8;
            break;
        case IP6_AH:
            if (off + 2 > len)
                return pkt->status = CAP_ST_MALFORMED;
            hlen = ((size_t)p[off + 1] + 2) * 4;
            break;
        case IP6_FRAGMENT: {
            if (off + 8 > len)
                return pkt->status = CAP_ST_MALFORMED;
            uint16_t fo = sc_load_be16(p + off + 2);
            pkt->ipid = sc_load_be32(p + off + 4);
            uint32_t foff = fo & 0xfff8;
            bool more = fo & 1;
            if (foff != 0 || more)
                cap__frag_note(pkt, 6, p[off], pkt->ipid, foff, more, p + off + 8, len - off - 8,
                               wire >= off + 8 ? wire - off - 8 : 0);
            if (foff != 0)
                return pkt->status = CAP_ST_FRAGMENT;
            if (more) {
                pkt->frag_first = true;
                wire = 0;
            }
            hlen = 8;
            break;
        }
        default: /* ESP, no next header, or another transport */
            return pkt->status = CAP_ST_NOT_TCP;
        }
        if (off + hlen > len)
            return pkt->status = CAP_ST_MALFORMED;
        next = p[off];
        off += hlen;
    }
    return pkt->status = CAP_ST_MALFORMED;
}

static enum cap_status cap__ipv6(struct cap__dc *dc, const uint8_t *p, size_t len)
{
    struct cap_packet *pkt = dc->pkt;
    /* One length check for the fixed header, then plain loads. */
    if (len < 40 || (p[0] >> 4) != 6)
        return pkt->status = CAP_ST_MALFORMED;
    uint32_t vtcfl = sc_load_be32(p);
    uint16_t plen = sc_load_be16(p + 4);
    uint8_t next = p[6];
    uint8_t hlim = p[7];
    memcpy(pkt->src.b, p + 8, 16);
    memcpy(pkt->dst.b, p + 24, 16);
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
    return cap__ip6_chain(dc, next, p + 40, end - 40, wire);
}

/* MPLS (RFC 3032): labels down to the bottom of the stack, then IPv4, IPv6
 * or (after a zero control word) a pseudowire's Ethernet frame. */
static enum cap_status cap__mpls(struct cap__dc *dc, const uint8_t *p, size_t len)
{
    struct cap_packet *pkt = dc->pkt;
    for (int i = 0;; i++) {
        if (i >= CAP_MAX_MPLS_LABELS)
            return cap__unsupported(pkt, "mpls-too-many-labels");
        if (len < 4)
            return pkt->status = CAP_ST_MALFORMED;
        uint32_t e = sc_load_be32(p);
        if (!cap__push(dc, CAP_ENC_MPLS, true, e >> 12))
            return pkt->status;
        p += 4;
        len -= 4;
        if (e & 0x100)
            break; /* bottom of stack */
    }
    if (len < 1)
        return pkt->status = CAP_ST_MALFORMED;
    switch (p[0] >> 4) {
    case 4:
        return cap__ipv4(dc, p, len);
    case 6:
        return cap__ipv6(dc, p, len);
    case 0:
        if (len < 4)
            return pkt->status = CAP_ST_MALFORMED;
        return cap__ethernet(dc, p + 4, len - 4);
    default:
        return cap__unsupported(pkt, "mpls-payload");
    }
}

/* PPPoE session stage (RFC 2516): version/type 0x11, code 0, session id,
 * length, then PPP's protocol field. */
static enum cap_status cap__pppoe(struct cap__dc *dc, const uint8_t *p, size_t len)
{
    struct cap_packet *pkt = dc->pkt;
    if (len < 8)
        return pkt->status = CAP_ST_MALFORMED;
    if (p[0] != 0x11 || p[1] != 0)
        return cap__unsupported(pkt, "pppoe-version");
    uint16_t session = sc_load_be16(p + 2);
    size_t plen = sc_load_be16(p + 4);
    uint16_t proto = sc_load_be16(p + 6);
    if (plen < 2)
        return pkt->status = CAP_ST_MALFORMED;
    if (plen - 2 < len - 8)
        len = plen - 2 + 8;
    if (!cap__push(dc, CAP_ENC_PPPOE, true, session))
        return pkt->status;
    if (dc->o->tunnel_in_ctx)
        pkt->ctx = cap__mix(cap__mix(pkt->ctx, 0x7400u + CAP_ENC_PPPOE), session);
    if (proto == PPP_IPV4)
        return cap__ipv4(dc, p + 8, len - 8);
    if (proto == PPP_IPV6)
        return cap__ipv6(dc, p + 8, len - 8);
    return pkt->status = CAP_ST_NOT_IP; /* LCP, IPCP, ... */
}

static enum cap_status cap__ethertype(struct cap__dc *dc, uint16_t type, const uint8_t *p,
                                      size_t len)
{
    struct cap_packet *pkt = dc->pkt;
    for (;;) {
        switch (type) {
        case ETHERTYPE_IPV4:
            return cap__ipv4(dc, p, len);
        case ETHERTYPE_IPV6:
            return cap__ipv6(dc, p, len);
        case ETHERTYPE_VLAN:
        case ETHERTYPE_QINQ:
        case ETHERTYPE_QINQ_OLD: {
            if (len < 4 || pkt->nvlan >= CAP_MAX_VLAN_TAGS)
                return pkt->status = CAP_ST_MALFORMED;
            uint16_t vid = sc_load_be16(p) & 0x0fff;
            pkt->vlan[pkt->nvlan++] = vid;
            if (!cap__push(dc, CAP_ENC_VLAN, true, vid))
                return pkt->status;
            if (dc->o->vlan_in_ctx)
                pkt->ctx = cap__mix(cap__mix(pkt->ctx, 0x7400u + CAP_ENC_VLAN), vid);
            type = sc_load_be16(p + 2);
            p += 4;
            len -= 4;
            continue;
        }
        case ETHERTYPE_MPLS:
        case ETHERTYPE_MPLS_MC:
            return cap__mpls(dc, p, len);
        case ETHERTYPE_PPPOE_SESS:
            return cap__pppoe(dc, p, len);
        default:
            return pkt->status = CAP_ST_NOT_IP;
        }
    }
}

/* An Ethernet header (the capture's own, or one inside a tunnel): its
 * addresses and tags become the packet's. */
static enum cap_status cap__ethernet(struct cap__dc *dc, const uint8_t *p, size_t len)
{
    struct cap_packet *pkt = dc->pkt;
    if (len < ETH_HDR_LEN)
        return pkt->status = CAP_ST_MALFORMED;
    pkt->has_mac = true;
    pkt->nvlan = 0;
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
    return cap__ethertype(dc, type, p, len);
}

static enum cap_status cap__bsd_null(struct cap__dc *dc, const uint8_t *p, size_t len,
                                     bool network_order)
{
    if (len < 4)
        return dc->pkt->status = CAP_ST_MALFORMED;
    uint32_t af = network_order ? sc_load_be32(p) : sc_load_le32(p);
    if (!network_order && (af & 0xffff0000u))
        af = sc_load_be32(p); /* written on a big-endian host */
    switch (af) {
    case BSD_AF_INET:
        return cap__ipv4(dc, p + 4, len - 4);
    case BSD_AF_INET6_LINUX:
    case BSD_AF_INET6_NETBSD:
    case BSD_AF_INET6_FREEBSD:
    case BSD_AF_INET6_DARWIN:
        return cap__ipv6(dc, p + 4, len - 4);
    default:
        return dc->pkt->status = CAP_ST_NOT_IP;
    }
}

static enum cap_status cap__raw(struct cap__dc *dc, const uint8_t *p, size_t len)
{
    if (len < 1)
        return dc->pkt->status = CAP_ST_MALFORMED;
    switch (p[0] >> 4) {
    case 4:
        return cap__ipv4(dc, p, len);
    case 6:
        return cap__ipv6(dc, p, len);
    default:
        return dc->pkt->status = CAP_ST_NOT_IP;
    }
}

static void cap__reset(struct cap_packet *pkt)
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
    pkt->nencap = 0;
    pkt->depth = 0;
    pkt->ctx = 0;
    pkt->unsupported = NULL;
    pkt->frag.present = false;
    pkt->frag_count = 0;
    pkt->frag_conflict = false;
}

enum cap_status cap_decode_ex(struct cap_packet *pkt, uint32_t linktype, const uint8_t *data,
                              uint32_t caplen, const struct cap_decode_opts *o)
{
    cap__reset(pkt);
    struct cap__dc dc = {pkt, o};
    size_t len = caplen;
    switch (linktype) {
    case CAP_LINKTYPE_ETHERNET:
        return cap__ethernet(&dc, data, len);
    case CAP_LINKTYPE_NULL:
        return cap__bsd_null(&dc, data, len, false);
    case CAP_LINKTYPE_LOOP:
        return cap__bsd_null(&dc, data, len, true);
    case CAP_LINKTYPE_RAW:
    case CAP_LINKTYPE_RAW_DLT:
    case CAP_LINKTYPE_RAW_OPENBSD:
        return cap__raw(&dc, data, len);
    case CAP_LINKTYPE_IPV4:
        return cap__ipv4(&dc, data, len);
    case CAP_LINKTYPE_IPV6:
        return cap__ipv6(&dc, data, len);
    case CAP_LINKTYPE_LINUX_SLL:
        /* packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2) */
        if (len < 16)
            return pkt->status = CAP_ST_MALFORMED;
        return cap__ethertype(&dc, sc_load_be16(data + 14), data + 16, len - 16);
    case CAP_LINKTYPE_LINUX_SLL2:
        /* protocol(2) reserved(2) ifindex(4) ARPHRD(2) type(1) addr len(1) addr(8) */
        if (len < 20)
            return pkt->status = CAP_ST_MALFORMED;
        return cap__ethertype(&dc, sc_load_be16(data), data + 20, len - 20);
    default:
        return pkt->status = CAP_ST_LINK_UNSUPPORTED;
    }
}

enum cap_status cap_decode(struct cap_packet *pkt, uint32_t linktype, const uint8_t *data,
                           uint32_t caplen)
{
    static const struct cap_decode_opts defaults = {CAP_VXLAN_PORT, CAP_GENEVE_PORT, true, true};
    return cap_decode_ex(pkt, linktype, data, caplen, &defaults);
}

enum cap_status cap_decode_payload(struct cap_packet *pkt, const uint8_t *p, size_t len,
                                   const struct cap_decode_opts *o)
{
    struct cap_frag f = pkt->frag;
    /* Back to the state at the fragmented header. */
    pkt->status = CAP_ST_MALFORMED;
    pkt->frag.present = false;
    pkt->frag_first = false;
    pkt->src = f.src;
    pkt->dst = f.dst;
    pkt->ipver = f.ipver;
    pkt->nencap = f.nencap;
    pkt->ctx = f.ctx;
    pkt->depth = f.depth;
    pkt->sport = pkt->dport = 0;
    pkt->flags = 0;
    pkt->payload = NULL;
    pkt->payload_len = 0;
    pkt->payload_wire = 0;
    pkt->unsupported = NULL;
    memset(&pkt->opts, 0, sizeof(pkt->opts));
    struct cap__dc dc = {pkt, o};
    if (f.ipver == 6)
        return cap__ip6_chain(&dc, f.proto, p, len, len);
    return cap__ipproto(&dc, f.proto, p, len, len);
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
