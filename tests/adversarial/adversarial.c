/* adversarial.c - hostile captures made at test time, run through smtpscope,
 * with what must hold checked (issue 8, "Adversarial captures").
 *
 * Usage: adversarial CASE SMTPSCOPE WORKDIR [OPTION...]   generate, run, check
 *                                             (ctest; OPTIONs go to smtpscope)
 *        adversarial --gen CASE FILE           only write the capture(s)
 *        adversarial --list                    the case names
 *
 * Each case writes its capture with the synthesizer's frame builder and pcap
 * writer (pcaps/synth/wire.h), or by hand where the file itself is the
 * attack, into WORKDIR; runs `smtpscope analyze -f json -v` on it with wait4()
 * so the child's peak RSS and time are known; then checks that it did not
 * crash (the exit status is the expected one, never a signal or a sanitizer's
 * 86/87), that stderr holds no sanitizer report, that the peak RSS stayed
 * under the case's budget (loosened in a sanitizer build, whose shadow memory
 * inflates RSS), and the case's expected outcome: most cases carry a real
 * SMTP session through a Cisco ASA (masked banner, masked STARTTLS) that must
 * still be reported with its three findings, plus the event or summary
 * counter that shows the anomaly.  The capture is removed when the case
 * passes and kept for a look when it fails.
 *
 * See tests/adversarial/README.md for what each case checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/jv.h"
#include "pcaps/synth/wire.h"

#ifdef ADV_SANITIZED
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* SYN flood size: a million half-open connections, in every build (about
 * 2 s in the normal build, 10 s under ASan+UBSan). */
#define FLOOD_FLOWS 1000000u
/* The flood runs with a flow table of 65536 (limits.max_flows), so it is full
 * in either build; a tracked flow costs about 800 bytes. */
#define FLOOD_MAX_FLOWS 65536
#define FLOOD_CONFIG "limits:\n  max_flows: 65536\n"
/* The same flood under a heap cap instead: the default max_flows (262,144
 * flows, ~200 MiB of half-open flows) would hold far more than 24 MiB. */
#define MEMCAP_MIB 24
#define MEMCAP_CONFIG "limits:\n  memory_mb: 24\n"

#define MSS 1460
#define BASE_TS (INT64_C(1709287200) * SC_NS_PER_SEC + INT64_C(113500000))

/* ---------------------------------------------------------------- frames */

struct gen;
typedef int (*sink_fn)(struct gen *g, const uint8_t *frame, size_t len);

/* One generation run: where frames go, the capture clock, and the case's
 * hooks on the real session. */
struct gen {
    struct syn_writer *w;
    sink_fn sink;
    sc_time ts;
    sc_time tick; /* added to ts after each frame */
    uint8_t frame[SYN_FRAME_MAX];
    uint64_t frames;
    int fail;
    /* hooks */
    bool
        overlap_every_offset; /* after each real data segment, conflicting copies at every offset */
    bool zero_window;         /* the server closes its window inside DATA; the client probes */
    bool bad_options;         /* every real packet carries malformed TCP options */
    bool ts_backwards;        /* real packets' timestamps go back now and then */
    /* pcapng multi-interface case: the interface the next frame goes to */
    FILE *ng;
    unsigned ng_if;
    bool ng_be;
};

/* One TCP connection: [0] is the client, [1] the server. */
struct conn {
    struct syn_link_opts link;
    struct cap_addr addr[2];
    uint16_t port[2];
    uint32_t seq[2];
    uint16_t win[2];
    uint16_t ipid[2];
    bool real;
};

static struct cap_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    struct cap_addr x;
    memset(&x, 0, sizeof(x));
    x.b[10] = 0xff;
    x.b[11] = 0xff;
    x.b[12] = a;
    x.b[13] = b;
    x.b[14] = c;
    x.b[15] = d;
    return x;
}

static void conn_init(struct conn *c, struct cap_addr cli, uint16_t cport, struct cap_addr srv,
                      uint16_t sport, uint32_t cisn, uint32_t sisn)
{
    memset(c, 0, sizeof(*c));
    c->link.type = SYN_LINK_ETHERNET;
    memcpy(c->link.src_mac, "\x02\x00\x00\x00\x00\x01", 6);
    memcpy(c->link.dst_mac, "\x02\x00\x00\x00\x00\x02", 6);
    c->addr[0] = cli;
    c->addr[1] = srv;
    c->port[0] = cport;
    c->port[1] = sport;
    c->seq[0] = cisn;
    c->seq[1] = sisn;
    c->win[0] = c->win[1] = 502;
    c->ipid[0] = 1000;
    c->ipid[1] = 5000;
}

static int sink_writer(struct gen *g, const uint8_t *frame, size_t len)
{
    return syn_writer_packet(g->w, g->ts, frame, len);
}

/* Builds and writes one segment from side d at sequence seq (nothing advances). */
static void emit_at(struct gen *g, struct conn *c, int d, uint8_t flags, uint32_t seq,
                    const uint8_t *data, size_t n)
{
    struct syn_link_opts l = c->link;
    if (d) {
        memcpy(l.src_mac, c->link.dst_mac, 6);
        memcpy(l.dst_mac, c->link.src_mac, 6);
    }
    struct syn_ip ip = {.src = c->addr[d],
                        .dst = c->addr[!d],
                        .ttl = d ? 60 : 120,
                        .ipid = c->ipid[d]++,
                        .df = true};
    struct syn_tcp t = {.sport = c->port[d],
                        .dport = c->port[!d],
                        .seq = seq,
                        .ack = (flags & CAP_TH_ACK) ? c->seq[!d] : 0,
                        .flags = flags,
                        .window = c->win[d],
                        .ts_on = true,
                        .tsval = (uint32_t)(g->ts / 1000000),
                        .tsecr = 1};
    if (flags & CAP_TH_SYN) {
        t.mss_on = true;
        t.mss = MSS;
        t.sack_perm = true;
        t.ws_on = true;
        t.ws = 7;
    }
    size_t len = syn_build_tcp(g->frame, &l, &ip, &t, data, n);
    if (g->bad_options && c->real && !(flags & CAP_TH_SYN)) {
        /* Non-SYN segments carry NOP NOP TS(10): 12 option bytes at 54 (Ethernet + IPv4 +
         * TCP).  Each packet gets one of these broken lists in their place; the data offset
         * stays right, so the payload must still be read. */
        static const uint8_t bad[][12] = {
            {8, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},          /* length 0: a naive loop never ends */
            {2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},          /* length 1, less than kind+len */
            {5, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},         /* SACK running past the header */
            {3, 255, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0},        /* window scale of length 255 */
            {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 8},          /* kind without its length byte */
            {2, 3, 5, 180, 8, 9, 0, 0, 0, 0, 0, 0},        /* MSS of length 3; TS of length 9 */
            {5, 2, 5, 3, 0, 5, 11, 0, 0, 0, 0, 0},         /* SACK blocks of odd lengths */
            {254, 12, 0xf9, 0x89, 0, 0, 0, 0, 0, 0, 0, 0}, /* experimental, whole area */
        };
        memcpy(g->frame + 54, bad[g->frames % (sizeof(bad) / sizeof(bad[0]))], 12);
    }
    sc_time keep = g->ts;
    if (g->ts_backwards && c->real) {
        /* Every third real packet is stamped an hour early, and one a day early. */
        if (g->frames % 3 == 1)
            g->ts -= INT64_C(3600) * SC_NS_PER_SEC;
        if (g->frames % 17 == 5)
            g->ts -= INT64_C(86400) * SC_NS_PER_SEC;
    }
    if (g->sink(g, g->frame, len) < 0)
        g->fail = 1;
    g->ts = keep + g->tick;
    g->frames++;
}

/* Sends one segment from side d at its next sequence number and advances it. */
static void emit(struct gen *g, struct conn *c, int d, uint8_t flags, const uint8_t *data, size_t n)
{
    emit_at(g, c, d, flags, c->seq[d], data, n);
    c->seq[d] += (uint32_t)n + ((flags & CAP_TH_SYN) ? 1u : 0u) + ((flags & CAP_TH_FIN) ? 1u : 0u);
}

static void handshake(struct gen *g, struct conn *c)
{
    emit(g, c, 0, CAP_TH_SYN, NULL, 0);
    emit(g, c, 1, CAP_TH_SYN | CAP_TH_ACK, NULL, 0);
    emit(g, c, 0, CAP_TH_ACK, NULL, 0);
}

/* Sends n bytes from side d in MSS-sized segments, each acknowledged. */
static void send_data(struct gen *g, struct conn *c, int d, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        size_t k = n < MSS ? n : MSS;
        emit(g, c, d, CAP_TH_ACK | CAP_TH_PSH, b, k);
        emit(g, c, !d, CAP_TH_ACK, NULL, 0);
        b += k;
        n -= k;
    }
}

static void send_str(struct gen *g, struct conn *c, int d, const char *s)
{
    send_data(g, c, d, s, strlen(s));
}

static void close_fin(struct gen *g, struct conn *c)
{
    emit(g, c, 1, CAP_TH_FIN | CAP_TH_ACK, NULL, 0);
    emit(g, c, 0, CAP_TH_FIN | CAP_TH_ACK, NULL, 0);
    emit(g, c, 1, CAP_TH_ACK, NULL, 0);
}

