/* test_defrag.c - unit tests for IP fragment reassembly (capture/defrag.h):
 * orders, duplicates, conflicting overlaps, timeouts and partial delivery,
 * the memory and datagram limits under floods, contexts, IPv6, refusals.
 *
 * Fragments are cap_packet values whose frag field describes a slice of one
 * TCP segment (header + payload) built here, the way the decoder describes
 * them; each slice is a malloc'd copy of exactly its bytes, so the sanitizer
 * build reports any read outside it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "capture/defrag.h"

#define SEC SC_NS_PER_SEC
#define T_PORT_C 40000
#define T_PORT_S 25

/* A TCP segment: 20-byte header (ports, seq 1000, ACK|PSH) + n payload bytes
 * of pattern `fillc` + position. */
static size_t segment(uint8_t *b, size_t n, uint8_t fillc)
{
    memset(b, 0, 20);
    b[0] = T_PORT_C >> 8;
    b[1] = T_PORT_C & 0xff;
    b[2] = 0;
    b[3] = T_PORT_S;
    b[7] = 0xe8; /* seq 1000 */
    b[6] = 0x03;
    b[12] = 5 << 4;
    b[13] = 0x18;
    b[14] = 0xff;
    for (size_t i = 0; i < n; i++)
        b[20 + i] = (uint8_t)(fillc + i);
    return 20 + n;
}

struct frag_set {
    struct cap_packet pkt;
    uint8_t *copy;
};

/* A fragment of `seg` covering [off, off+len), as the decoder would
 * describe it for IPv4 (ipver 4) or IPv6. */
static void make_frag(struct frag_set *f, const uint8_t *seg, uint32_t off, uint32_t len, bool more,
                      uint32_t id, uint8_t ipver, uint64_t frame, sc_time ts)
{
    memset(&f->pkt, 0, sizeof(f->pkt));
    f->copy = malloc(len ? len : 1);
    assert_non_null(f->copy);
    memcpy(f->copy, seg + off, len);
    struct cap_packet *p = &f->pkt;
    p->frame = frame;
    p->ts = ts;
    p->status = off == 0 ? CAP_ST_TCP : CAP_ST_FRAGMENT;
    p->frag_first = off == 0;
    p->ipver = ipver;
    p->ttl = 61;
    cap_addr_parse(&p->src, ipver == 6 ? "2001:db8::1" : "192.0.2.1");
    cap_addr_parse(&p->dst, ipver == 6 ? "2001:db8::2" : "198.51.100.2");
    p->frag.present = true;
    p->frag.ipver = ipver;
    p->frag.proto = 6;
    p->frag.id = id;
    p->frag.off = off;
    p->frag.more = more;
    p->frag.len = len;
    p->frag.wire = len;
    p->frag.data = f->copy;
    p->frag.src = p->src;
    p->frag.dst = p->dst;
}

static void free_frag(struct frag_set *f)
{
    free(f->copy);
    f->copy = NULL;
}

static struct cap_defrag *new_defrag(size_t mem, uint32_t maxdg, sc_time timeout)
{
    struct cap_defrag_limits l;
    cap_defrag_limits_defaults(&l);
    if (mem)
        l.mem_max = mem;
    if (maxdg)
        l.max_datagrams = maxdg;
    if (timeout)
        l.timeout = timeout;
    struct cap_decode_opts o;
    cap_decode_opts_defaults(&o);
    struct cap_defrag *d = cap_defrag_new(&l, &o);
    assert_non_null(d);
    return d;
}

/* Feeds fragment [off, off+len) of seg; returns the result. */
static enum cap_defrag_result feed(struct cap_defrag *d, const uint8_t *seg, uint32_t off,
                                   uint32_t len, bool more, uint32_t id, uint64_t frame,
                                   struct cap_packet *out)
{
    struct frag_set f;
    make_frag(&f, seg, off, len, more, id, 4, frame, (sc_time)frame * SEC / 1000);
    enum cap_defrag_result r = cap_defrag_add(d, &f.pkt, out);
    free_frag(&f);
    return r;
}

