/* fuzz_defrag.c - libFuzzer target for capture/defrag.h: IPv4 and IPv6
 * fragments built from the input, decoded by cap_decode_ex() (raw IP,
 * Ethernet, VLAN, QinQ, IP-in-IP, GRE, VXLAN and Linux cooked links), fed to
 * cap_defrag_add() the way capture/tracker.c feeds them (a reassembled
 * datagram holding another fragment goes round again), with capture time
 * moving, expiry, flushes and tight limits.
 *
 * Input: two header bytes, then records until the input ends.
 *   h0  bits 0-1 mem_max (2 KiB, 16 KiB, 200 KB, 16 MiB); bits 2-3
 *       max_datagrams (1, 3, 16, 4096); bits 4-6 the encapsulation of every
 *       built fragment (raw IP, Ethernet, 802.1Q, IP-in-IP, GRE, VXLAN,
 *       Linux SLL, QinQ); bit 7 VLAN ids and tunnels left out of the context
 *   h1  bits 0-6 timeout in 250 ms steps (0: none may wait); bit 7 VXLAN off
 *   records, by their first byte r:
 *   r < 0x80  a fragment: bits 0-2 the datagram (bit 0 IPv6; bits 1-2 pick
 *             an identification, 3 = the first one between swapped
 *             addresses), bit 3 more fragments, bit 4 fill (else literal),
 *             bit 5 the datagram's first 20 bytes are a fixed TCP header,
 *             bit 6 cut by the snap length; then u16 o (offset o & 0x1fff in
 *             8-byte units; o >> 13 how much the snap length cuts), u16 n
 *             (length; literal: n & 0x7ff bytes follow, fewer at the end of
 *             the input; fill: one byte s follows, data byte at datagram
 *             offset x is s + x, so fills with the same s agree)
 *   0x80-0xbe capture time advances (r & 0x3f) * 250 ms; 0xbf: goes back
 *             10 s; then given-up datagrams are drained
 *   r >= 0xc0, by r & 7:
 *   0         flush every datagram, drain
 *   1         a raw packet: link-type byte (fuzz_decode.c's table), u16 n,
 *             n bytes
 *   2         the last built fragment again
 *   3, 6, 7   drain given-up datagrams at the current time
 *   4         a comb: byte kb (bits 0-2 the datagram, 3-7 b), count c,
 *             stride s, seed v: c + 1 one-byte fragments from offset
 *             2048 b, 8(s+1) bytes apart (many pieces from little input)
 *   5         stop here and free the reassembler with datagrams held (the
 *             rest of the input is ignored)
 *
 * Checks: a built fragment decodes to the fragment it is (id, offset, more,
 * captured and wire lengths, addresses); the bytes held never exceed mem_max;
 * a reassembled or partly delivered datagram's TCP payload lies in readable
 * memory and, for a datagram whose fragments all agreed on every byte, is
 * exactly those bytes (first copy wins only matters when they differ); a
 * partial delivery is marked frag_first; after a flush and drain nothing is
 * held; the statistics count every fragment taken.
 */
#include <string.h>

#include "capture/defrag.h"
#include "fuzz/fuzz.h"

#define FZ_MS (SC_NS_PER_SEC / 1000)
/* Built packets: link + tunnel headers (at most 14+20+8+8+14+8 = 72 bytes),
 * an IPv6 header and fragment header, and a datagram's worth of data. */
#define FZ_PKT_MAX (256 + CAP_DEFRAG_MAX_SIZE)
/* Datagrams the records can name: IPv4/IPv6 x four keys. */
#define FZ_KEYS 8
/* The model covers every offset a 13-bit fragment offset and 16-bit length
 * can reach below CAP_DEFRAG_MAX_SIZE; bytes beyond are refused anyway. */
#define FZ_MODEL_SIZE (CAP_DEFRAG_MAX_SIZE + 1)

enum fz_encap {
    FZ_RAW = 0,
    FZ_ETH,
    FZ_VLAN,
    FZ_IPIP,
    FZ_GRE,
    FZ_VXLAN,
    FZ_SLL,
    FZ_QINQ,
};

