/* test_tracker.c - unit tests for cap_tracker_*: roles, lifecycle, timeouts,
 * eviction, reassembly through the tracker (wrap, reordering, gaps, overlaps)
 * and a shuffled-segments property test.
 *
 * A recording consumer keeps, per followed flow, the bytes of each direction
 * at their stream offsets and checks in every callback that deliveries are
 * contiguous (data and gaps together) and that nothing arrives after close.
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

#include "capture/tracker.h"

/* ---- recording consumer ---- */

#define MAX_FLOWS 6
#define MAX_DATA 32768
#define MAX_ITEMS 32

struct rgap {
    enum sc_dir dir;
    uint64_t off, len;
    enum cap_gap_reason why;
};

struct revent {
    const char *kind;
    enum sc_dir dir;
    uint64_t frame;
    char detail[SC_EVENT_DETAIL_MAX + 1];
};

struct rflow {
    struct cap_flow_info open_fi;
    uint8_t data[2][MAX_DATA];
    uint64_t next[2]; /* next stream offset expected, per direction */
    uint64_t bytes[2];
    unsigned data_calls;
    struct rgap gaps[MAX_ITEMS];
    size_t ngaps;
    struct revent evs[MAX_ITEMS];
    size_t nevs;
    unsigned fins[2];
    unsigned closes;
    int close_order;
    enum cap_close why;
    uint64_t close_frame;
    struct cap_flow_info close_fi; /* stream pointers replaced by close_st */
    struct cap_stream close_st[2];
    bool stop_on_data;
};

struct rec {
    struct rflow *f; /* MAX_FLOWS entries, in order of `open` */
    size_t nf;
    unsigned opens;
    bool decline;      /* `open` returns NULL */
    bool stop_on_data; /* new flows ask to stop at their first data */
    int closes;
};

static void *cb_open(void *user, const struct cap_flow_info *fi)
{
    struct rec *r = user;
    r->opens++;
    if (r->decline || r->nf == MAX_FLOWS)
        return NULL;
    struct rflow *f = &r->f[r->nf++];
    f->open_fi = *fi;
    f->open_fi.side[0].stream = f->open_fi.side[1].stream = NULL;
    f->stop_on_data = r->stop_on_data;
    return f;
}

/* The consumer's state for a flow that must still be open; dir is checked. */
static struct rflow *live_flow(void *flow, enum sc_dir dir)
{
    struct rflow *f = flow;
    assert_non_null(f);
    assert_int_equal(f->closes, 0);
    assert_in_range(dir, SC_DIR_C2S, SC_DIR_NONE);
    return f;
}

static int cb_data(void *user, void *flow, enum sc_dir dir, uint64_t off, const uint8_t *p,
                   size_t n, const struct sc_meta *m)
{
    struct rflow *f = live_flow(flow, dir);
    (void)user;
    (void)m;
    assert_true(dir != SC_DIR_NONE && n > 0);
    assert_int_equal(off, f->next[dir]);
    if (off + n <= MAX_DATA)
        memcpy(f->data[dir] + off, p, n);
    f->next[dir] = off + n;
    f->bytes[dir] += n;
    f->data_calls++;
    return f->stop_on_data;
}

static int cb_gap(void *user, void *flow, enum sc_dir dir, uint64_t off, uint64_t len,
                  enum cap_gap_reason why, const struct sc_meta *m)
{
    struct rflow *f = live_flow(flow, dir);
    (void)user;
    (void)m;
    assert_true(dir != SC_DIR_NONE);
    assert_int_equal(off, f->next[dir]);
    f->next[dir] = off + len;
    if (f->ngaps < MAX_ITEMS)
        f->gaps[f->ngaps++] = (struct rgap){dir, off, len, why};
    return 0;
}

static void cb_event(void *user, void *flow, const char *kind, enum sc_dir dir,
                     const struct sc_meta *m, const char *detail)
{
    struct rflow *f = live_flow(flow, dir);
    (void)user;
    if (f->nevs == MAX_ITEMS)
        return;
    struct revent *e = &f->evs[f->nevs++];
    e->kind = kind;
    e->dir = dir;
    e->frame = m->frame;
    snprintf(e->detail, sizeof(e->detail), "%s", detail ? detail : "");
}

static void cb_fin(void *user, void *flow, enum sc_dir dir, const struct sc_meta *m)
{
    struct rflow *f = live_flow(flow, dir);
    (void)user;
    (void)m;
    assert_true(dir != SC_DIR_NONE);
    f->fins[dir]++;
}

static void cb_close(void *user, void *flow, const struct cap_flow_info *fi, enum cap_close why,
                     const struct sc_meta *m)
{
    struct rec *r = user;
    struct rflow *f = flow;
    assert_non_null(f);
    f->closes++;
    f->close_order = ++r->closes;
    f->why = why;
    f->close_frame = m->frame;
    f->close_fi = *fi;
    for (int d = 0; d < 2; d++) {
        assert_non_null(fi->side[d].stream);
        f->close_st[d] = *fi->side[d].stream;
        f->close_fi.side[d].stream = NULL;
    }
}

static const struct cap_tracker_cb rec_cb = {cb_open, cb_data, cb_gap, cb_event, cb_fin, cb_close};

/* Returns how many events of `kind` the flow received. */
static unsigned count_events(const struct rflow *f, const char *kind)
{
    unsigned n = 0;
    for (size_t i = 0; i < f->nevs; i++)
        n += strcmp(f->evs[i].kind, kind) == 0;
    return n;
}

/* ---- a small simulated network ---- */

struct world {
    struct cap_settings set;
    struct cap_tracker *t;
    struct rec r;
    uint64_t frame;
    sc_time ts;
};

struct ep {
    struct cap_addr a;
    uint16_t port;
};

/* Two endpoints talking; from = 0 sends as e[0], from = 1 as e[1]. */
struct conn {
    struct world *w;
    struct ep e[2];
};

static void world_init(struct world *w, void (*tweak)(struct cap_settings *))
{
    memset(w, 0, sizeof(*w));
    cap_settings_defaults(&w->set);
    if (tweak)
        tweak(&w->set);
    w->r.f = calloc(MAX_FLOWS, sizeof(*w->r.f));
    assert_non_null(w->r.f);
    w->t = cap_tracker_new(&w->set, &rec_cb, &w->r);
    assert_non_null(w->t);
    w->ts = INT64_C(1000000000); /* 1970: wall-clock time must not matter */
}

/* Frees the tracker (closing what is open); the records stay readable. */
static void world_end(struct world *w)
{
    cap_tracker_free(w->t);
    w->t = NULL;
}

static void world_free(struct world *w)
{
    world_end(w);
    free(w->r.f);
}

static struct ep ep4(uint8_t host, uint16_t port)
{
    struct ep e = {{{0}}, port};
    e.a.b[10] = e.a.b[11] = 0xff;
    e.a.b[12] = 10;
    e.a.b[15] = host;
    return e;
}

static struct ep ep6(uint8_t host, uint16_t port)
{
    struct ep e = {{{0x20, 0x01, 0x0d, 0xb8}}, port};
    e.a.b[15] = host;
    return e;
}

static struct conn mkconn(struct world *w, struct ep a, struct ep b)
{
    struct conn c = {w, {a, b}};
    return c;
}

/* Builds the next TCP segment, carrying n captured bytes out of `wire`. */
static struct cap_packet mkpkt(struct conn *c, int from, unsigned flags, uint32_t seq, uint32_t ack,
                               const void *p, size_t n, size_t wire)
{
    struct cap_packet k;
    memset(&k, 0, sizeof(k));
    k.frame = ++c->w->frame;
    k.ts = c->w->ts;
    k.status = CAP_ST_TCP;
    k.ipver = cap_addr_is_v4(&c->e[from].a) ? 4 : 6;
    k.ttl = (uint8_t)(from ? 50 : 60);
    k.src = c->e[from].a;
    k.dst = c->e[1 - from].a;
    k.sport = c->e[from].port;
    k.dport = c->e[1 - from].port;
    k.seq = seq;
    k.ack = ack;
    k.flags = (uint8_t)flags;
    k.window = 65535;
    if (flags & CAP_TH_SYN) {
        k.opts.mss_present = true;
        k.opts.mss = (uint16_t)(from ? 1400 : 1460);
    }
    k.payload = p;
    k.payload_len = (uint32_t)n;
    k.payload_wire = (uint32_t)wire;
    k.caplen = k.wirelen = (uint32_t)(54 + n);
    return k;
}

