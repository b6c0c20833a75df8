/* test_decode.c - unit tests for cap_decode(): link layers, IPv4/IPv6, TCP
 * options, payload lengths, truncation at every byte and random input.
 *
 * Every packet is decoded from a malloc'd copy of exactly its length, so the
 * sanitizer build reports any read past the captured bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "capture/decode.h"

/* Values every built TCP header carries. */
#define T_SPORT 40000
#define T_DPORT 25
#define T_SEQ 0x11223344u
#define T_ACK 0x55667788u
#define T_FLAGS (CAP_TH_PSH | CAP_TH_ACK)
#define T_WIN 502
#define T_IPID 0x1234
#define T_TTL 64
#define T_FLOW 0xabcdeu
#define T_HLIM 57
#define T_PAYLOAD "EHLO a\r\n"
#define T_PAYLOAD_LEN 8

static const uint8_t v4_addrs[8] = {192, 0, 2, 1, 198, 51, 100, 2};
static const uint8_t v6_addrs[32] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                                     0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

/* ---- packet builder ---- */

struct pk {
    uint8_t b[2048];
    size_t n;
};

/* Appends the low `width` bytes of v in network order. */
static void put(struct pk *k, int width, uint32_t v)
{
    for (int i = width - 1; i >= 0; i--)
        k->b[k->n++] = (uint8_t)(v >> (8 * i));
}

static void putn(struct pk *k, const void *p, size_t n)
{
    memcpy(k->b + k->n, p, n);
    k->n += n;
}

static void fill(struct pk *k, uint8_t v, size_t n)
{
    memset(k->b + k->n, v, n);
    k->n += n;
}

static void set16(struct pk *k, size_t at, size_t v)
{
    k->b[at] = (uint8_t)(v >> 8);
    k->b[at + 1] = (uint8_t)v;
}

static void eth(struct pk *k, uint32_t type)
{
    static const uint8_t macs[12] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};
    putn(k, macs, sizeof(macs));
    put(k, 2, type);
}

static void vlan_tag(struct pk *k, uint32_t tci, uint32_t next_type)
{
    put(k, 2, tci);
    put(k, 2, next_type);
}

static void sll(struct pk *k, uint32_t proto)
{
    put(k, 2, 0); /* packet type: to us */
    put(k, 2, 1); /* ARPHRD_ETHER */
    put(k, 2, 6); /* address length */
    fill(k, 0xab, 8);
    put(k, 2, proto);
}

static void sll2(struct pk *k, uint32_t proto)
{
    put(k, 2, proto);
    put(k, 2, 0);
    put(k, 4, 3); /* ifindex */
    put(k, 2, 1); /* ARPHRD_ETHER */
    put(k, 1, 0);
    put(k, 1, 6);
    fill(k, 0xab, 8);
}

static void bsd_af(struct pk *k, uint32_t af, bool big_endian)
{
    for (int i = 0; i < 4; i++)
        put(k, 1, af >> (8 * (big_endian ? 3 - i : i)));
}

/* Writes an IPv4 header with `optlen` bytes of options (NOPs, then an EOL);
 * returns its offset for ip4_done(), which sets the total length. */
static size_t ip4(struct pk *k, uint32_t proto, uint32_t frag, size_t optlen)
{
    size_t at = k->n;
    put(k, 1, 0x40 | (uint32_t)(5 + optlen / 4));
    put(k, 1, 0);
    put(k, 2, 0);
    put(k, 2, T_IPID);
    put(k, 2, frag);
    put(k, 1, T_TTL);
    put(k, 1, proto);
    put(k, 2, 0);
    putn(k, v4_addrs, 8);
    if (optlen) {
        fill(k, 1, optlen - 1);
        put(k, 1, 0);
    }
    return at;
}

static void ip4_done(struct pk *k, size_t at)
{
    set16(k, at + 2, k->n - at);
}

static size_t ip6(struct pk *k, uint32_t next)
{
    size_t at = k->n;
    put(k, 4, 0x60000000u | 0x00a00000u | T_FLOW); /* traffic class 0x0a */
    put(k, 2, 0);
    put(k, 1, next);
    put(k, 1, T_HLIM);
    putn(k, v6_addrs, 32);
    return at;
}

static void ip6_done(struct pk *k, size_t at)
{
    set16(k, at + 4, k->n - at - 40);
}

/* Hop-by-hop, routing or destination options header of `len` bytes (8n). */
static void ip6_ext(struct pk *k, uint32_t next, size_t len)
{
    put(k, 1, next);
    put(k, 1, (uint32_t)(len / 8 - 1));
    fill(k, 0, len - 2);
}

static void ip6_frag(struct pk *k, uint32_t next, uint32_t off8, bool more, uint32_t id)
{
    put(k, 1, next);
    put(k, 1, 0);
    put(k, 2, off8 << 3 | (more ? 1u : 0u));
    put(k, 4, id);
}

static void tcp_hdr(struct pk *k, uint32_t flags, const uint8_t *opts, size_t optlen)
{
    put(k, 2, T_SPORT);
    put(k, 2, T_DPORT);
    put(k, 4, T_SEQ);
    put(k, 4, T_ACK);
    put(k, 1, (uint32_t)((20 + optlen) / 4) << 4);
    put(k, 1, flags);
    put(k, 2, T_WIN);
    put(k, 4, 0); /* checksum, urgent pointer */
    if (optlen)
        putn(k, opts, optlen);
}

/* The standard TCP segment: header with `optlen` option bytes, payload. */
static void tcp_std(struct pk *k, const uint8_t *opts, size_t optlen)
{
    tcp_hdr(k, T_FLAGS, opts, optlen);
    putn(k, T_PAYLOAD, T_PAYLOAD_LEN);
}

/* IPv4 or IPv6 header + the standard TCP segment. */
static void ip_tcp(struct pk *k, bool v6)
{
    size_t ip = v6 ? ip6(k, 6) : ip4(k, 6, 0, 0);
    tcp_std(k, NULL, 0);
    if (v6)
        ip6_done(k, ip);
    else
        ip4_done(k, ip);
}

/* A whole packet of link type lt around the standard segment. */
static void link_packet(struct pk *k, uint32_t lt, bool v6)
{
    k->n = 0;
    switch (lt) {
    case CAP_LINKTYPE_NULL:
        bsd_af(k, v6 ? 28 : 2, false);
        break;
    case CAP_LINKTYPE_LOOP:
        bsd_af(k, v6 ? 30 : 2, true);
        break;
    case CAP_LINKTYPE_ETHERNET:
        eth(k, v6 ? 0x86dd : 0x0800);
        break;
    case CAP_LINKTYPE_LINUX_SLL:
        sll(k, v6 ? 0x86dd : 0x0800);
        break;
    case CAP_LINKTYPE_LINUX_SLL2:
        sll2(k, v6 ? 0x86dd : 0x0800);
        break;
    default: /* raw IP */
        break;
    }
    ip_tcp(k, v6);
}

/* ---- decoding from an exact-length copy ---- */

struct dec {
    struct cap_packet pkt;
    uint8_t *buf;
    size_t len;
    enum cap_status st;
};

static void dec_run(struct dec *d, uint32_t linktype, const uint8_t *p, size_t len)
{
    memset(&d->pkt, 0, sizeof(d->pkt));
    d->buf = malloc(len); /* exactly len bytes, so ASan sees any over-read */
    if (len) {
        assert_non_null(d->buf);
        memcpy(d->buf, p, len);
    }
    d->len = len;
    d->st = cap_decode(&d->pkt, linktype, d->buf, (uint32_t)len);
    assert_int_equal(d->st, d->pkt.status);
}

static void dec_pk(struct dec *d, uint32_t linktype, const struct pk *k)
{
    dec_run(d, linktype, k->b, k->n);
}

static void dec_free(struct dec *d)
{
    free(d->buf);
    d->buf = NULL;
}

static void assert_endpoints(const struct cap_packet *p, const char *src, const char *dst)
{
    char s[64], d[64];
    cap_endpoint_str(s, sizeof(s), &p->src, p->sport);
    cap_endpoint_str(d, sizeof(d), &p->dst, p->dport);
    assert_string_equal(s, src);
    assert_string_equal(d, dst);
}

