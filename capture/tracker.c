/* tracker.c - flow table, roles, reassembly driving, close and timeouts. */
#include "capture/tracker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#if defined(__SANITIZE_ADDRESS__)
#define CAP_HEAP_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CAP_HEAP_SANITIZER 1
#endif
#endif
#if defined(CAP_HEAP_SANITIZER)
/* The sanitizer runtime's count of allocated bytes (gcc ships no
 * <sanitizer/allocator_interface.h>; every ASan runtime exports it). */
size_t __sanitizer_get_current_allocated_bytes(void);
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define CAP_HEAP_MALLINFO2 1
#endif

#include "common/ascii.h"
#include "common/buf.h"
#include "common/escape.h"

enum cap__state {
    FS_PENDING = 0, /* roles not known yet; nothing delivered */
    FS_ACTIVE,      /* the consumer follows it */
    FS_IGNORED,     /* the consumer declined it; packets are only counted */
    FS_CLOSED,      /* tombstone */
};

/* Packets between two checks of the heap against mem_max: at least
 * CAP_MEM_CHECK_EVERY, and at least the flow count / CAP_MEM_CHECK_SHARE.  A
 * check walks malloc's free lists (glibc's mallinfo2), which grow with the
 * flows evicted and reallocated, so its cost per packet stays flat; each
 * packet adds at most one flow, so between checks the heap grows by at most
 * about an eighth of what the table holds. */
#define CAP_MEM_CHECK_EVERY 1024
#define CAP_MEM_CHECK_SHARE 8
/* While the heap is under half of mem_max, checks come this many packets
 * apart instead (the check then costs ~0.1% of the run). */
#define CAP_MEM_CHECK_FAR 8192
/* Over the cap, flows are evicted until the heap should be back under
 * mem_max - mem_max / CAP_MEM_SLACK, so checks do not evict every time. */
#define CAP_MEM_SLACK 16
/* Buckets of the flow table at the start.  The table doubles whenever the
 * flows outnumber its buckets, up to max_flows rounded up to a power of two:
 * a bucket array sized for the cap from the start is touched page by page
 * as flows come and go, so resident memory would creep up with the
 * capture's length instead of following the flows open at once. */
#define CAP_BUCKETS_MIN 1024
/* Least recently active flows looked through for ones without payload (a
 * SYN flood's) before real sessions are evicted instead: this many, or twice
 * the number to evict if more. */
#define CAP_MEM_SCAN 4096

/* What only a flow being followed (or about to be) needs: per-side
 * counters and the two streams, most of a flow's size.  Tombstones and
 * flows the consumer declined carry none (cap__flow.b is NULL), so the
 * table's many closed and foreign connections cost a small head each. */
struct cap__tcp {
    struct cap_side ep[2]; /* by endpoint index */
    struct cap_stream st[2];
};

struct cap__flow {
    struct cap__flow *hnext;
    struct cap__flow *prev, *next; /* live or dead list */
    uint64_t hash;
    sc_time touched; /* capture time of the last packet (monotonic) */
    struct cap_addr addr[2];
    uint16_t port[2];
    uint16_t vlan[CAP_MAX_VLAN_TAGS]; /* nvlan of them */
    uint16_t syn_window;              /* see stashed */
    uint8_t state;
    int8_t client; /* endpoint index of the client, -1 while unknown */
    /* Where each endpoint's stream stood when the body was freed (flows
     * declined or dropped), for cap__syn_starts_new: base_seq, and in
     * base_flags bit 2e set if it had a base, bit 2e+1 if nothing had been
     * delivered on it yet. */
    uint32_t base_seq[2];
    uint32_t isn[2];
    uint32_t syn_ipid;           /* see stashed */
    struct cap_tcpopts syn_opts; /* see stashed */
    uint8_t base_flags;
    bool guessed;
    bool syn[2];
    bool had_payload; /* a packet of either side carried payload */
    /* A connection seen only as its opening SYN so far (a SYN flood is made
     * of them) keeps no body: what the SYN showed waits in the syn_ fields,
     * and cap__wake builds the body from it, and opens the flow, when
     * anything else happens to it. */
    bool stashed;
    uint8_t syn_ttl, syn_ipver;
    uint8_t nvlan;
    bool rst_seen;
    bool fin_dir[2];    /* by endpoint: FIN delivered in order */
    bool evicted;       /* being closed by an eviction */
    struct cap__tcp *b; /* NULL for tombstones and declined flows */
    void *app;
    uint64_t seq_no;
    uint64_t first_frame, last_frame;
    uint64_t created_frame, touched_frame; /* frames being processed then */
    sc_time first_ts, last_ts;
    uint64_t ctx; /* observation context: part of the key */
};

struct cap__list {
    struct cap__flow head; /* sentinel: head.next is the oldest */
};

struct cap_tracker {
    struct cap_settings set;
    struct cap_stream_limits lim;
    struct cap_tracker_cb cb;
    void *user;
    struct cap__flow **buckets;
    size_t mask;
    size_t buckets_max; /* the table grows up to this many buckets */
    size_t nflows;
    struct cap__list live;
    struct cap__list dead;
    struct cap__list gone; /* tombstones of sessions evicted under mem_max */
    uint64_t seed;
    uint64_t next_seq_no;
    /* Capture time: the highest of min(each packet's time, the previous
     * packet's), so one packet stamped far in the future (a corrupt or
     * misordered record) does not expire every open flow; a real jump takes
     * effect one packet later. */
    sc_time now;
    sc_time prev_ts;    /* the previous packet's time */
    sc_time max_ts;     /* the highest packet time seen (ts_backwards) */
    sc_time max_before; /* max_ts before the last packet's time was taken */
    struct sc_meta last;
    size_t pool_used;
    struct cap_defrag *defrag;
    struct cap_tracker_stats stats;
    bool (*mine)(void *user, const struct cap_packet *pkt); /* NULL: every segment */
    void *mine_user;
    /* No flow expires while now <= due: a lower bound on the earliest
     * deadline (touched + idle_timeout or closed_linger) of the lists'
     * oldest flows, set by each expiry run and lowered as flows are added,
     * so most packets skip the run. */
    sc_time due;
    uint32_t mem_tick; /* packets since the last heap check */
    uint32_t mem_wait; /* packets from one check to the next */
};

/* Context handed to the stream callbacks of one direction. */
struct cap__sctx {
    struct cap_tracker *t;
    struct cap__flow *f;
    int ep;
};