static void assert_segment(const struct cap_packet *p, size_t payload, uint8_t fillc)
{
    assert_int_equal(p->status, CAP_ST_TCP);
    assert_int_equal(p->sport, T_PORT_C);
    assert_int_equal(p->dport, T_PORT_S);
    assert_int_equal(p->seq, 1000);
    assert_int_equal(p->payload_len, payload);
    assert_int_equal(p->payload_wire, payload);
    for (size_t i = 0; i < payload; i++)
        assert_int_equal(p->payload[i], (uint8_t)(fillc + i));
    assert_false(p->frag.present);
    assert_false(p->frag_first);
}

static void test_in_order_and_reversed(void **state)
{
    (void)state;
    uint8_t seg[2000];
    size_t n = segment(seg, 1480, 7);
    for (int order = 0; order < 2; order++) {
        struct cap_defrag *d = new_defrag(0, 0, 0);
        struct cap_packet out;
        static const uint32_t cuts[4] = {0, 504, 1000, 0};
        uint32_t c[4] = {cuts[0], cuts[1], cuts[2], (uint32_t)n};
        int seq[3] = {0, 1, 2};
        if (order) {
            seq[0] = 2;
            seq[2] = 0;
        }
        for (int i = 0; i < 3; i++) {
            int k = seq[i];
            enum cap_defrag_result r =
                feed(d, seg, c[k], c[k + 1] - c[k], k < 2, 77, (uint64_t)(10 + i), &out);
            assert_int_equal(r, i < 2 ? CAP_DEFRAG_HELD : CAP_DEFRAG_DONE);
        }
        assert_segment(&out, 1480, 7);
        assert_int_equal(out.frame, 12); /* the completing fragment's */
        assert_int_equal(out.frag_count, 3);
        assert_false(out.frag_conflict);
        assert_int_equal(out.ttl, 61);
        assert_int_equal(cap_defrag_stats(d)->reassembled, 1);
        assert_int_equal(cap_defrag_stats(d)->fragments, 3);
        assert_int_equal(cap_defrag_mem(d), 0);
        assert_false(cap_defrag_expired(d, 1000 * SEC, &out));
        cap_defrag_free(d);
    }
}

static void test_duplicates_and_conflicts(void **state)
{
    (void)state;
    uint8_t seg[600], other[600];
    size_t n = segment(seg, 500, 1);
    segment(other, 500, 101); /* same header, different payload bytes */
    struct cap_defrag *d = new_defrag(0, 0, 0);
    struct cap_packet out;
    assert_int_equal(feed(d, seg, 0, 256, true, 5, 1, &out), CAP_DEFRAG_HELD);
    /* An exact duplicate and a partial repeat: no new bytes, no conflict. */
    assert_int_equal(feed(d, seg, 0, 256, true, 5, 2, &out), CAP_DEFRAG_HELD);
    assert_int_equal(feed(d, seg, 128, 64, true, 5, 3, &out), CAP_DEFRAG_HELD);
    assert_int_equal(cap_defrag_stats(d)->duplicates, 2);
    assert_int_equal(cap_defrag_stats(d)->conflicts, 0);
    /* Overlapping [200, 400) with different bytes: the first copy is kept
     * for [200, 256), the new bytes fill [256, 400). */
    assert_int_equal(feed(d, other, 200, 200, true, 5, 4, &out), CAP_DEFRAG_HELD);
    assert_int_equal(cap_defrag_stats(d)->conflicts, 1);
    assert_int_equal(feed(d, seg, 400, (uint32_t)n - 400, false, 5, 5, &out), CAP_DEFRAG_DONE);
    assert_true(out.frag_conflict);
    assert_int_equal(out.status, CAP_ST_TCP);
    assert_int_equal(out.payload_len, 500);
    for (size_t i = 0; i < 500; i++) {
        size_t at = 20 + i;
        uint8_t want = at < 256 || at >= 400 ? seg[at] : other[at];
        assert_int_equal(out.payload[i], want);
    }
    cap_defrag_free(d);
}

