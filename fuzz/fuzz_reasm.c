/* fuzz_reasm.c - libFuzzer target for capture/reasm.h: two streams sharing
 * one memory pool, fed synthetic segments, ACKs, flushes and teardowns.
 *
 * Input:
 *   byte 0     limits: bits 0-1 ooo_max, 2-3 pool_max, 4-5 history,
 *              6-7 evidence_max (each an index into a table below, small
 *              values first so the limit paths are reached)
 *   bytes 1-4  ISN of stream 0 (little-endian); stream 1 uses its complement
 *   byte 5     bit 0/1: fix stream 0/1's base before the first segment
 *              (otherwise the first segment's sequence number is the base)
 *   records    h = one byte: bit 0 the stream, bits 1-3 the operation:
 *                0-3 segment: u16 seq (relative to the ISN, signed; h bit 4
 *                    multiplies it by 65536 to reach the window limit), one
 *                    length byte, that many payload bytes; h bit 5 FIN,
 *                    h bit 6 a cut tail (one more byte: missing bytes), h
 *                    bit 7 the cut is an IP fragment rather than the snap
 *                    length
 *                4   ACK from the peer: u16 ack relative to the ISN (h bit 4
 *                    as above)
 *                5   flush with reason (h >> 4) % CAP_GAP__COUNT
 *                6   teardown: free the stream and start it again
 *                7   one byte k: the k-th callback from now asks to stop
 *
 * Checks the consumer-facing guarantees: data and gaps arrive exactly once,
 * in order, at the offsets the stream's counters say; overlap evidence stays
 * within evidence_max; the pool never goes over pool_max and comes back to
 * zero when everything is freed.
 */
#include <string.h>

#include "capture/reasm.h"
#include "fuzz/fuzz.h"

static const size_t fz_ooo_max[4] = {64, 512, 4096, 1u << 20};
static const size_t fz_pool_max[4] = {128, 1024, 8192, 1u << 22};
static const size_t fz_history[4] = {0, 16, 256, 2048};
static const size_t fz_evidence[4] = {0, 4, 64, 1024};

/* Bytes of evidence the stream hands over at most (reasm.c's hard cap). */
#define FZ_EVIDENCE_HARD_MAX 512

/* What the consumer of one stream has been told. */
struct fz_side {
    uint64_t next;     /* offset the next data or gap must start at */
    uint64_t data;     /* bytes delivered */
    uint64_t gap;      /* bytes declared missing */
    uint32_t gaps;     /* gap announcements */
    bool fin;          /* FIN delivered */
    unsigned stop_in;  /* callbacks until one asks to stop; 0 for never */
    uint32_t checksum; /* of every byte handed over, so each is read */
};

struct fz_reasm {
    struct cap_stream st[2];
    struct fz_side side[2];
    uint32_t isn[2];
    struct cap_stream_limits lim;
    size_t pool_used;
};

static int fz_stop(struct fz_side *sd)
{
    if (sd->stop_in == 0)
        return 0;
    return --sd->stop_in == 0;
}

static void fz_sum(struct fz_side *sd, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sd->checksum = sd->checksum * 31u + p[i];
}

static int fz_data(void *user, uint64_t off, const uint8_t *p, size_t n, const struct sc_meta *m)
{
    struct fz_side *sd = user;
    (void)m;
    FZ_CHECK(n > 0);
    FZ_CHECK(off == sd->next);
    fz_sum(sd, p, n);
    sd->next += n;
    sd->data += n;
    return fz_stop(sd);
}

static int fz_gap(void *user, uint64_t off, uint64_t len, enum cap_gap_reason why,
                  const struct sc_meta *m)
{
    struct fz_side *sd = user;
    (void)m;
    FZ_CHECK(len > 0);
    FZ_CHECK(off == sd->next);
    FZ_CHECK((unsigned)why < CAP_GAP__COUNT);
    FZ_CHECK(cap_gap_reason_name(why) != NULL);
    sd->next += len;
    sd->gap += len;
    sd->gaps++;
    return fz_stop(sd);
}

/* The evidence limit in force: the smaller of the setting and the hard cap. */
static size_t fz_evidence_cap(const struct fz_reasm *r)
{
    return r->lim.evidence_max < FZ_EVIDENCE_HARD_MAX ? r->lim.evidence_max : FZ_EVIDENCE_HARD_MAX;
}

struct fz_ctx {
    struct fz_reasm *r;
    int idx;
};

static int fz_overlap(void *user, uint64_t off, const uint8_t *old_p, size_t old_n,
                      const uint8_t *new_p, size_t new_n, const struct sc_meta *m)
{
    struct fz_ctx *c = user;
    struct fz_side *sd = &c->r->side[c->idx];
    (void)off;
    (void)m;
    FZ_CHECK(old_n <= fz_evidence_cap(c->r));
    FZ_CHECK(new_n <= fz_evidence_cap(c->r));
    fz_sum(sd, old_p, old_n);
    fz_sum(sd, new_p, new_n);
    return fz_stop(sd);
}

static int fz_fin(void *user, uint64_t off, const struct sc_meta *m)
{
    struct fz_side *sd = user;
    (void)m;
    FZ_CHECK(!sd->fin);
    FZ_CHECK(off == sd->next);
    sd->fin = true;
    return fz_stop(sd);
}