static const char *const cap__close_names[CAP_CLOSE__COUNT] = {
    "fin", "rst", "timeout", "eof", "dropped",
};

const char *cap_close_name(enum cap_close c)
{
    return (unsigned)c < CAP_CLOSE__COUNT ? cap__close_names[c] : "unknown";
}

void cap_settings_defaults(struct cap_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->max_flows = 262144;
    s->mem_max = (size_t)1024 << 20;
    s->ooo_max = 1u << 20;
    s->pool_max = 256u << 20;
    s->history = 2048;
    s->evidence_max = 64;
    s->idle_timeout = 600 * SC_NS_PER_SEC;
    s->closed_linger = 120 * SC_NS_PER_SEC;
    cap_decode_opts_defaults(&s->decode);
    cap_defrag_limits_defaults(&s->defrag);
    cap_port_set(s, 25, true);
    cap_port_set(s, 587, true);
}

/* ---- lists and hashing ---- */

static void cap__list_init(struct cap__list *l)
{
    l->head.next = l->head.prev = &l->head;
}

static void cap__unlink(struct cap__flow *f)
{
    if (f->next) {
        f->prev->next = f->next;
        f->next->prev = f->prev;
        f->next = f->prev = NULL;
    }
}

static void cap__append(struct cap__list *l, struct cap__flow *f)
{
    f->prev = l->head.prev;
    f->next = &l->head;
    l->head.prev->next = f;
    l->head.prev = f;
}

static struct cap__flow *cap__oldest(struct cap__list *l)
{
    return l->head.next == &l->head ? NULL : l->head.next;
}

static uint64_t cap__mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static uint64_t cap__hash(const struct cap_tracker *t, const struct cap_addr a[2],
                          const uint16_t port[2], uint64_t ctx)
{
    uint64_t h = cap__mix(t->seed, ctx);
    for (int e = 0; e < 2; e++) {
        uint64_t w0, w1;
        memcpy(&w0, a[e].b, 8);
        memcpy(&w1, a[e].b + 8, 8);
        h = cap__mix(h, w0);
        h = cap__mix(h, w1);
    }
    h = cap__mix(h, (uint64_t)port[0] << 16 | port[1]);
    return h;
}

/* ---- settings / lifecycle ---- */

struct cap_tracker *cap_tracker_new(const struct cap_settings *s, const struct cap_tracker_cb *cb,
                                    void *user)
{
    struct cap_tracker *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->set = *s;
    if (t->set.max_flows == 0)
        t->set.max_flows = 1;
    t->cb = *cb;
    t->user = user;
    t->lim.ooo_max = s->ooo_max;
    t->lim.pool_max = s->pool_max;
    t->lim.history = s->history;
    t->lim.evidence_max = s->evidence_max;
    t->buckets_max = CAP_BUCKETS_MIN;
    while (t->buckets_max < t->set.max_flows && t->buckets_max < ((size_t)1 << 30))
        t->buckets_max <<= 1;
    size_t nb = CAP_BUCKETS_MIN;
    t->buckets = calloc(nb, sizeof(*t->buckets));
    t->defrag = cap_defrag_new(&s->defrag, &s->decode);
    if (!t->buckets || !t->defrag) {
        free(t->buckets);
        cap_defrag_free(t->defrag);
        free(t);
        return NULL;
    }
    t->mask = nb - 1;
    cap__list_init(&t->live);
    cap__list_init(&t->dead);
    cap__list_init(&t->gone);
    if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t)sizeof(t->seed))
        t->seed = (uint64_t)(uintptr_t)t ^ 0x2545f4914f6cdd1dull;
    t->now = INT64_MIN;
    t->due = INT64_MIN;
    t->prev_ts = INT64_MIN;
    t->max_ts = INT64_MIN;
    t->mem_wait = CAP_MEM_CHECK_EVERY;
    t->max_before = INT64_MIN;
    return t;
}

const struct cap_tracker_stats *cap_tracker_stats(const struct cap_tracker *t)
{
    return &t->stats;
}

size_t cap_tracker_flow_count(const struct cap_tracker *t)
{
    return t->nflows;
}

size_t cap_tracker_pool_used(const struct cap_tracker *t)
{
    return t->pool_used;
}

/* ---- flow helpers ---- */

static enum sc_dir cap__dir(const struct cap__flow *f, int ep)
{
    return ep == f->client ? SC_DIR_C2S : SC_DIR_S2C;
}

static void cap__info(const struct cap__flow *f, struct cap_flow_info *fi)
{
    memset(fi, 0, sizeof(*fi));
    int c = f->client < 0 ? 0 : f->client;
    fi->side[SC_DIR_C2S] = f->b->ep[c];
    fi->side[SC_DIR_S2C] = f->b->ep[1 - c];
    fi->side[SC_DIR_C2S].stream = &f->b->st[c];
    fi->side[SC_DIR_S2C].stream = &f->b->st[1 - c];
    fi->handshake = f->syn[0] || f->syn[1]; /* a SYN or SYN-ACK fixes both stream starts */
    fi->roles_guessed = f->guessed;
    fi->first_frame = f->first_frame;
    fi->last_frame = f->last_frame;
    fi->first_ts = f->first_ts;
    fi->last_ts = f->last_ts;
    fi->nvlan = f->nvlan;
    memcpy(fi->vlan, f->vlan, sizeof(fi->vlan));
    fi->ctx = f->ctx;
    fi->seq_no = f->seq_no;
    fi->created_frame = f->created_frame;
    fi->touched_frame = f->touched_frame;
    fi->rst_seen = f->rst_seen;
    fi->evicted = f->evicted;
    fi->fin_seen[SC_DIR_C2S] = f->fin_dir[c];
    fi->fin_seen[SC_DIR_S2C] = f->fin_dir[1 - c];
}

static void cap__event(struct cap_tracker *t, struct cap__flow *f, const char *kind,
                       enum sc_dir dir, const struct sc_meta *m, const char *detail)
{
    if (f->state == FS_ACTIVE && t->cb.event)
        t->cb.event(t->user, f->app, kind, dir, m, detail);
}

/* Frees a flow's body (held segments, history, counters), first noting
 * where its streams stood for cap__syn_starts_new. */
