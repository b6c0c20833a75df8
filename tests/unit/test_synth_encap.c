/* test_synth_encap.c - unit tests for the synthesizer's encapsulations (pcaps/synth/encap.c):
 * the decoder path strings, the layer checks, every layer's header bytes read back from a
 * written pcap by hand (offsets, ethertypes, protocols, identifiers, per-direction labels,
 * addresses and sequence counters, RFC 1071 checksums), IPv4 and IPv6 fragmentation that
 * reassembles to the unfragmented datagram, and the refusal of datagrams whose lengths would
 * overflow.  tests/synth/check_encap.sh checks the generated captures with tshark.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pcaps/synth/encap.h"
#include "pcaps/synth/wire.h"

/* Frames one test reads back from its capture. */
#define MAX_FRAMES 64

static const uint8_t mac_c[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01};
static const uint8_t mac_s[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x02};
static const uint8_t tun_a[6] = {0x02, 0x00, 0x5e, 0x20, 0x00, 0x01};
static const uint8_t tun_b[6] = {0x02, 0x00, 0x5e, 0x20, 0x00, 0x02};

struct frames {
    size_t n;
    size_t len[MAX_FRAMES];
    uint8_t *f[MAX_FRAMES];
};

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* One's-complement sum, folded, not complemented: 0xffff over data with a valid checksum. */
static uint32_t ones_sum(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sum += i % 2 ? p[i] : (uint32_t)p[i] << 8;
    while (sum >> 16)
        sum = (sum & 0xffffu) + (sum >> 16);
    return sum;
}

static struct cap_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    struct cap_addr x = {{0}};
    x.b[10] = x.b[11] = 0xff;
    x.b[12] = a;
    x.b[13] = b;
    x.b[14] = c;
    x.b[15] = d;
    return x;
}

static struct cap_addr v6(uint8_t last)
{
    struct cap_addr x = {{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff}};
    x.b[15] = last;
    return x;
}

static struct syn_encap_layer layer(enum syn_encap_kind k, uint32_t id)
{
    struct syn_encap_layer y;
    memset(&y, 0, sizeof(y));
    y.kind = k;
    y.id[0] = id;
    y.nid = 1;
    y.src = v4(198, 51, 100, 1);
    y.dst = v4(198, 51, 100, 2);
    return y;
}

/* A TCP datagram (bare IP) from the client (c2s) or the server, payload bytes 0..n-1. */
static size_t inner(uint8_t *out, bool ipv6, bool c2s, size_t n)
{
    struct syn_link_opts raw;
    memset(&raw, 0, sizeof(raw));
    raw.type = SYN_LINK_RAW;
    struct syn_ip ip;
    memset(&ip, 0, sizeof(ip));
    struct cap_addr c = ipv6 ? v6(0x10) : v4(203, 0, 113, 10);
    struct cap_addr s = ipv6 ? v6(0x25) : v4(192, 0, 2, 25);
    ip.src = c2s ? c : s;
    ip.dst = c2s ? s : c;
    ip.ttl = 64;
    ip.ipid = 0x1234;
    ip.df = true;
    struct syn_tcp t;
    memset(&t, 0, sizeof(t));
    t.sport = c2s ? 40000 : 25;
    t.dport = c2s ? 25 : 40000;
    t.seq = 1000;
    t.flags = 0x18;
    t.window = 501;
    uint8_t *pl = malloc(n ? n : 1);
    assert_non_null(pl);
    for (size_t i = 0; i < n; i++)
        pl[i] = (uint8_t)i;
    size_t len = syn_build_tcp(out, &raw, &ip, &t, pl, n);
    free(pl);
    return len;
}

/* Encapsulates the datagrams (direction dirs[i]) into a temporary pcap and reads the frames
 * back.  Returns the sum of syn_encap_write's results. */