/* The data, gap and fin callbacks get the side; overlap needs the limits. */
static int fz_data_c(void *user, uint64_t off, const uint8_t *p, size_t n, const struct sc_meta *m)
{
    struct fz_ctx *c = user;
    return fz_data(&c->r->side[c->idx], off, p, n, m);
}

static int fz_gap_c(void *user, uint64_t off, uint64_t len, enum cap_gap_reason why,
                    const struct sc_meta *m)
{
    struct fz_ctx *c = user;
    return fz_gap(&c->r->side[c->idx], off, len, why, m);
}

static int fz_fin_c(void *user, uint64_t off, const struct sc_meta *m)
{
    struct fz_ctx *c = user;
    return fz_fin(&c->r->side[c->idx], off, m);
}

static const struct cap_stream_cb fz_cb = {fz_data_c, fz_gap_c, fz_overlap, fz_fin_c};

/* The stream's counters agree with what its consumer was told. */
static void fz_consistent(const struct fz_reasm *r, int i)
{
    const struct cap_stream *s = &r->st[i];
    const struct fz_side *sd = &r->side[i];
    FZ_CHECK(s->bytes == sd->data);
    FZ_CHECK(s->gap_bytes == sd->gap);
    FZ_CHECK(s->gaps == sd->gaps);
}

static void fz_teardown(struct fz_reasm *r, int i, bool set_base)
{
    cap_stream_free(&r->st[i], &r->pool_used);
    cap_stream_init(&r->st[i]);
    memset(&r->side[i], 0, sizeof(r->side[i]));
    if (set_base)
        cap_stream_set_base(&r->st[i], r->isn[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in;
    fz_in_init(&in, data, size);
    uint8_t cfg, b, base_mode;
    if (!fz_u8(&in, &cfg))
        return 0;
    struct fz_reasm r;
    memset(&r, 0, sizeof(r));
    r.lim.ooo_max = fz_ooo_max[cfg & 3];
    r.lim.pool_max = fz_pool_max[(cfg >> 2) & 3];
    r.lim.history = fz_history[(cfg >> 4) & 3];
    r.lim.evidence_max = fz_evidence[(cfg >> 6) & 3];
    uint32_t isn = 0;
    for (int k = 0; k < 4; k++) {
        if (!fz_u8(&in, &b))
            return 0;
        isn |= (uint32_t)b << (8 * k);
    }
    r.isn[0] = isn;
    r.isn[1] = ~isn;
    if (!fz_u8(&in, &base_mode))
        return 0;
    for (int i = 0; i < 2; i++)
        fz_teardown(&r, i, (base_mode >> i) & 1);

    uint64_t frame = 0;
    uint8_t h;
    while (fz_u8(&in, &h)) {
        int i = h & 1;
        unsigned op = (h >> 1) & 7;
        frame++;
        struct sc_meta m = {frame, (sc_time)frame * 1000};
        struct fz_ctx c = {&r, i};
        int stop = 0;
        uint16_t rel;
        if (op <= 3) {
            uint8_t len, extra = 0;
            if (!fz_u16(&in, &rel) || !fz_u8(&in, &len))
                break;
            int64_t d = (int16_t)rel;
            if (h & 0x10)
                d *= 65536;
            uint32_t seq = (uint32_t)(r.isn[i] + (uint32_t)d);
            if ((h & 0x40) && !fz_u8(&in, &extra))
                break;
            const uint8_t *p;
            size_t n = fz_take(&in, len, &p);
            stop = cap_stream_segment(&r.st[i], &r.lim, &r.pool_used, seq, p, n, n + extra,
                                      (h & 0x80) ? CAP_GAP_FRAGMENT : CAP_GAP_SNAPLEN,
                                      (h & 0x20) != 0, &m, &fz_cb, &c);
        } else if (op == 4) {
            if (!fz_u16(&in, &rel))
                break;
            int64_t d = (int16_t)rel;
            if (h & 0x10)
                d *= 65536;
            stop = cap_stream_acked(&r.st[i], &r.lim, &r.pool_used,
                                    (uint32_t)(r.isn[i] + (uint32_t)d), &m, &fz_cb, &c);
        } else if (op == 5) {
            stop =
                cap_stream_flush(&r.st[i], &r.lim, &r.pool_used,
                                 (enum cap_gap_reason)((h >> 4) % CAP_GAP__COUNT), &m, &fz_cb, &c);
        } else if (op == 6) {
            fz_teardown(&r, i, (base_mode >> i) & 1);
        } else {
            uint8_t k;
            if (!fz_u8(&in, &k))
                break;
            r.side[i].stop_in = k;
        }
        if (stop) {
            /* The consumer lost interest: it tears the stream down. */
            fz_teardown(&r, i, (base_mode >> i) & 1);
        } else {
            fz_consistent(&r, i);
        }
        /* reasm.h: "*pool_used <= pool_max across all streams sharing a pool". */
        FZ_CHECK(r.pool_used <= r.lim.pool_max);
    }
    /* End of capture: what is held is delivered, holes become gaps. */
    for (int i = 0; i < 2; i++) {
        frame++;
        struct sc_meta m = {frame, (sc_time)frame * 1000};
        struct fz_ctx c = {&r, i};
        r.side[i].stop_in = 0;
        if (cap_stream_flush(&r.st[i], &r.lim, &r.pool_used, CAP_GAP_END, &m, &fz_cb, &c) == 0)
            fz_consistent(&r, i);
        cap_stream_free(&r.st[i], &r.pool_used);
    }
    FZ_CHECK(r.pool_used == 0);
    return 0;
}