static void cap__body_free(struct cap_tracker *t, struct cap__flow *f)
{
    struct cap__tcp *b = f->b;
    if (!b)
        return;
    f->base_flags = 0;
    for (int e = 0; e < 2; e++) {
        f->base_seq[e] = b->st[e].next_seq;
        if (b->st[e].init)
            f->base_flags |= (uint8_t)(1u << (2 * e));
        if (b->st[e].next_off == 0)
            f->base_flags |= (uint8_t)(2u << (2 * e));
        cap_stream_free(&b->st[e], &t->pool_used);
    }
    free(b);
    f->b = NULL;
}

static void cap__wake(struct cap_tracker *t, struct cap__flow *f);

/* Removes a flow from the table entirely (no callbacks). */
static void cap__remove(struct cap_tracker *t, struct cap__flow *f)
{
    struct cap__flow **pp = &t->buckets[f->hash & t->mask];
    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = f->hnext;
    cap__unlink(f);
    cap__body_free(t, f);
    free(f);
    t->nflows--;
}

/* ---- stream callbacks ---- */

static int cap__s_data(void *u, uint64_t off, const uint8_t *p, size_t n, const struct sc_meta *m)
{
    struct cap__sctx *c = u;
    if (c->f->state != FS_ACTIVE || !c->t->cb.data)
        return 0;
    return c->t->cb.data(c->t->user, c->f->app, cap__dir(c->f, c->ep), off, p, n, m);
}

static int cap__s_gap(void *u, uint64_t off, uint64_t len, enum cap_gap_reason why,
                      const struct sc_meta *m)
{
    struct cap__sctx *c = u;
    if (c->f->state != FS_ACTIVE || !c->t->cb.gap)
        return 0;
    return c->t->cb.gap(c->t->user, c->f->app, cap__dir(c->f, c->ep), off, len, why, m);
}

static int cap__s_overlap(void *u, uint64_t off, const uint8_t *old_p, size_t old_n,
                          const uint8_t *new_p, size_t new_n, const struct sc_meta *m)
{
    struct cap__sctx *c = u;
    struct sc_buf b;
    sc_buf_init(&b, 0);
    sc_buf_printf(&b, "stream offset %llu: first \"", (unsigned long long)off);
    sc_escape(&b, old_p, old_n);
    sc_buf_puts(&b, "\", then \"");
    sc_escape(&b, new_p, new_n);
    sc_buf_puts(&b, "\"");
    cap__event(c->t, c->f, "overlap_mismatch", cap__dir(c->f, c->ep), m, sc_buf_str(&b));
    sc_buf_free(&b);
    return 0;
}

static int cap__s_fin(void *u, uint64_t off, const struct sc_meta *m)
{
    struct cap__sctx *c = u;
    (void)off;
    c->f->fin_dir[c->ep] = true;
    if (c->f->state == FS_ACTIVE && c->t->cb.fin)
        c->t->cb.fin(c->t->user, c->f->app, cap__dir(c->f, c->ep), m);
    return 0;
}

static const struct cap_stream_cb cap__scb = {
    .data = cap__s_data,
    .gap = cap__s_gap,
    .overlap = cap__s_overlap,
    .fin = cap__s_fin,
};

/* ---- closing ---- */

static void cap__drop(struct cap_tracker *t, struct cap__flow *f, const struct sc_meta *m)
{
    if (f->state == FS_ACTIVE && t->cb.close) {
        struct cap_flow_info fi;
        cap__info(f, &fi);
        f->state = FS_IGNORED;
        t->cb.close(t->user, f->app, &fi, CAP_CLOSE_DROPPED, m);
    }
    f->state = FS_IGNORED;
    f->app = NULL;
    cap__body_free(t, f);
}

/* A flow touched at `then` expires once now > then + span: keeps `due` a
 * lower bound on that (saturating: a deadline past the clock's range never
 * comes). */
static void cap__due_before(struct cap_tracker *t, sc_time then, sc_time span)
{
    sc_time d;
    if (__builtin_add_overflow(then, span, &d))
        d = INT64_MAX;
    if (d < t->due)
        t->due = d;
}

/* Ends a connection: flushes both directions, tells the consumer, and turns
 * the flow into a tombstone (or frees it when `keep` is false). */
static void cap__close(struct cap_tracker *t, struct cap__flow *f, enum cap_close why,
                       const struct sc_meta *m, bool keep)
{
    cap__wake(t, f);
    if (f->state == FS_ACTIVE) {
        for (int e = 0; e < 2 && f->state == FS_ACTIVE; e++) {
            /* The client's stream first, so requests precede their replies. */
            int ep = e == 0 ? f->client : 1 - f->client;
            struct cap__sctx c = {t, f, ep};
            if (f->b->st[ep].init && cap_stream_flush(&f->b->st[ep], &t->lim, &t->pool_used,
                                                      CAP_GAP_END, m, &cap__scb, &c))
                cap__drop(t, f, m);
        }
    }
    if (f->state == FS_ACTIVE) {
        struct cap_flow_info fi;
        cap__info(f, &fi);
        if (t->cb.close)
            t->cb.close(t->user, f->app, &fi, why, m);
        f->app = NULL;
    }
    if (!keep) {
        cap__remove(t, f);
        return;
    }
    cap__body_free(t, f);
    f->state = FS_CLOSED;
    f->touched = t->now;
    cap__unlink(f);
    cap__append(&t->dead, f);
    cap__due_before(t, t->now, t->set.closed_linger);
}

/* True when `then` lies more than `span` before `now`, without overflowing. */
static bool cap__older(sc_time then, sc_time now, sc_time span)
{
    return now > INT64_MIN + span && then < now - span;
}

static void cap__frag_expired(struct cap_tracker *t);

static void cap__expire(struct cap_tracker *t)
{
    if (t->now <= t->due && cap_defrag_idle(t->defrag))
        return; /* nothing is old enough yet */
    cap__frag_expired(t);
    struct cap__flow *f;
    while ((f = cap__oldest(&t->dead)) && cap__older(f->touched, t->now, t->set.closed_linger))
        cap__remove(t, f);
    while ((f = cap__oldest(&t->gone)) && cap__older(f->touched, t->now, t->set.closed_linger))
        cap__remove(t, f);
    while ((f = cap__oldest(&t->live)) && cap__older(f->touched, t->now, t->set.idle_timeout)) {
        struct sc_meta m = {f->last_frame, f->last_ts};
        cap__close(t, f, CAP_CLOSE_TIMEOUT, &m, false);
    }
    t->due = INT64_MAX;
    if ((f = cap__oldest(&t->dead)))
        cap__due_before(t, f->touched, t->set.closed_linger);
    if ((f = cap__oldest(&t->gone)))
        cap__due_before(t, f->touched, t->set.closed_linger);
    if ((f = cap__oldest(&t->live)))
        cap__due_before(t, f->touched, t->set.idle_timeout);
}

