/* live.c - `smtpscope live -i IFACE`: the analysis on a span or mirror port.
 *
 * libpcap in the create -> set -> activate order, a BPF filter from the
 * ports (VLAN-tagged traffic too), root dropped after activation (-Z), then
 * a poll() loop: packets feed the same pipeline as `analyze`, sessions and
 * findings are written as they end (JSON Lines line-buffered), wall-clock
 * time expires idle sessions, a stats line comes every --stats-interval
 * seconds, SIGHUP reopens -o (logrotate), SIGINT/SIGTERM/--duration/--count
 * end it: open sessions close as eof, the summary tells the drops.
 *
 * -w keeps the packets of flagged sessions: since a finding is only known
 * when its session ends, each flow's packets are held in a bounded buffer
 * until then (the oldest are let go past the caps, and the file then says
 * what it lacks).
 */
#include "cli/live.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capture/decode.h"
#include "capture/dump.h"
#include "cli/analyze.h"
#include "cli/config.h"
#include "common/str.h"
#include "report/report.h"

#define EXIT_USAGE 2

/* Default snapshot length: whole packets, TSO/GRO super-segments included. */
#define LIVE_SNAPLEN 262144
/* How long poll() waits before the loop looks at the clock and the signals. */
#define LIVE_POLL_MS 200
/* Packets held per flow for -w, and in all: the session's whole dialogue in
 * the usual case, a bounded tail of it otherwise. */
#define LIVE_FLOW_KEEP_BYTES (1u << 20)
#define LIVE_KEEP_TOTAL_BYTES (64u << 20)
/* Flows held for -w at once (then the least recently active is let go). */
#define LIVE_KEEP_FLOWS 65536

/* Signals only set flags; the loop acts on them. */
struct live_flags {
    volatile sig_atomic_t stop, reopen;
};

/* A process has one set of signal handlers, so their flags are the one
 * piece of static state; the loop reads them. */
static struct live_flags live_flags;

static void live_on_signal(int sig)
{
    if (sig == SIGHUP)
        live_flags.reopen = 1;
    else
        live_flags.stop = 1;
}

/* ---- packets held for -w ---- */

struct live_pkt {
    struct live_pkt *next;
    sc_time ts;
    uint32_t caplen, wirelen, linktype;
    uint8_t data[];
};

struct live_flow {
    uint8_t key[36]; /* lower endpoint first: address, port, address, port */
    bool used;
    struct live_pkt *head, *tail;
    size_t bytes;
    sc_time touched;
};

struct live_keep {
    struct live_flow *flows; /* open addressing, LIVE_KEEP_FLOWS * 2 slots */
    size_t nflows;
    size_t bytes;
    uint64_t let_go; /* packets dropped from the buffers at the caps */
    struct cap_dump *dump;
    const char *path;
    unsigned rotate_count; /* -W */
    uint64_t rotate_bytes; /* -C */
    unsigned file_no;
    uint64_t file_bytes;
    uint64_t written;
    int fail_on;
    bool failed;
};

static void live__key(uint8_t key[36], const struct cap_addr *a, uint16_t pa,
                      const struct cap_addr *b, uint16_t pb)
{
    int c = memcmp(a->b, b->b, 16);
    bool swap = c > 0 || (c == 0 && pa > pb);
    const struct cap_addr *x = swap ? b : a, *y = swap ? a : b;
    uint16_t px = swap ? pb : pa, py = swap ? pa : pb;
    memcpy(key, x->b, 16);
    key[16] = (uint8_t)(px >> 8);
    key[17] = (uint8_t)px;
    memcpy(key + 18, y->b, 16);
    key[34] = (uint8_t)(py >> 8);
    key[35] = (uint8_t)py;
}

static size_t live__slot(const struct live_keep *k, const uint8_t key[36], bool *found)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 36; i++)
        h = (h ^ key[i]) * 1099511628211ull;
    size_t n = 2 * LIVE_KEEP_FLOWS;
    size_t i = (size_t)h % n;
    for (size_t probe = 0; probe < n; probe++, i = (i + 1) % n) {
        if (!k->flows[i].used) {
            *found = false;
            return i;
        }
        if (memcmp(k->flows[i].key, key, 36) == 0) {
            *found = true;
            return i;
        }
    }
    *found = false;
    return SIZE_MAX;
}