/* Builds and feeds one segment.  The payload is an exact-length heap copy,
 * freed right after the call, so ASan reports any read past it or any
 * pointer to it kept by the tracker. */
static void tx_full(struct conn *c, int from, unsigned flags, uint32_t seq, uint32_t ack,
                    const void *p, size_t n, size_t wire)
{
    uint8_t *copy = NULL;
    if (n) {
        copy = malloc(n);
        assert_non_null(copy);
        memcpy(copy, p, n);
    }
    struct cap_packet k = mkpkt(c, from, flags, seq, ack, copy, n, wire);
    cap_tracker_packet(c->w->t, &k);
    free(copy);
}

static void tx(struct conn *c, int from, unsigned flags, uint32_t seq, uint32_t ack, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    tx_full(c, from, flags, seq, ack, s, n, n);
}

#define A CAP_TH_ACK
#define PA (CAP_TH_PSH | CAP_TH_ACK)

static void handshake(struct conn *c, uint32_t isn_c, uint32_t isn_s)
{
    tx(c, 0, CAP_TH_SYN, isn_c, 0, NULL);
    tx(c, 1, CAP_TH_SYN | A, isn_s, isn_c + 1, NULL);
    tx(c, 0, A, isn_c + 1, isn_s + 1, NULL);
}

/* Checks bytes delivered per direction and how many gaps and events came. */
static void assert_counts(const struct rflow *f, uint64_t c2s, uint64_t s2c, size_t ngaps,
                          size_t nevs)
{
    assert_int_equal(f->bytes[SC_DIR_C2S], c2s);
    assert_int_equal(f->bytes[SC_DIR_S2C], s2c);
    assert_int_equal(f->ngaps, ngaps);
    assert_int_equal(f->nevs, nevs);
}

static void assert_gap(const struct rflow *f, size_t i, uint64_t off, uint64_t len,
                       enum cap_gap_reason why)
{
    assert_true(i < f->ngaps);
    assert_int_equal(f->gaps[i].dir, SC_DIR_C2S);
    assert_int_equal(f->gaps[i].off, off);
    assert_int_equal(f->gaps[i].len, len);
    assert_int_equal(f->gaps[i].why, why);
}

/* Checks that the flow was closed exactly once, for `why`, at `frame`. */
static void assert_closed(const struct rflow *f, enum cap_close why, uint64_t frame)
{
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->why, why);
    assert_int_equal(f->close_frame, frame);
}

/* A tracker with default settings and a client 10.0.0.1:40000 that has
 * completed a handshake (ISN 100) with the server 10.0.0.2:25 (ISN 900). */
static struct conn start(struct world *w)
{
    world_init(w, NULL);
    struct conn c = mkconn(w, ep4(1, 40000), ep4(2, 25));
    handshake(&c, 100, 900);
    return c;
}

static void assert_endpoint(const struct cap_side *s, const struct ep *e)
{
    assert_memory_equal(s->addr.b, e->a.b, 16);
    assert_int_equal(s->port, e->port);
}

/* ---- lifecycle and roles ---- */

/* Roles come from the SYN, also when the client's source port is 25. */
static void test_handshake_data_and_fins_close_as_fin(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        struct world w;
        world_init(&w, NULL);
        struct conn c = i == 0   ? mkconn(&w, ep4(1, 40000), ep4(2, 25))
                        : i == 1 ? mkconn(&w, ep6(1, 40000), ep6(2, 25))
                                 : mkconn(&w, ep4(1, 25), ep4(2, 40000));
        handshake(&c, 1000, 5000);
        tx(&c, 1, PA, 5001, 1001, "220 hi\r\n");
        tx(&c, 0, PA, 1001, 5009, "EHLO x\r\n");
        tx(&c, 1, A, 5009, 1009, NULL);
        tx(&c, 0, CAP_TH_FIN | A, 1009, 5009, NULL);
        tx(&c, 1, CAP_TH_FIN | A, 5009, 1010, NULL);
        assert_int_equal(w.r.opens, 1);
        struct rflow *f = &w.r.f[0];
        assert_true(f->open_fi.handshake);
        assert_false(f->open_fi.roles_guessed);
        assert_endpoint(&f->open_fi.side[SC_DIR_C2S], &c.e[0]);
        assert_endpoint(&f->open_fi.side[SC_DIR_S2C], &c.e[1]);
        assert_int_equal(f->open_fi.seq_no, 1);
        assert_int_equal(f->open_fi.first_frame, 1);
        assert_memory_equal(f->data[SC_DIR_S2C], "220 hi\r\n", 8);
        assert_memory_equal(f->data[SC_DIR_C2S], "EHLO x\r\n", 8);
        assert_counts(f, 8, 8, 0, 0);
        assert_true(f->fins[0] == 1 && f->fins[1] == 1);
        assert_closed(f, CAP_CLOSE_FIN, 8);
        assert_string_equal(cap_close_name(f->why), "fin");
        const struct cap_flow_info *fi = &f->close_fi;
        assert_true(fi->fin_seen[0] && fi->fin_seen[1]);
        assert_false(fi->rst_seen);
        assert_int_equal(fi->first_frame, 1);
        assert_int_equal(fi->last_frame, 8);
        for (int d = 0; d < 2; d++) {
            assert_true(fi->side[d].syn_seen);
            assert_int_equal(fi->side[d].syn_opts.mss, d ? 1400 : 1460);
            assert_int_equal(fi->side[d].first_ttl, d ? 50 : 60);
            assert_int_equal(fi->side[d].packets, 4);
            assert_int_equal(fi->side[d].payload_bytes, 8);
            assert_int_equal(f->close_st[d].bytes, 8);
            assert_int_equal(f->close_st[d].gaps, 0);
        }
        /* The last ACK lands on the tombstone. */
        tx(&c, 0, A, 1010, 5010, NULL);
        const struct cap_tracker_stats *st = cap_tracker_stats(w.t);
        assert_int_equal(st->late_packets, 1);
        assert_int_equal(st->flows, 1);
        assert_int_equal(st->flows_followed, 1);
        assert_int_equal(st->packets, 9);
        assert_int_equal(st->by_status[CAP_ST_TCP], 9);
        assert_int_equal(cap_tracker_flow_count(w.t), 1);
        world_end(&w);
        assert_int_equal(f->closes, 1);
        world_free(&w);
    }
}

static void test_synack_without_syn_takes_client_base_from_ack(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    struct conn c = mkconn(&w, ep4(1, 40000), ep4(2, 25));
    tx(&c, 1, CAP_TH_SYN | A, 5000, 1001, NULL);
    tx(&c, 0, PA, 1001, 5001, "EHLO x\r\n");
    tx(&c, 1, PA, 5001, 1009, "250 ok\r\n");
    struct rflow *f = &w.r.f[0];
    assert_int_equal(w.r.nf, 1);
    assert_true(f->open_fi.handshake);
    assert_false(f->open_fi.roles_guessed);
    assert_false(f->open_fi.side[SC_DIR_C2S].syn_seen);
    assert_true(f->open_fi.side[SC_DIR_S2C].syn_seen);
    assert_endpoint(&f->open_fi.side[SC_DIR_C2S], &c.e[0]);
    assert_memory_equal(f->data[SC_DIR_C2S], "EHLO x\r\n", 8);
    assert_memory_equal(f->data[SC_DIR_S2C], "250 ok\r\n", 8);
    assert_counts(f, 8, 8, 0, 0); /* no "midstream" event */
    world_free(&w);
}

static void only_port_2525(struct cap_settings *s)
{
    memset(s->ports, 0, sizeof(s->ports));
    cap_port_set(s, 2525, true);
}

