/* analyze.c - offline pipeline: capture -> tracker -> SMTP engine -> report. */
#include "cli/analyze.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capture/decode.h"
#include "capture/dump.h"
#include "cli/par.h"
#include "common/error.h"
#include "common/wire.h"

/* A session remembered for -w: where its packets are. */
struct an_sess {
    uint32_t file; /* index in the list of files */
    struct cap_addr addr[2];
    uint16_t port[2];
    uint64_t ctx; /* observation context (capture/decode.h) */
    uint64_t first_frame;
    bool flagged;
};

/* Per-run state shared by every flow. */
struct an_ctx {
    const struct an_options *opt;
    struct rep_writer *rep;
    struct heur_ctx *heur;
    struct rep_summary *sum;
    struct heur_finding *findings; /* HEUR_SESSION_FINDINGS_MAX, reused */
    struct smtp_settings smtp;     /* opt->smtp with this run's certificate cache */
    bool failed;                   /* a finding reached opt->fail_on */
    /* -w: every session (indexed by id - 1), to find the flagged ones again. */
    struct an_sess *sess;
    size_t nsess, sess_alloc;
    uint32_t file_index;
    bool sess_oom;
    void *user; /* for on_session / on_finding */
    const char *file;
    uint64_t next_id;
    uint64_t sessions;
    uint64_t empty;
    struct an_worker *worker; /* -j: set in a worker's context */
};

/* A capture event on a flow that has no SMTP session yet, kept until one is
 * created (and dropped with the flow if none ever is: an empty connection is
 * not reported).  A flow without data has one or two (midstream, eviction);
 * past AN_EARLY_EVENTS_MAX (a run of per-packet events such as malformed
 * options on bare ACKs) the session is created and takes them directly, its
 * event list being bounded by aggregation. */
#define AN_EARLY_EVENTS_MAX 8

struct an_event {
    struct an_event *next;
    const char *kind; /* static, as the tracker gives it */
    enum sc_dir dir;
    struct sc_meta meta;
    bool has_detail;
    char detail[]; /* copied: the tracker's may not outlive the call */
};

/* Per-flow consumer state.  The SMTP session is created when the flow's
 * first byte, gap or FIN arrives: a connection that never carries anything (a
 * SYN flood's half-open flows, the stray ACKs of connections already closed)
 * costs only this, its events held aside. */
struct an_flow {
    struct an_ctx *ctx;
    struct smtp_session *smtp;
    struct an_event *early, **early_tail; /* events before the session, in order */
    unsigned nearly;
    unsigned flags; /* for smtp_session_new */
    bool probe;
    uint8_t ipver, nencap;
    struct cap_encap *encap; /* NULL when nencap is 0 */
};

/* A session that ended and is to be reported: everything an__report needs,
 * taken from the tracker while the flow still existed.  With -j it travels
 * from the worker that tracked it to the thread that reports. */
struct an_done {
    struct par_item item; /* first: the merge key (par.h) */
    struct an_flow *f;    /* owns the SMTP session */
    const char *file;
    uint32_t file_index;
    enum cap_close why;
    char client[64], server[64];
    struct rep_tcp_side tcp[2];
    struct heur_tcp htcp[2];
    uint64_t first_frame, last_frame;
    sc_time start, end;
    bool partial;
    struct cap_addr addr[2]; /* for -w */
    uint16_t port[2];
    uint64_t ctx;
};

void an_options_defaults(struct an_options *o)
{
    memset(o, 0, sizeof(*o));
    cap_reader_defaults(&o->reader);
    cap_settings_defaults(&o->cap);
    smtp_settings_defaults(&o->smtp);
    o->transcript_lines = o->smtp.transcript_max; /* for --transcript */
    o->smtp.keep_transcript = true;               /* the rules read it */
    o->smtp.transcript_max = AN_RULES_TRANSCRIPT_MAX;
    heur_config_defaults(&o->heur);
    o->tls_ports[465 >> 3] |= (uint8_t)(1u << (465 & 7));
    o->fail_on = HEUR_LOW;
    o->rep.format = REP_TEXT;
    o->detect = true;
    o->progress_min_bytes = 50u * 1000u * 1000u;
}

/* Sets up what every run's context needs besides its output: the SMTP
 * settings and a certificate cache of its own.  Returns false on OOM. */
static bool an__ctx_init(struct an_ctx *c)
{
    c->smtp = c->opt->smtp;
    c->smtp.cert_cache = tls_cert_cache_new();
    return c->smtp.cert_cache != NULL;
}

static void an__ctx_free(struct an_ctx *c)
{
    tls_cert_cache_free(c->smtp.cert_cache);
    c->smtp.cert_cache = NULL;
}

static void *an__open(void *user, const struct cap_flow_info *fi)
{
    struct an_ctx *c = user;
    uint16_t sport = fi->side[SC_DIR_S2C].port;
    bool implicit = (c->opt->tls_ports[sport >> 3] >> (sport & 7)) & 1;
    bool port = implicit || cap_port_in(&c->opt->cap, sport);
    if (!port && (!c->opt->detect || !fi->handshake))
        return NULL;
    struct an_flow *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->flags = (port ? 0u : (unsigned)SMTP_F_PROBE) |
               (fi->handshake ? 0u : (unsigned)SMTP_F_MIDSTREAM) |
               (implicit ? (unsigned)SMTP_F_IMPLICIT_TLS : 0u);
    f->ctx = c;
    f->probe = !port;
    f->ipver = fi->ipver;
    if (fi->nencap && fi->encap) {
        f->encap = malloc(fi->nencap * sizeof(*f->encap));
        if (f->encap) {
            memcpy(f->encap, fi->encap, fi->nencap * sizeof(*f->encap));
            f->nencap = fi->nencap;
        }
    }
    f->early_tail = &f->early;
    return f;
}

static void an__early_free(struct an_flow *f)
{
    for (struct an_event *e = f->early, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    f->early = NULL;
    f->early_tail = &f->early;
    f->nearly = 0;
}

/* The flow's SMTP session, created on first use with the events that came
 * before it; NULL on OOM. */
static struct smtp_session *an__smtp(struct an_flow *f)
{
    if (f->smtp)
        return f->smtp;
    f->smtp = smtp_session_new(&f->ctx->smtp, f->flags);
    if (f->smtp)
        for (const struct an_event *e = f->early; e; e = e->next)
            sc_events_add(smtp_session_events(f->smtp), e->kind, e->dir, e->meta.frame, e->meta.ts,
                          e->has_detail ? e->detail : NULL);
    an__early_free(f);
    return f->smtp;
}

static int an__data(void *user, void *flow, enum sc_dir dir, uint64_t off, const uint8_t *p,
                    size_t n, const struct sc_meta *m)
{
    (void)user;
    struct an_flow *f = flow;
    if (!an__smtp(f))
        return 1; /* out of memory: the flow is dropped */
    return smtp_feed(f->smtp, dir, off, p, n, m) == SMTP_NOT_SMTP;
}

static int an__gap(void *user, void *flow, enum sc_dir dir, uint64_t off, uint64_t len,
                   enum cap_gap_reason why, const struct sc_meta *m)
{
    (void)user;
    (void)off;
    struct an_flow *f = flow;
    if (!an__smtp(f))
        return 1;
    if (why != CAP_GAP_ACKED)
        sc_events_add(smtp_session_events(f->smtp), cap_gap_reason_name(why), dir, m->frame, m->ts,
                      NULL);
    return smtp_gap(f->smtp, dir, len, m) == SMTP_NOT_SMTP;
}

static void an__event(void *user, void *flow, const char *kind, enum sc_dir dir,
                      const struct sc_meta *m, const char *detail)
{
    (void)user;
    struct an_flow *f = flow;
    if (f->smtp || (f->nearly >= AN_EARLY_EVENTS_MAX && an__smtp(f))) {
        sc_events_add(smtp_session_events(f->smtp), kind, dir, m->frame, m->ts, detail);
        return;
    }
    size_t dl = detail ? strlen(detail) : 0;
    struct an_event *e = malloc(sizeof(*e) + dl + 1);
    if (!e)
        return; /* out of memory: the event is lost, the analysis goes on */
    e->next = NULL;
    e->kind = kind;
    e->dir = dir;
    e->meta = *m;
    e->has_detail = detail != NULL;
    memcpy(e->detail, detail ? detail : "", dl + 1);
    *f->early_tail = e;
    f->early_tail = &e->next;
    f->nearly++;
}

static void an__fin(void *user, void *flow, enum sc_dir dir, const struct sc_meta *m)
{
    (void)user;
    struct an_flow *f = flow;
    if (an__smtp(f))
        smtp_fin(f->smtp, dir, m);
}

/* Counts findings in the summary and against the exit threshold, and marks
 * their sessions for -w. */
static void an__count(struct an_ctx *c, const struct heur_finding *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rep_summary_count(c->sum, &f[i]);
        if ((int)f[i].severity >= c->opt->fail_on) {
            c->failed = true;
            if (f[i].session >= 1 && f[i].session <= c->nsess)
                c->sess[f[i].session - 1].flagged = true;
        }
    }
}