static void live__flow_clear(struct live_keep *k, struct live_flow *f)
{
    struct live_pkt *p = f->head;
    while (p) {
        struct live_pkt *n = p->next;
        free(p);
        p = n;
    }
    k->bytes -= f->bytes;
    f->head = f->tail = NULL;
    f->bytes = 0;
}

/* Removes slot i, keeping the probe chains of later entries intact. */
static void live__flow_remove(struct live_keep *k, size_t i)
{
    size_t n = 2 * LIVE_KEEP_FLOWS;
    live__flow_clear(k, &k->flows[i]);
    k->flows[i].used = false;
    k->nflows--;
    for (size_t j = (i + 1) % n; k->flows[j].used; j = (j + 1) % n) {
        struct live_flow moved = k->flows[j];
        k->flows[j].used = false;
        k->flows[j].head = k->flows[j].tail = NULL;
        k->flows[j].bytes = 0;
        bool found;
        size_t to = live__slot(k, moved.key, &found);
        k->flows[to] = moved;
    }
}

static void live__drop_oldest_packet(struct live_keep *k, struct live_flow *f)
{
    struct live_pkt *p = f->head;
    if (!p)
        return;
    f->head = p->next;
    if (!f->head)
        f->tail = NULL;
    size_t sz = sizeof(*p) + p->caplen;
    f->bytes -= sz;
    k->bytes -= sz;
    free(p);
    k->let_go++;
}

static void live__keep(struct live_keep *k, const struct cap_packet *pkt,
                       const struct cap_record *rec)
{
    if (pkt->status != CAP_ST_TCP)
        return;
    uint8_t key[36];
    live__key(key, &pkt->src, pkt->sport, &pkt->dst, pkt->dport);
    bool found;
    size_t i = live__slot(k, key, &found);
    if (i == SIZE_MAX || (!found && k->nflows >= LIVE_KEEP_FLOWS)) {
        k->let_go++;
        return;
    }
    struct live_flow *f = &k->flows[i];
    if (!found) {
        memset(f, 0, sizeof(*f));
        memcpy(f->key, key, 36);
        f->used = true;
        k->nflows++;
    }
    f->touched = rec->ts;
    struct live_pkt *p = malloc(sizeof(*p) + rec->caplen);
    if (!p) {
        k->let_go++;
        return;
    }
    p->next = NULL;
    p->ts = rec->ts;
    p->caplen = rec->caplen;
    p->wirelen = rec->wirelen;
    p->linktype = rec->linktype;
    memcpy(p->data, rec->data, rec->caplen);
    if (f->tail)
        f->tail->next = p;
    else
        f->head = p;
    f->tail = p;
    size_t sz = sizeof(*p) + rec->caplen;
    f->bytes += sz;
    k->bytes += sz;
    while (f->bytes > LIVE_FLOW_KEEP_BYTES && f->head != f->tail)
        live__drop_oldest_packet(k, f);
    /* Over the total: let go of packets from this flow's oldest end, then of
     * other flows' (at most a sweep per packet). */
    for (size_t j = 0; k->bytes > LIVE_KEEP_TOTAL_BYTES && j < 2 * LIVE_KEEP_FLOWS; j++)
        if (k->flows[j].used && &k->flows[j] != f)
            while (k->flows[j].head && k->bytes > LIVE_KEEP_TOTAL_BYTES)
                live__drop_oldest_packet(k, &k->flows[j]);
}

/* The current -w file; with -C a new one when it is full, cycling through
 * -W names. */
static int live__dump_file(struct live_keep *k)
{
    char err[512];
    if (k->dump && k->rotate_bytes && k->file_bytes >= k->rotate_bytes) {
        if (cap_dump_close(k->dump) != 0)
            fprintf(stderr, "smtpscope: %s: write error\n", k->path);
        k->dump = NULL;
        k->file_no++;
        if (k->rotate_count && k->file_no >= k->rotate_count)
            k->file_no = 0;
        k->file_bytes = 0;
    }
    if (k->dump)
        return 0;
    char name[4096];
    if (k->rotate_bytes) {
        int width = 1;
        for (unsigned n = k->rotate_count ? k->rotate_count - 1 : 9; n >= 10; n /= 10)
            width++;
        snprintf(name, sizeof(name), "%s%0*u", k->path, width, k->file_no);
    } else {
        sc_strlcpy(name, sizeof(name), k->path);
    }
    k->dump = cap_dump_open(name, err, sizeof(err));
    if (!k->dump) {
        fprintf(stderr, "smtpscope: %s\n", err);
        return -1;
    }
    return 0;
}