static int run(const struct syn_encap_cfg *c, bool ipv6, const bool *dirs, size_t nd, size_t n,
               struct frames *fr)
{
    char path[] = "/tmp/test_synth_encap_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct syn_writer *w = syn_writer_open(path, SYN_PCAP_US, 1, 0);
    assert_non_null(w);
    struct syn_encap *e = syn_encap_new(c, 42);
    assert_non_null(e);
    struct syn_link_opts l;
    memset(&l, 0, sizeof(l));
    memcpy(l.src_mac, mac_c, 6);
    memcpy(l.dst_mac, mac_s, 6);
    uint8_t *buf = malloc(SYN_FRAME_MAX);
    assert_non_null(buf);
    int total = 0;
    for (size_t i = 0; i < nd; i++) {
        size_t len = inner(buf, ipv6, dirs[i], n);
        total += syn_encap_write(e, w, &l, 1709287200LL * 1000000000LL, dirs[i], buf, len);
    }
    free(buf);
    syn_encap_free(e);
    assert_int_equal(syn_writer_close(w), 0);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t h[24];
    assert_int_equal(fread(h, 1, 24, f), 24);
    memset(fr, 0, sizeof(*fr));
    while (fr->n < MAX_FRAMES && fread(h, 1, 16, f) == 16) {
        size_t cl = le32(h + 8);
        fr->f[fr->n] = malloc(cl ? cl : 1);
        assert_non_null(fr->f[fr->n]);
        assert_int_equal(fread(fr->f[fr->n], 1, cl, f), cl);
        fr->len[fr->n++] = cl;
    }
    fclose(f);
    unlink(path);
    return total;
}

static void frames_free(struct frames *fr)
{
    for (size_t i = 0; i < fr->n; i++)
        free(fr->f[i]);
}

/* The datagram inner() builds, for comparison. */
static size_t want_inner(uint8_t *out, bool ipv6, bool c2s, size_t n)
{
    return inner(out, ipv6, c2s, n);
}

/* Checks an outer IPv4 header at p: valid checksum, protocol, addresses; returns its total
 * length field. */
static size_t check_ip4(const uint8_t *p, uint8_t proto, const uint8_t *src, const uint8_t *dst)
{
    assert_int_equal(p[0], 0x45);
    assert_int_equal(ones_sum(0, p, 20), 0xffff);
    assert_int_equal(p[8], 64);
    assert_int_equal(p[9], proto);
    assert_memory_equal(p + 12, src, 4);
    assert_memory_equal(p + 16, dst, 4);
    return be16(p + 2);
}

static const uint8_t ta[4] = {198, 51, 100, 1};
static const uint8_t tb[4] = {198, 51, 100, 2};

/* ---- tests ---- */

static void test_paths(void **state)
{
    (void)state;
    char out[SYN_ENCAP_PATH_MAX];
    struct syn_encap_cfg c;
    memset(&c, 0, sizeof(c));
    syn_encap_path(&c, false, out, sizeof(out));
    assert_string_equal(out, "ipv4");
    c.layer[0] = layer(SYN_ENC_VLAN, 100);
    c.layer[1] = layer(SYN_ENC_ERSPAN2, 12);
    c.layer[2] = layer(SYN_ENC_VLAN, 20);
    c.n = 3;
    syn_encap_path(&c, false, out, sizeof(out));
    assert_string_equal(out, "vlan(100)/erspan(12)/vlan(20)/ipv4");
    c.layer[0] = layer(SYN_ENC_QINQ, 100);
    c.layer[0].id[1] = 20;
    c.layer[0].nid = 2;
    c.layer[1] = layer(SYN_ENC_MPLS, 100);
    c.layer[1].id[1] = 200;
    c.layer[1].nid = 2;
    c.n = 2;
    syn_encap_path(&c, true, out, sizeof(out));
    assert_string_equal(out, "vlan(100)/vlan(20)/mpls(100)/mpls(200)/ipv6");
    c.layer[0] = layer(SYN_ENC_GRE, 0);
    c.layer[0].nid = 0;
    c.layer[1] = layer(SYN_ENC_GRE, 7);
    c.layer[1].key = true;
    syn_encap_path(&c, false, out, sizeof(out));
    assert_string_equal(out, "gre/gre(7)/ipv4");
    static const struct {
        enum syn_encap_kind k;
        uint32_t id;
        bool v6;
        const char *path;
    } one[] = {
        {SYN_ENC_PPPOE, 7, false, "pppoe(7)/ipv4"},
        {SYN_ENC_ERSPAN3, 13, false, "erspan3(13)/ipv4"},
        {SYN_ENC_VXLAN, 4242, false, "vxlan(4242)/ipv4"},
        {SYN_ENC_GENEVE, 1, true, "geneve(1)/ipv6"},
        {SYN_ENC_IPIP, 0, false, "ipip/ipv4"},
        {SYN_ENC_IP6IP, 0, true, "ipip/ipv6"},
    };
    for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
        c.layer[0] = layer(one[i].k, one[i].id);
        c.n = 1;
        syn_encap_path(&c, one[i].v6, out, sizeof(out));
        assert_string_equal(out, one[i].path);
    }
    /* A short buffer is cut at a layer boundary, never overrun. */
    c.layer[0] = layer(SYN_ENC_VXLAN, 4242);
    char small[8];
    syn_encap_path(&c, false, small, sizeof(small));
    assert_string_equal(small, "");
}