static const uint32_t fz_linktypes[] = {
    CAP_LINKTYPE_NULL, CAP_LINKTYPE_ETHERNET,   CAP_LINKTYPE_RAW_OPENBSD, CAP_LINKTYPE_RAW_DLT,
    CAP_LINKTYPE_RAW,  CAP_LINKTYPE_LOOP,       CAP_LINKTYPE_LINUX_SLL,   CAP_LINKTYPE_IPV4,
    CAP_LINKTYPE_IPV6, CAP_LINKTYPE_LINUX_SLL2,
};
#define FZ_NLINKTYPES (sizeof(fz_linktypes) / sizeof(fz_linktypes[0]))

static const uint8_t fz_tcp_header[20] = {
    0x9c, 0x40, 0x00, 0x19, /* ports 40000 -> 25 */
    0x00, 0x00, 0x03, 0xe8, /* seq 1000 */
    0x00, 0x00, 0x00, 0x01, /* ack 1 */
    0x50, 0x18, 0xff, 0xff, /* data offset 5, ACK|PSH, window */
    0x00, 0x00, 0x00, 0x00, /* checksum, urgent pointer */
};

/* What the fragments of one datagram offered: every captured byte at its
 * offset, and whether two of them ever disagreed. */
struct fz_model {
    uint8_t *bytes; /* FZ_MODEL_SIZE, then FZ_MODEL_SIZE "have" flags */
    bool conflict;
};

struct fz_run {
    struct cap_defrag *d;
    struct cap_defrag_limits lim;
    struct cap_decode_opts opts;
    enum fz_encap encap;
    sc_time ts, now;
    uint64_t frame;
    uint64_t taken; /* fragments given to cap_defrag_add() */
    bool raw_used;  /* a raw packet may share a key: the model no longer holds */
    struct fz_model model[FZ_KEYS];
    uint8_t *pkt; /* FZ_PKT_MAX bytes: the packet being built */
    uint8_t *last;
    size_t last_len;
};

static void fz_be16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void fz_be32(uint8_t *p, uint32_t v)
{
    fz_be16(p, v >> 16);
    fz_be16(p + 2, v & 0xffff);
}

/* The addresses and identification of key k (bit 0: IPv6). */
static void fz_key(unsigned k, uint8_t src[16], uint8_t dst[16], uint32_t *id)
{
    unsigned sel = (k >> 1) & 3;
    bool v6 = k & 1;
    uint8_t a[16] = {0}, b[16] = {0};
    if (v6) {
        a[0] = b[0] = 0x20;
        a[1] = b[1] = 0x01;
        a[2] = b[2] = 0x0d;
        a[3] = b[3] = 0xb8;
        a[15] = 1;
        b[15] = 0x25;
    } else {
        a[0] = 192, a[1] = 0, a[2] = 2, a[3] = 1;
        b[0] = 198, b[1] = 51, b[2] = 100, b[3] = 25;
    }
    memcpy(src, sel == 3 ? b : a, 16);
    memcpy(dst, sel == 3 ? a : b, 16);
    *id = (v6 ? 0x12000000u : 0x1200u) + (sel == 3 ? 0 : sel);
}

/* The key a delivered datagram belongs to, or -1. */
static int fz_key_of(const struct cap_packet *p)
{
    for (unsigned k = 0; k < FZ_KEYS; k++) {
        uint8_t src[16], dst[16];
        uint32_t id;
        fz_key(k, src, dst, &id);
        if ((p->ipver == 6) != (bool)(k & 1) || p->ipid != id)
            continue;
        struct cap_addr a, b;
        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        if (k & 1) {
            memcpy(a.b, src, 16);
            memcpy(b.b, dst, 16);
        } else {
            a.b[10] = a.b[11] = b.b[10] = b.b[11] = 0xff;
            memcpy(a.b + 12, src, 4);
            memcpy(b.b + 12, dst, 4);
        }
        if (memcmp(&a, &p->src, sizeof(a)) == 0 && memcmp(&b, &p->dst, sizeof(b)) == 0)
            return (int)k;
    }
    return -1;
}

/* Checks a delivered datagram (reassembled, or the first part of one given
 * up): its TCP payload is readable and, when its fragments agreed, equal to
 * what they carried. */