/* Remembers where session `id` is, for -w. */
static void an__remember(struct an_ctx *c, uint64_t id, const struct an_done *d)
{
    if (!c->opt->write_flagged || c->sess_oom || id != c->nsess + 1)
        return;
    if (c->nsess == c->sess_alloc) {
        size_t want = c->sess_alloc ? c->sess_alloc * 2 : 256;
        struct an_sess *v = realloc(c->sess, want * sizeof(*v));
        if (!v) {
            c->sess_oom = true;
            return;
        }
        c->sess = v;
        c->sess_alloc = want;
    }
    struct an_sess *e = &c->sess[c->nsess++];
    memset(e, 0, sizeof(*e));
    e->file = d->file_index;
    for (int k = 0; k < 2; k++) {
        e->addr[k] = d->addr[k];
        e->port[k] = d->port[k];
    }
    e->ctx = d->ctx;
    e->first_frame = d->first_frame;
}

/* The TCP facts of one side that the rules use. */
static void an__heur_tcp(struct heur_tcp *h, const struct cap_side *sd, const struct cap_side *peer)
{
    memset(h, 0, sizeof(*h));
    h->packets = sd->packets;
    h->ttl_min = sd->ttl_min;
    h->ttl_max = sd->ttl_max;
    h->rst = sd->rst;
    h->rst_ttl = sd->rst_ttl;
    h->rst_ipid_mismatch = sd->rst_ipid_mismatch;
    h->rst_frame = sd->rst_frame;
    h->rst_ts = sd->rst_ts;
    h->last_ts = sd->last_ts;
    h->last_frame = sd->last_frame;
    if (sd->stream) {
        h->retransmits = sd->stream->retransmits;
        h->overlaps_diff = sd->stream->overlaps_diff;
        /* Unacknowledged data only means something when the peer's ACKs are
         * in the capture. */
        if (peer->packets > 0 && sd->stream->high > sd->stream->acked) {
            h->unacked = sd->stream->high - sd->stream->acked;
            h->tail_retx = sd->stream->tail_retx;
        }
    }
}

static void an__flow_free(struct an_flow *f)
{
    smtp_session_free(f->smtp);
    free(f->encap);
    an__early_free(f);
    free(f);
}

/* The flow ended: fills d and returns true when it is a session to report
 * (the flow then belongs to d), false when it is not (counted as an empty
 * connection where it is one; the caller frees the flow). */
static bool an__ended(struct an_ctx *c, struct an_flow *f, const struct cap_flow_info *fi,
                      enum cap_close why, const struct sc_meta *m, struct an_done *d)
{
    if (why == CAP_CLOSE_DROPPED)
        return false;
    if (!f->smtp) {
        /* Nothing ever arrived: an empty connection, or a probe never shown
         * to be SMTP (as a session fed nothing would be).  An evicted one
         * is counted as evicted. */
        if (!f->probe && !fi->evicted)
            c->empty++;
        return false;
    }
    smtp_close(f->smtp, m);
    const struct smtp_info *in = smtp_session_info(f->smtp);
    if (f->probe && !smtp_session_confirmed(f->smtp))
        return false; /* never shown to be SMTP */
    if (in->bytes[0] == 0 && in->bytes[1] == 0 && in->gaps == 0) {
        c->empty++;
        return false;
    }
    d->f = f;
    d->file = c->file;
    d->file_index = c->file_index;
    cap_endpoint_str(d->client, sizeof(d->client), &fi->side[SC_DIR_C2S].addr,
                     fi->side[SC_DIR_C2S].port);
    cap_endpoint_str(d->server, sizeof(d->server), &fi->side[SC_DIR_S2C].addr,
                     fi->side[SC_DIR_S2C].port);
    /* A FIN seen before the capture ended still tells how it was closing. */
    if (why == CAP_CLOSE_EOF && (fi->fin_seen[0] || fi->fin_seen[1]))
        why = CAP_CLOSE_FIN;
    d->why = why;
    for (int k = 0; k < 2; k++) {
        const struct cap_side *sd = &fi->side[k];
        d->tcp[k] = (struct rep_tcp_side){
            .syn_seen = sd->syn_seen,
            .mss_present = sd->syn_opts.mss_present,
            .wscale_present = sd->syn_opts.wscale_present,
            .sack_perm = sd->syn_opts.sack_perm,
            .timestamps = sd->syn_opts.ts_present,
            .mss = sd->syn_opts.mss,
            .wscale = sd->syn_opts.wscale,
            .ttl = sd->first_ttl,
            .retransmits = sd->stream ? sd->stream->retransmits : 0,
            .overlaps_diff = sd->stream ? sd->stream->overlaps_diff : 0,
            .isn = sd->isn,
            .ttl_min = sd->ttl_min,
            .ttl_max = sd->ttl_max,
            .ipid_zero = sd->ipid_zero,
            .ipid_small = sd->ipid_small,
            .ipid_big = sd->ipid_big,
            .rst = sd->rst,
            .rst_ttl = sd->rst_ttl,
            .rst_frame = sd->rst_frame,
        };
        an__heur_tcp(&d->htcp[k], sd, &fi->side[!k]);
        d->addr[k] = sd->addr;
        d->port[k] = sd->port;
    }
    d->ctx = fi->ctx;
    d->first_frame = fi->first_frame;
    d->last_frame = fi->last_frame;
    d->start = fi->first_ts;
    d->end = fi->last_ts;
    d->partial = !fi->handshake;
    return true;
}

/* Runs the rules on an ended session, numbers it and reports it.  Sessions
 * come here in the order they ended in the capture. */
static void an__report(struct an_ctx *c, struct an_done *d)
{
    const struct smtp_info *in = smtp_session_info(d->f->smtp);
    struct heur_session hs = {
        .id = c->next_id + 1,
        .client = d->client,
        .server = d->server,
        .close = cap_close_name(d->why),
        .smtp = in,
    };
    hs.tcp[0] = d->htcp[0];
    hs.tcp[1] = d->htcp[1];
    an__remember(c, hs.id, d);
    enum heur_vantage vantage = HV_UNKNOWN;
    size_t nf = heur_session(c->heur, &hs, c->findings, HEUR_SESSION_FINDINGS_MAX, &vantage);
    /* Most severe first, as a reader wants them. */
    for (size_t i = 1; i < nf; i++)
        for (size_t k = i; k > 0 && c->findings[k - 1].severity < c->findings[k].severity; k--) {
            struct heur_finding t = c->findings[k];
            c->findings[k] = c->findings[k - 1];
            c->findings[k - 1] = t;
        }
    an__count(c, c->findings, nf);
    if (nf) {
        c->sum->sessions_flagged++;
        if (vantage == HV_OUTSIDE)
            c->sum->vantage_outside++;
        else if (vantage == HV_INSIDE)
            c->sum->vantage_inside++;
    }
    char encap[CAP_ENCAP_STR_MAX];
    cap_encap_str(encap, sizeof(encap), d->f->encap, d->f->nencap, d->f->ipver);
    struct rep_session rs = {
        .encap = encap,
        .id = ++c->next_id,
        .file = d->file,
        .client = d->client,
        .server = d->server,
        .first_frame = d->first_frame,
        .last_frame = d->last_frame,
        .start = d->start,
        .end = d->end,
        .close = cap_close_name(d->why),
        .partial = d->partial,
        .tcp = {d->tcp[0], d->tcp[1]},
        .smtp = in,
        .findings = c->findings,
        .n_findings = nf,
        .vantage = heur_vantage_name(vantage),
    };
    if (!c->opt->silent)
        rep_session(c->rep, &rs);
    if (c->opt->on_session)
        c->opt->on_session(c->user, &rs);
    c->sessions++;
}