static void test_checks(void **state)
{
    (void)state;
    struct syn_encap_cfg c;
    memset(&c, 0, sizeof(c));
    c.layer[0] = layer(SYN_ENC_MPLS, 100);
    c.layer[1] = layer(SYN_ENC_VLAN, 20);
    c.n = 2;
    assert_non_null(syn_encap_check(&c, false)); /* MPLS over a tag */
    c.layer[0] = layer(SYN_ENC_PPPOE, 1);
    assert_non_null(syn_encap_check(&c, false));
    c.layer[0] = layer(SYN_ENC_VLAN, 20);
    c.layer[1] = layer(SYN_ENC_MPLS, 100);
    assert_null(syn_encap_check(&c, false));
    c.layer[0] = layer(SYN_ENC_IPIP, 0);
    c.n = 1;
    assert_non_null(syn_encap_check(&c, true));
    assert_null(syn_encap_check(&c, false));
    c.layer[0] = layer(SYN_ENC_IP6IP, 0);
    assert_non_null(syn_encap_check(&c, false));
    assert_null(syn_encap_check(&c, true));
    /* ipip around a tunnel's IPv4 is fine; around a tag it is not. */
    c.layer[0] = layer(SYN_ENC_IPIP, 0);
    c.layer[1] = layer(SYN_ENC_VXLAN, 1);
    c.n = 2;
    assert_null(syn_encap_check(&c, true));
    c.layer[1] = layer(SYN_ENC_VLAN, 1);
    assert_non_null(syn_encap_check(&c, false));
    /* outer_mtu needs a tunnel, and 1280 over IPv6. */
    c.layer[0] = layer(SYN_ENC_VLAN, 1);
    c.n = 1;
    c.outer_mtu = 576;
    assert_non_null(syn_encap_check(&c, false));
    c.layer[0] = layer(SYN_ENC_GRE, 0);
    assert_null(syn_encap_check(&c, false));
    c.layer[0].src = v6(1);
    assert_non_null(syn_encap_check(&c, false)); /* mixed families */
    c.layer[0].dst = v6(2);
    assert_non_null(syn_encap_check(&c, false)); /* 576 over IPv6 */
    c.outer_mtu = 1280;
    assert_null(syn_encap_check(&c, false));
}