/* ------------------------------------------------------- the real session */

/* The dialogue of pcaps/synth-asa-starttls-masked.pcap: a Postfix server
 * behind a Cisco ASA with inspect esmtp, seen on the client side.  smtpscope
 * must report starttls_stripped, banner_masked and ehlo_keyword_masked. */
static const char *const real_dialogue[] = {
    "S220 ****************************\r\n",
    "CEHLO relay.example.org\r\n",
    "S250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-XXXA\r\n250-ETRN\r\n"
    "250-XXXXXXXB\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-XXXXXXXC\r\n"
    "250 XXXXXXXD\r\n",
    "CMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n",
    "S250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
    "B", /* the message */
    "S250 2.0.0 Ok: queued as E995FFA2\r\n",
    "CQUIT\r\n",
    "S221 2.0.0 Bye\r\n",
    NULL,
};

#define REAL_BODY_LEN 4000

/* Client payload bytes of the real session, set by real_init(). */
static long real_c2s;

/* One packet of the real session still to send. */
struct real_op {
    uint8_t dir;
    uint8_t flags;
    uint32_t off; /* into the text of the op's dialogue item */
    uint32_t len;
    const char *text;
};

struct real {
    struct conn c;
    char body[REAL_BODY_LEN + 8];
    struct real_op ops[64];
    size_t nops, next;
};

static void real_add(struct real *r, int dir, uint8_t flags, const char *text, size_t off,
                     size_t len)
{
    if (r->nops < sizeof(r->ops) / sizeof(r->ops[0]))
        r->ops[r->nops++] =
            (struct real_op){(uint8_t)dir, flags, (uint32_t)off, (uint32_t)len, text};
}

/* Prepares the real session (client 203.0.113.10:40000, server
 * 192.0.2.25:25) with the given initial sequence numbers. */
static void real_init(struct real *r, uint32_t cisn, uint32_t sisn)
{
    memset(r, 0, sizeof(*r));
    conn_init(&r->c, v4(203, 0, 113, 10), 40000, v4(192, 0, 2, 25), 25, cisn, sisn);
    r->c.real = true;
    /* A body of ordinary 78-byte lines and the end of data. */
    size_t n = 0;
    const char *hdr = "Subject: adversarial\r\n\r\n";
    memcpy(r->body, hdr, strlen(hdr));
    n = strlen(hdr);
    while (n + 80 < REAL_BODY_LEN - 5) {
        for (size_t i = 0; i < 76; i++, n++)
            r->body[n] = (char)('a' + (n + i) % 26);
        r->body[n++] = '\r';
        r->body[n++] = '\n';
    }
    memcpy(r->body + n, "\r\n.\r\n", 6);
    real_c2s = 0;
    real_add(r, 0, CAP_TH_SYN, NULL, 0, 0);
    real_add(r, 1, CAP_TH_SYN | CAP_TH_ACK, NULL, 0, 0);
    real_add(r, 0, CAP_TH_ACK, NULL, 0, 0);
    for (const char *const *d = real_dialogue; *d; d++) {
        const char *text = **d == 'B' ? r->body : *d + 1;
        int dir = **d == 'S' ? 1 : 0;
        size_t len = strlen(text);
        if (dir == 0)
            real_c2s += (long)len;
        for (size_t off = 0; off < len; off += MSS) {
            size_t k = len - off < MSS ? len - off : MSS;
            real_add(r, dir, CAP_TH_ACK | CAP_TH_PSH, text, off, k);
            real_add(r, !dir, CAP_TH_ACK, NULL, 0, 0);
        }
    }
    real_add(r, 1, CAP_TH_FIN | CAP_TH_ACK, NULL, 0, 0);
    real_add(r, 0, CAP_TH_FIN | CAP_TH_ACK, NULL, 0, 0);
    real_add(r, 1, CAP_TH_ACK, NULL, 0, 0);
}

/* Sends the real session's next packet, with the case's hooks; returns false
 * once it has all been sent. */
static bool real_step(struct gen *g, struct real *r)
{
    if (r->next >= r->nops)
        return false;
    const struct real_op *op = &r->ops[r->next++];
    struct conn *c = &r->c;
    const uint8_t *p = op->text ? (const uint8_t *)op->text + op->off : NULL;
    bool body = op->text == r->body;
    if (g->zero_window && body && op->off == MSS) {
        /* The server's window is shut after the first segment of the body: the client probes
         * it thousands of times, the Linux way (an ACK one below snd_una, no data) and the BSD
         * way (one new byte past the window, never acknowledged), before it opens again. */
        c->win[1] = 0;
        emit(g, c, 1, CAP_TH_ACK, NULL, 0);
        for (int i = 0; i < 3000; i++) {
            emit_at(g, c, 0, CAP_TH_ACK, c->seq[0] - 1, NULL, 0);
            emit_at(g, c, 0, CAP_TH_ACK, c->seq[0], p, 1);
            emit(g, c, 1, CAP_TH_ACK, NULL, 0);
        }
        c->win[1] = 502;
        emit(g, c, 1, CAP_TH_ACK, NULL, 0);
    }
    uint32_t seq = c->seq[op->dir];
    emit(g, c, op->dir, op->flags, p, op->len);
    if (g->overlap_every_offset && op->len > 0) {
        /* A copy of 1 to 8 bytes starting at every offset of the segment, each with different
         * bytes: the first version must win, and every copy is an overlap_mismatch. */
        uint8_t x[8];
        for (uint32_t i = 0; i < op->len; i++) {
            uint32_t k = op->len - i < 8 ? op->len - i : 8;
            for (uint32_t j = 0; j < k; j++)
                x[j] = (uint8_t)(p[i + j] ^ (0x01u + ((i + j) & 0x0f)));
            emit_at(g, c, op->dir, CAP_TH_ACK | CAP_TH_PSH, seq + i, x, k);
        }
    }
    return true;
}

static void real_all(struct gen *g, struct real *r)
{
    while (real_step(g, r))
        ;
}

/* ------------------------------------------------------------ the cases */

struct ctx {
    const char *dir; /* WORKDIR */
    char files[4][512];
    int nfiles;
};

static void path_in(struct ctx *x, const char *name)
{
    snprintf(x->files[x->nfiles++], sizeof(x->files[0]), "%s/%s", x->dir, name);
}

static int gen_open(struct gen *g, const char *path, enum syn_format fmt, uint32_t snaplen)
{
    memset(g, 0, offsetof(struct gen, frame));
    g->w = syn_writer_open(path, fmt, CAP_LINKTYPE_ETHERNET, snaplen);
    if (!g->w) {
        fprintf(stderr, "adversarial: %s: %s\n", path, strerror(errno));
        return -1;
    }
    g->sink = sink_writer;
    g->ts = BASE_TS;
    g->tick = 100000; /* 100 us */
    g->frames = 0;
    g->ng = NULL;
    g->bad_options = g->zero_window = g->overlap_every_offset = g->ts_backwards = false;
    return 0;
}