static void test_two_ends_is_a_conflict(void **state)
{
    (void)state;
    uint8_t seg[600];
    segment(seg, 500, 3);
    struct cap_defrag *d = new_defrag(0, 0, 0);
    struct cap_packet out;
    /* Two "last" fragments claiming different ends; the first claim holds. */
    assert_int_equal(feed(d, seg, 256, 264, false, 9, 1, &out), CAP_DEFRAG_HELD);
    assert_int_equal(feed(d, seg, 256, 200, false, 9, 2, &out), CAP_DEFRAG_HELD);
    assert_int_equal(feed(d, seg, 0, 256, true, 9, 3, &out), CAP_DEFRAG_DONE);
    assert_true(out.frag_conflict);
    assert_int_equal(out.payload_len, 500);
    cap_defrag_free(d);
}

static void test_timeout_delivers_the_first_fragment(void **state)
{
    (void)state;
    uint8_t seg[1200];
    segment(seg, 1000, 9);
    struct cap_defrag *d = new_defrag(0, 0, 30 * SEC);
    struct cap_packet out;
    /* Datagram 1: first and last, the middle never comes. */
    assert_int_equal(feed(d, seg, 0, 400, true, 1, 1, &out), CAP_DEFRAG_HELD);
    assert_int_equal(feed(d, seg, 800, 220, false, 1, 2, &out), CAP_DEFRAG_HELD);
    /* Datagram 2: only a middle fragment. */
    assert_int_equal(feed(d, seg, 400, 400, true, 2, 3, &out), CAP_DEFRAG_HELD);
    assert_false(cap_defrag_expired(d, 10 * SEC, &out)); /* not yet */
    assert_true(cap_defrag_expired(d, 40 * SEC, &out));
    assert_int_equal(out.status, CAP_ST_TCP);
    assert_true(out.frag_first);
    assert_int_equal(out.frame, 1); /* the first fragment's own frame */
    assert_int_equal(out.payload_len, 380);
    assert_memory_equal(out.payload, seg + 20, 380);
    assert_false(cap_defrag_expired(d, 40 * SEC, &out)); /* datagram 2 has no first */
    assert_int_equal(cap_defrag_stats(d)->timed_out, 2);
    assert_int_equal(cap_defrag_mem(d), 0);
    cap_defrag_free(d);
}

static void test_flush_at_end(void **state)
{
    (void)state;
    uint8_t seg[600];
    segment(seg, 500, 4);
    struct cap_defrag *d = new_defrag(0, 0, 0);
    struct cap_packet out;
    assert_int_equal(feed(d, seg, 0, 256, true, 3, 1, &out), CAP_DEFRAG_HELD);
    assert_false(cap_defrag_expired(d, 0, &out));
    cap_defrag_flush(d);
    assert_true(cap_defrag_expired(d, 0, &out));
    assert_true(out.frag_first);
    assert_int_equal(out.payload_len, 236);
    assert_false(cap_defrag_expired(d, 0, &out));
    cap_defrag_free(d);
}

/* Random fragment floods never hold more than the memory limit, and a real
 * datagram sent after the flood still completes. */
static void test_flood_stays_bounded(void **state)
{
    (void)state;
    uint8_t seg[1600];
    size_t n = segment(seg, 1400, 5);
    const size_t mem = 256 * 1024;
    struct cap_defrag *d = new_defrag(mem, 512, 0);
    struct cap_packet out;
    uint32_t r = 12345;
    for (uint32_t i = 0; i < 200000; i++) {
        r = r * 1103515245u + 12345u;
        uint32_t off = ((r >> 8) % 150) * 8;
        uint32_t len = 8 + ((r >> 20) % 64) * 8;
        if (off + len > n)
            len = (uint32_t)n - off;
        enum cap_defrag_result res =
            feed(d, seg, off, len, true, (r >> 4) % 100000, (uint64_t)i + 1, &out);
        assert_int_not_equal(res, CAP_DEFRAG_DONE); /* no last fragment: nothing completes */
        assert_true(cap_defrag_mem(d) <= mem);
        while (cap_defrag_expired(d, (sc_time)i * SEC / 1000, &out))
            assert_true(out.frag_first);
    }
    const struct cap_defrag_stats *st = cap_defrag_stats(d);
    assert_true(st->evicted > 0);
    assert_int_equal(st->fragments, 200000);
    /* A real datagram after the flood. */
    assert_int_equal(feed(d, seg, 0, 800, true, 999999, 300000, &out), CAP_DEFRAG_HELD);
    assert_int_equal(feed(d, seg, 800, (uint32_t)n - 800, false, 999999, 300001, &out),
                     CAP_DEFRAG_DONE);
    assert_segment(&out, 1400, 5);
    cap_defrag_free(d);
}