/* Checks the TCP fields of the standard segment, payload at `at`. */
static void assert_std_tcp(const struct dec *d, size_t at)
{
    const struct cap_packet *p = &d->pkt;
    assert_int_equal(d->st, CAP_ST_TCP);
    assert_int_equal(p->sport, T_SPORT);
    assert_int_equal(p->dport, T_DPORT);
    assert_int_equal(p->seq, T_SEQ);
    assert_int_equal(p->ack, T_ACK);
    assert_int_equal(p->flags, T_FLAGS);
    assert_int_equal(p->window, T_WIN);
    assert_ptr_equal(p->payload, d->buf + at);
    assert_int_equal(p->payload_len, T_PAYLOAD_LEN);
    assert_int_equal(p->payload_wire, T_PAYLOAD_LEN);
    assert_memory_equal(p->payload, T_PAYLOAD, T_PAYLOAD_LEN);
    assert_false(p->frag_first);
}

/* Checks every field of the standard segment in IPv4 or IPv6. */
static void assert_std(const struct dec *d, bool v6, size_t at)
{
    assert_std_tcp(d, at);
    assert_int_equal(d->pkt.ipver, v6 ? 6 : 4);
    assert_int_equal(d->pkt.ttl, v6 ? T_HLIM : T_TTL);
    assert_int_equal(d->pkt.ipid, v6 ? T_FLOW : T_IPID);
    assert_int_equal(cap_addr_is_v4(&d->pkt.src), !v6);
    assert_int_equal(cap_addr_is_v4(&d->pkt.dst), !v6);
    if (v6)
        assert_endpoints(&d->pkt, "[2001:db8::1]:40000", "[2001:db8::2]:25");
    else
        assert_endpoints(&d->pkt, "192.0.2.1:40000", "198.51.100.2:25");
}

/* Decodes k, checks the standard segment with its payload at `at`, frees. */
static void expect_std(uint32_t lt, const struct pk *k, bool v6, size_t at)
{
    struct dec d;
    dec_pk(&d, lt, k);
    assert_std(&d, v6, at);
    dec_free(&d);
}

static void expect_status(uint32_t lt, const struct pk *k, enum cap_status st)
{
    struct dec d;
    dec_pk(&d, lt, k);
    assert_int_equal(d.st, st);
    dec_free(&d);
}

/* ---- link layers ---- */

static const uint32_t all_links[10] = {
    CAP_LINKTYPE_NULL, CAP_LINKTYPE_ETHERNET,   CAP_LINKTYPE_RAW_DLT,   CAP_LINKTYPE_RAW_OPENBSD,
    CAP_LINKTYPE_RAW,  CAP_LINKTYPE_LOOP,       CAP_LINKTYPE_LINUX_SLL, CAP_LINKTYPE_IPV4,
    CAP_LINKTYPE_IPV6, CAP_LINKTYPE_LINUX_SLL2,
};

static size_t link_hdr_len(uint32_t lt)
{
    switch (lt) {
    case CAP_LINKTYPE_NULL:
    case CAP_LINKTYPE_LOOP:
        return 4;
    case CAP_LINKTYPE_ETHERNET:
        return 14;
    case CAP_LINKTYPE_LINUX_SLL:
        return 16;
    case CAP_LINKTYPE_LINUX_SLL2:
        return 20;
    default:
        return 0;
    }
}

static void test_every_link_type_decodes_every_field(void **state)
{
    (void)state;
    for (int l = 0; l < 10; l++) {
        for (int v6 = 0; v6 < 2; v6++) {
            uint32_t lt = all_links[l];
            if ((lt == CAP_LINKTYPE_IPV4 && v6) || (lt == CAP_LINKTYPE_IPV6 && !v6))
                continue;
            struct pk k;
            link_packet(&k, lt, v6);
            struct dec d;
            dec_pk(&d, lt, &k);
            assert_std(&d, v6, link_hdr_len(lt) + (v6 ? 60 : 40));
            assert_int_equal(d.pkt.nvlan, 0);
            assert_false(d.pkt.opts.mss_present || d.pkt.opts.wscale_present ||
                         d.pkt.opts.sack_perm || d.pkt.opts.ts_present || d.pkt.opts.malformed);
            dec_free(&d);
        }
    }
}

static void test_single_family_link_types_reject_the_other_version(void **state)
{
    (void)state;
    struct pk k4, k6;
    link_packet(&k4, CAP_LINKTYPE_RAW, false);
    link_packet(&k6, CAP_LINKTYPE_RAW, true);
    expect_status(CAP_LINKTYPE_IPV4, &k6, CAP_ST_MALFORMED);
    expect_status(CAP_LINKTYPE_IPV6, &k4, CAP_ST_MALFORMED);
    k4.b[0] = 0x55; /* version 5 on a raw link is not IP */
    expect_status(CAP_LINKTYPE_RAW, &k4, CAP_ST_NOT_IP);
}

static void test_ethernet_padding_is_not_payload(void **state)
{
    (void)state;
    /* A bare ACK is 54 bytes; Ethernet pads it to 60. */
    struct pk k = {0};
    eth(&k, 0x0800);
    size_t ip = ip4(&k, 6, 0, 0);
    tcp_hdr(&k, CAP_TH_ACK, NULL, 0);
    ip4_done(&k, ip);
    fill(&k, 0xee, 6);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_int_equal(d.st, CAP_ST_TCP);
    assert_int_equal(d.pkt.flags, CAP_TH_ACK);
    assert_int_equal(d.pkt.payload_len, 0);
    assert_int_equal(d.pkt.payload_wire, 0);
    dec_free(&d);

    /* Two payload bytes plus four of padding. */
    k.n = 0;
    eth(&k, 0x0800);
    ip = ip4(&k, 6, 0, 0);
    tcp_hdr(&k, T_FLAGS, NULL, 0);
    putn(&k, "ok", 2);
    ip4_done(&k, ip);
    fill(&k, 0xee, 4);
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_int_equal(d.pkt.payload_len, 2);
    assert_int_equal(d.pkt.payload_wire, 2);
    assert_memory_equal(d.pkt.payload, "ok", 2);
    dec_free(&d);

    /* IPv6: bytes after the payload length are not payload either. */
    link_packet(&k, CAP_LINKTYPE_ETHERNET, true);
    fill(&k, 0xee, 5);
    expect_std(CAP_LINKTYPE_ETHERNET, &k, true, 14 + 60);
}

static void test_vlan_tags_read_in_order(void **state)
{
    (void)state;
    struct pk k = {0};
    eth(&k, 0x8100);
    vlan_tag(&k, 0xa064, 0x0800); /* PCP 5, VID 100 */
    ip_tcp(&k, false);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_std(&d, false, 18 + 40);
    assert_int_equal(d.pkt.nvlan, 1);
    assert_int_equal(d.pkt.vlan[0], 100);
    dec_free(&d);

    static const uint32_t outer[2] = {0x88a8, 0x9100};
    for (int i = 0; i < 2; i++) {
        k.n = 0;
        eth(&k, outer[i]);
        vlan_tag(&k, 0x00c8, 0x8100); /* VID 200 */
        vlan_tag(&k, 0x112c, 0x86dd); /* DEI set, VID 300 */
        ip_tcp(&k, true);
        dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
        assert_std(&d, true, 22 + 60);
        assert_int_equal(d.pkt.nvlan, 2);
        assert_int_equal(d.pkt.vlan[0], 200);
        assert_int_equal(d.pkt.vlan[1], 300);
        dec_free(&d);
    }

    /* A tag inside a cooked capture's payload. */
    k.n = 0;
    sll(&k, 0x8100);
    vlan_tag(&k, 7, 0x86dd);
    ip_tcp(&k, true);
    dec_pk(&d, CAP_LINKTYPE_LINUX_SLL, &k);
    assert_std(&d, true, 20 + 60);
    assert_int_equal(d.pkt.nvlan, 1);
    assert_int_equal(d.pkt.vlan[0], 7);
    dec_free(&d);
}