static void fz_check_out(struct fz_run *r, const struct cap_packet *out)
{
    FZ_CHECK(!out->frag.present || r->raw_used);
    if (out->status != CAP_ST_TCP)
        return;
    FZ_CHECK(out->payload_len <= CAP_DEFRAG_MAX_SIZE);
    if (out->payload_len > 0) {
        volatile uint8_t edge = out->payload[0];
        edge = out->payload[out->payload_len - 1];
        (void)edge;
    }
    if (r->raw_used)
        return;
    int k = fz_key_of(out);
    FZ_CHECK(k >= 0); /* only the built keys reach the reassembler */
    const struct fz_model *m = &r->model[k];
    if (m->conflict || !m->bytes)
        return;
    const uint8_t *have = m->bytes + FZ_MODEL_SIZE;
    FZ_CHECK(have[12]);
    size_t hl = (size_t)(m->bytes[12] >> 4) * 4;
    FZ_CHECK(hl + out->payload_len <= FZ_MODEL_SIZE);
    for (size_t i = 0; i < out->payload_len; i++) {
        FZ_CHECK(have[hl + i]);
        FZ_CHECK(out->payload[i] == m->bytes[hl + i]);
    }
}

static void fz_check_mem(const struct fz_run *r)
{
    FZ_CHECK(cap_defrag_mem(r->d) <= r->lim.mem_max);
    const struct cap_defrag_stats *st = cap_defrag_stats(r->d);
    FZ_CHECK(st->fragments == r->taken);
    FZ_CHECK(st->reassembled <= st->fragments);
    FZ_CHECK(st->duplicates + st->conflicts <= st->fragments);
}

/* Drains the datagrams given up as of r->now. */
static void fz_drain(struct fz_run *r)
{
    struct cap_packet out;
    int guard = 0;
    while (cap_defrag_expired(r->d, r->now, &out)) {
        FZ_CHECK(out.frag_first);
        fz_check_out(r, &out);
        FZ_CHECK(++guard < 1 << 20);
    }
    fz_check_mem(r);
}

/* Decodes a packet of n bytes (copied to a buffer of exactly that size, so
 * ASan sees any read past it) and feeds it on as capture/tracker.c does:
 * given-up datagrams drained first, then each reassembled datagram that is
 * itself a fragment goes round again.  Returns the decode of the packet in
 * *first (its pointers no longer valid) and, when it found a fragment, the
 * offset of the fragment's data in the packet in *frag_at. */
static void fz_packet(struct fz_run *r, uint32_t linktype, const uint8_t *p, size_t n,
                      struct cap_packet *first, size_t *frag_at)
{
    memset(first, 0, sizeof(*first));
    *frag_at = 0;
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy)
        return;
    memcpy(copy, p, n);
    if (r->ts > r->now)
        r->now = r->ts;
    fz_drain(r);
    struct cap_packet buf[3];
    memset(&buf[2], 0, sizeof(buf[2]));
    buf[2].frame = ++r->frame;
    buf[2].ts = r->ts;
    buf[2].caplen = (uint32_t)n;
    buf[2].wirelen = (uint32_t)n;
    cap_decode_ex(&buf[2], linktype, copy, (uint32_t)n, &r->opts);
    *first = buf[2];
    if (buf[2].frag.present) {
        FZ_CHECK(buf[2].frag.data >= copy && buf[2].frag.data <= copy + n);
        *frag_at = (size_t)(buf[2].frag.data - copy);
        FZ_CHECK(buf[2].frag.len <= n - *frag_at);
    }
    const struct cap_packet *cur = &buf[2];
    for (int k = 0, round = 0; cur && cur->frag.present && round <= CAP_MAX_TUNNEL_DEPTH;
         k ^= 1, round++) {
        r->taken++;
        enum cap_defrag_result res = cap_defrag_add(r->d, cur, &buf[k]);
        fz_check_mem(r);
        if (res == CAP_DEFRAG_HELD) {
            cur = NULL;
        } else if (res == CAP_DEFRAG_DONE) {
            cur = &buf[k];
            FZ_CHECK(cur->frag_count >= 1 && (!cur->frag_first || cur->frag.present));
            fz_check_out(r, cur);
        } else {
            break;
        }
    }
    free(copy);
}

/* Wraps the IP packet at r->pkt + 128 (ip bytes, version v) in r->encap;
 * returns the start and sets *n and *lt. */