/* Frees one slot: the oldest tombstone, else the least recently active flow. */
static bool cap__evict(struct cap_tracker *t)
{
    struct cap__flow *f = cap__oldest(&t->dead);
    if (!f)
        f = cap__oldest(&t->gone);
    if (f) {
        cap__remove(t, f);
        return true;
    }
    f = cap__oldest(&t->live);
    if (!f)
        return false;
    cap__wake(t, f);
    t->stats.evicted++;
    struct sc_meta m = {f->last_frame, f->last_ts};
    cap__event(t, f, "flow_evicted", SC_DIR_NONE, &m, "the flow table was full");
    f->evicted = true;
    cap__close(t, f, CAP_CLOSE_TIMEOUT, &m, false);
    return true;
}

/* Heap bytes the process holds, or 0 where that cannot be known. */
static size_t cap__heap_used(void)
{
#if defined(CAP_HEAP_SANITIZER)
    return __sanitizer_get_current_allocated_bytes();
#elif defined(CAP_HEAP_MALLINFO2)
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#else
    return 0;
#endif
}

/* What cap__mem_check evicts, in this order. */
enum cap__mem_phase {
    CAP_MEM_DEAD,  /* tombstones of closed connections */
    CAP_MEM_EMPTY, /* connections that carried no payload yet (half-open floods) */
    CAP_MEM_LIVE,  /* the least recently active connections */
    CAP_MEM_GONE,  /* tombstones of connections evicted under mem_max */
    CAP_MEM__COUNT
};

/* Evicts f under mem_max: a tombstone or a flow without payload goes; a
 * flow with a session is closed and kept as a tombstone on the `gone` list,
 * so its later packets are absorbed instead of opening a new mid-stream
 * session that would be evicted in turn. */
static void cap__mem_evict(struct cap_tracker *t, struct cap__flow *f, enum cap__mem_phase ph)
{
    t->stats.mem_evicted++;
    if (ph == CAP_MEM_DEAD || ph == CAP_MEM_GONE) {
        cap__remove(t, f);
        return;
    }
    cap__wake(t, f);
    t->stats.evicted++;
    struct sc_meta m = {f->last_frame, f->last_ts};
    cap__event(t, f, "flow_evicted", SC_DIR_NONE, &m,
               "the memory cap (limits.memory_mb) was reached");
    bool keep = ph == CAP_MEM_LIVE && f->app != NULL;
    f->evicted = true;
    cap__close(t, f, CAP_CLOSE_TIMEOUT, &m, keep);
    if (keep) {
        cap__unlink(f);
        cap__append(&t->gone, f);
    }
}

/* Keeps the heap under mem_max (see cap_settings).  One measurement per
 * check: the flows to evict are estimated from the heap's average per flow,
 * enough to come back to (1 - 1/CAP_MEM_SLACK) of the cap; an estimate that
 * falls short is made up at the next check.  Evicts in the order of enum
 * cap__mem_phase; connections without payload are looked for among the
 * least recently active only (CAP_MEM_SCAN, or twice the number to evict). */
static void cap__mem_check(struct cap_tracker *t)
{
    t->mem_tick = 0;
    t->mem_wait = CAP_MEM_CHECK_EVERY;
    size_t used;
    if (t->set.mem_max == 0 || t->nflows == 0)
        return;
    used = cap__heap_used();
    if (used < t->set.mem_max / 2)
        t->mem_wait = CAP_MEM_CHECK_FAR;
    if (used <= t->set.mem_max)
        return;
    size_t per = used / t->nflows + 1;
    size_t want = (used - t->set.mem_max + t->set.mem_max / CAP_MEM_SLACK) / per + 1;
    struct cap__flow *f, *next;
    while (want > 0 && (f = cap__oldest(&t->dead))) {
        cap__mem_evict(t, f, CAP_MEM_DEAD);
        want--;
    }
    /* At least twice as many as are to go, so that small flows (a flood's
     * SYNs are ~250 bytes) are all looked through before a session is. */
    size_t n = 0, scan = want * 2 > CAP_MEM_SCAN ? want * 2 : CAP_MEM_SCAN;
    for (f = t->live.head.next; want > 0 && f != &t->live.head && n < scan; f = next, n++) {
        next = f->next;
        if (!f->had_payload) {
            cap__mem_evict(t, f, CAP_MEM_EMPTY);
            want--;
        }
    }
    while (want > 0 && (f = cap__oldest(&t->live))) {
        cap__mem_evict(t, f, CAP_MEM_LIVE);
        want--;
    }
    while (want > 0 && (f = cap__oldest(&t->gone))) {
        cap__mem_evict(t, f, CAP_MEM_GONE);
        want--;
    }
}

/* ---- packets ---- */

static struct cap__flow *cap__lookup(struct cap_tracker *t, const struct cap_addr a[2],
                                     const uint16_t port[2], uint64_t ctx, uint64_t h)
{
    for (struct cap__flow *f = t->buckets[h & t->mask]; f; f = f->hnext)
        if (f->hash == h && f->port[0] == port[0] && f->port[1] == port[1] && f->ctx == ctx &&
            memcmp(f->addr, a, sizeof(f->addr)) == 0)
            return f;
    return NULL;
}

/* Starts (or restarts) a flow at pkt, with an empty body unless `bare`. */
static void cap__flow_start(struct cap_tracker *t, struct cap__flow *f,
                            const struct cap_packet *pkt, bool bare)
{
    cap__body_free(t, f);
    struct cap__flow *hn = f->hnext;
    uint64_t h = f->hash, ctx = f->ctx;
    struct cap_addr a[2] = {f->addr[0], f->addr[1]};
    uint16_t port[2] = {f->port[0], f->port[1]};
    memset(f, 0, sizeof(*f));
    f->hnext = hn;
    f->hash = h;
    f->ctx = ctx;
    memcpy(f->addr, a, sizeof(a));
    memcpy(f->port, port, sizeof(port));
    f->client = -1;
    f->state = FS_PENDING;
    /* (A flow restarts only as a tombstone, which has no body.) */
    f->b = bare ? NULL : calloc(1, sizeof(*f->b));
    if (f->b) {
        for (int e = 0; e < 2; e++) {
            f->b->ep[e].addr = a[e];
            f->b->ep[e].port = port[e];
            cap_stream_init(&f->b->st[e]);
        }
    } else if (!bare) {
        f->state = FS_IGNORED; /* no memory to follow it: only counted */
        t->stats.table_full++;
    }
    f->seq_no = ++t->next_seq_no;
    f->created_frame = t->last.frame;
    f->first_frame = pkt->frame;
    f->first_ts = pkt->ts;
    f->nvlan = pkt->nvlan;
    memcpy(f->vlan, pkt->vlan, sizeof(f->vlan));
    t->stats.flows++;
    cap__append(&t->live, f);
}