static void test_tags_mpls_pppoe(void **state)
{
    (void)state;
    struct syn_encap_cfg c;
    memset(&c, 0, sizeof(c));
    c.layer[0] = layer(SYN_ENC_QINQ, 100);
    c.layer[0].id[1] = 20;
    c.layer[0].nid = 2;
    c.layer[1] = layer(SYN_ENC_PPPOE, 7);
    c.n = 2;
    const bool dirs[2] = {true, false};
    struct frames fr;
    uint8_t want[SYN_FRAME_MAX];
    assert_int_equal(run(&c, false, dirs, 2, 100, &fr), 2);
    for (size_t i = 0; i < 2; i++) {
        const uint8_t *f = fr.f[i];
        size_t wl = want_inner(want, false, dirs[i], 100);
        assert_int_equal(fr.len[i], 14 + 8 + 8 + wl);
        assert_memory_equal(f, dirs[i] ? mac_s : mac_c, 6);
        assert_memory_equal(f + 6, dirs[i] ? mac_c : mac_s, 6);
        assert_int_equal(be16(f + 12), 0x88a8);
        assert_int_equal(be16(f + 14), 100);
        assert_int_equal(be16(f + 16), 0x8100);
        assert_int_equal(be16(f + 18), 20);
        assert_int_equal(be16(f + 20), 0x8864);
        assert_int_equal(f[22], 0x11);
        assert_int_equal(f[23], 0);
        assert_int_equal(be16(f + 24), 7);
        assert_int_equal(be16(f + 26), wl + 2);
        assert_int_equal(be16(f + 28), 0x0021);
        assert_memory_equal(f + 30, want, wl);
    }
    frames_free(&fr);

    /* MPLS: labels as given client->server, + 1 server->client; S on the last; IPv6 inside. */
    c.layer[0] = layer(SYN_ENC_MPLS, 100);
    c.layer[0].id[1] = 200;
    c.layer[0].nid = 2;
    c.n = 1;
    assert_int_equal(run(&c, true, dirs, 2, 10, &fr), 2);
    for (size_t i = 0; i < 2; i++) {
        const uint8_t *f = fr.f[i];
        size_t wl = want_inner(want, true, dirs[i], 10);
        assert_int_equal(be16(f + 12), 0x8847);
        assert_int_equal(be32(f + 14), (dirs[i] ? 100u : 101u) << 12 | 64);
        assert_int_equal(be32(f + 18), (dirs[i] ? 200u : 201u) << 12 | 1u << 8 | 64);
        assert_int_equal(fr.len[i], 22 + wl);
        assert_memory_equal(f + 22, want, wl);
    }
    frames_free(&fr);
}

static void test_gre(void **state)
{
    (void)state;
    struct syn_encap_cfg c;
    memset(&c, 0, sizeof(c));
    c.layer[0] = layer(SYN_ENC_GRE, 7);
    c.layer[0].key = c.layer[0].seq = c.layer[0].csum = true;
    c.n = 1;
    const bool dirs[4] = {true, false, true, true};
    struct frames fr;
    uint8_t want[SYN_FRAME_MAX];
    assert_int_equal(run(&c, false, dirs, 4, 33, &fr), 4);
    uint32_t want_seq[4] = {0, 0, 1, 2}; /* each tunnel end counts its own */
    uint16_t id_c2s = 0;
    for (size_t i = 0; i < 4; i++) {
        const uint8_t *f = fr.f[i];
        size_t wl = want_inner(want, false, dirs[i], 33);
        /* Point to point: the server->client direction comes from the other end. */
        assert_memory_equal(f, dirs[i] ? tun_b : tun_a, 6);
        assert_memory_equal(f + 6, dirs[i] ? tun_a : tun_b, 6);
        assert_int_equal(be16(f + 12), 0x0800);
        size_t tl = check_ip4(f + 14, 47, dirs[i] ? ta : tb, dirs[i] ? tb : ta);
        assert_int_equal(tl, 20 + 16 + wl);
        assert_int_equal(be16(f + 20) & 0x7fff, 0); /* DF clear, no offset */
        if (i == 2)
            assert_int_equal(be16(f + 18), (uint16_t)(id_c2s + 1));
        if (i == 0)
            id_c2s = be16(f + 18);
        const uint8_t *g = f + 34;
        assert_int_equal(be16(g), 0xb000);
        assert_int_equal(be16(g + 2), 0x0800);
        assert_int_equal(ones_sum(0, g, 16 + wl), 0xffff);
        assert_int_equal(be32(g + 8), 7);
        assert_int_equal(be32(g + 12), want_seq[i]);
        assert_memory_equal(g + 16, want, wl);
    }
    frames_free(&fr);

    /* A tag inside GRE: transparent Ethernet bridging with the vantage's MACs. */
    c.layer[0] = layer(SYN_ENC_GRE, 0);
    c.layer[0].nid = 0;
    c.layer[1] = layer(SYN_ENC_VLAN, 20);
    c.n = 2;
    assert_int_equal(run(&c, false, dirs, 1, 5, &fr), 1);
    const uint8_t *g = fr.f[0] + 34;
    assert_int_equal(be16(g), 0);
    assert_int_equal(be16(g + 2), 0x6558);
    assert_memory_equal(g + 4, mac_s, 6);
    assert_memory_equal(g + 10, mac_c, 6);
    assert_int_equal(be16(g + 16), 0x8100);
    assert_int_equal(be16(g + 18), 20);
    assert_int_equal(be16(g + 20), 0x0800);
    frames_free(&fr);
}

