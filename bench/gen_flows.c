/* gen_flows.c - the many-flows benchmark capture: one synthesized SMTP session
 * stamped out N times with distinct client addresses, interleaved in time,
 * plus a SYN flood of half-open connections to the same server.
 *
 * The synthesizer simulates every session in full (TCP, personas, TLS) and
 * keeps them all in memory, and gives one scenario's sessions 20000 distinct
 * client ports; a million sessions is beyond it.  So the session itself comes
 * from the synthesizer (bench/scenarios/flow-template.yaml, one short
 * Ethernet/IPv4 session) and this program only copies it: session i is the
 * template with the client address 10.x.y.z (x.y.z = i + 1) and its frames
 * shifted to start at i * (template duration / concurrency), so about
 * `concurrency` sessions are open at any time.  The SYN flood's SYNs come
 * from 172.16.0.0/12 sources and random ports (a fixed-seed generator), spread
 * evenly over the same time span, never answered.  IPv4 and TCP checksums are
 * recomputed, so the output is a valid capture (tshark agrees).
 *
 * Usage: smtpscope-gen-flows [-n SESSIONS] [-c CONCURRENCY] [-s SYNS] [-S SEED]
 *            TEMPLATE.pcap OUT.pcap
 * Defaults: 1000000 sessions, 10000 concurrent, 1000000 SYNs, seed 1.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Frames of the template kept; a short SMTP session has a few dozen. */
#define GF_TEMPLATE_MAX 4096
/* Largest template frame copied. */
#define GF_FRAME_MAX 65535
#define GF_ETH_LEN 14

struct gf_frame {
    int64_t rel_us; /* from the template's first frame */
    uint32_t len;
    uint32_t wirelen;
    uint8_t *data;
    bool from_client;
};

/* Next packet of one stamped-out session, for the time-ordered merge. */
struct gf_slot {
    int64_t at_us;
    uint32_t session;
    uint32_t frame;
};

static uint64_t gf_rng(uint64_t *s)
{
    /* splitmix64: fixed seed, same capture every run. */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint16_t gf_sum_fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static uint32_t gf_sum(const uint8_t *p, size_t n, uint32_t s)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        s += (uint32_t)(p[n - 1] << 8);
    return s;
}

/* Recomputes the IPv4 header and TCP checksums of an Ethernet/IPv4/TCP frame. */
static void gf_checksums(uint8_t *f, size_t len)
{
    uint8_t *ip = f + GF_ETH_LEN;
    size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
    size_t tot = (size_t)(ip[2] << 8 | ip[3]);
    if (len < GF_ETH_LEN + tot || tot < ihl + 20)
        return;
    ip[10] = ip[11] = 0;
    uint16_t c = gf_sum_fold(gf_sum(ip, ihl, 0));
    ip[10] = (uint8_t)(c >> 8);
    ip[11] = (uint8_t)c;
    uint8_t *tcp = ip + ihl;
    size_t tl = tot - ihl;
    tcp[16] = tcp[17] = 0;
    uint32_t s = gf_sum(ip + 12, 8, 0);
    s += 6 + (uint32_t)tl;
    c = gf_sum_fold(gf_sum(tcp, tl, s));
    tcp[16] = (uint8_t)(c >> 8);
    tcp[17] = (uint8_t)c;
}