static void test_midstream_roles_from_server_ports(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    /* The port-25 side sends a command-like line: the port still wins. */
    struct conn c = mkconn(&w, ep4(1, 25), ep4(2, 40000));
    tx(&c, 0, PA, 7000, 3000, "EHLO x\r\n");
    tx(&c, 1, PA, 3000, 7008, "QUIT\r\n");
    /* The port-587 side's peer sends a reply-like line: still the client. */
    struct conn c2 = mkconn(&w, ep4(3, 50000), ep4(4, 587));
    tx(&c2, 0, PA, 1, 1, "220 x\r\n");
    assert_int_equal(w.r.nf, 2);
    struct rflow *f = &w.r.f[0];
    assert_false(f->open_fi.handshake);
    assert_true(f->open_fi.roles_guessed);
    assert_endpoint(&f->open_fi.side[SC_DIR_S2C], &c.e[0]);
    assert_endpoint(&f->open_fi.side[SC_DIR_C2S], &c.e[1]);
    assert_memory_equal(f->data[SC_DIR_S2C], "EHLO x\r\n", 8);
    assert_memory_equal(f->data[SC_DIR_C2S], "QUIT\r\n", 6);
    assert_int_equal(count_events(f, "midstream"), 1);
    assert_int_equal(f->evs[0].dir, SC_DIR_NONE);
    assert_int_equal(f->evs[0].frame, 1);
    assert_endpoint(&w.r.f[1].open_fi.side[SC_DIR_S2C], &c2.e[1]);
    assert_memory_equal(w.r.f[1].data[SC_DIR_C2S], "220 x\r\n", 7);
    world_free(&w);

    /* A configured port list replaces the defaults. */
    world_init(&w, only_port_2525);
    c = mkconn(&w, ep4(1, 40000), ep4(2, 2525));
    tx(&c, 0, PA, 1, 1, "220 x\r\n");
    c2 = mkconn(&w, ep4(1, 25), ep4(2, 40000));
    tx(&c2, 0, PA, 1, 1, "EHLO x\r\n");
    assert_endpoint(&w.r.f[0].open_fi.side[SC_DIR_S2C], &c.e[1]);
    assert_endpoint(&w.r.f[1].open_fi.side[SC_DIR_C2S], &c2.e[0]);
    world_free(&w);
}

static void test_midstream_roles_from_payload_when_ports_tie(void **state)
{
    (void)state;
    static const struct {
        uint16_t p0, p1;
        const char *payload;
        bool sender_is_server;
    } cases[5] = {
        {25, 587, "220 ready\r\n", true},     /* both ports listed */
        {50000, 2000, "220 ready\r\n", true}, /* neither listed */
        {50000, 2000, "250-PIPELINING\r\n", true},
        {1000, 60000, "EHLO client\r\n", false}, /* a verb: the client */
        {50000, 2000, "\x16\x03\x01", false},    /* undecidable: lower port serves */
    };
    struct world w;
    world_init(&w, NULL);
    for (uint8_t i = 0; i < 5; i++) {
        struct conn c = mkconn(&w, ep4((uint8_t)(10 + i), cases[i].p0), ep4(99, cases[i].p1));
        tx(&c, 0, PA, 100, 200, cases[i].payload);
        assert_int_equal(w.r.nf, i + 1);
        const struct rflow *f = &w.r.f[i];
        assert_true(f->open_fi.roles_guessed);
        int server = cases[i].sender_is_server ? 0 : 1;
        assert_endpoint(&f->open_fi.side[SC_DIR_S2C], &c.e[server]);
        enum sc_dir dir = server == 0 ? SC_DIR_S2C : SC_DIR_C2S;
        assert_int_equal(f->next[dir], strlen(cases[i].payload));
        assert_int_equal(count_events(f, "midstream"), 1);
    }
    world_free(&w);
}

static void test_rst_closes_at_once_and_late_data_is_absorbed(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    struct conn c = mkconn(&w, ep4(1, 40000), ep4(2, 25));
    tx(&c, 1, CAP_TH_RST, 1, 0, NULL); /* a lone RST opens nothing */
    assert_int_equal(cap_tracker_stats(w.t)->flows, 0);
    handshake(&c, 1000, 5000);
    tx(&c, 0, PA, 1001, 5001, "EHLO x\r\n");
    tx(&c, 1, CAP_TH_RST, 5001, 0, NULL);
    struct rflow *f = &w.r.f[0];
    assert_closed(f, CAP_CLOSE_RST, 6);
    assert_true(f->close_fi.rst_seen);
    tx(&c, 0, PA, 1009, 5001, "QUIT\r\n");
    tx(&c, 1, PA, 5001, 1009, "221 bye\r\n");
    const struct cap_tracker_stats *st = cap_tracker_stats(w.t);
    assert_int_equal(st->late_packets, 2);
    assert_int_equal(st->flows, 1);
    assert_int_equal(w.r.opens, 1);
    assert_counts(f, 8, 0, 0, 0);
    assert_int_equal(cap_tracker_flow_count(w.t), 1);
    world_end(&w);
    assert_int_equal(f->closes, 1);
    world_free(&w);
}

static void test_new_syn_on_closed_tuple_starts_new_connection(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    struct conn c = mkconn(&w, ep4(1, 40000), ep4(2, 25));
    handshake(&c, 1000, 5000);
    tx(&c, 0, CAP_TH_FIN | A, 1001, 5001, NULL);
    tx(&c, 1, CAP_TH_FIN | A, 5001, 1002, NULL);
    assert_int_equal(w.r.f[0].why, CAP_CLOSE_FIN);
    handshake(&c, 90000, 70000);
    tx(&c, 0, PA, 90001, 70001, "EHLO again\r\n");
    assert_int_equal(w.r.nf, 2);
    struct rflow *f = &w.r.f[1];
    assert_int_equal(f->open_fi.seq_no, 2);
    assert_int_equal(f->open_fi.first_frame, 6);
    assert_memory_equal(f->data[SC_DIR_C2S], "EHLO again\r\n", 12);
    assert_int_equal(cap_tracker_stats(w.t)->flows, 2);
    assert_int_equal(cap_tracker_stats(w.t)->port_reuse, 0);
    assert_int_equal(w.r.f[0].closes, 1);
    world_free(&w);
}

static void test_new_syn_on_open_connection_is_port_reuse(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    struct conn c = mkconn(&w, ep4(1, 40000), ep4(2, 25));
    handshake(&c, 1000, 5000);
    tx(&c, 0, CAP_TH_SYN, 1000, 0, NULL); /* a retransmitted SYN is no reuse */
    tx(&c, 0, PA, 1001, 5001, "EHLO x\r\n");
    assert_int_equal(w.r.nf, 1);
    tx(&c, 0, CAP_TH_SYN, 777777, 0, NULL);
    struct rflow *old = &w.r.f[0];
    assert_closed(old, CAP_CLOSE_TIMEOUT, 6);
    assert_int_equal(count_events(old, "port_reused"), 1);
    assert_int_equal(old->evs[0].dir, SC_DIR_C2S);
    assert_int_equal(cap_tracker_stats(w.t)->port_reuse, 1);
    assert_int_equal(w.r.nf, 2);
    assert_int_equal(w.r.f[1].open_fi.seq_no, 2);
    assert_true(w.r.f[1].open_fi.handshake);
    tx(&c, 1, CAP_TH_SYN | A, 123, 777778, NULL);
    tx(&c, 0, PA, 777778, 124, "HELO y\r\n");
    assert_memory_equal(w.r.f[1].data[SC_DIR_C2S], "HELO y\r\n", 8);
    world_free(&w);
}

/* A bare SYN never belongs to an established connection: also when the old
 * connection was picked up mid-stream (no ISN known), it is a new one. */