/* A fragment that fills many holes at once is charged for every piece it
 * makes, not for its length and one piece: 35 one-byte pieces 8 bytes apart,
 * then one fragment over all of them, must not take the memory held past
 * mem_max (it did: 3640 bytes held under a 2048-byte limit; found by
 * fuzz_defrag's memory check).  With room, the same datagram completes. */
static void test_many_holes_charged(void **state)
{
    (void)state;
    uint8_t seg[400];
    size_t n = segment(seg, 380, 21);
    struct cap_packet out;
    for (int roomy = 0; roomy < 2; roomy++) {
        const size_t mem = roomy ? 65536 : 2048;
        struct cap_defrag *d = new_defrag(mem, 0, 0);
        uint64_t frame = 1;
        for (uint32_t i = 0; i < 35; i++) {
            assert_int_equal(feed(d, seg, i * 8, 1, true, 50, frame++, &out), CAP_DEFRAG_HELD);
            assert_true(cap_defrag_mem(d) <= mem);
        }
        assert_int_equal(feed(d, seg, 0, 280, true, 50, frame++, &out), CAP_DEFRAG_HELD);
        assert_true(cap_defrag_mem(d) <= mem);
        enum cap_defrag_result r = feed(d, seg, 280, (uint32_t)n - 280, false, 50, frame++, &out);
        if (roomy) {
            assert_int_equal(r, CAP_DEFRAG_DONE);
            assert_segment(&out, 380, 21);
        } else {
            assert_int_not_equal(r, CAP_DEFRAG_DONE); /* the middle fragment did not fit */
            assert_true(cap_defrag_stats(d)->invalid > 0);
        }
        assert_true(cap_defrag_mem(d) <= mem);
        cap_defrag_free(d);
    }
}

/* Tiny fragments in a shuffled order, with duplicates, complete exactly
 * once; more pieces than CAP_DEFRAG_MAX_PIECES give up the datagram. */