static void test_erspan(void **state)
{
    (void)state;
    struct syn_encap_cfg c;
    memset(&c, 0, sizeof(c));
    c.layer[0] = layer(SYN_ENC_VLAN, 100);
    c.layer[1] = layer(SYN_ENC_ERSPAN2, 12);
    c.layer[1].index = 5;
    c.layer[2] = layer(SYN_ENC_VLAN, 20);
    c.n = 3;
    const bool dirs[3] = {true, false, true};
    struct frames fr;
    uint8_t want[SYN_FRAME_MAX];
    assert_int_equal(run(&c, false, dirs, 3, 40, &fr), 3);
    uint32_t seq0 = 0;
    for (size_t i = 0; i < 3; i++) {
        const uint8_t *f = fr.f[i];
        size_t wl = want_inner(want, false, dirs[i], 40);
        /* A mirror: the same source and collector both ways. */
        assert_memory_equal(f, tun_b, 6);
        assert_memory_equal(f + 6, tun_a, 6);
        assert_int_equal(be16(f + 12), 0x8100);
        assert_int_equal(be16(f + 14), 100);
        assert_int_equal(be16(f + 16), 0x0800);
        check_ip4(f + 18, 47, ta, tb);
        const uint8_t *g = f + 38;
        assert_int_equal(be16(g), 0x1000);
        assert_int_equal(be16(g + 2), 0x88be);
        if (i == 0)
            seq0 = be32(g + 4);
        assert_int_equal(be32(g + 4), seq0 + (uint32_t)i); /* one counter for both ways */
        assert_int_equal(be32(g + 8), 1u << 28 | 20u << 16 | 3u << 11 | 12u);
        assert_int_equal(be32(g + 12), 5);
        const uint8_t *e = g + 16;
        assert_memory_equal(e, dirs[i] ? mac_s : mac_c, 6);
        assert_int_equal(be16(e + 12), 0x8100);
        assert_int_equal(be16(e + 14), 20);
        assert_int_equal(be16(e + 16), 0x0800);
        assert_int_equal(fr.len[i], (size_t)(e + 18 - f) + wl);
        assert_memory_equal(e + 18, want, wl);
    }
    frames_free(&fr);

    c.layer[0] = layer(SYN_ENC_ERSPAN3, 13);
    c.n = 1;
    assert_int_equal(run(&c, false, dirs, 1, 0, &fr), 1);
    const uint8_t *g = fr.f[0] + 34;
    assert_int_equal(be16(g + 2), 0x22eb);
    /* 54-byte mirrored frame: BSO short. */
    assert_int_equal(be32(g + 8), 2u << 28 | 1u << 11 | 13u);
    assert_int_equal(be32(g + 12), (uint32_t)(1709287200ull * 10000ull));
    assert_int_equal(be32(g + 16), 1u << 15);
    assert_int_equal(be16(g + 20 + 12), 0x0800);
    frames_free(&fr);
}

