/* defrag.c - IP fragment reassembly: per-datagram piece lists, first copy
 * wins, bounded by memory, count and time. */
#include "capture/defrag.h"

#include <stdlib.h>
#include <string.h>

/* Bookkeeping charged per piece on top of its bytes (the piece record and
 * the allocator's header), so many tiny fragments cannot hide behind a small
 * byte count. */
#define CAP_DEFRAG_PIECE_COST 48

struct cap__piece {
    uint32_t off, len;
    uint8_t *data;
};

struct cap__dg {
    struct cap__dg *hnext;
    struct cap__dg *prev, *next; /* age list or given-up list */
    uint64_t hash;
    uint8_t ipver, proto;
    uint32_t id;
    struct cap_addr src, dst;
    uint64_t ctx;
    sc_time first_ts;
    bool have_last, have_first, conflict, gone;
    uint32_t total; /* payload size, once the last fragment is in */
    uint16_t nfrags;
    struct cap__piece *pieces; /* sorted by offset, never overlapping */
    uint32_t npieces, cap;
    size_t mem;
    struct cap_packet tmpl; /* the first fragment's packet (else the first one seen) */
};

struct cap_defrag {
    struct cap_defrag_limits lim;
    struct cap_decode_opts opts;
    struct cap__dg **buckets;
    size_t mask;
    struct cap__dg age;  /* sentinel: age.next is the oldest in progress */
    struct cap__dg gone; /* sentinel: given up, waiting for cap_defrag_expired */
    uint32_t ndg;
    size_t mem;
    uint8_t *out; /* CAP_DEFRAG_MAX_SIZE bytes */
    struct cap_defrag_stats st;
};

void cap_defrag_limits_defaults(struct cap_defrag_limits *l)
{
    l->mem_max = 16u << 20;
    l->max_datagrams = 4096;
    l->timeout = 30 * SC_NS_PER_SEC;
}

static void cap__dl_init(struct cap__dg *s)
{
    s->next = s->prev = s;
}

static void cap__dl_unlink(struct cap__dg *g)
{
    g->prev->next = g->next;
    g->next->prev = g->prev;
    g->next = g->prev = g;
}

static void cap__dl_append(struct cap__dg *s, struct cap__dg *g)
{
    g->prev = s->prev;
    g->next = s;
    s->prev->next = g;
    s->prev = g;
}

struct cap_defrag *cap_defrag_new(const struct cap_defrag_limits *l,
                                  const struct cap_decode_opts *o)
{
    struct cap_defrag *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->lim = *l;
    if (d->lim.max_datagrams == 0)
        d->lim.max_datagrams = 1;
    d->opts = *o;
    size_t n = 64;
    while (n < (size_t)d->lim.max_datagrams * 2 && n < (1u << 20))
        n <<= 1;
    d->buckets = calloc(n, sizeof(*d->buckets));
    d->out = malloc(CAP_DEFRAG_MAX_SIZE);
    if (!d->buckets || !d->out) {
        free(d->buckets);
        free(d->out);
        free(d);
        return NULL;
    }
    d->mask = n - 1;
    cap__dl_init(&d->age);
    cap__dl_init(&d->gone);
    return d;
}

static void cap__dg_free(struct cap_defrag *d, struct cap__dg *g)
{
    for (uint32_t i = 0; i < g->npieces; i++)
        free(g->pieces[i].data);
    free(g->pieces);
    d->mem -= g->mem;
    free(g);
}

static void cap__unhash(struct cap_defrag *d, struct cap__dg *g)
{
    struct cap__dg **pp = &d->buckets[g->hash & d->mask];
    while (*pp && *pp != g)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = g->hnext;
    g->hnext = NULL;
}

void cap_defrag_free(struct cap_defrag *d)
{
    if (!d)
        return;
    while (d->age.next != &d->age) {
        struct cap__dg *g = d->age.next;
        cap__dl_unlink(g);
        cap__dg_free(d, g);
    }
    while (d->gone.next != &d->gone) {
        struct cap__dg *g = d->gone.next;
        cap__dl_unlink(g);
        cap__dg_free(d, g);
    }
    free(d->buckets);
    free(d->out);
    free(d);
}

const struct cap_defrag_stats *cap_defrag_stats(const struct cap_defrag *d)
{
    return &d->st;
}

size_t cap_defrag_mem(const struct cap_defrag *d)
{
    return d->mem;
}

static uint64_t cap__h(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 29);
}

static uint64_t cap__key_hash(const struct cap_frag *f)
{
    uint64_t w[4];
    memcpy(w, f->src.b, 16);
    memcpy(w + 2, f->dst.b, 16);
    uint64_t h = cap__h(f->ctx, (uint64_t)f->ipver << 40 | (uint64_t)f->proto << 32 | f->id);
    for (int i = 0; i < 4; i++)
        h = cap__h(h, w[i]);
    return h;
}

