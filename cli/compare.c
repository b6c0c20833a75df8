/* compare.c - `smtpscope compare`: analyse two captures, pair and diff their
 * sessions (compare/), print the result (report/). */
#include "cli/compare.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/decode.h"
#include "cli/analyze.h"
#include "cli/config.h"
#include "common/str.h"
#include "compare/cmp.h"
#include "report/report.h"

#define EXIT_USAGE 2

/* Collects one capture's sessions. */
struct cmpc_collect {
    struct cmp_capture *cap;
    const char *file;
    bool oom;
};

static void cmpc__session(void *user, const struct rep_session *rs)
{
    struct cmpc_collect *c = user;
    struct cmp_session *s = cmp_capture_new(c->cap);
    if (!s) {
        c->oom = true;
        return;
    }
    const struct smtp_info *in = rs->smtp;
    struct cmp_capture *cap = c->cap;
    s->id = rs->id;
    if (cmp_session_endpoints(cap, s, rs->client, rs->server) != 0)
        c->oom = true;
    const char *cp = strrchr(rs->client, ':'), *sp = strrchr(rs->server, ':');
    s->cport = cp ? (uint16_t)atoi(cp + 1) : 0;
    s->sport = sp ? (uint16_t)atoi(sp + 1) : 0;
    s->first_frame = rs->first_frame;
    s->last_frame = rs->last_frame;
    s->start = rs->start;
    s->end = rs->end;
    sc_strlcpy(s->close, sizeof(s->close), rs->close);
    const char *file = cmp_capture_file(cap, rs->file);
    if (file)
        s->file = file;
    else
        c->oom = true;
    for (int d = 0; d < 2; d++) {
        const struct rep_tcp_side *t = &rs->tcp[d];
        s->tcp[d] = (struct cmp_tcp){
            .syn = t->syn_seen,
            .mss = t->mss,
            .mss_present = t->mss_present,
            .wscale_present = t->wscale_present,
            .sack_perm = t->sack_perm,
            .timestamps = t->timestamps,
            .wscale = t->wscale,
            .isn = t->isn,
            .ttl = t->ttl,
            .ttl_min = t->ttl_min,
            .ttl_max = t->ttl_max,
            .ipid_zero = t->ipid_zero,
            .ipid_small = t->ipid_small,
            .ipid_big = t->ipid_big,
            .rst = t->rst,
            .rst_ttl = t->rst_ttl,
            .rst_frame = t->rst_frame,
        };
        s->bytes[d] = in->bytes[d];
    }
    size_t per_dir[2] = {0, 0};
    for (size_t i = 0; i < in->n_transcript; i++)
        if (in->transcript[i].dir <= SC_DIR_S2C)
            per_dir[in->transcript[i].dir]++;
    if (cmp_session_lines(cap, s, per_dir) != 0)
        c->oom = true;
    for (size_t i = 0; i < in->n_transcript; i++) {
        const struct smtp_line *l = &in->transcript[i];
        if (cmp_session_add_line(cap, s, l->dir, l->kind, l->code, l->len, l->text, l->text_len,
                                 l->meta.frame, l->meta.ts) != 0)
            c->oom = true;
    }
    s->lines_dropped += in->transcript_dropped;
    if (in->tls && in->tls->server_hello) {
        const struct tls_info *t = in->tls;
        struct cmp_tls *ct = cmp_session_tls(cap, s);
        if (ct) {
            tls_version_str(ct->version, sizeof(ct->version), t->version);
            const char *cn = tls_cipher_name(t->cipher);
            if (cn)
                sc_strlcpy(ct->cipher, sizeof(ct->cipher), cn);
            else
                snprintf(ct->cipher, sizeof(ct->cipher), "0x%04x", t->cipher);
            if (t->n_chain) {
                sc_strlcpy(ct->cert_sha256, sizeof(ct->cert_sha256), t->chain[0].sha256);
                snprintf(ct->cert_issuer, sizeof(ct->cert_issuer), "%.127s", t->chain[0].issuer);
            }
            ct->cert_hidden = t->cert_hidden;
        } else {
            c->oom = true;
        }
    }
    /* The rule ids, comma-separated, cut as before at 255 bytes. */
    char findings[256];
    size_t fl = 0;
    findings[0] = 0;
    for (size_t i = 0; i < rs->n_findings && fl < sizeof(findings) - 1; i++)
        fl += (size_t)snprintf(findings + fl, sizeof(findings) - fl, "%s%s", i ? "," : "",
                               rs->findings[i].rule);
    if (fl) {
        const char *f = cmp_capture_str(cap, findings);
        if (f)
            s->findings = f;
        else
            c->oom = true;
    }
}