/* A session ended: its held packets go to the file when it is flagged. */
static void live__session(void *user, const struct rep_session *rs)
{
    struct live_keep *k = user;
    if (!k->flows)
        return;
    /* Parse the endpoints back: "a.b.c.d:port" or "[v6]:port". */
    struct cap_addr a[2];
    uint16_t port[2];
    const char *ep[2] = {rs->client, rs->server};
    for (int i = 0; i < 2; i++) {
        char host[64];
        const char *colon = strrchr(ep[i], ':');
        if (!colon)
            return;
        size_t hl = (size_t)(colon - ep[i]);
        if (hl >= sizeof(host))
            return;
        memcpy(host, ep[i], hl);
        host[hl] = 0;
        char *h = host;
        if (h[0] == '[') {
            h++;
            h[strlen(h) - 1] = 0;
        }
        if (!cap_addr_parse(&a[i], h))
            return;
        port[i] = (uint16_t)atoi(colon + 1);
    }
    uint8_t key[36];
    live__key(key, &a[0], port[0], &a[1], port[1]);
    bool found;
    size_t i = live__slot(k, key, &found);
    if (!found)
        return;
    bool flagged = false;
    for (size_t f = 0; f < rs->n_findings; f++)
        flagged = flagged || (int)rs->findings[f].severity >= k->fail_on;
    if (flagged && live__dump_file(k) == 0) {
        for (struct live_pkt *p = k->flows[i].head; p; p = p->next) {
            if (cap_dump_write(k->dump, p->linktype, p->ts, p->data, p->caplen, p->wirelen) == 0) {
                k->written++;
                k->file_bytes += p->caplen + 16;
            }
        }
    }
    live__flow_remove(k, i);
}

/* Flows that never became a reported session are let go once idle. */
static void live__expire(struct live_keep *k, sc_time now, sc_time idle)
{
    for (size_t i = 0; i < 2 * LIVE_KEEP_FLOWS; i++)
        while (k->flows[i].used && now - k->flows[i].touched > idle)
            live__flow_remove(k, i);
}

/* ---- the command ---- */

static sc_time live__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (sc_time)ts.tv_sec * SC_NS_PER_SEC + ts.tv_nsec;
}

static double live__mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t live__rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The default filter: TCP on the SMTP and implicit-TLS ports, plain or in
 * one or two VLAN tags (the span port of a trunk). */