static int gen_close(struct gen *g, const char *path)
{
    if (syn_writer_close(g->w) < 0 || g->fail) {
        fprintf(stderr, "adversarial: %s: write failed: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* A capture of the real session alone, with the hooks already set in g. */
static int write_real(struct gen *g, const char *path, enum syn_format fmt, uint32_t snaplen,
                      uint32_t cisn, uint32_t sisn, void (*hooks)(struct gen *))
{
    static struct real r;
    if (gen_open(g, path, fmt, snaplen) < 0)
        return -1;
    if (hooks)
        hooks(g);
    real_init(&r, cisn, sisn);
    real_all(g, &r);
    return gen_close(g, path);
}

static int gen_syn_flood(struct gen *g, struct ctx *x)
{
    static struct real r;
    path_in(x, "syn-flood.pcap");
    if (gen_open(g, x->files[0], SYN_PCAP_US, 0) < 0)
        return -1;
    g->tick = 2000; /* 2 us: 500,000 SYNs a second */
    real_init(&r, 1000, 2000);
    struct conn c;
    conn_init(&c, v4(10, 0, 0, 0), 0, v4(192, 0, 2, 25), 25, 0, 0);
    for (uint32_t i = 0; i < FLOOD_FLOWS; i++) {
        /* Spoofed sources: 10.x.y.z from port 1024 + i % 60000, each flow a lone SYN. */
        uint32_t h = i * 2654435761u;
        c.addr[0] = v4(10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
        c.port[0] = (uint16_t)(1024 + i % 60000);
        c.seq[0] = h;
        emit(g, &c, 0, CAP_TH_SYN, NULL, 0);
        if (i % (FLOOD_FLOWS / 80) == FLOOD_FLOWS / 160)
            real_step(g, &r);
    }
    real_all(g, &r);
    return gen_close(g, x->files[0]);
}

static int gen_endless_line(struct gen *g, struct ctx *x)
{
    static struct real r;
    static uint8_t chunk[MSS];
    path_in(x, "endless-line.pcap");
    if (gen_open(g, x->files[0], SYN_PCAP_US, 0) < 0)
        return -1;
    g->tick = 10000;
    real_init(&r, 1000, 2000);
    struct conn c, s;
    /* 50 MB from a client without a line end, and 8 MB from a server. */
    conn_init(&c, v4(198, 51, 100, 1), 41000, v4(192, 0, 2, 26), 25, 7, 9);
    conn_init(&s, v4(198, 51, 100, 2), 41001, v4(192, 0, 2, 27), 25, 7, 9);
    handshake(g, &c);
    handshake(g, &s);
    send_str(g, &c, 1, "220 endless.example ESMTP\r\n");
    send_str(g, &c, 0, "EHLO ");
    memset(chunk, 'A', sizeof(chunk));
    size_t total = 50u << 20, sent = 0, i = 0;
    while (sent < total) {
        size_t k = total - sent < MSS ? total - sent : MSS;
        send_data(g, &c, 0, chunk, k);
        sent += k;
        if (i < (8u << 20) / MSS) {
            if (i == 0)
                send_str(g, &s, 1, "220 ");
            else
                send_data(g, &s, 1, chunk, MSS);
        }
        if (++i % 400 == 0)
            real_step(g, &r);
    }
    real_all(g, &r);
    close_fin(g, &c);
    close_fin(g, &s);
    return gen_close(g, x->files[0]);
}

/* Many sessions open at once, each sending 3000 lines of 1000 bytes (300 MB in
 * all): each session keeps at most 2048 lines of up to 1024 bytes of its
 * dialogue for the rules, so the memory is bounded per session (about 1.3 MiB
 * here); across sessions only limits.memory_mb bounds it (its default, 1 GiB,
 * is not reached here; syn_flood_memcap tests the cap). */
#define MANY_SESSIONS 100
#define MANY_LINES 3000
static int gen_many_dialogues(struct gen *g, struct ctx *x)
{
    static struct real r;
    static struct conn c[MANY_SESSIONS];
    static char line[1000];
    path_in(x, "many-dialogues.pcap");
    if (gen_open(g, x->files[0], SYN_PCAP_US, 0) < 0)
        return -1;
    g->tick = 1000;
    real_init(&r, 1000, 2000);
    for (int i = 0; i < MANY_SESSIONS; i++) {
        conn_init(&c[i], v4(198, 51, 101, (uint8_t)i), (uint16_t)(42000 + i), v4(192, 0, 2, 28), 25,
                  7, 9);
        handshake(g, &c[i]);
        send_str(g, &c[i], 1, "220 many.example ESMTP\r\n");
    }
    memset(line, 'n', sizeof(line));
    memcpy(line, "NOOP ", 5);
    memcpy(line + sizeof(line) - 2, "\r\n", 2);
    for (int k = 0; k < MANY_LINES; k++) {
        for (int i = 0; i < MANY_SESSIONS; i++) {
            send_data(g, &c[i], 0, line, sizeof(line));
            send_str(g, &c[i], 1, "250 2.0.0 Ok\r\n");
        }
        if (k % 100 == 0)
            real_step(g, &r);
    }
    for (int i = 0; i < MANY_SESSIONS; i++)
        close_fin(g, &c[i]);
    real_all(g, &r);
    return gen_close(g, x->files[0]);
}

/* IPv4 header checksum (RFC 791) of the 20 bytes at h, after a patch. */
static void ip4_checksum(uint8_t *h)
{
    h[10] = h[11] = 0;
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2)
        sum += (uint32_t)h[i] << 8 | h[i + 1];
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    h[10] = (uint8_t)(~sum >> 8);
    h[11] = (uint8_t)~sum;
}

/* IP fragments that never complete: 1000 datagrams in progress at once, each
 * sent as 40 fragments of 1480 bytes (59 KB) without its last one, so the
 * reassembler's byte limit (defrag.memory_mb, 16 MiB) is reached over and
 * over; the real session beside them. */
#define FRAG_DATAGRAMS 1000
#define FRAG_PIECES 40
static int gen_frag_flood(struct gen *g, struct ctx *x)
{
    static struct real r;
    path_in(x, "frag-flood.pcap");
    if (gen_open(g, x->files[0], SYN_PCAP_US, 0) < 0)
        return -1;
    g->tick = 5000;
    real_init(&r, 1000, 2000);
    static uint8_t pay[1460];
    memset(pay, 'F', sizeof(pay));
    struct syn_link_opts l = {.type = SYN_LINK_ETHERNET};
    for (int k = 0; k < FRAG_PIECES; k++) {
        for (uint32_t d = 0; d < FRAG_DATAGRAMS; d++) {
            struct syn_ip ip = {.src = v4(198, 18, (uint8_t)(d >> 8), (uint8_t)d),
                                .dst = v4(192, 0, 2, 25),
                                .ttl = 64,
                                .ipid = (uint16_t)d};
            struct syn_tcp t = {.sport = (uint16_t)(30000 + d),
                                .dport = 25,
                                .seq = d,
                                .ack = 1,
                                .flags = CAP_TH_ACK | CAP_TH_PSH,
                                .window = 502};
            /* 20 bytes of TCP header and 1460 of payload: 1480 bytes of IP payload, a
             * multiple of 8 as every fragment but the last must be. */
            size_t len = syn_build_tcp(g->frame, &l, &ip, &t, pay, sizeof(pay));
            uint8_t *h = g->frame + 14;
            uint32_t off8 = (uint32_t)k * 1480 / 8;
            h[6] = (uint8_t)(0x20 | off8 >> 8); /* more fragments */
            h[7] = (uint8_t)off8;
            if (k > 0) /* later fragments carry no TCP header */
                memset(h + 20, 'f', 20);
            ip4_checksum(h);
            if (g->sink(g, g->frame, len) < 0)
                g->fail = 1;
            g->ts += g->tick;
            g->frames++;
        }
        real_step(g, &r);
    }
    real_all(g, &r);
    return gen_close(g, x->files[0]);
}

static int gen_multiline(struct gen *g, struct ctx *x)
{
    static struct real r;
    path_in(x, "multiline-100k.pcap");
    if (gen_open(g, x->files[0], SYN_PCAP_US, 0) < 0)
        return -1;
    real_init(&r, 1000, 2000);
    struct conn c;
    conn_init(&c, v4(198, 51, 100, 1), 41000, v4(192, 0, 2, 26), 25, 7, 9);
    handshake(g, &c);
    send_str(g, &c, 1, "220 many.example ESMTP\r\n");
    send_str(g, &c, 0, "EHLO client.example\r\n");
    /* 100,000 continuation lines in one reply, then its last line. */
    static char buf[MSS + 64];
    size_t n = 0;
    for (int i = 0; i < 100000; i++) {
        n += (size_t)sprintf(buf + n, "250-X-KEYWORD-%06d PARAM\r\n", i);
        if (n > MSS - 40) {
            send_data(g, &c, 1, buf, n);
            n = 0;
        }
        if (i % 5000 == 0)
            real_step(g, &r);
    }
    n += (size_t)sprintf(buf + n, "250 SMTPUTF8\r\n");
    send_data(g, &c, 1, buf, n);
    send_str(g, &c, 0, "QUIT\r\n");
    send_str(g, &c, 1, "221 bye\r\n");
    close_fin(g, &c);
    real_all(g, &r);
    return gen_close(g, x->files[0]);
}

static int gen_pipelined(struct gen *g, struct ctx *x)
{
    static struct real r;
    path_in(x, "pipelined-100k.pcap");
    if (gen_open(g, x->files[0], SYN_PCAP_US, 0) < 0)
        return -1;
    real_init(&r, 1000, 2000);
    struct conn c;
    conn_init(&c, v4(198, 51, 100, 1), 41000, v4(192, 0, 2, 26), 25, 7, 9);
    handshake(g, &c);
    send_str(g, &c, 1, "220 quiet.example ESMTP\r\n");
    send_str(g, &c, 0, "EHLO client.example\r\n");
    send_str(g, &c, 1, "250-quiet.example\r\n250 PIPELINING\r\n");
    /* 100,000 commands, never answered. */
    static char buf[MSS + 64];
    size_t n = 0;
    for (int i = 0; i < 100000; i++) {
        n += (size_t)sprintf(buf + n, i % 2 ? "NOOP\r\n" : "RCPT TO:<u%d@example.com>\r\n", i);
        if (n > MSS - 40) {
            send_data(g, &c, 0, buf, n);
            n = 0;
        }
        if (i % 5000 == 0)
            real_step(g, &r);
    }
    send_data(g, &c, 0, buf, n);
    close_fin(g, &c);
    real_all(g, &r);
    return gen_close(g, x->files[0]);
}

static void hook_overlap(struct gen *g)
{
    g->overlap_every_offset = true;
}

static int gen_overlap(struct gen *g, struct ctx *x)
{
    static struct real r;
    path_in(x, "overlap.pcap");
    if (gen_open(g, x->files[0], SYN_PCAP_US, 0) < 0)
        return -1;
    hook_overlap(g);
    real_init(&r, 1000, 2000);
    real_all(g, &r);
    g->overlap_every_offset = false;
    /* A second connection: 64 KiB sent backwards behind a missing first byte, as 32-byte
     * segments starting at every offset, each with bytes different from its neighbours'. */
    struct conn c;
    conn_init(&c, v4(198, 51, 100, 1), 41000, v4(192, 0, 2, 26), 25, 7, 9);
    handshake(g, &c);
    send_str(g, &c, 1, "220 overlap.example ESMTP\r\n");
    uint8_t x32[32];
    uint32_t base = c.seq[0];
    for (uint32_t i = 65535; i >= 1; i--) {
        for (int j = 0; j < 32; j++)
            x32[j] = (uint8_t)('a' + (i + (uint32_t)j * 7) % 26);
        emit_at(g, &c, 0, CAP_TH_ACK | CAP_TH_PSH, base + i, x32, 32);
    }
    emit_at(g, &c, 0, CAP_TH_ACK | CAP_TH_PSH, base, (const uint8_t *)"N", 1);
    c.seq[0] = base + 65535 + 32;
    close_fin(g, &c);
    return gen_close(g, x->files[0]);
}

static int gen_seq_wrap(struct gen *g, struct ctx *x)
{
    path_in(x, "seq-wrap.pcap");
    /* Client bytes before the body: EHLO (24) + MAIL/RCPT/DATA (60); the client's sequence
     * numbers wrap 1500 bytes into the body, inside its second segment.  The server's wrap in
     * its EHLO reply. */
    uint32_t cisn = 0u - 1u - 84u - 1500u;
    uint32_t sisn = 0u - 1u - 60u;
    return write_real(g, x->files[0], SYN_PCAP_US, 0, cisn, sisn, NULL);
}

static int gen_tuple_reuse(struct gen *g, struct ctx *x)
{
    static struct real r;
    path_in(x, "tuple-reuse.pcap");
    if (gen_open(g, x->files[0], SYN_PCAP_US, 0) < 0)
        return -1;
    g->tick = 20000; /* 20 us: a new connection on the same 4-tuple every 120 us */
    real_init(&r, 1000, 2000);
    struct conn c;
    for (uint32_t i = 0; i < 20000; i++) {
        conn_init(&c, v4(198, 51, 100, 7), 50000, v4(192, 0, 2, 25), 25, i * 2654435761u,
                  i * 40503u);
        handshake(g, &c);
        emit(g, &c, 1, CAP_TH_ACK | CAP_TH_PSH, (const uint8_t *)"220 reuse.example\r\n", 19);
        emit(g, &c, 0, CAP_TH_ACK | CAP_TH_PSH, (const uint8_t *)"QUIT\r\n", 6);
        /* Half end with a RST; the other half are still open when the next SYN comes. */
        if (i % 2 == 0)
            emit(g, &c, 1, CAP_TH_RST | CAP_TH_ACK, NULL, 0);
        if (i % 500 == 0)
            real_step(g, &r);
    }
    real_all(g, &r);
    return gen_close(g, x->files[0]);
}

static void hook_zero_window(struct gen *g)
{
    g->zero_window = true;
}

static int gen_zero_window(struct gen *g, struct ctx *x)
{
    path_in(x, "zero-window.pcap");
    return write_real(g, x->files[0], SYN_PCAP_US, 0, 1000, 2000, hook_zero_window);
}

static int gen_snaplen64(struct gen *g, struct ctx *x)
{
    path_in(x, "snaplen64.pcap");
    return write_real(g, x->files[0], SYN_PCAP_US, 64, 1000, 2000, NULL);
}

/* The real session, then the file spoiled: for the cases about the file itself. */
static int spoil(const char *path, long cut_from_end, long magic_at, uint32_t magic,
                 long snaplen_at, uint32_t snaplen, size_t huge_caplen)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = fstat(fd, &st);
    if (rc == 0 && cut_from_end > 0)
        rc = ftruncate(fd, st.st_size - cut_from_end);
    uint8_t b[4] = {(uint8_t)magic, (uint8_t)(magic >> 8), (uint8_t)(magic >> 16),
                    (uint8_t)(magic >> 24)};
    if (rc == 0 && magic_at >= 0)
        rc = pwrite(fd, b, 4, magic_at) == 4 ? 0 : -1;
    uint8_t s[4] = {(uint8_t)snaplen, (uint8_t)(snaplen >> 8), (uint8_t)(snaplen >> 16),
                    (uint8_t)(snaplen >> 24)};
    if (rc == 0 && snaplen_at >= 0)
        rc = pwrite(fd, s, 4, snaplen_at) == 4 ? 0 : -1;
    if (rc == 0 && huge_caplen) {
        /* One more record, complete, whose captured length is huge_caplen. */
        uint8_t h[16] = {0};
        uint32_t t = (uint32_t)(BASE_TS / SC_NS_PER_SEC) + 10, len = (uint32_t)huge_caplen;
        for (int i = 0; i < 4; i++) {
            h[i] = (uint8_t)(t >> (8 * i));
            h[8 + i] = h[12 + i] = (uint8_t)(len >> (8 * i));
        }
        uint8_t *junk = calloc(1, huge_caplen);
        rc = junk && pwrite(fd, h, 16, st.st_size) == 16 &&
                     pwrite(fd, junk, huge_caplen, st.st_size + 16) == (ssize_t)huge_caplen
                 ? 0
                 : -1;
        free(junk);
    }
    close(fd);
    return rc;
}

static int gen_cut_record(struct gen *g, struct ctx *x)
{
    path_in(x, "cut-record.pcap");
    if (write_real(g, x->files[0], SYN_PCAP_US, 0, 1000, 2000, NULL) < 0)
        return -1;
    return spoil(x->files[0], 30, -1, 0, -1, 0, 0); /* inside the last record */
}

static int gen_cut_record_ng(struct gen *g, struct ctx *x)
{
    path_in(x, "cut-block.pcapng");
    if (write_real(g, x->files[0], SYN_PCAPNG, 0, 1000, 2000, NULL) < 0)
        return -1;
    return spoil(x->files[0], 30, -1, 0, -1, 0, 0); /* inside the last block */
}

static int gen_bad_magic(struct gen *g, struct ctx *x)
{
    path_in(x, "good.pcap");
    path_in(x, "bad-magic.pcap");
    if (write_real(g, x->files[0], SYN_PCAP_US, 0, 1000, 2000, NULL) < 0 ||
        write_real(g, x->files[1], SYN_PCAP_US, 0, 1000, 2000, NULL) < 0)
        return -1;
    return spoil(x->files[1], 0, 0, 0xdeadbeefu, -1, 0, 0);
}

static int gen_caplen_snaplen(struct gen *g, struct ctx *x)
{
    path_in(x, "caplen-over-snaplen.pcap");
    if (write_real(g, x->files[0], SYN_PCAP_US, 0, 1000, 2000, NULL) < 0)
        return -1;
    return spoil(x->files[0], 0, -1, 0, 16, 96, 0); /* header says snaplen 96; records are longer */
}

static int gen_caplen_huge(struct gen *g, struct ctx *x)
{
    path_in(x, "caplen-huge.pcap");
    if (write_real(g, x->files[0], SYN_PCAP_US, 0, 1000, 2000, NULL) < 0)
        return -1;
    return spoil(x->files[0], 0, -1, 0, -1, 0, 300000); /* a 300,000-byte record last */
}

static int gen_pcap_ns(struct gen *g, struct ctx *x)
{
    path_in(x, "nanosecond.pcap");
    return write_real(g, x->files[0], SYN_PCAP_NS, 0, 1000, 2000, NULL);
}

static void hook_backwards(struct gen *g)
{
    g->ts_backwards = true;
}

static int gen_ts_backwards(struct gen *g, struct ctx *x)
{
    path_in(x, "ts-backwards.pcap");
    return write_real(g, x->files[0], SYN_PCAP_US, 0, 1000, 2000, hook_backwards);
}

static void hook_options(struct gen *g)
{
    g->bad_options = true;
}

static int gen_tcp_options(struct gen *g, struct ctx *x)
{
    static struct real r;
    path_in(x, "tcp-options.pcap");
    if (gen_open(g, x->files[0], SYN_PCAP_US, 0) < 0)
        return -1;
    hook_options(g);
    real_init(&r, 1000, 2000);
    while (real_step(g, &r)) {
        /* Between the real packets, segments of the same connection whose data offset is
         * below 5 words or beyond the packet: malformed, never payload. */
        if (r.next % 4 == 0) {
            size_t len = syn_build_tcp(
                g->frame, &r.c.link,
                &(struct syn_ip){.src = r.c.addr[0], .dst = r.c.addr[1], .ttl = 120, .ipid = 1},
                &(struct syn_tcp){.sport = 40000,
                                  .dport = 25,
                                  .seq = r.c.seq[0],
                                  .ack = r.c.seq[1],
                                  .flags = CAP_TH_ACK,
                                  .window = 502},
                (const uint8_t *)"RSET\r\n", 6);
            g->frame[34 + 12] = (uint8_t)((r.next % 8 == 0 ? 3 : 15) << 4);
            if (g->sink(g, g->frame, len) < 0)
                g->fail = 1;
            g->frames++;
        }
    }
    return gen_close(g, x->files[0]);
}

/* TLS records whose lengths are absurd: after STARTTLS, and on 465. */
static int gen_tls_absurd(struct gen *g, struct ctx *x)
{
    static struct real r;
    static uint8_t junk[MSS];
    path_in(x, "tls-absurd.pcap");
    if (gen_open(g, x->files[0], SYN_PCAP_US, 0) < 0)
        return -1;
    real_init(&r, 1000, 2000);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    struct conn a, b;
    conn_init(&a, v4(198, 51, 100, 1), 41000, v4(192, 0, 2, 26), 25, 7, 9);
    conn_init(&b, v4(198, 51, 100, 2), 41001, v4(192, 0, 2, 27), 465, 7, 9);
    handshake(g, &a);
    handshake(g, &b);
    send_str(g, &a, 1, "220 tls.example ESMTP\r\n");
    send_str(g, &a, 0, "EHLO client.example\r\n");
    send_str(g, &a, 1, "250-tls.example\r\n250 STARTTLS\r\n");
    send_str(g, &a, 0, "STARTTLS\r\n");
    send_str(g, &a, 1, "220 2.0.0 Ready to start TLS\r\n");
    /* Client: a handshake record of 65535 bytes holding a ClientHello that claims 16 MiB. */
    static const uint8_t ch[] = {0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0xff, 0xff, 0xff, 0x03, 0x03};
    /* Server: a record of 0 bytes, a ServerHello of length 0x7fffff in a record of 18 KiB,
     * a Certificate message whose certificate list length is 16 MiB - 1, an alert of 65535. */
    static const uint8_t sh[] = {0x16, 0x03, 0x03, 0x00, 0x00, 0x16, 0x03, 0x03,
                                 0x48, 0x00, 0x02, 0x7f, 0xff, 0xff, 0x03, 0x03};
    static const uint8_t cert[] = {0x16, 0x03, 0x03, 0x00, 0x0a, 0x0b, 0x00, 0x00,
                                   0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x15,
                                   0x03, 0x03, 0xff, 0xff, 0x02, 0x28};
    send_data(g, &a, 0, ch, sizeof(ch));
    send_data(g, &a, 1, sh, sizeof(sh));
    for (int i = 0; i < 200; i++) { /* 290 KB of bytes after them */
        send_data(g, &a, 0, junk, sizeof(junk));
        send_data(g, &a, 1, junk, sizeof(junk));
        if (i == 100)
            send_data(g, &a, 1, cert, sizeof(cert));
        if (i % 20 == 0)
            real_step(g, &r);
    }
    /* Implicit TLS on 465: 10,000 empty handshake records, then a ClientHello with a
     * handshake length of 16 MiB - 1 in records of 16 KiB + 2048 (over RFC 8446's limit)
     * and a server sending application data records of 65535 bytes, cut off. */
    static uint8_t empties[5 * 10000];
    for (size_t i = 0; i < sizeof(empties); i += 5)
        memcpy(empties + i, "\x16\x03\x01\x00\x00", 5);
    send_data(g, &b, 0, empties, sizeof(empties));
    send_data(g, &b, 0, "\x16\x03\x01\x48\x00\x01\xff\xff\xff\x03\x03", 11);
    for (int i = 0; i < 100; i++) {
        send_data(g, &b, 0, junk, sizeof(junk));
        send_data(g, &b, 1, i % 10 ? junk : (const uint8_t *)"\x17\x03\x03\xff\xff",
                  i % 10 ? sizeof(junk) : 5);
    }
    real_all(g, &r);
    close_fin(g, &a);
    close_fin(g, &b);
    return gen_close(g, x->files[0]);
}

/* pcapng with several sections (the second big-endian), interfaces of four
 * link types (Ethernet, raw IP, Linux SLL2 and one smtpscope does not read)
 * with different if_tsresol, and blocks of unknown types between packets. */

struct ngw {
    FILE *f;
    bool be;
};

static void ng_u32(uint8_t *p, uint32_t v, bool be)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (be ? 24 - 8 * i : 8 * i));
}