/* Doubles the bucket array; on OOM the chains just get longer. */
static void cap__grow(struct cap_tracker *t)
{
    size_t nb = (t->mask + 1) * 2;
    struct cap__flow **v = calloc(nb, sizeof(*v));
    if (!v)
        return;
    for (size_t i = 0; i <= t->mask; i++) {
        for (struct cap__flow *f = t->buckets[i], *next; f; f = next) {
            next = f->hnext;
            f->hnext = v[f->hash & (nb - 1)];
            v[f->hash & (nb - 1)] = f;
        }
    }
    free(t->buckets);
    t->buckets = v;
    t->mask = nb - 1;
}

static struct cap__flow *cap__flow_new(struct cap_tracker *t, const struct cap_addr a[2],
                                       const uint16_t port[2], uint64_t h,
                                       const struct cap_packet *pkt, bool bare)
{
    if (t->nflows >= t->set.max_flows && !cap__evict(t)) {
        t->stats.table_full++;
        return NULL;
    }
    struct cap__flow *f = calloc(1, sizeof(*f));
    if (!f) {
        t->stats.table_full++;
        return NULL;
    }
    f->hash = h;
    f->ctx = pkt->ctx;
    memcpy(f->addr, a, sizeof(f->addr));
    memcpy(f->port, port, sizeof(f->port));
    if (t->nflows >= t->mask + 1 && t->mask + 1 < t->buckets_max)
        cap__grow(t);
    f->hnext = t->buckets[h & t->mask];
    t->buckets[h & t->mask] = f;
    t->nflows++;
    cap__flow_start(t, f, pkt, bare);
    return f;
}

/* Guesses whether a payload's sender is the SMTP-style server (1), the
 * client (0), or cannot tell (-1): servers start lines with a reply code,
 * clients with a verb. */
static int cap__payload_role(const uint8_t *p, size_t n)
{
    if (n >= 3 && sc_is_digit(p[0]) && sc_is_digit(p[1]) && sc_is_digit(p[2]) &&
        (n == 3 || p[3] == ' ' || p[3] == '-' || p[3] == '\r' || p[3] == '\n'))
        return 1;
    size_t i = 0;
    while (i < n && i < 16 && (sc_is_alpha(p[i]) || p[i] == '-'))
        i++;
    if (i >= 4 && (i == n || p[i] == ' ' || p[i] == '\r' || p[i] == '\n'))
        return 0;
    return -1;
}

static void cap__decide_roles(struct cap_tracker *t, struct cap__flow *f, int se,
                              const struct cap_packet *pkt)
{
    int oe = 1 - se;
    bool sp = cap_port_in(&t->set, f->port[se]);
    bool dp = cap_port_in(&t->set, f->port[oe]);
    if (dp && !sp) {
        f->client = (int8_t)se;
    } else if (sp && !dp) {
        f->client = (int8_t)oe;
    } else if (pkt->payload_len > 0) {
        int r = cap__payload_role(pkt->payload, pkt->payload_len);
        if (r < 0)
            r = f->port[se] < f->port[oe] ? 1 : 0;
        f->client = (int8_t)(r == 1 ? oe : se);
    } else {
        return;
    }
    f->guessed = true;
}

/* Notes a side's TTL and IP id habits, and the details of its first RST,
 * which heuristics compare to spot a RST some other device sent for it. */
static void cap__side_packet(struct cap_side *sd, const struct cap_packet *pkt, bool rst)
{
    bool first = sd->packets++ == 0;
    sd->last_ts = pkt->ts;
    sd->last_frame = pkt->frame;
    if (first)
        sd->first_ttl = pkt->ttl;
    if (rst) {
        if (!sd->rst) {
            sd->rst = true;
            sd->rst_ttl = pkt->ttl;
            sd->rst_ipid = pkt->ipid;
            sd->rst_window = pkt->window;
            sd->rst_frame = pkt->frame;
            sd->rst_ts = pkt->ts;
            if (pkt->ipver == 4 && sd->packets > 3) {
                uint32_t step = (pkt->ipid - sd->last_ipid) & 0xffff;
                bool counts = sd->ipid_small >= 2 && sd->ipid_big == 0;
                bool zeros = sd->ipid_zero + 1 >= sd->packets - 1;
                sd->rst_ipid_mismatch =
                    (counts && (step == 0 || step > 1024)) || (zeros && pkt->ipid != 0);
            }
        }
        return;
    }
    if (sd->ttl_max == 0 || pkt->ttl > sd->ttl_max)
        sd->ttl_max = pkt->ttl;
    if (sd->ttl_min == 0 || pkt->ttl < sd->ttl_min)
        sd->ttl_min = pkt->ttl;
    if (pkt->ipver == 4) {
        uint32_t step = (pkt->ipid - sd->last_ipid) & 0xffff;
        if (pkt->ipid == 0)
            sd->ipid_zero++;
        else if (!first && step >= 1 && step <= 64)
            sd->ipid_small++;
        else if (!first)
            sd->ipid_big++;
        sd->last_ipid = pkt->ipid;
    }
}

/* Offers a pending flow to the consumer; false if it declined (the flow is
 * then only counted). */
static bool cap__open(struct cap_tracker *t, struct cap__flow *f, const struct cap_encap *encap,
                      uint8_t nencap, uint8_t ipver)
{
    struct cap_flow_info fi;
    cap__info(f, &fi);
    fi.encap = encap;
    fi.nencap = nencap;
    fi.ipver = ipver;
    f->app = t->cb.open ? t->cb.open(t->user, &fi) : NULL;
    if (!f->app) {
        f->state = FS_IGNORED;
        cap__body_free(t, f);
        return false;
    }
    f->state = FS_ACTIVE;
    t->stats.flows_followed++;
    return true;
}

/* Whether a new flow's first packet is a plain opening SYN, whose flow can
 * wait without a body (cap__flow.stashed): no ACK, RST, FIN or payload, no
 * encapsulation to hand to the consumer, nothing that raises an event. */