static void test_new_syn_on_open_midstream_connection_is_port_reuse(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    struct conn c = mkconn(&w, ep4(1, 40000), ep4(2, 25));
    tx(&c, 1, PA, 5000, 1000, "250 ok\r\n"); /* picked up mid-stream */
    tx(&c, 0, PA, 1000, 5008, "QUIT\r\n");
    assert_int_equal(w.r.nf, 1);
    handshake(&c, 0x80000000u, 0x40000000u); /* a new connection on the same 4-tuple */
    tx(&c, 0, PA, 0x80000001u, 0x40000001u, "EHLO x\r\n");
    struct rflow *old = &w.r.f[0];
    assert_int_equal(old->closes, 1);
    assert_int_equal(old->why, CAP_CLOSE_TIMEOUT);
    assert_int_equal(count_events(old, "port_reused"), 1);
    assert_int_equal(cap_tracker_stats(w.t)->port_reuse, 1);
    assert_int_equal(w.r.nf, 2);
    assert_true(w.r.f[1].open_fi.handshake);
    assert_int_equal(w.r.f[1].open_fi.seq_no, 2);
    assert_int_equal(w.r.f[1].bytes[SC_DIR_C2S], 8);
    assert_memory_equal(w.r.f[1].data[SC_DIR_C2S], "EHLO x\r\n", 8);
    world_free(&w);
}

static void test_idle_timeout_runs_on_capture_time(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    struct conn c1 = mkconn(&w, ep4(1, 40001), ep4(2, 25));
    struct conn c2 = mkconn(&w, ep4(1, 40002), ep4(2, 25));
    handshake(&c1, 1, 1);
    w.ts += 599 * SC_NS_PER_SEC; /* within the timeout */
    handshake(&c2, 1, 1);
    assert_int_equal(w.r.f[0].closes, 0);
    w.ts += 2 * SC_NS_PER_SEC; /* c1 now idle for 601 s */
    tx(&c2, 0, PA, 2, 2, "NOOP\r\n");
    /* A jump in time takes effect one packet later (it could be one
     * misstamped packet): the next packet confirms it. */
    assert_int_equal(w.r.f[0].closes, 0);
    tx(&c2, 1, A, 2, 8, NULL);
    assert_closed(&w.r.f[0], CAP_CLOSE_TIMEOUT, 3); /* at its own last packet */
    assert_int_equal(w.r.f[1].closes, 0);
    assert_int_equal(cap_tracker_flow_count(w.t), 1);
    world_end(&w);
    assert_int_equal(w.r.f[1].why, CAP_CLOSE_EOF);
    world_free(&w);
}

/* Expiry is skipped while nothing can be old enough, but a tombstone made
 * after the oldest live flow (closed_linger, 120 s) still goes before that
 * flow's idle timeout (600 s) would come round. */
static void test_tombstone_expires_before_older_idle_deadline(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    struct conn c1 = mkconn(&w, ep4(1, 40001), ep4(2, 25));
    struct conn c2 = mkconn(&w, ep4(1, 40002), ep4(2, 25));
    handshake(&c1, 1, 1);
    w.ts += 10 * SC_NS_PER_SEC;
    handshake(&c2, 1, 1);
    tx(&c2, 0, CAP_TH_RST, 2, 0, NULL); /* c2 is a tombstone now */
    assert_closed(&w.r.f[1], CAP_CLOSE_RST, 7);
    assert_int_equal(cap_tracker_flow_count(w.t), 2);
    w.ts += 119 * SC_NS_PER_SEC; /* 119 s after the RST: it stays */
    tx(&c1, 0, A, 2, 2, NULL);
    tx(&c1, 0, A, 2, 2, NULL);
    assert_int_equal(cap_tracker_flow_count(w.t), 2);
    w.ts += 2 * SC_NS_PER_SEC; /* 121 s: gone, a packet after time moved */
    tx(&c1, 0, A, 2, 2, NULL);
    tx(&c1, 0, A, 2, 2, NULL);
    assert_int_equal(cap_tracker_flow_count(w.t), 1);
    assert_int_equal(w.r.f[0].closes, 0);
    world_free(&w);
}

static void test_backwards_timestamps_are_counted_and_expire_nothing(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    struct conn c1 = mkconn(&w, ep4(1, 40001), ep4(2, 25));
    struct conn c2 = mkconn(&w, ep4(1, 40002), ep4(2, 25));
    w.ts = 1000 * SC_NS_PER_SEC;
    handshake(&c1, 1, 1);
    w.ts = 100 * SC_NS_PER_SEC; /* 900 s back */
    handshake(&c2, 1, 1);
    w.ts = 1001 * SC_NS_PER_SEC;
    tx(&c1, 0, PA, 2, 2, "NOOP\r\n");
    w.ts = 1002 * SC_NS_PER_SEC;
    tx(&c1, 0, PA, 8, 2, "NOOP\r\n");
    assert_int_equal(cap_tracker_stats(w.t)->ts_backwards, 3);
    assert_int_equal(w.r.f[0].closes, 0);
    assert_int_equal(w.r.f[1].closes, 0);
    cap_tracker_finish(w.t);
    assert_int_equal(w.r.f[0].why, CAP_CLOSE_EOF);
    assert_int_equal(w.r.f[1].why, CAP_CLOSE_EOF);
    world_free(&w);
}

/* One packet stamped a day late (a corrupt record, a clock step on one
 * interface) does not expire the connections open around it. */
static void test_one_future_timestamp_expires_nothing(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    struct conn c1 = mkconn(&w, ep4(1, 40001), ep4(2, 25));
    struct conn c2 = mkconn(&w, ep4(1, 40002), ep4(2, 25));
    handshake(&c1, 1, 1);
    handshake(&c2, 1, 1);
    sc_time base = w.ts;
    w.ts = base + 86400 * SC_NS_PER_SEC;
    tx(&c1, 0, PA, 2, 2, "NOOP\r\n");
    w.ts = base + SC_NS_PER_SEC;
    tx(&c2, 0, PA, 2, 2, "NOOP\r\n");
    tx(&c1, 1, PA, 2, 8, "250 ok\r\n");
    assert_int_equal(w.r.f[0].closes, 0);
    assert_int_equal(w.r.f[1].closes, 0);
    assert_int_equal(cap_tracker_stats(w.t)->ts_backwards, 2);
    /* Two packets a day on: time has really moved, c2 (idle all that
     * time) expires. */
    w.ts = base + 86401 * SC_NS_PER_SEC;
    tx(&c1, 0, PA, 8, 10, "NOOP\r\n");
    assert_int_equal(w.r.f[1].closes, 0);
    tx(&c1, 0, PA, 14, 10, "NOOP\r\n");
    assert_int_equal(w.r.f[1].closes, 1);
    assert_int_equal(w.r.f[1].why, CAP_CLOSE_TIMEOUT);
    world_free(&w);
}

static void two_flows(struct cap_settings *s)
{
    s->max_flows = 2;
}

static void test_full_table_evicts_least_recently_active(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, two_flows);
    struct conn c[4];
    for (uint16_t i = 0; i < 4; i++)
        c[i] = mkconn(&w, ep4(1, (uint16_t)(40000 + i)), ep4(2, 25));
    tx(&c[0], 0, CAP_TH_SYN, 10, 0, NULL);
    tx(&c[1], 0, CAP_TH_SYN, 20, 0, NULL);
    tx(&c[0], 1, CAP_TH_SYN | A, 50, 11, NULL); /* c[0] is now the most recent */
    tx(&c[2], 0, CAP_TH_SYN, 30, 0, NULL);
    const struct cap_tracker_stats *st = cap_tracker_stats(w.t);
    assert_int_equal(st->evicted, 1);
    assert_int_equal(cap_tracker_flow_count(w.t), 2);
    struct rflow *f = w.r.f;
    assert_closed(&f[1], CAP_CLOSE_TIMEOUT, 2);
    assert_int_equal(count_events(&f[1], "flow_evicted"), 1);
    assert_int_equal(f[0].closes, 0);
    /* A tombstone goes first, and silently. */
    tx(&c[0], 1, CAP_TH_RST, 51, 0, NULL);
    tx(&c[3], 0, CAP_TH_SYN, 40, 0, NULL);
    assert_int_equal(st->evicted, 1);
    assert_int_equal(f[2].closes, 0);
    assert_int_equal(st->flows, 4);
    cap_tracker_finish(w.t);
    assert_int_equal(f[2].why, CAP_CLOSE_EOF);
    assert_int_equal(f[3].why, CAP_CLOSE_EOF);
    assert_true(f[2].close_order < f[3].close_order);
    world_free(&w);
}