static void test_tiny_pieces(void **state)
{
    (void)state;
    uint8_t seg[1300];
    size_t n = segment(seg, 1260, 11); /* 1280 bytes: 160 pieces of 8 */
    uint32_t order[160];
    for (uint32_t i = 0; i < 160; i++)
        order[i] = i;
    uint32_t r = 7;
    for (uint32_t i = 159; i > 0; i--) {
        r = r * 1103515245u + 12345u;
        uint32_t j = (r >> 8) % (i + 1);
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    struct cap_defrag *d = new_defrag(0, 0, 0);
    struct cap_packet out;
    int done = 0;
    for (uint32_t i = 0; i < 160; i++) {
        uint32_t k = order[i];
        if (feed(d, seg, k * 8, 8, k < 159, 42, i + 1, &out) == CAP_DEFRAG_DONE)
            done++;
        if (i % 7 == 0 && feed(d, seg, k * 8, 8, k < 159, 42, i + 1, &out) == CAP_DEFRAG_DONE)
            done++; /* a duplicate right after */
    }
    assert_int_equal(done, 1);
    assert_int_equal(n, 1280);
    cap_defrag_free(d);

    /* 1-byte pieces (not multiples of 8: hostile) beyond the piece limit. */
    static uint8_t big[4 * CAP_DEFRAG_MAX_PIECES];
    segment(big, sizeof(big) - 20, 0);
    d = new_defrag(0, 0, 0);
    for (uint32_t i = 0; i < 2 * (CAP_DEFRAG_MAX_PIECES + 10); i += 2)
        (void)feed(d, big, i, 1, true, 43, i + 1, &out);
    assert_true(cap_defrag_stats(d)->invalid > 0);
    assert_true(cap_defrag_mem(d) < (size_t)CAP_DEFRAG_MAX_PIECES * 64);
    cap_defrag_free(d);
}

static void test_refusals(void **state)
{
    (void)state;
    uint8_t seg[100];
    segment(seg, 60, 1);
    struct cap_defrag *d = new_defrag(0, 0, 0);
    struct cap_packet out;
    struct frag_set f;
    /* Past the largest datagram. */
    make_frag(&f, seg, 0, 80, true, 1, 4, 1, 0);
    f.pkt.frag.off = 65528;
    assert_int_equal(cap_defrag_add(d, &f.pkt, &out), CAP_DEFRAG_REFUSED);
    /* A middle fragment with no data. */
    f.pkt.frag.off = 8;
    f.pkt.frag.len = f.pkt.frag.wire = 0;
    assert_int_equal(cap_defrag_add(d, &f.pkt, &out), CAP_DEFRAG_REFUSED);
    /* Not a fragment at all. */
    f.pkt.frag.present = false;
    assert_int_equal(cap_defrag_add(d, &f.pkt, &out), CAP_DEFRAG_REFUSED);
    free_frag(&f);
    assert_int_equal(cap_defrag_stats(d)->invalid, 2);
    cap_defrag_free(d);
}

/* The same datagram id in two contexts (two mirror sessions) or two IP
 * versions is two datagrams; IPv6 fragments reassemble through the
 * fragment header's next header. */
static void test_contexts_and_ipv6(void **state)
{
    (void)state;
    uint8_t seg[600];
    size_t n = segment(seg, 500, 21);
    struct cap_defrag *d = new_defrag(0, 0, 0);
    struct cap_packet out;
    struct frag_set a, b;
    make_frag(&a, seg, 0, 256, true, 8, 4, 1, 0);
    a.pkt.frag.ctx = 111;
    make_frag(&b, seg, 256, (uint32_t)n - 256, false, 8, 4, 2, 0);
    b.pkt.frag.ctx = 222;
    assert_int_equal(cap_defrag_add(d, &a.pkt, &out), CAP_DEFRAG_HELD);
    assert_int_equal(cap_defrag_add(d, &b.pkt, &out), CAP_DEFRAG_HELD);
    b.pkt.frag.ctx = 111;
    assert_int_equal(cap_defrag_add(d, &b.pkt, &out), CAP_DEFRAG_DONE);
    assert_segment(&out, 500, 21);
    free_frag(&a);
    free_frag(&b);

    make_frag(&a, seg, 0, 256, true, 0x01020304, 6, 3, 0);
    make_frag(&b, seg, 256, (uint32_t)n - 256, false, 0x01020304, 6, 4, 0);
    assert_int_equal(cap_defrag_add(d, &b.pkt, &out), CAP_DEFRAG_HELD);
    assert_int_equal(cap_defrag_add(d, &a.pkt, &out), CAP_DEFRAG_DONE);
    assert_segment(&out, 500, 21);
    assert_int_equal(out.ipver, 6);
    char s[64];
    cap_endpoint_str(s, sizeof(s), &out.src, out.sport);
    assert_string_equal(s, "[2001:db8::1]:40000");
    free_frag(&a);
    free_frag(&b);
    cap_defrag_free(d);
}

/* More datagrams in progress than the limit: the oldest are given up, and
 * their first fragments delivered. */
static void test_datagram_limit(void **state)
{
    (void)state;
    uint8_t seg[600];
    segment(seg, 500, 2);
    struct cap_defrag *d = new_defrag(0, 4, 0);
    struct cap_packet out;
    for (uint32_t id = 1; id <= 10; id++)
        assert_int_equal(feed(d, seg, 0, 256, true, id, id, &out), CAP_DEFRAG_HELD);
    int partial = 0;
    while (cap_defrag_expired(d, 0, &out)) {
        assert_true(out.frag_first);
        partial++;
    }
    assert_int_equal(partial, 6);
    assert_int_equal(cap_defrag_stats(d)->evicted, 6);
    cap_defrag_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_and_reversed),
        cmocka_unit_test(test_duplicates_and_conflicts),
        cmocka_unit_test(test_two_ends_is_a_conflict),
        cmocka_unit_test(test_timeout_delivers_the_first_fragment),
        cmocka_unit_test(test_flush_at_end),
        cmocka_unit_test(test_flood_stays_bounded),
        cmocka_unit_test(test_tiny_pieces),
        cmocka_unit_test(test_many_holes_charged),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_contexts_and_ipv6),
        cmocka_unit_test(test_datagram_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