static bool cap__plain_syn(const struct cap_packet *pkt)
{
    return (pkt->flags & (CAP_TH_SYN | CAP_TH_ACK | CAP_TH_RST | CAP_TH_FIN)) == CAP_TH_SYN &&
           pkt->payload_wire == 0 && pkt->nencap == 0 && !pkt->frag_first && !pkt->frag_conflict &&
           !pkt->opts.malformed;
}

/* Records a plain opening SYN on a new bare flow, as cap__segment would
 * have on a full one up to the point where it opens the flow. */
static void cap__stash(struct cap__flow *f, int se, const struct cap_packet *pkt)
{
    f->stashed = true;
    f->syn[se] = true;
    f->isn[se] = pkt->seq;
    f->client = (int8_t)se;
    f->syn_ttl = pkt->ttl;
    f->syn_ipver = pkt->ipver;
    f->syn_ipid = pkt->ipid;
    f->syn_window = pkt->window;
    f->syn_opts = pkt->opts;
}

/* Gives a stashed flow its body, as if its SYN had been processed in full,
 * and opens it.  Everything that acts on a flow other than through
 * cap__segment's first-SYN path calls this first, so no callback, event or
 * count depends on whether the flow waited. */
static void cap__wake(struct cap_tracker *t, struct cap__flow *f)
{
    if (!f->stashed)
        return;
    f->stashed = false;
    int se = f->client;
    f->b = calloc(1, sizeof(*f->b));
    if (!f->b) {
        f->state = FS_IGNORED; /* no memory to follow it: only counted */
        t->stats.table_full++;
        return;
    }
    for (int e = 0; e < 2; e++) {
        f->b->ep[e].addr = f->addr[e];
        f->b->ep[e].port = f->port[e];
        cap_stream_init(&f->b->st[e]);
    }
    struct cap_packet syn;
    memset(&syn, 0, sizeof(syn));
    syn.frame = f->first_frame;
    syn.ts = f->first_ts;
    syn.ttl = f->syn_ttl;
    syn.ipver = f->syn_ipver;
    syn.ipid = f->syn_ipid;
    syn.window = f->syn_window;
    struct cap_side *sd = &f->b->ep[se];
    cap__side_packet(sd, &syn, false);
    sd->syn_seen = true;
    sd->syn_opts = f->syn_opts;
    sd->isn = f->isn[se];
    cap_stream_set_base(&f->b->st[se], f->isn[se] + 1);
    cap__open(t, f, NULL, 0, f->syn_ipver);
}

/* Whether a SYN (without ACK) from endpoint ep opens a new connection on a
 * flow that is still open: its ISN differs from the one recorded, or, for a
 * connection picked up mid-stream, it does not fit where that endpoint's
 * stream starts (a late copy of the first SYN fits exactly). */
static bool cap__syn_starts_new(const struct cap__flow *f, int ep, uint32_t seq)
{
    if (f->syn[ep])
        return seq != f->isn[ep];
    if (!f->b) { /* declined or dropped: where the stream stood then */
        if (!(f->base_flags & (1u << (2 * ep))))
            return false;
        return !((f->base_flags & (2u << (2 * ep))) && f->base_seq[ep] == (uint32_t)(seq + 1));
    }
    const struct cap_stream *st = &f->b->st[ep];
    if (!st->init)
        return false;
    return !(st->next_off == 0 && st->next_seq == (uint32_t)(seq + 1));
}

