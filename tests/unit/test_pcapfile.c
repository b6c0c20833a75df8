/* test_pcapfile.c - unit tests for the pcap/pcapng reader: both byte orders,
 * both pcap resolutions, pcapng sections, interfaces, if_tsresol and
 * if_tsoffset, skipped blocks, corrupt lengths, truncation at every byte,
 * and a pipe read in small chunks.
 *
 * Memory inputs are malloc'd copies of exactly their length, so the sanitizer
 * build reports any read past the end of the input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture/pcapfile.h"
#include "common/error.h"

/* ---- file builder ---- */

struct fb {
    uint8_t b[65536];
    size_t n;
    bool big; /* byte order of the multi-byte fields being written */
};

static void fb_u8(struct fb *f, uint32_t v)
{
    f->b[f->n++] = (uint8_t)v;
}

static void fb_u16(struct fb *f, uint32_t v)
{
    for (int i = 0; i < 2; i++)
        fb_u8(f, v >> (8 * (f->big ? 1 - i : i)));
}

static void fb_u32(struct fb *f, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        fb_u8(f, v >> (8 * (f->big ? 3 - i : i)));
}

static void fb_u64(struct fb *f, uint64_t v)
{
    fb_u32(f, (uint32_t)(f->big ? v >> 32 : v));
    fb_u32(f, (uint32_t)(f->big ? v : v >> 32));
}

static void fb_set32(struct fb *f, size_t at, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        f->b[at + (size_t)i] = (uint8_t)(v >> (8 * (f->big ? 3 - i : i)));
}

/* Packet bytes whose value says where they came from: byte i is seed + i. */
static void fb_data(struct fb *f, uint32_t seed, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fb_u8(f, (uint32_t)(seed + i));
}

static void fb_pad4(struct fb *f)
{
    while (f->n & 3)
        fb_u8(f, 0);
}

static void pcap_hdr(struct fb *f, uint32_t magic, uint32_t linktype)
{
    fb_u32(f, magic);
    fb_u16(f, 2);
    fb_u16(f, 4);
    fb_u32(f, 0);
    fb_u32(f, 0);
    fb_u32(f, 65535);
    fb_u32(f, linktype);
}

static void pcap_rec(struct fb *f, uint32_t sec, uint32_t frac, uint32_t caplen, uint32_t wirelen,
                     uint32_t seed)
{
    fb_u32(f, sec);
    fb_u32(f, frac);
    fb_u32(f, caplen);
    fb_u32(f, wirelen);
    fb_data(f, seed, caplen);
}

/* Starts a pcapng block; blk_end() pads it and writes both lengths. */
static size_t blk_begin(struct fb *f, uint32_t type)
{
    size_t at = f->n;
    fb_u32(f, type);
    fb_u32(f, 0);
    return at;
}

static void blk_end(struct fb *f, size_t at)
{
    fb_pad4(f);
    uint32_t len = (uint32_t)(f->n - at + 4);
    fb_set32(f, at + 4, len);
    fb_u32(f, len);
}

static void shb(struct fb *f, bool big)
{
    f->big = big;
    size_t at = blk_begin(f, 0x0a0d0d0a);
    fb_u32(f, 0x1a2b3c4d);
    fb_u16(f, 1);
    fb_u16(f, 0);
    fb_u64(f, UINT64_MAX); /* section length unknown */
    blk_end(f, at);
}

/* An IDB; tsresol < 0 leaves the option out, tsoffset 0 too. */
static void idb(struct fb *f, uint32_t linktype, int tsresol, int64_t tsoffset)
{
    size_t at = blk_begin(f, 1);
    fb_u16(f, linktype);
    fb_u16(f, 0);
    fb_u32(f, 0); /* snaplen: no limit */
    if (tsresol >= 0) {
        fb_u16(f, 9);
        fb_u16(f, 1);
        fb_u8(f, (uint32_t)tsresol);
        fb_pad4(f);
    }
    if (tsoffset) {
        fb_u16(f, 14);
        fb_u16(f, 8);
        fb_u64(f, (uint64_t)tsoffset);
    }
    fb_u16(f, 0); /* opt_endofopt */
    fb_u16(f, 0);
    blk_end(f, at);
}