/* ---- -j: parallel analysis (par.h) ----
 *
 * The reading thread decodes each packet far enough to know its connection
 * and gives it to the worker that owns the connection (a hash of its
 * endpoints and observation context); IP fragments go to every worker, which
 * all reassemble them and only the owner tracks the result.  Each worker has
 * its own tracker and SMTP sessions.  A session that ends becomes an
 * an_done with a key that orders it exactly where a single pipeline would
 * have ended it; the reading thread takes them in that order and runs the
 * rules, numbers and reports them, so the output is the same as with one
 * thread.  (Exceptions, under pressure only: with the flow table full,
 * each worker evicts from its own share of it.) */

enum an_phase {
    AN_PH_TICK,   /* time passing: idle expiry, fragments timing out */
    AN_PH_PACKET, /* the worker's own packet */
    AN_PH_FINISH, /* the end of the capture */
};

/* Key phases, in the order a single tracker acts within one frame. */
enum {
    AN_KEY_FRAG = 0,   /* datagrams given up (first fragments) */
    AN_KEY_IDLE = 1,   /* idle expiry, oldest activity first */
    AN_KEY_PACKET = 2, /* the packet itself */
    AN_KEY_EOF = 3,    /* end of capture, in order of creation */
};

/* -j: frames between two merges of the workers' output (and, with a mapped
 * capture, two checkpoints of how far every worker got, behind which its
 * pages go back); self-reading workers say how far they got as often. */
#define AN_CHECKPOINT_EVERY 1024
/* Self-reading workers: frames between two reports of how far a thread got
 * (par_reached); a fraction of PAR_AHEAD_FRAMES, so that the threads keep
 * close and one reads what another just brought into the cache. */
#define AN_REACH_EVERY 256

/* How connections are shared out among n workers: `local` of the
 * AN_SPLIT_BUCKETS buckets of the connection hash go to the last (the
 * reading thread's own), the rest evenly to the others. */
struct an_split {
    uint32_t n, local;
};

struct an_worker {
    struct an_ctx c; /* c.worker points here */
    struct cap_tracker *t;
    struct par *par;
    struct cap_reader *rd; /* self-reading (par_new_self): this thread's reader */
    uint32_t index;
    struct an_split split;
    uint64_t frame; /* being processed */
    enum an_phase ph;
    uint64_t sub;  /* items so far for this frame and phase */
    uint64_t lost; /* sessions lost to OOM */
};

static inline uint64_t an__mix64(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    return h;
}

/* One endpoint's share of a connection's hash, from the two 8-byte words of
 * its 16-byte address (struct cap_addr) and its port. */
