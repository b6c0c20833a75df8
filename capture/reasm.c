/* reasm.c - per-direction TCP stream reassembly (RFC 9293 sequence space). */
#include "capture/reasm.h"

#include <stdlib.h>
#include <string.h>

/* Largest distance ahead of the delivery point that a segment or an ACK may
 * claim: RFC 7323 caps the window at 2^30 bytes, so anything further is a
 * corrupt or forged sequence number and is ignored (and counted). */
#define CAP_SEQ_WINDOW_MAX (UINT64_C(1) << 30)

/* Bytes of each version handed to the overlap callback, at most. */
#define CAP_EVIDENCE_HARD_MAX 512

struct cap__seg {
    struct cap__seg *next;
    uint64_t off;
    uint32_t len;
    bool is_gap; /* no bytes: a hole of known extent (snap length, fragment) */
    enum cap_gap_reason reason;
    struct sc_meta meta;
    uint8_t data[];
};

static const char *const cap__gap_names[CAP_GAP__COUNT] = {
    "acked_unseen", "snaplen", "buffer_limit", "end_of_stream", "ip_fragment",
};

const char *cap_gap_reason_name(enum cap_gap_reason r)
{
    return (unsigned)r < CAP_GAP__COUNT ? cap__gap_names[r] : "unknown";
}

/* Memory charged for a held segment: its header plus its bytes, so that
 * byte-less gap records cannot grow without bound either. */
static size_t cap__seg_cost(const struct cap__seg *g)
{
    return sizeof(*g) + (g->is_gap ? 0 : g->len);
}

void cap_stream_init(struct cap_stream *s)
{
    memset(s, 0, sizeof(*s));
}

void cap_stream_set_base(struct cap_stream *s, uint32_t seq)
{
    s->init = true;
    s->next_seq = seq;
    s->next_off = 0;
    s->hist_valid_from = 0;
}

void cap_stream_free(struct cap_stream *s, size_t *pool_used)
{
    struct cap__seg *g = s->ooo;
    while (g) {
        struct cap__seg *n = g->next;
        size_t c = cap__seg_cost(g);
        *pool_used -= c < *pool_used ? c : *pool_used;
        free(g);
        g = n;
    }
    s->ooo = NULL;
    s->ooo_bytes = 0;
    s->ooo_count = 0;
    free(s->hist);
    s->hist = NULL;
    s->hist_cap = 0;
}

/* The history ring starts with room for a greeting or a first command
 * (CAP_HIST_FIRST), grows to at least CAP_HIST_SECOND (the rest of a short
 * dialogue in one step), then by half, up to `history`, as the stream
 * delivers bytes: a connection that goes quiet early, or a short dialogue,
 * does not hold the whole ring for its life, nor much more than its bytes (a
 * ring needs no power-of-two size: it is indexed modulo its size). */
#define CAP_HIST_FIRST 64
#define CAP_HIST_SECOND 512

static void cap__hist_put(struct cap_stream *s, const struct cap_stream_limits *lim,
                          const uint8_t *p, size_t n)
{
    if (lim->history == 0)
        return;
    uint64_t end = s->next_off + n;
    if (s->hist_cap < lim->history && (!s->hist || end > s->hist_cap)) {
        /* Grown before it would wrap, so every byte it holds sits at
         * off % hist_cap == off and keeps its place in the larger ring
         * (after a gap, what it holds is no longer valid anyway). */
        size_t c = !s->hist_cap                    ? CAP_HIST_FIRST
                   : s->hist_cap < CAP_HIST_SECOND ? CAP_HIST_SECOND
                                                   : s->hist_cap;
        while (c < end && c < lim->history)
            c += c / 2;
        if (c > lim->history)
            c = lim->history;
        uint8_t *h = realloc(s->hist, c);
        if (h) {
            if (s->next_off > s->hist_cap && s->hist_valid_from < s->next_off)
                s->hist_valid_from = s->next_off; /* it wrapped (an earlier OOM) */
            s->hist = h;
            s->hist_cap = c;
        } else if (!s->hist) {
            return; /* retransmissions just go unverified */
        }
    }
    uint64_t off = s->next_off;
    if (n > s->hist_cap) {
        off += n - s->hist_cap;
        p += n - s->hist_cap;
        n = s->hist_cap;
    }
    size_t at = (size_t)(off % s->hist_cap);
    size_t first = s->hist_cap - at < n ? s->hist_cap - at : n;
    memcpy(s->hist + at, p, first);
    memcpy(s->hist, p + first, n - first);
}

