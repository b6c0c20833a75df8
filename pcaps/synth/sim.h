/* sim.h - the synthesizer's network simulation: a discrete-event clock,
 * links with vantage points (captures), and TCP endpoints (RFC 9293, with
 * RFC 7323 timestamps and window scaling, RFC 2018 SACK-permitted, RFC 6298
 * retransmission timeouts, RFC 1122 delayed ACKs).
 *
 * Topology of one connection: client -- outside link -- middlebox -- inside
 * link -- server.  A vantage point sits on a link at a distance from the
 * middlebox (0 = at the middlebox, 1 = at the end host) and writes every
 * packet that passes it to a capture, with its own capture loss, duplicates
 * and clock offset.  A link drops packets at its midpoint (path loss: the
 * sender retransmits), may reorder them (extra delay) and duplicate them.
 *
 * Endpoints are simple but real: three-way handshake with options, MSS
 * segmentation, a congestion window that opens per ACK, delayed ACKs,
 * out-of-order queue on receipt, retransmission on timeout with backoff, FIN
 * and RST teardown.  Applications (personas, the middlebox's relay) sit on
 * endpoints through callbacks.
 *
 * Everything is deterministic: events at the same instant run in the order
 * they were scheduled, and all randomness comes from seeded generators.
 */
#ifndef SC_SYNTH_SIM_H
#define SC_SYNTH_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/time.h"
#include "pcaps/synth/rng.h"
#include "pcaps/synth/wire.h"

struct sim;
struct sim_link;
struct sim_ep;
struct syn_encap;

/* One packet in flight.  Owned by whoever holds it; sim_pkt_* helpers copy. */
struct sim_pkt {
    bool udp;
    struct syn_ip ip;
    struct syn_tcp tcp;
    struct syn_udp u;
    size_t len;
    uint8_t *data; /* len bytes, owned */
};

struct sim_pkt *sim_pkt_new(size_t len);
struct sim_pkt *sim_pkt_copy(const struct sim_pkt *p);
void sim_pkt_free(struct sim_pkt *p);

/* Something that receives packets from a link end: an endpoint, or the
 * middlebox.  `side` says which end of the link it sits at. */
struct sim_node {
    void (*recv)(struct sim *s, struct sim_node *n, struct sim_link *from, struct sim_pkt *p);
};

/* A capture point: where packets are written. */
struct sim_vantage {
    struct syn_writer *w; /* NULL: nothing is written */
    struct syn_link_opts link;
    double position;  /* distance from the middlebox, 0..1 */
    double loss;      /* capture loss: the packet passed but was not recorded */
    double duplicate; /* the capture recorded it twice */
    double conflict;  /* the capture also recorded a copy of a data segment whose bytes
                       * differ (as a span port seeing both sides of a rewriting device) */
    sc_time clock_offset;
    struct syn_rng rng;
    uint64_t written;
    uint64_t lost;
    /* Encapsulation of every packet written (NULL: none, link as above).  Shared by the
     * vantages that write to the same capture file; not owned. */
    struct syn_encap *encap;
    bool host_is_client; /* end 1 of the link is the client: packets from it go c2s */
};

/* A link between the middlebox side (end 0) and a host side (end 1). */
struct sim_link {
    struct sim_node *end[2];
    sc_time delay;  /* one-way propagation */
    double loss;    /* path loss at the midpoint */
    double reorder; /* probability of an extra delay of reorder_delay */
    sc_time reorder_delay;
    double duplicate;            /* delivered twice */
    uint8_t hops[2];             /* TTL decrement from end e to the vantage */
    struct sim_vantage *vantage; /* or NULL */
    struct syn_rng rng;
};

/* Schedules fn(s, arg) at time t (>= now).  arg is not owned by the event. */
void sim_at(struct sim *s, sc_time t, void (*fn)(struct sim *s, void *arg), void *arg);

/* Same, for an arg the event owns: fn frees it when it runs, and sim_free
 * frees it with drop() if the event never ran (the run was cut short). */
void sim_at_owned(struct sim *s, sc_time t, void (*fn)(struct sim *s, void *arg), void *arg,
                  void (*drop)(void *arg));

/* Puts a packet on a link from end `from_end` (0: middlebox side, 1: host
 * side) at the current time; the link takes ownership. */
void sim_send(struct sim *s, struct sim_link *l, int from_end, struct sim_pkt *p);

sc_time sim_now(const struct sim *s);

/* ---- TCP endpoints ---- */

struct sim_ep_cb {
    void (*connected)(struct sim *s, struct sim_ep *e, void *app);
    void (*data)(struct sim *s, struct sim_ep *e, void *app, const uint8_t *p, size_t n);
    void (*fin)(struct sim *s, struct sim_ep *e, void *app);   /* the peer closed */
    void (*reset)(struct sim *s, struct sim_ep *e, void *app); /* RST received or gave up */
};

struct sim_ep_opts {
    struct cap_addr addr, peer_addr;
    uint16_t port, peer_port;
    uint32_t iss;
    uint16_t mss;   /* announced MSS */
    uint8_t wscale; /* announced window scale (0..14) */
    bool sack, ts, ws;
    uint8_t ttl;            /* initial TTL / hop limit */
    uint16_t ipid;          /* first IPv4 id */
    uint32_t ts_base;       /* timestamp clock origin */
    sc_time delack;         /* delayed-ACK timer (RFC 1122: at most 500 ms) */
    sc_time rto_min;        /* minimum retransmission timeout */
    int max_retries;        /* retransmissions of one segment before giving up (RST) */
    uint32_t init_cwnd;     /* segments */
    bool nodelay_each_byte; /* send every write as its own segment (telnet) */
};

struct sim_ep;

/* Creates an endpoint attached to end `end` of link l.  A client connects
 * with sim_ep_connect; a server answers the first SYN it gets. */
struct sim_ep *sim_ep_new(struct sim *s, const struct sim_ep_opts *o, struct sim_link *l, int end,
                          const struct sim_ep_cb *cb, void *app);
void sim_ep_free(struct sim_ep *e);

/* The endpoint as a node, to attach to a link end. */
struct sim_node *sim_ep_node(struct sim_ep *e);

void sim_ep_connect(struct sim *s, struct sim_ep *e);
/* Queues bytes for sending. */
void sim_ep_write(struct sim *s, struct sim_ep *e, const uint8_t *p, size_t n);
/* Sends FIN after the queued bytes. */
void sim_ep_close(struct sim *s, struct sim_ep *e);
/* Sends RST now and stops. */
void sim_ep_abort(struct sim *s, struct sim_ep *e);
bool sim_ep_closed(const struct sim_ep *e);

/* Makes the endpoint append every byte it sends for the first time to log
 * (retransmissions are not repeated): the stream a capture must show. */
void sim_ep_set_log(struct sim_ep *e, struct sc_buf *log);

/* ---- the simulation ---- */

struct sim *sim_new(sc_time epoch);
void sim_free(struct sim *s);

/* Runs events until none are left or the clock passes `until`. */
void sim_run(struct sim *s, sc_time until);

/* Number of events run so far (for loop guards in tests). */
uint64_t sim_events(const struct sim *s);

#endif