static void test_udp_tunnels(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        struct syn_encap_cfg c;
        memset(&c, 0, sizeof(c));
        c.layer[0] = layer(k ? SYN_ENC_GENEVE : SYN_ENC_VXLAN, 0xabcdef);
        if (k) { /* Geneve over IPv6 */
            c.layer[0].src = v6(1);
            c.layer[0].dst = v6(2);
        }
        c.n = 1;
        const bool dirs[2] = {true, false};
        struct frames fr;
        uint8_t want[SYN_FRAME_MAX];
        assert_int_equal(run(&c, false, dirs, 2, 77, &fr), 2);
        uint16_t sport = 0;
        for (size_t i = 0; i < 2; i++) {
            const uint8_t *f = fr.f[i];
            size_t wl = want_inner(want, false, dirs[i], 77);
            size_t ipl = k ? 40 : 20;
            const uint8_t *ip = f + 14;
            const uint8_t *u = ip + ipl;
            size_t ulen = be16(u + 4);
            assert_int_equal(ulen, 8 + 8 + 14 + wl);
            uint32_t sum;
            if (k) {
                assert_int_equal(be16(f + 12), 0x86dd);
                assert_int_equal(ip[6], 17);
                assert_int_equal(be16(ip + 4), ulen);
                sum = ones_sum(0, ip + 8, 32);
            } else {
                check_ip4(ip, 17, ta, tb);
                sum = ones_sum(0, ip + 12, 8);
            }
            sum = ones_sum(sum + 17 + (uint32_t)ulen, u, ulen);
            assert_int_equal(sum, 0xffff); /* UDP checksum valid */
            assert_int_equal(be16(u + 2), k ? 6081 : 4789);
            if (i == 0)
                sport = be16(u);
            assert_int_equal(be16(u), sport); /* the flow hash is symmetric */
            assert_true(sport >= 32768 && sport <= 60999);
            const uint8_t *h = u + 8;
            if (k)
                assert_int_equal(be32(h), 0x6558);
            else
                assert_int_equal(be32(h), 0x08000000u);
            assert_int_equal(be32(h + 4), 0xabcdefu << 8);
            assert_memory_equal(h + 8, dirs[i] ? mac_s : mac_c, 6);
            assert_memory_equal(h + 8 + 14, want, wl);
        }
        frames_free(&fr);
    }
}

static void test_ipip(void **state)
{
    (void)state;
    struct syn_encap_cfg c;
    memset(&c, 0, sizeof(c));
    c.layer[0] = layer(SYN_ENC_IP6IP, 0);
    c.n = 1;
    const bool dirs[2] = {true, false};
    struct frames fr;
    uint8_t want[SYN_FRAME_MAX];
    assert_int_equal(run(&c, true, dirs, 2, 9, &fr), 2);
    for (size_t i = 0; i < 2; i++) {
        size_t wl = want_inner(want, true, dirs[i], 9);
        assert_int_equal(check_ip4(fr.f[i] + 14, 41, dirs[i] ? ta : tb, dirs[i] ? tb : ta),
                         20 + wl);
        assert_memory_equal(fr.f[i] + 34, want, wl);
    }
    frames_free(&fr);
}

/* Reassembles the fragments fr (starting at eth + lead bytes of outer layers) and compares
 * them with the unfragmented run of the same datagram. */