static uint64_t an__ep_hash_w(uint64_t w0, uint64_t w1, uint16_t port)
{
    uint64_t h = (w0 ^ (w1 * 0x9e3779b97f4a7c15ull)) + port;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

static uint64_t an__ep_hash(const struct cap_addr *a, uint16_t port)
{
    uint64_t w0, w1;
    memcpy(&w0, a->b, 8);
    memcpy(&w1, a->b + 8, 8);
    return an__ep_hash_w(w0, w1, port);
}

/* The same for an IPv4 address, as the decoder stores it (::ffff:a.b.c.d:
 * the first word is zero, the second the bytes 0 0 ff ff a b c d). */
static uint64_t an__ep_hash_v4(const uint8_t *ip, uint16_t port)
{
    uint8_t b[8] = {0, 0, 0xff, 0xff, ip[0], ip[1], ip[2], ip[3]};
    uint64_t w1;
    memcpy(&w1, b, 8);
    return an__ep_hash_w(0, w1, port);
}

/* The reading thread is the last of the -j workers (par.h: local), and
 * also reads, routes and reports, so it takes a smaller share of the
 * connections: AN_LOCAL_WEIGHT_NUM / AN_LOCAL_WEIGHT_DEN of a pool
 * thread's.  With -j 2 that is an eighth of them.  Any split gives the same
 * output.  This one left the two threads of -j 2 within 52/48 (SMTP-only)
 * and 54/46 (mixed) of perf samples on the benchmark captures, where a
 * third gave 58/42 and 63/37 (docs/PERFORMANCE.md). */
#define AN_LOCAL_WEIGHT_NUM 1
#define AN_LOCAL_WEIGHT_DEN 7
/* With self-reading workers every thread reads the whole capture and none
 * routes for another, so the reading thread has only the merge, rules and
 * reports on top of its share: AN_SELF_WEIGHT_NUM / AN_SELF_WEIGHT_DEN of a
 * pool thread's (9/19 of the connections with -j 2).  That left the two
 * threads at 96 and 102 M instructions on smtp-50m; captures of many short
 * sessions would want less, as their reports weigh more
 * (docs/PERFORMANCE.md, fifth pass). */
#define AN_SELF_WEIGHT_NUM 9
#define AN_SELF_WEIGHT_DEN 10
/* Buckets of the connection hash the split is made in. */
#define AN_SPLIT_BUCKETS 4096u

/* The split over n workers: the reading thread's (worker n - 1) share is its
 * weight over the threads' total, n - 1 + weight. */
static struct an_split an__split(uint32_t n, bool self)
{
    uint64_t num = self ? AN_SELF_WEIGHT_NUM : AN_LOCAL_WEIGHT_NUM;
    uint64_t den = self ? AN_SELF_WEIGHT_DEN : AN_LOCAL_WEIGHT_DEN;
    struct an_split sp = {n, (uint32_t)(AN_SPLIT_BUCKETS * num / ((n - 1) * den + num))};
    return sp;
}

/* The worker owning a connection, from its endpoints and observation
 * context: the same for both directions (the endpoints' hashes are added,
 * so no comparison orders them; the reading thread computes this for every
 * packet).  Worker n - 1 is the reading thread's own. */
static inline uint32_t an__shard_hash(uint64_t ha, uint64_t hb, uint64_t ctx,
                                      const struct an_split *sp)
{
    uint64_t h = an__mix64(ctx, ha + hb);
    if (sp->n <= 1)
        return 0;
    if ((uint32_t)(h >> 52) < sp->local)
        return sp->n - 1;
    /* The low 32 bits scaled to [0, n - 1): a multiply, not a division. */
    return (uint32_t)(((h & 0xffffffffu) * (sp->n - 1)) >> 32);
}

/* The worker owning a TCP packet's connection: the same for both directions
 * and for every observation of the connection the tracker keys together. */
static uint32_t an__shard(const struct cap_packet *pkt, const struct an_split *sp)
{
    return an__shard_hash(an__ep_hash(&pkt->src, pkt->sport), an__ep_hash(&pkt->dst, pkt->dport),
                          pkt->ctx, sp);
}

/* The worker a decoded packet goes to: every worker for an IP fragment
 * (each reassembles them all, par.h), the connection's owner for TCP, and
 * any other packet by frame number (it only needs counting). */
static uint32_t an__owner(const struct cap_packet *pkt, const struct an_split *sp)
{
    return pkt->frag.present           ? PAR_ALL
           : pkt->status == CAP_ST_TCP ? an__shard(pkt, sp)
                                       : (uint32_t)(pkt->frame % sp->n);
}

/* The reading thread's short cut: the owner of an Ethernet frame carrying
 * an unfragmented TCP segment directly in IPv4 or IPv6 (no VLAN tag, tunnel
 * or IPv6 extension header), read from the raw bytes, so the packet is
 * decoded once, by its worker.  Such a packet decodes with no observation
 * context, so the owner is an__shard's.  False for anything else, which
 * goes through the full decode (a packet the decoder would call malformed
 * may be routed here: its one worker counts it all the same). */
static bool an__route_fast(const struct cap_record *rec, const struct an_split *sp, uint32_t *owner)
{
    const uint8_t *p = rec->data;
    size_t len = rec->caplen;
    if (rec->linktype != CAP_LINKTYPE_ETHERNET || len < 14 + 40)
        return false;
    uint16_t type = sc_load_be16(p + 12);
    const uint8_t *ip = p + 14, *tcp;
    uint64_t ha, hb;
    if (type == 0x0800) {
        size_t ihl = (size_t)(ip[0] & 15) * 4;
        if ((ip[0] >> 4) != 4 || ihl < 20 || ip[9] != 6 || (sc_load_be16(ip + 6) & 0x3fff) != 0 ||
            len < 14 + ihl + 20)
            return false;
        tcp = ip + ihl;
        ha = an__ep_hash_v4(ip + 12, sc_load_be16(tcp));
        hb = an__ep_hash_v4(ip + 16, sc_load_be16(tcp + 2));
    } else if (type == 0x86dd) {
        if ((ip[0] >> 4) != 6 || ip[6] != 6 || len < 14 + 40 + 20)
            return false;
        tcp = ip + 40;
        uint64_t w[4];
        memcpy(w, ip + 8, 32); /* source and destination addresses */
        ha = an__ep_hash_w(w[0], w[1], sc_load_be16(tcp));
        hb = an__ep_hash_w(w[2], w[3], sc_load_be16(tcp + 2));
    } else {
        return false;
    }
    *owner = an__shard_hash(ha, hb, 0, sp);
    return true;
}

static bool an__mine(void *user, const struct cap_packet *pkt)
{
    const struct an_worker *w = user;
    return an__shard(pkt, &w->split) == w->index;
}

static void an__worker_close(struct an_ctx *c, struct an_flow *f, const struct cap_flow_info *fi,
                             enum cap_close why, const struct sc_meta *m)
{
    struct an_worker *w = c->worker;
    struct an_done *d = malloc(sizeof(*d));
    if (!d) {
        if (f->smtp)
            w->lost++;
        an__flow_free(f);
        return;
    }
    enum cap_close orig = why;
    if (!an__ended(c, f, fi, why, m, d)) {
        free(d);
        an__flow_free(f);
        return;
    }
    struct par_key *k = &d->item.key;
    k->frame = w->frame;
    switch (w->ph) {
    case AN_PH_TICK:
        if (orig == CAP_CLOSE_TIMEOUT) {
            k->phase = AN_KEY_IDLE;
            k->sub = fi->touched_frame;
        } else {
            k->phase = AN_KEY_FRAG;
            k->sub = ++w->sub;
        }
        break;
    case AN_PH_PACKET:
        k->phase = AN_KEY_PACKET;
        k->sub = ++w->sub;
        break;
    case AN_PH_FINISH:
        k->frame = UINT64_MAX;
        if (orig == CAP_CLOSE_EOF) {
            k->phase = AN_KEY_EOF;
            k->sub = fi->created_frame;
        } else {
            k->phase = AN_KEY_PACKET;
            k->sub = ++w->sub;
        }
        break;
    }
    par_push(w->par, w->index, &d->item);
}

static void an__worker_run(void *user, const struct par_batch *b)
{
    struct an_worker *w = user;
    struct cap_packet pkt;
    for (size_t i = 0; i < b->n; i++) {
        const struct par_entry *e = &b->e[i];
        w->frame = e->frame;
        w->ph = AN_PH_TICK;
        w->sub = 0;
        cap_tracker_tick(w->t, e->frame, e->ts);
        if (e->tick)
            continue;
        pkt.frame = e->frame;
        pkt.ts = e->ts;
        pkt.caplen = e->caplen;
        pkt.wirelen = e->wirelen;
        cap_decode_ex(&pkt, e->linktype, e->data, e->caplen, &w->c.opt->cap.decode);
        w->ph = AN_PH_PACKET;
        cap_tracker_packet_ex(w->t, &pkt, CAP_PKT_CLOCKED | (e->counted ? 0 : CAP_PKT_UNCOUNTED));
    }
}

static void an__worker_finish(void *user)
{
    struct an_worker *w = user;
    w->frame = UINT64_MAX;
    w->ph = AN_PH_FINISH;
    w->sub = 0;
    cap_tracker_finish(w->t);
}

/* Worker w's part of one packet read by its own thread: a tick, and the
 * packet in full when w owns it (`pkt`: already decoded, or NULL).  A
 * packet is counted by its owner, one for every worker (a fragment) by
 * worker 0. */
static inline void an__worker_packet(struct an_worker *w, const struct cap_record *rec,
                                     uint32_t owner, const struct cap_packet *pkt)
{
    w->frame = rec->frame;
    w->ph = AN_PH_TICK;
    w->sub = 0;
    cap_tracker_tick(w->t, rec->frame, rec->ts);
    if (owner != w->index && owner != PAR_ALL)
        return;
    struct cap_packet own;
    if (!pkt) {
        own.frame = rec->frame;
        own.ts = rec->ts;
        own.caplen = rec->caplen;
        own.wirelen = rec->wirelen;
        cap_decode_ex(&own, rec->linktype, rec->data, rec->caplen, &w->c.opt->cap.decode);
        pkt = &own;
    }
    w->ph = AN_PH_PACKET;
    bool counted = owner == w->index || w->index == 0;
    cap_tracker_packet_ex(w->t, pkt, CAP_PKT_CLOCKED | (counted ? 0 : CAP_PKT_UNCOUNTED));
}

/* A self-reading worker's thread (par_new_self): the whole capture through
 * its own reader, routed as the reading thread routes it.  A read error ends
 * the walk at the record where it ends the reading thread's (the same
 * bytes); that thread reports it. */
static void an__worker_self(struct par *p, void *user)
{
    struct an_worker *w = user;
    w->par = p;
    struct cap_record rec;
    struct cap_packet pkt;
    while (cap_reader_next(w->rd, &rec) > 0) {
        uint32_t owner;
        const struct cap_packet *dec = NULL;
        if (!an__route_fast(&rec, &w->split, &owner)) {
            pkt.frame = rec.frame;
            pkt.ts = rec.ts;
            pkt.caplen = rec.caplen;
            pkt.wirelen = rec.wirelen;
            cap_decode_ex(&pkt, rec.linktype, rec.data, rec.caplen, &w->c.opt->cap.decode);
            owner = an__owner(&pkt, &w->split);
            dec = &pkt;
        }
        an__worker_packet(w, &rec, owner, dec);
        if (rec.frame % AN_REACH_EVERY == 0 && !par_reached(w->par, w->index, rec.frame))
            break;
    }
}

static void an__close(void *user, void *flow, const struct cap_flow_info *fi, enum cap_close why,
                      const struct sc_meta *m)
{
    struct an_ctx *c = user;
    struct an_flow *f = flow;
    if (c->worker) {
        an__worker_close(c, f, fi, why, m);
        return;
    }
    struct an_done d;
    if (an__ended(c, f, fi, why, m, &d))
        an__report(c, &d);
    an__flow_free(f);
}

/* Adds a finished tracker's counters to the summary (named ones by name, so
 * several files add up). */
static void an__named_add(struct rep_named *v, size_t *n, const char *name, uint64_t count)
{
    size_t i = 0;
    while (i < *n && strcmp(v[i].name, name) != 0)
        i++;
    if (i == *n) {
        if (*n >= REP_MAX_NAMED)
            return;
        v[i].name = name;
        v[i].count = 0;
        (*n)++;
    }
    v[i].count += count;
}

static void an__sum_tracker(struct rep_summary *sum, const struct cap_tracker_stats *ts)
{
    sum->packets += ts->packets;
    sum->tcp_flows += ts->flows;
    sum->not_ip += ts->by_status[CAP_ST_NOT_IP];
    sum->not_tcp += ts->by_status[CAP_ST_NOT_TCP];
    sum->ip_fragments += ts->defrag.fragments;
    sum->ip_reassembled += ts->defrag.reassembled;
    sum->ip_incomplete += ts->defrag.timed_out + ts->defrag.evicted;
    sum->ip_frag_conflicts += ts->defrag.conflicts;
    sum->malformed += ts->by_status[CAP_ST_MALFORMED];
    sum->link_unsupported += ts->by_status[CAP_ST_LINK_UNSUPPORTED];
    sum->evicted += ts->evicted;
    sum->ts_backwards += ts->ts_backwards;
    for (int k = 0; k < CAP_ENC__COUNT; k++)
        if (ts->encap[k])
            an__named_add(sum->decap, &sum->n_decap, cap_encap_name((enum cap_encap_kind)k),
                          ts->encap[k]);
    /* Reasons by name: the order does not depend on which packet came first
     * (or, with -j, on which worker saw it). */
    uint32_t order[sizeof(ts->unsupported) / sizeof(ts->unsupported[0])];
    uint32_t nu = ts->n_unsupported < sizeof(order) / sizeof(order[0])
                      ? ts->n_unsupported
                      : (uint32_t)(sizeof(order) / sizeof(order[0]));
    for (uint32_t i = 0; i < nu; i++) {
        uint32_t k = i;
        while (k > 0 && strcmp(ts->unsupported[order[k - 1]].what, ts->unsupported[i].what) > 0) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    for (uint32_t i = 0; i < nu; i++)
        an__named_add(sum->encap_unsupported, &sum->n_encap_unsupported,
                      ts->unsupported[order[i]].what, ts->unsupported[order[i]].count);
    sum->encap_unsupported_total += ts->by_status[CAP_ST_ENCAP_UNSUPPORTED];
}

static const struct cap_tracker_cb an__cb = {
    .open = an__open,
    .data = an__data,
    .gap = an__gap,
    .event = an__event,
    .fin = an__fin,
    .close = an__close,
};

static double an__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void an__note_linktype(struct rep_summary *sum, uint32_t lt)
{
    for (uint32_t i = 0; i < sum->n_unsupported; i++) {
        if (sum->unsupported_linktypes[i] == lt) {
            sum->unsupported_counts[i]++;
            return;
        }
    }
    if (sum->n_unsupported < 8) {
        sum->unsupported_linktypes[sum->n_unsupported] = lt;
        sum->unsupported_counts[sum->n_unsupported++] = 1;
    }
}

#define AN_CHECKPOINTS 256

/* The pipeline one file goes through: a tracker in this thread, or (-j)
 * workers with a tracker each. */
struct an_pipe {
    struct cap_tracker *t; /* one thread */
    struct par *par;       /* -j */
    struct an_worker *w;
    uint32_t n;
    struct an_split split;
    bool stable;   /* the reader's records stay valid: handed over, not copied */
    bool self;     /* the workers read the capture themselves (par_new_self) */
    uint64_t lost; /* packets that could not be queued (OOM) */
    /* stable: (frame, input offset after it) every AN_CHECKPOINT_EVERY
     * frames, so the reader's pages go back once every worker is past them. */
    struct cap_reader *rd;
    struct an_ctx *c;
    struct {
        uint64_t frame, offset;
    } cp[AN_CHECKPOINTS];
    unsigned cp_head, cp_len;
};

/* In the reading thread, in capture order; the session goes back to its
 * worker to be freed (memory is freed by the thread that allocated it:
 * glibc's arenas then never contend). */
static void an__par_out(void *user, struct par_item *it)
{
    struct an_pipe *pp = user;
    an__report(pp->c, (struct an_done *)(void *)it);
    par_recycle(pp->par, it);
}

/* In the worker that made it. */
static void an__par_release(void *user, struct par_item *it)
{
    (void)user;
    struct an_done *d = (struct an_done *)(void *)it;
    an__flow_free(d->f);
    free(d);
}

static void an__workers_free(struct an_worker *w, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        cap_tracker_free(w[i].t);
        an__ctx_free(&w[i].c);
        cap_reader_free(w[i].rd);
    }
    free(w);
}

static bool an__pipe_new(struct an_pipe *pp, struct an_ctx *c, const struct cap_settings *cs,
                         uint32_t n, struct cap_reader *rd)
{
    memset(pp, 0, sizeof(*pp));
    pp->n = n;
    pp->rd = rd;
    pp->c = c;
    if (n <= 1) {
        pp->t = cap_tracker_new(cs, &an__cb, c);
        return pp->t != NULL;
    }
    /* With a mapped file (or memory), every thread reads it itself. */
    pp->stable = cap_reader_stable(rd);
    pp->self = pp->stable;
    pp->split = an__split(n, pp->self);
    /* The flow table and the out-of-order pool are shared out in proportion
     * to the connections each worker owns, so the caps hold for the whole
     * run. */
    uint32_t lb = pp->split.local;
    struct cap_settings ws = *cs, ls = *cs;
    ls.max_flows = (uint32_t)((uint64_t)cs->max_flows * lb / AN_SPLIT_BUCKETS);
    ls.pool_max = (size_t)((uint64_t)cs->pool_max * lb / AN_SPLIT_BUCKETS);
    ws.max_flows = (cs->max_flows - ls.max_flows) / (n - 1);
    ws.pool_max = (cs->pool_max - ls.pool_max) / (n - 1);
    if (ls.max_flows == 0)
        ls.max_flows = 1;
    if (ws.max_flows == 0)
        ws.max_flows = 1;
    pp->w = calloc(n, sizeof(*pp->w));
    if (!pp->w)
        return false;
    void *users[PAR_MAX_WORKERS];
    for (uint32_t i = 0; i < n; i++) {
        struct an_worker *w = &pp->w[i];
        w->c = (struct an_ctx){
            .opt = c->opt, .file = c->file, .file_index = c->file_index, .worker = w};
        w->index = i;
        w->split = pp->split;
        if (!an__ctx_init(&w->c) ||
            !(w->t = cap_tracker_new(i == n - 1 ? &ls : &ws, &an__cb, &w->c)) ||
            (pp->self && i < n - 1 && cap_reader_open_view(&w->rd, rd) < 0)) {
            an__workers_free(pp->w, i + 1);
            return false;
        }
        cap_tracker_set_owner(w->t, an__mine, w);
        users[i] = w;
    }
    if (pp->self)
        pp->par = par_new_self(n, an__worker_self, an__worker_finish, an__par_release, users);
    else
        pp->par = par_new(n, true, an__worker_run, an__worker_finish, an__par_release, users);
    if (!pp->par) {
        an__workers_free(pp->w, n);
        return false;
    }
    /* A pool thread reads it only after a batch's hand-over; a self-reading
     * thread is given it (an__worker_self), so only the local one is set. */
    for (uint32_t i = pp->self ? n - 1 : 0; i < n; i++)
        pp->w[i].par = pp->par;
    if (pp->stable)
        cap_reader_hold(rd);
    return true;
}

static void an__pipe_route(struct an_pipe *pp, const struct cap_record *rec, uint32_t owner,
                           const struct cap_packet *pkt);

static void an__pipe_packet(struct an_pipe *pp, const struct cap_record *rec,
                            const struct cap_packet *pkt)
{
    if (!pp->par) {
        cap_tracker_packet(pp->t, pkt);
        return;
    }
    an__pipe_route(pp, rec, an__owner(pkt, &pp->split), pkt);
}

/* The reading thread's part of a packet (its own worker, the last, as
 * an__worker_packet), the hand-over to the pool threads when they do not
 * read the capture themselves, and every AN_CHECKPOINT_EVERY frames the
 * merge of what the workers produced and the pages every worker is past. */
static void an__pipe_route(struct an_pipe *pp, const struct cap_record *rec, uint32_t owner,
                           const struct cap_packet *pkt)
{
    an__worker_packet(&pp->w[pp->n - 1], rec, owner, pkt);
    if (!pp->self) {
        par_local_reached(pp->par, rec->frame);
        if (!par_packet(pp->par, owner, rec->frame, rec->ts, rec->data, rec->caplen, rec->wirelen,
                        rec->linktype, pp->stable))
            pp->lost++;
    } else if (rec->frame % AN_REACH_EVERY == 0) {
        (void)par_reached(pp->par, pp->n - 1, rec->frame);
    }
    if (rec->frame % AN_CHECKPOINT_EVERY == 0) {
        par_drain(pp->par, an__par_out, pp);
        if (pp->stable) {
            if (pp->cp_len == AN_CHECKPOINTS) { /* workers far behind: keep the newest */
                pp->cp_head = (pp->cp_head + 1) % AN_CHECKPOINTS;
                pp->cp_len--;
            }
            unsigned k = (pp->cp_head + pp->cp_len++) % AN_CHECKPOINTS;
            pp->cp[k].frame = rec->frame;
            pp->cp[k].offset = cap_reader_offset(pp->rd);
            uint64_t done = par_frontier(pp->par), upto = 0;
            while (pp->cp_len && pp->cp[pp->cp_head].frame <= done) {
                upto = pp->cp[pp->cp_head].offset;
                pp->cp_head = (pp->cp_head + 1) % AN_CHECKPOINTS;
                pp->cp_len--;
            }
            if (upto)
                cap_reader_release(pp->rd, upto);
        }
    }
}

/* Ends the file: closes what is open, reports it, adds the counters up.
 * Returns 0, or -1 if sessions or packets were lost to OOM. */
static int an__pipe_finish(struct an_pipe *pp, struct an_ctx *c, struct rep_summary *sum)
{
    if (!pp->par) {
        cap_tracker_finish(pp->t);
        an__sum_tracker(sum, cap_tracker_stats(pp->t));
        cap_tracker_free(pp->t);
        return 0;
    }
    an__worker_finish(&pp->w[pp->n - 1]); /* the reading thread's own */
    par_local_reached(pp->par, UINT64_MAX);
    par_finish(pp->par, an__par_out, pp);
    uint64_t lost = pp->lost;
    /* One tracker's worth of counters, so names come in the same order as
     * with one thread.  Every worker reassembled every fragment: those
     * counts are worker 0's. */
    struct cap_tracker_stats all = *cap_tracker_stats(pp->w[0].t);
    for (uint32_t i = 0; i < pp->n; i++) {
        c->empty += pp->w[i].c.empty;
        lost += pp->w[i].lost;
        if (i == 0)
            continue;
        cap_tracker_stats_add(&all, cap_tracker_stats(pp->w[i].t));
    }
    an__sum_tracker(sum, &all);
    par_free(pp->par);
    an__workers_free(pp->w, pp->n);
    return lost ? -1 : 0;
}

/* Analyses one file; returns 0, or 2 if it could not be read completely. */
static int an__file(struct an_ctx *c, const char *name, struct rep_summary *sum)
{
    const struct an_options *o = c->opt;
    int fd;
    bool is_stdin = strcmp(name, "-") == 0;
    if (is_stdin) {
        fd = STDIN_FILENO;
        c->file = "-";
    } else {
        fd = open(name, O_RDONLY | O_CLOEXEC);
        c->file = name;
        if (fd < 0) {
            fprintf(stderr, "smtpscope: %s: %s\n", name, strerror(errno));
            return 2;
        }
    }
    struct stat st;
    uint64_t size = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        size = (uint64_t)st.st_size;
    bool progress = !o->quiet && size > o->progress_min_bytes && isatty(STDERR_FILENO);

    struct cap_reader *rd = NULL;
    int rc = cap_reader_open_fd(&rd, fd, &o->reader);
    if (rc < 0) {
        an_read_error(name, rd, rc, (uint64_t)-1);
        cap_reader_free(rd);
        if (!is_stdin)
            close(fd);
        return 2;
    }
    /* Implicit-TLS ports are server ports too. */
    struct cap_settings cs = o->cap;
    for (size_t i = 0; i < sizeof(cs.ports); i++)
        cs.ports[i] |= o->tls_ports[i];
    uint32_t nw = o->jobs > 1 ? o->jobs : 1;
    struct an_pipe pp;
    if (!an__pipe_new(&pp, c, &cs, nw, rd)) {
        fprintf(stderr, "smtpscope: %s: out of memory\n", name);
        cap_reader_free(rd);
        if (!is_stdin)
            close(fd);
        return 2;
    }
    struct cap_record rec;
    struct cap_packet pkt;
    double t0 = an__now(), last_progress = t0;
    bool progress_shown = false;
    int status = 0;
    uint64_t packets = 0;
    for (;;) {
        rc = cap_reader_next(rd, &rec);
        if (rc <= 0)
            break;
        packets++;
        uint32_t owner;
        if (pp.par && an__route_fast(&rec, &pp.split, &owner)) {
            sum->bytes += rec.caplen;
            an__pipe_route(&pp, &rec, owner, NULL);
        } else {
            pkt.frame = rec.frame;
            pkt.ts = rec.ts;
            pkt.caplen = rec.caplen;
            pkt.wirelen = rec.wirelen;
            enum cap_status stt =
                cap_decode_ex(&pkt, rec.linktype, rec.data, rec.caplen, &o->cap.decode);
            if (stt == CAP_ST_LINK_UNSUPPORTED)
                an__note_linktype(sum, rec.linktype);
            sum->bytes += rec.caplen;
            an__pipe_packet(&pp, &rec, &pkt);
        }
        if (progress && (rec.frame & 0xffff) == 0) {
            double now = an__now();
            if (now - last_progress >= 0.5) {
                last_progress = now;
                progress_shown = true;
                uint64_t done = cap_reader_offset(rd);
                fprintf(stderr, "\rsmtpscope: %s: %3.0f%%  %7.1f MB/s  %" PRIu64 " sessions ", name,
                        100.0 * (double)done / (double)size,
                        (double)done / 1e6 / (now - t0 > 0 ? now - t0 : 1), c->sessions);
            }
        }
    }
    if (progress_shown)
        fprintf(stderr, "\r%*s\r", 72, "");
    if (rc < 0) {
        /* Report what was found before the problem, then say what it was. */
        an_read_error(name, rd, rc, packets);
        status = 2;
    }
    if (an__pipe_finish(&pp, c, sum) != 0) {
        fprintf(stderr, "smtpscope: %s: out of memory: some sessions were not analysed\n", name);
        status = 2;
    }
    cap_reader_free(rd);
    if (!is_stdin)
        close(fd);
    return status;
}

/* Orders sessions by their endpoints (lower endpoint first, so a packet in
 * either direction finds them by binary search), then by first frame. */
struct an_key {
    struct cap_addr a[2];
    uint16_t p[2];
    uint64_t ctx;
    uint64_t first_frame;
    bool flagged;
};

/* -w: fragmented datagrams whose first fragment was written, so their other
 * fragments follow it (a ring of the most recent; fragments are rare). */
#define AN_FRAG_RING 1024
struct an_fragkey {
    struct cap_addr src, dst;
    uint32_t id;
    uint8_t ipver;
};

static int an__ep_cmp(const struct cap_addr *a, uint16_t pa, const struct cap_addr *b, uint16_t pb)
{
    int r = memcmp(a->b, b->b, sizeof(a->b));
    return r ? r : (pa > pb) - (pa < pb);
}

static void an__key(struct an_key *k, const struct cap_addr *a, uint16_t pa,
                    const struct cap_addr *b, uint16_t pb)
{
    bool swap = an__ep_cmp(a, pa, b, pb) > 0;
    k->a[0] = swap ? *b : *a;
    k->p[0] = swap ? pb : pa;
    k->a[1] = swap ? *a : *b;
    k->p[1] = swap ? pa : pb;
}

static int an__key_cmp(const void *x, const void *y)
{
    const struct an_key *a = x, *b = y;
    int r = an__ep_cmp(&a->a[0], a->p[0], &b->a[0], b->p[0]);
    if (!r)
        r = an__ep_cmp(&a->a[1], a->p[1], &b->a[1], b->p[1]);
    if (!r)
        r = (a->ctx > b->ctx) - (a->ctx < b->ctx);
    if (!r)
        r = (a->first_frame > b->first_frame) - (a->first_frame < b->first_frame);
    return r;
}

/* Second pass of one file: copies the packets of its flagged sessions. */
static int an__write_file(struct an_ctx *c, const char *name, uint32_t idx, struct cap_dump *d,
                          uint64_t *other_link)
{
    /* Every session of the file goes in (a later one with the same endpoints
     * ends the earlier one's packets); only flagged ones are written. */
    size_t n = 0, flagged = 0;
    for (size_t i = 0; i < c->nsess; i++) {
        n += c->sess[i].file == idx;
        flagged += c->sess[i].file == idx && c->sess[i].flagged;
    }
    if (flagged == 0)
        return 0;
    struct an_key *keys = calloc(n, sizeof(*keys));
    if (!keys) {
        fprintf(stderr, "smtpscope: %s: out of memory\n", c->opt->write_flagged);
        return 2;
    }
    size_t k = 0;
    for (size_t i = 0; i < c->nsess; i++) {
        const struct an_sess *e = &c->sess[i];
        if (e->file != idx)
            continue;
        an__key(&keys[k], &e->addr[0], e->port[0], &e->addr[1], e->port[1]);
        keys[k].ctx = e->ctx;
        keys[k].first_frame = e->first_frame;
        keys[k++].flagged = e->flagged;
    }
    qsort(keys, n, sizeof(*keys), an__key_cmp);
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    struct cap_reader *rd = NULL;
    int status = 0;
    if (fd < 0 || cap_reader_open_fd(&rd, fd, &c->opt->reader) < 0) {
        fprintf(stderr, "smtpscope: %s: cannot read it again for -w: %s\n", name,
                fd < 0 ? strerror(errno)
                : rd   ? cap_reader_errmsg(rd)
                       : "out of memory");
        status = 2;
    }
    struct cap_record rec;
    struct cap_packet pkt;
    struct an_fragkey *ring = calloc(AN_FRAG_RING, sizeof(*ring));
    size_t nring = 0;
    if (!ring)
        status = 2;
    while (status == 0 && cap_reader_next(rd, &rec) > 0) {
        memset(&pkt, 0, sizeof(pkt));
        enum cap_status st =
            cap_decode_ex(&pkt, rec.linktype, rec.data, rec.caplen, &c->opt->cap.decode);
        const struct cap_frag *fr = &pkt.frag;
        bool write = false;
        if (st != CAP_ST_TCP) {
            /* A later fragment of a datagram whose first fragment was written. */
            for (size_t i = 0; fr->present && i < nring && i < AN_FRAG_RING && !write; i++)
                write = ring[i].id == fr->id && ring[i].ipver == fr->ipver &&
                        memcmp(&ring[i].src, &fr->src, sizeof(fr->src)) == 0 &&
                        memcmp(&ring[i].dst, &fr->dst, sizeof(fr->dst)) == 0;
            if (!write)
                continue;
        }
        struct an_key q;
        an__key(&q, &pkt.src, pkt.sport, &pkt.dst, pkt.dport);
        q.ctx = pkt.ctx;
        /* The first key with these endpoints, then the one whose frames hold it. */
        size_t lo = 0, hi = n;
        q.first_frame = 0;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (an__key_cmp(&keys[mid], &q) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        /* The packet belongs to the last session with these endpoints that
         * started at or before it (stragglers after a close included). */
        const struct an_key *owner = NULL;
        for (size_t i = lo; i < n && !write; i++) {
            if (an__ep_cmp(&keys[i].a[0], keys[i].p[0], &q.a[0], q.p[0]) ||
                an__ep_cmp(&keys[i].a[1], keys[i].p[1], &q.a[1], q.p[1]) || keys[i].ctx != q.ctx ||
                keys[i].first_frame > rec.frame)
                break;
            owner = &keys[i];
        }
        if (!write && owner && owner->flagged && fr->present) {
            struct an_fragkey *e = &ring[nring++ % AN_FRAG_RING];
            e->src = fr->src;
            e->dst = fr->dst;
            e->id = fr->id;
            e->ipver = fr->ipver;
        }
        if (write || (owner && owner->flagged)) {
            int w = cap_dump_write(d, rec.linktype, rec.ts, rec.data, rec.caplen, rec.wirelen);
            if (w > 0)
                (*other_link)++;
            if (w < 0) {
                fprintf(stderr, "smtpscope: %s: write error\n", c->opt->write_flagged);
                status = 2;
            }
        }
    }
    cap_reader_free(rd);
    if (fd >= 0)
        close(fd);
    free(keys);
    free(ring);
    return status;
}

/* -w: the flagged sessions' packets, file by file. */
static int an__write_flagged(struct an_ctx *c, char *const *files, int nfiles, struct cap_dump *d)
{
    if (c->sess_oom) {
        fprintf(stderr, "smtpscope: %s: out of memory remembering sessions; not written\n",
                c->opt->write_flagged);
        return 2;
    }
    int status = 0;
    uint64_t other_link = 0;
    for (int i = 0; i < nfiles && status == 0; i++)
        status = an__write_file(c, files[i], (uint32_t)i, d, &other_link);
    if (other_link)
        fprintf(stderr,
                "smtpscope: %s: %" PRIu64
                " packets of flagged sessions have another link type than the first and "
                "were left out (a pcap holds one link type)\n",
                c->opt->write_flagged, other_link);
    return status;
}

int an_run(const struct an_options *o, char *const *files, int nfiles, FILE *out)
{
    struct rep_writer *w = rep_new(out, &o->rep);
    if (!w) {
        fprintf(stderr, "smtpscope: out of memory\n");
        return 2;
    }
    struct cap_dump *dump = NULL;
    if (o->write_flagged) {
        /* Created first: an unwritable path fails before any work. */
        char err[512];
        dump = cap_dump_open(o->write_flagged, err, sizeof(err));
        if (!dump) {
            fprintf(stderr, "smtpscope: %s\n", err);
            rep_free(w);
            return 2;
        }
    }
    struct rep_summary sum;
    memset(&sum, 0, sizeof(sum));
    struct an_ctx c = {.opt = o, .rep = w, .sum = &sum, .user = o->user};
    c.heur = heur_new(&o->heur);
    c.findings = calloc(HEUR_FINISH_MAX > HEUR_SESSION_FINDINGS_MAX ? HEUR_FINISH_MAX
                                                                    : HEUR_SESSION_FINDINGS_MAX,
                        sizeof(*c.findings));
    if (!an__ctx_init(&c) || !c.heur || !c.findings) {
        fprintf(stderr, "smtpscope: out of memory\n");
        an__ctx_free(&c);
        heur_free(c.heur);
        free(c.findings);
        cap_dump_close(dump);
        rep_free(w);
        return 2;
    }
    double t0 = an__now();
    int status = 0;
    for (int i = 0; i < nfiles; i++) {
        sum.files++;
        c.file_index = (uint32_t)i;
        if (an__file(&c, files[i], &sum) != 0) {
            sum.files_failed++;
            status = 2;
        }
    }
    /* Findings that need every session to a server. */
    size_t nf;
    while ((nf = heur_finish(c.heur, c.findings, HEUR_FINISH_MAX)) > 0) {
        an__count(&c, c.findings, nf);
        for (size_t i = 0; i < nf && !o->silent; i++)
            rep_finding(w, &c.findings[i]);
        if (o->on_finding)
            for (size_t i = 0; i < nf; i++)
                o->on_finding(o->user, &c.findings[i]);
    }
    heur_free(c.heur);
    free(c.findings);
    an__ctx_free(&c);
    if (dump) {
        if (an__write_flagged(&c, files, nfiles, dump) != 0)
            status = 2;
        sum.packets_written = cap_dump_count(dump);
        sum.write_flagged = o->write_flagged;
        if (cap_dump_close(dump) != 0) {
            fprintf(stderr, "smtpscope: %s: write error\n", o->write_flagged);
            status = 2;
        }
    }
    free(c.sess);
    sum.sessions = c.sessions;
    sum.empty_connections = c.empty;
    sum.elapsed = an__now() - t0;
    if (o->summary_out)
        *o->summary_out = sum;
    if (!o->silent)
        rep_summary(w, &sum);
    if (rep_free(w) != 0) {
        fprintf(stderr, "smtpscope: %s: write error: %s\n",
                o->output_name ? o->output_name : "standard output", strerror(errno));
        return 2;
    }
    if (status == 0 && c.failed)
        status = 1;
    return status;
}

void an_read_error(const char *file, const struct cap_reader *rd, int rc, uint64_t packets)
{
    const char *msg = rd && cap_reader_errmsg(rd)[0] ? cap_reader_errmsg(rd) : sc_strerror(rc);
    if (packets == (uint64_t)-1)
        fprintf(stderr, "smtpscope: %s: %s\n", file, msg);
    else
        fprintf(stderr, "smtpscope: %s: %s; results cover the %" PRIu64 " packets before it\n",
                file, msg, packets);
    const char *hint = NULL;
    switch (rc) {
    case SC_EFORMAT:
    case SC_EUNSUPP:
        hint = "smtpscope reads pcap and pcapng as tcpdump -w, tshark -w and dumpcap write "
               "them; convert other formats with editcap -F pcap (Wireshark)";
        break;
    case SC_ETRUNC:
        hint = "the file was cut short: a capture still being written, or an incomplete copy; "
               "stop the capture (or copy it again) and re-run";
        break;
    case SC_ECORRUPT:
    case SC_ELIMIT:
        hint = "the file is damaged at that point; pcapfix (Debian package pcapfix) may "
               "recover the packets after it";
        break;
    default:
        break;
    }
    if (hint)
        fprintf(stderr, "smtpscope: %s: hint: %s\n", file, hint);
}

/* ---- one capture, two vantages ---- */

int an_split(const struct an_options *o, const char *name, an_split_fn side_of, void *split_user,
             void *users[2], uint64_t *unassigned)
{
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "smtpscope: %s: %s\n", name, strerror(errno));
        return 2;
    }
    struct cap_reader *rd = NULL;
    int rc = cap_reader_open_fd(&rd, fd, &o->reader);
    if (rc < 0) {
        an_read_error(name, rd, rc, (uint64_t)-1);
        cap_reader_free(rd);
        close(fd);
        return 2;
    }
    struct rep_summary sum[2];
    memset(sum, 0, sizeof(sum));
    struct an_ctx c[2];
    struct cap_tracker *t[2] = {NULL, NULL};
    struct cap_settings cs = o->cap;
    for (size_t i = 0; i < sizeof(cs.ports); i++)
        cs.ports[i] |= o->tls_ports[i];
    int status = 0;
    for (int side = 0; side < 2; side++) {
        c[side] = (struct an_ctx){.opt = o, .sum = &sum[side], .user = users[side], .file = name};
        c[side].heur = heur_new(&o->heur);
        c[side].findings =
            calloc(HEUR_FINISH_MAX > HEUR_SESSION_FINDINGS_MAX ? HEUR_FINISH_MAX
                                                               : HEUR_SESSION_FINDINGS_MAX,
                   sizeof(*c[side].findings));
        t[side] = cap_tracker_new(&cs, &an__cb, &c[side]);
        if (!an__ctx_init(&c[side]) || !c[side].heur || !c[side].findings || !t[side])
            status = 2;
    }
    struct cap_record rec;
    struct cap_packet pkt;
    uint64_t npackets = 0;
    while (status == 0 && (rc = cap_reader_next(rd, &rec)) > 0) {
        npackets++;
        pkt.frame = rec.frame;
        pkt.ts = rec.ts;
        pkt.caplen = rec.caplen;
        pkt.wirelen = rec.wirelen;
        cap_decode_ex(&pkt, rec.linktype, rec.data, rec.caplen, &o->cap.decode);
        int side = side_of(split_user, &pkt);
        if (side < 0 || side > 1) {
            (*unassigned)++;
            continue;
        }
        cap_tracker_packet(t[side], &pkt);
    }
    if (status == 0 && rc < 0) {
        an_read_error(name, rd, rc, npackets);
        status = 2;
    }
    if (status == 2 && rc >= 0)
        fprintf(stderr, "smtpscope: %s: out of memory\n", name);
    for (int side = 0; side < 2; side++) {
        if (t[side]) {
            cap_tracker_finish(t[side]);
            cap_tracker_free(t[side]);
        }
        heur_free(c[side].heur);
        free(c[side].findings);
        free(c[side].sess);
        an__ctx_free(&c[side]);
    }
    cap_reader_free(rd);
    close(fd);
    return status;
}