static int live__filter(const struct an_options *o, char *out, size_t n)
{
    char ports[8192];
    size_t pl = 0;
    ports[0] = 0;
    for (unsigned p = 1; p < 65536; p++) {
        bool on = cap_port_in(&o->cap, (uint16_t)p) || ((o->tls_ports[p >> 3] >> (p & 7)) & 1);
        if (!on)
            continue;
        unsigned q = p;
        while (q + 1 < 65536 && (cap_port_in(&o->cap, (uint16_t)(q + 1)) ||
                                 ((o->tls_ports[(q + 1) >> 3] >> ((q + 1) & 7)) & 1)))
            q++;
        int w =
            q > p ? snprintf(ports + pl, sizeof(ports) - pl, "%stcp portrange %u-%u",
                             pl ? " or " : "", p, q)
                  : snprintf(ports + pl, sizeof(ports) - pl, "%stcp port %u", pl ? " or " : "", p);
        if (w < 0 || (size_t)w >= sizeof(ports) - pl)
            return -1;
        pl += (size_t)w;
        p = q;
    }
    if (!pl)
        return -1;
    /* Tunnels and fragments cannot be matched on their inner ports in BPF:
     * they are taken whole (GRE and ERSPAN, IP in IP, the UDP tunnels, IP
     * fragments).  MPLS and PPPoE shift every later offset in a BPF
     * expression, so they need --bpf (e.g. "mpls or pppoes"). */
    char tun[256] = "";
    {
        int t = snprintf(tun, sizeof(tun),
                         " or ip proto 47 or ip proto 4 or ip proto 41 or ip6 proto 47 or "
                         "ip6 proto 4 or ip6 proto 41 or (ip[6:2] & 0x3fff != 0) or ip6[6] == 44");
        if (t < 0 || (size_t)t >= sizeof(tun))
            return -1;
        size_t tl = (size_t)t;
        const uint16_t up[2] = {o->cap.decode.vxlan_port, o->cap.decode.geneve_port};
        for (int i = 0; i < 2; i++) {
            if (!up[i])
                continue;
            t = snprintf(tun + tl, sizeof(tun) - tl, " or udp port %u", up[i]);
            if (t < 0 || (size_t)t >= sizeof(tun) - tl)
                return -1;
            tl += (size_t)t;
        }
    }
    int w = snprintf(out, n, "(%s)%s or (vlan and ((%s)%s or (vlan and ((%s)%s))))", ports, tun,
                     ports, tun, ports, tun);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

static void live__usage(FILE *f)
{
    fputs("Usage: smtpscope live -i IFACE [OPTIONS]\n"
          "\n"
          "Watches SMTP on an interface (a span or mirror port) and reports every\n"
          "session and finding as it ends.  Stops on SIGINT/SIGTERM, --duration or\n"
          "--count; SIGHUP reopens -o.\n"
          "\n"
          "Options:\n"
          "  -i, --interface IF   interface to capture on (\"any\" for all)\n"
          "  -s, --snaplen N      bytes kept per packet (default 262144)\n"
          "  -B, --buffer MIB     kernel capture buffer in MiB (default: libpcap's)\n"
          "      --no-promisc     do not put the interface in promiscuous mode\n"
          "      --bpf EXPR       capture filter instead of the one built from the ports\n"
          "  -p, --ports LIST     SMTP ports (default 25,587)\n"
          "      --tls-ports LIST implicit-TLS ports (default 465)\n"
          "  -Z, --user USER      drop root for USER once the capture is open\n"
          "  -f, --format FMT     text (default), json (JSON Lines, line-buffered) or yaml\n"
          "  -o, --output FILE    write records to FILE (reopened on SIGHUP)\n"
          "  -w FILE.pcap         keep the packets of flagged sessions\n"
          "  -C MB                with -w: a new file every MB megabytes (FILE0, FILE1...)\n"
          "  -W N                 with -C: at most N files, then start over\n"
          "  -c, --config FILE    YAML configuration (rules, ports, limits)\n"
          "      --fail-on SEV    exit 1 for findings of this severity or more\n"
          "      --stats-interval SEC  stats on stderr (and in JSON) every SEC (default\n"
          "                       60, 0: never)\n"
          "      --duration SEC   stop after SEC seconds\n"
          "      --count N        stop after N packets\n"
          "  -q, --quiet          no stats lines\n"
          "  -h, --help           show this help\n"
          "\n"
          "Exit status: 0 no findings, 1 findings, 2 usage error or capture failure.\n",
          f);
}

enum {
    OPT_NO_PROMISC = 400,
    OPT_BPF,
    OPT_TLS_PORTS3,
    OPT_FAIL_ON3,
    OPT_STATS,
    OPT_DURATION,
    OPT_COUNT
};

static bool live__number(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

int cli_live(int argc, char **argv)
{
    struct an_options o;
    an_options_defaults(&o);
    const char *iface = NULL, *bpf = NULL, *user = NULL, *output = NULL, *config = NULL;
    const char *ports = NULL, *tls_ports = NULL, *fail_on = NULL, *wfile = NULL;
    double snaplen = LIVE_SNAPLEN, buffer_mib = 0, stats_every = 60, duration = 0, count = 0;
    double rot_mb = 0, rot_n = 0;
    bool promisc = true;
    static const struct option longopts[] = {
        {"interface", required_argument, NULL, 'i'},
        {"snaplen", required_argument, NULL, 's'},
        {"buffer", required_argument, NULL, 'B'},
        {"no-promisc", no_argument, NULL, OPT_NO_PROMISC},
        {"bpf", required_argument, NULL, OPT_BPF},
        {"ports", required_argument, NULL, 'p'},
        {"tls-ports", required_argument, NULL, OPT_TLS_PORTS3},
        {"user", required_argument, NULL, 'Z'},
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"config", required_argument, NULL, 'c'},
        {"fail-on", required_argument, NULL, OPT_FAIL_ON3},
        {"stats-interval", required_argument, NULL, OPT_STATS},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"count", required_argument, NULL, OPT_COUNT},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:s:B:p:Z:f:o:c:w:C:W:qh", longopts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'i':
            iface = optarg;
            break;
        case 's':
            ok = live__number(optarg, 64, LIVE_SNAPLEN, &snaplen);
            break;
        case 'B':
            ok = live__number(optarg, 1, 4096, &buffer_mib);
            break;
        case OPT_NO_PROMISC:
            promisc = false;
            break;
        case OPT_BPF:
            bpf = optarg;
            break;
        case 'p':
            ports = optarg;
            break;
        case OPT_TLS_PORTS3:
            tls_ports = optarg;
            break;
        case 'Z':
            user = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "text") == 0)
                o.rep.format = REP_TEXT;
            else if (strcmp(optarg, "json") == 0)
                o.rep.format = REP_JSON;
            else if (strcmp(optarg, "yaml") == 0)
                o.rep.format = REP_YAML;
            else
                ok = false;
            break;
        case 'o':
            output = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'w':
            wfile = optarg;
            break;
        case 'C':
            ok = live__number(optarg, 1, 1e6, &rot_mb);
            break;
        case 'W':
            ok = live__number(optarg, 1, 1e6, &rot_n);
            break;
        case OPT_FAIL_ON3:
            fail_on = optarg;
            break;
        case OPT_STATS:
            ok = live__number(optarg, 0, 86400 * 365, &stats_every);
            break;
        case OPT_DURATION:
            ok = live__number(optarg, 0.001, 86400.0 * 3650, &duration);
            break;
        case OPT_COUNT:
            ok = live__number(optarg, 1, 1e18, &count);
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'h':
            live__usage(stdout);
            return 0;
        default:
            fputs("Try 'smtpscope live --help' for more information.\n", stderr);
            return EXIT_USAGE;
        }
        if (!ok) {
            fprintf(stderr, "smtpscope: -%c: \"%s\" is not a valid value (see --help)\n",
                    c < 256 ? c : '-', optarg);
            return EXIT_USAGE;
        }
    }
    if (!iface || optind < argc) {
        fputs(!iface ? "smtpscope: live needs an interface: -i IFACE\n"
                     : "smtpscope: live takes no file arguments\n",
              stderr);
        fputs("Try 'smtpscope live --help' for more information.\n", stderr);
        return EXIT_USAGE;
    }
    if ((rot_mb > 0 || rot_n > 0) && !wfile) {
        fputs("smtpscope: -C and -W go with -w FILE.pcap\n", stderr);
        return EXIT_USAGE;
    }
    int rc = EXIT_USAGE;
    char err[CFG_ERR_MAX];
    pcap_t *pc = NULL;
    FILE *out = stdout;
    struct an_stream *st = NULL;
    struct live_keep keep;
    memset(&keep, 0, sizeof(keep));
    if (config && cfg_load(config, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "smtpscope: %s\n" AN_CONFIG_HINT, err);
        goto done;
    }
    if (ports && !cfg_parse_ports(ports, o.cap.ports, false)) {
        fprintf(stderr, "smtpscope: --ports: \"%s\" is not a list of ports 1-65535\n", ports);
        goto done;
    }
    if (tls_ports && !cfg_parse_ports(tls_ports, o.tls_ports, true)) {
        fprintf(stderr, "smtpscope: --tls-ports: \"%s\" is not a list of ports 1-65535\n",
                tls_ports);
        goto done;
    }
    if (fail_on) {
        int sev = strcmp(fail_on, "never") == 0 ? HEUR_HIGH + 1 : heur_sev_parse(fail_on);
        if (sev < 0) {
            fprintf(stderr,
                    "smtpscope: --fail-on: \"%s\" is not one of info, low, medium, high, "
                    "never\n",
                    fail_on);
            goto done;
        }
        o.fail_on = sev;
    }
    /* libpcap: create, set, activate. */
    char perr[PCAP_ERRBUF_SIZE];
    pc = pcap_create(iface, perr);
    if (!pc) {
        fprintf(stderr, "smtpscope: %s: %s\n", iface, perr);
        goto done;
    }
    pcap_set_snaplen(pc, (int)snaplen);
    pcap_set_promisc(pc, promisc);
    pcap_set_timeout(pc, LIVE_POLL_MS);
    if (buffer_mib > 0)
        pcap_set_buffer_size(pc, (int)(buffer_mib * 1024 * 1024));
    int ar = pcap_activate(pc);
    if (ar < 0) {
        const char *why = ar == PCAP_ERROR_PERM_DENIED
                              ? "permission denied: run as root or give the binary CAP_NET_RAW "
                                "(setcap cap_net_raw,cap_net_admin=eip)"
                          : ar == PCAP_ERROR_NO_SUCH_DEVICE
                              ? "no such interface (list them with 'ip link' or 'tcpdump -D')"
                              : pcap_geterr(pc);
        fprintf(stderr, "smtpscope: %s: cannot capture: %s\n", iface, why);
        goto done;
    }
    if (ar > 0)
        fprintf(stderr, "smtpscope: %s: warning: %s\n", iface, pcap_geterr(pc));
    char filter[65536];
    if (!bpf) {
        if (live__filter(&o, filter, sizeof(filter)) != 0) {
            fputs("smtpscope: the ports make a capture filter too long; give --bpf\n", stderr);
            goto done;
        }
        bpf = filter;
    }
    struct bpf_program prog;
    if (pcap_compile(pc, &prog, bpf, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        fprintf(stderr, "smtpscope: --bpf: \"%s\": %s\n", bpf, pcap_geterr(pc));
        goto done;
    }
    int sf = pcap_setfilter(pc, &prog);
    pcap_freecode(&prog);
    if (sf != 0) {
        fprintf(stderr, "smtpscope: %s: cannot set the filter: %s\n", iface, pcap_geterr(pc));
        goto done;
    }
    if (pcap_setnonblock(pc, 1, perr) != 0) {
        fprintf(stderr, "smtpscope: %s: %s\n", iface, perr);
        goto done;
    }
    int fd = pcap_get_selectable_fd(pc);
    if (fd < 0) {
        fprintf(stderr, "smtpscope: %s: this interface cannot be polled\n", iface);
        goto done;
    }
    /* Output and -w files are opened before root goes: they may be in places
     * only root can write. */
    if (output && strcmp(output, "-") != 0) {
        out = fopen(output, "a");
        if (!out) {
            fprintf(stderr, "smtpscope: %s: %s\n", output, strerror(errno));
            out = stdout;
            goto done;
        }
    }
    setvbuf(out, NULL, _IOLBF, 0);
    if (wfile) {
        keep.flows = calloc(2 * LIVE_KEEP_FLOWS, sizeof(*keep.flows));
        if (!keep.flows) {
            fputs("smtpscope: out of memory\n", stderr);
            goto done;
        }
        keep.path = wfile;
        keep.rotate_bytes = (uint64_t)(rot_mb * 1e6);
        keep.rotate_count = (unsigned)rot_n;
        keep.fail_on = o.fail_on;
        if (live__dump_file(&keep) != 0)
            goto done;
        o.on_session = live__session;
        o.user = &keep;
    }
    /* Root is needed no longer. */
    if (user) {
        struct passwd *pw = getpwnam(user);
        if (!pw) {
            fprintf(stderr, "smtpscope: -Z: no user \"%s\"\n", user);
            goto done;
        }
        if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
            setuid(pw->pw_uid) != 0) {
            fprintf(stderr, "smtpscope: -Z %s: cannot switch user: %s\n", user, strerror(errno));
            goto done;
        }
        if (setuid(0) == 0) {
            fprintf(stderr, "smtpscope: -Z %s: root could be regained; stopping\n", user);
            goto done;
        }
    } else if (geteuid() == 0) {
        fputs("smtpscope: warning: running as root; -Z USER drops root once the capture is "
              "open\n",
              stderr);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = live_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    st = an_stream_new(&o, out, iface);
    if (!st) {
        fputs("smtpscope: out of memory\n", stderr);
        goto done;
    }
    int dlt = pcap_datalink(pc);
    double t0 = live__mono(), next_stats = t0 + stats_every;
    uint64_t frame = 0;
    bool capture_error = false;
    while (!live_flags.stop) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, LIVE_POLL_MS);
        if (pr < 0 && errno != EINTR) {
            fprintf(stderr, "smtpscope: %s: poll: %s\n", iface, strerror(errno));
            capture_error = true;
            break;
        }
        for (;;) {
            struct pcap_pkthdr *h;
            const u_char *data;
            int r = pcap_next_ex(pc, &h, &data);
            if (r == 0 || live_flags.stop)
                break;
            if (r < 0) {
                fprintf(stderr, "smtpscope: %s: %s\n", iface,
                        r == PCAP_ERROR ? pcap_geterr(pc) : "capture ended");
                capture_error = true;
                live_flags.stop = 1;
                break;
            }
            struct cap_record rec = {
                .data = data,
                .caplen = h->caplen,
                .wirelen = h->len,
                .linktype = (uint32_t)dlt,
                .frame = ++frame,
                .ts = (sc_time)h->ts.tv_sec * SC_NS_PER_SEC + (sc_time)h->ts.tv_usec * 1000,
            };
            struct cap_packet pkt;
            pkt.frame = rec.frame;
            pkt.ts = rec.ts;
            pkt.caplen = rec.caplen;
            pkt.wirelen = rec.wirelen;
            cap_decode_ex(&pkt, rec.linktype, rec.data, rec.caplen, &o.cap.decode);
            if (keep.flows)
                live__keep(&keep, &pkt, &rec);
            an_stream_packet(st, &rec, &pkt);
            if (count > 0 && (double)frame >= count) {
                live_flags.stop = 1;
                break;
            }
        }
        sc_time now = live__now();
        an_stream_tick(st, now);
        if (keep.flows)
            live__expire(&keep, now, o.cap.idle_timeout + o.cap.closed_linger);
        if (live_flags.reopen && output && out != stdout) {
            /* logrotate moved the file: continue in a new one. */
            live_flags.reopen = 0;
            FILE *nf = fopen(output, "a");
            if (nf) {
                setvbuf(nf, NULL, _IOLBF, 0);
                an_stream_set_output(st, nf);
                fclose(out);
                out = nf;
            } else {
                fprintf(stderr,
                        "smtpscope: %s: cannot reopen: %s; still writing to the old "
                        "file\n",
                        output, strerror(errno));
            }
        }
        double mono = live__mono();
        if (stats_every > 0 && mono >= next_stats) {
            next_stats = mono + stats_every;
            struct an_stream_counts cn;
            an_stream_counts(st, &cn);
            struct pcap_stat ps;
            memset(&ps, 0, sizeof(ps));
            pcap_stats(pc, &ps);
            struct rep_stats rs = {mono - t0,    cn.packets,  cn.bytes,   cn.sessions_open,
                                   cn.sessions,  cn.findings, ps.ps_recv, ps.ps_drop,
                                   ps.ps_ifdrop, live__rss()};
            if (!o.quiet)
                fprintf(stderr,
                        "smtpscope: %s: %.0f s: %" PRIu64 " packets, %" PRIu64 " bytes, %" PRIu64
                        " tracked, %" PRIu64 " sessions, %" PRIu64 " findings, dropped %u (kernel) "
                        "%u (interface), %.1f MiB\n",
                        iface, rs.uptime, rs.packets, rs.bytes, rs.sessions_open, rs.sessions,
                        rs.findings, ps.ps_drop, ps.ps_ifdrop, (double)rs.rss / 1048576.0);
            an_stream_write_stats(st, &rs);
        }
        if (duration > 0 && mono - t0 >= duration)
            break;
    }
    struct pcap_stat ps;
    memset(&ps, 0, sizeof(ps));
    pcap_stats(pc, &ps);
    uint64_t drops = (uint64_t)ps.ps_drop + ps.ps_ifdrop;
    rc = an_stream_finish(st, drops);
    if (drops)
        fprintf(stderr,
                "smtpscope: %s: warning: %" PRIu64 " packets dropped (kernel %u, "
                "interface %u)\n",
                iface, drops, ps.ps_drop, ps.ps_ifdrop);
    if (keep.let_go)
        fprintf(stderr,
                "smtpscope: %s: %" PRIu64 " packets were let go from the -w buffers "
                "at their caps; flagged sessions may lack their start\n",
                wfile, keep.let_go);
    if (capture_error)
        rc = EXIT_USAGE;
done:
    an_stream_free(st);
    if (keep.flows) {
        for (size_t i = 0; i < 2 * LIVE_KEEP_FLOWS; i++)
            if (keep.flows[i].used)
                live__flow_clear(&keep, &keep.flows[i]);
        free(keep.flows);
    }
    if (keep.dump && cap_dump_close(keep.dump) != 0) {
        fprintf(stderr, "smtpscope: %s: write error\n", wfile);
        rc = EXIT_USAGE;
    }
    if (out != stdout && fclose(out) != 0) {
        fprintf(stderr, "smtpscope: %s: %s\n", output, strerror(errno));
        rc = EXIT_USAGE;
    }
    if (pc)
        pcap_close(pc);
    heur_config_free(&o.heur);
    return rc;
}