static void test_finish_closes_in_creation_order_as_eof(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    struct conn c[3];
    for (uint16_t i = 0; i < 3; i++) {
        c[i] = mkconn(&w, ep4(1, (uint16_t)(40000 + i)), ep4(2, 25));
        tx(&c[i], 0, CAP_TH_SYN, 10, 0, NULL);
    }
    tx(&c[0], 1, CAP_TH_SYN | A, 50, 11, NULL);
    tx(&c[1], 1, CAP_TH_SYN | A, 50, 11, NULL);
    cap_tracker_finish(w.t);
    for (int i = 0; i < 3; i++) {
        assert_closed(&w.r.f[i], CAP_CLOSE_EOF, 5);
        assert_int_equal(w.r.f[i].close_order, i + 1);
    }
    cap_tracker_finish(w.t); /* nothing left to close */
    world_free(&w);
    assert_int_equal(w.r.closes, 3);
}

/* Flows still open at the end close in creation order, whatever the order
 * of their last activity, across more flows than one byte of a creation
 * number counts: 70,000 lone SYNs (three bytes), then a SYN-ACK to every
 * flow in reverse, so that the least recently active is the newest. */
struct order_rec {
    uint64_t *seq; /* creation numbers in the order of `close` */
    size_t n, max;
};

static void *order_open(void *user, const struct cap_flow_info *fi)
{
    (void)user;
    return (void *)(uintptr_t)fi->seq_no; /* never NULL: numbers start at 1 */
}

static void order_close(void *user, void *flow, const struct cap_flow_info *fi, enum cap_close why,
                        const struct sc_meta *m)
{
    (void)m;
    struct order_rec *o = user;
    assert_int_equal(why, CAP_CLOSE_EOF);
    assert_int_equal((uintptr_t)flow, fi->seq_no);
    assert_true(o->n < o->max);
    o->seq[o->n++] = fi->seq_no;
}

static void test_finish_order_over_many_flows(void **state)
{
    (void)state;
    enum { N = 70000 };
    struct world w;
    world_init(&w, NULL);
    cap_tracker_free(w.t);
    static const struct cap_tracker_cb cb = {.open = order_open, .close = order_close};
    struct order_rec o = {calloc(N, sizeof(uint64_t)), 0, N};
    assert_non_null(o.seq);
    w.t = cap_tracker_new(&w.set, &cb, &o);
    assert_non_null(w.t);
    for (uint32_t i = 0; i < N; i++) {
        struct conn c =
            mkconn(&w, ep4((uint8_t)(1 + i / 60000), (uint16_t)(1024 + i % 60000)), ep4(200, 25));
        tx(&c, 0, CAP_TH_SYN, 10, 0, NULL);
    }
    for (uint32_t i = N; i-- > 0;) {
        struct conn c =
            mkconn(&w, ep4((uint8_t)(1 + i / 60000), (uint16_t)(1024 + i % 60000)), ep4(200, 25));
        tx(&c, 1, CAP_TH_SYN | A, 50, 11, NULL);
    }
    cap_tracker_finish(w.t);
    assert_int_equal(o.n, N);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(o.seq[i], i + 1);
    world_free(&w);
    free(o.seq);
}

/* What a flow opened by a lone SYN must show, however late it is opened:
 * the SYN as its client side's only packet, nothing from the server. */
static void assert_lone_syn_info(const struct cap_flow_info *fi, uint64_t frame, uint32_t isn)
{
    assert_true(fi->handshake);
    assert_false(fi->roles_guessed);
    assert_int_equal(fi->first_frame, frame);
    assert_int_equal(fi->last_frame, frame);
    const struct cap_side *c = &fi->side[SC_DIR_C2S], *s = &fi->side[SC_DIR_S2C];
    assert_int_equal(c->port, 40000);
    assert_int_equal(s->port, 25);
    assert_int_equal(c->packets, 1);
    assert_true(c->syn_seen);
    assert_int_equal(c->isn, isn);
    assert_true(c->syn_opts.mss_present);
    assert_int_equal(c->syn_opts.mss, 1460);
    assert_int_equal(c->first_ttl, 60);
    assert_int_equal(c->ttl_min, 60);
    assert_int_equal(c->last_frame, frame);
    assert_int_equal(s->packets, 0);
    assert_false(s->syn_seen);
}

/* A connection seen only as its SYN keeps no reassembly state and is offered
 * to the consumer only when something else happens to it: its next packet,
 * a timeout, a port reuse, the end of the capture.  Whichever comes, the
 * consumer sees what it would have seen at the SYN, and every flow is
 * opened and closed exactly once. */
static void test_lone_syn_is_opened_late_with_its_own_info(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    struct conn a = mkconn(&w, ep4(1, 40000), ep4(2, 25));
    struct conn b = mkconn(&w, ep4(3, 40000), ep4(2, 25));
    struct conn c = mkconn(&w, ep4(4, 40000), ep4(2, 25));
    struct conn d = mkconn(&w, ep4(5, 40000), ep4(2, 25));
    tx(&a, 0, CAP_TH_SYN, 100, 0, NULL); /* frame 1 */
    tx(&b, 0, CAP_TH_SYN, 200, 0, NULL); /* frame 2 */
    tx(&c, 0, CAP_TH_SYN, 300, 0, NULL); /* frame 3 */
    assert_int_equal(w.r.opens, 0);
    assert_int_equal(cap_tracker_stats(w.t)->flows, 3);
    assert_int_equal(cap_tracker_stats(w.t)->flows_followed, 0);

    /* The next packet opens it first, then is processed as usual. */
    w.ts += SC_NS_PER_SEC;
    tx(&a, 1, CAP_TH_SYN | A, 900, 101, NULL); /* frame 4 */
    assert_int_equal(w.r.nf, 1);
    assert_lone_syn_info(&w.r.f[0].open_fi, 1, 100);
    tx(&a, 0, A, 101, 901, NULL);
    tx(&a, 0, PA, 101, 901, "EHLO x\r\n"); /* frame 6 */
    assert_int_equal(w.r.f[0].bytes[SC_DIR_C2S], 8);

    /* A new SYN on b's tuple: b is opened, then closed as reused; the new
     * connection is followed at once. */
    tx(&b, 0, CAP_TH_SYN, 7777, 0, NULL); /* frame 7 */
    assert_int_equal(w.r.nf, 3);
    assert_lone_syn_info(&w.r.f[1].open_fi, 2, 200);
    assert_closed(&w.r.f[1], CAP_CLOSE_TIMEOUT, 7);
    assert_int_equal(count_events(&w.r.f[1], "port_reused"), 1);
    assert_lone_syn_info(&w.r.f[1].close_fi, 2, 200);
    assert_int_equal(w.r.f[2].open_fi.side[SC_DIR_C2S].isn, 7777);

    /* c times out on capture time: opened, and closed at its SYN's frame. */
    w.ts += 600 * SC_NS_PER_SEC;
    tx(&d, 0, CAP_TH_SYN, 400, 0, NULL); /* frame 8: the clock moves a packet later */
    assert_int_equal(w.r.nf, 3);
    tx(&d, 0, CAP_TH_SYN, 400, 0, NULL); /* frame 9: c expires; d's SYN again opens d */
    assert_int_equal(w.r.nf, 5);
    assert_lone_syn_info(&w.r.f[3].open_fi, 3, 300);
    assert_closed(&w.r.f[3], CAP_CLOSE_TIMEOUT, 3);
    assert_int_equal(w.r.f[4].open_fi.first_frame, 8);
    assert_int_equal(w.r.f[4].open_fi.side[SC_DIR_C2S].isn, 400);
    assert_int_equal(w.r.f[4].open_fi.side[SC_DIR_C2S].packets, 1);
    assert_int_equal(cap_tracker_stats(w.t)->port_reuse, 1);

    /* The end of the capture closes the rest in creation order. */
    assert_int_equal(w.r.f[0].closes, 0);
    cap_tracker_finish(w.t);
    assert_closed(&w.r.f[0], CAP_CLOSE_EOF, 9);
    assert_closed(&w.r.f[2], CAP_CLOSE_EOF, 9);
    assert_closed(&w.r.f[4], CAP_CLOSE_EOF, 9);
    assert_int_equal(w.r.f[4].close_fi.side[SC_DIR_C2S].packets, 2);
    assert_true(w.r.f[0].close_order < w.r.f[2].close_order);
    assert_true(w.r.f[2].close_order < w.r.f[4].close_order);
    assert_int_equal(cap_tracker_stats(w.t)->flows_followed, 5);
    assert_int_equal(w.r.opens, 5);
    world_free(&w);
    assert_int_equal(w.r.closes, 5);
}