/* Analyses one capture silently, collecting its sessions.  Returns the
 * analysis exit status (2: unreadable). */
static int cmpc__load(const struct an_options *base, char *file, struct cmp_capture *cap)
{
    struct an_options o = *base;
    struct cmpc_collect col = {cap, file, false};
    o.silent = true;
    o.on_session = cmpc__session;
    o.user = &col;
    o.write_flagged = NULL;
    o.smtp.transcript_max = o.transcript_lines;
    char *files[1] = {file};
    int rc = an_run(&o, files, 1, stdout);
    if (col.oom) {
        fprintf(stderr, "smtpscope: %s: out of memory keeping the sessions\n", file);
        rc = 2;
    }
    return rc == 2 ? 2 : 0;
}

/* ---- --split: one capture holding both legs ---- */

enum cmpc_split { SPLIT_NONE = 0, SPLIT_VLAN, SPLIT_MAC, SPLIT_TTL, SPLIT_ENCAP };

/* Distinct MAC addresses and 4-tuples tracked by the first pass; a capture
 * with more is split on what fits (the rest of its packets are dropped and
 * counted). */
#define CMPC_MACS_MAX 65536
#define CMPC_TUPLES_MAX (1u << 20)
/* Distinct observation contexts counted for --split encap. */
#define CMPC_CTX_MAX 256

struct cmpc_splitter {
    enum cmpc_split mode;
    const struct an_options *o;
    /* vlan: the two busiest outer VLAN ids (4096: untagged) */
    uint64_t vlan_count[4097];
    int vlan[2];
    /* encap: packets per observation context (capture/decode.h), the two
     * busiest are the legs */
    struct {
        uint64_t ctx, count;
        bool used;
    } ctxs[CMPC_CTX_MAX];
    uint64_t leg_ctx[2];
    /* mac: a table of addresses and a union-find over them; the two
     * largest groups of addresses that talk to each other are the legs */
    uint64_t *mac; /* key: the 48-bit address + 1 (0 = empty) */
    uint32_t *parent;
    uint64_t *weight; /* packets per group root */
    size_t nmac;
    uint32_t leg[2];
    /* ttl: per direction 4-tuple, the lowest and highest TTL seen */
    struct cmpc_tuple {
        uint8_t key[36];
        uint8_t lo, hi;
        bool used;
    } * tuple;
};

static uint64_t cmpc__mac_key(const uint8_t m[6])
{
    uint64_t k = 0;
    for (int i = 0; i < 6; i++)
        k = k << 8 | m[i];
    return k + 1;
}

static long cmpc__mac_slot(struct cmpc_splitter *sp, const uint8_t m[6], bool add)
{
    uint64_t k = cmpc__mac_key(m);
    size_t h = (size_t)((k * 0x9e3779b97f4a7c15ull) >> 48) & (CMPC_MACS_MAX - 1);
    for (size_t n = 0; n < CMPC_MACS_MAX; n++, h = (h + 1) & (CMPC_MACS_MAX - 1)) {
        if (sp->mac[h] == k)
            return (long)h;
        if (sp->mac[h] == 0) {
            if (!add || sp->nmac >= CMPC_MACS_MAX / 2)
                return -1;
            sp->mac[h] = k;
            sp->parent[h] = (uint32_t)h;
            sp->nmac++;
            return (long)h;
        }
    }
    return -1;
}