static void epb(struct fb *f, uint32_t ifid, uint64_t units, uint32_t caplen, uint32_t wirelen,
                uint32_t seed)
{
    size_t at = blk_begin(f, 6);
    fb_u32(f, ifid);
    fb_u32(f, (uint32_t)(units >> 32));
    fb_u32(f, (uint32_t)units);
    fb_u32(f, caplen);
    fb_u32(f, wirelen);
    fb_data(f, seed, caplen);
    blk_end(f, at);
}

static void opb(struct fb *f, uint32_t ifid, uint64_t units, uint32_t caplen, uint32_t seed)
{
    size_t at = blk_begin(f, 2);
    fb_u16(f, ifid);
    fb_u16(f, 0); /* drops */
    fb_u32(f, (uint32_t)(units >> 32));
    fb_u32(f, (uint32_t)units);
    fb_u32(f, caplen);
    fb_u32(f, caplen);
    fb_data(f, seed, caplen);
    blk_end(f, at);
}

static void spb(struct fb *f, uint32_t wirelen, uint32_t seed)
{
    size_t at = blk_begin(f, 3);
    fb_u32(f, wirelen);
    fb_data(f, seed, wirelen);
    blk_end(f, at);
}

/* A block the reader does not know or need: NRB, ISB, or anything else. */
static void other_block(struct fb *f, uint32_t type, size_t body)
{
    size_t at = blk_begin(f, type);
    fb_data(f, 0x77, body);
    blk_end(f, at);
}

/* ---- reading ---- */

/* A reader over an exact-length heap copy of the input. */
struct rd {
    struct cap_reader *r;
    uint8_t *buf;
    int rc;
};

static void rd_open(struct rd *d, const uint8_t *p, size_t len, const struct cap_reader_settings *s)
{
    d->buf = NULL; /* an empty input is passed as (NULL, 0) */
    if (len) {
        d->buf = malloc(len);
        assert_non_null(d->buf);
        memcpy(d->buf, p, len);
    }
    d->rc = cap_reader_open_mem(&d->r, d->buf, len, s);
    assert_non_null(d->r);
}

static void rd_close(struct rd *d)
{
    cap_reader_free(d->r);
    free(d->buf);
}

struct exp {
    uint32_t caplen, wirelen, linktype, ifindex;
    uint64_t frame;
    sc_time ts;
    uint32_t seed; /* first data byte; the others count up from it */
};

static void expect_rec(struct cap_reader *r, const struct exp *e)
{
    struct cap_record rec;
    memset(&rec, 0xa5, sizeof(rec));
    int rc = cap_reader_next(r, &rec);
    if (rc != 1)
        fail_msg("frame %llu: next returned %d (%s)", (unsigned long long)e->frame, rc,
                 cap_reader_errmsg(r));
    assert_int_equal(rec.frame, e->frame);
    assert_int_equal(rec.caplen, e->caplen);
    assert_int_equal(rec.wirelen, e->wirelen);
    assert_int_equal(rec.linktype, e->linktype);
    assert_int_equal(rec.ifindex, e->ifindex);
    assert_int_equal(rec.ts, e->ts);
    for (uint32_t i = 0; i < e->caplen; i++)
        assert_int_equal(rec.data[i], (uint8_t)(e->seed + i));
}

/* Checks that r has failed with err: this call and the next return it. */
static void expect_err(struct cap_reader *r, int err, const char *msg_part)
{
    struct cap_record rec;
    assert_int_equal(cap_reader_next(r, &rec), err);
    assert_int_equal(cap_reader_next(r, &rec), err);
    if (msg_part && !strstr(cap_reader_errmsg(r), msg_part))
        fail_msg("error message \"%s\" lacks \"%s\"", cap_reader_errmsg(r), msg_part);
}

static void expect_end(struct cap_reader *r)
{
    struct cap_record rec;
    assert_int_equal(cap_reader_next(r, &rec), 0);
    assert_int_equal(cap_reader_next(r, &rec), 0);
    assert_string_equal(cap_reader_errmsg(r), "");
}