static void test_vlan_tags_beyond_limit_are_malformed(void **state)
{
    (void)state;
    struct pk k = {0};
    eth(&k, 0x8100);
    for (uint32_t i = 1; i < CAP_MAX_VLAN_TAGS; i++)
        vlan_tag(&k, i, 0x8100);
    vlan_tag(&k, CAP_MAX_VLAN_TAGS, 0x0800);
    ip_tcp(&k, false);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_std(&d, false, 14 + 4 * CAP_MAX_VLAN_TAGS + 40);
    assert_int_equal(d.pkt.nvlan, CAP_MAX_VLAN_TAGS);
    assert_int_equal(d.pkt.vlan[CAP_MAX_VLAN_TAGS - 1], CAP_MAX_VLAN_TAGS);
    dec_free(&d);

    k.n = 0;
    eth(&k, 0x8100);
    for (uint32_t i = 0; i < CAP_MAX_VLAN_TAGS; i++)
        vlan_tag(&k, i + 1, 0x8100);
    vlan_tag(&k, 9, 0x0800);
    ip_tcp(&k, false);
    expect_status(CAP_LINKTYPE_ETHERNET, &k, CAP_ST_MALFORMED);
}

static void test_8023_llc_snap_carries_ipv4(void **state)
{
    (void)state;
    static const uint8_t snap[8] = {0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00};
    struct pk k = {0};
    eth(&k, 0); /* an 802.3 length, set below */
    putn(&k, snap, sizeof(snap));
    ip_tcp(&k, false);
    set16(&k, 12, k.n - 14);
    expect_std(CAP_LINKTYPE_ETHERNET, &k, false, 22 + 40);
    /* Plain LLC (spanning tree's 42 42 03) carries no IP. */
    k.b[14] = 0x42;
    k.b[15] = 0x42;
    expect_status(CAP_LINKTYPE_ETHERNET, &k, CAP_ST_NOT_IP);
}

static void test_unknown_ethertype_is_not_ip(void **state)
{
    (void)state;
    struct pk k = {0};
    eth(&k, 0x0806); /* ARP */
    fill(&k, 0, 28);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_int_equal(d.st, CAP_ST_NOT_IP);
    assert_int_equal(d.pkt.ipver, 0);
    dec_free(&d);
    k.n = 0;
    sll2(&k, 0x0806);
    fill(&k, 0, 28);
    expect_status(CAP_LINKTYPE_LINUX_SLL2, &k, CAP_ST_NOT_IP);
}

static void test_bsd_null_inet6_values_in_either_byte_order(void **state)
{
    (void)state;
    static const uint32_t v6_afs[4] = {10, 24, 28, 30};
    struct pk k;
    for (int big = 0; big < 2; big++) {
        k.n = 0;
        bsd_af(&k, 2, big);
        ip_tcp(&k, false);
        expect_std(CAP_LINKTYPE_NULL, &k, false, 4 + 40);
        for (int i = 0; i < 4; i++) {
            k.n = 0;
            bsd_af(&k, v6_afs[i], big);
            ip_tcp(&k, true);
            expect_std(CAP_LINKTYPE_NULL, &k, true, 4 + 60);
            if (big) /* LOOP is always in network byte order */
                expect_std(CAP_LINKTYPE_LOOP, &k, true, 4 + 60);
        }
        k.n = 0;
        bsd_af(&k, 7, big); /* not an IP family */
        ip_tcp(&k, false);
        expect_status(CAP_LINKTYPE_NULL, &k, CAP_ST_NOT_IP);
    }
}

static void test_unsupported_link_type(void **state)
{
    (void)state;
    struct pk k;
    link_packet(&k, CAP_LINKTYPE_RAW, false);
    expect_status(147, &k, CAP_ST_LINK_UNSUPPORTED); /* LINKTYPE_USER0 */
    expect_status(105, &k, CAP_ST_LINK_UNSUPPORTED); /* 802.11 */
    assert_string_equal(cap_status_name(CAP_ST_LINK_UNSUPPORTED), "link_unsupported");
}

/* ---- IP ---- */

static void test_ipv4_options_are_skipped(void **state)
{
    (void)state;
    struct pk k = {0};
    size_t ip = ip4(&k, 6, 0x4000 /* DF */, 12);
    tcp_std(&k, NULL, 0);
    ip4_done(&k, ip);
    expect_std(CAP_LINKTYPE_RAW, &k, false, 32 + 20);
}

static void test_ipv6_extension_header_chain(void **state)
{
    (void)state;
    struct pk k = {0};
    size_t ip = ip6(&k, 0); /* hop-by-hop */
    ip6_ext(&k, 43, 8);     /* -> routing */
    ip6_ext(&k, 60, 24);    /* -> destination options */
    ip6_ext(&k, 6, 16);     /* -> TCP */
    tcp_std(&k, NULL, 0);
    ip6_done(&k, ip);
    expect_std(CAP_LINKTYPE_RAW, &k, true, 40 + 48 + 20);

    /* Then an authentication header and an atomic fragment header. */
    k.n = 0;
    ip = ip6(&k, 0);
    ip6_ext(&k, 43, 8);
    ip6_ext(&k, 51, 24);
    put(&k, 1, 44); /* AH: 24 bytes, length field 24 / 4 - 2 */
    put(&k, 1, 4);
    fill(&k, 0, 22);
    ip6_frag(&k, 6, 0, false, 0xdeadbeef);
    tcp_std(&k, NULL, 0);
    ip6_done(&k, ip);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_RAW, &k);
    assert_std_tcp(&d, 40 + 64 + 20);
    assert_int_equal(d.pkt.ttl, T_HLIM);
    assert_endpoints(&d.pkt, "[2001:db8::1]:40000", "[2001:db8::2]:25");
    dec_free(&d);
}

/* decode.h: ipid is "IPv4 identification, or IPv6 flow label". */
static void test_ipv6_ipid_is_fragment_id_when_fragmented(void **state)
{
    (void)state;
    struct pk k = {0};
    size_t ip = ip6(&k, 44);
    ip6_frag(&k, 6, 0, false, 0xdeadbeef);
    tcp_std(&k, NULL, 0);
    ip6_done(&k, ip);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_RAW, &k);
    assert_std_tcp(&d, 48 + 20);
    assert_int_equal(d.pkt.ipid, 0xdeadbeef); /* the fragment header's, as IPv4's id */
    dec_free(&d);
}

static void test_ipv6_extension_chain_over_limit_is_malformed(void **state)
{
    (void)state;
    struct pk k = {0};
    size_t ip = ip6(&k, 60);
    for (int i = 0; i <= CAP_MAX_IPV6_EXT; i++)
        ip6_ext(&k, i < CAP_MAX_IPV6_EXT ? 60 : 6, 8);
    tcp_hdr(&k, T_FLAGS, NULL, 0);
    ip6_done(&k, ip);
    expect_status(CAP_LINKTYPE_RAW, &k, CAP_ST_MALFORMED);
}

static void test_first_fragments_decode_tcp(void **state)
{
    (void)state;
    struct pk k[2] = {{{0}, 0}, {{0}, 0}};
    eth(&k[0], 0x0800);
    size_t ip = ip4(&k[0], 6, 0x2000 /* MF, offset 0 */, 0);
    tcp_std(&k[0], NULL, 0);
    ip4_done(&k[0], ip);
    ip = ip6(&k[1], 44);
    ip6_frag(&k[1], 6, 0, true, 0x01020304);
    tcp_std(&k[1], NULL, 0);
    ip6_done(&k[1], ip);
    static const uint32_t lts[2] = {CAP_LINKTYPE_ETHERNET, CAP_LINKTYPE_IPV6};
    static const size_t at[2] = {54, 68};
    for (int i = 0; i < 2; i++) {
        struct dec d;
        dec_pk(&d, lts[i], &k[i]);
        assert_int_equal(d.st, CAP_ST_TCP);
        assert_true(d.pkt.frag_first);
        assert_int_equal(d.pkt.ipver, i ? 6 : 4);
        assert_int_equal(d.pkt.sport, T_SPORT);
        assert_int_equal(d.pkt.seq, T_SEQ);
        assert_ptr_equal(d.pkt.payload, d.buf + at[i]);
        assert_int_equal(d.pkt.payload_len, T_PAYLOAD_LEN);
        assert_int_equal(d.pkt.payload_wire, T_PAYLOAD_LEN); /* datagram length unknown */
        assert_memory_equal(d.pkt.payload, T_PAYLOAD, T_PAYLOAD_LEN);
        dec_free(&d);
    }
}