static uint8_t *fz_wrap(struct fz_run *r, size_t ip, int v, size_t *n, uint32_t *lt)
{
    uint8_t *p = r->pkt + 128;
    uint32_t et = v == 6 ? 0x86dd : 0x0800;
    static const uint8_t mac[12] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
    size_t len = ip;
    *lt = CAP_LINKTYPE_ETHERNET;
    switch (r->encap) {
    case FZ_RAW:
        *lt = CAP_LINKTYPE_RAW;
        break;
    case FZ_SLL:
        p -= 16;
        memset(p, 0, 16);
        fz_be16(p + 2, 1);
        fz_be16(p + 4, 6);
        fz_be16(p + 14, et);
        len += 16;
        *lt = CAP_LINKTYPE_LINUX_SLL;
        break;
    case FZ_VLAN:
    case FZ_QINQ:
        p -= 4;
        fz_be16(p, 100);
        fz_be16(p + 2, et);
        len += 4;
        et = 0x8100;
        if (r->encap == FZ_QINQ) {
            p -= 4;
            fz_be16(p, 200);
            fz_be16(p + 2, et);
            len += 4;
            et = 0x88a8;
        }
        /* fall through */
    case FZ_ETH:
        p -= 14;
        memcpy(p, mac, 12);
        fz_be16(p + 12, et);
        len += 14;
        break;
    case FZ_IPIP:
    case FZ_GRE:
    case FZ_VXLAN: {
        uint8_t proto = v == 6 ? 41 : 4;
        if (r->encap == FZ_GRE) {
            p -= 4;
            fz_be16(p, 0);
            fz_be16(p + 2, et);
            len += 4;
            proto = 47;
        } else if (r->encap == FZ_VXLAN) {
            p -= 14; /* inner Ethernet */
            memcpy(p, mac, 12);
            fz_be16(p + 12, et);
            p -= 8; /* VXLAN: I flag, VNI 42 */
            memset(p, 0, 8);
            p[0] = 0x08;
            p[6] = 42;
            p -= 8; /* UDP */
            fz_be16(p, 49152);
            fz_be16(p + 2, CAP_VXLAN_PORT);
            fz_be16(p + 4, (uint32_t)(len + 30));
            fz_be16(p + 6, 0);
            len += 30;
            proto = 17;
        }
        p -= 20;
        memset(p, 0, 20);
        p[0] = 0x45;
        fz_be16(p + 2, (uint32_t)(len + 20));
        p[8] = 64;
        p[9] = proto;
        p[12] = 10, p[15] = 1;
        p[16] = 10, p[19] = 2;
        len += 20;
        p -= 14;
        memcpy(p, mac, 12);
        fz_be16(p + 12, 0x0800);
        len += 14;
        break;
    }
    }
    *n = len;
    return p;
}

/* Bytes the encapsulation adds inside an outer IPv4 length field. */
static size_t fz_outer_ip(enum fz_encap e)
{
    switch (e) {
    case FZ_IPIP:
        return 20;
    case FZ_GRE:
        return 24;
    case FZ_VXLAN:
        return 50;
    default:
        return 0;
    }
}

/* Records what fragment record k carried in the model, before the
 * reassembler sees it; false when there is no model. */
static bool fz_model_add(struct fz_run *r, unsigned k, size_t off, const uint8_t *data,
                         size_t caplen)
{
    struct fz_model *m = &r->model[k];
    if (!m->bytes) {
        m->bytes = calloc(2, FZ_MODEL_SIZE);
        if (!m->bytes) {
            r->raw_used = true; /* no model, no comparison */
            return false;
        }
    }
    uint8_t *have = m->bytes + FZ_MODEL_SIZE;
    for (size_t i = 0; i < caplen && off + i < FZ_MODEL_SIZE; i++) {
        size_t at = off + i;
        if (have[at] && m->bytes[at] != data[i])
            m->conflict = true;
        else if (!have[at])
            m->bytes[at] = data[i];
        have[at] = 1;
    }
    return true;
}

/* Builds, decodes and feeds one fragment: op and o as in a fragment record,
 * len bytes of data (the pattern from seed when lit is NULL). */