/* ---- classic pcap ---- */

static void test_pcap_magic_variants_and_timestamps(void **state)
{
    (void)state;
    static const struct {
        uint32_t magic;
        bool big, nsec;
    } v[4] = {
        {0xa1b2c3d4, false, false},
        {0xa1b2c3d4, true, false},
        {0xa1b23c4d, false, true},
        {0xa1b23c4d, true, true},
    };
    for (int i = 0; i < 4; i++) {
        struct fb *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        f->big = v[i].big;
        pcap_hdr(f, v[i].magic, 1);
        pcap_rec(f, 1700000000, v[i].nsec ? 123456789 : 123456, 60, 60, 10);
        pcap_rec(f, 1700000001, v[i].nsec ? 999999999 : 999999, 1, 1, 99);
        struct rd d;
        rd_open(&d, f->b, f->n, NULL);
        assert_int_equal(d.rc, 0);
        assert_string_equal(cap_reader_format(d.r), "pcap");
        assert_int_equal(cap_reader_linktype(d.r), 1);
        assert_int_equal(cap_reader_offset(d.r), 24);
        struct exp e1 = {60, 60, 1, 0, 1, INT64_C(1700000000123456789), 10};
        struct exp e2 = {1, 1, 1, 0, 2, INT64_C(1700000001999999999), 99};
        if (!v[i].nsec) {
            e1.ts = INT64_C(1700000000123456000);
            e2.ts = INT64_C(1700000001999999000);
        }
        expect_rec(d.r, &e1);
        assert_int_equal(cap_reader_offset(d.r), 24 + 16 + 60);
        expect_rec(d.r, &e2);
        assert_int_equal(cap_reader_offset(d.r), f->n);
        expect_end(d.r);
        rd_close(&d);
        free(f);
    }
}

static void test_pcap_linktype_fcs_bits_are_masked(void **state)
{
    (void)state;
    static struct fb f;
    f.n = 0;
    f.big = false;
    pcap_hdr(&f, 0xa1b2c3d4, 0x14000000u | 1); /* FCS present, 4 bytes of it */
    pcap_rec(&f, 1, 0, 20, 20, 0);
    struct rd d;
    rd_open(&d, f.b, f.n, NULL);
    assert_int_equal(d.rc, 0);
    assert_int_equal(cap_reader_linktype(d.r), 1);
    struct exp e = {20, 20, 1, 0, 1, SC_NS_PER_SEC, 0};
    expect_rec(d.r, &e);
    rd_close(&d);
}

static void test_pcap_caplen_below_wirelen_is_kept(void **state)
{
    (void)state;
    static struct fb f;
    f.n = 0;
    f.big = true;
    pcap_hdr(&f, 0xa1b2c3d4, 101);
    pcap_rec(&f, 2, 5, 68, 1514, 3);
    struct rd d;
    rd_open(&d, f.b, f.n, NULL);
    struct exp e = {68, 1514, 101, 0, 1, 2 * SC_NS_PER_SEC + 5000, 3};
    expect_rec(d.r, &e);
    expect_end(d.r);
    rd_close(&d);
}

static void test_pcap_caplen_over_limit_is_corrupt_and_sticky(void **state)
{
    (void)state;
    static struct fb f;
    f.n = 0;
    f.big = false;
    pcap_hdr(&f, 0xa1b2c3d4, 1);
    pcap_rec(&f, 1, 0, 100, 100, 0);
    pcap_rec(&f, 1, 0, 101, 101, 0);
    pcap_rec(&f, 1, 0, 10, 10, 0);
    struct cap_reader_settings s;
    cap_reader_defaults(&s);
    s.max_caplen = 100;
    struct rd d;
    rd_open(&d, f.b, f.n, &s);
    struct exp e = {100, 100, 1, 0, 1, SC_NS_PER_SEC, 0};
    expect_rec(d.r, &e);
    expect_err(d.r, SC_ECORRUPT, "packet 2");
    rd_close(&d);
}

