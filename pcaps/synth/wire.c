/* wire.c - the synthesizer's frame builder and pcap/pcapng capture-file writer.
 *
 * Implements: Ethernet II with IEEE 802.1Q and 802.1ad (QinQ) tags; Linux cooked v2
 * (LINKTYPE_LINUX_SLL2, tcpdump.org link-layer header registry); IPv4 (RFC 791); IPv6 (RFC 8200);
 * TCP (RFC 9293) with MSS (RFC 9293 3.7.1, RFC 6691), SACK-permitted (RFC 2018), timestamps and
 * window scale (RFC 7323) laid out as Linux's tcp_options_write() does; UDP (RFC 768, RFC 8200
 * 8.1); the Internet checksum (RFC 1071); pcap (draft-ietf-opsawg-pcap) and pcapng
 * (draft-ietf-opsawg-pcapng).
 *
 * Every field is stored byte by byte: network order in packets, little-endian in capture files
 * (so the output is byte-identical on every host); nothing is cast to a struct.
 *
 * Builder policies the header leaves open:
 *  - IPv4 is used when both addresses are IPv4-mapped; otherwise IPv6 (a mapped address in a
 *    mixed pair is written as it is).
 *  - VLAN tags exist only on Ethernet (nvlan above 2 counts as 2); SLL2 and raw ignore them.
 *  - MSS, SACK-permitted and window scale are SYN-only options and are not written on other
 *    segments; timestamps go on any segment with ts_on.
 *  - The payload is cut so the IPv4 total length / IPv6 payload length (16 bits) still holds the
 *    datagram: at most 65535 - 20 - TCP header bytes over IPv4, 65535 - TCP header over IPv6 (UDP
 *    likewise with its 8-byte header).  The frame therefore stays below SYN_FRAME_MAX.  A NULL
 *    payload is an empty one.
 *  - Ethernet frames are not padded to the 60-byte minimum: that is what a capture on the
 *    sending host shows, and the decoder accepts both.
 */
#include "pcaps/synth/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- limits and constants ---- */

#define ETH_HDR_LEN 14
#define VLAN_TAG_LEN 4
#define SLL2_HDR_LEN 20
#define IP4_HDR_LEN 20
#define IP6_HDR_LEN 40
#define TCP_HDR_LEN 20
#define UDP_HDR_LEN 8
/* Longest option block written: MSS(4) + SACK_PERM/TS(12) + NOP WS(4). */
#define TCP_OPT_MAX 20
/* IPv4 total length and IPv6 payload length are 16-bit fields: a payload is cut so the datagram
 * still fits them (this is below SYN_FRAME_MAX, so the frame buffer cannot overflow either). */
#define IP_LEN_MAX 65535u

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_8021Q 0x8100
#define ETHERTYPE_8021AD 0x88a8
#define ARPHRD_ETHER_ 1

#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WS 3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_TS 8

/* Output buffer of a writer: 1 MiB turns a million small records into about a thousand write()
 * calls.  A record larger than the buffer (only with a snaplen above 1 MiB and a caller-built
 * frame that large) is written straight through. */
#define SYN_WRITER_BUF (1u << 20)

/* libpcap's MAXIMUM_SNAPLEN (and the reader's max_caplen default): the snaplen used when the
 * caller passes 0, which cuts none of the frames the builder makes. */
#define SYN_SNAPLEN_DEFAULT 262144u

#define PCAP_MAGIC_US 0xa1b2c3d4u
#define PCAP_MAGIC_NS 0xa1b23c4du
#define PCAPNG_SHB 0x0a0d0d0au
#define PCAPNG_IDB 0x00000001u
#define PCAPNG_EPB 0x00000006u
#define PCAPNG_BOM 0x1a2b3c4du
#define PCAPNG_OPT_ENDOFOPT 0
#define PCAPNG_OPT_IF_TSRESOL 9

/* ---- byte stores ---- */

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

static void put_le16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ---- checksums (RFC 1071) ---- */

/* Adds [p, p+n) as big-endian 16-bit words to a 64-bit accumulator (an odd last byte is padded
 * with a zero).  64 bits cannot overflow for any frame this file builds. */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 1 < n; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (i < n)
        sum += (uint32_t)p[i] << 8;
    return sum;
}