static void ng_u16(uint8_t *p, uint16_t v, bool be)
{
    p[be ? 0 : 1] = (uint8_t)(v >> 8);
    p[be ? 1 : 0] = (uint8_t)v;
}

static void ng_block(FILE *f, bool be, uint32_t type, const uint8_t *body, size_t n)
{
    uint8_t h[8], t[4];
    size_t pad = (4 - (n & 3)) & 3;
    uint32_t total = (uint32_t)(12 + n + pad);
    ng_u32(h, type, be);
    ng_u32(h + 4, total, be);
    ng_u32(t, total, be);
    fwrite(h, 1, 8, f);
    fwrite(body, 1, n, f);
    fwrite("\0\0\0", 1, pad, f);
    fwrite(t, 1, 4, f);
}

/* Interfaces: 0 Ethernet (microseconds), 1 raw IP (if_tsresol 9), 2 SLL2 (if_tsresol 2^-20),
 * 3 LINKTYPE_USER0 (147), never decoded. */
static const struct {
    uint16_t linktype;
    uint8_t tsresol; /* 0: option absent */
} ng_ifs[4] = {{1, 0}, {101, 9}, {276, 0x80 | 20}, {147, 6}};

static void ng_section(FILE *f, bool be)
{
    uint8_t shb[16];
    ng_u32(shb, 0x1a2b3c4du, be);
    ng_u16(shb + 4, 1, be);
    ng_u16(shb + 6, 0, be);
    memset(shb + 8, 0xff, 8);
    ng_block(f, be, 0x0a0d0d0au, shb, sizeof(shb));
    for (int i = 0; i < 4; i++) {
        uint8_t idb[20];
        size_t n = 8;
        ng_u16(idb, ng_ifs[i].linktype, be);
        ng_u16(idb + 2, 0, be);
        ng_u32(idb + 4, 0, be);
        if (ng_ifs[i].tsresol) {
            ng_u16(idb + 8, 9, be);
            ng_u16(idb + 10, 1, be);
            idb[12] = ng_ifs[i].tsresol;
            idb[13] = idb[14] = idb[15] = 0;
            ng_u32(idb + 16, 0, be); /* opt_endofopt */
            n = 20;
        }
        ng_block(f, be, 1, idb, n);
    }
    /* Blocks of types smtpscope does not know or does not read: an NRB with garbage, an ISB,
     * a DSB, a custom block, a reserved type and one with the high bit set. */
    static const uint32_t odd[] = {4, 5, 0x0a, 0x00000bad, 0x40000bad, 0x12345678, 0x80000001};
    uint8_t junk[37];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(0xa5 ^ i);
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
        ng_block(f, be, odd[i], junk, sizeof(junk) - i * 3);
}