/* A declined lone SYN is offered once, and nothing follows. */
static void test_declined_lone_syn_gets_one_offer(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    w.r.decline = true;
    struct conn c = mkconn(&w, ep4(1, 40000), ep4(2, 25));
    tx(&c, 0, CAP_TH_SYN, 100, 0, NULL);
    tx(&c, 1, CAP_TH_SYN | A, 900, 101, NULL);
    tx(&c, 0, PA, 101, 901, "EHLO x\r\n");
    tx(&c, 0, CAP_TH_SYN, 100, 0, NULL); /* the same ISN: no reuse */
    cap_tracker_finish(w.t);
    assert_int_equal(w.r.opens, 1);
    assert_int_equal(w.r.closes, 0);
    assert_int_equal(cap_tracker_stats(w.t)->port_reuse, 0);
    assert_int_equal(cap_tracker_stats(w.t)->flows, 1);
    world_free(&w);
}

/* ---- reassembly through the tracker ---- */

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)('a' + (seed + i * 7) % 26);
}

static void test_sequence_wrap_gives_contiguous_stream(void **state)
{
    (void)state;
    uint8_t msg[600];
    fill_pattern(msg, sizeof(msg), 3);
    struct world w;
    world_init(&w, NULL);
    struct conn c = mkconn(&w, ep4(1, 40000), ep4(2, 25));
    const uint32_t isn = 0xffffff00u - 1;
    handshake(&c, isn, 5);
    const uint32_t base = isn + 1;
    tx_full(&c, 0, PA, base + 400, 6, msg + 400, 200, 200); /* 0x00000090 */
    tx_full(&c, 0, PA, base, 6, msg, 200, 200);
    tx_full(&c, 0, PA, base + 200, 6, msg + 200, 200, 200); /* crosses 2^32 */
    tx(&c, 1, A, 6, base + 600, NULL);
    struct rflow *f = &w.r.f[0];
    assert_counts(f, 600, 0, 0, 0);
    assert_memory_equal(f->data[SC_DIR_C2S], msg, 600);
    world_free(&w);
}

static void test_reordered_and_duplicated_segments_rebuild_stream(void **state)
{
    (void)state;
    uint8_t msg[300];
    fill_pattern(msg, sizeof(msg), 11);
    struct world w;
    struct conn c = start(&w);
    static const size_t seg[5][2] = {{200, 300}, {0, 100}, {0, 100}, {50, 250}, {100, 200}};
    for (int i = 0; i < 5; i++)
        tx_full(&c, 0, PA, 101 + (uint32_t)seg[i][0], 901, msg + seg[i][0], seg[i][1] - seg[i][0],
                seg[i][1] - seg[i][0]);
    tx(&c, 0, CAP_TH_FIN | A, 401, 901, NULL);
    tx(&c, 1, CAP_TH_FIN | A, 901, 402, NULL);
    struct rflow *f = &w.r.f[0];
    assert_counts(f, 300, 0, 0, 0);
    assert_memory_equal(f->data[SC_DIR_C2S], msg, 300);
    assert_closed(f, CAP_CLOSE_FIN, 10);
    assert_int_equal(f->close_st[SC_DIR_C2S].retransmits, 2);
    assert_int_equal(f->close_st[SC_DIR_C2S].overlaps_diff, 0);
    world_free(&w);
}

static void test_acked_but_uncaptured_segment_is_a_gap(void **state)
{
    (void)state;
    struct world w;
    struct conn c = start(&w);
    tx(&c, 0, PA, 101, 901, "0123456789");
    /* "abcdefghij" at 111 was never captured, but the server ACKs it. */
    tx(&c, 1, A, 901, 121, NULL);
    tx(&c, 0, PA, 121, 901, "ABCDEFGHIJ");
    struct rflow *f = &w.r.f[0];
    assert_counts(f, 20, 0, 1, 0);
    assert_gap(f, 0, 10, 10, CAP_GAP_ACKED);
    assert_string_equal(cap_gap_reason_name(CAP_GAP_ACKED), "acked_unseen");
    assert_memory_equal(f->data[SC_DIR_C2S], "0123456789", 10);
    assert_memory_equal(f->data[SC_DIR_C2S] + 20, "ABCDEFGHIJ", 10);
    assert_int_equal(f->next[SC_DIR_C2S], 30);
    world_free(&w);
}

static void test_snaplen_cut_segment_is_a_gap_and_an_event(void **state)
{
    (void)state;
    uint8_t msg[100];
    fill_pattern(msg, sizeof(msg), 5);
    struct world w;
    struct conn c = start(&w);
    tx_full(&c, 0, PA, 101, 901, msg, 40, 100);
    tx(&c, 0, PA, 201, 901, "QUIT\r\n");
    struct rflow *f = &w.r.f[0];
    assert_counts(f, 46, 0, 1, 1);
    assert_gap(f, 0, 40, 60, CAP_GAP_SNAPLEN);
    assert_int_equal(count_events(f, "snaplen_truncated"), 1);
    assert_int_equal(f->evs[0].dir, SC_DIR_C2S);
    assert_memory_equal(f->data[SC_DIR_C2S], msg, 40);
    assert_memory_equal(f->data[SC_DIR_C2S] + 100, "QUIT\r\n", 6);
    assert_int_equal(f->next[SC_DIR_C2S], 106);
    world_free(&w);
}

static void test_retransmission_with_other_bytes_reports_both(void **state)
{
    (void)state;
    struct world w;
    struct conn c = start(&w);
    tx(&c, 0, PA, 101, 901, "MAIL FROM:<a@b>\r\n");
    tx(&c, 0, PA, 101, 901, "MAIL FROM:<x@b>\r\n");
    /* Out of order too: a held segment re-sent with other bytes. */
    tx(&c, 0, PA, 128, 901, "RCPT TO:<c@d>\r\n");
    tx(&c, 0, PA, 128, 901, "RCPT TO:<e@d>\r\n");
    tx(&c, 0, PA, 118, 901, "0123456789");
    struct rflow *f = &w.r.f[0];
    assert_int_equal(count_events(f, "overlap_mismatch"), 2);
    const struct revent *e = &f->evs[0];
    assert_string_equal(e->kind, "overlap_mismatch");
    assert_int_equal(e->dir, SC_DIR_C2S);
    assert_int_equal(e->frame, 5);
    if (!strstr(e->detail, "a@b>") || !strstr(e->detail, "x@b>"))
        fail_msg("detail lacks a version: %s", e->detail);
    e = &f->evs[1];
    if (!strstr(e->detail, "c@d>") || !strstr(e->detail, "e@d>"))
        fail_msg("detail lacks a version: %s", e->detail);
    assert_int_equal(f->bytes[SC_DIR_C2S], 17 + 10 + 15);
    assert_memory_equal(f->data[SC_DIR_C2S], "MAIL FROM:<a@b>\r\n0123456789RCPT TO:<c@d>\r\n", 42);
    world_free(&w);
}

static void test_keepalive_probe_is_not_an_overlap(void **state)
{
    (void)state;
    struct world w;
    struct conn c = start(&w);
    tx(&c, 0, PA, 101, 901, "hello");
    tx_full(&c, 0, A, 105, 901, "\0", 1, 1); /* seq = next - 1, one junk byte */
    struct rflow *f = &w.r.f[0];
    assert_counts(f, 5, 0, 0, 0);
    /* The same byte one position earlier is a real overlap. */
    tx_full(&c, 0, A, 104, 901, "\0", 1, 1);
    assert_int_equal(count_events(f, "overlap_mismatch"), 1);
    assert_memory_equal(f->data[SC_DIR_C2S], "hello", 5);
    world_free(&w);
}