static void test_empty_bad_magic_and_kuznetzov_files(void **state)
{
    (void)state;
    struct rd d;
    rd_open(&d, NULL, 0, NULL);
    assert_int_equal(d.rc, SC_EFORMAT);
    assert_non_null(strstr(cap_reader_errmsg(d.r), "empty file"));
    expect_err(d.r, SC_EFORMAT, "not a pcap or pcapng file");
    rd_close(&d);

    static struct fb f;
    f.n = 0;
    f.big = false;
    pcap_hdr(&f, 0x46464952, 1); /* "RIFF" */
    pcap_rec(&f, 1, 0, 10, 10, 0);
    rd_open(&d, f.b, f.n, NULL);
    assert_int_equal(d.rc, SC_EFORMAT);
    assert_string_equal(cap_reader_errmsg(d.r), "not a pcap or pcapng file");
    expect_err(d.r, SC_EFORMAT, "not a pcap or pcapng file");
    rd_close(&d);

    for (int big = 0; big < 2; big++) {
        f.n = 0;
        f.big = big;
        pcap_hdr(&f, 0xa1b2cd34, 1);
        rd_open(&d, f.b, f.n, NULL);
        assert_int_equal(d.rc, SC_EUNSUPP);
        expect_err(d.r, SC_EUNSUPP, "Kuznetzov");
        rd_close(&d);
    }
}

/* Opens every prefix of the file and checks what comes out: the records
 * whose block ends within the prefix, then a clean end when the cut falls on
 * a block boundary and SC_ETRUNC otherwise.  ends[] lists where each block
 * ends (the pcap file header or a pcapng SHB first); packet[] says which
 * blocks are packet records.  Below open_min bytes, opening fails. */
static void check_every_truncation(const uint8_t *file, size_t len, const size_t *ends,
                                   const bool *packet, size_t nblk, size_t open_min)
{
    /* Where each record's data lies in the complete file. */
    struct cap_record full[16];
    ptrdiff_t data_off[16];
    size_t nfull = 0;
    struct rd d;
    rd_open(&d, file, len, NULL);
    assert_int_equal(d.rc, 0);
    while (nfull < 16 && cap_reader_next(d.r, &full[nfull]) == 1) {
        data_off[nfull] = full[nfull].data - d.buf;
        nfull++;
    }
    rd_close(&d);

    for (size_t cut = 0; cut <= len; cut++) {
        rd_open(&d, file, cut, NULL);
        if (cut < open_min) {
            assert_int_equal(d.rc, cut == 0 ? SC_EFORMAT : SC_ETRUNC);
            expect_err(d.r, d.rc, NULL);
            rd_close(&d);
            continue;
        }
        assert_int_equal(d.rc, 0);
        size_t nexp = 0, boundary_end = 0;
        bool boundary = false;
        for (size_t b = 0; b < nblk; b++) {
            if (ends[b] <= cut) {
                nexp += packet[b];
                boundary_end = ends[b];
            }
            boundary |= ends[b] == cut;
        }
        assert_true(nexp <= nfull);
        struct cap_record rec;
        for (size_t i = 0; i < nexp; i++) {
            int rc = cap_reader_next(d.r, &rec);
            if (rc != 1)
                fail_msg("cut at %zu: record %zu: %d (%s)", cut, i + 1, rc, cap_reader_errmsg(d.r));
            assert_int_equal(rec.frame, i + 1);
            assert_int_equal(rec.data - d.buf, data_off[i]);
            assert_int_equal(rec.caplen, full[i].caplen);
            assert_int_equal(rec.ts, full[i].ts);
            assert_int_equal(rec.linktype, full[i].linktype);
        }
        int rc = cap_reader_next(d.r, &rec);
        if (rc != (boundary ? 0 : SC_ETRUNC))
            fail_msg("cut at %zu of %zu: expected %d after %zu records, got %d (%s)", cut, len,
                     boundary ? 0 : SC_ETRUNC, nexp, rc, cap_reader_errmsg(d.r));
        if (boundary) {
            assert_int_equal(cap_reader_offset(d.r), cut);
        } else {
            assert_true(cap_reader_offset(d.r) >= boundary_end);
            assert_true(cap_reader_errmsg(d.r)[0] != '\0');
            expect_err(d.r, SC_ETRUNC, NULL);
        }
        rd_close(&d);
    }
}

