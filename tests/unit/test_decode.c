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

/* Values every built TCP header carries unless a test overrides them. */
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

static const uint8_t v4_src[4] = {192, 0, 2, 1};
static const uint8_t v4_dst[4] = {198, 51, 100, 2};
static const uint8_t v6_src[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t v6_dst[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

/* ---- packet builder ---- */

struct pk {
    uint8_t b[2048];
    size_t n;
};

static void put8(struct pk *k, unsigned v)
{
    k->b[k->n++] = (uint8_t)v;
}

static void put16(struct pk *k, unsigned v)
{
    put8(k, (v >> 8) & 0xff);
    put8(k, v & 0xff);
}

static void put32(struct pk *k, uint32_t v)
{
    put16(k, v >> 16);
    put16(k, v & 0xffff);
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

static void set16(struct pk *k, size_t at, unsigned v)
{
    k->b[at] = (uint8_t)(v >> 8);
    k->b[at + 1] = (uint8_t)v;
}

static void eth(struct pk *k, unsigned type)
{
    static const uint8_t macs[12] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};
    putn(k, macs, sizeof(macs));
    put16(k, type);
}

static void vlan_tag(struct pk *k, unsigned tci, unsigned next_type)
{
    put16(k, tci);
    put16(k, next_type);
}

static void sll(struct pk *k, unsigned proto)
{
    put16(k, 0); /* packet type: to us */
    put16(k, 1); /* ARPHRD_ETHER */
    put16(k, 6);
    fill(k, 0xab, 8);
    put16(k, proto);
}

static void sll2(struct pk *k, unsigned proto)
{
    put16(k, proto);
    put16(k, 0);
    put32(k, 3); /* ifindex */
    put16(k, 1);
    put8(k, 0);
    put8(k, 6);
    fill(k, 0xab, 8);
}

static void bsd_af(struct pk *k, uint32_t af, bool big_endian)
{
    if (big_endian) {
        put32(k, af);
    } else {
        put8(k, af & 0xff);
        put8(k, (af >> 8) & 0xff);
        put8(k, (af >> 16) & 0xff);
        put8(k, af >> 24);
    }
}

/* Writes an IPv4 header with `optlen` bytes of options (NOPs then an EOL);
 * returns its offset for ip4_done(). */
static size_t ip4(struct pk *k, unsigned proto, unsigned frag, size_t optlen)
{
    size_t at = k->n;
    put8(k, 0x40 | (unsigned)(5 + optlen / 4));
    put8(k, 0);
    put16(k, 0); /* total length, set by ip4_done */
    put16(k, T_IPID);
    put16(k, frag);
    put8(k, T_TTL);
    put8(k, proto);
    put16(k, 0);
    putn(k, v4_src, 4);
    putn(k, v4_dst, 4);
    if (optlen) {
        fill(k, 1, optlen - 1);
        put8(k, 0);
    }
    return at;
}

static void ip4_done(struct pk *k, size_t at)
{
    set16(k, at + 2, (unsigned)(k->n - at));
}

static size_t ip6(struct pk *k, unsigned next)
{
    size_t at = k->n;
    put32(k, 0x60000000u | 0x00a00000u | T_FLOW); /* traffic class 0x0a */
    put16(k, 0);
    put8(k, next);
    put8(k, T_HLIM);
    putn(k, v6_src, 16);
    putn(k, v6_dst, 16);
    return at;
}

static void ip6_done(struct pk *k, size_t at)
{
    set16(k, at + 4, (unsigned)(k->n - at - 40));
}

/* A generic extension header (hop-by-hop, routing, destination options) of
 * `len` bytes, a multiple of 8. */
static void ip6_ext(struct pk *k, unsigned next, size_t len)
{
    put8(k, next);
    put8(k, (unsigned)(len / 8 - 1));
    fill(k, 0, len - 2);
}

static void ip6_frag(struct pk *k, unsigned next, unsigned off8, bool more, uint32_t id)
{
    put8(k, next);
    put8(k, 0);
    put16(k, off8 << 3 | (more ? 1u : 0u));
    put32(k, id);
}

static void tcp_hdr(struct pk *k, unsigned flags, const uint8_t *opts, size_t optlen)
{
    put16(k, T_SPORT);
    put16(k, T_DPORT);
    put32(k, T_SEQ);
    put32(k, T_ACK);
    put8(k, (unsigned)((20 + optlen) / 4) << 4);
    put8(k, flags);
    put16(k, T_WIN);
    put16(k, 0);
    put16(k, 0);
    if (optlen)
        putn(k, opts, optlen);
}

static void tcp_std(struct pk *k)
{
    tcp_hdr(k, T_FLAGS, NULL, 0);
    putn(k, T_PAYLOAD, T_PAYLOAD_LEN);
}

/* IPv4 + standard TCP segment with payload. */
static void ip4_tcp(struct pk *k)
{
    size_t ip = ip4(k, 6, 0, 0);
    tcp_std(k);
    ip4_done(k, ip);
}

static void ip6_tcp(struct pk *k)
{
    size_t ip = ip6(k, 6);
    tcp_std(k);
    ip6_done(k, ip);
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

/* Checks the standard TCP segment: ports, numbers, flags, payload at
 * `payload_at` in the decoded buffer. */
static void assert_std_tcp(const struct dec *d, size_t payload_at)
{
    const struct cap_packet *p = &d->pkt;
    assert_int_equal(d->st, CAP_ST_TCP);
    assert_int_equal(p->sport, T_SPORT);
    assert_int_equal(p->dport, T_DPORT);
    assert_int_equal(p->seq, T_SEQ);
    assert_int_equal(p->ack, T_ACK);
    assert_int_equal(p->flags, T_FLAGS);
    assert_int_equal(p->window, T_WIN);
    assert_ptr_equal(p->payload, d->buf + payload_at);
    assert_int_equal(p->payload_len, T_PAYLOAD_LEN);
    assert_int_equal(p->payload_wire, T_PAYLOAD_LEN);
    assert_memory_equal(p->payload, T_PAYLOAD, T_PAYLOAD_LEN);
}

static void assert_std_v4(const struct dec *d, size_t payload_at)
{
    assert_std_tcp(d, payload_at);
    assert_int_equal(d->pkt.ipver, 4);
    assert_int_equal(d->pkt.ttl, T_TTL);
    assert_int_equal(d->pkt.ipid, T_IPID);
    assert_true(cap_addr_is_v4(&d->pkt.src));
    assert_false(d->pkt.frag_first);
    assert_endpoints(&d->pkt, "192.0.2.1:40000", "198.51.100.2:25");
}

static void assert_std_v6(const struct dec *d, size_t payload_at)
{
    assert_std_tcp(d, payload_at);
    assert_int_equal(d->pkt.ipver, 6);
    assert_int_equal(d->pkt.ttl, T_HLIM);
    assert_int_equal(d->pkt.ipid, T_FLOW);
    assert_false(cap_addr_is_v4(&d->pkt.src));
    assert_false(d->pkt.frag_first);
    assert_endpoints(&d->pkt, "[2001:db8::1]:40000", "[2001:db8::2]:25");
}

/* ---- link layers ---- */

static void test_ethernet_ipv4_tcp_every_field(void **state)
{
    (void)state;
    struct pk k = {0};
    eth(&k, 0x0800);
    ip4_tcp(&k);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_std_v4(&d, 14 + 20 + 20);
    assert_int_equal(d.pkt.nvlan, 0);
    assert_false(d.pkt.opts.mss_present || d.pkt.opts.wscale_present || d.pkt.opts.sack_perm ||
                 d.pkt.opts.ts_present || d.pkt.opts.malformed);
    dec_free(&d);
}

static void test_ethernet_ipv6_tcp_every_field(void **state)
{
    (void)state;
    struct pk k = {0};
    eth(&k, 0x86dd);
    ip6_tcp(&k);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_std_v6(&d, 14 + 40 + 20);
    dec_free(&d);
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
    k.n = 0;
    eth(&k, 0x86dd);
    ip6_tcp(&k);
    fill(&k, 0xee, 5);
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_std_v6(&d, 14 + 40 + 20);
    dec_free(&d);
}

static void test_vlan_8021q_tag_read_and_skipped(void **state)
{
    (void)state;
    struct pk k = {0};
    eth(&k, 0x8100);
    vlan_tag(&k, 0xa064, 0x0800); /* PCP 5, VID 100 */
    ip4_tcp(&k);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_std_v4(&d, 18 + 40);
    assert_int_equal(d.pkt.nvlan, 1);
    assert_int_equal(d.pkt.vlan[0], 100);
    dec_free(&d);
}

static void test_qinq_8021ad_and_9100_tags_in_order(void **state)
{
    (void)state;
    static const unsigned outer[2] = {0x88a8, 0x9100};
    for (int i = 0; i < 2; i++) {
        struct pk k = {0};
        eth(&k, outer[i]);
        vlan_tag(&k, 0x00c8, 0x8100); /* VID 200 */
        vlan_tag(&k, 0x112c, 0x86dd); /* DEI set, VID 300 */
        ip6_tcp(&k);
        struct dec d;
        dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
        assert_std_v6(&d, 22 + 60);
        assert_int_equal(d.pkt.nvlan, 2);
        assert_int_equal(d.pkt.vlan[0], 200);
        assert_int_equal(d.pkt.vlan[1], 300);
        dec_free(&d);
    }
}

static void test_vlan_tags_beyond_limit_are_malformed(void **state)
{
    (void)state;
    struct pk k = {0};
    eth(&k, 0x8100);
    for (unsigned i = 1; i < CAP_MAX_VLAN_TAGS; i++)
        vlan_tag(&k, i, 0x8100);
    vlan_tag(&k, CAP_MAX_VLAN_TAGS, 0x0800);
    ip4_tcp(&k);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_int_equal(d.st, CAP_ST_TCP);
    assert_int_equal(d.pkt.nvlan, CAP_MAX_VLAN_TAGS);
    assert_int_equal(d.pkt.vlan[CAP_MAX_VLAN_TAGS - 1], CAP_MAX_VLAN_TAGS);
    dec_free(&d);

    k.n = 0;
    eth(&k, 0x8100);
    for (unsigned i = 0; i < CAP_MAX_VLAN_TAGS; i++)
        vlan_tag(&k, i + 1, 0x8100);
    vlan_tag(&k, 9, 0x0800);
    ip4_tcp(&k);
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_int_equal(d.st, CAP_ST_MALFORMED);
    dec_free(&d);
}

static void test_8023_llc_snap_carries_ipv4(void **state)
{
    (void)state;
    struct pk k = {0};
    eth(&k, 0); /* length field, fixed below */
    static const uint8_t snap[8] = {0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00};
    putn(&k, snap, sizeof(snap));
    ip4_tcp(&k);
    set16(&k, 12, (unsigned)(k.n - 14));
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_std_v4(&d, 14 + 8 + 40);
    dec_free(&d);

    /* Plain LLC (spanning tree's 42 42 03) carries no IP. */
    k.b[14] = 0x42;
    k.b[15] = 0x42;
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_int_equal(d.st, CAP_ST_NOT_IP);
    dec_free(&d);
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
}

static void test_linux_sll_and_sll2(void **state)
{
    (void)state;
    struct pk k = {0};
    sll(&k, 0x0800);
    ip4_tcp(&k);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_LINUX_SLL, &k);
    assert_std_v4(&d, 16 + 40);
    dec_free(&d);

    k.n = 0;
    sll(&k, 0x8100); /* a VLAN tag left in the cooked header's payload */
    vlan_tag(&k, 7, 0x86dd);
    ip6_tcp(&k);
    dec_pk(&d, CAP_LINKTYPE_LINUX_SLL, &k);
    assert_std_v6(&d, 20 + 60);
    assert_int_equal(d.pkt.nvlan, 1);
    assert_int_equal(d.pkt.vlan[0], 7);
    dec_free(&d);

    k.n = 0;
    sll2(&k, 0x86dd);
    ip6_tcp(&k);
    dec_pk(&d, CAP_LINKTYPE_LINUX_SLL2, &k);
    assert_std_v6(&d, 20 + 60);
    dec_free(&d);

    k.n = 0;
    sll2(&k, 0x0800);
    ip4_tcp(&k);
    dec_pk(&d, CAP_LINKTYPE_LINUX_SLL2, &k);
    assert_std_v4(&d, 20 + 40);
    dec_free(&d);

    k.n = 0;
    sll2(&k, 0x0806);
    fill(&k, 0, 28);
    dec_pk(&d, CAP_LINKTYPE_LINUX_SLL2, &k);
    assert_int_equal(d.st, CAP_ST_NOT_IP);
    dec_free(&d);
}

static void test_bsd_null_and_loop_address_families(void **state)
{
    (void)state;
    static const uint32_t v6_afs[4] = {10, 24, 28, 30};
    struct dec d;
    for (int big = 0; big < 2; big++) {
        struct pk k = {0};
        bsd_af(&k, 2, big);
        ip4_tcp(&k);
        dec_pk(&d, CAP_LINKTYPE_NULL, &k);
        assert_std_v4(&d, 4 + 40);
        dec_free(&d);
        for (int i = 0; i < 4; i++) {
            k.n = 0;
            bsd_af(&k, v6_afs[i], big);
            ip6_tcp(&k);
            dec_pk(&d, CAP_LINKTYPE_NULL, &k);
            assert_std_v6(&d, 4 + 60);
            dec_free(&d);
        }
        k.n = 0;
        bsd_af(&k, 7, big); /* AF_UNIX-ish: not IP */
        ip4_tcp(&k);
        dec_pk(&d, CAP_LINKTYPE_NULL, &k);
        assert_int_equal(d.st, CAP_ST_NOT_IP);
        dec_free(&d);
    }
    /* LOOP: always network byte order. */
    struct pk k = {0};
    bsd_af(&k, 2, true);
    ip4_tcp(&k);
    dec_pk(&d, CAP_LINKTYPE_LOOP, &k);
    assert_std_v4(&d, 4 + 40);
    dec_free(&d);
    k.n = 0;
    bsd_af(&k, 30, true);
    ip6_tcp(&k);
    dec_pk(&d, CAP_LINKTYPE_LOOP, &k);
    assert_std_v6(&d, 4 + 60);
    dec_free(&d);
}

static void test_raw_ip_link_types(void **state)
{
    (void)state;
    static const uint32_t raws[3] = {CAP_LINKTYPE_RAW, CAP_LINKTYPE_RAW_DLT,
                                     CAP_LINKTYPE_RAW_OPENBSD};
    struct dec d;
    struct pk k4 = {0}, k6 = {0};
    ip4_tcp(&k4);
    ip6_tcp(&k6);
    for (int i = 0; i < 3; i++) {
        dec_pk(&d, raws[i], &k4);
        assert_std_v4(&d, 40);
        dec_free(&d);
        dec_pk(&d, raws[i], &k6);
        assert_std_v6(&d, 60);
        dec_free(&d);
    }
    dec_pk(&d, CAP_LINKTYPE_IPV4, &k4);
    assert_std_v4(&d, 40);
    dec_free(&d);
    dec_pk(&d, CAP_LINKTYPE_IPV6, &k6);
    assert_std_v6(&d, 60);
    dec_free(&d);
    /* The wrong version for a single-family link type is malformed. */
    dec_pk(&d, CAP_LINKTYPE_IPV4, &k6);
    assert_int_equal(d.st, CAP_ST_MALFORMED);
    dec_free(&d);
    dec_pk(&d, CAP_LINKTYPE_IPV6, &k4);
    assert_int_equal(d.st, CAP_ST_MALFORMED);
    dec_free(&d);
    /* Version 5 on a raw link is not IP. */
    k4.b[0] = 0x55;
    dec_pk(&d, CAP_LINKTYPE_RAW, &k4);
    assert_int_equal(d.st, CAP_ST_NOT_IP);
    dec_free(&d);
}

static void test_unsupported_link_type(void **state)
{
    (void)state;
    struct pk k = {0};
    ip4_tcp(&k);
    struct dec d;
    dec_pk(&d, 147, &k); /* LINKTYPE_USER0 */
    assert_int_equal(d.st, CAP_ST_LINK_UNSUPPORTED);
    assert_string_equal(cap_status_name(d.st), "link_unsupported");
    dec_free(&d);
}

/* ---- IP ---- */

static void test_ipv4_options_are_skipped(void **state)
{
    (void)state;
    struct pk k = {0};
    size_t ip = ip4(&k, 6, 0x4000 /* DF */, 12);
    tcp_std(&k);
    ip4_done(&k, ip);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_RAW, &k);
    assert_std_v4(&d, 32 + 20);
    dec_free(&d);
}

static void test_ipv6_extension_header_chain(void **state)
{
    (void)state;
    struct pk k = {0};
    size_t ip = ip6(&k, 0); /* hop-by-hop */
    ip6_ext(&k, 43, 8);     /* -> routing */
    ip6_ext(&k, 60, 24);    /* -> destination options */
    ip6_ext(&k, 6, 16);     /* -> TCP */
    tcp_std(&k);
    ip6_done(&k, ip);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_RAW, &k);
    assert_std_v6(&d, 40 + 48 + 20);
    dec_free(&d);

    /* With an atomic fragment header (offset 0, no more fragments) too. */
    k.n = 0;
    ip = ip6(&k, 0);
    ip6_ext(&k, 43, 8);
    ip6_ext(&k, 60, 24);
    ip6_ext(&k, 44, 16);
    ip6_frag(&k, 6, 0, false, 0xdeadbeef);
    tcp_std(&k);
    ip6_done(&k, ip);
    dec_pk(&d, CAP_LINKTYPE_RAW, &k);
    assert_std_tcp(&d, 40 + 56 + 20);
    assert_false(d.pkt.frag_first);
    assert_endpoints(&d.pkt, "[2001:db8::1]:40000", "[2001:db8::2]:25");
    dec_free(&d);
}