static uint32_t cmpc__root(struct cmpc_splitter *sp, uint32_t x)
{
    while (sp->parent[x] != x) {
        sp->parent[x] = sp->parent[sp->parent[x]];
        x = sp->parent[x];
    }
    return x;
}

static void cmpc__tuple_key(uint8_t key[36], const struct cap_packet *p)
{
    memcpy(key, p->src.b, 16);
    memcpy(key + 16, p->dst.b, 16);
    key[32] = (uint8_t)(p->sport >> 8);
    key[33] = (uint8_t)p->sport;
    key[34] = (uint8_t)(p->dport >> 8);
    key[35] = (uint8_t)p->dport;
}

static struct cmpc_tuple *cmpc__tuple(struct cmpc_splitter *sp, const struct cap_packet *p,
                                      bool add)
{
    uint8_t key[36];
    cmpc__tuple_key(key, p);
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 36; i++)
        h = (h ^ key[i]) * 1099511628211ull;
    size_t i = (size_t)h & (CMPC_TUPLES_MAX - 1);
    for (size_t n = 0; n < CMPC_TUPLES_MAX / 2; n++, i = (i + 1) & (CMPC_TUPLES_MAX - 1)) {
        struct cmpc_tuple *t = &sp->tuple[i];
        if (t->used && memcmp(t->key, key, 36) == 0)
            return t;
        if (!t->used) {
            if (!add)
                return NULL;
            memcpy(t->key, key, 36);
            t->used = true;
            t->lo = t->hi = p->ttl;
            return t;
        }
    }
    return NULL;
}

static bool cmpc__server_port(const struct an_options *o, uint16_t port)
{
    return cap_port_in(&o->cap, port) || ((o->tls_ports[port >> 3] >> (port & 7)) & 1);
}