/* ---- one running analysis fed packet by packet (live capture) ---- */

struct an_stream {
    struct an_ctx c;
    struct rep_writer *w;
    struct rep_summary sum;
    struct cap_tracker *t;
    double t0;
};

struct an_stream *an_stream_new(const struct an_options *o, FILE *out, const char *label)
{
    struct an_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->w = rep_new(out, &o->rep);
    s->c = (struct an_ctx){.opt = o, .rep = s->w, .sum = &s->sum, .user = o->user, .file = label};
    s->c.heur = heur_new(&o->heur);
    s->c.findings = calloc(HEUR_FINISH_MAX > HEUR_SESSION_FINDINGS_MAX ? HEUR_FINISH_MAX
                                                                       : HEUR_SESSION_FINDINGS_MAX,
                           sizeof(*s->c.findings));
    struct cap_settings cs = o->cap;
    for (size_t i = 0; i < sizeof(cs.ports); i++)
        cs.ports[i] |= o->tls_ports[i];
    s->t = cap_tracker_new(&cs, &an__cb, &s->c);
    s->t0 = an__now();
    if (!an__ctx_init(&s->c) || !s->w || !s->c.heur || !s->c.findings || !s->t) {
        an_stream_free(s);
        return NULL;
    }
    s->sum.files = 1;
    return s;
}