static void test_data_callback_nonzero_drops_flow_once(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    w.r.stop_on_data = true;
    struct conn c = mkconn(&w, ep4(1, 40000), ep4(2, 25));
    handshake(&c, 100, 900);
    tx(&c, 0, PA, 101, 901, "EHLO x\r\n");
    struct rflow *f = &w.r.f[0];
    assert_int_equal(f->data_calls, 1);
    assert_closed(f, CAP_CLOSE_DROPPED, 4);
    tx(&c, 1, PA, 901, 109, "250 ok\r\n");
    tx(&c, 0, PA, 109, 909, "QUIT\r\n");
    tx(&c, 0, CAP_TH_FIN | A, 115, 909, NULL);
    tx(&c, 1, CAP_TH_FIN | A, 909, 116, NULL);
    tx(&c, 1, CAP_TH_RST, 910, 0, NULL);
    world_end(&w);
    assert_int_equal(f->data_calls, 1);
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->fins[0] + f->fins[1], 0);
    assert_int_equal(w.r.opens, 1);
    world_free(&w);
}

static void test_declined_flow_gets_no_callbacks(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    w.r.decline = true;
    struct conn c = mkconn(&w, ep4(1, 40000), ep4(2, 25));
    handshake(&c, 100, 900);
    tx(&c, 1, PA, 901, 101, "220 hi\r\n");
    tx(&c, 0, PA, 101, 909, "EHLO x\r\n");
    tx(&c, 0, CAP_TH_FIN | A, 109, 909, NULL);
    tx(&c, 1, CAP_TH_FIN | A, 909, 110, NULL);
    cap_tracker_finish(w.t);
    assert_int_equal(w.r.opens, 1);
    assert_int_equal(w.r.nf, 0);
    assert_int_equal(w.r.closes, 0);
    const struct cap_tracker_stats *st = cap_tracker_stats(w.t);
    assert_int_equal(st->flows, 1);
    assert_int_equal(st->flows_followed, 0);
    world_free(&w);
    assert_int_equal(w.r.closes, 0);
}

static void test_close_flushes_held_bytes_after_end_gap(void **state)
{
    (void)state;
    struct world w;
    struct conn c = start(&w);
    tx(&c, 0, CAP_TH_FIN | A, 121, 901, NULL); /* the FIN before the data */
    tx(&c, 0, PA, 111, 901, "klmnopqrst");
    tx(&c, 1, PA, 901, 101, "220 x\r\n");
    struct rflow *f = &w.r.f[0];
    assert_counts(f, 0, 7, 0, 0);
    assert_int_equal(f->fins[SC_DIR_C2S], 0);
    cap_tracker_finish(w.t);
    assert_counts(f, 10, 7, 1, 0);
    assert_gap(f, 0, 0, 10, CAP_GAP_END);
    assert_memory_equal(f->data[SC_DIR_C2S] + 10, "klmnopqrst", 10);
    assert_int_equal(f->fins[SC_DIR_C2S], 1);
    assert_closed(f, CAP_CLOSE_EOF, 6);
    world_free(&w);

    /* In order, the FIN is reported once the bytes before it are there. */
    world_init(&w, NULL);
    c.w = &w;
    handshake(&c, 100, 900);
    tx(&c, 0, CAP_TH_FIN | A, 111, 901, NULL);
    tx(&c, 0, PA, 101, 901, "0123456789");
    f = &w.r.f[0];
    assert_int_equal(f->fins[SC_DIR_C2S], 1);
    assert_counts(f, 10, 0, 0, 0);
    world_free(&w);
}

static void test_fragment_and_non_tcp_packets(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    struct conn c = mkconn(&w, ep4(1, 40000), ep4(2, 25));
    struct cap_packet k = mkpkt(&c, 0, PA, 1, 1, "EHLO x\r\n", 8, 8);
    k.status = CAP_ST_NOT_TCP; /* only counted, even with TCP-looking fields */
    cap_tracker_packet(w.t, &k);
    k.status = CAP_ST_FRAGMENT;
    cap_tracker_packet(w.t, &k);
    const struct cap_tracker_stats *st = cap_tracker_stats(w.t);
    assert_int_equal(st->packets, 2);
    assert_int_equal(st->by_status[CAP_ST_NOT_TCP], 1);
    assert_int_equal(st->by_status[CAP_ST_FRAGMENT], 1);
    assert_int_equal(st->flows, 0);
    w.frame = 2;
    handshake(&c, 100, 900);
    k = mkpkt(&c, 0, PA, 101, 901, "DATA\r\n", 6, 100);
    k.frag_first = true; /* the rest of the segment is in other fragments */
    cap_tracker_packet(w.t, &k);
    struct rflow *f = &w.r.f[0];
    assert_int_equal(count_events(f, "ip_fragment"), 1);
    assert_int_equal(count_events(f, "snaplen_truncated"), 0);
    assert_gap(f, 0, 6, 94, CAP_GAP_FRAGMENT);
    world_free(&w);
}

/* The same connection seen twice (two VLANs, two mirror sessions: another
 * observation context) is two flows, each complete, never one flow full of
 * duplicates. */