static void test_non_first_fragments_have_no_tcp(void **state)
{
    (void)state;
    static const uint32_t frags[2] = {0x2000 | 185, 0x1000}; /* with and without MF */
    struct dec d;
    struct pk k;
    for (int i = 0; i < 2; i++) {
        k.n = 0;
        size_t ip = ip4(&k, 6, frags[i], 0);
        fill(&k, 0x41, 40);
        ip4_done(&k, ip);
        dec_pk(&d, CAP_LINKTYPE_RAW, &k);
        assert_int_equal(d.st, CAP_ST_FRAGMENT);
        assert_string_equal(cap_status_name(d.st), "ip_fragment");
        assert_int_equal(d.pkt.ipver, 4);
        assert_int_equal(d.pkt.ipid, T_IPID);
        assert_false(d.pkt.frag_first);
        assert_null(d.pkt.payload);
        char s[64];
        cap_endpoint_str(s, sizeof(s), &d.pkt.src, 0);
        assert_string_equal(s, "192.0.2.1:0");
        dec_free(&d);
    }
    k.n = 0;
    size_t ip = ip6(&k, 0);
    ip6_ext(&k, 44, 8);
    ip6_frag(&k, 6, 100, true, 0x01020304);
    fill(&k, 0x41, 40);
    ip6_done(&k, ip);
    dec_pk(&d, CAP_LINKTYPE_IPV6, &k);
    assert_int_equal(d.st, CAP_ST_FRAGMENT);
    assert_int_equal(d.pkt.ipver, 6);
    assert_false(d.pkt.frag_first);
    dec_free(&d);
}

static void test_udp_and_esp_are_not_tcp(void **state)
{
    (void)state;
    static const uint32_t protos[2] = {17, 50};
    for (int i = 0; i < 2; i++) {
        struct pk k = {0};
        size_t ip = ip4(&k, protos[i], 0, 0);
        fill(&k, 0x11, 24);
        ip4_done(&k, ip);
        struct dec d;
        dec_pk(&d, CAP_LINKTYPE_RAW, &k);
        assert_int_equal(d.st, CAP_ST_NOT_TCP);
        assert_int_equal(d.pkt.ipver, 4);
        assert_int_equal(d.pkt.ttl, T_TTL);
        dec_free(&d);

        k.n = 0;
        ip = ip6(&k, 0);
        ip6_ext(&k, protos[i], 8);
        fill(&k, 0x11, 24);
        ip6_done(&k, ip);
        dec_pk(&d, CAP_LINKTYPE_RAW, &k);
        assert_int_equal(d.st, CAP_ST_NOT_TCP);
        assert_int_equal(d.pkt.ipver, 6);
        dec_free(&d);
    }
}

static void test_ipv4_inconsistent_headers_are_malformed(void **state)
{
    (void)state;
    struct pk k;
    link_packet(&k, CAP_LINKTYPE_IPV4, false);
    k.b[0] = 0x44; /* IHL 4 < 5 */
    expect_status(CAP_LINKTYPE_IPV4, &k, CAP_ST_MALFORMED);
    k.b[0] = 0x4f; /* IHL 15: 60 bytes, but only 48 captured */
    expect_status(CAP_LINKTYPE_IPV4, &k, CAP_ST_MALFORMED);
    link_packet(&k, CAP_LINKTYPE_IPV4, false);
    set16(&k, 2, 16); /* total length below the header length */
    expect_status(CAP_LINKTYPE_IPV4, &k, CAP_ST_MALFORMED);
    set16(&k, 2, 30); /* total length ends inside the TCP header */
    expect_status(CAP_LINKTYPE_IPV4, &k, CAP_ST_MALFORMED);
}

/* ---- TCP ---- */

static void test_tcp_options_parsed(void **state)
{
    (void)state;
    static const uint8_t opts[20] = {
        2,    4,    0x05, 0xb4,                         /* MSS 1460 */
        1,                                              /* NOP */
        3,    3,    7,                                  /* window scale 7 */
        4,    2,                                        /* SACK permitted */
        8,    10,   0x01, 0x02, 0x03, 0x04, 0xa0, 0xb0, /* timestamps */
        0xc0, 0xd0,
    };
    struct pk k = {0};
    size_t ip = ip4(&k, 6, 0, 0);
    tcp_hdr(&k, CAP_TH_SYN, opts, sizeof(opts));
    ip4_done(&k, ip);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_RAW, &k);
    assert_int_equal(d.st, CAP_ST_TCP);
    assert_int_equal(d.pkt.flags, CAP_TH_SYN);
    const struct cap_tcpopts *o = &d.pkt.opts;
    assert_true(o->mss_present);
    assert_int_equal(o->mss, 1460);
    assert_true(o->wscale_present);
    assert_int_equal(o->wscale, 7);
    assert_true(o->sack_perm);
    assert_true(o->ts_present);
    assert_int_equal(o->tsval, 0x01020304u);
    assert_int_equal(o->tsecr, 0xa0b0c0d0u);
    assert_false(o->malformed);
    assert_int_equal(d.pkt.payload_len, 0);
    assert_ptr_equal(d.pkt.payload, d.buf + 60);
    dec_free(&d);
}

static void test_tcp_option_overrunning_header_is_malformed(void **state)
{
    (void)state;
    static const uint8_t ts_too_long[8] = {2, 4, 0x02, 0x18, 8, 10, 0, 0};
    static const uint8_t zero_len[8] = {2, 4, 0x02, 0x18, 3, 0, 0, 0};
    static const uint8_t kind_last[4] = {1, 1, 1, 3};
    static const uint8_t eol_then_junk[4] = {0, 8, 40, 1};
    const uint8_t *cases[4] = {ts_too_long, zero_len, kind_last, eol_then_junk};
    const size_t lens[4] = {8, 8, 4, 4};
    const bool bad[4] = {true, true, true, false};
    for (int i = 0; i < 4; i++) {
        struct pk k = {0};
        size_t ip = ip4(&k, 6, 0, 0);
        tcp_hdr(&k, T_FLAGS, cases[i], lens[i]);
        putn(&k, T_PAYLOAD, T_PAYLOAD_LEN);
        ip4_done(&k, ip);
        struct dec d;
        dec_pk(&d, CAP_LINKTYPE_RAW, &k);
        assert_int_equal(d.st, CAP_ST_TCP);
        assert_int_equal(d.pkt.opts.malformed, bad[i]);
        assert_int_equal(d.pkt.opts.mss_present, i < 2);
        if (i < 2)
            assert_int_equal(d.pkt.opts.mss, 536);
        assert_false(d.pkt.opts.ts_present);
        assert_int_equal(d.pkt.payload_len, T_PAYLOAD_LEN);
        assert_ptr_equal(d.pkt.payload, d.buf + 40 + lens[i]);
        dec_free(&d);
    }
}

static void test_tcp_bad_data_offset_is_malformed(void **state)
{
    (void)state;
    struct pk k;
    link_packet(&k, CAP_LINKTYPE_RAW, false);
    k.b[32] = 0x40; /* a 16-byte TCP header */
    expect_status(CAP_LINKTYPE_RAW, &k, CAP_ST_MALFORMED);
    k.b[32] = 0xf0; /* a 60-byte header of which 28 bytes are there */
    expect_status(CAP_LINKTYPE_RAW, &k, CAP_ST_MALFORMED);
}

static void test_snaplen_cutting_tcp_options_keeps_the_segment(void **state)
{
    (void)state;
    /* tcpdump -s 64 on Linux: 14 + 20 + 20 bytes of headers, then 10 of the
     * 12 option bytes (NOP NOP TS); the segment carries 100 bytes. */
    static const uint8_t ts[12] = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};
    struct pk k = {0};
    eth(&k, 0x0800);
    size_t ip = ip4(&k, 6, 0, 0);
    tcp_hdr(&k, T_FLAGS, ts, sizeof(ts));
    fill(&k, 'x', 100);
    ip4_done(&k, ip);
    struct dec d;
    dec_run(&d, CAP_LINKTYPE_ETHERNET, k.b, 64);
    assert_int_equal(d.st, CAP_ST_TCP);
    assert_int_equal(d.pkt.seq, T_SEQ);
    assert_int_equal(d.pkt.flags, T_FLAGS & 0x3f);
    assert_int_equal(d.pkt.payload_len, 0);
    assert_int_equal(d.pkt.payload_wire, 100);
    assert_false(d.pkt.opts.malformed);
    assert_false(d.pkt.opts.ts_present);
    dec_free(&d);
    /* An IP length too short for the header it announces is still malformed. */
    k.n = 0;
    eth(&k, 0x0800);
    ip = ip4(&k, 6, 0, 0);
    tcp_hdr(&k, T_FLAGS, ts, sizeof(ts));
    ip4_done(&k, ip);
    k.b[14 + 3] = 20 + 24; /* IP total length: 24 bytes of TCP for a 32-byte header */
    dec_run(&d, CAP_LINKTYPE_ETHERNET, k.b, 64);
    assert_int_equal(d.st, CAP_ST_MALFORMED);
    dec_free(&d);
}