static void fz_emit(struct fz_run *r, uint8_t op, uint16_t o, size_t len, uint8_t seed,
                    const uint8_t *lit)
{
    unsigned k = op & 7;
    bool v6 = k & 1, more = op & 8, fill = lit == NULL, tcp = op & 32, cut = op & 64;
    uint32_t off = (uint32_t)(o & 0x1fff) * 8;

    /* Every length field must hold it: IPv4 total (20 + len), IPv6 payload
     * (8 + len), an outer IPv4 total on top. */
    size_t hl = v6 ? 48 : 20;
    size_t outer = fz_outer_ip(r->encap);
    size_t room = outer ? 65535 - outer - hl : 65535 - (v6 ? 8 : 20);
    if (len > room)
        len = room;
    size_t caplen = len;
    if (cut)
        caplen = len - len * ((size_t)(o >> 13) + 1) / 8;

    uint8_t src[16], dst[16];
    uint32_t id;
    fz_key(k, src, dst, &id);
    uint8_t *ip = r->pkt + 128;
    memset(ip, 0, hl);
    if (v6) {
        ip[0] = 0x60;
        fz_be16(ip + 4, (uint32_t)(8 + len));
        ip[6] = 44;
        ip[7] = 64;
        memcpy(ip + 8, src, 16);
        memcpy(ip + 24, dst, 16);
        ip[40] = 6;
        fz_be16(ip + 42, off | (more ? 1u : 0u));
        fz_be32(ip + 44, id);
    } else {
        ip[0] = 0x45;
        fz_be16(ip + 2, (uint32_t)(20 + len));
        fz_be16(ip + 4, id);
        fz_be16(ip + 6, (off / 8) | (more ? 0x2000u : 0u));
        ip[8] = 64;
        ip[9] = 6;
        memcpy(ip + 12, src, 4);
        memcpy(ip + 16, dst, 4);
    }
    uint8_t *data = ip + hl;
    for (size_t i = 0; i < caplen; i++) {
        size_t at = off + i;
        if (tcp && at < sizeof(fz_tcp_header))
            data[i] = fz_tcp_header[at];
        else
            data[i] = fill ? (uint8_t)(seed + at) : lit[i];
    }
    bool visible = !(r->encap == FZ_VXLAN && r->opts.vxlan_port == 0);
    bool is_frag = visible && (off != 0 || more);
    if (is_frag)
        (void)fz_model_add(r, k, off, data, caplen);
    size_t n_all;
    uint32_t lt;
    uint8_t *p = fz_wrap(r, hl + caplen, v6 ? 6 : 4, &n_all, &lt);
    struct cap_packet pkt;
    size_t frag_at;
    fz_packet(r, lt, p, n_all, &pkt, &frag_at);
    memcpy(r->last, p, n_all);
    r->last_len = n_all;

    if (!is_frag)
        return; /* not a fragment (IPv4), an atomic fragment (IPv6), or hidden in UDP */
    FZ_CHECK(pkt.frag.present);
    const struct cap_frag *f = &pkt.frag;
    FZ_CHECK(f->ipver == (v6 ? 6 : 4) && f->proto == 6 && f->id == id);
    FZ_CHECK(f->off == off && f->more == more);
    FZ_CHECK(f->len == caplen && f->wire == len);
    FZ_CHECK(frag_at == (size_t)(data - p));
    FZ_CHECK(off == 0 || pkt.status == CAP_ST_FRAGMENT);
}

/* One fragment record (first byte op). */
static void fz_fragment(struct fz_run *r, struct fz_in *in, uint8_t op)
{
    bool fill = op & 16;
    uint16_t o = 0, n = 0;
    uint8_t seed = 0;
    const uint8_t *lit = NULL;
    (void)fz_u16(in, &o);
    (void)fz_u16(in, &n);
    size_t len;
    if (fill) {
        (void)fz_u8(in, &seed);
        len = n;
    } else {
        len = fz_take(in, n & 0x7ff, &lit);
    }
    fz_emit(r, op, o, len, seed, lit);
}

/* A comb record: byte kb (bits 0-2 the datagram, bits 3-7 b), count c,
 * stride s, seed v: c + 1 one-byte fragments (more follow) at offsets
 * 2048 b, 2048 b + 8(s+1), 2048 b + 16(s+1), ... with bytes v, v+1, ...:
 * many pieces from a few input bytes, to reach CAP_DEFRAG_MAX_PIECES. */