/* First pass: what tells the legs apart. */
static int cmpc__split_learn(struct cmpc_splitter *sp, const char *file)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "smtpscope: %s: %s\n", file, strerror(errno));
        return 2;
    }
    struct cap_reader *rd = NULL;
    int rc = cap_reader_open_fd(&rd, fd, &sp->o->reader);
    if (rc < 0) {
        an_read_error(file, rd, rc, (uint64_t)-1);
        cap_reader_free(rd);
        close(fd);
        return 2;
    }
    struct cap_record rec;
    struct cap_packet pkt;
    while (cap_reader_next(rd, &rec) > 0) {
        if (cap_decode_ex(&pkt, rec.linktype, rec.data, rec.caplen, &sp->o->cap.decode) !=
            CAP_ST_TCP)
            continue;
        if (sp->mode == SPLIT_ENCAP) {
            for (size_t i = 0, h = pkt.ctx % CMPC_CTX_MAX; i < CMPC_CTX_MAX;
                 i++, h = (h + 1) % CMPC_CTX_MAX) {
                if (sp->ctxs[h].used && sp->ctxs[h].ctx != pkt.ctx)
                    continue;
                sp->ctxs[h].used = true;
                sp->ctxs[h].ctx = pkt.ctx;
                sp->ctxs[h].count++;
                break;
            }
        } else if (sp->mode == SPLIT_VLAN) {
            sp->vlan_count[pkt.nvlan ? pkt.vlan[0] & 0xfff : 4096]++;
        } else if (sp->mode == SPLIT_MAC && pkt.has_mac) {
            long a = cmpc__mac_slot(sp, pkt.mac_src, true),
                 b = cmpc__mac_slot(sp, pkt.mac_dst, true);
            if (a < 0 || b < 0)
                continue;
            uint32_t ra = cmpc__root(sp, (uint32_t)a), rb = cmpc__root(sp, (uint32_t)b);
            if (ra != rb) {
                sp->parent[ra] = rb;
                sp->weight[rb] += sp->weight[ra];
            }
            sp->weight[rb]++;
        } else if (sp->mode == SPLIT_TTL && pkt.ttl) {
            struct cmpc_tuple *t = cmpc__tuple(sp, &pkt, true);
            if (t) {
                t->lo = pkt.ttl < t->lo ? pkt.ttl : t->lo;
                t->hi = pkt.ttl > t->hi ? pkt.ttl : t->hi;
            }
        }
    }
    cap_reader_free(rd);
    close(fd);
    if (sp->mode == SPLIT_ENCAP) {
        int best[2] = {-1, -1};
        for (int i = 0; i < CMPC_CTX_MAX; i++) {
            if (!sp->ctxs[i].used)
                continue;
            if (best[0] < 0 || sp->ctxs[i].count > sp->ctxs[best[0]].count) {
                best[1] = best[0];
                best[0] = i;
            } else if (best[1] < 0 || sp->ctxs[i].count > sp->ctxs[best[1]].count) {
                best[1] = i;
            }
        }
        if (best[1] < 0) {
            fprintf(stderr,
                    "smtpscope: %s: --split encap needs two encapsulations (VLANs, ERSPAN "
                    "sessions, VNIs, tunnels, or tunnelled and plain), the capture has %s\n",
                    file, best[0] < 0 ? "no TCP" : "one");
            return 2;
        }
        sp->leg_ctx[0] = sp->ctxs[best[0]].ctx;
        sp->leg_ctx[1] = sp->ctxs[best[1]].ctx;
    } else if (sp->mode == SPLIT_VLAN) {
        sp->vlan[0] = sp->vlan[1] = -1;
        for (int v = 0; v <= 4096; v++) {
            if (!sp->vlan_count[v])
                continue;
            if (sp->vlan[0] < 0 || sp->vlan_count[v] > sp->vlan_count[sp->vlan[0]]) {
                sp->vlan[1] = sp->vlan[0];
                sp->vlan[0] = v;
            } else if (sp->vlan[1] < 0 || sp->vlan_count[v] > sp->vlan_count[sp->vlan[1]]) {
                sp->vlan[1] = v;
            }
        }
        if (sp->vlan[1] < 0) {
            fprintf(stderr, "smtpscope: %s: --split vlan needs two VLANs, the capture has %s\n",
                    file, sp->vlan[0] < 0 ? "no TCP" : "one");
            return 2;
        }
    } else if (sp->mode == SPLIT_MAC) {
        uint64_t best[2] = {0, 0};
        bool have[2] = {false, false};
        for (size_t i = 0; i < CMPC_MACS_MAX; i++) {
            if (!sp->mac[i] || sp->parent[i] != i)
                continue;
            if (!have[0] || sp->weight[i] > best[0]) {
                best[1] = best[0];
                sp->leg[1] = sp->leg[0];
                have[1] = have[0];
                best[0] = sp->weight[i];
                sp->leg[0] = (uint32_t)i;
                have[0] = true;
            } else if (!have[1] || sp->weight[i] > best[1]) {
                best[1] = sp->weight[i];
                sp->leg[1] = (uint32_t)i;
                have[1] = true;
            }
        }
        if (!have[1]) {
            fprintf(stderr,
                    "smtpscope: %s: --split mac needs two sets of MAC addresses that never talk "
                    "to each other (the device's two interfaces); all hosts here are one set\n",
                    file);
            return 2;
        }
    }
    return 0;
}