static void test_pcap_truncated_at_every_offset(void **state)
{
    (void)state;
    static struct fb f;
    for (int big = 0; big < 2; big++) {
        f.n = 0;
        f.big = big;
        size_t ends[4];
        bool packet[4] = {false, true, true, true};
        pcap_hdr(&f, 0xa1b23c4d, 1);
        ends[0] = f.n;
        pcap_rec(&f, 1, 1, 20, 20, 1);
        ends[1] = f.n;
        pcap_rec(&f, 2, 2, 0, 0, 2); /* an empty record */
        ends[2] = f.n;
        pcap_rec(&f, 3, 3, 7, 1500, 3);
        ends[3] = f.n;
        check_every_truncation(f.b, f.n, ends, packet, 4, 24);
    }
}

/* ---- pcapng ---- */

#define TS_NS UINT64_C(1700000000123456789)
#define TS_MS UINT64_C(1700000000123)

/* Section 1 (little endian): IDB 0 Ethernet in ns, IDB 1 raw IP in ms with
 * a +100 s offset, then EPBs, an SPB, an OPB and blocks to skip.  Section 2
 * (big endian): one IDB, LINKTYPE_IPV4 in 2^-10 s.  Returns the number of
 * blocks and fills ends[]/packet[]. */
static size_t build_pcapng(struct fb *f, size_t *ends, bool *packet)
{
    size_t n = 0;
    f->n = 0;
#define MARK(is_packet) (ends[n] = f->n, packet[n++] = (is_packet))
    shb(f, false);
    MARK(false);
    idb(f, 1, 9, 0);
    MARK(false);
    idb(f, 101, 3, 100);
    MARK(false);
    epb(f, 0, TS_NS, 61, 61, 1);
    MARK(true);
    other_block(f, 0x00000bad, 13); /* unknown type */
    MARK(false);
    other_block(f, 4, 16); /* NRB */
    MARK(false);
    epb(f, 1, TS_MS, 40, 1500, 2);
    MARK(true);
    other_block(f, 5, 12); /* ISB */
    MARK(false);
    spb(f, 6, 3);
    MARK(true);
    opb(f, 1, TS_MS + 1, 9, 4);
    MARK(true);
    shb(f, true);
    MARK(false);
    idb(f, 228, 0x8a, 0);
    MARK(false);
    epb(f, 0, (UINT64_C(5) << 10) | 512, 20, 20, 5);
    MARK(true);
#undef MARK
    return n;
}

static void test_pcapng_sections_interfaces_and_timestamps(void **state)
{
    (void)state;
    static struct fb f;
    size_t ends[16];
    bool packet[16];
    size_t nblk = build_pcapng(&f, ends, packet);
    struct rd d;
    rd_open(&d, f.b, f.n, NULL);
    assert_int_equal(d.rc, 0);
    assert_string_equal(cap_reader_format(d.r), "pcapng");
    const sc_time ms_ts = (sc_time)TS_MS * 1000000 + 100 * SC_NS_PER_SEC;
    const struct exp e[5] = {
        {61, 61, 1, 0, 1, (sc_time)TS_NS, 1},
        {40, 1500, 101, 1, 2, ms_ts, 2},
        {6, 6, 1, 0, 3, 0, 3}, /* SPB: interface 0, no timestamp, no padding */
        {9, 9, 101, 1, 4, ms_ts + 1000000, 4},
        {20, 20, 228, 0, 5, INT64_C(5500000000), 5}, /* second section replaced IDB 0 */
    };
    size_t pk = 0;
    for (size_t b = 0; b < nblk; b++) {
        if (!packet[b])
            continue;
        expect_rec(d.r, &e[pk++]);
        assert_int_equal(cap_reader_offset(d.r), ends[b]);
        if (pk == 1)
            assert_int_equal(cap_reader_linktype(d.r), 1);
    }
    assert_int_equal(pk, 5);
    expect_end(d.r);
    assert_int_equal(cap_reader_offset(d.r), f.n);
    rd_close(&d);
}