/* Folds the accumulator to 16 bits and complements it. */
static uint16_t csum_fold(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* ---- link layer ---- */

static bool ip_is_v4(const struct syn_ip *ip)
{
    /* An IPv4 header needs both addresses in IPv4; a mixed pair goes out as IPv6 carrying the
     * IPv4-mapped address as it is. */
    return cap_addr_is_v4(&ip->src) && cap_addr_is_v4(&ip->dst);
}

/* Writes the link header for a datagram of the given ethertype; returns its length. */
static size_t put_link(uint8_t *out, const struct syn_link_opts *l, uint32_t ethertype)
{
    size_t off = 0;
    switch (l->type) {
    case SYN_LINK_ETHERNET: {
        memcpy(out, l->dst_mac, 6);
        memcpy(out + 6, l->src_mac, 6);
        off = 12;
        uint8_t nvlan = l->nvlan > 2 ? 2 : l->nvlan;
        for (uint8_t i = 0; i < nvlan; i++) {
            /* Two tags: 802.1ad service tag outside, 802.1Q customer tag inside. */
            put_be16(out + off, nvlan == 2 && i == 0 ? ETHERTYPE_8021AD : ETHERTYPE_8021Q);
            put_be16(out + off + 2, l->vlan[i] & 0x0fffu); /* PCP 0, DEI 0 */
            off += VLAN_TAG_LEN;
        }
        put_be16(out + off, ethertype);
        return off + 2;
    }
    case SYN_LINK_SLL2:
        put_be16(out, ethertype);
        put_be16(out + 2, 0); /* reserved */
        put_be32(out + 4, l->ifindex);
        put_be16(out + 8, ARPHRD_ETHER_);
        out[10] = l->pkttype;
        out[11] = 6; /* link-layer address length */
        memcpy(out + 12, l->src_mac, 6);
        out[18] = 0;
        out[19] = 0;
        return SLL2_HDR_LEN;
    case SYN_LINK_RAW:
    default:
        return 0;
    }
}

/* ---- IP layer ---- */

/* Largest transport segment (header + payload) an IP header of this family can describe. */
static size_t ip_seg_max(bool v4)
{
    return v4 ? IP_LEN_MAX - IP4_HDR_LEN : IP_LEN_MAX;
}

/* Writes the IP header for a transport segment of seglen bytes; returns its length. */
static size_t put_ip(uint8_t *out, const struct syn_ip *ip, bool v4, uint8_t proto, size_t seglen)
{
    if (v4) {
        out[0] = 0x45; /* version 4, IHL 5 */
        out[1] = 0;    /* DSCP/ECN */
        put_be16(out + 2, (uint32_t)(IP4_HDR_LEN + seglen));
        put_be16(out + 4, ip->ipid);
        put_be16(out + 6, ip->df ? 0x4000u : 0); /* flags, fragment offset 0 */
        out[8] = ip->ttl;
        out[9] = proto;
        put_be16(out + 10, 0);
        memcpy(out + 12, ip->src.b + 12, 4);
        memcpy(out + 16, ip->dst.b + 12, 4);
        put_be16(out + 10, csum_fold(csum_add(0, out, IP4_HDR_LEN)));
        return IP4_HDR_LEN;
    }
    put_be32(out, 0x60000000u | (ip->flowlabel & 0xfffffu)); /* traffic class 0 */
    put_be16(out + 4, (uint32_t)seglen);
    out[6] = proto;
    out[7] = ip->ttl;
    memcpy(out + 8, ip->src.b, 16);
    memcpy(out + 24, ip->dst.b, 16);
    return IP6_HDR_LEN;
}

/* Starts a transport checksum with the pseudo-header (RFC 9293 3.1, RFC 8200 8.1). */
static uint64_t pseudo_sum(const struct syn_ip *ip, bool v4, uint8_t proto, size_t seglen)
{
    uint64_t sum;
    if (v4) {
        sum = csum_add(0, ip->src.b + 12, 4);
        sum = csum_add(sum, ip->dst.b + 12, 4);
    } else {
        sum = csum_add(0, ip->src.b, 16);
        sum = csum_add(sum, ip->dst.b, 16);
    }
    return sum + proto + seglen;
}

/* ---- TCP ---- */

/* Writes the option block the way Linux's tcp_options_write() lays it out; returns its length (a
 * multiple of 4, at most TCP_OPT_MAX).  MSS, SACK-permitted and window scale are SYN-only options
 * (RFC 9293 3.7.1, RFC 2018 2, RFC 7323 2.2) and are left out of other segments. */
static size_t put_tcp_options(uint8_t *o, const struct syn_tcp *t)
{
    size_t n = 0;
    bool syn = (t->flags & CAP_TH_SYN) != 0;
    bool sack = syn && t->sack_perm;
    if (syn && t->mss_on) {
        o[n++] = TCPOPT_MSS;
        o[n++] = 4;
        put_be16(o + n, t->mss);
        n += 2;
    }
    if (t->ts_on) {
        if (sack) {
            o[n++] = TCPOPT_SACK_PERM; /* shares the timestamp's word instead of two NOPs */
            o[n++] = 2;
            sack = false;
        } else {
            o[n++] = TCPOPT_NOP;
            o[n++] = TCPOPT_NOP;
        }
        o[n++] = TCPOPT_TS;
        o[n++] = 10;
        put_be32(o + n, t->tsval);
        put_be32(o + n + 4, t->tsecr);
        n += 8;
    }
    if (sack) {
        o[n++] = TCPOPT_NOP;
        o[n++] = TCPOPT_NOP;
        o[n++] = TCPOPT_SACK_PERM;
        o[n++] = 2;
    }
    if (syn && t->ws_on) {
        o[n++] = TCPOPT_NOP;
        o[n++] = TCPOPT_WS;
        o[n++] = 3;
        o[n++] = t->ws;
    }
    return n;
}

/* See wire.h.  Never writes more than off + IP header + TCP header + cut payload bytes, which is
 * below SYN_FRAME_MAX; the pointers must be valid (payload may be NULL). */
size_t syn_build_tcp(uint8_t *out, const struct syn_link_opts *l, const struct syn_ip *ip,
                     const struct syn_tcp *t, const uint8_t *payload, size_t n)
{
    bool v4 = ip_is_v4(ip);
    size_t off = put_link(out, l, v4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6);
    size_t iphl = v4 ? IP4_HDR_LEN : IP6_HDR_LEN;
    uint8_t *th = out + off + iphl;

    uint8_t opts[TCP_OPT_MAX];
    size_t optlen = put_tcp_options(opts, t);
    size_t thl = TCP_HDR_LEN + optlen;
    if (payload == NULL)
        n = 0;
    if (n > ip_seg_max(v4) - thl)
        n = ip_seg_max(v4) - thl;
    size_t seglen = thl + n;

    put_be16(th, t->sport);
    put_be16(th + 2, t->dport);
    put_be32(th + 4, t->seq);
    put_be32(th + 8, t->ack);
    th[12] = (uint8_t)(thl / 4 << 4);
    th[13] = t->flags;
    put_be16(th + 14, t->window);
    put_be16(th + 16, 0); /* checksum, below */
    put_be16(th + 18, 0); /* urgent pointer */
    memcpy(th + TCP_HDR_LEN, opts, optlen);
    if (n)
        memcpy(th + thl, payload, n);

    put_ip(out + off, ip, v4, IPPROTO_TCP_, seglen);
    uint64_t sum = csum_add(pseudo_sum(ip, v4, IPPROTO_TCP_, seglen), th, seglen);
    put_be16(th + 16, csum_fold(sum));
    return off + iphl + seglen;
}

/* See wire.h.  The checksum is always computed (also over IPv4); a computed zero is sent as
 * 0xffff. */
size_t syn_build_udp(uint8_t *out, const struct syn_link_opts *l, const struct syn_ip *ip,
                     const struct syn_udp *u, const uint8_t *payload, size_t n)
{
    bool v4 = ip_is_v4(ip);
    size_t off = put_link(out, l, v4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6);
    size_t iphl = v4 ? IP4_HDR_LEN : IP6_HDR_LEN;
    uint8_t *uh = out + off + iphl;

    if (payload == NULL)
        n = 0;
    if (n > ip_seg_max(v4) - UDP_HDR_LEN)
        n = ip_seg_max(v4) - UDP_HDR_LEN;
    size_t seglen = UDP_HDR_LEN + n;

    put_be16(uh, u->sport);
    put_be16(uh + 2, u->dport);
    put_be16(uh + 4, (uint32_t)seglen);
    put_be16(uh + 6, 0);
    if (n)
        memcpy(uh + UDP_HDR_LEN, payload, n);

    put_ip(out + off, ip, v4, IPPROTO_UDP_, seglen);
    uint16_t ck = csum_fold(csum_add(pseudo_sum(ip, v4, IPPROTO_UDP_, seglen), uh, seglen));
    /* RFC 768: a computed zero is sent as all ones, zero means "no checksum" (IPv4 only). */
    put_be16(uh + 6, ck == 0 ? 0xffffu : ck);
    return off + iphl + seglen;
}

/* See wire.h; a value outside enum syn_link is treated as raw IP, as the builder does. */
uint32_t syn_linktype(enum syn_link type)
{
    switch (type) {
    case SYN_LINK_ETHERNET:
        return CAP_LINKTYPE_ETHERNET;
    case SYN_LINK_SLL2:
        return CAP_LINKTYPE_LINUX_SLL2;
    case SYN_LINK_RAW:
    default: /* the builder writes no link header for an unknown type either */
        return CAP_LINKTYPE_RAW;
    }
}

/* ---- capture-file writer ---- */

struct syn_writer {
    int fd;
    bool close_fd; /* false for stdout */
    bool failed;   /* a write failed: every later call returns -1 */
    int err;       /* errno of the first failure */
    enum syn_format fmt;
    uint32_t snaplen; /* never 0 */
    uint64_t count;
    size_t len; /* bytes waiting in buf */
    uint8_t *buf;
};

/* Writes n bytes to the descriptor, retrying short writes and EINTR. */
static int write_all(struct syn_writer *w, const uint8_t *p, size_t n)
{
    if (w->failed) {
        errno = w->err;
        return -1;
    }
    while (n > 0) {
        ssize_t r = write(w->fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            w->failed = true;
            w->err = errno;
            return -1;
        }
        if (r == 0) {
            w->failed = true;
            w->err = EIO;
            errno = EIO;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int flush_buf(struct syn_writer *w)
{
    int rc = write_all(w, w->buf, w->len);
    w->len = 0;
    return rc;
}

/* Makes room for n contiguous bytes in the buffer; returns NULL (the record must then be written
 * straight through) when n is larger than the whole buffer or the flush failed. */
static uint8_t *reserve(struct syn_writer *w, size_t n)
{
    if (n > SYN_WRITER_BUF)
        return NULL;
    if (SYN_WRITER_BUF - w->len < n && flush_buf(w) < 0)
        return NULL;
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

/* Writes the file header (pcap) or SHB + IDB (pcapng) into the still empty buffer. */
static void write_header(struct syn_writer *w, uint32_t linktype, uint32_t snaplen)
{
    uint8_t *p;
    if (w->fmt != SYN_PCAPNG) {
        p = reserve(w, 24);
        if (!p)
            return; /* cannot happen: the buffer is still empty */
        put_le32(p, w->fmt == SYN_PCAP_NS ? PCAP_MAGIC_NS : PCAP_MAGIC_US);
        put_le16(p + 4, 2);
        put_le16(p + 6, 4);
        put_le32(p + 8, 0);  /* thiszone (now "reserved1") */
        put_le32(p + 12, 0); /* sigfigs (now "reserved2") */
        put_le32(p + 16, snaplen);
        put_le32(p + 20, linktype);
        return;
    }
    /* Section header block without options: 28 bytes. */
    p = reserve(w, 28 + 32);
    if (!p)
        return; /* cannot happen: the buffer is still empty */
    put_le32(p, PCAPNG_SHB);
    put_le32(p + 4, 28);
    put_le32(p + 8, PCAPNG_BOM);
    put_le16(p + 12, 1);           /* major version */
    put_le16(p + 14, 0);           /* minor version */
    put_le32(p + 16, 0xffffffffu); /* section length -1: not given */
    put_le32(p + 20, 0xffffffffu);
    put_le32(p + 24, 28);
    /* Interface description block: link type, snaplen, if_tsresol 9 (ns), opt_endofopt. */
    p += 28;
    put_le32(p, PCAPNG_IDB);
    put_le32(p + 4, 32);
    put_le16(p + 8, linktype);
    put_le16(p + 10, 0);
    put_le32(p + 12, snaplen);
    put_le16(p + 16, PCAPNG_OPT_IF_TSRESOL);
    put_le16(p + 18, 1);
    p[20] = 9;
    p[21] = p[22] = p[23] = 0; /* option padding */
    put_le16(p + 24, PCAPNG_OPT_ENDOFOPT);
    put_le16(p + 26, 0);
    put_le32(p + 28, 32);
}

/* See wire.h.  snaplen 0 means libpcap's maximum, 262144 (no builder frame is cut).  Fails with
 * EINVAL for an unknown format or, in pcapng, a link type above 16 bits; with open()'s errno; or
 * ENOMEM.  The file header is buffered, so nothing reaches the file before the first flush. */
struct syn_writer *syn_writer_open(const char *path, enum syn_format fmt, uint32_t linktype,
                                   uint32_t snaplen)
{
    if (path == NULL || (fmt != SYN_PCAP_US && fmt != SYN_PCAP_NS && fmt != SYN_PCAPNG) ||
        (fmt == SYN_PCAPNG && linktype > 0xffffu)) {
        errno = EINVAL;
        return NULL;
    }
    struct syn_writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->buf = malloc(SYN_WRITER_BUF);
    if (w->buf == NULL) {
        free(w);
        errno = ENOMEM;
        return NULL;
    }
    if (strcmp(path, "-") == 0) {
        w->fd = STDOUT_FILENO;
    } else {
        w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (w->fd < 0) {
            int e = errno;
            free(w->buf);
            free(w);
            errno = e;
            return NULL;
        }
        w->close_fd = true;
    }
    w->fmt = fmt;
    w->snaplen = snaplen ? snaplen : SYN_SNAPLEN_DEFAULT;
    write_header(w, linktype, w->snaplen);
    return w;
}

/* See wire.h.  ts below zero is written as 0; classic pcap clamps seconds past 2106 to the last
 * representable instant.  A frame longer than 4 GiB keeps 0xffffffff as its original length.  The
 * first write error sticks: this and every later call return -1 with its errno. */
int syn_writer_packet(struct syn_writer *w, sc_time ts, const uint8_t *frame, size_t len)
{
    if (w->failed) {
        errno = w->err;
        return -1;
    }
    uint32_t wirelen = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
    uint32_t caplen = wirelen > w->snaplen ? w->snaplen : wirelen;
    uint64_t ns = ts < 0 ? 0 : (uint64_t)ts;
    uint8_t hdr[28];
    size_t hlen, pad = 0;

    if (w->fmt == SYN_PCAPNG) {
        pad = (4 - (caplen & 3)) & 3;
        put_le32(hdr, PCAPNG_EPB);
        put_le32(hdr + 4, 0); /* block length, below */
        put_le32(hdr + 8, 0); /* interface 0 */
        put_le32(hdr + 12, (uint32_t)(ns >> 32));
        put_le32(hdr + 16, (uint32_t)ns);
        put_le32(hdr + 20, caplen);
        put_le32(hdr + 24, wirelen);
        hlen = 28;
    } else {
        uint64_t sec = ns / (uint64_t)SC_NS_PER_SEC;
        uint32_t frac = (uint32_t)(ns % (uint64_t)SC_NS_PER_SEC);
        if (w->fmt == SYN_PCAP_US)
            frac /= 1000;
        if (sec > UINT32_MAX) { /* the 32-bit seconds field ends in 2106 */
            sec = UINT32_MAX;
            frac = w->fmt == SYN_PCAP_US ? 999999u : 999999999u;
        }
        put_le32(hdr, (uint32_t)sec);
        put_le32(hdr + 4, frac);
        put_le32(hdr + 8, caplen);
        put_le32(hdr + 12, wirelen);
        hlen = 16;
    }
    size_t total = hlen + caplen + pad + (w->fmt == SYN_PCAPNG ? 4 : 0);
    if (w->fmt == SYN_PCAPNG) {
        if (total > UINT32_MAX) {
            w->failed = true;
            w->err = errno = EFBIG;
            return -1;
        }
        put_le32(hdr + 4, (uint32_t)total);
    }

    uint8_t *p = reserve(w, total);
    if (p != NULL) {
        memcpy(p, hdr, hlen);
        memcpy(p + hlen, frame, caplen);
        p += hlen + caplen;
        if (w->fmt == SYN_PCAPNG) {
            memset(p, 0, pad);
            put_le32(p + pad, (uint32_t)total);
        }
    } else {
        /* Too large for the buffer (or the flush failed, which write_all reports again). */
        static const uint8_t zeros[4];
        uint8_t trailer[4];
        put_le32(trailer, (uint32_t)total);
        if (flush_buf(w) < 0 || write_all(w, hdr, hlen) < 0 || write_all(w, frame, caplen) < 0 ||
            (w->fmt == SYN_PCAPNG &&
             (write_all(w, zeros, pad) < 0 || write_all(w, trailer, 4) < 0)))
            return -1;
    }
    if (w->failed) {
        errno = w->err;
        return -1;
    }
    w->count++;
    return 0;
}

/* See wire.h.  Frees w in every case; standard output is flushed but not closed.  On failure
 * errno is the first error's.  NULL is accepted and returns 0. */
int syn_writer_close(struct syn_writer *w)
{
    if (w == NULL)
        return 0;
    int rc = flush_buf(w);
    int err = w->err;
    if (w->close_fd && close(w->fd) < 0 && rc == 0) {
        rc = -1;
        err = errno;
    }
    rc = w->failed || rc < 0 ? -1 : 0;
    free(w->buf);
    free(w);
    if (rc < 0)
        errno = err;
    return rc;
}

uint64_t syn_writer_count(const struct syn_writer *w)
{
    return w->count;
}