static bool cap__key_eq(const struct cap__dg *g, const struct cap_frag *f)
{
    return g->ipver == f->ipver && g->proto == f->proto && g->id == f->id && g->ctx == f->ctx &&
           memcmp(&g->src, &f->src, sizeof(g->src)) == 0 &&
           memcmp(&g->dst, &f->dst, sizeof(g->dst)) == 0;
}

/* Moves a datagram out of progress: freed at once unless its first
 * fragment can still be delivered. */
static void cap__give_up(struct cap_defrag *d, struct cap__dg *g)
{
    cap__unhash(d, g);
    cap__dl_unlink(g);
    d->ndg--;
    if (g->have_first) {
        g->gone = true;
        cap__dl_append(&d->gone, g);
    } else {
        cap__dg_free(d, g);
    }
}

/* Frees given-up datagrams not yet delivered, oldest first, until `need`
 * more bytes fit; they lose their chance of a partial delivery. */
static void cap__shed_gone(struct cap_defrag *d, size_t need)
{
    while (d->mem + need > d->lim.mem_max && d->gone.next != &d->gone) {
        struct cap__dg *g = d->gone.next;
        cap__dl_unlink(g);
        cap__dg_free(d, g);
    }
}

/* Adds [off, off+len) of data to g, skipping what is already held
 * (comparing it).  Returns the bytes added, or -1 on OOM or too many pieces. */
static long cap__insert(struct cap_defrag *d, struct cap__dg *g, uint32_t off, uint32_t len,
                        const uint8_t *data, bool *conflict)
{
    long added = 0;
    uint32_t end = off + len;
    uint32_t i = 0;
    while (off < end) {
        while (i < g->npieces && g->pieces[i].off + g->pieces[i].len <= off)
            i++;
        uint32_t stop = end;
        if (i < g->npieces && g->pieces[i].off <= off) {
            /* Overlaps piece i from `off` on. */
            const struct cap__piece *pc = &g->pieces[i];
            uint32_t ov_end = pc->off + pc->len < end ? pc->off + pc->len : end;
            if (memcmp(pc->data + (off - pc->off), data + (off - (end - len)), ov_end - off) != 0)
                *conflict = true;
            off = ov_end;
            continue;
        }
        if (i < g->npieces && g->pieces[i].off < stop)
            stop = g->pieces[i].off;
        /* [off, stop) is new: a piece before index i. */
        if (g->npieces >= CAP_DEFRAG_MAX_PIECES)
            return -1;
        if (g->npieces == g->cap) {
            uint32_t nc = g->cap ? g->cap * 2 : 4;
            struct cap__piece *np = realloc(g->pieces, nc * sizeof(*np));
            if (!np)
                return -1;
            g->pieces = np;
            g->cap = nc;
        }
        uint8_t *copy = malloc(stop - off);
        if (!copy)
            return -1;
        memcpy(copy, data + (off - (end - len)), stop - off);
        memmove(&g->pieces[i + 1], &g->pieces[i], (g->npieces - i) * sizeof(*g->pieces));
        g->pieces[i].off = off;
        g->pieces[i].len = stop - off;
        g->pieces[i].data = copy;
        g->npieces++;
        size_t cost = (size_t)(stop - off) + CAP_DEFRAG_PIECE_COST;
        g->mem += cost;
        d->mem += cost;
        added += (long)(stop - off);
        off = stop;
        i++;
    }
    return added;
}

/* What cap__insert() would charge for [off, off+len): the bytes not held
 * yet plus CAP_DEFRAG_PIECE_COST for each hole they fill (one piece each).
 * A fragment spanning many holes costs more than its length and one piece,
 * so this, not the fragment's size, is what must fit under mem_max. */
static size_t cap__cost(const struct cap__dg *g, uint32_t off, uint32_t len)
{
    size_t cost = 0;
    uint32_t end = off + len;
    uint32_t i = 0;
    while (off < end) {
        while (i < g->npieces && g->pieces[i].off + g->pieces[i].len <= off)
            i++;
        if (i < g->npieces && g->pieces[i].off <= off) {
            uint32_t pe = g->pieces[i].off + g->pieces[i].len;
            off = pe < end ? pe : end;
            continue;
        }
        uint32_t stop = end;
        if (i < g->npieces && g->pieces[i].off < stop)
            stop = g->pieces[i].off;
        cost += (size_t)(stop - off) + CAP_DEFRAG_PIECE_COST;
        off = stop;
    }
    return cost;
}

/* The bytes from offset 0 without a hole. */
static uint32_t cap__prefix(const struct cap__dg *g)
{
    uint32_t at = 0;
    for (uint32_t i = 0; i < g->npieces && g->pieces[i].off == at; i++)
        at += g->pieces[i].len;
    return at;
}

/* Copies [0, n) into d->out (the caller made sure it has no hole). */
static void cap__assemble(struct cap_defrag *d, const struct cap__dg *g, uint32_t n)
{
    for (uint32_t i = 0; i < g->npieces && g->pieces[i].off < n; i++) {
        uint32_t len = g->pieces[i].len;
        if (g->pieces[i].off + len > n)
            len = n - g->pieces[i].off;
        memcpy(d->out + g->pieces[i].off, g->pieces[i].data, len);
    }
}