/* A TCP segment, from the capture or put together from IP fragments. */
static void cap__segment(struct cap_tracker *t, const struct cap_packet *pkt)
{
    int se = memcmp(pkt->src.b, pkt->dst.b, 16);
    se = se < 0 || (se == 0 && pkt->sport <= pkt->dport) ? 0 : 1;
    int oe = 1 - se;
    struct cap_addr a[2];
    uint16_t port[2];
    a[se] = pkt->src;
    a[oe] = pkt->dst;
    port[se] = pkt->sport;
    port[oe] = pkt->dport;
    if (t->mine && (pkt->frag.present || pkt->frag_first || pkt->frag_count) &&
        !t->mine(t->mine_user, pkt))
        return; /* another tracker's connection */
    uint64_t h = cap__hash(t, a, port, pkt->ctx);
    bool syn = pkt->flags & CAP_TH_SYN, ack = pkt->flags & CAP_TH_ACK;
    bool rst = pkt->flags & CAP_TH_RST, fin = pkt->flags & CAP_TH_FIN;
    struct sc_meta m = {pkt->frame, pkt->ts};

    struct cap__flow *f = cap__lookup(t, a, port, pkt->ctx, h);
    bool bare = false;
    if (!f) {
        if (rst)
            return; /* nothing to close */
        bare = cap__plain_syn(pkt);
        f = cap__flow_new(t, a, port, h, pkt, bare);
        if (!f)
            return;
    } else if (f->state == FS_CLOSED) {
        if (!(syn && !ack)) {
            t->stats.late_packets++;
            return;
        }
        bare = cap__plain_syn(pkt);
        cap__unlink(f);
        cap__flow_start(t, f, pkt, bare);
    } else {
        cap__wake(t, f);
        if (syn && !ack && cap__syn_starts_new(f, se, pkt->seq)) {
            /* A new SYN while the old connection looks open: the port was
             * reused and the old connection's end was not seen. */
            t->stats.port_reuse++;
            cap__event(t, f, "port_reused", SC_DIR_C2S, &m,
                       "a new SYN reused the 4-tuple before the connection was seen to close");
            cap__close(t, f, CAP_CLOSE_TIMEOUT, &m, true);
            cap__unlink(f);
            cap__flow_start(t, f, pkt, false);
        }
    }

    f->touched = t->now;
    f->touched_frame = t->last.frame;
    cap__unlink(f);
    cap__append(&t->live, f);
    cap__due_before(t, t->now, t->set.idle_timeout);
    f->last_frame = pkt->frame;
    f->last_ts = pkt->ts;
    if (bare) {
        cap__stash(f, se, pkt);
        return;
    }
    if (pkt->payload_len > 0)
        f->had_payload = true;
    if (f->state == FS_IGNORED || !f->b)
        return; /* declined: nothing more is kept */
    struct cap_side *sd = &f->b->ep[se];
    cap__side_packet(sd, pkt, rst);
    sd->payload_bytes += pkt->payload_len;

    uint32_t seq = pkt->seq;
    if (syn) {
        if (!f->syn[se]) {
            f->syn[se] = true;
            f->isn[se] = pkt->seq;
            sd->syn_seen = true;
            sd->syn_opts = pkt->opts;
            sd->isn = pkt->seq;
            if (!f->b->st[se].init)
                cap_stream_set_base(&f->b->st[se], pkt->seq + 1);
        }
        if (f->client < 0 || (!ack && !f->syn[oe]))
            f->client = (int8_t)(ack ? oe : se);
        if (ack && !f->b->st[oe].init)
            cap_stream_set_base(&f->b->st[oe], pkt->ack); /* the client's ISN + 1 */
        seq = pkt->seq + 1;
    }
    if (f->client < 0)
        cap__decide_roles(t, f, se, pkt);
    if (!f->b->st[se].init && !rst)
        cap_stream_set_base(&f->b->st[se], seq);
    if (f->client < 0)
        return; /* no payload yet to tell who is who; bases are kept */

    if (f->state == FS_PENDING) {
        if (!cap__open(t, f, pkt->encap, pkt->nencap, pkt->ipver))
            return;
        if (!(f->syn[0] || f->syn[1]))
            cap__event(t, f, "midstream", SC_DIR_NONE, &m,
                       "the connection's handshake is not in the capture");
    }

    enum sc_dir dir = cap__dir(f, se);
    if (pkt->frag_first)
        cap__event(t, f, "ip_fragment", dir, &m,
                   "segment split into IP fragments that did not all arrive; only the bytes "
                   "before the first missing one are used");
    if (pkt->frag_conflict)
        cap__event(t, f, "ip_fragment_overlap", dir, &m,
                   "overlapping IP fragments carried different bytes; the first copy was used "
                   "(the receiving host may have kept the other)");
    if (pkt->opts.malformed)
        cap__event(t, f, "tcp_option_malformed", dir, &m, NULL);

    if (ack && f->b->st[oe].init) {
        struct cap__sctx c = {t, f, oe};
        if (cap_stream_acked(&f->b->st[oe], &t->lim, &t->pool_used, pkt->ack, &m, &cap__scb, &c)) {
            cap__drop(t, f, &m);
            return;
        }
    }
    if (rst) {
        f->rst_seen = true;
        cap__close(t, f, CAP_CLOSE_RST, &m, true);
        return;
    }
    if (pkt->payload_wire > 0 || fin) {
        struct cap__sctx c = {t, f, se};
        if (pkt->payload_wire > pkt->payload_len && !pkt->frag_first)
            cap__event(t, f, "snaplen_truncated", dir, &m, NULL);
        if (cap_stream_segment(&f->b->st[se], &t->lim, &t->pool_used, seq, pkt->payload,
                               pkt->payload_len, pkt->payload_wire,
                               pkt->frag_first ? CAP_GAP_FRAGMENT : CAP_GAP_SNAPLEN, fin, &m,
                               &cap__scb, &c)) {
            cap__drop(t, f, &m);
            return;
        }
    }
    if (f->state == FS_ACTIVE && f->fin_dir[0] && f->fin_dir[1])
        cap__close(t, f, CAP_CLOSE_FIN, &m, true);
}

/* Fragments go to the reassembler; what it completes is decoded on and, when
 * it is TCP, tracked.  A reassembled datagram may hold a fragment of an inner
 * header (a tunnel's payload): each round peels one fragmented layer. */
static void cap__fragment(struct cap_tracker *t, const struct cap_packet *pkt)
{
    struct cap_packet buf[2];
    const struct cap_packet *cur = pkt;
    for (int k = 0, round = 0; cur && cur->frag.present && round <= CAP_MAX_TUNNEL_DEPTH;
         k ^= 1, round++) {
        enum cap_defrag_result r = cap_defrag_add(t->defrag, cur, &buf[k]);
        if (r == CAP_DEFRAG_HELD)
            cur = NULL;
        else if (r == CAP_DEFRAG_DONE)
            cur = &buf[k];
        else
            break; /* refused: a first fragment still gives what it holds */
    }
    t->stats.defrag = *cap_defrag_stats(t->defrag);
    if (cur && cur->status == CAP_ST_TCP)
        cap__segment(t, cur);
}

/* Datagrams the reassembler gave up on deliver what their first fragment
 * held. */
static void cap__frag_expired(struct cap_tracker *t)
{
    struct cap_packet out;
    while (cap_defrag_expired(t->defrag, t->now, &out)) {
        t->stats.defrag = *cap_defrag_stats(t->defrag);
        if (out.status == CAP_ST_TCP)
            cap__segment(t, &out);
    }
}

/* Adds n to the count of unsupported-encapsulation reason `what` (one of
 * the decoder's static strings); reasons past the table's size are not
 * named. */
static void cap__unsupported_add(struct cap_tracker_stats *st, const char *what, uint64_t n)
{
    uint32_t i = 0;
    while (i < st->n_unsupported && strcmp(st->unsupported[i].what, what) != 0)
        i++;
    if (i == st->n_unsupported) {
        if (i >= sizeof(st->unsupported) / sizeof(st->unsupported[0]))
            return;
        st->unsupported[i].what = what;
        st->unsupported[i].count = 0;
        st->n_unsupported++;
    }
    st->unsupported[i].count += n;
}

static void cap__count_encap(struct cap_tracker *t, const struct cap_packet *pkt)
{
    uint32_t seen = 0;
    for (uint8_t i = 0; i < pkt->nencap; i++)
        if (pkt->encap[i].kind < CAP_ENC__COUNT && !(seen & (1u << pkt->encap[i].kind))) {
            seen |= 1u << pkt->encap[i].kind;
            t->stats.encap[pkt->encap[i].kind]++;
        }
    if (pkt->status == CAP_ST_ENCAP_UNSUPPORTED && pkt->unsupported)
        cap__unsupported_add(&t->stats, pkt->unsupported, 1);
}

void cap_tracker_stats_add(struct cap_tracker_stats *to, const struct cap_tracker_stats *from)
{
    to->packets += from->packets;
    for (int k = 0; k < CAP_ST__COUNT; k++)
        to->by_status[k] += from->by_status[k];
    to->flows += from->flows;
    to->flows_followed += from->flows_followed;
    to->evicted += from->evicted;
    to->mem_evicted += from->mem_evicted;
    to->table_full += from->table_full;
    to->late_packets += from->late_packets;
    to->port_reuse += from->port_reuse;
    to->ts_backwards += from->ts_backwards;
    for (int k = 0; k < CAP_ENC__COUNT; k++)
        to->encap[k] += from->encap[k];
    for (uint32_t u = 0; u < from->n_unsupported; u++)
        cap__unsupported_add(to, from->unsupported[u].what, from->unsupported[u].count);
}