static void test_ip_total_length_zero_uses_captured_bytes(void **state)
{
    (void)state;
    /* TSO: the host handed a 1500-byte segment to the NIC with IP length 0. */
    struct pk k = {0};
    eth(&k, 0x0800);
    ip4(&k, 6, 0, 0);
    tcp_hdr(&k, T_FLAGS, NULL, 0);
    for (uint32_t i = 0; i < 1500; i++)
        put(&k, 1, i);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_int_equal(d.st, CAP_ST_TCP);
    assert_int_equal(d.pkt.payload_len, 1500);
    assert_int_equal(d.pkt.payload_wire, 1500);
    assert_ptr_equal(d.pkt.payload, d.buf + 54);
    dec_free(&d);
}

static void test_snaplen_cut_keeps_wire_length(void **state)
{
    (void)state;
    struct pk k = {0};
    eth(&k, 0x0800);
    size_t ip = ip4(&k, 6, 0, 0);
    tcp_hdr(&k, T_FLAGS, NULL, 0);
    fill(&k, 'x', 100);
    ip4_done(&k, ip);
    struct dec d;
    dec_run(&d, CAP_LINKTYPE_ETHERNET, k.b, 54 + 30);
    assert_int_equal(d.st, CAP_ST_TCP);
    assert_int_equal(d.pkt.payload_len, 30);
    assert_int_equal(d.pkt.payload_wire, 100);
    dec_free(&d);

    k.n = 0;
    ip = ip6(&k, 60);
    ip6_ext(&k, 6, 8);
    tcp_hdr(&k, T_FLAGS, NULL, 0);
    fill(&k, 'y', 200);
    ip6_done(&k, ip);
    dec_run(&d, CAP_LINKTYPE_IPV6, k.b, 68 + 1);
    assert_int_equal(d.st, CAP_ST_TCP);
    assert_int_equal(d.pkt.payload_len, 1);
    assert_int_equal(d.pkt.payload_wire, 200);
    dec_free(&d);
}

/* ---- robustness ---- */

struct tmpl {
    uint32_t linktype;
    struct pk k;
    size_t hdr_end; /* first payload byte */
    size_t ip_end;  /* end of the IP datagram (padding after it) */
    size_t optlen;  /* TCP option bytes before hdr_end */
};

#define N_TMPL 22

