/* sim.c - discrete-event network simulation and TCP endpoints (RFC 9293,
 * RFC 7323, RFC 2018, RFC 6298, RFC 1122 4.2.3.2). */
#include "pcaps/synth/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pcaps/synth/encap.h"

/* ---- packets ---- */

struct sim_pkt *sim_pkt_new(size_t len)
{
    struct sim_pkt *p = calloc(1, sizeof(*p));
    if (!p)
        abort(); /* the synthesizer is a tool, not a parser: no memory is fatal */
    p->len = len;
    if (len) {
        p->data = malloc(len);
        if (!p->data)
            abort();
    }
    return p;
}

struct sim_pkt *sim_pkt_copy(const struct sim_pkt *p)
{
    struct sim_pkt *c = sim_pkt_new(p->len);
    uint8_t *d = c->data;
    *c = *p;
    c->data = d;
    if (p->len)
        memcpy(c->data, p->data, p->len);
    return c;
}

void sim_pkt_free(struct sim_pkt *p)
{
    if (!p)
        return;
    free(p->data);
    free(p);
}

/* ---- events ---- */

struct sim_ev {
    sc_time t;
    uint64_t seq;
    void (*fn)(struct sim *s, void *arg);
    void *arg;
    void (*drop)(void *arg);
};

struct sim {
    sc_time epoch;
    sc_time now;
    struct sim_ev *heap;
    size_t n, cap;
    uint64_t seq;
    uint64_t ran;
    uint8_t frame[SYN_FRAME_MAX]; /* scratch for building captured frames */
};