/* Compares bytes [o, o+n) that lie below next_off with what was delivered. */
static int cap__verify(struct cap_stream *s, const struct cap_stream_limits *lim, uint64_t o,
                       const uint8_t *p, size_t n, const struct sc_meta *m,
                       const struct cap_stream_cb *cb, void *user)
{
    uint64_t end = o + n;
    if (end > s->next_off)
        end = s->next_off;
    if (end <= o)
        return 0;
    uint64_t lo = s->hist_valid_from;
    if (s->hist && s->next_off - lo > s->hist_cap)
        lo = s->next_off - s->hist_cap;
    if (!s->hist)
        lo = s->next_off;
    if (lo < o)
        lo = o;
    if (lo > o)
        s->unverified += (uint32_t)((lo < end ? lo : end) - o);
    for (uint64_t i = lo; i < end; i++) {
        uint8_t old = s->hist[i % s->hist_cap];
        if (old == p[i - o])
            continue;
        size_t ev =
            lim->evidence_max < CAP_EVIDENCE_HARD_MAX ? lim->evidence_max : CAP_EVIDENCE_HARD_MAX;
        size_t k = (size_t)(end - i) < ev ? (size_t)(end - i) : ev;
        uint8_t oldb[CAP_EVIDENCE_HARD_MAX];
        for (size_t j = 0; j < k; j++)
            oldb[j] = s->hist[(i + j) % s->hist_cap];
        s->overlaps_diff++;
        return cb->overlap ? cb->overlap(user, i, oldb, k, p + (i - o), k, m) : 0;
    }
    return 0;
}

static int cap__deliver(struct cap_stream *s, const struct cap_stream_limits *lim, const uint8_t *p,
                        size_t n, const struct sc_meta *m, const struct cap_stream_cb *cb,
                        void *user)
{
    if (n == 0)
        return 0;
    int stop = cb->data ? cb->data(user, s->next_off, p, n, m) : 0;
    cap__hist_put(s, lim, p, n);
    s->next_off += n;
    s->next_seq = (uint32_t)(s->next_seq + n);
    s->bytes += n;
    return stop;
}

static int cap__deliver_gap(struct cap_stream *s, uint64_t len, enum cap_gap_reason why,
                            const struct sc_meta *m, const struct cap_stream_cb *cb, void *user)
{
    if (len == 0)
        return 0;
    int stop = cb->gap ? cb->gap(user, s->next_off, len, why, m) : 0;
    s->next_off += len;
    s->next_seq = (uint32_t)(s->next_seq + (uint32_t)len);
    s->hist_valid_from = s->next_off;
    s->gap_bytes += len;
    s->gaps++;
    return stop;
}

static int cap__check_fin(struct cap_stream *s, const struct sc_meta *m,
                          const struct cap_stream_cb *cb, void *user)
{
    if (s->fin_seen && !s->fin_done && s->next_off == s->fin_off && !s->ooo) {
        s->fin_done = true;
        return cb->fin ? cb->fin(user, s->fin_off, m) : 0;
    }
    return 0;
}

static void cap__unhold(struct cap_stream *s, struct cap__seg *g, size_t *pool_used)
{
    size_t c = cap__seg_cost(g);
    s->ooo_bytes -= c < s->ooo_bytes ? c : s->ooo_bytes;
    *pool_used -= c < *pool_used ? c : *pool_used;
    s->ooo_count--;
    free(g);
}

/* Delivers held segments that have become contiguous. */
static int cap__drain(struct cap_stream *s, const struct cap_stream_limits *lim, size_t *pool_used,
                      const struct cap_stream_cb *cb, void *user)
{
    while (s->ooo && s->ooo->off <= s->next_off) {
        struct cap__seg *g = s->ooo;
        s->ooo = g->next;
        int stop = 0;
        uint64_t gend = g->off + g->len;
        if (gend <= s->next_off) {
            if (!g->is_gap)
                stop = cap__verify(s, lim, g->off, g->data, g->len, &g->meta, cb, user);
        } else {
            size_t skip = (size_t)(s->next_off - g->off);
            if (g->is_gap) {
                stop = cap__deliver_gap(s, g->len - skip, g->reason, &g->meta, cb, user);
            } else {
                stop = cap__verify(s, lim, g->off, g->data, skip, &g->meta, cb, user);
                if (!stop)
                    stop = cap__deliver(s, lim, g->data + skip, g->len - skip, &g->meta, cb, user);
            }
        }
        cap__unhold(s, g, pool_used);
        if (stop)
            return stop;
    }
    return 0;
}