static void test_contexts_are_separate_observations(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    struct conn c = mkconn(&w, ep4(1, 40000), ep4(2, 25));
    static const uint64_t ctx[2] = {0x1111, 0x2222};
    struct {
        int from;
        unsigned flags;
        uint32_t seq, ack;
        const char *s;
    } steps[] = {
        {0, CAP_TH_SYN, 100, 0, NULL},
        {1, CAP_TH_SYN | A, 900, 101, NULL},
        {0, A, 101, 901, NULL},
        {1, PA, 901, 101, "220 mx\r\n"},
        {0, PA, 101, 909, "EHLO x\r\n"},
        {1, PA, 909, 109, "250 mx\r\n"},
        {0, CAP_TH_FIN | A, 109, 917, NULL},
        {1, CAP_TH_FIN | A, 917, 110, NULL},
        {0, A, 110, 918, NULL},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        for (int o = 0; o < 2; o++) {
            size_t n = steps[i].s ? strlen(steps[i].s) : 0;
            struct cap_packet k = mkpkt(&c, steps[i].from, steps[i].flags, steps[i].seq,
                                        steps[i].ack, steps[i].s, n, n);
            k.ctx = ctx[o];
            cap_tracker_packet(w.t, &k);
        }
    assert_int_equal(w.r.nf, 2);
    for (int o = 0; o < 2; o++) {
        struct rflow *f = &w.r.f[o];
        assert_int_equal(f->open_fi.ctx, ctx[o]);
        assert_counts(f, 8, 16, 0, 0);
        assert_closed(f, CAP_CLOSE_FIN, 15 + (uint64_t)o); /* at the second FIN */
        assert_int_equal(f->close_st[0].retransmits + f->close_st[1].retransmits, 0);
    }
    assert_int_equal(cap_tracker_stats(w.t)->flows, 2);
    world_free(&w);
}

/* IP fragments go through the reassembler: a segment split in two arrives
 * whole, with the completing fragment's frame; a datagram that never
 * completes still gives its first fragment's bytes at the end. */
static void test_fragments_are_reassembled_before_tracking(void **state)
{
    (void)state;
    struct world w;
    world_init(&w, NULL);
    struct conn c = mkconn(&w, ep4(1, 40000), ep4(2, 25));
    handshake(&c, 100, 900);
    /* The TCP segment as bytes: header (20) + "MAIL FROM:<a@b>\r\n" (17). */
    static const char body[] = "MAIL FROM:<a@b>\r\n";
    uint8_t seg[64];
    memset(seg, 0, 20);
    seg[0] = 40000 >> 8;
    seg[1] = 40000 & 0xff;
    seg[3] = 25;
    seg[4] = 0;
    seg[5] = 0;
    seg[6] = 0;
    seg[7] = 101; /* seq */
    seg[10] = 900 >> 8;
    seg[11] = 901 & 0xff; /* ack 901 */
    seg[12] = 5 << 4;
    seg[13] = (uint8_t)PA;
    memcpy(seg + 20, body, 17);
    for (int dg = 0; dg < 2; dg++) {
        /* dg 0: fragments [0,24) and [24,37) in reverse order; dg 1: only
         * its first fragment, of a later segment. */
        for (int part = 0; part < (dg ? 1 : 2); part++) {
            int which = dg ? 0 : 1 - part;
            struct cap_packet k = mkpkt(&c, 0, PA, 0, 0, NULL, 0, 0);
            k.status = which ? CAP_ST_FRAGMENT : CAP_ST_TCP;
            k.frag.present = true;
            k.frag.ipver = 4;
            k.frag.proto = 6;
            k.frag.id = (uint32_t)(7 + dg);
            k.frag.off = which ? 24 : 0;
            k.frag.more = which == 0;
            uint8_t *copy = malloc(40);
            assert_non_null(copy);
            memcpy(copy, seg, 37);
            if (dg)
                copy[7] = 101 + 17; /* the next segment's seq */
            k.frag.data = copy + (which ? 24 : 0);
            k.frag.len = k.frag.wire = which ? 13 : 24;
            k.frag.src = k.src;
            k.frag.dst = k.dst;
            cap_tracker_packet(w.t, &k);
            free(copy);
        }
    }
    struct rflow *f = &w.r.f[0];
    /* The first datagram is whole: 17 bytes delivered, no gap yet. */
    assert_int_equal(f->bytes[SC_DIR_C2S], 17);
    assert_memory_equal(f->data[SC_DIR_C2S], body, 17);
    assert_int_equal(cap_tracker_stats(w.t)->defrag.reassembled, 1);
    world_end(&w);
    /* At the end the second one gives up: its first fragment's 4 bytes. */
    assert_int_equal(f->bytes[SC_DIR_C2S], 17 + 4);
    assert_int_equal(count_events(f, "ip_fragment"), 1);
    free(w.r.f);
}

/* ---- property: shuffled segments rebuild the stream ---- */

#define PROP_LEN 20000
#define PROP_MAX_SENDS 512

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

struct send {
    uint32_t off, len;
};

/* Cuts the stream into segments, adds duplicates and overlapping re-sends
 * of the same bytes, and shuffles; returns the number of sends. */
static size_t plan_sends(struct send *v, uint64_t *rng)
{
    size_t n = 0;
    for (uint32_t off = 0; off < PROP_LEN;) {
        uint32_t len = (uint32_t)(1 + xorshift(rng) % 1460);
        if (len > PROP_LEN - off)
            len = PROP_LEN - off;
        v[n++] = (struct send){off, len};
        off += len;
    }
    size_t segs = n;
    for (size_t i = 0; i < segs / 4 && n < PROP_MAX_SENDS; i++)
        v[n++] = v[xorshift(rng) % segs]; /* exact duplicate */
    for (size_t i = 0; i < segs / 4 && n < PROP_MAX_SENDS; i++) {
        uint32_t a = (uint32_t)(xorshift(rng) % PROP_LEN);
        uint32_t len = (uint32_t)(1 + xorshift(rng) % 3000);
        v[n++] = (struct send){a, len < PROP_LEN - a ? len : PROP_LEN - a};
    }
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(xorshift(rng) % (i + 1));
        struct send t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    return n;
}

static void test_shuffled_segments_rebuild_stream_exactly(void **state)
{
    (void)state;
    static uint8_t stream[PROP_LEN];
    static bool seen[PROP_LEN];
    static struct send sends[PROP_MAX_SENDS];
    for (uint64_t seed = 1; seed <= 200; seed++) {
        uint64_t rng = seed * 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i < PROP_LEN; i++)
            stream[i] = (uint8_t)xorshift(&rng);
        memset(seen, 0, sizeof(seen));
        size_t ns = plan_sends(sends, &rng);
        /* Every fourth seed starts just below 2^32 so the stream wraps. */
        uint32_t isn = seed % 4 ? (uint32_t)xorshift(&rng) : 0xffffffffu - 5000;
        uint32_t srv = (uint32_t)xorshift(&rng);
        struct world w;
        world_init(&w, NULL);
        struct conn c = mkconn(&w, ep4(1, 40000), ep4(2, 25));
        handshake(&c, isn, srv);
        uint32_t acked = 0;
        for (size_t i = 0; i < ns; i++) {
            tx_full(&c, 0, PA, isn + 1 + sends[i].off, srv + 1, stream + sends[i].off, sends[i].len,
                    sends[i].len);
            memset(seen + sends[i].off, 1, sends[i].len);
            /* The server acknowledges what it has received in order. */
            uint32_t prefix = acked;
            while (prefix < PROP_LEN && seen[prefix])
                prefix++;
            if (prefix != acked && (xorshift(&rng) & 1)) {
                acked = prefix;
                tx(&c, 1, A, srv + 1, isn + 1 + acked, NULL);
            }
        }
        tx(&c, 0, CAP_TH_FIN | A, isn + 1 + PROP_LEN, srv + 1, NULL);
        tx(&c, 1, CAP_TH_FIN | A, srv + 1, isn + 2 + PROP_LEN, NULL);
        struct rflow *f = &w.r.f[0];
        if (f->bytes[SC_DIR_C2S] != PROP_LEN || f->ngaps != 0 || f->nevs != 0 ||
            memcmp(f->data[SC_DIR_C2S], stream, PROP_LEN) != 0)
            fail_msg("seed %llu: %llu bytes, %zu gaps, %zu events (%s)", (unsigned long long)seed,
                     (unsigned long long)f->bytes[SC_DIR_C2S], f->ngaps, f->nevs,
                     f->nevs ? f->evs[0].kind : "-");
        assert_int_equal(f->closes, 1);
        assert_int_equal(f->why, CAP_CLOSE_FIN);
        assert_int_equal(cap_tracker_pool_used(w.t), 0);
        world_free(&w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_data_and_fins_close_as_fin),
        cmocka_unit_test(test_synack_without_syn_takes_client_base_from_ack),
        cmocka_unit_test(test_midstream_roles_from_server_ports),
        cmocka_unit_test(test_midstream_roles_from_payload_when_ports_tie),
        cmocka_unit_test(test_rst_closes_at_once_and_late_data_is_absorbed),
        cmocka_unit_test(test_new_syn_on_closed_tuple_starts_new_connection),
        cmocka_unit_test(test_new_syn_on_open_connection_is_port_reuse),
        cmocka_unit_test(test_new_syn_on_open_midstream_connection_is_port_reuse),
        cmocka_unit_test(test_idle_timeout_runs_on_capture_time),
        cmocka_unit_test(test_tombstone_expires_before_older_idle_deadline),
        cmocka_unit_test(test_one_future_timestamp_expires_nothing),
        cmocka_unit_test(test_backwards_timestamps_are_counted_and_expire_nothing),
        cmocka_unit_test(test_full_table_evicts_least_recently_active),
        cmocka_unit_test(test_finish_closes_in_creation_order_as_eof),
        cmocka_unit_test(test_finish_order_over_many_flows),
        cmocka_unit_test(test_lone_syn_is_opened_late_with_its_own_info),
        cmocka_unit_test(test_declined_lone_syn_gets_one_offer),
        cmocka_unit_test(test_sequence_wrap_gives_contiguous_stream),
        cmocka_unit_test(test_reordered_and_duplicated_segments_rebuild_stream),
        cmocka_unit_test(test_acked_but_uncaptured_segment_is_a_gap),
        cmocka_unit_test(test_snaplen_cut_segment_is_a_gap_and_an_event),
        cmocka_unit_test(test_retransmission_with_other_bytes_reports_both),
        cmocka_unit_test(test_keepalive_probe_is_not_an_overlap),
        cmocka_unit_test(test_data_callback_nonzero_drops_flow_once),
        cmocka_unit_test(test_declined_flow_gets_no_callbacks),
        cmocka_unit_test(test_close_flushes_held_bytes_after_end_gap),
        cmocka_unit_test(test_fragment_and_non_tcp_packets),
        cmocka_unit_test(test_contexts_are_separate_observations),
        cmocka_unit_test(test_fragments_are_reassembled_before_tracking),
        cmocka_unit_test(test_shuffled_segments_rebuild_stream_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