static bool ev_before(const struct sim_ev *a, const struct sim_ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

void sim_at(struct sim *s, sc_time t, void (*fn)(struct sim *s, void *arg), void *arg)
{
    sim_at_owned(s, t, fn, arg, NULL);
}

void sim_at_owned(struct sim *s, sc_time t, void (*fn)(struct sim *s, void *arg), void *arg,
                  void (*drop)(void *arg))
{
    if (t < s->now)
        t = s->now;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->heap = realloc(s->heap, s->cap * sizeof(*s->heap));
        if (!s->heap)
            abort();
    }
    size_t i = s->n++;
    struct sim_ev ev = {t, s->seq++, fn, arg, drop};
    while (i > 0 && ev_before(&ev, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = ev;
}

static struct sim_ev ev_pop(struct sim *s)
{
    struct sim_ev top = s->heap[0];
    struct sim_ev last = s->heap[--s->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n)
            break;
        if (c + 1 < s->n && ev_before(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!ev_before(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n)
        s->heap[i] = last;
    return top;
}

struct sim *sim_new(sc_time epoch)
{
    struct sim *s = calloc(1, sizeof(*s));
    if (!s)
        abort();
    s->epoch = epoch;
    return s;
}

void sim_free(struct sim *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (s->heap[i].drop)
            s->heap[i].drop(s->heap[i].arg);
    free(s->heap);
    free(s);
}

sc_time sim_now(const struct sim *s)
{
    return s->now;
}

uint64_t sim_events(const struct sim *s)
{
    return s->ran;
}

void sim_run(struct sim *s, sc_time until)
{
    while (s->n > 0 && s->heap[0].t <= until) {
        struct sim_ev ev = ev_pop(s);
        s->now = ev.t;
        s->ran++;
        ev.fn(s, ev.arg);
    }
}

/* ---- links and captures ---- */

struct sim_delivery {
    struct sim_link *l;
    int to_end;
    struct sim_pkt *p;
};

struct sim_capture {
    struct sim_vantage *v;
    struct sim_pkt *p;
    struct sim *s;
    bool c2s; /* the packet goes from the client to the server */
};

static void delivery_drop(void *arg)
{
    struct sim_delivery *d = arg;
    sim_pkt_free(d->p);
    free(d);
}

static void capture_drop(void *arg)
{
    struct sim_capture *c = arg;
    sim_pkt_free(c->p);
    free(c);
}

static void deliver_ev(struct sim *s, void *arg)
{
    struct sim_delivery *d = arg;
    struct sim_node *n = d->l->end[d->to_end];
    if (n && n->recv)
        n->recv(s, n, d->l, d->p);
    else
        sim_pkt_free(d->p);
    free(d);
}

/* Writes one packet as the vantage records it; c2s: it goes from the client to the server
 * (picks the encapsulation's direction-dependent fields). */
static void write_capture(struct sim *s, struct sim_vantage *v, const struct sim_pkt *p, bool c2s)
{
    uint8_t *frame = s->frame;
    sc_time ts = s->epoch + s->now + v->clock_offset;
    if (v->encap) {
        /* The bare IP datagram, wrapped by the encapsulation. */
        struct syn_link_opts raw;
        memset(&raw, 0, sizeof(raw));
        raw.type = SYN_LINK_RAW;
        size_t len = p->udp ? syn_build_udp(frame, &raw, &p->ip, &p->u, p->data, p->len)
                            : syn_build_tcp(frame, &raw, &p->ip, &p->tcp, p->data, p->len);
        syn_encap_write(v->encap, v->w, &v->link, ts, c2s, frame, len);
        v->written++;
        return;
    }
    size_t len = p->udp ? syn_build_udp(frame, &v->link, &p->ip, &p->u, p->data, p->len)
                        : syn_build_tcp(frame, &v->link, &p->ip, &p->tcp, p->data, p->len);
    syn_writer_packet(v->w, ts, frame, len);
    v->written++;
}

static void capture_ev(struct sim *s, void *arg)
{
    struct sim_capture *c = arg;
    struct sim_vantage *v = c->v;
    if (v->w) {
        if (syn_rng_chance(&v->rng, v->loss)) {
            v->lost++;
        } else {
            write_capture(s, v, c->p, c->c2s);
            if (syn_rng_chance(&v->rng, v->duplicate))
                write_capture(s, v, c->p, c->c2s);
            if (c->p->len > 0 && !c->p->udp && syn_rng_chance(&v->rng, v->conflict)) {
                /* Same sequence range, other bytes: letters change case. */
                struct sim_pkt *alt = sim_pkt_copy(c->p);
                for (size_t i = 0; i < alt->len; i++)
                    if ((alt->data[i] | 0x20) >= 'a' && (alt->data[i] | 0x20) <= 'z')
                        alt->data[i] ^= 0x20;
                write_capture(s, v, alt, c->c2s);
                sim_pkt_free(alt);
            }
        }
    }
    sim_pkt_free(c->p);
    free(c);
}

void sim_send(struct sim *s, struct sim_link *l, int from_end, struct sim_pkt *p)
{
    bool lost = syn_rng_chance(&l->rng, l->loss);
    sc_time extra = syn_rng_chance(&l->rng, l->reorder) ? l->reorder_delay : 0;
    bool dup = syn_rng_chance(&l->rng, l->duplicate);
    if (l->vantage) {
        /* Fraction of the link travelled when the packet passes the vantage. */
        double pos = l->vantage->position;
        double frac = from_end == 0 ? pos : 1.0 - pos;
        bool after_mid = frac > 0.5;
        if (!(lost && after_mid)) {
            int copies = dup && after_mid ? 2 : 1;
            for (int i = 0; i < copies; i++) {
                struct sim_capture *c = malloc(sizeof(*c));
                if (!c)
                    abort();
                c->v = l->vantage;
                c->s = s;
                c->c2s = (from_end == 1) == l->vantage->host_is_client;
                c->p = sim_pkt_copy(p);
                unsigned hops = l->hops[from_end];
                c->p->ip.ttl = (uint8_t)(c->p->ip.ttl > hops ? c->p->ip.ttl - hops : 1);
                sc_time tv = s->now + (sc_time)((double)l->delay * frac) + (after_mid ? extra : 0) +
                             i * 1000;
                sim_at_owned(s, tv, capture_ev, c, capture_drop);
            }
        }
    }
    if (lost) {
        sim_pkt_free(p);
        return;
    }
    unsigned hops = (unsigned)l->hops[0] + l->hops[1];
    p->ip.ttl = (uint8_t)(p->ip.ttl > hops ? p->ip.ttl - hops : 1);
    sc_time at = s->now + l->delay + extra;
    if (dup) {
        struct sim_delivery *d2 = malloc(sizeof(*d2));
        if (!d2)
            abort();
        d2->l = l;
        d2->to_end = 1 - from_end;
        d2->p = sim_pkt_copy(p);
        sim_at_owned(s, at + 1000, deliver_ev, d2, delivery_drop);
    }
    struct sim_delivery *d = malloc(sizeof(*d));
    if (!d)
        abort();
    d->l = l;
    d->to_end = 1 - from_end;
    d->p = p;
    sim_at_owned(s, at, deliver_ev, d, delivery_drop);
}

/* ---- TCP endpoints ---- */

enum ep_state {
    EP_IDLE = 0,
    EP_LISTEN,
    EP_SYN_SENT,
    EP_SYN_RCVD,
    EP_EST,
    EP_CLOSED,
};

struct ep_seg {
    struct ep_seg *next;
    uint32_t seq;
    size_t len;
    bool fin;
    uint8_t data[];
};

struct sim_ep {
    struct sim_node node; /* first: the node pointer is the endpoint */
    struct sim_ep_opts o;
    struct sim_link *link;
    int end;
    const struct sim_ep_cb *cb;
    void *app;
    enum ep_state state;
    uint32_t snd_una, snd_nxt, rcv_nxt;
    uint16_t peer_mss;
    bool peer_sack, peer_ts, peer_ws;
    uint8_t peer_wscale;
    uint32_t ts_recent;
    uint8_t *sbuf; /* bytes from snd_una (after SYN) onward */
    size_t soff, slen, scap;
    size_t *bounds; /* telnet: write boundaries, as offsets into the byte stream */
    size_t nbounds, cbounds;
    uint64_t sent_total; /* bytes ever queued before sbuf[soff] */
    bool fin_queued, fin_sent, fin_rcvd, fin_acked;
    uint32_t cwnd;
    int retries;
    sc_time rto;
    uint64_t rto_gen, delack_gen;
    bool rto_armed, delack_armed;
    int unacked_rx;
    struct ep_seg *ooo;
    uint16_t ipid;
    struct sc_buf *log;
};

struct ep_timer {
    struct sim_ep *e;
    uint64_t gen;
};

static void ep_recv(struct sim *s, struct sim_node *n, struct sim_link *from, struct sim_pkt *p);

struct sim_node *sim_ep_node(struct sim_ep *e)
{
    return &e->node;
}

struct sim_ep *sim_ep_new(struct sim *s, const struct sim_ep_opts *o, struct sim_link *l, int end,
                          const struct sim_ep_cb *cb, void *app)
{
    (void)s;
    struct sim_ep *e = calloc(1, sizeof(*e));
    if (!e)
        abort();
    e->node.recv = ep_recv;
    e->o = *o;
    if (e->o.max_retries <= 0)
        e->o.max_retries = 5;
    if (e->o.rto_min <= 0)
        e->o.rto_min = 200 * 1000000LL;
    if (e->o.delack <= 0)
        e->o.delack = 40 * 1000000LL;
    if (e->o.init_cwnd == 0)
        e->o.init_cwnd = 10;
    e->link = l;
    e->end = end;
    e->cb = cb;
    e->app = app;
    e->state = EP_LISTEN;
    e->ipid = o->ipid;
    l->end[end] = &e->node;
    return e;
}

void sim_ep_free(struct sim_ep *e)
{
    if (!e)
        return;
    struct ep_seg *g = e->ooo;
    while (g) {
        struct ep_seg *n = g->next;
        free(g);
        g = n;
    }
    free(e->sbuf);
    free(e->bounds);
    free(e);
}

void sim_ep_set_log(struct sim_ep *e, struct sc_buf *log)
{
    e->log = log;
}

bool sim_ep_closed(const struct sim_ep *e)
{
    return e->state == EP_CLOSED;
}

static uint16_t ep_mss(const struct sim_ep *e)
{
    uint16_t m = e->o.mss;
    if (e->peer_mss && e->peer_mss < m)
        m = e->peer_mss;
    /* Leave room for the timestamp option, as Linux does. */
    if (e->peer_ts && e->o.ts && m > 12)
        m = (uint16_t)(m - 12);
    return m ? m : 536;
}

static uint32_t ep_tsval(const struct sim *s, const struct sim_ep *e)
{
    return e->o.ts_base + (uint32_t)((s->epoch + s->now) / 1000000);
}

/* Emits one segment. */
static void ep_emit(struct sim *s, struct sim_ep *e, uint8_t flags, uint32_t seq,
                    const uint8_t *data, size_t len)
{
    struct sim_pkt *p = sim_pkt_new(len);
    if (len)
        memcpy(p->data, data, len);
    p->ip.src = e->o.addr;
    p->ip.dst = e->o.peer_addr;
    p->ip.ttl = e->o.ttl;
    p->ip.ipid = e->ipid++;
    p->ip.df = true;
    p->tcp.sport = e->o.port;
    p->tcp.dport = e->o.peer_port;
    p->tcp.seq = seq;
    p->tcp.ack = (flags & CAP_TH_ACK) ? e->rcv_nxt : 0;
    p->tcp.flags = flags;
    bool syn = flags & CAP_TH_SYN;
    if (syn) {
        p->tcp.window = e->o.ws ? 64240 : 65535;
        p->tcp.mss_on = true;
        p->tcp.mss = e->o.mss;
        bool synack = flags & CAP_TH_ACK;
        p->tcp.sack_perm = e->o.sack && (!synack || e->peer_sack);
        p->tcp.ts_on = e->o.ts && (!synack || e->peer_ts);
        p->tcp.ws_on = e->o.ws && (!synack || e->peer_ws);
        p->tcp.ws = e->o.wscale;
    } else {
        unsigned shift = e->peer_ws && e->o.ws ? e->o.wscale : 0;
        p->tcp.window = (uint16_t)(shift ? 64256u >> shift : 64240u);
        if (p->tcp.window == 0)
            p->tcp.window = 1;
        p->tcp.ts_on = e->o.ts && e->peer_ts;
    }
    if (p->tcp.ts_on) {
        p->tcp.tsval = ep_tsval(s, e);
        p->tcp.tsecr = (flags & CAP_TH_ACK) ? e->ts_recent : 0;
    }
    if (flags & CAP_TH_ACK) {
        e->delack_gen++;
        e->delack_armed = false;
        e->unacked_rx = 0;
    }
    sim_send(s, e->link, e->end, p);
}

static void ep_rto_ev(struct sim *s, void *arg);

static void ep_arm_rto(struct sim *s, struct sim_ep *e)
{
    if (e->rto < e->o.rto_min)
        e->rto = e->o.rto_min;
    e->rto_gen++;
    e->rto_armed = true;
    struct ep_timer *t = malloc(sizeof(*t));
    if (!t)
        abort();
    t->e = e;
    t->gen = e->rto_gen;
    sim_at_owned(s, s->now + e->rto, ep_rto_ev, t, free);
}

static void ep_cancel_rto(struct sim_ep *e)
{
    e->rto_gen++;
    e->rto_armed = false;
}

static size_t ep_next_bound(const struct sim_ep *e, size_t from_abs)
{
    for (size_t i = 0; i < e->nbounds; i++)
        if (e->bounds[i] > from_abs)
            return e->bounds[i];
    return SIZE_MAX;
}

/* Sends what the window allows. */
static void ep_output(struct sim *s, struct sim_ep *e)
{
    if (e->state != EP_EST)
        return;
    uint16_t mss = ep_mss(e);
    for (;;) {
        size_t flight = (size_t)(e->snd_nxt - e->snd_una);
        if (e->fin_sent)
            break;
        if (flight >= e->slen || flight >= e->cwnd)
            break;
        size_t n = e->slen - flight;
        if (n > mss)
            n = mss;
        if (n > e->cwnd - flight)
            n = e->cwnd - flight;
        if (e->o.nodelay_each_byte) {
            size_t abs = e->sent_total + flight;
            size_t b = ep_next_bound(e, abs);
            if (b != SIZE_MAX && b - abs < n)
                n = b - abs;
        }
        uint8_t flags = CAP_TH_ACK | (flight + n == e->slen ? CAP_TH_PSH : 0);
        ep_emit(s, e, flags, e->snd_nxt, e->sbuf + e->soff + flight, n);
        if (e->log)
            sc_buf_append(e->log, e->sbuf + e->soff + flight, n);
        e->snd_nxt += (uint32_t)n;
        if (!e->rto_armed)
            ep_arm_rto(s, e);
    }
    if (e->fin_queued && !e->fin_sent && (size_t)(e->snd_nxt - e->snd_una) == e->slen) {
        ep_emit(s, e, CAP_TH_FIN | CAP_TH_ACK, e->snd_nxt, NULL, 0);
        e->snd_nxt++;
        e->fin_sent = true;
        if (!e->rto_armed)
            ep_arm_rto(s, e);
    }
}

static void ep_close_if_done(struct sim_ep *e)
{
    if (e->fin_sent && e->fin_acked && e->fin_rcvd)
        e->state = EP_CLOSED;
}

static void ep_rto_ev(struct sim *s, void *arg)
{
    struct ep_timer *t = arg;
    struct sim_ep *e = t->e;
    uint64_t gen = t->gen;
    free(t);
    if (gen != e->rto_gen || e->state == EP_CLOSED)
        return;
    e->rto_armed = false;
    if (e->state != EP_SYN_SENT && e->state != EP_SYN_RCVD && e->snd_una == e->snd_nxt)
        return;
    if (++e->retries > e->o.max_retries) {
        sim_ep_abort(s, e);
        if (e->cb->reset)
            e->cb->reset(s, e, e->app);
        return;
    }
    e->rto *= 2;
    e->cwnd = ep_mss(e);
    if (e->state == EP_SYN_SENT) {
        ep_emit(s, e, CAP_TH_SYN, e->o.iss, NULL, 0);
    } else if (e->state == EP_SYN_RCVD) {
        ep_emit(s, e, CAP_TH_SYN | CAP_TH_ACK, e->o.iss, NULL, 0);
    } else {
        size_t out = (size_t)(e->snd_nxt - e->snd_una);
        size_t data = out > e->slen ? e->slen : out;
        size_t n = data < ep_mss(e) ? data : ep_mss(e);
        if (n > 0)
            ep_emit(s, e, CAP_TH_ACK | CAP_TH_PSH, e->snd_una, e->sbuf + e->soff, n);
        else if (e->fin_sent)
            ep_emit(s, e, CAP_TH_FIN | CAP_TH_ACK, e->snd_una, NULL, 0);
    }
    ep_arm_rto(s, e);
}

static void ep_delack_ev(struct sim *s, void *arg)
{
    struct ep_timer *t = arg;
    struct sim_ep *e = t->e;
    uint64_t gen = t->gen;
    free(t);
    if (gen != e->delack_gen || e->state == EP_CLOSED)
        return;
    ep_emit(s, e, CAP_TH_ACK, e->snd_nxt, NULL, 0);
}

static void ep_ack_later(struct sim *s, struct sim_ep *e)
{
    if (++e->unacked_rx >= 2) { /* every second segment at once (RFC 1122) */
        ep_emit(s, e, CAP_TH_ACK, e->snd_nxt, NULL, 0);
        return;
    }
    if (e->delack_armed)
        return;
    e->delack_armed = true;
    struct ep_timer *t = malloc(sizeof(*t));
    if (!t)
        abort();
    t->e = e;
    t->gen = e->delack_gen;
    sim_at_owned(s, s->now + e->o.delack, ep_delack_ev, t, free);
}

void sim_ep_connect(struct sim *s, struct sim_ep *e)
{
    e->state = EP_SYN_SENT;
    e->snd_una = e->o.iss;
    e->snd_nxt = e->o.iss + 1;
    e->rto = 1000 * 1000000LL; /* RFC 6298 2.1: 1 s initial */
    ep_emit(s, e, CAP_TH_SYN, e->o.iss, NULL, 0);
    ep_arm_rto(s, e);
}

void sim_ep_write(struct sim *s, struct sim_ep *e, const uint8_t *p, size_t n)
{
    if (e->state == EP_CLOSED || e->fin_queued || n == 0)
        return;
    if (e->soff > 0 && e->soff >= e->slen) {
        e->sent_total += e->soff;
        e->soff = 0;
        e->slen = 0;
    }
    if (e->soff + e->slen + n > e->scap) {
        if (e->soff > 0) {
            memmove(e->sbuf, e->sbuf + e->soff, e->slen);
            e->sent_total += e->soff;
            e->soff = 0;
        }
        size_t want = e->scap ? e->scap : 4096;
        while (want < e->slen + n)
            want *= 2;
        e->sbuf = realloc(e->sbuf, want);
        if (!e->sbuf)
            abort();
        e->scap = want;
    }
    memcpy(e->sbuf + e->soff + e->slen, p, n);
    e->slen += n;
    if (e->o.nodelay_each_byte) {
        if (e->nbounds == e->cbounds) {
            e->cbounds = e->cbounds ? e->cbounds * 2 : 64;
            e->bounds = realloc(e->bounds, e->cbounds * sizeof(*e->bounds));
            if (!e->bounds)
                abort();
        }
        e->bounds[e->nbounds++] = e->sent_total + e->soff + e->slen;
    }
    ep_output(s, e);
}

void sim_ep_close(struct sim *s, struct sim_ep *e)
{
    if (e->state == EP_CLOSED || e->fin_queued)
        return;
    e->fin_queued = true;
    ep_output(s, e);
}

void sim_ep_abort(struct sim *s, struct sim_ep *e)
{
    if (e->state == EP_CLOSED)
        return;
    if (e->state == EP_EST || e->state == EP_SYN_RCVD)
        ep_emit(s, e, CAP_TH_RST | CAP_TH_ACK, e->snd_nxt, NULL, 0);
    e->state = EP_CLOSED;
    ep_cancel_rto(e);
    e->delack_gen++;
}

static void ep_take_opts(struct sim_ep *e, const struct sim_pkt *p)
{
    e->peer_mss = p->tcp.mss_on ? p->tcp.mss : 536;
    e->peer_sack = p->tcp.sack_perm;
    e->peer_ts = p->tcp.ts_on;
    e->peer_ws = p->tcp.ws_on;
    e->peer_wscale = p->tcp.ws;
}

/* Acknowledgement of our data. */
static void ep_process_ack(struct sim *s, struct sim_ep *e, uint32_t ack)
{
    int32_t adv = (int32_t)(ack - e->snd_una);
    int32_t max = (int32_t)(e->snd_nxt - e->snd_una);
    if (adv <= 0 || adv > max)
        return;
    size_t bytes = (size_t)adv;
    if (e->fin_sent && ack == e->snd_nxt) {
        e->fin_acked = true;
        bytes--;
    }
    if (bytes > e->slen)
        bytes = e->slen;
    e->soff += bytes;
    e->slen -= bytes;
    if (e->nbounds) {
        /* Forget boundaries already acknowledged. */
        size_t k = 0;
        while (k < e->nbounds && e->bounds[k] <= e->sent_total + e->soff)
            k++;
        memmove(e->bounds, e->bounds + k, (e->nbounds - k) * sizeof(*e->bounds));
        e->nbounds -= k;
    }
    e->snd_una = ack;
    e->retries = 0;
    e->rto = e->o.rto_min;
    uint16_t mss = ep_mss(e);
    if (e->cwnd < 256u * mss)
        e->cwnd += mss;
    if (e->snd_una == e->snd_nxt)
        ep_cancel_rto(e);
    else
        ep_arm_rto(s, e);
    ep_close_if_done(e);
}

static void ep_deliver(struct sim *s, struct sim_ep *e, const uint8_t *p, size_t n, bool fin)
{
    if (n) {
        e->rcv_nxt += (uint32_t)n;
        if (e->cb->data)
            e->cb->data(s, e, e->app, p, n);
    }
    if (fin && !e->fin_rcvd) {
        e->rcv_nxt++;
        e->fin_rcvd = true;
        if (e->cb->fin)
            e->cb->fin(s, e, e->app);
    }
}

static void ep_hold(struct sim_ep *e, uint32_t seq, const uint8_t *p, size_t n, bool fin)
{
    struct ep_seg **pp = &e->ooo;
    while (*pp && (int32_t)((*pp)->seq - seq) < 0)
        pp = &(*pp)->next;
    if (*pp && (*pp)->seq == seq)
        return; /* already held */
    struct ep_seg *g = malloc(sizeof(*g) + n);
    if (!g)
        abort();
    g->seq = seq;
    g->len = n;
    g->fin = fin;
    memcpy(g->data, p, n);
    g->next = *pp;
    *pp = g;
}

static void ep_drain(struct sim *s, struct sim_ep *e)
{
    while (e->ooo && (int32_t)(e->ooo->seq - e->rcv_nxt) <= 0 && e->state != EP_CLOSED) {
        struct ep_seg *g = e->ooo;
        e->ooo = g->next;
        uint32_t skip = e->rcv_nxt - g->seq;
        if (skip <= g->len)
            ep_deliver(s, e, g->data + skip, g->len - skip, g->fin);
        free(g);
    }
}

static void ep_recv(struct sim *s, struct sim_node *n, struct sim_link *from, struct sim_pkt *p)
{
    (void)from;
    struct sim_ep *e = (struct sim_ep *)n;
    uint8_t fl = p->tcp.flags;
    if (p->tcp.ts_on)
        e->ts_recent = p->tcp.tsval;
    if (fl & CAP_TH_RST) {
        if (e->state != EP_CLOSED && e->state != EP_LISTEN) {
            e->state = EP_CLOSED;
            ep_cancel_rto(e);
            if (e->cb->reset)
                e->cb->reset(s, e, e->app);
        }
        sim_pkt_free(p);
        return;
    }
    switch (e->state) {
    case EP_CLOSED:
        if (p->len || (fl & (CAP_TH_FIN | CAP_TH_SYN))) {
            /* RFC 9293 3.10.7.1: a segment for a closed connection gets a RST. */
            struct sim_pkt *r = sim_pkt_new(0);
            r->ip.src = e->o.addr;
            r->ip.dst = e->o.peer_addr;
            r->ip.ttl = e->o.ttl;
            r->ip.ipid = e->ipid++;
            r->tcp.sport = e->o.port;
            r->tcp.dport = e->o.peer_port;
            r->tcp.seq = (fl & CAP_TH_ACK) ? p->tcp.ack : 0;
            r->tcp.flags = CAP_TH_RST;
            sim_send(s, e->link, e->end, r);
        }
        sim_pkt_free(p);
        return;
    case EP_IDLE:
        sim_pkt_free(p);
        return;
    case EP_LISTEN:
        if ((fl & CAP_TH_SYN) && !(fl & CAP_TH_ACK)) {
            e->rcv_nxt = p->tcp.seq + 1;
            ep_take_opts(e, p);
            e->state = EP_SYN_RCVD;
            e->snd_una = e->o.iss;
            e->snd_nxt = e->o.iss + 1;
            e->rto = 1000 * 1000000LL;
            ep_emit(s, e, CAP_TH_SYN | CAP_TH_ACK, e->o.iss, NULL, 0);
            ep_arm_rto(s, e);
        }
        sim_pkt_free(p);
        return;
    case EP_SYN_SENT:
        if ((fl & CAP_TH_SYN) && (fl & CAP_TH_ACK) && p->tcp.ack == e->o.iss + 1) {
            e->rcv_nxt = p->tcp.seq + 1;
            ep_take_opts(e, p);
            e->snd_una = e->o.iss + 1;
            e->state = EP_EST;
            e->cwnd = e->o.init_cwnd * ep_mss(e);
            e->retries = 0;
            e->rto = e->o.rto_min;
            ep_cancel_rto(e);
            ep_emit(s, e, CAP_TH_ACK, e->snd_nxt, NULL, 0);
            if (e->cb->connected)
                e->cb->connected(s, e, e->app);
            ep_output(s, e);
        }
        sim_pkt_free(p);
        return;
    case EP_SYN_RCVD:
        if (fl & CAP_TH_SYN) { /* our SYN-ACK was lost: answer the retransmitted SYN */
            ep_emit(s, e, CAP_TH_SYN | CAP_TH_ACK, e->o.iss, NULL, 0);
            sim_pkt_free(p);
            return;
        }
        if (!(fl & CAP_TH_ACK) || p->tcp.ack != e->o.iss + 1) {
            sim_pkt_free(p);
            return;
        }
        e->snd_una = e->o.iss + 1;
        e->state = EP_EST;
        e->cwnd = e->o.init_cwnd * ep_mss(e);
        e->retries = 0;
        e->rto = e->o.rto_min;
        ep_cancel_rto(e);
        if (e->cb->connected)
            e->cb->connected(s, e, e->app);
        break;
    case EP_EST:
        if (fl & CAP_TH_SYN) { /* a retransmitted SYN-ACK: our ACK was lost */
            ep_emit(s, e, CAP_TH_ACK, e->snd_nxt, NULL, 0);
            sim_pkt_free(p);
            return;
        }
        break;
    }
    if (fl & CAP_TH_ACK)
        ep_process_ack(s, e, p->tcp.ack);
    bool fin = fl & CAP_TH_FIN;
    if (p->len > 0 || fin) {
        uint32_t seq = p->tcp.seq;
        int32_t rel = (int32_t)(seq - e->rcv_nxt);
        if (rel == 0) {
            ep_deliver(s, e, p->data, p->len, fin);
            ep_drain(s, e);
            if (fin || e->ooo)
                ep_emit(s, e, CAP_TH_ACK, e->snd_nxt, NULL, 0);
            else if (e->state != EP_CLOSED)
                ep_ack_later(s, e);
        } else if (rel > 0) {
            ep_hold(e, seq, p->data, p->len, fin);
            ep_emit(s, e, CAP_TH_ACK, e->snd_nxt, NULL, 0); /* duplicate ACK */
        } else {
            size_t old = (size_t)-rel;
            if (old < p->len) {
                ep_deliver(s, e, p->data + old, p->len - old, fin);
                ep_drain(s, e);
            }
            ep_emit(s, e, CAP_TH_ACK, e->snd_nxt, NULL, 0);
        }
        ep_close_if_done(e);
    }
    if (e->state == EP_EST)
        ep_output(s, e);
    sim_pkt_free(p);
}