static void test_ipv6_extension_chain_over_limit_is_malformed(void **state)
{
    (void)state;
    struct pk k = {0};
    size_t ip = ip6(&k, 60);
    for (int i = 0; i <= CAP_MAX_IPV6_EXT; i++)
        ip6_ext(&k, i < CAP_MAX_IPV6_EXT ? 60 : 6, 8);
    tcp_std(&k);
    ip6_done(&k, ip);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_RAW, &k);
    assert_int_equal(d.st, CAP_ST_MALFORMED);
    dec_free(&d);
}

static void test_ipv4_first_fragment_decodes_tcp(void **state)
{
    (void)state;
    struct pk k = {0};
    eth(&k, 0x0800);
    size_t ip = ip4(&k, 6, 0x2000 /* MF, offset 0 */, 0);
    tcp_std(&k);
    ip4_done(&k, ip);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_ETHERNET, &k);
    assert_int_equal(d.st, CAP_ST_TCP);
    assert_true(d.pkt.frag_first);
    assert_int_equal(d.pkt.seq, T_SEQ);
    assert_ptr_equal(d.pkt.payload, d.buf + 54);
    assert_int_equal(d.pkt.payload_len, T_PAYLOAD_LEN);
    /* The datagram's length is unknown until reassembly. */
    assert_int_equal(d.pkt.payload_wire, T_PAYLOAD_LEN);
    assert_memory_equal(d.pkt.payload, T_PAYLOAD, T_PAYLOAD_LEN);
    dec_free(&d);
}