/* Moves the delivery point up to `target`, declaring holes as gaps. */
static int cap__advance(struct cap_stream *s, const struct cap_stream_limits *lim,
                        size_t *pool_used, uint64_t target, enum cap_gap_reason why,
                        const struct sc_meta *m, const struct cap_stream_cb *cb, void *user)
{
    while (s->next_off < target) {
        uint64_t hole_end = target;
        if (s->ooo && s->ooo->off < hole_end)
            hole_end = s->ooo->off;
        int stop = cap__deliver_gap(s, hole_end - s->next_off, why, m, cb, user);
        if (!stop)
            stop = cap__drain(s, lim, pool_used, cb, user);
        if (stop)
            return stop;
    }
    return cap__check_fin(s, m, cb, user);
}

static struct cap__seg *cap__seg_new(uint64_t off, const uint8_t *p, size_t n, bool is_gap,
                                     enum cap_gap_reason why, const struct sc_meta *m)
{
    struct cap__seg *g = malloc(sizeof(*g) + (is_gap ? 0 : n));
    if (!g)
        return NULL;
    g->next = NULL;
    g->off = off;
    g->len = (uint32_t)n;
    g->is_gap = is_gap;
    g->reason = why;
    g->meta = *m;
    if (!is_gap)
        memcpy(g->data, p, n);
    return g;
}

/* Inserts the parts of [off, off+n) not already held, comparing the parts that
 * are.  p is NULL for a hole of known extent. */
static int cap__hold(struct cap_stream *s, size_t *pool_used, uint64_t off, const uint8_t *p,
                     size_t n, enum cap_gap_reason why, const struct cap_stream_limits *lim,
                     const struct sc_meta *m, const struct cap_stream_cb *cb, void *user)
{
    uint64_t cur = off, end = off + n;
    struct cap__seg **link = &s->ooo;
    while (cur < end) {
        struct cap__seg *g = *link;
        uint64_t piece_end = end;
        if (g && g->off < piece_end)
            piece_end = g->off > cur ? g->off : cur;
        if (piece_end > cur) {
            size_t len = (size_t)(piece_end - cur);
            struct cap__seg *ng =
                cap__seg_new(cur, p ? p + (cur - off) : NULL, len, p == NULL, why, m);
            if (!ng)
                return 0; /* out of memory: the bytes become a hole later */
            ng->next = g;
            *link = ng;
            size_t c = cap__seg_cost(ng);
            s->ooo_bytes += c;
            *pool_used += c;
            s->ooo_count++;
            link = &ng->next;
            cur = piece_end;
            continue;
        }
        if (!g)
            break;
        uint64_t gend = g->off + g->len;
        if (gend <= cur) {
            link = &g->next;
            continue;
        }
        /* g overlaps [cur, ...): the held version wins; compare bytes. */
        uint64_t ov_end = gend < end ? gend : end;
        if (p && !g->is_gap) {
            for (uint64_t i = cur; i < ov_end; i++) {
                if (g->data[i - g->off] == p[i - off])
                    continue;
                size_t ev = lim->evidence_max < CAP_EVIDENCE_HARD_MAX ? lim->evidence_max
                                                                      : CAP_EVIDENCE_HARD_MAX;
                size_t k = (size_t)(ov_end - i) < ev ? (size_t)(ov_end - i) : ev;
                s->overlaps_diff++;
                if (cb->overlap &&
                    cb->overlap(user, i, g->data + (i - g->off), k, p + (i - off), k, m))
                    return 1;
                break;
            }
        }
        cur = ov_end;
        link = &g->next;
    }
    return 0;
}