/* A time in ns in the interface's units. */
static uint64_t ng_units(unsigned ifc, uint64_t ns)
{
    switch (ng_ifs[ifc].tsresol) {
    case 0:
    case 6:
        return ns / 1000;
    case 9:
        return ns;
    default: /* 0x80 | 20: 2^-20 s */
        return (ns / 1000000000u << 20) + ((ns % 1000000000u) << 20) / 1000000000u;
    }
}

static int sink_ng(struct gen *g, const uint8_t *frame, size_t len)
{
    unsigned ifc = g->ng_if;
    g->ng_if = (g->ng_if + 1) % 3;
    static uint8_t body[SYN_FRAME_MAX + 64];
    const uint8_t *pkt = frame;
    size_t n = len;
    uint8_t sll2[SYN_FRAME_MAX + 32];
    if (ng_ifs[ifc].linktype == 101) { /* raw IP: drop the Ethernet header */
        pkt = frame + 14;
        n = len - 14;
    } else if (ng_ifs[ifc].linktype == 276) { /* SLL2: protocol, ifindex, ARPHRD, type, addr */
        memset(sll2, 0, 20);
        sll2[0] = 0x08;
        sll2[1] = 0x00;
        sll2[7] = 3;
        sll2[9] = 1;
        sll2[11] = 6;
        memcpy(sll2 + 12, frame + 6, 6);
        memcpy(sll2 + 20, frame + 14, len - 14);
        pkt = sll2;
        n = len - 14 + 20;
    }
    uint64_t units = ng_units(ifc, (uint64_t)g->ts);
    ng_u32(body, ifc, g->ng_be);
    ng_u32(body + 4, (uint32_t)(units >> 32), g->ng_be);
    ng_u32(body + 8, (uint32_t)units, g->ng_be);
    ng_u32(body + 12, (uint32_t)n, g->ng_be);
    ng_u32(body + 16, (uint32_t)n, g->ng_be);
    memcpy(body + 20, pkt, n);
    ng_block(g->ng, g->ng_be, 6, body, 20 + n);
    /* Now and then a packet on the unreadable interface, and an unknown block. */
    if (g->frames % 5 == 0) {
        units = ng_units(3, (uint64_t)g->ts);
        ng_u32(body, 3, g->ng_be);
        ng_u32(body + 4, (uint32_t)(units >> 32), g->ng_be);
        ng_u32(body + 8, (uint32_t)units, g->ng_be);
        ng_block(g->ng, g->ng_be, 6, body, 20 + n);
        ng_block(g->ng, g->ng_be, 0x0badf00du, body, 9);
    }
    return ferror(g->ng) ? -1 : 0;
}