static int cmpc__side_of(void *user, const struct cap_packet *p)
{
    struct cmpc_splitter *sp = user;
    /* IP fragments follow their leg too (by what they show outside the
     * fragmented header) and are reassembled in its tracker. */
    if (p->status != CAP_ST_TCP && !(p->frag.present && sp->mode != SPLIT_TTL))
        return -1;
    switch (sp->mode) {
    case SPLIT_ENCAP: {
        /* A later fragment shows only what is outside its fragmented header:
         * right for tags, not for a fragmented tunnel's inner context. */
        uint64_t c = p->status == CAP_ST_TCP ? p->ctx : p->frag.ctx;
        return c == sp->leg_ctx[0] ? 0 : c == sp->leg_ctx[1] ? 1 : -1;
    }
    case SPLIT_VLAN: {
        int v = p->nvlan ? p->vlan[0] & 0xfff : 4096;
        return v == sp->vlan[0] ? 0 : v == sp->vlan[1] ? 1 : -1;
    }
    case SPLIT_MAC: {
        if (!p->has_mac)
            return -1;
        long a = cmpc__mac_slot(sp, p->mac_src, false);
        if (a < 0)
            return -1;
        uint32_t r = cmpc__root(sp, (uint32_t)a);
        return r == sp->leg[0] ? 0 : r == sp->leg[1] ? 1 : -1;
    }
    case SPLIT_TTL: {
        const struct cmpc_tuple *t = cmpc__tuple(sp, p, false);
        if (!t || t->lo == t->hi)
            return -1; /* seen on one leg only (NAT changes the 4-tuple): cannot tell */
        bool upstream = p->ttl == t->hi;
        bool c2s = cmpc__server_port(sp->o, p->dport);
        /* The client's packets are upstream outside, the server's inside. */
        return c2s ? (upstream ? 0 : 1) : (upstream ? 1 : 0);
    }
    default:
        return -1;
    }
}

/* --split: learns the legs, then analyses the file as two captures. */
static int cmpc__split_load(const struct an_options *base, enum cmpc_split mode, const char *file,
                            struct cmp_capture cap[2], uint64_t *unassigned)
{
    struct an_options o = *base;
    struct cmpc_splitter *sp = calloc(1, sizeof(*sp));
    int rc = 2;
    if (!sp)
        goto out;
    sp->mode = mode;
    sp->o = &o;
    if (mode == SPLIT_MAC) {
        sp->mac = calloc(CMPC_MACS_MAX, sizeof(*sp->mac));
        sp->parent = calloc(CMPC_MACS_MAX, sizeof(*sp->parent));
        sp->weight = calloc(CMPC_MACS_MAX, sizeof(*sp->weight));
        if (!sp->mac || !sp->parent || !sp->weight)
            goto out;
    } else if (mode == SPLIT_TTL) {
        sp->tuple = calloc(CMPC_TUPLES_MAX, sizeof(*sp->tuple));
        if (!sp->tuple)
            goto out;
    }
    if (cmpc__split_learn(sp, file) != 0)
        goto out;
    struct cmpc_collect col[2] = {{&cap[0], file, false}, {&cap[1], file, false}};
    void *users[2] = {&col[0], &col[1]};
    o.silent = true;
    o.on_session = cmpc__session;
    o.write_flagged = NULL;
    o.smtp.transcript_max = o.transcript_lines;
    rc = an_split(&o, file, cmpc__side_of, sp, users, unassigned);
    if (col[0].oom || col[1].oom) {
        fprintf(stderr, "smtpscope: %s: out of memory keeping the sessions\n", file);
        rc = 2;
    }
out:
    if (sp) {
        free(sp->mac);
        free(sp->parent);
        free(sp->weight);
        free(sp->tuple);
        free(sp);
    }
    if (rc == 2 && !sp)
        fprintf(stderr, "smtpscope: %s: out of memory\n", file);
    return rc;
}