static void fz_comb(struct fz_run *r, struct fz_in *in)
{
    uint8_t k = 0, c = 0, st = 0, v = 0;
    (void)fz_u8(in, &k);
    (void)fz_u8(in, &c);
    (void)fz_u8(in, &st);
    (void)fz_u8(in, &v);
    for (unsigned i = 0; i <= c; i++) {
        uint8_t b = (uint8_t)(v + i);
        uint32_t off8 = (k >> 3) * 256u + i * (st + 1u);
        if (off8 > 0x1fff)
            break;
        fz_emit(r, (uint8_t)((k & 7) | 8), (uint16_t)off8, 1, 0, &b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t mems[4] = {2048, 16384, 200000, 16u << 20};
    static const uint32_t dgs[4] = {1, 3, 16, 4096};
    struct fz_in in;
    fz_in_init(&in, data, size);
    uint8_t h0 = 0, h1 = 0;
    (void)fz_u8(&in, &h0);
    (void)fz_u8(&in, &h1);

    struct fz_run r;
    memset(&r, 0, sizeof(r));
    cap_defrag_limits_defaults(&r.lim);
    r.lim.mem_max = mems[h0 & 3];
    r.lim.max_datagrams = dgs[(h0 >> 2) & 3];
    r.lim.timeout = (sc_time)(h1 & 0x7f) * 250 * FZ_MS;
    r.encap = (enum fz_encap)((h0 >> 4) & 7);
    cap_decode_opts_defaults(&r.opts);
    if (h0 & 0x80)
        r.opts.vlan_in_ctx = r.opts.tunnel_in_ctx = false;
    if (h1 & 0x80)
        r.opts.vxlan_port = 0;
    r.ts = r.now = 1700000000 * SC_NS_PER_SEC;
    r.d = cap_defrag_new(&r.lim, &r.opts);
    r.pkt = malloc(FZ_PKT_MAX);
    r.last = malloc(FZ_PKT_MAX);
    if (!r.d || !r.pkt || !r.last)
        goto out;

    uint8_t op;
    bool abandon = false;
    while (!abandon && fz_u8(&in, &op)) {
        struct cap_packet pkt;
        size_t frag_at;
        if (op < 0x80) {
            fz_fragment(&r, &in, op);
        } else if (op < 0xc0) {
            if (op == 0xbf)
                r.ts -= 10 * SC_NS_PER_SEC;
            else
                r.ts += (sc_time)(op & 0x3f) * 250 * FZ_MS;
            if (r.ts > r.now)
                r.now = r.ts;
            fz_drain(&r);
        } else if ((op & 7) == 0) {
            cap_defrag_flush(r.d);
            fz_drain(&r);
            FZ_CHECK(cap_defrag_mem(r.d) == 0);
        } else if ((op & 7) == 1) {
            uint8_t lt = 0;
            uint16_t n = 0;
            const uint8_t *p = NULL;
            (void)fz_u8(&in, &lt);
            (void)fz_u16(&in, &n);
            size_t got = fz_take(&in, n, &p);
            r.raw_used = true;
            fz_packet(&r, fz_linktypes[lt % FZ_NLINKTYPES], p, got, &pkt, &frag_at);
        } else if ((op & 7) == 2) {
            if (r.last_len > 0) {
                uint32_t lt = r.encap == FZ_RAW   ? CAP_LINKTYPE_RAW
                              : r.encap == FZ_SLL ? CAP_LINKTYPE_LINUX_SLL
                                                  : CAP_LINKTYPE_ETHERNET;
                fz_packet(&r, lt, r.last, r.last_len, &pkt, &frag_at);
            }
        } else if ((op & 7) == 4) {
            fz_comb(&r, &in);
        } else if ((op & 7) == 5) {
            abandon = true;
        } else {
            fz_drain(&r);
        }
    }
    /* End of input, as cap_tracker_finish(): everything given up and
     * delivered, nothing left held.  After an abandon record, the
     * reassembler is freed with datagrams in progress and given up. */
    if (!abandon) {
        cap_defrag_flush(r.d);
        fz_drain(&r);
        FZ_CHECK(cap_defrag_mem(r.d) == 0);
    }
out:
    cap_defrag_free(r.d);
    for (unsigned k = 0; k < FZ_KEYS; k++)
        free(r.model[k].bytes);
    free(r.pkt);
    free(r.last);
    return 0;
}