enum cap_defrag_result cap_defrag_add(struct cap_defrag *d, const struct cap_packet *pkt,
                                      struct cap_packet *out)
{
    const struct cap_frag *f = &pkt->frag;
    if (!f->present)
        return CAP_DEFRAG_REFUSED;
    d->st.fragments++;
    uint64_t wire_end = (uint64_t)f->off + f->wire;
    if (wire_end > CAP_DEFRAG_MAX_SIZE || (f->more && f->wire == 0)) {
        d->st.invalid++;
        return CAP_DEFRAG_REFUSED;
    }
    uint64_t h = cap__key_hash(f);
    struct cap__dg *g = d->buckets[h & d->mask];
    while (g && !(g->hash == h && cap__key_eq(g, f)))
        g = g->hnext;
    if (!g) {
        while (d->ndg >= d->lim.max_datagrams && d->age.next != &d->age) {
            d->st.evicted++;
            cap__give_up(d, d->age.next);
        }
        g = calloc(1, sizeof(*g));
        if (!g) {
            d->st.invalid++;
            return CAP_DEFRAG_REFUSED;
        }
        g->hash = h;
        g->ipver = f->ipver;
        g->proto = f->proto;
        g->id = f->id;
        g->src = f->src;
        g->dst = f->dst;
        g->ctx = f->ctx;
        g->first_ts = pkt->ts;
        g->tmpl = *pkt;
        g->hnext = d->buckets[h & d->mask];
        d->buckets[h & d->mask] = g;
        cap__dl_append(&d->age, g);
        d->ndg++;
    }
    if (f->off == 0 && !g->have_first) {
        g->have_first = true;
        g->tmpl = *pkt;
    }
    if (!f->more) {
        if (g->have_last && g->total != (uint32_t)wire_end)
            g->conflict = true; /* two different ends: keep the first */
        else
            g->total = (uint32_t)wire_end;
        g->have_last = true;
    }
    /* Room for the new bytes and pieces: evict the oldest other datagrams
     * first. */
    size_t need = cap__cost(g, f->off, f->len);
    cap__shed_gone(d, need);
    while (d->mem + need > d->lim.mem_max && d->age.next != &d->age && d->age.next != g) {
        d->st.evicted++;
        cap__give_up(d, d->age.next);
        cap__shed_gone(d, need);
    }
    if (d->mem + need > d->lim.mem_max) {
        d->st.invalid++;
        return CAP_DEFRAG_HELD; /* counted; the datagram stays incomplete */
    }
    bool conflict = false;
    long added = cap__insert(d, g, f->off, f->len, f->data, &conflict);
    if (added < 0) {
        d->st.invalid++;
        d->st.evicted++;
        cap__give_up(d, g);
        return CAP_DEFRAG_HELD;
    }
    if (g->nfrags < UINT16_MAX)
        g->nfrags++;
    if (conflict) {
        g->conflict = true;
        d->st.conflicts++;
    } else if (added == 0) {
        d->st.duplicates++;
    }
    if (!g->have_last || cap__prefix(g) < g->total)
        return CAP_DEFRAG_HELD;

    /* Complete: assemble, decode on, forget. */
    cap__assemble(d, g, g->total);
    *out = g->tmpl;
    out->frame = pkt->frame;
    out->ts = pkt->ts;
    out->caplen = pkt->caplen;
    out->wirelen = pkt->wirelen;
    cap_decode_payload(out, d->out, g->total, &d->opts);
    out->frag_count = g->nfrags;
    out->frag_conflict = g->conflict;
    d->st.reassembled++;
    cap__unhash(d, g);
    cap__dl_unlink(g);
    d->ndg--;
    cap__dg_free(d, g);
    return CAP_DEFRAG_DONE;
}

bool cap_defrag_idle(const struct cap_defrag *d)
{
    return d->age.next == &d->age && d->gone.next == &d->gone;
}

bool cap_defrag_expired(struct cap_defrag *d, sc_time now, struct cap_packet *out)
{
    while (d->age.next != &d->age && now - d->age.next->first_ts > d->lim.timeout) {
        d->st.timed_out++;
        cap__give_up(d, d->age.next);
    }
    if (d->gone.next == &d->gone)
        return false;
    struct cap__dg *g = d->gone.next;
    cap__dl_unlink(g);
    uint32_t n = cap__prefix(g);
    cap__assemble(d, g, n);
    *out = g->tmpl;
    cap_decode_payload(out, d->out, n, &d->opts);
    out->frag_first = true; /* the rest of the datagram never came */
    out->frag_count = g->nfrags;
    out->frag_conflict = g->conflict;
    cap__dg_free(d, g);
    return true;
}

void cap_defrag_flush(struct cap_defrag *d)
{
    while (d->age.next != &d->age) {
        d->st.timed_out++;
        cap__give_up(d, d->age.next);
    }
}