static void cmpc__usage(FILE *f)
{
    fputs("Usage: smtpscope compare [OPTIONS] OUTSIDE INSIDE\n"
          "       smtpscope compare [OPTIONS] --split vlan|mac|ttl|encap FILE\n"
          "\n"
          "Pairs the SMTP sessions of two captures taken on either side of a firewall\n"
          "or VPN (NAT, new sequence numbers and resegmentation are fine) and shows,\n"
          "per pair, every difference in the dialogue, TLS and TCP options, with the\n"
          "frame on each side and the rule it supports.  The order of the two files\n"
          "does not matter: masks show which side is which.\n"
          "\n"
          "Options:\n"
          "  -f, --format FMT     text (default), json (JSON Lines) or yaml\n"
          "  -o, --output FILE    write to FILE instead of standard output\n"
          "      --html FILE      also write one self-contained HTML report to FILE\n"
          "      --names A,B      labels for the two captures (default outside,inside)\n"
          "      --split HOW      FILE is one span capture that saw both legs of the\n"
          "                       device: split it by VLAN (the two busiest; the\n"
          "                       mirrored frame's own tags under ERSPAN/VXLAN), by\n"
          "                       MAC (the two groups of hosts that never talk to\n"
          "                       each other: the device's two interfaces), by TTL\n"
          "                       (the same segment seen twice, one hop apart; not\n"
          "                       through NAT), or by encapsulation (the two busiest\n"
          "                       of VLAN ids, ERSPAN sessions, VNIs and tunnels,\n"
          "                       plain packets being one: -i any on a tunnel end)\n"
          "  -v, --verbose        show every pair's dialogues side by side (default:\n"
          "                       only pairs with differences)\n"
          "  -c, --config FILE    YAML configuration (ports, limits, thresholds)\n"
          "  -p, --ports LIST     SMTP ports (default 25,587)\n"
          "      --tls-ports LIST implicit-TLS ports (default 465)\n"
          "      --no-detect      follow only the ports given\n"
          "  -q, --quiet          no progress line\n"
          "  -h, --help           show this help\n"
          "\n"
          "Exit status: 0 no difference beyond info, 1 differences, 2 usage error or\n"
          "unreadable input.\n",
          f);
}

enum { OPT_NAMES = 300, OPT_HTML, OPT_TLS_PORTS2, OPT_NO_DETECT2, OPT_SPLIT };