static void test_pcapng_truncated_at_every_offset(void **state)
{
    (void)state;
    static struct fb f;
    size_t ends[16];
    bool packet[16];
    size_t nblk = build_pcapng(&f, ends, packet);
    check_every_truncation(f.b, f.n, ends, packet, nblk, 12);
}

static void test_pcapng_trailer_length_mismatch_is_corrupt(void **state)
{
    (void)state;
    static struct fb f;
    size_t ends[16];
    bool packet[16];
    build_pcapng(&f, ends, packet);
    /* Block 6 is the second EPB; its trailing length sits just before its end. */
    fb_set32(&f, ends[6] - 4, (uint32_t)(ends[6] - ends[5] + 4));
    struct rd d;
    rd_open(&d, f.b, f.n, NULL);
    struct exp e = {61, 61, 1, 0, 1, (sc_time)TS_NS, 1};
    expect_rec(d.r, &e);
    expect_err(d.r, SC_ECORRUPT, "trailer");
    rd_close(&d);

    /* A length that is not a multiple of 4 is corrupt as well. */
    build_pcapng(&f, ends, packet);
    fb_set32(&f, ends[3] + 4, (uint32_t)(ends[4] - ends[3] + 1));
    rd_open(&d, f.b, f.n, NULL);
    expect_rec(d.r, &e);
    expect_err(d.r, SC_ECORRUPT, NULL);
    rd_close(&d);

    /* So is a block over max_block. */
    build_pcapng(&f, ends, packet);
    struct cap_reader_settings s;
    cap_reader_defaults(&s);
    s.max_block = 64; /* the first EPB takes 96 */
    rd_open(&d, f.b, f.n, &s);
    assert_int_equal(d.rc, 0);
    expect_err(d.r, SC_ECORRUPT, "exceeds the maximum");
    rd_close(&d);
}

static void test_pcapng_undefined_interface_is_corrupt(void **state)
{
    (void)state;
    static struct fb f;
    f.n = 0;
    shb(&f, false);
    idb(&f, 1, -1, 0);
    idb(&f, 1, -1, 0);
    epb(&f, 1, 1000000, 4, 4, 0);
    epb(&f, 2, 1000000, 4, 4, 0);
    struct rd d;
    rd_open(&d, f.b, f.n, NULL);
    struct exp e = {4, 4, 1, 1, 1, SC_NS_PER_SEC, 0}; /* default resolution: us */
    expect_rec(d.r, &e);
    expect_err(d.r, SC_ECORRUPT, "interface 2");
    rd_close(&d);

    /* A new section forgets the old section's interfaces. */
    f.n = 0;
    shb(&f, false);
    idb(&f, 1, -1, 0);
    idb(&f, 101, -1, 0);
    shb(&f, true);
    idb(&f, 1, -1, 0);
    epb(&f, 1, 1, 4, 4, 0);
    rd_open(&d, f.b, f.n, NULL);
    expect_err(d.r, SC_ECORRUPT, "interface 1");
    rd_close(&d);

    /* A section that starts big endian: an SPB uses interface 0; with no
     * interface defined it is corrupt too. */
    f.n = 0;
    shb(&f, true);
    idb(&f, 113, 6, -50);
    spb(&f, 8, 9);
    epb(&f, 0, 2000000, 3, 3, 1);
    epb(&f, 5, 1, 4, 4, 0);
    rd_open(&d, f.b, f.n, NULL);
    struct exp es = {8, 8, 113, 0, 1, 0, 9};
    expect_rec(d.r, &es);
    struct exp ee = {3, 3, 113, 0, 2, 2 * SC_NS_PER_SEC - 50 * SC_NS_PER_SEC, 1};
    expect_rec(d.r, &ee);
    expect_err(d.r, SC_ECORRUPT, "interface 5");
    rd_close(&d);
    f.n = 0;
    shb(&f, true);
    spb(&f, 8, 0);
    rd_open(&d, f.b, f.n, NULL);
    expect_err(d.r, SC_ECORRUPT, NULL);
    rd_close(&d);
}