static void test_ipv4_non_first_fragment(void **state)
{
    (void)state;
    static const unsigned frags[2] = {0x2000 | 185, 185}; /* with and without MF */
    for (int i = 0; i < 2; i++) {
        struct pk k = {0};
        size_t ip = ip4(&k, 6, frags[i], 0);
        fill(&k, 0x41, 40);
        ip4_done(&k, ip);
        struct dec d;
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
}

static void test_ipv6_fragments(void **state)
{
    (void)state;
    struct pk k = {0};
    size_t ip = ip6(&k, 44);
    ip6_frag(&k, 6, 0, true, 0x01020304);
    tcp_std(&k);
    ip6_done(&k, ip);
    struct dec d;
    dec_pk(&d, CAP_LINKTYPE_IPV6, &k);
    assert_int_equal(d.st, CAP_ST_TCP);
    assert_true(d.pkt.frag_first);
    assert_int_equal(d.pkt.sport, T_SPORT);
    assert_int_equal(d.pkt.seq, T_SEQ);
    assert_ptr_equal(d.pkt.payload, d.buf + 68);
    assert_int_equal(d.pkt.payload_len, T_PAYLOAD_LEN);
    assert_memory_equal(d.pkt.payload, T_PAYLOAD, T_PAYLOAD_LEN);
    dec_free(&d);

    k.n = 0;
    ip = ip6(&k, 0);
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
    static const unsigned protos[2] = {17, 50};
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
    struct dec d;
    struct pk k = {0};
    ip4_tcp(&k);
    k.b[0] = 0x44; /* IHL 4 < 5 */
    dec_pk(&d, CAP_LINKTYPE_IPV4, &k);
    assert_int_equal(d.st, CAP_ST_MALFORMED);
    dec_free(&d);

    k.b[0] = 0x4f; /* IHL 15: 60 bytes, but only 48 captured */
    k.n = 48;
    dec_pk(&d, CAP_LINKTYPE_IPV4, &k);
    assert_int_equal(d.st, CAP_ST_MALFORMED);
    dec_free(&d);

    k.n = 0;
    ip4_tcp(&k);
    set16(&k, 2, 16); /* total length below the header length */
    dec_pk(&d, CAP_LINKTYPE_IPV4, &k);
    assert_int_equal(d.st, CAP_ST_MALFORMED);
    dec_free(&d);

    k.n = 0;
    ip4_tcp(&k);
    set16(&k, 2, 30); /* total length ends inside the TCP header */
    dec_pk(&d, CAP_LINKTYPE_IPV4, &k);
    assert_int_equal(d.st, CAP_ST_MALFORMED);
    dec_free(&d);
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
    struct pk k = {0};
    ip4_tcp(&k);
    struct dec d;
    k.b[32] = 0x40; /* 16-byte TCP header */
    dec_pk(&d, CAP_LINKTYPE_RAW, &k);
    assert_int_equal(d.st, CAP_ST_MALFORMED);
    dec_free(&d);
    k.b[32] = 0xf0; /* 60-byte header, 28 bytes there */
    dec_pk(&d, CAP_LINKTYPE_RAW, &k);
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
    for (int i = 0; i < 1500; i++)
        put8(&k, (unsigned)i & 0xff);
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
};

/* Fills t[] with valid packets of different shapes; returns how many. */
static size_t build_templates(struct tmpl *t)
{
    static const uint8_t opts[12] = {2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 1, 1};
    size_t n = 0, ip;
    memset(t, 0, 8 * sizeof(*t));

    t[n].linktype = CAP_LINKTYPE_ETHERNET;
    eth(&t[n].k, 0x8100);
    vlan_tag(&t[n].k, 5, 0x0800);
    ip = ip4(&t[n].k, 6, 0, 8);
    tcp_hdr(&t[n].k, T_FLAGS, opts, sizeof(opts));
    putn(&t[n].k, T_PAYLOAD, T_PAYLOAD_LEN);
    ip4_done(&t[n].k, ip);
    t[n].hdr_end = 18 + 28 + 32;
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
    tcp_hdr(&t[n].k, T_FLAGS, opts, sizeof(opts));
    putn(&t[n].k, T_PAYLOAD, T_PAYLOAD_LEN);
    ip6_done(&t[n].k, ip);
    t[n].hdr_end = 22 + 40 + 40 + 32;
    n++;

    t[n].linktype = CAP_LINKTYPE_ETHERNET;
    eth(&t[n].k, 0);
    static const uint8_t snap[8] = {0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00};
    putn(&t[n].k, snap, sizeof(snap));
    ip4_tcp(&t[n].k);
    set16(&t[n].k, 12, (unsigned)(t[n].k.n - 14));
    t[n].hdr_end = 22 + 40;
    n++;

    t[n].linktype = CAP_LINKTYPE_LINUX_SLL2;
    sll2(&t[n].k, 0x0800);
    ip4_tcp(&t[n].k);
    t[n].hdr_end = 20 + 40;
    n++;

    t[n].linktype = CAP_LINKTYPE_LINUX_SLL;
    sll(&t[n].k, 0x86dd);
    ip6_tcp(&t[n].k);
    t[n].hdr_end = 16 + 60;
    n++;

    t[n].linktype = CAP_LINKTYPE_NULL;
    bsd_af(&t[n].k, 30, false);
    ip6_tcp(&t[n].k);
    t[n].hdr_end = 4 + 60;
    n++;

    t[n].linktype = CAP_LINKTYPE_RAW;
    ip4_tcp(&t[n].k);
    t[n].hdr_end = 40;
    n++;

    for (size_t i = 0; i < n; i++)
        if (t[i].ip_end == 0)
            t[i].ip_end = t[i].k.n;
    return n;
}

static void test_every_truncation_is_safe_and_not_tcp_until_payload(void **state)
{
    (void)state;
    struct tmpl t[8];
    size_t nt = build_templates(t);
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
            if (cut < t[i].hdr_end) {
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

/* A valid packet of link type lt carrying the standard segment. */
static void link_packet(struct pk *k, uint32_t lt, bool v6)
{
    k->n = 0;
    if (lt == CAP_LINKTYPE_IPV4)
        v6 = false;
    if (lt == CAP_LINKTYPE_IPV6)
        v6 = true;
    switch (lt) {
    case CAP_LINKTYPE_NULL:
        bsd_af(k, v6 ? 28 : 2, false);
        break;
    case CAP_LINKTYPE_LOOP:
        bsd_af(k, v6 ? 30 : 2, true);
        break;
    case CAP_LINKTYPE_ETHERNET:
        eth(k, 0x8100);
        vlan_tag(k, 3, v6 ? 0x86dd : 0x0800);
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
    if (v6)
        ip6_tcp(k);
    else
        ip4_tcp(k);
}

static void test_random_buffers_on_every_link_type(void **state)
{
    (void)state;
    static const uint32_t lts[10] = {
        CAP_LINKTYPE_NULL,        CAP_LINKTYPE_ETHERNET, CAP_LINKTYPE_RAW_DLT,
        CAP_LINKTYPE_RAW_OPENBSD, CAP_LINKTYPE_RAW,      CAP_LINKTYPE_LOOP,
        CAP_LINKTYPE_LINUX_SLL,   CAP_LINKTYPE_IPV4,     CAP_LINKTYPE_IPV6,
        CAP_LINKTYPE_LINUX_SLL2,
    };
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
                link_packet(&k, lts[l], xorshift(&seed) & 1);
                size_t c = k.n < len ? k.n : len;
                memcpy(buf, k.b, c);
                unsigned flips = (unsigned)(xorshift(&seed) % 3);
                for (unsigned f = 0; f < flips && len; f++)
                    buf[xorshift(&seed) % len] = (uint8_t)xorshift(&seed);
            }
            struct dec d;
            dec_run(&d, lts[l], buf, len);
            check_invariants(&d);
            if (d.st == CAP_ST_TCP)
                tcp_seen++;
            dec_free(&d);
        }
        /* The valid starts must decode often enough to show that the deep
         * paths ran. */
        if (tcp_seen < 500)
            fail_msg("link type %u: only %u of 10000 buffers decoded as TCP", lts[l], tcp_seen);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ethernet_ipv4_tcp_every_field),
        cmocka_unit_test(test_ethernet_ipv6_tcp_every_field),
        cmocka_unit_test(test_ethernet_padding_is_not_payload),
        cmocka_unit_test(test_vlan_8021q_tag_read_and_skipped),
        cmocka_unit_test(test_qinq_8021ad_and_9100_tags_in_order),
        cmocka_unit_test(test_vlan_tags_beyond_limit_are_malformed),
        cmocka_unit_test(test_8023_llc_snap_carries_ipv4),
        cmocka_unit_test(test_unknown_ethertype_is_not_ip),
        cmocka_unit_test(test_linux_sll_and_sll2),
        cmocka_unit_test(test_bsd_null_and_loop_address_families),
        cmocka_unit_test(test_raw_ip_link_types),
        cmocka_unit_test(test_unsupported_link_type),
        cmocka_unit_test(test_ipv4_options_are_skipped),
        cmocka_unit_test(test_ipv6_extension_header_chain),
        cmocka_unit_test(test_ipv6_extension_chain_over_limit_is_malformed),
        cmocka_unit_test(test_ipv4_first_fragment_decodes_tcp),
        cmocka_unit_test(test_ipv4_non_first_fragment),
        cmocka_unit_test(test_ipv6_fragments),
        cmocka_unit_test(test_udp_and_esp_are_not_tcp),
        cmocka_unit_test(test_ipv4_inconsistent_headers_are_malformed),
        cmocka_unit_test(test_tcp_options_parsed),
        cmocka_unit_test(test_tcp_option_overrunning_header_is_malformed),
        cmocka_unit_test(test_tcp_bad_data_offset_is_malformed),
        cmocka_unit_test(test_ip_total_length_zero_uses_captured_bytes),
        cmocka_unit_test(test_snaplen_cut_keeps_wire_length),
        cmocka_unit_test(test_every_truncation_is_safe_and_not_tcp_until_payload),
        cmocka_unit_test(test_random_buffers_on_every_link_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