int cap_stream_segment(struct cap_stream *s, const struct cap_stream_limits *lim, size_t *pool_used,
                       uint32_t seq, const uint8_t *p, size_t n, size_t wire,
                       enum cap_gap_reason tail_reason, bool fin, const struct sc_meta *m,
                       const struct cap_stream_cb *cb, void *user)
{
    if (!s->init)
        cap_stream_set_base(s, seq);
    if (n > wire)
        n = wire;
    const uint8_t *const p0 = p;
    const size_t n0 = n, wire0 = wire;
again:
    p = p0;
    n = n0;
    wire = wire0;
    int64_t rel = CAP_SEQ_DIFF(seq, s->next_seq);
    if (rel < 0 && (uint64_t)-rel > s->next_off) {
        /* Starts before the stream's first byte (a connection picked up
         * mid-stream, or a stray packet): only the part from offset 0 on. */
        uint64_t cut = (uint64_t)-rel - s->next_off;
        if (cut >= wire)
            return 0;
        size_t cn = cut < n ? (size_t)cut : n;
        p += cn;
        n -= cn;
        wire -= (size_t)cut;
        rel += (int64_t)cut;
    }
    uint64_t o = (uint64_t)((int64_t)s->next_off + rel);
    uint64_t end = o + wire;
    if (o > s->next_off && o - s->next_off > CAP_SEQ_WINDOW_MAX)
        return 0; /* beyond any possible window: a corrupt sequence number */
    if (wire > 0 && end <= s->high && end > s->acked)
        s->tail_retx++; /* sent again before the peer acknowledged it */
    if (end > s->high)
        s->high = end;
    if (fin && !s->fin_seen) {
        s->fin_seen = true;
        s->fin_off = end;
    }
    if (wire == 0)
        return cap__check_fin(s, m, cb, user);
    int stop = 0;
    if (end <= s->next_off) {
        /* Entirely old: a retransmission.  A one-byte segment just below the
         * delivery point is a keep-alive probe carrying a junk byte. */
        s->retransmits++;
        if (!(wire == 1 && end == s->next_off))
            stop = cap__verify(s, lim, o, p, n, m, cb, user);
        return stop;
    }
    if (o < s->next_off) {
        size_t k = (size_t)(s->next_off - o);
        size_t kn = k < n ? k : n;
        stop = cap__verify(s, lim, o, p, kn, m, cb, user);
        if (stop)
            return stop;
        p += kn;
        n -= kn;
        wire -= k;
        o = s->next_off;
    }
    if (o == s->next_off) {
        stop = cap__deliver(s, lim, p, n, m, cb, user);
        if (!stop && wire > n)
            stop = cap__deliver_gap(s, wire - n, tail_reason, m, cb, user);
        if (!stop)
            stop = cap__drain(s, lim, pool_used, cb, user);
        if (!stop)
            stop = cap__check_fin(s, m, cb, user);
        return stop;
    }
    /* Ahead of the delivery point: hold it, within the limits.  Over a limit,
     * give up on the oldest hole (declare it a gap) until the segment fits or
     * becomes contiguous; then classify it again. */
    /* The segment is stored as one piece per hole it fills between held
     * segments (plus its unseen tail): charge every piece's record. */
    size_t pieces = 2;
    for (const struct cap__seg *g = s->ooo; g && g->off < end; g = g->next)
        if (g->off + g->len > o)
            pieces++;
    size_t cost = sizeof(struct cap__seg) * pieces + n;
    if (s->ooo_bytes + cost > lim->ooo_max || *pool_used + cost > lim->pool_max) {
        uint64_t first = s->ooo ? s->ooo->off : UINT64_MAX;
        stop = cap__advance(s, lim, pool_used, o <= first ? o : first, CAP_GAP_LIMIT, m, cb, user);
        if (stop)
            return stop;
        goto again; /* each pass frees a held segment or makes this one contiguous */
    }
    if (n)
        stop = cap__hold(s, pool_used, o, p, n, tail_reason, lim, m, cb, user);
    if (!stop && wire > n)
        stop = cap__hold(s, pool_used, o + n, NULL, wire - n, tail_reason, lim, m, cb, user);
    return stop;
}

int cap_stream_acked(struct cap_stream *s, const struct cap_stream_limits *lim, size_t *pool_used,
                     uint32_t ack, const struct sc_meta *m, const struct cap_stream_cb *cb,
                     void *user)
{
    if (!s->init)
        return 0;
    int64_t rel = CAP_SEQ_DIFF(ack, s->next_seq);
    if (rel <= 0 && (uint64_t)-rel <= s->next_off && s->next_off + (uint64_t)rel > s->acked) {
        /* Acknowledges what was already delivered: only the bookkeeping moves. */
        s->acked = s->next_off - (uint64_t)-rel;
        s->tail_retx = 0;
    }
    if (rel <= 0 || (uint64_t)rel > CAP_SEQ_WINDOW_MAX)
        return 0;
    uint64_t target = s->next_off + (uint64_t)rel;
    if (target > s->acked) {
        s->acked = target;
        s->tail_retx = 0;
    }
    if (s->fin_seen) {
        /* The FIN takes one sequence number but no byte. */
        if (target > s->fin_off)
            target = s->fin_off;
    } else if (rel == 1 && !s->ooo) {
        return 0; /* most likely acknowledges a FIN the capture missed */
    }
    if (target <= s->next_off)
        return cap__check_fin(s, m, cb, user);
    return cap__advance(s, lim, pool_used, target, CAP_GAP_ACKED, m, cb, user);
}

int cap_stream_flush(struct cap_stream *s, const struct cap_stream_limits *lim, size_t *pool_used,
                     enum cap_gap_reason why, const struct sc_meta *m,
                     const struct cap_stream_cb *cb, void *user)
{
    uint64_t target = s->next_off;
    for (struct cap__seg *g = s->ooo; g; g = g->next)
        if (g->off + g->len > target)
            target = g->off + g->len;
    if (s->fin_seen && s->fin_off > target)
        target = s->fin_off;
    return cap__advance(s, lim, pool_used, target, why, m, cb, user);
}