static int gen_pcapng(struct gen *g, struct ctx *x)
{
    static struct real r;
    path_in(x, "multi-if.pcapng");
    memset(g, 0, offsetof(struct gen, frame));
    g->ng = fopen(x->files[0], "wb");
    if (!g->ng)
        return -1;
    g->sink = sink_ng;
    g->ts = BASE_TS;
    g->tick = 100000;
    real_init(&r, 1000, 2000);
    ng_section(g->ng, false);
    for (int i = 0; real_step(g, &r); i++)
        if (i == 20) { /* the rest in a big-endian section */
            g->ng_be = true;
            ng_section(g->ng, true);
        }
    int rc = fclose(g->ng) == 0 && !g->fail ? 0 : -1;
    g->ng = NULL;
    return rc;
}

/* ------------------------------------------------------------ the checks */

struct run {
    int status;      /* exit status, or 128 + signal */
    long maxrss_kib; /* the child's peak RSS */
    double secs;     /* wall clock */
    char *out, *err; /* stdout, stderr */
    struct jv *lines[64];
    int nlines; /* session/finding records kept (the real session's and a few others) */
    struct jv *summary;
    long sessions;          /* session records seen */
    long pairs, self_pairs; /* compare: pair records, and those pairing session i with i */
};

static int failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    failures++;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    size_t k;
    while (b && (k = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (cap - n < 2) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
            }
            b = nb;
        }
    }
    fclose(f);
    if (b)
        b[n] = 0;
    return b;
}

/* Runs smtpscope with argv; output in WORKDIR/out.json and err.txt. */
static void run(struct ctx *x, char **argv, struct run *r)
{
    char outp[600], errp[600];
    snprintf(outp, sizeof(outp), "%s/out.json", x->dir);
    snprintf(errp, sizeof(errp), "%s/err.txt", x->dir);
    memset(r, 0, sizeof(*r));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0)
            _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    if (pid < 0 || wait4(pid, &st, 0, &ru) < 0) {
        fail("cannot run %s: %s", argv[0], strerror(errno));
        r->status = -1;
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    r->maxrss_kib = ru.ru_maxrss;
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r->out = slurp(outp);
    r->err = slurp(errp);
    if (!r->out || !r->err) {
        fail("cannot read smtpscope's output");
        return;
    }
    /* Keep the summary, the real session's records and the first few others. */
    for (char *p = r->out, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl)
            nl = p + strlen(p);
        char save = *nl;
        *nl = 0;
        bool session = strncmp(p, "{\"type\":\"session\"", 17) == 0;
        bool finding = strncmp(p, "{\"type\":\"finding\"", 17) == 0;
        bool summary = strncmp(p, "{\"type\":\"summary\"", 17) == 0;
        if (strncmp(p, "{\"type\":\"pair\"", 14) == 0) {
            /* compare: count the pairs of a session with the same-numbered one */
            const char *o = strstr(p, "\"session_outside\":"),
                       *in = strstr(p, "\"session_inside\":");
            r->pairs++;
            if (o && in && strtol(o + 18, NULL, 10) == strtol(in + 17, NULL, 10))
                r->self_pairs++;
        }
        r->sessions += session;
        bool real = (session || finding) && strstr(p, "\"client\":\"203.0.113.10:40000\"");
        if (summary || ((session || finding) && r->nlines < 40) || (real && r->nlines < 64)) {
            char err[256];
            struct jv *v = jv_parse(p, err, sizeof(err));
            if (!v)
                fail("unparsable JSON line (%s): %.200s", err, p);
            else if (summary) {
                jv_free(r->summary);
                r->summary = v;
            } else {
                r->lines[r->nlines++] = v;
            }
        }
        *nl = save;
        if (!save)
            break;
    }
}

static void run_free(struct run *r)
{
    for (int i = 0; i < r->nlines; i++)
        jv_free(r->lines[i]);
    jv_free(r->summary);
    free(r->out);
    free(r->err);
}

/* The checks every case makes: exit status, no sanitizer report, memory. */
static void check_common(const char *name, struct run *r, int want_status, long budget_mib)
{
    printf("%s: exit %d, peak RSS %.1f MiB, %.2f s, %ld session records%s\n", name, r->status,
           (double)r->maxrss_kib / 1024.0, r->secs, r->sessions,
           SANITIZED ? " (sanitizer build: RSS budget loosened)" : "");
    if (r->status != want_status)
        fail("exit status %d, expected %d%s", r->status, want_status,
             r->status >= 128  ? " (killed by a signal)"
             : r->status == 86 ? " (AddressSanitizer report)"
             : r->status == 87 ? " (UndefinedBehaviorSanitizer report)"
                               : "");
    if (r->err && (strstr(r->err, "Sanitizer") || strstr(r->err, "runtime error") ||
                   strstr(r->err, "LeakSanitizer")))
        fail("sanitizer report on stderr:\n%s", r->err);
    /* Under ASan, RSS holds shadow memory (an eighth of the heap and more), the
     * allocator's redzones and a quarantine of freed blocks, which the tests
     * fix at 64 MiB (tests/CMakeLists.txt): the budget is then only a guard
     * against unbounded growth. */
    long cap = SANITIZED ? budget_mib * 4 + 64 : budget_mib;
    if (r->maxrss_kib > cap * 1024)
        fail("peak RSS %.1f MiB over the budget of %ld MiB%s", (double)r->maxrss_kib / 1024.0, cap,
             SANITIZED ? " (sanitizer build: 4 x budget + 64)" : "");
    if (!r->summary && want_status != 2)
        fail("no summary record");
}

static const struct jv *real_session(struct run *r)
{
    for (int i = 0; i < r->nlines; i++) {
        const struct jv *t = jv_get(r->lines[i], "type"), *c = jv_get(r->lines[i], "client");
        if (t && c && !strcmp(jv_text(t), "session") && !strcmp(jv_text(c), "203.0.113.10:40000") &&
            !strcmp(jv_text(jv_get(r->lines[i], "server")), "192.0.2.25:25"))
            return r->lines[i];
    }
    return NULL;
}

static bool has_item(const struct jv *arr, const char *s)
{
    for (size_t i = 0; arr && arr->type == JV_ARR && i < arr->n; i++)
        if (!strcmp(jv_text(arr->v[i]), s))
            return true;
    return false;
}

static long num(const struct jv *o, const char *key)
{
    const struct jv *v = o ? jv_get(o, key) : NULL;
    return v && v->type == JV_NUM ? strtol(v->s, NULL, 10) : -1;
}

/* The real session is there, read in full, with its three findings. */
static const struct jv *check_real(struct run *r, bool whole)
{
    const struct jv *s = real_session(r);
    if (!s) {
        fail("the real session 203.0.113.10:40000 -> 192.0.2.25:25 is missing");
        return NULL;
    }
    const struct jv *f = jv_get(s, "findings");
    static const char *const want[] = {"starttls_stripped", "banner_masked", "ehlo_keyword_masked"};
    for (int i = 0; i < 3; i++)
        if (!has_item(f, want[i]))
            fail("the real session lacks the finding %s", want[i]);
    if (whole) {
        if (num(s, "messages_accepted") != 1 || num(s, "rcpt_count") != 1)
            fail("the real session's message was not read (messages_accepted %ld, rcpt %ld)",
                 num(s, "messages_accepted"), num(s, "rcpt_count"));
        if (num(s, "gaps") != 0)
            fail("the real session has %ld gaps", num(s, "gaps"));
        const struct jv *c = jv_get(s, "close");
        if (!c || strcmp(jv_text(c), "fin"))
            fail("the real session closed as %s, not fin", c ? jv_text(c) : "?");
    }
    /* Each finding is also a finding record. */
    int n = 0;
    for (int i = 0; i < r->nlines; i++)
        if (!strcmp(jv_text(jv_get(r->lines[i], "type")), "finding") &&
            !strcmp(jv_text(jv_get(r->lines[i], "client")), "203.0.113.10:40000"))
            n++;
    if (n < 3)
        fail("%d finding records for the real session, expected at least 3", n);
    return s;
}

/* An event of this kind on some kept session (detail containing `detail` if given). */
static bool has_event(struct run *r, const char *kind, const char *detail)
{
    for (int i = 0; i < r->nlines; i++) {
        const struct jv *ev = jv_get(r->lines[i], "events");
        for (size_t k = 0; ev && ev->type == JV_ARR && k < ev->n; k++) {
            const struct jv *kd = jv_get(ev->v[k], "kind"), *dt = jv_get(ev->v[k], "detail");
            if (kd && !strcmp(jv_text(kd), kind) &&
                (!detail || (dt && strstr(jv_text(dt), detail))))
                return true;
        }
    }
    return false;
}

static const struct jv *session_to(struct run *r, const char *server)
{
    for (int i = 0; i < r->nlines; i++)
        if (!strcmp(jv_text(jv_get(r->lines[i], "type")), "session") &&
            !strcmp(jv_text(jv_get(r->lines[i], "server")), server))
            return r->lines[i];
    return NULL;
}

static bool session_event(const struct jv *s, const char *kind, const char *detail)
{
    const struct jv *ev = s ? jv_get(s, "events") : NULL;
    for (size_t k = 0; ev && ev->type == JV_ARR && k < ev->n; k++) {
        const struct jv *kd = jv_get(ev->v[k], "kind"), *dt = jv_get(ev->v[k], "detail");
        if (kd && !strcmp(jv_text(kd), kind) && (!detail || (dt && strstr(jv_text(dt), detail))))
            return true;
    }
    return false;
}