/* ---- streaming from a descriptor ---- */

/* Writes p to fd in chunks of `chunk` bytes from a child process. */
static pid_t write_in_child(int fd, const uint8_t *p, size_t len, size_t chunk)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (size_t off = 0; off < len;) {
            size_t n = len - off < chunk ? len - off : chunk;
            ssize_t w = write(fd, p + off, n);
            if (w <= 0)
                _exit(1);
            off += (size_t)w;
        }
        _exit(0);
    }
    return pid;
}

/* Reads both readers to their end: the same records, offsets and end. */
static void expect_same_records(struct cap_reader *x, struct cap_reader *y, int want_end)
{
    struct cap_record a, b;
    int ra, rb, n = 0;
    do {
        ra = cap_reader_next(x, &a);
        rb = cap_reader_next(y, &b);
        assert_int_equal(ra, rb);
        assert_int_equal(cap_reader_offset(x), cap_reader_offset(y));
        if (ra == 1) {
            n++;
            assert_int_equal(a.frame, b.frame);
            assert_int_equal(a.caplen, b.caplen);
            assert_int_equal(a.wirelen, b.wirelen);
            assert_int_equal(a.linktype, b.linktype);
            assert_int_equal(a.ifindex, b.ifindex);
            assert_int_equal(a.ts, b.ts);
            assert_memory_equal(a.data, b.data, a.caplen);
        }
    } while (ra == 1);
    assert_int_equal(ra, want_end);
    assert_true(n > 0);
}

/* Reads the file through a pipe and through memory: same records, same
 * offsets, same end. */