/* Fills t[] with valid packets of different shapes; returns how many. */
static size_t build_templates(struct tmpl *t)
{
    static const uint8_t opts[12] = {2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 1, 1};
    size_t n = 0, ip;
    memset(t, 0, N_TMPL * sizeof(*t));

    t[n].linktype = CAP_LINKTYPE_ETHERNET;
    eth(&t[n].k, 0x8100);
    vlan_tag(&t[n].k, 5, 0x0800);
    ip = ip4(&t[n].k, 6, 0, 8);
    tcp_std(&t[n].k, opts, sizeof(opts));
    ip4_done(&t[n].k, ip);
    t[n].hdr_end = 18 + 28 + 32;
    t[n].optlen = sizeof(opts);
    n++;

    t[n].linktype = CAP_LINKTYPE_ETHERNET; /* padded bare ACK + 2 bytes */
    eth(&t[n].k, 0x0800);
    ip = ip4(&t[n].k, 6, 0, 0);
    tcp_hdr(&t[n].k, T_FLAGS, NULL, 0);
    putn(&t[n].k, "hi", 2);
    ip4_done(&t[n].k, ip);
    fill(&t[n].k, 0, 4);
    t[n].hdr_end = 54;
    t[n].ip_end = 56;
    n++;

    t[n].linktype = CAP_LINKTYPE_ETHERNET;
    eth(&t[n].k, 0x88a8);
    vlan_tag(&t[n].k, 1, 0x8100);
    vlan_tag(&t[n].k, 2, 0x86dd);
    ip = ip6(&t[n].k, 0);
    ip6_ext(&t[n].k, 43, 8);
    ip6_ext(&t[n].k, 44, 16);
    ip6_frag(&t[n].k, 60, 0, false, 9);
    ip6_ext(&t[n].k, 6, 8);
    tcp_std(&t[n].k, opts, sizeof(opts));
    ip6_done(&t[n].k, ip);
    t[n].hdr_end = 22 + 40 + 40 + 32;
    t[n].optlen = sizeof(opts);
    n++;

    t[n].linktype = CAP_LINKTYPE_ETHERNET;
    eth(&t[n].k, 0);
    static const uint8_t snap[8] = {0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00};
    putn(&t[n].k, snap, sizeof(snap));
    ip_tcp(&t[n].k, false);
    set16(&t[n].k, 12, t[n].k.n - 14);
    t[n].hdr_end = 22 + 40;
    n++;

    for (int l = 0; l < 10; l++) {
        for (int v6 = 0; v6 < 2; v6++) {
            uint32_t lt = all_links[l];
            if ((lt == CAP_LINKTYPE_IPV4 && v6) || (lt == CAP_LINKTYPE_IPV6 && !v6))
                continue;
            t[n].linktype = lt;
            link_packet(&t[n].k, lt, v6);
            t[n].hdr_end = link_hdr_len(lt) + (v6 ? 60 : 40);
            n++;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (t[i].ip_end == 0)
            t[i].ip_end = t[i].k.n;
    return n;
}

static void test_every_truncation_is_safe_and_not_tcp_until_payload(void **state)
{
    (void)state;
    static struct tmpl t[N_TMPL];
    size_t nt = build_templates(t);
    assert_int_equal(nt, N_TMPL);
    for (size_t i = 0; i < nt; i++) {
        struct dec d;
        dec_pk(&d, t[i].linktype, &t[i].k);
        assert_int_equal(d.st, CAP_ST_TCP);
        size_t full = t[i].ip_end - t[i].hdr_end;
        assert_int_equal(d.pkt.payload_len, full);
        assert_int_equal(d.pkt.payload_wire, full);
        dec_free(&d);
        for (size_t cut = 0; cut < t[i].k.n; cut++) {
            dec_run(&d, t[i].linktype, t[i].k.b, cut);
            if (cut >= t[i].hdr_end - t[i].optlen && cut < t[i].hdr_end) {
                /* Options cut by the snap length: still TCP, the payload all missing. */
                assert_int_equal(d.st, CAP_ST_TCP);
                assert_int_equal(d.pkt.payload_len, 0);
                assert_int_equal(d.pkt.payload_wire, full);
                assert_false(d.pkt.opts.malformed);
            } else if (cut < t[i].hdr_end) {
                if (d.st == CAP_ST_TCP)
                    fail_msg("template %zu cut at %zu: headers cut but status tcp", i, cut);
                /* 802.3 with a cut LLC header reads as "not IP"; the rest
                 * must say malformed. */
                if (i != 3 || cut >= 22)
                    assert_int_equal(d.st, CAP_ST_MALFORMED);
            } else {
                assert_int_equal(d.st, CAP_ST_TCP);
                size_t have = (cut < t[i].ip_end ? cut : t[i].ip_end) - t[i].hdr_end;
                assert_ptr_equal(d.pkt.payload, d.buf + t[i].hdr_end);
                assert_int_equal(d.pkt.payload_len, have);
                assert_int_equal(d.pkt.payload_wire, full);
            }
            dec_free(&d);
        }
    }
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void check_invariants(const struct dec *d)
{
    const struct cap_packet *p = &d->pkt;
    assert_in_range(d->st, CAP_ST_TCP, CAP_ST__COUNT - 1);
    assert_in_range(p->nvlan, 0, CAP_MAX_VLAN_TAGS);
    if (d->st == CAP_ST_TCP) {
        assert_true(p->ipver == 4 || p->ipver == 6);
        assert_non_null(p->payload);
        assert_true(p->payload >= d->buf && p->payload <= d->buf + d->len);
        assert_true(p->payload_len <= (size_t)(d->buf + d->len - p->payload));
        assert_true(p->payload_len <= p->payload_wire);
    }
}

static void test_random_buffers_on_every_link_type(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    uint8_t buf[200];
    struct pk k;
    for (int l = 0; l < 10; l++) {
        unsigned tcp_seen = 0;
        for (int iter = 0; iter < 10000; iter++) {
            size_t len = (size_t)(xorshift(&seed) % 201);
            for (size_t j = 0; j < len; j++)
                buf[j] = (uint8_t)xorshift(&seed);
            if (iter & 1) {
                /* Half start from a valid packet with a few bytes changed. */
                link_packet(&k, all_links[l],
                            all_links[l] == CAP_LINKTYPE_IPV6 ||
                                (all_links[l] != CAP_LINKTYPE_IPV4 && (xorshift(&seed) & 1)));
                size_t c = k.n < len ? k.n : len;
                memcpy(buf, k.b, c);
                unsigned flips = (unsigned)(xorshift(&seed) % 3);
                for (unsigned f = 0; f < flips && len; f++)
                    buf[xorshift(&seed) % len] = (uint8_t)xorshift(&seed);
            }
            struct dec d;
            dec_run(&d, all_links[l], buf, len);
            check_invariants(&d);
            if (d.st == CAP_ST_TCP)
                tcp_seen++;
            dec_free(&d);
        }
        /* The valid starts must decode often enough to show that the deep
         * paths ran. */
        if (tcp_seen < 500)
            fail_msg("link type %u: only %u of 10000 buffers decoded as TCP", all_links[l],
                     tcp_seen);
    }
}

/* ---- tunnels, tags and labels ---- */

/* An outer IPv4 header between tunnel endpoints 10.0.0.1 and 10.0.0.2 (or
 * reversed); returns its offset for ip4_done(). */
static size_t ip4_outer(struct pk *k, uint32_t proto, bool reversed)
{
    static const uint8_t a[8] = {10, 0, 0, 1, 10, 0, 0, 2};
    static const uint8_t b[8] = {10, 0, 0, 2, 10, 0, 0, 1};
    size_t at = k->n;
    put(k, 1, 0x45);
    put(k, 1, 0);
    put(k, 2, 0);
    put(k, 2, 7);
    put(k, 2, 0);
    put(k, 1, 200);
    put(k, 1, proto);
    put(k, 2, 0);
    putn(k, reversed ? b : a, 8);
    return at;
}

enum tun {
    TUN_GRE,
    TUN_GRE_CSUM_KEY_SEQ,
    TUN_GRE_TEB_VLAN,
    TUN_ERSPAN1,
    TUN_ERSPAN2,
    TUN_ERSPAN3,
    TUN_ERSPAN3_SUB,
    TUN_VXLAN,
    TUN_GENEVE_OPTS,
    TUN_GENEVE_IP,
    TUN_IPIP,
    TUN_6IN4,
    TUN_4IN6,
    TUN_MPLS2,
    TUN_MPLS_PW,
    TUN_PPPOE,
    TUN_PPTP,
    TUN_PPTP_PFC,
    TUN__COUNT
};

static const char *const tun_paths[TUN__COUNT] = {
    "gre/ipv4",
    "gre(42)/ipv4",
    "vlan(7)/gre/vlan(20)/ipv4",
    "vlan(7)/erspan1/ipv4",
    "vlan(7)/erspan(12)/vlan(20)/ipv4",
    "erspan3(300)/ipv4",
    "erspan3(301)/ipv4",
    "vxlan(4242)/ipv4",
    "geneve(77)/ipv4",
    "geneve(78)/ipv4",
    "ipip/ipv4",
    "ipip/ipv6",
    "ipip/ipv4",
    "mpls(16)/mpls(17)/ipv4",
    "mpls(18)/vlan(20)/ipv4",
    "pppoe(7)/ipv4",
    "pptp(99)/ipv4",
    "pptp(99)/ipv4",
};

/* The inner Ethernet frame (with an optional tag) around the standard
 * segment. */
static void inner_eth(struct pk *k, bool tag)
{
    eth(k, tag ? 0x8100 : 0x0800);
    if (tag)
        vlan_tag(k, 20, 0x0800);
    ip_tcp(k, false);
}

/* Builds tunnel case `t` (outer Ethernet with VLAN 7 where the path says
 * so); `vid` and `rev` vary the outer VLAN and the endpoints' order, `label`
 * the first MPLS label, `session` the ERSPAN session / VNI. */
static void tun_packet(struct pk *k, enum tun t, uint32_t vid, bool rev, uint32_t label,
                       uint32_t session)
{
    k->n = 0;
    bool outer_vlan = t == TUN_GRE_TEB_VLAN || t == TUN_ERSPAN1 || t == TUN_ERSPAN2;
    if (t == TUN_4IN6) {
        eth(k, 0x86dd);
        size_t o = ip6(k, 4);
        ip_tcp(k, false);
        ip6_done(k, o);
        return;
    }
    if (t == TUN_MPLS2 || t == TUN_MPLS_PW) {
        eth(k, 0x8847);
        if (t == TUN_MPLS2)
            put(k, 4, label << 12 | 64);
        put(k, 4, (t == TUN_MPLS2 ? 17u : 18u) << 12 | 0x100 | 64);
        if (t == TUN_MPLS2) {
            ip_tcp(k, false);
        } else {
            put(k, 4, 0); /* pseudowire control word */
            inner_eth(k, true);
        }
        return;
    }
    if (t == TUN_PPPOE) {
        eth(k, 0x8864);
        put(k, 1, 0x11);
        put(k, 1, 0);
        put(k, 2, 7);
        size_t len_at = k->n;
        put(k, 2, 0);
        put(k, 2, 0x0021);
        size_t start = k->n;
        ip_tcp(k, false);
        set16(k, len_at, k->n - start + 2);
        return;
    }
    if (outer_vlan) {
        eth(k, 0x8100);
        vlan_tag(k, vid, 0x0800);
    } else {
        eth(k, 0x0800);
    }
    uint32_t proto = t == TUN_VXLAN || t == TUN_GENEVE_OPTS || t == TUN_GENEVE_IP ? 17
                     : t == TUN_IPIP                                              ? 4
                     : t == TUN_6IN4                                              ? 41
                                                                                  : 47;
    size_t o = ip4_outer(k, proto, rev);
    switch (t) {
    case TUN_GRE:
        put(k, 2, 0);
        put(k, 2, 0x0800);
        ip_tcp(k, false);
        break;
    case TUN_GRE_CSUM_KEY_SEQ:
        put(k, 2, 0xb000);
        put(k, 2, 0x0800);
        put(k, 4, 0);  /* checksum, reserved */
        put(k, 4, 42); /* key */
        put(k, 4, 9);  /* sequence */
        ip_tcp(k, false);
        break;
    case TUN_GRE_TEB_VLAN:
        put(k, 2, 0);
        put(k, 2, 0x6558);
        inner_eth(k, true);
        break;
    case TUN_ERSPAN1:
        put(k, 2, 0);
        put(k, 2, 0x88be);
        inner_eth(k, false);
        break;
    case TUN_ERSPAN2:
        put(k, 2, 0x1000);
        put(k, 2, 0x88be);
        put(k, 4, 1);
        put(k, 2, 1u << 12 | 20); /* version 1, VLAN 20 */
        put(k, 2, session);       /* cos, en, t, session */
        put(k, 4, 0);
        inner_eth(k, true);
        break;
    case TUN_ERSPAN3:
    case TUN_ERSPAN3_SUB:
        put(k, 2, 0x1000);
        put(k, 2, 0x22eb);
        put(k, 4, 1);
        put(k, 2, 2u << 12);
        put(k, 2, t == TUN_ERSPAN3 ? 300 : 301);
        put(k, 4, 0xdeadbeef); /* timestamp */
        put(k, 2, 0);          /* SGT */
        put(k, 2, t == TUN_ERSPAN3_SUB ? 1 : 0);
        if (t == TUN_ERSPAN3_SUB)
            fill(k, 0x55, 8);
        inner_eth(k, false);
        break;
    case TUN_VXLAN:
    case TUN_GENEVE_OPTS:
    case TUN_GENEVE_IP: {
        size_t u = k->n;
        put(k, 2, 51000);
        put(k, 2, t == TUN_VXLAN ? 4789 : 6081);
        put(k, 2, 0);
        put(k, 2, 0);
        if (t == TUN_VXLAN) {
            put(k, 4, 0x08000000u);
            put(k, 4, session << 8);
            inner_eth(k, false);
        } else {
            put(k, 1, t == TUN_GENEVE_OPTS ? 2 : 0); /* 2 words of options */
            put(k, 1, 0);
            put(k, 2, t == TUN_GENEVE_OPTS ? 0x6558 : 0x0800);
            put(k, 4, (t == TUN_GENEVE_OPTS ? 77u : 78u) << 8);
            if (t == TUN_GENEVE_OPTS) {
                fill(k, 0x33, 8);
                inner_eth(k, false);
            } else {
                ip_tcp(k, false);
            }
        }
        set16(k, u + 4, k->n - u);
        break;
    }
    case TUN_IPIP:
        ip_tcp(k, false);
        break;
    case TUN_6IN4:
        ip_tcp(k, true);
        break;
    case TUN_PPTP:
    case TUN_PPTP_PFC: {
        put(k, 2, 0x2000 | 0x1000 | 1); /* K, S, version 1 */
        put(k, 2, 0x880b);
        size_t len_at = k->n;
        put(k, 2, 0);
        put(k, 2, 99); /* call id */
        put(k, 4, 5);  /* sequence */
        size_t start = k->n;
        if (t == TUN_PPTP) {
            put(k, 1, 0xff);
            put(k, 1, 0x03);
            put(k, 2, 0x0021);
        } else {
            put(k, 1, 0x21);
        }
        ip_tcp(k, false);
        set16(k, len_at, k->n - start);
        break;
    }
    default:
        break;
    }
    ip4_done(k, o);
}

static void test_every_tunnel_decodes_the_inner_segment(void **state)
{
    (void)state;
    for (int t = 0; t < TUN__COUNT; t++) {
        struct pk k;
        tun_packet(&k, (enum tun)t, 7, false, 16, t == TUN_VXLAN ? 4242 : 12);
        struct dec d;
        dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
        bool v6 = t == TUN_6IN4;
        /* The standard segment is the last thing in every packet. */
        assert_std(&d, v6, k.n - T_PAYLOAD_LEN);
        char path[CAP_ENCAP_STR_MAX];
        cap_encap_str(path, sizeof(path), d.pkt.encap, d.pkt.nencap, d.pkt.ipver);
        assert_string_equal(path, tun_paths[t]);
        if (t == TUN_ERSPAN2 || t == TUN_GRE_TEB_VLAN) {
            assert_int_equal(d.pkt.nvlan, 1); /* the innermost frame's tags */
            assert_int_equal(d.pkt.vlan[0], 20);
        }
        dec_free(&d);
    }
}

static uint64_t tun_ctx(enum tun t, uint32_t vid, bool rev, uint32_t label, uint32_t session,
                        const struct cap_decode_opts *o)
{
    struct pk k;
    tun_packet(&k, t, vid, rev, label, session);
    struct cap_packet p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(cap_decode_ex(&p, CAP_LINKTYPE_ETHERNET, k.b, (uint32_t)k.n, o), CAP_ST_TCP);
    return p.ctx;
}

/* The observation context changes with what tells observations apart and
 * with nothing that differs between the two directions of one connection. */
static void test_context_names_the_observation(void **state)
{
    (void)state;
    struct cap_decode_opts o;
    cap_decode_opts_defaults(&o);
    uint64_t base = tun_ctx(TUN_ERSPAN2, 7, false, 16, 12, &o);
    assert_true(base != 0);
    assert_true(base == tun_ctx(TUN_ERSPAN2, 7, true, 16, 12, &o));  /* endpoints swapped */
    assert_true(base != tun_ctx(TUN_ERSPAN2, 8, false, 16, 12, &o)); /* other outer VLAN */
    assert_true(base != tun_ctx(TUN_ERSPAN2, 7, false, 16, 13, &o)); /* other session */
    assert_true(tun_ctx(TUN_VXLAN, 7, false, 16, 1, &o) != tun_ctx(TUN_VXLAN, 7, false, 16, 2, &o));
    /* MPLS labels and GRE keys may differ per direction: not in the context. */
    assert_true(tun_ctx(TUN_MPLS2, 7, false, 16, 0, &o) == tun_ctx(TUN_MPLS2, 7, false, 99, 0, &o));
    assert_true(tun_ctx(TUN_GRE, 7, false, 0, 0, &o) == tun_ctx(TUN_GRE, 7, true, 0, 0, &o));
    o.vlan_in_ctx = false;
    assert_true(tun_ctx(TUN_ERSPAN2, 7, false, 16, 12, &o) ==
                tun_ctx(TUN_ERSPAN2, 8, false, 16, 12, &o));
    o.tunnel_in_ctx = false;
    assert_true(tun_ctx(TUN_ERSPAN2, 7, false, 16, 12, &o) ==
                tun_ctx(TUN_ERSPAN2, 7, false, 16, 13, &o));
    assert_true(tun_ctx(TUN_GRE, 7, false, 0, 0, &o) == 0);
    /* A plain packet has no context. */
    struct pk k;
    link_packet(&k, CAP_LINKTYPE_ETHERNET, false);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_int_equal(d.pkt.ctx, 0);
    assert_int_equal(d.pkt.nencap, 0);
    dec_free(&d);
}

static void test_udp_tunnel_ports_follow_the_options(void **state)
{
    (void)state;
    struct pk k;
    tun_packet(&k, TUN_VXLAN, 7, false, 16, 5);
    struct cap_decode_opts o;
    cap_decode_opts_defaults(&o);
    struct cap_packet p;
    o.vxlan_port = 0;
    assert_int_equal(cap_decode_ex(&p, CAP_LINKTYPE_ETHERNET, k.b, (uint32_t)k.n, &o),
                     CAP_ST_NOT_TCP);
    o.vxlan_port = 8472; /* Linux's old default: 4789 is now just UDP */
    assert_int_equal(cap_decode_ex(&p, CAP_LINKTYPE_ETHERNET, k.b, (uint32_t)k.n, &o),
                     CAP_ST_NOT_TCP);
    /* The I flag missing: not VXLAN. */
    o.vxlan_port = 4789;
    size_t vx = 14 + 20 + 8;
    k.b[vx] = 0;
    assert_int_equal(cap_decode_ex(&p, CAP_LINKTYPE_ETHERNET, k.b, (uint32_t)k.n, &o),
                     CAP_ST_ENCAP_UNSUPPORTED);
    assert_string_equal(p.unsupported, "vxlan-no-vni");
}

static void test_unsupported_encapsulations_say_what(void **state)
{
    (void)state;
    struct pk k;
    /* GRE with the routing bit, an unknown GRE protocol, version 2. */
    static const uint32_t gre_words[3][2] = {{0x4000, 0x0800}, {0x0000, 0x88b5}, {0x0002, 0x0800}};
    static const char *const whats[3] = {"gre-routing", "gre-protocol", "gre-version"};
    for (int i = 0; i < 3; i++) {
        k.n = 0;
        eth(&k, 0x0800);
        size_t o = ip4_outer(&k, 47, false);
        put(&k, 2, gre_words[i][0]);
        put(&k, 2, gre_words[i][1]);
        ip_tcp(&k, false);
        ip4_done(&k, o);
        struct dec d;
        dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
        assert_int_equal(d.st, CAP_ST_ENCAP_UNSUPPORTED);
        assert_string_equal(d.pkt.unsupported, whats[i]);
        assert_string_equal(cap_status_name(d.st), "encap_unsupported");
        dec_free(&d);
    }
    /* PPTP carrying MPPE-encrypted PPP. */
    tun_packet(&k, TUN_PPTP_PFC, 7, false, 16, 0);
    size_t ppp = 14 + 20 + 12;
    k.b[ppp] = 0xfd;
    expect_status(CAP_LINKTYPE_ETHERNET, &k, CAP_ST_ENCAP_UNSUPPORTED);
    /* MPLS: an unknown payload nibble, and too many labels. */
    k.n = 0;
    eth(&k, 0x8847);
    put(&k, 4, 16u << 12 | 0x100 | 64);
    fill(&k, 0x90, 40);
    expect_status(CAP_LINKTYPE_ETHERNET, &k, CAP_ST_ENCAP_UNSUPPORTED);
    k.n = 0;
    eth(&k, 0x8847);
    for (int i = 0; i <= CAP_MAX_MPLS_LABELS; i++)
        put(&k, 4, 16u << 12 | 64);
    ip_tcp(&k, false);
    expect_status(CAP_LINKTYPE_ETHERNET, &k, CAP_ST_ENCAP_UNSUPPORTED);
    /* PPPoE carrying LCP is not IP. */
    tun_packet(&k, TUN_PPPOE, 7, false, 16, 0);
    set16(&k, 14 + 6, 0xc021);
    expect_status(CAP_LINKTYPE_ETHERNET, &k, CAP_ST_NOT_IP);
}

/* IP in IP nested past CAP_MAX_TUNNEL_DEPTH is refused, not followed. */
static void test_tunnel_depth_limit(void **state)
{
    (void)state;
    for (int depth = 1; depth <= CAP_MAX_TUNNEL_DEPTH + 2; depth++) {
        struct pk k = {{0}, 0};
        size_t at[CAP_MAX_TUNNEL_DEPTH + 3];
        for (int i = 0; i < depth; i++)
            at[i] = ip4_outer(&k, 4, false);
        ip_tcp(&k, false);
        for (int i = depth - 1; i >= 0; i--)
            ip4_done(&k, at[i]);
        struct dec d;
        dec_pk(&d, CAP_LINKTYPE_RAW, &k);
        if (depth <= CAP_MAX_TUNNEL_DEPTH) { /* `depth` IP-in-IP layers */
            assert_int_equal(d.st, CAP_ST_TCP);
            assert_int_equal(d.pkt.depth, depth);
        } else {
            assert_int_equal(d.st, CAP_ST_ENCAP_UNSUPPORTED);
            assert_string_equal(d.pkt.unsupported, "too-many-tunnels");
        }
        dec_free(&d);
    }
}

/* Every tunnel case cut at every length: never a read past the bytes
 * (ASan), a TCP status only once the whole TCP header is there. */
static void test_every_tunnel_truncation_is_safe(void **state)
{
    (void)state;
    for (int t = 0; t < TUN__COUNT; t++) {
        struct pk k;
        tun_packet(&k, (enum tun)t, 7, false, 16, 12);
        size_t tcp_end = k.n - T_PAYLOAD_LEN;
        for (size_t len = 0; len < k.n; len++) {
            struct dec d;
            dec_run(&d, CAP_LINKTYPE_ETHERNET, k.b, len);
            if (len < tcp_end)
                assert_int_not_equal(d.st, CAP_ST_TCP);
            else if (d.st == CAP_ST_TCP)
                assert_true(d.pkt.payload_len <= len - tcp_end);
            dec_free(&d);
        }
    }
}

/* A tunnel whose outer IPv4 datagram is fragmented: the fragments describe
 * the outer layer, and the joined payload decodes on through the tunnel. */
static void test_fragmented_tunnel_decodes_after_reassembly(void **state)
{
    (void)state;
    struct pk whole;
    tun_packet(&whole, TUN_GRE, 7, false, 16, 0);
    const size_t ip_at = 14, pay_at = 14 + 20;
    size_t pay_len = whole.n - pay_at;
    /* Fragment 1: the first 24 payload bytes; fragment 2: the rest. */
    struct pk f1 = {{0}, 0}, f2 = {{0}, 0};
    putn(&f1, whole.b, pay_at);
    putn(&f1, whole.b + pay_at, 24);
    f1.b[ip_at + 6] = 0x20; /* MF */
    set16(&f1, ip_at + 2, 20 + 24);
    putn(&f2, whole.b, pay_at);
    putn(&f2, whole.b + pay_at + 24, pay_len - 24);
    set16(&f2, ip_at + 6, 24 / 8);
    set16(&f2, ip_at + 2, 20 + pay_len - 24);
    struct dec d1, d2;
    dec_pk(&d1, CAP_LINKTYPE_ETHERNET, &f1);
    dec_pk(&d2, CAP_LINKTYPE_ETHERNET, &f2);
    assert_true(d1.pkt.frag.present);
    assert_int_equal(d1.pkt.frag.proto, 47);
    assert_int_equal(d1.pkt.frag.off, 0);
    assert_true(d1.pkt.frag.more);
    assert_int_equal(d1.pkt.frag.nencap, 0);
    assert_true(d1.pkt.frag_first);
    assert_int_equal(d2.st, CAP_ST_FRAGMENT);
    assert_int_equal(d2.pkt.frag.off, 24);
    assert_false(d2.pkt.frag.more);
    assert_int_equal(d2.pkt.frag.len, pay_len - 24);
    uint8_t *joined = malloc(pay_len);
    assert_non_null(joined);
    memcpy(joined, d1.pkt.frag.data, 24);
    memcpy(joined + 24, d2.pkt.frag.data, pay_len - 24);
    struct cap_decode_opts o;
    cap_decode_opts_defaults(&o);
    struct cap_packet p = d1.pkt;
    assert_int_equal(cap_decode_payload(&p, joined, pay_len, &o), CAP_ST_TCP);
    assert_int_equal(p.payload_len, T_PAYLOAD_LEN);
    assert_memory_equal(p.payload, T_PAYLOAD, T_PAYLOAD_LEN);
    assert_false(p.frag_first);
    char path[CAP_ENCAP_STR_MAX];
    cap_encap_str(path, sizeof(path), p.encap, p.nencap, p.ipver);
    assert_string_equal(path, "gre/ipv4");
    free(joined);
    dec_free(&d1);
    dec_free(&d2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_link_type_decodes_every_field),
        cmocka_unit_test(test_single_family_link_types_reject_the_other_version),
        cmocka_unit_test(test_ethernet_padding_is_not_payload),
        cmocka_unit_test(test_vlan_tags_read_in_order),
        cmocka_unit_test(test_vlan_tags_beyond_limit_are_malformed),
        cmocka_unit_test(test_8023_llc_snap_carries_ipv4),
        cmocka_unit_test(test_unknown_ethertype_is_not_ip),
        cmocka_unit_test(test_bsd_null_inet6_values_in_either_byte_order),
        cmocka_unit_test(test_unsupported_link_type),
        cmocka_unit_test(test_ipv4_options_are_skipped),
        cmocka_unit_test(test_ipv6_extension_header_chain),
        cmocka_unit_test(test_ipv6_ipid_is_fragment_id_when_fragmented),
        cmocka_unit_test(test_ipv6_extension_chain_over_limit_is_malformed),
        cmocka_unit_test(test_first_fragments_decode_tcp),
        cmocka_unit_test(test_non_first_fragments_have_no_tcp),
        cmocka_unit_test(test_udp_and_esp_are_not_tcp),
        cmocka_unit_test(test_ipv4_inconsistent_headers_are_malformed),
        cmocka_unit_test(test_tcp_options_parsed),
        cmocka_unit_test(test_tcp_option_overrunning_header_is_malformed),
        cmocka_unit_test(test_tcp_bad_data_offset_is_malformed),
        cmocka_unit_test(test_ip_total_length_zero_uses_captured_bytes),
        cmocka_unit_test(test_snaplen_cut_keeps_wire_length),
        cmocka_unit_test(test_every_truncation_is_safe_and_not_tcp_until_payload),
        cmocka_unit_test(test_snaplen_cutting_tcp_options_keeps_the_segment),
        cmocka_unit_test(test_random_buffers_on_every_link_type),
        cmocka_unit_test(test_every_tunnel_decodes_the_inner_segment),
        cmocka_unit_test(test_context_names_the_observation),
        cmocka_unit_test(test_udp_tunnel_ports_follow_the_options),
        cmocka_unit_test(test_unsupported_encapsulations_say_what),
        cmocka_unit_test(test_tunnel_depth_limit),
        cmocka_unit_test(test_every_tunnel_truncation_is_safe),
        cmocka_unit_test(test_fragmented_tunnel_decodes_after_reassembly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