static void check_frag(bool outer6)
{
    struct syn_encap_cfg c;
    memset(&c, 0, sizeof(c));
    c.layer[0] = layer(SYN_ENC_VLAN, 9); /* repeated on every fragment */
    c.layer[1] = layer(SYN_ENC_GRE, 0);
    c.layer[1].nid = 0;
    if (outer6) {
        c.layer[1].src = v6(1);
        c.layer[1].dst = v6(2);
    }
    c.n = 2;
    const bool dirs[2] = {true, true};
    struct frames whole, fr;
    assert_int_equal(run(&c, false, dirs, 1, 1448, &whole), 1);
    c.outer_mtu = outer6 ? 1280 : 576;
    assert_null(syn_encap_check(&c, false));
    int nf = run(&c, false, dirs, 2, 1448, &fr);
    size_t per = outer6 ? 2 : 3; /* 1492-byte GRE payload in 1232- or 552-byte pieces */
    assert_int_equal(nf, (int)(2 * per));
    size_t hl = outer6 ? 40 : 20;
    const uint8_t *ref = whole.f[0] + 18 + hl; /* the GRE header and what follows */
    size_t reflen = whole.len[0] - 18 - hl;
    uint8_t *re = calloc(1, reflen);
    assert_non_null(re);
    for (size_t d = 0; d < 2; d++) {
        size_t got = 0;
        uint32_t id = 0;
        for (size_t k = 0; k < per; k++) {
            const uint8_t *f = fr.f[d * per + k];
            assert_int_equal(be16(f + 12), 0x8100);
            assert_int_equal(be16(f + 14), 9);
            const uint8_t *ip = f + 18;
            size_t iplen = fr.len[d * per + k] - 18;
            assert_true(iplen <= c.outer_mtu);
            size_t off, dl;
            bool more;
            const uint8_t *data;
            uint32_t fid;
            if (outer6) {
                assert_int_equal(be16(f + 16), 0x86dd);
                assert_int_equal(ip[6], 44);
                assert_int_equal(be16(ip + 4), iplen - 40);
                const uint8_t *fh = ip + 40;
                assert_int_equal(fh[0], 47);
                off = (size_t)(be16(fh + 2) >> 3) * 8;
                more = (be16(fh + 2) & 1) != 0;
                fid = be32(fh + 4);
                data = fh + 8;
                dl = iplen - 48;
            } else {
                check_ip4(ip, 47, ta, tb);
                assert_int_equal(be16(ip + 2), iplen);
                off = (size_t)(be16(ip + 6) & 0x1fff) * 8;
                more = (be16(ip + 6) & 0x2000) != 0;
                fid = be16(ip + 4);
                data = ip + 20;
                dl = iplen - 20;
            }
            if (k == 0)
                id = fid;
            assert_int_equal(fid, id); /* one identification per datagram */
            assert_int_equal(off, got);
            assert_int_equal(more, k + 1 < per);
            assert_true(more ? dl % 8 == 0 : true);
            assert_true(off + dl <= reflen);
            memcpy(re + off, data, dl);
            got += dl;
        }
        assert_int_equal(got, reflen);
        assert_memory_equal(re, ref, reflen);
        if (d == 1) {
            /* The next datagram takes the next identification. */
            const uint8_t *p0 = fr.f[0] + 18, *p1 = fr.f[per] + 18;
            if (outer6)
                assert_int_equal(be32(p1 + 44), be32(p0 + 44) + 1);
            else
                assert_int_equal(be16(p1 + 4), (uint16_t)(be16(p0 + 4) + 1));
        }
    }
    free(re);
    frames_free(&whole);
    frames_free(&fr);
}

static void test_fragmentation(void **state)
{
    (void)state;
    check_frag(false);
    check_frag(true);
}

static void test_overflow_is_dropped(void **state)
{
    (void)state;
    struct syn_encap_cfg c;
    memset(&c, 0, sizeof(c));
    c.layer[0] = layer(SYN_ENC_GRE, 0);
    c.layer[0].nid = 0;
    c.n = 1;
    const bool dirs[1] = {true};
    struct frames fr;
    /* 20 + 4 + the datagram must fit the 16-bit total length: 65511 bytes do, 65512 do not. */
    assert_int_equal(run(&c, false, dirs, 1, 65511 - 40, &fr), 1);
    assert_int_equal(fr.len[0], 14 + 65535);
    frames_free(&fr);
    assert_int_equal(run(&c, false, dirs, 1, 65512 - 40, &fr), 0);
    assert_int_equal(fr.n, 0);
    frames_free(&fr);
    /* Over IPv6 the 16-bit payload length holds 4 + 65531 bytes at most. */
    c.layer[0].src = v6(1);
    c.layer[0].dst = v6(2);
    assert_int_equal(run(&c, false, dirs, 1, 65531 - 40, &fr), 1);
    assert_int_equal(fr.len[0], 14 + 40 + 65535);
    frames_free(&fr);
    assert_int_equal(run(&c, false, dirs, 1, 65532 - 40, &fr), 0);
    frames_free(&fr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_tags_mpls_pppoe),
        cmocka_unit_test(test_gre),
        cmocka_unit_test(test_erspan),
        cmocka_unit_test(test_udp_tunnels),
        cmocka_unit_test(test_ipip),
        cmocka_unit_test(test_fragmentation),
        cmocka_unit_test(test_overflow_is_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