void an_stream_packet(struct an_stream *s, const struct cap_record *rec,
                      const struct cap_packet *pkt)
{
    if (pkt->status == CAP_ST_LINK_UNSUPPORTED)
        an__note_linktype(&s->sum, rec->linktype);
    s->sum.bytes += rec->caplen;
    cap_tracker_packet(s->t, pkt);
}

void an_stream_write_stats(struct an_stream *s, const struct rep_stats *st)
{
    if (!s->c.opt->silent)
        rep_stats(s->w, st);
}

void an_stream_tick(struct an_stream *s, sc_time now)
{
    cap_tracker_advance(s->t, now);
}

void an_stream_set_output(struct an_stream *s, FILE *out)
{
    rep_set_output(s->w, out);
}

void an_stream_counts(const struct an_stream *s, struct an_stream_counts *out)
{
    const struct cap_tracker_stats *ts = cap_tracker_stats(s->t);
    memset(out, 0, sizeof(*out));
    out->packets = ts->packets;
    out->bytes = s->sum.bytes;
    out->sessions_open = cap_tracker_flow_count(s->t);
    out->sessions = s->c.sessions;
    for (int i = 0; i <= HEUR_HIGH; i++)
        out->findings += s->sum.by_severity[i];
    out->failed = s->c.failed;
}

int an_stream_finish(struct an_stream *s, uint64_t drops)
{
    cap_tracker_finish(s->t);
    size_t nf;
    while ((nf = heur_finish(s->c.heur, s->c.findings, HEUR_FINISH_MAX)) > 0) {
        an__count(&s->c, s->c.findings, nf);
        for (size_t i = 0; i < nf && !s->c.opt->silent; i++)
            rep_finding(s->w, &s->c.findings[i]);
    }
    struct rep_summary *sum = &s->sum;
    an__sum_tracker(sum, cap_tracker_stats(s->t));
    sum->sessions = s->c.sessions;
    sum->empty_connections = s->c.empty;
    sum->elapsed = an__now() - s->t0;
    sum->live = true;
    sum->drops = drops;
    if (!s->c.opt->silent)
        rep_summary(s->w, sum);
    return s->c.failed ? 1 : 0;
}

void an_stream_free(struct an_stream *s)
{
    if (!s)
        return;
    cap_tracker_free(s->t);
    heur_free(s->c.heur);
    free(s->c.findings);
    free(s->c.sess);
    an__ctx_free(&s->c);
    if (s->w)
        rep_free(s->w);
    free(s);
}