/* A packet at `ts`: time moves on (see `now`) and what is idle expires.
 * Inlined: it runs for every packet, and with -j for every other thread's. */
static inline void cap__clock(struct cap_tracker *t, uint64_t frame, sc_time ts)
{
    /* (The first packet has no previous one: its own time is taken.) */
    sc_time lo = t->prev_ts == INT64_MIN || ts < t->prev_ts ? ts : t->prev_ts;
    if (lo > t->now)
        t->now = lo;
    t->prev_ts = ts;
    t->max_before = t->max_ts;
    if (ts > t->max_ts)
        t->max_ts = ts;
    t->last.frame = frame;
    t->last.ts = ts;
    cap__expire(t);
    if (++t->mem_tick >= t->mem_wait && t->mem_tick >= t->nflows / CAP_MEM_CHECK_SHARE)
        cap__mem_check(t);
}

void cap_tracker_packet_ex(struct cap_tracker *t, const struct cap_packet *pkt, unsigned flags)
{
    if (!(flags & CAP_PKT_UNCOUNTED)) {
        t->stats.packets++;
        t->stats.by_status[pkt->status < CAP_ST__COUNT ? pkt->status : CAP_ST_MALFORMED]++;
        if (pkt->nencap || pkt->status == CAP_ST_ENCAP_UNSUPPORTED)
            cap__count_encap(t, pkt);
        if (pkt->ts < ((flags & CAP_PKT_CLOCKED) ? t->max_before : t->max_ts))
            t->stats.ts_backwards++;
    }
    if (!(flags & CAP_PKT_CLOCKED))
        cap__clock(t, pkt->frame, pkt->ts);
    if (pkt->frag.present)
        cap__fragment(t, pkt);
    else if (pkt->status == CAP_ST_TCP)
        cap__segment(t, pkt);
}

void cap_tracker_packet(struct cap_tracker *t, const struct cap_packet *pkt)
{
    cap_tracker_packet_ex(t, pkt, 0);
}

void cap_tracker_tick(struct cap_tracker *t, uint64_t frame, sc_time ts)
{
    cap__clock(t, frame, ts);
}

void cap_tracker_set_owner(struct cap_tracker *t,
                           bool (*mine)(void *user, const struct cap_packet *pkt), void *user)
{
    t->mine = mine;
    t->mine_user = user;
}

static int cap__cmp_seq(const void *a, const void *b)
{
    const struct cap__flow *x = *(const struct cap__flow *const *)a;
    const struct cap__flow *y = *(const struct cap__flow *const *)b;
    return x->seq_no < y->seq_no ? -1 : x->seq_no > y->seq_no;
}

/* Sorts v[n] by order of creation (seq_no, unique): a least-significant-
 * digit radix sort over the bytes that the highest seq_no uses, through
 * tmp[n].  A comparison sort reads two flows per comparison, a cache miss
 * each, log2(n) times per flow; this reads each flow twice per byte (two or
 * three bytes: as many flows as were ever created).  Without tmp, qsort. */
static void cap__sort_seq(struct cap__flow **v, size_t n)
{
    struct cap__flow **tmp = malloc(n * sizeof(*tmp));
    if (!tmp) {
        qsort(v, n, sizeof(*v), cap__cmp_seq);
        return;
    }
    uint64_t hi = 0;
    for (size_t i = 0; i < n; i++)
        hi |= v[i]->seq_no;
    struct cap__flow **src = v, **dst = tmp;
    for (unsigned shift = 0; shift < 64 && (hi >> shift) != 0; shift += 8) {
        size_t count[256] = {0};
        for (size_t i = 0; i < n; i++)
            count[(src[i]->seq_no >> shift) & 0xff]++;
        size_t at = 0;
        for (size_t d = 0; d < 256; d++) {
            size_t c = count[d];
            count[d] = at;
            at += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i]->seq_no >> shift) & 0xff]++] = src[i];
        struct cap__flow **t = src;
        src = dst;
        dst = t;
    }
    if (src != v)
        memcpy(v, src, n * sizeof(*v));
    free(tmp);
}

void cap_tracker_advance(struct cap_tracker *t, sc_time now)
{
    if (now > t->now) {
        t->now = now;
        cap__expire(t);
    }
}

void cap_tracker_finish(struct cap_tracker *t)
{
    cap_defrag_flush(t->defrag);
    cap__frag_expired(t);
    t->stats.defrag = *cap_defrag_stats(t->defrag);
    /* Stashed flows are woken one at a time as they are closed (a flood's
     * would otherwise all take their body at once). */
    size_t n = 0;
    for (struct cap__flow *f = t->live.head.next; f != &t->live.head; f = f->next)
        if (f->state == FS_ACTIVE || f->stashed)
            n++;
    if (n == 0)
        return;
    struct cap__flow **v = malloc(n * sizeof(*v));
    if (!v) {
        /* Without memory for sorting, close in activity order instead. */
        struct cap__flow *f;
        while ((f = cap__oldest(&t->live))) {
            struct sc_meta m = t->last;
            cap__wake(t, f);
            cap__close(t, f, f->state == FS_ACTIVE ? CAP_CLOSE_EOF : CAP_CLOSE_DROPPED, &m, false);
        }
        return;
    }
    size_t i = 0;
    for (struct cap__flow *f = t->live.head.next; f != &t->live.head; f = f->next)
        if (f->state == FS_ACTIVE || f->stashed)
            v[i++] = f;
    cap__sort_seq(v, n);
    for (i = 0; i < n; i++) {
        struct sc_meta m = t->last;
        cap__close(t, v[i], CAP_CLOSE_EOF, &m, true);
    }
    free(v);
}

void cap_tracker_free(struct cap_tracker *t)
{
    if (!t)
        return;
    cap_tracker_finish(t);
    struct cap__flow *f;
    while ((f = cap__oldest(&t->live)))
        cap__remove(t, f);
    while ((f = cap__oldest(&t->dead)))
        cap__remove(t, f);
    while ((f = cap__oldest(&t->gone)))
        cap__remove(t, f);
    free(t->buckets);
    cap_defrag_free(t->defrag);
    free(t);
}