static void want_event(struct run *r, const char *kind, const char *detail)
{
    if (!has_event(r, kind, detail))
        fail("no %s event%s%s", kind, detail ? " with " : "", detail ? detail : "");
}

static void want_stderr(struct run *r, const char *a, const char *b)
{
    if (!r->err || !strstr(r->err, a) || (b && !strstr(r->err, b)))
        fail("stderr does not say \"%s\"%s%s: %s", a, b ? " and " : "", b ? b : "",
             r->err ? r->err : "");
}

/* ------------------------------------------------------------ the table */

struct adv_case {
    const char *name;
    int (*gen)(struct gen *, struct ctx *);
    int status;         /* expected exit status */
    long budget_mib;    /* peak RSS allowed in the normal build */
    const char *config; /* YAML for -c, or NULL */
    void (*check)(struct run *r);
    bool compare; /* run `compare -f json -v FILE FILE` instead of analyze */
};

static void ck_syn_flood(struct run *r)
{
    check_real(r, true);
    if (num(r->summary, "tcp_flows") < (long)FLOOD_FLOWS)
        fail("summary tcp_flows %ld, expected at least %u", num(r->summary, "tcp_flows"),
             FLOOD_FLOWS);
    if (num(r->summary, "evicted") < (long)(FLOOD_FLOWS - FLOOD_MAX_FLOWS))
        fail("summary evicted %ld: expected at least %u past the table's %u flows",
             num(r->summary, "evicted"), FLOOD_FLOWS - FLOOD_MAX_FLOWS, FLOOD_MAX_FLOWS);
    if (num(r->summary, "sessions") != 1)
        fail("summary sessions %ld, expected 1 (half-open flows are no session)",
             num(r->summary, "sessions"));
}

static void ck_syn_flood_memcap(struct run *r)
{
    check_real(r, true);
    if (num(r->summary, "tcp_flows") < (long)FLOOD_FLOWS)
        fail("summary tcp_flows %ld, expected at least %u", num(r->summary, "tcp_flows"),
             FLOOD_FLOWS);
    /* max_flows alone would evict 1,000,000 - 262,144 flows; the cap far more */
    if (num(r->summary, "evicted") < (long)(FLOOD_FLOWS - FLOOD_FLOWS / 8))
        fail("summary evicted %ld: expected the memory cap to evict at least %u half-open flows",
             num(r->summary, "evicted"), FLOOD_FLOWS - FLOOD_FLOWS / 8);
    if (num(r->summary, "sessions") != 1)
        fail("summary sessions %ld, expected 1", num(r->summary, "sessions"));
    /* Every connection is accounted for once: evicted, empty (the half-open
     * flows still in the table at the end) or a session. */
    long ev = num(r->summary, "evicted"), em = num(r->summary, "empty_connections");
    if (ev + em + 1 != num(r->summary, "tcp_flows"))
        fail("evicted %ld + empty_connections %ld + 1 session != tcp_flows %ld", ev, em,
             num(r->summary, "tcp_flows"));
}

static void ck_endless(struct run *r)
{
    check_real(r, true);
    want_event(r, "line_too_long", NULL);
    bool big = false;
    for (int i = 0; i < r->nlines; i++)
        if (num(r->lines[i], "bytes_c2s") >= (50l << 20))
            big = true;
    if (!big)
        fail("no session with the 50 MiB client line counted in bytes_c2s");
}

static void ck_multiline(struct run *r)
{
    check_real(r, true);
    bool found = false;
    for (int i = 0; i < r->nlines; i++) {
        const struct jv *s = r->lines[i];
        if (!strcmp(jv_text(jv_get(s, "server")), "192.0.2.26:25")) {
            found = true;
            const struct jv *b = jv_get(s, "banner"), *k = jv_get(s, "ehlo_keywords");
            if (!b || strcmp(jv_text(b), "220 many.example ESMTP"))
                fail("multi-line session: banner %s", b ? jv_text(b) : "missing");
            if (!k || k->type != JV_ARR || k->n < 1 || k->n > 1024)
                fail("multi-line session: EHLO keywords missing or not bounded (%zu)",
                     k ? k->n : 0);
            else
                printf("multi-line session: %zu EHLO keywords kept, %ld replies\n", k->n,
                       num(s, "replies"));
        }
    }
    if (!found)
        fail("the 100,000-line reply's session is missing");
    const struct jv *m = session_to(r, "192.0.2.26:25");
    if (m && num(m, "replies") != 3)
        fail("multi-line session: %ld replies, expected 3 (banner, the long one, 221)",
             num(m, "replies"));
}

static void ck_many(struct run *r)
{
    check_real(r, true);
    if (r->sessions != MANY_SESSIONS + 1)
        fail("%ld sessions, expected %d", r->sessions, MANY_SESSIONS + 1);
}

static void ck_frag(struct run *r)
{
    check_real(r, true);
    if (num(r->summary, "ip_fragments") != FRAG_DATAGRAMS * FRAG_PIECES)
        fail("summary ip_fragments %ld, expected %d", num(r->summary, "ip_fragments"),
             FRAG_DATAGRAMS * FRAG_PIECES);
    if (num(r->summary, "ip_incomplete") < FRAG_DATAGRAMS)
        fail("summary ip_incomplete %ld: the %d datagrams never completed",
             num(r->summary, "ip_incomplete"), FRAG_DATAGRAMS);
    if (num(r->summary, "ip_reassembled") != 0)
        fail("summary ip_reassembled %ld, expected 0", num(r->summary, "ip_reassembled"));
}

static void ck_pipelined(struct run *r)
{
    check_real(r, true);
    want_event(r, "pending_overflow", NULL);
}

static void ck_overlap(struct run *r)
{
    const struct jv *s = check_real(r, true);
    want_event(r, "overlap_mismatch", NULL);
    const struct jv *tcp = s ? jv_get(s, "tcp") : NULL;
    long diff = num(tcp ? jv_get(tcp, "client") : NULL, "overlaps_diff");
    if (diff < REAL_BODY_LEN)
        fail("real session client overlaps_diff %ld, expected at least %d", diff, REAL_BODY_LEN);
    bool second = false;
    for (int i = 0; i < r->nlines; i++)
        if (!strcmp(jv_text(jv_get(r->lines[i], "server")), "192.0.2.26:25"))
            second = true;
    if (!second)
        fail("the out-of-order overlap session is missing");
}

static void ck_seq_wrap(struct run *r)
{
    const struct jv *s = check_real(r, true);
    if (s && num(s, "bytes_c2s") != real_c2s)
        fail("real session bytes_c2s %ld, expected %ld", num(s, "bytes_c2s"), real_c2s);
}

static void ck_tuple_reuse(struct run *r)
{
    check_real(r, true);
    if (r->sessions < 20001)
        fail("%ld sessions, expected 20,001 (every reuse of the 4-tuple is a new one)",
             r->sessions);
    want_event(r, "port_reused", NULL);
}

/* compare on the 20,001 sessions of tuple_reuse against themselves: 20,000
 * look-alikes within 2.4 s, each a candidate partner of every other. */
static void ck_compare(struct run *r)
{
    if (num(r->summary, "pairs") != 20001 || num(r->summary, "only_outside") != 0 ||
        num(r->summary, "only_inside") != 0)
        fail("compare: %ld pairs (%ld, %ld unpaired), expected every session paired",
             num(r->summary, "pairs"), num(r->summary, "only_outside"),
             num(r->summary, "only_inside"));
    if (r->pairs != 20001 || r->self_pairs != r->pairs)
        fail("compare: %ld pair records, %ld of a session with itself; expected 20001 of each",
             r->pairs, r->self_pairs);
}

static void ck_zero_window(struct run *r)
{
    const struct jv *s = check_real(r, true);
    if (s && num(s, "bytes_c2s") != real_c2s)
        fail("real session bytes_c2s %ld, expected %ld", num(s, "bytes_c2s"), real_c2s);
    if (has_event(r, "overlap_mismatch", NULL))
        fail("zero-window probes reported as an overlap with different bytes");
}

static void ck_snaplen(struct run *r)
{
    const struct jv *s = real_session(r);
    if (!s)
        fail("the real session is missing");
    else if (num(s, "gaps") <= 0)
        fail("snaplen 64: no gap on the real session");
    if (!has_event(r, "snaplen_truncated", NULL) && !has_event(r, "gap", "snaplen"))
        fail("no snaplen_truncated event or gap with reason snaplen");
}

static void ck_real_whole(struct run *r)
{
    check_real(r, true);
}

static void ck_cut(struct run *r)
{
    check_real(r, false);
    want_stderr(r, "cut-record.pcap", "ends inside packet");
}

static void ck_cut_ng(struct run *r)
{
    check_real(r, false);
    want_stderr(r, "cut-block.pcapng", "ends inside");
}

static void ck_bad_magic(struct run *r)
{
    check_real(r, true);
    want_stderr(r, "bad-magic.pcap", "not a pcap or pcapng file");
    if (strstr(r->err, "good.pcap"))
        fail("stderr blames the good file: %s", r->err);
}

static void ck_caplen_huge(struct run *r)
{
    check_real(r, true);
    want_stderr(r, "caplen-huge.pcap", "exceeds the maximum");
}