static void check_pipe_matches_memory(const uint8_t *file, size_t len, int want_end)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = write_in_child(fds[1], file, len, 333);
    close(fds[1]);
    struct cap_reader_settings s;
    cap_reader_defaults(&s);
    s.read_size = 4096;
    struct cap_reader *pr;
    assert_int_equal(cap_reader_open_fd(&pr, fds[0], &s), 0);
    struct rd d;
    rd_open(&d, file, len, &s);
    assert_int_equal(d.rc, 0);
    assert_string_equal(cap_reader_format(pr), cap_reader_format(d.r));
    expect_same_records(pr, d.r, want_end);
    cap_reader_free(pr);
    rd_close(&d);
    close(fds[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
}

/* A view over memory input, opened after the first reader has read part of
 * it: every record from the first, pcapng sections and interfaces included. */
static void check_view_matches_memory(const uint8_t *file, size_t len, int want_end)
{
    struct cap_reader_settings s;
    cap_reader_defaults(&s);
    struct rd d, e;
    rd_open(&d, file, len, &s);
    assert_int_equal(d.rc, 0);
    struct cap_record skip;
    for (int i = 0; i < 2; i++)
        (void)cap_reader_next(d.r, &skip);
    struct cap_reader *view;
    assert_int_equal(cap_reader_open_view(&view, d.r), 0);
    rd_open(&e, file, len, &s);
    expect_same_records(view, e.r, want_end);
    cap_reader_free(view);
    rd_close(&e);
    rd_close(&d);
}

static void test_pipe_input_in_small_chunks(void **state)
{
    (void)state;
    static struct fb f;
    f.n = 0;
    f.big = false;
    pcap_hdr(&f, 0xa1b2c3d4, 1);
    for (uint32_t i = 0; i < 20; i++)
        pcap_rec(&f, i, i, 100 + i * 97, 2000, i);
    pcap_rec(&f, 99, 0, 10000, 10000, 7); /* bigger than one read */
    pcap_rec(&f, 100, 0, 3, 3, 8);
    check_pipe_matches_memory(f.b, f.n, 0);
    check_pipe_matches_memory(f.b, f.n - 2, SC_ETRUNC);
    check_view_matches_memory(f.b, f.n, 0);
    check_view_matches_memory(f.b, f.n - 2, SC_ETRUNC);

    size_t ends[16];
    bool packet[16];
    build_pcapng(&f, ends, packet);
    epb(&f, 0, 7, 10000, 10000, 6); /* a block bigger than one read */
    epb(&f, 0, 8, 5, 5, 7);
    check_pipe_matches_memory(f.b, f.n, 0);
    check_view_matches_memory(f.b, f.n, 0);
}

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Reads the file from a regular file (mapped, or read when map is false):
 * same records, offsets and end as from memory. */
static void check_file_matches_memory(const uint8_t *file, size_t len, int want_end, bool map)
{
    char path[] = "/tmp/test_pcapfile.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, file + off, len - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    struct cap_reader_settings s;
    cap_reader_defaults(&s);
    s.map_files = map;
    struct cap_reader *fr;
    assert_int_equal(cap_reader_open_fd(&fr, fd, &s), 0);
    /* -j: a view reads the same records from the start, whatever the
     * reader it was opened from has read; only a stable reader has one. */
    struct cap_record first;
    assert_int_equal(cap_reader_next(fr, &first), 1);
    struct cap_reader *view = NULL;
    int vr = cap_reader_open_view(&view, fr);
    assert_int_equal(vr, map ? 0 : SC_EINVAL);
    assert_int_equal(cap_reader_stable(fr), map);
    struct rd d;
    rd_open(&d, file, len, &s);
    if (view) {
        expect_same_records(view, d.r, want_end);
        rd_close(&d);
        rd_open(&d, file, len, &s);
        cap_reader_free(view);
    }
    struct cap_record again;
    assert_int_equal(cap_reader_next(d.r, &again), 1);
    assert_int_equal(again.frame, first.frame);
    assert_memory_equal(again.data, first.data, first.caplen);
    expect_same_records(fr, d.r, want_end);
    cap_reader_free(fr);
    rd_close(&d);
    close(fd);
}

/* A regular file is mapped; past the release window (several MiB) the pages
 * behind are given back, and every record still reads as from memory. */
static void test_regular_file_mapped_and_read(void **state)
{
    (void)state;
    size_t cap = 12u << 20;
    uint8_t *b = malloc(cap);
    assert_non_null(b);
    size_t n = 0;
    static const uint8_t hdr[24] = {0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0,
                                    0,    0,    0,    0,    0, 0, 4, 0, 1, 0, 0, 0};
    memcpy(b, hdr, sizeof(hdr));
    n = sizeof(hdr);
    for (uint32_t i = 0; n + 16 + 3000 <= cap; i++) {
        uint32_t len = 1000 + (i * 7919) % 2000;
        uint8_t *r = b + n;
        le32(r, i);
        le32(r + 4, i % 1000000);
        le32(r + 8, len);
        le32(r + 12, len);
        for (uint32_t k = 0; k < len; k++)
            r[16 + k] = (uint8_t)(i * 31 + k);
        n += 16 + len;
    }
    check_file_matches_memory(b, n, 0, true);
    check_file_matches_memory(b, n, 0, false);
    check_file_matches_memory(b, n - 5, SC_ETRUNC, true);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pcap_magic_variants_and_timestamps),
        cmocka_unit_test(test_pcap_linktype_fcs_bits_are_masked),
        cmocka_unit_test(test_pcap_caplen_below_wirelen_is_kept),
        cmocka_unit_test(test_pcap_caplen_over_limit_is_corrupt_and_sticky),
        cmocka_unit_test(test_empty_bad_magic_and_kuznetzov_files),
        cmocka_unit_test(test_pcap_truncated_at_every_offset),
        cmocka_unit_test(test_pcapng_sections_interfaces_and_timestamps),
        cmocka_unit_test(test_pcapng_truncated_at_every_offset),
        cmocka_unit_test(test_pcapng_trailer_length_mismatch_is_corrupt),
        cmocka_unit_test(test_pcapng_undefined_interface_is_corrupt),
        cmocka_unit_test(test_pipe_input_in_small_chunks),
        cmocka_unit_test(test_regular_file_mapped_and_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