static void gf_heap_down(struct gf_slot *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l].at_us < h[m].at_us)
            m = l;
        if (r < n && h[r].at_us < h[m].at_us)
            m = r;
        if (m == i)
            return;
        struct gf_slot t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void gf_heap_up(struct gf_slot *h, size_t i)
{
    while (i > 0 && h[(i - 1) / 2].at_us > h[i].at_us) {
        struct gf_slot t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static void gf_write(pcap_dumper_t *d, int64_t at_us, const uint8_t *p, uint32_t len,
                     uint32_t wirelen)
{
    struct pcap_pkthdr h;
    h.ts.tv_sec = (time_t)(at_us / 1000000);
    h.ts.tv_usec = (suseconds_t)(at_us % 1000000);
    h.caplen = len;
    h.len = wirelen;
    pcap_dump((u_char *)d, &h, p);
}

int main(int argc, char **argv)
{
    uint64_t nsess = 1000000, conc = 10000, nsyn = 1000000, seed = 1;
    int c;
    while ((c = getopt(argc, argv, "n:c:s:S:")) != -1) {
        switch (c) {
        case 'n':
            nsess = strtoull(optarg, NULL, 10);
            break;
        case 'c':
            conc = strtoull(optarg, NULL, 10);
            break;
        case 's':
            nsyn = strtoull(optarg, NULL, 10);
            break;
        case 'S':
            seed = strtoull(optarg, NULL, 10);
            break;
        default:
            goto usage;
        }
    }
    if (optind != argc - 2 || conc == 0 || nsess > 0xfffffe) {
    usage:
        fputs("usage: smtpscope-gen-flows [-n SESSIONS] [-c CONCURRENCY] [-s SYNS] [-S SEED] "
              "TEMPLATE.pcap OUT.pcap\n",
              stderr);
        return 2;
    }
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *in = pcap_open_offline(argv[optind], err);
    if (!in) {
        fprintf(stderr, "smtpscope-gen-flows: %s: %s\n", argv[optind], err);
        return 2;
    }
    if (pcap_datalink(in) != DLT_EN10MB) {
        fprintf(stderr, "smtpscope-gen-flows: %s: the template must be Ethernet\n", argv[optind]);
        return 2;
    }
    static struct gf_frame tpl[GF_TEMPLATE_MAX];
    size_t nt = 0;
    struct pcap_pkthdr *h;
    const u_char *data;
    int64_t t0 = 0;
    uint8_t client[4] = {0};
    while (pcap_next_ex(in, &h, &data) == 1) {
        /* Ethernet, IPv4, TCP only: the template is made that way. */
        if (h->caplen < GF_ETH_LEN + 40 || data[12] != 0x08 || data[13] != 0x00 ||
            data[GF_ETH_LEN + 9] != 6)
            continue;
        if (nt == GF_TEMPLATE_MAX || h->caplen > GF_FRAME_MAX) {
            fprintf(stderr, "smtpscope-gen-flows: template too large\n");
            return 2;
        }
        int64_t at = (int64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
        const uint8_t *ip = data + GF_ETH_LEN;
        if (nt == 0) {
            t0 = at;
            memcpy(client, ip + 12, 4);
        }
        struct gf_frame *f = &tpl[nt++];
        f->rel_us = at - t0;
        f->len = h->caplen;
        f->wirelen = h->len;
        f->data = malloc(h->caplen);
        if (!f->data)
            return 2;
        memcpy(f->data, data, h->caplen);
        f->from_client = memcmp(ip + 12, client, 4) == 0;
    }
    pcap_close(in);
    if (nt == 0) {
        fprintf(stderr, "smtpscope-gen-flows: no Ethernet/IPv4/TCP frame in the template\n");
        return 2;
    }
    int64_t dur = tpl[nt - 1].rel_us + 1;
    int64_t gap = dur / (int64_t)conc > 0 ? dur / (int64_t)conc : 1;
    int64_t span = gap * (int64_t)(nsess ? nsess : 1) + dur;
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 262144);
    pcap_dumper_t *out = pcap_dump_open(dead, argv[optind + 1]);
    if (!out) {
        fprintf(stderr, "smtpscope-gen-flows: %s: %s\n", argv[optind + 1], pcap_geterr(dead));
        return 2;
    }
    size_t hcap = (size_t)conc * 2 + 16;
    struct gf_slot *heap = malloc(hcap * sizeof(*heap));
    uint8_t *buf = malloc(GF_FRAME_MAX);
    if (!heap || !buf)
        return 2;
    size_t hn = 0;
    uint64_t next_sess = 0, syn_done = 0, frames = 0;
    uint64_t rng = seed;
    /* The SYN frame: the template's first frame (the client's SYN) re-addressed. */
    const struct gf_frame *synf = &tpl[0];
    for (;;) {
        int64_t next_start = next_sess < nsess ? t0 + (int64_t)next_sess * gap : INT64_MAX;
        int64_t next_syn = syn_done < nsyn
                               ? t0 + (int64_t)((double)span * (double)syn_done / (double)nsyn)
                               : INT64_MAX;
        int64_t next_pkt = hn ? heap[0].at_us : INT64_MAX;
        if (next_start == INT64_MAX && next_syn == INT64_MAX && next_pkt == INT64_MAX)
            break;
        if (next_start <= next_pkt && next_start <= next_syn) {
            if (hn == hcap) {
                fprintf(stderr, "smtpscope-gen-flows: merge heap full\n");
                return 2;
            }
            heap[hn] = (struct gf_slot){next_start, (uint32_t)next_sess, 0};
            gf_heap_up(heap, hn++);
            next_sess++;
            continue;
        }
        if (next_syn <= next_pkt) {
            memcpy(buf, synf->data, synf->len);
            uint8_t *ip = buf + GF_ETH_LEN;
            size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
            uint64_t r = gf_rng(&rng);
            ip[12] = 172;
            ip[13] = (uint8_t)(16 | ((r >> 8) & 0x0f));
            ip[14] = (uint8_t)(r >> 16);
            ip[15] = (uint8_t)(r >> 24);
            ip[4] = (uint8_t)(r >> 32);
            ip[5] = (uint8_t)(r >> 40);
            uint16_t sport = (uint16_t)(1024 + (r >> 48) % 64000);
            ip[ihl] = (uint8_t)(sport >> 8);
            ip[ihl + 1] = (uint8_t)sport;
            uint32_t seq = (uint32_t)gf_rng(&rng);
            ip[ihl + 4] = (uint8_t)(seq >> 24);
            ip[ihl + 5] = (uint8_t)(seq >> 16);
            ip[ihl + 6] = (uint8_t)(seq >> 8);
            ip[ihl + 7] = (uint8_t)seq;
            gf_checksums(buf, synf->len);
            gf_write(out, next_syn, buf, synf->len, synf->wirelen);
            frames++;
            syn_done++;
            continue;
        }
        struct gf_slot s = heap[0];
        const struct gf_frame *f = &tpl[s.frame];
        memcpy(buf, f->data, f->len);
        uint8_t *ip = buf + GF_ETH_LEN;
        uint32_t id = s.session + 1;
        uint8_t addr[4] = {10, (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id};
        memcpy(ip + (f->from_client ? 12 : 16), addr, 4);
        gf_checksums(buf, f->len);
        gf_write(out, s.at_us, buf, f->len, f->wirelen);
        frames++;
        if (s.frame + 1 < nt) {
            heap[0].frame = s.frame + 1;
            heap[0].at_us = t0 + (int64_t)s.session * gap + tpl[s.frame + 1].rel_us;
        } else {
            heap[0] = heap[--hn];
        }
        gf_heap_down(heap, hn, 0);
    }
    pcap_dump_close(out);
    pcap_close(dead);
    fprintf(stderr,
            "smtpscope-gen-flows: %" PRIu64 " sessions of %zu frames, %" PRIu64 " SYNs, %" PRIu64
            " frames over %.1f s\n",
            nsess, nt, nsyn, frames, (double)span / 1e6);
    free(heap);
    free(buf);
    for (size_t i = 0; i < nt; i++)
        free(tpl[i].data);
    return 0;
}