static void ck_ns(struct run *r)
{
    const struct jv *s = check_real(r, true);
    const struct jv *st = s ? jv_get(s, "start") : NULL;
    if (st && strncmp(jv_text(st), "1709287200.1135", 15))
        fail("nanosecond capture: start %s, expected 1709287200.1135...", jv_text(st));
}

static void ck_backwards(struct run *r)
{
    check_real(r, true);
    if (num(r->summary, "ts_backwards") <= 0)
        fail("summary ts_backwards %ld", num(r->summary, "ts_backwards"));
}

static void ck_options(struct run *r)
{
    check_real(r, true);
    want_event(r, "tcp_option_malformed", NULL);
    if (num(r->summary, "malformed") <= 0)
        fail("summary malformed %ld: the bad data offsets were not counted",
             num(r->summary, "malformed"));
}

static void ck_pcapng(struct run *r)
{
    const struct jv *s = check_real(r, true);
    const struct jv *st = s ? jv_get(s, "start") : NULL;
    if (st && strncmp(jv_text(st), "1709287200.1135", 15))
        fail("pcapng: start %s, expected 1709287200.1135...", jv_text(st));
    const struct jv *u = r->summary ? jv_get(r->summary, "unsupported_linktypes") : NULL;
    if (!u || !jv_get(u, "147"))
        fail("summary unsupported_linktypes does not count link type 147");
}

static void ck_tls(struct run *r)
{
    check_real(r, true);
    const struct jv *a = session_to(r, "192.0.2.26:25"), *b = session_to(r, "192.0.2.27:465");
    if (!a || !b) {
        fail("the STARTTLS and port-465 sessions are not both reported");
        return;
    }
    const struct jv *st = jv_get(a, "starttls");
    if (!st || strcmp(jv_text(jv_get(st, "result")), "accepted"))
        fail("STARTTLS session: starttls result is not accepted");
    if (!session_event(a, "tls_malformed", "16 03 01 ff ff"))
        fail("STARTTLS session: the 65535-byte record is not a tls_malformed event");
    if (!session_event(a, "tls_message_too_long", "8388607"))
        fail("STARTTLS session: the 8 MiB ServerHello is not a tls_message_too_long event");
    if (!session_event(b, "tls_message_too_long", "16777215"))
        fail("port 465: the 16 MiB ClientHello is not a tls_message_too_long event");
    if (!session_event(b, "tls_malformed", "17 03 03 ff ff"))
        fail("port 465: the 65535-byte application data record is not a tls_malformed event");
}

/* Budgets (peak RSS, normal build): smtpscope's floor with nothing to hold
 * (binary, libc, OpenSSL, libyaml, its read buffer: about 7 MiB) plus what
 * the case's limits let it hold, plus a margin.  The flood is bounded by
 * limits.max_flows: 65536 flows at about 800 bytes each is 52 MiB, so 96 MiB
 * leaves 32 MiB of margin over 64 MiB.  syn_flood_memcap holds the same
 * flood under limits.memory_mb: 24 MiB of heap plus the floor and the mapped
 * capture pages, 44 MiB.  The others hold a few sessions whose
 * buffers are all bounded (1 MiB out of order per direction, 64 KiB of held
 * client bytes, 1024-byte lines, 512 pending commands, 2048 transcript lines,
 * 64 KiB TLS messages): 24 MiB, or 32 MiB where tens of thousands of
 * connections or 60 MB of payload pass through.  many_dialogues holds 100
 * sessions' kept dialogues at up to 2 MiB each (2048 lines of 1024 bytes):
 * 224 MiB. */
static const struct adv_case cases[] = {
    {"syn_flood", gen_syn_flood, 1, 96, FLOOD_CONFIG, ck_syn_flood, false},
    {"syn_flood_memcap", gen_syn_flood, 1, MEMCAP_MIB + 20, MEMCAP_CONFIG, ck_syn_flood_memcap,
     false},
    {"endless_line", gen_endless_line, 1, 32, NULL, ck_endless, false},
    {"multiline_100k", gen_multiline, 1, 24, NULL, ck_multiline, false},
    {"compare_lookalikes", gen_tuple_reuse, 0, 320, NULL, ck_compare, true},
    {"frag_flood", gen_frag_flood, 1, 40, NULL, ck_frag, false},
    {"many_dialogues", gen_many_dialogues, 1, 224, NULL, ck_many, false},
    {"pipelined_100k", gen_pipelined, 1, 24, NULL, ck_pipelined, false},
    {"overlap_conflict", gen_overlap, 1, 32, NULL, ck_overlap, false},
    {"seq_wrap", gen_seq_wrap, 1, 24, NULL, ck_seq_wrap, false},
    {"tuple_reuse", gen_tuple_reuse, 1, 32, NULL, ck_tuple_reuse, false},
    {"zero_window", gen_zero_window, 1, 24, NULL, ck_zero_window, false},
    {"snaplen64", gen_snaplen64, 0, 24, NULL, ck_snaplen, false},
    {"cut_record", gen_cut_record, 2, 24, NULL, ck_cut, false},
    {"cut_block_pcapng", gen_cut_record_ng, 2, 24, NULL, ck_cut_ng, false},
    {"bad_magic", gen_bad_magic, 2, 24, NULL, ck_bad_magic, false},
    {"caplen_over_snaplen", gen_caplen_snaplen, 1, 24, NULL, ck_real_whole, false},
    {"caplen_over_256k", gen_caplen_huge, 2, 24, NULL, ck_caplen_huge, false},
    {"pcapng_multi_if", gen_pcapng, 1, 24, NULL, ck_pcapng, false},
    {"pcap_nanosecond", gen_pcap_ns, 1, 24, NULL, ck_ns, false},
    {"ts_backwards", gen_ts_backwards, 1, 24, NULL, ck_backwards, false},
    {"tcp_options", gen_tcp_options, 1, 24, NULL, ck_options, false},
    {"tls_absurd", gen_tls_absurd, 1, 24, NULL, ck_tls, false},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static const struct adv_case *find_case(const char *name)
{
    for (size_t i = 0; i < NCASES; i++)
        if (!strcmp(cases[i].name, name))
            return &cases[i];
    return NULL;
}

int main(int argc, char **argv)
{
    static struct gen g;
    if (argc == 2 && !strcmp(argv[1], "--list")) {
        for (size_t i = 0; i < NCASES; i++)
            puts(cases[i].name);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "--gen")) {
        const struct adv_case *c = find_case(argv[2]);
        if (!c)
            return 2;
        struct ctx x = {.dir = argv[3]};
        mkdir(argv[3], 0755);
        return c->gen(&g, &x) < 0 ? 1 : 0;
    }
    if (argc < 4 || argc > 8) {
        fputs("usage: adversarial CASE SMTPSCOPE WORKDIR [OPTION...] | --gen CASE DIR | --list\n",
              stderr);
        return 2;
    }
    const struct adv_case *c = find_case(argv[1]);
    if (!c) {
        fprintf(stderr, "adversarial: no case %s\n", argv[1]);
        return 2;
    }
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", argv[3], c->name);
    mkdir(argv[3], 0755);
    mkdir(dir, 0755);
    struct ctx x = {.dir = dir};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (c->gen(&g, &x) < 0) {
        printf("FAIL: could not write the capture\n");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%s: capture written in %.2f s\n", c->name,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    char a_analyze[] = "analyze", a_f[] = "-f", a_json[] = "json", a_v[] = "-v";
    char *av[24];
    int ac = 0;
    char a_compare[] = "compare";
    av[ac++] = argv[2];
    av[ac++] = c->compare ? a_compare : a_analyze;
    av[ac++] = a_f;
    av[ac++] = a_json;
    av[ac++] = a_v;
    if (c->compare)
        av[ac++] = x.files[0];
    long budget = c->budget_mib;
    for (int i = 4; i < argc; i++) { /* extra options, e.g. -j 2 */
        av[ac++] = argv[i];
        /* Each worker thread has its own malloc arena, tracker and session
         * memory and holds packets in flight (up to PAR_QUEUE_DEPTH batches
         * and the mapped pages behind the slowest worker). */
        if (strcmp(argv[i], "-j") == 0 && i + 1 < argc)
            budget += 8 * atol(argv[i + 1]);
    }
    char a_c[] = "-c", cfg[600];
    if (c->config) {
        snprintf(cfg, sizeof(cfg), "%s/config.yaml", dir);
        FILE *f = fopen(cfg, "w");
        if (!f || fputs(c->config, f) < 0 || fclose(f) != 0) {
            printf("FAIL: cannot write %s\n", cfg);
            return 1;
        }
        av[ac++] = a_c;
        av[ac++] = cfg;
    }
    for (int i = 0; i < x.nfiles; i++)
        av[ac++] = x.files[i];
    av[ac] = NULL;
    struct run r;
    run(&x, av, &r);
    check_common(c->name, &r, c->status, budget);
    if (r.out && r.err)
        c->check(&r);
    if (failures && r.err && r.err[0])
        printf("stderr:\n%.2000s\n", r.err);
    run_free(&r);
    if (failures) {
        printf("%s: %d failure(s); capture and output kept in %s\n", c->name, failures, dir);
        return 1;
    }
    for (int i = 0; i < x.nfiles; i++)
        unlink(x.files[i]);
    printf("%s: ok\n", c->name);
    return 0;
}