int cli_compare(int argc, char **argv)
{
    struct an_options o;
    an_options_defaults(&o);
    o.quiet = true;
    const char *output = NULL, *html = NULL, *config = NULL, *ports = NULL, *tls_ports = NULL;
    char names_buf[256] = "";
    enum cmpc_split split = SPLIT_NONE;
    const char *names[2] = {"outside", "inside"};
    struct rep_cmp_options ro = {REP_TEXT, {NULL, NULL}, {NULL, NULL}, REP_CMP_DIALOGUE_CHANGED};
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"html", required_argument, NULL, OPT_HTML},
        {"names", required_argument, NULL, OPT_NAMES},
        {"split", required_argument, NULL, OPT_SPLIT},
        {"config", required_argument, NULL, 'c'},
        {"ports", required_argument, NULL, 'p'},
        {"tls-ports", required_argument, NULL, OPT_TLS_PORTS2},
        {"no-detect", no_argument, NULL, OPT_NO_DETECT2},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:o:c:p:vqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "text") == 0) {
                ro.format = REP_TEXT;
            } else if (strcmp(optarg, "json") == 0) {
                ro.format = REP_JSON;
            } else if (strcmp(optarg, "yaml") == 0) {
                ro.format = REP_YAML;
            } else {
                fprintf(stderr, "smtpscope: --format: \"%s\" is not one of text, json, yaml\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'o':
            output = optarg;
            break;
        case OPT_HTML:
            html = optarg;
            break;
        case OPT_NAMES: {
            sc_strlcpy(names_buf, sizeof(names_buf), optarg);
            char *comma = strchr(names_buf, ',');
            if (!comma || comma == names_buf || !comma[1] || strchr(comma + 1, ',')) {
                fprintf(stderr,
                        "smtpscope: --names: \"%s\" is not two labels such as "
                        "dmz,lan\n",
                        optarg);
                return EXIT_USAGE;
            }
            *comma = 0;
            names[0] = names_buf;
            names[1] = comma + 1;
            break;
        }
        case 'c':
            config = optarg;
            break;
        case 'p':
            ports = optarg;
            break;
        case OPT_SPLIT:
            split = strcmp(optarg, "vlan") == 0    ? SPLIT_VLAN
                    : strcmp(optarg, "mac") == 0   ? SPLIT_MAC
                    : strcmp(optarg, "ttl") == 0   ? SPLIT_TTL
                    : strcmp(optarg, "encap") == 0 ? SPLIT_ENCAP
                                                   : SPLIT_NONE;
            if (split == SPLIT_NONE) {
                fprintf(stderr, "smtpscope: --split: \"%s\" is not one of vlan, mac, ttl, encap\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_TLS_PORTS2:
            tls_ports = optarg;
            break;
        case OPT_NO_DETECT2:
            o.detect = false;
            break;
        case 'v':
            ro.dialogue = REP_CMP_DIALOGUE_ALL;
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'h':
            cmpc__usage(stdout);
            return 0;
        default:
            fputs("Try 'smtpscope compare --help' for more information.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (argc - optind != (split ? 1 : 2)) {
        fputs(split ? "smtpscope: compare --split needs one capture file\n"
                    : "smtpscope: compare needs two capture files: OUTSIDE INSIDE\n",
              stderr);
        fputs("Try 'smtpscope compare --help' for more information.\n", stderr);
        return EXIT_USAGE;
    }
    int rc = EXIT_USAGE;
    char err[CFG_ERR_MAX];
    struct cmp_capture cap[2];
    cmp_capture_init(&cap[0], names[0]);
    cmp_capture_init(&cap[1], names[1]);
    struct cmp_result res;
    memset(&res, 0, sizeof(res));
    FILE *out = stdout;
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
    for (int i = 0; i < (split ? 1 : 2); i++) {
        if (strcmp(argv[optind + i], "-") == 0) {
            fputs("smtpscope: compare reads files, not standard input\n", stderr);
            goto done;
        }
    }
    int st0 = 0, st1 = 0;
    uint64_t unassigned = 0;
    if (split) {
        st0 = cmpc__split_load(&o, split, argv[optind], cap, &unassigned);
        if (st0 == 2 && cap[0].n == 0 && cap[1].n == 0)
            goto done;
    } else {
        /* Both files are read even when the first fails, so every problem is told. */
        st0 = cmpc__load(&o, argv[optind], &cap[0]);
        st1 = cmpc__load(&o, argv[optind + 1], &cap[1]);
    }
    if (cmp_run(&cap[0], &cap[1], &res) != 0) {
        fprintf(stderr, "smtpscope: out of memory comparing the captures\n");
        goto done;
    }
    /* cmp_run may have found the inputs the other way round: labels the user
     * gave stay with their files, the default ones name the roles. */
    ro.names[0] = names_buf[0] ? cap[0].name : "outside";
    ro.names[1] = names_buf[0] ? cap[1].name : "inside";
    if (split) {
        ro.files[0] = ro.files[1] = argv[optind];
    } else {
        ro.files[0] = argv[optind + (res.swapped ? 1 : 0)];
        ro.files[1] = argv[optind + (res.swapped ? 0 : 1)];
    }
    if (split && unassigned)
        fprintf(stderr, "smtpscope: %s: %llu TCP packets belong to neither leg and were left out\n",
                argv[optind], (unsigned long long)unassigned);
    if (output && strcmp(output, "-") != 0) {
        out = fopen(output, "w");
        if (!out) {
            fprintf(stderr, "smtpscope: %s: %s\n", output, strerror(errno));
            out = stdout;
            goto done;
        }
    }
    if (rep_compare(out, &ro, &cap[0], &cap[1], &res) != 0) {
        fprintf(stderr, "smtpscope: %s: write error: %s\n",
                out == stdout ? "standard output" : output, strerror(errno));
        goto done;
    }
    if (html) {
        FILE *h = fopen(html, "w");
        if (!h || rep_compare_html(h, &ro, &cap[0], &cap[1], &res) != 0 || fclose(h) != 0) {
            fprintf(stderr, "smtpscope: %s: %s\n", html, strerror(errno));
            goto done;
        }
    }
    rc = st0 == 2 || st1 == 2 ? 2 : res.worst > CMP_INFO ? 1 : 0;
done:
    if (out != stdout && fclose(out) != 0) {
        fprintf(stderr, "smtpscope: %s: %s\n", output, strerror(errno));
        rc = EXIT_USAGE;
    }
    cmp_result_free(&res);
    cmp_capture_free(&cap[0]);
    cmp_capture_free(&cap[1]);
    heur_config_free(&o.heur);
    return rc;
}
